//! Plans for a dozen estates, snapshot-tested as people read them and as JSON.

use mirror_render::Render as _;
use std::collections::{BTreeMap, BTreeSet};

use mirror_core::advanced::plan;
use mirror_core::inventory::BitbucketInventory;
use mirror_core::inventory::Inventory;
use mirror_core::inventory::OrgInventory;
use mirror_core::inventory::SnykInventory;
use mirror_core::inventory::WorkspaceInventory;
use mirror_core::ports::Repo;
use mirror_core::rules::History;
use mirror_core::{Config, Plan};

fn config(extra: &str) -> Config {
    Config::from_toml(&format!("[snyk]\ngroup_id = \"group-1\"\n{extra}")).unwrap()
}

fn ws(slug: &str, repos: Vec<Repo>) -> WorkspaceInventory {
    WorkspaceInventory {
        slug: slug.to_owned(),
        repositories: repos,
    }
}

fn repo(ws: &str, slug: &str) -> Repo {
    Repo::new(ws, slug)
}

fn org(id: &str, name: &str, integrations: &[&str], imported: &[&str]) -> OrgInventory {
    let mut org = OrgInventory::new(id.into(), name.to_owned());
    org.integrations = Some(
        integrations
            .iter()
            .map(|t| ((*t).to_owned(), format!("int-{t}-{id}").into()))
            .collect::<BTreeMap<_, _>>(),
    );
    org.imported = Some(
        imported
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>(),
    );
    org
}

fn inventory(workspaces: Vec<WorkspaceInventory>, orgs: Vec<OrgInventory>) -> Inventory {
    Inventory {
        bitbucket: BitbucketInventory {
            workspaces,
            excluded_workspaces: Vec::new(),
            confirmations: Default::default(),
            ..Default::default()
        },
        snyk: SnykInventory {
            orgs,
            template_integrations: None,
            // The Snyk port holds Snyk-side Bitbucket credentials: missing integrations can be
            // added.
            can_add_integrations: true,
            read_in_full: false,
        },
        read_at: None,
        estate: Default::default(),
    }
}

fn check(name: &str, config: &Config, inventory: &Inventory, history: &History) -> Plan {
    let p = plan(config, inventory, history);
    insta::assert_snapshot!(format!("{name}-text"), p.render());
    insta::assert_snapshot!(format!("{name}-json"), p.to_json().unwrap());
    // The JSON form reads back to the same plan.
    assert_eq!(Plan::from_json(&p.to_json().unwrap()).unwrap(), p);
    p
}

#[test]
fn new_workspace_creates_an_org_and_imports_everything() {
    let inv = inventory(
        vec![ws("acme", vec![repo("acme", "api"), repo("acme", "web")])],
        vec![],
    );
    let p = check("new-workspace", &config(""), &inv, &History::default());
    assert_eq!(p.summary().orgs_to_create, 1);
    assert_eq!(p.summary().imports, 2);
    // The summary alone, and the signs coloured on request.
    let summary = mirror_render::plan_with(
        &p,
        mirror_render::RenderOptions::default().summary_only(true),
    );
    assert!(
        summary.contains("repositories             2 to import") && !summary.contains("+ import"),
        "{summary}"
    );
    let coloured =
        mirror_render::plan_with(&p, mirror_render::RenderOptions::default().colour(true));
    assert!(
        coloured.contains("  \u{1b}[32m+ import acme/api (main) into acme (new)\u{1b}[0m"),
        "{coloured:?}"
    );
    assert!(!p.render().contains('\u{1b}'));
}

#[test]
fn empty_workspaces_get_no_org_unless_asked() {
    let inv = inventory(
        vec![ws("quiet", vec![]), ws("busy", vec![repo("busy", "a")])],
        vec![],
    );
    let p = check("empty-workspace", &config(""), &inv, &History::default());
    assert_eq!(p.summary().orgs_to_create, 1);
    let keep = config("[source]\nskip_empty_workspaces = false\n");
    let p = check("empty-workspace-kept", &keep, &inv, &History::default());
    assert_eq!(p.summary().orgs_to_create, 2);
}

#[test]
fn forks_and_empty_repositories() {
    let mut fork = repo("acme", "api-fork");
    fork.is_fork = true;
    let mut empty = repo("acme", "empty");
    empty.main_branch = None;
    let mut develop = repo("acme", "legacy");
    develop.main_branch = Some("develop".into());
    let inv = inventory(
        vec![ws("acme", vec![repo("acme", "api"), fork, empty, develop])],
        vec![],
    );
    check(
        "forks-skipped",
        &config("[source]\nskip_forks = true\n"),
        &inv,
        &History::default(),
    );
    let p = check("forks-kept", &config(""), &inv, &History::default());
    assert_eq!(p.summary().imports, 3);
}

#[test]
fn duplicate_org_names_are_a_conflict() {
    let inv = inventory(
        vec![
            ws("acme", vec![repo("acme", "api")]),
            ws("beta", vec![repo("beta", "b")]),
        ],
        vec![
            org("o-1", "acme", &["bitbucket-cloud"], &[]),
            org("o-2", "acme", &["bitbucket-cloud"], &[]),
            org("o-3", "beta", &["bitbucket-cloud"], &[]),
        ],
    );
    let p = check("duplicate-names", &config(""), &inv, &History::default());
    assert_eq!(p.summary().conflicts, 1);
    assert_eq!(p.summary().orgs_to_create, 0);
}

#[test]
fn a_name_over_60_characters_is_a_conflict() {
    let long = "a-workspace-with-a-really-long-slug-that-goes-on";
    let inv = inventory(vec![ws(long, vec![repo(long, "api")])], vec![]);
    let cfg = config(
        "[mapping]\nkind = \"org-per-workspace\"\nname = \"bitbucket-{workspace}-mirror\"\n",
    );
    let p = check("name-too-long", &cfg, &inv, &History::default());
    assert_eq!(p.summary().conflicts, 1);
    assert_eq!(p.summary().imports, 0);
}

#[test]
fn the_app_integration_and_a_missing_integration() {
    let inv = inventory(
        vec![
            ws("acme", vec![repo("acme", "api")]),
            ws("beta", vec![repo("beta", "b")]),
        ],
        vec![
            org("o-1", "acme", &["bitbucket-connect-app"], &[]),
            org("o-2", "beta", &["bitbucket-cloud"], &[]),
        ],
    );
    let cfg = config("integration = \"bitbucket-cloud-app\"\n");
    let p = check("app-integration", &cfg, &inv, &History::default());
    assert_eq!(p.summary().imports, 1);
    assert_eq!(p.summary().conflicts, 1);
}

#[test]
fn one_org_per_project() {
    let mut core = repo("acme", "api");
    core.project_key = Some("CORE".into());
    let mut web = repo("acme", "site");
    web.project_key = Some("WEB".into());
    let loose = repo("acme", "scratch");
    let inv = inventory(
        vec![ws("acme", vec![core, web, loose])],
        vec![org("o-9", "acme-CORE", &["bitbucket-cloud"], &[])],
    );
    let cfg = config("[mapping]\nkind = \"org-per-project\"\n");
    let p = check("per-project", &cfg, &inv, &History::default());
    assert_eq!(p.summary().orgs_to_create, 2);
}

#[test]
fn everything_into_one_existing_org() {
    let inv = inventory(
        vec![
            ws("acme", vec![repo("acme", "api")]),
            ws("beta", vec![repo("beta", "b")]),
        ],
        vec![org("o-7", "o-7", &["bitbucket-cloud"], &["beta/b"])],
    );
    let cfg = Config::from_toml("[mapping]\nkind = \"single-org\"\norg_id = \"o-7\"\n").unwrap();
    let p = check("single-org", &cfg, &inv, &History::default());
    assert_eq!(p.summary().imports, 1);
}

#[test]
fn already_imported_and_history() {
    let inv = inventory(
        vec![ws(
            "acme",
            vec![
                repo("acme", "api"),
                repo("acme", "docs"),
                repo("acme", "Tools"),
                repo("acme", "new"),
            ],
        )],
        vec![org("o-1", "acme", &["bitbucket-cloud"], &["acme/api"])],
    );
    let history = History {
        completed: std::sync::Arc::new(
            [
                (("o-1".into(), "acme/docs".into()), 0),
                (("o-1".into(), "acme/tools".into()), 3),
            ]
            .into(),
        ),
        ..History::default()
    };
    let p = check("already-imported", &config(""), &inv, &history);
    assert_eq!(p.summary().imports, 1);
}

#[test]
fn patterns_and_filters_exclude() {
    let mut public = repo("acme", "site");
    public.is_private = false;
    let mut stale = repo("acme", "old-tool");
    stale.updated_on = "2025-02-01T00:00:00.000000+00:00".parse().ok();
    let mut fresh = repo("acme", "api");
    fresh.updated_on = "2026-03-01T00:00:00.000000+00:00".parse().ok();
    let inv = Inventory {
        bitbucket: BitbucketInventory {
            workspaces: vec![ws(
                "acme",
                vec![fresh, public, stale, repo("acme", "db-archive")],
            )],
            excluded_workspaces: vec![("sandbox".into(), "excluded by sand*".into())],
            confirmations: Default::default(),
            ..Default::default()
        },
        snyk: SnykInventory {
            can_add_integrations: true,
            ..SnykInventory::default()
        },
        read_at: None,
        estate: Default::default(),
    };
    let cfg = config(
        "[source]\nexclude_workspaces = [\"sand*\"]\nexclude_repositories = [\"*-archive\"]\nvisibility = \"private\"\nupdated_since = \"2026-01-01T00:00:00Z\"\n",
    );
    let p = check("filters", &cfg, &inv, &History::default());
    assert_eq!(p.summary().imports, 1);
}

#[test]
fn updated_since_compares_instants_whatever_the_offset() {
    // Before, the first 19 characters were compared as text: `east` (01:00 at +02:00, which
    // is 23:00 the day before in UTC) counted as updated since, and `west` (23:30 at -01:00,
    // which is 00:30 in UTC) did not.
    let mut east = repo("acme", "east");
    east.updated_on = "2026-01-01T01:00:00+02:00".parse().ok();
    let mut west = repo("acme", "west");
    west.updated_on = "2025-12-31T23:30:00-01:00".parse().ok();
    let inv = inventory(vec![ws("acme", vec![east, west])], vec![]);
    let cfg = config("[source]\nupdated_since = \"2026-01-01T00:00:00Z\"\n");
    let p = plan(&cfg, &inv, &History::default());
    let imported: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            mirror_core::Action::Import(i) => Some(i.repository.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(imported, ["west"], "{}", p.render());
}

#[test]
fn an_org_at_its_project_cap() {
    let inv = inventory(
        vec![ws("acme", vec![repo("acme", "api")])],
        vec![org("o-1", "acme", &["bitbucket-cloud"], &[])],
    );
    let mut history = History::default();
    history.capped_orgs.insert("o-1".into());
    let p = check("project-cap", &config(""), &inv, &history);
    assert_eq!(p.summary().conflicts, 1);
}

#[test]
fn missing_integrations_without_credentials_and_with_a_template() {
    let inv = |template: Option<&[&str]>, can_add: bool| {
        let mut i = inventory(
            vec![
                ws("acme", vec![repo("acme", "api")]),
                ws("beta", vec![repo("beta", "b")]),
            ],
            vec![org("o-1", "acme", &["github"], &[])],
        );
        i.snyk.template_integrations = template.map(|t| {
            t.iter()
                .map(|k| ((*k).to_owned(), format!("tpl-{k}").into()))
                .collect()
        });
        // Whether the Snyk port holds Snyk-side Bitbucket credentials.
        i.snyk.can_add_integrations = can_add;
        i
    };
    // No Snyk-side credentials: nothing can be added, so both orgs are held back, and the new
    // one is not even created. The library names what is missing; the binary adds the names
    // of its variables (`mirror-cli/tests/cli.rs`).
    let none = config("");
    let p = check(
        "no-integration-credentials",
        &none,
        &inv(None, false),
        &History::default(),
    );
    assert_eq!(p.summary().conflicts, 2);
    assert_eq!(p.summary().orgs_to_create, 0);
    assert!(
        p.render().contains("give Snyk-side Bitbucket credentials"),
        "{}",
        p.render()
    );
    // With credentials: added to the existing org and to the new one.
    let p = check(
        "add-integrations",
        &config(""),
        &inv(None, true),
        &History::default(),
    );
    assert_eq!(p.summary().integrations_to_add, 2);
    assert_eq!(p.summary().imports, 2);
    // A template that has the integration: the new org copies it, nothing to add there.
    let mut with_template = none.clone();
    with_template.snyk.template_org_id = Some("tpl".into());
    let p = check(
        "template-has-integration",
        &with_template,
        &inv(Some(&["bitbucket-cloud"]), false),
        &History::default(),
    );
    assert_eq!(p.summary().orgs_to_create, 1);
    assert_eq!(p.summary().integrations_to_add, 0);
    // The App cannot be added through the API: the plan says where to set it up.
    let app = config("integration = \"bitbucket-cloud-app\"\n");
    let p = check("app-missing", &app, &inv(None, true), &History::default());
    assert_eq!(p.summary().conflicts, 2);
    assert!(
        p.render()
            .contains("Settings > Integrations > Bitbucket Cloud App"),
        "{}",
        p.render()
    );
}

#[test]
fn a_template_org_and_custom_names() {
    let inv = inventory(
        vec![
            ws("acme", vec![repo("acme", "api")]),
            ws("beta", vec![repo("beta", "b")]),
        ],
        vec![org("o-1", "bb-beta", &["bitbucket-cloud"], &[])],
    );
    let cfg = config(
        "template_org_id = \"tpl-1\"\n[mapping]\nkind = \"org-per-workspace\"\nname = \"bb-{workspace}\"\n[import]\nexclusion_globs = [\"fixtures\"]\n",
    );
    check("template", &cfg, &inv, &History::default());
}

#[test]
fn an_empty_estate_plans_nothing() {
    let p = check(
        "empty-estate",
        &config(""),
        &Inventory::default(),
        &History::default(),
    );
    assert!(p.is_noop());
}

#[test]
fn plan_files_of_other_versions_are_refused() {
    let e = Plan::from_json(r#"{"schema_version": 2, "actions": []}"#).unwrap_err();
    assert!(e.to_string().contains("make a new plan"), "{e}");
    let e = Plan::from_json("{\"actions\": [").unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    let e = Plan::from_json(r#"{"schema_version": 1}"#).unwrap_err();
    assert!(e.to_string().contains("malformed"), "{e}");
}

#[test]
fn a_rule_that_matches_nothing_is_named_and_character_classes_work() {
    let inv = inventory(
        vec![ws(
            "acme",
            vec![repo("acme", "svc-003-api"), repo("acme", "svc-007-api")],
        )],
        vec![],
    );
    let cfg = config(
        "[source]\nexclude_repositories = [\"*-00[0-4]*\", \"no-such-*\"]\nexclude_workspaces = [\"sandbox-*\"]\n",
    );
    let p = plan(&cfg, &inv, &History::default());
    let text = p.render();
    assert!(
        text.contains("= skip acme/svc-003-api: excluded (matched by *-00[0-4]*)"),
        "{text}"
    );
    assert!(text.contains("+ import acme/svc-007-api"), "{text}");
    assert!(
        text.contains("? rule `no-such-*` (source.exclude_repositories) matches nothing here"),
        "{text}"
    );
    assert!(
        text.contains("? rule `sandbox-*` (source.exclude_workspaces) matches nothing here"),
        "{text}"
    );
    assert!(!text.contains("? rule `*-00[0-4]*`"), "{text}");
    assert!(!p.is_noop());
}
