//! Release receipts: after an [`Allowed`](crate::Allowed) decision, the
//! provider signs a `release` record (schemas) so the release itself becomes
//! a public log entry.

use chrono::{DateTime, Utc};
use daylight_core::{KeyType, SignerKey};
use daylight_schemas::{EntryRef, Record, SchemaError, SignedRecord};

use crate::decision::Allowed;

/// Why a release receipt could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ReleaseError {
    /// The key is not this provider's: its name is not the provider the
    /// request is addressed to, or it is not an Ed25519 note key.
    #[error("release key {key}: {why}")]
    WrongKey {
        /// The key, as `name+keyid`.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The schemas crate refused the record.
    #[error("release record: {0}")]
    Record(#[from] SchemaError),
}

/// The provider's signed `release` record for what `allowed` allowed,
/// released at `now`: for one target if a target was checked, otherwise for
/// all of the record's targets. `key` must be the provider's registered key:
/// an Ed25519 note key named as the provider the request is addressed to.
/// The receipt is bound to the log that holds the request (`allowed.origin`).
pub fn release_receipt(
    allowed: &Allowed,
    key: &SignerKey,
    now: DateTime<Utc>,
) -> Result<SignedRecord, ReleaseError> {
    let vkey = key.verifier();
    let wrong = |why: String| ReleaseError::WrongKey {
        key: format!("{}+{}", vkey.name(), vkey.id()),
        why,
    };
    if vkey.key_type() != KeyType::Ed25519 {
        return Err(wrong("not an Ed25519 note key".into()));
    }
    if vkey.name().as_str() != allowed.provider {
        return Err(wrong(format!(
            "named {:?}, but the request is addressed to {:?}",
            vkey.name().as_str(),
            allowed.provider
        )));
    }
    let targets = match allowed.target_position {
        Some(_) => 1,
        None => allowed.target_count,
    };
    let entry = EntryRef::new(allowed.index, allowed.leaf_hash);
    Ok(Record::release(entry, targets, now, now)?.sign(key, &allowed.origin)?)
}
