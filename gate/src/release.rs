//! The provider's public records: release receipts after an
//! [`Allowed`](crate::Allowed) decision, refusals after a refusal on content
//! ([`Refused`](crate::Refused)), and the provider's published standards (a
//! `policy` record holding its policy's content lines). Each is a record
//! (schemas) signed by the provider's registered key, so the release, the
//! refusal and the standard become public log entries. Pure: the caller
//! signs with a key it holds and submits the bytes.

use chrono::{DateTime, Utc};
use daylight_core::{KeyType, SignerKey};
use daylight_schemas::{
    Body, EntryRef, PolicyBody, Record, RefusalBody, SchemaError, SignedRecord, Text, Timestamp,
};

use crate::decision::{Allowed, Refused};
use crate::policy::Policy;

/// Why a provider's record could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ReleaseError {
    /// The key is not this provider's: its name is not the provider the
    /// request is addressed to (or the policy names), or it is not an
    /// Ed25519 note key.
    #[error("{record} key {key}: {why}")]
    WrongKey {
        /// The record it was to sign: `release`, `refusal` or `policy`.
        record: &'static str,
        /// The key, as `name+keyid`.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A policy with no content lines: there is no standard to publish.
    #[error("the policy has no content lines (daylight-jurisdictions, daylight-issuers, ...): nothing to publish")]
    NoContentLines,
    /// The schemas crate refused the record.
    #[error("provider record: {0}")]
    Record(#[from] SchemaError),
}

/// Checks that `key`, to sign a `record`, is an Ed25519 note key named
/// `provider` (when given).
fn provider_key(
    record: &'static str,
    key: &SignerKey,
    provider: Option<&str>,
) -> Result<(), ReleaseError> {
    let vkey = key.verifier();
    let wrong = |why: String| ReleaseError::WrongKey {
        record,
        key: format!("{}+{}", vkey.name(), vkey.id()),
        why,
    };
    if vkey.key_type() != KeyType::Ed25519 {
        return Err(wrong("not an Ed25519 note key".into()));
    }
    if let Some(provider) = provider {
        if vkey.name().as_str() != provider {
            return Err(wrong(format!(
                "named {:?}, but the provider is {provider:?}",
                vkey.name().as_str(),
            )));
        }
    }
    Ok(())
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
    provider_key("release", key, Some(&allowed.provider))?;
    let targets = match allowed.target_position {
        Some(_) => 1,
        None => allowed.target_count,
    };
    let entry = EntryRef::new(allowed.index, allowed.leaf_hash);
    Ok(Record::release(entry, targets, now, now)?.sign(key, &allowed.origin)?)
}

/// The provider's signed `refusal` record for a request refused on its
/// content at `now`: the entry (index and leaf hash) and the stable reason,
/// nothing else (no target, no detail). `key` must be the provider's
/// registered key, named as the provider the request is addressed to; the
/// record is bound to the log that holds the request (`refused.origin`).
pub fn refusal_receipt(
    refused: &Refused,
    key: &SignerKey,
    now: DateTime<Utc>,
) -> Result<SignedRecord, ReleaseError> {
    provider_key("refusal", key, Some(&refused.provider))?;
    let body = Body::Refusal(RefusalBody {
        entry: EntryRef::new(refused.index, refused.leaf_hash),
        reason: refused.reason,
        refused_at: Timestamp::new(now)?,
    });
    Ok(Record::new(now, body)?.sign(key, &refused.origin)?)
}

/// The provider's signed `policy` record publishing `policy`'s content
/// lines (only those: the keys, witnesses and freshness it trusts are its
/// own business), in order, as [`Policy::to_text`] writes them, created
/// at `now` and bound to the log `origin`. `key` must be an Ed25519 note
/// key, named as the policy's `daylight-provider` if it names one.
pub fn policy_record(
    policy: &Policy,
    key: &SignerKey,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<SignedRecord, ReleaseError> {
    provider_key("policy", key, policy.provider())?;
    let lines = &policy.content().lines;
    if lines.is_empty() {
        return Err(ReleaseError::NoContentLines);
    }
    let lines = lines
        .iter()
        .map(|l| Text::new(&l.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Record::new(now, Body::Policy(PolicyBody { lines }))?.sign(key, origin)?)
}
