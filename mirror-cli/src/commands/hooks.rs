//! `hooks install|list|remove`: the workspace webhooks that feed `serve`, one per workspace in
//! scope, found by their URL.

use anyhow::Result;
use bitbucket_cloud_client::webhooks::WebhookSpec;
use bitbucket_cloud_client::{BitbucketClient, HookChange};
use mirror_core::adapters::BitbucketAdapter;

use crate::cli::{Global, HooksAction};
use crate::output::Out;
use crate::{Usage, exit, settings};

/// A URL as it may be shown: a user name and password in it are redacted (the redaction every
/// error and log line goes through).
fn shown(url: &str) -> String {
    bitbucket_cloud_client::api_support::redact::redact(url)
}

/// Checks a webhook URL: absolute, HTTPS (plain HTTP only to this machine, for tests and the
/// sandbox), ending in the path `serve` answers on.
fn check_url(raw: &str) -> Result<()> {
    let url = &shown(raw);
    let parsed = url::Url::parse(raw.trim()).map_err(|e| {
        Usage(format!(
            "--url `{url}` is not an absolute URL ({e}): give the public address of serve, such as https://mirror.example.com{}",
            crate::commands::serve::WEBHOOK_PATH
        ))
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Usage(
            "--url carries a user name or password (`user:password@`): leave them out; Bitbucket signs each delivery with BITBUCKET_WEBHOOK_SECRET, which serve checks".to_owned(),
        )
        .into());
    }
    let local = bitbucket_cloud_client::api_support::is_loopback(&parsed);
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        return Err(Usage(format!(
            "--url `{url}`: Bitbucket must deliver over HTTPS (put serve behind a TLS-terminating proxy)"
        ))
        .into());
    }
    if !parsed
        .path()
        .trim_end_matches('/')
        .ends_with(crate::commands::serve::WEBHOOK_PATH)
    {
        return Err(Usage(format!(
            "--url `{url}`: serve answers on {}; end the URL with it",
            crate::commands::serve::WEBHOOK_PATH
        ))
        .into());
    }
    Ok(())
}

/// Does `action` in workspace `ws`; returns the row the JSON output shows for it.
async fn act(
    client: &BitbucketClient,
    ws: &str,
    action: &HooksAction,
    secret: Option<&secrecy::SecretString>,
    out: Out,
) -> Result<serde_json::Value, bitbucket_cloud_client::Error> {
    match action {
        HooksAction::Install { url } => {
            let spec = WebhookSpec::mirror(url.trim(), secret.cloned().unwrap_or_default());
            client
                .install_workspace_hook(ws, &spec)
                .await
                .map(|(hook, change)| {
                    let what = match change {
                        HookChange::Created => "created",
                        HookChange::Updated => "updated",
                    };
                    if out.human() {
                        println!(
                            "{ws}: webhook {what} ({})",
                            hook.uuid.as_deref().unwrap_or("?")
                        );
                    }
                    serde_json::json!({"workspace": ws, "change": what, "uuid": hook.uuid})
                })
        }
        HooksAction::Remove { url } => {
            client
                .remove_workspace_hooks(ws, url.trim())
                .await
                .map(|removed| {
                    if out.human() {
                        println!("{ws}: {removed} webhook(s) removed");
                    }
                    serde_json::json!({"workspace": ws, "removed": removed})
                })
        }
        HooksAction::List => client.list_workspace_hooks(ws).await.map(|hooks| {
            if out.human() {
                if hooks.is_empty() {
                    println!("{ws}: no webhook");
                }
                for h in &hooks {
                    println!(
                        "{ws}: {} {} [{}]{}",
                        if h.active { "active  " } else { "inactive" },
                        shown(&h.url),
                        h.events.join(", "),
                        if h.secret_set {
                            ""
                        } else {
                            " (no secret: serve refuses its deliveries)"
                        }
                    );
                }
            }
            let mut hooks = serde_json::to_value(&hooks).unwrap_or_default();
            for h in hooks.as_array_mut().into_iter().flatten() {
                if let Some(url) = h.get("url").and_then(|u| u.as_str()).map(shown) {
                    h["url"] = url.into();
                }
            }
            serde_json::json!({"workspace": ws, "hooks": hooks})
        }),
    }
}

/// Runs `hooks …`.
///
/// # Errors
/// Settings (before any request); the first workspace that failed, after trying every one.
pub async fn run(g: &Global, out: Out, action: &HooksAction) -> Result<u8> {
    let secret = match action {
        HooksAction::Install { url } => {
            check_url(url)?;
            Some(crate::commands::serve::webhook_secret()?)
        }
        HooksAction::Remove { url } => {
            check_url(url)?;
            None
        }
        HooksAction::List => None,
    };
    let config = settings::config(g, false)?;
    let client: BitbucketClient = settings::bitbucket(g)?;
    let port = BitbucketAdapter::new(client.clone());
    let workspaces = mirror_core::advanced::workspaces_in_scope(&config, &port).await?;
    if workspaces.is_empty() {
        out.status("no workspace is in scope: nothing to do");
        return Ok(exit::OK);
    }
    let mut first_error = None;
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for ws in &workspaces {
        let done = act(&client, ws, action, secret.as_ref(), out).await;
        match done {
            Ok(row) => rows.push(row),
            Err(e) => {
                let message = mirror_core::fit_screen(&e.to_string());
                eprintln!("{ws}: {message}");
                failed.push(serde_json::json!({"workspace": ws, "error": message}));
                first_error.get_or_insert(e);
            }
        }
    }
    let code = match &first_error {
        Some(e) => crate::exit::for_error(e.kind()),
        None => exit::OK,
    };
    if !out.human() {
        // The workspaces that failed are named with their error; the document always says how
        // the command ended.
        println!(
            "{}",
            serde_json::json!({ "workspaces": rows, "failed": failed, "exit_code": code })
        );
        return Ok(code);
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(exit::OK),
    }
}
