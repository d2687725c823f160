//! Workspace webhooks against the sandbox: installed idempotently by URL, refused to a
//! non-owner with a message naming the permission, and delivered signed, with retries on 5xx
//! only, as Bitbucket does.

use std::time::Duration;

use bitbucket_cloud_client::sandbox::{SAMPLE_API_TOKEN, SAMPLE_EMAIL, Sandbox, SandboxRepository};
use bitbucket_cloud_client::webhooks::{self, WebhookSpec};
use bitbucket_cloud_client::{Auth, BitbucketClient, Error, HookChange};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(sandbox: &Sandbox, email: &str, token: &str) -> BitbucketClient {
    BitbucketClient::builder()
        .base_url(sandbox.base_url())
        .auth(Auth::api_token(email, token))
        .build()
        .unwrap()
}

#[tokio::test]
async fn installing_twice_leaves_one_hook_with_the_new_secret() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let client = client(&sandbox, SAMPLE_EMAIL, SAMPLE_API_TOKEN);
    let url = "https://mirror.example.com/webhooks/bitbucket";
    let (hook, change) = client
        .install_workspace_hook("acme-platform", &WebhookSpec::mirror(url, "first".into()))
        .await
        .unwrap();
    assert_eq!(change, HookChange::Created);
    assert!(hook.secret_set && hook.active);
    let (_, change) = client
        .install_workspace_hook(
            "acme-platform",
            &WebhookSpec::mirror(format!("{url}/"), "second".into()),
        )
        .await
        .unwrap();
    assert_eq!(change, HookChange::Updated);
    let hooks = sandbox.hooks("acme-platform");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].secret.as_deref(), Some("second"));
    assert_eq!(hooks[0].events, webhooks::MIRROR_EVENTS);
    let listed = client
        .workspace_hooks("acme-platform")
        .collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret_set);
    assert_eq!(
        client
            .remove_workspace_hooks("acme-platform", url)
            .await
            .unwrap(),
        1
    );
    assert!(sandbox.hooks("acme-platform").is_empty());
}

#[tokio::test]
async fn a_non_owner_is_told_which_permission_is_missing() {
    let sandbox = Sandbox::builder()
        .api_token("member@example.com", "member-token")
        .non_owner("member@example.com")
        .start()
        .await
        .unwrap();
    let client = client(&sandbox, "member@example.com", "member-token");
    let err = client
        .install_workspace_hook(
            "acme-platform",
            &WebhookSpec::mirror("https://x.example/h", "s".into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotWorkspaceOwner { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("owner of the workspace") && text.contains("acme-platform"),
        "{text}"
    );
    assert!(sandbox.hooks("acme-platform").is_empty());
}

#[tokio::test]
async fn changes_are_delivered_signed_and_retried_on_5xx_only() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("x-event-key", "repo:created"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&receiver)
        .await;
    let sandbox = Sandbox::start_sample().await.unwrap();
    let client = client(&sandbox, SAMPLE_EMAIL, SAMPLE_API_TOKEN);
    let url = format!("{}/hook", receiver.uri());
    client
        .install_workspace_hook("acme-platform", &WebhookSpec::mirror(&url, "s3cret".into()))
        .await
        .unwrap();
    let uuid = "{00000000-0000-4000-8000-0000000c0ffe}";
    assert!(sandbox.add_repository("acme-platform", SandboxRepository::new("fresh", uuid)));
    assert!(sandbox.rename_repository("acme-platform", "fresh", "fresher"));
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = sandbox.deliveries();
        if deliveries.len() == 2 && deliveries.iter().all(|d| d.attempts.last() == Some(&202)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = deliveries
        .iter()
        .find(|d| d.event == "repo:created")
        .unwrap();
    assert_eq!(created.attempts, [503, 503, 202]);
    let updated = deliveries
        .iter()
        .find(|d| d.event == "repo:updated")
        .unwrap();
    assert_eq!(updated.attempts, [202]);
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    for r in &requests {
        let sig = r.headers.get("x-hub-signature").unwrap().to_str().unwrap();
        webhooks::verify_signature(b"s3cret", &r.body, Some(sig)).unwrap();
        let key =
            webhooks::EventKey::parse(r.headers.get("x-event-key").unwrap().to_str().unwrap())
                .unwrap();
        let event = webhooks::RepositoryEvent::parse(key, &r.body).unwrap();
        assert_eq!(event.uuid, uuid);
        assert_eq!(event.workspace, "acme-platform");
    }
    // The three attempts of one delivery share its X-Request-UUID and count up.
    let attempts: Vec<(&str, &str)> = requests
        .iter()
        .filter(|r| r.headers.get("x-event-key").unwrap() == "repo:created")
        .map(|r| {
            (
                r.headers.get("x-request-uuid").unwrap().to_str().unwrap(),
                r.headers.get("x-attempt-number").unwrap().to_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|(id, _)| *id == attempts[0].0));
    assert_eq!(
        attempts.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
}
