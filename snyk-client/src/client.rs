//! The Snyk client, its builder and its credentials.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use api_support::{
    ApiRequest, ApiResponse, Authorizer, ClientAuthentication, Credential, CredentialPool,
    Endpoint, HttpClient, HttpOptions, OAuthClientCredentials, RateLimit, StaticAuth,
};
use futures_util::{Stream, TryStreamExt};
use http::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use crate::Error;
use crate::endpoints::{
    AddBitbucketCloudIntegration, AddIgnore, BITBUCKET_SOURCE_TYPES, CloneIntegration, CreateOrg,
    DeleteOrg, DeleteProject, DeleteTarget, DisableNotifications, GetOrg, GroupOrgs, Import,
    ImportJobStatus, IntegrationSettingsEndpoint, JSON_API, ListIgnores, ListIntegrations,
    ListProjects, ListTargets, PatchProject, RenameOrg, SearchAuditLog, SetProjectActive,
    UpdateBitbucketCloudCredentials, UpdateProjectBranch,
};
use crate::error::classify;
use crate::models::rest::{OrgResource, ProjectResource, Single, TargetResource};
use crate::models::{
    AuditLogEntry, CreatedOrgV1, Ignore, ImportJob, ImportRequest, IntegrationSettings,
    IntegrationType, Integrations, JobHandle, Org, Project, ProjectSettings, Target,
};
use crate::region::{Region, host_from_token, normalize_api_url};

/// v1's default client-side budget: 2,000 requests a minute per token.
pub const V1_PER_MINUTE: u32 = 2_000;
/// REST's default client-side budget: 1,620 requests a minute per token.
pub const REST_PER_MINUTE: u32 = 1_620;
/// The longest org name Snyk accepts.
pub const MAX_ORG_NAME: usize = 60;

/// A Snyk credential. `Debug` never shows the secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum SnykAuth {
    /// An API token, service-account token or personal access token: `Authorization: token …`.
    Token(SecretString),
    /// An OAuth access token obtained elsewhere: `Authorization: bearer …`.
    Bearer(SecretString),
    /// OAuth client credentials of a service account, exchanged at `<host>/oauth2/token` and
    /// renewed before they expire.
    OAuthClientCredentials {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
}

impl SnykAuth {
    /// A token sent as `token …`.
    pub fn token(token: impl Into<SecretString>) -> Self {
        Self::Token(token.into())
    }

    /// A token sent as `bearer …`.
    pub fn bearer(token: impl Into<SecretString>) -> Self {
        Self::Bearer(token.into())
    }

    /// OAuth client credentials.
    pub fn oauth_client_credentials(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        Self::OAuthClientCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    /// The name of the credential's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "snyk-token",
            Self::Bearer(_) => "snyk-bearer",
            Self::OAuthClientCredentials { .. } => "snyk-oauth-client-credentials",
        }
    }
}

impl fmt::Debug for SnykAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token([REDACTED])"),
            Self::Bearer(_) => f.write_str("Bearer([REDACTED])"),
            Self::OAuthClientCredentials { client_id, .. } => f
                .debug_struct("OAuthClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// How import jobs are polled (see the `poll` module's notes): the first poll after
/// `first_delay`, or, once this client's first polls have found jobs ended or running, at the
/// wait they taught (`learn`: found ended moves it down, found running moves it up, so it is
/// never stuck above the jobs' own time). After a poll that found its job running, the next
/// comes where the schedule learned from the durations later polls saw puts it (`learn`; once
/// fifteen jobs were seen end that way), else after `lag_percent` % of the time waited so
/// far; between `min_delay` and `max_delay` either way. Giving up after `timeout`. A 404 or 422
/// right after creation is tolerated `grace_polls` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollPolicy {
    /// The wait before the first poll until something is learned (default 500 ms: learning
    /// downward costs a wave's time, learning upward only the first wave's polls, for the
    /// first job seen ended by a later poll ends the search, so it starts low).
    pub first_delay: Duration,
    /// The shortest wait between polls (default 200 ms).
    pub min_delay: Duration,
    /// The longest wait between polls (default 30 s).
    pub max_delay: Duration,
    /// Each wait after a poll that found its job running, as a share of the time waited so
    /// far, in percent, until the schedule is learned (and for a job past an hour, or with
    /// `learn` off). Default 10: a job is seen within a tenth of its time of its end, 5 % on
    /// average. Doubled while nine tenths of the v1 budget's rolling minute are spent, so that
    /// polls give way to imports.
    pub lag_percent: u32,
    /// Whether the first poll is learned from what first polls found, and the later ones from
    /// the durations later polls saw (default true).
    pub learn: bool,
    /// The longest a job is polled (default 1 h).
    pub timeout: Duration,
    /// 404/422 answers tolerated right after creation (default 3).
    pub grace_polls: u32,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            lag_percent: 10,
            learn: true,
            timeout: Duration::from_secs(3600),
            grace_polls: 3,
        }
    }
}

/// A finished import job with how it was observed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FinishedImport {
    /// The job in its final state.
    pub job: ImportJob,
    /// How many status requests it took.
    pub polls: u32,
    /// How long it was polled.
    pub waited: Duration,
}

#[derive(Clone, Debug)]
enum HostChoice {
    Default,
    Region(Region),
    Url(String),
}

/// Builds a [`SnykClient`].
pub struct SnykClientBuilder {
    host: HostChoice,
    auth: Option<SnykAuth>,
    v1_limit: Option<RateLimit>,
    rest_limit: Option<RateLimit>,
    options: HttpOptions,
    poll: PollPolicy,
}

impl fmt::Debug for SnykClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnykClientBuilder")
            .field("host", &self.host)
            .field("auth", &self.auth)
            .field("v1_limit", &self.v1_limit)
            .field("rest_limit", &self.rest_limit)
            .field("poll", &self.poll)
            .finish()
    }
}

impl SnykClientBuilder {
    /// The region (default: the one a personal access token names, else SNYK-US-01).
    pub fn region(mut self, region: Region) -> Self {
        self.host = HostChoice::Region(region);
        self
    }

    /// An API address in any form users carry (`SNYK_API`): `https://api.eu.snyk.io/v1`,
    /// `https://app.eu.snyk.io/api`, a loopback sandbox…; normalised to the host.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.host = HostChoice::Url(url.into());
        self
    }

    /// The credential.
    pub fn auth(mut self, auth: SnykAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The v1 client-side budget (default 2,000 a minute); `None` for none.
    pub fn v1_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.v1_limit = limit;
        self
    }

    /// The REST client-side budget (default 1,620 a minute); `None` for none.
    pub fn rest_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rest_limit = limit;
        self
    }

    api_support::http_option_setters!();

    /// How import jobs are polled.
    pub fn poll(mut self, poll: PollPolicy) -> Self {
        self.poll = poll;
        self
    }

    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`Error::Config`] without a credential, for a bad API address, or when a personal access
    /// token names another region than the one chosen.
    pub fn build(self) -> Result<SnykClient, Error> {
        let auth = self.auth.ok_or_else(|| {
            Error::Config(
                "no Snyk credential given: add one with SnykClientBuilder::auth (SnykAuth::token for an API, service-account or personal access token, SnykAuth::bearer for an OAuth access token, or SnykAuth::oauth_client_credentials)".to_owned(),
            )
        })?;
        let token_host = match &auth {
            SnykAuth::Token(t) => host_from_token(t.expose_secret()),
            _ => None,
        };
        let host = match (&self.host, &token_host) {
            (HostChoice::Region(r), Some(h)) if Region::from_host(h).is_some_and(|t| t != *r) => {
                return Err(Error::Config(format!(
                    "the Snyk token belongs to {h} but region {r} was chosen: choose the token's region or use a token of {r}"
                )));
            }
            (HostChoice::Region(r), _) => normalize_api_url(r.api_host())?,
            (HostChoice::Url(u), _) => normalize_api_url(u)?,
            (HostChoice::Default, Some(h)) => normalize_api_url(h)?,
            (HostChoice::Default, None) => normalize_api_url(Region::Us01.api_host())?,
        };
        let host_text = host.to_string().trim_end_matches('/').to_owned();
        let authorizer: Arc<dyn Authorizer> = match &auth {
            SnykAuth::Token(t) => Arc::new(StaticAuth::token(auth.kind(), t.clone())),
            SnykAuth::Bearer(t) => Arc::new(StaticAuth::bearer(auth.kind(), t.clone())),
            SnykAuth::OAuthClientCredentials {
                client_id,
                client_secret,
            } => {
                let oauth = OAuthClientCredentials::builder(
                    auth.kind(),
                    format!("{host_text}/oauth2/token"),
                    client_id.clone(),
                    client_secret.clone(),
                )
                .client_authentication(ClientAuthentication::FormBody)
                .scheme("bearer")
                .options(&self.options)
                .build()
                .map_err(|e| Error::Config(e.message().to_owned()))?;
                Arc::new(oauth)
            }
        };
        let http = |suffix: &str, limit: Option<RateLimit>, accept: &'static str| {
            let mut credential = Credential::new(authorizer.clone());
            if let Some(l) = limit {
                credential = credential.with_limit(l);
            }
            HttpClient::builder(format!("{host_text}/{suffix}"))
                .credentials(CredentialPool::single(credential))
                .options(&self.options)
                .accept(accept)
                .request_id_headers([
                    HeaderName::from_static("snyk-request-id"),
                    HeaderName::from_static("x-request-id"),
                ])
                .build()
                .map_err(|e| Error::Config(format!("Snyk API address: {}", e.message())))
        };
        Ok(SnykClient {
            v1: http("v1", self.v1_limit, "application/json")?,
            rest: http("rest", self.rest_limit, JSON_API)?,
            region: Region::from_host(&host_text),
            host: host_text,
            poll: self.poll,
            durations: crate::poll::Durations::default(),
        })
    }
}

/// A Snyk client (v1 and REST). Cloning is cheap; clones share credentials and budgets.
///
/// v1 and REST have separate client-side budgets, as Snyk counts them separately.
#[derive(Clone)]
pub struct SnykClient {
    v1: HttpClient,
    rest: HttpClient,
    host: String,
    region: Option<Region>,
    poll: PollPolicy,
    /// How long this client's jobs took (shared by clones), for the first poll.
    durations: crate::poll::Durations,
}

impl fmt::Debug for SnykClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnykClient")
            .field("host", &self.host)
            .field("region", &self.region)
            .field("v1", &self.v1)
            .field("rest", &self.rest)
            .finish()
    }
}

pub(crate) fn json<T: DeserializeOwned>(r: ApiResponse) -> Result<T, Error> {
    r.json().map_err(Error::from)
}

impl SnykClient {
    /// Starts building a client.
    pub fn builder() -> SnykClientBuilder {
        SnykClientBuilder {
            host: HostChoice::Default,
            auth: None,
            v1_limit: Some(RateLimit::per_minute(V1_PER_MINUTE)),
            rest_limit: Some(RateLimit::per_minute(REST_PER_MINUTE)),
            options: HttpOptions::default(),
            poll: PollPolicy::default(),
        }
    }

    /// The API host, such as `https://api.eu.snyk.io`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The region, when the host is one of Snyk's.
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// The v1 HTTP client.
    pub fn v1(&self) -> &HttpClient {
        &self.v1
    }

    /// The REST HTTP client.
    pub fn rest(&self) -> &HttpClient {
        &self.rest
    }

    pub(crate) async fn send_v1(
        &self,
        e: &impl Endpoint,
        group: Option<&str>,
    ) -> Result<ApiResponse, Error> {
        let request = self.v1.request_for(e)?;
        self.v1
            .send(request)
            .await
            .map_err(|err| classify(err, group))
    }

    pub(crate) async fn send_rest(
        &self,
        request: ApiRequest,
        group: Option<&str>,
    ) -> Result<ApiResponse, Error> {
        let response = self
            .rest
            .send(request)
            .await
            .map_err(|err| classify(err, group))?;
        if let Some(limits) = response.header("x-ratelimit-limit") {
            tracing::trace!(windows = ?parse_rate_limit(limits), "Snyk REST rate limits");
        }
        Ok(response)
    }

    /// Every org of a group, through v1 pages of 100 (stops at a short page).
    ///
    /// # Errors
    /// [`Error::GroupPermission`] when the token may not list the group's orgs.
    pub async fn group_orgs(&self, group_id: &str) -> Result<Vec<Org>, Error> {
        self.group_orgs_named(group_id, None).await
    }

    /// The orgs of a group whose names start with `prefix` (v1's `name` filter), or all.
    ///
    /// # Errors
    /// As [`SnykClient::group_orgs`].
    pub async fn group_orgs_named(
        &self,
        group_id: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Org>, Error> {
        self.v1_group_org_pages(group_id, prefix).collect().await
    }

    /// Every org of a group through REST cursor paging, as a `Send + 'static` stream.
    pub fn group_orgs_rest(
        &self,
        group_id: &str,
    ) -> impl Stream<Item = Result<Org, Error>> + Send + 'static + use<> {
        let e = GroupOrgs {
            group_id: group_id.to_owned(),
            name: None,
        };
        self.rest_items::<OrgResource, Org, _>(&e, Some(group_id.to_owned()))
    }

    /// Creates an org in a group, optionally copying a template org (`sourceOrgId`): its
    /// integrations with their credentials, policies and settings. Never creates a personal org.
    ///
    /// Names are not unique in Snyk: look for an existing org of the same name first (the
    /// mirror does).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty name or one over 60 characters, before any request;
    /// [`Error::GroupPermission`] when the token may not create orgs in the group.
    pub async fn create_org(
        &self,
        group_id: &str,
        name: &str,
        source_org_id: Option<&str>,
    ) -> Result<Org, Error> {
        let count = name.chars().count();
        if name.trim().is_empty() || count > MAX_ORG_NAME {
            return Err(Error::Config(format!(
                "Snyk org names have 1 to {MAX_ORG_NAME} characters; `{name}` has {count}"
            )));
        }
        if group_id.trim().is_empty() {
            return Err(Error::Config(
                "a group id is required: without one Snyk would create a personal org".to_owned(),
            ));
        }
        let e = CreateOrg {
            name: name.to_owned(),
            group_id: group_id.to_owned(),
            source_org_id: source_org_id.map(str::to_owned),
        };
        let created: CreatedOrgV1 = json(self.send_v1(&e, Some(group_id)).await?)?;
        tracing::info!(org = %created.id, name = %created.name, "created a Snyk org");
        let mut org = Org::from(created);
        org.group_id.get_or_insert_with(|| group_id.to_owned());
        Ok(org)
    }

    /// One org (REST).
    ///
    /// # Errors
    /// [`api_support::ErrorKind::NotFound`] when it does not exist.
    pub async fn org(&self, org_id: &str) -> Result<Org, Error> {
        let request = self.rest.request_for(&GetOrg {
            org_id: org_id.to_owned(),
        })?;
        let doc: Single<OrgResource> = json(self.send_rest(request, None).await?)?;
        Ok(doc.data.into())
    }

    /// Deletes an org that has no projects.
    ///
    /// # Errors
    /// As Snyk answers (for example when the org still has projects).
    pub async fn delete_org(&self, org_id: &str) -> Result<(), Error> {
        self.send_v1(
            &DeleteOrg {
                org_id: org_id.to_owned(),
            },
            None,
        )
        .await?;
        Ok(())
    }

    /// Renames an org (REST `PATCH /orgs/{org_id}`).
    ///
    /// # Errors
    /// As Snyk answers (404 for an org that does not exist).
    pub async fn rename_org(&self, org_id: &str, name: &str) -> Result<(), Error> {
        let request = self.rest.request_for(&RenameOrg {
            org_id: org_id.to_owned(),
            name: name.to_owned(),
        })?;
        self.send_rest(request, None).await?;
        Ok(())
    }

    /// Deactivates a project (reversible: its tests and PR checks stop), or activates it again
    /// (v1 `POST /org/{orgId}/project/{projectId}/deactivate` or `…/activate`).
    ///
    /// # Errors
    /// As Snyk answers (404 for a project that does not exist).
    pub async fn set_project_active(
        &self,
        org_id: &str,
        project_id: &str,
        active: bool,
    ) -> Result<(), Error> {
        let e = SetProjectActive {
            org_id: org_id.to_owned(),
            project_id: project_id.to_owned(),
            active,
        };
        self.send_v1(&e, None).await?;
        Ok(())
    }

    /// Changes the branch a project tests (v1 `PUT /org/{orgId}/project/{projectId}`; REST
    /// cannot).
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn update_project_branch(
        &self,
        org_id: &str,
        project_id: &str,
        branch: &str,
    ) -> Result<(), Error> {
        let e = UpdateProjectBranch {
            org_id: org_id.to_owned(),
            project_id: project_id.to_owned(),
            branch: branch.to_owned(),
        };
        self.send_v1(&e, None).await?;
        Ok(())
    }

    /// A project's ignores (v1 `GET …/ignores`; Open Source projects: REST has none).
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn project_ignores(
        &self,
        org_id: &str,
        project_id: &str,
    ) -> Result<Vec<Ignore>, Error> {
        let e = ListIgnores {
            org_id: org_id.to_owned(),
            project_id: project_id.to_owned(),
        };
        let answer: serde_json::Value = json(self.send_v1(&e, None).await?)?;
        Ok(Ignore::from_v1(&answer))
    }

    /// Adds an ignore to a project (v1 `POST …/ignore/{issueId}`); Snyk records who and when.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn add_ignore(
        &self,
        org_id: &str,
        project_id: &str,
        ignore: &Ignore,
    ) -> Result<(), Error> {
        let e = AddIgnore {
            org_id: org_id.to_owned(),
            project_id: project_id.to_owned(),
            ignore: ignore.clone(),
        };
        self.send_v1(&e, None).await?;
        Ok(())
    }

    /// Sets a project's tags, attributes, test frequency and owner, as far as `settings` holds
    /// them (REST `PATCH /orgs/{org_id}/projects/{project_id}`; each attribute sent is
    /// replaced whole). Tags need an Enterprise plan: others answer 403 or 422.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn update_project_settings(
        &self,
        org_id: &str,
        project_id: &str,
        settings: &ProjectSettings,
    ) -> Result<(), Error> {
        let request = self.rest.request_for(&PatchProject {
            org_id: org_id.to_owned(),
            project_id: project_id.to_owned(),
            settings: settings.clone(),
        })?;
        self.send_rest(request, None).await?;
        Ok(())
    }

    /// Deletes a project (REST `DELETE /orgs/{org_id}/projects/{project_id}`).
    ///
    /// # Errors
    /// As Snyk answers (404 for a project already gone).
    pub async fn delete_project(&self, org_id: &str, project_id: &str) -> Result<(), Error> {
        let request = self.rest.request_for(&DeleteProject {
            org_id: org_id.to_owned(),
            project_id: project_id.to_owned(),
        })?;
        self.send_rest(request, None).await?;
        Ok(())
    }

    /// Deletes a target (REST `DELETE /orgs/{org_id}/targets/{target_id}`). Whether its projects
    /// go with it is not documented: list them with [`SnykClient::projects`] afterwards.
    ///
    /// # Errors
    /// As Snyk answers (404 for a target already gone).
    pub async fn delete_target(&self, org_id: &str, target_id: &str) -> Result<(), Error> {
        let request = self.rest.request_for(&DeleteTarget {
            org_id: org_id.to_owned(),
            target_id: target_id.to_owned(),
        })?;
        self.send_rest(request, None).await?;
        Ok(())
    }

    /// An org's integrations: type → id.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn integrations(&self, org_id: &str) -> Result<Integrations, Error> {
        json(
            self.send_v1(
                &ListIntegrations {
                    org_id: org_id.to_owned(),
                },
                None,
            )
            .await?,
        )
    }

    /// Adds a `bitbucket-cloud` integration with an Atlassian e-mail and API token; returns its
    /// id.
    ///
    /// # Errors
    /// As Snyk answers; the token never appears in the error.
    pub async fn add_bitbucket_cloud_integration(
        &self,
        org_id: &str,
        email: &str,
        token: &SecretString,
    ) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let e = AddBitbucketCloudIntegration {
            org_id: org_id.to_owned(),
            email: email.to_owned(),
            token: token.clone(),
        };
        let created: Created = json(self.send_v1(&e, None).await.map_err(|e| scrub(e, token))?)?;
        Ok(created.id)
    }

    /// Puts a new e-mail and API token into a `bitbucket-cloud` integration.
    ///
    /// # Errors
    /// As Snyk answers; the token never appears in the error.
    pub async fn update_bitbucket_cloud_credentials(
        &self,
        org_id: &str,
        integration_id: &str,
        email: &str,
        token: &SecretString,
    ) -> Result<(), Error> {
        let e = UpdateBitbucketCloudCredentials {
            org_id: org_id.to_owned(),
            integration_id: integration_id.to_owned(),
            email: email.to_owned(),
            token: token.clone(),
        };
        self.send_v1(&e, None).await.map_err(|e| scrub(e, token))?;
        Ok(())
    }

    /// Copies an integration (with its credentials) into another org of the same group;
    /// returns the new integration's id.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn clone_integration(
        &self,
        org_id: &str,
        integration_id: &str,
        destination_org_id: &str,
    ) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Cloned {
            new_integration_id: String,
        }
        let e = CloneIntegration {
            org_id: org_id.to_owned(),
            integration_id: integration_id.to_owned(),
            destination_org_id: destination_org_id.to_owned(),
        };
        let cloned: Cloned = json(self.send_v1(&e, None).await?)?;
        Ok(cloned.new_integration_id)
    }

    /// An integration's settings.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn integration_settings(
        &self,
        org_id: &str,
        integration_id: &str,
    ) -> Result<IntegrationSettings, Error> {
        let e = IntegrationSettingsEndpoint {
            org_id: org_id.to_owned(),
            integration_id: integration_id.to_owned(),
            update: None,
        };
        json(self.send_v1(&e, None).await?)
    }

    /// Updates an integration's settings; returns them as Snyk stored them.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn update_integration_settings(
        &self,
        org_id: &str,
        integration_id: &str,
        settings: &IntegrationSettings,
    ) -> Result<IntegrationSettings, Error> {
        let e = IntegrationSettingsEndpoint {
            org_id: org_id.to_owned(),
            integration_id: integration_id.to_owned(),
            update: Some(settings.clone()),
        };
        json(self.send_v1(&e, None).await?)
    }

    /// Turns every notification of an org off (advised during a bulk import).
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn disable_notifications(&self, org_id: &str) -> Result<(), Error> {
        self.send_v1(
            &DisableNotifications {
                org_id: org_id.to_owned(),
            },
            None,
        )
        .await?;
        Ok(())
    }

    /// Posts an import. The job's handle comes from the `Location` header; it is polled against
    /// the configured host whatever host the header names.
    ///
    /// A POST is retried only when it certainly did not reach Snyk (429, 503, a connection that
    /// never opened), so an import is never posted twice by a retry.
    ///
    /// # Errors
    /// [`Error::ProjectCap`], [`Error::InvalidParameter`], or as Snyk answers;
    /// [`Error::NoJobLocation`] for an acceptance without a usable `Location`.
    pub async fn import(
        &self,
        org_id: &str,
        integration_id: &str,
        request: &ImportRequest,
    ) -> Result<JobHandle, Error> {
        let e = Import {
            org_id: org_id.to_owned(),
            integration_id: integration_id.to_owned(),
            request: request.clone(),
        };
        let answer = self.send_v1(&e, None).await?;
        let location = answer.header("location").map(str::to_owned);
        let handle = location
            .as_deref()
            .and_then(JobHandle::from_location)
            .ok_or(Error::NoJobLocation { location })?;
        tracing::info!(
            org = %handle.org_id,
            job = %handle.job_id,
            repository = %format!("{}/{}", request.target().owner, request.target().name),
            "import accepted"
        );
        Ok(handle)
    }

    /// An import job's state, read from the configured host.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn import_job(&self, handle: &JobHandle) -> Result<ImportJob, Error> {
        json(
            self.send_v1(
                &ImportJobStatus {
                    handle: handle.clone(),
                },
                None,
            )
            .await?,
        )
    }

    /// Polls a job until it is complete, failed or aborted, with the client's [`PollPolicy`].
    ///
    /// # Errors
    /// [`Error::ImportTimeout`] past the policy's timeout; other errors at once (a 404 or 422
    /// right after creation is tolerated a few times).
    pub async fn wait_for_import(&self, handle: &JobHandle) -> Result<FinishedImport, Error> {
        self.wait_for_import_with(handle, self.poll).await
    }

    /// As [`SnykClient::wait_for_import`] with another policy.
    ///
    /// # Errors
    /// As [`SnykClient::wait_for_import`].
    pub async fn wait_for_import_with(
        &self,
        handle: &JobHandle,
        policy: PollPolicy,
    ) -> Result<FinishedImport, Error> {
        let start = Instant::now();
        let budget_used = self.v1.credentials().budget_used();
        let (mut delay, aim) = if policy.learn {
            self.durations.first(&policy, budget_used)
        } else {
            (policy.first_delay, crate::poll::Aim::Early)
        };
        let mut watch = crate::poll::Watch::new(delay, aim);
        let mut polls = 0;
        let mut misses = 0;
        loop {
            tokio::time::sleep(delay).await;
            polls += 1;
            let waited = start.elapsed();
            match self.import_job(handle).await {
                Ok(job) => {
                    let ended = job.status.is_final();
                    self.durations
                        .found(&mut watch, polls, waited, ended, &policy);
                    if ended {
                        return Ok(FinishedImport {
                            job,
                            polls,
                            waited: start.elapsed(),
                        });
                    }
                }
                Err(e) if matches!(e.status(), Some(404 | 422)) && misses < policy.grace_polls => {
                    misses += 1;
                    tracing::debug!(job = %handle.job_id, status = e.status(), "job not visible yet");
                }
                Err(e) => return Err(e),
            }
            // The schedule is of when polls leave: the time this one took to answer is not
            // added to the wait before the next.
            let after = self
                .durations
                .later(waited, &policy, self.v1.credentials().budget_used());
            delay = (waited + after).saturating_sub(start.elapsed());
            if waited + after > policy.timeout {
                return Err(Error::ImportTimeout {
                    handle: handle.clone(),
                    waited: start.elapsed(),
                });
            }
        }
    }

    /// An org's Bitbucket targets (both integration types), empty ones included.
    pub fn targets(
        &self,
        org_id: &str,
    ) -> impl Stream<Item = Result<Target, Error>> + Send + 'static + use<> {
        self.targets_of(org_id, BITBUCKET_SOURCE_TYPES, None)
    }

    /// An org's targets of the given source types (comma-separated), optionally with a
    /// display-name prefix.
    ///
    /// Each target's own integration type is checked as well: a target of another type (a
    /// server that ignored `source_types`, a GitLab target named like a Bitbucket repository)
    /// is left out and logged, never taken for one of these types.
    pub fn targets_of(
        &self,
        org_id: &str,
        source_types: &str,
        display_name: Option<&str>,
    ) -> impl Stream<Item = Result<Target, Error>> + Send + 'static + use<> {
        let e = ListTargets {
            org_id: org_id.to_owned(),
            source_types: source_types.to_owned(),
            display_name: display_name.map(str::to_owned),
        };
        let wanted: Vec<String> = source_types.split(',').map(str::to_owned).collect();
        self.rest_items::<TargetResource, Target, _>(&e, None)
            .try_filter(move |t| {
                let ours = t
                    .integration_type
                    .as_deref()
                    .is_none_or(|k| wanted.iter().any(|w| w == k));
                if !ours {
                    tracing::warn!(
                        target_id = %t.id,
                        display_name = %t.display_name,
                        integration_type = ?t.integration_type,
                        "a target of another integration type was listed; left out"
                    );
                }
                std::future::ready(ours)
            })
    }

    /// The Bitbucket target whose display name is exactly `workspace/repository` (compared
    /// case-insensitively), if any.
    ///
    /// # Errors
    /// As Snyk answers.
    pub async fn find_target(
        &self,
        org_id: &str,
        full_name: &str,
        integration: &IntegrationType,
    ) -> Result<Option<Target>, Error> {
        // The filter is a prefix match, perhaps case-sensitive; Bitbucket slugs, and so the
        // display names of their targets, are lowercase.
        let prefix = full_name.to_ascii_lowercase();
        let targets: Vec<Target> = self
            .targets_of(org_id, integration.as_str(), Some(&prefix))
            .try_collect()
            .await?;
        Ok(targets
            .into_iter()
            .find(|t| t.display_name.eq_ignore_ascii_case(full_name)))
    }

    /// An org's projects, optionally of one target.
    pub fn projects(
        &self,
        org_id: &str,
        target_id: Option<&str>,
    ) -> impl Stream<Item = Result<Project, Error>> + Send + 'static + use<> {
        let e = ListProjects {
            org_id: org_id.to_owned(),
            target_id: target_id.map(str::to_owned),
        };
        self.rest_items::<ProjectResource, Project, _>(&e, None)
    }

    /// An org's audit log since `from` (RFC 3339), newest first, only the given `events`.
    /// Plans without audit logs answer 403.
    pub fn audit_log(
        &self,
        org_id: &str,
        events: &[&str],
        from: Option<api_support::time::Timestamp>,
    ) -> impl Stream<Item = Result<AuditLogEntry, Error>> + Send + 'static + use<> {
        let e = SearchAuditLog {
            group: false,
            org_id: org_id.to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            from,
        };
        self.rest_items::<AuditLogEntry, AuditLogEntry, _>(&e, None)
    }

    /// A group's audit log (every org of it) since `from`, newest first, only the given
    /// `events`. Plans without audit logs answer 403.
    pub fn group_audit_log(
        &self,
        group_id: &str,
        events: &[&str],
        from: Option<api_support::time::Timestamp>,
    ) -> impl Stream<Item = Result<AuditLogEntry, Error>> + Send + 'static + use<> {
        let e = SearchAuditLog {
            group: true,
            org_id: group_id.to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            from,
        };
        self.rest_items::<AuditLogEntry, AuditLogEntry, _>(&e, Some(group_id.to_owned()))
    }

    /// Resolves a REST `links.next`: absolute, or relative with or without the `/rest` prefix.
    pub fn resolve_rest_link(&self, link: &str) -> Result<Url, Error> {
        if link.starts_with("http://") || link.starts_with("https://") {
            return Url::parse(link).map_err(|e| {
                Error::Config(format!("Snyk sent an unreadable link `{link}` ({e})"))
            });
        }
        let path = link
            .strip_prefix("/rest")
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(link);
        let base = self.rest.base_url().to_string();
        Url::parse(&format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        ))
        .map_err(|e| Error::Config(format!("Snyk sent an unreadable link `{link}` ({e})")))
    }

    fn rest_items<R, T, E>(
        &self,
        endpoint: &E,
        group: Option<String>,
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static + use<R, T, E>
    where
        E: Endpoint,
        R: DeserializeOwned + Into<T> + Send + 'static,
        T: Send + Sync + 'static,
    {
        let first = self
            .rest
            .request_for(endpoint)
            .map(|r| r.url)
            .map_err(Error::from);
        self.rest_pages::<R, T>(first, group).items()
    }
}

/// Removes an integration token from an error's message and body excerpt.
fn scrub(e: Error, token: &SecretString) -> Error {
    let clean = |text: &str| {
        let mut t = text.to_owned();
        api_support::redact::redact_exact(&mut t, token.expose_secret());
        t
    };
    let fix = |message: String, source: api_support::Error| {
        let body = source.body().map(clean);
        (clean(&message), source.with_body(body))
    };
    match e {
        Error::Api { message, source } => {
            let (message, source) = fix(message, source);
            Error::Api { message, source }
        }
        Error::InvalidParameter { message, source } => {
            let (message, source) = fix(message, source);
            Error::InvalidParameter { message, source }
        }
        other => other,
    }
}

/// Reads Snyk's multi-window `X-Ratelimit-Limit` loosely, for example
/// `160, 160;w=1;name="…", 1620;w=60;name="…"` → `[(160, None), (160, Some(1)), (1620, Some(60))]`.
/// Parts that do not parse are skipped.
pub fn parse_rate_limit(value: &str) -> Vec<(u64, Option<u64>)> {
    value
        .split(',')
        .filter_map(|part| {
            let mut fields = part.split(';').map(str::trim);
            let limit = fields.next()?.parse::<u64>().ok()?;
            let window = fields
                .filter_map(|f| f.strip_prefix("w="))
                .find_map(|w| w.trim_matches('"').parse::<u64>().ok());
            Some((limit, window))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers_parse_loosely() {
        assert_eq!(
            parse_rate_limit(
                r#"160, 160;w=1;name="burst", 1620;w=60;name="minute", 97200;w=3600;name="hour""#
            ),
            vec![
                (160, None),
                (160, Some(1)),
                (1620, Some(60)),
                (97200, Some(3600))
            ]
        );
        assert_eq!(parse_rate_limit("garbage, 5;w=x"), vec![(5, None)]);
    }
}
