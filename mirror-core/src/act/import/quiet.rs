//! The settings guard: with `apply.quiet_integrations`, an org's integration has its PR checks
//! and fix PRs turned off just before the run's first import into that org, and put back as
//! soon as its last import has ended. The values to put back are journaled before anything
//! changes, so a run that dies in between leaves them for the next run, which puts them back
//! whatever its own options.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::act::import::ImportContext;
use crate::act::journal::operation::journaled;
use crate::act::journal::{Event, JournalState};
use crate::act::report::Report;
use crate::error::Error;
use crate::ids::{IntegrationId, OrgId};
use crate::read::ports::Settings;

/// The settings a quiet run changes: PR checks, dependency upgrade PRs and fix PRs (fresh and
/// backlog). Returns their values now (to put back) and the values that turn them off. Keys
/// the integration does not have are left alone.
fn quiet_settings(current: &Settings) -> (Settings, Settings) {
    let mut original = Settings::new();
    let mut quiet = Settings::new();
    for key in ["pullRequestTestEnabled", "dependencyAutoUpgradeEnabled"] {
        if let Some(value) = current.get(key) {
            original.insert(key.to_owned(), value.clone());
            quiet.insert(key.to_owned(), Value::Bool(false));
        }
    }
    if let Some(Value::Object(prs)) = current.get("autoRemediationPrs") {
        let mut off = prs.clone();
        for key in ["freshPrsEnabled", "backlogPrsEnabled"] {
            if off.contains_key(key) {
                off.insert(key.to_owned(), Value::Bool(false));
            }
        }
        original.insert("autoRemediationPrs".to_owned(), Value::Object(prs.clone()));
        quiet.insert("autoRemediationPrs".to_owned(), Value::Object(off));
    }
    (original, quiet)
}

type Key = (OrgId, IntegrationId);

/// What is quiet now and must be put back, by (org, integration), with the org's name.
pub(crate) struct SettingsGuard {
    enabled: bool,
    handled: HashSet<OrgId>,
    to_restore: BTreeMap<Key, (String, Settings)>,
    /// Quieted by a run that died and not restored: the settings now are the quiet ones.
    leftovers: BTreeMap<Key, Settings>,
}

impl SettingsGuard {
    /// A guard that quiets only when `enabled`, and puts back whatever `state` says an earlier
    /// run left quiet.
    pub(crate) fn new(enabled: bool, state: &JournalState) -> Self {
        Self {
            enabled,
            handled: HashSet::new(),
            to_restore: state
                .quieted
                .iter()
                .map(|(key, original)| (key.clone(), (key.0.to_string(), original.clone())))
                .collect(),
            leftovers: state.quieted.clone(),
        }
    }

    /// Called before each import is started: the first time for an org, quiets its
    /// integration.
    pub(crate) async fn before_import(
        &mut self,
        org: (&OrgId, &str),
        integration_id: &IntegrationId,
        ctx: &ImportContext,
        report: &mut Report,
    ) -> Result<(), Error> {
        let (org_id, org_name) = org;
        if !self.enabled || !self.handled.insert(org_id.clone()) {
            return Ok(());
        }
        let key = (org_id.clone(), integration_id.clone());
        let saved = self.leftovers.get(&key).cloned();
        let current = match saved.clone() {
            Some(original) => original,
            None => match ctx.snyk.integration_settings(org_id, integration_id).await {
                Ok(s) => s,
                Err(e) => {
                    report.warnings.push(format!(
                        "{org_name}: the integration's settings could not be read, so PR checks and fix PRs stay as they are: {e}"
                    ));
                    return Ok(());
                }
            },
        };
        let (original, off) = quiet_settings(&current);
        if off.is_empty() {
            return Ok(());
        }
        // What to put back is on disk before anything changes (once: a run that died left it).
        let intent = saved.is_none().then(|| Event::IntegrationQuieted {
            org_id: key.0.clone(),
            integration_id: key.1.clone(),
            original: original.clone(),
        });
        let quiet = ctx.snyk.update_integration_settings(&key.0, &key.1, &off);
        // Restored later even if this fails: part of it may have been applied.
        if let Err(e) = journaled(&ctx.writer, intent, quiet, |_| None).await? {
            report.warnings.push(format!(
                "{org_name}: PR checks and fix PRs could not be turned off: {e}"
            ));
        }
        self.to_restore.insert(key, (org_name.to_owned(), original));
        Ok(())
    }

    /// Called when `org` has nothing running and nothing queued: puts its settings back.
    pub(crate) async fn org_done(
        &mut self,
        org: &OrgId,
        ctx: &ImportContext,
        report: &mut Report,
    ) -> Result<(), Error> {
        let keys: Vec<Key> = self
            .to_restore
            .keys()
            .filter(|(o, _)| o == org)
            .cloned()
            .collect();
        for key in keys {
            if let Some((name, original)) = self.to_restore.remove(&key) {
                restore(key, &name, &original, ctx, report).await?;
            }
        }
        Ok(())
    }

    /// At the end of the run: puts back everything still quiet.
    pub(crate) async fn finish(
        self,
        ctx: &ImportContext,
        report: &mut Report,
    ) -> Result<(), Error> {
        for (key, (name, original)) in self.to_restore {
            restore(key, &name, &original, ctx, report).await?;
        }
        report.integrations_quieted.sort();
        Ok(())
    }
}

/// Puts an integration's settings back and journals it; a failure is a warning, and the
/// journal keeps the values for the next run.
async fn restore(
    (org_id, integration_id): Key,
    org_name: &str,
    original: &Settings,
    ctx: &ImportContext,
    report: &mut Report,
) -> Result<(), Error> {
    let put_back = ctx
        .snyk
        .update_integration_settings(&org_id, &integration_id, original);
    let restored = journaled(&ctx.writer, None, put_back, |put_back| {
        put_back.is_ok().then(|| Event::IntegrationRestored {
            org_id: org_id.clone(),
            integration_id: integration_id.clone(),
        })
    })
    .await?;
    match restored {
        Ok(()) => {
            report.integrations_quieted.push(org_name.to_owned());
        }
        Err(e) => report.warnings.push(format!(
            "{org_name}: PR checks and fix PRs could not be put back ({e}); the next run tries again"
        )),
    }
    Ok(())
}
