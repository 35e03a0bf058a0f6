//! Drafts: what a person writes (`schemas/examples/`). A draft has target
//! identifiers and the order document's hash in the clear, no salts, no
//! creation time and no signature. [`Draft::seal`] draws the salts, replaces
//! the secrets by commitments, signs, and returns the private [`Opening`]
//! beside the signed record.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use daylight_core::SignerKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::commitment::{commit_document, commit_target, DocumentOpening, Opening, TargetOpening};
use crate::error::SchemaError;
use crate::fields::{Commitment, DocumentHash, Salt, TargetId};
use crate::fields::{EntryRef, Timestamp};
use crate::record::{
    Body, DisclosedDocument, DisclosedTarget, DisclosureBody, ExtensionBody, Kind, OutcomeBody,
    PolicyBody, Record, RefusalBody, RegistryBody, ReleaseBody, SignedRecord, WithdrawalBody,
};
pub use crate::record::{EmergencyDraft, RatificationDraft, RequestDraft};

/// Declares a record body and its draft from one list of fields (in
/// `record.rs`), so that adding a field to a kind is one edit. The two
/// differ only where a secret is in the clear (draft) or committed (record).
/// Each field, with its doc comment and attributes, is one of:
///
/// - `name: Type,`: the same in both. The record's doc comment documents
///   both; the draft's schema description is "See [`Body::name`]."
/// - `name: Type => see "; more",`: the same, with more said for the draft.
/// - `name: Type => none,`: the record's only (`target_count`).
/// - `name: Type => { draft_name: DraftType },` (the draft field with its
///   own doc comment and attributes): a secret, committed in the record and
///   in the clear in the draft, in the same position.
///
/// The draft gets `into_body(self, ...)`, which takes the record-only and
/// committed fields in field order and moves the others across.
macro_rules! body_with_draft {
    (
        $(#[$($body_attr:tt)*])* pub struct $body:ident;
        $(#[$($draft_attr:tt)*])* pub struct $draft:ident;
        { $($fields:tt)* }
    ) => {
        $crate::draft::body_with_draft! { @field
            [$body $draft [$(#[$($body_attr)*])*] [$(#[$($draft_attr)*])*]]
            [] [] [] [] []
            $($fields)*
        }
    };
    // A secret: committed in the record, in the clear in the draft.
    (@field $head:tt [$($b:tt)*] [$($d:tt)*] [$($moved:ident)*] [$($given:tt)*] [$($all:ident)*]
        $(#[$($attr:tt)*])* $f:ident: $t:ty => { $(#[$($dattr:tt)*])* $df:ident: $dt:ty }, $($rest:tt)*
    ) => {
        $crate::draft::body_with_draft! { @field $head
            [$($b)* $(#[$($attr)*])* pub $f: $t,]
            [$($d)* $(#[$($dattr)*])* pub $df: $dt,]
            [$($moved)*] [$($given)* $f: $t,] [$($all)* $f]
            $($rest)*
        }
    };
    // The record's only.
    (@field $head:tt [$($b:tt)*] $d:tt $moved:tt [$($given:tt)*] [$($all:ident)*]
        $(#[$($attr:tt)*])* $f:ident: $t:ty => none, $($rest:tt)*
    ) => {
        $crate::draft::body_with_draft! { @field $head
            [$($b)* $(#[$($attr)*])* pub $f: $t,] $d $moved
            [$($given)* $f: $t,] [$($all)* $f]
            $($rest)*
        }
    };
    // The same in both, with more said for the draft.
    (@field [$body:ident $($h:tt)*] [$($b:tt)*] [$($d:tt)*] [$($moved:ident)*] $given:tt [$($all:ident)*]
        $(#[$($attr:tt)*])* $f:ident: $t:ty => see $more:literal, $($rest:tt)*
    ) => {
        $crate::draft::body_with_draft! { @field [$body $($h)*]
            [$($b)* $(#[$($attr)*])* pub $f: $t,]
            [$($d)* $(#[$($attr)*])*
                #[schemars(description = concat!("See [`", stringify!($body), "::", stringify!($f), "`]", $more))]
                pub $f: $t,]
            [$($moved)* $f] $given [$($all)* $f]
            $($rest)*
        }
    };
    // The same in both.
    (@field $head:tt $b:tt $d:tt $moved:tt $given:tt $all:tt
        $(#[$($attr:tt)*])* $f:ident: $t:ty, $($rest:tt)*
    ) => {
        $crate::draft::body_with_draft! { @field $head $b $d $moved $given $all
            $(#[$($attr)*])* $f: $t => see ".", $($rest)*
        }
    };
    (@field [$body:ident $draft:ident [$($body_attr:tt)*] [$($draft_attr:tt)*]]
        [$($b:tt)*] [$($d:tt)*] [$($moved:ident)*] [$($given:tt)*] [$($all:ident)*]
    ) => {
        $($body_attr)*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $body { $($b)* }

        $($draft_attr)*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $draft { $($d)* }

        impl $draft {
            /// The record body: this draft's fields, with the record's own
            /// and the committed ones given.
            pub(crate) fn into_body(self, $($given)*) -> $body {
                let $draft { $($moved,)* .. } = self;
                $body { $($all),* }
            }
        }
    };
}
pub(crate) use body_with_draft;

/// A human-writable draft of any kind: `{"kind": "...", ...fields}`. Kinds
/// with no secrets take their record body's fields as they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // as `Body`: one value per draft, never in bulk
pub enum Draft {
    /// A request draft.
    Request(RequestDraft),
    /// An emergency draft.
    Emergency(EmergencyDraft),
    /// A ratification draft.
    Ratification(RatificationDraft),
    /// An extension: the body as is.
    Extension(ExtensionBody),
    /// A disclosure: the body as is (its openings come from the opening file).
    Disclosure(DisclosureBody),
    /// A release: the body as is.
    Release(ReleaseBody),
    /// A withdrawal: the body as is.
    Withdrawal(WithdrawalBody),
    /// An outcome: the body as is.
    Outcome(OutcomeBody),
    /// A registry change: the body as is.
    Registry(RegistryBody),
    /// A provider's refusal: the body as is.
    Refusal(RefusalBody),
    /// A provider's published content lines: the body as is.
    Policy(PolicyBody),
}

/// Draws salts, refusing an all-zero or repeated one (a broken source).
struct Salts<'a> {
    rng: &'a mut dyn FnMut(&mut [u8]),
    seen: Vec<[u8; 32]>,
}

impl Salts<'_> {
    fn next(&mut self) -> Result<Salt, SchemaError> {
        let mut s = [0u8; 32];
        (self.rng)(&mut s);
        if s == [0u8; 32] || self.seen.contains(&s) {
            return Err(SchemaError::BadRandomness);
        }
        self.seen.push(s);
        Ok(Salt(s))
    }
}

fn commit_targets(
    targets: &[TargetId],
    salts: &mut Salts<'_>,
) -> Result<(Vec<Commitment>, Vec<TargetOpening>), SchemaError> {
    if targets.is_empty() {
        return Err(SchemaError::NoTargets(
            "a draft names at least one target".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut commitments = Vec::with_capacity(targets.len());
    let mut openings = Vec::with_capacity(targets.len());
    for t in targets {
        if !seen.insert(t) {
            return Err(SchemaError::BadTarget(format!(
                "{:?} is listed twice",
                t.as_str()
            )));
        }
        let salt = salts.next()?;
        commitments.push(commit_target(&salt, t));
        openings.push(TargetOpening {
            target: t.clone(),
            salt,
        });
    }
    Ok((commitments, openings))
}

fn commit_doc(
    sha256: &DocumentHash,
    salts: &mut Salts<'_>,
) -> Result<(Commitment, DocumentOpening), SchemaError> {
    let salt = salts.next()?;
    Ok((
        commit_document(&salt, sha256),
        DocumentOpening {
            sha256: *sha256,
            salt,
        },
    ))
}

impl Draft {
    /// Reads a draft (JSON; white space and member order free, unknown members refused).
    pub fn from_json(text: &str) -> Result<Draft, SchemaError> {
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            if msg.starts_with("unknown variant") {
                SchemaError::UnknownKind(msg)
            } else {
                SchemaError::from_serde(&e)
            }
        })
    }

    /// The kind of record this draft becomes.
    pub fn kind(&self) -> Kind {
        match self {
            Draft::Request(_) => Kind::Request,
            Draft::Emergency(_) => Kind::Emergency,
            Draft::Ratification(_) => Kind::Ratification,
            Draft::Extension(_) => Kind::Extension,
            Draft::Disclosure(_) => Kind::Disclosure,
            Draft::Release(_) => Kind::Release,
            Draft::Withdrawal(_) => Kind::Withdrawal,
            Draft::Outcome(_) => Kind::Outcome,
            Draft::Registry(_) => Kind::Registry,
            Draft::Refusal(_) => Kind::Refusal,
            Draft::Policy(_) => Kind::Policy,
        }
    }

    /// Turns the draft into a record signed by `key`, created at `created`:
    /// draws a fresh 32-byte salt from `rng` for each secret, replaces the
    /// secrets by commitments, applies the context-free rules, and signs
    /// for the log whose origin is `log`.
    /// Returns the record (the log entry; no secret in it) and the private
    /// opening (for the provider; never logged). The opening of a kind with
    /// no secrets is empty.
    ///
    /// `rng` must fill its buffer with cryptographically secure random
    /// bytes (the binary passes getrandom); the library does no I/O.
    pub fn seal(
        &self,
        key: &SignerKey,
        log: &str,
        created: DateTime<Utc>,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(SignedRecord, Opening), SchemaError> {
        let mut salts = Salts {
            rng,
            seen: Vec::new(),
        };
        let mut target_openings = Vec::new();
        let mut doc_opening = None;
        let body = match self {
            Draft::Request(d) => {
                let (targets, openings) = commit_targets(&d.targets, &mut salts)?;
                let (order_document, doc) = commit_doc(&d.order_document_sha256, &mut salts)?;
                target_openings = openings;
                doc_opening = Some(doc);
                let target_count = count(&targets)?;
                Body::Request(d.clone().into_body(target_count, targets, order_document))
            }
            Draft::Emergency(d) => {
                let (targets, openings) = commit_targets(&d.targets, &mut salts)?;
                target_openings = openings;
                let order_document = match &d.order_document_sha256 {
                    Some(h) => {
                        let (c, doc) = commit_doc(h, &mut salts)?;
                        doc_opening = Some(doc);
                        Some(c)
                    }
                    None => None,
                };
                let target_count = count(&targets)?;
                Body::Emergency(d.clone().into_body(target_count, targets, order_document))
            }
            Draft::Ratification(d) => {
                let (order_document, doc) = commit_doc(&d.order_document_sha256, &mut salts)?;
                doc_opening = Some(doc);
                Body::Ratification(d.clone().into_body(order_document))
            }
            Draft::Extension(b) => Body::Extension(b.clone()),
            Draft::Disclosure(b) => Body::Disclosure(b.clone()),
            Draft::Release(b) => Body::Release(b.clone()),
            Draft::Withdrawal(b) => Body::Withdrawal(b.clone()),
            Draft::Outcome(b) => Body::Outcome(b.clone()),
            Draft::Registry(b) => Body::Registry(b.clone()),
            Draft::Refusal(b) => Body::Refusal(b.clone()),
            Draft::Policy(b) => Body::Policy(b.clone()),
        };
        let record = Record::new(created, body)?;
        let signed = record.sign(key, log)?;
        let opening = Opening {
            version: 1,
            kind: signed.kind(),
            entry_leaf_hash: signed.leaf_hash(),
            created: signed.created(),
            targets: target_openings,
            order_document: doc_opening,
        };
        Ok((signed, opening))
    }
}

fn count(targets: &[Commitment]) -> Result<u32, SchemaError> {
    u32::try_from(targets.len()).map_err(|_| SchemaError::TooLarge(usize::MAX))
}

// ---------------------------------------------------------------------------
// Example drafts, dated around a given time

/// The leaf hash an example draft names when it is not told which earlier
/// entry it refers to: all zeros. No entry has it (it would take a SHA-256
/// preimage), so a draft still holding it is caught before it is submitted
/// ([`Draft::placeholder_references`]).
pub const PLACEHOLDER_LEAF_HASH: daylight_core::Hash = daylight_core::Hash([0; 32]);

/// The target identifiers example drafts name: plainly not real accounts.
pub const EXAMPLE_TARGETS: [&str; 2] = ["acct:example-target-1", "acct:example-target-2"];

/// The provider example drafts address unless told another.
pub const EXAMPLE_PROVIDER: &str = "messenger.example";

impl Draft {
    /// A valid draft of `kind` for a record created at `now` (pure: the
    /// caller passes the time). Dates are relative to `now`: a request is
    /// valid from the start of yesterday (UTC) for 30 days and sealed for a
    /// year; an emergency runs three days from the current hour and must be
    /// ratified within 24 hours (the limit is [`crate::MAX_RATIFY_HOURS`]);
    /// an extension seals for two more years; a release happened at the
    /// current minute. Targets are `acct:example-target-N`, the provider is
    /// `provider`, authorities and case references say "Example".
    ///
    /// Kinds that refer to an earlier entry (ratification, extension,
    /// disclosure, release, withdrawal, outcome) refer to `entry`, or without
    /// it to index 0 with [`PLACEHOLDER_LEAF_HASH`], which the person must
    /// replace. A disclosure made here withholds what it cannot open (it has
    /// no salts): see [`Draft::disclosure_from_opening`] to open everything.
    ///
    /// Every draft returned seals at `now` ([`Draft::seal`]). Registry
    /// entries are the log operator's (`daylight log add-agency`, ...): for
    /// [`Kind::Registry`] this returns [`SchemaError::WrongKind`], as it
    /// does for a `now` whose dates would leave the years 1970 to 9999
    /// ([`SchemaError::BadTime`]).
    pub fn example(
        kind: Kind,
        now: DateTime<Utc>,
        entry: Option<EntryRef>,
        provider: &str,
    ) -> Result<Draft, SchemaError> {
        use chrono::{Datelike as _, Duration, Timelike as _};
        use serde_json::json;

        let now = Timestamp::new(now)?.get();
        let day = now
            .with_hour(0)
            .and_then(|t| t.with_minute(0))
            .and_then(|t| t.with_second(0))
            .unwrap_or(now);
        let hour = day + Duration::hours(i64::from(now.hour()));
        let minute = hour + Duration::minutes(i64::from(now.minute()));
        let at = |t: DateTime<Utc>| -> Result<serde_json::Value, SchemaError> {
            Ok(json!(Timestamp::new(t)?.to_string()))
        };
        let reference = entry.unwrap_or(EntryRef::new(
            daylight_core::LeafIndex(0),
            PLACEHOLDER_LEAF_HASH,
        ));
        let reference = json!({
            "index": reference.index.0,
            "leaf_hash": hex::encode(reference.leaf_hash.0),
        });
        let case = |n: u32| format!("EXAMPLE-{}-{n:04}", now.year());
        let value = match kind {
            Kind::Request => json!({
                "kind": "request",
                "jurisdiction": "US",
                "legal_basis": "18 U.S.C. 2518",
                "issuing_authority": {"name": "Example District Court", "type": "court"},
                "provider": provider,
                "data_categories": ["content", "stored_keys", "traffic"],
                "offence": "narcotics",
                "target_type": "account",
                "targets": EXAMPLE_TARGETS,
                "valid_from": at(day - Duration::days(1))?,
                "valid_until": at(day + Duration::days(31))?,
                "sealed_until": at(day + Duration::days(366))?,
                "case_reference": case(1),
                "order_document_sha256": example_document_hash("order"),
            }),
            Kind::Emergency => json!({
                "kind": "emergency",
                "jurisdiction": "US",
                "legal_basis": "18 U.S.C. 2518(7)",
                "issuing_authority": {"name": "Example U.S. Attorney's Office", "type": "prosecutor"},
                "provider": provider,
                "data_categories": ["location", "subscriber"],
                "offence": "kidnapping",
                "target_type": "account",
                "targets": &EXAMPLE_TARGETS[..1],
                "valid_from": at(hour)?,
                "valid_until": at(hour + Duration::days(3))?,
                "sealed_until": at(day + Duration::days(92))?,
                "case_reference": case(2),
                "ground": "life_or_safety",
                // Within the 48-hour limit from any creation in the next 23 hours.
                "ratify_by": at(hour + Duration::hours(24))?,
            }),
            Kind::Ratification => json!({
                "kind": "ratification",
                "emergency": reference,
                "decision": "granted",
                "case_reference": case(3),
                "order_document_sha256": example_document_hash("ratification"),
            }),
            Kind::Extension => json!({
                "kind": "extension",
                "entry": reference,
                "sealed_until": at(day + Duration::days(731))?,
                "reason": "investigation_ongoing",
            }),
            Kind::Disclosure => json!({
                "kind": "disclosure",
                "entry": reference,
                "targets_opened": [],
                "targets_withheld": [{"position": 0, "reason": "third_party_privacy"}],
                "order_document_withheld": "investigation_ongoing",
            }),
            Kind::Release => json!({
                "kind": "release",
                "entry": reference,
                "targets_released": 1,
                "released_at": at(minute)?,
            }),
            Kind::Withdrawal => json!({
                "kind": "withdrawal",
                "entry": reference,
                "reason": "no_longer_needed",
            }),
            Kind::Outcome => json!({
                "kind": "outcome",
                "entry": reference,
                "data_obtained": true,
                "encryption_encountered": true,
                "encryption_prevented_access": false,
                "communications_intercepted": 120,
                "incriminating_communications": 9,
                "persons_intercepted": 3,
                "arrests": 1,
                "convictions": 0,
            }),
            Kind::Refusal => json!({
                "kind": "refusal",
                "entry": reference,
                "reason": "jurisdiction_not_allowed",
                "refused_at": at(minute)?,
            }),
            Kind::Policy => json!({
                "kind": "policy",
                "lines": [
                    "daylight-issuers allow court",
                    "daylight-categories deny device_unlock",
                    "daylight-max-targets 5",
                    "daylight-max-validity-days 90",
                ],
            }),
            Kind::Registry => {
                return Err(SchemaError::WrongKind(
                    "registry entries are the log operator's: `daylight log add-agency`, \
                     `add-court`, `add-provider`, `revoke`, `rotate` write them"
                        .into(),
                ))
            }
        };
        Draft::from_json(&value.to_string())
    }

    /// A disclosure of the entry `entry` that opens every commitment
    /// `opening` holds (its targets, by position, and its order document),
    /// from the opening file `daylight agency submit` wrote for that entry.
    /// Fails with [`SchemaError::OpeningMismatch`] if the opening is for
    /// another entry (its leaf hash differs), [`SchemaError::EmptyDisclosure`]
    /// if it opens nothing.
    pub fn disclosure_from_opening(
        entry: EntryRef,
        opening: &Opening,
    ) -> Result<Draft, SchemaError> {
        if opening.entry_leaf_hash != entry.leaf_hash {
            return Err(SchemaError::OpeningMismatch(format!(
                "the opening is for the entry with leaf hash {}, not {}",
                hex::encode(opening.entry_leaf_hash.0),
                hex::encode(entry.leaf_hash.0)
            )));
        }
        let targets_opened = opening
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(DisclosedTarget {
                    position: u32::try_from(i).map_err(|_| SchemaError::TooLarge(usize::MAX))?,
                    target: t.target.clone(),
                    salt: t.salt,
                })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        let body = DisclosureBody {
            entry,
            targets_opened,
            targets_withheld: Vec::new(),
            order_document_opened: opening.order_document.as_ref().map(|d| DisclosedDocument {
                sha256: d.sha256,
                salt: d.salt,
            }),
            order_document_withheld: None,
        };
        // Positions ascend and nothing is both opened and withheld by
        // construction; what is left of the disclosure rules is emptiness.
        if body.targets_opened.is_empty() && body.order_document_opened.is_none() {
            return Err(SchemaError::EmptyDisclosure);
        }
        Ok(Draft::Disclosure(body))
    }

    /// The earlier entries this draft refers to, in field order.
    pub fn references(&self) -> Vec<EntryRef> {
        match self {
            Draft::Request(_) | Draft::Emergency(_) | Draft::Registry(_) | Draft::Policy(_) => {
                Vec::new()
            }
            Draft::Refusal(b) => vec![b.entry],
            Draft::Ratification(d) => vec![d.emergency],
            Draft::Extension(b) => vec![b.entry],
            Draft::Disclosure(b) => vec![b.entry],
            Draft::Release(b) => vec![b.entry],
            Draft::Withdrawal(b) => vec![b.entry],
            Draft::Outcome(b) => std::iter::once(b.entry).chain(b.amends).collect(),
        }
    }

    /// The references still holding [`PLACEHOLDER_LEAF_HASH`]: the draft
    /// was made without saying which entry it is about.
    pub fn placeholder_references(&self) -> Vec<EntryRef> {
        self.references()
            .into_iter()
            .filter(|r| r.leaf_hash == PLACEHOLDER_LEAF_HASH)
            .collect()
    }
}

/// The SHA-256 of a text saying it is an example, standing for the hash of
/// an order document (`what`) in example drafts.
fn example_document_hash(what: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!(
        "Daylight example {what} document: not a real order\n"
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use daylight_core::{KeyName, KeyType, LeafIndex};

    fn key() -> SignerKey {
        SignerKey::from_seed(
            KeyName::new("agency.example").unwrap(),
            KeyType::Ed25519,
            [7; 32],
        )
    }

    fn rng() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |buf: &mut [u8]| {
            n = n.wrapping_add(1);
            buf.fill(n);
        }
    }

    /// Times an example may be asked for: the edges of a day, of a month,
    /// of a leap year, and far from today.
    fn nows() -> Vec<DateTime<Utc>> {
        [
            "2026-12-04T10:30:15Z",
            "2026-12-31T23:59:59Z",
            "2027-01-01T00:00:00Z",
            "2028-02-29T12:00:00Z",
            "1971-01-01T00:00:00Z",
            "2099-06-30T23:00:01Z",
            "9990-01-01T00:00:00Z",
        ]
        .iter()
        .map(|t| Timestamp::parse(t).unwrap().get())
        .chain([Utc::now()])
        .collect()
    }

    #[test]
    fn every_example_reads_back_and_seals_at_its_time() {
        let entry = EntryRef::new(LeafIndex(5), daylight_core::Hash([9; 32]));
        for now in nows() {
            for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Registry) {
                for reference in [None, Some(entry)] {
                    let draft = Draft::example(kind, now, reference, EXAMPLE_PROVIDER)
                        .unwrap_or_else(|e| panic!("{kind:?} at {now}: {e}"));
                    assert_eq!(draft.kind(), kind);
                    let text = serde_json::to_string_pretty(&draft).unwrap();
                    let read = Draft::from_json(&text).unwrap();
                    assert_eq!(read, draft);
                    let (record, _) = read
                        .seal(&key(), "log.example.org/daylight", now, &mut rng())
                        .unwrap_or_else(|e| panic!("{kind:?} at {now}: {e}\n{text}"));
                    assert_eq!(record.kind(), kind);
                    // Submitted an hour later, it still seals.
                    let later = now + chrono::Duration::hours(1);
                    read.seal(&key(), "log.example.org/daylight", later, &mut rng())
                        .unwrap_or_else(|e| panic!("{kind:?} at {now} + 1 h: {e}"));
                    match reference {
                        Some(r) => {
                            assert!(draft.placeholder_references().is_empty());
                            assert_eq!(draft.references().len(), usize::from(kind_refers(kind)));
                            assert!(draft.references().iter().all(|x| *x == r));
                        }
                        None => assert_eq!(
                            draft.placeholder_references().len(),
                            usize::from(kind_refers(kind))
                        ),
                    }
                }
            }
        }
    }

    fn kind_refers(kind: Kind) -> bool {
        !matches!(
            kind,
            Kind::Request | Kind::Emergency | Kind::Registry | Kind::Policy
        )
    }

    #[test]
    fn example_dates_are_relative_to_now() {
        let now = Timestamp::parse("2026-12-04T10:30:15Z").unwrap().get();
        let Draft::Request(r) = Draft::example(Kind::Request, now, None, "p.example").unwrap()
        else {
            panic!("not a request")
        };
        assert_eq!(r.valid_from.to_string(), "2026-12-03T00:00:00Z");
        assert_eq!(r.valid_until.to_string(), "2027-01-04T00:00:00Z");
        assert_eq!(r.sealed_until.to_string(), "2027-12-05T00:00:00Z");
        assert_eq!(r.provider.as_str(), "p.example");
        assert!(r
            .targets
            .iter()
            .all(|t| t.as_str().contains("example-target")));
        let Draft::Emergency(e) = Draft::example(Kind::Emergency, now, None, "p.example").unwrap()
        else {
            panic!("not an emergency")
        };
        assert_eq!(e.ratify_by.to_string(), "2026-12-05T10:00:00Z");
    }

    #[test]
    fn registry_and_impossible_times_are_refused() {
        let now = Utc::now();
        let err = Draft::example(Kind::Registry, now, None, EXAMPLE_PROVIDER).unwrap_err();
        assert_eq!(err.code(), "wrong_kind");
        assert!(err.to_string().contains("daylight log add-agency"), "{err}");
        let end = Timestamp::parse("9999-12-31T00:00:00Z").unwrap().get();
        assert_eq!(
            Draft::example(Kind::Request, end, None, EXAMPLE_PROVIDER)
                .unwrap_err()
                .code(),
            "bad_time"
        );
    }

    #[test]
    fn a_disclosure_from_an_opening_opens_what_it_holds() {
        let now = Utc::now();
        let request = Draft::example(Kind::Request, now, None, EXAMPLE_PROVIDER).unwrap();
        let (record, opening) = request
            .seal(&key(), "log.example.org/daylight", now, &mut rng())
            .unwrap();
        let entry = EntryRef::to(&record, LeafIndex(3));
        let draft = Draft::disclosure_from_opening(entry, &opening).unwrap();
        let Draft::Disclosure(d) = &draft else {
            panic!("not a disclosure")
        };
        assert_eq!(d.targets_opened.len(), 2);
        assert_eq!(d.targets_opened[1].position, 1);
        assert!(d.order_document_opened.is_some());
        draft
            .seal(&key(), "log.example.org/daylight", now, &mut rng())
            .unwrap();
        let other = EntryRef::new(LeafIndex(3), daylight_core::Hash([1; 32]));
        assert_eq!(
            Draft::disclosure_from_opening(other, &opening)
                .unwrap_err()
                .code(),
            "opening_mismatch"
        );
    }
}
