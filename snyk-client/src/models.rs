//! Models of Snyk's v1 and REST answers, and the import request.
//!
//! Fields the API may omit are `Option`; unknown fields are ignored.

use std::collections::BTreeMap;
use std::fmt;

use api_support::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;

/// An organization, from v1 or REST.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Org {
    /// The org id (a UUID).
    pub id: String,
    /// The name (not unique).
    pub name: String,
    /// The slug (unique).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// The org's web address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When it was created (a time that does not parse is `None`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "created_at",
        deserialize_with = "api_support::time::lenient"
    )]
    pub created: Option<Timestamp>,
    /// The group it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Whether it is a personal org (outside any group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_personal: Option<bool>,
}

impl Org {
    /// An org with an id and a name. For tests and in-memory fakes.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            ..Self::default()
        }
    }
}

/// `GET /v1/group/{groupId}/orgs`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct GroupOrgsV1 {
    #[serde(default)]
    pub(crate) orgs: Vec<Org>,
}

/// The group of a created org.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct GroupRef {
    #[serde(default)]
    pub(crate) id: Option<String>,
}

/// `POST /v1/org`'s answer.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CreatedOrgV1 {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) slug: Option<String>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub(crate) created: Option<Timestamp>,
    #[serde(default)]
    pub(crate) group: Option<GroupRef>,
}

impl From<CreatedOrgV1> for Org {
    fn from(c: CreatedOrgV1) -> Self {
        Org {
            id: c.id,
            name: c.name,
            slug: c.slug,
            url: c.url,
            created: c.created,
            group_id: c.group.and_then(|g| g.id),
            is_personal: Some(false),
        }
    }
}

/// The kinds of Bitbucket Cloud integration a Snyk org can have.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IntegrationType {
    /// `bitbucket-cloud`: e-mail + API token, configured per org.
    BitbucketCloud,
    /// `bitbucket-connect-app`: the Bitbucket Cloud App (set up in the web UI only). Users also
    /// call it `bitbucket-cloud-app`.
    BitbucketConnectApp,
    /// Any other integration type, as Snyk names it.
    Other(String),
}

impl IntegrationType {
    /// The name the API uses.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BitbucketCloud => "bitbucket-cloud",
            Self::BitbucketConnectApp => "bitbucket-connect-app",
            Self::Other(s) => s,
        }
    }

    /// Reads a type name; `bitbucket-cloud-app` is accepted for the App.
    pub fn parse(name: &str) -> Self {
        match name.trim() {
            "bitbucket-cloud" => Self::BitbucketCloud,
            "bitbucket-connect-app" | "bitbucket-cloud-app" => Self::BitbucketConnectApp,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Default for IntegrationType {
    /// `bitbucket-cloud`, the integration most estates import through.
    fn default() -> Self {
        Self::BitbucketCloud
    }
}

/// In files people read and write (configurations, plans), the App is `bitbucket-cloud-app`,
/// the name users give it; [`IntegrationType::as_str`] is the API's name. Both are read back.
impl Serialize for IntegrationType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            Self::BitbucketConnectApp => "bitbucket-cloud-app",
            other => other.as_str(),
        })
    }
}

impl<'de> Deserialize<'de> for IntegrationType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::parse(&name))
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An org's integrations: type name → integration id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Integrations(pub BTreeMap<String, String>);

impl Integrations {
    /// The id of the integration of `kind`, if the org has one.
    pub fn id_of(&self, kind: &IntegrationType) -> Option<&str> {
        self.0.get(kind.as_str()).map(String::as_str)
    }
}

/// An integration's settings, as Snyk sends them (for example `pullRequestTestEnabled`,
/// `autoRemediationPrs`). Kept whole so that an update sends back what it read.
pub type IntegrationSettings = serde_json::Map<String, serde_json::Value>;

/// One manifest file to import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportFile {
    /// Its path in the repository, such as `app/package.json`.
    pub path: String,
}

/// The repository to import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportTarget {
    /// The Bitbucket workspace slug.
    pub owner: String,
    /// The repository slug.
    pub name: String,
    /// The branch; the repository's main branch in the mirror.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// The body of `POST …/import` for Bitbucket Cloud and the Bitbucket Cloud App. It has exactly
/// the keys Snyk accepts (`target` with `owner`, `name`, `branch`; `files`; `exclusionGlobs`):
/// any other key makes Snyk answer 400 `invalidParamData`, so none can be added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportRequest {
    target: ImportTarget,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<ImportFile>>,
    #[serde(rename = "exclusionGlobs", skip_serializing_if = "Option::is_none")]
    exclusion_globs: Option<String>,
}

/// Snyk's limits on `exclusionGlobs`.
const MAX_GLOBS: usize = 10;
const MAX_GLOB_LEN: usize = 100;

impl ImportRequest {
    /// Imports `workspace/repository` at `branch` (all manifests Snyk finds).
    pub fn new(workspace: &str, repository: &str, branch: Option<&str>) -> Self {
        Self {
            target: ImportTarget {
                owner: workspace.to_owned(),
                name: repository.to_owned(),
                branch: branch.map(str::to_owned),
            },
            files: None,
            exclusion_globs: None,
        }
    }

    /// Only these manifest files.
    pub fn with_files<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let files: Vec<ImportFile> = paths
            .into_iter()
            .map(|p| ImportFile { path: p.into() })
            .collect();
        self.files = (!files.is_empty()).then_some(files);
        self
    }

    /// Skips paths matching these globs (Snyk allows at most 10, each at most 100 characters).
    ///
    /// # Errors
    /// [`Error::Config`] beyond those limits.
    pub fn with_exclusion_globs<I, S>(mut self, globs: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let globs: Vec<String> = globs
            .into_iter()
            .map(|g| g.as_ref().trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect();
        if globs.len() > MAX_GLOBS {
            return Err(Error::Config(format!(
                "exclusionGlobs has {} entries; Snyk accepts at most {MAX_GLOBS}",
                globs.len()
            )));
        }
        if let Some(long) = globs.iter().find(|g| g.len() > MAX_GLOB_LEN) {
            return Err(Error::Config(format!(
                "the exclusion glob `{long}` is longer than {MAX_GLOB_LEN} characters"
            )));
        }
        if let Some(bad) = globs.iter().find(|g| g.contains(',')) {
            return Err(Error::Config(format!(
                "the exclusion glob `{bad}` contains a comma, which separates globs"
            )));
        }
        self.exclusion_globs = (!globs.is_empty()).then(|| globs.join(", "));
        Ok(self)
    }

    /// The target.
    pub fn target(&self) -> &ImportTarget {
        &self.target
    }

    /// The files, if restricted.
    pub fn files(&self) -> Option<&[ImportFile]> {
        self.files.as_deref()
    }

    /// The exclusion globs as sent.
    pub fn exclusion_globs(&self) -> Option<&str> {
        self.exclusion_globs.as_deref()
    }
}

/// Where an accepted import job lives: parsed from the `Location` header, polled against the
/// configured API host. In files (a journal, a log) it is one string, `org/integration/job`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobHandle {
    /// The org id.
    pub org_id: String,
    /// The integration id.
    pub integration_id: String,
    /// The job id.
    pub job_id: JobId,
}

/// An import job's id, as Snyk gives it in the job's `Location`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// The id as the API takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

/// A job reference that is not `org/integration/job`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a job reference (org/integration/job)")]
pub struct BadJobReference(pub String);

impl fmt::Display for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.org_id, self.integration_id, self.job_id)
    }
}

impl From<JobHandle> for String {
    fn from(h: JobHandle) -> Self {
        h.to_string()
    }
}

impl TryFrom<String> for JobHandle {
    type Error = BadJobReference;

    fn try_from(text: String) -> Result<Self, BadJobReference> {
        text.parse()
    }
}

impl std::str::FromStr for JobHandle {
    type Err = BadJobReference;

    /// Reads `org/integration/job`.
    fn from_str(text: &str) -> Result<Self, BadJobReference> {
        let mut parts = text.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(o), Some(i), Some(j), None)
                if !o.is_empty() && !i.is_empty() && !j.is_empty() =>
            {
                Ok(Self {
                    org_id: o.to_owned(),
                    integration_id: i.to_owned(),
                    job_id: j.into(),
                })
            }
            _ => Err(BadJobReference(text.to_owned())),
        }
    }
}

impl JobHandle {
    /// Reads `…/org/{orgId}/integrations/{integrationId}/import/{jobId}` from a `Location`
    /// (absolute or relative, `/v1/` or `/api/v1/`, any host).
    pub fn from_location(location: &str) -> Option<Self> {
        let path = match url::Url::parse(location) {
            Ok(u) => u.path().to_owned(),
            Err(_) => location
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        segments.windows(6).find_map(|w| match w {
            ["org", org, "integrations", integration, "import", job] => Some(Self {
                org_id: (*org).to_owned(),
                integration_id: (*integration).to_owned(),
                job_id: (*job).into(),
            }),
            _ => None,
        })
    }
}

/// The state of an import job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ImportStatus {
    /// Still running.
    Pending,
    /// Finished (each log says per repository what happened).
    Complete,
    /// Failed.
    Failed,
    /// Aborted.
    Aborted,
    /// A state this client does not know; treated as not final.
    #[serde(other)]
    Unknown,
}

impl ImportStatus {
    /// Whether the job has finished: complete, failed or aborted.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Aborted)
    }
}

/// One project an import created or tried to create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImportedProject {
    /// The manifest, such as `package.json`.
    #[serde(default)]
    pub target_file: Option<String>,
    /// Whether the project was created.
    #[serde(default)]
    pub success: Option<bool>,
    /// The project's web address.
    #[serde(default)]
    pub project_url: Option<String>,
    /// The project id.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Snyk's message when it failed.
    #[serde(default)]
    pub user_message: Option<String>,
}

/// The log of one repository in an import job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ImportLog {
    /// `workspace/repository`.
    #[serde(default)]
    pub name: Option<String>,
    /// When it started (a time that does not parse is `None`).
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub created: Option<Timestamp>,
    /// Its status.
    #[serde(default)]
    pub status: Option<String>,
    /// Whether the list of projects was cut.
    #[serde(default)]
    pub truncated: Option<bool>,
    /// The projects.
    #[serde(default)]
    pub projects: Vec<ImportedProject>,
}

/// An import job's state (`GET …/import/{jobId}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ImportJob {
    /// The job id.
    #[serde(default)]
    pub id: Option<String>,
    /// The state.
    pub status: ImportStatus,
    /// When it was created (a time that does not parse is `None`).
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub created: Option<Timestamp>,
    /// One log per repository.
    #[serde(default)]
    pub logs: Vec<ImportLog>,
}

impl ImportJob {
    /// The projects created successfully.
    pub fn created_projects(&self) -> impl Iterator<Item = &ImportedProject> {
        self.logs
            .iter()
            .flat_map(|l| &l.projects)
            .filter(|p| p.success == Some(true))
    }

    /// Snyk's messages for what failed.
    pub fn failure_messages(&self) -> Vec<String> {
        self.logs
            .iter()
            .flat_map(|l| &l.projects)
            .filter(|p| p.success == Some(false))
            .filter_map(|p| p.user_message.clone())
            .collect()
    }
}

/// A target (a repository imported into an org), from REST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Target {
    /// The target id.
    pub id: String,
    /// `workspace/repository` for Bitbucket targets.
    pub display_name: String,
    /// The repository address; usually `None` for SCM targets.
    pub url: Option<String>,
    /// Whether the repository is private.
    pub is_private: Option<bool>,
    /// When it was created.
    pub created_at: Option<Timestamp>,
    /// The integration type it was imported through.
    pub integration_type: Option<String>,
    /// The integration id.
    pub integration_id: Option<String>,
}

/// A project (one manifest of a target), from REST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Project {
    /// The project id.
    pub id: String,
    /// `workspace/repository:path/to/manifest` for SCM projects.
    pub name: String,
    /// The project type, such as `npm`.
    pub project_type: Option<String>,
    /// The manifest path.
    pub target_file: Option<String>,
    /// The branch.
    pub target_reference: Option<String>,
    /// The origin, such as `bitbucket-cloud`.
    pub origin: Option<String>,
    /// The status (`active`, `inactive`).
    pub status: Option<String>,
    /// The target id.
    pub target_id: Option<String>,
    /// What people set on it: tags, attributes, test frequency, owner.
    pub settings: ProjectSettings,
}

/// What a security team sets on a project besides its ignores: tags (Enterprise plans),
/// attributes, how often it is tested, and its owner. Read from the REST project listing,
/// written with REST `PATCH /orgs/{org_id}/projects/{project_id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProjectSettings {
    /// Tags, `key` → `value`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// `business_criticality`: critical, high, medium, low.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criticality: Vec<String>,
    /// `environment`: frontend, backend, internal, external, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
    /// `lifecycle`: production, development, sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<String>,
    /// `daily`, `weekly` or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_frequency: Option<String>,
    /// The owning user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl ProjectSettings {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One ignore of a project: an issue (at a path, or `*`) that is not reported, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ignore {
    /// The issue, such as `SNYK-JS-LODASH-567746` (the same in every project).
    pub issue_id: String,
    /// The dependency path it applies to, or `*`.
    pub path: String,
    /// Why, in the team's words.
    #[serde(default)]
    pub reason: String,
    /// `not-vulnerable`, `wont-fix` or `temporary-ignore`.
    #[serde(default)]
    pub reason_type: String,
    /// Whether it lapses once a fix is available.
    #[serde(default)]
    pub disregard_if_fixable: bool,
    /// When it lapses (ISO date), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Who added it (Snyk sets it: it cannot be written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_by: Option<String>,
    /// When it was added (Snyk sets it; a time that does not parse is `None`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "api_support::time::lenient"
    )]
    pub created: Option<Timestamp>,
}

impl Ignore {
    /// An ignore of `issue_id` at `path` (`*` for every path).
    pub fn new(issue_id: &str, path: &str, reason: &str, reason_type: &str) -> Self {
        Self {
            issue_id: issue_id.to_owned(),
            path: path.to_owned(),
            reason: reason.to_owned(),
            reason_type: reason_type.to_owned(),
            disregard_if_fixable: false,
            expires: None,
            ignored_by: None,
            created: None,
        }
    }

    /// Reads v1's `GET …/ignores` answer: issue id → a list of `{path: {reason, …}}`.
    pub fn from_v1(answer: &serde_json::Value) -> Vec<Self> {
        let mut out = Vec::new();
        for (issue, entries) in answer.as_object().into_iter().flatten() {
            for entry in entries.as_array().into_iter().flatten() {
                for (path, v) in entry.as_object().into_iter().flatten() {
                    out.push(Self::from_v1_entry(issue, path, v));
                }
            }
        }
        out
    }

    fn from_v1_entry(issue: &str, path: &str, v: &serde_json::Value) -> Self {
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let by = v.get("ignoredBy");
        let who = ["email", "name", "id"]
            .iter()
            .find_map(|k| by.and_then(|b| b.get(*k)).and_then(|x| x.as_str()));
        Self {
            issue_id: issue.to_owned(),
            path: path.to_owned(),
            reason: text("reason").unwrap_or_default(),
            reason_type: text("reasonType").unwrap_or_default(),
            disregard_if_fixable: v
                .get("disregardIfFixable")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            expires: text("expires"),
            ignored_by: who.map(str::to_owned),
            created: text("created").and_then(|t| api_support::time::parse(&t)),
        }
    }
}

/// One entry of an org's audit log (REST `audit_logs/search`): who did what, and when.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AuditLogEntry {
    /// When.
    pub created: Timestamp,
    /// The event, such as `org.project.stop_monitor` or `org.target.delete`.
    pub event: String,
    /// The org.
    #[serde(default)]
    pub org_id: Option<String>,
    /// The project, for project events.
    #[serde(default)]
    pub project_id: Option<String>,
    /// The user who did it, when Snyk says.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The event's details (their shape depends on the event).
    #[serde(default)]
    pub content: serde_json::Value,
}

impl AuditLogEntry {
    /// The user who did it: `user_id`, or the one the content names.
    pub fn user(&self) -> Option<&str> {
        self.user_id.as_deref().or_else(|| {
            ["user_id", "userId", "userPublicId"]
                .iter()
                .find_map(|k| self.content.get(*k).and_then(|v| v.as_str()))
        })
    }

    /// The target the content names, when it does.
    pub fn target_id(&self) -> Option<&str> {
        ["target_id", "targetId", "targetPublicId"]
            .iter()
            .find_map(|k| self.content.get(*k).and_then(|v| v.as_str()))
    }

    /// The name the content gives (a target's `display_name`, a project's name), when it does.
    pub fn name(&self) -> Option<&str> {
        ["display_name", "displayName", "name", "targetName"]
            .iter()
            .find_map(|k| self.content.get(*k).and_then(|v| v.as_str()))
    }
}

/// REST (JSON:API) shapes.
pub(crate) mod rest {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub(crate) struct Document<T> {
        /// The items: an array, or (audit-log search) an object holding them under `items`.
        #[serde(
            default = "Vec::new",
            deserialize_with = "items",
            bound(deserialize = "T: Deserialize<'de>")
        )]
        pub(crate) data: Vec<T>,
        #[serde(default)]
        pub(crate) links: Option<Links>,
    }

    /// A listing's `data`: the array itself, or `{"items": [...]}` (audit-log search).
    fn items<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: Deserialize<'de>,
    {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Data<T> {
            List(Vec<T>),
            Items {
                #[serde(default = "Vec::new")]
                items: Vec<T>,
            },
        }
        Ok(match Data::deserialize(d)? {
            Data::List(v) | Data::Items { items: v } => v,
        })
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct Single<T> {
        pub(crate) data: T,
    }

    #[derive(Debug, Default, Deserialize)]
    pub(crate) struct Links {
        #[serde(default)]
        pub(crate) next: Option<LinkValue>,
        #[serde(rename = "self", default)]
        pub(crate) self_link: Option<LinkValue>,
    }

    /// A link is a string or an object with `href`.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    pub(crate) enum LinkValue {
        Text(String),
        Object { href: String },
    }

    impl LinkValue {
        pub(crate) fn href(&self) -> &str {
            match self {
                Self::Text(s) | Self::Object { href: s } => s,
            }
        }
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct OrgResource {
        pub(crate) id: String,
        pub(crate) attributes: OrgAttributes,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct OrgAttributes {
        pub(crate) name: String,
        #[serde(default)]
        pub(crate) slug: Option<String>,
        #[serde(default)]
        pub(crate) is_personal: Option<bool>,
        #[serde(default)]
        pub(crate) group_id: Option<String>,
        #[serde(default, deserialize_with = "api_support::time::lenient")]
        pub(crate) created_at: Option<api_support::time::Timestamp>,
    }

    impl From<OrgResource> for super::Org {
        fn from(r: OrgResource) -> Self {
            super::Org {
                id: r.id,
                name: r.attributes.name,
                slug: r.attributes.slug,
                url: None,
                created: r.attributes.created_at,
                group_id: r.attributes.group_id,
                is_personal: r.attributes.is_personal,
            }
        }
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct TargetResource {
        pub(crate) id: String,
        pub(crate) attributes: TargetAttributes,
        #[serde(default)]
        pub(crate) relationships: Option<TargetRelationships>,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct TargetAttributes {
        pub(crate) display_name: String,
        #[serde(default)]
        pub(crate) url: Option<String>,
        #[serde(default)]
        pub(crate) is_private: Option<bool>,
        #[serde(default, deserialize_with = "api_support::time::lenient")]
        pub(crate) created_at: Option<api_support::time::Timestamp>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub(crate) struct TargetRelationships {
        #[serde(default)]
        pub(crate) integration: Option<Related>,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct Related {
        #[serde(default)]
        pub(crate) data: Option<RelatedData>,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct RelatedData {
        #[serde(default)]
        pub(crate) id: Option<String>,
        #[serde(default)]
        pub(crate) attributes: Option<RelatedAttributes>,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct RelatedAttributes {
        #[serde(default)]
        pub(crate) integration_type: Option<String>,
    }

    impl From<TargetResource> for super::Target {
        fn from(r: TargetResource) -> Self {
            let integration = r
                .relationships
                .and_then(|rel| rel.integration)
                .and_then(|i| i.data);
            super::Target {
                id: r.id,
                display_name: r.attributes.display_name,
                url: r.attributes.url,
                is_private: r.attributes.is_private,
                created_at: r.attributes.created_at,
                integration_type: integration
                    .as_ref()
                    .and_then(|d| d.attributes.as_ref())
                    .and_then(|a| a.integration_type.clone()),
                integration_id: integration.and_then(|d| d.id),
            }
        }
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct ProjectResource {
        pub(crate) id: String,
        pub(crate) attributes: ProjectAttributes,
        #[serde(default)]
        pub(crate) relationships: Option<ProjectRelationships>,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct ProjectAttributes {
        pub(crate) name: String,
        #[serde(rename = "type", default)]
        pub(crate) project_type: Option<String>,
        #[serde(default)]
        pub(crate) target_file: Option<String>,
        #[serde(default)]
        pub(crate) target_reference: Option<String>,
        #[serde(default)]
        pub(crate) origin: Option<String>,
        #[serde(default)]
        pub(crate) status: Option<String>,
        #[serde(default)]
        pub(crate) tags: Vec<TagValue>,
        #[serde(default)]
        pub(crate) business_criticality: Vec<String>,
        #[serde(default)]
        pub(crate) environment: Vec<String>,
        #[serde(default)]
        pub(crate) lifecycle: Vec<String>,
        #[serde(default)]
        pub(crate) settings: Option<serde_json::Value>,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct TagValue {
        pub(crate) key: String,
        #[serde(default)]
        pub(crate) value: String,
    }

    #[derive(Debug, Default, Deserialize)]
    pub(crate) struct ProjectRelationships {
        #[serde(default)]
        pub(crate) target: Option<Related>,
        #[serde(default)]
        pub(crate) owner: Option<Related>,
    }

    impl From<ProjectResource> for super::Project {
        fn from(r: ProjectResource) -> Self {
            let a = &r.attributes;
            let settings = super::ProjectSettings {
                tags: a
                    .tags
                    .iter()
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect(),
                criticality: a.business_criticality.clone(),
                environment: a.environment.clone(),
                lifecycle: a.lifecycle.clone(),
                test_frequency: a
                    .settings
                    .as_ref()
                    .and_then(|s| s.pointer("/recurring_tests/frequency"))
                    .and_then(|f| f.as_str())
                    .map(str::to_owned),
                owner: r
                    .relationships
                    .as_ref()
                    .and_then(|rel| rel.owner.as_ref())
                    .and_then(|o| o.data.as_ref())
                    .and_then(|d| d.id.clone()),
            };
            super::Project {
                settings,
                id: r.id,
                name: r.attributes.name,
                project_type: r.attributes.project_type,
                target_file: r.attributes.target_file,
                target_reference: r.attributes.target_reference,
                origin: r.attributes.origin,
                status: r.attributes.status,
                target_id: r
                    .relationships
                    .and_then(|rel| rel.target)
                    .and_then(|t| t.data)
                    .and_then(|d| d.id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_handle_is_one_string_in_files_and_a_bad_one_is_named() {
        let h = JobHandle::from_location("https://api.snyk.io/v1/org/o1/integrations/i1/import/j1")
            .unwrap();
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(text, "\"o1/i1/j1\"");
        assert_eq!(serde_json::from_str::<JobHandle>(&text).unwrap(), h);
        for bad in ["\"o1/i1\"", "\"o1//j1\"", "\"a/b/c/d\""] {
            let e = serde_json::from_str::<JobHandle>(bad).unwrap_err();
            assert!(e.to_string().contains("is not a job reference"), "{e}");
        }
    }

    #[test]
    fn integration_types_are_written_as_people_name_them_and_read_by_either_name() {
        for (t, written) in [
            (IntegrationType::BitbucketCloud, "\"bitbucket-cloud\""),
            (
                IntegrationType::BitbucketConnectApp,
                "\"bitbucket-cloud-app\"",
            ),
            (IntegrationType::Other("github".into()), "\"github\""),
        ] {
            assert_eq!(serde_json::to_string(&t).unwrap(), written);
            assert_eq!(serde_json::from_str::<IntegrationType>(written).unwrap(), t);
        }
        assert_eq!(
            serde_json::from_str::<IntegrationType>("\"bitbucket-connect-app\"").unwrap(),
            IntegrationType::BitbucketConnectApp
        );
        assert_eq!(IntegrationType::default(), IntegrationType::BitbucketCloud);
    }

    #[test]
    fn an_audit_log_page_holds_its_items_under_data_items() {
        // The shape of REST `audit_logs/search` (the spec's `AuditLogSearch`): `data` is an
        // object, and `user_id` may be missing from an item.
        let page: rest::Document<AuditLogEntry> = serde_json::from_str(
            r#"{"jsonapi":{"version":"1.0"},"data":{"items":[
                {"created":"2026-12-01T10:00:00Z","event":"org.target.delete","org_id":"o","content":{"target_id":"t1","display_name":"acme/api","userPublicId":"u-9"}},
                {"created":"2026-12-01T09:00:00Z","event":"org.project.stop_monitor","project_id":"p1","user_id":"u-1"}]},
              "links":{"next":"/orgs/o/audit_logs/search?cursor=2"}}"#,
        )
        .unwrap();
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.data[0].user(), Some("u-9"));
        assert_eq!(page.data[0].target_id(), Some("t1"));
        assert_eq!(page.data[0].name(), Some("acme/api"));
        assert_eq!(page.data[1].user(), Some("u-1"));
        assert!(page.links.and_then(|l| l.next).is_some());
        // Listings whose `data` is an array read as before.
        let list: rest::Document<serde_json::Value> =
            serde_json::from_str(r#"{"data":[{"id":"a"}]}"#).unwrap();
        assert_eq!(list.data.len(), 1);
    }

    #[test]
    fn import_bodies_have_only_the_accepted_keys() {
        let body = ImportRequest::new("acme", "api", Some("main"))
            .with_files(["package.json"])
            .with_exclusion_globs(["fixtures", "tests"])
            .unwrap();
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "target": {"owner": "acme", "name": "api", "branch": "main"},
                "files": [{"path": "package.json"}],
                "exclusionGlobs": "fixtures, tests"
            })
        );
        let bare = serde_json::to_value(ImportRequest::new("acme", "api", None)).unwrap();
        assert_eq!(
            bare,
            serde_json::json!({"target": {"owner": "acme", "name": "api"}})
        );
        assert!(
            ImportRequest::new("a", "b", None)
                .with_exclusion_globs((0..11).map(|i| format!("g{i}")))
                .is_err()
        );
        assert!(
            ImportRequest::new("a", "b", None)
                .with_exclusion_globs(["x".repeat(101)])
                .is_err()
        );
    }

    #[test]
    fn job_handles_parse_from_every_location_form() {
        let want = JobHandle {
            org_id: "o1".into(),
            integration_id: "i1".into(),
            job_id: "j1".into(),
        };
        for loc in [
            "https://app.snyk.io/api/v1/org/o1/integrations/i1/import/j1",
            "https://api.eu.snyk.io/v1/org/o1/integrations/i1/import/j1",
            "/api/v1/org/o1/integrations/i1/import/j1",
            "http://localhost:9/api/v1/org/o1/integrations/i1/import/j1?x=1",
        ] {
            assert_eq!(JobHandle::from_location(loc).as_ref(), Some(&want), "{loc}");
        }
        assert_eq!(JobHandle::from_location("https://x/api/v1/org/o1"), None);
    }

    #[test]
    fn statuses_and_integration_types() {
        let job: ImportJob = serde_json::from_str(
            r#"{"id":"j","status":"weird","logs":[{"name":"a/b","projects":[{"targetFile":"p","success":false,"userMessage":"no"}]}]}"#,
        )
        .unwrap();
        assert_eq!(job.status, ImportStatus::Unknown);
        assert!(!job.status.is_final());
        assert_eq!(job.failure_messages(), ["no"]);
        assert!(ImportStatus::Aborted.is_final());
        assert_eq!(
            IntegrationType::parse("bitbucket-cloud-app"),
            IntegrationType::BitbucketConnectApp
        );
        assert_eq!(
            IntegrationType::BitbucketConnectApp.as_str(),
            "bitbucket-connect-app"
        );
    }
}
