//! HTTP plumbing shared by `bitbucket-cloud-client` and `snyk-client`, so that neither writes
//! its own retry loop.
//!
//! - [`HttpClient`]: one request loop for every call: take a credential with budget, authorize,
//!   send, classify the answer, maybe wait and retry (see [`HttpClient::send`]).
//! - [`Transport`]: the seam between the loop and the network; [`ReqwestTransport`] (rustls) is
//!   the real one, tests and embedders may plug in their own.
//! - [`RetryPolicy`]: attempts, backoff with full jitter, `Retry-After`, a cap on total waiting.
//! - [`CredentialPool`] and [`RateLimit`]: client-side budgets per credential, several
//!   credentials used in turn.
//! - [`Authorizer`]: how a credential signs a request and renews after a 401; [`StaticAuth`]
//!   covers Basic, `Bearer` and `token`.
//! - [`Error`] with [`ErrorKind`]: status, method, path, request id, and a redacted excerpt of
//!   the body; [`Error::is_retryable`] instead of string matching.
//! - [`BaseUrl`]: HTTPS only, except loopback; requests never leave the configured origin.
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use api_support::{Credential, CredentialPool, HttpClient, RateLimit, StaticAuth};
//! use secrecy::SecretString;
//!
//! # async fn run() -> Result<(), api_support::Error> {
//! let token = SecretString::from(std::env::var("TOKEN").unwrap_or_default());
//! let credential = Credential::new(Arc::new(StaticAuth::bearer("access-token", token)))
//!     .with_limit(RateLimit::per_hour(1_000));
//! let client = HttpClient::builder("https://api.bitbucket.org/2.0")
//!     .credentials(CredentialPool::single(credential))
//!     .build()?;
//! let url = client.url("/user", &[]);
//! let user: serde_json::Value = client
//!     .send(api_support::ApiRequest::new(http::Method::GET, url))
//!     .await?
//!     .json()?;
//! println!("{}", user["display_name"]);
//! # Ok(())
//! # }
//! ```
//!
//! # Secrets
//!
//! Every secret is a [`secrecy::SecretString`]; every type that can hold one writes its `Debug`
//! by hand; error bodies pass through [`redact::redact`] and each credential's own
//! [`Authorizer::redact`]; `Authorization` headers are marked sensitive; `tracing` events carry
//! method, path, status, attempt and delay, never headers.
#![forbid(unsafe_code)]

mod auth;
mod base_url;
mod client;
pub mod env;
mod error;
#[cfg(feature = "sandbox")]
pub mod instances;
mod lenient;
mod oauth;
pub mod paginate;
mod pool;
pub mod redact;
mod retry;
#[cfg(feature = "sandbox")]
pub mod sandbox;
#[cfg(feature = "server")]
pub mod server;
mod sync;
pub mod time;
mod transport;
mod window;

pub use auth::{Anonymous, Authorizer, StaticAuth, base64, base64_decode, sensitive_header};
pub use base_url::{BaseUrl, is_loopback, path_segment};
pub use client::{
    ApiRequest, ApiResponse, Body, DEFAULT_USER_AGENT, Endpoint, HttpClient, HttpClientBuilder,
    HttpOptions, decode_json,
};
pub use error::{BoxError, Delivery, Error, ErrorKind, is_idempotent};
pub use lenient::{SkippedItem, decode_items, warn_skipped};
pub use oauth::{ClientAuthentication, OAuthClientCredentials, OAuthClientCredentialsBuilder};
pub use paginate::{Page, PageStrategy, Paginator};
pub use pool::{Credential, CredentialPool, Lease, RateLimit};
pub use retry::{Backoff, RetryPolicy, parse_retry_after};
pub use sync::lock;
pub use transport::{ReqwestTransport, Transport, TransportConfig, TransportError};
pub use window::RollingWindow;

pub use async_trait::async_trait;
pub use http;
pub use secrecy;
