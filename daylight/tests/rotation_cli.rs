//! An operator's rotations through the real binary, as README's procedures
//! give them, while the log serves: a second witness and a higher quorum
//! without a restart, the log's key rotated (both signatures on checkpoints
//! during the transition), a witness taking the new key, and an agency's key
//! rotated (the old key refused, the new one accepted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    daylight, fails, generate_key, ok, request_draft, serve_log, serve_witness_for, submit_output,
    submit_request,
};
use daylight_core::{SignedCheckpoint, TlogProof, VerifierKey};

const ORIGIN: &str = "rotation.test/log";

/// `daylight agency submit` with `key`; the proof's checkpoint bytes.
fn submit(url: &str, key: &str, tmp: &std::path::Path, name: &str) -> Vec<u8> {
    let out = submit_request(url, key, tmp, name, |_| {});
    let proof = TlogProof::parse(&std::fs::read(out.join("proof")).unwrap()).unwrap();
    proof.checkpoint
}

/// `daylight log rotate` of the agency key `old` to `new` in the log `log`.
fn rotate(log: &str, old: &str, new: &str) -> std::process::Output {
    daylight(&["log", "rotate", "--dir", log, "--old", old, "--new", new])
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

    // The log's key, rotated while the log serves: the server loads the
    // new key from the directory when its registry names it.
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
    let new_agency_vkey = generate_key("agency.test", &new_agency);
    let old_agency_vkey = ok(&daylight(&["key", "public", "--key", &agency_key]));
    ok(&rotate(
        &log,
        old_agency_vkey.trim(),
        new_agency_vkey.trim(),
    ));
    let draft = request_draft(tmp.path(), "refused.json", |_| {});
    let err = fails(&submit_output(&url, &agency_key, &draft, &path("refused")));
    assert!(err.contains("revoked_signer"), "{err}");
    submit(&url, &new_agency, tmp.path(), "fourth");
    // A rotation to a key already registered is refused before anything is
    // written (the registry would refuse it): a second key of the agency,
    // registered beside the first, cannot also become its successor.
    let spare = path("agency3.key");
    let spare_vkey = generate_key("agency.test", &spare);
    ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &log,
        "--vkey",
        spare_vkey.trim(),
    ]));
    let before = common::http_get(&format!("{url}/api/v1/agencies")).1;
    let err = fails(&rotate(&log, new_agency_vkey.trim(), spare_vkey.trim()));
    assert!(err.contains("already registered"), "{err}");
    assert_eq!(
        common::http_get(&format!("{url}/api/v1/agencies")).1,
        before
    );
    // A rotation to a key with another name is refused.
    let stranger = generate_key("other.test", &path("o.key"));
    let err = fails(&rotate(&log, new_agency_vkey.trim(), stranger.trim()));
    assert!(err.contains("keeps the name"), "{err}");

    // The auditor follows it all and finds nothing wrong.
    let audit = daylight(&["audit", "--log", &url, "--dir", &path("audit")]);
    assert_eq!(audit.status.code(), Some(0), "{}", common::stdout(&audit));
    drop(server);
}

/// Two operators rotating the log's key at once: the directory's lock makes
/// one wait for the other, so the log ends with a chain of two rotations
/// and the key file holds the last one's key.
#[test]
fn concurrent_key_rotations_take_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log").to_str().unwrap().to_owned();
    let agency_key = tmp.path().join("agency.key").to_str().unwrap().to_owned();
    common::new_log_with_agency(&log, ORIGIN, "0", &agency_key);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_daylight"))
                .args(["log", "rotate-key", "--dir", &log])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let o = r.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (server, url) = serve_log(&log);
    let info: serde_json::Value =
        serde_json::from_slice(&common::http_get(&format!("{url}/api/v1/log")).1).unwrap();
    let vkeys = info["vkeys"].as_array().unwrap();
    assert_eq!(vkeys.len(), 3, "{info}");
    let on_disk = ok(&daylight(&[
        "key",
        "public",
        "--key",
        &format!("{log}/log.key"),
    ]));
    assert_eq!(info["vkey"].as_str().unwrap(), on_disk.trim(), "{info}");
    let audit_dir = tmp.path().join("audit");
    let audit = daylight(&["audit", "--log", &url, "--dir", audit_dir.to_str().unwrap()]);
    assert_eq!(audit.status.code(), Some(0), "{}", common::stdout(&audit));
    drop(server);
}

/// A rotation interrupted after its entry was appended, before the key
/// files were switched: the next `daylight log` command finishes it.
#[test]
fn an_interrupted_key_rotation_is_finished_by_the_next_command() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let logs = log.to_str().unwrap().to_owned();
    let agency_key = tmp.path().join("agency.key").to_str().unwrap().to_owned();
    let old_vkey = common::new_log_with_agency(&logs, ORIGIN, "0", &agency_key);
    let old_secret = std::fs::read_to_string(log.join("log.key")).unwrap();
    let new_vkey = ok(&daylight(&["log", "rotate-key", "--dir", &logs]));
    // Put the files back as they were just before the switch.
    std::fs::rename(log.join("log.key"), log.join("log.key.next")).unwrap();
    common::write_key(&log.join("log.key"), &old_secret);
    let public = |file: &str| {
        ok(&daylight(&[
            "key",
            "public",
            "--key",
            &format!("{logs}/{file}"),
        ]))
    };
    assert_eq!(public("log.key").trim(), old_vkey);
    // Any command that needs the keys finishes the rotation.
    let court_key = tmp.path().join("court.key");
    let court = generate_key("court.test", court_key.to_str().unwrap());
    ok(&daylight(&[
        "log",
        "add-court",
        "--dir",
        &logs,
        "--vkey",
        court.trim(),
    ]));
    assert!(!log.join("log.key.next").exists());
    assert_eq!(public("log.key").trim(), new_vkey.trim());
    // A key file that is neither the registry's key nor a pending one is refused.
    let stranger = tmp.path().join("stranger.key");
    generate_key(ORIGIN, stranger.to_str().unwrap());
    std::fs::remove_file(log.join("log.key")).unwrap();
    std::fs::copy(&stranger, log.join("log.key")).unwrap();
    let err = fails(&daylight(&[
        "log",
        "revoke",
        "--dir",
        &logs,
        "--vkey",
        court.trim(),
    ]));
    assert!(err.contains("restore the right key file"), "{err}");
}
