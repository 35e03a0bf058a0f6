//! transparency-dev/merkle `testdata/subtreeconsistency` against
//! [`daylight_core::subtree`]: every case, valid and invalid (see
//! core/testdata/SOURCES.md, "merkle/").

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use daylight_core::subtree::verify_subtree_consistency;
use daylight_core::{Hash, LeafIndex, Subtree, TreeSize};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    BASE64.decode(v.as_str().unwrap_or("")).unwrap()
}

/// The Go verifier compares roots as byte strings of any length; ours takes
/// 32-byte hashes. A root that is not 32 bytes is replaced by a stand-in that
/// keeps byte equality (equal strings, equal stand-ins), which is all the
/// verifier ever does with a root it is given.
fn root(v: &Value) -> Hash {
    let b = bytes(v);
    Hash::from_slice(&b).unwrap_or_else(|| {
        let mut h = Sha256::new();
        h.update(b"stand-in for a non-32-byte root: ");
        h.update(&b);
        Hash(h.finalize().into())
    })
}

/// Whether our verifier accepts the case. A proof element that is not 32
/// bytes cannot be a hash on any wire we read, so such a proof is refused.
fn accepts(case: &Value) -> Result<(), String> {
    let start = case["start"].as_u64().unwrap();
    let end = case["end"].as_u64().unwrap();
    let size = case["size"].as_u64().unwrap();
    let subtree = Subtree::new(LeafIndex(start), TreeSize(end)).map_err(|e| e.to_string())?;
    let proof: Vec<Hash> = match &case["proof"] {
        Value::Null => vec![],
        Value::Array(a) => a
            .iter()
            .map(|p| Hash::from_slice(&bytes(p)).ok_or("proof element is not 32 bytes"))
            .collect::<Result<_, _>>()?,
        other => panic!("proof {other}"),
    };
    verify_subtree_consistency(
        subtree,
        TreeSize(size),
        root(&case["root1"]),
        root(&case["root2"]),
        &proof,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn transparency_dev_subtree_consistency_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/merkle/subtreeconsistency");
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files.sort();
    assert_eq!(files.len(), 118, "the upstream directory has 118 cases");
    let mut outcomes: BTreeMap<bool, usize> = BTreeMap::new();
    for file in &files {
        let case: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let want_err = case["wantErr"].as_bool().unwrap();
        let got = accepts(&case);
        assert_eq!(
            got.is_err(),
            want_err,
            "{}: {} -> {got:?}",
            file.display(),
            case["desc"]
        );
        *outcomes.entry(want_err).or_default() += 1;
    }
    // SOURCES.md: 12 valid, 106 invalid.
    assert_eq!(outcomes.get(&false), Some(&12));
    assert_eq!(outcomes.get(&true), Some(&106));
}

/// The reasons for a few named upstream cases, so the negative cases fail
/// for the reason their names give and not by accident.
#[test]
fn transparency_dev_negative_cases_fail_for_their_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/merkle/subtreeconsistency");
    let reason = |rel: &str| {
        let case: Value = serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
        accepts(&case).unwrap_err()
    };
    for (rel, want) in [
        ("1/invalid-subtree.json", "not a subtree"),
        (
            "additional/invalid-subtree-start-1-end-3-size-8.json",
            "not a subtree",
        ),
        ("1/truncated-proof.json", "proof has 2 hashes"),
        ("1/trailing-root1.json", "proof has 4 hashes"),
        ("1/preceding-garbage.json", "not 32 bytes"),
        ("1/empty-proof.json", "proof has 0 hashes"),
        ("1/wrong-root2.json", "proof leads to root"),
        ("1/size2-div-@2.json", "proof has 3 hashes"),
        (
            "additional/size1-is-greater-than-size2.json",
            "ends past the tree",
        ),
        (
            "additional/subtree-is-empty-roots-valid-but-proof-is-not-empty.json",
            "the subtree is empty but the proof has 1 hashes",
        ),
        (
            "additional/sizes-are-equal-zero-and-proof-is-empty.json",
            "not the empty tree's hash",
        ),
    ] {
        let got = reason(rel);
        assert!(got.contains(want), "{rel}: {got}");
    }
}
