//! Why a record, draft or opening was refused: one variant per rule, each with
//! a stable machine code ([`SchemaError::code`]).

use std::fmt::Display;

/// Why a record, draft or opening was refused.
///
/// Every variant has a stable machine code, [`SchemaError::code`], that
/// services put in their error answers (`{"error": code, "detail": text}`);
/// the `Display` text is the human detail and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// `too_large`: the encoded record is longer than an entry may be (65535 bytes).
    #[error("record is {0} bytes; an entry is at most 65535")]
    TooLarge(usize),
    /// `malformed`: not JSON, or a value of the wrong type or shape.
    #[error("malformed: {0}")]
    Malformed(String),
    /// `noncanonical`: well-formed, but not the one canonical encoding
    /// (whitespace, key order, escapes, duplicate keys, number forms, unsorted sets, `null` for an absent field).
    #[error("not in canonical form: {0}")]
    NonCanonical(String),
    /// `unknown_field`: a field this schema version does not define.
    #[error("unknown field: {0}")]
    UnknownField(String),
    /// `missing_field`: a required field is absent.
    #[error("missing field: {0}")]
    MissingField(String),
    /// `unknown_version`: a schema version this code does not speak.
    #[error("unknown schema version {0} (this code speaks versions 1 and 2)")]
    UnknownVersion(String),
    /// `unknown_kind`: a record kind that does not exist.
    #[error("unknown record kind {0:?}")]
    UnknownKind(String),
    /// `bad_time`: a time that is not `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
    #[error("bad time: {0}")]
    BadTime(String),
    /// `bad_text`: a text field that is empty, too long, has control characters or surrounding spaces.
    #[error("bad text: {0}")]
    BadText(String),
    /// `bad_key`: a key name, key ID or verifier key that does not parse, or is not an Ed25519 note key.
    #[error("bad key: {0}")]
    BadKey(String),
    /// `unknown_code`: a value outside one of the closed code lists (offence, issuer type, reason, ...).
    #[error("unknown code: {0}")]
    UnknownCode(String),
    /// `unknown_data_category`: a data category outside the closed set.
    #[error("unknown data category {0}")]
    UnknownDataCategory(String),
    /// `no_data_categories`: a request names no data category.
    #[error("a request must name at least one data category")]
    NoDataCategories,
    /// `bad_country_code`: a jurisdiction that is not an assigned ISO 3166-1 alpha-2 code
    /// (optionally followed by an ISO 3166-2 style subdivision, `US-CA`).
    #[error("bad country code: {0}")]
    BadCountryCode(String),
    /// `dates_out_of_order`: times that contradict each other (e.g. valid-from after valid-until).
    #[error("dates out of order: {0}")]
    DatesOutOfOrder(String),
    /// `sealed_before_valid_until`: a record would be unsealed while access is still authorised.
    #[error("sealed_until {sealed_until} is before valid_until {valid_until}")]
    SealedBeforeValidUntil {
        /// The record's sealed-until time.
        sealed_until: String,
        /// The record's valid-until time.
        valid_until: String,
    },
    /// `emergency_deadline_too_long`: an emergency's ratify-by deadline is further from its creation than allowed.
    #[error("emergency must be ratified within {max_hours} hours of its creation; ratify_by is {hours} hours after")]
    EmergencyDeadlineTooLong {
        /// The hours asked for (rounded up).
        hours: i64,
        /// The maximum.
        max_hours: i64,
    },
    /// `target_count_mismatch`: the declared number of targets differs from the number of commitments.
    #[error("target_count is {target_count} but there are {commitments} target commitments")]
    TargetCountMismatch {
        /// The declared number.
        target_count: u64,
        /// The commitments present.
        commitments: usize,
    },
    /// `no_targets`: a request with no targets, or a release of zero targets.
    #[error("no targets: {0}")]
    NoTargets(String),
    /// `bad_target`: a target identifier in a draft or opening that is empty, too long,
    /// has control characters or surrounding spaces, or is repeated.
    #[error("bad target identifier: {0}")]
    BadTarget(String),
    /// `inconsistent_outcome`: an outcome report contradicts itself.
    #[error("inconsistent outcome: {0}")]
    InconsistentOutcome(String),
    /// `duplicate_disclosure_item`: a disclosure opens or withholds the same item twice.
    #[error("disclosure names {0} twice")]
    DuplicateDisclosureItem(String),
    /// `empty_disclosure`: a disclosure neither opens nor withholds anything.
    #[error("disclosure opens and withholds nothing")]
    EmptyDisclosure,
    /// `reference_not_backwards`: a record refers to its own index or a later one.
    #[error("reference to entry {reference} does not point before this entry ({index})")]
    ReferenceNotBackwards {
        /// The index referred to.
        reference: u64,
        /// The index this record has (or would have).
        index: u64,
    },
    /// `reference_unknown`: the log has no entry at a referenced (earlier) index.
    #[error("referenced entry {0} is not in the log")]
    ReferenceUnknown(u64),
    /// `reference_hash_mismatch`: the referenced entry's leaf hash is not the one named.
    #[error("entry {index} has another leaf hash than the one referenced")]
    ReferenceHashMismatch {
        /// The index referred to.
        index: u64,
    },
    /// `signer_mismatch`: the verifier key given is not the record's signer (name, key ID, or not an Ed25519 note key).
    #[error("signer mismatch: {0}")]
    SignerMismatch(String),
    /// `bad_signature`: the signature does not verify under the signer's key.
    #[error("signature does not verify")]
    BadSignature,
    /// `wrong_kind`: an operation that needs another kind of record.
    #[error("wrong kind of record: {0}")]
    WrongKind(String),
    /// `target_not_in_opening`: the opening has no such target identifier.
    #[error("the opening does not contain that target")]
    TargetNotInOpening,
    /// `opening_mismatch`: an opening does not open the record's commitment, or is for another entry.
    #[error("opening does not match: {0}")]
    OpeningMismatch(String),
    /// `bad_randomness`: the salt source gave an all-zero or repeated salt.
    #[error("the random source gave an all-zero or repeated salt")]
    BadRandomness,
    /// `wrong_log`: the record is bound to another log (its `log` member
    /// names another origin), so this log must not take or vouch for it.
    #[error("record is for log {record_log:?}, not {log:?}")]
    WrongLog {
        /// The origin the record names.
        record_log: String,
        /// The origin of the log it was offered to.
        log: String,
    },
    /// `unbound_record`: a version-1 record, which names no log; logs keep
    /// the ones they hold but take no new ones (they could be replayed from
    /// any other log).
    #[error("version-1 records name no log and are no longer accepted; sign version {0}")]
    UnboundRecord(u64),
    /// `bad_registry_entry`: a registry entry whose fields do not fit its
    /// action and role (a rotation without the key it replaces, a witness
    /// without a URL, a log key added instead of rotated, ...).
    #[error("bad registry entry: {0}")]
    BadRegistryEntry(String),
    /// `bad_policy_line`: a published policy with no lines, too many, or a
    /// line that is not a content line.
    #[error("bad policy line: {0}")]
    BadPolicyLine(String),
}

impl SchemaError {
    /// The stable machine code of this error (`snake_case`, never changes meaning).
    pub fn code(&self) -> &'static str {
        match self {
            SchemaError::TooLarge(_) => "too_large",
            SchemaError::Malformed(_) => "malformed",
            SchemaError::NonCanonical(_) => "noncanonical",
            SchemaError::UnknownField(_) => "unknown_field",
            SchemaError::MissingField(_) => "missing_field",
            SchemaError::UnknownVersion(_) => "unknown_version",
            SchemaError::UnknownKind(_) => "unknown_kind",
            SchemaError::BadTime(_) => "bad_time",
            SchemaError::BadText(_) => "bad_text",
            SchemaError::BadKey(_) => "bad_key",
            SchemaError::UnknownCode(_) => "unknown_code",
            SchemaError::UnknownDataCategory(_) => "unknown_data_category",
            SchemaError::NoDataCategories => "no_data_categories",
            SchemaError::BadCountryCode(_) => "bad_country_code",
            SchemaError::DatesOutOfOrder(_) => "dates_out_of_order",
            SchemaError::SealedBeforeValidUntil { .. } => "sealed_before_valid_until",
            SchemaError::EmergencyDeadlineTooLong { .. } => "emergency_deadline_too_long",
            SchemaError::TargetCountMismatch { .. } => "target_count_mismatch",
            SchemaError::NoTargets(_) => "no_targets",
            SchemaError::BadTarget(_) => "bad_target",
            SchemaError::InconsistentOutcome(_) => "inconsistent_outcome",
            SchemaError::DuplicateDisclosureItem(_) => "duplicate_disclosure_item",
            SchemaError::EmptyDisclosure => "empty_disclosure",
            SchemaError::ReferenceNotBackwards { .. } => "reference_not_backwards",
            SchemaError::ReferenceUnknown(_) => "reference_unknown",
            SchemaError::ReferenceHashMismatch { .. } => "reference_hash_mismatch",
            SchemaError::SignerMismatch(_) => "signer_mismatch",
            SchemaError::BadSignature => "bad_signature",
            SchemaError::WrongKind(_) => "wrong_kind",
            SchemaError::TargetNotInOpening => "target_not_in_opening",
            SchemaError::OpeningMismatch(_) => "opening_mismatch",
            SchemaError::BadRandomness => "bad_randomness",
            SchemaError::WrongLog { .. } => "wrong_log",
            SchemaError::UnboundRecord(_) => "unbound_record",
            SchemaError::BadRegistryEntry(_) => "bad_registry_entry",
            SchemaError::BadPolicyLine(_) => "bad_policy_line",
        }
    }

    /// Every machine code, for documentation and tests.
    pub const ALL_CODES: &'static [&'static str] = &[
        "too_large",
        "malformed",
        "noncanonical",
        "unknown_field",
        "missing_field",
        "unknown_version",
        "unknown_kind",
        "bad_time",
        "bad_text",
        "bad_key",
        "unknown_code",
        "unknown_data_category",
        "no_data_categories",
        "bad_country_code",
        "dates_out_of_order",
        "sealed_before_valid_until",
        "emergency_deadline_too_long",
        "target_count_mismatch",
        "no_targets",
        "bad_target",
        "inconsistent_outcome",
        "duplicate_disclosure_item",
        "empty_disclosure",
        "reference_not_backwards",
        "reference_unknown",
        "reference_hash_mismatch",
        "signer_mismatch",
        "bad_signature",
        "wrong_kind",
        "target_not_in_opening",
        "opening_mismatch",
        "bad_randomness",
        "wrong_log",
        "unbound_record",
        "bad_registry_entry",
        "bad_policy_line",
    ];

    /// Maps a serde error to the variant it stands for. Our own deserializers
    /// put a tag (see [`de_error`]) in front of their message; serde's own
    /// messages for unknown and missing fields are recognised by their wording.
    pub(crate) fn from_serde(err: &serde_json::Error) -> SchemaError {
        let msg = err.to_string();
        if let Some(rest) = msg.strip_prefix(TAG_OPEN) {
            if let Some((code, detail)) = rest.split_once(TAG_CLOSE) {
                let detail = detail.to_owned();
                return match code {
                    "bad_time" => SchemaError::BadTime(detail),
                    "bad_text" => SchemaError::BadText(detail),
                    "bad_key" => SchemaError::BadKey(detail),
                    "unknown_code" => SchemaError::UnknownCode(detail),
                    "unknown_data_category" => SchemaError::UnknownDataCategory(detail),
                    "bad_country_code" => SchemaError::BadCountryCode(detail),
                    "bad_target" => SchemaError::BadTarget(detail),
                    "unknown_version" => SchemaError::UnknownVersion(detail),
                    "unknown_kind" => SchemaError::UnknownKind(detail),
                    _ => SchemaError::Malformed(detail),
                };
            }
        }
        if let Some(rest) = msg.strip_prefix("unknown field ") {
            return SchemaError::UnknownField(field_name(rest));
        }
        if let Some(rest) = msg.strip_prefix("missing field ") {
            return SchemaError::MissingField(field_name(rest));
        }
        if let Some(rest) = msg.strip_prefix("duplicate field ") {
            return SchemaError::NonCanonical(format!("duplicate key {}", field_name(rest)));
        }
        SchemaError::Malformed(msg)
    }
}

/// The field name out of serde's "`name`, expected ..." wording.
fn field_name(rest: &str) -> String {
    let name = rest
        .strip_prefix('`')
        .and_then(|r| r.split_once('`'))
        .map(|(name, _)| name)
        .unwrap_or(rest);
    name.chars().take(100).collect()
}

const TAG_OPEN: &str = "\u{2039}";
const TAG_CLOSE: &str = "\u{203a} ";

/// A serde error that [`SchemaError::from_serde`] maps back to the variant
/// named by `code`.
pub(crate) fn de_error<E: serde::de::Error>(code: &str, detail: impl Display) -> E {
    E::custom(format_args!("{TAG_OPEN}{code}{TAG_CLOSE}{detail}"))
}

/// Shortens outside text for an error message.
pub(crate) fn clip(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if text.chars().nth(80).is_some() {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_listed_and_snake_case() {
        let s = String::new;
        let every = [
            SchemaError::TooLarge(0),
            SchemaError::Malformed(s()),
            SchemaError::NonCanonical(s()),
            SchemaError::UnknownField(s()),
            SchemaError::MissingField(s()),
            SchemaError::UnknownVersion(s()),
            SchemaError::UnknownKind(s()),
            SchemaError::BadTime(s()),
            SchemaError::BadText(s()),
            SchemaError::BadKey(s()),
            SchemaError::UnknownCode(s()),
            SchemaError::UnknownDataCategory(s()),
            SchemaError::NoDataCategories,
            SchemaError::BadCountryCode(s()),
            SchemaError::DatesOutOfOrder(s()),
            SchemaError::SealedBeforeValidUntil {
                sealed_until: s(),
                valid_until: s(),
            },
            SchemaError::EmergencyDeadlineTooLong {
                hours: 0,
                max_hours: 0,
            },
            SchemaError::TargetCountMismatch {
                target_count: 0,
                commitments: 0,
            },
            SchemaError::NoTargets(s()),
            SchemaError::BadTarget(s()),
            SchemaError::InconsistentOutcome(s()),
            SchemaError::DuplicateDisclosureItem(s()),
            SchemaError::EmptyDisclosure,
            SchemaError::ReferenceNotBackwards {
                reference: 0,
                index: 0,
            },
            SchemaError::ReferenceUnknown(0),
            SchemaError::ReferenceHashMismatch { index: 0 },
            SchemaError::SignerMismatch(s()),
            SchemaError::BadSignature,
            SchemaError::WrongKind(s()),
            SchemaError::TargetNotInOpening,
            SchemaError::OpeningMismatch(s()),
            SchemaError::BadRandomness,
            SchemaError::WrongLog {
                record_log: s(),
                log: s(),
            },
            SchemaError::UnboundRecord(2),
            SchemaError::BadRegistryEntry(s()),
            SchemaError::BadPolicyLine(s()),
        ];
        let codes: Vec<&str> = every.iter().map(SchemaError::code).collect();
        assert_eq!(codes, SchemaError::ALL_CODES);
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "codes are unique");
        for c in codes {
            assert!(
                c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
        }
    }

    #[test]
    fn tagged_serde_errors_map_back() {
        let e: serde_json::Error = de_error("bad_country_code", "XX: not assigned");
        assert_eq!(
            SchemaError::from_serde(&e),
            SchemaError::BadCountryCode("XX: not assigned".into())
        );
        let e: serde_json::Error = serde::de::Error::custom("something else");
        assert_eq!(SchemaError::from_serde(&e).code(), "malformed");
    }
}
