//! A typed client for the Bitbucket Cloud REST API 2.0 as it is today (November 2026):
//! workspaces through `GET /user/workspaces` (the old `GET /workspaces` answers 410), Atlassian
//! API tokens instead of app passwords, access tokens, OAuth, and pagination that asks for 100
//! items a page and follows `next` verbatim.
//!
//! # Quick start: an Atlassian API token
//!
//! The user part is your **Atlassian account e-mail**; the token needs the scopes
//! `read:user:bitbucket`, `read:workspace:bitbucket`, `read:project:bitbucket` and
//! `read:repository:bitbucket`. It is sent as HTTP Basic.
//!
//! ```no_run
//! use bitbucket_cloud_client::{Auth, BitbucketClient};
//! use futures_util::TryStreamExt;
//!
//! # async fn run() -> Result<(), bitbucket_cloud_client::Error> {
//! let client = BitbucketClient::builder()
//!     .auth(Auth::api_token("me@example.com", std::env::var("BITBUCKET_CLOUD_API_TOKEN").unwrap_or_default()))
//!     .build()?;
//! let workspaces = client.user_workspaces(None).collect().await?;
//! for access in &workspaces {
//!     let slug = access.workspace.slug.as_deref().unwrap_or_default();
//!     let repositories = client.repositories(slug).collect().await?;
//!     println!("{slug}: {} repositories", repositories.len());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Access tokens (workspace, project or repository), one or a pool
//!
//! Sent as `Bearer`. They cannot list workspaces, so name the workspace. Several tokens form a
//! pool: each has its own budget, and a throttled one rests while the others carry on.
//!
//! ```no_run
//! use bitbucket_cloud_client::{Auth, BitbucketClient};
//! use futures_util::TryStreamExt;
//!
//! # async fn run() -> Result<(), bitbucket_cloud_client::Error> {
//! let client = BitbucketClient::builder()
//!     .auths(["token-one", "token-two"].map(Auth::access_token))
//!     .build()?;
//! let mut repositories = std::pin::pin!(client.repositories("acme").items());
//! while let Some(repository) = repositories.try_next().await? {
//!     println!("{} (main branch: {:?})", repository.slug, repository.main_branch());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # OAuth: an access token, or client credentials that renew themselves
//!
//! ```no_run
//! use bitbucket_cloud_client::{Auth, BitbucketClient};
//!
//! # async fn run() -> Result<(), bitbucket_cloud_client::Error> {
//! // A token obtained elsewhere (lasts one to two hours):
//! let with_token = BitbucketClient::builder()
//!     .auth(Auth::oauth_token("access-token"))
//!     .build()?;
//! // A consumer's key and secret, exchanged at the token URL and renewed before expiry:
//! let with_consumer = BitbucketClient::builder()
//!     .auth(Auth::oauth_client_credentials("consumer-key", "consumer-secret"))
//!     .build()?;
//! let me = with_consumer.current_user().await?;
//! println!("{:?}", me.display_name);
//! # let _ = with_token;
//! # Ok(())
//! # }
//! ```
//!
//! # App passwords
//!
//! Bitbucket removed app passwords on 2026-07-28. [`Auth::app_password`] still exists so that an
//! old configuration fails with an error that says so and names the replacements, instead of a
//! bare 401.
//!
//! # Errors
//!
//! [`Error`] has a [`Error::kind`]; 401/403 answers become [`Error::Auth`] with the scopes the
//! credential has and the ones the endpoint wants (from `x-oauth-scopes` and
//! `x-accepted-oauth-scopes`); a 410 is [`Error::Removed`] and never retried.
//!
//! # Sandbox
//!
//! With the feature `sandbox`, [`sandbox::Sandbox`] is a fake Bitbucket Cloud on 127.0.0.1 for
//! demos, tests, examples and benchmarks.
#![forbid(unsafe_code)]

mod auth;
mod client;
pub mod endpoints;
mod error;
pub mod models;
mod paginate;
#[cfg(feature = "sandbox")]
pub mod sandbox;

pub use api_support;
pub use api_support::{ErrorKind, RateLimit, RetryPolicy, TransportConfig};
pub use auth::{APP_PASSWORDS_REMOVED_ON, Auth, CredentialKind, DEFAULT_TOKEN_URL};
pub use client::{
    BitbucketClient, BitbucketClientBuilder, DEFAULT_BASE_URL, DEFAULT_HOURLY_BUDGET,
    RepositoriesRequest,
};
pub use endpoints::{Fields, Role};
pub use error::Error;
pub use models::{
    Identified, Page, Project, Repository, User, Workspace, WorkspaceAccess, WorkspaceRef,
};
pub use paginate::Paginator;
