//! Snyk's v1 API in the sandbox: one handler per endpoint (orgs, integrations and their
//! settings, projects and their history), each named with its route.

#[allow(clippy::wildcard_imports)]
use super::*;

impl State {
    pub(super) fn v1(&mut self, req: &Request, rest: &[&str], group_access: bool) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match (&req.method, rest) {
            (&Method::GET, ["group", group, "orgs"]) => self.group_orgs(req, group, group_access),
            (&Method::POST, ["org"]) => self.create_org(&body, group_access),
            (&Method::DELETE, ["org", org]) => self.delete_org(org),
            (_, ["org", org, rest @ ..]) => {
                let Some(i) = self.org_index(org) else {
                    return v1_error(404, "Org not found");
                };
                self.v1_org(req, i, rest, &body)
            }
            _ => v1_error(404, "Not found"),
        }
    }

    /// `DELETE /v1/org/{orgId}`: an org without projects is deleted.
    pub(super) fn delete_org(&mut self, org: &str) -> Response {
        let Some(i) = self.org_index(org) else {
            return v1_error(404, "Org not found");
        };
        if self.org_projects.get(org).is_some_and(|n| *n > 0) {
            return v1_error(400, "Org has projects and cannot be deleted");
        }
        self.orgs.remove(i);
        Response::empty(204)
    }

    /// Snyk's answer when `group` is not this sandbox's group (404) or the caller has no
    /// access to it (403).
    pub(super) fn group_refused(&self, group: &str, group_access: bool) -> Option<Response> {
        if group != self.group_id {
            return Some(v1_error(404, "Group not found"));
        }
        (!group_access).then(|| {
            v1_error(
                403,
                "You do not have the required permissions for this group",
            )
        })
    }

    /// `GET /v1/group/{groupId}/orgs`: a page of the group's orgs, by name prefix.
    pub(super) fn group_orgs(&self, req: &Request, group: &str, group_access: bool) -> Response {
        if let Some(refused) = self.group_refused(group, group_access) {
            return refused;
        }
        let per_page = req
            .query_value("perPage")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let page = req
            .query_value("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let prefix = req.query_value("name").map(str::to_ascii_lowercase);
        let orgs: Vec<Value> = self
            .orgs
            .iter()
            .filter(|o| !o.personal)
            .filter(|o| {
                prefix
                    .as_ref()
                    .is_none_or(|p| o.name.to_ascii_lowercase().starts_with(p))
            })
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|o| json!({"id": o.id, "name": o.name, "slug": o.slug, "url": format!("https://app.snyk.io/org/{}", o.slug), "created": o.created}))
            .collect();
        Response::json(
            200,
            &json!({"id": self.group_id, "name": "Sandbox Group", "url": "https://app.snyk.io/group/sandbox", "created": now_text(), "orgs": orgs}),
        )
    }

    /// `POST /v1/org`: a new org, in the group or personal, its integrations copied from a
    /// source org (with their credentials and settings) or the defaults.
    pub(super) fn create_org(&mut self, body: &Value, group_access: bool) -> Response {
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        if name.is_empty() || name.chars().count() > 60 {
            return v1_error(400, "Org name must be between 1 and 60 characters");
        }
        let group = body["groupId"].as_str();
        if let Some(refused) = group.and_then(|g| self.group_refused(g, group_access)) {
            return refused;
        }
        let integrations: Vec<String> = match body["sourceOrgId"].as_str() {
            Some(source) => match self.org_index(source) {
                Some(i) => self.orgs[i].integrations.keys().cloned().collect(),
                None => return v1_error(400, "Source org not found in this group"),
            },
            None => self.default_integrations.clone(),
        };
        let source = body["sourceOrgId"].as_str().map(str::to_owned);
        let id = self.new_org(&name, &integrations, group.is_none());
        if let (Some(source), Some(new)) = (source, self.org_index(&id)) {
            // Credentials and settings travel with the copied integrations.
            let source_ints = self.orgs[self.org_index(&source).unwrap_or(new)]
                .integrations
                .clone();
            for (kind, new_int) in self.orgs[new].integrations.clone() {
                if let Some(old) = source_ints.get(&kind) {
                    if let Some(c) = self.credentials.get(old).cloned() {
                        self.credentials.insert(new_int.clone(), c);
                    }
                    if let Some(s) = self.settings.get(old).cloned() {
                        self.settings.insert(new_int, s);
                    }
                }
            }
        }
        let Some(o) = self.org_index(&id).map(|i| self.orgs[i].clone()) else {
            return v1_error(500, "org vanished");
        };
        Response::json(
            201,
            &json!({"id": o.id, "name": o.name, "slug": o.slug, "url": format!("https://app.snyk.io/org/{}", o.slug),
                    "created": o.created, "group": group.map(|g| json!({"name": "Sandbox Group", "id": g}))}),
        )
    }

    /// `/v1/org/{orgId}/…`: the org's integrations, their settings, imports and jobs, its
    /// notification settings and its projects.
    pub(super) fn v1_org(
        &mut self,
        req: &Request,
        i: usize,
        rest: &[&str],
        body: &Value,
    ) -> Response {
        let org_id = self.orgs[i].id.clone();
        if let ["project", project, tail @ ..] = rest {
            return self.v1_project(req, &org_id, project, tail, body);
        }
        match (&req.method, rest) {
            (&Method::GET, ["integrations"]) => {
                Response::json(200, &json!(self.orgs[i].integrations))
            }
            (&Method::POST, ["integrations"]) => self.add_integration(i, body),
            (&Method::PUT, ["notification-settings"]) => {
                self.orgs[i].notifications_off = true;
                Response::json(200, body)
            }
            (method, ["integrations", int, rest @ ..]) => {
                if !self.orgs[i].integrations.values().any(|v| v == int) {
                    return v1_error(404, "Integration not found");
                }
                match (method, rest) {
                    (&Method::PUT, []) => self.set_credentials(int, body),
                    (&Method::POST, ["clone"]) => self.clone_integration(i, int, body),
                    (&Method::GET, ["settings"]) => self.integration_settings(int),
                    (&Method::PUT, ["settings"]) => self.change_settings(int, body),
                    (&Method::POST, ["import"]) => self.import(req, &org_id, int, body),
                    (&Method::GET, ["import", job]) => self.job(job, &org_id),
                    _ => v1_error(404, "Not found"),
                }
            }
            _ => v1_error(404, "Not found"),
        }
    }

    /// `POST /v1/org/{orgId}/integrations`: a `bitbucket-cloud` integration with its
    /// credentials (the org's existing one when it has one).
    pub(super) fn add_integration(&mut self, i: usize, body: &Value) -> Response {
        let kind = body["type"].as_str().unwrap_or_default().to_owned();
        let user = body["credentials"]["username"].as_str();
        let pass = body["credentials"]["password"].as_str();
        let (Some(user), Some(pass)) = (user, pass) else {
            return v1_error(
                400,
                "credentials.username and credentials.password are required",
            );
        };
        if kind != "bitbucket-cloud" {
            return v1_error(400, "Unsupported integration type");
        }
        let id = match self.orgs[i].integrations.get(&kind) {
            Some(id) => id.clone(),
            None => {
                let id = self.next_id(0x1e);
                self.orgs[i].integrations.insert(kind, id.clone());
                id
            }
        };
        self.credentials
            .insert(id.clone(), (user.to_owned(), pass.to_owned()));
        Response::json(200, &json!({"id": id}))
    }

    /// `PUT /v1/org/{orgId}/integrations/{integrationId}`: new credentials.
    pub(super) fn set_credentials(&mut self, int: &str, body: &Value) -> Response {
        let user = body["credentials"]["username"].as_str();
        let pass = body["credentials"]["password"].as_str();
        let (Some(user), Some(pass)) = (user, pass) else {
            return v1_error(400, "credentials are required");
        };
        self.credentials
            .insert(int.to_owned(), (user.to_owned(), pass.to_owned()));
        Response::json(200, &json!({"id": int}))
    }

    /// `POST …/integrations/{integrationId}/clone`: the integration, with its credentials, in
    /// another org.
    pub(super) fn clone_integration(&mut self, i: usize, int: &str, body: &Value) -> Response {
        let Some(dest) = body["destinationOrgPublicId"].as_str() else {
            return v1_error(400, "destinationOrgPublicId is required");
        };
        let Some(d) = self.org_index(dest) else {
            return v1_error(404, "Destination org not found");
        };
        let kind = self.orgs[i]
            .integrations
            .iter()
            .find(|(_, v)| *v == int)
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let new_id = self.next_id(0x1e);
        self.orgs[d].integrations.insert(kind, new_id.clone());
        if let Some(c) = self.credentials.get(int).cloned() {
            self.credentials.insert(new_id.clone(), c);
        }
        Response::json(200, &json!({"newIntegrationId": new_id}))
    }

    /// `GET …/integrations/{integrationId}/settings`.
    pub(super) fn integration_settings(&self, int: &str) -> Response {
        let settings = self
            .settings
            .get(int)
            .cloned()
            .unwrap_or_else(default_settings);
        Response::json(200, &Value::Object(settings))
    }

    /// `PUT …/integrations/{integrationId}/settings`: the keys given change; the others stay.
    pub(super) fn change_settings(&mut self, int: &str, body: &Value) -> Response {
        let current = self
            .settings
            .entry(int.to_owned())
            .or_insert_with(default_settings);
        for (k, v) in body.as_object().into_iter().flatten() {
            current.insert(k.clone(), v.clone());
        }
        Response::json(200, &Value::Object(current.clone()))
    }

    /// v1 `…/project/{id}`: deactivate, activate, change the branch, delete.
    /// `/v1/org/{orgId}/project/{projectId}/…`: delete, deactivate, activate, change its
    /// branch, or its history (ignores, tags, attributes, settings).
    pub(super) fn v1_project(
        &mut self,
        req: &Request,
        org_id: &str,
        project_id: &str,
        tail: &[&str],
        body: &Value,
    ) -> Response {
        let Some(at) = self.project_at(org_id, project_id) else {
            return v1_error(404, "Project not found");
        };
        if let Some(answer) = self.v1_project_history(req, at, tail, body) {
            return answer;
        }
        match (&req.method, tail) {
            (&Method::DELETE, []) => {
                self.record("org.project.delete", org_id, Some(project_id), json!({}));
                self.remove_project(at);
                Response::json(200, &json!({}))
            }
            (&Method::POST, ["deactivate"]) => self.set_monitored(at, false),
            (&Method::POST, ["activate"]) => self.set_monitored(at, true),
            (&Method::PUT, []) => self.set_branch(at, body),
            _ => v1_error(404, "Not found"),
        }
    }

    /// `POST …/project/{projectId}/deactivate` and `…/activate`.
    pub(super) fn set_monitored(&mut self, at: usize, active: bool) -> Response {
        let event = if active {
            "org.project.monitor"
        } else {
            "org.project.stop_monitor"
        };
        let (org, id) = (
            self.projects[at].org_id.clone(),
            self.projects[at].id.clone(),
        );
        self.record(event, &org, Some(&id), json!({}));
        self.projects[at].active = active;
        project_answer(&self.projects[at])
    }

    /// `PUT …/project/{projectId}`: a new branch.
    pub(super) fn set_branch(&mut self, at: usize, body: &Value) -> Response {
        let (org, id) = (
            self.projects[at].org_id.clone(),
            self.projects[at].id.clone(),
        );
        self.record("org.project.edit", &org, Some(&id), json!({}));
        match body["branch"].as_str() {
            Some(branch) if !branch.is_empty() => {
                self.projects[at].branch = Some(branch.to_owned());
                project_answer(&self.projects[at])
            }
            _ => v1_error(400, "branch is required"),
        }
    }

    /// v1 `…/project/{id}/ignores`, `…/ignore/{issueId}`, `…/tags`, `…/tags/remove`,
    /// `…/attributes`: what a team builds up on a project. `None` for other routes.
    pub(super) fn v1_project_history(
        &mut self,
        req: &Request,
        at: usize,
        tail: &[&str],
        body: &Value,
    ) -> Option<Response> {
        let user = self.acting.clone();
        let p = &mut self.projects[at];
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        let list = |k: &str| -> Vec<String> {
            body[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        match (&req.method, tail) {
            (&Method::GET, ["ignores"]) => {
                let mut by_issue = serde_json::Map::new();
                for i in &p.ignores {
                    let entry = json!({i.path.clone(): {"reason": i.reason, "reasonType": i.reason_type,
                        "ignoredBy": {"id": i.ignored_by}, "created": i.created, "expires": i.expires,
                        "disregardIfFixable": i.disregard_if_fixable}});
                    if let Some(list) = by_issue
                        .entry(i.issue_id.clone())
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                    {
                        list.push(entry);
                    }
                }
                Some(Response::json(200, &Value::Object(by_issue)))
            }
            (&Method::POST, ["ignore", issue]) => {
                let (org, id) = (p.org_id.clone(), p.id.clone());
                self.record("org.project.ignore.create", &org, Some(&id), json!({}));
                let p = &mut self.projects[at];
                let mut ignore = crate::models::Ignore::new(
                    issue,
                    body["ignorePath"].as_str().unwrap_or("*"),
                    &text("reason"),
                    &text("reasonType"),
                );
                ignore.disregard_if_fixable = body["disregardIfFixable"].as_bool().unwrap_or(false);
                ignore.expires = body["expires"].as_str().map(str::to_owned);
                ignore.ignored_by = Some(user);
                ignore.created = api_support::time::parse(&now_text());
                p.ignores.push(ignore);
                Some(Response::json(200, &json!({})))
            }
            (&Method::POST, ["tags"]) => {
                let tag = (text("key"), text("value"));
                if !p.settings.tags.contains(&tag) {
                    p.settings.tags.push(tag);
                }
                Some(Response::json(
                    200,
                    &json!({"tags": p.settings.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
                ))
            }
            (&Method::POST, ["tags", "remove"]) => {
                let tag = (text("key"), text("value"));
                p.settings.tags.retain(|t| *t != tag);
                Some(Response::json(200, &json!({})))
            }
            (&Method::POST, ["attributes"]) => {
                p.settings.criticality = list("criticality");
                p.settings.environment = list("environment");
                p.settings.lifecycle = list("lifecycle");
                Some(Response::json(200, &json!({})))
            }
            _ => None,
        }
    }
}
