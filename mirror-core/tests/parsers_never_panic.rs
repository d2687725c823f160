//! Every file parser fed arbitrary and mutated input: no panic, only errors (or values).
//! Seeds are the real files snyk-api-import wrote, a full configuration, a plan and a journal.

use std::path::{Path, PathBuf};

use mirror_core::compat::{
    self, CreatedOrgLine, CreatedOrgs, FailedOrgLine, ImportJobLine, ImportTargets,
    ImportedTargetLine, OrgsData, ProjectLine,
};
use mirror_core::{Config, Plan};
use proptest::prelude::*;

fn samples() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/compat-samples");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    v.push(
        "[snyk]\ngroup_id = \"g\"\n[source]\nworkspaces = [\"a\"]\nskip_forks = true\n[mapping]\nkind = \"org-per-project\"\nname = \"{workspace}-{project}\"\n[apply]\nconcurrency = 3\n"
            .to_owned(),
    );
    v.push(
        r#"{"schema_version":1,"group_id":"g","integration":"bitbucket-cloud","actions":[{"action":"create-org","name":"a"},{"action":"import","org":{"state":"new","name":"a"},"workspace":"a","repository":"r","branch":"main"},{"action":"skip","workspace":"a","repository":"e","reason":"empty-repository"}]}"#
            .to_owned(),
    );
    v.push(
        "{\"seq\":1,\"time\":\"t\",\"event\":\"import-intent\",\"org_id\":\"o\",\"repository\":\"w/r\"}\n{\"seq\":2,\"time\":\"t\",\"event\":\"import-accepted\",\"org_id\":\"o\",\"repository\":\"w/r\",\"job\":\"o/i/j\"}\n"
            .to_owned(),
    );
    v
}

#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, String),
    Delete(usize, usize),
    HugeLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "{", "}", "[", "]", "\"", ",", ":", "\n", "null", "\u{0}", "é", "=", "[snyk]"
            ])
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s.to_owned())),
        (any::<usize>(), 0usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (1usize..200_000).prop_map(Mutation::HugeLine),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Flip(i, b) => {
                if !bytes.is_empty() {
                    let at = i % bytes.len();
                    bytes[at] ^= b;
                }
            }
            Mutation::Insert(i, s) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, s.bytes());
            }
            Mutation::Delete(i, n) => {
                if !bytes.is_empty() {
                    let at = i % bytes.len();
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            Mutation::HugeLine(n) => bytes.extend(std::iter::repeat_n(b'x', *n)),
        }
    }
    bytes
}

/// Every parser on one input, through the same entry points users reach (files on disk).
fn parse_all(dir: &Path, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = Config::from_toml(&text);
    let _ = Config::from_toml_unchecked(&text);
    let _ = Plan::from_json(&text);
    let file = dir.join("input");
    std::fs::write(&file, bytes).unwrap();
    let _ = compat::read_json::<OrgsData>(&file);
    let _ = compat::read_json::<CreatedOrgs>(&file);
    let _ = compat::read_json::<ImportTargets>(&file);
    let _ = compat::read_lines::<ImportedTargetLine>(&file);
    let _ = compat::read_lines::<CreatedOrgLine>(&file);
    let _ = compat::read_lines::<FailedOrgLine>(&file);
    let _ = compat::read_lines::<ImportJobLine>(&file);
    let _ = compat::read_lines::<ProjectLine>(&file);
    let _ = compat::imported_target_ids(&file);
    std::fs::write(
        dir.join(mirror_core::advanced::journal::JOURNAL_FILE),
        bytes,
    )
    .unwrap();
    let _ = mirror_core::advanced::journal::read_state(dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_files_give_errors_not_panics(
        seed in 0usize..14,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = samples();
        let dir = tempfile::tempdir().unwrap();
        parse_all(dir.path(), &mutate(&seeds[seed % seeds.len()], &mutations));
    }

    #[test]
    fn arbitrary_bytes_give_errors_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        parse_all(dir.path(), &bytes);
    }
}

#[test]
fn bad_inputs_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(compat::CREATED_ORGS_FILE);
    std::fs::write(&file, "{\"orgData\": [{\"name\": 5}]}").unwrap();
    let e = compat::read_json::<CreatedOrgs>(&file).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("snyk-created-orgs.json:1"), "{text}");
    assert!(text.contains("invalid type"), "{text}");
    let e = Config::from_toml("[snyk]\ngroup_id = 5\n").unwrap_err();
    assert!(e.to_string().contains("group_id"), "{e}");
}
