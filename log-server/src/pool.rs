//! A fixed set of reader connections, each handed to whichever caller finds
//! it free.
//!
//! Readers used to be taken in turn, so a quick read (the sequencer's
//! lookup of a batch's leaves, an admission's dedup check) could wait behind
//! a slow one (a 256-entry bundle for an auditor) while other connections
//! sat idle: under the mixed load at 10M entries a read waited 1.7 ms on
//! average (BENCHMARKS.md, issue 18). A caller now takes the first free
//! connection, and only when every one is busy waits for the next to come
//! back.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};

/// A fixed set of values (connections), each used by one caller at a time.
pub(crate) struct Pool<T> {
    slots: Vec<Mutex<T>>,
    /// Where the next scan for a free slot starts, so the slots share the work.
    next: AtomicUsize,
    /// Held while a caller that found every slot busy decides to wait, and by
    /// a caller giving a slot back before it wakes one: no wake-up is lost.
    gate: Mutex<()>,
    returned: Condvar,
}

/// A value taken from a [`Pool`]; it goes back when this is dropped.
pub(crate) struct Taken<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    pool: &'a Pool<T>,
}

/// The pool's gate was poisoned (nothing that holds it panics).
#[derive(Debug)]
pub(crate) struct Poisoned;

impl<T> Pool<T> {
    /// A pool of `values`; it must not be empty.
    pub(crate) fn new(values: Vec<T>) -> Pool<T> {
        assert!(!values.is_empty(), "a pool needs at least one value");
        Pool {
            slots: values.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            gate: Mutex::new(()),
            returned: Condvar::new(),
        }
    }

    /// A free value, waiting for one to come back if all are taken.
    pub(crate) fn take(&self) -> Result<Taken<'_, T>, Poisoned> {
        if let Some(taken) = self.try_take() {
            return Ok(taken);
        }
        let mut gate = self.gate.lock().map_err(|_| Poisoned)?;
        loop {
            if let Some(taken) = self.try_take() {
                return Ok(taken);
            }
            gate = self.returned.wait(gate).map_err(|_| Poisoned)?;
        }
    }

    /// The first free value, scanning from a rotating start; `None` if every
    /// one is taken.
    fn try_take(&self) -> Option<Taken<'_, T>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let slot = &self.slots[(start + k) % n];
            match slot.try_lock() {
                Ok(guard) => {
                    return Some(Taken {
                        guard: Some(guard),
                        pool: self,
                    })
                }
                Err(TryLockError::WouldBlock) => {}
                // A caller panicked while it held this value. A connection
                // is still usable (a statement it left is reset when next
                // prepared), so the slot serves again rather than failing
                // every read that reaches it.
                Err(TryLockError::Poisoned(p)) => {
                    slot.clear_poison();
                    return Some(Taken {
                        guard: Some(p.into_inner()),
                        pool: self,
                    });
                }
            }
        }
        None
    }
}

impl<T> Deref for Taken<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` empties it.
        self.guard.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> DerefMut for Taken<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Drop for Taken<'_, T> {
    fn drop(&mut self) {
        // The slot is free before anyone is woken to take it.
        drop(self.guard.take());
        // A poisoned gate still wakes: waiters then see the poison and fail.
        let _gate = self.pool.gate.lock();
        self.pool.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    #[test]
    fn a_caller_takes_a_free_value_while_another_is_held() {
        let pool = Pool::new(vec![1, 2, 3]);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        let c = pool.take().unwrap();
        let mut seen = vec![*a, *b, *c];
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3], "each caller got a value of its own");
    }

    #[test]
    fn a_caller_waits_for_a_value_to_come_back_and_then_gets_it() {
        let pool = Arc::new(Pool::new(vec![7u32]));
        let held = pool.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut v = pool.take().unwrap();
                *v += 1;
                tx.send(*v).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "the waiter must not get a value that is held"
        );
        drop(held);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 8);
        waiter.join().unwrap();
        assert_eq!(*pool.take().unwrap(), 8, "the change stayed in the pool");
    }

    #[test]
    fn many_callers_share_few_values_without_losing_a_wake_up() {
        // Bounded: 8 threads x 2,000 takes of 2 values, and a deadline: a
        // lost wake-up leaves a thread waiting, and the test fails.
        let pool = Arc::new(Pool::new(vec![0u64, 0u64]));
        let (done, finished) = mpsc::channel();
        for _ in 0..8 {
            let (pool, done) = (pool.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    *pool.take().unwrap() += 1;
                }
                done.send(()).unwrap();
            });
        }
        for _ in 0..8 {
            finished
                .recv_timeout(Duration::from_secs(60))
                .expect("a caller is still waiting for a value after 60 s");
        }
        let total = *pool.take().unwrap() + *pool.take().unwrap();
        assert_eq!(total, 16_000, "every take used a value and gave it back");
    }

    #[test]
    fn a_value_whose_caller_panicked_serves_again() {
        let pool = Arc::new(Pool::new(vec![5u8]));
        let p = pool.clone();
        let _ = std::thread::spawn(move || {
            let _v = p.take().unwrap();
            panic!("a caller panics while holding the value");
        })
        .join();
        assert_eq!(*pool.take().unwrap(), 5);
        assert_eq!(*pool.take().unwrap(), 5, "the slot is no longer poisoned");
    }
}
