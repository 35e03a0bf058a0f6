//! Record signatures checked many at once: the submissions being admitted
//! at the same moment share one batch verification
//! ([`daylight_schemas::signature::verify_batch`]), which is 2.5-3 times
//! the single rate for the records of one key.
//!
//! No thread of its own and no timer: a caller that finds no batch running
//! runs one over every check waiting, its own included, and hands each
//! waiter its verdict; callers that arrive meanwhile wait for it and the
//! next of them runs the next batch. A lone submission is checked at once,
//! alone, and under load batches grow to what arrived during the last one
//! (at most [`MAX_BATCH`]), so no submission waits for a batch to fill.
//! Verdicts are those of [`SignatureCheck::verify`] (the schemas crate
//! keeps one rule for both), and a batch holding a forgery is checked one
//! by one, so a forgery costs its batch time but never an honest record
//! its place.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use daylight_schemas::signature::{verify_batch, MAX_BATCH};
use daylight_schemas::{SchemaError, SignatureCheck};

/// Gathers concurrent signature checks into batches (module docs).
#[derive(Default)]
pub struct SignatureBatcher {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Checks not yet taken by a batch, with their tickets.
    waiting: Vec<(u64, SignatureCheck)>,
    /// Verdicts of finished batches not yet collected by their callers.
    verdicts: HashMap<u64, Result<(), SchemaError>>,
    /// Whether a caller is running a batch now.
    running: bool,
    next_ticket: u64,
    /// Batches run so far.
    batches: u64,
}

impl SignatureBatcher {
    /// A batcher with nothing waiting.
    pub fn new() -> SignatureBatcher {
        SignatureBatcher::default()
    }

    /// Checks `check`, in a batch with whatever else is waiting; blocks
    /// until its verdict is known. Call from a blocking thread.
    pub fn verify(&self, check: SignatureCheck) -> Result<(), SchemaError> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((ticket, check));
        loop {
            if let Some(verdict) = state.verdicts.remove(&ticket) {
                return verdict;
            }
            if state.running {
                state = self
                    .done
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            state.running = true;
            state.batches += 1;
            let take = state.waiting.len().min(MAX_BATCH);
            let batch: Vec<(u64, SignatureCheck)> = state.waiting.drain(..take).collect();
            drop(state);
            let verdicts = run_batch(&batch);
            state = self.lock();
            state.running = false;
            state
                .verdicts
                .extend(batch.iter().map(|(t, _)| *t).zip(verdicts));
            self.done.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent whenever the lock is free (verdicts are
        // inserted whole), so a panic elsewhere leaves nothing half done.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One batch's verdicts, in order. A panic inside the verifier (a bug)
/// refuses the batch's records rather than leaving their callers waiting:
/// fail closed, and say so in the server's log.
fn run_batch(batch: &[(u64, SignatureCheck)]) -> Vec<Result<(), SchemaError>> {
    let checks: Vec<SignatureCheck> = batch.iter().map(|(_, c)| c.clone()).collect();
    match std::panic::catch_unwind(|| verify_batch(&checks, rand_core_06::OsRng)) {
        Ok(verdicts) if verdicts.len() == checks.len() => verdicts,
        _ => {
            tracing::error!(
                "signature batch of {} failed inside the verifier; refusing its records",
                checks.len()
            );
            vec![Err(SchemaError::BadSignature); checks.len()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daylight_core::note::{KeyName, KeyType, SignerKey};
    use std::sync::Arc;

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

    /// Many threads at once, every seventh check forged: each caller gets
    /// its own verdict.
    #[test]
    fn concurrent_checks_get_their_own_verdicts() {
        let batcher = Arc::new(SignatureBatcher::new());
        let keys: Vec<SignerKey> = (1..=3).map(key).collect();
        let threads: Vec<_> = (0..32u32)
            .map(|t| {
                let (b, keys) = (batcher.clone(), keys.clone());
                std::thread::spawn(move || {
                    (0..40u32)
                        .map(|i| {
                            let n = t * 40 + i;
                            let forged = n % 7 == 3;
                            let verdict = b.verify(check(&keys[(n % 3) as usize], n, forged));
                            (forged, verdict)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = 0;
        for t in threads {
            for (forged, verdict) in t.join().unwrap() {
                seen += 1;
                if forged {
                    assert_eq!(verdict, Err(SchemaError::BadSignature));
                } else {
                    assert_eq!(verdict, Ok(()));
                }
            }
        }
        assert_eq!(seen, 32 * 40);
        let state = batcher.lock();
        assert!(state.waiting.is_empty() && state.verdicts.is_empty() && !state.running);
    }

    /// Checks that arrive while a batch runs are verified together, in one
    /// batch, by one of their callers; a forgery among them is refused
    /// alone.
    #[test]
    fn checks_arriving_during_a_batch_share_the_next() {
        let batcher = Arc::new(SignatureBatcher::new());
        // Stand for a batch in progress.
        batcher.lock().running = true;
        let k = key(2);
        let threads: Vec<_> = (0..10u32)
            .map(|i| {
                let (b, k) = (batcher.clone(), k.clone());
                std::thread::spawn(move || (i, b.verify(check(&k, i, i == 4))))
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while batcher.lock().waiting.len() < 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "callers did not queue"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        {
            let mut state = batcher.lock();
            state.running = false;
            batcher.done.notify_all();
        }
        for t in threads {
            let (i, verdict) = t.join().unwrap();
            assert_eq!(verdict.is_err(), i == 4, "check {i}: {verdict:?}");
        }
        assert_eq!(batcher.lock().batches, 1);
    }

    #[test]
    fn a_lone_check_is_answered_at_once() {
        let b = SignatureBatcher::new();
        let k = key(1);
        assert_eq!(b.verify(check(&k, 1, false)), Ok(()));
        assert_eq!(b.verify(check(&k, 2, true)), Err(SchemaError::BadSignature));
    }
}
