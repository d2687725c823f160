//! A typed client for the Snyk API: v1 for orgs, integrations and import (which exist only
//! there), REST for targets and projects. Every region, every token kind.
//!
//! # Quick start
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use snyk_client::{ImportRequest, IntegrationType, Region, SnykAuth, SnykClient};
//!
//! # async fn run() -> Result<(), snyk_client::Error> {
//! let client = SnykClient::builder()
//!     .region(Region::Eu01)
//!     .auth(SnykAuth::token(std::env::var("SNYK_TOKEN").unwrap_or_default()))
//!     .build()?;
//! let group = "4a18d42f-0706-4ad0-b127-24078731fbed";
//! let org = match client.group_orgs(group).await?.into_iter().find(|o| o.name == "acme") {
//!     Some(org) => org,
//!     None => client.create_org(group, "acme", None).await?,
//! };
//! let integrations = client.integrations(&org.id).await?;
//! let Some(integration) = integrations.id_of(&IntegrationType::BitbucketCloud) else {
//!     return Ok(()); // the org has no Bitbucket Cloud integration yet
//! };
//! let job = client
//!     .import(&org.id, integration, &ImportRequest::new("acme", "api", Some("main")))
//!     .await?;
//! let finished = client.wait_for_import(&job).await?;
//! println!("{:?}: {} projects", finished.job.status, finished.job.created_projects().count());
//! let targets: Vec<_> = client.targets(&org.id).try_collect().await?;
//! println!("{} Bitbucket targets", targets.len());
//! # Ok(())
//! # }
//! ```
//!
//! # Regions and addresses
//!
//! [`Region`] names the five regions. [`SnykClientBuilder::api_url`] takes `SNYK_API` in any
//! form users carry (`https://api.eu.snyk.io/v1`, `https://snyk.io/api/v1`,
//! `https://app.eu.snyk.io/api`) and keeps only the host; v1 and REST bases are derived from it.
//! With neither, a personal access token's region is read from the token itself.
//!
//! # Credentials
//!
//! - [`SnykAuth::token`]: API, service-account and personal access tokens (`token …`).
//! - [`SnykAuth::bearer`]: an OAuth access token.
//! - [`SnykAuth::oauth_client_credentials`]: a service account's client id and secret,
//!   exchanged at `<host>/oauth2/token` and renewed before they expire.
//!
//! # Sandbox
//!
//! With the feature `sandbox`, [`sandbox::Sandbox`] is a fake Snyk on 127.0.0.1.
#![forbid(unsafe_code)]

mod client;
pub mod endpoints;
mod error;
pub mod models;
pub mod region;
#[cfg(feature = "sandbox")]
pub mod sandbox;

pub use api_support;
pub use client::{
    FinishedImport, MAX_ORG_NAME, PollPolicy, REST_PER_MINUTE, SnykAuth, SnykClient,
    SnykClientBuilder, V1_PER_MINUTE, parse_rate_limit,
};
pub use endpoints::REST_VERSION;
pub use error::Error;
pub use models::{
    ImportJob, ImportLog, ImportRequest, ImportStatus, ImportedProject, IntegrationSettings,
    IntegrationType, Integrations, JobHandle, Org, Project, Target,
};
pub use region::{Region, host_from_token, normalize_api_url};
