//! Snyk regions, the `SNYK_API` forms users carry, and the region a personal access token names.

use std::fmt;

use api_support::BaseUrl;
use url::Url;

use crate::Error;

/// A Snyk region, each with its own API host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// SNYK-US-01, `https://api.snyk.io` (the default).
    Us01,
    /// SNYK-US-02, `https://api.us.snyk.io`.
    Us02,
    /// SNYK-EU-01, `https://api.eu.snyk.io`.
    Eu01,
    /// SNYK-AU-01, `https://api.au.snyk.io`.
    Au01,
    /// SNYK-GOV-01, `https://api.snykgov.io`.
    Gov01,
}

impl Region {
    /// Every region.
    pub const ALL: [Region; 5] = [
        Region::Us01,
        Region::Us02,
        Region::Eu01,
        Region::Au01,
        Region::Gov01,
    ];

    /// The region's name, such as `SNYK-EU-01`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Us01 => "SNYK-US-01",
            Self::Us02 => "SNYK-US-02",
            Self::Eu01 => "SNYK-EU-01",
            Self::Au01 => "SNYK-AU-01",
            Self::Gov01 => "SNYK-GOV-01",
        }
    }

    /// The API host URL, such as `https://api.eu.snyk.io`.
    pub fn api_host(self) -> &'static str {
        match self {
            Self::Us01 => "https://api.snyk.io",
            Self::Us02 => "https://api.us.snyk.io",
            Self::Eu01 => "https://api.eu.snyk.io",
            Self::Au01 => "https://api.au.snyk.io",
            Self::Gov01 => "https://api.snykgov.io",
        }
    }

    /// Reads a region name: `SNYK-EU-01`, also `EU-01` or `eu01`, in any case.
    ///
    /// # Errors
    /// [`Error::Config`] listing the valid names.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let key: String = name
            .trim()
            .to_ascii_uppercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let key = key.strip_prefix("SNYK").unwrap_or(&key);
        Self::ALL
            .into_iter()
            .find(|r| {
                let full: String = r.name()[5..].chars().filter(|c| *c != '-').collect();
                full == key
            })
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown Snyk region `{name}`; valid regions: {}",
                    Self::ALL.map(Region::name).join(", ")
                ))
            })
    }

    /// The region whose API host is `host` (a host name such as `api.eu.snyk.io`).
    pub fn from_host(host: &str) -> Option<Self> {
        let host = host.trim().trim_end_matches('/');
        let host = host
            .strip_prefix("https://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        Self::ALL
            .into_iter()
            .find(|r| r.api_host().trim_start_matches("https://") == host)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Region {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Normalises the API address forms users carry from older tools to the API host (with any
/// path prefix of a proxy kept):
/// `https://api.eu.snyk.io/v1` → `https://api.eu.snyk.io`;
/// `https://snyk.io/api/v1` → `https://api.snyk.io`;
/// `https://app.eu.snyk.io/api` → `https://api.eu.snyk.io`;
/// `https://api.snyk.io/rest` → `https://api.snyk.io`.
///
/// # Errors
/// [`Error::Config`] for something that is not an HTTPS URL (plain HTTP is allowed on loopback).
pub fn normalize_api_url(input: &str) -> Result<BaseUrl, Error> {
    let trimmed = input.trim();
    let mut url = Url::parse(trimmed).map_err(|e| {
        Error::Config(format!(
            "the Snyk API address `{trimmed}` is not a URL ({e}); expected something like https://api.eu.snyk.io"
        ))
    })?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let new_host = if host == "snyk.io" || host == "app.snyk.io" || host == "www.snyk.io" {
        Some("api.snyk.io".to_owned())
    } else if host == "app.snykgov.io" {
        Some("api.snykgov.io".to_owned())
    } else {
        host.strip_prefix("app.")
            .filter(|rest| rest.ends_with(".snyk.io"))
            .map(|rest| format!("api.{rest}"))
    };
    if let Some(h) = new_host {
        url.set_host(Some(&h))
            .map_err(|e| Error::Config(format!("the Snyk API address `{trimmed}`: {e}")))?;
    }
    let mut path = url.path().trim_end_matches('/').to_owned();
    for suffix in ["/api/v1", "/v1", "/rest", "/api"] {
        if let Some(stripped) = path.strip_suffix(suffix) {
            path = stripped.to_owned();
            break;
        }
    }
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    let text = url.as_str().trim_end_matches('/').to_owned();
    BaseUrl::parse(&text)
        .map_err(|e| Error::Config(format!("the Snyk API address: {}", e.message())))
}

/// The API host a personal access or service-account token names in its `h` claim, as a URL
/// such as `https://api.eu.snyk.io`. Classic API tokens (UUIDs) name none.
pub fn host_from_token(token: &str) -> Option<String> {
    let mut parts = token.trim().split('.');
    let prefix = parts.next()?;
    if prefix != "snyk_uat" && prefix != "snyk_sat" {
        return None;
    }
    let _id = parts.next()?;
    let payload = parts.next()?;
    let json = api_support::base64_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let h = claims.get("h")?.as_str()?.trim().trim_end_matches('/');
    if h.is_empty() {
        return None;
    }
    Some(if h.starts_with("http://") || h.starts_with("https://") {
        h.to_owned()
    } else {
        format!("https://{h}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_and_hosts() {
        let table = [
            ("SNYK-US-01", "https://api.snyk.io"),
            ("snyk-us-02", "https://api.us.snyk.io"),
            ("EU-01", "https://api.eu.snyk.io"),
            ("au01", "https://api.au.snyk.io"),
            ("SNYK-GOV-01", "https://api.snykgov.io"),
        ];
        for (name, host) in table {
            let r = Region::parse(name).unwrap();
            assert_eq!(r.api_host(), host);
            assert_eq!(Region::from_host(&host[8..]), Some(r));
        }
        let e = Region::parse("SNYK-MARS-01").unwrap_err();
        assert!(e.to_string().contains("SNYK-MARS-01"));
        for r in Region::ALL {
            assert!(e.to_string().contains(r.name()), "{e}");
        }
    }

    #[test]
    fn snyk_api_forms_normalise_to_the_host() {
        let table = [
            ("https://api.snyk.io/v1", "https://api.snyk.io/"),
            ("https://api.eu.snyk.io/v1/", "https://api.eu.snyk.io/"),
            ("https://snyk.io/api/v1", "https://api.snyk.io/"),
            ("https://app.snyk.io/api", "https://api.snyk.io/"),
            ("https://app.eu.snyk.io/api", "https://api.eu.snyk.io/"),
            ("https://app.au.snyk.io/api/v1", "https://api.au.snyk.io/"),
            ("https://app.us.snyk.io/api", "https://api.us.snyk.io/"),
            ("https://app.snykgov.io/api", "https://api.snykgov.io/"),
            ("https://api.us.snyk.io/rest", "https://api.us.snyk.io/"),
            ("https://api.snyk.io", "https://api.snyk.io/"),
            (
                "https://proxy.example.com/snyk/api/v1",
                "https://proxy.example.com/snyk",
            ),
            ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/"),
        ];
        for (input, expected) in table {
            assert_eq!(
                normalize_api_url(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        assert!(normalize_api_url("http://api.snyk.io/v1").is_err());
        assert!(normalize_api_url("snyk").is_err());
    }

    #[test]
    fn a_pat_names_its_region() {
        let payload = api_support::base64(br#"{"h":"api.eu.snyk.io","e":1}"#);
        let payload = payload
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        let pat = format!("snyk_uat.1a2b3c4d.{payload}.c2lnbmF0dXJl");
        assert_eq!(
            host_from_token(&pat).as_deref(),
            Some("https://api.eu.snyk.io")
        );
        assert_eq!(
            Region::from_host(&host_from_token(&pat).unwrap()),
            Some(Region::Eu01)
        );
        assert_eq!(
            host_from_token("0f4c2a6e-1111-2222-3333-444455556666"),
            None
        );
        assert_eq!(host_from_token("snyk_uat.x.!!!.y"), None);
    }
}
