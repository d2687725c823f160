//! Every endpoint and every auth method against wiremock: exact paths, queries and headers.

use bitbucket_cloud_client::{
    Auth, BitbucketClient, Error, Fields, RetryPolicy, Role, TransportConfig,
};
use futures_util::TryStreamExt;
use serde_json::json;
use wiremock::matchers::{body_string, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer, auth: Auth) -> BitbucketClient {
    BitbucketClient::builder()
        .base_url(format!("{}/2.0", server.uri()))
        .token_url(format!("{}/site/oauth2/access_token", server.uri()))
        .auth(auth)
        .retry(RetryPolicy::none())
        .transport_config(TransportConfig::without_timers())
        .build()
        .expect("client")
}

fn api_token() -> Auth {
    Auth::api_token("me@example.com", "tok")
}

/// `me@example.com:tok` in base64.
const API_TOKEN_BASIC: &str = "Basic bWVAZXhhbXBsZS5jb206dG9r";

fn repo(slug: &str, uuid: &str) -> serde_json::Value {
    json!({"type": "repository", "slug": slug, "uuid": uuid, "full_name": format!("acme/{slug}"),
           "mainbranch": {"name": "main", "type": "branch"}, "is_private": true})
}

#[tokio::test]
async fn each_auth_method_sends_its_exact_header() {
    let server = MockServer::start().await;
    let user = json!({"type": "user", "display_name": "Me", "uuid": "{u}"});
    for (auth, expected) in [
        (api_token(), API_TOKEN_BASIC.to_owned()),
        (Auth::access_token("at-1"), "Bearer at-1".to_owned()),
        (Auth::oauth_token("oa-1"), "Bearer oa-1".to_owned()),
        (
            Auth::app_password("olduser", "pw"),
            format!("Basic {}", api_support::base64(b"olduser:pw")),
        ),
    ] {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/2.0/user"))
            .and(header("authorization", expected.as_str()))
            .and(header("accept", "application/json"))
            .and(header("user-agent", api_support::DEFAULT_USER_AGENT))
            .respond_with(ResponseTemplate::new(200).set_body_json(&user))
            .expect(1)
            .mount(&server)
            .await;
        let me = client(&server, auth).current_user().await.expect(&expected);
        assert_eq!(me.display_name.as_deref(), Some("Me"));
        server.verify().await;
    }
}

#[tokio::test]
async fn client_credentials_are_exchanged_then_sent_as_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/site/oauth2/access_token"))
        .and(header(
            "authorization",
            format!("Basic {}", api_support::base64(b"key:secret")).as_str(),
        ))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "issued-1", "expires_in": 7200, "token_type": "bearer",
            "scopes": "repository", "refresh_token": "r"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2.0/user"))
        .and(header("authorization", "Bearer issued-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"display_name": "Bot"})))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server, Auth::oauth_client_credentials("key", "secret"));
    c.current_user().await.unwrap();
    c.current_user().await.unwrap();
}

#[tokio::test]
async fn user_workspaces_asks_for_100_sorted_by_slug() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2.0/user/workspaces"))
        .and(query_param("pagelen", "100"))
        .and(query_param("sort", "slug"))
        .and(query_param("administrator", "true"))
        .and(header("authorization", API_TOKEN_BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [{"type": "workspace_access", "administrator": true,
                        "workspace": {"type": "workspace_base", "slug": "acme", "uuid": "{w}"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let list = client(&server, api_token())
        .user_workspaces(Some(true))
        .collect()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].workspace.slug.as_deref(), Some("acme"));
}

#[tokio::test]
async fn workspace_projects_and_repository_paths() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/workspaces/acme"))
        .and(query_param_is_missing("pagelen"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"type": "workspace", "slug": "acme", "name": "ACME", "uuid": "{w}", "is_private": true}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/2.0/workspaces/acme/projects"))
        .and(query_param("pagelen", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"values": [{"key": "CORE", "uuid": "{p}", "name": "Core"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/2.0/repositories/acme/api"))
        .respond_with(ResponseTemplate::new(200).set_body_json(repo("api", "{r}")))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, Auth::access_token("at"));
    assert_eq!(
        c.workspace("acme").await.unwrap().name.as_deref(),
        Some("ACME")
    );
    assert_eq!(
        c.projects("acme").collect().await.unwrap()[0]
            .key
            .as_deref(),
        Some("CORE")
    );
    assert_eq!(c.repository("acme", "api").await.unwrap().slug, "api");
}

#[tokio::test]
async fn repository_listing_sends_every_refinement() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/repositories/acme"))
        .and(query_param("pagelen", "100"))
        .and(query_param("sort", "-updated_on"))
        .and(query_param(
            "q",
            r#"(project.key="CORE") AND (updated_on>2026-01-01T00:00:00Z)"#,
        ))
        .and(query_param("role", "member"))
        .and(query_param("fields", "next,values.slug,values.uuid"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"values": [{"slug": "a", "uuid": "{1}"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let list = client(&server, api_token())
        .repositories("acme")
        .project_key("CORE")
        .updated_since("2026-01-01T00:00:00Z".parse().expect("a time"))
        .sort("-updated_on")
        .role(Role::Member)
        .fields(Fields::new(["values.slug", "values.uuid"]))
        .collect()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn three_pages_followed_verbatim_and_duplicates_removed() {
    // Each page is asked for twice: once by `collect`, once by `pages`.
    let server = MockServer::start().await;
    let base = format!("{}/2.0/repositories/acme", server.uri());
    Mock::given(path("/2.0/repositories/acme"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [repo("a", "{1}"), repo("b", "{2}")],
            "next": format!("{base}?pagelen=100&sort=slug&page=2&opaque=x1")
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/2.0/repositories/acme"))
        .and(query_param("page", "2"))
        .and(query_param("opaque", "x1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [repo("b", "{2}"), repo("c", "{3}")],
            "next": format!("{base}?pagelen=100&sort=slug&page=3&opaque=x2")
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/2.0/repositories/acme"))
        .and(query_param("page", "3"))
        .and(query_param("opaque", "x2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [repo("c", "{3}"), repo("d", "{4}")]
        })))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server, api_token());
    let slugs: Vec<String> = c
        .repositories("acme")
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.slug)
        .collect();
    assert_eq!(slugs, ["a", "b", "c", "d"]);

    // The page stream is Send + 'static: it can move into a spawned task.
    let pages = tokio::spawn(
        c.repositories("acme")
            .paginator()
            .pages()
            .try_collect::<Vec<_>>(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[1].items.len(), 2);
}

#[tokio::test]
async fn a_next_link_on_another_host_is_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/repositories/acme"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [repo("a", "{1}")],
            "next": "https://evil.example.com/2.0/repositories/acme?page=2"
        })))
        .mount(&server)
        .await;
    let e = client(&server, api_token())
        .repositories("acme")
        .collect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), api_support::ErrorKind::Config);
    assert!(
        e.to_string().contains("refusing to send credentials"),
        "{e}"
    );
    // The request whose answer carried the link is named, not the refused link's path.
    assert!(
        e.to_string()
            .contains("the `next` link in Bitbucket's answer to GET /2.0/repositories/acme"),
        "{e}"
    );
    // The refused request is not shown as if it had been made (`(GET /)` on the other host).
    assert!(!e.to_string().contains("(GET "), "{e}");
}

#[tokio::test]
async fn gone_is_its_own_error_and_never_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/workspaces"))
        .respond_with(ResponseTemplate::new(410).set_body_string(
            r#"{"type":"error","error":{"message":"CHANGE-2770 - Functionality has been deprecated"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = BitbucketClient::builder()
        .base_url(format!("{}/2.0", server.uri()))
        .auth(api_token())
        .transport_config(TransportConfig::without_timers())
        .build()
        .unwrap();
    let url = url::Url::parse(&format!("{}/2.0/workspaces", server.uri())).unwrap();
    let e = c.page::<serde_json::Value>(url).await.unwrap_err();
    assert!(matches!(e, Error::Removed { .. }), "{e:?}");
    assert_eq!(e.kind(), api_support::ErrorKind::Gone);
    assert!(e.to_string().contains("CHANGE-2770"));
    assert!(e.to_string().contains("/user/workspaces"));
}

#[tokio::test]
async fn forbidden_names_the_missing_scope() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/repositories/acme"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-credential-type", "api_token")
                .insert_header("x-oauth-scopes", "read:user:bitbucket, read:workspace:bitbucket")
                .insert_header("x-accepted-oauth-scopes", "read:repository:bitbucket")
                .set_body_json(json!({"type": "error", "error": {"message": "Your credentials lack one or more required privilege scopes."}})),
        )
        .mount(&server)
        .await;
    let e = client(&server, api_token())
        .repositories("acme")
        .collect()
        .await
        .unwrap_err();
    match &e {
        Error::Auth {
            server_credential_type,
            granted_scopes,
            ..
        } => {
            assert_eq!(server_credential_type.as_deref(), Some("api_token"));
            assert_eq!(granted_scopes.len(), 2);
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(e.missing_scopes(), ["read:repository:bitbucket"]);
    assert!(
        e.to_string()
            .contains("lacks the scope read:repository:bitbucket"),
        "{e}"
    );
}

#[tokio::test]
async fn a_refused_app_password_says_they_were_removed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let e = client(&server, Auth::app_password("olduser", "pw"))
        .current_user()
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("2026-07-28"), "{text}");
    assert!(text.contains("API token"), "{text}");
    let e = client(&server, api_token())
        .current_user()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Atlassian account e-mail"), "{e}");
}

#[test]
fn bad_configuration_is_refused_before_any_request() {
    // A library user is told which builder method supplies what is missing (the binary names
    // its own environment variables before it builds a client).
    let e = BitbucketClient::builder().build().unwrap_err();
    assert!(
        e.to_string().contains("BitbucketClientBuilder::auth"),
        "{e}"
    );
    let e = BitbucketClient::builder()
        .auth(api_token())
        .auth(Auth::access_token("x"))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("one kind"), "{e}");
    let e = BitbucketClient::builder()
        .auth(api_token())
        .page_len(101)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("1 to 100"), "{e}");
    let e = BitbucketClient::builder()
        .base_url("http://bitbucket.example.com/2.0")
        .auth(api_token())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("plain-HTTP"), "{e}");
}

#[test]
fn no_secret_in_formatted_credentials_clients_and_errors() {
    let secret = "Sup3r-Secret-Token-Value";
    let auths = [
        Auth::api_token("me@example.com", secret),
        Auth::access_token(secret),
        Auth::oauth_token(secret),
        Auth::oauth_client_credentials("key", secret),
        Auth::app_password("user", secret),
    ];
    for auth in auths {
        let builder = BitbucketClient::builder().auth(auth.clone());
        let shown_builder = format!("{builder:?}");
        let client = builder.build().unwrap();
        for shown in [format!("{auth:?}"), shown_builder, format!("{client:?}")] {
            assert!(!shown.contains(secret), "leaked: {shown}");
        }
    }
    let e = Error::WorkspaceListingUnsupported {
        credential: bitbucket_cloud_client::CredentialKind::AccessToken,
    };
    assert!(!format!("{e} {e:?}").contains(secret));
}

#[tokio::test]
async fn a_repository_is_looked_up_by_its_uuid_with_encoded_braces_and_a_404_is_none() {
    let server = MockServer::start().await;
    // Bitbucket needs the braces percent-encoded: unencoded ones answer 404.
    Mock::given(method("GET"))
        .and(path("/2.0/repositories/acme/%7B1a2b%7D"))
        .respond_with(ResponseTemplate::new(200).set_body_json(repo("renamed", "{1a2b}")))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2.0/repositories/acme/%7Bgone%7D"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"type": "error", "error": {"message": "Repository acme/{gone} not found"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, api_token());
    let found = c.repository_by_uuid("acme", "{1a2b}").await.unwrap();
    assert_eq!(found.map(|r| r.slug).as_deref(), Some("renamed"));
    // Braces are added when missing.
    assert!(
        c.repository_by_uuid("acme", "1a2b")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        c.repository_by_uuid("acme", "{gone}")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_410_elsewhere_says_the_account_is_gone_not_change_2770() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/repositories/acme"))
        .respond_with(ResponseTemplate::new(410).set_body_json(
            json!({"type": "error", "error": {"message": "This account has been suspended."}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, api_token());
    let e = c.repositories("acme").collect().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Gone { .. }), "{e:?}");
    assert_eq!(e.kind(), bitbucket_cloud_client::ErrorKind::Gone);
    assert!(!text.contains("CHANGE-2770"), "{text}");
    assert!(text.contains("suspended or deleted"), "{text}");
    assert!(text.contains("This account has been suspended."), "{text}");
}

#[tokio::test]
async fn bitbuckets_own_error_text_is_shown() {
    let server = MockServer::start().await;
    Mock::given(path("/2.0/repositories/acme"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"type": "error", "error": {"message": "Invalid sort field", "detail": "sort=stars is not a field"}}),
        ))
        .mount(&server)
        .await;
    let c = client(&server, api_token());
    let e = c.repositories("acme").collect().await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("Bitbucket refused GET /2.0/repositories/acme (HTTP 400): Invalid sort field (sort=stars is not a field)"),
        "{text}"
    );
    assert_eq!(e.kind(), bitbucket_cloud_client::ErrorKind::Client);
}
