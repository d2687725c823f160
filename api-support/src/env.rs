//! Settings from the environment: one reader for every crate and the binary, and one error
//! that names the variable to fix.
//!
//! The readers take a lookup (`Fn(&str) -> Option<String>`) so that they are tested without
//! touching the process's environment; [`var`] is the process's.

/// The variable `name` when it is set and not blank.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A comma-separated list in the variable `name` (blank items left out), when it is set.
pub fn list(lookup: impl Fn(&str) -> Option<String>, name: &str) -> Option<Vec<String>> {
    lookup(name).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Variables that do not make a setting: the message names them and what to set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

#[cfg(test)]
mod tests {
    use super::list;

    #[test]
    fn a_list_leaves_out_blank_items_and_trims_the_rest() {
        let lookup = |n: &str| (n == "L").then(|| " a, ,b ,".to_owned());
        assert_eq!(
            list(lookup, "L"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(list(lookup, "M"), None);
    }
}
