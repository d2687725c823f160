//! The runs the journal records (`bb-snyk-mirror runs`), and the plan that undoes what one of
//! them retired (`bb-snyk-mirror undo RUN_ID`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::act::journal::{DriftOperation, Event, RetireDone, for_each_event};
use crate::decide::plan::Action;
use crate::decide::rules::Placement;
use crate::error::Error;
use crate::ids::OrgId;
use crate::read::ports::ImportStatus;

/// One run, as the journal tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// Its id.
    pub id: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// Whether it ran to its end (else it was interrupted, or is running).
    pub finished: bool,
    /// Orgs it created.
    pub orgs_created: usize,
    /// Imports it completed.
    pub imports: usize,
    /// Imports that failed.
    pub imports_failed: usize,
    /// Targets whose projects it deactivated.
    pub deactivated: usize,
    /// Targets it deleted.
    pub deleted: usize,
    /// Targets whose projects moved to a new default branch.
    pub branches: usize,
    /// Targets whose projects it activated again (an undo).
    pub reactivated: usize,
}

/// The runs of the journal in the state directory `dir`, oldest first. Events are counted
/// for the run started last before them (runs of `serve` that overlap share their counts,
/// except retirements, which name their run).
///
/// # Errors
/// As [`for_each_event`].
pub fn runs(dir: &Path) -> Result<Vec<RunSummary>, Error> {
    let mut runs: Vec<RunSummary> = Vec::new();
    for_each_event(dir, |_, time, event| {
        if let Event::RunStarted { run: Some(id), .. } = &event {
            runs.push(RunSummary {
                id: id.clone(),
                started: time.to_owned(),
                ..RunSummary::default()
            });
            return;
        }
        let of = |id: Option<&String>, runs: &mut Vec<RunSummary>| -> Option<usize> {
            match id {
                Some(id) => runs.iter().rposition(|r| r.id == *id),
                None => runs.len().checked_sub(1),
            }
        };
        let (run, count): (Option<&String>, fn(&mut RunSummary)) = match &event {
            Event::RunFinished => (None, |r| r.finished = true),
            Event::OrgReady { created: true, .. } => (None, |r| r.orgs_created += 1),
            Event::ImportFinished { status, .. } if *status == ImportStatus::Complete => {
                (None, |r| r.imports += 1)
            }
            Event::ImportFinished { .. } | Event::ImportFailed { .. } => {
                (None, |r| r.imports_failed += 1)
            }
            Event::DriftDone {
                operation:
                    DriftOperation::Retire {
                        done: Some(done), ..
                    },
            } if !done.projects.is_empty() => (
                done.run.as_ref(),
                if done.deleted {
                    |r| r.deleted += 1
                } else {
                    |r| r.deactivated += 1
                },
            ),
            Event::DriftDone {
                operation: DriftOperation::Branch { .. },
            } => (None, |r| r.branches += 1),
            Event::DriftDone {
                operation: DriftOperation::Reactivate { .. },
            } => (None, |r| r.reactivated += 1),
            _ => return,
        };
        if let Some(i) = of(run, &mut runs) {
            count(&mut runs[i]);
        }
    })?;
    Ok(runs)
}

/// What undoing a run does: the projects it deactivated, activated again (as plan actions),
/// and what it cannot bring back, in words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Undo {
    /// [`Action::Reactivate`] for each target whose projects the run deactivated and that
    /// no later undo or deletion took care of.
    pub actions: Vec<Action>,
    /// What cannot be undone, and what to do instead.
    pub cannot: Vec<String>,
}

/// What undoing run `run` of the journal in `dir` takes; `names` gives orgs their names.
///
/// # Errors
/// [`Error::Config`] when the journal has no run of that id; as [`for_each_event`].
pub fn undo(dir: &Path, run: &str, names: &BTreeMap<OrgId, String>) -> Result<Undo, Error> {
    let mut known = false;
    // By (org, lowercased name): what the run did to the target, or `None` once undone or
    // deleted since.
    let mut done: BTreeMap<(OrgId, String), Option<(Placement, RetireDone)>> = BTreeMap::new();
    for_each_event(dir, |_, _, event| {
        let Event::DriftDone { operation } = event else {
            if matches!(&event, Event::RunStarted { run: Some(id), .. } if id == run) {
                known = true;
            }
            return;
        };
        match operation {
            DriftOperation::Retire {
                placement,
                done: Some(d),
                ..
            } => {
                let key = (placement.org_id.clone(), placement.full_name.to_lowercase());
                if d.run.as_deref() == Some(run) {
                    done.insert(key, Some((placement, d)));
                } else if d.deleted && done.contains_key(&key) {
                    // Deleted by a later run (after its quarantine).
                    let line = done.get_mut(&key).and_then(Option::take);
                    if let Some((placement, mut d)) = line {
                        d.deleted = true;
                        done.insert(key, Some((placement, d)));
                    }
                }
            }
            DriftOperation::Reactivate {
                placement, run: r, ..
            } if r.as_deref() == Some(run) => {
                done.insert(
                    (placement.org_id.clone(), placement.full_name.to_lowercase()),
                    None,
                );
            }
            _ => {}
        }
    })?;
    if !known {
        return Err(Error::Config(format!(
            "the journal has no run {run}: `bb-snyk-mirror runs` lists the runs of this state directory"
        )));
    }
    let mut undo = Undo::default();
    for (placement, d) in done.into_values().flatten() {
        let org = names
            .get(&placement.org_id)
            .cloned()
            .unwrap_or_else(|| placement.org_id.to_string());
        if d.deleted {
            undo.cannot.push(format!(
                "{} in {org} was deleted: a deleted project's history (ignores, tags, attributes) cannot be brought back; `bb-snyk-mirror sync` imports the repository again if Bitbucket still has it",
                placement.full_name
            ));
        } else if !d.projects.is_empty() {
            undo.actions.push(Action::Reactivate {
                org,
                placement,
                run: Some(run.to_owned()),
                projects: d.projects,
            });
        }
    }
    Ok(undo)
}
