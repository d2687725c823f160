//! What a run tells whoever watches it: progress displays, and files of one's own (the
//! snyk-api-import commands write their logs from these calls).

use crate::act::import::{ImportOutcome, ImportTask};
use crate::read::ports::JobHandle;

/// Told what apply and the import protocol do. Every method has a no-op default, and each is
/// called after the journal has the event it reports.
pub trait ApplyObserver: Send + Sync {
    /// An apply begins, with this many imports planned.
    fn apply_started(&self, _imports: usize) {}
    /// The apply that began last has ended (however it ended).
    fn apply_ended(&self) {}
    /// An org is ready (created or found).
    fn org_ready(&self, _name: &str, _created: bool) {}
    /// Snyk accepted an import (`repository` is `workspace/slug`).
    fn import_accepted(&self, _repository: &str) {}
    /// An import ended (`None` when it completed, else the reason).
    fn import_finished(&self, _repository: &str, _failure: Option<&str>) {}
    /// Snyk accepted the import of `task` as `job` (called before the job is followed).
    fn job_accepted(&self, _task: &ImportTask, _job: &JobHandle) {}
    /// The import of `task` ended this way (completed, already there, refused, failed);
    /// called before [`ApplyObserver::import_finished`].
    fn import_done(&self, _task: &ImportTask, _outcome: &ImportOutcome) {}
}

/// Tells nothing to nobody.
pub(crate) struct Silent;

impl ApplyObserver for Silent {}
