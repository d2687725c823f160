//! Snyk credentials from the environment, by the names snyk-api-import and bb-snyk-mirror use
//! (`SNYK_TOKEN`, `SNYK_OAUTH_*`, `SNYK_BITBUCKET_*`).

use api_support::env::{EnvError, var};
use secrecy::SecretString;

use crate::SnykAuth;

/// The credentials in the process's environment (see [`auth_from`]).
///
/// # Errors
/// When no credentials are set, or the variables set do not make one (the message names them).
pub fn auth() -> Result<SnykAuth, EnvError> {
    auth_from(var)
}

/// The credentials the variables `lookup` answers make: `SNYK_OAUTH_TOKEN` (a bearer token),
/// `SNYK_OAUTH_CLIENT_ID` + `SNYK_OAUTH_CLIENT_SECRET` (client credentials), or `SNYK_TOKEN`
/// (an API, service-account or personal access token), in that order.
///
/// # Errors
/// When no credentials are set, or only half of a pair (the message names them).
pub fn auth_from(lookup: impl Fn(&str) -> Option<String>) -> Result<SnykAuth, EnvError> {
    let get = |n: &str| lookup(n).filter(|v| !v.trim().is_empty());
    let id = get("SNYK_OAUTH_CLIENT_ID");
    let secret = get("SNYK_OAUTH_CLIENT_SECRET");
    if id.is_some() != secret.is_some() {
        return Err(EnvError(
            "set both SNYK_OAUTH_CLIENT_ID and SNYK_OAUTH_CLIENT_SECRET, or neither".to_owned(),
        ));
    }
    if let Some(t) = get("SNYK_OAUTH_TOKEN") {
        return Ok(SnykAuth::bearer(t));
    }
    if let (Some(i), Some(s)) = (id, secret) {
        return Ok(SnykAuth::oauth_client_credentials(i, s));
    }
    match get("SNYK_TOKEN") {
        Some(t) => Ok(SnykAuth::token(t)),
        None => Err(EnvError(
            "no Snyk credentials: set SNYK_TOKEN (API, service-account or personal access token), SNYK_OAUTH_TOKEN, or SNYK_OAUTH_CLIENT_ID and SNYK_OAUTH_CLIENT_SECRET".to_owned(),
        )),
    }
}

/// The Atlassian e-mail and API token Snyk uses to read Bitbucket, for adding and rotating
/// `bitbucket-cloud` integrations, from the process's environment (see
/// [`bitbucket_credentials_from`]).
///
/// # Errors
/// When only one of `SNYK_BITBUCKET_EMAIL` and `SNYK_BITBUCKET_API_TOKEN` is set.
pub fn bitbucket_credentials() -> Result<Option<(String, SecretString)>, EnvError> {
    bitbucket_credentials_from(var)
}

/// `SNYK_BITBUCKET_EMAIL` + `SNYK_BITBUCKET_API_TOKEN`, else the tool's own
/// `BITBUCKET_CLOUD_EMAIL` + `BITBUCKET_CLOUD_API_TOKEN` (an API token), else none.
///
/// # Errors
/// When only one of `SNYK_BITBUCKET_EMAIL` and `SNYK_BITBUCKET_API_TOKEN` is set.
pub fn bitbucket_credentials_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, SecretString)>, EnvError> {
    let get = |n: &str| lookup(n).filter(|v| !v.trim().is_empty());
    match (get("SNYK_BITBUCKET_EMAIL"), get("SNYK_BITBUCKET_API_TOKEN")) {
        (Some(e), Some(t)) => Ok(Some((e, t.into()))),
        (Some(_), None) | (None, Some(_)) => Err(EnvError(
            "set both SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN, or neither".to_owned(),
        )),
        (None, None) => Ok(get("BITBUCKET_CLOUD_EMAIL")
            .zip(get("BITBUCKET_CLOUD_API_TOKEN"))
            .map(|(e, t)| (e, t.into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::{auth_from, bitbucket_credentials_from};
    use secrecy::ExposeSecret;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn snyk_credentials_are_made_in_order_and_halves_are_refused_by_name() {
        assert!(auth_from(lookup(&[("SNYK_TOKEN", "t")])).is_ok());
        let none = auth_from(lookup(&[("SNYK_TOKEN", " ")]))
            .unwrap_err()
            .to_string();
        assert!(none.starts_with("no Snyk credentials"), "{none}");
        let half = auth_from(lookup(&[("SNYK_OAUTH_CLIENT_ID", "i")]))
            .unwrap_err()
            .to_string();
        assert!(half.contains("SNYK_OAUTH_CLIENT_SECRET"), "{half}");
        let own = bitbucket_credentials_from(lookup(&[
            ("BITBUCKET_CLOUD_EMAIL", "a@b"),
            ("BITBUCKET_CLOUD_API_TOKEN", "tok"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((own.0.as_str(), own.1.expose_secret()), ("a@b", "tok"));
        assert!(bitbucket_credentials_from(lookup(&[("SNYK_BITBUCKET_EMAIL", "a@b")])).is_err());
    }
}
