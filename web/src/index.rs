//! An in-memory index of parsed entry summaries, refreshed when the log
//! grows, and the filters the entries list applies to it.
//!
//! A scan over these summaries answers every list and statistics query.
//! That is fine for logs of up to some hundred thousand entries; past that
//! the log server's database should keep query indexes (see the README).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
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

/// Parsed summaries of every entry, and who refers to whom.
#[derive(Default)]
pub struct Index {
    /// One per entry, by index.
    pub entries: Vec<Summary>,
    /// For each entry, the later entries that refer to it.
    pub referenced_by: Vec<Vec<u64>>,
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
                self.referenced_by.push(Vec::new());
                for &r in &s.references {
                    if let Some(list) = usize::try_from(r)
                        .ok()
                        .and_then(|r| self.referenced_by.get_mut(r))
                    {
                        list.push(s.index);
                    }
                }
                self.entries.push(s);
            }
        }
        Ok(())
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
        let mut until = s.sealed_until?;
        for &r in self.referrers(s.index) {
            if let Some(e) = self.get(r) {
                if e.kind == Some(Kind::Extension) {
                    if let Some(t) = e.sealed_until {
                        until = until.max(t);
                    }
                }
            }
        }
        Some(until)
    }

    /// The statuses of an authorisation at `now`; empty for other kinds.
    pub fn statuses(&self, s: &Summary, now: DateTime<Utc>) -> Vec<Status> {
        if !s.is_authorisation() {
            return Vec::new();
        }
        let mut out = BTreeSet::new();
        let related: Vec<&Summary> = self
            .referrers(s.index)
            .iter()
            .filter_map(|&r| self.get(r))
            .collect();
        let has = |k: Kind| related.iter().any(|e| e.kind == Some(k));
        let disclosed = has(Kind::Disclosure);
        if disclosed {
            out.insert(Status::Disclosed);
        } else if let Some(until) = self.effective_sealed_until(s) {
            out.insert(if now >= until {
                Status::Overdue
            } else {
                Status::Sealed
            });
        }
        if has(Kind::Withdrawal) {
            out.insert(Status::Withdrawn);
        }
        if has(Kind::Release) {
            out.insert(Status::Released);
        }
        if s.kind == Some(Kind::Emergency) {
            let decisions: Vec<Decision> = related.iter().filter_map(|e| e.decision).collect();
            if decisions.contains(&Decision::Granted) {
                out.insert(Status::Ratified);
            } else if decisions.contains(&Decision::Denied) {
                out.insert(Status::Denied);
            } else if s.ratify_by.is_some_and(|t| now > t) {
                out.insert(Status::Unratified);
            } else {
                out.insert(Status::AwaitingRatification);
            }
        }
        out.into_iter().collect()
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
        if let Some(l) = &self.legal_basis {
            let l = l.to_lowercase();
            if !s
                .legal_basis
                .as_ref()
                .is_some_and(|b| b.to_lowercase().contains(&l))
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
            if !idx.statuses(s, now).contains(&st) {
                return false;
            }
        }
        true
    }

    /// Every match, newest first.
    pub fn apply<'a>(&self, idx: &'a Index, now: DateTime<Utc>) -> Vec<&'a Summary> {
        idx.entries
            .iter()
            .rev()
            .filter(|s| self.matches(idx, s, now))
            .collect()
    }
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
