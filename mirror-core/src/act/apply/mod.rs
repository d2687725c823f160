//! Carrying out a plan, in stages: the plan's conflicts into the report, then the orgs
//! ([`orgs`]), their integrations ([`integrations`]), and the imports, which go through the one
//! import protocol and scheduler of [`crate::act::import`] with the settings guard around each org.
//! Every remote step is journaled before and after, so that a rerun after a crash neither
//! creates an org twice nor posts an accepted import again.

pub(crate) mod carry;
mod drift;
mod integrations;
pub(crate) mod orgs;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::act::import::{ApplyObserver, Silent};
use crate::act::import::{ImportContext, ImportTask, run_queued};
use crate::act::journal::{Event, Journal, JournalState, JournalWriter};
use crate::act::report::{Report, Uncertainty};
use crate::config::ApplyOptions;
use crate::decide::conflict::Conflict;
use crate::decide::plan::{Action, OrgRef, Plan};
use crate::error::Error;
use crate::ids::{IntegrationId, OrgId};
use crate::read::ports::{ImportSpec, SnykPort};

use self::integrations::IntegrationOf;
use self::orgs::Ready;

/// What the stages of one apply share.
pub(crate) struct Stage<'a> {
    snyk: Arc<dyn SnykPort>,
    writer: JournalWriter,
    options: &'a ApplyOptions,
    stop: Option<&'a watch::Receiver<bool>>,
    report: Report,
}

impl Stage<'_> {
    /// Records that `org` could not be made ready at `step`: its imports are not attempted.
    fn org_failed(
        &mut self,
        plan: &Plan,
        org: &str,
        step: crate::act::report::OrgStep,
        e: &crate::error::Error,
    ) {
        self.report
            .org_failures
            .push(crate::act::report::OrgFailure {
                org: org.to_owned(),
                step,
                message: e.to_string(),
                held_back: held_back(plan, org),
            });
    }
}

/// The imports the plan sends into the org named `org`.
pub(crate) fn held_back(plan: &Plan, org: &str) -> usize {
    plan.actions
        .iter()
        .filter(|a| matches!(a, Action::Import(i) if i.org.name() == org))
        .count()
}

/// The plan's own conflicts, as the report counts them.
fn planned_conflicts(plan: &Plan) -> impl Iterator<Item = Conflict> + '_ {
    plan.actions.iter().filter_map(|a| match a {
        Action::Conflict {
            org,
            reason,
            repositories,
        } => Some(Conflict {
            org: org.clone(),
            reason: reason.clone(),
            held_back: repositories.len(),
        }),
        _ => None,
    })
}

/// A run's id: when it started (UTC, to the second) and four hex digits of the sub-second
/// time, so that two runs started in the same second differ: `20261203-054012-3fa9`.
fn run_id(now: std::time::SystemTime) -> String {
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{date}-{time}-{:04x}", since.subsec_nanos() >> 16 & 0xffff)
}

/// What the plan names as uncertain, as the report lists it.
fn planned_uncertainties(plan: &Plan) -> impl Iterator<Item = Uncertainty> + '_ {
    plan.actions.iter().filter_map(|a| match a {
        Action::Uncertain {
            uuid,
            repository,
            why,
            ..
        } => Some(Uncertainty {
            subject: repository.clone(),
            uuid: uuid.clone(),
            why: why.clone(),
        }),
        Action::WorkspaceUnread { workspace, why, .. } => Some(Uncertainty {
            subject: format!("workspace {workspace}"),
            uuid: None,
            why: why.clone(),
        }),
        _ => None,
    })
}

/// The plan's imports as queue entries: the org, and the action's index with the integration
/// it goes through. Imports into an org that is not usable (no id, no integration) are left
/// out, as their conflict or failure is already reported (with the imports it holds back).
fn import_queue(
    plan: &Plan,
    ready: &Ready,
    integration_of: &IntegrationOf,
) -> Vec<(OrgId, (usize, IntegrationId))> {
    plan.actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let Action::Import(import) = a else {
                return None;
            };
            let (org_id, int) = match &import.org {
                OrgRef::Existing {
                    id, integration_id, ..
                } => integration_id
                    .clone()
                    .or_else(|| integration_of.get(id).cloned())
                    .map(|int| (id.clone(), int)),
                OrgRef::New { name } => ready.get(name).and_then(|(id, _)| {
                    integration_of.get(id).map(|int| (id.clone(), int.clone()))
                }),
            }?;
            Some((org_id, (i, int)))
        })
        .collect()
}

/// The task of a queued import, resuming where the journal says it stopped; `None` when the
/// journal shows it completed.
fn import_task(
    plan: &Plan,
    org_id: &OrgId,
    (i, integration_id): (usize, IntegrationId),
    state: &JournalState,
) -> Option<ImportTask> {
    let Some(Action::Import(import)) = plan.actions.get(i) else {
        return None;
    };
    let crate::decide::plan::ImportAction {
        org,
        workspace,
        repository,
        branch,
        files,
        exclusion_globs,
        uuid,
        workspace_uuid,
        restore,
        metadata,
        ..
    } = &**import;
    let spec = ImportSpec {
        workspace: workspace.clone(),
        repository: repository.clone(),
        branch: Some(branch.clone()),
        files: files.clone(),
        exclusion_globs: exclusion_globs.clone(),
    };
    let (org_id, name) = (org_id.clone(), org.name().to_owned());
    let task = if *restore {
        Some(ImportTask::again(org_id, name, integration_id, spec, state))
    } else {
        ImportTask::resuming(org_id, name, integration_id, spec, state)
    };
    task.map(|t| {
        t.identified(uuid.clone(), workspace_uuid.clone())
            .with_metadata(metadata.clone())
    })
}

/// Carries out `plan` with `snyk`, journaling into `journal`. Stops starting new work when
/// `stop` turns true (imports in flight finish), and reports `interrupted`.
///
/// Prefer [`crate::Mirror::apply`], which holds the journal, the options, the observer and the
/// stop signal for you.
///
/// # Errors
/// When the journal cannot be written, the group's orgs cannot be listed, or Snyk refuses the
/// credentials; failures of single imports are in the report instead.
pub async fn apply(
    plan: &Plan,
    snyk: Arc<dyn SnykPort>,
    journal: &Journal,
    options: &ApplyOptions,
    observer: Option<Arc<dyn ApplyObserver>>,
    stop: Option<watch::Receiver<bool>>,
) -> Result<Report, Error> {
    apply_holding(plan, snyk, journal, options, observer, stop, None).await
}

/// What a targeted reconcile holds from its plan until its orgs are ready: the setup lock,
/// and what to do when it lets go (the event loop frees the round's slot: what is left is
/// waiting on imports).
pub(crate) struct SetupHold<'a> {
    pub(crate) _guard: tokio::sync::MutexGuard<'a, ()>,
    pub(crate) on_release: Option<Box<dyn FnOnce() + Send + 'a>>,
}

impl Drop for SetupHold<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.on_release.take() {
            f();
        }
    }
}

/// [`apply`], holding `setup` (a lock over the orgs' setup) until the orgs and their
/// integrations are ready: concurrent targeted reconciles plan and create orgs one at a time
/// (two could otherwise both create an org of the same name), and import side by side.
pub(crate) async fn apply_holding(
    plan: &Plan,
    snyk: Arc<dyn SnykPort>,
    journal: &Journal,
    options: &ApplyOptions,
    observer: Option<Arc<dyn ApplyObserver>>,
    stop: Option<watch::Receiver<bool>>,
    setup: Option<SetupHold<'_>>,
) -> Result<Report, Error> {
    let observer = observer.unwrap_or_else(|| Arc::new(Silent));
    // Settings are changed only where the plan shows it, whatever the options say.
    let options = &ApplyOptions {
        quiet_integrations: options.quiet_integrations && plan.settings.quiet_integrations,
        notifications_off_for_new_orgs: options.notifications_off_for_new_orgs
            && plan.settings.notifications_off_for_new_orgs,
        ..options.clone()
    };
    let summary = plan.summary();
    let mut stage = Stage {
        snyk: snyk.clone(),
        writer: journal.writer(),
        options,
        stop: stop.as_ref(),
        report: Report {
            skipped: summary.skipped.clone(),
            conflicts: planned_conflicts(plan).collect(),
            uncertain: planned_uncertainties(plan).collect(),
            differences: plan
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Differs(d) => Some((**d).clone()),
                    _ => None,
                })
                .collect(),
            run: Some(run_id(std::time::SystemTime::now())),
            ..Report::default()
        },
    };
    stage
        .writer
        .append(Event::RunStarted {
            imports: summary.imports,
            run: stage.report.run.clone(),
        })
        .await?;
    drift::rename_orgs(plan, &mut stage).await?;
    drift::track(plan, &mut stage).await?;
    let ready = orgs::create(plan, &mut stage, observer.as_ref()).await?;
    let integration_of = integrations::ensure(plan, &ready, &mut stage).await?;
    drop(setup);
    let queued = import_queue(plan, &ready, &integration_of);
    // Imports into orgs this run could not make ready were not attempted; those held back by
    // a conflict are counted with it.
    let not_ready: usize = stage.report.org_failures.iter().map(|f| f.held_back).sum();
    let queued_len = queued.len();
    let ended = |r: &Report| r.imports_accepted + r.imports_failed.len() + r.imports_resumed;
    let ended_before = ended(&stage.report);
    let ctx = ImportContext {
        snyk,
        writer: stage.writer.clone(),
        grace: Duration::from_secs(options.resume_grace_seconds),
        observer,
    };
    // Each task is made when its turn comes, from the journal as it is then.
    let make =
        |org_id: &OrgId, entry| journal.with_state(|state| import_task(plan, org_id, entry, state));
    let nothing_to_do = run_queued(
        queued,
        make,
        &ctx,
        journal,
        options,
        stop.as_ref(),
        &mut stage.report,
    )
    .await?;
    let to_run = queued_len - nothing_to_do;
    let started = ended(&stage.report).saturating_sub(ended_before);
    stage.report.imports_not_attempted = not_ready + to_run.saturating_sub(started);
    if !stage.report.interrupted {
        drift::follow(plan, journal, &mut stage).await?;
    }
    let mut report = stage.report;
    if !report.interrupted {
        ctx.writer.append(Event::RunFinished).await?;
    }
    report
        .requests
        .insert("snyk".to_owned(), ctx.snyk.requests());
    Ok(report)
}
