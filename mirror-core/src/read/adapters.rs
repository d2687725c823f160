//! The ports implemented over the two clients.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bitbucket_cloud_client::BitbucketClient;
use futures_util::TryStreamExt;
use secrecy::SecretString;
use snyk_client::{ImportRequest, SnykClient};

use crate::error::Error;
use crate::ids::Timestamp;
use crate::ids::{GroupId, IntegrationId, OrgId, ProjectId, RepoUuid, TargetId, WorkspaceUuid};
use crate::read::ports::{
    AuditEntry, BitbucketPort, Ignore, ImportSpec, JobHandle, JobOutcome, Listing, ProjectResult,
    ProjectSettings, Repo, RepoQuery, Settings, SnykOrg, SnykPort, SnykProject, SnykTarget,
    Unreadable,
};

/// [`BitbucketPort`] over a [`BitbucketClient`].
#[derive(Clone, Debug)]
pub struct BitbucketAdapter {
    client: BitbucketClient,
}

impl BitbucketAdapter {
    /// A workspace's listing narrowed on the server as far as `query` allows: one project key
    /// (several are filtered by the inventory), and `updated_on` after a time.
    fn listing(
        &self,
        workspace: &str,
        query: &RepoQuery,
    ) -> bitbucket_cloud_client::RepositoriesRequest {
        let mut listing = self.client.repositories(workspace);
        if let [key] = query.project_keys.as_slice() {
            listing = listing.project_key(key);
        }
        if let Some(since) = &query.updated_since {
            listing = listing.updated_since(*since);
        }
        listing
    }

    /// Wraps a client.
    pub fn new(client: BitbucketClient) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &BitbucketClient {
        &self.client
    }
}

#[async_trait]
impl BitbucketPort for BitbucketAdapter {
    async fn workspaces(&self) -> Result<Vec<String>, Error> {
        let list = self.client.user_workspaces(None).collect().await?;
        let mut slugs: Vec<String> = list.into_iter().filter_map(|w| w.workspace.slug).collect();
        slugs.sort();
        slugs.dedup();
        Ok(slugs)
    }

    async fn repositories(&self, workspace: &str, query: &RepoQuery) -> Result<Listing, Error> {
        let (repos, skipped) = self
            .listing(workspace, query)
            .paginator()
            .collect_with_skipped()
            .await?;
        let mut listing = Listing::default();
        for item in skipped {
            let why = format!("its entry in the listing could not be read ({item})");
            listing
                .unreadable
                .push(Unreadable::new(item.uuid.map(Into::into), item.id, why));
        }
        for r in repos {
            match listed_repo(r, workspace) {
                Ok(repo) => listing.repositories.push(repo),
                Err(entry) => listing.unreadable.push(entry),
            }
        }
        Ok(listing)
    }

    async fn repository_count(
        &self,
        workspace: &str,
        query: &RepoQuery,
    ) -> Result<Option<u64>, Error> {
        if query.project_keys.len() > 1 {
            // Several keys are filtered here, not on the server: Bitbucket cannot count them.
            return Ok(None);
        }
        // One item of one page, only its total: `size`.
        let mut endpoint = self.listing(workspace, query).endpoint().clone();
        endpoint.pagelen = 1;
        endpoint.fields = Some(bitbucket_cloud_client::Fields::new(["size"]));
        let page: bitbucket_cloud_client::Page<serde_json::Value> =
            self.client.get(&endpoint).await?;
        Ok(page.size)
    }

    async fn repository_by_uuid(
        &self,
        workspace: &str,
        uuid: &RepoUuid,
    ) -> Result<Option<Repo>, Error> {
        Ok(self
            .client
            .repository_by_uuid(workspace, uuid.as_str())
            .await?
            .map(|r| repo_of(r, workspace)))
    }

    /// A listing filtered on the uuids, 40 to a request (`(uuid="{…}" OR …)`: a URL of about
    /// two kilobytes), rather than a request each; a workspace that refuses the filter is asked
    /// one by one.
    async fn repositories_by_uuid(
        &self,
        workspace: &str,
        uuids: &[RepoUuid],
    ) -> Result<Vec<Repo>, Error> {
        if uuids.len() < 2 {
            return crate::read::ports::each_by_uuid(self, workspace, uuids).await;
        }
        let mut found = Vec::new();
        for chunk in uuids.chunks(UUIDS_PER_LISTING) {
            let filter = chunk
                .iter()
                .map(|u| {
                    format!(
                        "uuid={}",
                        bitbucket_cloud_client::endpoints::quote(u.as_str())
                    )
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            let listed = self
                .client
                .repositories(workspace)
                .query(format!("({filter})"))
                .collect()
                .await;
            match listed {
                Ok(repos) => found.extend(repos.into_iter().map(|r| repo_of(r, workspace))),
                Err(e) if e.status() == Some(400) => {
                    found.extend(crate::read::ports::each_by_uuid(self, workspace, chunk).await?);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }

    fn requests(&self) -> u64 {
        self.client.http().credentials().usage().iter().sum()
    }

    fn hourly_budget(&self) -> Option<u64> {
        let pool = self.client.http().credentials();
        let hour = std::time::Duration::from_secs(3600);
        let mut total = 0u64;
        for i in 0..pool.len() {
            let limit = pool.limit(i)?;
            // A budget over another window, as its share of an hour.
            let per_hour = u128::from(limit.requests.max(1)) * hour.as_millis()
                / limit.window.as_millis().max(1);
            total += u64::try_from(per_hour).unwrap_or(u64::MAX);
        }
        Some(total)
    }
}

/// Uuids asked for in one filtered listing.
const UUIDS_PER_LISTING: usize = 40;

/// A repository of `workspace`'s listing, or the entry set aside when it names another
/// workspace as its own: the listing of one workspace says nothing certain of another.
fn listed_repo(r: bitbucket_cloud_client::Repository, workspace: &str) -> Result<Repo, Unreadable> {
    match r.workspace_slug() {
        Some(own) if !own.eq_ignore_ascii_case(workspace) => Err(Unreadable::new(
            r.uuid.clone().map(Into::into),
            r.full_name.clone().or(Some(r.slug.clone())),
            format!(
                "listed in workspace {workspace}, but its entry names workspace {own} as its own"
            ),
        )),
        _ => Ok(repo_of(r, workspace)),
    }
}

/// A repository as the plan needs it, from Bitbucket's model (`workspace`: the one it was
/// listed or looked up in, when the answer does not name it).
fn repo_of(r: bitbucket_cloud_client::Repository, workspace: &str) -> Repo {
    Repo {
        uuid: r.uuid.clone().map(Into::into),
        workspace: r.workspace_slug().unwrap_or(workspace).to_owned(),
        workspace_uuid: r
            .workspace
            .as_ref()
            .and_then(|w| w.uuid.as_deref())
            .map(WorkspaceUuid::from),
        main_branch: r.main_branch().map(str::to_owned),
        is_fork: r.is_fork(),
        is_private: r.is_private.unwrap_or(true),
        project_key: r.project_key().map(str::to_owned),
        updated_on: r.updated_on,
        language: r.language.clone().filter(|l| !l.is_empty()),
        slug: r.slug,
    }
}

/// [`SnykPort`] over a [`SnykClient`].
#[derive(Clone)]
pub struct SnykAdapter {
    client: SnykClient,
    bitbucket_credentials: Option<(String, SecretString)>,
}

impl std::fmt::Debug for SnykAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnykAdapter")
            .field("client", &self.client)
            .field(
                "bitbucket_credentials",
                &self
                    .bitbucket_credentials
                    .as_ref()
                    .map(|(e, _)| (e, "[REDACTED]")),
            )
            .finish()
    }
}

impl SnykAdapter {
    /// Wraps a client.
    pub fn new(client: SnykClient) -> Self {
        Self {
            client,
            bitbucket_credentials: None,
        }
    }

    /// The Atlassian e-mail and API token that Snyk uses to read Bitbucket, for adding missing
    /// `bitbucket-cloud` integrations.
    pub fn with_bitbucket_credentials(
        mut self,
        email: impl Into<String>,
        token: SecretString,
    ) -> Self {
        self.bitbucket_credentials = Some((email.into(), token));
        self
    }

    /// An org's targets of a type, optionally only those whose names begin with `prefix`.
    async fn targets(
        &self,
        org_id: &OrgId,
        integration_type: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<SnykTarget>, Error> {
        let targets: Vec<_> = self
            .client
            .targets_of(org_id.as_str(), integration_type, prefix)
            .try_collect()
            .await?;
        Ok(targets
            .into_iter()
            .map(|t| SnykTarget {
                id: t.id.into(),
                display_name: t.display_name,
                integration_type: t.integration_type,
            })
            .collect())
    }

    /// The client.
    pub fn client(&self) -> &SnykClient {
        &self.client
    }
}

#[async_trait]
impl SnykPort for SnykAdapter {
    async fn orgs(&self, group_id: &GroupId) -> Result<Vec<SnykOrg>, Error> {
        Ok(self
            .client
            .group_orgs(group_id.as_str())
            .await?
            .into_iter()
            .map(SnykOrg::from)
            .collect())
    }

    async fn orgs_named(&self, group_id: &GroupId, name: &str) -> Result<Vec<SnykOrg>, Error> {
        Ok(self
            .client
            .group_orgs_named(group_id.as_str(), Some(name))
            .await?
            .into_iter()
            .filter(|o| o.name == name)
            .map(SnykOrg::from)
            .collect())
    }

    async fn integrations(&self, org_id: &OrgId) -> Result<BTreeMap<String, IntegrationId>, Error> {
        Ok(self
            .client
            .integrations(org_id.as_str())
            .await?
            .0
            .into_iter()
            .map(|(kind, id)| (kind, id.into()))
            .collect())
    }

    async fn imported(
        &self,
        org_id: &OrgId,
        integration_type: &str,
    ) -> Result<Vec<SnykTarget>, Error> {
        self.targets(org_id, integration_type, None).await
    }

    async fn imported_named(
        &self,
        org_id: &OrgId,
        integration_type: &str,
        prefix: &str,
    ) -> Result<Vec<SnykTarget>, Error> {
        self.targets(org_id, integration_type, Some(prefix)).await
    }

    async fn create_org(
        &self,
        group_id: &GroupId,
        name: &str,
        template_org_id: Option<&OrgId>,
    ) -> Result<SnykOrg, Error> {
        Ok(self
            .client
            .create_org(group_id.as_str(), name, template_org_id.map(OrgId::as_str))
            .await?
            .into())
    }

    fn can_add_integrations(&self) -> bool {
        self.bitbucket_credentials.is_some()
    }

    async fn add_bitbucket_integration(
        &self,
        org_id: &OrgId,
    ) -> Result<Option<IntegrationId>, Error> {
        let Some((email, token)) = &self.bitbucket_credentials else {
            return Ok(None);
        };
        let id = self
            .client
            .add_bitbucket_cloud_integration(org_id.as_str(), email, token)
            .await?;
        Ok(Some(id.into()))
    }

    async fn update_bitbucket_credentials(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
    ) -> Result<(), Error> {
        let Some((email, token)) = &self.bitbucket_credentials else {
            return Err(Error::Config(
                "no Snyk-side Bitbucket credentials to update the integration with".to_owned(),
            ));
        };
        self.client
            .update_bitbucket_cloud_credentials(
                org_id.as_str(),
                integration_id.as_str(),
                email,
                token,
            )
            .await?;
        Ok(())
    }

    async fn import(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
        spec: &ImportSpec,
    ) -> Result<JobHandle, Error> {
        let mut request =
            ImportRequest::new(&spec.workspace, &spec.repository, spec.branch.as_deref())
                .with_files(spec.files.iter().cloned());
        if !spec.exclusion_globs.is_empty() {
            request = request.with_exclusion_globs(&spec.exclusion_globs)?;
        }
        let handle = self
            .client
            .import(org_id.as_str(), integration_id.as_str(), &request)
            .await?;
        Ok(handle)
    }

    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error> {
        let done = self.client.wait_for_import(job).await?;
        let project_results = done
            .job
            .logs
            .iter()
            .flat_map(|l| &l.projects)
            .map(|p| ProjectResult {
                project_id: p.project_id.clone().map(Into::into),
                target_file: p.target_file.clone(),
                success: p.success == Some(true),
                project_url: p.project_url.clone(),
                user_message: p.user_message.clone(),
            })
            .collect();
        Ok(JobOutcome {
            projects: done.job.created_projects().count() as u32,
            messages: done.job.failure_messages(),
            polls: done.polls,
            status: done.job.status,
            project_results,
        })
    }

    async fn integration_settings(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
    ) -> Result<Settings, Error> {
        Ok(self
            .client
            .integration_settings(org_id.as_str(), integration_id.as_str())
            .await?)
    }

    async fn update_integration_settings(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
        settings: &Settings,
    ) -> Result<(), Error> {
        self.client
            .update_integration_settings(org_id.as_str(), integration_id.as_str(), settings)
            .await?;
        Ok(())
    }

    async fn disable_notifications(&self, org_id: &OrgId) -> Result<(), Error> {
        Ok(self.client.disable_notifications(org_id.as_str()).await?)
    }

    async fn projects(
        &self,
        org_id: &OrgId,
        target_id: &TargetId,
    ) -> Result<Vec<SnykProject>, Error> {
        let projects: Vec<_> = self
            .client
            .projects(org_id.as_str(), Some(target_id.as_str()))
            .try_collect()
            .await?;
        Ok(projects.into_iter().map(project).collect())
    }

    async fn org_projects(&self, org_id: &OrgId) -> Result<Vec<SnykProject>, Error> {
        let projects: Vec<_> = self
            .client
            .projects(org_id.as_str(), None)
            .try_collect()
            .await?;
        Ok(projects.into_iter().map(project).collect())
    }

    async fn audit_log(
        &self,
        org_id: &OrgId,
        events: &[&str],
        from: Timestamp,
    ) -> Result<Vec<AuditEntry>, Error> {
        let entries: Vec<snyk_client::AuditLogEntry> = self
            .client
            .audit_log(org_id.as_str(), events, Some(from))
            .try_collect()
            .await?;
        Ok(entries.into_iter().map(audit_entry).collect())
    }

    async fn group_audit_log(
        &self,
        group_id: &GroupId,
        events: &[&str],
        from: Timestamp,
    ) -> Result<Vec<AuditEntry>, Error> {
        let entries: Vec<snyk_client::AuditLogEntry> = self
            .client
            .group_audit_log(group_id.as_str(), events, Some(from))
            .try_collect()
            .await?;
        Ok(entries.into_iter().map(audit_entry).collect())
    }

    async fn ignores(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<Vec<Ignore>, Error> {
        Ok(self
            .client
            .project_ignores(org_id.as_str(), project_id.as_str())
            .await?)
    }

    async fn add_ignore(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        ignore: &Ignore,
    ) -> Result<(), Error> {
        Ok(self
            .client
            .add_ignore(org_id.as_str(), project_id.as_str(), ignore)
            .await?)
    }

    async fn update_project_settings(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        settings: &ProjectSettings,
    ) -> Result<(), Error> {
        Ok(self
            .client
            .update_project_settings(org_id.as_str(), project_id.as_str(), settings)
            .await?)
    }

    async fn delete_org(&self, org_id: &OrgId) -> Result<(), Error> {
        Ok(self.client.delete_org(org_id.as_str()).await?)
    }

    async fn deactivate_project(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
    ) -> Result<(), Error> {
        Ok(self
            .client
            .set_project_active(org_id.as_str(), project_id.as_str(), false)
            .await?)
    }

    async fn activate_project(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        Ok(self
            .client
            .set_project_active(org_id.as_str(), project_id.as_str(), true)
            .await?)
    }

    async fn delete_project(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        Ok(self
            .client
            .delete_project(org_id.as_str(), project_id.as_str())
            .await?)
    }

    async fn delete_target(&self, org_id: &OrgId, target_id: &TargetId) -> Result<(), Error> {
        Ok(self
            .client
            .delete_target(org_id.as_str(), target_id.as_str())
            .await?)
    }

    async fn set_project_branch(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        branch: &str,
    ) -> Result<(), Error> {
        Ok(self
            .client
            .update_project_branch(org_id.as_str(), project_id.as_str(), branch)
            .await?)
    }

    async fn rename_org(&self, org_id: &OrgId, name: &str) -> Result<(), Error> {
        Ok(self.client.rename_org(org_id.as_str(), name).await?)
    }

    fn requests(&self) -> u64 {
        let v1: u64 = self.client.v1().credentials().usage().iter().sum();
        let rest: u64 = self.client.rest().credentials().usage().iter().sum();
        v1 + rest
    }
}

/// An audit-log entry as the core reads it.
fn audit_entry(e: snyk_client::AuditLogEntry) -> AuditEntry {
    AuditEntry {
        user: e.user().map(str::to_owned),
        target_id: e.target_id().map(Into::into),
        name: e.name().map(str::to_owned),
        project_id: e.project_id.clone().map(Into::into),
        org_id: e.org_id.clone().map(Into::into),
        at: e.created,
        event: e.event,
    }
}

/// A project as the core reads it.
fn project(p: snyk_client::Project) -> SnykProject {
    SnykProject {
        active: p.status.as_deref() != Some("inactive"),
        id: p.id.into(),
        target_id: p.target_id.map(Into::into),
        branch: p.target_reference,
        target_file: p.target_file,
        project_type: p.project_type,
        settings: p.settings,
    }
}
