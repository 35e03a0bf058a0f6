//! C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): an entry's index, its
//! inclusion proof and the cosigned checkpoint it is proved against, in one
//! text a client can verify offline.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::cosignature::{verify_cosignatures, Cosignature};
use crate::hash::{leaf_hash, Hash};
use crate::note::{Note, NoteError};
use crate::policy::WitnessPolicy;
use crate::proof::{verify_inclusion, ProofError};
use crate::types::{parse_decimal, LeafIndex};

/// The first line of every tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// More proof lines than any tree of 2^63 leaves needs.
pub const MAX_PROOF_LINES: usize = 63;

/// Why a proof bundle was refused; each variant is a distinct check.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TlogProofError {
    /// The text is not a tlog-proof.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The checkpoint is malformed or not signed by a trusted log.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint's origin is not a log the policy trusts.
    #[error("checkpoint origin {0:?} is not a trusted log")]
    UnknownLog(String),
    /// A witness's cosignature line is present but invalid.
    #[error("witness cosignature: {0}")]
    Cosignature(NoteError),
    /// Not enough witnesses cosigned.
    #[error("witness quorum not met: {valid} valid cosignatures from known witnesses")]
    QuorumNotMet {
        /// How many known witnesses did cosign.
        valid: usize,
    },
    /// The inclusion proof does not put this entry at this index under the root.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] ProofError),
}

/// A parsed, unverified tlog-proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// The entry's index.
    pub index: LeafIndex,
    /// The inclusion proof, from the leaf's sibling up.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: Vec<u8>,
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The checkpoint the entry is included in.
    pub checkpoint: Checkpoint,
    /// The valid cosignatures by policy witnesses.
    pub cosignatures: Vec<Cosignature>,
}

impl TlogProof {
    /// Parses the text form.
    pub fn parse(bytes: &[u8]) -> Result<TlogProof, TlogProofError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| TlogProofError::Malformed("not UTF-8"))?;
        let (head, checkpoint) = text.split_once("\n\n").ok_or(TlogProofError::Malformed(
            "no blank line before the checkpoint",
        ))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(TlogProofError::Malformed(
                "first line must be c2sp.org/tlog-proof@v1",
            ));
        }
        let mut line = lines.next();
        let mut extra = None;
        if let Some(data) = line.and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(
                BASE64
                    .decode(data)
                    .map_err(|_| TlogProofError::Malformed("extra data is not base64"))?,
            );
            line = lines.next();
        }
        let index = line
            .and_then(|l| l.strip_prefix("index "))
            .and_then(parse_decimal)
            .ok_or(TlogProofError::Malformed(
                "expected an index line with a decimal index",
            ))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(TlogProofError::Malformed("too many proof lines"));
            }
            proof.push(Hash::from_base64(l).ok_or(TlogProofError::Malformed(
                "proof line is not a base64 32-byte hash",
            ))?);
        }
        Ok(TlogProof {
            extra,
            index: LeafIndex(index),
            proof,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// The text form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            out.push_str(&h.to_base64());
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }

    /// Verifies, in the spec's order, that `entry` is at this index in a
    /// checkpoint signed by a log of `policy` and cosigned by its quorum.
    pub fn verify(
        &self,
        entry: &[u8],
        policy: &WitnessPolicy,
    ) -> Result<VerifiedProof, TlogProofError> {
        let leaf = leaf_hash(entry);
        let note = Note::parse(&self.checkpoint).map_err(CheckpointError::from)?;
        let origin = Checkpoint::parse_text(note.text())?.origin;
        let log = policy
            .logs
            .iter()
            .find(|l| l.key.name().as_str() == origin)
            .ok_or(TlogProofError::UnknownLog(origin))?;
        let signed = SignedCheckpoint::open_note(note, &log.key)?;
        let cosignatures = verify_cosignatures(&signed.note, &policy.witness_keys())
            .map_err(TlogProofError::Cosignature)?;
        if !policy.quorum_met(&cosignatures) {
            return Err(TlogProofError::QuorumNotMet {
                valid: cosignatures.len(),
            });
        }
        let cp = signed.checkpoint;
        verify_inclusion(leaf, self.index, cp.size, &self.proof, cp.root)?;
        Ok(VerifiedProof {
            checkpoint: cp,
            cosignatures,
        })
    }
}
