//! `doctor`: checks the credentials, scopes, workspaces, group and integrations, each printed
//! as it finishes, so a slow or failing service shows where it is.

use anyhow::Result;
use bitbucket_cloud_client::BitbucketClient;
use bitbucket_cloud_client::api_support;
use bitbucket_cloud_client::api_support::http;
use snyk_client::SnykClient;

use crate::cli::Global;
use crate::output::Out;
use crate::{exit, settings};

/// Above this many orgs, doctor does not read every org's integrations (one request each).
const DOCTOR_MAX_ORGS: usize = 300;

/// What doctor found so far: the checks, whether credentials were refused, the JSON report.
struct Doctor {
    lines: Checklist,
    auth_failed: bool,
    report: serde_json::Map<String, serde_json::Value>,
}

/// Runs every check; returns the exit code (credentials refused, a check failed, or all
/// passed).
pub async fn doctor(g: &Global, out: Out) -> Result<u8> {
    let mut d = Doctor {
        lines: Checklist::new(out.human()),
        auth_failed: false,
        report: serde_json::Map::new(),
    };
    let bitbucket = settings::bitbucket_quick(g)?;
    d.bitbucket(g, &bitbucket).await;
    snyk_side_scopes(&bitbucket, &mut d.lines, &mut d.report).await;
    let snyk = settings::snyk_quick(g)?;
    d.snyk(g, &snyk).await;
    Ok(d.finish(out))
}

impl Doctor {
    /// A Bitbucket check that failed with `e`.
    fn bitbucket_failed(&mut self, what: String, e: &bitbucket_cloud_client::Error) {
        self.auth_failed |= e.kind() == api_support::ErrorKind::Auth;
        self.lines.check(Status::Fail, what);
        self.lines.hint(crate::advice::for_bitbucket(e));
    }

    /// The Bitbucket credentials: who they are, their scopes, the workspaces they see.
    async fn bitbucket(&mut self, g: &Global, bitbucket: &BitbucketClient) {
        let kind = bitbucket.credential_kind();
        self.lines.section(format!(
            "Bitbucket: {kind} credentials, {}",
            bitbucket.http().base_url()
        ));
        self.report
            .insert("bitbucket_credential".into(), kind.as_str().into());
        if bitbucket.can_list_workspaces() {
            self.bitbucket_user(bitbucket).await;
            match bitbucket.user_workspaces(None).collect().await {
                Ok(list) => {
                    let slugs: Vec<String> =
                        list.into_iter().filter_map(|w| w.workspace.slug).collect();
                    self.lines.check(
                        Status::Ok,
                        format!("{} workspaces visible: {}", slugs.len(), slugs.join(", ")),
                    );
                    self.report.insert("workspaces".into(), slugs.into());
                }
                Err(e) => self.bitbucket_failed(format!("listing workspaces: {e}"), &e),
            }
            return;
        }
        let configured = settings::config(g, false)
            .ok()
            .and_then(|c| c.source.workspaces.clone());
        let Some(list) = configured else {
            self.lines.check(Status::Fail, "access tokens cannot list workspaces: set BITBUCKET_CLOUD_WORKSPACES (or source.workspaces)".to_owned());
            return;
        };
        for ws in list {
            match bitbucket.workspace(&ws).await {
                Ok(w) => self.lines.check(
                    Status::Ok,
                    format!("workspace {ws} ({})", w.name.unwrap_or_default()),
                ),
                Err(e) => self.bitbucket_failed(format!("workspace {ws}: {e}"), &e),
            }
        }
    }

    /// Who the credentials are, and the scopes granted and missing.
    async fn bitbucket_user(&mut self, bitbucket: &BitbucketClient) {
        let url = bitbucket.http().url("user", &[]);
        let answer = match bitbucket
            .send(api_support::ApiRequest::new(http::Method::GET, url))
            .await
        {
            Ok(answer) => answer,
            Err(e) => return self.bitbucket_failed(format!("{e}"), &e),
        };
        let user: serde_json::Value = answer.json().unwrap_or_default();
        let granted = granted_scopes(&answer);
        self.lines.check(
            Status::Ok,
            format!(
                "authenticated as {}",
                user["display_name"].as_str().unwrap_or("(unknown)")
            ),
        );
        if granted.is_empty() {
            return;
        }
        let missing: Vec<&str> = bitbucket_cloud_client::sandbox::READ_SCOPES
            .iter()
            .copied()
            .filter(|s| !granted.iter().any(|g| g == s))
            .collect();
        self.lines.check(
            Status::Ok,
            format!("scopes granted: {}", granted.join(", ")),
        );
        if !missing.is_empty() {
            self.lines.check(
                Status::Fail,
                format!("scopes missing: {}", missing.join(", ")),
            );
        }
        self.report.insert("scopes_missing".into(), missing.into());
    }

    /// Snyk: the host, the group and its orgs' Bitbucket integrations.
    async fn snyk(&mut self, g: &Global, snyk: &SnykClient) {
        self.lines.section(format!(
            "Snyk: {} ({})",
            snyk.host(),
            snyk.region().map(|r| r.name()).unwrap_or("custom host")
        ));
        self.report.insert("snyk_host".into(), snyk.host().into());
        let Some(group) = settings::group_id(g) else {
            self.lines.check(
                Status::Fail,
                "no group: set SNYK_GROUP_ID (or snyk.group_id)".to_owned(),
            );
            return;
        };
        let orgs = match snyk.group_orgs(&group).await {
            Ok(orgs) => orgs,
            Err(e) => {
                self.auth_failed |= e.kind() == api_support::ErrorKind::Auth;
                self.lines
                    .check(Status::Fail, format!("group {group}: {e}"));
                self.lines.hint(crate::advice::for_snyk(&e));
                return;
            }
        };
        self.lines
            .check(Status::Ok, format!("group {group}: {} orgs", orgs.len()));
        self.report.insert("orgs".into(), orgs.len().into());
        if orgs.len() > DOCTOR_MAX_ORGS {
            self.lines.check(Status::Note, format!("{} orgs: run `bb-snyk-mirror integrations list` to see which lack a Bitbucket integration",
                orgs.len()
            ));
            return;
        }
        self.org_integrations(snyk, &group).await;
    }

    /// Which orgs of the group have no Bitbucket integration.
    async fn org_integrations(&mut self, snyk: &SnykClient, group: &str) {
        let list = match crate::commands::integrations::org_integrations(snyk, group).await {
            Ok(list) => list,
            Err(e) => {
                self.lines
                    .check(Status::Fail, format!("reading the orgs' integrations: {e}"));
                return;
            }
        };
        let missing: Vec<String> = list
            .iter()
            .filter(|o| o.cloud.is_none() && o.app.is_none())
            .map(|o| o.org.name.clone())
            .collect();
        if missing.is_empty() {
            self.lines.check(
                Status::Ok,
                "every org has a Bitbucket integration".to_owned(),
            );
        } else {
            self.lines.check(Status::Note, format!("{} orgs without a Bitbucket integration: {} (sync adds it when SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN are set)",
                missing.len(),
                missing.join(", ")
            ));
        }
        self.report
            .insert("orgs_without_bitbucket_integration".into(), missing.into());
    }

    /// Prints the verdict (or the JSON report); returns the exit code.
    fn finish(mut self, out: Out) -> u8 {
        let code = if self.auth_failed {
            exit::AUTH
        } else if self.lines.failures() > 0 {
            exit::FAILURES
        } else {
            exit::OK
        };
        if out.human() {
            println!(
                "{}",
                if code == exit::OK {
                    "All checks passed."
                } else {
                    "Some checks failed."
                }
            );
        } else {
            self.report
                .insert("checks".into(), self.lines.into_checks().into());
            self.report.insert("exit_code".into(), code.into());
            println!("{}", serde_json::Value::Object(self.report));
        }
        code
    }
}

/// What a check of doctor found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    Note,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "fail",
            Self::Note => "note",
        }
    }
}

/// Doctor's checks: printed at once for people, kept typed for JSON.
struct Checklist {
    checks: Vec<serde_json::Value>,
    section: String,
    live: bool,
}

impl Checklist {
    fn new(live: bool) -> Self {
        Self {
            checks: Vec::new(),
            section: String::new(),
            live,
        }
    }

    /// A section's heading, `Name: what is checked`.
    fn section(&mut self, heading: String) {
        if self.live {
            println!("{heading}");
        }
        let (name, detail) = heading.split_once(": ").unwrap_or((&heading, ""));
        self.section = name.to_ascii_lowercase();
        self.checks.push(serde_json::json!({
            "section": self.section,
            "status": "info",
            "message": detail,
        }));
    }

    /// One check's outcome.
    fn check(&mut self, status: Status, message: String) {
        if self.live {
            let label = match status {
                Status::Fail => "FAIL",
                other => other.name(),
            };
            println!("  {label:<6}{message}");
        }
        self.checks.push(serde_json::json!({
            "section": self.section,
            "status": status.name(),
            "message": message,
        }));
    }

    /// What to do about the check before, shown under it.
    fn hint(&mut self, hint: Option<&str>) {
        if let Some(hint) = hint {
            if self.live {
                println!("        ({hint})");
            }
            if let Some(last) = self.checks.last_mut() {
                last["hint"] = hint.into();
            }
        }
    }

    /// How many checks failed.
    fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c["status"] == Status::Fail.name())
            .count()
    }

    fn into_checks(self) -> Vec<serde_json::Value> {
        self.checks
    }
}

/// The scopes Bitbucket says a credential was granted (`x-oauth-scopes`), empty when it does
/// not say.
fn granted_scopes(answer: &api_support::ApiResponse) -> Vec<String> {
    answer
        .header("x-oauth-scopes")
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What Snyk can do with the Bitbucket features it offers, and the API-token scopes each
/// needs beyond reading (Snyk's documented Bitbucket Cloud permissions).
const SNYK_FEATURE_SCOPES: &[(&str, &[&str])] = &[
    (
        "PR checks (Snyk tests on pull requests)",
        &[
            "read:pullrequest:bitbucket",
            "write:repository:bitbucket",
            "read:webhook:bitbucket",
            "write:webhook:bitbucket",
        ],
    ),
    (
        "fix and upgrade pull requests",
        &[
            "write:repository:bitbucket",
            "read:pullrequest:bitbucket",
            "write:pullrequest:bitbucket",
        ],
    ),
];

/// The scopes of the API token Snyk itself reads Bitbucket with (SNYK_BITBUCKET_*, else the
/// mirror's own), and the features a token of read scopes only disables. Named as notes: a
/// read-only token is a choice, not a failure.
async fn snyk_side_scopes(
    bitbucket: &bitbucket_cloud_client::BitbucketClient,
    lines: &mut Checklist,
    report: &mut serde_json::Map<String, serde_json::Value>,
) {
    let Ok(Some((email, token))) = settings::snyk_bitbucket_credentials() else {
        return;
    };
    let client = bitbucket_cloud_client::BitbucketClient::builder()
        .base_url(bitbucket.http().base_url().to_string())
        .auth(bitbucket_cloud_client::Auth::api_token(email, token))
        .retry(api_support::RetryPolicy::none())
        .build();
    let Ok(client) = client else { return };
    let url = client.http().url("user", &[]);
    let Ok(answer) = client
        .send(api_support::ApiRequest::new(http::Method::GET, url))
        .await
    else {
        return;
    };
    let granted = granted_scopes(&answer);
    if granted.is_empty() {
        return;
    }
    lines.section("Snyk-side Bitbucket token (what Snyk itself reads Bitbucket with)".to_owned());
    let mut disabled = Vec::new();
    for (feature, needs) in SNYK_FEATURE_SCOPES {
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|s| !granted.iter().any(|g| g == s))
            .collect();
        if missing.is_empty() {
            lines.check(Status::Ok, format!("{feature}: scopes granted"));
        } else {
            lines.check(
                Status::Note,
                format!(
                    "{feature} cannot work: the token lacks {}",
                    missing.join(", ")
                ),
            );
            disabled.push(*feature);
        }
    }
    report.insert("snyk_side_features_disabled".into(), disabled.into());
}
