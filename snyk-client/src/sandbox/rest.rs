//! Snyk's REST API in the sandbox: one handler per endpoint (orgs, targets, projects, audit
//! logs), each named with its route.

#[allow(clippy::wildcard_imports)]
use super::*;

impl State {
    /// REST `audit_logs/search` of an org: newest first, filtered on `events` and `from`, in
    /// pages of `size` with a cursor.
    pub(super) fn audit_search(&self, req: &Request, org: Option<&str>) -> Response {
        if !self.audit_logs {
            return rest_error(403, "Audit logs are not available on your plan");
        }
        let events: Vec<&str> = req
            .query
            .iter()
            .filter(|(k, _)| k == "events")
            .flat_map(|(_, v)| v.split(','))
            .collect();
        let time = |t: &str| humantime::parse_rfc3339_weak(t).ok();
        let from = req.query_value("from").and_then(time);
        let size: usize = req
            .query_value("size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let start: usize = req
            .query_value("cursor")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let matching: Vec<&AuditRecord> = self
            .audit
            .iter()
            .rev()
            .filter(|r| org.is_none_or(|o| r.org_id == o))
            .filter(|r| events.is_empty() || events.contains(&r.event))
            .filter(|r| from.is_none_or(|f| time(&r.created).is_some_and(|c| c >= f)))
            .collect();
        let items: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(size)
            .map(|r| {
                json!({"created": r.created, "event": r.event, "org_id": r.org_id,
                       "project_id": r.project_id, "user_id": r.user_id, "content": r.content})
            })
            .collect();
        let mut links = json!({});
        if start + size < matching.len() {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in req.query.iter().filter(|(k, _)| k != "cursor") {
                ser.append_pair(k, v);
            }
            ser.append_pair("cursor", &(start + size).to_string());
            let path = req.path.strip_prefix("/rest").unwrap_or(&req.path);
            links = json!({"next": format!("{path}?{}", ser.finish())});
        }
        Response::json(
            200,
            &json!({"jsonapi": {"version": "1.0"}, "data": {"items": items}, "links": links}),
        )
    }

    /// REST `PATCH /orgs/{org}/projects/{id}`: tags, attributes, test frequency, owner; each
    /// attribute sent replaces the old value whole.
    pub(super) fn rest_patch_project(
        &mut self,
        req: &Request,
        org: &str,
        project: &str,
    ) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if !self.tags && body["data"]["attributes"].get("tags").is_some() {
            return rest_error(422, "Tags are not available on your plan");
        }
        let Some(at) = self.project_at(org, project) else {
            return rest_error(404, "project not found");
        };
        self.record("org.project.edit", org, Some(project), json!({}));
        let p = &mut self.projects[at];
        let a = &body["data"]["attributes"];
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|l| {
                l.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let s = &mut p.settings;
        if let Some(v) = strings(&a["business_criticality"]) {
            s.criticality = v;
        }
        if let Some(v) = strings(&a["environment"]) {
            s.environment = v;
        }
        if let Some(v) = strings(&a["lifecycle"]) {
            s.lifecycle = v;
        }
        if let Some(tags) = a["tags"].as_array() {
            s.tags = tags
                .iter()
                .map(|t| {
                    let part = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                    (part("key"), part("value"))
                })
                .collect();
        }
        if let Some(f) = a["test_frequency"].as_str() {
            s.test_frequency = Some(f.to_owned());
        }
        if let Some(owner) = body["data"]["relationships"]["owner"]["data"]["id"].as_str() {
            s.owner = Some(owner.to_owned());
        }
        let p = p.clone();
        Response::json(
            200,
            &json!({"jsonapi": {"version": "1.0"}, "data": project_json(&p)}),
        )
    }

    /// REST changes: rename an org, delete a project, delete a target.
    /// REST's changes: rename an org, change or delete a project, delete a target; `None`
    /// for what only reads.
    pub(super) fn rest_change(&mut self, req: &Request, rest: &[&str]) -> Option<Response> {
        Some(match (&req.method, rest) {
            (&Method::PATCH, ["orgs", org]) => self.rename_org(req, org),
            (&Method::PATCH, ["orgs", org, "projects", project]) => {
                self.rest_patch_project(req, org, project)
            }
            (&Method::DELETE, ["orgs", org, "projects", project]) => {
                self.rest_delete_project(org, project)
            }
            (&Method::DELETE, ["orgs", org, "targets", target]) => self.delete_target(org, target),
            _ => return None,
        })
    }

    /// `PATCH /rest/orgs/{orgId}`: a new name.
    pub(super) fn rename_org(&mut self, req: &Request, org: &str) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let Some(name) = body["data"]["attributes"]["name"].as_str() else {
            return rest_error(400, "data.attributes.name is required");
        };
        let name = name.to_owned();
        match self.orgs.iter_mut().find(|o| o.id == org) {
            Some(o) => {
                o.name = name;
                let o = o.clone();
                Response::json(
                    200,
                    &json!({"jsonapi": {"version": "1.0"}, "data": org_json(&o, &self.group_id)}),
                )
            }
            None => rest_error(404, "org not found"),
        }
    }

    /// `DELETE /rest/orgs/{orgId}/projects/{projectId}`.
    pub(super) fn rest_delete_project(&mut self, org: &str, project: &str) -> Response {
        let Some(i) = self.project_at(org, project) else {
            return rest_error(404, "project not found");
        };
        self.record("org.project.delete", org, Some(project), json!({}));
        self.remove_project(i);
        Response::empty(204)
    }

    /// `DELETE /rest/orgs/{orgId}/targets/{targetId}`. Whether Snyk deletes a target's
    /// projects with it is not documented: the fake leaves them, so callers must list and
    /// delete what is left.
    pub(super) fn delete_target(&mut self, org: &str, target: &str) -> Response {
        let Some(list) = self.org_targets.get_mut(org) else {
            return rest_error(404, "org not found");
        };
        let Some(at) = list.iter().position(|&i| self.targets[i].id == target) else {
            return rest_error(404, "target not found");
        };
        let i = list.remove(at);
        self.target_keys.retain(|_, v| *v != i);
        let content = json!({"target_id": target, "display_name": self.targets[i].display_name});
        self.record("org.target.delete", org, None, content);
        Response::empty(204)
    }

    /// REST's reads: audit logs, the group's orgs, an org, its targets and projects.
    pub(super) fn rest(&self, req: &Request, rest: &[&str]) -> Response {
        match rest {
            ["orgs", org, "audit_logs", "search"] => self.audit_search(req, Some(org)),
            ["groups", group, "audit_logs", "search"] if *group == self.group_id => {
                self.audit_search(req, None)
            }
            ["groups", group, "orgs"] if *group == self.group_id => self.rest_group_orgs(req),
            ["groups", _, ..] => rest_error(404, "group not found"),
            ["orgs", org] => self.rest_org(org),
            ["orgs", org, "targets"] => self.list_targets(req, org),
            ["orgs", org, "projects"] => self.list_projects(req, org),
            _ => rest_error(404, "not found"),
        }
    }

    /// `GET /rest/groups/{groupId}/orgs`: a page of the group's orgs, by part of the name.
    pub(super) fn rest_group_orgs(&self, req: &Request) -> Response {
        let name = req.query_value("name").map(str::to_ascii_lowercase);
        let items: Vec<Value> = self
            .orgs
            .iter()
            .filter(|o| !o.personal)
            .filter(|o| {
                name.as_ref()
                    .is_none_or(|n| o.name.to_ascii_lowercase().contains(n))
            })
            .map(|o| org_json(o, &self.group_id))
            .collect();
        page(req, items)
    }

    /// `GET /rest/orgs/{orgId}`.
    pub(super) fn rest_org(&self, org: &str) -> Response {
        match self.orgs.iter().find(|o| o.id == org) {
            Some(o) => Response::json(
                200,
                &json!({"jsonapi": {"version": "1.0"}, "data": org_json(o, &self.group_id)}),
            ),
            None => rest_error(404, "org not found"),
        }
    }

    /// `GET /rest/orgs/{orgId}/targets`: a page of targets, by source type and name prefix,
    /// without empty ones unless asked.
    pub(super) fn list_targets(&self, req: &Request, org: &str) -> Response {
        if !self.orgs.iter().any(|o| o.id == org) {
            return rest_error(404, "org not found");
        }
        let types: Option<Vec<&str>> = req
            .query_value("source_types")
            .map(|s| s.split(',').map(str::trim).collect());
        let exclude_empty = req.query_value("exclude_empty") != Some("false");
        let prefix = req.query_value("display_name");
        let items: Vec<&SandboxTarget> = self
            .org_targets
            .get(org)
            .into_iter()
            .flatten()
            .map(|&i| &self.targets[i])
            .filter(|t| {
                types
                    .as_ref()
                    .is_none_or(|ts| ts.contains(&t.integration_type.as_str()))
            })
            .filter(|t| prefix.is_none_or(|p| t.display_name.starts_with(p)))
            .filter(|t| !exclude_empty || self.target_projects.contains_key(&t.id))
            .collect();
        page_of(req, &items, |t| &t.id, target_json)
    }

    /// `GET /rest/orgs/{orgId}/projects`: a page of projects, of one target when asked.
    pub(super) fn list_projects(&self, req: &Request, org: &str) -> Response {
        if !self.orgs.iter().any(|o| o.id == org) {
            return rest_error(404, "org not found");
        }
        let target = req.query_value("target_id");
        let items: Vec<Value> = self
            .projects
            .iter()
            .filter(|p| p.org_id == org)
            .filter(|p| target.is_none_or(|t| p.target_id == t))
            .map(project_json)
            .collect();
        page(req, items)
    }
}
