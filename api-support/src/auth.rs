//! Credentials: how a request is authorized, and how a refused credential is renewed.

use std::fmt;

use async_trait::async_trait;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::Error;
use crate::redact::redact_exact;

/// Authorizes requests. Implementations hold their secrets in [`SecretString`] and write `Debug`
/// by hand so that no secret is ever printed.
#[async_trait]
pub trait Authorizer: Send + Sync + fmt::Debug {
    /// A short name for the kind of credential, safe to show (for example `bearer`).
    fn kind(&self) -> &str;

    /// The `Authorization` header for the next request, marked sensitive; `None` sends none.
    async fn authorization(&self) -> Result<Option<HeaderValue>, Error>;

    /// Called once per request after a 401 answer to `rejected` (the header that was sent).
    /// Returns `true` when fresh credentials are now available and the request should be sent
    /// again (OAuth renews its access token here); the default returns `false`.
    async fn renew(&self, rejected: Option<&HeaderValue>) -> Result<bool, Error> {
        let _ = rejected;
        Ok(false)
    }

    /// Replaces every occurrence of this credential's secrets in `text` with `[REDACTED]`.
    fn redact(&self, text: &mut String);
}

/// Builds a sensitive header value from a secret. Fails only when the secret contains characters
/// a header cannot carry (for example a line break).
pub fn sensitive_header(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::config("a credential contains characters that cannot be sent in an HTTP header (line breaks or control characters)")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Base64 (standard alphabet, padded), enough for HTTP Basic.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decodes base64, standard or URL-safe alphabet, padded or not. `None` for anything else.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for c in input.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

enum Scheme {
    Basic {
        user: String,
        password: SecretString,
    },
    Prefixed {
        scheme: &'static str,
        token: SecretString,
    },
}

/// A credential that never changes: HTTP Basic, `Bearer <token>` or `token <token>`.
pub struct StaticAuth {
    kind: String,
    scheme: Scheme,
}

impl StaticAuth {
    /// HTTP Basic with `user:password`. The user name is not secret; the password is.
    pub fn basic(kind: impl Into<String>, user: impl Into<String>, password: SecretString) -> Self {
        Self {
            kind: kind.into(),
            scheme: Scheme::Basic {
                user: user.into(),
                password,
            },
        }
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(kind: impl Into<String>, token: SecretString) -> Self {
        Self {
            kind: kind.into(),
            scheme: Scheme::Prefixed {
                scheme: "Bearer",
                token,
            },
        }
    }

    /// `Authorization: token <token>` (Snyk's API tokens).
    pub fn token(kind: impl Into<String>, token: SecretString) -> Self {
        Self {
            kind: kind.into(),
            scheme: Scheme::Prefixed {
                scheme: "token",
                token,
            },
        }
    }
}

impl fmt::Debug for StaticAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StaticAuth");
        d.field("kind", &self.kind);
        match &self.scheme {
            Scheme::Basic { user, .. } => d.field("scheme", &"Basic").field("user", user),
            Scheme::Prefixed { scheme, .. } => d.field("scheme", scheme),
        };
        d.field("secret", &"[REDACTED]").finish()
    }
}

#[async_trait]
impl Authorizer for StaticAuth {
    fn kind(&self) -> &str {
        &self.kind
    }

    async fn authorization(&self) -> Result<Option<HeaderValue>, Error> {
        let value = match &self.scheme {
            Scheme::Basic { user, password } => format!(
                "Basic {}",
                base64(format!("{user}:{}", password.expose_secret()).as_bytes())
            ),
            Scheme::Prefixed { scheme, token } => format!("{scheme} {}", token.expose_secret()),
        };
        sensitive_header(&value).map(Some)
    }

    fn redact(&self, text: &mut String) {
        match &self.scheme {
            Scheme::Basic { user, password } => {
                redact_exact(text, password.expose_secret());
                redact_exact(
                    text,
                    &base64(format!("{user}:{}", password.expose_secret()).as_bytes()),
                );
            }
            Scheme::Prefixed { token, .. } => redact_exact(text, token.expose_secret()),
        }
    }
}

/// No credential at all: requests carry no `Authorization` header.
#[derive(Debug, Default, Clone, Copy)]
pub struct Anonymous;

#[async_trait]
impl Authorizer for Anonymous {
    fn kind(&self) -> &str {
        "anonymous"
    }

    async fn authorization(&self) -> Result<Option<HeaderValue>, Error> {
        Ok(None)
    }

    fn redact(&self, _text: &mut String) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn base64_round_trips_in_both_alphabets() {
        for i in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "\u{ff}\u{fe}?>",
        ] {
            assert_eq!(base64_decode(&base64(i.as_bytes())).unwrap(), i.as_bytes());
        }
        assert_eq!(
            base64_decode("-_8").unwrap(),
            base64_decode("+/8=").unwrap()
        );
        assert_eq!(base64_decode("a*b"), None);
    }

    #[tokio::test]
    async fn static_headers_are_sensitive_and_exact() {
        let basic = StaticAuth::basic("x", "me@example.com", SecretString::from("tok"));
        let h = basic.authorization().await.unwrap().unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h, "Basic bWVAZXhhbXBsZS5jb206dG9r");
        let bearer = StaticAuth::bearer("x", SecretString::from("abc"));
        assert_eq!(bearer.authorization().await.unwrap().unwrap(), "Bearer abc");
        let token = StaticAuth::token("x", SecretString::from("abc"));
        assert_eq!(token.authorization().await.unwrap().unwrap(), "token abc");
        assert!(Anonymous.authorization().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_header_breaking_secret_is_a_config_error_without_the_secret() {
        let bad = StaticAuth::bearer("x", SecretString::from("line\nbreak-secret"));
        let e = bad.authorization().await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains("break-secret"));
    }
}
