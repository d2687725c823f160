//! The handle for embedders: both sides, the state directory and the options in one value;
//! [`Mirror::plan`] and [`Mirror::apply`] are its methods.

use std::path::PathBuf;
use std::sync::Arc;

use bitbucket_cloud_client::BitbucketClient;
use secrecy::SecretString;
use snyk_client::SnykClient;
use tokio::sync::watch;

use crate::adapters::{BitbucketAdapter, SnykAdapter};
use crate::config::{ApplyOptions, Config};
use crate::error::Error;
use crate::import::{ApplyObserver, Silent};
use crate::inventory::{Inventory, gather_for};
use crate::journal::{Journal, WriteObserver};
use crate::plan::{Plan, plan};
use crate::ports::{BitbucketPort, SnykPort};
use crate::report::Report;

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
    /// Workspaces listed in full every time up to this many repositories.
    in_full_up_to: usize,
    audit_margin: std::time::Duration,
    options: ApplyOptions,
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
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// Starts building a mirror.
    pub fn builder() -> MirrorBuilder {
        MirrorBuilder::default()
    }

    /// Reads both sides as far as a plan for `config` needs: Snyk orgs whose every repository
    /// the journal shows imported are listed but not read.
    ///
    /// # Errors
    /// The first request that fails.
    pub async fn inventory(&self, config: &Config) -> Result<Inventory, Error> {
        let history = self.journal.with_state(|s| s.history());
        // Workspaces listed before are asked only what changed (see `listing`).
        let bitbucket = crate::listing::Incremental::new(
            self.bitbucket.clone(),
            &self.dir,
            config.source.full_every(),
        )
        .in_full_up_to(self.in_full_up_to);
        // Orgs unchanged since their last read (as the group's audit log says) answer from it.
        let snyk = crate::snyk_listing::KeptSnyk::new(
            self.snyk.clone(),
            &self.dir,
            &config.snyk.group_id,
            config.snyk.full_every(),
        )
        .with_margin(self.audit_margin);
        gather_for(config, &bitbucket, &snyk, &history).await
    }

    /// Reads both sides and plans: what to create, import and skip, and why. Changes nothing.
    ///
    /// # Errors
    /// The first request that fails.
    pub async fn plan(&self, config: &Config) -> Result<Plan, Error> {
        let inventory = self.inventory(config).await?;
        Ok(self.plan_from(config, &inventory))
    }

    /// Reads both sides in full and compares them, writing nothing: every difference with
    /// its reason and whether it is explained ([`crate::verify::Verification`]).
    ///
    /// # Errors
    /// As [`Mirror::plan`].
    pub async fn verify(&self, config: &Config) -> Result<crate::verify::Verification, Error> {
        let plan = self.plan(config).await?;
        Ok(crate::verify::Verification::of(&plan))
    }

    /// Plans from an inventory already read (pure: the same inputs give the same plan).
    pub fn plan_from(&self, config: &Config, inventory: &Inventory) -> Plan {
        let history = self.journal.with_state(|s| s.history());
        plan(config, inventory, &history)
    }

    /// Carries out `plan` with the options, the observer and the stop signal set on this
    /// mirror; resumes whatever an earlier run on the same state directory left unfinished.
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
        setup: Option<crate::apply::SetupHold<'_>>,
    ) -> Result<Report, Error> {
        // What this run may change is read again next time, whatever the audit log says (and
        // however this run ends).
        let changed = plan.orgs_changed();
        crate::snyk_listing::forget(&self.dir, &changed);
        let applied = crate::apply::apply_holding(
            plan,
            self.snyk.clone(),
            &self.journal,
            &self.options,
            Some(self.observer.clone()),
            self.stop.clone(),
            setup,
        )
        .await;
        crate::snyk_listing::forget(&self.dir, &changed);
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
    pub async fn undo_plan(
        &self,
        config: &Config,
        run: &str,
    ) -> Result<(Plan, Vec<String>), Error> {
        let names = match self.snyk.orgs(&config.snyk.group_id).await {
            Ok(orgs) => orgs.into_iter().map(|o| (o.id, o.name)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the group's orgs could not be read; they are named by id");
                std::collections::BTreeMap::new()
            }
        };
        let undo = crate::runs::undo(&self.dir, run, &names)?;
        Ok((Plan::with_actions(config, undo.actions), undo.cannot))
    }

    /// Tells `observer` what apply does (progress displays, files of your own).
    pub fn observe(&mut self, observer: Arc<dyn ApplyObserver>) -> &mut Self {
        self.observer = observer;
        self
    }

    /// Stops applying once `stop` turns true: nothing new starts, imports in flight finish,
    /// and the report says it was interrupted (run again to resume).
    pub fn stop_when(&mut self, stop: watch::Receiver<bool>) -> &mut Self {
        self.stop = Some(stop);
        self
    }

    /// The options apply runs with.
    pub fn options(&self) -> &ApplyOptions {
        &self.options
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

/// The Snyk side as given to the builder.
enum SnykSide {
    Client(Box<SnykClient>),
    Port(Arc<dyn SnykPort>),
}

/// Builds a [`Mirror`]: both sides (clients or ports of your own), the state directory, and
/// the options.
#[derive(Default)]
pub struct MirrorBuilder {
    bitbucket: Option<Arc<dyn BitbucketPort>>,
    snyk: Option<SnykSide>,
    snyk_bitbucket_credentials: Option<(String, SecretString)>,
    state_dir: Option<PathBuf>,
    options: ApplyOptions,
    journal_observer: Option<WriteObserver>,
    in_full_up_to: Option<usize>,
    audit_margin: Option<std::time::Duration>,
}

impl std::fmt::Debug for MirrorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorBuilder")
            .field("state_dir", &self.state_dir)
            .field("options", &self.options)
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

    /// How apply runs (default [`ApplyOptions::default`]; a configuration file's `[apply]`
    /// table is `config.apply`).
    pub fn options(mut self, options: ApplyOptions) -> Self {
        self.options = options;
        self
    }

    /// How far before the oldest kept read of an org the group's audit log is searched for
    /// changes (default [`crate::snyk_listing::CLOCK_MARGIN`], ten minutes, for clocks and for
    /// entries that reach the log late; see [`crate::snyk_listing`]).
    pub fn snyk_audit_margin(mut self, margin: std::time::Duration) -> Self {
        self.audit_margin = Some(margin);
        self
    }

    /// Workspaces with at most this many repositories are listed in full on every plan
    /// (default [`crate::listing::ONE_PAGE`]: one request, where asking what changed takes
    /// two); larger ones are asked what changed (see [`crate::listing`]). 0 lists every
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
    /// [`Error::Config`] when a side is missing; [`Error::Locked`] when another run holds the
    /// state directory; I/O and malformed-journal errors.
    pub fn build(self) -> Result<Mirror, Error> {
        let missing = |side: &str| {
            Error::Config(format!(
                "Mirror::builder() needs the {side} side: call .{side}(client) or .{side}_port(port)"
            ))
        };
        let bitbucket = self.bitbucket.ok_or_else(|| missing("bitbucket"))?;
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
            in_full_up_to: self.in_full_up_to.unwrap_or(crate::listing::ONE_PAGE),
            audit_margin: self
                .audit_margin
                .unwrap_or(crate::snyk_listing::CLOCK_MARGIN),
            options: self.options,
            observer: Arc::new(Silent),
            stop: None,
            setup: tokio::sync::Mutex::new(()),
            admitting: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }
}
