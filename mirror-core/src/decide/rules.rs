//! The rules both the inventory and the plan apply: what the journal says is done, and why a
//! repository is skipped (which repositories are in scope and where each goes is decided once,
//! in [`crate::scope`]). Kept apart so that
//! neither module needs the other's internals (the plan reads the inventory; the inventory
//! reads only these rules).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::read::ports::Repo;

/// The longest org name Snyk accepts.
pub const MAX_ORG_NAME: usize = 60;
use crate::config::Config;
use crate::ids::{OrgId, RepoUuid, TargetId, WorkspaceUuid};

/// Why a repository (or workspace) is left alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum SkipReason {
    /// A pattern or filter of the configuration left it out.
    Excluded {
        /// Which rule.
        rule: String,
    },
    /// A fork, and forks are skipped.
    Fork,
    /// An empty repository: it has no main branch to import.
    EmptyRepository,
    /// Snyk already has a target for it in the org.
    AlreadyImported {
        /// The org.
        org_id: OrgId,
        /// The org's name, when the plan knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<std::sync::Arc<str>>,
    },
    /// An earlier run imported it and Snyk found no projects; it is not imported again.
    ImportedBeforeWithZeroProjects {
        /// The org.
        org_id: OrgId,
        /// The org's name, when the plan knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<std::sync::Arc<str>>,
    },
    /// A workspace with nothing to import gets no org.
    EmptyWorkspace,
}

impl SkipReason {
    /// A short label for summaries.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Excluded { .. } => "excluded",
            Self::Fork => "fork",
            Self::EmptyRepository => "empty repository",
            Self::AlreadyImported { .. } => "already imported",
            Self::ImportedBeforeWithZeroProjects { .. } => "imported before, no projects",
            Self::EmptyWorkspace => "empty workspace",
        }
    }

    /// The reason in a sentence, naming the setting or the place that decided it.
    pub fn explain(&self) -> String {
        match self {
            Self::Excluded { rule } => format!("excluded ({rule})"),
            Self::Fork => "fork (source.skip_forks)".to_owned(),
            Self::EmptyRepository => "empty repository (no main branch)".to_owned(),
            Self::AlreadyImported { org_id, org } => {
                format!(
                    "already imported into {}",
                    org.as_deref().unwrap_or(org_id.as_str())
                )
            }
            Self::ImportedBeforeWithZeroProjects { org_id, org } => format!(
                "imported into {} before; Snyk found no projects",
                org.as_deref().unwrap_or(org_id.as_str())
            ),
            Self::EmptyWorkspace => {
                "nothing to import, so no org is created (source.skip_empty_workspaces)".to_owned()
            }
        }
    }
}

/// What earlier runs recorded (from the journal), as far as planning cares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Completed imports: (org id, lowercased `workspace/repository`) → projects created.
    pub completed: std::sync::Arc<BTreeMap<(OrgId, String), u32>>,
    /// Orgs an import found at the project cap.
    pub capped_orgs: BTreeSet<OrgId>,
    /// The repositories mirrored, by Bitbucket uuid: where each is in Snyk now, and where it
    /// was before a rename or a move until that old target is retired.
    #[serde(default, skip_serializing_if = "no_repos")]
    pub repos: std::sync::Arc<BTreeMap<RepoUuid, RepoRecord>>,
    /// Targets this mirror deactivated with `retire = "delete"`, waiting out
    /// `drift.delete_after` before they may be deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<Quarantined>,
    /// Targets this mirror retired and has not imported or reactivated since, by (org id,
    /// lowercased `workspace/repository`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub retired: BTreeSet<(OrgId, String)>,
    /// Orgs where Snyk refused tags, with when (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags_refused: BTreeMap<OrgId, u64>,
}

impl History {
    /// The targets this mirror knows as its own, by (org id, lowercased
    /// `workspace/repository`): imported, found and recorded, retired, quarantined, or a
    /// repository's current or old placement.
    pub fn known_targets(&self) -> BTreeSet<(OrgId, String)> {
        let key = |p: &Placement| (p.org_id.clone(), p.full_name.to_lowercase());
        self.completed
            .keys()
            .cloned()
            .chain(self.retired.iter().cloned())
            .chain(self.quarantined.iter().map(|q| key(&q.placement)))
            .chain(
                self.repos
                    .values()
                    .flat_map(|r| std::iter::once(&r.current).chain(&r.stale))
                    .map(key),
            )
            .collect()
    }
}

/// Why a target was retired into quarantine: what must still be certain for its deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retired {
    /// Its repository was deleted: it must be found gone again.
    Deleted,
    /// Its repository went out of scope: it must be out of scope still.
    OutOfScope,
    /// Its repository is mirrored under another name or in another org: it must be still.
    Replaced,
}

/// A target this mirror deactivated with `retire = "delete"`: deleted once it has waited
/// `drift.delete_after` and the evidence that retired it is certain again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The repository.
    pub uuid: RepoUuid,
    /// Where the target is.
    #[serde(flatten)]
    pub placement: Placement,
    /// Why it was retired.
    pub reason: Retired,
    /// When it was deactivated (seconds since the Unix epoch).
    pub deactivated_at: u64,
}

impl Quarantined {
    /// When it may be deleted under `config` (seconds since the Unix epoch): once
    /// `drift.delete_after` has passed since it was deactivated.
    pub fn due_at(&self, config: &Config) -> u64 {
        self.deactivated_at
            .saturating_add(config.drift.delete_after().as_secs())
    }
}

fn no_repos(repos: &std::sync::Arc<BTreeMap<RepoUuid, RepoRecord>>) -> bool {
    repos.is_empty()
}

/// Where a repository is in Snyk: the org and the name its target was imported under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The org.
    pub org_id: OrgId,
    /// `workspace/repository` as it was imported.
    pub full_name: String,
    /// The target, when it was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<TargetId>,
}

impl Placement {
    /// Whether both name the same target: the same org and the same name, compared as Snyk
    /// does (without regard to case).
    pub fn same_place(&self, other: &Placement) -> bool {
        self.org_id == other.org_id && self.full_name.eq_ignore_ascii_case(&other.full_name)
    }
}

/// A repository found already in Snyk (imported before this tool, or by another), to record by
/// its uuid from now on: the plan's `track` action and the journal's `repo-tracked` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// Its Bitbucket uuid.
    pub uuid: RepoUuid,
    /// Where its target is.
    #[serde(flatten)]
    pub placement: Placement,
    /// Its default branch now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Its workspace's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<WorkspaceUuid>,
}

/// What the journal knows of one mirrored repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRecord {
    /// Where it is mirrored now.
    pub current: Placement,
    /// The default branch its projects test, as last mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Bitbucket's uuid of its workspace, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<WorkspaceUuid>,
    /// Targets of its old names or orgs (after a rename or a move), still to retire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<Placement>,
}

/// Why `repo` needs no import into the existing org `org_id`: Snyk already has its target
/// (`imported`), or an earlier run's journal says it completed there.
pub(crate) fn done_reason(
    repo: &Repo,
    imported: Option<&BTreeSet<String>>,
    org_id: Option<&OrgId>,
    history: &History,
) -> Option<SkipReason> {
    let id = org_id?;
    let key = repo.full_name().to_lowercase();
    if imported.is_some_and(|set| set.contains(&key)) {
        return Some(SkipReason::AlreadyImported {
            org_id: id.clone(),
            org: None,
        });
    }
    let projects = history.completed.get(&(id.to_owned(), key))?;
    Some(if *projects == 0 {
        SkipReason::ImportedBeforeWithZeroProjects {
            org_id: id.clone(),
            org: None,
        }
    } else {
        SkipReason::AlreadyImported {
            org_id: id.clone(),
            org: None,
        }
    })
}

/// Whether `repo` still needs importing into the existing org `org_id`, as far as the journal
/// knows (the inventory uses it to read only the orgs that have work).
pub(crate) fn pending_by_history(repo: &Repo, org_id: &OrgId, history: &History) -> bool {
    done_reason(repo, None, Some(org_id), history).is_none()
}
