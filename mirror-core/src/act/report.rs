//! What a run did: the report, a value (as JSON in files; mirror-render shows it to people).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::RetireMode;
use crate::decide::conflict::{Conflict, repositories};
use crate::decide::plan::RetireReason;

/// What a rename or a transfer carried from the old target's projects to the new ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Carried {
    /// `workspace/repository` it was imported under.
    #[serde(default)]
    pub from: String,
    /// `workspace/repository` it is imported under now.
    #[serde(default)]
    pub to: String,
    /// Ignores copied.
    #[serde(default)]
    pub ignores: usize,
    /// Tags copied.
    #[serde(default)]
    pub tags: usize,
    /// Attributes copied (criticality, environment, lifecycle).
    #[serde(default)]
    pub attributes: usize,
    /// Projects whose test frequency was copied.
    #[serde(default)]
    pub test_frequency: usize,
    /// Projects whose owner was copied.
    #[serde(default)]
    pub owner: usize,
    /// Manifests of new projects without a twin in the old target (nothing to copy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_twin: Vec<String>,
    /// Manifests of old projects the new target does not test (their history stays with
    /// the retired project).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_gone: Vec<String>,
    /// Snyk's answer when it refused tags (plans without tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_refused: Option<String>,
}

impl Carried {
    /// In words: `1 ignore, 1 tag, 3 attributes, test frequency, owner`, or `nothing`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (n, one, many) in [
            (self.ignores, "ignore", "ignores"),
            (self.tags, "tag", "tags"),
            (self.attributes, "attribute", "attributes"),
        ] {
            if n > 0 {
                parts.push(crate::decide::conflict::counted(n, one, many));
            }
        }
        if self.test_frequency > 0 {
            parts.push("test frequency".to_owned());
        }
        if self.owner > 0 {
            parts.push("owner".to_owned());
        }
        if parts.is_empty() {
            "nothing to copy".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

impl std::fmt::Display for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} → {}: carried {}", self.from, self.to, self.summary())?;
        if !self.without_twin.is_empty() {
            write!(
                f,
                "; new without an old twin: {}",
                self.without_twin.join(", ")
            )?;
        }
        if !self.manifest_gone.is_empty() {
            write!(f, "; no longer tested: {}", self.manifest_gone.join(", "))?;
        }
        if let Some(why) = &self.tags_refused {
            write!(f, "; tags refused by Snyk: {why}")?;
        }
        Ok(())
    }
}

/// A target retired, or only named (`retire = "report"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// `workspace/repository` as it was imported.
    pub repository: String,
    /// The org name.
    pub org: String,
    /// Why.
    #[serde(flatten)]
    pub reason: RetireReason,
    /// What was done.
    pub mode: RetireMode,
    /// Whether Snyk no longer held the target, so that no request was sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_gone: bool,
}

impl std::fmt::Display for Retirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.repository, self.reason.explain())?;
        if self.already_gone && self.mode != RetireMode::Report {
            return write!(f, ": already gone from {}; nothing was sent", self.org);
        }
        match self.mode {
            RetireMode::Report => write!(f, ": reported only"),
            RetireMode::Delete => write!(f, ": deleted in {}", self.org),
            RetireMode::Deactivate => write!(f, ": deactivated in {}", self.org),
        }
    }
}

/// A target whose projects moved to the repository's new default branch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BranchChange {
    /// `workspace/repository`.
    pub repository: String,
    /// The org name.
    pub org: String,
    /// The branch before.
    pub from: String,
    /// The branch now.
    pub to: String,
}

impl std::fmt::Display for BranchChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} → {} ({})",
            self.repository, self.from, self.to, self.org
        )
    }
}

/// An org renamed after its workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRename {
    /// The name before.
    pub from: String,
    /// The name now.
    pub to: String,
}

/// A step of an org's set-up that failed: the org's imports were not attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrgStep {
    /// Creating the org.
    CreateOrg,
    /// Adding its Bitbucket integration.
    AddIntegration,
}

/// An org that could not be made ready because an API call failed (not a conflict: nothing
/// in the estate is wrong, and a later run may well succeed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgFailure {
    /// The org name.
    pub org: String,
    /// The step that failed.
    pub step: OrgStep,
    /// Why, in Snyk's words where it gave some.
    pub message: String,
    /// The imports into it that were not attempted.
    pub held_back: usize,
}

impl std::fmt::Display for OrgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.step {
            OrgStep::CreateOrg => "could not be created",
            OrgStep::AddIntegration => "could not get its bitbucket-cloud integration",
        };
        write!(
            f,
            "org {} {what}: {} [{} not attempted]",
            self.org,
            self.message,
            repositories(self.held_back)
        )
    }
}

/// A repository, or a whole workspace, whose state Bitbucket's answers did not settle:
/// nothing of it changed, and the next run looks again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncertainty {
    /// `workspace/repository`, or `workspace W` for a workspace that could not be listed.
    pub subject: String,
    /// The repository's uuid, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<crate::ids::RepoUuid>,
    /// The answer that made it uncertain.
    pub why: String,
}

impl std::fmt::Display for Uncertainty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.subject)?;
        if let Some(u) = &self.uuid {
            write!(f, " {u}")?;
        }
        write!(
            f,
            ": {}; nothing of it changed, and the next run looks again",
            self.why
        )
    }
}

/// One import that did not complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedImport {
    /// `workspace/repository`.
    pub repository: String,
    /// The org name.
    pub org: String,
    /// Why, in Snyk's words where it gave some.
    pub message: String,
}

/// A change to what was already in Snyk that failed (it is tried again by the next run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedChange {
    /// `workspace/repository`.
    pub repository: String,
    /// The org name.
    pub org: String,
    /// What failed, with Snyk's words.
    pub message: String,
}

/// What apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// Orgs created by this run.
    pub orgs_created: Vec<String>,
    /// Orgs found already existing (for example created by a run that crashed).
    pub orgs_adopted: Vec<String>,
    /// Orgs a `bitbucket-cloud` integration was added to.
    pub integrations_added: Vec<String>,
    /// Imports Snyk accepted in this run.
    pub imports_accepted: usize,
    /// Imports that completed.
    pub imports_completed: usize,
    /// Imports an earlier, interrupted run had started and this one finished or confirmed.
    pub imports_resumed: usize,
    /// Imports not posted because Snyk already had the target when this run was about to
    /// post (another process imported it meanwhile).
    #[serde(default)]
    pub imports_found_in_snyk: usize,
    /// Imports that failed, with the reason.
    pub imports_failed: Vec<FailedImport>,
    /// Imports of the plan that were not attempted: their org could not be made ready (see
    /// `org_failures`), or the run was interrupted first.
    #[serde(default)]
    pub imports_not_attempted: usize,
    /// Orgs that could not be created or given their integration because an API call failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org_failures: Vec<OrgFailure>,
    /// Projects created.
    pub projects_created: u64,
    /// Import jobs that completed with zero projects.
    pub zero_project_imports: usize,
    /// Status requests made while waiting for jobs.
    pub polls: u64,
    /// Skips by reason (from the plan).
    pub skipped: BTreeMap<String, usize>,
    /// Conflicts (from the plan, and found while applying).
    pub conflicts: Vec<Conflict>,
    /// Requests made per API.
    pub requests: BTreeMap<String, u64>,
    /// Whether the run was stopped before the end (it can be resumed).
    pub interrupted: bool,
    /// Orgs whose integration had its PR checks and fix PRs off during the run
    /// (`apply.quiet_integrations`) and put back after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations_quieted: Vec<String>,
    /// Orgs created with their notifications turned off (`apply.notifications_off_for_new_orgs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications_off: Vec<String>,
    /// What went wrong without failing the mirroring (a setting that could not be changed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Repositories renamed in Bitbucket: imported under the new name, the old target retired.
    #[serde(default)]
    pub renamed: usize,
    /// Repositories moved to another org: imported there, the old target retired.
    #[serde(default)]
    pub moved: usize,
    /// Targets retired (or, with `retire = "report"`, only named), with why and how.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retirement>,
    /// The old targets of renamed and moved repositories, retired once the new import
    /// completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<Retirement>,
    /// What each rename and transfer carried from the old projects to the new, before the
    /// old target was retired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<Carried>,
    /// Projects whose managed tags and attributes were set (`[[metadata]]`), on existing
    /// projects and on those this run imported.
    #[serde(default)]
    pub metadata_set: usize,
    /// Targets whose projects moved to the repository's new default branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches_updated: Vec<BranchChange>,
    /// Orgs renamed after their workspace (`old → new`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs_renamed: Vec<OrgRename>,
    /// Repositories found already in Snyk and recorded by uuid from now on.
    #[serde(default)]
    pub tracked: usize,
    /// Changes to what was already in Snyk that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_changes: Vec<FailedChange>,
    /// Repositories and workspaces whose state Bitbucket's answers did not settle (from the
    /// plan): nothing of them changed, and the run counts as failed so that a scheduler
    /// notices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncertain: Vec<Uncertainty>,
    /// Targets whose projects were activated again (`undo`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactivated: Vec<String>,
    /// What differs between Snyk and Bitbucket beyond what the run changes (from the plan):
    /// people's changes, targets never mirrored, duplicates; each with its reason and what
    /// the run did about it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<crate::decide::differences::Difference>,
    /// The run's id (`bb-snyk-mirror runs` lists runs, `undo` takes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Report {
    /// Whether something failed or was held back.
    pub fn has_failures(&self) -> bool {
        !self.imports_failed.is_empty()
            || !self.org_failures.is_empty()
            || !self.conflicts.is_empty()
            || !self.failed_changes.is_empty()
            || !self.uncertain.is_empty()
    }
}
