//! The error every request can end with, and its classification.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

/// A boxed error source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is: the question callers ask instead of matching strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A passing failure (502, 503, 504, 408, a timeout): trying again later may work.
    Transient,
    /// The server's rate limit was hit (429).
    Throttled,
    /// The credentials were refused (401) or lack a permission or scope (403).
    Auth,
    /// The resource does not exist, or is invisible to these credentials (404).
    NotFound,
    /// The resource or endpoint was removed for good (410).
    Gone,
    /// The request conflicts with the state of the resource (409).
    Conflict,
    /// Any other 4xx: the request itself is wrong.
    Client,
    /// A 5xx other than the transient ones.
    Server,
    /// A successful answer whose body could not be read as expected.
    Decode,
    /// The connection failed (refused, DNS, reset, broken mid-body).
    Transport,
    /// Refused before sending: configuration, or a URL that breaks the client's policy.
    Config,
}

impl ErrorKind {
    /// Classifies an HTTP error status.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            429 => Self::Throttled,
            401 | 403 => Self::Auth,
            404 => Self::NotFound,
            410 => Self::Gone,
            409 => Self::Conflict,
            408 | 502 | 503 | 504 => Self::Transient,
            500..=599 => Self::Server,
            _ => Self::Client,
        }
    }

    /// A short lowercase name, as used in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Auth => "auth",
            Self::NotFound => "not found",
            Self::Gone => "gone",
            Self::Conflict => "conflict",
            Self::Client => "client",
            Self::Server => "server",
            Self::Decode => "decode",
            Self::Transport => "transport",
            Self::Config => "config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed request may have reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The request certainly never reached the server (connection refused, DNS failure, TLS
    /// handshake failure, refused locally).
    NotSent,
    /// The server may have received and acted on the request.
    MaybeSent,
    /// The server answered.
    Answered,
}

/// The error of a request: what kind it is, where it happened, and what the server said.
///
/// It never holds a credential: the body excerpt is redacted (see [`crate::redact`]) and the
/// request headers are not kept.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<StatusCode>,
    method: Option<Method>,
    path: Option<String>,
    request_id: Option<String>,
    body: Option<String>,
    retry_after: Option<Duration>,
    attempts: u32,
    delivery: Delivery,
    headers: HeaderMap,
    credential_kind: Option<String>,
    token_exchange: bool,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a message for people. The other details are added with the
    /// `with_*` methods.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                status: None,
                method: None,
                path: None,
                request_id: None,
                body: None,
                retry_after: None,
                attempts: 0,
                delivery: Delivery::NotSent,
                headers: HeaderMap::new(),
                credential_kind: None,
                token_exchange: false,
                source: None,
            }),
        }
    }

    /// A configuration error: refused before anything was sent.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Adds the request's method and path (without the query).
    pub fn with_request(mut self, method: Method, path: impl Into<String>) -> Self {
        self.inner.method = Some(method);
        self.inner.path = Some(path.into());
        self
    }

    /// Adds the answer's status; the delivery becomes [`Delivery::Answered`].
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self.inner.delivery = Delivery::Answered;
        self
    }

    /// Adds the server's request id.
    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.inner.request_id = id;
        self
    }

    /// Adds an excerpt of the body. The caller must have redacted it.
    pub fn with_body(mut self, body: Option<String>) -> Self {
        self.inner.body = body;
        self
    }

    /// Adds the delay the server asked for.
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.inner.retry_after = delay;
        self
    }

    /// Records how many attempts were made.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    /// Records whether the request may have reached the server.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.inner.delivery = delivery;
        self
    }

    /// Keeps the answer's headers for diagnosis (`Set-Cookie` is dropped). They are never shown
    /// by `Display` or `Debug`.
    pub fn with_headers(mut self, mut headers: HeaderMap) -> Self {
        headers.remove(http::header::SET_COOKIE);
        self.inner.headers = headers;
        self
    }

    /// Records which kind of credential was used (for example `atlassian-api-token`).
    pub fn with_credential_kind(mut self, kind: impl Into<String>) -> Self {
        self.inner.credential_kind = Some(kind.into());
        self
    }

    /// Marks the error as a failure of an OAuth token exchange (the token endpoint refused or
    /// failed), not of the API call that needed the token.
    pub fn with_token_exchange(mut self) -> Self {
        self.inner.token_exchange = true;
        self
    }

    /// Whether the failure happened while exchanging client credentials for a token.
    pub fn is_token_exchange(&self) -> bool {
        self.inner.token_exchange
    }

    /// Adds the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Replaces the message, keeping every other detail.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// Replaces the kind, keeping every other detail.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The request's method.
    pub fn method(&self) -> Option<&Method> {
        self.inner.method.as_ref()
    }

    /// The request's path, without the query.
    pub fn path(&self) -> Option<&str> {
        self.inner.path.as_deref()
    }

    /// The request id the server gave, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// At most 4 KiB of the answer's body, with credentials removed.
    pub fn body(&self) -> Option<&str> {
        self.inner.body.as_deref()
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// How many attempts were made before giving up (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Whether the request may have reached the server.
    pub fn delivery(&self) -> Delivery {
        self.inner.delivery
    }

    /// The answer's headers (without `Set-Cookie`), for diagnosis.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// One header of the answer as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The kind of credential that was used, if any.
    pub fn credential_kind(&self) -> Option<&str> {
        self.inner.credential_kind.as_deref()
    }

    /// Whether sending the same request again could succeed without harm:
    /// 429 and 503 for any method; other transient and server errors, and connections broken
    /// after sending, for idempotent methods only; connections that never reached the server for
    /// any method.
    pub fn is_retryable(&self) -> bool {
        let idempotent = self.inner.method.as_ref().is_some_and(is_idempotent);
        if let Some(status) = self.inner.status {
            return match status.as_u16() {
                429 | 503 => true,
                _ => {
                    matches!(self.inner.kind, ErrorKind::Transient | ErrorKind::Server)
                        && idempotent
                }
            };
        }
        match (self.inner.kind, self.inner.delivery) {
            (ErrorKind::Transport | ErrorKind::Transient, Delivery::NotSent) => true,
            (ErrorKind::Transport | ErrorKind::Transient, _) => idempotent,
            _ => false,
        }
    }
}

/// Whether a method may be repeated without changing the outcome (GET, HEAD, PUT, DELETE, OPTIONS).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.write_str(&i.message)?;
        if let (Some(method), Some(path)) = (&i.method, &i.path) {
            write!(f, " ({method} {path}")?;
            if let Some(status) = i.status {
                write!(f, " answered {}", status.as_u16())?;
            }
            if let Some(id) = &i.request_id {
                write!(f, ", request id {id}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let header_names: Vec<&str> = i.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("Error")
            .field("kind", &i.kind)
            .field("message", &i.message)
            .field("status", &i.status.map(|s| s.as_u16()))
            .field("method", &i.method)
            .field("path", &i.path)
            .field("request_id", &i.request_id)
            .field("retry_after", &i.retry_after)
            .field("attempts", &i.attempts)
            .field("delivery", &i.delivery)
            .field("credential_kind", &i.credential_kind)
            .field("token_exchange", &i.token_exchange)
            .field("header_names", &header_names)
            .field("body", &i.body)
            .field("source", &i.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let k = |s: u16| ErrorKind::from_status(StatusCode::from_u16(s).unwrap());
        assert_eq!(k(429), ErrorKind::Throttled);
        assert_eq!(k(401), ErrorKind::Auth);
        assert_eq!(k(403), ErrorKind::Auth);
        assert_eq!(k(404), ErrorKind::NotFound);
        assert_eq!(k(410), ErrorKind::Gone);
        assert_eq!(k(409), ErrorKind::Conflict);
        assert_eq!(k(422), ErrorKind::Client);
        assert_eq!(k(503), ErrorKind::Transient);
        assert_eq!(k(500), ErrorKind::Server);
    }

    fn answered(method: Method, status: u16) -> Error {
        let status = StatusCode::from_u16(status).unwrap();
        Error::new(ErrorKind::from_status(status), "x")
            .with_request(method, "/p")
            .with_status(status)
    }

    #[test]
    fn retryability_follows_idempotency() {
        assert!(answered(Method::POST, 429).is_retryable());
        assert!(answered(Method::POST, 503).is_retryable());
        assert!(!answered(Method::POST, 500).is_retryable());
        assert!(!answered(Method::POST, 502).is_retryable());
        assert!(answered(Method::GET, 500).is_retryable());
        assert!(answered(Method::PUT, 504).is_retryable());
        assert!(!answered(Method::GET, 404).is_retryable());
        assert!(!answered(Method::GET, 410).is_retryable());
        assert!(!answered(Method::GET, 401).is_retryable());

        let broken = |m: Method, d: Delivery| {
            Error::new(ErrorKind::Transport, "x")
                .with_request(m, "/p")
                .with_delivery(d)
        };
        assert!(broken(Method::POST, Delivery::NotSent).is_retryable());
        assert!(!broken(Method::POST, Delivery::MaybeSent).is_retryable());
        assert!(broken(Method::GET, Delivery::MaybeSent).is_retryable());
        assert!(!Error::config("bad").is_retryable());
    }

    #[test]
    fn display_names_request_and_status() {
        let e = answered(Method::GET, 404).with_request_id(Some("rid-1".into()));
        assert_eq!(e.to_string(), "x (GET /p answered 404, request id rid-1)");
    }
}
