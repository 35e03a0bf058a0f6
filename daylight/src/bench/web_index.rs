//! `daylight bench web-index`: how fast the web view's query index
//! (`web-index.db`, `daylight_web::index`) is built from an existing log,
//! against a limit measured in the same run on the same entries (issue 18).
//!
//! 1. The limit: every entry read from the log's store in the index's
//!    chunks and parsed as a signed record, the work no index can avoid
//!    (reading alone is timed too).
//! 2. The index: a fresh one at `--out` (or in a temporary directory),
//!    caught up with the log in rounds as `log serve` does, until it holds
//!    every entry or the time runs out; then closed, and its file measured.
//!
//! The limit runs first, so that both read a log the OS has cached.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use daylight_core::LeafIndex;
use daylight_log_server::store::LogStore;
use daylight_web::index::Index;

/// Entries read per call in the limit's pass, as the index reads them.
const CHUNK: u64 = 2048;
/// One round of catching up between progress reports.
const ROUND: Duration = Duration::from_secs(5);

/// Builds a fresh index of the log in `dir` at `out` (default: a temporary
/// file, removed afterwards), each phase stopping after `limit`.
pub(super) fn run(dir: &Path, out: Option<PathBuf>, limit: Duration) -> Result<()> {
    let store = crate::log::open(dir)?;
    let origin = store.meta().context("reading the log's origin")?.origin;
    let size = store.size().context("reading the log's size")?.get();
    let tmp;
    let path = match out {
        Some(p) => {
            remove_db(&p)?;
            p
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().join("web-index.db")
        }
    };
    eprintln!(
        "web-index: {size} entries of {} into {}",
        dir.display(),
        path.display()
    );

    // 1. The limit: read and parse.
    let Read {
        entries: read,
        record_bytes,
        read_secs,
        parse_secs,
    } = read_and_parse(store.as_ref(), size, limit)?;
    let read_rate = rate(read, read_secs);
    let limit_rate = rate(read, read_secs + parse_secs);
    eprintln!(
        "web-index: limit: {read} entries read in {read_secs:.1} s, parsed in {parse_secs:.1} s"
    );

    // 2. The index.
    let started = Instant::now();
    let index = Index::open(&path, &origin).context("opening the index")?;
    let mut indexed = 0;
    while started.elapsed() < limit {
        let c = index
            .catch_up(store.as_ref(), ROUND)
            .context("building the index")?;
        indexed = c.indexed;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "web-index: {indexed} of {size} entries indexed, {secs:.0} s, {:.0} entries/s",
            rate(indexed, secs)
        );
        if c.complete() {
            break;
        }
    }
    // Closing checkpoints the WAL into the file: the size is that of the
    // file a restart opens.
    drop(index);
    let secs = started.elapsed().as_secs_f64();
    let bytes = db_bytes(&path);
    let per_s = rate(indexed, secs);

    println!("web_index_entries: {indexed}");
    println!("web_index_log_entries: {size}");
    println!("web_index_seconds: {secs:.2}");
    println!("web_index_entries_per_s: {per_s:.0}");
    println!("web_index_read_per_s: {read_rate:.0}");
    println!("web_index_limit_per_s: {limit_rate:.0}");
    println!(
        "web_index_ratio_to_limit: {:.3}",
        if limit_rate > 0.0 {
            per_s / limit_rate
        } else {
            0.0
        }
    );
    println!("web_index_bytes: {bytes}");
    // The records' own bytes, as submitted (the log may store them
    // compressed), for a disk-per-record-byte figure.
    println!("log_entries_read: {read}");
    println!("log_record_bytes: {record_bytes}");
    println!(
        "web_index_bytes_per_entry: {:.0}",
        bytes as f64 / indexed.max(1) as f64
    );
    Ok(())
}

/// What [`read_and_parse`] did.
struct Read {
    entries: u64,
    /// The record bytes of those entries, as submitted.
    record_bytes: u64,
    read_secs: f64,
    parse_secs: f64,
}

/// Reads up to `size` entries in chunks and parses each; stops after
/// `limit`.
fn read_and_parse(store: &dyn LogStore, size: u64, limit: Duration) -> Result<Read> {
    let started = Instant::now();
    let (mut read_secs, mut parse_secs) = (0.0, 0.0);
    let mut record_bytes = 0u64;
    let mut done = 0;
    let mut parsed = 0u64;
    let mut reported = Instant::now();
    while done < size && started.elapsed() < limit {
        let t = Instant::now();
        let entries = store
            .entries(LeafIndex(done), CHUNK.min(size - done))
            .context("reading the log")?;
        read_secs += t.elapsed().as_secs_f64();
        let Some(last) = entries.last() else { break };
        done = last.index.get() + 1;
        let t = Instant::now();
        for e in &entries {
            record_bytes += e.data.len() as u64;
            parsed += u64::from(daylight_schemas::SignedRecord::parse(&e.data).is_ok());
        }
        parse_secs += t.elapsed().as_secs_f64();
        if reported.elapsed() > ROUND {
            eprintln!("web-index: limit: {done} of {size} entries read and parsed");
            reported = Instant::now();
        }
    }
    if parsed < done {
        eprintln!(
            "web-index: {} of {done} entries are not records",
            done - parsed
        );
    }
    Ok(Read {
        entries: done,
        record_bytes,
        read_secs,
        parse_secs,
    })
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// The database's files: `path` and its WAL and shared-memory files.
fn db_files(path: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

/// Removes an earlier index at `path`: the bench builds a fresh one.
fn remove_db(path: &Path) -> Result<()> {
    for p in db_files(path) {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", p.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Bytes of the database's files on disk.
fn db_bytes(path: &Path) -> u64 {
    db_files(path)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
