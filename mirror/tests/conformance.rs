//! C2SP tlog-mirror conformance, in process: a log built here (core's tree
//! and an Ed25519 key) pushes add-checkpoint and add-entries bodies (core's
//! encoder) to a mirror on a free 127.0.0.1 port, and every status of the
//! spec comes back where it should; the tiles the mirror serves re-derive
//! the cosigned root through core's authenticated tile reader.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use daylight_core::cosignature::verify_cosignatures;
use daylight_core::mirror_protocol::{
    package_proof, AddEntriesEncoder, AddEntriesHeader, MirrorInfo, PackageRange,
};
use daylight_core::tile::{parse_entry_bundle, Tile, TileError, TileHashReader, TileReader};
use daylight_core::tree::{consistency_proof, tree_hash, MemoryTree};
use daylight_core::witness_protocol::{origin_hash, parse_cosignatures, AddCheckpoint};
use daylight_core::{
    Checkpoint, Hash, KeyName, KeyType, LeafIndex, Note, SignerKey, TreeSize, VerifierKey,
};
use daylight_mirror::{store, Mirror};

const ORIGIN: &str = "log.test/mirrored";

/// A log under test: its key and its entries.
struct TestLog {
    key: SignerKey,
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
}

impl TestLog {
    fn new(n: u64) -> TestLog {
        let key = SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [7; 32]);
        let mut log = TestLog {
            key,
            tree: MemoryTree::new(),
            entries: Vec::new(),
        };
        log.grow(n);
        log
    }

    fn grow(&mut self, to: u64) {
        while (self.entries.len() as u64) < to {
            let e = format!("this is entry {} of {ORIGIN}", self.entries.len()).into_bytes();
            self.tree.append(&e);
            self.entries.push(e);
        }
    }

    fn root(&self, size: u64) -> Hash {
        tree_hash(TreeSize(size), &self.tree).unwrap()
    }

    fn checkpoint(&self, size: u64, key: &SignerKey) -> Vec<u8> {
        Checkpoint::new(ORIGIN, TreeSize(size), self.root(size))
            .sign(key)
            .unwrap()
            .to_bytes()
    }

    fn add_checkpoint(&self, old: u64, size: u64) -> Vec<u8> {
        self.add_checkpoint_signed(old, size, &self.key)
    }

    fn add_checkpoint_signed(&self, old: u64, size: u64, key: &SignerKey) -> Vec<u8> {
        let proof = if old == 0 {
            Vec::new()
        } else {
            consistency_proof(TreeSize(old), TreeSize(size), &self.tree).unwrap()
        };
        AddCheckpoint {
            old: TreeSize(old),
            proof,
            checkpoint: self.checkpoint(size, key),
        }
        .to_bytes()
    }

    /// The add-entries body for `[start, end)`, every package of the
    /// canonical sequence, with `tamper` applied to each package's entries.
    fn add_entries(
        &self,
        start: u64,
        end: u64,
        tamper: impl Fn(PackageRange, &mut Vec<Vec<u8>>),
    ) -> Vec<u8> {
        let header = AddEntriesHeader {
            origin: ORIGIN.to_owned(),
            upload_start: LeafIndex(start),
            upload_end: TreeSize(end),
            ticket: Vec::new(),
        };
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&header, &mut out).unwrap();
        while let Some(range) = enc.next_package() {
            let mut entries =
                self.entries[range.start.get() as usize..range.end.get() as usize].to_vec();
            tamper(range, &mut entries);
            let proof = package_proof(range, TreeSize(end), &self.tree).unwrap();
            enc.push_package(&entries, &proof, &mut out).unwrap();
        }
        out
    }
}

fn mirror_key() -> SignerKey {
    SignerKey::from_seed(
        KeyName::new("mirror.test/m1").unwrap(),
        KeyType::CosignatureV1,
        [9; 32],
    )
}

/// A mirror of [`ORIGIN`] on a free port; its address.
async fn start_mirror(log: &TestLog) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(store::DB_FILE);
    store::create(&db).unwrap();
    let mut conn = store::open(&db).unwrap();
    store::add_log(&mut conn, ORIGIN, log.key.verifier(), 1).unwrap();
    let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(daylight_mirror::serve(
        listener,
        mirror,
        std::future::pending(),
    ));
    (addr, dir)
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn post(addr: &str, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: r.bytes().await.unwrap().to_vec(),
    }
}

async fn checkpoint_req(addr: &str, body: Vec<u8>) -> Answer {
    post(addr, "/add-checkpoint", "text/plain", body).await
}

async fn entries_req(addr: &str, body: Vec<u8>) -> Answer {
    post(addr, "/add-entries", "application/octet-stream", body).await
}

fn info(a: &Answer) -> MirrorInfo {
    assert_eq!(a.content_type, "text/x.tlog.mirror-info");
    MirrorInfo::parse(&a.body).unwrap()
}

/// A blocking GET (for the tile reader, which is synchronous).
fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = get_with_head(addr, path);
    (status, body)
}

/// A GET's status, lower-cased response head and body.
fn get_with_head(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, head.to_ascii_lowercase(), raw[split + 4..].to_vec())
}

struct HttpTiles {
    addr: String,
    prefix: String,
}

impl TileReader for HttpTiles {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
        tiles
            .iter()
            .map(|t| {
                let (status, body) = get(&self.addr, &format!("{}/{}", self.prefix, t.path()));
                if status == 200 {
                    Ok(body)
                } else {
                    Err(TileError::Read(format!("{t}: {status}")))
                }
            })
            .collect()
    }
}

/// The mirror checkpoint it serves: log-signed and mirror-cosigned, for
/// `size`; its tiles re-derive its root and its bundles hold the entries.
async fn check_served(addr: &str, log: &TestLog, size: u64) {
    let addr = addr.to_owned();
    let entries = log.entries[..size as usize].to_vec();
    let log_key: VerifierKey = log.key.verifier().clone();
    tokio::task::spawn_blocking(move || {
        let prefix = format!("/{}", origin_hash(ORIGIN));
        let (status, body) = get(&addr, &format!("{prefix}/checkpoint"));
        assert_eq!(status, 200);
        let note = Note::parse(&body).unwrap();
        note.verify(&[&log_key]).unwrap();
        let mirror = mirror_key().verifier().clone();
        assert_eq!(verify_cosignatures(&note, &[&mirror]).unwrap().len(), 1);
        // Only the log's and the mirror's signatures.
        assert_eq!(note.signatures().len(), 2);
        let cp = Checkpoint::parse_text(note.text()).unwrap();
        assert_eq!(cp.size, TreeSize(size));

        let tiles = HttpTiles {
            addr: addr.clone(),
            prefix: prefix.clone(),
        };
        let reader = TileHashReader::new(cp.size, cp.root, &tiles);
        // Reading any hash makes the reader check the tiles against the root.
        assert_eq!(tree_hash(cp.size, &reader).unwrap(), cp.root);
        let leaf = daylight_core::tree::stored_hash_index(0, size - 1);
        use daylight_core::tree::HashReader as _;
        assert_eq!(
            reader.read_hashes(&[leaf]).unwrap()[0],
            daylight_core::leaf_hash(&entries[size as usize - 1])
        );
        for n in 0..size.div_ceil(256) {
            let width = (size - n * 256).min(256) as u16;
            let coord = daylight_core::tile::BundleCoord { index: n, width };
            let (status, body) = get(&addr, &format!("{prefix}/{}", coord.path()));
            assert_eq!(status, 200, "{}", coord.path());
            let got = parse_entry_bundle(&body, width).unwrap();
            for (i, e) in got.iter().enumerate() {
                assert_eq!(*e, entries[(n * 256) as usize + i].as_slice());
            }
        }
    })
    .await
    .unwrap();
}

fn check_cosignature(body: &[u8], log: &TestLog, size: u64) {
    let sigs = parse_cosignatures(body).unwrap();
    assert_eq!(sigs.len(), 1);
    let mut note =
        Note::new(&Checkpoint::new(ORIGIN, TreeSize(size), log.root(size)).to_text()).unwrap();
    note.add_signature(sigs[0].clone()).unwrap();
    let mirror = mirror_key().verifier().clone();
    assert_eq!(verify_cosignatures(&note, &[&mirror]).unwrap().len(), 1);
}

async fn logs_state(addr: &str) -> serde_json::Value {
    let addr = addr.to_owned();
    let (status, body) = tokio::task::spawn_blocking(move || get(&addr, "/logs"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["logs"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_log_is_stored_cosigned_and_served_as_tiles() {
    let mut log = TestLog::new(300);
    let (addr, _dir) = start_mirror(&log).await;

    let a = checkpoint_req(&addr, log.add_checkpoint(0, 300)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(
        a.body.is_empty(),
        "the mirror does not cosign in add-checkpoint"
    );
    // Nothing served before the entries are in.
    let a2 = addr.clone();
    let prefix = format!("/{}/checkpoint", origin_hash(ORIGIN));
    let p2 = prefix.clone();
    let (status, _) = tokio::task::spawn_blocking(move || get(&a2, &p2))
        .await
        .unwrap();
    assert_eq!(status, 404);

    let a = entries_req(&addr, log.add_entries(0, 300, |_, _| {})).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    check_cosignature(&a.body, &log, 300);
    check_served(&addr, &log, 300).await;

    // Every GET route lets a page on another origin read it (the log's web
    // view verifying an entry against the mirror), even its 404s.
    let a2 = addr.clone();
    tokio::task::spawn_blocking(move || {
        let prefix = format!("/{}", origin_hash(ORIGIN));
        for (path, want) in [
            (format!("{prefix}/checkpoint"), 200),
            (format!("{prefix}/tile/0/000"), 200),
            (format!("{prefix}/tile/0/001.p/44"), 200),
            (format!("{prefix}/tile/entries/001.p/44"), 200),
            ("/logs".to_owned(), 200),
            (format!("{prefix}/tile/0/009"), 404),
        ] {
            let (status, head, _) = get_with_head(&a2, &path);
            assert_eq!(status, want, "{path}");
            assert!(
                head.contains("\r\naccess-control-allow-origin: *"),
                "{path}: {head}"
            );
        }
    })
    .await
    .unwrap();

    // The log grows; an unaligned upload [300, 700) needs entries 256..300
    // the mirror already holds to rebuild the first package's subtree.
    log.grow(700);
    let a = checkpoint_req(&addr, log.add_checkpoint(300, 700)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let a = entries_req(&addr, log.add_entries(300, 700, |_, _| {})).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    check_cosignature(&a.body, &log, 700);
    check_served(&addr, &log, 700).await;

    // An empty upload at the mirror checkpoint's size refreshes the cosignature.
    let a = entries_req(&addr, log.add_entries(700, 700, |_, _| {})).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    check_cosignature(&a.body, &log, 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_checkpoint_answers_as_a_witness_does() {
    let log = TestLog::new(300);
    let (addr, _dir) = start_mirror(&log).await;

    // 404: unknown origin.
    let other = SignerKey::from_seed(
        KeyName::new("other.test/log").unwrap(),
        KeyType::Ed25519,
        [1; 32],
    );
    let note = Checkpoint::new("other.test/log", TreeSize(1), Hash::empty_tree())
        .sign(&other)
        .unwrap()
        .to_bytes();
    let body = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: note,
    }
    .to_bytes();
    assert_eq!(checkpoint_req(&addr, body).await.status, 404);

    // 403: signed by another key with the log's name.
    let forger = SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [8; 32]);
    let a = checkpoint_req(&addr, log.add_checkpoint_signed(0, 300, &forger)).await;
    assert_eq!(a.status, 403);

    // 400: malformed.
    assert_eq!(
        checkpoint_req(&addr, b"old x\n\n".to_vec()).await.status,
        400
    );

    assert_eq!(
        checkpoint_req(&addr, log.add_checkpoint(0, 100))
            .await
            .status,
        200
    );
    // 409: wrong old size, with the pending size as text/x.tlog.size.
    let a = checkpoint_req(&addr, log.add_checkpoint(50, 300)).await;
    assert_eq!(a.status, 409);
    assert_eq!(a.content_type, "text/x.tlog.size");
    assert_eq!(a.body, b"100\n");

    // 422: a consistency proof that does not verify.
    let mut bad = AddCheckpoint::parse(&log.add_checkpoint(100, 300)).unwrap();
    bad.proof[0].0[0] ^= 1;
    assert_eq!(checkpoint_req(&addr, bad.to_bytes()).await.status, 422);
    // 400: old size after the checkpoint's.
    let a = checkpoint_req(
        &addr,
        AddCheckpoint {
            old: TreeSize(200),
            proof: vec![],
            checkpoint: log.checkpoint(100, &log.key),
        }
        .to_bytes(),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        checkpoint_req(&addr, log.add_checkpoint(100, 300))
            .await
            .status,
        200
    );
    assert_eq!(logs_state(&addr).await["pending_size"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_entries_statuses() {
    let log = TestLog::new(600);
    let (addr, _dir) = start_mirror(&log).await;

    // 404: unknown origin.
    let mut body = Vec::new();
    AddEntriesHeader {
        origin: "other.test/log".to_owned(),
        upload_start: LeafIndex(0),
        upload_end: TreeSize(0),
        ticket: vec![],
    }
    .encode(&mut body)
    .unwrap();
    assert_eq!(entries_req(&addr, body).await.status, 404);

    // 422: no pending checkpoint yet.
    assert_eq!(
        entries_req(&addr, log.add_entries(0, 600, |_, _| {}))
            .await
            .status,
        422
    );
    assert_eq!(
        checkpoint_req(&addr, log.add_checkpoint(0, 600))
            .await
            .status,
        200
    );

    // 415: wrong content type.
    let a = post(
        &addr,
        "/add-entries",
        "text/plain",
        log.add_entries(0, 600, |_, _| {}),
    )
    .await;
    assert_eq!(a.status, 415);

    // 409: upload_end is not a pending size.
    let a = entries_req(&addr, log.add_entries(0, 500, |_, _| {})).await;
    assert_eq!(a.status, 409);
    assert_eq!(
        info(&a),
        MirrorInfo {
            pending_size: TreeSize(600),
            next_entry: LeafIndex(0),
            ticket: vec![]
        }
    );

    // 409: out of order, upload_start after the next entry.
    let a = entries_req(&addr, log.add_entries(256, 600, |_, _| {})).await;
    assert_eq!(a.status, 409);
    assert_eq!(info(&a).next_entry, LeafIndex(0));
    assert_eq!(info(&a).pending_size, TreeSize(600));

    // 400: the body ends inside the first package; nothing saved.
    let full = log.add_entries(0, 600, |_, _| {});
    let a = entries_req(&addr, full[..full.len() / 5].to_vec()).await;
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(logs_state(&addr).await["next_entry"], 0);

    // 422: package 1's proof fails (a changed entry); package 0 is kept,
    // nothing of package 1 is.
    let a = entries_req(
        &addr,
        log.add_entries(0, 600, |range, entries| {
            if range.start.get() == 256 {
                entries[3] = b"not the log's entry".to_vec();
            }
        }),
    )
    .await;
    assert_eq!(a.status, 422, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(logs_state(&addr).await["next_entry"], 256);
    assert_eq!(logs_state(&addr).await["mirror_size"], 0);

    // 202: a body cut inside package 1 of [256, 600) after package... here
    // the first package is [256, 512): cut inside the second, [512, 600).
    let resumed = log.add_entries(256, 600, |_, _| {});
    let a = entries_req(&addr, resumed[..resumed.len() - 100].to_vec()).await;
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        info(&a),
        MirrorInfo {
            pending_size: TreeSize(600),
            next_entry: LeafIndex(512),
            ticket: vec![]
        }
    );
    assert_eq!(logs_state(&addr).await["mirror_size"], 0);

    // 400: a malformed package (an entry longer than its bytes is a cut,
    // so use a proof hash count over 63).
    let mut bad = log.add_entries(512, 600, |_, _| {});
    let proof_len = 1 + 32
        * package_proof(
            daylight_core::mirror_protocol::package_ranges(LeafIndex(512), TreeSize(600))
                .next()
                .unwrap(),
            TreeSize(600),
            &log.tree,
        )
        .unwrap()
        .len();
    let at = bad.len() - proof_len;
    bad[at] = 64;
    assert_eq!(entries_req(&addr, bad).await.status, 400);

    // The resumed upload completes: 200 and a valid cosignature.
    let a = entries_req(&addr, log.add_entries(512, 600, |_, _| {})).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    check_cosignature(&a.body, &log, 600);
    check_served(&addr, &log, 600).await;

    // 409: upload_end below the mirror checkpoint (100 is no longer known,
    // and would be below 600 anyway).
    let a = entries_req(&addr, log.add_entries(0, 100, |_, _| {})).await;
    assert_eq!(a.status, 409);
    assert_eq!(info(&a).next_entry, LeafIndex(600));
}

async fn post_encoded(addr: &str, encoding: &str, body: Vec<u8>) -> (u16, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/add-entries"))
        .header("content-type", "application/octet-stream")
        .header("content-encoding", encoding)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let accept = r
        .headers()
        .get("accept-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), accept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_decoded_as_they_stream() {
    use std::io::Write as _;
    let log = TestLog::new(600);
    let (addr, _dir) = start_mirror(&log).await;
    assert_eq!(
        checkpoint_req(&addr, log.add_checkpoint(0, 600))
            .await
            .status,
        200
    );

    // Another encoding: 415, and the answer says gzip is taken.
    let (status, accept) = post_encoded(&addr, "br", log.add_entries(0, 600, |_, _| {})).await;
    assert_eq!(status, 415);
    assert_eq!(accept.as_deref(), Some("gzip"));
    // Not gzip at all: 400.
    let (status, _) = post_encoded(&addr, "gzip", b"not gzip at all".repeat(10)).await;
    assert_eq!(status, 400);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&log.add_entries(0, 600, |_, _| {})).unwrap();
    let (status, accept) = post_encoded(&addr, "gzip", gz.finish().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(accept.as_deref(), Some("gzip"));
    check_served(&addr, &log, 600).await;
}
