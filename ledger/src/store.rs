//! The ledger's SQLite file: one row of facts per entry, the links between
//! entries, the registry and policy records, the statuses as memberships,
//! the counters the overview reads, and what readers concluded (findings).
//!
//! Writes go through a [`Batch`] (one transaction): each entry is added in
//! log order; what it says about earlier entries (a withdrawal, a
//! ratification, an extension) updates their rows and statuses in the same
//! transaction. Counters are summed in memory and written at commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use daylight_core::Hash;
use daylight_schemas::{Decision, EntryRef, KeyTag, Kind, RefusalReason, ShareRef, SignedRecord};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::status::{flags, Facts, Status, StatusSet};
use crate::summary::{
    categories_of, category_bit, epoch_day, month_key, outcome_bits, OutcomeFacts, OutcomeNumbers,
    Summary,
};

/// Bumped whenever the tables change; a ledger of another version is rebuilt.
pub const SCHEMA_VERSION: i64 = 10;

/// Why the ledger could not answer or write.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger's database failed.
    #[error("ledger database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A damaged ledger file could not be removed to make it again.
    #[error("removing the damaged ledger {}: {source}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// Why it could not be removed.
        source: std::io::Error,
    },
    /// The file cannot be read as this log's ledger.
    #[error("ledger: {0}")]
    Unusable(String),
    /// Entries must be added in log order, each once.
    #[error("entry {got} added out of order: the ledger holds {size} entries")]
    OutOfOrder {
        /// The index given.
        got: u64,
        /// The ledger's size.
        size: u64,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    idx INTEGER PRIMARY KEY,
    kind TEXT,
    version INTEGER NOT NULL,
    created INTEGER,
    day INTEGER,
    month INTEGER,
    signer TEXT NOT NULL,
    jurisdiction TEXT,
    country TEXT,
    legal_basis TEXT,
    legal_lower TEXT,
    provider TEXT,
    categories INTEGER NOT NULL,
    sealed_until INTEGER,
    sealed_in_force INTEGER,
    ratify_by INTEGER,
    decision TEXT,
    flags INTEGER NOT NULL,
    refs TEXT NOT NULL,
    about INTEGER,
    amends INTEGER,
    root INTEGER,
    leaf_hash BLOB NOT NULL,
    statuses INTEGER NOT NULL DEFAULT 0,
    outcome INTEGER,
    numbers TEXT,
    reason TEXT,
    request_agency TEXT,
    policy TEXT,
    case_reference TEXT,
    offence TEXT,
    issuer TEXT,
    target_count INTEGER,
    valid_from INTEGER,
    valid_until INTEGER,
    released_at INTEGER,
    targets_released INTEGER,
    share_key BLOB,
    share_index INTEGER,
    share_threshold INTEGER,
    share_count INTEGER
);
CREATE INDEX IF NOT EXISTS entries_sealed ON entries(sealed_in_force)
    WHERE sealed_in_force IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_ratify ON entries(ratify_by)
    WHERE ratify_by IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_root ON entries(root) WHERE root IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_emergencies ON entries(signer, created)
    WHERE kind = 'emergency';
CREATE INDEX IF NOT EXISTS entries_share ON entries(share_key)
    WHERE share_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS status_members(
    status INTEGER NOT NULL, entry INTEGER NOT NULL, PRIMARY KEY(status, entry)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refs(
    target INTEGER NOT NULL, source INTEGER NOT NULL, PRIMARY KEY(target, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS names(
    field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(field, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS monthly(
    kind TEXT NOT NULL, month INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(kind, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS monthly_status(
    month INTEGER NOT NULL, status INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(month, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days(
    day INTEGER PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL, n INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS per_agency(
    signer TEXT PRIMARY KEY, n INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings(
    subject TEXT NOT NULL, seq INTEGER NOT NULL, sort TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY(subject, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS findings_sort ON findings(sort);
";

/// The indexes of `entries` that adding entries never reads (the rules',
/// the lists'), as opposed to those it does (`entries_root`,
/// `entries_share`), those a tick reads (`entries_sealed`,
/// `entries_ratify`) and those queries name (`INDEXED BY`): they can be
/// made after a bulk load
/// ([`Ledger::defer_indexes`]), which sorts once instead of inserting into
/// each B-tree entry by entry, and packs their pages.
const RULE_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS entries_kind ON entries(kind);
CREATE INDEX IF NOT EXISTS entries_case ON entries(case_reference, signer, day)
    WHERE case_reference IS NOT NULL;
";

/// The names of the indexes in [`RULE_INDEXES`] and [`FILTER_INDEXES`].
const DEFERRABLE: [&str; 8] = [
    "entries_kind",
    "entries_case",
    "entries_signer",
    "entries_provider",
    "entries_jurisdiction",
    "entries_country",
    "entries_day",
    "entries_legal",
];

/// The meta key present while [`DEFERRABLE`] indexes are left out.
const DEFERRED: &str = "indexes_deferred";

/// The indexes lists filter on (the web view's); a ledger only the rules
/// read (the auditor's) goes without them: each costs every insert.
const FILTER_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS entries_signer ON entries(signer);
CREATE INDEX IF NOT EXISTS entries_provider ON entries(provider);
CREATE INDEX IF NOT EXISTS entries_jurisdiction ON entries(jurisdiction);
CREATE INDEX IF NOT EXISTS entries_country ON entries(country);
CREATE INDEX IF NOT EXISTS entries_day ON entries(day, categories);
CREATE INDEX IF NOT EXISTS entries_legal ON entries(legal_lower)
    WHERE legal_lower IS NOT NULL;
";

/// What a ledger is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Lists and filters over every field (the web view): every index.
    Filters,
    /// The rules and the gate (the auditor): only the indexes they read,
    /// and a larger page cache for its long transactions.
    Rules,
}

const TABLES: [&str; 11] = [
    "entries",
    "days",
    "status_members",
    "monthly_status",
    "refs",
    "records",
    "names",
    "monthly",
    "per_agency",
    "findings",
    "meta",
];

/// The columns a [`Summary`] is read from, in [`summary_of_row`] order.
pub const SUMMARY_COLUMNS: &str = "idx, kind, created, signer, jurisdiction, legal_basis, provider, \
     categories, sealed_until, sealed_in_force, ratify_by, decision, refs, flags, leaf_hash, outcome, \
     reason, request_agency, policy, version, about, amends, root, numbers, case_reference, offence, \
     issuer, target_count, valid_from, valid_until, released_at, targets_released, share_key, \
     share_index, share_threshold, share_count";

fn time(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

fn index_of(v: Option<i64>) -> Option<u64> {
    v.and_then(|x| u64::try_from(x).ok())
}

fn sql_index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// A static code from a stored text, if it is one of `all`.
fn code_of(text: Option<String>, all: &[&'static str]) -> Option<&'static str> {
    let t = text?;
    all.iter().copied().find(|c| *c == t)
}

/// One row of [`SUMMARY_COLUMNS`] as a [`Summary`].
pub fn summary_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    use daylight_schemas::{IssuerType, Offence};
    let refs: String = r.get(12)?;
    let hash: Vec<u8> = r.get(14)?;
    let offences: Vec<&'static str> = Offence::ALL.iter().map(|o| o.as_str()).collect();
    let issuers: Vec<&'static str> = IssuerType::ALL.iter().map(|o| o.as_str()).collect();
    Ok(Summary {
        index: index_of(r.get(0)?).unwrap_or(0),
        kind: r.get::<_, Option<String>>(1)?.and_then(|k| k.parse().ok()),
        created: time(r.get(2)?),
        signer: r.get(3)?,
        jurisdiction: r.get(4)?,
        legal_basis: r.get(5)?,
        provider: r.get(6)?,
        categories: categories_of(r.get(7)?),
        sealed_until: time(r.get(8)?),
        sealed_in_force: time(r.get(9)?),
        ratify_by: time(r.get(10)?),
        decision: r.get::<_, Option<String>>(11)?.and_then(|d| d.parse().ok()),
        references: refs.split(';').filter_map(|x| x.parse().ok()).collect(),
        flags: u8::try_from(r.get::<_, i64>(13)?).unwrap_or(0),
        leaf_hash: <[u8; 32]>::try_from(hash.as_slice())
            .map(Hash)
            .unwrap_or(Hash([0; 32])),
        outcome: r.get::<_, Option<i64>>(15)?.map(OutcomeFacts::from_bits),
        reason: r.get::<_, Option<String>>(16)?.and_then(|x| x.parse().ok()),
        request_agency: r.get(17)?,
        policy: r
            .get::<_, Option<String>>(18)?
            .map(|p| p.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
        version: u64::try_from(r.get::<_, i64>(19)?).unwrap_or(0),
        about: index_of(r.get(20)?),
        amends: index_of(r.get(21)?),
        root: index_of(r.get(22)?),
        outcome_numbers: r
            .get::<_, Option<String>>(23)?
            .and_then(|t| OutcomeNumbers::from_text(&t)),
        case_reference: r.get(24)?,
        offence: code_of(r.get(25)?, &offences),
        issuer: code_of(r.get(26)?, &issuers),
        target_count: r
            .get::<_, Option<i64>>(27)?
            .and_then(|x| u32::try_from(x).ok()),
        valid_from: time(r.get(28)?),
        valid_until: time(r.get(29)?),
        released_at: time(r.get(30)?),
        targets_released: r
            .get::<_, Option<i64>>(31)?
            .and_then(|x| u32::try_from(x).ok()),
        share: share_of_row(r, 32)?,
    })
}

/// The share named by the four share columns from `at` on (key, index,
/// threshold, shares), if the row is a custodian's share release.
fn share_of_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<ShareRef>> {
    let key: Option<Vec<u8>> = r.get(at)?;
    let small = |i: usize| -> rusqlite::Result<Option<u8>> {
        Ok(r.get::<_, Option<i64>>(at + i)?
            .and_then(|x| u8::try_from(x).ok()))
    };
    let (index, threshold, shares) = (small(1)?, small(2)?, small(3)?);
    Ok((|| {
        Some(ShareRef {
            key: KeyTag(<[u8; 32]>::try_from(key?.as_slice()).ok()?),
            index: index?,
            threshold: threshold?,
            shares: shares?,
        })
    })())
}

/// Opens a connection to a ledger file with the settings every user shares.
pub fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    // Takes effect only on a file with no pages written yet.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // Derived data: a lost tail after a crash is read again from the log
    // (web view) or from the verified mirror (auditor), so writes need not
    // wait for the disk.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    // A writer holds an entry INSERT per set of columns for a batch, beside
    // the other statements it repeats.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The page size of a ledger file made now; one made before keeps its own
/// (4 KiB, SQLite's default). Each list index a bulk load makes afterwards
/// ([`Ledger::defer_indexes`]) scans the wide `entries` table and writes
/// its B-tree through the WAL: with pages four times larger, fewer page
/// reads and writes (476,558 reads and 177,710 writes at 4 KiB). At 1M
/// records the eight took 2.4-2.7 s instead of 3.4-3.6 s, the rows' own
/// time and the web pages' latency unchanged (BENCHMARKS.md, issue 18).
pub const PAGE_SIZE: i64 = 16 * 1024;

/// A connection's page cache, KiB.
const CACHE_KIB: i64 = 16_000;
/// The page cache of a ledger for the rules (the auditor's), KiB.
const RULES_CACHE_KIB: i64 = 65_536;
/// The writer's page cache while a bulk load runs and its indexes are
/// made ([`Ledger::defer_indexes`]), KiB.
const BULK_CACHE_KIB: i64 = 65_536;
/// WAL pages after which a bulk load checkpoints (SQLite's default: 1,000).
const BULK_CHECKPOINT_PAGES: i64 = 25_000;

/// Entries held (0 to `size - 1`).
pub fn size_of(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row("SELECT coalesce(max(idx) + 1, 0) FROM entries", [], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The time (Unix seconds) the stored statuses are for.
pub fn ticked(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE key = 'tick'", [], |r| {
        r.get(0)
    })
}

/// The entries made on some days (UTC): the lowest and highest index
/// among them and how many there are. Whatever a date range matches lies
/// between `lo` and `hi`; where its entries fill most of that span, a list
/// reads the span in log order rather than sorting the day index's matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySpan {
    /// The lowest index.
    pub lo: u64,
    /// The highest index.
    pub hi: u64,
    /// Entries made on those days.
    pub entries: u64,
}

impl DaySpan {
    fn of(index: u64) -> DaySpan {
        DaySpan {
            lo: index,
            hi: index,
            entries: 1,
        }
    }

    fn add(&mut self, index: u64) {
        self.lo = self.lo.min(index);
        self.hi = self.hi.max(index);
        self.entries += 1;
    }
}

/// The span of the entries made from day `from` to day `to` (days since
/// 1970-01-01, both included, either end open), or `None` if none was.
pub fn day_span(
    conn: &Connection,
    from: Option<i64>,
    to: Option<i64>,
) -> rusqlite::Result<Option<DaySpan>> {
    let mut st = conn
        .prepare_cached("SELECT min(lo), max(hi), sum(n) FROM days WHERE day BETWEEN ?1 AND ?2")?;
    let (lo, hi, n) = st.query_row([from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)], |r| {
        Ok((
            r.get::<_, Option<i64>>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<i64>>(2)?,
        ))
    })?;
    Ok(
        match (
            index_of(lo),
            index_of(hi),
            n.and_then(|n| u64::try_from(n).ok()),
        ) {
            (Some(lo), Some(hi), Some(entries)) if entries > 0 => Some(DaySpan { lo, hi, entries }),
            _ => None,
        },
    )
}

/// A status's number in `status_members` and `monthly_status`.
pub fn status_code(st: Status) -> i64 {
    i64::from(st.number())
}

/// A status's bit in the entries' `statuses` column.
pub fn status_bit(st: Status) -> i64 {
    i64::from(StatusSet::bit(st))
}

/// The derived state of one log (see the crate documentation).
pub struct Ledger {
    path: PathBuf,
    conn: Connection,
    usage: Use,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` for the log with this
    /// origin. A ledger of another schema version or another log is
    /// emptied; a file SQLite cannot use (damaged, not a database) is
    /// deleted and made again, since everything in it is derived.
    pub fn open(path: &Path, origin: &str) -> Result<Ledger, LedgerError> {
        Self::open_for(path, origin, Use::Filters)
    }

    /// [`Ledger::open`] for a use: [`Use::Rules`] leaves out the indexes
    /// only lists need.
    pub fn open_for(path: &Path, origin: &str, usage: Use) -> Result<Ledger, LedgerError> {
        match Self::open_file(path, origin, usage) {
            Err(LedgerError::Db(e))
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
                ) =>
            {
                tracing::warn!("ledger {}: {e}; making it again", path.display());
                remove_files(path)?;
                Self::open_file(path, origin, usage)
            }
            other => other,
        }
    }

    /// Opens an existing ledger without changing it (a reader on the same
    /// machine as its writer, such as the gate reading the auditor's): no
    /// schema is created, and a ledger of another schema version, or
    /// another log than `origin`, is an error rather than emptied.
    pub fn read_only(path: &Path, origin: &str) -> Result<Ledger, LedgerError> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Err(LedgerError::Unusable(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let version = meta(&conn, "version")?;
        if version.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
            return Err(LedgerError::Unusable(format!(
                "{} has schema version {}, this program reads {SCHEMA_VERSION}",
                path.display(),
                version.as_deref().unwrap_or("none")
            )));
        }
        let theirs = meta(&conn, "origin")?;
        if theirs.as_deref() != Some(origin) {
            return Err(LedgerError::Unusable(format!(
                "{} is the ledger of {}, not of {origin}",
                path.display(),
                theirs.as_deref().unwrap_or("no log")
            )));
        }
        Ok(Ledger {
            path: path.to_owned(),
            conn,
            usage: Use::Rules,
        })
    }

    fn open_file(path: &Path, origin: &str, usage: Use) -> Result<Ledger, LedgerError> {
        let conn = open_conn(path)?;
        // The version is read before this version's tables are made: their
        // indexes cannot be made over another version's tables (a column
        // they name may be missing there, as in the web view's index of
        // version 7, which this file replaces).
        conn.execute(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value NOT NULL)",
            [],
        )?;
        let meta = |key: &str| -> rusqlite::Result<Option<Value>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        };
        let same = meta("version")? == Some(Value::Integer(SCHEMA_VERSION))
            && meta("origin")? == Some(Value::Text(origin.to_owned()));
        if !same {
            // Tables and indexes of another version go entirely.
            for t in TABLES {
                conn.execute(&format!("DROP TABLE IF EXISTS {t}"), [])?;
            }
            conn.execute_batch(SCHEMA)?;
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('version', ?1), ('origin', ?2), ('tick', ?3)",
                params![SCHEMA_VERSION, origin, Utc::now().timestamp()],
            )?;
        } else {
            conn.execute_batch(SCHEMA)?;
        }
        if let Use::Rules = usage {
            // A run adds millions of entries in one transaction: index
            // pages stay in memory rather than being read back.
            conn.pragma_update(None, "cache_size", -RULES_CACHE_KIB)?;
        }
        let ledger = Ledger {
            path: path.to_owned(),
            conn,
            usage,
        };
        // Left out by a bulk load that has not finished: they are made when
        // it does (Ledger::make_indexes), not at every open on the way.
        if ledger.indexes_deferred()? {
            ledger.bulk_settings(true)?;
        } else {
            ledger.make_indexes()?;
        }
        Ok(ledger)
    }

    /// Whether the indexes adding entries does not read are left out
    /// ([`Ledger::defer_indexes`]).
    pub fn indexes_deferred(&self) -> Result<bool, LedgerError> {
        Ok(meta(&self.conn, DEFERRED)?.is_some())
    }

    /// Drops the indexes adding entries does not read (the rules' and the
    /// lists'), until [`Ledger::make_indexes`]: for a bulk load, where
    /// making them afterwards costs a fraction of keeping them up to date
    /// entry by entry. Queries that would use them scan instead meanwhile.
    /// The ledger remembers it (reopened, it leaves them out still).
    pub fn defer_indexes(&mut self) -> Result<(), LedgerError> {
        let tx = self.conn.transaction()?;
        for name in DEFERRABLE {
            tx.execute(&format!("DROP INDEX IF EXISTS {name}"), [])?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, 1)",
            [DEFERRED],
        )?;
        tx.commit()?;
        self.bulk_settings(true)?;
        Ok(())
    }

    /// Makes every index of the ledger's use that is missing (after
    /// [`Ledger::defer_indexes`]), in one transaction.
    pub fn make_indexes(&self) -> Result<(), LedgerError> {
        let deferred = self.indexes_deferred()?;
        if deferred {
            self.bulk_settings(true)?;
        }
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch(RULE_INDEXES)?;
        if let Use::Filters = self.usage {
            tx.execute_batch(FILTER_INDEXES)?;
        }
        tx.execute("DELETE FROM meta WHERE key = ?1", [DEFERRED])?;
        tx.commit()?;
        if deferred {
            self.bulk_settings(false)?;
        }
        Ok(())
    }

    /// The connection's settings while a bulk load runs (`on`) or not.
    /// A bulk load's transactions touch more pages than the usual cache
    /// holds (the rows later entries update lie up to a fraction of the
    /// log behind), and making an index sorts every row of `entries`:
    /// SQLite sorts within the page cache's size and spills larger sorts
    /// to temporary files to merge. Both only cost memory while the load
    /// runs; the usual cache comes back after.
    fn bulk_settings(&self, on: bool) -> Result<(), LedgerError> {
        let kib = match (on, self.usage) {
            (true, _) => BULK_CACHE_KIB,
            (false, Use::Rules) => RULES_CACHE_KIB,
            (false, Use::Filters) => CACHE_KIB,
        };
        self.conn.pragma_update(None, "cache_size", -kib)?;
        // Fewer checkpoints while loading: each syncs the WAL and the file,
        // and copies pages later commits would change again.
        self.conn.pragma_update(
            None,
            "wal_autocheckpoint",
            if on { BULK_CHECKPOINT_PAGES } else { 1000 },
        )?;
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's connection, for readers that query the tables directly
    /// (the web view's filters).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Entries held (0 to `size - 1`).
    pub fn size(&self) -> Result<u64, LedgerError> {
        Ok(size_of(&self.conn)?)
    }

    /// Empties the ledger of entries and findings (its version, origin,
    /// tick and deferred indexes stay).
    pub fn clear(&mut self) -> Result<(), LedgerError> {
        // One transaction: a ledger left half cleared would hold records or
        // findings of entries it no longer has.
        let tx = self.conn.transaction()?;
        for t in TABLES.iter().filter(|&&t| t != "meta") {
            tx.execute(&format!("DELETE FROM {t}"), [])?;
        }
        tx.execute(
            "DELETE FROM meta WHERE key NOT IN ('version', 'origin', 'tick', ?1)",
            [DEFERRED],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Starts a transaction that adds entries (from [`Ledger::size`] on).
    pub fn batch(&mut self) -> Result<Batch<'_>, LedgerError> {
        // `&mut self` keeps other writes out for the batch's life; the
        // transaction and the batch's statements share the connection.
        let conn = &self.conn;
        let tx = conn.unchecked_transaction()?;
        let tick = ticked(&tx)?;
        let size = size_of(&tx)?;
        Ok(Batch {
            tx,
            conn,
            insert_entry: Vec::new(),
            tick,
            size,
            monthly: HashMap::new(),
            per_agency: HashMap::new(),
            names: BTreeMap::new(),
            month_status: HashMap::new(),
            days: HashMap::new(),
        })
    }

    /// When the stored statuses were last brought up to date.
    pub fn ticked_at(&self) -> Result<DateTime<Utc>, LedgerError> {
        Ok(time(Some(ticked(&self.conn)?)).unwrap_or_default())
    }

    /// Brings the stored statuses up to `now`: the entries whose
    /// sealed-until or ratification deadline lies between the last tick and
    /// `now` get their statuses again. Time may also go back (tests, a
    /// clock set back): the same entries are read either way.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let now = now.timestamp();
        let last = ticked(&self.conn)?;
        if last == now {
            return Ok(());
        }
        let (lo, hi) = (last.min(now), last.max(now));
        let tx = self.conn.transaction()?;
        let moved = deadlines_between(&tx, lo, hi)?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'tick'", [now])?;
        for idx in moved {
            restatus(&tx, sql_index(idx), now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The entry at `index`, if held.
    pub fn get(&self, index: u64) -> Result<Option<Summary>, LedgerError> {
        get(&self.conn, index)
    }

    /// The entries that refer to `index` with a valid reference, in order.
    pub fn referrers(&self, index: u64) -> Result<Vec<u64>, LedgerError> {
        referrers(&self.conn, index)
    }

    /// Every entry whose story is that of an authorisation in `lo..=hi`
    /// (itself and the entries about it, [`Summary::root`]), by root then
    /// index.
    pub fn stories(&self, lo: u64, hi: u64) -> Result<Vec<Summary>, LedgerError> {
        self.query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM entries WHERE root BETWEEN ?1 AND ?2 ORDER BY root, idx"
            ),
            &[&sql_index(lo), &sql_index(hi)],
        )
    }

    /// Entries by index range `lo..hi`.
    pub fn range(&self, lo: u64, hi: u64) -> Result<Vec<Summary>, LedgerError> {
        self.query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx"
            ),
            &[&sql_index(lo), &sql_index(hi)],
        )
    }

    /// Every entry of `kind`, in log order.
    pub fn of_kind(&self, kind: Kind) -> Result<Vec<Summary>, LedgerError> {
        self.query(
            &format!("SELECT {SUMMARY_COLUMNS} FROM entries WHERE kind = ?1 ORDER BY idx"),
            &[&kind.as_str()],
        )
    }

    /// The releases and refusals that name no authorisation (no story), in
    /// log order.
    pub fn orphan_answers(&self) -> Result<Vec<Summary>, LedgerError> {
        self.query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM entries \
                 WHERE kind IN ('release', 'refusal') AND root IS NULL ORDER BY idx"
            ),
            &[],
        )
    }

    /// Every custodian's share release naming the escrowed key `key`, in
    /// log order (whatever authorisation it names).
    pub fn shares_of_key(&self, key: &KeyTag) -> Result<Vec<Summary>, LedgerError> {
        self.query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM entries INDEXED BY entries_share \
                 WHERE share_key = ?1 ORDER BY idx"
            ),
            &[&&key.0[..]],
        )
    }

    /// Every escrowed key some custodian's share release names, in order.
    pub fn share_keys(&self) -> Result<Vec<KeyTag>, LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT share_key FROM entries INDEXED BY entries_share \
             WHERE share_key IS NOT NULL ORDER BY share_key",
        )?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for k in rows {
            out.extend(<[u8; 32]>::try_from(k?.as_slice()).ok().map(KeyTag));
        }
        Ok(out)
    }

    /// When each emergency signed by `agency` was made, with its index
    /// (all of them, from the index that covers exactly this).
    pub fn emergency_times(&self, agency: &str) -> Result<Vec<(DateTime<Utc>, u64)>, LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT created, idx FROM entries INDEXED BY entries_emergencies \
             WHERE kind = 'emergency' AND signer = ?1",
        )?;
        let rows = st.query_map([agency], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (t, i) = r?;
            if let (Some(t), Some(i)) = (time(t), u64::try_from(i).ok()) {
                out.push((t, i));
            }
        }
        Ok(out)
    }

    /// The agencies that signed at least one emergency.
    pub fn emergency_agencies(&self) -> Result<Vec<String>, LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT signer FROM entries INDEXED BY entries_emergencies \
             WHERE kind = 'emergency' ORDER BY signer",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every (agency, case reference, day) with more than `max`
    /// authorisations.
    pub fn crowded_cases(&self, max: usize) -> Result<Vec<(String, String, i64)>, LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT signer, case_reference, day FROM entries WHERE case_reference IS NOT NULL \
             GROUP BY case_reference, signer, day HAVING count(*) > ?1",
        )?;
        let rows = st.query_map([i64::try_from(max).unwrap_or(i64::MAX)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The requests and emergencies signed by `agency` with this case
    /// reference, made on the UTC day `day` (days since 1970-01-01).
    pub fn case_on_day(
        &self,
        agency: &str,
        case_reference: &str,
        day: i64,
    ) -> Result<Vec<Summary>, LedgerError> {
        self.query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM entries \
                 WHERE case_reference = ?1 AND signer = ?2 AND day = ?3 ORDER BY idx"
            ),
            &[&case_reference, &agency, &day],
        )
    }

    /// Authorisations whose sealed-until in force or ratification deadline
    /// lies in `lo..=hi` (Unix seconds).
    pub fn deadlines_between(&self, lo: i64, hi: i64) -> Result<Vec<u64>, LedgerError> {
        Ok(deadlines_between(&self.conn, lo, hi)?)
    }

    /// Authorisations whose sealed-until in force lies in `lo..=hi` (Unix
    /// seconds).
    pub fn sealed_between(&self, lo: i64, hi: i64) -> Result<Vec<u64>, LedgerError> {
        self.indexes(
            "SELECT idx FROM entries WHERE sealed_in_force BETWEEN ?1 AND ?2 ORDER BY 1",
            lo,
            hi,
        )
    }

    /// Emergencies whose ratification deadline lies in `lo..=hi` (Unix
    /// seconds).
    pub fn ratify_between(&self, lo: i64, hi: i64) -> Result<Vec<u64>, LedgerError> {
        self.indexes(
            "SELECT idx FROM entries WHERE ratify_by BETWEEN ?1 AND ?2 ORDER BY 1",
            lo,
            hi,
        )
    }

    fn indexes(&self, sql: &str, lo: i64, hi: i64) -> Result<Vec<u64>, LedgerError> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([lo, hi], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(u64::try_from(r?).ok());
        }
        Ok(out)
    }

    /// The kept records of `kind` (registry entries and policies are
    /// kept whole), in log order: (index, bytes).
    pub fn records(&self, kind: Kind) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT idx, data FROM records WHERE kind = ?1 ORDER BY idx")?;
        let rows = st.query_map([kind.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (i, d) = r?;
            out.extend(u64::try_from(i).ok().map(|i| (i, d)));
        }
        Ok(out)
    }

    /// A value a reader keeps with the ledger (see [`Batch::set_meta`]).
    pub fn meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        meta(&self.conn, key)
    }

    /// Every finding kept, in sort order: (subject, sort key, body).
    pub fn for_each_finding<E: From<LedgerError>>(
        &self,
        mut f: impl FnMut(&str, &str, &str) -> Result<(), E>,
    ) -> Result<u64, E> {
        let db = |e: rusqlite::Error| E::from(LedgerError::Db(e));
        let mut st = self
            .conn
            .prepare_cached("SELECT subject, sort, body FROM findings ORDER BY sort, subject, seq")
            .map_err(db)?;
        let mut rows = st.query([]).map_err(db)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(db)? {
            let subject: String = r.get(0).map_err(db)?;
            let sort: String = r.get(1).map_err(db)?;
            let body: String = r.get(2).map_err(db)?;
            f(&subject, &sort, &body)?;
            n += 1;
        }
        Ok(n)
    }

    /// Starts a transaction that only replaces findings and metadata (no
    /// entries): the rules' updates.
    pub fn findings_batch(&mut self) -> Result<Batch<'_>, LedgerError> {
        self.batch()
    }

    fn query(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Summary>, LedgerError> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(params, summary_of_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Entries whose sealed-until in force or ratification deadline lies in
/// `lo..=hi` (Unix seconds), in index order: the ones a clock moving
/// between those times changes.
fn deadlines_between(conn: &Connection, lo: i64, hi: i64) -> rusqlite::Result<Vec<u64>> {
    let mut st = conn.prepare_cached(
        "SELECT idx FROM entries WHERE sealed_in_force BETWEEN ?1 AND ?2 \
         UNION SELECT idx FROM entries WHERE ratify_by BETWEEN ?1 AND ?2 ORDER BY 1",
    )?;
    let rows = st.query_map([lo, hi], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.extend(u64::try_from(r?).ok());
    }
    Ok(out)
}

fn remove_files(path: &Path) -> Result<(), LedgerError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LedgerError::Remove {
                    path: p.into(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, LedgerError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, Value>(0)
        })
        .optional()?
        .map(|v| match v {
            Value::Text(t) => t,
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            _ => String::new(),
        }))
}

fn get(conn: &Connection, index: u64) -> Result<Option<Summary>, LedgerError> {
    let Ok(i) = i64::try_from(index) else {
        return Ok(None);
    };
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx = ?1"
        ))?
        .query_row([i], summary_of_row)
        .optional()?)
}

fn referrers(conn: &Connection, index: u64) -> Result<Vec<u64>, LedgerError> {
    let Ok(i) = i64::try_from(index) else {
        return Ok(Vec::new());
    };
    let mut st =
        conn.prepare_cached("SELECT source FROM refs WHERE target = ?1 ORDER BY source")?;
    let rows = st.query_map([i], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for x in rows {
        out.extend(u64::try_from(x?).ok());
    }
    Ok(out)
}

/// What adding one entry found wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// References that name no earlier entry with that leaf hash.
    pub bad_references: Vec<EntryRef>,
}

/// An entry read from its record, ready for [`Batch::add_prepared`]: the
/// part of adding that needs no database, so a reader can do it on other
/// threads while one writes.
#[derive(Clone, Debug)]
pub struct Prepared {
    summary: Summary,
    refs: Vec<EntryRef>,
    /// The bytes of a registry or policy record, kept whole.
    kept: Option<Vec<u8>>,
}

impl Prepared {
    /// Entry `index`: its bytes, their leaf hash, and the record they parse
    /// as (`None`: they do not).
    pub fn new(
        index: u64,
        data: &[u8],
        leaf_hash: Hash,
        record: Option<&SignedRecord>,
    ) -> Prepared {
        match record {
            Some(r) => {
                let summary = Summary::of_parsed(index, r, leaf_hash);
                let kept = matches!(summary.kind, Some(Kind::Registry | Kind::Policy))
                    .then(|| data.to_vec());
                Prepared {
                    summary,
                    refs: r.references(),
                    kept,
                }
            }
            None => Prepared {
                summary: Summary::unreadable(index, leaf_hash),
                refs: Vec::new(),
                kept: None,
            },
        }
    }

    /// The entry's index.
    pub fn index(&self) -> u64 {
        self.summary.index
    }
}

/// The columns of an entry's row that [`Batch::add_prepared`] writes, in
/// the order of its values (`flags` is written as 0 besides these).
const ENTRY_COLUMNS: [&str; 40] = [
    "idx",
    "kind",
    "version",
    "created",
    "day",
    "month",
    "signer",
    "jurisdiction",
    "country",
    "legal_basis",
    "legal_lower",
    "provider",
    "categories",
    "sealed_until",
    "sealed_in_force",
    "ratify_by",
    "decision",
    "refs",
    "about",
    "amends",
    "root",
    "leaf_hash",
    "outcome",
    "numbers",
    "reason",
    "request_agency",
    "policy",
    "case_reference",
    "offence",
    "issuer",
    "target_count",
    "valid_from",
    "valid_until",
    "released_at",
    "targets_released",
    "statuses",
    "share_key",
    "share_index",
    "share_threshold",
    "share_count",
];

/// The `INSERT` of an entry's row naming only the columns in `present` (bit
/// `i`: [`ENTRY_COLUMNS`]`[i]`): the others are NULL, as a bound NULL would
/// make them, without binding them (each kind fills few of the columns).
fn insert_entry_sql(present: u64) -> String {
    let mut columns = String::from("flags");
    let mut values = String::from("0");
    let mut n = 0;
    for (i, c) in ENTRY_COLUMNS.iter().enumerate() {
        if present & (1 << i) != 0 {
            n += 1;
            columns.push_str(", ");
            columns.push_str(c);
            values.push_str(&format!(", ?{n}"));
        }
    }
    format!("INSERT INTO entries({columns}) VALUES ({values})")
}

/// One transaction of additions (see the module documentation). Dropped
/// without [`Batch::commit`], it changes nothing.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
    conn: &'a Connection,
    /// The `INSERT`s of entries' rows, one per set of columns an entry
    /// fills ([`insert_entry_sql`]), taken from the statement cache once
    /// per batch rather than once per entry: each entry binds all its
    /// parameters again, so the cache's lookup and the clearing of the
    /// bindings on return are done once.
    insert_entry: Vec<(u64, rusqlite::CachedStatement<'a>)>,
    tick: i64,
    size: u64,
    monthly: HashMap<(&'static str, i64), i64>,
    per_agency: HashMap<String, i64>,
    /// Names to offer, per field.
    names: BTreeMap<&'static str, BTreeSet<String>>,
    /// Changes of membership per (month, status): new authorisations and
    /// the entries later ones speak of.
    month_status: HashMap<(i64, i64), i64>,
    /// The span of each day's new entries.
    days: HashMap<i64, DaySpan>,
}

/// What the row of an entry a reference names says: read once per
/// reference (one point query, instead of one for its leaf hash, one for
/// what the referring entry takes from it and one more for its statuses),
/// both to check the reference and to update the entry it names.
struct Referenced {
    leaf_hash: Vec<u8>,
    kind: Option<String>,
    root: Option<i64>,
    jurisdiction: Option<String>,
    signer: String,
    flags: i64,
    sealed_in_force: Option<i64>,
    ratify_by: Option<i64>,
    statuses: i64,
    month: Option<i64>,
}

/// The columns of [`Referenced`], in its order.
const REFERENCED_SQL: &str = "SELECT leaf_hash, kind, root, jurisdiction, signer, flags, \
     sealed_in_force, ratify_by, statuses, month FROM entries WHERE idx = ?1";

impl Batch<'_> {
    /// Entries held, counting those added in this batch.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The leaf hash of entry `index`, if held (this batch's too).
    pub fn leaf_hash(&self, index: u64) -> Result<Option<Hash>, LedgerError> {
        let Ok(i) = i64::try_from(index) else {
            return Ok(None);
        };
        let h: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT leaf_hash FROM entries WHERE idx = ?1")?
            .query_row([i], |r| r.get(0))
            .optional()?;
        Ok(h.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok().map(Hash)))
    }

    /// Adds the next entry: its bytes, and the record they parse as (`None`:
    /// they do not). Returns what was wrong with its references.
    pub fn add(
        &mut self,
        index: u64,
        data: &[u8],
        record: Option<&SignedRecord>,
    ) -> Result<Added, LedgerError> {
        self.add_hashed(index, data, daylight_core::leaf_hash(data), record)
    }

    /// [`Batch::add`] with the bytes' leaf hash, already computed.
    pub fn add_hashed(
        &mut self,
        index: u64,
        data: &[u8],
        leaf_hash: Hash,
        record: Option<&SignedRecord>,
    ) -> Result<Added, LedgerError> {
        self.add_prepared(Prepared::new(index, data, leaf_hash, record))
    }

    /// Adds the next entry, read from its record beforehand (see
    /// [`Prepared`]): what is left is the SQL.
    pub fn add_prepared(&mut self, p: Prepared) -> Result<Added, LedgerError> {
        let Prepared {
            summary: mut s,
            refs,
            kept,
        } = p;
        let index = s.index;
        if index != self.size {
            return Err(LedgerError::OutOfOrder {
                got: index,
                size: self.size,
            });
        }
        let mut added = Added::default();
        let mut valid = Vec::with_capacity(refs.len());
        // The rows the valid references name, as they were before this
        // entry: what it takes from them and what it changes in them.
        let mut rows = Vec::with_capacity(refs.len());
        for r in &refs {
            let row = if r.index.get() < index {
                self.referenced(sql_index(r.index.get()))?
            } else {
                None
            };
            let ok = row
                .as_ref()
                .is_some_and(|x| x.leaf_hash.as_slice() == r.leaf_hash.0.as_slice());
            if !ok {
                added.bad_references.push(*r);
            }
            valid.push(ok);
            rows.push(row.filter(|_| ok));
        }
        s.about = refs.first().filter(|_| valid[0]).map(|r| r.index.get());
        s.amends = refs
            .get(1)
            .filter(|_| valid.get(1) == Some(&true) && s.kind == Some(Kind::Outcome))
            .map(|r| r.index.get());
        self.insert(&mut s, &refs, &valid, rows)?;
        if let Some(data) = kept {
            self.tx
                .prepare_cached("INSERT INTO records(idx, kind, data) VALUES (?1, ?2, ?3)")?
                .execute(params![sql_index(index), s.kind_name(), data])?;
        }
        self.size += 1;
        Ok(added)
    }

    /// Adds the next entry from its bytes alone (parsed here).
    pub fn add_bytes(&mut self, index: u64, data: &[u8]) -> Result<Added, LedgerError> {
        let record = SignedRecord::parse(data).ok();
        self.add(index, data, record.as_ref())
    }

    /// The row of entry `t`, if held (this batch's too).
    fn referenced(&self, t: i64) -> Result<Option<Referenced>, LedgerError> {
        Ok(self
            .tx
            .prepare_cached(REFERENCED_SQL)?
            .query_row([t], |r| {
                Ok(Referenced {
                    leaf_hash: r.get(0)?,
                    kind: r.get(1)?,
                    root: r.get(2)?,
                    jurisdiction: r.get(3)?,
                    signer: r.get(4)?,
                    flags: r.get(5)?,
                    sealed_in_force: r.get(6)?,
                    ratify_by: r.get(7)?,
                    statuses: r.get(8)?,
                    month: r.get(9)?,
                })
            })
            .optional()?)
    }

    /// Writes one entry's row, and what it says about the entries it refers to.
    /// `rows`: the row each valid reference names, read before this entry
    /// (`None` for the others).
    fn insert(
        &mut self,
        s: &mut Summary,
        refs: &[EntryRef],
        valid: &[bool],
        mut rows: Vec<Option<Referenced>>,
    ) -> Result<(), LedgerError> {
        let idx = sql_index(s.index);
        let secs = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp());
        let month = s.created.map(month_key);
        let day = s.created.map(|c| epoch_day(c.date_naive()));
        let categories = s.categories.iter().fold(0, |m, c| m | category_bit(c));
        let about = s.about.map(sql_index);
        // `about` is set only when the first reference is valid: its row.
        let target = about.and_then(|_| rows.first().and_then(Option::as_ref));
        let target_is_auth =
            target.is_some_and(|t| matches!(t.kind.as_deref(), Some("request" | "emergency")));
        // The story it belongs to: an authorisation's own, or that of the
        // entry it is about.
        s.root = if s.is_authorisation() {
            Some(s.index)
        } else {
            target
                .and_then(|t| t.root)
                .and_then(|r| u64::try_from(r).ok())
        };
        // An outcome report and a refusal are about the authorisation they
        // name first: they are counted in that authorisation's
        // jurisdiction (a refusal also under the agency that asked), and an
        // outcome report replaces the earlier reports on it.
        let counted_under = (s.outcome.is_some() || s.reason.is_some()) && target_is_auth;
        if counted_under {
            if let Some(t) = target {
                s.jurisdiction = t.jurisdiction.clone();
                if s.reason.is_some() {
                    s.request_agency = Some(t.signer.clone());
                }
            }
        } else if s.outcome.is_some() || s.reason.is_some() {
            s.jurisdiction = None;
        }
        if let (Some(t), true) = (about, s.outcome.is_some() && target_is_auth) {
            self.tx
                .prepare_cached(
                    "UPDATE entries SET outcome = outcome & ~?1 WHERE kind = 'outcome' \
                     AND idx IN (SELECT source FROM refs WHERE target = ?2) AND about = ?2",
                )?
                .execute([outcome_bits::LATEST, t])?;
        }
        let refs_text: Vec<String> = s.references.iter().map(u64::to_string).collect();
        // A new authorisation has no later entries yet: its statuses come
        // from its own dates.
        let statuses = if s.is_authorisation() {
            Facts::at(
                s.kind,
                0,
                s.sealed_in_force,
                s.ratify_by,
                time(Some(self.tick)).unwrap_or_default(),
            )
            .statuses()
        } else {
            StatusSet::default()
        };
        let values: [&dyn rusqlite::ToSql; 40] = [
            &idx,
            &s.kind.map(Kind::as_str),
            &i64::try_from(s.version).unwrap_or(0),
            &secs(s.created),
            &day,
            &month,
            &s.signer,
            &s.jurisdiction,
            &s.jurisdiction
                .as_deref()
                .map(|j| j.split('-').next().unwrap_or(j)),
            &s.legal_basis,
            &s.legal_basis.as_deref().map(str::to_lowercase),
            &s.provider,
            &categories,
            &secs(s.sealed_until),
            &secs(s.sealed_in_force),
            &secs(s.ratify_by),
            &s.decision.map(Decision::as_str),
            &refs_text.join(";"),
            &about,
            &s.amends.map(sql_index),
            &s.root.map(sql_index),
            &&s.leaf_hash.0[..],
            &s.outcome.map(OutcomeFacts::bits),
            &s.outcome_numbers.map(OutcomeNumbers::to_text),
            &s.reason.map(RefusalReason::as_str),
            &s.request_agency,
            &(s.kind == Some(Kind::Policy)).then(|| s.policy.join("\n")),
            &s.case_reference,
            &s.offence,
            &s.issuer,
            &s.target_count,
            &secs(s.valid_from),
            &secs(s.valid_until),
            &secs(s.released_at),
            &s.targets_released,
            &i64::from(statuses.bits()),
            &s.share.map(|x| x.key.0.to_vec()),
            &s.share.map(|x| x.index),
            &s.share.map(|x| x.threshold),
            &s.share.map(|x| x.shares),
        ];
        self.insert_row(&values)?;
        if let (Some(kind), Some(month)) = (s.kind, month) {
            *self.monthly.entry((kind.as_str(), month)).or_default() += 1;
        }
        if let Some(day) = day {
            self.days
                .entry(day)
                .and_modify(|d| d.add(s.index))
                .or_insert_with(|| DaySpan::of(s.index));
        }
        // A few names recur in every entry: copied only the first time.
        if s.is_authorisation() {
            match self.per_agency.get_mut(s.signer.as_str()) {
                Some(n) => *n += 1,
                None => {
                    self.per_agency.insert(s.signer.clone(), 1);
                }
            }
            note_name(&mut self.names, "agency", &s.signer);
        }
        if let Some(j) = &s.jurisdiction {
            note_name(&mut self.names, "jurisdiction", j);
            note_name(
                &mut self.names,
                "jurisdiction",
                j.split('-').next().unwrap_or(j),
            );
        }
        if let Some(p) = &s.provider {
            note_name(&mut self.names, "provider", p);
        }
        let bit = s.flag_bit();
        let extends = (s.kind == Some(Kind::Extension))
            .then(|| secs(s.sealed_until))
            .flatten();
        for (k, (r, ok)) in refs.iter().zip(valid).enumerate() {
            // Only valid references: an earlier entry with that leaf hash.
            if !ok {
                continue;
            }
            let target = sql_index(r.index.get());
            self.tx
                .prepare_cached("INSERT OR IGNORE INTO refs(target, source) VALUES (?1, ?2)")?
                .execute([target, idx])?;
            if bit == 0 && extends.is_none() {
                continue;
            }
            // The row as read before this entry, unless an earlier
            // reference of this entry named it too and changed it.
            let named_before = refs[..k]
                .iter()
                .zip(valid)
                .any(|(x, ok)| *ok && x.index == r.index);
            let row = match rows.get_mut(k).and_then(Option::take) {
                Some(row) if !named_before => Some(row),
                _ => self.referenced(target)?,
            };
            if let Some(row) = row {
                self.update_referenced(target, &row, bit, extends)?;
            }
        }
        // A custodian's share of a key of the authorisation it names: the
        // authorisation is released once its shares put that key together.
        if let (Some(share), Some(t), true) = (s.share, about, target_is_auth) {
            if self.key_assembled(t, &share.key)? {
                self.tx
                    .prepare_cached("UPDATE entries SET flags = flags | ?1 WHERE idx = ?2")?
                    .execute(params![flags::SHARES, t])?;
                restatus(&self.tx, t, self.tick)?;
            }
        }
        if !statuses.is_empty() {
            let mut st = self.tx.prepare_cached(
                "INSERT OR IGNORE INTO status_members(status, entry) VALUES (?1, ?2)",
            )?;
            for status in statuses.to_vec() {
                st.execute([status_code(status), idx])?;
                *self
                    .month_status
                    .entry((month.unwrap_or(i64::MIN), status_code(status)))
                    .or_default() += 1;
            }
        }
        Ok(())
    }

    /// Inserts an entry's row: `values` in [`ENTRY_COLUMNS`] order, with
    /// the `INSERT` that names only the columns they do not leave NULL.
    fn insert_row(&mut self, values: &[&dyn rusqlite::ToSql; 40]) -> Result<(), LedgerError> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        let mut outputs: [ToSqlOutput<'_>; 40] = std::array::from_fn(|_| ToSqlOutput::from(0));
        let mut present = 0u64;
        for (i, v) in values.iter().enumerate() {
            let out = v.to_sql()?;
            let null = matches!(
                out,
                ToSqlOutput::Borrowed(ValueRef::Null) | ToSqlOutput::Owned(Value::Null)
            );
            if !null {
                present |= 1 << i;
            }
            outputs[i] = out;
        }
        let at = match self.insert_entry.iter().position(|(p, _)| *p == present) {
            Some(at) => at,
            None => {
                let st = self.conn.prepare_cached(&insert_entry_sql(present))?;
                self.insert_entry.push((present, st));
                self.insert_entry.len() - 1
            }
        };
        let st = &mut self.insert_entry[at].1;
        let mut n = 0;
        for (i, out) in outputs.iter().enumerate() {
            if present & (1 << i) != 0 {
                n += 1;
                st.raw_bind_parameter(n, out)?;
            }
        }
        st.raw_execute()?;
        Ok(())
    }

    /// Sets the flag `bit` on entry `target` (whose row is `row`), moves its
    /// sealed-until in force to `extends` if later, and its statuses with
    /// them: what `UPDATE ... flags | bit`, `max(sealed_in_force, ...)` and
    /// [`restatus`] would do, in one write of the row.
    fn update_referenced(
        &mut self,
        target: i64,
        row: &Referenced,
        bit: u8,
        extends: Option<i64>,
    ) -> Result<(), LedgerError> {
        let flags = row.flags | i64::from(bit);
        let sealed = match (row.sealed_in_force, extends) {
            (Some(s), Some(until)) => Some(s.max(until)),
            (s, _) => s,
        };
        let new = Facts::at(
            row.kind.as_deref().and_then(|k| k.parse().ok()),
            u8::try_from(flags).unwrap_or(0),
            time(sealed),
            time(row.ratify_by),
            DateTime::from_timestamp(self.tick, 0).unwrap_or_default(),
        )
        .statuses();
        let old = StatusSet::from_bits(u16::try_from(row.statuses).unwrap_or(0));
        move_members(
            &self.tx,
            target,
            row.month,
            old,
            new,
            Counts::Later(&mut self.month_status),
        )?;
        if sealed != row.sealed_in_force {
            self.tx
                .prepare_cached(
                    "UPDATE entries SET flags = ?1, statuses = ?2, sealed_in_force = ?3 \
                     WHERE idx = ?4",
                )?
                .execute(params![flags, i64::from(new.bits()), sealed, target])?;
        } else if flags != row.flags || new != old {
            self.tx
                .prepare_cached("UPDATE entries SET flags = ?1, statuses = ?2 WHERE idx = ?3")?
                .execute(params![flags, i64::from(new.bits()), target])?;
        }
        Ok(())
    }

    /// Whether the custodians' share releases naming authorisation `auth`
    /// (this batch's too) put the key `key` together.
    fn key_assembled(&self, auth: i64, key: &KeyTag) -> Result<bool, LedgerError> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM entries \
             WHERE share_key = ?1 AND root = ?2 AND about = ?2 AND kind = 'release'"
        ))?;
        let rows = st.query_map(params![&key.0[..], auth], summary_of_row)?;
        let receipts: Vec<Summary> = rows.collect::<Result<_, _>>()?;
        Ok(crate::custody::assembled(&crate::custody::receipts(&receipts)).contains(key))
    }

    /// Keeps a value with the ledger, in this transaction (a reader's own
    /// progress, such as the auditor's rules).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?
            .execute([key, value])?;
        Ok(())
    }

    /// Replaces the findings about `subject` with `findings`: (sort key,
    /// body) each.
    pub fn set_findings(
        &self,
        subject: &str,
        findings: &[(String, String)],
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached("DELETE FROM findings WHERE subject = ?1")?
            .execute([subject])?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO findings(subject, seq, sort, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (seq, (sort, body)) in findings.iter().enumerate() {
            st.execute(params![
                subject,
                i64::try_from(seq).unwrap_or(0),
                sort,
                body
            ])?;
        }
        Ok(())
    }

    /// Adds `findings` to those about `subject`: (sort key, body) each.
    pub fn add_findings(
        &self,
        subject: &str,
        findings: &[(String, String)],
    ) -> Result<(), LedgerError> {
        let next: i64 = self
            .tx
            .prepare_cached("SELECT coalesce(max(seq) + 1, 0) FROM findings WHERE subject = ?1")?
            .query_row([subject], |r| r.get(0))?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO findings(subject, seq, sort, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (seq, (sort, body)) in (next..).zip(findings) {
            st.execute(params![subject, seq, sort, body])?;
        }
        Ok(())
    }

    /// Removes every finding whose subject starts with `prefix`.
    pub fn clear_findings(&self, prefix: &str) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached("DELETE FROM findings WHERE substr(subject, 1, length(?1)) = ?1")?
            .execute([prefix])?;
        Ok(())
    }

    /// Writes the counters summed in memory and commits.
    pub fn commit(self) -> Result<(), LedgerError> {
        {
            let mut st = self.tx.prepare_cached(
                "INSERT INTO monthly(kind, month, n) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(kind, month) DO UPDATE SET n = n + excluded.n",
            )?;
            let sorted: BTreeMap<_, _> = self.monthly.iter().collect();
            for ((kind, month), n) in sorted {
                st.execute(params![kind, month, n])?;
            }
            let mut st = self.tx.prepare_cached(
                "INSERT INTO days(day, lo, hi, n) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(day) DO UPDATE SET lo = min(lo, excluded.lo), \
                 hi = max(hi, excluded.hi), n = n + excluded.n",
            )?;
            let sorted: BTreeMap<_, _> = self.days.iter().collect();
            for (day, d) in sorted {
                st.execute(params![
                    day,
                    sql_index(d.lo),
                    sql_index(d.hi),
                    sql_index(d.entries)
                ])?;
            }
            let mut st = self.tx.prepare_cached(
                "INSERT INTO per_agency(signer, n) VALUES (?1, ?2) \
                 ON CONFLICT(signer) DO UPDATE SET n = n + excluded.n",
            )?;
            for (signer, n) in &self.per_agency {
                st.execute(params![signer, n])?;
            }
            let mut st = self.tx.prepare_cached(
                "INSERT INTO monthly_status(month, status, n) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(month, status) DO UPDATE SET n = n + excluded.n",
            )?;
            let sorted: BTreeMap<_, _> = self.month_status.iter().collect();
            for ((month, status), n) in sorted {
                st.execute(params![month, status, n])?;
            }
            let mut st = self
                .tx
                .prepare_cached("INSERT OR IGNORE INTO names(field, value) VALUES (?1, ?2)")?;
            for (field, values) in &self.names {
                for value in values {
                    st.execute(params![field, value])?;
                }
            }
        }
        self.tx.commit()?;
        Ok(())
    }
}

/// Adds `value` to the names of `field`.
fn note_name(
    names: &mut BTreeMap<&'static str, BTreeSet<String>>,
    field: &'static str,
    value: &str,
) {
    let values = names.entry(field).or_default();
    if !values.contains(value) {
        values.insert(value.to_owned());
    }
}

/// Recomputes entry `idx`'s statuses at `at` (with the one status
/// function) and updates its memberships.
fn restatus(tx: &rusqlite::Transaction<'_>, idx: i64, at: i64) -> rusqlite::Result<()> {
    let row = tx
        .prepare_cached(
            "SELECT kind, flags, sealed_in_force, ratify_by, statuses, month FROM entries WHERE idx = ?1",
        )?
        .query_row([idx], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    let Some((kind, flags, sealed, ratify, old, month)) = row else {
        return Ok(());
    };
    let new = Facts::at(
        kind.and_then(|k| k.parse().ok()),
        u8::try_from(flags).unwrap_or(0),
        time(sealed),
        time(ratify),
        DateTime::from_timestamp(at, 0).unwrap_or_default(),
    )
    .statuses();
    let old = StatusSet::from_bits(u16::try_from(old).unwrap_or(0));
    set_statuses(tx, idx, month, old, new)
}

/// Moves entry `idx` (made in `month`) from statuses `old` to `new`: its
/// memberships, the per-month counts and its row.
fn set_statuses(
    tx: &rusqlite::Transaction<'_>,
    idx: i64,
    month: Option<i64>,
    old: StatusSet,
    new: StatusSet,
) -> rusqlite::Result<()> {
    if new == old {
        return Ok(());
    }
    move_members(tx, idx, month, old, new, Counts::Now)?;
    tx.prepare_cached("UPDATE entries SET statuses = ?1 WHERE idx = ?2")?
        .execute([i64::from(new.bits()), idx])?;
    Ok(())
}

/// Where [`move_members`] counts a change of status.
enum Counts<'a> {
    /// In `monthly_status`, at once.
    Now,
    /// In a batch's sums per (month, status), written at its commit: one
    /// upsert per month and status for the whole batch instead of one per
    /// change (the sums are the same).
    Later(&'a mut HashMap<(i64, i64), i64>),
}

/// Moves entry `idx` (made in `month`) from statuses `old` to `new`: its
/// memberships and the per-month counts (not its row).
fn move_members(
    tx: &rusqlite::Transaction<'_>,
    idx: i64,
    month: Option<i64>,
    old: StatusSet,
    new: StatusSet,
    mut counts: Counts<'_>,
) -> rusqlite::Result<()> {
    if new == old {
        return Ok(());
    }
    let month = month.unwrap_or(i64::MIN);
    for st in Status::ALL {
        let code = status_code(st);
        let delta = match (old.contains(st), new.contains(st)) {
            (false, true) => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO status_members(status, entry) VALUES (?1, ?2)",
                )?
                .execute([code, idx])?;
                1
            }
            (true, false) => {
                tx.prepare_cached("DELETE FROM status_members WHERE status = ?1 AND entry = ?2")?
                    .execute([code, idx])?;
                -1
            }
            _ => continue,
        };
        match &mut counts {
            Counts::Later(sums) => *sums.entry((month, code)).or_default() += delta,
            // An upsert: the row of an authorisation added in this batch is
            // only written at commit (the sums add up then).
            Counts::Now => {
                tx.prepare_cached(
                    "INSERT INTO monthly_status(month, status, n) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(month, status) DO UPDATE SET n = n + excluded.n",
                )?
                .execute([month, code, delta])?;
            }
        }
    }
    Ok(())
}
