//! The journal: what apply did, one JSON line per event, flushed to disk (`fsync`) before apply
//! goes on. Every remote action is journaled before (intent) and after (outcome), so a rerun
//! after a crash at any point knows what happened and what to check.
//!
//! The state directory holds `journal.jsonl` and `lock`. The lock is an OS file lock
//! (`flock`): a second run on the same directory is refused, and a killed process releases it.
//! Writing happens on a dedicated thread, so `fsync` never blocks the async runtime.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::Error;
use crate::plan::History;

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The lock's file name in the state directory.
pub const LOCK_FILE: &str = "lock";

/// One journaled event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// A run began.
    RunStarted {
        /// Imports the plan holds.
        imports: usize,
    },
    /// About to create an org.
    OrgCreateIntent {
        /// Its name.
        name: String,
    },
    /// The org exists now (created, or found after a crash).
    OrgReady {
        /// Its name.
        name: String,
        /// Its id.
        org_id: String,
        /// The integration imports go through, if it has one.
        integration_id: Option<String>,
        /// Whether this run created it.
        created: bool,
    },
    /// A `bitbucket-cloud` integration was added to an org.
    IntegrationAdded {
        /// The org.
        org_id: String,
        /// The new integration.
        integration_id: String,
    },
    /// An integration's Bitbucket credentials were replaced.
    CredentialsUpdated {
        /// The org.
        org_id: String,
        /// The integration.
        integration_id: String,
        /// A fingerprint of the new credentials (FNV-1a of e-mail and token; not reversible
        /// for tokens of this length), so that a rerun skips what it already changed.
        fingerprint: String,
    },
    /// About to post an import.
    ImportIntent {
        /// The org.
        org_id: String,
        /// `workspace/repository`.
        repository: String,
    },
    /// Snyk accepted the import.
    ImportAccepted {
        /// The org.
        org_id: String,
        /// `workspace/repository`.
        repository: String,
        /// The job reference.
        job: String,
    },
    /// The job finished.
    ImportFinished {
        /// The org.
        org_id: String,
        /// `workspace/repository`.
        repository: String,
        /// `complete`, `failed` or `aborted`.
        status: String,
        /// Projects created.
        projects: u32,
        /// Snyk's messages for what failed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        messages: Vec<String>,
    },
    /// Snyk refused the import before accepting it, or it could not be followed.
    ImportFailed {
        /// The org.
        org_id: String,
        /// `workspace/repository`.
        repository: String,
        /// Why.
        message: String,
        /// Whether the org is at its project cap.
        #[serde(default)]
        project_cap: bool,
    },
    /// A run ended.
    RunFinished,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    time: String,
    #[serde(flatten)]
    event: Event,
}

/// Where an import stands according to the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportState {
    /// About to be posted; whether Snyk got it is unknown.
    Intended,
    /// Accepted, with its job, not yet finished.
    Accepted(String),
    /// Finished.
    Finished {
        /// The job's status.
        status: String,
        /// Projects created.
        projects: u32,
    },
    /// Refused before acceptance.
    Failed,
}

/// What the journal says, replayed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalState {
    /// Orgs whose creation was intended, by name → id once known.
    pub orgs: BTreeMap<String, Option<(String, Option<String>)>>,
    /// Imports by (org id, lowercased `workspace/repository`).
    pub imports: BTreeMap<(String, String), ImportState>,
    /// Orgs found at the project cap.
    pub capped_orgs: std::collections::BTreeSet<String>,
    /// (org id, integration id) → fingerprint of the credentials last put into it.
    pub credentials: BTreeMap<(String, String), String>,
    /// Events read.
    pub events: u64,
}

impl JournalState {
    fn apply(&mut self, event: &Event) {
        self.events += 1;
        match event {
            Event::OrgCreateIntent { name } => {
                self.orgs.entry(name.clone()).or_insert(None);
            }
            Event::OrgReady {
                name,
                org_id,
                integration_id,
                ..
            } => {
                self.orgs
                    .insert(name.clone(), Some((org_id.clone(), integration_id.clone())));
            }
            Event::ImportIntent { org_id, repository } => {
                self.imports
                    .entry((org_id.clone(), repository.to_lowercase()))
                    .or_insert(ImportState::Intended);
            }
            Event::ImportAccepted {
                org_id,
                repository,
                job,
            } => {
                self.imports.insert(
                    (org_id.clone(), repository.to_lowercase()),
                    ImportState::Accepted(job.clone()),
                );
            }
            Event::ImportFinished {
                org_id,
                repository,
                status,
                projects,
                ..
            } => {
                self.imports.insert(
                    (org_id.clone(), repository.to_lowercase()),
                    ImportState::Finished {
                        status: status.clone(),
                        projects: *projects,
                    },
                );
            }
            Event::ImportFailed {
                org_id,
                repository,
                project_cap,
                ..
            } => {
                self.imports.insert(
                    (org_id.clone(), repository.to_lowercase()),
                    ImportState::Failed,
                );
                if *project_cap {
                    self.capped_orgs.insert(org_id.clone());
                }
            }
            Event::CredentialsUpdated {
                org_id,
                integration_id,
                fingerprint,
            } => {
                self.credentials.insert(
                    (org_id.clone(), integration_id.clone()),
                    fingerprint.clone(),
                );
            }
            Event::IntegrationAdded { .. } | Event::RunStarted { .. } | Event::RunFinished => {}
        }
    }

    /// What planning needs: completed imports and capped orgs.
    pub fn history(&self) -> History {
        History {
            completed: self
                .imports
                .iter()
                .filter_map(|(k, s)| match s {
                    ImportState::Finished { status, projects } if status == "complete" => {
                        Some((k.clone(), *projects))
                    }
                    _ => None,
                })
                .collect(),
            capped_orgs: self.capped_orgs.clone(),
        }
    }
}

/// Reads a journal file (without locking), for inspection and planning.
///
/// # Errors
/// [`Error::Malformed`] naming the line of a malformed entry; a torn last line (a crash in the
/// middle of a write) is ignored.
pub fn read_state(dir: &Path) -> Result<JournalState, Error> {
    let path = dir.join(JOURNAL_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalState::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut state = JournalState::default();
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| Error::io(&path, e))?;
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(l) => state.apply(&l.event),
            Err(_) if i + 1 == last => {
                tracing::warn!(line = i + 1, "ignoring a torn last journal line");
            }
            Err(e) => {
                return Err(Error::Malformed {
                    path,
                    line: i + 1,
                    message: format!(
                        "not a journal entry ({e}); the journal was edited or corrupted"
                    ),
                });
            }
        }
    }
    Ok(state)
}

/// Whether a file is empty or ends with a line break, reading only its last byte.
fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

type Ack = oneshot::Sender<Result<(), Error>>;

/// An observer told the sequence number of every event once it is on disk (tests use it to
/// stop a process at chosen points).
pub type WriteObserver = Arc<dyn Fn(u64) + Send + Sync>;

/// An open, locked journal.
pub struct Journal {
    sender: mpsc::Sender<(Event, Ack)>,
    state: JournalState,
    dir: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("dir", &self.dir).finish()
    }
}

impl Journal {
    /// Opens (creating) the state directory, takes its lock, and replays the journal.
    ///
    /// # Errors
    /// [`Error::Locked`] when another run holds the directory; I/O and malformed-journal
    /// errors.
    pub fn open(dir: &Path, observer: Option<WriteObserver>) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        let state = read_state(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // A torn last line gets its own line ended, so the next event starts clean.
        if !ends_with_newline(&path).map_err(|e| Error::io(&path, e))? {
            file.write_all(b"\n").map_err(|e| Error::io(&path, e))?;
        }
        let (sender, receiver) = mpsc::channel::<(Event, Ack)>();
        let mut seq = state.events;
        let writer_path = path.clone();
        std::thread::Builder::new()
            .name("journal-writer".to_owned())
            .spawn(move || {
                while let Ok((event, ack)) = receiver.recv() {
                    seq += 1;
                    let line = Line {
                        seq,
                        time: rfc3339(SystemTime::now()),
                        event,
                    };
                    let result = serde_json::to_string(&line)
                        .map_err(|e| Error::Config(format!("cannot encode a journal entry: {e}")))
                        .and_then(|mut text| {
                            text.push('\n');
                            file.write_all(text.as_bytes())
                                .and_then(|()| file.sync_data())
                                .map_err(|e| Error::io(&writer_path, e))
                        });
                    let ok = result.is_ok();
                    let _ = ack.send(result);
                    if ok && let Some(observer) = &observer {
                        observer(seq);
                    }
                }
            })
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            sender,
            state,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// What the journal held when it was opened.
    pub fn state(&self) -> &JournalState {
        &self.state
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A handle for appending from many tasks.
    pub fn writer(&self) -> JournalWriter {
        JournalWriter {
            sender: self.sender.clone(),
        }
    }
}

/// Appends events; cheap to clone.
#[derive(Clone)]
pub struct JournalWriter {
    sender: mpsc::Sender<(Event, Ack)>,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalWriter")
    }
}

impl JournalWriter {
    /// Appends an event and waits until it is on disk.
    ///
    /// # Errors
    /// When it cannot be written; apply stops rather than act unrecorded.
    pub async fn append(&self, event: Event) -> Result<(), Error> {
        let (ack, done) = oneshot::channel();
        self.sender
            .send((event, ack))
            .map_err(|_| Error::Config("the journal writer stopped".to_owned()))?;
        done.await
            .map_err(|_| Error::Config("the journal writer stopped".to_owned()))?
    }
}

/// A fingerprint of credentials: FNV-1a (64 bits) of `email`, a separator and `token`, in hex.
pub fn fingerprint(email: &str, token: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.bytes().chain([0u8]).chain(token.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Formats a time as RFC 3339 UTC with milliseconds (`2026-11-22T13:04:12.849Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let millis = since.subsec_millis();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_352_652_849);
        assert_eq!(rfc3339(t), "2026-11-22T13:04:12.849Z");
    }

    #[tokio::test]
    async fn events_replay_and_a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), None).unwrap();
        assert!(matches!(
            Journal::open(dir.path(), None),
            Err(Error::Locked { .. })
        ));
        let w = journal.writer();
        w.append(Event::ImportIntent {
            org_id: "o".into(),
            repository: "ws/A".into(),
        })
        .await
        .unwrap();
        w.append(Event::ImportFinished {
            org_id: "o".into(),
            repository: "ws/A".into(),
            status: "complete".into(),
            projects: 0,
            messages: vec![],
        })
        .await
        .unwrap();
        drop(w);
        drop(journal);
        let state = read_state(dir.path()).unwrap();
        assert_eq!(state.events, 2);
        assert_eq!(
            state.history().completed.get(&("o".into(), "ws/a".into())),
            Some(&0)
        );
        // Reopening works once the first holder is gone.
        Journal::open(dir.path(), None).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_bad_middle_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good =
            r#"{"seq":1,"time":"t","event":"import-intent","org_id":"o","repository":"w/r"}"#;
        std::fs::write(
            dir.path().join(JOURNAL_FILE),
            format!("{good}\n{{\"seq\":2,\"ti"),
        )
        .unwrap();
        assert_eq!(read_state(dir.path()).unwrap().events, 1);
        std::fs::write(dir.path().join(JOURNAL_FILE), format!("garbage\n{good}\n")).unwrap();
        let e = read_state(dir.path()).unwrap_err();
        assert!(e.to_string().contains("journal.jsonl:1"), "{e}");
    }
}
