//! The client against the fake Snyk, on tokio's paused clock where time matters.
#![cfg(feature = "sandbox")]

use std::time::Duration;

use futures_util::TryStreamExt;
use futures_util::future::join_all;
use secrecy::SecretString;
use snyk_client::api_support::{RateLimit, TransportConfig};
use snyk_client::sandbox::{SAMPLE_CLIENT_ID, SAMPLE_CLIENT_SECRET, SAMPLE_TOKEN, Sandbox};
use snyk_client::{
    Error, ImportRequest, ImportStatus, IntegrationType, Region, SnykAuth, SnykClient,
    SnykClientBuilder,
};
use tokio::time::Instant;

fn builder(sandbox: &Sandbox) -> SnykClientBuilder {
    SnykClient::builder()
        .api_url(sandbox.api_url())
        .transport_config(TransportConfig::without_timers())
}

fn client(sandbox: &Sandbox) -> SnykClient {
    builder(sandbox)
        .auth(SnykAuth::token(SAMPLE_TOKEN))
        .build()
        .unwrap()
}

/// A new org `acme-platform` in the sandbox's group, and its bitbucket-cloud integration.
async fn org_with_integration(c: &SnykClient, sandbox: &Sandbox) -> (String, String) {
    let org = c
        .create_org(&sandbox.group_id(), "acme-platform", None)
        .await
        .unwrap();
    let int = c
        .integrations(&org.id)
        .await
        .unwrap()
        .id_of(&IntegrationType::BitbucketCloud)
        .unwrap()
        .to_owned();
    (org.id, int)
}

#[tokio::test(start_paused = true)]
async fn create_import_poll_and_list_targets() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let c = client(&sandbox);
    let group = sandbox.group_id();
    let org = c.create_org(&group, "acme-platform", None).await.unwrap();
    let ints = c.integrations(&org.id).await.unwrap();
    let int = ints
        .id_of(&IntegrationType::BitbucketCloud)
        .unwrap()
        .to_owned();

    let job = c
        .import(
            &org.id,
            &int,
            &ImportRequest::new("acme-platform", "billing-service", Some("main")),
        )
        .await
        .unwrap();
    let done = c.wait_for_import(&job).await.unwrap();
    assert_eq!(done.job.status, ImportStatus::Complete);
    assert_eq!(done.job.created_projects().count(), 2);
    // The sandbox finishes jobs after 3 s: polls at 0.5 s, then every tenth of the time
    // waited, at least 200 ms apart (0.7, 0.9, ... 2.1, 2.31, 2.54, 2.8, 3.08 s; one more if
    // the last came a hair early), so the job is seen within a tenth of its time after its end.
    assert!((13..=14).contains(&done.polls), "{}", done.polls);
    assert!(
        done.waited <= Duration::from_millis(3400),
        "{:?}",
        done.waited
    );

    // A repository without manifests completes with zero projects and leaves no target.
    let empty = c
        .import(
            &org.id,
            &int,
            &ImportRequest::new("acme-platform", "empty-sandbox", None),
        )
        .await
        .unwrap();
    let done = c.wait_for_import(&empty).await.unwrap();
    assert_eq!(done.job.status, ImportStatus::Complete);
    assert_eq!(done.job.created_projects().count(), 0);

    let targets: Vec<_> = c.targets(&org.id).try_collect().await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].display_name, "acme-platform/billing-service");
    let found = c
        .find_target(
            &org.id,
            "ACME-PLATFORM/billing-service",
            &IntegrationType::BitbucketCloud,
        )
        .await
        .unwrap();
    assert_eq!(found.map(|t| t.id), Some(targets[0].id.clone()));
    // The prefix filter would also match `billing-service-2`; the client compares exactly.
    assert!(
        c.find_target(
            &org.id,
            "acme-platform/billing",
            &IntegrationType::BitbucketCloud
        )
        .await
        .unwrap()
        .is_none()
    );
    let projects: Vec<_> = c
        .projects(&org.id, Some(&targets[0].id))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(projects.len(), 2);
    assert_eq!(
        sandbox
            .stats()
            .route("POST /v1/org/{orgId}/integrations/{integrationId}/import"),
        2
    );
}

#[tokio::test]
async fn a_body_with_an_extra_key_is_refused_by_snyk_and_cannot_be_built() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let c = client(&sandbox);
    let org = c.create_org(&sandbox.group_id(), "o", None).await.unwrap();
    let int = c.integrations(&org.id).await.unwrap().0["bitbucket-cloud"].clone();
    // What another tool sends (`fork` is not a key Snyk accepts), sent raw:
    let url = c
        .v1()
        .url(&format!("org/{}/integrations/{int}/import", org.id), &[]);
    let raw = snyk_client::api_support::ApiRequest::new(http::Method::POST, url).with_body(
        snyk_client::api_support::Body::json(
            &serde_json::json!({"target": {"owner": "a", "name": "b", "fork": false}}),
        )
        .unwrap(),
    );
    let e = c.v1().send(raw).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(400));
    assert!(e.body().unwrap().contains("invalidParamData"));
    // The typed request has only the accepted keys.
    let v = serde_json::to_value(ImportRequest::new("a", "b", Some("main"))).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"target": {"owner": "a", "name": "b", "branch": "main"}})
    );
}

#[tokio::test(start_paused = true)]
async fn the_project_cap_refuses_the_import() {
    let sandbox = Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .project_cap(2)
        .default_manifests(&["a/package.json", "b/package.json", "c/package.json"])
        .start()
        .await
        .unwrap();
    let c = client(&sandbox);
    let org = c
        .create_org(&sandbox.group_id(), "full", None)
        .await
        .unwrap();
    let int = c.integrations(&org.id).await.unwrap().0["bitbucket-cloud"].clone();
    let e = c
        .import(&org.id, &int, &ImportRequest::new("ws", "big", None))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProjectCap { .. }), "{e:?}");
    assert!(e.to_string().contains("25,000"), "{e}");
}

#[tokio::test]
async fn a_template_org_copies_integrations_with_their_credentials() {
    let sandbox = Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .default_integrations(&[])
        .start()
        .await
        .unwrap();
    let c = client(&sandbox);
    let group = sandbox.group_id();
    let template = c.create_org(&group, "template", None).await.unwrap();
    assert!(c.integrations(&template.id).await.unwrap().0.is_empty());
    let token = SecretString::from("bb-api-token");
    let int = c
        .add_bitbucket_cloud_integration(&template.id, "bot@example.com", &token)
        .await
        .unwrap();
    let copy = c
        .create_org(&group, "copy", Some(&template.id))
        .await
        .unwrap();
    let copied = c.integrations(&copy.id).await.unwrap();
    let new_int = copied.id_of(&IntegrationType::BitbucketCloud).unwrap();
    assert_ne!(new_int, int);
    assert_eq!(
        sandbox.integration_email(new_int).as_deref(),
        Some("bot@example.com")
    );
    assert!(sandbox.integration_token_is(new_int, "bb-api-token"));

    // Rotation: new credentials in one integration.
    c.update_bitbucket_cloud_credentials(
        &copy.id,
        new_int,
        "bot@example.com",
        &SecretString::from("rotated"),
    )
    .await
    .unwrap();
    assert!(sandbox.integration_token_is(new_int, "rotated"));
    assert!(sandbox.integration_token_is(&int, "bb-api-token"));
}

#[tokio::test]
async fn rest_listings_page_over_both_link_forms() {
    let sandbox = Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .start()
        .await
        .unwrap();
    for i in 0..250 {
        sandbox.add_org(&format!("org-{i:03}"), &["bitbucket-cloud"]);
    }
    let c = client(&sandbox);
    let orgs: Vec<_> = c
        .group_orgs_rest(&sandbox.group_id())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(orgs.len(), 250);
    assert_eq!(sandbox.stats().route("GET /rest/groups/{group_id}/orgs"), 3);
    let v1 = c.group_orgs(&sandbox.group_id()).await.unwrap();
    assert_eq!(v1.len(), 250);
    assert_eq!(sandbox.stats().route("GET /v1/group/{groupId}/orgs"), 3);
}

#[tokio::test]
async fn duplicate_org_names_are_listed_as_they_are() {
    let sandbox = Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .org("acme", &["bitbucket-cloud"])
        .org("acme", &[])
        .start()
        .await
        .unwrap();
    let orgs = client(&sandbox)
        .group_orgs(&sandbox.group_id())
        .await
        .unwrap();
    assert_eq!(orgs.iter().filter(|o| o.name == "acme").count(), 2);
}

#[tokio::test]
async fn a_token_without_group_permission_gets_a_clear_error() {
    let sandbox = Sandbox::builder()
        .token_without_group_access("member-token")
        .start()
        .await
        .unwrap();
    let c = builder(&sandbox)
        .auth(SnykAuth::token("member-token"))
        .build()
        .unwrap();
    let e = c.group_orgs(&sandbox.group_id()).await.unwrap_err();
    assert!(matches!(e, Error::GroupPermission { .. }), "{e:?}");
    let e = c
        .create_org(&sandbox.group_id(), "x", None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::GroupPermission { .. }), "{e:?}");
    assert!(sandbox.orgs().is_empty());

    let wrong = builder(&sandbox)
        .auth(SnykAuth::token("nope"))
        .build()
        .unwrap();
    let e = wrong.group_orgs(&sandbox.group_id()).await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn oauth_client_credentials_renew_once_for_concurrent_401s() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let c = builder(&sandbox)
        .auth(SnykAuth::oauth_client_credentials(
            SAMPLE_CLIENT_ID,
            SAMPLE_CLIENT_SECRET,
        ))
        .build()
        .unwrap();
    let group = sandbox.group_id();
    let results = join_all((0..10).map(|_| c.group_orgs(&group))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(sandbox.stats().route("POST /oauth2/token"), 1);
    sandbox.revoke_oauth_tokens();
    let results = join_all((0..10).map(|_| c.group_orgs(&group))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(sandbox.stats().route("POST /oauth2/token"), 2);
}

#[tokio::test(start_paused = true)]
async fn client_budgets_keep_under_the_server_limit() {
    let sandbox = Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .per_minute(5)
        .start()
        .await
        .unwrap();
    let c = builder(&sandbox)
        .auth(SnykAuth::token(SAMPLE_TOKEN))
        .v1_limit(Some(RateLimit::per_minute(5)))
        .build()
        .unwrap();
    let start = Instant::now();
    for _ in 0..6 {
        c.group_orgs(&sandbox.group_id()).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(sandbox.stats().status(429), 0);

    // Without a client budget, the server's 429 and Retry-After carry it through.
    let unbudgeted = builder(&sandbox)
        .auth(SnykAuth::token(SAMPLE_TOKEN))
        .v1_limit(None)
        .build()
        .unwrap();
    for _ in 0..6 {
        unbudgeted.group_orgs(&sandbox.group_id()).await.unwrap();
    }
    assert!(sandbox.stats().status(429) >= 1);
}

#[tokio::test]
async fn a_pat_names_its_host_and_a_contradicting_region_is_refused() {
    let sandbox = Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .start()
        .await
        .unwrap();
    let claims = format!(r#"{{"h":"{}"}}"#, sandbox.api_url());
    let payload = snyk_client::api_support::base64(claims.as_bytes());
    let pat = format!("snyk_uat.12345678.{}.sig", payload.trim_end_matches('='));
    // No region and no address: the token's host is used (the sandbox refuses the PAT itself,
    // which proves the request went there).
    let c = SnykClient::builder()
        .auth(SnykAuth::token(pat.clone()))
        .transport_config(TransportConfig::without_timers())
        .build()
        .unwrap();
    assert_eq!(c.host(), sandbox.api_url());
    let e = c.group_orgs(&sandbox.group_id()).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(sandbox.stats().total, 1);

    let eu_claims = api_support_b64(r#"{"h":"api.eu.snyk.io"}"#);
    let eu_pat = format!("snyk_uat.12345678.{eu_claims}.sig");
    let e = SnykClient::builder()
        .region(Region::Us01)
        .auth(SnykAuth::token(eu_pat.clone()))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("api.eu.snyk.io"), "{e}");
    assert!(!e.to_string().contains(&eu_pat));
    let eu = SnykClient::builder()
        .auth(SnykAuth::token(eu_pat))
        .build()
        .unwrap();
    assert_eq!(eu.region(), Some(Region::Eu01));
}

fn api_support_b64(s: &str) -> String {
    snyk_client::api_support::base64(s.as_bytes())
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

#[test]
fn no_secret_in_formatted_credentials_clients_and_errors() {
    let secret = "snyk-Secret-Value-42";
    for auth in [
        SnykAuth::token(secret),
        SnykAuth::bearer(secret),
        SnykAuth::oauth_client_credentials("cid", secret),
    ] {
        let b = SnykClient::builder().auth(auth.clone());
        let shown_builder = format!("{b:?}");
        let c = b.build().unwrap();
        for shown in [format!("{auth:?}"), shown_builder, format!("{c:?}")] {
            assert!(!shown.contains(secret), "leaked: {shown}");
        }
    }
    // A library user is told which builder method supplies what is missing.
    let e = SnykClient::builder().build().unwrap_err();
    assert!(e.to_string().contains("SnykClientBuilder::auth"), "{e}");
    let e = SnykClient::builder()
        .api_url("http://api.snyk.io")
        .auth(SnykAuth::token(secret))
        .build()
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains(secret));
    assert!(e.to_string().contains("plain-HTTP"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn projects_are_deactivated_rebranched_deleted_and_targets_deleted_orgs_renamed() {
    let sandbox = Sandbox::start_sample().await.unwrap();
    let c = client(&sandbox);
    let (org_id, int) = org_with_integration(&c, &sandbox).await;
    let target = imported(&c, &org_id, &int, "billing-service").await;
    let projects = || {
        c.projects(&org_id, Some(&target.id))
            .try_collect::<Vec<_>>()
    };
    let first = projects().await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|p| p.status.as_deref() == Some("active")));

    // The default branch changed: each project is moved to the new branch.
    for p in &first {
        c.update_project_branch(&org_id, &p.id, "trunk")
            .await
            .unwrap();
    }
    assert!(
        projects()
            .await
            .unwrap()
            .iter()
            .all(|p| p.target_reference.as_deref() == Some("trunk"))
    );

    // Deactivated (reversibly), then activated again.
    c.set_project_active(&org_id, &first[0].id, false)
        .await
        .unwrap();
    let now = projects().await.unwrap();
    let status = |id: &str| {
        now.iter()
            .find(|p| p.id == id)
            .and_then(|p| p.status.clone())
    };
    assert_eq!(status(&first[0].id).as_deref(), Some("inactive"));
    assert_eq!(status(&first[1].id).as_deref(), Some("active"));
    c.set_project_active(&org_id, &first[0].id, true)
        .await
        .unwrap();

    v1_deletes_a_project(&c, &org_id, &int).await;

    // The target is deleted; its projects are not (Snyk does not document that they go), so
    // they are listed and deleted one by one.
    c.delete_target(&org_id, &target.id).await.unwrap();
    assert!(
        !c.targets(&org_id)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == target.id)
    );
    let left = projects().await.unwrap();
    assert_eq!(left.len(), 2);
    for p in &left {
        c.delete_project(&org_id, &p.id).await.unwrap();
    }
    assert!(projects().await.unwrap().is_empty());
    let again = c.delete_target(&org_id, &target.id).await.unwrap_err();
    assert_eq!(again.status(), Some(404));

    // An org follows a workspace's new slug.
    c.rename_org(&org_id, "acme-corp").await.unwrap();
    assert_eq!(c.org(&org_id).await.unwrap().name, "acme-corp");

    let stats = sandbox.stats();
    assert_eq!(stats.route("PUT /v1/org/{orgId}/project/{projectId}"), 2);
    assert_eq!(
        stats.route("POST /v1/org/{orgId}/project/{projectId}/deactivate"),
        1
    );
    assert_eq!(
        stats.route("DELETE /rest/orgs/{org_id}/targets/{target_id}"),
        2
    );
    assert_eq!(
        stats.route("DELETE /rest/orgs/{org_id}/projects/{project_id}"),
        2
    );
    assert_eq!(stats.route("PATCH /rest/orgs/{org_id}"), 1);
}

/// Imports `acme-platform/{slug}` into the org, waits for the job, and returns its target.
async fn imported(c: &SnykClient, org_id: &str, int: &str, slug: &str) -> snyk_client::Target {
    let job = c
        .import(
            org_id,
            int,
            &ImportRequest::new("acme-platform", slug, Some("main")),
        )
        .await
        .unwrap();
    c.wait_for_import(&job).await.unwrap();
    let name = format!("acme-platform/{slug}");
    c.targets(org_id)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.display_name == name)
        .unwrap()
}

/// v1 deletes a project too (through the client's plain v1 request).
async fn v1_deletes_a_project(c: &SnykClient, org_id: &str, int: &str) {
    let web = imported(c, org_id, int, "web-frontend").await;
    let web_projects: Vec<_> = c
        .projects(org_id, Some(&web.id))
        .try_collect()
        .await
        .unwrap();
    let url = c.v1().url(
        &format!("org/{}/project/{}", org_id, web_projects[0].id),
        &[],
    );
    let response = c
        .v1()
        .send(snyk_client::api_support::ApiRequest::new(
            snyk_client::api_support::http::Method::DELETE,
            url,
        ))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        c.projects(org_id, Some(&web.id))
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn log_normal_job_durations_are_seeded_clipped_and_centred_on_their_median() {
    use snyk_client::sandbox::JobDurations;
    let draw = |seed| {
        let sandbox_durations = JobDurations::log_normal(
            Duration::from_secs(20),
            1.0,
            Duration::from_secs(2),
            Duration::from_secs(600),
            seed,
        );
        async move {
            let sandbox = Sandbox::sample_builder()
                .import_durations(sandbox_durations)
                .start()
                .await
                .unwrap();
            let c = client(&sandbox);
            let (org_id, int) = org_with_integration(&c, &sandbox).await;
            for _ in 0..201 {
                c.import(
                    &org_id,
                    &int,
                    &ImportRequest::new("acme-platform", "billing-service", Some("main")),
                )
                .await
                .unwrap();
            }
            sandbox.job_durations()
        }
    };
    let mut a = draw(3).await;
    assert_eq!(a, draw(3).await, "the same seed draws the same durations");
    assert!(a.iter().all(|d| (2..=600).contains(&d.as_secs())), "{a:?}");
    a.sort();
    let median = a[100].as_secs_f64();
    assert!((14.0..28.0).contains(&median), "median {median}");
    assert!(a.first() != a.last(), "durations vary");
}

#[tokio::test(start_paused = true)]
async fn the_sandbox_counts_how_long_after_its_end_each_job_was_seen_ended() {
    let sandbox = Sandbox::sample_builder()
        .import_delay(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let c = client(&sandbox);
    let (org_id, int) = org_with_integration(&c, &sandbox).await;
    let request = ImportRequest::new("acme-platform", "billing-service", Some("main"));
    let start = Instant::now();
    let polled_twice = c.import(&org_id, &int, &request).await.unwrap();
    let polled_once = c.import(&org_id, &int, &request).await.unwrap();
    let status = |job| {
        let c = &c;
        async move { c.import_job(job).await.unwrap().status }
    };
    tokio::time::sleep_until(start + Duration::from_secs(1)).await;
    assert_eq!(status(&polled_twice).await, ImportStatus::Pending);
    tokio::time::sleep_until(start + Duration::from_millis(3500)).await;
    assert_eq!(status(&polled_twice).await, ImportStatus::Complete);
    tokio::time::sleep_until(start + Duration::from_secs(4)).await;
    assert_eq!(status(&polled_once).await, ImportStatus::Complete);
    // A job already seen ended counts once.
    assert_eq!(status(&polled_twice).await, ImportStatus::Complete);

    let seen = sandbox.seen_lag();
    assert_eq!((seen.jobs, seen.at_first_poll), (2, 1), "{seen:?}");
    let near =
        |d: Duration, ms: u64| d.abs_diff(Duration::from_millis(ms)) < Duration::from_millis(20);
    assert!(near(seen.lag, 1500), "{seen:?}");
    assert!(near(seen.lag_at_first_poll, 1000), "{seen:?}");
    assert_eq!(seen.since(&seen), snyk_client::sandbox::SeenLag::default());
}
