//! `bb-snyk-mirror`: mirror Bitbucket Cloud workspaces and repositories into Snyk.
//!
//! The commands (`plan`, `apply`, `sync`, `doctor`, `demo` and snyk-api-import's) arrive with the
//! mirror-cli issue; until then the binary only names its version and says so.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let version = env!("CARGO_PKG_VERSION");
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!("bb-snyk-mirror {version}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "bb-snyk-mirror {version}: no command is available yet. The commands (plan, apply, \
                 sync, doctor, demo) arrive with the mirror-cli issue; the library crate \
                 api-support is usable today."
            );
            ExitCode::from(2)
        }
    }
}
