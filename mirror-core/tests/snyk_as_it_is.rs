//! Snyk as it is, end to end through both sandboxes on tokio's paused clock: after a sync, a
//! person changes Snyk (removes a target, deactivates projects, imports what this mirror never
//! imported, adds a second target, moves projects to another branch, creates a second org of a
//! name); every plan names each change with its reason, the default sync leaves people's
//! changes, `restore` undoes them, `adopt` and `dedupe` retire only what is certain, and
//! `verify` says which differences are explained.

mod common;

use mirror_render::Render as _;
use std::time::Duration;

use bitbucket_cloud_client::sandbox::Estate;
use common::World;
use mirror_core::config::PeopleChanges;
use mirror_core::differences::{DifferenceKind, Response};
use mirror_core::{Action, Plan, Verification};
use snyk_client::ImportRequest;
use snyk_client::sandbox::SAMPLE_PERSON_USER;

/// The differences a plan names, by kind label and subject.
fn differences(plan: &Plan) -> Vec<(String, String, Response)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Differs(d) => Some((
                d.label().to_owned(),
                d.repository.clone().unwrap_or_else(|| d.org.clone()),
                d.response,
            )),
            _ => None,
        })
        .collect()
}

fn imports(plan: &Plan) -> usize {
    plan.summary().imports
}

/// One workspace of 12 repositories, synced once.
async fn synced(extra: &str) -> World {
    let w = World::with_snyk(Estate::generate(1, 12, 3), extra, |b| {
        b.default_integrations(&["bitbucket-cloud", "bitbucket-connect-app"])
    })
    .await;
    let report = w.sync().await;
    assert!(report.imports_completed > 0, "{}", report.render());
    w
}

/// A person imports `full_name` into the org `org` through `integration`, and the job ends.
async fn person_imports(w: &World, org: &str, full_name: &str, integration: &str) {
    let person = w.person();
    let org_id = w.org_id(org);
    let integration_id = w
        .snyk
        .orgs()
        .into_iter()
        .find(|o| o.id == org_id)
        .and_then(|o| o.integrations.get(integration).cloned())
        .unwrap();
    let (ws, repo) = full_name.split_once('/').unwrap();
    let job = person
        .import(
            &org_id,
            &integration_id,
            &ImportRequest::new(ws, repo, Some("main")),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    person.wait_for_import(&job).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn people_changes_are_named_left_by_default_and_restored_when_asked() {
    let mut w = synced("").await;
    let (removed, deactivated) = a_person_changes_three_things(&w).await;
    the_plan_names_them_with_the_person(&w, &removed, &deactivated).await;
    the_default_sync_leaves_them_and_verify_holds(&w, &deactivated).await;
    restore_undoes_what_this_mirror_made(&mut w, &deactivated).await;
}

/// A person removes one target, deactivates another's projects and imports a repository
/// this mirror never imported; the first two, by full name.
async fn a_person_changes_three_things(w: &World) -> (String, String) {
    let repos = w.first_repos("ws-0001", 3);
    let (removed, deactivated) = (
        format!("ws-0001/{}", repos[0]),
        format!("ws-0001/{}", repos[1]),
    );
    let person = w.person();
    let org_id = w.org_id("ws-0001");
    person
        .delete_target(&org_id, &w.target_of(&removed).id)
        .await
        .unwrap();
    for p in w.snyk.projects() {
        if p.name.starts_with(&format!("{deactivated}:")) {
            person
                .set_project_active(&org_id, &p.id, false)
                .await
                .unwrap();
        }
    }
    person_imports(w, "ws-0001", "ws-existing/ghost-repo", "bitbucket-cloud").await;
    (removed, deactivated)
}

/// The plan names all three, with the person, and imports nothing; its JSON reads back the
/// same (a saved plan applies as shown).
async fn the_plan_names_them_with_the_person(w: &World, removed: &str, deactivated: &str) {
    let plan = w.plan().await;
    let named = differences(&plan);
    assert!(
        named.contains(&(
            "removed in Snyk".into(),
            removed.to_owned(),
            Response::Respected
        )),
        "{}",
        plan.render()
    );
    assert!(
        named.contains(&(
            "deactivated in Snyk".into(),
            deactivated.to_owned(),
            Response::Respected
        )),
        "{}",
        plan.render()
    );
    assert!(
        named.contains(&(
            "in Snyk only".into(),
            "ws-existing/ghost-repo".into(),
            Response::Named
        )),
        "{}",
        plan.render()
    );
    assert_eq!(imports(&plan), 0, "{}", plan.render());
    let text = plan.render();
    assert!(
        text.contains(&format!("by {SAMPLE_PERSON_USER} on ")),
        "{text}"
    );
    assert!(
        text.contains("\"restore\" imports it again"),
        "the library says how in its own settings: {text}"
    );
    assert!(!text.contains("--restore"), "{text}");
    // Typed in the plan's JSON, and read back the same (a saved plan applies as shown).
    let json = plan.to_json().unwrap();
    assert!(
        json.contains(r#""difference": "removed-in-snyk""#),
        "{json}"
    );
    assert_eq!(Plan::from_json(&json).unwrap(), plan);
}

/// The default sync leaves them, and names them in its report; verify holds.
async fn the_default_sync_leaves_them_and_verify_holds(w: &World, deactivated: &str) {
    let posts = w.snyk.import_posts().values().sum::<usize>();
    let report = w.sync().await;
    assert_eq!(w.snyk.import_posts().values().sum::<usize>(), posts);
    assert_eq!(report.differences.len(), 3, "{}", report.render());
    assert_eq!(w.active(deactivated), 0);
    let verification = Verification::of(&w.plan().await);
    assert!(verification.holds(), "{}", verification.render());
    assert!(
        verification.closing_line().starts_with(
            "Snyk equals Bitbucket for 12 repositories in 1 org; 3 differences, all explained"
        ),
        "{}",
        verification.render()
    );
}

/// Restore: the removed target is imported again, the projects reactivated; a target never
/// imported by this mirror is still not touched, and the same plan applied again posts
/// nothing (the target is looked for by name first).
async fn restore_undoes_what_this_mirror_made(w: &mut World, deactivated: &str) {
    w.config.snyk.people_changes = PeopleChanges::Restore;
    let plan = w.plan().await;
    assert_eq!(imports(&plan), 1, "{}", plan.render());
    let report = w.mirror().apply(&plan).await.unwrap();
    assert_eq!(report.imports_accepted, 1, "{}", report.render());
    assert_eq!(report.reactivated, vec![deactivated.to_owned()]);
    assert!(
        report
            .render()
            .contains("(2 acted on by this run, 0 not explained)"),
        "{}",
        report.render()
    );
    assert!(w.active(deactivated) > 0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The same plan applied again posts nothing: the target is looked for by name first.
    let posts = w.snyk.import_posts().values().sum::<usize>();
    let again = w.mirror().apply(&plan).await.unwrap();
    assert_eq!(
        w.snyk.import_posts().values().sum::<usize>(),
        posts,
        "{}",
        again.render()
    );
    w.config.snyk.people_changes = PeopleChanges::Respect;
    let verification = Verification::of(&w.plan().await);
    assert_eq!(
        verification.differences.len(),
        1,
        "{}",
        verification.render()
    );
    assert!(verification.holds());
    assert!(
        w.snyk
            .projects()
            .iter()
            .any(|p| p.name.starts_with("ws-existing/ghost-repo:") && p.active)
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_audit_log_a_change_is_still_named_by_someone_else() {
    let w = World::with_snyk(Estate::generate(1, 5, 3), "", |b| b.without_audit_logs()).await;
    w.sync().await;
    let removed = format!("ws-0001/{}", w.first_repos("ws-0001", 1)[0]);
    w.person()
        .delete_target(&w.org_id("ws-0001"), &w.target_of(&removed).id)
        .await
        .unwrap();
    let plan = w.plan().await;
    let text = plan.render();
    assert!(
        text.contains("removed from ws-0001 by someone other than this mirror;"),
        "{text}"
    );
    assert_eq!(imports(&plan), 0);
}

#[tokio::test(start_paused = true)]
async fn adopt_retires_a_target_never_mirrored_only_on_certain_evidence() {
    let w = synced("[drift]\nadopt = true\n").await;
    // Not in its workspace's complete listing: certain. In a workspace not visible: not.
    person_imports(&w, "ws-0001", "ws-0001/never-was", "bitbucket-cloud").await;
    person_imports(&w, "ws-0001", "ws-existing/ghost-repo", "bitbucket-cloud").await;
    let plan = w.plan().await;
    let named = differences(&plan);
    assert!(
        named.contains(&(
            "in Snyk only".into(),
            "ws-0001/never-was".into(),
            Response::Retired
        )),
        "{}",
        plan.render()
    );
    assert!(
        named.contains(&(
            "in Snyk only".into(),
            "ws-existing/ghost-repo".into(),
            Response::Named
        )),
        "{}",
        plan.render()
    );
    w.mirror().apply(&plan).await.unwrap();
    assert_eq!(w.active("ws-0001/never-was"), 0);
    assert!(w.active("ws-existing/ghost-repo") > 0);
    // Retired by this mirror: no longer a difference of Snyk's side, and nothing more to do.
    let plan = w.plan().await;
    assert!(
        !differences(&plan)
            .iter()
            .any(|d| d.1 == "ws-0001/never-was"),
        "{}",
        plan.render()
    );
    assert!(plan.is_noop(), "{}", plan.render());
}

#[tokio::test(start_paused = true)]
async fn a_second_target_is_named_and_retired_only_with_dedupe() {
    let mut w = synced("").await;
    let repo = format!("ws-0001/{}", w.first_repos("ws-0001", 1)[0]);
    person_imports(&w, "ws-0001", &repo, "bitbucket-connect-app").await;
    let plan = w.plan().await;
    assert!(
        differences(&plan).contains(&("duplicate target".into(), repo.clone(), Response::Named)),
        "{}",
        plan.render()
    );
    let verification = Verification::of(&plan);
    assert!(!verification.holds(), "a duplicate is not explained");
    assert!(
        verification
            .closing_line()
            .starts_with("Snyk does not equal Bitbucket"),
        "{}",
        verification.closing_line()
    );
    let report = w.sync().await;
    assert_eq!(w.active(&repo), 2, "{}", report.render());

    w.config.drift.dedupe = true;
    let report = w.sync().await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    assert_eq!(w.active(&repo), 1);
    w.config.drift.dedupe = false;
    let verification = Verification::of(&w.plan().await);
    assert!(verification.holds(), "{}", verification.render());
    assert!(differences(&w.plan().await).is_empty());
}

#[tokio::test(start_paused = true)]
async fn projects_moved_to_another_branch_in_snyk_come_back_to_the_default() {
    let w = synced("").await;
    let repo = format!("ws-0001/{}", w.first_repos("ws-0001", 1)[0]);
    let person = w.person();
    for p in w.snyk.projects() {
        if p.name.starts_with(&format!("{repo}:")) {
            person
                .update_project_branch(&p.org_id, &p.id, "feature/x")
                .await
                .unwrap();
        }
    }
    let main = w.live()[&repo].clone();
    let plan = w.plan().await;
    assert!(
        plan.render()
            .contains(&format!("⇄ branch {repo} feature/x → {main}")),
        "{}",
        plan.render()
    );
    assert!(!Verification::of(&plan).holds());
    w.mirror().apply(&plan).await.unwrap();
    w.assert_equal();
    assert!(Verification::of(&w.plan().await).holds());
}

#[tokio::test(start_paused = true)]
async fn a_second_org_of_the_name_is_named_and_the_rest_goes_on() {
    let w = synced("").await;
    let other = w.snyk.add_org("ws-0001", &["bitbucket-cloud"]);
    assert!(w.bb.add_repository(
        "ws-0001",
        bitbucket_cloud_client::sandbox::SandboxRepository::new(
            "one-more",
            "{00000000-0000-4000-8000-00000000e0f1}"
        )
    ));
    let plan = w.plan().await;
    let named: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Differs(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(named.len(), 1, "{}", plan.render());
    assert_eq!(named[0].org_id.as_str(), other);
    assert!(matches!(
        named[0].kind,
        DifferenceKind::DuplicateOrg { targets: 0, .. }
    ));
    assert_eq!(imports(&plan), 1, "{}", plan.render());
    let report = w.mirror().apply(&plan).await.unwrap();
    assert_eq!(report.imports_accepted, 1, "{}", report.render());
    assert!(report.conflicts.is_empty());
    let verification = Verification::of(&w.plan().await);
    assert_eq!(verification.unexplained(), 1, "{}", verification.render());
}

/// Orgs that share a name, and Bitbucket targets that share an org and a name, beyond the
/// first of each.
fn duplicates(w: &World) -> (usize, usize) {
    let mut orgs = std::collections::BTreeMap::<String, usize>::new();
    for o in w.snyk.orgs() {
        *orgs.entry(o.name).or_default() += 1;
    }
    let mut targets = std::collections::BTreeMap::<(String, String), usize>::new();
    for t in w.snyk.targets() {
        *targets
            .entry((t.org_id, t.display_name.to_lowercase()))
            .or_default() += 1;
    }
    let extra = |m: Vec<usize>| m.into_iter().map(|n| n - 1).sum::<usize>();
    (
        extra(orgs.into_values().collect()),
        extra(targets.into_values().collect()),
    )
}

/// Measured on this commit: before orgs were settled after their creation, 19 of the 20
/// rounds left duplicates (35 duplicate orgs, 0 duplicate targets); since, none.
#[tokio::test(start_paused = true)]
async fn two_syncs_on_two_state_directories_at_once_end_with_one_org_of_each_name() {
    let (mut org_dups, mut target_dups, mut rounds_with_dups) = (0, 0, 0);
    for round in 0..20 {
        let w = World::with(Estate::generate(2, 6, round), "").await;
        let second = tempfile::tempdir().unwrap();
        let (a, b) = (w.mirror(), w.mirror_at(second.path()));
        let sync = |m: mirror_core::Mirror| async move {
            let plan = m.plan().await.unwrap();
            m.apply(&plan).await.unwrap()
        };
        tokio::join!(sync(a), sync(b));
        let (o, t) = duplicates(&w);
        org_dups += o;
        target_dups += t;
        rounds_with_dups += usize::from(o + t > 0);
        // Whatever happened, a later sync of either state directory is not stuck, and
        // verify does not claim equality while a duplicate remains.
        let v = Verification::of(&w.plan().await);
        assert_eq!(v.holds(), o + t == 0, "{}", v.render());
    }
    eprintln!(
        "two syncs at once, 20 rounds: {rounds_with_dups} rounds with duplicates; {org_dups} duplicate orgs, {target_dups} duplicate targets"
    );
    assert_eq!(org_dups, 0, "two orgs of one name were left");
}

/// Requests on the routes that read an org in full: targets and projects.
fn org_reads(w: &World) -> (u64, u64) {
    let stats = w.snyk.stats();
    (
        stats.route("GET /rest/orgs/{org_id}/targets"),
        stats.route("GET /rest/orgs/{org_id}/projects"),
    )
}

#[tokio::test(start_paused = true)]
async fn a_resync_reads_again_only_the_orgs_the_audit_log_names() {
    let w = World::with(Estate::generate(3, 12, 3), "").await;
    w.sync().await;
    // The first sync changed every org: the second reads them all, and keeps the reads.
    w.sync().await;
    let before = org_reads(&w);
    let plan = w.plan().await;
    assert!(plan.is_noop(), "{}", plan.render());
    assert!(plan.compared.is_some());
    assert_eq!(
        org_reads(&w),
        before,
        "an unchanged estate reads no org again"
    );
    // A person deactivates the projects of one repository: only its org is read again.
    let repo = format!("ws-0002/{}", w.first_repos("ws-0002", 1)[0]);
    let person = w.person();
    for p in w.snyk.projects() {
        if p.name.starts_with(&format!("{repo}:")) {
            person
                .set_project_active(&p.org_id, &p.id, false)
                .await
                .unwrap();
        }
    }
    let before = org_reads(&w);
    let plan = w.plan().await;
    assert!(
        differences(&plan).contains(&("deactivated in Snyk".into(), repo, Response::Respected)),
        "{}",
        plan.render()
    );
    let after = org_reads(&w);
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn without_an_audit_log_every_org_is_read_every_time() {
    let w = World::with_snyk(Estate::generate(3, 12, 3), "", |b| b.without_audit_logs()).await;
    w.sync().await;
    w.sync().await;
    let before = org_reads(&w);
    assert!(w.plan().await.is_noop());
    let after = org_reads(&w);
    assert_eq!((after.0 - before.0, after.1 - before.1), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn an_org_that_cannot_be_read_holds_back_only_its_own_repositories() {
    let w = World::with(Estate::generate(2, 6, 3), "").await;
    w.sync().await;
    // New repositories in both workspaces; one org's projects cannot be listed.
    for (ws, uuid) in [
        ("ws-0001", "{00000000-0000-4000-8000-00000000f001}"),
        ("ws-0002", "{00000000-0000-4000-8000-00000000f002}"),
    ] {
        assert!(w.bb.add_repository(
            ws,
            bitbucket_cloud_client::sandbox::SandboxRepository::new("fresh", uuid)
        ));
    }
    let unread = w.org_id("ws-0001");
    w.snyk.server().inject_on(
        &format!("/rest/orgs/{unread}/projects"),
        snyk_client::api_support::sandbox::Fault::Status(403),
        1_000,
    );
    let plan = w.plan().await;
    let text = plan.render();
    assert!(
        text.contains("! conflict ws-0001: the org could not be read"),
        "{text}"
    );
    assert_eq!(imports(&plan), 1, "{text}");
    assert!(
        plan.compared.is_none(),
        "no equality is claimed without a full read"
    );
    let report = w.mirror().apply(&plan).await.unwrap();
    assert_eq!(report.imports_accepted, 1, "{}", report.render());
    assert!(
        w.snyk
            .targets()
            .iter()
            .any(|t| t.display_name == "ws-0002/fresh")
    );
}

#[tokio::test(start_paused = true)]
async fn the_orgs_of_many_workspaces_are_made_ready_side_by_side() {
    // Three workspaces, each a new org: each is a few requests (look by name, create, look
    // again, its integrations), and the orgs must not wait for each other before the first
    // import. Each request takes 50 ms of the paused clock, so orgs prepared one after the
    // other journal each org ready before the next org's intent.
    let w = World::with_snyk(Estate::generate(3, 2, 1), "", |b| {
        b.latency(Duration::from_millis(50))
    })
    .await;
    let report = w.sync().await;
    assert_eq!(report.orgs_created.len(), 3, "{}", report.render());
    let journal = std::fs::read_to_string(
        w.state
            .path()
            .join(mirror_core::advanced::journal::JOURNAL_FILE),
    )
    .unwrap();
    let kinds: Vec<&str> = journal
        .lines()
        .filter_map(|l| {
            ["org-create-intent", "org-ready"]
                .into_iter()
                .find(|k| l.contains(&format!("\"event\":\"{k}\"")))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "org-create-intent",
            "org-create-intent",
            "org-create-intent",
            "org-ready",
            "org-ready",
            "org-ready"
        ],
        "{journal}"
    );
    // The report keeps the plan's order whatever order they became ready in.
    let mut sorted = report.orgs_created.clone();
    sorted.sort();
    assert_eq!(report.orgs_created, sorted);
}
