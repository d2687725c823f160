//! What this binary adds to the library's words: the names of its own variables and flags.
//! The library says what is missing (Snyk-side Bitbucket credentials, another state
//! directory); the binary says which of its settings provide it.

use bitbucket_cloud_client::api_support;
use mirror_core::{Action, ConflictReason, Plan, Report};

/// How to give the binary Snyk-side Bitbucket credentials.
const SNYK_SIDE_CREDENTIALS: &str = "To let bb-snyk-mirror add the missing bitbucket-cloud integrations, set SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN (an Atlassian API token with read:user:bitbucket, read:workspace:bitbucket and read:repository:bitbucket), or SNYK_TEMPLATE_ORG_ID to an org that has the integration.";

/// How to let the binary copy the Bitbucket Cloud App from a template org.
const APP_TEMPLATE: &str = "For the Bitbucket Cloud App, SNYK_TEMPLATE_ORG_ID may name an org that has it: new orgs copy it.";

/// How to let a run retire many targets.
const MASS_RETIRE: &str = "Once you have checked that Bitbucket really lost those repositories, run again with --allow-mass-retire (or set allow_mass_retire = true under [drift]); --retire report names what would be retired without changing Snyk.";

/// What to check when Bitbucket cannot be reached.
pub const BITBUCKET_UNREACHABLE: &str = "Bitbucket could not be reached: its address comes from BITBUCKET_CLOUD_API_URL (default https://api.bitbucket.org/2.0); check it, the network, and HTTPS_PROXY if you need a proxy";

/// What to check when Snyk cannot be reached.
pub const SNYK_UNREACHABLE: &str = "Snyk could not be reached: its address comes from SNYK_API or SNYK_REGION (or --snyk-api, --region); check it, the network, and HTTPS_PROXY if you need a proxy";

/// Whether an error's kind and status say the service was never reached (no HTTP answer).
pub fn unreachable(kind: api_support::ErrorKind, status: Option<u16>) -> bool {
    use api_support::ErrorKind::{Transient, Transport};
    matches!(kind, Transport | Transient) && status.is_none()
}

fn advice<'a>(reasons: impl Iterator<Item = &'a ConflictReason>) -> String {
    let mut credentials = false;
    let mut app = false;
    let mut mass = false;
    for reason in reasons {
        match reason {
            ConflictReason::MissingIntegration { integration, .. } => {
                if integration == "bitbucket-cloud" {
                    credentials = true;
                } else {
                    app = true;
                }
            }
            ConflictReason::MassRetire { .. } => mass = true,
            _ => {}
        }
    }
    let mut out = String::new();
    for (wanted, line) in [
        (credentials, SNYK_SIDE_CREDENTIALS),
        (app, APP_TEMPLATE),
        (mass, MASS_RETIRE),
    ] {
        if wanted {
            out.push_str("hint: ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Hints for the plan's conflicts, one line each (empty when there is nothing to add).
pub fn for_plan(plan: &Plan) -> String {
    advice(plan.actions.iter().filter_map(|a| match a {
        Action::Conflict { reason, .. } => Some(reason),
        _ => None,
    }))
}

/// Hints for the report's conflicts.
pub fn for_report(report: &Report) -> String {
    advice(report.conflicts.iter().map(|c| &c.reason))
}

/// A hint for an error that ended a command, when the binary has one.
pub fn for_error(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|c| {
        if let Some(mirror_core::Error::Locked { .. }) = c.downcast_ref::<mirror_core::Error>() {
            return Some(
                "runs for one Snyk group share one state directory: a second directory would not know what the first did, and would create every org and post every import again",
            );
        }
        if let Some(b) = c.downcast_ref::<bitbucket_cloud_client::Error>()
            && unreachable(b.kind(), b.status())
        {
            return Some(BITBUCKET_UNREACHABLE);
        }
        if let Some(s) = c.downcast_ref::<snyk_client::Error>()
            && unreachable(s.kind(), s.status())
        {
            return Some(SNYK_UNREACHABLE);
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_core::Conflict;

    #[test]
    fn a_missing_integration_names_the_variables_that_add_it() {
        let report = Report {
            conflicts: vec![Conflict {
                org: "acme".into(),
                reason: ConflictReason::MissingIntegration {
                    org_id: None,
                    integration: "bitbucket-cloud".into(),
                },
                held_back: 3,
            }],
            ..Report::default()
        };
        let hint = for_report(&report);
        assert!(
            hint.contains("SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN"),
            "{hint}"
        );
        assert!(!hint.contains("Cloud App"), "{hint}");
        assert!(for_report(&Report::default()).is_empty());
    }

    #[test]
    fn a_locked_state_directory_never_suggests_a_second_one() {
        let e: anyhow::Error = mirror_core::Error::Locked {
            path: "/var/lib/mirror".into(),
        }
        .into();
        let said = format!("{e} {}", for_error(&e).unwrap_or_default());
        assert!(!said.contains("--state-dir"), "{said}");
        assert!(!said.contains("another state directory"), "{said}");
        assert!(said.contains("share one state directory"), "{said}");
    }
}
