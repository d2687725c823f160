//! Errors of the Bitbucket Cloud client.

use api_support::ErrorKind;

use crate::auth::{APP_PASSWORDS_REMOVED_ON, CredentialKind};

/// What went wrong talking to Bitbucket Cloud.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The credentials were refused (401) or lack a scope or permission (403).
    #[error("{message}")]
    Auth {
        /// What happened and what to do, for people.
        message: String,
        /// The kind of credential that was sent.
        credential: Option<CredentialKind>,
        /// What kind of credential the server saw (`x-credential-type`).
        server_credential_type: Option<String>,
        /// The scopes the credential has (`x-oauth-scopes`).
        granted_scopes: Vec<String>,
        /// The scopes the endpoint accepts (`x-accepted-oauth-scopes`).
        accepted_scopes: Vec<String>,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// The endpoint was removed by Atlassian (410, changelog CHANGE-2770). Never retried.
    #[error(
        "Bitbucket removed {path} (410 Gone, CHANGE-2770): list workspaces with GET /user/workspaces instead"
    )]
    Removed {
        /// The path that was called.
        path: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// 410 Gone for something that is not a removed endpoint: the account or workspace was
    /// suspended or deleted. Never retried.
    #[error(
        "Bitbucket answered 410 Gone for {path}: the workspace or the account behind these credentials is suspended or deleted (Bitbucket: {message})"
    )]
    Gone {
        /// The path that was called.
        path: String,
        /// Bitbucket's own words.
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// Bitbucket refused the request and said why in its error envelope
    /// (`{"type": "error", "error": {"message": …}}`).
    #[error("Bitbucket refused {request} (HTTP {status}): {message}")]
    Refused {
        /// The method and path.
        request: String,
        /// The HTTP status.
        status: u16,
        /// Bitbucket's own words (`error.message`, and `error.detail` when given).
        message: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// Listing workspaces (or another cross-workspace call) was asked of credentials that cannot
    /// do it: access tokens belong to one workspace.
    #[error(
        "{credential} credentials cannot list workspaces or call other cross-workspace endpoints (Bitbucket: \"not accessible by this authentication mechanism\"): give the workspace slugs explicitly"
    )]
    WorkspaceListingUnsupported {
        /// The credential kind in use.
        credential: CredentialKind,
    },
    /// The workspace does not exist, or these credentials cannot see it.
    #[error(
        "workspace `{workspace}` does not exist or these credentials cannot see it: check its slug (as in bitbucket.org/{workspace}) and that the credentials' user is a member"
    )]
    WorkspaceNotFound {
        /// The workspace slug.
        workspace: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// Managing a workspace's webhooks was refused (403): only the workspace's owners may, with
    /// an API token that has the webhook scopes.
    #[error(
        "Bitbucket refused the webhooks of workspace `{workspace}` (403): only an owner of the workspace may list, install or remove workspace webhooks (Workspace settings > Webhooks needs the Owner role), and an API token also needs the scope read:webhook:bitbucket to list them, write:webhook:bitbucket to install them and delete:webhook:bitbucket to remove them; ask an owner, or use an owner's credentials"
    )]
    NotWorkspaceOwner {
        /// The workspace slug.
        workspace: String,
        /// The underlying HTTP error.
        #[source]
        source: api_support::Error,
    },
    /// A configuration problem found before any request.
    #[error("{0}")]
    Config(String),
    /// A listing ended before the total its first page announced (a page without `next` in
    /// the middle), even after that page was asked for again. Nothing was planned from it.
    #[error(
        "Bitbucket's listing {what} ended after {received} of {expected} items (a page came without `next`, twice); nothing of that workspace was planned from it: run again"
    )]
    IncompleteListing {
        /// The listing, as a path.
        what: String,
        /// The total the server announced (`size`).
        expected: u64,
        /// The items received.
        received: u64,
    },
    /// Any other failure of a request.
    #[error(transparent)]
    Api(#[from] api_support::Error),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Auth { .. }
            | Self::NotWorkspaceOwner { .. }
            | Self::WorkspaceListingUnsupported { .. } => ErrorKind::Auth,
            Self::Removed { .. } | Self::Gone { .. } => ErrorKind::Gone,
            Self::WorkspaceNotFound { .. } => ErrorKind::NotFound,
            Self::Config(_) => ErrorKind::Config,
            Self::IncompleteListing { .. } => ErrorKind::Decode,
            Self::Api(e) | Self::Refused { source: e, .. } => e.kind(),
        }
    }

    /// The underlying HTTP error, if a request was made.
    pub fn api(&self) -> Option<&api_support::Error> {
        match self {
            Self::Auth { source, .. }
            | Self::Removed { source, .. }
            | Self::Gone { source, .. }
            | Self::Refused { source, .. }
            | Self::NotWorkspaceOwner { source, .. }
            | Self::WorkspaceNotFound { source, .. } => Some(source),
            Self::Api(e) => Some(e),
            Self::WorkspaceListingUnsupported { .. }
            | Self::Config(_)
            | Self::IncompleteListing { .. } => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        self.api().and_then(|e| e.status()).map(|s| s.as_u16())
    }

    /// The scopes the endpoint accepts that the credential lacks.
    pub fn missing_scopes(&self) -> Vec<String> {
        match self {
            Self::Auth {
                granted_scopes,
                accepted_scopes,
                ..
            } => missing(granted_scopes, accepted_scopes),
            _ => Vec::new(),
        }
    }

    /// Whether the request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Api(e) if e.is_retryable())
    }
}

fn scopes(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn missing(granted: &[String], accepted: &[String]) -> Vec<String> {
    if accepted.iter().any(|a| granted.contains(a)) {
        return Vec::new();
    }
    accepted.to_vec()
}

/// Whether Bitbucket said this endpoint is closed to the credential's kind.
fn not_accessible_by_mechanism(e: &api_support::Error) -> bool {
    e.body()
        .is_some_and(|b| b.contains("not accessible by this authentication mechanism"))
}

/// Bitbucket's own words in its error envelope: `error.message`, with `error.detail` when it
/// says more.
fn envelope_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = v["error"]["message"].as_str()?.trim().to_owned();
    match v["error"]["detail"].as_str().map(str::trim) {
        Some(detail) if !detail.is_empty() && detail != message => {
            Some(format!("{message} ({detail})"))
        }
        _ => Some(message),
    }
}

/// The endpoints Atlassian removed with CHANGE-2770 (they answer 410 Gone).
const REMOVED_ENDPOINTS: [&str; 4] = [
    "/2.0/workspaces",
    "/2.0/user/permissions/workspaces",
    "/2.0/user/permissions/repositories",
    "/2.0/repositories",
];

/// Turns a failed request into the most telling error.
pub(crate) fn classify(e: api_support::Error) -> Error {
    let status = e.status().map(|s| s.as_u16());
    if status == Some(410) {
        let path = e.path().unwrap_or("this endpoint").to_owned();
        // Only the endpoints CHANGE-2770 removed get its advice; any other 410 means what
        // was asked for is gone.
        let removed = e.body().is_some_and(|b| b.contains("CHANGE-2770"))
            || REMOVED_ENDPOINTS.contains(&path.trim_end_matches('/'));
        if removed {
            return Error::Removed { path, source: e };
        }
        let message = e
            .body()
            .and_then(envelope_message)
            .unwrap_or_else(|| "no reason given".to_owned());
        return Error::Gone {
            path,
            message,
            source: e,
        };
    }
    if !matches!(status, Some(401 | 403)) && !e.is_token_exchange() {
        return match (status, e.body().and_then(envelope_message)) {
            (Some(status @ (400 | 402 | 405..=499)), Some(message)) => Error::Refused {
                request: format!(
                    "{} {}",
                    e.method().map(|m| m.as_str()).unwrap_or("the request"),
                    e.path().unwrap_or_default()
                ),
                status,
                message,
                source: e,
            },
            _ => Error::Api(e),
        };
    }
    let credential = e.credential_kind().and_then(CredentialKind::from_name);
    if e.is_token_exchange() && e.kind() != ErrorKind::Auth {
        return Error::Api(e);
    }
    if e.is_token_exchange() {
        return Error::Auth {
            message: format!("{} (the OAuth consumer's key and secret)", e.message()),
            credential,
            server_credential_type: None,
            granted_scopes: Vec::new(),
            accepted_scopes: Vec::new(),
            source: e,
        };
    }
    if let Some(kind) = credential
        && !kind.can_list_workspaces()
        && not_accessible_by_mechanism(&e)
    {
        return Error::WorkspaceListingUnsupported { credential: kind };
    }
    let granted = scopes(e.header("x-oauth-scopes"));
    let accepted = scopes(e.header("x-accepted-oauth-scopes"));
    let lacking = missing(&granted, &accepted);
    let server_credential_type = e.header("x-credential-type").map(str::to_owned);
    let what = credential.map_or("the credential", CredentialKind::as_str);
    let message = match (status, credential) {
        (Some(401), Some(CredentialKind::AppPassword)) => format!(
            "Bitbucket refused the app password: app passwords were removed on {APP_PASSWORDS_REMOVED_ON}. \
             Use an Atlassian API token (with your Atlassian e-mail; scopes \
             read:user:bitbucket, read:workspace:bitbucket, read:project:bitbucket, read:repository:bitbucket) \
             or a workspace access token (without an e-mail)"
        ),
        (Some(401), Some(CredentialKind::ApiToken)) => "Bitbucket refused the Atlassian API token (401): check that the e-mail is your Atlassian account e-mail (not the Bitbucket username) and that the token has not expired or been revoked".to_owned(),
        (Some(401), Some(CredentialKind::OAuthToken)) => "Bitbucket refused the OAuth access token (401): it is invalid or expired; OAuth access tokens last one to two hours, so prefer client credentials, which renew".to_owned(),
        (Some(401), _) => format!("Bitbucket refused the {what} (401): it is invalid, expired or revoked"),
        (_, _) if !lacking.is_empty() => format!(
            "the {what} lacks the scope {} needed for {} {} (403); grant it and try again",
            lacking.join(" or "),
            e.method().map(|m| m.as_str()).unwrap_or(""),
            e.path().unwrap_or(""),
        ),
        (_, _) => format!(
            "the {what} is not allowed to do this (403): check its scopes (read:user:bitbucket, read:workspace:bitbucket, read:project:bitbucket, read:repository:bitbucket) and its access to the workspace"
        ),
    };
    Error::Auth {
        message,
        credential,
        server_credential_type,
        granted_scopes: granted,
        accepted_scopes: accepted,
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_parse_loosely() {
        assert_eq!(scopes(Some("a, b c")), vec!["a", "b", "c"]);
        assert_eq!(scopes(None), Vec::<String>::new());
        assert_eq!(
            missing(&["a".into()], &["b".into(), "c".into()]),
            vec!["b", "c"]
        );
        assert!(missing(&["a".into()], &["a".into(), "c".into()]).is_empty());
    }
}
