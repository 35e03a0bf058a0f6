//! Crash safety: the real `daylight log serve` (and `daylight witness serve`)
//! under load from concurrent submitters, killed with SIGKILL at random
//! moments and restarted. Afterwards: every acknowledged index holds the
//! acknowledged bytes, no index went to two records and no record got two
//! indexes, every checkpoint ever served (by the log or the witness) is a
//! prefix of the final tree, the served tiles are the ones the entries
//! derive, and the witness's state never went back.
//!
//! Fast by default (a few kills). The long run:
//! `DAYLIGHT_CRASH_KILLS=200 cargo test --release -p daylight --test crash -- --nocapture`
//! (`DAYLIGHT_SEED=N` repeats a run's kill schedule).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daylight_core::cosignature::verify_cosignatures;
use daylight_core::tree::tree_hash;
use daylight_core::witness_protocol::checkpoint_path;
use daylight_core::{SignedCheckpoint, VerifierKey};
use reliability::{free_port, ok, LogDir, Proc, Rng};

const SUBMITTERS: usize = 12;

fn kills(default: usize) -> usize {
    std::env::var("DAYLIGHT_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// index -> acknowledged bytes (checked on insert: one record per index).
    acked: HashMap<u64, Vec<u8>>,
    /// Every distinct /checkpoint body from the log, in the order first seen.
    log_checkpoints: Vec<Vec<u8>>,
    /// Every distinct witness monitoring checkpoint, in the order first seen.
    witness_checkpoints: Vec<Vec<u8>>,
    /// Records acknowledged only after a failed attempt (resubmitted across a kill).
    repeats: u64,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// One submitter: fresh records, each retried (after connection errors,
/// timeouts, 5xx) until acknowledged or the time is up; a retried record
/// must get the index it already had if the log kept it.
async fn submitter(
    url: Arc<Mutex<String>>,
    agency: daylight_core::SignerKey,
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
        // Bounded: the record is abandoned (not acknowledged) at the deadline.
        let acked = reliability::submit_until_acked(&http, &bytes, deadline, false, || {
            url.lock().unwrap().clone()
        })
        .await;
        let Some((index, attempts)) = acked else {
            return;
        };
        let mut s = seen.lock().unwrap();
        if attempts > 1 {
            s.repeats += 1;
        }
        if let Some(prev) = s.acked.insert(index, bytes.clone()) {
            assert_eq!(prev, bytes, "index {index} was given to two records");
        }
    }
}

/// Polls the log's /checkpoint (and the witness's monitoring checkpoint),
/// keeping every distinct body.
async fn watcher(
    log_url: Arc<Mutex<String>>,
    witness: Option<(Arc<Mutex<String>>, String)>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    let http = client();
    while !stop.load(Ordering::Relaxed) {
        let u = log_url.lock().unwrap().clone();
        if let Ok(r) = http.get(format!("{u}/checkpoint")).send().await {
            if r.status() == 200 {
                if let Ok(b) = r.bytes().await {
                    let mut s = seen.lock().unwrap();
                    if s.log_checkpoints
                        .last()
                        .map(|l| l[..] != b[..])
                        .unwrap_or(true)
                    {
                        s.log_checkpoints.push(b.to_vec());
                    }
                }
            }
        }
        if let Some((wurl, path)) = &witness {
            let u = wurl.lock().unwrap().clone();
            if let Ok(r) = http.get(format!("{u}{path}")).send().await {
                if r.status() == 200 {
                    if let Ok(b) = r.bytes().await {
                        let mut s = seen.lock().unwrap();
                        if s.witness_checkpoints
                            .last()
                            .map(|l| l[..] != b[..])
                            .unwrap_or(true)
                        {
                            s.witness_checkpoints.push(b.to_vec());
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

struct Report {
    kills_log: usize,
    kills_witness: usize,
    acked: usize,
    repeats: u64,
    final_size: u64,
    log_checkpoints: usize,
    witness_checkpoints: usize,
    tiles: usize,
}

/// Runs the harness: `log_kills` SIGKILLs of the log and `witness_kills` of
/// the witness (if any), interleaved at random moments.
async fn run(quorum: usize, log_kills: usize, witness_kills: usize) -> Report {
    let origin = format!("log.test/crash-q{quorum}");
    let log = LogDir::new(&origin, quorum);
    let mut rng = Rng::from_env("crash");

    // A witness (quorum 1): `daylight witness init/add-log`, `log add-witness`.
    let mut witness: Option<(Proc, VerifierKey)> = None;
    if quorum > 0 {
        let wdir = log.path("witness");
        let wport = free_port();
        let wvkey = ok(&[
            "witness",
            "init",
            "--dir",
            wdir.to_str().unwrap(),
            "--name",
            "witness.test/w1",
        ]);
        ok(&[
            "witness",
            "add-log",
            "--dir",
            wdir.to_str().unwrap(),
            "--origin",
            &origin,
            "--vkey",
            &log.log_vkey.to_string(),
        ]);
        ok(&[
            "log",
            "add-witness",
            "--dir",
            log.dir.to_str().unwrap(),
            "--vkey",
            &wvkey,
            "--url",
            &format!("http://127.0.0.1:{wport}"),
        ]);
        let listen = format!("127.0.0.1:{wport}");
        let p = Proc::start(
            &[
                "witness",
                "serve",
                "--dir",
                wdir.to_str().unwrap(),
                "--listen",
                &listen,
            ],
            wport,
            &log.path("witness.stderr"),
        );
        witness = Some((p, VerifierKey::parse(&wvkey).unwrap()));
    }

    let mut server = log.serve();
    let log_url = Arc::new(Mutex::new(server.url()));
    let witness_url = witness
        .as_ref()
        .map(|(p, _)| (Arc::new(Mutex::new(p.url())), checkpoint_path(&origin)));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let budget = Duration::from_secs(30 + 3 * (log_kills + witness_kills) as u64);
    let deadline = Instant::now() + budget + Duration::from_secs(30);

    let mut tasks = Vec::new();
    for _ in 0..SUBMITTERS {
        tasks.push(tokio::spawn(submitter(
            log_url.clone(),
            log.agency.clone(),
            origin.clone(),
            Rng(rng.next()),
            seen.clone(),
            stop.clone(),
            deadline,
        )));
    }
    let watch = tokio::spawn(watcher(
        log_url.clone(),
        witness_url.clone(),
        seen.clone(),
        stop.clone(),
    ));

    // The kill schedule: random moments, random order of log and witness.
    let started = Instant::now();
    let (mut kl, mut kw) = (0, 0);
    let progress = AtomicU64::new(0);
    while kl < log_kills || kw < witness_kills {
        assert!(
            started.elapsed() < budget,
            "kill schedule overran {budget:?}"
        );
        tokio::time::sleep(Duration::from_millis(100 + rng.below(500))).await;
        let kill_witness = kw < witness_kills && (kl >= log_kills || rng.below(2) == 0);
        if kill_witness {
            let (p, _) = witness.as_mut().unwrap();
            p.kill();
            tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
            p.restart();
            kw += 1;
        } else {
            server.kill();
            tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
            server.restart();
            kl += 1;
        }
        let n = seen.lock().unwrap().acked.len() as u64;
        progress.store(n, Ordering::Relaxed);
        if (kl + kw) % 20 == 0 {
            eprintln!("crash: {kl} log kills, {kw} witness kills, {n} acknowledged");
        }
    }
    // Some load after the last kill, then stop the clients.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // Wait (bounded) until a published checkpoint covers every acknowledged entry.
    let max_acked = seen
        .lock()
        .unwrap()
        .acked
        .keys()
        .max()
        .copied()
        .unwrap_or(0);
    let http = client();
    let url = server.url();
    let final_cp = reliability::wait_covering(&log.log_vkey, max_acked, || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(format!("{url}/checkpoint")).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            Some(r.bytes().await.ok()?.to_vec())
        }
    })
    .await;
    // One more watcher round so the final state is among those checked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    watch.await.unwrap();

    // The final tree through the log's own bundles and tiles, and every
    // acknowledged entry in it.
    let size = final_cp.checkpoint.size.get();
    let s = std::mem::take(&mut *seen.lock().unwrap());
    let (tree, tiles) =
        reliability::check_final_tree(size, final_cp.checkpoint.root, &s.acked, |path| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(format!("{url}/{path}")).send().await.unwrap();
                assert_eq!(r.status(), 200, "{path}");
                r.bytes().await.unwrap().to_vec()
            }
        })
        .await;

    // Every checkpoint the log ever served is a prefix of the final tree, and
    // the sizes never went back.
    let wkeys: Vec<&VerifierKey> = witness.iter().map(|(_, k)| k).collect();
    let check = |bytes: &[u8], what: &str| -> u64 {
        let cp = SignedCheckpoint::open(bytes, &log.log_vkey).unwrap();
        let n = cp.checkpoint.size;
        assert!(n.get() <= size, "{what} size {n} beyond the final {size}");
        assert_eq!(
            tree_hash(n, &tree).unwrap(),
            cp.checkpoint.root,
            "{what} of size {n} is not a prefix of the final tree (a fork)"
        );
        if !wkeys.is_empty() {
            let cos = verify_cosignatures(&cp.note, &wkeys).unwrap();
            assert!(cos.len() >= quorum, "{what} of size {n} lacks the quorum");
        }
        n.get()
    };
    let mut last = 0;
    for b in &s.log_checkpoints {
        let n = check(b, "log checkpoint");
        assert!(n >= last, "the log served size {n} after {last}");
        last = n;
    }
    // The witness's monitoring checkpoint never went back, never forked.
    let mut last = 0;
    for b in &s.witness_checkpoints {
        let n = check(b, "witness checkpoint");
        assert!(n >= last, "the witness went back from {last} to {n}");
        last = n;
    }
    drop(server);
    Report {
        kills_log: kl,
        kills_witness: kw,
        acked: s.acked.len(),
        repeats: s.repeats,
        final_size: size,
        log_checkpoints: s.log_checkpoints.len(),
        witness_checkpoints: s.witness_checkpoints.len(),
        tiles,
    }
}

fn print(name: &str, r: &Report) {
    eprintln!(
        "{name}: {} log kills, {} witness kills survived; {} acknowledged entries checked \
         (0 lost, 0 changed), {} of them acknowledged after a resubmission, final size {}, {} log and {} \
         witness checkpoints checked against the final tree, {} tiles re-derived",
        r.kills_log,
        r.kills_witness,
        r.acked,
        r.repeats,
        r.final_size,
        r.log_checkpoints,
        r.witness_checkpoints,
        r.tiles
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_survives_sigkill_quorum_0() {
    let r = run(0, kills(5), 0).await;
    print("crash quorum 0", &r);
    assert!(r.acked > 0 && r.log_checkpoints > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_witness_survive_sigkill_quorum_1() {
    let k = kills(5);
    let r = run(1, k.div_ceil(2).max(2), k.div_ceil(2).max(2)).await;
    print("crash quorum 1", &r);
    assert!(r.acked > 0 && r.log_checkpoints > 1 && r.witness_checkpoints > 1);
}
