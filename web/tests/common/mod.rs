//! Support shared by the web view's tests: keys, sample records made from
//! the schema examples, and references between them; a seeded generator;
//! a new log, its registry, and the log and web view served over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use daylight_core::{KeyName, KeyType, SignerKey};
use daylight_log_server::admission::RecordAdmission;
use daylight_log_server::integrate::{append_record, integrate};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::server::{LogServer, RunningLog};
use daylight_log_server::sqlite::SqliteStore;
use daylight_schemas::{Draft, Record, Role, SignedRecord};
use daylight_web::{router, WebState};

/// The test logs' origin.
pub const ORIGIN: &str = "log.test/web";

/// A test key with a fixed seed.
pub fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
}

/// Deterministic "randomness" for salts.
pub fn random(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static C: AtomicU64 = AtomicU64::new(1);
    for chunk in buf.chunks_mut(32) {
        let h = daylight_core::leaf_hash(&C.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        chunk.copy_from_slice(&h.0[..chunk.len()]);
    }
}

/// A schema example record as JSON.
pub fn example(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../schemas/examples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A time as records write it.
pub fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `v` signed by `key`, made at `created`.
pub fn seal(key: &SignerKey, v: serde_json::Value, created: DateTime<Utc>) -> SignedRecord {
    Draft::from_json(&v.to_string())
        .unwrap()
        .seal(key, ORIGIN, created, &mut random)
        .unwrap()
        .0
}

/// A reference to entry `index` holding `r`.
pub fn entry_ref(r: &SignedRecord, index: u64) -> serde_json::Value {
    serde_json::json!({ "index": index, "leaf_hash": r.leaf_hash().to_hex() })
}

/// splitmix64: a generated log's choices, the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[usize::try_from(self.below(v.len() as u64)).unwrap()]
    }
}

/// `&amp;` back to `&` in an attribute taken from the HTML.
pub fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// The value of attribute `name` in the tag text `tag`.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(unescape(&tag[at..at + tag[at..].find('"')?]))
}

/// A new, empty log of origin [`ORIGIN`] (no witnesses) in a temporary
/// folder, and its key (seed 1).
pub fn new_log() -> (tempfile::TempDir, SignerKey, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let log_key = key(ORIGIN, 1);
    let store = Arc::new(SqliteStore::create(&dir.path().join("log.db"), ORIGIN, 0).unwrap());
    integrate(store.as_ref(), &log_key, ORIGIN, vec![]).unwrap();
    (dir, log_key, store)
}

/// Appends `r`, signed by `signer`, to the log; its index.
pub fn append(
    store: &SqliteStore,
    log_key: &SignerKey,
    r: &SignedRecord,
    signer: &SignerKey,
) -> u64 {
    append_record(store, log_key, r, signer.verifier())
        .unwrap()
        .get()
}

/// Adds each key to the log's registry in the role given, signed by the log.
pub fn register(store: &SqliteStore, log_key: &SignerKey, members: &[(Role, &SignerKey)]) {
    for (role, k) in members {
        let r = Record::registry_add(*role, k.verifier(), Utc::now())
            .unwrap()
            .sign(log_key, ORIGIN)
            .unwrap();
        append(store, log_key, &r, log_key);
    }
}

/// The log served over HTTP on a free local port, with the web view
/// (its index in `dir`, the auditor's findings file if any).
pub async fn serve(
    store: &Arc<SqliteStore>,
    log_key: &SignerKey,
    dir: &Path,
    findings: Option<PathBuf>,
) -> RunningLog {
    let web = router(WebState {
        store: store.clone(),
        log_key: log_key.verifier().clone(),
        findings,
        index: dir.join("web-index.db"),
        admitted: None,
        page_lag: daylight_web::PAGE_LAG,
    })
    .unwrap();
    LogServer {
        store: store.clone(),
        key: log_key.clone(),
        retiring: vec![],
        reload_keys: None,
        admission: Arc::new(RecordAdmission::new(log_key.verifier().clone())),
        batch: BatchConfig::default(),
        extra: Some(web),
        publish: None,
        lease: None,
    }
    .spawn("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap()
}

/// Waits out the web view's page lag: a page loaded after it shows every
/// entry the log had before it.
pub async fn past_the_page_lag() {
    tokio::time::sleep(daylight_web::PAGE_LAG).await;
}

/// GET `url`: its status, content type and body.
pub async fn get(http: &reqwest::Client, url: &str) -> (u16, String, String) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}
