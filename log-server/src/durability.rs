//! Group syncs: when a committed batch is durable enough to acknowledge.
//!
//! The SQLite store syncs the whole filesystem before a batch is
//! acknowledged (see `sqlite::sync_filesystem` for the ext4 fault that makes
//! SQLite's own `fsync` of the WAL not enough; the appends now skip that one,
//! `sqlite::CommitSync`). Done inline, that sync
//! holds up the next batch; done here, it runs while the next batch is
//! built, and one sync covers every commit that returned before it began.
//!
//! The rule a [`Durable`] keeps: it is answered `Ok` only by a sync that
//! *began after its commit returned* and succeeded, and it is answered the
//! sync's error if that sync failed. Whoever waits first runs the sync
//! (no thread of its own); the others wait for it, and those whose commit
//! came after it began run the next one.
//!
//! While a commit is begun and not yet answered Ok, [`SyncGroup::ceiling`]
//! names the size it was built on, so that nothing reads a checkpoint out
//! of the store for witnesses before the sync that makes it durable.
//!
//! One failed sync ends the group's writing for good: every commit not yet
//! answered, and every one after, is refused without a sync, and the
//! ceiling stays at the oldest of them until the process is restarted. A
//! later sync that succeeds would prove nothing about what was written
//! before it: Linux reports a writeback error once, so pages whose
//! writeback failed can be clean in the page cache and absent from the
//! disk, and a sync after that succeeds. (What `daylight/tests/read_only.rs`
//! actually lost, an entry acknowledged on a `syncfs` that succeeded in the
//! moment of an ext4 journal abort, is closed by the SQLite store's journal
//! probe, `sqlite::sync_filesystem`; this rule is the one PostgreSQL keeps
//! for the same reason.) What reached the disk is known again only once the
//! store is opened afresh on a repaired filesystem.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use daylight_core::TreeSize;

use crate::store::StoreError;

/// What syncs the filesystem: the cause if it failed (a phrase such as
/// `syncfs: Input/output error`; the group words the refusals).
pub type SyncFn = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The commits of one store and the syncs that make them durable.
pub struct SyncGroup {
    sync: SyncFn,
    state: Mutex<State>,
    answered: Condvar,
}

#[derive(Default)]
struct State {
    /// Commits begun and not yet answered, oldest first: each one's number
    /// and the size it was built on.
    unanswered: VecDeque<(u64, TreeSize)>,
    /// Commits refused since a sync failed, oldest first, with the size
    /// each was built on: held under the ceiling for good.
    failed: Vec<(u64, TreeSize)>,
    /// Committed and waiting for a sync to begin.
    waiting: Vec<Arc<Slot>>,
    /// Whether a sync runs now.
    syncing: bool,
    /// The first failed sync's cause: from then on nothing is answered Ok.
    broken: Option<String>,
    next: u64,
}

/// One commit's answer, once a sync has given it.
struct Slot {
    commit: u64,
    answer: Mutex<Option<Result<(), String>>>,
}

impl SyncGroup {
    /// A group whose syncs call `sync`.
    pub fn new(sync: SyncFn) -> Arc<SyncGroup> {
        Arc::new(SyncGroup {
            sync,
            state: Mutex::new(State::default()),
            answered: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the state was held leaves it consistent (every
        // change is a single push, drain or flag), so a poisoned lock is
        // taken as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a commit of a batch built on `built_on` as begun: call it
    /// before the commit, so that no reader sees the commit before
    /// [`ceiling`](Self::ceiling) covers it. Dropping the [`Commit`]
    /// unused says the commit failed. Refused, so that nothing is written,
    /// once a sync has failed.
    pub fn begin(self: &Arc<Self>, built_on: TreeSize) -> Result<Commit, StoreError> {
        let mut s = self.lock();
        if let Some(cause) = &s.broken {
            return Err(StoreError::Unwritable(after_failure(cause)));
        }
        let number = s.next;
        s.next += 1;
        s.unanswered.push_back((number, built_on));
        Ok(Commit {
            group: Some(self.clone()),
            number,
        })
    }

    /// Whether this process may still write: `Unwritable` once a sync has
    /// failed (see the module's documentation).
    pub fn writable(&self) -> Result<(), StoreError> {
        match &self.lock().broken {
            Some(cause) => Err(StoreError::Unwritable(after_failure(cause))),
            None => Ok(()),
        }
    }

    /// The largest size a reader may take as durable while commits are
    /// unanswered or refused (the size the oldest was built on); `None` when
    /// every commit of this process is durable.
    pub fn ceiling(&self) -> Option<TreeSize> {
        let s = self.lock();
        let oldest_failed = s.failed.first().map(|(_, size)| *size);
        let oldest_unanswered = s.unanswered.front().map(|(_, size)| *size);
        oldest_failed.into_iter().chain(oldest_unanswered).min()
    }

    /// A handle answered by a sync that begins after now (for an answer
    /// that rests on entries committed earlier, by this process or by
    /// another: the sync covers the whole filesystem).
    pub fn barrier(self: &Arc<Self>) -> Durable {
        let mut s = self.lock();
        let number = s.next;
        s.next += 1;
        self.register(&mut s, number)
    }

    fn register(self: &Arc<Self>, s: &mut State, commit: u64) -> Durable {
        let slot = Arc::new(Slot {
            commit,
            answer: Mutex::new(None),
        });
        s.waiting.push(slot.clone());
        Durable(Some((self.clone(), slot)))
    }

    /// Waits for `slot`'s answer, running a sync if none runs (and none
    /// has failed).
    fn wait(&self, slot: &Slot) -> Result<(), StoreError> {
        let mut s = self.lock();
        loop {
            if let Some(answer) = slot.answer() {
                return answer.map_err(StoreError::Unwritable);
            }
            if s.syncing {
                s = self.answered.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Everything waiting committed before this sync begins.
            let covered = std::mem::take(&mut s.waiting);
            let result = match &s.broken {
                Some(cause) => Err(after_failure(cause)),
                None => {
                    s.syncing = true;
                    drop(s);
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.sync)()))
                            .unwrap_or_else(|_| Err("the filesystem sync panicked".into()));
                    s = self.lock();
                    s.syncing = false;
                    result.map_err(|cause| {
                        let refusal = format!(
                            "the filesystem sync failed ({cause}): the batch may not be durable"
                        );
                        s.broken = Some(cause);
                        refusal
                    })
                }
            };
            for c in &covered {
                *c.answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(result.clone());
                if let Some(at) = s.unanswered.iter().position(|(n, _)| *n == c.commit) {
                    let (n, built_on) = s.unanswered.remove(at).unwrap_or((c.commit, TreeSize(0)));
                    if result.is_err() {
                        s.failed.push((n, built_on));
                    }
                }
            }
            self.answered.notify_all();
        }
    }
}

/// The refusal of a write, or of a wait, after the sync that failed with
/// `cause`.
fn after_failure(cause: &str) -> String {
    format!(
        "an earlier filesystem sync failed ({cause}), so what this process wrote since \
         may not be on disk; it writes nothing more: repair the filesystem, then \
         restart the log"
    )
}

impl Slot {
    fn answer(&self) -> Option<Result<(), String>> {
        self.answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A commit begun with [`SyncGroup::begin`].
pub struct Commit {
    group: Option<Arc<SyncGroup>>,
    number: u64,
}

impl Commit {
    /// The commit returned: the handle that answers once it is durable.
    pub fn committed(mut self) -> Durable {
        match self.group.take() {
            Some(group) => {
                let mut s = group.lock();
                group.register(&mut s, self.number)
            }
            None => Durable::now(),
        }
    }
}

impl Drop for Commit {
    fn drop(&mut self) {
        // Not committed: nothing of it is visible, nothing to wait for.
        if let Some(group) = self.group.take() {
            group.lock().unanswered.retain(|(n, _)| *n != self.number);
        }
    }
}

/// A committed batch, durable once [`wait`](Self::wait) answers `Ok`.
///
/// Dropped without waiting, it is answered by the next sync anyone runs.
#[must_use = "a batch may be acknowledged only once `wait` answers Ok"]
pub struct Durable(Option<(Arc<SyncGroup>, Arc<Slot>)>);

impl Durable {
    /// Already durable (a store whose commit is its durability).
    pub fn now() -> Durable {
        Durable(None)
    }

    /// Blocks until a sync that began after the commit has answered: `Ok`
    /// if it succeeded, `Unwritable` with its error if not.
    pub fn wait(self) -> Result<(), StoreError> {
        match &self.0 {
            None => Ok(()),
            Some((group, slot)) => group.wait(slot),
        }
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            None => "Durable(now)",
            Some(_) => "Durable(pending)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A group whose syncs are counted, answer from `outcomes` in turn (Ok
    /// once they run out), and, with `gate`, each wait for a message first.
    fn group(
        outcomes: Vec<Result<(), String>>,
        gate: Option<mpsc::Receiver<()>>,
    ) -> (Arc<SyncGroup>, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let (c, outcomes, gate) = (count.clone(), Mutex::new(outcomes), gate.map(Mutex::new));
        let g = SyncGroup::new(Box::new(move || {
            if let Some(gate) = &gate {
                gate.lock().unwrap().recv().unwrap();
            }
            let n = c.fetch_add(1, Ordering::SeqCst);
            outcomes.lock().unwrap().get(n).cloned().unwrap_or(Ok(()))
        }));
        (g, count)
    }

    fn size(n: u64) -> TreeSize {
        TreeSize(n)
    }

    #[test]
    fn one_sync_answers_every_commit_that_returned_before_it() {
        let (g, count) = group(vec![], None);
        let a = g.begin(size(0)).unwrap().committed();
        let b = g.begin(size(10)).unwrap().committed();
        a.wait().unwrap();
        b.wait().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(g.ceiling(), None);
    }

    #[test]
    fn a_commit_during_a_sync_waits_for_the_next_one() {
        // Sync 1 succeeds and sync 2 fails: the commit made while sync 1
        // ran must get sync 2's answer, not sync 1's.
        let (open, gate) = mpsc::channel();
        let (g, count) = group(vec![Ok(()), Err("EIO".into())], Some(gate));
        let a = g.begin(size(0)).unwrap().committed();
        let first = std::thread::spawn(move || a.wait());
        // Sync 1 has begun once the waiter holds the syncing flag.
        while !g.lock().syncing {
            std::thread::yield_now();
        }
        let b = g.begin(size(10)).unwrap().committed();
        assert_eq!(g.ceiling(), Some(size(0)));
        open.send(()).unwrap();
        first.join().unwrap().unwrap();
        assert_eq!(g.ceiling(), Some(size(10)), "b is not answered yet");
        open.send(()).unwrap();
        let b_waits = std::thread::spawn(move || b.wait());
        let err = b_waits.join().unwrap().unwrap_err();
        assert!(
            matches!(&err, StoreError::Unwritable(m)
                if m == "the filesystem sync failed (EIO): the batch may not be durable"),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(g.ceiling(), Some(size(10)), "a failed commit stays held");
        // A sync now would succeed, yet none runs: nothing written since
        // the failure can be vouched for.
        open.send(()).unwrap();
        assert!(g.barrier().wait().is_err());
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(g.ceiling(), Some(size(10)));
    }

    #[test]
    fn a_failed_sync_refuses_every_commit_it_covered_and_every_later_one() {
        let (g, count) = group(vec![Err("journal aborted".into())], None);
        let a = g.begin(size(0)).unwrap().committed();
        let b = g.begin(size(5)).unwrap().committed();
        assert!(matches!(b.wait(), Err(StoreError::Unwritable(_))));
        assert!(matches!(a.wait(), Err(StoreError::Unwritable(_))));
        assert_eq!(g.ceiling(), Some(size(0)), "held at the oldest failure");
        // The next sync would succeed: nothing is written to ask it.
        let refused = g
            .begin(size(9))
            .err()
            .expect("a commit after a failed sync");
        assert!(
            matches!(&refused, StoreError::Unwritable(m)
                if m.contains("journal aborted") && m.contains("restart")),
            "{refused}"
        );
        assert!(matches!(g.writable(), Err(StoreError::Unwritable(_))));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(g.ceiling(), Some(size(0)), "held for good");
    }

    #[test]
    fn a_commit_made_before_a_barriers_sync_failed_is_never_answered_ok() {
        // The witnessing's sync fails while a batch commits; a sync after
        // it would succeed, but could not vouch for that batch.
        let (open, gate) = mpsc::channel();
        let (g, count) = group(vec![Err("EIO".into()), Ok(())], Some(gate));
        let barrier = g.barrier();
        let witnessing = std::thread::spawn(move || barrier.wait());
        while !g.lock().syncing {
            std::thread::yield_now();
        }
        let batch = g.begin(size(61)).unwrap().committed();
        open.send(()).unwrap();
        assert!(witnessing.join().unwrap().is_err());
        open.send(()).unwrap();
        let err = batch.wait().unwrap_err();
        assert!(
            matches!(&err, StoreError::Unwritable(m) if m.contains("earlier filesystem sync failed (EIO)")),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1, "no sync after the failure");
        assert_eq!(g.ceiling(), Some(size(61)));
        assert!(g.writable().is_err());
    }

    #[test]
    fn the_ceiling_holds_from_before_the_commit_until_its_sync() {
        let (g, _) = group(vec![], None);
        assert_eq!(g.ceiling(), None);
        let begun = g.begin(size(7)).unwrap();
        assert_eq!(g.ceiling(), Some(size(7)), "readers must not see it yet");
        let durable = begun.committed();
        let next = g.begin(size(12)).unwrap().committed();
        assert_eq!(g.ceiling(), Some(size(7)), "the oldest unanswered commit");
        durable.wait().unwrap();
        assert_eq!(g.ceiling(), None, "one sync answered both");
        drop(next);
    }

    #[test]
    fn a_failed_commit_lifts_its_ceiling_and_needs_no_sync() {
        let (g, count) = group(vec![], None);
        drop(g.begin(size(3)).unwrap());
        assert_eq!(g.ceiling(), None);
        assert!(g.lock().waiting.is_empty());
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_handle_dropped_unwaited_is_answered_by_the_next_sync() {
        let (g, count) = group(vec![], None);
        drop(g.begin(size(0)).unwrap().committed());
        assert_eq!(g.ceiling(), Some(size(0)));
        let barrier = g.barrier();
        barrier.wait().unwrap();
        assert_eq!(g.ceiling(), None);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_barrier_always_has_a_sync_of_its_own() {
        // Nothing unanswered here; the entries it vouches for may be
        // another process's.
        let (g, count) = group(vec![], None);
        g.barrier().wait().unwrap();
        g.barrier().wait().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_barrier_waits_for_a_sync_after_the_commits_before_it() {
        let (g, count) = group(vec![Err("EIO".into())], None);
        let a = g.begin(size(0)).unwrap().committed();
        let barrier = g.barrier();
        assert!(barrier.wait().is_err(), "the sync covering a failed");
        assert!(a.wait().is_err());
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // No sync runs again; it stays held.
        assert!(g.barrier().wait().is_err());
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(g.ceiling(), Some(size(0)));
    }

    #[test]
    fn many_threads_each_get_a_sync_that_began_after_their_commit() {
        // Each thread counts its commit before registering it; each sync
        // notes the count when it begins and, once done, raises `done_to`
        // to it. A commit answered by a sync that began too early would
        // find `done_to` below its own count.
        use std::sync::atomic::AtomicU64;
        let committed = Arc::new(AtomicU64::new(0));
        let done_to = Arc::new(AtomicU64::new(0));
        let (c, d) = (committed.clone(), done_to.clone());
        let g = SyncGroup::new(Box::new(move || {
            let seen = c.load(Ordering::SeqCst);
            std::thread::yield_now();
            d.fetch_max(seen, Ordering::SeqCst);
            Ok(())
        }));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (g, committed, done_to) = (g.clone(), committed.clone(), done_to.clone());
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let begun = g.begin(size(t * 100 + i)).unwrap();
                        let mine = committed.fetch_add(1, Ordering::SeqCst) + 1;
                        begun.committed().wait().unwrap();
                        assert!(done_to.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(g.ceiling(), None);
        assert!(g.lock().waiting.is_empty());
    }
}
