//! Test fixtures: a log on a temporary directory, and test witnesses that
//! behave well or badly on purpose.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Router;
use daylight_core::proof::verify_consistency;
use daylight_core::witness_protocol::{format_size_body, AddCheckpoint, TLOG_SIZE_CONTENT_TYPE};
use daylight_core::{Hash, KeyName, KeyType, SignedCheckpoint, SignerKey, TreeSize, VerifierKey};
use daylight_log_server::admission::RecordAdmission;
use daylight_log_server::integrate::{append_record, integrate};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::server::{LogServer, RunningLog};
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::LogStore;
use daylight_schemas::{Draft, Record, Role, SignedRecord};

pub const ORIGIN: &str = "log.test/daylight";

pub fn key(name: &str, t: KeyType, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), t, [seed; 32])
}

/// A log directory with a registered agency.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub log_key: SignerKey,
    pub agency: SignerKey,
}

impl Fixture {
    pub fn new(quorum: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log_key = key(ORIGIN, KeyType::Ed25519, 1);
        let store = SqliteStore::create(&dir.path().join("log.db"), ORIGIN, quorum).unwrap();
        integrate(&store, &log_key, ORIGIN, vec![]).unwrap();
        let agency = key("agency.test", KeyType::Ed25519, 2);
        let f = Fixture {
            dir,
            store: Arc::new(store),
            log_key,
            agency,
        };
        f.register(Role::Agency, &f.agency.verifier().clone());
        f
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("log.db")
    }

    pub fn register(&self, role: Role, key: &VerifierKey) -> u64 {
        let rec = Record::registry_add(role, key, chrono::Utc::now())
            .unwrap()
            .sign(&self.log_key, ORIGIN)
            .unwrap();
        append_record(
            self.store.as_ref(),
            &self.log_key,
            &rec,
            self.log_key.verifier(),
        )
        .unwrap()
        .get()
    }

    pub fn revoke(&self, role: Role, key: &VerifierKey) -> u64 {
        let rec = Record::registry_revoke(role, key, chrono::Utc::now())
            .unwrap()
            .sign(&self.log_key, ORIGIN)
            .unwrap();
        append_record(
            self.store.as_ref(),
            &self.log_key,
            &rec,
            self.log_key.verifier(),
        )
        .unwrap()
        .get()
    }

    pub fn add_witness(&self, w: &TestWitness) {
        self.store.add_witness(w.key.verifier(), &w.url()).unwrap();
    }

    pub async fn start(&self, batch: BatchConfig) -> RunningLog {
        self.start_with(self.store.clone(), batch).await
    }

    pub async fn start_with(&self, store: Arc<dyn LogStore>, batch: BatchConfig) -> RunningLog {
        self.start_admitting(
            store,
            batch,
            RecordAdmission::new(self.log_key.verifier().clone()),
        )
        .await
    }

    pub async fn start_admitting(
        &self,
        store: Arc<dyn LogStore>,
        batch: BatchConfig,
        admission: RecordAdmission,
    ) -> RunningLog {
        LogServer {
            admission: Arc::new(admission),
            ..log_server(store, &self.log_key, batch)
        }
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
    }

    /// The log's server, not yet started, to adjust before `spawn`.
    pub fn server(&self, batch: BatchConfig) -> LogServer {
        log_server(self.store.clone(), &self.log_key, batch)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A server for the log in `store`, signing with `key` alone and admitting
/// the records of its registry; nothing else configured.
pub fn log_server(store: Arc<dyn LogStore>, key: &SignerKey, batch: BatchConfig) -> LogServer {
    LogServer {
        store,
        key: key.clone(),
        retiring: Vec::new(),
        reload_keys: None,
        admission: Arc::new(RecordAdmission::new(key.verifier().clone())),
        batch,
        extra: None,
        publish: None,
        lease: None,
    }
}

/// POSTs `body` to `{url}/api/v1/entries`: the status and the JSON body
/// (`null` if the body is not JSON).
pub async fn post(c: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let (status, _, v) = post_retry(c, url, body).await;
    (status, v)
}

/// [`post`], also telling whether the answer carried `Retry-After`.
pub async fn post_retry(
    c: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> (u16, bool, serde_json::Value) {
    let r = c
        .post(format!("{url}/api/v1/entries"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().contains_key("retry-after");
    (
        status,
        retry,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// GETs `url` (a full URL): its JSON body, after asserting a 200.
pub async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap()
}

/// The log's Prometheus text (`GET {url}/metrics`).
pub async fn metrics(c: &reqwest::Client, url: &str) -> String {
    c.get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (bounded) until the published checkpoint covers `size` entries.
pub async fn published(c: &reqwest::Client, url: &str, size: u64) -> Vec<u8> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = c.get(format!("{url}/checkpoint")).send().await.unwrap();
        if r.status() == 200 {
            let bytes = r.bytes().await.unwrap().to_vec();
            let note = daylight_core::Note::parse(&bytes).unwrap();
            if daylight_core::Checkpoint::parse_text(note.text())
                .unwrap()
                .size
                .get()
                >= size
            {
                return bytes;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of size {size} published in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A port nothing listens on right now, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh, validly signed request record (fresh salts: unique bytes).
pub fn request(agency: &SignerKey) -> SignedRecord {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/examples/request.json"
    ))
    .unwrap();
    // The example's dates are fixed; move the window around now.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    v["valid_from"] = fmt(now - day).into();
    v["valid_until"] = fmt(now + day * 30).into();
    v["sealed_until"] = fmt(now + day * 365).into();
    let draft = Draft::from_json(&v.to_string()).unwrap();
    draft.seal(agency, ORIGIN, now, &mut test_random).unwrap().0
}

/// Test randomness: distinct bytes on every call, no OS dependency.
pub fn test_random(buf: &mut [u8]) {
    static COUNTER: AtomicUsize = AtomicUsize::new(1);
    for chunk in buf.chunks_mut(32) {
        let c = COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
        let h = daylight_core::leaf_hash(&c.to_be_bytes());
        chunk.copy_from_slice(&h.0[..chunk.len()]);
    }
}

/// How a test witness behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Follows the protocol.
    Honest,
    /// Answers 200 with a cosignature that does not verify.
    BadCosignature,
    /// Answers 500 always.
    Broken,
    /// Never answers (longer than the log's timeout).
    Hang,
    /// Answers 200 with something that is not a cosignature.
    Garbage,
    /// Answers 200 with a valid cosignature of another checkpoint.
    OtherCheckpoint,
}

struct WitnessState {
    log_key: VerifierKey,
    key: SignerKey,
    mode: Mode,
    latest: Mutex<(TreeSize, Hash)>,
    requests: AtomicUsize,
    conflicts: AtomicUsize,
}

/// A minimal tlog-witness for tests (the real one is the witness crate).
pub struct TestWitness {
    pub key: SignerKey,
    pub addr: SocketAddr,
    state: Arc<WitnessState>,
}

impl TestWitness {
    pub async fn start(name: &str, seed: u8, log_key: &VerifierKey, mode: Mode) -> TestWitness {
        let key = key(name, KeyType::CosignatureV1, seed);
        let state = Arc::new(WitnessState {
            log_key: log_key.clone(),
            key: key.clone(),
            mode,
            latest: Mutex::new((TreeSize(0), Hash::empty_tree())),
            requests: AtomicUsize::new(0),
            conflicts: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/add-checkpoint", routing::post(add_checkpoint))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestWitness { key, addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn conflicts(&self) -> usize {
        self.state.conflicts.load(Ordering::Relaxed)
    }

    pub fn size(&self) -> TreeSize {
        self.state.latest.lock().unwrap().0
    }
}

async fn add_checkpoint(State(s): State<Arc<WitnessState>>, body: Bytes) -> Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    match s.mode {
        Mode::Broken => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "broken on purpose\n").into_response()
        }
        Mode::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            return (StatusCode::INTERNAL_SERVER_ERROR, "woke up\n").into_response();
        }
        Mode::Garbage => {
            return (StatusCode::OK, "hello, I am not a cosignature\n").into_response()
        }
        _ => {}
    }
    let Ok(req) = AddCheckpoint::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed\n").into_response();
    };
    let Ok(cp) = SignedCheckpoint::open(&req.checkpoint, &s.log_key) else {
        return (StatusCode::FORBIDDEN, "bad log signature\n").into_response();
    };
    let mut latest = s.latest.lock().unwrap();
    if req.old != latest.0 {
        s.conflicts.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::CONFLICT,
            [("content-type", TLOG_SIZE_CONTENT_TYPE)],
            format_size_body(latest.0),
        )
            .into_response();
    }
    let c = &cp.checkpoint;
    let consistent = if req.old.get() == 0 {
        req.proof.is_empty()
    } else {
        verify_consistency(req.old, c.size, latest.1, c.root, &req.proof).is_ok()
    };
    if !consistent {
        return (StatusCode::UNPROCESSABLE_ENTITY, "inconsistent\n").into_response();
    }
    *latest = (c.size, c.root);
    let now = chrono::Utc::now().timestamp() as u64;
    let signed_text = if s.mode == Mode::OtherCheckpoint {
        daylight_core::Checkpoint::new(&c.origin, TreeSize(c.size.get() + 1), c.root).to_text()
    } else {
        cp.note.text().to_owned()
    };
    let mut sig = s.key.sign_note_text(&signed_text, now);
    if s.mode == Mode::BadCosignature {
        let last = sig.signature.len() - 1;
        sig.signature[last] ^= 1;
    }
    (StatusCode::OK, sig.to_line()).into_response()
}
