//! A journal written straight to disk, as a service leaves it after months: imports (intent,
//! acceptance, finish) and deliveries spread over days, all reconciled but the last few.
//! Shared by the compaction tests and the start-up benchmark.

use std::io::Write;
use std::path::Path;

use bitbucket_cloud_client::webhooks::{EventKey, RepositoryEvent};
use mirror_core::advanced::journal::{Event, JOURNAL_FILE};
use mirror_core::ports::JobHandle;
use snyk_client::ImportStatus;

/// What the generated journal holds.
pub(crate) struct Shape {
    /// Orgs, each with `imports / orgs` repositories.
    pub(crate) orgs: usize,
    /// Imports completed.
    pub(crate) imports: usize,
    /// Deliveries, spread evenly over `days`, each reconciled but the last `pending`.
    pub(crate) deliveries: usize,
    /// Over how many days.
    pub(crate) days: u64,
    /// Deliveries left queued at the end.
    pub(crate) pending: usize,
}

/// Writes `shape` as `dir`'s journal (replacing it).
pub(crate) fn write_journal(dir: &Path, shape: &Shape) {
    let file = std::fs::File::create(dir.join(JOURNAL_FILE)).unwrap();
    let mut out = std::io::BufWriter::new(file);
    let mut seq = 0u64;
    let mut line = |event: Event| {
        seq += 1;
        let mut v = serde_json::to_value(&event).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("seq".into(), seq.into());
        o.insert("time".into(), "2026-01-01T00:00:00.000Z".into());
        serde_json::to_writer(&mut out, &v).unwrap();
        out.write_all(b"\n").unwrap();
    };
    let per_org = shape.imports.div_ceil(shape.orgs.max(1)).max(1);
    for i in 0..shape.imports {
        let org_id = format!("org-{:04}", i / per_org);
        let repository = format!("ws-{:04}/repo-{i:06}", i / per_org);
        line(Event::ImportIntent {
            org_id: org_id.as_str().into(),
            repository: repository.clone(),
        });
        line(Event::ImportAccepted {
            org_id: org_id.as_str().into(),
            repository: repository.clone(),
            job: JobHandle {
                org_id: org_id.as_str().into(),
                integration_id: "int".into(),
                job_id: format!("job-{i}").into(),
            },
        });
        line(Event::ImportFinished {
            org_id: org_id.as_str().into(),
            repository,
            status: ImportStatus::Complete,
            projects: 2,
            messages: Vec::new(),
            uuid: Some(
                format!("{{00000000-0000-4000-8000-{i:012}}}")
                    .as_str()
                    .into(),
            ),
            branch: Some("main".to_owned()),
            workspace_uuid: None,
        });
    }
    let start = 1_780_000_000u64;
    // Spread evenly, several a second when there are more than 86,400 a day.
    let span = shape.days * 86_400;
    let per = shape.deliveries.max(1) as u64;
    for d in 0..shape.deliveries {
        let i = d % shape.imports.max(1);
        let request = format!("{{10000000-0000-4000-8000-{d:012}}}");
        line(Event::DeliveryQueued {
            request_uuid: request.clone(),
            at: start + d as u64 * span / per,
            delivery: RepositoryEvent {
                key: EventKey::Updated,
                uuid: format!("{{00000000-0000-4000-8000-{i:012}}}"),
                full_name: format!("ws-{:04}/repo-{i:06}", i / per_org),
                workspace: format!("ws-{:04}", i / per_org),
                workspace_uuid: None,
            },
        });
        if d + shape.pending < shape.deliveries {
            line(Event::DeliveriesDone {
                request_uuids: vec![request],
            });
        }
    }
}
