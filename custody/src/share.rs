//! One custodian's share of an escrowed key; splitting and recovery.

use std::collections::BTreeSet;
use std::fmt;

use daylight_core::Hash;
use daylight_schemas::{KeyCheck, KeyTag, ShareRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::key::{EscrowKey, Slot};
use crate::CustodyError;

/// Domain separation for [`ShareOf::for_receipt`].
const TAG_DOMAIN: &[u8] = b"daylight/escrow-key-tag/v1\n";

/// What a share is of: the key (its check value) and the split, as the
/// share, the custodian and whoever puts the key together know it. Public
/// receipts name it through [`ShareOf::for_receipt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareOf {
    /// The escrowed key's check value.
    pub key: KeyCheck,
    /// The share's index (its x coordinate), 1 to `shares`.
    pub index: u8,
    /// How many shares reconstruct the key (k).
    pub threshold: u8,
    /// How many shares the key was split into (n).
    pub shares: u8,
}

impl ShareOf {
    /// What a custodian's receipt for the request with leaf hash
    /// `request` names: the key by its tag for that request (SHA-256 over
    /// a domain string, the check value and the request's leaf hash), not
    /// by its check value, so receipts for different requests about one
    /// target cannot be linked, while one request's receipts of one key
    /// share a tag.
    pub fn for_receipt(&self, request: &Hash) -> ShareRef {
        let mut h = Sha256::new();
        h.update(TAG_DOMAIN);
        h.update(self.key.0);
        h.update(request.0);
        ShareRef {
            key: KeyTag(h.finalize().into()),
            index: self.index,
            threshold: self.threshold,
            shares: self.shares,
        }
    }

    /// Checks the numbers: 2 <= threshold <= shares, 1 <= index <= shares.
    pub fn check(&self) -> Result<(), CustodyError> {
        self.for_receipt(&Hash([0; 32]))
            .check()
            .map_err(|e| CustodyError::Malformed {
                what: "share",
                why: e.to_string(),
            })
    }
}

/// One share of one escrowed key: the point `(index, value)` of a random
/// polynomial of degree `threshold - 1` per key byte (GF(2^8)), with what
/// it belongs to. Any `threshold` shares of one split give the key back;
/// fewer tell nothing of it. Its `Debug` leaves the value out. Parsed
/// (JSON) only through [`Share::from_json`], which checks the numbers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireShare", into = "WireShare")]
pub struct Share {
    /// The custodian's slot for the key (provider and target, hashed).
    pub slot: Slot,
    /// Which key, the numbers of the split.
    pub reference: ShareOf,
    /// The polynomials' values at `index`.
    pub value: [u8; 32],
}

/// A share as JSON: hex strings and small numbers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireShare {
    slot: String,
    key: KeyCheck,
    index: u8,
    threshold: u8,
    shares: u8,
    value: String,
}

impl TryFrom<WireShare> for Share {
    type Error = CustodyError;
    fn try_from(w: WireShare) -> Result<Share, CustodyError> {
        let malformed = |why: String| CustodyError::Malformed { what: "share", why };
        let reference = ShareOf {
            key: w.key,
            index: w.index,
            threshold: w.threshold,
            shares: w.shares,
        };
        reference.check()?;
        let value = hex::decode(&w.value).map_err(|e| malformed(format!("value: {e}")))?;
        let value: [u8; 32] = value
            .try_into()
            .map_err(|v: Vec<u8>| malformed(format!("value is {} bytes, not 32", v.len())))?;
        Ok(Share {
            slot: Slot::from_hex(&w.slot)?,
            reference,
            value,
        })
    }
}

impl From<Share> for WireShare {
    fn from(s: Share) -> WireShare {
        WireShare {
            slot: s.slot.to_hex(),
            key: s.reference.key,
            index: s.reference.index,
            threshold: s.reference.threshold,
            shares: s.reference.shares,
            value: hex::encode(s.value),
        }
    }
}

impl Share {
    /// Parses a share's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Share, CustodyError> {
        serde_json::from_slice(bytes).map_err(|e| CustodyError::Malformed {
            what: "share",
            why: e.to_string(),
        })
    }

    /// Its JSON (one line).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and small integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Share({} of {}, threshold {}, key {}, slot {})",
            self.reference.index,
            self.reference.shares,
            self.reference.threshold,
            self.reference.key,
            self.slot
        )
    }
}

/// Splits `key` into `shares` shares, any `threshold` of which reconstruct
/// it, for the custodians' `slot`. Share `i` (1-based) is for the `i`th
/// custodian.
pub fn split(
    key: &EscrowKey,
    slot: Slot,
    threshold: u8,
    shares: u8,
) -> Result<Vec<Share>, CustodyError> {
    if threshold < 2 || threshold > shares {
        return Err(CustodyError::BadSplit { threshold, shares });
    }
    let check = key.check();
    // blahaj evaluates at x = 1, 2, ...: the share index is x.
    blahaj::Sharks(threshold)
        .dealer(&key.0)
        .take(usize::from(shares))
        .map(|s| {
            let bytes = Vec::from(&s);
            let (&index, value) = bytes.split_first().ok_or(CustodyError::Malformed {
                what: "share",
                why: "empty share from the dealer".into(),
            })?;
            let value: [u8; 32] = value.try_into().map_err(|_| CustodyError::Malformed {
                what: "share",
                why: format!("{} value bytes from the dealer, not 32", value.len()),
            })?;
            Ok(Share {
                slot,
                reference: ShareOf {
                    key: check,
                    index,
                    threshold,
                    shares,
                },
                value,
            })
        })
        .collect()
}

/// Puts the key together from `shares`: all of one split (slot, key,
/// threshold and count agree), distinct indices, at least the threshold,
/// and the result must match the check value they name.
pub fn recover(shares: &[Share]) -> Result<EscrowKey, CustodyError> {
    let first = shares.first().ok_or(CustodyError::NoShares)?;
    let mut seen = BTreeSet::new();
    for s in shares {
        let (a, b) = (&first.reference, &s.reference);
        if s.slot != first.slot {
            return Err(CustodyError::Mixed(format!(
                "slots {} and {}",
                first.slot, s.slot
            )));
        }
        if a.key != b.key {
            return Err(CustodyError::Mixed(format!("keys {} and {}", a.key, b.key)));
        }
        if (a.threshold, a.shares) != (b.threshold, b.shares) {
            return Err(CustodyError::Mixed(format!(
                "splits {} of {} and {} of {}",
                a.threshold, a.shares, b.threshold, b.shares
            )));
        }
        b.check()?;
        if !seen.insert(b.index) {
            return Err(CustodyError::DuplicateIndex(b.index));
        }
    }
    let need = usize::from(first.reference.threshold);
    if seen.len() < need {
        return Err(CustodyError::TooFew {
            have: seen.len(),
            need,
        });
    }
    let points: Vec<blahaj::Share> = shares
        .iter()
        .take(need)
        .map(|s| {
            let mut bytes = Vec::with_capacity(33);
            bytes.push(s.reference.index);
            bytes.extend_from_slice(&s.value);
            blahaj::Share::try_from(bytes.as_slice()).map_err(|e| CustodyError::Malformed {
                what: "share",
                why: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    let secret = blahaj::Sharks(first.reference.threshold)
        .recover(&points)
        .map_err(|e| CustodyError::Malformed {
            what: "shares",
            why: e.to_string(),
        })?;
    let key: [u8; 32] = secret
        .try_into()
        .map_err(|v: Vec<u8>| CustodyError::Malformed {
            what: "shares",
            why: format!("{} key bytes, not 32", v.len()),
        })?;
    let key = EscrowKey(key);
    if key.check() != first.reference.key {
        return Err(CustodyError::CheckMismatch(first.reference.key.to_hex()));
    }
    Ok(key)
}
