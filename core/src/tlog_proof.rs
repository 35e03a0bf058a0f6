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

/// The text form of a tlog-proof, from borrowed parts: what
/// [`TlogProof::to_bytes`] returns, written into one buffer of the right
/// size, so a server answering many proofs against one checkpoint neither
/// copies the checkpoint into a [`TlogProof`] nor allocates a line at a time.
pub fn tlog_proof_bytes(
    extra: Option<&[u8]>,
    index: LeafIndex,
    proof: &[Hash],
    checkpoint: &[u8],
) -> Vec<u8> {
    // 44 base64 characters and a newline a hash; 20 digits hold any u64.
    const HASH_LINE: usize = 45;
    let extra_len = extra.map_or(0, |e| "extra \n".len() + e.len().div_ceil(3) * 4);
    let mut out = Vec::with_capacity(
        TLOG_PROOF_HEADER.len()
            + 1
            + extra_len
            + "index \n".len()
            + 20
            + proof.len() * HASH_LINE
            + 1
            + checkpoint.len(),
    );
    out.extend_from_slice(TLOG_PROOF_HEADER.as_bytes());
    out.push(b'\n');
    if let Some(extra) = extra {
        out.extend_from_slice(b"extra ");
        out.extend_from_slice(BASE64.encode(extra).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"index ");
    out.extend_from_slice(index.get().to_string().as_bytes());
    out.push(b'\n');
    let mut line = [0u8; HASH_LINE];
    line[HASH_LINE - 1] = b'\n';
    for h in proof {
        // A 32-byte hash is always 44 characters of padded base64, so the
        // encoding cannot run out of room.
        let written = BASE64
            .encode_slice(h.as_bytes(), &mut line[..HASH_LINE - 1])
            .expect("44 bytes hold a 32-byte hash in base64");
        debug_assert_eq!(written, HASH_LINE - 1);
        out.extend_from_slice(&line);
    }
    out.push(b'\n');
    out.extend_from_slice(checkpoint);
    out
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
        tlog_proof_bytes(
            self.extra.as_deref(),
            self.index,
            &self.proof,
            &self.checkpoint,
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyName, KeyType, SignerKey};
    use crate::tree::{inclusion_proof, MemoryTree};
    use crate::types::TreeSize;

    struct World {
        tree: MemoryTree,
        log: SignerKey,
        witnesses: Vec<SignerKey>,
        policy: WitnessPolicy,
    }

    const ORIGIN: &str = "daylight.example/log";

    fn world() -> World {
        let mut tree = MemoryTree::new();
        for i in 0..50u32 {
            tree.append(format!("entry {i}").as_bytes());
        }
        let log = SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [1; 32]);
        let witnesses: Vec<SignerKey> = (0..3u8)
            .map(|i| {
                SignerKey::from_seed(
                    KeyName::new(&format!("w{i}.example")).unwrap(),
                    KeyType::CosignatureV1,
                    [10 + i; 32],
                )
            })
            .collect();
        let policy = WitnessPolicy::k_of_n(
            log.verifier().clone(),
            witnesses.iter().map(|w| w.verifier().clone()).collect(),
            2,
        );
        World {
            tree,
            log,
            witnesses,
            policy,
        }
    }

    /// A bundle for `index` against the checkpoint at `size`, cosigned by `by`.
    fn bundle(w: &World, index: u64, size: u64, by: &[usize]) -> TlogProof {
        let root = crate::tree::tree_hash(TreeSize(size), &w.tree).unwrap();
        let mut note = Checkpoint::new(ORIGIN, TreeSize(size), root)
            .sign(&w.log)
            .unwrap();
        for &i in by {
            note.sign(&w.witnesses[i], 1_800_000_000 + i as u64)
                .unwrap();
        }
        TlogProof {
            extra: None,
            index: LeafIndex(index),
            proof: inclusion_proof(LeafIndex(index), TreeSize(size), &w.tree).unwrap_or_default(),
            checkpoint: note.to_bytes(),
        }
    }

    #[test]
    fn valid_bundle_verifies_and_round_trips() {
        let w = world();
        let b = bundle(&w, 7, 50, &[0, 2]);
        let parsed = TlogProof::parse(&b.to_bytes()).unwrap();
        assert_eq!(parsed, b);
        let v = parsed.verify(b"entry 7", &w.policy).unwrap();
        assert_eq!(v.checkpoint.size, TreeSize(50));
        assert_eq!(v.cosignatures.len(), 2);
    }

    #[test]
    fn every_tampering_is_refused_with_its_reason() {
        let w = world();
        let good = bundle(&w, 7, 50, &[0, 1, 2]);
        // Other entry bytes (a flipped bit).
        assert!(matches!(
            good.verify(b"entry 6", &w.policy),
            Err(TlogProofError::Inclusion(_))
        ));
        // Wrong index.
        let mut wrong_index = good.clone();
        wrong_index.index = LeafIndex(8);
        assert!(matches!(
            wrong_index.verify(b"entry 7", &w.policy),
            Err(TlogProofError::Inclusion(_))
        ));
        // A flipped bit in a proof hash.
        let mut flipped = good.clone();
        flipped.proof[2].0[5] ^= 0x10;
        assert!(matches!(
            flipped.verify(b"entry 7", &w.policy),
            Err(TlogProofError::Inclusion(ProofError::RootMismatch { .. }))
        ));
        // An old checkpoint that does not contain the entry.
        let mut old = bundle(&w, 7, 50, &[0, 1]);
        old.checkpoint = bundle(&w, 0, 5, &[0, 1]).checkpoint;
        assert!(matches!(
            old.verify(b"entry 7", &w.policy),
            Err(TlogProofError::Inclusion(ProofError::IndexNotInTree { .. }))
        ));
        // Only one cosignature: quorum 2 not met.
        let one = bundle(&w, 7, 50, &[1]);
        assert_eq!(
            one.verify(b"entry 7", &w.policy),
            Err(TlogProofError::QuorumNotMet { valid: 1 })
        );
        // A cosignature line altered.
        let text = String::from_utf8(good.to_bytes()).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("\u{2014} w1.example "))
            .unwrap();
        let mut sig = line.as_bytes().to_vec();
        let at = sig.len() - 10;
        sig[at] = if sig[at] == b'A' { b'B' } else { b'A' };
        let altered = text.replace(line, std::str::from_utf8(&sig).unwrap());
        let altered = TlogProof::parse(altered.as_bytes()).unwrap();
        assert!(matches!(
            altered.verify(b"entry 7", &w.policy),
            Err(TlogProofError::Cosignature(_))
        ));
        // Log signature dropped (cosignatures alone are not enough).
        let without_log: String = text
            .lines()
            .filter(|l| !l.starts_with(&format!("\u{2014} {ORIGIN} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let without_log = TlogProof::parse(without_log.as_bytes()).unwrap();
        assert!(matches!(
            without_log.verify(b"entry 7", &w.policy),
            Err(TlogProofError::Checkpoint(CheckpointError::Note(
                NoteError::NoKnownSignature
            )))
        ));
        // Signed by another log of the same name.
        let mut impostor = bundle(&w, 7, 50, &[0, 1]);
        let fake = SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [99; 32]);
        let cp = Checkpoint::parse_text(Note::parse(&impostor.checkpoint).unwrap().text()).unwrap();
        impostor.checkpoint = cp.sign(&fake).unwrap().to_bytes();
        assert!(matches!(
            impostor.verify(b"entry 7", &w.policy),
            Err(TlogProofError::Checkpoint(_))
        ));
        // A log the policy does not know.
        let stranger = SignerKey::from_seed(
            KeyName::new("other.example").unwrap(),
            KeyType::Ed25519,
            [5; 32],
        );
        let mut other = good.clone();
        other.checkpoint = Checkpoint::new("other.example", cp.size, cp.root)
            .sign(&stranger)
            .unwrap()
            .to_bytes();
        assert_eq!(
            other.verify(b"entry 7", &w.policy),
            Err(TlogProofError::UnknownLog("other.example".into()))
        );
    }

    #[test]
    fn malformed_bundles_are_refused() {
        let w = world();
        let text = String::from_utf8(bundle(&w, 7, 50, &[0, 1]).to_bytes()).unwrap();
        for bad in [
            text.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
            text.replacen("index 7", "index 07", 1),
            text.replacen("index 7\n", "", 1),
            text.replacen("index 7\n", "index 7\nnot-base64!\n", 1),
            text.replacen("\n\n", "\n", 1),
            text.replacen("index 7\n", "extra %%%\nindex 7\n", 1),
        ] {
            assert!(
                matches!(
                    TlogProof::parse(bad.as_bytes()),
                    Err(TlogProofError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let many = text.replacen(
            "index 7\n",
            &format!(
                "index 7\n{}",
                format!("{}\n", crate::hash::Hash::default().to_base64()).repeat(64)
            ),
            1,
        );
        assert_eq!(
            TlogProof::parse(many.as_bytes()),
            Err(TlogProofError::Malformed("too many proof lines"))
        );
    }

    /// The text form as it was first written, line by line: the oracle for
    /// [`tlog_proof_bytes`].
    fn bytes_line_by_line(p: &TlogProof) -> Vec<u8> {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &p.extra {
            out.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", p.index));
        for h in &p.proof {
            out.push_str(&h.to_base64());
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&p.checkpoint);
        bytes
    }

    #[test]
    fn one_buffer_encoding_matches_line_by_line() {
        let extras: [Option<Vec<u8>>; 5] = [
            None,
            Some(vec![]),
            Some(vec![1]),
            Some(vec![1, 2]),
            Some((0..=255).collect()),
        ];
        for lines in 0..=MAX_PROOF_LINES {
            for (k, extra) in extras.iter().enumerate() {
                let p = TlogProof {
                    extra: extra.clone(),
                    index: LeafIndex([0, 1, 9, 10, u64::MAX - 1][k] + lines as u64 % 2),
                    proof: (0..lines)
                        .map(|i| leaf_hash(format!("{i}").as_bytes()))
                        .collect(),
                    checkpoint: b"origin\n1\nroot\n\n\xe2\x80\x94 sig\n".to_vec(),
                };
                let bytes = p.to_bytes();
                assert_eq!(bytes, bytes_line_by_line(&p), "{lines} lines, extra {k}");
                assert_eq!(TlogProof::parse(&bytes).as_ref(), Ok(&p));
            }
        }
    }
}
