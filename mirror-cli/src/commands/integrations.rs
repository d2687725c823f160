//! `integrations list` and `integrations update-credentials`: the Snyk side of the Bitbucket
//! connection, across every org of the group.

use std::sync::Arc;

use anyhow::Result;
use futures_util::{StreamExt, TryStreamExt, stream};
use mirror_core::advanced::journal::{Journal, fingerprint};
use mirror_core::config::glob_match;
use secrecy::ExposeSecret;
use snyk_client::{IntegrationType, Org, SnykClient};

use crate::cli::{Global, IntegrationsAction};
use crate::output::Out;
use crate::{Usage, exit, settings};

/// Orgs read at once.
const CONCURRENCY: usize = 8;

fn group(g: &Global) -> Result<String> {
    settings::group_id(g)
        .ok_or_else(|| Usage("set SNYK_GROUP_ID (or --group-id)".to_owned()).into())
}

/// One org and its Bitbucket integrations.
pub struct OrgIntegrations {
    /// The org.
    pub org: Org,
    /// The `bitbucket-cloud` integration id.
    pub cloud: Option<String>,
    /// The `bitbucket-connect-app` integration id.
    pub app: Option<String>,
}

/// Every org of the group with its Bitbucket integrations, sorted by name.
pub async fn org_integrations(snyk: &SnykClient, group: &str) -> Result<Vec<OrgIntegrations>> {
    let orgs = snyk.group_orgs(group).await?;
    let mut list: Vec<OrgIntegrations> = stream::iter(orgs)
        .map(|org| async move {
            let ints = snyk.integrations(&org.id).await?;
            Ok::<_, snyk_client::Error>(OrgIntegrations {
                cloud: ints
                    .id_of(&IntegrationType::BitbucketCloud)
                    .map(str::to_owned),
                app: ints
                    .id_of(&IntegrationType::BitbucketConnectApp)
                    .map(str::to_owned),
                org,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    list.sort_by(|a, b| a.org.name.cmp(&b.org.name).then(a.org.id.cmp(&b.org.id)));
    Ok(list)
}

/// Runs an `integrations` command.
pub async fn run(g: &Global, out: Out, action: &IntegrationsAction) -> Result<u8> {
    match action {
        IntegrationsAction::List => list(g, out).await,
        IntegrationsAction::UpdateCredentials { dry_run, orgs } => {
            update(g, out, *dry_run, orgs.as_deref()).await
        }
    }
}

async fn list(g: &Global, out: Out) -> Result<u8> {
    let snyk = settings::snyk(g)?;
    let list = org_integrations(&snyk, &group(g)?).await?;
    let missing = list
        .iter()
        .filter(|o| o.cloud.is_none() && o.app.is_none())
        .count();
    if out.human() {
        println!("{:<40} {:<38} BITBUCKET INTEGRATION", "ORG", "ID");
        for o in &list {
            let what = match (&o.cloud, &o.app) {
                (Some(c), Some(a)) => format!("bitbucket-cloud {c}, bitbucket-connect-app {a}"),
                (Some(c), None) => format!("bitbucket-cloud {c}"),
                (None, Some(a)) => format!("bitbucket-connect-app {a}"),
                (None, None) => "MISSING".to_owned(),
            };
            println!("{:<40} {:<38} {what}", o.org.name, o.org.id);
        }
        println!(
            "{} orgs, {missing} without a Bitbucket integration",
            list.len()
        );
    } else {
        let orgs: Vec<_> = list
            .iter()
            .map(|o| {
                serde_json::json!({"name": o.org.name, "id": o.org.id,
                    "bitbucket-cloud": o.cloud, "bitbucket-connect-app": o.app,
                    "missing": o.cloud.is_none() && o.app.is_none()})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"orgs": orgs, "missing": missing, "exit_code": 0})
        );
    }
    Ok(exit::OK)
}

/// The orgs `--orgs` selects (every org without it); a pattern that selects none is named,
/// and a selection of nothing is refused (nothing to do is most likely a mistyped pattern).
fn select(list: Vec<OrgIntegrations>, patterns: Option<&[String]>) -> Result<Vec<OrgIntegrations>> {
    let Some(patterns) = patterns else {
        return Ok(list);
    };
    let unused: Vec<&String> = patterns
        .iter()
        .filter(|p| !list.iter().any(|o| glob_match(p, &o.org.name)))
        .collect();
    let selected: Vec<OrgIntegrations> = list
        .into_iter()
        .filter(|o| patterns.iter().any(|p| glob_match(p, &o.org.name)))
        .collect();
    let named = unused
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if selected.is_empty() {
        return Err(Usage(format!(
            "--orgs {named} matches no org of the group (patterns match without regard to case): nothing was changed; `bb-snyk-mirror integrations list` shows the orgs"
        ))
        .into());
    }
    if !unused.is_empty() {
        eprintln!("? --orgs {named} matches no org of the group");
    }
    Ok(selected)
}

async fn update(g: &Global, out: Out, dry_run: bool, patterns: Option<&[String]>) -> Result<u8> {
    let Some((email, token)) = settings::snyk_bitbucket_credentials()? else {
        return Err(Usage(
            "set SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN to the new Atlassian e-mail and API token".to_owned(),
        )
        .into());
    };
    for p in patterns.into_iter().flatten() {
        mirror_core::config::glob_pattern(p).map_err(|e| Usage(format!("--orgs: {e}")))?;
    }
    let snyk = Arc::new(settings::snyk(g)?);
    let list = org_integrations(&snyk, &group(g)?).await?;
    let selected = select(list, patterns)?;
    let without: Vec<String> = selected
        .iter()
        .filter(|o| o.cloud.is_none())
        .map(|o| o.org.name.clone())
        .collect();
    let print = fingerprint(&email, token.expose_secret());
    let state_dir = settings::state_dir(g);
    let journal = if dry_run {
        None
    } else {
        Some(Journal::open(&state_dir, None)?)
    };
    let known = match &journal {
        Some(j) => j.state().credentials.clone(),
        None => mirror_core::advanced::journal::read_state(&state_dir)?.credentials,
    };
    let todo: Vec<(Org, String)> = selected
        .into_iter()
        .filter_map(|o| o.cloud.map(|c| (o.org, c)))
        .collect();
    let (done, pending): (Vec<_>, Vec<_>) = todo.into_iter().partition(|(org, int)| {
        known.get(&(org.id.as_str().into(), int.as_str().into())) == Some(&print)
    });
    if dry_run {
        for (org, _) in &pending {
            println!("would update {}", org.name);
        }
        println!(
            "dry run: {} to update, {} already updated with these credentials, {} without a bitbucket-cloud integration",
            pending.len(),
            done.len(),
            without.len()
        );
        return Ok(exit::OK);
    }
    let Some(journal) = journal else {
        return Ok(exit::OK);
    };
    let names: std::collections::HashMap<mirror_core::ids::OrgId, String> = pending
        .iter()
        .map(|(org, _)| (org.id.as_str().into(), org.name.clone()))
        .collect();
    let integrations = pending
        .into_iter()
        .map(|(org, int)| (org.id.as_str().into(), int.as_str().into()))
        .collect();
    let port = mirror_core::adapters::SnykAdapter::new((*snyk).clone())
        .with_bitbucket_credentials(&email, token.clone());
    let said = |org_id: &mirror_core::ids::OrgId| {
        let name = names.get(org_id).map_or(org_id.as_str(), String::as_str);
        out.status(&format!("credentials updated in {name}"));
    };
    let ended = mirror_core::credentials::rotate(
        &port,
        &journal.writer(),
        integrations,
        &print,
        CONCURRENCY,
        &said,
    )
    .await;
    let results: Vec<(String, Result<(), String>)> = ended
        .into_iter()
        .map(|(org_id, r)| {
            let name = names
                .get(&org_id)
                .cloned()
                .unwrap_or_else(|| org_id.to_string());
            (name, r.map_err(|e| e.to_string()))
        })
        .collect();
    Ok(print_updated(out, &results, done.len(), &without))
}

/// Prints what `update` did (`results`: each org's outcome; `unchanged`: those already
/// updated with these credentials; `without`: orgs with no `bitbucket-cloud` integration);
/// returns the exit code.
fn print_updated(
    out: Out,
    results: &[(String, Result<(), String>)],
    unchanged: usize,
    without: &[String],
) -> u8 {
    let failed: Vec<&(String, Result<(), String>)> =
        results.iter().filter(|(_, r)| r.is_err()).collect();
    let updated = results.len() - failed.len();
    let code = if failed.is_empty() {
        exit::OK
    } else {
        exit::FAILURES
    };
    if out.human() {
        println!(
            "{updated} integrations updated, {} already updated with these credentials, {} failed, {} orgs without a bitbucket-cloud integration",
            unchanged,
            failed.len(),
            without.len()
        );
        for (name, r) in failed {
            if let Err(e) = r {
                println!("x {name}: {e}");
            }
        }
        for name in without {
            println!("- {name}: no bitbucket-cloud integration (run sync, or add one)");
        }
    } else {
        println!(
            "{}",
            serde_json::json!({"updated": updated, "unchanged": unchanged, "failed": failed.len(),
                "without_integration": without, "exit_code": code})
        );
    }
    code
}
