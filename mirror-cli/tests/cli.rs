//! The binary against both sandboxes: every command, every exit code, the snyk-api-import
//! flow end to end, and no secret in any output or file.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use bitbucket_cloud_client::sandbox::{self as bb, Estate, SandboxWorkspace};
use mirror_core::compat;
use predicates::prelude::*;
use snyk_client::sandbox as snyk;

const BB_TOKEN: &str = bb::SAMPLE_API_TOKEN;
const SNYK_TOKEN: &str = snyk::SAMPLE_TOKEN;

struct World {
    bb: bb::Sandbox,
    snyk: snyk::Sandbox,
    state: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl World {
    fn new() -> Self {
        Self::with(Estate::sample(), snyk::Sandbox::sample_builder())
    }

    fn with(estate: Estate, snyk_builder: snyk::SandboxBuilder) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (bb, snyk) = rt.block_on(async {
            let mut b = bb::Sandbox::builder()
                .estate(estate.clone())
                .api_token(bb::SAMPLE_EMAIL, BB_TOKEN);
            for w in &estate.workspaces {
                b = b.access_token(&format!("sandbox-access-token-{}", w.slug), &w.slug);
            }
            (
                b.start().await.unwrap(),
                snyk_builder
                    .import_delay(Duration::from_millis(100))
                    .start()
                    .await
                    .unwrap(),
            )
        });
        Self {
            bb,
            snyk,
            state: tempfile::tempdir().unwrap(),
            rt,
        }
    }

    /// The environment every run gets: both sandboxes, sample credentials, the state directory.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BITBUCKET_CLOUD_API_URL", self.bb.base_url()),
            ("BITBUCKET_CLOUD_EMAIL", bb::SAMPLE_EMAIL.to_owned()),
            ("BITBUCKET_CLOUD_API_TOKEN", BB_TOKEN.to_owned()),
            ("SNYK_API", self.snyk.api_url()),
            ("SNYK_TOKEN", SNYK_TOKEN.to_owned()),
            ("SNYK_GROUP_ID", self.snyk.group_id()),
            ("SNYK_LOG_PATH", self.state.path().display().to_string()),
        ]
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("bb-snyk-mirror").unwrap();
        c.env_clear()
            .current_dir(self.state.path())
            .envs(self.env())
            .timeout(Duration::from_secs(120));
        c
    }

    /// The binary as a plain process with the same environment, for tests that signal it.
    fn process(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("bb-snyk-mirror"));
        c.env_clear()
            .current_dir(self.state.path())
            .envs(self.env());
        c
    }

    /// Every file the runs wrote, as text.
    fn files_text(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.state.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                all.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
        all
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_no_secret(texts: &[&str]) {
    for t in texts {
        for secret in [
            BB_TOKEN,
            SNYK_TOKEN,
            "wrong-snyk-token-123",
            "wrong-bb-token-456",
        ] {
            assert!(!t.contains(secret), "a secret leaked: {secret}");
        }
    }
}

#[test]
fn demo_mirrors_the_sample_and_a_second_run_has_nothing_to_do() {
    let out = Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .env_clear()
        .arg("demo")
        .timeout(Duration::from_secs(120))
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    assert!(text.contains("3 created"), "{text}");
    assert!(
        text.contains("11 accepted, 11 completed, 0 failed"),
        "{text}"
    );
    assert!(
        text.contains("Second run, right after: 0 orgs to create, 0 repositories to import"),
        "{text}"
    );
    // The drift round: each change named, followed, and nothing left after.
    for line in [
        "~ rename acme-platform/web-frontend → acme-platform/web-app",
        "- retire acme-data/ml-models (deleted in Bitbucket; deactivate)",
        "⇄ branch acme-mobile/android-app main → develop",
        "+ import acme-mobile/wear-app (main) into acme-mobile",
        "And right after, both sides read again: Snyk equals Bitbucket for 11 repositories in 3 orgs; 1 difference, all explained.",
        // The real-time act: serve, a webhook, a repository created, its import.
        "and acme-mobile has its webhook.",
        "acme-mobile/watch-face was created in Bitbucket; the signed repo:created delivery was queued, and Snyk received its import",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn plan_apply_sync_and_exit_zero() {
    let w = World::new();
    let plan_file = w.state.path().join("plan.json");
    w.cmd()
        .args(["plan", "--out"])
        .arg(&plan_file)
        .assert()
        .success()
        .stdout(predicate::str::contains("+ create org acme-platform"))
        .stdout(predicate::str::contains(
            "= skip acme-platform/empty-sandbox: empty repository",
        ));
    assert!(w.snyk.orgs().is_empty(), "plan changed nothing");
    let applied = w
        .cmd()
        .args(["apply", "--plan"])
        .arg(&plan_file)
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(stdout(&applied).contains("11 accepted, 11 completed, 0 failed"));
    let json = w
        .cmd()
        .args(["sync", "--output", "json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let doc: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(doc["summary"]["imports"], 0);
    assert_eq!(doc["summary"]["orgs_to_create"], 0);
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(w.snyk.orgs().len(), 3);
    assert_no_secret(&[
        &stdout(&applied),
        &String::from_utf8_lossy(&applied.stderr),
        &w.files_text(),
    ]);
}

#[test]
fn a_failed_import_exits_one_and_names_it() {
    let w = World::with(
        Estate::sample(),
        snyk::Sandbox::sample_builder().failing_repository("acme-data/ml-models"),
    );
    let out = w.cmd().arg("sync").assert().code(1).get_output().clone();
    let text = stdout(&out);
    assert!(
        text.contains("x acme-data/ml-models into acme-data"),
        "{text}"
    );
    assert!(text.contains("10 completed, 1 failed"), "{text}");
}

#[test]
fn usage_and_configuration_errors_exit_two_and_change_nothing() {
    let w = World::new();
    w.cmd()
        .env_remove("SNYK_TOKEN")
        .arg("sync")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SNYK_TOKEN"));
    w.cmd()
        .env_remove("BITBUCKET_CLOUD_API_TOKEN")
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("BITBUCKET_CLOUD_API_TOKEN"));
    w.cmd()
        .env("SNYK_REGION", "SNYK-MARS-01")
        .env_remove("SNYK_API")
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SNYK-EU-01"));
    std::fs::write(
        w.state.path().join("bb-snyk-mirror.toml"),
        "[source]\nskip_fork = true\n",
    )
    .unwrap();
    w.cmd()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("skip_fork").and(predicate::str::contains("line 2")));
    std::fs::remove_file(w.state.path().join("bb-snyk-mirror.toml")).unwrap();
    w.cmd()
        .args(["plan", "--no-such-flag"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-such-flag"));
    w.cmd()
        .env("BITBUCKET_CLOUD_WORKSPACES", "no-such-ws")
        .arg("sync")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`no-such-ws` does not exist"));
    std::fs::write(
        w.state.path().join("bad-plan.json"),
        "{\"schema_version\": 7}",
    )
    .unwrap();
    w.cmd()
        .args(["apply", "--plan", "bad-plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("make a new plan"));
    assert!(w.snyk.orgs().is_empty());
    assert_eq!(w.snyk.stats().route("POST /v1/org"), 0);
}

#[test]
fn rejected_credentials_exit_three_and_change_nothing() {
    let w = World::new();
    let out = w
        .cmd()
        .env("SNYK_TOKEN", "wrong-snyk-token-123")
        .arg("sync")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("Snyk refused the token"))
        .get_output()
        .clone();
    let bad_bb = w
        .cmd()
        .env("BITBUCKET_CLOUD_API_TOKEN", "wrong-bb-token-456")
        .arg("plan")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("Atlassian account e-mail"))
        .get_output()
        .clone();
    w.cmd()
        .env("SNYK_TOKEN", "wrong-snyk-token-123")
        .arg("doctor")
        .assert()
        .code(3);
    assert!(w.snyk.orgs().is_empty());
    assert_no_secret(&[
        &String::from_utf8_lossy(&out.stderr),
        &String::from_utf8_lossy(&bad_bb.stderr),
        &w.files_text(),
    ]);
}

#[test]
fn an_interrupted_sync_exits_four_and_resumes() {
    let w = World::with(Estate::sample(), snyk::Sandbox::sample_builder());
    // Slow answers keep the run going long enough to interrupt it.
    w.snyk.server().set_latency(Duration::from_millis(400));
    let mut cmd = w.process();
    cmd.env("CONCURRENT_IMPORTS", "2")
        .arg("sync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    // Wait until the first org exists, then press Ctrl-C.
    let started = std::time::Instant::now();
    while w.snyk.orgs().is_empty() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(stdout(&out).contains("resume"), "{}", stdout(&out));
    // Resuming finishes the job without posting anything twice.
    w.snyk.server().set_latency(Duration::ZERO);
    w.cmd().arg("sync").assert().code(0);
    assert!(
        w.snyk.import_posts().values().all(|n| *n == 1),
        "{:?}",
        w.snyk.import_posts()
    );
    assert_eq!(w.snyk.import_posts().len(), 11);
}

#[test]
fn doctor_reports_credentials_scopes_and_group() {
    let w = World::new();
    w.cmd()
        .arg("doctor")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("atlassian-api-token"))
        .stdout(predicate::str::contains(
            "scopes granted: read:user:bitbucket",
        ))
        .stdout(predicate::str::contains("3 workspaces visible"))
        .stdout(predicate::str::contains("All checks passed."));
    // As JSON: typed checks, not rendered lines.
    let out = w
        .cmd()
        .args(["doctor", "--output", "json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let checks = doc["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["section"] == "bitbucket"
            && c["status"] == "ok"
            && c["message"]
                .as_str()
                .unwrap()
                .starts_with("3 workspaces visible")),
        "{doc}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["section"] == "snyk" && c["status"] == "ok"),
        "{doc}"
    );
    assert!(
        checks
            .iter()
            .all(|c| !c["message"].as_str().unwrap().starts_with(' ')),
        "{doc}"
    );
    // An access token cannot list workspaces: doctor says what to set.
    w.cmd()
        .env_remove("BITBUCKET_CLOUD_EMAIL")
        .env(
            "BITBUCKET_CLOUD_API_TOKEN",
            "sandbox-access-token-acme-data",
        )
        .arg("doctor")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("BITBUCKET_CLOUD_WORKSPACES"));
}

#[test]
fn an_api_token_without_email_is_sent_as_an_access_token() {
    let w = World::with(
        Estate::sample(),
        // As in real Snyk, a new org has no Bitbucket integration until one is added.
        snyk::Sandbox::sample_builder().default_integrations(&[]),
    );
    let access = |c: &mut Command| {
        c.env_remove("BITBUCKET_CLOUD_EMAIL")
            .env(
                "BITBUCKET_CLOUD_API_TOKEN",
                "sandbox-access-token-acme-data",
            )
            .env("BITBUCKET_CLOUD_WORKSPACES", "acme-data");
    };
    // An access token is no Atlassian API token: Snyk has no credentials for the new org's
    // integration, so the plan holds the org back and says what to set.
    let mut plan = w.cmd();
    access(&mut plan);
    plan.arg("plan")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("! conflict acme-data"))
        .stdout(predicate::str::contains("SNYK_BITBUCKET_API_TOKEN"));
    assert!(w.bb.stats().per_credential.contains_key("access-token#2"));
    let mut sync = w.cmd();
    access(&mut sync);
    sync.arg("sync").assert().code(1);
    assert!(w.snyk.orgs().is_empty());
    assert!(w.snyk.import_posts().is_empty());
    // With Snyk-side credentials the org is created, gets its integration, and imports.
    let mut sync = w.cmd();
    access(&mut sync);
    sync.env("SNYK_BITBUCKET_EMAIL", "bot@example.com")
        .env("SNYK_BITBUCKET_API_TOKEN", "snyk-side-bb-token-789")
        .arg("sync")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("integrations 1 added (acme-data)"));
    let org = &w.snyk.orgs()[0];
    let integration = &org.integrations["bitbucket-cloud"];
    assert_eq!(
        w.snyk.integration_email(integration).as_deref(),
        Some("bot@example.com")
    );
    assert!(
        w.snyk
            .integration_token_is(integration, "snyk-side-bb-token-789")
    );
    assert_eq!(w.snyk.import_posts().len(), 3);
    assert!(!w.files_text().contains("snyk-side-bb-token-789"));
}

#[test]
fn completions_and_help() {
    Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("bb-snyk-mirror"));
    Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("4  interrupted"));
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    compat::read_json(path).unwrap()
}

#[test]
fn the_snyk_api_import_flow_end_to_end() {
    let mut estate = Estate::sample();
    estate.workspaces.push(SandboxWorkspace {
        slug: "acme-empty".into(),
        name: "Empty".into(),
        uuid: "{e}".into(),
        projects: vec![],
        repositories: vec![],
    });
    let w = World::with(estate, snyk::Sandbox::sample_builder());
    let group = w.snyk.group_id();
    let dir = w.state.path();

    orgs_data_step(&w, &group, dir);
    let created = orgs_create_step(&w, &group, dir);
    let design_id = import_data_step(&w, dir);
    import_step(&w, dir, &created);
    list_imported_step(&w, &group, dir, &design_id);
    // Unknown flags are refused with a hint.
    w.cmd()
        .args(["import", "--fille=x.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--file"));
    assert_no_secret(&[&w.files_text()]);
    drop(w.rt);
}

/// Step 1, orgs:data; `--skipEmptyOrgs=false` is a real false, `--skipEmptyOrg` a real true.
fn orgs_data_step(w: &World, group: &str, dir: &Path) {
    w.cmd()
        .args([
            "orgs:data",
            "--source=bitbucket-cloud",
            &format!("--groupId={group}"),
            "--skipEmptyOrgs=false",
        ])
        .assert()
        .code(0);
    let data: compat::OrgsData = read(&dir.join(compat::orgs_data_file(group)));
    assert_eq!(data.orgs.len(), 4);
    w.cmd()
        .args([
            "orgs:data",
            "--source=bitbucket-cloud",
            "--group-id",
            group,
            "--skipEmptyOrg",
        ])
        .assert()
        .code(0);
    let data: compat::OrgsData = read(&dir.join(compat::orgs_data_file(group)));
    assert_eq!(
        data.orgs
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["acme-data", "acme-mobile", "acme-platform"]
    );
    w.cmd()
        .args(["orgs:data", "--source=github"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bitbucket-cloud"));
}

/// Step 2, orgs:create, twice: the second run creates no duplicate. The orgs created.
fn orgs_create_step(w: &World, group: &str, dir: &Path) -> compat::CreatedOrgs {
    let orgs_file = dir.join(compat::orgs_data_file(group));
    w.cmd()
        .arg("orgs:create")
        .arg(format!("--file={}", orgs_file.display()))
        .assert()
        .code(0);
    // Each org was created through the journal: intent before, the org after (a crash between
    // them adopts the org next time instead of creating a second).
    let journaled = mirror_core::advanced::journal::read_state(dir)
        .unwrap()
        .orgs;
    let in_snyk: std::collections::BTreeMap<String, String> =
        w.snyk.orgs().into_iter().map(|o| (o.name, o.id)).collect();
    assert_eq!(journaled.len(), 3, "{journaled:?}");
    for (name, ready) in &journaled {
        let (org_id, integration) = ready.as_ref().expect("the org is journaled ready");
        assert_eq!(Some(org_id.as_str()), in_snyk.get(name).map(String::as_str));
        assert!(
            integration.is_some(),
            "{name}: its bitbucket-cloud integration"
        );
    }
    w.cmd()
        .args(["orgs:create", "--noDuplicateNames"])
        .arg(format!("--file={}", orgs_file.display()))
        .assert()
        .code(0);
    assert_eq!(w.snyk.orgs().len(), 3);
    let created: compat::CreatedOrgs = read(&dir.join(compat::CREATED_ORGS_FILE));
    assert_eq!(created.org_data.len(), 3);
    assert!(
        created
            .org_data
            .iter()
            .all(|o| o.integrations.contains_key("bitbucket-cloud"))
    );
    let created_log: Vec<compat::CreatedOrgLine> =
        compat::read_lines(&dir.join(compat::created_orgs_log(group))).unwrap();
    assert_eq!(created_log.len(), 3);
    let failed_log: Vec<compat::FailedOrgLine> =
        compat::read_lines(&dir.join(compat::failed_orgs_log(group))).unwrap();
    assert_eq!(failed_log.len(), 3);
    assert!(failed_log[0].error_message.contains("duplicate"));
    created
}

/// Step 3, import:data: one target per repository with a main branch; none made up. The
/// target id of design-system.
fn import_data_step(w: &World, dir: &Path) -> String {
    w.cmd()
        .args(["import:data", "--source=bitbucket-cloud"])
        .arg(format!(
            "--orgsData={}",
            dir.join(compat::CREATED_ORGS_FILE).display()
        ))
        .assert()
        .code(0);
    let targets: compat::ImportTargets = read(&dir.join(compat::IMPORT_TARGETS_FILE));
    assert_eq!(targets.targets.len(), 11);
    assert!(
        !targets
            .targets
            .iter()
            .any(|t| t.target.name == "empty-sandbox")
    );
    let design = targets
        .targets
        .iter()
        .find(|t| t.target.name == "design-system")
        .unwrap();
    assert_eq!(design.target.branch.as_deref(), Some("master"));
    design.target_id()
}

/// Step 5, import, then again: the second posts nothing.
fn import_step(w: &World, dir: &Path, created: &compat::CreatedOrgs) {
    w.cmd()
        .arg("import")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("11 imported, 0 failed"));
    let posts_after_first: usize = w.snyk.import_posts().values().sum();
    assert_eq!(posts_after_first, 11);
    w.cmd()
        .arg("import")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 imported"));
    assert_eq!(w.snyk.import_posts().values().sum::<usize>(), 11);
    let imported: Vec<compat::ImportedTargetLine> =
        compat::read_lines(&dir.join(compat::IMPORTED_TARGETS_LOG)).unwrap();
    assert_eq!(imported.len(), 11);
    assert!(
        imported
            .iter()
            .all(|l| l.msg == "Target requested for import")
    );
    let org = &created.org_data[0];
    let projects: Vec<compat::ProjectLine> =
        compat::read_lines(&dir.join(compat::imported_projects_log(&org.id))).unwrap();
    assert!(!projects.is_empty());
    let jobs: Vec<compat::ImportJobLine> =
        compat::read_lines(&dir.join(compat::import_jobs_log(&org.id))).unwrap();
    assert!(!jobs.is_empty());
}

/// Step 4, list:imported writes the targets Snyk has (those with projects).
fn list_imported_step(w: &World, group: &str, dir: &Path, design_id: &str) {
    std::fs::remove_file(dir.join(compat::IMPORTED_TARGETS_LOG)).unwrap();
    w.cmd()
        .args([
            "list:imported",
            "--integrationType=bitbucket-cloud",
            &format!("--groupId={group}"),
        ])
        .assert()
        .code(0);
    let listed: Vec<compat::ImportedTargetLine> =
        compat::read_lines(&dir.join(compat::IMPORTED_TARGETS_LOG)).unwrap();
    assert_eq!(
        listed.len(),
        10,
        "notebooks has no projects and so no target"
    );
    assert!(listed.iter().all(|l| l.msg == "Target exists in Snyk"));
    let ids: std::collections::HashSet<String> =
        listed.iter().map(|l| l.target_id.clone()).collect();
    assert!(ids.contains(design_id), "{design_id} not in {ids:?}");
}

#[test]
fn sync_watch_repeats_until_ctrl_c() {
    let w = World::new();
    let mut cmd = w.process();
    cmd.args(["sync", "--watch", "--interval", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut rounds = 0;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let Ok(line) = line else { break };
        if line.starts_with("next sync in") {
            rounds += 1;
            if rounds == 2 {
                break;
            }
        }
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(rounds, 2);
    assert_eq!(out.status.code(), Some(4));
    // The first round did the work; the second found nothing to do.
    let text = stdout(&out);
    assert_eq!(text.matches("Mirror report").count(), 2, "{text}");
    assert!(text.contains("11 accepted"), "{text}");
    assert!(text.contains("0 accepted, 0 completed"), "{text}");
    assert!(w.snyk.import_posts().values().all(|n| *n == 1));
}

/// Fifty orgs with a Bitbucket integration and one without.
fn fifty_orgs() -> World {
    let mut builder = snyk::Sandbox::sample_builder();
    for i in 0..50 {
        builder = builder.org(&format!("team-{i:02}"), &["bitbucket-cloud"]);
    }
    World::with(Estate::sample(), builder.org("no-bitbucket", &["github"]))
}

/// The rotated Bitbucket token the integrations tests set.
const ROTATED_TOKEN: &str = "rotated-bb-token-2027";

/// `integrations update-credentials` with the rotated credentials and `extra` arguments.
fn rotate(w: &World, extra: &[&str]) -> Command {
    let mut c = w.cmd();
    c.env("SNYK_BITBUCKET_EMAIL", "bot@example.com")
        .env("SNYK_BITBUCKET_API_TOKEN", ROTATED_TOKEN)
        .args(["integrations", "update-credentials"])
        .args(extra);
    c
}

/// How many integrations Snyk's sandbox was asked to update.
fn integration_puts(w: &World) -> u64 {
    w.snyk
        .stats()
        .route("PUT /v1/org/{orgId}/integrations/{integrationId}")
}

/// `integrations list` and `doctor` name the org without a Bitbucket integration; a dry run
/// and patterns that cannot match are refused or named before any change.
#[test]
fn integrations_are_listed_and_patterns_checked_before_any_change() {
    let w = fifty_orgs();
    let rotate = |extra: &[&str]| rotate(&w, extra);
    let puts = || integration_puts(&w);
    w.cmd()
        .args(["integrations", "list"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no-bitbucket"))
        .stdout(predicate::str::contains("MISSING"))
        .stdout(predicate::str::contains(
            "51 orgs, 1 without a Bitbucket integration",
        ));
    w.cmd()
        .arg("doctor")
        .assert()
        .stdout(predicate::str::contains(
            "1 orgs without a Bitbucket integration: no-bitbucket",
        ));

    // A dry run changes nothing.
    rotate(&["--dry-run"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("dry run: 50 to update"));
    assert_eq!(puts(), 0);

    // Patterns: an invalid one and one that matches nothing are refused before any change; one
    // of several that matches nothing is named.
    let bad = rotate(&["--orgs", "[x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--orgs"));
    let none = rotate(&["--orgs", "nobody-*"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("`nobody-*` matches no org"));
    assert_eq!(puts(), 0);
    let dry = rotate(&["--dry-run", "--orgs", "team-0*,nobody-*"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&dry.stderr).contains("`nobody-*` matches no org"));
    assert!(
        stdout(&dry).contains("dry run: 10 to update"),
        "{}",
        stdout(&dry)
    );
}

#[test]
fn integrations_rotate_across_fifty_orgs_and_a_rerun_changes_nothing() {
    let w = fifty_orgs();
    let new_token = ROTATED_TOKEN;
    let rotate = |extra: &[&str]| rotate(&w, extra);
    let puts = || integration_puts(&w);
    // One run rotates all fifty, in words that say so…
    let out = rotate(&[]).assert().code(0).get_output().clone();
    assert!(
        stdout(&out).contains("50 integrations updated, 0 already updated"),
        "{}",
        stdout(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credentials updated in team-07"), "{err}");
    assert!(!err.contains("imported"), "{err}");
    assert_eq!(puts(), 50);
    for org in w.snyk.orgs().iter().filter(|o| o.name.starts_with("team-")) {
        assert!(
            w.snyk
                .integration_token_is(&org.integrations["bitbucket-cloud"], new_token)
        );
    }
    // …and a second run skips what it already changed.
    rotate(&[])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "0 integrations updated, 50 already updated",
        ));
    assert_eq!(puts(), 50);
    // A pattern narrows the set; new credentials update again.
    w.cmd()
        .env("SNYK_BITBUCKET_EMAIL", "bot@example.com")
        .env("SNYK_BITBUCKET_API_TOKEN", "rotated-again-2028")
        .args(["integrations", "update-credentials", "--orgs", "team-0*"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("10 integrations updated"));
    assert_eq!(puts(), 60);
    // Without the new credentials, a clear error and nothing changed.
    w.cmd()
        .env_remove("BITBUCKET_CLOUD_EMAIL")
        .env_remove("BITBUCKET_CLOUD_API_TOKEN")
        .env("BITBUCKET_CLOUD_ACCESS_TOKENS", "x")
        .args(["integrations", "update-credentials"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SNYK_BITBUCKET_API_TOKEN"));
    let all = format!("{}{}", stdout(&out), w.files_text());
    assert!(!all.contains(new_token) && !all.contains("rotated-again-2028"));
}

#[test]
fn doctor_does_not_read_every_org_of_a_large_group() {
    let mut builder = snyk::Sandbox::sample_builder();
    for i in 0..301 {
        builder = builder.org(&format!("org-{i:03}"), &["bitbucket-cloud"]);
    }
    let w = World::with(Estate::sample(), builder);
    w.cmd()
        .arg("doctor")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("group"))
        .stdout(predicate::str::contains(
            "301 orgs: run `bb-snyk-mirror integrations list`",
        ));
    // One listing of the group (four pages of 100), no per-org reads.
    assert_eq!(w.snyk.stats().route("GET /v1/org/{orgId}/integrations"), 0);
}

/// One bad input: the command, what to write first, the exit code, and a word of the fix.
struct Bad {
    what: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    file: Option<(&'static str, String)>,
    code: i32,
    fix: &'static str,
}

/// A configuration file or setting that cannot be read: one screen naming the fix, exit 2,
/// nothing changed.
#[test]
fn bad_configuration_gets_one_screen_naming_the_fix_and_changes_nothing() {
    let huge = "x".repeat(1 << 20);
    let config = |body: String| Some(("bb-snyk-mirror.toml", body));
    refused_with_one_screen(vec![
        Bad {
            what: "a truncated configuration file",
            args: vec!["plan".into()],
            env: vec![],
            file: config("[snyk\ngroup_id = ".into()),
            code: 2,
            fix: "bb-snyk-mirror.toml",
        },
        Bad {
            what: "a configuration value of the wrong type",
            args: vec!["plan".into()],
            env: vec![],
            file: config("[apply]\nconcurrency = \"many\"\n".into()),
            code: 2,
            fix: "concurrency",
        },
        Bad {
            what: "an unknown configuration field",
            args: vec!["sync".into()],
            env: vec![],
            file: config("[mapping]\nkind = \"org-per-workspace\"\ncolour = \"blue\"\n".into()),
            code: 2,
            fix: "colour",
        },
        Bad {
            what: "a request time-out in words",
            args: vec!["plan".into()],
            env: vec![("BB_SNYK_MIRROR_REQUEST_TIMEOUT", "soon".into())],
            file: None,
            code: 2,
            fix: "BB_SNYK_MIRROR_REQUEST_TIMEOUT is `soon`",
        },
        Bad {
            what: "updated_since in words",
            args: vec!["plan".into()],
            env: vec![],
            file: config("[source]\nupdated_since = \"yesterday\"\n".into()),
            code: 2,
            fix: "a duration back from now (24h, 7d)",
        },
        Bad {
            what: "drift.delete_after in words",
            args: vec!["sync".into()],
            env: vec![],
            file: config("[drift]\nretire = \"delete\"\ndelete_after = \"a week\"\n".into()),
            code: 2,
            fix: "drift.delete_after",
        },
        Bad {
            what: "a configuration file of one huge line",
            args: vec!["sync".into()],
            env: vec![],
            file: config(huge.clone()),
            code: 2,
            fix: "bb-snyk-mirror.toml",
        },
    ]);
}

/// A plan or a snyk-api-import data file that cannot be read: one screen naming the fix, exit
/// 2, nothing changed.
#[test]
fn bad_plans_and_data_files_get_one_screen_naming_the_fix_and_change_nothing() {
    let huge = "x".repeat(1 << 20);
    let plan = |body: String| Some(("plan.json", body));
    refused_with_one_screen(vec![
        Bad {
            what: "a truncated plan",
            args: vec!["apply".into(), "--plan".into(), "plan.json".into()],
            env: vec![],
            file: plan("{\"schema_version\": 1, \"actions\": [".into()),
            code: 2,
            fix: "plan.json",
        },
        Bad {
            what: "a plan with a wrong type",
            args: vec!["apply".into(), "--plan".into(), "plan.json".into()],
            env: vec![],
            file: plan("{\"schema_version\": \"one\"}".into()),
            code: 2,
            fix: "plan",
        },
        Bad {
            what: "a plan of one huge line",
            args: vec!["apply".into(), "--plan".into(), "plan.json".into()],
            env: vec![],
            file: plan(huge.clone()),
            code: 2,
            fix: "plan.json",
        },
        Bad {
            what: "a truncated orgs data file",
            args: vec!["orgs:create".into(), "--file".into(), "orgs.json".into()],
            env: vec![],
            file: Some(("orgs.json", "{\"orgs\": [{\"name\": \"a\"".into())),
            code: 2,
            fix: "orgs.json",
        },
        Bad {
            what: "an orgs data file with a wrong type",
            args: vec!["orgs:create".into(), "--file".into(), "orgs.json".into()],
            env: vec![],
            file: Some(("orgs.json", "{\"orgs\": [{\"name\": 7}]}".into())),
            code: 2,
            fix: "orgs.json",
        },
        Bad {
            what: "a targets file of one huge line",
            args: vec!["import".into(), "--file".into(), "targets.json".into()],
            env: vec![],
            file: Some(("targets.json", huge.clone())),
            code: 2,
            fix: "targets.json",
        },
        Bad {
            what: "a targets file with a wrong type",
            args: vec!["import".into(), "--file".into(), "targets.json".into()],
            env: vec![],
            file: Some((
                "targets.json",
                "{\"targets\": [{\"orgId\": \"o\", \"integrationId\": \"i\", \"target\": \"w/r\"}]}".into(),
            )),
            code: 2,
            fix: "targets.json",
        },
    ]);
}

/// Missing or wrong credentials, an unknown region, workspace or group: one screen naming the
/// fix, the exit code for it, nothing changed.
#[test]
fn bad_credentials_and_names_get_one_screen_naming_the_fix_and_change_nothing() {
    refused_with_one_screen(vec![
        Bad {
            what: "a missing Snyk token",
            args: vec!["sync".into()],
            env: vec![("SNYK_TOKEN", String::new())],
            file: None,
            code: 2,
            fix: "SNYK_TOKEN",
        },
        Bad {
            what: "a wrong Snyk token",
            args: vec!["sync".into()],
            env: vec![("SNYK_TOKEN", "wrong-snyk-token-123".into())],
            file: None,
            code: 3,
            fix: "token",
        },
        Bad {
            what: "a wrong Bitbucket token",
            args: vec!["sync".into()],
            env: vec![("BITBUCKET_CLOUD_API_TOKEN", "wrong-bb-token-456".into())],
            file: None,
            code: 3,
            fix: "API token",
        },
        Bad {
            what: "an unknown region",
            args: vec!["sync".into()],
            env: vec![
                ("SNYK_REGION", "SNYK-MARS-01".into()),
                ("SNYK_API", String::new()),
            ],
            file: None,
            code: 2,
            fix: "SNYK-EU-01",
        },
        Bad {
            what: "a workspace that does not exist",
            args: vec!["sync".into()],
            env: vec![(
                "BITBUCKET_CLOUD_WORKSPACES",
                "acme-platform,no-such-ws".into(),
            )],
            file: None,
            code: 2,
            fix: "no-such-ws",
        },
        Bad {
            what: "a group that does not exist",
            args: vec!["sync".into()],
            env: vec![(
                "SNYK_GROUP_ID",
                "00000000-0000-4000-8000-00000000dead".into(),
            )],
            file: None,
            code: 2,
            fix: "SNYK_GROUP_ID",
        },
    ]);
}

/// Runs each bad input against a fresh world: the exit code and a word of the fix on stderr,
/// at most a screen of it, no secret anywhere, and nothing created or posted remotely.
fn refused_with_one_screen(cases: Vec<Bad>) {
    let w = World::new();
    for case in cases {
        if let Some((name, body)) = &case.file {
            std::fs::write(w.state.path().join(name), body).unwrap();
        }
        let mut cmd = w.cmd();
        for (k, v) in &case.env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let out = cmd.args(&case.args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let what = case.what;
        assert_eq!(out.status.code(), Some(case.code), "{what}: {stderr}");
        assert!(
            stderr.contains(case.fix),
            "{what}: the error does not name `{}`: {stderr}",
            case.fix
        );
        assert!(
            stderr.lines().count() <= 24 && stderr.len() <= 2_000,
            "{what}: the error is longer than a screen ({} lines, {} bytes)",
            stderr.lines().count(),
            stderr.len()
        );
        assert_no_secret(&[&stdout(&out), &stderr, &w.files_text()]);
        if let Some((name, _)) = &case.file {
            std::fs::remove_file(w.state.path().join(name)).unwrap();
        }
        // Nothing was created or posted remotely.
        assert!(w.snyk.orgs().is_empty(), "{what}: an org was created");
        assert!(
            w.snyk.import_posts().is_empty(),
            "{what}: an import was posted"
        );
    }
}

#[test]
fn faults_through_the_binary_end_with_the_right_exit_code_and_no_secret() {
    use api_support::sandbox::Fault;
    // Throttled and failing answers along the way: the binary rides them out and exits 0.
    let w = World::new();
    w.bb.server()
        .inject_on("/2.0/repositories/", Fault::Throttled(Some(1)), 2);
    w.snyk
        .server()
        .inject_on("/v1/org/", Fault::Throttled(Some(1)), 2);
    w.snyk.server().inject_on("/v1/org/", Fault::Status(503), 2);
    let out = w.cmd().arg("sync").output().unwrap();
    let (text, err) = (
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(
        text.contains("11 accepted, 11 completed, 0 failed"),
        "{text}"
    );
    assert_eq!(
        w.bb.server().pending_faults() + w.snyk.server().pending_faults(),
        0
    );
    assert!(w.snyk.import_posts().values().all(|n| *n == 1));
    assert_no_secret(&[&text, &err, &w.files_text()]);

    // An org at the project cap: the rest of it is reported, the exit code is 1.
    let w = World::with(
        Estate::sample(),
        snyk::Sandbox::sample_builder().project_cap(1),
    );
    let out = w.cmd().arg("sync").output().unwrap();
    let (text, err) = (
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    assert!(text.contains("project"), "{text}");
    assert!(w.snyk.import_posts().values().all(|n| *n == 1));
    let mut names: Vec<String> = w.snyk.orgs().into_iter().map(|o| o.name).collect();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count);
    assert_no_secret(&[&text, &err, &w.files_text()]);
}

#[test]
fn quiet_integrations_and_notifications_off_through_the_binary() {
    let w = World::new();
    let out = w
        .cmd()
        .args(["sync", "--quiet-integrations", "--notifications-off"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PR checks and fix PRs off during the run, then back"),
        "{text}"
    );
    let orgs = w.snyk.orgs();
    assert_eq!(orgs.len(), 3);
    for org in &orgs {
        assert!(org.notifications_off, "{} still notifies", org.name);
        let int = &org.integrations["bitbucket-cloud"];
        let settings = w.snyk.integration_settings(int);
        assert_eq!(settings["pullRequestTestEnabled"], true, "{}", org.name);
        assert_eq!(
            settings["autoRemediationPrs"]["freshPrsEnabled"], true,
            "{}",
            org.name
        );
    }
    // One read and two changes of settings per org.
    let stats = w.snyk.stats();
    assert_eq!(
        stats.route("GET /v1/org/{orgId}/integrations/{integrationId}/settings"),
        3
    );
    assert_eq!(
        stats.route("PUT /v1/org/{orgId}/integrations/{integrationId}/settings"),
        6
    );
}

/// Runs `bb-snyk-mirror import` and kills it (SIGKILL) once the journal has `kill_after` more
/// lines than when it started; returns whether it finished on its own.
fn import_until_killed(w: &World, kill_after: usize) -> bool {
    let journal = w.state.path().join("journal.jsonl");
    let lines = || {
        std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let start = lines();
    let errors = w.state.path().join("import-stderr.txt");
    let mut child = w
        .process()
        .arg("import")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errors).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "import failed on its own: {status}\n{}",
                std::fs::read_to_string(&errors).unwrap_or_default()
            );
            return true;
        }
        if lines() >= start + kill_after {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return false;
        }
        assert!(std::time::Instant::now() < deadline, "import hung");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn the_compat_import_killed_at_many_points_posts_every_target_exactly_once() {
    let estate = Estate::generate(3, 6, 11);
    let w = World::with(estate.clone(), snyk::Sandbox::sample_builder());
    let group = w.snyk.group_id();
    let dir = w.state.path();
    // The dangling-intent check looks again after one second instead of thirty.
    std::fs::write(
        dir.join("bb-snyk-mirror.toml"),
        "[apply]\nconcurrency = 4\nresume_grace_seconds = 1\n",
    )
    .unwrap();
    w.cmd()
        .args([
            "orgs:data",
            "--source=bitbucket-cloud",
            &format!("--groupId={group}"),
        ])
        .assert()
        .code(0);
    let orgs_file = dir.join(compat::orgs_data_file(&group));
    w.cmd()
        .args(["orgs:create", &format!("--file={}", orgs_file.display())])
        .assert()
        .code(0);
    w.cmd()
        .args([
            "import:data",
            "--orgsData=snyk-created-orgs.json",
            "--source=bitbucket-cloud",
        ])
        .assert()
        .code(0);
    // Slow answers leave time between a journaled intent and Snyk's answer: kills land
    // between intent and post, between post and acceptance, and while jobs are followed.
    w.snyk.server().set_latency(Duration::from_millis(60));

    let mut kills = 0;
    let mut finished = false;
    for round in 0..60 {
        if import_until_killed(&w, 1 + round % 5) {
            finished = true;
            break;
        }
        kills += 1;
    }
    assert!(kills >= 5, "too few kills ({kills}) to mean anything");
    w.snyk.server().set_latency(Duration::ZERO);
    if !finished {
        w.cmd().arg("import").assert().code(0);
    }
    // A run after the end posts nothing.
    let posts: usize = w.snyk.import_posts().values().sum();
    w.cmd().arg("import").assert().code(0);
    assert_eq!(w.snyk.import_posts().values().sum::<usize>(), posts);

    let importable: std::collections::BTreeSet<String> = estate
        .workspaces
        .iter()
        .flat_map(|ws| {
            ws.repositories
                .iter()
                .filter(|r| r.main_branch.is_some())
                .map(move |r| format!("{}/{}", ws.slug, r.slug))
        })
        .collect();
    let posts = w.snyk.import_posts();
    for repo in &importable {
        assert_eq!(
            posts.get(repo),
            Some(&1),
            "{repo} posted {:?} times",
            posts.get(repo)
        );
    }
    assert_eq!(posts.len(), importable.len());
    // Every target is recorded as imported in snyk-api-import's log, once.
    let log = std::fs::read_to_string(dir.join(compat::IMPORTED_TARGETS_LOG)).unwrap();
    let mut logged: Vec<String> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}/{}",
                v["target"]["owner"].as_str().unwrap(),
                v["target"]["name"].as_str().unwrap()
            )
        })
        .collect();
    logged.sort();
    let expected: Vec<String> = importable.iter().cloned().collect();
    assert_eq!(logged, expected);
    eprintln!(
        "compat crash test: {kills} SIGKILLs, {} targets imported once each",
        importable.len()
    );
}

#[test]
fn a_mass_deletion_is_held_back_with_exit_one_until_allowed() {
    let w = World::with(Estate::generate(1, 30, 5), snyk::Sandbox::sample_builder());
    w.cmd().arg("sync").assert().code(0);
    let estate = w.bb.estate();
    let gone: Vec<String> = estate.workspaces[0]
        .repositories
        .iter()
        .filter(|r| r.main_branch.is_some())
        .take(12)
        .map(|r| r.slug.clone())
        .collect();
    for slug in &gone {
        assert!(w.bb.delete_repository("ws-0001", slug));
    }
    let out = w.cmd().arg("sync").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("more than the 10 a run retires"), "{text}");
    assert!(text.contains("--allow-mass-retire"), "{text}");
    // Reported only: Snyk does not change.
    let out = w
        .cmd()
        .args(["plan", "--retire", "report", "--allow-mass-retire"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("deleted in Bitbucket; report"),
        "{}",
        stdout(&out)
    );
    w.cmd()
        .args(["sync", "--allow-mass-retire"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("12 retired"));
    w.cmd()
        .arg("sync")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 accepted"));
}

#[test]
fn an_atlassian_api_token_without_its_email_is_refused_before_anything_is_sent() {
    let w = World::new();
    let secret = "ATATT3xFfGF0secret-part-of-the-token";
    let out = w
        .cmd()
        .env_remove("BITBUCKET_CLOUD_EMAIL")
        .env("BITBUCKET_CLOUD_API_TOKEN", secret)
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set BITBUCKET_CLOUD_EMAIL"), "{stderr}");
    assert!(!stderr.contains(secret) && !stdout(&out).contains(secret));
    assert_eq!(w.bb.stats().total, 0, "a request was sent");
}

#[test]
fn everything_missing_is_named_at_once() {
    let w = World::new();
    let out = w
        .cmd()
        .env_remove("SNYK_TOKEN")
        .env_remove("SNYK_GROUP_ID")
        .env_remove("BITBUCKET_CLOUD_EMAIL")
        .env_remove("BITBUCKET_CLOUD_API_TOKEN")
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 settings need fixing"), "{stderr}");
    for name in ["SNYK_GROUP_ID", "SNYK_TOKEN", "BITBUCKET_CLOUD_EMAIL"] {
        assert!(stderr.contains(name), "{name} not named in {stderr}");
    }
}

#[test]
fn a_watch_keeps_watching_through_a_failed_round_and_ends_on_sigterm() {
    let w = World::new();
    // Snyk refuses the first request (a token revoked for a moment): the first round fails.
    w.snyk
        .server()
        .inject(api_support::sandbox::Fault::Status(401), 1);
    let mut cmd = w.process();
    cmd.args(["sync", "--watch", "--interval", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut failed = false;
    let mut ok_rounds = 0;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let Ok(line) = line else { break };
        if line.starts_with("this sync failed (1 in a row)") {
            failed = true;
        }
        if line.starts_with("next sync in") {
            ok_rounds += 1;
            break;
        }
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(failed, "the failed round was not reported");
    assert_eq!(ok_rounds, 1);
    assert_eq!(
        out.status.code(),
        Some(4),
        "SIGTERM ends a watch with exit 4"
    );
    assert!(stdout(&out).contains("11 accepted"), "{}", stdout(&out));
}

#[test]
fn a_secret_in_a_mistaken_config_file_or_url_is_never_printed() {
    let w = World::new();
    // A token pasted into the configuration file (the key is unknown, and the string is left
    // open, so the parser quotes the line back).
    let config = w.state.path().join("mirror.toml");
    std::fs::write(
        &config,
        "[snyk]\ngroup_id = \"g\"\ntoken = \"pasted-secret-0123456789\n",
    )
    .unwrap();
    for output in ["human", "json"] {
        let out = w
            .cmd()
            .args(["--output", output, "--config"])
            .arg(&config)
            .arg("plan")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("line 3"), "{stderr}");
        for text in [&*stderr, &stdout(&out)] {
            assert!(!text.contains("pasted-secret"), "{text}");
        }
    }
    // A password in the Snyk address.
    let out = w
        .cmd()
        .env("SNYK_API", "ftp://user:url-secret-987@example.test/api")
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SNYK_API") || stderr.contains("example.test"),
        "{stderr}"
    );
    assert!(!stderr.contains("url-secret-987"), "{stderr}");
    assert_eq!(w.bb.stats().total + w.snyk.stats().total, 0);
}

/// Completes `words` (the last one being the word under the cursor) in a real bash with the
/// script the binary prints, through the function `complete -p` names, as bash itself would.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source '{}'
spec=$(complete -p bb-snyk-mirror) || exit 9
fn=$(sed -E 's/.*-F ([^ ]+).*/\1/' <<< "$spec")
COMP_WORDS=({})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
"$fn" bb-snyk-mirror "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display(),
        quoted.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_completes_subcommands_their_flags_and_colon_commands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bb-snyk-mirror.bash");
    let out = Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    std::fs::write(&script, &out.stdout).unwrap();

    assert_eq!(bash_complete(&script, &["bb-snyk-mirror", "sy"]), ["sync"]);
    let flags = bash_complete(&script, &["bb-snyk-mirror", "sync", "--w"]);
    assert!(flags.contains(&"--watch".to_owned()), "{flags:?}");
    let sub = bash_complete(&script, &["bb-snyk-mirror", "integrations", "u"]);
    assert_eq!(sub, ["update-credentials"]);
    let deep = bash_complete(
        &script,
        &[
            "bb-snyk-mirror",
            "integrations",
            "update-credentials",
            "--d",
        ],
    );
    assert_eq!(deep, ["--dry-run"]);
    // Only the flags a command accepts: none that it would then refuse.
    assert!(bash_complete(&script, &["bb-snyk-mirror", "doctor", "--conc"]).is_empty());
    assert!(bash_complete(&script, &["bb-snyk-mirror", "hooks", "install", "--ret"]).is_empty());
    assert_eq!(
        bash_complete(&script, &["bb-snyk-mirror", "sync", "--con"]),
        ["--config", "--concurrency"]
    );
    // bash splits `orgs:create` at the colon; the replies are what follows it.
    let colon = bash_complete(&script, &["bb-snyk-mirror", "orgs", ":", "cr"]);
    assert_eq!(colon, ["create"]);
    let after = bash_complete(&script, &["bb-snyk-mirror", "orgs", ":", "create", "--fi"]);
    assert_eq!(after, ["--file"]);
}

/// The other shells' scripts are generated and name the commands; zsh loads its script into
/// compinit and fish completes with it (CI installs both shells; a machine without them says
/// so instead).
#[test]
fn other_shells_completions_name_the_commands_and_load() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = Command::cargo_bin("bb-snyk-mirror")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(
            text.contains("update-credentials") && text.contains("orgs:create"),
            "{shell}"
        );
        if shell == "zsh" {
            // zsh reads `name:description`: the colon of a name is escaped.
            assert!(text.contains("'orgs\\:data:snyk-api-import"), "{text}");
            assert!(!text.contains("'orgs:data:"), "{text}");
        }
        std::fs::write(dir.path().join(format!("completion.{shell}")), text).unwrap();
    }
    let zsh = dir.path().join("completion.zsh");
    let fish = dir.path().join("completion.fish");
    let shells: [(&str, Vec<String>, &str); 2] = [
        (
            "zsh",
            vec![
                "-f".into(),
                "-c".into(),
                format!(
                    "autoload -U compinit && compinit -u -D && source '{}' && print -r -- ${{_comps[bb-snyk-mirror]}}",
                    zsh.display()
                ),
            ],
            "_bb-snyk-mirror",
        ),
        (
            "fish",
            vec![
                "--no-config".into(),
                "-c".into(),
                format!(
                    "source '{}'; complete -C'bb-snyk-mirror integrations u'; complete -C'bb-snyk-mirror orgs:cr'; echo doctor:; complete -C'bb-snyk-mirror doctor --conc'; echo end",
                    fish.display()
                ),
            ],
            "orgs:create",
        ),
    ];
    for (shell, args, expect) in shells {
        match std::process::Command::new(shell)
            .args(&args)
            .env("HOME", dir.path())
            .output()
        {
            Err(_) => eprintln!("{shell} is not installed: its completion script was not loaded"),
            Ok(out) => {
                let text = stdout(&out);
                assert!(
                    out.status.success() && text.contains(expect),
                    "{shell}: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                if shell == "fish" {
                    // Nothing is offered for `doctor --con`: doctor takes no --concurrency.
                    let after = text.split("doctor:").nth(1).unwrap_or_default();
                    assert_eq!(after.trim(), "end", "{text}");
                }
            }
        }
    }
}

#[test]
fn an_unreachable_service_is_named_with_its_cause_host_and_variable() {
    let w = World::new();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/2.0");
    let out = w
        .cmd()
        .env("BITBUCKET_CLOUD_API_URL", &url)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let host = format!("127.0.0.1:{closed}");
    assert!(
        text.contains("FAIL  could not connect: connection refused"),
        "{text}"
    );
    assert!(text.contains(&host), "{text}");
    assert!(text.contains("BITBUCKET_CLOUD_API_URL"), "{text}");
    // Snyk's checks still ran, and passed.
    assert!(text.contains("ok    group"), "{text}");

    let out = w
        .cmd()
        .env("SNYK_API", format!("http://127.0.0.1:{closed}/api"))
        .arg("plan")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connection refused") && stderr.contains(&host),
        "{stderr}"
    );
    assert!(stderr.contains("SNYK_API or SNYK_REGION"), "{stderr}");
}

#[test]
fn a_saved_plan_for_another_group_or_too_old_is_refused_and_dry_run_changes_nothing() {
    let w = World::new();
    let file = w.state.path().join("plan.json");
    w.cmd()
        .args(["plan", "--out"])
        .arg(&file)
        .assert()
        .success();
    let fresh: serde_json::Value = read(&file);
    assert!(fresh["created_at"].is_string(), "{fresh}");
    let write = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut plan = fresh.clone();
        edit(&mut plan);
        std::fs::write(&file, plan.to_string()).unwrap();
    };
    for (edit, expect) in [
        (
            &(|p: &mut serde_json::Value| p["group_id"] = "another-group".into())
                as &dyn Fn(&mut serde_json::Value),
            "was made for group another-group",
        ),
        (
            &|p: &mut serde_json::Value| p["created_at"] = "2026-01-01T00:00:00Z".into(),
            "plans older than 24 hours are not applied",
        ),
        (
            &|p: &mut serde_json::Value| {
                p.as_object_mut().unwrap().remove("created_at");
            },
            "does not say when it was made",
        ),
    ] {
        write(edit);
        let out = w
            .cmd()
            .args(["apply", "--plan"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{stderr}");
        assert!(
            stderr.contains("bb-snyk-mirror plan --out") || stderr.contains("SNYK_GROUP_ID"),
            "{stderr}"
        );
    }
    assert!(w.snyk.orgs().is_empty(), "a refused plan changed Snyk");

    // --dry-run plans and changes nothing, for apply and sync.
    for command in ["apply", "sync"] {
        w.cmd()
            .args([command, "--dry-run"])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("+ create org acme-platform"));
    }
    assert!(w.snyk.orgs().is_empty(), "a dry run changed Snyk");
    assert!(w.snyk.import_posts().is_empty());
}

#[test]
fn a_plan_is_grouped_by_org_ends_with_its_summary_and_quiet_shows_only_the_summary() {
    let w = World::new();
    let out = w.cmd().arg("plan").output().unwrap();
    let text = stdout(&out);
    // Each org's heading once, its lines under it.
    assert_eq!(text.matches("\norg acme-platform\n").count(), 1, "{text}");
    assert!(text.contains("\n  + import acme-platform/"), "{text}");
    // The summary, then the comparison of both sides (read in full, so it may speak of
    // equality, and says it does not hold).
    let last: Vec<&str> = text.trim_end().lines().rev().take(2).collect();
    assert_eq!(
        last[1], "In all: 3 orgs to create, 11 repositories to import, 1 skipped, 0 conflicts.",
        "{text}"
    );
    assert_eq!(
        last[0],
        "Snyk does not equal Bitbucket for 11 repositories in 3 orgs: 14 differences, 14 not explained",
        "{text}"
    );
    // Not a terminal: no colour.
    assert!(!text.contains('\u{1b}'), "{text}");
    for args in [["plan", "--summary"], ["plan", "--quiet"]] {
        let out = w.cmd().args(args).output().unwrap();
        let text = stdout(&out);
        assert!(
            text.contains("orgs to create") && !text.contains("+ import"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn each_command_lists_its_own_flags_first_and_only_the_shared_ones_that_apply() {
    let help = |args: &[&str]| {
        let out = Command::cargo_bin("bb-snyk-mirror")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        stdout(&out)
    };
    let sync = help(&["sync", "--help"]);
    let own = sync.find("--watch").unwrap();
    let shared = sync.find("Shared options:").unwrap();
    assert!(own < shared, "{sync}");
    assert!(sync.contains("Examples:\n  bb-snyk-mirror sync"), "{sync}");
    assert!(
        sync.contains("--concurrency") && sync.contains("--retire"),
        "{sync}"
    );
    let doctor = help(&["doctor", "--help"]);
    assert!(
        !doctor.contains("--concurrency") && !doctor.contains("--retire"),
        "{doctor}"
    );
    assert!(doctor.contains("--group-id"), "{doctor}");
    let demo = help(&["demo", "--help"]);
    for absent in ["--config", "--state-dir", "--group-id", "--workspaces"] {
        assert!(!demo.contains(absent), "{absent} in {demo}");
    }
    let top = help(&["--help"]);
    assert!(top.contains("Environment:"), "{top}");
    for name in [
        "BITBUCKET_CLOUD_EMAIL",
        "SNYK_TOKEN",
        "SNYK_GROUP_ID",
        "NO_COLOR",
    ] {
        assert!(top.contains(name), "{name} not in {top}");
    }
    // A shared flag given to a command it does not apply to is refused, naming it.
    let out = Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .env_clear()
        .args(["doctor", "--concurrency", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--concurrency does not apply to `doctor`"),
        "{stderr}"
    );
    let out = Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .env_clear()
        .args(["integrations", "list", "--retire", "delete"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_org_that_could_not_be_created_is_a_failure_with_its_imports_counted_not_attempted() {
    let w = World::new();
    // The first org creation is refused (the first /v1/org request of the run is one).
    w.snyk
        .server()
        .inject_on("/v1/org", api_support::sandbox::Fault::Status(400), 1);
    let out = w.cmd().args(["sync", "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let report = &doc["report"];
    let failures = report["org_failures"].as_array().expect("org_failures");
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(failures[0]["step"], "create-org");
    let held = failures[0]["held_back"].as_u64().unwrap();
    assert!(held > 0, "{report}");
    assert_eq!(
        report["imports_not_attempted"].as_u64(),
        Some(held),
        "{report}"
    );
    assert_eq!(
        report["conflicts"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert_eq!(
        report["imports_accepted"].as_u64().unwrap() + held,
        11,
        "{report}"
    );
    // For people: the failure named, the imports not attempted counted, no conflict. (Orgs
    // are created side by side: which one is refused first varies, and with it the count.)
    let w = World::new();
    w.snyk
        .server()
        .inject_on("/v1/org", api_support::sandbox::Fault::Status(400), 1);
    let out = w.cmd().arg("sync").output().unwrap();
    let text = stdout(&out);
    let counted = text
        .split(" not attempted")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(counted.is_some_and(|n| n > 0), "{text}");
    assert!(text.contains("could not be created"), "{text}");
    assert!(text.contains("  conflicts   0"), "{text}");
}

#[test]
fn each_run_leaves_a_redacted_json_lines_log_in_the_state_directory() {
    let w = World::new();
    let logs = w.state.path().join("logs");
    // A usage error leaves nothing behind.
    w.cmd()
        .env_remove("SNYK_TOKEN")
        .arg("sync")
        .assert()
        .code(2);
    assert!(!logs.exists(), "a refused run wrote a log");
    w.cmd().args(["sync", "-v"]).assert().code(0);
    let entries: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["fields"]["message"], "run started");
    assert_eq!(lines[0]["fields"]["command"], "sync");
    let last = lines.last().unwrap();
    assert_eq!(last["fields"]["message"], "run finished");
    assert_eq!(last["fields"]["exit_code"], 0);
    assert_no_secret(&[&text]);
}

#[test]
fn demo_mirrors_a_generated_estate_and_serves_the_sandboxes_for_practice() {
    let out = Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .env_clear()
        .args(["demo", "--estate", "2x5"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("2 created") && text.contains(", 0 failed"),
        "{text}"
    );
    assert!(
        !text.contains("+ import"),
        "a generated estate shows its summary: {text}"
    );
    // Flags the demo does not take are refused.
    Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .env_clear()
        .args(["demo", "--state-dir", "/tmp/x"])
        .assert()
        .code(2);

    // --serve: the printed environment drives the binary against the sandboxes.
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bb-snyk-mirror"))
        .env_clear()
        .args(["demo", "--serve"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut vars = Vec::new();
    let reader = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            vars.push((name.to_owned(), value.trim_matches('\'').to_owned()));
        }
        if line.starts_with("Ctrl-C here") {
            break;
        }
    }
    assert!(vars.iter().any(|(n, _)| n == "SNYK_GROUP_ID"), "{vars:?}");
    let state = tempfile::tempdir().unwrap();
    let doctor = Command::cargo_bin("bb-snyk-mirror")
        .unwrap()
        .env_clear()
        .envs(vars.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .env("SNYK_LOG_PATH", state.path())
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(doctor.status.code(), Some(0), "{}", stdout(&doctor));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

// ---- serve: Bitbucket's webhooks, through the binary ----

const WEBHOOK_SECRET: &str = "a-webhook-secret-for-tests";
const IMPORT_ROUTE: &str = "POST /v1/org/{orgId}/integrations/{integrationId}/import";

/// A `serve` process and its address.
struct Served {
    child: std::process::Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP exchange with `serve`: status and body.
fn http(
    w: &World,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, String) {
    use api_support::Transport;
    let transport =
        api_support::ReqwestTransport::new(api_support::TransportConfig::default()).unwrap();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(bytes::Bytes::from(body)).unwrap();
    match w.rt.block_on(transport.send(request)) {
        Ok(r) => (
            r.status().as_u16(),
            String::from_utf8_lossy(r.body()).into_owned(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// Starts `serve` with `args` and extra environment, and waits until `/healthz` answers (and
/// `/readyz` too when `ready`).
fn serve(w: &World, args: &[&str], env: &[(&str, String)], ready: bool) -> Served {
    let port = free_port();
    let mut cmd = w.process();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("BITBUCKET_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let served = Served {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let probe = if ready { "/readyz" } else { "/healthz" };
    for _ in 0..600 {
        if http(
            w,
            "GET",
            &format!("{}{probe}", served.base),
            &[],
            Vec::new(),
        )
        .0 == 200
        {
            return served;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("serve did not answer {probe}");
}

/// The payload Bitbucket sends for the repository `workspace/slug`.
fn payload(workspace: &str, slug: &str, uuid: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "actor": {"type": "user"},
        "repository": {"type": "repository", "uuid": uuid, "full_name": format!("{workspace}/{slug}"),
                       "workspace": {"type": "workspace", "slug": workspace}},
    }))
    .unwrap()
}

/// Delivers `body` as Bitbucket would, signed with `signature` (None: the right one).
fn deliver(
    w: &World,
    s: &Served,
    event: &str,
    request: &str,
    attempt: u32,
    body: Vec<u8>,
    signature: Option<String>,
) -> (u16, String) {
    let signature = signature.unwrap_or_else(|| {
        bitbucket_cloud_client::webhooks::signature(WEBHOOK_SECRET.as_bytes(), &body)
    });
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-event-key", event.to_owned()),
        ("x-request-uuid", request.to_owned()),
        ("x-hook-uuid", "{hook}".to_owned()),
        ("x-attempt-number", attempt.to_string()),
    ];
    if !signature.is_empty() {
        headers.push(("x-hub-signature", signature));
    }
    http(
        w,
        "POST",
        &format!("{}/webhooks/bitbucket", s.base),
        &headers,
        body,
    )
}

fn new_repository(w: &World, workspace: &str, n: usize) -> (String, String) {
    let slug = format!("live-{n}");
    let uuid = format!("{{00000000-0000-4000-8000-{n:012}}}");
    assert!(w.bb.add_repository(workspace, bb::SandboxRepository::new(&slug, &uuid)));
    (slug, uuid)
}

/// Waits until `check` holds, at most a minute.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never happened: {what}");
}

/// Targets in Snyk named `workspace/slug`.
fn targets_named(w: &World, name: &str) -> usize {
    w.snyk
        .targets()
        .iter()
        .filter(|t| t.display_name.eq_ignore_ascii_case(name))
        .count()
}

#[test]
fn serve_acts_on_signed_deliveries_once_and_refuses_everything_else() {
    let w = World::new();
    let s = serve(
        &w,
        &["--workspaces", "acme-platform,acme-mobile"],
        &[],
        true,
    );
    let (slug, uuid) = new_repository(&w, "acme-platform", 1);
    let body = payload("acme-platform", &slug, &uuid);
    refuses_bad_signatures_and_request_ids(&w, &s, &body, &slug);
    acts_once_on_a_delivery_sent_again(&w, &s, &body, &slug);
    answers_odd_deliveries_without_acting(&w, &s, &body);
    refuses_other_methods_and_paths(&w, &s);
    metrics_count_each_answer(&w, &s);
    assert!(
        !w.files_text().contains(WEBHOOK_SECRET),
        "the secret is never written"
    );
}

/// A missing, wrong or SHA-1 signature is refused with 401 and nothing of the body echoed; a
/// request id of 10 KiB is named too long, not missing.
fn refuses_bad_signatures_and_request_ids(w: &World, s: &Served, body: &[u8], slug: &str) {
    let body = body.to_vec();
    let wrong = bitbucket_cloud_client::webhooks::signature(b"another secret", &body);
    let sha1 = format!("sha1={}", &wrong[7..47]);
    for (signature, why) in [(String::new(), "missing"), (wrong, "wrong"), (sha1, "sha1")] {
        let (status, text) = deliver(
            w,
            s,
            "repo:created",
            "{r-bad}",
            1,
            body.clone(),
            Some(signature),
        );
        assert_eq!(status, 401, "{why}: {text}");
        assert!(
            !text.contains(slug),
            "nothing of the body is echoed: {text}"
        );
    }
    // A request id of 10 KiB is named too long, not missing.
    let long = "x".repeat(10 * 1024);
    let (status, text) = deliver(w, s, "repo:created", &long, 1, body.clone(), None);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("X-Request-UUID is too long"), "{text}");
}

/// A delivery is queued once: its retry and a replay after the import are answered and act
/// no more.
fn acts_once_on_a_delivery_sent_again(w: &World, s: &Served, body: &[u8], slug: &str) {
    let body = body.to_vec();
    let imports = w.snyk.stats().route(IMPORT_ROUTE);
    let (status, text) = deliver(w, s, "repo:created", "{r-1}", 1, body.clone(), None);
    assert_eq!((status, text.trim()), (202, "queued"));
    // A retry and a replay of the same delivery act once.
    let (status, text) = deliver(w, s, "repo:created", "{r-1}", 2, body.clone(), None);
    assert_eq!((status, text.trim()), (202, "already received"));
    let name = format!("acme-platform/{slug}");
    eventually("the repository is imported", || {
        targets_named(w, &name) == 1
    });
    let (status, _) = deliver(w, s, "repo:created", "{r-1}", 1, body.clone(), None);
    assert_eq!(status, 202);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        w.snyk.stats().route(IMPORT_ROUTE),
        imports + 1,
        "one import"
    );
}

/// Over 256 KiB, signed but not JSON, a workspace out of scope, an event the mirror does not
/// follow, an unsigned made-up event: each answered as it should be, none acted on.
fn answers_odd_deliveries_without_acting(w: &World, s: &Served, body: &[u8]) {
    let body = body.to_vec();
    // Over 256 KiB: 413, whatever the signature.
    let (status, _) = deliver(
        w,
        s,
        "repo:created",
        "{r-big}",
        1,
        vec![b' '; 300 * 1024],
        None,
    );
    assert_eq!(status, 413);
    // Signed, but not JSON.
    let (status, text) = deliver(
        w,
        s,
        "repo:created",
        "{r-bad-json}",
        1,
        b"{not json".to_vec(),
        None,
    );
    assert_eq!(status, 400, "{text}");
    // A workspace out of scope: acknowledged, ignored.
    let (other, other_uuid) = new_repository(w, "acme-data", 2);
    let (status, text) = deliver(
        w,
        s,
        "repo:created",
        "{r-out}",
        1,
        payload("acme-data", &other, &other_uuid),
        None,
    );
    assert_eq!(status, 202, "{text}");
    assert!(
        text.contains("ignored") && text.contains("acme-data"),
        "{text}"
    );
    // An event the mirror does not follow.
    let (status, _) = deliver(w, s, "repo:push", "{r-push}", 1, body.clone(), None);
    assert_eq!(status, 202);
    // Unsigned, with an event key of its own: refused, and no metric series of its name.
    let (status, _) = deliver(
        w,
        s,
        "made-up:event",
        "{r-x}",
        1,
        body.clone(),
        Some(String::new()),
    );
    assert_eq!(status, 401);
}

/// Methods and paths `serve` does not answer: 405 and 404.
fn refuses_other_methods_and_paths(w: &World, s: &Served) {
    assert_eq!(
        http(
            w,
            "GET",
            &format!("{}/webhooks/bitbucket", s.base),
            &[],
            Vec::new()
        )
        .0,
        405
    );
    assert_eq!(
        http(w, "POST", &format!("{}/metrics", s.base), &[], Vec::new()).0,
        405
    );
    assert_eq!(
        http(w, "GET", &format!("{}/nope", s.base), &[], Vec::new()).0,
        404
    );
}

/// `/metrics` counts each delivery by event and result.
fn metrics_count_each_answer(w: &World, s: &Served) {
    let (status, metrics) = http(w, "GET", &format!("{}/metrics", s.base), &[], Vec::new());
    assert_eq!(status, 200);
    for line in [
        r#"bb_snyk_mirror_deliveries_total{event="repo:created",result="queued"} 1"#,
        r#"bb_snyk_mirror_deliveries_total{event="repo:created",result="duplicate"} 2"#,
        r#"bb_snyk_mirror_deliveries_total{event="repo:created",result="unauthorized"} 3"#,
        r#"bb_snyk_mirror_deliveries_total{event="repo:created",result="too_large"} 1"#,
        r#"bb_snyk_mirror_deliveries_total{event="repo:created",result="malformed"} 2"#,
        r#"bb_snyk_mirror_signature_failures_total{reason="algorithm"} 1"#,
        r#"bb_snyk_mirror_deliveries_total{event="other",result="ignored"} 1"#,
        r#"bb_snyk_mirror_deliveries_total{event="other",result="unauthorized"} 1"#,
        "bb_snyk_mirror_queue_depth 0",
        "bb_snyk_mirror_last_reconcile_success 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"bb_snyk_mirror_imports_total{outcome="accepted"}"#),
        "{metrics}"
    );
}

#[test]
fn serve_refuses_to_start_without_its_secret_or_with_a_bad_address() {
    let w = World::new();
    let out = w
        .cmd()
        .args(["serve"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("BITBUCKET_WEBHOOK_SECRET"), "{err}");
    let out = w
        .cmd()
        .args(["serve", "--listen", "somewhere"])
        .env("BITBUCKET_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("--listen `somewhere`"), "{err}");
}

/// `(request uuid, done)` for each delivery the journal holds.
fn journal_deliveries(w: &World) -> (usize, usize) {
    let text = std::fs::read_to_string(w.state.path().join("journal.jsonl")).unwrap_or_default();
    let queued = text.matches(r#""event":"delivery-queued""#).count();
    let done: usize = text
        .lines()
        .filter(|l| l.contains(r#""event":"deliveries-done""#))
        .map(|l| l.matches("{d-").count())
        .sum();
    (queued, done)
}

#[test]
fn a_crash_after_the_202_is_reconciled_on_restart_and_sigterm_drains_a_burst() {
    let w = World::new();
    // Snyk unreachable at first: deliveries are queued and answered, but cannot be reconciled.
    let dead = format!("http://127.0.0.1:{}/api", free_port());
    let s = serve(&w, &[], &[("SNYK_API", dead)], false);
    // Deliveries are still accepted and queued, so the replica stays ready; /healthz says
    // what failed.
    eventually("/healthz says the reconcile failed", || {
        let (status, text) = http(&w, "GET", &format!("{}/healthz", s.base), &[], Vec::new());
        status == 200 && text.contains("the last reconcile failed")
    });
    let (status, text) = http(&w, "GET", &format!("{}/readyz", s.base), &[], Vec::new());
    assert_eq!((status, text.trim()), (200, "ready"));
    let mut names = Vec::new();
    for n in 0..5 {
        let (slug, uuid) = new_repository(&w, "acme-mobile", 100 + n);
        let (status, _) = deliver(
            &w,
            &s,
            "repo:created",
            &format!("{{d-{n}}}"),
            1,
            payload("acme-mobile", &slug, &uuid),
            None,
        );
        assert_eq!(status, 202);
        names.push(format!("acme-mobile/{slug}"));
    }
    // The process dies after answering, before reconciling.
    drop(s);
    assert_eq!(journal_deliveries(&w), (5, 0));
    let imports = w.snyk.stats().route(IMPORT_ROUTE);
    let s = serve(&w, &[], &[], true);
    eventually("the queued deliveries are reconciled", || {
        journal_deliveries(&w).1 == 5
    });
    for name in &names {
        assert_eq!(targets_named(&w, name), 1, "{name}");
    }
    // A burst, then SIGTERM at once: the process stops within its drain deadline, and what it
    // answered 202 is either reconciled or still queued for the next start.
    for n in 5..35 {
        let (slug, uuid) = new_repository(&w, "acme-platform", 100 + n);
        let (status, _) = deliver(
            &w,
            &s,
            "repo:created",
            &format!("{{d-{n}}}"),
            1,
            payload("acme-platform", &slug, &uuid),
            None,
        );
        assert_eq!(status, 202);
        names.push(format!("acme-platform/{slug}"));
    }
    let mut s = s;
    std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    let started = std::time::Instant::now();
    let status = s.child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "drained within the deadline"
    );
    assert!(matches!(status.code(), Some(0 | 4)), "{status:?}");
    assert_eq!(
        journal_deliveries(&w).0,
        35,
        "every answered delivery is in the journal"
    );
    let _s = serve(&w, &[], &[], true);
    eventually("every delivery is reconciled", || {
        journal_deliveries(&w).1 == 35
    });
    for name in &names {
        assert_eq!(
            targets_named(&w, name),
            1,
            "{name} is mirrored exactly once"
        );
    }
    // The sample's 11 repositories (the first reconcile) and the 35 new ones, each once.
    assert_eq!(w.snyk.stats().route(IMPORT_ROUTE), imports + 11 + 35);
}

#[test]
fn hooks_install_twice_leaves_one_hook_per_workspace_and_refuses_what_it_cannot_install() {
    let w = World::new();
    let url = HOOK_URL;
    for change in ["created", "updated"] {
        let out = w
            .cmd()
            .args(["hooks", "install", "--url", url])
            .env("BITBUCKET_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .assert()
            .success()
            .get_output()
            .clone();
        let text = stdout(&out);
        assert_eq!(
            text.matches(&format!("webhook {change}")).count(),
            3,
            "{text}"
        );
    }
    for ws in ["acme-platform", "acme-mobile", "acme-data"] {
        let hooks = w.bb.hooks(ws);
        assert_eq!(hooks.len(), 1, "{ws}: {hooks:?}");
        assert_eq!(hooks[0].secret.as_deref(), Some(WEBHOOK_SECRET));
        assert_eq!(hooks[0].events.len(), 4);
    }
    let out = w
        .cmd()
        .args(["hooks", "list"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout(&out).matches(url).count(), 3);
    assert!(!stdout(&out).contains(WEBHOOK_SECRET));
    // Refused before any request: plain HTTP to another machine, and no secret.
    w.cmd()
        .args([
            "hooks",
            "install",
            "--url",
            "http://mirror.example.com/webhooks/bitbucket",
        ])
        .env("BITBUCKET_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("HTTPS"));
    w.cmd()
        .args(["hooks", "install", "--url", url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("BITBUCKET_WEBHOOK_SECRET"));
    w.cmd()
        .args(["hooks", "remove", "--url", url])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 webhook(s) removed"));
    assert!(w.bb.hooks("acme-platform").is_empty());
}

/// The URL the hooks tests install.
const HOOK_URL: &str = "https://mirror.example.com/webhooks/bitbucket";

/// A member who does not own the workspace is told which role installing needs and which
/// scope listing needs; listing's JSON says how it ended.
#[test]
fn hooks_tell_a_member_who_does_not_own_the_workspace_what_is_missing() {
    let w = World::new();
    let url = HOOK_URL;
    let member = w.rt.block_on(async {
        bb::Sandbox::builder()
            .api_token("member@example.com", "member-token")
            .non_owner("member@example.com")
            .start()
            .await
            .unwrap()
    });
    let out = w
        .cmd()
        .args([
            "hooks",
            "install",
            "--url",
            url,
            "--workspaces",
            "acme-platform",
        ])
        .env("BITBUCKET_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("BITBUCKET_CLOUD_API_URL", member.base_url())
        .env("BITBUCKET_CLOUD_EMAIL", "member@example.com")
        .env("BITBUCKET_CLOUD_API_TOKEN", "member-token")
        .assert()
        .code(3)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("owner of the workspace") && err.contains("Owner role"),
        "{err}"
    );
    assert!(!err.contains("member-token"));
    assert!(member.hooks("acme-platform").is_empty());
    // Listing names the scope that lists, and its JSON says how it ended.
    let as_member = |args: &[&str]| {
        w.cmd()
            .args(args)
            .env("BITBUCKET_CLOUD_API_URL", member.base_url())
            .env("BITBUCKET_CLOUD_EMAIL", "member@example.com")
            .env("BITBUCKET_CLOUD_API_TOKEN", "member-token")
            .output()
            .unwrap()
    };
    let out = as_member(&["hooks", "list", "--workspaces", "acme-platform"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("read:webhook:bitbucket to list"), "{err}");
    assert!(!err.contains("read:repository"), "{err}");
    let out = as_member(&[
        "hooks",
        "list",
        "--workspaces",
        "acme-platform",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 3, "{doc}");
    assert_eq!(doc["failed"][0]["workspace"], "acme-platform", "{doc}");
}

#[test]
fn runs_lists_each_run_and_undo_reactivates_what_one_deactivated() {
    let w = World::with(Estate::generate(1, 20, 5), snyk::Sandbox::sample_builder());
    w.cmd().arg("sync").assert().code(0);
    let slug = w.bb.estate().workspaces[0]
        .repositories
        .iter()
        .find(|r| r.main_branch.is_some())
        .map(|r| r.slug.clone())
        .unwrap();
    assert!(w.bb.delete_repository("ws-0001", &slug));
    let out = w.cmd().args(["sync", "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = report["report"]["run"].as_str().unwrap().to_owned();
    let active = || {
        w.snyk
            .projects()
            .iter()
            .filter(|p| p.active && p.name.starts_with(&format!("ws-0001/{slug}:")))
            .count()
    };
    assert_eq!(active(), 0);
    // `runs` reads the state directory alone: no credentials needed.
    let listed = w
        .cmd()
        .env_remove("SNYK_TOKEN")
        .env_remove("BITBUCKET_CLOUD_API_TOKEN")
        .arg("runs")
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0), "{}", stdout(&listed));
    let text = stdout(&listed);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains(&run), "{text}");
    let dry = w.cmd().args(["undo", &run, "--dry-run"]).output().unwrap();
    assert!(
        stdout(&dry).contains(&format!(
            "+ reactivate ws-0001/{slug} (1 project deactivated by run {run})"
        )),
        "{}",
        stdout(&dry)
    );
    assert_eq!(active(), 0, "--dry-run changed Snyk");
    w.cmd()
        .args(["undo", &run, "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "+ reactivated ws-0001/{slug}"
        )));
    assert_eq!(active(), 1);
    w.cmd()
        .args(["undo", &run])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Nothing of run"));
    w.cmd()
        .args(["undo", "no-such-run"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bb-snyk-mirror runs"));
}

#[test]
fn an_uncertain_repository_is_named_and_the_sync_exits_one_not_three() {
    let w = World::with(Estate::generate(2, 10, 5), snyk::Sandbox::sample_builder());
    w.cmd().arg("sync").assert().code(0);
    let repo = w.bb.estate().workspaces[0]
        .repositories
        .iter()
        .find(|r| r.main_branch.is_some())
        .cloned()
        .unwrap();
    w.bb.make_odd(&repo.uuid, Some(bb::Oddity::Forbidden));
    let out = w.cmd().arg("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("! uncertain ws-0001/{}", repo.slug)),
        "{}",
        stdout(&out)
    );
    let out = w.cmd().arg("sync").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("uncertain   1"), "{text}");
    assert!(text.contains("403"), "{text}");
}

#[test]
fn a_closed_pipe_is_ignored_and_the_run_goes_on_to_its_end() {
    let w = World::new();
    for args in [&["plan"][..], &["sync"][..]] {
        // The reader has gone before anything is written (`| head -0`).
        let mut child = w
            .process()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{err}"
        );
    }
    // The sync did all its work: every repository of the sample with a branch is imported.
    w.cmd()
        .arg("sync")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 accepted"));
}

#[test]
fn apply_without_yes_and_without_a_terminal_is_refused_and_changes_nothing() {
    let w = World::new();
    let out = w.cmd().arg("apply").write_stdin("").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--yes") && err.contains("no terminal"),
        "{err}"
    );
    assert!(w.snyk.orgs().is_empty(), "apply changed Snyk unasked");
    assert!(w.snyk.import_posts().is_empty());
    w.cmd()
        .args(["apply", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("11 completed"));
}

#[test]
fn a_webhook_url_with_a_password_is_refused_before_any_request_and_never_echoed() {
    let w = World::new();
    for url in [
        "https://mirror:hunter2-secret@mirror.example.com/webhooks/bitbucket",
        "https://hunter2-secret@mirror.example.com/webhooks/bitbucket",
        "http://u:hunter2-secret@example.com/elsewhere",
    ] {
        let out = w
            .cmd()
            .args(["hooks", "install", "--url", url])
            .env("BITBUCKET_WEBHOOK_SECRET", "s3cret-for-hooks")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}");
        let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("hunter2-secret"), "{all}");
        assert!(all.contains("user name or password"), "{all}");
    }
    assert_eq!(w.bb.stats().total, 0, "a request was made");
}

#[test]
fn a_no_op_sync_counts_its_skips_and_quiet_prints_only_errors() {
    let w = World::with(Estate::generate(2, 40, 5), snyk::Sandbox::sample_builder());
    w.cmd().arg("sync").assert().code(0);
    // Nothing to do: the plan on stderr counts the skips by reason, one line each reason.
    let out = w.cmd().arg("sync").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("= skip "), "{err}");
    assert!(err.contains("already imported"), "{err}");
    assert!(err.contains("skipped not listed"), "{err}");
    assert!(err.lines().count() < 30, "{err}");
    // -v lists each, as plan does.
    let out = w.cmd().args(["sync", "-v"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.matches("= skip ").count() >= 70, "{err}");
    // Orgs are named by their names, not their ids.
    assert!(err.contains("already imported into ws-0001"), "{err}");
    // --quiet: nothing on either stream when all is well.
    let out = w.cmd().args(["sync", "--quiet"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn plan_out_never_replaces_another_file_and_a_plan_is_applied_only_where_it_was_made() {
    let w = World::new();
    let config = w.state.path().join("bb-snyk-mirror.toml");
    std::fs::write(&config, "[source]\nskip_forks = false\n").unwrap();
    for force in [false, true] {
        let mut args = vec!["plan", "--out", "bb-snyk-mirror.toml"];
        if force {
            args.push("--force");
        }
        let out = w.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not a plan"));
    }
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "[source]\nskip_forks = false\n"
    );
    w.cmd()
        .args(["plan", "--out", "plan.json"])
        .assert()
        .code(0);
    w.cmd()
        .args(["plan", "--out", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    w.cmd()
        .args(["plan", "--out", "plan.json", "--force"])
        .assert()
        .code(0);
    // Another Bitbucket (same group): refused, nothing created.
    let other = w.rt.block_on(async {
        bb::Sandbox::builder()
            .estate(Estate::generate(1, 3, 9))
            .api_token(bb::SAMPLE_EMAIL, BB_TOKEN)
            .start()
            .await
            .unwrap()
    });
    let out = w
        .cmd()
        .args(["apply", "--plan", "plan.json"])
        .env("BITBUCKET_CLOUD_API_URL", other.base_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was made against Bitbucket"), "{err}");
    assert!(w.snyk.orgs().is_empty() && w.snyk.import_posts().is_empty());
    w.cmd()
        .args(["apply", "--plan", "plan.json"])
        .assert()
        .code(0);
}

#[test]
fn doctor_says_what_a_read_only_snyk_side_token_disables() {
    let w = World::new();
    let read_only = w.rt.block_on(async {
        bb::Sandbox::builder()
            .estate(Estate::sample())
            .api_token_with_scopes("reader@example.com", "reader-token", &bb::READ_SCOPES)
            .start()
            .await
            .unwrap()
    });
    let out = w
        .cmd()
        .arg("doctor")
        .env("BITBUCKET_CLOUD_API_URL", read_only.base_url())
        .env("BITBUCKET_CLOUD_EMAIL", "reader@example.com")
        .env("BITBUCKET_CLOUD_API_TOKEN", "reader-token")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "fix and upgrade pull requests cannot work: the token lacks write:repository:bitbucket"
        ),
        "{text}"
    );
    assert!(
        text.contains("PR checks (Snyk tests on pull requests) cannot work"),
        "{text}"
    );
    assert!(!text.contains("reader-token"));
}

#[test]
fn ctrl_c_at_the_question_exits_four_at_once_and_changes_nothing() {
    use std::io::{Read, Write};
    // A terminal for the binary: util-linux's `script` runs it on a pseudo-terminal, and a
    // Ctrl-C typed into that terminal reaches it as a real user's would.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("`script` is not installed: this check needs a terminal");
        return;
    }
    let w = World::new();
    let bin = assert_cmd::cargo::cargo_bin("bb-snyk-mirror");
    let mut child = std::process::Command::new("script")
        .args([
            "-qfec",
            &format!("exec {} apply", bin.display()),
            "/dev/null",
        ])
        .env_clear()
        .envs(w.env())
        .env("PATH", "/usr/bin:/bin")
        .env("TERM", "dumb")
        .current_dir(w.state.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut terminal_out = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = terminal_out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    eventually("the question", || text().contains("Apply this plan?"));
    let asked = std::time::Instant::now();
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still asking: {}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = reader.join();
    assert_eq!(status.code(), Some(4), "{}", text());
    assert!(text().contains("nothing was applied"), "{}", text());
    assert!(!text().contains("stopping after the imports"), "{}", text());
    assert!(w.snyk.orgs().is_empty() && w.snyk.import_posts().is_empty());
}

#[test]
fn demo_change_makes_bitbucket_changes_in_the_practice_sandbox_and_sync_follows() {
    let w = World::new();
    w.cmd().arg("sync").assert().code(0);
    let change = |args: &[&str]| {
        let mut c = w.cmd();
        c.args(["demo", "change"]).args(args);
        c.output().unwrap()
    };
    let out = change(&["rename", "acme-data/notebooks", "notebooks-v2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("renamed acme-data/notebooks to acme-data/notebooks-v2"));
    assert_eq!(
        change(&["branch", "acme-mobile/ios-app", "trunk"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        change(&["create", "acme-mobile/wearables"]).status.code(),
        Some(0)
    );
    let names: Vec<String> =
        w.bb.estate()
            .workspaces
            .iter()
            .flat_map(|ws| {
                ws.repositories
                    .iter()
                    .map(move |r| format!("{}/{}", ws.slug, r.slug))
            })
            .collect();
    assert!(
        names.contains(&"acme-data/notebooks-v2".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"acme-mobile/wearables".to_owned()),
        "{names:?}"
    );
    // The plan follows each change.
    let plan = stdout(&w.cmd().arg("plan").output().unwrap());
    assert!(
        plan.contains("~ rename acme-data/notebooks → acme-data/notebooks-v2"),
        "{plan}"
    );
    assert!(plan.contains("⇄ branch acme-mobile/ios-app"), "{plan}");
    assert!(plan.contains("+ import acme-mobile/wearables"), "{plan}");
    // What cannot be done is refused with what to do, and changes nothing.
    let missing_to = change(&["rename", "acme-data/notebooks-v2"]);
    assert_eq!(missing_to.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing_to.stderr).contains("needs what to change it to"));
    let unknown = change(&["delete", "acme-data/nothing-here"]);
    assert_eq!(unknown.status.code(), Some(2));
    let real = w
        .cmd()
        .args(["demo", "change", "delete", "acme-data/notebooks-v2"])
        .env("BITBUCKET_CLOUD_API_URL", "https://api.bitbucket.org/2.0")
        .output()
        .unwrap();
    assert_eq!(real.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&real.stderr).contains("only changes the practice sandbox"));
    assert!(
        w.bb.estate()
            .workspaces
            .iter()
            .any(|ws| ws.repositories.iter().any(|r| r.slug == "notebooks-v2"))
    );
}

#[test]
fn serve_accepts_the_current_and_the_previous_secret_while_webhooks_move_to_the_new_one() {
    let w = World::new();
    let s = serve(
        &w,
        &["--workspaces", "acme-platform"],
        &[(
            "BITBUCKET_WEBHOOK_SECRET_PREVIOUS",
            "the-old-secret".to_owned(),
        )],
        true,
    );
    let sign = |secret: &str, body: &[u8]| {
        bitbucket_cloud_client::webhooks::signature(secret.as_bytes(), body)
    };
    for (n, secret, expected) in [
        (1, WEBHOOK_SECRET, 202),
        (2, "the-old-secret", 202),
        (3, "neither-secret", 401),
    ] {
        let (slug, uuid) = new_repository(&w, "acme-platform", 200 + n);
        let body = payload("acme-platform", &slug, &uuid);
        let signature = sign(secret, &body);
        let (status, text) = deliver(
            &w,
            &s,
            "repo:created",
            &format!("{{rot-{n}}}"),
            1,
            body,
            Some(signature),
        );
        assert_eq!(status, expected, "{secret}: {text}");
    }
    assert!(!w.files_text().contains("the-old-secret"));
}

#[test]
fn serve_caps_its_connections_and_the_size_of_a_request_head() {
    use std::io::Read;
    let w = World::new();
    let s = serve(&w, &["--max-connections", "3"], &[], false);
    let address = s.base.trim_start_matches("http://").to_owned();
    // Idle sockets take the slots; once all three are taken, the next connection is closed at
    // once (a connection still held is unanswered: its read times out).
    let mut idle = Vec::new();
    let mut closed = false;
    for _ in 0..8 {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 16];
        closed = match socket.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        if closed {
            break;
        }
        idle.push(socket);
    }
    assert!(closed, "no connection was closed beyond the cap");
    assert!(idle.len() <= 3, "{} connections held open", idle.len());
    drop(idle);
    // Slots free as the idle sockets go: the service answers again, and counts the refusal.
    eventually("the service answers again", || {
        http(&w, "GET", &format!("{}/healthz", s.base), &[], Vec::new()).0 == 200
    });
    let (_, metrics) = http(&w, "GET", &format!("{}/metrics", s.base), &[], Vec::new());
    assert!(
        metrics.contains("bb_snyk_mirror_connections_refused_total 1"),
        "{metrics}"
    );
    // A request head of 40 KiB is refused (431), not read.
    let huge = "y".repeat(40 * 1024);
    let (status, _) = http(
        &w,
        "GET",
        &format!("{}/healthz", s.base),
        &[("x-padding", huge)],
        Vec::new(),
    );
    assert_eq!(status, 431);
}

#[test]
fn verify_names_each_difference_and_exits_by_whether_all_are_explained() {
    let w = World::new();
    w.cmd().arg("sync").assert().code(0);
    w.cmd()
        .arg("verify")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Snyk equals Bitbucket for 11 repositories in 3 orgs",
        ));
    // A person removes a target: named, respected, explained (exit 0).
    let person = snyk_client::SnykClient::builder()
        .api_url(w.snyk.api_url())
        .auth(snyk_client::SnykAuth::token(snyk::SAMPLE_PERSON_TOKEN))
        .build()
        .unwrap();
    let target = w
        .snyk
        .targets()
        .into_iter()
        .find(|t| t.display_name == "acme-mobile/ios-app")
        .unwrap();
    w.rt.block_on(person.delete_target(&target.org_id, &target.id))
        .unwrap();
    w.cmd()
        .arg("verify")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "acme-mobile/ios-app: its target was removed from acme-mobile by {} on ",
            snyk::SAMPLE_PERSON_USER
        )))
        // The repository imported with no projects is the other one.
        .stdout(predicate::str::contains("; 2 differences, all explained"));
    // The plan says how to undo it with this binary's flag (the library says its setting).
    w.cmd()
        .arg("plan")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("hint: `sync --restore` undoes"));
    // Projects on another branch: not explained (exit 1), typed in JSON.
    let project = w
        .snyk
        .projects()
        .into_iter()
        .find(|p| p.name.starts_with("acme-data/pipelines:"))
        .unwrap();
    w.rt.block_on(person.update_project_branch(&project.org_id, &project.id, "old"))
        .unwrap();
    let out = w
        .cmd()
        .args(["verify", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = v["verification"]["differences"].as_array().unwrap();
    assert!(
        found.iter().any(|d| d["kind"] == "wrong-branch"
            && d["subject"] == "acme-data/pipelines"
            && d["explained"] == false),
        "{v}"
    );
    assert!(
        found.iter().any(|d| d["kind"] == "snyk"
            && d["difference"]["difference"] == "removed-in-snyk"
            && d["explained"] == true),
        "{v}"
    );
    assert_eq!(v["exit_code"], 1);
    // Nothing was written by verify.
    assert!(
        w.snyk
            .projects()
            .iter()
            .any(|p| p.branch.as_deref() == Some("old"))
    );
}

#[test]
fn a_delivery_that_keeps_failing_never_holds_back_another_and_is_set_aside() {
    let w = World::new();
    // Bitbucket refuses every answer about one workspace (credentials that lost it while its
    // webhook still fires): its repositories stay uncertain however often they are asked.
    w.bb.server().inject_on(
        "/2.0/repositories/acme-mobile",
        api_support::sandbox::Fault::Status(403),
        10_000,
    );
    let s = serve(&w, &["--set-aside-after", "2"], &[], true);
    for n in 0..2 {
        let uuid = format!("{{00000000-0000-4000-8000-{:012}}}", 900 + n);
        let (status, _) = deliver(
            &w,
            &s,
            "repo:updated",
            &format!("{{lost-{n}}}"),
            1,
            payload("acme-mobile", &format!("gone-{n}"), &uuid),
            None,
        );
        assert_eq!(status, 202);
    }
    let (slug, uuid) = new_repository(&w, "acme-platform", 300);
    let (status, _) = deliver(
        &w,
        &s,
        "repo:created",
        "{fine-1}",
        1,
        payload("acme-platform", &slug, &uuid),
        None,
    );
    assert_eq!(status, 202);
    eventually("the good delivery is imported", || {
        targets_named(&w, &format!("acme-platform/{slug}")) == 1
    });
    let listed = || -> serde_json::Value {
        let o = w
            .cmd()
            .args(["deliveries", "--output", "json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    eventually("both lost deliveries are set aside", || {
        listed()["set_aside"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    let v = listed();
    assert_eq!(v["queued"].as_array().map(Vec::len), Some(0), "{v}");
    let first = &v["set_aside"][0];
    assert_eq!(first["workspace"], "acme-mobile");
    assert_eq!(first["tries"], 2);
    assert!(first["why"].as_str().unwrap().contains("403"), "{first}");
    let (_, metrics) = http(&w, "GET", &format!("{}/metrics", s.base), &[], Vec::new());
    assert!(
        metrics.contains("bb_snyk_mirror_deliveries_set_aside_total 2"),
        "{metrics}"
    );
    // Nothing queued, and rounds never waited for Bitbucket's budget.
    assert!(
        metrics.contains("bb_snyk_mirror_queue_oldest_age_seconds 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bb_snyk_mirror_budget_wait_seconds 0"),
        "{metrics}"
    );
    let human = w.cmd().arg("deliveries").output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("Set aside after failing again and again (2 repositories"),
        "{text}"
    );
    // A restart does not take them again; its full reconcile covers them, and says so (what
    // was set aside in the second it began is kept: times are in whole seconds).
    drop(s);
    std::thread::sleep(Duration::from_millis(1100));
    let s = serve(&w, &["--set-aside-after", "2"], &[], true);
    eventually("the restart's full reconcile clears them", || {
        listed()["set_aside"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(listed()["queued"].as_array().map(Vec::len), Some(0));
    drop(s);
}

#[path = "../../mirror-core/tests/common/journal_gen.rs"]
#[allow(dead_code)]
mod journal_gen;

/// What a killed compaction must not lose: the orgs, the imports and their outcomes, the
/// deliveries still queued and those set aside.
fn lasting(dir: &std::path::Path) -> String {
    let s = mirror_core::advanced::journal::read_state(dir).unwrap();
    format!(
        "{:?}\n{:?}\n{:?}\n{} queued, {} set aside",
        s.orgs,
        s.imports,
        s.completed,
        s.pending_deliveries,
        s.set_aside.len()
    )
}

#[test]
fn sync_killed_while_it_compacts_the_journal_loses_nothing() {
    use mirror_core::advanced::journal::JOURNAL_FILE;
    use mirror_core::advanced::journal::compact::{COMPACTED_SIZE_FILE, COMPACTING_FILE};
    let w = World::with(Estate::generate(2, 4, 5), snyk::Sandbox::sample_builder());
    w.cmd().arg("sync").assert().code(0);
    let dir = w.state.path();
    // Four months of deliveries, as a service's journal holds them (12 MB, never compacted).
    let months = tempfile::tempdir().unwrap();
    journal_gen::write_journal(
        months.path(),
        &journal_gen::Shape {
            orgs: 1,
            imports: 0,
            deliveries: 30_000,
            days: 120,
            pending: 3,
        },
    );
    let mut grown = std::fs::read(dir.join(JOURNAL_FILE)).unwrap();
    grown.extend(std::fs::read(months.path().join(JOURNAL_FILE)).unwrap());
    std::fs::write(dir.join(JOURNAL_FILE), &grown).unwrap();
    let before = lasting(dir);
    // Each run finds nothing to import and compacts at its end; it is killed (SIGKILL) at
    // a growing delay after its temporary file appears: while it writes, after it syncs,
    // after it renames.
    let mut landed = 0;
    for delay in [0, 1, 2, 5, 10, 20, 40, 80, 160, 320] {
        std::fs::write(dir.join(JOURNAL_FILE), &grown).unwrap();
        let _ = std::fs::remove_file(dir.join(COMPACTED_SIZE_FILE));
        let mut child = w
            .process()
            .arg("sync")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if dir.join(COMPACTING_FILE).exists() {
                std::thread::sleep(Duration::from_millis(delay));
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                landed += 1;
                break;
            }
            assert!(std::time::Instant::now() < deadline, "sync hung");
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(
            lasting(dir),
            before,
            "killed {delay} ms into the compaction"
        );
    }
    assert!(
        landed >= 5,
        "only {landed} kills landed during a compaction"
    );
    // The next run removes what a killed compaction left, compacts, and has nothing to do.
    let out = w.cmd().arg("sync").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!dir.join(COMPACTING_FILE).exists());
    assert!(std::fs::metadata(dir.join(JOURNAL_FILE)).unwrap().len() * 5 < grown.len() as u64);
    assert_eq!(lasting(dir), before);
    assert_eq!(
        w.snyk
            .stats()
            .route("POST /v1/org/{orgId}/integrations/{integrationId}/import"),
        8,
        "each repository imported once"
    );
}
