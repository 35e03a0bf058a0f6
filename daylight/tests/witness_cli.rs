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

/// `daylight log describe` prints the log as a witness-network `logs/v0`
/// list; `daylight witness add-log --log-list` takes it (and lists with
/// other logs), then the witness lists the log in `GET /logs` and cosigns
/// its checkpoints. Every refusal is one line and a non-zero exit.
#[test]
fn a_described_log_is_added_from_its_log_list_and_cosigned() {
    use daylight_core::log_list::{ListedLog, LogList};
    use daylight_core::witness_protocol::checkpoint_path;

    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let origin = "log.test/described";
    let log_vkey = common::ok(&daylight(&[
        "log",
        "init",
        "--dir",
        &p("log"),
        "--origin",
        origin,
    ]));

    // describe: the header and the log's entry, read back by the parser.
    let described = common::ok(&daylight(&[
        "log",
        "describe",
        "--dir",
        &p("log"),
        "--qpd",
        "1440",
        "--contact",
        "ops (at) log.test | https://log.test/#contact",
    ]));
    assert!(described.starts_with("logs/v0\n"), "{described}");
    let list = LogList::parse(&described).unwrap();
    assert_eq!(list.logs.len(), 1);
    let entry = &list.logs[0];
    assert_eq!(entry.vkey.to_string(), log_vkey);
    assert_eq!(entry.origin, origin);
    assert_eq!(entry.qpd, 1440);
    assert_eq!(
        entry.contact,
        "ops (at) log.test | https://log.test/#contact"
    );
    // The origin is the key's name: no origin line.
    assert!(!described.contains("\norigin "), "{described}");
    // Defaults: one request a second, contact unset (with a reminder).
    let o = daylight(&["log", "describe", "--dir", &p("log")]);
    let text = common::ok(&o);
    assert!(text.ends_with("qpd 86400\ncontact unset"), "{text}");
    assert!(stderr(&o).contains("--contact"), "{}", stderr(&o));
    // describe's refusals.
    let e = common::fails(&daylight(&[
        "log",
        "describe",
        "--dir",
        &p("log"),
        "--qpd",
        "0",
    ]));
    assert!(e.contains("--qpd") && e.contains("at least 1"), "{e}");
    let e = common::fails(&daylight(&[
        "log",
        "describe",
        "--dir",
        &p("log"),
        "--qpd",
        "2147483648",
    ]));
    assert!(e.contains("below 2^31"), "{e}");
    let e = common::fails(&daylight(&[
        "log",
        "describe",
        "--dir",
        &p("log"),
        "--contact",
        " ",
    ]));
    assert!(e.contains("--contact"), "{e}");
    let e = common::fails(&daylight(&["log", "describe", "--dir", &p("nolog")]));
    assert!(e.contains("daylight log init"), "{e}");

    // add-log --log-list: the described log and another, one line each.
    let other = SignerKey::from_seed(
        KeyName::new("log.test/other").unwrap(),
        KeyType::Ed25519,
        [7; 32],
    );
    let listed = |origin: &str, vkey: &VerifierKey| ListedLog {
        vkey: vkey.clone(),
        origin: origin.to_owned(),
        qpd: 24,
        contact: "someone else".to_owned(),
    };
    let two = format!(
        "{described}\n{}",
        LogList {
            logs: vec![listed("log.test/other", other.verifier())]
        }
        .to_text()
        .unwrap()
        .replace("logs/v0\n", "")
    );
    std::fs::write(p("two.list"), &two).unwrap();
    let witness_vkey = init(&tmp.path().join("w"), "witness.test/w1");
    let add = |list: &str| {
        daylight(&[
            "witness",
            "add-log",
            "--dir",
            &p("w"),
            "--log-list",
            &p(list),
        ])
    };
    let out = common::ok(&add("two.list"));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("added log {origin} with key {log_vkey}"),
            format!("added log log.test/other with key {}", other.verifier()),
        ],
        "{out}"
    );
    // Again: nothing changes, still one line each, success.
    let out = common::ok(&add("two.list"));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.contains("already known")), "{out}");

    // A list naming a known origin with another key: that log is refused
    // (one line on stdout), the other is added, and the command fails in
    // one line.
    let impostor = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [8; 32]);
    let third = SignerKey::from_seed(
        KeyName::new("log.test/third").unwrap(),
        KeyType::Ed25519,
        [9; 32],
    );
    let conflict = LogList {
        logs: vec![
            listed(origin, impostor.verifier()),
            listed("log.test/third", third.verifier()),
        ],
    };
    std::fs::write(p("conflict.list"), conflict.to_text().unwrap()).unwrap();
    let o = add("conflict.list");
    let e = common::fails(&o);
    assert!(e.contains("1 of the 2 logs"), "{e}");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("refused log {origin}: ")) && lines[0].contains("--rotate"),
        "{out}"
    );
    assert!(lines[1].starts_with("added log log.test/third"), "{out}");

    // Malformed lists: one line naming the line, nothing added.
    let bad_qpd = described.replace("qpd 1440", "qpd 01440");
    let cosignature_key = described.replace(&log_vkey, &witness_vkey.to_string());
    for (name, text, needles) in [
        (
            "no-header.list",
            described.replace("logs/v0\n", ""),
            vec!["line 2", "logs/v0"],
        ),
        ("qpd.list", bad_qpd, vec!["line 4", "leading zero"]),
        ("key.list", cosignature_key, vec!["line 3", "type 0x04"]),
        (
            "keyword.list",
            described.replace("qpd", "url https://x\nqpd"),
            vec!["line 4", "unknown keyword \"url\""],
        ),
    ] {
        std::fs::write(p(name), text).unwrap();
        let e = common::fails(&add(name));
        for needle in needles {
            assert!(e.contains(needle), "{name}: {e:?} lacks {needle:?}");
        }
    }
    let e = common::fails(&add("missing.list"));
    assert!(e.contains("missing.list"), "{e}");
    // --log-list with --origin: a usage error.
    let o = daylight(&[
        "witness",
        "add-log",
        "--dir",
        &p("w"),
        "--log-list",
        &p("two.list"),
        "--origin",
        origin,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // The witness serves and the log asks it: it lists the log and cosigns.
    let addr = format!("127.0.0.1:{}", common::free_port());
    let _witness = common::spawn(&["witness", "serve", "--dir", &p("w"), "--listen", &addr]);
    common::wait_ready(&addr);
    let (status, body) = get(&addr, "/logs");
    assert_eq!(status, 200);
    let logs: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let origins: Vec<&str> = logs.iter().filter_map(|l| l["origin"].as_str()).collect();
    assert_eq!(origins.len(), 3, "{origins:?}");
    for o in [origin, "log.test/other", "log.test/third"] {
        assert!(origins.contains(&o), "{origins:?}");
    }
    common::ok(&daylight(&[
        "log",
        "add-witness",
        "--dir",
        &p("log"),
        "--vkey",
        &witness_vkey.to_string(),
        "--url",
        &format!("http://{addr}"),
    ]));
    let (_log, _url) = common::serve_log(&p("log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = get(&addr, &checkpoint_path(origin));
        if status == 200 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the witness never cosigned the described log ({status})"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let note = Note::parse(&body).unwrap();
    note.verify(&[&VerifierKey::parse(&log_vkey).unwrap()])
        .unwrap();
    let cosigs = daylight_core::cosignature::verify_cosignatures(&note, &[&witness_vkey]).unwrap();
    assert_eq!(cosigs.len(), 1);
    let (_, body) = get(&addr, "/logs");
    let logs: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let ours = logs.iter().find(|l| l["origin"] == origin).unwrap();
    assert!(ours["size"].as_u64().unwrap() >= 1, "{ours}");
    assert!(ours["cosigned_at"].is_u64(), "{ours}");
}
