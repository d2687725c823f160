//! Endpoint descriptions: plain values that say method, path and query, and perform no I/O.
//! [`crate::BitbucketClient`] sends them through one path; you can too, with
//! [`crate::BitbucketClient::get`].

use std::borrow::Cow;
use std::fmt;

use api_support::{Endpoint, path_segment};

/// The largest page Bitbucket serves for repositories and workspaces.
pub const MAX_PAGE_LEN: u32 = 100;

/// `GET /user`: the authenticated user.
#[derive(Clone, Copy, Debug, Default)]
pub struct CurrentUser;

impl Endpoint for CurrentUser {
    fn path(&self) -> Cow<'_, str> {
        Cow::Borrowed("user")
    }
}

/// `GET /user/workspaces`: the workspaces the caller can access, sorted by slug.
#[derive(Clone, Copy, Debug)]
pub struct UserWorkspaces {
    /// Only workspaces the caller administers (`true`) or does not (`false`).
    pub administrator: Option<bool>,
    /// The page length (at most 100).
    pub pagelen: u32,
}

impl Default for UserWorkspaces {
    fn default() -> Self {
        Self {
            administrator: None,
            pagelen: MAX_PAGE_LEN,
        }
    }
}

impl Endpoint for UserWorkspaces {
    fn path(&self) -> Cow<'_, str> {
        Cow::Borrowed("user/workspaces")
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("sort", "slug".to_owned()),
            ("pagelen", self.pagelen.to_string()),
        ];
        if let Some(admin) = self.administrator {
            q.push(("administrator", admin.to_string()));
        }
        q
    }
}

/// `GET /workspaces/{workspace}`: one workspace, with its name.
#[derive(Clone, Debug)]
pub struct GetWorkspace {
    /// The workspace slug.
    pub workspace: String,
}

impl Endpoint for GetWorkspace {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("workspaces/{}", path_segment(&self.workspace)))
    }
}

/// `GET /workspaces/{workspace}/projects`: a workspace's projects.
#[derive(Clone, Debug)]
pub struct WorkspaceProjects {
    /// The workspace slug.
    pub workspace: String,
    /// The page length (at most 100).
    pub pagelen: u32,
}

impl Endpoint for WorkspaceProjects {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "workspaces/{}/projects",
            path_segment(&self.workspace)
        ))
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("pagelen", self.pagelen.to_string())]
    }
}

/// The caller's role filter of a repository listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Repositories the caller can read.
    Member,
    /// Repositories the caller can write.
    Contributor,
    /// Repositories the caller administers.
    Admin,
    /// Repositories the caller owns.
    Owner,
}

impl Role {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Contributor => "contributor",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

/// A partial-response selection (`fields=`) that always keeps `next`, so that paging never
/// silently stops after the first page. There is no way to build one without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields(Vec<String>);

impl Fields {
    /// A selection such as `["values.slug", "values.mainbranch.name"]`. `next` is added when the
    /// selection names fields outright; a list of only `+`/`-` modifiers keeps the default fields,
    /// `next` among them. `-next` is dropped.
    pub fn new<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list: Vec<String> = fields
            .into_iter()
            .map(Into::into)
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty() && f != "-next")
            .collect();
        let projects = list.iter().any(|f| !f.starts_with(['+', '-']));
        if projects && !list.iter().any(|f| f == "next" || f == "+next") {
            list.insert(0, "next".to_owned());
        }
        Self(list)
    }

    /// The fields, `next` included where needed.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// Quotes a value for Bitbucket's `q` filter language.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `GET /repositories/{workspace}`: a workspace's repositories.
#[derive(Clone, Debug)]
pub struct ListRepositories {
    /// The workspace slug.
    pub workspace: String,
    /// A filter such as `project.key="CORE" AND updated_on>2026-01-01T00:00:00Z`.
    pub q: Option<String>,
    /// The order; `slug` by default, because paging without an explicit order can repeat or
    /// skip items.
    pub sort: String,
    /// The caller's role filter.
    pub role: Option<Role>,
    /// A partial-response selection.
    pub fields: Option<Fields>,
    /// The page length (at most 100).
    pub pagelen: u32,
}

impl ListRepositories {
    /// All repositories of `workspace`, 100 a page, sorted by slug.
    pub fn new(workspace: impl Into<String>) -> Self {
        Self {
            workspace: workspace.into(),
            q: None,
            sort: "slug".to_owned(),
            role: None,
            fields: None,
            pagelen: MAX_PAGE_LEN,
        }
    }

    /// Adds a clause to the filter, joined with `AND`.
    pub fn and_q(&mut self, clause: impl Into<String>) {
        let clause = clause.into();
        self.q = Some(match self.q.take() {
            Some(q) => format!("({q}) AND ({clause})"),
            None => clause,
        });
    }
}

impl Endpoint for ListRepositories {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("repositories/{}", path_segment(&self.workspace)))
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("pagelen", self.pagelen.to_string()),
            ("sort", self.sort.clone()),
        ];
        if let Some(filter) = &self.q {
            q.push(("q", filter.clone()));
        }
        if let Some(role) = self.role {
            q.push(("role", role.as_str().to_owned()));
        }
        if let Some(fields) = &self.fields {
            q.push(("fields", fields.to_string()));
        }
        q
    }
}

/// `GET /repositories/{workspace}/{repo_slug}`: one repository.
#[derive(Clone, Debug)]
pub struct GetRepository {
    /// The workspace slug.
    pub workspace: String,
    /// The repository slug.
    pub repo_slug: String,
}

impl Endpoint for GetRepository {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "repositories/{}/{}",
            path_segment(&self.workspace),
            path_segment(&self.repo_slug)
        ))
    }
}

/// `GET /workspaces/{workspace}/hooks`: the workspace's webhooks.
#[derive(Clone, Debug)]
pub struct WorkspaceHooks {
    /// The workspace slug.
    pub workspace: String,
}

impl Endpoint for WorkspaceHooks {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "workspaces/{}/hooks",
            path_segment(&self.workspace)
        ))
    }
}

/// `POST /workspaces/{workspace}/hooks` (no `uid`) or `PUT /workspaces/{workspace}/hooks/{uid}`:
/// creates a webhook or brings one up to date. Only workspace owners may.
#[derive(Clone, Debug)]
pub struct PutWorkspaceHook {
    /// The workspace slug.
    pub workspace: String,
    /// The webhook to update; `None` creates one.
    pub uid: Option<String>,
    /// What it is to be.
    pub spec: crate::webhooks::WebhookSpec,
}

impl Endpoint for PutWorkspaceHook {
    fn method(&self) -> http::Method {
        if self.uid.is_some() {
            http::Method::PUT
        } else {
            http::Method::POST
        }
    }

    fn path(&self) -> Cow<'_, str> {
        let base = format!("workspaces/{}/hooks", path_segment(&self.workspace));
        Cow::Owned(match &self.uid {
            Some(uid) => format!("{base}/{}", path_segment(uid)),
            None => base,
        })
    }

    fn body(&self) -> Result<Option<api_support::Body>, api_support::Error> {
        api_support::Body::json(&self.spec.body()).map(Some)
    }
}

/// `DELETE /workspaces/{workspace}/hooks/{uid}`: removes a webhook.
#[derive(Clone, Debug)]
pub struct DeleteWorkspaceHook {
    /// The workspace slug.
    pub workspace: String,
    /// The webhook's uuid.
    pub uid: String,
}

impl Endpoint for DeleteWorkspaceHook {
    fn method(&self) -> http::Method {
        http::Method::DELETE
    }

    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "workspaces/{}/hooks/{}",
            path_segment(&self.workspace),
            path_segment(&self.uid)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_always_keep_next() {
        assert_eq!(
            Fields::new(["values.slug", "values.mainbranch.name"]).to_string(),
            "next,values.slug,values.mainbranch.name"
        );
        assert_eq!(
            Fields::new(["next", "values.slug"]).to_string(),
            "next,values.slug"
        );
        assert_eq!(
            Fields::new(["-next", "values.uuid"]).to_string(),
            "next,values.uuid"
        );
        // Modifiers keep the default fields, which include `next`.
        assert_eq!(Fields::new(["-values.links"]).to_string(), "-values.links");
        assert_eq!(
            Fields::new(["-next", "-values.links"]).to_string(),
            "-values.links"
        );
    }

    #[test]
    fn filters_combine_and_quote() {
        let mut l = ListRepositories::new("acme");
        l.and_q(format!("project.key={}", quote("CO\"RE")));
        l.and_q("updated_on>2026-01-01T00:00:00Z");
        assert_eq!(
            l.q.as_deref(),
            Some(r#"(project.key="CO\"RE") AND (updated_on>2026-01-01T00:00:00Z)"#)
        );
    }
}
