//! The request loop against wiremock, on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use api_support::{
    ApiRequest, Authorizer, Body, Credential, CredentialPool, Delivery, Error, ErrorKind,
    HttpClient, RateLimit, RetryPolicy, StaticAuth, TransportConfig, async_trait, sensitive_header,
};
use http::{HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "tkn-9f8e7d6c5b4a";

fn bearer() -> Credential {
    Credential::new(Arc::new(StaticAuth::bearer(
        "access-token",
        SecretString::from(TOKEN),
    )))
}

fn client_for(base: &str, retry: RetryPolicy, pool: CredentialPool) -> HttpClient {
    HttpClient::builder(base)
        .credentials(pool)
        .retry(retry)
        .transport_config(TransportConfig::without_timers())
        .request_id_headers([http::HeaderName::from_static("x-request-id")])
        .build()
        .expect("client")
}

fn client(server: &MockServer) -> HttpClient {
    client_for(
        &server.uri(),
        RetryPolicy::default(),
        CredentialPool::single(bearer()),
    )
}

fn get(client: &HttpClient, p: &str) -> ApiRequest {
    ApiRequest::new(Method::GET, client.url(p, &[]))
}

fn post(client: &HttpClient, p: &str) -> ApiRequest {
    ApiRequest::new(Method::POST, client.url(p, &[])).with_body(
        Body::json(&serde_json::json!({"target": {"owner": "ws", "name": "r"}})).unwrap(),
    )
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_string("Rate limit for this resource has been exceeded"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
        .mount(&server)
        .await;

    let c = client(&server);
    let start = Instant::now();
    let answer = c
        .send(get(&c, "/user"))
        .await
        .expect("success after one 429");
    let waited = start.elapsed();
    assert_eq!(answer.status(), 200);
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_millis(7100),
        "waited {waited:?}"
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_honoured() {
    let server = MockServer::start().await;
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", when.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;

    let c = client(&server);
    let start = Instant::now();
    c.send(get(&c, "/x")).await.expect("success");
    let waited = start.elapsed();
    // The date has one-second resolution and the wall clock moves on meanwhile.
    assert!(
        waited >= Duration::from_secs(28) && waited <= Duration::from_secs(30),
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn three_503s_then_200_make_four_requests() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>busy</html>"))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;

    let c = client(&server);
    let start = Instant::now();
    c.send(get(&c, "/x"))
        .await
        .expect("fourth attempt succeeds");
    assert_eq!(requests(&server).await, 4);
    // Full jitter: at most 1 + 2 + 4 seconds of backoff.
    assert!(start.elapsed() <= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_post_answered_500_is_sent_exactly_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .mount(&server)
        .await;

    let c = client(&server);
    let e = c.send(post(&c, "/import")).await.unwrap_err();
    assert_eq!(requests(&server).await, 1);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.status().map(|s| s.as_u16()), Some(500));
    assert_eq!(e.attempts(), 1);
    assert!(!e.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn a_post_answered_503_or_429_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).insert_header("Location", "/job/1"))
        .mount(&server)
        .await;

    let c = client(&server);
    let answer = c.send(post(&c, "/import")).await.expect("created");
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.header("location"), Some("/job/1"));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_post_to_a_closed_port_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);

    let c = client_for(
        &format!("http://127.0.0.1:{port}"),
        RetryPolicy::default(),
        CredentialPool::single(bearer()),
    );
    let e = c.send(post(&c, "/import")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert_eq!(e.delivery(), Delivery::NotSent);
    assert_eq!(e.attempts(), 6, "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn not_found_and_gone_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/missing"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "type": "error", "error": {"message": "Repository not found"}
        })))
        .mount(&server)
        .await;
    Mock::given(path("/workspaces"))
        .respond_with(ResponseTemplate::new(410).set_body_string(
            r#"{"type":"error","error":{"message":"CHANGE-2770 - Functionality has been deprecated"}}"#,
        ))
        .mount(&server)
        .await;

    let c = client(&server);
    let e = c.send(get(&c, "/missing")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.body().unwrap().contains("Repository not found"));
    let g = c.send(get(&c, "/workspaces")).await.unwrap_err();
    assert_eq!(g.kind(), ErrorKind::Gone);
    assert!(g.body().unwrap().contains("CHANGE-2770"));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test(start_paused = true)]
async fn the_total_wait_cap_ends_the_loop_with_the_last_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "4"))
        .mount(&server)
        .await;

    let retry = RetryPolicy {
        max_attempts: 100,
        max_total_wait: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    let c = client_for(&server.uri(), retry, CredentialPool::single(bearer()));
    let start = Instant::now();
    let e = c.send(get(&c, "/x")).await.unwrap_err();
    // 4 s + 4 s fit within 10 s; a third wait would not.
    assert_eq!(start.elapsed(), Duration::from_secs(8));
    assert_eq!(e.attempts(), 3);
    assert_eq!(e.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn exact_headers_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("user-agent", api_support::DEFAULT_USER_AGENT))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    c.send(get(&c, "/user")).await.expect("headers matched");
    assert!(api_support::DEFAULT_USER_AGENT.starts_with("bb-snyk-mirror/"));

    let basic = client_for(
        &server.uri(),
        RetryPolicy::none(),
        CredentialPool::single(Credential::new(Arc::new(StaticAuth::basic(
            "api-token",
            "me@example.com",
            SecretString::from("tok"),
        )))),
    );
    Mock::given(method("POST"))
        .and(header("authorization", "Basic bWVAZXhhbXBsZS5jb206dG9r"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    basic.send(post(&basic, "/x")).await.expect("basic matched");
}

#[tokio::test(start_paused = true)]
async fn error_bodies_are_redacted_and_capped() {
    let server = MockServer::start().await;
    let long = "x".repeat(10_000);
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-request-id", "req-42")
                .set_body_string(format!(
                    r#"{{"message":"bad","echo":"Bearer {TOKEN}","access_token":"zzz-secret","pad":"{long}"}}"#
                )),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.send(get(&c, "/x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Client);
    assert_eq!(e.request_id(), Some("req-42"));
    let body = e.body().unwrap();
    assert!(body.len() <= 4096 + '…'.len_utf8(), "{}", body.len());
    assert!(body.contains(r#""message":"bad""#));
    for shown in [body.to_owned(), e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(TOKEN));
        assert!(!shown.contains("zzz-secret"));
    }
    assert!(e.to_string().contains("request id req-42"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn the_rate_limiter_waits_inside_the_loop() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let c = client_for(
        &server.uri(),
        RetryPolicy::default(),
        CredentialPool::single(bearer().with_limit(RateLimit::per_minute(2))),
    );
    let start = Instant::now();
    for _ in 0..3 {
        c.send(get(&c, "/x")).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_credential_rests_while_another_carries_on() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer first"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "300"))
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer second"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let pool = CredentialPool::new(
        ["first", "second"]
            .map(|t| Credential::new(Arc::new(StaticAuth::bearer("t", SecretString::from(t))))),
    );
    let c = client_for(&server.uri(), RetryPolicy::default(), pool.clone());
    let start = Instant::now();
    for _ in 0..3 {
        c.send(get(&c, "/x"))
            .await
            .expect("the second token answers");
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    // One 429 on the first token, then it rests: every later request goes to the second.
    assert_eq!(pool.usage(), vec![1, 3]);
    assert_eq!(requests(&server).await, 4);
}

/// An authorizer whose first token is stale and whose renewal yields a fresh one.
#[derive(Debug)]
struct Renewing {
    renewals: AtomicU32,
    can_renew: bool,
}

#[async_trait]
impl Authorizer for Renewing {
    fn kind(&self) -> &str {
        "oauth"
    }
    async fn authorization(&self) -> Result<Option<HeaderValue>, Error> {
        let n = self.renewals.load(Ordering::SeqCst);
        sensitive_header(&format!("Bearer gen-{n}")).map(Some)
    }
    async fn renew(&self, _rejected: Option<&HeaderValue>) -> Result<bool, Error> {
        if self.can_renew {
            self.renewals.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.can_renew)
    }
    fn redact(&self, _text: &mut String) {}
}

#[tokio::test(start_paused = true)]
async fn a_401_gets_one_renewal_then_fails() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer gen-1"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;

    let renewing = Arc::new(Renewing {
        renewals: AtomicU32::new(0),
        can_renew: true,
    });
    let c = client_for(
        &server.uri(),
        RetryPolicy::default(),
        CredentialPool::single(Credential::new(renewing.clone())),
    );
    c.send(get(&c, "/x")).await.expect("renewed token works");
    assert_eq!(renewing.renewals.load(Ordering::SeqCst), 1);
    assert_eq!(requests(&server).await, 2);

    let stuck = Arc::new(Renewing {
        renewals: AtomicU32::new(5),
        can_renew: true,
    });
    let c = client_for(
        &server.uri(),
        RetryPolicy::default(),
        CredentialPool::single(Credential::new(stuck.clone())),
    );
    let e = c.send(get(&c, "/x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.credential_kind(), Some("oauth"));
    // One renewal, then the call fails: two requests, not a loop.
    assert_eq!(stuck.renewals.load(Ordering::SeqCst), 6);
    assert_eq!(requests(&server).await, 4);
}

#[tokio::test]
async fn redirects_never_carry_authorization_to_another_origin() {
    let first = MockServer::start().await;
    let second = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/landing", second.uri()).as_str()),
        )
        .mount(&first)
        .await;
    Mock::given(path("/landing"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&second)
        .await;

    let c = client(&first);
    c.send(get(&c, "/moved")).await.expect("redirect followed");
    let seen = second.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].headers.contains_key("authorization"));
    let sent = first.received_requests().await.unwrap();
    assert!(sent[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn urls_outside_the_base_origin_are_refused_before_sending() {
    let server = MockServer::start().await;
    let c = client(&server);
    let foreign = url::Url::parse("https://evil.example.com/2.0/repositories?page=2").unwrap();
    let e = c
        .send(ApiRequest::new(Method::GET, foreign))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.attempts(), 0);
    assert!(
        e.to_string().contains("refusing to send credentials"),
        "{e}"
    );
    assert_eq!(requests(&server).await, 0);
}

#[test]
fn a_plain_http_non_loopback_base_url_is_refused() {
    let e = HttpClient::builder("http://api.bitbucket.org/2.0")
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("refusing plain-HTTP base URL"),
        "{e}"
    );
    HttpClient::builder("http://127.0.0.1:9/2.0")
        .build()
        .expect("loopback http is allowed");
}

#[tokio::test]
async fn decode_errors_name_the_json_path() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Page {
        values: Vec<Repo>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Repo {
        slug: String,
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "values": [{"slug": "a"}, {"slug": 7}]
        })))
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c
        .send(get(&c, "/repositories/ws"))
        .await
        .unwrap()
        .json::<Page>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("values[1].slug"), "{e}");
    assert!(e.to_string().contains("GET /repositories/ws"), "{e}");
}

#[test]
fn no_secret_in_any_formatted_type() {
    let secret = "sEcReT-vAlUe-123456";
    let secret_b64 = api_support::base64(format!("me@example.com:{secret}").as_bytes());
    let basic = StaticAuth::basic("api-token", "me@example.com", SecretString::from(secret));
    let bearer = StaticAuth::bearer("access-token", SecretString::from(secret));
    let token = StaticAuth::token("snyk-token", SecretString::from(secret));
    let credential = Credential::new(Arc::new(StaticAuth::bearer(
        "access-token",
        SecretString::from(secret),
    )));
    let pool = CredentialPool::new([
        credential.clone(),
        Credential::new(Arc::new(StaticAuth::basic(
            "api-token",
            "me@example.com",
            SecretString::from(secret),
        ))),
    ]);
    let client = HttpClient::builder("https://api.bitbucket.org/2.0")
        .credentials(pool.clone())
        .build()
        .unwrap();
    let body = Body::form([("client_secret", secret)]);
    let error =
        Error::new(ErrorKind::Auth, "refused").with_body(Some(api_support::redact::redact(
            &format!("Bearer {secret} and {{\"password\":\"{secret}\"}}"),
        )));
    let mut redacted = format!("echo {secret} {secret_b64}");
    pool.redact(&mut redacted);

    let shown = [
        format!("{basic:?}"),
        format!("{bearer:?}"),
        format!("{token:?}"),
        format!("{credential:?}"),
        format!("{pool:?}"),
        format!("{client:?}"),
        format!("{body:?}"),
        format!("{error:?}"),
        format!("{error}"),
        redacted,
        format!("{:?}", SecretString::from(secret)),
    ];
    for s in &shown {
        assert!(!s.contains(secret), "secret leaked in {s}");
        assert!(!s.contains(&secret_b64), "encoded secret leaked in {s}");
    }
    // The secret is still usable where it is meant to be.
    assert_eq!(SecretString::from(secret).expose_secret(), secret);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_never_answers_is_given_up_within_ninety_seconds_and_named() {
    // Accepts every connection, reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let c = HttpClient::builder(format!("http://{address}"))
        .credentials(CredentialPool::single(bearer()))
        .build()
        .expect("client");
    let start = Instant::now();
    let e = c.send(get(&c, "/2.0/user")).await.unwrap_err();
    let took = start.elapsed();
    assert!(took <= Duration::from_secs(95), "{took:?}");
    assert!(took >= Duration::from_secs(30), "{took:?}");
    let text = e.to_string();
    assert!(text.contains("no answer in time"), "{text}");
    assert!(text.contains(&address.to_string()), "{text}");
}
