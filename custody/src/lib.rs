//! Threshold custody of escrowed keys.
//!
//! Under threshold custody no single party holds a target's escrowed key.
//! The provider splits it ([`share::split`]) into `n` Shamir shares, any `k`
//! of which put it together again ([`share::recover`]); each goes to an
//! independent custodian, which hands its share out only after its own gate
//! allowed the request and its own `release` receipt, naming the share
//! ([`ShareRef`](daylight_schemas::ShareRef): the key by its tag for the
//! request, [`ShareOf::for_receipt`]), is in the log. So a key
//! exists again only once `k` custodians each logged a public, witnessed
//! receipt.
//!
//! - [`key`]: the escrowed key ([`EscrowKey`]), its check value
//!   ([`KeyCheck`](daylight_schemas::KeyCheck)) and the custodian's slot for
//!   it ([`Slot`]: provider and target, hashed, so a custodian keeps no list
//!   of targets in clear).
//! - [`share`]: one custodian's share, splitting and recovery. Recovery
//!   checks the key it puts together against the check value every share
//!   names, so `k - 1` shares (or a wrong one) fail instead of giving a wrong
//!   key.
//! - [`seal`]: a share sealed with HPKE (RFC 9180) to an Ed25519 note key
//!   (the agency's registered key, or a custodian's for a deposit), bound to
//!   what it was released for.
//! - [`deposit`]: a share sealed to a custodian and signed by its depositor
//!   (the provider), as `daylight escrow split` hands it over.
//!
//! No I/O: the only thing read from outside is the system random source
//! (new keys, share polynomials, HPKE's ephemeral keys).

pub mod deposit;
pub mod key;
pub mod seal;
pub mod share;

pub use deposit::Deposit;
pub use key::{key_check, EscrowKey, Slot};
pub use seal::{open, seal, Context, Sealed};
pub use share::{recover, split, Share, ShareOf};

/// Why a custody operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CustodyError {
    /// A split that cannot be: the threshold or the number of shares is out
    /// of range.
    #[error("cannot split into {threshold} of {shares}: need 2 <= threshold <= shares <= 255")]
    BadSplit {
        /// The threshold asked for.
        threshold: u8,
        /// The number of shares asked for.
        shares: u8,
    },
    /// No shares were given.
    #[error("no shares given")]
    NoShares,
    /// The shares do not belong together: another key, slot or split.
    #[error("the shares are not of one key: {0}")]
    Mixed(String),
    /// Two shares have the same index.
    #[error("share {0} given twice")]
    DuplicateIndex(u8),
    /// Fewer distinct shares than the threshold.
    #[error("{have} of the {need} shares needed to reconstruct the key")]
    TooFew {
        /// Distinct shares given.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// The key put together does not match the check value the shares
    /// name: a share is wrong or from another split.
    #[error("the shares do not reconstruct the key they name (check value {0} does not match)")]
    CheckMismatch(String),
    /// Bytes that are not what they claim: a share or a sealed box that
    /// does not parse.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The key is not an Ed25519 key, so nothing can be sealed to it.
    #[error("cannot seal to {0}: not an Ed25519 note key")]
    NotEd25519(String),
    /// A sealed share that does not open with this key and context: another
    /// recipient, another release, or changed bytes.
    #[error("the sealed share does not open: wrong key, another release, or changed bytes")]
    DoesNotOpen,
    /// A deposit by a key the custodian does not take shares from.
    #[error("{0} is not a depositor of this custodian")]
    UnknownDepositor(String),
    /// A deposit whose signature does not verify under its depositor's key.
    #[error("the deposit's signature by {0} does not verify")]
    BadSignature(String),
    /// The system random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
}
