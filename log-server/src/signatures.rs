//! Record signatures checked many at once: the submissions being admitted
//! at the same moment share one batch verification
//! ([`daylight_schemas::signature::verify_batch`]), which is 2.5-3 times
//! the single rate for the records of one key.
//!
//! The caller gathers its batch: the log's admission admits the
//! submissions waiting together, and a record alone is a batch of one
//! ([`verify_now`], on the caller's thread, with no handoff to another
//! thread). Verdicts are those of [`SignatureCheck::verify`] (the schemas
//! crate keeps one rule for both), and a batch holding a forgery is halved
//! until the forgery is named, so a forgery costs its batch time but never
//! an honest record its place. A check that fails inside the server gets
//! [`NoVerdict`] (503), never a refusal.
//!
//! (A verifying thread that gathered checks sent one at a time from many
//! threads, `SignatureBatcher`, served the log before its admission
//! gathered batches itself; unused since, it was removed.)

use daylight_schemas::signature::{verify_batch, MAX_BATCH};
use daylight_schemas::{SchemaError, SignatureCheck};

/// Why a check got no verdict: the record is neither accepted nor refused,
/// and the submitter should try again (503), not be told its signature
/// is bad.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoVerdict {
    /// [`QUEUE`] submissions are already waiting for their checks.
    #[error("{QUEUE} signature checks are already waiting")]
    Full,
    /// The check failed inside the verifier (a bug, in the server's log).
    #[error("the signature check failed inside the server")]
    Down,
}

/// A check's outcome: the rule's verdict, or none.
pub type Verdict = Result<Result<(), SchemaError>, NoVerdict>;

/// Most submissions waiting for admission; past it they are answered 503
/// at once ([`NoVerdict::Full`]) instead of holding memory and a client each.
pub const QUEUE: usize = 4 * MAX_BATCH;

/// Verifies `checks` as one batch on the calling thread: the verdicts, in
/// order, each as [`SignatureCheck::verify`] would give it.
pub fn verify_now(checks: &[SignatureCheck]) -> Vec<Verdict> {
    if checks.is_empty() {
        return Vec::new();
    }
    run_batch(checks)
}

/// One batch's verdicts, in order. A panic inside the verifier (a bug)
/// gives its records no verdict (503: the submitters retry) rather than
/// unwinding through the caller, and says so in the server's log.
fn run_batch(checks: &[SignatureCheck]) -> Vec<Verdict> {
    match std::panic::catch_unwind(|| verify_batch(checks, rand_core_06::OsRng)) {
        Ok(verdicts) if verdicts.len() == checks.len() => verdicts.into_iter().map(Ok).collect(),
        _ => {
            tracing::error!(
                "signature batch of {} failed inside the verifier; no verdict for its records",
                checks.len()
            );
            vec![Err(NoVerdict::Down); checks.len()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daylight_core::note::{KeyName, KeyType, SignerKey};

    fn key(n: u8) -> SignerKey {
        SignerKey::from_seed(
            KeyName::new(&format!("agency{n}.example")).unwrap(),
            KeyType::Ed25519,
            [n; 32],
        )
    }

    fn check(k: &SignerKey, i: u32, forged: bool) -> SignatureCheck {
        let message = format!("record {i}").into_bytes();
        let mut sig = k.sign_raw(&message);
        if forged {
            sig[40] ^= 1;
        }
        SignatureCheck::new(k.verifier(), message, sig)
    }

    /// More checks than one batch holds, from three keys, every seventh
    /// forged: each gets its own verdict, in order.
    #[test]
    fn every_check_gets_its_own_verdict() {
        let keys: Vec<SignerKey> = (1..=3).map(key).collect();
        let n = MAX_BATCH as u32 + 40;
        let forged = |i: u32| i % 7 == 3;
        let checks: Vec<SignatureCheck> = (0..n)
            .map(|i| check(&keys[(i % 3) as usize], i, forged(i)))
            .collect();
        let verdicts = verify_now(&checks);
        assert_eq!(verdicts.len(), checks.len());
        for (i, verdict) in (0..n).zip(verdicts) {
            let want = if forged(i) {
                Err(SchemaError::BadSignature)
            } else {
                Ok(())
            };
            assert_eq!(verdict, Ok(want), "check {i}");
        }
    }

    /// A batch of one is the single check: honest passes, forged refused.
    #[test]
    fn a_lone_check_gets_the_single_verdict() {
        let k = key(4);
        assert_eq!(verify_now(&[check(&k, 1, false)]), vec![Ok(Ok(()))]);
        assert_eq!(
            verify_now(&[check(&k, 2, true)]),
            vec![Ok(Err(SchemaError::BadSignature))]
        );
    }

    #[test]
    fn no_checks_no_verdicts() {
        assert!(verify_now(&[]).is_empty());
    }
}
