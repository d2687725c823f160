//! What a plan does, one action at a time: the values the planner, the drift analysis and
//! apply share (a leaf: it imports neither the plan nor the drift analysis, so those two do
//! not import each other).

use serde::{Deserialize, Serialize};

use crate::config::RetireMode;
use crate::decide::conflict::ConflictReason;
use crate::decide::differences::Difference;
use crate::decide::rules::{Placement, Sighting, SkipReason};
use crate::ids::{IntegrationId, OrgId, RepoUuid, TargetId, WorkspaceUuid};

/// Where an import goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum OrgRef {
    /// An org that exists.
    Existing {
        /// Its id.
        id: OrgId,
        /// Its name.
        name: String,
        /// The integration to import through; `None` when the plan adds it
        /// ([`Action::AddIntegration`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        integration_id: Option<IntegrationId>,
    },
    /// An org this plan creates.
    New {
        /// Its name.
        name: String,
    },
}

impl OrgRef {
    /// The org's id, when it exists.
    pub fn id(&self) -> Option<&OrgId> {
        match self {
            Self::Existing { id, .. } => Some(id),
            Self::New { .. } => None,
        }
    }

    /// The org's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Existing { name, .. } | Self::New { name } => name,
        }
    }
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Create an org in the group.
    CreateOrg {
        /// Its name.
        name: String,
    },
    /// Add a `bitbucket-cloud` integration to an org, with the Snyk-side Bitbucket credentials.
    AddIntegration {
        /// The org's name.
        org: String,
        /// The org's id, when it exists already.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org_id: Option<OrgId>,
    },
    /// Import one repository into an org (boxed: it is the largest action, and a plan of
    /// 100,000 repositories holds an action for each).
    Import(Box<ImportAction>),
    /// Rename an org after its workspace's new slug (same workspace uuid).
    RenameOrg {
        /// The org.
        org_id: OrgId,
        /// Its name now.
        from: String,
        /// Its new name.
        to: String,
    },
    /// Move the projects of a repository's target from its old default branch to the new one
    /// (projects on any other branch are left alone).
    Branch {
        /// The repository.
        uuid: RepoUuid,
        /// The org's name.
        org: String,
        /// The org.
        org_id: OrgId,
        /// `workspace/repository`.
        repository: String,
        /// The default branch the projects test.
        from: String,
        /// The new default branch.
        to: String,
    },
    /// Retire a target: its repository is gone, out of scope, or mirrored under a new name.
    Retire {
        /// The repository, when known by uuid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uuid: Option<RepoUuid>,
        /// The org's name.
        org: String,
        /// Where the target is.
        #[serde(flatten)]
        placement: Placement,
        /// Why.
        why: RetireReason,
        /// What retiring does.
        mode: RetireMode,
        /// With `retire = "delete"`: the target is deactivated now and deleted by the first
        /// run after this time (RFC 3339) that finds the same evidence again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delete_after: Option<String>,
    },
    /// A target this mirror deactivated with `retire = "delete"` waits out
    /// `drift.delete_after`, or for the evidence to be certain again, before its deletion.
    Quarantined {
        /// The org's name.
        org: String,
        /// `workspace/repository` of the target.
        repository: String,
        /// When it may be deleted (RFC 3339).
        delete_after: String,
        /// Why it is not deleted now.
        why: String,
    },
    /// Activate projects a run of this mirror deactivated (`bb-snyk-mirror undo`), or that
    /// someone deactivated in Snyk (`sync --restore`).
    Reactivate {
        /// The org's name.
        org: String,
        /// Where the target is.
        #[serde(flatten)]
        placement: Placement,
        /// The run that deactivated them; none when it was someone else.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<String>,
        /// The projects.
        projects: Vec<crate::ids::ProjectId>,
    },
    /// Record a repository found already in Snyk by its uuid from now on (nothing changes in
    /// Snyk).
    Track(Sighting),
    /// A workspace whose repositories are mirrored is no longer visible to the credentials:
    /// nothing of it is retired.
    WorkspaceGone {
        /// The workspace slug.
        workspace: String,
        /// The org its repositories are in, when one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<String>,
        /// Mirrored repositories of it.
        repositories: usize,
    },
    /// A repository whose state Bitbucket's answers do not settle (its listing entry could not
    /// be read, its lookup was refused or failed, a transfer not seen in its new workspace):
    /// nothing of it is imported, moved or retired this run, and the next run looks again.
    Uncertain {
        /// The repository, when its uuid is known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uuid: Option<RepoUuid>,
        /// `workspace/repository` as last known (or as the unreadable entry shows it).
        repository: String,
        /// The org it is mirrored in, when it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<String>,
        /// The answer that made it uncertain.
        why: String,
    },
    /// A workspace in scope whose listing failed: nothing of it is imported, moved or retired
    /// this run.
    WorkspaceUnread {
        /// The workspace slug.
        workspace: String,
        /// The org its repositories are in, when one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<String>,
        /// Mirrored repositories of it.
        repositories: usize,
        /// The answer.
        why: String,
    },
    /// A pattern of the configuration matches nothing (often a typo, or a case of a rule
    /// written for another estate).
    UnusedRule {
        /// The setting, such as `source.exclude_repositories`.
        setting: String,
        /// The pattern.
        pattern: String,
    },
    /// A mirrored repository is now out of scope (excluded, a fork, emptied).
    OutOfScope {
        /// `workspace/repository` now.
        repository: String,
        /// Why.
        rule: String,
    },
    /// A difference between what Snyk holds and what Bitbucket holds, with its reason and
    /// what this plan does about it (boxed: most plans have none).
    Differs(Box<Difference>),
    /// Set the tags and attributes a `[[metadata]]` rule manages on one project, where they
    /// differ (a person's tags of other keys are kept).
    Metadata(Box<MetadataChange>),
    /// Leave a repository (or a workspace) alone.
    Skip {
        /// The workspace slug.
        workspace: String,
        /// The repository slug; `None` for a whole workspace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repository: Option<String>,
        /// Why.
        #[serde(flatten)]
        reason: SkipReason,
    },
    /// An org that cannot be used; its repositories wait until the conflict is resolved.
    Conflict {
        /// The org name.
        org: String,
        /// Why.
        #[serde(flatten)]
        reason: ConflictReason,
        /// `workspace/repository` of the repositories held back.
        repositories: Vec<String>,
    },
}

/// What [`Action::Import`] imports, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportAction {
    /// The org.
    pub org: OrgRef,
    /// The workspace slug.
    pub workspace: String,
    /// The repository slug.
    pub repository: String,
    /// The branch (the repository's main branch).
    pub branch: String,
    /// Only these manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Paths to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusion_globs: Vec<String>,
    /// The repository's Bitbucket uuid, recorded when the import completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<RepoUuid>,
    /// Its workspace's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<WorkspaceUuid>,
    /// Where the repository was mirrored under its old name or org (a rename or a move):
    /// that target is retired once this import has completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Placement>,
    /// Imported again although the journal shows it imported: its target was removed in
    /// Snyk and the run restores people's changes. The org's targets are checked by name
    /// before the post, so that it is imported once however often the plan is applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore: bool,
    /// With `replaces`: what the old target's projects hold that is carried to the new ones
    /// before the old target is retired, as far as the plan read it (ignores are counted
    /// when they are copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrying: Option<String>,
    /// What the `[[metadata]]` rule sets on each project the import creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::read::ports::ProjectSettings>,
}

/// Tags and attributes a `[[metadata]]` rule sets on one project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetadataChange {
    /// The org's name.
    pub org: String,
    /// The org.
    pub org_id: OrgId,
    /// `workspace/repository`.
    pub repository: String,
    /// The project.
    pub project_id: crate::ids::ProjectId,
    /// Its manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_file: Option<String>,
    /// What is written: the project's settings with the managed values set.
    pub settings: crate::read::ports::ProjectSettings,
    /// Each managed value that changes.
    pub changes: Vec<crate::decide::metadata::FieldChange>,
}

/// Why a target is retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum RetireReason {
    /// The repository was deleted (absent from a listing that succeeded, and 404 by uuid).
    Deleted,
    /// The repository is now out of scope, and `[drift] out_of_scope = "retire"`.
    OutOfScope {
        /// Why.
        rule: String,
    },
    /// The repository was renamed; it is mirrored under its new name.
    Renamed {
        /// `workspace/repository` now.
        to: String,
    },
    /// The repository moved to another org.
    Moved {
        /// `workspace/repository` now.
        to: String,
    },
    /// A target this mirror never imported, not mirrored (`drift.adopt`).
    NotMirrored {
        /// Why it is not mirrored.
        why: String,
    },
    /// A second target of a repository (`--dedupe`); the kept one stays.
    Duplicate {
        /// The target kept.
        keep: TargetId,
    },
}

impl RetireReason {
    /// In words.
    pub fn explain(&self) -> String {
        match self {
            Self::Deleted => "deleted in Bitbucket".to_owned(),
            Self::OutOfScope { rule } => format!("out of scope: {rule}"),
            Self::Renamed { to } => format!("renamed to {to}"),
            Self::Moved { to } => format!("moved to {to}"),
            Self::NotMirrored { why } => format!("in Snyk only: {why}"),
            Self::Duplicate { keep } => format!("a duplicate of target {keep}"),
        }
    }
}
