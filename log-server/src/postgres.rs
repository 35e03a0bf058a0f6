//! The PostgreSQL backend, for a log that outgrows one machine: the same
//! tables as the SQLite backend, in whatever schema the connection's
//! `search_path` names, replicated by PostgreSQL's own streaming replication.
//!
//! - One writer connection and a few readers, each reconnecting by itself
//!   after the server went away (the call that found it gone fails with
//!   [`StoreError::Unavailable`]; the next one connects again).
//! - Statements are prepared once per connection.
//! - A batch is one transaction, and its first statement is a compare-and-swap
//!   on the one-row `tree_head` table: it moves the size from the size the
//!   batch was built on to the new size, or changes nothing and the batch is
//!   refused ([`StoreError::SizeChanged`]). The row lock it takes orders
//!   concurrent writers, so two batches can never both extend one size.
//! - Rows go in as arrays (`UNNEST`), one statement per table per batch,
//!   rather than a round trip per row.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use daylight_core::{Hash, LeafIndex, TreeSize, VerifierKey};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};

use crate::store::{
    refusals_cutoff, unix_ms, Append, HashCache, KeyCache, Lease, LeaseState, LogMeta, LogStore,
    MirrorSet, NewEntry, QueueRefusal, Settled, StoreError, StoredEntry, WitnessConfig,
};

const READERS: usize = 4;

/// How long connecting may take before the call fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tree_head (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    size BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    idx BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL UNIQUE,
    data BYTEA NOT NULL,
    kind TEXT NOT NULL,
    signer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_kind ON entries(kind, idx);
CREATE INDEX IF NOT EXISTS entries_by_signer ON entries(signer, idx);
CREATE TABLE IF NOT EXISTS hashes (id BIGINT PRIMARY KEY, hash BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size BIGINT PRIMARY KEY, note BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS published (size BIGINT PRIMARY KEY, note BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS witnesses (
    vkey TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    known_size BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS mirrors (vkey TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    holder TEXT NOT NULL DEFAULT '',
    token BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch'
);
INSERT INTO lease DEFAULT VALUES ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS queue (
    seq BIGSERIAL PRIMARY KEY,
    leaf_hash BYTEA NOT NULL UNIQUE,
    data BYTEA NOT NULL,
    kind TEXT NOT NULL,
    signer TEXT NOT NULL
);
";

/// Tables later versions added to a log: made when a log is opened (a log
/// an earlier version created lacks them), before any connection prepares
/// its statements.
const UPGRADES: &str = "
CREATE TABLE IF NOT EXISTS refused (
    leaf_hash BYTEA PRIMARY KEY,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
";

/// The statements every connection prepares once.
struct Statements {
    size: Statement,
    find_leaves: Statement,
    entry: Statement,
    entries: Statement,
    hashes: Statement,
    advance: Statement,
    put_entries: Statement,
    put_hashes: Statement,
    put_checkpoint: Statement,
    entries_of_kind: Statement,
    fence: Statement,
    settle: Statement,
    refuse: Statement,
    forget_refused: Statement,
    prune_refused: Statement,
    refusals: Statement,
    acquire: Statement,
    enqueue: Statement,
    queued: Statement,
}

impl Statements {
    fn prepare(c: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            size: c.prepare("SELECT size FROM tree_head")?,
            find_leaves: c.prepare(
                "SELECT leaf_hash, idx FROM entries WHERE leaf_hash = ANY($1::bytea[])",
            )?,
            entry: c.prepare("SELECT data, leaf_hash FROM entries WHERE idx = $1")?,
            entries: c.prepare(
                "SELECT idx, data, leaf_hash FROM entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            )?,
            hashes: c.prepare("SELECT id, hash FROM hashes WHERE id = ANY($1::bigint[])")?,
            advance: c.prepare("UPDATE tree_head SET size = $2 WHERE size = $1")?,
            put_entries: c.prepare(
                "INSERT INTO entries (idx, leaf_hash, data, kind, signer)
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[])",
            )?,
            put_hashes: c.prepare(
                "INSERT INTO hashes (id, hash) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
            )?,
            put_checkpoint: c.prepare("INSERT INTO checkpoints (size, note) VALUES ($1, $2)")?,
            entries_of_kind: c.prepare(
                "SELECT idx, data, leaf_hash FROM entries WHERE kind = $1 AND idx >= $2 ORDER BY idx",
            )?,
            // FOR SHARE: a frontend taking the lease over waits for this
            // transaction, so the check holds until the commit.
            fence: c.prepare(
                "SELECT 1 FROM lease WHERE token = $1 AND expires_at > now() FOR SHARE",
            )?,
            settle: c.prepare("DELETE FROM queue WHERE leaf_hash = ANY($1::bytea[])")?,
            refuse: c.prepare(
                "INSERT INTO refused (leaf_hash, status, code, detail, at_ms)
                 SELECT DISTINCT ON (l) l, s, c, d, $5::bigint
                 FROM UNNEST($1::bytea[], $2::int[], $3::text[], $4::text[]) AS t(l, s, c, d)
                 ON CONFLICT (leaf_hash) DO UPDATE SET status = EXCLUDED.status,
                     code = EXCLUDED.code, detail = EXCLUDED.detail, at_ms = EXCLUDED.at_ms",
            )?,
            forget_refused: c.prepare("DELETE FROM refused WHERE leaf_hash = ANY($1::bytea[])")?,
            prune_refused: c.prepare("DELETE FROM refused WHERE at_ms < $1")?,
            refusals: c.prepare(
                "SELECT leaf_hash, status, code, detail FROM refused WHERE leaf_hash = ANY($1::bytea[])",
            )?,
            // The same holder before expiry renews its term; anyone after
            // expiry starts a new term with a larger token.
            acquire: c.prepare(
                "UPDATE lease SET
                     token = CASE WHEN holder = $1 AND expires_at > now() THEN token ELSE token + 1 END,
                     holder = $1,
                     expires_at = now() + make_interval(secs => $2)
                 WHERE holder = $1 OR expires_at <= now() OR holder = $3
                 RETURNING token",
            )?,
            enqueue: c.prepare(
                "INSERT INTO queue (leaf_hash, data, kind, signer)
                 SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::text[], $4::text[])
                 ON CONFLICT (leaf_hash) DO NOTHING",
            )?,
            queued: c.prepare(
                "SELECT leaf_hash, data, kind, signer FROM queue ORDER BY seq LIMIT $1",
            )?,
        })
    }
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    stmts: Statements,
}

/// A connection slot that connects on first use and again after a failure.
struct Slot(Mutex<Option<Conn>>);

impl Drop for Slot {
    fn drop(&mut self) {
        // The synchronous client owns a small runtime of its own, and tokio
        // panics when a runtime is dropped on an async worker (as happens
        // when a server's last handle on the store goes at shutdown): close
        // the connection on a plain thread then.
        let conn = self.0.get_mut().ok().and_then(Option::take);
        if conn.is_some() && tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(conn)).join();
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    config: postgres::Config,
    writer: Slot,
    readers: Vec<Slot>,
    next_reader: AtomicUsize,
    upper: HashCache,
    /// Witness and mirror keys, parsed once.
    keys: KeyCache,
}

/// Classifies a driver error: the server unreachable or gone is
/// [`StoreError::Unavailable`]; a full disk or a read-only server (a standby,
/// or one shutting down) is [`StoreError::Unwritable`].
impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        let Some(code) = e.code() else {
            // No SQLSTATE: the connection failed or closed, or a value did
            // not convert (that one is ours, and says so in its text).
            let source = std::error::Error::source(&e);
            let text = match source {
                Some(s) => format!("{e}: {s}"),
                None => e.to_string(),
            };
            return if e.is_closed() || source.is_some_and(|s| s.is::<std::io::Error>()) {
                StoreError::Unavailable(text)
            } else {
                StoreError::Backend(text)
            };
        };
        let text = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if *code == SqlState::DISK_FULL
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || *code == SqlState::OUT_OF_MEMORY
            || *code == SqlState::INSUFFICIENT_RESOURCES
        {
            StoreError::Unwritable(text)
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            // Waits cut short, and conflicts worth retrying.
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::QUERY_CANCELED
            || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            StoreError::Unavailable(text)
        } else {
            StoreError::Backend(text)
        }
    }
}

fn u64_of(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Backend(format!("{v} exceeds PostgreSQL's bigint range")))
}

fn hash_of(bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).ok_or_else(|| StoreError::Corrupt("stored hash is not 32 bytes".into()))
}

fn row_entry(row: &postgres::Row) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        index: LeafIndex(u64_of(row.try_get(0)?, "index")?),
        data: row.try_get(1)?,
        leaf_hash: hash_of(row.try_get(2)?)?,
    })
}

/// Parses a `postgres://` URL (or key=value string) and sets the timeouts
/// the log relies on.
pub fn parse_url(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Backend(format!("database URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // A frontend paused or cut off inside a transaction must not hold the
    // lease or tree-head row locks for ever: the server ends such a
    // transaction before the lease (6 s) runs out, and a waiter gives up
    // after 2 s (and tries again) instead of blocking its connection.
    let options = format!(
        "{} -c lock_timeout=2000 -c idle_in_transaction_session_timeout=4000",
        config.get_options().unwrap_or_default()
    );
    config.options(options.trim());
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    // Operators (and tests) may name connections themselves.
    if config.get_application_name().is_none() {
        config.application_name("daylight-log");
    }
    Ok(config)
}

impl PostgresStore {
    /// Creates the log's tables in the database `url` names (in the schema
    /// its `search_path` picks) and records origin and quorum. Fails if that
    /// schema already holds a log.
    pub fn create(url: &str, origin: &str, quorum: usize) -> Result<PostgresStore, StoreError> {
        let config = parse_url(url)?;
        let mut client = config.connect(NoTls)?;
        let mut tx = client.transaction()?;
        tx.batch_execute(SCHEMA)?;
        let existing = tx.query_opt("SELECT value FROM meta WHERE key = 'origin'", &[])?;
        if let Some(row) = existing {
            let origin: String = row.try_get(0)?;
            return Err(StoreError::Backend(format!(
                "the database already holds the log {origin:?}"
            )));
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('origin', $1), ('quorum', $2)",
            &[&origin, &quorum.to_string()],
        )?;
        tx.execute("INSERT INTO tree_head (size) VALUES (0)", &[])?;
        tx.commit()?;
        drop(client);
        Self::open(url)
    }

    /// Opens the log in the database `url` names; fails with a clear error if
    /// the server cannot be reached or holds no log.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let config = parse_url(url)?;
        upgrade(&config)?;
        let store = PostgresStore {
            config,
            writer: Slot(Mutex::new(None)),
            readers: (0..READERS).map(|_| Slot(Mutex::new(None))).collect(),
            next_reader: AtomicUsize::new(0),
            upper: HashCache::default(),
            keys: KeyCache::default(),
        };
        // Connect now, so a wrong URL or a database without a log is an
        // error at start rather than at the first request.
        store.meta().map_err(|e| match e {
            StoreError::Backend(d) if d.starts_with("42P01") => StoreError::Backend(
                "the database holds no Daylight log (run `daylight log init --database ...` first)"
                    .into(),
            ),
            e => e,
        })?;
        Ok(store)
    }

    fn with<T>(
        &self,
        slot: &Slot,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = slot
            .0
            .lock()
            .map_err(|_| StoreError::Backend("database connection poisoned".into()))?;
        if guard.as_ref().is_some_and(|c| c.client.is_closed()) {
            *guard = None;
        }
        let conn = match guard.as_mut() {
            Some(c) => c,
            None => {
                let mut client = self.config.connect(NoTls)?;
                let stmts = Statements::prepare(&mut client)?;
                guard.insert(Conn { client, stmts })
            }
        };
        let result = f(conn);
        if let Err(StoreError::Unavailable(_)) = &result {
            // Whatever state the connection is in, start the next call afresh.
            *guard = None;
        }
        result
    }

    fn read<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.with(&self.readers[i], f)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(&self.writer, f)
    }
}

/// Makes the tables of [`UPGRADES`] in a database that holds a log and
/// lacks them (one without a log is left alone: opening it then fails as
/// having no log; one that has them is not written to).
fn upgrade(config: &postgres::Config) -> Result<(), StoreError> {
    let mut client = config.connect(NoTls)?;
    let row = client.query_one(
        "SELECT to_regclass('meta') IS NOT NULL, to_regclass('refused') IS NULL",
        &[],
    )?;
    let (has_log, lacks): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    if has_log && lacks {
        client.batch_execute(UPGRADES)?;
    }
    Ok(())
}

/// Refuses a write by a sequencer whose `fence` no longer holds the lease
/// (`LeaseLost`), or one built on the log at `old` if it moved since
/// (`SizeChanged`), inside `tx`; moves the size to `new` (the same size for
/// a write that adds nothing). Both rows stay locked until the commit: no
/// frontend takes the lease over and no other write moves the size.
fn check_base(
    tx: &mut postgres::Transaction<'_>,
    stmts: &Statements,
    old: TreeSize,
    new: i64,
    fence: Option<Lease>,
) -> Result<(), StoreError> {
    if let Some(fence) = fence {
        let token = i64_of(fence.token)?;
        if tx.query_opt(&stmts.fence, &[&token])?.is_none() {
            return Err(StoreError::LeaseLost(fence.token));
        }
    }
    if tx.execute(&stmts.advance, &[&i64_of(old.get())?, &new])? != 1 {
        let found = tx.query_one(&stmts.size, &[])?.try_get(0)?;
        return Err(StoreError::SizeChanged {
            expected: old.get(),
            found: u64_of(found, "size")?,
        });
    }
    Ok(())
}

/// Removes `settled`'s leaves from the queue and keeps its refusals (the
/// old ones go when a new one comes), inside `tx`.
fn settle_queue(
    tx: &mut postgres::Transaction<'_>,
    stmts: &Statements,
    settled: &Settled,
) -> Result<(), StoreError> {
    if !settled.leaves.is_empty() {
        let leaves: Vec<&[u8]> = settled
            .leaves
            .iter()
            .map(|h| h.as_bytes().as_slice())
            .collect();
        tx.execute(&stmts.settle, &[&leaves])?;
    }
    if settled.refused.is_empty() {
        return Ok(());
    }
    let now = unix_ms();
    tx.execute(&stmts.prune_refused, &[&refusals_cutoff(now)])?;
    let leaves: Vec<&[u8]> = settled
        .refused
        .iter()
        .map(|(h, _)| h.as_bytes().as_slice())
        .collect();
    let statuses: Vec<i32> = settled
        .refused
        .iter()
        .map(|(_, r)| i32::from(r.status))
        .collect();
    let codes: Vec<&str> = settled
        .refused
        .iter()
        .map(|(_, r)| r.code.as_str())
        .collect();
    let details: Vec<&str> = settled
        .refused
        .iter()
        .map(|(_, r)| r.detail.as_str())
        .collect();
    tx.execute(&stmts.refuse, &[&leaves, &statuses, &codes, &details, &now])?;
    Ok(())
}

impl LogStore for PostgresStore {
    fn meta(&self) -> Result<LogMeta, StoreError> {
        self.read(|c| {
            let mut get = |k: &str| -> Result<String, StoreError> {
                c.client
                    .query_opt("SELECT value FROM meta WHERE key = $1", &[&k])?
                    .ok_or_else(|| StoreError::Corrupt(format!("meta {k} missing")))?
                    .try_get(0)
                    .map_err(StoreError::from)
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
        self.read(|c| {
            let row = c.client.query_one(&c.stmts.size, &[])?;
            Ok(TreeSize(u64_of(row.try_get(0)?, "size")?))
        })
    }

    fn find_leaf(&self, leaf: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        Ok(self
            .find_leaves(std::slice::from_ref(leaf))?
            .pop()
            .flatten())
    }

    fn find_leaves(&self, leaves: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError> {
        let keys: Vec<&[u8]> = leaves.iter().map(|h| h.as_bytes().as_slice()).collect();
        let found: std::collections::HashMap<Hash, LeafIndex> = self.read(|c| {
            c.client
                .query(&c.stmts.find_leaves, &[&keys])?
                .iter()
                .map(|r| {
                    Ok((
                        hash_of(r.try_get(0)?)?,
                        LeafIndex(u64_of(r.try_get(1)?, "index")?),
                    ))
                })
                .collect::<Result<_, StoreError>>()
        })?;
        Ok(leaves.iter().map(|l| found.get(l).copied()).collect())
    }

    fn entry(&self, index: LeafIndex) -> Result<Option<StoredEntry>, StoreError> {
        let idx = i64_of(index.get())?;
        self.read(|c| {
            let Some(row) = c.client.query_opt(&c.stmts.entry, &[&idx])? else {
                return Ok(None);
            };
            Ok(Some(StoredEntry {
                index,
                data: row.try_get(0)?,
                leaf_hash: hash_of(row.try_get(1)?)?,
            }))
        })
    }

    fn entries(&self, start: LeafIndex, count: u64) -> Result<Vec<StoredEntry>, StoreError> {
        let (lo, n) = (i64_of(start.get())?, i64_of(count)?);
        self.read(|c| {
            c.client
                .query(&c.stmts.entries, &[&lo, &n])?
                .iter()
                .map(row_entry)
                .collect()
        })
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        self.upper.read(indexes, |missing| {
            let ids = missing
                .iter()
                .map(|&i| i64_of(i))
                .collect::<Result<Vec<i64>, _>>()?;
            let found: std::collections::HashMap<i64, Hash> = self.read(|c| {
                c.client
                    .query(&c.stmts.hashes, &[&ids])?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, hash_of(r.try_get(1)?)?)))
                    .collect::<Result<_, StoreError>>()
            })?;
            ids.iter()
                .map(|i| {
                    found
                        .get(i)
                        .copied()
                        .ok_or_else(|| StoreError::Backend(format!("no stored hash {i}")))
                })
                .collect()
        })
    }

    fn append(&self, batch: Append) -> Result<(), StoreError> {
        let old = i64_of(batch.old_size.get())?;
        let new = i64_of(batch.old_size.get() + batch.entries.len() as u64)?;
        let idx: Vec<i64> = (old..new).collect();
        let leaves: Vec<&[u8]> = batch
            .entries
            .iter()
            .map(|e| e.leaf_hash.as_bytes().as_slice())
            .collect();
        let data: Vec<&[u8]> = batch.entries.iter().map(|e| e.data.as_slice()).collect();
        let kinds: Vec<&str> = batch.entries.iter().map(|e| e.kind.as_str()).collect();
        let signers: Vec<&str> = batch.entries.iter().map(|e| e.signer.as_str()).collect();
        let first = i64_of(daylight_core::tree::stored_hash_count(batch.old_size))?;
        let ids: Vec<i64> = (first..first + batch.hashes.len() as i64).collect();
        let hashes: Vec<&[u8]> = batch
            .hashes
            .iter()
            .map(|h| h.as_bytes().as_slice())
            .collect();
        self.write(|c| {
            let mut tx = c.client.transaction()?;
            check_base(&mut tx, &c.stmts, batch.old_size, new, batch.fence)?;
            if !idx.is_empty() {
                tx.execute(
                    &c.stmts.put_entries,
                    &[&idx, &leaves, &data, &kinds, &signers],
                )?;
            }
            if !ids.is_empty() {
                tx.execute(&c.stmts.put_hashes, &[&ids, &hashes])?;
            }
            tx.execute(&c.stmts.put_checkpoint, &[&new, &batch.checkpoint])?;
            settle_queue(&mut tx, &c.stmts, &batch.settled)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| {
            c.client
                .query_opt(
                    "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1",
                    &[],
                )?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(StoreError::from)
        })
    }

    fn published_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| {
            c.client
                .query_opt("SELECT note FROM published ORDER BY size DESC LIMIT 1", &[])?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(StoreError::from)
        })
    }

    fn publish(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        let size = i64_of(size.get())?;
        self.write(|c| {
            // The lock orders publishers, so the "never smaller" check and
            // the write cannot interleave with another frontend's.
            let mut tx = c.client.transaction()?;
            tx.execute("LOCK TABLE published IN SHARE ROW EXCLUSIVE MODE", &[])?;
            tx.execute(
                "INSERT INTO published (size, note) SELECT $1, $2
                 WHERE $1 >= (SELECT COALESCE(MAX(size), -1) FROM published)
                 ON CONFLICT (size) DO UPDATE SET note = excluded.note",
                &[&size, &note],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn witnesses(&self) -> Result<Vec<WitnessConfig>, StoreError> {
        self.read(|c| {
            c.client
                .query(
                    "SELECT vkey, url, known_size FROM witnesses ORDER BY vkey",
                    &[],
                )?
                .iter()
                .map(|r| {
                    let vkey: String = r.try_get(0)?;
                    Ok(WitnessConfig {
                        key: self.keys.parse(&vkey, "witness")?,
                        url: r.try_get(1)?,
                        known_size: TreeSize(u64_of(r.try_get(2)?, "witness size")?),
                    })
                })
                .collect()
        })
    }

    fn add_witness(&self, key: &VerifierKey, url: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.client.execute(
                "INSERT INTO witnesses (vkey, url) VALUES ($1, $2)
                 ON CONFLICT (vkey) DO UPDATE SET url = excluded.url",
                &[&key.to_string(), &url],
            )?;
            Ok(())
        })
    }

    fn mirrors(&self) -> Result<MirrorSet, StoreError> {
        self.read(|c| {
            let rows = match c
                .client
                .query("SELECT vkey, url FROM mirrors ORDER BY vkey", &[])
            {
                Ok(rows) => rows,
                // A log created before mirrors: none yet (the first
                // add_mirror creates the table).
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                    return Ok(MirrorSet::default())
                }
                Err(e) => return Err(e.into()),
            };
            let mirrors = rows
                .iter()
                .map(|r| {
                    let vkey: String = r.try_get(0)?;
                    Ok(WitnessConfig {
                        key: self.keys.parse(&vkey, "mirror")?,
                        url: r.try_get(1)?,
                        known_size: TreeSize(0),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let quorum = c
                .client
                .query_opt("SELECT value FROM meta WHERE key = 'mirror_quorum'", &[])?
                .map(|r| -> Result<usize, StoreError> {
                    let q: String = r.try_get(0)?;
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
            c.client.batch_execute(
                "CREATE TABLE IF NOT EXISTS mirrors (vkey TEXT PRIMARY KEY, url TEXT NOT NULL)",
            )?;
            c.client.execute(
                "INSERT INTO mirrors (vkey, url) VALUES ($1, $2)
                 ON CONFLICT (vkey) DO UPDATE SET url = excluded.url",
                &[&key.to_string(), &url],
            )?;
            Ok(())
        })
    }

    fn set_mirror_quorum(&self, quorum: usize) -> Result<(), StoreError> {
        self.write(|c| {
            c.client.execute(
                "INSERT INTO meta (key, value) VALUES ('mirror_quorum', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&quorum.to_string()],
            )?;
            Ok(())
        })
    }

    fn set_witness_size(&self, key: &VerifierKey, size: TreeSize) -> Result<(), StoreError> {
        let size = i64_of(size.get())?;
        self.write(|c| {
            c.client.execute(
                "UPDATE witnesses SET known_size = $2 WHERE vkey = $1",
                &[&key.to_string(), &size],
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
        let secs = ttl.as_secs_f64();
        // No holder is named "", so None matches nobody.
        let dead = dead.unwrap_or("");
        self.write(|c| {
            c.client
                .query_opt(&c.stmts.acquire, &[&holder, &secs, &dead])?
                .map(|r| {
                    Ok(Lease {
                        token: u64_of(r.try_get(0)?, "lease token")?,
                    })
                })
                .transpose()
        })
    }

    fn release_lease(&self, holder: &str, lease: Lease) -> Result<(), StoreError> {
        let token = i64_of(lease.token)?;
        self.write(|c| {
            c.client.execute(
                "UPDATE lease SET expires_at = 'epoch' WHERE holder = $1 AND token = $2",
                &[&holder, &token],
            )?;
            Ok(())
        })
    }

    fn lease_state(&self) -> Result<Option<LeaseState>, StoreError> {
        self.read(|c| {
            let Some(row) = c.client.query_opt(
                "SELECT holder, token,
                        (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint
                 FROM lease WHERE token > 0",
                &[],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(LeaseState {
                holder: row.try_get(0)?,
                token: u64_of(row.try_get(1)?, "lease token")?,
                expires_in_ms: row.try_get(2)?,
            }))
        })
    }

    fn enqueue(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        let leaves: Vec<&[u8]> = entries
            .iter()
            .map(|e| e.leaf_hash.as_bytes().as_slice())
            .collect();
        let data: Vec<&[u8]> = entries.iter().map(|e| e.data.as_slice()).collect();
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        let signers: Vec<&str> = entries.iter().map(|e| e.signer.as_str()).collect();
        self.write(|c| {
            let mut tx = c.client.transaction()?;
            tx.execute(&c.stmts.enqueue, &[&leaves, &data, &kinds, &signers])?;
            tx.execute(&c.stmts.forget_refused, &[&leaves])?;
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
        let at = i64_of(size.get())?;
        self.write(|c| {
            let mut tx = c.client.transaction()?;
            if !settled.refused.is_empty() {
                check_base(&mut tx, &c.stmts, size, at, fence)?;
            }
            settle_queue(&mut tx, &c.stmts, settled)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn refusals(&self, leaves: &[Hash]) -> Result<Vec<Option<QueueRefusal>>, StoreError> {
        let asked: Vec<&[u8]> = leaves.iter().map(|h| h.as_bytes().as_slice()).collect();
        let rows = self.read(|c| Ok(c.client.query(&c.stmts.refusals, &[&asked])?))?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for r in rows {
            let status: i32 = r.try_get(1)?;
            let refusal = QueueRefusal {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("refusal status {status}")))?,
                code: r.try_get(2)?,
                detail: r.try_get(3)?,
            };
            found.insert(hash_of(r.try_get(0)?)?, refusal);
        }
        Ok(leaves.iter().map(|h| found.get(h).cloned()).collect())
    }

    fn queued(&self, max: usize) -> Result<Vec<NewEntry>, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(|c| {
            c.client
                .query(&c.stmts.queued, &[&max])?
                .iter()
                .map(|r| {
                    Ok(NewEntry {
                        leaf_hash: hash_of(r.try_get(0)?)?,
                        data: r.try_get(1)?,
                        kind: r.try_get(2)?,
                        signer: r.try_get(3)?,
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
            c.client
                .query(&c.stmts.entries_of_kind, &[&kind, &lo])?
                .iter()
                .map(row_entry)
                .collect()
        })
    }
}

/// Runs `f` on a new connection on a thread of its own, so that it works
/// from async code too (the synchronous client refuses to run on a runtime).
fn off_runtime<T: Send + 'static>(
    config: &postgres::Config,
    f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
) -> Result<T, StoreError> {
    let config = config.clone();
    std::thread::spawn(move || {
        let mut client = config.connect(NoTls)?;
        f(&mut client)
    })
    .join()
    .map_err(|_| StoreError::Backend("a database thread panicked".into()))?
    .map_err(StoreError::from)
}

/// A throwaway schema for tests and benchmarks: made on a server given by
/// URL, dropped with everything in it when this is dropped.
pub struct ScratchSchema {
    base: postgres::Config,
    name: String,
    url: String,
}

impl ScratchSchema {
    /// The server tests use unless `DAYLIGHT_TEST_POSTGRES` names another.
    pub const DEFAULT_URL: &'static str = "postgres://postgres@127.0.0.1:5432/test";

    /// Makes a fresh, empty schema on the server `base_url` names (a
    /// `postgres://` URL without query parameters).
    pub fn create(base_url: &str) -> Result<ScratchSchema, StoreError> {
        let base = parse_url(base_url)?;
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| StoreError::Backend(format!("random schema name: {e}")))?;
        let name = format!("daylight_scratch_{}", hex::encode(nonce));
        let create = format!("CREATE SCHEMA {name}");
        off_runtime(&base, move |c| c.batch_execute(&create))?;
        // Its connections carry its name, so a test can find (and cut) them.
        let url = format!("{base_url}?options=-c%20search_path%3D{name}&application_name={name}");
        Ok(ScratchSchema { base, name, url })
    }

    /// A scratch schema on the test server (`DAYLIGHT_TEST_POSTGRES`, else
    /// [`Self::DEFAULT_URL`]), or `None` with a note on stderr when none
    /// answers there, so a developer without PostgreSQL can still run the
    /// rest. With `DAYLIGHT_REQUIRE_POSTGRES=1` (as `scripts/test` sets) an
    /// unreachable server panics instead: CI must not skip.
    #[allow(clippy::panic)]
    pub fn for_tests() -> Option<ScratchSchema> {
        let url = std::env::var("DAYLIGHT_TEST_POSTGRES")
            .unwrap_or_else(|_| Self::DEFAULT_URL.to_string());
        match ScratchSchema::create(&url) {
            Ok(s) => Some(s),
            Err(e) if std::env::var_os("DAYLIGHT_REQUIRE_POSTGRES").is_some() => {
                panic!("DAYLIGHT_REQUIRE_POSTGRES is set but {url} fails: {e}")
            }
            Err(e) => {
                eprintln!("skipping the PostgreSQL case: {url}: {e}");
                None
            }
        }
    }

    /// The URL whose connections use the schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let dropped = off_runtime(&self.base, move |c| c.batch_execute(&drop));
        if let Err(e) = dropped {
            tracing::warn!("dropping the scratch schema {}: {e}", self.name);
        }
    }
}
