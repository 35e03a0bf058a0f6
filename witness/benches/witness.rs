//! Durable add-checkpoint requests per second over HTTP on loopback, against
//! raw Ed25519 sign+verify measured in the same run (each request costs the
//! witness one verification and one signature, plus parsing, the proof, the
//! synchronous SQLite commit and HTTP).
//!
//! `cargo bench -p daylight-witness --bench witness`
//!
//! Bounded in count and time: `WITNESS_BENCH_CLIENTS` concurrent clients
//! (default 32), each advancing its own log one entry per request, stop after
//! `WITNESS_BENCH_REQUESTS` requests in all (default 40,000) or
//! `WITNESS_BENCH_SECONDS` seconds (default 10), whichever comes first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daylight_core::tree::{consistency_proof, tree_hash, MemoryTree};
use daylight_core::witness_protocol::AddCheckpoint;
use daylight_core::{Checkpoint, KeyName, KeyType, SignerKey, TreeSize};
use daylight_witness::{serve, store, Witness, DB_FILE};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every request a client will send, in order: log `i` from size k to k+1.
fn requests(origin: &str, seed: u8, count: usize) -> (SignerKey, Vec<Vec<u8>>) {
    let key = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [seed; 32]);
    let mut tree = MemoryTree::new();
    let mut out = Vec::with_capacity(count);
    for k in 0..count as u64 {
        tree.append(format!("{origin} entry {k}").as_bytes());
        let size = TreeSize(k + 1);
        let checkpoint = Checkpoint::new(origin, size, tree_hash(size, &tree).unwrap())
            .sign(&key)
            .unwrap()
            .to_bytes();
        out.push(
            AddCheckpoint {
                old: TreeSize(k),
                proof: consistency_proof(TreeSize(k), size, &tree).unwrap(),
                checkpoint,
            }
            .to_bytes(),
        );
    }
    (key, out)
}

/// Raw Ed25519 sign + verify pairs per second on one core, over a
/// checkpoint-sized message.
fn raw_sign_verify_per_second() -> f64 {
    let key = SignerKey::from_seed(KeyName::new("raw").unwrap(), KeyType::Ed25519, [1; 32]);
    let text = "log.bench/daylight\n123456\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            let sig = key.sign_raw(text.as_bytes());
            assert!(key.verifier().verify(text, &sig));
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let clients = env("WITNESS_BENCH_CLIENTS", 32).max(1);
    let total = env("WITNESS_BENCH_REQUESTS", 40_000).max(clients);
    let seconds = env("WITNESS_BENCH_SECONDS", 10).max(1);
    let per_client = total / clients;

    eprintln!("preparing {clients} logs x {per_client} signed checkpoints and proofs ...");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    store::create(&db).unwrap();
    let mut work = Vec::new();
    {
        let mut conn = store::open(&db).unwrap();
        for c in 0..clients {
            let origin = format!("log{c}.bench/daylight");
            let (key, bodies) = requests(&origin, c as u8, per_client);
            store::add_log(&mut conn, &origin, key.verifier(), 1).unwrap();
            work.push(bodies);
        }
    }
    let witness_key = SignerKey::from_seed(
        KeyName::new("witness.bench/w1").unwrap(),
        KeyType::CosignatureV1,
        [2; 32],
    );
    let witness = Witness::open(&db, witness_key).unwrap();
    // The limit is measured before and after the HTTP run and averaged, so
    // load from other processes on the machine weighs on both sides alike.
    let raw_before = raw_sign_verify_per_second();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rate, done, latencies, elapsed) = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/add-checkpoint", listener.local_addr().unwrap());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, witness, async {
            let _ = stop_rx.await;
        }));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(seconds as u64);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = work
            .into_iter()
            .map(|bodies| {
                let client = client.clone();
                let url = url.clone();
                let stop = Arc::clone(&stop);
                let done = Arc::clone(&done);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(bodies.len());
                    for body in bodies {
                        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        let t = Instant::now();
                        let r = client.post(&url).body(body).send().await.unwrap();
                        let status = r.status();
                        let answer = r.bytes().await.unwrap();
                        assert!(
                            status.is_success(),
                            "{status}: {}",
                            String::from_utf8_lossy(&answer)
                        );
                        latencies.push(t.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed();
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
        let done = done.load(Ordering::Relaxed);
        (
            done as f64 / elapsed.as_secs_f64(),
            done,
            latencies,
            elapsed,
        )
    });
    let mut latencies = latencies;
    latencies.sort();

    let raw = (raw_before + raw_sign_verify_per_second()) / 2.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("witness add-checkpoint over HTTP, durable (SQLite WAL, synchronous=FULL)");
    println!(
        "  clients {clients}, requests {done} in {:.2} s, {cores} cores",
        elapsed.as_secs_f64()
    );
    println!("  rate: {rate:.0} requests/s");
    println!(
        "  latency: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!("  raw Ed25519 sign+verify on one core (mean of before and after): {raw:.0} pairs/s");
    println!("  ratio: {:.1}% of raw sign+verify", rate / raw * 100.0);
}
