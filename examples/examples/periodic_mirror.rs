//! A periodic mirror run by a scheduler, with resume: every interval, plan and apply against
//! one state directory. A repository created between runs is picked up by the next one; a run
//! that is killed is resumed by the next one.
//!
//! Shows: one `Mirror` kept across rounds (its journal holds the state directory's lock and
//! stays current), plans that become no-ops, and what a scheduler loop around mirror-core
//! looks like.
//!
//! Run: `cargo run -p examples --example periodic_mirror` (ROUNDS and INTERVAL_SECS to change
//! the defaults of 3 rounds 1 s apart).

use std::time::Duration;

use bitbucket_cloud_client::sandbox::SandboxRepository;
use examples::connect;

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
    // Keep this directory between runs (a volume, a CI cache): it is what makes runs resumable.
    let state = tempfile::tempdir()?;
    let mirror = env.mirror(&config, state.path())?;

    let mut ticker = tokio::time::interval(interval);
    for round in 1..=rounds {
        ticker.tick().await;
        // Only the orgs with work left are read: a round over a mirrored estate is cheap.
        let plan = mirror.plan().await?;
        let report = mirror.apply(&plan).await?;
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
