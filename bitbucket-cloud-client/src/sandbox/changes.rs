//! Changes to the fake estate while it runs, as Bitbucket makes them (each delivers its
//! webhook event), for the [`super::Sandbox`] handle and for the control route
//! `POST /sandbox/changes` that lets another process (`bb-snyk-mirror demo change`) practise
//! drift and real-time mirroring against `demo --serve`.

use serde::Deserialize;
use serde_json::json;

use super::{
    Request, Response, SandboxRepository, SandboxWorkspace, State, actor, error, find_repository,
    now_text, repository_json,
};

/// One change, as the control route takes it.
#[derive(Debug, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
enum Change {
    /// A new repository (on `main`, one manifest).
    Create { repository: String },
    /// A new slug.
    Rename { repository: String, to: String },
    /// Into another workspace.
    Transfer { repository: String, to: String },
    /// Gone.
    Delete { repository: String },
    /// A new default branch.
    Branch { repository: String, to: String },
}

impl Change {
    /// The repository it changes, as `workspace/slug`.
    fn repository(&self) -> &str {
        match self {
            Self::Create { repository }
            | Self::Rename { repository, .. }
            | Self::Transfer { repository, .. }
            | Self::Delete { repository }
            | Self::Branch { repository, .. } => repository,
        }
    }
}

impl State {
    /// `POST /sandbox/changes` with `{"change": "rename", "repository": "ws/slug", "to": …}`:
    /// 200 with what was done, 404 when the repository or workspace is not there, 400 for a
    /// body that is not a change.
    pub(super) fn changes_route(&mut self, req: &Request) -> Response {
        let change: Change = match serde_json::from_slice(&req.body) {
            Ok(c) => c,
            Err(e) => return error(400, &format!("not a change: {e}")),
        };
        let origin = req.origin.clone();
        let Some((ws, slug)) = change.repository().split_once('/') else {
            return error(400, "name the repository as workspace/slug");
        };
        let (ws, slug) = (ws.to_owned(), slug.to_owned());
        let repository = format!("{ws}/{slug}");
        let (done, what) = match &change {
            Change::Create { .. } => {
                let uuid = format!(
                    "{{{:08x}-0000-4000-8000-{:012x}}}",
                    0xdead_u32,
                    self.next_created()
                );
                let repo = SandboxRepository::new(&slug, &uuid);
                (
                    self.add_repository(&origin, &ws, repo),
                    format!("created {repository}"),
                )
            }
            Change::Rename { to, .. } => (
                self.rename_repository(&origin, &ws, &slug, to),
                format!("renamed {repository} to {ws}/{to}"),
            ),
            Change::Transfer { to, .. } => (
                self.transfer_repository(&origin, &ws, &slug, to),
                format!("moved {repository} to {to}/{slug}"),
            ),
            Change::Delete { .. } => (
                self.delete_repository(&origin, &ws, &slug),
                format!("deleted {repository}"),
            ),
            Change::Branch { to, .. } => (
                self.set_main_branch(&ws, &slug, to),
                format!("{repository} now has default branch {to}"),
            ),
        };
        if done {
            Response::json(200, &json!({"done": what}))
        } else {
            error(
                404,
                "no such repository or workspace in the sandbox (or the destination has that slug)",
            )
        }
    }

    /// A number for a created repository's uuid, new each time.
    fn next_created(&mut self) -> u64 {
        self.created += 1;
        self.created
    }

    /// Adds a repository to a workspace; delivers `repo:created`.
    pub(super) fn add_repository(
        &mut self,
        origin: &str,
        workspace: &str,
        repository: SandboxRepository,
    ) -> bool {
        let uuid = repository.uuid.clone();
        let Some(w) = self.workspace_mut(workspace) else {
            return false;
        };
        if w.repositories.iter().any(|r| r.slug == repository.slug) {
            return false;
        }
        w.repositories.push(repository);
        self.emit(origin, "repo:created", workspace, &uuid, json!({}));
        true
    }

    /// Renames a repository; delivers `repo:updated`.
    pub(super) fn rename_repository(
        &mut self,
        origin: &str,
        workspace: &str,
        slug: &str,
        new_slug: &str,
    ) -> bool {
        let Some(r) = find_repository(&mut self.estate.workspaces, workspace, slug) else {
            return false;
        };
        r.slug = new_slug.to_owned();
        r.updated_on = now_text();
        let uuid = r.uuid.clone();
        let changes = json!({"changes": {
            "name": {"old": slug, "new": new_slug},
            "full_name": {"old": format!("{workspace}/{slug}"), "new": format!("{workspace}/{new_slug}")},
        }});
        self.emit(origin, "repo:updated", workspace, &uuid, changes);
        true
    }

    /// Moves a repository to another workspace (refused onto a slug the destination has);
    /// delivers `repo:transfer` to both workspaces.
    pub(super) fn transfer_repository(
        &mut self,
        origin: &str,
        workspace: &str,
        slug: &str,
        to_workspace: &str,
    ) -> bool {
        let free = self
            .estate
            .workspaces
            .iter()
            .find(|w| w.slug == to_workspace)
            .is_some_and(|w| !w.repositories.iter().any(|r| r.slug == slug));
        let Some(from) = self.workspace_mut(workspace) else {
            return false;
        };
        let Some(at) = from.repositories.iter().position(|r| r.slug == slug) else {
            return false;
        };
        if !free {
            return false;
        }
        let mut repository = from.repositories.remove(at);
        repository.updated_on = now_text();
        // A project key of the old workspace means nothing in the new one.
        repository.project_key = None;
        let uuid = repository.uuid.clone();
        if let Some(to) = self.workspace_mut(to_workspace) {
            to.repositories.push(repository);
        }
        let previous = json!({"previous_workspace": {"type": "workspace", "slug": workspace}});
        self.emit(
            origin,
            "repo:transfer",
            to_workspace,
            &uuid,
            previous.clone(),
        );
        self.emit_to(
            origin,
            "repo:transfer",
            workspace,
            to_workspace,
            &uuid,
            previous,
        );
        true
    }

    /// Deletes a repository; delivers `repo:deleted` with the repository as it was.
    pub(super) fn delete_repository(&mut self, origin: &str, workspace: &str, slug: &str) -> bool {
        let Some(w) = self.workspace_mut(workspace) else {
            return false;
        };
        let Some(at) = w.repositories.iter().position(|r| r.slug == slug) else {
            return false;
        };
        let gone = w.repositories.remove(at);
        let mut payload = repository_json(w, &gone, origin);
        payload["links"] = json!({});
        self.emit_payload(
            workspace,
            "repo:deleted",
            &json!({"repository": payload, "actor": actor()}),
        );
        true
    }

    /// Changes a repository's default branch (no event: Bitbucket sends none).
    pub(super) fn set_main_branch(&mut self, workspace: &str, slug: &str, branch: &str) -> bool {
        find_repository(&mut self.estate.workspaces, workspace, slug).is_some_and(|r| {
            r.main_branch = Some(branch.to_owned());
            r.updated_on = now_text();
            true
        })
    }

    pub(super) fn set_project_key(&mut self, workspace: &str, slug: &str, key: &str) -> bool {
        find_repository(&mut self.estate.workspaces, workspace, slug).is_some_and(|r| {
            r.project_key = Some(key.to_owned());
            r.updated_on = now_text();
            true
        })
    }

    fn workspace_mut(&mut self, slug: &str) -> Option<&mut SandboxWorkspace> {
        self.estate.workspaces.iter_mut().find(|w| w.slug == slug)
    }
}
