//! The credentials Bitbucket Cloud accepts today, and how each is sent.

use std::fmt;
use std::sync::Arc;

use api_support::{
    Authorizer, ClientAuthentication, HttpOptions, OAuthClientCredentials, StaticAuth,
};
use secrecy::SecretString;

/// Bitbucket's OAuth 2.0 token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://bitbucket.org/site/oauth2/access_token";

/// The date Bitbucket removed app passwords.
pub const APP_PASSWORDS_REMOVED_ON: &str = "2026-07-28";

/// The kind of a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// Atlassian API token: account e-mail + token, sent as HTTP Basic.
    ApiToken,
    /// Workspace, project or repository access token, sent as Bearer.
    AccessToken,
    /// An OAuth 2.0 access token obtained elsewhere, sent as Bearer.
    OAuthToken,
    /// OAuth 2.0 client credentials (consumer key + secret), exchanged for access tokens.
    OAuthClientCredentials,
    /// Legacy app password (removed by Bitbucket on 2026-07-28), sent as HTTP Basic.
    AppPassword,
}

impl CredentialKind {
    /// The name used in errors and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiToken => "atlassian-api-token",
            Self::AccessToken => "access-token",
            Self::OAuthToken => "oauth-access-token",
            Self::OAuthClientCredentials => "oauth-client-credentials",
            Self::AppPassword => "app-password",
        }
    }

    /// Reads a name given by [`CredentialKind::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::ApiToken,
            Self::AccessToken,
            Self::OAuthToken,
            Self::OAuthClientCredentials,
            Self::AppPassword,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether this kind can list the caller's workspaces (`GET /user/workspaces`). Access tokens
    /// belong to one workspace and cannot: their workspace slugs must be configured.
    pub fn can_list_workspaces(self) -> bool {
        !matches!(self, Self::AccessToken)
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Bitbucket Cloud credential.
///
/// `Debug` shows the kind and the non-secret parts (e-mail, user name, consumer key), never a
/// token, password or secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// Atlassian API token ("API token with scopes"). The user part is the Atlassian account
    /// e-mail, not the Bitbucket username.
    ApiToken {
        /// The Atlassian account e-mail.
        email: String,
        /// The API token.
        token: SecretString,
    },
    /// A workspace, project or repository access token.
    AccessToken(SecretString),
    /// An OAuth 2.0 access token.
    OAuthToken(SecretString),
    /// OAuth 2.0 client credentials of a consumer.
    OAuthClientCredentials {
        /// The consumer key.
        key: String,
        /// The consumer secret.
        secret: SecretString,
    },
    /// A legacy app password. Bitbucket removed app passwords on 2026-07-28; this remains only
    /// so that old configurations get a clear error instead of a silent failure.
    #[deprecated(
        note = "Bitbucket removed app passwords on 2026-07-28: use ApiToken or AccessToken"
    )]
    AppPassword {
        /// The Bitbucket username.
        username: String,
        /// The app password.
        password: SecretString,
    },
}

impl Auth {
    /// An Atlassian API token for the account `email`.
    pub fn api_token(email: impl Into<String>, token: impl Into<SecretString>) -> Self {
        Self::ApiToken {
            email: email.into(),
            token: token.into(),
        }
    }

    /// A workspace, project or repository access token.
    pub fn access_token(token: impl Into<SecretString>) -> Self {
        Self::AccessToken(token.into())
    }

    /// An OAuth 2.0 access token.
    pub fn oauth_token(token: impl Into<SecretString>) -> Self {
        Self::OAuthToken(token.into())
    }

    /// OAuth 2.0 client credentials (consumer key and secret).
    pub fn oauth_client_credentials(
        key: impl Into<String>,
        secret: impl Into<SecretString>,
    ) -> Self {
        Self::OAuthClientCredentials {
            key: key.into(),
            secret: secret.into(),
        }
    }

    /// A legacy app password (removed by Bitbucket on 2026-07-28).
    #[allow(deprecated)]
    pub fn app_password(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self::AppPassword {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The kind of this credential.
    #[allow(deprecated)]
    pub fn kind(&self) -> CredentialKind {
        match self {
            Self::ApiToken { .. } => CredentialKind::ApiToken,
            Self::AccessToken(_) => CredentialKind::AccessToken,
            Self::OAuthToken(_) => CredentialKind::OAuthToken,
            Self::OAuthClientCredentials { .. } => CredentialKind::OAuthClientCredentials,
            Self::AppPassword { .. } => CredentialKind::AppPassword,
        }
    }

    /// Builds the authorizer that signs requests with this credential.
    #[allow(deprecated)]
    pub(crate) fn authorizer(
        &self,
        token_url: &str,
        options: &HttpOptions,
    ) -> Result<Arc<dyn Authorizer>, api_support::Error> {
        let kind = self.kind().as_str();
        Ok(match self {
            Self::ApiToken { email, token } => {
                Arc::new(StaticAuth::basic(kind, email.clone(), token.clone()))
            }
            Self::AccessToken(token) | Self::OAuthToken(token) => {
                Arc::new(StaticAuth::bearer(kind, token.clone()))
            }
            Self::OAuthClientCredentials { key, secret } => Arc::new(
                OAuthClientCredentials::builder(kind, token_url, key.clone(), secret.clone())
                    .client_authentication(ClientAuthentication::BasicHeader)
                    .options(options)
                    .build()?,
            ),
            Self::AppPassword { username, password } => {
                tracing::warn!(
                    "an app password is configured; Bitbucket removed app passwords on {APP_PASSWORDS_REMOVED_ON}"
                );
                Arc::new(StaticAuth::basic(kind, username.clone(), password.clone()))
            }
        })
    }
}

impl fmt::Debug for Auth {
    #[allow(deprecated)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiToken { email, .. } => f
                .debug_struct("ApiToken")
                .field("email", email)
                .field("token", &"[REDACTED]")
                .finish(),
            Self::AccessToken(_) => f.write_str("AccessToken([REDACTED])"),
            Self::OAuthToken(_) => f.write_str("OAuthToken([REDACTED])"),
            Self::OAuthClientCredentials { key, .. } => f
                .debug_struct("OAuthClientCredentials")
                .field("key", key)
                .field("secret", &"[REDACTED]")
                .finish(),
            Self::AppPassword { username, .. } => f
                .debug_struct("AppPassword")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .finish(),
        }
    }
}
