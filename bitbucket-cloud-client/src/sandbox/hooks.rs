//! The sandbox's workspace webhooks: kept per workspace, managed through
//! `/2.0/workspaces/{workspace}/hooks` by the workspace's owners only, and delivered as Bitbucket
//! does when the estate changes: signed with the hook's secret, with `X-Request-UUID` and
//! `X-Attempt-Number`, retried twice more on a 5xx answer and never otherwise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::sandbox::{Request, Response, lock};
use api_support::{ReqwestTransport, Transport, TransportConfig};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::webhooks;

/// A webhook the sandbox holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxHook {
    /// The workspace's slug (when the hook was made).
    pub workspace_uuid: String,
    /// The hook's uuid, with braces.
    pub uuid: String,
    /// Where deliveries go.
    pub url: String,
    /// The description.
    pub description: String,
    /// Whether it delivers.
    pub active: bool,
    /// The events it delivers.
    pub events: Vec<String>,
    /// The secret deliveries are signed with (`None`: unsigned).
    pub secret: Option<String>,
}

/// One delivery the sandbox made, with the status of each attempt (0: no answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `X-Request-UUID`.
    pub request_uuid: String,
    /// `X-Event-Key`.
    pub event: String,
    /// The URL delivered to.
    pub url: String,
    /// The status of each attempt, in order.
    pub attempts: Vec<u16>,
}

/// A delivery waiting to be sent.
pub(super) struct Outgoing {
    pub(super) url: String,
    pub(super) hook_uuid: String,
    pub(super) event: String,
    pub(super) body: Bytes,
    pub(super) signature: Option<String>,
    pub(super) request_uuid: String,
}

/// Waits between attempts of one delivery.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// A random uuid with braces.
pub(super) fn random_uuid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{{{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}}}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Starts the task that sends deliveries (each on its own task, as Bitbucket sends them in
/// parallel) and records their attempts in `log`.
pub(super) fn start_courier(
    log: Arc<Mutex<Vec<DeliveryRecord>>>,
) -> mpsc::UnboundedSender<Outgoing> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        let config = TransportConfig {
            // Bitbucket waits 10 seconds for an answer.
            request_timeout: Some(Duration::from_secs(10)),
            ..TransportConfig::default()
        };
        let Ok(transport) = ReqwestTransport::new(config) else {
            return;
        };
        while let Some(out) = rx.recv().await {
            let transport = transport.clone();
            let log = log.clone();
            tokio::spawn(async move { deliver(&transport, out, &log).await });
        }
    });
    tx
}

async fn deliver(transport: &ReqwestTransport, out: Outgoing, log: &Mutex<Vec<DeliveryRecord>>) {
    let index = {
        let mut log = lock(log);
        log.push(DeliveryRecord {
            request_uuid: out.request_uuid.clone(),
            event: out.event.clone(),
            url: out.url.clone(),
            attempts: Vec::new(),
        });
        log.len() - 1
    };
    for attempt in 1..=3u32 {
        let mut builder = http::Request::post(&out.url)
            .header("content-type", "application/json")
            .header("user-agent", "Bitbucket-Webhooks/2.0")
            .header(webhooks::EVENT_KEY_HEADER, &out.event)
            .header(webhooks::HOOK_UUID_HEADER, &out.hook_uuid)
            .header(webhooks::REQUEST_UUID_HEADER, &out.request_uuid)
            .header(webhooks::ATTEMPT_HEADER, attempt.to_string());
        if let Some(sig) = &out.signature {
            builder = builder.header(webhooks::SIGNATURE_HEADER, sig);
        }
        let Ok(request) = builder.body(out.body.clone()) else {
            return;
        };
        let status = match transport.send(request).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        if let Some(record) = lock(log).get_mut(index) {
            record.attempts.push(status);
        }
        // Retried on 5xx only, and only twice.
        if !(500..600).contains(&status) {
            return;
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

/// Builds the deliveries of `event` for the hooks that want it; `body` is the payload.
pub(super) fn outgoing(hooks: &[&SandboxHook], event: &str, payload: &Value) -> Vec<Outgoing> {
    let body = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
    hooks
        .iter()
        .filter(|h| h.active && h.events.iter().any(|e| e == event))
        .map(|h| Outgoing {
            url: h.url.clone(),
            hook_uuid: h.uuid.clone(),
            event: event.to_owned(),
            signature: h
                .secret
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| webhooks::signature(s.as_bytes(), &body)),
            body: body.clone(),
            request_uuid: random_uuid(),
        })
        .collect()
}

/// A hook as Bitbucket shows it: never its secret.
pub(super) fn hook_json(h: &SandboxHook, workspace_slug: &str, origin: &str) -> Value {
    json!({
        "type": "webhook_subscription",
        "uuid": h.uuid,
        "url": h.url,
        "description": h.description,
        "subject_type": "workspace",
        "subject": {"type": "workspace", "slug": workspace_slug, "uuid": h.workspace_uuid},
        "active": h.active,
        "events": h.events,
        "secret_set": h.secret.as_deref().is_some_and(|s| !s.is_empty()),
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "links": {"self": {"href": format!("{origin}/2.0/workspaces/{workspace_slug}/hooks/{}", h.uuid)}},
    })
}

/// Reads a hook's body for a create (`existing` None) or an update; `Err` is the 400 answer.
pub(super) fn hook_from_body(
    req: &Request,
    existing: Option<&SandboxHook>,
    workspace_uuid: &str,
) -> Result<SandboxHook, Box<Response>> {
    let bad = |m: &str| {
        Box::new(Response::json(
            400,
            &json!({"type": "error", "error": {"message": m}}),
        ))
    };
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad("Malformed JSON"))?;
    let mut hook = existing.cloned().unwrap_or_else(|| SandboxHook {
        workspace_uuid: workspace_uuid.to_owned(),
        uuid: random_uuid(),
        url: String::new(),
        description: String::new(),
        active: true,
        events: Vec::new(),
        secret: None,
    });
    if let Some(url) = body.get("url").and_then(Value::as_str) {
        hook.url = url.to_owned();
    }
    if let Some(d) = body.get("description").and_then(Value::as_str) {
        hook.description = d.to_owned();
    }
    if let Some(a) = body.get("active").and_then(Value::as_bool) {
        hook.active = a;
    }
    if let Some(events) = body.get("events").and_then(Value::as_array) {
        hook.events = events
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    // An absent secret keeps it on an update; null or "" removes it.
    match body.get("secret") {
        None => {}
        Some(Value::String(s)) if s.chars().count() > webhooks::MAX_SECRET_CHARS => {
            return Err(bad("secret: Ensure this value has at most 128 characters"));
        }
        Some(Value::String(s)) if !s.is_empty() => hook.secret = Some(s.clone()),
        Some(_) => hook.secret = None,
    }
    if hook.url.is_empty() || url::Url::parse(&hook.url).is_err() {
        return Err(bad("url: Enter a valid URL."));
    }
    if hook.events.is_empty() {
        return Err(bad("events: At least one event is required."));
    }
    Ok(hook)
}
