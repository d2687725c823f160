//! The ports: what mirror-core needs from each side, as traits it owns. Adapters over the two
//! clients live in [`crate::adapters`]; in-memory fakes (feature `fakes`) in `crate::fakes`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Error;

/// An integration's settings: a JSON object as Snyk holds it.
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// A repository as the plan needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Repo {
    /// The workspace slug.
    pub workspace: String,
    /// The repository slug.
    pub slug: String,
    /// The main branch; `None` for an empty repository.
    pub main_branch: Option<String>,
    /// Whether it is a fork.
    pub is_fork: bool,
    /// Whether it is private.
    pub is_private: bool,
    /// The Bitbucket project key.
    pub project_key: Option<String>,
    /// Last update (RFC 3339).
    pub updated_on: Option<String>,
}

impl Repo {
    /// A private repository on `main`, in no project. For tests and fakes.
    pub fn new(workspace: &str, slug: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            slug: slug.to_owned(),
            main_branch: Some("main".to_owned()),
            is_fork: false,
            is_private: true,
            project_key: None,
            updated_on: None,
        }
    }

    /// `workspace/slug`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.workspace, self.slug)
    }
}

/// What the repository listing may be narrowed to on the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoQuery {
    /// Only these project keys.
    pub project_keys: Vec<String>,
    /// Only repositories updated after this time.
    pub updated_since: Option<String>,
}

/// An org as the plan needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnykOrg {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
}

/// How an import ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutcome {
    /// `complete`, `failed` or `aborted`.
    pub status: String,
    /// Projects created.
    pub projects: u32,
    /// Snyk's messages for what failed.
    pub messages: Vec<String>,
    /// Status requests made.
    pub polls: u32,
}

impl JobOutcome {
    /// Whether the job completed.
    pub fn is_complete(&self) -> bool {
        self.status == "complete"
    }
}

/// What to import: one repository at one branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSpec {
    /// The workspace slug.
    pub workspace: String,
    /// The repository slug.
    pub repository: String,
    /// The branch.
    pub branch: Option<String>,
    /// Only these manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Paths to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusion_globs: Vec<String>,
}

/// The Bitbucket side.
#[async_trait]
pub trait BitbucketPort: Send + Sync {
    /// The slugs of every workspace the credentials can see, sorted.
    async fn workspaces(&self) -> Result<Vec<String>, Error>;
    /// Every repository of a workspace (narrowed on the server where possible).
    async fn repositories(&self, workspace: &str, query: &RepoQuery) -> Result<Vec<Repo>, Error>;
    /// Requests made so far.
    fn requests(&self) -> u64;
}

/// The Snyk side.
#[async_trait]
pub trait SnykPort: Send + Sync {
    /// Every org of the group.
    async fn orgs(&self, group_id: &str) -> Result<Vec<SnykOrg>, Error>;
    /// Orgs of the group with exactly this name (after a crash, to adopt an org created but
    /// not recorded).
    async fn orgs_named(&self, group_id: &str, name: &str) -> Result<Vec<SnykOrg>, Error>;
    /// An org's integrations: type → id.
    async fn integrations(&self, org_id: &str) -> Result<BTreeMap<String, String>, Error>;
    /// The display names (`workspace/repository`, lowercased) of an org's targets imported
    /// through `integration_type`.
    async fn imported(&self, org_id: &str, integration_type: &str) -> Result<Vec<String>, Error>;
    /// Creates an org in the group, optionally from a template.
    async fn create_org(
        &self,
        group_id: &str,
        name: &str,
        template_org_id: Option<&str>,
    ) -> Result<SnykOrg, Error>;
    /// Adds a `bitbucket-cloud` integration to an org with the Snyk-side Bitbucket credentials;
    /// returns its id, or `None` when no such credentials are configured.
    async fn add_bitbucket_integration(&self, org_id: &str) -> Result<Option<String>, Error>;
    /// Posts an import; returns a job reference.
    async fn import(
        &self,
        org_id: &str,
        integration_id: &str,
        spec: &ImportSpec,
    ) -> Result<String, Error>;
    /// Polls a job (by the reference [`SnykPort::import`] returned) to a final state.
    async fn wait(&self, job: &str) -> Result<JobOutcome, Error>;
    /// An integration's settings (`pullRequestTestEnabled`, `autoRemediationPrs`, …). The
    /// default answers that this port cannot.
    async fn integration_settings(
        &self,
        org_id: &str,
        integration_id: &str,
    ) -> Result<Settings, Error> {
        let _ = (org_id, integration_id);
        Err(Error::Config(
            "this Snyk port cannot read integration settings".to_owned(),
        ))
    }
    /// Changes the given settings of an integration; the others stay as they are. The default
    /// answers that this port cannot.
    async fn update_integration_settings(
        &self,
        org_id: &str,
        integration_id: &str,
        settings: &Settings,
    ) -> Result<(), Error> {
        let _ = (org_id, integration_id, settings);
        Err(Error::Config(
            "this Snyk port cannot change integration settings".to_owned(),
        ))
    }
    /// Turns an org's notifications off. The default answers that this port cannot.
    async fn disable_notifications(&self, org_id: &str) -> Result<(), Error> {
        let _ = org_id;
        Err(Error::Config(
            "this Snyk port cannot change notification settings".to_owned(),
        ))
    }
    /// Requests made so far.
    fn requests(&self) -> u64;
}
