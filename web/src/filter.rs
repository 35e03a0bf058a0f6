//! The entries list's filters: parsed from GET query parameters, and
//! written back into stable URLs. The index turns them into SQL.

use chrono::NaiveDate;
use daylight_schemas::{Kind, RefusalReason};

use crate::status::Status;

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
    /// Provider key name (exact): the provider a request is addressed to,
    /// or the provider that signed a refusal or a published policy.
    pub provider: Option<String>,
    /// Refusals only: the agency (key name) whose request was refused.
    pub request_agency: Option<String>,
    /// Refusals only: the reason.
    pub reason: Option<RefusalReason>,
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
    /// Outcome reports only: the latest on its authorisation (`Some(true)`),
    /// or one a later report on the same authorisation replaced.
    pub latest: Option<bool>,
    /// Outcome reports only: what they say of encryption.
    pub encryption: Option<Encryption>,
    /// Outcome reports only: whether they say data was obtained.
    pub data_obtained: Option<bool>,
    /// Releases only: a provider's release of access, or a custodian's
    /// release of one key share (threshold custody).
    pub release: Option<Releaser>,
    /// Page, from 1.
    pub page: usize,
    /// Entries per page.
    pub per_page: usize,
}

/// What an outcome report says of encryption (the `encryption` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// Encryption was encountered (whether or not it prevented access).
    Encountered,
    /// Encryption kept the plain text out of reach.
    Prevented,
    /// Encryption was encountered but did not prevent access.
    Overcome,
    /// No encryption was encountered.
    None,
}

impl Encryption {
    /// Every value, in the order forms offer them.
    pub const ALL: [Encryption; 4] = [
        Encryption::Encountered,
        Encryption::Prevented,
        Encryption::Overcome,
        Encryption::None,
    ];

    /// The code used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Encountered => "encountered",
            Encryption::Prevented => "prevented",
            Encryption::Overcome => "overcome",
            Encryption::None => "none",
        }
    }

    /// Plain-language label.
    pub fn label(self) -> &'static str {
        match self {
            Encryption::Encountered => "encryption encountered",
            Encryption::Prevented => "encryption prevented access",
            Encryption::Overcome => "encryption encountered, access not prevented",
            Encryption::None => "no encryption encountered",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Encryption> {
        Encryption::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Who signed a release (the `release` parameter): a provider releases
/// access, a custodian one share of a target's escrowed key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Releaser {
    /// A provider's release of access.
    Provider,
    /// A custodian's release of one key share.
    Custodian,
}

impl Releaser {
    /// The code used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Releaser::Provider => "provider",
            Releaser::Custodian => "custodian",
        }
    }
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
    /// [`Filter::parse`] of pairs written in code (links, tests).
    pub fn parse_strs(pairs: &[(&str, &str)]) -> (Filter, Vec<String>) {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Filter::parse(&pairs)
    }

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
                "request_agency" => f.request_agency = nonempty(v),
                "reason" => match v.parse::<RefusalReason>() {
                    Ok(r) => f.reason = Some(r),
                    Err(_) if v == "any" => f.reason = None,
                    Err(_) => problems.push(format!("unknown refusal reason {v:?}")),
                },
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
                "outcome" => match v {
                    "latest" => f.latest = Some(true),
                    "replaced" => f.latest = Some(false),
                    "any" => f.latest = None,
                    _ => problems.push(format!("outcome: {v:?} is not latest, replaced or any")),
                },
                "encryption" => match Encryption::parse(v) {
                    Some(e) => f.encryption = Some(e),
                    None if v == "any" => f.encryption = None,
                    None => problems.push(format!(
                        "encryption: {v:?} is not encountered, prevented, overcome or none"
                    )),
                },
                "data_obtained" => match v {
                    "yes" | "true" | "1" => f.data_obtained = Some(true),
                    "no" | "false" | "0" => f.data_obtained = Some(false),
                    "any" => f.data_obtained = None,
                    _ => problems.push(format!("data_obtained: {v:?} is not yes, no or any")),
                },
                "release" => match v {
                    "provider" => f.release = Some(Releaser::Provider),
                    "custodian" => f.release = Some(Releaser::Custodian),
                    "any" => f.release = None,
                    _ => problems.push(format!("release: {v:?} is not provider, custodian or any")),
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
        opt(&mut out, "request_agency", &self.request_agency);
        opt(&mut out, "jurisdiction", &self.jurisdiction);
        opt(&mut out, "legal_basis", &self.legal_basis);
        opt(&mut out, "provider", &self.provider);
        if let Some(r) = self.reason {
            out.push(("reason", r.as_str().to_owned()));
        }
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
        if let Some(l) = self.latest {
            out.push(("outcome", if l { "latest" } else { "replaced" }.to_owned()));
        }
        if let Some(e) = self.encryption {
            out.push(("encryption", e.as_str().to_owned()));
        }
        if let Some(d) = self.data_obtained {
            out.push(("data_obtained", if d { "yes" } else { "no" }.to_owned()));
        }
        if let Some(r) = self.release {
            out.push(("release", r.as_str().to_owned()));
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

    /// Whether the set of matches can change when later entries arrive
    /// (not only grow): statuses, and which outcome report is the latest.
    pub fn changes_with_later_entries(&self) -> bool {
        self.status.is_some() || self.latest.is_some()
    }

    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self.pairs()
            .iter()
            .all(|(k, _)| *k == "per_page" || *k == "page")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (Filter, Vec<String>) {
        Filter::parse_strs(pairs)
    }

    #[test]
    fn refusal_filters_round_trip_and_bad_values_are_reported() {
        let (f, problems) = parse(&[
            ("reason", "jurisdiction_denied"),
            ("request_agency", "agency.test"),
            ("kind", "refusal"),
            ("jurisdiction", "de"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(f.reason, Some(RefusalReason::JurisdictionDenied));
        let q = f.query(None);
        assert_eq!(
            q,
            "?kind=refusal&request_agency=agency.test&jurisdiction=DE&reason=jurisdiction_denied"
        );
        let back: Vec<(&str, &str)> = q[1..]
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        assert_eq!(parse(&back).0, f);
        let (f, problems) = parse(&[("reason", "because")]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(f.is_empty());
    }

    #[test]
    fn outcome_filters_round_trip_and_bad_values_are_reported() {
        let (f, problems) = parse(&[
            ("data_obtained", "no"),
            ("encryption", "prevented"),
            ("outcome", "latest"),
            ("kind", "outcome"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(f.latest, Some(true));
        assert_eq!(f.encryption, Some(Encryption::Prevented));
        assert_eq!(f.data_obtained, Some(false));
        assert!(f.changes_with_later_entries());
        // Canonical order, and parsing the URL gives the same filter.
        let q = f.query(None);
        assert_eq!(
            q,
            "?kind=outcome&outcome=latest&encryption=prevented&data_obtained=no"
        );
        let back: Vec<(&str, &str)> = q[1..]
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        assert_eq!(parse(&back).0, f);
        let (f, problems) = parse(&[
            ("outcome", "newest"),
            ("encryption", "maybe"),
            ("data_obtained", "perhaps"),
        ]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(f.is_empty() && !f.changes_with_later_entries());
    }
}
