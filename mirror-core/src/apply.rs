//! Carrying out a plan: orgs first, then imports with bounded concurrency per org and overall,
//! each remote step journaled before and after, so that a rerun after a crash neither creates
//! an org twice nor posts an accepted import again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Error;
use crate::config::ApplyOptions;
use crate::journal::{Event, ImportState, Journal, JournalState, JournalWriter};
use crate::plan::{Action, OrgRef, Plan};
use crate::ports::{ImportSpec, Settings, SnykPort};
use serde_json::Value;

/// One import that did not complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedImport {
    /// `workspace/repository`.
    pub repository: String,
    /// The org name.
    pub org: String,
    /// Why, in Snyk's words where it gave some.
    pub message: String,
}

/// What apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Orgs created by this run.
    pub orgs_created: Vec<String>,
    /// Orgs found already existing (for example created by a run that crashed).
    pub orgs_adopted: Vec<String>,
    /// Orgs a `bitbucket-cloud` integration was added to.
    pub integrations_added: Vec<String>,
    /// Imports Snyk accepted in this run.
    pub imports_accepted: usize,
    /// Imports that completed.
    pub imports_completed: usize,
    /// Imports an earlier, interrupted run had started and this one finished or confirmed.
    pub imports_resumed: usize,
    /// Imports that failed, with the reason.
    pub imports_failed: Vec<FailedImport>,
    /// Projects created.
    pub projects_created: u64,
    /// Import jobs that completed with zero projects.
    pub zero_project_imports: usize,
    /// Status requests made while waiting for jobs.
    pub polls: u64,
    /// Skips by reason (from the plan).
    pub skipped: BTreeMap<String, usize>,
    /// Conflicts (from the plan, and found while applying).
    pub conflicts: Vec<String>,
    /// Requests made per API.
    pub requests: BTreeMap<String, u64>,
    /// Whether the run was stopped before the end (it can be resumed).
    pub interrupted: bool,
    /// Orgs whose integration had its PR checks and fix PRs off during the run
    /// (`apply.quiet_integrations`) and put back after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations_quieted: Vec<String>,
    /// Orgs created with their notifications turned off (`apply.notifications_off_for_new_orgs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications_off: Vec<String>,
    /// What went wrong without failing the mirroring (a setting that could not be changed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether something failed or was held back.
    pub fn has_failures(&self) -> bool {
        !self.imports_failed.is_empty() || !self.conflicts.is_empty()
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let skipped: usize = self.skipped.values().sum();
        let _ = writeln!(out, "Mirror report");
        let _ = writeln!(
            out,
            "  orgs        {} created, {} already there",
            self.orgs_created.len(),
            self.orgs_adopted.len()
        );
        if !self.integrations_added.is_empty() {
            let _ = writeln!(
                out,
                "  integrations {} added ({})",
                self.integrations_added.len(),
                self.integrations_added.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "  imports     {} accepted, {} completed, {} failed{}",
            self.imports_accepted,
            self.imports_completed,
            self.imports_failed.len(),
            if self.imports_resumed > 0 {
                format!(", {} resumed from an earlier run", self.imports_resumed)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  projects    {} created ({} had none)",
            self.projects_created,
            crate::plan::repositories(self.zero_project_imports)
        );
        let _ = writeln!(out, "  skipped     {skipped}");
        for (reason, n) in &self.skipped {
            let _ = writeln!(out, "    {reason:<30}{n:>4}");
        }
        if !self.integrations_quieted.is_empty() {
            let _ = writeln!(
                out,
                "  quiet       PR checks and fix PRs off during the run, then back, in {}",
                self.integrations_quieted.join(", ")
            );
        }
        if !self.notifications_off.is_empty() {
            let _ = writeln!(
                out,
                "  notifications off in new orgs {}",
                self.notifications_off.join(", ")
            );
        }
        let _ = writeln!(out, "  conflicts   {}", self.conflicts.len());
        let requests: Vec<String> = self
            .requests
            .iter()
            .map(|(api, n)| format!("{api} {n}"))
            .collect();
        let _ = writeln!(out, "  requests    {}", requests.join(", "));
        for c in &self.conflicts {
            let _ = writeln!(out, "! {c}");
        }
        for f in &self.imports_failed {
            let _ = writeln!(out, "x {} into {}: {}", f.repository, f.org, f.message);
        }
        for w in &self.warnings {
            let _ = writeln!(out, "? {w}");
        }
        if self.interrupted {
            let _ = writeln!(
                out,
                "Interrupted: run the same command again to resume where it stopped."
            );
        }
        out
    }
}

/// Told what apply does, for progress displays. Every method has a no-op default.
pub trait ApplyObserver: Send + Sync {
    /// An org is ready (created or found).
    fn org_ready(&self, _name: &str, _created: bool) {}
    /// An import was accepted.
    fn import_accepted(&self, _repository: &str) {}
    /// An import ended (`None` when it completed, else the reason).
    fn import_finished(&self, _repository: &str, _failure: Option<&str>) {}
}

struct Silent;
impl ApplyObserver for Silent {}

/// The settings a quiet run changes: PR checks, dependency upgrade PRs and fix PRs (fresh and
/// backlog). Returns their values now (to put back) and the values that turn them off. Keys
/// the integration does not have are left alone.
fn quiet_settings(current: &Settings) -> (Settings, Settings) {
    let mut original = Settings::new();
    let mut quiet = Settings::new();
    for key in ["pullRequestTestEnabled", "dependencyAutoUpgradeEnabled"] {
        if let Some(value) = current.get(key) {
            original.insert(key.to_owned(), value.clone());
            quiet.insert(key.to_owned(), Value::Bool(false));
        }
    }
    if let Some(Value::Object(prs)) = current.get("autoRemediationPrs") {
        let mut off = prs.clone();
        for key in ["freshPrsEnabled", "backlogPrsEnabled"] {
            if off.contains_key(key) {
                off.insert(key.to_owned(), Value::Bool(false));
            }
        }
        original.insert("autoRemediationPrs".to_owned(), Value::Object(prs.clone()));
        quiet.insert("autoRemediationPrs".to_owned(), Value::Object(off));
    }
    (original, quiet)
}

/// Turns PR checks and fix PRs off for the integration `work` imports through, journaling
/// the values to put back first. Returns the key and what to restore, or `None` when there was
/// nothing to turn off or the settings could not be read (a warning says so).
async fn quiet(
    work: &Work,
    state: &JournalState,
    snyk: &dyn SnykPort,
    writer: &JournalWriter,
    report: &mut Report,
) -> Result<Option<((String, String), (String, Settings))>, Error> {
    let key = (work.org_id.clone(), work.integration_id.clone());
    // Quieted by a run that died: the settings now are the quiet ones; the journal has the
    // values to put back.
    let saved = state.quieted.get(&key).cloned();
    let current = match saved.clone() {
        Some(original) => original,
        None => match snyk
            .integration_settings(&work.org_id, &work.integration_id)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                report.warnings.push(format!(
                    "{}: the integration's settings could not be read, so PR checks and fix PRs stay as they are: {e}",
                    work.org_name
                ));
                return Ok(None);
            }
        },
    };
    let (original, off) = quiet_settings(&current);
    if off.is_empty() {
        return Ok(None);
    }
    if saved.is_none() {
        writer
            .append(Event::IntegrationQuieted {
                org_id: key.0.clone(),
                integration_id: key.1.clone(),
                original: original.clone(),
            })
            .await?;
    }
    // Restored later even if this fails: part of it may have been applied.
    if let Err(e) = snyk.update_integration_settings(&key.0, &key.1, &off).await {
        report.warnings.push(format!(
            "{}: PR checks and fix PRs could not be turned off: {e}",
            work.org_name
        ));
    }
    Ok(Some((key, (work.org_name.clone(), original))))
}

/// Puts an integration's settings back and journals it; a failure is a warning, and the
/// journal keeps the values for the next run.
async fn restore(
    (org_id, integration_id): (String, String),
    org_name: String,
    original: &Settings,
    snyk: &dyn SnykPort,
    writer: &JournalWriter,
    report: &mut Report,
) -> Result<(), Error> {
    match snyk
        .update_integration_settings(&org_id, &integration_id, original)
        .await
    {
        Ok(()) => {
            writer
                .append(Event::IntegrationRestored {
                    org_id,
                    integration_id,
                })
                .await?;
            report.integrations_quieted.push(org_name);
        }
        Err(e) => report.warnings.push(format!(
            "{org_name}: PR checks and fix PRs could not be put back ({e}); the next run tries again"
        )),
    }
    Ok(())
}

/// One import to carry out.
struct Work {
    org_id: String,
    org_name: String,
    integration_id: String,
    spec: ImportSpec,
    /// The job to resume waiting for, when an earlier run had it accepted.
    resume_job: Option<String>,
    /// An earlier run intended it and its outcome is unknown.
    dangling: bool,
}

enum Outcome {
    Completed {
        projects: u32,
        polls: u32,
        resumed: bool,
        accepted: bool,
    },
    Failed {
        message: String,
        accepted: bool,
        /// Snyk refused it because the org is at its project cap.
        project_cap: bool,
    },
    AlreadyThere,
}

/// Carries out `plan` with `snyk`, journaling into `journal`. Stops starting new imports when
/// `stop` turns true (in-flight ones finish), and reports `interrupted`.
///
/// # Errors
/// When the journal cannot be written or the group's orgs cannot be listed; failures of single
/// imports are in the report instead.
pub async fn apply(
    plan: &Plan,
    snyk: Arc<dyn SnykPort>,
    journal: &Journal,
    options: &ApplyOptions,
    observer: Option<Arc<dyn ApplyObserver>>,
    stop: Option<watch::Receiver<bool>>,
) -> Result<Report, Error> {
    let observer = observer.unwrap_or_else(|| Arc::new(Silent));
    let writer = journal.writer();
    let state = journal.state();
    let mut report = Report::default();
    let summary = plan.summary();
    report.skipped = summary.skipped.clone();
    let integration = plan.integration.api_name();
    let stopped = |stop: &Option<watch::Receiver<bool>>| stop.as_ref().is_some_and(|s| *s.borrow());

    writer
        .append(Event::RunStarted {
            imports: summary.imports,
        })
        .await?;

    for a in &plan.actions {
        if let Action::Conflict {
            org,
            reason,
            repositories,
        } = a
        {
            report.conflicts.push(format!(
                "{org}: {} ({} repositories held back)",
                reason.explain(org),
                repositories.len()
            ));
        }
    }

    // Orgs: never create one whose name exists. The group is listed once, which is also how an
    // intent left without an outcome by a crash is checked.
    let to_create: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateOrg { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut ready: HashMap<String, (String, Option<String>)> = HashMap::new();
    if !to_create.is_empty() {
        let existing = snyk.orgs(&plan.group_id).await?;
        let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
        for o in &existing {
            by_name
                .entry(o.name.as_str())
                .or_default()
                .push(o.id.as_str());
        }
        for name in to_create {
            if stopped(&stop) {
                report.interrupted = true;
                break;
            }
            let found = by_name.get(name).cloned().unwrap_or_default();
            let (org_id, created) = match found.as_slice() {
                [] => {
                    writer
                        .append(Event::OrgCreateIntent {
                            name: name.to_owned(),
                        })
                        .await?;
                    match snyk
                        .create_org(&plan.group_id, name, plan.template_org_id.as_deref())
                        .await
                    {
                        Ok(org) => (org.id, true),
                        Err(e) => {
                            report
                                .conflicts
                                .push(format!("{name}: the org could not be created: {e}"));
                            continue;
                        }
                    }
                }
                [one] => ((*one).to_owned(), false),
                many => {
                    report.conflicts.push(format!(
                        "{name}: {} orgs with this name exist now ({}); nothing imported into it",
                        many.len(),
                        many.join(", ")
                    ));
                    continue;
                }
            };
            let integration_id = snyk.integrations(&org_id).await?.get(integration).cloned();
            writer
                .append(Event::OrgReady {
                    name: name.to_owned(),
                    org_id: org_id.clone(),
                    integration_id: integration_id.clone(),
                    created,
                })
                .await?;
            observer.org_ready(name, created);
            if created && options.notifications_off_for_new_orgs {
                match snyk.disable_notifications(&org_id).await {
                    Ok(()) => report.notifications_off.push(name.to_owned()),
                    Err(e) => report.warnings.push(format!(
                        "{name}: notifications could not be turned off: {e}"
                    )),
                }
            }
            if created {
                report.orgs_created.push(name.to_owned());
            } else {
                report.orgs_adopted.push(name.to_owned());
            }
            ready.insert(name.to_owned(), (org_id, integration_id));
        }
    }

    // Integrations: added where the plan says so, unless one appeared meanwhile.
    let mut integration_of: HashMap<String, String> = ready
        .values()
        .filter_map(|(id, int)| int.clone().map(|i| (id.clone(), i)))
        .collect();
    for a in &plan.actions {
        let Action::AddIntegration { org, org_id } = a else {
            continue;
        };
        let Some(id) = org_id
            .clone()
            .or_else(|| ready.get(org).map(|(id, _)| id.clone()))
        else {
            continue;
        };
        if integration_of.contains_key(&id) {
            continue;
        }
        if let Some(existing) = snyk.integrations(&id).await?.get(integration).cloned() {
            integration_of.insert(id, existing);
            continue;
        }
        match snyk.add_bitbucket_integration(&id).await {
            Ok(Some(int)) => {
                writer
                    .append(Event::IntegrationAdded {
                        org_id: id.clone(),
                        integration_id: int.clone(),
                    })
                    .await?;
                report.integrations_added.push(org.clone());
                integration_of.insert(id, int);
            }
            Ok(None) => report.conflicts.push(format!(
                "{org}: no Snyk-side Bitbucket credentials to add its {integration} integration: set SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN"
            )),
            Err(e) => report
                .conflicts
                .push(format!("{org}: the {integration} integration could not be added: {e}")),
        }
    }
    for (name, (id, _)) in &ready {
        if !integration_of.contains_key(id) {
            report.conflicts.push(format!(
                "{name}: org {id} has no {integration} integration; nothing imported into it"
            ));
        }
    }

    // The imports, grouped by org, in plan order.
    let mut queues: BTreeMap<String, VecDeque<Work>> = BTreeMap::new();
    for a in &plan.actions {
        let Action::Import {
            org,
            workspace,
            repository,
            branch,
            files,
            exclusion_globs,
        } = a
        else {
            continue;
        };
        let (org_id, org_name, integration_id) = match org {
            OrgRef::Existing {
                id,
                name,
                integration_id,
            } => match integration_id
                .clone()
                .or_else(|| integration_of.get(id).cloned())
            {
                Some(int) => (id.clone(), name.clone(), int),
                None => continue,
            },
            OrgRef::New { name } => match ready
                .get(name)
                .and_then(|(id, _)| integration_of.get(id).map(|int| (id.clone(), int.clone())))
            {
                Some((id, int)) => (id, name.clone(), int),
                None => continue,
            },
        };
        let full = format!("{workspace}/{repository}");
        let known = state.imports.get(&(org_id.clone(), full.to_lowercase()));
        let (resume_job, dangling) = match known {
            Some(ImportState::Finished { status, .. }) if status == "complete" => continue,
            Some(ImportState::Accepted(job)) => (Some(job.clone()), false),
            Some(ImportState::Intended) => (None, true),
            _ => (None, false),
        };
        queues.entry(org_id.clone()).or_default().push_back(Work {
            org_id,
            org_name,
            integration_id,
            spec: ImportSpec {
                workspace: workspace.clone(),
                repository: repository.clone(),
                branch: Some(branch.clone()),
                files: files.clone(),
                exclusion_globs: exclusion_globs.clone(),
            },
            resume_job,
            dangling,
        });
    }

    // Quiet integrations: each org's integration is quieted just before its first import and
    // put back as soon as its last one has ended. What an earlier run quieted and did not put
    // back is restored too, whatever this run's options.
    let mut to_restore: BTreeMap<(String, String), (String, Settings)> = state
        .quieted
        .iter()
        .map(|(key, original)| (key.clone(), (key.0.clone(), original.clone())))
        .collect();
    let mut quiet_handled: HashSet<String> = HashSet::new();

    let grace = Duration::from_secs(options.resume_grace_seconds);
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    let mut total = 0usize;
    let mut tasks: JoinSet<(String, String, String, Result<Outcome, Error>)> = JoinSet::new();
    let org_ids: Vec<String> = queues.keys().cloned().collect();
    let mut cursor = 0usize;
    loop {
        // Fill free slots, taking orgs in turn so that one large org does not starve the others.
        let mut progressed = true;
        while progressed && total < options.concurrency && !stopped(&stop) {
            progressed = false;
            for step in 0..org_ids.len() {
                if total >= options.concurrency {
                    break;
                }
                let org_id = &org_ids[(cursor + step) % org_ids.len()];
                let busy = in_flight.get(org_id).copied().unwrap_or(0);
                if busy >= options.per_org_concurrency {
                    continue;
                }
                let Some(work) = queues.get_mut(org_id).and_then(VecDeque::pop_front) else {
                    continue;
                };
                if options.quiet_integrations
                    && quiet_handled.insert(org_id.clone())
                    && let Some((key, saved)) =
                        quiet(&work, state, snyk.as_ref(), &writer, &mut report).await?
                {
                    to_restore.insert(key, saved);
                }
                *in_flight.entry(org_id.clone()).or_default() += 1;
                total += 1;
                progressed = true;
                let snyk = snyk.clone();
                let writer = writer.clone();
                let observer = observer.clone();
                let integration = integration.to_owned();
                tasks.spawn(async move {
                    let repository = format!("{}/{}", work.spec.workspace, work.spec.repository);
                    let result = run_import(
                        &work,
                        snyk.as_ref(),
                        &writer,
                        &integration,
                        grace,
                        observer.as_ref(),
                    )
                    .await;
                    (work.org_id, work.org_name, repository, result)
                });
            }
            cursor = (cursor + 1) % org_ids.len().max(1);
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (org_id, org_name, repository, result) =
            joined.map_err(|e| Error::Config(format!("an import task failed: {e}")))?;
        total -= 1;
        if let Some(n) = in_flight.get_mut(&org_id) {
            *n -= 1;
        }
        match result? {
            Outcome::Completed {
                projects,
                polls,
                resumed,
                accepted,
            } => {
                report.imports_completed += 1;
                report.projects_created += u64::from(projects);
                report.polls += u64::from(polls);
                if accepted {
                    report.imports_accepted += 1;
                }
                if resumed {
                    report.imports_resumed += 1;
                }
                if projects == 0 {
                    report.zero_project_imports += 1;
                }
                observer.import_finished(&repository, None);
            }
            Outcome::AlreadyThere => {
                report.imports_resumed += 1;
                observer.import_finished(&repository, None);
            }
            Outcome::Failed {
                message,
                accepted,
                project_cap,
            } => {
                if accepted {
                    report.imports_accepted += 1;
                }
                observer.import_finished(&repository, Some(&message));
                if project_cap {
                    // Every further import into this org would be refused the same way: the
                    // rest of its queue is reported, not posted.
                    for work in queues.remove(&org_id).unwrap_or_default() {
                        let held = format!("{}/{}", work.spec.workspace, work.spec.repository);
                        let why = format!(
                            "not posted: org {org_name} reached Snyk's project cap ({message})"
                        );
                        observer.import_finished(&held, Some(&why));
                        report.imports_failed.push(FailedImport {
                            repository: held,
                            org: org_name.clone(),
                            message: why,
                        });
                    }
                }
                report.imports_failed.push(FailedImport {
                    repository,
                    org: org_name,
                    message,
                });
            }
        }
        // After the outcome, so that an org whose queue the project cap just emptied counts.
        let org_done = in_flight.get(&org_id).is_none_or(|n| *n == 0)
            && queues.get(&org_id).is_none_or(VecDeque::is_empty);
        if org_done {
            let keys: Vec<_> = to_restore
                .keys()
                .filter(|(o, _)| *o == org_id)
                .cloned()
                .collect();
            for key in keys {
                if let Some((name, original)) = to_restore.remove(&key) {
                    restore(key, name, &original, snyk.as_ref(), &writer, &mut report).await?;
                }
            }
        }
    }
    if stopped(&stop) && queues.values().any(|q| !q.is_empty()) {
        report.interrupted = true;
    }
    for (key, (name, original)) in to_restore {
        restore(key, name, &original, snyk.as_ref(), &writer, &mut report).await?;
    }
    report.integrations_quieted.sort();
    if !report.interrupted {
        writer.append(Event::RunFinished).await?;
    }
    report.requests.insert("snyk".to_owned(), snyk.requests());
    Ok(report)
}

async fn run_import(
    work: &Work,
    snyk: &dyn SnykPort,
    writer: &JournalWriter,
    integration: &str,
    grace: Duration,
    observer: &dyn ApplyObserver,
) -> Result<Outcome, Error> {
    let repository = format!("{}/{}", work.spec.workspace, work.spec.repository);
    let key = repository.to_lowercase();
    let mut resumed = false;
    let job = match &work.resume_job {
        Some(job) => {
            resumed = true;
            job.clone()
        }
        None => {
            if work.dangling {
                // An earlier run meant to post this import and stopped before recording
                // Snyk's answer: look for the target before posting it again.
                resumed = true;
                // Look now and, after the grace period, once more (a job accepted just before
                // the crash may not have made its target yet).
                let checks = if grace.is_zero() { 1 } else { 2 };
                for check in 0..checks {
                    if check > 0 {
                        tokio::time::sleep(grace).await;
                    }
                    if target_exists(snyk, &work.org_id, integration, &key).await? {
                        writer
                            .append(finished(
                                work,
                                &repository,
                                "complete",
                                0,
                                vec!["found in Snyk after an interrupted run".to_owned()],
                            ))
                            .await?;
                        return Ok(Outcome::AlreadyThere);
                    }
                }
            }
            writer
                .append(Event::ImportIntent {
                    org_id: work.org_id.clone(),
                    repository: repository.clone(),
                })
                .await?;
            match snyk
                .import(&work.org_id, &work.integration_id, &work.spec)
                .await
            {
                Ok(job) => {
                    writer
                        .append(Event::ImportAccepted {
                            org_id: work.org_id.clone(),
                            repository: repository.clone(),
                            job: job.clone(),
                        })
                        .await?;
                    observer.import_accepted(&repository);
                    job
                }
                Err(e) => {
                    let message = e.to_string();
                    writer
                        .append(Event::ImportFailed {
                            org_id: work.org_id.clone(),
                            repository: repository.clone(),
                            message: message.clone(),
                            project_cap: e.is_project_cap(),
                        })
                        .await?;
                    return Ok(Outcome::Failed {
                        message,
                        accepted: false,
                        project_cap: e.is_project_cap(),
                    });
                }
            }
        }
    };
    let accepted = work.resume_job.is_none();
    match snyk.wait(&job).await {
        Ok(outcome) => {
            writer
                .append(finished(
                    work,
                    &repository,
                    &outcome.status,
                    outcome.projects,
                    outcome.messages.clone(),
                ))
                .await?;
            if outcome.is_complete() {
                Ok(Outcome::Completed {
                    projects: outcome.projects,
                    polls: outcome.polls,
                    resumed,
                    accepted,
                })
            } else {
                let reason = if outcome.messages.is_empty() {
                    format!("the import job ended {}", outcome.status)
                } else {
                    format!(
                        "the import job ended {}: {}",
                        outcome.status,
                        outcome.messages.join("; ")
                    )
                };
                Ok(Outcome::Failed {
                    message: reason,
                    accepted,
                    project_cap: false,
                })
            }
        }
        // The job stays accepted in the journal: the next run polls it instead of posting.
        Err(e) => Ok(Outcome::Failed {
            message: format!("could not follow the import job: {e}"),
            accepted,
            project_cap: false,
        }),
    }
}

fn finished(
    work: &Work,
    repository: &str,
    status: &str,
    projects: u32,
    messages: Vec<String>,
) -> Event {
    Event::ImportFinished {
        org_id: work.org_id.clone(),
        repository: repository.to_owned(),
        status: status.to_owned(),
        projects,
        messages,
    }
}

async fn target_exists(
    snyk: &dyn SnykPort,
    org_id: &str,
    integration: &str,
    key: &str,
) -> Result<bool, Error> {
    let names: BTreeSet<String> = snyk
        .imported(org_id, integration)
        .await?
        .into_iter()
        .map(|n| n.to_lowercase())
        .collect();
    Ok(names.contains(key))
}
