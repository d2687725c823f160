//! The drift stages of apply: org renames before the imports; repositories recorded by uuid;
//! after the imports, branch changes and retirements (the plan's, and the old targets of the
//! renames and moves this run completed). Each change is journaled before (`drift-intent`) and
//! after (`drift-done`), and each step looks at Snyk before it acts (only active projects are
//! deactivated, only projects on the old branch are moved, a target already gone counts as
//! deleted), so a run killed at any point and run again changes nothing twice.

use std::collections::HashMap;

use crate::Error;
use crate::apply::Stage;
use crate::config::RetireMode;
use crate::ids::{OrgId, RepoUuid, TargetId};
use crate::journal::{DriftOperation, Event, Journal};
use crate::plan::{Action, Plan, RetireReason};
use crate::ports::SnykTarget;
use crate::report::FailedChange;
use crate::rules::Placement;

/// The integration types whose targets are Bitbucket repositories.
const BITBUCKET_TYPES: &str = "bitbucket-cloud,bitbucket-connect-app";

/// Whether an error means the thing is already gone.
fn gone(e: &Error) -> bool {
    e.kind() == bitbucket_cloud_client::ErrorKind::NotFound
}

impl Stage<'_> {
    async fn intent(&self, operation: &DriftOperation) -> Result<(), Error> {
        self.writer
            .append(Event::DriftIntent {
                operation: operation.clone(),
            })
            .await
    }

    async fn done(&self, operation: DriftOperation) -> Result<(), Error> {
        self.writer.append(Event::DriftDone { operation }).await
    }

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
        stage.intent(&operation).await?;
        match stage.snyk.rename_org(org_id, to).await {
            Ok(()) => {
                stage.done(operation).await?;
                stage.report.orgs_renamed.push(format!("{from} → {to}"));
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

/// The Bitbucket targets of each org, listed once per run when a change needs a target id.
#[derive(Default)]
struct Targets(HashMap<OrgId, Vec<SnykTarget>>);

impl Targets {
    async fn find(
        &mut self,
        stage: &Stage<'_>,
        placement: &Placement,
    ) -> Result<Option<TargetId>, Error> {
        if let Some(id) = &placement.target_id {
            return Ok(Some(id.clone()));
        }
        if !self.0.contains_key(&placement.org_id) {
            let listed = stage
                .snyk
                .imported(&placement.org_id, BITBUCKET_TYPES)
                .await?;
            self.0.insert(placement.org_id.clone(), listed);
        }
        Ok(self.0[&placement.org_id]
            .iter()
            .find(|t| t.display_name.eq_ignore_ascii_case(&placement.full_name))
            .map(|t| t.id.clone()))
    }
}

/// Moves the projects of each repository whose default branch changed, and retires what the
/// plan retires and what this run's renames and moves left behind.
pub(crate) async fn follow(
    plan: &Plan,
    journal: &Journal,
    stage: &mut Stage<'_>,
) -> Result<(), Error> {
    let mut targets = Targets::default();
    for a in &plan.actions {
        if let Action::Branch {
            uuid,
            org,
            org_id,
            repository,
            from,
            to,
        } = a
        {
            if stage.stopped() {
                stage.report.interrupted = true;
                return Ok(());
            }
            let placement = Placement {
                org_id: org_id.clone(),
                full_name: repository.clone(),
                target_id: None,
            };
            let change = Branch {
                uuid,
                org,
                placement,
                from,
                to,
            };
            if let Err(e) = change.apply(stage, &mut targets).await {
                if e.is_auth() {
                    return Err(e);
                }
                stage.failed(repository, org, "could not change the branch", &e);
            }
        }
    }
    let mut retirements: Vec<(
        Option<RepoUuid>,
        String,
        Placement,
        RetireReason,
        RetireMode,
    )> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Retire {
                uuid,
                org,
                placement,
                why,
                mode,
            } => Some((
                uuid.clone(),
                org.clone(),
                placement.clone(),
                why.clone(),
                *mode,
            )),
            _ => None,
        })
        .collect();
    // The old targets of the renames and moves this run completed.
    let left = journal.with_state(|s| {
        s.repos
            .iter()
            .flat_map(|(uuid, record)| {
                record.stale.iter().map(move |old| {
                    let to = record.current.full_name.clone();
                    let why = if old.org_id == record.current.org_id {
                        RetireReason::Renamed { to }
                    } else {
                        RetireReason::Moved { to }
                    };
                    (uuid.clone(), old.clone(), why)
                })
            })
            .collect::<Vec<_>>()
    });
    let names = org_names(plan);
    for (uuid, old, why) in left {
        if !retirements.iter().any(|(_, _, p, _, _)| p.same_place(&old)) {
            let org = names
                .get(&old.org_id)
                .cloned()
                .unwrap_or_else(|| old.org_id.to_string());
            retirements.push((Some(uuid), org, old, why, plan.retire));
        }
    }
    for (uuid, org, placement, why, mode) in retirements {
        if stage.stopped() {
            stage.report.interrupted = true;
            return Ok(());
        }
        let retire = Retire {
            uuid,
            org: &org,
            placement,
            why,
            mode,
        };
        if let Err(e) = retire.apply(stage, &mut targets).await {
            if e.is_auth() {
                return Err(e);
            }
            let name = retire.placement.full_name.clone();
            stage.failed(&name, &org, "could not retire the target", &e);
        }
    }
    Ok(())
}

/// The names of the orgs the plan mentions, by id.
fn org_names(plan: &Plan) -> HashMap<OrgId, String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Import {
                org: crate::plan::OrgRef::Existing { id, name, .. },
                ..
            } => Some((id.clone(), name.clone())),
            Action::Retire { org, placement, .. } => Some((placement.org_id.clone(), org.clone())),
            Action::Branch { org, org_id, .. } => Some((org_id.clone(), org.clone())),
            _ => None,
        })
        .collect()
}

/// One branch change.
struct Branch<'a> {
    uuid: &'a RepoUuid,
    org: &'a str,
    placement: Placement,
    from: &'a str,
    to: &'a str,
}

impl Branch<'_> {
    async fn apply(&self, stage: &mut Stage<'_>, targets: &mut Targets) -> Result<(), Error> {
        let operation = DriftOperation::Branch {
            uuid: self.uuid.clone(),
            org_id: self.placement.org_id.clone(),
            full_name: self.placement.full_name.clone(),
            from: Some(self.from.to_owned()),
            to: self.to.to_owned(),
        };
        stage.intent(&operation).await?;
        if let Some(target) = targets.find(stage, &self.placement).await? {
            let projects = stage.snyk.projects(&self.placement.org_id, &target).await?;
            for p in projects
                .iter()
                .filter(|p| p.active && p.branch.as_deref() == Some(self.from))
            {
                stage
                    .snyk
                    .set_project_branch(&self.placement.org_id, &p.id, self.to)
                    .await?;
            }
        }
        stage.done(operation).await?;
        stage.report.branches_updated.push(format!(
            "{} {} → {} ({})",
            self.placement.full_name, self.from, self.to, self.org
        ));
        Ok(())
    }
}

/// One retirement.
struct Retire<'a> {
    uuid: Option<RepoUuid>,
    org: &'a str,
    placement: Placement,
    why: RetireReason,
    mode: RetireMode,
}

impl Retire<'_> {
    async fn apply(&self, stage: &mut Stage<'_>, targets: &mut Targets) -> Result<(), Error> {
        let line = format!("{} ({})", self.placement.full_name, self.why.explain());
        if self.mode == RetireMode::Report {
            // Nothing changes, in Snyk or in the journal: the next run names it again.
            stage.report.retired.push(format!("{line}: reported only"));
            return Ok(());
        }
        let operation = DriftOperation::Retire {
            uuid: self.uuid.clone(),
            placement: self.placement.clone(),
        };
        stage.intent(&operation).await?;
        let org_id = &self.placement.org_id;
        if let Some(target) = targets.find(stage, &self.placement).await? {
            match self.mode {
                RetireMode::Deactivate => {
                    for p in stage.snyk.projects(org_id, &target).await? {
                        if p.active {
                            stage.snyk.deactivate_project(org_id, &p.id).await?;
                        }
                    }
                }
                RetireMode::Delete => {
                    match stage.snyk.delete_target(org_id, &target).await {
                        Err(e) if !gone(&e) => return Err(e),
                        _ => {}
                    }
                    // Whether a target's projects go with it is not documented: delete what
                    // is left.
                    for p in stage.snyk.projects(org_id, &target).await? {
                        match stage.snyk.delete_project(org_id, &p.id).await {
                            Err(e) if !gone(&e) => return Err(e),
                            _ => {}
                        }
                    }
                }
                RetireMode::Report => {}
            }
        }
        stage.done(operation).await?;
        let verb = match self.mode {
            RetireMode::Delete => "deleted",
            _ => "deactivated",
        };
        let line = format!("{line}: {verb} in {}", self.org);
        match &self.why {
            RetireReason::Renamed { .. } => stage.report.renamed += 1,
            RetireReason::Moved { .. } => stage.report.moved += 1,
            RetireReason::Deleted | RetireReason::OutOfScope { .. } => {
                stage.report.retired.push(line);
                return Ok(());
            }
        }
        stage.report.replaced.push(line);
        Ok(())
    }
}
