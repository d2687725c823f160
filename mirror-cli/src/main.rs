//! `bb-snyk-mirror`: mirror Bitbucket Cloud workspaces and repositories into Snyk.
//!
//! The binary is the thin face over the crates: arguments, configuration, credentials from the
//! environment, output and exit codes. Run `bb-snyk-mirror --help`.
#![forbid(unsafe_code)]
// A binary: `pub` marks what modules share, not an API.
#![allow(unreachable_pub)]

// `print!`, `println!`, `eprint!` and `eprintln!` for the whole binary: a closed stream (`plan
// | head -2`) is ignored instead of panicking, so that a run goes on to its end and exits with
// its own code, as Unix tools do with a reader that has gone.
macro_rules! print {
    ($($t:tt)*) => { $crate::output::write_to(false, format_args!($($t)*), false) };
}
macro_rules! println {
    () => { $crate::output::write_to(false, format_args!(""), true) };
    ($($t:tt)*) => { $crate::output::write_to(false, format_args!($($t)*), true) };
}
macro_rules! eprint {
    ($($t:tt)*) => { $crate::output::write_to(true, format_args!($($t)*), false) };
}
macro_rules! eprintln {
    () => { $crate::output::write_to(true, format_args!(""), true) };
    ($($t:tt)*) => { $crate::output::write_to(true, format_args!($($t)*), true) };
}

mod advice;
mod cli;
mod commands;
mod completions;
mod context;
mod output;
mod run;
mod runlog;
mod settings;

use bitbucket_cloud_client::api_support;
use std::io::IsTerminal;
use std::process::ExitCode;

use api_kind::kind_of;

use crate::cli::Command;

/// A usage or configuration error: exit code 2, nothing changed.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Exit codes (defined beside the report they are read from).
pub mod exit;

mod api_kind {
    use bitbucket_cloud_client::ErrorKind;

    /// The kind of the first classified error in the chain.
    pub(crate) fn kind_of(e: &anyhow::Error) -> Option<ErrorKind> {
        e.chain().find_map(|c| {
            c.downcast_ref::<mirror_core::Error>()
                .map(|m| m.kind())
                .or_else(|| {
                    c.downcast_ref::<bitbucket_cloud_client::Error>()
                        .map(|b| b.kind())
                })
                .or_else(|| c.downcast_ref::<snyk_client::Error>().map(|s| s.kind()))
                .or_else(|| c.downcast_ref::<super::Usage>().map(|_| ErrorKind::Config))
        })
    }
}

/// The exit code for an error that ended a command.
fn exit_code(e: &anyhow::Error) -> u8 {
    kind_of(e).map_or(exit::FAILURES, exit::for_error)
}

/// Logging: to stderr for people (as -v, --quiet or RUST_LOG ask), and for the commands that
/// keep a state directory, to a per-run JSON-lines log in it (info, or debug with -vv;
/// redacted). Returns the run log, if any.
fn init_logging(cli: &cli::Cli) -> Option<runlog::RunLog> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (verbose, quiet) = (cli.global.verbose, cli.global.quiet);
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The run log's own lines (start, end, the error that ended the run) are shown on the
    // screen already, in words.
    if let Ok(directive) = format!("{}=off", runlog::TARGET).parse() {
        filter = filter.add_directive(directive);
    }
    let screen = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter);
    let log = cli
        .command
        .keeps_state()
        .then(|| runlog::RunLog::new(&settings::state_dir(&cli.global), cli.command.name()));
    let file = log.clone().map(|log| {
        let level = if verbose > 1 { "debug" } else { "info" };
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(log)
            .with_filter(tracing_subscriber::EnvFilter::new(format!(
                "{level},hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn"
            )))
    });
    let _ = tracing_subscriber::registry()
        .with(screen)
        .with(file)
        .try_init();
    log
}

fn main() -> ExitCode {
    let cli = cli::parse();
    let run_log = init_logging(&cli);
    if let Command::Completions { shell } = cli.command {
        print!("{}", completions::script(shell));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURES);
        }
    };
    let result = runtime.block_on(run::dispatch(&cli));
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            let mut message = format!("error: {e}");
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message.push_str(&format!("\n  caused by: {text}"));
                }
            }
            if let Some(hint) = advice::for_error(&e) {
                message.push_str(&format!("\n  ({hint})"));
            }
            if code == exit::AUTH {
                message.push_str(
                    "\n  (credentials rejected: run `bb-snyk-mirror doctor` for details)",
                );
            }
            if cli.global.output == cli::OutputFormat::Json {
                let doc = serde_json::json!({
                    "error": api_support::redact::redact(&e.to_string()),
                    "exit_code": code
                });
                println!("{doc}");
            }
            eprintln!("{}", mirror_core::fit_screen(&message));
            // A usage error leaves no log behind; anything else is recorded.
            if code != exit::USAGE {
                tracing::error!(target: runlog::TARGET, exit_code = code, error = %api_support::redact::redact(&message), "run failed");
            }
            code
        }
    };
    // Every run that got past its settings leaves a log; one refused as a usage error does not.
    if let Some(log) = &run_log
        && (code != exit::USAGE || log.path().is_some())
    {
        tracing::info!(target: runlog::TARGET, exit_code = code, "run finished");
    }
    ExitCode::from(code)
}
