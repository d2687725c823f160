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
                    Ok(org) => (org.id, true),
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
