//! Prometheus counters, written by hand: a handful of atomics is all the
//! log needs, and the text format is simple.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A running sum and count, exported as a Prometheus summary without quantiles.
#[derive(Default)]
pub struct Timer {
    micros: AtomicU64,
    count: AtomicU64,
}

impl Timer {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        self.micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let secs = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let n = self.count.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} summary\n{name}_sum {secs}\n{name}_count {n}\n"
        );
    }
}

/// The log server's metrics.
#[derive(Default)]
pub struct Metrics {
    /// Entries integrated by this process.
    pub entries: AtomicU64,
    /// Submissions answered with an existing index.
    pub duplicates: AtomicU64,
    /// Submissions refused.
    pub rejected: AtomicU64,
    /// Batches integrated.
    pub batches: AtomicU64,
    /// Time from a batch's first submission until it is durable and its
    /// submitters are answered.
    pub integration: Timer,
    /// Time a batch that was integrated spent being sequenced and committed
    /// (hashes, tiles, checkpoint, one transaction) on the sequencer's
    /// thread, once it had read other frontends' queue.
    pub sequencing: Timer,
    /// Time a committed batch then waited until it was durable (the
    /// filesystem sync), for the batches that became durable.
    pub durability: Timer,
    /// Round trips to witnesses that answered.
    pub witness_latency: Timer,
    /// Witness requests that failed (timeouts, errors, bad cosignatures).
    pub witness_failures: AtomicU64,
    /// Mirror pushes that ended in a verified cosignature (add-checkpoint,
    /// then add-entries up to the checkpoint).
    pub mirror_latency: Timer,
    /// Mirror pushes that failed (timeouts, errors, bad cosignatures).
    pub mirror_failures: AtomicU64,
    /// Checkpoints published with a quorum of cosignatures.
    pub published: AtomicU64,
    /// Current tree size.
    pub tree_size: AtomicU64,
    /// Size of the newest published checkpoint.
    pub published_size: AtomicU64,
    /// Publication rounds to the bucket or directory (tiles, then checkpoint).
    pub publication: Timer,
    /// Tiles and bundles written to the bucket or directory.
    pub published_objects: AtomicU64,
    /// Publication rounds that failed (retried with backoff).
    pub publication_failures: AtomicU64,
    /// Size of the checkpoint in the bucket or directory.
    pub bucket_size: AtomicU64,
    /// 1 while this frontend holds the sequencer lease.
    pub leader: AtomicU64,
    /// The fencing token of this frontend's newest term.
    pub lease_token: AtomicU64,
    /// Terms this frontend started (takeovers, and the first one).
    pub terms: AtomicU64,
    /// The lease holder's name, as last read from the store.
    pub leader_name: Mutex<String>,
    /// Milliseconds until the lease expires, as last read.
    pub lease_expires_ms: AtomicI64,
    /// This frontend's own name in the lease.
    pub frontend: Mutex<String>,
    /// Batches and queue operations the store failed (the database or disk
    /// refused or could not be reached).
    pub storage_errors: AtomicU64,
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Names this frontend in the metrics.
    pub fn set_frontend(&self, name: &str) {
        if let Ok(mut f) = self.frontend.lock() {
            *f = name.to_string();
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64, kind: &str| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            &mut out,
            "daylight_entries_total",
            "Entries integrated by this process.",
            &self.entries,
            "counter",
        );
        counter(
            &mut out,
            "daylight_duplicate_submissions_total",
            "Submissions answered with an existing index.",
            &self.duplicates,
            "counter",
        );
        counter(
            &mut out,
            "daylight_rejected_submissions_total",
            "Submissions refused.",
            &self.rejected,
            "counter",
        );
        counter(
            &mut out,
            "daylight_batches_total",
            "Batches integrated.",
            &self.batches,
            "counter",
        );
        counter(
            &mut out,
            "daylight_witness_failures_total",
            "Witness requests that failed.",
            &self.witness_failures,
            "counter",
        );
        counter(
            &mut out,
            "daylight_mirror_failures_total",
            "Mirror pushes that failed.",
            &self.mirror_failures,
            "counter",
        );
        counter(
            &mut out,
            "daylight_checkpoints_published_total",
            "Checkpoints published with a witness quorum.",
            &self.published,
            "counter",
        );
        counter(
            &mut out,
            "daylight_tree_size",
            "Entries in the log.",
            &self.tree_size,
            "gauge",
        );
        let raised = AtomicU64::new(u64::from(crate::priority::runtime_raised() == Some(true)));
        counter(
            &mut out,
            "daylight_runtime_priority_raised",
            "1 if the server's runtime threads run above its readers' work (CAP_SYS_NICE or RLIMIT_NICE), else 0.",
            &raised,
            "gauge",
        );
        counter(
            &mut out,
            "daylight_published_size",
            "Tree size of the newest published checkpoint.",
            &self.published_size,
            "gauge",
        );
        counter(
            &mut out,
            "daylight_published_objects_total",
            "Tiles and entry bundles written to the publication target.",
            &self.published_objects,
            "counter",
        );
        counter(
            &mut out,
            "daylight_publication_failures_total",
            "Publication rounds that failed and were retried.",
            &self.publication_failures,
            "counter",
        );
        counter(
            &mut out,
            "daylight_bucket_size",
            "Tree size of the checkpoint in the publication target.",
            &self.bucket_size,
            "gauge",
        );
        counter(
            &mut out,
            "daylight_storage_errors_total",
            "Batches and queue operations the store failed.",
            &self.storage_errors,
            "counter",
        );
        counter(
            &mut out,
            "daylight_sequencer_leader",
            "1 while this frontend holds the sequencer lease.",
            &self.leader,
            "gauge",
        );
        counter(
            &mut out,
            "daylight_sequencer_lease_token",
            "Fencing token of this frontend's newest term.",
            &self.lease_token,
            "gauge",
        );
        counter(
            &mut out,
            "daylight_sequencer_terms_total",
            "Terms this frontend started as the sequencer (takeovers included).",
            &self.terms,
            "counter",
        );
        let holder = self
            .leader_name
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        let me = self.frontend.lock().map(|h| h.clone()).unwrap_or_default();
        let _ = write!(
            out,
            "# HELP daylight_sequencer_lease_expires_ms Milliseconds until the sequencer lease expires (as last read), by holder.\n\
             # TYPE daylight_sequencer_lease_expires_ms gauge\n\
             daylight_sequencer_lease_expires_ms{{holder=\"{}\",frontend=\"{}\"}} {}\n",
            label(&holder),
            label(&me),
            self.lease_expires_ms.load(Ordering::Relaxed)
        );
        self.publication.write(
            &mut out,
            "daylight_publication_seconds",
            "Publication rounds: tiles, bundles, then the checkpoint.",
        );
        self.integration.write(
            &mut out,
            "daylight_integration_seconds",
            "From a batch's first submission until it is durable and answered.",
        );
        self.sequencing.write(
            &mut out,
            "daylight_sequencing_seconds",
            "Sequencing and committing a batch that was integrated, on the sequencer's thread.",
        );
        self.durability.write(
            &mut out,
            "daylight_durability_seconds",
            "From a batch's commit until it was durable (the filesystem sync).",
        );
        self.witness_latency.write(
            &mut out,
            "daylight_witness_seconds",
            "Witness add-checkpoint round trips.",
        );
        self.mirror_latency.write(
            &mut out,
            "daylight_mirror_seconds",
            "Mirror pushes: add-checkpoint, then add-entries up to the cosignature.",
        );
        out
    }
}
