//! Submissions admitted in batches: the records waiting for admission are
//! taken together by a blocking thread, which admits them with one call
//! ([`Admission::admit_batch`](crate::admission::Admission::admit_batch):
//! one read of the log's size, one batch signature verification on that
//! thread) and hands each admitted entry straight to the sequencer, whose
//! answer (the index once the entry is durable, or why not) is the only
//! one the submitter waits for.
//!
//! Before, each submission was handed to the blocking pool on its own
//! (waking a parked thread), read the log's size, handed its signature to
//! the verifying thread and back (two more wakes), and was woken once more
//! to queue its entry for the sequencer: the server's CPU per entry was
//! about twice what it is now. Under load a thread that finishes one batch
//! takes the records that arrived meanwhile, so the handoffs are per batch,
//! not per record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use daylight_core::LeafIndex;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::sequencer::{Reply, SequenceError};
use crate::store::NewEntry;

/// What admits a batch of records: one answer each, in order, the entry to
/// sequence or the error to answer with.
pub(crate) type AdmitBatch = Arc<dyn Fn(&[&[u8]]) -> Vec<Result<NewEntry, ApiError>> + Send + Sync>;

/// Where an admitted entry goes to be sequenced; its answer goes to the
/// reply ([`Sequencer::enqueue`](crate::sequencer::Sequencer::enqueue)).
pub(crate) type Forward = Arc<dyn Fn(NewEntry, Reply) + Send + Sync>;

/// Records waiting to be admitted, and the blocking threads admitting them.
pub(crate) struct AdmissionQueue {
    admit: AdmitBatch,
    forward: Forward,
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Waiting>,
    /// Blocking threads taking batches from `waiting`.
    drainers: usize,
}

struct Waiting {
    body: Bytes,
    reply: Reply,
}

/// Whether a pushed record needs a new drainer.
enum Pushed {
    Queued,
    StartDrainer,
    Full,
}

impl AdmissionQueue {
    /// Most records waiting; past it a submission is answered 503
    /// `queue_full` at once.
    pub(crate) const MAX_WAITING: usize = crate::signatures::QUEUE;
    /// Most records admitted in one call (the largest signature batch).
    pub(crate) const MAX_BATCH: usize = daylight_schemas::signature::MAX_BATCH;
    /// At most this many threads admit at once: batches stay large (a
    /// batch verification costs less per signature the more it holds),
    /// and a second thread joins only when [`Self::WAITING_PER_DRAINER`]
    /// records wait.
    const MAX_DRAINERS: usize = 2;
    /// Another thread starts when this many records wait per running one.
    /// At 64 a second thread rarely joined under the mixed load (batches of
    /// about 15), and a record waited for the batch before its own; at 16,
    /// about a tenth more submissions there at 10M records, and the same
    /// with 256 clients alone (BENCHMARKS.md, issue 18).
    const WAITING_PER_DRAINER: usize = 16;

    /// A queue whose batches `admit` admits and whose admitted entries
    /// `forward` sequences.
    pub(crate) fn new(admit: AdmitBatch, forward: Forward) -> AdmissionQueue {
        AdmissionQueue {
            admit,
            forward,
            state: Mutex::default(),
        }
    }

    /// Admits `body` in a batch with the records waiting beside it and
    /// sequences it: its index once durable, the sequencer's error, or
    /// [`SequenceError::NotAdmitted`] with the admission's refusal.
    pub(crate) async fn submit(self: &Arc<Self>, body: Bytes) -> Result<LeafIndex, SequenceError> {
        let (reply, answer) = oneshot::channel();
        match self.push(Waiting { body, reply }) {
            Pushed::Queued => {}
            Pushed::StartDrainer => {
                let queue = self.clone();
                tokio::task::spawn_blocking(move || queue.drain());
            }
            Pushed::Full => {
                return Err(SequenceError::NotAdmitted(ApiError::unavailable(
                    "queue_full",
                    crate::signatures::NoVerdict::Full.to_string(),
                    1,
                )))
            }
        }
        // Every reply is answered or handed on; dropped unanswered only by
        // a sequencer that stopped.
        answer.await.map_err(|_| SequenceError::Stopped)?
    }

    fn push(&self, w: Waiting) -> Pushed {
        let mut q = self.lock();
        if q.waiting.len() >= Self::MAX_WAITING {
            return Pushed::Full;
        }
        q.waiting.push_back(w);
        let start = q.drainers == 0
            || (q.drainers < Self::MAX_DRAINERS
                && q.waiting.len() >= q.drainers * Self::WAITING_PER_DRAINER);
        if start {
            q.drainers += 1;
            Pushed::StartDrainer
        } else {
            Pushed::Queued
        }
    }

    /// Admits waiting batches until none wait, on the write path's priority
    /// (`crate::priority`).
    fn drain(&self) {
        crate::priority::on_the_write_path(|| self.drain_batches());
    }

    fn drain_batches(&self) {
        while let Some(batch) = self.next_batch() {
            let answers = self.admit_each(&batch);
            // Caught so that this thread goes on draining and the count of
            // drainers stays right; replies a panic drops answer `Stopped`.
            let handed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for (w, a) in batch.into_iter().zip(answers) {
                    match a {
                        Ok(entry) => (self.forward)(entry, w.reply),
                        // A submitter that went away needs no answer.
                        Err(e) => {
                            let _ = w.reply.send(Err(SequenceError::NotAdmitted(e)));
                        }
                    }
                }
            }));
            if handed.is_err() {
                tracing::error!(
                    "handing admitted records to the sequencer failed inside the server"
                );
            }
        }
    }

    /// One answer per record of `batch`, in order. A panic inside the
    /// batch's admission (a bug, which a record's bytes may trigger) is
    /// caught, and each record is then admitted again alone, so that only
    /// a record that panics by itself is answered 500: one record cannot
    /// fail the honest ones beside it.
    fn admit_each(&self, batch: &[Waiting]) -> Vec<Result<NewEntry, ApiError>> {
        let records: Vec<&[u8]> = batch.iter().map(|w| &w.body[..]).collect();
        let admit = |records: &[&[u8]]| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.admit)(records)))
                .ok()
                .filter(|answers| answers.len() == records.len())
        };
        if let Some(answers) = admit(&records) {
            return answers;
        }
        records
            .iter()
            .map(|r| {
                admit(std::slice::from_ref(r))
                    .and_then(|mut one| one.pop())
                    .unwrap_or_else(|| {
                        Err(ApiError::internal(
                            "admitting the record failed inside the server",
                        ))
                    })
            })
            .collect()
    }

    /// The next batch, or None after this drainer has signed off (under the
    /// same lock, so a record pushed after that starts a new drainer).
    fn next_batch(&self) -> Option<Vec<Waiting>> {
        let mut q = self.lock();
        if q.waiting.is_empty() {
            q.drainers -= 1;
            return None;
        }
        let n = q.waiting.len().min(Self::MAX_BATCH);
        Some(q.waiting.drain(..n).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // The state is consistent after any panic (batches run unlocked).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn entry(body: &[u8]) -> NewEntry {
        NewEntry {
            leaf_hash: daylight_core::hash::leaf_hash(body),
            data: body.to_vec(),
            kind: "request".into(),
            signer: "k".into(),
            packed: None,
        }
    }

    /// Records that end in `!` are refused, `panic` panics its batch; the
    /// size of each batch goes to `seen`.
    fn rules(seen: Arc<Mutex<Vec<usize>>>) -> AdmitBatch {
        Arc::new(move |records: &[&[u8]]| {
            seen.lock().unwrap().push(records.len());
            if records.iter().any(|r| *r == b"panic") {
                panic!("a bug while admitting");
            }
            records
                .iter()
                .map(|r| {
                    if r.ends_with(b"!") {
                        Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "bad_signature",
                            format!("refused {}", String::from_utf8_lossy(r)),
                        ))
                    } else {
                        Ok(entry(r))
                    }
                })
                .collect()
        })
    }

    /// A sequencer that answers each entry at once with the record's
    /// number (its body `record N`), or the storage error for `fail`.
    fn numbered() -> Forward {
        Arc::new(|e: NewEntry, reply: Reply| {
            let text = String::from_utf8_lossy(&e.data).to_string();
            let answer = match text.strip_prefix("record ").and_then(|n| n.parse().ok()) {
                Some(n) => Ok(LeafIndex(n)),
                None => Err(SequenceError::Storage(format!("cannot write {text}"))),
            };
            let _ = reply.send(answer);
        })
    }

    /// Every submitter gets its own answer (the refused their own error,
    /// status, code and detail; the admitted their own index), from batches
    /// of more than one under load.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_record_gets_its_own_answer() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(AdmissionQueue::new(rules(seen.clone()), numbered()));
        // Fewer than MAX_WAITING, which would answer some `queue_full`.
        let tasks: Vec<_> = (0..1000u64)
            .map(|i| {
                let q = queue.clone();
                tokio::spawn(async move {
                    let body = if i % 7 == 3 {
                        format!("record {i}!")
                    } else {
                        format!("record {i}")
                    };
                    q.submit(Bytes::from(body)).await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(index) => {
                    assert_ne!(i % 7, 3, "record {i}");
                    assert_eq!(index, LeafIndex(i as u64));
                }
                Err(SequenceError::NotAdmitted(e)) => {
                    assert_eq!(i % 7, 3, "record {i}");
                    assert_eq!(e.status, StatusCode::FORBIDDEN);
                    assert_eq!(e.code, "bad_signature");
                    assert_eq!(e.detail, format!("refused record {i}!"));
                }
                Err(e) => panic!("record {i}: {e}"),
            }
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.iter().sum::<usize>(), 1000);
        assert!(
            seen.iter().any(|&n| n > 1),
            "no batch of more than one: {seen:?}"
        );
        assert!(seen.iter().all(|&n| n <= AdmissionQueue::MAX_BATCH));
        drainers_sign_off(&queue).await;
    }

    /// Every drainer signs off (just after handing on its last batch, so
    /// this gives it a moment).
    async fn drainers_sign_off(queue: &AdmissionQueue) {
        for _ in 0..200 {
            if queue.lock().drainers == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(queue.lock().drainers, 0);
    }

    /// The sequencer's error reaches the submitter as it is: the queue
    /// answers an admitted record only with what the sequencer answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sequencer_error_reaches_the_submitter() {
        let queue = Arc::new(AdmissionQueue::new(rules(Arc::default()), numbered()));
        match queue.submit(Bytes::from_static(b"fail")).await {
            Err(SequenceError::Storage(d)) => assert_eq!(d, "cannot write fail"),
            other => panic!("{other:?}"),
        }
    }

    /// An admitted record is not answered until the sequencer answers it
    /// (there, once its batch is durable): the queue gives no answer of its
    /// own, and a reply the sequencer drops is a stopped sequencer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_admitted_record_waits_for_the_sequencers_answer() {
        let held: Arc<Mutex<Vec<Reply>>> = Arc::default();
        let forwarded = Arc::new(AtomicU64::new(0));
        let forward: Forward = {
            let (held, forwarded) = (held.clone(), forwarded.clone());
            Arc::new(move |_e: NewEntry, reply: Reply| {
                held.lock().unwrap().push(reply);
                forwarded.fetch_add(1, Ordering::SeqCst);
            })
        };
        let queue = Arc::new(AdmissionQueue::new(rules(Arc::default()), forward));
        let q = queue.clone();
        let mut first =
            tokio::spawn(async move { q.submit(Bytes::from_static(b"record 5")).await });
        while forwarded.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // Handed to the sequencer, and still unanswered.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(200), &mut first).await;
        assert!(waited.is_err(), "answered before the sequencer did");
        let reply = held.lock().unwrap().pop().unwrap();
        reply.send(Ok(LeafIndex(41))).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), LeafIndex(41));

        let q = queue.clone();
        let second = tokio::spawn(async move { q.submit(Bytes::from_static(b"record 6")).await });
        while forwarded.load(Ordering::SeqCst) == 1 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        drop(held.lock().unwrap().pop());
        assert!(matches!(second.await.unwrap(), Err(SequenceError::Stopped)));
    }

    /// A record whose admission panics is answered 500, and only it: the
    /// records beside it in its batch get their own answers.
    #[test]
    fn a_panic_fails_only_the_record_that_causes_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queue = AdmissionQueue::new(rules(seen.clone()), numbered());
        let batch: Vec<Waiting> = ["record 1", "panic", "record 2!", "record 3"]
            .into_iter()
            .map(|b| Waiting {
                body: Bytes::from(b),
                reply: oneshot::channel().0,
            })
            .collect();
        let answers = queue.admit_each(&batch);
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0].as_ref().unwrap().data, b"record 1");
        let e = answers[1].as_ref().unwrap_err();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, "internal");
        assert_eq!(answers[2].as_ref().unwrap_err().code, "bad_signature");
        assert_eq!(answers[3].as_ref().unwrap().data, b"record 3");
        // The batch, then each record alone.
        assert_eq!(*seen.lock().unwrap(), vec![4, 1, 1, 1, 1]);
    }

    /// A panic while handing records on to the sequencer drops their
    /// replies (answered as a stopped sequencer) and the queue goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_the_hand_over_leaves_the_queue_draining() {
        let forward: Forward = Arc::new(|e: NewEntry, reply: Reply| {
            if e.data == b"record 9" {
                panic!("a bug while handing on");
            }
            let _ = reply.send(Ok(LeafIndex(e.data.len() as u64)));
        });
        let queue = Arc::new(AdmissionQueue::new(rules(Arc::default()), forward));
        assert!(matches!(
            queue.submit(Bytes::from_static(b"record 9")).await,
            Err(SequenceError::Stopped)
        ));
        drainers_sign_off(&queue).await;
        let ok = queue.submit(Bytes::from_static(b"record 10")).await;
        assert_eq!(ok.unwrap(), LeafIndex(9));
        drainers_sign_off(&queue).await;
    }

    /// A panic while admitting answers its record 500 and the queue goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_answers_its_batch_and_the_queue_goes_on() {
        let queue = Arc::new(AdmissionQueue::new(rules(Arc::default()), numbered()));
        match queue.submit(Bytes::from_static(b"panic")).await {
            Err(SequenceError::NotAdmitted(e)) => {
                assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
                assert_eq!(e.code, "internal");
            }
            other => panic!("{other:?}"),
        }
        let ok = queue.submit(Bytes::from_static(b"record 3")).await;
        assert_eq!(ok.unwrap(), LeafIndex(3));
        drainers_sign_off(&queue).await;
    }

    /// Past [`AdmissionQueue::MAX_WAITING`] records a submission is answered
    /// 503 `queue_full` at once, with the signature queue's words.
    #[tokio::test]
    async fn a_full_queue_answers_at_once() {
        let queue = Arc::new(AdmissionQueue::new(rules(Arc::default()), numbered()));
        {
            let mut q = queue.lock();
            // A drainer is "running" (none will start), and the queue is full.
            q.drainers = 1;
            for _ in 0..AdmissionQueue::MAX_WAITING {
                q.waiting.push_back(Waiting {
                    body: Bytes::new(),
                    reply: oneshot::channel().0,
                });
            }
        }
        let e = match queue.submit(Bytes::from_static(b"x")).await {
            Err(SequenceError::NotAdmitted(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, "queue_full");
        assert_eq!(
            e.detail,
            crate::signatures::NoVerdict::Full.to_string(),
            "the words the signature queue answered with"
        );
        assert_eq!(e.retry_after, Some(1));
    }
}
