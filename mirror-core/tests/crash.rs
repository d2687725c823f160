//! Crash test: a process running apply against the sandboxes is killed with SIGKILL at many
//! points and started again on the same state directory. In the end every repository is
//! imported exactly once and no org exists twice.
//!
//! The test binary plays both parts: the parent test hosts both sandboxes on 127.0.0.1 (they
//! outlive every child), and starts this same binary again running only `crash_child`, which
//! plans and applies against them and prints a line after each journal write. The parent kills
//! the child (SIGKILL) once it has seen a chosen number of writes; the child keeps working
//! between its print and the kill, so the kills land at varied points, between a remote call
//! and its journal entry too.

use mirror_render::Render as _;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bitbucket_cloud_client::sandbox::{Estate, SAMPLE_API_TOKEN, SAMPLE_EMAIL};
use bitbucket_cloud_client::{Auth, BitbucketClient, TransportConfig};
use mirror_core::Config;
use mirror_core::adapters::{BitbucketAdapter, SnykAdapter};
use mirror_core::advanced::apply;
use mirror_core::advanced::gather_for;
use mirror_core::advanced::journal::Journal;
use mirror_core::advanced::plan;
use snyk_client::sandbox::SAMPLE_TOKEN;
use snyk_client::{PollPolicy, SnykAuth, SnykClient};

const CHILD_ENV: &str = "MIRROR_CRASH_CHILD";

fn child_config(group: &str) -> Config {
    Config::from_toml(&format!(
        "[snyk]\ngroup_id = \"{group}\"\n[apply]\nconcurrency = 4\nper_org_concurrency = 2\nresume_grace_seconds = 1\n"
    ))
    .unwrap()
}

/// The child's part: plan and apply once; exit 0 when done.
#[test]
fn crash_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap();
    let (bb_url, snyk_url, group, state) = (
        var("BB_URL"),
        var("SNYK_URL"),
        var("GROUP_ID"),
        var("STATE_DIR"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let bitbucket = BitbucketAdapter::new(
            BitbucketClient::builder()
                .base_url(bb_url)
                .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
                .transport_config(TransportConfig::default())
                .build()
                .unwrap(),
        );
        let snyk = Arc::new(
            SnykAdapter::new(
                SnykClient::builder()
                    .api_url(snyk_url)
                    .auth(SnykAuth::token(SAMPLE_TOKEN))
                    .poll(PollPolicy {
                        first_delay: Duration::from_millis(20),
                        min_delay: Duration::from_millis(20),
                        max_delay: Duration::from_millis(100),
                        timeout: Duration::from_secs(60),
                        grace_polls: 3,
                        ..PollPolicy::default()
                    })
                    .build()
                    .unwrap(),
            )
            .with_bitbucket_credentials(SAMPLE_EMAIL, SAMPLE_API_TOKEN.into()),
        );
        let observer: mirror_core::advanced::journal::WriteObserver = Arc::new(|seq| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "journaled {seq}");
            let _ = out.flush();
        });
        let journal = Journal::open(std::path::Path::new(&state), Some(observer)).unwrap();
        let config = child_config(&group);
        let history = journal.state().history();
        let inventory = gather_for(&config, &bitbucket, snyk.as_ref(), &history)
            .await
            .unwrap();
        let p = plan(&config, &inventory, &history);
        let report = apply(&p, snyk, &journal, &config.apply, None, None)
            .await
            .unwrap();
        assert!(report.imports_failed.is_empty(), "{}", report.render());
        println!("child done");
    });
}

/// Runs the child; kills it after it reports `kill_after` journal writes. Returns whether it
/// finished on its own.
fn run_child(env: &[(&str, String)], kill_after: Option<usize>) -> bool {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut writes = 0;
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.starts_with("journaled ") {
            writes += 1;
            if Some(writes) == kill_after {
                child.kill().unwrap(); // SIGKILL
                killed = true;
                break;
            }
        }
    }
    let output = child.wait_with_output().unwrap();
    if killed {
        return false;
    }
    assert!(
        output.status.success(),
        "the child failed on its own: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

/// The parent's side: both sandboxes on 127.0.0.1 (they outlive every child) and the state
/// directory the children share.
struct Parent {
    rt: tokio::runtime::Runtime,
    bb: bitbucket_cloud_client::sandbox::Sandbox,
    snyk: snyk_client::sandbox::Sandbox,
    state: tempfile::TempDir,
}

impl Parent {
    fn start(estate: &Estate) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (bb, snyk) = rt.block_on(async {
            let bb = bitbucket_cloud_client::sandbox::Sandbox::builder()
                .estate(estate.clone())
                .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
                .start()
                .await
                .unwrap();
            let snyk = snyk_client::sandbox::Sandbox::builder()
                .token(SAMPLE_TOKEN)
                .person(
                    snyk_client::sandbox::SAMPLE_PERSON_TOKEN,
                    snyk_client::sandbox::SAMPLE_PERSON_USER,
                )
                .import_delay(Duration::from_millis(150))
                .start()
                .await
                .unwrap();
            (bb, snyk)
        });
        Self {
            rt,
            bb,
            snyk,
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// A person adds an ignore, a tag and weekly tests to every project of these repositories
    /// of `ws-0001`.
    fn triage(&self, slugs: &[&String]) {
        let person = SnykClient::builder()
            .api_url(self.snyk.api_url())
            .auth(SnykAuth::token(snyk_client::sandbox::SAMPLE_PERSON_TOKEN))
            .build()
            .unwrap();
        let mut settings = snyk_client::ProjectSettings::default();
        settings.tags = vec![("team".to_owned(), "payments".to_owned())];
        settings.test_frequency = Some("weekly".to_owned());
        let ignore =
            snyk_client::Ignore::new("SNYK-JS-LODASH-567746", "*", "not reachable", "wont-fix");
        for p in self.snyk.projects() {
            if slugs
                .iter()
                .any(|s| p.name.starts_with(&format!("ws-0001/{s}:")))
            {
                self.rt.block_on(async {
                    person.add_ignore(&p.org_id, &p.id, &ignore).await.unwrap();
                    person
                        .update_project_settings(&p.org_id, &p.id, &settings)
                        .await
                        .unwrap();
                });
            }
        }
    }

    /// What a child needs to find the sandboxes and the state directory.
    fn env(&self) -> [(&'static str, String); 4] {
        [
            ("BB_URL", self.bb.base_url()),
            ("SNYK_URL", self.snyk.api_url()),
            ("GROUP_ID", self.snyk.group_id()),
            ("STATE_DIR", self.state.path().display().to_string()),
        ]
    }
}

#[test]
fn sigkill_at_many_points_then_resume() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let estate = Estate::generate(3, 6, 11);
    let parent = Parent::start(&estate);
    let (snyk, env) = (&parent.snyk, parent.env());

    let mut kills = 0;
    let mut finished = false;
    for round in 0..80 {
        // Kill after 1, 2, 3, … 7 writes of the run, then again from 1.
        if run_child(&env, Some(1 + round % 7)) {
            finished = true;
            break;
        }
        kills += 1;
    }
    assert!(kills >= 5, "too few kills ({kills}) to mean anything");
    if !finished {
        assert!(run_child(&env, None), "the last run did not finish");
    }
    // One more run after the end has nothing to do and posts nothing.
    let posts_before: usize = snyk.import_posts().values().sum();
    assert!(run_child(&env, None));
    assert_eq!(snyk.import_posts().values().sum::<usize>(), posts_before);

    // Every importable repository was posted exactly once and has its target.
    let importable: BTreeSet<String> = estate
        .workspaces
        .iter()
        .flat_map(|w| {
            w.repositories
                .iter()
                .filter(|r| r.main_branch.is_some())
                .map(move |r| format!("{}/{}", w.slug, r.slug))
        })
        .collect();
    let posts = snyk.import_posts();
    for repo in &importable {
        assert_eq!(
            posts.get(repo),
            Some(&1),
            "{repo} posted {:?} times",
            posts.get(repo)
        );
    }
    assert_eq!(posts.len(), importable.len());
    let targets: BTreeSet<String> = snyk.targets().into_iter().map(|t| t.display_name).collect();
    assert_eq!(targets, importable);
    // No org exists twice.
    let names: Vec<String> = snyk.orgs().into_iter().map(|o| o.name).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert_eq!(names.len(), estate.workspaces.len());
    eprintln!(
        "crash test: {kills} SIGKILLs, {} repositories imported once each",
        importable.len()
    );
}

#[test]
fn sigkill_during_a_drift_round_changes_each_thing_exactly_once() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let estate = Estate::generate(2, 8, 13);
    let parent = Parent::start(&estate);
    let (bb, snyk, env) = (&parent.bb, &parent.snyk, parent.env());
    // The first mirror, uninterrupted.
    assert!(run_child(&env, None));
    let repos: Vec<String> = estate.workspaces[0]
        .repositories
        .iter()
        .filter(|r| r.main_branch.is_some() && r.parent.is_none())
        .map(|r| r.slug.clone())
        .collect();
    // A person triages the two repositories about to be renamed: their history must reach
    // the new projects once, and before the old targets are retired.
    parent.triage(&[&repos[0], &repos[1]]);
    // Two renames, two deletions, two default branches changed.
    assert!(bb.rename_repository("ws-0001", &repos[0], "renamed-a"));
    assert!(bb.rename_repository("ws-0001", &repos[1], "renamed-b"));
    assert!(bb.delete_repository("ws-0001", &repos[2]));
    assert!(bb.delete_repository("ws-0001", &repos[3]));
    assert!(bb.set_main_branch("ws-0001", &repos[4], "trunk"));
    assert!(bb.set_main_branch("ws-0001", &repos[5], "trunk"));
    let posts_before: usize = snyk.import_posts().values().sum();

    let mut kills = 0;
    let mut finished = false;
    for round in 0..60 {
        if run_child(&env, Some(1 + round % 6)) {
            finished = true;
            break;
        }
        kills += 1;
    }
    assert!(kills >= 4, "too few kills ({kills}) to mean anything");
    if !finished {
        assert!(run_child(&env, None), "the last run did not finish");
    }
    assert!(run_child(&env, None));

    let stats = snyk.stats();
    // Each renamed repository posted once under its new name, nothing else posted.
    let posts = snyk.import_posts();
    assert_eq!(posts.get("ws-0001/renamed-a"), Some(&1));
    assert_eq!(posts.get("ws-0001/renamed-b"), Some(&1));
    assert_eq!(posts.values().sum::<usize>(), posts_before + 2);
    // Four targets retired (two deleted, two old names), one project each, each deactivated
    // once; two projects moved to the new branch once each.
    assert_eq!(
        stats.route("POST /v1/org/{orgId}/project/{projectId}/deactivate"),
        4
    );
    assert_eq!(stats.route("PUT /v1/org/{orgId}/project/{projectId}"), 2);
    let projects = snyk.projects();
    for slug in [&repos[4], &repos[5]] {
        let p = projects
            .iter()
            .find(|p| p.name.starts_with(&format!("ws-0001/{slug}:")))
            .unwrap();
        assert_eq!(p.branch.as_deref(), Some("trunk"));
        assert!(p.active);
    }
    for slug in [&repos[0], &repos[1], &repos[2], &repos[3]] {
        assert!(
            projects
                .iter()
                .filter(|p| p.name.starts_with(&format!("ws-0001/{slug}:")))
                .all(|p| !p.active),
            "{slug} still has an active project"
        );
    }
    // Each carried ignore and tag exists once on the new projects.
    for slug in ["renamed-a", "renamed-b"] {
        let p = projects
            .iter()
            .find(|p| p.name.starts_with(&format!("ws-0001/{slug}:")))
            .unwrap();
        assert_eq!(p.ignores.len(), 1, "{slug}: {:?}", p.ignores);
        assert_eq!(
            p.settings.tags,
            vec![("team".to_owned(), "payments".to_owned())],
            "{slug}"
        );
        assert_eq!(p.settings.test_frequency.as_deref(), Some("weekly"));
    }
    eprintln!("drift crash test: {kills} SIGKILLs, each change made once");
}
