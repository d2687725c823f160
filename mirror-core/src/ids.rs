//! Identifiers as types: an org id cannot be passed where an integration id is expected.
//!
//! Each is a string on the wire and in files (`#[serde(transparent)]`), so plans and journals
//! written before these types existed read the same. In memory each is a shared string: a clone
//! (into a plan, a task, the journal's records) costs a reference count, not a copy, which keeps
//! an estate of 100,000 repositories small.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The instant type of every time in the core's values (a repository's last update, an org's
/// creation, an audit-log entry, a plan's date): UTC, compared as instants whatever offset the
/// API wrote, and RFC 3339 text in files.
pub use bitbucket_cloud_client::api_support::time::Timestamp;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an identifier as the API gives it.
            pub fn new(id: impl Into<String>) -> Self {
                Self(Arc::from(id.into()))
            }

            /// The identifier as the API takes it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0.to_string()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

id_type!(
    /// A Snyk group's id: where orgs are listed and created.
    GroupId
);
id_type!(
    /// A Snyk org's id.
    OrgId
);
id_type!(
    /// A Bitbucket workspace's uuid, with its braces (`{…}`); unchanged by a rename of the
    /// workspace.
    WorkspaceUuid
);
id_type!(
    /// A Snyk integration's id (one per org and integration type).
    IntegrationId
);
id_type!(
    /// A Snyk target's id (a repository as Snyk knows it in one org).
    TargetId
);
id_type!(
    /// A Snyk project's id (one manifest of a target, at one branch).
    ProjectId
);
id_type!(
    /// A Bitbucket repository's uuid, with its braces as Bitbucket writes it
    /// (`{9f5c…}`); unchanged by a rename or a transfer.
    RepoUuid
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire_and_compare_with_str() {
        let id = OrgId::new("org-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"org-1\"");
        let back: OrgId = serde_json::from_str("\"org-1\"").unwrap();
        assert_eq!(back, id);
        assert!(id == "org-1");
        assert_eq!(id.to_string(), "org-1");
        let mut map = std::collections::BTreeMap::new();
        map.insert(id, 1);
        assert_eq!(map.get("org-1"), Some(&1));
    }
}
