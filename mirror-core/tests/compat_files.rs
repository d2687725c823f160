//! Round trips over every file snyk-api-import really wrote (`testdata/compat-samples/`):
//! read into the typed form, write, read again; nothing is lost and the known fields are typed.

use std::path::{Path, PathBuf};

use mirror_core::compat::{
    self, CreatedOrgLine, CreatedOrgs, FailedOrgLine, ImportJobLine, ImportTargets,
    ImportedTargetLine, OrgsData, ProjectLine,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/compat-samples")
}

fn round_trip_json<T: DeserializeOwned + Serialize>(path: &Path) {
    let typed: T = compat::read_json(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    compat::write_json(&out, &typed).unwrap();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(original, written, "{}", path.display());
    // Minified, as the anchor writes.
    assert!(!std::fs::read_to_string(&out).unwrap().contains('\n'));
}

fn round_trip_lines<T: DeserializeOwned + Serialize>(path: &Path) -> Vec<T> {
    let typed: Vec<T> = compat::read_lines(path).unwrap();
    assert!(!typed.is_empty(), "{}", path.display());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    for line in &typed {
        compat::append_line(&out, line).unwrap();
    }
    let original: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let written: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(original, written, "{}", path.display());
    typed
}

#[test]
fn every_sample_round_trips() {
    let mut seen = 0;
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        seen += 1;
        if name.ends_with("-bitbucket-cloud-orgs.json") {
            round_trip_json::<OrgsData>(&path);
        } else if name == compat::CREATED_ORGS_FILE {
            round_trip_json::<CreatedOrgs>(&path);
        } else if name == compat::IMPORT_TARGETS_FILE {
            round_trip_json::<ImportTargets>(&path);
        } else if name.ends_with(".created-orgs.log") {
            round_trip_lines::<CreatedOrgLine>(&path);
        } else if name.ends_with(".failed-to-create-orgs.log") {
            round_trip_lines::<FailedOrgLine>(&path);
        } else if name.starts_with("imported-targets.") {
            round_trip_lines::<ImportedTargetLine>(&path);
        } else if name.ends_with(".import-jobs.log") {
            round_trip_lines::<ImportJobLine>(&path);
        } else if name.ends_with(".imported-projects.log") || name.ends_with(".failed-projects.log")
        {
            round_trip_lines::<ProjectLine>(&path);
        } else {
            panic!("no reader for sample {name}");
        }
    }
    assert_eq!(seen, 10, "the samples changed");
}

#[test]
fn typed_fields_and_file_names_match_the_anchor() {
    let dir = samples();
    let orgs: OrgsData =
        compat::read_json(&dir.join(compat::orgs_data_file("group-1111"))).unwrap();
    assert_eq!(orgs.orgs[0].name, "ws-one");
    assert_eq!(orgs.orgs[0].group_id, "group-1111");
    let created: CreatedOrgs = compat::read_json(&dir.join(compat::CREATED_ORGS_FILE)).unwrap();
    assert_eq!(created.org_data[1].id, "existing-ws-two-org");
    assert_eq!(
        created.org_data[1]
            .integrations
            .get("bitbucket-cloud")
            .map(String::as_str),
        Some("int-bbc-existing-ws-two-org")
    );
    let targets: ImportTargets = compat::read_json(&dir.join(compat::IMPORT_TARGETS_FILE)).unwrap();
    assert_eq!(targets.targets.len(), 4);
    assert_eq!(
        targets.targets[0].target_id(),
        "org-ws-one:int-bbc-org-ws-one:repo-a:ws-one:main"
    );
    let ids = compat::imported_target_ids(&dir.join("imported-targets.after-import.log")).unwrap();
    assert!(ids.contains("org-ws-one:int-bbc-org-ws-one:repo-a:ws-one:main"));
    assert_eq!(
        compat::created_orgs_log("group-1111"),
        "group-1111.created-orgs.log"
    );
    assert!(dir.join(compat::created_orgs_log("group-1111")).exists());
    assert!(dir.join(compat::failed_orgs_log("group-1111")).exists());
    assert!(dir.join(compat::import_jobs_log("org-ws-one")).exists());
    assert!(
        dir.join(compat::imported_projects_log("org-ws-one"))
            .exists()
    );
    assert!(dir.join(compat::failed_projects_log("org-ws-one")).exists());
    let failed: Vec<ProjectLine> =
        compat::read_lines(&dir.join(compat::failed_projects_log("org-ws-one"))).unwrap();
    assert_eq!(
        failed[0].user_message.as_deref(),
        Some("Could not parse pom.xml")
    );
    assert!(!failed[0].success);
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(compat::IMPORTED_TARGETS_LOG);
    let good =
        std::fs::read_to_string(samples().join("imported-targets.list-imported.log")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(&log, format!("{first}\n{{\"target\": 5}}\n")).unwrap();
    let e = compat::read_lines::<ImportedTargetLine>(&log).unwrap_err();
    assert!(e.to_string().contains("imported-targets.log:2"), "{e}");

    let json = dir.path().join(compat::IMPORT_TARGETS_FILE);
    std::fs::write(&json, "{\"targets\": [\n{\"target\": {\"owner\": \"a\"}}]}").unwrap();
    let e = compat::read_json::<ImportTargets>(&json).unwrap_err();
    assert!(e.to_string().contains(":2:"), "{e}");
    assert!(e.to_string().contains("name"), "{e}");

    // Unknown fields are kept, not refused.
    std::fs::write(&json, r#"{"targets":[],"future":1}"#).unwrap();
    let t: ImportTargets = compat::read_json(&json).unwrap();
    assert_eq!(t.extra.get("future"), Some(&Value::from(1)));
}

#[test]
fn written_log_lines_carry_the_standard_fields() {
    let fields = compat::log_fields(30);
    for key in ["name", "hostname", "pid", "level", "time", "v"] {
        assert!(fields.contains_key(key), "{key}");
    }
    assert_eq!(fields["level"], Value::from(30));
}
