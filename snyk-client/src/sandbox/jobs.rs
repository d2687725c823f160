//! Import jobs in the sandbox: a job posted, polled, and finished with its projects (or its
//! injected failure).

#[allow(clippy::wildcard_imports)]
use super::*;

impl State {
    pub(super) fn import(
        &mut self,
        req: &Request,
        org_id: &str,
        int: &str,
        body: &Value,
    ) -> Response {
        let invalid = || {
            Response::json(
                400,
                &json!({"ok": false, "code": 400, "message": "Invalid parameter format.", "name": "invalidParamData"}),
            )
        };
        let Some(top) = body.as_object() else {
            return invalid();
        };
        if top
            .keys()
            .any(|k| !["target", "files", "exclusionGlobs"].contains(&k.as_str()))
        {
            return invalid();
        }
        let Some(target) = top.get("target").and_then(Value::as_object) else {
            return invalid();
        };
        if target
            .keys()
            .any(|k| !["owner", "name", "branch"].contains(&k.as_str()))
        {
            return invalid();
        }
        let (Some(owner), Some(name)) = (
            target.get("owner").and_then(Value::as_str),
            target.get("name").and_then(Value::as_str),
        ) else {
            return invalid();
        };
        let full_name = format!("{owner}/{name}");
        let manifests = self
            .manifests
            .get(&full_name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| self.default_manifests.clone());
        let existing = self.org_projects.get(org_id).copied().unwrap_or(0)
            + self.org_reserved.get(org_id).copied().unwrap_or(0);
        if existing + manifests.len() > self.project_cap {
            return Response::json(
                400,
                &json!({"code": 400, "message": format!("This organization has {existing} of the maximum {} projects. Remove projects or use another organization.", self.project_cap), "errorRef": "sandbox-cap"}),
            );
        }
        *self
            .import_posts
            .entry(full_name.to_ascii_lowercase())
            .or_default() += 1;
        self.first_posted
            .entry(full_name.to_ascii_lowercase())
            .or_insert_with(std::time::Instant::now);
        let job_id = self.next_id(0x70);
        let duration = self.durations.draw();
        self.job_durations.push(duration);
        let ready_at = Instant::now() + duration;
        self.pending.push(Reverse((ready_at, job_id.clone())));
        self.jobs.insert(
            job_id.clone(),
            Job {
                id: job_id.clone(),
                org_id: org_id.to_owned(),
                integration_id: int.to_owned(),
                user: self.acting.clone(),
                full_name,
                branch: target
                    .get("branch")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                result: None,
                reserved: manifests.len(),
                due: ready_at,
                polls: 0,
                seen: false,
            },
        );
        *self.org_reserved.entry(org_id.to_owned()).or_default() += manifests.len();
        let foreign = req.origin.replace("127.0.0.1", "localhost");
        Response::empty(201).header(
            "location",
            format!("{foreign}/api/v1/org/{org_id}/integrations/{int}/import/{job_id}"),
        )
    }

    pub(super) fn job(&mut self, job_id: &str, org_id: &str) -> Response {
        let Some(job) = self.jobs.get_mut(job_id).filter(|j| j.org_id == org_id) else {
            return v1_error(404, "Import job not found");
        };
        if !job.seen {
            job.polls += 1;
            if job.result.is_some() {
                job.seen = true;
                let lag = Instant::now().saturating_duration_since(job.due);
                self.seen_lag.count(lag, job.polls);
            }
        }
        // Due jobs were finished by `complete_due_jobs` before routing.
        match &job.result {
            Some(end) => Response::json(200, &end.json(job)),
            None => Response::json(
                200,
                &json!({"id": job.id, "status": "pending", "created": now_text(), "logs": [
                    {"name": job.full_name, "created": now_text(), "status": "pending", "projects": []}]}),
            ),
        }
    }

    pub(super) fn finish(&mut self, job: &Job) -> JobEnd {
        let key = job.full_name.to_ascii_lowercase();
        if self.failing.contains(&key) {
            return JobEnd::Failed;
        }
        let manifests = self
            .manifests
            .get(&key)
            .cloned()
            .unwrap_or_else(|| self.default_manifests.clone());
        let kind = self
            .orgs
            .iter()
            .find(|o| o.id == job.org_id)
            .and_then(|o| {
                o.integrations
                    .iter()
                    .find(|(_, v)| **v == job.integration_id)
                    .map(|(k, _)| k.clone())
            })
            .unwrap_or_else(|| "bitbucket-cloud".to_owned());
        let mut projects = Vec::new();
        if !manifests.is_empty() {
            let target_key = (job.org_id.clone(), key.clone(), kind.clone());
            let target_id = match self.target_keys.get(&target_key) {
                Some(&i) => self.targets[i].id.clone(),
                None => {
                    let id = self.next_id(0x7a);
                    self.org_targets
                        .entry(job.org_id.clone())
                        .or_default()
                        .push(self.targets.len());
                    self.target_keys.insert(target_key, self.targets.len());
                    self.targets.push(SandboxTarget {
                        id: id.clone(),
                        org_id: job.org_id.clone(),
                        display_name: job.full_name.clone(),
                        integration_type: kind.clone(),
                        integration_id: job.integration_id.clone(),
                    });
                    let content = json!({"target_id": id, "display_name": job.full_name});
                    self.record_as(&job.user, "org.target.create", &job.org_id, None, content);
                    id
                }
            };
            for m in &manifests {
                let project_key = (target_id.clone(), m.clone());
                let project_id = match self.project_keys.get(&project_key) {
                    Some(id) => id.clone(),
                    None => {
                        let id = self.next_id(0x9c);
                        self.project_keys.insert(project_key, id.clone());
                        *self.org_projects.entry(job.org_id.clone()).or_default() += 1;
                        *self.target_projects.entry(target_id.clone()).or_default() += 1;
                        self.project_index.insert(id.clone(), self.projects.len());
                        self.projects.push(SandboxProject {
                            id: id.clone(),
                            org_id: job.org_id.clone(),
                            target_id: target_id.clone(),
                            name: format!("{}:{m}", job.full_name),
                            target_file: m.clone(),
                            branch: job.branch.clone(),
                            origin: kind.clone(),
                            active: true,
                            settings: crate::models::ProjectSettings::default(),
                            ignores: Vec::new(),
                        });
                        id
                    }
                };
                projects.push((m.clone(), project_id));
            }
        }
        JobEnd::Complete(projects)
    }
}
