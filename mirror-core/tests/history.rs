//! History survives, end to end through both sandboxes on tokio's paused clock: after a sync,
//! a person triages two repositories in Snyk (an ignore, a tag, three attributes, weekly tests,
//! an owner); one is renamed in Bitbucket, the other transferred to another workspace; the next
//! sync's new projects carry every ignore, tag, attribute, test frequency and owner of the old
//! ones, and the old targets are retired after.

mod common;

use bitbucket_cloud_client::sandbox::{self as bb, Estate};
use common::World;
use mirror_render::Render as _;
use snyk_client::sandbox::SAMPLE_PERSON_USER;
use snyk_client::{Ignore, ProjectSettings};

/// What the person sets on each project of `repo`.
fn triage(team: &str) -> ProjectSettings {
    let mut s = ProjectSettings::default();
    s.tags = vec![("team".to_owned(), team.to_owned())];
    s.criticality = vec!["high".to_owned()];
    s.environment = vec!["backend".to_owned()];
    s.lifecycle = vec!["production".to_owned()];
    s.test_frequency = Some("weekly".to_owned());
    s.owner = Some(SAMPLE_PERSON_USER.to_owned());
    s
}

/// The person triages every project of `repo`: one ignore and the settings of [`triage`].
async fn person_triages(w: &World, repo: &str, team: &str) {
    let person = w.person();
    for p in w.snyk.projects() {
        if p.name.starts_with(&format!("{repo}:")) {
            let ignore = Ignore::new(
                "SNYK-JS-LODASH-567746",
                "*",
                "not reachable from our code",
                "not-vulnerable",
            );
            person.add_ignore(&p.org_id, &p.id, &ignore).await.unwrap();
            person
                .update_project_settings(&p.org_id, &p.id, &triage(team))
                .await
                .unwrap();
        }
    }
}

/// The active projects of `repo` now.
fn active(w: &World, repo: &str) -> Vec<snyk_client::sandbox::SandboxProject> {
    w.snyk
        .projects()
        .into_iter()
        .filter(|p| p.active && p.name.starts_with(&format!("{repo}:")))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_rename_and_a_transfer_carry_every_ignore_tag_attribute_frequency_and_owner() {
    let w = World::with(Estate::generate(2, 10, 3), "").await;
    let moving = "only-here";
    w.bb.add_repository(
        "ws-0001",
        bb::SandboxRepository::new(moving, "{00000000-0000-4000-8000-0000000b0b13}"),
    );
    w.sync().await;
    let renaming = w.first_repos("ws-0001", 1)[0].clone();
    person_triages(&w, &format!("ws-0001/{renaming}"), "payments-10").await;
    person_triages(&w, &format!("ws-0001/{moving}"), "payments-13").await;
    assert!(w.bb.rename_repository("ws-0001", &renaming, "renamed-00010"));
    assert!(w.bb.transfer_repository("ws-0001", moving, "ws-0002"));

    let report = w.sync().await;
    assert_eq!(
        (report.renamed, report.moved),
        (1, 1),
        "{}",
        report.render()
    );
    assert_eq!(report.carried.len(), 2, "{}", report.render());
    for c in &report.carried {
        assert_eq!(
            (c.ignores, c.tags, c.attributes, c.test_frequency, c.owner),
            (1, 1, 3, 1, 1),
            "{c}"
        );
    }
    for (repo, team) in [
        ("ws-0001/renamed-00010", "payments-10"),
        (&*format!("ws-0002/{moving}"), "payments-13"),
    ] {
        let projects = active(&w, repo);
        assert!(!projects.is_empty(), "{repo} has no active project");
        for p in projects {
            assert_eq!(p.settings, triage(team), "{}", p.name);
            assert_eq!(p.ignores.len(), 1, "{}", p.name);
            let i = &p.ignores[0];
            assert_eq!(i.issue_id, "SNYK-JS-LODASH-567746");
            assert_eq!(i.reason_type, "not-vulnerable");
            assert!(
                i.reason
                    .starts_with("not reachable from our code (ignored by ")
                    && i.reason.contains(SAMPLE_PERSON_USER),
                "{}",
                i.reason
            );
        }
    }
    // The old targets are retired, after.
    assert!(active(&w, &format!("ws-0001/{renaming}")).is_empty());
    assert!(active(&w, &format!("ws-0001/{moving}")).is_empty());
    w.assert_equal();
    w.assert_settled().await;
}

const RULES: &str = r#"
[[metadata]]
match = { workspace = "ws-*" }
tags = { bb-project = "{project.key}", bb-workspace = "{workspace}" }
criticality = ["high"]
lifecycle = ["production"]
"#;

/// The active projects of `repo` and the value of their tag `key`.
fn tag(w: &World, repo: &str, key: &str) -> Vec<Option<String>> {
    active(w, repo)
        .iter()
        .map(|p| {
            p.settings
                .tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn metadata_rules_are_applied_at_import_and_kept_in_step() {
    let w = World::with(Estate::generate(1, 6, 3), RULES).await;
    let report = w.sync().await;
    assert!(report.metadata_set > 0, "{}", report.render());
    let repo = w.first_repos("ws-0001", 1)[0].clone();
    let full = format!("ws-0001/{repo}");
    let key =
        w.bb.estate()
            .workspaces
            .iter()
            .flat_map(|ws| &ws.repositories)
            .find(|r| r.slug == repo)
            .and_then(|r| r.project_key.clone())
            .unwrap();
    assert!(
        tag(&w, &full, "bb-project")
            .iter()
            .all(|v| v.as_deref() == Some(key.as_str()))
    );
    for p in active(&w, &full) {
        assert_eq!(p.settings.criticality, vec!["high".to_owned()]);
        assert_eq!(p.settings.lifecycle, vec!["production".to_owned()]);
    }
    // Applied: nothing left to change.
    let plan = w.plan().await;
    assert_eq!(plan.summary().metadata, 0, "{}", plan.render());

    // A person's own tag of another key is kept; the repository moves to another project.
    let person = w.person();
    for p in active(&w, &full) {
        let mut s = p.settings.clone();
        s.tags
            .push(("owner-team".to_owned(), "payments".to_owned()));
        person
            .update_project_settings(&p.org_id, &p.id, &s)
            .await
            .unwrap();
    }
    // Another project of the generated workspace (CORE, WEB, DATA).
    let other = if key == "CORE" { "WEB" } else { "CORE" };
    assert!(w.bb.set_project_key("ws-0001", &repo, other));
    w.forget_listings();
    let plan = w.plan().await;
    assert!(
        plan.render().contains(&format!(
            "✎ {full} (package.json) tags bb-project {key} → {other}"
        )),
        "{}",
        plan.render()
    );
    let changed = plan.summary().metadata;
    assert_eq!(
        changed,
        active(&w, &full).len(),
        "writes = projects changed"
    );
    let report = w.mirror().apply(&plan).await.unwrap();
    assert_eq!(report.metadata_set, changed, "{}", report.render());
    assert!(
        tag(&w, &full, "bb-project")
            .iter()
            .all(|v| v.as_deref() == Some(other))
    );
    assert!(
        tag(&w, &full, "owner-team")
            .iter()
            .all(|v| v.as_deref() == Some("payments"))
    );
    assert_eq!(w.plan().await.summary().metadata, 0);
}

#[tokio::test(start_paused = true)]
async fn tags_refused_by_snyk_are_named_once_and_the_attributes_still_set() {
    let w = World::with_snyk(Estate::generate(1, 6, 3), RULES, |b| b.without_tags()).await;
    w.sync().await;
    let repo = format!("ws-0001/{}", w.first_repos("ws-0001", 1)[0]);
    assert!(tag(&w, &repo, "bb-project").iter().all(Option::is_none));
    // The attributes were set at import; the next sync tries the tags and names the refusal
    // once for the org.
    for p in active(&w, &repo) {
        assert_eq!(p.settings.criticality, vec!["high".to_owned()]);
    }
    let report = w.sync().await;
    let named: Vec<&String> = report
        .warnings
        .iter()
        .filter(|l| l.contains("Snyk refused tags"))
        .collect();
    assert_eq!(named.len(), 1, "{}", report.render());
    assert!(
        named[0].contains("Tags are not available on your plan"),
        "{}",
        named[0]
    );
    // Remembered: the next plan does not try the tags again (for a week).
    let plan = w.plan().await;
    assert_eq!(plan.summary().metadata, 0, "{}", plan.render());
}

#[tokio::test(start_paused = true)]
async fn a_workspace_rename_carries_the_history_of_its_repositories() {
    let w = World::with(Estate::generate(1, 4, 3), "").await;
    w.sync().await;
    let repo = w.first_repos("ws-0001", 1)[0].clone();
    person_triages(&w, &format!("ws-0001/{repo}"), "core").await;
    assert!(w.bb.rename_workspace("ws-0001", "acme-renamed"));
    let report = w.sync().await;
    assert!(!report.carried.is_empty(), "{}", report.render());
    let projects = active(&w, &format!("acme-renamed/{repo}"));
    assert!(!projects.is_empty(), "{}", report.render());
    for p in projects {
        assert_eq!(p.settings, triage("core"), "{}", p.name);
        assert_eq!(p.ignores.len(), 1, "{}", p.name);
    }
    assert!(active(&w, &format!("ws-0001/{repo}")).is_empty());
}
