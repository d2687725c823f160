//! The client against the fake Bitbucket Cloud, on tokio's paused clock where time matters.
#![cfg(feature = "sandbox")]

use std::time::Duration;

use bitbucket_cloud_client::sandbox::{
    Estate, SAMPLE_API_TOKEN, SAMPLE_CONSUMER_KEY, SAMPLE_CONSUMER_SECRET, SAMPLE_EMAIL, Sandbox,
};
use bitbucket_cloud_client::{
    Auth, BitbucketClient, BitbucketClientBuilder, Error, ErrorKind, Fields, RateLimit, Repository,
    TransportConfig,
};
use futures_util::TryStreamExt;
use futures_util::future::join_all;
use tokio::time::Instant;

fn builder(sandbox: &Sandbox) -> BitbucketClientBuilder {
    BitbucketClient::builder()
        .base_url(sandbox.base_url())
        .token_url(sandbox.token_url())
        .transport_config(TransportConfig::without_timers())
}

fn api_token_client(sandbox: &Sandbox) -> BitbucketClient {
    builder(sandbox)
        .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_sample_estate_lists_as_bitbucket_would() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let client = api_token_client(&sandbox);
    let workspaces = client.user_workspaces(None).collect().await.unwrap();
    let slugs: Vec<_> = workspaces
        .iter()
        .filter_map(|w| w.workspace.slug.clone())
        .collect();
    assert_eq!(slugs, ["acme-data", "acme-mobile", "acme-platform"]);
    // The nested workspace has no name; the full one does.
    assert_eq!(workspaces[0].workspace.name, None);
    let ws = client.workspace("acme-platform").await.unwrap();
    assert_eq!(ws.name.as_deref(), Some("ACME Platform"));

    let repos = client
        .repositories("acme-platform")
        .collect()
        .await
        .unwrap();
    assert_eq!(repos.len(), 6);
    let empty = repos.iter().find(|r| r.slug == "empty-sandbox").unwrap();
    assert_eq!(empty.main_branch(), None);
    let fork = repos.iter().find(|r| r.slug == "api-gateway-fork").unwrap();
    assert!(fork.is_fork());
    assert_eq!(fork.workspace_slug(), Some("acme-platform"));

    let core = client
        .repositories("acme-platform")
        .project_key("WEB")
        .collect()
        .await
        .unwrap();
    assert_eq!(core.len(), 2);
    let projects = client.projects("acme-platform").collect().await.unwrap();
    assert_eq!(projects.len(), 2);

    let stats = sandbox.stats();
    assert_eq!(stats.route("GET /user/workspaces"), 1);
    assert_eq!(stats.route("GET /repositories/{workspace}"), 2);
    assert_eq!(stats.status(429), 0);
}

#[tokio::test]
async fn pages_of_100_make_the_minimum_number_of_requests() {
    let sandbox = Sandbox::builder()
        .estate(Estate::generate(1, 250, 7))
        .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
        .start()
        .await
        .unwrap();
    let client = api_token_client(&sandbox);
    let pages: Vec<_> = client
        .repositories("ws-0001")
        .paginator()
        .pages()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert_eq!(sandbox.stats().route("GET /repositories/{workspace}"), 3);

    // With `fields`, `next` is kept, so paging goes on past page one.
    let slim = client
        .repositories("ws-0001")
        .fields(Fields::new([
            "values.slug",
            "values.uuid",
            "values.mainbranch.name",
        ]))
        .collect()
        .await
        .unwrap();
    assert_eq!(slim.len(), 250);
    assert!(slim.iter().all(|r| r.full_name.is_none()));

    // The server's own default is 10 a page: the client never relies on it.
    let url = url::Url::parse(&format!("{}/repositories/ws-0001", sandbox.base_url())).unwrap();
    let default_page = client.page::<Repository>(url).await.unwrap();
    assert_eq!(default_page.values.len(), 10);
    assert_eq!(default_page.pagelen, Some(10));
}

#[tokio::test(start_paused = true)]
async fn oauth_tokens_are_shared_renewed_before_expiry_and_after_a_401() {
    let sandbox = Sandbox::builder()
        .oauth_consumer(
            SAMPLE_CONSUMER_KEY,
            SAMPLE_CONSUMER_SECRET,
            Duration::from_secs(3600),
        )
        .start()
        .await
        .unwrap();
    let client = builder(&sandbox)
        .auth(Auth::oauth_client_credentials(
            SAMPLE_CONSUMER_KEY,
            SAMPLE_CONSUMER_SECRET,
        ))
        .build()
        .unwrap();

    // 20 concurrent requests share one token.
    let results = join_all((0..20).map(|_| client.current_user())).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(sandbox.issued_tokens(), 1);

    // Still valid after 50 minutes...
    tokio::time::advance(Duration::from_secs(3000)).await;
    client.current_user().await.unwrap();
    assert_eq!(sandbox.issued_tokens(), 1);
    // ...renewed a few minutes before the hour, without a 401.
    tokio::time::advance(Duration::from_secs(450)).await;
    client.current_user().await.unwrap();
    assert_eq!(sandbox.issued_tokens(), 2);
    assert_eq!(sandbox.stats().status(401), 0);

    // The server revokes the token: 20 concurrent 401s lead to one renewal, and all succeed.
    sandbox.revoke_oauth_tokens();
    let results = join_all((0..20).map(|_| client.current_user())).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(sandbox.issued_tokens(), 3);

    // Wrong client credentials: a clear auth error.
    let wrong = builder(&sandbox)
        .auth(Auth::oauth_client_credentials(SAMPLE_CONSUMER_KEY, "nope"))
        .build()
        .unwrap();
    let e = wrong.current_user().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.to_string().contains("client id and secret"), "{e}");
    assert!(!format!("{e:?}").contains("nope"));
}

#[tokio::test(start_paused = true)]
async fn a_pool_of_three_tokens_spreads_fifteen_requests_without_a_429() {
    let mut sb = Sandbox::builder().hourly_budget(5);
    for i in 0..3 {
        sb = sb.access_token(&format!("pool-token-{i}"), "acme-platform");
    }
    let sandbox = sb.start().await.unwrap();
    let client = builder(&sandbox)
        .auths((0..3).map(|i| Auth::access_token(format!("pool-token-{i}"))))
        .rate_limit(Some(RateLimit::per_hour(5)))
        .build()
        .unwrap();

    let start = Instant::now();
    let results =
        join_all((0..15).map(|_| client.repository("acme-platform", "api-gateway"))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::ZERO);
    let stats = sandbox.stats();
    assert_eq!(stats.status(429), 0);
    assert_eq!(
        stats.per_credential.values().copied().collect::<Vec<_>>(),
        [5, 5, 5]
    );

    // The sixteenth waits for the first budget to return instead of earning a 429.
    client
        .repository("acme-platform", "api-gateway")
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
    assert_eq!(sandbox.stats().status(429), 0);
}

#[tokio::test(start_paused = true)]
async fn near_limit_slows_the_credential_down() {
    let sandbox = Sandbox::builder()
        .hourly_budget(10)
        .access_token("tok", "acme-platform")
        .start()
        .await
        .unwrap();
    let client = builder(&sandbox)
        .auth(Auth::access_token("tok"))
        .rate_limit(Some(RateLimit::per_hour(10)))
        .build()
        .unwrap();
    let start = Instant::now();
    for _ in 0..9 {
        client
            .repository("acme-platform", "api-gateway")
            .await
            .unwrap();
    }
    // Nine requests at once; the ninth answer says the budget is nearly spent.
    assert_eq!(start.elapsed(), Duration::ZERO);
    // Outside repository data, nothing waits.
    client.workspace("acme-platform").await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    client
        .repository("acme-platform", "api-gateway")
        .await
        .unwrap();
    // The tenth waited for an even pace: 3600 s / 10.
    assert_eq!(start.elapsed(), Duration::from_secs(360));
    assert_eq!(sandbox.stats().status(429), 0);
}

#[tokio::test(start_paused = true)]
async fn only_repository_data_counts_against_the_hourly_budget() {
    let sandbox = Sandbox::builder()
        .hourly_budget(1)
        .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
        .start()
        .await
        .unwrap();
    let client = builder(&sandbox)
        .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
        .rate_limit(Some(RateLimit::per_hour(1)))
        .build()
        .unwrap();
    let start = Instant::now();
    let workspaces = client.user_workspaces(None).collect().await.unwrap();
    assert!(!workspaces.is_empty());
    client.current_user().await.unwrap();
    client
        .repository("acme-platform", "api-gateway")
        .await
        .unwrap();
    // Workspaces and the user are another resource: the one repository request did not wait.
    assert_eq!(start.elapsed(), Duration::ZERO);
    client
        .repository("acme-platform", "api-gateway")
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
    assert_eq!(sandbox.stats().status(429), 0);
}

#[tokio::test]
async fn access_tokens_cannot_list_workspaces_and_no_request_is_made() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let client = builder(&sandbox)
        .auth(Auth::access_token("sandbox-access-token-acme-data"))
        .build()
        .unwrap();
    let e = client.user_workspaces(None).collect().await.unwrap_err();
    assert!(
        matches!(e, Error::WorkspaceListingUnsupported { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("give the workspace slugs"), "{e}");
    assert!(
        !e.to_string().contains("BITBUCKET_CLOUD_"),
        "the library names no variable of the binary: {e}"
    );
    assert_eq!(sandbox.stats().total, 0);
    // GET /user is cross-workspace too: the server's answer maps to the same error.
    let e = client.current_user().await.unwrap_err();
    assert!(
        matches!(e, Error::WorkspaceListingUnsupported { .. }),
        "{e:?}"
    );
    // Its own workspace works; another one does not exist for it.
    assert_eq!(
        client
            .repositories("acme-data")
            .collect()
            .await
            .unwrap()
            .len(),
        3
    );
    let e = client
        .repositories("acme-platform")
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WorkspaceNotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn unknown_workspaces_and_missing_scopes_are_named() {
    let sandbox = Sandbox::builder()
        .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
        .api_token_with_scopes(
            "narrow@example.com",
            "narrow-token",
            &["read:user:bitbucket", "read:workspace:bitbucket"],
        )
        .start()
        .await
        .unwrap();
    let client = api_token_client(&sandbox);
    let e = client.workspace("no-such-ws").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("`no-such-ws` does not exist"), "{e}");
    let e = client
        .repositories("no-such-ws")
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WorkspaceNotFound { .. }));

    let narrow = builder(&sandbox)
        .auth(Auth::api_token("narrow@example.com", "narrow-token"))
        .build()
        .unwrap();
    let e = narrow
        .repositories("acme-data")
        .collect()
        .await
        .unwrap_err();
    assert_eq!(e.missing_scopes(), ["read:repository:bitbucket"]);

    let wrong_user = builder(&sandbox)
        .auth(Auth::api_token("someone-else", SAMPLE_API_TOKEN))
        .build()
        .unwrap();
    let e = wrong_user.current_user().await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(e.to_string().contains("Atlassian account e-mail"));
}

#[tokio::test]
async fn removed_endpoints_answer_410_and_are_not_retried() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let client = api_token_client(&sandbox);
    for path in [
        "workspaces",
        "repositories",
        "user/permissions/workspaces",
        "user/permissions/repositories",
    ] {
        let url = url::Url::parse(&format!("{}/{path}", sandbox.base_url())).unwrap();
        let e = client.page::<serde_json::Value>(url).await.unwrap_err();
        assert!(matches!(e, Error::Removed { .. }), "{path}: {e:?}");
        assert!(e.api().unwrap().body().unwrap().contains("CHANGE-2770"));
    }
    assert_eq!(sandbox.stats().status(410), 4);
    assert_eq!(sandbox.stats().total, 4);
}

#[tokio::test(start_paused = true)]
async fn injected_faults_are_retried_for_reads() {
    use api_support::sandbox::Fault;
    let sandbox = Sandbox::start_sample().await.unwrap();
    let client = api_token_client(&sandbox);
    sandbox.server().inject(Fault::Status(503), 2);
    sandbox.server().inject(Fault::Drop, 1);
    let repos = client.repositories("acme-mobile").collect().await.unwrap();
    assert_eq!(repos.len(), 3);
    assert_eq!(sandbox.stats().faults, 3);

    // A body that is not even JSON was garbled on the way: a read asks again.
    sandbox.server().inject(Fault::Malformed, 1);
    let repos = client.repositories("acme-mobile").collect().await.unwrap();
    assert_eq!(repos.len(), 3);
    // Garbled on every attempt, it fails and says so.
    sandbox.server().inject(Fault::Malformed, 6);
    let e = client
        .repositories("acme-mobile")
        .collect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("not valid JSON"), "{e}");

    sandbox.server().inject(Fault::DropMidBody, 1);
    let repos = client.repositories("acme-mobile").collect().await.unwrap();
    assert_eq!(repos.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_token_endpoint_is_retried_once_over_not_per_api_attempt() {
    use api_support::sandbox::Fault;
    let sandbox = Sandbox::builder()
        .oauth_consumer(
            SAMPLE_CONSUMER_KEY,
            SAMPLE_CONSUMER_SECRET,
            Duration::from_secs(3600),
        )
        .start()
        .await
        .unwrap();
    let client = builder(&sandbox)
        .auth(Auth::oauth_client_credentials(
            SAMPLE_CONSUMER_KEY,
            SAMPLE_CONSUMER_SECRET,
        ))
        .build()
        .unwrap();
    sandbox
        .server()
        .inject_on("/site/oauth2/access_token", Fault::Status(503), 100);
    let e = client.current_user().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    // The token request's own attempts (the retry policy's six), and no API request at all.
    assert_eq!(sandbox.stats().faults, 6);
    assert_eq!(sandbox.stats().route("GET /user"), 0);
}

#[tokio::test]
async fn a_page_without_next_mid_listing_is_asked_again_and_never_passes_for_complete() {
    use api_support::sandbox::Fault;
    let sandbox = Sandbox::builder()
        .estate(Estate::generate(1, 250, 3))
        .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
        .start()
        .await
        .unwrap();
    let client = api_token_client(&sandbox);

    // Once: the first page comes without `next`; it is asked for again and the listing
    // completes with every repository.
    sandbox
        .server()
        .inject_on("/2.0/repositories/ws-0001", Fault::NoNext, 1);
    let repos = client.repositories("ws-0001").collect().await.unwrap();
    assert_eq!(repos.len(), 250);
    assert_eq!(sandbox.stats().route("GET /repositories/{workspace}"), 4);

    // Twice: the listing fails instead of passing 100 repositories for 250.
    sandbox
        .server()
        .inject_on("/2.0/repositories/ws-0001", Fault::NoNext, 2);
    let e = client.repositories("ws-0001").collect().await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::IncompleteListing {
                expected: 250,
                received: 100,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("run again"), "{e}");
}

#[tokio::test]
async fn the_estate_changes_while_running_and_repositories_are_found_by_uuid() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let c = api_token_client(&sandbox);
    let api = c.repository("acme-platform", "api-gateway").await.unwrap();
    let uuid = api.uuid.clone().unwrap();
    let slugs = |ws: &'static str| {
        let c = c.clone();
        async move {
            let mut s: Vec<String> = c
                .repositories(ws)
                .collect()
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.slug)
                .collect();
            s.sort();
            s
        }
    };

    // Renamed: the old slug answers 404 (no redirect), the uuid finds the new name.
    assert!(sandbox.rename_repository("acme-platform", "api-gateway", "gateway"));
    let old = c
        .repository("acme-platform", "api-gateway")
        .await
        .unwrap_err();
    assert_eq!(old.kind(), ErrorKind::NotFound);
    let found = c
        .repository_by_uuid("acme-platform", &uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.slug, "gateway");
    assert!(
        found.updated_on > api.updated_on,
        "updated_on moves on a rename"
    );

    // The default branch changed.
    assert!(sandbox.set_main_branch("acme-platform", "gateway", "trunk"));
    let found = c.repository("acme-platform", "gateway").await.unwrap();
    assert_eq!(found.main_branch(), Some("trunk"));

    // Transferred to another workspace: same uuid, listed there.
    assert!(sandbox.transfer_repository("acme-platform", "gateway", "acme-data"));
    assert!(slugs("acme-data").await.contains(&"gateway".to_owned()));
    assert!(!slugs("acme-platform").await.contains(&"gateway".to_owned()));
    assert_eq!(
        c.repository_by_uuid("acme-data", &uuid)
            .await
            .unwrap()
            .map(|r| r.uuid),
        Some(Some(uuid.clone()))
    );

    // Deleted: gone from the listing, and 404 by uuid (the lookup says None).
    assert!(sandbox.delete_repository("acme-data", "gateway"));
    assert!(!slugs("acme-data").await.contains(&"gateway".to_owned()));
    assert!(
        c.repository_by_uuid("acme-data", &uuid)
            .await
            .unwrap()
            .is_none()
    );

    // A workspace renamed keeps its uuid; one hidden leaves /user/workspaces.
    let before = c.user_workspaces(None).collect().await.unwrap();
    let mobile_uuid = before
        .iter()
        .find(|w| w.workspace.slug.as_deref() == Some("acme-mobile"))
        .and_then(|w| w.workspace.uuid.clone());
    assert!(sandbox.rename_workspace("acme-mobile", "acme-apps"));
    sandbox.hide_workspace("acme-data");
    let after = c.user_workspaces(None).collect().await.unwrap();
    let slugs_uuids: Vec<(Option<String>, Option<String>)> = after
        .iter()
        .map(|w| (w.workspace.slug.clone(), w.workspace.uuid.clone()))
        .collect();
    assert!(slugs_uuids.contains(&(Some("acme-apps".into()), mobile_uuid)));
    assert!(
        !slugs_uuids
            .iter()
            .any(|(s, _)| s.as_deref() == Some("acme-data"))
    );
    let hidden = c.repositories("acme-data").collect().await.unwrap_err();
    assert_eq!(hidden.kind(), ErrorKind::NotFound);
    assert_eq!(
        sandbox
            .stats()
            .route("GET /repositories/{workspace}/{repo_slug}"),
        6
    );
}
