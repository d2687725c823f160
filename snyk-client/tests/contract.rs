//! Contract test: every REST call the client can make exists in Snyk's OpenAPI description
//! (`testdata/specs/snyk-rest.openapi.json`) with its method and query parameters, the pinned
//! version is at or after each operation's release, and answers are JSON:API.

use std::path::PathBuf;

use serde_json::Value;
use snyk_client::api_support::Endpoint;
use snyk_client::endpoints::{
    BITBUCKET_SOURCE_TYPES, DeleteProject, DeleteTarget, GetOrg, GroupOrgs, ListProjects,
    ListTargets, REST_VERSION, RenameOrg,
};
use snyk_client::{SnykAuth, SnykClient};

fn spec() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/specs/snyk-rest.openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the spec is JSON")
}

fn rest_endpoints() -> Vec<Box<dyn Endpoint>> {
    vec![
        Box::new(GroupOrgs {
            group_id: "g".into(),
            name: Some("acme".into()),
        }),
        Box::new(GetOrg { org_id: "o".into() }),
        Box::new(ListTargets {
            org_id: "o".into(),
            source_types: BITBUCKET_SOURCE_TYPES.into(),
            display_name: Some("acme/api".into()),
        }),
        Box::new(ListProjects {
            org_id: "o".into(),
            target_id: Some("t".into()),
        }),
        Box::new(RenameOrg {
            org_id: "o".into(),
            name: "acme-corp".into(),
        }),
        Box::new(DeleteProject {
            org_id: "o".into(),
            project_id: "p".into(),
        }),
        Box::new(DeleteTarget {
            org_id: "o".into(),
            target_id: "t".into(),
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

fn resolve<'a>(spec: &'a Value, p: &'a Value) -> &'a Value {
    match p.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .trim_start_matches("#/")
            .split('/')
            .fold(spec, |v, part| &v[part]),
        None => p,
    }
}

#[test]
fn every_rest_call_is_in_the_spec() {
    let spec = spec();
    let client = SnykClient::builder()
        .auth(SnykAuth::token("x"))
        .build()
        .unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for endpoint in rest_endpoints() {
        let request = client.rest().request_for(endpoint.as_ref()).unwrap();
        let path = request.url.path().strip_prefix("/rest").unwrap().to_owned();
        let method = request.method.as_str().to_ascii_lowercase();
        let (template, item) = paths
            .iter()
            .find(|(t, _)| matches_template(t, &path))
            .unwrap_or_else(|| panic!("{path} is not in the spec"));
        let op = item
            .get(&method)
            .unwrap_or_else(|| panic!("{method} {template} is not in the spec"));
        let allowed: Vec<&str> = [item.get("parameters"), op.get("parameters")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| resolve(&spec, p))
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let sent: Vec<String> = request
            .url
            .query_pairs()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert!(
            sent.contains(&"version".to_owned()),
            "{template}: no version"
        );
        for name in &sent {
            assert!(
                allowed.contains(&name.as_str()),
                "{method} {template}: `{name}` is not a parameter (allowed: {allowed:?})"
            );
        }
        let released = op["x-snyk-api-version"].as_str().unwrap_or("0000-00-00");
        assert!(
            released <= REST_VERSION,
            "{template} is released at {released}, after the pinned {REST_VERSION}"
        );
        // Answers with a body are JSON:API; deletions answer 204 without one.
        let responses = &op["responses"];
        if responses.get("200").is_some() {
            assert!(
                responses["200"]["content"]
                    .get("application/vnd.api+json")
                    .is_some(),
                "{template} does not answer JSON:API"
            );
        } else {
            assert!(
                responses.get("204").is_some(),
                "{method} {template} answers neither 200 nor 204"
            );
        }
    }
}

#[test]
fn the_spec_serves_the_documented_base() {
    let spec = spec();
    assert_eq!(spec["servers"][0]["url"], "https://api.snyk.io/rest");
    let client = SnykClient::builder()
        .auth(SnykAuth::token("x"))
        .build()
        .unwrap();
    assert_eq!(
        client.rest().base_url().to_string(),
        "https://api.snyk.io/rest"
    );
    assert_eq!(client.v1().base_url().to_string(), "https://api.snyk.io/v1");
}

/// The 200 answer's schema of a REST operation.
fn answer_schema<'a>(spec: &'a Value, path: &str) -> &'a Value {
    &spec["paths"][path]["get"]["responses"]["200"]["content"]["application/vnd.api+json"]["schema"]
}

/// Every payload the vendor's document allows for the REST answers the client reads decodes:
/// group orgs, targets, projects and one org, minimal and maximal instances under many seeds.
/// A listing never fails for an item; a maximal item, which has every field, decodes whole.
#[tokio::test]
async fn generated_payloads_the_spec_allows_decode() {
    use futures_util::TryStreamExt;
    use snyk_client::api_support::instances::Instances;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let spec = spec();
    let server = MockServer::start().await;
    let client = SnykClient::builder()
        .api_url(server.uri())
        .auth(SnykAuth::token("0f4c2a6e-1111-2222-3333-444455556666"))
        .retry(snyk_client::api_support::RetryPolicy::none())
        .build()
        .unwrap();
    for seed in 0..12_u64 {
        let mut generator = Instances::new(&spec, seed);
        for maximal in [false, true] {
            let context = format!("seed {seed}, maximal {maximal}");
            let mut make = |at: &str| {
                let schema = answer_schema(&spec, at).clone();
                let mut doc = generator.filled(&schema, maximal);
                // No links to follow: one page.
                if let Some(o) = doc.as_object_mut() {
                    o.remove("links");
                }
                doc
            };
            let answers = [
                ("/rest/groups/g/orgs", make("/groups/{group_id}/orgs")),
                ("/rest/orgs/o/targets", make("/orgs/{org_id}/targets")),
                ("/rest/orgs/o/projects", make("/orgs/{org_id}/projects")),
                ("/rest/orgs/o", make("/orgs/{org_id}")),
            ];
            let mut answers = answers;
            // The client keeps only targets of the types it asked for: the generated ones are
            // Bitbucket targets (the type is a free string in the schema).
            for t in answers[1].1["data"].as_array_mut().into_iter().flatten() {
                let integration = &mut t["relationships"]["integration"]["data"];
                if integration.is_object() {
                    integration["attributes"]["integration_type"] = "bitbucket-cloud".into();
                }
            }
            server.reset().await;
            for (at, body) in &answers {
                Mock::given(method("GET"))
                    .and(path(*at))
                    .respond_with(
                        ResponseTemplate::new(200)
                            .insert_header("content-type", "application/vnd.api+json")
                            .set_body_json(body),
                    )
                    .mount(&server)
                    .await;
            }
            let sent = |i: usize| answers[i].1["data"].as_array().map_or(0, Vec::len);
            let orgs: Vec<_> = client
                .group_orgs_rest("g")
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            let targets: Vec<_> = client
                .targets("o")
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            let projects: Vec<_> = client
                .projects("o", None)
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            if maximal {
                assert_eq!(orgs.len(), sent(0), "{context}");
                assert_eq!(targets.len(), sent(1), "{context}");
                assert_eq!(projects.len(), sent(2), "{context}");
                let org = client.org("o").await;
                assert!(org.is_ok(), "{context}: {org:?}");
            }
        }
    }
}
