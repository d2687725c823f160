//! The drift stages of apply: org renames before the imports; repositories recorded by uuid;
//! after the imports, branch changes and retirements (the plan's, and the old targets of the
//! renames and moves this run completed). Each change is journaled before (`drift-intent`) and
//! after (`drift-done`), and each step looks at Snyk before it acts (only active projects are
//! deactivated, only projects on the old branch are moved, a target already gone counts as
//! deleted), so a run killed at any point and run again changes nothing twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::{StreamExt, stream};

use crate::act::apply::Stage;
use crate::act::journal::operation::{drift_step, journaled};
use crate::act::journal::{DriftOperation, Event, Journal, JournalWriter, RetireDone};
use crate::act::report::{BranchChange, Carried, FailedChange, Retirement};
use crate::config::RetireMode;
use crate::decide::drift::replaced;
use crate::decide::plan::{Action, Plan, RetireReason};
use crate::decide::rules::Placement;
use crate::decide::rules::Retired;
use crate::error::Error;
use crate::ids::ProjectId;
use crate::ids::{OrgId, RepoUuid, TargetId};
use crate::read::inventory::bitbucket_targets;
use crate::read::ports::SnykPort;

/// Whether an error means the thing is already gone.
fn gone(e: &Error) -> bool {
    e.kind() == bitbucket_cloud_client::ErrorKind::NotFound
}

impl Stage<'_> {
    fn failed(&mut self, repository: &str, org: &str, what: &str, e: &Error) {
        self.report.failed_changes.push(FailedChange {
            repository: repository.to_owned(),
            org: org.to_owned(),
            message: format!("{what}: {e}"),
        });
    }
}

/// Renames the orgs the plan renames after their workspace.
pub(crate) async fn rename_orgs(plan: &Plan, stage: &mut Stage<'_>) -> Result<(), Error> {
    for a in &plan.actions {
        let Action::RenameOrg { org_id, from, to } = a else {
            continue;
        };
        let operation = DriftOperation::RenameOrg {
            org_id: org_id.clone(),
            from: from.clone(),
            to: to.clone(),
        };
        let renamed = journaled(
            &stage.writer,
            Some(Event::DriftIntent {
                operation: operation.clone(),
            }),
            stage.snyk.rename_org(org_id, to),
            |r| r.is_ok().then_some(Event::DriftDone { operation }),
        )
        .await?;
        match renamed {
            Ok(()) => {
                stage
                    .report
                    .orgs_renamed
                    .push(crate::act::report::OrgRename {
                        from: from.clone(),
                        to: to.clone(),
                    });
            }
            Err(e) => stage.failed(from, from, &format!("could not rename the org to {to}"), &e),
        }
    }
    Ok(())
}

/// Records by uuid the repositories the plan found already in Snyk.
pub(crate) async fn track(plan: &Plan, stage: &mut Stage<'_>) -> Result<(), Error> {
    for a in &plan.actions {
        let Action::Track(sighting) = a else {
            continue;
        };
        stage
            .writer
            .append(Event::RepoTracked(sighting.clone()))
            .await?;
        stage.report.tracked += 1;
    }
    Ok(())
}

/// A change to follow Bitbucket: a target's projects to a new branch, a target retired, or
/// (for `undo`) projects a run deactivated activated again.
enum Change {
    Branch {
        uuid: RepoUuid,
        org: String,
        placement: Placement,
        from: String,
        to: String,
    },
    Retire(Retiring),
    Reactivate {
        org: String,
        placement: Placement,
        run: Option<String>,
        projects: Vec<ProjectId>,
    },
    /// Tags and attributes a `[[metadata]]` rule sets on a project (`placement` names its
    /// repository).
    Metadata {
        org: String,
        placement: Placement,
        project_id: ProjectId,
        settings: crate::read::ports::ProjectSettings,
        tags_change: bool,
    },
}

/// A target to retire.
struct Retiring {
    uuid: Option<RepoUuid>,
    org: String,
    placement: Placement,
    why: RetireReason,
    mode: RetireMode,
    /// Deactivated now to be deleted later (`retire = "delete"`), and why.
    quarantine: Option<Retired>,
    /// Where the repository is mirrored now, when this target is an old name or org of it:
    /// its projects' history is carried there before the target is retired.
    successor: Option<Placement>,
}

/// How a change ended, for the report.
enum Done {
    Branch(BranchChange),
    Retired(Retirement),
    Replaced {
        line: Retirement,
        renamed: bool,
        carried: Option<crate::act::report::Carried>,
    },
    Reactivated(String),
    /// Managed tags and attributes set; `Some(Snyk's answer)` when Snyk refused the tags and
    /// only the rest was written.
    Metadata(Option<String>),
}

/// What the changes share while they run.
struct Follow {
    snyk: Arc<dyn SnykPort>,
    writer: JournalWriter,
    /// The run's id, recorded with what it retires (for `undo`).
    run: Option<String>,
    /// The Bitbucket targets of each org a change needs an id from (by lowercased name),
    /// listed once.
    targets: HashMap<OrgId, BTreeMap<String, TargetId>>,
}

impl Follow {
    fn target(&self, placement: &Placement) -> Option<TargetId> {
        placement.target_id.clone().or_else(|| {
            self.targets
                .get(&placement.org_id)?
                .get(&placement.full_name.to_lowercase())
                .cloned()
        })
    }
}

impl Change {
    fn placement(&self) -> &Placement {
        match self {
            Self::Branch { placement, .. }
            | Self::Retire(Retiring { placement, .. })
            | Self::Reactivate { placement, .. }
            | Self::Metadata { placement, .. } => placement,
        }
    }

    fn org(&self) -> &str {
        match self {
            Self::Branch { org, .. }
            | Self::Retire(Retiring { org, .. })
            | Self::Reactivate { org, .. }
            | Self::Metadata { org, .. } => org,
        }
    }

    /// What a failure of this change is reported as.
    fn failure(&self) -> &'static str {
        match self {
            Self::Branch { .. } => "could not change the branch",
            Self::Retire(_) => "could not retire the target",
            Self::Reactivate { .. } => "could not reactivate the projects",
            Self::Metadata { .. } => "could not set the tags and attributes",
        }
    }

    async fn apply(&self, f: &Follow) -> Result<Done, Error> {
        match self {
            Self::Branch {
                uuid,
                org,
                placement,
                from,
                to,
            } => {
                let operation = DriftOperation::Branch {
                    uuid: uuid.clone(),
                    org_id: placement.org_id.clone(),
                    full_name: placement.full_name.clone(),
                    from: Some(from.clone()),
                    to: to.clone(),
                };
                let again = operation.clone();
                let rebranch = async {
                    if let Some(target) = f.target(placement) {
                        let org_id = &placement.org_id;
                        for p in f.snyk.projects(org_id, &target).await? {
                            if p.active && p.branch.as_deref() == Some(from.as_str()) {
                                f.snyk.set_project_branch(org_id, &p.id, to).await?;
                            }
                        }
                    }
                    Ok(())
                };
                drift_step(&f.writer, operation, rebranch, |()| again).await?;
                Ok(Done::Branch(BranchChange {
                    repository: placement.full_name.clone(),
                    org: org.clone(),
                    from: from.clone(),
                    to: to.clone(),
                }))
            }
            Self::Retire(r) => retire(f, r).await,
            Self::Reactivate {
                placement,
                run,
                projects,
                ..
            } => reactivate(f, placement, run.as_deref(), projects).await,
            Self::Metadata {
                placement,
                project_id,
                settings,
                tags_change,
                ..
            } => set_metadata(f, &placement.org_id, project_id, settings, *tags_change).await,
        }
    }
}

/// Writes the managed tags and attributes of one project. Tags need an Enterprise plan: when
/// Snyk refuses them (403, 422) the rest is written without them, and Snyk's answer is kept
/// for the report.
async fn set_metadata(
    f: &Follow,
    org_id: &crate::ids::OrgId,
    project_id: &ProjectId,
    settings: &crate::read::ports::ProjectSettings,
    tags_change: bool,
) -> Result<Done, Error> {
    let refused = crate::decide::metadata::write_settings(
        f.snyk.as_ref(),
        org_id,
        project_id,
        settings,
        tags_change,
    )
    .await?;
    Ok(Done::Metadata(refused))
}

/// Activates again the projects `run` deactivated (each step can be repeated).
async fn reactivate(
    f: &Follow,
    placement: &Placement,
    run: Option<&str>,
    projects: &[ProjectId],
) -> Result<Done, Error> {
    let operation = DriftOperation::Reactivate {
        placement: placement.clone(),
        run: run.map(str::to_owned),
        projects: projects.to_vec(),
    };
    let again = operation.clone();
    let activate = async {
        for p in projects {
            match f.snyk.activate_project(&placement.org_id, p).await {
                Err(e) if !gone(&e) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    };
    drift_step(&f.writer, operation, activate, |()| again).await?;
    Ok(Done::Reactivated(placement.full_name.clone()))
}

/// Retires one target (see [`RetireMode`]); `report` changes nothing, in Snyk or in the
/// journal, so the next run names it again.
async fn retire(f: &Follow, r: &Retiring) -> Result<Done, Error> {
    let Retiring {
        uuid,
        org,
        placement,
        why,
        mode,
        quarantine,
        successor,
    } = r;
    let mut line = Retirement {
        repository: placement.full_name.clone(),
        org: org.clone(),
        reason: why.clone(),
        mode: *mode,
        already_gone: false,
    };
    if *mode == RetireMode::Report {
        return Ok(Done::Retired(line));
    }
    // The history first: the old target is retired only once it is copied.
    let carried = match successor {
        Some(to) => Some(carry(f, placement, to).await?),
        None => None,
    };
    let operation = |done| DriftOperation::Retire {
        uuid: uuid.clone(),
        placement: placement.clone(),
        done,
    };
    let done = |changed: &Vec<ProjectId>| RetireDone {
        run: f.run.clone(),
        at: crate::clock::unix_now(),
        deleted: *mode == RetireMode::Delete,
        projects: changed.clone(),
        quarantine: *quarantine,
        not_ours: matches!(
            why,
            RetireReason::NotMirrored { .. } | RetireReason::Duplicate { .. }
        ),
    };
    let changed = drift_step(
        &f.writer,
        operation(None),
        retire_in_snyk(f, placement, *mode),
        |changed| operation(Some(done(changed))),
    )
    .await?;
    // The report says what was done, never "deactivated" or "deleted" where no request was
    // sent.
    line.already_gone = changed.is_empty();
    Ok(match why {
        RetireReason::Renamed { .. } | RetireReason::Moved { .. } => Done::Replaced {
            renamed: matches!(why, RetireReason::Renamed { .. }),
            line,
            carried,
        },
        RetireReason::Deleted
        | RetireReason::OutOfScope { .. }
        | RetireReason::NotMirrored { .. }
        | RetireReason::Duplicate { .. } => Done::Retired(line),
    })
}

/// Copies the history of the old target's projects to the new target's (journaled before and
/// after; each step can be repeated). A target that cannot be found on either side copies
/// nothing, and says so.
async fn carry(f: &Follow, from: &Placement, to: &Placement) -> Result<Carried, Error> {
    let operation = |carried| DriftOperation::CarryOver {
        from: from.clone(),
        to: to.clone(),
        carried,
    };
    let copy = async {
        let mut carried = match (f.target(from), f.target(to)) {
            (Some(old_target), Some(new_target)) => {
                let twins = super::carry::Twins {
                    old: from,
                    old_target: &old_target,
                    new: to,
                    new_target: &new_target,
                };
                super::carry::carry_over(f.snyk.as_ref(), &twins).await?
            }
            _ => Carried::default(),
        };
        carried.from.clone_from(&from.full_name);
        carried.to.clone_from(&to.full_name);
        Ok(carried)
    };
    drift_step(&f.writer, operation(None), copy, |carried| {
        operation(Some(carried.clone()))
    })
    .await
}

/// Deactivates (or deletes) what Snyk holds of a target: its projects that are active (or
/// all, and the target). Returns the projects changed (a deleted target without projects
/// left counts as one change, under its target's id).
async fn retire_in_snyk(
    f: &Follow,
    placement: &Placement,
    mode: RetireMode,
) -> Result<Vec<ProjectId>, Error> {
    let org_id = &placement.org_id;
    let mut changed = Vec::new();
    let Some(target) = f.target(placement) else {
        return Ok(changed);
    };
    let mut target_deleted = false;
    if mode == RetireMode::Delete {
        match f.snyk.delete_target(org_id, &target).await {
            Err(e) if !gone(&e) => return Err(e),
            Err(_) => {}
            Ok(()) => target_deleted = true,
        }
    }
    // Deactivate: the active projects. Delete: whatever projects are left of the target
    // (Snyk does not document that they go with it).
    for p in f.snyk.projects(org_id, &target).await? {
        let done = match mode {
            RetireMode::Delete => f.snyk.delete_project(org_id, &p.id).await,
            _ if p.active => f.snyk.deactivate_project(org_id, &p.id).await,
            _ => continue,
        };
        match done {
            Err(e) if !gone(&e) => return Err(e),
            Err(_) => {}
            Ok(()) => changed.push(p.id),
        }
    }
    if target_deleted && changed.is_empty() {
        changed.push(ProjectId::from(target.as_str()));
    }
    Ok(changed)
}

/// The plan's branch changes, retirements and reactivations, and the old targets of the
/// renames and moves this run completed (from the journal), each once: an old target is
/// retired only when the plan shows it, as a retirement or as the target an import replaces,
/// so that apply never retires what the plan did not show.
fn changes(plan: &Plan, journal: &Journal) -> Vec<Change> {
    let mut changes: Vec<Change> = plan.actions.iter().filter_map(planned_change).collect();
    // A planned retirement of an old name or org: its successor is where the journal says the
    // repository is mirrored now.
    journal.with_state(|s| {
        for change in &mut changes {
            if let Change::Retire(r) = change
                && matches!(
                    r.why,
                    RetireReason::Renamed { .. } | RetireReason::Moved { .. }
                )
                && let Some(record) = r.uuid.as_ref().and_then(|u| s.repos.get(u))
                && !record.current.same_place(&r.placement)
            {
                r.successor = Some(record.current.clone());
            }
        }
    });
    let left = journal.with_state(|s| {
        s.repos
            .iter()
            .flat_map(|(uuid, record)| {
                record.stale.iter().map(move |old| {
                    let why = replaced(old, record);
                    (uuid.clone(), old.clone(), why, record.current.clone())
                })
            })
            .collect::<Vec<_>>()
    });
    let names = org_names(plan);
    let replaced_by_import = |uuid: &RepoUuid, old: &Placement| {
        plan.actions.iter().any(|a| {
            matches!(a, Action::Import(i)
                if i.uuid.as_ref() == Some(uuid)
                    && i.replaces.as_ref().is_some_and(|r| r.same_place(old)))
        })
    };
    for (uuid, old, why, successor) in left {
        let retired = changes
            .iter()
            .any(|c| matches!(c, Change::Retire(_)) && c.placement().same_place(&old));
        if !retired && replaced_by_import(&uuid, &old) {
            let org = names
                .get(&old.org_id)
                .cloned()
                .unwrap_or_else(|| old.org_id.to_string());
            // Reversible first: with `retire = "delete"` the old target is deactivated now
            // and deleted by a later run.
            let (mode, quarantine) = match plan.retire {
                RetireMode::Delete => (RetireMode::Deactivate, Some(Retired::Replaced)),
                mode => (mode, None),
            };
            changes.push(Change::Retire(Retiring {
                uuid: Some(uuid),
                org,
                placement: old,
                why,
                mode,
                quarantine,
                successor: Some(successor),
            }));
        }
    }
    changes
}

/// The change an action of the plan makes to what is already in Snyk, if any.
fn planned_change(a: &Action) -> Option<Change> {
    match a {
        Action::Branch {
            uuid,
            org,
            org_id,
            repository,
            from,
            to,
        } => Some(Change::Branch {
            uuid: uuid.clone(),
            org: org.clone(),
            placement: Placement {
                org_id: org_id.clone(),
                full_name: repository.clone(),
                target_id: None,
            },
            from: from.clone(),
            to: to.clone(),
        }),
        Action::Retire {
            uuid,
            org,
            placement,
            why,
            mode,
            delete_after,
        } => Some(Change::Retire(Retiring {
            uuid: uuid.clone(),
            org: org.clone(),
            placement: placement.clone(),
            why: why.clone(),
            mode: *mode,
            successor: None,
            quarantine: delete_after.as_ref().map(|_| match why {
                RetireReason::Deleted => Retired::Deleted,
                RetireReason::OutOfScope { .. } => Retired::OutOfScope,
                RetireReason::Renamed { .. }
                | RetireReason::Moved { .. }
                | RetireReason::NotMirrored { .. }
                | RetireReason::Duplicate { .. } => Retired::Replaced,
            }),
        })),
        Action::Reactivate {
            org,
            placement,
            run,
            projects,
        } => Some(Change::Reactivate {
            org: org.clone(),
            placement: placement.clone(),
            run: run.clone(),
            projects: projects.clone(),
        }),
        Action::Metadata(m) => Some(Change::Metadata {
            org: m.org.clone(),
            placement: Placement {
                org_id: m.org_id.clone(),
                full_name: m.repository.clone(),
                target_id: None,
            },
            project_id: m.project_id.clone(),
            settings: m.settings.clone(),
            tags_change: m.changes.iter().any(|c| c.field.starts_with("tags ")),
        }),
        _ => None,
    }
}

pub(crate) async fn follow(
    plan: &Plan,
    journal: &Journal,
    stage: &mut Stage<'_>,
) -> Result<(), Error> {
    let changes = changes(plan, journal);
    let mut f = Follow {
        snyk: stage.snyk.clone(),
        writer: stage.writer.clone(),
        run: stage.report.run.clone(),
        targets: HashMap::new(),
    };
    // The orgs whose targets a change needs by name: its own, and where history is carried.
    let successors = changes.iter().filter_map(|c| match c {
        Change::Retire(r) => r.successor.as_ref(),
        _ => None,
    });
    let needed: BTreeSet<&OrgId> = changes
        .iter()
        .filter(|c| !matches!(c, Change::Reactivate { .. } | Change::Metadata { .. }))
        .map(Change::placement)
        .chain(successors)
        .filter(|p| p.target_id.is_none())
        .map(|p| &p.org_id)
        .collect();
    for org_id in needed {
        let listed = bitbucket_targets(f.snyk.as_ref(), org_id).await?;
        f.targets.insert(org_id.clone(), listed);
    }
    let f = &f;
    let stop = stage.stop;
    let stopped = || stop.is_some_and(|s| *s.borrow());
    // By index: closures over references would make the future unprovably `Send` (a
    // spawned event round runs it).
    let changes = &changes;
    let ended: Vec<(usize, Result<Done, Error>)> = stream::iter(0..changes.len())
        .take_while(|_| std::future::ready(!stopped()))
        .map(|i| async move { (i, changes[i].apply(f).await) })
        .buffer_unordered(stage.options.concurrency.max(1))
        .collect()
        .await;
    if ended.len() < changes.len() {
        stage.report.interrupted = true;
    }
    for (i, result) in ended {
        let change = &changes[i];
        match result {
            Ok(Done::Branch(line)) => stage.report.branches_updated.push(line),
            Ok(Done::Retired(line)) => stage.report.retired.push(line),
            Ok(Done::Replaced {
                line,
                renamed,
                carried,
            }) => {
                stage.report.carried.extend(carried);
                if renamed {
                    stage.report.renamed += 1;
                } else {
                    stage.report.moved += 1;
                }
                stage.report.replaced.push(line);
            }
            Ok(Done::Reactivated(name)) => stage.report.reactivated.push(name),
            Ok(Done::Metadata(refused)) => {
                stage.report.metadata_set += 1;
                // Once per org, in Snyk's words.
                let head = format!("{}: Snyk refused tags", change.org());
                if let Some(why) = refused
                    && !stage.report.warnings.iter().any(|l| l.starts_with(&head))
                {
                    stage.report.warnings.push(format!(
                        "{head} ({why}); the attributes were set without them, and tags are not tried there again for a week"
                    ));
                    let refused = Event::TagsRefused {
                        org_id: change.placement().org_id.clone(),
                        at: crate::clock::unix_now(),
                    };
                    stage.writer.append(refused).await?;
                }
            }
            Err(e) if e.is_auth() => return Err(e),
            Err(e) => {
                let name = change.placement().full_name.clone();
                stage.failed(&name, change.org(), change.failure(), &e);
            }
        }
    }
    stage.report.branches_updated.sort();
    for list in [&mut stage.report.retired, &mut stage.report.replaced] {
        list.sort_by(|a, b| (&a.repository, &a.org).cmp(&(&b.repository, &b.org)));
    }
    Ok(())
}

/// The names of the orgs the plan mentions, by id.
fn org_names(plan: &Plan) -> HashMap<OrgId, String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Import(i) => match &i.org {
                crate::decide::plan::OrgRef::Existing { id, name, .. } => {
                    Some((id.clone(), name.clone()))
                }
                crate::decide::plan::OrgRef::New { .. } => None,
            },
            Action::Retire { org, placement, .. } => Some((placement.org_id.clone(), org.clone())),
            Action::Branch { org, org_id, .. } => Some((org_id.clone(), org.clone())),
            _ => None,
        })
        .collect()
}
