//! C2SP tlog-checkpoint: the signed statement "the log with this origin has
//! this many entries and this root".

use crate::hash::Hash;
use crate::note::{Note, NoteError, SignerKey, VerifierKey};
use crate::types::{parse_decimal, TreeSize};

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CheckpointError {
    /// The text is not a checkpoint body.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The note around it is bad or not signed by the log.
    #[error("checkpoint signature: {0}")]
    Note(#[from] NoteError),
    /// Signed by the log key but for another origin.
    #[error("checkpoint origin {got:?} is not the expected {expected:?}")]
    WrongOrigin {
        /// The origin the log key is for.
        expected: String,
        /// The origin in the checkpoint.
        got: String,
    },
}

/// A checkpoint body: origin, size, root and optional extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: TreeSize,
    /// The root hash at that size.
    pub root: Hash,
    /// Opaque extension lines (not recommended; kept verbatim).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint with no extension lines.
    pub fn new(origin: &str, size: TreeSize, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses a checkpoint body (a note's text).
    pub fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin line"));
        }
        let size = lines
            .next()
            .and_then(parse_decimal)
            .ok_or(CheckpointError::Malformed(
                "second line must be the decimal tree size",
            ))?;
        let root = lines
            .next()
            .and_then(Hash::from_base64)
            .ok_or(CheckpointError::Malformed(
                "third line must be a base64 32-byte root hash",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line"));
        }
        if text.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(CheckpointError::Malformed("control character"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size: TreeSize(size),
            root,
            extensions,
        })
    }

    /// The body text, ending in a newline.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Signs the checkpoint with the log's key.
    pub fn sign(&self, log_key: &SignerKey) -> Result<Note, NoteError> {
        let mut note = Note::new(&self.to_text())?;
        note.sign(log_key, 0)?;
        Ok(note)
    }
}

/// A checkpoint whose log signature has been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The whole note, with every signature line (cosignatures included).
    pub note: Note,
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint and verifies the log's signature. The log
    /// key's name must be the checkpoint's origin.
    pub fn open(bytes: &[u8], log_key: &VerifierKey) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(bytes)?;
        Self::open_note(note, log_key)
    }

    /// As [`SignedCheckpoint::open`], for an already parsed note.
    pub fn open_note(
        note: Note,
        log_key: &VerifierKey,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        Self::open_note_any(note, &[log_key]).map(|(cp, _)| cp)
    }

    /// Parses a signed checkpoint signed by at least one of `log_keys` (the
    /// keys of one log, named by its origin, as after a key rotation: the
    /// log signs with the old and the new key during the transition).
    /// Returns the checkpoint and which of the keys signed it; a signature
    /// by any of them that fails refuses the note.
    pub fn open_any(
        bytes: &[u8],
        log_keys: &[&VerifierKey],
    ) -> Result<(SignedCheckpoint, Vec<usize>), CheckpointError> {
        Self::open_note_any(Note::parse(bytes)?, log_keys)
    }

    fn open_note_any(
        note: Note,
        log_keys: &[&VerifierKey],
    ) -> Result<(SignedCheckpoint, Vec<usize>), CheckpointError> {
        let checkpoint = Checkpoint::parse_text(note.text())?;
        if let Some(k) = log_keys
            .iter()
            .find(|k| checkpoint.origin != k.name().as_str())
        {
            return Err(CheckpointError::WrongOrigin {
                expected: k.name().to_string(),
                got: checkpoint.origin,
            });
        }
        let signed_by = note.verify(log_keys)?.into_iter().map(|v| v.key).collect();
        Ok((SignedCheckpoint { checkpoint, note }, signed_by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyName, KeyType};

    fn log_key() -> SignerKey {
        SignerKey::from_seed(
            KeyName::new("log.example/daylight").unwrap(),
            KeyType::Ed25519,
            [7; 32],
        )
    }

    #[test]
    fn sign_open_round_trip() {
        let key = log_key();
        let cp = Checkpoint::new(
            "log.example/daylight",
            TreeSize(42),
            crate::hash::leaf_hash(b"r"),
        );
        let bytes = cp.sign(&key).unwrap().to_bytes();
        let opened = SignedCheckpoint::open(&bytes, key.verifier()).unwrap();
        assert_eq!(opened.checkpoint, cp);
    }

    #[test]
    fn wrong_origin_old_size_and_tampering_are_refused() {
        let key = log_key();
        let root = crate::hash::leaf_hash(b"r");
        let other = Checkpoint::new("other.example", TreeSize(1), root);
        let bytes = other.sign(&key).unwrap().to_bytes();
        assert!(matches!(
            SignedCheckpoint::open(&bytes, key.verifier()),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        let cp = Checkpoint::new("log.example/daylight", TreeSize(42), root);
        let text = String::from_utf8(cp.sign(&key).unwrap().to_bytes()).unwrap();
        let tampered = text.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            SignedCheckpoint::open(tampered.as_bytes(), key.verifier()),
            Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
        ));
    }

    #[test]
    fn a_checkpoint_signed_by_two_keys_of_one_log_opens_under_either() {
        let old = log_key();
        let new = SignerKey::from_seed(
            KeyName::new("log.example/daylight").unwrap(),
            KeyType::Ed25519,
            [8; 32],
        );
        let cp = Checkpoint::new(
            "log.example/daylight",
            TreeSize(3),
            crate::hash::leaf_hash(b"r"),
        );
        let mut note = Note::new(&cp.to_text()).unwrap();
        note.sign(&new, 0).unwrap();
        note.sign(&old, 0).unwrap();
        let bytes = note.to_bytes();
        SignedCheckpoint::open(&bytes, old.verifier()).unwrap();
        SignedCheckpoint::open(&bytes, new.verifier()).unwrap();
        let (_, by) =
            SignedCheckpoint::open_any(&bytes, &[old.verifier(), new.verifier()]).unwrap();
        assert_eq!(by, [1, 0]);
        // A bad signature by either known key refuses the note.
        let text = String::from_utf8(bytes).unwrap();
        let last = text.trim_end().rsplit('\n').next().unwrap().to_string();
        // A character well inside the signature bytes (past the key ID).
        let mut flipped: Vec<char> = last.chars().collect();
        let at = flipped.len() - 10;
        flipped[at] = if flipped[at] == 'A' { 'B' } else { 'A' };
        let flipped: String = flipped.into_iter().collect();
        let tampered = text.replace(&last, &flipped);
        assert!(
            SignedCheckpoint::open_any(tampered.as_bytes(), &[old.verifier(), new.verifier()])
                .is_err()
        );
        // A stranger's key alone opens nothing.
        let stranger = SignerKey::from_seed(
            KeyName::new("log.example/daylight").unwrap(),
            KeyType::Ed25519,
            [9; 32],
        );
        assert!(SignedCheckpoint::open(text.as_bytes(), stranger.verifier()).is_err());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let root = crate::hash::leaf_hash(b"r").to_base64();
        for bad in [
            format!("\n1\n{root}\n"),
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n1\n{root}"),
            format!("o\n1\n{root}\n\n"),
            "o\n1\n".to_owned(),
        ] {
            assert!(Checkpoint::parse_text(&bad).is_err(), "{bad:?}");
        }
        let ext = format!("o\n1\n{root}\next one\n");
        let cp = Checkpoint::parse_text(&ext).unwrap();
        assert_eq!(cp.extensions, ["ext one"]);
        assert_eq!(cp.to_text(), ext);
    }
}
