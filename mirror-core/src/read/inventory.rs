//! Reading both sides: the Bitbucket workspaces and repositories the configuration selects, and
//! the Snyk orgs they map to with their integrations and already-imported targets.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::clock::unix_now;
use crate::config::{Config, Mapping};
use crate::decide::patterns::glob_match;
use crate::ids::{IntegrationId, OrgId, RepoUuid, TargetId};
use bitbucket_cloud_client::ErrorKind;

pub(crate) mod gather;
pub(crate) use gather::{gather_for, gather_snyk_for};

/// An org's targets that are Bitbucket repositories, by lowercased name. Both Bitbucket
/// integration types are listed (a repository imported through either is the same
/// repository), and a target of another type (GitHub, GitLab, …) is never taken as ours,
/// whatever the listing answered.
pub(crate) async fn bitbucket_targets(
    snyk: &dyn SnykPort,
    org_id: &OrgId,
) -> Result<BTreeMap<String, TargetId>, Error> {
    Ok(all_bitbucket_targets(snyk, org_id)
        .await?
        .into_iter()
        .map(|t| (t.display_name.to_lowercase(), t.id))
        .collect())
}

/// An org's targets that are Bitbucket repositories, every one (two of one name included),
/// as [`bitbucket_targets`] judges them.
async fn all_bitbucket_targets(
    snyk: &dyn SnykPort,
    org_id: &OrgId,
) -> Result<Vec<SnykTarget>, Error> {
    let types = snyk_client::endpoints::BITBUCKET_SOURCE_TYPES;
    Ok(snyk
        .imported(org_id, types)
        .await?
        .into_iter()
        .filter(|t| {
            t.integration_type
                .as_deref()
                .is_none_or(|k| types.split(',').any(|b| b == k))
        })
        .collect())
}
/// The targets of an org that bear these names (compared as Snyk does, without regard to
/// case): a listing filtered on each name, for a targeted reconcile of a few repositories in
/// an org of thousands.
pub(crate) async fn bitbucket_targets_named(
    snyk: &dyn SnykPort,
    org_id: &OrgId,
    names: &[String],
) -> Result<Vec<SnykTarget>, Error> {
    let types = snyk_client::endpoints::BITBUCKET_SOURCE_TYPES;
    let mut found = Vec::new();
    for name in names {
        let wanted = name.to_lowercase();
        for t in snyk.imported_named(org_id, types, name).await? {
            let ours = t
                .integration_type
                .as_deref()
                .is_none_or(|k| types.split(',').any(|b| b == k));
            if ours && t.display_name.to_lowercase() == wanted {
                found.push(t);
            }
        }
    }
    Ok(found)
}

/// A targeted reconcile reads an org's targets by name when it touches at most this many of
/// its repositories (a request each), and lists the whole org otherwise.
const NAMED_TARGET_LOOKUPS: usize = 8;

use crate::decide::rules::{History, Quarantined, Retired, pending_by_history};
use crate::decide::scope::Estate;
use crate::error::Error;
use crate::read::ports::Repo;
use crate::read::ports::{
    AuditEntry, BitbucketPort, Listing, RepoQuery, SnykPort, SnykProject, SnykTarget, Unreadable,
};

/// Workspace listings in flight at once.
const LISTING_CONCURRENCY: usize = 4;
/// Org detail reads in flight at once.
const ORG_CONCURRENCY: usize = 8;

/// One workspace and its repositories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInventory {
    /// The slug.
    pub slug: String,
    /// Its repositories, sorted by slug.
    pub repositories: Vec<Repo>,
}

/// The Bitbucket side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitbucketInventory {
    /// The selected workspaces, sorted by slug.
    pub workspaces: Vec<WorkspaceInventory>,
    /// Workspaces left out by the include/exclude patterns, with the pattern.
    #[serde(default)]
    pub excluded_workspaces: Vec<(String, String)>,
    /// Mirrored repositories (by uuid) that no listing showed, looked up by uuid in their last
    /// workspace: what the lookup found (see [`Lookup`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confirmations: BTreeMap<RepoUuid, Lookup>,
    /// Entries of each workspace's listing that could not be read (by workspace slug).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unreadable: BTreeMap<String, Vec<Unreadable>>,
    /// Workspaces in scope whose listing failed, with the answer: nothing of them is known
    /// this run, so nothing of them is imported, moved or retired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlisted: Vec<(String, String)>,
}

impl BitbucketInventory {
    /// Every repository it holds: the listed ones, then those found by uuid.
    pub fn repositories(&self) -> impl Iterator<Item = &Repo> {
        self.workspaces.iter().flat_map(|w| &w.repositories).chain(
            self.confirmations.values().filter_map(|l| match l {
                Lookup::Found { repository } => Some(repository),
                _ => None,
            }),
        )
    }

    /// Whether the listing of `workspace` is complete evidence of absence: it was read, and
    /// every entry it holds could be read or at least shows its uuid.
    pub fn lists_in_full(&self, workspace: &str) -> bool {
        self.workspaces.iter().any(|w| w.slug == workspace)
            && self
                .unreadable
                .get(workspace)
                .is_none_or(|entries| entries.iter().all(|e| e.uuid.is_some()))
    }

    /// The entry of a listing that could not be read and shows this uuid, with its workspace.
    pub fn unreadable_entry(&self, uuid: &RepoUuid) -> Option<(&str, &Unreadable)> {
        self.unreadable.iter().find_map(|(ws, entries)| {
            entries
                .iter()
                .find(|e| e.uuid.as_ref() == Some(uuid))
                .map(|e| (ws.as_str(), e))
        })
    }
}

/// What looking a repository up by its uuid found. Only [`Lookup::Gone`] is evidence that a
/// repository was deleted, and only with a complete listing of its workspace that lacks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "found", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Lookup {
    /// The repository as it is now, seen by uuid in the workspace it names.
    Found {
        /// The repository.
        repository: Repo,
    },
    /// Bitbucket answered 404 by uuid.
    Gone,
    /// The answer proves nothing either way (a refusal, a server error, a time-out, an answer
    /// that could not be read, a workspace that could not confirm it): nothing of the
    /// repository is retired or moved, and the next run looks again.
    Uncertain {
        /// The answer that made it uncertain.
        why: String,
    },
}

/// One Snyk org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInventory {
    /// The id.
    pub id: OrgId,
    /// The name.
    pub name: String,
    /// Type → integration id; read only for orgs the plan may use.
    pub integrations: Option<BTreeMap<String, IntegrationId>>,
    /// Lowercased `workspace/repository` of targets imported through either Bitbucket
    /// integration (`bitbucket-cloud`, `bitbucket-connect-app`: the same repository either
    /// way); read only for orgs the plan may use.
    pub imported: Option<BTreeSet<String>>,
    /// The ids of those targets, by lowercased name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_ids: BTreeMap<String, TargetId>,
    /// Further targets of a name that has more than one (by lowercased name): duplicates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub more_targets: BTreeMap<String, Vec<TargetId>>,
    /// Every project of the org, active and inactive, sorted by target; read with its
    /// targets on a full read (`None` when not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<SnykProject>>,
    /// What the org's audit log says of targets removed and projects deactivated, read when
    /// the org shows such a change this mirror did not make.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AuditEntry>,
    /// Why the audit log could not be read, when it was asked and could not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_unread: Option<String>,
    /// Why the org itself could not be read this run (its integrations, targets or
    /// projects): nothing is imported into it, and the other orgs go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

impl OrgInventory {
    /// An org known by id and name, nothing of it read yet.
    pub fn new(id: OrgId, name: String) -> Self {
        Self {
            id,
            name,
            integrations: None,
            imported: None,
            target_ids: BTreeMap::new(),
            more_targets: BTreeMap::new(),
            projects: None,
            changes: Vec::new(),
            audit_unread: None,
            unread: None,
        }
    }

    /// Whether the org's targets and projects were read in full this run.
    pub fn read_in_full(&self) -> bool {
        self.imported.is_some() && self.projects.is_some()
    }

    /// The projects of a target.
    /// The projects of a target (found by halving, as they are sorted by target: an org of
    /// 1,000 targets and projects is not scanned 1,000 times).
    pub fn projects_of<'a>(
        &'a self,
        target: &'a TargetId,
    ) -> impl Iterator<Item = &'a SnykProject> {
        let projects = self.projects.as_deref().unwrap_or_default();
        let start = projects.partition_point(|p| p.target_id.as_ref() < Some(target));
        projects[start..]
            .iter()
            .take_while(move |p| p.target_id.as_ref() == Some(target))
    }

    /// Keeps the targets listed: ids by name, and the further ones of a name as duplicates.
    fn keep_targets(&mut self, targets: Vec<SnykTarget>) {
        for t in targets {
            let name = t.display_name.to_lowercase();
            match self.target_ids.entry(name) {
                std::collections::btree_map::Entry::Occupied(first) => {
                    let name = first.key().clone();
                    self.more_targets.entry(name).or_default().push(t.id);
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(t.id);
                }
            }
        }
        self.imported = Some(self.target_ids.keys().cloned().collect());
    }
}

/// The Snyk side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnykInventory {
    /// The group's orgs (or the single configured org).
    pub orgs: Vec<OrgInventory>,
    /// The template org's integrations, when a template is configured.
    #[serde(default)]
    pub template_integrations: Option<BTreeMap<String, IntegrationId>>,
    /// Whether the Snyk port can add a missing `bitbucket-cloud` integration
    /// ([`SnykPort::can_add_integrations`]).
    #[serde(default)]
    pub can_add_integrations: bool,
    /// Whether every org in scope was read in full this run (targets and projects): only
    /// then may a run say that Snyk equals Bitbucket.
    #[serde(default)]
    pub read_in_full: bool,
}

/// Both sides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Bitbucket.
    pub bitbucket: BitbucketInventory,
    /// Snyk.
    pub snyk: SnykInventory,
    /// When it was read (seconds since the Unix epoch): the plan's "now", against which
    /// quarantined targets are judged due for deletion. `None` judges none due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<u64>,
    /// Each repository's scope and destination, decided once when Bitbucket was read (see
    /// [`Estate`]); not written to files.
    #[serde(skip)]
    pub estate: Estate,
}

fn workspace_selected(config: &Config, slug: &str) -> Result<(), String> {
    let s = &config.source;
    if !s.include_workspaces.is_empty() && !s.include_workspaces.iter().any(|p| glob_match(p, slug))
    {
        return Err(format!(
            "not matched by {}",
            s.include_workspaces.join(", ")
        ));
    }
    if let Some(p) = s.exclude_workspaces.iter().find(|p| glob_match(p, slug)) {
        return Err(format!("excluded by {p}"));
    }
    Ok(())
}

/// Drops what the configuration does not use of a repository: `updated_on` serves only
/// `source.updated_since`, `language` only a `[[metadata]]` rule matching on it (at 100,000
/// repositories they are megabytes the plan would hold for nothing).
fn trim(config: &Config, repo: &mut Repo) {
    trimmer(config)(repo);
}

/// [`trim`] for many repositories: what the configuration uses is judged once.
fn trimmer(config: &Config) -> impl Fn(&mut Repo) + use<> {
    let updated_on = config.source.updated_since.is_some();
    let language = config.metadata.iter().any(|r| {
        r.matching.language.is_some() || r.tags.values().any(|t| t.contains("{language}"))
    });
    move |repo| {
        if !updated_on {
            repo.updated_on = None;
        }
        if !language {
            repo.language = None;
        }
    }
}
/// Whether the workspace `slug` is in scope: listed in `source.workspaces` (when given) and
/// selected by the include and exclude patterns; `Err` says why not.
pub(crate) fn workspace_in_scope(config: &Config, slug: &str) -> Result<(), String> {
    if let Some(list) = &config.source.workspaces
        && !list.iter().any(|w| w.trim() == slug)
    {
        return Err("not among source.workspaces".to_owned());
    }
    workspace_selected(config, slug)
}

/// A repository a targeted reconcile looks at: the workspace it is in now (as an event says),
/// its uuid, and whether Bitbucket said it was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Touched {
    pub(crate) workspace: String,
    pub(crate) uuid: RepoUuid,
    pub(crate) deleted: bool,
}

/// Reads both sides for a targeted reconcile of `touched`: each repository by its uuid (the
/// one source of truth; an event's payload is trusted for nothing else), then the Snyk side as
/// far as those need. Returns the inventory and the repositories to plan for: a repository
/// that answers 404 without a `repo:deleted` event is left to the scheduled reconcile, as a
/// 404 may only mean it is no longer visible.
///
/// # Errors
/// The first request that fails.
pub(crate) async fn gather_touched(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    snyk: &dyn SnykPort,
    history: &History,
    touched: &[Touched],
) -> Result<(Inventory, BTreeSet<RepoUuid>), Error> {
    // Per workspace, the touched repositories in as few requests as the port can; those not
    // found are then looked up one by one (gone, or moved elsewhere). By index, so that the
    // future stays provably `Send` (event rounds are spawned).
    let mut by_workspace: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in touched.iter().enumerate() {
        by_workspace
            .entry(t.workspace.as_str())
            .or_default()
            .push(i);
    }
    let groups: Vec<(&str, Vec<usize>)> = by_workspace.into_iter().collect();
    let groups = &groups;
    let listed: Vec<Vec<(usize, Option<Lookup>)>> = stream::iter(0..groups.len())
        .map(|g| async move {
            let (workspace, members) = &groups[g];
            read_touched(bitbucket, workspace, members, touched).await
        })
        .buffer_unordered(LISTING_CONCURRENCY)
        .try_collect()
        .await?;
    let found = listed
        .into_iter()
        .flatten()
        .map(|(i, repo)| (&touched[i], repo));
    let mut bb = BitbucketInventory::default();
    let mut focus = BTreeSet::new();
    let mut listed: BTreeMap<String, Vec<Repo>> = BTreeMap::new();
    for (t, lookup) in found {
        // A 404 without a `repo:deleted` is left to the scheduled reconcile.
        let Some(lookup) = lookup else { continue };
        focus.insert(t.uuid.clone());
        let Lookup::Found {
            repository: mut repo,
        } = lookup
        else {
            bb.confirmations.insert(t.uuid.clone(), lookup);
            continue;
        };
        trim(config, &mut repo);
        match workspace_in_scope(config, &repo.workspace) {
            Ok(()) => listed.entry(repo.workspace.clone()).or_default().push(repo),
            Err(why) => {
                bb.excluded_workspaces.push((repo.workspace.clone(), why));
                bb.confirmations
                    .insert(t.uuid.clone(), Lookup::Found { repository: repo });
            }
        }
    }
    bb.workspaces = listed
        .into_iter()
        .map(|(slug, mut repositories)| {
            repositories.sort_by(|a, b| a.slug.cmp(&b.slug));
            repositories.dedup_by(|a, b| a.slug == b.slug);
            WorkspaceInventory { slug, repositories }
        })
        .collect();
    bb.excluded_workspaces.sort();
    bb.excluded_workspaces.dedup();
    let estate = Estate::decide(config, bb.repositories());
    let sn = gather_snyk_for(config, &bb, &estate, snyk, history, true).await?;
    Ok((
        Inventory {
            bitbucket: bb,
            snyk: sn,
            read_at: Some(unix_now()),
            estate,
        },
        focus,
    ))
}

/// The touched repositories `members` (indexes into `touched`) of one workspace, read by uuid
/// in as few requests as the port can, each judged on its own answer: found, gone (only with a
/// `repo:deleted`), uncertain, or `None` (a 404 without a deletion: left to the scheduled
/// reconcile).
async fn read_touched(
    bitbucket: &dyn BitbucketPort,
    workspace: &str,
    members: &[usize],
    touched: &[Touched],
) -> Result<Vec<(usize, Option<Lookup>)>, Error> {
    let uuids: Vec<RepoUuid> = members.iter().map(|&i| touched[i].uuid.clone()).collect();
    let mut repos: BTreeMap<RepoUuid, Repo> = BTreeMap::new();
    if uuids.len() > 1 {
        match bitbucket.repositories_by_uuid(workspace, &uuids).await {
            Ok(found) => repos.extend(found.into_iter().filter_map(|r| Some((r.uuid.clone()?, r)))),
            Err(e) if e.ends_the_run() => return Err(e),
            // Each is then looked up on its own, and judged on its own answer.
            Err(e) => tracing::warn!(workspace, error = %e, "the filtered listing failed"),
        }
    }
    let mut out = Vec::new();
    for &i in members {
        let uuid = &touched[i].uuid;
        let found = match repos.remove(uuid) {
            Some(r) => Ok(Some(r)),
            None => bitbucket.repository_by_uuid(workspace, uuid).await,
        };
        let lookup = match found {
            Ok(Some(repository)) => Some(Lookup::Found { repository }),
            Ok(None) => touched[i].deleted.then_some(Lookup::Gone),
            Err(e) if e.ends_the_run() => return Err(e),
            Err(e) => Some(Lookup::Uncertain {
                why: format!("looking it up by uuid failed: {e}"),
            }),
        };
        out.push((i, lookup));
    }
    Ok(out)
}

/// The org names the plan may use for this Bitbucket side.
fn wanted_org_names(config: &Config, bitbucket: &BitbucketInventory) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for ws in &bitbucket.workspaces {
        match &config.mapping {
            Mapping::OrgPerProject { .. } => {
                for r in &ws.repositories {
                    if let Some(n) = config.mapping.org_name(&ws.slug, r.project_key.as_deref()) {
                        names.insert(n);
                    }
                }
            }
            _ => {
                if let Some(n) = config.mapping.org_name(&ws.slug, None) {
                    names.insert(n);
                }
            }
        }
    }
    names
}
