//! Stage two of apply: every org that receives imports has an integration of the plan's type.
//! One is added where the plan says so, unless one appeared meanwhile; an org left without one
//! is a conflict, and nothing is imported into it.

use std::collections::{BTreeSet, HashMap};

use crate::act::apply::orgs::Ready;
use crate::act::apply::{Stage, held_back};
use crate::act::journal::Event;
use crate::act::journal::operation::journaled;
use crate::act::report::OrgStep;
use crate::decide::conflict::{Conflict, ConflictReason};
use crate::decide::plan::{Action, Plan};
use crate::error::Error;
use crate::ids::{IntegrationId, OrgId};

/// The integration each org imports through.
pub(crate) type IntegrationOf = HashMap<OrgId, IntegrationId>;

/// Adds the integrations the plan asks for; returns the integration of every usable org.
pub(crate) async fn ensure(
    plan: &Plan,
    ready: &Ready,
    stage: &mut Stage<'_>,
) -> Result<IntegrationOf, Error> {
    let kind = plan.integration.as_str();
    let mut integration_of: IntegrationOf = ready
        .values()
        .filter_map(|(id, int)| int.clone().map(|i| (id.clone(), i)))
        .collect();
    let mut failed: BTreeSet<OrgId> = BTreeSet::new();
    for a in &plan.actions {
        let Action::AddIntegration { org, org_id } = a else {
            continue;
        };
        let Some(id) = org_id
            .clone()
            .or_else(|| ready.get(org).map(|(id, _)| id.clone()))
        else {
            continue;
        };
        if integration_of.contains_key(&id) {
            continue;
        }
        if let Some(existing) = stage.snyk.integrations(&id).await?.get(kind).cloned() {
            integration_of.insert(id, existing);
            continue;
        }
        let add = stage.snyk.add_bitbucket_integration(&id);
        let added = journaled(&stage.writer, None, add, |added| match added {
            Ok(Some(int)) => Some(Event::IntegrationAdded {
                org_id: id.clone(),
                integration_id: int.clone(),
            }),
            _ => None,
        })
        .await?;
        let reason = match added {
            Ok(Some(int)) => {
                stage.report.integrations_added.push(org.clone());
                integration_of.insert(id, int);
                continue;
            }
            Ok(None) => ConflictReason::MissingIntegration {
                org_id: Some(id.clone()),
                integration: kind.to_owned(),
            },
            Err(e) => {
                failed.insert(id);
                stage.org_failed(plan, org, OrgStep::AddIntegration, &e);
                continue;
            }
        };
        failed.insert(id);
        stage.report.conflicts.push(Conflict {
            org: org.clone(),
            reason,
            held_back: held_back(plan, org),
        });
    }
    let mut without: Vec<(&String, &OrgId)> = ready
        .iter()
        .map(|(name, (id, _))| (name, id))
        .filter(|(_, id)| !integration_of.contains_key(*id) && !failed.contains(*id))
        .collect();
    without.sort();
    for (name, id) in without {
        stage.report.conflicts.push(Conflict {
            org: name.clone(),
            reason: ConflictReason::MissingIntegration {
                org_id: Some(id.clone()),
                integration: kind.to_owned(),
            },
            held_back: held_back(plan, name),
        });
    }
    Ok(integration_of)
}
