//! A periodic mirror run by a scheduler, with resume: every interval, plan and apply against
//! one state directory. A repository created between runs is picked up by the next one; a run
//! that is killed is resumed by the next one.
//!
//! Shows: the journal kept across runs (and locked during each), plans that become no-ops, and
//! what a scheduler loop around mirror-core looks like.
//!
//! Run: `cargo run -p examples --example periodic_mirror` (ROUNDS and INTERVAL_SECS to change
//! the defaults of 3 rounds 1 s apart).

use std::sync::Arc;
use std::time::Duration;

use bitbucket_cloud_client::sandbox::SandboxRepository;
use examples::connect;
use mirror_core::Journal;
use mirror_core::adapters::BitbucketAdapter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let rounds: u32 = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let interval = Duration::from_secs(
        std::env::var("INTERVAL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
    );
    let config = env.config()?;
    let bitbucket = BitbucketAdapter::new(env.bitbucket.clone());
    let snyk = Arc::new(env.snyk_adapter());
    // Keep this directory between runs (a volume, a CI cache): it is what makes runs resumable.
    let state = tempfile::tempdir()?;

    let mut ticker = tokio::time::interval(interval);
    for round in 1..=rounds {
        ticker.tick().await;
        let journal = Journal::open(state.path(), None)?;
        // Only the orgs with work left are read: a round over a mirrored estate is cheap.
        let history = journal.state().history();
        let inventory =
            mirror_core::gather_for(&config, &bitbucket, snyk.as_ref(), &history).await?;
        let plan = mirror_core::plan(&config, &inventory, &history);
        let report =
            mirror_core::apply(&plan, snyk.clone(), &journal, &config.apply, None, None).await?;
        println!(
            "round {round}: {} orgs created, {} imported, {} failed",
            report.orgs_created.len(),
            report.imports_completed,
            report.imports_failed.len()
        );
        if round == 1
            && let Some(s) = &env.sandboxes
        {
            // Someone creates a repository between two runs.
            s.bitbucket.add_repository(
                "acme-mobile",
                SandboxRepository::new("new-service", "{00000000-0000-4000-8000-00000000a001}"),
            );
        }
    }
    Ok(())
}
