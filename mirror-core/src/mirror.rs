//! The one door for embedders: both sides, the configuration, the state directory, the
//! observer and the stop signal, given once to [`Mirror::builder`]; reading, planning,
//! applying, verifying and the real-time event loop are its methods.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bitbucket_cloud_client::BitbucketClient;
use secrecy::SecretString;
use snyk_client::SnykClient;
use tokio::sync::watch;

use crate::read::adapters::{BitbucketAdapter, SnykAdapter};
use bitbucket_cloud_client::webhooks::RepositoryEvent;

use crate::act::import::{ApplyObserver, Silent};
use crate::act::journal::{Event, Journal, PendingRepository, WriteObserver};
use crate::act::report::Report;
use crate::clock::unix_now;
use crate::config::Config;
use crate::decide::plan::{Plan, plan};
use crate::error::Error;
use crate::events::admission::Admission;
use crate::ids::RepoUuid;
use crate::read::both::Sides;
use crate::read::inventory::Inventory;
use crate::read::inventory::{Lookup, Touched, gather_touched, workspace_in_scope};
use crate::read::ports::{BitbucketPort, SnykPort};
use bitbucket_cloud_client::api_support::lock;

/// A mirror of Bitbucket Cloud into Snyk: reads both sides, plans, applies, and journals every
/// remote action in its state directory so that any run can be resumed.
///
/// It holds the state directory's lock while it lives: a second `Mirror` (or a run of the
/// binary) on the same directory is refused until it is dropped.
pub struct Mirror {
    pub(crate) bitbucket: Arc<dyn BitbucketPort>,
    snyk: Arc<dyn SnykPort>,
    journal: Journal,
    /// The state directory (the journal, and the kept listings).
    dir: PathBuf,
    /// What to mirror, and how (its `[apply]` table is how apply runs).
    config: Arc<Config>,
    /// Workspaces listed in full every time up to this many repositories.
    in_full_up_to: usize,
    audit_margin: std::time::Duration,
    observer: Arc<dyn ApplyObserver>,
    stop: Option<watch::Receiver<bool>>,
    /// Held by a targeted reconcile from its plan until its orgs are ready.
    pub(crate) setup: tokio::sync::Mutex<()>,
    /// Deliveries being written to the journal now (by `X-Request-UUID`).
    pub(crate) admitting: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("journal", &self.journal)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// Starts building a mirror.
    pub fn builder() -> MirrorBuilder {
        MirrorBuilder::default()
    }

    /// Reads both sides as far as a plan needs: Snyk orgs whose every repository the journal
    /// shows imported are listed but not read.
    ///
    /// # Errors
    /// The first request that fails.
    pub async fn inventory(&self) -> Result<Inventory, Error> {
        self.inventory_reading(false).await
    }

    /// [`Mirror::inventory`], reading every Snyk org again when `snyk_in_full`.
    async fn inventory_reading(&self, snyk_in_full: bool) -> Result<Inventory, Error> {
        let history = self.journal.with_state(|s| s.history());
        let mut sides = Sides::new(
            &self.config,
            self.bitbucket.clone(),
            self.snyk.clone(),
            &self.dir,
            snyk_in_full,
        );
        sides.in_full_up_to = self.in_full_up_to;
        sides.audit_margin = self.audit_margin;
        sides.read(&history).await
    }

    /// Reads both sides and plans: what to create, import and skip, and why. Changes nothing.
    ///
    /// # Errors
    /// The first request that fails.
    pub async fn plan(&self) -> Result<Plan, Error> {
        let inventory = self.inventory().await?;
        Ok(self.plan_from(&inventory))
    }

    /// Reads both sides in full and compares them, writing nothing: every difference with
    /// its reason and whether it is explained ([`crate::decide::verify::Verification`]).
    ///
    /// # Errors
    /// As [`Mirror::plan`].
    pub async fn verify(&self) -> Result<crate::decide::verify::Verification, Error> {
        let inventory = self.inventory_reading(true).await?;
        let plan = self.plan_from(&inventory);
        Ok(crate::decide::verify::Verification::of(&plan))
    }

    /// Plans from an inventory already read (pure: the same inputs give the same plan).
    pub fn plan_from(&self, inventory: &Inventory) -> Plan {
        let history = self.journal.with_state(|s| s.history());
        plan(&self.config, inventory, &history)
    }

    /// Carries out `plan` with the configuration's `[apply]` options, the observer and the stop
    /// signal given to the builder; resumes whatever an earlier run on the same state directory left unfinished.
    ///
    /// # Errors
    /// When the journal cannot be written, the group's orgs cannot be listed, or Snyk refuses
    /// the credentials; failures of single imports are in the report.
    pub async fn apply(&self, plan: &Plan) -> Result<Report, Error> {
        self.apply_holding(plan, None).await
    }

    /// [`Mirror::apply`], releasing `setup` once the plan's orgs are ready.
    pub(crate) async fn apply_holding(
        &self,
        plan: &Plan,
        setup: Option<crate::act::apply::SetupHold<'_>>,
    ) -> Result<Report, Error> {
        // What this run may change is read again next time, whatever the audit log says (and
        // however this run ends).
        let changed = plan.orgs_changed();
        crate::read::snyk_listing::forget(&self.dir, &changed);
        self.observer.apply_started(plan.summary().imports);
        let applied = crate::act::apply::apply_holding(
            plan,
            self.snyk.clone(),
            &self.journal,
            &self.config.apply,
            Some(self.observer.clone()),
            self.stop.clone(),
            setup,
        )
        .await;
        self.observer.apply_ended();
        crate::read::snyk_listing::forget(&self.dir, &changed);
        self.journal.writer().compact_if_grown().await;
        let mut report = applied?;
        report
            .requests
            .insert("bitbucket".to_owned(), self.bitbucket.requests());
        Ok(report)
    }

    /// The plan that undoes what run `run` retired: the projects it deactivated, activated
    /// again ([`crate::Action::Reactivate`]); apply it with [`Mirror::apply`]. Also says, in
    /// words, what cannot be undone (deleted targets). Reads the group's orgs once, to name
    /// them.
    ///
    /// # Errors
    /// [`Error::Config`] when the journal has no such run; a journal that cannot be read.
    pub async fn undo_plan(&self, run: &str) -> Result<(Plan, Vec<String>), Error> {
        let config = self.config.as_ref();
        let names = match self.snyk.orgs(&config.snyk.group_id).await {
            Ok(orgs) => orgs.into_iter().map(|o| (o.id, o.name)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the group's orgs could not be read; they are named by id");
                std::collections::BTreeMap::new()
            }
        };
        let undo = crate::act::runs::undo(&self.dir, run, &names)?;
        Ok((Plan::with_actions(config, undo.actions), undo.cannot))
    }

    /// The configuration this mirror was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Admits a delivery: repeated ones (by `request_uuid`, remembered for
    /// [`crate::act::journal::DELIVERY_MEMORY_SECONDS`]) and out-of-scope ones are told apart, and
    /// the rest is queued in the journal, on disk before this returns.
    ///
    /// # Errors
    /// When the journal cannot be written (then nothing is queued: answer with an error so
    /// that Bitbucket retries).
    pub async fn queue_delivery(
        &self,
        request_uuid: &str,
        delivery: RepositoryEvent,
    ) -> Result<Admission, Error> {
        self.queue(request_uuid, delivery).await
    }

    /// The deliveries queued and not yet reconciled, by repository.
    pub fn pending_repositories(&self) -> Vec<PendingRepository> {
        self.journal
            .with_state(|s| s.pending.values().cloned().collect())
    }

    /// Reconciles the repositories `pending` names, each once (read again by uuid; the
    /// payloads are trusted for nothing else), then marks their deliveries done in the
    /// journal. Interrupted by the stop signal, they stay queued; so do those of a repository
    /// that Bitbucket's answers left uncertain ([`crate::Action::Uncertain`]).
    ///
    /// # Errors
    /// As [`Mirror::plan`] and [`Mirror::apply`]; the deliveries then stay queued.
    pub async fn reconcile_deliveries(
        &self,
        pending: &[PendingRepository],
    ) -> Result<Report, Error> {
        self.reconcile_pending(pending, None)
            .await
            .map(|(report, _)| report)
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The Bitbucket side.
    pub fn bitbucket(&self) -> &dyn BitbucketPort {
        self.bitbucket.as_ref()
    }

    /// The Snyk side.
    pub fn snyk(&self) -> &Arc<dyn SnykPort> {
        &self.snyk
    }
}

/// The most request ids one `deliveries-done` event names.
const DONE_PER_EVENT: usize = 4096;

/// Deliveries: admitted to the journal, and reconciled for the repositories they name.
impl Mirror {
    /// [`Mirror::queue_delivery`]'s body.
    async fn queue(
        &self,
        request_uuid: &str,
        delivery: RepositoryEvent,
    ) -> Result<Admission, Error> {
        let mirrored = |s: &crate::act::journal::JournalState| {
            s.repos
                .contains_key(&RepoUuid::from(delivery.uuid.as_str()))
        };
        let (seen, known) = self
            .journal()
            .with_state(|s| (s.delivery_seen(request_uuid), mirrored(s)));
        if seen {
            return Ok(Admission::Duplicate);
        }
        if let Err(why) = workspace_in_scope(self.config(), &delivery.workspace)
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
        let at = unix_now();
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

    /// [`Mirror::reconcile_deliveries`], calling `on_planned` once the plan's orgs are ready
    /// (or the round ended before); also returns the repositories left unsettled, with why.
    pub(crate) async fn reconcile_pending(
        &self,
        pending: &[PendingRepository],
        on_planned: Option<Box<dyn FnOnce() + Send + '_>>,
    ) -> Result<(Report, BTreeMap<RepoUuid, String>), Error> {
        let touched: Vec<Touched> = pending
            .iter()
            .map(|p| Touched {
                workspace: p.workspace.clone(),
                uuid: p.uuid.clone(),
                deleted: p.deleted,
            })
            .collect();
        let (report, unsettled) = self.reconcile_touched(&touched, on_planned).await?;
        if report.interrupted {
            return Ok((report, unsettled));
        }
        // In events of at most DONE_PER_EVENT ids: a round after a flood settles hundreds of
        // thousands, and one event of them all would be tens of megabytes at once, in memory
        // and on one journal line.
        let done: Vec<&crate::act::journal::DeliveryId> = pending
            .iter()
            .filter(|p| !unsettled.contains_key(&p.uuid))
            .flat_map(|p| &p.requests)
            .collect();
        let writer = self.journal().writer();
        for chunk in done.chunks(DONE_PER_EVENT) {
            let request_uuids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            writer
                .append(Event::DeliveriesDone { request_uuids })
                .await?;
        }
        Ok((report, unsettled))
    }

    /// A targeted reconcile: plans and applies for `touched` alone, holding the setup lock
    /// until their orgs are ready. Also returns the repositories Bitbucket's answers left
    /// uncertain, with why.
    async fn reconcile_touched(
        &self,
        touched: &[Touched],
        on_planned: Option<Box<dyn FnOnce() + Send + '_>>,
    ) -> Result<(Report, BTreeMap<RepoUuid, String>), Error> {
        let setup = crate::act::apply::SetupHold {
            _guard: self.setup.lock().await,
            on_release: on_planned,
        };
        let config = self.config();
        let history = self.journal().with_state(|s| s.history());
        let (inventory, focus) = gather_touched(
            config,
            self.bitbucket.as_ref(),
            self.snyk().as_ref(),
            &history,
            touched,
        )
        .await?;
        let unsettled: BTreeMap<RepoUuid, String> = inventory
            .bitbucket
            .confirmations
            .iter()
            .filter_map(|(uuid, lookup)| match lookup {
                Lookup::Uncertain { why } => Some((uuid.clone(), why.clone())),
                _ => None,
            })
            .collect();
        let plan = crate::decide::plan::plan_focused(config, &inventory, &history, &focus);
        // Most deliveries change nothing Snyk shows (a description edited): such a round
        // writes nothing to the journal but its deliveries' end.
        if plan
            .actions
            .iter()
            .all(|a| matches!(a, crate::decide::plan::Action::Skip { .. }))
        {
            drop(setup);
            let report = Report {
                skipped: plan.summary().skipped,
                ..Report::default()
            };
            return Ok((report, unsettled));
        }
        let report = self.apply_holding(&plan, Some(setup)).await?;
        Ok((report, unsettled))
    }
}

/// The Snyk side as given to the builder.
enum SnykSide {
    Client(Box<SnykClient>),
    Port(Arc<dyn SnykPort>),
}

/// Builds a [`Mirror`]: both sides (clients or ports of your own), the configuration, the
/// state directory, and who is told what apply does and when to stop.
#[derive(Default)]
pub struct MirrorBuilder {
    bitbucket: Option<Arc<dyn BitbucketPort>>,
    snyk: Option<SnykSide>,
    snyk_bitbucket_credentials: Option<(String, SecretString)>,
    state_dir: Option<PathBuf>,
    config: Option<Config>,
    observer: Option<Arc<dyn ApplyObserver>>,
    stop: Option<watch::Receiver<bool>>,
    journal_observer: Option<WriteObserver>,
    in_full_up_to: Option<usize>,
    audit_margin: Option<std::time::Duration>,
}

impl std::fmt::Debug for MirrorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorBuilder")
            .field("state_dir", &self.state_dir)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MirrorBuilder {
    /// The Bitbucket side, as a client.
    pub fn bitbucket(self, client: BitbucketClient) -> Self {
        self.bitbucket_port(Arc::new(BitbucketAdapter::new(client)))
    }

    /// The Bitbucket side, as a port of your own (or [`crate::fakes::FakeBitbucket`]).
    pub fn bitbucket_port(mut self, port: Arc<dyn BitbucketPort>) -> Self {
        self.bitbucket = Some(port);
        self
    }

    /// The Snyk side, as a client.
    pub fn snyk(mut self, client: SnykClient) -> Self {
        self.snyk = Some(SnykSide::Client(Box::new(client)));
        self
    }

    /// The Atlassian e-mail and API token that Snyk uses to read Bitbucket: with them the
    /// mirror adds a `bitbucket-cloud` integration to orgs that lack one (with a client given
    /// to [`MirrorBuilder::snyk`]; a port of your own answers
    /// [`SnykPort::can_add_integrations`] itself).
    pub fn snyk_bitbucket_credentials(
        mut self,
        email: impl Into<String>,
        token: impl Into<SecretString>,
    ) -> Self {
        self.snyk_bitbucket_credentials = Some((email.into(), token.into()));
        self
    }

    /// The Snyk side, as a port (a [`SnykAdapter`], a port of your own, or
    /// [`crate::fakes::FakeSnyk`]).
    pub fn snyk_port(mut self, port: Arc<dyn SnykPort>) -> Self {
        self.snyk = Some(SnykSide::Port(port));
        self
    }

    /// The state directory: the journal and its lock (default `.bb-snyk-mirror`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// What to mirror and how (required): the scope, the mapping, Snyk's group, and in
    /// `config.apply` how apply runs.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Tells `observer` what apply does (progress displays, files of your own); by default
    /// nobody is told.
    pub fn observer(mut self, observer: Arc<dyn ApplyObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Stops applying once `stop` turns true: nothing new starts, imports in flight finish,
    /// and the report says it was interrupted (run again to resume).
    pub fn stop_when(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// How far before the oldest kept read of an org the group's audit log is searched for
    /// changes (default [`crate::read::snyk_listing::CLOCK_MARGIN`], ten minutes, for clocks and for
    /// entries that reach the log late; see [`crate::read::snyk_listing`]).
    pub fn snyk_audit_margin(mut self, margin: std::time::Duration) -> Self {
        self.audit_margin = Some(margin);
        self
    }

    /// Workspaces with at most this many repositories are listed in full on every plan
    /// (default [`crate::read::listing::ONE_PAGE`]: one request, where asking what changed takes
    /// two); larger ones are asked what changed (see [`crate::read::listing`]). 0 lists every
    /// workspace incrementally.
    pub fn list_in_full_up_to(mut self, repositories: usize) -> Self {
        self.in_full_up_to = Some(repositories);
        self
    }

    /// Told the sequence number of every journal event once it is on disk (crash tests use it
    /// to stop a process at chosen points).
    pub fn journal_observer(mut self, observer: WriteObserver) -> Self {
        self.journal_observer = Some(observer);
        self
    }

    /// Opens the state directory (taking its lock) and builds the mirror. No request is made.
    ///
    /// # Errors
    /// [`Error::Config`] when a side or the configuration is missing; [`Error::Locked`] when another run holds the
    /// state directory; I/O and malformed-journal errors.
    pub fn build(self) -> Result<Mirror, Error> {
        let missing = |side: &str| {
            Error::Config(format!(
                "Mirror::builder() needs the {side} side: call .{side}(client) or .{side}_port(port)"
            ))
        };
        let bitbucket = self.bitbucket.ok_or_else(|| missing("bitbucket"))?;
        let config = self.config.ok_or_else(|| {
            Error::Config(
                "Mirror::builder() needs the configuration: call .config(config)".to_owned(),
            )
        })?;
        let snyk: Arc<dyn SnykPort> = match (self.snyk, self.snyk_bitbucket_credentials) {
            (None, _) => return Err(missing("snyk")),
            (Some(SnykSide::Client(client)), credentials) => {
                let adapter = SnykAdapter::new(*client);
                Arc::new(match credentials {
                    Some((email, token)) => adapter.with_bitbucket_credentials(email, token),
                    None => adapter,
                })
            }
            (Some(SnykSide::Port(port)), None) => port,
            (Some(SnykSide::Port(_)), Some(_)) => {
                return Err(Error::Config(
                    "Mirror::builder(): Snyk-side Bitbucket credentials go with a Snyk client (.snyk(client)); a port of your own holds its own".to_owned(),
                ));
            }
        };
        let dir = self
            .state_dir
            .unwrap_or_else(|| PathBuf::from(".bb-snyk-mirror"));
        let journal = Journal::open(&dir, self.journal_observer)?;
        Ok(Mirror {
            bitbucket,
            snyk,
            journal,
            dir,
            config: Arc::new(config),
            in_full_up_to: self.in_full_up_to.unwrap_or(crate::read::listing::ONE_PAGE),
            audit_margin: self
                .audit_margin
                .unwrap_or(crate::read::snyk_listing::CLOCK_MARGIN),
            observer: self.observer.unwrap_or_else(|| Arc::new(Silent)),
            stop: self.stop,
            setup: tokio::sync::Mutex::new(()),
            admitting: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::fakes::{FakeBitbucket, FakeSnyk};
    use crate::read::ports::Repo;

    /// What an observer was told, in order.
    #[derive(Default)]
    struct Told(Mutex<Vec<String>>);

    impl ApplyObserver for Told {
        fn apply_started(&self, imports: usize) {
            self.0.lock().unwrap().push(format!("started {imports}"));
        }
        fn import_finished(&self, repository: &str, _failure: Option<&str>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("imported {repository}"));
        }
        fn apply_ended(&self) {
            self.0.lock().unwrap().push("ended".to_owned());
        }
    }

    fn builder(dir: &std::path::Path) -> MirrorBuilder {
        let snyk = FakeSnyk::new();
        snyk.set_can_add_integrations(true);
        Mirror::builder()
            .bitbucket_port(Arc::new(
                FakeBitbucket::new().with_workspace("acme", vec![Repo::new("acme", "api")]),
            ))
            .snyk_port(Arc::new(snyk))
            .state_dir(dir)
    }

    #[test]
    fn a_mirror_without_its_configuration_is_refused_and_says_how_to_give_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = builder(dir.path()).build().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains(".config(config)"), "{e}");
    }

    #[tokio::test]
    async fn the_configuration_given_once_rules_plan_and_apply_and_the_observer_hears_each_apply() {
        let dir = tempfile::tempdir().unwrap();
        let told = Arc::new(Told::default());
        let config = Config::from_toml(
            "[snyk]\ngroup_id = \"g\"\n[apply]\nresume_grace_seconds = 0\nquiet_integrations = false",
        )
        .unwrap();
        let mirror = builder(dir.path())
            .config(config.clone())
            .observer(told.clone())
            .build()
            .unwrap();
        assert_eq!(mirror.config(), &config);
        assert!(!mirror.config().apply.quiet_integrations);
        let plan = mirror.plan().await.unwrap();
        assert_eq!(plan.summary().imports, 1, "{:?}", plan.actions);
        let report = mirror.apply(&plan).await.unwrap();
        assert_eq!(report.imports_completed, 1, "{report:?}");
        assert_eq!(
            *told.0.lock().unwrap(),
            ["started 1", "imported acme/api", "ended"]
        );
        assert!(mirror.plan().await.unwrap().is_noop());
    }

    #[tokio::test]
    async fn a_plan_without_the_lock_reads_as_the_door_does_while_the_door_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let snyk = FakeSnyk::new();
        snyk.set_can_add_integrations(true);
        let snyk: Arc<dyn SnykPort> = Arc::new(snyk);
        let bitbucket: Arc<dyn BitbucketPort> =
            Arc::new(FakeBitbucket::new().with_workspace("acme", vec![Repo::new("acme", "api")]));
        let config =
            Config::from_toml("[snyk]\ngroup_id = \"g\"\n[apply]\nresume_grace_seconds = 0")
                .unwrap();
        let mirror = Mirror::builder()
            .bitbucket_port(bitbucket.clone())
            .snyk_port(snyk.clone())
            .config(config.clone())
            .state_dir(dir.path())
            .build()
            .unwrap();
        let unlocked = |in_full| {
            crate::advanced::plan_unlocked(
                &config,
                bitbucket.clone(),
                snyk.clone(),
                dir.path(),
                in_full,
            )
        };
        assert_eq!(unlocked(false).await.unwrap(), mirror.plan().await.unwrap());
        mirror.apply(&mirror.plan().await.unwrap()).await.unwrap();
        // The door still holds the directory; the journal on disk says it is done.
        assert!(unlocked(false).await.unwrap().is_noop());
        assert!(crate::Verification::of(&unlocked(true).await.unwrap()).holds());
    }
}
