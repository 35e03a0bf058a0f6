//! `daylight bench integrate`: the log's in-process write path (sequence,
//! stored hashes, signed checkpoint, one durable transaction per batch)
//! beside raw durable batched SQLite inserts of the same bytes into a file
//! in the same directory, measured alternately in one run so both see the
//! same disk and the same background load.
//!
//! The log's batches are pipelined as the sequencer pipelines them: up to
//! [`PIPELINE_DEPTH`](daylight_log_server::sequencer::PIPELINE_DEPTH)
//! committed batches (or `--pipeline-depth`) wait for their filesystem sync (on
//! a thread of their own) while the next is built. Each timed window ends
//! only when its last batch is durable, so no sync is left out of the
//! log's time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use daylight_core::TreeSize;
use daylight_log_server::integrate::integrate_committed;
use daylight_log_server::store::{Durable, LogStore, NewEntry, Settled, StoreError};

use crate::key::read_signer;

/// What to run.
pub struct Options {
    /// A log made with `daylight log init --quorum 0` (filled or not).
    pub dir: PathBuf,
    /// Batches to time.
    pub batches: u64,
    /// Entries per batch.
    pub batch: usize,
    /// Bytes per entry.
    pub bytes: usize,
    /// Stop timing after this long.
    pub max: Duration,
    /// Committed batches that may wait for their sync at once (1: each
    /// batch waits for its sync before the next is built, no pipelining).
    pub depth: u32,
}

/// Entries with random contents (so leaf hashes fall anywhere in the
/// dedup index, as real records' do), `bytes` long each.
fn random_batch(n: usize, bytes: usize) -> Result<Vec<NewEntry>> {
    (0..n)
        .map(|_| {
            let mut data = vec![0u8; bytes];
            getrandom::getrandom(&mut data).context("reading the system random source")?;
            Ok(NewEntry {
                leaf_hash: daylight_core::leaf_hash(&data),
                data,
                kind: "request".into(),
                signer: "bench".into(),
                packed: None,
            })
        })
        .collect()
}

/// The raw limit: a WAL-mode SQLite file with `synchronous=FULL`, the
/// log's page size and one table of (index, bytes), each batch one
/// transaction made durable by SQLite's own sync (the log's batches are made
/// durable by a `syncfs` after the commit instead, and skip that one).
struct Raw {
    conn: rusqlite::Connection,
    next: i64,
}

impl Raw {
    fn open(path: &Path) -> Result<Raw> {
        let _ = std::fs::remove_file(path);
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size={}; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE raw (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);",
            daylight_log_server::sqlite::NEW_LOG_PAGE_SIZE
        ))?;
        Ok(Raw { conn, next: 0 })
    }

    fn insert(&mut self, batch: &[NewEntry]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached("INSERT INTO raw (idx, data) VALUES (?1, ?2)")?;
            for e in batch {
                put.execute(rusqlite::params![self.next, e.data])?;
                self.next += 1;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Batches per timed window (raw, then the log's).
const WINDOW: u64 = 8;

/// Integrates `window` into `store` as the sequencer does: each batch
/// committed, then synced on another thread while the next is built, at
/// most `depth` unsynced at once. Returns once all are durable.
fn integrate_window(
    store: &dyn LogStore,
    key: &daylight_core::SignerKey,
    origin: &str,
    window: Vec<Vec<NewEntry>>,
    depth: u32,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (to_sync, syncing) = std::sync::mpsc::channel::<Durable>();
        let (synced_tx, synced) = std::sync::mpsc::channel::<Result<(), StoreError>>();
        scope.spawn(move || {
            for durable in syncing {
                if synced_tx.send(durable.wait()).is_err() {
                    break;
                }
            }
        });
        let mut in_flight = 0;
        let settle = |in_flight: &mut u32| -> Result<()> {
            synced.recv().context("the sync thread stopped")??;
            *in_flight -= 1;
            Ok(())
        };
        for batch in window {
            if in_flight >= depth {
                settle(&mut in_flight)?;
            }
            let durable =
                integrate_committed(store, key, origin, batch, None, Settled::default(), None)?
                    .durable;
            to_sync
                .send(durable)
                .map_err(|_| anyhow::anyhow!("the sync thread stopped"))?;
            in_flight += 1;
        }
        drop(to_sync);
        while in_flight > 0 {
            settle(&mut in_flight)?;
        }
        Ok(())
    })
}

/// Runs the comparison and prints `key: value` lines (for `scripts/bench`).
pub fn run(opts: Options) -> Result<()> {
    let store = crate::log::open(&opts.dir)?;
    let key = read_signer(&opts.dir.join("log.key"))?;
    let meta = store.meta()?;
    if meta.quorum != 0 {
        bail!("bench integrate publishes without witnesses, so it only works on a log made with --quorum 0");
    }
    let start_size = store.size()?.get();
    let raw_path = opts.dir.join("bench-raw.db");
    let mut raw = Raw::open(&raw_path).context("the raw SQLite file")?;
    eprintln!(
        "integrating up to {} batches of {} x {} bytes onto {start_size} entries, alternating with raw inserts...",
        opts.batches, opts.batch, opts.bytes
    );
    let (mut log_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0u64;
    let started = Instant::now();
    while done < opts.batches && started.elapsed() < opts.max {
        let n = WINDOW.min(opts.batches - done);
        let window = (0..n)
            .map(|_| random_batch(opts.batch, opts.bytes))
            .collect::<Result<Vec<_>>>()?;
        let t = Instant::now();
        for batch in &window {
            raw.insert(batch)?;
        }
        raw_time += t.elapsed();
        let t = Instant::now();
        integrate_window(
            store.as_ref(),
            &key,
            &meta.origin,
            window,
            opts.depth.max(1),
        )?;
        log_time += t.elapsed();
        let before = done;
        done += n;
        if done / 24 > before / 24 {
            eprintln!("{done} batches");
        }
    }
    let latest = store.latest_checkpoint()?.context("no checkpoint")?;
    let size = TreeSize(start_size + done * opts.batch as u64);
    store.publish(size, &latest)?;
    drop(raw);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", raw_path.display()));
    }
    let n = (done * opts.batch as u64) as f64;
    let log_rate = n / log_time.as_secs_f64().max(1e-9);
    let raw_rate = n / raw_time.as_secs_f64().max(1e-9);
    println!("integrate_base_entries: {start_size}");
    println!("integrate_batches: {done}");
    println!("integrate_pipeline_depth: {}", opts.depth.max(1));
    println!("integrate_entries_per_s: {log_rate:.0}");
    println!("raw_sqlite_entries_per_s: {raw_rate:.0}");
    println!("integrate_ratio: {:.3}", log_rate / raw_rate);
    println!("log_has: {}", size.get());
    Ok(())
}
