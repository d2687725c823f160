//! The request loop both API clients share: authorize, send, classify, maybe wait and retry.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use crate::error::Delivery;
use crate::pool::Lease;
use crate::redact::{MAX_EXCERPT, redact, truncate};
use crate::retry::parse_retry_after;
use crate::{
    BaseUrl, CredentialPool, Error, ErrorKind, ReqwestTransport, RetryPolicy, Transport,
    TransportConfig, TransportError,
};

/// The default `User-Agent`: `bb-snyk-mirror/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("bb-snyk-mirror/", env!("CARGO_PKG_VERSION"));

/// The largest part of an error body that is read for the excerpt before it is cut.
const EXCERPT_SCAN: usize = 64 * 1024;

/// A request body with its content type.
#[derive(Clone)]
pub struct Body {
    content_type: HeaderValue,
    bytes: Bytes,
}

impl Body {
    /// A JSON body (`application/json`).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `value` cannot be serialised.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        Self::json_as(value, "application/json")
    }

    /// A JSON body with another content type, such as `application/vnd.api+json`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `value` cannot be serialised.
    pub fn json_as<T: Serialize + ?Sized>(
        value: &T,
        content_type: &'static str,
    ) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::config(format!("could not serialise a request body: {e}")))?;
        Ok(Self {
            content_type: HeaderValue::from_static(content_type),
            bytes: bytes.into(),
        })
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        Self {
            content_type: HeaderValue::from_static("application/x-www-form-urlencoded"),
            bytes: s.finish().into(),
        }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The content type.
    pub fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }
}

impl fmt::Debug for Body {
    /// Bodies may carry credentials (token exchanges, integration set-up): only their size shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A request ready for the loop: method, absolute URL, extra headers and an optional body.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL; it must be on the client's origin.
    pub url: Url,
    /// Extra headers (never `Authorization`: the loop sets it).
    pub headers: HeaderMap,
    /// The body, if any.
    pub body: Option<Body>,
}

impl ApiRequest {
    /// A request without body or extra headers.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }
}

/// Whether a 2xx answer says it is JSON and is not even well-formed JSON. An object or array
/// that ends as it began is taken as whole without a second parse (decoding will tell the
/// rest), so the check costs nothing on the common path; anything else is parsed once to know.
fn garbled_json(headers: &HeaderMap, body: &[u8]) -> bool {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    let trimmed = body.trim_ascii();
    if !json || trimmed.is_empty() {
        return false;
    }
    match (trimmed.first(), trimmed.last()) {
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')) => false,
        _ => serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_err(),
    }
}

/// A successful (2xx) answer, read whole.
#[derive(Clone)]
pub struct ApiResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    method: Method,
    url: Url,
    credential: usize,
}

impl ApiResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The URL that was requested.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The position in the pool of the credential that got this answer.
    pub fn credential_index(&self) -> usize {
        self.credential
    }

    /// Reads the body as JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Decode`] naming the JSON path that failed, for example
    /// `values[3].mainbranch.name`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode_json(&self.body).map_err(|(path, e)| {
            Error::new(
                ErrorKind::Decode,
                format!(
                    "the answer is not the JSON expected: at `{path}`: {}",
                    redact(&e)
                ),
            )
            .with_request(self.method.clone(), self.url.path())
            .with_status(self.status)
        })
    }
}

/// Deserialises JSON, returning the failing path and message on error.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        (
            crate::lenient::shown_path(e.path()),
            e.into_inner().to_string(),
        )
    })
}

impl fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status.as_u16())
            .field("method", &self.method)
            .field("path", &self.url.path())
            .field("len", &self.body.len())
            .finish()
    }
}

/// Describes one API call without performing it (method, path, query, body); one generic send
/// path, [`HttpClient::execute`], performs the I/O for all of them.
pub trait Endpoint {
    /// The method; GET by default.
    fn method(&self) -> Method {
        Method::GET
    }

    /// The path relative to the client's base URL, each variable segment encoded with
    /// [`crate::path_segment`].
    fn path(&self) -> Cow<'_, str>;

    /// Query parameters.
    fn query(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The body, if any.
    ///
    /// # Errors
    /// When the body cannot be built.
    fn body(&self) -> Result<Option<Body>, Error> {
        Ok(None)
    }
}

/// How a client reaches the network: its retry policy, and a transport of its own or the
/// default transport's timeouts. Every builder of the API clients holds one and hands it on, so
/// the OAuth token exchange behaves like the API calls.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// The retry policy.
    pub retry: RetryPolicy,
    /// A transport of your own instead of [`ReqwestTransport`].
    pub transport: Option<Arc<dyn Transport>>,
    /// Timeouts of the default transport.
    pub transport_config: TransportConfig,
}

/// Builds an [`HttpClient`].
#[derive(Debug)]
pub struct HttpClientBuilder {
    base: String,
    credentials: Option<CredentialPool>,
    options: HttpOptions,
    user_agent: Cow<'static, str>,
    request_id_headers: Vec<HeaderName>,
    accept: HeaderValue,
    budget_scope: Option<String>,
}

impl HttpClientBuilder {
    /// The credentials (a pool of one or more). Without, requests are anonymous.
    pub fn credentials(mut self, pool: CredentialPool) -> Self {
        self.credentials = Some(pool);
        self
    }

    crate::http_option_setters!();

    /// Retry policy, transport and timeouts at once.
    pub fn options(mut self, options: &HttpOptions) -> Self {
        self.options = options.clone();
        self
    }

    /// The `User-Agent` (default [`DEFAULT_USER_AGENT`]).
    pub fn user_agent(mut self, ua: impl Into<Cow<'static, str>>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// The answer headers that carry the server's request id, first match wins
    /// (default `x-request-id`).
    pub fn request_id_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.request_id_headers = names.into_iter().collect();
        self
    }

    /// The default `Accept` header (default `application/json`).
    pub fn accept(mut self, accept: &'static str) -> Self {
        self.accept = HeaderValue::from_static(accept);
        self
    }

    /// Limits the credentials' budgets to the requests whose path, below the base path, starts
    /// with `prefix` (the provider's rate-limited resource, such as Bitbucket's
    /// `/repositories`). Other requests are not counted and never wait for a budget. Default:
    /// every request counts.
    pub fn budget_scope(mut self, prefix: impl Into<String>) -> Self {
        self.budget_scope = Some(prefix.into());
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a bad base URL (see [`BaseUrl::parse`]), a user agent that is
    /// not a valid header, or a transport that cannot be built.
    pub fn build(self) -> Result<HttpClient, Error> {
        let base = BaseUrl::parse(&self.base)?;
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .map_err(|_| Error::config("the user agent is not a valid header value"))?;
        let transport = match self.options.transport {
            Some(t) => t,
            None => Arc::new(ReqwestTransport::new(self.options.transport_config)?),
        };
        Ok(HttpClient {
            inner: Arc::new(Inner {
                base,
                pool: self
                    .credentials
                    .unwrap_or_else(|| CredentialPool::new(Vec::new())),
                transport,
                retry: self.options.retry,
                user_agent,
                request_id_headers: self.request_id_headers,
                accept: self.accept,
                budget_scope: self.budget_scope,
            }),
        })
    }
}

struct Inner {
    base: BaseUrl,
    pool: CredentialPool,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    user_agent: HeaderValue,
    request_id_headers: Vec<HeaderName>,
    accept: HeaderValue,
    budget_scope: Option<String>,
}

impl Inner {
    /// Whether a request to `url` counts against the credentials' budgets.
    fn metered(&self, url: &Url) -> bool {
        let Some(scope) = &self.budget_scope else {
            return true;
        };
        let base = self.base.as_url().path().trim_end_matches('/');
        url.path()
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with(scope.as_str()))
    }
}

/// An HTTP client bound to one API's base URL and credentials. Cloning is cheap (one `Arc`), so
/// paginators and spawned tasks own their clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.inner.base)
            .field("credentials", &self.inner.pool)
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// A failed attempt.
struct Failure {
    error: Error,
    /// The `Authorization` header that was sent, for the authorizer's renewal.
    sent_auth: Option<HeaderValue>,
}

impl HttpClient {
    /// Starts building a client for the API at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            base: base_url.into(),
            credentials: None,
            options: HttpOptions::default(),
            user_agent: Cow::Borrowed(DEFAULT_USER_AGENT),
            request_id_headers: vec![HeaderName::from_static("x-request-id")],
            accept: HeaderValue::from_static("application/json"),
            budget_scope: None,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
    }

    /// The credentials.
    pub fn credentials(&self) -> &CredentialPool {
        &self.inner.pool
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The absolute URL of `path` (already encoded) with `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.inner.base.join(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Builds the request an endpoint describes.
    ///
    /// # Errors
    /// When the endpoint's body cannot be built.
    pub fn request_for<E: Endpoint + ?Sized>(&self, endpoint: &E) -> Result<ApiRequest, Error> {
        let query = endpoint.query();
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut request = ApiRequest::new(endpoint.method(), self.url(&endpoint.path(), &pairs));
        request.body = endpoint.body()?;
        Ok(request)
    }

    /// Performs the call an endpoint describes.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn execute<E: Endpoint + ?Sized>(&self, endpoint: &E) -> Result<ApiResponse, Error> {
        self.send(self.request_for(endpoint)?).await
    }

    /// Sends a request through the loop: take a credential with budget, authorize, send, and on
    /// failure retry as [`RetryPolicy`] says. 429 and 503 are retried for any method; other 5xx,
    /// timeouts and broken connections for idempotent methods only; a POST whose connection
    /// never opened is retried too. A 401 gives the credential one chance to renew. Other 4xx
    /// fail at once.
    ///
    /// # Errors
    /// The last error, with the number of attempts made; [`ErrorKind::Config`] at once for a URL
    /// outside the base's origin.
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse, Error> {
        let inner = &*self.inner;
        let path = request.url.path().to_owned();
        inner
            .base
            .check_origin(&request.url)
            .map_err(|e| e.with_request(request.method.clone(), path.clone()))?;
        let retry = inner.retry;
        let mut attempt: u32 = 0;
        let mut waited = Duration::ZERO;
        let mut renewed = false;
        let metered = inner.metered(&request.url);
        let started = Instant::now();
        loop {
            attempt += 1;
            let lease = inner.pool.acquire_for(metered).await;
            let (error, sent_auth) = match self.attempt(&request, &lease, attempt).await {
                Ok(response) => return Ok(response),
                Err(Failure { error, sent_auth }) => (error.with_attempts(attempt), sent_auth),
            };

            if error.status() == Some(StatusCode::UNAUTHORIZED) && !renewed {
                renewed = true;
                let auth = lease.authorizer();
                if auth
                    .renew(sent_auth.as_ref())
                    .await
                    .map_err(|e| e.with_request(request.method.clone(), path.clone()))?
                {
                    tracing::debug!(method = %request.method, path = %path, attempt, "credentials renewed after 401; sending again");
                    continue;
                }
            }
            // A failed token exchange was already retried by the authorizer's own loop.
            if !error.is_retryable() || error.is_token_exchange() || attempt >= retry.max_attempts {
                return Err(error);
            }
            let mut delay = error
                .retry_after()
                .unwrap_or_else(|| retry.backoff(attempt));
            if error.kind() == ErrorKind::Throttled {
                // This credential rests; another one may carry on at once.
                inner.pool.rest(lease.index(), Instant::now() + delay);
                if inner.pool.another_is_free(lease.index()) {
                    delay = Duration::ZERO;
                }
            }
            if error.status().is_none() && started.elapsed() + delay >= retry.unanswered_budget {
                tracing::debug!(method = %request.method, path = %path, attempt, "no answer for too long; giving up");
                return Err(error);
            }
            if waited + delay > retry.max_total_wait {
                tracing::debug!(method = %request.method, path = %path, attempt, "retry budget spent; giving up");
                return Err(error);
            }
            waited += delay;
            tracing::info!(
                method = %request.method,
                path = %path,
                status = error.status().map(|s| s.as_u16()),
                kind = %error.kind(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        request: &ApiRequest,
        lease: &Lease,
        attempt: u32,
    ) -> Result<ApiResponse, Failure> {
        let inner = &*self.inner;
        let method = request.method.clone();
        let path = request.url.path();
        let auth = lease.authorizer();
        let sent_auth = match auth.authorization().await {
            Ok(h) => h,
            Err(e) => {
                return Err(Failure {
                    error: e
                        .with_request(method, path)
                        .with_credential_kind(auth.kind()),
                    sent_auth: None,
                });
            }
        };

        let http_request = match self.http_request(request, sent_auth.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                return Err(Failure {
                    error: Error::config(format!("could not build the request: {e}"))
                        .with_request(method, path),
                    sent_auth,
                });
            }
        };
        let outcome = inner.transport.send(http_request).await;
        self.answer(request, lease, attempt, outcome)
            .map_err(|error| Failure { error, sent_auth })
    }

    /// The HTTP request for `request`: its headers, this client's, and the authorization.
    fn http_request(
        &self,
        request: &ApiRequest,
        authorization: Option<&HeaderValue>,
    ) -> Result<http::Request<Bytes>, http::Error> {
        let inner = &*self.inner;
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(request.url.as_str());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(request.headers.clone());
            headers.insert(USER_AGENT, inner.user_agent.clone());
            if !headers.contains_key(ACCEPT) {
                headers.insert(ACCEPT, inner.accept.clone());
            }
            if let Some(h) = authorization {
                headers.insert(AUTHORIZATION, h.clone());
            }
            if let Some(body) = &request.body {
                headers.insert(CONTENT_TYPE, body.content_type.clone());
            }
        }
        let body = request
            .body
            .as_ref()
            .map(|b| b.bytes.clone())
            .unwrap_or_default();
        builder.body(body)
    }

    /// What one attempt's `outcome` means: the response, or the error it is (a garbled JSON
    /// answer to an idempotent request is transient).
    fn answer(
        &self,
        request: &ApiRequest,
        lease: &Lease,
        attempt: u32,
        outcome: Result<http::Response<Bytes>, TransportError>,
    ) -> Result<ApiResponse, Error> {
        let (method, path) = (request.method.clone(), request.url.path());
        let kind = lease.authorizer().kind();
        match outcome {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(method = %method, path = %path, status = response.status().as_u16(), attempt, "answered");
                let (parts, body) = response.into_parts();
                if crate::error::is_idempotent(&method) && garbled_json(&parts.headers, &body) {
                    // A JSON answer that does not even parse was cut or garbled on the way
                    // (a proxy, a dropped connection): asking again is safe and usually works.
                    return Err(Error::new(
                        ErrorKind::Transient,
                        "the answer is not valid JSON (cut or garbled on the way)",
                    )
                    .with_request(method, path)
                    .with_status(parts.status)
                    .with_delivery(Delivery::Answered)
                    .with_credential_kind(kind));
                }
                Ok(ApiResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                    method,
                    url: request.url.clone(),
                    credential: lease.index(),
                })
            }
            Ok(response) => {
                let status = response.status();
                tracing::debug!(method = %method, path = %path, status = status.as_u16(), attempt, "answered with an error");
                let (parts, body) = response.into_parts();
                Err(self
                    .error_from_answer(status, parts.headers, &body)
                    .with_request(method, path)
                    .with_credential_kind(kind))
            }
            Err(e) => {
                tracing::debug!(method = %method, path = %path, attempt, error = %e, "transport failure");
                let (error_kind, delivery) = match &e {
                    TransportError::Connect(_) => (ErrorKind::Transport, Delivery::NotSent),
                    TransportError::Timeout(_) => (ErrorKind::Transient, Delivery::MaybeSent),
                    TransportError::Io(_) => (ErrorKind::Transport, Delivery::MaybeSent),
                };
                let mut message = redact(&e.to_string());
                self.inner.pool.redact(&mut message);
                Err(Error::new(error_kind, message)
                    .with_request(method, path)
                    .with_delivery(delivery)
                    .with_credential_kind(kind))
            }
        }
    }

    /// Builds the error for a non-2xx answer: kind, request id, `Retry-After`, and a redacted
    /// excerpt of the body.
    fn error_from_answer(&self, status: StatusCode, headers: HeaderMap, body: &[u8]) -> Error {
        let inner = &*self.inner;
        let request_id = inner
            .request_id_headers
            .iter()
            .find_map(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let excerpt = if body.is_empty() {
            None
        } else {
            let scan = &body[..body.len().min(EXCERPT_SCAN)];
            let mut text = redact(&String::from_utf8_lossy(scan));
            inner.pool.redact(&mut text);
            Some(truncate(text, MAX_EXCERPT))
        };
        let kind = ErrorKind::from_status(status);
        let message = match kind {
            ErrorKind::Throttled => "rate limit exceeded".to_owned(),
            ErrorKind::Auth if status == StatusCode::UNAUTHORIZED => {
                "the credentials were refused".to_owned()
            }
            ErrorKind::Auth => "the credentials lack a permission or scope".to_owned(),
            ErrorKind::NotFound => "not found".to_owned(),
            ErrorKind::Gone => "this endpoint or resource was removed".to_owned(),
            _ => format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_owned(),
        };
        Error::new(kind, message)
            .with_status(status)
            .with_request_id(request_id)
            .with_retry_after(parse_retry_after(&headers))
            .with_body(excerpt)
            .with_headers(headers)
    }
}

/// Writes the setters every client builder shares, `retry`, `transport` and
/// `transport_config`, inside the `impl` of a builder that has a field `options:`
/// [`HttpOptions`]: one definition for the three builders of this workspace.
#[macro_export]
macro_rules! http_option_setters {
    () => {
        /// The retry policy.
        pub fn retry(mut self, retry: $crate::RetryPolicy) -> Self {
            self.options.retry = retry;
            self
        }

        /// A transport of your own instead of the default ([`ReqwestTransport`](
        /// $crate::ReqwestTransport)).
        pub fn transport(mut self, transport: ::std::sync::Arc<dyn $crate::Transport>) -> Self {
            self.options.transport = Some(transport);
            self
        }

        /// Timeouts of the default transport.
        pub fn transport_config(mut self, config: $crate::TransportConfig) -> Self {
            self.options.transport_config = config;
            self
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbled_json_is_told_from_whole_answers() {
        let mut json = HeaderMap::new();
        json.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let garbled = |body: &str| garbled_json(&json, body.as_bytes());
        assert!(!garbled("{\"values\": []}\n"));
        assert!(!garbled("[1, 2]"));
        assert!(!garbled("\"ok\""));
        assert!(!garbled(""));
        assert!(garbled("{\"values\": [{\"slug\": "));
        assert!(garbled("<html>bad gateway</html>"));
        assert!(garbled("\"cut"));
        // Not said to be JSON: not judged.
        assert!(!garbled_json(&HeaderMap::new(), b"<html>"));
    }
}
