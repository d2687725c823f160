//! Journal compaction: the replayed state is the same after it, a process killed with SIGKILL
//! at any step of it loses nothing, and the journal goes on numbering after it.
//!
//! The kill test plays both parts as `crash.rs` does: the parent writes a journal, starts this
//! binary again running only `compaction_child` (which compacts and stops at a chosen step),
//! kills it there, and opens the journal again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mirror_core::advanced::journal::Journal;
use mirror_core::advanced::journal::{
    JOURNAL_FILE, JournalState, Step, compact::COMPACTING_FILE, read_state,
};

#[path = "common/journal_gen.rs"]
mod journal_gen;

use journal_gen::{Shape, write_journal};

const CHILD_ENV: &str = "MIRROR_COMPACTION_CHILD";

fn shape() -> Shape {
    Shape {
        orgs: 5,
        imports: 300,
        deliveries: 3_000,
        days: 30,
        pending: 4,
    }
}

/// The state without its event counters, which compaction changes by design.
fn comparable(mut s: JournalState) -> JournalState {
    s.events = 0;
    s.last_seq = 0;
    s
}

/// Four months of a service's deliveries (and 300 imports), all reconciled.
fn months_of_deliveries() -> Shape {
    Shape {
        orgs: 5,
        imports: 300,
        deliveries: 30_000,
        days: 120,
        pending: 0,
    }
}

/// Appends a journal of `shape` to `dir`'s, as its writer would have written it.
fn append(dir: &std::path::Path, shape: &Shape) {
    let more = tempfile::tempdir().unwrap();
    write_journal(more.path(), shape);
    let grown = std::fs::read(more.path().join(JOURNAL_FILE)).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(JOURNAL_FILE))
        .unwrap();
    std::io::Write::write_all(&mut file, &grown).unwrap();
}

#[test]
fn compaction_keeps_the_state_and_drops_what_it_no_longer_needs() {
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &shape());
    let before = read_state(dir.path()).unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let done = journal.compact(&|_| {}).unwrap();
    // 300 imports keep their finish (300 of 900 lines); of 3,000 deliveries over 30 days, the
    // last 25 hours' stay (about 105, each with its deliveries-done but the 4 pending).
    assert_eq!(done.lines_before, 900 + 3_000 + 2_996);
    assert!(
        done.lines_after < 600,
        "{done:?}: intents, acceptances and old deliveries go"
    );
    assert!(done.bytes_after * 5 < done.bytes_before, "{done:?}");
    assert_eq!(comparable(journal.state()), comparable(before.clone()));
    drop(journal);
    let after = read_state(dir.path()).unwrap();
    assert_eq!(comparable(after.clone()), comparable(before.clone()));
    assert_eq!(after.pending_deliveries, 4);
    // Numbering goes on after the last event, not after the count of those kept.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let journal = Journal::open(dir.path(), None).unwrap();
        journal
            .writer()
            .append(mirror_core::advanced::journal::Event::RunFinished)
            .await
            .unwrap();
    });
    let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.contains(&format!("\"seq\":{}", before.last_seq + 1)),
        "{last}"
    );
}

/// The child's part: compact, printing each step, and wait at the chosen one to be killed.
#[test]
fn compaction_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let stop_at = std::env::var("STOP_AT").unwrap();
    let journal = Journal::open(std::path::Path::new(&dir), None).unwrap();
    journal
        .compact(&|step| {
            let name = format!("{step:?}");
            println!("{name}");
            if name == stop_at {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        })
        .unwrap();
    println!("done");
}

#[test]
fn sigkill_at_any_step_of_a_compaction_loses_nothing() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    for step in [Step::HalfWritten, Step::Synced, Step::Renamed] {
        let dir = tempfile::tempdir().unwrap();
        write_journal(dir.path(), &shape());
        let expected = read_state(dir.path()).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "compaction_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("STOP_AT", format!("{step:?}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reached = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // The first print follows libtest's "test compaction_child ... " on its line.
            .any(|l| l.trim().ends_with(&format!("{step:?}")));
        assert!(reached, "the child never reached {step:?}");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let journal = Journal::open(dir.path(), None).unwrap();
        assert_eq!(
            comparable(journal.state()),
            comparable(expected.clone()),
            "killed at {step:?}"
        );
        assert!(
            !dir.path().join(COMPACTING_FILE).exists(),
            "{step:?}: the interrupted compaction's file is removed on open"
        );
        // And it compacts again from there.
        journal.compact(&|_| {}).unwrap();
        assert_eq!(comparable(journal.state()), comparable(expected));
    }
}

#[test]
fn the_journal_is_compacted_once_it_has_doubled_and_is_large() {
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &shape());
    let journal = Journal::open(dir.path(), None).unwrap();
    assert_eq!(
        journal.compact_if_grown().unwrap(),
        None,
        "small: left alone"
    );
    drop(journal);
    // Months of deliveries later, as the writers of later processes left them (compaction
    // reads the newest delivery's time from the replayed state, so the journal is opened
    // again, as the next process would).
    append(dir.path(), &months_of_deliveries());
    let journal = Journal::open(dir.path(), None).unwrap();
    let done = journal.compact_if_grown().unwrap().expect("compacted");
    assert!(done.bytes_after * 4 < done.bytes_before, "{done:?}");
    assert_eq!(
        journal.compact_if_grown().unwrap(),
        None,
        "not again until it grows"
    );
}

#[test]
fn a_journal_grown_across_many_processes_is_compacted_by_the_next_one() {
    // Scheduled syncs each open the journal, add a little and stop: none of them sees it
    // double while it runs. The size to grow from is the one the last compaction left, kept
    // beside the journal, not the size at opening.
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &months_of_deliveries());
    let journal = Journal::open(dir.path(), None).unwrap();
    let done = journal
        .compact_if_grown()
        .unwrap()
        .expect("never compacted and large: compacted");
    drop(journal);
    // The next process starts from the compacted size: a little more is left alone…
    let journal = Journal::open(dir.path(), None).unwrap();
    assert_eq!(journal.compact_if_grown().unwrap(), None);
    drop(journal);
    // …until the journal has doubled since, across processes.
    let size = |d: &std::path::Path| std::fs::metadata(d.join(JOURNAL_FILE)).unwrap().len();
    append(
        dir.path(),
        &Shape {
            orgs: 1,
            imports: 0,
            deliveries: 30_000,
            days: 1,
            pending: 0,
        },
    );
    assert!(size(dir.path()) >= 2 * done.bytes_after);
    let journal = Journal::open(dir.path(), None).unwrap();
    assert!(journal.compact_if_grown().unwrap().is_some());
}

#[test]
fn a_journal_with_nothing_to_drop_is_left_as_it_is() {
    // A day of deliveries, all reconciled, none older than the 25 hours their ids are kept:
    // a compaction has nothing to drop, and neither rewrites the file nor holds their ids.
    let dir = tempfile::tempdir().unwrap();
    write_journal(
        dir.path(),
        &Shape {
            orgs: 1,
            imports: 0,
            deliveries: 20_000,
            days: 1,
            pending: 0,
        },
    );
    let before = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
    let journal = Journal::open(dir.path(), None).unwrap();
    let steps = std::sync::Mutex::new(Vec::new());
    let done = journal
        .compact(&|step| steps.lock().unwrap().push(step))
        .unwrap();
    assert_eq!(done.lines_after, done.lines_before);
    assert!(
        steps.lock().unwrap().is_empty(),
        "no temporary file, no rename"
    );
    assert_eq!(
        std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap(),
        before
    );
    // Two days later, the first day's are dropped.
    drop(journal);
    append(
        dir.path(),
        &Shape {
            orgs: 1,
            imports: 0,
            deliveries: 20_000,
            days: 3,
            pending: 0,
        },
    );
    let journal = Journal::open(dir.path(), None).unwrap();
    let done = journal.compact(&|_| {}).unwrap();
    assert!(done.lines_after < done.lines_before, "{done:?}");
}
