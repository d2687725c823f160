//! Turning flags, environment variables and the configuration file into a configuration and
//! two clients. Flags win over the environment, which wins over the file.

use bitbucket_cloud_client::api_support;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use bitbucket_cloud_client::{Auth, BitbucketClient, DEFAULT_TOKEN_URL, RateLimit};
use mirror_core::Config;
use mirror_core::config::Mapping;
use snyk_client::{Region, SnykAuth, SnykClient};

use crate::Usage;
use crate::cli::Global;

/// The configuration file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "bb-snyk-mirror.toml";
/// The state directory used when neither --state-dir nor SNYK_LOG_PATH is set.
pub const DEFAULT_STATE_DIR: &str = ".bb-snyk-mirror";

use api_support::env::var as env;

/// The state directory: --state-dir, SNYK_LOG_PATH, or ./.bb-snyk-mirror.
pub fn state_dir(global: &Global) -> PathBuf {
    global
        .state_dir
        .clone()
        .or_else(|| env("SNYK_LOG_PATH").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// The Snyk group: --group-id, SNYK_GROUP_ID, or snyk.group_id in the configuration file.
pub fn group_id(global: &Global) -> Option<String> {
    global
        .group_id
        .clone()
        .or_else(|| env("SNYK_GROUP_ID"))
        .or_else(|| {
            config(global, false)
                .ok()
                .map(|c| c.snyk.group_id.to_string())
        })
        .filter(|s| !s.trim().is_empty())
}

/// The configuration, layered: file, then environment, then flags; then checked.
pub fn config(global: &Global, need_group: bool) -> Result<Config> {
    let path = global.config.clone().or_else(|| {
        let p = PathBuf::from(DEFAULT_CONFIG_FILE);
        p.exists().then_some(p)
    });
    let mut config = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Usage(format!(
                    "cannot read the configuration file {}: {e}",
                    p.display()
                ))
            })?;
            Config::from_toml_unchecked(&text)
                .map_err(|e| Usage(format!("{}: {e}", p.display())))?
        }
        None => Config::default(),
    };
    if let Some(g) = global.group_id.clone().or_else(|| env("SNYK_GROUP_ID")) {
        config.snyk.group_id = g.into();
    }
    if let Some(t) = env("SNYK_TEMPLATE_ORG_ID") {
        config.snyk.template_org_id = Some(t);
    }
    let workspaces = global
        .workspaces
        .clone()
        .or_else(bitbucket_cloud_client::env::workspaces);
    if let Some(w) = workspaces {
        config.source.workspaces = Some(w);
    }
    let concurrency = match global.concurrency {
        Some(c) => Some(c),
        None => match env("CONCURRENT_IMPORTS") {
            Some(v) => Some(v.trim().parse::<usize>().map_err(|_| {
                Usage(format!(
                    "CONCURRENT_IMPORTS is `{v}`: give a number from 1 to 50"
                ))
            })?),
            None => None,
        },
    };
    if let Some(c) = concurrency {
        config.apply.concurrency = c;
    }
    config.apply.quiet_integrations |= global.quiet_integrations;
    config.apply.notifications_off_for_new_orgs |= global.notifications_off;
    config.drift.allow_mass_retire |= global.allow_mass_retire;
    config.drift.dedupe |= global.dedupe;
    if global.restore {
        config.snyk.people_changes = mirror_core::config::PeopleChanges::Restore;
    }
    config.drift.retire = match global.retire.as_deref() {
        Some("delete") => mirror_core::config::RetireMode::Delete,
        Some("report") => mirror_core::config::RetireMode::Report,
        Some(_) => mirror_core::config::RetireMode::Deactivate,
        None => config.drift.retire,
    };
    if need_group
        || !config.snyk.group_id.as_str().is_empty()
        || matches!(config.mapping, Mapping::SingleOrg { .. })
    {
        config.validate().map_err(|e| {
            let text = e.to_string();
            Usage(match crate::advice::for_core(&e) {
                Some(hint) => format!("{text}; {hint}"),
                None => text,
            })
        })?;
    }
    Ok(config)
}

/// The Bitbucket credentials from the environment (`bitbucket_cloud_client::env`), a refusal
/// being a usage error.
pub fn bitbucket_auths() -> Result<Vec<Auth>> {
    bitbucket_cloud_client::env::auths().map_err(|e| Usage(e.0).into())
}

/// How `doctor` talks to the APIs: it fails fast (a connect timeout of a few seconds, one retry
/// after half a second) instead of riding out a minute of errors as a sync does.
fn quick() -> (api_support::RetryPolicy, api_support::TransportConfig) {
    (
        api_support::RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(1),
            max_total_wait: Duration::from_secs(2),
            unanswered_budget: Duration::from_secs(20),
        },
        api_support::TransportConfig {
            connect_timeout: Some(Duration::from_secs(3)),
            request_timeout: Some(Duration::from_secs(20)),
            ..api_support::TransportConfig::default()
        },
    )
}

/// The transport's time-outs from BB_SNYK_MIRROR_CONNECT_TIMEOUT (default 10 s) and
/// BB_SNYK_MIRROR_REQUEST_TIMEOUT (default 30 s), such as `5s` or `2m`.
fn timeouts() -> Result<api_support::TransportConfig> {
    let mut config = api_support::TransportConfig::default();
    for (name, slot) in [
        (
            "BB_SNYK_MIRROR_CONNECT_TIMEOUT",
            &mut config.connect_timeout,
        ),
        (
            "BB_SNYK_MIRROR_REQUEST_TIMEOUT",
            &mut config.request_timeout,
        ),
    ] {
        if let Some(text) = env(name) {
            let value = humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Usage(format!(
                        "{name} is `{text}`: give a duration longer than zero, such as 10s or 1m"
                    ))
                })?;
            *slot = Some(value);
        }
    }
    Ok(config)
}

/// The Bitbucket client.
pub fn bitbucket(global: &Global) -> Result<BitbucketClient> {
    bitbucket_with(global, false)
}

/// The Bitbucket client for checks that should fail fast.
pub fn bitbucket_quick(global: &Global) -> Result<BitbucketClient> {
    bitbucket_with(global, true)
}

fn bitbucket_with(global: &Global, fast: bool) -> Result<BitbucketClient> {
    let auths = bitbucket_auths()?;
    let mut builder = BitbucketClient::builder().auths(auths).token_url(
        env("BITBUCKET_CLOUD_OAUTH_TOKEN_URL").unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned()),
    );
    if let Some(url) = global
        .bitbucket_api_url
        .clone()
        .or_else(|| env("BITBUCKET_CLOUD_API_URL"))
    {
        builder = builder.base_url(url);
    }
    if let Some(budget) = env("BITBUCKET_CLOUD_HOURLY_BUDGET") {
        let n: u32 = budget.parse().map_err(|_| {
            Usage(format!(
                "BITBUCKET_CLOUD_HOURLY_BUDGET is `{budget}`: give a number"
            ))
        })?;
        builder = builder.rate_limit(Some(RateLimit::per_hour(n)));
    }
    if fast {
        let (retry, transport) = quick();
        builder = builder.retry(retry).transport_config(transport);
    } else {
        builder = builder.transport_config(timeouts()?);
    }
    builder.build().map_err(|e| Usage(e.to_string()).into())
}

/// The Atlassian e-mail and API token Snyk uses to read Bitbucket, for adding and rotating
/// `bitbucket-cloud` integrations (`snyk_client::env::bitbucket_credentials`).
pub fn snyk_bitbucket_credentials() -> Result<Option<(String, secrecy::SecretString)>> {
    snyk_client::env::bitbucket_credentials().map_err(|e| Usage(e.0).into())
}

/// The Snyk credentials from the environment (`snyk_client::env`), a refusal being a usage
/// error.
pub fn snyk_auth() -> Result<SnykAuth> {
    snyk_client::env::auth().map_err(|e| Usage(e.0).into())
}

/// The Snyk client.
pub fn snyk(global: &Global) -> Result<SnykClient> {
    snyk_with(global, false)
}

/// The Snyk client for checks that should fail fast.
pub fn snyk_quick(global: &Global) -> Result<SnykClient> {
    snyk_with(global, true)
}

fn snyk_with(global: &Global, fast: bool) -> Result<SnykClient> {
    let auth = snyk_auth()?;
    let region = global.region.clone().or_else(|| env("SNYK_REGION"));
    let api = global.snyk_api.clone().or_else(|| env("SNYK_API"));
    let mut builder = SnykClient::builder().auth(auth);
    match (region, api) {
        (Some(r), Some(a)) => {
            let region = Region::parse(&r).map_err(|e| Usage(e.to_string()))?;
            let host = snyk_client::normalize_api_url(&a).map_err(|e| Usage(e.to_string()))?;
            if Region::from_host(&host.to_string()) != Some(region) {
                return Err(Usage(format!(
                    "SNYK_REGION ({}) and SNYK_API ({a}) disagree: set only one",
                    region.name()
                ))
                .into());
            }
            builder = builder.region(region);
        }
        (Some(r), None) => {
            builder = builder.region(Region::parse(&r).map_err(|e| Usage(e.to_string()))?)
        }
        (None, Some(a)) => builder = builder.api_url(a),
        (None, None) => {}
    }
    if fast {
        let (retry, transport) = quick();
        builder = builder.retry(retry).transport_config(transport);
    } else {
        builder = builder.transport_config(timeouts()?);
    }
    builder.build().map_err(|e| Usage(e.to_string()).into())
}

/// Reads a file the user named, with a clear error.
pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))
        .context("reading input")
}
