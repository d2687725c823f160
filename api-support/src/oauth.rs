//! OAuth 2.0 client credentials: exchange a client id and secret for an access token, cache it
//! until shortly before it expires, renew it once after a 401, and let concurrent requests share
//! one renewal.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::redact::redact_exact;
use crate::{
    ApiRequest, Authorizer, BaseUrl, Body, Error, ErrorKind, HttpClient, HttpOptions, base64,
    sensitive_header,
};

/// How the client authenticates itself to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// HTTP Basic `client_id:client_secret` (Bitbucket).
    BasicHeader,
    /// `client_id` and `client_secret` in the form body (Snyk).
    FormBody,
}

/// The longest a token is renewed before it expires.
const MAX_MARGIN: Duration = Duration::from_secs(180);
/// The lifetime assumed when the server gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<f64>,
}

struct Cached {
    header: HeaderValue,
    renew_at: Instant,
}

/// Builds an [`OAuthClientCredentials`].
pub struct OAuthClientCredentialsBuilder {
    kind: String,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    style: ClientAuthentication,
    scheme: &'static str,
    options: HttpOptions,
}

impl OAuthClientCredentialsBuilder {
    /// How the client authenticates to the token endpoint (default HTTP Basic).
    pub fn client_authentication(mut self, style: ClientAuthentication) -> Self {
        self.style = style;
        self
    }

    /// The scheme word of the `Authorization` header (default `Bearer`).
    pub fn scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    /// Retry policy, transport and timeouts of token requests.
    pub fn options(mut self, options: &HttpOptions) -> Self {
        self.options = options.clone();
        self
    }

    /// Builds the authorizer. No request is made until the first token is needed.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a token URL that is not HTTPS (or loopback HTTP).
    pub fn build(self) -> Result<OAuthClientCredentials, Error> {
        let token_url = Url::parse(self.token_url.trim()).map_err(|e| {
            Error::config(format!(
                "`{}` is not a valid OAuth token URL ({e})",
                self.token_url
            ))
        })?;
        let origin = BaseUrl::parse(&token_url.origin().ascii_serialization())
            .map_err(|e| Error::config(format!("OAuth token URL: {}", e.message())))?;
        let http = HttpClient::builder(origin.to_string()).options(&self.options);
        Ok(OAuthClientCredentials {
            kind: self.kind,
            token_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            style: self.style,
            scheme: self.scheme,
            http: http.build()?,
            state: Mutex::new(None),
            current: std::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }
}

/// An [`Authorizer`] for the OAuth 2.0 client-credentials grant.
///
/// The first request fetches a token; later ones reuse it until `min(3 minutes, lifetime / 2)`
/// before `expires_in` runs out. Concurrent requests wait for one fetch. After a 401 the token is
/// renewed once (unless another request already renewed it).
pub struct OAuthClientCredentials {
    kind: String,
    token_url: Url,
    client_id: String,
    client_secret: SecretString,
    style: ClientAuthentication,
    scheme: &'static str,
    http: HttpClient,
    state: Mutex<Option<Cached>>,
    /// The current access token, readable without waiting, for redaction.
    current: std::sync::Mutex<Option<SecretString>>,
    fetches: AtomicU64,
}

impl OAuthClientCredentials {
    /// Starts building the authorizer for `token_url` with the client's id and secret.
    pub fn builder(
        kind: impl Into<String>,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> OAuthClientCredentialsBuilder {
        OAuthClientCredentialsBuilder {
            kind: kind.into(),
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret,
            style: ClientAuthentication::BasicHeader,
            scheme: "Bearer",
            options: HttpOptions::default(),
        }
    }

    /// How many tokens have been fetched so far.
    pub fn token_fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    async fn fetch(&self) -> Result<Cached, Error> {
        let secret = self.client_secret.expose_secret();
        let mut request = ApiRequest::new(Method::POST, self.token_url.clone());
        match self.style {
            ClientAuthentication::BasicHeader => {
                request = request.with_body(Body::form([("grant_type", "client_credentials")]));
                let basic = base64(format!("{}:{secret}", self.client_id).as_bytes());
                request
                    .headers
                    .insert(AUTHORIZATION, sensitive_header(&format!("Basic {basic}"))?);
            }
            ClientAuthentication::FormBody => {
                request = request.with_body(Body::form([
                    ("grant_type", "client_credentials"),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", secret),
                ]));
            }
        }
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let answer = self.http.send(request).await.map_err(|e| {
            let body = e.body().map(|b| {
                let mut b = b.to_owned();
                self.redact(&mut b);
                b
            });
            let message = match e.kind() {
                ErrorKind::Auth | ErrorKind::Client => format!(
                    "the OAuth token endpoint {} refused the client credentials: check the client id and secret",
                    self.token_url
                ),
                _ => format!(
                    "could not get an OAuth token from {}: {}",
                    self.token_url,
                    e.message()
                ),
            };
            let kind = if e.kind() == ErrorKind::Client {
                ErrorKind::Auth
            } else {
                e.kind()
            };
            e.with_kind(kind)
                .with_token_exchange()
                .with_message(message)
                .with_body(body)
                .with_credential_kind(self.kind.clone())
        })?;
        let token: TokenAnswer = answer.json()?;
        let lifetime = token
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_LIFETIME);
        let margin = MAX_MARGIN.min(lifetime / 2);
        let header = sensitive_header(&format!("{} {}", self.scheme, token.access_token))?;
        if let Ok(mut current) = self.current.lock() {
            *current = Some(SecretString::from(token.access_token.clone()));
        }
        tracing::debug!(
            kind = %self.kind,
            lifetime_s = lifetime.as_secs(),
            "fetched an OAuth access token"
        );
        Ok(Cached {
            header,
            renew_at: started + lifetime - margin,
        })
    }
}

impl fmt::Debug for OAuthClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientCredentials")
            .field("kind", &self.kind)
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("style", &self.style)
            .finish()
    }
}

#[async_trait]
impl Authorizer for OAuthClientCredentials {
    fn kind(&self) -> &str {
        &self.kind
    }

    async fn authorization(&self) -> Result<Option<HeaderValue>, Error> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(Some(cached.header.clone()));
        }
        let fresh = self.fetch().await?;
        let header = fresh.header.clone();
        *state = Some(fresh);
        Ok(Some(header))
    }

    async fn renew(&self, rejected: Option<&HeaderValue>) -> Result<bool, Error> {
        let mut state = self.state.lock().await;
        if let (Some(cached), Some(rejected)) = (state.as_ref(), rejected)
            && cached.header != rejected
        {
            // Another request renewed the token meanwhile.
            return Ok(true);
        }
        *state = Some(self.fetch().await?);
        Ok(true)
    }

    fn redact(&self, text: &mut String) {
        let secret = self.client_secret.expose_secret();
        redact_exact(text, secret);
        redact_exact(
            text,
            &base64(format!("{}:{secret}", self.client_id).as_bytes()),
        );
        if let Ok(current) = self.current.lock()
            && let Some(token) = current.as_ref()
        {
            redact_exact(text, token.expose_secret());
        }
    }
}
