//! Tile publication: what lands in a directory or a bucket is exactly the
//! C2SP tlog-tiles layout of the log, the checkpoint never comes before its
//! tiles, a failing bucket is retried, and a real S3-compatible server
//! (moto) gets the objects with their cache headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, request, Fixture};
use daylight_core::tile::{
    new_tiles, parse_entry_bundle, read_tile_data, Tile, TileError, TileReader,
};
use daylight_core::tree::tree_hash;
use daylight_core::{leaf_hash, Checkpoint, LeafIndex, Note, TreeSize};
use daylight_log_server::integrate::integrate;
use daylight_log_server::publish::{publish, run, LogIdentity, S3Options, Target};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::store::{load_published, LogStore, NewEntry, Published, StoreHashes};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

fn entry(i: u64) -> NewEntry {
    let data = format!("{{\"n\":{i}}}").into_bytes();
    NewEntry {
        leaf_hash: leaf_hash(&data),
        data,
        kind: "request".into(),
        signer: "s".into(),
        packed: None,
    }
}

/// Grows the fixture's log to `size` entries (beyond its registry entry).
fn grow(f: &Fixture, size: u64) -> Arc<Published> {
    let store = f.store.as_ref();
    let have = store.size().unwrap().get();
    let done = integrate(
        store,
        &f.log_key,
        common::ORIGIN,
        (have..size).map(entry).collect(),
    )
    .unwrap();
    // Quorum 0: the log's own signature is the published checkpoint.
    store.publish(done.size, &done.checkpoint).unwrap();
    Arc::new(load_published(store).unwrap().unwrap())
}

fn info(f: &Fixture, size: TreeSize) -> serde_json::Value {
    daylight_log_server::api::log_info_json(
        f.store.as_ref(),
        None,
        f.log_key.verifier(),
        0,
        size.get(),
    )
    .unwrap()
}

/// Publishes the fixture's log up to `p` into an empty target.
async fn publish_from_empty(f: &Fixture, target: &Target, p: &Published) {
    let store: Arc<dyn LogStore> = f.store.clone();
    let size = p.checkpoint.size;
    publish(&store, target, TreeSize(0), size, &p.bytes, &info(f, size))
        .await
        .unwrap();
}

/// Reads tiles from a target, for the core's verifying tile reader.
struct TargetTiles<'a>(&'a Target, &'a tokio::runtime::Handle);

impl TileReader for TargetTiles<'_> {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
        tiles
            .iter()
            .map(|t| {
                let got = tokio::task::block_in_place(|| self.1.block_on(self.0.get(&t.path())));
                got.map_err(|e| TileError::Read(e.to_string()))?
                    .ok_or_else(|| TileError::Read(format!("{} is missing", t.path())))
            })
            .collect()
    }
}

/// Checks that `target` holds a complete, verifiable copy of the log at the
/// checkpoint it serves, and returns that checkpoint's size.
async fn check_complete(f: &Fixture, target: &Target) -> TreeSize {
    let bytes = target
        .get("checkpoint")
        .await
        .unwrap()
        .expect("a checkpoint");
    let note = Note::parse(&bytes).unwrap();
    let cp = Checkpoint::parse_text(note.text()).unwrap();
    // Every tile of the tree at that size, byte for byte as the store has it.
    for tile in new_tiles(TreeSize(0), cp.size) {
        let want = read_tile_data(tile, &StoreHashes::new(f.store.as_ref())).unwrap();
        let got = target.get(&tile.path()).await.unwrap();
        assert_eq!(got.as_deref(), Some(want.as_slice()), "{}", tile.path());
        if tile.level == 0 {
            let bundle = target
                .get(&format!("tile/entries/{}", &tile.path()["tile/0/".len()..]))
                .await
                .unwrap()
                .expect("bundle");
            let entries = parse_entry_bundle(&bundle, tile.width).unwrap();
            for (k, e) in entries.iter().enumerate() {
                let i = tile.index * 256 + k as u64;
                let stored = f.store.entry(LeafIndex(i)).unwrap().unwrap();
                assert_eq!(*e, stored.data.as_slice(), "entry {i}");
            }
        }
    }
    // And the tiles alone lead to the signed root.
    let handle = tokio::runtime::Handle::current();
    let reader = TargetTiles(target, &handle);
    let verifying = daylight_core::tile::TileHashReader::new(cp.size, cp.root, &reader);
    assert_eq!(tree_hash(cp.size, &verifying).unwrap(), cp.root);
    let meta: serde_json::Value =
        serde_json::from_slice(&target.get("api/v1/log").await.unwrap().unwrap()).unwrap();
    assert_eq!(meta["origin"], common::ORIGIN);
    assert_eq!(meta["size"], cp.size.get());
    cp.size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_holds_exactly_the_logs_tiles_round_after_round() {
    let f = Fixture::new(0);
    let dir = tempfile::tempdir().unwrap();
    let target = Target::directory(&dir.path().join("pub")).unwrap();
    let store: Arc<dyn LogStore> = f.store.clone();
    let mut from = TreeSize(0);
    for size in [2, 255, 256, 300, 70_000] {
        let p = grow(&f, size);
        let round = publish(
            &store,
            &target,
            from,
            p.checkpoint.size,
            &p.bytes,
            &info(&f, p.checkpoint.size),
        )
        .await
        .unwrap();
        assert!(round.objects > 0);
        assert_eq!(check_complete(&f, &target).await, TreeSize(size));
        assert_eq!(target.get("checkpoint").await.unwrap().unwrap(), p.bytes);
        from = p.checkpoint.size;
    }
    // Level 1 and level 2 tiles exist at 70,000 entries.
    assert!(dir.path().join("pub/tile/1/000").exists());
    assert!(dir.path().join("pub/tile/2/000.p/1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_logs_checkpoint_is_refused() {
    let f = Fixture::new(0);
    let dir = tempfile::tempdir().unwrap();
    let target = Target::directory(dir.path()).unwrap();
    let other = common::key("other.test/log", daylight_core::KeyType::Ed25519, 9);
    let note = Checkpoint::new("other.test/log", TreeSize(3), leaf_hash(b"x"))
        .sign(&other)
        .unwrap()
        .to_bytes();
    std::fs::write(dir.path().join("checkpoint"), note).unwrap();
    let err = target.checkpoint(common::ORIGIN).await.unwrap_err();
    assert!(err.to_string().contains("other.test/log"), "{err}");
    // A server with it as target refuses to start.
    let mut server = f.server(BatchConfig::default());
    server.publish = Some(target);
    let served = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let err = served.stop().await.expect_err("refused");
    assert!(err.to_string().contains("other.test/log"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_of_another_history_is_refused() {
    // Two logs of the same name and key, with different entries: a log made
    // anew, or a database restored from an old backup.
    let first = Fixture::new(0);
    let dir = tempfile::tempdir().unwrap();
    let target = Target::directory(dir.path()).unwrap();
    let p = grow(&first, 300);
    publish_from_empty(&first, &target, &p).await;
    let second = Fixture::new(0);
    let odd = NewEntry {
        leaf_hash: leaf_hash(b"only in the second"),
        data: b"only in the second".to_vec(),
        kind: "request".into(),
        signer: "s".into(),
        packed: None,
    };
    integrate(
        second.store.as_ref(),
        &second.log_key,
        common::ORIGIN,
        vec![odd],
    )
    .unwrap();
    grow(&second, 400);
    let mut server = second.server(BatchConfig::default());
    server.publish = Some(target.clone());
    let served = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let err = served.stop().await.expect_err("refused");
    assert!(err.to_string().contains("another history"), "{err}");
    // A shorter log of the first history is refused too: the bucket is ahead.
    let third = Fixture::new(0);
    let mut server = third.server(BatchConfig::default());
    server.publish = Some(target);
    let served = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let err = served.stop().await.expect_err("refused");
    assert!(err.to_string().contains("another history"), "{err}");
}

/// An object store that fails every write while `failing` is set, after
/// letting `allow` writes through.
#[derive(Debug)]
struct Flaky {
    inner: InMemory,
    failing: AtomicBool,
    allow: AtomicUsize,
    puts: AtomicUsize,
}

impl Flaky {
    fn new() -> Flaky {
        Flaky {
            inner: InMemory::new(),
            failing: AtomicBool::new(false),
            allow: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
        }
    }
    fn fail_after(&self, n: usize) {
        self.allow.store(n, Ordering::SeqCst);
        self.failing.store(true, Ordering::SeqCst);
    }
    fn heal(&self) {
        self.failing.store(false, Ordering::SeqCst);
    }
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Flaky")
    }
}

#[async_trait::async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst)
            && self
                .allow
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            return Err(object_store::Error::Generic {
                store: "Flaky",
                source: format!("refused {location} on purpose").into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    async fn delete(&self, location: &ObjectPath) -> object_store::Result<()> {
        self.inner.delete(location).await
    }
    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &ObjectPath, to: &ObjectPath) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
    ) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_bucket_never_shows_a_checkpoint_before_its_tiles_and_recovers() {
    let f = Fixture::new(0);
    let flaky = Arc::new(Flaky::new());
    let target = Target::objects(flaky.clone(), "logs/one", "flaky bucket");
    let store: Arc<dyn LogStore> = f.store.clone();

    // A first round that fails part way: no checkpoint at all.
    let p = grow(&f, 2000);
    flaky.fail_after(5);
    let info1 = info(&f, p.checkpoint.size);
    assert!(publish(
        &store,
        &target,
        TreeSize(0),
        p.checkpoint.size,
        &p.bytes,
        &info1
    )
    .await
    .is_err());
    assert_eq!(target.get("checkpoint").await.unwrap(), None);
    flaky.heal();
    publish(
        &store,
        &target,
        TreeSize(0),
        p.checkpoint.size,
        &p.bytes,
        &info1,
    )
    .await
    .unwrap();
    assert_eq!(check_complete(&f, &target).await, TreeSize(2000));

    // The publisher task: the bucket fails while the log grows; the old
    // checkpoint stays (with all its tiles) until the new tiles are in.
    let (published_tx, published_rx) = tokio::sync::watch::channel(Some(p.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(daylight_log_server::metrics::Metrics::default());
    flaky.fail_after(3);
    let task = tokio::spawn(run(
        store.clone(),
        target.clone(),
        LogIdentity {
            origin: common::ORIGIN.into(),
            key: f.log_key.verifier().clone(),
            quorum: 0,
            rules: None,
        },
        None,
        published_rx,
        metrics.clone(),
        stop_rx,
    ));
    let p2 = grow(&f, 5000);
    published_tx.send_replace(Some(p2.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.publication_failures.load(Ordering::Relaxed) < 2 {
        assert!(
            Instant::now() < deadline,
            "the failing round was not retried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(check_complete(&f, &target).await, TreeSize(2000));
    flaky.heal();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let cp = target.checkpoint(common::ORIGIN).await.unwrap().unwrap();
        if cp.size == TreeSize(5000) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "publication did not resume after the bucket healed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(check_complete(&f, &target).await, TreeSize(5000));
    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the publisher stops")
        .unwrap();
}

/// A moto S3 server on a free port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Starts moto's S3 server, or None (with a note) where it is not installed;
    /// `DAYLIGHT_REQUIRE_S3=1` (as `scripts/test` sets) makes that a failure.
    fn start() -> Option<Moto> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("DAYLIGHT_REQUIRE_S3").is_none(),
                "DAYLIGHT_REQUIRE_S3 is set but python3 cannot import moto.server"
            );
            eprintln!("skipping the S3 case: moto (pip install 'moto[server]') is not installed");
            return None;
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// Makes a bucket that anyone may read, as a log's public bucket is.
    async fn create_bucket(&self, name: &str) {
        let http = reqwest::Client::new();
        let resp = http
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{name}/*"),
            }],
        });
        let resp = http
            .put(format!("{}/{name}?policy", self.endpoint))
            .body(policy.to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    fn target(&self, url: &str) -> Target {
        Target::s3(
            url,
            &S3Options {
                endpoint: Some(self.endpoint.clone()),
                region: Some("us-east-1".into()),
                virtual_hosted: false,
                credentials: Some(("testing".into(), "testing".into())),
            },
        )
        .unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_bucket_gets_the_tiles_with_cache_headers() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("tiles").await;
    let f = Fixture::new(0);
    let target = moto.target("s3://tiles/daylight/log");
    let p = grow(&f, 600);
    publish_from_empty(&f, &target, &p).await;
    assert_eq!(check_complete(&f, &target).await, TreeSize(600));
    // Path-style URLs, as a CDN in front of the bucket would fetch them.
    let http = reqwest::Client::new();
    let base = format!("{}/tiles/daylight/log", moto.endpoint);
    for (path, cache) in [
        ("tile/0/000", "public, max-age=31536000, immutable"),
        ("tile/entries/001", "public, max-age=31536000, immutable"),
        ("tile/0/002.p/88", "public, max-age=5"),
        ("checkpoint", "no-cache, max-age=1"),
    ] {
        let resp = http.get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some(cache),
            "{path}"
        );
    }

    // A server publishing to a bucket that does not exist refuses to start.
    let mut server = f.server(BatchConfig::default());
    server.publish = Some(moto.target("s3://no-such-bucket/x"));
    let served = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let err = served.stop().await.expect_err("refused");
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_log_keeps_its_bucket_current() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("live").await;
    let f = Fixture::new(0);
    let mut server = f.server(BatchConfig::default());
    server.publish = Some(moto.target("s3://live/log"));
    let log = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let http = reqwest::Client::new();
    for _ in 0..40 {
        let resp = http
            .post(format!("{}/api/v1/entries", log.url()))
            .body(request(&f.agency).to_bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let target = moto.target("s3://live/log");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = http
            .get(format!("{}/checkpoint", log.url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let in_bucket = target.get("checkpoint").await.unwrap();
        if in_bucket.as_deref() == Some(&served[..]) && served.starts_with(b"log.test") {
            let size = check_complete(&f, &target).await;
            assert_eq!(size, TreeSize(41), "the registry entry and 40 requests");
            break;
        }
        assert!(Instant::now() < deadline, "the bucket did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log.stop().await.unwrap();
}
