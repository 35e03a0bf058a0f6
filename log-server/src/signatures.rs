//! Record signatures checked many at once: the submissions being admitted
//! at the same moment share one batch verification
//! ([`daylight_schemas::signature::verify_batch`]), which is 2.5-3 times
//! the single rate for the records of one key.
//!
//! One thread verifies: a caller sends its check with a reply slot and
//! waits on that slot alone; the thread takes every check waiting (at most
//! [`MAX_BATCH`]), verifies them as one batch and answers each. A lone
//! submission is checked at once, alone, and under load batches grow to
//! what arrived during the last one and the [`LINGER`] after it. (A first
//! version let the caller that found no batch running run the next one and
//! woke every waiter when it finished: with 256 clients each batch woke
//! some hundred threads, and submissions were no faster than without
//! batches.) Verdicts are those of [`SignatureCheck::verify`]
//! (the schemas crate keeps one rule for both), and a batch holding a
//! forgery is halved until the forgery is named, so a forgery costs its
//! batch time but never an honest record its place. At most [`QUEUE`]
//! checks wait; past that, and when the check fails inside the server,
//! the caller gets [`NoVerdict`] (503), never a refusal.
//!
//! A caller that gathers its own batch verifies it with [`verify_now`] on
//! its own thread instead: the same verdicts, without the two handoffs per
//! check to and from this thread. The log's admission does (the HTTP API's
//! admission queue admits the submissions waiting together, and a record
//! alone is a batch of one), so the server no longer runs the verifying
//! thread; [`SignatureBatcher`] remains for callers that check one at a
//! time from many threads.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use daylight_schemas::signature::{verify_batch, MAX_BATCH};
use daylight_schemas::{SchemaError, SignatureCheck};

/// Why a check got no verdict: the record is neither accepted nor refused,
/// and the submitter should try again (503), not be told its signature
/// is bad.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoVerdict {
    /// [`QUEUE`] checks are already waiting.
    #[error("{QUEUE} signature checks are already waiting")]
    Full,
    /// The verifying thread could not be started, or failed inside the
    /// verifier (a bug, in the server's log).
    #[error("the signature check failed inside the server")]
    Down,
}

/// A check's outcome: the rule's verdict, or none.
pub type Verdict = Result<Result<(), SchemaError>, NoVerdict>;

/// A check and where to send its verdict.
type Job = (SignatureCheck, SyncSender<Verdict>);

/// Most checks waiting for the thread; past it submissions are answered
/// 503 at once instead of holding a blocking thread each.
pub const QUEUE: usize = 4 * MAX_BATCH;

/// Gathers concurrent signature checks into batches (module docs).
pub struct SignatureBatcher {
    /// To the verifying thread (`None`: it could not be started); the
    /// thread stops when this is dropped.
    jobs: Mutex<Option<SyncSender<Job>>>,
}

impl Default for SignatureBatcher {
    fn default() -> SignatureBatcher {
        SignatureBatcher::new()
    }
}

/// Starts a verifying thread; its queue, if it started.
fn start() -> Option<SyncSender<Job>> {
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    match std::thread::Builder::new()
        .name("signatures".into())
        .spawn(move || verify_loop(&rx))
    {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!("cannot start the signature thread: {e}");
            None
        }
    }
}

impl SignatureBatcher {
    /// A batcher and its verifying thread.
    pub fn new() -> SignatureBatcher {
        SignatureBatcher {
            jobs: Mutex::new(start()),
        }
    }

    /// Checks `check`, in a batch with whatever else is waiting; blocks
    /// until its verdict is known. Call from a blocking thread. A thread
    /// found gone (or never started) is started again.
    pub fn verify(&self, check: SignatureCheck) -> Verdict {
        let (reply, verdict) = sync_channel(1);
        {
            let mut jobs = self
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut job = (check, reply);
            for _ in 0..2 {
                let Some(tx) = jobs.as_ref() else {
                    *jobs = start();
                    continue;
                };
                match tx.try_send(job) {
                    Ok(()) => break,
                    Err(TrySendError::Full(_)) => return Err(NoVerdict::Full),
                    Err(TrySendError::Disconnected(j)) => {
                        tracing::error!("the signature thread is gone; starting another");
                        job = j;
                        *jobs = start();
                    }
                }
            }
        }
        verdict.recv().unwrap_or(Err(NoVerdict::Down))
    }
}

/// How long a busy verifier waits for more checks before it verifies what
/// it has. Submissions arrive spread out even at 6,000 a second, so without
/// it batches stay at one or two; a lone submission does not wait (below).
pub const LINGER: Duration = Duration::from_millis(2);

/// The verifying thread: a batch of whatever is waiting, until the
/// batcher is dropped. When this batch's first check came less than
/// [`LINGER`] after the last batch was gathered (the log is busy), it
/// gathers checks for up to [`LINGER`] first.
fn verify_loop(jobs: &Receiver<Job>) {
    let mut last_gathered: Option<Instant> = None;
    while let Ok(first) = jobs.recv() {
        let now = Instant::now();
        let busy = last_gathered.is_some_and(|t| now.duration_since(t) < LINGER);
        let mut batch = vec![first];
        let until = now + if busy { LINGER } else { Duration::ZERO };
        while batch.len() < MAX_BATCH {
            let next = match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => jobs.recv_timeout(left).ok(),
                _ => jobs.try_recv().ok(),
            };
            match next {
                Some(j) => batch.push(j),
                None => break,
            }
        }
        last_gathered = Some(Instant::now());
        let (checks, replies): (Vec<SignatureCheck>, Vec<_>) = batch.into_iter().unzip();
        for (reply, verdict) in replies.into_iter().zip(run_batch(&checks)) {
            // A caller that went away needs no answer.
            let _ = reply.send(verdict);
        }
    }
}

/// Verifies `checks` as one batch on the calling thread (for a caller that
/// has gathered them itself): the verdicts, in order, as the verifying
/// thread would give them.
pub fn verify_now(checks: &[SignatureCheck]) -> Vec<Verdict> {
    if checks.is_empty() {
        return Vec::new();
    }
    run_batch(checks)
}

/// One batch's verdicts, in order. A panic inside the verifier (a bug)
/// gives its records no verdict (503: the submitters retry) rather than
/// stopping the thread, and says so in the server's log.
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
                    assert_eq!(verdict, Ok(Err(SchemaError::BadSignature)));
                } else {
                    assert_eq!(verdict, Ok(Ok(())));
                }
            }
        }
        assert_eq!(seen, 32 * 40);
    }

    /// Checks that wait while the thread is busy are verified together
    /// in the next batch, a forgery among them refused alone.
    #[test]
    fn waiting_checks_share_a_batch() {
        let k = key(2);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let mut replies = Vec::new();
        for i in 0..10u32 {
            let (reply, verdict) = sync_channel(1);
            tx.send((check(&k, i, i == 4), reply)).unwrap();
            replies.push(verdict);
        }
        drop(tx);
        verify_loop(&rx);
        for (i, r) in replies.into_iter().enumerate() {
            let verdict = r.recv().unwrap();
            assert_eq!(
                verdict,
                Ok(if i == 4 {
                    Err(SchemaError::BadSignature)
                } else {
                    Ok(())
                }),
                "check {i}"
            );
        }
    }

    /// More than [`MAX_BATCH`] waiting: two batches, the forgery in the
    /// second refused alone.
    #[test]
    fn a_batch_over_the_limit_is_split() {
        let k = key(3);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let mut replies = Vec::new();
        for i in 0..(MAX_BATCH as u32 + 3) {
            let (reply, verdict) = sync_channel(1);
            tx.send((check(&k, i, i == MAX_BATCH as u32 + 1), reply))
                .unwrap();
            replies.push(verdict);
        }
        drop(tx);
        verify_loop(&rx);
        let bad: Vec<usize> = replies
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.recv().unwrap() != Ok(Ok(())))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(bad, vec![MAX_BATCH + 1]);
    }

    /// A full queue answers at once with no verdict (the submitter gets 503
    /// and retries) instead of holding another blocking thread.
    #[test]
    fn a_full_queue_gives_no_verdict() {
        let (tx, _rx) = sync_channel::<Job>(QUEUE);
        let k = key(4);
        for i in 0..QUEUE as u32 {
            tx.try_send((check(&k, i, false), sync_channel(1).0))
                .unwrap();
        }
        let b = SignatureBatcher {
            jobs: Mutex::new(Some(tx)),
        };
        assert_eq!(b.verify(check(&k, 9999, false)), Err(NoVerdict::Full));
    }

    /// A verifying thread found gone is started again, and the check gets
    /// its verdict.
    #[test]
    fn a_gone_thread_is_started_again() {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        drop(rx);
        let b = SignatureBatcher {
            jobs: Mutex::new(Some(tx)),
        };
        let k = key(5);
        assert_eq!(b.verify(check(&k, 1, false)), Ok(Ok(())));
        assert_eq!(
            b.verify(check(&k, 2, true)),
            Ok(Err(SchemaError::BadSignature))
        );
        let none = SignatureBatcher {
            jobs: Mutex::new(None),
        };
        assert_eq!(none.verify(check(&k, 3, false)), Ok(Ok(())));
    }

    #[test]
    fn a_lone_check_is_answered_at_once() {
        let b = SignatureBatcher::new();
        let k = key(1);
        assert_eq!(b.verify(check(&k, 1, false)), Ok(Ok(())));
        assert_eq!(
            b.verify(check(&k, 2, true)),
            Ok(Err(SchemaError::BadSignature))
        );
    }
}
