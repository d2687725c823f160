//! Re-reads of Snyk that cost almost nothing: each org's last full read (integrations,
//! Bitbucket targets, projects) is kept in the state directory, and a later read asks the
//! group's audit log which orgs changed since; only those are read again.
//!
//! [`KeptSnyk`] wraps a [`SnykPort`] for reading. An org kept less than `full_every` ago, and
//! that the group's audit log (searched once per run, from the oldest kept read less a
//! ten-minute margin) names in no target or project event, answers from what was kept. Any
//! org the log names, any org not kept, every org when the log cannot be read (plans without
//! audit logs answer 403) or names an event without its org, and every org at least every
//! `full_every` (the safety net for what the log does not show) is read in full. Apply forgets
//! the kept read of every org it changes ([`forget`]), so a run never trusts a read older than
//! its own writes.
//!
//! The kept reads are a cache: written atomically, and one that cannot be read is ignored (a
//! full read follows).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::Timestamp;
use crate::ids::{GroupId, IntegrationId, OrgId, ProjectId, TargetId};
use crate::read::listing::{keep_file, kept_file_path};
use crate::read::ports::{
    AuditEntry, Ignore, ImportSpec, JobHandle, JobOutcome, ProjectSettings, Settings, SnykOrg,
    SnykPort, SnykProject, SnykTarget,
};

/// Kept reads older than this are read in full again, by default.
pub const FULL_EVERY: Duration = crate::config::SNYK_FULL_EVERY;

/// How far before the oldest kept read the audit log is searched, for clocks and for entries
/// that reach the log late.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(600);

/// The audit-log events that change what a read of an org holds.
const CHANGE_EVENTS: &[&str] = &[
    "org.target.create",
    "org.target.delete",
    "org.project.add",
    "org.project.delete",
    "org.project.remove",
    "org.project.edit",
    "org.project.attributes.edit",
    "org.project.tag.add",
    "org.project.tag.remove",
    "org.project.ignore.create",
    "org.project.monitor",
    "org.project.stop_monitor",
    "org.integration.create",
    "org.integration.delete",
    "org.integration.edit",
];

/// One org's read as kept between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct KeptOrg {
    /// When the read began (seconds since the Unix epoch).
    read_at: u64,
    integrations: BTreeMap<String, IntegrationId>,
    targets: Vec<SnykTarget>,
    projects: Vec<SnykProject>,
}

/// What was kept of an org, as handed out this run: the targets and projects go to the one
/// caller that asks (the inventory) rather than being copied and held twice; a part asked for
/// again is read from the file again.
struct KeptParts {
    integrations: BTreeMap<String, IntegrationId>,
    targets: Option<Vec<SnykTarget>>,
    projects: Option<Vec<SnykProject>>,
}

impl From<KeptOrg> for KeptParts {
    fn from(k: KeptOrg) -> Self {
        Self {
            integrations: k.integrations,
            targets: Some(k.targets),
            projects: Some(k.projects),
        }
    }
}

/// The parts of an org read so far this run.
#[derive(Default)]
struct Partial {
    integrations: Option<BTreeMap<String, IntegrationId>>,
    targets: Option<Vec<SnykTarget>>,
    projects: Option<Vec<SnykProject>>,
}

/// A [`SnykPort`] that answers reads of orgs unchanged since their last read from what was
/// kept (see the module's notes); every write goes to the port it wraps.
pub struct KeptSnyk {
    inner: Arc<dyn SnykPort>,
    dir: PathBuf,
    full_every: Duration,
    group_id: GroupId,
    now: u64,
    margin: Duration,
    /// The orgs the audit log names since the oldest kept read; `None` when it could not say.
    changed: tokio::sync::OnceCell<Option<BTreeSet<OrgId>>>,
    kept: Mutex<HashMap<OrgId, Option<KeptParts>>>,
    reading: Mutex<HashMap<OrgId, Partial>>,
}

impl std::fmt::Debug for KeptSnyk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptSnyk")
            .field("dir", &self.dir)
            .field("full_every", &self.full_every)
            .finish_non_exhaustive()
    }
}

use bitbucket_cloud_client::api_support::lock;

/// Forgets the kept reads of `orgs` under `state_dir` (apply changed them).
pub fn forget<'a>(state_dir: &Path, orgs: impl IntoIterator<Item = &'a OrgId>) {
    let dir = state_dir.join("snyk-orgs");
    for org in orgs {
        let _ = std::fs::remove_file(kept_file_path(&dir, org.as_str()));
    }
}

impl KeptSnyk {
    /// Keeps reads under `state_dir/snyk-orgs`, reading each org in full at least every
    /// `full_every` (`0s`: every time).
    pub fn new(
        inner: Arc<dyn SnykPort>,
        state_dir: &Path,
        group_id: &GroupId,
        full_every: Duration,
    ) -> Self {
        Self {
            inner,
            dir: state_dir.join("snyk-orgs"),
            full_every,
            group_id: group_id.to_owned(),
            now: crate::clock::unix_now(),
            margin: CLOCK_MARGIN,
            changed: tokio::sync::OnceCell::new(),
            kept: Mutex::new(HashMap::new()),
            reading: Mutex::new(HashMap::new()),
        }
    }

    /// What was kept of `org` in its file, when it can be read and was read less than
    /// `full_every` ago.
    fn read_kept(&self, org: &OrgId) -> Option<KeptOrg> {
        std::fs::read_to_string(kept_file_path(&self.dir, org.as_str()))
            .ok()
            .and_then(|t| serde_json::from_str::<KeptOrg>(&t).ok())
            .filter(|k| self.now.saturating_sub(k.read_at) < self.full_every.as_secs())
    }

    /// Whether `org` has a kept read, loading it on first ask.
    fn load(&self, org: &OrgId) -> bool {
        if let Some(k) = lock(&self.kept).get(org) {
            return k.is_some();
        }
        let kept = self.read_kept(org).map(KeptParts::from);
        let found = kept.is_some();
        lock(&self.kept).insert(org.clone(), kept);
        found
    }

    /// How far before the oldest kept read the audit log is searched (default ten minutes,
    /// for clocks and for entries that reach the log late).
    #[must_use]
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// When the oldest kept read was written, from the files' times.
    fn oldest_kept(&self) -> Option<SystemTime> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
            .min()
    }

    /// The orgs the group's audit log names since the oldest kept read; `None` when it
    /// cannot say (nothing kept, no audit log, an entry without its org).
    async fn changed(&self) -> Option<&BTreeSet<OrgId>> {
        self.changed
            .get_or_init(|| async {
                let oldest = self.oldest_kept()?;
                let from = oldest.checked_sub(self.margin).unwrap_or(SystemTime::UNIX_EPOCH);
                let from = Timestamp::try_from(from).unwrap_or(Timestamp::UNIX_EPOCH);
                match self
                    .inner
                    .group_audit_log(&self.group_id, CHANGE_EVENTS, from)
                    .await
                {
                    Ok(entries) => entries.into_iter().map(|e| e.org_id).collect(),
                    Err(e) => {
                        tracing::info!(error = %e, "the group's audit log cannot say what changed; every org is read in full");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// One part of what was kept of `org`, when it is still good: read less than `full_every`
    /// ago, and named in no change since. `part` takes it from what is held; a part taken
    /// before is read from the file again.
    async fn fresh<T>(&self, org: &OrgId, part: impl Fn(&mut KeptParts) -> Option<T>) -> Option<T> {
        if self.full_every.is_zero() || !self.load(org) {
            return None;
        }
        let changed = self.changed().await?;
        if changed.contains(org) {
            return None;
        }
        let held = lock(&self.kept)
            .get_mut(org)
            .and_then(|k| k.as_mut().and_then(&part));
        held.or_else(|| part(&mut KeptParts::from(self.read_kept(org)?)))
    }

    /// Notes a part of an org's read; once all three are in, keeps the read.
    fn note(&self, org: &OrgId, part: impl FnOnce(&mut Partial)) {
        let mut reading = lock(&self.reading);
        let p = reading.entry(org.clone()).or_default();
        part(p);
        if let (Some(_), Some(_), Some(_)) = (&p.integrations, &p.targets, &p.projects) {
            let Some(p) = reading.remove(org) else { return };
            let kept = KeptOrg {
                read_at: self.now,
                integrations: p.integrations.unwrap_or_default(),
                targets: p.targets.unwrap_or_default(),
                projects: p.projects.unwrap_or_default(),
            };
            keep_file(&kept_file_path(&self.dir, org.as_str()), &kept);
        }
    }
}

#[async_trait]
impl SnykPort for KeptSnyk {
    async fn orgs(&self, group_id: &GroupId) -> Result<Vec<SnykOrg>, Error> {
        self.inner.orgs(group_id).await
    }
    async fn orgs_named(&self, group_id: &GroupId, name: &str) -> Result<Vec<SnykOrg>, Error> {
        self.inner.orgs_named(group_id, name).await
    }
    async fn integrations(&self, org_id: &OrgId) -> Result<BTreeMap<String, IntegrationId>, Error> {
        if let Some(kept) = self.fresh(org_id, |k| Some(k.integrations.clone())).await {
            return Ok(kept);
        }
        let read = self.inner.integrations(org_id).await?;
        self.note(org_id, |p| p.integrations = Some(read.clone()));
        Ok(read)
    }
    async fn imported(
        &self,
        org_id: &OrgId,
        integration_type: &str,
    ) -> Result<Vec<SnykTarget>, Error> {
        let all = integration_type == snyk_client::endpoints::BITBUCKET_SOURCE_TYPES;
        if all && let Some(kept) = self.fresh(org_id, |k| k.targets.take()).await {
            return Ok(kept);
        }
        let read = self.inner.imported(org_id, integration_type).await?;
        if all {
            self.note(org_id, |p| p.targets = Some(read.clone()));
        }
        Ok(read)
    }
    async fn imported_named(
        &self,
        org_id: &OrgId,
        integration_type: &str,
        prefix: &str,
    ) -> Result<Vec<SnykTarget>, Error> {
        self.inner
            .imported_named(org_id, integration_type, prefix)
            .await
    }
    async fn org_projects(&self, org_id: &OrgId) -> Result<Vec<SnykProject>, Error> {
        if let Some(kept) = self.fresh(org_id, |k| k.projects.take()).await {
            return Ok(kept);
        }
        let read = self.inner.org_projects(org_id).await?;
        self.note(org_id, |p| p.projects = Some(read.clone()));
        Ok(read)
    }
    async fn create_org(
        &self,
        group_id: &GroupId,
        name: &str,
        template_org_id: Option<&OrgId>,
    ) -> Result<SnykOrg, Error> {
        self.inner.create_org(group_id, name, template_org_id).await
    }
    fn can_add_integrations(&self) -> bool {
        self.inner.can_add_integrations()
    }
    async fn add_bitbucket_integration(
        &self,
        org_id: &OrgId,
    ) -> Result<Option<IntegrationId>, Error> {
        self.inner.add_bitbucket_integration(org_id).await
    }
    async fn import(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
        spec: &ImportSpec,
    ) -> Result<JobHandle, Error> {
        self.inner.import(org_id, integration_id, spec).await
    }
    async fn wait(&self, job: &JobHandle) -> Result<JobOutcome, Error> {
        self.inner.wait(job).await
    }
    async fn integration_settings(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
    ) -> Result<Settings, Error> {
        self.inner
            .integration_settings(org_id, integration_id)
            .await
    }
    async fn update_integration_settings(
        &self,
        org_id: &OrgId,
        integration_id: &IntegrationId,
        settings: &Settings,
    ) -> Result<(), Error> {
        self.inner
            .update_integration_settings(org_id, integration_id, settings)
            .await
    }
    async fn projects(
        &self,
        org_id: &OrgId,
        target_id: &TargetId,
    ) -> Result<Vec<SnykProject>, Error> {
        self.inner.projects(org_id, target_id).await
    }
    async fn audit_log(
        &self,
        org_id: &OrgId,
        events: &[&str],
        from: Timestamp,
    ) -> Result<Vec<AuditEntry>, Error> {
        self.inner.audit_log(org_id, events, from).await
    }
    async fn group_audit_log(
        &self,
        group_id: &GroupId,
        events: &[&str],
        from: Timestamp,
    ) -> Result<Vec<AuditEntry>, Error> {
        self.inner.group_audit_log(group_id, events, from).await
    }
    async fn delete_org(&self, org_id: &OrgId) -> Result<(), Error> {
        self.inner.delete_org(org_id).await
    }
    async fn ignores(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<Vec<Ignore>, Error> {
        self.inner.ignores(org_id, project_id).await
    }
    async fn add_ignore(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        ignore: &Ignore,
    ) -> Result<(), Error> {
        self.inner.add_ignore(org_id, project_id, ignore).await
    }
    async fn update_project_settings(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        settings: &ProjectSettings,
    ) -> Result<(), Error> {
        self.inner
            .update_project_settings(org_id, project_id, settings)
            .await
    }
    async fn deactivate_project(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
    ) -> Result<(), Error> {
        self.inner.deactivate_project(org_id, project_id).await
    }
    async fn activate_project(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        self.inner.activate_project(org_id, project_id).await
    }
    async fn delete_project(&self, org_id: &OrgId, project_id: &ProjectId) -> Result<(), Error> {
        self.inner.delete_project(org_id, project_id).await
    }
    async fn delete_target(&self, org_id: &OrgId, target_id: &TargetId) -> Result<(), Error> {
        self.inner.delete_target(org_id, target_id).await
    }
    async fn set_project_branch(
        &self,
        org_id: &OrgId,
        project_id: &ProjectId,
        branch: &str,
    ) -> Result<(), Error> {
        self.inner
            .set_project_branch(org_id, project_id, branch)
            .await
    }
    async fn rename_org(&self, org_id: &OrgId, name: &str) -> Result<(), Error> {
        self.inner.rename_org(org_id, name).await
    }
    async fn disable_notifications(&self, org_id: &OrgId) -> Result<(), Error> {
        self.inner.disable_notifications(org_id).await
    }
    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeSnyk;

    #[tokio::test]
    async fn a_kept_read_is_handed_out_once_and_read_from_its_file_when_asked_again() {
        let fake = FakeSnyk::new();
        fake.set_audit_log_quiet();
        let org = fake.add_org("acme", &["bitbucket-cloud"]);
        fake.add_target(&org, "acme/api");
        fake.add_target(&org, "acme/web");
        let port: Arc<dyn SnykPort> = Arc::new(fake);
        let dir = tempfile::tempdir().unwrap();
        let group = GroupId::from("g");
        let all = snyk_client::endpoints::BITBUCKET_SOURCE_TYPES;
        let day = Duration::from_secs(86_400);
        // One run reads the org in full and keeps the read.
        let first = KeptSnyk::new(port.clone(), dir.path(), &group, day);
        let targets = first.imported(&org, all).await.unwrap();
        first.integrations(&org).await.unwrap();
        first.org_projects(&org).await.unwrap();
        assert_eq!(targets.len(), 2);
        // The next answers from it: the targets are moved out rather than held twice, and a
        // second ask reads the file again, still without asking Snyk.
        let next = KeptSnyk::new(port.clone(), dir.path(), &group, day).with_margin(Duration::ZERO);
        let asked = port.requests();
        assert_eq!(next.imported(&org, all).await.unwrap(), targets);
        let held = lock(&next.kept)
            .get(&org)
            .and_then(|k| k.as_ref().map(|k| k.targets.is_some()));
        assert_eq!(
            held,
            Some(false),
            "the targets are held once, by the caller"
        );
        assert_eq!(next.imported(&org, all).await.unwrap(), targets);
        assert!(next.org_projects(&org).await.unwrap().is_empty());
        assert!(
            next.integrations(&org)
                .await
                .unwrap()
                .contains_key("bitbucket-cloud")
        );
        assert_eq!(
            port.requests(),
            asked + 1,
            "one search of the group's audit log, and no org read from Snyk"
        );
    }
}
