//! Shared code of the libFuzzer targets: the fixture (built once per
//! process) and a cap on single allocations.
//!
//! The targets call the same table as the stable mutation harness
//! (`daylight_gate::testkit::fuzz`), so this crate adds no parsing logic.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub use daylight_gate::testkit::fuzz::{Fixture, Parser};

/// Runs `data` through `parser` against the process's one fixture.
pub fn run(parser: Parser, data: &[u8]) {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            if let Some(mb) = std::env::var("DAYLIGHT_FUZZ_MALLOC_LIMIT_MB")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                LIMIT.store(mb << 20, Ordering::Relaxed);
            }
            Fixture::new()
        })
        .run(parser, data);
}

/// The largest single allocation allowed, in MiB, unless
/// `DAYLIGHT_FUZZ_MALLOC_LIMIT_MB` says otherwise.
const DEFAULT_MALLOC_LIMIT_MB: usize = 256;

/// libFuzzer's own `-malloc_limit_mb` needs a sanitizer's malloc hooks,
/// which a stable build has none of, so this allocator enforces the limit:
/// an allocation larger than it (an input that makes a parser reserve
/// memory out of proportion to its size) aborts, and libFuzzer saves the
/// input as a crash.
struct CappedAlloc;

/// The cap in bytes. Set from the environment on the first run, outside
/// the allocator: reading it inside would recurse into the allocator.
static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_MALLOC_LIMIT_MB << 20);

impl CappedAlloc {
    fn check(size: usize) {
        let limit = LIMIT.load(Ordering::Relaxed);
        if size > limit {
            let _ = writeln!(
                std::io::stderr(),
                "==daylight-fuzz== malloc({size}) exceeds the single-allocation limit of {} MiB",
                limit >> 20
            );
            std::process::abort();
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// only addition is a size check before allocating.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;
