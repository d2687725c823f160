//! A true mirror, end to end through both sandboxes on tokio's paused clock: sync; change
//! Bitbucket (rename, transfer, delete, default branch, workspace rename, workspace hidden,
//! out of scope); the plan names the change; sync; Snyk equals Bitbucket; a third sync has
//! nothing to do.

mod common;

use mirror_render::Render as _;
use std::collections::BTreeMap;
use std::time::Duration;

use bitbucket_cloud_client::sandbox::{self as bb, Estate, SAMPLE_API_TOKEN, SAMPLE_EMAIL};
use bitbucket_cloud_client::{Auth, BitbucketClient};
use common::{World, changes};
use mirror_core::{Config, Plan, Report};
use snyk_client::sandbox::SAMPLE_TOKEN;
use snyk_client::{SnykAuth, SnykClient};

#[tokio::test(start_paused = true)]
async fn a_renamed_repository_is_imported_under_its_new_name_and_the_old_target_retired() {
    let w = World::start().await;
    w.sync().await;
    w.assert_equal();
    let slug = &w.first_repos("ws-0001", 1)[0];
    assert!(w.bb.rename_repository("ws-0001", slug, "renamed-one"));
    let plan = w.plan().await;
    assert!(
        plan.render()
            .contains(&format!("~ rename ws-0001/{slug} → ws-0001/renamed-one")),
        "{}",
        plan.render()
    );
    assert_eq!(plan.summary().renamed, 1);
    let report = w.sync().await;
    assert_eq!(report.renamed, 1, "{}", report.render());
    assert!(!report.has_failures(), "{}", report.render());
    w.assert_equal();
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_transferred_repository_moves_to_the_destination_org() {
    let w = World::start().await;
    // A slug only ws-0001 has (generated workspaces share their slugs).
    let slug = "only-here";
    w.bb.add_repository(
        "ws-0001",
        bb::SandboxRepository::new(slug, "{00000000-0000-4000-8000-0000000a11ce}"),
    );
    w.sync().await;
    // Bitbucket refuses a transfer onto a slug the destination has.
    let taken = w.first_repos("ws-0001", 1)[0].clone();
    assert!(!w.bb.transfer_repository("ws-0001", &taken, "ws-0002"));
    assert!(w.bb.transfer_repository("ws-0001", slug, "ws-0002"));
    let plan = w.plan().await;
    assert!(
        plan.render()
            .contains(&format!("→ move ws-0001/{slug} → ws-0002/{slug}")),
        "{}",
        plan.render()
    );
    let report = w.sync().await;
    assert_eq!(report.moved, 1, "{}", report.render());
    w.assert_equal();
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_deleted_repository_is_confirmed_by_uuid_and_retired() {
    let w = World::start().await;
    w.sync().await;
    let slug = &w.first_repos("ws-0001", 1)[0];
    assert!(w.bb.delete_repository("ws-0001", slug));
    let plan = w.plan().await;
    let text = plan.render();
    assert!(
        text.contains(&format!(
            "- retire ws-0001/{slug} (deleted in Bitbucket; deactivate)"
        )),
        "{text}"
    );
    // The deletion was confirmed by a lookup by uuid.
    assert!(
        w.bb.stats()
            .route("GET /repositories/{workspace}/{repo_slug}")
            >= 1
    );
    let report = w.sync().await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    w.assert_equal();
    // Deactivated, not deleted: reversible.
    assert!(
        w.snyk
            .projects()
            .iter()
            .any(|p| !p.active && p.name.starts_with(&format!("ws-0001/{slug}:")))
    );
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_changed_default_branch_moves_the_projects() {
    let w = World::start().await;
    w.sync().await;
    let slug = &w.first_repos("ws-0002", 1)[0];
    let before = w.live()[&format!("ws-0002/{slug}")].clone();
    assert!(w.bb.set_main_branch("ws-0002", slug, "trunk"));
    let plan = w.plan().await;
    assert!(
        plan.render()
            .contains(&format!("⇄ branch ws-0002/{slug} {before} → trunk")),
        "{}",
        plan.render()
    );
    let report = w.sync().await;
    assert_eq!(report.branches_updated.len(), 1, "{}", report.render());
    assert_eq!(
        report.imports_accepted, 0,
        "a branch change posts no import"
    );
    w.assert_equal();
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_renamed_workspace_renames_its_org_and_its_repositories_follow() {
    let w = World::start().await;
    w.sync().await;
    let org_id = w
        .snyk
        .orgs()
        .into_iter()
        .find(|o| o.name == "ws-0001")
        .unwrap()
        .id;
    assert!(w.bb.rename_workspace("ws-0001", "ws-corp"));
    let plan = w.plan().await;
    assert!(
        plan.render().contains("~ rename org ws-0001 → ws-corp"),
        "{}",
        plan.render()
    );
    assert_eq!(plan.summary().orgs_to_create, 0, "{}", plan.render());
    let report = w.sync().await;
    assert!(!report.has_failures(), "{}", report.render());
    let orgs = w.snyk.orgs();
    assert!(orgs.iter().any(|o| o.id == org_id && o.name == "ws-corp"));
    assert_eq!(orgs.len(), 2, "no org was created");
    w.assert_equal();
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_workspace_no_longer_visible_retires_nothing_and_is_named() {
    let w = World::start().await;
    w.sync().await;
    w.bb.hide_workspace("ws-0002");
    let plan = w.plan().await;
    let text = plan.render();
    assert!(
        text.contains("! workspace ws-0002 (org ws-0002, ") && text.contains("no longer visible"),
        "{text}"
    );
    assert_eq!(plan.summary().retired, 0);
    let before = changes(&w.snyk);
    w.sync().await;
    assert_eq!(changes(&w.snyk), before, "nothing changed in Snyk");
}

#[tokio::test(start_paused = true)]
async fn deleting_30_percent_of_an_org_is_held_back_unless_allowed() {
    let w = World::start().await;
    w.sync().await;
    let gone = w.first_repos("ws-0001", 12);
    for slug in &gone {
        assert!(w.bb.delete_repository("ws-0001", slug));
    }
    let plan = w.plan().await;
    assert_eq!(plan.summary().retired, 0, "{}", plan.render());
    assert_eq!(plan.summary().conflicts, 1, "{}", plan.render());
    let before = changes(&w.snyk);
    let report = w.sync().await;
    assert!(
        report.has_failures(),
        "the held-back retirements fail the run"
    );
    assert_eq!(changes(&w.snyk), before);
    let allowed = World {
        config: {
            let mut c = w.config.clone();
            c.drift.allow_mass_retire = true;
            c
        },
        ..w
    };
    let report = allowed.sync().await;
    assert_eq!(report.retired.len(), gone.len(), "{}", report.render());
    allowed.assert_equal();
}

#[tokio::test(start_paused = true)]
async fn report_mode_changes_nothing_and_delete_mode_leaves_no_project() {
    let w = World::with(Estate::generate(1, 20, 3), "[drift]\nretire = \"report\"\n").await;
    w.sync().await;
    let slug = &w.first_repos("ws-0001", 1)[0];
    assert!(w.bb.delete_repository("ws-0001", slug));
    let before = changes(&w.snyk);
    let report = w.sync().await;
    assert_eq!(changes(&w.snyk), before, "report mode changed Snyk");
    assert!(
        report.retired[0].to_string().contains("reported only"),
        "{report:?}"
    );
    assert_eq!(
        report.retired[0].mode,
        mirror_core::config::RetireMode::Report
    );
    // Named again next time: nothing was recorded as done.
    assert_eq!(w.plan().await.summary().retired, 1);

    let w = World {
        config: {
            let mut c = w.config.clone();
            c.drift.retire = mirror_core::config::RetireMode::Delete;
            c.drift.delete_after = Some("0s".into());
            c
        },
        ..w
    };
    // Reversible first: deactivated by one run, deleted by the next that finds it gone again.
    let report = w.sync().await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    assert!(
        report.render().contains("deactivated in"),
        "{}",
        report.render()
    );
    assert_eq!(w.active(&format!("ws-0001/{slug}")), 0);
    let report = w.sync().await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    assert!(
        report.render().contains("deleted in"),
        "{}",
        report.render()
    );
    let prefix = format!("ws-0001/{slug}:");
    assert!(
        !w.snyk
            .projects()
            .iter()
            .any(|p| p.name.starts_with(&prefix)),
        "a project of the deleted target is left"
    );
    assert!(
        !w.snyk
            .targets()
            .iter()
            .any(|t| t.display_name == format!("ws-0001/{slug}"))
    );
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_repository_now_out_of_scope_is_reported_and_retired_only_when_asked() {
    let w = World::start().await;
    w.sync().await;
    let slug = w.first_repos("ws-0001", 1)[0].clone();
    let excluded = World {
        config: {
            let mut c = w.config.clone();
            c.source.exclude_repositories = vec![format!("ws-0001/{slug}")];
            c
        },
        ..w
    };
    let plan = excluded.plan().await;
    assert!(
        plan.render().contains(&format!(
            "? out of scope ws-0001/{slug} (excluded (matched by ws-0001/{slug}))"
        )),
        "{}",
        plan.render()
    );
    assert_eq!(plan.summary().retired, 0);
    let retire = World {
        config: {
            let mut c = excluded.config.clone();
            c.drift.out_of_scope = mirror_core::config::OutOfScope::Retire;
            c
        },
        ..excluded
    };
    assert_eq!(retire.plan().await.summary().retired, 1);
    let report = retire.sync().await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
}

#[tokio::test(start_paused = true)]
async fn a_repository_imported_through_the_cloud_app_is_not_imported_again() {
    let w = World::with(Estate::generate(1, 5, 9), "").await;
    // The org exists with the Bitbucket Cloud App, and one repository came in through it.
    let org = w
        .snyk
        .add_org("ws-0001", &["bitbucket-connect-app", "bitbucket-cloud"]);
    let client = SnykClient::builder()
        .api_url(w.snyk.api_url())
        .auth(SnykAuth::token(SAMPLE_TOKEN))
        .build()
        .unwrap();
    let app = w.snyk.orgs()[0].integrations["bitbucket-connect-app"].clone();
    let slug = w.first_repos("ws-0001", 1)[0].clone();
    let job = client
        .import(
            &org,
            &app,
            &snyk_client::ImportRequest::new("ws-0001", &slug, Some("main")),
        )
        .await
        .unwrap();
    client.wait_for_import(&job).await.unwrap();
    let posts = w.snyk.import_posts();
    w.sync().await;
    let after = w.snyk.import_posts();
    assert_eq!(
        after.get(&format!("ws-0001/{slug}")),
        posts.get(&format!("ws-0001/{slug}")),
        "imported again through the other integration"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resync_asks_only_what_changed_and_lists_in_full_when_the_count_disagrees() {
    let w = World::start().await;
    w.sync().await;
    let listings = |w: &World| w.bb.stats().route("GET /repositories/{workspace}");
    // Unchanged: two requests a workspace (what changed since, and how many there are).
    w.bb.server().reset_stats();
    assert!(w.plan().await.is_noop());
    assert_eq!(listings(&w), 4, "{:?}", w.bb.stats().per_route);
    // A rename and a new default branch are seen through `updated_on`: still two each.
    let slugs = w.first_repos("ws-0001", 2);
    assert!(w.bb.rename_repository("ws-0001", &slugs[0], "renamed-one"));
    assert!(w.bb.set_main_branch("ws-0001", &slugs[1], "trunk"));
    w.bb.server().reset_stats();
    let report = w.sync().await;
    assert_eq!(listings(&w), 4, "{:?}", w.bb.stats().per_route);
    assert_eq!(report.renamed, 1, "{}", report.render());
    assert_eq!(report.branches_updated.len(), 1, "{}", report.render());
    w.assert_equal();
    // A deletion cannot move `updated_on`: the count disagrees and that workspace is listed
    // in full (one more page), the other still costs two.
    let gone = w.first_repos("ws-0002", 1);
    assert!(w.bb.delete_repository("ws-0002", &gone[0]));
    w.bb.server().reset_stats();
    let report = w.sync().await;
    assert_eq!(listings(&w), 5, "{:?}", w.bb.stats().per_route);
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    w.assert_equal();
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn the_safety_net_lists_in_full_when_the_kept_listing_is_old() {
    let w = World::with(
        Estate::generate(2, 30, 7),
        "[source]\nfull_listing_every = \"0s\"\n",
    )
    .await;
    w.sync().await;
    w.bb.server().reset_stats();
    assert!(w.plan().await.is_noop());
    // One full page a workspace, as without kept listings.
    assert_eq!(w.bb.stats().route("GET /repositories/{workspace}"), 2);
    // An unreadable kept listing is ignored: a full listing follows.
    let dir = w.state.path().join("listings");
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), "not json").unwrap();
    }
    let w2 = World {
        config: Config::from_toml(&format!("[snyk]\ngroup_id = \"{}\"\n", w.snyk.group_id()))
            .unwrap(),
        ..w
    };
    w2.bb.server().reset_stats();
    assert!(w2.plan().await.is_noop());
    assert_eq!(w2.bb.stats().route("GET /repositories/{workspace}"), 2);
}

// ---- Events: each a targeted reconcile of the repositories it names ----

use bitbucket_cloud_client::webhooks::{EventKey, RepositoryEvent};
use mirror_core::events::Admission;

/// The event Bitbucket would deliver for the repository `slug` now in `workspace`.
fn event(
    w: &World,
    key: EventKey,
    workspace: &str,
    slug: &str,
    uuid: Option<&str>,
) -> RepositoryEvent {
    let uuid = uuid.map(str::to_owned).unwrap_or_else(|| {
        w.bb.estate()
            .workspaces
            .iter()
            .find(|ws| ws.slug == workspace)
            .and_then(|ws| ws.repositories.iter().find(|r| r.slug == slug))
            .map(|r| r.uuid.clone())
            .unwrap()
    });
    RepositoryEvent {
        key,
        uuid,
        full_name: format!("{workspace}/{slug}"),
        workspace: workspace.to_owned(),
        workspace_uuid: None,
    }
}

/// Queues the events and reconciles what is queued, as one round.
async fn deliver(w: &World, events: Vec<RepositoryEvent>) -> Report {
    let mirror = w.mirror();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for e in events {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{{req-{n}}}");
        assert_eq!(
            mirror.queue_delivery(&id, e).await.unwrap(),
            Admission::Queued
        );
    }
    let queued = mirror.pending_repositories();
    let report = mirror.reconcile_deliveries(&queued).await.unwrap();
    assert!(
        mirror.pending_repositories().is_empty(),
        "the round marks its deliveries done"
    );
    report
}

const WORKSPACE_LISTING: &str = "GET /repositories/{workspace}";
const IMPORT: &str = "POST /v1/org/{orgId}/integrations/{integrationId}/import";

#[tokio::test(start_paused = true)]
async fn events_mirror_a_created_renamed_moved_and_deleted_repository_without_listing() {
    let w = World::start().await;
    w.sync().await;
    let listings = w.bb.stats().route(WORKSPACE_LISTING);
    let imports = w.snyk.stats().route(IMPORT);

    let uuid = "{00000000-0000-4000-8000-00000000e001}";
    assert!(w.bb.add_repository("ws-0001", bb::SandboxRepository::new("fresh", uuid)));
    let report = deliver(
        &w,
        vec![event(&w, EventKey::Created, "ws-0001", "fresh", None)],
    )
    .await;
    assert_eq!(report.imports_accepted, 1, "{}", report.render());
    w.assert_equal();

    assert!(w.bb.rename_repository("ws-0001", "fresh", "fresher"));
    let report = deliver(
        &w,
        vec![event(&w, EventKey::Updated, "ws-0001", "fresher", None)],
    )
    .await;
    assert_eq!(report.renamed, 1, "{}", report.render());
    w.assert_equal();

    assert!(w.bb.transfer_repository("ws-0001", "fresher", "ws-0002"));
    let report = deliver(
        &w,
        vec![event(&w, EventKey::Transfer, "ws-0002", "fresher", None)],
    )
    .await;
    assert_eq!(report.moved, 1, "{}", report.render());
    w.assert_equal();

    assert!(w.bb.delete_repository("ws-0002", "fresher"));
    let report = deliver(
        &w,
        vec![event(
            &w,
            EventKey::Deleted,
            "ws-0002",
            "fresher",
            Some(uuid),
        )],
    )
    .await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    w.assert_equal();

    // No workspace was listed: each event read its repository by uuid.
    assert_eq!(w.bb.stats().route(WORKSPACE_LISTING), listings);
    // One import for the creation, one under the new name, one into the new org.
    assert_eq!(w.snyk.stats().route(IMPORT) - imports, 3);
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_repeated_delivery_acts_once_and_an_out_of_scope_one_is_ignored() {
    let w = World::with(
        Estate::generate(2, 5, 7),
        "[source]\nexclude_workspaces = [\"ws-0002\"]\n",
    )
    .await;
    w.sync().await;
    let mirror = w.mirror();
    let e = event(
        &w,
        EventKey::Updated,
        "ws-0001",
        &w.first_repos("ws-0001", 1)[0],
        None,
    );
    assert_eq!(
        mirror.queue_delivery("{a}", e.clone()).await.unwrap(),
        Admission::Queued
    );
    // A retry (X-Attempt-Number: 2) and a replay carry the same X-Request-UUID.
    assert_eq!(
        mirror.queue_delivery("{a}", e.clone()).await.unwrap(),
        Admission::Duplicate
    );
    let queued = mirror.pending_repositories();
    mirror.reconcile_deliveries(&queued).await.unwrap();
    assert_eq!(
        mirror.queue_delivery("{a}", e).await.unwrap(),
        Admission::Duplicate,
        "remembered after it was reconciled"
    );
    let out = event(
        &w,
        EventKey::Created,
        "ws-0002",
        &w.first_repos("ws-0002", 1)[0],
        None,
    );
    let admission = mirror.queue_delivery("{b}", out).await.unwrap();
    assert!(
        matches!(&admission, Admission::OutOfScope { why } if why.contains("ws-0002") && why.contains("excluded by ws-0002")),
        "{admission:?}"
    );
    assert!(mirror.pending_repositories().is_empty());
    // Both are still remembered after a restart.
    drop(mirror);
    let mirror = w.mirror();
    let e = event(
        &w,
        EventKey::Updated,
        "ws-0001",
        &w.first_repos("ws-0001", 1)[0],
        None,
    );
    assert_eq!(
        mirror.queue_delivery("{a}", e).await.unwrap(),
        Admission::Duplicate
    );
}

#[tokio::test(start_paused = true)]
async fn a_delivery_queued_before_a_crash_is_reconciled_after_the_restart() {
    let w = World::start().await;
    w.sync().await;
    let uuid = "{00000000-0000-4000-8000-00000000e002}";
    assert!(w.bb.add_repository("ws-0002", bb::SandboxRepository::new("late", uuid)));
    {
        let mirror = w.mirror();
        let e = event(&w, EventKey::Created, "ws-0002", "late", None);
        assert_eq!(
            mirror.queue_delivery("{c}", e).await.unwrap(),
            Admission::Queued
        );
        // The process dies here, after answering 202 and before reconciling.
    }
    let mirror = w.mirror();
    let queued = mirror.pending_repositories();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].requests.len(), 1);
    let report = mirror.reconcile_deliveries(&queued).await.unwrap();
    assert_eq!(report.imports_accepted, 1, "{}", report.render());
    w.assert_equal();
}

#[tokio::test(start_paused = true)]
async fn a_thousand_deliveries_for_one_repository_give_one_import() {
    let w = World::start().await;
    w.sync().await;
    let imports = w.snyk.stats().route(IMPORT);
    let uuid = "{00000000-0000-4000-8000-00000000e003}";
    assert!(w.bb.add_repository("ws-0001", bb::SandboxRepository::new("busy", uuid)));
    let mirror = std::sync::Arc::new(w.mirror());
    let events = mirror_core::events::EventLoop::new(
        mirror.clone(),
        std::sync::Arc::new(mirror_core::events::Unobserved),
        mirror_core::events::LoopOptions::default(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(events.clone().run(stopped, Duration::from_secs(6 * 3600)));
    for i in 0..1000 {
        let key = if i == 0 {
            EventKey::Created
        } else {
            EventKey::Updated
        };
        let e = event(&w, key, "ws-0001", "busy", None);
        events.admit(&format!("{{burst-{i}}}"), e).await.unwrap();
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while events.queue_depth() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(w.snyk.stats().route(IMPORT) - imports, 1);
    w.assert_equal();
}

#[tokio::test(start_paused = true)]
async fn a_round_reads_its_repositories_of_one_workspace_in_one_filtered_listing() {
    let w = World::start().await;
    w.sync().await;
    let slugs = w.first_repos("ws-0002", 5);
    let mut events = Vec::new();
    for slug in &slugs {
        let new = format!("{slug}-renamed");
        assert!(w.bb.rename_repository("ws-0002", slug, &new));
        events.push(event(&w, EventKey::Updated, "ws-0002", &new, None));
    }
    let stats = w.bb.stats();
    let report = deliver(&w, events).await;
    assert_eq!(report.renamed, 5, "{}", report.render());
    let after = w.bb.stats();
    let by_uuid = "GET /repositories/{workspace}/{repo_slug}";
    assert_eq!(
        after.route(WORKSPACE_LISTING) - stats.route(WORKSPACE_LISTING),
        1
    );
    assert_eq!(after.route(by_uuid) - stats.route(by_uuid), 0);
    w.assert_equal();
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn a_delivery_that_changes_nothing_writes_only_its_own_two_journal_lines() {
    let w = World::start().await;
    w.sync().await;
    let lines = || {
        std::fs::read_to_string(w.state.path().join("journal.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    let before = lines();
    let slug = &w.first_repos("ws-0001", 1)[0];
    let report = deliver(
        &w,
        vec![event(&w, EventKey::Updated, "ws-0001", slug, None)],
    )
    .await;
    assert_eq!(report.imports_accepted, 0);
    assert_eq!(
        lines() - before,
        2,
        "delivery-queued and deliveries-done only"
    );
}

#[tokio::test(start_paused = true)]
async fn a_round_for_a_new_repository_reads_its_org_and_targets_by_name_not_the_whole_group() {
    let w = World::with(Estate::generate(1, 250, 7), "").await;
    w.sync().await;
    // A group of 151 orgs: two pages to list them all.
    for n in 0..150 {
        w.snyk
            .add_org(&format!("other-{n:03}"), &["bitbucket-cloud"]);
    }
    let route = "GET /rest/orgs/{org_id}/targets";
    let orgs_route = "GET /v1/group/{groupId}/orgs";
    let before = w.snyk.stats().route(route);
    let orgs_before = w.snyk.stats().route(orgs_route);
    let uuid = "{00000000-0000-4000-8000-00000000e004}";
    assert!(w.bb.add_repository("ws-0001", bb::SandboxRepository::new("one-more", uuid)));
    let report = deliver(
        &w,
        vec![event(&w, EventKey::Created, "ws-0001", "one-more", None)],
    )
    .await;
    assert_eq!(report.imports_accepted, 1, "{}", report.render());
    // Two filtered requests (the plan's, and the look just before the post that keeps a
    // second process from importing it twice), where the org's 250 targets take three pages;
    // the org asked for by name, where the group's orgs take two pages.
    assert_eq!(w.snyk.stats().route(route) - before, 2);
    assert_eq!(w.snyk.stats().route(orgs_route) - orgs_before, 1);
    w.assert_equal();
}

#[tokio::test(start_paused = true)]
async fn a_workspace_refusing_the_uuid_filter_is_asked_one_repository_at_a_time() {
    use mirror_core::ports::BitbucketPort;
    let w = World::start().await;
    let adapter = mirror_core::adapters::BitbucketAdapter::new(
        BitbucketClient::builder()
            .base_url(w.bb.base_url())
            .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
            .build()
            .unwrap(),
    );
    let estate = w.bb.estate();
    let wanted: Vec<mirror_core::ids::RepoUuid> = estate.workspaces[0].repositories[..3]
        .iter()
        .map(|r| r.uuid.as_str().into())
        .collect();
    let by_uuid = "GET /repositories/{workspace}/{repo_slug}";
    let before = w.bb.stats();
    // The filtered listing is refused once (400): each repository is then looked up.
    w.bb.server()
        .inject(api_support::sandbox::Fault::Status(400), 1);
    let found = adapter
        .repositories_by_uuid("ws-0001", &wanted)
        .await
        .unwrap();
    let mut got: Vec<_> = found.iter().filter_map(|r| r.uuid.clone()).collect();
    got.sort();
    let mut expected = wanted.clone();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(w.bb.stats().route(by_uuid) - before.route(by_uuid), 3);
}

// Evidence: only certain evidence retires or moves anything, and one repository's problem never
// stops the rest of a run.

/// The plan's uncertain repositories: `workspace/repository` → why.
fn uncertain(plan: &Plan) -> BTreeMap<String, String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            mirror_core::Action::Uncertain {
                repository, why, ..
            } => Some((repository.clone(), why.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_unusable_entry_is_named_uncertain_and_the_rest_of_the_run_goes_on() {
    let w = World::start().await;
    w.sync().await;
    let [odd, deleted] = [0, 1].map(|i| w.first_repos("ws-0001", 2)[i].clone());
    let renamed = w.first_repos("ws-0002", 1)[0].clone();
    // Spec-valid, but without `slug` and `full_name`: neither the listing nor a lookup by uuid
    // can say where it is. Before, its lookup failed the whole run, every run.
    let odd_uuid = w.uuid_of("ws-0001", &odd);
    w.bb.make_odd(&odd_uuid, Some(bb::Oddity::Unusable));
    assert!(w.bb.delete_repository("ws-0001", &deleted));
    assert!(w.bb.rename_repository("ws-0002", &renamed, "renamed-one"));
    let plan = w.plan().await;
    let text = plan.render();
    let named = uncertain(&plan);
    let why = named
        .get(&format!("ws-0001/{odd}"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(why.contains("could not be read"), "{why}");
    assert!(text.contains(&odd_uuid), "{text}");
    assert!(
        text.contains(&format!("- retire ws-0001/{deleted} (deleted in Bitbucket")),
        "{text}"
    );
    assert!(
        text.contains(&format!("~ rename ws-0002/{renamed} → ws-0002/renamed-one")),
        "{text}"
    );
    let report = w.sync().await;
    assert_eq!(report.uncertain.len(), 1, "{}", report.render());
    assert!(report.has_failures(), "a scheduler must notice: exit 1");
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    assert_eq!(report.renamed, 1, "{}", report.render());
    assert!(
        w.active(&format!("ws-0001/{odd}")) > 0,
        "nothing of it is retired"
    );
    assert_eq!(w.active(&format!("ws-0001/{deleted}")), 0);
    // Once Bitbucket answers it normally again, there is nothing left to do.
    w.bb.make_odd(&odd_uuid, None);
    let plan = w.plan().await;
    assert!(
        plan.is_noop() && uncertain(&plan).is_empty(),
        "{}",
        plan.render()
    );
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_entry_with_a_readable_uuid_is_never_taken_for_a_deletion() {
    let w = World::start().await;
    w.sync().await;
    let odd = w.first_repos("ws-0001", 1)[0].clone();
    let uuid = w.uuid_of("ws-0001", &odd);
    w.bb.make_odd(&uuid, Some(bb::Oddity::Undecodable));
    // Were it looked up, the answer would be 404 (as a mock generated from the document may
    // answer): before, that retired it.
    w.bb.server().inject_on(
        "/2.0/repositories/ws-0001/%7B",
        api_support::sandbox::Fault::Status(404),
        1,
    );
    w.forget_listings();
    let plan = w.plan().await;
    assert!(
        uncertain(&plan).contains_key(&format!("ws-0001/{odd}")),
        "{}",
        plan.render()
    );
    let report = w.sync().await;
    assert!(report.retired.is_empty(), "{}", report.render());
    assert!(w.active(&format!("ws-0001/{odd}")) > 0);
    assert_eq!(changes(&w.snyk), 0);
    // Its entry shows its uuid: it is there, so it is not even looked up.
    assert_eq!(w.bb.server().pending_faults(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_lookup_is_uncertain_not_a_credentials_error() {
    let w = World::start().await;
    w.sync().await;
    let lost = w.first_repos("ws-0001", 1)[0].clone();
    let renamed = w.first_repos("ws-0002", 1)[0].clone();
    // The credentials lost access to one repository: it leaves the listing and its lookup
    // answers 403. Before, every plan and sync ended with exit 3 and scope advice.
    w.bb.make_odd(&w.uuid_of("ws-0001", &lost), Some(bb::Oddity::Forbidden));
    assert!(w.bb.rename_repository("ws-0002", &renamed, "renamed-two"));
    let plan = w.plan().await;
    let named = uncertain(&plan);
    let why = named
        .get(&format!("ws-0001/{lost}"))
        .unwrap_or_else(|| panic!("{}", plan.render()));
    assert!(why.contains("403"), "{why}");
    let report = w.sync().await;
    assert_eq!(report.renamed, 1, "{}", report.render());
    assert!(report.retired.is_empty(), "{}", report.render());
    assert!(w.active(&format!("ws-0001/{lost}")) > 0);
    assert!(
        report
            .render()
            .contains(&format!("! uncertain ws-0001/{lost}"))
    );
}

#[tokio::test(start_paused = true)]
async fn entries_naming_another_workspace_are_never_taken_for_a_move() {
    let w = World::start().await;
    w.sync().await;
    let odd = w.first_repos("ws-0001", 3);
    for slug in &odd {
        let uuid = w.uuid_of("ws-0001", slug);
        w.bb.make_odd(&uuid, Some(bb::Oddity::ForeignWorkspace("ws-0002".into())));
    }
    w.forget_listings();
    let plan = w.plan().await;
    // The plan and the sync agree: three uncertain, nothing imported, moved or retired.
    assert_eq!(uncertain(&plan).len(), 3, "{}", plan.render());
    assert!(plan.is_noop(), "{}", plan.render());
    let posts_before: usize = w.snyk.import_posts().values().sum();
    let report = w.sync().await;
    assert_eq!(report.uncertain.len(), 3, "{}", report.render());
    assert_eq!(changes(&w.snyk), 0, "{}", report.render());
    assert_eq!(w.snyk.import_posts().values().sum::<usize>(), posts_before);
    for slug in &odd {
        assert!(w.active(&format!("ws-0001/{slug}")) > 0);
    }
}

#[tokio::test(start_paused = true)]
async fn apply_retires_only_what_the_plan_shows() {
    let w = World::start().await;
    w.sync().await;
    let slug = w.first_repos("ws-0001", 1)[0].clone();
    assert!(w.bb.rename_repository("ws-0001", &slug, "renamed-three"));
    let mirror = w.mirror();
    let mut plan = mirror.plan().await.unwrap();
    // A plan that imports the new name without showing the old target's retirement: apply
    // does that and nothing more.
    for a in &mut plan.actions {
        if let mirror_core::Action::Import(i) = a {
            i.replaces = None;
        }
    }
    let report = mirror.apply(&plan).await.unwrap();
    assert_eq!(report.imports_completed, 1, "{}", report.render());
    assert!(report.replaced.is_empty(), "{}", report.render());
    assert_eq!(changes(&w.snyk), 0);
    assert!(w.active(&format!("ws-0001/{slug}")) > 0);
}

#[tokio::test(start_paused = true)]
async fn a_retirement_with_nothing_left_in_snyk_says_so_rather_than_deactivated() {
    let w = World::start().await;
    w.sync().await;
    let slug = w.first_repos("ws-0001", 1)[0].clone();
    assert!(w.bb.delete_repository("ws-0001", &slug));
    let mirror = w.mirror();
    let plan = mirror.plan().await.unwrap();
    // A person deactivates the projects in Snyk before the sync applies its plan.
    w.sync_deactivating(&slug).await;
    let report = mirror.apply(&plan).await.unwrap();
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    let text = report.render();
    assert!(text.contains("nothing was sent"), "{text}");
    assert!(!text.contains("deactivated in"), "{text}");
}

// Reversible first: deletion after a quarantine, and undo.

#[tokio::test(start_paused = true)]
async fn delete_mode_deactivates_first_and_deletes_only_after_the_quarantine() {
    let w = World::with(Estate::generate(1, 20, 3), "[drift]\nretire = \"delete\"\n").await;
    w.sync().await;
    let slug = w.first_repos("ws-0001", 1)[0].clone();
    let name = format!("ws-0001/{slug}");
    assert!(w.bb.delete_repository("ws-0001", &slug));
    let text = w.plan().await.render();
    assert!(
        text.contains(&format!(
            "- retire {name} (deleted in Bitbucket; deactivate now, delete after "
        )),
        "{text}"
    );
    let report = w.sync().await;
    assert_eq!(report.retired.len(), 1, "{}", report.render());
    assert_eq!(w.active(&name), 0);
    assert!(
        w.snyk.targets().iter().any(|t| t.display_name == name),
        "deleted too early"
    );
    // Seven days are not up: named, nothing to do, nothing deleted.
    let plan = w.plan().await;
    assert!(plan.is_noop(), "{}", plan.render());
    let text = plan.render();
    assert!(
        text.contains(&format!(
            "= quarantined {name}: deactivated; waiting out drift.delete_after"
        )),
        "{text}"
    );
    let before = changes(&w.snyk);
    w.sync().await;
    assert_eq!(changes(&w.snyk), before);
    // Once the quarantine is over and the repository is found gone again, it is deleted.
    let w = World {
        config: {
            let mut c = w.config.clone();
            c.drift.delete_after = Some("0s".into());
            c
        },
        ..w
    };
    let text = w.plan().await.render();
    assert!(
        text.contains(&format!("- retire {name} (deleted in Bitbucket; delete)")),
        "{text}"
    );
    let report = w.sync().await;
    assert!(
        report.render().contains("deleted in"),
        "{}",
        report.render()
    );
    assert!(!w.snyk.targets().iter().any(|t| t.display_name == name));
    w.assert_settled().await;
}

#[tokio::test(start_paused = true)]
async fn undo_reactivates_what_a_run_deactivated_and_runs_lists_it() {
    let w = World::start().await;
    let first = w.sync().await;
    let gone = w.first_repos("ws-0001", 2);
    for slug in &gone {
        assert!(w.bb.delete_repository("ws-0001", slug));
    }
    let report = w.sync().await;
    assert_eq!(report.retired.len(), 2, "{}", report.render());
    let run = report.run.clone().unwrap();
    assert!(
        report
            .render()
            .contains(&format!("bb-snyk-mirror undo {run}"))
    );
    let runs = mirror_core::runs::runs(w.state.path()).unwrap();
    let listed = runs.iter().find(|r| r.id == run).unwrap();
    assert_eq!((listed.deactivated, listed.finished), (2, true), "{runs:?}");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].imports, first.imports_completed, "{runs:?}");
    assert_eq!(runs[0].orgs_created, 2, "{runs:?}");

    let mirror = w.mirror();
    let (plan, cannot) = mirror.undo_plan(&run).await.unwrap();
    assert!(cannot.is_empty(), "{cannot:?}");
    let text = plan.render();
    for slug in &gone {
        assert!(
            text.contains(&format!(
                "+ reactivate ws-0001/{slug} (1 project deactivated by run {run})"
            )),
            "{text}"
        );
    }
    let report = mirror.apply(&plan).await.unwrap();
    assert_eq!(report.reactivated.len(), 2, "{}", report.render());
    for slug in &gone {
        assert_eq!(w.active(&format!("ws-0001/{slug}")), 1);
    }
    // Undone once: a second undo has nothing left to do.
    let (again, _) = mirror.undo_plan(&run).await.unwrap();
    assert!(again.actions.is_empty(), "{}", again.render());
    let e = mirror.undo_plan("20200101-000000-0000").await.unwrap_err();
    assert!(e.to_string().contains("bb-snyk-mirror runs"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn undo_names_what_it_cannot_bring_back() {
    let w = World::with(
        Estate::generate(1, 20, 3),
        "[drift]\nretire = \"delete\"\ndelete_after = \"0s\"\n",
    )
    .await;
    w.sync().await;
    let slug = w.first_repos("ws-0001", 1)[0].clone();
    assert!(w.bb.delete_repository("ws-0001", &slug));
    let deactivating = w.sync().await.run.unwrap();
    w.sync().await;
    let (plan, cannot) = w.mirror().undo_plan(&deactivating).await.unwrap();
    assert!(plan.actions.is_empty(), "{}", plan.render());
    assert_eq!(cannot.len(), 1, "{cannot:?}");
    assert!(
        cannot[0].contains("was deleted") && cannot[0].contains("history"),
        "{cannot:?}"
    );
}

/// Counts full reconciles by outcome.
#[derive(Default)]
struct Reconciles(std::sync::Mutex<(usize, usize)>);

impl mirror_core::events::EventObserver for Reconciles {
    fn reconcile_done(&self, result: &Result<Report, mirror_core::Error>) {
        let mut n = self.0.lock().unwrap();
        if result.is_ok() { n.0 += 1 } else { n.1 += 1 }
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_up_reconcile_is_tried_again_within_a_minute_not_the_interval() {
    let w = World::start().await;
    // Bitbucket is down at start: every attempt of the first reconcile's first request fails.
    w.bb.server().inject_on(
        "/2.0/user/workspaces",
        api_support::sandbox::Fault::Status(503),
        6,
    );
    let counted = std::sync::Arc::new(Reconciles::default());
    let events = mirror_core::events::EventLoop::new(
        std::sync::Arc::new(w.mirror()),
        counted.clone(),
        mirror_core::events::LoopOptions::default(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let start = tokio::time::Instant::now();
    let running = tokio::spawn(events.clone().run(stopped, Duration::from_secs(6 * 3600)));
    while counted.0.lock().unwrap().0 == 0 {
        assert!(start.elapsed() < Duration::from_secs(600), "never retried");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (ok, failed) = *counted.0.lock().unwrap();
    assert_eq!((ok, failed), (1, 1));
    // Retried 30 s after the failure (which itself took the retries' backoff), not 6 h later.
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "{:?}",
        start.elapsed()
    );
    stop.send(true).unwrap();
    running.await.unwrap();
    w.assert_equal();
}
