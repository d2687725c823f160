//! A fake Bitbucket Cloud on 127.0.0.1 (feature `sandbox`), for the CLI's demo, the tests, the
//! examples and the benchmarks.
//!
//! It is served by [`api_support::sandbox::Server`], a small hyper server, rather than wiremock:
//! the fake needs state (issued OAuth tokens, rolling budgets per credential), must drop
//! connections and cut bodies for fault tests, and must stay fast at 100,000 repositories.
//!
//! What it does as the real service does (see `docs/api-facts/bitbucket-cloud.md`):
//! - credentials: Atlassian API tokens as Basic `e-mail:token` with scopes, access tokens as
//!   Bearer (one workspace each, no cross-workspace endpoints), OAuth client credentials at
//!   `/site/oauth2/access_token` with expiring tokens; app passwords are refused (removed);
//! - pagination: `pagelen` 10 by default, at most 100; `page`; `next` as an absolute URL carrying
//!   every parameter; `fields` projections that drop `next` unless asked for;
//! - `q` filters (`=`, `!=`, `>`, `>=`, `<`, `<=`, `~` joined by `AND`) and `sort` on repositories;
//! - 410 with CHANGE-2770 on `/workspaces`, `/user/permissions/*` and `/repositories`;
//! - a rolling hourly budget per credential, plain-text 429s beyond it, and the
//!   `X-RateLimit-*` headers for access tokens;
//! - latency and faults through [`Sandbox::server`], and request counts per route and per
//!   credential through [`Sandbox::stats`].

mod changes;
mod hooks;
mod query;

use query::{apply_fields, parse_query};

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::RollingWindow;
use api_support::sandbox::{Handler, Request, Response, Server, Stats, lock};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

pub use hooks::{DeliveryRecord, SandboxHook};

/// The e-mail of the sample estate's API token user.
pub const SAMPLE_EMAIL: &str = "demo@example.com";
/// The sample estate's API token.
pub const SAMPLE_API_TOKEN: &str = "sandbox-api-token";
/// The sample estate's OAuth consumer key.
pub const SAMPLE_CONSUMER_KEY: &str = "sandbox-consumer";
/// The sample estate's OAuth consumer secret.
pub const SAMPLE_CONSUMER_SECRET: &str = "sandbox-consumer-secret";
/// The scopes an API token needs for mirroring.
pub const READ_SCOPES: [&str; 4] = [
    "read:user:bitbucket",
    "read:workspace:bitbucket",
    "read:project:bitbucket",
    "read:repository:bitbucket",
];

const GONE_BODY: &str = r#"{"type":"error","error":{"message":"CHANGE-2770 - Functionality has been deprecated","detail":"Please read the changelog entry for more details.","data":{"announcement_url":"https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770"}}}"#;
const NOT_ACCESSIBLE: &str = "This API is not accessible by this authentication mechanism";

/// A repository of the fake estate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxRepository {
    /// The slug.
    pub slug: String,
    /// The UUID, with braces.
    pub uuid: String,
    /// The key of its project.
    pub project_key: Option<String>,
    /// Whether it is private.
    pub is_private: bool,
    /// The main branch; `None` for an empty repository.
    pub main_branch: Option<String>,
    /// `workspace/slug` of the repository it was forked from.
    pub parent: Option<String>,
    /// The language.
    pub language: String,
    /// Creation time (RFC 3339).
    pub created_on: String,
    /// Last update (RFC 3339).
    pub updated_on: String,
}

impl SandboxRepository {
    /// A private repository on `main`, updated on 2026-01-01.
    pub fn new(slug: &str, uuid: &str) -> Self {
        Self {
            slug: slug.to_owned(),
            uuid: uuid.to_owned(),
            project_key: None,
            is_private: true,
            main_branch: Some("main".to_owned()),
            parent: None,
            language: String::new(),
            created_on: "2025-01-01T00:00:00.000000+00:00".to_owned(),
            updated_on: "2026-01-01T00:00:00.000000+00:00".to_owned(),
        }
    }
}

/// A project of the fake estate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxProject {
    /// The key.
    pub key: String,
    /// The name.
    pub name: String,
    /// The UUID.
    pub uuid: String,
}

/// A workspace of the fake estate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxWorkspace {
    /// The slug.
    pub slug: String,
    /// The name.
    pub name: String,
    /// The UUID.
    pub uuid: String,
    /// Its projects.
    pub projects: Vec<SandboxProject>,
    /// Its repositories.
    pub repositories: Vec<SandboxRepository>,
}

/// The workspaces, projects and repositories the fake serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estate {
    /// The workspaces, in order.
    pub workspaces: Vec<SandboxWorkspace>,
}

fn uuid(a: u64, b: u64) -> String {
    format!("{{{a:08x}-0000-4000-8000-{b:012x}}}")
}

/// `days` and `seconds` after 2025-01-01 as Bitbucket writes times (RFC 3339 with
/// microseconds and `+00:00`).
fn date_after_2025(days: u32, seconds: u32) -> String {
    // 2025-01-01T00:00:00Z.
    const START: u64 = 1_735_689_600;
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(
            START + u64::from(days) * 86_400 + u64::from(seconds % 86_400),
        );
    bitbucket_time(at)
}

/// A time as Bitbucket writes it: RFC 3339 with microseconds and `+00:00`.
fn bitbucket_time(at: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_micros(at).to_string();
    match text.strip_suffix('Z') {
        Some(utc) => format!("{utc}+00:00"),
        None => text,
    }
}

impl Estate {
    /// A small estate for the demo: three workspaces, twelve repositories, among them an empty
    /// one (no main branch), a fork, public and private ones.
    pub fn sample() -> Self {
        let mut n = 0u64;
        let mut repo = |slug: &str,
                        project: &str,
                        language: &str,
                        main: Option<&str>,
                        private: bool,
                        parent: Option<&str>| {
            n += 1;
            SandboxRepository {
                slug: slug.to_owned(),
                uuid: uuid(0xac3e, n),
                project_key: Some(project.to_owned()),
                is_private: private,
                main_branch: main.map(str::to_owned),
                parent: parent.map(str::to_owned),
                language: language.to_owned(),
                created_on: date_after_2025(n as u32 * 7, 3600),
                updated_on: date_after_2025(300 + n as u32 * 5, 7200),
            }
        };
        let platform = vec![
            repo("api-gateway", "CORE", "go", Some("main"), true, None),
            repo("billing-service", "CORE", "java", Some("main"), true, None),
            repo(
                "web-frontend",
                "WEB",
                "typescript",
                Some("main"),
                true,
                None,
            ),
            repo(
                "design-system",
                "WEB",
                "typescript",
                Some("master"),
                false,
                None,
            ),
            repo("empty-sandbox", "CORE", "", None, true, None),
            repo(
                "api-gateway-fork",
                "CORE",
                "go",
                Some("main"),
                true,
                Some("acme-platform/api-gateway"),
            ),
        ];
        let mobile = vec![
            repo("android-app", "APP", "kotlin", Some("main"), true, None),
            repo("ios-app", "APP", "swift", Some("main"), true, None),
            repo("shared-kit", "APP", "kotlin", Some("develop"), false, None),
        ];
        let data = vec![
            repo("ml-models", "DATA", "python", Some("main"), true, None),
            repo("notebooks", "DATA", "python", Some("main"), false, None),
            repo("pipelines", "DATA", "python", Some("main"), true, None),
        ];
        let project = |key: &str, name: &str, i: u64| SandboxProject {
            key: key.to_owned(),
            name: name.to_owned(),
            uuid: uuid(0x9000, i),
        };
        Self {
            workspaces: vec![
                SandboxWorkspace {
                    slug: "acme-platform".into(),
                    name: "ACME Platform".into(),
                    uuid: uuid(1, 1),
                    projects: vec![
                        project("CORE", "Core services", 1),
                        project("WEB", "Web", 2),
                    ],
                    repositories: platform,
                },
                SandboxWorkspace {
                    slug: "acme-mobile".into(),
                    name: "ACME Mobile".into(),
                    uuid: uuid(1, 2),
                    projects: vec![project("APP", "Apps", 3)],
                    repositories: mobile,
                },
                SandboxWorkspace {
                    slug: "acme-data".into(),
                    name: "ACME Data".into(),
                    uuid: uuid(1, 3),
                    projects: vec![project("DATA", "Data", 4)],
                    repositories: data,
                },
            ],
        }
    }

    /// `workspaces` × `repositories` generated from `seed`: three projects per workspace, about
    /// one repository in 20 empty (no main branch), one in 25 a fork, one in 5 public.
    pub fn generate(workspaces: usize, repositories: usize, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let languages = ["python", "java", "go", "typescript", "kotlin", "ruby", ""];
        let keys = ["CORE", "WEB", "DATA"];
        let workspaces = (0..workspaces)
            .map(|w| {
                let slug = format!("ws-{:04}", w + 1);
                let repos = (0..repositories)
                    .map(|r| {
                        let n = (w * repositories + r) as u64;
                        let empty = rng.u32(0..20) == 0;
                        let fork = r > 0 && rng.u32(0..25) == 0;
                        SandboxRepository {
                            slug: format!("repo-{:05}", r + 1),
                            uuid: uuid(w as u64 + 1, n + 1),
                            project_key: Some(keys[r % keys.len()].to_owned()),
                            is_private: rng.u32(0..5) != 0,
                            main_branch: (!empty)
                                .then(|| if rng.bool() { "main" } else { "master" }.to_owned()),
                            parent: fork.then(|| format!("{slug}/repo-{:05}", rng.usize(0..r) + 1)),
                            language: languages[rng.usize(0..languages.len())].to_owned(),
                            created_on: date_after_2025(rng.u32(0..300), rng.u32(0..86_400)),
                            updated_on: date_after_2025(rng.u32(300..690), rng.u32(0..86_400)),
                        }
                    })
                    .collect();
                SandboxWorkspace {
                    name: format!("Workspace {}", w + 1),
                    uuid: uuid(0xf000 + w as u64, 0),
                    projects: keys
                        .iter()
                        .enumerate()
                        .map(|(i, k)| SandboxProject {
                            key: (*k).to_owned(),
                            name: k.to_lowercase(),
                            uuid: uuid(0xe000 + w as u64, i as u64),
                        })
                        .collect(),
                    repositories: repos,
                    slug,
                }
            })
            .collect();
        Self { workspaces }
    }

    /// How many repositories the estate holds.
    pub fn repository_count(&self) -> usize {
        self.workspaces.iter().map(|w| w.repositories.len()).sum()
    }
}

#[derive(Clone, Debug)]
struct ApiTokenUser {
    email: String,
    token: String,
    scopes: Vec<String>,
}

#[derive(Clone, Debug)]
struct Consumer {
    key: String,
    secret: String,
    lifetime: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Principal {
    ApiToken { label: String, scopes: Vec<String> },
    AccessToken { label: String, workspace: String },
    OAuth { label: String },
}

impl Principal {
    fn label(&self) -> &str {
        match self {
            Self::ApiToken { label, .. }
            | Self::AccessToken { label, .. }
            | Self::OAuth { label } => label,
        }
    }

    fn credential_type(&self) -> &'static str {
        match self {
            Self::ApiToken { .. } => "api_token",
            Self::AccessToken { .. } => "workspace_access_token",
            Self::OAuth { .. } => "oauth2",
        }
    }

    fn sees(&self, workspace: &str) -> bool {
        match self {
            Self::AccessToken { workspace: w, .. } => w == workspace,
            _ => true,
        }
    }
}

struct State {
    estate: Estate,
    api_tokens: Vec<ApiTokenUser>,
    access_tokens: Vec<(String, String)>,
    consumers: Vec<Consumer>,
    issued: HashMap<String, (String, Instant)>,
    issued_count: u64,
    hourly_budget: Option<u32>,
    windows: HashMap<String, RollingWindow>,
    /// Workspaces no credential can see any more (their slugs).
    hidden: std::collections::HashSet<String>,
    /// Repositories answered oddly (by lowercased uuid).
    oddities: HashMap<String, Oddity>,
    /// Repositories created through the control route so far.
    created: u64,
    /// Workspace webhooks.
    hooks: Vec<SandboxHook>,
    /// E-mails of API token users who own no workspace (they may not manage webhooks).
    non_owners: std::collections::HashSet<String>,
    /// Where deliveries go to be sent.
    outbox: Option<tokio::sync::mpsc::UnboundedSender<hooks::Outgoing>>,
}

/// Builds a [`Sandbox`].
#[derive(Debug, Default)]
pub struct SandboxBuilder {
    estate: Option<Estate>,
    api_tokens: Vec<ApiTokenUser>,
    access_tokens: Vec<(String, String)>,
    consumers: Vec<Consumer>,
    hourly_budget: Option<u32>,
    latency: Duration,
    non_owners: Vec<String>,
}

impl SandboxBuilder {
    /// The estate to serve (default [`Estate::sample`]).
    pub fn estate(mut self, estate: Estate) -> Self {
        self.estate = Some(estate);
        self
    }

    /// Accepts an Atlassian API token for `email` with every read scope.
    pub fn api_token(self, email: &str, token: &str) -> Self {
        self.api_token_with_scopes(email, token, &READ_SCOPES)
    }

    /// Accepts an Atlassian API token for `email` with the given scopes.
    pub fn api_token_with_scopes(mut self, email: &str, token: &str, scopes: &[&str]) -> Self {
        self.api_tokens.push(ApiTokenUser {
            email: email.to_owned(),
            token: token.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Accepts an access token for `workspace`. Its credential label is `access-token#N`, N
    /// counting from 0 in the order added.
    pub fn access_token(mut self, token: &str, workspace: &str) -> Self {
        self.access_tokens
            .push((token.to_owned(), workspace.to_owned()));
        self
    }

    /// Accepts an OAuth consumer whose tokens last `lifetime`.
    pub fn oauth_consumer(mut self, key: &str, secret: &str, lifetime: Duration) -> Self {
        self.consumers.push(Consumer {
            key: key.to_owned(),
            secret: secret.to_owned(),
            lifetime,
        });
        self
    }

    /// The hourly budget of every credential for repository data, `/2.0/repositories/…`
    /// (default: none).
    pub fn hourly_budget(mut self, requests: u32) -> Self {
        self.hourly_budget = Some(requests);
        self
    }

    /// The API token user `email` owns no workspace: managing webhooks answers 403.
    pub fn non_owner(mut self, email: &str) -> Self {
        self.non_owners.push(email.to_owned());
        self
    }

    /// Latency added to every answer.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Starts the sandbox on 127.0.0.1 with a random port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(self) -> io::Result<Sandbox> {
        let state = State {
            estate: self.estate.unwrap_or_else(Estate::sample),
            api_tokens: self.api_tokens,
            access_tokens: self.access_tokens,
            consumers: self.consumers,
            issued: HashMap::new(),
            issued_count: 0,
            hourly_budget: self.hourly_budget,
            windows: HashMap::new(),
            hidden: std::collections::HashSet::new(),
            oddities: HashMap::new(),
            created: 0,
            hooks: Vec::new(),
            non_owners: self.non_owners.into_iter().collect(),
            outbox: None,
        };
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let (server, state) =
            Server::start_with_state(state, self.latency, |state| FakeBitbucket { state }).await?;
        lock(&state).outbox = Some(hooks::start_courier(deliveries.clone()));
        Ok(Sandbox {
            server,
            state,
            deliveries,
        })
    }
}

/// A running fake Bitbucket Cloud; it stops when dropped.
pub struct Sandbox {
    server: Server,
    state: Arc<Mutex<State>>,
    deliveries: Arc<Mutex<Vec<DeliveryRecord>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url())
            .finish()
    }
}

impl Sandbox {
    /// Starts building a sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The sample estate with the sample API token ([`SAMPLE_EMAIL`], [`SAMPLE_API_TOKEN`]), the
    /// sample OAuth consumer (tokens last an hour) and one access token per workspace
    /// (`sandbox-access-token-<workspace>`).
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start_sample() -> io::Result<Self> {
        let estate = Estate::sample();
        let mut builder = Self::builder()
            .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
            .oauth_consumer(
                SAMPLE_CONSUMER_KEY,
                SAMPLE_CONSUMER_SECRET,
                Duration::from_secs(3600),
            );
        for w in &estate.workspaces {
            builder = builder.access_token(&format!("sandbox-access-token-{}", w.slug), &w.slug);
        }
        builder.estate(estate).start().await
    }

    /// The API base URL, such as `http://127.0.0.1:41234/2.0`.
    pub fn base_url(&self) -> String {
        format!("{}/2.0", self.server.url())
    }

    /// The OAuth token URL.
    pub fn token_url(&self) -> String {
        format!("{}/site/oauth2/access_token", self.server.url())
    }

    /// The underlying server: latency and fault injection.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Requests per route and per credential so far.
    pub fn stats(&self) -> Stats {
        self.server.stats()
    }

    /// How many OAuth tokens were issued.
    pub fn issued_tokens(&self) -> u64 {
        lock(&self.state).issued_count
    }

    /// Adds a repository to a workspace (a repository created between two runs).
    /// Delivers `repo:created` to the workspace's webhooks.
    pub fn add_repository(&self, workspace: &str, repository: SandboxRepository) -> bool {
        lock(&self.state).add_repository(&self.server.url(), workspace, repository)
    }

    /// Renames a repository (same uuid, new slug; `updated_on` moves). The old slug answers 404.
    /// Delivers `repo:updated` to the workspace's webhooks.
    pub fn rename_repository(&self, workspace: &str, slug: &str, new_slug: &str) -> bool {
        lock(&self.state).rename_repository(&self.server.url(), workspace, slug, new_slug)
    }

    /// Moves a repository to another workspace (same uuid; `updated_on` moves); refused (false)
    /// when the destination has a repository of that slug. Delivers `repo:transfer` to the
    /// webhooks of both workspaces.
    pub fn transfer_repository(&self, workspace: &str, slug: &str, to_workspace: &str) -> bool {
        lock(&self.state).transfer_repository(&self.server.url(), workspace, slug, to_workspace)
    }

    /// Deletes a repository: it leaves the listing and answers 404 by slug and by uuid.
    /// Delivers `repo:deleted` to the workspace's webhooks.
    pub fn delete_repository(&self, workspace: &str, slug: &str) -> bool {
        lock(&self.state).delete_repository(&self.server.url(), workspace, slug)
    }

    /// The webhooks of a workspace, as the sandbox holds them (secrets included, for tests).
    pub fn hooks(&self, workspace: &str) -> Vec<SandboxHook> {
        let state = lock(&self.state);
        let Some(uuid) = state
            .estate
            .workspaces
            .iter()
            .find(|w| w.slug == workspace)
            .map(|w| w.uuid.clone())
        else {
            return Vec::new();
        };
        state
            .hooks
            .iter()
            .filter(|h| h.workspace_uuid == uuid)
            .cloned()
            .collect()
    }

    /// Every delivery made so far, with the status of each attempt.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.deliveries).clone()
    }

    /// Changes a repository's default branch (`updated_on` moves).
    pub fn set_main_branch(&self, workspace: &str, slug: &str, branch: &str) -> bool {
        lock(&self.state).set_main_branch(workspace, slug, branch)
    }

    /// Moves a repository to another Bitbucket project of its workspace (`updated_on` moves).
    pub fn set_project_key(&self, workspace: &str, slug: &str, key: &str) -> bool {
        lock(&self.state).set_project_key(workspace, slug, key)
    }

    /// Renames a workspace (same uuid, new slug).
    pub fn rename_workspace(&self, slug: &str, new_slug: &str) -> bool {
        lock(&self.state)
            .estate
            .workspaces
            .iter_mut()
            .find(|w| w.slug == slug)
            .is_some_and(|w| {
                w.slug = new_slug.to_owned();
                true
            })
    }

    /// Hides a workspace from every credential, as when access to it is revoked: it leaves
    /// `/user/workspaces` and its repositories answer 404.
    pub fn hide_workspace(&self, slug: &str) {
        lock(&self.state).hidden.insert(slug.to_owned());
    }

    /// Answers a repository (by uuid) oddly from now on, in listings and lookups alike;
    /// `None` answers it normally again.
    pub fn make_odd(&self, uuid: &str, oddity: Option<Oddity>) {
        let mut state = lock(&self.state);
        match oddity {
            Some(o) => state.oddities.insert(uuid.to_lowercase(), o),
            None => state.oddities.remove(&uuid.to_lowercase()),
        };
    }

    /// Revokes every OAuth access token issued so far: the next request with one gets a 401.
    pub fn revoke_oauth_tokens(&self) {
        lock(&self.state).issued.clear();
    }

    /// A copy of the estate as it is now.
    pub fn estate(&self) -> Estate {
        lock(&self.state).estate.clone()
    }
}

/// How a repository can be answered oddly ([`Sandbox::make_odd`]): what the vendor's document
/// allows, or what a proxy or an inconsistent replica might send, that a mirror must not take
/// for evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Oddity {
    /// Without `slug` and `full_name` (the vendor's schema requires neither).
    Unusable,
    /// With a value of the wrong type (`is_private: "sometimes"`): it does not decode.
    Undecodable,
    /// Naming another workspace as its own (`workspace.slug`, `full_name`).
    ForeignWorkspace(String),
    /// Gone from the listing, and its lookup answers 403: the credentials lost access to it.
    Forbidden,
}

impl Oddity {
    /// The repository's JSON as this oddity answers it.
    fn apply(&self, v: &mut Value) {
        match self {
            Self::Unusable => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("slug");
                    o.remove("full_name");
                }
            }
            Self::Undecodable => v["is_private"] = json!("sometimes"),
            Self::ForeignWorkspace(ws) => {
                let slug = v["slug"].as_str().unwrap_or_default().to_owned();
                v["workspace"]["slug"] = json!(ws);
                v["full_name"] = json!(format!("{ws}/{slug}"));
            }
            Self::Forbidden => {}
        }
    }
}

/// The repository `workspace/slug`, to change it.
fn find_repository<'a>(
    workspaces: &'a mut [SandboxWorkspace],
    workspace: &str,
    slug: &str,
) -> Option<&'a mut SandboxRepository> {
    workspaces
        .iter_mut()
        .find(|w| w.slug == workspace)?
        .repositories
        .iter_mut()
        .find(|r| r.slug == slug)
}

/// The time now as Bitbucket writes it.
fn now_text() -> String {
    bitbucket_time(std::time::SystemTime::now())
}

struct FakeBitbucket {
    state: Arc<Mutex<State>>,
}

impl Handler for FakeBitbucket {
    fn handle(&self, request: &Request) -> Response {
        lock(&self.state).handle(request)
    }
}

fn error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        &json!({"type": "error", "error": {"message": message}}),
    )
}

impl State {
    fn handle(&mut self, req: &Request) -> Response {
        let segments = req.segments();
        if req.method == http::Method::POST && segments == ["site", "oauth2", "access_token"] {
            return self
                .issue_token(req)
                .route("POST /site/oauth2/access_token");
        }
        if let ["2.0", "workspaces", ws, "hooks", rest @ ..] = segments.as_slice() {
            return self.hooks_route(req, ws, rest);
        }
        if req.method == http::Method::POST && segments == ["sandbox", "changes"] {
            return self.changes_route(req).route("POST /sandbox/changes");
        }
        if req.method != http::Method::GET {
            return error(405, "method not allowed in the sandbox").route("other");
        }
        let Some(("2.0", rest)) = segments.split_first().map(|(a, b)| (*a, b)) else {
            return error(404, "Resource not found").route("other");
        };
        let gone = matches!(
            rest,
            ["workspaces"]
                | ["repositories"]
                | ["user", "permissions", "workspaces" | "repositories"]
        );
        if gone {
            let mut r = Response::json(410, &serde_json::from_str(GONE_BODY).unwrap_or_default());
            r.route = format!("GET /{} (removed)", rest.join("/"));
            return r;
        }
        let route = match rest {
            ["user"] => "GET /user",
            ["user", "workspaces"] => "GET /user/workspaces",
            ["workspaces", _] => "GET /workspaces/{workspace}",
            ["workspaces", _, "projects"] => "GET /workspaces/{workspace}/projects",
            ["repositories", _] => "GET /repositories/{workspace}",
            ["repositories", _, _] => "GET /repositories/{workspace}/{repo_slug}",
            _ => return error(404, "Resource not found").route("other"),
        };
        let principal = match self.authenticate(req) {
            Ok(p) => p,
            Err(r) => return r.route(route),
        };
        let label = principal.label().to_owned();
        let mut extra: Vec<(&'static str, String)> =
            vec![("x-credential-type", principal.credential_type().to_owned())];
        if let Principal::ApiToken { scopes, .. } = &principal {
            extra.push(("x-oauth-scopes", scopes.join(", ")));
        }
        // Like Bitbucket, the hourly budget covers repository data only.
        let budgeted = matches!(rest, ["repositories", ..]);
        if let Some(budget) = self.hourly_budget.filter(|_| budgeted) {
            let admitted = self
                .windows
                .entry(label.clone())
                .or_insert_with(|| RollingWindow::new(budget as usize, Duration::from_secs(3600)))
                .admit(Instant::now());
            let Ok(remaining) = admitted else {
                let mut r = Response::text(429, "Rate limit for this resource has been exceeded");
                if matches!(principal, Principal::AccessToken { .. }) {
                    r = r
                        .header("x-ratelimit-limit", budget.to_string())
                        .header("x-ratelimit-resource", "api-repository")
                        .header("x-ratelimit-nearlimit", "true");
                }
                return r.route(route).credential(Some(label));
            };
            if matches!(principal, Principal::AccessToken { .. }) {
                extra.push(("x-ratelimit-limit", budget.to_string()));
                extra.push(("x-ratelimit-resource", "api-repository".to_owned()));
                extra.push((
                    "x-ratelimit-nearlimit",
                    (remaining * 5 < budget as usize).to_string(),
                ));
            }
        }
        let mut response = self.route(req, rest, &principal);
        for (name, value) in extra {
            response = response.header(name, value);
        }
        response.route(route).credential(Some(label))
    }

    fn issue_token(&mut self, req: &Request) -> Response {
        let form = req.form();
        let grant = form
            .iter()
            .find(|(k, _)| k == "grant_type")
            .map(|(_, v)| v.as_str());
        if grant != Some("client_credentials") {
            return Response::json(
                400,
                &json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}),
            );
        }
        let Some((key, secret)) = req.basic() else {
            return Response::json(
                401,
                &json!({"error": "invalid_client", "error_description": "Client credentials missing"}),
            );
        };
        let Some(consumer) = self
            .consumers
            .iter()
            .find(|c| c.key == key && c.secret == secret)
            .cloned()
        else {
            return Response::json(
                401,
                &json!({"error": "invalid_client", "error_description": "Invalid OAuth client credentials"}),
            );
        };
        self.issued_count += 1;
        let token = format!("sbx-oauth-{}-{:016x}", self.issued_count, fastrand::u64(..));
        self.issued.insert(
            token.clone(),
            (consumer.key.clone(), Instant::now() + consumer.lifetime),
        );
        Response::json(
            200,
            &json!({
                "access_token": token,
                "scopes": READ_SCOPES.join(" "),
                "expires_in": consumer.lifetime.as_secs(),
                "refresh_token": format!("sbx-refresh-{}", self.issued_count),
                "token_type": "bearer",
                "state": "client_credentials",
            }),
        )
        .credential(Some(format!("oauth:{}", consumer.key)))
    }

    fn authenticate(&self, req: &Request) -> Result<Principal, Box<Response>> {
        let unauthorized = || Box::new(error(401, "Unauthorized"));
        let Some((scheme, value)) = req.authorization() else {
            return Err(unauthorized());
        };
        match scheme.as_str() {
            "basic" => {
                let (user, password) = req.basic().ok_or_else(unauthorized)?;
                self.api_tokens
                    .iter()
                    .find(|u| u.email == user && u.token == password)
                    .map(|u| Principal::ApiToken {
                        label: format!("api-token:{}", u.email),
                        scopes: u.scopes.clone(),
                    })
                    .ok_or_else(unauthorized)
            }
            "bearer" => {
                if let Some(i) = self.access_tokens.iter().position(|(t, _)| *t == value) {
                    return Ok(Principal::AccessToken {
                        label: format!("access-token#{i}"),
                        workspace: self.access_tokens[i].1.clone(),
                    });
                }
                match self.issued.get(&value) {
                    Some((consumer, expiry)) if Instant::now() < *expiry => Ok(Principal::OAuth {
                        label: format!("oauth:{consumer}"),
                    }),
                    Some(_) => Err(Box::new(error(401, "Access token expired."))),
                    None => Err(unauthorized()),
                }
            }
            _ => Err(unauthorized()),
        }
    }

    /// The read routes, each to its handler once the caller's scope allows it (API tokens
    /// carry scopes; access tokens see one workspace and no user).
    fn route(&self, req: &Request, rest: &[&str], principal: &Principal) -> Response {
        let cross_workspace = matches!(principal, Principal::AccessToken { .. });
        match rest {
            ["user"] | ["user", "workspaces"] if cross_workspace => error(403, NOT_ACCESSIBLE),
            ["user"] => needs(principal, "read:user:bitbucket").unwrap_or_else(user),
            ["user", "workspaces"] => needs(principal, "read:workspace:bitbucket")
                .unwrap_or_else(|| self.user_workspaces(req)),
            ["workspaces", ws, tail @ ..] => {
                self.in_workspace(principal, "read:workspace:bitbucket", ws, |w| match tail {
                    [] => Response::json(200, &workspace_json(w, &req.origin)),
                    _ => needs(principal, "read:project:bitbucket")
                        .unwrap_or_else(|| projects(req, w)),
                })
            }
            ["repositories", ws, tail @ ..] => {
                self.in_workspace(principal, "read:repository:bitbucket", ws, |w| match tail {
                    [slug] => self.repository(req, w, slug),
                    _ => self.repositories(req, w),
                })
            }
            _ => error(404, "Resource not found"),
        }
    }

    /// `handler`'s answer for the workspace `ws`, once the caller has `scope` and sees it.
    fn in_workspace(
        &self,
        principal: &Principal,
        scope: &str,
        ws: &str,
        handler: impl FnOnce(&SandboxWorkspace) -> Response,
    ) -> Response {
        if let Some(refused) = needs(principal, scope) {
            return refused;
        }
        match self.workspace(ws, principal) {
            Some(w) => handler(w),
            None => error(404, &format!("No workspace with identifier '{ws}'.")),
        }
    }

    /// `GET /2.0/user/workspaces`: the workspaces the caller sees (not those hidden), sorted
    /// by slug either way.
    fn user_workspaces(&self, req: &Request) -> Response {
        if let Some(sort) = req.query_value("sort")
            && sort.trim_start_matches('-') != "slug"
        {
            return error(400, "Invalid sort field: only slug is supported");
        }
        let admin_filter = req.query_value("administrator");
        let mut items: Vec<Value> = self
            .estate
            .workspaces
            .iter()
            .filter(|w| !self.hidden.contains(&w.slug))
            .filter(|_| admin_filter != Some("false"))
            .map(|w| {
                json!({
                    "type": "workspace_access",
                    "administrator": true,
                    "workspace": {
                        "type": "workspace_base",
                        "slug": w.slug,
                        "uuid": w.uuid,
                        "links": {"self": {"href": format!("{}/2.0/workspaces/{}", req.origin, w.slug)}},
                    },
                })
            })
            .collect();
        items.sort_by(|a, b| {
            a["workspace"]["slug"]
                .as_str()
                .cmp(&b["workspace"]["slug"].as_str())
        });
        if req.query_value("sort") == Some("-slug") {
            items.reverse();
        }
        paginate(req, items)
    }

    /// `GET /2.0/repositories/{workspace}/{repo_slug}`: one repository by slug or by uuid
    /// with braces (an old slug does not redirect after a rename); one made odd
    /// ([`Sandbox::make_odd`]) answered so.
    fn repository(&self, req: &Request, w: &SandboxWorkspace, slug: &str) -> Response {
        let ws = &w.slug;
        let by_uuid = slug.starts_with('{');
        let found = w.repositories.iter().find(|r| {
            if by_uuid {
                r.uuid.eq_ignore_ascii_case(slug)
            } else {
                r.slug == slug
            }
        });
        let oddity = found.and_then(|r| self.oddities.get(&r.uuid.to_lowercase()));
        match (found, oddity) {
            (Some(_), Some(Oddity::Forbidden)) => {
                error(403, "You do not have access to this repository.")
            }
            (Some(r), _) => {
                let mut v = repository_json(w, r, &req.origin);
                if let Some(o) = oddity {
                    o.apply(&mut v);
                }
                Response::json(200, &v)
            }
            (None, _) => error(404, &format!("Repository {ws}/{slug} not found")),
        }
    }

    /// `GET /2.0/repositories/{workspace}`: the listing, with `role`, `q` and `sort`;
    /// repositories made odd answered so, forbidden ones left out.
    fn repositories(&self, req: &Request, w: &SandboxWorkspace) -> Response {
        if let Some(role) = req.query_value("role")
            && !["member", "contributor", "admin", "owner"].contains(&role)
        {
            return error(400, &format!("Invalid role '{role}'"));
        }
        let mut items: Vec<Value> = w
            .repositories
            .iter()
            .filter(|r| self.oddities.get(&r.uuid.to_lowercase()) != Some(&Oddity::Forbidden))
            .map(|r| {
                let mut v = repository_json(w, r, &req.origin);
                if let Some(o) = self.oddities.get(&r.uuid.to_lowercase()) {
                    o.apply(&mut v);
                }
                v
            })
            .collect();
        if let Some(q) = req.query_value("q") {
            let clauses = match parse_query(q) {
                Ok(c) => c,
                Err(m) => return error(400, &m),
            };
            items.retain(|item| {
                clauses
                    .iter()
                    .all(|any| any.iter().any(|c| c.matches(item)))
            });
        }
        if let Some(sort) = req.query_value("sort") {
            let (descending, field) = match sort.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, sort),
            };
            if !["slug", "name", "full_name", "updated_on", "created_on"].contains(&field) {
                return error(400, &format!("Invalid sort field '{field}'"));
            }
            items.sort_by(|a, b| {
                let key = |v: &Value| v[field].as_str().unwrap_or_default().to_owned();
                let o = key(a).cmp(&key(b));
                if descending { o.reverse() } else { o }
            });
        }
        paginate(req, items)
    }

    /// `/2.0/workspaces/{workspace}/hooks[/{uid}]`: owners only.
    fn hooks_route(&mut self, req: &Request, ws: &str, rest: &[&str]) -> Response {
        let method = req.method.clone();
        let route = match (method.as_str(), rest) {
            ("GET" | "POST", []) => format!("{method} /workspaces/{{workspace}}/hooks"),
            ("GET" | "PUT" | "DELETE", [_]) => {
                format!("{method} /workspaces/{{workspace}}/hooks/{{uid}}")
            }
            _ => return error(405, "method not allowed").route("other"),
        };
        let principal = match self.authenticate(req) {
            Ok(p) => p,
            Err(r) => return r.route(route),
        };
        let label = principal.label().to_owned();
        let response = self.hooks_answer(req, ws, rest, &principal);
        response.route(route).credential(Some(label))
    }

    fn hooks_answer(
        &mut self,
        req: &Request,
        ws: &str,
        rest: &[&str],
        principal: &Principal,
    ) -> Response {
        let Some(w) = self.workspace(ws, principal) else {
            return error(404, &format!("No workspace with identifier '{ws}'."));
        };
        let (slug, workspace_uuid) = (w.slug.clone(), w.uuid.clone());
        if let Principal::ApiToken { label, .. } = principal
            && self
                .non_owners
                .iter()
                .any(|e| label.strip_prefix("api-token:") == Some(e.as_str()))
        {
            return error(
                403,
                "You must be an owner of this workspace to manage its webhooks.",
            );
        }
        let at = |hooks: &[SandboxHook], uid: &str| {
            hooks.iter().position(|h| {
                h.workspace_uuid == workspace_uuid && h.uuid.eq_ignore_ascii_case(uid)
            })
        };
        match (req.method.as_str(), rest) {
            ("GET", []) => {
                let items = self
                    .hooks
                    .iter()
                    .filter(|h| h.workspace_uuid == workspace_uuid)
                    .map(|h| hooks::hook_json(h, &slug, &req.origin))
                    .collect();
                paginate(req, items)
            }
            ("POST", []) => match hooks::hook_from_body(req, None, &workspace_uuid) {
                Ok(hook) => {
                    let body = hooks::hook_json(&hook, &slug, &req.origin);
                    self.hooks.push(hook);
                    Response::json(201, &body)
                }
                Err(r) => *r,
            },
            (method, [uid]) => {
                let Some(i) = at(&self.hooks, uid) else {
                    return error(404, "Webhook not found");
                };
                match method {
                    "GET" => {
                        Response::json(200, &hooks::hook_json(&self.hooks[i], &slug, &req.origin))
                    }
                    "PUT" => {
                        match hooks::hook_from_body(req, Some(&self.hooks[i]), &workspace_uuid) {
                            Ok(hook) => {
                                self.hooks[i] = hook;
                                Response::json(
                                    200,
                                    &hooks::hook_json(&self.hooks[i], &slug, &req.origin),
                                )
                            }
                            Err(r) => *r,
                        }
                    }
                    _ => {
                        self.hooks.remove(i);
                        Response::empty(204)
                    }
                }
            }
            _ => error(405, "method not allowed"),
        }
    }

    /// Delivers `event` for the repository `uuid` (now in `workspace`) to `workspace`'s hooks.
    fn emit(&mut self, origin: &str, event: &str, workspace: &str, uuid: &str, extra: Value) {
        self.emit_to(origin, event, workspace, workspace, uuid, extra);
    }

    /// Delivers `event` for the repository `uuid` (now in `now_in`) to `hooks_of`'s hooks.
    fn emit_to(
        &mut self,
        origin: &str,
        event: &str,
        hooks_of: &str,
        now_in: &str,
        uuid: &str,
        extra: Value,
    ) {
        let Some(w) = self.estate.workspaces.iter().find(|w| w.slug == now_in) else {
            return;
        };
        let Some(r) = w.repositories.iter().find(|r| r.uuid == uuid) else {
            return;
        };
        let mut payload = json!({"repository": repository_json(w, r, origin), "actor": actor()});
        if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
            p.extend(e);
        }
        self.emit_payload(hooks_of, event, &payload);
    }

    fn emit_payload(&mut self, hooks_of: &str, event: &str, payload: &Value) {
        let Some(workspace_uuid) = self
            .estate
            .workspaces
            .iter()
            .find(|w| w.slug == hooks_of)
            .map(|w| w.uuid.clone())
        else {
            return;
        };
        let hooks: Vec<&SandboxHook> = self
            .hooks
            .iter()
            .filter(|h| h.workspace_uuid == workspace_uuid)
            .collect();
        let Some(outbox) = &self.outbox else {
            return;
        };
        for out in hooks::outgoing(&hooks, event, payload) {
            let _ = outbox.send(out);
        }
    }

    fn workspace(&self, slug: &str, principal: &Principal) -> Option<&SandboxWorkspace> {
        self.estate
            .workspaces
            .iter()
            .find(|w| w.slug == slug && principal.sees(slug) && !self.hidden.contains(slug))
    }
}

/// The user events are attributed to.
/// The caller's refusal when an API token lacks `scope`.
fn needs(principal: &Principal, scope: &str) -> Option<Response> {
    match principal {
        Principal::ApiToken { scopes, .. } if !scopes.iter().any(|s| s == scope) => Some(
            error(
                403,
                "Your credentials lack one or more required privilege scopes.",
            )
            .header("x-accepted-oauth-scopes", scope),
        ),
        _ => None,
    }
}

/// `GET /2.0/user`: the sandbox's one user.
fn user() -> Response {
    Response::json(
        200,
        &json!({
            "type": "user",
            "uuid": "{00000000-0000-4000-8000-00000000beef}",
            "account_id": "557058:sandbox",
            "display_name": "Sandbox User",
            "nickname": "sandbox",
            "account_status": "active",
        }),
    )
}

/// `GET /2.0/workspaces/{workspace}/projects`: a page of the workspace's projects.
fn projects(req: &Request, w: &SandboxWorkspace) -> Response {
    let items = w
        .projects
        .iter()
        .map(|p| {
            json!({"type": "project", "key": p.key, "uuid": p.uuid, "name": p.name, "is_private": true,
                   "created_on": "2025-01-01T00:00:00.000000+00:00", "updated_on": "2026-01-01T00:00:00.000000+00:00"})
        })
        .collect();
    paginate(req, items)
}

fn actor() -> Value {
    json!({"type": "user", "display_name": "Sandbox User", "uuid": "{00000000-0000-4000-8000-00000000beef}"})
}

fn workspace_json(w: &SandboxWorkspace, origin: &str) -> Value {
    json!({
        "type": "workspace",
        "uuid": w.uuid,
        "name": w.name,
        "slug": w.slug,
        "is_private": true,
        "created_on": "2024-06-01T00:00:00.000000+00:00",
        "updated_on": "2026-01-01T00:00:00.000000+00:00",
        "links": {
            "self": {"href": format!("{origin}/2.0/workspaces/{}", w.slug)},
            "html": {"href": format!("https://bitbucket.org/{}/", w.slug)},
        },
    })
}

fn repository_json(w: &SandboxWorkspace, r: &SandboxRepository, origin: &str) -> Value {
    let project = w
        .projects
        .iter()
        .find(|p| Some(&p.key) == r.project_key.as_ref());
    let mut v = json!({
        "type": "repository",
        "uuid": r.uuid,
        "slug": r.slug,
        "name": r.slug,
        "full_name": format!("{}/{}", w.slug, r.slug),
        "workspace": {"type": "workspace", "slug": w.slug, "uuid": w.uuid, "name": w.name},
        "is_private": r.is_private,
        "scm": "git",
        "mainbranch": r.main_branch.as_ref().map(|b| json!({"type": "branch", "name": b})),
        "language": r.language,
        "size": 1024 + r.slug.len() as u64 * 100,
        "created_on": r.created_on,
        "updated_on": r.updated_on,
        "has_issues": false,
        "links": {
            "self": {"href": format!("{origin}/2.0/repositories/{}/{}", w.slug, r.slug)},
            "html": {"href": format!("https://bitbucket.org/{}/{}", w.slug, r.slug)},
        },
    });
    if let Some(p) = project {
        v["project"] = json!({"type": "project", "key": p.key, "uuid": p.uuid, "name": p.name});
    }
    if let Some(parent) = &r.parent {
        v["parent"] = json!({"type": "repository", "full_name": parent, "uuid": "{00000000-0000-4000-8000-0000000f0000}"});
    }
    v
}

/// Pages `items` as Bitbucket does: `pagelen` 10 by default and at most 100, `page` from 1, an
/// absolute `next` carrying every parameter, then the `fields` projection.
fn paginate(req: &Request, items: Vec<Value>) -> Response {
    let pagelen = match req.query_value("pagelen").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if n >= 1 => n.min(100),
        Some(_) => return error(400, "Invalid pagelen"),
    };
    let page = match req.query_value("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return error(400, "Invalid page"),
    };
    let total = items.len();
    let start = (page - 1).saturating_mul(pagelen).min(total);
    let end = (start + pagelen).min(total);
    let values: Vec<Value> = items[start..end].to_vec();
    let mut body = Map::new();
    body.insert("pagelen".into(), json!(pagelen));
    body.insert("size".into(), json!(total));
    body.insert("page".into(), json!(page));
    body.insert("values".into(), Value::Array(values));
    let with_page = |n: usize| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &req.query {
            if k != "page" {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("page", &n.to_string());
        format!("{}{}?{}", req.origin, req.path, ser.finish())
    };
    if end < total {
        body.insert("next".into(), json!(with_page(page + 1)));
    }
    if page > 1 {
        body.insert("previous".into(), json!(with_page(page - 1)));
    }
    let mut body = Value::Object(body);
    if let Some(fields) = req.query_value("fields") {
        body = apply_fields(body, fields);
    }
    Response::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date_after_2025(0, 0), "2025-01-01T00:00:00.000000+00:00");
        assert_eq!(date_after_2025(59, 61), "2025-03-01T00:01:01.000000+00:00");
        assert_eq!(date_after_2025(365, 0), "2026-01-01T00:00:00.000000+00:00");
    }
}
