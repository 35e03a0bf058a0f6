//! `daylight witness` as an operator runs it: init, add-log, serve, with
//! separate processes and real files.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{agency_submit, daylight, http_get, request_draft, stderr, stdout, witnessed_log};

fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    http_get(&format!("http://{addr}{path}"))
}

fn draft(dir: &Path) -> String {
    request_draft(dir, "draft.json", |_| {})
}

use daylight_core::tree::MemoryTree;
use daylight_core::witness_protocol::{parse_cosignatures, AddCheckpoint};
use daylight_core::{Checkpoint, KeyName, KeyType, Note, SignerKey, TreeSize, VerifierKey};

/// Fails with exactly one line on stderr, containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure: {}", stdout(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

fn init(dir: &Path, name: &str) -> VerifierKey {
    let o = daylight(&[
        "witness",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--name",
        name,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    VerifierKey::parse(stdout(&o).trim()).unwrap()
}

fn log_key() -> SignerKey {
    SignerKey::from_seed(
        KeyName::new("log.test/daylight").unwrap(),
        KeyType::Ed25519,
        [3; 32],
    )
}

#[test]
fn init_creates_a_database_and_a_private_cosignature_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w1");
    let vkey = init(&dir, "witness.test/w1");
    assert_eq!(vkey.name().as_str(), "witness.test/w1");
    assert_eq!(vkey.key_type(), KeyType::CosignatureV1);
    assert!(dir.join("witness.db").is_file());
    let secret = std::fs::read_to_string(dir.join("witness.key")).unwrap();
    assert_eq!(SignerKey::parse(secret.trim()).unwrap().verifier(), &vkey);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("witness.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // `key public` reads the witness key file too.
    let o = daylight(&[
        "key",
        "public",
        "--key",
        dir.join("witness.key").to_str().unwrap(),
    ]);
    assert_eq!(stdout(&o).trim(), vkey.to_string());

    // A second init never overwrites the key.
    let o = daylight(&[
        "witness",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--name",
        "other",
    ]);
    assert_one_line_error(&o, "already exists");
    assert_eq!(
        std::fs::read_to_string(dir.join("witness.key")).unwrap(),
        secret
    );

    // A name the key format forbids.
    let o = daylight(&[
        "witness",
        "init",
        "--dir",
        tmp.path().join("w2").to_str().unwrap(),
        "--name",
        "a+b",
    ]);
    assert_one_line_error(&o, "a+b");
}

#[test]
fn add_log_takes_a_log_key_and_refuses_bad_ones_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let witness_vkey = init(tmp.path(), "witness.test/w1");
    let vkey = log_key().verifier().to_string();
    let add = |origin: &str, vkey: &str| {
        daylight(&[
            "witness", "add-log", "--dir", dir, "--origin", origin, "--vkey", vkey,
        ])
    };

    let o = add("log.test/daylight", &vkey);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("added log log.test/daylight"));
    // Again: a no-op, not an error.
    let o = add("log.test/daylight", &vkey);
    assert!(o.status.success(), "{}", stderr(&o));

    assert_one_line_error(&add("log.test/x", "not-a-key"), "--vkey");
    let mut flipped = vkey.clone();
    flipped.pop();
    flipped.push('B');
    assert_one_line_error(&add("log.test/x", &flipped), "--vkey");
    // A witness (cosignature) key cannot sign checkpoints.
    assert_one_line_error(&add("log.test/x", &witness_vkey.to_string()), "Ed25519");
    // The same origin with another key.
    let other = SignerKey::from_seed(KeyName::new("o").unwrap(), KeyType::Ed25519, [4; 32]);
    assert_one_line_error(
        &add("log.test/daylight", &other.verifier().to_string()),
        "already known",
    );
    // No witness there.
    let o = daylight(&[
        "witness",
        "add-log",
        "--dir",
        tmp.path().join("none").to_str().unwrap(),
        "--origin",
        "o",
        "--vkey",
        &vkey,
    ]);
    assert_one_line_error(&o, "daylight witness init");
}

/// One HTTP/1.1 POST without a client library; returns status and body.
fn post(addr: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

#[test]
fn serve_cosigns_and_stops_on_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let witness_vkey = init(tmp.path(), "witness.test/w1");
    let key = log_key();
    let o = daylight(&[
        "witness",
        "add-log",
        "--dir",
        dir,
        "--origin",
        "log.test/daylight",
        "--vkey",
        &key.verifier().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A free port: bind, note it, release.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_daylight"))
        .args(["witness", "serve", "--dir", dir, "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    err.read_line(&mut banner).unwrap();
    assert!(banner.contains("serving C2SP tlog-witness"), "{banner}");

    let mut tree = MemoryTree::new();
    for i in 0..5u8 {
        tree.append(&[i]);
    }
    let checkpoint = Checkpoint::new("log.test/daylight", TreeSize(5), tree.root())
        .sign(&key)
        .unwrap()
        .to_bytes();
    let body = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: checkpoint.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, answer) = loop {
        match TcpStream::connect(&addr) {
            Ok(_) => break post(&addr, "/add-checkpoint", &body.to_bytes()),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("witness did not start: {e}"),
        }
    };
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let mut note = Note::parse(&checkpoint).unwrap();
    note.add_signature(parse_cosignatures(&answer).unwrap().remove(0))
        .unwrap();
    let got = daylight_core::cosignature::verify_cosignatures(&note, &[&witness_vkey]).unwrap();
    assert_eq!(got.len(), 1);

    // SIGINT: a graceful exit, bounded in time.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("witness did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");

    // The cosigned state is on disk.
    let signer = SignerKey::parse(
        std::fs::read_to_string(tmp.path().join("witness.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let witness = daylight_witness::Witness::open(&tmp.path().join("witness.db"), signer).unwrap();
    let logs = witness.logs().unwrap();
    assert_eq!(logs[0].size, TreeSize(5));
    assert_eq!(logs[0].root, tree.root());
}

/// A log with quorum 2 collects both cosignatures from two `daylight witness
/// serve` processes, and each witness serves what it cosigned.
#[test]
fn the_log_server_collects_a_quorum_from_two_daylight_witnesses() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let origin = "log.test/witnessed";
    let log = witnessed_log(tmp.path(), origin, false);
    let log_vkey = log.vkey.clone();
    let witnesses: Vec<(VerifierKey, String)> = log
        .witnesses
        .iter()
        .map(|(vkey, addr)| (VerifierKey::parse(vkey).unwrap(), addr.clone()))
        .collect();

    let draft = draft(tmp.path());
    let index = agency_submit(&log.url, &p("agency.key"), &draft, &p("out"));
    // Entry 0 registers the agency, entries 1 and 2 the two witnesses.
    assert_eq!(index, "3", "after the three registry entries");

    // The bundle's checkpoint carries both witnesses' cosignatures.
    let entry = std::fs::read(p("out/entry")).unwrap();
    let proof = daylight_core::TlogProof::parse(&std::fs::read(p("out/proof")).unwrap()).unwrap();
    let keys: Vec<VerifierKey> = witnesses.iter().map(|(k, _)| k.clone()).collect();
    let policy =
        daylight_core::WitnessPolicy::k_of_n(VerifierKey::parse(&log_vkey).unwrap(), keys, 2);
    proof.verify(&entry, &policy).unwrap();

    // Each witness serves what it cosigned for monitors.
    for (vkey, addr) in &witnesses {
        let (status, body) = get(
            addr,
            &daylight_core::witness_protocol::checkpoint_path(origin),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let note = Note::parse(&body).unwrap();
        note.verify(&[&VerifierKey::parse(&log_vkey).unwrap()])
            .unwrap();
        let cosigs = daylight_core::cosignature::verify_cosignatures(&note, &[vkey]).unwrap();
        assert_eq!(cosigs.len(), 1);
        let cp = Checkpoint::parse_text(note.text()).unwrap();
        assert!(cp.size.get() >= 2, "size {}", cp.size);
    }
}
