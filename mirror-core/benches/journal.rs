//! The journal benchmark: how long `serve` or `sync` takes to open (replay) the state of a
//! 100 × 1,000 estate after a year of webhook deliveries, before and after compaction, and how
//! much memory that takes. Each opening runs in a fresh process, so its peak memory (`VmHWM`)
//! is its own.
//!
//! ```text
//! cargo bench -p mirror-core --bench journal
//! cargo bench -p mirror-core --bench journal -- --imports 100000 --deliveries-per-day 2000
//! cargo bench -p mirror-core --bench journal -- --imports 0 --deliveries-per-day 1000000 --days 1
//! ```

use std::process::{Command, ExitCode};
use std::time::Instant;

#[path = "../tests/common/journal_gen.rs"]
mod journal_gen;

use journal_gen::{Shape, write_journal};
use mirror_core::advanced::journal::Journal;

fn memory(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The child's part: open the journal (and compact it when `compact`), print the time and the
/// peak memory.
fn open(dir: &str, compact: bool) -> ExitCode {
    let start = Instant::now();
    let journal = match Journal::open(std::path::Path::new(dir), None) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("journal bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if compact && let Err(e) = journal.compact(&|_| {}) {
        eprintln!("journal bench: {e}");
        return ExitCode::FAILURE;
    }
    let elapsed = start.elapsed();
    let events = journal.with_state(|s| s.events);
    println!(
        "{:.2} s | {:.0} MiB | {events} events",
        elapsed.as_secs_f64(),
        memory("VmHWM:") as f64 / 1024.0
    );
    ExitCode::SUCCESS
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--open") {
        return open(&args[i + 1], false);
    }
    if let Some(i) = args.iter().position(|a| a == "--open-and-compact") {
        return open(&args[i + 1], true);
    }
    let imports = arg("--imports", 100_000);
    let per_day = arg("--deliveries-per-day", 2_000);
    let days = arg("--days", 365) as u64;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let shape = Shape {
        orgs: 100,
        imports,
        deliveries: per_day * days as usize,
        days,
        pending: 10,
    };
    write_journal(dir.path(), &shape);
    let path = dir
        .path()
        .join(mirror_core::advanced::journal::JOURNAL_FILE);
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
    let child_with = |mode: &str| {
        let out = Command::new(std::env::current_exe().expect("this benchmark"))
            .args([mode, &dir.path().display().to_string()])
            .output()
            .expect("the child runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let child = || child_with("--open");
    println!(
        "journal benchmark: {imports} imports in 100 orgs, {per_day} deliveries a day for {days} days ({} deliveries)\n",
        shape.deliveries
    );
    println!("| journal | size | open (replay) | peak RSS | events |");
    println!("|---|---|---|---|---|");
    println!(
        "| as written, never compacted | {:.0} MB | {} |",
        size(&path),
        child()
    );
    // A copy, opened and compacted in a child: the peak a compaction adds to an opened state.
    let copy = tempfile::tempdir().expect("a temporary directory");
    std::fs::copy(
        &path,
        copy.path()
            .join(mirror_core::advanced::journal::JOURNAL_FILE),
    )
    .expect("a copy of the journal");
    let out = Command::new(std::env::current_exe().expect("this benchmark"))
        .args(["--open-and-compact", &copy.path().display().to_string()])
        .output()
        .expect("the child runs");
    println!(
        "| opened, then compacted | | {} |",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    let journal = Journal::open(dir.path(), None).expect("the journal opens");
    let start = Instant::now();
    let done = journal.compact(&|_| {}).expect("compaction");
    let took = start.elapsed();
    drop(journal);
    println!("| compacted | {:.0} MB | {} |", size(&path), child());
    println!(
        "\ncompaction: {:.1} s, {} lines to {}, {:.0} MB to {:.0} MB",
        took.as_secs_f64(),
        done.lines_before,
        done.lines_after,
        done.bytes_before as f64 / 1e6,
        done.bytes_after as f64 / 1e6
    );
    ExitCode::SUCCESS
}
