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
use crate::fields::{
    Commitment, DataCategory, Decision, DocumentHash, EmergencyGround, EntryRef, Jurisdiction,
    Name, Offence, Salt, TargetId, TargetType, Text, Timestamp,
};
use crate::record::{
    Authority, Body, DisclosureBody, EmergencyBody, ExtensionBody, Kind, OutcomeBody, Period,
    RatificationBody, Record, RegistryBody, ReleaseBody, RequestBody, SignedRecord, WithdrawalBody,
};

/// A draft `request`: as [`RequestBody`] but with the target identifiers and
/// the order document's SHA-256 in the clear, and no `target_count`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestDraft {
    /// See [`RequestBody::jurisdiction`].
    pub jurisdiction: Jurisdiction,
    /// See [`RequestBody::legal_basis`].
    pub legal_basis: Text,
    /// See [`RequestBody::issuing_authority`].
    pub issuing_authority: Authority,
    /// See [`RequestBody::provider`].
    pub provider: Name,
    /// See [`RequestBody::data_categories`]; any order here, sorted when sealed.
    #[schemars(length(min = 1))]
    pub data_categories: BTreeSet<DataCategory>,
    /// See [`RequestBody::offence`].
    pub offence: Offence,
    /// See [`RequestBody::target_type`].
    pub target_type: TargetType,
    /// The target identifiers in the clear, exactly as the provider knows them. Never logged.
    #[schemars(length(min = 1))]
    pub targets: Vec<TargetId>,
    /// See [`RequestBody::valid_from`].
    pub valid_from: Timestamp,
    /// See [`RequestBody::valid_until`].
    pub valid_until: Timestamp,
    /// See [`RequestBody::sealed_until`].
    pub sealed_until: Timestamp,
    /// See [`RequestBody::case_reference`].
    pub case_reference: Text,
    /// SHA-256 of the order document (e.g. `sha256sum order.pdf`). Never logged: committed to.
    pub order_document_sha256: DocumentHash,
    /// See [`RequestBody::data_period`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_period: Option<Period>,
}

/// A draft `emergency`: as [`EmergencyBody`] with targets (and the written
/// authorisation's SHA-256, if any) in the clear, and no `target_count`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyDraft {
    /// See [`EmergencyBody::jurisdiction`].
    pub jurisdiction: Jurisdiction,
    /// See [`EmergencyBody::legal_basis`].
    pub legal_basis: Text,
    /// See [`EmergencyBody::issuing_authority`].
    pub issuing_authority: Authority,
    /// See [`EmergencyBody::provider`].
    pub provider: Name,
    /// See [`EmergencyBody::data_categories`]; any order here.
    #[schemars(length(min = 1))]
    pub data_categories: BTreeSet<DataCategory>,
    /// See [`EmergencyBody::offence`].
    pub offence: Offence,
    /// See [`EmergencyBody::target_type`].
    pub target_type: TargetType,
    /// The target identifiers in the clear. Never logged.
    #[schemars(length(min = 1))]
    pub targets: Vec<TargetId>,
    /// See [`EmergencyBody::valid_from`].
    pub valid_from: Timestamp,
    /// See [`EmergencyBody::valid_until`].
    pub valid_until: Timestamp,
    /// See [`EmergencyBody::sealed_until`].
    pub sealed_until: Timestamp,
    /// See [`EmergencyBody::case_reference`].
    pub case_reference: Text,
    /// See [`EmergencyBody::ground`].
    pub ground: EmergencyGround,
    /// See [`EmergencyBody::ratify_by`].
    pub ratify_by: Timestamp,
    /// SHA-256 of the written emergency authorisation, if any. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_document_sha256: Option<DocumentHash>,
    /// See [`EmergencyBody::data_period`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_period: Option<Period>,
}

/// A draft `ratification`: as [`RatificationBody`] with the court order's SHA-256 in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RatificationDraft {
    /// See [`RatificationBody::emergency`].
    pub emergency: EntryRef,
    /// See [`RatificationBody::decision`].
    pub decision: Decision,
    /// See [`RatificationBody::case_reference`].
    pub case_reference: Text,
    /// SHA-256 of the court's order. Never logged: committed to.
    pub order_document_sha256: DocumentHash,
}

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
                Body::Request(RequestBody {
                    jurisdiction: d.jurisdiction.clone(),
                    legal_basis: d.legal_basis.clone(),
                    issuing_authority: d.issuing_authority.clone(),
                    provider: d.provider.clone(),
                    data_categories: d.data_categories.clone(),
                    offence: d.offence,
                    target_type: d.target_type,
                    target_count: count(&targets)?,
                    targets,
                    valid_from: d.valid_from,
                    valid_until: d.valid_until,
                    sealed_until: d.sealed_until,
                    case_reference: d.case_reference.clone(),
                    order_document,
                    data_period: d.data_period,
                })
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
                Body::Emergency(EmergencyBody {
                    jurisdiction: d.jurisdiction.clone(),
                    legal_basis: d.legal_basis.clone(),
                    issuing_authority: d.issuing_authority.clone(),
                    provider: d.provider.clone(),
                    data_categories: d.data_categories.clone(),
                    offence: d.offence,
                    target_type: d.target_type,
                    target_count: count(&targets)?,
                    targets,
                    valid_from: d.valid_from,
                    valid_until: d.valid_until,
                    sealed_until: d.sealed_until,
                    case_reference: d.case_reference.clone(),
                    ground: d.ground,
                    ratify_by: d.ratify_by,
                    order_document,
                    data_period: d.data_period,
                })
            }
            Draft::Ratification(d) => {
                let (order_document, doc) = commit_doc(&d.order_document_sha256, &mut salts)?;
                doc_opening = Some(doc);
                Body::Ratification(RatificationBody {
                    emergency: d.emergency,
                    decision: d.decision,
                    case_reference: d.case_reference.clone(),
                    order_document,
                })
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
