//! The embedded SQLite backend: one database file, WAL mode, one writer
//! connection and a few reader connections (WAL lets reads run beside the
//! writer).

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use daylight_core::{Hash, LeafIndex, TreeSize, VerifierKey};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::codec::{self, Codec};
use crate::dedup::{self, Dedup};
use crate::durability::SyncGroup;
use crate::pool::Pool;
use crate::store::{
    refusals_cutoff, unix_ms, Append, Durable, HashCache, KeyCache, Lease, LeaseState, LogMeta,
    LogStore, MirrorSet, NewEntry, QueueRefusal, Settled, StoreError, StoredEntry, WitnessConfig,
};

/// Reader connections. Four were too few under the mixed load at 10M
/// (bundles for an auditor, proofs, pages and the write path's lookups at
/// once): a read waited 0.7 ms on average for one to be free; with eight,
/// almost never. Ten: the reading pools' eight threads
/// ([`crate::read_pool`], the tiles' at a lower priority) can hold eight at
/// once, and the write path's own reads must not wait for them.
const READERS: usize = 2 * crate::read_pool::READ_THREADS + 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    data BLOB NOT NULL,
    kind TEXT NOT NULL,
    signer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hashes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS published (size INTEGER PRIMARY KEY, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS witnesses (
    vkey TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    known_size INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS mirrors (vkey TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    leaf_hash BLOB NOT NULL UNIQUE,
    data BLOB NOT NULL,
    kind TEXT NOT NULL,
    signer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    leaf_hash BLOB PRIMARY KEY,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
";

/// Indexes of a log created by this version: the registry's entries (the
/// only kind looked up by kind), and the leaf-hash runs ([`dedup`]). Logs
/// created before keep their `UNIQUE` leaf-hash index and their indexes by
/// kind and signer (see [`Lookup::Index`]).
const NEW_LOG_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS entries_registry ON entries(idx) WHERE kind = 'registry';
CREATE TABLE IF NOT EXISTS hash_blocks (block INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, dict BLOB);
";

/// The `meta` key saying that a log compresses its records
/// ([`Records::Compressed`]); absent in logs created before.
const RECORD_CODEC_KEY: &str = "record_codec";

/// How a log keeps its entries' record bytes.
enum Records {
    /// As they came (logs created before the compression).
    Raw,
    /// Compressed with a dictionary trained on the log's first
    /// [`codec::TRAIN_AT`] entries, once it holds them: `entries.dict` names
    /// the row of `dictionaries` an entry was compressed with (NULL: raw).
    /// A `dictionaries` row whose `dict` is NULL records that training made
    /// no useful dictionary (records that do not compress), so it is not
    /// tried again. Training runs on a thread of its own (about 0.6 s of
    /// CPU), not inside an append: appends go on, raw, until it is done.
    Compressed(Arc<RwLock<Dictionaries>>),
}

/// The dictionaries a log has, read at open and when a row names one not
/// yet seen (another process trained it).
#[derive(Default)]
struct Dictionaries {
    by_id: std::collections::HashMap<u32, Arc<Codec>>,
    /// What new entries are compressed with, once trained.
    current: Option<Arc<Codec>>,
    /// Training has been done (a row exists), useful or not.
    trained: bool,
    /// This process has started a training thread.
    started: bool,
}

/// Stored hashes per row of `hash_blocks` in a new log: block `b` holds the
/// stored hashes `b * 255 ..`, 32 bytes each, and only the newest block is
/// ever partial (each append rewrites it). One row per 255 hashes instead
/// of one per hash: a batch writes about 1/128 of a row per entry where it
/// wrote two, and a proof's low hashes, which sit near each other, come
/// from one or two rows. 255 rather than 256: two rows of 255 hashes fill
/// a 16 KB page, where one row of 256 (8 KB and its header) leaves half of
/// its page empty.
const HASH_BLOCK: u64 = 255;

/// The `meta` key naming how a log keeps its stored hashes; `blocks` in a
/// log created by this version, absent (one row per hash in `hashes`) in
/// logs created before.
const HASH_LAYOUT_KEY: &str = "hash_layout";

/// How a log keeps its stored hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HashLayout {
    /// One row per stored hash in `hashes` (logs created before the blocks).
    Rows,
    /// [`HASH_BLOCK`] hashes per row of `hash_blocks`.
    Blocks,
}

/// How entries are found by leaf hash.
enum Lookup {
    /// A log created before the runs: its `UNIQUE` index on `leaf_hash`.
    Index,
    /// The runs and the map of the newest entries (boxed: one per store).
    Runs(Box<RwLock<Dedup>>),
}

/// The SQLite store.
pub struct SqliteStore {
    /// The database file's path, for the dictionary's training thread.
    path: std::path::PathBuf,
    /// That thread, once started.
    training: Mutex<Option<std::thread::JoinHandle<()>>>,
    lookup: Lookup,
    hash_layout: HashLayout,
    records: Records,
    writer: Mutex<Writer>,
    readers: Pool<Connection>,
    /// Upper stored hashes, kept in memory.
    upper: HashCache,
    /// The filesystem syncs after each append (of the database file's
    /// filesystem, by [`sync_filesystem`]).
    syncs: Arc<SyncGroup>,
    /// Witness and mirror keys, parsed once.
    keys: KeyCache,
}

/// The page size of a new log's file. An entry is about 1 KB, so a 4 KB
/// page (SQLite's default) holds three and leaves about a quarter of itself
/// empty; a 16 KB page holds fifteen. Set once, when the file is made.
pub const NEW_LOG_PAGE_SIZE: u32 = 16 * 1024;

/// The WAL file is cut back to this after a checkpoint; without a limit it
/// keeps the size of the largest batch ever written (`bench fill` writes
/// batches of 100,000 entries).
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    if !has_content(path) {
        conn.execute_batch(&format!("PRAGMA page_size={NEW_LOG_PAGE_SIZE};"))?;
    }
    // FULL: a commit survives power loss, not only a process crash (the
    // appends switch to NORMAL, made durable by the group's syncfs instead:
    // `CommitSync`).
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit={WAL_SIZE_LIMIT};"
    ))?;
    Ok(conn)
}

/// Whether the file at `path` already holds a database (SQLite fixes the
/// page size when it writes the first page).
fn has_content(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Syncs the filesystem holding `file` and reports whether it is still
/// healthy, after a commit and before the batch is acknowledged.
///
/// SQLite's own `fsync` of the WAL is not enough (and the appends skip it,
/// [`CommitSync`]): on Linux 6.18
/// an ext4 journal abort racing with that `fsync` can let it succeed for an
/// append the abort then discards (`daylight/tests/read_only.rs` found it;
/// RELIABILITY.md has the figures). `syncfs` fails once the filesystem is
/// marked read-only after the abort, so a batch that raced the fault is
/// refused (and its submitters retry) instead of acknowledged and lost.
///
/// Nor is a `syncfs` that succeeds enough: one begun between ext4's journal
/// abort and its read-only flag can return success without writing pages
/// whose blocks still need allocating (without the probe, the test lost an
/// acknowledged entry in 4 of 470 runs). So after it,
/// `journal_accepts_writes` asks for a journal transaction, which ext4
/// refuses from the moment of the abort: if one starts after the sync
/// returned, the journal had not aborted during it.
///
/// It runs in a [`SyncGroup`]: after the commit, while the next batch is
/// built, and once for every commit that returned before it began. Once
/// one fails, the store begins no write until it is opened again (a commit
/// already begun may land, never to be acknowledged): a later sync that
/// succeeds does not prove the earlier writes reached the disk (see
/// [`crate::durability`]).
#[cfg(target_os = "linux")]
fn sync_filesystem(file: &std::fs::File, probe: &std::fs::File) -> Result<(), String> {
    rustix::fs::syncfs(file).map_err(|e| format!("syncfs: {e}"))?;
    journal_accepts_writes(probe)
}

/// The sync of the filesystem holding the database at `path` (see
/// [`sync_filesystem`]), with the probe file it resizes: unnamed and this
/// store's own, so no other store's resize can make one of its own a no-op.
#[cfg(target_os = "linux")]
fn filesystem_sync(path: &Path) -> Result<crate::durability::SyncFn, StoreError> {
    let file = std::fs::File::open(path)
        .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let probe = tempfile::tempfile_in(dir).map_err(|e| {
        StoreError::Unwritable(format!("making a probe file in {}: {e}", dir.display()))
    })?;
    Ok(Box::new(move || sync_filesystem(&file, &probe)))
}

/// Elsewhere SQLite's own sync of each commit is the one ([`CommitSync`]).
#[cfg(not(target_os = "linux"))]
fn filesystem_sync(_path: &Path) -> Result<crate::durability::SyncFn, StoreError> {
    Ok(Box::new(|| Ok(())))
}

/// Changes the size of `probe` between 0 and 1 byte: a change ext4 makes
/// in a journal transaction, refused once the journal has aborted. Nothing
/// is synced. The file is the caller's alone, so the size always changes.
#[cfg(target_os = "linux")]
fn journal_accepts_writes(probe: &std::fs::File) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("a journal transaction after syncfs: {e}");
    let len = probe.metadata().map_err(failed)?.len();
    probe.set_len(u64::from(len == 0)).map_err(failed)
}

pub(crate) fn u64_of(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

pub(crate) fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{v} exceeds SQLite's integer range")))
}

pub(crate) fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::from_slice(&bytes)
        .ok_or_else(|| StoreError::Corrupt("stored hash is not 32 bytes".into()))
}

impl SqliteStore {
    /// Creates a new log database. Fails if one already exists at `path`.
    pub fn create(path: &Path, origin: &str, quorum: usize) -> Result<SqliteStore, StoreError> {
        if path.exists() {
            return Err(StoreError::Backend(format!(
                "{} already exists",
                path.display()
            )));
        }
        let conn = connect(path)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(NEW_LOG_SCHEMA)?;
        // `stored`, not `data`: a binary from before the compression fails
        // on this file instead of serving compressed bytes as records.
        conn.execute_batch(
            "ALTER TABLE entries RENAME COLUMN data TO stored;
             ALTER TABLE entries ADD COLUMN dict INTEGER;",
        )?;
        conn.execute_batch(dedup::SCHEMA)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('origin', ?1), ('quorum', ?2), (?3, 'blocks'), (?4, 'zstd'), (?5, ?6)",
            params![
                origin,
                quorum.to_string(),
                HASH_LAYOUT_KEY,
                RECORD_CODEC_KEY,
                dedup::FILTER_SHAPE_KEY,
                dedup::BLOCKS_VALUE
            ],
        )?;
        drop(conn);
        Self::open(path)
    }

    /// Opens an existing log database.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Backend(format!(
                "no log database at {}",
                path.display()
            )));
        }
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA)?;
        let lookup = if has_unique_leaf_index(&writer)? {
            Lookup::Index
        } else {
            // A no-op but for a file whose `create` stopped half way.
            writer.execute_batch(dedup::SCHEMA)?;
            let format = dedup::RunFormat::from_meta(
                meta_value(&writer, dedup::FILTER_SHAPE_KEY)?.as_deref(),
            )?;
            Lookup::Runs(Box::new(RwLock::new(Dedup::load(&writer, format)?)))
        };
        let hash_layout = hash_layout(&writer)?;
        let records = records(&writer)?;
        let readers = (0..READERS)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>, _>>()?;
        let readers = Pool::new(readers);
        let sync = filesystem_sync(path)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            training: Mutex::new(None),
            lookup,
            hash_layout,
            records,
            writer: Mutex::new(Writer {
                conn: writer,
                commits: CommitSync::Full,
            }),
            readers,
            upper: HashCache::default(),
            syncs: SyncGroup::new(sync),
            keys: KeyCache::default(),
        })
    }

    /// The kind and signer columns of up to `count` entries from `start`,
    /// in order (what `daylight log migrate` carries over).
    pub fn entry_columns(
        &self,
        start: LeafIndex,
        count: u64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (lo, n) = (i64_of(start.get())?, i64_of(count)?);
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, signer FROM entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![lo, n], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.map(|r| Ok(r?)).collect()
        })
    }

    /// The `entries` columns of an [`EntryRow`] after `idx`, for SELECTs.
    fn entry_columns_sql(&self) -> &'static str {
        match self.records {
            Records::Raw => "data, leaf_hash, NULL",
            Records::Compressed(_) => "stored, leaf_hash, dict",
        }
    }

    /// An entry as read from `entries`, its record bytes decompressed.
    fn row_entry(&self, c: &Connection, row: EntryRow) -> Result<StoredEntry, StoreError> {
        let (idx, data, leaf, dict) = row;
        let index = u64_of(idx, "index")?;
        let data = match dict {
            None => data,
            Some(id) => self
                .codec(c, id)?
                .decompress(&data, daylight_core::tile::MAX_ENTRY_SIZE)
                .map_err(|e| StoreError::Corrupt(format!("entry {index}: {e}")))?,
        };
        Ok(StoredEntry {
            index: LeafIndex(index),
            data,
            leaf_hash: hash_of(leaf)?,
        })
    }

    /// Starts training the log's dictionary on a thread of its own, unless
    /// it is trained or this process has started already.
    /// Never fails: it runs after a batch has been committed, and entries
    /// are stored raw until a dictionary is installed.
    fn start_training(&self, d: &Arc<RwLock<Dictionaries>>) {
        {
            let Ok(mut d) = d.write() else { return };
            if d.trained || d.started {
                return;
            }
            d.started = true;
        }
        let (path, dicts, syncs) = (self.path.clone(), Arc::clone(d), self.syncs.clone());
        let handle = std::thread::Builder::new()
            .name("record-dictionary".into())
            .spawn(move || {
                // Started from the write path's raised step (`priority`): a
                // minute of training is not the write path's.
                let _ = crate::priority::set_thread_offset(0);
                if let Err(e) = train_dictionary(&path, &dicts, &syncs) {
                    // Entries stay raw; the next start tries again.
                    tracing::warn!("training the records' dictionary: {e}");
                }
            });
        match handle {
            Ok(h) => {
                if let Ok(mut slot) = self.training.lock() {
                    *slot = Some(h);
                }
            }
            Err(e) => tracing::warn!("starting the records' dictionary's training: {e}"),
        }
    }

    /// Waits for a training thread this process started, if any.
    pub fn finish_training(&self) {
        let handle = self.training.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Dictionary `id`, read from the log if another process trained it
    /// after this one opened.
    fn codec(&self, c: &Connection, id: i64) -> Result<Arc<Codec>, StoreError> {
        let Records::Compressed(d) = &self.records else {
            return Err(StoreError::Corrupt(format!(
                "an entry names dictionary {id} in a log that keeps its records raw"
            )));
        };
        let key = u32::try_from(id).ok();
        if let Some(codec) = key.and_then(|k| d.read().ok()?.by_id.get(&k).cloned()) {
            return Ok(codec);
        }
        let dict: Option<Option<Vec<u8>>> = c
            .prepare_cached("SELECT dict FROM dictionaries WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(Some(dict)) = dict else {
            return Err(StoreError::Corrupt(format!(
                "an entry names dictionary {id}, which the log does not hold"
            )));
        };
        let codec = Arc::new(dictionary(id, &dict)?);
        d.write()
            .map_err(lock_error)?
            .by_id
            .insert(codec.id(), codec.clone());
        Ok(codec)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self
            .readers
            .take()
            .map_err(|_| StoreError::Backend("reader connection poisoned".into()))?;
        f(&conn)
    }

    /// A read on the writing connection: the newest commits, and no wait
    /// for a reader connection, but none of the readers' concurrency.
    fn read_on_writer<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.writer()?.conn)
    }

    /// The writing connection, held until the guard drops.
    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, StoreError> {
        self.writer
            .lock()
            .map_err(|_| StoreError::Backend("writer connection poisoned".into()))
    }

    /// A write whose commit is durable when it returns (SQLite syncs the
    /// WAL: `synchronous=FULL`).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(CommitSync::Full, f)
    }

    fn write_with<T>(
        &self,
        commits: CommitSync,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // After a failed sync, what this process's pages say and what the
        // disk holds may differ: it begins no write (`durability`).
        self.syncs.writable()?;
        let mut w = self.writer()?;
        if w.commits != commits {
            // Before anything is written: a write that cannot have the
            // syncs it needs is not made.
            w.conn.execute_batch(commits.pragma())?;
            w.commits = commits;
        }
        f(&mut w.conn)
    }
}

/// The one writing connection, and how its commits reach the disk now.
struct Writer {
    conn: Connection,
    commits: CommitSync,
}

/// How a commit of the writing connection reaches the disk.
///
/// Every append of entries (`append_pipelined`: the sequencer's batches,
/// and registrations, `log init` and migrations through it) is answered only
/// after a `syncfs` that began after its commit ([`SyncGroup`]; see
/// [`sync_filesystem`] for why SQLite's own sync is not enough on Linux
/// 6.18). That `syncfs` writes the WAL too, so SQLite's `fsync` of it at
/// each of those commits was a second sync on the serial step: under the
/// mixed load a batch's sequencing took 4.0-4.2 ms with it and 2.5-2.6 ms
/// without (BENCHMARKS.md, issue 18, ninth session). Every other write (witnesses, mirrors, the
/// lease, the submission queue, meta) has no group sync after it and keeps
/// SQLite's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitSync {
    /// `synchronous=FULL`: the commit syncs the WAL before it returns.
    Full,
    /// `synchronous=NORMAL`: the WAL is written, not synced; a checkpoint of
    /// it into the database still syncs it first, so the file stays whole,
    /// and the [`SyncGroup`] makes the commit durable.
    ByGroup,
}

impl CommitSync {
    /// How the appends commit: by the group's `syncfs` on Linux; elsewhere
    /// [`sync_filesystem`] does nothing, and SQLite's own sync is the one.
    const FOR_APPENDS: CommitSync = if cfg!(target_os = "linux") {
        CommitSync::ByGroup
    } else {
        CommitSync::Full
    };

    fn pragma(self) -> &'static str {
        match self {
            CommitSync::Full => "PRAGMA synchronous=FULL",
            CommitSync::ByGroup => "PRAGMA synchronous=NORMAL",
        }
    }
}

/// The log's size. Every admission asks it, so the statement is cached
/// (preparing it cost more than running it).
pub(crate) fn size_of(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries")?
        .query_row([], |r| r.get(0))?;
    u64_of(n, "size")
}

/// Whether `entries` has the `UNIQUE` leaf-hash index of logs created
/// before the runs.
fn has_unique_leaf_index(conn: &Connection) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_index_list('entries') WHERE \"unique\" = 1",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The `meta` value under `key`, if any.
fn meta_value(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// How the log at `conn` keeps its stored hashes (see [`HASH_LAYOUT_KEY`]).
fn hash_layout(conn: &Connection) -> Result<HashLayout, StoreError> {
    match meta_value(conn, HASH_LAYOUT_KEY)?.as_deref() {
        None => Ok(HashLayout::Rows),
        Some("blocks") => {
            // A no-op but for a file whose `create` stopped half way.
            conn.execute_batch(NEW_LOG_SCHEMA)?;
            Ok(HashLayout::Blocks)
        }
        Some(other) => Err(StoreError::Corrupt(format!(
            "meta {HASH_LAYOUT_KEY} is {other:?}, not \"blocks\""
        ))),
    }
}

/// How the log at `conn` keeps its records (see [`RECORD_CODEC_KEY`]),
/// with the dictionaries it has.
fn records(conn: &Connection) -> Result<Records, StoreError> {
    match meta_value(conn, RECORD_CODEC_KEY)?.as_deref() {
        None => Ok(Records::Raw),
        Some("zstd") => Ok(Records::Compressed(Arc::new(RwLock::new(
            load_dictionaries(conn)?,
        )))),
        Some(other) => Err(StoreError::Corrupt(format!(
            "meta {RECORD_CODEC_KEY} is {other:?}, not \"zstd\""
        ))),
    }
}

/// Reads and prepares every dictionary the log holds.
fn load_dictionaries(conn: &Connection) -> Result<Dictionaries, StoreError> {
    let mut d = Dictionaries::default();
    let mut stmt = conn.prepare_cached("SELECT id, dict FROM dictionaries ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
    for row in rows {
        let (id, dict): (i64, Option<Vec<u8>>) = row?;
        d.trained = true;
        if let Some(dict) = dict {
            let codec = Arc::new(dictionary(id, &dict)?);
            d.by_id.insert(codec.id(), codec.clone());
            d.current = Some(codec);
        }
    }
    Ok(d)
}

/// Prepares stored dictionary `id`.
fn dictionary(id: i64, dict: &[u8]) -> Result<Codec, StoreError> {
    let id = u32::try_from(id)
        .map_err(|_| StoreError::Corrupt(format!("dictionary id {id} out of range")))?;
    Codec::new(id, dict).map_err(|e| StoreError::Corrupt(format!("dictionary {id}: {e}")))
}

/// Trains the log's dictionary on its first [`codec::TRAIN_AT`] entries
/// through a connection of its own, stores it (a NULL row when it is not
/// useful, so it is not tried again) unless another process stored one
/// first, and installs whichever the log holds into `dicts`.
fn train_dictionary(
    path: &Path,
    dicts: &RwLock<Dictionaries>,
    syncs: &SyncGroup,
) -> Result<(), StoreError> {
    // Never creates a file: should the path no longer name the log, this
    // fails rather than train on (or make) another database.
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let had: Option<i64> = conn.query_row("SELECT MAX(id) FROM dictionaries", [], |r| r.get(0))?;
    if had.is_none() {
        let samples: Vec<Vec<u8>> = {
            let mut stmt = conn
                .prepare("SELECT substr(stored, 1, ?2) FROM entries WHERE idx < ?1 AND dict IS NULL ORDER BY idx")?;
            // Each sample cut to 4 KB: memory and training time stay
            // bounded (16 MB at most) whatever the first entries' sizes.
            let rows = stmt.query_map(params![i64_of(codec::TRAIN_AT)?, 4096], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        // Records that do not compress, or too few: stay raw.
        let dict = codec::train(&refs).ok();
        if let Some(dict) = &dict {
            dictionary(1, dict)?;
        }
        // Training takes a while: a sync may have failed meanwhile.
        syncs.writable()?;
        conn.execute(
            "INSERT INTO dictionaries (id, dict) VALUES (1, ?1) ON CONFLICT(id) DO NOTHING",
            [dict],
        )?;
    }
    let loaded = load_dictionaries(&conn)?;
    *dicts.write().map_err(lock_error)? = Dictionaries {
        started: true,
        ..loaded
    };
    Ok(())
}

/// Each entry's bytes as stored with `codec` (`None`: raw): what it was
/// packed as with that dictionary ([`LogStore::pack`], on the admission's
/// threads), else compressed here (an entry not packed: packed before the
/// dictionary was ready, or queued by another frontend). When 256 or more
/// are left to compress, two threads share them (the write path's one
/// sizeable piece of CPU work that needs no lock).
fn compress_batch<'a>(
    codec: Option<&Codec>,
    entries: &'a [NewEntry],
) -> Vec<Option<Cow<'a, [u8]>>> {
    let Some(codec) = codec else {
        return vec![None; entries.len()];
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut left = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match e.packed.as_ref().and_then(|p| codec.frame_of(&e.data, p)) {
            Some(frame) => out.push(frame.map(Cow::Borrowed)),
            None => {
                out.push(None);
                left.push(i);
            }
        }
    }
    let pack = |ix: &[usize]| -> Vec<Option<Vec<u8>>> {
        ix.iter()
            .map(|&i| codec.pack(&entries[i].data).into_frame())
            .collect()
    };
    let frames = if left.len() < 256 {
        pack(&left)
    } else {
        let (a, b) = left.split_at(left.len() / 2);
        std::thread::scope(|s| {
            let second = std::thread::Builder::new().spawn_scoped(s, || pack(b));
            let mut done = pack(a);
            match second.map(|t| t.join()) {
                Ok(Ok(rest)) => done.extend(rest),
                // No thread to be had: this one does the rest.
                Err(_) => done.extend(pack(b)),
                // It cannot panic short of allocation failure: the rest raw.
                Ok(Err(_)) => done.extend(b.iter().map(|_| None)),
            }
            done
        })
    };
    for (i, frame) in left.into_iter().zip(frames) {
        out[i] = frame.map(Cow::Owned);
    }
    out
}

/// Writes `hashes` as stored hashes `first ..` into `hash_blocks`, filling
/// the partial block the log ends with first.
fn put_hash_blocks(tx: &Connection, first: u64, hashes: &[Hash]) -> Result<(), StoreError> {
    let (mut id, mut rest) = (first, hashes);
    while !rest.is_empty() {
        let block = id / HASH_BLOCK;
        let filled = (id % HASH_BLOCK) as usize;
        let take = rest.len().min(HASH_BLOCK as usize - filled);
        let mut blob = if filled == 0 {
            Vec::with_capacity(take * 32)
        } else {
            let old: Vec<u8> = tx
                .prepare_cached("SELECT hashes FROM hash_blocks WHERE block = ?1")?
                .query_row([i64_of(block)?], |r| r.get(0))
                .optional()?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("stored-hash block {block} is missing"))
                })?;
            if old.len() != filled * 32 {
                return Err(StoreError::Corrupt(format!(
                    "stored-hash block {block} holds {} bytes; the log's size needs {}",
                    old.len(),
                    filled * 32
                )));
            }
            old
        };
        for h in &rest[..take] {
            blob.extend_from_slice(h.as_bytes());
        }
        let sql = if filled == 0 {
            "INSERT INTO hash_blocks (block, hashes) VALUES (?1, ?2)"
        } else {
            "UPDATE hash_blocks SET hashes = ?2 WHERE block = ?1"
        };
        tx.prepare_cached(sql)?
            .execute(params![i64_of(block)?, blob])?;
        id += take as u64;
        rest = &rest[take..];
    }
    Ok(())
}

/// Reads stored hashes `ids` from `hash_blocks`, each block once. The first
/// failure in the order of `ids` is the one returned.
fn read_hash_blocks(c: &Connection, ids: &[u64]) -> Result<Vec<Hash>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT hashes FROM hash_blocks WHERE block = ?1")?;
    let missing = |i: u64| StoreError::Backend(format!("no stored hash {i}"));
    // One slot an id, filled for every id of a block when the block is read.
    let mut out: Vec<Option<Result<Hash, StoreError>>> = ids.iter().map(|_| None).collect();
    for first in 0..ids.len() {
        if out[first].is_some() {
            continue;
        }
        let block = ids[first] / HASH_BLOCK;
        let mut rows = stmt.query([i64_of(block)?])?;
        // Borrowed in SQLite's page, and only the hashes asked for are
        // copied out: a proof takes a few of a row's 255 (copying whole 8 KB
        // rows was 7% of its instructions). No row: none of its hashes.
        let blob = match rows.next()? {
            None => None,
            Some(row) => match row.get_ref(0)? {
                ValueRef::Blob(b) if b.len() % 32 == 0 && b.len() <= 32 * HASH_BLOCK as usize => {
                    Some(b)
                }
                damaged => {
                    // Fails the read, unless an id before this one failed first.
                    out[first] = Some(Err(StoreError::Corrupt(match damaged {
                        ValueRef::Blob(b) => {
                            format!("stored-hash block {block} holds {} bytes", b.len())
                        }
                        _ => format!("stored-hash block {block} is not a blob"),
                    })));
                    break;
                }
            },
        };
        for (slot, &i) in out[first..].iter_mut().zip(&ids[first..]) {
            if i / HASH_BLOCK == block {
                let at = (i % HASH_BLOCK) as usize * 32;
                let hash = blob
                    .and_then(|b| b.get(at..at + 32))
                    .and_then(Hash::from_slice);
                *slot = Some(hash.ok_or_else(|| missing(i)));
            }
        }
    }
    out.into_iter()
        .zip(ids)
        .map(|(slot, &i)| slot.unwrap_or_else(|| Err(missing(i))))
        .collect()
}

fn lock_error<T>(_: T) -> StoreError {
    StoreError::Backend("a lock of the SQLite store was poisoned".into())
}

/// Refuses a write built on the log at `size` if the log moved since
/// (`SizeChanged`), or one whose `fence` no longer holds the lease
/// (`LeaseLost`). In an immediate transaction, which holds the write lock:
/// no other writer appends and no other frontend takes the lease before
/// its commit. Returns the size.
fn check_base(tx: &Connection, size: TreeSize, fence: Option<Lease>) -> Result<u64, StoreError> {
    let found = size_of(tx)?;
    if found != size.get() {
        return Err(StoreError::SizeChanged {
            expected: size.get(),
            found,
        });
    }
    if let Some(fence) = fence {
        let held: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM lease WHERE token = ?1 AND expires_ms > ?2",
                params![i64_of(fence.token)?, unix_ms()],
                |r| r.get(0),
            )
            .optional()?;
        if held.is_none() {
            return Err(StoreError::LeaseLost(fence.token));
        }
    }
    Ok(found)
}

fn settle_queue(conn: &Connection, settled: &Settled) -> Result<(), StoreError> {
    let mut settle = conn.prepare_cached("DELETE FROM queue WHERE leaf_hash = ?1")?;
    for h in &settled.leaves {
        settle.execute([h.as_bytes().as_slice()])?;
    }
    if settled.refused.is_empty() {
        return Ok(());
    }
    // Refusals are rare: the old ones go when a new one comes.
    let now = unix_ms();
    conn.prepare_cached("DELETE FROM refused WHERE at_ms < ?1")?
        .execute([refusals_cutoff(now)])?;
    let mut put = conn.prepare_cached(
        "INSERT OR REPLACE INTO refused (leaf_hash, status, code, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (h, r) in &settled.refused {
        put.execute(params![
            h.as_bytes().as_slice(),
            r.status,
            r.code,
            r.detail,
            now
        ])?;
    }
    Ok(())
}

/// One row of `entries` as read: index, stored bytes, leaf hash, and the
/// dictionary they were compressed with.
type EntryRow = (i64, Vec<u8>, Vec<u8>, Option<i64>);

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

impl LogStore for SqliteStore {
    fn meta(&self) -> Result<LogMeta, StoreError> {
        self.read(|c| {
            let get = |k: &str| -> Result<String, StoreError> {
                meta_value(c, k)?.ok_or_else(|| StoreError::Corrupt(format!("meta {k} missing")))
            };
            let quorum = get("quorum")?
                .parse()
                .map_err(|_| StoreError::Corrupt("quorum is not a number".into()))?;
            Ok(LogMeta {
                origin: get("origin")?,
                quorum,
            })
        })
    }

    fn size(&self) -> Result<TreeSize, StoreError> {
        self.read(|c| Ok(TreeSize(size_of(c)?)))
    }

    fn find_leaf(&self, leaf: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        Ok(self
            .find_leaves(std::slice::from_ref(leaf))?
            .pop()
            .flatten())
    }

    fn find_leaves(&self, leaves: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError> {
        self.read(|c| match &self.lookup {
            Lookup::Index => {
                let mut stmt = c.prepare_cached("SELECT idx FROM entries WHERE leaf_hash = ?1")?;
                leaves
                    .iter()
                    .map(|leaf| {
                        let idx: Option<i64> = stmt
                            .query_row([leaf.as_bytes().as_slice()], |r| r.get(0))
                            .optional()?;
                        idx.map(|i| u64_of(i, "index").map(LeafIndex)).transpose()
                    })
                    .collect()
            }
            Lookup::Runs(d) => {
                // Another process may have appended; one snapshot for the
                // size, the runs and the entries read.
                if size_of(c)? > d.read().map_err(lock_error)?.seen() {
                    let tx = c.unchecked_transaction()?;
                    d.write().map_err(lock_error)?.catch_up(&tx)?;
                    tx.commit()?;
                }
                let d = d.read().map_err(lock_error)?;
                leaves
                    .iter()
                    .map(|leaf| Ok(d.find(c, leaf)?.map(LeafIndex)))
                    .collect()
            }
        })
    }

    fn entry(&self, index: LeafIndex) -> Result<Option<StoredEntry>, StoreError> {
        let idx = i64_of(index.get())?;
        self.read(|c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT idx, {} FROM entries WHERE idx = ?1",
                    self.entry_columns_sql()
                ))?
                .query_row([idx], entry_row)
                .optional()?;
            row.map(|row| self.row_entry(c, row)).transpose()
        })
    }

    fn entries(&self, start: LeafIndex, count: u64) -> Result<Vec<StoredEntry>, StoreError> {
        let (lo, n) = (i64_of(start.get())?, i64_of(count)?);
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT idx, {} FROM entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
                self.entry_columns_sql()
            ))?;
            let rows = stmt.query_map(params![lo, n], entry_row)?;
            rows.map(|r| self.row_entry(c, r?)).collect()
        })
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        self.upper.read(indexes, |missing| {
            self.read(|c| {
                if self.hash_layout == HashLayout::Blocks {
                    return read_hash_blocks(c, missing);
                }
                let mut stmt = c.prepare_cached("SELECT hash FROM hashes WHERE id = ?1")?;
                missing
                    .iter()
                    .map(|&i| {
                        let h: Option<Vec<u8>> =
                            stmt.query_row([i64_of(i)?], |r| r.get(0)).optional()?;
                        hash_of(
                            h.ok_or_else(|| StoreError::Backend(format!("no stored hash {i}")))?,
                        )
                    })
                    .collect()
            })
        })
    }

    fn durable_size(&self) -> Result<TreeSize, StoreError> {
        // The ceiling is read after the size: a commit the size counts had
        // begun before, so it is either still under the ceiling or synced.
        let size = self.size()?;
        Ok(match self.syncs.ceiling() {
            Some(ceiling) if ceiling < size => ceiling,
            _ => size,
        })
    }

    fn append(&self, batch: Append) -> Result<(), StoreError> {
        self.append_pipelined(batch)?.wait()
    }

    fn durable_barrier(&self) -> Durable {
        self.syncs.barrier()
    }

    fn pack(&self, entry: &mut NewEntry) {
        // Without a dictionary yet (or a lock poisoned by a panic), the
        // append decides: packing is only ever a head start.
        let Records::Compressed(d) = &self.records else {
            return;
        };
        let Some(codec) = d.read().ok().and_then(|d| d.current.clone()) else {
            return;
        };
        entry.packed = Some(codec.pack(&entry.data));
    }

    fn append_pipelined(&self, batch: Append) -> Result<Durable, StoreError> {
        // Compressed before the write lock is taken, with the dictionary
        // there is now (a batch that trains one is stored raw).
        let current = match &self.records {
            Records::Raw => None,
            Records::Compressed(d) => d.read().map_err(lock_error)?.current.clone(),
        };
        let packed = compress_batch(current.as_deref(), &batch.entries);
        // Answered only once `self.syncs` has synced the commit (where that
        // sync is a `syncfs`; elsewhere SQLite syncs its own commit).
        self.write_with(CommitSync::FOR_APPENDS, |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found = check_base(&tx, batch.old_size, batch.fence)?;
            // The new log's leaf lookup refuses a repeated leaf (the old
            // one's UNIQUE index does) and writes the runs the batch ends.
            let pending = match &self.lookup {
                Lookup::Index => None,
                Lookup::Runs(d) => {
                    let mut d = d.write().map_err(lock_error)?;
                    d.catch_up(&tx)?;
                    let leaves = batch.entries.iter().map(|e| e.leaf_hash).collect();
                    Some(d.prepare(&tx, found, leaves)?)
                }
            };
            {
                let mut put = match self.records {
                    Records::Raw => tx.prepare_cached(
                        "INSERT INTO entries (idx, leaf_hash, data, kind, signer) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?,
                    Records::Compressed(_) => tx.prepare_cached(
                        "INSERT INTO entries (idx, leaf_hash, stored, kind, signer, dict) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?,
                };
                let dict_id = current.as_ref().map(|c| c.id());
                if let Some(id) = dict_id {
                    // Rows may name only a dictionary this file holds.
                    let held: Option<i64> = tx
                        .prepare_cached(
                            "SELECT 1 FROM dictionaries WHERE id = ?1 AND dict IS NOT NULL",
                        )?
                        .query_row([id], |r| r.get(0))
                        .optional()?;
                    if held.is_none() {
                        return Err(StoreError::Corrupt(format!(
                            "dictionary {id}, in use, is not in the log's file"
                        )));
                    }
                }
                for (i, (e, p)) in batch.entries.iter().zip(&packed).enumerate() {
                    let idx = i64_of(found + i as u64)?;
                    let leaf = e.leaf_hash.as_bytes().as_slice();
                    match (&self.records, p) {
                        (Records::Raw, _) => put.execute(params![idx, leaf, e.data, e.kind, e.signer])?,
                        (Records::Compressed(_), None) => put.execute(params![idx, leaf, e.data, e.kind, e.signer, None::<i64>])?,
                        (Records::Compressed(_), Some(p)) => put.execute(params![idx, leaf, p.as_ref(), e.kind, e.signer, dict_id])?,
                    };
                }
                let first = daylight_core::tree::stored_hash_count(batch.old_size);
                match self.hash_layout {
                    HashLayout::Blocks => put_hash_blocks(&tx, first, &batch.hashes)?,
                    HashLayout::Rows => {
                        let mut put =
                            tx.prepare_cached("INSERT INTO hashes (id, hash) VALUES (?1, ?2)")?;
                        for (i, h) in batch.hashes.iter().enumerate() {
                            put.execute(params![i64_of(first + i as u64)?, h.as_bytes().as_slice()])?;
                        }
                    }
                }
                let new_size = i64_of(found + batch.entries.len() as u64)?;
                tx.execute(
                    "INSERT INTO checkpoints (size, note) VALUES (?1, ?2)",
                    params![new_size, batch.checkpoint],
                )?;
                settle_queue(&tx, &batch.settled)?;
            }
            // Begun before the commit: no reader takes its checkpoint as
            // durable from the moment it is visible.
            let begun = self.syncs.begin(batch.old_size)?;
            tx.commit()?;
            let durable = begun.committed();
            if let (Some(p), Lookup::Runs(d)) = (pending, &self.lookup) {
                d.write().map_err(lock_error)?.commit(p);
            }
            let new_size = found + batch.entries.len() as u64;
            if let Records::Compressed(d) = &self.records {
                if new_size >= codec::TRAIN_AT {
                    self.start_training(d);
                }
            }
            Ok(durable)
        })
    }

    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let newest = |c: &Connection, at_most: i64| -> Result<Option<(i64, Vec<u8>)>, StoreError> {
            Ok(c.prepare_cached(
                "SELECT size, note FROM checkpoints WHERE size <= ?1 ORDER BY size DESC LIMIT 1",
            )?
            .query_row([at_most], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
        };
        self.read(|c| {
            let found = newest(c, i64::MAX)?;
            // The ceiling is read after the query: a commit the query saw
            // had begun before, so it is either still under the ceiling or
            // answered (read first, a commit could slip in between).
            match (found, self.syncs.ceiling()) {
                (Some((size, _)), Some(ceiling)) if size > i64_of(ceiling.get())? => {
                    Ok(newest(c, i64_of(ceiling.get())?)?.map(|(_, note)| note))
                }
                (found, _) => Ok(found.map(|(_, note)| note)),
            }
        })
    }

    fn published_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT note FROM published ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn publish(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        let size = i64_of(size.get())?;
        self.write(|c| {
            c.execute(
                "INSERT INTO published (size, note) SELECT ?1, ?2
                 WHERE ?1 >= (SELECT COALESCE(MAX(size), -1) FROM published)
                 ON CONFLICT(size) DO UPDATE SET note = excluded.note",
                params![size, note],
            )?;
            Ok(())
        })
    }

    fn witnesses(&self) -> Result<Vec<WitnessConfig>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT vkey, url, known_size FROM witnesses ORDER BY vkey")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            rows.map(|r| {
                let (vkey, url, size) = r?;
                Ok(WitnessConfig {
                    key: self.keys.parse(&vkey, "witness")?,
                    url,
                    known_size: TreeSize(u64_of(size, "witness size")?),
                })
            })
            .collect()
        })
    }

    fn add_witness(&self, key: &VerifierKey, url: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO witnesses (vkey, url) VALUES (?1, ?2) ON CONFLICT(vkey) DO UPDATE SET url = excluded.url",
                params![key.to_string(), url],
            )?;
            Ok(())
        })
    }

    fn mirrors(&self) -> Result<MirrorSet, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT vkey, url FROM mirrors ORDER BY vkey")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mirrors = rows
                .map(|r| {
                    let (vkey, url) = r?;
                    Ok(WitnessConfig {
                        key: self.keys.parse(&vkey, "mirror")?,
                        url,
                        known_size: TreeSize(0),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let quorum = meta_value(c, "mirror_quorum")?
                .map(|q| {
                    q.parse()
                        .map_err(|_| StoreError::Corrupt("mirror_quorum is not a number".into()))
                })
                .transpose()?
                .unwrap_or(0);
            Ok(MirrorSet { mirrors, quorum })
        })
    }

    fn add_mirror(&self, key: &VerifierKey, url: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO mirrors (vkey, url) VALUES (?1, ?2) ON CONFLICT(vkey) DO UPDATE SET url = excluded.url",
                params![key.to_string(), url],
            )?;
            Ok(())
        })
    }

    fn set_mirror_quorum(&self, quorum: usize) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('mirror_quorum', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [quorum.to_string()],
            )?;
            Ok(())
        })
    }

    fn set_witness_size(&self, key: &VerifierKey, size: TreeSize) -> Result<(), StoreError> {
        let size = i64_of(size.get())?;
        self.write(|c| {
            c.execute(
                "UPDATE witnesses SET known_size = ?2 WHERE vkey = ?1",
                params![key.to_string(), size],
            )?;
            Ok(())
        })
    }

    fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
        dead: Option<&str>,
    ) -> Result<Option<Lease>, StoreError> {
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = unix_ms();
            let row: Option<(String, i64, i64)> = tx
                .query_row("SELECT holder, token, expires_ms FROM lease", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let token = match row {
                // Renewed: the same term goes on.
                Some((h, token, expires)) if h == holder && expires > now => token,
                // Another holder's term runs (unless that holder is gone).
                Some((h, _, expires)) if expires > now && Some(h.as_str()) != dead => {
                    return Ok(None)
                }
                // Expired or never held: a new term, with a larger token.
                Some((_, token, _)) => token + 1,
                None => 1,
            };
            tx.execute(
                "INSERT INTO lease (one, holder, token, expires_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(one) DO UPDATE SET holder = excluded.holder,
                     token = excluded.token, expires_ms = excluded.expires_ms",
                params![holder, token, now.saturating_add(ttl)],
            )?;
            tx.commit()?;
            Ok(Some(Lease {
                token: u64_of(token, "lease token")?,
            }))
        })
    }

    fn release_lease(&self, holder: &str, lease: Lease) -> Result<(), StoreError> {
        let token = i64_of(lease.token)?;
        self.write(|c| {
            c.execute(
                "UPDATE lease SET expires_ms = 0 WHERE holder = ?1 AND token = ?2",
                params![holder, token],
            )?;
            Ok(())
        })
    }

    fn lease_state(&self) -> Result<Option<LeaseState>, StoreError> {
        self.read(|c| {
            let row: Option<(String, i64, i64)> = c
                .query_row("SELECT holder, token, expires_ms FROM lease", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            row.map(|(holder, token, expires)| {
                Ok(LeaseState {
                    holder,
                    token: u64_of(token, "lease token")?,
                    expires_in_ms: expires.saturating_sub(unix_ms()),
                })
            })
            .transpose()
        })
    }

    fn enqueue(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT INTO queue (leaf_hash, data, kind, signer) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(leaf_hash) DO NOTHING",
                )?;
                let mut forget = tx.prepare_cached("DELETE FROM refused WHERE leaf_hash = ?1")?;
                for e in entries {
                    let leaf = e.leaf_hash.as_bytes().as_slice();
                    put.execute(params![leaf, e.data, e.kind, e.signer])?;
                    forget.execute([leaf])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn settle(
        &self,
        settled: &Settled,
        fence: Option<Lease>,
        size: TreeSize,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if !settled.refused.is_empty() {
                check_base(&tx, size, fence)?;
            }
            settle_queue(&tx, settled)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn refusals(&self, leaves: &[Hash]) -> Result<Vec<Option<QueueRefusal>>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT status, code, detail FROM refused WHERE leaf_hash = ?1")?;
            leaves
                .iter()
                .map(|h| {
                    Ok(stmt
                        .query_row([h.as_bytes().as_slice()], |r| {
                            Ok(QueueRefusal {
                                status: r.get(0)?,
                                code: r.get(1)?,
                                detail: r.get(2)?,
                            })
                        })
                        .optional()?)
                })
                .collect()
        })
    }

    fn queued(&self, max: usize) -> Result<Vec<NewEntry>, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        // Only the sequencer asks, before each batch it writes: on the
        // writing connection, which only brief writes (the lease,
        // witnesses, a queued submission) share with it, rather than after
        // the readers' for one (under the mixed load a quarter of a batch's
        // sequencing).
        self.read_on_writer(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT leaf_hash, data, kind, signer FROM queue ORDER BY seq LIMIT ?1",
            )?;
            let rows = stmt.query_map([max], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.map(|r| {
                let (leaf, data, kind, signer) = r?;
                Ok(NewEntry {
                    leaf_hash: hash_of(leaf)?,
                    data,
                    kind,
                    signer,
                    packed: None,
                })
            })
            .collect()
        })
    }

    fn entries_of_kind(
        &self,
        kind: &str,
        start: LeafIndex,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let lo = i64_of(start.get())?;
        self.read(|c| {
            // The registry's own statement, so that SQLite can use the
            // partial index on registry entries (a bound kind cannot).
            let cols = self.entry_columns_sql();
            let (mut stmt, bound) = if kind == "registry" {
                (
                    c.prepare_cached(&format!(
                        "SELECT idx, {cols} FROM entries WHERE kind = 'registry' AND idx >= ?1 ORDER BY idx",
                    ))?,
                    1,
                )
            } else {
                (
                    c.prepare_cached(&format!(
                        "SELECT idx, {cols} FROM entries WHERE idx >= ?1 AND kind = ?2 ORDER BY idx",
                    ))?,
                    2,
                )
            };
            stmt.raw_bind_parameter(1, lo)?;
            if bound == 2 {
                stmt.raw_bind_parameter(2, kind)?;
            }
            let rows = stmt.raw_query().mapped(entry_row);
            rows.map(|r| self.row_entry(c, r?)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::integrate::integrate;
    use daylight_core::{leaf_hash, KeyName, KeyType, SignerKey};

    fn entry(i: u64) -> NewEntry {
        let data = format!("entry {i}").into_bytes();
        NewEntry {
            leaf_hash: leaf_hash(&data),
            data,
            kind: if i % 10 == 0 { "registry" } else { "request" }.into(),
            signer: "s".into(),
            packed: None,
        }
    }

    /// An entry that looks like a signed record: the same keys and words
    /// as its neighbours around a hex hash and a signature.
    fn record(i: u64) -> NewEntry {
        let hash = leaf_hash(&i.to_be_bytes());
        let sig = leaf_hash(&((i + 1) << 32).to_be_bytes());
        let data = format!(
            r#"{{"body":{{"case_reference":"CASE-{i:07}","data_categories":["identification","location"],"issuing_authority":{{"name":"Amtsgericht Tiergarten","type":"court"}},"jurisdiction":"DE","legal_basis":"StPO 100a","offence":"narcotics","provider":"cloud.example","targets":["{hash}"]}},"created":"2026-12-05T10:{:02}:00Z","kind":"request","signature":"{sig}{sig}"}}"#,
            i % 60
        )
        .into_bytes();
        NewEntry {
            leaf_hash: leaf_hash(&data),
            data,
            kind: "request".into(),
            signer: "s".into(),
            packed: None,
        }
    }

    /// Fills a new log with `n` entries made by `make`, in batches of 1,000.
    fn fill(store: &SqliteStore, n: u64, make: fn(u64) -> NewEntry) {
        let key = key("new.test/log");
        let size = store.size().unwrap().get();
        for lo in (size..size + n).step_by(1000) {
            let batch = (lo..(lo + 1000).min(size + n)).map(make).collect();
            integrate(store, &key, "new.test/log", batch).unwrap();
        }
    }

    fn stored(store: &SqliteStore, idx: u64) -> (Vec<u8>, Option<i64>) {
        store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT stored, dict FROM entries WHERE idx = ?1",
                    [idx as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap()
    }

    /// The writer's `synchronous` setting: 2 is FULL, 1 NORMAL.
    fn writer_sync(store: &SqliteStore, commits: CommitSync) -> i64 {
        store
            .write_with(commits, |c| {
                Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
            })
            .unwrap()
    }

    /// The appends leave the WAL's sync to the group's `syncfs` (on Linux,
    /// where that is a `syncfs`); every other write, made after them on the
    /// same connection, syncs its own commit again.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_group_synced_appends_skip_the_wal_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("log.db"), "new.test/log", 0).unwrap();
        assert_eq!(writer_sync(&store, CommitSync::Full), 2, "a new store");
        fill(&store, 3, record);
        assert_eq!(store.writer.lock().unwrap().commits, CommitSync::ByGroup);
        assert_eq!(writer_sync(&store, CommitSync::ByGroup), 1);
        // An ordinary write after an append, through the store's own API.
        store.enqueue(&[record(1 << 40)]).unwrap();
        assert_eq!(store.writer.lock().unwrap().commits, CommitSync::Full);
        assert_eq!(writer_sync(&store, CommitSync::Full), 2);
        // And the append after it, which is durable once answered.
        fill(&store, 1, record);
        assert_eq!(store.size().unwrap().get(), 4);
        assert_eq!(writer_sync(&store, CommitSync::ByGroup), 1);
    }

    /// Entries stay raw until the log holds `TRAIN_AT`; the batch after
    /// that trains the dictionary and is itself stored raw; later ones are
    /// stored compressed and read back as they were, through every read,
    /// by this process and by another.
    #[test]
    fn records_are_compressed_once_the_log_has_trained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        let other = SqliteStore::open(&path).unwrap();
        fill(&store, codec::TRAIN_AT + 10, record);
        store.finish_training();
        let n = codec::TRAIN_AT + 10;
        assert_eq!(stored(&store, n - 1).1, None, "entries before it are raw");
        fill(&store, 500, record);
        let (bytes, dict) = stored(&store, n + 7);
        assert_eq!(dict, Some(1));
        assert!(
            bytes.len() * 2 < record(n + 7).data.len(),
            "{} bytes",
            bytes.len()
        );
        for s in [&store, &other, &SqliteStore::open(&path).unwrap()] {
            for i in [0, n - 1, n, n + 7, n + 499] {
                let e = s.entry(LeafIndex(i)).unwrap().unwrap();
                assert_eq!(e.data, record(i).data, "entry {i}");
                assert_eq!(e.leaf_hash, record(i).leaf_hash);
            }
            let got = s.entries(LeafIndex(n - 2), 5).unwrap();
            let want: Vec<Vec<u8>> = (n - 2..n + 3).map(|i| record(i).data).collect();
            assert_eq!(got.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), want);
            let of_kind = s.entries_of_kind("request", LeafIndex(n + 498)).unwrap();
            assert_eq!(of_kind[0].data, record(n + 498).data);
        }
        // The other process finds the dictionary it did not train at its
        // next append, and writes with it from the one after.
        fill(&other, 10, record);
        other.finish_training();
        fill(&other, 10, record);
        assert_eq!(stored(&other, n + 509).1, None);
        assert_eq!(stored(&other, n + 519).1, Some(1));
        let trained: i64 = store
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM dictionaries", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(trained, 1);
    }

    /// Entries packed ahead of the append (`LogStore::pack`, on the
    /// admission's threads) are stored as packed, compressed or raw, with
    /// no second compression; a packing of another dictionary id, of
    /// another log's dictionary under this one's id, or of other bytes, is
    /// compressed again by the append; all read back as they were.
    /// Before a dictionary is trained, packing leaves an entry as it was.
    #[test]
    fn entries_packed_ahead_are_stored_as_packed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        let mut early = record(1 << 41);
        store.pack(&mut early);
        assert_eq!(early.packed, None, "no dictionary yet");
        fill(&store, codec::TRAIN_AT + 10, record);
        store.finish_training();
        fill(&store, 10, record);
        let Records::Compressed(d) = &store.records else {
            panic!("a new log compresses")
        };
        let current = d.read().unwrap().current.clone().unwrap();
        // Another dictionary, trained on other records: under another id,
        // and under this log's id as another log would number it.
        let others: Vec<Vec<u8>> = (0..2000u64)
            .map(|i| {
                format!(
                    r#"{{"kind":"withdrawal","reason":"order {i} of the court of {} set aside on appeal","withdrawn":"WD-{:06}"}}"#,
                    ["Lyon", "Porto", "Graz", "Turku"][i as usize % 4],
                    i * 7919 % 1_000_000
                )
                .into_bytes()
            })
            .collect();
        let samples: Vec<&[u8]> = others.iter().map(|e| &e[..]).collect();
        let other_dict = codec::train(&samples).unwrap();
        let foreign = Codec::new(9, &other_dict).unwrap();
        let other_log = Codec::new(current.id(), &other_dict).unwrap();

        let n = store.size().unwrap().get();
        let mut batch: Vec<NewEntry> = (n..n + 4).map(record).collect();
        // Hashes do not compress: packed as raw.
        let mut incompressible = record(n + 4);
        incompressible.data = (0..20u64)
            .flat_map(|j| *leaf_hash(&(n * 20 + j).to_be_bytes()).as_bytes())
            .collect();
        incompressible.leaf_hash = leaf_hash(&incompressible.data);
        batch.push(incompressible.clone());
        store.pack(&mut batch[0]);
        batch[1].packed = Some(foreign.pack(&batch[1].data));
        batch[2].packed = Some(other_log.pack(&batch[2].data));
        // Another record, longer by a few bytes (a raw packing of other
        // bytes would be harmless: the entry's own bytes are stored).
        let mut longer = record(n + 99).data;
        longer.extend_from_slice(b"     ");
        batch[3].packed = Some(current.pack(&longer));
        assert!(batch[3].packed.clone().unwrap().into_frame().is_some());
        store.pack(&mut batch[4]);
        let ahead = batch[0].packed.clone().unwrap();
        let ahead_frame = current.frame_of(&batch[0].data, &ahead).unwrap().unwrap();
        assert_eq!(
            batch[4].packed.clone().map(codec::Packed::into_frame),
            Some(None)
        );
        let frames = compress_batch(Some(&current), &batch);
        assert!(
            matches!(&frames[0], Some(Cow::Borrowed(f)) if *f == ahead_frame),
            "the packed frame is taken as it is"
        );
        for (i, why) in [(1, "another id"), (2, "another log's"), (3, "other bytes")] {
            assert!(
                matches!(&frames[i], Some(Cow::Owned(_))),
                "{why}: compressed here"
            );
        }
        assert!(
            frames[4].is_none(),
            "packed as raw: stored raw, not compressed again"
        );
        integrate(&store, &key("new.test/log"), "new.test/log", batch).unwrap();
        assert_eq!(stored(&store, n), (ahead_frame.to_vec(), Some(1)));
        assert_eq!(stored(&store, n + 4), (incompressible.data.clone(), None));
        for s in [&store, &SqliteStore::open(&path).unwrap()] {
            for i in n..n + 4 {
                assert_eq!(s.entry(LeafIndex(i)).unwrap().unwrap().data, record(i).data);
                assert_eq!(stored(s, i).1, Some(1), "entry {i}");
            }
            let last = s.entry(LeafIndex(n + 4)).unwrap().unwrap();
            assert_eq!(last.data, incompressible.data);
        }
    }

    /// A batch with 256 or more entries left to compress shares them
    /// between two threads, packed ones among them, and every entry keeps
    /// its own bytes in its place.
    #[test]
    fn a_large_batch_compresses_what_is_left_on_two_threads() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("log.db"), "new.test/log", 0).unwrap();
        fill(&store, codec::TRAIN_AT + 10, record);
        store.finish_training();
        let Records::Compressed(d) = &store.records else {
            panic!("a new log compresses")
        };
        let current = d.read().unwrap().current.clone().unwrap();
        let mut batch: Vec<NewEntry> = (0..700).map(|i| record(1 << 42 | i)).collect();
        for e in batch.iter_mut().step_by(3) {
            store.pack(e);
        }
        let frames = compress_batch(Some(&current), &batch);
        assert_eq!(frames.len(), batch.len());
        for (i, (e, f)) in batch.iter().zip(&frames).enumerate() {
            let f = f.as_ref().unwrap();
            assert_eq!(matches!(f, Cow::Borrowed(_)), i % 3 == 0, "entry {i}");
            assert_eq!(
                current
                    .decompress(f, daylight_core::tile::MAX_ENTRY_SIZE)
                    .unwrap(),
                e.data,
                "entry {i}"
            );
        }
    }

    /// Entries that do not compress train no dictionary, once, and stay raw.
    #[test]
    fn random_entries_stay_raw_and_train_once() {
        fn random(i: u64) -> NewEntry {
            let mut data = Vec::with_capacity(640);
            for j in 0..20u64 {
                data.extend_from_slice(leaf_hash(&(i * 20 + j).to_be_bytes()).as_bytes());
            }
            NewEntry {
                leaf_hash: leaf_hash(&data),
                data,
                kind: "request".into(),
                signer: "s".into(),
                packed: None,
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        fill(&store, codec::TRAIN_AT + 1000, random);
        store.finish_training();
        let store = SqliteStore::open(&path).unwrap();
        fill(&store, 1000, random);
        let rows: Vec<Option<Vec<u8>>> = store
            .read(|c| {
                let mut s = c.prepare("SELECT dict FROM dictionaries")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(rows, vec![None], "trained once, no dictionary kept");
        assert!(
            store.training.lock().unwrap().is_none(),
            "a reopened log that has trained does not train again"
        );
        let n = codec::TRAIN_AT + 2000;
        assert_eq!(stored(&store, n - 1), (random(n - 1).data, None));
    }

    /// A damaged compressed row, a missing dictionary and a damaged one are
    /// refused, each naming what failed.
    #[test]
    fn damaged_compression_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        fill(&store, codec::TRAIN_AT + 10, record);
        store.finish_training();
        fill(&store, 1000, record);
        let n = codec::TRAIN_AT + 500;
        assert_eq!(stored(&store, n).1, Some(1));
        let exec = |sql: &str, p: &dyn rusqlite::ToSql| {
            store.write(|c| Ok(c.execute(sql, [p])?)).unwrap();
        };
        let (mut bytes, _) = stored(&store, n);
        // A byte of the frame's checksum: refused whatever the level (a
        // flip inside the frame may rarely decode to the same content).
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let at = i64::try_from(n).unwrap();
        store
            .write(|c| {
                Ok(c.execute(
                    "UPDATE entries SET stored = ?1 WHERE idx = ?2",
                    params![bytes, at],
                )?)
            })
            .unwrap();
        let err = store.entry(LeafIndex(n)).unwrap_err().to_string();
        assert!(err.contains(&format!("entry {n}")), "{err}");
        assert!(store.entries(LeafIndex(n - 1), 3).is_err());
        assert!(
            store.entry(LeafIndex(n + 1)).unwrap().is_some(),
            "its neighbour reads"
        );
        exec("UPDATE dictionaries SET id = ?1", &7);
        // The dictionary in use is gone from the file: appends stop.
        let err = integrate(
            &store,
            &key("new.test/log"),
            "new.test/log",
            vec![record(1 << 40)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dictionary 1, in use, is not in the log's file"),
            "{err}"
        );
        let fresh = SqliteStore::open(&path).unwrap();
        let err = fresh.entry(LeafIndex(n + 1)).unwrap_err().to_string();
        assert!(
            err.contains("dictionary 1, which the log does not hold"),
            "{err}"
        );
        exec(
            "UPDATE dictionaries SET dict = ?1",
            &b"not a dictionary".to_vec(),
        );
        let err = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(err.contains("dictionary 7"), "{err}");
    }

    fn key(origin: &str) -> SignerKey {
        SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [1; 32])
    }

    /// Makes a log file as the version before the leaf runs and the hash
    /// blocks did: a `UNIQUE` leaf-hash index, indexes by kind and signer,
    /// one row per stored hash.
    fn legacy_log(path: &Path) {
        let old = Connection::open(path).unwrap();
        old.execute_batch(&SCHEMA.replace(
            "leaf_hash BLOB NOT NULL,",
            "leaf_hash BLOB NOT NULL UNIQUE,",
        ))
        .unwrap();
        old.execute_batch(
            "CREATE INDEX entries_by_kind ON entries(kind, idx);
             CREATE INDEX entries_by_signer ON entries(signer, idx);
             INSERT INTO meta (key, value) VALUES ('origin', 'old.test/log'), ('quorum', '0');",
        )
        .unwrap();
    }

    /// Stored hashes of a new log, written in blocks by batches that start
    /// and end anywhere in a block, read back the same as the one-row-per-
    /// hash layout of an older log holding the same entries.
    #[test]
    fn stored_hashes_in_blocks_read_back_as_rows_do() {
        let dir = tempfile::tempdir().unwrap();
        let new_path = dir.path().join("new.db");
        let old_path = dir.path().join("old.db");
        let new = SqliteStore::create(&new_path, "old.test/log", 0).unwrap();
        legacy_log(&old_path);
        let old = SqliteStore::open(&old_path).unwrap();
        assert_eq!(new.hash_layout, HashLayout::Blocks);
        assert_eq!(old.hash_layout, HashLayout::Rows);
        let key = key("old.test/log");
        let mut next = 0;
        // Size 128 stores exactly 255 hashes: a batch then starts a block.
        for n in [1, 2, 3, 100, 22, 1, 255, 256, 257, 1000, 7] {
            let batch: Vec<NewEntry> = (next..next + n).map(entry).collect();
            integrate(&new, &key, "old.test/log", batch.clone()).unwrap();
            integrate(&old, &key, "old.test/log", batch).unwrap();
            next += n;
        }
        let count = daylight_core::tree::stored_hash_count(TreeSize(next));
        let all: Vec<u64> = (0..count).collect();
        // A fresh open, so nothing comes from the in-memory cache.
        let new = SqliteStore::open(&new_path).unwrap();
        assert_eq!(
            new.read_hashes(&all).unwrap(),
            old.read_hashes(&all).unwrap()
        );
        let backwards: Vec<u64> = (0..count).rev().step_by(97).collect();
        assert_eq!(
            new.read_hashes(&backwards).unwrap(),
            old.read_hashes(&backwards).unwrap()
        );
        // Blocks visited out of order and again, ids repeated: each row is
        // read once for all of its ids, and every id gets its own hash.
        let mixed = [count - 1, 0, 300, 1, count - 1, 256, 0, 254, 255];
        assert_eq!(
            new.read_hashes(&mixed).unwrap(),
            old.read_hashes(&mixed).unwrap()
        );
        let blocks: Vec<i64> = new
            .read(|c| {
                let mut s = c.prepare("SELECT length(hashes) FROM hash_blocks ORDER BY block")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<i64>, _>>()?)
            })
            .unwrap();
        assert_eq!(blocks.len() as u64, count.div_ceil(HASH_BLOCK));
        let (last, full) = blocks.split_last().unwrap();
        assert!(
            full.iter().all(|&b| b == 32 * HASH_BLOCK as i64),
            "{blocks:?}"
        );
        assert_eq!(*last as u64, 32 * (count - HASH_BLOCK * full.len() as u64));
        let err = new.read_hashes(&[count]).unwrap_err().to_string();
        assert!(err.contains(&format!("no stored hash {count}")), "{err}");
    }

    /// Full blocks pack two to a 16 KB page.
    #[test]
    fn hash_blocks_fill_their_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("log.db"), "new.test/log", 0).unwrap();
        let hashes: Vec<Hash> = (0..200 * HASH_BLOCK)
            .map(|i| daylight_core::leaf_hash(&i.to_be_bytes()))
            .collect();
        let pages = |c: &Connection| -> Result<i64, StoreError> {
            Ok(c.query_row("PRAGMA page_count", [], |r| r.get(0))?)
        };
        let (before, after) = store
            .write(|c| {
                let before = pages(c)?;
                put_hash_blocks(c, 0, &hashes)?;
                Ok((before, pages(c)?))
            })
            .unwrap();
        // 100 leaf pages and a few interior ones; one block per page would be 200.
        assert!(after - before <= 104, "{before} -> {after} pages");
        assert_eq!(
            store.read_hashes(&[0, 200 * HASH_BLOCK - 1]).unwrap(),
            vec![hashes[0], hashes[hashes.len() - 1]]
        );
    }

    /// A partial block whose length does not match the log's size is
    /// refused as corrupt by the next append, which then writes nothing;
    /// a hash cut from a block is refused by reads.
    #[test]
    fn a_damaged_hash_block_is_refused() {
        let (_dir, path, store) = new_log_of(10);
        let key = key("new.test/log");
        let count = daylight_core::tree::stored_hash_count(TreeSize(10));
        let damage = |blob: &dyn Fn(Vec<u8>) -> Vec<u8>| {
            store
                .write(|c| {
                    let old: Vec<u8> =
                        c.query_row("SELECT hashes FROM hash_blocks WHERE block = 0", [], |r| {
                            r.get(0)
                        })?;
                    c.execute(
                        "UPDATE hash_blocks SET hashes = ?1 WHERE block = 0",
                        [blob(old)],
                    )?;
                    Ok(())
                })
                .unwrap()
        };
        damage(&|mut b| {
            b.extend([0; 32]);
            b
        });
        let err = integrate(&store, &key, "new.test/log", vec![entry(10)])
            .unwrap_err()
            .to_string();
        let want = format!("stored-hash block 0 holds {} bytes", 32 * (count + 1));
        assert!(err.contains(&want), "{err}");
        assert_eq!(store.size().unwrap(), TreeSize(10));
        damage(&|b| b[..64].to_vec());
        let err = read_error(&path, &[5]);
        assert!(err.contains("no stored hash 5"), "{err}");
        damage(&|b| b[..33].to_vec());
        let err = read_error(&path, &[0]);
        assert!(err.contains("stored-hash block 0 holds 33 bytes"), "{err}");
    }

    /// A new log of `n` entries in a temporary directory (kept while the
    /// first value lives), with its database's path.
    fn new_log_of(n: u64) -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        let key = key("new.test/log");
        integrate(&store, &key, "new.test/log", (0..n).map(entry).collect()).unwrap();
        (dir, path, store)
    }

    /// The error of reading `ids` from the log at `path`, opened afresh so
    /// that nothing comes from the hash cache.
    fn read_error(path: &Path, ids: &[u64]) -> String {
        SqliteStore::open(path)
            .unwrap()
            .read_hashes(ids)
            .unwrap_err()
            .to_string()
    }

    /// With several damaged blocks, a read fails with the failure of the
    /// first id it was asked for, as when each id was read in turn.
    #[test]
    fn a_read_fails_at_its_first_damaged_id() {
        // 200 leaves store 399 hashes: block 0 full, block 1 partial.
        let (_dir, path, store) = new_log_of(200);
        store
            .write(|c| {
                c.execute_batch(
                    "UPDATE hash_blocks SET hashes = substr(hashes, 1, 64) WHERE block = 0;
                     UPDATE hash_blocks SET hashes = substr(hashes, 1, 33) WHERE block = 1;",
                )?;
                Ok(())
            })
            .unwrap();
        let err = read_error(&path, &[1, 5, 300]);
        assert!(err.contains("no stored hash 5"), "{err}");
        let err = read_error(&path, &[300, 5]);
        assert!(err.contains("stored-hash block 1 holds 33 bytes"), "{err}");
        let err = read_error(&path, &[6, 5]);
        assert!(err.contains("no stored hash 6"), "{err}");
    }

    #[test]
    fn an_unknown_hash_layout_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        drop(SqliteStore::create(&path, "new.test/log", 0).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute(
            "UPDATE meta SET value = 'tiles' WHERE key = 'hash_layout'",
            [],
        )
        .unwrap();
        drop(c);
        let err = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(err.contains("hash_layout is \"tiles\""), "{err}");
    }

    /// After warming, a store answers the upper stored hashes from memory:
    /// with every hash row of the file zeroed behind its back it still
    /// gives the hashes it read, while a store opened afresh reads the
    /// zeros (so the rows were what a cold store reads).
    #[test]
    fn warming_keeps_the_upper_hashes_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        fill(&store, 3000, entry);
        drop(store);
        let size = TreeSize(3000);
        let upper = HashCache::warm_indexes(size);
        // Levels 8 to 11 of 3,000 leaves: 11 + 5 + 2 + 1 subtrees.
        assert_eq!(upper.len(), 19);
        assert_eq!(upper[0], daylight_core::tree::stored_hash_index(11, 0));
        let want = SqliteStore::open(&path)
            .unwrap()
            .read_hashes(&upper)
            .unwrap();
        let warm = SqliteStore::open(&path).unwrap();
        assert_eq!(crate::store::warm_hash_cache(&warm, size).unwrap(), 19);
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE hash_blocks SET hashes = zeroblob(length(hashes))",
                [],
            )
            .unwrap();
        assert_eq!(warm.read_hashes(&upper).unwrap(), want);
        let cold = SqliteStore::open(&path)
            .unwrap()
            .read_hashes(&upper)
            .unwrap();
        assert_ne!(cold, want);
    }

    /// A new log says its leaf filters take 16 bits per entry; a value this
    /// version does not know is refused at open, and a log without the key
    /// (made before) opens with the 10-bit filters it was written with.
    #[test]
    fn the_leaf_filter_shape_is_read_from_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let layout = |store: &SqliteStore| match &store.lookup {
            Lookup::Runs(d) => d.read().unwrap().layout(),
            Lookup::Index => panic!("a new log has runs"),
        };
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        assert_eq!(layout(&store), dedup::RunLayout::Blocks);
        drop(store);
        let c = Connection::open(&path).unwrap();
        assert_eq!(
            meta_value(&c, dedup::FILTER_SHAPE_KEY).unwrap().as_deref(),
            Some(dedup::BLOCKS_VALUE)
        );
        // A log of the version before keeps its runs as rows.
        c.execute(
            "UPDATE meta SET value = '16' WHERE key = ?1",
            [dedup::FILTER_SHAPE_KEY],
        )
        .unwrap();
        assert_eq!(
            layout(&SqliteStore::open(&path).unwrap()),
            dedup::RunLayout::Rows
        );
        c.execute(
            "UPDATE meta SET value = '12' WHERE key = ?1",
            [dedup::FILTER_SHAPE_KEY],
        )
        .unwrap();
        drop(c);
        let err = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(err.contains("leaf_filter_bits is \"12\""), "{err}");
        let c = Connection::open(&path).unwrap();
        c.execute("DELETE FROM meta WHERE key = ?1", [dedup::FILTER_SHAPE_KEY])
            .unwrap();
        drop(c);
        assert_eq!(
            layout(&SqliteStore::open(&path).unwrap()),
            dedup::RunLayout::Rows
        );
    }

    /// A new log's first run of leaf prefixes goes to `leaf_blocks`, none
    /// to `leaf_runs`, and every entry is found through it after a reopen
    /// (when the map in memory no longer holds it).
    #[test]
    fn a_new_log_writes_its_runs_as_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        let key = key("new.test/log");
        let n = dedup::RUN + 100;
        let mut i = 0;
        while i < n {
            let end = (i + 16_384).min(n);
            integrate(&store, &key, "new.test/log", (i..end).map(entry).collect()).unwrap();
            i = end;
        }
        let count = |store: &SqliteStore, table: &str| -> i64 {
            store
                .read(|c| {
                    Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
                })
                .unwrap()
        };
        let blocks = dedup::RUN.div_ceil(dedup::BLOCK_PAIRS as u64) as i64;
        assert_eq!(count(&store, "leaf_blocks"), blocks);
        assert_eq!(count(&store, "leaf_runs"), 0);
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        for i in [0, 1, 77_777, dedup::RUN - 1, dedup::RUN, n - 1] {
            assert_eq!(
                store.find_leaf(&entry(i).leaf_hash).unwrap(),
                Some(LeafIndex(i)),
                "entry {i}"
            );
        }
        assert_eq!(store.find_leaf(&entry(n).leaf_hash).unwrap(), None);
        let err = integrate(&store, &key, "new.test/log", vec![entry(5)])
            .err()
            .unwrap();
        assert!(err.to_string().contains("repeats entry 5"), "{err}");
    }

    /// Witness and mirror rows read the same keys on every read (parsed
    /// once, `KeyCache`); a row whose key does not parse is corrupt on
    /// every read, and names its table and text.
    #[test]
    fn witness_and_mirror_keys_are_read_the_same_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        let (w, m) = (key("w1.example"), key("m1.example"));
        store.add_witness(w.verifier(), "http://w1.test").unwrap();
        store.add_mirror(m.verifier(), "http://m1.test").unwrap();
        for _ in 0..3 {
            assert_eq!(store.witnesses().unwrap()[0].key, *w.verifier());
            assert_eq!(store.mirrors().unwrap().mirrors[0].key, *m.verifier());
        }
        assert_eq!(store.keys.len(), 2, "each key parsed once and kept");
        let c = Connection::open(&path).unwrap();
        for table in ["witnesses", "mirrors"] {
            c.execute(
                &format!(
                    "INSERT INTO {table} (vkey, url) VALUES ('bad+00000000+AA', 'http://x.test')"
                ),
                [],
            )
            .unwrap();
        }
        for _ in 0..2 {
            let err = store.witnesses().err().unwrap();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            assert!(
                err.to_string().contains("witness key bad+00000000+AA"),
                "{err}"
            );
            let err = store.mirrors().err().unwrap();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            assert!(
                err.to_string().contains("mirror key bad+00000000+AA"),
                "{err}"
            );
        }
    }

    /// A log created before the leaf runs keeps its `UNIQUE` index and its
    /// indexes by kind and signer, and works as before.
    #[test]
    fn a_log_made_before_the_runs_keeps_its_unique_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        legacy_log(&path);
        let store = SqliteStore::open(&path).unwrap();
        assert!(matches!(store.lookup, Lookup::Index));
        assert_eq!(store.hash_layout, HashLayout::Rows);
        let page: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(page, 4096, "an existing file keeps its page size");
        let key = key("old.test/log");
        integrate(&store, &key, "old.test/log", (0..25).map(entry).collect()).unwrap();
        assert_eq!(
            store.find_leaf(&entry(7).leaf_hash).unwrap(),
            Some(LeafIndex(7))
        );
        assert!(integrate(&store, &key, "old.test/log", vec![entry(7)]).is_err());
        let registry: Vec<u64> = store
            .entries_of_kind("registry", LeafIndex(5))
            .unwrap()
            .iter()
            .map(|e| e.index.get())
            .collect();
        assert_eq!(registry, vec![10, 20]);
    }

    #[test]
    fn a_new_log_finds_its_registry_by_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("log.db"), "new.test/log", 0).unwrap();
        assert!(matches!(store.lookup, Lookup::Runs(_)));
        let page: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(page, i64::from(NEW_LOG_PAGE_SIZE));
        let key = key("new.test/log");
        integrate(&store, &key, "new.test/log", (0..35).map(entry).collect()).unwrap();
        let of = |kind: &str, from: u64| -> Vec<u64> {
            store
                .entries_of_kind(kind, LeafIndex(from))
                .unwrap()
                .iter()
                .map(|e| e.index.get())
                .collect()
        };
        assert_eq!(of("registry", 0), vec![0, 10, 20, 30]);
        assert_eq!(of("registry", 11), vec![20, 30]);
        assert_eq!(of("request", 33), vec![33, 34]);
        let plan: String = store
            .read(|c| {
                Ok(c.query_row(
                    "EXPLAIN QUERY PLAN SELECT idx, stored, leaf_hash, dict FROM entries WHERE kind = 'registry' AND idx >= ?1 ORDER BY idx",
                    [0],
                    |r| r.get(3),
                )?)
            })
            .unwrap();
        assert!(plan.contains("entries_registry"), "{plan}");
        // A binary from before the compression fails on this file rather
        // than reading its stored bytes as records.
        let old_read = store.read(|c| Ok(c.prepare("SELECT data FROM entries").is_err()));
        assert!(old_read.unwrap(), "a new log has no `data` column");
    }

    /// Integrates entries `from..from + 10` into a `new.test/log` store and
    /// commits them, not waiting for their sync.
    fn commit_ten(
        store: &SqliteStore,
        from: u64,
    ) -> Result<crate::integrate::Committed, crate::integrate::IntegrateError> {
        crate::integrate::integrate_committed(
            store,
            &key("new.test/log"),
            "new.test/log",
            (from..from + 10).map(entry).collect(),
            None,
            Settled::default(),
            None,
        )
    }

    /// A committed batch whose sync has not answered is readable, but its
    /// checkpoint is not the latest one witnesses may be given; its sync
    /// answers it, and every batch committed before the sync began.
    #[test]
    fn a_checkpoint_is_latest_only_once_its_batch_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("log.db"), "new.test/log", 0).unwrap();
        let commit = |from: u64| {
            let c = commit_ten(&store, from).unwrap();
            (c.integrated, c.durable)
        };
        let (first, first_sync) = commit(0);
        assert_eq!(store.latest_checkpoint().unwrap(), None);
        assert_eq!(store.durable_size().unwrap(), TreeSize(0));
        first_sync.wait().unwrap();
        assert_eq!(store.durable_size().unwrap(), TreeSize(10));
        assert_eq!(
            store.latest_checkpoint().unwrap(),
            Some(first.checkpoint.clone())
        );
        let (second, second_sync) = commit(10);
        let (third, third_sync) = commit(20);
        assert_eq!(
            store.size().unwrap(),
            TreeSize(30),
            "committed batches are visible"
        );
        assert_eq!(
            store.entry(LeafIndex(25)).unwrap().unwrap().data,
            entry(25).data
        );
        assert_eq!(store.latest_checkpoint().unwrap(), Some(first.checkpoint));
        // Tiles and entries are served up to the synced batches only.
        assert_eq!(store.durable_size().unwrap(), TreeSize(10));
        // One sync for both: the third's wait answers the second too.
        third_sync.wait().unwrap();
        assert_eq!(store.latest_checkpoint().unwrap(), Some(third.checkpoint));
        assert_eq!(store.durable_size().unwrap(), TreeSize(30));
        second_sync.wait().unwrap();
        assert_ne!(second.checkpoint, Vec::<u8>::new());
        // Another process sees no ceiling of this one's (witnessing waits
        // for a sync of its own after reading a checkpoint).
        let other = SqliteStore::open(&dir.path().join("log.db")).unwrap();
        let (_, pending) = commit(30);
        assert_ne!(
            other.latest_checkpoint().unwrap(),
            store.latest_checkpoint().unwrap()
        );
        pending.wait().unwrap();
        assert_eq!(
            other.latest_checkpoint().unwrap(),
            store.latest_checkpoint().unwrap()
        );
    }

    #[test]
    fn after_a_failed_sync_the_store_writes_nothing_until_it_is_opened_again() {
        use crate::integrate::IntegrateError;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let mut store = SqliteStore::create(&path, "new.test/log", 0).unwrap();
        let commit = |store: &SqliteStore, from: u64| commit_ten(store, from).map(|c| c.durable);
        commit(&store, 0).unwrap().wait().unwrap();
        // The filesystem fails once and would then report healthy.
        let failed = std::sync::atomic::AtomicBool::new(false);
        store.syncs = SyncGroup::new(Box::new(move || {
            if failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err("EIO (injected)".into())
            }
        }));
        let refused = commit(&store, 10).unwrap().wait().unwrap_err();
        assert!(
            matches!(&refused, StoreError::Unwritable(m) if m.contains("EIO (injected)")),
            "{refused}"
        );
        assert_eq!(store.durable_size().unwrap(), TreeSize(10));
        // Neither an append nor any other write is made now.
        let next = commit(&store, 20).expect_err("an append after the failure");
        assert!(
            matches!(&next, IntegrateError::Store(StoreError::Unwritable(m)) if m.contains("restart")),
            "{next}"
        );
        assert_eq!(store.size().unwrap(), TreeSize(20), "nothing appended");
        let published = store.publish(TreeSize(10), b"note").unwrap_err();
        assert!(
            matches!(published, StoreError::Unwritable(_)),
            "{published}"
        );
        assert_eq!(store.durable_size().unwrap(), TreeSize(10));
        drop(store);
        // Opened again, it reads what is on disk and writes again.
        let store = SqliteStore::open(&path).unwrap();
        commit(&store, 20).unwrap().wait().unwrap();
        assert_eq!(store.durable_size().unwrap(), TreeSize(30));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_journal_probe_changes_a_size_and_reports_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let probe = tempfile::tempfile_in(dir.path()).unwrap();
        journal_accepts_writes(&probe).unwrap();
        assert_eq!(probe.metadata().unwrap().len(), 1);
        journal_accepts_writes(&probe).unwrap();
        assert_eq!(probe.metadata().unwrap().len(), 0);
        // A size change the system refuses (here: a descriptor opened for
        // reading only) is a failed sync.
        let named = dir.path().join("probe");
        std::fs::write(&named, b"").unwrap();
        let read_only = std::fs::File::open(&named).unwrap();
        let err = journal_accepts_writes(&read_only).unwrap_err();
        assert!(
            err.starts_with("a journal transaction after syncfs: "),
            "{err}"
        );
    }
}
