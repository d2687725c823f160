//! Endpoint descriptions: plain values that say method, path, query and body, and perform no
//! I/O. v1 paths are relative to `<host>/v1`, REST paths to `<host>/rest`.

use std::borrow::Cow;

use api_support::{Body, Endpoint, Error, path_segment};
use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::models::{ImportRequest, IntegrationSettings};

/// The REST API version every REST call pins.
pub const REST_VERSION: &str = "2024-10-15";

/// The JSON:API media type.
pub const JSON_API: &str = "application/vnd.api+json";

/// The integration types that mean Bitbucket Cloud, as REST `source_types`.
pub const BITBUCKET_SOURCE_TYPES: &str = "bitbucket-cloud,bitbucket-connect-app";

fn seg(s: &str) -> String {
    path_segment(s)
}

/// v1 `GET /group/{groupId}/orgs?perPage=100&page=N[&name=prefix]`.
#[derive(Clone, Debug)]
pub struct GroupOrgsV1 {
    /// The group id.
    pub group_id: String,
    /// The page, from 1.
    pub page: u32,
    /// Orgs a page (100).
    pub per_page: u32,
    /// Only names starting with this.
    pub name: Option<String>,
}

impl Endpoint for GroupOrgsV1 {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("group/{}/orgs", seg(&self.group_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("perPage", self.per_page.to_string()),
            ("page", self.page.to_string()),
        ];
        if let Some(n) = &self.name {
            q.push(("name", n.clone()));
        }
        q
    }
}

/// REST `GET /groups/{group_id}/orgs?version=…&limit=100[&name=…]`.
#[derive(Clone, Debug)]
pub struct GroupOrgs {
    /// The group id.
    pub group_id: String,
    /// Only names containing this.
    pub name: Option<String>,
}

impl Endpoint for GroupOrgs {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("groups/{}/orgs", seg(&self.group_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("version", REST_VERSION.to_owned()),
            ("limit", "100".to_owned()),
        ];
        if let Some(n) = &self.name {
            q.push(("name", n.clone()));
        }
        q
    }
}

/// v1 `POST /org`: create an org in a group (never a personal org), optionally copying a
/// template org's integrations and settings.
#[derive(Clone, Debug)]
pub struct CreateOrg {
    /// The name (1 to 60 characters).
    pub name: String,
    /// The group.
    pub group_id: String,
    /// The template org.
    pub source_org_id: Option<String>,
}

impl Endpoint for CreateOrg {
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Borrowed("org")
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        let mut body = json!({"name": self.name, "groupId": self.group_id});
        if let Some(source) = &self.source_org_id {
            body["sourceOrgId"] = json!(source);
        }
        Body::json(&body).map(Some)
    }
}

/// REST `GET /orgs/{org_id}?version=…`.
#[derive(Clone, Debug)]
pub struct GetOrg {
    /// The org id.
    pub org_id: String,
}

impl Endpoint for GetOrg {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("orgs/{}", seg(&self.org_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("version", REST_VERSION.to_owned())]
    }
}

/// v1 `DELETE /org/{orgId}`: only for an org without projects.
#[derive(Clone, Debug)]
pub struct DeleteOrg {
    /// The org id.
    pub org_id: String,
}

impl Endpoint for DeleteOrg {
    fn method(&self) -> Method {
        Method::DELETE
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("org/{}", seg(&self.org_id)))
    }
}

/// v1 `GET /org/{orgId}/integrations`: type → id.
#[derive(Clone, Debug)]
pub struct ListIntegrations {
    /// The org id.
    pub org_id: String,
}

impl Endpoint for ListIntegrations {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("org/{}/integrations", seg(&self.org_id)))
    }
}

fn bitbucket_credentials(email: &str, token: &SecretString) -> serde_json::Value {
    json!({
        "type": "bitbucket-cloud",
        "credentials": {"username": email, "password": token.expose_secret()},
    })
}

/// v1 `POST /org/{orgId}/integrations`: add a `bitbucket-cloud` integration with an Atlassian
/// e-mail and API token.
#[derive(Clone)]
pub struct AddBitbucketCloudIntegration {
    /// The org id.
    pub org_id: String,
    /// The Atlassian account e-mail.
    pub email: String,
    /// The API token (scopes `read:user:bitbucket`, `read:workspace:bitbucket`,
    /// `read:repository:bitbucket`).
    pub token: SecretString,
}

impl std::fmt::Debug for AddBitbucketCloudIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddBitbucketCloudIntegration")
            .field("org_id", &self.org_id)
            .field("email", &self.email)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Endpoint for AddBitbucketCloudIntegration {
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("org/{}/integrations", seg(&self.org_id)))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&bitbucket_credentials(&self.email, &self.token)).map(Some)
    }
}

/// v1 `PUT /org/{orgId}/integrations/{integrationId}`: new credentials for a `bitbucket-cloud`
/// integration.
#[derive(Clone)]
pub struct UpdateBitbucketCloudCredentials {
    /// The org id.
    pub org_id: String,
    /// The integration id.
    pub integration_id: String,
    /// The Atlassian account e-mail.
    pub email: String,
    /// The new API token.
    pub token: SecretString,
}

impl std::fmt::Debug for UpdateBitbucketCloudCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateBitbucketCloudCredentials")
            .field("org_id", &self.org_id)
            .field("integration_id", &self.integration_id)
            .field("email", &self.email)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Endpoint for UpdateBitbucketCloudCredentials {
    fn method(&self) -> Method {
        Method::PUT
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/integrations/{}",
            seg(&self.org_id),
            seg(&self.integration_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&bitbucket_credentials(&self.email, &self.token)).map(Some)
    }
}

/// v1 `POST /org/{orgId}/integrations/{integrationId}/clone`: copy an integration (with its
/// credentials) into another org of the same group.
#[derive(Clone, Debug)]
pub struct CloneIntegration {
    /// The org that has the integration.
    pub org_id: String,
    /// The integration id.
    pub integration_id: String,
    /// The org to copy it into.
    pub destination_org_id: String,
}

impl Endpoint for CloneIntegration {
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/integrations/{}/clone",
            seg(&self.org_id),
            seg(&self.integration_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&json!({"destinationOrgPublicId": self.destination_org_id})).map(Some)
    }
}

/// v1 `GET` or `PUT /org/{orgId}/integrations/{integrationId}/settings`.
#[derive(Clone, Debug)]
pub struct IntegrationSettingsEndpoint {
    /// The org id.
    pub org_id: String,
    /// The integration id.
    pub integration_id: String,
    /// `Some` to update (PUT), `None` to read (GET).
    pub update: Option<IntegrationSettings>,
}

impl Endpoint for IntegrationSettingsEndpoint {
    fn method(&self) -> Method {
        if self.update.is_some() {
            Method::PUT
        } else {
            Method::GET
        }
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/integrations/{}/settings",
            seg(&self.org_id),
            seg(&self.integration_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        self.update.as_ref().map(Body::json).transpose()
    }
}

/// v1 `PUT /org/{orgId}/notification-settings` turning every notification off.
#[derive(Clone, Debug)]
pub struct DisableNotifications {
    /// The org id.
    pub org_id: String,
}

impl Endpoint for DisableNotifications {
    fn method(&self) -> Method {
        Method::PUT
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("org/{}/notification-settings", seg(&self.org_id)))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&json!({
            "new-issues-remediations": {"enabled": false, "issueSeverity": "high", "issueType": "vuln"},
            "project-imported": {"enabled": false},
            "test-limit": {"enabled": false},
            "weekly-report": {"enabled": false},
        }))
        .map(Some)
    }
}

/// v1 `POST /org/{orgId}/integrations/{integrationId}/import`.
#[derive(Clone, Debug)]
pub struct Import {
    /// The org id.
    pub org_id: String,
    /// The integration id.
    pub integration_id: String,
    /// What to import.
    pub request: ImportRequest,
}

impl Endpoint for Import {
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/integrations/{}/import",
            seg(&self.org_id),
            seg(&self.integration_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&self.request).map(Some)
    }
}

/// v1 `GET /org/{orgId}/integrations/{integrationId}/import/{jobId}`.
#[derive(Clone, Debug)]
pub struct ImportJobStatus {
    /// The job.
    pub handle: crate::models::JobHandle,
}

impl Endpoint for ImportJobStatus {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/integrations/{}/import/{}",
            seg(&self.handle.org_id),
            seg(&self.handle.integration_id),
            seg(self.handle.job_id.as_str())
        ))
    }
}

/// REST `GET /orgs/{org_id}/targets` for Bitbucket source types, empty targets included.
#[derive(Clone, Debug)]
pub struct ListTargets {
    /// The org id.
    pub org_id: String,
    /// Comma-separated source types.
    pub source_types: String,
    /// A display-name prefix (compare exactly on the client: the filter is a prefix match).
    pub display_name: Option<String>,
}

impl Endpoint for ListTargets {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("orgs/{}/targets", seg(&self.org_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("version", REST_VERSION.to_owned()),
            ("limit", "100".to_owned()),
            ("source_types", self.source_types.clone()),
            ("exclude_empty", "false".to_owned()),
        ];
        if let Some(d) = &self.display_name {
            q.push(("display_name", d.clone()));
        }
        q
    }
}

/// REST `GET /orgs/{org_id}/audit_logs/search` (or `/groups/{group_id}/…`): the audit log
/// since `from`, newest first, only the given events (all when empty).
#[derive(Clone, Debug)]
pub struct SearchAuditLog {
    /// Whether `org_id` is a group's id (the group's log, all its orgs).
    pub group: bool,
    /// The org id (or the group id).
    pub org_id: String,
    /// Event types, such as `org.target.delete`.
    pub events: Vec<String>,
    /// The earliest time; Snyk's default is the start of yesterday.
    pub from: Option<api_support::time::Timestamp>,
}

impl Endpoint for SearchAuditLog {
    fn path(&self) -> Cow<'_, str> {
        let owner = if self.group { "groups" } else { "orgs" };
        Cow::Owned(format!("{owner}/{}/audit_logs/search", seg(&self.org_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("version", REST_VERSION.to_owned()),
            ("size", "100".to_owned()),
            ("sort_order", "DESC".to_owned()),
        ];
        if let Some(from) = &self.from {
            q.push(("from", from.to_string()));
        }
        q.extend(self.events.iter().map(|e| ("events", e.clone())));
        q
    }
}

/// REST `GET /orgs/{org_id}/projects`, optionally for one target.
#[derive(Clone, Debug)]
pub struct ListProjects {
    /// The org id.
    pub org_id: String,
    /// Only this target's projects.
    pub target_id: Option<String>,
}

impl Endpoint for ListProjects {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("orgs/{}/projects", seg(&self.org_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("version", REST_VERSION.to_owned()),
            ("limit", "100".to_owned()),
        ];
        if let Some(t) = &self.target_id {
            q.push(("target_id", t.clone()));
        }
        q
    }
}

/// v1 `POST /org/{orgId}/project/{projectId}/deactivate` (or `…/activate`): stops (or resumes)
/// a project's recurring tests and PR checks, reversibly.
#[derive(Clone, Debug)]
pub struct SetProjectActive {
    /// The org id.
    pub org_id: String,
    /// The project id.
    pub project_id: String,
    /// `true` to activate, `false` to deactivate.
    pub active: bool,
}

impl Endpoint for SetProjectActive {
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> Cow<'_, str> {
        let verb = if self.active {
            "activate"
        } else {
            "deactivate"
        };
        Cow::Owned(format!(
            "org/{}/project/{}/{verb}",
            seg(&self.org_id),
            seg(&self.project_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&json!({})).map(Some)
    }
}

/// v1 `PUT /org/{orgId}/project/{projectId}` with `{"branch": …}`: the branch a project tests
/// (REST cannot change it).
#[derive(Clone, Debug)]
pub struct UpdateProjectBranch {
    /// The org id.
    pub org_id: String,
    /// The project id.
    pub project_id: String,
    /// The branch to test.
    pub branch: String,
}

impl Endpoint for UpdateProjectBranch {
    fn method(&self) -> Method {
        Method::PUT
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/project/{}",
            seg(&self.org_id),
            seg(&self.project_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json(&json!({"branch": self.branch})).map(Some)
    }
}

/// v1 `GET /org/{orgId}/project/{projectId}/ignores`: issue id → its ignores.
#[derive(Clone, Debug)]
pub struct ListIgnores {
    /// The org id.
    pub org_id: String,
    /// The project id.
    pub project_id: String,
}

impl Endpoint for ListIgnores {
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/project/{}/ignores",
            seg(&self.org_id),
            seg(&self.project_id)
        ))
    }
}

/// v1 `POST /org/{orgId}/project/{projectId}/ignore/{issueId}`: adds one ignore (Snyk sets
/// who and when).
#[derive(Clone, Debug)]
pub struct AddIgnore {
    /// The org id.
    pub org_id: String,
    /// The project id.
    pub project_id: String,
    /// The ignore.
    pub ignore: crate::models::Ignore,
}

impl Endpoint for AddIgnore {
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "org/{}/project/{}/ignore/{}",
            seg(&self.org_id),
            seg(&self.project_id),
            seg(&self.ignore.issue_id)
        ))
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        let i = &self.ignore;
        let mut body = json!({"ignorePath": i.path, "reason": i.reason, "reasonType": i.reason_type,
                              "disregardIfFixable": i.disregard_if_fixable});
        if let Some(expires) = &i.expires {
            body["expires"] = json!(expires);
        }
        Body::json(&body).map(Some)
    }
}

/// REST `PATCH /orgs/{org_id}/projects/{project_id}?version=…` (GA since 2024-05-31): sets
/// the settings given (each attribute named is replaced whole; those left empty are not sent).
#[derive(Clone, Debug)]
pub struct PatchProject {
    /// The org id.
    pub org_id: String,
    /// The project id.
    pub project_id: String,
    /// What to set.
    pub settings: crate::models::ProjectSettings,
}

impl Endpoint for PatchProject {
    fn method(&self) -> Method {
        Method::PATCH
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "orgs/{}/projects/{}",
            seg(&self.org_id),
            seg(&self.project_id)
        ))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("version", REST_VERSION.to_owned())]
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        let s = &self.settings;
        let mut attributes = serde_json::Map::new();
        for (key, values) in [
            ("business_criticality", &s.criticality),
            ("environment", &s.environment),
            ("lifecycle", &s.lifecycle),
        ] {
            if !values.is_empty() {
                attributes.insert(key.to_owned(), json!(values));
            }
        }
        if !s.tags.is_empty() {
            let tags: Vec<_> = s
                .tags
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            attributes.insert("tags".to_owned(), json!(tags));
        }
        if let Some(f) = &s.test_frequency {
            attributes.insert("test_frequency".to_owned(), json!(f));
        }
        let mut data = json!({"type": "project", "id": self.project_id, "attributes": attributes});
        if let Some(owner) = &s.owner {
            data["relationships"] = json!({"owner": {"data": {"type": "user", "id": owner}}});
        }
        Body::json_as(&json!({ "data": data }), JSON_API).map(Some)
    }
}

/// REST `DELETE /orgs/{org_id}/projects/{project_id}?version=…` (GA since 2024-05-31).
#[derive(Clone, Debug)]
pub struct DeleteProject {
    /// The org id.
    pub org_id: String,
    /// The project id.
    pub project_id: String,
}

impl Endpoint for DeleteProject {
    fn method(&self) -> Method {
        Method::DELETE
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "orgs/{}/projects/{}",
            seg(&self.org_id),
            seg(&self.project_id)
        ))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("version", REST_VERSION.to_owned())]
    }
}

/// REST `DELETE /orgs/{org_id}/targets/{target_id}?version=…` (GA since 2024-02-21). Whether the
/// target's projects go with it is not documented: list them afterwards.
#[derive(Clone, Debug)]
pub struct DeleteTarget {
    /// The org id.
    pub org_id: String,
    /// The target id.
    pub target_id: String,
}

impl Endpoint for DeleteTarget {
    fn method(&self) -> Method {
        Method::DELETE
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "orgs/{}/targets/{}",
            seg(&self.org_id),
            seg(&self.target_id)
        ))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("version", REST_VERSION.to_owned())]
    }
}

/// REST `PATCH /orgs/{org_id}?version=…` with a new name.
#[derive(Clone, Debug)]
pub struct RenameOrg {
    /// The org id.
    pub org_id: String,
    /// The new name (1 to 60 characters).
    pub name: String,
}

impl Endpoint for RenameOrg {
    fn method(&self) -> Method {
        Method::PATCH
    }
    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("orgs/{}", seg(&self.org_id)))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("version", REST_VERSION.to_owned())]
    }
    fn body(&self) -> Result<Option<Body>, Error> {
        Body::json_as(
            &json!({"data": {"type": "org", "id": self.org_id, "attributes": {"name": self.name}}}),
            JSON_API,
        )
        .map(Some)
    }
}
