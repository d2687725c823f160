//! Shared set-up of the examples in `examples/examples/`: the real services when credentials
//! are in the environment, the built-in sandboxes otherwise.
//!
//! Real mode needs `SNYK_TOKEN` and `SNYK_GROUP_ID` (and `SNYK_REGION` outside US-01), plus
//! `BITBUCKET_CLOUD_EMAIL` + `BITBUCKET_CLOUD_API_TOKEN`, or `BITBUCKET_CLOUD_ACCESS_TOKENS`
//! with `BITBUCKET_CLOUD_WORKSPACES`.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bitbucket_cloud_client::sandbox as bb_sandbox;
use bitbucket_cloud_client::{Auth, BitbucketClient};
use mirror_core::adapters::SnykAdapter;
use mirror_core::{Config, Mirror};
use snyk_client::sandbox as snyk_sandbox;
use snyk_client::{PollPolicy, Region, SnykAuth, SnykClient};

/// Both sandboxes, kept running while the example runs.
pub struct Sandboxes {
    /// The fake Bitbucket Cloud.
    pub bitbucket: bb_sandbox::Sandbox,
    /// The fake Snyk.
    pub snyk: snyk_sandbox::Sandbox,
}

/// What an example talks to.
pub struct Env {
    /// Bitbucket.
    pub bitbucket: BitbucketClient,
    /// Snyk.
    pub snyk: SnykClient,
    /// The Snyk group.
    pub group_id: String,
    /// The workspaces to use when the credentials cannot list them.
    pub workspaces: Option<Vec<String>>,
    /// The sandboxes, in sandbox mode.
    pub sandboxes: Option<Sandboxes>,
}

use secrecy::SecretString;
use snyk_client::api_support::env::var;

impl Env {
    /// The Atlassian e-mail and API token Snyk uses to read Bitbucket (to add missing
    /// integrations): SNYK_BITBUCKET_EMAIL + SNYK_BITBUCKET_API_TOKEN, the tool's own API token,
    /// or in sandbox mode the sample's.
    pub fn snyk_bitbucket_credentials(&self) -> Option<(String, SecretString)> {
        if self.sandboxes.is_some() {
            return Some((
                bb_sandbox::SAMPLE_EMAIL.to_owned(),
                bb_sandbox::SAMPLE_API_TOKEN.into(),
            ));
        }
        snyk_client::env::bitbucket_credentials().ok().flatten()
    }

    /// The Snyk port, able to add missing `bitbucket-cloud` integrations when credentials are
    /// at hand.
    pub fn snyk_adapter(&self) -> SnykAdapter {
        let adapter = SnykAdapter::new(self.snyk.clone());
        match self.snyk_bitbucket_credentials() {
            Some((email, token)) => adapter.with_bitbucket_credentials(email, token),
            None => adapter,
        }
    }

    /// A [`Mirror`] of `config` over this environment's two sides, journaling into
    /// `state_dir`.
    ///
    /// # Errors
    /// When the state directory cannot be opened or is held by another run.
    pub fn mirror(&self, config: &Config, state_dir: &Path) -> anyhow::Result<Mirror> {
        Ok(Mirror::builder()
            .bitbucket(self.bitbucket.clone())
            .snyk_port(Arc::new(self.snyk_adapter()))
            .config(config.clone())
            .state_dir(state_dir)
            .build()?)
    }

    /// A configuration for this environment: its group and workspaces.
    ///
    /// # Errors
    /// When the configuration is not valid (no group).
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::default();
        config.snyk.group_id = self.group_id.as_str().into();
        config.source.workspaces = self.workspaces.clone();
        config.validate()?;
        Ok(config)
    }
}

/// Whether the environment holds real credentials for both sides, and the Snyk group.
pub fn real_credentials() -> bool {
    var("SNYK_GROUP_ID").is_some()
        && snyk_client::env::auth().is_ok()
        && bitbucket_cloud_client::env::auths().is_ok()
}

/// Connects to the real services, or starts the sandboxes with their sample estates.
///
/// # Errors
/// When a client cannot be built or a sandbox cannot bind a port.
pub async fn connect() -> anyhow::Result<Env> {
    if real_credentials() {
        println!("using the real Bitbucket Cloud and Snyk (credentials found in the environment)");
        let bb = BitbucketClient::builder().auths(bitbucket_cloud_client::env::auths()?);
        let mut snyk = SnykClient::builder().auth(snyk_client::env::auth()?);
        if let Some(region) = var("SNYK_REGION") {
            snyk = snyk.region(Region::parse(&region)?);
        }
        return Ok(Env {
            bitbucket: bb.build()?,
            snyk: snyk.build()?,
            group_id: var("SNYK_GROUP_ID").unwrap_or_default(),
            workspaces: bitbucket_cloud_client::env::workspaces(),
            sandboxes: None,
        });
    }
    println!("using the built-in sandboxes (no credentials in the environment)");
    let mut bb_builder = bb_sandbox::Sandbox::builder()
        .estate(bb_sandbox::Estate::sample())
        .api_token(bb_sandbox::SAMPLE_EMAIL, bb_sandbox::SAMPLE_API_TOKEN);
    // Two access tokens per workspace, for the pool example.
    for w in bb_sandbox::Estate::sample().workspaces {
        for n in 1..=2 {
            bb_builder = bb_builder.access_token(&format!("{}-token-{n}", w.slug), &w.slug);
        }
    }
    let bitbucket = bb_builder.start().await?;
    let snyk = snyk_sandbox::Sandbox::sample_builder()
        .import_delay(Duration::from_millis(200))
        .start()
        .await?;
    Ok(Env {
        bitbucket: BitbucketClient::builder()
            .base_url(bitbucket.base_url())
            .auth(Auth::api_token(
                bb_sandbox::SAMPLE_EMAIL,
                bb_sandbox::SAMPLE_API_TOKEN,
            ))
            .build()?,
        snyk: SnykClient::builder()
            .api_url(snyk.api_url())
            .auth(SnykAuth::token(snyk_sandbox::SAMPLE_TOKEN))
            .poll(PollPolicy {
                first_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(500),
                ..PollPolicy::default()
            })
            .build()?,
        group_id: snyk.group_id(),
        workspaces: None,
        sandboxes: Some(Sandboxes { bitbucket, snyk }),
    })
}
