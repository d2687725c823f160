//! Faults end to end: a whole sync (both clients with their default retry policy and timeouts,
//! the adapters, plan, apply and the journal on disk) against both sandboxes while they
//! misbehave, on tokio's paused clock.
//!
//! Every scenario ends the same way: each repository is imported exactly once or reported as
//! failed with its reason; no org exists twice; no import was posted twice; the exit code says
//! what happened; and no configured secret appears in the logs, the report, the errors or any
//! file written. A second sync once the fault has passed then leaves every repository imported
//! exactly once.

use mirror_render::Render as _;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::sandbox::Fault;
use bitbucket_cloud_client::sandbox::{self as bb, Estate};
use bitbucket_cloud_client::{Auth, BitbucketClient};
use mirror_core::adapters::{BitbucketAdapter, SnykAdapter};
use mirror_core::advanced::journal::Journal;
use mirror_core::ports::SnykPort;
use mirror_core::{Action, Config, Report};

/// The binary's exit codes (README, "Exit codes"), as `mirror-cli/src/exit.rs` derives them
/// from a report or an error's kind; the binary's own tests check its mapping end to end.
mod exit {
    use mirror_core::Report;
    use mirror_core::bitbucket_cloud_client::ErrorKind;

    pub(crate) const OK: u8 = 0;
    pub(crate) const FAILURES: u8 = 1;

    pub(crate) fn for_report(report: &Report) -> u8 {
        match (report.interrupted, report.has_failures()) {
            (true, _) => 4,
            (false, true) => FAILURES,
            (false, false) => OK,
        }
    }

    pub(crate) fn for_error(kind: ErrorKind) -> u8 {
        match kind {
            ErrorKind::Auth => 3,
            ErrorKind::Config | ErrorKind::NotFound | ErrorKind::Gone => 2,
            _ => FAILURES,
        }
    }
}
use snyk_client::sandbox as snyk;
use snyk_client::{SnykAuth, SnykClient};

const EMAIL: &str = "mirror@example.com";
const BB_TOKEN: &str = "bb-api-token-7f3a9c1e5d2b";
const SNYK_TOKEN: &str = "snyk-token-2b8e6f4a0c9d";
const BB_CONSUMER: (&str, &str) = ("bb-consumer-key", "bb-consumer-secret-51c7e0a2");
const SNYK_CLIENT: (&str, &str) = ("snyk-client-id", "snyk-client-secret-9d04b6f3");

/// The secrets no output may contain (the sandboxes' OAuth access tokens are checked by their
/// prefixes).
const SECRETS: [&str; 6] = [
    BB_TOKEN,
    SNYK_TOKEN,
    BB_CONSUMER.1,
    SNYK_CLIENT.1,
    "sbx-oauth-",
    "sbx-snyk-oauth-",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Credentials {
    Tokens,
    OAuth,
}

/// Captured log lines (every level, trace included), shared with the subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

/// How one sync ended, as the binary would report it.
struct Ending {
    code: u8,
    report: Option<Report>,
    /// Repositories the plan held back, with the conflict that says why.
    held: BTreeSet<String>,
    /// The error's display and debug forms, when the sync stopped on one.
    error: Option<String>,
}

impl Ending {
    /// What the report names as uncertain (`workspace/repository`, or `workspace W`), with why.
    fn uncertain(&self) -> BTreeMap<String, String> {
        self.report
            .iter()
            .flat_map(|r| &r.uncertain)
            .map(|u| (u.subject.to_lowercase(), u.why.clone()))
            .collect()
    }

    fn failed(&self) -> BTreeMap<String, String> {
        self.report
            .iter()
            .flat_map(|r| &r.imports_failed)
            .map(|f| (f.repository.to_lowercase(), f.message.clone()))
            .collect()
    }
}

struct World {
    bb: bb::Sandbox,
    snyk: snyk::Sandbox,
    state: tempfile::TempDir,
    config: Config,
    credentials: Credentials,
    logs: Logs,
    _log_guard: tracing::subscriber::DefaultGuard,
    /// `workspace/repository`, lowercased, of every repository a sync should import.
    expected: BTreeSet<String>,
    endings: std::cell::RefCell<Vec<String>>,
}

impl World {
    async fn start(estate: Estate, snyk: snyk::SandboxBuilder, credentials: Credentials) -> Self {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let log_guard = tracing::subscriber::set_default(subscriber);
        let expected = estate
            .workspaces
            .iter()
            .flat_map(|w| {
                w.repositories
                    .iter()
                    .filter(|r| r.main_branch.is_some())
                    .map(move |r| format!("{}/{}", w.slug, r.slug).to_lowercase())
            })
            .collect();
        let bb = bb::Sandbox::builder()
            .estate(estate)
            .api_token(EMAIL, BB_TOKEN)
            .oauth_consumer(BB_CONSUMER.0, BB_CONSUMER.1, Duration::from_secs(20))
            .start()
            .await
            .unwrap();
        let snyk = snyk
            .token(SNYK_TOKEN)
            .oauth_client(SNYK_CLIENT.0, SNYK_CLIENT.1, Duration::from_secs(20))
            .import_delay(Duration::from_secs(5))
            .start()
            .await
            .unwrap();
        let config = Config::from_toml(&format!(
            "[snyk]\ngroup_id = \"{}\"\n[apply]\nresume_grace_seconds = 10\n",
            snyk.group_id()
        ))
        .unwrap();
        Self {
            bb,
            snyk,
            state: tempfile::tempdir().unwrap(),
            config,
            credentials,
            logs,
            _log_guard: log_guard,
            expected,
            endings: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Two workspaces of 150 repositories (two pages each) and the default Snyk sandbox.
    async fn standard() -> Self {
        Self::start(
            Estate::generate(2, 150, 21),
            snyk::Sandbox::builder(),
            Credentials::Tokens,
        )
        .await
    }

    /// One sync, as `bb-snyk-mirror sync` runs it, with fresh clients.
    async fn sync(&self) -> Ending {
        let bb_auth = match self.credentials {
            Credentials::Tokens => Auth::api_token(EMAIL, BB_TOKEN),
            Credentials::OAuth => Auth::oauth_client_credentials(BB_CONSUMER.0, BB_CONSUMER.1),
        };
        let snyk_auth = match self.credentials {
            Credentials::Tokens => SnykAuth::token(SNYK_TOKEN),
            Credentials::OAuth => SnykAuth::oauth_client_credentials(SNYK_CLIENT.0, SNYK_CLIENT.1),
        };
        let bitbucket = BitbucketAdapter::new(
            BitbucketClient::builder()
                .base_url(self.bb.base_url())
                .token_url(self.bb.token_url())
                .auth(bb_auth)
                .build()
                .unwrap(),
        );
        let snyk: Arc<dyn SnykPort> = Arc::new(
            SnykAdapter::new(
                SnykClient::builder()
                    .api_url(self.snyk.api_url())
                    .auth(snyk_auth)
                    .build()
                    .unwrap(),
            )
            .with_bitbucket_credentials(EMAIL, BB_TOKEN.into()),
        );
        let mut held = BTreeSet::new();
        let result = async {
            let journal = Journal::open(self.state.path(), None)?;
            let history = journal.state().history();
            let inventory = mirror_core::advanced::gather_for(
                &self.config,
                &bitbucket,
                snyk.as_ref(),
                &history,
            )
            .await?;
            let plan = mirror_core::advanced::plan(&self.config, &inventory, &history);
            for action in &plan.actions {
                if let Action::Conflict { repositories, .. } = action {
                    held.extend(repositories.iter().map(|r| r.to_lowercase()));
                }
            }
            mirror_core::advanced::apply(
                &plan,
                snyk.clone(),
                &journal,
                &self.config.apply,
                None,
                None,
            )
            .await
        }
        .await;
        let ending = match result {
            Ok(report) => Ending {
                code: exit::for_report(&report),
                report: Some(report),
                held,
                error: None,
            },
            Err(e) => Ending {
                code: exit::for_error(e.kind()),
                report: None,
                held,
                error: Some(format!("{e}\n{e:?}")),
            },
        };
        if let Some(r) = &ending.report {
            self.endings.borrow_mut().push(format!(
                "{}\n{r:?}\n{}",
                r.render(),
                serde_json::to_string(r).unwrap()
            ));
        }
        if let Some(e) = &ending.error {
            self.endings.borrow_mut().push(e.clone());
        }
        ending
    }

    /// Faults met so far on both sandboxes (a slow answer the client gave up on is not
    /// counted: its connection was closed before it was recorded).
    fn faults(&self) -> u64 {
        self.bb.stats().faults + self.snyk.stats().faults
    }

    /// Injected faults not met yet.
    fn pending_faults(&self) -> usize {
        self.bb.server().pending_faults() + self.snyk.server().pending_faults()
    }

    /// What is imported now: the targets Snyk holds, as `workspace/repository`.
    fn imported(&self) -> BTreeSet<String> {
        self.snyk
            .targets()
            .iter()
            .map(|t| t.display_name.to_lowercase())
            .collect()
    }

    /// The rules every scenario keeps, after every sync.
    fn assert_safe(&self, ending: &Ending) {
        // No import posted twice, no org twice.
        let twice: Vec<_> = self
            .snyk
            .import_posts()
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(twice.is_empty(), "imports posted twice: {twice:?}");
        let mut names = BTreeSet::new();
        for org in self.snyk.orgs() {
            assert!(
                names.insert(org.name.clone()),
                "org {} exists twice",
                org.name
            );
        }
        // Every repository is imported, or reported failed with its reason, or the whole sync
        // stopped on an error that says why.
        let imported = self.imported();
        let failed = ending.failed();
        let uncertain = ending.uncertain();
        let named_uncertain = |repo: &str| {
            let workspace = repo.split('/').next().unwrap_or(repo);
            uncertain.contains_key(repo)
                || uncertain.contains_key(&format!("workspace {workspace}"))
        };
        for (repo, why) in &failed {
            assert!(!why.trim().is_empty(), "{repo} failed without a reason");
        }
        match &ending.error {
            Some(e) => assert!(!e.trim().is_empty()),
            None => {
                let missing: Vec<_> = self
                    .expected
                    .iter()
                    .filter(|r| {
                        !imported.contains(*r)
                            && !failed.contains_key(*r)
                            && !ending.held.contains(*r)
                            && !named_uncertain(r)
                    })
                    .collect();
                assert!(
                    missing.is_empty(),
                    "neither imported nor reported: {missing:?}"
                );
            }
        }
        // The exit code says what happened.
        let expected_code = match (&ending.error, &ending.report) {
            (Some(_), _) => ending.code,
            (None, Some(r)) if r.has_failures() => exit::FAILURES,
            _ => exit::OK,
        };
        assert_eq!(ending.code, expected_code);
        assert!(
            ending.error.is_some()
                || ending.code == exit::OK
                || !failed.is_empty()
                || !uncertain.is_empty()
                || {
                    ending
                        .report
                        .as_ref()
                        .is_some_and(|r| !r.conflicts.is_empty())
                },
            "exit {} without a failure to show for it",
            ending.code
        );
        self.assert_no_secret();
    }

    /// No secret in the logs, the reports and errors, or any file of the state directory.
    fn assert_no_secret(&self) {
        let mut texts = vec![("logs".to_owned(), self.logs.text())];
        for (i, e) in self.endings.borrow().iter().enumerate() {
            texts.push((format!("ending {i}"), e.clone()));
        }
        files(self.state.path(), &mut texts);
        for (what, text) in &texts {
            for secret in SECRETS {
                assert!(!text.contains(secret), "a secret ({secret}) is in {what}");
            }
        }
    }

    /// After the fault: a sync imports whatever is left, and the estate is complete, each
    /// repository imported exactly once.
    async fn assert_recovers(&self) {
        let ending = self.sync().await;
        self.assert_safe(&ending);
        assert_eq!(ending.code, exit::OK, "{:?}", ending.error);
        assert_eq!(self.imported(), self.expected);
        let posts = self.snyk.import_posts();
        assert!(posts.values().all(|n| *n == 1), "{posts:?}");
        assert_eq!(posts.len(), self.expected.len());
    }
}

fn files(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn storms_of_429_with_retry_after_are_waited_out() {
    let w = World::standard().await;
    w.bb.server()
        .inject_on("/2.0/repositories/", Fault::Throttled(Some(30)), 5);
    w.snyk
        .server()
        .inject_on("/v1/org/", Fault::Throttled(Some(5)), 5);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::OK, "{:?}", ending.error);
    assert_eq!(w.imported(), w.expected);
    assert_eq!(w.snyk.stats().status(429) + w.bb.stats().status(429), 10);
    w.assert_recovers().await;
    assert_eq!(w.faults(), 10);
}

#[tokio::test(start_paused = true)]
async fn storms_of_429_without_retry_after_back_off() {
    let w = World::standard().await;
    w.bb.server().inject_on("/2.0/", Fault::Throttled(None), 5);
    w.snyk.server().inject(Fault::Throttled(None), 3);
    w.snyk
        .server()
        .inject_on("/v1/org/", Fault::Throttled(None), 3);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    w.assert_recovers().await;
    assert_eq!(w.faults(), 11);
}

#[tokio::test(start_paused = true)]
async fn bursts_of_500_502_and_503() {
    // One org exists already, so that its targets are read (REST) in the first sync.
    let w = World::start(
        Estate::generate(2, 150, 21),
        snyk::Sandbox::builder().org("ws-0001", &["bitbucket-cloud"]),
        Credentials::Tokens,
    )
    .await;
    for status in [500, 502, 503] {
        w.bb.server()
            .inject_on("/2.0/repositories/", Fault::Status(status), 1);
        w.snyk.server().inject_on("/v1/", Fault::Status(status), 1);
        w.snyk
            .server()
            .inject_on("/rest/", Fault::Status(status), 1);
    }
    let ending = w.sync().await;
    w.assert_safe(&ending);
    // An import POST answered 500 or 502 may have been carried out: it is not sent again in
    // the same run, it is reported, and the next run checks for it before posting.
    for (repo, why) in ending.failed() {
        assert!(
            why.contains("500") || why.contains("502") || why.contains("503"),
            "{repo}: {why}"
        );
    }
    w.assert_recovers().await;
    assert_eq!(w.faults(), 9);
}

#[tokio::test(start_paused = true)]
async fn connections_cut_mid_body() {
    let w = World::standard().await;
    w.bb.server()
        .inject_on("/2.0/repositories/", Fault::DropMidBody, 2);
    // Polls, integrations, and the answers of imports Snyk has already accepted.
    w.snyk.server().inject_on("/v1/org/", Fault::DropMidBody, 3);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    w.assert_recovers().await;
    assert_eq!(w.faults(), 5);
}

#[tokio::test(start_paused = true)]
async fn answers_slower_than_the_timeout() {
    let w = World::standard().await;
    // The default request timeout is 60 s.
    w.bb.server().inject_on(
        "/2.0/repositories/",
        Fault::Delay(Duration::from_secs(90)),
        1,
    );
    w.snyk
        .server()
        .inject_on("/v1/org/", Fault::Delay(Duration::from_secs(90)), 3);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    w.assert_recovers().await;
    assert_eq!(w.pending_faults(), 0);
    let logs = w.logs.text();
    assert!(
        logs.contains("timed out") || logs.contains("timeout"),
        "no timeout in the logs"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_json() {
    let w = World::standard().await;
    // A garbled answer to a read is asked again; to an import, it is reported.
    w.bb.server()
        .inject_on("/2.0/repositories/", Fault::Malformed, 2);
    w.snyk.server().inject_on("/v1/org/", Fault::Malformed, 3);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    w.assert_recovers().await;
    assert_eq!(w.faults(), 5);

    // Garbled every time: that workspace is named uncertain with why, nothing of it is
    // created or imported from half a listing, and the other workspace is mirrored.
    let w = World::standard().await;
    w.bb.server()
        .inject_on("/2.0/repositories/ws-0001", Fault::Malformed, 6);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::FAILURES);
    let why = ending
        .uncertain()
        .remove("workspace ws-0001")
        .unwrap_or_default();
    assert!(why.contains("not valid JSON"), "{:?}", ending.uncertain());
    let orgs: Vec<String> = w.snyk.orgs().into_iter().map(|o| o.name).collect();
    assert_eq!(
        orgs,
        ["ws-0002"],
        "nothing may be created from half a listing"
    );
    assert!(w.imported().iter().all(|r| r.starts_with("ws-0002/")));
    let of_ws2: BTreeSet<String> = w
        .expected
        .iter()
        .filter(|r| r.starts_with("ws-0002/"))
        .cloned()
        .collect();
    assert_eq!(w.imported(), of_ws2);
    w.assert_recovers().await;
    assert_eq!(w.faults(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_page_without_next_in_the_middle_of_a_listing() {
    let w = World::standard().await;
    // Once: the page is asked for again and nothing is missed.
    w.bb.server()
        .inject_on("/2.0/repositories/ws-0001", Fault::NoNext, 1);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::OK, "{:?}", ending.error);
    assert_eq!(w.imported(), w.expected);

    // Twice in a row: that workspace is not taken as 100 repositories for 150; it is named
    // uncertain, nothing of it is created, and the other workspace is mirrored.
    let w = World::standard().await;
    w.bb.server()
        .inject_on("/2.0/repositories/ws-0002", Fault::NoNext, 2);
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::FAILURES);
    let why = ending
        .uncertain()
        .remove("workspace ws-0002")
        .unwrap_or_default();
    assert!(why.contains("ended after 100 of 150"), "{why}");
    let orgs: Vec<String> = w.snyk.orgs().into_iter().map(|o| o.name).collect();
    assert_eq!(orgs, ["ws-0001"]);
    assert!(w.imported().iter().all(|r| r.starts_with("ws-0001/")));
    w.assert_recovers().await;
    assert_eq!(w.faults(), 2);
}

#[tokio::test(start_paused = true)]
async fn oauth_tokens_expire_mid_run_and_are_renewed() {
    let w = World::start(
        Estate::generate(2, 150, 21),
        snyk::Sandbox::builder(),
        Credentials::OAuth,
    )
    .await;
    // Bitbucket answers in 15 s, so its two pages a workspace outlast a token of 20 s.
    w.bb.server().set_latency(Duration::from_secs(15));
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::OK, "{:?}", ending.error);
    assert_eq!(w.imported(), w.expected);
    // Tokens last 20 s; the run lasts minutes: both sides renewed theirs on the way.
    assert!(w.snyk.stats().route("POST /oauth2/token") > 2);
    assert!(w.bb.issued_tokens() >= 2, "{}", w.bb.issued_tokens());
    assert_eq!(w.bb.stats().status(401) + w.snyk.stats().status(401), 0);

    // Tokens revoked in the middle of a run: the 401 renews the token and the run goes on.
    let w = World::start(
        Estate::generate(2, 150, 21),
        snyk::Sandbox::builder(),
        Credentials::OAuth,
    )
    .await;
    // Tokens last 20 s and are renewed 10 s before they end: revoke halfway between two
    // renewals, so that the token in use is one issued before.
    let (ending, ()) = tokio::join!(w.sync(), async {
        tokio::time::sleep(Duration::from_secs(35)).await;
        w.snyk.revoke_oauth_tokens();
    });
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::OK, "{:?}", ending.error);
    assert!(
        w.snyk.stats().status(401) >= 1,
        "the revoked token was never refused"
    );
    assert_eq!(w.imported(), w.expected);
}

#[tokio::test(start_paused = true)]
async fn one_org_reaches_the_project_cap() {
    let mut estate = Estate::generate(2, 60, 5);
    estate.workspaces[1].repositories.truncate(10);
    let w = World::start(
        estate,
        snyk::Sandbox::builder().project_cap(40),
        Credentials::Tokens,
    )
    .await;
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::FAILURES);
    let failed = ending.failed();
    assert!(!failed.is_empty());
    assert!(
        failed.keys().all(|r| r.starts_with("ws-0001/")),
        "{failed:?}"
    );
    assert!(
        failed
            .values()
            .all(|m| m.contains("40 of the maximum 40 projects")),
        "{failed:?}"
    );
    // The other org is complete; the capped one holds exactly its cap.
    let imported = w.imported();
    assert!(
        w.expected
            .iter()
            .filter(|r| r.starts_with("ws-0002/"))
            .all(|r| imported.contains(r))
    );
    assert_eq!(
        imported
            .iter()
            .filter(|r| r.starts_with("ws-0001/"))
            .count(),
        40
    );
    // Once refused, the org's other imports were not posted to be refused one by one: only
    // those already in flight beside the first refusal (at most `concurrency`) met it.
    let refused = w.snyk.stats().status(400);
    let in_flight = mirror_core::config::ApplyOptions::default().concurrency as u64;
    assert!(
        refused <= in_flight,
        "{refused} imports were posted into a full org"
    );

    // The next sync remembers the cap: nothing is posted into the full org, and it says so.
    let posts_before = w.snyk.import_posts();
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::FAILURES);
    assert_eq!(w.snyk.import_posts(), posts_before);
    let report = ending.report.unwrap();
    assert!(
        report
            .conflicts
            .iter()
            .any(|c| c.to_string().contains("ws-0001"))
            || report.skipped.keys().any(|k| k.contains("cap")),
        "{report:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_location_on_another_host_is_polled_on_the_configured_one() {
    // The Snyk sandbox answers every import with `Location: http://localhost:<port>/api/v1/…`.
    let w = World::standard().await;
    let ending = w.sync().await;
    w.assert_safe(&ending);
    assert_eq!(ending.code, exit::OK);
    let hosts = w.snyk.stats().per_host;
    assert!(
        hosts.keys().all(|h| h.starts_with("127.0.0.1:")),
        "a request went to another host name: {hosts:?}"
    );
    assert!(
        w.snyk
            .stats()
            .route("GET /v1/org/{orgId}/integrations/{integrationId}/import/{jobId}")
            > 0
    );
}
