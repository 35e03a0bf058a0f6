//! The web view's query index: one row of facts per entry in a SQLite file
//! beside the log, kept up to date as the log grows. Lists, filters,
//! counts and the overview's statistics are SQL over it, so the server's
//! memory stays flat however long the log grows, and a restart reads only
//! the entries added since the last run.
//!
//! Statuses are stored as memberships (status, entry), computed by the one
//! status function ([`Facts::statuses`]) when an entry is indexed, when a
//! later entry speaks of it, and when a tick passes its dates.
//!
//! The file is derived data: if it does not match the log (another
//! origin, a different leaf hash at its last entry, more entries than the
//! log has), it is emptied and rebuilt from the log; a damaged file is
//! deleted and made again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use daylight_core::LeafIndex;
use daylight_log_server::store::{LogStore, StoreError};
use daylight_schemas::{Body, DataCategory, Decision, Kind, RefusalReason, SignedRecord};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::filter::{Encryption, Filter};
use crate::pages::HomeStats;
use crate::status::{flags, Facts, Status, StatusSet};

/// Entries read from the log and written per transaction while catching up.
const CHUNK: u64 = 2048;

/// Bumped whenever the tables change; an index of another version is rebuilt.
const SCHEMA_VERSION: i64 = 7;

/// The most rows an export returns (the newest matches).
pub const EXPORT_LIMIT: usize = 100_000;

/// Lists count their matches up to this many; past it they say "more than".
pub const LIST_COUNT_LIMIT: u64 = 1_000;

/// Counts remembered per filter.
const COUNT_CACHE_SIZE: usize = 256;

/// Why the index could not answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The index's own database failed.
    #[error("web index database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
    /// A damaged index file could not be removed to make it again.
    #[error("removing the damaged web index {}: {source}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// Why it could not be removed.
        source: std::io::Error,
    },
}

/// What the list, the filters and the entry page need of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The entry's index.
    pub index: u64,
    /// Its kind, or `None` if the bytes do not parse as a record.
    pub kind: Option<Kind>,
    /// When the signer made it.
    pub created: Option<DateTime<Utc>>,
    /// The signer's key name.
    pub signer: String,
    /// Jurisdiction (requests and emergencies; for an outcome report or a
    /// refusal read from the index, that of the authorisation it is about).
    pub jurisdiction: Option<String>,
    /// Legal basis (requests and emergencies).
    pub legal_basis: Option<String>,
    /// The provider asked (requests and emergencies), or the provider that
    /// signed it (refusals and published policies).
    pub provider: Option<String>,
    /// Data categories asked for (requests and emergencies), in
    /// [`DataCategory::ALL`] order.
    pub categories: Vec<&'static str>,
    /// Sealed-until (requests and emergencies), or the new one (extensions).
    pub sealed_until: Option<DateTime<Utc>>,
    /// The sealed-until date in force: the entry's own, or a later
    /// extension's.
    pub sealed_in_force: Option<DateTime<Utc>>,
    /// The ratification deadline (emergencies).
    pub ratify_by: Option<DateTime<Utc>>,
    /// A ratification's decision.
    pub decision: Option<Decision>,
    /// Indexes of the earlier entries this one refers to.
    pub references: Vec<u64>,
    /// What later entries said about it ([`flags`] bits).
    pub flags: u8,
    /// Leaf hash, hex.
    pub leaf_hash: String,
    /// What an outcome report says (outcome reports only).
    pub outcome: Option<OutcomeFacts>,
    /// Why the provider refused (refusals only).
    pub reason: Option<RefusalReason>,
    /// The agency that signed the request a refusal is about (refusals
    /// read from the index).
    pub request_agency: Option<String>,
    /// The content lines a provider published (policies only).
    pub policy: Vec<String>,
}

/// What an outcome report says, as lists and counts filter on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeFacts {
    /// Whether any data was obtained.
    pub data_obtained: bool,
    /// Whether encryption was encountered.
    pub encryption_encountered: bool,
    /// Whether encryption kept the plain text out of reach.
    pub encryption_prevented_access: bool,
    /// Whether it is the latest report on its authorisation: a later
    /// outcome report on the same authorisation replaces it (as the
    /// auditor's report counts them). `true` for a report read alone.
    pub latest: bool,
}

/// The bits of [`OutcomeFacts`] in the index's `outcome` column (NULL for
/// entries that are no outcome report, so no outcome condition matches them).
mod outcome_bits {
    pub const DATA_OBTAINED: i64 = 1;
    pub const ENCOUNTERED: i64 = 2;
    pub const PREVENTED: i64 = 4;
    pub const LATEST: i64 = 8;
}

impl OutcomeFacts {
    fn bits(self) -> i64 {
        use outcome_bits::*;
        let b = |x: bool, bit: i64| if x { bit } else { 0 };
        b(self.data_obtained, DATA_OBTAINED)
            | b(self.encryption_encountered, ENCOUNTERED)
            | b(self.encryption_prevented_access, PREVENTED)
            | b(self.latest, LATEST)
    }

    fn from_bits(bits: i64) -> OutcomeFacts {
        use outcome_bits::*;
        OutcomeFacts {
            data_obtained: bits & DATA_OBTAINED != 0,
            encryption_encountered: bits & ENCOUNTERED != 0,
            encryption_prevented_access: bits & PREVENTED != 0,
            latest: bits & LATEST != 0,
        }
    }
}

impl Summary {
    /// The summary of entry `index` with these bytes.
    pub fn of(index: u64, data: &[u8], leaf_hash: String) -> Summary {
        let mut s = Summary {
            index,
            kind: None,
            created: None,
            signer: String::new(),
            jurisdiction: None,
            legal_basis: None,
            provider: None,
            categories: Vec::new(),
            sealed_until: None,
            sealed_in_force: None,
            ratify_by: None,
            decision: None,
            references: Vec::new(),
            flags: 0,
            leaf_hash,
            outcome: None,
            reason: None,
            request_agency: None,
            policy: Vec::new(),
        };
        let Ok(r) = SignedRecord::parse(data) else {
            return s;
        };
        s.kind = Some(r.kind());
        s.created = Some(r.created());
        s.signer = r.signer().name.to_string();
        s.references = r.references().iter().map(|e| e.index.get()).collect();
        s.sealed_until = r.body().sealed_until();
        s.ratify_by = r.body().ratify_by();
        s.provider = r.provider().map(str::to_owned);
        let categories = match r.body() {
            Body::Request(b) => {
                s.jurisdiction = Some(b.jurisdiction.to_string());
                s.legal_basis = Some(b.legal_basis.to_string());
                Some(&b.data_categories)
            }
            Body::Emergency(b) => {
                s.jurisdiction = Some(b.jurisdiction.to_string());
                s.legal_basis = Some(b.legal_basis.to_string());
                Some(&b.data_categories)
            }
            Body::Ratification(b) => {
                s.decision = Some(b.decision);
                None
            }
            Body::Refusal(b) => {
                s.reason = Some(b.reason);
                s.provider = Some(s.signer.clone());
                None
            }
            Body::Policy(b) => {
                s.policy = b.lines.iter().map(|l| l.as_str().to_owned()).collect();
                s.provider = Some(s.signer.clone());
                None
            }
            Body::Outcome(b) => {
                s.outcome = Some(OutcomeFacts {
                    data_obtained: b.data_obtained,
                    encryption_encountered: b.encryption_encountered,
                    encryption_prevented_access: b.encryption_prevented_access,
                    latest: true,
                });
                None
            }
            _ => None,
        };
        if let Some(c) = categories {
            s.categories = categories_of(c.iter().fold(0, |m, c| m | category_bit(c.as_str())));
        }
        if s.is_authorisation() {
            s.sealed_in_force = s.sealed_until;
        }
        s
    }

    /// Whether this is an authorisation (a request or an emergency).
    pub fn is_authorisation(&self) -> bool {
        matches!(self.kind, Some(Kind::Request | Kind::Emergency))
    }

    /// The kind's name, or `unreadable`.
    pub fn kind_name(&self) -> &'static str {
        self.kind.map(Kind::as_str).unwrap_or("unreadable")
    }

    /// What the statuses depend on at `now`.
    pub fn facts(&self, now: DateTime<Utc>) -> Facts {
        Facts::at(
            self.kind,
            self.flags,
            self.sealed_in_force,
            self.ratify_by,
            now,
        )
    }

    /// The statuses of an authorisation at `now`; empty for other kinds.
    pub fn status_set(&self, now: DateTime<Utc>) -> StatusSet {
        self.facts(now).statuses()
    }

    /// [`Summary::status_set`] in [`Status::ALL`] order.
    pub fn statuses(&self, now: DateTime<Utc>) -> Vec<Status> {
        self.status_set(now).to_vec()
    }
}

fn category_bit(c: &str) -> i64 {
    DataCategory::ALL
        .iter()
        .position(|x| x.as_str() == c)
        .and_then(|i| 1i64.checked_shl(u32::try_from(i).ok()?))
        .unwrap_or(0)
}

fn categories_of(mask: i64) -> Vec<&'static str> {
    DataCategory::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| u32::try_from(*i).is_ok_and(|i| i < 63 && mask & (1 << i) != 0))
        .map(|(_, c)| c.as_str())
        .collect()
}

/// Days since 1970-01-01 of a UTC date.
fn epoch_day(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

/// A month as a number: year * 12 + month (0 to 11).
pub fn month_key(t: DateTime<Utc>) -> i64 {
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

fn time(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

/// How far the index has read the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Entries indexed (0 to `indexed - 1`).
    pub indexed: u64,
    /// Entries in the log.
    pub size: u64,
}

impl Coverage {
    /// Whether every entry of the log is indexed.
    pub fn complete(&self) -> bool {
        self.indexed >= self.size
    }
}

struct Writer {
    conn: Connection,
    /// Whether the index was checked against the log since it was opened.
    checked: bool,
}

struct CachedCount {
    indexed: u64,
    total: Total,
}

/// A count of matches made in a year (`None`: no creation time) in a
/// country (`None`: no jurisdiction).
pub type YearCountryCount = (Option<i32>, Option<String>, u64);

/// Counts per group: the group's values (in the order asked) and the count.
pub type GroupCount = (Vec<Option<String>>, u64);

/// A value [`Index::grouped`] counts by, each the value of a list filter,
/// so that a group's count is the total of the list with that filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The year the entry was made (UTC): the `from` and `to` filters over
    /// that year.
    Year,
    /// The country of its jurisdiction (the part before `-`): the
    /// `jurisdiction` filter with a country.
    Country,
    /// The agency that signed the request a refusal is about: `request_agency`.
    RequestAgency,
    /// A refusal's reason: `reason`.
    Reason,
    /// The provider: `provider`.
    Provider,
}

impl Group {
    fn sql(self) -> &'static str {
        match self {
            Group::Year => "CAST(strftime('%Y', created, 'unixepoch') AS TEXT)",
            Group::Country => "country",
            Group::RequestAgency => "request_agency",
            Group::Reason => "reason",
            Group::Provider => "provider",
        }
    }
}

/// A number of matches: exact, or a lower bound where counting stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    /// Matches counted.
    pub n: u64,
    /// Whether counting stopped at its limit (there may be more).
    pub at_least: bool,
}

/// The query index (see the module documentation).
pub struct Index {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    counts: Mutex<HashMap<String, CachedCount>>,
    /// Lists count their matches up to this many.
    list_limit: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    idx INTEGER PRIMARY KEY,
    kind TEXT,
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
    leaf_hash TEXT NOT NULL,
    statuses INTEGER NOT NULL DEFAULT 0,
    outcome INTEGER,
    reason TEXT,
    request_agency TEXT,
    policy TEXT
);
CREATE INDEX IF NOT EXISTS entries_kind ON entries(kind);
CREATE INDEX IF NOT EXISTS entries_signer ON entries(signer);
CREATE INDEX IF NOT EXISTS entries_provider ON entries(provider);
CREATE INDEX IF NOT EXISTS entries_jurisdiction ON entries(jurisdiction);
CREATE INDEX IF NOT EXISTS entries_country ON entries(country);
CREATE INDEX IF NOT EXISTS entries_day ON entries(day, categories);
CREATE INDEX IF NOT EXISTS entries_sealed ON entries(sealed_in_force)
    WHERE sealed_in_force IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_ratify ON entries(ratify_by)
    WHERE ratify_by IS NOT NULL;
CREATE TABLE IF NOT EXISTS status_members(
    status INTEGER NOT NULL, entry INTEGER NOT NULL, PRIMARY KEY(status, entry)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refs(
    target INTEGER NOT NULL, source INTEGER NOT NULL, PRIMARY KEY(target, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names(
    field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(field, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS monthly(
    kind TEXT NOT NULL, month INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(kind, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS monthly_status(
    month INTEGER NOT NULL, status INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(month, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS per_agency(
    signer TEXT PRIMARY KEY, n INTEGER NOT NULL
) WITHOUT ROWID;
";

const TABLES: [&str; 8] = [
    "entries",
    "status_members",
    "monthly_status",
    "refs",
    "names",
    "monthly",
    "per_agency",
    "meta",
];

/// The columns a [`Summary`] is read from, in [`summary_of_row`] order.
const SUMMARY_COLUMNS: &str = "idx, kind, created, signer, jurisdiction, legal_basis, provider, \
     categories, sealed_until, sealed_in_force, ratify_by, decision, refs, flags, leaf_hash, outcome, \
     reason, request_agency, policy";

fn summary_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    let refs: String = r.get(12)?;
    Ok(Summary {
        index: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
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
        leaf_hash: r.get(14)?,
        outcome: r.get::<_, Option<i64>>(15)?.map(OutcomeFacts::from_bits),
        reason: r.get::<_, Option<String>>(16)?.and_then(|x| x.parse().ok()),
        request_agency: r.get(17)?,
        policy: r
            .get::<_, Option<String>>(18)?
            .map(|p| p.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    // Derived data: a lost tail after a crash is read from the log again,
    // so the writes need not wait for the disk.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(conn)
}

fn indexed(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row("SELECT coalesce(max(idx) + 1, 0) FROM entries", [], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Empties the index of entries (its version, origin and tick stay).
fn clear(conn: &Connection) -> rusqlite::Result<()> {
    for t in TABLES.iter().filter(|&&t| t != "meta") {
        conn.execute(&format!("DELETE FROM {t}"), [])?;
    }
    Ok(())
}

/// The time (Unix seconds) the statuses in `status_members` are for.
fn ticked(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE key = 'tick'", [], |r| {
        r.get(0)
    })
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
    if new == old {
        return Ok(());
    }
    // The overview's per-month counts move with the memberships.
    let month = month.unwrap_or(i64::MIN);
    for st in Status::ALL {
        let code = status_code(st);
        match (old.contains(st), new.contains(st)) {
            (false, true) => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO status_members(status, entry) VALUES (?1, ?2)",
                )?
                .execute([code, idx])?;
                tx.prepare_cached(
                    "INSERT INTO monthly_status(month, status, n) VALUES (?1, ?2, 1) \
                     ON CONFLICT(month, status) DO UPDATE SET n = n + 1",
                )?
                .execute([month, code])?;
            }
            (true, false) => {
                tx.prepare_cached("DELETE FROM status_members WHERE status = ?1 AND entry = ?2")?
                    .execute([code, idx])?;
                tx.prepare_cached(
                    "UPDATE monthly_status SET n = n - 1 WHERE month = ?1 AND status = ?2",
                )?
                .execute([month, code])?;
            }
            _ => {}
        }
    }
    tx.prepare_cached("UPDATE entries SET statuses = ?1 WHERE idx = ?2")?
        .execute([i64::from(new.bits()), idx])?;
    Ok(())
}

/// A filter as SQL: what to read from, the condition, and its parameters.
struct Condition {
    /// `entries`, or for a status its members joined to `entries`.
    from: &'static str,
    /// The column that orders entries (`idx`, or the members' `entry`).
    order: &'static str,
    sql: String,
    params: Vec<(&'static str, Value)>,
}

/// A status filter reads its members, newest first, and looks each entry
/// up: as fast for an old status ("overdue") as for a new one.
const STATUS_FROM: &str = "status_members CROSS JOIN entries ON idx = entry";

impl Condition {
    fn of(f: &Filter) -> Condition {
        let mut terms: Vec<String> = Vec::new();
        let mut params: Vec<(&'static str, Value)> = Vec::new();
        let text = |v: &str| Value::Text(v.to_owned());
        if !f.kinds.is_empty() {
            let list: Vec<String> = f
                .kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            terms.push(format!("kind IN ({})", list.join(", ")));
        }
        if let Some(a) = &f.agency {
            terms.push("signer = :agency".into());
            params.push((":agency", text(a)));
        }
        if let Some(j) = &f.jurisdiction {
            let column = if j.contains('-') {
                "jurisdiction"
            } else {
                "country"
            };
            terms.push(format!("{column} = :jurisdiction"));
            params.push((":jurisdiction", text(j)));
        }
        if let Some(l) = &f.legal_basis {
            terms.push("instr(legal_lower, :legal) > 0".into());
            params.push((":legal", text(&l.to_lowercase())));
        }
        if let Some(p) = &f.provider {
            terms.push("provider = :provider".into());
            params.push((":provider", text(p)));
        }
        if let Some(r) = f.reason {
            terms.push("reason = :reason".into());
            params.push((":reason", text(r.as_str())));
        }
        if let Some(a) = &f.request_agency {
            terms.push("request_agency = :request_agency".into());
            params.push((":request_agency", text(a)));
        }
        if !f.categories.is_empty() {
            let mask = f.categories.iter().fold(0, |m, c| m | category_bit(c));
            terms.push("categories & :categories != 0".into());
            params.push((":categories", Value::Integer(mask)));
        }
        if let Some(d) = f.from {
            terms.push("day >= :from".into());
            params.push((":from", Value::Integer(epoch_day(d))));
        }
        if let Some(d) = f.to {
            terms.push("day <= :to".into());
            params.push((":to", Value::Integer(epoch_day(d))));
        }
        if let Some(e) = f.emergency {
            terms.push(format!(
                "kind = '{}'",
                if e { "emergency" } else { "request" }
            ));
        }
        // Outcome conditions: the column is NULL for other entries, and a
        // comparison with NULL is never true, so they match outcome reports only.
        let bits = |mask: i64, want: i64| format!("outcome & {mask} = {want}");
        {
            use outcome_bits::*;
            if let Some(l) = f.latest {
                terms.push(bits(LATEST, if l { LATEST } else { 0 }));
            }
            match f.encryption {
                Some(Encryption::Encountered) => terms.push(bits(ENCOUNTERED, ENCOUNTERED)),
                Some(Encryption::Prevented) => terms.push(bits(PREVENTED, PREVENTED)),
                Some(Encryption::Overcome) => {
                    terms.push(bits(ENCOUNTERED | PREVENTED, ENCOUNTERED))
                }
                Some(Encryption::None) => terms.push(bits(ENCOUNTERED, 0)),
                None => {}
            }
            if let Some(d) = f.data_obtained {
                terms.push(bits(DATA_OBTAINED, if d { DATA_OBTAINED } else { 0 }));
            }
        }
        let (from, order) = match f.status {
            Some(st) => {
                terms.push("status = :status".into());
                params.push((":status", Value::Integer(status_code(st))));
                (STATUS_FROM, "entry")
            }
            None => ("entries", "idx"),
        };
        let sql = if terms.is_empty() {
            "1".to_owned()
        } else {
            terms.join(" AND ")
        };
        Condition {
            from,
            order,
            sql,
            params,
        }
    }

    fn bind(&self) -> Vec<(&str, &dyn rusqlite::ToSql)> {
        self.params
            .iter()
            .map(|(k, v)| (*k, v as &dyn rusqlite::ToSql))
            .collect()
    }
}

/// A status's number in `status_members` and `monthly_status`.
fn status_code(st: Status) -> i64 {
    i64::from(st.number())
}

/// Whether the first `done` indexed entries can be the log's: not more
/// than it has, and the same leaf hash at the last one.
fn matches_log(
    conn: &Connection,
    store: &dyn LogStore,
    done: u64,
    size: u64,
) -> Result<bool, IndexError> {
    if done == 0 {
        return Ok(true);
    }
    if done > size {
        return Ok(false);
    }
    let last = done - 1;
    let ours: Option<String> = conn
        .query_row(
            "SELECT leaf_hash FROM entries WHERE idx = ?1",
            [i64::try_from(last).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .optional()?;
    let theirs = store.entry(LeafIndex(last))?.map(|e| e.leaf_hash.to_hex());
    Ok(ours.is_some() && ours == theirs)
}

/// A reader connection borrowed from the pool, returned when dropped.
struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Mutex<Vec<Connection>>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Present from creation until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            lock(self.pool).push(c);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Index {
    /// Opens (or creates) the index at `path` for the log with this origin.
    /// An index of another schema version or another log is emptied; a
    /// file SQLite cannot use (damaged, not a database) is deleted and made
    /// again, since everything in it can be read from the log.
    pub fn open(path: &Path, origin: &str) -> Result<Index, IndexError> {
        match Self::open_file(path, origin) {
            Err(IndexError::Db(e))
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
                ) =>
            {
                tracing::warn!("web index {}: {e}; making it again", path.display());
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(IndexError::Remove {
                                path: p.into(),
                                source: e,
                            })
                        }
                        _ => {}
                    }
                }
                Self::open_file(path, origin)
            }
            other => other,
        }
    }

    fn open_file(path: &Path, origin: &str) -> Result<Index, IndexError> {
        let conn = open_conn(path)?;
        conn.execute_batch(SCHEMA)?;
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
        }
        Ok(Index {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                conn,
                checked: false,
            }),
            readers: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            list_limit: LIST_COUNT_LIMIT,
        })
    }

    fn reader(&self) -> Result<Reader<'_>, IndexError> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => {
                let c = open_conn(&self.path)?;
                c.pragma_update(None, "query_only", true)?;
                // Pages read a few rows each; many readers share the OS cache.
                c.pragma_update(None, "cache_size", -4_000)?;
                c
            }
        };
        Ok(Reader {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    /// Reads entries the index does not have yet from `store`, for up to
    /// about `budget`, and says how far it got.
    pub fn catch_up(&self, store: &dyn LogStore, budget: Duration) -> Result<Coverage, IndexError> {
        let started = Instant::now();
        let mut w = lock(&self.writer);
        let size = store.size()?.get();
        let mut done = indexed(&w.conn)?;
        if !w.checked {
            if !matches_log(&w.conn, store, done, size)? {
                tracing::warn!("web index does not match the log: rebuilding it");
                clear(&w.conn)?;
                lock(&self.counts).clear();
                done = 0;
            }
            w.checked = true;
        }
        while done < size && started.elapsed() < budget {
            let batch = store.entries(LeafIndex(done), CHUNK.min(size - done))?;
            let Some(last) = batch.last() else { break };
            let next = last.index.get() + 1;
            let tx = w.conn.transaction()?;
            let tick = ticked(&tx)?;
            for e in &batch {
                add(
                    &tx,
                    &Summary::of(e.index.get(), &e.data, e.leaf_hash.to_hex()),
                    tick,
                )?;
            }
            tx.commit()?;
            done = next;
        }
        Ok(Coverage {
            indexed: done,
            size,
        })
    }

    /// How far the index has read, without reading more.
    pub fn coverage(&self, store: &dyn LogStore) -> Result<Coverage, IndexError> {
        Ok(Coverage {
            indexed: indexed(&*self.reader()?)?,
            size: store.size()?.get(),
        })
    }

    /// The entry at `index`, if indexed.
    pub fn get(&self, index: u64) -> Result<Option<Summary>, IndexError> {
        let Ok(i) = i64::try_from(index) else {
            return Ok(None);
        };
        let r = self.reader()?;
        Ok(r.query_row(
            &format!("SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx = ?1"),
            [i],
            summary_of_row,
        )
        .optional()?)
    }

    /// The later entries that refer to `index`, in order.
    pub fn referrers(&self, index: u64) -> Result<Vec<u64>, IndexError> {
        let Ok(i) = i64::try_from(index) else {
            return Ok(Vec::new());
        };
        let r = self.reader()?;
        let mut st =
            r.prepare_cached("SELECT source FROM refs WHERE target = ?1 ORDER BY source")?;
        let rows = st.query_map([i], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for x in rows {
            out.extend(u64::try_from(x?).ok());
        }
        Ok(out)
    }

    /// How many indexed entries pass `filter` (statuses as of the last
    /// [`Index::tick`]), counting up to `limit` matches at most, so that a
    /// page of a long list need not visit every match.
    pub fn count(&self, filter: &Filter, limit: Option<u64>) -> Result<Total, IndexError> {
        let r = self.reader()?;
        let size = indexed(&r)?;
        let cap = limit.unwrap_or(u64::MAX);
        if filter.is_empty() {
            return Ok(Total {
                n: size,
                at_least: false,
            });
        }
        let cond = Condition::of(filter);
        // Statuses change with later entries and with time: a status count
        // is reused only for the same entries at the same tick.
        let mut key = format!("{}#{cap}", filter.query(None));
        if filter.status.is_some() {
            key.push_str(&format!("@{}", ticked(&r)?));
        }
        let cached = lock(&self.counts).get(&key).map(|c| (c.indexed, c.total));
        let count_from = |start: u64, cap: u64| -> Result<Total, IndexError> {
            let start = i64::try_from(start).unwrap_or(i64::MAX);
            let limit = i64::try_from(cap).unwrap_or(i64::MAX);
            let mut bind = cond.bind();
            bind.push((":start", &start));
            bind.push((":limit", &limit));
            let n: i64 = r.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} >= :start AND {} LIMIT :limit)",
                    cond.from, cond.order, cond.sql
                ),
                bind.as_slice(),
                |row| row.get(0),
            )?;
            let n = u64::try_from(n).unwrap_or(0);
            Ok(Total {
                n,
                at_least: n >= cap,
            })
        };
        let total = match cached {
            Some((at_size, t)) if at_size == size => t,
            // Rows never change once indexed but for their statuses:
            // without a status, only new entries need counting.
            Some((at_size, t)) if !filter.changes_with_later_entries() && at_size < size => {
                if t.at_least {
                    t
                } else {
                    let more = count_from(at_size, cap.saturating_sub(t.n))?;
                    Total {
                        n: t.n + more.n,
                        at_least: more.at_least,
                    }
                }
            }
            _ => count_from(0, cap)?,
        };
        let mut counts = lock(&self.counts);
        if counts.len() >= COUNT_CACHE_SIZE {
            counts.clear();
        }
        counts.insert(
            key,
            CachedCount {
                indexed: size,
                total,
            },
        );
        Ok(total)
    }

    /// Up to `limit` matches after skipping `skip`, newest first.
    pub fn matches(
        &self,
        filter: &Filter,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Summary>, IndexError> {
        let r = self.reader()?;
        let cond = Condition::of(filter);
        let mut bind = cond.bind();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let skip = i64::try_from(skip).unwrap_or(i64::MAX);
        bind.push((":limit", &limit));
        // Without a filter the entries are 0..size: a page is a range of
        // indexes, however deep.
        let below = i64::try_from(indexed(&r)?)
            .unwrap_or(i64::MAX)
            .saturating_sub(skip);
        let sql = if filter.is_empty() {
            bind.push((":below", &below));
            format!("SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx < :below ORDER BY idx DESC LIMIT :limit")
        } else if filter.status.is_some() {
            bind.push((":skip", &skip));
            format!(
                "SELECT {SUMMARY_COLUMNS} FROM {} WHERE {} ORDER BY {} DESC LIMIT :limit OFFSET :skip",
                cond.from, cond.sql, cond.order
            )
        } else {
            // The page's indexes first, from an index that covers the
            // condition where there is one (a date range sorts its matches'
            // indexes, not their rows), then only those rows.
            bind.push((":skip", &skip));
            format!(
                "SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx IN \
                 (SELECT idx FROM entries WHERE {} ORDER BY idx DESC LIMIT :limit OFFSET :skip) \
                 ORDER BY idx DESC",
                cond.sql
            )
        };
        let mut st = r.prepare_cached(&sql)?;
        let rows = st.query_map(bind.as_slice(), summary_of_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The matches of `filter` counted per year of creation (UTC) and
    /// country (the jurisdiction's part before `-`), with the same
    /// condition as [`Index::count`], so each count is the total of the
    /// list the filter with that year and country gives.
    pub fn per_year_and_country(
        &self,
        filter: &Filter,
    ) -> Result<Vec<YearCountryCount>, IndexError> {
        let r = self.reader()?;
        let cond = Condition::of(filter);
        let sql = format!(
            "SELECT CAST(strftime('%Y', created, 'unixepoch') AS INTEGER) AS y, country, count(*) \
             FROM {} WHERE {} GROUP BY y, country ORDER BY y, country",
            cond.from, cond.sql
        );
        let mut st = r.prepare_cached(&sql)?;
        let rows = st.query_map(cond.bind().as_slice(), |r| {
            Ok((
                r.get::<_, Option<i32>>(0)?,
                r.get::<_, Option<String>>(1)?,
                u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The matches of `filter` counted per value of each of `by` (`None`:
    /// the entry has no such value), with the same condition as
    /// [`Index::count`]: a count is the total of the list the filter gives
    /// with those values added (see [`Group`]).
    pub fn grouped(&self, filter: &Filter, by: &[Group]) -> Result<Vec<GroupCount>, IndexError> {
        let r = self.reader()?;
        let cond = Condition::of(filter);
        let cols: Vec<&str> = by.iter().map(|g| g.sql()).collect();
        let keys = if cols.is_empty() {
            "'all'".to_owned()
        } else {
            cols.join(", ")
        };
        let sql = format!(
            "SELECT {keys}, count(*) FROM {} WHERE {} GROUP BY {keys} ORDER BY {keys}",
            cond.from, cond.sql
        );
        let mut st = r.prepare_cached(&sql)?;
        let n = by.len().max(1);
        let rows = st.query_map(cond.bind().as_slice(), |row| {
            let mut key = Vec::with_capacity(by.len());
            for i in 0..by.len() {
                key.push(row.get::<_, Option<String>>(i)?);
            }
            Ok((key, u64::try_from(row.get::<_, i64>(n)?).unwrap_or(0)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Lists count up to `n` matches instead of [`LIST_COUNT_LIMIT`] (for
    /// tests of long lists on short logs).
    pub fn with_list_limit(mut self, n: u64) -> Index {
        self.list_limit = n;
        self
    }

    /// The number of matches (counted up to [`LIST_COUNT_LIMIT`]) and the
    /// filter's page of them, newest first.
    pub fn page(&self, filter: &Filter) -> Result<(Total, Vec<Summary>), IndexError> {
        let total = self.count(filter, Some(self.list_limit))?;
        let skip = (filter.page.max(1) - 1).saturating_mul(filter.per_page);
        let shown = self.matches(filter, skip, filter.per_page)?;
        Ok((total, shown))
    }

    /// When the statuses in lists were last brought up to date.
    pub fn ticked_at(&self) -> Result<DateTime<Utc>, IndexError> {
        let t = ticked(&*self.reader()?)?;
        Ok(DateTime::from_timestamp(t, 0).unwrap_or_default())
    }

    /// Brings the statuses lists filter on up to `now`: the entries whose
    /// sealed-until or ratification deadline lies between the last tick and
    /// `now` get their statuses again. Time may also go back (tests, a
    /// clock set back): the same entries are read either way.
    pub fn tick(&self, now: DateTime<Utc>) -> Result<(), IndexError> {
        let now = now.timestamp();
        let mut w = lock(&self.writer);
        let last = ticked(&w.conn)?;
        if last == now {
            return Ok(());
        }
        let (lo, hi) = (last.min(now), last.max(now));
        let tx = w.conn.transaction()?;
        let moved: Vec<i64> = {
            let mut st = tx.prepare_cached(
                "SELECT idx FROM entries WHERE sealed_in_force BETWEEN ?1 AND ?2 \
                 UNION SELECT idx FROM entries WHERE ratify_by BETWEEN ?1 AND ?2",
            )?;
            let rows = st.query_map([lo, hi], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'tick'", [now])?;
        for idx in moved {
            restatus(&tx, idx, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Names to offer in the filters' drop-downs.
    pub fn choices(&self) -> Result<crate::pages::Choices, IndexError> {
        let r = self.reader()?;
        let names = |field: &str| -> Result<Vec<String>, IndexError> {
            let mut st =
                r.prepare_cached("SELECT value FROM names WHERE field = ?1 ORDER BY value")?;
            let rows = st.query_map([field], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok(crate::pages::Choices {
            agencies: names("agency")?,
            jurisdictions: names("jurisdiction")?,
            providers: names("provider")?,
        })
    }

    /// The overview's statistics (statuses as of the last tick).
    pub fn stats(&self) -> Result<HomeStats, IndexError> {
        let r = self.reader()?;
        // Entries per kind and month, kept as they are indexed.
        let monthly: Vec<(Kind, i64, u64)> =
            counters::<String, i64>(&r, "SELECT kind, month, n FROM monthly")?
                .into_iter()
                .filter_map(|(k, m, n)| Some((k.parse::<Kind>().ok()?, m, n)))
                .collect();
        // Months from the first to the last entry, at most the last 36.
        let (first, last) = monthly
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), (_, m, _)| {
                (lo.min(*m), hi.max(*m))
            });
        let first = first.max(last.saturating_sub(35));
        let months: Vec<String> = (first..=last)
            .map(|k| format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1))
            .collect();
        let col = |m: i64| -> Option<usize> {
            (first..=last)
                .contains(&m)
                .then(|| usize::try_from(m - first).ok())
                .flatten()
        };
        let kind_pos = |k: Kind| Kind::ALL.iter().position(|&x| x == k).unwrap_or(0);
        let mut totals: Vec<(Kind, u64)> = Kind::ALL.iter().map(|&k| (k, 0)).collect();
        let mut per_month: Vec<(Kind, Vec<u64>)> = Kind::ALL
            .iter()
            .map(|&k| (k, vec![0; months.len()]))
            .collect();
        let mut share: Vec<(u64, u64)> = vec![(0, 0); months.len()];
        for &(k, m, n) in &monthly {
            totals[kind_pos(k)].1 += n;
            if let Some(c) = col(m) {
                per_month[kind_pos(k)].1[c] += n;
                match k {
                    Kind::Emergency => {
                        share[c].0 += n;
                        share[c].1 += n;
                    }
                    Kind::Request => share[c].1 += n,
                    _ => {}
                }
            }
        }
        let mut per_agency: Vec<(String, u64)> = {
            let mut st = r.prepare_cached("SELECT signer, n FROM per_agency")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut v = Vec::new();
            for row in rows {
                let (s, n) = row?;
                v.push((s, u64::try_from(n).unwrap_or(0)));
            }
            v
        };
        per_agency.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // Authorisations' statuses per month, kept with the memberships
        // (as of the last tick, like the lists).
        let per_status: HashMap<(i64, i64), u64> =
            counters::<i64, i64>(&r, "SELECT month, status, n FROM monthly_status")?
                .into_iter()
                .map(|(m, code, n)| ((m, code), n))
                .collect();
        let of = |st: Status| -> u64 {
            per_status
                .iter()
                .filter(|((_, c), _)| *c == status_code(st))
                .map(|(_, n)| n)
                .sum()
        };
        let in_month =
            |m: i64, st: Status| per_status.get(&(m, status_code(st))).copied().unwrap_or(0);
        let mut disclosure: [Vec<u64>; 3] = std::array::from_fn(|_| vec![0; months.len()]);
        let mut with_release: [Vec<u64>; 2] = std::array::from_fn(|_| vec![0; months.len()]);
        for (c, m) in (first..=last).enumerate() {
            let all =
                per_month[kind_pos(Kind::Request)].1[c] + per_month[kind_pos(Kind::Emergency)].1[c];
            let disclosed = in_month(m, Status::Disclosed);
            let overdue = in_month(m, Status::Overdue);
            let released = in_month(m, Status::Released);
            // Disclosed and overdue exclude each other; the rest are sealed.
            disclosure[0][c] = disclosed;
            disclosure[1][c] = overdue;
            disclosure[2][c] = all.saturating_sub(disclosed + overdue);
            with_release[0][c] = released;
            with_release[1][c] = all.saturating_sub(released);
        }
        let overdue = of(Status::Overdue);
        let unratified = of(Status::Unratified);
        let released = of(Status::Released);
        let auths = totals[kind_pos(Kind::Request)].1 + totals[kind_pos(Kind::Emergency)].1;
        let releases = totals[kind_pos(Kind::Release)].1;
        drop(r);
        // The headline counts the going-dark page's lists, with the same count.
        let (reported, prevented) = crate::going_dark::headline_metrics();
        let outcomes_reported = self.count(&reported.filter(None, None), None)?.n;
        let outcomes_prevented = self.count(&prevented.filter(None, None), None)?.n;
        Ok(HomeStats {
            totals,
            months,
            per_month,
            emergency_share: share
                .into_iter()
                .map(|(e, a)| (a > 0).then_some((e, a)))
                .collect(),
            per_agency,
            disclosure,
            with_release,
            overdue,
            unratified,
            authorisations: auths,
            released,
            releases,
            outcomes_reported,
            outcomes_prevented,
        })
    }
}

/// Rows of a counter table: two keys and a count.
fn counters<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
) -> rusqlite::Result<Vec<(A, B, u64)>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        ))
    })?;
    rows.collect()
}

/// Writes one entry's row, and what it says about the entries it refers to.
fn add(tx: &rusqlite::Transaction<'_>, s: &Summary, tick: i64) -> rusqlite::Result<()> {
    let idx = i64::try_from(s.index).unwrap_or(i64::MAX);
    let secs = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp());
    let month = s.created.map(month_key);
    let refs: Vec<String> = s.references.iter().map(u64::to_string).collect();
    let categories = s.categories.iter().fold(0, |m, c| m | category_bit(c));
    // An outcome report and a refusal are about the authorisation they
    // name first: they are counted in that authorisation's jurisdiction (a
    // refusal also under the agency that asked), and an outcome report
    // replaces the earlier reports on it.
    let about = s
        .references
        .first()
        .copied()
        .filter(|_| s.outcome.is_some() || s.reason.is_some())
        .and_then(|t| i64::try_from(t).ok())
        .filter(|&t| t < idx);
    let reported_on = about.filter(|_| s.outcome.is_some());
    let (jurisdiction, request_agency) = match about {
        Some(t) => tx
            .prepare_cached(
                "SELECT jurisdiction, signer FROM entries WHERE idx = ?1 AND kind IN ('request', 'emergency')",
            )?
            .query_row([t], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
            .map_or((None, None), |(j, a)| (j, Some(a))),
        None => (s.jurisdiction.clone(), None),
    };
    let request_agency = request_agency.filter(|_| s.reason.is_some());
    if let Some(t) = reported_on {
        tx.prepare_cached(
            "UPDATE entries SET outcome = outcome & ~?1 WHERE kind = 'outcome' \
             AND idx IN (SELECT source FROM refs WHERE target = ?2)",
        )?
        .execute([outcome_bits::LATEST, t])?;
    }
    tx.prepare_cached(
        "INSERT INTO entries(idx, kind, created, day, month, signer, jurisdiction, country, \
         legal_basis, legal_lower, provider, categories, sealed_until, sealed_in_force, ratify_by, \
         decision, flags, refs, leaf_hash, outcome, reason, request_agency, policy) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 0, ?17, ?18, ?19, \
         ?20, ?21, ?22)",
    )?
    .execute(params![
        idx,
        s.kind.map(Kind::as_str),
        secs(s.created),
        s.created.map(|c| epoch_day(c.date_naive())),
        month,
        s.signer,
        jurisdiction,
        jurisdiction
            .as_deref()
            .map(|j| j.split('-').next().unwrap_or(j)),
        s.legal_basis,
        s.legal_basis.as_deref().map(str::to_lowercase),
        s.provider,
        categories,
        secs(s.sealed_until),
        secs(s.sealed_in_force),
        secs(s.ratify_by),
        s.decision.map(Decision::as_str),
        refs.join(";"),
        s.leaf_hash,
        s.outcome.map(OutcomeFacts::bits),
        s.reason.map(RefusalReason::as_str),
        request_agency,
        (s.kind == Some(Kind::Policy)).then(|| s.policy.join("\n")),
    ])?;
    if let (Some(kind), Some(month)) = (s.kind, month) {
        tx.prepare_cached(
            "INSERT INTO monthly(kind, month, n) VALUES (?1, ?2, 1) \
             ON CONFLICT(kind, month) DO UPDATE SET n = n + 1",
        )?
        .execute(params![kind.as_str(), month])?;
    }
    let mut name =
        tx.prepare_cached("INSERT OR IGNORE INTO names(field, value) VALUES (?1, ?2)")?;
    if s.is_authorisation() {
        tx.prepare_cached(
            "INSERT INTO per_agency(signer, n) VALUES (?1, 1) \
             ON CONFLICT(signer) DO UPDATE SET n = n + 1",
        )?
        .execute([&s.signer])?;
        name.execute(["agency", &s.signer])?;
    }
    if let Some(j) = &s.jurisdiction {
        name.execute(["jurisdiction", j])?;
        name.execute(["jurisdiction", j.split('-').next().unwrap_or(j)])?;
    }
    if let Some(p) = &s.provider {
        name.execute(["provider", p])?;
    }
    let bit = flags::of(s.kind, s.decision);
    let extends = (s.kind == Some(Kind::Extension))
        .then(|| secs(s.sealed_until))
        .flatten();
    for &r in &s.references {
        // Only earlier entries: a record cannot speak about itself or the future.
        let Some(target) = i64::try_from(r).ok().filter(|&t| t < idx) else {
            continue;
        };
        tx.prepare_cached("INSERT OR IGNORE INTO refs(target, source) VALUES (?1, ?2)")?
            .execute([target, idx])?;
        if bit != 0 {
            tx.prepare_cached("UPDATE entries SET flags = flags | ?1 WHERE idx = ?2")?
                .execute(params![bit, target])?;
        }
        if let Some(until) = extends {
            tx.prepare_cached(
                "UPDATE entries SET sealed_in_force = max(sealed_in_force, ?1) \
                 WHERE idx = ?2 AND sealed_in_force IS NOT NULL",
            )?
            .execute([until, target])?;
        }
        if bit != 0 || extends.is_some() {
            restatus(tx, target, tick)?;
        }
    }
    if s.is_authorisation() {
        restatus(tx, idx, tick)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_masks_round_trip() {
        let all: Vec<&str> = DataCategory::ALL.iter().map(|c| c.as_str()).collect();
        let mask = all.iter().fold(0, |m, c| m | category_bit(c));
        assert_eq!(categories_of(mask), all);
        assert_eq!(category_bit("nonsense"), 0);
        assert!(categories_of(0).is_empty());
    }

    #[test]
    fn epoch_days() {
        assert_eq!(epoch_day(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
        assert_eq!(
            epoch_day(NaiveDate::from_ymd_opt(2024, 1, 10).unwrap()),
            19_732
        );
    }
}
