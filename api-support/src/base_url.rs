//! Base URLs: HTTPS only (except loopback), and every request kept on the configured origin.

use std::fmt;
use std::net::IpAddr;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use url::Url;

use crate::Error;

/// Characters escaped in one path segment: everything but unreserved characters.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'@')
    .add(b':')
    .add(b';')
    .add(b'=')
    .add(b'&')
    .add(b'+')
    .add(b'$')
    .add(b',');

/// Percent-encodes one path segment (a workspace slug, an org id, …) so that it cannot change
/// the path's shape.
pub fn path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Whether `url`'s host is a loopback address: `127.0.0.0/8`, `::1` or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A validated base URL for an API, such as `https://api.bitbucket.org/2.0`.
///
/// Only `https` is accepted, except for loopback hosts, where `http` is allowed so that tests and
/// the sandboxes can run without certificates. The base may have a path prefix; it never has a
/// query, a fragment or user information.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: Url,
}

impl BaseUrl {
    /// Parses and checks a base URL.
    ///
    /// # Errors
    /// An error of kind [`crate::ErrorKind::Config`] that names the problem: not a URL, a scheme
    /// other than `https` (or `http` on loopback), user information, a query or a fragment.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let url = Url::parse(trimmed).map_err(|e| {
            Error::config(format!(
                "`{trimmed}` is not a valid base URL ({e}); expected something like https://api.example.com"
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(Error::config(format!(
                    "refusing plain-HTTP base URL `{trimmed}`: credentials would travel unencrypted. \
                     Use https://, or a loopback address (127.0.0.1, ::1, localhost) for local tests"
                )));
            }
            other => {
                return Err(Error::config(format!(
                    "unsupported scheme `{other}` in base URL `{trimmed}`; use https://"
                )));
            }
        }
        if url.host().is_none() {
            return Err(Error::config(format!("base URL `{trimmed}` has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                "base URL must not contain user information; pass credentials separately",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!(
                "base URL `{trimmed}` must not have a query or fragment"
            )));
        }
        Ok(Self { url })
    }

    /// The base as a [`Url`].
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The base's origin as text, for example `https://api.bitbucket.org`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// Joins an already-encoded relative `path` (with or without a leading `/`) to the base path.
    /// Use [`path_segment`] for each variable segment.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let base = url.path().trim_end_matches('/');
        let rel = path.trim_start_matches('/');
        let joined = if rel.is_empty() {
            base.to_owned()
        } else {
            format!("{base}/{rel}")
        };
        url.set_path(&joined);
        url
    }

    /// Checks that `url` is on this base's origin (scheme, host and port), so that credentials
    /// are never sent anywhere else, for example when following a `next` link verbatim.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] when the origin differs.
    pub fn check_origin(&self, url: &Url) -> Result<(), Error> {
        if url.origin() == self.url.origin() {
            Ok(())
        } else {
            Err(Error::config(format!(
                "refusing to send credentials to `{}`: it is not the configured origin `{}`",
                url.origin().ascii_serialization(),
                self.origin()
            )))
        }
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.url)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://api.bitbucket.org/2.0",
            "http://127.0.0.1:8080",
            "http://127.1.2.3:1/x",
            "http://[::1]:9000/api",
            "http://localhost:3000",
        ] {
            BaseUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn plain_http_elsewhere_is_refused_with_a_clear_message() {
        for bad in [
            "http://api.bitbucket.org/2.0",
            "http://10.0.0.1",
            "http://localhost.evil.com",
        ] {
            let e = BaseUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains("refusing plain-HTTP"), "{e}");
            assert!(e.message().contains("https://"), "{e}");
        }
        assert!(
            BaseUrl::parse("ftp://x")
                .unwrap_err()
                .message()
                .contains("scheme")
        );
        assert!(
            BaseUrl::parse("not a url")
                .unwrap_err()
                .message()
                .contains("not a valid")
        );
        assert!(
            BaseUrl::parse("https://u:p@x.org")
                .unwrap_err()
                .message()
                .contains("user information")
        );
    }

    #[test]
    fn join_keeps_the_base_path() {
        let b = BaseUrl::parse("https://api.bitbucket.org/2.0/").unwrap();
        assert_eq!(
            b.join("/repositories/acme").as_str(),
            "https://api.bitbucket.org/2.0/repositories/acme"
        );
        assert_eq!(
            b.join(&format!("workspaces/{}", path_segment("a/b c")))
                .as_str(),
            "https://api.bitbucket.org/2.0/workspaces/a%2Fb%20c"
        );
    }

    #[test]
    fn foreign_origins_are_refused() {
        let b = BaseUrl::parse("https://api.snyk.io").unwrap();
        b.check_origin(&Url::parse("https://api.snyk.io/v1/x?y=1").unwrap())
            .unwrap();
        for other in [
            "https://app.snyk.io/api/v1/x",
            "http://api.snyk.io/x",
            "https://api.snyk.io:444/x",
        ] {
            let e = b.check_origin(&Url::parse(other).unwrap()).unwrap_err();
            assert!(e.message().contains("refusing to send credentials"), "{e}");
        }
    }
}
