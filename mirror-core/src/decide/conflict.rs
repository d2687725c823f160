//! Conflicts: an org that cannot be used, typed, with the explanation people read. The plan
//! finds most of them; apply finds the rest (an org that could not be created, an integration
//! that could not be added). Both end in the report as [`Conflict`] values.
//!
//! The explanations name what to change in the configuration or in Snyk, never a variable or a
//! flag of a particular program: a program that embeds this crate adds its own advice by
//! matching on the [`ConflictReason`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decide::rules::MAX_ORG_NAME;
use crate::ids::OrgId;

/// Why an org cannot be used; its repositories are not imported.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConflictReason {
    /// Several existing orgs have this name: which one is meant cannot be guessed.
    DuplicateOrgName {
        /// Their ids.
        org_ids: Vec<OrgId>,
    },
    /// The name is longer than Snyk allows.
    NameTooLong {
        /// Its length.
        length: usize,
    },
    /// The org is at Snyk's cap of 25,000 projects.
    ProjectCap {
        /// The org.
        org_id: OrgId,
    },
    /// The org has (or a new org would have) no integration of the chosen type, and it cannot
    /// be added: the Snyk port holds no Snyk-side Bitbucket credentials, or the type is the
    /// Bitbucket Cloud App, which the API cannot set up.
    MissingIntegration {
        /// The org, when it exists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org_id: Option<OrgId>,
        /// The integration type.
        integration: String,
    },
    /// More targets of repositories gone than a run retires in one org without
    /// `drift.allow_mass_retire` (`max(10, 10%)` of its active targets): a mass deletion in
    /// Bitbucket, or a mistake, is not followed blindly.
    MassRetire {
        /// Targets the run would retire.
        retirements: usize,
        /// The most it retires.
        limit: usize,
    },
    /// The org's integrations, targets or projects could not be read this run: what it holds
    /// is not known, so nothing is imported into it; the other orgs go on.
    OrgUnread {
        /// Snyk's answer.
        why: String,
    },
}

impl ConflictReason {
    /// What the conflict means and how to resolve it, for people.
    pub fn explain(&self, org: &str) -> String {
        match self {
            Self::DuplicateOrgName { org_ids } => format!(
                "{} orgs are named \"{org}\" ({}): rename or delete all but one, or change mapping.name",
                org_ids.len(),
                join(org_ids)
            ),
            Self::NameTooLong { length } => format!(
                "the org name \"{org}\" has {length} characters; Snyk allows {MAX_ORG_NAME}: shorten mapping.name"
            ),
            Self::ProjectCap { org_id } => format!(
                "org {org_id} is at Snyk's cap of 25,000 projects: remove projects or map these repositories to another org"
            ),
            Self::MissingIntegration {
                org_id,
                integration,
            } => {
                let which = match org_id {
                    Some(id) => format!("org {id} has no {integration} integration"),
                    None => format!("a new org would have no {integration} integration"),
                };
                if integration == "bitbucket-cloud" {
                    format!(
                        "{which}: give Snyk-side Bitbucket credentials (an Atlassian e-mail and API token with read:user:bitbucket, read:workspace:bitbucket and read:repository:bitbucket) so that it is added, or set snyk.template_org_id to an org that has one"
                    )
                } else {
                    format!(
                        "{which}: the Bitbucket Cloud App cannot be set up through the API; in the Snyk web UI open the org, then Settings > Integrations > Bitbucket Cloud App, and connect it to the workspace (steps: 'Bitbucket Cloud App' in Snyk's documentation at docs.snyk.io); or set snyk.template_org_id to an org that has it"
                    )
                }
            }
            Self::MassRetire { retirements, limit } => format!(
                "{retirements} targets of repositories gone would be retired, more than the {limit} a run retires in one org: check that Bitbucket really lost them, then set drift.allow_mass_retire to retire them all"
            ),
            Self::OrgUnread { why } => format!(
                "the org could not be read ({why}); nothing is imported into it this run, and the next run reads it again"
            ),
        }
    }
}

fn join(ids: &[OrgId]) -> String {
    ids.iter().map(OrgId::as_str).collect::<Vec<_>>().join(", ")
}

/// An org that could not be used in a run, and how many repositories it held back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The org's name (or id, for a single org).
    pub org: String,
    /// Why.
    #[serde(flatten)]
    pub reason: ConflictReason,
    /// Repositories not imported because of it.
    pub held_back: usize,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({} held back)",
            self.org,
            self.reason.explain(&self.org),
            repositories(self.held_back)
        )
    }
}

/// `n` with the noun that fits it: "1 tag", "2 tags".
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "1 repository", "2 repositories".
pub fn repositories(n: usize) -> String {
    counted(n, "repository", "repositories")
}
