//! snyk-api-import's `orgs:create`, on the org creation apply uses: journaled, never a second
//! org of a name, resumable after a crash.

use std::collections::BTreeMap;

use tokio::sync::watch;

use crate::act::apply::orgs::{Maker, OrgSpec, Outcome, make_all};
use crate::act::journal::Journal;
use crate::compat::OrgDataEntry;
use crate::config::IntegrationType;
use crate::error::Error;
use crate::ids::{GroupId, IntegrationId, OrgId};
use crate::read::ports::{SnykOrg, SnykPort};

/// What became of one org of an `orgs:create` file.
#[derive(Debug)]
#[non_exhaustive]
pub enum OrgCreation {
    /// Created by this run.
    Created {
        /// The org.
        org: SnykOrg,
        /// Its integrations: type → id.
        integrations: BTreeMap<String, IntegrationId>,
    },
    /// One org of the name was there already (a run that crashed after creating it, or
    /// someone else): it is used, never a second created.
    Existing {
        /// The org.
        org: SnykOrg,
        /// Its integrations: type → id.
        integrations: BTreeMap<String, IntegrationId>,
    },
    /// Several orgs of the name are in the group: none is created or chosen.
    Duplicate(Vec<OrgId>),
    /// Snyk refused to create it.
    Failed(Error),
    /// The stop signal came before it was started.
    Stopped,
}

/// Creates the orgs `entries` name, each in its group from its template, through the org
/// creation apply uses: the group is asked for the name just before (an org of the name is
/// used, never a second created), the intent is journaled before the creation and the org
/// after, so a run that crashed between them finds and uses the org it made. Up to
/// `concurrency` side by side; the outcomes are in the order of `entries`. Notifications are
/// left as Snyk sets them (snyk-api-import does not touch them).
///
/// # Errors
/// When the journal cannot be written, or a group's orgs or an org's integrations cannot be
/// read; a creation Snyk refuses is [`OrgCreation::Failed`].
pub async fn create_orgs(
    snyk: &dyn SnykPort,
    journal: &Journal,
    entries: &[OrgDataEntry],
    concurrency: usize,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<Vec<OrgCreation>, Error> {
    let templates: Vec<Option<OrgId>> = entries
        .iter()
        .map(|e| e.source_org_id.as_deref().map(OrgId::from))
        .collect();
    let groups: Vec<GroupId> = entries
        .iter()
        .map(|e| GroupId::from(e.group_id.as_str()))
        .collect();
    let specs: Vec<OrgSpec<'_>> = entries
        .iter()
        .zip(templates.iter().zip(&groups))
        .map(|(e, (template, group_id))| OrgSpec {
            group_id,
            name: &e.name,
            template: template.as_ref(),
            integration: IntegrationType::BitbucketCloud.as_str(),
        })
        .collect();
    let writer = journal.writer();
    let maker = Maker {
        snyk,
        writer: &writer,
        notifications_off: false,
        stop,
    };
    let outcomes = make_all(&maker, &specs, concurrency).await?;
    Ok(outcomes
        .into_iter()
        .map(|(_, outcome)| match outcome {
            Outcome::Ready {
                org,
                integrations,
                created: true,
                ..
            } => OrgCreation::Created { org, integrations },
            Outcome::Ready {
                org, integrations, ..
            } => OrgCreation::Existing { org, integrations },
            Outcome::Duplicate(ids) => OrgCreation::Duplicate(ids),
            Outcome::Failed(e) => OrgCreation::Failed(e),
            Outcome::Stopped => OrgCreation::Stopped,
        })
        .collect())
}
