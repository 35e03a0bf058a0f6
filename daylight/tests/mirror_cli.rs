//! `daylight mirror` as an operator runs it, with separate processes and
//! real files: init, add-log, serve; a log pushes its checkpoint and
//! entries; the server is SIGKILLed in the middle of an add-entries body,
//! and, restarted, has cosigned nothing whose entries it does not hold and
//! accepts the resumed upload. Pull mode: a second mirror follows the
//! first one's tiles (`daylight mirror follow`) and cosigns what it fetched.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{daylight, fails, free_port, ok, spawn, wait_ready, Server};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::mirror_protocol::{package_proof, AddEntriesEncoder, AddEntriesHeader};
use daylight_core::tree::{consistency_proof, tree_hash, MemoryTree};
use daylight_core::witness_protocol::{origin_hash, AddCheckpoint};
use daylight_core::{
    Checkpoint, KeyName, KeyType, LeafIndex, Note, SignerKey, TreeSize, VerifierKey,
};

const ORIGIN: &str = "log.test/pushed";

fn log_key() -> SignerKey {
    SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [5; 32])
}

struct TestLog {
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
}

impl TestLog {
    fn new(n: u64) -> TestLog {
        let mut tree = MemoryTree::new();
        let entries: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("entry {i} of {ORIGIN}").into_bytes())
            .collect();
        for e in &entries {
            tree.append(e);
        }
        TestLog { tree, entries }
    }

    fn add_checkpoint(&self, old: u64, size: u64) -> Vec<u8> {
        let root = tree_hash(TreeSize(size), &self.tree).unwrap();
        let proof = if old == 0 {
            vec![]
        } else {
            consistency_proof(TreeSize(old), TreeSize(size), &self.tree).unwrap()
        };
        AddCheckpoint {
            old: TreeSize(old),
            proof,
            checkpoint: Checkpoint::new(ORIGIN, TreeSize(size), root)
                .sign(&log_key())
                .unwrap()
                .to_bytes(),
        }
        .to_bytes()
    }

    fn add_entries(&self, start: u64, end: u64) -> Vec<u8> {
        let header = AddEntriesHeader {
            origin: ORIGIN.to_owned(),
            upload_start: LeafIndex(start),
            upload_end: TreeSize(end),
            ticket: vec![],
        };
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&header, &mut out).unwrap();
        while let Some(range) = enc.next_package() {
            let entries = &self.entries[range.start.get() as usize..range.end.get() as usize];
            let proof = package_proof(range, TreeSize(end), &self.tree).unwrap();
            enc.push_package(entries, &proof, &mut out).unwrap();
        }
        out
    }
}

/// Sends a request and reads the whole answer: (status, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
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

fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    request(addr, "GET", path, "text/plain", b"")
}

fn state(addr: &str) -> serde_json::Value {
    let (status, body) = get(addr, "/logs");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["logs"][0].clone()
}

fn serve(dir: &str) -> (Server, String) {
    serve_with(dir, &[])
}

fn serve_with(dir: &str, extra: &[&str]) -> (Server, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["mirror", "serve", "--dir", dir, "--listen", &addr];
    args.extend_from_slice(extra);
    let server = spawn(&args);
    wait_ready(&addr);
    (server, addr)
}

/// The served mirror checkpoint: the log's signature and a valid mirror
/// cosignature; its size.
fn served_size(addr: &str, mirror: &VerifierKey) -> Option<u64> {
    let (status, body) = get(addr, &format!("/{}/checkpoint", origin_hash(ORIGIN)));
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200);
    let note = Note::parse(&body).unwrap();
    note.verify(&[log_key().verifier()]).unwrap();
    assert_eq!(verify_cosignatures(&note, &[mirror]).unwrap().len(), 1);
    Some(Checkpoint::parse_text(note.text()).unwrap().size.get())
}

#[test]
fn sigkill_mid_upload_cosigns_nothing_unheld_and_the_upload_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let dir = dir.to_str().unwrap();
    let mirror = VerifierKey::parse(&ok(&daylight(&[
        "mirror",
        "init",
        "--dir",
        dir,
        "--name",
        "mirror.test/m1",
    ])))
    .unwrap();
    let vkey = log_key().verifier().to_string();
    ok(&daylight(&[
        "mirror", "add-log", "--dir", dir, "--origin", ORIGIN, "--vkey", &vkey,
    ]));
    // One-line errors: a second init, a bad key.
    fails(&daylight(&["mirror", "init", "--dir", dir, "--name", "x"]));
    fails(&daylight(&[
        "mirror", "add-log", "--dir", dir, "--origin", ORIGIN, "--vkey", "nope",
    ]));

    let log = TestLog::new(600);
    let (server, addr) = serve(dir);
    let ct = "application/octet-stream";
    assert_eq!(
        request(
            &addr,
            "POST",
            "/add-checkpoint",
            "text/plain",
            &log.add_checkpoint(0, 300)
        )
        .0,
        200
    );
    let (status, body) = request(&addr, "POST", "/add-entries", ct, &log.add_entries(0, 300));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(served_size(&addr, &mirror), Some(300));

    // The log grows to 600; its upload [300, 600) is two packages,
    // [256, 512) and [512, 600). Send the first and part of the second,
    // wait until the first is stored, then SIGKILL the server.
    assert_eq!(
        request(
            &addr,
            "POST",
            "/add-checkpoint",
            "text/plain",
            &log.add_checkpoint(300, 600)
        )
        .0,
        200
    );
    let body = log.add_entries(300, 600);
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /add-entries HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() - 200]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&addr)["next_entry"] != 512 {
        assert!(
            Instant::now() < deadline,
            "the first package was never stored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server); // SIGKILL, then reaped.
    drop(s);

    let (_server, addr) = serve(dir);
    // Nothing cosigned past what is held: still the checkpoint at 300,
    // and the stored entries survived.
    assert_eq!(served_size(&addr, &mirror), Some(300));
    let st = state(&addr);
    assert_eq!(st["mirror_size"], 300);
    assert_eq!(st["next_entry"], 512);
    assert_eq!(st["pending_size"], 600);
    let (status, _) = get(&addr, &format!("/{}/tile/entries/001", origin_hash(ORIGIN)));
    assert_eq!(status, 200);

    // The client resumes from where the mirror says: [512, 600) → 200.
    let (status, body) = request(
        &addr,
        "POST",
        "/add-entries",
        ct,
        &log.add_entries(512, 600),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(served_size(&addr, &mirror), Some(600));
}

/// `daylight mirror init --dir DIR --name NAME` and `add-log` for the test
/// log; the mirror's key.
fn init_mirror(dir: &str, name: &str) -> VerifierKey {
    let key = VerifierKey::parse(&ok(&daylight(&[
        "mirror", "init", "--dir", dir, "--name", name,
    ])))
    .unwrap();
    let vkey = log_key().verifier().to_string();
    ok(&daylight(&[
        "mirror", "add-log", "--dir", dir, "--origin", ORIGIN, "--vkey", &vkey,
    ]));
    key
}

/// Pushes the log's checkpoint at `size` and its entries `[old, size)` to
/// the mirror at `addr`; both must get `200`.
fn push(addr: &str, log: &TestLog, old: u64, size: u64) {
    let (status, _) = request(
        addr,
        "POST",
        "/add-checkpoint",
        "text/plain",
        &log.add_checkpoint(old, size),
    );
    assert_eq!(status, 200);
    let body = log.add_entries(old, size);
    let (status, body) = request(
        addr,
        "POST",
        "/add-entries",
        "application/octet-stream",
        &body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// Polls `cond` every 50 ms for at most 30 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_mirror_follows_a_log_that_does_not_push() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream_dir = tmp.path().join("upstream");
    let upstream_dir = upstream_dir.to_str().unwrap();
    let follower_dir = tmp.path().join("follower");
    let follower_dir = follower_dir.to_str().unwrap();
    // The followed "log" is another mirror's tlog-tiles prefix, pushed to
    // here: it serves the log's signed checkpoint and its tiles only.
    init_mirror(upstream_dir, "mirror.test/upstream");
    let follower = init_mirror(follower_dir, "mirror.test/follower");
    let (_upstream, up) = serve(upstream_dir);
    let log = TestLog::new(900);
    push(&up, &log, 0, 600);

    let url = format!("http://{up}/{}", origin_hash(ORIGIN));
    // Refused: an unknown log, a URL that is not http(s).
    fails(&daylight(&[
        "mirror",
        "follow",
        "--dir",
        follower_dir,
        "--origin",
        "other.test/log",
        "--url",
        &url,
    ]));
    fails(&daylight(&[
        "mirror",
        "follow",
        "--dir",
        follower_dir,
        "--origin",
        ORIGIN,
        "--url",
        "ftp://x/y",
    ]));
    ok(&daylight(&[
        "mirror",
        "follow",
        "--dir",
        follower_dir,
        "--origin",
        ORIGIN,
        "--url",
        &url,
    ]));
    let (_follower, addr) = serve_with(follower_dir, &["--poll-interval", "1"]);
    wait_for("the follower cosigns 600", || {
        served_size(&addr, &follower) == Some(600)
    });
    let st = state(&addr);
    assert_eq!(st["next_entry"], 600);
    assert_eq!(st["follow"]["url"], url.as_str());
    assert!(st["follow"]["error"].is_null(), "{st}");

    // The log grows; the follower catches up by itself.
    push(&up, &log, 600, 900);
    wait_for("the follower cosigns 900", || {
        served_size(&addr, &follower) == Some(900)
    });
}

/// A proxy in front of `upstream` (one request per connection) that
/// holds any request for a path containing `stall_on` while `stall` is
/// set, and counts the requests for paths containing `count_on`.
fn stalling_proxy(
    upstream: String,
    stall_on: &'static str,
    stall: Arc<AtomicBool>,
    count_on: &'static str,
    count: Arc<AtomicUsize>,
) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (upstream, stall, count) = (upstream.clone(), stall.clone(), count.clone());
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                if path.contains(count_on) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                let deadline = Instant::now() + Duration::from_secs(30);
                while path.contains(stall_on) && stall.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let (status, body) = get(&upstream, &path);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(&body);
            });
        }
    });
    addr
}

#[test]
fn a_follower_sigkilled_mid_fetch_resumes_from_its_stored_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream_dir = tmp.path().join("upstream");
    let upstream_dir = upstream_dir.to_str().unwrap();
    let follower_dir = tmp.path().join("follower");
    let follower_dir = follower_dir.to_str().unwrap();
    init_mirror(upstream_dir, "mirror.test/upstream");
    let follower = init_mirror(follower_dir, "mirror.test/follower");
    let (_upstream, up) = serve(upstream_dir);
    let log = TestLog::new(900);
    push(&up, &log, 0, 900);

    // The follower's fetch of the third bundle hangs.
    let stall = Arc::new(AtomicBool::new(true));
    let first_bundle = Arc::new(AtomicUsize::new(0));
    let proxy = stalling_proxy(
        up.clone(),
        "/tile/entries/002",
        stall.clone(),
        "/tile/entries/000",
        first_bundle.clone(),
    );
    let url = format!("http://{proxy}/{}", origin_hash(ORIGIN));
    ok(&daylight(&[
        "mirror",
        "follow",
        "--dir",
        follower_dir,
        "--origin",
        ORIGIN,
        "--url",
        &url,
    ]));
    let (server, addr) = serve_with(follower_dir, &["--poll-interval", "1"]);
    wait_for("two bundles stored", || state(&addr)["next_entry"] == 512);
    let st = state(&addr);
    assert_eq!(st["pending_size"], 900);
    assert_eq!(st["mirror_size"], 0);
    assert_eq!(served_size(&addr, &follower), None, "nothing cosigned");
    drop(server); // SIGKILL mid-fetch, then reaped.

    stall.store(false, Ordering::SeqCst);
    let (_server, addr) = serve_with(follower_dir, &["--poll-interval", "1"]);
    wait_for("the follower cosigns 900", || {
        served_size(&addr, &follower) == Some(900)
    });
    // Resumed from the stored entries: the first bundle was fetched once.
    assert_eq!(first_bundle.load(Ordering::SeqCst), 1);
    assert!(state(&addr)["follow"]["error"].is_null());
}
