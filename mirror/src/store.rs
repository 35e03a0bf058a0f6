//! The mirror's state in SQLite (WAL mode, `synchronous=FULL`: a commit is on
//! disk when it returns).
//!
//! - `logs`: one row per mirrored log: its origin and key, the *pending*
//!   checkpoint (the log-signed checkpoint add-checkpoint accepted last,
//!   with the log's signatures only), the *next entry* (entries `[0, next)`
//!   are stored), and the *mirror* checkpoint (the newest one this mirror
//!   cosigned, with the log's signatures and the mirror's cosignature).
//! - `pending`: the last [`PENDING_KEPT`] pending checkpoints of each log
//!   (and always the one at the mirror checkpoint's size): the `upload_end`
//!   values add-entries accepts, so the mirror needs no tickets.
//! - `entries`: the entries `[0, next)` of each log.
//! - `hashes`: the log's stored Merkle hashes (core's stored-hash layout),
//!   computed from the entries as they are stored; hash tiles are read from
//!   them.

use std::path::{Path, PathBuf};

use daylight_core::tree::{HashReader, TreeError};
use daylight_core::witness_protocol::origin_hash;
use daylight_core::{Hash, KeyType, TreeSize, VerifierKey};
use daylight_witness::store::open_sqlite;
use rusqlite::{params, Connection, OptionalExtension as _};

/// The database file inside a mirror directory.
pub const DB_FILE: &str = "mirror.db";

/// The cosignature key file inside a mirror directory.
pub const KEY_FILE: &str = "mirror.key";

/// How many past pending checkpoints per log are kept as valid `upload_end`s.
pub const PENDING_KEPT: i64 = 16;

/// Why the mirror's database refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("mirror database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `create` found a database already there.
    #[error("a mirror database already exists at {0}")]
    AlreadyExists(PathBuf),
    /// `open` found no database.
    #[error("no mirror database at {0} (run `daylight mirror init` first)")]
    Missing(PathBuf),
    /// A row that this code did not write.
    #[error("mirror database is corrupt: {0}")]
    Corrupt(String),
    /// The origin cannot be a checkpoint's first line.
    #[error("invalid origin {0:?}: must be non-empty, with no control characters")]
    BadOrigin(String),
    /// The key cannot sign checkpoints.
    #[error("the log key must be an Ed25519 note key (type 0x01), not {0:?}")]
    WrongKeyType(KeyType),
    /// No log with this origin is mirrored.
    #[error("log {0:?} is not mirrored here (add it with `daylight mirror add-log` first)")]
    UnknownLog(String),
    /// The origin is known with another key.
    #[error("log {origin:?} is already mirrored with key {vkey}")]
    OriginTaken {
        /// The origin.
        origin: String,
        /// The key it is known with.
        vkey: String,
    },
}

/// Whether [`add_log`] added a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddLog {
    /// New log.
    Added,
    /// Already known with the same key: nothing changed.
    AlreadyKnown,
}

/// What the mirror holds for one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Row id (entries and hashes refer to it).
    pub id: i64,
    /// The log's origin line.
    pub origin: String,
    /// The key the log signs checkpoints with.
    pub vkey: VerifierKey,
    /// Size of the pending checkpoint (0 if none).
    pub pending_size: TreeSize,
    /// Its root (the empty tree's if none).
    pub pending_root: Hash,
    /// Whether a pending checkpoint was ever accepted.
    pub has_pending: bool,
    /// The first entry not stored.
    pub next_entry: u64,
    /// Size of the mirror checkpoint (0 if none).
    pub mirror_size: TreeSize,
    /// The mirror checkpoint, `None` until the first cosignature.
    pub mirror_checkpoint: Option<Vec<u8>>,
    /// Its cosignature's timestamp.
    pub cosigned_at: Option<u64>,
}

const SCHEMA: &str = "
CREATE TABLE logs (
    id                 INTEGER PRIMARY KEY,
    origin             TEXT NOT NULL UNIQUE,
    origin_hash        TEXT NOT NULL UNIQUE,  -- lower-case hex SHA-256(origin)
    vkey               TEXT NOT NULL,
    pending_size       INTEGER NOT NULL DEFAULT 0 CHECK (pending_size >= 0),
    pending_root       BLOB NOT NULL,
    pending_checkpoint BLOB,                  -- log-signed note, NULL until the first
    next_entry         INTEGER NOT NULL DEFAULT 0 CHECK (next_entry >= 0),
    mirror_size        INTEGER NOT NULL DEFAULT 0 CHECK (mirror_size >= 0),
    mirror_checkpoint  BLOB,                  -- cosigned note, NULL until the first
    cosigned_at        INTEGER,
    added_at           INTEGER NOT NULL
) STRICT;
CREATE TABLE pending (
    log        INTEGER NOT NULL REFERENCES logs (id),
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    checkpoint BLOB NOT NULL,
    PRIMARY KEY (log, size)
) STRICT, WITHOUT ROWID;
CREATE TABLE entries (
    log  INTEGER NOT NULL REFERENCES logs (id),
    idx  INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (log, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE hashes (
    log  INTEGER NOT NULL REFERENCES logs (id),
    idx  INTEGER NOT NULL,                    -- core's stored-hash index
    hash BLOB NOT NULL,
    PRIMARY KEY (log, idx)
) STRICT, WITHOUT ROWID;
PRAGMA user_version = 1;
";

/// The logs the mirror pulls from (see [`crate::follow`]): added to any
/// database on open, so a mirror made before pulling existed keeps working.
const FOLLOWS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS follows (
    log        INTEGER PRIMARY KEY REFERENCES logs (id),
    url        TEXT NOT NULL,                 -- the log's tlog-tiles prefix
    error      TEXT,                          -- why the last poll failed, NULL if it did not
    checked_at INTEGER                        -- when the last poll ended
) STRICT;
";

/// A log the mirror follows by itself, and how its last poll went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    /// The log's origin.
    pub origin: String,
    /// The log's tlog-tiles prefix (`<url>/checkpoint`, `<url>/tile/...`).
    pub url: String,
    /// Why the last poll failed (`None`: it succeeded, or none ran yet).
    pub error: Option<String>,
    /// When the last poll ended (Unix seconds).
    pub checked_at: Option<u64>,
}

/// Makes the mirror follow the log with `origin` at `url` (replacing an
/// earlier URL), or stop following it (`url` is `None`).
pub fn set_follow(conn: &Connection, origin: &str, url: Option<&str>) -> Result<(), StoreError> {
    let record = log(conn, origin)?.ok_or_else(|| StoreError::UnknownLog(origin.to_owned()))?;
    match url {
        Some(url) => conn.execute(
            "INSERT INTO follows (log, url) VALUES (?1, ?2)
             ON CONFLICT (log) DO UPDATE SET url = excluded.url, error = NULL, checked_at = NULL",
            rusqlite::params![record.id, url],
        )?,
        None => conn.execute("DELETE FROM follows WHERE log = ?1", [record.id])?,
    };
    Ok(())
}

/// Every followed log, by origin.
pub fn follows(conn: &Connection) -> Result<Vec<Follow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT logs.origin, follows.url, follows.error, follows.checked_at
         FROM follows JOIN logs ON logs.id = follows.log ORDER BY logs.origin",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Follow {
            origin: r.get(0)?,
            url: r.get(1)?,
            error: r.get(2)?,
            checked_at: r.get::<_, Option<i64>>(3)?.map(|t| t.max(0) as u64),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records how a poll of the followed log `origin` ended.
pub fn set_follow_status(
    conn: &Connection,
    origin: &str,
    error: Option<&str>,
    now: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE follows SET error = ?2, checked_at = ?3
         WHERE log = (SELECT id FROM logs WHERE origin = ?1)",
        rusqlite::params![origin, error, i64::try_from(now).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// Creates a new, empty mirror database at `path`.
pub fn create(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Err(StoreError::AlreadyExists(path.to_owned()));
    }
    let conn = open_sqlite(path, true, StoreError::Corrupt)?;
    conn.execute_batch(&format!("BEGIN IMMEDIATE;{SCHEMA}COMMIT;"))?;
    Ok(())
}

/// Opens an existing mirror database.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_owned()));
    }
    let conn = open_sqlite(path, false, StoreError::Corrupt)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != 1 {
        return Err(StoreError::Corrupt(format!(
            "schema version {version}, expected 1"
        )));
    }
    conn.execute_batch(FOLLOWS_SCHEMA)?;
    Ok(conn)
}

/// Lets the mirror accept the log with `origin` signed by `vkey`. Adding the
/// same log twice is a no-op; the same origin with another key is refused.
pub fn add_log(
    conn: &mut Connection,
    origin: &str,
    vkey: &VerifierKey,
    now: u64,
) -> Result<AddLog, StoreError> {
    daylight_witness::store::check_origin(origin)
        .map_err(|_| StoreError::BadOrigin(origin.to_owned()))?;
    if vkey.key_type() != KeyType::Ed25519 {
        return Err(StoreError::WrongKeyType(vkey.key_type()));
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let existing: Option<String> = tx
        .query_row("SELECT vkey FROM logs WHERE origin = ?1", [origin], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(known) = existing {
        return if known == vkey.to_string() {
            Ok(AddLog::AlreadyKnown)
        } else {
            Err(StoreError::OriginTaken {
                origin: origin.to_owned(),
                vkey: known,
            })
        };
    }
    tx.execute(
        "INSERT INTO logs (origin, origin_hash, vkey, pending_root, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            origin,
            origin_hash(origin),
            vkey.to_string(),
            Hash::empty_tree().as_bytes().as_slice(),
            to_i64(now)?,
        ],
    )?;
    tx.commit()?;
    Ok(AddLog::Added)
}

const COLUMNS: &str =
    "id, origin, vkey, pending_size, pending_root, pending_checkpoint IS NOT NULL,
    next_entry, mirror_size, mirror_checkpoint, cosigned_at";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LogRecord, StoreError>> {
    let origin: String = row.get(1)?;
    let vkey: String = row.get(2)?;
    let pending_size: i64 = row.get(3)?;
    let pending_root: Vec<u8> = row.get(4)?;
    let has_pending: bool = row.get(5)?;
    let next_entry: i64 = row.get(6)?;
    let mirror_size: i64 = row.get(7)?;
    let mirror_checkpoint: Option<Vec<u8>> = row.get(8)?;
    let cosigned_at: Option<i64> = row.get(9)?;
    let id: i64 = row.get(0)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("log {origin:?}: {what}"));
    Ok((|| {
        Ok(LogRecord {
            id,
            vkey: VerifierKey::parse(&vkey).map_err(|e| corrupt(&format!("key: {e}")))?,
            pending_size: TreeSize(to_u64(pending_size)?),
            pending_root: Hash::from_slice(&pending_root)
                .ok_or_else(|| corrupt("root is not 32 bytes"))?,
            has_pending,
            next_entry: to_u64(next_entry)?,
            mirror_size: TreeSize(to_u64(mirror_size)?),
            mirror_checkpoint,
            cosigned_at: cosigned_at.map(to_u64).transpose()?,
            origin: origin.clone(),
        })
    })())
}

/// One log by its origin.
pub fn log(conn: &Connection, origin: &str) -> Result<Option<LogRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM logs WHERE origin = ?1"))?;
    stmt.query_row([origin], record).optional()?.transpose()
}

/// One log by its origin hash (lower-case hex).
pub fn log_by_hash(conn: &Connection, hash: &str) -> Result<Option<LogRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM logs WHERE origin_hash = ?1"
    ))?;
    stmt.query_row([hash], record).optional()?.transpose()
}

/// Every mirrored log, by origin.
pub fn logs(conn: &Connection) -> Result<Vec<LogRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM logs ORDER BY origin"))?;
    let rows = stmt.query_map([], record)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().collect()
}

/// Records a new pending checkpoint (`note` holds the log's signatures only)
/// and keeps it among the accepted `upload_end` values; older ones beyond
/// [`PENDING_KEPT`] are forgotten, except the mirror checkpoint's.
pub fn set_pending(
    conn: &Connection,
    log: &LogRecord,
    size: TreeSize,
    root: Hash,
    note: &[u8],
) -> Result<(), StoreError> {
    let size = to_i64(size.get())?;
    conn.execute(
        "UPDATE logs SET pending_size = ?2, pending_root = ?3, pending_checkpoint = ?4 WHERE id = ?1",
        params![log.id, size, root.as_bytes().as_slice(), note],
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO pending (log, size, root, checkpoint) VALUES (?1, ?2, ?3, ?4)",
        params![log.id, size, root.as_bytes().as_slice(), note],
    )?;
    conn.execute(
        "DELETE FROM pending WHERE log = ?1
           AND size <> (SELECT mirror_size FROM logs WHERE id = ?1)
           AND size NOT IN (SELECT size FROM pending WHERE log = ?1 ORDER BY size DESC LIMIT ?2)",
        params![log.id, PENDING_KEPT],
    )?;
    Ok(())
}

/// A pending checkpoint the mirror accepted with this size, if it still
/// keeps it: its root and its note (log signatures only).
pub fn pending(
    conn: &Connection,
    log: i64,
    size: TreeSize,
) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT root, checkpoint FROM pending WHERE log = ?1 AND size = ?2")?;
    let row: Option<(Vec<u8>, Vec<u8>)> = stmt
        .query_row(params![log, to_i64(size.get())?], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(root, note)| {
        let root = Hash::from_slice(&root)
            .ok_or_else(|| StoreError::Corrupt("pending root is not 32 bytes".to_owned()))?;
        Ok((root, note))
    })
    .transpose()
}

/// Stores entry `index` and the stored hashes it adds (at `first_hash..`).
pub fn put_entry(
    conn: &Connection,
    log: i64,
    index: u64,
    entry: &[u8],
    first_hash: u64,
    hashes: &[Hash],
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO entries (log, idx, data) VALUES (?1, ?2, ?3)")?
        .execute(params![log, to_i64(index)?, entry])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO hashes (log, idx, hash) VALUES (?1, ?2, ?3)")?;
    for (i, h) in hashes.iter().enumerate() {
        stmt.execute(params![
            log,
            to_i64(first_hash + i as u64)?,
            h.as_bytes().as_slice()
        ])?;
    }
    Ok(())
}

/// Sets the log's next entry.
pub fn set_next_entry(conn: &Connection, log: i64, next: u64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE logs SET next_entry = ?2 WHERE id = ?1",
        params![log, to_i64(next)?],
    )?;
    Ok(())
}

/// Makes `note` (cosigned at `cosigned_at`) the log's mirror checkpoint.
pub fn set_mirror(
    conn: &Connection,
    log: i64,
    size: TreeSize,
    note: &[u8],
    cosigned_at: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE logs SET mirror_size = ?2, mirror_checkpoint = ?3, cosigned_at = ?4 WHERE id = ?1",
        params![log, to_i64(size.get())?, note, to_i64(cosigned_at)?],
    )?;
    Ok(())
}

/// The entries `[start, start + count)`, which must all be stored.
pub fn entries(
    conn: &Connection,
    log: i64,
    start: u64,
    count: u64,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM entries WHERE log = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
    )?;
    let rows = stmt
        .query_map(params![log, to_i64(start)?, to_i64(start + count)?], |r| {
            r.get::<_, Vec<u8>>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if rows.len() as u64 != count {
        return Err(StoreError::Corrupt(format!(
            "entries [{start}, {}) incomplete: {} stored",
            start + count,
            rows.len()
        )));
    }
    Ok(rows)
}

/// A [`HashReader`] over one log's stored hashes.
pub struct StoredHashes<'a> {
    /// The connection (or transaction) to read through.
    pub conn: &'a Connection,
    /// The log's row id.
    pub log: i64,
}

impl HashReader for StoredHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        let storage = |e: rusqlite::Error| TreeError::Storage(e.to_string());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM hashes WHERE log = ?1 AND idx = ?2")
            .map_err(storage)?;
        indexes
            .iter()
            .map(|&x| {
                let idx = i64::try_from(x)
                    .map_err(|_| TreeError::Storage(format!("stored hash {x} out of range")))?;
                let bytes: Vec<u8> = stmt
                    .query_row(params![self.log, idx], |r| r.get(0))
                    .optional()
                    .map_err(storage)?
                    .ok_or_else(|| TreeError::Storage(format!("stored hash {x} missing")))?;
                Hash::from_slice(&bytes)
                    .ok_or_else(|| TreeError::Storage(format!("stored hash {x} is not 32 bytes")))
            })
            .collect()
    }
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} does not fit SQLite's integers")))
}

fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative value {n}")))
}
