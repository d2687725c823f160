//! `sync` and `apply`: plan, ask when asked to, apply, report; `sync --watch` again and again.

use mirror_render::Render as _;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use mirror_core::{Mirror, Plan, Report};
use tokio::sync::watch;

use crate::commands::plan::{make_plan, plan_text, show_plan};
use crate::context::{Ctx, colour, interrupted, stop_on_ctrl_c, stop_on_ctrl_c_into};
use crate::exit;
use crate::output::Out;
use bitbucket_cloud_client::api_support;

/// Whether to ask before applying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Never ask (sync, `--yes`, a saved plan the user already reviewed).
    No,
    /// Ask when stdin and stderr are a terminal.
    OnTerminal,
}

/// Asks on `output` whether to apply, reading one line from `input`: yes only for `y` or `yes`.
pub fn ask(input: &mut impl std::io::BufRead, output: &mut impl std::io::Write) -> bool {
    let _ = write!(output, "Apply this plan? [y/N] ");
    let _ = output.flush();
    let mut answer = String::new();
    if input.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// One sync (or apply of a given plan), asking first when `confirm` says so.
pub async fn sync_once(ctx: &Ctx, out: Out, given: Option<Plan>, confirm: Confirm) -> Result<u8> {
    let (stop, stopped) = watch::channel(false);
    let mirror = ctx
        .builder()
        .observer(out.progress())
        .stop_when(stopped)
        .build()?;
    let plan = match given {
        Some(p) => p,
        // Ctrl-C while reading: nothing was done yet, so stop at once.
        None => tokio::select! {
            plan = make_plan(&mirror, out) => plan?,
            true = interrupted() => exit_interrupted(),
        },
    };
    let asking = confirm == Confirm::OnTerminal
        && !plan.is_noop()
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if asking {
        // The summary, then the question: the whole plan is one `plan` away.
        let options = mirror_render::RenderOptions::default()
            .summary_only(true)
            .colour(colour(true));
        eprint!("{}", plan_text(&plan, options));
        eprintln!("(`bb-snyk-mirror plan` shows every action; --yes applies without asking)");
        if !ask_or_interrupted().await {
            eprintln!("Not applied; nothing changed.");
            return Ok(exit::OK);
        }
    } else {
        show_plan(out, &plan);
    }
    // From here on, Ctrl-C lets the imports in flight finish.
    stop_on_ctrl_c_into(stop);
    run_plan(&mirror, out, &plan).await
}

/// Asks whether to apply; Ctrl-C (or SIGTERM) while asking ends the process at once with exit
/// 4, nothing done (the question's blocking read cannot be taken back, so the process exits
/// rather than return).
pub async fn ask_or_interrupted() -> bool {
    let answer =
        tokio::task::spawn_blocking(|| ask(&mut std::io::stdin().lock(), &mut std::io::stderr()));
    tokio::select! {
        answer = answer => answer.unwrap_or(false),
        true = interrupted() => exit_interrupted(),
    }
}

/// Ends the process with exit 4 before anything was applied.
pub fn exit_interrupted() -> ! {
    eprintln!("\nInterrupted: nothing was applied.");
    std::process::exit(i32::from(exit::INTERRUPTED))
}

/// Applies `plan` with a progress display; prints the report and returns its exit code.
pub async fn run_plan(mirror: &Mirror, out: Out, plan: &Plan) -> Result<u8> {
    let report = mirror.apply(plan).await;
    Ok(print_report(out, plan, &report?))
}

/// Prints a report and returns the exit code it means.
pub fn print_report(out: Out, plan: &Plan, report: &Report) -> u8 {
    let code = exit::for_report(report);
    // --quiet prints only errors: the report when something failed, else nothing.
    if out.quiet && out.human() && code == exit::OK {
        return code;
    }
    if out.human() {
        print!("{}{}", report.render(), crate::advice::for_report(report));
    } else {
        println!(
            "{}",
            serde_json::json!({"summary": plan.summary(), "report": report, "exit_code": code})
        );
    }
    code
}

pub async fn watch_loop(ctx: &Ctx, out: Out, interval: Duration) -> Result<u8> {
    let stop = stop_on_ctrl_c();
    // One mirror for every round: it holds the state directory, and its journal stays current.
    let mirror = ctx
        .builder()
        .observer(out.progress())
        .stop_when(stop.clone())
        .build()?;
    let mut failures: u32 = 0;
    loop {
        let round = async {
            let plan = make_plan(&mirror, out).await?;
            show_plan(out, &plan);
            run_plan(&mirror, out, &plan).await
        }
        .await;
        if *stop.borrow() {
            return Ok(exit::INTERRUPTED);
        }
        let wait = match round {
            Ok(code) => {
                failures = 0;
                out.status(&format!(
                    "next sync in {}s (exit code of this one: {code}); Ctrl-C or SIGTERM to stop",
                    interval.as_secs()
                ));
                interval
            }
            // A configuration error stays one until someone fixes it: the watch ends.
            Err(e) if crate::api_kind::kind_of(&e) == Some(api_support::ErrorKind::Config) => {
                return Err(e);
            }
            // Anything else (an API down, a token expired) may pass: log it, back off, go on.
            Err(e) => {
                failures += 1;
                let wait = retry_after_failure(failures, interval);
                eprintln!(
                    "{}",
                    mirror_core::fit_screen(&format!(
                        "this sync failed ({failures} in a row): {e:#}\nnext try in {}s; Ctrl-C or SIGTERM to stop",
                        wait.as_secs()
                    ))
                );
                wait
            }
        };
        let mut waiting = stop.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = waiting.changed() => return Ok(exit::INTERRUPTED),
        }
    }
}

/// How long a watch waits after `failures` failed rounds in a row: 30 s, doubling, never
/// longer than its interval.
pub fn retry_after_failure(failures: u32, interval: Duration) -> Duration {
    bitbucket_cloud_client::api_support::Backoff::new(Duration::from_secs(30), interval)
        .after(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_applies() {
        for (typed, yes) in [
            ("y\n", true),
            ("YES\n", true),
            ("\n", false),
            ("no\n", false),
            ("", false),
        ] {
            let mut shown = Vec::new();
            assert_eq!(ask(&mut typed.as_bytes(), &mut shown), yes, "{typed:?}");
            assert_eq!(String::from_utf8(shown).unwrap(), "Apply this plan? [y/N] ");
        }
    }

    #[test]
    fn a_failing_watch_backs_off_within_its_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(retry_after_failure(1, hour), Duration::from_secs(30));
        assert_eq!(retry_after_failure(3, hour), Duration::from_secs(120));
        assert_eq!(retry_after_failure(30, hour), hour);
        assert_eq!(
            retry_after_failure(1, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
