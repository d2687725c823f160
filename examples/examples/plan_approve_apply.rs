//! Plans, shows the plan, asks for confirmation, then applies: a custom approval step.
//!
//! Shows: a plan is a value to inspect (its summary, its actions) before anything changes.
//! Answer `yes` on standard input to apply; anything else changes nothing.
//!
//! Run: `cargo run -p examples --example plan_approve_apply` (or `echo yes | …`)

use std::sync::Arc;

use examples::connect;
use mirror_core::Journal;
use mirror_core::adapters::BitbucketAdapter;
use tokio::io::AsyncBufReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let config = env.config()?;
    let bitbucket = BitbucketAdapter::new(env.bitbucket.clone());
    let snyk = Arc::new(env.snyk_adapter());
    let state = tempfile::tempdir()?;
    let journal = Journal::open(state.path(), None)?;
    let inventory = mirror_core::gather(&config, &bitbucket, snyk.as_ref()).await?;
    let plan = mirror_core::plan(&config, &inventory, &journal.state().history());
    print!("{}", plan.render());
    let summary = plan.summary();
    println!(
        "Apply this plan ({} orgs, {} imports)? Type yes to go on:",
        summary.orgs_to_create, summary.imports
    );
    let mut answer = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut answer)
        .await?;
    if answer.trim() != "yes" {
        println!("Not applied; nothing changed.");
        return Ok(());
    }
    let report = mirror_core::apply(&plan, snyk, &journal, &config.apply, None, None).await?;
    print!("{}", report.render());
    Ok(())
}
