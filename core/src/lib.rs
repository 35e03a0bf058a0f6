//! Daylight's core: the transparency-log primitives every other part uses.
//!
//! - [`hash`]: RFC 6962 leaf and node hashing.
//! - [`tree`]: the Merkle tree over stored hashes, proofs generated from storage.
//! - [`proof`]: inclusion and consistency proof verification.
//! - [`subtree`]: subtrees `[start, end)` and their consistency proofs (MTC draft).
//! - [`tile`]: C2SP tlog-tiles paths, hash tiles, entry bundles, authenticated reads.
//! - [`note`]: C2SP signed notes and the key text formats.
//! - [`log_list`]: the witness network's `logs/v0` log-list format.
//! - [`checkpoint`], [`cosignature`]: C2SP tlog-checkpoint and tlog-cosignature.
//! - [`policy`], [`tlog_proof`]: C2SP tlog-policy and tlog-proof.
//! - [`witness_protocol`]: C2SP tlog-witness request and answer bodies.
//! - [`mirror_protocol`]: C2SP tlog-mirror add-entries bodies and mirror-info.
//!
//! No I/O, no clocks, no randomness: callers pass those in.

pub mod checkpoint;
pub mod cosignature;
pub mod hash;
pub mod log_list;
pub mod mirror_protocol;
pub mod note;
pub mod policy;
pub mod proof;
pub mod subtree;
pub mod tile;
pub mod tlog_proof;
pub mod tree;
pub mod types;
pub mod witness_protocol;

pub use checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
pub use hash::{leaf_hash, node_hash, Hash};
pub use note::{KeyId, KeyName, KeyType, Note, NoteError, SignerKey, VerifierKey};
pub use policy::WitnessPolicy;
pub use subtree::Subtree;
pub use tlog_proof::{TlogProof, TlogProofError};
pub use types::{LeafIndex, TreeSize};
