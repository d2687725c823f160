//! What changed in Bitbucket since the journal last recorded each mirrored repository (by its
//! uuid), and what Snyk must do to follow: rename an org after its workspace, import under a
//! new name or into another org (the old target then retired), move projects to a new default
//! branch, retire what is gone, and name what cannot be judged (a workspace no longer visible)
//! or is only reported (out of scope). Pure, like the plan it feeds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{Config, Mapping, OutOfScope, RetireMode};
use crate::decide::action::{Action, RetireReason};
use crate::decide::conflict::ConflictReason;
use crate::decide::rules::{History, Placement, Quarantined, RepoRecord, Retired};
use crate::decide::scope::Estate;
use crate::ids::{OrgId, RepoUuid};
use crate::read::inventory::{Inventory, Lookup};
use crate::read::ports::Repo;

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
    /// Each repository's scope and destination, as the inventory decided them.
    estate: &'a Estate,
}

impl<'a> Seen<'a> {
    fn new(inventory: &'a Inventory, estate: &'a Estate) -> Self {
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
                .chain(b.unlisted.iter().map(|(w, _)| w.as_str()))
                .collect(),
            inventory,
            estate,
        }
    }

    /// The repository as it is now: listed, or found by uuid.
    fn now(&self, uuid: &RepoUuid) -> Option<&'a Repo> {
        self.listed.get(uuid).copied().or_else(|| {
            match self.inventory.bitbucket.confirmations.get(uuid) {
                Some(Lookup::Found { repository }) => Some(repository),
                _ => None,
            }
        })
    }

    /// Why what Bitbucket answered of a repository no listing showed is not certain, if it is
    /// not: its entry in a listing could not be read, or its lookup proved nothing.
    fn uncertain(&self, uuid: &RepoUuid) -> Option<String> {
        let b = &self.inventory.bitbucket;
        if let Some((workspace, entry)) = b.unreadable_entry(uuid) {
            return Some(format!("in the listing of {workspace}: {}", entry.why));
        }
        match b.confirmations.get(uuid) {
            Some(Lookup::Uncertain { why }) => Some(why.clone()),
            _ => None,
        }
    }

    /// The answer that left a workspace unlisted, if it was.
    fn unlisted(&self, workspace: &str) -> Option<&'a str> {
        self.inventory
            .bitbucket
            .unlisted
            .iter()
            .find(|(w, _)| w == workspace)
            .map(|(_, why)| why.as_str())
    }

    /// The org's name, or its id when it is not among the orgs read.
    fn org_label(&self, id: &OrgId) -> String {
        self.org_name(id).unwrap_or(id.as_str()).to_owned()
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
    let dest = seen.estate.destination(repo)?;
    if let Mapping::SingleOrg { org_id } = &config.mapping {
        return Some(org_id.as_str().into());
    }
    seen.org_named(&dest).cloned().or_else(|| {
        renames
            .iter()
            .find(|(_, n)| n.as_str() == &*dest)
            .map(|(id, _)| id.clone())
    })
}

/// What the analysis found, by kind, joined in order at the end.
#[derive(Default)]
struct Findings {
    /// Repositories now listed under another name or org: where they were mirrored.
    replaces: BTreeMap<RepoUuid, Placement>,
    branches: Vec<Action>,
    /// Retirements of repositories gone or out of scope, by org (for the guard).
    gone: BTreeMap<OrgId, Vec<Action>>,
    stale: Vec<Action>,
    notices: Vec<Action>,
    uncertain: Vec<Action>,
    /// Workspaces no longer visible: their org, and how many mirrored repositories.
    invisible: BTreeMap<String, (Option<String>, usize)>,
    /// Workspaces whose listing failed: their org, how many mirrored repositories, and why.
    unread: BTreeMap<String, (Option<String>, usize, String)>,
}

/// Compares what the journal recorded with Bitbucket now (see the module's documentation);
/// with a `focus`, only for those repositories (a targeted reconcile, whose inventory shows
/// only them). Only certain evidence retires or moves anything: what Bitbucket's answers do not
/// settle is named ([`Action::Uncertain`], [`Action::WorkspaceUnread`]) and left as it is.
pub(crate) fn analyse(
    config: &Config,
    inventory: &Inventory,
    estate: &Estate,
    history: &History,
    focus: Option<&BTreeSet<RepoUuid>>,
) -> Drift {
    let seen = Seen::new(inventory, estate);
    let renames = org_renames(config, history, &seen);
    let mut drift = Drift::default();
    for (org_id, to) in &renames {
        drift.actions.push(Action::RenameOrg {
            org_id: org_id.clone(),
            from: seen.org_name(org_id).unwrap_or_default().to_owned(),
            to: to.clone(),
        });
    }
    let mut found = Findings::default();
    let in_focus = |uuid: &RepoUuid| focus.is_none_or(|f| f.contains(uuid));
    for (uuid, record) in history.repos.iter().filter(|(u, _)| in_focus(u)) {
        for old in &record.stale {
            let why = replaced(old, record);
            found.stale.push(retirement(config, &seen, uuid, old, why));
        }
        match seen.now(uuid) {
            Some(repo) => found.present(config, &seen, &renames, uuid, record, repo),
            None => found.absent(config, &seen, uuid, record),
        }
    }
    for q in history.quarantined.iter().filter(|q| in_focus(&q.uuid)) {
        found.quarantined(config, &seen, history, q);
    }
    if focus.is_none() {
        found.unclaimed(&seen, history);
        for (workspace, why) in &inventory.bitbucket.unlisted {
            found
                .unread
                .entry(workspace.clone())
                .or_insert_with(|| (None, 0, why.clone()));
        }
    }
    drift.replaces = found.replaces;
    drift.actions.extend(found.branches);
    drift
        .actions
        .extend(guard(config, inventory, history, found.gone, &seen));
    drift.actions.extend(found.stale);
    for (workspace, (org, repositories)) in found.invisible {
        drift.actions.push(Action::WorkspaceGone {
            workspace,
            org,
            repositories,
        });
    }
    for (workspace, (org, repositories, why)) in found.unread {
        drift.actions.push(Action::WorkspaceUnread {
            workspace,
            org,
            repositories,
            why,
        });
    }
    drift.actions.extend(found.uncertain);
    drift.actions.extend(found.notices);
    drift.org_names = renames;
    drift
}

/// The retirement of a target of `uuid` at `placement`, for `why`. With `retire = "delete"`
/// the target is deactivated now and deleted only by a later run (see
/// [`Findings::quarantined`]): reversible first.
fn retirement(
    config: &Config,
    seen: &Seen<'_>,
    uuid: &RepoUuid,
    placement: &Placement,
    why: RetireReason,
) -> Action {
    let (mode, delete_after) = match config.drift.retire {
        RetireMode::Delete => {
            let after = config.drift.delete_after().as_secs();
            let now = seen.inventory.read_at.unwrap_or_default();
            (
                RetireMode::Deactivate,
                Some(date(now.saturating_add(after))),
            )
        }
        mode => (mode, None),
    };
    Action::Retire {
        uuid: Some(uuid.clone()),
        org: seen.org_label(&placement.org_id),
        placement: placement.clone(),
        why,
        mode,
        delete_after,
    }
}

/// A time (seconds since the Unix epoch) as RFC 3339.
fn date(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

impl Findings {
    /// A mirrored repository that Bitbucket shows (listed, or found by uuid): out of scope
    /// now, mirrored elsewhere now (a rename or a move, planned as an import that replaces
    /// the old target), or in place with perhaps a new default branch.
    fn present(
        &mut self,
        config: &Config,
        seen: &Seen<'_>,
        renames: &BTreeMap<OrgId, String>,
        uuid: &RepoUuid,
        record: &RepoRecord,
        repo: &Repo,
    ) {
        if let Some(reason) = seen.estate.skip_reason(repo) {
            let rule = reason.explain();
            self.notices.push(Action::OutOfScope {
                repository: repo.full_name(),
                rule: rule.clone(),
            });
            if config.drift.out_of_scope == OutOfScope::Retire {
                let why = RetireReason::OutOfScope { rule };
                let action = retirement(config, seen, uuid, &record.current, why);
                self.gone
                    .entry(record.current.org_id.clone())
                    .or_default()
                    .push(action);
            }
            return;
        }
        let here = destination_org(config, repo, seen, renames).as_ref()
            == Some(&record.current.org_id)
            && repo
                .full_name()
                .eq_ignore_ascii_case(&record.current.full_name);
        if !here {
            // The plan imports it where it goes now, replacing this placement.
            self.replaces.insert(uuid.clone(), record.current.clone());
        } else if let Some(change) = branch_change(uuid, record, repo, seen) {
            self.branches.push(change);
        }
    }

    /// A mirrored repository that no listing showed: gone on certain evidence, uncertain, in a
    /// workspace that could not be listed, or in one no longer visible.
    fn absent(&mut self, config: &Config, seen: &Seen<'_>, uuid: &RepoUuid, record: &RepoRecord) {
        let placement = &record.current;
        let org = || seen.org_name(&placement.org_id).map(str::to_owned);
        if matches!(
            seen.inventory.bitbucket.confirmations.get(uuid),
            Some(Lookup::Gone)
        ) {
            let action = retirement(config, seen, uuid, placement, RetireReason::Deleted);
            self.gone
                .entry(placement.org_id.clone())
                .or_default()
                .push(action);
        } else if let Some(why) = seen.uncertain(uuid) {
            self.uncertain.push(Action::Uncertain {
                uuid: Some(uuid.clone()),
                repository: placement.full_name.clone(),
                org: org(),
                why,
            });
        } else {
            let workspace = workspace_of(&placement.full_name);
            if let Some(why) = seen.unlisted(workspace) {
                let entry = self
                    .unread
                    .entry(workspace.to_owned())
                    .or_insert_with(|| (org(), 0, why.to_owned()));
                entry.1 += 1;
            } else if !seen.visible.contains(workspace) {
                let entry = self
                    .invisible
                    .entry(workspace.to_owned())
                    .or_insert_with(|| (org(), 0));
                entry.1 += 1;
            }
        }
    }

    /// A target in quarantine: deleted when its time is up and the evidence that retired it
    /// is certain again (its repository gone again, out of scope still, or mirrored
    /// elsewhere still), else named with why it waits. Only with `retire = "delete"`.
    fn quarantined(
        &mut self,
        config: &Config,
        seen: &Seen<'_>,
        history: &History,
        q: &Quarantined,
    ) {
        if config.drift.retire != RetireMode::Delete {
            return;
        }
        let due_at = q.due_at(config);
        let due = seen.inventory.read_at.is_some_and(|now| now >= due_at);
        let evidence = match q.reason {
            Retired::Deleted => match seen.now(&q.uuid) {
                Some(_) => Err("its repository is in Bitbucket again".to_owned()),
                None if matches!(
                    seen.inventory.bitbucket.confirmations.get(&q.uuid),
                    Some(Lookup::Gone)
                ) =>
                {
                    Ok(RetireReason::Deleted)
                }
                None => Err(seen
                    .uncertain(&q.uuid)
                    .unwrap_or_else(|| "its repository is not found gone again yet".to_owned())),
            },
            Retired::OutOfScope => match seen.now(&q.uuid).map(|r| seen.estate.skip_reason(r)) {
                Some(Some(reason)) => Ok(RetireReason::OutOfScope {
                    rule: reason.explain(),
                }),
                _ => Err("its repository is not seen out of scope again".to_owned()),
            },
            Retired::Replaced => match history.repos.get(&q.uuid) {
                Some(record) if !record.current.same_place(&q.placement) => {
                    Ok(replaced(&q.placement, record))
                }
                _ => Err("its repository is not mirrored elsewhere".to_owned()),
            },
        };
        let org = seen.org_label(&q.placement.org_id);
        match (due, evidence) {
            (true, Ok(why)) => self
                .gone
                .entry(q.placement.org_id.clone())
                .or_default()
                .push(Action::Retire {
                    uuid: Some(q.uuid.clone()),
                    org,
                    placement: q.placement.clone(),
                    why,
                    mode: RetireMode::Delete,
                    delete_after: None,
                }),
            (due, evidence) => self.notices.push(Action::Quarantined {
                org,
                repository: q.placement.full_name.clone(),
                delete_after: date(due_at),
                why: match evidence {
                    Err(why) if due => why,
                    _ => "waiting out drift.delete_after".to_owned(),
                },
            }),
        }
    }

    /// Entries of the listings that could not be read and are not of a mirrored repository
    /// (those are named by [`Findings::absent`]): never imported, and named.
    fn unclaimed(&mut self, seen: &Seen<'_>, history: &History) {
        for (workspace, entries) in &seen.inventory.bitbucket.unreadable {
            for entry in entries {
                if entry
                    .uuid
                    .as_ref()
                    .is_some_and(|u| history.repos.contains_key(u))
                {
                    continue;
                }
                let name = entry.name.as_deref().unwrap_or("an entry");
                self.uncertain.push(Action::Uncertain {
                    uuid: entry.uuid.clone(),
                    repository: if name.contains('/') {
                        name.to_owned()
                    } else {
                        format!("{workspace}/{name}")
                    },
                    org: None,
                    why: format!("in the listing of {workspace}: {}", entry.why),
                });
            }
        }
    }
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
