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
//! # Vendor quirks
//!
//! Every way Snyk's APIs depart from what a client would assume, with the code that handles it
//! and the test that proves it (tests under `tests/` unless a module is named).
//!
//! | quirk | handled in | proven by |
//! |---|---|---|
//! | the import's `Location` may name another host, in `/api/v1/…` or `/v1/…` form | [`JobHandle::from_location`] keeps only org, integration and job; polling goes to the configured host | `models.rs` tests, `wiremock_endpoints.rs::import_posts_the_exact_body_and_polls_the_configured_host_only` |
//! | an accepted import may have no usable `Location` | [`Error::NoJobLocation`] | `wiremock_endpoints.rs::an_import_without_location_is_an_error` |
//! | a job just accepted may answer 404 (or 422) for a few polls | tolerated [`PollPolicy::grace_polls`] times | `wiremock_endpoints.rs::a_failed_job_ends_polling_at_once_and_early_404s_are_tolerated` |
//! | REST `links.next` comes absolute, or relative with or without the `/rest` prefix | [`SnykClient::resolve_rest_link`] | `wiremock_endpoints.rs::rest_paging_follows_both_next_forms_over_three_pages`, `sandbox.rs::rest_listings_page_over_both_link_forms` |
//! | a REST page with empty `data` can still carry a `next` link | an empty page ends the listing | `wiremock_endpoints.rs::empty_data_ends_a_listing_even_with_a_next_link` |
//! | v1 group org listings have no total: the last page is the one that ends short | [`SnykClient::group_orgs`] pages by 100 until a short page | `wiremock_endpoints.rs::v1_group_orgs_page_by_100_until_a_short_page` |
//! | an import body with an unknown key is refused | [`ImportRequest`] cannot carry one | `sandbox.rs::a_body_with_an_extra_key_is_refused_by_snyk_and_cannot_be_built` |
//! | the 25,000-project cap, an invalid parameter and a missing group permission come back as prose in v1 and JSON:API errors | recognised as [`Error::ProjectCap`], [`Error::InvalidParameter`] and a group error | `wiremock_endpoints.rs::error_shapes_become_recognisable_kinds`, `sandbox.rs::the_project_cap_refuses_the_import`, `sandbox.rs::a_token_without_group_permission_gets_a_clear_error` |
//! | the Bitbucket Cloud App's integration type is `bitbucket-connect-app`; users call it `bitbucket-cloud-app` | [`IntegrationType`] accepts both | `models.rs` tests |
//! | a personal access token carries its region's host in its `h` claim | [`region::host_from_token`] picks the region; a contradicting region is refused | `sandbox.rs::a_pat_names_its_host_and_a_contradicting_region_is_refused` |
//! | `SNYK_API` comes in every form (`…/v1`, `…/api`, `…/api/v1`, app or api host) | normalised to one host ([`Region`] and `region.rs`) | `region.rs` tests |
//! | concurrent 401s when an OAuth token expires | one renewal for all of them (`api_support`) | `sandbox.rs::oauth_client_credentials_renew_once_for_concurrent_401s` |
//!
//! # Sandbox
//!
//! With the feature `sandbox`, [`sandbox::Sandbox`] is a fake Snyk on 127.0.0.1.
#![forbid(unsafe_code)]

mod client;
#[cfg(any(test, feature = "sandbox"))]
mod draw;
pub mod endpoints;
pub mod env;
mod error;
pub mod models;
mod paginate;
mod poll;
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
    AuditLogEntry, BadJobReference, Ignore, ImportJob, ImportLog, ImportRequest, ImportStatus,
    ImportedProject, IntegrationSettings, IntegrationType, Integrations, JobHandle, JobId, Org,
    Project, ProjectSettings, Target,
};
pub use region::{Region, host_from_token, normalize_api_url};
