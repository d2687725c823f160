//! Compaction: the journal rewritten without the events its replayed state no longer needs,
//! so that a service running for months starts in seconds.
//!
//! Two kinds of events are dropped, each only where the replay comes out the same:
//!
//! - an import's intent and acceptance once a later `import-finished` for the same org and
//!   repository settles it (the finish overwrites whatever they recorded);
//! - a delivery reconciled (named by a later `deliveries-done`) and older than
//!   [`DELIVERY_MEMORY_SECONDS`] before the newest delivery (its request id is forgotten by
//!   then anyway), with its id taken out of the `deliveries-done` that named it (dropped when
//!   none is left). Deliveries set aside are kept, so `deliveries` still counts them.
//!
//! Everything else stays, in order, with its sequence number and time: runs, drift, settings,
//! and what `runs` and `undo` read. The rewrite goes to a temporary file, synced, then renamed
//! over the journal (atomic), and the directory synced: a process killed at any point leaves
//! either the old journal or the new one, whole, and a stale temporary file is removed at the
//! next open. Writers wait meanwhile (it runs under the lock they write under).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::seen::{Key, key};
use super::{DELIVERY_MEMORY_SECONDS, DeliveryId, Event, JOURNAL_FILE, Line};
use crate::error::Error;
use crate::ids::OrgId;

/// The temporary file a compaction writes.
pub const COMPACTING_FILE: &str = "journal.jsonl.compacting";

/// Beside the journal: its size after the last compaction, in bytes (decimal), which the
/// next compaction waits for it to have grown from, across processes.
pub const COMPACTED_SIZE_FILE: &str = "journal.jsonl.compacted-size";

/// The journal is compacted once it has grown to this many times its size after the last
/// compaction (kept in [`COMPACTED_SIZE_FILE`]; zero when it was never compacted)…
pub const GROWTH: u64 = 2;
/// …and is at least this large.
pub const MIN_BYTES: u64 = 4 << 20;

/// A step of a compaction, told to an observer (crash tests stop the process there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Half of the kept lines are in the temporary file, not yet synced.
    HalfWritten,
    /// The temporary file is complete and synced.
    Synced,
    /// The temporary file replaced the journal.
    Renamed,
}

/// What a compaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compacted {
    /// Lines before.
    pub lines_before: u64,
    /// Lines after.
    pub lines_after: u64,
    /// Bytes before.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// What the first pass learns: which events a later one settles. Deliveries are remembered
/// by their 128-bit key, and only those old enough to be dropped, so that a journal of a
/// million recent deliveries is compacted in little memory.
#[derive(Default)]
struct Settled {
    /// The line of the last `import-finished` of each (org, lowercased repository).
    finished: HashMap<(OrgId, String), usize>,
    /// Intents and acceptances not yet followed by a finish, by (org, repository).
    open_imports: HashMap<(OrgId, String), u64>,
    /// Intents and acceptances a later finish settles (dropped by the rewrite).
    settled_imports: u64,
    /// Deliveries queued more than [`DELIVERY_MEMORY_SECONDS`] before the newest and not
    /// named by a `deliveries-done` yet (few at a time: rounds follow their deliveries).
    old: HashSet<Key>,
    /// Old deliveries a `deliveries-done` named (moved from `old`).
    done: HashSet<Key>,
    /// Old deliveries set aside (kept whole).
    set_aside: HashSet<Key>,
    /// Deliveries queued before this time (seconds) are old.
    cutoff: u64,
    /// Entries in the file.
    entries: u64,
}

impl Settled {
    /// Whether the rewrite would drop anything.
    fn drops_anything(&self) -> bool {
        self.settled_imports > 0 || self.done.iter().any(|k| !self.set_aside.contains(k))
    }

    /// Whether the delivery `k` is dropped: old, done, not set aside.
    fn drops(&self, k: &Key) -> bool {
        self.done.contains(k) && !self.set_aside.contains(k)
    }
}

/// The first pass, `newest` being the newest delivery's time.
fn settled(path: &Path, newest: Option<u64>) -> Result<Settled, Error> {
    let mut s = Settled {
        cutoff: newest.map_or(0, |n| n.saturating_sub(DELIVERY_MEMORY_SECONDS)),
        ..Settled::default()
    };
    super::for_each_line(path, |i, _, line| {
        s.entries += 1;
        settle(&mut s, i, line.event);
    })?;
    // Old deliveries never done are kept: the second pass needs only `done`.
    s.old = HashSet::new();
    Ok(s)
}

/// What one event tells the first pass.
fn settle(s: &mut Settled, i: usize, event: Event) {
    match event {
        Event::ImportIntent { org_id, repository }
        | Event::ImportAccepted {
            org_id, repository, ..
        } => {
            *s.open_imports
                .entry((org_id, repository.to_lowercase()))
                .or_default() += 1;
        }
        Event::ImportFinished {
            org_id, repository, ..
        } => {
            let k = (org_id, repository.to_lowercase());
            s.settled_imports += s.open_imports.remove(&k).unwrap_or(0);
            s.finished.insert(k, i);
        }
        Event::DeliveriesDone { request_uuids } => {
            for r in &request_uuids {
                let k = key(&DeliveryId::parse(r));
                if s.old.remove(&k) {
                    s.done.insert(k);
                }
            }
        }
        Event::DeliveriesSetAside { request_uuids, .. } => {
            for r in &request_uuids {
                let k = key(&DeliveryId::parse(r));
                if s.old.contains(&k) || s.done.contains(&k) {
                    s.set_aside.insert(k);
                }
            }
        }
        Event::DeliveryQueued {
            request_uuid, at, ..
        } if at < s.cutoff => {
            s.old.insert(key(&DeliveryId::parse(&request_uuid)));
        }
        _ => {}
    }
}

/// The line to keep for `line` (at line `i`), rewritten where it changes; `None` to drop it.
fn kept(i: usize, text: &str, line: Line, s: &Settled) -> Option<String> {
    let later_finish = |org_id: &OrgId, repository: &str| {
        s.finished
            .get(&(org_id.clone(), repository.to_lowercase()))
            .is_some_and(|&at| at > i)
    };
    match &line.event {
        Event::ImportIntent { org_id, repository }
        | Event::ImportAccepted {
            org_id, repository, ..
        } if later_finish(org_id, repository) => None,
        Event::DeliveryQueued { request_uuid, .. } => {
            (!s.drops(&key(&DeliveryId::parse(request_uuid)))).then(|| text.to_owned())
        }
        Event::DeliveriesDone { request_uuids } => {
            let left: Vec<String> = request_uuids
                .iter()
                .filter(|r| !s.drops(&key(&DeliveryId::parse(r))))
                .cloned()
                .collect();
            if left.is_empty() {
                return None;
            }
            if left.len() == request_uuids.len() {
                return Some(text.to_owned());
            }
            let rewritten = Line {
                event: Event::DeliveriesDone {
                    request_uuids: left,
                },
                ..line
            };
            serde_json::to_string(&rewritten).ok()
        }
        _ => Some(text.to_owned()),
    }
}

/// Rewrites the journal of `dir` (see the module's notes), `newest` being the newest
/// delivery's time, telling `observe` each step; when nothing would be dropped, leaves it as
/// it is (no step). The caller holds the writers' lock.
pub(super) fn compact(
    dir: &Path,
    newest: Option<u64>,
    observe: &dyn Fn(Step),
) -> Result<Compacted, Error> {
    let path = dir.join(JOURNAL_FILE);
    let temp = dir.join(COMPACTING_FILE);
    let bytes_before = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    let s = settled(&path, newest)?;
    if !s.drops_anything() {
        return Ok(Compacted {
            lines_before: s.entries,
            lines_after: s.entries,
            bytes_before,
            bytes_after: bytes_before,
        });
    }
    let io = |e| Error::io(&temp, e);
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&temp)
        .map_err(io)?;
    let mut w = BufWriter::new(file);
    let (mut read, mut lines_after, mut written) = (0u64, 0u64, Ok(()));
    super::for_each_line(&path, |i, text, line| {
        if written.is_err() {
            return;
        }
        read += 1;
        if read == s.entries / 2 + 1 {
            written = w.flush();
            observe(Step::HalfWritten);
        }
        if let Some(k) = kept(i, text, line, &s) {
            lines_after += 1;
            written = w.write_all(k.as_bytes()).and_then(|()| w.write_all(b"\n"));
        }
    })?;
    written.map_err(io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let bytes_after = file.metadata().map_err(io)?.len();
    drop(file);
    observe(Step::Synced);
    std::fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)?;
    observe(Step::Renamed);
    Ok(Compacted {
        lines_before: s.entries,
        lines_after,
        bytes_before,
        bytes_after,
    })
}

/// The journal's size after its last compaction, as kept in `dir`; zero when it was never
/// compacted (or the record cannot be read: compacting once more is harmless).
pub(super) fn compacted_size(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(COMPACTED_SIZE_FILE))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Keeps `bytes` as the journal's size after a compaction. Not kept, the next process
/// compacts once more (harmless), so a failure is only logged.
pub(super) fn remember_size(dir: &Path, bytes: u64) {
    let path = dir.join(COMPACTED_SIZE_FILE);
    if let Err(e) = std::fs::write(&path, format!("{bytes}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "the compacted journal's size could not be kept");
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Removes what a compaction killed before its rename left behind.
pub(super) fn remove_stale(dir: &Path) -> Result<(), Error> {
    let temp = dir.join(COMPACTING_FILE);
    match std::fs::remove_file(&temp) {
        Ok(()) => {
            tracing::info!(
                "removed an interrupted compaction's temporary file; the journal is whole"
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(temp, e)),
    }
}
