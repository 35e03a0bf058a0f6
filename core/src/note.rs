//! C2SP signed-note: notes signed with Ed25519, key IDs, and the verifier-key
//! (`name+keyid+base64`) and signer-key (`PRIVATE+KEY+name+keyid+base64`)
//! text formats of golang.org/x/mod/sumdb/note.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The most signature lines a note may carry (as Go's note package).
pub const MAX_SIGNATURES: usize = 100;

/// Why a note, key or signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum NoteError {
    /// The note does not have the signed-note shape.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// More signature lines than allowed.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// The same key signed twice.
    #[error("duplicate signature by {name}+{id}")]
    DuplicateSignature {
        /// Key name.
        name: String,
        /// Key ID.
        id: KeyId,
    },
    /// A signature by a known key that does not verify.
    #[error("invalid signature by {name}+{id}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key ID.
        id: KeyId,
    },
    /// Two of the keys given have the same name and ID.
    #[error("ambiguous key {name}+{id}: given twice")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key ID.
        id: KeyId,
    },
    /// No signature by any of the known keys.
    #[error("no signature by a known key")]
    NoKnownSignature,
    /// A key's text form does not parse.
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    /// A key name that the format forbids.
    #[error("invalid key name {0:?}: must be non-empty, with no spaces or '+'")]
    BadKeyName(String),
}

/// A key's 32-bit ID: the first four bytes of a hash of its name, type and key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// What a key signs, by the signature type byte of the signed-note spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// 0x01: plain Ed25519 over the note text (logs, agencies).
    Ed25519,
    /// 0x04: C2SP tlog-cosignature cosignature/v1, timestamped Ed25519 (witnesses).
    CosignatureV1,
}

impl KeyType {
    /// The type byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::CosignatureV1 => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<KeyType> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::CosignatureV1),
            _ => None,
        }
    }
}

/// A key name: non-empty, valid UTF-8, no Unicode spaces, no '+'.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Checks a name against the signed-note rules.
    pub fn new(name: &str) -> Result<KeyName, NoteError> {
        if name.is_empty()
            || name.contains('+')
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(NoteError::BadKeyName(name.chars().take(100).collect()));
        }
        Ok(KeyName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key ID of an Ed25519 public key of `key_type` under `name`.
pub fn key_id(name: &KeyName, key_type: KeyType, public: &[u8; 32]) -> KeyId {
    let mut h = Sha256::new();
    h.update(name.0.as_bytes());
    h.update(b"\n");
    h.update([key_type.byte()]);
    h.update(public);
    let d = h.finalize();
    KeyId(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
}

/// A public key as written down everywhere: `<name>+<keyid hex8>+<base64(type || key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: KeyName,
    id: KeyId,
    key_type: KeyType,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses the verifier-key text format, checking the key ID.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let text = text.trim_end_matches(['\n', '\r']);
        let mut parts = text.splitn(3, '+');
        let name = parts.next().ok_or(NoteError::BadKey("missing name"))?;
        let id_hex = parts.next().ok_or(NoteError::BadKey("missing key ID"))?;
        let data = parts.next().ok_or(NoteError::BadKey("missing key data"))?;
        let name = KeyName::new(name)?;
        let id = parse_key_id(id_hex)?;
        let (key_type, public) = decode_key_data(data)?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::BadKey("not a valid Ed25519 public key"))?;
        // A small-order key verifies forged signatures under lax rules; no
        // honest signer has one.
        if key.is_weak() {
            return Err(NoteError::BadKey("weak (small-order) Ed25519 public key"));
        }
        // y at or above the field's prime names the same point as y - p:
        // no signature verifies under such a key with the record rule, and
        // one point must have one name (key IDs hash these bytes).
        if key.to_edwards().compress().as_bytes() != &public {
            return Err(NoteError::BadKey(
                "non-canonical Ed25519 public key encoding",
            ));
        }
        if key_id(&name, key_type, &public) != id {
            return Err(NoteError::BadKey("key ID does not match name and key"));
        }
        Ok(VerifierKey {
            name,
            id,
            key_type,
            key,
        })
    }

    /// Builds a verifier key from its parts.
    pub fn from_parts(name: KeyName, key_type: KeyType, key: VerifyingKey) -> VerifierKey {
        let id = key_id(&name, key_type, key.as_bytes());
        VerifierKey {
            name,
            id,
            key_type,
            key,
        }
    }

    /// The key's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key's ID.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// What the key signs.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// This key as an X25519 public key (the birational map from Edwards to
    /// Montgomery form), to seal data to whoever holds the signer key
    /// ([`SignerKey::x25519_secret`]).
    pub fn x25519_public(&self) -> [u8; 32] {
        self.key.to_montgomery().to_bytes()
    }

    /// Verifies a note signature's bytes (without the key ID) over a note's text.
    /// Cosignature keys check the cosignature/v1 message built from the text.
    pub fn verify(&self, text: &str, signature: &[u8]) -> bool {
        match self.key_type {
            KeyType::Ed25519 => verify_ed25519(&self.key, text.as_bytes(), signature),
            KeyType::CosignatureV1 => {
                crate::cosignature::verify_cosignature_bytes(&self.key, text, signature).is_some()
            }
        }
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = vec![self.key_type.byte()];
        data.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, self.id, BASE64.encode(data))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

pub(crate) fn verify_ed25519(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &sig).is_ok()
}

fn parse_key_id(hex8: &str) -> Result<KeyId, NoteError> {
    if hex8.len() != 8
        || !hex8
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(NoteError::BadKey("key ID must be 8 lower-case hex digits"));
    }
    u32::from_str_radix(hex8, 16)
        .map(KeyId)
        .map_err(|_| NoteError::BadKey("key ID must be 8 lower-case hex digits"))
}

fn decode_key_data(data: &str) -> Result<(KeyType, [u8; 32]), NoteError> {
    let bytes = BASE64
        .decode(data)
        .map_err(|_| NoteError::BadKey("key data is not base64"))?;
    let (&type_byte, key) = bytes
        .split_first()
        .ok_or(NoteError::BadKey("key data is empty"))?;
    let key_type =
        KeyType::from_byte(type_byte).ok_or(NoteError::BadKey("unsupported key type"))?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| NoteError::BadKey("key must be 32 bytes"))?;
    Ok((key_type, key))
}

/// A private key in the signer-key text format
/// `PRIVATE+KEY+<name>+<keyid hex8>+<base64(type || seed)>`. Its Debug form
/// never shows the secret.
#[derive(Clone)]
pub struct SignerKey {
    verifier: VerifierKey,
    signing: SigningKey,
}

impl SignerKey {
    /// A signer for `name` from a 32-byte secret seed (the caller supplies
    /// randomness: the core does no I/O).
    pub fn from_seed(name: KeyName, key_type: KeyType, seed: [u8; 32]) -> SignerKey {
        let signing = SigningKey::from_bytes(&seed);
        let verifier = VerifierKey::from_parts(name, key_type, signing.verifying_key());
        SignerKey { verifier, signing }
    }

    /// Parses the signer-key text format, checking the key ID.
    pub fn parse(text: &str) -> Result<SignerKey, NoteError> {
        let text = text.trim_end_matches(['\n', '\r']);
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("signer key must start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let name = parts.next().ok_or(NoteError::BadKey("missing name"))?;
        let id_hex = parts.next().ok_or(NoteError::BadKey("missing key ID"))?;
        let data = parts.next().ok_or(NoteError::BadKey("missing key data"))?;
        let name = KeyName::new(name)?;
        let id = parse_key_id(id_hex)?;
        let (key_type, seed) = decode_key_data(data)?;
        let signer = SignerKey::from_seed(name, key_type, seed);
        if signer.verifier.id != id {
            return Err(NoteError::BadKey("key ID does not match name and key"));
        }
        Ok(signer)
    }

    /// The same secret used for another signature type (and so with another key ID).
    pub fn with_key_type(&self, key_type: KeyType) -> SignerKey {
        SignerKey::from_seed(
            self.verifier.name.clone(),
            key_type,
            self.signing.to_bytes(),
        )
    }

    /// The signer-key text. This is the secret: write it only to a 0600 file.
    pub fn to_secret_text(&self) -> String {
        let mut data = vec![self.verifier.key_type.byte()];
        data.extend_from_slice(self.signing.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.verifier.name,
            self.verifier.id,
            BASE64.encode(data)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.verifier.name
    }

    /// The X25519 secret that matches this key's public key under the
    /// Ed25519-to-X25519 map ([`VerifierKey::x25519_public`]): the first
    /// half of SHA-512 of the seed, the bytes Ed25519 clamps into its
    /// scalar (X25519 clamps them the same way when it uses them; as libsodium's
    /// `crypto_sign_ed25519_sk_to_curve25519` and age's ssh-ed25519
    /// recipients). Lets a registered key receive HPKE-sealed data without
    /// a second key to register.
    pub fn x25519_secret(&self) -> [u8; 32] {
        self.signing.to_scalar_bytes()
    }

    /// Raw Ed25519 signature of `message`.
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// A note signature line over `text` by this key. Cosignature keys sign
    /// the cosignature/v1 message for `timestamp`; plain keys ignore it.
    pub fn sign_note_text(&self, text: &str, timestamp: u64) -> NoteSignature {
        let sig = match self.verifier.key_type {
            KeyType::Ed25519 => self.sign_raw(text.as_bytes()).to_vec(),
            KeyType::CosignatureV1 => {
                crate::cosignature::cosignature_bytes(self, text, timestamp).to_vec()
            }
        };
        NoteSignature {
            name: self.verifier.name.clone(),
            id: self.verifier.id,
            signature: sig,
        }
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({}, secret hidden)", self.verifier)
    }
}

/// One signature line of a note: `— <name> base64(keyid || signature)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signing key's name.
    pub name: KeyName,
    /// The signing key's ID.
    pub id: KeyId,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one signature line without its newline.
    pub fn parse_line(line: &str) -> Result<NoteSignature, NoteError> {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "signature line must start with an em dash and a space",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "signature line needs a name and a signature",
        ))?;
        let name =
            KeyName::new(name).map_err(|_| NoteError::Malformed("bad key name in signature"))?;
        let raw = BASE64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("signature too short"));
        }
        Ok(NoteSignature {
            name,
            id: KeyId(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])),
            signature: raw[4..].to_vec(),
        })
    }

    /// The line, with its newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.id.0.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, BASE64.encode(raw))
    }
}

/// A signed note: a text and its signatures, parsed but not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// A signature that verified, and by which of the given keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Position of the key in the verifier list given.
    pub key: usize,
    /// The signature.
    pub signature: NoteSignature,
}

impl Note {
    /// A note with `text` and no signatures yet. The text must end in a newline
    /// and contain no control characters other than newline.
    pub fn new(text: &str) -> Result<Note, NoteError> {
        check_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note. Splits text from signatures at the last blank line.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        let msg = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        if has_control(msg) {
            return Err(NoteError::Malformed("control character"));
        }
        let split = msg
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let text = &msg[..split + 1];
        let sigs = &msg[split + 2..];
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("signatures must end in a newline"));
        }
        let mut signatures: Vec<NoteSignature> = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let sig = NoteSignature::parse_line(line)?;
            if signatures
                .iter()
                .any(|s| s.name == sig.name && s.id == sig.id)
            {
                return Err(NoteError::DuplicateSignature {
                    name: sig.name.0,
                    id: sig.id,
                });
            }
            signatures.push(sig);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// All signatures, known or not.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature, replacing any earlier one by the same key.
    pub fn add_signature(&mut self, sig: NoteSignature) -> Result<(), NoteError> {
        self.signatures
            .retain(|s| !(s.name == sig.name && s.id == sig.id));
        if self.signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        self.signatures.push(sig);
        Ok(())
    }

    /// Signs the text with `signer` (cosignature keys use `timestamp`).
    pub fn sign(&mut self, signer: &SignerKey, timestamp: u64) -> Result<(), NoteError> {
        let sig = signer.sign_note_text(&self.text, timestamp);
        self.add_signature(sig)
    }

    /// The note as bytes: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out.into_bytes()
    }

    /// Checks the signatures by the given keys. Signatures by other keys are
    /// ignored; a known key's signature that fails refuses the whole note; at
    /// least one known signature must verify.
    pub fn verify(&self, keys: &[&VerifierKey]) -> Result<Vec<VerifiedSignature>, NoteError> {
        let mut verified = Vec::new();
        for sig in &self.signatures {
            let mut matching = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.name == sig.name && k.id == sig.id);
            let Some((pos, _)) = matching.next() else {
                continue;
            };
            if matching.next().is_some() {
                return Err(NoteError::AmbiguousKey {
                    name: sig.name.0.clone(),
                    id: sig.id,
                });
            }
            if !keys[pos].verify(&self.text, &sig.signature) {
                return Err(NoteError::InvalidSignature {
                    name: sig.name.0.clone(),
                    id: sig.id,
                });
            }
            verified.push(VerifiedSignature {
                key: pos,
                signature: sig.clone(),
            });
        }
        if verified.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(verified)
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline"));
    }
    if has_control(text) {
        return Err(NoteError::Malformed("control character"));
    }
    Ok(())
}

/// The spec's rule: no character below U+0020 other than newline.
fn has_control(text: &str) -> bool {
    text.bytes().any(|b| b < 0x20 && b != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str, seed: u8) -> SignerKey {
        SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
    }

    fn signed(text: &str, by: &[&SignerKey]) -> Vec<u8> {
        let mut note = Note::new(text).unwrap();
        for s in by {
            note.sign(s, 0).unwrap();
        }
        note.to_bytes()
    }

    #[test]
    fn round_trip_and_verify() {
        let a = signer("log.example/a", 1);
        let bytes = signed("hello\nworld\n", &[&a]);
        let note = Note::parse(&bytes).unwrap();
        assert_eq!(note.text(), "hello\nworld\n");
        assert_eq!(note.to_bytes(), bytes);
        assert_eq!(note.verify(&[a.verifier()]).unwrap().len(), 1);
        let vkey = a.verifier().to_string();
        assert_eq!(VerifierKey::parse(&vkey).unwrap(), *a.verifier());
        let skey = a.to_secret_text();
        assert_eq!(SignerKey::parse(&skey).unwrap().verifier(), a.verifier());
        assert!(
            !format!("{a:?}").contains(&skey[20..]),
            "Debug must hide the secret"
        );
    }

    #[test]
    fn changed_body_is_refused() {
        let a = signer("a", 1);
        let mut bytes = signed("size 10\n", &[&a]);
        bytes[5] = b'2';
        let note = Note::parse(&bytes).unwrap();
        assert!(matches!(
            note.verify(&[a.verifier()]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn flipped_signature_bit_is_refused() {
        let a = signer("a", 1);
        let note = Note::parse(&signed("x\n", &[&a])).unwrap();
        let mut sig = note.signatures()[0].clone();
        sig.signature[10] ^= 0x01;
        let mut bad = Note::new("x\n").unwrap();
        bad.add_signature(sig).unwrap();
        assert!(matches!(
            bad.verify(&[a.verifier()]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn dropped_signature_is_refused() {
        let a = signer("a", 1);
        let b = signer("b", 2);
        let bytes = signed("x\n", &[&a, &b]);
        let text = String::from_utf8(bytes).unwrap();
        // Drop a's line: b's alone remains, which a's verifier does not know.
        let without_a: String = text
            .lines()
            .filter(|l| !l.starts_with("\u{2014} a "))
            .map(|l| format!("{l}\n"))
            .collect();
        let note = Note::parse(without_a.as_bytes()).unwrap();
        assert_eq!(
            note.verify(&[a.verifier()]),
            Err(NoteError::NoKnownSignature)
        );
        assert_eq!(note.verify(&[a.verifier(), b.verifier()]).unwrap().len(), 1);
        // Dropping every signature leaves no note at all.
        assert!(Note::parse(b"x\n\n").is_err());
    }

    #[test]
    fn unknown_key_only_is_refused_and_unknown_lines_ignored() {
        let a = signer("a", 1);
        let stranger = signer("stranger", 9);
        let note = Note::parse(&signed("x\n", &[&stranger])).unwrap();
        assert_eq!(
            note.verify(&[a.verifier()]),
            Err(NoteError::NoKnownSignature)
        );
        let note = Note::parse(&signed("x\n", &[&stranger, &a])).unwrap();
        assert_eq!(note.verify(&[a.verifier()]).unwrap().len(), 1);
    }

    #[test]
    fn duplicated_signature_line_is_refused() {
        let a = signer("a", 1);
        let mut text = String::from_utf8(signed("x\n", &[&a])).unwrap();
        let line = text.lines().last().unwrap().to_owned();
        text.push_str(&line);
        text.push('\n');
        assert!(matches!(
            Note::parse(text.as_bytes()),
            Err(NoteError::DuplicateSignature { .. })
        ));
    }

    #[test]
    fn wrong_key_name_or_id_is_not_the_key() {
        let a = signer("a", 1);
        let note = Note::parse(&signed("x\n", &[&a])).unwrap();
        // Same secret under another name: another key ID, so not recognised.
        let renamed = signer("a2", 1);
        assert_eq!(
            note.verify(&[renamed.verifier()]),
            Err(NoteError::NoKnownSignature)
        );
        // A signature line claiming a's name with another ID is ignored.
        let mut sig = note.signatures()[0].clone();
        sig.id = KeyId(sig.id.0 ^ 1);
        let mut forged = Note::new("x\n").unwrap();
        forged.add_signature(sig).unwrap();
        assert_eq!(
            forged.verify(&[a.verifier()]),
            Err(NoteError::NoKnownSignature)
        );
        // A verifier key whose ID does not match its name and key is refused.
        let vkey = a.verifier().to_string();
        let wrong_id = vkey.replacen(&a.verifier().id().to_string(), "00000000", 1);
        assert!(VerifierKey::parse(&wrong_id).is_err());
        let wrong_name = vkey.replacen("a+", "b+", 1);
        assert_eq!(
            VerifierKey::parse(&wrong_name),
            Err(NoteError::BadKey("key ID does not match name and key"))
        );
    }

    #[test]
    fn more_than_100_signatures_are_refused() {
        let a = signer("a", 1);
        let mut text = String::from_utf8(signed("x\n", &[&a])).unwrap();
        for i in 0..100 {
            let s = signer(&format!("k{i}"), 3);
            text.push_str(&s.sign_note_text("x\n", 0).to_line());
        }
        assert_eq!(
            Note::parse(text.as_bytes()),
            Err(NoteError::TooManySignatures)
        );
    }

    #[test]
    fn malformed_notes_are_refused() {
        let a = signer("a", 1);
        let good = String::from_utf8(signed("x\n", &[&a])).unwrap();
        for bad in [
            good.trim_end().to_owned(),                   // no final newline
            good.replace("\u{2014} ", "- "),              // not an em dash
            good.replace('x', "x\r"),                     // control character
            good.replacen("\n\n", "\n", 1),               // no blank line
            format!("{good}not a signature\n"),           // junk after signatures
            good.replace("\u{2014} a ", "\u{2014} a b "), // bad base64
        ] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(Note::parse(&[0xff, b'\n', b'\n']).is_err());
        assert!(Note::new("no newline").is_err());
        for name in ["", "a b", "a+b", "tab\there"] {
            assert!(KeyName::new(name).is_err(), "{name:?}");
        }
    }

    /// The verifier-key text of an Ed25519 key with these public bytes,
    /// its key ID right (so only the key itself can be refused).
    fn key_text(name: &str, public: &[u8; 32]) -> String {
        let id = key_id(&KeyName::new(name).unwrap(), KeyType::Ed25519, public);
        let mut data = vec![0x01];
        data.extend_from_slice(public);
        format!("{name}+{id}+{}", BASE64.encode(data))
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point: small order, so it "verifies" crafted signatures.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let text = key_text("weak", &identity);
        assert_eq!(
            VerifierKey::parse(&text),
            Err(NoteError::BadKey("weak (small-order) Ed25519 public key"))
        );
    }

    #[test]
    fn non_canonical_keys_are_refused() {
        // y = p + k for small k: the encodings whose y is not reduced. Some
        // decode to a point that is not of small order; each is refused.
        let mut refused = 0;
        for k in 2u8..19 {
            let mut public = [0xffu8; 32];
            public[0] = 0xed + k;
            public[31] = 0x7f;
            let Ok(key) = VerifyingKey::from_bytes(&public) else {
                continue;
            };
            if key.is_weak() {
                continue;
            }
            assert_eq!(
                VerifierKey::parse(&key_text("odd", &public)),
                Err(NoteError::BadKey(
                    "non-canonical Ed25519 public key encoding"
                )),
                "y = p + {k}"
            );
            refused += 1;
        }
        assert!(
            refused > 0,
            "no non-canonical key decoded: the test checks nothing"
        );
    }

    #[test]
    fn del_is_text_but_lower_controls_are_not() {
        assert!(Note::new("a\u{7f}b\n").is_ok());
        assert!(Note::new("a\tb\n").is_err());
    }

    #[test]
    fn ambiguous_keys_are_refused() {
        let a = signer("a", 1);
        let note = Note::parse(&signed("x\n", &[&a])).unwrap();
        assert!(matches!(
            note.verify(&[a.verifier(), a.verifier()]),
            Err(NoteError::AmbiguousKey { .. })
        ));
    }
}
