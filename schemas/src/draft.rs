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
use crate::record::{
    Body, DisclosureBody, ExtensionBody, Kind, OutcomeBody, Record, RegistryBody, ReleaseBody,
    SignedRecord, WithdrawalBody,
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
