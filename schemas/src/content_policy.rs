//! A provider's standards on what a request may ask: the content lines of
//! its gate policy (and of the `policy` records it publishes in the log).
//! One parser and one evaluation, shared by the gate (which enforces them),
//! the auditor (which checks releases against a provider's published lines)
//! and the web view (which shows them).
//!
//! ```text
//! daylight-jurisdictions allow|deny CODE... [for AGENCY]   ISO 3166-1 country (covers its subdivisions) or subdivision
//! daylight-issuers allow TYPE... [for AGENCY]              issuing-authority types (court, agency, ...)
//! daylight-categories allow|deny CATEGORY... [for AGENCY]  data categories
//! daylight-offences allow OFFENCE... [for AGENCY]          offence codes
//! daylight-max-targets N [for AGENCY]                      most targets per request
//! daylight-max-validity-days N [for AGENCY]                longest valid_from..valid_until window
//! ```
//!
//! A line without `for` applies to every agency; one with `for AGENCY` (the
//! agency's key name) to that agency only. A request must pass every line
//! that applies to it: the most restrictive wins.

use std::fmt;
use std::str::FromStr;

use crate::fields::{DataCategory, IssuerType, Jurisdiction, Offence, RefusalReason};
use crate::record::{Body, EmergencyBody, RequestBody, SignedRecord};

/// The longest validity window a line may name: ten years, in days.
pub const MAX_VALIDITY_DAYS: u32 = 3660;

/// Why a content line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContentLineError(pub String);

/// What a rule says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Only these jurisdictions (a country covers its subdivisions).
    AllowJurisdictions(Vec<Jurisdiction>),
    /// Never these jurisdictions.
    DenyJurisdictions(Vec<Jurisdiction>),
    /// Only these issuing-authority types.
    AllowIssuers(Vec<IssuerType>),
    /// Only requests whose every data category is one of these.
    AllowCategories(Vec<DataCategory>),
    /// No request asking for any of these data categories.
    DenyCategories(Vec<DataCategory>),
    /// Only these offences.
    AllowOffences(Vec<Offence>),
    /// At most this many targets.
    MaxTargets(u32),
    /// A validity window of at most this many days.
    MaxValidityDays(u32),
}

/// One content line: a rule, for every agency or for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentLine {
    /// The rule.
    pub rule: Rule,
    /// The agency (key name) it is for; `None`: every agency.
    pub agency: Option<String>,
}

/// A refusal by content: the stable reason and what it was about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentRefusal {
    /// The stable reason code.
    pub reason: RefusalReason,
    /// For people.
    pub detail: String,
}

fn list<T: FromStr>(words: &[&str], what: &str) -> Result<Vec<T>, ContentLineError>
where
    T::Err: fmt::Display,
{
    if words.is_empty() {
        return Err(ContentLineError(format!("no {what} given")));
    }
    words
        .iter()
        .map(|w| {
            w.parse::<T>()
                .map_err(|e| ContentLineError(format!("{what} {w:?}: {e}")))
        })
        .collect()
}

/// `allow` or `deny`, then the values.
fn mode<'a, 'b>(
    first: &str,
    args: &'a [&'b str],
) -> Result<(bool, &'a [&'b str]), ContentLineError> {
    match args.split_first() {
        Some((&"allow", vals)) => Ok((true, vals)),
        Some((&"deny", vals)) => Ok((false, vals)),
        _ => Err(ContentLineError(format!(
            "{first} takes `allow` or `deny` first"
        ))),
    }
}

/// `allow`, then the values (`what`, for the error).
fn allow_only<'a, 'b>(
    first: &str,
    args: &'a [&'b str],
    what: &str,
) -> Result<&'a [&'b str], ContentLineError> {
    match args.split_first() {
        Some((&"allow", vals)) => Ok(vals),
        _ => Err(ContentLineError(format!(
            "{first} takes `allow` and {what}"
        ))),
    }
}

/// One whole number from 1 to `max`.
fn number(first: &str, args: &[&str], max: u32) -> Result<u32, ContentLineError> {
    let [word] = args else {
        return Err(ContentLineError(format!("{first} takes one number")));
    };
    match word.parse::<u32>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(ContentLineError(format!(
            "{first} must be a whole number from 1 to {max}, not {word:?}"
        ))),
    }
}

impl ContentLine {
    /// Parses the words of one line (already split on white space). Returns
    /// `Ok(None)` for a line that is not a content line (another kind of
    /// policy line), an error for a content line that does not parse.
    pub fn parse_words(words: &[&str]) -> Result<Option<ContentLine>, ContentLineError> {
        let Some((&first, rest)) = words.split_first() else {
            return Ok(None);
        };
        if !matches!(
            first,
            "daylight-jurisdictions"
                | "daylight-issuers"
                | "daylight-categories"
                | "daylight-offences"
                | "daylight-max-targets"
                | "daylight-max-validity-days"
        ) {
            return Ok(None);
        }
        let (args, agency) = match rest.iter().position(|w| *w == "for") {
            Some(p) => match &rest[p + 1..] {
                [name] => (&rest[..p], Some((*name).to_string())),
                _ => {
                    return Err(ContentLineError(
                        "`for` takes exactly one agency key name, at the end".into(),
                    ))
                }
            },
            None => (rest, None),
        };
        let rule = match first {
            "daylight-jurisdictions" => {
                let (allow, vals) = mode(first, args)?;
                let codes = vals
                    .iter()
                    .map(|c| {
                        Jurisdiction::new(c)
                            .map_err(|e| ContentLineError(format!("jurisdiction {c:?}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if codes.is_empty() {
                    return Err(ContentLineError("no jurisdiction given".into()));
                }
                if allow {
                    Rule::AllowJurisdictions(codes)
                } else {
                    Rule::DenyJurisdictions(codes)
                }
            }
            "daylight-issuers" => Rule::AllowIssuers(list(
                allow_only(first, args, "issuer types")?,
                "issuer type",
            )?),
            "daylight-categories" => {
                let (allow, vals) = mode(first, args)?;
                let cats = list(vals, "data category")?;
                if allow {
                    Rule::AllowCategories(cats)
                } else {
                    Rule::DenyCategories(cats)
                }
            }
            "daylight-offences" => {
                Rule::AllowOffences(list(allow_only(first, args, "offence codes")?, "offence")?)
            }
            "daylight-max-targets" => Rule::MaxTargets(number(first, args, 10_000)?),
            _ => Rule::MaxValidityDays(number(first, args, MAX_VALIDITY_DAYS)?),
        };
        Ok(Some(ContentLine { rule, agency }))
    }

    /// Parses one line of text (a content line, or an error).
    pub fn parse(line: &str) -> Result<ContentLine, ContentLineError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        ContentLine::parse_words(&words)?
            .ok_or_else(|| ContentLineError(format!("{line:?} is not a content line")))
    }

    /// Whether the line applies to requests signed by `agency` (a key name).
    pub fn applies_to(&self, agency: &str) -> bool {
        self.agency.as_deref().is_none_or(|a| a == agency)
    }

    /// Checks a request or emergency against this line (anything else passes).
    pub fn check(&self, record: &SignedRecord) -> Result<(), ContentRefusal> {
        RequestContent::of(record).map_or(Ok(()), |c| self.check_content(&c))
    }

    /// Checks what a request or emergency asks against this line: the one
    /// evaluation, for those who hold the fields rather than the record
    /// (the auditor keeps them from the log's entries).
    pub fn check_content(&self, a: &RequestContent) -> Result<(), ContentRefusal> {
        let refuse = |reason: RefusalReason, detail: String| Err(ContentRefusal { reason, detail });
        match &self.rule {
            Rule::AllowJurisdictions(codes) => {
                if !codes.iter().any(|c| covers(c, &a.jurisdiction)) {
                    return refuse(
                        RefusalReason::JurisdictionNotAllowed,
                        format!(
                            "jurisdiction {} is not among those this provider serves",
                            a.jurisdiction
                        ),
                    );
                }
            }
            Rule::DenyJurisdictions(codes) => {
                if let Some(c) = codes.iter().find(|c| covers(c, &a.jurisdiction)) {
                    return refuse(
                        RefusalReason::JurisdictionDenied,
                        format!(
                            "this provider refuses requests from {c} (request: {})",
                            a.jurisdiction
                        ),
                    );
                }
            }
            Rule::AllowIssuers(types) => {
                if !types.contains(&a.issuer) {
                    return refuse(
                        RefusalReason::IssuerNotAllowed,
                        format!(
                            "issued by an authority of type {}, not one of {}",
                            a.issuer,
                            join(types)
                        ),
                    );
                }
            }
            Rule::AllowCategories(cats) => {
                if let Some(c) = a.categories.iter().find(|c| !cats.contains(c)) {
                    return refuse(
                        RefusalReason::CategoryNotAllowed,
                        format!("asks for {c}, which this provider does not release"),
                    );
                }
            }
            Rule::DenyCategories(cats) => {
                if let Some(c) = a.categories.iter().find(|c| cats.contains(c)) {
                    return refuse(
                        RefusalReason::CategoryDenied,
                        format!("asks for {c}, which this provider refuses"),
                    );
                }
            }
            Rule::AllowOffences(offences) => {
                if !offences.contains(&a.offence) {
                    return refuse(
                        RefusalReason::OffenceNotAllowed,
                        format!(
                            "offence {} is not one this provider releases for",
                            a.offence
                        ),
                    );
                }
            }
            Rule::MaxTargets(n) => {
                if a.targets > *n {
                    return refuse(
                        RefusalReason::TooManyTargets,
                        format!(
                            "{} targets; this provider takes at most {n} per request",
                            a.targets
                        ),
                    );
                }
            }
            Rule::MaxValidityDays(n) => {
                let days = (a.valid_until - a.valid_from).num_seconds() as f64 / 86_400.0;
                if days > f64::from(*n) {
                    return refuse(
                        RefusalReason::ValidityTooLong,
                        format!("valid for {days:.1} days; this provider allows at most {n}"),
                    );
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for ContentLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match &self.rule {
            Rule::AllowJurisdictions(c) => format!("daylight-jurisdictions allow {}", join(c)),
            Rule::DenyJurisdictions(c) => format!("daylight-jurisdictions deny {}", join(c)),
            Rule::AllowIssuers(t) => format!("daylight-issuers allow {}", join(t)),
            Rule::AllowCategories(c) => format!("daylight-categories allow {}", join(c)),
            Rule::DenyCategories(c) => format!("daylight-categories deny {}", join(c)),
            Rule::AllowOffences(o) => format!("daylight-offences allow {}", join(o)),
            Rule::MaxTargets(n) => format!("daylight-max-targets {n}"),
            Rule::MaxValidityDays(n) => format!("daylight-max-validity-days {n}"),
        };
        match &self.agency {
            Some(a) => write!(f, "{text} for {a}"),
            None => f.write_str(&text),
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a policy's code covers a request's jurisdiction: equal, or the
/// request's subdivision lies in the policy's country.
fn covers(policy: &Jurisdiction, request: &Jurisdiction) -> bool {
    let (p, r) = (policy.to_string(), request.to_string());
    p == r || (!p.contains('-') && r.split('-').next() == Some(p.as_str()))
}

/// What the content lines look at in a request or emergency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContent {
    /// Where it was issued.
    pub jurisdiction: Jurisdiction,
    /// The issuing authority's type.
    pub issuer: IssuerType,
    /// The data categories asked for.
    pub categories: Vec<DataCategory>,
    /// The offence.
    pub offence: Offence,
    /// How many targets.
    pub targets: u32,
    /// Start of the validity window.
    pub valid_from: chrono::DateTime<chrono::Utc>,
    /// End of the validity window.
    pub valid_until: chrono::DateTime<chrono::Utc>,
}

/// The content of a request or emergency body: the two kinds hold these
/// fields under the same names.
macro_rules! request_content {
    ($b:expr) => {
        RequestContent {
            jurisdiction: $b.jurisdiction.clone(),
            issuer: $b.issuing_authority.issuer_type,
            categories: $b.data_categories.iter().copied().collect(),
            offence: $b.offence,
            targets: $b.target_count,
            valid_from: $b.valid_from.get(),
            valid_until: $b.valid_until.get(),
        }
    };
}

impl RequestContent {
    /// The content of a request or emergency record; `None` for other kinds.
    pub fn of(record: &SignedRecord) -> Option<RequestContent> {
        RequestContent::of_body(record.body())
    }

    /// The content of a request or emergency body; `None` for other kinds.
    pub fn of_body(body: &Body) -> Option<RequestContent> {
        match body {
            Body::Request(b) => Some(RequestContent::of_request(b)),
            Body::Emergency(b) => Some(RequestContent::of_emergency(b)),
            _ => None,
        }
    }

    /// The content of a request.
    pub fn of_request(b: &RequestBody) -> RequestContent {
        request_content!(b)
    }

    /// The content of an emergency.
    pub fn of_emergency(b: &EmergencyBody) -> RequestContent {
        request_content!(b)
    }
}

/// A set of content lines: a provider's standards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentPolicy {
    /// The lines, in the order written.
    pub lines: Vec<ContentLine>,
}

impl ContentPolicy {
    /// Checks a request or emergency signed by `agency` (its key name)
    /// against every line that applies to it; the first refusal, in line order.
    pub fn check(&self, record: &SignedRecord, agency: &str) -> Result<(), ContentRefusal> {
        RequestContent::of(record).map_or(Ok(()), |c| self.check_content(&c, agency))
    }

    /// [`ContentPolicy::check`] on a request's content rather than its record.
    pub fn check_content(
        &self,
        content: &RequestContent,
        agency: &str,
    ) -> Result<(), ContentRefusal> {
        self.lines
            .iter()
            .filter(|l| l.applies_to(agency))
            .try_for_each(|l| l.check_content(content))
    }

    /// Parses content lines, one per line; blank lines and `#` comments are
    /// skipped, any other line must be a content line.
    pub fn parse(text: &str) -> Result<ContentPolicy, ContentLineError> {
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            lines.push(
                ContentLine::parse(line)
                    .map_err(|e| ContentLineError(format!("line {}: {e}", n + 1)))?,
            );
        }
        Ok(ContentPolicy { lines })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_parse_print_and_refuse_what_is_wrong() {
        for good in [
            "daylight-jurisdictions allow US DE FR-75",
            "daylight-jurisdictions deny RU for agency.example",
            "daylight-issuers allow court",
            "daylight-categories allow content traffic",
            "daylight-categories deny device_unlock",
            "daylight-offences allow terrorism homicide",
            "daylight-max-targets 5",
            "daylight-max-validity-days 90 for agency.example",
        ] {
            let l = ContentLine::parse(good).unwrap();
            assert_eq!(l.to_string(), good);
        }
        for bad in [
            "daylight-jurisdictions allow",
            "daylight-jurisdictions allow XX",
            "daylight-jurisdictions maybe US",
            "daylight-issuers deny court",
            "daylight-categories allow thoughts",
            "daylight-offences allow jaywalking",
            "daylight-max-targets 0",
            "daylight-max-targets many",
            "daylight-max-validity-days 99999",
            "daylight-max-targets 5 for",
            "daylight-max-targets 5 for a b",
        ] {
            assert!(ContentLine::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ContentLine::parse_words(&["witness", "w", "k"]).unwrap(),
            None
        );
    }

    #[test]
    fn content_is_checked_by_the_lines_that_apply_to_its_agency() {
        let t = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let content = RequestContent {
            jurisdiction: Jurisdiction::new("US-CA").unwrap(),
            issuer: IssuerType::Court,
            categories: vec![DataCategory::Content],
            offence: Offence::Homicide,
            targets: 6,
            valid_from: t,
            valid_until: t + chrono::Duration::days(30),
        };
        let policy = ContentPolicy::parse(
            "daylight-jurisdictions allow US\ndaylight-max-targets 5 for strict.example\n",
        )
        .unwrap();
        assert_eq!(policy.check_content(&content, "lenient.example"), Ok(()));
        let refused = policy
            .check_content(&content, "strict.example")
            .unwrap_err();
        assert_eq!(refused.reason, RefusalReason::TooManyTargets);
        let abroad = RequestContent {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            ..content
        };
        assert_eq!(
            policy
                .check_content(&abroad, "lenient.example")
                .unwrap_err()
                .reason,
            RefusalReason::JurisdictionNotAllowed
        );
    }

    #[test]
    fn countries_cover_their_subdivisions_only() {
        let j = |s: &str| Jurisdiction::new(s).unwrap();
        assert!(covers(&j("US"), &j("US-CA")));
        assert!(covers(&j("US-CA"), &j("US-CA")));
        assert!(!covers(&j("US-CA"), &j("US")));
        assert!(!covers(&j("US-CA"), &j("US-NY")));
        assert!(!covers(&j("GB"), &j("US")));
    }
}
