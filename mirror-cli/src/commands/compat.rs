//! snyk-api-import's five commands, files and environment, with its defects fixed: workspaces
//! listed through `/user/workspaces`, `--skipEmptyOrgs` that works, never a duplicate org, no
//! made-up branch for empty repositories, failed jobs that end at once and are retried next
//! time, imports journaled so that a rerun never posts an accepted import again, and a partial
//! failure that exits non-zero.

use bitbucket_cloud_client::api_support::lock;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bitbucket_cloud_client::api_support;
use futures_util::TryStreamExt;
use mirror_core::adapters::SnykAdapter;
use mirror_core::advanced::gather_bitbucket;
use mirror_core::advanced::journal::Journal;
use mirror_core::compat::{
    self, CreatedOrg, CreatedOrgLine, CreatedOrgs, FailedOrgLine, ImportJobLine, ImportTargetEntry,
    ImportTargets, ImportedTargetLine, OrgCreation, OrgDataEntry, OrgsData, ProjectLine, TargetRef,
};
use mirror_core::config::ApplyOptions;
use mirror_core::config::integration_type;
use mirror_core::ids::{IntegrationId, OrgId};
use mirror_core::import::{ImportContext, ImportOutcome, ImportTask, run_imports};
use mirror_core::ports::ImportSpec;
use mirror_core::ports::JobHandle;
use mirror_core::ports::JobOutcome;
use mirror_core::ports::SnykOrg;
use mirror_core::{ApplyObserver, Report};
use serde_json::{Map, Value};

use crate::cli::{
    Global, ImportArgs, ImportDataArgs, ListImportedArgs, OrgsCreateArgs, OrgsDataArgs,
};
use crate::output::Out;
use crate::{Usage, exit, settings};

fn check_source(source: &str) -> Result<()> {
    if source != "bitbucket-cloud" {
        return Err(Usage(format!(
            "--source={source}: this tool mirrors Bitbucket Cloud; use --source=bitbucket-cloud"
        ))
        .into());
    }
    Ok(())
}

fn group_id(g: &Global) -> Result<String> {
    settings::group_id(g)
        .ok_or_else(|| Usage("--groupId is required (or SNYK_GROUP_ID)".to_owned()).into())
}

fn out_dir(g: &Global) -> Result<PathBuf> {
    let dir = settings::state_dir(g);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Usage(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

fn with_fields(level: u8, mut extra: Map<String, Value>) -> Map<String, Value> {
    for (k, v) in compat::log_fields(level) {
        extra.entry(k).or_insert(v);
    }
    extra
}

/// `orgs:data`.
pub async fn orgs_data(g: &Global, out: Out, a: &OrgsDataArgs) -> Result<u8> {
    check_source(&a.source)?;
    let group = group_id(g)?;
    let config = settings::config(g, false)?;
    let bitbucket = mirror_core::adapters::BitbucketAdapter::new(settings::bitbucket(g)?);
    let inventory = gather_bitbucket(&config, &bitbucket).await?;
    let skip_empty = a.skip_empty_orgs.unwrap_or(false);
    let orgs: Vec<OrgDataEntry> = inventory
        .workspaces
        .iter()
        .filter(|w| !(skip_empty && w.repositories.is_empty()))
        .map(|w| OrgDataEntry {
            name: w.slug.clone(),
            group_id: group.clone(),
            source_org_id: a.source_org_public_id.clone(),
            extra: Map::new(),
        })
        .collect();
    let path = out_dir(g)?.join(compat::orgs_data_file(&group));
    let n = orgs.len();
    compat::write_json(
        &path,
        &OrgsData {
            orgs,
            extra: Map::new(),
        },
    )?;
    out.status(&format!(
        "{n} orgs ({} workspaces, {} skipped as empty) written to {}",
        inventory.workspaces.len(),
        inventory.workspaces.len() - n,
        path.display()
    ));
    if !out.human() {
        println!(
            "{}",
            serde_json::json!({"file": path, "orgs": n, "exit_code": 0})
        );
    }
    Ok(exit::OK)
}

/// `orgs:create`.
pub async fn orgs_create(g: &Global, out: Out, a: &OrgsCreateArgs) -> Result<u8> {
    let data: OrgsData = compat::read_json(&a.file)?;
    let snyk = SnykAdapter::new(settings::snyk(g)?);
    let dir = out_dir(g)?;
    let journal = Journal::open(&dir, None)?;
    let include_existing = !a.no_include_existing && a.include_existing.unwrap_or(true);
    let concurrency = settings::config(g, false)?.apply.concurrency;
    let outcomes = compat::create_orgs(&snyk, &journal, &data.orgs, concurrency, None).await?;
    let mut created = CreatedOrgs::default();
    let (mut made, mut skipped, mut failed) = (0, 0, 0);
    for (entry, outcome) in data.orgs.iter().zip(outcomes) {
        match outcome {
            OrgCreation::Created { org, integrations } => {
                made += 1;
                log_created(&dir, out, entry, &org, &integrations)?;
                created
                    .org_data
                    .push(created_entry(&org, entry, integrations));
            }
            OrgCreation::Existing { org, integrations } => {
                skipped += 1;
                refuse_duplicate(&dir, entry, std::slice::from_ref(&org.id))?;
                if include_existing {
                    created
                        .org_data
                        .push(created_entry(&org, entry, integrations));
                }
            }
            OrgCreation::Duplicate(ids) => {
                skipped += 1;
                refuse_duplicate(&dir, entry, &ids)?;
            }
            OrgCreation::Failed(e) if e.kind() == api_support::ErrorKind::Auth => {
                return Err(e.into());
            }
            OrgCreation::Failed(e) => {
                failed += 1;
                log_failed(&dir, out, entry, &e)?;
            }
            // No stop signal is given.
            _ => {}
        }
    }
    let path = dir.join(compat::CREATED_ORGS_FILE);
    compat::write_json(&path, &created)?;
    out.status(&format!(
        "{made} orgs created, {skipped} already existed (never duplicated), {failed} failed; written to {}",
        path.display()
    ));
    let code = if failed > 0 { exit::FAILURES } else { exit::OK };
    if !out.human() {
        println!(
            "{}",
            serde_json::json!({"file": path, "created": made, "existing": skipped, "failed": failed, "exit_code": code})
        );
    }
    Ok(code)
}

/// Logs, in snyk-api-import's failed-orgs log, that `entry` was not created because `found`
/// orgs of its name exist.
fn refuse_duplicate(dir: &Path, entry: &OrgDataEntry, found: &[OrgId]) -> Result<()> {
    let ids: Vec<&str> = found.iter().map(OrgId::as_str).collect();
    compat::append_line(
        &dir.join(compat::failed_orgs_log(&entry.group_id)),
        &FailedOrgLine {
            orig_name: entry.name.clone(),
            group_id: entry.group_id.clone(),
            error_message: format!(
                "Refusing to create a duplicate organization: {} org(s) named {} exist ({})",
                found.len(),
                entry.name,
                ids.join(", ")
            ),
            msg: "Failed to create org".to_owned(),
            extra: compat::time_fields(),
        },
    )?;
    Ok(())
}

/// Logs, in snyk-api-import's failed-orgs log, that Snyk refused to create `entry`'s org.
fn log_failed(dir: &Path, out: Out, entry: &OrgDataEntry, e: &mirror_core::Error) -> Result<()> {
    compat::append_line(
        &dir.join(compat::failed_orgs_log(&entry.group_id)),
        &FailedOrgLine {
            orig_name: entry.name.clone(),
            group_id: entry.group_id.clone(),
            error_message: e.to_string(),
            msg: "Failed to create org".to_owned(),
            extra: compat::time_fields(),
        },
    )?;
    out.status(&format!("failed to create org {}: {e}", entry.name));
    Ok(())
}

/// Logs, in snyk-api-import's created-orgs log, the org made for `entry`.
fn log_created(
    dir: &Path,
    out: Out,
    entry: &OrgDataEntry,
    org: &SnykOrg,
    integrations: &BTreeMap<String, IntegrationId>,
) -> Result<()> {
    compat::append_line(
        &dir.join(compat::created_orgs_log(&entry.group_id)),
        &CreatedOrgLine {
            name: org.name.clone(),
            id: org.id.to_string(),
            integrations: integrations
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect(),
            msg: "Created org".to_owned(),
            extra: {
                let mut m = compat::time_fields();
                m.insert(
                    "created".to_owned(),
                    Value::from(org.created.map(|t| t.to_string())),
                );
                m
            },
        },
    )?;
    out.status(&format!("created org {}", org.name));
    Ok(())
}

fn created_entry(
    org: &SnykOrg,
    entry: &OrgDataEntry,
    integrations: BTreeMap<String, IntegrationId>,
) -> CreatedOrg {
    let mut extra = Map::new();
    if let Some(slug) = &org.slug {
        extra.insert("slug".into(), slug.clone().into());
    }
    if let Some(url) = &org.url {
        extra.insert("url".into(), url.clone().into());
    }
    extra.insert("group".into(), serde_json::json!({"id": entry.group_id}));
    CreatedOrg {
        name: org.name.clone(),
        id: org.id.to_string(),
        org_id: org.id.to_string(),
        integrations: integrations
            .into_iter()
            .map(|(kind, id)| (kind, id.to_string()))
            .collect(),
        group_id: entry.group_id.clone(),
        orig_name: entry.name.clone(),
        extra,
    }
}

/// `import:data`.
pub async fn import_data(g: &Global, out: Out, a: &ImportDataArgs) -> Result<u8> {
    check_source(&a.source)?;
    let integration = integration_type(&a.integration_type).map_err(|e| Usage(e.to_string()))?;
    let orgs: CreatedOrgs = compat::read_json(&a.orgs_data)?;
    let bitbucket = settings::bitbucket(g)?;
    let mut targets = ImportTargets::default();
    let mut problems = 0;
    let (mut empty, mut repos_seen) = (0, 0);
    for org in &orgs.org_data {
        let Some(int) = org.integrations.get(integration.as_str()) else {
            problems += 1;
            out.status(&format!(
                "org {} ({}) has no {} integration: its repositories are left out",
                org.name,
                org.id,
                integration.as_str()
            ));
            continue;
        };
        let workspace = &org.orig_name;
        let repos = bitbucket.repositories(workspace).collect().await?;
        for r in repos {
            repos_seen += 1;
            let Some(branch) = r.main_branch().map(str::to_owned) else {
                empty += 1;
                continue;
            };
            targets.targets.push(ImportTargetEntry {
                target: TargetRef {
                    owner: workspace.clone(),
                    name: r.slug.clone(),
                    branch: Some(branch),
                },
                integration_id: int.clone(),
                org_id: org.id.clone(),
                files: None,
                exclusion_globs: None,
                extra: Map::new(),
            });
        }
    }
    let path = out_dir(g)?.join(compat::IMPORT_TARGETS_FILE);
    let n = targets.targets.len();
    compat::write_json(&path, &targets)?;
    out.status(&format!(
        "{n} targets from {repos_seen} repositories ({empty} empty repositories left out) written to {}",
        path.display()
    ));
    let code = if problems > 0 {
        exit::FAILURES
    } else {
        exit::OK
    };
    if !out.human() {
        println!(
            "{}",
            serde_json::json!({"file": path, "targets": n, "exit_code": code})
        );
    }
    Ok(code)
}

/// `list:imported`.
pub async fn list_imported(g: &Global, out: Out, a: &ListImportedArgs) -> Result<u8> {
    let integration = integration_type(&a.integration_type).map_err(|e| Usage(e.to_string()))?;
    let kind = integration.as_str();
    let snyk = settings::snyk(g)?;
    let org_ids: Vec<String> = match &a.org_id {
        Some(o) => vec![o.clone()],
        None => {
            let group = settings::group_id(g)
                .ok_or_else(|| Usage("give --groupId or --orgId".to_owned()))?;
            snyk.group_orgs(&group)
                .await?
                .into_iter()
                .map(|o| o.id)
                .collect()
        }
    };
    let log = out_dir(g)?.join(compat::IMPORTED_TARGETS_LOG);
    let mut written = 0;
    for org in org_ids {
        let Some(int) = snyk.integrations(&org).await?.0.get(kind).cloned() else {
            continue;
        };
        let targets: Vec<_> = snyk.targets_of(&org, kind, None).try_collect().await?;
        if targets.is_empty() {
            continue;
        }
        let branches: HashMap<String, String> = snyk
            .projects(&org, None)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .filter_map(|p| Some((p.target_id?, p.target_reference?)))
            .collect();
        for t in targets {
            let Some((owner, name)) = t.display_name.split_once('/') else {
                continue;
            };
            let target = TargetRef {
                owner: owner.to_owned(),
                name: name.to_owned(),
                branch: branches.get(&t.id).cloned(),
            };
            let integration_id = t.integration_id.clone().unwrap_or_else(|| int.clone());
            compat::append_line(
                &log,
                &ImportedTargetLine {
                    target_id: compat::target_id(&org, &integration_id, &target),
                    target,
                    location_url: None,
                    org_id: org.clone(),
                    integration_id,
                    msg: "Target exists in Snyk".to_owned(),
                    extra: with_fields(30, Map::new()),
                },
            )?;
            written += 1;
        }
    }
    out.status(&format!(
        "{written} imported targets recorded in {}",
        log.display()
    ));
    if !out.human() {
        println!(
            "{}",
            serde_json::json!({"file": log, "targets": written, "exit_code": 0})
        );
    }
    Ok(exit::OK)
}

fn targets_file(g: &Global, a: &ImportArgs) -> PathBuf {
    if let Some(f) = &a.file {
        return f.clone();
    }
    if let Some(p) = bitbucket_cloud_client::api_support::env::var("SNYK_IMPORT_PATH") {
        let p = PathBuf::from(p);
        if p.is_dir() {
            for name in [compat::IMPORT_TARGETS_FILE, "import-projects.json"] {
                if p.join(name).exists() {
                    return p.join(name);
                }
            }
            return p.join("import-projects.json");
        }
        return p;
    }
    settings::state_dir(g).join(compat::IMPORT_TARGETS_FILE)
}

/// snyk-api-import's logs, written from what the import protocol reports: the jobs kicked off,
/// the projects imported or not, the targets imported, the imports refused. A file that cannot
/// be written is kept as the run's error (the imports themselves are journaled).
struct CompatLogs {
    dir: PathBuf,
    /// The v1 API's base, for the polling URLs the logs carry.
    v1_base: String,
    /// The targets file's entries by (org id, lowercased `workspace/repository`).
    entries: HashMap<(String, String), ImportTargetEntry>,
    progress: Arc<dyn ApplyObserver>,
    error: Mutex<Option<mirror_core::Error>>,
}

type Written = Result<(), mirror_core::Error>;

impl CompatLogs {
    fn polling_url(&self, h: &JobHandle) -> String {
        format!(
            "{}/org/{}/integrations/{}/import/{}",
            self.v1_base, h.org_id, h.integration_id, h.job_id
        )
    }

    fn entry(&self, task: &ImportTask) -> Option<&ImportTargetEntry> {
        self.entries
            .get(&(task.org_id.to_string(), task.repository().to_lowercase()))
    }

    fn keep(&self, result: Written) {
        if let Err(e) = result {
            let mut error = lock(&self.error);
            error.get_or_insert(e);
        }
    }

    fn take_error(&self) -> Option<mirror_core::Error> {
        lock(&self.error).take()
    }

    /// `imported-targets.log`: only a finished import is recorded, so a failed one is tried
    /// again.
    fn imported(&self, t: &ImportTargetEntry, location_url: Option<String>) -> Written {
        compat::append_line(
            &self.dir.join(compat::IMPORTED_TARGETS_LOG),
            &ImportedTargetLine {
                target_id: t.target_id(),
                target: t.target.clone(),
                location_url,
                org_id: t.org_id.clone(),
                integration_id: t.integration_id.clone(),
                msg: "Target requested for import".to_owned(),
                extra: with_fields(30, Map::new()),
            },
        )
    }

    fn projects(&self, task: &ImportTask, url: &str, outcome: &JobOutcome) -> Written {
        for p in &outcome.project_results {
            let line = ProjectLine {
                org_id: task.org_id.to_string(),
                location_url: Some(url.to_owned()),
                project_id: p.project_id.as_ref().map(ToString::to_string),
                target_file: p.target_file.clone(),
                success: p.success,
                project_url: Some(p.project_url.clone().unwrap_or_default()),
                user_message: p.user_message.clone(),
                msg: if p.success {
                    "Imported project"
                } else {
                    "Error importing project"
                }
                .to_owned(),
                extra: with_fields(if p.success { 30 } else { 50 }, Map::new()),
            };
            let file = if p.success {
                compat::imported_projects_log(task.org_id.as_str())
            } else {
                compat::failed_projects_log(task.org_id.as_str())
            };
            compat::append_line(&self.dir.join(file), &line)?;
        }
        Ok(())
    }

    fn refused(&self, t: &ImportTargetEntry, error: &mirror_core::Error) -> Written {
        compat::append_line(
            &self.dir.join(format!("{}.failed-imports.log", t.org_id)),
            &serde_json::json!({"orgId": t.org_id, "target": t.target, "errorMessage": error.to_string(),
                "msg": "Failed to kick off import", "name": compat::LOGGER_NAME, "level": 50, "v": 0}),
        )
    }
}

impl ApplyObserver for CompatLogs {
    fn job_accepted(&self, task: &ImportTask, job: &JobHandle) {
        self.keep(compat::append_line(
            &self.dir.join(compat::import_jobs_log(task.org_id.as_str())),
            &ImportJobLine {
                org_id: task.org_id.to_string(),
                polling_url: self.polling_url(job),
                msg: "Kicked off import".to_owned(),
                extra: with_fields(30, Map::new()),
            },
        ));
    }

    fn import_done(&self, task: &ImportTask, outcome: &ImportOutcome) {
        let Some(entry) = self.entry(task) else {
            return;
        };
        let result = match outcome {
            ImportOutcome::Ended { job, outcome, .. } => {
                let url = self.polling_url(job);
                self.projects(task, &url, outcome).and_then(|()| {
                    if outcome.is_complete() {
                        self.imported(entry, Some(url))
                    } else {
                        Ok(())
                    }
                })
            }
            ImportOutcome::AlreadyThere | ImportOutcome::FoundBeforePost => {
                self.imported(entry, None)
            }
            ImportOutcome::Refused(e) => self.refused(entry, e),
            _ => Ok(()),
        };
        self.keep(result);
    }

    fn import_finished(&self, repository: &str, failure: Option<&str>) {
        self.progress.import_finished(repository, failure);
    }
}

/// What the targets file asks for, as the protocol's import spec.
fn spec_of(t: &ImportTargetEntry) -> ImportSpec {
    ImportSpec {
        workspace: t.target.owner.clone(),
        repository: t.target.name.clone(),
        branch: t.target.branch.clone(),
        files: t.files.iter().flatten().map(|f| f.path.clone()).collect(),
        exclusion_globs: t
            .exclusion_globs
            .as_deref()
            .map(|g| g.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

/// The import tasks of `pending`, and how many of them a run that stopped before writing the
/// log had completed (recorded in the log now).
fn import_tasks(
    journal: &Journal,
    pending: &[ImportTargetEntry],
    logs: &CompatLogs,
) -> Result<(Vec<ImportTask>, usize)> {
    let mut tasks = Vec::new();
    let mut recorded = 0;
    for t in pending {
        let task = journal.with_state(|state| {
            ImportTask::resuming(
                t.org_id.as_str().into(),
                t.org_id.clone(),
                t.integration_id.as_str().into(),
                spec_of(t),
                state,
            )
        });
        match task {
            Some(task) => tasks.push(task),
            None => {
                logs.imported(t, None)?;
                recorded += 1;
            }
        }
    }
    Ok((tasks, recorded))
}

/// `import`: every target of the file not yet in `imported-targets.log`, through the same
/// import protocol and scheduler as `apply` (journaled intent, post, acceptance, outcome), so
/// that a rerun after a crash never posts an accepted import again and checks Snyk before
/// posting one whose outcome was lost.
pub async fn import(g: &Global, out: Out, a: &ImportArgs) -> Result<u8> {
    let file = targets_file(g, a);
    if !file.exists() {
        return Err(Usage(format!(
            "no targets file at {}: run import:data first, or give --file (or SNYK_IMPORT_PATH)",
            file.display()
        ))
        .into());
    }
    let targets: ImportTargets = compat::read_json(&file)?;
    let config = settings::config(g, false)?;
    let client = settings::snyk(g)?;
    let dir = out_dir(g)?;
    let done = compat::imported_target_ids(&dir.join(compat::IMPORTED_TARGETS_LOG))?;
    let journal = Journal::open(&dir, None)?;
    let pending: Vec<ImportTargetEntry> = targets
        .targets
        .into_iter()
        .filter(|t| !done.contains(&t.target_id()))
        .collect();
    let skipped = done.len();
    out.status(&format!(
        "{} targets to import ({} already in imported-targets.log)",
        pending.len(),
        skipped
    ));
    let progress = out.progress();
    mirror_core::ApplyObserver::apply_started(progress.as_ref(), pending.len());
    let logs = Arc::new(CompatLogs {
        dir: dir.clone(),
        v1_base: client
            .v1()
            .base_url()
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
        entries: pending
            .iter()
            .map(|t| {
                let repository = format!("{}/{}", t.target.owner, t.target.name);
                ((t.org_id.clone(), repository.to_lowercase()), t.clone())
            })
            .collect(),
        progress: progress.clone(),
        error: Mutex::new(None),
    });
    let (tasks, recorded) = import_tasks(&journal, &pending, &logs)?;
    let ctx = ImportContext {
        snyk: Arc::new(SnykAdapter::new(client)),
        writer: journal.writer(),
        grace: Duration::from_secs(config.apply.resume_grace_seconds),
        observer: logs.clone(),
    };
    // snyk-api-import's `import` does not touch integration settings.
    let options = ApplyOptions {
        quiet_integrations: false,
        ..config.apply.clone()
    };
    let stop = crate::context::stop_on_ctrl_c();
    let mut report = Report::default();
    let ran = run_imports(tasks, &ctx, &journal, &options, Some(&stop), &mut report).await;
    mirror_core::ApplyObserver::apply_ended(progress.as_ref());
    ran?;
    if let Some(e) = logs.take_error() {
        return Err(e.into());
    }
    let ok = report.imports_completed + recorded;
    let failed = report.imports_failed.len();
    let code = if report.interrupted {
        exit::INTERRUPTED
    } else if failed > 0 {
        exit::FAILURES
    } else {
        exit::OK
    };
    if out.human() {
        println!(
            "{ok} imported, {failed} failed, {skipped} skipped as already imported; logs in {}",
            dir.display()
        );
    } else {
        println!(
            "{}",
            serde_json::json!({"imported": ok, "failed": failed, "skipped": skipped, "exit_code": code})
        );
    }
    Ok(code)
}
