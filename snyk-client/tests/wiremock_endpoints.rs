//! Every endpoint against wiremock: exact paths, queries, headers and bodies.

use std::time::Duration;

use futures_util::TryStreamExt;
use secrecy::SecretString;
use serde_json::json;
use snyk_client::api_support::{RetryPolicy, TransportConfig};
use snyk_client::{
    Error, ImportRequest, ImportStatus, JobHandle, PollPolicy, REST_VERSION, SnykAuth, SnykClient,
};
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "0f4c2a6e-1111-2222-3333-444455556666";
const ORG: &str = "org-1";
const INT: &str = "int-1";

fn client_with(server: &MockServer, auth: SnykAuth) -> SnykClient {
    SnykClient::builder()
        .api_url(server.uri())
        .auth(auth)
        .retry(RetryPolicy::none())
        .transport_config(TransportConfig::without_timers())
        .build()
        .expect("client")
}

fn client(server: &MockServer) -> SnykClient {
    client_with(server, SnykAuth::token(TOKEN))
}

fn org(id: &str, name: &str) -> serde_json::Value {
    json!({"id": id, "name": name, "slug": id, "url": "u", "created": "2026-01-01"})
}

#[tokio::test]
async fn v1_group_orgs_page_by_100_until_a_short_page() {
    let server = MockServer::start().await;
    let full: Vec<_> = (0..100).map(|i| org(&format!("o{i}"), "n")).collect();
    Mock::given(method("GET"))
        .and(path("/v1/group/g-1/orgs"))
        .and(query_param("perPage", "100"))
        .and(query_param("page", "1"))
        .and(header("authorization", format!("token {TOKEN}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "g-1", "orgs": full})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/group/g-1/orgs"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"orgs": [org("last", "acme")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let orgs = client(&server).group_orgs("g-1").await.unwrap();
    assert_eq!(orgs.len(), 101);
    assert_eq!(orgs[100].name, "acme");
    assert_eq!(orgs[100].group_id.as_deref(), Some("g-1"));
}

#[tokio::test]
async fn rest_paging_follows_both_next_forms_over_three_pages() {
    let server = MockServer::start().await;
    let item = |id: &str| json!({"id": id, "type": "org", "attributes": {"name": id, "slug": id, "is_personal": false}});
    Mock::given(path("/rest/groups/g-1/orgs"))
        .and(query_param("version", REST_VERSION))
        .and(query_param("limit", "100"))
        .and(header("accept", "application/vnd.api+json"))
        .and(wiremock::matchers::query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [item("a")],
            "links": {"self": "/groups/g-1/orgs?version=2024-10-15&limit=100",
                      "next": "/groups/g-1/orgs?version=2024-10-15&limit=100&starting_after=a"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/rest/groups/g-1/orgs"))
        .and(query_param("starting_after", "a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [item("b")],
            "links": {"next": "/rest/groups/g-1/orgs?version=2024-10-15&limit=100&starting_after=b"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/rest/groups/g-1/orgs"))
        .and(query_param("starting_after", "b"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [item("c")],
            // A next link equal to self ends the listing.
            "links": {"self": "/rest/groups/g-1/orgs?version=2024-10-15&limit=100&starting_after=b",
                      "next": "/rest/groups/g-1/orgs?version=2024-10-15&limit=100&starting_after=b"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let orgs: Vec<_> = client(&server)
        .group_orgs_rest("g-1")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().contains("/rest/rest/"))
    );
    // The limit is never added twice.
    assert!(
        requests
            .iter()
            .all(|r| r.url.query_pairs().filter(|(k, _)| k == "limit").count() == 1)
    );
}

#[tokio::test]
async fn empty_data_ends_a_listing_even_with_a_next_link() {
    let server = MockServer::start().await;
    Mock::given(path("/rest/orgs/o/projects"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [], "links": {"next": "/orgs/o/projects?starting_after=zzz"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let projects: Vec<_> = client(&server)
        .projects("o", None)
        .try_collect()
        .await
        .unwrap();
    assert!(projects.is_empty());
}

#[tokio::test]
async fn create_org_posts_name_group_and_template() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/org"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"name": "acme", "groupId": "g-1", "sourceOrgId": "tpl"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "new", "name": "acme", "slug": "acme", "url": "u", "created": "c",
            "group": {"name": "G", "id": "g-1"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let org = c.create_org("g-1", "acme", Some("tpl")).await.unwrap();
    assert_eq!(org.id, "new");
    assert_eq!(org.group_id.as_deref(), Some("g-1"));

    // Refused before any request: a name too long, an empty group (a personal org).
    let e = c
        .create_org("g-1", &"x".repeat(61), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1 to 60"), "{e}");
    let e = c.create_org("", "acme", None).await.unwrap_err();
    assert!(e.to_string().contains("personal org"), "{e}");
}

#[tokio::test]
async fn org_get_and_delete() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/orgs/o-1"))
        .and(query_param("version", REST_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"id": "o-1", "type": "org", "attributes": {"name": "acme", "slug": "acme", "is_personal": false, "group_id": "g-1"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/org/o-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let o = c.org("o-1").await.unwrap();
    assert_eq!((o.name.as_str(), o.is_personal), ("acme", Some(false)));
    c.delete_org("o-1").await.unwrap();
}

#[tokio::test]
async fn integrations_add_update_clone_settings_notifications() {
    let server = MockServer::start().await;
    let creds = json!({"type": "bitbucket-cloud", "credentials": {"username": "me@example.com", "password": "bb-token"}});
    Mock::given(method("GET"))
        .and(path(format!("/v1/org/{ORG}/integrations")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"bitbucket-cloud": INT, "github": "gh"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/org/{ORG}/integrations")))
        .and(body_json(&creds))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": INT})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v1/org/{ORG}/integrations/{INT}")))
        .and(body_json(&creds))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": INT})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/org/{ORG}/integrations/{INT}/clone")))
        .and(body_json(json!({"destinationOrgPublicId": "org-2"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"newIntegrationId": "int-2"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/org/{ORG}/integrations/{INT}/settings")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"pullRequestTestEnabled": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v1/org/{ORG}/integrations/{INT}/settings")))
        .and(body_json(json!({"pullRequestTestEnabled": false})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"pullRequestTestEnabled": false})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v1/org/{ORG}/notification-settings")))
        .and(body_json(json!({
            "new-issues-remediations": {"enabled": false, "issueSeverity": "high", "issueType": "vuln"},
            "project-imported": {"enabled": false},
            "test-limit": {"enabled": false},
            "weekly-report": {"enabled": false}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let ints = c.integrations(ORG).await.unwrap();
    assert_eq!(
        ints.id_of(&snyk_client::IntegrationType::BitbucketCloud),
        Some(INT)
    );
    assert_eq!(
        ints.id_of(&snyk_client::IntegrationType::parse("bitbucket-cloud-app")),
        None
    );
    let token = SecretString::from("bb-token");
    assert_eq!(
        c.add_bitbucket_cloud_integration(ORG, "me@example.com", &token)
            .await
            .unwrap(),
        INT
    );
    c.update_bitbucket_cloud_credentials(ORG, INT, "me@example.com", &token)
        .await
        .unwrap();
    assert_eq!(
        c.clone_integration(ORG, INT, "org-2").await.unwrap(),
        "int-2"
    );
    let mut settings = c.integration_settings(ORG, INT).await.unwrap();
    settings.insert("pullRequestTestEnabled".into(), json!(false));
    let stored = c
        .update_integration_settings(ORG, INT, &settings)
        .await
        .unwrap();
    assert_eq!(stored["pullRequestTestEnabled"], json!(false));
    c.disable_notifications(ORG).await.unwrap();
}

#[tokio::test]
async fn import_posts_the_exact_body_and_polls_the_configured_host_only() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    let location = format!(
        "{}/api/v1/org/{ORG}/integrations/{INT}/import/job-9",
        foreign.uri()
    );
    Mock::given(method("POST"))
        .and(path(format!("/v1/org/{ORG}/integrations/{INT}/import")))
        .and(header("content-type", "application/json"))
        .and(body_string(
            r#"{"target":{"owner":"acme","name":"api","branch":"main"},"files":[{"path":"package.json"}],"exclusionGlobs":"fixtures, tests"}"#,
        ))
        .respond_with(ResponseTemplate::new(201).insert_header("Location", location.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/org/{ORG}/integrations/{INT}/import/job-9")))
        .and(header("authorization", format!("token {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "job-9", "status": "complete", "created": "c",
            "logs": [{"name": "acme/api", "status": "complete", "projects": [
                {"targetFile": "package.json", "success": true, "projectUrl": "u", "projectId": "p1"}]}]
        })))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let request = ImportRequest::new("acme", "api", Some("main"))
        .with_files(["package.json"])
        .with_exclusion_globs(["fixtures", "tests"])
        .unwrap();
    let handle = c.import(ORG, INT, &request).await.unwrap();
    assert_eq!(
        handle,
        JobHandle {
            org_id: ORG.into(),
            integration_id: INT.into(),
            job_id: "job-9".into()
        }
    );
    let job = c.import_job(&handle).await.unwrap();
    assert_eq!(job.status, ImportStatus::Complete);
    assert_eq!(job.created_projects().count(), 1);
    // The foreign host never saw a request, so never the token.
    assert!(foreign.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_import_without_location_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let e = client(&server)
        .import(ORG, INT, &ImportRequest::new("a", "b", None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::NoJobLocation { location: None }),
        "{e:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_ends_polling_at_once_and_early_404s_are_tolerated() {
    let server = MockServer::start().await;
    let job_path = format!("/v1/org/{ORG}/integrations/{INT}/import/j");
    Mock::given(path(job_path.clone()))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not yet"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path(job_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "j", "status": "failed", "logs": [{"name": "a/b", "status": "failed",
              "projects": [{"success": false, "userMessage": "no access"}]}]
        })))
        .mount(&server)
        .await;
    let c = client(&server);
    let handle = JobHandle {
        org_id: ORG.into(),
        integration_id: INT.into(),
        job_id: "j".into(),
    };
    let done = c.wait_for_import(&handle).await.unwrap();
    assert_eq!(done.job.status, ImportStatus::Failed);
    assert_eq!(done.polls, 2);
    assert_eq!(done.job.failure_messages(), ["no access"]);
    // 500 ms, then 10% of that (at least 200 ms).
    assert_eq!(done.waited, Duration::from_millis(700));
}

/// A server whose every job answers `status`, and the handle of job `j`.
async fn job_always(status: &str) -> (MockServer, JobHandle) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "j", "status": status})),
        )
        .mount(&server)
        .await;
    let handle = JobHandle {
        org_id: ORG.into(),
        integration_id: INT.into(),
        job_id: "j".into(),
    };
    (server, handle)
}

#[tokio::test(start_paused = true)]
async fn jobs_found_ended_at_their_first_poll_bring_the_first_poll_below_where_it_started() {
    // Every job has ended by its first poll: what that poll sees says only "ended by then".
    // The first poll must still come down from its 500 ms start (it stayed at its start before).
    let (server, handle) = job_always("complete").await;
    let c = client(&server);
    let mut waits = Vec::new();
    for _ in 0..6 {
        waits.push(c.wait_for_import(&handle).await.unwrap().waited);
    }
    assert_eq!(waits[0], Duration::from_millis(500));
    assert_eq!(waits[1], Duration::from_millis(250), "halved");
    assert_eq!(
        *waits.last().unwrap(),
        Duration::from_millis(200),
        "down to the floor: {waits:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn polling_gives_up_after_the_timeout() {
    let (server, handle) = job_always("pending").await;
    let policy = PollPolicy {
        timeout: Duration::from_secs(60),
        ..PollPolicy::default()
    };
    let e = client(&server)
        .wait_for_import_with(&handle, policy)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ImportTimeout { .. }), "{e:?}");
    // Polls at 500 ms, then every 10% of the time waited (at least 200 ms), until the next
    // would pass the 60 s timeout.
    let (mut at, mut expected) = (Duration::from_millis(500), 1);
    loop {
        let next = (at * 10 / 100).clamp(Duration::from_millis(200), Duration::from_secs(30));
        if at + next > Duration::from_secs(60) {
            break;
        }
        at += next;
        expected += 1;
    }
    let got = server.received_requests().await.unwrap().len();
    assert!(
        (expected - 1..=expected).contains(&got),
        "{got} polls, expected {expected}"
    );
    assert!(got < 45, "{got}");
}

#[tokio::test]
async fn targets_and_projects_queries() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/rest/orgs/{ORG}/targets")))
        .and(query_param("version", REST_VERSION))
        .and(query_param("limit", "100"))
        .and(query_param("source_types", "bitbucket-cloud,bitbucket-connect-app"))
        .and(query_param("exclude_empty", "false"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "t1", "type": "target",
                      "attributes": {"display_name": "acme/api", "url": null, "is_private": true},
                      "relationships": {"integration": {"data": {"id": INT, "attributes": {"integration_type": "bitbucket-cloud"}}}}}],
            "links": {}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(format!("/rest/orgs/{ORG}/projects")))
        .and(query_param("target_id", "t1"))
        .and(query_param("version", REST_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "p1", "type": "project", "attributes": {"name": "acme/api:package.json", "type": "npm",
                      "target_file": "package.json", "origin": "bitbucket-cloud", "status": "active"},
                      "relationships": {"target": {"data": {"id": "t1", "type": "target"}}}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let targets: Vec<_> = c.targets(ORG).try_collect().await.unwrap();
    assert_eq!(targets[0].display_name, "acme/api");
    assert_eq!(
        targets[0].integration_type.as_deref(),
        Some("bitbucket-cloud")
    );
    assert_eq!(targets[0].integration_id.as_deref(), Some(INT));
    let projects: Vec<_> = c.projects(ORG, Some("t1")).try_collect().await.unwrap();
    assert_eq!(projects[0].target_id.as_deref(), Some("t1"));
}

#[tokio::test]
async fn bearer_and_oauth_client_credentials_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "grant_type=client_credentials&client_id=cid&client_secret=csecret",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "acc-1", "expires_in": 3599, "token_type": "bearer"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(format!("/v1/org/{ORG}/integrations")))
        .and(header("authorization", "bearer acc-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path(format!("/v1/org/{ORG}/integrations")))
        .and(header("authorization", "Bearer given"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = client_with(
        &server,
        SnykAuth::oauth_client_credentials("cid", "csecret"),
    );
    oauth.integrations(ORG).await.unwrap();
    oauth.integrations(ORG).await.unwrap();
    client_with(&server, SnykAuth::bearer("given"))
        .integrations(ORG)
        .await
        .unwrap();
}

#[tokio::test]
async fn error_shapes_become_recognisable_kinds() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/v1/org/{ORG}/integrations/{INT}/import")))
        .respond_with(ResponseTemplate::new(400).insert_header("snyk-request-id", "rid-7").set_body_json(json!({
            "ok": false, "code": 400, "message": "Invalid parameter format.", "name": "invalidParamData"})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/org/capped/integrations/i/import"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 400, "message": "This organization has 25000 of the maximum 25000 projects. Remove projects.", "errorRef": "x"})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/group/g-x/orgs"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"code": 403, "message": "Forbidden for group"})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/rest/orgs/nope"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "jsonapi": {"version": "1.0"}, "errors": [{"status": "404", "detail": "Org nope was not found"}]})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/org/o/integrations"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code": 401, "error": "Not authorised", "message": "Not authorised"}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c
        .import(ORG, INT, &ImportRequest::new("a", "b", None))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e:?}");
    assert_eq!(e.request_id(), Some("rid-7"));
    let e = c
        .import("capped", "i", &ImportRequest::new("a", "b", None))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProjectCap { .. }), "{e:?}");
    let e = c.group_orgs("g-x").await.unwrap_err();
    assert!(matches!(e, Error::GroupPermission { .. }), "{e:?}");
    assert!(e.to_string().contains("g-x"), "{e}");
    let e = c.org("nope").await.unwrap_err();
    assert!(e.to_string().contains("Org nope was not found"), "{e}");
    assert_eq!(e.kind(), snyk_client::api_support::ErrorKind::NotFound);
    let e = c.integrations("o").await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }));
    assert!(e.to_string().contains("check the token"), "{e}");
    assert!(
        !e.to_string().contains("SNYK_"),
        "the library names no variable of the binary: {e}"
    );
}

#[tokio::test]
async fn an_integration_token_never_shows_in_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string("bad credentials: bb-secret-token-123 for me@example.com"),
        )
        .mount(&server)
        .await;
    let e = client(&server)
        .add_bitbucket_cloud_integration(
            ORG,
            "me@example.com",
            &SecretString::from("bb-secret-token-123"),
        )
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("bb-secret-token-123"), "{shown}");
    assert!(!shown.contains(TOKEN));
}

#[tokio::test]
async fn a_next_link_that_answers_404_is_asked_again_then_the_listing_is_incomplete() {
    let server = MockServer::start().await;
    Mock::given(path("/rest/orgs/org-1/targets"))
        .and(query_param("starting_after", "b"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"errors": [{"detail": "Not Found"}]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/rest/orgs/org-1/targets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "t-1", "type": "target", "attributes": {"display_name": "acme/api"}}],
            "links": {"next": "/rest/orgs/org-1/targets?version=2024-10-15&limit=100&starting_after=b"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let got: Result<Vec<_>, _> = client(&server).targets(ORG).try_collect().await;
    let e = got.expect_err("a partial listing passed for the whole");
    assert!(
        matches!(e, Error::IncompleteListing { received: 1, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("incomplete") && text.contains("/rest/orgs/org-1/targets"),
        "{text}"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_target_of_another_integration_type_is_never_taken_for_a_bitbucket_one() {
    let server = MockServer::start().await;
    let target = |id: &str, kind: &str| {
        json!({"id": id, "type": "target", "attributes": {"display_name": "acme/api"},
               "relationships": {"integration": {"data": {"id": format!("int-{kind}"), "type": "integration",
                   "attributes": {"integration_type": kind}}}}})
    };
    // A server that ignored `source_types`.
    Mock::given(path("/rest/orgs/org-1/targets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [target("t-gl", "gitlab"), target("t-bb", "bitbucket-cloud")]
        })))
        .mount(&server)
        .await;
    let c = client(&server);
    let listed: Vec<_> = c
        .targets_of(ORG, "bitbucket-cloud", None)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t-bb"]);
    let found = c
        .find_target(
            ORG,
            "acme/api",
            &snyk_client::IntegrationType::BitbucketCloud,
        )
        .await
        .unwrap();
    assert_eq!(found.map(|t| t.id).as_deref(), Some("t-bb"));
}

#[tokio::test]
async fn a_page_whose_every_item_is_unreadable_does_not_end_the_listing() {
    let server = MockServer::start().await;
    Mock::given(path("/rest/orgs/org-1/targets"))
        .and(query_param("starting_after", "b"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "t-2", "type": "target", "attributes": {"display_name": "acme/web"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The first page's only item has no attributes: it is left out, and the next page read.
    Mock::given(path("/rest/orgs/org-1/targets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "t-1", "type": "target"}],
            "links": {"next": "/rest/orgs/org-1/targets?version=2024-10-15&limit=100&starting_after=b"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let listed: Vec<_> = client(&server).targets(ORG).try_collect().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t-2"]);
    server.verify().await;
}
