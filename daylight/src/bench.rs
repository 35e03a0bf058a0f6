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
use daylight_log_server::store::NewEntry;
use daylight_schemas::Draft;
use ed25519_dalek::Signer as _;

use crate::key::read_signer;

mod custody;
mod http1;
mod integrate;
mod mirror;
mod web_index;

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
        /// First time the cheapest route (`GET /checkpoint`) from the same
        /// clients for this many seconds and print its rate as
        /// `http_floor_per_s`: this server's and client's HTTP ceiling on
        /// this machine, the limit for the proofs' rate (0: skip).
        #[arg(long, default_value_t = 0)]
        baseline_seconds: u64,
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
        /// Real signed records instead: requests and emergencies spread over
        /// three years, with some disclosures and withdrawals referring to
        /// them, signed by four agency keys the bench generates and registers
        /// in the log (for web view benchmarks).
        #[arg(long)]
        records: bool,
    },
    /// Web view pages (overview, filtered and paginated lists, entry pages)
    /// from C concurrent clients: latency percentiles per page type.
    Pages {
        /// The log's base URL.
        #[arg(long)]
        log: String,
        /// Requests to send.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
        /// Also report this process's resident memory (the server's PID).
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Threshold custody: sets up a log, three witnesses (quorum 2), three
    /// custodians (threshold 2) and N requests, each target's key split 2
    /// of 3, all in this process; then times the gate decisions alone (two
    /// custodians' worth per request), recovering each key over HTTP the
    /// first time (receipts logged and cosigned) and again (receipts
    /// already logged), and prints one table with each figure's ratio to
    /// the gate alone, then where a repeat recovery's time goes.
    Custody {
        /// Requests, each with its own target and key.
        #[arg(long, default_value_t = 200)]
        n: usize,
        /// Where to set everything up (a new or empty directory, kept);
        /// default: a temporary directory, removed afterwards.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Give up each timed phase after this many seconds.
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
    },
    /// A C2SP tlog-mirror against its log, in this process on 127.0.0.1
    /// ports the system picks: integrates N synthetic entries into a new log
    /// (the log alone), has a mirror verify, store and cosign them called
    /// directly (where its time goes: proofs, hashing, SQLite), then serves
    /// a second mirror and the log with mirror quorum 1 and times the push
    /// over HTTP until the log publishes the mirror-cosigned checkpoint.
    /// One table, each rate's ratio to the log's integration rate.
    Mirror {
        /// Entries to integrate and mirror.
        #[arg(long, default_value_t = 200_000)]
        n: u64,
        /// Where to set everything up (a new or empty directory, kept);
        /// default: a temporary directory, removed afterwards.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Give up waiting for the mirrored, published checkpoint after
        /// this many seconds.
        #[arg(long, default_value_t = 600)]
        max_seconds: u64,
    },
    /// The log's write path in this process: batches of random entries
    /// integrated into DIR (a log made with `--quorum 0`; sequence, stored
    /// hashes, signed checkpoint, one durable transaction each, the next
    /// built while the last one's filesystem sync runs, as the sequencer
    /// pipelines them), in windows of 8 batches alternating
    /// with raw durable batched SQLite inserts of the same bytes into a file
    /// beside it; prints both rates and their ratio. The entries stay in the
    /// log (published at the end, as `fill` does).
    Integrate {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Batches to time.
        #[arg(long, default_value_t = 200)]
        batches: u64,
        /// Entries per batch (the sequencer's largest batch by default).
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        /// Bytes per entry (about a real record's).
        #[arg(long, default_value_t = 1000)]
        bytes: usize,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
        /// Committed batches that may wait for their filesystem sync at
        /// once (the sequencer's depth by default; 1 = no pipelining).
        #[arg(long, default_value_t = daylight_log_server::sequencer::PIPELINE_DEPTH)]
        pipeline_depth: u32,
    },
    /// Audits a log into DIR (empty: the whole log from nothing; an earlier
    /// audit's: one `--follow` poll) beside this machine's Ed25519 batch
    /// verification rate on the same threads, measured in the same run:
    /// entries/s, their ratio to that limit, and this process's peak memory.
    Audit {
        /// The log's base URL.
        #[arg(long)]
        log: String,
        /// The audit directory.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Threads for the audit and for the limit.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Builds the web view's query index afresh from the log in DIR (as
    /// `log serve` does) beside the same entries only read and parsed,
    /// measured in the same run: entries/s, their ratio to that limit, and
    /// the index's bytes per entry, as `key: value` lines.
    WebIndex {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Where to build the index (an existing one is deleted first);
        /// default: a temporary file, removed afterwards.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop each phase after this many seconds.
        #[arg(long, default_value_t = 1800)]
        max_seconds: u64,
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
            baseline_seconds,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(proofs(
                log.trim_end_matches('/').to_owned(),
                n,
                concurrency.max(1),
                Duration::from_secs(max_seconds),
                server_pid,
                Duration::from_secs(baseline_seconds),
            ))
        }
        BenchCommand::Fill {
            dir,
            entries,
            records: false,
        } => fill(&dir, entries),
        BenchCommand::Fill {
            dir,
            entries,
            records: true,
        } => fill_records(&dir, entries),
        BenchCommand::Pages {
            log,
            n,
            concurrency,
            max_seconds,
            server_pid,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(pages(
                log.trim_end_matches('/').to_owned(),
                n,
                concurrency.max(1),
                Duration::from_secs(max_seconds),
                server_pid,
            ))
        }
        BenchCommand::Audit { log, dir, threads } => audit(&log, &dir, threads.max(1)),
        BenchCommand::Custody {
            n,
            dir,
            max_seconds,
        } => custody::run(n.max(1), dir, Duration::from_secs(max_seconds)),
        BenchCommand::Integrate {
            dir,
            batches,
            batch,
            bytes,
            max_seconds,
            pipeline_depth,
        } => integrate::run(integrate::Options {
            dir,
            batches,
            batch: batch.max(1),
            bytes: bytes.max(1),
            max: Duration::from_secs(max_seconds),
            depth: pipeline_depth.max(1),
        }),
        BenchCommand::Mirror {
            n,
            dir,
            max_seconds,
        } => mirror::run(n.max(1), dir, Duration::from_secs(max_seconds)),
        BenchCommand::WebIndex {
            dir,
            out,
            max_seconds,
        } => web_index::run(&dir, out, Duration::from_secs(max_seconds)),
    }
}

/// Ed25519 signatures per second that `threads` threads verify in batches
/// of 64 (as the auditor does), messages the size of a record, measured now.
fn ed25519_batch_rate(threads: usize) -> f64 {
    const BATCH: usize = 64;
    let keys: Vec<ed25519_dalek::SigningKey> = (0..4u8)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i + 1; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 700]).collect();
    let sigs: Vec<ed25519_dalek::Signature> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| keys[i % 4].sign(m))
        .collect();
    let vks: Vec<ed25519_dalek::VerifyingKey> =
        (0..BATCH).map(|i| keys[i % 4].verifying_key()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_secs(2) {
                        let ok =
                            ed25519_dalek::verify_batch(std::hint::black_box(&refs), &sigs, &vks);
                        assert!(ok.is_ok(), "the benchmark's own signatures verify");
                        n += BATCH as u64;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// This process's peak resident memory (VmHWM), in MB.
fn peak_memory_mb() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kb / 1024.0)
}

/// `bench audit`: see [`BenchCommand::Audit`].
fn audit(log: &str, dir: &std::path::Path, threads: usize) -> Result<()> {
    let limit = ed25519_batch_rate(threads);
    let mut opts = daylight_auditor::AuditOptions::new(log, dir);
    opts.threads = threads;
    let rt = tokio::runtime::Runtime::new()?;
    let start = Instant::now();
    let (report, stats) = rt
        .block_on(daylight_auditor::audit(&opts))
        .with_context(|| format!("auditing {log}"))?;
    let secs = start.elapsed().as_secs_f64();
    let rate = stats.entries as f64 / secs;
    println!(
        "log: {} entries; {} new this run, {} tiles and bundles fetched",
        report.entries_audited, stats.entries, stats.fetched
    );
    println!(
        "audit: {secs:.2} s, {rate:.0} entries/s, {} findings ({:?})",
        report.findings_total, report.status
    );
    println!(
        "limit: Ed25519 batch verification on {threads} threads, same run: {limit:.0} signatures/s"
    );
    println!("ratio: {:.3}", rate / limit);
    let write = stats.findings_write.as_secs_f64();
    println!(
        "of which writing findings.json ({} findings): {write:.2} s; the rest: {:.2} s",
        report.findings_total,
        secs - write
    );
    println!("peak memory (VmHWM): {:.1} MB", peak_memory_mb()?);
    Ok(())
}

/// Raw single-core Ed25519 verifications per second, measured now: the
/// best of ten 50 ms slices. The limit is what one core can do, so a slice
/// slowed by another process (the servers starting beside it, the
/// scheduler) must not lower it and flatter the ratio.
fn ed25519_verify_rate() -> f64 {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let vk = key.verifying_key();
    let msg = [0u8; 600];
    let sig = key.sign(&msg);
    let mut best = 0f64;
    for _ in 0..10 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            for _ in 0..20 {
                let _ = std::hint::black_box(vk.verify_strict(std::hint::black_box(&msg), &sig));
            }
            n += 20;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
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

/// The provider the benchmarks' requests are addressed to.
const BENCH_PROVIDER: &str = "messenger.example";

fn request_draft() -> Result<Draft> {
    Ok(Draft::from_json(&request_json("acct:bench").to_string())?)
}

/// A current request draft to [`BENCH_PROVIDER`] for `target`, valid from
/// yesterday for 31 days (inside a starting gate policy's limits).
fn request_json(target: &str) -> serde_json::Value {
    let now = chrono::Utc::now();
    let fmt = crate::demo::sample::ts;
    serde_json::json!({
        "kind": "request",
        "jurisdiction": "US-NY",
        "legal_basis": "18 U.S.C. 2518",
        "issuing_authority": { "name": "Benchmark District Court", "type": "court" },
        "provider": BENCH_PROVIDER,
        "data_categories": ["content"],
        "offence": "narcotics",
        "target_type": "account",
        "targets": [target],
        "valid_from": fmt(now - chrono::Duration::days(1)),
        "valid_until": fmt(now + chrono::Duration::days(30)),
        "sealed_until": fmt(now + chrono::Duration::days(365)),
        "case_reference": "BENCH-1",
        "order_document_sha256": "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae"
    })
}

/// The origin of the log at `log` (records are bound to it).
async fn log_origin(log: &str) -> Result<String> {
    let client = reqwest::Client::new();
    let policy = crate::agency::log_policy(&client, log.trim_end_matches('/')).await?;
    crate::agency::policy_origin(&policy)
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
    let origin = log_origin(&log).await?;
    eprintln!("signing {n} records...");
    let draft = request_draft()?;
    let mut rng = |buf: &mut [u8]| {
        let _ = getrandom::getrandom(buf);
    };
    let records: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            draft
                .seal(&signer, &origin, chrono::Utc::now(), &mut rng)
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
        let (mut client, records, next) = (
            http1::Client::new(&log, &client),
            records.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out: Vec<(Instant, Duration, u64)> = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= records.len() || Instant::now() > deadline {
                    break;
                }
                let t0 = Instant::now();
                match client.post_json("/api/v1/entries", &records[i]).await {
                    Ok(a) if a.ok() => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&a.body).unwrap_or_default();
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
    // Measured again once the load is over; the higher of the two is the
    // limit (see `ed25519_verify_rate`).
    let verify_after = tokio::task::spawn_blocking(ed25519_verify_rate).await?;
    let limit_rate = verify_rate.max(verify_after);
    println!(
        "raw Ed25519 verification, one core, same run: {limit_rate:.0}/s; ratio {:.3} \
         (before the load {verify_rate:.0}/s, after it {verify_after:.0}/s)",
        rate / limit_rate
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

/// The size of the log's published checkpoint, which must not be empty.
async fn published_size(client: &reqwest::Client, log: &str) -> Result<u64> {
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
    Ok(size)
}

/// Sends up to `n` GET requests from `concurrency` clients until `deadline`:
/// `pick(i)` gives request `i`'s type (below `types`) and path. The
/// latencies of the requests that succeeded, by type, and the failures.
async fn drive(
    client: &reqwest::Client,
    log: &str,
    n: usize,
    concurrency: usize,
    deadline: Instant,
    types: usize,
    pick: impl Fn(u64) -> (usize, String) + Send + Sync + 'static,
) -> Result<(Vec<Vec<Duration>>, u64)> {
    let pick = Arc::new(pick);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (mut client, next, pick) =
            (http1::Client::new(log, client), next.clone(), pick.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![Vec::new(); types];
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n as u64 || Instant::now() > deadline {
                    break;
                }
                let (ty, path) = pick(i);
                let t0 = Instant::now();
                let ok = client.get(&path).await.is_ok_and(|a| a.ok());
                if ok {
                    lat[ty].push(t0.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = vec![Vec::new(); types];
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        for (all, mine) in lat.iter_mut().zip(l) {
            all.extend(mine);
        }
        errors += e;
    }
    Ok((lat, errors))
}

async fn proofs(
    log: String,
    n: usize,
    concurrency: usize,
    limit: Duration,
    server_pid: Option<u32>,
    baseline: Duration,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let size = published_size(&client, &log).await?;
    let floor = if baseline.is_zero() {
        None
    } else {
        let started = Instant::now();
        let (lat, errors) = drive(
            &client,
            &log,
            usize::MAX,
            concurrency,
            started + baseline,
            1,
            |_| (0, "/checkpoint".to_owned()),
        )
        .await?;
        let lat = lat.into_iter().flatten().collect::<Vec<_>>();
        let floor = lat.len() as f64 / started.elapsed().as_secs_f64();
        println!("http_floor_per_s: {floor:.0}");
        println!("http_floor_errors: {errors}");
        report("http floor (GET /checkpoint) latency", lat);
        Some(floor)
    };
    let started = Instant::now();
    let (lat, errors) = drive(
        &client,
        &log,
        n,
        concurrency,
        started + limit,
        1,
        move |i| (0, format!("/api/v1/entries/{}/proof", mix(i) % size)),
    )
    .await?;
    let lat = lat.into_iter().flatten().collect::<Vec<_>>();
    let elapsed = started.elapsed();
    println!(
        "{} proofs of {n} ({errors} errors) at tree size {size} in {:.2} s: {:.0} proofs/s",
        lat.len(),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    let rate = lat.len() as f64 / elapsed.as_secs_f64();
    println!("proofs_per_s: {rate:.0}");
    if let Some(floor) = floor.filter(|f| *f > 0.0) {
        println!("proofs_ratio_to_floor: {:.3}", rate / floor);
    }
    report("proof latency", lat);
    if let Some(pid) = server_pid {
        server_memory(pid)?;
    }
    Ok(())
}

/// Prints a process's resident memory, now and at its peak.
fn server_memory(pid: u32) -> Result<()> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    for line in status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
    {
        println!("server {line}");
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
    let start = store.size()?.get();
    integrate_synthetic(store.as_ref(), &key, &meta.origin, entries)?;
    // Published directly: a synthetic log has no witnesses.
    let latest = store.latest_checkpoint()?.context("no checkpoint")?;
    let size = TreeSize(start + entries);
    store.publish(size, &latest)?;
    println!("log has {} entries", size.get());
    Ok(())
}

/// Appends `entries` small synthetic entries to the log in `store` through
/// the integration path, 100k at a time (progress on stderr), leaving the
/// last checkpoint signed but unpublished.
fn integrate_synthetic(
    store: &dyn daylight_log_server::store::LogStore,
    key: &daylight_core::SignerKey,
    origin: &str,
    entries: u64,
) -> Result<()> {
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
                    packed: None,
                }
            })
            .collect();
        integrate(store, key, origin, batch)?;
        done += k;
        eprintln!(
            "{done} / {entries} entries ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The agencies `fill --records` signs as: name, jurisdiction, legal basis, court.
const FILL_AGENCIES: [(&str, &str, &str, &str); 4] = [
    (
        "bench-bureau.example",
        "US",
        "18 U.S.C. 2518",
        "U.S. District Court",
    ),
    (
        "bench-state.example",
        "US-CA",
        "Cal. Penal Code 629.50",
        "Superior Court of California",
    ),
    (
        "bench-metro.example",
        "GB",
        "Investigatory Powers Act 2016 s.19",
        "Investigatory Powers Commissioner's Office",
    ),
    (
        "bench-lka.example",
        "DE",
        "StPO 100a",
        "Amtsgericht Tiergarten",
    ),
];

const FILL_CATEGORIES: [&[&str]; 5] = [
    &["content", "traffic"],
    &["subscriber", "traffic"],
    &["content", "stored_keys"],
    &["device_unlock"],
    &["subscriber", "identification", "location"],
];

const FILL_OFFENCES: [&str; 6] = [
    "narcotics",
    "conspiracy",
    "homicide",
    "fraud",
    "money_laundering",
    "terrorism",
];

/// A deterministic 64-bit mix of `i` (splitmix64), for the fill's choices.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `i`th primary record of `total`: (agency, created, draft JSON).
fn fill_primary(
    i: u64,
    total: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> (usize, chrono::DateTime<chrono::Utc>, serde_json::Value) {
    use chrono::Duration as D;
    let r = mix(i);
    let span = D::days(3 * 365).num_seconds();
    let created = now - D::days(3 * 365)
        + D::seconds(span * i as i64 / total.max(1) as i64)
        + D::seconds((r % 3600) as i64);
    // Primaries past `total` (filling in for follow-ups not made) stay in the past.
    let created = created.min(now - D::hours(1));
    let agency = [0, 0, 0, 1, 1, 2, 2, 3][(r >> 8) as usize % 8];
    let (name, jurisdiction, legal_basis, court) = FILL_AGENCIES[agency];
    let emergency = (r >> 16) % 100 < 6;
    let targets: Vec<String> = (0..1 + (r >> 24) % 3)
        .map(|k| format!("acct:{:010}", mix(i ^ (k << 40)) % 10_000_000_000))
        .collect();
    let mut d = serde_json::json!({
        "kind": if emergency { "emergency" } else { "request" },
        "jurisdiction": jurisdiction,
        "legal_basis": legal_basis,
        "provider": if (r >> 32) % 10 < 7 { "messenger.example" } else { "cloud.example" },
        "data_categories": FILL_CATEGORIES[(r >> 36) as usize % FILL_CATEGORIES.len()],
        "offence": FILL_OFFENCES[(r >> 40) as usize % FILL_OFFENCES.len()],
        "target_type": "account",
        "targets": targets,
        "valid_from": crate::demo::sample::ts(created),
        "case_reference": format!("BENCH-{i:07}"),
    });
    if emergency {
        d["issuing_authority"] =
            serde_json::json!({ "name": format!("{name} duty officer"), "type": "agency" });
        d["valid_until"] = crate::demo::sample::ts(created + D::hours(48)).into();
        d["sealed_until"] = crate::demo::sample::ts(created + D::days(92)).into();
        d["ground"] = "life_or_safety".into();
        d["ratify_by"] = crate::demo::sample::ts(created + D::hours(48)).into();
    } else {
        let months = [3i64, 6, 12, 12, 24][(r >> 44) as usize % 5];
        d["issuing_authority"] = serde_json::json!({ "name": court, "type": "court" });
        d["valid_until"] = crate::demo::sample::ts(created + D::days(30)).into();
        d["sealed_until"] = crate::demo::sample::ts(created + D::days(30 + 30 * months)).into();
        d["order_document_sha256"] = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            mix(r),
            mix(r + 1),
            mix(r + 2),
            mix(r + 3)
        )
        .into();
    }
    (agency, created, d)
}

/// Signs `drafts` (signer index, created, draft) on every core, in order.
fn sign_all(
    keys: &[daylight_core::SignerKey],
    origin: &str,
    drafts: Vec<(usize, chrono::DateTime<chrono::Utc>, serde_json::Value)>,
) -> Result<Vec<(daylight_schemas::SignedRecord, daylight_schemas::Opening)>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = drafts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = drafts
            .chunks(per)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<_>> {
                    let mut rng = |buf: &mut [u8]| {
                        let _ = getrandom::getrandom(buf);
                    };
                    part.iter()
                        .map(|(k, created, d)| {
                            let key = keys.get(*k).context("no such bench key")?;
                            Ok(Draft::from_json(&d.to_string())?
                                .seal(key, origin, *created, &mut rng)?)
                        })
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??,
            );
        }
        Ok(out)
    })
}

/// `fill --records`: real signed records, integrated in chunks of 100k.
fn fill_records(dir: &std::path::Path, entries: u64) -> Result<()> {
    let store = crate::log::open(dir)?;
    let log_key = read_signer(&dir.join("log.key"))?;
    let meta = store.meta()?;
    if meta.quorum != 0 {
        bail!("fill publishes without witnesses, so it only works on a log made with --quorum 0");
    }
    let origin = meta.origin;
    drop(store);
    // Agency keys, registered the way `daylight log add-agency` does.
    let mut keys = Vec::new();
    for (name, ..) in FILL_AGENCIES {
        let key = crate::key::generate(name, daylight_core::KeyType::Ed25519)?;
        let index = crate::log::register_key(
            dir,
            &key.verifier().to_string(),
            daylight_schemas::Role::Agency,
        )?;
        eprintln!("registered {name} at entry {index}");
        keys.push(key);
    }
    let store = crate::log::open(dir)?;
    let start = store.size()?.get();
    let now = chrono::Utc::now();
    let chunk = 100_000u64;
    let started = Instant::now();
    let mut done = 0u64;
    let mut primaries = 0u64;
    let total_primaries = entries * 100 / 118;
    while done < entries {
        let k = chunk.min(entries - done);
        let base = start + done;
        // About 18 follow-ups per 100 primaries: 15 disclosures, 3 withdrawals.
        let np = (k * 100 / 118).max(1).min(k);
        let first: Vec<_> = (0..np)
            .map(|i| fill_primary(primaries + i, total_primaries, now))
            .collect();
        let who: Vec<(usize, chrono::DateTime<chrono::Utc>)> =
            first.iter().map(|(a, c, _)| (*a, *c)).collect();
        let signed = sign_all(&keys, &origin, first)?;
        let mut follow = Vec::new();
        for (i, (rec, opening)) in signed.iter().enumerate() {
            if follow.len() as u64 >= k - np {
                break;
            }
            let r = mix((primaries + i as u64) ^ 0x5555);
            let entry = serde_json::json!({ "index": base + i as u64, "leaf_hash": rec.leaf_hash().to_hex() });
            let (agency, created) = who[i];
            let at = (created + chrono::Duration::days(40)).min(now);
            if r % 100 < 3 {
                follow.push((agency, at, serde_json::json!({ "kind": "withdrawal", "entry": entry, "reason": "no_longer_needed" })));
            } else if r % 100 < 21 && rec.body().sealed_until().is_some_and(|t| t < now) {
                follow.push((
                    agency,
                    rec.body().sealed_until().unwrap_or(now).min(now),
                    crate::demo::sample::disclosure(entry, opening)?,
                ));
            }
        }
        let follow_who: Vec<usize> = follow.iter().map(|f| f.0).collect();
        let follow = sign_all(&keys, &origin, follow)?;
        let batch: Vec<NewEntry> = signed
            .iter()
            .zip(who.iter().map(|w| w.0))
            .chain(follow.iter().zip(follow_who))
            .map(|((rec, _), agency)| {
                let signer = keys.get(agency).unwrap_or(&keys[0]).verifier().to_string();
                NewEntry {
                    leaf_hash: rec.leaf_hash(),
                    data: rec.to_bytes(),
                    kind: rec.kind().to_string(),
                    signer,
                    packed: None,
                }
            })
            .collect();
        let added = batch.len() as u64;
        integrate(store.as_ref(), &log_key, &origin, batch)?;
        primaries += np;
        done += added;
        eprintln!(
            "{done} / {entries} entries ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    let latest = store.latest_checkpoint()?.context("no checkpoint")?;
    let size = TreeSize(start + done);
    store.publish(size, &latest)?;
    println!("log has {} entries", size.get());
    Ok(())
}

/// The page types `bench pages` asks for.
const PAGE_TYPES: [&str; 4] = ["overview", "list", "filtered list", "entry"];

/// The first this many of [`LIST_QUERIES`] are plain pages; the rest filter.
const PLAIN: usize = 3;
/// How many of [`LIST_QUERIES`] filter.
const FILTERED: usize = LIST_QUERIES.len() - PLAIN;
/// Where "filtered list" is in [`PAGE_TYPES`].
const FILTERED_TYPE: usize = 2;

/// The list queries `bench pages` cycles through (filters and pagination).
const LIST_QUERIES: [&str; 12] = [
    "",
    "?page=2",
    "?page=1000",
    "?kind=request",
    "?kind=emergency&page=3",
    "?status=overdue",
    "?status=disclosed&page=10",
    "?agency=bench-state.example&kind=request&kind=emergency",
    "?jurisdiction=US&emergency=no&page=5",
    "?legal_basis=stpo&per_page=100",
    "?category=device_unlock&from=2025-01-01&to=2025-06-30",
    "?provider=cloud.example&status=sealed&page=20",
];

async fn pages(
    log: String,
    n: usize,
    concurrency: usize,
    limit: Duration,
    server_pid: Option<u32>,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(120))
        .build()?;
    let size = published_size(&client, &log).await?;
    // The first page load reads the log into the web index: timed apart.
    let t0 = Instant::now();
    client
        .get(format!("{log}/"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    println!(
        "first page (web index catching up with {size} entries): {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    // 1 in 10 the overview, 2 lists, 2 filtered lists, 5 entries.
    let (lat, errors) = drive(
        &client,
        &log,
        n,
        concurrency,
        started + limit,
        PAGE_TYPES.len() + FILTERED,
        move |i| match i % 10 {
            0 => (0, "/".to_owned()),
            1 | 2 => (
                1,
                format!("/entries{}", LIST_QUERIES[(i / 10) as usize % PLAIN]),
            ),
            // Each filtered query is timed apart too (after the page types).
            3 | 4 => {
                let q = (i / 5) as usize % FILTERED;
                (
                    PAGE_TYPES.len() + q,
                    format!("/entries{}", LIST_QUERIES[PLAIN + q]),
                )
            }
            _ => (3, format!("/entries/{}", mix(i) % size)),
        },
    )
    .await?;
    let elapsed = started.elapsed();
    let mut lat = lat;
    let by_query = lat.split_off(PAGE_TYPES.len());
    if let Some(filtered) = lat.get_mut(FILTERED_TYPE) {
        filtered.extend(by_query.iter().flatten().copied());
    }
    let count: usize = lat.iter().map(Vec::len).sum();
    println!(
        "{count} pages of {n} ({errors} errors) at log size {size}, {concurrency} clients, in {:.2} s: {:.0} pages/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    for (ty, l) in PAGE_TYPES.iter().zip(lat) {
        report(&format!("{ty} ({} pages)", l.len()), l);
    }
    for (q, l) in LIST_QUERIES[PLAIN..].iter().zip(by_query) {
        report(&format!("  filtered {q} ({} pages)", l.len()), l);
    }
    if let Some(pid) = server_pid {
        server_memory(pid)?;
    }
    if errors > 0 {
        bail!("{errors} page requests failed");
    }
    Ok(())
}
