//! `daylight log migrate`: a log that started on one machine (SQLite) moves
//! to PostgreSQL without a new origin. Every entry is copied in order and
//! integrated anew (its leaf hash recomputed from its bytes, every stored
//! hash derived again), and the copy must reach the very root the old log
//! signed; only then does the log's directory point at the database.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use daylight_core::tree::tree_hash;
use daylight_core::{leaf_hash, Checkpoint, LeafIndex, Note, SignedCheckpoint, TreeSize};
use daylight_log_server::admission::{Admission as _, RecordAdmission};
use daylight_log_server::integrate::integrate;
use daylight_log_server::postgres::PostgresStore;
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::{load_published, LogStore, NewEntry, StoreHashes};

use crate::key::read_signer;

/// Entries copied per transaction.
const CHUNK: u64 = 10_000;

/// What a migration did.
pub struct Migrated {
    /// Entries copied.
    pub entries: u64,
    /// The root both logs reach.
    pub root: daylight_core::Hash,
    /// The newest published checkpoint's size, if any.
    pub published: Option<TreeSize>,
}

/// Copies the SQLite log in `dir` into the (empty) database `url`, checks
/// the copy, and records the URL in `dir` so every command uses it.
pub fn migrate(dir: &Path, url: &str, database_file: &Path) -> Result<Migrated> {
    let source_path = dir.join("log.db");
    if database_file.exists() {
        bail!(
            "{} already names a database: this log has moved",
            database_file.display()
        );
    }
    let source = SqliteStore::open(&source_path)
        .with_context(|| format!("opening the log in {}", dir.display()))?;
    // Hold the sequencer lease for the whole copy, so no `log serve` can
    // start sequencing (and acknowledge entries the copy would miss).
    let me = daylight_log_server::leader::LeaseConfig::named("migrate").holder;
    let dead = daylight_log_server::leader::dead_holder(&source)?;
    let Some(lease) = source.acquire_lease(&me, LEASE, dead.as_deref())? else {
        let holder = source.lease_state()?.map(|l| l.holder).unwrap_or_default();
        bail!(
            "the log is being served (by {holder}); stop `daylight log serve` before migrating it"
        );
    };
    let result = copy(&source, dir, url, database_file);
    if let Err(e) = source.release_lease(&me, lease) {
        eprintln!("daylight: releasing the log's lease: {e}");
    }
    result
}

/// How long migrate holds the source log's lease: longer than any copy.
const LEASE: Duration = Duration::from_secs(24 * 3600);

fn copy(source: &SqliteStore, dir: &Path, url: &str, database_file: &Path) -> Result<Migrated> {
    let key = read_signer(&dir.join("log.key"))?;
    let meta = source.meta()?;
    if key.name().as_str() != meta.origin {
        bail!(
            "{}: the key is named {:?} but the log's origin is {:?}",
            dir.join("log.key").display(),
            key.name().as_str(),
            meta.origin
        );
    }
    let size = source.size()?;
    let latest = source
        .latest_checkpoint()?
        .context("the log has no signed checkpoint")?;
    let signed = SignedCheckpoint::open(&latest, key.verifier())
        .context("the log's newest checkpoint does not open with its key")?;
    if signed.checkpoint.size != size {
        bail!(
            "the log's newest checkpoint is for size {} but it holds {size} entries",
            signed.checkpoint.size
        );
    }

    // First a pass that writes nothing: every leaf hash recomputed from its
    // bytes, and the root they give, against what the log signed.
    let mut frontier = daylight_auditor::mirror::Frontier::default();
    let mut at = 0u64;
    while at < size.get() {
        let chunk = source.entries(LeafIndex(at), CHUNK)?;
        if chunk.is_empty() {
            bail!("the log ended at entry {at} of {size}");
        }
        for e in &chunk {
            let recomputed = leaf_hash(&e.data);
            if recomputed != e.leaf_hash {
                bail!(
                    "entry {}: its stored leaf hash is not the hash of its bytes; nothing was copied",
                    e.index
                );
            }
            frontier.push(recomputed);
        }
        at += chunk.len() as u64;
    }
    if frontier.root() != signed.checkpoint.root {
        bail!(
            "the log's entries give the root {}, which differs from the signed root {}: nothing was copied",
            frontier.root(),
            signed.checkpoint.root
        );
    }

    let target = PostgresStore::create(url, &meta.origin, meta.quorum).context("--database")?;
    let started = Instant::now();
    let mut reported = Instant::now();
    let mut done = 0u64;
    if size.get() == 0 {
        integrate(&target, &key, &meta.origin, Vec::new())?;
    }
    while done < size.get() {
        let chunk = source.entries(LeafIndex(done), CHUNK)?;
        if chunk.is_empty() {
            bail!("the log ended at entry {done} of {size}");
        }
        let mut batch = Vec::with_capacity(chunk.len());
        for e in chunk {
            let recomputed = leaf_hash(&e.data);
            if recomputed != e.leaf_hash {
                bail!(
                    "entry {}: its stored leaf hash is not the hash of its bytes",
                    e.index
                );
            }
            batch.push(NewEntry {
                leaf_hash: recomputed,
                kind: String::new(),
                signer: String::new(),
                packed: None,
                data: e.data,
            });
        }
        // Kind and signer are query columns the admission path filled.
        fill_columns(source, done, &mut batch)?;
        let n = batch.len() as u64;
        integrate(&target, &key, &meta.origin, batch)?;
        done += n;
        // Progress for a person watching; errors stay one line for scripts.
        let watched = std::io::stderr().is_terminal();
        if watched && (reported.elapsed() > Duration::from_secs(2) || done == size.get()) {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprintln!("migrate: {done} of {size} entries copied ({rate:.0}/s)");
            reported = Instant::now();
        }
    }

    // The copy must derive the root the old log signed.
    let root = tree_hash(size, &StoreHashes::new(&target))?;
    if root != signed.checkpoint.root {
        bail!(
            "the copy's root {root} differs from the signed root {}: nothing was switched over",
            signed.checkpoint.root
        );
    }
    let copied = target
        .latest_checkpoint()?
        .context("the copy has no checkpoint")?;
    let copied_cp = Checkpoint::parse_text(Note::parse(&copied)?.text())?;
    if copied_cp.root != root || copied_cp.size != size {
        bail!("the copy's newest checkpoint does not match the old log's");
    }
    if source.size()? != size {
        bail!("the log grew during the copy: nothing was switched over; run migrate again");
    }
    for w in source.witnesses()? {
        target.add_witness(&w.key, &w.url)?;
        target.set_witness_size(&w.key, w.known_size)?;
    }
    let published = load_published(source)?;
    if let Some(p) = &published {
        target.publish(p.checkpoint.size, &p.bytes)?;
    }
    crate::key::write_secret_text(database_file, url)?;
    Ok(Migrated {
        entries: size.get(),
        root,
        published: published.map(|p| p.checkpoint.size),
    })
}

/// Copies the kind and signer columns of entries `start..` from the source.
fn fill_columns(source: &SqliteStore, start: u64, batch: &mut [NewEntry]) -> Result<()> {
    let columns = source.entry_columns(LeafIndex(start), batch.len() as u64)?;
    if columns.len() != batch.len() {
        bail!(
            "the log's columns for entries {start}.. have {} rows, not {}",
            columns.len(),
            batch.len()
        );
    }
    for (e, (kind, signer)) in batch.iter_mut().zip(columns) {
        e.kind = kind;
        e.signer = signer;
    }
    Ok(())
}

/// Publishes the migrated log's tiles (for `--publish-dir` / `--publish`).
pub fn publish(
    store: Arc<dyn LogStore>,
    target: daylight_log_server::publish::Target,
    key: &daylight_core::VerifierKey,
) -> Result<u64> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let key = key.clone();
    runtime.block_on(async move {
        let s = store.clone();
        let (meta, published) = tokio::task::spawn_blocking(move || -> Result<_> {
            Ok((s.meta()?, load_published(s.as_ref())?))
        })
        .await??;
        let Some(p) = published else {
            bail!("the log has no published checkpoint yet: nothing to publish");
        };
        let from = target
            .checkpoint(&meta.origin)
            .await?
            .map_or(TreeSize(0), |c| c.size);
        let s = store.clone();
        let size = p.checkpoint.size;
        let info = tokio::task::spawn_blocking(move || {
            // The registry gives the log's keys over time and its witnesses now.
            let rules = RecordAdmission::new(key.clone());
            rules.refresh(s.as_ref());
            daylight_log_server::api::log_info_json(
                s.as_ref(),
                Some(&rules),
                &key,
                meta.quorum,
                size.get(),
            )
        })
        .await??;
        let round =
            daylight_log_server::publish::publish(&store, &target, from, size, &p.bytes, &info)
                .await?;
        Ok(round.objects)
    })
}
