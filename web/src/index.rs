//! An in-memory index of parsed entry summaries, refreshed when the log
//! grows, and the filters the entries list applies to it.
//!
//! A scan over these summaries answers every list and statistics query.
//! That is fine for logs of up to some hundred thousand entries; past that
//! the log server's database should keep query indexes (see the README).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use daylight_core::LeafIndex;
use daylight_log_server::store::{LogStore, StoreError};
use daylight_schemas::{Body, Decision, Kind, SignedRecord};

/// Entries read from the store per call while catching up.
const CHUNK: u64 = 1024;

/// What the list, the filters and the charts need of one entry.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The entry's index.
    pub index: u64,
    /// Its kind, or `None` if the bytes do not parse as a record.
    pub kind: Option<Kind>,
    /// When the signer made it.
    pub created: Option<DateTime<Utc>>,
    /// The signer's key name.
    pub signer: String,
    /// Jurisdiction (requests and emergencies).
    pub jurisdiction: Option<String>,
    /// Legal basis (requests and emergencies).
    pub legal_basis: Option<String>,
    /// The provider asked (requests and emergencies).
    pub provider: Option<String>,
    /// Data categories asked for (requests and emergencies).
    pub categories: Vec<&'static str>,
    /// Sealed-until (requests and emergencies), or the new one (extensions).
    pub sealed_until: Option<DateTime<Utc>>,
    /// The ratification deadline (emergencies).
    pub ratify_by: Option<DateTime<Utc>>,
    /// A ratification's decision.
    pub decision: Option<Decision>,
    /// Indexes of the earlier entries this one refers to.
    pub references: Vec<u64>,
    /// Leaf hash, hex.
    pub leaf_hash: String,
}

impl Summary {
    fn of(index: u64, data: &[u8], leaf_hash: String) -> Summary {
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
            ratify_by: None,
            decision: None,
            references: Vec::new(),
            leaf_hash,
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
        match r.body() {
            Body::Request(b) => {
                s.jurisdiction = Some(b.jurisdiction.to_string());
                s.legal_basis = Some(b.legal_basis.to_string());
                s.categories = b.data_categories.iter().map(|c| c.as_str()).collect();
            }
            Body::Emergency(b) => {
                s.jurisdiction = Some(b.jurisdiction.to_string());
                s.legal_basis = Some(b.legal_basis.to_string());
                s.categories = b.data_categories.iter().map(|c| c.as_str()).collect();
            }
            Body::Ratification(b) => s.decision = Some(b.decision),
            _ => {}
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
}

/// A status an authorisation can have (several at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Still sealed, and the sealed-until date has not passed.
    Sealed,
    /// A disclosure entry opened it.
    Disclosed,
    /// Sealed-until (after any extension) has passed and no disclosure exists.
    Overdue,
    /// An emergency a court ratified.
    Ratified,
    /// An emergency a court refused to ratify.
    Denied,
    /// An emergency whose ratification deadline passed without a ratification.
    Unratified,
    /// An emergency still within its ratification deadline.
    AwaitingRatification,
    /// The provider logged a release for it.
    Released,
    /// The agency withdrew it.
    Withdrawn,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 9] = [
        Status::Sealed,
        Status::Disclosed,
        Status::Overdue,
        Status::Ratified,
        Status::Denied,
        Status::Unratified,
        Status::AwaitingRatification,
        Status::Released,
        Status::Withdrawn,
    ];

    /// The code used in URLs and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sealed => "sealed",
            Status::Disclosed => "disclosed",
            Status::Overdue => "overdue",
            Status::Ratified => "ratified",
            Status::Denied => "denied",
            Status::Unratified => "unratified",
            Status::AwaitingRatification => "awaiting_ratification",
            Status::Released => "released",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// Plain-language label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Sealed => "sealed",
            Status::Disclosed => "disclosed",
            Status::Overdue => "disclosure overdue",
            Status::Ratified => "ratified by a court",
            Status::Denied => "ratification denied",
            Status::Unratified => "not ratified in time",
            Status::AwaitingRatification => "awaiting ratification",
            Status::Released => "access released",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The fields the filters and statuses read, compact, one per entry, so a
/// scan of a million entries reads some 40 MB instead of the summaries.
/// What later entries say about the entry is kept up to date as they arrive.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    /// `HAS_*` bits.
    flags: u8,
    /// Position in [`Kind::ALL`] plus one; 0: unreadable.
    kind: u8,
    /// Bit `i`: position `i` in `DataCategory::ALL`.
    categories: u64,
    /// Interned signer, jurisdiction, legal basis, provider (0: none).
    signer: u32,
    jurisdiction: u32,
    legal_basis: u32,
    provider: u32,
    /// Creation day (days from the common era), or `i32::MIN`.
    day: i32,
    /// The sealed-until date in force (the entry's own, or a later
    /// extension's), Unix seconds, or `i64::MIN` if none.
    sealed_until: i64,
    /// Ratification deadline, Unix seconds, or `i64::MIN`.
    ratify_by: i64,
}

fn secs(t: Option<DateTime<Utc>>) -> i64 {
    t.map_or(i64::MIN, |t| t.timestamp())
}

fn category_bit(c: &str) -> u64 {
    daylight_schemas::DataCategory::ALL
        .iter()
        .position(|x| x.as_str() == c)
        .and_then(|i| 1u64.checked_shl(u32::try_from(i).ok()?))
        .unwrap_or(0)
}

const HAS_DISCLOSURE: u8 = 1;
const HAS_WITHDRAWAL: u8 = 2;
const HAS_RELEASE: u8 = 4;
const HAS_GRANTED: u8 = 8;
const HAS_DENIED: u8 = 16;

/// A set of [`Status`]es, one bit each (in [`Status::ALL`] order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusSet(u16);

impl StatusSet {
    fn bit(s: Status) -> u16 {
        1 << (s as u16)
    }

    fn insert(&mut self, s: Status) {
        self.0 |= Self::bit(s);
    }

    /// Whether `s` is in the set.
    pub fn contains(self, s: Status) -> bool {
        self.0 & Self::bit(s) != 0
    }

    /// The statuses, in [`Status::ALL`] order.
    pub fn to_vec(self) -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|&s| self.contains(s))
            .collect()
    }
}

/// Parsed summaries of every entry, and who refers to whom.
#[derive(Default)]
pub struct Index {
    /// One per entry, by index.
    pub entries: Vec<Summary>,
    /// For each entry, the later entries that refer to it.
    pub referenced_by: Vec<Vec<u64>>,
    /// For each entry, the fields filters read, compact.
    rows: Vec<Row>,
    /// Interned strings (index 0 is the empty string: none).
    strings: Vec<String>,
    /// Their ids.
    ids: std::collections::HashMap<String, u32>,
    /// Signers of authorisations seen.
    pub agencies: BTreeSet<String>,
    /// Jurisdictions seen, and the countries of subdivisions (`US` for `US-NY`).
    pub jurisdictions: BTreeSet<String>,
    /// Providers seen.
    pub providers: BTreeSet<String>,
}

impl Index {
    /// Reads and parses the entries added since the last call.
    pub fn refresh(&mut self, store: &dyn LogStore) -> Result<(), StoreError> {
        let size = store.size()?.get();
        while (self.entries.len() as u64) < size {
            let start = self.entries.len() as u64;
            let batch = store.entries(LeafIndex(start), CHUNK.min(size - start))?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                let s = Summary::of(e.index.get(), &e.data, e.leaf_hash.to_hex());
                self.add(s);
            }
        }
        Ok(())
    }

    /// Adds the next entry: its facts, and what it says about earlier ones.
    fn add(&mut self, s: Summary) {
        self.referenced_by.push(Vec::new());
        let row = Row {
            flags: 0,
            kind: s
                .kind
                .and_then(|k| Kind::ALL.iter().position(|&x| x == k))
                .and_then(|p| u8::try_from(p + 1).ok())
                .unwrap_or(0),
            categories: s.categories.iter().fold(0, |m, c| m | category_bit(c)),
            signer: self.intern(Some(&s.signer)),
            jurisdiction: self.intern(s.jurisdiction.as_deref()),
            legal_basis: self.intern(s.legal_basis.as_deref()),
            provider: self.intern(s.provider.as_deref()),
            day: s
                .created
                .map_or(i32::MIN, |c| c.date_naive().num_days_from_ce()),
            sealed_until: secs(s.sealed_until),
            ratify_by: secs(s.ratify_by),
        };
        self.rows.push(row);
        let flag = match (s.kind, s.decision) {
            (Some(Kind::Disclosure), _) => HAS_DISCLOSURE,
            (Some(Kind::Withdrawal), _) => HAS_WITHDRAWAL,
            (Some(Kind::Release), _) => HAS_RELEASE,
            (_, Some(Decision::Granted)) => HAS_GRANTED,
            (_, Some(Decision::Denied)) => HAS_DENIED,
            _ => 0,
        };
        for &r in &s.references {
            let Ok(r) = usize::try_from(r) else { continue };
            if r >= self.entries.len() {
                continue;
            }
            if let Some(list) = self.referenced_by.get_mut(r) {
                list.push(s.index);
            }
            if let Some(f) = self.rows.get_mut(r) {
                f.flags |= flag;
                if s.kind == Some(Kind::Extension)
                    && f.sealed_until != i64::MIN
                    && s.sealed_until.is_some()
                {
                    f.sealed_until = f.sealed_until.max(secs(s.sealed_until));
                }
            }
        }
        if s.is_authorisation() && !self.agencies.contains(&s.signer) {
            self.agencies.insert(s.signer.clone());
        }
        if let Some(j) = &s.jurisdiction {
            if !self.jurisdictions.contains(j) {
                self.jurisdictions
                    .insert(j.split('-').next().unwrap_or(j).to_owned());
                self.jurisdictions.insert(j.clone());
            }
        }
        if let Some(p) = &s.provider {
            if !self.providers.contains(p) {
                self.providers.insert(p.clone());
            }
        }
        self.entries.push(s);
    }

    fn intern(&mut self, v: Option<&str>) -> u32 {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return 0;
        };
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        if self.strings.is_empty() {
            self.strings.push(String::new());
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(v.to_owned());
        self.ids.insert(v.to_owned(), id);
        id
    }

    fn row(&self, index: u64) -> Row {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.rows.get(i))
            .copied()
            .unwrap_or_default()
    }

    /// Statuses from a row at `now` (Unix seconds).
    fn row_statuses(row: &Row, now: i64) -> StatusSet {
        let mut out = StatusSet::default();
        let emergency = Kind::ALL.iter().position(|&k| k == Kind::Emergency);
        let request = Kind::ALL.iter().position(|&k| k == Kind::Request);
        let kind = usize::from(row.kind).checked_sub(1);
        if kind.is_none() || (kind != emergency && kind != request) {
            return out;
        }
        let has = |bit: u8| row.flags & bit != 0;
        if has(HAS_DISCLOSURE) {
            out.insert(Status::Disclosed);
        } else if row.sealed_until != i64::MIN {
            out.insert(if now >= row.sealed_until {
                Status::Overdue
            } else {
                Status::Sealed
            });
        }
        if has(HAS_WITHDRAWAL) {
            out.insert(Status::Withdrawn);
        }
        if has(HAS_RELEASE) {
            out.insert(Status::Released);
        }
        if kind == emergency {
            if has(HAS_GRANTED) {
                out.insert(Status::Ratified);
            } else if has(HAS_DENIED) {
                out.insert(Status::Denied);
            } else if row.ratify_by != i64::MIN && now > row.ratify_by {
                out.insert(Status::Unratified);
            } else {
                out.insert(Status::AwaitingRatification);
            }
        }
        out
    }

    /// The entry at `index`.
    pub fn get(&self, index: u64) -> Option<&Summary> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The later entries that refer to `index`.
    pub fn referrers(&self, index: u64) -> &[u64] {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.referenced_by.get(i))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The sealed-until date in force: the entry's own, or a later extension's.
    pub fn effective_sealed_until(&self, s: &Summary) -> Option<DateTime<Utc>> {
        s.sealed_until?;
        DateTime::from_timestamp(self.row(s.index).sealed_until, 0)
    }

    /// The statuses of an authorisation at `now`; empty for other kinds.
    pub fn status_set(&self, s: &Summary, now: DateTime<Utc>) -> StatusSet {
        Self::row_statuses(&self.row(s.index), now.timestamp())
    }

    /// The statuses of an authorisation at `now`, in [`Status::ALL`] order;
    /// empty for other kinds.
    pub fn statuses(&self, s: &Summary, now: DateTime<Utc>) -> Vec<Status> {
        self.status_set(s, now).to_vec()
    }
}

/// The entries list's filters, as GET query parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Kinds (any of); empty: all.
    pub kinds: Vec<Kind>,
    /// Signer key name (exact).
    pub agency: Option<String>,
    /// Jurisdiction: exact (`US-NY`) or a country (`US` matches `US-NY`).
    pub jurisdiction: Option<String>,
    /// Legal basis: case-insensitive substring.
    pub legal_basis: Option<String>,
    /// Provider key name (exact).
    pub provider: Option<String>,
    /// Data categories (any of).
    pub categories: Vec<String>,
    /// Created on or after this day (UTC).
    pub from: Option<NaiveDate>,
    /// Created on or before this day (UTC).
    pub to: Option<NaiveDate>,
    /// Emergency (`Some(true)`), ordinary request (`Some(false)`), any.
    pub emergency: Option<bool>,
    /// Has this status.
    pub status: Option<Status>,
    /// Page, from 1.
    pub page: usize,
    /// Entries per page.
    pub per_page: usize,
}

/// Entries per page unless asked otherwise.
pub const DEFAULT_PER_PAGE: usize = 50;
/// The most entries per page.
pub const MAX_PER_PAGE: usize = 500;

fn nonempty(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl Filter {
    /// Reads the query parameters; unknown or malformed values are reported
    /// in the returned list of problems and ignored.
    pub fn parse(pairs: &[(String, String)]) -> (Filter, Vec<String>) {
        let mut f = Filter {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            ..Filter::default()
        };
        let mut problems = Vec::new();
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "kind" => match v.parse::<Kind>() {
                    Ok(kind) if !f.kinds.contains(&kind) => f.kinds.push(kind),
                    Ok(_) => {}
                    Err(_) => problems.push(format!("unknown kind {v:?}")),
                },
                "agency" => f.agency = nonempty(v),
                "jurisdiction" => f.jurisdiction = nonempty(v).map(|s| s.to_uppercase()),
                "legal_basis" => f.legal_basis = nonempty(v),
                "provider" => f.provider = nonempty(v),
                "category" => {
                    if daylight_schemas::DataCategory::ALL
                        .iter()
                        .any(|c| c.as_str() == v)
                    {
                        if !f.categories.iter().any(|c| c == v) {
                            f.categories.push(v.to_owned());
                        }
                    } else {
                        problems.push(format!("unknown data category {v:?}"));
                    }
                }
                "from" | "to" => match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    Ok(d) if k == "from" => f.from = Some(d),
                    Ok(d) => f.to = Some(d),
                    Err(_) => problems.push(format!("{k}: {v:?} is not a date YYYY-MM-DD")),
                },
                "emergency" => match v {
                    "yes" | "true" | "1" => f.emergency = Some(true),
                    "no" | "false" | "0" => f.emergency = Some(false),
                    "any" => f.emergency = None,
                    _ => problems.push(format!("emergency: {v:?} is not yes, no or any")),
                },
                "status" => match Status::parse(v) {
                    Some(s) => f.status = Some(s),
                    None => problems.push(format!("unknown status {v:?}")),
                },
                "page" => match v.parse::<usize>() {
                    Ok(p) if p >= 1 => f.page = p,
                    _ => problems.push(format!("page: {v:?} is not a page number")),
                },
                "per_page" => match v.parse::<usize>() {
                    Ok(p) if p >= 1 => f.per_page = p.min(MAX_PER_PAGE),
                    _ => problems.push(format!("per_page: {v:?} is not a number")),
                },
                _ => {}
            }
        }
        (f, problems)
    }

    /// The filter as query parameters (without the page), in a fixed order,
    /// so equal filters give equal URLs.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for k in &self.kinds {
            out.push(("kind", k.as_str().to_owned()));
        }
        let opt = |out: &mut Vec<(&'static str, String)>, k, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        };
        opt(&mut out, "agency", &self.agency);
        opt(&mut out, "jurisdiction", &self.jurisdiction);
        opt(&mut out, "legal_basis", &self.legal_basis);
        opt(&mut out, "provider", &self.provider);
        for c in &self.categories {
            out.push(("category", c.clone()));
        }
        if let Some(d) = self.from {
            out.push(("from", d.format("%Y-%m-%d").to_string()));
        }
        if let Some(d) = self.to {
            out.push(("to", d.format("%Y-%m-%d").to_string()));
        }
        if let Some(e) = self.emergency {
            out.push(("emergency", if e { "yes" } else { "no" }.to_owned()));
        }
        if let Some(s) = self.status {
            out.push(("status", s.as_str().to_owned()));
        }
        if self.per_page != DEFAULT_PER_PAGE {
            out.push(("per_page", self.per_page.to_string()));
        }
        out
    }

    /// The query string for `page` (empty filters and page 1 give "").
    pub fn query(&self, page: Option<usize>) -> String {
        let mut pairs = self.pairs();
        if let Some(p) = page.filter(|&p| p > 1) {
            pairs.push(("page", p.to_string()));
        }
        encode_query(&pairs)
    }

    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self.pairs()
            .iter()
            .all(|(k, _)| *k == "per_page" || *k == "page")
    }

    /// Whether `s` passes the filter at `now`.
    pub fn matches(&self, idx: &Index, s: &Summary, now: DateTime<Utc>) -> bool {
        let legal = self.legal_basis.as_ref().map(|l| l.to_lowercase());
        self.matches_with(idx, s, now, legal.as_deref())
    }

    /// [`Filter::matches`] with the legal-basis needle already lower-cased.
    fn matches_with(
        &self,
        idx: &Index,
        s: &Summary,
        now: DateTime<Utc>,
        legal: Option<&str>,
    ) -> bool {
        if !self.kinds.is_empty() && !s.kind.is_some_and(|k| self.kinds.contains(&k)) {
            return false;
        }
        if let Some(a) = &self.agency {
            if &s.signer != a {
                return false;
            }
        }
        if let Some(j) = &self.jurisdiction {
            match &s.jurisdiction {
                Some(sj) if sj == j || (!j.contains('-') && sj.split('-').next() == Some(j)) => {}
                _ => return false,
            }
        }
        if let Some(l) = legal {
            if !s
                .legal_basis
                .as_ref()
                .is_some_and(|b| contains_lowercase(b, l))
            {
                return false;
            }
        }
        if let Some(p) = &self.provider {
            if s.provider.as_ref() != Some(p) {
                return false;
            }
        }
        if !self.categories.is_empty()
            && !s
                .categories
                .iter()
                .any(|c| self.categories.iter().any(|x| x == c))
        {
            return false;
        }
        let day = s.created.map(|c| c.date_naive());
        if let Some(from) = self.from {
            if day.is_none_or(|d| d < from) {
                return false;
            }
        }
        if let Some(to) = self.to {
            if day.is_none_or(|d| d > to) {
                return false;
            }
        }
        if let Some(e) = self.emergency {
            if !s.is_authorisation() || (s.kind == Some(Kind::Emergency)) != e {
                return false;
            }
        }
        if let Some(st) = self.status {
            if !idx.status_set(s, now).contains(st) {
                return false;
            }
        }
        true
    }

    /// The filter turned into ids and bit masks for a scan of `idx`'s
    /// rows; `None` if nothing can match (a name the log never saw).
    fn prepare(&self, idx: &Index, now: DateTime<Utc>) -> Option<Prepared> {
        let ids = |pred: &dyn Fn(&str) -> bool| -> Vec<bool> {
            idx.strings
                .iter()
                .map(|v| !v.is_empty() && pred(v))
                .collect()
        };
        let exact = |v: &Option<String>| -> Option<Option<u32>> {
            match v {
                None => Some(None),
                Some(v) => idx.ids.get(v).map(|&id| Some(id)),
            }
        };
        let kinds = self.kinds.iter().fold(0u16, |m, k| {
            m | Kind::ALL
                .iter()
                .position(|x| x == k)
                .map_or(0, |p| 1 << (p + 1))
        });
        let jurisdiction = self.jurisdiction.as_ref().map(|j| {
            ids(&|sj: &str| sj == j || (!j.contains('-') && sj.split('-').next() == Some(j)))
        });
        let legal = self.legal_basis.as_ref().map(|l| {
            let l = l.to_lowercase();
            ids(&|b: &str| contains_lowercase(b, &l))
        });
        let pos = |k: Kind| Kind::ALL.iter().position(|&x| x == k).map_or(0, |p| p + 1);
        Some(Prepared {
            kinds,
            agency: exact(&self.agency)?,
            provider: exact(&self.provider)?,
            jurisdiction,
            legal,
            categories: self.categories.iter().fold(0, |m, c| m | category_bit(c)),
            from: self.from.map(|d| d.num_days_from_ce()),
            to: self.to.map(|d| d.num_days_from_ce()),
            emergency: self.emergency,
            emergency_kind: pos(Kind::Emergency),
            request_kind: pos(Kind::Request),
            status: self.status,
            now: now.timestamp(),
        })
    }

    /// Every match, newest first.
    pub fn apply<'a>(&self, idx: &'a Index, now: DateTime<Utc>) -> Vec<&'a Summary> {
        let Some(p) = self.prepare(idx, now) else {
            return Vec::new();
        };
        idx.entries
            .iter()
            .zip(&idx.rows)
            .rev()
            .filter(|(_, r)| p.matches(r))
            .map(|(s, _)| s)
            .collect()
    }

    /// The number of matches and the matches on the filter's page, newest
    /// first, without collecting the rest.
    pub fn page_of<'a>(&self, idx: &'a Index, now: DateTime<Utc>) -> (usize, Vec<&'a Summary>) {
        let start = (self.page.max(1) - 1).saturating_mul(self.per_page);
        let end = start.saturating_add(self.per_page);
        if self.is_empty() {
            let n = idx.entries.len();
            let shown = idx
                .entries
                .iter()
                .rev()
                .skip(start)
                .take(self.per_page)
                .collect();
            return (n, shown);
        }
        let Some(p) = self.prepare(idx, now) else {
            return (0, Vec::new());
        };
        let mut total = 0;
        let mut shown = Vec::new();
        for (i, r) in idx.rows.iter().enumerate().rev() {
            if p.matches(r) {
                if total >= start && total < end {
                    if let Some(s) = idx.entries.get(i) {
                        shown.push(s);
                    }
                }
                total += 1;
            }
        }
        (total, shown)
    }
}

/// A [`Filter`] ready for a scan of rows.
struct Prepared {
    /// Bit `k`: row kind `k`; 0: any.
    kinds: u16,
    agency: Option<u32>,
    provider: Option<u32>,
    /// Per interned string: whether it passes.
    jurisdiction: Option<Vec<bool>>,
    legal: Option<Vec<bool>>,
    categories: u64,
    from: Option<i32>,
    to: Option<i32>,
    emergency: Option<bool>,
    emergency_kind: usize,
    request_kind: usize,
    status: Option<Status>,
    now: i64,
}

impl Prepared {
    fn matches(&self, r: &Row) -> bool {
        let passes = |table: &Option<Vec<bool>>, id: u32| match table {
            None => true,
            Some(t) => usize::try_from(id)
                .ok()
                .and_then(|i| t.get(i))
                .copied()
                .unwrap_or(false),
        };
        let kind = usize::from(r.kind);
        (self.kinds == 0 || (r.kind > 0 && self.kinds & (1 << r.kind) != 0))
            && self.agency.is_none_or(|a| r.signer == a)
            && self.provider.is_none_or(|p| r.provider == p)
            && passes(&self.jurisdiction, r.jurisdiction)
            && passes(&self.legal, r.legal_basis)
            && (self.categories == 0 || r.categories & self.categories != 0)
            && self.from.is_none_or(|f| r.day != i32::MIN && r.day >= f)
            && self.to.is_none_or(|t| r.day != i32::MIN && r.day <= t)
            && self.emergency.is_none_or(|e| {
                (kind == self.emergency_kind || kind == self.request_kind)
                    && (kind == self.emergency_kind) == e
            })
            && self
                .status
                .is_none_or(|st| Index::row_statuses(r, self.now).contains(st))
    }
}

/// Whether `hay`, lower-cased, contains `needle` (already lower-case);
/// without allocating when `hay` is ASCII.
fn contains_lowercase(hay: &str, needle: &str) -> bool {
    if !hay.is_ascii() {
        return hay.to_lowercase().contains(needle);
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// `application/x-www-form-urlencoded` of `pairs`, with a leading `?` unless empty.
pub fn encode_query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    format!("?{}", body.join("&"))
}

/// Percent-encodes everything but unreserved characters (space as `+`).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
