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
    /// Bitbucket refused or failed.
    #[error("Bitbucket: {0}")]
    Bitbucket(#[from] bitbucket_cloud_client::Error),
    /// Snyk refused or failed.
    #[error("Snyk: {0}")]
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
        "another run is using the state directory {}: wait for it to finish, or use another state directory",
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
    /// A job reference in the journal or a plan is not `org/integration/job`.
    #[error("`{text}` is not a job reference (org/integration/job)")]
    BadJobReference {
        /// The text found.
        text: String,
    },
    /// Something that should not happen did: a task panicked, or the journal writer stopped.
    #[error("internal error: {0}")]
    Internal(String),
    /// A failure of an in-memory fake, with its kind.
    #[error("{message}")]
    Fake {
        /// The kind of failure it imitates.
        kind: ErrorKind,
        /// The message.
        message: String,
    },
}

impl Error {
    /// The kind of failure, as the clients classify it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_)
            | Self::Malformed { .. }
            | Self::Locked { .. }
            | Self::BadJobReference { .. } => ErrorKind::Config,
            Self::Unsupported { .. } => ErrorKind::Client,
            Self::Internal(_) => ErrorKind::Server,
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

/// The longest line an error message keeps, in characters.
const SCREEN_WIDTH: usize = 200;
/// The most lines an error message keeps.
const SCREEN_LINES: usize = 20;

/// Fits a message for people on one screen: lines longer than 200 characters are cut with `…`
/// (a parser quoting a huge input line would otherwise print all of it), and at most 20 lines
/// are kept.
pub fn fit_screen(text: &str) -> String {
    let mut out: Vec<String> = text
        .lines()
        .take(SCREEN_LINES)
        .map(|line| match line.char_indices().nth(SCREEN_WIDTH) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_owned(),
        })
        .collect();
    if text.lines().count() > SCREEN_LINES {
        out.push("…".to_owned());
    }
    out.join("\n")
}

#[cfg(test)]
mod screen_tests {
    use super::fit_screen;

    #[test]
    fn long_lines_and_many_lines_are_cut() {
        let huge = "x".repeat(10_000);
        let fitted = fit_screen(&format!("error at line 1\n{huge}\nend"));
        assert!(fitted.len() < 300, "{}", fitted.len());
        assert!(fitted.starts_with("error at line 1\nxxx"));
        assert!(fitted.ends_with("…\nend"));
        let many = (0..50)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(fit_screen(&many).lines().count(), 21);
        assert_eq!(fit_screen("é".repeat(300).as_str()).chars().count(), 201);
    }
}
