//! `demo change`: changes the practice Bitbucket of `demo --serve` from another terminal, as
//! Bitbucket would change (with its webhook event), through the sandbox's control route.

use anyhow::Result;

use crate::cli::{ChangeKind, Global};
use crate::output::Out;
use crate::{Usage, exit, settings};

/// Sends the change to the sandbox named by `BITBUCKET_CLOUD_API_URL` (or
/// `--bitbucket-api-url`), which must be on this machine.
pub async fn change(
    g: &Global,
    out: Out,
    kind: ChangeKind,
    repository: &str,
    to: Option<&str>,
) -> Result<u8> {
    let (workspace, slug) = repository
        .split_once('/')
        .filter(|(w, s)| !w.is_empty() && !s.is_empty())
        .ok_or_else(|| {
            Usage(format!(
                "`{repository}`: name the repository as workspace/slug"
            ))
        })?;
    let needs_to = matches!(
        kind,
        ChangeKind::Rename | ChangeKind::Transfer | ChangeKind::Branch
    );
    let name = match kind {
        ChangeKind::Create => "create",
        ChangeKind::Rename => "rename",
        ChangeKind::Transfer => "transfer",
        ChangeKind::Branch => "branch",
        ChangeKind::Delete => "delete",
    };
    let to = match (needs_to, to) {
        (true, Some(t)) if !t.trim().is_empty() => Some(t.trim()),
        (true, _) => {
            return Err(Usage(format!(
                "demo change {name} needs what to change it to: the new slug (rename), the workspace (transfer) or the branch (branch)"
            ))
            .into());
        }
        (false, _) => None,
    };
    let api = g
        .bitbucket_api_url
        .clone()
        .or_else(|| bitbucket_cloud_client::api_support::env::var("BITBUCKET_CLOUD_API_URL"))
        .ok_or_else(|| {
            Usage(
                "demo change acts on the practice sandbox: start `bb-snyk-mirror demo --serve` and paste the exports it prints (BITBUCKET_CLOUD_API_URL names the sandbox)"
                    .to_owned(),
            )
        })?;
    let mut url =
        url::Url::parse(&api).map_err(|e| Usage(format!("BITBUCKET_CLOUD_API_URL: {e}")))?;
    if !bitbucket_cloud_client::api_support::is_loopback(&url) {
        return Err(Usage(format!(
            "demo change only changes the practice sandbox on this machine, and BITBUCKET_CLOUD_API_URL is {}: real repositories are changed in Bitbucket",
            url.origin().ascii_serialization()
        ))
        .into());
    }
    url.set_path("/sandbox/changes");
    let mut body = serde_json::json!({"change": name, "repository": format!("{workspace}/{slug}")});
    if let Some(to) = to {
        body["to"] = to.into();
    }
    let client = settings::bitbucket(g)?;
    let request = bitbucket_cloud_client::api_support::ApiRequest::new(http::Method::POST, url)
        .with_body(bitbucket_cloud_client::api_support::Body::json(&body)?);
    match client.send(request).await {
        Ok(answer) => {
            let done: serde_json::Value = answer.json().unwrap_or_default();
            let what = done["done"].as_str().unwrap_or("done");
            if out.human() {
                println!("{what} (in the practice sandbox)");
            } else {
                println!("{}", serde_json::json!({"done": what, "exit_code": exit::OK}));
            }
            Ok(exit::OK)
        }
        Err(e) if e.status() == Some(404) => Err(Usage(format!(
            "the practice sandbox has no {repository} to {name} (or the destination already has that slug): `bb-snyk-mirror plan` lists its repositories"
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}
