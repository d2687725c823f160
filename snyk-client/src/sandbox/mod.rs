//! A fake Snyk (v1 + REST) on 127.0.0.1 (feature `sandbox`), for the CLI's demo, the tests, the
//! examples and the benchmarks. Served by [`api_support::sandbox::Server`], like the Bitbucket
//! sandbox, because it keeps state (orgs, integrations, jobs, targets, budgets) and must inject
//! faults a mock server cannot.
//!
//! What it does as the real service does (see `docs/api-facts/snyk.md`):
//! - one group whose orgs may share names; `POST /v1/org` with `groupId` and `sourceOrgId`
//!   (integrations copied with new ids); `DELETE` only without projects;
//! - integrations per org (new orgs get the configured defaults unless copied from a template),
//!   adding, updating, cloning, settings, notification settings;
//! - import: a body with any key but `target` (`owner`, `name`, `branch`), `files` and
//!   `exclusionGlobs` is refused with 400 `invalidParamData`; acceptance is 201 with a
//!   `Location` in the `/api/v1/` form on another host name (`localhost`); jobs complete after a
//!   configurable delay and create a target and one project per manifest (a repository without
//!   manifests completes with zero projects and no target); the 25,000-project cap (configurable)
//!   refuses imports with Snyk's message;
//! - REST: `version` required, cursor paging whose `next` links alternate between the forms
//!   with and without `/rest`, targets filtered by `source_types`, `exclude_empty` (default
//!   true) and `display_name` (prefix), projects by target;
//! - `token` and `bearer` auth, OAuth client credentials at `/oauth2/token` with expiry;
//! - per-token budgets per minute (v1 and REST apart) with 429 and `Retry-After`;
//! - latency, faults and request counts through [`Sandbox::server`] and [`Sandbox::stats`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::RollingWindow;
use api_support::sandbox::{Handler, Request, Response, Server, Stats, lock};
use http::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::models::IntegrationType;

mod jobs;
mod rest;
mod v1;

/// The sample group id.
pub const SAMPLE_GROUP_ID: &str = "4a18d42f-0706-4ad0-b127-24078731fbed";
/// The sample API token.
pub const SAMPLE_TOKEN: &str = "sandbox-snyk-token";
/// The sample's second API token: a person, whose changes the audit log records under
/// [`SAMPLE_PERSON_USER`].
pub const SAMPLE_PERSON_TOKEN: &str = "sandbox-snyk-person-token";
/// The user id of [`SAMPLE_PERSON_TOKEN`].
pub const SAMPLE_PERSON_USER: &str = "user-alex-morgan";
/// The sample OAuth client id.
pub const SAMPLE_CLIENT_ID: &str = "sandbox-snyk-client";
/// The sample OAuth client secret.
pub const SAMPLE_CLIENT_SECRET: &str = "sandbox-snyk-client-secret";

/// An org of the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxOrg {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The slug.
    pub slug: String,
    /// Type name → integration id.
    pub integrations: BTreeMap<String, String>,
    /// Whether notifications were turned off.
    pub notifications_off: bool,
    /// Whether it is a personal org (created without a group).
    pub personal: bool,
    /// When it was created (a fixed day; the fraction of a second counts the orgs created, so
    /// that creation order can be read back).
    pub created: String,
}

/// A target of the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxTarget {
    /// The id.
    pub id: String,
    /// The org.
    pub org_id: String,
    /// `workspace/repository`.
    pub display_name: String,
    /// The integration type.
    pub integration_type: String,
    /// The integration id.
    pub integration_id: String,
}

/// A project held by the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxProject {
    /// The id.
    pub id: String,
    /// The org.
    pub org_id: String,
    /// The target.
    pub target_id: String,
    /// `workspace/repository:manifest`.
    pub name: String,
    /// The manifest.
    pub target_file: String,
    /// The branch it tests.
    pub branch: Option<String>,
    /// The integration type it came through.
    pub origin: String,
    /// Whether it is active (tested); a deactivated project is inactive.
    pub active: bool,
    /// Tags, attributes, test frequency and owner, as people set them.
    pub settings: crate::models::ProjectSettings,
    /// Its ignores, with who added each and when.
    pub ignores: Vec<crate::models::Ignore>,
}

#[derive(Clone, Debug)]
struct Job {
    id: String,
    org_id: String,
    integration_id: String,
    full_name: String,
    branch: Option<String>,
    result: Option<JobEnd>,
    /// The projects it holds against the org's cap while it runs.
    reserved: usize,
    /// Who posted it.
    user: String,
    /// When it ends.
    due: Instant,
    /// How many polls asked for it until one saw it ended.
    polls: u32,
    /// Whether a poll has seen it ended.
    seen: bool,
}

/// How long after their end finished jobs were first seen ended by a poll: the time each held
/// its slot for nothing. Sums since the sandbox started; subtract an earlier reading for one
/// run's share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeenLag {
    /// Jobs a poll has seen ended.
    pub jobs: u64,
    /// The time between each one's end and the poll that first saw it, summed.
    pub lag: Duration,
    /// Of those, the jobs seen ended by their first poll.
    pub at_first_poll: u64,
    /// Their share of `lag`.
    pub lag_at_first_poll: Duration,
}

impl SeenLag {
    /// What was seen since `before` (a reading of the same sandbox).
    #[must_use]
    pub fn since(&self, before: &SeenLag) -> SeenLag {
        SeenLag {
            jobs: self.jobs.saturating_sub(before.jobs),
            lag: self.lag.saturating_sub(before.lag),
            at_first_poll: self.at_first_poll.saturating_sub(before.at_first_poll),
            lag_at_first_poll: self
                .lag_at_first_poll
                .saturating_sub(before.lag_at_first_poll),
        }
    }

    /// Counts a job first seen ended `lag` after its end by its `polls`-th poll.
    fn count(&mut self, lag: Duration, polls: u32) {
        self.jobs += 1;
        self.lag += lag;
        if polls == 1 {
            self.at_first_poll += 1;
            self.lag_at_first_poll += lag;
        }
    }
}

/// How a job ended, kept small (estates of 100,000 imports) and rendered when polled.
#[derive(Clone, Debug)]
enum JobEnd {
    Failed,
    /// (target file, project id) of each project.
    Complete(Vec<(String, String)>),
}

impl JobEnd {
    fn json(&self, job: &Job) -> Value {
        match self {
            JobEnd::Failed => {
                json!({"id": job.id, "status": "failed", "created": now_text(), "logs": [
                {"name": job.full_name, "created": now_text(), "status": "failed", "projects": [
                    {"targetFile": null, "success": false, "projectUrl": "", "userMessage": "Could not access the repository: check the integration's credentials"}]}]})
            }
            JobEnd::Complete(projects) => {
                let projects: Vec<Value> = projects
                    .iter()
                    .map(|(file, id)| {
                        json!({"targetFile": file, "success": true, "projectId": id,
                               "projectUrl": format!("https://app.snyk.io/org/x/project/{id}")})
                    })
                    .collect();
                json!({"id": job.id, "status": "complete", "created": now_text(), "logs": [
                    {"name": job.full_name, "created": now_text(), "status": "complete", "projects": projects}]})
            }
        }
    }
}

/// One entry of an org's audit log.
#[derive(Clone, Debug)]
struct AuditRecord {
    created: String,
    event: &'static str,
    org_id: String,
    project_id: Option<String>,
    user_id: String,
    content: Value,
}

struct State {
    group_id: String,
    tokens: Vec<String>,
    /// The user each token acts as (by position).
    users: Vec<String>,
    /// Who the request being answered comes from.
    acting: String,
    /// Changes made through the API, per org, oldest first.
    audit: Vec<AuditRecord>,
    /// Whether the audit log can be searched (plans without it answer 403).
    audit_logs: bool,
    /// Whether projects take tags (plans without them answer 422).
    tags: bool,
    no_group_access: HashSet<String>,
    clients: Vec<(String, String, Duration)>,
    issued: HashMap<String, (String, Instant)>,
    orgs: Vec<SandboxOrg>,
    credentials: HashMap<String, (String, String)>,
    settings: HashMap<String, serde_json::Map<String, Value>>,
    default_integrations: Vec<String>,
    manifests: HashMap<String, Vec<String>>,
    default_manifests: Vec<String>,
    failing: HashSet<String>,
    jobs: HashMap<String, Job>,
    /// Jobs not finished yet, in the order they become due.
    /// Jobs not yet finished, the soonest due first.
    pending: BinaryHeap<Reverse<(Instant, String)>>,
    import_posts: BTreeMap<String, usize>,
    /// When each repository was first posted for import (the real clock, for benchmarks that
    /// time a process outside this one).
    first_posted: HashMap<String, std::time::Instant>,
    targets: Vec<SandboxTarget>,
    projects: Vec<SandboxProject>,
    /// Project id → its position in `projects` (estates of 100,000 projects are written one
    /// project at a time).
    project_index: HashMap<String, usize>,
    /// Indexes, so that estates of 100,000 repositories stay fast: org → its targets
    /// (positions in `targets`); (org, lowercased name, type) → target position; org → project
    /// count; target id → project count; (target id, file) → project id.
    org_targets: HashMap<String, Vec<usize>>,
    target_keys: HashMap<(String, String, String), usize>,
    org_projects: HashMap<String, usize>,
    /// Projects the org's running jobs will create, counted against its cap at once (so jobs
    /// in flight cannot together pass it).
    org_reserved: HashMap<String, usize>,
    target_projects: HashMap<String, usize>,
    project_keys: HashMap<(String, String), String>,
    durations: JobDurations,
    /// The duration drawn for each job posted, in order.
    job_durations: Vec<Duration>,
    seen_lag: SeenLag,
    project_cap: usize,
    per_minute: Option<u32>,
    rest_per_minute: Option<u32>,
    windows: HashMap<String, RollingWindow>,
    counter: u64,
}

/// How long import jobs take in the sandbox.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum JobDurations {
    /// Every job takes this long.
    Fixed(Duration),
    /// Drawn from a log-normal distribution with this median and spread (the standard
    /// deviation of the logarithm), clipped to `min..=max`, from a seeded generator, so a
    /// benchmark sees the same durations each time.
    LogNormal {
        /// The median duration.
        median: Duration,
        /// The spread: σ of ln(duration).
        sigma: f64,
        /// The shortest duration.
        min: Duration,
        /// The longest duration.
        max: Duration,
        /// The generator.
        rng: fastrand::Rng,
    },
}

impl JobDurations {
    /// Log-normal durations: median, σ, clipped to `min..=max`, seeded.
    pub fn log_normal(
        median: Duration,
        sigma: f64,
        min: Duration,
        max: Duration,
        seed: u64,
    ) -> Self {
        Self::LogNormal {
            median,
            sigma,
            min,
            max,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    fn draw(&mut self) -> Duration {
        match self {
            Self::Fixed(d) => *d,
            Self::LogNormal {
                median,
                sigma,
                min,
                max,
                rng,
            } => crate::draw::log_normal(rng, *median, *sigma, *min, *max),
        }
    }
}

/// Builds a [`Sandbox`].
#[derive(Debug)]
pub struct SandboxBuilder {
    group_id: String,
    tokens: Vec<String>,
    users: Vec<String>,
    audit_logs: bool,
    tags: bool,
    no_group_access: Vec<String>,
    clients: Vec<(String, String, Duration)>,
    orgs: Vec<(String, Vec<String>)>,
    default_integrations: Vec<String>,
    manifests: HashMap<String, Vec<String>>,
    default_manifests: Vec<String>,
    failing: HashSet<String>,
    durations: JobDurations,
    project_cap: usize,
    per_minute: Option<u32>,
    rest_per_minute: Option<u32>,
    latency: Duration,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            group_id: SAMPLE_GROUP_ID.to_owned(),
            tokens: Vec::new(),
            users: Vec::new(),
            audit_logs: true,
            tags: true,
            no_group_access: Vec::new(),
            clients: Vec::new(),
            orgs: Vec::new(),
            default_integrations: vec![IntegrationType::BitbucketCloud.as_str().to_owned()],
            manifests: HashMap::new(),
            default_manifests: vec!["package.json".to_owned()],
            failing: HashSet::new(),
            durations: JobDurations::Fixed(Duration::from_secs(3)),
            project_cap: 25_000,
            per_minute: None,
            rest_per_minute: None,
            latency: Duration::ZERO,
        }
    }
}

impl SandboxBuilder {
    /// The group id (default [`SAMPLE_GROUP_ID`]).
    pub fn group(mut self, id: &str) -> Self {
        self.group_id = id.to_owned();
        self
    }

    /// Accepts an API token (`token …`) with access to the group.
    pub fn token(mut self, token: &str) -> Self {
        self.users.push(format!("user-{}", self.tokens.len() + 1));
        self.tokens.push(token.to_owned());
        self
    }

    /// Accepts an API token of a person, whose changes the audit log records as `user_id`'s.
    pub fn person(mut self, token: &str, user_id: &str) -> Self {
        self.users.push(user_id.to_owned());
        self.tokens.push(token.to_owned());
        self
    }

    /// Accepts a token that has no permission on the group.
    pub fn token_without_group_access(mut self, token: &str) -> Self {
        self = self.token(token);
        self.no_group_access.push(token.to_owned());
        self
    }

    /// Projects take no tags (422), as on plans without them.
    pub fn without_tags(mut self) -> Self {
        self.tags = false;
        self
    }

    /// The audit log cannot be searched (403), as on plans without audit logs.
    pub fn without_audit_logs(mut self) -> Self {
        self.audit_logs = false;
        self
    }

    /// Accepts OAuth client credentials whose tokens last `lifetime`.
    pub fn oauth_client(mut self, id: &str, secret: &str, lifetime: Duration) -> Self {
        self.clients
            .push((id.to_owned(), secret.to_owned(), lifetime));
        self
    }

    /// An org that exists from the start, with these integration types. Names may repeat.
    pub fn org(mut self, name: &str, integrations: &[&str]) -> Self {
        self.orgs.push((
            name.to_owned(),
            integrations.iter().map(|s| (*s).to_owned()).collect(),
        ));
        self
    }

    /// The integration types a new org gets when it is not copied from a template (default
    /// `bitbucket-cloud`).
    pub fn default_integrations(mut self, types: &[&str]) -> Self {
        self.default_integrations = types.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The manifests Snyk finds in `workspace/repository`; an empty list imports zero projects.
    pub fn repository(mut self, full_name: &str, manifests: &[&str]) -> Self {
        self.manifests.insert(
            full_name.to_ascii_lowercase(),
            manifests.iter().map(|s| (*s).to_owned()).collect(),
        );
        self
    }

    /// The manifests of repositories not named with [`SandboxBuilder::repository`] (default
    /// `package.json`).
    pub fn default_manifests(mut self, manifests: &[&str]) -> Self {
        self.default_manifests = manifests.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Import jobs for this repository fail.
    pub fn failing_repository(mut self, full_name: &str) -> Self {
        self.failing.insert(full_name.to_ascii_lowercase());
        self
    }

    /// How long an import job stays pending (default 3 s).
    pub fn import_delay(mut self, delay: Duration) -> Self {
        self.durations = JobDurations::Fixed(delay);
        self
    }

    /// How long import jobs take, drawn per job.
    pub fn import_durations(mut self, durations: JobDurations) -> Self {
        self.durations = durations;
        self
    }

    /// The project cap per org (default 25,000).
    pub fn project_cap(mut self, cap: usize) -> Self {
        self.project_cap = cap;
        self
    }

    /// Requests a minute per token and API (v1 and REST apart); none by default.
    pub fn per_minute(mut self, requests: u32) -> Self {
        self.per_minute = Some(requests);
        self
    }

    /// Requests a minute per token on REST when it differs from v1 (Snyk: 2,000 on v1,
    /// 1,620 on REST).
    pub fn rest_per_minute(mut self, requests: u32) -> Self {
        self.rest_per_minute = Some(requests);
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
        let mut state = State {
            group_id: self.group_id,
            tokens: self.tokens,
            users: self.users,
            acting: String::new(),
            audit: Vec::new(),
            audit_logs: self.audit_logs,
            tags: self.tags,
            no_group_access: self.no_group_access.into_iter().collect(),
            clients: self.clients,
            issued: HashMap::new(),
            orgs: Vec::new(),
            credentials: HashMap::new(),
            settings: HashMap::new(),
            default_integrations: self.default_integrations,
            manifests: self.manifests,
            default_manifests: self.default_manifests,
            failing: self.failing,
            jobs: HashMap::new(),
            pending: BinaryHeap::new(),
            import_posts: BTreeMap::new(),
            first_posted: HashMap::new(),
            targets: Vec::new(),
            projects: Vec::new(),
            project_index: HashMap::new(),
            org_targets: HashMap::new(),
            target_keys: HashMap::new(),
            org_projects: HashMap::new(),
            org_reserved: HashMap::new(),
            target_projects: HashMap::new(),
            project_keys: HashMap::new(),
            durations: self.durations,
            job_durations: Vec::new(),
            seen_lag: SeenLag::default(),
            project_cap: self.project_cap,
            per_minute: self.per_minute,
            rest_per_minute: self.rest_per_minute,
            windows: HashMap::new(),
            counter: 0,
        };
        for (name, integrations) in self.orgs {
            state.new_org(&name, &integrations, false);
        }
        let (server, state) =
            Server::start_with_state(state, self.latency, |state| FakeSnyk { state }).await?;
        Ok(Sandbox { server, state })
    }
}

/// A running fake Snyk; it stops when dropped.
pub struct Sandbox {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("api_url", &self.api_url())
            .finish()
    }
}

impl Sandbox {
    /// Starts building a sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The sample: group [`SAMPLE_GROUP_ID`], token [`SAMPLE_TOKEN`], the sample OAuth client,
    /// no orgs yet, manifests matching the Bitbucket sandbox's sample estate (its empty
    /// repository and its notebooks have none), jobs that finish after 3 s.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start_sample() -> io::Result<Self> {
        Self::sample_builder().start().await
    }

    /// The sample's builder, to change it before starting (for example a shorter import
    /// delay).
    pub fn sample_builder() -> SandboxBuilder {
        Self::builder()
            .token(SAMPLE_TOKEN)
            .person(SAMPLE_PERSON_TOKEN, SAMPLE_PERSON_USER)
            .oauth_client(
                SAMPLE_CLIENT_ID,
                SAMPLE_CLIENT_SECRET,
                Duration::from_secs(3600),
            )
            .repository("acme-platform/api-gateway", &["go.mod"])
            .repository(
                "acme-platform/billing-service",
                &["pom.xml", "docker/Dockerfile"],
            )
            .repository("acme-platform/web-frontend", &["package.json"])
            .repository(
                "acme-platform/design-system",
                &["package.json", "docs/package.json"],
            )
            .repository("acme-platform/empty-sandbox", &[])
            .repository("acme-platform/api-gateway-fork", &["go.mod"])
            .repository("acme-mobile/android-app", &["build.gradle"])
            .repository("acme-mobile/ios-app", &["Podfile", "Package.swift"])
            .repository("acme-mobile/shared-kit", &["build.gradle"])
            .repository("acme-data/ml-models", &["requirements.txt"])
            .repository("acme-data/notebooks", &[])
            .repository(
                "acme-data/pipelines",
                &["requirements.txt", "pyproject.toml"],
            )
    }

    /// The API address to configure (the host; v1 and REST are derived from it).
    pub fn api_url(&self) -> String {
        self.server.url()
    }

    /// The group id.
    pub fn group_id(&self) -> String {
        lock(&self.state).group_id.clone()
    }

    /// The underlying server: latency and fault injection.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Requests per route and per credential so far.
    pub fn stats(&self) -> Stats {
        self.server.stats()
    }

    /// The orgs as they are now.
    pub fn orgs(&self) -> Vec<SandboxOrg> {
        lock(&self.state).orgs.clone()
    }

    /// The targets as they are now (deleted ones left out).
    pub fn targets(&self) -> Vec<SandboxTarget> {
        let state = lock(&self.state);
        state
            .org_targets
            .values()
            .flatten()
            .map(|&i| state.targets[i].clone())
            .collect()
    }

    /// The projects as they are now, active and inactive (deleted ones left out).
    pub fn projects(&self) -> Vec<SandboxProject> {
        lock(&self.state).projects.clone()
    }

    /// How many projects the org has.
    pub fn project_count(&self, org_id: &str) -> usize {
        lock(&self.state)
            .org_projects
            .get(org_id)
            .copied()
            .unwrap_or(0)
    }

    /// An integration's settings now.
    pub fn integration_settings(&self, integration_id: &str) -> serde_json::Map<String, Value> {
        lock(&self.state)
            .settings
            .get(integration_id)
            .cloned()
            .unwrap_or_else(default_settings)
    }

    /// The e-mail stored in an integration's credentials (the token is never exposed).
    pub fn integration_email(&self, integration_id: &str) -> Option<String> {
        lock(&self.state)
            .credentials
            .get(integration_id)
            .map(|(email, _)| email.clone())
    }

    /// Whether the integration's stored token equals `token`.
    pub fn integration_token_is(&self, integration_id: &str, token: &str) -> bool {
        lock(&self.state)
            .credentials
            .get(integration_id)
            .is_some_and(|(_, t)| t == token)
    }

    /// Adds an org directly (as if created in the web UI); returns its id.
    pub fn add_org(&self, name: &str, integrations: &[&str]) -> String {
        let integrations: Vec<String> = integrations.iter().map(|s| (*s).to_owned()).collect();
        lock(&self.state).new_org(name, &integrations, false)
    }

    /// Revokes every OAuth token issued so far.
    pub fn revoke_oauth_tokens(&self) {
        lock(&self.state).issued.clear();
    }

    /// How many times each `workspace/repository` (lowercased) was posted for import.
    pub fn import_posts(&self) -> BTreeMap<String, usize> {
        lock(&self.state).import_posts.clone()
    }

    /// When each `workspace/repository` (lowercased) was first posted for import, on the
    /// real clock.
    pub fn first_import_posts(&self) -> HashMap<String, std::time::Instant> {
        lock(&self.state).first_posted.clone()
    }

    /// The duration drawn for each import job posted so far, in order.
    pub fn job_durations(&self) -> Vec<Duration> {
        lock(&self.state).job_durations.clone()
    }

    /// How long after their end the jobs polled so far were seen ended.
    pub fn seen_lag(&self) -> SeenLag {
        lock(&self.state).seen_lag
    }
}

struct FakeSnyk {
    state: Arc<Mutex<State>>,
}

impl Handler for FakeSnyk {
    fn handle(&self, request: &Request) -> Response {
        lock(&self.state).handle(request)
    }
}

fn v1_error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        &json!({"code": status, "message": message, "errorRef": "sandbox-error-ref"}),
    )
}

fn rest_error(status: u16, detail: &str) -> Response {
    Response::json(
        status,
        &json!({"jsonapi": {"version": "1.0"}, "errors": [{"status": status.to_string(), "detail": detail}]}),
    )
    .header("content-type", "application/vnd.api+json")
}

fn now_text() -> String {
    "2026-11-01T00:00:00.000Z".to_owned()
}

enum Caller {
    Token(usize),
    OAuth(String),
}

impl State {
    fn next_id(&mut self, kind: u16) -> String {
        self.counter += 1;
        format!("{kind:08x}-5a4d-4b0c-8000-{:012x}", self.counter)
    }

    fn new_org(&mut self, name: &str, integrations: &[String], personal: bool) -> String {
        let id = self.next_id(0x0a);
        let mut map = BTreeMap::new();
        for t in integrations {
            let int_id = self.next_id(0x1e);
            map.insert(t.clone(), int_id);
        }
        let slug = format!(
            "{}-{}",
            name.to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            &id[id.len() - 4..]
        );
        self.orgs.push(SandboxOrg {
            id: id.clone(),
            name: name.to_owned(),
            slug,
            integrations: map,
            notifications_off: false,
            personal,
            created: format!("2026-11-01T00:00:00.{:06}Z", self.counter),
        });
        id
    }

    fn org_index(&self, id: &str) -> Option<usize> {
        self.orgs.iter().position(|o| o.id == id)
    }

    /// Finishes every job whose time has come, as Snyk does whether or not anyone polls.
    fn complete_due_jobs(&mut self) {
        let now = Instant::now();
        while self
            .pending
            .peek()
            .is_some_and(|Reverse((due, _))| *due <= now)
        {
            let Some(Reverse((_, id))) = self.pending.pop() else {
                break;
            };
            if let Some(job) = self.jobs.get(&id).cloned()
                && job.result.is_none()
            {
                if let Some(n) = self.org_reserved.get_mut(&job.org_id) {
                    *n = n.saturating_sub(job.reserved);
                }
                let result = self.finish(&job);
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.result = Some(result);
                }
            }
        }
    }

    fn handle(&mut self, req: &Request) -> Response {
        self.complete_due_jobs();
        let segments = req.segments();
        if req.method == Method::POST && segments == ["oauth2", "token"] {
            return self.issue_token(req).route("POST /oauth2/token");
        }
        let (api, rest): (&str, Vec<&str>) = match segments.split_first() {
            Some((&"v1", rest)) => ("v1", rest.to_vec()),
            Some((&"api", rest)) if rest.first() == Some(&"v1") => ("v1", rest[1..].to_vec()),
            Some((&"rest", rest)) => ("rest", rest.to_vec()),
            _ => return v1_error(404, "Not found").route("other"),
        };
        let route = route_label(&req.method, api, &rest);
        let caller = match self.authenticate(req) {
            Ok(c) => c,
            Err(r) => return r.route(route),
        };
        let label = match &caller {
            Caller::Token(i) => format!("token#{i}"),
            Caller::OAuth(client) => format!("oauth:{client}"),
        };
        self.acting = match &caller {
            Caller::Token(i) => self.users.get(*i).cloned().unwrap_or_default(),
            Caller::OAuth(client) => format!("oauth-client-{client}"),
        };
        let limit = if api == "rest" {
            self.rest_per_minute.or(self.per_minute)
        } else {
            self.per_minute
        };
        if let Some(limit) = limit {
            let admitted = self
                .windows
                .entry(format!("{api}:{label}"))
                .or_insert_with(|| RollingWindow::new(limit as usize, Duration::from_secs(60)))
                .admit(Instant::now());
            if let Err(until) = admitted {
                // Whole seconds, at least one, as Snyk's `Retry-After` gives them.
                let wait = until.as_secs_f64().ceil().max(1.0) as u64;
                let r = if api == "rest" {
                    rest_error(429, "Too many requests")
                } else {
                    v1_error(429, "Too many requests")
                };
                return r
                    .header("retry-after", wait.to_string())
                    .route(route)
                    .credential(Some(label));
            }
        }
        let group_access = match &caller {
            Caller::Token(i) => !self.no_group_access.contains(&self.tokens[*i]),
            Caller::OAuth(_) => true,
        };
        let response = if api == "v1" {
            self.v1(req, &rest, group_access)
        } else {
            if req.query_value("version").is_none() {
                return rest_error(400, "the version query parameter is required")
                    .route(route)
                    .credential(Some(label));
            }
            match self.rest_change(req, &rest) {
                Some(changed) => changed,
                None => self.rest(req, &rest),
            }
        };
        let response = if api == "rest" {
            response.header(
                "x-ratelimit-limit",
                r#"160, 160;w=1;name="burst", 1620;w=60;name="minute""#,
            )
        } else {
            response
        };
        response
            .header("snyk-request-id", format!("sbx-{:08x}", fastrand::u32(..)))
            .route(route)
            .credential(Some(label))
    }

    fn issue_token(&mut self, req: &Request) -> Response {
        let form: HashMap<String, String> = req.form().into_iter().collect();
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return Response::json(400, &json!({"error": "unsupported_grant_type"}));
        }
        let id = form.get("client_id").cloned().unwrap_or_default();
        let secret = form.get("client_secret").cloned().unwrap_or_default();
        let Some((_, _, lifetime)) = self
            .clients
            .iter()
            .find(|(i, s, _)| *i == id && *s == secret)
            .cloned()
        else {
            return Response::json(401, &json!({"error": "invalid_client"}));
        };
        self.counter += 1;
        let token = format!("sbx-snyk-oauth-{}", self.counter);
        self.issued
            .insert(token.clone(), (id.clone(), Instant::now() + lifetime));
        Response::json(
            200,
            &json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "bearer", "scope": "org.read"}),
        )
        .credential(Some(format!("oauth:{id}")))
    }

    fn authenticate(&self, req: &Request) -> Result<Caller, Box<Response>> {
        let refused = || Box::new(v1_error(401, "Not authorised"));
        let (scheme, value) = req.authorization().ok_or_else(refused)?;
        match scheme.as_str() {
            "token" => self
                .tokens
                .iter()
                .position(|t| *t == value)
                .map(Caller::Token)
                .ok_or_else(refused),
            "bearer" => match self.issued.get(&value) {
                Some((client, expiry)) if Instant::now() < *expiry => {
                    Ok(Caller::OAuth(client.clone()))
                }
                _ => Err(refused()),
            },
            _ => Err(refused()),
        }
    }

    /// Records a change in the org's audit log, as made by the caller.
    fn record(
        &mut self,
        event: &'static str,
        org_id: &str,
        project_id: Option<&str>,
        content: Value,
    ) {
        let user = self.acting.clone();
        self.record_as(&user, event, org_id, project_id, content);
    }

    /// Records a change in the org's audit log, as made by `user`.
    fn record_as(
        &mut self,
        user: &str,
        event: &'static str,
        org_id: &str,
        project_id: Option<&str>,
        content: Value,
    ) {
        let created = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        self.audit.push(AuditRecord {
            created,
            event,
            org_id: org_id.to_owned(),
            project_id: project_id.map(str::to_owned),
            user_id: user.to_owned(),
            content,
        });
    }

    /// Where the project `id` of `org` is in `projects`.
    fn project_at(&self, org: &str, id: &str) -> Option<usize> {
        self.project_index
            .get(id)
            .copied()
            .filter(|&i| self.projects.get(i).is_some_and(|p| p.org_id == org))
    }

    /// Deletes the project at `at` and keeps the indexes and counts in step.
    fn remove_project(&mut self, at: usize) {
        let p = self.projects.remove(at);
        self.project_index = self
            .projects
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        self.project_keys
            .remove(&(p.target_id.clone(), p.target_file));
        if let Some(n) = self.org_projects.get_mut(&p.org_id) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = self.target_projects.get_mut(&p.target_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.target_projects.remove(&p.target_id);
            }
        }
    }
}

/// A target as REST shows it.
fn target_json(t: &&SandboxTarget) -> Value {
    json!({"id": t.id, "type": "target",
       "attributes": {"display_name": t.display_name, "url": null, "is_private": true, "created_at": now_text()},
       "relationships": {
           "integration": {"data": {"id": t.integration_id, "type": "integration", "attributes": {"integration_type": t.integration_type}}},
           "organization": {"data": {"id": t.org_id, "type": "org"}}}})
}

/// v1's answer about a project it changed.
fn project_answer(p: &SandboxProject) -> Response {
    Response::json(
        200,
        &json!({"id": p.id, "name": p.name, "branch": p.branch}),
    )
}

/// The settings of an integration no one has changed: PR checks and fix PRs on.
fn default_settings() -> serde_json::Map<String, Value> {
    json!({"pullRequestTestEnabled": true, "dependencyAutoUpgradeEnabled": true,
           "autoRemediationPrs": {"freshPrsEnabled": true, "backlogPrsEnabled": true, "usePatchRemediation": false}})
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// A project as REST lists it, with what people set on it.
fn project_json(p: &SandboxProject) -> Value {
    let status = if p.active { "active" } else { "inactive" };
    let s = &p.settings;
    let tags: Vec<Value> = s
        .tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let mut relationships = json!({"target": {"data": {"id": p.target_id, "type": "target"}}});
    if let Some(owner) = &s.owner {
        relationships["owner"] = json!({"data": {"id": owner, "type": "user"}});
    }
    json!({"id": p.id, "type": "project",
           "attributes": {"name": p.name, "type": "npm", "target_file": p.target_file,
                          "target_reference": p.branch, "origin": p.origin, "status": status,
                          "tags": tags, "business_criticality": s.criticality,
                          "environment": s.environment, "lifecycle": s.lifecycle,
                          "settings": {"recurring_tests": {"frequency": s.test_frequency.as_deref().unwrap_or("daily")},
                                       "pull_requests": {}}},
           "relationships": relationships})
}

fn org_json(o: &SandboxOrg, group: &str) -> Value {
    json!({"id": o.id, "type": "org", "attributes": {"name": o.name, "slug": o.slug, "is_personal": o.personal,
           "group_id": group, "created_at": o.created, "updated_at": now_text()}})
}

/// Cursor paging: `starting_after` is the id of the last item seen; `next` links alternate
/// between the forms without and with the `/rest` prefix.
fn page(req: &Request, items: Vec<Value>) -> Response {
    page_of(
        req,
        &items,
        |v| v["id"].as_str().unwrap_or_default(),
        Value::clone,
    )
}

/// As [`page`], turning only the page's items into JSON.
fn page_of<T>(
    req: &Request,
    items: &[T],
    id: impl Fn(&T) -> &str,
    to_json: impl Fn(&T) -> Value,
) -> Response {
    let limit = match req.query_value("limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return rest_error(400, "limit must be between 1 and 100"),
    };
    let start = match req.query_value("starting_after") {
        None => 0,
        Some(cursor) => match items.iter().position(|v| id(v) == cursor) {
            Some(i) => i + 1,
            None => return rest_error(400, "invalid starting_after cursor"),
        },
    };
    let end = (start + limit).min(items.len());
    let data: Vec<Value> = items[start.min(end)..end].iter().map(to_json).collect();
    let path = req
        .path
        .strip_prefix("/rest")
        .unwrap_or(&req.path)
        .to_owned();
    let query = |cursor: Option<&str>| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &req.query {
            if k != "starting_after" {
                ser.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            ser.append_pair("starting_after", c);
        }
        ser.finish()
    };
    let mut links =
        json!({"self": format!("/rest{path}?{}", query(req.query_value("starting_after")))});
    if end < items.len()
        && let Some(last) = data.last().and_then(|v| v["id"].as_str())
    {
        let with_prefix = req.query_value("starting_after").is_some();
        let prefix = if with_prefix { "/rest" } else { "" };
        links["next"] = json!(format!("{prefix}{path}?{}", query(Some(last))));
    }
    Response::json(
        200,
        &json!({"jsonapi": {"version": "1.0"}, "data": data, "links": links}),
    )
    .header("content-type", "application/vnd.api+json")
}

fn route_label(method: &Method, api: &str, rest: &[&str]) -> String {
    let names: Vec<&str> = rest
        .iter()
        .enumerate()
        .map(|(i, s)| match (rest.get(i.wrapping_sub(1)).copied(), api) {
            (Some("group"), _) => "{groupId}",
            (Some("groups"), _) => "{group_id}",
            (Some("org"), _) => "{orgId}",
            (Some("orgs"), _) => "{org_id}",
            (Some("integrations"), _) if *s != "clone" => "{integrationId}",
            (Some("import"), _) => "{jobId}",
            (Some("project"), _) => "{projectId}",
            (Some("projects"), _) => "{project_id}",
            (Some("targets"), _) => "{target_id}",
            _ => s,
        })
        .collect();
    format!("{method} /{api}/{}", names.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_name_the_templates() {
        assert_eq!(
            route_label(
                &Method::POST,
                "v1",
                &["org", "o", "integrations", "i", "import"]
            ),
            "POST /v1/org/{orgId}/integrations/{integrationId}/import"
        );
        assert_eq!(
            route_label(
                &Method::GET,
                "v1",
                &["org", "o", "integrations", "i", "import", "j"]
            ),
            "GET /v1/org/{orgId}/integrations/{integrationId}/import/{jobId}"
        );
        assert_eq!(
            route_label(&Method::GET, "rest", &["orgs", "o", "targets"]),
            "GET /rest/orgs/{org_id}/targets"
        );
        assert_eq!(route_label(&Method::POST, "v1", &["org"]), "POST /v1/org");
    }
}
