//! The witness's state in SQLite (WAL mode, `synchronous=FULL`: a commit is on
//! disk when it returns). One row per known log: its origin, verifier key, and
//! the latest checkpoint this witness cosigned (size, root, the note with the
//! log's signature and our cosignature).

use std::path::{Path, PathBuf};
use std::time::Duration;

use daylight_core::witness_protocol::origin_hash;
use daylight_core::{Hash, KeyType, TreeSize, VerifierKey};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension as _, Transaction};

/// The database file inside a witness directory.
pub const DB_FILE: &str = "witness.db";

/// The cosignature key file inside a witness directory.
pub const KEY_FILE: &str = "witness.key";

/// Why the witness's database refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("witness database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `create` found a database already there.
    #[error("a witness database already exists at {0}")]
    AlreadyExists(PathBuf),
    /// `open` found no database.
    #[error("no witness database at {0} (run `daylight witness init` first)")]
    Missing(PathBuf),
    /// A row that this code did not write.
    #[error("witness database is corrupt: {0}")]
    Corrupt(String),
    /// The origin cannot be a checkpoint's first line.
    #[error("invalid origin {0:?}: must be non-empty, with no control characters")]
    BadOrigin(String),
    /// The key cannot sign checkpoints.
    #[error("the log key must be an Ed25519 note key (type 0x01), not {0:?}")]
    WrongKeyType(KeyType),
    /// A rotated log key with another name than the key it replaces.
    #[error("the log's key {old} cannot be replaced by {new}: a log's keys keep its name")]
    KeyNameChanged {
        /// The key known now.
        old: String,
        /// The key offered.
        new: String,
    },
    /// No log with that origin is known.
    #[error("no log {0:?} is known here (add it with `daylight witness add-log`)")]
    UnknownOrigin(String),
    /// The origin is known with another key.
    #[error("log {origin:?} is already known with key {vkey}")]
    OriginTaken {
        /// The origin.
        origin: String,
        /// The key it is known with.
        vkey: String,
    },
}

/// What the witness knows about one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The log's origin line.
    pub origin: String,
    /// The key the log signs checkpoints with.
    pub vkey: VerifierKey,
    /// Size of the latest cosigned checkpoint (0 if none).
    pub size: TreeSize,
    /// Root of the latest cosigned checkpoint (the empty tree's if none).
    pub root: Hash,
    /// The latest cosigned checkpoint: the log's verified signature(s) and
    /// this witness's cosignature. `None` until the first cosignature.
    pub checkpoint: Option<Vec<u8>>,
    /// When it was cosigned (the cosignature's timestamp, Unix seconds).
    pub cosigned_at: Option<u64>,
}

/// A conditional state change: from (`old`, `old_root`) to the new checkpoint.
#[derive(Clone, Debug)]
pub struct Advance {
    /// The log.
    pub origin: String,
    /// The size the request was checked against.
    pub old: TreeSize,
    /// The root at `old` the request was checked against.
    pub old_root: Hash,
    /// The new size.
    pub size: TreeSize,
    /// The new root.
    pub root: Hash,
    /// The cosigned checkpoint note.
    pub checkpoint: Vec<u8>,
    /// The cosignature's timestamp.
    pub cosigned_at: u64,
}

/// Whether [`add_log`] added a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddLog {
    /// New log.
    Added,
    /// Already known with the same key: nothing changed.
    AlreadyKnown,
}

const SCHEMA: &str = "
CREATE TABLE logs (
    origin       TEXT PRIMARY KEY,
    origin_hash  TEXT NOT NULL UNIQUE,  -- lower-case hex SHA-256(origin), the monitoring name
    vkey         TEXT NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    root         BLOB NOT NULL,         -- 32 bytes
    checkpoint   BLOB,                  -- latest cosigned note, NULL until the first
    cosigned_at  INTEGER,
    added_at     INTEGER NOT NULL
) STRICT;
PRAGMA user_version = 1;
";

/// Creates a new, empty witness database at `path`.
pub fn create(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Err(StoreError::AlreadyExists(path.to_owned()));
    }
    let conn = open_sqlite(path, true, StoreError::Corrupt)?;
    conn.execute_batch(&format!("BEGIN IMMEDIATE;{SCHEMA}COMMIT;"))?;
    Ok(())
}

/// Opens an existing witness database.
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
    Ok(conn)
}

/// Opens (with `create`, also creates) the SQLite file at `path` the way
/// the witness's and the mirror's databases are opened: a 10 s busy timeout,
/// WAL mode, `synchronous = FULL` and foreign keys on. `corrupt` builds the
/// caller's error when WAL mode cannot be switched on.
pub fn open_sqlite<E: From<rusqlite::Error>>(
    path: &Path,
    create: bool,
    corrupt: impl FnOnce(String) -> E,
) -> Result<Connection, E> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(format!(
            "could not switch to WAL mode (got {mode})"
        )));
    }
    // FULL: every commit syncs the WAL, so a cosigned state (and a mirror's
    // stored entries) survive power loss before the answer leaves.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(conn)
}

/// Checks that `origin` can be a checkpoint's origin line.
pub fn check_origin(origin: &str) -> Result<(), StoreError> {
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err(StoreError::BadOrigin(origin.to_owned()));
    }
    Ok(())
}

/// Lets the witness cosign the log with `origin` signed by `vkey`. The key's
/// name need not be the origin (the spec only says it SHOULD be). Adding the
/// same log twice is a no-op; the same origin with another key is refused.
pub fn add_log(
    conn: &mut Connection,
    origin: &str,
    vkey: &VerifierKey,
    now: u64,
) -> Result<AddLog, StoreError> {
    check_origin(origin)?;
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
        "INSERT INTO logs (origin, origin_hash, vkey, size, root, added_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?5)",
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

/// Replaces the key a known log signs with (the log rotated its key: during
/// the log's transition its checkpoints carry both signatures, so either
/// key works until then). The log's cosigned state is kept: consistency
/// with what was cosigned under the old key still binds it.
pub fn rotate_log_key(
    conn: &mut Connection,
    origin: &str,
    vkey: &VerifierKey,
) -> Result<(), StoreError> {
    check_origin(origin)?;
    if vkey.key_type() != KeyType::Ed25519 {
        return Err(StoreError::WrongKeyType(vkey.key_type()));
    }
    let known: Option<String> = conn
        .query_row("SELECT vkey FROM logs WHERE origin = ?1", [origin], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(known) = known else {
        return Err(StoreError::UnknownOrigin(origin.to_owned()));
    };
    let known = VerifierKey::parse(&known)
        .map_err(|e| StoreError::Corrupt(format!("log {origin:?}: verifier key: {e}")))?;
    // A log's keys all carry its name (Daylight: the origin); another name
    // is another log's key, not this one's successor.
    if known.name() != vkey.name() {
        return Err(StoreError::KeyNameChanged {
            old: known.to_string(),
            new: vkey.to_string(),
        });
    }
    conn.execute(
        "UPDATE logs SET vkey = ?2 WHERE origin = ?1",
        params![origin, vkey.to_string()],
    )?;
    Ok(())
}

const COLUMNS: &str = "origin, vkey, size, root, checkpoint, cosigned_at";

type RawRecord = (String, String, i64, Vec<u8>, Option<Vec<u8>>, Option<i64>);

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn decode(raw: RawRecord) -> Result<LogRecord, StoreError> {
    let (origin, vkey, size, root, checkpoint, cosigned_at) = raw;
    let corrupt = |what: &str| StoreError::Corrupt(format!("log {origin:?}: {what}"));
    let vkey = VerifierKey::parse(&vkey).map_err(|e| corrupt(&format!("verifier key: {e}")))?;
    let size = u64::try_from(size).map_err(|_| corrupt("negative size"))?;
    let root = Hash::from_slice(&root).ok_or_else(|| corrupt("root is not 32 bytes"))?;
    let cosigned_at = cosigned_at
        .map(u64::try_from)
        .transpose()
        .map_err(|_| corrupt("negative timestamp"))?;
    Ok(LogRecord {
        origin,
        vkey,
        size: TreeSize(size),
        root,
        checkpoint,
        cosigned_at,
    })
}

/// Every known log, by origin.
pub fn logs(conn: &Connection) -> Result<Vec<LogRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM logs ORDER BY origin"))?;
    let raws = stmt.query_map([], record)?.collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(decode).collect()
}

/// One log by its origin.
pub fn log(conn: &Connection, origin: &str) -> Result<Option<LogRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM logs WHERE origin = ?1"))?;
    let raw = stmt.query_row([origin], record).optional()?;
    raw.map(decode).transpose()
}

/// The latest cosigned checkpoint of the log whose origin hashes to
/// `origin_hash` (lower-case hex), if it has one.
pub fn checkpoint_by_hash(
    conn: &Connection,
    origin_hash: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT checkpoint FROM logs WHERE origin_hash = ?1")?;
    let found: Option<Option<Vec<u8>>> = stmt.query_row([origin_hash], |r| r.get(0)).optional()?;
    Ok(found.flatten())
}

/// Applies `advance` inside `tx` only if the log is still at (`old`,
/// `old_root`). Returns `Ok(Err(latest size))` when it is not: another request
/// got there first.
pub fn advance(
    tx: &Transaction<'_>,
    advance: &Advance,
) -> Result<Result<(), TreeSize>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "UPDATE logs SET size = ?1, root = ?2, checkpoint = ?3, cosigned_at = ?4
         WHERE origin = ?5 AND size = ?6 AND root = ?7",
    )?;
    let changed = stmt.execute(params![
        to_i64(advance.size.get())?,
        advance.root.as_bytes().as_slice(),
        advance.checkpoint,
        to_i64(advance.cosigned_at)?,
        advance.origin,
        to_i64(advance.old.get())?,
        advance.old_root.as_bytes().as_slice(),
    ])?;
    match changed {
        1 => Ok(Ok(())),
        0 => {
            let size: Option<i64> = tx
                .query_row(
                    "SELECT size FROM logs WHERE origin = ?1",
                    [&advance.origin],
                    |r| r.get(0),
                )
                .optional()?;
            let size = size.ok_or_else(|| {
                StoreError::Corrupt(format!("log {:?} disappeared", advance.origin))
            })?;
            let size =
                u64::try_from(size).map_err(|_| StoreError::Corrupt("negative size".to_owned()))?;
            Ok(Err(TreeSize(size)))
        }
        n => Err(StoreError::Corrupt(format!("{n} rows for one origin"))),
    }
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} does not fit SQLite's integers")))
}
