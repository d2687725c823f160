//! Which queued repositories a round takes, and what a failed round leaves behind.
//!
//! Repositories never tried go together in one round. A repository whose round failed waits
//! with its own backoff and is then tried in a group of its own: a round of several that fails
//! is split in halves, so a delivery that keeps failing is soon alone and never holds back
//! another. A failure is the repository's own when it was alone in the round or when
//! Bitbucket's answers about it were uncertain; after `set_aside_after` such tries its
//! deliveries are set aside (journaled, out of the queue, left to the next full reconcile).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bitbucket_cloud_client::api_support::Backoff;
use tokio::time::Instant;

use crate::act::journal::PendingRepository;
use crate::ids::RepoUuid;

/// Rounds in flight at most: under load, deliveries wait for a slot and the next round takes
/// them all, so a burst costs a few rounds of many repositories (a filtered listing per
/// workspace) rather than a round and a request for each.
pub(super) const MAX_ROUNDS: usize = 4;
/// Rounds start at most this often (a lone delivery starts its round at once).
const ROUND_SPACING: Duration = Duration::from_millis(50);
/// The wait before a repository whose round failed is tried again: 2 s, doubling, at most
/// 5 minutes.
const RETRY: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));

/// Tries of a repository's own before its deliveries are set aside, unless told otherwise:
/// about twenty minutes of retries (2 s, doubling, at most 5 minutes).
pub const DEFAULT_SET_ASIDE_AFTER: u32 = 10;

/// A repository whose round failed, waiting for its next try.
#[derive(Debug)]
struct Failing {
    /// Failures that were its own (alone in its round, or its answers uncertain).
    tries: u32,
    /// Rounds it was in that failed: its backoff.
    failed_rounds: u32,
    /// When it may be tried again.
    not_before: Instant,
    /// Repositories of one group are tried together.
    group: u64,
}

/// A repository whose deliveries are to be set aside now.
#[derive(Debug)]
pub(super) struct SetAsideNow {
    /// Its queue entry as the round took it.
    pub(super) repository: PendingRepository,
    /// The last failure.
    pub(super) why: String,
    /// Its own failures.
    pub(super) tries: u32,
}

/// What the loop keeps while rounds run.
#[derive(Debug, Default)]
pub(super) struct Rounds {
    /// Repositories a round is reconciling.
    busy: HashSet<RepoUuid>,
    /// Rounds in flight (until their orgs are ready).
    pub(super) in_flight: usize,
    /// When the last round started.
    last_start: Option<Instant>,
    /// Repositories whose round failed.
    failing: HashMap<RepoUuid, Failing>,
    /// The next retry group's id.
    next_group: u64,
}

impl Rounds {
    /// When the next round may start, if not now: under load, [`ROUND_SPACING`] after the
    /// last one began.
    pub(super) fn spaced_until(&self) -> Option<Instant> {
        self.last_start
            .map(|t| t + ROUND_SPACING)
            .filter(|t| *t > Instant::now())
    }

    /// When the earliest repository waiting for a retry may be tried, if later than now.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        let now = Instant::now();
        self.failing
            .values()
            .map(|f| f.not_before)
            .filter(|t| *t > now)
            .min()
    }

    /// Repositories waiting for a retry.
    pub(super) fn retrying(&self) -> usize {
        self.failing.len()
    }

    /// The rounds to start now from the journal's queue `pending`: the repositories never
    /// tried together, then each retry group that is due, while slots are free.
    pub(super) fn take<'a>(
        &mut self,
        pending: impl Iterator<Item = &'a PendingRepository>,
    ) -> Vec<Vec<PendingRepository>> {
        if self.in_flight >= MAX_ROUNDS || self.spaced_until().is_some() {
            return Vec::new();
        }
        let now = Instant::now();
        let mut fresh = Vec::new();
        let mut groups: BTreeMap<u64, Vec<PendingRepository>> = BTreeMap::new();
        for p in pending.filter(|p| !self.busy.contains(&p.uuid)) {
            match self.failing.get(&p.uuid) {
                None => fresh.push(p.clone()),
                Some(f) if f.not_before <= now => {
                    groups.entry(f.group).or_default().push(p.clone())
                }
                Some(_) => {}
            }
        }
        let mut batches: Vec<Vec<PendingRepository>> = Vec::new();
        if !fresh.is_empty() {
            batches.push(fresh);
        }
        batches.extend(groups.into_values());
        batches.truncate(MAX_ROUNDS - self.in_flight);
        for batch in &batches {
            self.busy.extend(batch.iter().map(|p| p.uuid.clone()));
            self.in_flight += 1;
            self.last_start = Some(now);
        }
        batches
    }

    /// A round of `batch` ended: `Ok` with the repositories Bitbucket's answers left
    /// uncertain, or `Err` with why it failed. Returns the repositories whose deliveries are to
    /// be set aside now (their own failures reached `set_aside_after`).
    pub(super) fn ended(
        &mut self,
        batch: &[PendingRepository],
        outcome: Result<&BTreeMap<RepoUuid, String>, String>,
        set_aside_after: u32,
    ) -> Vec<SetAsideNow> {
        for p in batch {
            self.busy.remove(&p.uuid);
        }
        let mut failed: Vec<(&PendingRepository, String, bool, u64)> = Vec::new();
        match outcome {
            Ok(unsettled) => {
                for p in batch {
                    match unsettled.get(&p.uuid) {
                        Some(why) => failed.push((p, why.clone(), true, self.group())),
                        None => {
                            self.failing.remove(&p.uuid);
                        }
                    }
                }
            }
            Err(why) => {
                let alone = batch.len() == 1;
                let halves = (self.group(), self.group());
                let half = batch.len().div_ceil(2);
                for (i, p) in batch.iter().enumerate() {
                    let group = if i < half { halves.0 } else { halves.1 };
                    failed.push((p, why.clone(), alone, group));
                }
            }
        }
        failed
            .into_iter()
            .filter_map(|(p, why, own, group)| self.failed(p, why, own, group, set_aside_after))
            .collect()
    }

    /// A new retry group's id.
    fn group(&mut self) -> u64 {
        self.next_group += 1;
        self.next_group
    }

    /// Records a failure of `p`'s round; returns it when its deliveries are to be set aside.
    fn failed(
        &mut self,
        p: &PendingRepository,
        why: String,
        own: bool,
        group: u64,
        set_aside_after: u32,
    ) -> Option<SetAsideNow> {
        let f = self.failing.entry(p.uuid.clone()).or_insert(Failing {
            tries: 0,
            failed_rounds: 0,
            not_before: Instant::now(),
            group,
        });
        f.tries += u32::from(own);
        f.failed_rounds += 1;
        f.group = group;
        let wait = RETRY.after(f.failed_rounds);
        f.not_before = Instant::now() + wait;
        let tries = f.tries;
        if tries >= set_aside_after.max(1) {
            self.failing.remove(&p.uuid);
            return Some(SetAsideNow {
                repository: p.clone(),
                why,
                tries,
            });
        }
        tracing::warn!(
            workspace = %p.workspace,
            repository = %p.uuid,
            deliveries = p.requests.len(),
            tries,
            retry_in_s = wait.as_secs(),
            error = %why,
            "a round failed; its deliveries are tried again"
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::journal::DeliveryId;

    fn pending(n: u32) -> PendingRepository {
        PendingRepository {
            uuid: RepoUuid::from(format!("{{r-{n}}}").as_str()),
            workspace: "w".to_owned(),
            deleted: false,
            created: false,
            requests: vec![DeliveryId::parse(&format!("d-{n}"))],
            arrived: vec![0],
            since: 0,
        }
    }

    fn uuids(batch: &[PendingRepository]) -> Vec<String> {
        batch.iter().map(|p| p.uuid.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_repository_that_keeps_failing_is_soon_alone_and_then_set_aside() {
        let mut queue: Vec<PendingRepository> = (0..4).map(pending).collect();
        let mut r = Rounds::default();
        let first = r.take(queue.iter());
        assert_eq!(first.len(), 1, "never tried: one round");
        r.in_flight = 0;
        // The round fails because of {r-3}: split in halves, each retried on its own.
        assert!(r.ended(&first[0], Err("boom".into()), 3).is_empty());
        assert!(
            r.take(queue.iter()).is_empty(),
            "nothing before the backoff"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let retries = r.take(queue.iter());
        assert_eq!(retries.len(), 2, "{retries:?}");
        r.in_flight = 0;
        let none = BTreeMap::new();
        assert!(r.ended(&retries[0], Ok(&none), 3).is_empty());
        // The half with {r-3} fails again, split again.
        assert!(r.ended(&retries[1], Err("boom".into()), 3).is_empty());
        assert_eq!(r.retrying(), 2);
        let mut set_aside = Vec::new();
        for _ in 0..6 {
            tokio::time::advance(Duration::from_secs(300)).await;
            for batch in r.take(queue.iter()) {
                r.in_flight -= 1;
                let result = if uuids(&batch).contains(&"{r-3}".to_owned()) {
                    Err("boom".to_owned())
                } else {
                    Ok(&none)
                };
                set_aside.extend(r.ended(&batch, result, 3));
            }
            // The journal takes set-aside deliveries out of the queue.
            queue.retain(|p| set_aside.iter().all(|s| s.repository.uuid != p.uuid));
        }
        assert_eq!(set_aside.len(), 1, "{set_aside:?}");
        assert_eq!(set_aside[0].repository.uuid.to_string(), "{r-3}");
        assert_eq!(set_aside[0].tries, 3);
        assert_eq!(
            r.retrying(),
            0,
            "the others were reconciled: {:?}",
            r.failing
        );
        assert_eq!(queue.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_uncertain_repository_fails_alone_and_the_rest_of_its_round_is_done() {
        let queue: Vec<PendingRepository> = (0..3).map(pending).collect();
        let mut r = Rounds::default();
        let batch = r.take(queue.iter()).remove(0);
        r.in_flight = 0;
        let unsettled = BTreeMap::from([(queue[1].uuid.clone(), "403".to_owned())]);
        let out = r.ended(&batch, Ok(&unsettled), 1);
        assert_eq!(out.len(), 1, "its own failure, and one try allowed");
        assert_eq!(out[0].why, "403");
        assert_eq!(r.retrying(), 0);
    }
}
