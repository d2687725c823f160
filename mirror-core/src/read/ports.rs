//! The ports: what mirror-core needs from each side, as traits it owns. Adapters over the two
//! clients live in [`crate::read::adapters`]; in-memory fakes (feature `fakes`) in `crate::fakes`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{
    GroupId, IntegrationId, OrgId, ProjectId, RepoUuid, TargetId, Timestamp, WorkspaceUuid,
};

pub use snyk_client::{Ignore, ImportStatus, ProjectSettings};

/// An integration's settings: a JSON object as Snyk holds it.
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// A repository as the plan needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Repo {
    /// Bitbucket's uuid of the repository, unchanged by a rename or a transfer; `None` when
    /// the source did not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<RepoUuid>,
    /// The workspace slug.
    pub workspace: String,
    /// Bitbucket's uuid of the workspace, unchanged by a rename of the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<WorkspaceUuid>,
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
    /// Last update.
    pub updated_on: Option<Timestamp>,
    /// The main language, as Bitbucket guesses it (kept only when a `[[metadata]]` rule
    /// matches on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Repo {
    /// A private repository on `main`, in no project. For tests and fakes.
    pub fn new(workspace: &str, slug: &str) -> Self {
        Self {
            uuid: None,
            workspace: workspace.to_owned(),
            workspace_uuid: None,
            slug: slug.to_owned(),
            main_branch: Some("main".to_owned()),
            is_fork: false,
            is_private: true,
            project_key: None,
            updated_on: None,
            language: None,
        }
    }

    /// `workspace/slug`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.workspace, self.slug)
    }

    /// The same repository with its uuid (for tests and fakes).
    pub fn with_uuid(mut self, uuid: &str) -> Self {
        self.uuid = Some(uuid.into());
        self
    }
}

/// A workspace's listing: the repositories that could be read, and the entries that could not.
///
/// An entry that could not be read (it does not decode, or it names another workspace than
/// the one listed) still says that *something* is there: a listing with such entries is not
/// complete evidence that a repository is gone (see [`crate::read::inventory::Lookup`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Listing {
    /// The repositories read.
    pub repositories: Vec<Repo>,
    /// The entries that could not be used, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

impl Listing {
    /// A listing of these repositories, every entry readable.
    pub fn of(repositories: Vec<Repo>) -> Self {
        Self {
            repositories,
            unreadable: Vec::new(),
        }
    }

    /// The same listing with an entry that could not be read.
    pub fn with_unreadable(mut self, entry: Unreadable) -> Self {
        self.unreadable.push(entry);
        self
    }
}

/// An entry of a listing that could not be used: its uuid and name when they could be read,
/// and why it could not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Unreadable {
    /// Its uuid, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<RepoUuid>,
    /// Its full name, slug or name, the first it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why it could not be used.
    pub why: String,
}

impl Unreadable {
    /// An entry that could not be used, and why.
    pub fn new(uuid: Option<RepoUuid>, name: Option<String>, why: impl Into<String>) -> Self {
        Self {
            uuid,
            name,
            why: why.into(),
        }
    }
}

/// What the repository listing may be narrowed to on the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoQuery {
    /// Only these project keys.
    pub project_keys: Vec<String>,
    /// Only repositories updated after this time.
    pub updated_since: Option<Timestamp>,
}

/// An org as the plan needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnykOrg {
    /// The id.
    pub id: OrgId,
    /// The name.
    pub name: String,
    /// When it was created, when Snyk says: of two orgs of one name created at once by two
    /// processes, the older is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// Its slug, when Snyk says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Its web address, when Snyk says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl SnykOrg {
    /// An org of this id and name (Snyk saying nothing more).
    pub fn new(id: OrgId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            created: None,
            slug: None,
            url: None,
        }
    }
}

impl From<snyk_client::Org> for SnykOrg {
    fn from(o: snyk_client::Org) -> Self {
        Self {
            id: o.id.into(),
            name: o.name,
            created: o.created,
            slug: o.slug,
            url: o.url,
        }
    }
}

/// A target of an org: a repository as Snyk knows it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnykTarget {
    /// The id.
    pub id: TargetId,
    /// `workspace/repository` as Snyk shows it.
    pub display_name: String,
    /// The integration type it was imported through (`bitbucket-cloud`,
    /// `bitbucket-connect-app`), when Snyk says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<String>,
}

/// A project of a target: one manifest tested at one branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnykProject {
    /// The id.
    pub id: ProjectId,
    /// Its target.
    pub target_id: Option<TargetId>,
    /// The branch it tests.
    pub branch: Option<String>,
    /// Whether it is active (an inactive project is not tested).
    pub active: bool,
    /// The manifest it tests, when Snyk says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_file: Option<String>,
    /// Its type (`npm`, `maven`, …), when Snyk says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_type: Option<String>,
    /// Tags, attributes, test frequency and owner, as people set them.
    #[serde(default, skip_serializing_if = "ProjectSettings::is_empty")]
    pub settings: ProjectSettings,
}

/// One entry of an org's audit log, as far as naming who changed something needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// The event, such as `org.target.delete`.
    pub event: String,
    /// The org it happened in, when the entry says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Who, when Snyk says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The project it concerns, for project events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    /// The target it concerns, when the entry names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<TargetId>,
    /// The name it gives (a target's `workspace/repository`), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where an accepted import job lives (the client's own: one type from the API to the
/// journal).
pub use snyk_client::{BadJobReference, JobHandle};

/// One project an import created or tried to create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectResult {
    /// The project, when it was created.
    pub project_id: Option<ProjectId>,
    /// The manifest, such as `package.json`.
    pub target_file: Option<String>,
    /// Whether it was created.
    pub success: bool,
    /// Its page in Snyk.
    pub project_url: Option<String>,
    /// Snyk's message when it was not created.
    pub user_message: Option<String>,
}

/// How an import ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutcome {
    /// Complete, failed or aborted.
    pub status: ImportStatus,
    /// Projects created.
    pub projects: u32,
    /// Snyk's messages for what failed.
    pub messages: Vec<String>,
    /// Status requests made.
    pub polls: u32,
    /// Every project the job created or tried to, when the port reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_results: Vec<ProjectResult>,
}

impl JobOutcome {
    /// Whether the job completed.
    pub fn is_complete(&self) -> bool {
        self.status == ImportStatus::Complete
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
    /// Every repository of a workspace (narrowed on the server where possible), with the
    /// entries that could not be read.
    async fn repositories(&self, workspace: &str, query: &RepoQuery) -> Result<Listing, Error>;
    /// One repository by its uuid, which survives renames and transfers; `None` when it is
    /// gone or no longer visible. The default answers that this port cannot.
    async fn repository_by_uuid(
        &self,
        workspace: &str,
        uuid: &RepoUuid,
    ) -> Result<Option<Repo>, Error> {
        let _ = (workspace, uuid);
        Err(Error::Unsupported {
            what: "look up a repository by its uuid",
        })
    }
    /// Several repositories of one workspace by their uuids, in as few requests as this port
    /// can (the default looks each up): those found, in any order. A uuid not among them is
    /// gone, in another workspace, or no longer visible.
    async fn repositories_by_uuid(
        &self,
        workspace: &str,
        uuids: &[RepoUuid],
    ) -> Result<Vec<Repo>, Error> {
        each_by_uuid(self, workspace, uuids).await
    }
    /// How many repositories of a workspace match `query` (one request), or `None` when this
    /// port cannot say without listing them (the default).
    async fn repository_count(
        &self,
        workspace: &str,
        query: &RepoQuery,
    ) -> Result<Option<u64>, Error> {
        let _ = (workspace, query);
        Ok(None)
    }
    /// Requests made so far.
    fn requests(&self) -> u64;
    /// The requests the port's credentials may make in an hour, all together, when it keeps a
    /// budget (Bitbucket's: 1,000 repository requests an hour a credential); `None` (the
    /// default) when it does not.
    fn hourly_budget(&self) -> Option<u64> {
        None
    }
}

/// Repositories of a workspace looked up one by one by uuid: those found, in order.
pub(crate) async fn each_by_uuid<P: BitbucketPort + ?Sized>(
    port: &P,
    workspace: &str,
    uuids: &[RepoUuid],
) -> Result<Vec<Repo>, Error> {
    let mut found = Vec::new();
    for uuid in uuids {
        found.extend(port.repository_by_uuid(workspace, uuid).await?);
    }
    Ok(found)
}

/// The Snyk side.
#[async_trait]
pub trait SnykPort: Send + Sync {
    /// Every org of the group.
    async fn orgs(&self, group_id: &GroupId) -> Result<Vec<SnykOrg>, Error>;
    /// Orgs of the group with exactly this name (after a crash, to adopt an org created but
    /// not recorded).
    async fn orgs_named(&self, group_id: &GroupId, name: &str) -> Result<Vec<SnykOrg>, Error>;
    /// An org's integrations: type → id.
    async fn integrations(&self, org_id: &OrgId) -> Result<BTreeMap<String, IntegrationId>, Error>;
    /// An org's targets imported through `integration_type` (its display names are
    /// `workspace/repository`).
    async fn imported(
        &self,
        org_id: &OrgId,
        integration_type: &str,
    ) -> Result<Vec<SnykTarget>, Error>;
    /// An org's targets imported through `integration_type` whose display names begin with
    /// `prefix` (one filtered listing rather than the whole org). The default filters
    /// [`SnykPort::imported`].
    async fn imported_named(
        &self,
        org_id: &OrgId,
        integration_type: &str,
        prefix: &str,
    ) -> Result<Vec<SnykTarget>, Error> {
        let prefix = prefix.to_lowercase();
        Ok(self
            .imported(org_id, integration_type)
            .await?
            .into_iter()
            .filter(|t| t.display_name.to_lowercase().starts_with(&prefix))
            .collect())
    }
    /// Creates an org in the group, optionally from a template.
    async fn create_org(
        &self,
        group_id: &GroupId,
        name: &str,
        template_org_id: Option<&OrgId>,
    ) -> Result<SnykOrg, Error>;
    /// Whether [`SnykPort::add_bitbucket_integration`] can add an integration (the port holds
    /// Snyk-side Bitbucket credentials). The plan asks this instead of being told. The default
    /// answers no.
    fn can_add_integrations(&self) -> bool {
        false
    }
    /// Adds a `bitbucket-cloud` integration to an org with the Snyk-side Bitbucket credentials;
    /// returns its id, or `None` when no such credentials are configured.
    async fn add_bitbucket_integration(
        &self,
        org_id: &OrgId,
    ) -> Result<Option<IntegrationId>, Error>;
    /// Replaces the Bitbucket credentials of an org's `bitbucket-cloud` integration with the
    /// port's Snyk-side Bitbucket credentials. The default answers that this port cannot.
    async fn update_bitbucket_credentials(
        &self,
        _org_id: &OrgId,
        _integration_id: &IntegrationId,
    ) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "updating an integration's Bitbucket credentials",
        })
    }
    /// Posts an import; returns where its job lives.
    async fn import(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
        spec: &ImportSpec,
    ) -> Result<JobHandle, Error>;
    /// Polls a job (as [`SnykPort::import`] returned it) to a final state.
    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error>;
    /// An integration's settings (`pullRequestTestEnabled`, `autoRemediationPrs`, …). The
    /// default answers that this port cannot.
    async fn integration_settings(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
    ) -> Result<Settings, Error> {
        let _ = (org_id, integration_id);
        Err(Error::Unsupported {
            what: "read integration settings",
        })
    }
    /// Changes the given settings of an integration; the others stay as they are. The default
    /// answers that this port cannot.
    async fn update_integration_settings(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
        settings: &Settings,
    ) -> Result<(), Error> {
        let _ = (org_id, integration_id, settings);
        Err(Error::Unsupported {
            what: "change integration settings",
        })
    }
    /// A target's projects, active and inactive. The default answers that this port cannot.
    async fn projects(
        &self,
        org_id: &OrgId,
        target_id: &TargetId,
    ) -> Result<Vec<SnykProject>, Error> {
        let _ = (org_id, target_id);
        Err(Error::Unsupported {
            what: "list a target's projects",
        })
    }
    /// Every project of an org, active and inactive, with its target, branch and manifest:
    /// the REST listing, a request per 100 projects. The default answers that this port
    /// cannot.
    async fn org_projects(&self, org_id: &OrgId) -> Result<Vec<SnykProject>, Error> {
        let _ = org_id;
        Err(Error::Unsupported {
            what: "list an org's projects",
        })
    }
    /// The org's audit log since `from`, newest first, only these events. Plans
    /// without audit logs refuse (403). The default answers that this port cannot.
    async fn audit_log(
        &self,
        org_id: &OrgId,
        events: &[&str],
        from: Timestamp,
    ) -> Result<Vec<AuditEntry>, Error> {
        let _ = (org_id, events, from);
        Err(Error::Unsupported {
            what: "search an org's audit log",
        })
    }
    /// The group's audit log since `from`, newest first, only these events: which
    /// orgs changed since a read. The default answers that this port cannot.
    async fn group_audit_log(
        &self,
        group_id: &GroupId,
        events: &[&str],
        from: Timestamp,
    ) -> Result<Vec<AuditEntry>, Error> {
        let _ = (group_id, events, from);
        Err(Error::Unsupported {
            what: "search a group's audit log",
        })
    }
    /// A project's ignores. The default answers that this port cannot.
    async fn ignores(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<Vec<Ignore>, Error> {
        let _ = (org_id, project_id);
        Err(Error::Unsupported {
            what: "read a project's ignores",
        })
    }
    /// Adds an ignore to a project. The default answers that this port cannot.
    async fn add_ignore(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        ignore: &Ignore,
    ) -> Result<(), Error> {
        let _ = (org_id, project_id, ignore);
        Err(Error::Unsupported {
            what: "add an ignore to a project",
        })
    }
    /// Sets a project's tags, attributes, test frequency and owner as far as `settings` holds
    /// them (each attribute given is replaced whole). The default answers that this port
    /// cannot.
    async fn update_project_settings(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        settings: &ProjectSettings,
    ) -> Result<(), Error> {
        let _ = (org_id, project_id, settings);
        Err(Error::Unsupported {
            what: "change a project's settings",
        })
    }
    /// Deletes an org (Snyk refuses one that holds projects). Used only for an org this run
    /// has just created and found a second of its name. The default answers that this port
    /// cannot.
    async fn delete_org(&self, org_id: &OrgId) -> Result<(), Error> {
        let _ = org_id;
        Err(Error::Unsupported {
            what: "delete an org",
        })
    }
    /// Deactivates a project (reversible). The default answers that this port cannot.
    async fn deactivate_project(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
    ) -> Result<(), Error> {
        let _ = (org_id, project_id);
        Err(Error::Unsupported {
            what: "deactivate a project",
        })
    }
    /// Activates a deactivated project (v1 `activate`). The default answers that this port
    /// cannot.
    async fn activate_project(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        let _ = (org_id, project_id);
        Err(Error::Unsupported {
            what: "activate a project",
        })
    }
    /// Deletes a project. The default answers that this port cannot.
    async fn delete_project(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        let _ = (org_id, project_id);
        Err(Error::Unsupported {
            what: "delete a project",
        })
    }
    /// Deletes a target. The default answers that this port cannot.
    async fn delete_target(&self, org_id: &OrgId, target_id: &TargetId) -> Result<(), Error> {
        let _ = (org_id, target_id);
        Err(Error::Unsupported {
            what: "delete a target",
        })
    }
    /// Moves a project to another branch. The default answers that this port cannot.
    async fn set_project_branch(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        branch: &str,
    ) -> Result<(), Error> {
        let _ = (org_id, project_id, branch);
        Err(Error::Unsupported {
            what: "change a project's branch",
        })
    }
    /// Renames an org. The default answers that this port cannot.
    async fn rename_org(&self, org_id: &OrgId, name: &str) -> Result<(), Error> {
        let _ = (org_id, name);
        Err(Error::Unsupported {
            what: "rename an org",
        })
    }
    /// Turns an org's notifications off. The default answers that this port cannot.
    async fn disable_notifications(&self, org_id: &OrgId) -> Result<(), Error> {
        let _ = org_id;
        Err(Error::Unsupported {
            what: "change notification settings",
        })
    }
    /// Requests made so far.
    fn requests(&self) -> u64;
}
