//! Contract test: every path, method and query parameter the client can send exists in
//! Atlassian's OpenAPI description (`testdata/specs/bitbucket-cloud.openapi.json`), none of
//! them is a removed endpoint, and the description's examples for these endpoints deserialize
//! into the models.

use std::path::PathBuf;

use api_support::Endpoint;
use bitbucket_cloud_client::endpoints::{
    CurrentUser, DeleteWorkspaceHook, GetRepository, GetWorkspace, ListRepositories,
    PutWorkspaceHook, Role, UserWorkspaces, WorkspaceHooks, WorkspaceProjects,
};
use bitbucket_cloud_client::webhooks::{Webhook, WebhookSpec};
use bitbucket_cloud_client::{Auth, BitbucketClient, Fields, Page, WorkspaceAccess};
use serde_json::Value;

/// Query parameters the description documents once for every collection, in its narrative
/// (pagination and partial responses), rather than per operation.
const GLOBAL_QUERY: [&str; 3] = ["page", "pagelen", "fields"];

/// Operations whose body the document's schema leaves out though its prose (and Bitbucket)
/// requires one: the webhook's `url`, `events`, `active` and `secret`.
const UNDECLARED_BODIES: &[(&str, &str)] = &[
    ("post", "/workspaces/{workspace}/hooks"),
    ("put", "/workspaces/{workspace}/hooks/{uid}"),
];

fn spec() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/specs/bitbucket-cloud.openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the spec is JSON")
}

/// Every endpoint the client can send, each with every option set.
fn endpoints() -> Vec<Box<dyn Endpoint>> {
    let mut repos = ListRepositories::new("acme");
    repos.and_q(r#"project.key="CORE""#);
    repos.role = Some(Role::Member);
    repos.fields = Some(Fields::new(["values.slug"]));
    vec![
        Box::new(CurrentUser),
        Box::new(UserWorkspaces {
            administrator: Some(true),
            pagelen: 100,
        }),
        Box::new(GetWorkspace {
            workspace: "acme".into(),
        }),
        Box::new(WorkspaceProjects {
            workspace: "acme".into(),
            pagelen: 100,
        }),
        Box::new(repos),
        Box::new(GetRepository {
            workspace: "acme".into(),
            repo_slug: "api".into(),
        }),
        Box::new(WorkspaceHooks {
            workspace: "acme".into(),
        }),
        Box::new(PutWorkspaceHook {
            workspace: "acme".into(),
            uid: None,
            spec: WebhookSpec::mirror("https://x.example/webhooks/bitbucket", "s".into()),
        }),
        Box::new(PutWorkspaceHook {
            workspace: "acme".into(),
            uid: Some("{h}".into()),
            spec: WebhookSpec::mirror("https://x.example/webhooks/bitbucket", "s".into()),
        }),
        Box::new(DeleteWorkspaceHook {
            workspace: "acme".into(),
            uid: "{h}".into(),
        }),
    ]
}

/// Every webhook the document allows decodes, alone and in a page (`hooks list`, `hooks
/// install` finding its hook by URL).
#[test]
fn generated_webhooks_decode() {
    use api_support::instances::Instances;
    let spec = spec();
    for seed in 0..12_u64 {
        let mut generator = Instances::new(&spec, seed);
        for maximal in [false, true] {
            let mut make = |name: &str| {
                let schema = generator.schema(name).expect(name);
                generator.filled(schema, maximal)
            };
            let one = make("webhook_subscription");
            let page = make("paginated_webhook_subscriptions");
            let decoded: Result<Webhook, _> = serde_json::from_value(one.clone());
            assert!(decoded.is_ok(), "seed {seed}: {decoded:?} from {one}");
            let decoded: Result<Page<Webhook>, _> = serde_json::from_value(page.clone());
            assert!(decoded.is_ok(), "seed {seed}: {decoded:?} from {page}");
        }
    }
}

fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

fn parameter_names(spec: &Value, item: &Value, op: &Value) -> Vec<String> {
    let resolve = |p: &Value| -> Value {
        match p.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let mut v = spec;
                for part in r.trim_start_matches("#/").split('/') {
                    v = &v[part];
                }
                v.clone()
            }
            None => p.clone(),
        }
    };
    [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(resolve)
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_request_the_client_can_send_is_in_the_spec() {
    let spec = spec();
    let narrative = spec["x-atlassian-narrative"].to_string();
    for global in GLOBAL_QUERY {
        assert!(
            narrative.contains(global),
            "the narrative no longer documents `{global}`"
        );
    }
    let client = BitbucketClient::builder()
        .auth(Auth::access_token("x"))
        .build()
        .unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for endpoint in endpoints() {
        let request = client.http().request_for(endpoint.as_ref()).unwrap();
        let path = request.url.path().strip_prefix("/2.0").unwrap().to_owned();
        let method = request.method.as_str().to_ascii_lowercase();
        let (template, item) = paths
            .iter()
            .find(|(t, _)| matches_template(t, &path))
            .unwrap_or_else(|| panic!("{path} is not in the spec"));
        let op = item
            .get(&method)
            .unwrap_or_else(|| panic!("{method} {template} is not in the spec"));
        assert_ne!(
            op.get("deprecated"),
            Some(&Value::Bool(true)),
            "{template} is deprecated (removed by CHANGE-2770)"
        );
        // A body the document does not declare is sent only where its prose documents one
        // (a mock generated from the document answers 415 there: docs/api-facts, "Spec
        // defects to expect").
        if request.body.is_some() && op.get("requestBody").is_none() {
            assert!(
                UNDECLARED_BODIES.contains(&(method.as_str(), template.as_str())),
                "{method} {template} sends a body the document does not declare"
            );
        }
        let allowed = parameter_names(&spec, item, op);
        for (name, _) in request.url.query_pairs() {
            assert!(
                allowed.contains(&name.to_string()) || GLOBAL_QUERY.contains(&name.as_ref()),
                "{method} {template}: query parameter `{name}` is not in the spec (allowed: {allowed:?})"
            );
        }
    }
}

#[test]
fn removed_endpoints_are_deprecated_in_the_spec_and_never_called() {
    let spec = spec();
    let client = BitbucketClient::builder()
        .auth(Auth::access_token("x"))
        .build()
        .unwrap();
    let called: Vec<String> = endpoints()
        .iter()
        .map(|e| {
            client
                .http()
                .request_for(e.as_ref())
                .unwrap()
                .url
                .path()
                .to_owned()
        })
        .collect();
    for removed in [
        "/workspaces",
        "/repositories",
        "/user/permissions/workspaces",
        "/user/permissions/repositories",
    ] {
        assert_eq!(
            spec["paths"][removed]["get"]["deprecated"],
            Value::Bool(true),
            "{removed}"
        );
        assert!(!called.contains(&format!("/2.0{removed}")));
    }
}

#[test]
fn the_spec_examples_deserialize_into_the_models() {
    let spec = spec();
    let example = &spec["paths"]["/user/workspaces"]["get"]["responses"]["200"]["content"]["application/json"]
        ["examples"]["response"]["value"];
    assert!(example.is_object(), "the /user/workspaces example is gone");
    let page: Page<WorkspaceAccess> = serde_json::from_value(example.clone()).unwrap();
    assert_eq!(page.values.len(), 1);
    assert_eq!(
        page.values[0].workspace.slug.as_deref(),
        Some("bbworkspace1")
    );
    assert_eq!(page.values[0].administrator, Some(true));
}

/// A generated page made safe to serve: no links to follow and no announced total.
fn servable_page(mut page: Value) -> Value {
    if let Some(o) = page.as_object_mut() {
        for key in ["next", "previous", "size", "page"] {
            o.remove(key);
        }
    }
    page
}

/// Every payload the vendor's document allows for the answers the client reads decodes: the
/// listings (repositories, workspaces the caller can access, projects) and the single objects
/// (user, workspace, repository), minimal and maximal instances under many seeds. A listing
/// never fails for an item; only a maximal item, which has every field, must decode whole.
#[tokio::test]
async fn generated_payloads_the_spec_allows_decode() {
    use api_support::instances::Instances;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let spec = spec();
    let server = MockServer::start().await;
    let client = BitbucketClient::builder()
        .base_url(format!("{}/2.0", server.uri()))
        .auth(Auth::api_token("me@example.test", "t"))
        .retry(api_support::RetryPolicy::none())
        .build()
        .unwrap();
    for seed in 0..12_u64 {
        let mut generator = Instances::new(&spec, seed);
        for maximal in [false, true] {
            let listings = generated_answers(&mut generator, seed, maximal);
            server.reset().await;
            for (at, body) in &listings {
                Mock::given(method("GET"))
                    .and(path(*at))
                    .respond_with(ResponseTemplate::new(200).set_body_json(body))
                    .mount(&server)
                    .await;
            }
            let sent = listings[0].1["values"].as_array().map_or(0, Vec::len);
            decodes(&client, seed, maximal, sent).await;
        }
    }
}

/// The answers the client reads, generated from the vendor's document under `seed`: the
/// repositories of `acme` first, then the caller's workspaces, `acme`'s projects, the user,
/// the workspace and one repository.
fn generated_answers(
    generator: &mut api_support::instances::Instances,
    seed: u64,
    maximal: bool,
) -> [(&'static str, Value); 6] {
    let mut make = |name: &str| {
        let schema = generator.schema(name).expect(name);
        generator.filled(schema, maximal)
    };
    let mut repositories = servable_page(make("paginated_repositories"));
    // A minimal page has no items: give it minimal repositories to decode.
    if !maximal {
        repositories["values"] = Value::Array((0..3).map(|_| make("repository")).collect());
    } else if seed.is_multiple_of(2) {
        // Half the maximal pages carry full names as Bitbucket writes them, so that every
        // other field is shown to decode too.
        for (i, r) in repositories["values"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            r["full_name"] = Value::from(format!("acme/repo-{i}"));
        }
    }
    [
        ("/2.0/repositories/acme", repositories),
        (
            "/2.0/user/workspaces",
            servable_page(make("paginated_workspace_access")),
        ),
        (
            "/2.0/workspaces/acme/projects",
            servable_page(make("paginated_projects")),
        ),
        ("/2.0/user", make("account")),
        ("/2.0/workspaces/acme", make("workspace")),
        ("/2.0/repositories/acme/api", make("repository")),
    ]
}

/// Reads each generated answer through the client: the listing of `sent` repositories keeps
/// or names every one, and only a repository without a slug to be had is left out.
async fn decodes(client: &BitbucketClient, seed: u64, maximal: bool, sent: usize) {
    use futures_util::StreamExt;
    let context = format!("seed {seed}, maximal {maximal}");
    let pages: Vec<_> = client
        .repositories("acme")
        .paginator()
        .pages()
        .collect()
        .await;
    let page = pages[0]
        .as_ref()
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(page.items.len() + page.skipped.len(), sent, "{context}");
    if maximal && seed.is_multiple_of(2) {
        assert!(page.skipped.is_empty(), "{context}: {:?}", page.skipped);
    }
    for skipped in &page.skipped {
        // Only a repository without a slug to be had cannot be used: neither `slug` nor
        // `full_name` (minimal), or a `full_name` without `/` (the schema sets no
        // pattern); it is left out and named, and the listing goes on.
        let reason = &skipped.reason;
        assert!(
            reason.contains("neither `slug` nor `full_name`")
                || (maximal && reason.contains("has no `/`")),
            "{context}: {skipped}"
        );
    }
    let workspaces = client.user_workspaces(None).collect().await;
    assert!(workspaces.is_ok(), "{context}: {workspaces:?}");
    let projects = client.projects("acme").collect().await;
    assert!(projects.is_ok(), "{context}: {projects:?}");
    let user = client.current_user().await;
    assert!(user.is_ok(), "{context}: {user:?}");
    let workspace = client.workspace("acme").await;
    if maximal {
        assert!(workspace.is_ok(), "{context}: {workspace:?}");
    }
    // A single repository without a slug to be had is an error naming it.
    if let Err(e) = client.repository("acme", "api").await {
        assert!(e.to_string().contains("slug"), "{context}: {e}");
    }
}
