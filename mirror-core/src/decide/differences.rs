//! The two-sided diff: what Snyk holds, as read this run, against what Bitbucket holds and
//! what this mirror did (the journal). Each difference is a typed value with its reason and
//! what the run does about it; the plan carries them ([`crate::Action::Differs`]) and
//! `verify` counts them.
//!
//! A leaf module: it reads the inventory and the journal's history, and knows nothing of the
//! plan's other actions.

use serde::{Deserialize, Serialize};

use crate::decide::conflict::counted;

use crate::ids::{OrgId, ProjectId, RepoUuid, TargetId, Timestamp};
use crate::read::inventory::OrgInventory;
use crate::read::ports::{AuditEntry, SnykProject};

/// A difference between Bitbucket and Snyk that a plan names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Difference {
    /// The org's name.
    pub org: String,
    /// The org.
    pub org_id: OrgId,
    /// `workspace/repository` of the target (none for a whole org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The repository's Bitbucket uuid, when it is one this mirror knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<RepoUuid>,
    /// What differs.
    #[serde(flatten)]
    pub kind: DifferenceKind,
    /// Who made the change and when, when the org's audit log says (people's changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<ChangedBy>,
    /// What this run does about it.
    pub response: Response,
}

/// What differs between Bitbucket and Snyk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "difference", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DifferenceKind {
    /// This mirror imported the repository, and its target is gone from Snyk: removed by
    /// someone else.
    RemovedInSnyk {
        /// The target, when the journal knew its id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_id: Option<TargetId>,
    },
    /// Every project of the target is inactive, and this mirror did not deactivate them.
    DeactivatedInSnyk {
        /// The target.
        target_id: TargetId,
        /// The inactive projects.
        projects: Vec<ProjectId>,
    },
    /// A target this mirror never imported, for a repository not in Bitbucket or not in
    /// scope.
    SnykOnly {
        /// The target.
        target_id: TargetId,
        /// Its active projects.
        active_projects: usize,
        /// Why it is not mirrored: not in Bitbucket, or the rule that leaves it out.
        why: String,
        /// Whether the evidence that it is not mirrored is certain (a complete listing of its
        /// workspace lacks it, or the configuration leaves it out): only then does
        /// `drift.adopt` retire it.
        certain: bool,
    },
    /// Two or more targets of one repository.
    DuplicateTarget {
        /// The one kept: this mirror's, or the first listed.
        keep: TargetId,
        /// The others.
        others: Vec<TargetId>,
    },
    /// Two or more active projects of one target test the same manifest.
    DuplicateProjects {
        /// The manifest.
        target_file: String,
        /// The one kept.
        keep: ProjectId,
        /// The others.
        others: Vec<ProjectId>,
    },
    /// Two orgs of the group have the name the mapping gives; this one is not used.
    DuplicateOrg {
        /// The org used: the one holding this mirror's records, or its integration and
        /// targets.
        kept: OrgId,
        /// Bitbucket targets this one holds.
        targets: usize,
    },
}

/// Who changed something in Snyk, and when, as the org's audit log says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedBy {
    /// The user's id, when the entry names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// What a run does about a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Response {
    /// A person's change, left as it is (`snyk.people_changes = "respect"`).
    Respected,
    /// Undone by this run: the target imported again, or the projects reactivated.
    Restored,
    /// Named, nothing done.
    Named,
    /// Retired by this run (`drift.adopt`, `--dedupe`).
    Retired,
}

impl Difference {
    /// Whether the difference is explained: a person's change the configuration respects, or
    /// a target never mirrored that is named with its reason. Duplicates, and changes a run
    /// is about to undo, are not.
    pub fn explained(&self) -> bool {
        match &self.kind {
            DifferenceKind::RemovedInSnyk { .. } | DifferenceKind::DeactivatedInSnyk { .. } => {
                self.response == Response::Respected
            }
            DifferenceKind::SnykOnly { .. } => self.response != Response::Retired,
            _ => false,
        }
    }

    /// A short label for summaries.
    pub fn label(&self) -> &'static str {
        match self.kind {
            DifferenceKind::RemovedInSnyk { .. } => "removed in Snyk",
            DifferenceKind::DeactivatedInSnyk { .. } => "deactivated in Snyk",
            DifferenceKind::SnykOnly { .. } => "in Snyk only",
            DifferenceKind::DuplicateTarget { .. } => "duplicate target",
            DifferenceKind::DuplicateProjects { .. } => "duplicate projects",
            DifferenceKind::DuplicateOrg { .. } => "duplicate org",
        }
    }

    /// Who did it, in words: the user and the date, or "someone other than this mirror".
    fn who(&self) -> String {
        match &self.by {
            Some(ChangedBy { user: Some(u), at }) => format!("by {u} on {}", day(at)),
            Some(ChangedBy { user: None, at }) => {
                format!("by someone other than this mirror on {}", day(at))
            }
            None => "by someone other than this mirror".to_owned(),
        }
    }

    /// The difference in one line: what, why, and what this run does or how to change that.
    pub fn explain(&self) -> String {
        let repo = self.repository.as_deref().unwrap_or("");
        let org = &self.org;
        let response = self.response;
        match &self.kind {
            DifferenceKind::RemovedInSnyk { .. } => {
                let what = format!("{repo}: its target was removed from {org} {}", self.who());
                match response {
                    Response::Restored => format!("{what}; imported again (restore)"),
                    _ => format!(
                        "{what}; left as it is (snyk.people_changes = \"respect\"; \"restore\" imports it again), or add it to source.exclude_repositories to stop seeing it"
                    ),
                }
            }
            DifferenceKind::DeactivatedInSnyk { projects, .. } => {
                let what = format!(
                    "{repo}: {} deactivated in {org} {}",
                    counted(projects.len(), "project", "projects"),
                    self.who()
                );
                match response {
                    Response::Restored => format!("{what}; reactivated (restore)"),
                    _ => format!(
                        "{what}; left as it is (snyk.people_changes = \"respect\"; \"restore\" reactivates them), or add it to source.exclude_repositories to stop seeing it"
                    ),
                }
            }
            DifferenceKind::SnykOnly {
                why,
                active_projects,
                certain,
                ..
            } => {
                let what = format!(
                    "{repo} in {org} ({} active): in Snyk only, never imported by this mirror; {why}",
                    counted(*active_projects, "project", "projects")
                );
                match (response, certain) {
                    (Response::Retired, _) => format!("{what}; retired (drift.adopt)"),
                    (_, true) => format!("{what}; left as it is (drift.adopt = true retires it)"),
                    (_, false) => format!(
                        "{what}; left as it is, and not retired even with drift.adopt until the evidence is certain"
                    ),
                }
            }
            DifferenceKind::DuplicateTarget { keep, others } => {
                let what = format!(
                    "{repo} has {} targets in {org}; keeping {keep}",
                    others.len() + 1
                );
                match response {
                    Response::Retired => format!("{what}, retiring {}", join(others)),
                    _ => format!(
                        "{what}; de-duplicating (drift.dedupe) retires {}",
                        join(others)
                    ),
                }
            }
            DifferenceKind::DuplicateProjects {
                target_file,
                keep,
                others,
            } => format!(
                "{repo}: {} active projects test {target_file} in {org} ({keep}, {}); deactivate the extra ones in Snyk",
                others.len() + 1,
                join(others)
            ),
            DifferenceKind::DuplicateOrg { kept, targets } => format!(
                "org {org} ({}) has the name of the org in use ({kept}) and holds {}; this mirror uses {kept}: merge or rename the other in Snyk",
                self.org_id,
                counted(*targets, "Bitbucket target", "Bitbucket targets")
            ),
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The date of an instant, in UTC.
fn day(at: &Timestamp) -> String {
    at.strftime("%Y-%m-%d").to_string()
}

/// Who removed the target `target_id` (or of this name) from `org`, as its audit log says.
pub(crate) fn who_removed(
    org: &OrgInventory,
    target_id: Option<&TargetId>,
    name: &str,
) -> Option<ChangedBy> {
    changed_by(org.changes.iter().find(|e| {
        e.event == "org.target.delete"
            && (target_id.is_some_and(|t| e.target_id.as_ref() == Some(t))
                || e.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }))
}

/// Who deactivated any of `projects`, as the org's audit log says (the latest).
pub(crate) fn who_deactivated(org: &OrgInventory, projects: &[ProjectId]) -> Option<ChangedBy> {
    changed_by(org.changes.iter().find(|e| {
        e.event == "org.project.stop_monitor"
            && e.project_id.as_ref().is_some_and(|p| projects.contains(p))
    }))
}

fn changed_by(entry: Option<&AuditEntry>) -> Option<ChangedBy> {
    entry.map(|e| ChangedBy {
        user: e.user.clone(),
        at: e.at,
    })
}

/// Active projects of one target that test the same manifest (and type), each group with
/// the one to keep first.
pub(crate) fn duplicate_projects<'a>(
    projects: impl Iterator<Item = &'a SnykProject>,
) -> Vec<(String, Vec<ProjectId>)> {
    let mut by_manifest: std::collections::BTreeMap<(String, String), Vec<ProjectId>> =
        std::collections::BTreeMap::new();
    for p in projects.filter(|p| p.active) {
        let Some(file) = &p.target_file else { continue };
        let kind = p.project_type.clone().unwrap_or_default();
        by_manifest
            .entry((file.clone(), kind))
            .or_default()
            .push(p.id.clone());
    }
    by_manifest
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((file, _), mut ids)| {
            ids.sort();
            (file, ids)
        })
        .collect()
}
