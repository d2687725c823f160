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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bitbucket_cloud_client::webhooks::RepositoryEvent;
use tokio::sync::{Notify, RwLock, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Config;
use crate::ids::RepoUuid;
use crate::inventory::{Touched, gather_touched, workspace_in_scope};
use crate::journal::{Event, PendingRepository, lock};
use crate::report::Report;
use crate::{Error, Mirror};

/// What became of a delivery offered to [`Mirror::queue_delivery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Queued in the journal (on disk): it will be reconciled.
    Queued,
    /// Its `X-Request-UUID` was seen before (a retry or a replay): nothing more to do.
    Duplicate,
    /// Its workspace is out of scope and the repository is not mirrored: ignored.
    OutOfScope {
        /// Why, naming the configuration.
        why: String,
    },
}

impl Mirror {
    /// Admits a delivery: repeated ones (by `request_uuid`, remembered for
    /// [`crate::journal::DELIVERY_MEMORY_SECONDS`]) and out-of-scope ones are told apart, and
    /// the rest is queued in the journal, on disk before this returns.
    ///
    /// # Errors
    /// When the journal cannot be written (then nothing is queued: answer with an error so
    /// that Bitbucket retries).
    pub async fn queue_delivery(
        &self,
        config: &Config,
        request_uuid: &str,
        delivery: RepositoryEvent,
    ) -> Result<Admission, Error> {
        let mirrored = |s: &crate::JournalState| {
            s.repos
                .contains_key(&RepoUuid::from(delivery.uuid.as_str()))
        };
        let (seen, known) = self
            .journal()
            .with_state(|s| (s.delivery_seen(request_uuid), mirrored(s)));
        if seen {
            return Ok(Admission::Duplicate);
        }
        if let Err(why) = workspace_in_scope(config, &delivery.workspace)
            && !known
        {
            return Ok(Admission::OutOfScope {
                why: format!("workspace `{}` is {why}", delivery.workspace),
            });
        }
        // Two attempts of one delivery may arrive together: one of them writes.
        if !lock(&self.admitting).insert(request_uuid.to_owned()) {
            return Ok(Admission::Duplicate);
        }
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let written = self
            .journal()
            .writer()
            .append(Event::DeliveryQueued {
                request_uuid: request_uuid.to_owned(),
                at,
                delivery,
            })
            .await;
        lock(&self.admitting).remove(request_uuid);
        written.map(|()| Admission::Queued)
    }

    /// The deliveries queued and not yet reconciled, by repository.
    pub fn pending_repositories(&self) -> Vec<PendingRepository> {
        self.journal()
            .with_state(|s| s.pending.values().cloned().collect())
    }

    /// Reconciles the repositories `deliveries` name, each once (read again by uuid; the
    /// payloads are trusted for nothing else), then marks the deliveries done in the journal.
    /// Interrupted by the stop signal, they stay queued.
    ///
    /// # Errors
    /// As [`Mirror::plan`] and [`Mirror::apply`]; the deliveries then stay queued.
    pub async fn reconcile_deliveries(
        &self,
        config: &Config,
        pending: &[PendingRepository],
    ) -> Result<Report, Error> {
        self.reconcile_pending(config, pending, None).await
    }

    /// [`Mirror::reconcile_deliveries`], calling `on_planned` once the plan's orgs are ready
    /// (or the round ended before).
    async fn reconcile_pending(
        &self,
        config: &Config,
        pending: &[PendingRepository],
        on_planned: Option<Box<dyn FnOnce() + Send + '_>>,
    ) -> Result<Report, Error> {
        let touched: Vec<Touched> = pending
            .iter()
            .map(|p| Touched {
                workspace: p.workspace.clone(),
                uuid: p.uuid.clone(),
                deleted: p.deleted,
            })
            .collect();
        let report = self.reconcile_touched(config, &touched, on_planned).await?;
        if !report.interrupted {
            self.journal()
                .writer()
                .append(Event::DeliveriesDone {
                    request_uuids: pending
                        .iter()
                        .flat_map(|p| &p.requests)
                        .map(ToString::to_string)
                        .collect(),
                })
                .await?;
        }
        Ok(report)
    }

    /// A targeted reconcile: plans and applies for `touched` alone, holding the setup lock
    /// until their orgs are ready.
    async fn reconcile_touched(
        &self,
        config: &Config,
        touched: &[Touched],
        on_planned: Option<Box<dyn FnOnce() + Send + '_>>,
    ) -> Result<Report, Error> {
        let setup = crate::apply::SetupHold {
            _guard: self.setup.lock().await,
            on_release: on_planned,
        };
        let history = self.journal().with_state(|s| s.history());
        let (inventory, focus) = gather_touched(
            config,
            self.bitbucket.as_ref(),
            self.snyk().as_ref(),
            &history,
            touched,
        )
        .await?;
        let plan = crate::plan::plan_focused(config, &inventory, &history, &focus);
        // Most deliveries change nothing Snyk shows (a description edited): such a round
        // writes nothing to the journal but its deliveries' end.
        if plan
            .actions
            .iter()
            .all(|a| matches!(a, crate::plan::Action::Skip { .. }))
        {
            drop(setup);
            return Ok(Report {
                skipped: plan.summary().skipped,
                ..Report::default()
            });
        }
        self.apply_holding(&plan, Some(setup)).await
    }
}

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
}

/// An observer that is told nothing.
#[derive(Debug, Default)]
pub struct Unobserved;

impl EventObserver for Unobserved {}

/// What the loop keeps while rounds run.
#[derive(Default)]
struct Rounds {
    /// Repositories a round is reconciling.
    busy: HashSet<RepoUuid>,
    /// Rounds in flight.
    in_flight: usize,
    /// When the last round started.
    last_start: Option<Instant>,
    /// Failed rounds in a row, and when deliveries may be tried again.
    failures: u32,
    not_before: Option<Instant>,
}

impl Rounds {
    /// When the next round may start, if not now: after a failure's backoff, and under load
    /// [`ROUND_SPACING`] after the last one began.
    fn wait_until(&self) -> Option<Instant> {
        let spaced = self
            .last_start
            .map(|t| t + ROUND_SPACING)
            .filter(|t| *t > Instant::now());
        match (self.not_before.filter(|t| *t > Instant::now()), spaced) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Rounds in flight at most: under load, deliveries wait for a slot and the next round takes
/// them all, so a burst costs a few rounds of many repositories (a filtered listing per
/// workspace) rather than a round and a request for each.
const MAX_ROUNDS: usize = 4;
/// Rounds start at most this often (a lone delivery starts its round at once).
const ROUND_SPACING: Duration = Duration::from_millis(50);

/// The first wait after a failed round; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait after failed rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs the rounds of targeted reconciles for queued deliveries, and the scheduled full
/// reconcile (at start and then every interval). See the module's documentation.
pub struct EventLoop {
    mirror: Arc<Mirror>,
    config: Arc<Config>,
    wake: Notify,
    rounds: std::sync::Mutex<Rounds>,
    /// Rounds hold it shared; the full reconcile alone.
    exclusive: RwLock<()>,
    observer: Arc<dyn EventObserver>,
    /// Full reconciles failed in a row, and when to try the next one (sooner than the
    /// interval: a failed start-up reconcile must not wait six hours).
    reconcile_retry: std::sync::Mutex<(u32, Option<Instant>)>,
}

/// The first wait after a failed full reconcile; it doubles, never past the reconcile
/// interval.
const RECONCILE_FIRST_RETRY: Duration = Duration::from_secs(30);

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// An event loop over `mirror` for `config`, telling `observer` what it does.
    pub fn new(
        mirror: Arc<Mirror>,
        config: Arc<Config>,
        observer: Arc<dyn EventObserver>,
    ) -> Arc<Self> {
        Arc::new(Self {
            mirror,
            config,
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
        let admission = self
            .mirror
            .queue_delivery(&self.config, request_uuid, delivery)
            .await?;
        if admission == Admission::Queued {
            self.wake.notify_one();
        }
        Ok(admission)
    }

    /// Deliveries queued and not yet reconciled.
    pub fn queue_depth(&self) -> usize {
        self.mirror.journal().with_state(|s| s.pending_deliveries)
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
            let retry_at = lock(&self.rounds).wait_until();
            let wake_at = retry_at.map_or(next_reconcile, |r| r.min(next_reconcile));
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
        let result = match self.mirror.plan(&self.config).await {
            Ok(plan) => {
                self.observer.reconcile_planned();
                self.mirror.apply(&plan).await
            }
            Err(e) => Err(e),
        };
        {
            let mut retry = lock(&self.reconcile_retry);
            if result.is_err() {
                let wait = RECONCILE_FIRST_RETRY
                    .saturating_mul(1 << retry.0.min(16))
                    .min(every);
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

    /// Starts a round for the queued deliveries whose repository no round is reconciling.
    fn dispatch(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        let batch: Vec<PendingRepository> = {
            let mut rounds = lock(&self.rounds);
            if rounds.in_flight >= MAX_ROUNDS || rounds.wait_until().is_some() {
                return;
            }
            rounds.not_before = None;
            let batch: Vec<PendingRepository> = self.mirror.journal().with_state(|s| {
                s.pending
                    .values()
                    .filter(|p| !rounds.busy.contains(&p.uuid))
                    .cloned()
                    .collect()
            });
            if !batch.is_empty() {
                rounds.busy.extend(batch.iter().map(|p| p.uuid.clone()));
                rounds.in_flight += 1;
                rounds.last_start = Some(Instant::now());
            }
            batch
        };
        if batch.is_empty() {
            return;
        }
        let this = self.clone();
        tasks.spawn(async move {
            // The round's slot is freed once its plan's orgs are ready: the rest of it waits on
            // import jobs, which must not hold back the next round.
            let freed = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let free = {
                let (this, freed) = (this.clone(), freed.clone());
                move || {
                    if !freed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        lock(&this.rounds).in_flight -= 1;
                        this.wake.notify_one();
                    }
                }
            };
            let result = {
                let _shared = this.exclusive.read().await;
                let free = free.clone();
                this.mirror
                    .reconcile_pending(&this.config, &batch, Some(Box::new(free)))
                    .await
            };
            free();
            let deliveries = batch.iter().map(|p| p.requests.len()).sum();
            this.observer.round_done(deliveries, &result);
            {
                let mut rounds = lock(&this.rounds);
                for p in &batch {
                    rounds.busy.remove(&p.uuid);
                }
                if result.is_err() {
                    let wait = FIRST_BACKOFF
                        .saturating_mul(1 << rounds.failures.min(8))
                        .min(MAX_BACKOFF);
                    rounds.failures += 1;
                    rounds.not_before = Some(Instant::now() + wait);
                } else {
                    rounds.failures = 0;
                }
            }
            this.wake.notify_one();
        });
    }
}
