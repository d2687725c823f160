//! Contract test: every path, method and query parameter the client can send exists in
//! Atlassian's OpenAPI description (`testdata/specs/bitbucket-cloud.openapi.json`), none of
//! them is a removed endpoint, and the description's examples for these endpoints deserialize
//! into the models.

use std::path::PathBuf;

use api_support::Endpoint;
use bitbucket_cloud_client::endpoints::{
    CurrentUser, GetRepository, GetWorkspace, ListRepositories, Role, UserWorkspaces,
    WorkspaceProjects,
};
use bitbucket_cloud_client::{Auth, BitbucketClient, Fields, Page, WorkspaceAccess};
use serde_json::Value;

/// Query parameters the description documents once for every collection, in its narrative
/// (pagination and partial responses), rather than per operation.
const GLOBAL_QUERY: [&str; 3] = ["page", "pagelen", "fields"];

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
    ]
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
