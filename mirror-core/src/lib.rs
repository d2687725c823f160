//! The domain of bb-snyk-mirror: inventory of both sides, the plan (a pure function of
//! configuration, inventory and history), apply with a journal that makes every run resumable,
//! and snyk-api-import's file formats.
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use mirror_core::{Config, Journal, adapters::{BitbucketAdapter, SnykAdapter}};
//! use bitbucket_cloud_client::{Auth, BitbucketClient};
//! use snyk_client::{SnykAuth, SnykClient};
//!
//! # async fn run() -> Result<(), mirror_core::Error> {
//! let config = Config::from_toml(r#"
//!     [snyk]
//!     group_id = "4a18d42f-0706-4ad0-b127-24078731fbed"
//! "#)?;
//! let bitbucket = BitbucketAdapter::new(
//!     BitbucketClient::builder().auth(Auth::api_token("me@example.com", "token")).build()?,
//! );
//! let snyk = Arc::new(SnykAdapter::new(
//!     SnykClient::builder().auth(SnykAuth::token("snyk-token")).build()?,
//! ));
//! let journal = Journal::open(std::path::Path::new(".bb-snyk-mirror"), None)?;
//! let inventory = mirror_core::gather(&config, &bitbucket, snyk.as_ref()).await?;
//! let plan = mirror_core::plan(&config, &inventory, &journal.state().history());
//! print!("{}", plan.render());
//! let report = mirror_core::apply(&plan, snyk, &journal, &config.apply, None, None).await?;
//! print!("{}", report.render());
//! # Ok(())
//! # }
//! ```
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

pub mod adapters;
mod apply;
pub mod compat;
pub mod config;
mod conflict;
mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod ids;
pub mod import;
mod inventory;
pub mod journal;
mod mirror;
mod observer;
mod plan;
pub mod ports;
mod report;
mod rules;

pub use apply::apply;
pub use config::{Config, Integration, Mapping};
pub use conflict::{Conflict, ConflictReason};
pub use error::{Error, fit_screen};
pub use ids::{IntegrationId, OrgId, ProjectId, RepoUuid, TargetId};
pub use inventory::{
    BitbucketInventory, Inventory, OrgInventory, SnykInventory, WorkspaceInventory, gather,
    gather_bitbucket, gather_for, gather_snyk, gather_snyk_for, wanted_org_names,
};
pub use journal::{Journal, JournalState};
pub use mirror::{Mirror, MirrorBuilder};
pub use observer::ApplyObserver;
pub use plan::{Action, MAX_ORG_NAME, OrgRef, PLAN_SCHEMA_VERSION, Plan, Summary, plan};
pub use ports::{ImportStatus, JobHandle, JobOutcome, Repo, SnykOrg};
pub use report::{FailedImport, Report};
pub use rules::{History, SkipReason};

pub use bitbucket_cloud_client;
pub use snyk_client;
