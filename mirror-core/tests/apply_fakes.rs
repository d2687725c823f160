//! Apply against the in-memory fakes: reports, resume after every kind of interruption, stale
//! plans, concurrency bounds, stopping.

use mirror_render::Render as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mirror_core::advanced::apply;
use mirror_core::advanced::gather;
use mirror_core::advanced::journal::{Event, Journal};
use mirror_core::advanced::plan;
use mirror_core::fakes::{FakeBitbucket, FakeSnyk};
use mirror_core::ids::IntegrationId;
use mirror_core::ids::OrgId;
use mirror_core::ports::Repo;
use mirror_core::ports::{ImportSpec, JobHandle, JobOutcome, SnykOrg, SnykPort, SnykTarget};
use mirror_core::rules::History;
use mirror_core::{Config, Error};

fn config(extra: &str) -> Config {
    Config::from_toml(&format!(
        "[snyk]\ngroup_id = \"g\"\n[apply]\nresume_grace_seconds = 0\n{extra}"
    ))
    .unwrap()
}

/// A fake Snyk whose port holds Snyk-side Bitbucket credentials (missing integrations can be
/// added).
fn fake_snyk() -> FakeSnyk {
    let snyk = FakeSnyk::new();
    snyk.set_can_add_integrations(true);
    snyk
}

fn estate() -> FakeBitbucket {
    FakeBitbucket::new()
        .with_workspace(
            "acme",
            vec![
                Repo::new("acme", "api"),
                Repo::new("acme", "web"),
                Repo::new("acme", "docs"),
            ],
        )
        .with_workspace("beta", vec![Repo::new("beta", "svc")])
}

#[tokio::test]
async fn a_first_run_creates_orgs_and_imports_everything() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    snyk.set_zero_projects("acme/docs");
    let cfg = config("");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &journal.state().history());
    let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, None)
        .await
        .unwrap();
    assert_eq!(report.orgs_created, ["acme", "beta"]);
    assert_eq!(report.imports_accepted, 4);
    assert_eq!(report.imports_completed, 4);
    assert_eq!(report.projects_created, 3);
    assert_eq!(report.zero_project_imports, 1);
    assert!(!report.has_failures());
    assert!(
        report
            .render()
            .contains("4 accepted, 4 completed, 0 failed"),
        "{}",
        report.render()
    );
    assert!(report.requests["snyk"] > 0);
}

#[tokio::test]
async fn failures_are_reported_with_snyks_reason_and_the_cap_is_remembered() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    let acme = snyk.add_org("acme", &["bitbucket-cloud"]);
    snyk.add_org("beta", &["bitbucket-cloud"]);
    snyk.set_failing("beta/svc");
    snyk.set_capped(&acme);
    let cfg = config("");
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = Journal::open(dir.path(), None).unwrap();
        let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
        let p = plan(&cfg, &inventory, &journal.state().history());
        let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, None)
            .await
            .unwrap();
        assert!(report.has_failures());
        assert_eq!(report.imports_failed.len(), 4);
        let beta = report
            .imports_failed
            .iter()
            .find(|f| f.repository == "beta/svc")
            .unwrap();
        assert!(beta.message.contains("refused"), "{}", beta.message);
    }
    // The next plan holds the capped org's repositories back instead of trying again.
    let journal = Journal::open(dir.path(), None).unwrap();
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &journal.state().history());
    assert_eq!(p.summary().conflicts, 1);
    assert!(p.render().contains("cap of 25,000"), "{}", p.render());
    assert_eq!(p.summary().imports, 1, "beta/svc is tried again");
}

#[tokio::test]
async fn an_intent_without_outcome_is_checked_against_snyk_before_posting() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    let acme = snyk.add_org("acme", &["bitbucket-cloud"]);
    snyk.add_org("beta", &["bitbucket-cloud"]);
    let cfg = config("");
    let dir = tempfile::tempdir().unwrap();
    // A run posted acme/api (Snyk made the target) and died before recording the answer;
    // it intended acme/web and died before posting it.
    snyk.add_target(&acme, "acme/api");
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let stale = plan(&cfg, &inventory, &Default::default());
    {
        let journal = Journal::open(dir.path(), None).unwrap();
        let w = journal.writer();
        for repo in ["acme/api", "acme/web"] {
            w.append(Event::ImportIntent {
                org_id: acme.clone(),
                repository: repo.into(),
            })
            .await
            .unwrap();
        }
    }
    // The plan made before the crash still lists acme/api: apply must not post it again.
    let stale_with_api = {
        let mut p = stale.clone();
        p.actions.push(mirror_core::Action::Import(Box::new(
            mirror_core::plan::ImportAction {
                org: mirror_core::plan::OrgRef::Existing {
                    id: acme.clone(),
                    name: "acme".into(),
                    integration_id: Some(format!("int-bitbucket-cloud-{acme}").into()),
                },
                workspace: "acme".into(),
                repository: "api".into(),
                branch: "main".into(),
                files: vec![],
                exclusion_globs: vec![],
                uuid: None,
                workspace_uuid: None,
                replaces: None,
                restore: false,
                carrying: None,
                metadata: None,
            },
        )));
        p
    };
    let journal = Journal::open(dir.path(), None).unwrap();
    let report = apply(
        &stale_with_api,
        snyk.clone(),
        &journal,
        &cfg.apply,
        None,
        None,
    )
    .await
    .unwrap();
    let posted = snyk.posted();
    assert!(!posted.iter().any(|(_, r)| r == "acme/api"), "{posted:?}");
    assert_eq!(posted.iter().filter(|(_, r)| r == "acme/web").count(), 1);
    assert!(report.imports_resumed >= 2, "{report:?}");
}

#[tokio::test]
async fn an_accepted_job_is_polled_not_posted_again() {
    let bb = FakeBitbucket::new().with_workspace("acme", vec![Repo::new("acme", "api")]);
    let snyk = Arc::new(fake_snyk());
    let acme = snyk.add_org("acme", &["bitbucket-cloud"]);
    let cfg = config("");
    let dir = tempfile::tempdir().unwrap();
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &Default::default());
    // The earlier run got the import accepted and died while polling.
    let spec = ImportSpec {
        workspace: "acme".into(),
        repository: "api".into(),
        branch: Some("main".into()),
        files: vec![],
        exclusion_globs: vec![],
    };
    let job = snyk.import(&acme, &"i".into(), &spec).await.unwrap();
    {
        let journal = Journal::open(dir.path(), None).unwrap();
        let w = journal.writer();
        w.append(Event::ImportIntent {
            org_id: acme.clone(),
            repository: "acme/api".into(),
        })
        .await
        .unwrap();
        w.append(Event::ImportAccepted {
            org_id: acme.clone(),
            repository: "acme/api".into(),
            job,
        })
        .await
        .unwrap();
    }
    let journal = Journal::open(dir.path(), None).unwrap();
    let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, None)
        .await
        .unwrap();
    assert_eq!(snyk.posted().len(), 1);
    assert_eq!(report.imports_completed, 1);
    assert_eq!(report.imports_resumed, 1);
    assert_eq!(report.imports_accepted, 0);
}

#[tokio::test]
async fn a_stale_plan_never_creates_an_org_whose_name_now_exists() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    let cfg = config("");
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &Default::default());
    assert_eq!(p.summary().orgs_to_create, 2);
    // Meanwhile (or in a run that crashed after creating it) "acme" came to exist, and "beta"
    // twice.
    snyk.add_org("acme", &["bitbucket-cloud"]);
    snyk.add_org("beta", &["bitbucket-cloud"]);
    snyk.add_org("beta", &["bitbucket-cloud"]);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, None)
        .await
        .unwrap();
    assert!(snyk.created().is_empty());
    assert_eq!(report.orgs_adopted, ["acme"]);
    assert!(
        report
            .conflicts
            .iter()
            .any(|c| c.to_string().contains("beta") && c.to_string().contains("2 orgs")),
        "{report:?}"
    );
    assert_eq!(report.imports_completed, 3);
}

/// Wraps the fake Snyk: each job takes a while, and in-flight counts are recorded.
struct Slow {
    inner: FakeSnyk,
    in_flight: AtomicUsize,
    max: AtomicUsize,
    per_org: Mutex<BTreeMap<String, (usize, usize)>>,
    /// The first job posted waits here until every other job has finished.
    gate: tokio::sync::Notify,
    first: Mutex<Option<JobHandle>>,
    quick_done: AtomicUsize,
    quick_total: usize,
}

#[async_trait]
impl SnykPort for Slow {
    async fn orgs(&self, g: &mirror_core::ids::GroupId) -> Result<Vec<SnykOrg>, Error> {
        self.inner.orgs(g).await
    }
    async fn orgs_named(
        &self,
        g: &mirror_core::ids::GroupId,
        n: &str,
    ) -> Result<Vec<SnykOrg>, Error> {
        self.inner.orgs_named(g, n).await
    }
    async fn integrations(&self, o: &OrgId) -> Result<BTreeMap<String, IntegrationId>, Error> {
        self.inner.integrations(o).await
    }
    async fn imported(&self, o: &OrgId, t: &str) -> Result<Vec<SnykTarget>, Error> {
        self.inner.imported(o, t).await
    }
    async fn create_org(
        &self,
        g: &mirror_core::ids::GroupId,
        n: &str,
        t: Option<&OrgId>,
    ) -> Result<SnykOrg, Error> {
        self.inner.create_org(g, n, t).await
    }
    fn can_add_integrations(&self) -> bool {
        self.inner.can_add_integrations()
    }
    async fn add_bitbucket_integration(&self, o: &OrgId) -> Result<Option<IntegrationId>, Error> {
        self.inner.add_bitbucket_integration(o).await
    }
    async fn import(
        &self,
        o: &OrgId,
        i: &IntegrationId,
        s: &ImportSpec,
    ) -> Result<JobHandle, Error> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        {
            let mut per = self.per_org.lock().unwrap();
            let e = per.entry(o.to_string()).or_default();
            e.0 += 1;
            e.1 = e.1.max(e.0);
        }
        self.inner.import(o, i, s).await
    }
    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error> {
        let is_first = {
            let mut first = self.first.lock().unwrap();
            *first.get_or_insert_with(|| job.clone()) == *job
        };
        if is_first {
            self.gate.notified().await;
        } else {
            tokio::task::yield_now().await;
        }
        let org = job.org_id.to_string();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(e) = self.per_org.lock().unwrap().get_mut(&org) {
            e.0 -= 1;
        }
        if !is_first && self.quick_done.fetch_add(1, Ordering::SeqCst) + 1 == self.quick_total {
            self.gate.notify_one();
        }
        self.inner.wait(job).await
    }
    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}

#[tokio::test]
async fn concurrency_is_bounded_per_org_and_overall_without_batches() {
    let mut bb = FakeBitbucket::new();
    for w in ["a", "b", "c"] {
        bb = bb.with_workspace(
            w,
            (0..12).map(|i| Repo::new(w, &format!("r{i:02}"))).collect(),
        );
    }
    let inner = fake_snyk();
    for w in ["a", "b", "c"] {
        inner.add_org(w, &["bitbucket-cloud"]);
    }
    // The first job holds its slot until all 35 others have finished: with batches (a barrier
    // after each group of jobs) that would never happen; without, the others flow past it.
    let slow = Arc::new(Slow {
        inner,
        in_flight: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        per_org: Mutex::new(BTreeMap::new()),
        gate: tokio::sync::Notify::new(),
        first: Mutex::new(None),
        quick_done: AtomicUsize::new(0),
        quick_total: 35,
    });
    let cfg = config("concurrency = 6\nper_org_concurrency = 3\n");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let inventory = gather(&cfg, &bb, slow.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &Default::default());
    let run = apply(&p, slow.clone(), &journal, &cfg.apply, None, None);
    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("apply waited for the held job before starting others: a barrier")
        .unwrap();
    assert_eq!(report.imports_completed, 36);
    assert_eq!(slow.max.load(Ordering::SeqCst), 6);
    for (org, (_, max)) in slow.per_org.lock().unwrap().iter() {
        assert!(*max <= 3, "{org}: {max}");
    }
    assert_eq!(slow.quick_done.load(Ordering::SeqCst), 35);
}

#[tokio::test]
async fn a_stop_request_starts_nothing_new_and_reports_interrupted() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    snyk.add_org("acme", &["bitbucket-cloud"]);
    snyk.add_org("beta", &["bitbucket-cloud"]);
    let cfg = config("");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &Default::default());
    let (_tx, rx) = tokio::sync::watch::channel(true);
    let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, Some(rx))
        .await
        .unwrap();
    assert!(report.interrupted);
    assert!(snyk.posted().is_empty());
    assert!(report.render().contains("resume"));
}

#[tokio::test]
async fn quiet_integrations_are_off_during_the_run_and_put_back_even_after_a_crash() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    let acme = snyk.add_org("acme", &["bitbucket-cloud"]);
    let acme_int = snyk.integrations(&acme).await.unwrap()["bitbucket-cloud"].clone();
    let before = snyk.settings(&acme_int);
    assert_eq!(before["pullRequestTestEnabled"], true);
    let cfg = config("quiet_integrations = true\nnotifications_off_for_new_orgs = true\n");
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = Journal::open(dir.path(), None).unwrap();
        let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
        let p = plan(&cfg, &inventory, &journal.state().history());
        let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, None)
            .await
            .unwrap();
        assert!(!report.has_failures(), "{}", report.render());
        assert_eq!(report.integrations_quieted, ["acme", "beta"]);
        // Notifications: only the org the run created.
        assert_eq!(report.notifications_off, ["beta"]);
        assert_eq!(snyk.notifications_off().len(), 1);
        assert!(!snyk.notifications_off().contains(acme.as_str()));
        assert!(
            report
                .render()
                .contains("PR checks and fix PRs off during the run")
        );
    }
    // Put back as they were.
    assert_eq!(snyk.settings(&acme_int), before);
    // Off before the first import into the org, back after the last one ended.
    let text = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let position = |kind: &str, org: &OrgId| {
        events
            .iter()
            .position(|e| e["event"] == kind && e["org_id"] == org.as_str())
            .unwrap_or_else(|| panic!("no {kind} for {org}"))
    };
    let last_finished = events
        .iter()
        .rposition(|e| e["event"] == "import-finished" && e["org_id"] == acme.as_str())
        .unwrap();
    assert!(position("integration-quieted", &acme) < position("import-intent", &acme));
    assert!(position("integration-restored", &acme) > last_finished);
    let quieted = &events[position("integration-quieted", &acme)];
    assert_eq!(quieted["original"]["pullRequestTestEnabled"], true);

    // A run that died with the integration quiet: the next run puts it back, even without the
    // option and with nothing to import.
    {
        let journal = Journal::open(dir.path(), None).unwrap();
        journal
            .writer()
            .append(Event::IntegrationQuieted {
                org_id: acme.clone(),
                integration_id: acme_int.clone(),
                original: before.clone(),
            })
            .await
            .unwrap();
    }
    let mut off = before.clone();
    off.insert("pullRequestTestEnabled".into(), false.into());
    snyk.update_integration_settings(&acme, &acme_int, &off)
        .await
        .unwrap();
    let cfg = config("");
    let journal = Journal::open(dir.path(), None).unwrap();
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &journal.state().history());
    assert!(p.is_noop());
    let report = apply(&p, snyk.clone(), &journal, &cfg.apply, None, None)
        .await
        .unwrap();
    assert_eq!(report.integrations_quieted, [acme.to_string()]);
    assert_eq!(snyk.settings(&acme_int), before);
    drop(journal);
    assert!(
        mirror_core::advanced::journal::read_state(dir.path())
            .unwrap()
            .quieted
            .is_empty()
    );
}

/// A Snyk port that implements only the required methods: settings and notifications answer
/// with the trait's defaults (this port cannot).
struct Basic(Arc<FakeSnyk>);

#[async_trait]
impl SnykPort for Basic {
    async fn orgs(&self, g: &mirror_core::ids::GroupId) -> Result<Vec<SnykOrg>, Error> {
        self.0.orgs(g).await
    }
    async fn orgs_named(
        &self,
        g: &mirror_core::ids::GroupId,
        n: &str,
    ) -> Result<Vec<SnykOrg>, Error> {
        self.0.orgs_named(g, n).await
    }
    async fn integrations(&self, o: &OrgId) -> Result<BTreeMap<String, IntegrationId>, Error> {
        self.0.integrations(o).await
    }
    async fn imported(&self, o: &OrgId, t: &str) -> Result<Vec<SnykTarget>, Error> {
        self.0.imported(o, t).await
    }
    async fn create_org(
        &self,
        g: &mirror_core::ids::GroupId,
        n: &str,
        t: Option<&OrgId>,
    ) -> Result<SnykOrg, Error> {
        self.0.create_org(g, n, t).await
    }
    fn can_add_integrations(&self) -> bool {
        self.0.can_add_integrations()
    }
    async fn add_bitbucket_integration(&self, o: &OrgId) -> Result<Option<IntegrationId>, Error> {
        self.0.add_bitbucket_integration(o).await
    }
    async fn import(
        &self,
        o: &OrgId,
        i: &IntegrationId,
        s: &ImportSpec,
    ) -> Result<JobHandle, Error> {
        self.0.import(o, i, s).await
    }
    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error> {
        self.0.wait(job).await
    }
    fn requests(&self) -> u64 {
        self.0.requests()
    }
}

#[tokio::test]
async fn settings_that_cannot_be_changed_are_warnings_and_the_imports_go_on() {
    let bb = estate();
    let fake = Arc::new(fake_snyk());
    fake.add_org("acme", &["bitbucket-cloud"]);
    let snyk: Arc<dyn SnykPort> = Arc::new(Basic(fake.clone()));
    let cfg = config("quiet_integrations = true\nnotifications_off_for_new_orgs = true\n");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&cfg, &inventory, &journal.state().history());
    let report = apply(&p, snyk, &journal, &cfg.apply, None, None)
        .await
        .unwrap();
    assert_eq!(report.imports_completed, 4, "{}", report.render());
    assert!(!report.has_failures(), "{}", report.render());
    assert!(report.integrations_quieted.is_empty());
    assert!(report.notifications_off.is_empty());
    let text = report.render();
    assert!(
        text.contains("? acme: the integration's settings could not be read, so PR checks and fix PRs stay as they are: this Snyk port cannot read integration settings"),
        "{text}"
    );
    assert!(
        text.contains("? beta: notifications could not be turned off: this Snyk port cannot change notification settings"),
        "{text}"
    );
    // Nothing was journaled as quieted, so no later run tries to put anything back.
    drop(journal);
    assert!(
        mirror_core::advanced::journal::read_state(dir.path())
            .unwrap()
            .quieted
            .is_empty()
    );
}

#[tokio::test]
async fn settings_are_changed_only_when_the_plan_shows_it() {
    let bb = estate();
    let snyk = Arc::new(fake_snyk());
    snyk.add_org("acme", &["bitbucket-cloud"]);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    // The plan was made without the settings; apply is asked with them.
    let plain = config("");
    let inventory = gather(&plain, &bb, snyk.as_ref()).await.unwrap();
    let p = plan(&plain, &inventory, &journal.state().history());
    assert!(!p.render().contains("PR checks"), "{}", p.render());
    let loud = config("quiet_integrations = true\nnotifications_off_for_new_orgs = true\n");
    let report = apply(&p, snyk.clone(), &journal, &loud.apply, None, None)
        .await
        .unwrap();
    assert!(
        report.integrations_quieted.is_empty(),
        "{}",
        report.render()
    );
    assert!(report.notifications_off.is_empty());
    assert!(snyk.notifications_off().is_empty());
    let text = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(!text.contains("integration-quieted"));
    // Made with them, the plan shows them.
    let shown = plan(&loud, &inventory, &History::default()).render();
    assert!(shown.contains("PR checks and fix PRs off"), "{shown}");
    assert!(shown.contains("notifications turned off"), "{shown}");
}
