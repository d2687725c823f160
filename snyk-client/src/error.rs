//! Errors of the Snyk client. Both v1 shapes (`{code, message, errorRef}`, `{ok, name}`,
//! `{error}`) and JSON:API (`{errors: [{detail}]}`) are read for Snyk's own message.

use std::time::Duration;

use api_support::ErrorKind;

use crate::models::JobHandle;

/// What went wrong talking to Snyk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The org has reached Snyk's cap of 25,000 projects: nothing more can be imported into it.
    #[error(
        "the org is at Snyk's cap of 25,000 projects: {message}; delete or deactivate projects there, or map these repositories to another org"
    )]
    ProjectCap {
        /// Snyk's message.
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// Snyk refused a parameter (`invalidParamData`).
    #[error(
        "Snyk refused a parameter: {message}; check the value it names (a branch, import.files or import.exclusion_globs)"
    )]
    InvalidParameter {
        /// Snyk's message.
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// The token may not act on the group (list or create its orgs).
    #[error(
        "the Snyk token has no permission on group {group_id}: {message}. Use a group-level service account token (or a user who is a group admin)"
    )]
    GroupPermission {
        /// The group id.
        group_id: String,
        /// Snyk's message.
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// The group does not exist in this region, or the token cannot see it (404).
    #[error(
        "Snyk group {group_id} does not exist in this region or this token cannot see it: check the group id and the region"
    )]
    GroupNotFound {
        /// The group id.
        group_id: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// The credentials were refused (401) or lack a permission (403).
    #[error("{message}")]
    Auth {
        /// What happened and what to do.
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// Snyk accepted an import but its answer had no usable `Location` header.
    #[error(
        "Snyk accepted the import but sent no job location (Location: {location:?}); run again: the import is looked for among the org's targets before it is posted again"
    )]
    NoJobLocation {
        /// The header's value, if any.
        location: Option<String>,
    },
    /// An import job did not reach a final state in time.
    #[error(
        "import job {} in org {} did not finish within {waited:?}; it may still be running in Snyk: run again, and the job is followed where it was left (it is not posted twice)",
        handle.job_id,
        handle.org_id
    )]
    ImportTimeout {
        /// The job.
        handle: JobHandle,
        /// How long it was polled.
        waited: Duration,
    },
    /// A listing's next page could not be read, even when asked for again: the listing is
    /// incomplete and must not be used (a plan made from part of a listing would be wrong).
    #[error(
        "Snyk's listing {what} is incomplete: its next page ({page}) failed twice after {received} items ({reason}); nothing was planned from it: run again"
    )]
    IncompleteListing {
        /// The listing, as a path.
        what: String,
        /// The path of the page that failed.
        page: String,
        /// The items received before it.
        received: u64,
        /// Why the page failed.
        reason: String,
        /// The second failure.
        #[source]
        source: Box<Error>,
    },
    /// A configuration problem found before any request.
    #[error("{0}")]
    Config(String),
    /// Any other failure of a request, with Snyk's message when it sent one.
    #[error("{message}")]
    Api {
        /// Snyk's message, or the HTTP summary.
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
}

impl From<api_support::Error> for Error {
    fn from(e: api_support::Error) -> Self {
        classify(e, None)
    }
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ProjectCap { .. } | Self::InvalidParameter { .. } => ErrorKind::Client,
            Self::GroupPermission { .. } | Self::Auth { .. } => ErrorKind::Auth,
            Self::GroupNotFound { .. } => ErrorKind::NotFound,
            Self::NoJobLocation { .. } => ErrorKind::Decode,
            Self::ImportTimeout { .. } => ErrorKind::Transient,
            Self::IncompleteListing { .. } => ErrorKind::Decode,
            Self::Config(_) => ErrorKind::Config,
            Self::Api { source, .. } => source.kind(),
        }
    }

    /// The underlying HTTP error, if a request was made.
    pub fn api(&self) -> Option<&api_support::Error> {
        match self {
            Self::ProjectCap { source, .. }
            | Self::InvalidParameter { source, .. }
            | Self::GroupPermission { source, .. }
            | Self::GroupNotFound { source, .. }
            | Self::Auth { source, .. }
            | Self::Api { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The HTTP status, when Snyk answered.
    pub fn status(&self) -> Option<u16> {
        self.api().and_then(|e| e.status()).map(|s| s.as_u16())
    }

    /// Snyk's request id (`snyk-request-id`), for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        self.api().and_then(|e| e.request_id())
    }

    /// Whether the request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        self.api().is_some_and(|e| e.is_retryable())
    }
}

/// Snyk's own message in an error body, whatever its shape.
pub(crate) fn snyk_message(body: &str) -> Option<(String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let Some(first) = v
        .get("errors")
        .and_then(|e| e.as_array())
        .and_then(|a| a.first())
    {
        let text = first
            .get("detail")
            .or_else(|| first.get("title"))
            .and_then(|d| d.as_str())?;
        let code = first
            .get("code")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        return Some((text.to_owned(), code));
    }
    let text = v
        .get("message")
        .or_else(|| v.get("error"))
        .and_then(|m| m.as_str())?;
    let name = v.get("name").and_then(|n| n.as_str()).map(str::to_owned);
    Some((text.to_owned(), name))
}

/// Turns a failed request into the most telling error. `group_id` is set for calls on a group.
pub(crate) fn classify(e: api_support::Error, group_id: Option<&str>) -> Error {
    let (message, name) = e
        .body()
        .and_then(snyk_message)
        .unwrap_or_else(|| (e.message().to_owned(), None));
    let status = e.status().map(|s| s.as_u16());
    if status == Some(400)
        && (message.contains("maximum 25000 projects")
            || message.contains("of the maximum")
                && message.to_ascii_lowercase().contains("projects"))
    {
        return Error::ProjectCap { message, source: e };
    }
    if name.as_deref() == Some("invalidParamData") {
        return Error::InvalidParameter { message, source: e };
    }
    if status == Some(404)
        && let Some(group) = group_id
    {
        return Error::GroupNotFound {
            group_id: group.to_owned(),
            source: e,
        };
    }
    if status == Some(403)
        && let Some(group) = group_id
        && !e.is_token_exchange()
    {
        return Error::GroupPermission {
            group_id: group.to_owned(),
            message,
            source: e,
        };
    }
    if e.kind() == ErrorKind::Auth {
        let message = if e.is_token_exchange() {
            format!("{} (the OAuth client's id and secret)", e.message())
        } else if status == Some(401) {
            format!(
                "Snyk refused the token (401: {message}): check the token, that it has not expired, and that the region matches the token"
            )
        } else {
            format!("the Snyk token is not allowed to do this (403: {message})")
        };
        return Error::Auth { message, source: e };
    }
    let message = match (e.method(), e.path(), status) {
        (Some(m), Some(p), Some(s)) => format!("Snyk answered {s} to {m} {p}: {message}"),
        _ => message,
    };
    Error::Api { message, source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_a_user_meets_say_what_to_do_next() {
        let timeout = Error::ImportTimeout {
            handle: JobHandle {
                org_id: "o".into(),
                integration_id: "i".into(),
                job_id: "j".into(),
            },
            waited: Duration::from_secs(600),
        };
        let no_location = Error::NoJobLocation { location: None };
        for e in [timeout, no_location] {
            let text = e.to_string();
            assert!(
                text.contains("; run again") || text.contains(": run again"),
                "{text}"
            );
        }
    }

    #[test]
    fn every_error_shape_yields_its_message() {
        for (body, text, name) in [
            (
                r#"{"code":401,"error":"Not authorised","message":"Not authorised"}"#,
                "Not authorised",
                None,
            ),
            (
                r#"{"message":"Org not found","errorRef":"abc"}"#,
                "Org not found",
                None,
            ),
            (
                r#"{"ok":false,"code":400,"message":"Invalid parameter format.","name":"invalidParamData"}"#,
                "Invalid parameter format.",
                Some("invalidParamData"),
            ),
            (
                r#"{"jsonapi":{"version":"1.0"},"errors":[{"status":"400","detail":"bad version","source":{}}]}"#,
                "bad version",
                None,
            ),
        ] {
            let (m, n) = snyk_message(body).unwrap();
            assert_eq!(m, text);
            assert_eq!(n.as_deref(), name);
        }
        assert!(snyk_message("<html>").is_none());
    }
}
