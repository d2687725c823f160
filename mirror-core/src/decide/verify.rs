//! `verify`: both sides read, nothing written, every difference between Snyk and Bitbucket
//! named with its reason and whether it is explained. Made from a plan (which is the diff of
//! both sides as they are), so `plan`, `sync` and `verify` can never disagree about what
//! differs.

use serde::{Deserialize, Serialize};

use crate::decide::conflict::counted;

use crate::decide::conflict::ConflictReason;
use crate::decide::differences::Difference;
use crate::decide::plan::{Action, Compared, ImportAction, Plan, RetireReason};
use crate::decide::rules::SkipReason;

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verification {
    /// What was compared; `None` when Snyk could not be read in full (then nothing is said
    /// about equality).
    pub compared: Option<Compared>,
    /// Every difference, with its reason.
    pub differences: Vec<Finding>,
}

/// One difference between Snyk and Bitbucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// What kind of difference.
    pub kind: FindingKind,
    /// What it concerns: `workspace/repository`, an org, a workspace.
    pub subject: String,
    /// Why, in words (with how to change it).
    pub reason: String,
    /// Whether it is explained: a reason this mirror respects (a person's change, uncertain
    /// evidence, a rule of the configuration), not a fault in the mirror.
    pub explained: bool,
    /// The difference as the plan has it, when it is one of Snyk's side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
}

/// The kinds of difference `verify` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A repository in scope without its target in Snyk.
    Missing,
    /// An org the mapping needs that does not exist.
    MissingOrg,
    /// An org not named after its workspace any more.
    OrgName,
    /// Active projects on another branch than the repository's default.
    WrongBranch,
    /// An active target of a repository deleted, renamed, moved or out of scope.
    Stale,
    /// Held back by a conflict, with its reason.
    HeldBack,
    /// What Bitbucket's answers do not settle; nothing of it changes until they do.
    Uncertain,
    /// Deactivated by this mirror, waiting for its deletion.
    Quarantined,
    /// Imported, and Snyk found no projects.
    NoProjects,
    /// A workspace no longer visible, or a repository now out of scope, still in Snyk.
    NotFollowed,
    /// A difference on Snyk's side: see [`Finding::difference`].
    Snyk,
}

impl Verification {
    /// What differs in `plan` (a plan made from a full read of both sides).
    pub fn of(plan: &Plan) -> Self {
        Self {
            compared: plan.compared,
            differences: plan.actions.iter().filter_map(finding).collect(),
        }
    }

    /// Differences that are not explained.
    pub fn unexplained(&self) -> usize {
        self.differences.iter().filter(|d| !d.explained).count()
    }

    /// Whether every difference is explained and Snyk was read in full.
    pub fn holds(&self) -> bool {
        self.compared.is_some() && self.unexplained() == 0
    }

    /// The closing line: "Snyk equals Bitbucket for …" only when Snyk was read in full and
    /// every difference is explained.
    pub fn closing_line(&self) -> String {
        let Some(c) = self.compared else {
            return "Snyk could not be read in full, so nothing is said about whether it equals Bitbucket".to_owned();
        };
        let scope = format!(
            "{} in {}",
            counted(c.repositories, "repository", "repositories"),
            counted(c.orgs, "org", "orgs")
        );
        let n = self.differences.len();
        match self.unexplained() {
            0 if n == 0 => format!("Snyk equals Bitbucket for {scope}"),
            0 => format!(
                "Snyk equals Bitbucket for {scope}; {}, all explained",
                counted(n, "difference", "differences")
            ),
            u => format!(
                "Snyk does not equal Bitbucket for {scope}: {}, {u} not explained",
                counted(n, "difference", "differences")
            ),
        }
    }
}

fn found(
    kind: FindingKind,
    subject: impl Into<String>,
    reason: String,
    explained: bool,
) -> Option<Finding> {
    Some(Finding {
        kind,
        subject: subject.into(),
        reason,
        explained,
        difference: None,
    })
}

/// The difference an action of the plan stands for, if any.
fn finding(a: &Action) -> Option<Finding> {
    use FindingKind as K;
    match a {
        Action::Import(i) => import_finding(i),
        Action::CreateOrg { name } => found(
            K::MissingOrg,
            format!("org {name}"),
            "the org does not exist yet".to_owned(),
            false,
        ),
        Action::RenameOrg { from, to, .. } => found(
            K::OrgName,
            format!("org {from}"),
            format!("its workspace is now {to}"),
            false,
        ),
        Action::Branch {
            repository,
            from,
            to,
            ..
        } => found(
            K::WrongBranch,
            repository.clone(),
            format!("projects test {from}; Bitbucket's default branch is {to}"),
            false,
        ),
        Action::Retire { placement, why, .. } => match why {
            RetireReason::NotMirrored { .. } | RetireReason::Duplicate { .. } => None,
            _ => found(
                K::Stale,
                placement.full_name.clone(),
                format!("active in Snyk, {}", why.explain()),
                false,
            ),
        },
        Action::Quarantined {
            repository, why, ..
        } => found(K::Quarantined, repository.clone(), why.clone(), true),
        Action::WorkspaceGone { workspace, .. } => found(
            K::NotFollowed,
            format!("workspace {workspace}"),
            "no longer visible to the credentials; nothing of it is retired".to_owned(),
            true,
        ),
        Action::OutOfScope { repository, rule } => found(
            K::NotFollowed,
            repository.clone(),
            format!("out of scope ({rule}); left in Snyk (drift.out_of_scope = \"report\")"),
            true,
        ),
        Action::Uncertain {
            repository, why, ..
        } => found(K::Uncertain, repository.clone(), why.clone(), true),
        Action::WorkspaceUnread { workspace, why, .. } => found(
            K::Uncertain,
            format!("workspace {workspace}"),
            why.clone(),
            true,
        ),
        Action::Conflict {
            org,
            reason,
            repositories,
        } => {
            let duplicate = matches!(reason, ConflictReason::DuplicateOrgName { .. });
            let held = counted(repositories.len(), "repository", "repositories");
            found(
                K::HeldBack,
                format!("org {org}"),
                format!("{} ({held} held back)", reason.explain(org)),
                !duplicate,
            )
        }
        Action::Skip {
            workspace,
            repository: Some(r),
            reason: reason @ SkipReason::ImportedBeforeWithZeroProjects { .. },
        } => found(
            K::NoProjects,
            format!("{workspace}/{r}"),
            reason.explain(),
            true,
        ),
        Action::Differs(d) => Some(Finding {
            kind: K::Snyk,
            subject: d
                .repository
                .clone()
                .unwrap_or_else(|| format!("org {}", d.org)),
            reason: d.explain(),
            explained: d.explained(),
            difference: Some((**d).clone()),
        }),
        _ => None,
    }
}

fn import_finding(i: &ImportAction) -> Option<Finding> {
    if i.restore {
        // Named by its difference (removed in Snyk).
        return None;
    }
    let repo = format!("{}/{}", i.workspace, i.repository);
    let why = match &i.replaces {
        Some(old) => format!(
            "not in Snyk under this name yet (mirrored as {})",
            old.full_name
        ),
        None => format!("not in Snyk (would be imported into {})", i.org.name()),
    };
    found(FindingKind::Missing, repo, why, false)
}
