//! Scheduling priorities: the server's runtime above the readers' work.
//!
//! Every reader of a busy log is a closed loop (an auditor mirroring it, a
//! proof client, a person paging through the web view asks again once
//! answered), so readers on the log's cores take whatever CPU they are
//! given. A submission crosses about ten handoffs between threads on its
//! way to a durable answer (the connection, admission, the sequencer's
//! queue, sequencing, the durable wait, the answer), and under such readers
//! each handoff waited for a core: on two cores shared with proof readers,
//! web readers and an auditor, submissions ran at about 3,000/s where the
//! write path alone makes 5,000/s and more (BENCHMARKS.md, issue 18).
//!
//! So `daylight log serve` raises its async runtime's threads (connections,
//! witnesses, the web view's pages; tokio's workers and blocking threads
//! alike) [`RUNTIME_RAISE`] above the process's priority, the write path's
//! steps (admission on blocking threads; the sequencer's own two threads,
//! sequencing and the durable wait, `crate::sequencer`) [`WRITE_RAISE`]
//! above it ([`on_the_write_path`]), and the machine readers' work at
//! fixed offsets from the process's priority, whichever thread started it:
//! proofs and entries (`read_pool::ReadPool::api`) at it, tiles and the web
//! index's reading `read_pool::READ_NICE` below it.
//!
//! Measured under `scripts/load-mixed` (BENCHMARKS.md): with every runtime
//! thread at -10 and pages at the process's priority, submissions went from
//! about 3,000/s to 5,700/s but the pages' p99 past its 100 ms goal; with
//! the write path's steps alone raised, about 3,700/s; as here, about
//! 4,500/s at 1M records and 4,250-5,086/s at 10M, with pages as fast as
//! before or faster.
//!
//! Raising a thread needs `CAP_SYS_NICE` or an `RLIMIT_NICE` that allows the
//! raised value (systemd: `LimitNICE=`); lowering one never does. Without
//! either, every thread keeps the process's priority, as before this
//! module, and the server says so once. CFS divides a core by weights, so
//! a raised thread is favoured, not exclusive: a thread at nice -5 weighs
//! about three times one at 0. Linux only: elsewhere `setpriority` with
//! pid 0 would change the whole process, and nothing here does anything.

use std::sync::atomic::{AtomicU8, Ordering};

/// How far the runtime's threads are raised above the process's priority
/// (nice -5 under a process at 0: about three times the weight).
pub const RUNTIME_RAISE: i32 = 5;

/// How far the write path's steps (admission on blocking threads, the
/// sequencer's own threads) are raised above the process's priority (nice
/// -10 under a process at 0: about nine times the weight), over the
/// runtime's threads' [`RUNTIME_RAISE`].
pub const WRITE_RAISE: i32 = 10;

/// Whether the runtime's threads were raised: not tried yet, raised, refused.
static RAISED: AtomicU8 = AtomicU8::new(NOT_TRIED);
const NOT_TRIED: u8 = 0;
const RAISED_OK: u8 = 1;
const REFUSED: u8 = 2;

/// Whether raising a write step to [`WRITE_RAISE`] was refused (a limit
/// that allows the runtime's raise and not this one).
static WRITE_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Why a thread's priority could not be set.
#[derive(Debug, thiserror::Error)]
#[error("setting the thread's nice value to {target}: {source}")]
pub struct PriorityError {
    /// The nice value asked for.
    pub target: i32,
    /// What the kernel answered.
    #[source]
    pub source: std::io::Error,
}

/// Raises the calling thread [`RUNTIME_RAISE`] above the process's priority;
/// meant for the server runtime's `on_thread_start`. Logs nothing (the
/// runtime starts before the server knows it can serve, and a failed start
/// says one thing): [`report_runtime_priority`] says how it went. Later
/// threads are not retried after a refusal. Does nothing elsewhere than on
/// Linux.
pub fn raise_runtime_thread() {
    if !cfg!(target_os = "linux") || RAISED.load(Ordering::Relaxed) == REFUSED {
        return;
    }
    let outcome = match set_thread_offset(-RUNTIME_RAISE) {
        Ok(()) => RAISED_OK,
        Err(_) => REFUSED,
    };
    RAISED.store(outcome, Ordering::Relaxed);
}

/// Logs how [`raise_runtime_thread`] went, once the server listens: a
/// warning naming what would allow it if it was refused. Call it on a
/// runtime thread (which has tried its raise when it started).
pub fn report_runtime_priority() {
    match runtime_raised() {
        Some(true) => tracing::debug!(
            "the server's runtime threads run {RUNTIME_RAISE} above the process's priority, \
             its write path {WRITE_RAISE} above it, machine readers at or below it"
        ),
        Some(false) => tracing::warn!(
            "the server's runtime threads run at the process's priority: {}",
            how_to_allow()
        ),
        None => {}
    }
}

/// What lets the server raise its threads, for the warnings.
fn how_to_allow() -> String {
    let target = write_target(process_nice().unwrap_or(0));
    format!(
        "raising them needs CAP_SYS_NICE or an RLIMIT_NICE that allows nice {target} \
         (systemd: AmbientCapabilities=CAP_SYS_NICE, or LimitNICE={target}); readers on \
         the same cores then slow submissions"
    )
}

/// The nice value of a write step under a process at `base`.
fn write_target(base: i32) -> i32 {
    base.saturating_sub(WRITE_RAISE).clamp(-20, 19)
}

/// Whether [`raise_runtime_thread`] raised its threads: `None` before it
/// ran (a server not started by `daylight log serve`, or another system).
pub fn runtime_raised() -> Option<bool> {
    match RAISED.load(Ordering::Relaxed) {
        RAISED_OK => Some(true),
        REFUSED => Some(false),
        _ => None,
    }
}

/// Runs `f` [`WRITE_RAISE`] above the process's priority where the process
/// may raise it, and puts the thread back after, also if `f` panics (a
/// lowering, always allowed): for the write path's steps on blocking
/// threads (admission), which share those threads with other work, and for
/// the sequencer's own threads, raised for their whole life. Where raising
/// is refused, `f` runs as the thread is, the first refusal is logged, and
/// it is not asked again.
pub fn on_the_write_path<T>(f: impl FnOnce() -> T) -> T {
    if !cfg!(target_os = "linux")
        || RAISED.load(Ordering::Relaxed) == REFUSED
        || WRITE_REFUSED.load(Ordering::Relaxed)
    {
        return f();
    }
    let (Ok(now), Ok(base)) = (thread_nice(), process_nice()) else {
        return f();
    };
    let target = write_target(base);
    if now <= target {
        return f();
    }
    /// Puts the thread back to the nice value it holds when dropped.
    struct PutBack(i32);
    impl Drop for PutBack {
        fn drop(&mut self) {
            let _ = set_thread_nice(self.0);
        }
    }
    let _back = match set_thread_nice(target) {
        Ok(()) => PutBack(now),
        Err(e) => {
            if !WRITE_REFUSED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the server's write path runs at its runtime's priority ({e}): {}",
                    how_to_allow()
                );
            }
            return f();
        }
    };
    f()
}

/// Sets the calling thread's nice value to the process's plus `offset`
/// (clamped to -20..=19), whatever the thread's own value was: a thread
/// started by a raised one starts raised.
pub fn set_thread_offset(offset: i32) -> Result<(), PriorityError> {
    let base = process_nice().map_err(|source| PriorityError {
        target: offset,
        source,
    })?;
    set_thread_nice(base.saturating_add(offset))
}

/// The process's nice value: its main thread's, which nothing here raises
/// or lowers.
#[cfg(target_os = "linux")]
pub fn process_nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(
        rustix::process::getpid(),
    ))?)
}

/// The calling thread's nice value (Linux: pid 0 is the calling thread).
#[cfg(target_os = "linux")]
pub fn thread_nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(None)?)
}

#[cfg(target_os = "linux")]
fn set_thread_nice(target: i32) -> Result<(), PriorityError> {
    let target = target.clamp(-20, 19);
    rustix::process::setpriority_process(None, target).map_err(|e| PriorityError {
        target,
        source: e.into(),
    })
}

/// Elsewhere thread priorities are not set: the process's value is 0.
#[cfg(not(target_os = "linux"))]
pub fn process_nice() -> std::io::Result<i32> {
    Ok(0)
}

/// Elsewhere thread priorities are not set: every thread's value is 0.
#[cfg(not(target_os = "linux"))]
pub fn thread_nice() -> std::io::Result<i32> {
    Ok(0)
}

/// Whether Linux would let this process raise a thread to nice `target`,
/// read apart from `setpriority` (for the tests and diagnostics):
/// `CAP_SYS_NICE` (bit 23) among its effective capabilities in procfs,
/// which counts only in the initial user namespace (the kernel asks there),
/// or an `RLIMIT_NICE` that allows it ([`rlimit_allows`]).
#[cfg(target_os = "linux")]
pub fn may_raise_to(target: i32) -> bool {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cap = read("/proc/self/status")
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 23) != 0);
    let initial_namespace = read("/proc/self/uid_map")
        .is_some_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    (cap && initial_namespace) || rlimit_allows(target)
}

/// Whether this process's `RLIMIT_NICE` allows raising a thread to nice
/// `target` without the capability (a limit of at least `20 - target`).
#[cfg(target_os = "linux")]
pub fn rlimit_allows(target: i32) -> bool {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nice).current;
    let needed = u64::try_from(20 - target.clamp(-20, 19)).unwrap_or(0);
    limit.is_none_or(|l| l >= needed)
}

/// Elsewhere no limit allows it.
#[cfg(not(target_os = "linux"))]
pub fn rlimit_allows(_target: i32) -> bool {
    false
}

/// A thread's name and nice value from its procfs `stat` line
/// (`/proc/PID/task/TID/stat`): the name is in parentheses and may hold
/// spaces, the nice value is the 19th field. For tests and diagnostics.
pub fn name_and_nice_in_stat(stat: &str) -> Option<(String, i32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name, from the state (field 3) on: the nice value is the 17th.
    let nice = stat.get(close + 2..)?.split(' ').nth(16)?.parse().ok()?;
    Some((name, nice))
}

/// Elsewhere threads are not raised.
#[cfg(not(target_os = "linux"))]
pub fn may_raise_to(_target: i32) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn set_thread_nice(target: i32) -> Result<(), PriorityError> {
    Err(PriorityError {
        target,
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "thread priorities are set on Linux only",
        ),
    })
}

#[cfg(test)]
#[cfg(target_os = "linux")]
pub(crate) mod tests {
    use super::*;

    /// The calling thread's nice value from procfs.
    pub(crate) fn procfs_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        name_and_nice_in_stat(&stat).unwrap().1
    }

    #[test]
    fn a_stat_line_gives_the_name_and_the_nice_value() {
        // A name with spaces and parentheses, as `comm` allows.
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 -5 3 0 77";
        assert_eq!(
            name_and_nice_in_stat(stat),
            Some(("a (b) c".to_owned(), -5))
        );
        assert_eq!(name_and_nice_in_stat("4242 (cut) S 1 2"), None);
        assert_eq!(name_and_nice_in_stat("no name"), None);
    }

    /// On a thread of its own, so that the test thread keeps its priority.
    fn on_a_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().unwrap()
    }

    #[test]
    fn a_runtime_thread_is_raised_when_the_process_may() {
        let base = process_nice().unwrap();
        let raised = on_a_thread(|| {
            raise_runtime_thread();
            procfs_nice()
        });
        if may_raise_to(base - RUNTIME_RAISE) {
            assert_eq!(runtime_raised(), Some(true));
            assert_eq!(raised, (base - RUNTIME_RAISE).max(-20), "not raised");
        } else {
            // Refused: the thread keeps the process's priority, and says so.
            assert_eq!(runtime_raised(), Some(false));
            assert_eq!(raised, base);
        }
    }

    #[test]
    fn the_write_path_runs_above_the_runtime_and_is_put_back_after() {
        let base = process_nice().unwrap();
        let (before, during, after) = on_a_thread(|| {
            let before = procfs_nice();
            (before, on_the_write_path(procfs_nice), procfs_nice())
        });
        assert_eq!(before, base);
        if may_raise_to(base - WRITE_RAISE) {
            assert_eq!(
                during,
                (base - WRITE_RAISE).max(-20),
                "the write path was not raised"
            );
        } else {
            assert_eq!(during, base, "refused, the step runs as the thread is");
        }
        assert_eq!(after, before, "the thread was not put back");
    }

    #[test]
    fn a_write_step_that_panics_still_puts_the_thread_back() {
        let (before, after) = on_a_thread(|| {
            let before = procfs_nice();
            let panicked = std::panic::catch_unwind(|| {
                on_the_write_path(|| panic!("a bug in a write step"));
            });
            assert!(panicked.is_err());
            (before, procfs_nice())
        });
        assert_eq!(
            after, before,
            "a panicking write step left its thread raised"
        );
    }

    #[test]
    fn an_offset_is_from_the_process_not_from_the_thread() {
        let base = process_nice().unwrap();
        let (lowered, back) = on_a_thread(move || {
            set_thread_offset(7).unwrap();
            let lowered = procfs_nice();
            // From a lowered thread, offset 0 is the process's priority
            // again only if raising is allowed: otherwise it is refused and
            // the thread stays lowered.
            let back = set_thread_offset(0).map(|()| procfs_nice());
            (lowered, back)
        });
        assert_eq!(lowered, (base + 7).min(19));
        if may_raise_to(base) || lowered == base {
            assert_eq!(back.unwrap(), base);
        } else {
            let e = back.unwrap_err();
            assert_eq!(e.target, base);
        }
    }
}
