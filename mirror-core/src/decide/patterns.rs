//! What the configuration's rules match repositories with: glob patterns and visibility. A
//! leaf: the configuration, the rules, the metadata rules and the plan all read it.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Public, private or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Every repository.
    #[default]
    All,
    /// Only private repositories.
    Private,
    /// Only public repositories.
    Public,
}

/// How patterns match: without regard to case, and `*` runs over `/` as well.
const GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// A pattern as the configuration's rules write it: `*` (any run), `?` (one character) and
/// character classes (`[0-4]`, `[!x]`), matched without regard to case.
///
/// # Errors
/// [`Error::Config`] naming the pattern and what is wrong with it.
pub fn glob_pattern(pattern: &str) -> Result<glob::Pattern, Error> {
    glob::Pattern::new(pattern).map_err(|e| {
        Error::Config(format!(
            "`{pattern}` is not a pattern this tool reads ({}): use *, ? and character classes such as [0-4]",
            e.msg
        ))
    })
}

/// Whether `text` matches the pattern (see [`glob_pattern`]); a pattern that is not one
/// matches nothing (the configuration's checks refuse it before).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    thread_local! {
        static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Option<glob::Pattern>>> =
            std::cell::RefCell::default();
    }
    COMPILED.with(|compiled| {
        compiled
            .borrow_mut()
            .entry(pattern.to_owned())
            .or_insert_with(|| glob::Pattern::new(pattern).ok())
            .as_ref()
            .is_some_and(|p| p.matches_with(text, GLOB))
    })
}
