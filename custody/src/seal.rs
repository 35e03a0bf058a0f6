//! A share sealed to an Ed25519 note key with HPKE (RFC 9180, base mode,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305).
//!
//! The recipient's registered Ed25519 key is used as an X25519 key under
//! the standard birational map (as age's ssh-ed25519 recipients and
//! libsodium do), so an agency receives shares under the key the log
//! already registered for it, and nothing else needs registering. The
//! associated data binds the box to one release ([`Context`]): a sealed
//! share copied into another answer, or opened for another request, does
//! not open.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use daylight_core::{KeyType, SignerKey, VerifierKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable as _, OpModeR, OpModeS, Serializable as _};
use serde::{Deserialize, Serialize};

use crate::share::Share;
use crate::CustodyError;

/// HPKE's `info`: what the key schedule is for.
const INFO: &[u8] = b"daylight/custody-share/v1";

/// What a sealed share is bound to (HPKE associated data). Both sides
/// build it from what they know of the release; any difference and the
/// box does not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    /// A custodian released its share for a request: the log's origin, the
    /// request's index and leaf hash (hex), the custodian's key
    /// (`name+keyid`) and the slot (provider and target) of the key, so a
    /// share released for one target cannot pass for another's.
    Release {
        /// The log's origin.
        origin: String,
        /// The request's index.
        index: u64,
        /// The request's leaf hash, hex.
        leaf_hash: String,
        /// The custodian, as `name+keyid`.
        custodian: String,
        /// The key's slot, hex.
        slot: String,
    },
    /// A provider deposited a share with a custodian: the custodian's key
    /// (`name+keyid`) and the depositor's.
    Deposit {
        /// The custodian, as `name+keyid`.
        custodian: String,
        /// The depositor, as `name+keyid`.
        depositor: String,
    },
}

impl Context {
    /// The associated data: a domain line, then one field per line.
    fn aad(&self) -> Vec<u8> {
        match self {
            Context::Release {
                origin,
                index,
                leaf_hash,
                custodian,
                slot,
            } => format!(
                "daylight/custody-release/v1\n{origin}\n{index}\n{leaf_hash}\n{custodian}\n{slot}\n"
            ),
            Context::Deposit {
                custodian,
                depositor,
            } => format!("daylight/custody-deposit/v1\n{custodian}\n{depositor}\n"),
        }
        .into_bytes()
    }
}

/// A sealed share: HPKE's encapsulated key and the ciphertext (base64 in
/// JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// The encapsulated (ephemeral X25519) key, base64.
    pub enc: String,
    /// The ciphertext of the share's JSON, with its tag, base64.
    pub ciphertext: String,
}

/// Seals `share` to `to` (an Ed25519 note key) for `context`.
pub fn seal(share: &Share, to: &VerifierKey, context: &Context) -> Result<Sealed, CustodyError> {
    if to.key_type() != KeyType::Ed25519 {
        return Err(CustodyError::NotEd25519(format!(
            "{}+{}",
            to.name(),
            to.id()
        )));
    }
    let public = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&to.x25519_public())
        .map_err(|e| CustodyError::NotEd25519(format!("{}+{}: {e}", to.name(), to.id())))?;
    let mut rng = rand_core::UnwrapErr(rand_core::OsRng);
    let (enc, ciphertext) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &public,
            INFO,
            &share.to_json(),
            &context.aad(),
            &mut rng,
        )
        // A recipient key whose X25519 form is of low order fails the DH
        // step: the key is at fault, not the random source.
        .map_err(|e| match e {
            hpke::HpkeError::EncapError => CustodyError::NotEd25519(format!(
                "{}+{}: unusable for X25519 ({e})",
                to.name(),
                to.id()
            )),
            other => CustodyError::Random(other.to_string()),
        })?;
    Ok(Sealed {
        enc: BASE64.encode(enc.to_bytes()),
        ciphertext: BASE64.encode(ciphertext),
    })
}

/// Opens `sealed` with `with` (the recipient's signer key) for `context`,
/// and parses the share inside.
pub fn open(sealed: &Sealed, with: &SignerKey, context: &Context) -> Result<Share, CustodyError> {
    let malformed = |why: String| CustodyError::Malformed {
        what: "sealed share",
        why,
    };
    let enc = BASE64
        .decode(&sealed.enc)
        .map_err(|e| malformed(format!("enc: {e}")))?;
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&enc)
        .map_err(|e| malformed(format!("enc: {e}")))?;
    let ciphertext = BASE64
        .decode(&sealed.ciphertext)
        .map_err(|e| malformed(format!("ciphertext: {e}")))?;
    let secret = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&with.x25519_secret())
        .map_err(|e| malformed(format!("recipient key: {e}")))?;
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &secret,
        &enc,
        INFO,
        &ciphertext,
        &context.aad(),
    )
    .map_err(|_| CustodyError::DoesNotOpen)?;
    Share::from_json(&plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{split, EscrowKey, Slot};
    use daylight_core::KeyName;

    fn signer(name: &str, seed: u8) -> SignerKey {
        SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
    }

    fn context() -> Context {
        Context::Release {
            origin: "log.example/daylight".into(),
            index: 7,
            leaf_hash: "ab".repeat(32),
            custodian: "custodian-a+01020304".into(),
            slot: Slot::of("p", "t").to_hex(),
        }
    }

    fn a_share() -> Share {
        let key = EscrowKey::generate().unwrap();
        split(&key, Slot::of("p", "t"), 2, 3).unwrap().remove(0)
    }

    #[test]
    fn opens_with_the_recipient_key_and_context_only() {
        let agency = signer("agency", 1);
        let share = a_share();
        let sealed = seal(&share, agency.verifier(), &context()).unwrap();
        assert_eq!(open(&sealed, &agency, &context()).unwrap(), share);

        // Another key.
        let other = signer("other", 2);
        assert_eq!(
            open(&sealed, &other, &context()),
            Err(CustodyError::DoesNotOpen)
        );
        // Another release (origin, index, leaf, custodian, slot each).
        let base = context();
        let with = |f: &dyn Fn(&mut Context)| {
            let mut c = base.clone();
            f(&mut c);
            c
        };
        let Context::Release { custodian, .. } = base.clone() else {
            unreachable!()
        };
        for changed in [
            with(&|c| {
                if let Context::Release { origin, .. } = c {
                    origin.push('x');
                }
            }),
            with(&|c| {
                if let Context::Release { index, .. } = c {
                    *index += 1;
                }
            }),
            with(&|c| {
                if let Context::Release { leaf_hash, .. } = c {
                    *leaf_hash = "cd".repeat(32);
                }
            }),
            with(&|c| {
                if let Context::Release { custodian, .. } = c {
                    *custodian = "custodian-b+01020304".into();
                }
            }),
            with(&|c| {
                if let Context::Release { slot, .. } = c {
                    *slot = Slot::of("p", "u").to_hex();
                }
            }),
            Context::Deposit {
                custodian: custodian.clone(),
                depositor: "p+00000000".into(),
            },
        ] {
            assert_eq!(
                open(&sealed, &agency, &changed),
                Err(CustodyError::DoesNotOpen),
                "{changed:?}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_does_not_open() {
        let agency = signer("agency", 1);
        let sealed = seal(&a_share(), agency.verifier(), &context()).unwrap();
        for field in 0..2 {
            let text = if field == 0 {
                &sealed.enc
            } else {
                &sealed.ciphertext
            };
            let bytes = BASE64.decode(text).unwrap();
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x01;
                let mut bad = sealed.clone();
                if field == 0 {
                    bad.enc = BASE64.encode(&b);
                } else {
                    bad.ciphertext = BASE64.encode(&b);
                }
                assert!(
                    open(&bad, &agency, &context()).is_err(),
                    "field {field} byte {i}"
                );
            }
        }
        let mut short = sealed.clone();
        short.enc = BASE64.encode([0u8; 5]);
        assert!(matches!(
            open(&short, &agency, &context()),
            Err(CustodyError::Malformed { .. })
        ));
        let mut not_b64 = sealed;
        not_b64.ciphertext = "***".into();
        assert!(matches!(
            open(&not_b64, &agency, &context()),
            Err(CustodyError::Malformed { .. })
        ));
    }

    #[test]
    fn cosignature_keys_are_refused() {
        let w = signer("witness", 3).with_key_type(KeyType::CosignatureV1);
        assert!(matches!(
            seal(&a_share(), w.verifier(), &context()),
            Err(CustodyError::NotEd25519(_))
        ));
    }
}
