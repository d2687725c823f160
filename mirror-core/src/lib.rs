//! The domain of bb-snyk-mirror: inventory of both sides, the plan (a pure function of
//! configuration, inventory and history), apply with a journal that makes every run resumable,
//! and snyk-api-import's file formats.
//!
//! # Quick start
//!
//! One handle, [`Mirror`], holds both sides, the state directory and the options; `plan` reads
//! both sides and says what it would do, `apply` does it. This program runs as it is against
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
//!
//! let config = Config::from_toml(&format!("[snyk]\ngroup_id = \"{}\"", snyk.group_id()))?;
//! let mirror = Mirror::builder()
//!     .bitbucket(BitbucketClient::builder().base_url(bitbucket.base_url())
//!         .auth(Auth::api_token(email, token)).build()?)
//!     .snyk(SnykClient::builder().api_url(snyk.api_url()).auth(SnykAuth::token(snyk_token)).build()?)
//!     .snyk_bitbucket_credentials(email, token) // lets it add missing integrations
//!     .state_dir(state.path())
//!     .build()?;
//! let plan = mirror.plan(&config).await?;
//! print!("{}", plan.render());
//! let report = mirror.apply(&plan).await?;
//! assert_eq!(report.imports_completed, 11, "{}", report.render());
//! assert!(mirror.plan(&config).await?.is_noop()); // a second run has nothing to do
//! # Ok(())
//! # }
//! ```
//!
//! Lower down: [`gather_for`] and [`plan()`] read and plan without a state directory;
//! [`import::run_imports`] runs imports of your own choosing through the same journaled
//! protocol; the ports ([`ports::BitbucketPort`], [`ports::SnykPort`]) let you bring your own
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

mod action;
pub mod adapters;
mod apply;
pub mod compat;
pub mod config;
mod conflict;
pub mod credentials;
pub mod differences;
mod drift;
mod error;
pub mod events;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod ids;
pub mod import;
mod inventory;
pub mod journal;
pub mod listing;
pub mod metadata;
mod mirror;
mod plan;
pub mod ports;
mod report;
mod rules;
pub mod runs;
pub mod snyk_listing;
pub mod verify;

pub use apply::apply;
pub use config::{
    Config, DriftOptions, Integration, Mapping, OutOfScope, PeopleChanges, RetireMode,
};
pub use conflict::{Conflict, ConflictReason};
pub use differences::{Difference, DifferenceKind};
pub use error::{Error, fit_screen};
pub use events::{Admission, EventLoop, EventObserver};
pub use ids::{IntegrationId, OrgId, ProjectId, RepoUuid, TargetId};
pub use import::ApplyObserver;
pub use inventory::{
    BitbucketInventory, Inventory, Lookup, OrgInventory, SnykInventory, WorkspaceInventory, gather,
    gather_bitbucket, gather_for, workspaces_in_scope,
};
pub use journal::{Journal, JournalState};
pub use mirror::{Mirror, MirrorBuilder};
pub use plan::{
    Action, ImportAction, MetadataChange, OrgRef, PLAN_SCHEMA_VERSION, Plan, PlanOrigin,
    PlanSettings, RenderOptions, RetireReason, Summary, plan, plan_focused,
};
pub use ports::{ImportStatus, JobHandle, JobOutcome, Repo, SnykOrg};
pub use report::{
    BranchChange, FailedChange, FailedImport, OrgFailure, OrgRename, OrgStep, Report, Retirement,
    Uncertainty,
};
pub use rules::{History, MAX_ORG_NAME, Placement, RepoRecord, Sighting, SkipReason};
pub use verify::Verification;

pub use bitbucket_cloud_client;
pub use snyk_client;
