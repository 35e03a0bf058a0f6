//! The fixed threads that answer machine readers: tile reads (an
//! auditor's or a mirror's) below the write path's scheduling priority,
//! and the API's reads (proofs, entries) in a pool of their own.
//!
//! Every reader of a busy log is a closed loop: an auditor mirroring it or
//! a proof client asks again as soon as it is answered, and so takes
//! whatever CPU it is given. The submissions' path (admission, sequencing,
//! the commit) runs on tokio's threads, raised above the process's
//! priority where the process may raise them (`crate::priority`).
//! Tiles, the costliest reads (an entry bundle decompresses 256 records),
//! run on threads whose nice value is [`READ_NICE`] above the process's,
//! so that when both want a core the write path gets it first and the
//! mirrors take what it leaves; a process may always lower its threads'
//! priority, so this holds without the capability. Linux only
//! (elsewhere `setpriority` would lower the whole process): on other
//! systems the tiles run at the process's priority.
//!
//! Proofs and entries keep the process's priority in a pool of their own
//! ([`ReadPool::api`]), so an auditor keeping many tiles in flight does not
//! queue them. Lowered too, they lost a fifth to a third of their rate for
//! a few percent more submissions; the web view's pages, lowered in one
//! pool with everything else, fell to a sixth of their rate and five to
//! seven times their p99 (BENCHMARKS.md, issue 18). Pages are not read
//! here: they answer people, on the server's runtime threads, at its
//! raised priority where it has one (`crate::priority`).
//!
//! The write path reads through the same store connections (the size at
//! admission, the sequencer's leaf lookups), and a connection held by a
//! thread at the lower priority is held longer: the SQLite store keeps two
//! reader connections more than the pools have threads, so some are
//! always left for it. At most [`MAX_WAITING`] reads wait in a pool; past
//! that a read is answered at once with [`ReadPoolError::Busy`] (503).
//!
//! A pool is a fixed set of threads, started on first use: a thread that
//! finishes a job takes the next waiting one without parking (a handoff
//! to a parked thread per proof once cost half the server's CPU per
//! proof), and a job that finds every thread busy waits its turn instead of
//! starting another thread (tokio's blocking pool starts up to 512). Linux
//! keeps the nice value per thread, so the tile threads' priority never
//! reaches a thread that later runs a write (a tokio blocking thread, once
//! lowered, could not be raised again without the capability).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use tokio::sync::oneshot;

/// How much the tile threads' nice value is raised above the process's
/// (CFS weighs a thread at nice 10 about a tenth of one at 0).
pub const READ_NICE: i32 = 10;

/// How many threads each pool runs (the SQLite store's reader connections
/// are sized from it).
pub const READ_THREADS: usize = 4;

/// Most reads waiting in one pool.
pub const MAX_WAITING: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run read jobs in turn; they stop when it is
/// dropped.
pub struct ReadPool {
    shared: Arc<Shared>,
    /// Threads that started: none, and every job is answered at once with
    /// [`ReadPoolError::NoAnswer`] instead of waiting forever.
    threads: usize,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    waiting: VecDeque<Job>,
    /// Threads parked for a job: a push wakes one only if there is one
    /// (a condvar's notify is a system call even when nobody waits).
    idle: usize,
    /// False once the pool is dropped: its threads finish what waits, then
    /// stop.
    open: bool,
}

/// Why a read got no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadPoolError {
    /// The job panicked (a bug, in the server's log) or no thread could be
    /// started to run it.
    #[error("the read ended without an answer")]
    NoAnswer,
    /// [`MAX_WAITING`] reads already wait for this pool.
    #[error("{MAX_WAITING} reads are already waiting")]
    Busy,
}

impl ReadPool {
    /// The process's threads for tile reads, at [`READ_NICE`], started on
    /// first use.
    pub fn tiles() -> &'static ReadPool {
        static POOL: OnceLock<ReadPool> = OnceLock::new();
        POOL.get_or_init(|| ReadPool::start("tiles", READ_THREADS, READ_NICE))
    }

    /// The process's threads for the API's reads (proofs, entries, the
    /// log's description), at the process's priority, started on first
    /// use.
    pub fn api() -> &'static ReadPool {
        static POOL: OnceLock<ReadPool> = OnceLock::new();
        POOL.get_or_init(|| ReadPool::start("api", READ_THREADS, 0))
    }

    /// `threads` threads (at least one), each setting its nice value to the
    /// process's plus `nice` as it starts ([`lower_priority`]), whatever
    /// the starting thread's is. Threads that cannot set it read at the
    /// starting thread's priority, and the first says so.
    pub fn start(name: &str, threads: usize, nice: i32) -> ReadPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                idle: 0,
                open: true,
            }),
            ready: Condvar::new(),
        });
        let mut started = 0;
        for n in 0..threads.max(1) {
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("read-{name}-{n}"))
                .spawn(move || {
                    lower_priority(nice, n == 0);
                    shared.work();
                });
            match thread {
                Ok(_) => started += 1,
                Err(e) => tracing::error!("cannot start reading thread {name}-{n}: {e}"),
            }
        }
        ReadPool {
            shared,
            threads: started,
        }
    }

    /// Runs `f` on a reading thread and waits for its result. A client that
    /// went away before its turn (dropped this future) is not read for.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ReadPoolError> {
        let (tx, rx) = oneshot::channel();
        self.push(move || {
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        })?;
        rx.await.map_err(|_| ReadPoolError::NoAnswer)
    }

    /// Queues `job` for the next free reading thread.
    fn push(&self, job: impl FnOnce() + Send + 'static) -> Result<(), ReadPoolError> {
        if self.threads == 0 {
            return Err(ReadPoolError::NoAnswer);
        }
        let wake = {
            let mut state = self.shared.lock();
            if state.waiting.len() >= MAX_WAITING {
                return Err(ReadPoolError::Busy);
            }
            state.waiting.push_back(Box::new(job));
            // A busy thread takes it when it is done; a parked one only
            // if woken. `idle` is counted under the same lock, so no push
            // is missed.
            state.idle > 0
        };
        if wake {
            self.shared.ready.notify_one();
        }
        Ok(())
    }
}

impl Drop for ReadPool {
    fn drop(&mut self) {
        self.shared.lock().open = false;
        self.shared.ready.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run unlocked: the queue is consistent after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs jobs as they come, until the pool is dropped and none wait.
    fn work(&self) {
        loop {
            let job = {
                let mut state = self.lock();
                loop {
                    if let Some(job) = state.waiting.pop_front() {
                        break job;
                    }
                    if !state.open {
                        return;
                    }
                    state.idle += 1;
                    state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                    state.idle -= 1;
                }
            };
            // A panic drops the job's sender (its request gets an error)
            // and this thread goes on with the next.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
    }
}

/// Sets the calling thread's nice value to the process's plus `nice`, not
/// the starting thread's: a pool started from a raised runtime thread
/// (`crate::priority`) reads at its own offset all the same. Says so in the
/// log if it cannot and `report`. Linux only (elsewhere `setpriority` would
/// change the whole process): other systems read at the process's priority.
pub fn lower_priority(nice: i32, report: bool) {
    if !cfg!(target_os = "linux") {
        return;
    }
    if let Err(e) = crate::priority::set_thread_offset(nice) {
        if report {
            tracing::warn!(
                "reading threads run at the priority of the thread that started them: {e}"
            );
        }
    }
}

// The tests read nice values from Linux's procfs.
#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    /// The calling thread's nice value, from procfs.
    fn own_nice() -> i32 {
        crate::priority::tests::procfs_nice()
    }

    /// Queues a job that holds its thread until the sender returned is
    /// sent to (or dropped).
    fn occupy(pool: &ReadPool) -> std::sync::mpsc::Sender<()> {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        pool.push(move || {
            let _ = hold.recv();
        })
        .unwrap();
        release
    }

    #[tokio::test]
    async fn reads_run_at_a_lower_priority_than_the_caller() {
        let pool = ReadPool::start("test", 2, 5);
        let caller = own_nice();
        assert_eq!(pool.run(own_nice).await, Ok((caller + 5).min(19)));
        // The caller's own priority is untouched.
        assert_eq!(own_nice(), caller);
    }

    /// A pool started by a thread at another priority (the server's raised
    /// runtime) reads at its offset from the process's priority, not from
    /// that thread's.
    #[tokio::test]
    async fn a_pool_reads_at_its_offset_from_the_process_whoever_started_it() {
        let base = crate::priority::process_nice().unwrap();
        // Lowering is always allowed, so this runs without the capability.
        let pool = std::thread::spawn(|| {
            crate::priority::set_thread_offset(2).unwrap();
            ReadPool::start("offset", 1, 5)
        })
        .join()
        .unwrap();
        assert_eq!(pool.run(own_nice).await, Ok((base + 5).min(19)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_job_is_answered_and_a_panic_answers_only_its_own() {
        let pool = Arc::new(ReadPool::start("test", 3, 0));
        let tasks: Vec<_> = (0..300u64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    pool.run(move || {
                        assert!(i % 50 != 7, "job {i} panics");
                        i * 2
                    })
                    .await
                })
            })
            .collect();
        for (i, t) in (0..300u64).zip(tasks) {
            let got = t.await.unwrap();
            if i % 50 == 7 {
                assert_eq!(got, Err(ReadPoolError::NoAnswer), "job {i}");
            } else {
                assert_eq!(got, Ok(i * 2), "job {i}");
            }
        }
    }

    /// A job whose caller has gone before its turn is not run.
    #[tokio::test]
    async fn a_gone_caller_is_not_read_for() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pool = ReadPool::start("test", 1, 0);
        // The only thread stays busy until the next job's caller is gone.
        let release = occupy(&pool);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let read = pool.run(move || flag.store(true, Ordering::SeqCst));
        // Polled (so queued) until the timeout, then dropped: the client left.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), read).await;
        assert!(waited.is_err(), "the job ran while the thread was busy");
        release.send(()).unwrap();
        // A later job is answered, so the thread went past the gone one.
        assert_eq!(pool.run(|| 5).await, Ok(5));
        assert!(!ran.load(Ordering::SeqCst), "a gone caller's job ran");
    }

    /// The threads of a dropped pool finish and stop.
    #[tokio::test]
    async fn a_dropped_pool_stops_its_threads() {
        // Thread names are cut to 15 bytes: "read-dropped-0" fits.
        let named = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|c| c.starts_with("read-dropped-"))
                .count()
        };
        // Waits (at most 10 s) until `n` such threads run.
        let until = |n: usize| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while named() != n && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            named()
        };
        let pool = ReadPool::start("dropped", 2, 0);
        assert_eq!(pool.run(|| 1).await, Ok(1));
        assert_eq!(until(2), 2, "the pool's threads did not start");
        drop(pool);
        assert_eq!(until(0), 0, "a dropped pool's threads still run");
    }

    /// A pool with [`MAX_WAITING`] reads waiting answers the next at once.
    #[tokio::test]
    async fn a_full_pool_answers_busy_at_once() {
        let pool = ReadPool::start("busy", 1, 0);
        let release = occupy(&pool);
        // The thread may not have taken the first job yet: fill to the limit.
        while pool.push(|| ()).is_ok() {}
        assert_eq!(pool.run(|| 1).await, Err(ReadPoolError::Busy));
        release.send(()).unwrap();
        // Once the thread catches up the pool takes reads again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match pool.run(|| 2).await {
                Ok(v) => break assert_eq!(v, 2),
                Err(ReadPoolError::Busy) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(e) => panic!("no answer after the queue drained: {e}"),
            }
        }
    }
}
