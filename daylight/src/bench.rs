//! `daylight bench`: load generators for a running log, bounded in count and
//! time, reporting rates next to a limit measured in the same run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::{Checkpoint, Note, TreeSize};
use daylight_log_server::integrate::integrate;
use daylight_log_server::store::{LogStore, NewEntry};
use daylight_schemas::Draft;
use ed25519_dalek::Signer as _;

use crate::key::read_signer;

/// Bench commands.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// N signed submissions from C concurrent clients; entries/s, latency
    /// percentiles, and time until a cosigned checkpoint covers each entry.
    Submit {
        /// The log's base URL.
        #[arg(long)]
        log: String,
        /// A registered agency's signer key (records are signed before timing).
        #[arg(long)]
        key: PathBuf,
        /// Submissions to send.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
    },
    /// Inclusion-proof requests for random entries from C concurrent clients.
    Proofs {
        /// The log's base URL.
        #[arg(long)]
        log: String,
        /// Requests to send.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
        /// Also report this process's resident memory (the server's PID).
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Fill a log created with `daylight log init` with N small synthetic
    /// entries through the integration path (for proof-serving benchmarks).
    Fill {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Entries to add.
        #[arg(long)]
        entries: u64,
    },
}

/// Runs a bench command.
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Submit {
            log,
            key,
            n,
            concurrency,
            max_seconds,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(submit(
                log.trim_end_matches('/').to_owned(),
                key,
                n,
                concurrency.max(1),
                Duration::from_secs(max_seconds),
            ))
        }
        BenchCommand::Proofs {
            log,
            n,
            concurrency,
            max_seconds,
            server_pid,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(proofs(
                log.trim_end_matches('/').to_owned(),
                n,
                concurrency.max(1),
                Duration::from_secs(max_seconds),
                server_pid,
            ))
        }
        BenchCommand::Fill { dir, entries } => fill(&dir, entries),
    }
}

/// Raw single-core Ed25519 verifications per second, measured now.
fn ed25519_verify_rate() -> f64 {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let vk = key.verifying_key();
    let msg = [0u8; 600];
    let sig = key.sign(&msg);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        for _ in 0..100 {
            let _ = std::hint::black_box(vk.verify_strict(std::hint::black_box(&msg), &sig));
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(label: &str, mut lat: Vec<Duration>) {
    lat.sort_unstable();
    println!(
        "{label}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.90).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn request_draft() -> Result<Draft> {
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let v = serde_json::json!({
        "kind": "request",
        "jurisdiction": "US-NY",
        "legal_basis": "18 U.S.C. 2518",
        "issuing_authority": { "name": "Benchmark District Court", "type": "court" },
        "provider": "messenger.example",
        "data_categories": ["content"],
        "offence": "narcotics",
        "target_type": "account",
        "targets": ["acct:bench"],
        "valid_from": fmt(now - chrono::Duration::days(1)),
        "valid_until": fmt(now + chrono::Duration::days(30)),
        "sealed_until": fmt(now + chrono::Duration::days(365)),
        "case_reference": "BENCH-1",
        "order_document_sha256": "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae"
    });
    Ok(Draft::from_json(&v.to_string())?)
}

async fn submit(
    log: String,
    key: PathBuf,
    n: usize,
    concurrency: usize,
    limit: Duration,
) -> Result<()> {
    let signer = read_signer(&key)?;
    let verify_rate = tokio::task::spawn_blocking(ed25519_verify_rate).await?;
    eprintln!("signing {n} records...");
    let draft = request_draft()?;
    let mut rng = |buf: &mut [u8]| {
        let _ = getrandom::getrandom(buf);
    };
    let records: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            draft
                .seal(&signer, chrono::Utc::now(), &mut rng)
                .map(|(r, _)| r.to_bytes())
        })
        .collect::<Result<_, _>>()?;
    let records = Arc::new(records);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;

    // Watch the published checkpoint while the load runs.
    let seen: Arc<std::sync::Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (client, log, seen, stop) = (client.clone(), log.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = client.get(format!("{log}/checkpoint")).send().await {
                    if let Ok(b) = r.bytes().await {
                        if let Some(size) = Note::parse(&b)
                            .ok()
                            .and_then(|n| Checkpoint::parse_text(n.text()).ok())
                            .map(|c| c.size.get())
                        {
                            if let Ok(mut s) = seen.lock() {
                                s.push((Instant::now(), size));
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    eprintln!("submitting {n} records from {concurrency} clients...");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, log, records, next) =
            (client.clone(), log.clone(), records.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out: Vec<(Instant, Duration, u64)> = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= records.len() || Instant::now() > deadline {
                    break;
                }
                let t0 = Instant::now();
                let resp = client
                    .post(format!("{log}/api/v1/entries"))
                    .header("content-type", "application/json")
                    .body(records[i].clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(idx) = v["index"].as_u64() {
                            out.push((t0, t0.elapsed(), idx));
                        } else {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            (out, errors)
        }));
    }
    let mut done = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (o, e) = t.await?;
        done.extend(o);
        errors += e;
    }
    let elapsed = started.elapsed();
    let max_index = done.iter().map(|d| d.2).max().unwrap_or(0);
    // Wait (bounded) for a checkpoint covering everything.
    let wait_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < wait_until {
        let covered = seen
            .lock()
            .map(|s| s.iter().any(|(_, size)| *size > max_index))
            .unwrap_or(false);
        if covered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;

    let rate = done.len() as f64 / elapsed.as_secs_f64();
    println!(
        "submitted {} of {n} in {:.2} s ({} errors)",
        done.len(),
        elapsed.as_secs_f64(),
        errors
    );
    println!("throughput: {rate:.0} entries/s");
    println!(
        "raw Ed25519 verification, one core, same run: {verify_rate:.0}/s; ratio {:.3}",
        rate / verify_rate
    );
    report("submit latency", done.iter().map(|d| d.1).collect());
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let published: Vec<Duration> = done
        .iter()
        .filter_map(|(t0, _, idx)| {
            seen.iter()
                .find(|(_, size)| size > idx)
                .map(|(t, _)| t.saturating_duration_since(*t0))
        })
        .collect();
    println!(
        "entries seen in a published checkpoint: {} of {}",
        published.len(),
        done.len()
    );
    report("submission to published cosigned checkpoint", published);
    if done.len() < n {
        bail!(
            "only {} of {n} submissions succeeded within {limit:?}",
            done.len()
        );
    }
    Ok(())
}

async fn proofs(
    log: String,
    n: usize,
    concurrency: usize,
    limit: Duration,
    server_pid: Option<u32>,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let cp = client
        .get(format!("{log}/checkpoint"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let size = Checkpoint::parse_text(Note::parse(&cp)?.text())?.size.get();
    if size == 0 {
        bail!("the log's published checkpoint is empty");
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (client, log, next) = (client.clone(), log.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t as u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n || Instant::now() > deadline {
                    break;
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let idx = x % size;
                let t0 = Instant::now();
                let ok = match client
                    .get(format!("{log}/api/v1/entries/{idx}/proof"))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    lat.push(t0.elapsed());
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = started.elapsed();
    println!(
        "{} proofs of {n} at tree size {size} in {:.2} s: {:.0} proofs/s",
        lat.len(),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    report("proof latency", lat);
    if let Some(pid) = server_pid {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        {
            println!("server {line}");
        }
    }
    Ok(())
}

fn fill(dir: &std::path::Path, entries: u64) -> Result<()> {
    let store = crate::log::open(dir)?;
    let key = read_signer(&dir.join("log.key"))?;
    let meta = store.meta()?;
    if meta.quorum != 0 {
        bail!("fill publishes without witnesses, so it only works on a log made with --quorum 0");
    }
    let origin = meta.origin;
    let start = store.size()?.get();
    let chunk = 100_000u64;
    let started = Instant::now();
    let mut done = 0u64;
    while done < entries {
        let k = chunk.min(entries - done);
        let batch: Vec<NewEntry> = (0..k)
            .map(|i| {
                let data = format!("synthetic entry {}", start + done + i).into_bytes();
                NewEntry {
                    leaf_hash: daylight_core::leaf_hash(&data),
                    data,
                    kind: "synthetic".into(),
                    signer: "bench".into(),
                }
            })
            .collect();
        integrate(&store, &key, &origin, batch)?;
        done += k;
        eprintln!(
            "{done} / {entries} entries ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    // Published directly: a synthetic log has no witnesses.
    let latest = store.latest_checkpoint()?.context("no checkpoint")?;
    let size = TreeSize(start + entries);
    store.publish(size, &latest)?;
    println!("log has {} entries", size.get());
    Ok(())
}
