//! In-memory fakes of both ports (feature `fakes`): for planning and apply tests without any
//! server, yours included.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bitbucket_cloud_client::ErrorKind;

use crate::error::Error;
use crate::ids::{GroupId, IntegrationId, OrgId, ProjectId, RepoUuid, TargetId};
use crate::read::ports::{
    BitbucketPort, ImportSpec, ImportStatus, JobHandle, JobOutcome, Listing, Repo, RepoQuery,
    Settings, SnykOrg, SnykPort, SnykProject, SnykTarget, Unreadable,
};

use bitbucket_cloud_client::api_support::lock;

/// A Bitbucket of workspaces and repositories held in memory.
#[derive(Debug, Default)]
pub struct FakeBitbucket {
    workspaces: Mutex<BTreeMap<String, Vec<Repo>>>,
    /// Entries of a workspace's listing that cannot be read.
    unreadable: Mutex<BTreeMap<String, Vec<Unreadable>>>,
    /// What answers instead of a workspace's listing, or of a lookup by uuid.
    failures: Mutex<BTreeMap<String, ErrorKind>>,
    requests: AtomicU64,
}

impl FakeBitbucket {
    /// An empty Bitbucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a workspace with repositories (a workspace may be empty).
    pub fn with_workspace(self, slug: &str, repos: Vec<Repo>) -> Self {
        lock(&self.workspaces).insert(slug.to_owned(), repos);
        self
    }

    /// Adds a repository (a repository created between two runs).
    pub fn add_repository(&self, repo: Repo) {
        lock(&self.workspaces)
            .entry(repo.workspace.clone())
            .or_default()
            .push(repo);
    }

    /// Changes the estate between two runs: `change` gets the workspaces (slug → repositories)
    /// to rename, move, delete or re-branch repositories, or to remove a workspace.
    pub fn change(&self, change: impl FnOnce(&mut BTreeMap<String, Vec<Repo>>)) {
        change(&mut lock(&self.workspaces));
    }

    /// Adds an entry that cannot be read to a workspace's listing (its repository, if any,
    /// cannot be looked up either: see [`FakeBitbucket::fail`]).
    pub fn add_unreadable(&self, workspace: &str, entry: Unreadable) {
        lock(&self.unreadable)
            .entry(workspace.to_owned())
            .or_default()
            .push(entry);
    }

    /// Makes the listing of a workspace (`what` is its slug) or the lookup of a repository
    /// (`what` is its uuid) fail with an error of `kind` from now on; `None` heals it.
    pub fn fail(&self, what: &str, kind: Option<ErrorKind>) {
        let mut failures = lock(&self.failures);
        match kind {
            Some(kind) => failures.insert(what.to_owned(), kind),
            None => failures.remove(what),
        };
    }

    fn failure(&self, what: &str) -> Result<(), Error> {
        match lock(&self.failures).get(what) {
            Some(kind) => Err(Error::Fake {
                kind: *kind,
                message: format!("Bitbucket failed on purpose for {what} ({kind:?})"),
            }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl BitbucketPort for FakeBitbucket {
    async fn workspaces(&self) -> Result<Vec<String>, Error> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.workspaces).keys().cloned().collect())
    }

    async fn repositories(&self, workspace: &str, _query: &RepoQuery) -> Result<Listing, Error> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.failure(workspace)?;
        let unreadable = lock(&self.unreadable)
            .get(workspace)
            .cloned()
            .unwrap_or_default();
        lock(&self.workspaces)
            .get(workspace)
            .map(|repos| Listing {
                repositories: repos.clone(),
                unreadable,
            })
            .ok_or_else(|| Error::Fake {
                kind: ErrorKind::NotFound,
                message: format!(
                    "workspace `{workspace}` does not exist or these credentials cannot see it"
                ),
            })
    }

    async fn repository_by_uuid(
        &self,
        workspace: &str,
        uuid: &RepoUuid,
    ) -> Result<Option<Repo>, Error> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.failure(uuid.as_str())?;
        Ok(lock(&self.workspaces)
            .get(workspace)
            .and_then(|repos| repos.iter().find(|r| r.uuid.as_ref() == Some(uuid)))
            .cloned())
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A project of [`FakeSnyk`]: one per imported repository that has manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeProject {
    /// The id.
    pub id: String,
    /// The org.
    pub org_id: String,
    /// Lowercased `workspace/repository` of its target.
    pub target: String,
    /// The branch it tests.
    pub branch: Option<String>,
    /// Whether it is active.
    pub active: bool,
}

/// One org of [`FakeSnyk`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeOrg {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// Type → integration id.
    pub integrations: BTreeMap<String, String>,
    /// Lowercased `workspace/repository` of its targets.
    pub targets: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct SnykState {
    orgs: Vec<FakeOrg>,
    counter: u64,
    jobs: BTreeMap<String, (String, String, Option<String>)>,
    projects: Vec<FakeProject>,
    /// Every change made to what was already there, in order (`deactivate p-1`, …).
    changes: Vec<String>,
    posted: Vec<(String, String)>,
    created: Vec<String>,
    zero_projects: BTreeSet<String>,
    failing: BTreeSet<String>,
    capped: BTreeSet<String>,
    new_org_integrations: Vec<String>,
    can_add_integrations: bool,
    added_integrations: Vec<String>,
    /// Integration id → settings.
    settings: BTreeMap<String, Settings>,
    notifications_off: BTreeSet<String>,
    /// Whether the group's audit log answers (naming no change) rather than being unsupported.
    audit_log_quiet: bool,
}

/// A Snyk group held in memory. Imports complete at once; a repository has one project unless
/// marked as having none.
#[derive(Debug)]
pub struct FakeSnyk {
    state: Mutex<SnykState>,
    requests: AtomicU64,
}

impl Default for FakeSnyk {
    fn default() -> Self {
        Self {
            state: Mutex::new(SnykState {
                new_org_integrations: vec!["bitbucket-cloud".to_owned()],
                ..SnykState::default()
            }),
            requests: AtomicU64::new(0),
        }
    }
}

impl FakeSnyk {
    /// An empty group whose new orgs get a `bitbucket-cloud` integration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an existing org with these integration types; returns its id. Names may repeat.
    pub fn add_org(&self, name: &str, integrations: &[&str]) -> OrgId {
        let mut s = lock(&self.state);
        s.counter += 1;
        let id = format!("org-{}", s.counter);
        let integrations = integrations
            .iter()
            .map(|t| ((*t).to_owned(), format!("int-{t}-{id}")))
            .collect();
        s.orgs.push(FakeOrg {
            id: id.clone(),
            name: name.to_owned(),
            integrations,
            targets: BTreeSet::new(),
        });
        id.into()
    }

    /// Marks a repository as imported into an org already.
    pub fn add_target(&self, org_id: impl AsRef<str>, full_name: &str) {
        let org_id = org_id.as_ref();
        if let Some(o) = lock(&self.state).orgs.iter_mut().find(|o| o.id == org_id) {
            o.targets.insert(full_name.to_lowercase());
        }
    }

    /// New orgs get these integration types (default `bitbucket-cloud`).
    pub fn set_new_org_integrations(&self, types: &[&str]) {
        lock(&self.state).new_org_integrations = types.iter().map(|t| (*t).to_owned()).collect();
    }

    /// This repository has no manifests: its import completes with zero projects, no target.
    pub fn set_zero_projects(&self, full_name: &str) {
        lock(&self.state)
            .zero_projects
            .insert(full_name.to_lowercase());
    }

    /// Imports of this repository are refused.
    pub fn set_failing(&self, full_name: &str) {
        lock(&self.state).failing.insert(full_name.to_lowercase());
    }

    /// This org is at its project cap.
    pub fn set_capped(&self, org_id: impl AsRef<str>) {
        lock(&self.state).capped.insert(org_id.as_ref().to_owned());
    }

    /// The orgs as they are now.
    pub fn orgs_now(&self) -> Vec<FakeOrg> {
        lock(&self.state).orgs.clone()
    }

    /// Every import posted: (org id, `workspace/repository`).
    pub fn posted(&self) -> Vec<(String, String)> {
        lock(&self.state).posted.clone()
    }

    /// The names of orgs created.
    pub fn created(&self) -> Vec<String> {
        lock(&self.state).created.clone()
    }

    /// The projects now (deleted ones left out).
    pub fn projects_now(&self) -> Vec<FakeProject> {
        lock(&self.state).projects.clone()
    }

    /// Every change made to what was already there, in order: `deactivate <project>`,
    /// `delete-project <project>`, `delete-target <org> <name>`, `branch <project> <branch>`,
    /// `rename-org <org> <name>`.
    pub fn changes(&self) -> Vec<String> {
        lock(&self.state).changes.clone()
    }

    fn target_id(org_id: &str, name: &str) -> TargetId {
        TargetId::new(format!("target-{org_id}-{name}"))
    }

    /// Whether Snyk-side Bitbucket credentials are configured (default false).
    pub fn set_can_add_integrations(&self, can: bool) {
        lock(&self.state).can_add_integrations = can;
    }

    /// The orgs a `bitbucket-cloud` integration was added to.
    pub fn added_integrations(&self) -> Vec<String> {
        lock(&self.state).added_integrations.clone()
    }

    /// An integration's settings now (new integrations have PR checks and fix PRs on).
    pub fn settings(&self, integration_id: impl AsRef<str>) -> Settings {
        lock(&self.state)
            .settings
            .get(integration_id.as_ref())
            .cloned()
            .unwrap_or_else(default_settings)
    }

    /// The group's audit log answers, and names no change (by default it is unsupported, as
    /// on plans without audit logs, so every org is read in full).
    pub fn set_audit_log_quiet(&self) {
        lock(&self.state).audit_log_quiet = true;
    }

    /// The orgs whose notifications were turned off.
    pub fn notifications_off(&self) -> BTreeSet<String> {
        lock(&self.state).notifications_off.clone()
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }
}

/// The settings of an integration no one has changed: PR checks and fix PRs on.
fn default_settings() -> Settings {
    let value = serde_json::json!({
        "pullRequestTestEnabled": true,
        "dependencyAutoUpgradeEnabled": true,
        "autoRemediationPrs": {"freshPrsEnabled": true, "backlogPrsEnabled": true, "usePatchRemediation": false}
    });
    value.as_object().cloned().unwrap_or_default()
}

#[async_trait]
impl SnykPort for FakeSnyk {
    async fn orgs(&self, _group_id: &GroupId) -> Result<Vec<SnykOrg>, Error> {
        self.count();
        Ok(lock(&self.state)
            .orgs
            .iter()
            .map(|o| SnykOrg::new(o.id.as_str().into(), o.name.clone()))
            .collect())
    }

    async fn orgs_named(&self, group_id: &GroupId, name: &str) -> Result<Vec<SnykOrg>, Error> {
        Ok(self
            .orgs(group_id)
            .await?
            .into_iter()
            .filter(|o| o.name == name)
            .collect())
    }

    async fn integrations(&self, org_id: &OrgId) -> Result<BTreeMap<String, IntegrationId>, Error> {
        self.count();
        lock(&self.state)
            .orgs
            .iter()
            .find(|o| o.id == org_id.as_str())
            .map(|o| {
                o.integrations
                    .iter()
                    .map(|(k, v)| (k.clone(), IntegrationId::from(v.as_str())))
                    .collect()
            })
            .ok_or_else(|| Error::Fake {
                kind: ErrorKind::NotFound,
                message: format!("org {org_id} not found"),
            })
    }

    async fn imported(
        &self,
        org_id: &OrgId,
        _integration_type: &str,
    ) -> Result<Vec<SnykTarget>, Error> {
        self.count();
        Ok(lock(&self.state)
            .orgs
            .iter()
            .find(|o| o.id == org_id.as_str())
            .map(|o| {
                o.targets
                    .iter()
                    .map(|name| SnykTarget {
                        id: Self::target_id(&o.id, name),
                        display_name: name.clone(),
                        integration_type: Some("bitbucket-cloud".to_owned()),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_org(
        &self,
        _group_id: &GroupId,
        name: &str,
        template_org_id: Option<&OrgId>,
    ) -> Result<SnykOrg, Error> {
        self.count();
        let types: Vec<String> = {
            let s = lock(&self.state);
            match template_org_id.and_then(|t| s.orgs.iter().find(|o| o.id == t.as_str())) {
                Some(t) => t.integrations.keys().cloned().collect(),
                None => s.new_org_integrations.clone(),
            }
        };
        let refs: Vec<&str> = types.iter().map(String::as_str).collect();
        let id = self.add_org(name, &refs);
        lock(&self.state).created.push(name.to_owned());
        Ok(SnykOrg::new(id, name))
    }

    async fn integration_settings(
        &self,
        _org_id: &OrgId,
        integration_id: &IntegrationId,
    ) -> Result<Settings, Error> {
        self.count();
        Ok(self.settings(integration_id.as_str()))
    }

    async fn update_integration_settings(
        &self,
        _org_id: &OrgId,
        integration_id: &IntegrationId,
        settings: &Settings,
    ) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        let current = s
            .settings
            .entry(integration_id.to_string())
            .or_insert_with(default_settings);
        for (k, v) in settings {
            current.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    async fn disable_notifications(&self, org_id: &OrgId) -> Result<(), Error> {
        self.count();
        lock(&self.state)
            .notifications_off
            .insert(org_id.to_string());
        Ok(())
    }

    fn can_add_integrations(&self) -> bool {
        lock(&self.state).can_add_integrations
    }

    async fn add_bitbucket_integration(
        &self,
        org_id: &OrgId,
    ) -> Result<Option<IntegrationId>, Error> {
        self.count();
        let mut s = lock(&self.state);
        if !s.can_add_integrations {
            return Ok(None);
        }
        let id = format!("int-bitbucket-cloud-{org_id}");
        let org = s
            .orgs
            .iter_mut()
            .find(|o| o.id == org_id.as_str())
            .ok_or_else(|| Error::Fake {
                kind: ErrorKind::NotFound,
                message: format!("org {org_id} not found"),
            })?;
        org.integrations
            .insert("bitbucket-cloud".to_owned(), id.clone());
        s.added_integrations.push(org_id.to_string());
        Ok(Some(id.into()))
    }

    async fn import(
        &self,
        org_id: &OrgId,
        _integration_id: &IntegrationId,
        spec: &ImportSpec,
    ) -> Result<JobHandle, Error> {
        self.count();
        let full = format!("{}/{}", spec.workspace, spec.repository);
        let mut s = lock(&self.state);
        if s.capped.contains(org_id.as_str()) {
            return Err(Error::Fake {
                kind: ErrorKind::Client,
                message: "This organization has 25000 of the maximum 25000 projects.".to_owned(),
            });
        }
        if s.failing.contains(&full.to_lowercase()) {
            return Err(Error::Fake {
                kind: ErrorKind::Client,
                message: format!("Snyk refused the import of {full}"),
            });
        }
        s.posted.push((org_id.to_string(), full.clone()));
        s.counter += 1;
        let job = JobHandle {
            org_id: org_id.to_string(),
            integration_id: "int".into(),
            job_id: format!("job-{}", s.counter).into(),
        };
        s.jobs.insert(
            job.job_id.to_string(),
            (org_id.to_string(), full, spec.branch.clone()),
        );
        Ok(job)
    }

    async fn group_audit_log(
        &self,
        _group_id: &GroupId,
        _events: &[&str],
        _from: crate::ids::Timestamp,
    ) -> Result<Vec<crate::read::ports::AuditEntry>, Error> {
        self.count();
        if lock(&self.state).audit_log_quiet {
            Ok(Vec::new())
        } else {
            Err(Error::Unsupported {
                what: "search a group's audit log",
            })
        }
    }

    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error> {
        self.count();
        let mut s = lock(&self.state);
        let Some((org_id, full, branch)) = s.jobs.get(job.job_id.as_str()).cloned() else {
            return Err(Error::Fake {
                kind: ErrorKind::NotFound,
                message: format!("job {job} not found"),
            });
        };
        let target = full.to_lowercase();
        let zero = s.zero_projects.contains(&target);
        if !zero && let Some(o) = s.orgs.iter_mut().find(|o| o.id == org_id) {
            o.targets.insert(target.clone());
            if !s
                .projects
                .iter()
                .any(|p| p.org_id == org_id && p.target == target)
            {
                s.counter += 1;
                let id = format!("p-{}", s.counter);
                s.projects.push(FakeProject {
                    id,
                    org_id,
                    target,
                    branch,
                    active: true,
                });
            }
        }
        Ok(JobOutcome {
            status: ImportStatus::Complete,
            projects: u32::from(!zero),
            messages: Vec::new(),
            polls: 1,
            project_results: Vec::new(),
        })
    }

    async fn projects(
        &self,
        org_id: &OrgId,
        target_id: &TargetId,
    ) -> Result<Vec<SnykProject>, Error> {
        self.count();
        Ok(lock(&self.state)
            .projects
            .iter()
            .filter(|p| {
                p.org_id == org_id.as_str() && Self::target_id(&p.org_id, &p.target) == *target_id
            })
            .map(|p| SnykProject {
                id: p.id.as_str().into(),
                target_id: Some(target_id.clone()),
                branch: p.branch.clone(),
                active: p.active,
                target_file: Some("package.json".to_owned()),
                project_type: Some("npm".to_owned()),
                settings: crate::read::ports::ProjectSettings::default(),
            })
            .collect())
    }

    async fn org_projects(&self, org_id: &OrgId) -> Result<Vec<SnykProject>, Error> {
        self.count();
        Ok(lock(&self.state)
            .projects
            .iter()
            .filter(|p| p.org_id == org_id.as_str())
            .map(|p| SnykProject {
                id: p.id.as_str().into(),
                target_id: Some(Self::target_id(&p.org_id, &p.target)),
                branch: p.branch.clone(),
                active: p.active,
                target_file: Some("package.json".to_owned()),
                project_type: Some("npm".to_owned()),
                settings: crate::read::ports::ProjectSettings::default(),
            })
            .collect())
    }

    async fn deactivate_project(
        &self,
        _org_id: &OrgId,
        project_id: &ProjectId,
    ) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        let p = project(&mut s, project_id)?;
        p.active = false;
        s.changes.push(format!("deactivate {project_id}"));
        Ok(())
    }

    async fn activate_project(&self, _org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        let p = project(&mut s, project_id)?;
        p.active = true;
        s.changes.push(format!("activate {project_id}"));
        Ok(())
    }

    async fn delete_project(&self, _org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        project(&mut s, project_id)?;
        s.projects.retain(|p| p.id != project_id.as_str());
        s.changes.push(format!("delete-project {project_id}"));
        Ok(())
    }

    async fn delete_target(&self, org_id: &OrgId, target_id: &TargetId) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        let Some(org) = s.orgs.iter_mut().find(|o| o.id == org_id.as_str()) else {
            return Err(not_found(format!("org {org_id}")));
        };
        let Some(name) = org
            .targets
            .iter()
            .find(|n| Self::target_id(&org.id, n) == *target_id)
            .cloned()
        else {
            return Err(not_found(format!("target {target_id}")));
        };
        org.targets.remove(&name);
        // Like the sandbox, the target's projects stay: Snyk does not document that they go.
        s.changes.push(format!("delete-target {org_id} {name}"));
        Ok(())
    }

    async fn set_project_branch(
        &self,
        _org_id: &OrgId,
        project_id: &ProjectId,
        branch: &str,
    ) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        project(&mut s, project_id)?.branch = Some(branch.to_owned());
        s.changes.push(format!("branch {project_id} {branch}"));
        Ok(())
    }

    async fn rename_org(&self, org_id: &OrgId, name: &str) -> Result<(), Error> {
        self.count();
        let mut s = lock(&self.state);
        let Some(org) = s.orgs.iter_mut().find(|o| o.id == org_id.as_str()) else {
            return Err(not_found(format!("org {org_id}")));
        };
        org.name = name.to_owned();
        s.changes.push(format!("rename-org {org_id} {name}"));
        Ok(())
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

fn not_found(what: String) -> Error {
    Error::Fake {
        kind: ErrorKind::NotFound,
        message: format!("{what} not found"),
    }
}

fn project<'a>(s: &'a mut SnykState, id: &ProjectId) -> Result<&'a mut FakeProject, Error> {
    s.projects
        .iter_mut()
        .find(|p| p.id == id.as_str())
        .ok_or_else(|| not_found(format!("project {id}")))
}
