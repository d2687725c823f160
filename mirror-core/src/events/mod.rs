//! Real-time mirroring: Bitbucket's repository events, each a targeted reconcile of the
//! repositories it names, through the same plan, apply and journal as a `sync`.
//!
//! A delivery is admitted with [`Mirror::queue_delivery`]: out-of-scope and repeated deliveries
//! (by `X-Request-UUID`) are told apart, and an admitted one is on disk in the journal before
//! the call returns, so an answer sent after it can never lose the event. [`EventLoop`] takes
//! the queue from the journal (what a crash left queued too) in rounds: the deliveries for
//! one repository that arrive while it is being reconciled wait and then go in one round, so a
//! burst of deliveries gives one action. Rounds for different repositories run side by side
//! (their orgs are set up one round at a time); the scheduled full reconcile runs alone.

use std::sync::Arc;
use std::time::Duration;

use bitbucket_cloud_client::api_support::Backoff;
use bitbucket_cloud_client::webhooks::RepositoryEvent;
use tokio::sync::{Notify, RwLock, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::act::journal::{Event, PendingRepository};
use crate::act::report::Report;
use crate::clock::unix_now;
use crate::error::Error;
use crate::mirror::Mirror;
use bitbucket_cloud_client::api_support::lock;

pub(crate) mod admission;
mod budget;
mod rounds;

pub use admission::Admission;
pub use rounds::DEFAULT_SET_ASIDE_AFTER;
use rounds::Rounds;

/// Told what the event loop does (metrics, logs).
pub trait EventObserver: Send + Sync {
    /// A round reconciled `deliveries` deliveries (or failed; they stay queued).
    fn round_done(&self, deliveries: usize, result: &Result<Report, Error>) {
        let _ = (deliveries, result);
    }

    /// A scheduled full reconcile read both sides and planned (both APIs answered); its
    /// apply follows.
    fn reconcile_planned(&self) {}

    /// A scheduled full reconcile ended.
    fn reconcile_done(&self, result: &Result<Report, Error>) {
        let _ = result;
    }

    /// How many repositories wait to be tried again after a failed round.
    fn retrying(&self, repositories: usize) {
        let _ = repositories;
    }

    /// Deliveries that kept failing were set aside (journaled, out of the queue).
    fn deliveries_set_aside(&self, deliveries: usize) {
        let _ = deliveries;
    }
}

/// An observer that is told nothing.
#[derive(Debug, Default)]
pub struct Unobserved;

impl EventObserver for Unobserved {}

/// Runs the rounds of targeted reconciles for queued deliveries, and the scheduled full
/// reconcile (at start and then every interval). See the module's documentation.
pub struct EventLoop {
    mirror: Arc<Mirror>,
    wake: Notify,
    rounds: std::sync::Mutex<Rounds>,
    /// Rounds hold it shared; the full reconcile alone.
    exclusive: RwLock<()>,
    observer: Arc<dyn EventObserver>,
    /// Full reconciles failed in a row, and when to try the next one (sooner than the
    /// interval: a failed start-up reconcile must not wait six hours).
    reconcile_retry: std::sync::Mutex<(u32, Option<Instant>)>,
    /// A repository's own failures before its deliveries are set aside.
    set_aside_after: u32,
    /// Bitbucket's hourly budget as rounds spend it (when the port keeps one).
    budget: Option<std::sync::Mutex<budget::Budget>>,
}

/// The first wait after a failed full reconcile; it doubles, never past the reconcile
/// interval.
const RECONCILE_FIRST_RETRY: Duration = Duration::from_secs(30);

/// How the event loop treats deliveries that keep failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopOptions {
    /// A repository's own failures (alone in its round, or Bitbucket's answers about it
    /// uncertain) before its deliveries are set aside (default
    /// [`DEFAULT_SET_ASIDE_AFTER`]: about twenty minutes of retries, 2 s doubling to 5 min).
    pub set_aside_after: u32,
}

impl Default for LoopOptions {
    fn default() -> Self {
        Self {
            set_aside_after: DEFAULT_SET_ASIDE_AFTER,
        }
    }
}

impl LoopOptions {
    /// Sets [`LoopOptions::set_aside_after`] (at least 1).
    #[must_use]
    pub fn set_aside_after(mut self, tries: u32) -> Self {
        self.set_aside_after = tries.max(1);
        self
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// The real-time event loop over `mirror` (its configuration, journal and both sides),
    /// telling `observer` what it does.
    pub fn new(
        mirror: Arc<Mirror>,
        observer: Arc<dyn EventObserver>,
        options: LoopOptions,
    ) -> Arc<Self> {
        let budget = mirror.bitbucket.hourly_budget().map(|per_hour| {
            let total = mirror.bitbucket.requests();
            std::sync::Mutex::new(budget::Budget::new(per_hour, total))
        });
        Arc::new(Self {
            budget,
            set_aside_after: options.set_aside_after.max(1),
            mirror,
            wake: Notify::new(),
            rounds: std::sync::Mutex::new(Rounds::default()),
            exclusive: RwLock::new(()),
            observer,
            reconcile_retry: std::sync::Mutex::new((0, None)),
        })
    }

    /// The mirror.
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// Admits a delivery ([`Mirror::queue_delivery`]) and wakes the loop when it was queued.
    ///
    /// # Errors
    /// When the journal cannot be written.
    pub async fn admit(
        &self,
        request_uuid: &str,
        delivery: RepositoryEvent,
    ) -> Result<Admission, Error> {
        let admission = self.mirror.queue_delivery(request_uuid, delivery).await?;
        if admission == Admission::Queued {
            self.wake.notify_one();
        }
        Ok(admission)
    }

    /// Deliveries queued and not yet reconciled.
    pub fn queue_depth(&self) -> usize {
        self.mirror.journal().with_state(|s| s.pending_deliveries)
    }

    /// How long the oldest delivery still queued has waited.
    pub fn oldest_queued_age(&self) -> Option<Duration> {
        let since = self
            .mirror
            .journal()
            .with_state(|s| s.pending.values().map(|p| p.since).min())?;
        Some(Duration::from_secs(unix_now().saturating_sub(since)))
    }

    /// How long rounds have waited for Bitbucket's hourly budget, while they do.
    pub fn budget_wait(&self) -> Option<Duration> {
        let since = lock(self.budget.as_ref()?).waiting_since?;
        Some(Instant::now().saturating_duration_since(since))
    }

    /// Runs until `stop` turns true: a full reconcile now and every `reconcile_every`, and a
    /// round for whatever is queued. Once stopped it starts nothing new and returns when the
    /// rounds in flight have ended (their imports in flight finish; the rest stays queued
    /// for the next start).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, reconcile_every: Duration) {
        let mut tasks = JoinSet::new();
        let mut next_reconcile = Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            if let Some(retry) = lock(&self.reconcile_retry).1.take() {
                next_reconcile = next_reconcile.min(retry);
            }
            if Instant::now() >= next_reconcile {
                next_reconcile = Instant::now() + reconcile_every;
                let this = self.clone();
                tasks.spawn(async move { this.full_reconcile(reconcile_every).await });
            }
            self.dispatch(&mut tasks);
            let budget_recheck = self.budget_wait().map(|_| Instant::now() + budget::RECHECK);
            let wake_at = {
                let rounds = lock(&self.rounds);
                [rounds.spaced_until(), rounds.next_retry(), budget_recheck]
                    .into_iter()
                    .flatten()
                    .fold(next_reconcile, Instant::min)
            };
            tokio::select! {
                () = self.wake.notified() => {}
                _ = stop.changed() => {}
                () = tokio::time::sleep_until(wake_at) => {}
                Some(_) = tasks.join_next() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The scheduled full reconcile: a `sync`, alone (rounds wait for it, and it for them).
    /// One that fails is tried again after 30 s, doubling, never later than `every`.
    async fn full_reconcile(&self, every: Duration) {
        let _alone = self.exclusive.write().await;
        let began = unix_now();
        let requests_before = self.mirror.bitbucket.requests();
        let mut result = match self.mirror.plan().await {
            Ok(plan) => {
                self.observer.reconcile_planned();
                self.mirror.apply(&plan).await
            }
            Err(e) => Err(e),
        };
        if result.is_ok()
            && self
                .mirror
                .journal()
                .with_state(|s| !s.set_aside.is_empty())
        {
            // What was set aside before it began is covered by it.
            let cleared = Event::SetAsideCleared { at: began };
            if let Err(e) = self.mirror.journal().writer().append(cleared).await {
                result = Err(e);
            }
        }
        if let Some(budget) = &self.budget {
            let spent = self
                .mirror
                .bitbucket
                .requests()
                .saturating_sub(requests_before);
            lock(budget).reconciled(spent);
        }
        {
            let mut retry = lock(&self.reconcile_retry);
            if result.is_err() {
                let wait = Backoff::new(RECONCILE_FIRST_RETRY, every).after(retry.0 + 1);
                tracing::warn!(
                    retry_in_s = wait.as_secs(),
                    "the full reconcile failed; it is tried again"
                );
                retry.0 += 1;
                retry.1 = Some(Instant::now() + wait);
            } else {
                *retry = (0, None);
            }
        }
        self.observer.reconcile_done(&result);
        self.wake.notify_one();
    }

    /// Starts rounds for the queued deliveries whose repository no round is reconciling: those
    /// never tried together, and each group of retries that is due (see `rounds`).
    fn dispatch(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        // While the others wait for Bitbucket's budget, created repositories may go alone.
        let mut created_only = false;
        if let Some(budget) = &self.budget {
            let (queued, created) = self
                .mirror
                .journal()
                .with_state(|s| (s.pending.len(), s.pending_created > 0));
            let total = self.mirror.bitbucket.requests();
            let mut budget = lock(budget);
            if queued > 0 && !budget.may_start(total, queued) {
                if !(created && budget.may_start_creations(total)) {
                    return;
                }
                created_only = true;
            }
        }
        let batches = {
            let mut rounds = lock(&self.rounds);
            self.mirror.journal().with_state(|s| {
                rounds.take(s.pending.values().filter(|p| !created_only || p.created))
            })
        };
        for batch in batches {
            let this = self.clone();
            tasks.spawn(async move { this.round(batch).await });
        }
    }

    /// One round: reconciles `batch`, then records what failed and sets aside what kept
    /// failing.
    async fn round(self: Arc<Self>, batch: Vec<PendingRepository>) {
        // The round's slot is freed once its plan's orgs are ready: the rest of it waits on
        // import jobs, which must not hold back the next round.
        let freed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let free = {
            let (this, freed) = (self.clone(), freed.clone());
            move || {
                if !freed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    lock(&this.rounds).in_flight -= 1;
                    this.wake.notify_one();
                }
            }
        };
        let result = {
            let _shared = self.exclusive.read().await;
            let free = free.clone();
            self.mirror
                .reconcile_pending(&batch, Some(Box::new(free)))
                .await
        };
        free();
        let deliveries = batch.iter().map(|p| p.requests.len()).sum();
        let (report, outcome) = match result {
            Ok((report, unsettled)) => (Ok(report), Ok(unsettled)),
            Err(e) => {
                let why = e.to_string();
                (Err(e), Err(why))
            }
        };
        self.observer.round_done(deliveries, &report);
        let set_aside = lock(&self.rounds).ended(
            &batch,
            outcome.as_ref().map_err(Clone::clone),
            self.set_aside_after,
        );
        self.observer.retrying(lock(&self.rounds).retrying());
        for s in set_aside {
            self.set_aside(s).await;
        }
        // Deliveries grow the journal even when their rounds change nothing.
        self.mirror.journal().writer().compact_if_grown().await;
        self.wake.notify_one();
    }

    /// Journals a repository's deliveries as set aside, out of the queue.
    async fn set_aside(&self, s: rounds::SetAsideNow) {
        let p = &s.repository;
        tracing::error!(
            workspace = %p.workspace,
            repository = %p.uuid,
            deliveries = p.requests.len(),
            tries = s.tries,
            error = %s.why,
            "deliveries set aside after failing again and again; the next full reconcile covers the repository (`bb-snyk-mirror deliveries` lists them)"
        );
        let event = Event::DeliveriesSetAside {
            request_uuids: p.requests.iter().map(ToString::to_string).collect(),
            uuid: p.uuid.clone(),
            workspace: p.workspace.clone(),
            why: s.why.clone(),
            tries: s.tries,
            at: unix_now(),
        };
        match self.mirror.journal().writer().append(event).await {
            Ok(()) => self.observer.deliveries_set_aside(p.requests.len()),
            // They stay queued, and are taken again as never tried.
            Err(e) => tracing::error!(error = %e, "the journal did not take deliveries set aside"),
        }
    }
}
