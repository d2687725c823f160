//! `runs` (what each run of this state directory did) and `undo RUN_ID` (reactivate what a run
//! deactivated).

use anyhow::Result;
use mirror_render::Render as _;

use crate::cli::Global;
use crate::commands::sync::{Confirm, sync_once};
use crate::context::Ctx;
use crate::exit;
use crate::output::Out;
use crate::settings;

/// `runs`: the journal's runs, oldest first. Reads the state directory only.
pub fn list(g: &Global, out: Out) -> Result<u8> {
    let dir = settings::state_dir(g);
    let runs = mirror_core::runs::runs(&dir)?;
    if !out.human() {
        println!(
            "{}",
            serde_json::json!({"runs": runs, "exit_code": exit::OK})
        );
        return Ok(exit::OK);
    }
    if runs.is_empty() {
        println!("No runs in {} yet.", dir.display());
        return Ok(exit::OK);
    }
    println!(
        "{:<22} {:<24} {:>5} {:>8} {:>7} {:>11} {:>7} {:>8} {:>11}  finished",
        "run",
        "started",
        "orgs",
        "imports",
        "failed",
        "deactivated",
        "deleted",
        "branches",
        "reactivated"
    );
    for r in &runs {
        println!(
            "{:<22} {:<24} {:>5} {:>8} {:>7} {:>11} {:>7} {:>8} {:>11}  {}",
            r.id,
            r.started,
            r.orgs_created,
            r.imports,
            r.imports_failed,
            r.deactivated,
            r.deleted,
            r.branches,
            r.reactivated,
            if r.finished { "yes" } else { "no" }
        );
    }
    println!("`bb-snyk-mirror undo RUN` reactivates what a run deactivated.");
    Ok(exit::OK)
}

/// `undo RUN_ID`: the plan that reactivates what the run deactivated, shown, then applied
/// (asking first on a terminal unless `--yes`); what cannot be undone is named.
pub async fn undo(g: &Global, out: Out, run: &str, yes: bool, dry_run: bool) -> Result<u8> {
    let ctx = Ctx::from_env(g)?;
    let (plan, cannot) = {
        let mirror = ctx.mirror()?;
        mirror.undo_plan(run.trim()).await?
    };
    if out.human() {
        for line in &cannot {
            eprintln!("! {line}");
        }
    }
    if plan.actions.is_empty() {
        if out.human() {
            println!("Nothing of run {run} is left to reactivate.");
        } else {
            println!(
                "{}",
                serde_json::json!({"plan": plan, "cannot": cannot, "exit_code": exit::OK})
            );
        }
        return Ok(exit::OK);
    }
    if dry_run {
        if out.human() {
            print!("{}", plan.render());
        } else {
            println!(
                "{}",
                serde_json::json!({"plan": plan, "cannot": cannot, "exit_code": exit::OK})
            );
        }
        return Ok(exit::OK);
    }
    let confirm = if yes {
        Confirm::No
    } else {
        Confirm::OnTerminal
    };
    sync_once(&ctx, out, Some(plan), confirm).await
}
