//! Reading both sides: the Bitbucket workspaces and repositories the configuration selects, and
//! the Snyk orgs they map to with their integrations and already-imported targets.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Mapping, glob_match};
use crate::ids::{IntegrationId, OrgId, RepoUuid, TargetId};
use bitbucket_cloud_client::ErrorKind;

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

use crate::error::Error;
use crate::ports::Repo;
use crate::ports::{
    AuditEntry, BitbucketPort, Listing, RepoQuery, SnykPort, SnykProject, SnykTarget, Unreadable,
};
use crate::rules::{History, Quarantined, Retired, destination, pending_by_history, repo_filter};

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
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    let sn = gather_snyk_for(config, &bb, snyk, history, true).await?;
    Ok((
        Inventory {
            bitbucket: bb,
            snyk: sn,
            read_at: Some(unix_now()),
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

/// The workspaces in scope: `source.workspaces` when given, or every workspace the credentials
/// see, less those the include and exclude patterns leave out; sorted.
///
/// # Errors
/// When the workspaces cannot be listed.
pub async fn workspaces_in_scope(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
) -> Result<Vec<String>, Error> {
    let mut slugs: Vec<String> = match &config.source.workspaces {
        Some(list) => list.iter().map(|s| s.trim().to_owned()).collect(),
        None => bitbucket.workspaces().await?,
    };
    slugs.retain(|s| workspace_selected(config, s).is_ok());
    slugs.sort();
    slugs.dedup();
    Ok(slugs)
}

/// Reads the Bitbucket side. A workspace whose listing fails is named among
/// [`BitbucketInventory::unlisted`] and the others go on, unless the failure ends the run
/// (credentials refused outright, or a workspace named in `source.workspaces` that does not
/// exist).
///
/// # Errors
/// A listing failure that ends the run, or the workspaces cannot be listed.
pub async fn gather_bitbucket(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
) -> Result<BitbucketInventory, Error> {
    let configured = config.source.workspaces.is_some();
    let mut slugs = match &config.source.workspaces {
        Some(list) => list.iter().map(|s| s.trim().to_owned()).collect(),
        None => bitbucket.workspaces().await?,
    };
    slugs.sort();
    slugs.dedup();
    let mut inventory = BitbucketInventory::default();
    let mut selected = Vec::new();
    for slug in slugs {
        match workspace_selected(config, &slug) {
            Ok(()) => selected.push(slug),
            Err(why) => inventory.excluded_workspaces.push((slug, why)),
        }
    }
    let query = RepoQuery {
        project_keys: config.source.project_keys.clone(),
        // Validated with the configuration; a duration is counted back from now.
        updated_since: config.source.updated_since_time().unwrap_or_default(),
    };
    let query = &query;
    let listed: Vec<(String, Result<Listing, Error>)> = stream::iter(selected)
        .map(|slug| async move {
            let listing = bitbucket.repositories(&slug, query).await;
            (slug, listing)
        })
        .buffer_unordered(LISTING_CONCURRENCY)
        .collect()
        .await;
    for (slug, listing) in listed {
        match listing {
            Ok(listing) => inventory.add_listing(slug, listing, config),
            Err(e) if e.ends_the_run() || (configured && e.kind() == ErrorKind::NotFound) => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(workspace = %slug, error = %e, "the workspace could not be listed; nothing of it changes this run");
                inventory.unlisted.push((slug, e.to_string()));
            }
        }
    }
    inventory.workspaces.sort_by(|a, b| a.slug.cmp(&b.slug));
    inventory.unlisted.sort();
    Ok(inventory)
}

impl BitbucketInventory {
    /// Adds a workspace's listing: its repositories, sorted and each once, and the entries
    /// that could not be read.
    fn add_listing(&mut self, slug: String, listing: Listing, config: &Config) {
        let Listing {
            mut repositories,
            unreadable,
            ..
        } = listing;
        let trim = trimmer(config);
        for repo in &mut repositories {
            trim(repo);
        }
        repositories.sort_by(|a, b| a.slug.cmp(&b.slug));
        repositories.dedup_by(|a, b| a.slug == b.slug);
        // A listing collected in place keeps the larger buffer of the raw models (five times
        // the room at 100,000 repositories): keep only what is used.
        repositories.shrink_to_fit();
        if !unreadable.is_empty() {
            self.unreadable.insert(slug.clone(), unreadable);
        }
        self.workspaces
            .push(WorkspaceInventory { slug, repositories });
    }
}

/// Looks up by uuid every mirrored repository that no listing showed, when its last workspace
/// was listed (a listing narrowed on the server proves nothing by omission); a repository
/// whose workspace is not visible any more is not looked up (the plan names the workspace
/// instead), nor one whose entry in a listing could not be read (it is there, and uncertain).
///
/// # Errors
/// A lookup whose failure ends the run ([`Error::ends_the_run`]); any other failure leaves
/// its repository [`Lookup::Uncertain`].
async fn confirm_missing(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    inventory: &mut BitbucketInventory,
    history: &History,
    now: u64,
) -> Result<(), Error> {
    if !config.source.project_keys.is_empty() || config.source.updated_since.is_some() {
        return Ok(());
    }
    let listed: BTreeSet<&RepoUuid> = inventory
        .workspaces
        .iter()
        .flat_map(|w| &w.repositories)
        .filter_map(|r| r.uuid.as_ref())
        .collect();
    let workspaces: BTreeSet<String> = inventory
        .workspaces
        .iter()
        .map(|w| w.slug.clone())
        .collect();
    // Targets in quarantine whose time is up must be found gone again before their deletion.
    let due = due_for_deletion(config, history, now);
    let missing: Vec<(RepoUuid, String, bool)> = history
        .repos
        .iter()
        .map(|(uuid, record)| (uuid, &record.current))
        .chain(due.map(|q| (&q.uuid, &q.placement)))
        .filter(|(uuid, _)| !listed.contains(uuid) && inventory.unreadable_entry(uuid).is_none())
        .filter_map(|(uuid, placement)| {
            let (workspace, _) = placement.full_name.split_once('/')?;
            workspaces.contains(workspace).then(|| {
                let complete = inventory.lists_in_full(workspace);
                (uuid.clone(), workspace.to_owned(), complete)
            })
        })
        .collect();
    let workspaces = &workspaces;
    let found: Vec<(RepoUuid, Lookup)> = stream::iter(missing)
        .map(|(uuid, workspace, complete)| async move {
            let lookup = look_up(bitbucket, &workspace, &uuid, workspaces, complete).await?;
            Ok::<_, Error>((uuid, lookup))
        })
        .buffer_unordered(LISTING_CONCURRENCY)
        .try_collect()
        .await?;
    inventory.confirmations.extend(found);
    Ok(())
}

/// The targets in quarantine whose repository was deleted and whose `drift.delete_after` is
/// up at `now` (none unless `retire = "delete"`).
pub(crate) fn due_for_deletion<'a>(
    config: &'a Config,
    history: &'a History,
    now: u64,
) -> impl Iterator<Item = &'a Quarantined> + 'a {
    let deleting = config.drift.retire == crate::config::RetireMode::Delete;
    history
        .quarantined
        .iter()
        .filter(move |q| deleting && q.reason == Retired::Deleted && now >= q.due_at(config))
}

/// Looks a repository missing from `workspace`'s listing up by its uuid, and judges the
/// answer (see [`Lookup`]): 404 is [`Lookup::Gone`] only when the listing was `complete`; an
/// answer naming another workspace is a transfer only when that workspace, asked by uuid,
/// shows it too, and never when that workspace's listing (in `listed`) lacks it.
async fn look_up(
    bitbucket: &dyn BitbucketPort,
    workspace: &str,
    uuid: &RepoUuid,
    listed: &BTreeSet<String>,
    complete: bool,
) -> Result<Lookup, Error> {
    let uncertain = |why: String| Ok(Lookup::Uncertain { why });
    let repo = match bitbucket.repository_by_uuid(workspace, uuid).await {
        Ok(Some(repo)) => repo,
        Ok(None) if complete => return Ok(Lookup::Gone),
        Ok(None) => {
            return uncertain(format!(
                "Bitbucket answered 404 by uuid, but entries of {workspace}'s listing could not be read, and one of them may be this repository"
            ));
        }
        Err(e) if e.ends_the_run() => return Err(e),
        Err(e) => return uncertain(format!("looking it up by uuid failed: {e}")),
    };
    let now = repo.workspace.clone();
    if now.eq_ignore_ascii_case(workspace) {
        return Ok(Lookup::Found { repository: repo });
    }
    if listed.contains(&now) {
        return uncertain(format!(
            "Bitbucket's answer by uuid puts it in workspace {now}, whose listing does not show it"
        ));
    }
    match bitbucket.repository_by_uuid(&now, uuid).await {
        Ok(Some(there)) if there.workspace.eq_ignore_ascii_case(&now) => {
            Ok(Lookup::Found { repository: there })
        }
        Ok(_) => uncertain(format!(
            "Bitbucket's answer by uuid puts it in workspace {now}, where a lookup by uuid does not find it"
        )),
        Err(e) if e.ends_the_run() => Err(e),
        Err(e) => uncertain(format!(
            "Bitbucket's answer by uuid puts it in workspace {now}, and looking it up there failed: {e}"
        )),
    }
}

/// The audit-log events that say a person removed or deactivated something.
const PEOPLE_EVENTS: &[&str] = &[
    "org.target.delete",
    "org.project.delete",
    "org.project.remove",
    "org.project.stop_monitor",
];

/// How far back the audit log is searched for who removed or deactivated something.
const AUDIT_HORIZON_SECONDS: u64 = 90 * 24 * 3600;

/// The group's orgs the plan may use: the single configured org, the orgs of the wanted names
/// (a targeted reconcile of a few asks for them by name), or the whole group.
async fn list_orgs(
    config: &Config,
    snyk: &dyn SnykPort,
    wanted: &BTreeSet<String>,
    targeted: bool,
) -> Result<Vec<OrgInventory>, Error> {
    let listed = match &config.mapping {
        Mapping::SingleOrg { org_id } => {
            return Ok(vec![OrgInventory::new(
                org_id.as_str().into(),
                org_id.clone(),
            )]);
        }
        _ if targeted && wanted.len() <= NAMED_TARGET_LOOKUPS => {
            let mut found = Vec::new();
            for name in wanted {
                found.extend(snyk.orgs_named(&config.snyk.group_id, name).await?);
            }
            found
        }
        _ => snyk.orgs(&config.snyk.group_id).await?,
    };
    Ok(listed
        .into_iter()
        .map(|o| OrgInventory::new(o.id, o.name))
        .collect())
}

/// The repositories each destination would import, before looking at Snyk.
fn candidates<'a>(
    config: &Config,
    bitbucket: &'a BitbucketInventory,
) -> BTreeMap<String, Vec<&'a Repo>> {
    let mut candidates: BTreeMap<String, Vec<&Repo>> = BTreeMap::new();
    for ws in &bitbucket.workspaces {
        for repo in &ws.repositories {
            if repo_filter(config, repo).is_some() {
                continue;
            }
            if let Some(dest) = destination(config, &ws.slug, repo) {
                candidates.entry(dest).or_default().push(repo);
            }
        }
    }
    candidates
}

/// What one org read holds: integrations, Bitbucket targets, and (on a full read) projects.
struct OrgRead {
    integrations: BTreeMap<String, IntegrationId>,
    targets: Vec<SnykTarget>,
    projects: Option<Vec<SnykProject>>,
}

/// Reads one org: its integrations and Bitbucket targets (those of `names` only, when given),
/// and on a `full` read every project.
async fn read_org(
    snyk: &dyn SnykPort,
    id: OrgId,
    names: Option<Vec<String>>,
    full: bool,
) -> Result<OrgRead, Error> {
    let integrations = snyk.integrations(&id).await?;
    let targets = match names {
        Some(names) => bitbucket_targets_named(snyk, &id, &names).await?,
        None => all_bitbucket_targets(snyk, &id).await?,
    };
    let projects = if full {
        match snyk.org_projects(&id).await {
            Ok(projects) => Some(projects),
            Err(Error::Unsupported { .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(OrgRead {
        integrations,
        targets,
        projects,
    })
}

/// Whether `org` shows a target this mirror imported that is gone, or one whose projects
/// are all inactive although this mirror did not retire it: a change someone else made.
fn shows_people_changes(org: &OrgInventory, history: &History) -> bool {
    let Some(imported) = &org.imported else {
        return false;
    };
    // The org's completed imports alone (the journal's keys begin with the org).
    history
        .completed
        .range((org.id.clone(), String::new())..)
        .take_while(|((id, _), _)| *id == org.id)
        .filter(|(_, projects)| **projects > 0)
        .any(|((_, name), _)| match org.target_ids.get(name) {
            None => !imported.contains(name),
            Some(target) => {
                let mut projects = org.projects_of(target).peekable();
                projects.peek().is_some() && projects.all(|p| !p.active)
            }
        })
}

/// Reads the audit log of an org that shows people's changes, to name who made them and
/// when; a plan without audit logs (or any failure) is noted and the run goes on.
async fn read_changes(snyk: &dyn SnykPort, org: &mut OrgInventory, now: u64) {
    let from = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(now.saturating_sub(AUDIT_HORIZON_SECONDS));
    let from = humantime::format_rfc3339_seconds(from).to_string();
    match snyk.audit_log(&org.id, PEOPLE_EVENTS, &from).await {
        Ok(entries) => org.changes = entries,
        Err(e) => {
            tracing::info!(org = %org.name, error = %e, "the audit log could not be read; who changed what is not named");
            org.audit_unread = Some(e.to_string());
        }
    }
}

/// Reads the Snyk side: the group's orgs, and for every org the plan may use its
/// integrations and Bitbucket targets; a full read (`targeted` false) also reads every
/// project of those orgs, and the audit log of an org that shows changes this mirror did not
/// make. A targeted reconcile reads only the orgs with work left and the targets it touches.
///
/// # Errors
/// The first request that fails.
async fn gather_snyk_for(
    config: &Config,
    bitbucket: &BitbucketInventory,
    snyk: &dyn SnykPort,
    history: &History,
    targeted: bool,
) -> Result<SnykInventory, Error> {
    let wanted = wanted_org_names(config, bitbucket);
    let mut orgs = list_orgs(config, snyk, &wanted, targeted).await?;
    let single = matches!(config.mapping, Mapping::SingleOrg { .. });
    let candidates = candidates(config, bitbucket);
    let dest_of = |o: &OrgInventory| {
        if single {
            o.id.to_string()
        } else {
            o.name.clone()
        }
    };
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for o in &orgs {
        *by_name.entry(o.name.clone()).or_default() += 1;
    }
    // A full read reads every org in scope; a targeted one only a lone org of its name with
    // work left, and its touched targets by name.
    let to_read: Vec<(usize, Option<Vec<String>>)> = orgs
        .iter()
        .enumerate()
        .filter(|(_, o)| single || wanted.contains(&o.name))
        .filter_map(|(i, o)| {
            let repos = candidates.get(&dest_of(o));
            if !targeted {
                return Some((i, None));
            }
            let has_work = repos
                .is_some_and(|repos| repos.iter().any(|r| pending_by_history(r, &o.id, history)));
            let lone = single || by_name.get(&o.name) == Some(&1);
            let names = repos
                .map(|repos| repos.iter().map(|r| r.full_name()).collect::<Vec<_>>())
                .filter(|names| names.len() <= NAMED_TARGET_LOOKUPS);
            (has_work && lone).then_some((i, names))
        })
        .collect();
    let full = !targeted;
    let ids: Vec<OrgId> = orgs.iter().map(|o| o.id.clone()).collect();
    let ids = &ids;
    let answers: Vec<(usize, Result<OrgRead, Error>)> = stream::iter(to_read)
        .map(|(i, names)| async move { (i, read_org(snyk, ids[i].clone(), names, full).await) })
        .buffer_unordered(ORG_CONCURRENCY)
        .collect()
        .await;
    let mut read_in_full = full;
    let mut details = Vec::new();
    for (i, answer) in answers {
        match answer {
            Ok(d) => details.push((i, d)),
            // Credentials refused end the run; any other failure holds back this org alone.
            Err(e) if e.ends_the_run() => return Err(e),
            Err(e) => {
                tracing::warn!(org = %orgs[i].name, error = %e, "the org could not be read; nothing is imported into it this run");
                read_in_full = false;
                orgs[i].unread = Some(e.to_string());
            }
        }
    }
    let read: BTreeSet<usize> = details.iter().map(|(i, _)| *i).collect();
    for (i, d) in details {
        read_in_full &= d.projects.is_some();
        orgs[i].integrations = Some(d.integrations);
        orgs[i].keep_targets(d.targets);
        orgs[i].projects = d.projects.map(|mut projects| {
            projects.sort_by(|a, b| a.target_id.cmp(&b.target_id));
            projects
        });
    }
    if full {
        let now = unix_now();
        for i in read {
            if shows_people_changes(&orgs[i], history) {
                read_changes(snyk, &mut orgs[i], now).await;
            }
        }
    }
    orgs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let template_integrations = match &config.snyk.template_org_id {
        Some(t) => Some(snyk.integrations(&OrgId::from(t.as_str())).await?),
        None => None,
    };
    Ok(SnykInventory {
        orgs,
        template_integrations,
        can_add_integrations: snyk.can_add_integrations(),
        read_in_full,
    })
}

/// Reads both sides, everything the plan could need whatever the history.
///
/// # Errors
/// The first request that fails.
pub async fn gather(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    snyk: &dyn SnykPort,
) -> Result<Inventory, Error> {
    gather_for(config, bitbucket, snyk, &History::default()).await
}

/// Reads both sides for a plan with this `history` (the journal's): Snyk orgs whose every
/// repository the journal shows imported are not read. The plan made
/// from it is the one [`gather`] would give.
///
/// # Errors
/// The first request that fails.
pub async fn gather_for(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    snyk: &dyn SnykPort,
    history: &History,
) -> Result<Inventory, Error> {
    // One "now" for the read: what is looked up as due for deletion is what the plan
    // judges due.
    let now = unix_now();
    let mut bb = gather_bitbucket(config, bitbucket).await?;
    confirm_missing(config, bitbucket, &mut bb, history, now).await?;
    let sn = gather_snyk_for(config, &bb, snyk, history, false).await?;
    Ok(Inventory {
        bitbucket: bb,
        snyk: sn,
        read_at: Some(now),
    })
}
