//! The one journaled operation: what is about to change is on disk before it changes, and what
//! changed is on disk after. A crash in between leaves an intent without its outcome, and the
//! next run's replay says what to do with it, by kind: an org is looked for by name before it
//! is created again, an import's target by name before it is posted again, a drift step (a
//! retirement, a branch change, a history carried over, an org renamed) is done again (each
//! is safe to repeat), quieted settings are put back.

use std::future::Future;

use crate::act::journal::{Event, JournalWriter};
use crate::error::Error;

/// Journals `intent` (when there is one), then does `act`, then journals what `outcome` makes
/// of its result (when anything). Returns the act's result; the act's own failure is in it,
/// and `outcome` decides whether a failure is journaled too.
///
/// # Errors
/// When the journal cannot be written: before the act, the act is not done.
pub(crate) async fn journaled<T>(
    writer: &JournalWriter,
    intent: Option<Event>,
    act: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Option<Event>,
) -> Result<T, Error> {
    if let Some(intent) = intent {
        writer.append(intent).await?;
    }
    let done = act.await;
    if let Some(event) = outcome(&done) {
        writer.append(event).await?;
    }
    Ok(done)
}

/// [`journaled`] for a drift step: the step's intent, and its outcome (from the act's value)
/// once it succeeded; a step that failed keeps its intent, and is done again next time.
///
/// # Errors
/// When the journal cannot be written, or the act failed.
pub(crate) async fn drift_step<T>(
    writer: &JournalWriter,
    intent: crate::act::journal::DriftOperation,
    act: impl Future<Output = Result<T, Error>>,
    done: impl FnOnce(&T) -> crate::act::journal::DriftOperation,
) -> Result<T, Error> {
    journaled(
        writer,
        Some(Event::DriftIntent { operation: intent }),
        act,
        |r: &Result<T, Error>| {
            r.as_ref().ok().map(|value| Event::DriftDone {
                operation: done(value),
            })
        },
    )
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::journal::{DriftOperation, JOURNAL_FILE, Journal};

    fn rename() -> DriftOperation {
        DriftOperation::RenameOrg {
            org_id: "o1".into(),
            from: "old".into(),
            to: "new".into(),
        }
    }

    fn lines(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(JOURNAL_FILE))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn the_intent_is_on_disk_before_the_act_and_the_outcome_after_a_success_only() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), None).unwrap();
        let writer = journal.writer();
        let seen_during = std::sync::Mutex::new(Vec::new());
        let act = async {
            seen_during.lock().unwrap().extend(lines(dir.path()));
            Ok::<u32, Error>(7)
        };
        let value = drift_step(&writer, rename(), act, |_| rename())
            .await
            .unwrap();
        assert_eq!(value, 7);
        let during = seen_during.into_inner().unwrap();
        assert!(
            during.last().unwrap().contains("drift-intent"),
            "{during:?}"
        );
        assert!(lines(dir.path()).last().unwrap().contains("drift-done"));

        let before = lines(dir.path()).len();
        let failed = drift_step(
            &writer,
            rename(),
            async { Err::<u32, Error>(Error::Config("refused".into())) },
            |_| rename(),
        )
        .await;
        assert!(failed.is_err());
        let after = lines(dir.path());
        assert_eq!(after.len(), before + 1, "the intent alone: {after:?}");
        assert!(after.last().unwrap().contains("drift-intent"));
    }
}
