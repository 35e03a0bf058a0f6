//! The log pushing to a C2SP tlog-mirror, as operators run it: separate
//! `daylight log serve`, `daylight witness serve` and `daylight mirror serve`
//! processes. With `log set-mirror-quorum 1` every published checkpoint
//! carries the mirror's cosignature; the log then stops serving, and
//! `daylight audit` still verifies the whole log from the mirror alone.
//! A key is either a witness's or a mirror's, never both.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    daylight, fails, free_port, http_get, new_log_and_agency, ok, post_record, serve_log,
    serve_witness_for, spawn, wait_ready, Records,
};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::witness_protocol::origin_hash;
use daylight_core::{Checkpoint, Note, VerifierKey};

const ORIGIN: &str = "log.test/mirrored";

/// The size of `note` if it carries a valid cosignature by `key`.
fn cosigned_size(note: &[u8], key: &VerifierKey) -> Option<u64> {
    let note = Note::parse(note).ok()?;
    let valid = verify_cosignatures(&note, &[key]).ok()?;
    if valid.is_empty() {
        return None;
    }
    Some(Checkpoint::parse_text(note.text()).ok()?.size.get())
}

#[test]
fn a_log_pushes_to_its_mirror_and_audits_read_the_mirror_once_the_log_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let (log_vkey, _) = new_log_and_agency(&p("log"), ORIGIN, "1", &p("agency.key"));
    let (_witness, witness_vkey, _) =
        serve_witness_for(&p("w1"), "witness.test/w1", &p("log"), ORIGIN, &log_vkey);

    let mirror_vkey = ok(&daylight(&[
        "mirror",
        "init",
        "--dir",
        &p("m1"),
        "--name",
        "mirror.test/m1",
    ]));
    let mirror_key = VerifierKey::parse(&mirror_vkey).unwrap();
    ok(&daylight(&[
        "mirror",
        "add-log",
        "--dir",
        &p("m1"),
        "--origin",
        ORIGIN,
        "--vkey",
        &log_vkey,
    ]));
    let mirror_addr = format!("127.0.0.1:{}", free_port());
    let _mirror = spawn(&[
        "mirror",
        "serve",
        "--dir",
        &p("m1"),
        "--listen",
        &mirror_addr,
    ]);
    wait_ready(&mirror_addr);
    let mirror_url = format!("http://{mirror_addr}");

    // One-line refusals: a witness's key, a quorum above the mirrors.
    fails(&daylight(&[
        "log",
        "add-mirror",
        "--dir",
        &p("log"),
        "--vkey",
        &witness_vkey,
        "--url",
        &mirror_url,
    ]));
    fails(&daylight(&[
        "log",
        "set-mirror-quorum",
        "--dir",
        &p("log"),
        "1",
    ]));
    ok(&daylight(&[
        "log",
        "add-mirror",
        "--dir",
        &p("log"),
        "--vkey",
        &mirror_vkey,
        "--url",
        &mirror_url,
    ]));
    fails(&daylight(&[
        "log",
        "set-mirror-quorum",
        "--dir",
        &p("log"),
        "2",
    ]));
    // Nor does a witness take a mirror's key.
    fails(&daylight(&[
        "log",
        "add-witness",
        "--dir",
        &p("log"),
        "--vkey",
        &mirror_vkey,
        "--url",
        "http://127.0.0.1:9",
    ]));
    ok(&daylight(&[
        "log",
        "set-mirror-quorum",
        "--dir",
        &p("log"),
        "1",
    ]));

    let (log, url) = serve_log(&p("log"));
    let mut records = Records::new(tmp.path().join("agency.key").as_path(), ORIGIN, tmp.path());
    let mut last = 0;
    for _ in 0..3 {
        let (status, body) = post_record(&url, records.next());
        assert_eq!(status, 200, "{body}");
        last = body["index"].as_u64().unwrap();
    }
    // The log publishes only checkpoints the mirror cosigned.
    let deadline = Instant::now() + Duration::from_secs(60);
    let size = loop {
        let (status, body) = http_get(&format!("{url}/checkpoint"));
        if status == 200 {
            let size = cosigned_size(&body, &mirror_key)
                .expect("a published checkpoint without the mirror's cosignature");
            if size > last {
                break size;
            }
        }
        assert!(Instant::now() < deadline, "nothing mirror-cosigned in time");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (status, info) = http_get(&format!("{url}/api/v1/log"));
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["mirror_quorum"], 1);
    assert_eq!(info["mirrors"][0]["vkey"], mirror_vkey.as_str());
    assert_eq!(info["mirrors"][0]["url"], mirror_url.as_str());

    // The log is gone; the mirror still serves it, and the audit verifies.
    drop(log);
    let prefix = format!("{mirror_url}/{}", origin_hash(ORIGIN));
    let (status, body) = http_get(&format!("{prefix}/checkpoint"));
    assert_eq!(status, 200);
    assert!(cosigned_size(&body, &mirror_key).unwrap() >= size);
    let out = daylight(&[
        "audit",
        "--log",
        &prefix,
        "--dir",
        &p("audit"),
        "--log-key",
        &log_vkey,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("CLEAN"));
    let findings: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("audit").join("findings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(findings["status"], "clean");
    assert!(findings["entries_audited"].as_u64().unwrap() >= size);
}
