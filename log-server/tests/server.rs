//! The log server in-process on a free loopback port, with test witnesses:
//! submissions, proofs, tiles, restarts, witness faults and every error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{client, post, post_retry, published, request, Fixture, Mode, TestWitness};
use daylight_core::policy::WitnessPolicy;
use daylight_core::proof::verify_consistency;
use daylight_core::tile::{
    new_tiles, parse_entry_bundle, BundleCoord, Tile, TileError, TileHashReader, TileReader,
};
use daylight_core::tree::{consistency_proof, tree_hash};
use daylight_core::{
    leaf_hash, Checkpoint, LeafIndex, Note, SignedCheckpoint, TlogProof, TreeSize,
};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::store::{LogStore, StoreHashes};
use serde_json::Value;

async fn witnesses(f: &Fixture, modes: &[Mode]) -> Vec<TestWitness> {
    let mut out = Vec::new();
    for (i, m) in modes.iter().enumerate() {
        let w = TestWitness::start(
            &format!("w{i}.test"),
            50 + i as u8,
            f.log_key.verifier(),
            *m,
        )
        .await;
        f.add_witness(&w);
        out.push(w);
    }
    out
}

fn policy(f: &Fixture, ws: &[TestWitness], k: usize) -> WitnessPolicy {
    WitnessPolicy::k_of_n(
        f.log_key.verifier().clone(),
        ws.iter().map(|w| w.key.verifier().clone()).collect(),
        k,
    )
}

struct Tiles(HashMap<String, Vec<u8>>);

impl TileReader for Tiles {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
        tiles
            .iter()
            .map(|t| {
                self.0
                    .get(&t.path())
                    .cloned()
                    .ok_or_else(|| TileError::Read(format!("not fetched: {}", t.path())))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_all_prove_and_tiles_rederive_the_root() {
    let f = Fixture::new(2);
    let ws = witnesses(&f, &[Mode::Honest, Mode::Honest, Mode::Honest]).await;
    let log = f.start(BatchConfig::default()).await;
    let url = log.url();
    let c = client();

    // 2,000 submissions from 50 concurrent clients.
    let records: Vec<Vec<u8>> = (0..2000).map(|_| request(&f.agency).to_bytes()).collect();
    let records = Arc::new(records);
    let mut tasks = Vec::new();
    for t in 0..50usize {
        let (c, url, records) = (c.clone(), url.clone(), records.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in (t..records.len()).step_by(50) {
                let (status, body) = post(&c, &url, records[i].clone()).await;
                assert_eq!(status, 200, "{body}");
                got.push((i, body["index"].as_u64().unwrap()));
            }
            got
        }));
    }
    let mut index_of = vec![0u64; records.len()];
    for t in tasks {
        for (i, idx) in t.await.unwrap() {
            index_of[i] = idx;
        }
    }
    let mut sorted = index_of.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        records.len(),
        "every record got its own index"
    );

    let size = f.store.size().unwrap().get();
    let cp_bytes = published(&c, &url, size).await;
    let p = policy(&f, &ws, 2);

    // Every entry's proof verifies against the published checkpoint.
    for (i, &idx) in index_of.iter().enumerate() {
        let r = c
            .get(format!("{url}/api/v1/entries/{idx}/proof"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let proof = TlogProof::parse(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(proof.index, LeafIndex(idx));
        proof.verify(&records[i], &p).unwrap();
    }

    // The tiles, fetched over HTTP, re-derive the root; the entry bundles hold
    // exactly the entries whose leaf hashes the level-0 tiles list.
    let note = Note::parse(&cp_bytes).unwrap();
    let cp = Checkpoint::parse_text(note.text()).unwrap();
    let mut fetched = HashMap::new();
    for t in new_tiles(TreeSize(0), cp.size) {
        let r = c.get(format!("{url}/{}", t.path())).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", t.path());
        let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
        assert_eq!(
            cache.contains("immutable"),
            t.is_full(),
            "{}: {cache}",
            t.path()
        );
        fetched.insert(t.path(), r.bytes().await.unwrap().to_vec());
    }
    let tiles = Tiles(fetched);
    let reader = TileHashReader::new(cp.size, cp.root, &tiles);
    assert_eq!(tree_hash(cp.size, &reader).unwrap(), cp.root);
    for t in new_tiles(TreeSize(0), cp.size)
        .into_iter()
        .filter(|t| t.level == 0)
    {
        let b = BundleCoord {
            index: t.index,
            width: t.width,
        };
        let data = c
            .get(format!("{url}/{}", b.path()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let entries = parse_entry_bundle(&data, b.width).unwrap();
        let hashes = &tiles.0[&t.path()];
        for (j, e) in entries.iter().enumerate() {
            assert_eq!(&leaf_hash(e).0[..], &hashes[j * 32..(j + 1) * 32]);
        }
    }
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_restart_and_consistency() {
    let f = Fixture::new(1);
    let ws = witnesses(&f, &[Mode::Honest]).await;
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    let rec = request(&f.agency).to_bytes();
    let (s1, b1) = post(&c, &log.url(), rec.clone()).await;
    let (s2, b2) = post(&c, &log.url(), rec.clone()).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(b1["index"], b2["index"], "same bytes, same index");
    for _ in 0..20 {
        assert_eq!(
            post(&c, &log.url(), request(&f.agency).to_bytes()).await.0,
            200
        );
    }
    let before = f.store.size().unwrap();
    let old_cp = published(&c, &log.url(), before.get()).await;
    log.stop().await.unwrap();

    // Reopen from disk: everything is there, and the log grows consistently.
    let store = Arc::new(daylight_log_server::sqlite::SqliteStore::open(&f.db()).unwrap());
    assert_eq!(store.size().unwrap(), before);
    let log = f.start_with(store.clone(), BatchConfig::default()).await;
    let (s3, b3) = post(&c, &log.url(), rec.clone()).await;
    assert_eq!(
        (s3, &b3["index"]),
        (200, &b1["index"]),
        "duplicate across restart"
    );
    for _ in 0..5 {
        assert_eq!(
            post(&c, &log.url(), request(&f.agency).to_bytes()).await.0,
            200
        );
    }
    let after = store.size().unwrap();
    assert_eq!(after.get(), before.get() + 5);
    let new_cp = published(&c, &log.url(), after.get()).await;
    let open = |b: &[u8]| {
        SignedCheckpoint::open(b, f.log_key.verifier())
            .unwrap()
            .checkpoint
    };
    let (o, n) = (open(&old_cp), open(&new_cp));
    let proof = consistency_proof(o.size, n.size, &StoreHashes::new(store.as_ref())).unwrap();
    verify_consistency(o.size, n.size, o.root, n.root, &proof).unwrap();
    assert_eq!(ws[0].size(), n.size, "the witness followed the log");
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_faults_do_not_stop_the_log_and_bad_cosignatures_are_not_kept() {
    let f = Fixture::new(2);
    let ws = witnesses(
        &f,
        &[
            Mode::Honest,
            Mode::BadCosignature,
            Mode::Honest,
            Mode::Broken,
        ],
    )
    .await;
    // A witness that is down: nothing listens on its port.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down_key = common::key("down.test", daylight_core::KeyType::CosignatureV1, 99);
    f.store
        .add_witness(down_key.verifier(), &format!("http://{down}"))
        .unwrap();
    // The log believes the first witness is at size 1; it is at 0 and will say so (409).
    f.store
        .set_witness_size(ws[0].key.verifier(), TreeSize(1))
        .unwrap();

    let log = f.start(BatchConfig::default()).await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(
            post(&c, &log.url(), request(&f.agency).to_bytes()).await.0,
            200
        );
    }
    let size = f.store.size().unwrap().get();
    let cp = published(&c, &log.url(), size).await;
    assert!(ws[0].conflicts() >= 1, "the 409 path was taken");
    let note = Note::parse(&cp).unwrap();
    let names: Vec<String> = note
        .signatures()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert!(
        names.contains(&"w0.test".to_owned()) && names.contains(&"w2.test".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"w1.test".to_owned()),
        "a bad cosignature is not kept: {names:?}"
    );
    assert!(ws[1].requests() >= 1 && ws[3].requests() >= 1);
    let metrics = common::metrics(&c, &log.url()).await;
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("daylight_witness_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 2, "{metrics}");
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_nothing_is_published() {
    let f = Fixture::new(2);
    let _ws = witnesses(&f, &[Mode::Honest, Mode::BadCosignature]).await;
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    let (status, body) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(status, 200);
    let idx = body["index"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = c
        .get(format!("{}/api/v1/entries/{idx}/proof", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_yet_published");
    let r = c
        .get(format!("{}/checkpoint", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_json_error() {
    let f = Fixture::new(0);
    let revoked = common::key("revoked.test", daylight_core::KeyType::Ed25519, 7);
    f.register(daylight_schemas::Role::Agency, revoked.verifier());
    f.revoke(daylight_schemas::Role::Agency, revoked.verifier());
    let stranger = common::key("stranger.test", daylight_core::KeyType::Ed25519, 8);
    let log = f.start(BatchConfig::default()).await;
    let (c, url) = (client(), log.url());
    let good = request(&f.agency).to_bytes();
    let size_before = f.store.size().unwrap();

    let check = |status: u16, body: &Value, want: u16, code: &str| {
        assert_eq!(status, want, "{code}: {body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    };
    let (s, b) = post(&c, &url, b"{not json".to_vec()).await;
    check(s, &b, 400, "malformed");
    let mut spaced = b" ".to_vec();
    spaced.extend_from_slice(&good);
    let (s, b) = post(&c, &url, spaced).await;
    check(s, &b, 400, "noncanonical");
    let (s, b) = post(&c, &url, vec![b'x'; 70_000]).await;
    assert_eq!(s, 413, "{b}");
    let r = c
        .post(format!("{url}/api/v1/entries"))
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (s, b) = post(&c, &url, request(&stranger).to_bytes()).await;
    check(s, &b, 401, "unknown_signer");
    let (s, b) = post(&c, &url, request(&revoked).to_bytes()).await;
    check(s, &b, 403, "revoked_signer");
    // A signature by another key under the agency's name and ID.
    let forged = {
        let text = String::from_utf8(good.clone()).unwrap();
        let other = String::from_utf8(request(&f.agency).to_bytes()).unwrap();
        let sig = |t: &str| {
            let v: Value = serde_json::from_str(t).unwrap();
            v["signature"].clone()
        };
        let (a, b) = (sig(&text), sig(&other));
        let (a, b) = (
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap(),
        );
        text.replace(&a, &b).into_bytes()
    };
    let (s, b) = post(&c, &url, forged).await;
    check(s, &b, 403, "bad_signature");
    // A registry record may not be submitted over the API.
    let reg = daylight_schemas::Record::registry_add(
        daylight_schemas::Role::Agency,
        stranger.verifier(),
        chrono::Utc::now(),
    )
    .unwrap()
    .sign(&f.log_key, common::ORIGIN)
    .unwrap();
    let (s, b) = post(&c, &url, reg.to_bytes()).await;
    check(s, &b, 403, "registry_by_operator");
    // A withdrawal that points at an entry that does not exist yet.
    let withdrawal = {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/examples/withdrawal.json"
        ))
        .unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["entry"]["index"] = Value::from(1_000_000u64);
        let d = daylight_schemas::Draft::from_json(&v.to_string()).unwrap();
        d.seal(
            &f.agency,
            common::ORIGIN,
            chrono::Utc::now(),
            &mut common::test_random,
        )
        .unwrap()
        .0
    };
    let (s, b) = post(&c, &url, withdrawal.to_bytes()).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"].as_str().unwrap().starts_with("reference_"),
        "{b}"
    );

    assert_eq!(
        f.store.size().unwrap(),
        size_before,
        "nothing refused was stored"
    );

    // Reads: unknown index 404, bad index 400, bad tile path 400, tile beyond the tree 404.
    let get = |path: String| {
        let c = c.clone();
        async move {
            let r = c.get(path).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = get(format!("{url}/api/v1/entries/999999/proof")).await;
    check(s, &b, 404, "not_found");
    let (s, b) = get(format!("{url}/api/v1/entries/999999")).await;
    check(s, &b, 404, "not_found");
    let (s, b) = get(format!("{url}/api/v1/entries/-1")).await;
    check(s, &b, 400, "bad_index");
    // Tile paths are parsed into coordinates, never used as file paths.
    for bad in [
        "tile/0/1",
        "tile/abc/000",
        "tile/0/000.p/256",
        "tile/0/x000/001",
        "tile/entries/a%2Fb",
    ] {
        let (s, b) = get(format!("{url}/{bad}")).await;
        check(s, &b, 400, "bad_tile_path");
    }
    let (s, b) = get(format!("{url}/tile/3/000")).await;
    check(s, &b, 404, "not_found");
    let (s, b) = get(format!("{url}/nope")).await;
    check(s, &b, 404, "not_found");

    // The registry is public.
    let (s, b) = get(format!("{url}/api/v1/agencies")).await;
    assert_eq!(s, 200);
    let keys = b["keys"].as_array().unwrap();
    assert!(keys
        .iter()
        .any(|k| k["name"] == "agency.test" && k["revoked_at"].is_null()));
    assert!(keys
        .iter()
        .any(|k| k["name"] == "revoked.test" && !k["revoked_at"].is_null()));
    log.stop().await.unwrap();
}

/// A store whose writes can be made slow (to fill the sequencer's queue) or
/// fail (a full or read-only disk), and whose commits can be made to wait
/// for a sync of the test's own (`syncs`).
struct Faulty {
    inner: Arc<dyn LogStore>,
    delay: Duration,
    failing: std::sync::atomic::AtomicBool,
    failing_publish: std::sync::atomic::AtomicBool,
    syncs: Option<Arc<daylight_log_server::durability::SyncGroup>>,
}

impl Faulty {
    fn new(inner: Arc<dyn LogStore>, delay: Duration) -> Faulty {
        Faulty {
            inner,
            delay,
            failing: std::sync::atomic::AtomicBool::new(false),
            failing_publish: std::sync::atomic::AtomicBool::new(false),
            syncs: None,
        }
    }
}

impl LogStore for Faulty {
    fn meta(
        &self,
    ) -> Result<daylight_log_server::store::LogMeta, daylight_log_server::store::StoreError> {
        self.inner.meta()
    }
    fn size(&self) -> Result<TreeSize, daylight_log_server::store::StoreError> {
        self.inner.size()
    }
    fn durable_size(&self) -> Result<TreeSize, daylight_log_server::store::StoreError> {
        self.inner.durable_size()
    }
    fn find_leaf(
        &self,
        l: &daylight_core::Hash,
    ) -> Result<Option<LeafIndex>, daylight_log_server::store::StoreError> {
        self.inner.find_leaf(l)
    }
    fn entry(
        &self,
        i: LeafIndex,
    ) -> Result<
        Option<daylight_log_server::store::StoredEntry>,
        daylight_log_server::store::StoreError,
    > {
        self.inner.entry(i)
    }
    fn entries(
        &self,
        s: LeafIndex,
        n: u64,
    ) -> Result<Vec<daylight_log_server::store::StoredEntry>, daylight_log_server::store::StoreError>
    {
        self.inner.entries(s, n)
    }
    fn read_hashes(
        &self,
        i: &[u64],
    ) -> Result<Vec<daylight_core::Hash>, daylight_log_server::store::StoreError> {
        self.inner.read_hashes(i)
    }
    fn append(
        &self,
        b: daylight_log_server::store::Append,
    ) -> Result<(), daylight_log_server::store::StoreError> {
        std::thread::sleep(self.delay);
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(daylight_log_server::store::StoreError::Unwritable(
                "disk I/O error (injected)".into(),
            ));
        }
        self.inner.append(b)
    }
    fn append_pipelined(
        &self,
        b: daylight_log_server::store::Append,
    ) -> Result<daylight_log_server::store::Durable, daylight_log_server::store::StoreError> {
        let Some(syncs) = &self.syncs else {
            return self
                .append(b)
                .map(|()| daylight_log_server::store::Durable::now());
        };
        let begun = syncs.begin(b.old_size)?;
        self.append(b)?;
        Ok(begun.committed())
    }
    fn durable_barrier(&self) -> daylight_log_server::store::Durable {
        match &self.syncs {
            Some(syncs) => syncs.barrier(),
            None => daylight_log_server::store::Durable::now(),
        }
    }
    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, daylight_log_server::store::StoreError> {
        self.inner.latest_checkpoint()
    }
    fn published_checkpoint(
        &self,
    ) -> Result<Option<Vec<u8>>, daylight_log_server::store::StoreError> {
        self.inner.published_checkpoint()
    }
    fn publish(&self, s: TreeSize, n: &[u8]) -> Result<(), daylight_log_server::store::StoreError> {
        if self
            .failing_publish
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(daylight_log_server::store::StoreError::Unwritable(
                "disk I/O error (injected)".into(),
            ));
        }
        self.inner.publish(s, n)
    }
    fn witnesses(
        &self,
    ) -> Result<
        Vec<daylight_log_server::store::WitnessConfig>,
        daylight_log_server::store::StoreError,
    > {
        self.inner.witnesses()
    }
    fn add_witness(
        &self,
        k: &daylight_core::VerifierKey,
        u: &str,
    ) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.add_witness(k, u)
    }
    fn mirrors(
        &self,
    ) -> Result<daylight_log_server::store::MirrorSet, daylight_log_server::store::StoreError> {
        self.inner.mirrors()
    }
    fn add_mirror(
        &self,
        k: &daylight_core::VerifierKey,
        u: &str,
    ) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.add_mirror(k, u)
    }
    fn set_mirror_quorum(&self, q: usize) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.set_mirror_quorum(q)
    }
    fn set_witness_size(
        &self,
        k: &daylight_core::VerifierKey,
        s: TreeSize,
    ) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.set_witness_size(k, s)
    }
    fn entries_of_kind(
        &self,
        k: &str,
        s: LeafIndex,
    ) -> Result<Vec<daylight_log_server::store::StoredEntry>, daylight_log_server::store::StoreError>
    {
        self.inner.entries_of_kind(k, s)
    }
    fn acquire_lease(
        &self,
        h: &str,
        ttl: Duration,
        dead: Option<&str>,
    ) -> Result<Option<daylight_log_server::store::Lease>, daylight_log_server::store::StoreError>
    {
        self.inner.acquire_lease(h, ttl, dead)
    }
    fn release_lease(
        &self,
        h: &str,
        l: daylight_log_server::store::Lease,
    ) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.release_lease(h, l)
    }
    fn lease_state(
        &self,
    ) -> Result<
        Option<daylight_log_server::store::LeaseState>,
        daylight_log_server::store::StoreError,
    > {
        self.inner.lease_state()
    }
    fn enqueue(
        &self,
        e: &[daylight_log_server::store::NewEntry],
    ) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.enqueue(e)
    }
    fn settle(
        &self,
        s: &daylight_log_server::store::Settled,
        fence: Option<daylight_log_server::store::Lease>,
        size: TreeSize,
    ) -> Result<(), daylight_log_server::store::StoreError> {
        self.inner.settle(s, fence, size)
    }
    fn refusals(
        &self,
        l: &[daylight_core::Hash],
    ) -> Result<
        Vec<Option<daylight_log_server::store::QueueRefusal>>,
        daylight_log_server::store::StoreError,
    > {
        self.inner.refusals(l)
    }
    fn queued(
        &self,
        n: usize,
    ) -> Result<Vec<daylight_log_server::store::NewEntry>, daylight_log_server::store::StoreError>
    {
        self.inner.queued(n)
    }
}

/// A batch committed, then the disk failed before its checkpoint was
/// published: once the disk works again the checkpoint is published without
/// a restart (witness collection used to stop for good at the first failed
/// publish).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_is_retried_once_the_disk_recovers() {
    let f = Fixture::new(0);
    let faulty = Arc::new(Faulty::new(f.store.clone(), Duration::ZERO));
    let log = f.start_with(faulty.clone(), BatchConfig::default()).await;
    let (c, url) = (client(), log.url());
    let published = || async {
        let r = c.get(format!("{url}/checkpoint")).send().await.unwrap();
        // 503 until the first checkpoint is published.
        if r.status() != 200 {
            return 0;
        }
        let b = r.bytes().await.unwrap();
        daylight_core::SignedCheckpoint::open(&b, f.log_key.verifier())
            .unwrap()
            .checkpoint
            .size
            .get()
    };
    let (s, b) = post(&c, &url, request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200);
    let first = b["index"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while published().await <= first {
        assert!(
            std::time::Instant::now() < deadline,
            "entry {first} never published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    faulty
        .failing_publish
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (s, b) = post(&c, &url, request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200, "the batch itself commits");
    let second = b["index"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        published().await <= second,
        "published through a failing disk"
    );
    faulty
        .failing_publish
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while published().await <= second {
        assert!(
            std::time::Instant::now() < deadline,
            "entry {second} never published after the disk recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let f = Fixture::new(0);
    let batch = BatchConfig {
        max_entries: 1,
        max_wait: Duration::from_millis(1),
        queue: 1,
    };
    let log = f
        .start_with(
            Arc::new(Faulty::new(f.store.clone(), Duration::from_millis(1500))),
            batch,
        )
        .await;
    let (c, url) = (client(), log.url());
    // The first is being written (slowly), the second waits in the queue,
    // the third finds the queue full.
    let first = tokio::spawn({
        let (c, url, r) = (c.clone(), url.clone(), request(&f.agency).to_bytes());
        async move { post(&c, &url, r).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = tokio::spawn({
        let (c, url, r) = (c.clone(), url.clone(), request(&f.agency).to_bytes());
        async move { post(&c, &url, r).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, retry, body) = post_retry(&c, &url, request(&f.agency).to_bytes()).await;
    assert_eq!(status, 503);
    assert!(retry);
    assert_eq!(body["error"], "queue_full");
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(second.await.unwrap().0, 200);
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_key_gets_429_and_others_do_not() {
    let f = Fixture::new(0);
    let other = common::key("other-agency.test", daylight_core::KeyType::Ed25519, 9);
    f.register(daylight_schemas::Role::Agency, other.verifier());
    let limited =
        daylight_log_server::admission::RecordAdmission::new(f.log_key.verifier().clone())
            .with_rate_limit(daylight_log_server::admission::RateLimit {
                per_second: 0.5,
                burst: 3.0,
            });
    let log = f
        .start_admitting(f.store.clone(), BatchConfig::default(), limited)
        .await;
    let (c, url) = (client(), log.url());
    for _ in 0..3 {
        assert_eq!(post(&c, &url, request(&f.agency).to_bytes()).await.0, 200);
    }
    let size = f.store.size().unwrap();
    let (status, retry, body) = post_retry(&c, &url, request(&f.agency).to_bytes()).await;
    assert_eq!(status, 429);
    assert!(retry);
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(f.store.size().unwrap(), size, "nothing stored");
    // Another agency has its own budget.
    assert_eq!(post(&c, &url, request(&other).to_bytes()).await.0, 200);
    // A forged record under the flooding key's name is refused for its
    // signature, and does not need (or use) the budget.
    let stranger = common::key("agency.test", daylight_core::KeyType::Ed25519, 77);
    let (s, b) = post(&c, &url, request(&stranger).to_bytes()).await;
    assert_ne!(s, 200, "{b}");
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_garbage_and_misdirected_witnesses_are_survived_and_not_trusted() {
    let f = Fixture::new(2);
    let ws = witnesses(
        &f,
        &[
            Mode::Honest,
            Mode::Hang,
            Mode::Garbage,
            Mode::OtherCheckpoint,
            Mode::Honest,
        ],
    )
    .await;
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            post(&c, &log.url(), request(&f.agency).to_bytes()).await.0,
            200
        );
    }
    let size = f.store.size().unwrap().get();
    let cp = published(&c, &log.url(), size).await;
    let note = Note::parse(&cp).unwrap();
    let mut names: Vec<String> = note
        .signatures()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [common::ORIGIN, "w0.test", "w4.test"],
        "only the honest cosignatures are kept"
    );
    // Both kept cosignatures verify with the honest witnesses' keys.
    let keys = [ws[0].key.verifier(), ws[4].key.verifier()];
    let valid = daylight_core::cosignature::verify_cosignatures(&note, &keys).unwrap();
    assert_eq!(valid.len(), 2);
    assert!(ws[1].requests() >= 1 && ws[2].requests() >= 1 && ws[3].requests() >= 1);
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_is_a_clear_error_loses_nothing_and_recovers() {
    let f = Fixture::new(0);
    let faulty = Arc::new(Faulty::new(f.store.clone(), Duration::ZERO));
    let log = f.start_with(faulty.clone(), BatchConfig::default()).await;
    let (c, url) = (client(), log.url());
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        let rec = request(&f.agency).to_bytes();
        let (s, b) = post(&c, &url, rec.clone()).await;
        assert_eq!(s, 200);
        acknowledged.push((b["index"].as_u64().unwrap(), rec));
    }
    let size = f.store.size().unwrap();
    faulty
        .failing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (s, b) = post(&c, &url, request(&f.agency).to_bytes()).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"], "storage_unavailable");
    assert!(
        b["detail"].as_str().unwrap().contains("disk I/O error"),
        "{b}"
    );
    assert_eq!(f.store.size().unwrap(), size, "nothing half-written");
    faulty
        .failing
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let (s, _) = post(&c, &url, request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200, "the log recovers once the disk does");
    for (index, rec) in acknowledged {
        assert_eq!(f.store.entry(LeafIndex(index)).unwrap().unwrap().data, rec);
    }
    log.stop().await.unwrap();
}

/// The outcome held syncs answer (None: they wait), and its signal.
type Outcome = (
    std::sync::Mutex<Option<Result<(), String>>>,
    std::sync::Condvar,
);

/// Syncs that wait while their outcome is None, then all answer it.
struct HeldSyncs(Arc<Outcome>);

impl HeldSyncs {
    fn new() -> (HeldSyncs, Arc<daylight_log_server::durability::SyncGroup>) {
        let outcome = Arc::new((std::sync::Mutex::new(None), std::sync::Condvar::new()));
        let held = outcome.clone();
        let syncs = daylight_log_server::durability::SyncGroup::new(Box::new(move || {
            let (lock, cv) = &*held;
            let mut o = lock.lock().unwrap();
            loop {
                if let Some(answer) = o.clone() {
                    return answer;
                }
                o = cv.wait(o).unwrap();
            }
        }));
        (HeldSyncs(outcome), syncs)
    }

    fn set(&self, o: Option<Result<(), String>>) {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = o;
        self.0 .1.notify_all();
    }
}

impl Drop for HeldSyncs {
    // A test that fails while syncs are held must not hang the runtime's
    // shutdown on the blocking threads waiting for them.
    fn drop(&mut self) {
        self.set(Some(Err("the test ended".into())));
    }
}

/// Waits until `store` holds `size` entries.
async fn committed(store: &dyn LogStore, size: u64) {
    for _ in 0..1000 {
        if store.size().unwrap().get() >= size {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the batch was never committed");
}

fn submit(url: &str, rec: Vec<u8>) -> tokio::task::JoinHandle<(u16, Value)> {
    let (c, url) = (client(), url.to_string());
    tokio::spawn(async move { post(&c, &url, rec).await })
}

/// Fails if `answer` has finished 200 ms after its entry was committed.
async fn still_waiting(
    answer: tokio::task::JoinHandle<(u16, Value)>,
) -> tokio::task::JoinHandle<(u16, Value)> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    if answer.is_finished() {
        let answer = answer.await.unwrap();
        panic!("answered before its sync did: {answer:?}");
    }
    answer
}

/// "another frontend" takes the lease of `f`'s new log.
fn lease_elsewhere(f: &Fixture) -> daylight_log_server::store::Lease {
    f.store
        .acquire_lease("another frontend", Duration::from_secs(60), None)
        .unwrap()
        .expect("a new log's lease is free")
}

/// Waits until `store`'s queue holds one entry: handed over, not sequenced.
async fn handed_over(store: &dyn LogStore) {
    for _ in 0..500 {
        if !store.queued(10).unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.queued(10).unwrap().len(),
        1,
        "handed over, not sequenced"
    );
}

/// An entry queued for another frontend and refused at commit (its signer
/// revoked after its admission) is answered with that refusal, read from
/// the store, rather than left to wait out the 30 s for a sequencing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_entry_refused_at_commit_is_answered_with_the_refusal() {
    let f = Fixture::new(0);
    let other = lease_elsewhere(&f);
    let log = f.start(BatchConfig::default()).await;
    let queued = submit(&log.url(), request(&f.agency).to_bytes());
    handed_over(f.store.as_ref()).await;
    // The agency is revoked, then the lease comes free: the sequencing
    // frontend (this one, through the store's queue) refuses the entry.
    let revoke = daylight_schemas::Record::registry_revoke(
        daylight_schemas::Role::Agency,
        f.agency.verifier(),
        chrono::Utc::now(),
    )
    .unwrap()
    .sign(&f.log_key, common::ORIGIN)
    .unwrap();
    daylight_log_server::integrate::append_record(
        f.store.as_ref(),
        &f.log_key,
        &revoke,
        f.log_key.verifier(),
    )
    .unwrap();
    let size = f.store.size().unwrap();
    f.store.release_lease("another frontend", other).unwrap();
    let (s, b) = tokio::time::timeout(Duration::from_secs(10), queued)
        .await
        .expect("answered well before the wait for a sequencing ends")
        .unwrap();
    assert_eq!(
        (s, b["error"].as_str()),
        (403, Some("revoked_signer")),
        "{b}"
    );
    assert!(f.store.queued(10).unwrap().is_empty(), "settled");
    assert_eq!(f.store.size().unwrap(), size, "nothing appended");
    log.stop().await.unwrap();
}

/// A committed batch is acknowledged only once its sync has answered; a
/// failed sync is a 503 to its submitters and to every later one until the
/// log is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_acknowledged_only_after_its_sync() {
    let f = Fixture::new(0);
    let (held, syncs) = HeldSyncs::new();
    let mut faulty = Faulty::new(f.store.clone(), Duration::ZERO);
    faulty.syncs = Some(syncs);
    let log = f.start_with(Arc::new(faulty), BatchConfig::default()).await;
    let url = log.url();
    // Led, not handed over (that path has a test of its own below).
    for _ in 0..500 {
        if f.store.lease_state().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(f.store.lease_state().unwrap().is_some(), "no lease taken");
    let size = f.store.size().unwrap().get();
    let first = submit(&url, request(&f.agency).to_bytes());
    committed(f.store.as_ref(), size + 1).await;
    let first = still_waiting(first).await;
    held.set(Some(Ok(())));
    let (s, b) = first.await.unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["index"].as_u64(), Some(size));

    // A failed sync: the submitter is told to retry, not given an index.
    held.set(None);
    let second = submit(&url, request(&f.agency).to_bytes());
    committed(f.store.as_ref(), size + 2).await;
    held.set(Some(Err("journal aborted (injected)".into())));
    let (s, b) = second.await.unwrap();
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"], "storage_unavailable");
    assert!(
        b["detail"].as_str().unwrap().contains("journal aborted"),
        "{b}"
    );

    // A sync now would succeed, but it could not vouch for what the failed
    // one left unwritten: nothing more is written until a restart.
    held.set(Some(Ok(())));
    let (s, b) = submit(&url, request(&f.agency).to_bytes()).await.unwrap();
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"], "storage_unavailable");
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("earlier filesystem sync failed (journal aborted (injected))")
            && detail.contains("restart"),
        "{b}"
    );
    assert_eq!(f.store.size().unwrap().get(), size + 2, "nothing appended");
    log.stop().await.unwrap();

    // Started again without the group whose sync failed (what a restart
    // does; the SQLite store's own test reopens the file), it takes
    // submissions again.
    let log = f.start_with(f.store.clone(), BatchConfig::default()).await;
    let (s, b) = submit(&log.url(), request(&f.agency).to_bytes())
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["index"].as_u64(), Some(size + 2));
    log.stop().await.unwrap();
}

/// An entry queued in the store while another frontend held the lease is
/// answered, once found sequenced, only after a sync that began after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_entry_is_answered_only_after_a_sync() {
    let f = Fixture::new(0);
    let other = lease_elsewhere(&f);
    let (held, syncs) = HeldSyncs::new();
    let mut faulty = Faulty::new(f.store.clone(), Duration::ZERO);
    faulty.syncs = Some(syncs);
    let log = f.start_with(Arc::new(faulty), BatchConfig::default()).await;
    let size = f.store.size().unwrap().get();
    let queued = submit(&log.url(), request(&f.agency).to_bytes());
    handed_over(f.store.as_ref()).await;
    // This frontend takes the lease and sequences what was queued.
    f.store.release_lease("another frontend", other).unwrap();
    committed(f.store.as_ref(), size + 1).await;
    let queued = still_waiting(queued).await;
    held.set(Some(Ok(())));
    let (s, b) = queued.await.unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["index"].as_u64(), Some(size));
    log.stop().await.unwrap();
}
