//! The import protocol on its own, against the in-memory fake: what each starting point
//! (fresh, dangling intent, accepted job) leads to, what is journaled, and that refused
//! credentials end the run instead of failing every import one by one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mirror_core::advanced::journal::{Event, Journal};
use mirror_core::bitbucket_cloud_client::ErrorKind;
use mirror_core::config::ApplyOptions;
use mirror_core::fakes::FakeSnyk;
use mirror_core::ids::IntegrationId;
use mirror_core::ids::OrgId;
use mirror_core::import::{
    ImportContext, ImportOutcome, ImportTask, Resume, import_one, run_imports,
};
use mirror_core::ports::{ImportSpec, JobHandle, JobOutcome, SnykOrg, SnykPort, SnykTarget};
use mirror_core::{ApplyObserver, Error, Report};

struct Silent;
impl ApplyObserver for Silent {}

fn spec(repo: &str) -> ImportSpec {
    ImportSpec {
        workspace: "acme".into(),
        repository: repo.into(),
        branch: Some("main".into()),
        files: vec![],
        exclusion_globs: vec![],
    }
}

fn ctx(snyk: Arc<dyn SnykPort>, journal: &Journal) -> ImportContext {
    ImportContext {
        snyk,
        writer: journal.writer(),
        grace: Duration::ZERO,
        observer: Arc::new(Silent),
    }
}

fn task(org: &OrgId, repo: &str, resume: Resume) -> ImportTask {
    ImportTask {
        org_id: org.clone(),
        org_name: "acme".into(),
        integration_id: format!("int-bitbucket-cloud-{org}").into(),
        spec: spec(repo),
        resume,
        uuid: None,
        workspace_uuid: None,
        metadata: None,
    }
}

#[tokio::test]
async fn a_fresh_import_is_intended_posted_accepted_and_finished_in_that_order() {
    let snyk = Arc::new(FakeSnyk::new());
    let org = snyk.add_org("acme", &["bitbucket-cloud"]);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let outcome = import_one(
        &task(&org, "api", Resume::Fresh),
        &ctx(snyk.clone(), &journal),
    )
    .await
    .unwrap();
    assert!(matches!(
        &outcome,
        ImportOutcome::Ended {
            accepted: true,
            resumed: false,
            ..
        }
    ));
    assert_eq!(outcome.failure(), None);
    assert_eq!(snyk.posted().len(), 1);
    let text = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["import-intent", "import-accepted", "import-finished"]
    );
    // The task built from this journal is done: nothing to resume.
    assert!(
        journal
            .with_state(|s| ImportTask::resuming(
                org.clone(),
                "acme".into(),
                "i".into(),
                spec("api"),
                s
            ))
            .is_none()
    );
}

#[tokio::test]
async fn a_dangling_intent_whose_target_exists_is_not_posted_again() {
    let snyk = Arc::new(FakeSnyk::new());
    let org = snyk.add_org("acme", &["bitbucket-cloud"]);
    // The earlier run's post reached Snyk; its answer was never journaled.
    snyk.add_target(&org, "acme/api");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    journal
        .writer()
        .append(Event::ImportIntent {
            org_id: org.clone(),
            repository: "acme/api".into(),
        })
        .await
        .unwrap();
    let resume = journal.with_state(|s| {
        ImportTask::resuming(org.clone(), "acme".into(), "i".into(), spec("api"), s)
            .map(|t| t.resume)
    });
    assert_eq!(resume, Some(Resume::Dangling));
    let outcome = import_one(
        &task(&org, "api", Resume::Dangling),
        &ctx(snyk.clone(), &journal),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, ImportOutcome::AlreadyThere));
    assert!(
        snyk.posted().is_empty(),
        "posted again: {:?}",
        snyk.posted()
    );
    // Recorded as completed: no later run posts it.
    assert!(journal.with_state(|s| {
        s.completed
            .contains_key(&(org.clone(), "acme/api".to_owned()))
            && !s
                .imports
                .contains_key(&(org.clone(), "acme/api".to_owned()))
    }));
}

#[tokio::test]
async fn a_dangling_intent_without_a_target_is_posted_once() {
    let snyk = Arc::new(FakeSnyk::new());
    let org = snyk.add_org("acme", &["bitbucket-cloud"]);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let outcome = import_one(
        &task(&org, "api", Resume::Dangling),
        &ctx(snyk.clone(), &journal),
    )
    .await
    .unwrap();
    assert!(matches!(
        outcome,
        ImportOutcome::Ended {
            accepted: true,
            resumed: true,
            ..
        }
    ));
    assert_eq!(snyk.posted().len(), 1);
}

#[tokio::test]
async fn an_accepted_job_is_followed_not_posted() {
    let snyk = Arc::new(FakeSnyk::new());
    let org = snyk.add_org("acme", &["bitbucket-cloud"]);
    let job = snyk.import(&org, &"i".into(), &spec("api")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let outcome = import_one(
        &task(&org, "api", Resume::Accepted(job)),
        &ctx(snyk.clone(), &journal),
    )
    .await
    .unwrap();
    assert!(matches!(
        outcome,
        ImportOutcome::Ended {
            accepted: false,
            resumed: true,
            ..
        }
    ));
    assert_eq!(snyk.posted().len(), 1, "only the post made before the test");
}

/// A Snyk port whose every import post is refused for the credentials.
struct Revoked(Arc<FakeSnyk>);

#[async_trait]
impl SnykPort for Revoked {
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
    async fn integrations(
        &self,
        o: &OrgId,
    ) -> Result<std::collections::BTreeMap<String, IntegrationId>, Error> {
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
    async fn add_bitbucket_integration(&self, o: &OrgId) -> Result<Option<IntegrationId>, Error> {
        self.0.add_bitbucket_integration(o).await
    }
    async fn import(
        &self,
        _: &OrgId,
        _: &IntegrationId,
        _: &ImportSpec,
    ) -> Result<JobHandle, Error> {
        Err(Error::Fake {
            kind: ErrorKind::Auth,
            message: "401: the token was revoked".into(),
        })
    }
    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error> {
        self.0.wait(job).await
    }
    fn requests(&self) -> u64 {
        self.0.requests()
    }
}

#[tokio::test]
async fn refused_credentials_end_the_run_instead_of_failing_each_import() {
    let fake = Arc::new(FakeSnyk::new());
    let org = fake.add_org("acme", &["bitbucket-cloud"]);
    let snyk: Arc<dyn SnykPort> = Arc::new(Revoked(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let tasks: Vec<ImportTask> = (0..20)
        .map(|i| task(&org, &format!("r{i}"), Resume::Fresh))
        .collect();
    let options = ApplyOptions {
        concurrency: 2,
        per_org_concurrency: Some(2),
        ..ApplyOptions::default()
    };
    let mut report = Report::default();
    let err = run_imports(
        tasks,
        &ctx(snyk, &journal),
        &journal,
        &options,
        None,
        &mut report,
    )
    .await
    .unwrap_err();
    assert!(err.is_auth(), "{err}");
    // At most the imports in flight were tried, not all twenty.
    let refused = journal.state().imports.len();
    assert!(
        refused <= 3,
        "{refused} imports were tried with refused credentials"
    );
}
