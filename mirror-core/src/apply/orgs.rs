//! Stage one of apply: the orgs the plan creates. An org is never created when its name
//! exists in the group: the group's orgs of that name are read again just before each
//! creation (another process, a second state directory, may have created it since the plan
//! was made), which is also how an intent left without an outcome by a crash is checked (the
//! org it made is adopted).

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt};

use crate::apply::{Stage, held_back};
use crate::conflict::{Conflict, ConflictReason};
use crate::error::Error;
use crate::ids::{IntegrationId, OrgId};
use crate::import::ApplyObserver;
use crate::journal::Event;
use crate::plan::{Action, Plan};
use crate::report::OrgStep;

/// An org ready for imports: its id, and its integration of the plan's type if it has one.
pub(crate) type Ready = HashMap<String, (OrgId, Option<IntegrationId>)>;

/// What became of one org the plan creates.
enum Outcome {
    /// Created (or found) and its integration looked up.
    Ready {
        org_id: OrgId,
        integration_id: Option<IntegrationId>,
        created: bool,
        /// What `settle` or turning notifications off could not do.
        warnings: Vec<String>,
        /// Whether notifications were turned off.
        quiet: bool,
    },
    /// Creating it failed.
    Failed(Error),
    /// The group holds several orgs of the name.
    Duplicate(Vec<OrgId>),
    /// The run was asked to stop before this org was started.
    Stopped,
}

/// Creates (or adopts) the orgs of `plan`'s `create-org` actions, up to `concurrency` at
/// once (each is a few requests; an estate of many workspaces should not wait for them one
/// by one before its first import); records conflicts and warnings in the report, in the
/// plan's order.
pub(crate) async fn create(
    plan: &Plan,
    stage: &mut Stage<'_>,
    observer: &dyn ApplyObserver,
) -> Result<Ready, Error> {
    let to_create: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateOrg { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let at_once = stage.options.concurrency.max(1);
    let outcomes: Vec<(&str, Outcome)> = {
        let shared = &*stage;
        // A future per org made in a loop, not by a closure: a closure returning a future
        // that borrows is not general enough for the spawned serve rounds.
        let mut each = Vec::with_capacity(to_create.len());
        for name in to_create {
            each.push(async move { Ok::<_, Error>((name, make_ready(plan, shared, name).await?)) });
        }
        futures_util::stream::iter(each)
            .buffered(at_once)
            .try_collect()
            .await?
    };
    let mut ready = Ready::new();
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Ready {
                org_id,
                integration_id,
                created,
                warnings,
                quiet,
            } => {
                observer.org_ready(name, created);
                stage.report.warnings.extend(warnings);
                if quiet {
                    stage.report.notifications_off.push(name.to_owned());
                }
                if created {
                    stage.report.orgs_created.push(name.to_owned());
                } else {
                    stage.report.orgs_adopted.push(name.to_owned());
                }
                ready.insert(name.to_owned(), (org_id, integration_id));
            }
            Outcome::Failed(e) => stage.org_failed(plan, name, OrgStep::CreateOrg, &e),
            Outcome::Duplicate(org_ids) => stage.report.conflicts.push(Conflict {
                org: name.to_owned(),
                reason: ConflictReason::DuplicateOrgName { org_ids },
                held_back: held_back(plan, name),
            }),
            Outcome::Stopped => stage.report.interrupted = true,
        }
    }
    Ok(ready)
}

/// Creates or finds the org `name`, journals it ready with its integration, and turns its
/// notifications off when it is new and the options say so.
async fn make_ready(plan: &Plan, stage: &Stage<'_>, name: &str) -> Result<Outcome, Error> {
    if stage.stopped() {
        return Ok(Outcome::Stopped);
    }
    let found: Vec<OrgId> = stage
        .snyk
        .orgs_named(&plan.group_id, name)
        .await?
        .into_iter()
        .filter(|o| o.name == name)
        .map(|o| o.id)
        .collect();
    let mut warnings = Vec::new();
    let (org_id, created) = match found.as_slice() {
        [] => {
            stage
                .writer
                .append(Event::OrgCreateIntent {
                    name: name.to_owned(),
                })
                .await?;
            match stage
                .snyk
                .create_org(&plan.group_id, name, plan.template_org_id.as_ref())
                .await
            {
                Ok(org) => settle(plan, stage, name, org.id, &mut warnings).await?,
                Err(e) => return Ok(Outcome::Failed(e)),
            }
        }
        [one] => (one.clone(), false),
        many => return Ok(Outcome::Duplicate(many.to_vec())),
    };
    let integration_id = stage
        .snyk
        .integrations(&org_id)
        .await?
        .get(plan.integration.api_name())
        .cloned();
    stage
        .writer
        .append(Event::OrgReady {
            name: name.to_owned(),
            org_id: org_id.clone(),
            integration_id: integration_id.clone(),
            created,
        })
        .await?;
    let mut quiet = false;
    if created && stage.options.notifications_off_for_new_orgs {
        match stage.snyk.disable_notifications(&org_id).await {
            Ok(()) => quiet = true,
            Err(e) => warnings.push(format!(
                "{name}: notifications could not be turned off: {e}"
            )),
        }
    }
    Ok(Outcome::Ready {
        org_id,
        integration_id,
        created,
        warnings,
        quiet,
    })
}

/// After creating the org `ours` named `name`: when another process created one of the name
/// at the same time, the older of them is kept by both (the one created first, then the
/// lower id), and this run deletes its own, still empty, and adopts the other (a warning in
/// `warnings` when it cannot). Returns the org to use and whether this run created it.
///
/// # Errors
/// When the orgs of the name cannot be listed (the org created is then used, as before).
async fn settle(
    plan: &Plan,
    stage: &Stage<'_>,
    name: &str,
    ours: OrgId,
    warnings: &mut Vec<String>,
) -> Result<(OrgId, bool), Error> {
    let mut named = stage.snyk.orgs_named(&plan.group_id, name).await?;
    named.retain(|o| o.name == name);
    let oldest = named
        .iter()
        .min_by(|a, b| {
            let when = |o: &crate::ports::SnykOrg| o.created.clone().unwrap_or_default();
            when(a).cmp(&when(b)).then(a.id.cmp(&b.id))
        })
        .map(|o| o.id.clone());
    match oldest {
        Some(kept) if kept != ours => {
            tracing::info!(org = name, %kept, created = %ours, "another process created the org at the same time; keeping the older");
            if let Err(e) = stage.snyk.delete_org(&ours).await {
                warnings.push(format!(
                    "{name}: another process created this org at the same time; the one created by this run ({ours}) could not be deleted ({e}): delete it in Snyk"
                ));
            }
            Ok((kept, false))
        }
        _ => Ok((ours, true)),
    }
}
