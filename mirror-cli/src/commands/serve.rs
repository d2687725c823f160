//! `serve`: an HTTP server for Bitbucket's workspace webhooks. Each signed delivery is queued in
//! the journal (on disk) before it is answered 202, then reconciled by the event loop of
//! `mirror_core::events`; a full reconcile runs at start and every `--reconcile-interval`.
//!
//! Routes: `POST /webhooks/bitbucket`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

use bitbucket_cloud_client::api_support::lock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bitbucket_cloud_client::api_support::server::{self, Limits};
use bitbucket_cloud_client::webhooks::{self, EventKey, RepositoryEvent, SignatureError};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use mirror_core::events::{Admission, EventLoop, EventObserver, LoopOptions};
use mirror_core::{Error, Report};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Usage;
use crate::cli::MAX_CONNECTIONS;
use crate::context::Ctx;

/// The webhook's path.
pub const WEBHOOK_PATH: &str = "/webhooks/bitbucket";

/// How long a request's body may take to arrive (its headers: the same, through hyper).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The variable holding the webhook secret.
pub const SECRET_VARIABLE: &str = "BITBUCKET_WEBHOOK_SECRET";
/// The variable holding the secret before the current one, accepted too while the webhooks are
/// moved to the new one.
pub const PREVIOUS_SECRET_VARIABLE: &str = "BITBUCKET_WEBHOOK_SECRET_PREVIOUS";

/// The secrets `serve` accepts: the current one, and the previous one while it is set.
///
/// # Errors
/// As [`webhook_secret`], for either variable.
pub fn webhook_secrets() -> Result<Vec<SecretString>> {
    let mut secrets = vec![webhook_secret()?];
    if let Some(previous) = secret_from(PREVIOUS_SECRET_VARIABLE)? {
        secrets.push(previous);
    }
    Ok(secrets)
}

/// The webhook secret from the environment: required, at most 128 characters (Bitbucket's
/// limit).
///
/// # Errors
/// A usage error naming the variable when it is unset, empty or too long.
pub fn webhook_secret() -> Result<SecretString> {
    secret_from(SECRET_VARIABLE)?.ok_or_else(|| {
        Usage(format!(
            "set {SECRET_VARIABLE}: the secret Bitbucket signs each delivery with (the same one `bb-snyk-mirror hooks install` puts into the webhooks); generate one with `openssl rand -hex 32`"
        ))
        .into()
    })
}

/// A secret from the variable `name`: `None` when unset or empty; refused when longer than
/// Bitbucket accepts.
fn secret_from(name: &str) -> Result<Option<SecretString>> {
    let Some(value) = bitbucket_cloud_client::api_support::env::var(name) else {
        return Ok(None);
    };
    let length = value.chars().count();
    if length > webhooks::MAX_SECRET_CHARS {
        return Err(Usage(format!(
            "{name} is {length} characters long; Bitbucket accepts at most {}",
            webhooks::MAX_SECRET_CHARS
        ))
        .into());
    }
    Ok(Some(SecretString::from(value)))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    event: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// What `/metrics` shows and `/readyz` judges.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    signature_failures: Family<ReasonLabels, Counter>,
    queue_depth: Gauge,
    rounds: Family<OutcomeLabels, Counter>,
    imports: Family<OutcomeLabels, Counter>,
    retirements: Counter,
    reconciles: Family<OutcomeLabels, Counter>,
    last_reconcile: Gauge,
    last_reconcile_ok: Gauge,
    /// Connections closed at once because `--max-connections` were open.
    connections_refused: Counter,
    /// Repositories waiting to be tried again after a failed round.
    retrying: Gauge,
    /// Deliveries set aside after they kept failing.
    set_aside: Counter,
    /// How long the oldest delivery still queued has waited.
    oldest_queued: Gauge,
    /// How long rounds have waited for Bitbucket's hourly budget, while they do.
    budget_wait: Gauge,
    /// The journal took the last delivery offered.
    journal_ok: AtomicBool,
    /// Whether both APIs answered the last round or reconcile (`None`: none has yet).
    apis: Mutex<Option<Result<(), String>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("bb_snyk_mirror");
        let m = Self {
            deliveries: Family::default(),
            signature_failures: Family::default(),
            queue_depth: Gauge::default(),
            rounds: Family::default(),
            imports: Family::default(),
            retirements: Counter::default(),
            reconciles: Family::default(),
            last_reconcile: Gauge::default(),
            last_reconcile_ok: Gauge::default(),
            connections_refused: Counter::default(),
            retrying: Gauge::default(),
            set_aside: Counter::default(),
            oldest_queued: Gauge::default(),
            budget_wait: Gauge::default(),
            journal_ok: AtomicBool::new(true),
            apis: Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register(
            "deliveries",
            "Webhook deliveries received, by event and result",
            m.deliveries.clone(),
        );
        registry.register(
            "signature_failures",
            "Deliveries refused for their signature, by reason",
            m.signature_failures.clone(),
        );
        registry.register(
            "queue_depth",
            "Deliveries queued in the journal and not yet reconciled",
            m.queue_depth.clone(),
        );
        registry.register(
            "rounds",
            "Targeted reconciles of queued deliveries, by outcome",
            m.rounds.clone(),
        );
        registry.register(
            "imports",
            "Imports posted to Snyk, by outcome",
            m.imports.clone(),
        );
        registry.register("retirements", "Snyk targets retired", m.retirements.clone());
        registry.register(
            "connections_refused",
            "Connections closed at once because --max-connections were open",
            m.connections_refused.clone(),
        );
        registry.register(
            "queue_oldest_age_seconds",
            "How long the oldest delivery still queued has waited (0: none queued)",
            m.oldest_queued.clone(),
        );
        registry.register(
            "budget_wait_seconds",
            "How long rounds have waited for Bitbucket's hourly budget, while they wait (0: they do not)",
            m.budget_wait.clone(),
        );
        registry.register(
            "retrying_repositories",
            "Repositories whose round failed, waiting to be tried again with backoff",
            m.retrying.clone(),
        );
        registry.register(
            "deliveries_set_aside",
            "Deliveries set aside after failing again and again (listed by `bb-snyk-mirror deliveries`; the next full reconcile covers them)",
            m.set_aside.clone(),
        );
        registry.register(
            "reconciles",
            "Full reconciles (scheduled syncs), by outcome",
            m.reconciles.clone(),
        );
        registry.register(
            "last_reconcile_timestamp_seconds",
            "When the last full reconcile ended (Unix time)",
            m.last_reconcile.clone(),
        );
        registry.register(
            "last_reconcile_success",
            "Whether the last full reconcile succeeded (1) or failed (0)",
            m.last_reconcile_ok.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    fn delivery(&self, event: &str, result: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                event: event.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    fn count_report(&self, report: &Report) {
        let outcome = |o: &str| OutcomeLabels {
            outcome: o.to_owned(),
        };
        self.imports
            .get_or_create(&outcome("accepted"))
            .inc_by(report.imports_accepted as u64);
        self.imports
            .get_or_create(&outcome("failed"))
            .inc_by(report.imports_failed.len() as u64);
        self.retirements.inc_by(report.retired.len() as u64);
    }

    fn api_result(&self, result: &Result<Report, Error>) {
        let seen = match result {
            Ok(_) => Ok(()),
            Err(e) => Err(bitbucket_cloud_client::api_support::redact::redact(
                &e.to_string(),
            )),
        };
        *lock(&self.apis) = Some(seen);
    }

    /// Why deliveries cannot be accepted and durably queued, if they cannot: readiness means
    /// that alone, so an outage of Bitbucket or Snyk never takes the only replica out of
    /// rotation while it still queues (the APIs' state is `/healthz`'s and `/metrics`').
    fn not_ready(&self) -> Option<String> {
        (!self.journal_ok.load(Ordering::SeqCst))
            .then(|| "the journal could not be written".to_owned())
    }

    /// `/healthz`'s body: alive, and how the APIs answered the last reconcile or round.
    fn health(&self) -> String {
        let apis = match &*lock(&self.apis) {
            None => "Bitbucket and Snyk have not been read yet".to_owned(),
            Some(Err(e)) => format!("the last reconcile failed: {e}"),
            Some(Ok(())) => "Bitbucket and Snyk answered".to_owned(),
        };
        format!("ok; {apis}")
    }

    fn render(&self, events: &EventLoop) -> String {
        let secs = |d: Option<Duration>| i64::try_from(d.map_or(0, |d| d.as_secs())).unwrap_or(0);
        self.queue_depth
            .set(i64::try_from(events.queue_depth()).unwrap_or(i64::MAX));
        self.oldest_queued.set(secs(events.oldest_queued_age()));
        self.budget_wait.set(secs(events.budget_wait()));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

impl EventObserver for Metrics {
    fn retrying(&self, repositories: usize) {
        self.retrying
            .set(i64::try_from(repositories).unwrap_or(i64::MAX));
    }

    fn deliveries_set_aside(&self, deliveries: usize) {
        self.set_aside.inc_by(deliveries as u64);
    }

    fn reconcile_planned(&self) {
        *lock(&self.apis) = Some(Ok(()));
    }

    fn round_done(&self, deliveries: usize, result: &Result<Report, Error>) {
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.rounds
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        match result {
            Ok(report) => {
                self.count_report(report);
                tracing::info!(
                    deliveries,
                    imports = report.imports_accepted,
                    retired = report.retired.len(),
                    renamed = report.renamed,
                    moved = report.moved,
                    "reconciled queued deliveries"
                );
            }
            Err(e) => {
                tracing::warn!(deliveries, error = %e, "could not reconcile queued deliveries; they stay queued and are tried again")
            }
        }
        self.api_result(result);
    }

    fn reconcile_done(&self, result: &Result<Report, Error>) {
        let ok = result.is_ok();
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_reconcile.set(now as i64);
        self.last_reconcile_ok.set(i64::from(ok));
        match result {
            Ok(report) => {
                self.count_report(report);
                tracing::info!(
                    imports = report.imports_accepted,
                    retired = report.retired.len(),
                    "full reconcile done"
                );
            }
            Err(e) => tracing::warn!(error = %e, "the full reconcile failed"),
        }
        self.api_result(result);
    }
}

/// What every request handler shares.
struct Shared {
    /// The secrets deliveries may be signed with (the current one first).
    secrets: Vec<SecretString>,
    events: Arc<EventLoop>,
    metrics: Arc<Metrics>,
    /// Requests being handled now.
    in_flight: AtomicUsize,
}

type Answer = http::Response<Full<Bytes>>;

fn answer(status: StatusCode, text: &str) -> Answer {
    let mut r = http::Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn header<'a>(req: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A delivery's `X-Request-UUID` (Bitbucket sends a UUID), or what is wrong with it.
fn request_uuid(parts: &http::request::Parts) -> Result<&str, &'static str> {
    match header(parts, webhooks::REQUEST_UUID_HEADER).map(str::trim) {
        None | Some("") => Err("X-Request-UUID is missing"),
        Some(u) if u.len() > 100 => {
            Err("X-Request-UUID is too long (Bitbucket sends a UUID of 36 to 38 characters)")
        }
        Some(u) => Ok(u),
    }
}

impl Shared {
    /// Checks a delivery's signature against each secret accepted.
    fn verify(&self, body: &[u8], signature: Option<&str>) -> Result<(), SignatureError> {
        let secrets: Vec<&[u8]> = self
            .secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes())
            .collect();
        webhooks::verify_signature_any(&secrets, body, signature)
    }
}

async fn handle(shared: Arc<Shared>, req: http::Request<Incoming>) -> Answer {
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let answer = route(&shared, req).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}

async fn route(shared: &Shared, req: http::Request<Incoming>) -> Answer {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    match req.uri().path() {
        WEBHOOK_PATH if req.method() == Method::POST => delivery(shared, req).await,
        "/healthz" if get => answer(StatusCode::OK, &shared.metrics.health()),
        "/readyz" if get => match shared.metrics.not_ready() {
            None => answer(StatusCode::OK, "ready"),
            Some(why) => answer(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {why}"),
            ),
        },
        "/metrics" if get => {
            let mut r = answer(StatusCode::OK, &shared.metrics.render(&shared.events));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        WEBHOOK_PATH => {
            let mut r = answer(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            r
        }
        "/healthz" | "/readyz" | "/metrics" => {
            let mut r = answer(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            r
        }
        _ => answer(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Why a request's body was not read.
#[derive(Debug, PartialEq, Eq)]
enum BodyProblem {
    /// Over [`webhooks::MAX_PAYLOAD_BYTES`].
    TooLarge,
    /// Not within [`BODY_READ_TIMEOUT`]: Bitbucket sends the whole body at once, so a client
    /// that trickles it is cut off.
    TooSlow,
    /// The connection failed.
    Unreadable,
}

/// Reads a body of at most 256 KiB within [`BODY_READ_TIMEOUT`].
async fn read_body<B>(body: B) -> Result<Bytes, BodyProblem>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = Limited::new(body, webhooks::MAX_PAYLOAD_BYTES).collect();
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyProblem::TooLarge)
        }
        Ok(Err(_)) => Err(BodyProblem::Unreadable),
        Err(_) => Err(BodyProblem::TooSlow),
    }
}

/// `POST /webhooks/bitbucket`: size, signature (on the raw body, before anything is parsed),
/// then the event; 202 once it is queued on disk.
async fn delivery(shared: &Shared, req: http::Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let event_name = header(&parts, webhooks::EVENT_KEY_HEADER)
        .unwrap_or("none")
        .chars()
        .take(40)
        .collect::<String>();
    // The metrics' label: only the events followed, so that unsigned requests cannot make
    // series without end.
    let label = EventKey::parse(&event_name).map_or("other", EventKey::as_str);
    let metrics = &shared.metrics;
    let body = match signed_body(shared, &parts, body, label).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Some(key) = EventKey::parse(&event_name) else {
        metrics.delivery(label, "ignored");
        return answer(
            StatusCode::ACCEPTED,
            "ignored: not an event the mirror follows",
        );
    };
    let request_uuid = match request_uuid(&parts) {
        Ok(u) => u,
        Err(why) => {
            metrics.delivery(label, "malformed");
            return answer(StatusCode::BAD_REQUEST, why);
        }
    };
    let event = match RepositoryEvent::parse(key, &body) {
        Ok(e) => e,
        Err(e) => {
            metrics.delivery(label, "malformed");
            tracing::warn!(request_uuid, "refused a signed delivery: {e}");
            return answer(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let attempt = header(&parts, webhooks::ATTEMPT_HEADER).unwrap_or("1");
    admit(shared, label, request_uuid, attempt, event).await
}

/// The body, read within its limits and signed with the webhook's secret; else the answer
/// that refuses it (nothing of the body is logged).
async fn signed_body(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Incoming,
    label: &str,
) -> Result<Bytes, Answer> {
    let metrics = &shared.metrics;
    let too_large = || {
        metrics.delivery(label, "too_large");
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is over 256 KiB (Bitbucket drops such payloads itself)",
        )
    };
    let declared = header(parts, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > webhooks::MAX_PAYLOAD_BYTES) {
        return Err(too_large());
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(BodyProblem::TooLarge) => return Err(too_large()),
        Err(BodyProblem::Unreadable) => {
            metrics.delivery(label, "unreadable");
            return Err(answer(
                StatusCode::BAD_REQUEST,
                "the body could not be read",
            ));
        }
        Err(BodyProblem::TooSlow) => {
            metrics.delivery(label, "unreadable");
            return Err(answer(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive within 10 seconds",
            ));
        }
    };
    let signature = header(parts, webhooks::SIGNATURE_HEADER);
    let Err(e) = shared.verify(&body, signature) else {
        return Ok(body);
    };
    let reason = match e {
        SignatureError::Missing => "missing",
        SignatureError::Algorithm(_) => "algorithm",
        SignatureError::Malformed => "malformed",
        _ => "mismatch",
    };
    metrics
        .signature_failures
        .get_or_create(&ReasonLabels {
            reason: reason.to_owned(),
        })
        .inc();
    metrics.delivery(label, "unauthorized");
    tracing::warn!(reason, "refused a delivery: {e}");
    Err(answer(
        StatusCode::UNAUTHORIZED,
        &format!("signature refused: {e}"),
    ))
}

/// Queues a signed, parsed delivery on disk (or finds it a duplicate, or out of scope);
/// 503 when the journal cannot take it, so that Bitbucket tries again.
async fn admit(
    shared: &Shared,
    label: &str,
    request_uuid: &str,
    attempt: &str,
    event: RepositoryEvent,
) -> Answer {
    let metrics = &shared.metrics;
    match shared.events.admit(request_uuid, event.clone()).await {
        Ok(admission) => {
            metrics.journal_ok.store(true, Ordering::SeqCst);
            let (status, result, text) = match &admission {
                Admission::Queued => (StatusCode::ACCEPTED, "queued", "queued".to_owned()),
                Admission::Duplicate => (
                    StatusCode::ACCEPTED,
                    "duplicate",
                    "already received".to_owned(),
                ),
                Admission::OutOfScope { why } => {
                    (StatusCode::ACCEPTED, "ignored", format!("ignored: {why}"))
                }
            };
            metrics.delivery(label, result);
            tracing::info!(
                request_uuid,
                attempt,
                event = %event.key,
                repository = %event.full_name,
                result,
                "delivery"
            );
            answer(status, &text)
        }
        Err(e) => {
            metrics.journal_ok.store(false, Ordering::SeqCst);
            metrics.delivery(label, "error");
            tracing::error!(request_uuid, error = %e, "could not queue a delivery");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "the delivery could not be queued; try again",
            )
        }
    }
}

/// A running service.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    events: Arc<EventLoop>,
    accepting: tokio::task::JoinHandle<()>,
    looping: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

/// How `serve` runs: its flags.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Time between full reconciles.
    pub reconcile_every: Duration,
    /// Connections open at once at most.
    pub max_connections: u32,
    /// A repository's own failures before its deliveries are set aside.
    pub set_aside_after: u32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            reconcile_every: Duration::from_secs(6 * 3600),
            max_connections: MAX_CONNECTIONS,
            set_aside_after: mirror_core::events::DEFAULT_SET_ASIDE_AFTER,
        }
    }
}

/// Starts the service on `listener`: the event loop (a full reconcile now, then every
/// `options.reconcile_every`) and the HTTP server.
///
/// # Errors
/// When the state directory is locked or unreadable.
pub fn start(
    ctx: &Ctx,
    secrets: Vec<SecretString>,
    listener: TcpListener,
    options: ServeOptions,
) -> Result<Running> {
    let (stop, stopped) = watch::channel(false);
    let mirror = ctx.builder().stop_when(stopped.clone()).build()?;
    let metrics = Arc::new(Metrics::default());
    let events = EventLoop::new(
        Arc::new(mirror),
        metrics.clone(),
        LoopOptions::default().set_aside_after(options.set_aside_after),
    );
    let addr = listener.local_addr().context("the listening address")?;
    let shared = Arc::new(Shared {
        secrets,
        events: events.clone(),
        metrics,
        in_flight: AtomicUsize::new(0),
    });
    let looping = tokio::spawn(events.clone().run(stopped.clone(), options.reconcile_every));
    let limits = Limits {
        max_connections: Some(options.max_connections as usize),
        head_timeout: Some(Duration::from_secs(10)),
        max_head_bytes: Some(MAX_HEAD_BYTES),
    };
    let refused = {
        let shared = shared.clone();
        move || {
            shared.metrics.connections_refused.inc();
        }
    };
    let handler = {
        let shared = shared.clone();
        move |req| {
            let shared = shared.clone();
            async move {
                let answer = handle(shared, req).await;
                Ok(answer.map(|body| body.map_err(|never| match never {}).boxed()))
            }
        }
    };
    let accepting = tokio::spawn(server::serve(
        listener,
        limits,
        Some(stopped),
        refused,
        handler,
    ));
    Ok(Running {
        addr,
        stop,
        events,
        accepting,
        looping,
        shared,
    })
}

/// The largest request head (request line and headers) read: Bitbucket's are a few
/// kilobytes; a larger one is answered 431.
const MAX_HEAD_BYTES: usize = 32 * 1024;

impl Running {
    /// Waits until the first full reconcile has ended well, at most `within`; whether it did.
    pub async fn wait_reconciled(&self, within: Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        while self.shared.metrics.last_reconcile_ok.get() != 1 {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops accepting, lets the requests being answered finish, and drains the work in
    /// flight within `deadline` (imports in flight finish; nothing new starts). Returns how
    /// many deliveries stay queued for the next start, and whether the drain ended in time.
    pub async fn shutdown(self, deadline: Duration) -> (usize, bool) {
        let _ = self.stop.send(true);
        let _ = self.accepting.await;
        let until = tokio::time::Instant::now() + deadline;
        while self.shared.in_flight.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let drained = tokio::time::timeout_at(until, self.looping).await.is_ok();
        (self.events.queue_depth(), drained)
    }
}

/// `serve`: checks every setting at once, listens, and runs until SIGTERM or Ctrl-C.
///
/// # Errors
/// Settings (usage errors, all at once), an address that cannot be bound, a locked state
/// directory.
pub async fn command(
    g: &crate::cli::Global,
    out: crate::output::Out,
    listen: &str,
    options: ServeOptions,
    drain: Duration,
) -> Result<u8> {
    let reconcile_every = options.reconcile_every;
    let secret = webhook_secrets();
    let addr: Result<SocketAddr> = listen.trim().parse().map_err(|_| {
        Usage(format!(
            "--listen `{listen}`: give an address and a port, such as 127.0.0.1:8080, or 0.0.0.0:8080 to listen on every interface"
        ))
        .into()
    });
    let ctx = Ctx::from_env(g);
    let (secret, addr, ctx) = match (secret, addr, ctx) {
        (Ok(s), Ok(a), Ok(c)) => (s, a, c),
        (s, a, c) => {
            let errors = [s.err(), a.err(), c.err()].into_iter().flatten().collect();
            return Err(crate::context::all_at_once(errors));
        }
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Usage(format!(
            "cannot listen on {addr}: {e} (choose another address with --listen)"
        ))
    })?;
    let running = start(&ctx, secret, listener, options)?;
    out.status(&format!(
        "listening on http://{}{WEBHOOK_PATH} (health: /healthz, /readyz; metrics: /metrics); a full reconcile runs now and every {}",
        running.addr,
        humantime::format_duration(reconcile_every)
    ));
    crate::context::interrupted().await;
    out.status(&format!(
        "stopping: no new deliveries; letting the work in flight finish (at most {})…",
        humantime::format_duration(drain)
    ));
    let (left, drained) = running.shutdown(drain).await;
    if left > 0 {
        out.status(&format!(
            "{left} deliveries stay queued in the journal; the next start reconciles them"
        ));
    }
    Ok(if drained {
        crate::exit::OK
    } else {
        crate::exit::INTERRUPTED
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_is_cut_off_and_one_too_large_refused() {
        // One frame, then nothing: a client holding the connection open.
        let first = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
            hyper::body::Frame::data(Bytes::from_static(b"{")),
        )]);
        let stalled = first.chain(futures_util::stream::pending());
        let body = http_body_util::StreamBody::new(stalled);
        let started = tokio::time::Instant::now();
        assert_eq!(read_body(body).await, Err(BodyProblem::TooSlow));
        assert_eq!(started.elapsed(), BODY_READ_TIMEOUT);
        let big = Full::new(Bytes::from(vec![b' '; webhooks::MAX_PAYLOAD_BYTES + 1]));
        assert_eq!(read_body(big).await, Err(BodyProblem::TooLarge));
        let fine = Full::new(Bytes::from_static(b"{}"));
        assert_eq!(read_body(fine).await, Ok(Bytes::from_static(b"{}")));
    }
}
