//! plan, apply, sync, demo.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bitbucket_cloud_client::{Auth, BitbucketClient};
use mirror_core::adapters::{BitbucketAdapter, SnykAdapter};
use mirror_core::{Config, Mirror, Plan, Report};
use snyk_client::{PollPolicy, SnykAuth, SnykClient};
use tokio::sync::watch;

use crate::cli::{Cli, Command, Global};
use crate::output::Out;
use crate::{Usage, compat, exit, settings};
use bitbucket_cloud_client::api_support;

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
        Command::Doctor => crate::doctor::doctor(g, out).await,
        Command::Runs => crate::runs::list(g, out),
        Command::Verify => crate::verify::command(&Ctx::from_env(g)?, out).await,
        Command::Undo { run, yes, dry_run } => crate::runs::undo(g, out, run, *yes, *dry_run).await,
        Command::Serve {
            listen,
            reconcile_interval,
            drain_timeout,
            max_connections,
            set_aside_after,
        } => {
            let options = crate::serve::ServeOptions {
                reconcile_every: parse_interval_named(reconcile_interval, "--reconcile-interval")?,
                max_connections: *max_connections,
                set_aside_after: *set_aside_after,
            };
            let drain = parse_interval_named(drain_timeout, "--drain-timeout")?;
            crate::serve::command(g, out, listen, options, drain).await
        }
        Command::Deliveries => crate::deliveries::list(g, out),
        Command::Hooks { action } => crate::hooks::run(g, out, action).await,
        Command::Demo {
            action:
                Some(crate::cli::DemoAction::Change {
                    change,
                    repository,
                    to,
                }),
            ..
        } => crate::practice::change(g, out, *change, repository, to.as_deref()).await,
        Command::Demo { estate, serve, .. } => demo(out, *estate, *serve).await,
        Command::Completions { .. } => Ok(exit::OK),
        Command::Integrations { action } => crate::integrations::run(g, out, action).await,
        Command::OrgsData(a) => compat::orgs_data(g, out, a).await,
        Command::OrgsCreate(a) => compat::orgs_create(g, out, a).await,
        Command::ImportData(a) => compat::import_data(g, out, a).await,
        Command::ListImported(a) => compat::list_imported(g, out, a).await,
        Command::Import(a) => compat::import(g, out, a).await,
    }
}

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

fn parse_interval(text: &str) -> Result<Duration> {
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

/// Reads both sides (with a spinner on a terminal) and plans.
async fn make_plan(mirror: &Mirror, out: Out) -> Result<Plan> {
    let spinner = out.spinner("reading Bitbucket and Snyk…");
    let plan = mirror.plan().await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(plan?)
}

/// Refuses a `plan --out` file that exists, unless `force` and it holds a plan: a file that is
/// not a plan (the configuration, say) is never replaced.
fn check_plan_file(path: &Path, force: bool) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return match path.try_exists() {
            Ok(false) => Ok(()),
            _ => Err(Usage(format!(
                "{} exists and is not a plan: it is not replaced; choose another --out file",
                path.display()
            ))
            .into()),
        };
    };
    if Plan::from_json(&text).is_err() {
        return Err(Usage(format!(
            "{} exists and is not a plan: it is not replaced; choose another --out file",
            path.display()
        ))
        .into());
    }
    if !force {
        return Err(Usage(format!(
            "{} holds an earlier plan: add --force to replace it, or choose another --out file",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// Where a plan is made: this run's Bitbucket and Snyk.
fn origin(ctx: &Ctx) -> mirror_core::plan::PlanOrigin {
    mirror_core::plan::PlanOrigin {
        bitbucket: ctx
            .bitbucket
            .client()
            .http()
            .base_url()
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
        snyk: ctx.snyk.client().host().trim_end_matches('/').to_owned(),
    }
}

/// How long a saved plan may be applied after it was made. Older plans are refused: Bitbucket
/// and Snyk have likely moved on, and a fresh plan costs only a listing.
pub const SAVED_PLAN_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Refuses a saved plan made for another group, or more than [`SAVED_PLAN_MAX_AGE`] ago (or
/// without the time it was made, or dated in the future), naming what to do instead.
fn check_saved_plan(plan: &Plan, ctx: &Ctx, path: &Path, now: std::time::SystemTime) -> Result<()> {
    let shown = path.display();
    if plan.group_id != ctx.config.snyk.group_id {
        return Err(Usage(format!(
            "{shown} was made for group {}, and this run is for group {}: make a new plan with `bb-snyk-mirror plan --out {shown}`, or set SNYK_GROUP_ID to the plan's group",
            plan.group_id, ctx.config.snyk.group_id
        ))
        .into());
    }
    let here = origin(ctx);
    match &plan.made_against {
        Some(there) if *there == here => {}
        Some(there) => {
            return Err(Usage(format!(
                "{shown} was made against Bitbucket {} and Snyk {}, and this run is against Bitbucket {} and Snyk {}: make a new plan here with `bb-snyk-mirror plan --out {shown}`",
                there.bitbucket, there.snyk, here.bitbucket, here.snyk
            ))
            .into());
        }
        None => {
            return Err(Usage(format!(
                "{shown} does not say which Bitbucket and Snyk it was made against (an older version wrote it): make a new one with `bb-snyk-mirror plan --out {shown}`"
            ))
            .into());
        }
    }
    let made = plan
        .created_at
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let age = made.map(|m| now.duration_since(m));
    match age {
        Some(Ok(age)) if age <= SAVED_PLAN_MAX_AGE => Ok(()),
        Some(Ok(age)) => Err(Usage(format!(
            "{shown} was made {} ago; plans older than 24 hours are not applied, because Bitbucket and Snyk have likely changed since: make a new one with `bb-snyk-mirror plan --out {shown}`",
            humantime::format_duration(Duration::from_secs(age.as_secs() / 60 * 60))
        ))
        .into()),
        Some(Err(_)) => Err(Usage(format!(
            "{shown} is dated in the future ({}): check this machine's clock, or make a new plan",
            plan.created_at.as_deref().unwrap_or_default()
        ))
        .into()),
        None => Err(Usage(format!(
            "{shown} does not say when it was made (an older version wrote it): make a new one with `bb-snyk-mirror plan --out {shown}`"
        ))
        .into()),
    }
}

/// Whether to ask before applying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Never ask (sync, `--yes`, a saved plan the user already reviewed).
    No,
    /// Ask when stdin and stderr are a terminal.
    OnTerminal,
}

/// Asks on `output` whether to apply, reading one line from `input`: yes only for `y` or `yes`.
fn ask(input: &mut impl std::io::BufRead, output: &mut impl std::io::Write) -> bool {
    let _ = write!(output, "Apply this plan? [y/N] ");
    let _ = output.flush();
    let mut answer = String::new();
    if input.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Whether colour may be used on a stream that is a terminal: not when NO_COLOR is set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A plan read fresh from both sides, without taking the journal's lock (planning and
/// verifying may run beside a sync). With `kept`, orgs the group's audit log shows unchanged
/// since their last read answer from it (`snyk.full_read_every`); `verify` reads every org.
pub async fn read_plan(ctx: &Ctx, out: Out, kept: bool) -> Result<Plan> {
    let history = mirror_core::journal::read_state(&ctx.state_dir)?.history();
    let spinner = out.spinner("reading Bitbucket and Snyk…");
    let bitbucket = mirror_core::listing::Incremental::new(
        ctx.bitbucket.clone(),
        &ctx.state_dir,
        ctx.config.source.full_every(),
    );
    let full_every = if kept {
        ctx.config.snyk.full_every()
    } else {
        Duration::ZERO
    };
    let snyk = mirror_core::snyk_listing::KeptSnyk::new(
        ctx.snyk.clone(),
        &ctx.state_dir,
        &ctx.config.snyk.group_id,
        full_every,
    );
    let inventory =
        mirror_core::advanced::gather_for(&ctx.config, &bitbucket, &snyk, &history).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(mirror_core::advanced::plan(
        &ctx.config,
        &inventory?,
        &history,
    ))
}

async fn plan_command(ctx: &Ctx, out: Out, file: Option<&Path>, summary: bool) -> Result<u8> {
    let mut plan = read_plan(ctx, out, true).await?;
    plan.created_at =
        Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    plan.made_against = Some(origin(ctx));
    if let Some(path) = file {
        std::fs::write(path, plan.to_json()?)
            .map_err(|e| Usage(format!("cannot write {}: {e}", path.display())))?;
        out.status(&format!("plan written to {}", path.display()));
    }
    if out.human() {
        let options = mirror_core::plan::RenderOptions::default()
            .summary_only(summary)
            .colour(colour(std::io::stdout().is_terminal()));
        print!("{}", plan_text(&plan, options));
    } else {
        println!(
            "{}",
            serde_json::json!({"plan": plan, "summary": plan.summary(), "exit_code": 0})
        );
    }
    Ok(exit::OK)
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
        let options = mirror_core::plan::RenderOptions::default()
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
async fn ask_or_interrupted() -> bool {
    let answer =
        tokio::task::spawn_blocking(|| ask(&mut std::io::stdin().lock(), &mut std::io::stderr()));
    tokio::select! {
        answer = answer => answer.unwrap_or(false),
        true = interrupted() => exit_interrupted(),
    }
}

/// Ends the process with exit 4 before anything was applied.
fn exit_interrupted() -> ! {
    eprintln!("\nInterrupted: nothing was applied.");
    std::process::exit(i32::from(exit::INTERRUPTED))
}

/// The plan on stderr for people (stdout carries the report); nothing with --quiet.
fn show_plan(out: Out, plan: &Plan) {
    if out.human() && !out.quiet {
        // Skips are counted by reason; a run of a mirrored estate is not a page per repository.
        let options = mirror_core::plan::RenderOptions::default()
            .colour(colour(std::io::stderr().is_terminal()))
            .without_skips(!out.verbose);
        // Before applying, only an estate already equal gets its closing line: what differs
        // now is what this sync changes.
        let text = if mirror_core::Verification::of(plan).holds() {
            plan_text(plan, options)
        } else {
            format!(
                "{}{}",
                plan.render_with(options),
                crate::advice::for_plan(plan)
            )
        };
        eprint!("{text}");
    }
}

/// A plan for people as `options` ask, with the hints its conflicts call for.
fn plan_text(plan: &Plan, options: mirror_core::plan::RenderOptions) -> String {
    format!(
        "{}{}{}",
        plan.render_with(options),
        crate::advice::for_plan(plan),
        closing(plan)
    )
}

/// The plan's closing line on both sides, when it read Snyk in full: "Snyk equals Bitbucket
/// …" only when every difference is explained, else how many are not.
fn closing(plan: &Plan) -> String {
    if plan.compared.is_none() {
        return String::new();
    }
    format!("{}\n", mirror_core::Verification::of(plan).closing_line())
}

/// Applies `plan` with a progress display; prints the report and returns its exit code.
async fn run_plan(mirror: &Mirror, out: Out, plan: &Plan) -> Result<u8> {
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

async fn watch_loop(ctx: &Ctx, out: Out, interval: Duration) -> Result<u8> {
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
fn retry_after_failure(failures: u32, interval: Duration) -> Duration {
    bitbucket_cloud_client::api_support::Backoff::new(Duration::from_secs(30), interval)
        .after(failures)
}

async fn demo(out: Out, estate: Option<(usize, usize)>, serve: bool) -> Result<u8> {
    use bitbucket_cloud_client::sandbox as bb_sandbox;
    use snyk_client::sandbox as snyk_sandbox;

    let bb = match estate {
        None => bb_sandbox::Sandbox::start_sample().await?,
        Some((w, r)) => {
            bb_sandbox::Sandbox::builder()
                .estate(bb_sandbox::Estate::generate(w, r, 7))
                .api_token(bb_sandbox::SAMPLE_EMAIL, bb_sandbox::SAMPLE_API_TOKEN)
                .start()
                .await?
        }
    };
    let snyk = snyk_sandbox::Sandbox::sample_builder()
        .import_delay(Duration::from_millis(300))
        .start()
        .await?;
    if serve {
        return serve_sandboxes(&bb, &snyk).await;
    }
    let state = tempfile::tempdir()?;
    let config = Config::from_toml(&format!("[snyk]\ngroup_id = \"{}\"\n", snyk.group_id()))?;
    let ctx = Ctx {
        config,
        bitbucket: Arc::new(BitbucketAdapter::new(
            BitbucketClient::builder()
                .base_url(bb.base_url())
                .auth(Auth::api_token(
                    bb_sandbox::SAMPLE_EMAIL,
                    bb_sandbox::SAMPLE_API_TOKEN,
                ))
                .build()?,
        )),
        snyk: Arc::new(
            SnykAdapter::new(
                SnykClient::builder()
                    .api_url(snyk.api_url())
                    .auth(SnykAuth::token(snyk_sandbox::SAMPLE_TOKEN))
                    .poll(PollPolicy {
                        first_delay: Duration::from_millis(200),
                        max_delay: Duration::from_secs(1),
                        ..PollPolicy::default()
                    })
                    .build()?,
            )
            .with_bitbucket_credentials(
                bb_sandbox::SAMPLE_EMAIL,
                bb_sandbox::SAMPLE_API_TOKEN.into(),
            ),
        ),
        state_dir: state.path().to_path_buf(),
    };
    if out.human() {
        println!(
            "bb-snyk-mirror demo: a sample Bitbucket Cloud estate mirrored into a sample Snyk group."
        );
        println!("  fake Bitbucket Cloud  {}", bb.base_url());
        println!("  fake Snyk             {}", snyk.api_url());
        println!("Nothing leaves this machine. First run:\n");
    }
    let mirror = ctx.builder().observer(out.progress()).build()?;
    let plan = make_plan(&mirror, out).await?;
    if out.human() {
        // A generated estate's plan is long: its summary says enough.
        let options = mirror_core::plan::RenderOptions::default()
            .summary_only(estate.is_some())
            .colour(colour(std::io::stdout().is_terminal()));
        println!("{}", plan.render_with(options));
    }
    let code = run_plan(&mirror, out, &plan).await?;
    // The second plan sees what the first run journaled.
    let second = make_plan(&mirror, out).await?;
    if out.human() {
        let s = second.summary();
        println!(
            "\nSecond run, right after: {} orgs to create, {} repositories to import ({} skipped as already imported or empty).",
            s.orgs_to_create,
            s.imports,
            s.skipped.values().sum::<usize>()
        );
    }
    // The drift round changes repositories of the sample estate.
    let code = if estate.is_none() {
        let code = code.max(drift_round(&bb, &mirror, out).await?);
        // `serve` takes the state directory's lock itself.
        drop(mirror);
        code.max(realtime_round(&bb, &snyk, &ctx, out).await?)
    } else {
        code
    };
    if out.human() {
        println!(
            "\nTry it for real: set BITBUCKET_CLOUD_EMAIL, BITBUCKET_CLOUD_API_TOKEN, SNYK_TOKEN and SNYK_GROUP_ID, then run `bb-snyk-mirror plan`."
        );
    }
    Ok(code)
}

/// `demo --serve`: prints the environment that points the tool at both sandboxes, then keeps
/// them up until Ctrl-C or SIGTERM.
async fn serve_sandboxes(
    bb: &bitbucket_cloud_client::sandbox::Sandbox,
    snyk: &snyk_client::sandbox::Sandbox,
) -> Result<u8> {
    use bitbucket_cloud_client::sandbox as bb_sandbox;
    let state = std::env::temp_dir().join(format!("bb-snyk-mirror-demo-{}", std::process::id()));
    let vars = [
        ("BITBUCKET_CLOUD_API_URL", bb.base_url()),
        ("BITBUCKET_CLOUD_EMAIL", bb_sandbox::SAMPLE_EMAIL.to_owned()),
        (
            "BITBUCKET_CLOUD_API_TOKEN",
            bb_sandbox::SAMPLE_API_TOKEN.to_owned(),
        ),
        ("SNYK_API", snyk.api_url()),
        ("SNYK_TOKEN", snyk_client::sandbox::SAMPLE_TOKEN.to_owned()),
        ("SNYK_GROUP_ID", snyk.group_id()),
        ("SNYK_BITBUCKET_EMAIL", bb_sandbox::SAMPLE_EMAIL.to_owned()),
        (
            "SNYK_BITBUCKET_API_TOKEN",
            bb_sandbox::SAMPLE_API_TOKEN.to_owned(),
        ),
        ("SNYK_LOG_PATH", state.display().to_string()),
    ];
    println!("The sandboxes are up (fake Bitbucket Cloud and fake Snyk, on this machine only).");
    println!("In another terminal, paste these lines (sample credentials, not secrets):\n");
    for (name, value) in &vars {
        println!("export {name}='{value}'");
    }
    println!(
        "\nthen try: bb-snyk-mirror doctor; bb-snyk-mirror plan --out plan.json; bb-snyk-mirror apply --plan plan.json; bb-snyk-mirror integrations list"
    );
    println!(
        "and change Bitbucket as it changes: bb-snyk-mirror demo change rename acme-data/notebooks notebooks-v2 (also transfer, branch, delete, create), then plan or sync again"
    );
    println!("Ctrl-C here stops the sandboxes.");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    interrupted().await;
    Ok(exit::OK)
}

/// The demo's second act: Bitbucket changes (a rename, a deletion, a new default branch, a new
/// repository), the plan names each change, a sync follows them, and a last plan has nothing
/// to do.
async fn drift_round(
    bb: &bitbucket_cloud_client::sandbox::Sandbox,
    mirror: &Mirror,
    out: Out,
) -> Result<u8> {
    use bitbucket_cloud_client::sandbox::SandboxRepository;
    bb.rename_repository("acme-platform", "web-frontend", "web-app");
    bb.delete_repository("acme-data", "ml-models");
    bb.set_main_branch("acme-mobile", "android-app", "develop");
    bb.add_repository(
        "acme-mobile",
        SandboxRepository::new("wear-app", "{00000000-0000-4000-8000-00000000d3e0}"),
    );
    if out.human() {
        println!(
            "\nMeanwhile in Bitbucket: acme-platform/web-frontend was renamed web-app, acme-data/ml-models was deleted, acme-mobile/android-app now defaults to develop, and acme-mobile/wear-app was created. The next sync plans:\n"
        );
    }
    let plan = make_plan(mirror, out).await?;
    if out.human() {
        for line in plan.render().lines().map(str::trim_start).filter(|l| {
            ["~ ", "→ ", "- ", "⇄ ", "+ import", "! ", "? "]
                .iter()
                .any(|p| l.starts_with(p))
        }) {
            println!("{line}");
        }
        println!();
    }
    let code = run_plan(mirror, out, &plan).await?;
    let after = make_plan(mirror, out).await?;
    if out.human() {
        let verification = mirror_core::Verification::of(&after);
        println!(
            "\nAnd right after, both sides read again: {}.",
            verification.closing_line()
        );
    }
    Ok(code)
}

/// The demo's third act: `serve` runs on this machine, the sandbox's workspace gets its webhook
/// (as `hooks install` does), a repository is created, and Snyk receives its import a moment
/// later.
async fn realtime_round(
    bb: &bitbucket_cloud_client::sandbox::Sandbox,
    snyk: &snyk_client::sandbox::Sandbox,
    ctx: &Ctx,
    out: Out,
) -> Result<u8> {
    use bitbucket_cloud_client::sandbox::SandboxRepository;
    use bitbucket_cloud_client::webhooks::WebhookSpec;
    const IMPORT: &str = "POST /v1/org/{orgId}/integrations/{integrationId}/import";
    let secret = secrecy::SecretString::from("demo-webhook-secret");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::serve::start(
        ctx,
        vec![secret.clone()],
        listener,
        crate::serve::ServeOptions::default(),
    )?;
    let url = format!("http://{}{}", running.addr, crate::serve::WEBHOOK_PATH);
    let ready = running.wait_reconciled(Duration::from_secs(30)).await;
    ctx.bitbucket
        .client()
        .install_workspace_hook("acme-mobile", &WebhookSpec::mirror(&url, secret))
        .await?;
    let before = snyk.stats().route(IMPORT);
    let created = std::time::Instant::now();
    bb.add_repository(
        "acme-mobile",
        SandboxRepository::new("watch-face", "{00000000-0000-4000-8000-00000000d3e1}"),
    );
    let mut after = None;
    while created.elapsed() < Duration::from_secs(10) {
        if snyk.stats().route(IMPORT) > before {
            after = Some(created.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (left, _) = running.shutdown(Duration::from_secs(10)).await;
    if out.human() {
        println!(
            "\nReal time: `bb-snyk-mirror serve` listens at {url}, and acme-mobile has its webhook."
        );
        match (ready, after) {
            (true, Some(t)) => println!(
                "acme-mobile/watch-face was created in Bitbucket; the signed repo:created delivery was queued, and Snyk received its import {} ms later{}.",
                t.as_millis(),
                if left == 0 {
                    ""
                } else {
                    " (some deliveries stay queued)"
                }
            ),
            _ => println!(
                "acme-mobile/watch-face was created in Bitbucket, but Snyk received no import within 10 seconds."
            ),
        }
    }
    Ok(if after.is_some() {
        exit::OK
    } else {
        exit::FAILURES
    })
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
