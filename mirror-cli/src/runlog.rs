//! The per-run log in the state directory: `logs/run-<time>-<pid>.jsonl`, one JSON object per
//! line (tracing's JSON format), every line passed through the redactor before it is written.
//!
//! The file is opened at the first line to write, so a run that ends on a usage error leaves
//! nothing behind. When it is opened, older logs beyond the newest [`KEEP`] are removed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bitbucket_cloud_client::api_support::redact::redact;

/// The target of the lines only the run log gets (the screen has them in words already).
pub const TARGET: &str = "run_log";

/// Run logs kept, the newest first; older ones are removed when a run opens its own.
pub const KEEP: usize = 20;

/// The directory of the run logs under a state directory.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// Where one run logs, opened at the first line.
#[derive(Clone, Debug)]
pub struct RunLog {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    dir: PathBuf,
    file: Option<File>,
    /// Opening failed once: the run goes on without a log.
    broken: bool,
    path: Option<PathBuf>,
    /// The command, for the first line.
    command: String,
}

impl RunLog {
    /// A log under `state_dir` for `command`, not yet opened.
    pub fn new(state_dir: &Path, command: &str) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                dir: dir(state_dir),
                file: None,
                broken: false,
                path: None,
                command: command.to_owned(),
            })),
        }
    }

    /// The file, once a line was written.
    pub fn path(&self) -> Option<PathBuf> {
        self.inner.lock().ok().and_then(|s| s.path.clone())
    }
}

impl State {
    fn open(&mut self) -> Option<&mut File> {
        if self.file.is_none() && !self.broken {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(['-', ':'], "");
            let path = self
                .dir
                .join(format!("run-{stamp}-{}.jsonl", std::process::id()));
            let opened = std::fs::create_dir_all(&self.dir).and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            });
            match opened {
                Ok(mut f) => {
                    let first = serde_json::json!({
                        "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
                        "level": "INFO",
                        "fields": {
                            "message": "run started",
                            "command": self.command,
                            "version": env!("CARGO_PKG_VERSION"),
                        },
                    });
                    let _ = writeln!(f, "{first}");
                    self.file = Some(f);
                    self.path = Some(path);
                    prune(&self.dir, KEEP);
                }
                Err(_) => self.broken = true,
            }
        }
        self.file.as_mut()
    }
}

/// Removes the oldest run logs of `dir` beyond the newest `keep` (their names sort by time).
pub fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-") && n.ends_with(".jsonl"))
        })
        .collect();
    logs.sort();
    let extra = logs.len().saturating_sub(keep);
    for old in &logs[..extra] {
        let _ = std::fs::remove_file(old);
    }
}

/// One event's writer: the formatter writes a whole line at once, which is redacted as a whole.
#[derive(Debug)]
pub struct LineWriter {
    inner: Arc<Mutex<State>>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let clean = redact(&String::from_utf8_lossy(buf));
        if let Ok(mut state) = self.inner.lock()
            && let Some(file) = state.open()
        {
            file.write_all(clean.as_bytes())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut state) = self.inner.lock()
            && let Some(file) = state.file.as_mut()
        {
            file.flush()?;
        }
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RunLog {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            inner: self.inner.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_redacted_the_file_is_made_at_the_first_and_old_logs_are_pruned() {
        let state = tempfile::tempdir().unwrap();
        let logs = dir(state.path());
        std::fs::create_dir_all(&logs).unwrap();
        for i in 0..KEEP + 3 {
            std::fs::write(
                logs.join(format!("run-2026010{i:02}T000000Z-1.jsonl")),
                "{}\n",
            )
            .unwrap();
        }
        let log = RunLog::new(state.path(), "sync");
        assert!(log.path().is_none());
        let mut w = tracing_subscriber::fmt::MakeWriter::make_writer(&log);
        w.write_all(b"{\"message\":\"sent Authorization: Bearer abcdefgh12345678\"}\n")
            .unwrap();
        let path = log.path().expect("opened at the first line");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("Bearer [REDACTED]") && !text.contains("abcdefgh12345678"),
            "{text}"
        );
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["fields"]["command"], "sync");
        let left = std::fs::read_dir(&logs).unwrap().count();
        assert_eq!(
            left, KEEP,
            "pruned to the newest {KEEP}, this run's included"
        );
        assert!(path.exists());
    }
}
