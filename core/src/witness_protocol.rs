//! C2SP tlog-witness wire formats, both sides: the `add-checkpoint` request
//! body, the `409 Conflict` size body, the `200` cosignature lines and the
//! monitoring path. Pure text handling: no I/O, no signature checks (the
//! witness verifies the checkpoint it finds in the body with [`crate::note`]
//! and [`crate::proof`]).
//!
//! Request body, as the spec writes it:
//!
//! ```text
//! old 20852014
//! PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
//! ...
//!
//! example.com/behind-the-sofa
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//!
//! — example.com/behind-the-sofa Az3grlgt...
//! ```

use sha2::{Digest, Sha256};

use crate::hash::Hash;
use crate::note::{NoteError, NoteSignature};
use crate::types::{parse_decimal, TreeSize};

/// The most consistency-proof lines a client may send (the spec's limit:
/// enough for any tree of up to 2^63 leaves).
pub const MAX_PROOF_LINES: usize = 63;

/// The path a witness serves add-checkpoint on, below its submission prefix.
pub const ADD_CHECKPOINT_PATH: &str = "/add-checkpoint";

/// The Content-Type of a `409 Conflict` answer, whose body is the witness's
/// latest cosigned size.
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why an add-checkpoint body, a size body or a cosignature answer was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum WitnessProtocolError {
    /// The body does not start with an `old <size>` line ending in a newline.
    #[error("the first line must be \"old <size>\" and end in a newline")]
    MissingOldLine,
    /// The old size is not a decimal without leading zeros.
    #[error("old size {0:?} is not a decimal number without leading zeros")]
    BadOldSize(String),
    /// A consistency-proof line is not base64 of 32 bytes.
    #[error("consistency proof line {line} is not a base64 32-byte hash")]
    BadProofLine {
        /// One-based line number of the proof line (the old line is line 1).
        line: usize,
    },
    /// More consistency-proof lines than the spec allows.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// The proof lines are not followed by an empty line.
    #[error("no empty line between the consistency proof and the checkpoint")]
    MissingEmptyLine,
    /// Nothing follows the empty line.
    #[error("no checkpoint after the empty line")]
    MissingCheckpoint,
    /// A size body is not `<decimal>\n`.
    #[error("size body must be a decimal number followed by a newline")]
    BadSizeBody,
    /// A cosignature answer is not one or more note signature lines.
    #[error("cosignature answer: {0}")]
    BadCosignatures(NoteError),
}

/// The body of `POST <prefix>/add-checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness last
    /// cosigned for this log (0 if none).
    pub old: TreeSize,
    /// The consistency proof from `old` to the checkpoint's size (empty when
    /// `old` is 0 or equal to the checkpoint's size).
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim (not parsed or verified here).
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// Parses a request body. Only the framing is checked here: the old
    /// line, at most [`MAX_PROOF_LINES`] proof hashes, the empty line and a
    /// non-empty rest, which is returned verbatim as the checkpoint.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, WitnessProtocolError> {
        let mut rest = body;
        let old_line = take_line(&mut rest).ok_or(WitnessProtocolError::MissingOldLine)?;
        let old_text = old_line
            .strip_prefix(b"old ")
            .ok_or(WitnessProtocolError::MissingOldLine)?;
        let old_text = std::str::from_utf8(old_text)
            .map_err(|_| WitnessProtocolError::BadOldSize(lossy(old_text)))?;
        let old = parse_decimal(old_text)
            .map(TreeSize)
            .ok_or_else(|| WitnessProtocolError::BadOldSize(old_text.to_owned()))?;

        let mut proof = Vec::new();
        loop {
            let line = take_line(&mut rest).ok_or(WitnessProtocolError::MissingEmptyLine)?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(WitnessProtocolError::TooManyProofLines);
            }
            let hash = std::str::from_utf8(line)
                .ok()
                .and_then(Hash::from_base64)
                .ok_or(WitnessProtocolError::BadProofLine {
                    line: proof.len() + 2,
                })?;
            proof.push(hash);
        }
        if rest.is_empty() {
            return Err(WitnessProtocolError::MissingCheckpoint);
        }
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint: rest.to_vec(),
        })
    }

    /// The request body: old line, proof lines, empty line, checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old).into_bytes();
        for hash in &self.proof {
            out.extend_from_slice(hash.to_base64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// The body of a `409 Conflict` answer: the latest cosigned size and a newline.
pub fn format_size_body(size: TreeSize) -> String {
    format!("{size}\n")
}

/// Parses the body of a `409 Conflict` answer (client side).
pub fn parse_size_body(body: &[u8]) -> Result<TreeSize, WitnessProtocolError> {
    let text = body
        .strip_suffix(b"\n")
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or(WitnessProtocolError::BadSizeBody)?;
    parse_decimal(text)
        .map(TreeSize)
        .ok_or(WitnessProtocolError::BadSizeBody)
}

/// Formats cosignature lines as a `200` answer carries them.
pub fn format_cosignatures(signatures: &[NoteSignature]) -> Vec<u8> {
    signatures
        .iter()
        .flat_map(|s| s.to_line().into_bytes())
        .collect()
}

/// Parses a `200` answer (client side): one or more note signature lines,
/// each ending in a newline. They are not verified here: add them to the
/// checkpoint's note and verify with the witness keys you trust
/// ([`crate::cosignature::verify_cosignatures`]).
pub fn parse_cosignatures(body: &[u8]) -> Result<Vec<NoteSignature>, WitnessProtocolError> {
    let bad = WitnessProtocolError::BadCosignatures;
    let text = std::str::from_utf8(body).map_err(|_| bad(NoteError::Malformed("not UTF-8")))?;
    let lines = text.strip_suffix('\n').ok_or(bad(NoteError::Malformed(
        "signature lines must end in a newline",
    )))?;
    if lines.is_empty() {
        return Err(bad(NoteError::Malformed("no signature lines")));
    }
    if lines.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(bad(NoteError::Malformed("control character")));
    }
    lines
        .split('\n')
        .map(|line| NoteSignature::parse_line(line).map_err(bad))
        .collect()
}

/// The monitoring name of a log: lower-case hex SHA-256 of its origin line.
pub fn origin_hash(origin: &str) -> String {
    Hash(Sha256::digest(origin.as_bytes()).into()).to_hex()
}

/// The monitoring path, below a witness's monitoring prefix, of the latest
/// checkpoint it cosigned for `origin`: `/<origin hash>/checkpoint`.
pub fn checkpoint_path(origin: &str) -> String {
    format!("/{}/checkpoint", origin_hash(origin))
}

/// Takes one newline-terminated line off the front of `rest`, without its
/// newline; `None` if no newline is left.
fn take_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..end];
    *rest = &rest[end + 1..];
    Some(line)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyId, KeyName};

    const EXAMPLE: &[u8] =
        include_bytes!("../testdata/c2sp/tlog-witness_add-checkpoint_request.txt");

    #[test]
    fn parses_the_spec_example_and_writes_it_back_byte_for_byte() {
        let req = AddCheckpoint::parse(EXAMPLE).unwrap();
        assert_eq!(req.old, TreeSize(20852014));
        assert_eq!(req.proof.len(), 4);
        assert_eq!(
            req.proof[0].to_base64(),
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
        );
        assert_eq!(
            req.proof[3].to_base64(),
            "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0="
        );
        assert!(req
            .checkpoint
            .starts_with(b"example.com/behind-the-sofa\n20852163\n"));
        // The checkpoint part is a note of its own.
        let note = crate::note::Note::parse(&req.checkpoint).unwrap();
        assert_eq!(note.signatures().len(), 1);
        assert_eq!(req.to_bytes(), EXAMPLE);
    }

    #[test]
    fn old_zero_without_proof_round_trips() {
        let req = AddCheckpoint {
            old: TreeSize(0),
            proof: Vec::new(),
            checkpoint:
                b"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\xe2\x80\x94 o AAAAAAA=\n"
                    .to_vec(),
        };
        let bytes = req.to_bytes();
        assert!(bytes.starts_with(b"old 0\n\no\n0\n"));
        assert_eq!(AddCheckpoint::parse(&bytes).unwrap(), req);
    }

    #[test]
    fn sixty_three_proof_lines_are_fine_sixty_four_are_not() {
        let h = crate::hash::leaf_hash(b"x");
        let mut req = AddCheckpoint {
            old: TreeSize(1),
            proof: vec![h; MAX_PROOF_LINES],
            checkpoint: b"cp\n".to_vec(),
        };
        assert_eq!(AddCheckpoint::parse(&req.to_bytes()).unwrap(), req);
        req.proof.push(h);
        assert_eq!(
            AddCheckpoint::parse(&req.to_bytes()),
            Err(WitnessProtocolError::TooManyProofLines)
        );
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        use WitnessProtocolError as E;
        let h = crate::hash::leaf_hash(b"x").to_base64();
        let cases: Vec<(Vec<u8>, E)> = vec![
            (b"".to_vec(), E::MissingOldLine),
            (b"old 5".to_vec(), E::MissingOldLine),
            (b"new 5\n\ncp\n".to_vec(), E::MissingOldLine),
            (b"old  5\n\ncp\n".to_vec(), E::BadOldSize(" 5".into())),
            (b"old 05\n\ncp\n".to_vec(), E::BadOldSize("05".into())),
            (b"old -1\n\ncp\n".to_vec(), E::BadOldSize("-1".into())),
            (b"old 5\r\n\ncp\n".to_vec(), E::BadOldSize("5\r".into())),
            (
                b"old 18446744073709551616\n\ncp\n".to_vec(),
                E::BadOldSize("18446744073709551616".into()),
            ),
            (
                format!("old 5\n{h}\nAAAA\n\ncp\n").into_bytes(),
                E::BadProofLine { line: 3 },
            ),
            (
                format!("old 5\n {h}\n\ncp\n").into_bytes(),
                E::BadProofLine { line: 2 },
            ),
            (format!("old 5\n{h}\n").into_bytes(), E::MissingEmptyLine),
            (format!("old 5\n{h}").into_bytes(), E::MissingEmptyLine),
            (b"old 5\n".to_vec(), E::MissingEmptyLine),
            (b"old 5\n\n".to_vec(), E::MissingCheckpoint),
            (
                b"old \xff\n\ncp\n".to_vec(),
                E::BadOldSize("\u{fffd}".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                AddCheckpoint::parse(&body),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn size_body_round_trips_and_is_strict() {
        assert_eq!(format_size_body(TreeSize(42)), "42\n");
        assert_eq!(format_size_body(TreeSize(0)), "0\n");
        assert_eq!(parse_size_body(b"42\n"), Ok(TreeSize(42)));
        assert_eq!(parse_size_body(b"0\n"), Ok(TreeSize(0)));
        for bad in [&b"42"[..], b"042\n", b"\n", b"42\n\n", b" 42\n", b"x\n"] {
            assert_eq!(parse_size_body(bad), Err(WitnessProtocolError::BadSizeBody));
        }
    }

    #[test]
    fn cosignature_lines_round_trip() {
        let sig = NoteSignature {
            name: KeyName::new("witness.example/w1").unwrap(),
            id: KeyId(0x0102_0304),
            signature: vec![7; 72],
        };
        let body = format_cosignatures(&[sig.clone(), sig.clone()]);
        assert_eq!(parse_cosignatures(&body).unwrap(), vec![sig.clone(), sig]);
        for bad in [
            &b""[..],
            b"\n",
            b"-- w AAAAAAAA\n",
            b"\xe2\x80\x94 w AAAAAAAA",
        ] {
            assert!(parse_cosignatures(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origin_hash_is_lower_hex_sha256() {
        // SHA-256("example.com/behind-the-sofa"), computed with Python's hashlib.
        let h = origin_hash("example.com/behind-the-sofa");
        assert_eq!(
            h,
            "5fd2dc0beb4ce54da5050cf6d5c75248b023abad441c3cecde3976fbe9da4fe4"
        );
        assert_eq!(
            checkpoint_path("example.com/behind-the-sofa"),
            format!("/{h}/checkpoint")
        );
        assert_eq!(
            origin_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
