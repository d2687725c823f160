//! The transport seam: one async call from an `http::Request` to an `http::Response`.
//!
//! The request loop ([`crate::HttpClient`]) never touches the network itself; it hands each
//! attempt to a [`Transport`]. [`ReqwestTransport`] is the real one (rustls, no native TLS); tests
//! and embedders can plug in their own.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::BoxError;

/// Why a transport could not deliver a request or read its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request certainly never reached the server: connection refused, DNS failure, TLS
    /// handshake failure. Safe to retry for any method.
    #[error("could not connect: {0}")]
    Connect(#[source] BoxError),
    /// No answer in time; the server may have acted on the request.
    #[error("timed out: {0}")]
    Timeout(#[source] BoxError),
    /// The connection broke after the request was sent, or while reading the answer.
    #[error("connection failed: {0}")]
    Io(#[source] BoxError),
}

/// Sends one request and reads the whole answer.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` and returns the answer, whatever its status.
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError>;
}

/// Timeouts and limits of [`ReqwestTransport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Time allowed to open a connection (TCP and TLS). Default 10 s.
    pub connect_timeout: Option<Duration>,
    /// Time allowed for one whole request, answer body included. Default 30 s.
    pub request_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept. Default 90 s.
    pub pool_idle_timeout: Option<Duration>,
    /// Redirects followed at most. Default 5. `Authorization` is never carried to another
    /// origin (scheme, host or port), and a redirect from `https` to plain `http` is not followed.
    pub max_redirects: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            request_timeout: Some(Duration::from_secs(30)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            max_redirects: 5,
        }
    }
}

impl TransportConfig {
    /// No timeouts and no idle pool timer: for tests on tokio's paused clock, where any pending
    /// timer would fire while the test waits on a real socket.
    pub fn without_timers() -> Self {
        Self {
            connect_timeout: None,
            request_timeout: None,
            pool_idle_timeout: None,
            max_redirects: 5,
        }
    }
}

/// The real transport: reqwest with rustls (ring), HTTP/1.1, the platform's certificate store.
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReqwestTransport")
    }
}

impl ReqwestTransport {
    /// Builds the transport.
    ///
    /// # Errors
    /// When the TLS configuration cannot be built (no usable certificate store).
    pub fn new(config: TransportConfig) -> Result<Self, crate::Error> {
        // Ring is the crypto provider: it builds with a C compiler alone. An embedder that
        // installed another process-wide provider keeps theirs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let max = config.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max {
                return attempt.error("too many redirects");
            }
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https")
                && !crate::base_url::is_loopback(attempt.url());
            if downgrade {
                attempt.stop()
            } else {
                // reqwest removes Authorization when the origin changes.
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .pool_idle_timeout(config.pool_idle_timeout);
        if let Some(t) = config.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = config.request_timeout {
            builder = builder.timeout(t);
        }
        let client = builder.build().map_err(|e| {
            crate::Error::config(format!("could not build the HTTP client: {e}")).with_source(e)
        })?;
        Ok(Self { client })
    }
}

fn classify(e: reqwest::Error) -> TransportError {
    let described: BoxError = describe(&e).into();
    if e.is_connect() {
        TransportError::Connect(described)
    } else if e.is_timeout() {
        TransportError::Timeout(described)
    } else {
        TransportError::Io(described)
    }
}

/// Says what went wrong in words a person can act on: the cause (refused, DNS, TLS, timeout),
/// the host and port, and the innermost error's own text. reqwest's own message ("error sending
/// request for url …") names neither the cause nor, for people, the host clearly.
fn describe(e: &reqwest::Error) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = s.source();
    }
    let all = causes.join(" ").to_ascii_lowercase();
    let what = if all.contains("refused") {
        "connection refused (nothing listens there)"
    } else if all.contains("dns") || all.contains("lookup") || all.contains("resolve") {
        "the host name could not be resolved (DNS)"
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        "the TLS handshake failed"
    } else if e.is_timeout() || all.contains("timed out") {
        "no answer in time"
    } else if all.contains("reset") || all.contains("closed") || all.contains("broken pipe") {
        "the connection was closed"
    } else {
        "the connection failed"
    };
    let host = e.url().map(|u| {
        let port = u
            .port_or_known_default()
            .map_or(String::new(), |p| format!(":{p}"));
        format!(" at {}{port}", u.host_str().unwrap_or("?"))
    });
    let detail = causes.last().map_or(String::new(), |c| format!(": {c}"));
    format!("{what}{}{detail}", host.unwrap_or_default())
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| TransportError::Connect(Box::new(e)))?;
        let response = self.client.execute(request).await.map_err(classify)?;
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(classify)?;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.version_mut() = version;
        *out.headers_mut() = headers;
        Ok(out)
    }
}
