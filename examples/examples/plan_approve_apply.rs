//! Plans, shows the plan, asks for confirmation, then applies: a custom approval step.
//!
//! Shows: a plan is a value to inspect (its summary, its actions) before anything changes.
//! Answer `yes` on standard input to apply; anything else changes nothing.
//!
//! Run: `cargo run -p examples --example plan_approve_apply` (or `echo yes | …`)

use examples::connect;
use mirror_render::Render as _;
use tokio::io::AsyncBufReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let config = env.config()?;
    let state = tempfile::tempdir()?;
    let mirror = env.mirror(&config, state.path())?;
    let plan = mirror.plan().await?;
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
    let report = mirror.apply(&plan).await?;
    print!("{}", report.render());
    Ok(())
}
