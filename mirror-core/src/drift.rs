//! What changed in Bitbucket since the journal last recorded each mirrored repository (by its
//! uuid), and what Snyk must do to follow: rename an org after its workspace, import under a
//! new name or into another org (the old target then retired), move projects to a new default
//! branch, retire what is gone, and name what cannot be judged (a workspace no longer visible)
//! or is only reported (out of scope). Pure, like the plan it feeds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::Repo;
use crate::config::{Config, Mapping, OutOfScope};
use crate::conflict::ConflictReason;
use crate::ids::{OrgId, RepoUuid};
use crate::inventory::Inventory;
use crate::plan::{Action, RetireReason};
use crate::rules::{History, Placement, RepoRecord, destination, repo_filter};

/// The most retirements of repositories gone that a run makes in one org without
/// `drift.allow_mass_retire`: `max(10, 10%)` of its active targets.
pub(crate) fn mass_retire_limit(active_targets: usize) -> usize {
    (active_targets / 10).max(10)
}

/// What the plan needs from the drift analysis.
#[derive(Debug, Default)]
pub(crate) struct Drift {
    /// Repositories now listed under another name or org: where they were mirrored.
    pub(crate) replaces: BTreeMap<RepoUuid, Placement>,
    /// Orgs to rename after their workspace: id → new name.
    pub(crate) org_names: BTreeMap<OrgId, String>,
    /// Org renames, branch changes, retirements, notices and guard conflicts, in that order.
    pub(crate) actions: Vec<Action>,
}

/// The repositories every listing showed, by uuid, and what lookups by uuid found.
struct Seen<'a> {
    listed: HashMap<&'a RepoUuid, &'a Repo>,
    visible: BTreeSet<&'a str>,
    inventory: &'a Inventory,
}

impl<'a> Seen<'a> {
    fn new(inventory: &'a Inventory) -> Self {
        let b = &inventory.bitbucket;
        Self {
            listed: b
                .workspaces
                .iter()
                .flat_map(|w| &w.repositories)
                .filter_map(|r| Some((r.uuid.as_ref()?, r)))
                .collect(),
            visible: b
                .workspaces
                .iter()
                .map(|w| w.slug.as_str())
                .chain(b.excluded_workspaces.iter().map(|(w, _)| w.as_str()))
                .collect(),
            inventory,
        }
    }

    /// The repository as it is now: listed, or found by uuid.
    fn now(&self, uuid: &RepoUuid) -> Option<&'a Repo> {
        self.listed.get(uuid).copied().or_else(|| {
            self.inventory
                .bitbucket
                .confirmations
                .get(uuid)
                .and_then(Option::as_ref)
        })
    }

    /// Whether a lookup by uuid answered that the repository is gone.
    fn confirmed_gone(&self, uuid: &RepoUuid) -> bool {
        matches!(self.inventory.bitbucket.confirmations.get(uuid), Some(None))
    }

    fn org_name(&self, id: &OrgId) -> Option<&'a str> {
        self.inventory
            .snyk
            .orgs
            .iter()
            .find(|o| o.id == *id)
            .map(|o| o.name.as_str())
    }

    /// The existing org a destination names, when exactly one does.
    fn org_named(&self, name: &str) -> Option<&'a OrgId> {
        let mut found = self.inventory.snyk.orgs.iter().filter(|o| o.name == name);
        match (found.next(), found.next()) {
            (Some(o), None) => Some(&o.id),
            _ => None,
        }
    }
}

fn workspace_of(full_name: &str) -> &str {
    full_name.split_once('/').map_or(full_name, |(w, _)| w)
}

/// Orgs named after a workspace whose slug changed (same workspace uuid, the old slug gone,
/// no org of the new name yet): renamed rather than created again. Only with one org per
/// workspace, where the name follows the slug.
fn org_renames(config: &Config, history: &History, seen: &Seen<'_>) -> BTreeMap<OrgId, String> {
    let Mapping::OrgPerWorkspace { .. } = &config.mapping else {
        return BTreeMap::new();
    };
    let mut renames = BTreeMap::new();
    for (uuid, record) in history.repos.iter() {
        let Some(repo) = seen.listed.get(uuid) else {
            continue;
        };
        let old = workspace_of(&record.current.full_name);
        let same_workspace = repo.workspace_uuid.is_some()
            && repo.workspace_uuid == record.workspace_uuid
            && repo.workspace != old
            && !seen.visible.contains(old);
        let (Some(old_name), Some(new_name)) = (
            config.mapping.org_name(old, None),
            config.mapping.org_name(&repo.workspace, None),
        ) else {
            continue;
        };
        if same_workspace
            && seen.org_name(&record.current.org_id) == Some(old_name.as_str())
            && seen.org_named(&new_name).is_none()
        {
            renames.insert(record.current.org_id.clone(), new_name);
        }
    }
    renames
}

/// The org a repository now maps to, by id, taking org renames into account.
fn destination_org<'a>(
    config: &Config,
    repo: &Repo,
    seen: &Seen<'a>,
    renames: &'a BTreeMap<OrgId, String>,
) -> Option<OrgId> {
    let dest = destination(config, &repo.workspace, repo)?;
    if let Mapping::SingleOrg { org_id } = &config.mapping {
        return Some(org_id.as_str().into());
    }
    seen.org_named(&dest).cloned().or_else(|| {
        renames
            .iter()
            .find(|(_, n)| **n == dest)
            .map(|(id, _)| id.clone())
    })
}

/// Compares what the journal recorded with Bitbucket now (see the module's documentation);
/// with a `focus`, only for those repositories (a targeted reconcile, whose inventory shows
/// only them).
pub(crate) fn analyse(
    config: &Config,
    inventory: &Inventory,
    history: &History,
    focus: Option<&BTreeSet<RepoUuid>>,
) -> Drift {
    let seen = Seen::new(inventory);
    let renames = org_renames(config, history, &seen);
    let mut drift = Drift::default();
    for (org_id, to) in &renames {
        drift.actions.push(Action::RenameOrg {
            org_id: org_id.clone(),
            from: seen.org_name(org_id).unwrap_or_default().to_owned(),
            to: to.clone(),
        });
    }
    let mut branches = Vec::new();
    let mut gone: BTreeMap<OrgId, Vec<Action>> = BTreeMap::new();
    let mut stale = Vec::new();
    let mut notices = Vec::new();
    let mut invisible: BTreeMap<String, (Option<String>, usize)> = BTreeMap::new();
    let retire = |uuid: &RepoUuid, placement: &Placement, why: RetireReason| Action::Retire {
        uuid: Some(uuid.clone()),
        org: seen
            .org_name(&placement.org_id)
            .unwrap_or(placement.org_id.as_str())
            .to_owned(),
        placement: placement.clone(),
        why,
        mode: config.drift.retire,
    };
    let in_focus = |uuid: &RepoUuid| focus.is_none_or(|f| f.contains(uuid));
    for (uuid, record) in history.repos.iter().filter(|(u, _)| in_focus(u)) {
        for old in &record.stale {
            stale.push(retire(uuid, old, replaced(old, record)));
        }
        let Some(repo) = seen.now(uuid) else {
            if seen.confirmed_gone(uuid) {
                let placement = &record.current;
                let action = retire(uuid, placement, RetireReason::Deleted);
                gone.entry(placement.org_id.clone())
                    .or_default()
                    .push(action);
            } else {
                let workspace = workspace_of(&record.current.full_name);
                if !seen.visible.contains(workspace) {
                    let entry = invisible.entry(workspace.to_owned()).or_insert_with(|| {
                        (seen.org_name(&record.current.org_id).map(str::to_owned), 0)
                    });
                    entry.1 += 1;
                }
            }
            continue;
        };
        if let Some(reason) = repo_filter(config, repo) {
            let rule = reason.explain();
            notices.push(Action::OutOfScope {
                repository: repo.full_name(),
                rule: rule.clone(),
            });
            if config.drift.out_of_scope == OutOfScope::Retire {
                let placement = &record.current;
                let action = retire(uuid, placement, RetireReason::OutOfScope { rule });
                gone.entry(placement.org_id.clone())
                    .or_default()
                    .push(action);
            }
            continue;
        }
        let here = destination_org(config, repo, &seen, &renames).as_ref()
            == Some(&record.current.org_id)
            && repo
                .full_name()
                .eq_ignore_ascii_case(&record.current.full_name);
        if !here {
            drift.replaces.insert(uuid.clone(), record.current.clone());
        } else if let Some(change) = branch_change(uuid, record, repo, &seen) {
            branches.push(change);
        }
    }
    drift.actions.extend(branches);
    drift
        .actions
        .extend(guard(config, inventory, history, gone, &seen));
    drift.actions.extend(stale);
    for (workspace, (org, repositories)) in invisible {
        drift.actions.push(Action::WorkspaceGone {
            workspace,
            org,
            repositories,
        });
    }
    drift.actions.extend(notices);
    drift.org_names = renames;
    drift
}

/// Why an old placement of a repository is retired: it was renamed (same org) or moved.
pub(crate) fn replaced(old: &Placement, record: &RepoRecord) -> RetireReason {
    let to = record.current.full_name.clone();
    if old.org_id == record.current.org_id {
        RetireReason::Renamed { to }
    } else {
        RetireReason::Moved { to }
    }
}

/// The branch change of a repository mirrored in place, when its default branch moved.
fn branch_change(
    uuid: &RepoUuid,
    record: &RepoRecord,
    repo: &Repo,
    seen: &Seen<'_>,
) -> Option<Action> {
    let (Some(from), Some(to)) = (&record.branch, &repo.main_branch) else {
        return None;
    };
    (from != to).then(|| Action::Branch {
        uuid: uuid.clone(),
        org: seen
            .org_name(&record.current.org_id)
            .unwrap_or(record.current.org_id.as_str())
            .to_owned(),
        org_id: record.current.org_id.clone(),
        repository: record.current.full_name.clone(),
        from: from.clone(),
        to: to.clone(),
    })
}

/// The mass-removal guard: an org's retirements of repositories gone go through when they are
/// at most `max(10, 10%)` of its active targets (or `drift.allow_mass_retire`); otherwise they
/// are held back as one conflict naming the count.
fn guard(
    config: &Config,
    inventory: &Inventory,
    history: &History,
    gone: BTreeMap<OrgId, Vec<Action>>,
    seen: &Seen<'_>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for (org_id, retirements) in gone {
        let listed = inventory
            .snyk
            .orgs
            .iter()
            .find(|o| o.id == org_id)
            .and_then(|o| o.imported.as_ref())
            .map_or(0, |i| i.len());
        let recorded = history
            .repos
            .values()
            .filter(|r| r.current.org_id == org_id)
            .count();
        let limit = mass_retire_limit(listed.max(recorded));
        if config.drift.allow_mass_retire || retirements.len() <= limit {
            out.extend(retirements);
            continue;
        }
        let repositories = retirements
            .iter()
            .filter_map(|a| match a {
                Action::Retire { placement, .. } => Some(placement.full_name.clone()),
                _ => None,
            })
            .collect::<Vec<_>>();
        out.push(Action::Conflict {
            org: seen.org_name(&org_id).unwrap_or(org_id.as_str()).to_owned(),
            reason: ConflictReason::MassRetire {
                retirements: repositories.len(),
                limit,
            },
            repositories,
        });
    }
    out
}
