//! Several frontends on one PostgreSQL log: three real `daylight log serve`
//! processes sharing the database and one publication directory, three
//! witnesses at quorum 2, concurrent submitters that retry against any
//! frontend. The frontend that sequences is killed (SIGKILL, and restarted)
//! or paused (SIGSTOP, so its lease must run out, then SIGCONT, so its stale
//! batches meet the fencing token) at random moments.
//!
//! Afterwards: every acknowledged entry is present byte for byte, no index
//! went to two records and no record got two indexes, every checkpoint any
//! frontend served or the directory held is a prefix of the final tree with
//! the quorum's cosignatures, the directory's tiles are those the entries
//! derive, and each takeover took less than 10 s.
//!
//! Fast by default (5 events). The long run:
//! `DAYLIGHT_FAILOVER_EVENTS=100 cargo test --release -p daylight --test failover -- --nocapture`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daylight_core::cosignature::verify_cosignatures;
use daylight_core::tree::tree_hash;
use daylight_core::{SignedCheckpoint, SignerKey, VerifierKey};
use daylight_log_server::postgres::ScratchSchema;
use reliability::{free_port, ok, Proc, Rng};

const FRONTENDS: usize = 3;
const SUBMITTERS: usize = 8;
const QUORUM: usize = 2;
/// A takeover must finish within this (the bound).
const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);

fn events() -> usize {
    std::env::var("DAYLIGHT_FAILOVER_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[derive(Default)]
struct Seen {
    /// index -> acknowledged bytes.
    acked: HashMap<u64, Vec<u8>>,
    /// Every distinct checkpoint any frontend served or the directory held.
    checkpoints: Vec<Vec<u8>>,
}

/// One submitter: fresh records, each retried against random frontends
/// until acknowledged (bounded by `deadline`).
async fn submitter(
    urls: Arc<Vec<String>>,
    agency: SignerKey,
    origin: String,
    mut rng: Rng,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) {
    let http = client();
    while !stop.load(Ordering::Relaxed) {
        let (rec, _) = reliability::request(&agency, &origin, &mut rng);
        let bytes = rec.to_bytes();
        let acked = reliability::submit_until_acked(&http, &bytes, deadline, true, || {
            urls[rng.below(urls.len() as u64) as usize].clone()
        })
        .await;
        let Some((index, _)) = acked else { return };
        let mut s = seen.lock().unwrap();
        if let Some(prev) = s.acked.insert(index, bytes.clone()) {
            assert_eq!(prev, bytes, "index {index} was given to two records");
        }
    }
}

fn keep(seen: &Mutex<Seen>, bytes: &[u8]) {
    let mut s = seen.lock().unwrap();
    if !s.checkpoints.iter().any(|c| c == bytes) {
        s.checkpoints.push(bytes.to_vec());
    }
}

/// Polls every frontend's /checkpoint and the directory's checkpoint.
async fn watcher(
    urls: Arc<Vec<String>>,
    dir: PathBuf,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    let http = client();
    while !stop.load(Ordering::Relaxed) {
        for u in urls.iter() {
            if let Ok(r) = http.get(format!("{u}/checkpoint")).send().await {
                if r.status() == 200 {
                    if let Ok(b) = r.bytes().await {
                        keep(&seen, &b);
                    }
                }
            }
        }
        if let Ok(b) = std::fs::read(dir.join("checkpoint")) {
            keep(&seen, &b);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one frontend that says it sequences, by its metrics (None while
/// none or several do, or one that listens does not answer); `paused` is
/// not asked (it would only time out).
async fn leader(
    http: &reqwest::Client,
    frontends: &[Proc],
    paused: Option<usize>,
) -> Option<usize> {
    let mut leaders = Vec::new();
    for (i, f) in frontends.iter().enumerate() {
        if !f.running() || paused == Some(i) {
            continue;
        }
        let r = match http.get(format!("{}/metrics", f.url())).send().await {
            Ok(r) => r,
            // Not listening (yet, or any more): it answers no one.
            Err(e) if e.is_connect() => continue,
            // Slow to answer, maybe the sequencer itself: with it unheard,
            // a stale frontend could be the only one claiming the lease.
            Err(_) => return None,
        };
        let Ok(text) = r.text().await else {
            return None;
        };
        if text.lines().any(|l| l == "daylight_sequencer_leader 1") {
            leaders.push(i);
        }
    }
    // Only a frontend that alone says it sequences: one just resumed from
    // a pause says so until its next renewal fails, and taking it for the
    // sequencer made an event that ended no term (CI, seed
    // 1796665298922768840: 5 terms logged for 5 events).
    match leaders[..] {
        [i] => Some(i),
        _ => None,
    }
}

/// Waits until a frontend other than `old` (or `old` itself after a
/// restart, when `any`) sequences; the time it took.
async fn takeover(
    http: &reqwest::Client,
    frontends: &[Proc],
    old: usize,
    any: bool,
    since: Instant,
) -> (usize, Duration) {
    let paused = (!any).then_some(old);
    loop {
        if let Some(i) = leader(http, frontends, paused).await {
            if any || i != old {
                return (i, since.elapsed());
            }
        }
        assert!(
            since.elapsed() < TAKEOVER_LIMIT * 3,
            "no frontend took over within {:?}",
            TAKEOVER_LIMIT * 3
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct World {
    tmp: tempfile::TempDir,
    _schema: ScratchSchema,
    origin: String,
    log_vkey: VerifierKey,
    witness_keys: Vec<VerifierKey>,
    agency: SignerKey,
    _witnesses: Vec<Proc>,
    frontends: Vec<Proc>,
}

impl World {
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn world(schema: ScratchSchema) -> World {
    // The processes' logs, for a failing run: DAYLIGHT_KEEP=1 keeps them.
    let keep = std::env::var_os("DAYLIGHT_KEEP").is_some();
    let tmp = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("failover: keeping {}", tmp.path().display());
    }
    let origin = "log.test/failover".to_string();
    let dir0 = tmp.path().join("f0");
    let agency_file = tmp.path().join("agency.key");
    let agency_vkey = ok(&[
        "key",
        "generate",
        "--name",
        "agency.test",
        "--out",
        s(&agency_file),
    ]);
    let log_vkey = ok(&[
        "log",
        "init",
        "--dir",
        s(&dir0),
        "--origin",
        &origin,
        "--quorum",
        &QUORUM.to_string(),
        "--database",
        schema.url(),
    ]);
    ok(&[
        "log",
        "add-agency",
        "--dir",
        s(&dir0),
        "--vkey",
        &agency_vkey,
    ]);
    let mut witnesses = Vec::new();
    let mut witness_keys = Vec::new();
    for i in 0..3 {
        let wdir = tmp.path().join(format!("w{i}"));
        let port = free_port();
        let wvkey = ok(&[
            "witness",
            "init",
            "--dir",
            s(&wdir),
            "--name",
            &format!("w{i}.test"),
        ]);
        ok(&[
            "witness",
            "add-log",
            "--dir",
            s(&wdir),
            "--origin",
            &origin,
            "--vkey",
            &log_vkey,
        ]);
        ok(&[
            "log",
            "add-witness",
            "--dir",
            s(&dir0),
            "--vkey",
            &wvkey,
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ]);
        witnesses.push(Proc::start(
            &[
                "witness",
                "serve",
                "--dir",
                s(&wdir),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ],
            port,
            &tmp.path().join(format!("w{i}.stderr")),
        ));
        witness_keys.push(VerifierKey::parse(&wvkey).unwrap());
    }
    // The other frontends: the same key and database URL, as README says.
    for i in 1..FRONTENDS {
        let dir = tmp.path().join(format!("f{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["log.key", "database.url"] {
            std::fs::copy(dir0.join(file), dir.join(file)).unwrap();
        }
    }
    // Each frontend from a config file of its own, logging JSON, as an
    // operator would run them.
    let publish = tmp.path().join("public");
    let frontends = (0..FRONTENDS)
        .map(|i| {
            let port = free_port();
            let config = tmp.path().join(format!("f{i}.toml"));
            std::fs::write(
                &config,
                format!(
                    "dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nkey-rate = 0\n\
                     publish-dir = {:?}\nname = \"frontend-{i}\"\nlog-format = \"json\"\n",
                    s(&tmp.path().join(format!("f{i}"))),
                    s(&publish),
                ),
            )
            .unwrap();
            Proc::start(
                &["log", "serve", "--config", s(&config)],
                port,
                &tmp.path().join(format!("f{i}.stderr")),
            )
        })
        .collect();
    let agency = SignerKey::parse(std::fs::read_to_string(&agency_file).unwrap().trim()).unwrap();
    World {
        tmp,
        _schema: schema,
        origin,
        log_vkey: VerifierKey::parse(&log_vkey).unwrap(),
        witness_keys,
        agency,
        _witnesses: witnesses,
        frontends,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencer_fails_over_without_losing_or_forking() {
    let Some(schema) = ScratchSchema::for_tests() else {
        return;
    };
    let mut w = world(schema);
    let urls = Arc::new(w.frontends.iter().map(Proc::url).collect::<Vec<_>>());
    let mut rng = Rng::from_env("failover");
    // Short: a frontend that does not answer at once is not the one to ask.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let n = events();
    let budget = Duration::from_secs(60 + 20 * n as u64);
    let deadline = Instant::now() + budget + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for _ in 0..SUBMITTERS {
        tasks.push(tokio::spawn(submitter(
            urls.clone(),
            w.agency.clone(),
            w.origin.clone(),
            Rng(rng.next()),
            seen.clone(),
            stop.clone(),
            deadline,
        )));
    }
    let watch_stop = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn(watcher(
        urls.clone(),
        w.path("public"),
        seen.clone(),
        watch_stop.clone(),
    ));

    let started = Instant::now();
    let mut takeovers: Vec<(&str, Duration)> = Vec::new();
    for e in 0..n {
        assert!(
            started.elapsed() < budget,
            "the schedule overran {budget:?}"
        );
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
        let old = takeover(&http, &w.frontends, usize::MAX, true, Instant::now())
            .await
            .0;
        if e % 2 == 0 {
            // Killed and restarted: gone for good, as a crashed machine.
            w.frontends[old].kill();
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            w.frontends[old].restart();
            let (_, took) = takeover(&http, &w.frontends, old, true, t0).await;
            takeovers.push(("kill", took));
        } else {
            // Paused: alive but silent, so its lease has to run out; then
            // resumed, with batches and a publication round in flight.
            w.frontends[old].signal("STOP");
            let t0 = Instant::now();
            let (_, took) = takeover(&http, &w.frontends, old, false, t0).await;
            takeovers.push(("pause", took));
            tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
            w.frontends[old].signal("CONT");
        }
        let acked = seen.lock().unwrap().acked.len();
        eprintln!("failover: event {} of {n}, {acked} acknowledged", e + 1);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // Wait (bounded) until the directory's checkpoint covers every
    // acknowledged entry: it is written last, after its tiles.
    let max_acked = seen
        .lock()
        .unwrap()
        .acked
        .keys()
        .max()
        .copied()
        .unwrap_or(0);
    let checkpoint = w.path("public/checkpoint");
    let final_cp = reliability::wait_covering(&w.log_vkey, max_acked, || {
        let bytes = std::fs::read(&checkpoint).ok();
        async move { bytes }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    watch_stop.store(true, Ordering::Relaxed);
    watch.await.unwrap();

    // The final tree from the directory's bundles and tiles alone, and every
    // acknowledged entry in it.
    let size = final_cp.checkpoint.size.get();
    let public = w.path("public");
    let s = std::mem::take(&mut *seen.lock().unwrap());
    let (tree, tiles) =
        reliability::check_final_tree(size, final_cp.checkpoint.root, &s.acked, |path| {
            let file = public.join(path);
            async move { std::fs::read(&file).unwrap() }
        })
        .await;
    // Every checkpoint seen anywhere: the quorum's, and a prefix of the final tree.
    let wkeys: Vec<&VerifierKey> = w.witness_keys.iter().collect();
    for b in &s.checkpoints {
        let cp = SignedCheckpoint::open(b, &w.log_vkey).unwrap();
        let n = cp.checkpoint.size;
        assert!(
            n.get() <= size,
            "a checkpoint of size {n} beyond the final {size}"
        );
        assert_eq!(
            tree_hash(n, &tree).unwrap(),
            cp.checkpoint.root,
            "the checkpoint of size {n} is not a prefix of the final tree (a fork)"
        );
        assert!(cp.checkpoint.origin == w.origin);
        assert!(
            verify_cosignatures(&cp.note, &wkeys).unwrap().len() >= QUORUM,
            "the checkpoint of size {n} lacks the quorum"
        );
    }
    for (what, took) in &takeovers {
        assert!(
            *took < TAKEOVER_LIMIT,
            "a takeover after a {what} took {took:?}"
        );
    }
    let fmt: Vec<String> = takeovers
        .iter()
        .map(|(what, t)| format!("{what} {:.1} s", t.as_secs_f64()))
        .collect();
    eprintln!(
        "failover: {n} events survived; {} acknowledged entries checked (0 lost, 0 changed), \
         final size {size}, {} checkpoints checked against the final tree, {} tiles re-derived; \
         takeovers: {}",
        s.acked.len(),
        s.checkpoints.len(),
        tiles,
        fmt.join(", ")
    );
    assert!(s.acked.len() > 10 && s.checkpoints.len() > 1);

    // Structured logs: every line each frontend wrote is a JSON object, and
    // the terms they began are among them.
    let mut terms = 0;
    for i in 0..FRONTENDS {
        let log = std::fs::read_to_string(w.path(&format!("f{i}.stderr"))).unwrap();
        for line in log.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("frontend {i}: not JSON ({e}): {line}"));
            if v["fields"]["message"] == "this frontend now sequences the log" {
                assert!(v["fields"]["holder"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("frontend-{i}/")));
                terms += 1;
            }
        }
    }
    assert!(terms > n, "{terms} terms logged for {n} events");
}
