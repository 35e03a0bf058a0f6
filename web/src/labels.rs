//! Plain-language names for the codes records use.

use daylight_schemas::{Kind, RegistryAction, Role};

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
