//! Both sandboxes, one state directory and a configuration: the world the end-to-end tests of
//! mirror-core run in (on tokio's paused clock).
#![allow(dead_code)]

use mirror_render::Render as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bitbucket_cloud_client::sandbox::{self as bb, Estate, SAMPLE_API_TOKEN, SAMPLE_EMAIL};
use bitbucket_cloud_client::{Auth, BitbucketClient};
use mirror_core::{Config, Mirror, Plan, Report};
use snyk_client::sandbox::{self as snyk, SAMPLE_PERSON_TOKEN, SAMPLE_PERSON_USER, SAMPLE_TOKEN};
use snyk_client::{SnykAuth, SnykClient};

pub(crate) struct World {
    pub(crate) bb: bb::Sandbox,
    pub(crate) snyk: snyk::Sandbox,
    pub(crate) state: tempfile::TempDir,
    pub(crate) config: Config,
}

impl World {
    /// Two workspaces of 30 repositories each, every repository with one manifest.
    pub(crate) async fn start() -> Self {
        Self::with(Estate::generate(2, 30, 7), "").await
    }

    pub(crate) async fn with(estate: Estate, extra: &str) -> Self {
        Self::with_snyk(estate, extra, |b| b).await
    }

    /// A world whose Snyk sandbox is built further by `snyk` (a person's token is always
    /// accepted, as [`SAMPLE_PERSON_TOKEN`]).
    pub(crate) async fn with_snyk(
        estate: Estate,
        extra: &str,
        snyk: impl FnOnce(snyk::SandboxBuilder) -> snyk::SandboxBuilder,
    ) -> Self {
        let bb = bb::Sandbox::builder()
            .estate(estate)
            .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
            .start()
            .await
            .unwrap();
        let builder = snyk::Sandbox::builder()
            .token(SAMPLE_TOKEN)
            .person(SAMPLE_PERSON_TOKEN, SAMPLE_PERSON_USER)
            .import_delay(Duration::from_secs(3));
        let snyk = snyk(builder).start().await.unwrap();
        let config = Config::from_toml(&format!(
            "[snyk]\ngroup_id = \"{}\"\n{extra}",
            snyk.group_id()
        ))
        .unwrap();
        Self {
            bb,
            snyk,
            state: tempfile::tempdir().unwrap(),
            config,
        }
    }

    pub(crate) fn mirror(&self) -> Mirror {
        self.mirror_at(self.state.path())
    }

    /// A mirror of this world keeping its state in `dir` (a second state directory).
    pub(crate) fn mirror_at(&self, dir: &std::path::Path) -> Mirror {
        Mirror::builder()
            .bitbucket(
                BitbucketClient::builder()
                    .base_url(self.bb.base_url())
                    .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
                    .build()
                    .unwrap(),
            )
            .snyk(
                SnykClient::builder()
                    .api_url(self.snyk.api_url())
                    .auth(SnykAuth::token(SAMPLE_TOKEN))
                    .build()
                    .unwrap(),
            )
            .snyk_bitbucket_credentials(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
            .state_dir(dir)
            // The sandboxes run within seconds of real time: the audit log is searched from
            // the kept reads themselves.
            .snyk_audit_margin(Duration::ZERO)
            .config(self.config.clone())
            // Every workspace is listed incrementally after the first sync (the default lists
            // workspaces of one page in full): each change below must be seen that way.
            .list_in_full_up_to(0)
            .build()
            .unwrap()
    }

    pub(crate) async fn plan(&self) -> Plan {
        self.mirror().plan().await.unwrap()
    }

    pub(crate) async fn sync(&self) -> Report {
        let mirror = self.mirror();
        let plan = mirror.plan().await.unwrap();
        mirror.apply(&plan).await.unwrap()
    }

    /// Live repositories with a default branch: `workspace/slug` → branch.
    pub(crate) fn live(&self) -> BTreeMap<String, String> {
        self.bb
            .estate()
            .workspaces
            .iter()
            .flat_map(|w| {
                w.repositories.iter().filter_map(move |r| {
                    Some((format!("{}/{}", w.slug, r.slug), r.main_branch.clone()?))
                })
            })
            .collect()
    }

    /// Snyk equals Bitbucket: every live repository has a target in the org named after its
    /// workspace with active projects on its default branch only; no target of a name that is
    /// not live has an active project; no repository is there twice.
    pub(crate) fn assert_equal(&self) {
        let live = self.live();
        let orgs: BTreeMap<String, String> = self
            .snyk
            .orgs()
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect();
        let projects = self.snyk.projects();
        let active_targets: BTreeSet<String> = projects
            .iter()
            .filter(|p| p.active)
            .map(|p| p.target_id.clone())
            .collect();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for t in self.snyk.targets() {
            if !active_targets.contains(&t.id) {
                continue;
            }
            let name = t.display_name.to_lowercase();
            assert!(
                live.keys().any(|l| l.to_lowercase() == name),
                "{} is gone from Bitbucket but still has active projects",
                t.display_name
            );
            let workspace = t.display_name.split('/').next().unwrap();
            assert_eq!(
                orgs.get(&t.org_id).map(String::as_str),
                Some(workspace),
                "{} is in the wrong org",
                t.display_name
            );
            *seen.entry(name).or_default() += 1;
        }
        for (repo, branch) in &live {
            assert_eq!(
                seen.get(&repo.to_lowercase()),
                Some(&1),
                "{repo} is not mirrored exactly once"
            );
            for p in projects.iter().filter(|p| p.active) {
                if p.name
                    .to_lowercase()
                    .starts_with(&format!("{}:", repo.to_lowercase()))
                {
                    assert_eq!(p.branch.as_deref(), Some(branch.as_str()), "{}", p.name);
                }
            }
        }
    }

    /// A third sync has nothing to do.
    pub(crate) async fn assert_settled(&self) {
        let plan = self.plan().await;
        assert!(plan.is_noop(), "{}", plan.render());
    }

    pub(crate) fn first_repos(&self, workspace: &str, n: usize) -> Vec<String> {
        let estate = self.bb.estate();
        let w = estate
            .workspaces
            .iter()
            .find(|w| w.slug == workspace)
            .unwrap();
        w.repositories
            .iter()
            .filter(|r| r.main_branch.is_some() && r.parent.is_none())
            .take(n)
            .map(|r| r.slug.clone())
            .collect()
    }

    /// The uuid of `workspace/slug`.
    pub(crate) fn uuid_of(&self, workspace: &str, slug: &str) -> String {
        let estate = self.bb.estate();
        let w = estate.workspaces.iter().find(|w| w.slug == workspace);
        w.and_then(|w| w.repositories.iter().find(|r| r.slug == slug))
            .map(|r| r.uuid.clone())
            .unwrap()
    }

    /// A person deactivates the projects of `ws-0001/{slug}` in Snyk, through the API.
    pub(crate) async fn sync_deactivating(&self, slug: &str) {
        let client = SnykClient::builder()
            .api_url(self.snyk.api_url())
            .auth(SnykAuth::token(SAMPLE_TOKEN))
            .build()
            .unwrap();
        for p in self.snyk.projects() {
            if p.name.starts_with(&format!("ws-0001/{slug}:")) {
                client
                    .set_project_active(&p.org_id, &p.id, false)
                    .await
                    .unwrap();
            }
        }
    }

    /// A Snyk client acting as a person (their changes are recorded under their user id).
    pub(crate) fn person(&self) -> SnykClient {
        SnykClient::builder()
            .api_url(self.snyk.api_url())
            .auth(SnykAuth::token(SAMPLE_PERSON_TOKEN))
            .build()
            .unwrap()
    }

    /// The org named `name`'s id.
    pub(crate) fn org_id(&self, name: &str) -> String {
        self.snyk
            .orgs()
            .into_iter()
            .find(|o| o.name == name)
            .map(|o| o.id)
            .unwrap()
    }

    /// The target of `full_name` (the first, when there are several).
    pub(crate) fn target_of(&self, full_name: &str) -> snyk::SandboxTarget {
        self.snyk
            .targets()
            .into_iter()
            .find(|t| t.display_name.eq_ignore_ascii_case(full_name))
            .unwrap()
    }

    /// Forgets the kept listings: the next plan lists every workspace in full (as the daily
    /// safety net does), so that what its entries say now is read.
    pub(crate) fn forget_listings(&self) {
        std::fs::remove_dir_all(self.state.path().join("listings")).unwrap();
    }

    /// Projects of `workspace/slug` that are active.
    pub(crate) fn active(&self, full_name: &str) -> usize {
        self.snyk
            .projects()
            .iter()
            .filter(|p| p.active && p.name.starts_with(&format!("{full_name}:")))
            .count()
    }
}

pub(crate) fn changes(snyk: &snyk::Sandbox) -> u64 {
    let stats = snyk.stats();
    [
        "POST /v1/org/{orgId}/project/{projectId}/deactivate",
        "PUT /v1/org/{orgId}/project/{projectId}",
        "DELETE /rest/orgs/{org_id}/targets/{target_id}",
        "DELETE /rest/orgs/{org_id}/projects/{project_id}",
        "PATCH /rest/orgs/{org_id}",
    ]
    .iter()
    .map(|r| stats.route(r))
    .sum()
}
