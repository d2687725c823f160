//! Progress and results: bars on a terminal, plain lines otherwise, JSON on request.

use bitbucket_cloud_client::api_support::lock;
use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use mirror_core::ApplyObserver;

use crate::cli::{Global, OutputFormat};

/// Writes to stdout (or stderr), with a line break when `line`; a stream whose reader has gone
/// (`| head`) or that cannot be written is left alone: what is printed is for people, and the
/// run's work and exit code must not depend on whether they are still reading.
pub fn write_to(stderr: bool, args: std::fmt::Arguments<'_>, line: bool) {
    use std::io::Write;
    fn write(mut w: impl Write, args: std::fmt::Arguments<'_>, line: bool) {
        let _ = w
            .write_fmt(args)
            .and_then(|()| if line { w.write_all(b"\n") } else { Ok(()) });
    }
    if stderr {
        write(std::io::stderr().lock(), args, line);
    } else {
        write(std::io::stdout().lock(), args, line);
    }
}

/// How a command talks to people.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    /// Human or JSON results on stdout.
    pub format: OutputFormat,
    /// Only errors on stderr.
    pub quiet: bool,
    /// Whether stderr is a terminal (progress bars).
    pub terminal: bool,
    /// `-v` or more.
    pub verbose: bool,
}

impl Out {
    /// From the global options.
    pub fn new(global: &Global) -> Self {
        Self {
            format: global.output,
            quiet: global.quiet,
            terminal: std::io::stderr().is_terminal(),
            verbose: global.verbose > 0,
        }
    }

    /// Whether results are printed for people.
    pub fn human(&self) -> bool {
        self.format == OutputFormat::Human
    }

    /// A status line on stderr (not when quiet).
    pub fn status(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// A spinner while something is read, or a plain line.
    pub fn spinner(&self, message: &str) -> Option<ProgressBar> {
        if self.quiet {
            return None;
        }
        if self.terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            Some(bar)
        } else {
            eprintln!("{message}");
            None
        }
    }

    /// The observer for apply: a bar on a terminal, once an apply with imports starts.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::new(Progress {
            bar: std::sync::Mutex::new(None),
            terminal: self.terminal,
            quiet: self.quiet,
        })
    }
}

/// Reports apply's progress.
pub struct Progress {
    /// The bar of the apply under way (none off a terminal, or with nothing to import).
    bar: std::sync::Mutex<Option<ProgressBar>>,
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// The bar of the apply under way.
    fn bar(&self) -> Option<ProgressBar> {
        lock(&self.bar).clone()
    }

    fn line(&self, text: &str) {
        match self.bar() {
            Some(bar) => bar.println(text),
            None if !self.quiet => eprintln!("{text}"),
            None => {}
        }
    }
}

impl ApplyObserver for Progress {
    fn apply_started(&self, imports: usize) {
        let bar = (self.terminal && !self.quiet && imports > 0).then(|| {
            let bar = ProgressBar::new(imports as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} imports {pos}/{len} [{bar:30}] {elapsed} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        *lock(&self.bar) = bar;
    }

    fn apply_ended(&self) {
        let bar = lock(&self.bar).take();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }

    fn org_ready(&self, name: &str, created: bool) {
        self.line(&if created {
            format!("created org {name}")
        } else {
            format!("using existing org {name}")
        });
    }

    fn import_accepted(&self, repository: &str) {
        if let Some(bar) = self.bar() {
            bar.set_message(repository.to_owned());
        }
    }

    fn import_finished(&self, repository: &str, failure: Option<&str>) {
        match failure {
            None => {
                if let Some(bar) = self.bar() {
                    bar.inc(1);
                } else if !self.quiet {
                    eprintln!("imported {repository}");
                }
            }
            Some(why) => {
                if let Some(bar) = self.bar() {
                    bar.inc(1);
                }
                self.line(&format!("failed {repository}: {why}"));
            }
        }
    }
}
