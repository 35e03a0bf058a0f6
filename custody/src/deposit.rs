//! A share deposited with a custodian: sealed to the custodian's key
//! ([`Context::Deposit`]) and signed by the depositor (the provider that
//! split the key), so that a custodian keeps only shares from those it was
//! told to take them from, and only a share meant for it.
//!
//! The signature is Ed25519 by the depositor's note key over a
//! domain-separated text naming the custodian, the depositor and the sealed
//! box ([`message`]): a box cannot be moved to another custodian or passed
//! off as another depositor's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use daylight_core::{KeyType, SignerKey, VerifierKey};
use daylight_schemas::Signer;
use serde::{Deserialize, Serialize};

use crate::seal::{open, seal, Context, Sealed};
use crate::share::Share;
use crate::CustodyError;

/// The first line of the signed deposit message.
const DOMAIN: &str = "daylight/custody-deposit-signature/v1";

/// A deposit as it travels (JSON): who deposits, the sealed share, the
/// depositor's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deposit {
    /// The depositor's verifier key, `name+keyid+base64`.
    pub depositor: String,
    /// The share, sealed to the custodian's key for
    /// [`Context::Deposit`].
    pub sealed: Sealed,
    /// The depositor's Ed25519 signature over [`message`], base64.
    pub signature: String,
}

/// The text the depositor signs: a domain line, the custodian and the
/// depositor (`name+keyid` each), and the sealed box's two fields.
pub fn message(custodian: &VerifierKey, depositor: &VerifierKey, sealed: &Sealed) -> String {
    format!(
        "{DOMAIN}\n{}\n{}\n{}\n{}\n",
        Signer::of(custodian),
        Signer::of(depositor),
        sealed.enc,
        sealed.ciphertext
    )
}

/// The context a deposit's box is sealed for.
fn context(custodian: &VerifierKey, depositor: &VerifierKey) -> Context {
    Context::Deposit {
        custodian: Signer::of(custodian).to_string(),
        depositor: Signer::of(depositor).to_string(),
    }
}

/// Seals `share` to `custodian` and signs the deposit with `depositor`.
pub fn make(
    share: &Share,
    custodian: &VerifierKey,
    depositor: &SignerKey,
) -> Result<Deposit, CustodyError> {
    let from = depositor.verifier();
    if from.key_type() != KeyType::Ed25519 {
        return Err(CustodyError::NotEd25519(Signer::of(from).to_string()));
    }
    let sealed = seal(share, custodian, &context(custodian, from))?;
    let signature = depositor.sign_raw(message(custodian, from, &sealed).as_bytes());
    Ok(Deposit {
        depositor: from.to_string(),
        sealed,
        signature: BASE64.encode(signature),
    })
}

/// What a custodian (holding `custodian`) checks of a deposit, in order:
/// the depositor's key parses and is one of `allowed`, its signature
/// verifies, and the box opens for this custodian and depositor. The
/// depositor's key and the share.
pub fn accept(
    deposit: &Deposit,
    custodian: &SignerKey,
    allowed: &[VerifierKey],
) -> Result<(VerifierKey, Share), CustodyError> {
    let depositor =
        VerifierKey::parse(&deposit.depositor).map_err(|e| CustodyError::Malformed {
            what: "depositor key",
            why: e.to_string(),
        })?;
    if !allowed.contains(&depositor) {
        return Err(CustodyError::UnknownDepositor(
            Signer::of(&depositor).to_string(),
        ));
    }
    let signature = BASE64
        .decode(&deposit.signature)
        .map_err(|e| CustodyError::Malformed {
            what: "deposit signature",
            why: e.to_string(),
        })?;
    let text = message(custodian.verifier(), &depositor, &deposit.sealed);
    if depositor.key_type() != KeyType::Ed25519 || !depositor.verify(&text, &signature) {
        return Err(CustodyError::BadSignature(
            Signer::of(&depositor).to_string(),
        ));
    }
    let share = open(
        &deposit.sealed,
        custodian,
        &context(custodian.verifier(), &depositor),
    )?;
    Ok((depositor, share))
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

    #[test]
    fn a_deposit_is_accepted_only_as_made() {
        let custodian = signer("custodian-a", 1);
        let provider = signer("provider", 2);
        let allowed = [provider.verifier().clone()];
        let key = EscrowKey::generate().unwrap();
        let share = split(&key, Slot::of("provider", "t"), 2, 3)
            .unwrap()
            .remove(0);
        let d = make(&share, custodian.verifier(), &provider).unwrap();
        let (who, got) = accept(&d, &custodian, &allowed).unwrap();
        assert_eq!((who, got), (provider.verifier().clone(), share.clone()));

        // Not a depositor of this custodian.
        assert!(matches!(
            accept(&d, &custodian, &[]),
            Err(CustodyError::UnknownDepositor(_))
        ));
        // Another custodian: the signature names this one.
        let other = signer("custodian-b", 3);
        assert!(matches!(
            accept(&d, &other, &allowed),
            Err(CustodyError::BadSignature(_))
        ));
        // A changed box: the signature covers it.
        let mut changed = d.clone();
        changed.sealed.enc = d.sealed.ciphertext.clone();
        assert!(matches!(
            accept(&changed, &custodian, &allowed),
            Err(CustodyError::BadSignature(_))
        ));
        // Signed by the depositor, but sealed to another custodian: does not open.
        let to_other = make(&share, other.verifier(), &provider).unwrap();
        let sig = provider.sign_raw(
            message(custodian.verifier(), provider.verifier(), &to_other.sealed).as_bytes(),
        );
        let misdirected = Deposit {
            signature: BASE64.encode(sig),
            ..to_other
        };
        assert_eq!(
            accept(&misdirected, &custodian, &allowed),
            Err(CustodyError::DoesNotOpen)
        );
        // Malformed parts.
        let mut bad = d.clone();
        bad.depositor = "nope".into();
        assert!(matches!(
            accept(&bad, &custodian, &allowed),
            Err(CustodyError::Malformed { .. })
        ));
        let mut bad = d;
        bad.signature = "***".into();
        assert!(matches!(
            accept(&bad, &custodian, &allowed),
            Err(CustodyError::Malformed { .. })
        ));
    }
}
