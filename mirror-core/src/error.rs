//! Errors of mirror-core.

use std::path::PathBuf;

use bitbucket_cloud_client::ErrorKind;

/// What went wrong while planning or applying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration, plan or input problem found before anything changed.
    #[error("{0}")]
    Config(String),
    /// The configuration names no Snyk group, and its mapping creates orgs in one.
    #[error(
        "snyk.group_id is missing: set it in the configuration (orgs are created in that group)"
    )]
    MissingGroupId,
    /// Bitbucket refused or failed.
    #[error("{}", named("Bitbucket", .0))]
    Bitbucket(#[from] bitbucket_cloud_client::Error),
    /// Snyk refused or failed.
    #[error("{}", named("Snyk", .0))]
    Snyk(#[from] snyk_client::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Another run holds the state directory.
    #[error(
        "another run is using the state directory {}: wait for it to finish (the lock goes with its process)",
        path.display()
    )]
    Locked {
        /// The state directory.
        path: PathBuf,
    },
    /// The Snyk port cannot do this (a port of your own that leaves a method out).
    #[error("this Snyk port cannot {what}")]
    Unsupported {
        /// What it cannot do.
        what: &'static str,
    },
    /// Something that should not happen did: a task panicked.
    #[error("internal error: {0}")]
    Internal(String),
    /// The journal stopped taking events (its writer failed, or the process is shutting
    /// down): what was done up to its last event is recorded, and a rerun resumes from there.
    #[error(
        "the journal stopped taking events after event {last_event}; everything done up to it is recorded: run again to resume"
    )]
    JournalStopped {
        /// The sequence number of the last event on disk.
        last_event: u64,
    },
    /// A failure of an in-memory fake, with its kind.
    #[error("{message}")]
    Fake {
        /// The kind of failure it imitates.
        kind: ErrorKind,
        /// The message.
        message: String,
    },
}

/// A client's error with the service it came from in front, unless its words already begin
/// with the service's name ("Bitbucket refused …", "Snyk's listing …").
fn named(service: &str, e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    if text.starts_with(service) {
        text
    } else {
        format!("{service}: {text}")
    }
}

impl Error {
    /// The kind of failure, as the clients classify it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_)
            | Self::MissingGroupId
            | Self::Malformed { .. }
            | Self::Locked { .. } => ErrorKind::Config,
            Self::Unsupported { .. } => ErrorKind::Client,
            Self::Internal(_) | Self::JournalStopped { .. } => ErrorKind::Server,
            Self::Bitbucket(e) => e.kind(),
            Self::Snyk(e) => e.kind(),
            Self::Io { .. } => ErrorKind::Transport,
            Self::Fake { kind, .. } => *kind,
        }
    }

    /// Whether credentials were refused (for the exit code).
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Auth
    }

    /// The HTTP status of the answer that failed, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Bitbucket(e) => e.status(),
            Self::Snyk(e) => e.status(),
            _ => None,
        }
    }

    /// Whether this error from Bitbucket ends a whole run rather than leaving one workspace or
    /// repository uncertain: credentials refused outright (401; a 403 is about one resource),
    /// or a configuration or state problem of our own.
    pub(crate) fn ends_the_run(&self) -> bool {
        match self.kind() {
            ErrorKind::Auth => self.status() != Some(403),
            _ => matches!(
                self,
                Self::Config(_)
                    | Self::MissingGroupId
                    | Self::Io { .. }
                    | Self::Locked { .. }
                    | Self::Internal(_)
                    | Self::JournalStopped { .. }
            ),
        }
    }

    /// Whether the org is at its project cap.
    pub fn is_project_cap(&self) -> bool {
        matches!(self, Self::Snyk(snyk_client::Error::ProjectCap { .. }))
            || matches!(self, Self::Fake { message, .. } if message.contains("maximum 25000 projects"))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// How much of a quoted line (a user's input, a response body) is kept, in characters.
const QUOTE_KEPT: usize = 200;
/// The most lines an error message keeps.
const SCREEN_LINES: usize = 24;

/// Fits a message for people on one screen without cutting the tool's own words: a sentence
/// stays whole on its line (the terminal wraps it, and a command or a variable in it can still
/// be copied in one piece). What can only be quoted material is shortened, marked with `…` and
/// its size: a line over 200 characters without a space (a token, a minified body), or over
/// 2,000 characters in any case (a user's line). At most 24 lines are kept.
///
/// Anything that looks like a secret is removed first ([`bitbucket_cloud_client::api_support::redact::redact`]): values
/// of keys named like a token, secret or password (`token = "…"` in a user's file quoted by a
/// parse error), the password in a URL's user information, and well-known token formats.
pub fn fit_screen(text: &str) -> String {
    let text = bitbucket_cloud_client::api_support::redact::redact(text);
    let mut out: Vec<String> = text
        .lines()
        .map(|line| {
            let chars = line.chars().count();
            if chars > QUOTE_KEPT && (!line.contains(' ') || chars > 2_000) {
                let kept: String = line.chars().take(QUOTE_KEPT).collect();
                format!("{kept}… ({chars} characters)")
            } else {
                line.to_owned()
            }
        })
        .collect();
    if out.len() > SCREEN_LINES {
        let more = out.len() - SCREEN_LINES;
        out.truncate(SCREEN_LINES);
        out.push(format!("… ({more} more lines)"));
    }
    out.join("\n")
}

#[cfg(test)]
mod screen_tests {
    use super::fit_screen;

    #[test]
    fn quoted_material_is_shortened_with_its_size_and_many_lines_are_cut() {
        let huge = "x".repeat(10_000);
        let fitted = fit_screen(&format!("error at line 1\n{huge}\nend"));
        assert!(fitted.len() < 300, "{}", fitted.len());
        assert!(fitted.starts_with("error at line 1\nxxx"));
        assert!(fitted.ends_with("… (10000 characters)\nend"), "{fitted}");
        let many = (0..50)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let fitted = fit_screen(&many);
        assert_eq!(fitted.lines().count(), 25);
        assert!(fitted.ends_with("… (26 more lines)"), "{fitted}");
        let quote = fit_screen("é".repeat(300).as_str());
        assert!(quote.starts_with(&"é".repeat(200)) && quote.ends_with("… (300 characters)"));
    }

    #[test]
    fn the_tools_own_words_are_never_cut() {
        // Before, this advice was cut at 200 characters, in the middle of the fix.
        let advice = "error: no Bitbucket credentials: set BITBUCKET_CLOUD_EMAIL and BITBUCKET_CLOUD_API_TOKEN (an Atlassian API token), BITBUCKET_CLOUD_API_TOKEN alone or BITBUCKET_CLOUD_ACCESS_TOKENS (access tokens), BITBUCKET_CLOUD_OAUTH_TOKEN, or BITBUCKET_CLOUD_OAUTH_CLIENT_ID and BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET";
        assert!(advice.len() > 200);
        assert_eq!(fit_screen(advice), advice);
    }
}

#[cfg(test)]
mod naming_tests {
    use super::Error;

    #[test]
    fn the_service_is_named_once() {
        let refused: Error = bitbucket_cloud_client::Error::Config(
            "Bitbucket refused the webhooks of workspace `acme`".to_owned(),
        )
        .into();
        assert_eq!(
            refused.to_string(),
            "Bitbucket refused the webhooks of workspace `acme`"
        );
        let plain: Error =
            bitbucket_cloud_client::Error::Config("the `next` link was not followed".to_owned())
                .into();
        assert_eq!(
            plain.to_string(),
            "Bitbucket: the `next` link was not followed"
        );
    }
}

#[cfg(test)]
mod journal_stopped_tests {
    use super::{Error, ErrorKind};

    #[test]
    fn a_stopped_journal_is_a_failure_to_resume_not_a_configuration_error() {
        // Before, it was `Error::Config` (exit 2, "nothing was changed"), possibly after orgs
        // were created.
        let e = Error::JournalStopped { last_event: 42 };
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.ends_the_run());
        assert_eq!(
            e.to_string(),
            "the journal stopped taking events after event 42; everything done up to it is recorded: run again to resume"
        );
    }
}
