//! The escrowed key, its check value, and a custodian's slot for it.

use std::fmt;

use daylight_schemas::KeyCheck;
use sha2::{Digest as _, Sha256};

use crate::CustodyError;

/// Domain separation for [`key_check`].
const CHECK_DOMAIN: &[u8] = b"daylight/escrow-key-check/v1\n";
/// Domain separation for [`Slot::of`].
const SLOT_DOMAIN: &[u8] = b"daylight/escrow-slot/v1\n";

/// A target's escrowed key: 32 secret bytes. Its `Debug` shows only its
/// check value.
#[derive(Clone, PartialEq, Eq)]
pub struct EscrowKey(pub [u8; 32]);

impl EscrowKey {
    /// A fresh key from the system random source.
    pub fn generate() -> Result<EscrowKey, CustodyError> {
        let mut key = [0u8; 32];
        getrandom(&mut key)?;
        Ok(EscrowKey(key))
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<EscrowKey, CustodyError> {
        let malformed = |why: String| CustodyError::Malformed {
            what: "escrowed key",
            why,
        };
        let bytes = hex::decode(text.trim()).map_err(|e| malformed(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| malformed(format!("{} bytes, not 32", b.len())))?;
        Ok(EscrowKey(key))
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Its check value.
    pub fn check(&self) -> KeyCheck {
        key_check(&self.0)
    }
}

impl fmt::Debug for EscrowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EscrowKey(check {})", self.check())
    }
}

/// The check value of a key: SHA-256 over a domain string and the key. A
/// key is 32 uniformly random bytes, so its hash tells nothing of it; it
/// names the key in receipts and catches a wrong reconstruction.
pub fn key_check(key: &[u8; 32]) -> KeyCheck {
    let mut h = Sha256::new();
    h.update(CHECK_DOMAIN);
    h.update(key);
    KeyCheck(h.finalize().into())
}

/// Where a custodian keeps the share of one target's key for one provider:
/// SHA-256 over a domain string, the provider's name and the target. The
/// custodian learns the target when a request opens it, not before.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub [u8; 32]);

impl Slot {
    /// The slot of `target`'s key with `provider` (a key name).
    pub fn of(provider: &str, target: &str) -> Slot {
        let mut h = Sha256::new();
        h.update(SLOT_DOMAIN);
        h.update(provider.as_bytes());
        h.update(b"\n");
        h.update(target.as_bytes());
        Slot(h.finalize().into())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Slot, CustodyError> {
        let malformed = |why: String| CustodyError::Malformed { what: "slot", why };
        let bytes = hex::decode(text).map_err(|e| malformed(e.to_string()))?;
        bytes
            .try_into()
            .map(Slot)
            .map_err(|b: Vec<u8>| malformed(format!("{} bytes, not 32", b.len())))
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slot({})", self.to_hex())
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Fills `buf` from the system random source.
pub(crate) fn getrandom(buf: &mut [u8]) -> Result<(), CustodyError> {
    use rand_core::TryRngCore as _;
    rand_core::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| CustodyError::Random(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trips_and_bad_hex_is_refused() {
        let k = EscrowKey::generate().unwrap();
        assert_eq!(EscrowKey::from_hex(&k.to_hex()).unwrap(), k);
        assert!(EscrowKey::from_hex("abcd").is_err());
        assert!(EscrowKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(
            !format!("{k:?}").contains(&k.to_hex()),
            "Debug leaks the key"
        );
    }

    #[test]
    fn check_and_slot_are_domain_separated() {
        let k = [7u8; 32];
        assert_ne!(key_check(&k).0, Sha256::digest(k).as_slice());
        assert_ne!(Slot::of("p", "t"), Slot::of("p", "u"));
        assert_ne!(Slot::of("p", "t"), Slot::of("q", "t"));
        // The separator keeps (provider, target) pairs apart.
        assert_ne!(Slot::of("ab", "c"), Slot::of("a", "bc"));
    }
}
