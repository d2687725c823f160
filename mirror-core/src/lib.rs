//! The domain of bb-snyk-mirror: inventory of both sides, the plan (a pure function of
//! configuration, inventory and history), apply with a journal that makes every run resumable,
//! and snyk-api-import's file formats.
//!
//! # Quick start
//!
//! One door, [`Mirror`], is given both sides, the configuration and the state directory once;
//! `plan` reads both sides and says what it would do, `apply` does it, `verify` proves both
//! sides equal; [`events::EventLoop`] over it mirrors Bitbucket's webhooks as they come. This program runs as it is against
//! the built-in sandboxes (the hidden lines start them); point the clients at the real
//! services with `BitbucketClient::builder()` and `SnykClient::builder()` defaults.
//!
//! ```
//! # use bitbucket_cloud_client::sandbox::{self as bb, Sandbox as BitbucketSandbox};
//! # use snyk_client::sandbox::{self as sn, Sandbox as SnykSandbox};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (bitbucket, snyk) = (BitbucketSandbox::start_sample().await?, SnykSandbox::sample_builder()
//! #     .import_delay(std::time::Duration::from_millis(1)).start().await?);
//! # let (email, token, snyk_token) = (bb::SAMPLE_EMAIL, bb::SAMPLE_API_TOKEN, sn::SAMPLE_TOKEN);
//! # let state = tempfile::tempdir()?;
//! use mirror_core::bitbucket_cloud_client::{Auth, BitbucketClient};
//! use mirror_core::snyk_client::{SnykAuth, SnykClient};
//! use mirror_core::{Config, Mirror};
//! use mirror_render::Render as _; // the values as text for people: the mirror-render crate
//!
//! let config = Config::from_toml(&format!("[snyk]\ngroup_id = \"{}\"", snyk.group_id()))?;
//! let mirror = Mirror::builder()
//!     .bitbucket(BitbucketClient::builder().base_url(bitbucket.base_url())
//!         .auth(Auth::api_token(email, token)).build()?)
//!     .snyk(SnykClient::builder().api_url(snyk.api_url()).auth(SnykAuth::token(snyk_token)).build()?)
//!     .snyk_bitbucket_credentials(email, token) // lets it add missing integrations
//!     .config(config)
//!     .state_dir(state.path())
//!     .build()?;
//! let plan = mirror.plan().await?;
//! print!("{}", plan.render());
//! let report = mirror.apply(&plan).await?;
//! assert_eq!(report.imports_completed, 11, "{}", report.render());
//! assert!(mirror.plan().await?.is_noop()); // a second run has nothing to do
//! assert!(mirror.verify().await?.holds()); // both sides read again: Snyk equals Bitbucket
//! # Ok(())
//! # }
//! ```
//!
//! Lower down, in [`advanced`]: reading and planning without a state directory, and applying
//! a plan with a journal of your own; [`import::run_imports`] runs imports of your own choosing
//! through the same journaled protocol; the ports ([`ports::BitbucketPort`], [`ports::SnykPort`]) let you bring your own
//! sides, and feature `fakes` gives in-memory ones for tests.
//!
//! # Guarantees
//!
//! - Planning is deterministic, and planning again after a successful apply yields no org to
//!   create and no import.
//! - No org is created whose name exists in the group; two existing orgs with one name are a
//!   conflict, not a guess.
//! - The journal records every remote action before and after it (each line flushed to disk),
//!   so a rerun after a crash neither creates an org twice nor posts an accepted import again.
#![forbid(unsafe_code)]

mod act;
pub mod advanced;
mod clock;
pub mod compat;
pub mod config;
mod decide;
mod error;
pub mod events;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod ids;
mod mirror;
mod read;

// The rooms' public modules, by the names users know.
pub use act::{credentials, import, report, runs};
pub use decide::{conflict, differences, metadata, plan, rules, scope, verify};
pub use read::{adapters, inventory, listing, ports, snyk_listing};

// The door, what it is given, and what it answers; everything else is in its module.
pub use config::Config;
pub use error::{Error, fit_screen};
pub use import::ApplyObserver;
pub use mirror::{Mirror, MirrorBuilder};
pub use plan::{Action, Plan};
pub use report::Report;
pub use verify::Verification;

pub use bitbucket_cloud_client;
pub use snyk_client;
