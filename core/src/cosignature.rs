//! C2SP tlog-cosignature, cosignature/v1 (signature type 0x04): a witness's
//! timestamped Ed25519 signature over `cosignature/v1\ntime <T>\n<checkpoint>`.

use ed25519_dalek::VerifyingKey;

use crate::note::{verify_ed25519, KeyType, Note, NoteError, SignerKey, VerifierKey};

/// The message a cosignature/v1 signature covers.
pub fn cosigned_message(timestamp: u64, checkpoint_text: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}")
}

/// The signature bytes (after the key ID): big-endian timestamp, then the
/// Ed25519 signature.
pub(crate) fn cosignature_bytes(
    signer: &SignerKey,
    checkpoint_text: &str,
    timestamp: u64,
) -> [u8; 72] {
    let sig = signer.sign_raw(cosigned_message(timestamp, checkpoint_text).as_bytes());
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..].copy_from_slice(&sig);
    out
}

/// Verifies cosignature bytes and returns their timestamp.
pub(crate) fn verify_cosignature_bytes(
    key: &VerifyingKey,
    checkpoint_text: &str,
    signature: &[u8],
) -> Option<u64> {
    if signature.len() != 72 {
        return None;
    }
    let timestamp = u64::from_be_bytes(signature[..8].try_into().ok()?);
    if timestamp > i64::MAX as u64 {
        return None;
    }
    let message = cosigned_message(timestamp, checkpoint_text);
    verify_ed25519(key, message.as_bytes(), &signature[8..]).then_some(timestamp)
}

/// A verified cosignature: which witness, and when it says it saw the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// Position of the witness key in the list given.
    pub witness: usize,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
}

/// The valid cosignatures on `note` by any of `witnesses` (cosignature/v1
/// keys). Lines by other keys are ignored; a line by a listed witness that
/// does not verify is an error, since no honest witness writes one.
pub fn verify_cosignatures(
    note: &Note,
    witnesses: &[&VerifierKey],
) -> Result<Vec<Cosignature>, NoteError> {
    let mut out = Vec::new();
    for sig in note.signatures() {
        let Some(pos) = witnesses
            .iter()
            .position(|w| w.name() == &sig.name && w.id() == sig.id)
        else {
            continue;
        };
        let key = witnesses[pos];
        if key.key_type() != KeyType::CosignatureV1 {
            continue;
        }
        let timestamp = verify_cosignature_bytes(key.public_key(), note.text(), &sig.signature)
            .ok_or_else(|| NoteError::InvalidSignature {
                name: sig.name.to_string(),
                id: sig.id,
            })?;
        out.push(Cosignature {
            witness: pos,
            timestamp,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyName, NoteError};

    fn witness(name: &str, seed: u8) -> SignerKey {
        SignerKey::from_seed(
            KeyName::new(name).unwrap(),
            KeyType::CosignatureV1,
            [seed; 32],
        )
    }

    const BODY: &str = "log.example\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn cosign_and_verify_with_timestamp() {
        let w = witness("w1", 1);
        let mut note = Note::new(BODY).unwrap();
        note.sign(&w, 1_700_000_000).unwrap();
        let got = verify_cosignatures(&note, &[w.verifier()]).unwrap();
        assert_eq!(
            got,
            [Cosignature {
                witness: 0,
                timestamp: 1_700_000_000
            }]
        );
    }

    #[test]
    fn tampered_cosignatures_are_refused() {
        let w = witness("w1", 1);
        let mut note = Note::new(BODY).unwrap();
        note.sign(&w, 1_700_000_000).unwrap();
        let sig = note.signatures()[0].clone();
        // Timestamp changed: the signature covers it.
        let mut later = sig.clone();
        later.signature[7] ^= 1;
        // Signature bit flipped.
        let mut flipped = sig.clone();
        flipped.signature[40] ^= 1;
        // Truncated to a plain Ed25519 length.
        let mut short = sig.clone();
        short.signature.truncate(64);
        for bad in [later, flipped, short] {
            let mut n = Note::new(BODY).unwrap();
            n.add_signature(bad).unwrap();
            assert!(matches!(
                verify_cosignatures(&n, &[w.verifier()]),
                Err(NoteError::InvalidSignature { .. })
            ));
        }
        // Same cosignature on another checkpoint body.
        let mut other =
            Note::new("log.example\n6\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n").unwrap();
        other.add_signature(sig).unwrap();
        assert!(verify_cosignatures(&other, &[w.verifier()]).is_err());
        // A witness not in the list is simply not counted.
        let stranger = witness("w2", 2);
        assert_eq!(
            verify_cosignatures(&note, &[stranger.verifier()]).unwrap(),
            []
        );
    }

    #[test]
    fn timestamps_past_i64_are_refused() {
        let w = witness("w1", 1);
        let mut note = Note::new(BODY).unwrap();
        note.sign(&w, u64::MAX).unwrap();
        assert!(verify_cosignatures(&note, &[w.verifier()]).is_err());
    }
}
