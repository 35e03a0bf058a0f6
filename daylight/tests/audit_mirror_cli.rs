//! `daylight audit` with a C2SP tlog-mirror (issue 17, readers use
//! mirrors), all separate processes: a real `daylight log serve` whose
//! checkpoint and entries are pushed (add-checkpoint, add-entries, as a log
//! pushes) to a real `daylight mirror serve`; the log audited with
//! `--mirror` (consistent, exit 0); then the log stopped and the mirror's
//! monitoring prefix audited with `--log` alone: the same verified tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{daylight, free_port, http_get, new_log_with_agency, ok, serve_log, spawn};
use common::{submit_case, wait_ready};
use daylight_core::mirror_protocol::{package_proof, AddEntriesEncoder, AddEntriesHeader};
use daylight_core::tile::{parse_entry_bundle, BundleCoord, TILE_WIDTH};
use daylight_core::tree::MemoryTree;
use daylight_core::witness_protocol::{origin_hash, AddCheckpoint};
use daylight_core::{Checkpoint, LeafIndex, Note, TreeSize};

const ORIGIN: &str = "log.test/audit-mirror";

fn findings(dir: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(Path::new(dir).join("findings.json")).unwrap()).unwrap()
}

/// POSTs `body` to `url`; the status.
fn post(url: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// Pushes everything the log at `log` serves to the mirror at `mirror`
/// (which has never seen it); the size pushed.
fn push(log: &str, mirror: &str) -> u64 {
    let (status, cp) = http_get(&format!("{log}/checkpoint"));
    assert_eq!(status, 200);
    let note = Note::parse(&cp).unwrap();
    let size = Checkpoint::parse_text(note.text()).unwrap().size.get();
    let mut entries: Vec<Vec<u8>> = Vec::new();
    for index in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - index * TILE_WIDTH).min(TILE_WIDTH) as u16;
        let path = BundleCoord { index, width }.path();
        let (status, data) = http_get(&format!("{log}/{path}"));
        assert_eq!(status, 200, "{path}");
        entries.extend(
            parse_entry_bundle(&data, width)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec),
        );
    }
    let mut tree = MemoryTree::new();
    for e in &entries {
        tree.append(e);
    }
    let body = AddCheckpoint {
        old: TreeSize(0),
        proof: Vec::new(),
        checkpoint: cp,
    }
    .to_bytes();
    assert_eq!(
        post(&format!("{mirror}/add-checkpoint"), "text/plain", body),
        200
    );
    let header = AddEntriesHeader {
        origin: ORIGIN.to_owned(),
        upload_start: LeafIndex(0),
        upload_end: TreeSize(size),
        ticket: Vec::new(),
    };
    let mut out = Vec::new();
    let mut enc = AddEntriesEncoder::new(&header, &mut out).unwrap();
    while let Some(range) = enc.next_package() {
        let list = &entries[range.start.get() as usize..range.end.get() as usize];
        let proof = package_proof(range, TreeSize(size), &tree).unwrap();
        enc.push_package(list, &proof, &mut out).unwrap();
    }
    assert_eq!(
        post(
            &format!("{mirror}/add-entries"),
            "application/octet-stream",
            out
        ),
        200
    );
    size
}

#[test]
fn audit_a_log_with_its_mirror_then_the_mirror_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let vkey = new_log_with_agency(&p("log"), ORIGIN, "0", &p("agency.key"));
    let (log_server, log) = serve_log(&p("log"));
    for case in ["M-1", "M-2"] {
        submit_case(&log, &p("agency.key"), tmp.path(), case);
    }

    ok(&daylight(&[
        "mirror",
        "init",
        "--dir",
        &p("mirror"),
        "--name",
        "mirror.test/m1",
    ]));
    ok(&daylight(&[
        "mirror",
        "add-log",
        "--dir",
        &p("mirror"),
        "--origin",
        ORIGIN,
        "--vkey",
        &vkey,
    ]));
    let addr = format!("127.0.0.1:{}", free_port());
    let _mirror = spawn(&["mirror", "serve", "--dir", &p("mirror"), "--listen", &addr]);
    wait_ready(&addr);
    let mirror = format!("http://{addr}");
    let size = push(&log, &mirror);

    // The log, compared with its mirror (given by its base URL).
    let out = daylight(&[
        "audit",
        "--log",
        &log,
        "--dir",
        &p("a"),
        "--mirror",
        &mirror,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("mirror "), "{stdout}");
    let a = findings(&p("a"));
    assert_eq!(a["mirrors"][0]["status"], "consistent", "{a}");
    assert_eq!(a["mirrors"][0]["size"], size);

    // The log stops; its mirror's prefix is audited alone.
    drop(log_server);
    let prefix = format!("{mirror}/{}", origin_hash(ORIGIN));
    let out = daylight(&[
        "audit",
        "--log",
        &prefix,
        "--dir",
        &p("b"),
        "--log-key",
        &vkey,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let b = findings(&p("b"));
    assert_eq!(b["entries_audited"], size);
    assert_eq!(
        b["verified_checkpoint"]["root"],
        a["verified_checkpoint"]["root"]
    );
    // The directory made against the log goes on through the mirror.
    let out = daylight(&["audit", "--log", &prefix, "--dir", &p("a")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And the log itself cannot be audited any more (exit 3).
    let out = daylight(&["audit", "--log", &log, "--dir", &p("c")]);
    assert_eq!(out.status.code(), Some(3));
}
