//! `daylight bench mirror`: a C2SP tlog-mirror's ingest rate against the
//! integration rate of the log it mirrors, measured in the same run and
//! process (issue 17).
//!
//! 1. The log alone: N synthetic entries integrated into a new log (`log
//!    init`, then `bench fill`'s own integration loop), no mirror.
//! 2. A mirror called directly, no HTTP: the log's checkpoint goes in with
//!    `add-checkpoint`, then every package of `[0, N)` (built beforehand
//!    from the log's store with core's encoder and `package_proof`, and
//!    parsed with core's parser, as the mirror's server does) is verified
//!    and stored, and the upload finished (root re-derived, cosigned). The
//!    same packages' proof checks, the stored hashes computed in memory and
//!    as many empty durable SQLite commits as packages, each timed apart,
//!    say where the mirror's time goes; the rest is SQLite's other work.
//! 3. End to end over HTTP: a second, empty mirror serves on a free port,
//!    the log gets it with mirror quorum 1 and starts serving; the time
//!    until the log publishes the checkpoint of N entries with the
//!    mirror's cosignature (the log reads, proves and gzips each request
//!    of 32 packages, the mirror verifies, stores, cosigns).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::mirror_protocol::{
    package_proof, AddEntriesEncoder, AddEntriesHeader, AddEntriesParser, EntryPackage, ParseEvent,
};
use daylight_core::tree::MemoryTree;
use daylight_core::witness_protocol::AddCheckpoint;
use daylight_core::{Checkpoint, LeafIndex, Note, TreeSize, VerifierKey};
use daylight_log_server::store::{LogStore, StoreHashes};
use daylight_mirror::{Mirror, DB_FILE, KEY_FILE};

use crate::key::read_signer;

/// The bench log's origin.
const ORIGIN: &str = "bench.daylight.example/mirror";
/// How often the log's checkpoint is polled in the HTTP phase.
const POLL: Duration = Duration::from_millis(20);

/// Runs the bench with `n` entries in `dir` (or a temporary directory);
/// the HTTP phase gives up after `limit`.
pub(super) fn run(n: u64, dir: Option<PathBuf>, limit: Duration) -> Result<()> {
    let tmp;
    let root = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    eprintln!(
        "mirror: a log and two mirrors of {n} entries in {}",
        root.display()
    );
    let log_dir = root.join("log");
    let log_vkey = crate::log::init(&log_dir, ORIGIN, 0, None)?;
    let store = crate::log::open(&log_dir)?;
    let key = read_signer(&log_dir.join("log.key"))?;

    // 1. The log alone.
    settle();
    let started = Instant::now();
    super::integrate_synthetic(store.as_ref(), &key, ORIGIN, n)?;
    let integrated = started.elapsed();

    // 2. A mirror called directly.
    let direct = direct(store.as_ref(), &root.join("mirror-direct"), &log_vkey, n)?;

    // 3. Over HTTP, with mirror quorum 1.
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let http = runtime.block_on(over_http(
        store.as_ref(),
        &log_dir,
        &root.join("mirror-http"),
        &log_vkey,
        n,
        limit,
    ))?;

    print_table(n, integrated, &direct, http);
    Ok(())
}

/// Phase 2's timings.
struct Direct {
    /// Packages of the upload.
    packages: usize,
    /// add-checkpoint, every `store_package`, `finish_upload`.
    total: Duration,
    /// `finish_upload` alone (root re-derived from stored hashes, cosigned).
    finish: Duration,
    /// The packages' verification alone (leaf hashes, subtree hash, proof).
    verify: Duration,
    /// The stored hashes of N leaves alone, in memory (leaf hash again and
    /// the interior nodes each leaf completes).
    stored_hashes: Duration,
    /// As many one-row durable transactions as packages, alone, in a
    /// database beside the mirror's opened the same way (WAL,
    /// `synchronous=FULL`): what the commits cost without the rows.
    commits: Duration,
}

/// A fresh mirror in `dir` of the log in `store` (key `log_vkey`): its
/// ingest of the whole log, called directly, and where the time goes.
fn direct(store: &dyn LogStore, dir: &Path, log_vkey: &VerifierKey, n: u64) -> Result<Direct> {
    let mirror = new_mirror(dir, log_vkey)?;
    let note = store
        .latest_checkpoint()?
        .context("the log has no checkpoint")?;
    let checkpoint = Checkpoint::parse_text(Note::parse(&note)?.text())?;
    if checkpoint.size.get() != n {
        bail!("the log has {} entries, not {n}", checkpoint.size);
    }
    let header = AddEntriesHeader {
        origin: ORIGIN.to_owned(),
        upload_start: LeafIndex(0),
        upload_end: checkpoint.size,
        ticket: Vec::new(),
    };
    eprintln!("mirror: building the packages of [0, {n}) from the log's store");
    let packages = packages(store, &header)?;

    settle();
    eprintln!("mirror: verifying the packages alone");
    let t = Instant::now();
    for p in &packages {
        p.verify(&[], checkpoint.size, checkpoint.root)
            .map_err(|e| anyhow!("a package the log built does not verify: {e}"))?;
    }
    let verify = t.elapsed();

    eprintln!("mirror: the stored hashes of {n} leaves alone, in memory");
    let t = Instant::now();
    let mut tree = MemoryTree::with_capacity(n);
    for entry in packages.iter().flat_map(EntryPackage::entries) {
        tree.append(entry);
    }
    let stored_hashes = t.elapsed();
    drop(tree);

    eprintln!("mirror: {} empty durable commits alone", packages.len());
    let commits = commit_probe(&dir.join("commit-probe.db"), packages.len())?;

    eprintln!(
        "mirror: ingesting {} packages (verify, store, cosign)",
        packages.len()
    );
    let started = Instant::now();
    mirror.add_checkpoint(
        &AddCheckpoint {
            old: TreeSize(0),
            proof: Vec::new(),
            checkpoint: note,
        }
        .to_bytes(),
    )?;
    let upload = mirror.begin_upload(&header)?;
    for p in &packages {
        mirror.store_package(&upload, p)?;
    }
    let t = Instant::now();
    mirror.finish_upload(&upload, unix_now())?;
    let finish = t.elapsed();
    Ok(Direct {
        packages: packages.len(),
        total: started.elapsed(),
        finish,
        verify,
        stored_hashes,
        commits,
    })
}

/// `count` transactions of one small row each in a new database at `db`,
/// opened as the mirror opens its own; how long they took.
fn commit_probe(db: &Path, count: usize) -> Result<Duration> {
    daylight_mirror::store::create(db)?;
    let conn = daylight_mirror::store::open(db)?;
    conn.execute_batch("CREATE TABLE probe (x INTEGER)")?;
    settle();
    let t = Instant::now();
    for _ in 0..count {
        conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO probe VALUES (1); COMMIT;")?;
    }
    Ok(t.elapsed())
}

/// Every package of `header`'s canonical sequence as a mirror receives it:
/// encoded from the log's entries and stored hashes with core's encoder and
/// `package_proof`, then parsed with core's parser.
fn packages(store: &dyn LogStore, header: &AddEntriesHeader) -> Result<Vec<EntryPackage>> {
    let mut body = Vec::new();
    let mut encoder = AddEntriesEncoder::new(header, &mut body)?;
    let hashes = StoreHashes::new(store);
    while let Some(range) = encoder.next_package() {
        let entries = store.entries(range.start, range.entry_count() as u64)?;
        let data: Vec<&[u8]> = entries.iter().map(|e| e.data.as_slice()).collect();
        let proof = package_proof(range, header.upload_end, &hashes)
            .map_err(|e| anyhow!("proving package [{}, {}): {e}", range.start, range.end))?;
        encoder.push_package(&data, &proof, &mut body)?;
    }
    let mut parser = AddEntriesParser::new();
    parser.push(&body);
    drop(body);
    let mut out = Vec::new();
    while let Some(event) = parser.next_event()? {
        if let ParseEvent::Package(p) = event {
            out.push(p);
        }
    }
    Ok(out)
}

/// A new mirror in `dir` (as `daylight mirror init` and `add-log` make it)
/// that accepts the bench log.
fn new_mirror(dir: &Path, log_vkey: &VerifierKey) -> Result<Mirror> {
    crate::mirror::init(dir, &format!("{}.bench.example", dir_name(dir)))?;
    let db = dir.join(DB_FILE);
    let mut conn = daylight_mirror::store::open(&db)?;
    daylight_mirror::store::add_log(&mut conn, ORIGIN, log_vkey, unix_now())?;
    drop(conn);
    Ok(Mirror::open(&db, read_signer(&dir.join(KEY_FILE))?)?)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mirror".to_owned())
}

/// Phase 3: a mirror served in `dir`, added to the log in `log_dir` with
/// mirror quorum 1; the time from the log's start until it publishes the
/// checkpoint of `n` entries with the mirror's valid cosignature.
async fn over_http(
    store: &dyn LogStore,
    log_dir: &Path,
    dir: &Path,
    log_vkey: &VerifierKey,
    n: u64,
    limit: Duration,
) -> Result<Duration> {
    let mirror = Arc::new(new_mirror(dir, log_vkey)?);
    let mirror_key = mirror.verifier().clone();
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let listener =
        daylight_log_server::server::listen(any_port).context("binding the mirror's port")?;
    let mirror_url = format!("http://{}", listener.local_addr()?);
    let (stop_mirror, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(daylight_mirror::serve(listener, mirror, async {
        let _ = stopped.await;
    }));
    store.add_mirror(&mirror_key, &mirror_url)?;
    store.set_mirror_quorum(1)?;
    settle();
    eprintln!("mirror: serving the log with mirror quorum 1, pushing to {mirror_url}");
    let started = Instant::now();
    let log = crate::log::log_server(log_dir, 0.0, &Default::default(), None)?
        .spawn(any_port)
        .await
        .context("starting the log")?;
    let waited = wait_published(&log.url(), n, &mirror_key, started + limit).await;
    let elapsed = started.elapsed();
    log.stop().await?;
    let _ = stop_mirror.send(());
    server.await.context("the mirror's task")??;
    waited?;
    Ok(elapsed)
}

/// Polls `log`'s checkpoint until it is of `n` entries and carries a valid
/// cosignature by `mirror_key`, or `deadline` passes.
async fn wait_published(
    log: &str,
    n: u64,
    mirror_key: &VerifierKey,
    deadline: Instant,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    loop {
        if let Ok(r) = client.get(format!("{log}/checkpoint")).send().await {
            if r.status().is_success() {
                let bytes = r.bytes().await?;
                let note = Note::parse(&bytes)?;
                let size = Checkpoint::parse_text(note.text())?.size.get();
                if size == n && !verify_cosignatures(&note, &[mirror_key])?.is_empty() {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the log did not publish a mirror-cosigned checkpoint of {n} entries in time");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Writes back everything dirty in the page cache before a timed phase, so
/// one phase's writeback does not land in the next one's `fsync`s.
fn settle() {
    rustix::fs::sync();
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The table for BENCHMARKS.md and where the direct mirror's time goes.
fn print_table(n: u64, integrated: Duration, d: &Direct, http: Duration) {
    let rate = |t: Duration| n as f64 / t.as_secs_f64().max(f64::EPSILON);
    let base = rate(integrated);
    println!("{n} entries (\"synthetic entry I\", 17-23 bytes), one run, this process");
    println!();
    println!("| what | time | entries/s | ratio to the log's integration |");
    println!("| --- | --- | --- | --- |");
    let row = |what: &str, t: Duration| {
        println!(
            "| {what} | {:.2} s | {:.0} | {:.2} |",
            t.as_secs_f64(),
            rate(t),
            rate(t) / base
        );
    };
    row("log integration alone (no mirror)", integrated);
    row(
        "mirror ingest, called directly (verify, store, cosign)",
        d.total,
    );
    row(
        "mirror ingest over HTTP, mirror quorum 1 (log start to published, mirror-cosigned)",
        http,
    );
    row(
        "end to end: integrate, then publish with mirror quorum 1",
        integrated + http,
    );
    println!();
    let s = |t: Duration| t.as_secs_f64();
    let pct = |t: Duration| 100.0 * s(t) / s(d.total).max(f64::EPSILON);
    let rest = d
        .total
        .saturating_sub(d.verify + d.stored_hashes + d.finish + d.commits);
    println!(
        "where the direct ingest's {:.2} s go ({} packages, one SQLite transaction each):",
        s(d.total),
        d.packages
    );
    println!(
        "- package verification (leaf hashes, subtree hash, consistency proof), timed alone: {:.2} s ({:.0}%)",
        s(d.verify),
        pct(d.verify)
    );
    println!(
        "- stored hashes (leaf hash again, interior nodes), timed alone in memory: {:.2} s ({:.0}%)",
        s(d.stored_hashes),
        pct(d.stored_hashes)
    );
    println!(
        "- finish (root from stored hashes, cosign, commit): {:.3} s ({:.1}%)",
        s(d.finish),
        pct(d.finish)
    );
    println!(
        "- SQLite's durable commits (WAL fsync), one per package, timed alone with one-row transactions: {:.2} s ({:.0}%)",
        s(d.commits),
        pct(d.commits)
    );
    println!(
        "- the rest, SQLite's other work (reading stored hashes, inserting entries and hashes, WAL writes): {:.2} s ({:.0}%)",
        s(rest),
        pct(rest)
    );
    println!(
        "over HTTP: {:.2} s against {:.2} s called directly ({:+.2} s: the log's start, \
         reading entries and proofs from its store, gzip, the wire, parsing, publishing)",
        s(http),
        s(d.total),
        s(http) - s(d.total)
    );
}
