//! The plan's Snyk side as it is: for an org read in full, what its targets and projects show
//! beyond what Bitbucket and the journal explain (people's changes, targets never mirrored,
//! duplicates, projects on another branch), each named as a [`Difference`], and the changes
//! the configuration asks for (restore, adopt, dedupe).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{Config, PeopleChanges, RetireMode};
use crate::decide::conflict::ConflictReason;
use crate::decide::differences::{
    ChangedBy, Difference, DifferenceKind, Response, duplicate_projects, who_deactivated,
    who_removed,
};
use crate::decide::drift::mass_retire_limit;
use crate::decide::rules::{History, Placement};
use crate::decide::scope::Estate;
use crate::ids::{OrgId, RepoUuid, TargetId};
use crate::read::inventory::{BitbucketInventory, Inventory, OrgInventory};
use crate::read::ports::Repo;

use super::{Action, Planner, RetireReason};

/// What the comparison reads of the whole estate, made once per plan.
pub(super) struct Facts<'a> {
    /// Every listed repository by lowercased `workspace/repository` (whether it is in scope
    /// is judged only for a target found in Snyk alone).
    listed: HashMap<String, &'a Repo>,
    /// The targets this mirror knows as its own.
    known: BTreeSet<(OrgId, String)>,
    /// When both sides were read (seconds since the Unix epoch; 0 when unknown).
    pub(super) now: u64,
    /// Orgs holding this mirror's records.
    history_orgs: BTreeSet<OrgId>,
    /// Repositories whose branch change the drift analysis plans already.
    branching: BTreeSet<RepoUuid>,
    /// Whether the listings are whole (no server-side narrowing): only then does a target's
    /// absence from them say anything.
    whole: bool,
    /// The Bitbucket side, for the evidence of absence.
    bitbucket: &'a BitbucketInventory,
    /// Each repository's scope, as the inventory decided it.
    estate: &'a Estate,
}

impl<'a> Facts<'a> {
    pub(super) fn new(
        config: &'a Config,
        inventory: &'a Inventory,
        estate: &'a Estate,
        history: &History,
    ) -> Self {
        let mut facts = Self {
            listed: HashMap::new(),
            known: BTreeSet::new(),
            now: inventory.read_at.unwrap_or(0),
            history_orgs: BTreeSet::new(),
            branching: BTreeSet::new(),
            whole: false,
            bitbucket: &inventory.bitbucket,
            estate,
        };
        if !inventory.snyk.orgs.iter().any(OrgInventory::read_in_full) {
            return facts;
        }
        facts.listed = inventory
            .bitbucket
            .workspaces
            .iter()
            .flat_map(|w| &w.repositories)
            .map(|r| (r.full_name().to_lowercase(), r))
            .collect();
        facts.history_orgs = history
            .completed
            .keys()
            .map(|(org, _)| org.clone())
            .chain(history.repos.values().map(|r| r.current.org_id.clone()))
            .collect();
        facts.known = history.known_targets();
        facts.whole =
            config.source.project_keys.is_empty() && config.source.updated_since.is_none();
        facts
    }

    /// Why a target of this name is not mirrored, and whether that is certain; `None` when
    /// nothing can be said (a listing narrowed on the server).
    fn not_mirrored(&self, name: &str) -> Option<(String, bool)> {
        if !self.whole {
            return None;
        }
        let ws = name.split('/').next().unwrap_or(name);
        if let Some(repo) = self.listed.get(name) {
            return Some(match self.estate.skip_reason(repo) {
                Some(why) => (
                    format!("its repository is out of scope: {}", why.explain()),
                    true,
                ),
                None => (
                    "its repository is mirrored into another org".to_owned(),
                    false,
                ),
            });
        }
        let b = self.bitbucket;
        if b.workspaces.iter().any(|w| w.slug.eq_ignore_ascii_case(ws)) {
            return Some(if b.lists_in_full(ws) {
                (
                    format!("not in Bitbucket: the listing of {ws} does not have it"),
                    true,
                )
            } else {
                (
                    format!("not in {ws}'s listing, but entries of it could not be read"),
                    false,
                )
            });
        }
        if let Some((_, why)) = b.excluded_workspaces.iter().find(|(w, _)| w == ws) {
            return Some((format!("its workspace is out of scope: {why}"), true));
        }
        if let Some((_, why)) = b.unlisted.iter().find(|(w, _)| w == ws) {
            return Some((format!("its workspace could not be listed: {why}"), false));
        }
        Some((
            format!("its workspace {ws} is not visible to the credentials"),
            false,
        ))
    }
}

fn difference(
    org: &OrgInventory,
    repository: Option<String>,
    uuid: Option<RepoUuid>,
    kind: DifferenceKind,
    by: Option<ChangedBy>,
    response: Response,
) -> Action {
    Action::Differs(Box::new(Difference {
        org: org.name.clone(),
        org_id: org.id.clone(),
        repository,
        uuid,
        kind,
        by,
        response,
    }))
}

/// The retirement of a target this mirror did not import (`drift.adopt`, `--dedupe`):
/// always a deactivation, which `undo` reverses; never a deletion.
fn retire_target(
    org: &OrgInventory,
    full_name: String,
    target: &TargetId,
    why: RetireReason,
) -> Action {
    Action::Retire {
        uuid: None,
        org: org.name.clone(),
        placement: Placement {
            org_id: org.id.clone(),
            full_name,
            target_id: Some(target.clone()),
        },
        why,
        mode: RetireMode::Deactivate,
        delete_after: None,
    }
}

impl<'a> Planner<'a> {
    /// Sets which repositories the drift analysis already moves to a new branch.
    pub(super) fn note_drift_branches(&mut self) {
        self.facts.branching = self
            .drift
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Branch { uuid, .. } => Some(uuid.clone()),
                _ => None,
            })
            .collect();
    }

    /// Names a difference of `repo`'s target in `org`.
    fn name(
        &mut self,
        org: &OrgInventory,
        repo: &Repo,
        kind: DifferenceKind,
        by: Option<ChangedBy>,
        response: Response,
    ) {
        let action = difference(
            org,
            Some(repo.full_name()),
            repo.uuid.clone(),
            kind,
            by,
            response,
        );
        self.differs.push(action);
    }

    /// What the old target `old`'s projects hold that a rename or a move carries, in words,
    /// as far as its org was read: `its ignores, 1 tag, 3 attributes, weekly tests, owner`.
    pub(super) fn carrying(&self, old: &Placement) -> String {
        let org = self.orgs.iter().find(|o| o.id == old.org_id);
        let target = org.and_then(|o| o.target_ids.get(&old.full_name.to_lowercase()));
        let (Some(org), Some(target)) = (org, target) else {
            return "its projects' history".to_owned();
        };
        let (mut tags, mut attributes, mut frequency, mut owner) = (0, 0, None, false);
        for p in org.projects_of(target) {
            let s = &p.settings;
            tags += s.tags.len();
            attributes += [&s.criticality, &s.environment, &s.lifecycle]
                .iter()
                .filter(|a| !a.is_empty())
                .count();
            frequency = frequency.or(s.test_frequency.clone().filter(|f| f != "daily"));
            owner |= s.owner.is_some();
        }
        let mut parts = vec!["its ignores".to_owned()];
        for (n, one, many) in [
            (tags, "tag", "tags"),
            (attributes, "attribute", "attributes"),
        ] {
            if n > 0 {
                parts.push(crate::decide::conflict::counted(n, one, many));
            }
        }
        if let Some(f) = frequency {
            parts.push(format!("{f} tests"));
        }
        if owner {
            parts.push("owner".to_owned());
        }
        parts.join(", ")
    }

    fn restoring(&self) -> bool {
        self.config.snyk.people_changes == PeopleChanges::Restore
    }

    /// Of several orgs with the destination's name, the one in use: the one holding this
    /// mirror's records, else the only one with the integration and targets; the others are
    /// named. `None` when that does not settle it.
    pub(super) fn pick_org(&mut self, several: &[&'a OrgInventory]) -> Option<&'a OrgInventory> {
        let ours: Vec<&OrgInventory> = several
            .iter()
            .copied()
            .filter(|o| self.facts.history_orgs.contains(&o.id))
            .collect();
        let chosen = match ours.as_slice() {
            [one] => *one,
            [] => {
                let holding: Vec<&OrgInventory> = several
                    .iter()
                    .copied()
                    .filter(|o| {
                        !o.target_ids.is_empty()
                            && o.integrations
                                .as_ref()
                                .is_some_and(|m| m.contains_key(self.integration))
                    })
                    .collect();
                match holding.as_slice() {
                    [one] => *one,
                    _ => return None,
                }
            }
            _ => return None,
        };
        for other in several.iter().filter(|o| o.id != chosen.id) {
            let targets =
                other.target_ids.len() + other.more_targets.values().map(Vec::len).sum::<usize>();
            let kind = DifferenceKind::DuplicateOrg {
                kept: chosen.id.clone(),
                targets,
            };
            self.differs
                .push(difference(other, None, None, kind, None, Response::Named));
        }
        Some(chosen)
    }

    /// Whether `repo`, imported by this mirror into `org`, has lost its target in Snyk: `None`
    /// when not; `Some(true)` when it is to be imported again (restore), `Some(false)` when the
    /// removal is respected. Either way it is named.
    pub(super) fn removed_in_snyk(&mut self, org: &OrgInventory, repo: &Repo) -> Option<bool> {
        let key = repo.full_name().to_lowercase();
        if org.target_ids.contains_key(&key) {
            return None;
        }
        let projects = self.history.completed.get(&(org.id.clone(), key.clone()))?;
        if *projects == 0 {
            return None;
        }
        let target_id = repo
            .uuid
            .as_ref()
            .and_then(|u| self.history.repos.get(u))
            .filter(|r| r.current.org_id == org.id)
            .and_then(|r| r.current.target_id.clone());
        let by = who_removed(org, target_id.as_ref(), &key);
        let restore = self.restoring();
        let response = if restore {
            Response::Restored
        } else {
            Response::Respected
        };
        let kind = DifferenceKind::RemovedInSnyk { target_id };
        self.name(org, repo, kind, by, response);
        Some(restore)
    }

    /// Compares the target of `repo` in `org` with Bitbucket: projects deactivated by someone,
    /// active projects on another branch than the default, second targets, and projects that
    /// test one manifest twice.
    pub(super) fn compare_target(&mut self, org: &OrgInventory, repo: &Repo) {
        let key = repo.full_name().to_lowercase();
        let Some(target) = org.target_ids.get(&key) else {
            return;
        };
        self.duplicate_targets(org, repo, &key, target);
        let projects: Vec<&crate::read::ports::SnykProject> = org.projects_of(target).collect();
        if projects.is_empty() {
            return;
        }
        if projects.iter().all(|p| !p.active) {
            return self.deactivated(org, repo, target, &projects);
        }
        for (target_file, mut ids) in duplicate_projects(projects.iter().copied()) {
            let keep = ids.remove(0);
            let kind = DifferenceKind::DuplicateProjects {
                target_file,
                keep,
                others: ids,
            };
            self.name(org, repo, kind, None, Response::Named);
        }
        self.other_branch(org, repo, &projects);
        self.metadata(org, repo, &projects);
    }

    /// The managed tags and attributes of each active project of `repo`, where they differ
    /// from what its `[[metadata]]` rule says.
    fn metadata(
        &mut self,
        org: &OrgInventory,
        repo: &Repo,
        projects: &[&crate::read::ports::SnykProject],
    ) {
        let Some(mut wanted) = crate::decide::metadata::wanted(&self.config.metadata, repo) else {
            return;
        };
        // Snyk refused tags in this org less than a week ago: the attributes only.
        let week = 7 * 24 * 3600;
        if self
            .history
            .tags_refused
            .get(&org.id)
            .is_some_and(|at| self.facts.now.saturating_sub(*at) < week)
        {
            wanted.tags.clear();
        }
        for p in projects.iter().filter(|p| p.active) {
            if let Some((settings, changes)) =
                crate::decide::metadata::apply_to(&p.settings, &wanted)
            {
                self.fixes
                    .push(Action::Metadata(Box::new(super::MetadataChange {
                        org: org.name.clone(),
                        org_id: org.id.clone(),
                        repository: repo.full_name(),
                        project_id: p.id.clone(),
                        target_file: p.target_file.clone(),
                        settings,
                        changes,
                    })));
            }
        }
    }

    /// Every project of the target inactive: this mirror's own retirement, or a person's
    /// deactivation (named; reactivated only to restore it).
    fn deactivated(
        &mut self,
        org: &OrgInventory,
        repo: &Repo,
        target: &TargetId,
        projects: &[&crate::read::ports::SnykProject],
    ) {
        let key = (org.id.clone(), repo.full_name().to_lowercase());
        if self.history.retired.contains(&key)
            || self.history.quarantined.iter().any(|q| {
                q.placement.org_id == org.id && q.placement.full_name.eq_ignore_ascii_case(&key.1)
            })
        {
            return;
        }
        let ids: Vec<_> = projects.iter().map(|p| p.id.clone()).collect();
        let by = who_deactivated(org, &ids);
        let restore = self.restoring();
        if restore {
            self.fixes.push(Action::Reactivate {
                org: org.name.clone(),
                placement: Placement {
                    org_id: org.id.clone(),
                    full_name: repo.full_name(),
                    target_id: Some(target.clone()),
                },
                run: None,
                projects: ids.clone(),
            });
        }
        let response = if restore {
            Response::Restored
        } else {
            Response::Respected
        };
        let kind = DifferenceKind::DeactivatedInSnyk {
            target_id: target.clone(),
            projects: ids,
        };
        self.name(org, repo, kind, by, response);
    }

    /// Active projects on a branch other than the repository's default: moved to it (the
    /// most common other branch first; the drift analysis may have planned it already).
    fn other_branch(
        &mut self,
        org: &OrgInventory,
        repo: &Repo,
        projects: &[&crate::read::ports::SnykProject],
    ) {
        let (Some(uuid), Some(main)) = (&repo.uuid, &repo.main_branch) else {
            return;
        };
        if self.facts.branching.contains(uuid) {
            return;
        }
        let mut others: BTreeMap<&str, usize> = BTreeMap::new();
        for p in projects.iter().filter(|p| p.active) {
            if let Some(b) = p.branch.as_deref().filter(|b| b != main) {
                *others.entry(b).or_default() += 1;
            }
        }
        let Some((from, _)) = others
            .into_iter()
            .max_by_key(|(b, n)| (*n, std::cmp::Reverse(*b)))
        else {
            return;
        };
        self.facts.branching.insert(uuid.clone());
        self.fixes.push(Action::Branch {
            uuid: uuid.clone(),
            org: org.name.clone(),
            org_id: org.id.clone(),
            repository: repo.full_name(),
            from: from.to_owned(),
            to: main.clone(),
        });
    }

    /// Second targets of one repository: named, and retired with `--dedupe` (the one this
    /// mirror made is kept).
    fn duplicate_targets(&mut self, org: &OrgInventory, repo: &Repo, key: &str, first: &TargetId) {
        let Some(more) = org.more_targets.get(key) else {
            return;
        };
        let ours = repo
            .uuid
            .as_ref()
            .and_then(|u| self.history.repos.get(u))
            .and_then(|r| r.current.target_id.clone());
        let all: Vec<TargetId> = std::iter::once(first.clone())
            .chain(more.iter().cloned())
            .collect();
        let keep = ours
            .filter(|t| all.contains(t))
            .unwrap_or_else(|| first.clone());
        // A second target whose projects are all inactive tests nothing: not a duplicate.
        let others: Vec<TargetId> = all
            .into_iter()
            .filter(|t| *t != keep && org.projects_of(t).any(|p| p.active))
            .collect();
        if others.is_empty() {
            return;
        }
        let dedupe = self.config.drift.dedupe && self.config.drift.retire != RetireMode::Report;
        if dedupe {
            for other in &others {
                let why = RetireReason::Duplicate { keep: keep.clone() };
                self.fixes
                    .push(retire_target(org, repo.full_name(), other, why));
            }
        }
        let response = if dedupe {
            Response::Retired
        } else {
            Response::Named
        };
        let kind = DifferenceKind::DuplicateTarget { keep, others };
        self.name(org, repo, kind, None, response);
    }

    /// Targets of `org` that no repository of this destination has and this mirror never
    /// imported: named, and retired with `drift.adopt` when the evidence is certain (behind
    /// the mass-removal guard).
    pub(super) fn snyk_only(&mut self, org: &OrgInventory, repos: &[&Repo]) {
        let here: BTreeSet<String> = repos.iter().map(|r| r.full_name().to_lowercase()).collect();
        let mut found = Vec::new();
        for (name, target) in &org.target_ids {
            if here.contains(name) || self.facts.known.contains(&(org.id.clone(), name.clone())) {
                continue;
            }
            let Some((why, certain)) = self.facts.not_mirrored(name) else {
                continue;
            };
            let active = org.projects_of(target).filter(|p| p.active).count();
            found.push((name.clone(), target.clone(), why, certain, active));
        }
        let adopting = self.config.drift.adopt && self.config.drift.retire != RetireMode::Report;
        let retiring = found.iter().filter(|f| f.3 && f.4 > 0).count();
        let limit = mass_retire_limit(org.target_ids.len());
        let guarded = adopting && retiring > limit && !self.config.drift.allow_mass_retire;
        if guarded {
            let repositories = found
                .iter()
                .filter(|f| f.3 && f.4 > 0)
                .map(|f| f.0.clone())
                .collect::<Vec<_>>();
            self.conflicts.push(Action::Conflict {
                org: org.name.clone(),
                reason: ConflictReason::MassRetire {
                    retirements: repositories.len(),
                    limit,
                },
                repositories,
            });
        }
        for (name, target, why, certain, active) in found {
            let retire = adopting && !guarded && certain && active > 0;
            if retire {
                let reason = RetireReason::NotMirrored { why: why.clone() };
                self.fixes
                    .push(retire_target(org, name.clone(), &target, reason));
            }
            let response = if retire {
                Response::Retired
            } else {
                Response::Named
            };
            let kind = DifferenceKind::SnykOnly {
                target_id: target,
                active_projects: active,
                why,
                certain,
            };
            self.differs
                .push(difference(org, Some(name), None, kind, None, response));
        }
    }
}
