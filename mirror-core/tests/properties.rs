//! Property tests over generated estates: planning is deterministic whatever the input order;
//! plan, apply (fakes), plan again gives nothing to do; no plan imports the same
//! (org, workspace, repository) twice.

use mirror_render::Render as _;
use std::collections::BTreeSet;
use std::sync::Arc;

use mirror_core::advanced::apply;
use mirror_core::advanced::gather;
use mirror_core::advanced::gather_for;
use mirror_core::advanced::journal::Journal;
use mirror_core::advanced::plan;
use mirror_core::fakes::{FakeBitbucket, FakeSnyk};
use mirror_core::plan::OrgRef;
use mirror_core::ports::Repo;
use mirror_core::{Action, Config};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Estate {
    workspaces: Vec<(String, Vec<Repo>)>,
    /// Existing orgs: (name, has a bitbucket-cloud integration).
    orgs: Vec<(String, bool)>,
    /// Repositories without manifests (zero projects).
    zero: BTreeSet<String>,
    skip_forks: bool,
    per_project: bool,
    /// Whether Snyk-side Bitbucket credentials are at hand.
    can_add: bool,
}

fn repo_strategy(ws: String) -> impl Strategy<Value = Repo> {
    (
        "[a-d][a-d0-9]{0,3}",
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["main", "master", "develop"])),
        prop::option::of(prop::sample::select(vec!["CORE", "WEB"])),
        any::<bool>(),
    )
        .prop_map(move |(slug, fork, branch, project, private)| Repo {
            uuid: None,
            workspace_uuid: None,
            workspace: ws.clone(),
            slug,
            main_branch: branch.map(str::to_owned),
            is_fork: fork,
            is_private: private,
            project_key: project.map(str::to_owned),
            updated_on: None,
            language: None,
        })
}

fn estate_strategy() -> impl Strategy<Value = Estate> {
    prop::collection::btree_set("ws-[a-c]", 0..4)
        .prop_flat_map(|slugs| {
            let slugs: Vec<String> = slugs.into_iter().collect();
            let repos: Vec<_> = slugs
                .iter()
                .map(|s| prop::collection::vec(repo_strategy(s.clone()), 0..6))
                .collect();
            let names = slugs.clone();
            (
                Just(slugs),
                repos,
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["ws-a", "ws-b", "ws-c", "other"]),
                        any::<bool>(),
                    ),
                    0..4,
                ),
                prop::collection::vec(any::<bool>(), 0..20),
                any::<bool>(),
                any::<bool>(),
                (Just(names), any::<bool>()),
            )
        })
        .prop_map(
            |(slugs, repos, orgs, zero_flags, skip_forks, per_project, (_, can_add))| {
                let mut workspaces: Vec<(String, Vec<Repo>)> =
                    slugs.into_iter().zip(repos).collect();
                for (_, repos) in &mut workspaces {
                    repos.sort_by(|a, b| a.slug.cmp(&b.slug));
                    repos.dedup_by(|a, b| a.slug == b.slug);
                }
                let mut zero = BTreeSet::new();
                let all: Vec<String> = workspaces
                    .iter()
                    .flat_map(|(_, r)| r.iter().map(Repo::full_name))
                    .collect();
                for (flag, name) in zero_flags.iter().zip(&all) {
                    if *flag {
                        zero.insert(name.clone());
                    }
                }
                Estate {
                    workspaces,
                    orgs: orgs.into_iter().map(|(n, i)| (n.to_owned(), i)).collect(),
                    zero,
                    skip_forks,
                    per_project,
                    can_add,
                }
            },
        )
}

fn config(e: &Estate) -> Config {
    let mapping = if e.per_project {
        "[mapping]\nkind = \"org-per-project\"\n"
    } else {
        ""
    };
    Config::from_toml(&format!(
        "[snyk]\ngroup_id = \"g\"\n[source]\nskip_forks = {}\n{mapping}[apply]\nresume_grace_seconds = 0\n",
        e.skip_forks
    ))
    .unwrap()
}

fn fakes(e: &Estate) -> (FakeBitbucket, Arc<FakeSnyk>) {
    let mut bb = FakeBitbucket::new();
    for (slug, repos) in &e.workspaces {
        bb = bb.with_workspace(slug, repos.clone());
    }
    let snyk = FakeSnyk::new();
    snyk.set_can_add_integrations(e.can_add);
    for (name, integration) in &e.orgs {
        let types: &[&str] = if *integration {
            &["bitbucket-cloud"]
        } else {
            &[]
        };
        snyk.add_org(name, types);
    }
    for z in &e.zero {
        snyk.set_zero_projects(z);
    }
    (bb, Arc::new(snyk))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn import_keys(p: &mirror_core::Plan) -> Vec<(String, String, String)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Import(i) => Some((
                match &i.org {
                    OrgRef::Existing { id, .. } => id.to_string(),
                    OrgRef::New { name } => format!("new:{name}"),
                },
                i.workspace.clone(),
                i.repository.to_lowercase(),
            )),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn planning_is_deterministic_and_order_independent(e in estate_strategy()) {
        let cfg = config(&e);
        let (bb, snyk) = fakes(&e);
        let rt = runtime();
        let inventory = rt.block_on(gather(&cfg, &bb, snyk.as_ref())).unwrap();
        let history = mirror_core::rules::History::default();
        let first = plan(&cfg, &inventory, &history);
        prop_assert_eq!(&first, &plan(&cfg, &inventory, &history));
        let mut shuffled = inventory.clone();
        shuffled.bitbucket.workspaces.reverse();
        for w in &mut shuffled.bitbucket.workspaces {
            w.repositories.reverse();
        }
        shuffled.snyk.orgs.reverse();
        prop_assert_eq!(&first, &plan(&cfg, &shuffled, &history));
    }

    #[test]
    fn no_plan_imports_a_repository_twice(e in estate_strategy()) {
        let cfg = config(&e);
        let (bb, snyk) = fakes(&e);
        let inventory = runtime().block_on(gather(&cfg, &bb, snyk.as_ref())).unwrap();
        let p = plan(&cfg, &inventory, &mirror_core::rules::History::default());
        let keys = import_keys(&p);
        let unique: BTreeSet<_> = keys.iter().cloned().collect();
        prop_assert_eq!(keys.len(), unique.len());
        // Each repository is imported at most once at all, whatever the org.
        let repos: BTreeSet<_> = keys.iter().map(|(_, w, r)| (w.clone(), r.clone())).collect();
        prop_assert_eq!(keys.len(), repos.len());
    }

    #[test]
    fn plan_apply_plan_leaves_nothing_to_do(e in estate_strategy()) {
        let cfg = config(&e);
        let (bb, snyk) = fakes(&e);
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let (second, posted) = rt.block_on(async {
            let journal = Journal::open(dir.path(), None).unwrap();
            let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
            let first = plan(&cfg, &inventory, &journal.state().history());
            let report = apply(&first, snyk.clone(), &journal, &cfg.apply, None, None).await.unwrap();
            assert!(report.imports_failed.is_empty(), "{report:?}");
            drop(journal);
            let journal = Journal::open(dir.path(), None).unwrap();
            let history = journal.state().history();
            let inventory = gather(&cfg, &bb, snyk.as_ref()).await.unwrap();
            let full = plan(&cfg, &inventory, &history);
            // Reading only the orgs with work left gives the same plan.
            let lean = gather_for(&cfg, &bb, snyk.as_ref(), &history).await.unwrap();
            assert_eq!(plan(&cfg, &lean, &history), full);
            (full, snyk.posted())
        });
        prop_assert!(second.is_noop(), "{}", second.render());
        // Nothing was posted twice, and no org name was created twice.
        let unique: BTreeSet<_> = posted.iter().collect();
        prop_assert_eq!(unique.len(), posted.len());
        let created = snyk.created();
        let names: BTreeSet<_> = created.iter().collect();
        prop_assert_eq!(names.len(), created.len());
    }
}
