//! Bitbucket credentials and workspaces from the environment, by the names snyk-api-import
//! and bb-snyk-mirror use (`BITBUCKET_CLOUD_*`).

use api_support::env::{EnvError, list, var};

use crate::Auth;

/// The credentials in the process's environment (see [`auths_from`]).
///
/// # Errors
/// When no credentials are set, or the variables set do not make one (the message names them).
pub fn auths() -> Result<Vec<Auth>, EnvError> {
    auths_from(var)
}

/// The workspaces named in `BITBUCKET_CLOUD_WORKSPACES` (comma-separated), for credentials
/// that cannot list them (access tokens).
pub fn workspaces() -> Option<Vec<String>> {
    list(var, "BITBUCKET_CLOUD_WORKSPACES")
}

/// Whether a token has the form of an Atlassian API token (`ATATT…`), which is sent as Basic
/// with the account's e-mail, never alone.
fn looks_like_atlassian_api_token(token: &str) -> bool {
    token.trim_start().starts_with("ATATT")
}

/// The credentials the variables `lookup` answers make:
/// - `BITBUCKET_CLOUD_EMAIL` + `BITBUCKET_CLOUD_API_TOKEN`: an Atlassian API token;
/// - `BITBUCKET_CLOUD_API_TOKEN` alone: an access token; `BITBUCKET_CLOUD_ACCESS_TOKENS`: a
///   pool of them (comma-separated);
/// - `BITBUCKET_CLOUD_OAUTH_TOKEN`, or `BITBUCKET_CLOUD_OAUTH_CLIENT_ID` +
///   `BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET` (client credentials);
/// - `BITBUCKET_CLOUD_USERNAME` + `BITBUCKET_CLOUD_PASSWORD` (app passwords, removed by
///   Bitbucket in 2026).
///
/// `BITBUCKET_CLOUD_AUTH_METHOD` (`api`, `oauth`, `user`) picks one when several are set;
/// without it, client credentials come first, then API tokens, access tokens, OAuth tokens
/// and app passwords.
///
/// # Errors
/// When no credentials are set, or the variables set do not make one (the message names them).
pub fn auths_from(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<Auth>, EnvError> {
    let get = |n: &str| lookup(n).filter(|v| !v.trim().is_empty());
    let method = get("BITBUCKET_CLOUD_AUTH_METHOD").map(|m| m.to_ascii_lowercase());
    let email = get("BITBUCKET_CLOUD_EMAIL");
    let api_token = get("BITBUCKET_CLOUD_API_TOKEN");
    let client_id = get("BITBUCKET_CLOUD_OAUTH_CLIENT_ID");
    let client_secret = get("BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET");
    let user = get("BITBUCKET_CLOUD_USERNAME");
    let password = get("BITBUCKET_CLOUD_PASSWORD");
    refuse_halves(
        &email,
        &api_token,
        &client_id,
        &client_secret,
        &user,
        &password,
    )?;
    let api = || match (&email, &api_token) {
        (Some(e), Some(t)) => Some(vec![Auth::api_token(e.clone(), t.clone())]),
        (None, Some(t)) => Some(vec![Auth::access_token(t.clone())]),
        _ => None,
    };
    let access_pool = || {
        list(get, "BITBUCKET_CLOUD_ACCESS_TOKENS")
            .map(|p| p.into_iter().map(Auth::access_token).collect::<Vec<_>>())
    };
    let oauth_token = || get("BITBUCKET_CLOUD_OAUTH_TOKEN").map(|t| vec![Auth::oauth_token(t)]);
    let consumer = || match (&client_id, &client_secret) {
        (Some(i), Some(s)) => Some(vec![Auth::oauth_client_credentials(i.clone(), s.clone())]),
        _ => None,
    };
    let app_password = || match (&user, &password) {
        (Some(u), Some(p)) => Some(vec![Auth::app_password(u.clone(), p.clone())]),
        _ => None,
    };
    let chosen = match method.as_deref() {
        Some("api") => api().or_else(access_pool),
        Some("oauth") => consumer().or_else(oauth_token),
        Some("user") => app_password(),
        Some(other) => {
            return Err(EnvError(format!(
                "BITBUCKET_CLOUD_AUTH_METHOD is `{other}`: use api, oauth or user"
            )));
        }
        None => consumer()
            .or_else(api)
            .or_else(access_pool)
            .or_else(oauth_token)
            .or_else(app_password),
    };
    match chosen {
        Some(a) if !a.is_empty() => Ok(a),
        _ => Err(EnvError(
            "no Bitbucket credentials: set BITBUCKET_CLOUD_EMAIL and BITBUCKET_CLOUD_API_TOKEN (an Atlassian API token), BITBUCKET_CLOUD_API_TOKEN alone or BITBUCKET_CLOUD_ACCESS_TOKENS (access tokens), BITBUCKET_CLOUD_OAUTH_TOKEN, or BITBUCKET_CLOUD_OAUTH_CLIENT_ID and BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET".to_owned(),
        )),
    }
}

/// Refuses a credential set by half: an id without its secret, an e-mail without its token,
/// an Atlassian API token without its e-mail.
fn refuse_halves(
    email: &Option<String>,
    api_token: &Option<String>,
    client_id: &Option<String>,
    client_secret: &Option<String>,
    user: &Option<String>,
    password: &Option<String>,
) -> Result<(), EnvError> {
    let refuse = |m: &str| Err(EnvError(m.to_owned()));
    if client_id.is_some() != client_secret.is_some() {
        return refuse(
            "set both BITBUCKET_CLOUD_OAUTH_CLIENT_ID and BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET, or neither",
        );
    }
    if email.is_some() && api_token.is_none() {
        return refuse(
            "BITBUCKET_CLOUD_EMAIL is set without BITBUCKET_CLOUD_API_TOKEN: set the Atlassian API token too",
        );
    }
    if email.is_none()
        && api_token
            .as_deref()
            .is_some_and(looks_like_atlassian_api_token)
    {
        return refuse(
            "BITBUCKET_CLOUD_API_TOKEN looks like an Atlassian API token (it starts with ATATT), which Bitbucket accepts only together with the account's e-mail: set BITBUCKET_CLOUD_EMAIL to your Atlassian account e-mail. (Workspace, project and repository access tokens are used alone; they do not start with ATATT.)",
        );
    }
    if user.is_some() != password.is_some() {
        return refuse(
            "set both BITBUCKET_CLOUD_USERNAME and BITBUCKET_CLOUD_PASSWORD, or neither (app passwords were removed by Bitbucket on 2026-07-28: prefer BITBUCKET_CLOUD_EMAIL + BITBUCKET_CLOUD_API_TOKEN)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::auths_from;

    fn from(vars: &[(&str, &str)]) -> Result<usize, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        auths_from(|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
            .map(|a| a.len())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_way_of_setting_credentials_makes_them_and_halves_are_refused_by_name() {
        assert_eq!(
            from(&[
                ("BITBUCKET_CLOUD_EMAIL", "a@b"),
                ("BITBUCKET_CLOUD_API_TOKEN", "ATATTx")
            ]),
            Ok(1)
        );
        assert_eq!(from(&[("BITBUCKET_CLOUD_ACCESS_TOKENS", "t1, t2,")]), Ok(2));
        assert_eq!(from(&[("BITBUCKET_CLOUD_OAUTH_TOKEN", "o")]), Ok(1));
        let atlassian_alone = from(&[("BITBUCKET_CLOUD_API_TOKEN", "ATATTx")]).unwrap_err();
        assert!(
            atlassian_alone.contains("set BITBUCKET_CLOUD_EMAIL"),
            "{atlassian_alone}"
        );
        let half = from(&[("BITBUCKET_CLOUD_OAUTH_CLIENT_ID", "i")]).unwrap_err();
        assert!(
            half.contains("BITBUCKET_CLOUD_OAUTH_CLIENT_SECRET"),
            "{half}"
        );
        let blank = from(&[("BITBUCKET_CLOUD_OAUTH_TOKEN", "  ")]).unwrap_err();
        assert!(blank.starts_with("no Bitbucket credentials"), "{blank}");
        let method = from(&[("BITBUCKET_CLOUD_AUTH_METHOD", "magic")]).unwrap_err();
        assert!(method.contains("use api, oauth or user"), "{method}");
    }
}
