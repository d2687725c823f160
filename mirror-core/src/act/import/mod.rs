//! The import protocol: the one way this crate posts an import and follows it, so that a run
//! killed at any point and run again neither loses an import nor posts one twice.
//!
//! For each repository:
//!
//! 1. **intent**: `import-intent` is journaled (on disk) before the post;
//! 2. **post**: Snyk answers with a job, or refuses (`import-failed` is journaled);
//! 3. **accepted**: `import-accepted` with the job is journaled;
//! 4. **poll** until the job ends;
//! 5. **finished**: `import-finished` with the status and the projects is journaled.
//!
//! A rerun reads where each import stopped ([`Resume`]): an accepted job is polled, not posted
//! again; an intent without an outcome (killed between steps 1 and 3) is checked against the
//! org's targets, now and after a grace period, before it is posted again.
//!
//! [`import_one`] is that sequence for one repository; [`run_imports`] runs many through one
//! scheduler (a cap overall and per org, orgs taken in turn). `apply`, snyk-api-import's
//! `import` command and every later operation that needs intent and outcome journaled go
//! through them.

mod observer;
mod quiet;
mod run;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::act::journal::operation::journaled;
use crate::act::journal::{Event, ImportState, JournalState, JournalWriter};
use crate::error::Error;
use crate::ids::{IntegrationId, OrgId, RepoUuid, WorkspaceUuid};
use crate::read::ports::{ImportSpec, ImportStatus, JobHandle, JobOutcome, SnykPort};

pub use observer::ApplyObserver;
pub(crate) use observer::Silent;
pub use run::run_imports;
pub(crate) use run::run_queued;

/// Where an import stood before this run, according to the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Never tried, or refused before: post it.
    Fresh,
    /// Intended by a run that stopped before Snyk's answer was recorded: look for its target
    /// before posting it again.
    Dangling,
    /// Accepted by an earlier run: follow this job.
    Accepted(JobHandle),
}

/// One repository to import into one org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportTask {
    /// The org.
    pub org_id: OrgId,
    /// The org's name, for reports.
    pub org_name: String,
    /// The integration to import through.
    pub integration_id: IntegrationId,
    /// What to import.
    pub spec: ImportSpec,
    /// Where it stood before this run.
    pub resume: Resume,
    /// The repository's Bitbucket uuid, when known: a completed import records it, so that a
    /// later rename or move is followed.
    pub uuid: Option<RepoUuid>,
    /// Its workspace's uuid, when known.
    pub workspace_uuid: Option<WorkspaceUuid>,
    /// What a `[[metadata]]` rule sets on each project the import creates.
    pub metadata: Option<crate::read::ports::ProjectSettings>,
}

impl ImportTask {
    /// A task for `spec` into the org, resuming where the journal (`state`) says it stopped;
    /// `None` when the journal shows it completed there.
    pub fn resuming(
        org_id: OrgId,
        org_name: String,
        integration_id: IntegrationId,
        spec: ImportSpec,
        state: &JournalState,
    ) -> Option<Self> {
        let key = (
            org_id.clone(),
            format!("{}/{}", spec.workspace, spec.repository).to_lowercase(),
        );
        if state.completed.contains_key(&key) {
            return None;
        }
        Some(Self::again(org_id, org_name, integration_id, spec, state))
    }

    /// A task for `spec` into the org even though the journal shows it completed there (its
    /// target was removed in Snyk, and the run restores it), resuming an intent or a job the
    /// journal shows in flight. A fresh post is preceded by a look for the target by name, so
    /// a restore applied twice imports once.
    pub fn again(
        org_id: OrgId,
        org_name: String,
        integration_id: IntegrationId,
        spec: ImportSpec,
        state: &JournalState,
    ) -> Self {
        let key = (
            org_id.clone(),
            format!("{}/{}", spec.workspace, spec.repository).to_lowercase(),
        );
        let resume = match state.imports.get(&key) {
            Some(ImportState::Accepted(job)) => Resume::Accepted(job.clone()),
            Some(ImportState::Intended) => Resume::Dangling,
            _ => Resume::Fresh,
        };
        Self {
            org_id,
            org_name,
            integration_id,
            spec,
            resume,
            uuid: None,
            workspace_uuid: None,
            metadata: None,
        }
    }

    /// The same task, setting `metadata` on each project it creates.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Option<crate::read::ports::ProjectSettings>) -> Self {
        self.metadata = metadata;
        self
    }

    /// The same task, knowing the repository's and its workspace's uuids.
    #[must_use]
    pub fn identified(
        mut self,
        uuid: Option<RepoUuid>,
        workspace_uuid: Option<WorkspaceUuid>,
    ) -> Self {
        self.uuid = uuid;
        self.workspace_uuid = workspace_uuid;
        self
    }

    /// `workspace/repository`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.spec.workspace, self.spec.repository)
    }
}

/// How one import ended.
#[derive(Debug)]
pub enum ImportOutcome {
    /// The job ended (see [`JobOutcome::is_complete`]).
    Ended {
        /// The job.
        job: JobHandle,
        /// How it ended.
        outcome: JobOutcome,
        /// Whether this run posted it (else an earlier run had).
        accepted: bool,
        /// Whether an earlier, interrupted run had started it.
        resumed: bool,
    },
    /// An earlier, interrupted run's import was found in Snyk; nothing was posted.
    AlreadyThere,
    /// Snyk had the target when this run was about to post it (another process imported it
    /// meanwhile); nothing was posted.
    FoundBeforePost,
    /// Snyk refused to accept it.
    Refused(Error),
    /// Accepted, but the job could not be followed; the journal keeps it accepted, so the next
    /// run follows it instead of posting it again.
    Unfollowed {
        /// Whether this run posted it.
        accepted: bool,
        /// Why.
        error: Error,
    },
}

impl ImportOutcome {
    /// Why it did not complete, in words; `None` when it did (or was already there).
    pub fn failure(&self) -> Option<String> {
        match self {
            Self::Ended { outcome, .. } if outcome.is_complete() => None,
            Self::Ended { outcome, .. } => Some(if outcome.messages.is_empty() {
                format!("the import job ended {}", status_word(&outcome.status))
            } else {
                format!(
                    "the import job ended {}: {}",
                    status_word(&outcome.status),
                    outcome.messages.join("; ")
                )
            }),
            Self::AlreadyThere | Self::FoundBeforePost => None,
            Self::Refused(e) => Some(e.to_string()),
            Self::Unfollowed { error, .. } => {
                Some(format!("could not follow the import job: {error}"))
            }
        }
    }

    /// The error that ended it, when the credentials were refused: every further import would
    /// be refused the same way.
    pub fn auth_error(self) -> Result<Self, Error> {
        match self {
            Self::Refused(e) | Self::Unfollowed { error: e, .. } if e.is_auth() => Err(e),
            other => Ok(other),
        }
    }
}

fn status_word(status: &ImportStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What [`import_one`] works with.
#[derive(Clone)]
pub struct ImportContext {
    /// The Snyk side.
    pub snyk: Arc<dyn SnykPort>,
    /// The journal.
    pub writer: JournalWriter,
    /// How long after a crash to look again for the target of a dangling intent.
    pub grace: Duration,
    /// Told what happens.
    pub observer: Arc<dyn ApplyObserver>,
}

/// Carries out the protocol for one repository (see the module's documentation).
///
/// # Errors
/// Only when the journal cannot be written or a target check fails; Snyk refusing the import
/// or the job failing are outcomes.
pub async fn import_one(task: &ImportTask, ctx: &ImportContext) -> Result<ImportOutcome, Error> {
    import_gated(task, ctx, None).await
}

/// [`import_one`] with the job's time in Snyk (from its post, or its resumption, until it is
/// seen ended) inside one permit of `in_flight`: the look-up before the post and what follows
/// the job happen outside, so they never hold an import slot.
pub(crate) async fn import_gated(
    task: &ImportTask,
    ctx: &ImportContext,
    in_flight: Option<&Semaphore>,
) -> Result<ImportOutcome, Error> {
    let (job, accepted, held) = match &task.resume {
        Resume::Accepted(job) => (job.clone(), false, permit(in_flight).await),
        Resume::Dangling if found_after_crash(task, ctx).await? => {
            let found = found_in_snyk("found in Snyk after an interrupted run");
            ctx.writer.append(finished(task, &found)).await?;
            return Ok(ImportOutcome::AlreadyThere);
        }
        // Another process (a second state directory, a person) may have imported it since
        // the plan was made: looked for by name just before the post.
        Resume::Fresh if in_snyk_now(task, ctx).await? => {
            let found = found_in_snyk("found in Snyk just before its post");
            ctx.writer.append(finished(task, &found)).await?;
            return Ok(ImportOutcome::FoundBeforePost);
        }
        Resume::Fresh | Resume::Dangling => {
            let held = permit(in_flight).await;
            match post(task, ctx).await? {
                Ok(job) => (job, true, held),
                Err(refused) => return Ok(ImportOutcome::Refused(refused)),
            }
        }
    };
    let resumed = task.resume != Resume::Fresh;
    let follow = async {
        let waited = ctx.snyk.wait(&job).await;
        drop(held);
        waited
    };
    let waited = journaled(&ctx.writer, None, follow, |waited| {
        waited.as_ref().ok().map(|outcome| finished(task, outcome))
    })
    .await?;
    match waited {
        Ok(outcome) => Ok(ImportOutcome::Ended {
            job,
            outcome,
            accepted,
            resumed,
        }),
        Err(error) => Ok(ImportOutcome::Unfollowed { accepted, error }),
    }
}

/// A slot of `gate`, when there is one (a closed gate lets the job through).
async fn permit(gate: Option<&Semaphore>) -> Option<SemaphorePermit<'_>> {
    match gate {
        Some(g) => g.acquire().await.ok(),
        None => None,
    }
}

/// Steps 1 to 3: intent, post, accepted (or refused). The outer error is the journal's.
async fn post(task: &ImportTask, ctx: &ImportContext) -> Result<Result<JobHandle, Error>, Error> {
    let repository = task.repository();
    let org_id = || task.org_id.clone();
    let posted = journaled(
        &ctx.writer,
        Some(Event::ImportIntent {
            org_id: org_id(),
            repository: repository.clone(),
        }),
        ctx.snyk
            .import(&task.org_id, &task.integration_id, &task.spec),
        |answer| {
            Some(match answer {
                Ok(job) => Event::ImportAccepted {
                    org_id: org_id(),
                    repository: repository.clone(),
                    job: job.clone(),
                },
                Err(e) => Event::ImportFailed {
                    org_id: org_id(),
                    repository: repository.clone(),
                    message: e.to_string(),
                    project_cap: e.is_project_cap(),
                },
            })
        },
    )
    .await?;
    if let Ok(job) = &posted {
        ctx.observer.import_accepted(&repository);
        ctx.observer.job_accepted(task, job);
    }
    Ok(posted)
}

/// A completed outcome for a target found in Snyk without a post.
fn found_in_snyk(message: &str) -> JobOutcome {
    JobOutcome {
        status: ImportStatus::Complete,
        projects: 0,
        messages: vec![message.to_owned()],
        polls: 0,
        project_results: Vec::new(),
    }
}

/// Whether the org has a Bitbucket target of the task's name now (one filtered listing).
async fn in_snyk_now(task: &ImportTask, ctx: &ImportContext) -> Result<bool, Error> {
    let named = [task.repository()];
    let found =
        crate::read::inventory::bitbucket_targets_named(ctx.snyk.as_ref(), &task.org_id, &named)
            .await?;
    Ok(!found.is_empty())
}

/// Whether the target of a dangling intent is in Snyk: looked for now and, after the grace
/// period, once more (a job accepted just before the crash may not have made its target yet).
async fn found_after_crash(task: &ImportTask, ctx: &ImportContext) -> Result<bool, Error> {
    let checks = if ctx.grace.is_zero() { 1 } else { 2 };
    for check in 0..checks {
        if check > 0 {
            tokio::time::sleep(ctx.grace).await;
        }
        if in_snyk_now(task, ctx).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn finished(task: &ImportTask, outcome: &JobOutcome) -> Event {
    Event::ImportFinished {
        org_id: task.org_id.clone(),
        repository: task.repository(),
        status: outcome.status.clone(),
        projects: outcome.projects,
        messages: outcome.messages.clone(),
        uuid: task.uuid.clone(),
        branch: task.spec.branch.clone(),
        workspace_uuid: task.workspace_uuid.clone(),
    }
}
