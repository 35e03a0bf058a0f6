//! The single sequencer: it batches pending submissions (by count and
//! time), integrates each batch in one transaction, and only then answers
//! each submitter with its index. An acknowledged entry is committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daylight_core::{Hash, LeafIndex, SignerKey, TreeSize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::integrate::integrate;
use crate::metrics::Metrics;
use crate::store::{LogStore, NewEntry, StoreError};

/// Batching limits.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Most entries per batch.
    pub max_entries: usize,
    /// Longest a batch lingers for more entries once the queue is empty
    /// (zero: group commit, integrate what queued during the last write).
    pub max_wait: Duration,
    /// Submissions that may wait at once before new ones get 503.
    pub queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        // Group commit: a batch is whatever queued while the previous one
        // was being written, so there is no fixed wait to pay at low load.
        BatchConfig {
            max_entries: 1024,
            max_wait: Duration::ZERO,
            queue: 8192,
        }
    }
}

/// Why a submission was not sequenced.
#[derive(Debug, thiserror::Error, Clone)]
pub enum SequenceError {
    /// Too many submissions are waiting.
    #[error("the submission queue is full")]
    QueueFull,
    /// The sequencer has stopped (shutting down).
    #[error("the log is shutting down")]
    Stopped,
    /// The batch could not be written; nothing of it was committed.
    #[error("integration failed: {0}")]
    Integration(String),
    /// The storage refused the batch (disk full, read-only or failing
    /// filesystem); its entries may or may not have reached the disk.
    #[error("{0}")]
    Storage(String),
}

struct Pending {
    entry: NewEntry,
    received: Instant,
    reply: oneshot::Sender<Result<LeafIndex, SequenceError>>,
}

/// Submits entries to the sequencer.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Pending>,
}

impl Sequencer {
    /// Queues an entry and waits until it is committed; answers its index
    /// (the existing one if these exact bytes are already in the log).
    pub async fn submit(&self, entry: NewEntry) -> Result<LeafIndex, SequenceError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            entry,
            received: Instant::now(),
            reply,
        };
        self.tx.try_send(pending).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SequenceError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SequenceError::Stopped,
        })?;
        answer.await.map_err(|_| SequenceError::Stopped)?
    }
}

/// Starts the sequencer task. It stops once every [`Sequencer`] handle is
/// dropped and the last batch is written.
pub fn start(
    store: Arc<dyn LogStore>,
    key: SignerKey,
    origin: String,
    config: BatchConfig,
    metrics: Arc<Metrics>,
    latest: watch::Sender<TreeSize>,
) -> (Sequencer, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let task = tokio::spawn(run(store, key, origin, config, metrics, latest, rx));
    (Sequencer { tx }, task)
}

async fn run(
    store: Arc<dyn LogStore>,
    key: SignerKey,
    origin: String,
    config: BatchConfig,
    metrics: Arc<Metrics>,
    latest: watch::Sender<TreeSize>,
    mut rx: mpsc::Receiver<Pending>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // Take what is already queued, then linger up to max_wait for more.
        while batch.len() < config.max_entries {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while batch.len() < config.max_entries && !config.max_wait.is_zero() {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(p) => batch.push(p),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let oldest = batch
            .iter()
            .map(|p| p.received)
            .min()
            .unwrap_or_else(Instant::now);
        let (store2, key2, origin2) = (store.clone(), key.clone(), origin.clone());
        let entries: Vec<NewEntry> = batch.iter().map(|p| p.entry.clone()).collect();
        let result = tokio::task::spawn_blocking(move || {
            sequence(store2.as_ref(), &key2, &origin2, entries)
        })
        .await
        .unwrap_or_else(|e| Err(SequenceError::Integration(e.to_string())));
        match result {
            Ok((indexes, size, added)) => {
                metrics.batches.fetch_add(1, Ordering::Relaxed);
                metrics.entries.fetch_add(added, Ordering::Relaxed);
                metrics
                    .duplicates
                    .fetch_add(batch.len() as u64 - added, Ordering::Relaxed);
                metrics.tree_size.store(size.get(), Ordering::Relaxed);
                metrics.integration.observe(oldest.elapsed());
                latest.send_replace(size);
                for (p, index) in batch.into_iter().zip(indexes) {
                    let _ = p.reply.send(Ok(index));
                }
            }
            Err(e) => {
                tracing::error!("batch of {} not integrated: {e}", batch.len());
                for p in batch {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
    tracing::info!("sequencer stopped");
}

/// Integrates a batch, answering each entry's index. Entries already in the
/// log, or repeated within the batch, get the index they already have.
fn sequence(
    store: &dyn LogStore,
    key: &SignerKey,
    origin: &str,
    entries: Vec<NewEntry>,
) -> Result<(Vec<LeafIndex>, TreeSize, u64), SequenceError> {
    let fail = |e: String| SequenceError::Integration(e);
    let storage = |e: StoreError| {
        if e.is_transient() {
            SequenceError::Storage(e.to_string())
        } else {
            SequenceError::Integration(e.to_string())
        }
    };
    // Another writer (an offline `daylight log` command) may append between
    // our read of the size and our commit; the store then refuses the
    // batch and we build it again on the new size.
    for _attempt in 0..3 {
        enum Slot {
            Existing(LeafIndex),
            New(usize),
        }
        let mut slots = Vec::with_capacity(entries.len());
        let mut fresh: Vec<NewEntry> = Vec::new();
        let mut in_batch: HashMap<Hash, usize> = HashMap::new();
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf_hash).collect();
        let known = store.find_leaves(&leaves).map_err(storage)?;
        for (e, known) in entries.iter().zip(known) {
            if let Some(i) = known {
                slots.push(Slot::Existing(i));
            } else if let Some(&pos) = in_batch.get(&e.leaf_hash) {
                slots.push(Slot::New(pos));
            } else {
                in_batch.insert(e.leaf_hash, fresh.len());
                slots.push(Slot::New(fresh.len()));
                fresh.push(e.clone());
            }
        }
        let added = fresh.len() as u64;
        // Nothing new: every entry is already in the log, no batch to write.
        let (first, size) = if fresh.is_empty() {
            (LeafIndex(0), store.size().map_err(storage)?)
        } else {
            match integrate(store, key, origin, fresh) {
                Ok(done) => (done.first, done.size),
                Err(crate::integrate::IntegrateError::Store(StoreError::SizeChanged {
                    ..
                })) => continue,
                Err(crate::integrate::IntegrateError::Store(e)) if e.is_transient() => {
                    return Err(SequenceError::Storage(e.to_string()))
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        };
        let indexes = slots
            .into_iter()
            .map(|s| match s {
                Slot::Existing(i) => i,
                Slot::New(pos) => LeafIndex(first.get() + pos as u64),
            })
            .collect();
        return Ok((indexes, size, added));
    }
    Err(fail("the log kept growing under the sequencer".into()))
}
