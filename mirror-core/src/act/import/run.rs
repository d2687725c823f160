//! Many imports through one scheduler, each by the protocol, with the settings guard around
//! each org's imports and every outcome counted in the report.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::act::import::quiet::SettingsGuard;
use crate::act::import::scheduler::Scheduler;
use crate::act::import::{ImportContext, ImportOutcome, ImportTask, import_gated};
use crate::act::journal::Journal;
use crate::act::report::{FailedImport, Report};
use crate::config::ApplyOptions;
use crate::error::Error;
use crate::ids::OrgId;

type Joined = (OrgId, ImportTask, Result<ImportOutcome, Error>, usize);

/// Runs `tasks` (in their order within each org) by the protocol, at most
/// `options.concurrency` at once and `options.per_org_concurrency` per org (when set), orgs taken in
/// turn; counts each outcome into `report`. With `options.quiet_integrations` each org's
/// integration is quiet while its imports run; whatever the journal says an earlier run left quiet
/// is put back in any case. Starts nothing new once `stop` turns true (what is in flight
/// finishes) and marks the report interrupted.
///
/// Once Snyk refuses an import because the org is at its project cap, the rest of that org's
/// queue is reported, not posted.
///
/// # Errors
/// When the journal cannot be written, or Snyk refuses the credentials (every further import
/// would be refused too; what was accepted is journaled and resumes on the next run).
pub async fn run_imports(
    tasks: Vec<ImportTask>,
    ctx: &ImportContext,
    journal: &Journal,
    options: &ApplyOptions,
    stop: Option<&watch::Receiver<bool>>,
    report: &mut Report,
) -> Result<(), Error> {
    let queued = tasks.into_iter().map(|t| (t.org_id.clone(), t)).collect();
    run_queued(
        queued,
        |_, task| Some(task),
        ctx,
        journal,
        options,
        stop,
        report,
    )
    .await
    .map(|_| ())
}

/// Tasks started beyond the imports in flight: enough to keep every slot's next post ready.
fn lookahead(concurrency: usize) -> usize {
    concurrency.div_ceil(3)
}

/// As [`run_imports`], with each task made only when its turn comes (`make`, given the entry's
/// org; `None` when there is nothing to do after all): a plan of 100,000 imports queues small entries, not 100,000
/// tasks at once. Returns how many queued entries made no task.
pub(crate) async fn run_queued<Q: Send + 'static>(
    queued: Vec<(OrgId, Q)>,
    mut make: impl FnMut(&OrgId, Q) -> Option<ImportTask>,
    ctx: &ImportContext,
    journal: &Journal,
    options: &ApplyOptions,
    stop: Option<&watch::Receiver<bool>>,
    report: &mut Report,
) -> Result<usize, Error> {
    let stopped = || stop.is_some_and(|s| *s.borrow());
    let mut nothing_to_do = 0;
    let mut queues: BTreeMap<OrgId, VecDeque<Q>> = BTreeMap::new();
    for (org, q) in queued {
        queues.entry(org).or_default().push_back(q);
    }
    let per_org = options.per_org_concurrency.unwrap_or(usize::MAX);
    // A few tasks more than the imports in flight, so that each one's look-up before its post
    // is done while the slots are busy; the gate keeps the jobs in Snyk to `concurrency`.
    let concurrency = options.concurrency.max(1);
    let in_flight = Arc::new(Semaphore::new(concurrency));
    let mut scheduler = Scheduler::new(queues, concurrency + lookahead(concurrency), per_org);
    let mut guard =
        journal.with_state(|state| SettingsGuard::new(options.quiet_integrations, state));
    let mut running: JoinSet<Joined> = JoinSet::new();
    loop {
        while !stopped() {
            let Some((org, queued)) = scheduler.next() else {
                break;
            };
            let Some(task) = make(&org, queued) else {
                nothing_to_do += 1;
                scheduler.finished(&org);
                continue;
            };
            guard
                .before_import((&org, &task.org_name), &task.integration_id, ctx, report)
                .await?;
            let ctx = ctx.clone();
            let gate = in_flight.clone();
            running.spawn(async move {
                let outcome = import_gated(&task, &ctx, Some(&gate)).await;
                let tagged = match &outcome {
                    Ok(outcome) => tag_new_projects(&task, outcome, &ctx).await,
                    Err(_) => 0,
                };
                (org, task, outcome, tagged)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (org, task, outcome, tagged) =
            joined.map_err(|e| Error::Internal(format!("an import task failed: {e}")))?;
        report.metadata_set += tagged;
        scheduler.finished(&org);
        let outcome = outcome?.auth_error()?;
        if count(report, &task, &outcome, ctx) {
            // Every further import into this org would be refused the same way.
            let cap = outcome.failure().unwrap_or_default();
            for held in scheduler
                .drain(&org)
                .into_iter()
                .filter_map(|queued| make(&org, queued))
            {
                let why = format!(
                    "not posted: org {} reached Snyk's project cap ({cap})",
                    held.org_name
                );
                ctx.observer.import_finished(&held.repository(), Some(&why));
                report.imports_failed.push(FailedImport {
                    repository: held.repository(),
                    org: held.org_name.clone(),
                    message: why,
                });
            }
        }
        // After the outcome, so that an org whose queue the project cap just emptied counts.
        if scheduler.org_done(&org) {
            guard.org_done(&org, ctx, report).await?;
        }
    }
    if stopped() && scheduler.has_queued() {
        report.interrupted = true;
    }
    guard.finish(ctx, report).await?;
    Ok(nothing_to_do)
}

/// Gives each project an import created what its `[[metadata]]` rule sets (tags refused by
/// Snyk are left out); returns how many projects were set. A failure is logged: the next
/// sync's plan shows what is still to set.
async fn tag_new_projects(
    task: &ImportTask,
    outcome: &ImportOutcome,
    ctx: &ImportContext,
) -> usize {
    let (Some(settings), ImportOutcome::Ended { outcome: job, .. }) = (&task.metadata, outcome)
    else {
        return 0;
    };
    let mut set = 0;
    for id in job
        .project_results
        .iter()
        .filter_map(|p| p.project_id.as_ref())
    {
        // A new project's tags are all new: a refusal writes the rest without them.
        let tags = !settings.tags.is_empty();
        let written = crate::decide::metadata::write_settings(
            ctx.snyk.as_ref(),
            &task.org_id,
            id,
            settings,
            tags,
        )
        .await;
        match written {
            Ok(_) => set += 1,
            Err(e) => {
                tracing::warn!(repository = %task.repository(), project = %id, error = %e, "the tags and attributes of a new project could not be set; the next sync tries again")
            }
        }
    }
    set
}

/// Counts one outcome into the report and tells the observer; returns whether Snyk refused it
/// for the org's project cap.
fn count(
    report: &mut Report,
    task: &ImportTask,
    outcome: &ImportOutcome,
    ctx: &ImportContext,
) -> bool {
    let repository = task.repository();
    let failure = outcome.failure();
    let (accepted, project_cap) = match outcome {
        ImportOutcome::Ended {
            outcome: job,
            accepted,
            resumed,
            ..
        } => {
            report.polls += u64::from(job.polls);
            if job.is_complete() {
                report.imports_completed += 1;
                report.projects_created += u64::from(job.projects);
                if *resumed {
                    report.imports_resumed += 1;
                }
                if job.projects == 0 {
                    report.zero_project_imports += 1;
                }
            }
            (*accepted, false)
        }
        ImportOutcome::AlreadyThere => {
            report.imports_resumed += 1;
            (false, false)
        }
        ImportOutcome::FoundBeforePost => {
            report.imports_found_in_snyk += 1;
            (false, false)
        }
        ImportOutcome::Refused(e) => (false, e.is_project_cap()),
        ImportOutcome::Unfollowed { accepted, .. } => (*accepted, false),
    };
    if accepted {
        report.imports_accepted += 1;
    }
    ctx.observer.import_done(task, outcome);
    ctx.observer
        .import_finished(&repository, failure.as_deref());
    if let Some(message) = failure {
        report.imports_failed.push(FailedImport {
            repository,
            org: task.org_name.clone(),
            message,
        });
    }
    project_cap
}
