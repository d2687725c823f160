//! snyk-api-import's files, read and written in its formats and under its names
//! (`docs/api-facts/snyk-api-import-compat.md`).
//!
//! Reading ignores fields it does not know but keeps them (`extra`), so that a file read and
//! written again loses nothing; a malformed line is reported with its file and line number.
//! Log lines written here carry the anchor's standard fields (`name`, `hostname`, `pid`,
//! `level`, `msg`, `time`, `v`).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::act::journal::rfc3339;
use crate::error::Error;

mod orgs;
pub use orgs::{OrgCreation, create_orgs};

/// `snyk-created-orgs.json`.
pub const CREATED_ORGS_FILE: &str = "snyk-created-orgs.json";
/// `bitbucket-cloud-import-targets.json`.
pub const IMPORT_TARGETS_FILE: &str = "bitbucket-cloud-import-targets.json";
/// `imported-targets.log`: the resume key of `import`.
pub const IMPORTED_TARGETS_LOG: &str = "imported-targets.log";
/// The `name` field of log lines written here.
pub const LOGGER_NAME: &str = "bb-snyk-mirror";

/// `group-<groupId>-bitbucket-cloud-orgs.json`.
pub fn orgs_data_file(group_id: &str) -> String {
    format!("group-{group_id}-bitbucket-cloud-orgs.json")
}

/// `<groupId>.created-orgs.log`.
pub fn created_orgs_log(group_id: &str) -> String {
    format!("{group_id}.created-orgs.log")
}

/// `<groupId>.failed-to-create-orgs.log`.
pub fn failed_orgs_log(group_id: &str) -> String {
    format!("{group_id}.failed-to-create-orgs.log")
}

/// `<orgId>.import-jobs.log`.
pub fn import_jobs_log(org_id: &str) -> String {
    format!("{org_id}.import-jobs.log")
}

/// `<orgId>.imported-projects.log`.
pub fn imported_projects_log(org_id: &str) -> String {
    format!("{org_id}.imported-projects.log")
}

/// `<orgId>.failed-projects.log`.
pub fn failed_projects_log(org_id: &str) -> String {
    format!("{org_id}.failed-projects.log")
}

/// One org of the orgs data file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgDataEntry {
    /// The org name (the workspace slug).
    pub name: String,
    /// The group.
    #[serde(rename = "groupId")]
    pub group_id: String,
    /// A template org.
    #[serde(
        rename = "sourceOrgId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_org_id: Option<String>,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `group-<groupId>-bitbucket-cloud-orgs.json` (written by `orgs:data`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgsData {
    /// The orgs to create.
    pub orgs: Vec<OrgDataEntry>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One org of `snyk-created-orgs.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedOrg {
    /// The org name.
    pub name: String,
    /// The org id.
    pub id: String,
    /// The org id again (the anchor writes both).
    #[serde(rename = "orgId")]
    pub org_id: String,
    /// Type → integration id.
    #[serde(default)]
    pub integrations: BTreeMap<String, String>,
    /// The group.
    #[serde(rename = "groupId")]
    pub group_id: String,
    /// The name asked for.
    #[serde(rename = "origName")]
    pub orig_name: String,
    /// Fields this version does not know (`slug`, `url`, `group`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `snyk-created-orgs.json` (written by `orgs:create`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreatedOrgs {
    /// The orgs.
    #[serde(rename = "orgData")]
    pub org_data: Vec<CreatedOrg>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `owner`, `name`, `branch` of a target.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetRef {
    /// The workspace slug.
    pub owner: String,
    /// The repository slug.
    pub name: String,
    /// The branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// A manifest path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The path.
    pub path: String,
}

/// One target of the import targets file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportTargetEntry {
    /// The repository.
    pub target: TargetRef,
    /// The integration.
    #[serde(rename = "integrationId")]
    pub integration_id: String,
    /// The org.
    #[serde(rename = "orgId")]
    pub org_id: String,
    /// Only these manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileRef>>,
    /// Paths to leave out.
    #[serde(
        rename = "exclusionGlobs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclusion_globs: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImportTargetEntry {
    /// The resume key: `orgId:integrationId:name:owner:branch`.
    pub fn target_id(&self) -> String {
        target_id(&self.org_id, &self.integration_id, &self.target)
    }
}

/// `bitbucket-cloud-import-targets.json` (written by `import:data`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportTargets {
    /// The targets.
    pub targets: Vec<ImportTargetEntry>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The resume key of a target: `orgId:integrationId:name:owner:branch`.
pub fn target_id(org_id: &str, integration_id: &str, target: &TargetRef) -> String {
    format!(
        "{org_id}:{integration_id}:{}:{}:{}",
        target.name,
        target.owner,
        target.branch.as_deref().unwrap_or("")
    )
}

/// A line of `imported-targets.log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportedTargetLine {
    /// The repository.
    pub target: TargetRef,
    /// The job URL, or `null` for targets found in Snyk.
    #[serde(rename = "locationUrl", default)]
    pub location_url: Option<String>,
    /// The org.
    #[serde(rename = "orgId")]
    pub org_id: String,
    /// The integration.
    #[serde(rename = "integrationId")]
    pub integration_id: String,
    /// The resume key.
    #[serde(rename = "targetId")]
    pub target_id: String,
    /// `Target requested for import` or `Target exists in Snyk`.
    pub msg: String,
    /// Other fields (`name`, `hostname`, `pid`, `level`, `time`, `v`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A line of `<groupId>.created-orgs.log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedOrgLine {
    /// The org name.
    pub name: String,
    /// The org id.
    pub id: String,
    /// `type:id` of each integration.
    #[serde(default)]
    pub integrations: Vec<String>,
    /// `Created org`.
    pub msg: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A line of `<groupId>.failed-to-create-orgs.log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedOrgLine {
    /// The name asked for.
    #[serde(rename = "origName")]
    pub orig_name: String,
    /// The group.
    #[serde(rename = "groupId")]
    pub group_id: String,
    /// Why.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    /// `Failed to create org`.
    pub msg: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A line of `<orgId>.import-jobs.log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportJobLine {
    /// The org.
    #[serde(rename = "orgId")]
    pub org_id: String,
    /// The job URL.
    #[serde(rename = "pollingUrl")]
    pub polling_url: String,
    /// `Kicked off import`.
    pub msg: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A line of `<orgId>.imported-projects.log` or `<orgId>.failed-projects.log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectLine {
    /// The org.
    #[serde(rename = "orgId")]
    pub org_id: String,
    /// The job URL.
    #[serde(rename = "locationUrl", default)]
    pub location_url: Option<String>,
    /// The project id (imported projects).
    #[serde(rename = "projectId", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The manifest.
    #[serde(rename = "targetFile", default)]
    pub target_file: Option<String>,
    /// Whether it was created.
    pub success: bool,
    /// The project's address (empty for failures).
    #[serde(rename = "projectUrl", default)]
    pub project_url: Option<String>,
    /// Snyk's message (failures).
    #[serde(
        rename = "userMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_message: Option<String>,
    /// `Imported project` or `Error importing project`.
    pub msg: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The anchor's standard log fields: `name`, `hostname`, `pid`, `level` (30 info, 50 error),
/// `time`, `v`.
pub fn log_fields(level: u8) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(LOGGER_NAME));
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    m.insert("hostname".into(), Value::from(hostname));
    m.insert("pid".into(), Value::from(std::process::id()));
    m.insert("level".into(), Value::from(level));
    m.insert("time".into(), Value::from(rfc3339(SystemTime::now())));
    m.insert("v".into(), Value::from(0));
    m
}

/// The fields of the org logs (`created-orgs.log`, `failed-to-create-orgs.log`), which in the
/// anchor carry only `time` and `v` (their `name` is the org's).
pub fn time_fields() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("time".into(), Value::from(rfc3339(SystemTime::now())));
    m.insert("v".into(), Value::from(0));
    m
}

fn malformed(path: &Path, line: usize, e: impl std::fmt::Display) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    }
}

/// Reads a whole JSON file into `T`.
///
/// # Errors
/// [`Error::Io`] when it cannot be read; [`Error::Malformed`] with the line of a syntax error
/// or a missing or mistyped field.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| malformed(path, e.line().max(1), e))
}

/// Writes `value` as minified JSON (as the anchor does), replacing the file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Config(format!("cannot encode {}: {e}", path.display())))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Reads a JSON-lines file; blank lines are skipped.
///
/// # Errors
/// [`Error::Malformed`] naming the first bad line; a missing file reads as empty.
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| malformed(path, i + 1, e)))
        .collect()
}

/// Appends one JSON line and flushes it to disk.
///
/// # Errors
/// [`Error::Io`].
pub fn append_line<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let mut text = serde_json::to_string(value)
        .map_err(|e| Error::Config(format!("cannot encode a line of {}: {e}", path.display())))?;
    text.push('\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// The resume keys in `imported-targets.log`: a target is skipped when its key appears,
/// whatever `msg` says.
///
/// # Errors
/// As [`read_lines`].
pub fn imported_target_ids(path: &Path) -> Result<std::collections::HashSet<String>, Error> {
    Ok(read_lines::<ImportedTargetLine>(path)?
        .into_iter()
        .map(|l| l.target_id)
        .collect())
}
