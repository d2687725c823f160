//! The steps [`crate::Mirror`] takes, for embedders who take them one by one. Each is here
//! for a reason, named below; with a state directory, prefer the door.

/// Reading both sides without a state directory: [`gather`] reads everything a plan could
/// need, [`gather_for`] what a plan with a given history needs (as [`crate::Mirror::inventory`]
/// does), [`gather_bitbucket`] the Bitbucket side alone (snyk-api-import's `import:data`), and
/// [`workspaces_in_scope`] the workspaces a configuration selects (`orgs:data`).
pub use crate::read::inventory::gather::{
    gather, gather_bitbucket, gather_for, workspaces_in_scope,
};

/// Planning from an inventory and a history of your own: [`plan`] is the pure function
/// [`crate::Mirror::plan`] calls, [`plan_focused`] the one a targeted reconcile calls (tests
/// and tools that plan for a few repositories).
pub use crate::decide::plan::make::{plan, plan_focused};

/// Applying a plan through a journal and a Snyk port of your own (the door holds both; this
/// is for tools that keep their own).
pub use crate::act::apply::apply;

/// Reads both sides and plans as [`crate::Mirror::plan`] does (the same reading, the same
/// kept listings), without taking the state directory's lock: the journal is read as it is
/// on disk, so a plan (or a verification) can be made while a `serve` or a `sync` holds the
/// directory. `snyk_in_full` reads every Snyk org again, as [`crate::Mirror::verify`] does.
///
/// # Errors
/// A journal that cannot be read; the first request that fails.
pub async fn plan_unlocked(
    config: &crate::config::Config,
    bitbucket: std::sync::Arc<dyn crate::read::ports::BitbucketPort>,
    snyk: std::sync::Arc<dyn crate::read::ports::SnykPort>,
    state_dir: &std::path::Path,
    snyk_in_full: bool,
) -> Result<crate::decide::plan::Plan, crate::error::Error> {
    let history = crate::act::journal::read_state(state_dir)?.history();
    let sides = crate::read::both::Sides::new(config, bitbucket, snyk, state_dir, snyk_in_full);
    let inventory = sides.read(&history).await?;
    Ok(plan(config, &inventory, &history))
}

/// The journal itself (its events, its replayed state, its compaction), for tools that read or
/// write a state directory on their own: the binary's `runs` and `deliveries`, and
/// snyk-api-import's `import`. The door holds one for you ([`crate::Mirror::journal`]).
pub use crate::act::journal;
