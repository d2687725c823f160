//! Scope and destination, decided once: every repository the inventory holds (listed, or
//! found by uuid) with the org it goes to or its reason to be skipped. The inventory decides
//! it when Bitbucket has been read and hands it on ([`crate::inventory::Inventory::estate`]);
//! the Snyk read, the plan, the Snyk-side comparison and the drift analysis read it. The
//! scope's rules (patterns, visibility, `updated_since`, forks, empty repositories) and the
//! mapping are applied here and nowhere else.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, Mapping};
use crate::decide::patterns::{Visibility, glob_match};
use crate::decide::rules::SkipReason;
use crate::read::ports::Repo;

/// What the configuration decides for one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Mirrored into this destination: the org name the mapping gives, or the single org's id.
    Mirror(Arc<str>),
    /// Not mirrored, and why.
    Skip(SkipReason),
}

/// The in-scope estate: each repository's [`Decision`], by its `workspace/repository`.
///
/// Not written to files: an inventory read back from a file has none, and the plan decides
/// one from the inventory it is given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estate {
    decisions: HashMap<String, Decision>,
    decided: bool,
}

impl Estate {
    /// Decides every repository of `repositories` under `config`, each once.
    pub fn decide<'a>(config: &Config, repositories: impl IntoIterator<Item = &'a Repo>) -> Self {
        // One shared string per destination, however many repositories go there.
        let mut destinations: HashMap<String, Arc<str>> = HashMap::new();
        let mut decisions = HashMap::new();
        for repo in repositories {
            decisions
                .entry(repo.full_name())
                .or_insert_with(|| match repo_filter(config, repo) {
                    Some(reason) => Decision::Skip(reason),
                    None => {
                        let dest = destination(config, &repo.workspace, repo).unwrap_or_default();
                        let shared = destinations
                            .entry(dest.clone())
                            .or_insert_with(|| Arc::from(dest));
                        Decision::Mirror(Arc::clone(shared))
                    }
                });
        }
        Self {
            decisions,
            decided: true,
        }
    }

    /// Whether this estate was decided (an inventory read back from a file holds none).
    pub fn is_decided(&self) -> bool {
        self.decided
    }

    /// What was decided for `repo`. One the estate does not hold (a bug: the estate is decided
    /// from the inventory it travels with) is named as skipped, never mirrored by accident.
    pub fn of(&self, repo: &Repo) -> Decision {
        match self.decisions.get(&repo.full_name()) {
            Some(d) => d.clone(),
            None => {
                debug_assert!(false, "{} was not decided", repo.full_name());
                Decision::Skip(SkipReason::Excluded {
                    rule: "not decided with the rest of the inventory (please report this)"
                        .to_owned(),
                })
            }
        }
    }

    /// Why `repo` is not mirrored, if it is not.
    pub fn skip_reason(&self, repo: &Repo) -> Option<SkipReason> {
        match self.of(repo) {
            Decision::Skip(reason) => Some(reason),
            Decision::Mirror(_) => None,
        }
    }

    /// Where `repo` goes, if it is mirrored.
    pub fn destination(&self, repo: &Repo) -> Option<Arc<str>> {
        match self.of(repo) {
            Decision::Mirror(dest) => Some(dest),
            Decision::Skip(_) => None,
        }
    }
}

/// Where `repo` of `workspace` goes: the org name the mapping gives, or the single org's id.
fn destination(config: &Config, workspace: &str, repo: &Repo) -> Option<String> {
    match &config.mapping {
        Mapping::SingleOrg { org_id } => Some(org_id.clone()),
        mapping => mapping.org_name(workspace, repo.project_key.as_deref()),
    }
}

/// Why a repository is not imported at all under this configuration (excluded, a fork, empty).
fn repo_filter(config: &Config, repo: &Repo) -> Option<SkipReason> {
    let s = &config.source;
    let full = repo.full_name();
    let matches = |p: &String| {
        if p.contains('/') {
            glob_match(p, &full)
        } else {
            glob_match(p, &repo.slug)
        }
    };
    if !s.include_repositories.is_empty() && !s.include_repositories.iter().any(matches) {
        return Some(SkipReason::Excluded {
            rule: format!("not matched by {}", s.include_repositories.join(", ")),
        });
    }
    if let Some(p) = s.exclude_repositories.iter().find(|p| matches(p)) {
        return Some(SkipReason::Excluded {
            rule: format!("matched by {p}"),
        });
    }
    match (s.visibility, repo.is_private) {
        (Visibility::Private, false) => {
            return Some(SkipReason::Excluded {
                rule: "public (source.visibility = private)".to_owned(),
            });
        }
        (Visibility::Public, true) => {
            return Some(SkipReason::Excluded {
                rule: "private (source.visibility = public)".to_owned(),
            });
        }
        _ => {}
    }
    if !s.project_keys.is_empty()
        && !repo
            .project_key
            .as_ref()
            .is_some_and(|k| s.project_keys.iter().any(|p| p.eq_ignore_ascii_case(k)))
    {
        return Some(SkipReason::Excluded {
            rule: format!("not in project {}", s.project_keys.join(", ")),
        });
    }
    let since = repo
        .updated_on
        .as_ref()
        .and_then(|_| s.updated_since_time().ok().flatten());
    if let (Some(since), Some(updated)) = (&since, &repo.updated_on)
        && updated <= since
    {
        return Some(SkipReason::Excluded {
            rule: format!("not updated since {since}"),
        });
    }
    if s.skip_forks && repo.is_fork {
        return Some(SkipReason::Fork);
    }
    if repo.main_branch.as_deref().is_none_or(str::is_empty) {
        return Some(SkipReason::EmptyRepository);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Decision, Estate};
    use crate::config::Config;
    use crate::decide::plan::{Action, plan};
    use crate::decide::rules::{History, SkipReason};
    use crate::read::inventory::{
        BitbucketInventory, Inventory, SnykInventory, WorkspaceInventory,
    };
    use crate::read::ports::Repo;

    fn config(extra: &str) -> Config {
        Config::from_toml(&format!("[snyk]\ngroup_id = \"g\"\n{extra}")).expect("a configuration")
    }

    fn inventory() -> Inventory {
        let mut fork = Repo::new("acme", "fork");
        fork.is_fork = true;
        Inventory {
            bitbucket: BitbucketInventory {
                workspaces: vec![WorkspaceInventory {
                    slug: "acme".to_owned(),
                    repositories: vec![Repo::new("acme", "api"), Repo::new("acme", "web"), fork],
                }],
                ..BitbucketInventory::default()
            },
            snyk: SnykInventory {
                can_add_integrations: true,
                ..SnykInventory::default()
            },
            ..Inventory::default()
        }
    }

    #[test]
    fn each_repository_gets_its_destination_or_its_reason_and_destinations_are_shared() {
        let inv = inventory();
        let estate = Estate::decide(
            &config("[source]\nskip_forks = true\n"),
            inv.bitbucket.repositories(),
        );
        let [api, web, fork] = &inv.bitbucket.workspaces[0].repositories[..] else {
            panic!("three repositories");
        };
        let (Decision::Mirror(a), Decision::Mirror(w)) = (estate.of(api), estate.of(web)) else {
            panic!("both mirrored");
        };
        assert_eq!(&*a, "acme");
        assert!(Arc::ptr_eq(&a, &w), "one string per destination");
        assert_eq!(estate.skip_reason(fork), Some(SkipReason::Fork));
    }

    #[test]
    fn the_plan_reads_the_estate_the_inventory_hands_on() {
        // Decided under a configuration that leaves `web` out, then planned under one that
        // does not: the plan follows what was decided, it does not decide again.
        let mut inv = inventory();
        inv.estate = Estate::decide(
            &config("[source]\nexclude_repositories = [\"web\"]\n"),
            inv.bitbucket.repositories(),
        );
        let p = plan(&config(""), &inv, &History::default());
        let imported: Vec<&str> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Import(i) => Some(i.repository.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(imported, ["api", "fork"]);
        // Without one (an inventory built by hand), the plan decides it from its own config.
        inv.estate = Estate::default();
        assert_eq!(
            plan(&config(""), &inv, &History::default())
                .summary()
                .imports,
            3
        );
    }
}
