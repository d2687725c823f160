//! The client and its builder.

use std::fmt;

use api_support::{
    ApiRequest, ApiResponse, Credential, CredentialPool, Endpoint, ErrorKind, HttpClient,
    HttpOptions, RateLimit,
};
use http::Method;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{Auth, CredentialKind, DEFAULT_TOKEN_URL};
use crate::endpoints::{
    CurrentUser, DeleteWorkspaceHook, Fields, GetRepository, GetWorkspace, ListRepositories,
    MAX_PAGE_LEN, PutWorkspaceHook, Role, UserWorkspaces, WorkspaceHooks, WorkspaceProjects, quote,
};
use crate::error::classify;
use crate::models::{Page, Project, Repository, User, Workspace, WorkspaceAccess};
use crate::paginate::{Cursor, Listing, Paginator};
use crate::webhooks::{Webhook, WebhookSpec};
use crate::{Error, Identified};

/// Bitbucket Cloud's API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.bitbucket.org/2.0";

/// The default client-side budget of each credential: Bitbucket's 1,000 requests for repository
/// data (`/2.0/repositories/…`) per rolling hour; other endpoints are not counted. Raise it for
/// access tokens on large paid workspaces (up to 10,000).
pub const DEFAULT_HOURLY_BUDGET: u32 = 1_000;

/// Builds a [`BitbucketClient`].
pub struct BitbucketClientBuilder {
    base_url: String,
    token_url: String,
    auths: Vec<Auth>,
    rate_limit: Option<RateLimit>,
    options: HttpOptions,
    page_len: u32,
}

impl fmt::Debug for BitbucketClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitbucketClientBuilder")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("credentials", &self.auths)
            .field("rate_limit", &self.rate_limit)
            .field("retry", &self.options.retry)
            .field("page_len", &self.page_len)
            .finish()
    }
}

impl BitbucketClientBuilder {
    /// The API base URL (default [`DEFAULT_BASE_URL`]); plain `http` only on loopback.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The OAuth token endpoint for client credentials (default [`DEFAULT_TOKEN_URL`]).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self
    }

    /// Adds a credential. Several credentials of one kind form a pool used in turn, each with
    /// its own budget.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auths.push(auth);
        self
    }

    /// Adds several credentials.
    pub fn auths(mut self, auths: impl IntoIterator<Item = Auth>) -> Self {
        self.auths.extend(auths);
        self
    }

    /// The client-side budget of each credential (default 1,000 per hour); `None` for none.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    api_support::http_option_setters!();

    /// The page length of listings (1 to 100; default 100, the maximum).
    pub fn page_len(mut self, len: u32) -> Self {
        self.page_len = len;
        self
    }

    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`Error::Config`] when no credential is given, credentials of different kinds are mixed,
    /// the page length is out of range, or a URL is refused (not HTTPS outside loopback).
    pub fn build(self) -> Result<BitbucketClient, Error> {
        let Some(first) = self.auths.first() else {
            return Err(Error::Config(
                "no Bitbucket credential given: add one with BitbucketClientBuilder::auth (Auth::api_token with the Atlassian e-mail, Auth::access_token, Auth::oauth_token or Auth::oauth_client_credentials)".to_owned(),
            ));
        };
        let kind = first.kind();
        if let Some(other) = self.auths.iter().find(|a| a.kind() != kind) {
            return Err(Error::Config(format!(
                "a credential pool must hold credentials of one kind, got {kind} and {}",
                other.kind()
            )));
        }
        if !(1..=MAX_PAGE_LEN).contains(&self.page_len) {
            return Err(Error::Config(format!(
                "page length {} is out of range: Bitbucket serves 1 to {MAX_PAGE_LEN}",
                self.page_len
            )));
        }
        let mut credentials = Vec::with_capacity(self.auths.len());
        for auth in &self.auths {
            let authorizer = auth
                .authorizer(&self.token_url, &self.options)
                .map_err(|e| Error::Config(e.message().to_owned()))?;
            let credential = Credential::new(authorizer);
            credentials.push(match self.rate_limit {
                Some(limit) => credential.with_limit(limit),
                None => credential,
            });
        }
        let http = HttpClient::builder(self.base_url.clone())
            .credentials(CredentialPool::new(credentials))
            .options(&self.options)
            .request_id_headers([http::HeaderName::from_static("x-request-id")])
            // Bitbucket's hourly budget covers repository data (`/2.0/repositories/…`) only.
            .budget_scope("/repositories")
            .build()
            .map_err(|e| Error::Config(format!("Bitbucket base URL: {}", e.message())))?;
        Ok(BitbucketClient {
            http,
            kind,
            page_len: self.page_len,
        })
    }
}

/// A Bitbucket Cloud 2.0 client. Cloning is cheap; clones share credentials and budgets.
///
/// Every request goes through [`api_support::HttpClient`]'s loop (retries, `Retry-After`,
/// client-side budgets per credential). When an access token's answer says
/// `X-RateLimit-NearLimit: true`, that credential slows to an even pace over its window until the
/// header clears.
#[derive(Clone)]
pub struct BitbucketClient {
    http: HttpClient,
    kind: CredentialKind,
    page_len: u32,
}

impl fmt::Debug for BitbucketClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitbucketClient")
            .field("kind", &self.kind)
            .field("http", &self.http)
            .finish()
    }
}

impl BitbucketClient {
    /// Starts building a client.
    pub fn builder() -> BitbucketClientBuilder {
        BitbucketClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            auths: Vec::new(),
            rate_limit: Some(RateLimit::per_hour(DEFAULT_HOURLY_BUDGET)),
            options: HttpOptions::default(),
            page_len: MAX_PAGE_LEN,
        }
    }

    /// The kind of the configured credentials.
    pub fn credential_kind(&self) -> CredentialKind {
        self.kind
    }

    /// Whether these credentials can list workspaces (access tokens cannot).
    pub fn can_list_workspaces(&self) -> bool {
        self.kind.can_list_workspaces()
    }

    /// The underlying HTTP client (base URL, credential pool and its usage).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Sends a request and maps failures to [`Error`].
    ///
    /// # Errors
    /// As the request loop, classified: 410 as [`Error::Removed`], 401/403 as [`Error::Auth`].
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse, Error> {
        let response = self.http.send(request).await.map_err(classify)?;
        self.observe_near_limit(&response);
        Ok(response)
    }

    /// Sends an endpoint description and reads the JSON answer.
    ///
    /// # Errors
    /// As [`BitbucketClient::send`], and [`api_support::ErrorKind::Decode`] naming the JSON path.
    pub async fn get<T: DeserializeOwned>(&self, endpoint: &impl Endpoint) -> Result<T, Error> {
        let request = self.http.request_for(endpoint)?;
        Ok(self.send(request).await?.json()?)
    }

    pub(crate) async fn get_url<T: DeserializeOwned>(
        &self,
        url: Url,
        workspace: Option<&str>,
    ) -> Result<T, Error> {
        let answer = self.send(ApiRequest::new(Method::GET, url)).await;
        let answer = match (answer, workspace) {
            (Err(Error::Api(e)), Some(ws)) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::WorkspaceNotFound {
                    workspace: ws.to_owned(),
                    source: e,
                });
            }
            (other, _) => other?,
        };
        Ok(answer.json()?)
    }

    fn observe_near_limit(&self, response: &ApiResponse) {
        let Some(near) = response.header("x-ratelimit-nearlimit") else {
            return;
        };
        let pool = self.http.credentials();
        let index = response.credential_index();
        if near.eq_ignore_ascii_case("true") {
            let pace = pool
                .limit(index)
                .map(|l| l.window / l.requests.max(1))
                .unwrap_or(std::time::Duration::from_millis(3600));
            tracing::info!(
                credential = index,
                pace_ms = pace.as_millis() as u64,
                "Bitbucket says this credential is near its rate limit; slowing down"
            );
            pool.set_pace(index, Some(pace));
        } else {
            pool.set_pace(index, None);
        }
    }

    fn paginator<T>(&self, endpoint: &impl Endpoint, workspace: Option<&str>) -> Paginator<T>
    where
        T: DeserializeOwned + Identified + Send + Sync + 'static,
    {
        let first = self
            .http
            .request_for(endpoint)
            .map(|r| Cursor::at(r.url))
            .map_err(Error::from);
        Paginator::new(
            Listing::new(self.clone(), workspace.map(str::to_owned)),
            first,
        )
    }

    /// `GET /user`: the authenticated user. Access tokens have no user.
    ///
    /// # Errors
    /// [`Error::Auth`] for refused credentials, among others.
    pub async fn current_user(&self) -> Result<User, Error> {
        self.get(&CurrentUser).await
    }

    /// `GET /user/workspaces`: the workspaces the credentials can access, sorted by slug,
    /// 100 a page. `administrator` filters on the caller's role.
    ///
    /// With access tokens the stream yields [`Error::WorkspaceListingUnsupported`] at once,
    /// without a request: their workspace slugs must be configured.
    pub fn user_workspaces(&self, administrator: Option<bool>) -> Paginator<WorkspaceAccess> {
        if !self.can_list_workspaces() {
            return Paginator::new(
                Listing::new(self.clone(), None),
                Err(Error::WorkspaceListingUnsupported {
                    credential: self.kind,
                }),
            );
        }
        self.paginator(
            &UserWorkspaces {
                administrator,
                pagelen: self.page_len,
            },
            None,
        )
    }

    /// `GET /workspaces/{workspace}`: one workspace with its name.
    ///
    /// # Errors
    /// [`Error::WorkspaceNotFound`] when it does not exist or is invisible to the credentials.
    pub async fn workspace(&self, workspace: &str) -> Result<Workspace, Error> {
        let endpoint = GetWorkspace {
            workspace: workspace.to_owned(),
        };
        let url = self.http.request_for(&endpoint)?.url;
        self.get_url(url, Some(workspace)).await
    }

    /// `GET /workspaces/{workspace}/projects`: the workspace's projects.
    pub fn projects(&self, workspace: &str) -> Paginator<Project> {
        self.paginator(
            &WorkspaceProjects {
                workspace: workspace.to_owned(),
                pagelen: self.page_len,
            },
            Some(workspace),
        )
    }

    /// `GET /repositories/{workspace}`: a listing to refine (filter, order, fields) and stream.
    pub fn repositories(&self, workspace: &str) -> RepositoriesRequest {
        let mut endpoint = ListRepositories::new(workspace);
        endpoint.pagelen = self.page_len;
        RepositoriesRequest {
            client: self.clone(),
            endpoint,
        }
    }

    /// `GET /repositories/{workspace}/{repo_slug}`: one repository.
    ///
    /// # Errors
    /// [`api_support::ErrorKind::NotFound`] when it does not exist.
    pub async fn repository(&self, workspace: &str, repo_slug: &str) -> Result<Repository, Error> {
        self.get(&GetRepository {
            workspace: workspace.to_owned(),
            repo_slug: repo_slug.to_owned(),
        })
        .await
    }

    /// One repository by its uuid (`{…}`, with braces), which survives renames: the way to
    /// find a repository whose slug may have changed, or to confirm that one is gone. `None`
    /// when Bitbucket answers 404 (deleted, or no longer visible to these credentials).
    ///
    /// # Errors
    /// As [`BitbucketClient::send`], except 404.
    pub async fn repository_by_uuid(
        &self,
        workspace: &str,
        uuid: &str,
    ) -> Result<Option<Repository>, Error> {
        let braced = if uuid.starts_with('{') {
            uuid.to_owned()
        } else {
            format!("{{{uuid}}}")
        };
        match self.repository(workspace, &braced).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /workspaces/{workspace}/hooks`: the workspace's webhooks.
    pub fn workspace_hooks(&self, workspace: &str) -> Paginator<Webhook> {
        self.paginator(
            &WorkspaceHooks {
                workspace: workspace.to_owned(),
            },
            Some(workspace),
        )
    }

    /// Every webhook of a workspace.
    ///
    /// # Errors
    /// [`Error::NotWorkspaceOwner`] when the credentials' user may not read the workspace's
    /// webhooks; as [`BitbucketClient::send`] otherwise.
    pub async fn list_workspace_hooks(&self, workspace: &str) -> Result<Vec<Webhook>, Error> {
        self.workspace_hooks(workspace)
            .collect()
            .await
            .map_err(|e| not_owner(e, workspace))
    }

    /// Creates the workspace webhook `spec` describes, or, when one with its URL exists,
    /// brings its events, description, state and secret up to date (the secret cannot be
    /// read back, so a hook found is always updated): running it twice leaves one hook.
    ///
    /// # Errors
    /// [`Error::NotWorkspaceOwner`] when the credentials' user does not own the workspace; as
    /// [`BitbucketClient::send`] otherwise.
    pub async fn install_workspace_hook(
        &self,
        workspace: &str,
        spec: &WebhookSpec,
    ) -> Result<(Webhook, HookChange), Error> {
        let hooks = self.list_workspace_hooks(workspace).await?;
        let found = hooks.into_iter().find(|h| same_url(&h.url, &spec.url));
        let (uid, change) = match found.and_then(|h| h.uuid) {
            Some(uid) => (Some(uid), HookChange::Updated),
            None => (None, HookChange::Created),
        };
        let endpoint = PutWorkspaceHook {
            workspace: workspace.to_owned(),
            uid,
            spec: spec.clone(),
        };
        let hook = self
            .get(&endpoint)
            .await
            .map_err(|e| not_owner(e, workspace))?;
        Ok((hook, change))
    }

    /// Removes the workspace webhooks delivering to `url`; returns how many there were.
    ///
    /// # Errors
    /// [`Error::NotWorkspaceOwner`] when the credentials' user does not own the workspace; as
    /// [`BitbucketClient::send`] otherwise.
    pub async fn remove_workspace_hooks(&self, workspace: &str, url: &str) -> Result<usize, Error> {
        let hooks = self
            .workspace_hooks(workspace)
            .collect()
            .await
            .map_err(|e| not_owner(e, workspace))?;
        let mut removed = 0;
        for uid in hooks
            .into_iter()
            .filter(|h| same_url(&h.url, url))
            .filter_map(|h| h.uuid)
        {
            let endpoint = DeleteWorkspaceHook {
                workspace: workspace.to_owned(),
                uid,
            };
            let request = self.http.request_for(&endpoint)?;
            self.send(request)
                .await
                .map_err(|e| not_owner(e, workspace))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Fetches one page of any listing by URL (for example a saved `next` link).
    ///
    /// # Errors
    /// As [`BitbucketClient::send`]; a URL outside the base's origin is refused.
    pub async fn page<T: DeserializeOwned>(&self, url: Url) -> Result<Page<T>, Error> {
        self.get_url(url, None).await
    }
}

/// A repository listing being refined. Nothing is sent until it is streamed.
#[derive(Debug, Clone)]
#[must_use = "a listing does nothing until streamed"]
pub struct RepositoriesRequest {
    client: BitbucketClient,
    endpoint: ListRepositories,
}

impl RepositoriesRequest {
    /// Adds a raw `q` filter clause (joined with `AND`).
    pub fn query(mut self, clause: impl Into<String>) -> Self {
        self.endpoint.and_q(clause);
        self
    }

    /// Only repositories of the project with this key.
    pub fn project_key(self, key: &str) -> Self {
        self.query(format!("project.key={}", quote(key)))
    }

    /// Only repositories updated after this instant (sent in UTC, `2026-01-01T00:00:00Z`).
    pub fn updated_since(self, since: api_support::time::Timestamp) -> Self {
        self.query(format!("updated_on>{since}"))
    }

    /// The order, such as `-updated_on` (default `slug`).
    pub fn sort(mut self, sort: impl Into<String>) -> Self {
        self.endpoint.sort = sort.into();
        self
    }

    /// The caller's role filter.
    pub fn role(mut self, role: Role) -> Self {
        self.endpoint.role = Some(role);
        self
    }

    /// A partial-response selection; `next` is always kept.
    pub fn fields(mut self, fields: Fields) -> Self {
        self.endpoint.fields = Some(fields);
        self
    }

    /// The endpoint as described so far.
    pub fn endpoint(&self) -> &ListRepositories {
        &self.endpoint
    }

    /// The paginator.
    pub fn paginator(self) -> Paginator<Repository> {
        let workspace = self.endpoint.workspace.clone();
        self.client.paginator(&self.endpoint, Some(&workspace))
    }

    /// The repositories, de-duplicated by UUID, as a `Send + 'static` stream.
    pub fn items(
        self,
    ) -> impl futures_util::Stream<Item = Result<Repository, Error>> + Send + 'static {
        self.paginator().items()
    }

    /// Every repository.
    ///
    /// # Errors
    /// The first error of any page; [`Error::WorkspaceNotFound`] for an unknown workspace.
    pub async fn collect(self) -> Result<Vec<Repository>, Error> {
        self.paginator().collect().await
    }
}

/// What [`BitbucketClient::install_workspace_hook`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookChange {
    /// No hook had the URL; one was created.
    Created,
    /// A hook with the URL was brought up to date.
    Updated,
}

/// Whether two webhook URLs are the same (a trailing slash and the case of the scheme and host
/// aside).
fn same_url(a: &str, b: &str) -> bool {
    let norm = |u: &str| match Url::parse(u.trim()) {
        Ok(u) => u.as_str().trim_end_matches('/').to_owned(),
        Err(_) => u.trim().trim_end_matches('/').to_owned(),
    };
    norm(a) == norm(b)
}

/// A 403 on a workspace's hooks: only its owners may manage them.
fn not_owner(e: Error, workspace: &str) -> Error {
    match e {
        Error::Auth { source, .. } if source.status().map(|s| s.as_u16()) == Some(403) => {
            Error::NotWorkspaceOwner {
                workspace: workspace.to_owned(),
                source,
            }
        }
        other => other,
    }
}
