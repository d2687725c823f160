//! A tiny in-process HTTP server for fake APIs (feature `sandbox`).
//!
//! Both sandboxes (the fake Bitbucket Cloud and the fake Snyk) are a [`Handler`] served by
//! [`Server`]: plain HTTP/1.1 on `127.0.0.1` with a random port, request counting per route and
//! per credential, latency, and injected faults (error statuses, dropped connections, bodies cut
//! mid-way, malformed JSON). It is built directly on hyper, which the HTTP client already brings,
//! because a fake server must be able to drop a connection or cut a body, which mock-server crates
//! cannot do.
//!
//! Latency and injected delays use tokio's clock, so the sandboxes work on a paused clock too.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as a handler sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, percent-decoded.
    pub path: String,
    /// The query pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The origin the client used, such as `http://127.0.0.1:41234`.
    pub origin: String,
}

impl Request {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path split into decoded segments, without empty ones.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The `Authorization` header split into its scheme (lowercased) and its credentials.
    pub fn authorization(&self) -> Option<(String, String)> {
        let value = self.headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, rest) = value.split_once(' ')?;
        Some((scheme.to_ascii_lowercase(), rest.trim().to_owned()))
    }

    /// The user and password of HTTP Basic credentials.
    pub fn basic(&self) -> Option<(String, String)> {
        let (scheme, encoded) = self.authorization()?;
        if scheme != "basic" {
            return None;
        }
        let decoded = String::from_utf8(crate::base64_decode(&encoded)?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    }

    /// The form body's pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// A handler's answer, with the labels the server counts it under.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The route the request matched, such as `GET /repositories/{workspace}`.
    pub route: String,
    /// A label for the credential used, never the secret itself.
    pub credential: Option<String>,
}

impl Response {
    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut r = Self::bytes(status, serde_json::to_vec(value).unwrap_or_default());
        r.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    }

    /// A plain-text answer.
    pub fn text(status: u16, text: &str) -> Self {
        let mut r = Self::bytes(status, text.as_bytes().to_vec());
        r.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    /// An answer with an empty body.
    pub fn empty(status: u16) -> Self {
        Self::bytes(status, Vec::new())
    }

    fn bytes(status: u16, body: Vec<u8>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            body: body.into(),
            route: String::new(),
            credential: None,
        }
    }

    /// Adds a header; invalid names or values are ignored (the handler's own bug).
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(name, v);
        }
        self
    }

    /// Sets the route label.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = route.into();
        self
    }

    /// Sets the credential label.
    pub fn credential(mut self, label: Option<String>) -> Self {
        self.credential = label;
        self
    }
}

/// A fake API.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: &Request) -> Response;
}

thread_local! {
    static SERVING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a sandbox's handler right now. A benchmark's counting
/// allocator uses it to tell the memory the sandboxes keep from the memory of the code under
/// test, when both share one thread.
pub fn serving() -> bool {
    SERVING.with(Cell::get)
}

/// Answers through `handler`, marked as sandbox work for [`serving`].
fn handle_marked(handler: &dyn Handler, request: &Request) -> Response {
    SERVING.with(|s| s.set(true));
    let answer = handler.handle(request);
    SERVING.with(|s| s.set(false));
    answer
}

/// A fault injected into the next matching requests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a short body instead of calling the handler.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Call the handler, send half of its body, then close the connection.
    DropMidBody,
    /// Answer 200 with JSON that does not parse.
    Malformed,
    /// Wait this long before answering (on top of the latency).
    Delay(Duration),
    /// Answer 429 with a plain-text body, and `Retry-After` in seconds when given.
    Throttled(Option<u64>),
    /// Call the handler, then take `next` (and `links.next`) out of its JSON answer: a
    /// listing that ends early.
    NoNext,
}

#[derive(Debug)]
struct Injection {
    path_prefix: Option<String>,
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
struct Shared {
    latency: Mutex<Duration>,
    injections: Mutex<VecDeque<Injection>>,
    stats: Mutex<StatsInner>,
    total: AtomicU64,
}

#[derive(Default, Debug, Clone)]
struct StatsInner {
    per_route: BTreeMap<String, u64>,
    per_credential: BTreeMap<String, u64>,
    per_status: BTreeMap<u16, u64>,
    per_host: BTreeMap<String, u64>,
    faults: u64,
}

/// What a server has answered so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests received.
    pub total: u64,
    /// Requests per route label (faults injected before the handler count under `fault`).
    pub per_route: BTreeMap<String, u64>,
    /// Requests per credential label.
    pub per_credential: BTreeMap<String, u64>,
    /// Answers per status.
    pub per_status: BTreeMap<u16, u64>,
    /// Requests per `Host` header (a client that follows a link to another host name shows
    /// here, even when that name leads back to this server).
    pub per_host: BTreeMap<String, u64>,
    /// Requests that met an injected fault.
    pub faults: u64,
}

impl Stats {
    /// Requests counted under `route`.
    pub fn route(&self, route: &str) -> u64 {
        self.per_route.get(route).copied().unwrap_or(0)
    }

    /// Answers with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.per_status.get(&status).copied().unwrap_or(0)
    }
}

/// A running fake server; it stops when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

type Body = BoxBody<Bytes, io::Error>;

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

impl Server {
    /// Starts serving `handler` on `127.0.0.1` with a random port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(handler: Arc<dyn Handler>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task_shared = shared.clone();
        let handle = move |req| {
            let (handler, shared) = (handler.clone(), task_shared.clone());
            serve(req, handler, shared)
        };
        let task = tokio::spawn(crate::server::serve(
            listener,
            crate::server::Limits::default(),
            None,
            || {},
            handle,
        ));
        Ok(Self { addr, shared, task })
    }

    /// Starts a fake whose handler works on shared `state`: `handler` builds the handler from
    /// the state, which the caller keeps too (to change the fake's world while it runs). Every
    /// answer waits `latency`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start_with_state<S, H: Handler>(
        state: S,
        latency: Duration,
        handler: impl FnOnce(Arc<Mutex<S>>) -> H,
    ) -> io::Result<(Self, Arc<Mutex<S>>)> {
        let state = Arc::new(Mutex::new(state));
        let server = Self::start(Arc::new(handler(state.clone()))).await?;
        server.set_latency(latency);
        Ok((server, state))
    }

    /// The server's origin, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the latency added to every answer.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// Injects `fault` into the next `times` requests.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.push(None, fault, times);
    }

    /// Injects `fault` into the next `times` requests whose path starts with `path_prefix`.
    pub fn inject_on(&self, path_prefix: &str, fault: Fault, times: usize) {
        self.push(Some(path_prefix.to_owned()), fault, times);
    }

    fn push(&self, path_prefix: Option<String>, fault: Fault, times: usize) {
        if times > 0 {
            lock(&self.shared.injections).push_back(Injection {
                path_prefix,
                fault,
                remaining: times,
            });
        }
    }

    /// Injected faults not met yet.
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.injections)
            .iter()
            .map(|i| i.remaining)
            .sum()
    }

    /// What the server has answered so far.
    pub fn stats(&self) -> Stats {
        let inner = lock(&self.shared.stats).clone();
        Stats {
            total: self.shared.total.load(Ordering::SeqCst),
            per_route: inner.per_route,
            per_credential: inner.per_credential,
            per_status: inner.per_status,
            per_host: inner.per_host,
            faults: inner.faults,
        }
    }

    /// Forgets the counts so far.
    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = StatsInner::default();
        self.shared.total.store(0, Ordering::SeqCst);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Locks a sandbox's state (the workspace's one lock: a handler that panicked leaves the
/// state as it was at its last complete step).
pub use crate::sync::lock;

fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut injections = lock(&shared.injections);
    let index = injections.iter().position(|i| {
        i.path_prefix
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix))
    })?;
    let injection = &mut injections[index];
    let fault = injection.fault.clone();
    injection.remaining -= 1;
    if injection.remaining == 0 {
        injections.remove(index);
    }
    Some(fault)
}

/// The request as handlers see it: path and query decoded, the body read; counted per host.
async fn read_request(req: http::Request<Incoming>, shared: &Shared) -> Request {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    *lock(&shared.stats)
        .per_host
        .entry(host.clone())
        .or_default() += 1;
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    Request {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
        origin: format!("http://{host}"),
    }
}

/// Counts an answer per route, credential and status.
fn record(shared: &Shared, route: &str, credential: Option<&String>, status: u16, faulted: bool) {
    let mut stats = lock(&shared.stats);
    *stats.per_route.entry(route.to_owned()).or_default() += 1;
    if let Some(c) = credential {
        *stats.per_credential.entry(c.clone()).or_default() += 1;
    }
    *stats.per_status.entry(status).or_default() += 1;
    if faulted {
        stats.faults += 1;
    }
}

/// The answer of a fault that replaces the handler's (`None` for the faults that change the
/// handler's answer, or none); counted.
fn fault_answer(fault: &Fault, shared: &Shared) -> Option<Result<http::Response<Body>, io::Error>> {
    let (status, answer) = match fault {
        Fault::Drop => {
            record(shared, "fault", None, 0, true);
            return Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "sandbox: injected dropped connection",
            )));
        }
        Fault::Status(429) => (
            429,
            Response::text(429, "Rate limit for this resource has been exceeded"),
        ),
        Fault::Status(status) => (
            *status,
            Response::json(
                *status,
                &serde_json::json!({"type": "error", "error": {"message": "sandbox: injected fault"}}),
            ),
        ),
        Fault::Throttled(retry_after) => {
            let mut r = Response::text(429, "Rate limit for this resource has been exceeded");
            if let Some(seconds) = retry_after {
                r = r.header("retry-after", seconds.to_string());
            }
            (429, r)
        }
        Fault::Malformed => {
            let mut r = Response::bytes(200, b"{\"values\": [{\"slug\": ".to_vec());
            r.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            (200, r)
        }
        Fault::DropMidBody | Fault::Delay(_) | Fault::NoNext => return None,
    };
    record(shared, "fault", None, status, true);
    Some(Ok(into_http(answer)))
}

/// Removes the `next` link of a page (top-level or under `links`).
fn strip_next(answer: &mut Response) {
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&answer.body) else {
        return;
    };
    if let Some(o) = json.as_object_mut() {
        o.remove("next");
    }
    if let Some(links) = json
        .get_mut("links")
        .and_then(serde_json::Value::as_object_mut)
    {
        links.remove("next");
    }
    answer.body = Bytes::from(json.to_string());
    answer.headers.remove(CONTENT_LENGTH);
}

/// The answer with its full length announced and only half of its body sent before the
/// connection breaks.
fn cut_mid_body(answer: Response) -> http::Response<Body> {
    let len = answer.body.len();
    let half = answer.body.slice(..len / 2);
    let frames: Vec<Result<Frame<Bytes>, io::Error>> = vec![
        Ok(Frame::data(half)),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "sandbox: injected cut",
        )),
    ];
    let mut response =
        http::Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len.max(1)));
    response
}

async fn serve(
    req: http::Request<Incoming>,
    handler: Arc<dyn Handler>,
    shared: Arc<Shared>,
) -> Result<http::Response<Body>, io::Error> {
    shared.total.fetch_add(1, Ordering::SeqCst);
    let request = read_request(req, &shared).await;
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = take_fault(&shared, &request.path);
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    if let Some(answer) = fault.as_ref().and_then(|f| fault_answer(f, &shared)) {
        return answer;
    }
    let mut answer = handle_marked(handler.as_ref(), &request);
    if fault == Some(Fault::NoNext) {
        strip_next(&mut answer);
    }
    record(
        &shared,
        &answer.route,
        answer.credential.as_ref(),
        answer.status.as_u16(),
        fault.is_some(),
    );
    if fault == Some(Fault::DropMidBody) {
        return Ok(cut_mid_body(answer));
    }
    Ok(into_http(answer))
}

fn into_http(answer: Response) -> http::Response<Body> {
    let mut response = http::Response::new(full(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic bWVAZXhhbXBsZS5jb206dG9r"),
        );
        let r = Request {
            method: Method::GET,
            path: "/".into(),
            query: vec![],
            headers,
            body: Bytes::new(),
            origin: String::new(),
        };
        assert_eq!(
            r.basic(),
            Some(("me@example.com".to_owned(), "tok".to_owned()))
        );
    }
}
