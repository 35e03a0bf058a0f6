//! Pull mode: the mirror follows a log that only serves tlog-tiles (an
//! in-process static tiles server on a free port, built from core's tile
//! functions over a memory tree), through the same checks and durable path
//! as a push.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::mirror_protocol::{package_proof, AddEntriesEncoder, AddEntriesHeader};
use daylight_core::tile::{encode_entry_bundle, read_tile_data, TilePath, TILE_WIDTH};
use daylight_core::tree::{consistency_proof, tree_hash, MemoryTree};
use daylight_core::witness_protocol::AddCheckpoint;
use daylight_core::{Checkpoint, KeyName, KeyType, LeafIndex, Note, SignerKey, TreeSize};
use daylight_mirror::follow::{follow_one, poll};
use daylight_mirror::{store, FollowError, Mirror, MirrorError, Polled};

const ORIGIN: &str = "log.test/followed";

/// What the test log serves: its entries (all of them are its tree), and
/// the faults it is told to inject.
struct LogState {
    key: SignerKey,
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
    /// Serve entry `i` with one byte changed in its bundle (tiles honest).
    tamper: Option<u64>,
    /// Answer 500 for entry bundles from this index on.
    fail_bundles_from: Option<u64>,
}

type Shared = Arc<Mutex<LogState>>;

fn log_key() -> SignerKey {
    SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [7; 32])
}

fn mirror_key() -> SignerKey {
    SignerKey::from_seed(
        KeyName::new("mirror.test/m1").unwrap(),
        KeyType::CosignatureV1,
        [9; 32],
    )
}

impl LogState {
    fn new(n: u64, salt: &str) -> LogState {
        let mut log = LogState {
            key: log_key(),
            tree: MemoryTree::new(),
            entries: Vec::new(),
            tamper: None,
            fail_bundles_from: None,
        };
        log.grow(n, salt);
        log
    }

    /// Appends entries up to `to`; `salt` makes a different history.
    fn grow(&mut self, to: u64, salt: &str) {
        while (self.entries.len() as u64) < to {
            let e = format!("entry {} of {ORIGIN}{salt}", self.entries.len()).into_bytes();
            self.tree.append(&e);
            self.entries.push(e);
        }
    }

    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn checkpoint(&self) -> Vec<u8> {
        let size = TreeSize(self.size());
        let root = tree_hash(size, &self.tree).unwrap();
        Checkpoint::new(ORIGIN, size, root)
            .sign(&self.key)
            .unwrap()
            .to_bytes()
    }

    fn tile(&self, path: &str) -> Option<Vec<u8>> {
        let size = self.size();
        match TilePath::parse(path).ok()? {
            TilePath::Hashes(tile) => {
                let leaves = (tile.index * TILE_WIDTH + u64::from(tile.width))
                    .checked_mul(TILE_WIDTH.checked_pow(u32::from(tile.level))?)?;
                (leaves <= size).then(|| read_tile_data(tile, &self.tree).unwrap())
            }
            TilePath::Entries(bundle) => {
                let start = bundle.index * TILE_WIDTH;
                let end = start + u64::from(bundle.width);
                if end > size || self.fail_bundles_from.is_some_and(|f| bundle.index >= f) {
                    return None;
                }
                let mut entries: Vec<Vec<u8>> = self.entries[start as usize..end as usize].to_vec();
                if let Some(t) = self.tamper.filter(|t| (start..end).contains(t)) {
                    entries[(t - start) as usize][0] ^= 1;
                }
                Some(encode_entry_bundle(entries.iter().map(Vec::as_slice)).unwrap())
            }
        }
    }
}

async fn checkpoint(State(log): State<Shared>) -> Vec<u8> {
    log.lock().unwrap().checkpoint()
}

async fn tile(State(log): State<Shared>, Path(path): Path<String>) -> Response {
    match log.lock().unwrap().tile(&format!("tile/{path}")) {
        Some(data) => data.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `log` as tlog-tiles on a free port; its URL.
async fn serve_log(log: Shared) -> String {
    let app = Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .with_state(log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A mirror database that knows the log and follows `url`.
fn mirror_dir(url: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(store::DB_FILE);
    store::create(&db).unwrap();
    let mut conn = store::open(&db).unwrap();
    store::add_log(&mut conn, ORIGIN, log_key().verifier(), 1).unwrap();
    store::set_follow(&conn, ORIGIN, Some(url)).unwrap();
    (dir, db)
}

async fn poll_once(mirror: &Arc<Mirror>, url: &str) -> Result<Polled, FollowError> {
    let (m, u) = (mirror.clone(), url.to_owned());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || poll(&m, &reqwest::Client::new(), handle, ORIGIN, &u))
        .await
        .unwrap()
}

fn record(mirror: &Mirror) -> store::LogRecord {
    mirror.log(ORIGIN).unwrap().unwrap()
}

/// The mirror checkpoint is the log's at `size`, cosigned by the mirror,
/// and the stored entries re-derive its root.
fn check_cosigned(mirror: &Mirror, log: &LogState, size: u64) {
    let r = record(mirror);
    assert_eq!(r.mirror_size, TreeSize(size));
    let note = Note::parse(r.mirror_checkpoint.as_deref().unwrap()).unwrap();
    let cp = Checkpoint::parse_text(note.text()).unwrap();
    assert_eq!(cp.size, TreeSize(size));
    assert_eq!(cp.root, tree_hash(TreeSize(size), &log.tree).unwrap());
    assert_eq!(
        verify_cosignatures(&note, &[mirror.verifier()])
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiles_only_log_is_followed_and_cosigned_as_it_grows() {
    let log = Arc::new(Mutex::new(LogState::new(600, "")));
    let url = serve_log(log.clone()).await;
    let (_dir, db) = mirror_dir(&url);
    let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());

    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(600))
    );
    check_cosigned(&mirror, &log.lock().unwrap(), 600);
    assert_eq!(record(&mirror).next_entry, 600);
    // Nothing new: nothing done.
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::UpToDate(TreeSize(600))
    );

    // The log grows (an unaligned start, several packages): the mirror
    // catches up through the consistency proof from 600.
    log.lock().unwrap().grow(1100, "");
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(1100))
    );
    check_cosigned(&mirror, &log.lock().unwrap(), 1100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_entry_bundle_is_refused_and_nothing_past_it_stored() {
    let log = Arc::new(Mutex::new(LogState::new(700, "")));
    log.lock().unwrap().tamper = Some(300);
    let url = serve_log(log.clone()).await;
    let (_dir, db) = mirror_dir(&url);
    let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());

    let err = poll_once(&mirror, &url).await.unwrap_err();
    assert!(
        matches!(err, FollowError::Mirror(MirrorError::Proof(_))),
        "{err:?}"
    );
    let r = record(&mirror);
    // The first package verified and is kept; the tampered one is not.
    assert_eq!(r.next_entry, 256);
    assert_eq!(r.mirror_size, TreeSize(0));
    assert!(r.mirror_checkpoint.is_none());

    // Once the log serves the right entry, the mirror resumes and cosigns.
    log.lock().unwrap().tamper = None;
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(700))
    );
    check_cosigned(&mirror, &log.lock().unwrap(), 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_checkpoint_is_refused_never_stored_and_shown_in_logs() {
    let log = Arc::new(Mutex::new(LogState::new(500, "")));
    let url = serve_log(log.clone()).await;
    let (_dir, db) = mirror_dir(&url);
    let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(500))
    );
    let before = record(&mirror);

    // The log now serves another history, larger (and at the same size).
    for size in [900, 500 + 1] {
        *log.lock().unwrap() = LogState::new(size, " (forked)");
        let err = poll_once(&mirror, &url).await.unwrap_err();
        assert!(
            matches!(err, FollowError::Mirror(MirrorError::Checkpoint(_))),
            "{err:?}"
        );
        assert_eq!(record(&mirror), before, "nothing stored");
    }
    let same_size = LogState::new(500, " (forked)");
    *log.lock().unwrap() = same_size;
    let err = poll_once(&mirror, &url).await.unwrap_err();
    assert!(
        matches!(err, FollowError::Fork { size: 500, .. }),
        "{err:?}"
    );
    assert_eq!(record(&mirror), before);

    // Served: the poll loop records the refusal, GET /logs shows it.
    let task = tokio::spawn(follow_one(
        mirror.clone(),
        reqwest::Client::new(),
        ORIGIN.to_owned(),
        url.clone(),
        Duration::from_millis(50),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(daylight_mirror::serve(
        listener,
        mirror.clone(),
        std::future::pending(),
    ));
    let mut shown = None;
    for _ in 0..100 {
        let logs: serde_json::Value = reqwest::get(format!("http://{addr}/logs"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let follow = logs["logs"][0]["follow"].clone();
        if follow["error"].is_string() {
            shown = Some((logs["logs"][0].clone(), follow));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    let (view, follow) = shown.expect("the refusal is shown in GET /logs");
    assert_eq!(follow["url"], url.as_str());
    assert!(
        follow["error"].as_str().unwrap().contains("fork"),
        "{follow}"
    );
    assert_eq!(view["mirror_size"], 500);
    assert_eq!(view["next_entry"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_stopped_mid_fetch_resumes_from_its_stored_entries() {
    let log = Arc::new(Mutex::new(LogState::new(1000, "")));
    // The fetch stops at the third bundle.
    log.lock().unwrap().fail_bundles_from = Some(2);
    let url = serve_log(log.clone()).await;
    let (_dir, db) = mirror_dir(&url);
    {
        let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());
        let err = poll_once(&mirror, &url).await.unwrap_err();
        assert!(matches!(err, FollowError::Fetch { .. }), "{err:?}");
        let r = record(&mirror);
        assert_eq!(r.next_entry, 512);
        assert_eq!(r.pending_size, TreeSize(1000));
        assert!(r.mirror_checkpoint.is_none(), "nothing cosigned");
    }
    // A new process on the same database, the log reachable again.
    log.lock().unwrap().fail_bundles_from = None;
    log.lock().unwrap().grow(1300, "");
    let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(1300))
    );
    check_cosigned(&mirror, &log.lock().unwrap(), 1300);
}

impl LogState {
    /// The add-checkpoint body from `old` to the current size.
    fn add_checkpoint(&self, old: u64) -> Vec<u8> {
        let proof = if old == 0 {
            Vec::new()
        } else {
            consistency_proof(TreeSize(old), TreeSize(self.size()), &self.tree).unwrap()
        };
        AddCheckpoint {
            old: TreeSize(old),
            proof,
            checkpoint: self.checkpoint(),
        }
        .to_bytes()
    }

    /// The add-entries body for `[start, end)` against the current size,
    /// cut after `packages` packages.
    fn add_entries(&self, start: u64, packages: usize) -> Vec<u8> {
        let end = TreeSize(self.size());
        let header = AddEntriesHeader {
            origin: ORIGIN.to_owned(),
            upload_start: LeafIndex(start),
            upload_end: end,
            ticket: Vec::new(),
        };
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&header, &mut out).unwrap();
        for _ in 0..packages {
            let Some(range) = enc.next_package() else {
                break;
            };
            let entries = &self.entries[range.start.get() as usize..range.end.get() as usize];
            let proof = package_proof(range, end, &self.tree).unwrap();
            enc.push_package(entries, &proof, &mut out).unwrap();
        }
        out
    }
}

async fn post(addr: SocketAddr, path: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_pushes_and_is_followed_stays_consistent() {
    let log = Arc::new(Mutex::new(LogState::new(300, "")));
    let url = serve_log(log.clone()).await;
    let (_dir, db) = mirror_dir(&url);
    let mirror = Arc::new(Mirror::open(&db, mirror_key()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(daylight_mirror::serve(
        listener,
        mirror.clone(),
        std::future::pending(),
    ));

    // The log pushes 300 completely.
    let (cp, entries) = {
        let l = log.lock().unwrap();
        (l.add_checkpoint(0), l.add_entries(0, 64))
    };
    assert_eq!(post(addr, "/add-checkpoint", cp).await, 200);
    assert_eq!(post(addr, "/add-entries", entries).await, 200);
    check_cosigned(&mirror, &log.lock().unwrap(), 300);

    // It grows to 700 and only the follower sees it: from 300, by the tiles.
    log.lock().unwrap().grow(700, "");
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(700))
    );

    // It grows to 1000 and pushes its checkpoint but only one package
    // ([512, 768), 202); the follower finishes the upload the push began.
    log.lock().unwrap().grow(1000, "");
    let (cp, entries) = {
        let l = log.lock().unwrap();
        (l.add_checkpoint(700), l.add_entries(700, 1))
    };
    assert_eq!(post(addr, "/add-checkpoint", cp).await, 200);
    assert_eq!(post(addr, "/add-entries", entries).await, 202);
    assert_eq!(record(&mirror).next_entry, 768);
    assert_eq!(
        poll_once(&mirror, &url).await.unwrap(),
        Polled::Cosigned(TreeSize(1000))
    );
    check_cosigned(&mirror, &log.lock().unwrap(), 1000);

    // The push's retry of the rest, from the next entry its 202 gave: the
    // entries the follower stored are verified and skipped, and the
    // mirror checkpoint at that size is refreshed.
    let entries = log.lock().unwrap().add_entries(768, 64);
    assert_eq!(post(addr, "/add-entries", entries).await, 200);
    check_cosigned(&mirror, &log.lock().unwrap(), 1000);
}
