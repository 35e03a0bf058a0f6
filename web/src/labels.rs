//! Plain-language names for the codes records use.

use daylight_schemas::content_policy::{ContentLine, Rule};
use daylight_schemas::{Kind, RefusalReason, RegistryAction, Role};

/// A kind, in words.
pub fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Request => "Request (court order)",
        Kind::Emergency => "Emergency request",
        Kind::Ratification => "Court ratification",
        Kind::Extension => "Seal extension",
        Kind::Disclosure => "Disclosure",
        Kind::Release => "Release by provider",
        Kind::Withdrawal => "Withdrawal",
        Kind::Outcome => "Outcome report",
        Kind::Registry => "Key registry change",
        Kind::Refusal => "Refusal by provider",
        Kind::Policy => "Provider's published standards",
    }
}

/// One sentence on what a kind of entry means.
pub fn kind_explained(k: Kind) -> &'static str {
    match k {
        Kind::Request => "An authority asked a provider for exceptional access to someone's data under a court or other order.",
        Kind::Emergency => "An authority asked for access before any court order, claiming an emergency; a court must ratify it by a deadline.",
        Kind::Ratification => "A court decided whether an earlier emergency request was justified.",
        Kind::Extension => "A court kept the details of an earlier request sealed for longer.",
        Kind::Disclosure => "The details of an earlier request were revealed (or reasons given for keeping parts sealed).",
        Kind::Release => "The provider recorded that it released access for an earlier request.",
        Kind::Withdrawal => "The agency withdrew an earlier entry.",
        Kind::Outcome => "The agency reported what an authorisation led to (data obtained, arrests, convictions).",
        Kind::Registry => "The log operator changed who may sign entries (registered, revoked or replaced a key), changed the log's own key, or changed the witnesses or how many must cosign.",
        Kind::Refusal => "The provider refused an earlier request because of what it asked (its jurisdiction, issuer, data, offence, number of targets or duration), and said why.",
        Kind::Policy => "The provider published the standards its escrow gate enforces on what requests may ask.",
    }
}

/// What a custodian's share release is (threshold custody): the label of
/// a `release` entry that names a share.
pub const SHARE_RELEASE: &str = "Share released by custodian";

/// One sentence on what a custodian's share release means.
pub const SHARE_RELEASE_EXPLAINED: &str = "A custodian recorded that it released its share of one target's escrowed key for an earlier request, after its own gate allowed the request. One share reveals nothing: the key exists again only once enough custodians (the threshold) have each released and logged theirs.";

/// What an entry is, in words: its kind's label ([`kind`]), or for a
/// custodian's share release its own ([`SHARE_RELEASE`]): a share is not
/// the provider's release of access. `None` for an unreadable entry.
pub fn entry_kind(s: &daylight_ledger::Summary) -> Option<&'static str> {
    if s.is_share_release() {
        Some(SHARE_RELEASE)
    } else {
        s.kind.map(kind)
    }
}

/// One sentence on what an entry means ([`kind_explained`], or
/// [`SHARE_RELEASE_EXPLAINED`]).
pub fn entry_explained(s: &daylight_ledger::Summary) -> Option<&'static str> {
    if s.is_share_release() {
        Some(SHARE_RELEASE_EXPLAINED)
    } else {
        s.kind.map(kind_explained)
    }
}

/// A custodian's share, in words: "share 2 of a 2-of-3 key".
pub fn share(s: &daylight_schemas::ShareRef) -> String {
    format!("share {} of a {}-of-{} key", s.index, s.threshold, s.shares)
}

/// A data category, in words.
pub fn category(c: &str) -> &'static str {
    match c {
        "content" => "content (messages, files, calls)",
        "device_unlock" => "device unlock",
        "identification" => "identification only (IP address, time)",
        "location" => "location",
        "stored_keys" => "stored decryption keys",
        "subscriber" => "subscriber data (name, address, payment)",
        "traffic" => "traffic data (who talked to whom, when)",
        _ => "other",
    }
}

/// A code written with underscores, in words (`life_or_safety` -> `life or safety`).
pub fn words(code: &str) -> String {
    code.replace('_', " ")
}

/// Who issued an authorisation, in words.
pub fn issuer(code: &str) -> &'static str {
    match code {
        "agency" => "the agency itself",
        "court" => "a judge or court",
        "executive" => "a minister or other executive authority",
        "prosecutor" => "a public prosecutor",
        _ => "other",
    }
}

/// A registered key's role, in words.
pub fn role(r: Role) -> &'static str {
    match r {
        Role::Agency => "agency",
        Role::Court => "court",
        Role::Provider => "provider",
        Role::Custodian => "custodian",
        Role::Log => "the log itself",
        Role::Witness => "witness",
    }
}

/// A registry action, in words.
pub fn action(a: RegistryAction) -> &'static str {
    match a {
        RegistryAction::Add => "key added",
        RegistryAction::Revoke => "key revoked",
        RegistryAction::Rotate => "key replaced",
        RegistryAction::Quorum => "witness quorum set",
    }
}

/// A refusal reason, in a few words.
pub fn refusal_reason(r: RefusalReason) -> &'static str {
    match r {
        RefusalReason::CategoryNotAllowed => "data category not released",
        RefusalReason::CategoryDenied => "data category refused",
        RefusalReason::IssuerNotAllowed => "issuer not accepted",
        RefusalReason::JurisdictionDenied => "jurisdiction refused",
        RefusalReason::JurisdictionNotAllowed => "jurisdiction not served",
        RefusalReason::OffenceNotAllowed => "offence not accepted",
        RefusalReason::TooManyTargets => "too many targets",
        RefusalReason::ValidityTooLong => "valid for too long",
    }
}

/// A refusal reason, in a sentence.
pub fn refusal_reason_explained(r: RefusalReason) -> &'static str {
    match r {
        RefusalReason::CategoryNotAllowed => "The request asked for a kind of data the provider's standards do not allow it to release.",
        RefusalReason::CategoryDenied => "The request asked for a kind of data the provider's standards say it never releases.",
        RefusalReason::IssuerNotAllowed => "The order was issued by a type of authority the provider does not accept (for example, not by a court).",
        RefusalReason::JurisdictionDenied => "The request came from a jurisdiction the provider refuses.",
        RefusalReason::JurisdictionNotAllowed => "The request came from a jurisdiction the provider does not serve.",
        RefusalReason::OffenceNotAllowed => "The request was for an offence the provider does not release data for.",
        RefusalReason::TooManyTargets => "The request named more targets than the provider takes in one request.",
        RefusalReason::ValidityTooLong => "The request asked for access over a longer period than the provider allows.",
    }
}

fn list<T: std::fmt::Display>(items: &[T], word: impl Fn(&str) -> String) -> String {
    items
        .iter()
        .map(|x| word(&x.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A content line of a provider's standards, in a sentence.
pub fn content_line(line: &ContentLine) -> String {
    let plain = |c: &str| c.to_owned();
    let text = match &line.rule {
        Rule::AllowJurisdictions(j) => format!(
            "Only requests from these jurisdictions: {} (a country covers its regions).",
            list(j, plain)
        ),
        Rule::DenyJurisdictions(j) => format!(
            "Never requests from these jurisdictions: {} (a country covers its regions).",
            list(j, plain)
        ),
        Rule::AllowIssuers(t) => format!(
            "Only orders issued by {}.",
            list(t, |c| issuer(c).to_owned())
        ),
        Rule::AllowCategories(c) => format!(
            "Only requests for these kinds of data: {}.",
            list(c, |c| category(c).to_owned())
        ),
        Rule::DenyCategories(c) => format!(
            "Never requests for these kinds of data: {}.",
            list(c, |c| category(c).to_owned())
        ),
        Rule::AllowOffences(o) => format!("Only for these offences: {}.", list(o, words)),
        Rule::MaxTargets(n) => format!("At most {n} target{} per request.", plural(*n)),
        Rule::MaxValidityDays(n) => {
            format!("Access for at most {n} day{} per request.", plural(*n))
        }
    };
    match &line.agency {
        Some(a) => format!("For requests signed by {a}: {text}"),
        None => text,
    }
}
