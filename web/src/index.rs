//! The web view's query index: the log's ledger ([`daylight_ledger`]), in
//! a SQLite file beside the log, kept up to date as the log grows. Lists,
//! filters, counts and the overview's statistics are SQL over the
//! ledger's tables, so the server's memory stays flat however long the log
//! grows, and a restart reads only the entries added since the last run.
//!
//! What an entry says, which of its references are valid, and the
//! statuses (computed by the one status function, [`Facts::statuses`],
//! when an entry is added, when a later entry speaks of it, and when a
//! tick passes its dates) are the ledger's: the same code as the
//! auditor's. This module writes through a [`Ledger`] and reads its tables
//! with its own read-only connections.
//!
//! The file is derived data: if it does not match the log (another
//! origin, a different leaf hash at its last entry, more entries than the
//! log has), it is emptied and rebuilt from the log; a damaged file is
//! deleted and made again (by [`Ledger::open`]).
//!
//! [`Facts::statuses`]: crate::status::Facts::statuses

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use daylight_core::LeafIndex;
use daylight_ledger::store::{
    day_span, open_conn, size_of, status_bit, status_code, summary_of_row, ticked, DaySpan,
    SUMMARY_COLUMNS,
};
use daylight_ledger::summary::{category_bit, epoch_day, outcome_bits};
use daylight_ledger::{Ledger, LedgerError, Prepared};
use daylight_log_server::admitted::Admitted;
use daylight_log_server::store::{LogStore, StoreError};
use daylight_schemas::Kind;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _};

use crate::filter::{Encryption, Filter, Releaser};
use crate::pages::HomeStats;
use crate::status::Status;

pub use daylight_ledger::{OutcomeFacts, Summary};

/// Entries read from the log and written per transaction while catching up.
const CHUNK: u64 = 2048;

/// Entries to catch up with (and more than the index holds) from which the
/// indexes adding entries does not read are left out until the index has
/// caught up ([`Ledger::defer_indexes`]): making them once then costs less
/// than keeping them up to date entry by entry, and packs them.
const BULK_MIN: u64 = 100_000;

/// Chunks written per transaction while the list indexes are left out (a
/// bulk load): 65,536 entries, well under a second. Each commit writes the
/// pages it changed to the WAL, the tables' and indexes' last pages among
/// them again and again: at 1M entries, 32 chunks instead of 8 took the
/// system time of `bench web-index` from 2.5-2.9 s to 1.8-1.9 s. Their new
/// pages (about 27 MB) still fit in the bulk load's page cache.
const BULK_TX_CHUNKS: usize = 32;

/// The most rows an export returns (the newest matches).
pub const EXPORT_LIMIT: usize = 100_000;

/// Lists count their matches up to this many; past it they say "more than".
pub const LIST_COUNT_LIMIT: u64 = 1_000;

/// Counts remembered per filter.
const COUNT_CACHE_SIZE: usize = 256;

/// Why the index could not answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the index's database failed.
    #[error("web index database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The ledger could not be opened or written.
    #[error("web index: {0}")]
    Ledger(#[from] LedgerError),
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
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
    ledger: Ledger,
    /// Whether the index was checked against the log since it was opened.
    checked: bool,
    /// Entries the last round read and parsed but had no time to add, in
    /// order: the next round starts with them.
    ahead: VecDeque<Vec<Prepared>>,
}

struct CachedCount {
    indexed: u64,
    total: Total,
    /// The plan that won the count from the first entry, where it tells
    /// which plan reads the rows fastest (see [`Index::page`]).
    winner: Option<usize>,
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
    /// How status lists with another indexed term are read.
    status_walk: StatusWalk,
    /// How legal-basis lists are read.
    legal_walk: LegalWalk,
    /// A raced plan's first budget, in SQLite steps.
    race_budget: u64,
    /// Entries to catch up with from which the list indexes wait
    /// ([`BULK_MIN`]).
    bulk_min: u64,
    /// Records the log server's admission parsed, taken instead of
    /// parsing each entry again.
    admitted: Option<Arc<Admitted>>,
    /// When the last catch-up that reached the log's size started reading
    /// it: every entry the log had then is in the index.
    caught_up: Mutex<Option<Instant>>,
}

/// A filter as SQL: what to read from, the condition, and its parameters.
#[derive(Clone)]
struct Condition {
    /// `entries`, or for a status read from its members ([`Statuses`]),
    /// its members joined to `entries`.
    from: &'static str,
    /// The column that orders entries (`idx`, or the members' `entry`).
    order: &'static str,
    sql: String,
    params: Vec<(&'static str, Value)>,
    /// Parameters named at run time (a legal-basis list's values).
    listed: Vec<(String, Value)>,
    /// Whether a capped count takes the newest matches (see
    /// [`Condition::count_sql`]).
    count_newest: bool,
}

/// A status filter reads its members, newest first, and looks each entry
/// up: as fast for an old status ("overdue") as for a new one.
const STATUS_FROM: &str = "status_members CROSS JOIN entries ON idx = entry";

/// A date range is read as the span of indexes its days' entries take
/// (`idx BETWEEN lo AND hi`) when that span is at most this many times as
/// long as their number (see [`Condition::dates`]).
const DENSE_SPAN: u64 = 4;

/// How a status list is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusWalk {
    /// Both ways below, raced (see [`race`]): the first to finish answers.
    #[default]
    Race,
    /// From the status's members ([`STATUS_FROM`]), newest first.
    Members,
    /// From the entries (an index of another term), the status compared
    /// row by row in the entries' bits.
    Bits,
}

/// How a legal-basis list is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LegalWalk {
    /// Both ways below, raced (see [`race`]): the first to finish answers.
    #[default]
    Race,
    /// Every entry newest first, the words looked for in each one's legal
    /// basis.
    Scan,
    /// The legal bases that contain the words, found among the distinct
    /// ones, each read from its index (or [`LegalWalk::Scan`] where there
    /// are too many of them or no index yet).
    Values,
}

/// How one condition reads a legal basis.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Legal {
    /// The words looked for in every entry's legal basis.
    Scan,
    /// One of these legal bases (lower case), each containing the words.
    Values(Vec<String>),
}

/// The most distinct legal bases [`legal_values`] reads before it leaves a
/// list to [`Legal::Scan`]: each is one step down the index, a few
/// microseconds, taken outside a race's budget.
const LEGAL_DISTINCT_MAX: usize = 1_024;
/// The most legal bases a [`Legal::Values`] condition names: past them
/// the words are common enough that the scan meets matches early.
const LEGAL_VALUES_MAX: usize = 64;

/// The distinct legal bases (lower case) that contain `words` (lower case),
/// read down the `entries_legal` index one value at a time; `None` where
/// that index is not there yet (a bulk load makes it at the end) or the
/// log has more than [`LEGAL_DISTINCT_MAX`] distinct legal bases or more
/// than [`LEGAL_VALUES_MAX`] contain the words.
fn legal_values(conn: &Connection, words: &str) -> Result<Option<Vec<String>>, IndexError> {
    // One read transaction: the index a bulk load drops cannot go between
    // the check and the last step.
    let conn = conn.unchecked_transaction()?;
    let indexed: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'entries_legal'",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    if indexed.is_none() {
        return Ok(None);
    }
    let mut first = conn.prepare_cached(
        "SELECT legal_lower FROM entries INDEXED BY entries_legal \
         WHERE legal_lower >= '' ORDER BY legal_lower LIMIT 1",
    )?;
    let mut next = conn.prepare_cached(
        "SELECT legal_lower FROM entries INDEXED BY entries_legal \
         WHERE legal_lower > ?1 ORDER BY legal_lower LIMIT 1",
    )?;
    let mut value: Option<String> = first.query_row([], |r| r.get(0)).optional()?;
    let mut found = Vec::new();
    let mut seen = 0;
    while let Some(v) = value {
        seen += 1;
        if seen > LEGAL_DISTINCT_MAX {
            return Ok(None);
        }
        if v.contains(words) {
            if found.len() == LEGAL_VALUES_MAX {
                return Ok(None);
            }
            found.push(v.clone());
        }
        value = next.query_row([&v], |r| r.get(0)).optional()?;
    }
    Ok(Some(found))
}

/// How one condition reads a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Statuses {
    /// From its members ([`STATUS_FROM`]), newest first.
    Members,
    /// From the entries, the status compared in their bits.
    Bits,
}

/// SQLite steps between two looks at a raced plan's budget.
const RACE_CHECK_STEPS: i32 = 1_000;
/// A raced plan's budget in its first round, in SQLite steps (about 5 ms
/// of a 10M-entry index's rows at most, measured); each round gives four
/// times the one before.
const RACE_FIRST_BUDGET: u64 = 20_000;
/// Rounds with a budget (the last: about 330M steps, over a minute);
/// after them the plan tried first runs to its end.
const RACE_ROUNDS: u32 = 8;

/// How a condition reads a date range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dates {
    /// From the day index: every entry of the range, sorted by index.
    ByDay,
    /// As a span of indexes in log order, the day compared row by row.
    Span(DaySpan),
}

impl Condition {
    /// How `f`'s date range is read from the index read by `conn`: that
    /// depends on how its entries lie in the log. Records are logged
    /// about when they are made, so a range's entries mostly fill one span
    /// of indexes: a page then walks back from the span's end and stops at
    /// its last match, where the day index would give every match of the
    /// range to sort (a half-year of a 10M log: over a million). Where the
    /// entries lie spread thin over the log (old records logged late), the
    /// day index reads fewer rows.
    fn dates(conn: &Connection, f: &Filter) -> Result<Dates, IndexError> {
        let dates = if f.from.is_some() || f.to.is_some() {
            let (from, to) = (f.from.map(epoch_day), f.to.map(epoch_day));
            match day_span(conn, from, to)? {
                Some(span)
                    if span.hi.saturating_sub(span.lo).saturating_add(1)
                        <= span.entries.saturating_mul(DENSE_SPAN) =>
                {
                    Dates::Span(span)
                }
                _ => Dates::ByDay,
            }
        } else {
            Dates::ByDay
        };
        Ok(dates)
    }

    /// `f` as SQL over the index read by `conn` (see [`Condition::dates`]),
    /// a status read from its members.
    fn read(conn: &Connection, f: &Filter) -> Result<Condition, IndexError> {
        Ok(Condition::of(
            f,
            Condition::dates(conn, f)?,
            Statuses::Members,
            &Legal::Scan,
        ))
    }

    /// The ways to read `f` that `walk` allows, the members' walk first. A
    /// status list walks its members newest first and stops at its last
    /// match: cheap while most of them pass the other terms, but with a
    /// provider, an agency or a jurisdiction that the newest members lack
    /// (a run of another provider's entries) it walks every one of those.
    /// That column's index then walks only its own entries, but it is as
    /// slow where its newest entries lack the status (old statuses such as
    /// "overdue"). Which is cheaper depends on how the log's entries lie,
    /// so both are raced.
    ///
    /// A legal-basis list is raced the same way: walking every entry
    /// newest first for the words is cheap while the newest entries name
    /// them, and walks past all the others where they do not (a run of
    /// another agency's requests); the legal bases that contain the words
    /// are few, and each one's index reads only its own entries, but all
    /// of them are sorted where several match.
    fn plans(
        conn: &Connection,
        f: &Filter,
        walk: StatusWalk,
        legal_walk: LegalWalk,
    ) -> Result<Vec<Condition>, IndexError> {
        let dates = Condition::dates(conn, f)?;
        let legal = match (&f.legal_basis, legal_walk) {
            (None, _) | (Some(_), LegalWalk::Scan) => vec![Legal::Scan],
            (Some(words), w) => match legal_values(conn, &words.to_lowercase())? {
                None => vec![Legal::Scan],
                Some(values) if w == LegalWalk::Values => vec![Legal::Values(values)],
                Some(values) => vec![Legal::Values(values), Legal::Scan],
            },
        };
        let indexed = f.provider.is_some() || f.agency.is_some() || f.jurisdiction.is_some();
        let ways: &[Statuses] = match walk {
            _ if f.status.is_none() || !indexed => &[Statuses::Members],
            StatusWalk::Race => &[Statuses::Members, Statuses::Bits],
            StatusWalk::Members => &[Statuses::Members],
            StatusWalk::Bits => &[Statuses::Bits],
        };
        Ok(legal
            .iter()
            .flat_map(|l| ways.iter().map(move |&w| Condition::of(f, dates, w, l)))
            .collect())
    }

    fn of(f: &Filter, dates: Dates, statuses: Statuses, legal: &Legal) -> Condition {
        let mut terms: Vec<String> = Vec::new();
        let mut params: Vec<(&'static str, Value)> = Vec::new();
        let mut listed: Vec<(String, Value)> = Vec::new();
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
            match legal {
                Legal::Scan => {
                    terms.push("instr(legal_lower, :legal) > 0".into());
                    params.push((":legal", text(&l.to_lowercase())));
                }
                Legal::Values(values) => {
                    let names: Vec<String> =
                        (0..values.len()).map(|i| format!(":legal{i}")).collect();
                    terms.push(format!("legal_lower IN ({})", names.join(", ")));
                    listed.extend(names.into_iter().zip(values.iter().map(|v| text(v))));
                }
            }
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
        // `+day` keeps SQLite from reading the range from the day index.
        let day = match dates {
            Dates::ByDay => "day",
            Dates::Span(span) => {
                terms.push("idx BETWEEN :lo AND :hi".into());
                params.push((
                    ":lo",
                    Value::Integer(i64::try_from(span.lo).unwrap_or(i64::MAX)),
                ));
                params.push((
                    ":hi",
                    Value::Integer(i64::try_from(span.hi).unwrap_or(i64::MAX)),
                ));
                "+day"
            }
        };
        if let Some(d) = f.from {
            terms.push(format!("{day} >= :from"));
            params.push((":from", Value::Integer(epoch_day(d))));
        }
        if let Some(d) = f.to {
            terms.push(format!("{day} <= :to"));
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
        // Who released: the share columns are set for custodians' shares
        // only, so a provider's release is a release without them.
        match f.release {
            Some(Releaser::Provider) => terms.push("kind = 'release' AND share_key IS NULL".into()),
            Some(Releaser::Custodian) => {
                terms.push("kind = 'release' AND share_key IS NOT NULL".into())
            }
            None => {}
        }
        let (from, order) = match (f.status, statuses) {
            (Some(st), Statuses::Members) => {
                terms.push("status = :status".into());
                params.push((":status", Value::Integer(status_code(st))));
                (STATUS_FROM, "entry")
            }
            (Some(st), Statuses::Bits) => {
                terms.push("statuses & :status_bit != 0".into());
                params.push((":status_bit", Value::Integer(status_bit(st))));
                ("entries", "idx")
            }
            (None, _) => ("entries", "idx"),
        };
        let sql = if terms.is_empty() {
            "1".to_owned()
        } else {
            terms.join(" AND ")
        };
        // A span is read in log order unless a term of several values
        // (kinds, legal bases) takes its own index, whose rows would then
        // be sorted (see `Condition::count_sql`).
        let count_newest = f.status.is_some()
            || (matches!(dates, Dates::Span(_)) && f.kinds.len() <= 1 && listed.len() <= 1);
        Condition {
            from,
            order,
            sql,
            params,
            listed,
            count_newest,
        }
    }

    /// Counts the matches from index `:start` on, up to `:limit` of them.
    /// Which ones a capped count takes does not change its answer, but it
    /// does its cost. Where the condition reads entries in log order
    /// without a sort (a status, from its members or from another term's
    /// index; a date range as a span of indexes, without a term of several
    /// values), the count takes the newest first, as its page does, so
    /// that it costs what the page's rows cost, and the plan that wins a
    /// page's count is most likely the one that wins its rows. Matches do
    /// not lie evenly: the newest members of a status may be a run of
    /// another provider's entries, and a span's oldest end may hold only a
    /// few entries of its days (follow-ups dated long after the records
    /// logged beside them), which a count from that end walked past by the
    /// million. Other counts take whatever order their index gives: a legal
    /// basis's several values, or a range of days read by day, would be
    /// sorted first.
    fn count_sql(&self) -> String {
        let newest = if self.count_newest {
            format!(" ORDER BY {} DESC", self.order)
        } else {
            String::new()
        };
        format!(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} >= :start AND {}{newest} LIMIT :limit)",
            self.from, self.order, self.sql
        )
    }

    /// A page of the matches of a condition read from `entries` (no status,
    /// or a status compared in the entries' bits) (`:limit`
    /// after `:skip`, newest first): the page's indexes first, from an
    /// index that covers the condition where there is one (a date range
    /// read by day sorts its matches' indexes, not their rows), then only
    /// those rows.
    fn page_sql(&self) -> String {
        format!(
            "SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx IN \
             (SELECT idx FROM entries WHERE {} ORDER BY idx DESC LIMIT :limit OFFSET :skip) \
             ORDER BY idx DESC",
            self.sql
        )
    }

    fn bind(&self) -> Vec<(&str, &dyn rusqlite::ToSql)> {
        self.params
            .iter()
            .map(|(k, v)| (*k, v as &dyn rusqlite::ToSql))
            .chain(
                self.listed
                    .iter()
                    .map(|(k, v)| (k.as_str(), v as &dyn rusqlite::ToSql)),
            )
            .collect()
    }
}

/// Runs `run` with each of `plans` in turn (`first`, where given, before
/// the others), each stopped once it has taken its round's budget of
/// SQLite steps, until one finishes; each round gives four times the
/// budget of the one before, and after [`RACE_ROUNDS`] the plan tried
/// first runs to its end. So the answer costs a small multiple of what the
/// cheapest plan costs, whichever that is: the planner cannot know, since
/// it depends on how the matches lie in the log. Answers with the place in
/// `plans` of the plan that finished.
fn race<T>(
    conn: &Connection,
    plans: &[Condition],
    first_budget: u64,
    first: Option<usize>,
    mut run: impl FnMut(&Condition) -> Result<T, IndexError>,
) -> Result<(T, usize), IndexError> {
    let lead = first.filter(|&i| i < plans.len()).unwrap_or(0);
    let Some(lead_plan) = plans.get(lead) else {
        return Err(IndexError::Db(rusqlite::Error::InvalidQuery));
    };
    if plans.len() == 1 {
        return Ok((run(lead_plan)?, lead));
    }
    let order: Vec<usize> = std::iter::once(lead)
        .chain((0..plans.len()).filter(|&i| i != lead))
        .collect();
    /// Clears the budget when dropped, so a pooled connection never keeps it.
    struct Budget<'a>(&'a Connection);
    impl Drop for Budget<'_> {
        fn drop(&mut self) {
            self.0
                .progress_handler(RACE_CHECK_STEPS, None::<fn() -> bool>);
        }
    }
    let mut budget = first_budget.max(1);
    for _ in 0..RACE_ROUNDS {
        for &i in &order {
            let looks = budget
                .div_ceil(RACE_CHECK_STEPS.unsigned_abs().into())
                .max(1);
            let mut seen = 0u64;
            let guard = Budget(conn);
            conn.progress_handler(
                RACE_CHECK_STEPS,
                Some(move || {
                    seen += 1;
                    seen >= looks
                }),
            );
            let result = run(&plans[i]);
            drop(guard);
            match result {
                Err(IndexError::Db(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::OperationInterrupted => {}
                done => return Ok((done?, i)),
            }
        }
        budget = budget.saturating_mul(4);
    }
    Ok((run(lead_plan)?, lead))
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
    let ours: Option<Vec<u8>> = conn
        .query_row(
            "SELECT leaf_hash FROM entries WHERE idx = ?1",
            [i64::try_from(last).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .optional()?;
    let theirs = store.entry(LeafIndex(last))?.map(|e| e.leaf_hash);
    Ok(match (ours, theirs) {
        (Some(ours), Some(theirs)) => ours.as_slice() == theirs.0.as_slice(),
        _ => false,
    })
}

/// Reads and parses entries `from..size` of `store` in chunks (taking a
/// record `admitted` holds for an entry's exact bytes instead of parsing
/// them), sending each to `tx`, until `stop` (a chunk stopped short is sent
/// as it is).
fn read_ahead(
    store: &dyn LogStore,
    admitted: Option<&Admitted>,
    from: u64,
    size: u64,
    tx: &SyncSender<Result<Vec<Prepared>, IndexError>>,
    stop: &AtomicBool,
) {
    let mut next = from;
    while next < size && !stop.load(Ordering::Relaxed) {
        let entries = match store.entries(LeafIndex(next), CHUNK.min(size - next)) {
            Ok(e) if !e.is_empty() => e,
            Ok(_) => return,
            Err(e) => {
                let _ = tx.send(Err(e.into()));
                return;
            }
        };
        let mut chunk = Vec::with_capacity(entries.len());
        for e in &entries {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let record = match admitted {
                Some(a) => a.record_of(&e.data, &e.leaf_hash),
                None => daylight_schemas::SignedRecord::parse(&e.data).ok(),
            };
            chunk.push(Prepared::new(
                e.index.get(),
                &e.data,
                e.leaf_hash,
                record.as_ref(),
            ));
        }
        next = chunk.last().map_or(next, |p| p.index() + 1);
        if chunk.is_empty() || tx.send(Ok(chunk)).is_err() {
            return;
        }
    }
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
    /// Opens (or creates) the index at `path` for the log with this origin
    /// ([`Ledger::open`]: an index of another schema version or another log
    /// is emptied; a file SQLite cannot use is deleted and made again,
    /// since everything in it can be read from the log).
    pub fn open(path: &Path, origin: &str) -> Result<Index, IndexError> {
        let ledger = Ledger::open(path, origin)?;
        Ok(Index {
            path: ledger.path().to_owned(),
            writer: Mutex::new(Writer {
                ledger,
                checked: false,
                ahead: VecDeque::new(),
            }),
            readers: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            list_limit: LIST_COUNT_LIMIT,
            status_walk: StatusWalk::Race,
            legal_walk: LegalWalk::Race,
            race_budget: RACE_FIRST_BUDGET,
            bulk_min: BULK_MIN,
            admitted: None,
            caught_up: Mutex::new(None),
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
    /// about `budget`, and says how far it got. A thread reads and parses
    /// the log's entries while this one adds them, so that the two overlap.
    pub fn catch_up(&self, store: &dyn LogStore, budget: Duration) -> Result<Coverage, IndexError> {
        let started = Instant::now();
        let mut guard = lock(&self.writer);
        let w = &mut *guard;
        let read_at = Instant::now();
        let size = store.size()?.get();
        let mut done = w.ledger.size()?;
        if !w.checked {
            if !matches_log(w.ledger.conn(), store, done, size)? {
                tracing::warn!("web index does not match the log: rebuilding it");
                w.ledger.clear()?;
                lock(&self.counts).clear();
                done = 0;
            }
            w.checked = true;
        }
        // Read ahead for other entries than the next (the index was
        // rebuilt, or a round failed half way): read again.
        let next_ahead = w.ahead.front().and_then(|c| c.first()).map(Prepared::index);
        if next_ahead.is_some_and(|i| i != done) {
            w.ahead.clear();
        }
        let gap = size.saturating_sub(done);
        if gap >= self.bulk_min && gap > done && !w.ledger.indexes_deferred()? {
            tracing::info!("web index: reading {gap} entries, its list indexes made after");
            w.ledger.defer_indexes()?;
        }
        let bulk = w.ledger.indexes_deferred()?;
        if done < size && started.elapsed() < budget {
            let from = w
                .ahead
                .back()
                .and_then(|c| c.last())
                .map_or(done, |p| p.index() + 1);
            let stop = AtomicBool::new(false);
            done = std::thread::scope(|scope| {
                let (tx, rx) = sync_channel(1);
                let stop = &stop;
                let admitted = self.admitted.as_deref();
                scope.spawn(move || read_ahead(store, admitted, from, size, &tx, stop));
                // A bulk load commits less often: each commit writes the
                // pages it changed (the tables' last pages again and again)
                // to the WAL.
                let per_tx = if bulk { BULK_TX_CHUNKS } else { 1 };
                let mut add = || -> Result<(), IndexError> {
                    while done < size && started.elapsed() < budget {
                        let mut batch = w.ledger.batch()?;
                        let mut added = None;
                        for _ in 0..per_tx {
                            let chunk = match w.ahead.pop_front() {
                                Some(c) => c,
                                None => match rx.recv() {
                                    Ok(c) => c?,
                                    Err(_) => break,
                                },
                            };
                            let Some(last) = chunk.last().map(Prepared::index) else {
                                continue;
                            };
                            for p in chunk {
                                // References that name no earlier entry with
                                // their leaf hash are not followed; the
                                // auditor reports them.
                                batch.add_prepared(p)?;
                            }
                            added = Some(last);
                            if last + 1 >= size || started.elapsed() >= budget {
                                break;
                            }
                        }
                        let Some(last) = added else { break };
                        batch.commit()?;
                        done = last + 1;
                    }
                    Ok(())
                };
                let added = add();
                // The reader stops at its next entry; what it read is kept
                // for the next round.
                stop.store(true, Ordering::Relaxed);
                for chunk in rx.into_iter().flatten() {
                    w.ahead.push_back(chunk);
                }
                added.map(|()| done)
            })?;
        }
        if done >= size && bulk {
            let t = Instant::now();
            w.ledger.make_indexes()?;
            tracing::info!("web index: list indexes made in {:?}", t.elapsed());
        }
        if done >= size {
            // Under the writer's lock: rounds end in the order they read.
            *lock(&self.caught_up) = Some(read_at);
        }
        Ok(Coverage {
            indexed: done,
            size,
        })
    }

    /// Whether every entry the log had at some moment less than `age` ago
    /// is in the index (a catch-up that read the log's size then reached
    /// it): what it lacks now was added to the log since.
    pub fn caught_up_within(&self, age: Duration) -> bool {
        lock(&self.caught_up).is_some_and(|t| t.elapsed() < age)
    }

    /// How far the index has read, without reading more.
    pub fn coverage(&self, store: &dyn LogStore) -> Result<Coverage, IndexError> {
        Ok(Coverage {
            indexed: size_of(&*self.reader()?)?,
            size: store.size()?.get(),
        })
    }

    /// The entry at `index`, if indexed.
    pub fn get(&self, index: u64) -> Result<Option<Summary>, IndexError> {
        let Ok(i) = i64::try_from(index) else {
            return Ok(None);
        };
        let r = self.reader()?;
        let mut st = r.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx = ?1"
        ))?;
        Ok(st.query_row([i], summary_of_row).optional()?)
    }

    /// The later entries that refer to `index` with a valid reference (the
    /// leaf hash of `index`), in order.
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
        Ok(self.count_raced(filter, limit)?.0)
    }

    /// [`Index::count`], and the place among the filter's plans of the one
    /// that counted, where plans raced.
    fn count_raced(
        &self,
        filter: &Filter,
        limit: Option<u64>,
    ) -> Result<(Total, Option<usize>), IndexError> {
        let r = self.reader()?;
        let size = size_of(&r)?;
        let cap = limit.unwrap_or(u64::MAX);
        if filter.is_empty() {
            return Ok((
                Total {
                    n: size,
                    at_least: false,
                },
                None,
            ));
        }
        // Statuses change with later entries and with time: a status count
        // is reused only for the same entries at the same tick.
        let mut key = format!("{}#{cap}", filter.query(None));
        if filter.status.is_some() {
            key.push_str(&format!("@{}", ticked(&r)?));
        }
        let cached = lock(&self.counts)
            .get(&key)
            .map(|c| (c.indexed, c.total, c.winner));
        let count_from = |start: u64, cap: u64| -> Result<(Total, Option<usize>), IndexError> {
            let start = i64::try_from(start).unwrap_or(i64::MAX);
            let limit = i64::try_from(cap).unwrap_or(i64::MAX);
            // Made only when the cache cannot answer: a legal basis's plans
            // read the index's distinct bases.
            let plans = Condition::plans(&r, filter, self.status_walk, self.legal_walk)?;
            let (n, by): (i64, usize) = race(&r, &plans, self.race_budget, None, |cond| {
                let mut bind = cond.bind();
                bind.push((":start", &start));
                bind.push((":limit", &limit));
                Ok(r.query_row(&cond.count_sql(), bind.as_slice(), |row| row.get(0))?)
            })?;
            // Only a count that takes the newest matches tells which plan
            // reads the page's rows fastest (see `Condition::count_sql`).
            let winner = plans
                .get(by)
                .filter(|c| plans.len() > 1 && c.count_newest)
                .map(|_| by);
            let n = u64::try_from(n).unwrap_or(0);
            let total = Total {
                n,
                at_least: n >= cap,
            };
            Ok((total, winner))
        };
        let (total, winner) = match cached {
            Some((at_size, t, w)) if at_size == size => (t, w),
            // Rows never change once indexed but for their statuses:
            // without a status, only new entries need counting. (That
            // count's winner says which plan reads the new entries, not the
            // page: the first count's is kept.)
            Some((at_size, t, w)) if !filter.changes_with_later_entries() && at_size < size => {
                if t.at_least {
                    (t, w)
                } else {
                    let (more, _) = count_from(at_size, cap.saturating_sub(t.n))?;
                    let total = Total {
                        n: t.n + more.n,
                        at_least: more.at_least,
                    };
                    (total, w)
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
                winner,
            },
        );
        Ok((total, winner))
    }

    /// Up to `limit` matches after skipping `skip`, newest first.
    pub fn matches(
        &self,
        filter: &Filter,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Summary>, IndexError> {
        self.matches_first(filter, skip, limit, None)
    }

    /// [`Index::matches`], racing the plan at `first` among the filter's
    /// plans before the others.
    fn matches_first(
        &self,
        filter: &Filter,
        skip: usize,
        limit: usize,
        first: Option<usize>,
    ) -> Result<Vec<Summary>, IndexError> {
        let r = self.reader()?;
        let plans = Condition::plans(&r, filter, self.status_walk, self.legal_walk)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let skip = i64::try_from(skip).unwrap_or(i64::MAX);
        // Without a filter the entries are 0..size: a page is a range of
        // indexes, however deep.
        let below = i64::try_from(size_of(&r)?)
            .unwrap_or(i64::MAX)
            .saturating_sub(skip);
        let (rows, _) = race(&r, &plans, self.race_budget, first, |cond| {
            let mut bind = cond.bind();
            bind.push((":limit", &limit));
            let sql = if filter.is_empty() {
                bind.push((":below", &below));
                format!("SELECT {SUMMARY_COLUMNS} FROM entries WHERE idx < :below ORDER BY idx DESC LIMIT :limit")
            } else if cond.from == STATUS_FROM {
                bind.push((":skip", &skip));
                format!(
                    "SELECT {SUMMARY_COLUMNS} FROM {} WHERE {} ORDER BY {} DESC LIMIT :limit OFFSET :skip",
                    cond.from, cond.sql, cond.order
                )
            } else {
                bind.push((":skip", &skip));
                cond.page_sql()
            };
            let mut st = r.prepare_cached(&sql)?;
            let rows = st.query_map(bind.as_slice(), summary_of_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        Ok(rows)
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
        let cond = Condition::read(&r, filter)?;
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
        let cond = Condition::read(&r, filter)?;
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

    /// Reads status lists with another indexed term as `walk` says, a
    /// raced plan's first round with `first_budget` SQLite steps (for
    /// tests: each way alone, and races that stop plans early).
    pub fn with_status_walk(mut self, walk: StatusWalk, first_budget: u64) -> Index {
        self.status_walk = walk;
        self.race_budget = first_budget;
        self
    }

    /// Reads legal-basis lists as `walk` says (for tests: each way alone).
    pub fn with_legal_walk(mut self, walk: LegalWalk) -> Index {
        self.legal_walk = walk;
        self
    }

    /// Catches up in bulk (list indexes made at the end) from `n` missing
    /// entries instead of [`BULK_MIN`] (for tests of the bulk load on
    /// short logs).
    pub fn with_bulk_min(mut self, n: u64) -> Index {
        self.bulk_min = n;
        self
    }

    /// Takes the records `admitted` holds (the log server's admission
    /// keeps what it parsed) instead of parsing those entries again.
    pub fn with_admitted(mut self, admitted: Arc<Admitted>) -> Index {
        self.admitted = Some(admitted);
        self
    }

    /// The number of matches (counted up to [`LIST_COUNT_LIMIT`]) and the
    /// filter's page of them, newest first.
    pub fn page(&self, filter: &Filter) -> Result<(Total, Vec<Summary>), IndexError> {
        // The plan that won the count's race is raced first for the rows.
        let (total, winner) = self.count_raced(filter, Some(self.list_limit))?;
        let skip = (filter.page.max(1) - 1).saturating_mul(filter.per_page);
        let shown = self.matches_first(filter, skip, filter.per_page, winner)?;
        Ok((total, shown))
    }

    /// When the statuses in lists were last brought up to date.
    pub fn ticked_at(&self) -> Result<DateTime<Utc>, IndexError> {
        let t = ticked(&*self.reader()?)?;
        Ok(DateTime::from_timestamp(t, 0).unwrap_or_default())
    }

    /// Brings the statuses lists filter on up to `now` ([`Ledger::tick`]).
    pub fn tick(&self, now: DateTime<Utc>) -> Result<(), IndexError> {
        lock(&self.writer).ledger.tick(now)?;
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
        drop(r);
        // Release entries are providers' releases of access and
        // custodians' key shares: counted apart, as the lists they link to.
        let releases_by = |who: &str| -> Result<u64, IndexError> {
            let pairs = [
                ("kind".to_owned(), "release".to_owned()),
                ("release".to_owned(), who.to_owned()),
            ];
            Ok(self.count(&Filter::parse(&pairs).0, None)?.n)
        };
        let releases = releases_by(Releaser::Provider.as_str())?;
        let share_releases = releases_by(Releaser::Custodian.as_str())?;
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
            share_releases,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// What SQLite says it will do for `sql`, one step per line.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters left unbound: the plan does not depend on them.
        let mut rows = st.raw_query();
        let mut steps = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            steps.push(r.get::<_, String>(3).unwrap());
        }
        steps.join("\n")
    }

    /// An empty ledger with the web view's indexes, and its directory.
    fn empty_ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open_for(
            &dir.path().join("i.db"),
            "o.test/log",
            daylight_ledger::Use::Filters,
        )
        .unwrap();
        (dir, ledger)
    }

    /// A condition that is only its SQL (for races over a plain table).
    fn bare_plan(sql: &str) -> Condition {
        Condition {
            from: "entries",
            order: "x",
            sql: sql.to_owned(),
            params: Vec::new(),
            listed: Vec::new(),
            count_newest: false,
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let (f, problems) = Filter::parse_strs(pairs);
        assert!(problems.is_empty(), "{problems:?}");
        f
    }

    /// A race answers with the plan that finishes within its budget, in
    /// either order; plans that all take long still answer (budgets grow);
    /// an error that is not the budget's is the answer; and the connection
    /// keeps no budget afterwards.
    #[test]
    fn a_race_answers_with_the_plan_that_finishes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x INTEGER PRIMARY KEY, v INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
             INSERT INTO t SELECT i, i % 7 FROM n;",
        )
        .unwrap();
        // A full scan that finds nothing, and one row by its key.
        let (slow, fast) = (bare_plan("v = -1"), bare_plan("x = 5"));
        let run = |c: &Condition| -> Result<(String, i64), IndexError> {
            let n = conn.query_row(
                &format!("SELECT count(*) FROM t WHERE {}", c.sql),
                [],
                |r| r.get(0),
            )?;
            Ok((c.sql.clone(), n))
        };
        for (plans, at) in [
            ([slow.clone(), fast.clone()], 1),
            ([fast.clone(), slow.clone()], 0),
        ] {
            for first in [None, Some(0), Some(1), Some(7)] {
                let ((by, n), won) = race(&conn, &plans, 1_000, first, run).unwrap();
                assert_eq!((by.as_str(), n, won), ("x = 5", 1, at), "{first:?}");
            }
        }
        // Both scan every row (far over the first budget): still answered.
        let ((_, n), _) = race(
            &conn,
            &[slow.clone(), bare_plan("v = -2")],
            1_000,
            None,
            run,
        )
        .unwrap();
        assert_eq!(n, 0);
        // With a first budget no plan can meet, the last resort answers:
        // the plan tried first.
        for (first, at) in [(None, 0), (Some(1), 1)] {
            let ((_, n), won) = race(&conn, &[slow.clone(), slow.clone()], 0, first, run).unwrap();
            assert_eq!((n, won), (0, at));
        }
        // No plan is an error, not a panic.
        assert!(matches!(
            race(&conn, &[], 1_000, Some(0), run),
            Err(IndexError::Db(rusqlite::Error::InvalidQuery))
        ));
        // Another error is the answer, not a reason to try the next plan.
        assert!(matches!(
            race(
                &conn,
                &[bare_plan("no_such_column = 1"), fast.clone()],
                1_000,
                None,
                run
            ),
            Err(IndexError::Db(e)) if e.to_string().contains("no_such_column")
        ));
        // No budget is left on the connection.
        assert_eq!(run(&bare_plan("v >= 0")).unwrap().1, 100_000);
    }

    /// The plan named first runs first (and alone, where it finishes
    /// within the first budget); without one, or with a place that is not
    /// a plan's, the plans run in their order.
    #[test]
    fn a_race_runs_the_plan_named_first_before_the_others() {
        let conn = Connection::open_in_memory().unwrap();
        let plans = [bare_plan("1"), bare_plan("2"), bare_plan("3")];
        for (first, tried) in [(None, "1"), (Some(0), "1"), (Some(2), "3"), (Some(3), "1")] {
            let mut ran = Vec::new();
            let (v, won) = race(&conn, &plans, 1_000, first, |c| {
                ran.push(c.sql.clone());
                Ok(conn.query_row(&format!("SELECT {}", c.sql), [], |r| r.get::<_, i64>(0))?)
            })
            .unwrap();
            assert_eq!(ran, [tried], "{first:?}");
            assert_eq!(v.to_string(), tried);
            assert_eq!(plans[won].sql, tried);
        }
    }

    /// A status count reads its matches newest first, as its page does,
    /// from the members or from the provider's index alike, without a
    /// sort; a legal basis's values are counted in their index's order
    /// (newest first would sort every match of several bases).
    #[test]
    fn a_status_count_reads_the_newest_matches_without_a_sort() {
        let (_dir, ledger) = empty_ledger();
        let f = filter(&[("provider", "cloud.example"), ("status", "sealed")]);
        for (ways, index) in [
            (Statuses::Members, "status_members"),
            (Statuses::Bits, "entries_provider"),
        ] {
            let c = Condition::of(&f, Dates::ByDay, ways, &Legal::Scan);
            let sql = c.count_sql();
            assert!(sql.contains(" DESC LIMIT"), "{sql}");
            let steps = plan(ledger.conn(), &sql);
            assert!(steps.contains(index), "{steps}");
            assert!(!steps.contains("TEMP B-TREE"), "{steps}");
        }
        let legal = Legal::Values(vec!["stpo 100a".into(), "stpo 100b".into()]);
        let f = filter(&[("legal_basis", "stpo")]);
        let c = Condition::of(&f, Dates::ByDay, Statuses::Members, &legal);
        let sql = c.count_sql();
        assert!(!sql.contains("DESC"), "{sql}");
        let steps = plan(ledger.conn(), &sql);
        assert!(!steps.contains("TEMP B-TREE"), "{steps}");
    }

    /// A date range read as a span walks the table back from the span's
    /// end in index order (or an index of another term, also within the
    /// span and in index order): no sort, and not the day index. Read by
    /// day, the bench's slowest list before the span (a category over half
    /// a year) takes the day index and sorts what it finds.
    #[test]
    fn a_dense_date_range_is_read_in_log_order_without_a_sort() {
        let (_dir, ledger) = empty_ledger();
        let span = Dates::Span(DaySpan {
            lo: 10,
            hi: 20,
            entries: 5,
        });
        let half_year = filter(&[
            ("category", "device_unlock"),
            ("from", "2025-01-01"),
            ("to", "2025-06-30"),
        ]);
        for f in [
            half_year.clone(),
            filter(&[("from", "2025-01-01")]),
            filter(&[("to", "2025-06-30"), ("kind", "request")]),
            filter(&[("to", "2025-06-30"), ("agency", "a.example")]),
        ] {
            let c = Condition::of(&f, span, Statuses::Members, &Legal::Scan);
            // Its count too, newest first (see `Condition::count_sql`).
            assert!(c.count_sql().contains(" DESC LIMIT"), "{}", c.count_sql());
            for sql in [c.page_sql(), c.count_sql()] {
                let dense = plan(ledger.conn(), &sql);
                assert!(dense.contains("rowid>? AND rowid<?"), "{dense}");
                assert!(!dense.contains("TEMP B-TREE"), "{dense}");
                assert!(!dense.contains("entries_day"), "{dense}");
            }
        }
        // With a term of several values, that term's index may be read,
        // whose rows are not in log order: the count keeps the index's
        // order (newest first would sort every match of the span).
        let several = [
            (
                filter(&[
                    ("kind", "request"),
                    ("kind", "emergency"),
                    ("to", "2025-06-30"),
                ]),
                Legal::Scan,
            ),
            (
                filter(&[("legal_basis", "stpo"), ("to", "2025-06-30")]),
                Legal::Values(vec!["stpo 100a".into(), "stpo 100b".into()]),
            ),
        ];
        for (f, legal) in several {
            let c = Condition::of(&f, span, Statuses::Members, &legal);
            let count = plan(ledger.conn(), &c.count_sql());
            assert!(!c.count_sql().contains("DESC"), "{}", c.count_sql());
            assert!(!count.contains("TEMP B-TREE"), "{count}");
        }
        let by_day = Condition::of(&half_year, Dates::ByDay, Statuses::Members, &Legal::Scan);
        let page = plan(ledger.conn(), &by_day.page_sql());
        assert!(page.contains("entries_day"), "{page}");
        assert!(page.contains("TEMP B-TREE"), "{page}");
        // Counted in the day index's order: no sort.
        let count = plan(ledger.conn(), &by_day.count_sql());
        assert!(count.contains("entries_day"), "{count}");
        assert!(!count.contains("TEMP B-TREE"), "{count}");
    }

    /// The legal bases that contain the words are found among the distinct
    /// ones, each once, in any number of entries; none where the index is
    /// not there or too many match.
    #[test]
    fn legal_values_are_the_distinct_bases_with_the_words() {
        let (_dir, ledger) = empty_ledger();
        let conn = ledger.conn();
        let add = |idx: i64, legal: Option<&str>| {
            conn.execute(
                "INSERT INTO entries(idx, version, signer, categories, flags, refs, leaf_hash, legal_lower) \
                 VALUES (?1, 1, 'a.example', 0, 0, '[]', x'00', ?2)",
                rusqlite::params![idx, legal],
            )
            .unwrap();
        };
        for (i, l) in [
            Some("stpo 100a"),
            None,
            Some("18 u.s.c. 2518"),
            Some("stpo 100a"),
            Some("stpo 100b"),
            Some(""),
            Some("ripa s.8"),
        ]
        .into_iter()
        .enumerate()
        {
            add(i as i64, l);
        }
        let values = |w: &str| legal_values(conn, w).unwrap();
        assert_eq!(
            values("stpo"),
            Some(vec!["stpo 100a".to_owned(), "stpo 100b".to_owned()])
        );
        assert_eq!(values("s.8"), Some(vec!["ripa s.8".to_owned()]));
        assert_eq!(values("nothing"), Some(Vec::new()));
        // Every basis contains no words at all, the empty one too.
        assert_eq!(values("").map(|v| v.len()), Some(5));
        // More matching bases than a list names: the scan is left to run.
        for i in 0..=LEGAL_VALUES_MAX as i64 {
            add(100 + i, Some(&format!("many {i}")));
        }
        assert_eq!(values("many"), None);
        assert_eq!(values("stpo").map(|v| v.len()), Some(2));
        // Without the index (a bulk load not finished): no values.
        conn.execute_batch("DROP INDEX entries_legal").unwrap();
        assert_eq!(values("stpo"), None);
    }

    /// A list of one legal basis reads that basis's entries from its index,
    /// newest first, without a sort.
    #[test]
    fn a_list_of_one_legal_basis_is_read_from_its_index_without_a_sort() {
        let (_dir, ledger) = empty_ledger();
        let f = filter(&[("legal_basis", "StPO")]);
        let one = Legal::Values(vec!["stpo 100a".to_owned()]);
        let read = plan(
            ledger.conn(),
            &Condition::of(&f, Dates::ByDay, Statuses::Members, &one).page_sql(),
        );
        assert!(read.contains("entries_legal"), "{read}");
        assert!(!read.contains("TEMP B-TREE"), "{read}");
        let scan = plan(
            ledger.conn(),
            &Condition::of(&f, Dates::ByDay, Statuses::Members, &Legal::Scan).page_sql(),
        );
        assert!(!scan.contains("entries_legal"), "{scan}");
    }
}
