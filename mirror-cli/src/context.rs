//! What the commands share: the settings read once (`Ctx`), intervals, and Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use mirror_core::adapters::{BitbucketAdapter, SnykAdapter};
use mirror_core::{Config, Mirror};
use tokio::sync::watch;

use crate::cli::Global;
use crate::{Usage, exit, settings};
use bitbucket_cloud_client::api_support;

/// Everything a mirror run needs.
pub struct Ctx {
    /// The configuration.
    pub config: Config,
    /// Bitbucket.
    pub bitbucket: Arc<BitbucketAdapter>,
    /// Snyk.
    pub snyk: Arc<SnykAdapter>,
    /// The journal's directory.
    pub state_dir: PathBuf,
}

impl Ctx {
    /// From flags, environment and configuration file.
    ///
    /// # Errors
    /// Every missing or wrong setting at once, when more than one is (a usage error).
    pub fn from_env(g: &Global) -> Result<Self> {
        let config = settings::config(g, true);
        let snyk = settings::snyk(g);
        let snyk_side = settings::snyk_bitbucket_credentials();
        let bitbucket = settings::bitbucket(g);
        match (config, snyk, snyk_side, bitbucket) {
            (Ok(config), Ok(snyk), Ok(snyk_side), Ok(bitbucket)) => {
                let mut snyk = SnykAdapter::new(snyk);
                if let Some((email, token)) = snyk_side {
                    snyk = snyk.with_bitbucket_credentials(email, token);
                }
                Ok(Self {
                    bitbucket: Arc::new(BitbucketAdapter::new(bitbucket)),
                    snyk: Arc::new(snyk),
                    state_dir: settings::state_dir(g),
                    config,
                })
            }
            (config, snyk, snyk_side, bitbucket) => {
                let errors: Vec<anyhow::Error> =
                    [config.err(), snyk.err(), snyk_side.err(), bitbucket.err()]
                        .into_iter()
                        .flatten()
                        .collect();
                Err(all_at_once(errors))
            }
        }
    }
}

/// Several settings errors as one: each on its own line when all are usage errors (so a user
/// fixes them in one go); otherwise the first that is not (credentials refused, say).
pub fn all_at_once(mut errors: Vec<anyhow::Error>) -> anyhow::Error {
    let usage =
        |e: &anyhow::Error| crate::api_kind::kind_of(e) == Some(api_support::ErrorKind::Config);
    if errors.len() == 1 || !errors.iter().all(usage) {
        let at = errors.iter().position(|e| !usage(e)).unwrap_or(0);
        return errors.swap_remove(at);
    }
    let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
    Usage(format!(
        "{} settings need fixing:\n{}",
        errors.len(),
        lines.join("\n")
    ))
    .into()
}

pub fn parse_interval(text: &str) -> Result<Duration> {
    parse_interval_named(text, "--interval")
}

/// A duration given to the flag `flag`, such as 30s, 30m, 6h or 1d.
pub fn parse_interval_named(text: &str, flag: &str) -> Result<Duration> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = number.parse().map_err(|_| {
        Usage(format!(
            "{flag} `{text}`: use a number with s, m, h or d, such as 30m or 1h"
        ))
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(Usage(format!(
                "{flag} `{text}`: use a number with s, m, h or d, such as 30m or 1h"
            ))
            .into());
        }
    };
    if secs == 0 {
        return Err(Usage(format!("{flag} must be longer than zero")).into());
    }
    Ok(Duration::from_secs(secs))
}

impl Ctx {
    /// The mirror over both sides, holding the state directory's lock while it lives.
    pub fn mirror(&self) -> Result<Mirror> {
        Ok(self.builder().build()?)
    }

    /// A mirror of both sides and this configuration, to be given an observer or a stop
    /// signal before it is built.
    pub fn builder(&self) -> mirror_core::MirrorBuilder {
        Mirror::builder()
            .bitbucket_port(self.bitbucket.clone())
            .snyk_port(self.snyk.clone())
            .config(self.config.clone())
            .state_dir(&self.state_dir)
    }
}

/// Whether colour may be used on a stream that is a terminal: not when NO_COLOR is set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn stop_on_ctrl_c() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    stop_on_ctrl_c_into(tx);
    rx
}

/// Sends `true` on `tx` at the first Ctrl-C or SIGTERM; the second ends the process.
pub fn stop_on_ctrl_c_into(tx: watch::Sender<bool>) {
    tokio::spawn(async move {
        if interrupted().await {
            eprintln!("stopping after the imports in flight (Ctrl-C again to abort)…");
            let _ = tx.send(true);
            if interrupted().await {
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
}

/// Waits for Ctrl-C or SIGTERM (what containers and schedulers send); false if neither can be
/// listened for.
pub async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_interval("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_interval("45").unwrap(), Duration::from_secs(45));
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5y").is_err());
    }
}
