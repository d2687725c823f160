//! The dispatcher: each command to its module.

use std::io::IsTerminal;

use anyhow::Result;
use mirror_core::Plan;

use crate::cli::{Cli, Command};
use crate::commands::compat;
use crate::commands::demo::demo;
use crate::commands::plan::{check_plan_file, check_saved_plan, plan_command};
use crate::commands::sync::{Confirm, sync_once, watch_loop};
use crate::context::{Ctx, parse_interval, parse_interval_named};
use crate::output::Out;
use crate::{Usage, exit, settings};

/// Runs the chosen command; returns the exit code.
pub async fn dispatch(cli: &Cli) -> Result<u8> {
    let out = Out::new(&cli.global);
    let g = &cli.global;
    match &cli.command {
        Command::Plan {
            out: file,
            summary,
            force,
        } => {
            let ctx = Ctx::from_env(g)?;
            if let Some(path) = file {
                check_plan_file(path, *force)?;
            }
            plan_command(&ctx, out, file.as_deref(), *summary || g.quiet).await
        }
        Command::Apply { dry_run: true, .. } | Command::Sync { dry_run: true, .. } => {
            let ctx = Ctx::from_env(g)?;
            plan_command(&ctx, out, None, g.quiet).await
        }
        Command::Apply { plan, yes, .. } => {
            let ctx = Ctx::from_env(g)?;
            match plan {
                Some(path) => {
                    let plan = Plan::from_json(&settings::read_file(path)?)
                        .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
                    check_saved_plan(&plan, &ctx, path, std::time::SystemTime::now())?;
                    sync_once(&ctx, out, Some(plan), Confirm::No).await
                }
                None if *yes => sync_once(&ctx, out, None, Confirm::No).await,
                // No one to ask (CI, cron, `< /dev/null`): refused rather than applied unasked.
                None if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) => {
                    Err(Usage(
                        "apply asks before it changes anything, and there is no terminal to ask on: add --yes to apply without asking, run `bb-snyk-mirror sync` (which never asks), or apply a plan you reviewed with `apply --plan FILE`".to_owned(),
                    )
                    .into())
                }
                None => sync_once(&ctx, out, None, Confirm::OnTerminal).await,
            }
        }
        Command::Sync {
            watch, interval, ..
        } => {
            let ctx = Ctx::from_env(g)?;
            if *watch {
                watch_loop(&ctx, out, parse_interval(interval)?).await
            } else {
                sync_once(&ctx, out, None, Confirm::No).await
            }
        }
        Command::Doctor => crate::commands::doctor::doctor(g, out).await,
        Command::Runs => crate::commands::runs::list(g, out),
        Command::Verify => crate::commands::verify::command(&Ctx::from_env(g)?, out).await,
        Command::Undo { run, yes, dry_run } => {
            crate::commands::runs::undo(g, out, run, *yes, *dry_run).await
        }
        Command::Serve {
            listen,
            reconcile_interval,
            drain_timeout,
            max_connections,
            set_aside_after,
        } => {
            let options = crate::commands::serve::ServeOptions {
                reconcile_every: parse_interval_named(reconcile_interval, "--reconcile-interval")?,
                max_connections: *max_connections,
                set_aside_after: *set_aside_after,
            };
            let drain = parse_interval_named(drain_timeout, "--drain-timeout")?;
            crate::commands::serve::command(g, out, listen, options, drain).await
        }
        Command::Deliveries => crate::commands::deliveries::list(g, out),
        Command::Hooks { action } => crate::commands::hooks::run(g, out, action).await,
        Command::Demo {
            action:
                Some(crate::cli::DemoAction::Change {
                    change,
                    repository,
                    to,
                }),
            ..
        } => crate::commands::practice::change(g, out, *change, repository, to.as_deref()).await,
        Command::Demo { estate, serve, .. } => demo(out, *estate, *serve).await,
        Command::Completions { .. } => Ok(exit::OK),
        Command::Integrations { action } => {
            crate::commands::integrations::run(g, out, action).await
        }
        Command::OrgsData(a) => compat::orgs_data(g, out, a).await,
        Command::OrgsCreate(a) => compat::orgs_create(g, out, a).await,
        Command::ImportData(a) => compat::import_data(g, out, a).await,
        Command::ListImported(a) => compat::list_imported(g, out, a).await,
        Command::Import(a) => compat::import(g, out, a).await,
    }
}
