//! What this binary adds to the library's words: the names of its own variables and flags.
//! The library says what is missing (Snyk-side Bitbucket credentials, another state
//! directory); the binary says which of its settings provide it.

use bitbucket_cloud_client::api_support;
use mirror_core::conflict::ConflictReason;
use mirror_core::{Action, Plan, Report};

/// How to give the binary Snyk-side Bitbucket credentials.
const SNYK_SIDE_CREDENTIALS: &str = "To let bb-snyk-mirror add the missing bitbucket-cloud integrations, set SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN (an Atlassian API token with read:user:bitbucket, read:workspace:bitbucket and read:repository:bitbucket), or SNYK_TEMPLATE_ORG_ID to an org that has the integration.";

/// How to let the binary copy the Bitbucket Cloud App from a template org.
const APP_TEMPLATE: &str = "For the Bitbucket Cloud App, SNYK_TEMPLATE_ORG_ID may name an org that has it: new orgs copy it.";

/// How to let a run retire many targets.
const MASS_RETIRE: &str = "Once you have checked that Bitbucket really lost those repositories, run again with --allow-mass-retire (or set allow_mass_retire = true under [drift]); --retire report names what would be retired without changing Snyk.";

/// What to check when Bitbucket cannot be reached.
const BITBUCKET_UNREACHABLE: &str = "Bitbucket could not be reached: its address comes from BITBUCKET_CLOUD_API_URL (default https://api.bitbucket.org/2.0); check it, the network, and HTTPS_PROXY if you need a proxy";

/// What to check when Snyk cannot be reached.
const SNYK_UNREACHABLE: &str = "Snyk could not be reached: its address comes from SNYK_API or SNYK_REGION (or --snyk-api, --region); check it, the network, and HTTPS_PROXY if you need a proxy";

/// Whether an error's kind and status say the service was never reached (no HTTP answer).
fn unreachable(kind: api_support::ErrorKind, status: Option<u16>) -> bool {
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

/// How to restore people's changes in Snyk from the command line.
const RESTORE: &str = "`sync --restore` undoes the changes people made in Snyk for one run (snyk.people_changes = \"restore\" for every run).";

/// How to retire second targets from the command line.
const DEDUPE: &str =
    "`sync --dedupe` retires the second targets of a repository (drift.dedupe for every run).";

/// Hints for the plan's conflicts and the differences it leaves, one line each (empty when
/// there is nothing to add).
pub fn for_plan(plan: &Plan) -> String {
    use mirror_core::differences::{DifferenceKind, Response};
    let mut out = advice(plan.actions.iter().filter_map(|a| match a {
        Action::Conflict { reason, .. } => Some(reason),
        _ => None,
    }));
    let left = |wanted: fn(&DifferenceKind) -> bool| {
        plan.actions.iter().any(|a| {
            matches!(a, Action::Differs(d) if wanted(&d.kind)
                && !matches!(d.response, Response::Restored | Response::Retired))
        })
    };
    let people = left(|k| {
        matches!(
            k,
            DifferenceKind::RemovedInSnyk { .. } | DifferenceKind::DeactivatedInSnyk { .. }
        )
    });
    let duplicates = left(|k| matches!(k, DifferenceKind::DuplicateTarget { .. }));
    for (wanted, line) in [(people, RESTORE), (duplicates, DEDUPE)] {
        if wanted {
            out.push_str("hint: ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Hints for the report's conflicts.
pub fn for_report(report: &Report) -> String {
    advice(report.conflicts.iter().map(|c| &c.reason))
}

/// A hint for an error that ended a command, when the binary has one.
pub fn for_error(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|c| {
        if let Some(m) = c.downcast_ref::<mirror_core::Error>() {
            return for_core(m);
        }
        if let Some(b) = c.downcast_ref::<bitbucket_cloud_client::Error>() {
            return for_bitbucket(b);
        }
        c.downcast_ref::<snyk_client::Error>().and_then(for_snyk)
    })
}

/// The binary's words for an error of mirror-core: which of its settings to look at.
pub fn for_core(e: &mirror_core::Error) -> Option<&'static str> {
    match e {
        mirror_core::Error::Locked { .. } => Some(
            "runs for one Snyk group share one state directory: a second directory would not know what the first did, and would create every org and post every import again",
        ),
        mirror_core::Error::MissingGroupId => Some("set SNYK_GROUP_ID or --group-id"),
        mirror_core::Error::Bitbucket(b) => for_bitbucket(b),
        mirror_core::Error::Snyk(s) => for_snyk(s),
        _ => None,
    }
}

/// The binary's words for a Bitbucket error: which of its variables give what is missing.
pub fn for_bitbucket(e: &bitbucket_cloud_client::Error) -> Option<&'static str> {
    use bitbucket_cloud_client::{CredentialKind, Error};
    match e {
        _ if unreachable(e.kind(), e.status()) => Some(BITBUCKET_UNREACHABLE),
        Error::WorkspaceListingUnsupported { .. } => Some(
            "set BITBUCKET_CLOUD_WORKSPACES to the workspace slugs, for example BITBUCKET_CLOUD_WORKSPACES=acme,acme-data",
        ),
        Error::Auth { source, .. } if source.is_token_exchange() => Some(
            "the OAuth consumer is BITBUCKET_CLOUD_OAUTH_CLIENT_ID and BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET",
        ),
        Error::Auth {
            credential: Some(CredentialKind::AppPassword),
            ..
        } => Some(
            "set BITBUCKET_CLOUD_EMAIL and BITBUCKET_CLOUD_API_TOKEN for an Atlassian API token, or BITBUCKET_CLOUD_API_TOKEN alone for a workspace access token",
        ),
        _ => None,
    }
}

/// The binary's words for a Snyk error: which of its variables and flags to check.
pub fn for_snyk(e: &snyk_client::Error) -> Option<&'static str> {
    use snyk_client::Error;
    match e {
        _ if unreachable(e.kind(), e.status()) => Some(SNYK_UNREACHABLE),
        Error::GroupNotFound { .. } => Some(
            "the group comes from SNYK_GROUP_ID (or --group-id), the region from SNYK_REGION or SNYK_API",
        ),
        Error::Auth { source, .. } if source.is_token_exchange() => {
            Some("the OAuth client is SNYK_OAUTH_CLIENT_ID and SNYK_OAUTH_CLIENT_SECRET")
        }
        Error::Auth { .. } if e.status() == Some(401) => {
            Some("the token comes from SNYK_TOKEN, the region from SNYK_REGION or SNYK_API")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_core::conflict::Conflict;

    #[test]
    fn the_binary_names_its_variables_where_the_libraries_say_what_is_missing() {
        let listing = bitbucket_cloud_client::Error::WorkspaceListingUnsupported {
            credential: bitbucket_cloud_client::CredentialKind::AccessToken,
        };
        assert!(
            !listing.to_string().contains("BITBUCKET_CLOUD_"),
            "{listing}"
        );
        let e = anyhow::Error::new(mirror_core::Error::Bitbucket(listing));
        assert!(
            for_error(&e).is_some_and(|h| h.contains("BITBUCKET_CLOUD_WORKSPACES=")),
            "{e}"
        );
        let group = mirror_core::Error::MissingGroupId;
        assert!(!group.to_string().contains("SNYK_"), "{group}");
        let hint = for_error(&anyhow::Error::new(group));
        assert!(
            hint.is_some_and(|h| h.contains("SNYK_GROUP_ID")),
            "{hint:?}"
        );
    }

    #[test]
    fn a_missing_integration_names_the_variables_that_add_it() {
        let mut report = Report::default();
        report.conflicts = vec![Conflict {
            org: "acme".into(),
            reason: ConflictReason::MissingIntegration {
                org_id: None,
                integration: "bitbucket-cloud".into(),
            },
            held_back: 3,
        }];
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
