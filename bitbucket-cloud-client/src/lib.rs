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
//! # Vendor quirks
//!
//! Every way Bitbucket Cloud departs from what a client would assume, with the code that
//! handles it and the test that proves it (tests under `tests/` unless a module is named).
//!
//! | quirk | handled in | proven by |
//! |---|---|---|
//! | `GET /2.0/workspaces` (and other cross-workspace listings) answer 410 since April 2026 (CHANGE-2770); workspaces come from `GET /2.0/user/workspaces` | [`Error::Removed`], never retried; [`BitbucketClient::user_workspaces`] | `sandbox.rs::removed_endpoints_answer_410_and_are_not_retried`, `wiremock_endpoints.rs::gone_is_its_own_error_and_never_retried`, `contract.rs::removed_endpoints_are_deprecated_in_the_spec_and_never_called` |
//! | errors come in an envelope (`{"type": "error", "error": {"message", "detail"}}`) that a status line hides | [`Error::Refused`] shows Bitbucket's own words | `wiremock_endpoints.rs::bitbuckets_own_error_text_is_shown` |
//! | a 410 on any other path (`/repositories/{workspace}`, …) means the account or workspace is suspended or deleted, not CHANGE-2770 | [`Error::Gone`] with Bitbucket's own message | `wiremock_endpoints.rs::a_410_elsewhere_says_the_account_is_gone_not_change_2770` |
//! | app passwords are refused since 2026-07-28 | [`Auth::app_password`] fails with the replacements named | `wiremock_endpoints.rs::a_refused_app_password_says_they_were_removed` |
//! | access tokens cannot list workspaces ("not accessible by this authentication mechanism") | refused before any request, [`Error::WorkspaceListingUnsupported`] | `sandbox.rs::access_tokens_cannot_list_workspaces_and_no_request_is_made` |
//! | a `fields=` selection without `next` silently stops paging after one page | [`Fields`] always keeps `next` | `endpoints.rs::tests::fields_always_keep_next` |
//! | `next` links are opaque (and may point at another host) | followed verbatim, only on the configured origin | `wiremock_endpoints.rs::three_pages_followed_verbatim_and_duplicates_removed`, `a_next_link_on_another_host_is_refused` |
//! | a page can end without `next` before the `size` it announced | asked once more, then [`Error::IncompleteListing`] (`paginate.rs`) | `sandbox.rs::a_page_without_next_mid_listing_is_asked_again_and_never_passes_for_complete` |
//! | a repository can appear on two pages while the listing changes | de-duplicated by `uuid` (`paginate.rs`) | `wiremock_endpoints.rs::three_pages_followed_verbatim_and_duplicates_removed` |
//! | 429 arrives as plain text, often without `Retry-After` | `api_support`'s loop backs off with jitter, honours `Retry-After` when present | `sandbox.rs::injected_faults_are_retried_for_reads`, `api-support/tests/request_loop.rs::retry_after_seconds_is_honoured` |
//! | the hourly budget (1,000 per credential) counts repository data (`/2.0/repositories/…`) only | budgets scoped to those paths ([`api_support::HttpClientBuilder::budget_scope`]) | `sandbox.rs::only_repository_data_counts_against_the_hourly_budget` |
//! | `X-RateLimit-NearLimit: true` warns before the budget is spent | that credential slows to an even pace (`client.rs`, `observe_near_limit`) | `sandbox.rs::near_limit_slows_the_credential_down` |
//! | 403 names the scopes granted and accepted in headers, not the missing one | [`Error::Auth`] names what is missing | `wiremock_endpoints.rs::forbidden_names_the_missing_scope`, `sandbox.rs::unknown_workspaces_and_missing_scopes_are_named` |
//! | an empty repository has no `mainbranch` | [`Repository::main_branch`] is `None`; nothing invents `main` | `sandbox.rs::the_sample_estate_lists_as_bitbucket_would` |
//!
//! # Sandbox
//!
//! With the feature `sandbox`, [`sandbox::Sandbox`] is a fake Bitbucket Cloud on 127.0.0.1 for
//! demos, tests, examples and benchmarks.
#![forbid(unsafe_code)]

mod auth;
mod client;
pub mod endpoints;
pub mod env;
mod error;
pub mod models;
mod paginate;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod webhooks;

pub use api_support;
pub use api_support::{ErrorKind, RateLimit, RetryPolicy, TransportConfig};
pub use auth::{APP_PASSWORDS_REMOVED_ON, Auth, CredentialKind, DEFAULT_TOKEN_URL};
pub use client::{
    BitbucketClient, BitbucketClientBuilder, DEFAULT_BASE_URL, DEFAULT_HOURLY_BUDGET, HookChange,
    RepositoriesRequest,
};
pub use endpoints::{Fields, Role};
pub use error::Error;
pub use models::{
    Identified, Page, Project, Repository, User, Workspace, WorkspaceAccess, WorkspaceRef,
};
pub use paginate::{Cursor, Listing, Paginator};
