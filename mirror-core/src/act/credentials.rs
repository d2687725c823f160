//! Rotating the Snyk-side Bitbucket credentials of `bitbucket-cloud` integrations: each
//! update is journaled with the credentials' fingerprint ([`crate::act::journal::fingerprint`]),
//! so that a rerun after a crash or a partial failure skips those already updated.

use futures_util::StreamExt;

use crate::act::journal::operation::journaled;
use crate::act::journal::{Event, JournalWriter};
use crate::error::Error;
use crate::ids::{IntegrationId, OrgId};
use crate::read::ports::SnykPort;

/// Updates each of `integrations` with the port's Snyk-side Bitbucket credentials, up to
/// `concurrency` at once, journaling each update with `fingerprint`; `updated` is told each
/// org whose integration was updated. Returns each org's outcome, in the order they ended.
pub async fn rotate(
    snyk: &dyn SnykPort,
    writer: &JournalWriter,
    integrations: Vec<(OrgId, IntegrationId)>,
    fingerprint: &str,
    concurrency: usize,
    updated: &(dyn Fn(&OrgId) + Sync),
) -> Vec<(OrgId, Result<(), Error>)> {
    let mut each = Vec::with_capacity(integrations.len());
    for (org_id, integration_id) in integrations {
        each.push(async move {
            let result = update_one(snyk, writer, &org_id, &integration_id, fingerprint).await;
            if result.is_ok() {
                updated(&org_id);
            }
            (org_id, result)
        });
    }
    futures_util::stream::iter(each)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// One update, and its event once Snyk took it.
async fn update_one(
    snyk: &dyn SnykPort,
    writer: &JournalWriter,
    org_id: &OrgId,
    integration_id: &IntegrationId,
    fingerprint: &str,
) -> Result<(), Error> {
    let update = snyk.update_bitbucket_credentials(org_id, integration_id);
    journaled(writer, None, update, |updated| {
        updated.is_ok().then(|| Event::CredentialsUpdated {
            org_id: org_id.clone(),
            integration_id: integration_id.clone(),
            fingerprint: fingerprint.to_owned(),
        })
    })
    .await?
}
