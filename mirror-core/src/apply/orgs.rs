//! Stage one of apply: the orgs the plan creates. An org is never created when its name
//! exists in the group: the group's orgs of that name are read again just before each
//! creation (another process, a second state directory, may have created it since the plan
//! was made), which is also how an intent left without an outcome by a crash is checked (the
//! org it made is adopted).

use std::collections::HashMap;

use crate::Error;
use crate::apply::{Stage, held_back};
use crate::conflict::{Conflict, ConflictReason};
use crate::ids::{IntegrationId, OrgId};
use crate::import::ApplyObserver;
use crate::journal::Event;
use crate::plan::{Action, Plan};
use crate::report::OrgStep;

/// An org ready for imports: its id, and its integration of the plan's type if it has one.
pub(crate) type Ready = HashMap<String, (OrgId, Option<IntegrationId>)>;

/// Creates (or adopts) the orgs of `plan`'s `create-org` actions; records conflicts and
/// warnings in the report.
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
    let mut ready = Ready::new();
    if to_create.is_empty() {
        return Ok(ready);
    }
    for name in to_create {
        if stage.stopped() {
            stage.report.interrupted = true;
            break;
        }
        let found: Vec<OrgId> = stage
            .snyk
            .orgs_named(&plan.group_id, name)
            .await?
            .into_iter()
            .filter(|o| o.name == name)
            .map(|o| o.id)
            .collect();
        let conflict = |reason| Conflict {
            org: name.to_owned(),
            reason,
            held_back: held_back(plan, name),
        };
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
                    Ok(org) => settle(plan, stage, name, org.id).await?,
                    Err(e) => {
                        stage.org_failed(plan, name, OrgStep::CreateOrg, &e);
                        continue;
                    }
                }
            }
            [one] => (one.clone(), false),
            many => {
                stage
                    .report
                    .conflicts
                    .push(conflict(ConflictReason::DuplicateOrgName {
                        org_ids: many.to_vec(),
                    }));
                continue;
            }
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
        observer.org_ready(name, created);
        if created {
            stage.quiet_notifications(name, &org_id).await;
            stage.report.orgs_created.push(name.to_owned());
        } else {
            stage.report.orgs_adopted.push(name.to_owned());
        }
        ready.insert(name.to_owned(), (org_id, integration_id));
    }
    Ok(ready)
}

/// After creating the org `ours` named `name`: when another process created one of the name
/// at the same time, the older of them is kept by both (the one created first, then the
/// lower id), and this run deletes its own, still empty, and adopts the other. Returns the org
/// to use and whether this run created it.
///
/// # Errors
/// When the orgs of the name cannot be listed (the org created is then used, as before).
async fn settle(
    plan: &Plan,
    stage: &mut Stage<'_>,
    name: &str,
    ours: OrgId,
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
                stage.report.warnings.push(format!(
                    "{name}: another process created this org at the same time; the one created by this run ({ours}) could not be deleted ({e}): delete it in Snyk"
                ));
            }
            Ok((kept, false))
        }
        _ => Ok((ours, true)),
    }
}
