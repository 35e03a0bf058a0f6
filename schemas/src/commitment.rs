//! Commitments to secrets (target identifiers, order documents) and the
//! private openings an agency hands to a provider.
//!
//! A commitment is
//! `SHA-256("daylight/commitment/v1\n" || purpose || "\n" || salt || value)`
//! with `purpose` `target` or `order_document`, a fresh 32-byte random
//! `salt`, and `value` the target identifier's UTF-8 bytes or the order
//! document's 32-byte SHA-256. The salt is fixed-length and the value comes
//! last, so the message is unambiguous; the purpose keeps a target's
//! commitment from opening as a document's. Hiding rests on the 256-bit salt,
//! binding on SHA-256's collision resistance.

use chrono::{DateTime, Utc};
use daylight_core::Hash;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::SchemaError;
use crate::fields::{hash_hex, Commitment, DocumentHash, Salt, TargetId};
use crate::record::{Kind, SignedRecord};

/// Domain separation for commitments.
pub const COMMITMENT_DOMAIN: &[u8] = b"daylight/commitment/v1\n";

/// What a commitment hides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A target identifier (its UTF-8 bytes).
    Target,
    /// An order document (its SHA-256).
    OrderDocument,
}

impl Purpose {
    /// The label in the committed message.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Target => "target",
            Purpose::OrderDocument => "order_document",
        }
    }
}

/// The commitment to `value` for `purpose` under `salt`.
pub fn commit(purpose: Purpose, salt: &Salt, value: &[u8]) -> Commitment {
    let mut h = Sha256::new();
    h.update(COMMITMENT_DOMAIN);
    h.update(purpose.as_str().as_bytes());
    h.update(b"\n");
    h.update(salt.0);
    h.update(value);
    Commitment(h.finalize().into())
}

/// The commitment to a target identifier.
pub fn commit_target(salt: &Salt, target: &TargetId) -> Commitment {
    commit(Purpose::Target, salt, target.as_str().as_bytes())
}

/// The commitment to an order document's SHA-256.
pub fn commit_document(salt: &Salt, document: &DocumentHash) -> Commitment {
    commit(Purpose::OrderDocument, salt, &document.0)
}

/// One opened target: its identifier and its commitment's salt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetOpening {
    /// The target identifier.
    pub target: TargetId,
    /// The commitment's salt.
    pub salt: Salt,
}

/// The opened order document: its SHA-256 and its commitment's salt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentOpening {
    /// SHA-256 of the order document.
    pub sha256: DocumentHash,
    /// The commitment's salt.
    pub salt: Salt,
}

/// The private openings of one signed record's commitments: what the agency
/// gives the provider (and later a disclosure publishes). Never logged.
/// `targets[i]` opens the record's `targets[i]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    /// Format version: 1.
    pub version: u32,
    /// The kind of the record opened.
    pub kind: Kind,
    /// Leaf hash of the signed record opened (SHA-256(0x00 || entry)).
    #[serde(with = "hash_hex")]
    #[schemars(schema_with = "hash_hex::schema")]
    pub entry_leaf_hash: Hash,
    /// When the record was created (a convenience: the record is authoritative).
    #[serde(with = "created_str")]
    #[schemars(with = "crate::fields::Timestamp")]
    pub created: DateTime<Utc>,
    /// One opening per target commitment, in the record's order.
    pub targets: Vec<TargetOpening>,
    /// The order document's opening, if the record commits to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_document: Option<DocumentOpening>,
}

mod created_str {
    use super::*;
    use crate::fields::Timestamp;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format("%Y-%m-%dT%H:%M:%SZ"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        Timestamp::deserialize(d).map(Timestamp::get)
    }
}

impl Opening {
    /// Reads an opening file (JSON; white space and member order free,
    /// unknown members refused).
    pub fn from_json(text: &str) -> Result<Opening, SchemaError> {
        let o: Opening = serde_json::from_str(text).map_err(|e| SchemaError::from_serde(&e))?;
        if o.version != 1 {
            return Err(SchemaError::UnknownVersion(o.version.to_string()));
        }
        Ok(o)
    }

    /// The opening as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Checks that this opening is for `record` and opens the commitment of
    /// `target`; returns that commitment's position in the record's targets.
    /// This is the gate's check "the commitment opens to the account asked about".
    pub fn check(&self, record: &SignedRecord, target: &str) -> Result<usize, SchemaError> {
        let commitments = self.commitments_of(record)?;
        let position = self
            .targets
            .iter()
            .position(|t| t.target.as_str() == target)
            .ok_or(SchemaError::TargetNotInOpening)?;
        self.check_target(commitments, position)?;
        Ok(position)
    }

    /// Checks every opening against `record`: one per target commitment,
    /// each opens its commitment, and the order document's opens its.
    pub fn check_all(&self, record: &SignedRecord) -> Result<(), SchemaError> {
        let commitments = self.commitments_of(record)?;
        if self.targets.len() != commitments.len() {
            return Err(SchemaError::OpeningMismatch(format!(
                "{} target openings for {} commitments",
                self.targets.len(),
                commitments.len()
            )));
        }
        for i in 0..commitments.len() {
            self.check_target(commitments, i)?;
        }
        match (record.body().order_document(), &self.order_document) {
            (None, None) => Ok(()),
            (Some(c), Some(o)) if commit_document(&o.salt, &o.sha256) == *c => Ok(()),
            (Some(_), Some(_)) => Err(SchemaError::OpeningMismatch(
                "the order document opening does not open the record's commitment".into(),
            )),
            (Some(_), None) => Err(SchemaError::OpeningMismatch(
                "the record commits to an order document the opening lacks".into(),
            )),
            (None, Some(_)) => Err(SchemaError::OpeningMismatch(
                "the record commits to no order document".into(),
            )),
        }
    }

    fn commitments_of<'r>(
        &self,
        record: &'r SignedRecord,
    ) -> Result<&'r [Commitment], SchemaError> {
        if record.leaf_hash() != self.entry_leaf_hash || record.kind() != self.kind {
            return Err(SchemaError::OpeningMismatch(
                "the opening is for another entry".into(),
            ));
        }
        record.body().target_commitments().ok_or_else(|| {
            SchemaError::WrongKind(format!(
                "a {} record has no target commitments",
                record.kind()
            ))
        })
    }

    fn check_target(&self, commitments: &[Commitment], i: usize) -> Result<(), SchemaError> {
        let (Some(opening), Some(c)) = (self.targets.get(i), commitments.get(i)) else {
            return Err(SchemaError::OpeningMismatch(format!(
                "no commitment at position {i}"
            )));
        };
        if commit_target(&opening.salt, &opening.target) != *c {
            return Err(SchemaError::OpeningMismatch(format!(
                "target opening {i} does not open the record's commitment {i}"
            )));
        }
        Ok(())
    }
}

impl crate::record::DisclosureBody {
    /// Checks this disclosure against the entry it discloses (for auditors):
    /// `entry` is the one referred to (same leaf hash), every opened target
    /// opens the commitment at its position, every position exists, and an
    /// opened order document opens the entry's document commitment.
    pub fn check_against(&self, entry: &SignedRecord) -> Result<(), SchemaError> {
        if entry.leaf_hash() != self.entry.leaf_hash {
            return Err(SchemaError::ReferenceHashMismatch {
                index: self.entry.index.0,
            });
        }
        let commitments = entry.body().target_commitments().unwrap_or(&[]);
        for t in &self.targets_opened {
            let c = commitments.get(t.position as usize).ok_or_else(|| {
                SchemaError::OpeningMismatch(format!(
                    "no target commitment at position {}",
                    t.position
                ))
            })?;
            if commit_target(&t.salt, &t.target) != *c {
                return Err(SchemaError::OpeningMismatch(format!(
                    "disclosed target {} does not open the entry's commitment",
                    t.position
                )));
            }
        }
        if let Some(w) = self
            .targets_withheld
            .iter()
            .find(|w| w.position as usize >= commitments.len())
        {
            return Err(SchemaError::OpeningMismatch(format!(
                "no target commitment at position {}",
                w.position
            )));
        }
        let doc = entry.body().order_document();
        if let Some(o) = &self.order_document_opened {
            match doc {
                Some(c) if commit_document(&o.salt, &o.sha256) == *c => {}
                Some(_) => {
                    return Err(SchemaError::OpeningMismatch(
                        "disclosed order document does not open the entry's commitment".into(),
                    ))
                }
                None => {
                    return Err(SchemaError::OpeningMismatch(
                        "the entry commits to no order document".into(),
                    ))
                }
            }
        }
        if self.order_document_withheld.is_some() && doc.is_none() {
            return Err(SchemaError::OpeningMismatch(
                "the entry commits to no order document".into(),
            ));
        }
        Ok(())
    }
}
