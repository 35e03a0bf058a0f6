//! Reads waiting for a blocking thread, answered in turn by at most a few
//! threads ([`ReadQueue`]); proofs are read this way.
//!
//! Under load a thread that finishes one read takes the next from the queue
//! instead of parking, so a read costs no blocking-pool handoff of its own
//! (each handoff wakes a parked thread; measured at about half of the
//! server's CPU per proof at 1M entries). Tiles were tried behind a queue of
//! one thread, so that an auditor mirroring the log (16 tiles at a time)
//! would take less CPU from submissions: the suite's mixed load at 10M
//! showed no gain in submissions while the auditor fetched half as much
//! (BENCHMARKS.md, issue 18), so tiles still take a blocking thread each.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::ApiError;

/// Jobs waiting, and the blocking threads taking them.
pub(crate) struct ReadQueue {
    /// At most this many threads run jobs at once.
    max_drainers: usize,
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Job>,
    /// Blocking threads taking jobs from `waiting`.
    drainers: usize,
}

type Job = Box<dyn FnOnce() + Send>;

impl ReadQueue {
    /// Another thread starts when this many jobs wait for the running ones.
    const WAITING_PER_DRAINER: usize = 8;

    /// A queue run by at most `max_drainers` threads (at least one).
    pub(crate) fn new(max_drainers: usize) -> ReadQueue {
        ReadQueue {
            max_drainers: max_drainers.max(1),
            state: Mutex::default(),
        }
    }

    /// Runs `f` on a blocking thread, with the jobs queued meanwhile.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        // A panic in `f` drops `tx`: the request gets a 500, not a hang.
        let job: Job = Box::new(move || {
            // Not read for a client that has gone (one that timed out and
            // asks again): it would take a bounded thread's turn for nothing.
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        if self.push(job) {
            let queue = self.clone();
            tokio::task::spawn_blocking(move || queue.drain());
        }
        rx.await
            .map_err(|_| ApiError::internal("a read ended without an answer"))?
    }

    /// Queues `job`; true if a new thread should start draining.
    fn push(&self, job: Job) -> bool {
        let mut q = self.lock();
        q.waiting.push_back(job);
        let start = q.drainers == 0
            || (q.drainers < self.max_drainers
                && q.waiting.len() >= q.drainers * Self::WAITING_PER_DRAINER);
        if start {
            q.drainers += 1;
        }
        start
    }

    /// Runs queued jobs until none wait.
    fn drain(&self) {
        while let Some(job) = self.next() {
            // Caught so that this thread keeps draining (and its count
            // stays right); the job's sender is dropped, so its request
            // is answered with an error.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
    }

    /// The next job, or None after this drainer has signed off (under the
    /// same lock, so a job pushed after that starts a new drainer).
    fn next(&self) -> Option<Job> {
        let mut q = self.lock();
        let job = q.waiting.pop_front();
        if job.is_none() {
            q.drainers -= 1;
        }
        job
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // The state is consistent after any panic (jobs run unlocked).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queue_answers_every_job_and_survives_panics() {
        let queue = Arc::new(ReadQueue::new(4));
        let tasks: Vec<_> = (0..500u64)
            .map(|i| {
                let q = queue.clone();
                tokio::spawn(async move {
                    q.run(move || {
                        if i % 97 == 13 {
                            panic!("a job that panics");
                        }
                        Ok(i * 2)
                    })
                    .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let got = t.await.unwrap();
            if i % 97 == 13 {
                assert!(got.is_err(), "job {i}");
            } else {
                assert_eq!(got.ok(), Some(i as u64 * 2), "job {i}");
            }
        }
        // Every drainer signs off (just after sending its last answer, so
        // give it a moment), and a later job is still answered.
        for _ in 0..200 {
            if queue.lock().drainers == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(queue.lock().drainers, 0);
        assert_eq!(queue.run(|| Ok(7)).await.ok(), Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_whose_client_has_gone_is_not_run() {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let queue = Arc::new(ReadQueue::new(1));
        // The one thread is kept busy until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let q = queue.clone();
        let first = tokio::spawn(async move {
            q.run(move || {
                let _ = started_tx.send(());
                let _ = held.recv();
                Ok(1)
            })
            .await
        });
        started.await.unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let (q, r) = (queue.clone(), ran.clone());
        let second = tokio::spawn(async move {
            q.run(move || {
                r.store(true, SeqCst);
                Ok(2)
            })
            .await
        });
        for _ in 0..500 {
            if queue.lock().waiting.len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert_eq!(queue.lock().waiting.len(), 1, "the second job never queued");
        // Its client goes away while it waits.
        second.abort();
        let _ = second.await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().ok(), Some(1));
        assert_eq!(queue.run(|| Ok(3)).await.ok(), Some(3));
        assert!(
            !ran.load(SeqCst),
            "a job was read for a client that had gone"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_threads_than_its_bound() {
        for bound in [1usize, 2, 4] {
            let queue = Arc::new(ReadQueue::new(bound));
            let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let tasks: Vec<_> = (0..200u64)
                .map(|i| {
                    let (q, running, most) = (queue.clone(), running.clone(), most.clone());
                    tokio::spawn(async move {
                        q.run(move || {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = running.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            running.fetch_sub(1, SeqCst);
                            Ok(i)
                        })
                        .await
                    })
                })
                .collect();
            for (i, t) in tasks.into_iter().enumerate() {
                assert_eq!(t.await.unwrap().ok(), Some(i as u64));
            }
            let most = most.load(std::sync::atomic::Ordering::SeqCst);
            assert!(
                most <= bound,
                "{most} threads ran jobs at once, bound {bound}"
            );
            if bound > 1 {
                assert!(most > 1, "200 waiting jobs never got a second thread");
            }
        }
    }
}
