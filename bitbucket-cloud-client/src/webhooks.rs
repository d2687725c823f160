//! Workspace webhooks: their models, the signature Bitbucket puts on each delivery, and the
//! repository events a mirror follows (see `docs/api-facts/bitbucket-cloud.md`, "Webhooks in
//! detail").
//!
//! A delivery is a `POST` whose raw body Bitbucket signs with HMAC-SHA256 under the hook's
//! secret: `X-Hub-Signature: sha256=<hex>`. Check it with [`verify_signature`] on the bytes as
//! received, before parsing anything; then read the event with [`RepositoryEvent::parse`].

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The events a mirror subscribes to: a repository created, updated (renamed), transferred to
/// another workspace, or deleted.
pub const MIRROR_EVENTS: [&str; 4] = [
    "repo:created",
    "repo:updated",
    "repo:transfer",
    "repo:deleted",
];

/// The largest payload Bitbucket delivers (it drops larger ones): 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The longest secret Bitbucket accepts for a webhook.
pub const MAX_SECRET_CHARS: usize = 128;

/// The header carrying the event key (`repo:created`, …).
pub const EVENT_KEY_HEADER: &str = "x-event-key";
/// The header carrying the delivery's own uuid, the same on every attempt of one delivery.
pub const REQUEST_UUID_HEADER: &str = "x-request-uuid";
/// The header carrying the webhook's uuid.
pub const HOOK_UUID_HEADER: &str = "x-hook-uuid";
/// The header counting attempts of one delivery (1, 2, 3).
pub const ATTEMPT_HEADER: &str = "x-attempt-number";
/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

/// The signature of `body` under `secret`, as Bitbucket sends it: `sha256=<hex>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for b in tag.as_ref() {
        text.push_str(&format!("{b:02x}"));
    }
    text
}

/// Why a delivery's signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `X-Hub-Signature` header: the hook has no secret, or the request is not Bitbucket's.
    #[error("the delivery carries no X-Hub-Signature header (is the webhook's secret set?)")]
    Missing,
    /// Another algorithm than SHA-256 (`sha1=…`); Bitbucket signs with SHA-256 only.
    #[error("the signature uses `{0}`, not sha256")]
    Algorithm(String),
    /// Not `sha256=` followed by 64 hexadecimal digits.
    #[error("the signature is not sha256=<64 hexadecimal digits>")]
    Malformed,
    /// Well formed, but not the body's signature under our secret.
    #[error("the signature does not match the body under the configured secret")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature`) against `body` under `secret`, comparing in
/// constant time.
///
/// # Errors
/// Why the signature is refused; nothing of the body is read beyond the HMAC.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_signature_any(&[secret], body, header)
}

/// [`verify_signature`] against any of several secrets (the current one and the one before
/// it, while webhooks are moved to a new secret): valid when one of them signed the body.
///
/// # Errors
/// As [`verify_signature`]; [`SignatureError::Mismatch`] when no secret signed it.
pub fn verify_signature_any(
    secrets: &[&[u8]],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let (algorithm, hex) = header.split_once('=').ok_or(SignatureError::Malformed)?;
    if !algorithm.eq_ignore_ascii_case("sha256") {
        let shown: String = algorithm.chars().take(16).collect();
        return Err(SignatureError::Algorithm(shown));
    }
    let tag = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let signed_by = |secret: &&[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        ring::hmac::verify(&key, body, &tag).is_ok()
    };
    if secrets.iter().any(signed_by) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// 32 bytes from 64 hexadecimal digits.
fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// The repository events a mirror follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKey {
    /// `repo:created`.
    #[serde(rename = "repo:created")]
    Created,
    /// `repo:updated`: name, description, website or language changed.
    #[serde(rename = "repo:updated")]
    Updated,
    /// `repo:transfer`: moved to another workspace.
    #[serde(rename = "repo:transfer")]
    Transfer,
    /// `repo:deleted`.
    #[serde(rename = "repo:deleted")]
    Deleted,
}

impl EventKey {
    /// The key as Bitbucket writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "repo:created",
            Self::Updated => "repo:updated",
            Self::Transfer => "repo:transfer",
            Self::Deleted => "repo:deleted",
        }
    }

    /// The key of an `X-Event-Key` header; `None` for events a mirror does not follow.
    pub fn parse(key: &str) -> Option<Self> {
        match key.trim() {
            "repo:created" => Some(Self::Created),
            "repo:updated" => Some(Self::Updated),
            "repo:transfer" => Some(Self::Transfer),
            "repo:deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

impl std::fmt::Display for EventKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a mirror reads of a repository event: which repository, and where it is now. The
/// payload is trusted for nothing else; the repository is read again by uuid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryEvent {
    /// The event.
    pub key: EventKey,
    /// The repository's uuid, with braces.
    pub uuid: String,
    /// `workspace/slug` as the payload gives it (the new name after a rename or a transfer).
    pub full_name: String,
    /// The workspace's slug the repository is in now.
    pub workspace: String,
    /// The workspace's uuid, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<String>,
}

/// Why a signed delivery could not be read as a repository event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The body is not JSON, or lacks the repository's uuid and name.
    #[error("the payload is not a repository event: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Payload {
    repository: PayloadRepository,
}

#[derive(Deserialize)]
struct PayloadRepository {
    uuid: String,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    workspace: Option<crate::WorkspaceRef>,
    #[serde(default)]
    owner: Option<crate::WorkspaceRef>,
}

impl RepositoryEvent {
    /// Reads a delivery's body (after its signature was checked) as the event `key`.
    ///
    /// # Errors
    /// [`EventError::Malformed`] when it is not JSON or names no repository uuid and workspace.
    pub fn parse(key: EventKey, body: &[u8]) -> Result<Self, EventError> {
        let payload: Payload = serde_json::from_slice(body).map_err(|e| {
            // The line and column only: nothing of the body is repeated.
            EventError::Malformed(format!(
                "{} at line {} column {}",
                match e.classify() {
                    serde_json::error::Category::Data => "missing or invalid repository fields",
                    serde_json::error::Category::Eof => "the JSON ends early",
                    _ => "not JSON",
                },
                e.line(),
                e.column()
            ))
        })?;
        let r = payload.repository;
        let workspace_ref = r.workspace.or(r.owner);
        let workspace = workspace_ref
            .as_ref()
            .and_then(|w| w.slug.clone())
            .or_else(|| {
                r.full_name
                    .as_deref()
                    .and_then(|f| f.split_once('/'))
                    .map(|(w, _)| w.to_owned())
            })
            .filter(|w| !w.is_empty())
            .ok_or_else(|| {
                EventError::Malformed("the repository's workspace is not given".to_owned())
            })?;
        let uuid = r.uuid.trim().to_owned();
        if uuid.is_empty() {
            return Err(EventError::Malformed(
                "the repository's uuid is empty".to_owned(),
            ));
        }
        let uuid = if uuid.starts_with('{') {
            uuid
        } else {
            format!("{{{uuid}}}")
        };
        Ok(Self {
            key,
            full_name: r.full_name.unwrap_or_else(|| format!("{workspace}/{uuid}")),
            workspace,
            workspace_uuid: workspace_ref.and_then(|w| w.uuid),
            uuid,
        })
    }
}

/// A workspace webhook as Bitbucket shows it (`GET /workspaces/{workspace}/hooks`). Its secret
/// is never shown; `secret_set` says whether it has one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The webhook's uuid, with braces.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Where deliveries go.
    #[serde(default)]
    pub url: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether it delivers.
    #[serde(default)]
    pub active: bool,
    /// The events it delivers.
    #[serde(default)]
    pub events: Vec<String>,
    /// Whether it has a secret.
    #[serde(default)]
    pub secret_set: bool,
}

impl crate::Identified for Webhook {
    fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref()
    }
}

/// A workspace webhook to create, or what to change in one.
#[derive(Clone)]
pub struct WebhookSpec {
    /// Where deliveries go.
    pub url: String,
    /// The description.
    pub description: String,
    /// Whether it delivers.
    pub active: bool,
    /// The events.
    pub events: Vec<String>,
    /// The secret Bitbucket signs deliveries with (at most [`MAX_SECRET_CHARS`] characters).
    pub secret: SecretString,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("url", &self.url)
            .field("description", &self.description)
            .field("active", &self.active)
            .field("events", &self.events)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl WebhookSpec {
    /// An active hook for [`MIRROR_EVENTS`] delivering to `url`, signed with `secret`.
    pub fn mirror(url: impl Into<String>, secret: SecretString) -> Self {
        Self {
            url: url.into(),
            description: "bb-snyk-mirror".to_owned(),
            active: true,
            events: MIRROR_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
            secret,
        }
    }

    /// The request body (the only place the secret is written).
    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.url,
            "description": self.description,
            "active": self.active,
            "events": self.events,
            "secret": self.secret.expose_secret(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse() {
        let body = br#"{"repository":{"uuid":"{1}"}}"#;
        let sig = signature(b"s3cret", body);
        assert!(sig.starts_with("sha256=") && sig.len() == 71);
        assert_eq!(verify_signature(b"s3cret", body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_signature(b"other", body, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", b"changed", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", body, None),
            Err(SignatureError::Missing)
        );
        let sha1 = format!("sha1={}", &sig[7..47]);
        assert_eq!(
            verify_signature(b"s3cret", body, Some(&sha1)),
            Err(SignatureError::Algorithm("sha1".to_owned()))
        );
        assert_eq!(
            verify_signature(b"s3cret", body, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        // Known answer (RFC 4231 test case 2).
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn events_read_the_repository_and_its_workspace() {
        let body = br#"{"actor":{},"repository":{"uuid":"{r1}","full_name":"acme/api","workspace":{"slug":"acme","uuid":"{w1}"}}}"#;
        let e = RepositoryEvent::parse(EventKey::Created, body).unwrap();
        assert_eq!(e.uuid, "{r1}");
        assert_eq!(e.workspace, "acme");
        assert_eq!(e.full_name, "acme/api");
        assert_eq!(e.workspace_uuid.as_deref(), Some("{w1}"));
        // An older payload with `owner` and no workspace, and a uuid without braces.
        let body = br#"{"repository":{"uuid":"r2","full_name":"team/x"}}"#;
        let e = RepositoryEvent::parse(EventKey::Deleted, body).unwrap();
        assert_eq!((e.uuid.as_str(), e.workspace.as_str()), ("{r2}", "team"));
        let err = RepositoryEvent::parse(EventKey::Created, b"{not json").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(RepositoryEvent::parse(EventKey::Created, br#"{"repository":{}}"#).is_err());
        assert_eq!(EventKey::parse("repo:push"), None);
        assert_eq!(EventKey::parse("repo:transfer"), Some(EventKey::Transfer));
    }
}
