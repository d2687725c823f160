//! Stage one of apply: the orgs the plan creates. An org is never created when its name
//! exists in the group: the group's orgs of that name are read again just before each
//! creation (another process, a second state directory, may have created it since the plan
//! was made), which is also how an intent left without an outcome by a crash is checked (the
//! org it made is adopted).

use std::collections::{BTreeMap, HashMap};

use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::act::apply::{Stage, held_back};
use crate::act::import::ApplyObserver;
use crate::act::journal::operation::journaled;
use crate::act::journal::{Event, JournalWriter};
use crate::act::report::OrgStep;
use crate::decide::conflict::{Conflict, ConflictReason};
use crate::decide::plan::{Action, Plan};
use crate::error::Error;
use crate::ids::{GroupId, IntegrationId, OrgId};
use crate::read::ports::{SnykOrg, SnykPort};

/// An org ready for imports: its id, and its integration of the plan's type if it has one.
pub(crate) type Ready = HashMap<String, (OrgId, Option<IntegrationId>)>;

/// One org to make ready: where, under which name, from which template, and the integration
/// type its imports go through.
pub(crate) struct OrgSpec<'a> {
    pub(crate) group_id: &'a GroupId,
    pub(crate) name: &'a str,
    pub(crate) template: Option<&'a OrgId>,
    pub(crate) integration: &'a str,
}

/// What making an org ready needs: Snyk, the journal, whether a new org's notifications are
/// turned off, and the stop signal.
pub(crate) struct Maker<'a> {
    pub(crate) snyk: &'a dyn SnykPort,
    pub(crate) writer: &'a JournalWriter,
    pub(crate) notifications_off: bool,
    pub(crate) stop: Option<&'a watch::Receiver<bool>>,
}

/// What became of one org to make ready.
pub(crate) enum Outcome {
    /// Created (or found) and its integrations looked up.
    Ready {
        org: SnykOrg,
        integrations: BTreeMap<String, IntegrationId>,
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

/// Makes the orgs of `specs` ready, up to `at_once` side by side (each is a few requests;
/// an estate of many workspaces should not wait for them one by one before its first
/// import); the outcomes in the order of `specs`.
pub(crate) async fn make_all<'s>(
    maker: &Maker<'_>,
    specs: &'s [OrgSpec<'s>],
    at_once: usize,
) -> Result<Vec<(&'s OrgSpec<'s>, Outcome)>, Error> {
    // A future per org made in a loop, not by a closure: a closure returning a future that
    // borrows is not general enough for the spawned serve rounds.
    let mut each = Vec::with_capacity(specs.len());
    for spec in specs {
        each.push(async move { Ok::<_, Error>((spec, make_ready(maker, spec).await?)) });
    }
    futures_util::stream::iter(each)
        .buffered(at_once.max(1))
        .try_collect()
        .await
}

/// Creates (or adopts) the orgs of `plan`'s `create-org` actions (see [`make_all`]); records
/// conflicts and warnings in the report, in the plan's order.
pub(crate) async fn create(
    plan: &Plan,
    stage: &mut Stage<'_>,
    observer: &dyn ApplyObserver,
) -> Result<Ready, Error> {
    let specs: Vec<OrgSpec<'_>> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateOrg { name } => Some(OrgSpec {
                group_id: &plan.group_id,
                name: name.as_str(),
                template: plan.template_org_id.as_ref(),
                integration: plan.integration.as_str(),
            }),
            _ => None,
        })
        .collect();
    let outcomes = {
        let maker = Maker {
            snyk: stage.snyk.as_ref(),
            writer: &stage.writer,
            notifications_off: stage.options.notifications_off_for_new_orgs,
            stop: stage.stop,
        };
        make_all(&maker, &specs, stage.options.concurrency).await?
    };
    let mut ready = Ready::new();
    for (spec, outcome) in outcomes {
        let name = spec.name;
        match outcome {
            Outcome::Ready {
                org,
                integrations,
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
                let integration_id = integrations.get(spec.integration).cloned();
                ready.insert(name.to_owned(), (org.id, integration_id));
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

/// Creates or finds the org of `spec` (never a second of its name: the group is asked just
/// before), journals the intent before creating and the org ready after, with its integration
/// of the spec's type; turns a new org's notifications off when `maker` says so.
async fn make_ready(maker: &Maker<'_>, spec: &OrgSpec<'_>) -> Result<Outcome, Error> {
    if maker.stop.is_some_and(|s| *s.borrow()) {
        return Ok(Outcome::Stopped);
    }
    let name = spec.name;
    let mut found = maker.snyk.orgs_named(spec.group_id, name).await?;
    found.retain(|o| o.name == name);
    let mut warnings = Vec::new();
    let (org, created) = match found.len() {
        0 => {
            // The org ready is journaled below, once its integrations are known: an intent
            // without it is looked for by name next time.
            let intent = Event::OrgCreateIntent {
                name: name.to_owned(),
            };
            let create = maker.snyk.create_org(spec.group_id, name, spec.template);
            match journaled(maker.writer, Some(intent), create, |_| None).await? {
                Ok(org) => settle(maker.snyk, spec, org, &mut warnings).await?,
                Err(e) => return Ok(Outcome::Failed(e)),
            }
        }
        1 => (found.remove(0), false),
        _ => {
            return Ok(Outcome::Duplicate(
                found.into_iter().map(|o| o.id).collect(),
            ));
        }
    };
    let ready = |integrations: &Result<BTreeMap<String, IntegrationId>, Error>| {
        integrations
            .as_ref()
            .ok()
            .map(|integrations| Event::OrgReady {
                name: name.to_owned(),
                org_id: org.id.clone(),
                integration_id: integrations.get(spec.integration).cloned(),
                created,
            })
    };
    let integrations = maker.snyk.integrations(&org.id);
    let integrations = journaled(maker.writer, None, integrations, ready).await??;
    let mut quiet = false;
    if created && maker.notifications_off {
        match maker.snyk.disable_notifications(&org.id).await {
            Ok(()) => quiet = true,
            Err(e) => warnings.push(format!(
                "{name}: notifications could not be turned off: {e}"
            )),
        }
    }
    Ok(Outcome::Ready {
        org,
        integrations,
        created,
        warnings,
        quiet,
    })
}

/// After creating the org `ours` of `spec`: when another process created one of the name at
/// the same time, the older of them is kept by both (the one created first, then the lower
/// id), and this run deletes its own, still empty, and adopts the other (a warning in
/// `warnings` when it cannot). Returns the org to use and whether this run created it.
///
/// # Errors
/// When the orgs of the name cannot be listed.
async fn settle(
    snyk: &dyn SnykPort,
    spec: &OrgSpec<'_>,
    ours: SnykOrg,
    warnings: &mut Vec<String>,
) -> Result<(SnykOrg, bool), Error> {
    let name = spec.name;
    let mut named = snyk.orgs_named(spec.group_id, name).await?;
    named.retain(|o| o.name == name);
    let oldest = named.into_iter().min_by(|a, b| {
        let when = |o: &SnykOrg| o.created.unwrap_or_default();
        when(a).cmp(&when(b)).then(a.id.cmp(&b.id))
    });
    match oldest {
        Some(kept) if kept.id != ours.id => {
            tracing::info!(org = name, kept = %kept.id, created = %ours.id, "another process created the org at the same time; keeping the older");
            if let Err(e) = snyk.delete_org(&ours.id).await {
                warnings.push(format!(
                    "{name}: another process created this org at the same time; the one created by this run ({}) could not be deleted ({e}): delete it in Snyk",
                    ours.id
                ));
            }
            Ok((kept, false))
        }
        _ => Ok((ours, true)),
    }
}
