//! An operator's rotations through the real binary, as README's procedures
//! give them, while the log serves: a second witness and a higher quorum
//! without a restart, the log's key rotated (both signatures on checkpoints
//! during the transition), a witness taking the new key, and an agency's key
//! rotated (the old key refused, the new one accepted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{daylight, fails, ok, request_draft, serve_log, serve_witness_for};
use daylight_core::{SignedCheckpoint, TlogProof, VerifierKey};

const ORIGIN: &str = "rotation.test/log";

/// `daylight agency submit` with `key`; the proof's checkpoint bytes.
fn submit(url: &str, key: &str, tmp: &std::path::Path, name: &str) -> Vec<u8> {
    let draft = request_draft(tmp, &format!("{name}.json"), |_| {});
    let out = tmp.join(name);
    ok(&daylight(&[
        "agency",
        "submit",
        "--log",
        url,
        "--key",
        key,
        "--draft",
        &draft,
        "--out",
        out.to_str().unwrap(),
        "--timeout",
        "60",
    ]));
    let proof = TlogProof::parse(&std::fs::read(out.join("proof")).unwrap()).unwrap();
    proof.checkpoint
}

#[test]
fn an_operator_rotates_keys_and_changes_witnesses_while_the_log_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |p: &str| tmp.path().join(p).to_str().unwrap().to_owned();
    let (log, agency_key) = (path("log"), path("agency.key"));
    let log_vkey = common::new_log_with_agency(&log, ORIGIN, "1", &agency_key);
    let (_w1, _, _) = serve_witness_for(&path("w1"), "w1.test", &log, ORIGIN, &log_vkey);
    let (server, url) = serve_log(&log);
    let cp = submit(&url, &agency_key, tmp.path(), "first");
    assert!(String::from_utf8_lossy(&cp).contains("w1.test"));

    // A second witness and a quorum of two, while the log serves.
    let (_w2, w2_vkey, _) = serve_witness_for(&path("w2"), "w2.test", &log, ORIGIN, &log_vkey);
    ok(&daylight(&["log", "set-quorum", "--dir", &log, "2"]));
    let cp = String::from_utf8(submit(&url, &agency_key, tmp.path(), "second")).unwrap();
    assert!(cp.contains("w1.test") && cp.contains("w2.test"), "{cp}");
    // Removing a witness below the quorum is refused, with the way out.
    let err = fails(&daylight(&[
        "log",
        "remove-witness",
        "--dir",
        &log,
        "--vkey",
        &w2_vkey,
    ]));
    assert!(err.contains("lower the quorum first"), "{err}");
    let err = fails(&daylight(&["log", "set-quorum", "--dir", &log, "3"]));
    assert!(err.contains("needs at least 3 witnesses"), "{err}");

    // The log's key: rotated, then every frontend restarted.
    let new_vkey = ok(&daylight(&[
        "log",
        "rotate-key",
        "--dir",
        &log,
        "--transition-days",
        "7",
    ]));
    let new_key = VerifierKey::parse(new_vkey.trim()).unwrap();
    let old_key = VerifierKey::parse(&log_vkey).unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(new_key.name(), old_key.name());
    drop(server);
    let (_server, url) = serve_log(&log);
    // Witnesses that know only the old key still cosign during the transition.
    let cp = submit(&url, &agency_key, tmp.path(), "third");
    SignedCheckpoint::open(&cp, &old_key).unwrap();
    SignedCheckpoint::open(&cp, &new_key).unwrap();
    // A witness takes the new key.
    ok(&daylight(&[
        "witness",
        "add-log",
        "--dir",
        &path("w1"),
        "--origin",
        ORIGIN,
        "--vkey",
        new_vkey.trim(),
        "--rotate",
    ]));
    let info: serde_json::Value =
        serde_json::from_slice(&common::http_get(&format!("{url}/api/v1/log")).1).unwrap();
    assert_eq!(info["vkey"], new_key.to_string(), "{info}");
    assert_eq!(info["vkeys"].as_array().unwrap().len(), 2, "{info}");
    assert_eq!(info["quorum"], 2, "{info}");

    // The agency's key: rotated; the old one is refused from then on.
    let new_agency = path("agency2.key");
    let new_agency_vkey = ok(&daylight(&[
        "key",
        "generate",
        "--name",
        "agency.test",
        "--out",
        &new_agency,
    ]));
    let old_agency_vkey = ok(&daylight(&["key", "public", "--key", &agency_key]));
    ok(&daylight(&[
        "log",
        "rotate",
        "--dir",
        &log,
        "--old",
        old_agency_vkey.trim(),
        "--new",
        new_agency_vkey.trim(),
    ]));
    let draft = request_draft(tmp.path(), "refused.json", |_| {});
    let err = fails(&daylight(&[
        "agency",
        "submit",
        "--log",
        &url,
        "--key",
        &agency_key,
        "--draft",
        &draft,
        "--out",
        &path("refused"),
    ]));
    assert!(err.contains("revoked_signer"), "{err}");
    submit(&url, &new_agency, tmp.path(), "fourth");
    // A rotation to a key with another name is refused.
    let stranger = ok(&daylight(&[
        "key",
        "generate",
        "--name",
        "other.test",
        "--out",
        &path("o.key"),
    ]));
    let err = fails(&daylight(&[
        "log",
        "rotate",
        "--dir",
        &log,
        "--old",
        new_agency_vkey.trim(),
        "--new",
        stranger.trim(),
    ]));
    assert!(err.contains("keeps the name"), "{err}");

    // The auditor follows it all and finds nothing wrong.
    let audit = daylight(&["audit", "--log", &url, "--dir", &path("audit")]);
    assert_eq!(audit.status.code(), Some(0), "{}", common::stdout(&audit));
}
