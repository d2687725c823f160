//! Reading both sides for a plan, the one way: Bitbucket's workspaces asked what changed since
//! their kept listings, Snyk's orgs answered from their kept reads unless the group's audit log
//! names a change (or they are older than allowed), and only the orgs with work left read.
//! The door reads this way, and so does a plan made without the state directory's lock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::decide::rules::History;
use crate::error::Error;
use crate::read::inventory::{Inventory, gather_for};
use crate::read::listing::{Incremental, ONE_PAGE};
use crate::read::ports::{BitbucketPort, SnykPort};
use crate::read::snyk_listing::{CLOCK_MARGIN, KeptSnyk};

/// Both sides, and how their kept reads are trusted.
pub(crate) struct Sides<'a> {
    pub(crate) config: &'a Config,
    pub(crate) bitbucket: Arc<dyn BitbucketPort>,
    pub(crate) snyk: Arc<dyn SnykPort>,
    /// The state directory, where the kept listings are.
    pub(crate) dir: &'a Path,
    /// Workspaces listed in full every time up to this many repositories.
    pub(crate) in_full_up_to: usize,
    /// How far before a kept read the audit log is searched.
    pub(crate) audit_margin: Duration,
    /// Snyk orgs read again when their kept read is older than this (zero: every org).
    pub(crate) snyk_full_every: Duration,
}

impl<'a> Sides<'a> {
    /// Both sides of `config` with the defaults: kept Snyk reads trusted for the
    /// configuration's `snyk.full_every`, or not at all when `snyk_in_full`.
    pub(crate) fn new(
        config: &'a Config,
        bitbucket: Arc<dyn BitbucketPort>,
        snyk: Arc<dyn SnykPort>,
        dir: &'a Path,
        snyk_in_full: bool,
    ) -> Self {
        Self {
            config,
            bitbucket,
            snyk,
            dir,
            in_full_up_to: ONE_PAGE,
            audit_margin: CLOCK_MARGIN,
            snyk_full_every: if snyk_in_full {
                Duration::ZERO
            } else {
                config.snyk.full_every()
            },
        }
    }

    /// Reads both sides as far as a plan with `history` needs.
    ///
    /// # Errors
    /// The first request that fails.
    pub(crate) async fn read(&self, history: &History) -> Result<Inventory, Error> {
        let config = self.config;
        let bitbucket =
            Incremental::new(self.bitbucket.clone(), self.dir, config.source.full_every())
                .in_full_up_to(self.in_full_up_to);
        let snyk = KeptSnyk::new(
            self.snyk.clone(),
            self.dir,
            &config.snyk.group_id,
            self.snyk_full_every,
        )
        .with_margin(self.audit_margin);
        gather_for(config, &bitbucket, &snyk, history).await
    }
}
