//! The JSON Schema files under `schemas/json/` are what the Rust types
//! generate, and the generated test records under `schemas/testdata/` are
//! what the examples seal to. `scripts/check-json-schemas` then validates the
//! examples and these records against the schemas with an independent
//! validator (Python `jsonschema`).
//!
//! After changing a type or an example, regenerate with
//! `DAYLIGHT_UPDATE_SCHEMAS=1 cargo test -p daylight-schemas --test json_schema`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use daylight_schemas::{json_schema, SignedRecord};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("DAYLIGHT_UPDATE_SCHEMAS").is_some()
}

/// Checks (or, when updating, writes) that `dir` holds exactly `files`.
fn check_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    if updating() {
        std::fs::create_dir_all(dir).unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        return;
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        on_disk,
        want,
        "{} is out of date: run DAYLIGHT_UPDATE_SCHEMAS=1 cargo test -p daylight-schemas --test json_schema",
        dir.display()
    );
    for (name, bytes) in files {
        let got = std::fs::read(dir.join(name)).unwrap();
        assert!(
            &got == bytes,
            "{}/{name} is out of date: run DAYLIGHT_UPDATE_SCHEMAS=1 cargo test -p daylight-schemas --test json_schema",
            dir.display()
        );
    }
}

#[test]
fn json_schemas_are_current() {
    let files: Vec<(String, Vec<u8>)> = json_schema::generate()
        .into_iter()
        .map(|(n, s)| (n, s.into_bytes()))
        .collect();
    assert_eq!(
        files.len(),
        13,
        "a schema per kind, the draft and the opening"
    );
    for (name, text) in &files {
        let v: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
    }
    check_dir(&root().join("json"), &files);
}

#[test]
fn generated_test_records_are_current() {
    let mut records = Vec::new();
    let mut openings = Vec::new();
    for (kind, record, opening) in sealed_examples() {
        // The file is the exact entry: no final newline.
        records.push((format!("{kind}.json"), record.to_bytes()));
        openings.push((format!("{kind}.json"), opening.to_json().into_bytes()));
    }
    check_dir(&root().join("testdata/records"), &records);
    check_dir(&root().join("testdata/openings"), &openings);
    // And they parse, verify and open.
    for (name, bytes) in &records {
        let r = SignedRecord::parse(bytes).unwrap();
        r.verify_signature(signer_for(r.kind()).verifier()).unwrap();
        assert_eq!(name, &format!("{}.json", r.kind()));
    }
}
