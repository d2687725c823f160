//! The journal: what apply did, one JSON line per event, flushed to disk (`fsync`) before apply
//! goes on. Every remote action is journaled before (intent) and after (outcome), so a rerun
//! after a crash at any point knows what happened and what to check.
//!
//! The state directory holds `journal.jsonl` and `lock`. The lock is an OS file lock
//! (`flock`): a second run on the same directory is refused, and a killed process releases it.
//! Writing happens on tokio's blocking pool, so `fsync` never blocks the async runtime, and
//! events that arrive while a write is under way are written together with one `fsync` (group
//! commit): many imports in flight cost one disk flush per batch, not one per event.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub mod compact;
pub(crate) mod operation;
mod seen;

pub use seen::MAX_REMEMBERED;

pub use compact::{Compacted, Step};
use tokio::sync::oneshot;

use crate::decide::rules::{History, Placement, Quarantined, RepoRecord, Retired, Sighting};
use crate::error::Error;
use crate::ids::ProjectId;
use crate::ids::RepoUuid;
use crate::ids::{IntegrationId, OrgId, WorkspaceUuid};
use crate::read::ports::{ImportStatus, JobHandle};
use bitbucket_cloud_client::webhooks::RepositoryEvent;

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The lock's file name in the state directory.
pub const LOCK_FILE: &str = "lock";

/// One journaled event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// A run began.
    RunStarted {
        /// Imports the plan holds.
        imports: usize,
        /// The run's id (`bb-snyk-mirror runs` lists them, `undo` takes one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<String>,
    },
    /// About to create an org.
    OrgCreateIntent {
        /// Its name.
        name: String,
    },
    /// The org exists now (created, or found after a crash).
    OrgReady {
        /// Its name.
        name: String,
        /// Its id.
        org_id: OrgId,
        /// The integration imports go through, if it has one.
        integration_id: Option<IntegrationId>,
        /// Whether this run created it.
        created: bool,
    },
    /// A `bitbucket-cloud` integration was added to an org.
    IntegrationAdded {
        /// The org.
        org_id: OrgId,
        /// The new integration.
        integration_id: IntegrationId,
    },
    /// An integration's PR checks and fix PRs are about to be turned off for the run
    /// (`apply.quiet_integrations`); `original` holds the values to put back. Written before
    /// the change, so a crash at any point leaves what to restore.
    IntegrationQuieted {
        /// The org.
        org_id: OrgId,
        /// The integration.
        integration_id: IntegrationId,
        /// The settings as they were, only the keys the run changes.
        original: serde_json::Map<String, serde_json::Value>,
    },
    /// An integration's settings were put back as they were before the run.
    IntegrationRestored {
        /// The org.
        org_id: OrgId,
        /// The integration.
        integration_id: IntegrationId,
    },
    /// An integration's Bitbucket credentials were replaced.
    CredentialsUpdated {
        /// The org.
        org_id: OrgId,
        /// The integration.
        integration_id: IntegrationId,
        /// A fingerprint of the new credentials (FNV-1a of e-mail and token; not reversible
        /// for tokens of this length), so that a rerun skips what it already changed.
        fingerprint: String,
    },
    /// About to post an import.
    ImportIntent {
        /// The org.
        org_id: OrgId,
        /// `workspace/repository`.
        repository: String,
    },
    /// Snyk accepted the import.
    ImportAccepted {
        /// The org.
        org_id: OrgId,
        /// `workspace/repository`.
        repository: String,
        /// Where the job lives (`org/integration/job` in the file).
        job: JobHandle,
    },
    /// The job finished.
    ImportFinished {
        /// The org.
        org_id: OrgId,
        /// `workspace/repository`.
        repository: String,
        /// `complete`, `failed` or `aborted`.
        status: ImportStatus,
        /// Projects created.
        projects: u32,
        /// Snyk's messages for what failed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        messages: Vec<String>,
        /// The repository's Bitbucket uuid, when known: a completed import records where the
        /// repository is mirrored now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uuid: Option<RepoUuid>,
        /// The branch imported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// The workspace's uuid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace_uuid: Option<WorkspaceUuid>,
    },
    /// A repository found already in Snyk (imported before this tool, or by another) is
    /// recorded by its uuid from now on.
    RepoTracked(Sighting),
    /// About to change something already in Snyk (retire a target, move projects to another
    /// branch, rename an org); each step of it can be repeated safely, so a crash between the
    /// intent and the outcome means doing it again.
    DriftIntent {
        /// What.
        operation: DriftOperation,
    },
    /// The change is done.
    DriftDone {
        /// What.
        operation: DriftOperation,
    },
    /// Snyk refused the import before accepting it, or it could not be followed.
    ImportFailed {
        /// The org.
        org_id: OrgId,
        /// `workspace/repository`.
        repository: String,
        /// Why.
        message: String,
        /// Whether the org is at its project cap.
        #[serde(default)]
        project_cap: bool,
    },
    /// A run ended.
    RunFinished,
    /// Snyk refused tags in an org (plans without them): `[[metadata]]` tags are not tried
    /// there again for a week, and the attributes are still set.
    TagsRefused {
        /// The org.
        org_id: OrgId,
        /// When (seconds since the Unix epoch).
        at: u64,
    },
    /// A Bitbucket delivery was accepted (before it was answered): queued until a
    /// [`Event::DeliveriesDone`] names it, and remembered by its `X-Request-UUID` for at least
    /// [`DELIVERY_MEMORY_SECONDS`] so that a retry or a replay acts once.
    DeliveryQueued {
        /// `X-Request-UUID`.
        request_uuid: String,
        /// When it arrived (seconds since the Unix epoch).
        at: u64,
        /// What it says.
        delivery: RepositoryEvent,
    },
    /// Queued deliveries were reconciled.
    DeliveriesDone {
        /// Their `X-Request-UUID`s.
        request_uuids: Vec<String>,
    },
    /// Queued deliveries for one repository kept failing and were set aside: out of the
    /// queue (a restart does not take them again), listed until a full reconcile, which
    /// covers their repository, succeeds ([`Event::SetAsideCleared`]).
    DeliveriesSetAside {
        /// Their `X-Request-UUID`s.
        request_uuids: Vec<String>,
        /// The repository.
        uuid: RepoUuid,
        /// Its workspace, as the deliveries say.
        workspace: String,
        /// The last failure, in words.
        why: String,
        /// How many times the repository was tried.
        tries: u32,
        /// When (seconds since the Unix epoch).
        at: u64,
    },
    /// A full reconcile succeeded: the deliveries set aside before `at` (when it began) are
    /// covered by it.
    SetAsideCleared {
        /// When the reconcile began (seconds since the Unix epoch).
        at: u64,
    },
}

/// Deliveries for one repository that kept failing and were set aside
/// ([`Event::DeliveriesSetAside`]), left to the next full reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// The repository.
    pub uuid: RepoUuid,
    /// Its workspace, as the deliveries say.
    pub workspace: String,
    /// How many deliveries.
    pub deliveries: usize,
    /// The last failure, in words.
    pub why: String,
    /// How many times the repository was tried.
    pub tries: u32,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}

/// How long a delivery's `X-Request-UUID` is remembered: 25 hours (Bitbucket's retries come
/// within minutes; a replay within a day acts once).
pub const DELIVERY_MEMORY_SECONDS: u64 = 25 * 3600;

/// A delivery's `X-Request-UUID`, kept compactly: a UUID as its 128 bits (whatever its case
/// and braces), anything else as text. A day of deliveries is remembered, so its size counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryId {
    /// A UUID.
    Uuid(u128),
    /// Anything else.
    Other(Box<str>),
}

impl DeliveryId {
    /// Reads an `X-Request-UUID`.
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        let bare = t
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .unwrap_or(t);
        let hex: String = bare.chars().filter(|c| *c != '-').collect();
        let shaped = bare.len() == 36
            && bare
                .char_indices()
                .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
        match (shaped, u128::from_str_radix(&hex, 16)) {
            (true, Ok(n)) if hex.len() == 32 => Self::Uuid(n),
            _ => Self::Other(t.into()),
        }
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uuid(n) => {
                let h = format!("{n:032x}");
                write!(
                    f,
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            Self::Other(t) => f.write_str(t),
        }
    }
}

/// The deliveries queued in the journal for one repository, not yet reconciled: however many
/// arrive, the repository is reconciled once for all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRepository {
    /// The repository.
    pub uuid: RepoUuid,
    /// The workspace it is in, as the latest delivery says.
    pub workspace: String,
    /// Whether a delivery said it was deleted.
    pub deleted: bool,
    /// Whether a delivery said it was created (its round may start while others wait for
    /// Bitbucket's budget).
    pub created: bool,
    /// The deliveries, in arrival order.
    pub requests: Vec<DeliveryId>,
    /// When each of `requests` arrived (seconds since the Unix epoch), in the same order.
    pub arrived: Vec<u64>,
    /// When the oldest of them still queued arrived (seconds since the Unix epoch).
    pub since: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    time: String,
    #[serde(flatten)]
    event: Event,
}

/// Where an import stands according to the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportState {
    /// About to be posted; whether Snyk got it is unknown.
    Intended,
    /// Accepted, with its job, not yet finished.
    Accepted(JobHandle),
    /// Finished.
    Finished {
        /// The job's status.
        status: ImportStatus,
        /// Projects created.
        projects: u32,
    },
    /// Refused before acceptance.
    Failed,
}

/// A change to what is already in Snyk, journaled before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DriftOperation {
    /// A target retired (deactivated, deleted, or only reported).
    Retire {
        /// The repository, when known by uuid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uuid: Option<RepoUuid>,
        /// Where its target is.
        #[serde(flatten)]
        placement: Placement,
        /// What was done, on the outcome (`drift-done`) only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done: Option<RetireDone>,
    },
    /// Projects a run deactivated (`bb-snyk-mirror undo`), or someone did (`sync --restore`),
    /// active again.
    Reactivate {
        /// Where the target is.
        #[serde(flatten)]
        placement: Placement,
        /// The run that deactivated them; none when someone else did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<String>,
        /// The projects.
        projects: Vec<ProjectId>,
    },
    /// A target's projects moved from one branch to another.
    Branch {
        /// The repository.
        uuid: RepoUuid,
        /// The org.
        org_id: OrgId,
        /// `workspace/repository`.
        full_name: String,
        /// The branch the projects tested.
        from: Option<String>,
        /// The new default branch.
        to: String,
    },
    /// An org renamed after its workspace.
    RenameOrg {
        /// The org.
        org_id: OrgId,
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// The history of an old target's projects (ignores, tags, attributes, test frequency,
    /// owner) copied to the projects of the target that replaces it, before the old one is
    /// retired. Each step reads the new project first, so doing it again adds nothing twice.
    CarryOver {
        /// The old target.
        from: Placement,
        /// The new target.
        to: Placement,
        /// What was copied, on the outcome only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carried: Option<crate::act::report::Carried>,
    },
}

/// What a retirement did, as its outcome records it: what `undo` can reverse, and what waits
/// for its deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetireDone {
    /// The run that did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// Whether the target was deleted (else its projects were deactivated, or it was only
    /// reported).
    #[serde(default)]
    pub deleted: bool,
    /// The projects deactivated or deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<ProjectId>,
    /// Deactivated to be deleted after `drift.delete_after`, and why it was retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Retired>,
    /// The target was a second one of its name (`--dedupe`) or one this mirror never
    /// imported (`drift.adopt`): the records of the name stay as they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_ours: bool,
}

/// What the journal says, replayed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalState {
    /// Orgs whose creation was intended, by name → id once known.
    pub orgs: BTreeMap<String, Option<(OrgId, Option<IntegrationId>)>>,
    /// Imports not completed, by (org id, lowercased `workspace/repository`): intended,
    /// accepted, failed, or finished without completing.
    pub imports: BTreeMap<(OrgId, String), ImportState>,
    /// Completed imports (and repositories found already in Snyk): (org id, lowercased
    /// `workspace/repository`) → projects created; shared with the [`History`] planning reads.
    pub completed: Arc<BTreeMap<(OrgId, String), u32>>,
    /// Orgs found at the project cap.
    pub capped_orgs: std::collections::BTreeSet<OrgId>,
    /// (org id, integration id) → fingerprint of the credentials last put into it.
    pub credentials: BTreeMap<(OrgId, IntegrationId), String>,
    /// (org id, integration id) → settings to put back: quieted by a run not yet restored.
    pub quieted: BTreeMap<(OrgId, IntegrationId), serde_json::Map<String, serde_json::Value>>,
    /// The repositories mirrored, by Bitbucket uuid; shared with the [`History`] planning
    /// reads (copied only when the journal changes while a plan still holds it).
    pub repos: Arc<BTreeMap<RepoUuid, RepoRecord>>,
    /// Targets deactivated to be deleted later, by (org id, lowercased name).
    pub quarantined: BTreeMap<(OrgId, String), Quarantined>,
    /// Targets this mirror retired (deactivated or deleted) and has not imported or
    /// reactivated since, by (org id, lowercased name): what it did, not what people did.
    pub retired: std::collections::BTreeSet<(OrgId, String)>,
    /// Orgs where Snyk refused tags, with when (see [`Event::TagsRefused`]).
    pub tags_refused: BTreeMap<OrgId, u64>,
    /// Deliveries queued and not yet reconciled, by repository.
    pub pending: BTreeMap<RepoUuid, PendingRepository>,
    /// How many deliveries `pending` holds.
    pub pending_deliveries: usize,
    /// How many repositories of `pending` a delivery said were created (kept as they change,
    /// so that the event loop need not look through the queue to know).
    pub pending_created: usize,
    /// Deliveries set aside since the last full reconcile that succeeded.
    pub set_aside: Vec<SetAside>,
    /// `X-Request-UUID`s seen within [`DELIVERY_MEMORY_SECONDS`] of the newest (at most
    /// [`MAX_REMEMBERED`]).
    deliveries_seen: seen::SeenRequests,
    /// Events read.
    pub events: u64,
    /// The sequence number of the last event (compaction leaves gaps, so it may be more than
    /// `events`).
    pub last_seq: u64,
}

impl JournalState {
    fn apply(&mut self, event: &Event) {
        self.events += 1;
        match event {
            Event::OrgCreateIntent { name } => {
                self.orgs.entry(name.clone()).or_insert(None);
            }
            Event::OrgReady {
                name,
                org_id,
                integration_id,
                ..
            } => {
                self.orgs
                    .insert(name.clone(), Some((org_id.clone(), integration_id.clone())));
            }
            Event::ImportIntent { org_id, repository } => {
                self.imports
                    .entry((org_id.clone(), repository.to_lowercase()))
                    .or_insert(ImportState::Intended);
            }
            Event::ImportAccepted {
                org_id,
                repository,
                job,
            } => {
                self.imports.insert(
                    (org_id.clone(), repository.to_lowercase()),
                    ImportState::Accepted(job.clone()),
                );
            }
            Event::ImportFinished { .. } => self.apply_finished(event),
            Event::RepoTracked(Sighting {
                uuid,
                placement,
                branch,
                workspace_uuid,
            }) => {
                // Found in Snyk with its projects: planning treats it as imported, as it does
                // the imports this tool completed.
                Arc::make_mut(&mut self.completed)
                    .entry((placement.org_id.clone(), placement.full_name.to_lowercase()))
                    .or_insert(1);
                self.mirrored(uuid, placement.clone(), branch, workspace_uuid);
            }
            Event::DriftIntent { .. } => {}
            Event::DriftDone { operation } => self.drifted(operation),
            Event::ImportFailed {
                org_id,
                repository,
                project_cap,
                ..
            } => {
                let key = (org_id.clone(), repository.to_lowercase());
                self.uncomplete(&key);
                self.imports.insert(key, ImportState::Failed);
                if *project_cap {
                    self.capped_orgs.insert(org_id.clone());
                }
            }
            Event::CredentialsUpdated { .. }
            | Event::IntegrationQuieted { .. }
            | Event::IntegrationRestored { .. } => self.apply_setting(event),
            Event::DeliveryQueued { .. }
            | Event::DeliveriesDone { .. }
            | Event::DeliveriesSetAside { .. }
            | Event::SetAsideCleared { .. } => self.apply_delivery(event),
            Event::TagsRefused { org_id, at } => {
                self.tags_refused.insert(org_id.clone(), *at);
            }
            Event::IntegrationAdded { .. } | Event::RunStarted { .. } | Event::RunFinished => {}
        }
    }

    /// An import's end: complete (the repository is mirrored where it went) or not.
    fn apply_finished(&mut self, event: &Event) {
        let Event::ImportFinished {
            org_id,
            repository,
            status,
            projects,
            uuid,
            branch,
            workspace_uuid,
            ..
        } = event
        else {
            return;
        };
        let key = (org_id.clone(), repository.to_lowercase());
        if *status == ImportStatus::Complete {
            self.imports.remove(&key);
            self.retired.remove(&key);
            Arc::make_mut(&mut self.completed).insert(key, *projects);
        } else {
            self.uncomplete(&key);
            self.imports.insert(
                key,
                ImportState::Finished {
                    status: status.clone(),
                    projects: *projects,
                },
            );
        }
        if let (ImportStatus::Complete, Some(uuid)) = (status, uuid) {
            let placement = Placement {
                org_id: org_id.clone(),
                full_name: repository.clone(),
                target_id: None,
            };
            self.mirrored(uuid, placement, branch, workspace_uuid);
        }
    }

    /// The events of the integrations' settings and credentials.
    fn apply_setting(&mut self, event: &Event) {
        match event {
            Event::CredentialsUpdated {
                org_id,
                integration_id,
                fingerprint,
            } => {
                self.credentials.insert(
                    (org_id.clone(), integration_id.clone()),
                    fingerprint.clone(),
                );
            }
            Event::IntegrationQuieted {
                org_id,
                integration_id,
                original,
            } => {
                // A second quieting before a restore keeps the first originals: by then the
                // settings read were already quiet.
                self.quieted
                    .entry((org_id.clone(), integration_id.clone()))
                    .or_insert_with(|| original.clone());
            }
            Event::IntegrationRestored {
                org_id,
                integration_id,
            } => {
                self.quieted
                    .remove(&(org_id.clone(), integration_id.clone()));
            }
            _ => {}
        }
    }

    /// The events of the delivery queue.
    fn apply_delivery(&mut self, event: &Event) {
        match event {
            Event::DeliveryQueued {
                request_uuid,
                at,
                delivery,
            } => self.queue(DeliveryId::parse(request_uuid), *at, delivery),
            Event::DeliveriesDone { request_uuids } => {
                self.take_pending(request_uuids);
            }
            Event::DeliveriesSetAside {
                request_uuids,
                uuid,
                workspace,
                why,
                tries,
                at,
            } => {
                let deliveries = self.take_pending(request_uuids);
                self.set_aside.push(SetAside {
                    uuid: uuid.clone(),
                    workspace: workspace.clone(),
                    deliveries,
                    why: why.clone(),
                    tries: *tries,
                    at: *at,
                });
            }
            Event::SetAsideCleared { at } => self.set_aside.retain(|s| s.at >= *at),
            _ => {}
        }
    }

    /// Takes these deliveries out of the queue; returns how many were in it.
    fn take_pending(&mut self, request_uuids: &[String]) -> usize {
        let done: std::collections::HashSet<DeliveryId> =
            request_uuids.iter().map(|r| DeliveryId::parse(r)).collect();
        let (mut removed, mut created_gone) = (0, 0);
        self.pending.retain(|_, p| {
            // Most repositories hold none of these: left as they are.
            if !p.requests.iter().any(|r| done.contains(r)) {
                return true;
            }
            let before = p.requests.len();
            let (requests, arrived) = std::mem::take(&mut p.requests)
                .into_iter()
                .zip(std::mem::take(&mut p.arrived))
                .filter(|(r, _)| !done.contains(r))
                .unzip();
            (p.requests, p.arrived) = (requests, arrived);
            removed += before - p.requests.len();
            // The queue's oldest age is that of what is still queued.
            p.since = p.arrived.first().copied().unwrap_or(p.since);
            let left = !p.requests.is_empty();
            created_gone += usize::from(!left && p.created);
            left
        });
        self.pending_deliveries -= removed.min(self.pending_deliveries);
        self.pending_created -= created_gone.min(self.pending_created);
        removed
    }

    /// Whether a delivery with this `X-Request-UUID` was seen within
    /// [`DELIVERY_MEMORY_SECONDS`].
    pub fn delivery_seen(&self, request_uuid: &str) -> bool {
        self.deliveries_seen
            .contains(&DeliveryId::parse(request_uuid))
    }

    /// Queues a delivery (once per request), forgetting the requests seen long before it.
    fn queue(&mut self, id: DeliveryId, at: u64, delivery: &RepositoryEvent) {
        if !self.deliveries_seen.insert(&id, at) {
            return;
        }
        let uuid = RepoUuid::from(delivery.uuid.as_str());
        let pending = self
            .pending
            .entry(uuid.clone())
            .or_insert_with(|| PendingRepository {
                uuid,
                workspace: String::new(),
                deleted: false,
                created: false,
                requests: Vec::new(),
                arrived: Vec::new(),
                since: at,
            });
        pending.workspace.clone_from(&delivery.workspace);
        pending.deleted |= delivery.key == bitbucket_cloud_client::webhooks::EventKey::Deleted;
        if !pending.created && delivery.key == bitbucket_cloud_client::webhooks::EventKey::Created {
            pending.created = true;
            self.pending_created += 1;
        }
        pending.requests.push(id);
        pending.arrived.push(at);
        self.pending_deliveries += 1;
    }

    /// `uuid` is mirrored at `placement` now; an earlier placement of it elsewhere (a rename, a
    /// move) becomes stale, to retire.
    fn mirrored(
        &mut self,
        uuid: &RepoUuid,
        placement: Placement,
        branch: &Option<String>,
        workspace_uuid: &Option<WorkspaceUuid>,
    ) {
        // A target mirrored again leaves quarantine.
        let key = (placement.org_id.clone(), placement.full_name.to_lowercase());
        self.quarantined.remove(&key);
        let repos = Arc::make_mut(&mut self.repos);
        match repos.get_mut(uuid) {
            Some(record) => {
                if !record.current.same_place(&placement) {
                    let old = std::mem::replace(&mut record.current, placement);
                    record.stale.retain(|s| !s.same_place(&record.current));
                    record.stale.push(old);
                } else if placement.target_id.is_some() {
                    record.current.target_id = placement.target_id;
                }
                record.branch = branch.clone().or(record.branch.take());
                if workspace_uuid.is_some() {
                    record.workspace_uuid = workspace_uuid.clone();
                }
            }
            None => {
                repos.insert(
                    uuid.clone(),
                    RepoRecord {
                        current: placement,
                        branch: branch.clone(),
                        workspace_uuid: workspace_uuid.clone(),
                        stale: Vec::new(),
                    },
                );
            }
        }
    }

    /// Forgets a completed import (it failed since, or its target was retired).
    fn uncomplete(&mut self, key: &(OrgId, String)) {
        if self.completed.contains_key(key) {
            Arc::make_mut(&mut self.completed).remove(key);
        }
    }

    /// A drift operation is done: the records follow it.
    fn drifted(&mut self, operation: &DriftOperation) {
        match operation {
            DriftOperation::Retire {
                uuid,
                placement,
                done,
            } => {
                let key = (placement.org_id.clone(), placement.full_name.to_lowercase());
                if done.as_ref().is_some_and(|d| d.not_ours) {
                    // Someone else's target (adopted) becomes known as retired by this
                    // mirror; a second target of one of ours leaves the name's records alone.
                    if !self.completed.contains_key(&key) {
                        self.retired.insert(key);
                    }
                    return;
                }
                // Its import record goes too: a repository of that name created later is new.
                self.imports.remove(&key);
                self.uncomplete(&key);
                self.quarantined.remove(&key);
                if done.is_some() {
                    self.retired.insert(key.clone());
                }
                if let (Some(uuid), Some(done)) = (uuid, done)
                    && let Some(reason) = done.quarantine
                {
                    let entry = Quarantined {
                        uuid: uuid.clone(),
                        placement: placement.clone(),
                        reason,
                        deactivated_at: done.at,
                    };
                    self.quarantined.insert(key, entry);
                }
                let Some(uuid) = uuid else {
                    return;
                };
                let repos = Arc::make_mut(&mut self.repos);
                if let Some(record) = repos.get_mut(uuid) {
                    record.stale.retain(|s| !s.same_place(placement));
                    if record.current.same_place(placement) {
                        repos.remove(uuid);
                    }
                }
            }
            DriftOperation::Branch { uuid, to, .. } => {
                if let Some(record) = Arc::make_mut(&mut self.repos).get_mut(uuid) {
                    record.branch = Some(to.clone());
                }
            }
            DriftOperation::Reactivate { placement, .. } => {
                let key = (placement.org_id.clone(), placement.full_name.to_lowercase());
                self.quarantined.remove(&key);
                self.retired.remove(&key);
            }
            DriftOperation::RenameOrg { .. } | DriftOperation::CarryOver { .. } => {}
        }
    }

    /// What planning needs: completed imports and capped orgs.
    pub fn history(&self) -> History {
        History {
            completed: self.completed.clone(),
            capped_orgs: self.capped_orgs.clone(),
            repos: self.repos.clone(),
            quarantined: self.quarantined.values().cloned().collect(),
            retired: self.retired.clone(),
            tags_refused: self.tags_refused.clone(),
        }
    }
}

/// Points the org ids of the events whose records stay (completed imports, repositories
/// recorded by uuid) at one shared copy per org: at 100,000 imports, a copy each is megabytes.
fn share_org_ids(event: &mut Event, seen: &mut std::collections::HashSet<OrgId>) {
    let id = match event {
        Event::ImportFinished { org_id, .. } => org_id,
        Event::RepoTracked(Sighting { placement, .. }) => &mut placement.org_id,
        _ => return,
    };
    match seen.get(id) {
        Some(shared) => *id = shared.clone(),
        None => {
            seen.insert(id.clone());
        }
    }
}

/// Reads a journal file (without locking), for inspection and planning.
///
/// # Errors
/// [`Error::Malformed`] naming the line of a malformed entry; a torn last line (a crash in the
/// middle of a write) is ignored.
pub fn read_state(dir: &Path) -> Result<JournalState, Error> {
    let mut state = JournalState::default();
    // Each org's id is kept once, however many records name it.
    let mut org_ids: std::collections::HashSet<OrgId> = std::collections::HashSet::new();
    for_each_event(dir, |seq, _, mut event| {
        share_org_ids(&mut event, &mut org_ids);
        state.apply(&event);
        state.last_seq = state.last_seq.max(seq);
    })?;
    Ok(state)
}

/// Reads the journal of the state directory `dir`, line by line (a journal of 100,000 imports
/// is tens of megabytes, never held whole), telling `each` every event with its sequence
/// number and time (RFC 3339). A missing journal has no events; a torn last line is ignored.
///
/// # Errors
/// When the journal cannot be read, or a line that is not the last is not a journal entry.
pub fn for_each_event(dir: &Path, mut each: impl FnMut(u64, &str, Event)) -> Result<(), Error> {
    let path = dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Ok(());
    }
    for_each_line(&path, |_, _, l| each(l.seq, &l.time, l.event))
}

/// Reads the journal at `path` line by line, telling `each` every entry with its line's index
/// and text. Blank lines and a torn last line are skipped.
///
/// # Errors
/// When the file cannot be read, or a line that is not the last is not a journal entry.
fn for_each_line(path: &Path, mut each: impl FnMut(usize, &str, Line)) -> Result<(), Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut lines = BufReader::new(file).lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let is_last = lines.peek().is_none();
        match serde_json::from_str::<Line>(&line) {
            Ok(l) => each(i, &line, l),
            Err(_) if is_last => {
                tracing::warn!(line = i + 1, "ignoring a torn last journal line");
            }
            Err(e) => {
                return Err(Error::Malformed {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: format!(
                        "not a journal entry ({e}); the journal was edited or corrupted"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Whether a file is empty or ends with a line break, reading only its last byte.
fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

type Ack = oneshot::Sender<Result<(), Error>>;

/// An observer told the sequence number of every event once it is on disk (tests use it to
/// stop a process at chosen points).
pub type WriteObserver = Arc<dyn Fn(u64) + Send + Sync>;

/// Events waiting for the next write, and whether a flusher is at work.
#[derive(Default)]
struct Pending {
    events: Vec<(Event, Ack)>,
    flushing: bool,
}

/// The open file and the sequence number of its last event.
struct Disk {
    file: File,
    path: PathBuf,
    seq: u64,
    /// Its size after the last compaction, kept beside it across processes (zero: never).
    baseline: u64,
}

/// Why a batch was not written; every event of the batch gets its own copy.
enum Failure {
    Encode(String),
    Io(std::io::ErrorKind, String),
}

/// What every [`JournalWriter`] shares.
struct Shared {
    pending: Mutex<Pending>,
    disk: Mutex<Disk>,
    /// The journal replayed, kept up to date with every event on disk.
    state: Mutex<JournalState>,
    observer: Option<WriteObserver>,
}

// Both guarded values stay consistent if a holder panicked: the queue is a plain list, and a
// torn line on disk is what the reader already tolerates.
use bitbucket_cloud_client::api_support::lock;

impl Shared {
    /// Compacts the journal (always, or once it has grown enough), under the disk lock.
    fn compact(&self, always: bool, observe: &dyn Fn(Step)) -> Result<Option<Compacted>, Error> {
        let mut disk = lock(&self.disk);
        let len = disk
            .file
            .metadata()
            .map_err(|e| Error::io(&disk.path, e))?
            .len();
        let grown =
            len >= compact::MIN_BYTES && len >= disk.baseline.saturating_mul(compact::GROWTH);
        if !always && !grown {
            return Ok(None);
        }
        let dir = disk
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let newest = lock(&self.state).deliveries_seen.newest();
        let done = compact::compact(&dir, newest, observe)?;
        disk.baseline = done.bytes_after;
        compact::remember_size(&dir, done.bytes_after);
        // Every rewrite drops a line (an intent, an acceptance or a delivery): with none
        // dropped the file was left as it is, and appends go on to it.
        if done.lines_after == done.lines_before {
            tracing::debug!(
                lines = done.lines_before,
                "journal not compacted: nothing to drop"
            );
            return Ok(Some(done));
        }
        // The journal is a new file now: appends go to it.
        disk.file = OpenOptions::new()
            .append(true)
            .open(&disk.path)
            .map_err(|e| Error::io(&disk.path, e))?;
        tracing::info!(
            lines_before = done.lines_before,
            lines_after = done.lines_after,
            bytes_before = done.bytes_before,
            bytes_after = done.bytes_after,
            "journal compacted"
        );
        Ok(Some(done))
    }

    /// Writes batches until the queue is empty: one `write` and one `fsync` per batch.
    fn flush(&self) {
        loop {
            let batch = {
                let mut pending = lock(&self.pending);
                if pending.events.is_empty() {
                    pending.flushing = false;
                    return;
                }
                std::mem::take(&mut pending.events)
            };
            let mut disk = lock(&self.disk);
            let first = disk.seq + 1;
            let mut text = String::new();
            let mut encoded: Result<(), String> = Ok(());
            for (i, (event, _)) in batch.iter().enumerate() {
                let line = Line {
                    seq: first + i as u64,
                    time: rfc3339(SystemTime::now()),
                    event: event.clone(),
                };
                match serde_json::to_string(&line) {
                    Ok(json) => {
                        text.push_str(&json);
                        text.push('\n');
                    }
                    Err(e) => {
                        encoded = Err(format!("cannot encode a journal entry: {e}"));
                        break;
                    }
                }
            }
            let written = encoded.map_err(Failure::Encode).and_then(|()| {
                disk.file
                    .write_all(text.as_bytes())
                    .and_then(|()| disk.file.sync_data())
                    .map_err(|e| Failure::Io(e.kind(), e.to_string()))
            });
            let last = first + batch.len() as u64 - 1;
            if written.is_ok() {
                disk.seq = last;
                // Under the disk lock, so the state takes events in the file's order.
                let mut state = lock(&self.state);
                for (event, _) in &batch {
                    state.apply(event);
                }
                state.last_seq = last;
            }
            let path = disk.path.clone();
            drop(disk);
            // Observed before anyone is told: an acknowledged event has always been observed.
            if written.is_ok()
                && let Some(observer) = &self.observer
            {
                for seq in first..=last {
                    observer(seq);
                }
            }
            for (_, ack) in batch {
                let _ = ack.send(match &written {
                    Ok(()) => Ok(()),
                    Err(Failure::Encode(message)) => Err(Error::Internal(message.clone())),
                    Err(Failure::Io(kind, message)) => Err(Error::io(
                        &path,
                        std::io::Error::new(*kind, message.clone()),
                    )),
                });
            }
        }
    }
}

/// An open, locked journal.
pub struct Journal {
    shared: Arc<Shared>,
    dir: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("dir", &self.dir).finish()
    }
}

impl Journal {
    /// Opens (creating) the state directory, takes its lock, and replays the journal.
    ///
    /// # Errors
    /// [`Error::Locked`] when another run holds the directory; I/O and malformed-journal
    /// errors.
    pub fn open(dir: &Path, observer: Option<WriteObserver>) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        compact::remove_stale(dir)?;
        let state = read_state(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // A torn last line gets its own line ended, so the next event starts clean.
        if !ends_with_newline(&path).map_err(|e| Error::io(&path, e))? {
            file.write_all(b"\n").map_err(|e| Error::io(&path, e))?;
        }
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            disk: Mutex::new(Disk {
                baseline: compact::compacted_size(dir),
                file,
                path,
                seq: state.last_seq,
            }),
            state: Mutex::new(state),
            observer,
        });
        Ok(Self {
            shared,
            dir: dir.to_path_buf(),
            _lock: lock_file,
        })
    }

    /// What the journal holds now (every event written so far, by any writer), as a copy.
    pub fn state(&self) -> JournalState {
        self.with_state(JournalState::clone)
    }

    /// Reads what the journal holds now without copying it. `read` must not wait on the
    /// journal (it runs under the lock that writers take).
    pub fn with_state<T>(&self, read: impl FnOnce(&JournalState) -> T) -> T {
        read(&lock(&self.shared.state))
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compacts the journal once it has grown to [`compact::GROWTH`] times its size after the
    /// last compaction (and to at least [`compact::MIN_BYTES`]); see [`compact`]. Writers
    /// wait meanwhile.
    ///
    /// # Errors
    /// When the journal cannot be read or rewritten (it is then left as it was).
    pub fn compact_if_grown(&self) -> Result<Option<Compacted>, Error> {
        self.shared.compact(false, &|_| {})
    }

    /// Compacts the journal now, telling `observe` each step (see [`compact`]).
    ///
    /// # Errors
    /// As [`Journal::compact_if_grown`].
    pub fn compact(&self, observe: &dyn Fn(Step)) -> Result<Compacted, Error> {
        self.shared
            .compact(true, observe)
            .and_then(|done| done.ok_or_else(|| Error::Internal("compaction skipped".into())))
    }

    /// A handle for appending from many tasks.
    pub fn writer(&self) -> JournalWriter {
        JournalWriter {
            shared: self.shared.clone(),
        }
    }
}

/// Appends events; cheap to clone.
#[derive(Clone)]
pub struct JournalWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalWriter")
    }
}

impl JournalWriter {
    /// [`Journal::compact_if_grown`], off the async threads. A failure is logged: the journal
    /// is left as it was, and the next call tries again.
    pub async fn compact_if_grown(&self) {
        let shared = self.shared.clone();
        let done = tokio::task::spawn_blocking(move || shared.compact(false, &|_| {})).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "the journal could not be compacted; it is left as it was");
        }
    }

    /// Appends an event and waits until it is on disk.
    ///
    /// # Errors
    /// When it cannot be written; apply stops rather than act unrecorded.
    pub async fn append(&self, event: Event) -> Result<(), Error> {
        let (ack, done) = oneshot::channel();
        let start = {
            let mut pending = lock(&self.shared.pending);
            pending.events.push((event, ack));
            !std::mem::replace(&mut pending.flushing, true)
        };
        if start {
            let shared = self.shared.clone();
            // The task is not awaited: its result travels through each event's `ack`.
            drop(tokio::task::spawn_blocking(move || shared.flush()));
        }
        done.await.map_err(|_| Error::JournalStopped {
            last_event: lock(&self.shared.disk).seq,
        })?
    }
}

/// A fingerprint of credentials: FNV-1a (64 bits) of `email`, a separator and `token`, in hex.
pub fn fingerprint(email: &str, token: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.bytes().chain([0u8]).chain(token.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Formats a time as RFC 3339 UTC with milliseconds (`2026-11-22T13:04:12.849Z`).
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_352_652_849);
        assert_eq!(rfc3339(t), "2026-11-22T13:04:12.849Z");
    }

    #[test]
    fn delivery_ids_are_uuids_whatever_their_case_and_braces() {
        let a = DeliveryId::parse("{4D1E3F2A-0000-4000-8000-00000000ABCD}");
        let b = DeliveryId::parse("4d1e3f2a-0000-4000-8000-00000000abcd");
        assert_eq!(a, b);
        assert!(matches!(a, DeliveryId::Uuid(_)));
        assert_eq!(a.to_string(), "4d1e3f2a-0000-4000-8000-00000000abcd");
        assert_eq!(DeliveryId::parse(&a.to_string()), a);
        let other = DeliveryId::parse("req-17");
        assert_eq!(other, DeliveryId::Other("req-17".into()));
        assert_eq!(other.to_string(), "req-17");
        // 32 hexadecimal digits without the hyphens are not taken for a UUID.
        assert!(matches!(
            DeliveryId::parse("4d1e3f2a000040008000000000000abcd"),
            DeliveryId::Other(_)
        ));
    }

    #[test]
    fn deliveries_for_one_repository_wait_together_and_old_ones_are_forgotten() {
        use bitbucket_cloud_client::webhooks::{EventKey, RepositoryEvent};
        let event = |key| RepositoryEvent {
            key,
            uuid: "{r}".to_owned(),
            full_name: "ws/r".to_owned(),
            workspace: "ws".to_owned(),
            workspace_uuid: None,
        };
        let mut state = JournalState::default();
        let queued = |id: &str, at, key| Event::DeliveryQueued {
            request_uuid: id.to_owned(),
            at,
            delivery: event(key),
        };
        state.apply(&queued("a", 100, EventKey::Created));
        state.apply(&queued("b", 101, EventKey::Updated));
        state.apply(&queued("a", 102, EventKey::Deleted));
        assert_eq!(state.pending.len(), 1);
        assert_eq!(state.pending_deliveries, 2);
        assert!(
            !state.pending[&RepoUuid::from("{r}")].deleted,
            "a repeat is not queued"
        );
        assert!(state.pending[&RepoUuid::from("{r}")].created);
        assert_eq!(state.pending_created, 1);
        state.apply(&Event::DeliveriesDone {
            request_uuids: vec!["a".to_owned()],
        });
        assert_eq!(state.pending_deliveries, 1);
        // What is left waits since it arrived (before, since the first delivery taken).
        assert_eq!(state.pending[&RepoUuid::from("{r}")].since, 101);
        state.apply(&Event::DeliveriesDone {
            request_uuids: vec!["b".to_owned()],
        });
        assert!(state.pending.is_empty());
        assert_eq!(state.pending_created, 0);
        assert!(state.delivery_seen("a"));
        // A day and more later, `a` is forgotten.
        state.apply(&queued(
            "c",
            102 + DELIVERY_MEMORY_SECONDS,
            EventKey::Updated,
        ));
        assert!(!state.delivery_seen("a"));
        assert!(state.delivery_seen("c"));
    }

    #[tokio::test]
    async fn events_replay_and_a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), None).unwrap();
        assert!(matches!(
            Journal::open(dir.path(), None),
            Err(Error::Locked { .. })
        ));
        let w = journal.writer();
        w.append(Event::ImportIntent {
            org_id: "o".into(),
            repository: "ws/A".into(),
        })
        .await
        .unwrap();
        w.append(Event::ImportFinished {
            org_id: "o".into(),
            repository: "ws/A".into(),
            status: ImportStatus::Complete,
            projects: 0,
            messages: vec![],
            uuid: None,
            branch: None,
            workspace_uuid: None,
        })
        .await
        .unwrap();
        drop(w);
        drop(journal);
        let state = read_state(dir.path()).unwrap();
        assert_eq!(state.events, 2);
        assert_eq!(
            state
                .history()
                .completed
                .get(&("o".into(), "ws/a".to_owned())),
            Some(&0)
        );
        // Reopening works once the first holder is gone.
        Journal::open(dir.path(), None).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_all_on_disk_in_one_numbered_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let observer: WriteObserver = Arc::new(move |seq| lock(&record).push(seq));
        let journal = Journal::open(dir.path(), Some(observer)).unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let w = journal.writer();
                tokio::spawn(async move {
                    w.append(Event::ImportIntent {
                        org_id: "o".into(),
                        repository: format!("ws/r{i}"),
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Every acknowledged event was on disk and observed, numbered 1..=200 without gaps.
        assert_eq!(*lock(&seen), (1..=200).collect::<Vec<u64>>());
        drop(journal);
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        let reopened = Journal::open(dir.path(), None).unwrap();
        assert_eq!(reopened.state().events, 200);
        assert_eq!(reopened.state().imports.len(), 200);
    }

    #[test]
    fn a_tracked_repository_is_one_flat_line_and_replays_into_a_record() {
        let event = Event::RepoTracked(Sighting {
            uuid: "{u-1}".into(),
            placement: Placement {
                org_id: "o".into(),
                full_name: "ws/A".into(),
                target_id: Some("t-1".into()),
            },
            branch: Some("main".into()),
            workspace_uuid: None,
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "repo-tracked", "uuid": "{u-1}", "org_id": "o",
                               "full_name": "ws/A", "target_id": "t-1", "branch": "main"})
        );
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
        let mut state = JournalState::default();
        state.apply(&event);
        let record = &state.repos[&RepoUuid::from("{u-1}")];
        assert_eq!(
            record.current.target_id.as_ref().map(|t| t.as_str()),
            Some("t-1")
        );
        assert!(
            state
                .completed
                .contains_key(&("o".into(), "ws/a".to_owned()))
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_bad_middle_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good =
            r#"{"seq":1,"time":"t","event":"import-intent","org_id":"o","repository":"w/r"}"#;
        std::fs::write(
            dir.path().join(JOURNAL_FILE),
            format!("{good}\n{{\"seq\":2,\"ti"),
        )
        .unwrap();
        assert_eq!(read_state(dir.path()).unwrap().events, 1);
        std::fs::write(dir.path().join(JOURNAL_FILE), format!("garbage\n{good}\n")).unwrap();
        let e = read_state(dir.path()).unwrap_err();
        assert!(e.to_string().contains("journal.jsonl:1"), "{e}");
    }
}
