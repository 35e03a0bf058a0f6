//! The single sequencer: it batches pending submissions (by count and
//! time), integrates each batch in one transaction, and answers each
//! submitter with its index once the batch is durable. An acknowledged
//! entry is committed and synced.
//!
//! Batches are pipelined: while one batch waits for the filesystem sync
//! that makes it durable ([`crate::durability`]), the next is built and
//! committed. At most [`PIPELINE_DEPTH`] batches are committed and not yet
//! answered.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daylight_core::{Hash, LeafIndex, TreeSize};
use tokio::sync::{oneshot, watch};

use crate::admission::Admission;
use crate::integrate::{integrate_committed, IntegrateError, KeyRing};
use crate::metrics::Metrics;
use crate::store::{Durable, Lease, LogStore, NewEntry, Settled, StoreError};

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
    /// This frontend lost the sequencer lease while the batch was written.
    #[error("the sequencer lease moved to another frontend")]
    LeaseLost,
    /// The entry was queued for the sequencing frontend, which did not
    /// sequence it in time (no frontend holds the lease, or it is stuck).
    #[error("no frontend sequenced the entry within {QUEUE_WAIT:?}")]
    NotSequenced,
    /// The admission rules, checked again at commit, refuse the entry (its
    /// signer was revoked after it was admitted).
    #[error("{}", .0.detail)]
    Refused(crate::error::ApiError),
    /// The record was refused at admission and never reached the
    /// sequencer (the HTTP API's submissions answer on one channel).
    #[error("{}", .0.detail)]
    NotAdmitted(crate::error::ApiError),
}

/// Where a submission's answer goes: its index once durable, or why not.
pub type Reply = oneshot::Sender<Result<LeafIndex, SequenceError>>;

struct Pending {
    entry: NewEntry,
    received: Instant,
    reply: Reply,
}

/// Submits entries to the sequencer.
#[derive(Clone)]
pub struct Sequencer {
    tx: SyncSender<Pending>,
}

impl Sequencer {
    /// Queues an entry and waits until it is committed; answers its index
    /// (the existing one if these exact bytes are already in the log).
    pub async fn submit(&self, entry: NewEntry) -> Result<LeafIndex, SequenceError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(entry, reply);
        answer.await.map_err(|_| SequenceError::Stopped)?
    }

    /// Queues an entry without waiting, from any thread: `reply` gets what
    /// [`submit`](Self::submit) would answer (at once if the queue is full
    /// or the sequencer stopped). A reply dropped unanswered means the
    /// sequencer stopped.
    pub fn enqueue(&self, entry: NewEntry, reply: Reply) {
        let pending = Pending {
            entry,
            received: Instant::now(),
            reply,
        };
        if let Err(e) = self.tx.try_send(pending) {
            let (error, pending) = match e {
                TrySendError::Full(p) => (SequenceError::QueueFull, p),
                TrySendError::Disconnected(p) => (SequenceError::Stopped, p),
            };
            let _ = pending.reply.send(Err(error));
        }
    }
}

/// Batches that may be committed and waiting for their sync at once: one
/// syncing while the next is built is what pipelining gains; more would
/// only put more acknowledged-to-be entries at risk when a sync fails.
pub const PIPELINE_DEPTH: u32 = 2;

/// How often a sequencing frontend looks for entries other frontends queued,
/// and how often a queued entry's frontend looks for its index.
pub const QUEUE_POLL: Duration = Duration::from_millis(25);

/// How long a submission queued for another frontend waits for its index
/// before the submitter is told to try again (503): longer than a takeover.
pub const QUEUE_WAIT: Duration = Duration::from_secs(30);

/// Starts the sequencer on a thread of its own, at the write path's
/// priority (`crate::priority`), with a second one that answers each batch
/// once it is durable. While `term` holds a lease, this frontend sequences:
/// its own submissions and those other frontends queued in the store.
/// Without one, it queues its submissions in the store for the frontend that
/// sequences, and answers each submitter once its entry has an index. It
/// stops once every [`Sequencer`] handle is dropped and the last batch is
/// answered; the task returned ends then. Call it inside the runtime (the
/// hand-over to other frontends runs on it).
///
/// Threads rather than tasks: a batch passed between the runtime's workers
/// and its blocking threads four times (the sequencer's task, the batch's
/// blocking step, the answering task, its blocking durable wait), and under
/// closed-loop readers each of those waited for a core: three of them took
/// 0.8 ms a batch under the mixed load (BENCHMARKS.md, issue 18).
pub fn start(
    log: Shared,
    config: BatchConfig,
    term: watch::Receiver<Option<Lease>>,
) -> std::io::Result<(Sequencer, tokio::task::JoinHandle<()>)> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
        std::io::Error::other(format!("starting the sequencer outside the runtime: {e}"))
    })?;
    let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
    let (stopped, on_stop) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || {
            let _runtime = runtime.enter();
            // Started from whichever thread serves (`log serve`'s main
            // thread is not raised): at the runtime's priority first where
            // the runtime was raised, so that a limit allowing that and not
            // the write path's leaves it there, as it leaves admission.
            if crate::priority::runtime_raised() == Some(true) {
                let _ = crate::priority::set_thread_offset(-crate::priority::RUNTIME_RAISE);
            }
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::priority::on_the_write_path(|| run(log, config, term, rx))
            }));
            if ran.is_err() {
                tracing::error!(
                    "the sequencer failed inside the server and stopped; submissions are refused"
                );
            }
            let _ = stopped.send(());
        })
        .map_err(|e| std::io::Error::new(e.kind(), format!("starting the sequencer: {e}")))?;
    // Ends when the thread does.
    let task = tokio::spawn(async move {
        let _ = on_stop.await;
    });
    Ok((Sequencer { tx }, task))
}

/// What every batch needs: the log it writes, how, and whom it tells.
#[derive(Clone)]
pub struct Shared {
    /// The log's state.
    pub store: Arc<dyn LogStore>,
    /// The keys that sign its checkpoints.
    pub key: Arc<KeyRing>,
    /// The rules, checked again at commit.
    pub admission: Arc<dyn Admission>,
    /// The log's origin.
    pub origin: String,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Told the new size after each batch.
    pub latest: watch::Sender<TreeSize>,
}

/// A sequenced batch on its way to its submitters.
struct Answer {
    done: Sequenced,
    batch: Vec<Pending>,
    oldest: Instant,
}

fn run(
    shared: Shared,
    config: BatchConfig,
    mut term: watch::Receiver<Option<Lease>>,
    rx: mpsc::Receiver<Pending>,
) {
    // The answerer holds one batch (waiting for its sync) and this thread,
    // once it has committed another, waits to hand that over: with the
    // channel's own room, PIPELINE_DEPTH are committed and not yet
    // answered (at two, a rendezvous).
    let room = (PIPELINE_DEPTH as usize).saturating_sub(2);
    let (to_answer, answers) = mpsc::sync_channel::<Answer>(room);
    let answerer = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("sequencer-sync".into())
            .spawn(move || {
                for a in answers {
                    // A bug answering one batch drops its replies (their
                    // submitters are told the log stopped), not the thread.
                    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        answer(&shared, a)
                    }));
                    if answered.is_err() {
                        tracing::error!("answering a batch failed inside the server");
                    }
                }
            })
    };
    let to_answer = match &answerer {
        Ok(_) => Some(to_answer),
        Err(e) => {
            // Not pipelined, but every batch is still answered.
            tracing::error!("starting the sequencer's answering thread: {e}; answering inline");
            None
        }
    };
    let mut next_poll = Instant::now() + QUEUE_POLL;
    loop {
        let lease = *term.borrow_and_update();
        let mut batch = Vec::new();
        // Wait for a submission; while leading, only until it is time to
        // look for what other frontends queued; otherwise only as long, to
        // see a new term.
        let wait = match lease {
            Some(_) => next_poll.saturating_duration_since(Instant::now()),
            None => QUEUE_POLL,
        };
        match rx.recv_timeout(wait) {
            Ok(p) => batch.push(p),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) if lease.is_none() => continue,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Take what is already queued, then linger up to max_wait for more.
        while batch.len() < config.max_entries {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let deadline = Instant::now() + config.max_wait;
        while !batch.is_empty() && batch.len() < config.max_entries && !config.max_wait.is_zero() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // The term as it is now, not as it was before the wait: a lease
        // taken meanwhile sequences this batch rather than queue it.
        match *term.borrow_and_update() {
            Some(lease) => {
                lead(&shared, &config, lease, batch, to_answer.as_ref());
                next_poll = Instant::now() + QUEUE_POLL;
            }
            None => hand_over(&shared, batch),
        }
    }
    // The last batches are answered before the sequencer says it stopped.
    drop(to_answer);
    if let Ok(answerer) = answerer {
        if answerer.join().is_err() {
            tracing::error!("the sequencer's answering thread panicked");
        }
    }
    tracing::info!("sequencer stopped");
}

/// Sequences `batch` plus what other frontends queued, under `lease`, and
/// hands it to the answering thread (`to_answer`; answered here if there is
/// none), which answers once the batch is durable.
fn lead(
    shared: &Shared,
    config: &BatchConfig,
    lease: Lease,
    batch: Vec<Pending>,
    to_answer: Option<&SyncSender<Answer>>,
) {
    // Other frontends' submissions get at least half a batch, so a busy
    // leader's own clients cannot starve them.
    let room = config
        .max_entries
        .saturating_sub(batch.len())
        .max(config.max_entries / 2)
        .max(1);
    let mut entries: Vec<NewEntry> = batch.iter().map(|p| p.entry.clone()).collect();
    entries.extend(read_queue(shared, room));
    if entries.is_empty() {
        return;
    }
    let oldest = batch
        .iter()
        .map(|p| p.received)
        .min()
        .unwrap_or_else(Instant::now);
    let started = Instant::now();
    // A panic (a bug) fails this batch, not the sequencer.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sequence(
            shared.store.as_ref(),
            &shared.key,
            shared.admission.as_ref(),
            &shared.origin,
            entries,
            lease,
        )
    }))
    .unwrap_or_else(|_| {
        Err(SequenceError::Integration(
            "sequencing the batch failed inside the server".into(),
        ))
    });
    match result {
        Ok(done) => {
            shared.metrics.sequencing.observe(started.elapsed());
            let a = Answer {
                done,
                batch,
                oldest,
            };
            // Answered here if the answering thread is gone or never was.
            let unsent = match to_answer {
                Some(to) => to.send(a).err().map(|e| e.0),
                None => Some(a),
            };
            if let Some(a) = unsent {
                answer(shared, a);
            }
        }
        Err(SequenceError::LeaseLost) => {
            // Another frontend sequences now: it takes these from the queue.
            tracing::warn!(
                "lost the sequencer lease; handing {} entries over",
                batch.len()
            );
            hand_over(shared, batch);
        }
        Err(e) => {
            shared
                .metrics
                .storage_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!("batch of {} not integrated: {e}", batch.len());
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Up to `room` entries other frontends queued in the store; none if the
/// queue cannot be read (counted, and read again with the next batch).
fn read_queue(shared: &Shared, room: usize) -> Vec<NewEntry> {
    shared.store.queued(room).unwrap_or_else(|e| {
        shared
            .metrics
            .storage_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!("reading the submission queue: {e}");
        Vec::new()
    })
}

/// Answers a sequenced batch's submitters once it is durable, and tells the
/// witnesses its size; if its sync failed, tells the submitters to retry.
fn answer(shared: &Shared, a: Answer) {
    let Answer {
        done:
            Sequenced {
                indexes,
                size,
                added,
                durable,
            },
        batch,
        oldest,
    } = a;
    let committed = Instant::now();
    let synced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| durable.wait()))
        .map_err(|_| {
            SequenceError::Integration("waiting for the sync failed inside the server".into())
        })
        .and_then(|r| r.map_err(storage_error));
    let m = &shared.metrics;
    if let Err(e) = synced {
        m.storage_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!("batch of {} not synced: {e}", batch.len());
        for p in batch {
            let _ = p.reply.send(Err(e.clone()));
        }
        return;
    }
    m.durability.observe(committed.elapsed());
    m.batches.fetch_add(1, Ordering::Relaxed);
    m.entries.fetch_add(added, Ordering::Relaxed);
    let answered = indexes.iter().filter(|i| i.is_ok()).count() as u64;
    m.duplicates
        .fetch_add(answered.saturating_sub(added), Ordering::Relaxed);
    // Batches are answered in order, by one thread; the sizes only grow.
    m.tree_size.fetch_max(size.get(), Ordering::Relaxed);
    m.integration.observe(oldest.elapsed());
    shared.latest.send_if_modified(|latest| {
        let grew = size > *latest;
        if grew {
            *latest = size;
        }
        grew
    });
    // The first indexes are this frontend's own submissions.
    for (p, index) in batch.into_iter().zip(indexes) {
        let _ = p.reply.send(index);
    }
}

/// Queues `batch` in the store for the sequencing frontend, and answers each
/// submitter once its entry has an index.
fn hand_over(shared: &Shared, batch: Vec<Pending>) {
    if batch.is_empty() {
        return;
    }
    let (store, metrics) = (shared.store.clone(), shared.metrics.clone());
    tokio::spawn(async move {
        let entries: Vec<NewEntry> = batch.iter().map(|p| p.entry.clone()).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf_hash).collect();
        let s = store.clone();
        let queued = tokio::task::spawn_blocking(move || s.enqueue(&entries))
            .await
            .map_err(|e| SequenceError::Integration(e.to_string()))
            .and_then(|r| r.map_err(storage_error));
        if let Err(e) = queued {
            metrics.storage_errors.fetch_add(1, Ordering::Relaxed);
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
            return;
        }
        let mut waiting: Vec<(Hash, Pending)> = leaves.into_iter().zip(batch).collect();
        let deadline = Instant::now() + QUEUE_WAIT;
        while !waiting.is_empty() {
            if Instant::now() > deadline {
                for (_, p) in waiting {
                    let _ = p.reply.send(Err(SequenceError::NotSequenced));
                }
                return;
            }
            tokio::time::sleep(QUEUE_POLL).await;
            let (s, asked) = (
                store.clone(),
                waiting.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
            );
            // The refusals are read after the leaves: one refused and then
            // queued and sequenced again in between is found sequenced on
            // the next round (a new queueing forgets the refusal), and a
            // found entry's refusal is not looked at. A failed read of them
            // leaves the entries not found waiting.
            let found = tokio::task::spawn_blocking(move || {
                let found = s.find_leaves(&asked)?;
                let refusals = s
                    .refusals(&asked)
                    .unwrap_or_else(|_| vec![None; asked.len()]);
                Ok::<_, StoreError>((found, refusals))
            });
            let (found, refusals) = match found.await {
                Ok(Ok(found)) => found,
                // Keep waiting: the database may be back before the deadline.
                _ => continue,
            };
            let mut still = Vec::with_capacity(waiting.len());
            let mut sequenced = Vec::new();
            let mut refused = Vec::new();
            for (((h, p), index), refusal) in waiting.into_iter().zip(found).zip(refusals) {
                match (index, refusal) {
                    (Some(i), _) => sequenced.push((p, i)),
                    // The sequencing frontend refused it at commit.
                    (None, Some(r)) => refused.push((p, r)),
                    (None, None) => still.push((h, p)),
                }
            }
            waiting = still;
            if sequenced.is_empty() && refused.is_empty() {
                continue;
            }
            // Found committed (or refused: its entry left the queue) is not
            // yet durable: answered after a sync that began now (it covers
            // whichever process committed them).
            let s = store.clone();
            let synced = tokio::task::spawn_blocking(move || s.durable_barrier().wait())
                .await
                .map_err(|e| SequenceError::Integration(e.to_string()))
                .and_then(|r| r.map_err(storage_error));
            for (p, i) in sequenced {
                let _ = p.reply.send(synced.clone().map(|()| i));
            }
            for (p, r) in refused {
                let refusal = SequenceError::Refused(crate::error::ApiError::from_refusal(&r));
                let _ = p.reply.send(synced.clone().and(Err(refusal)));
            }
        }
    });
}

fn storage_error(e: StoreError) -> SequenceError {
    if e.is_transient() {
        SequenceError::Storage(e.to_string())
    } else {
        SequenceError::Integration(e.to_string())
    }
}

/// What a batch came to.
struct Sequenced {
    /// Per entry: its index, or why it was refused at commit.
    indexes: Vec<Result<LeafIndex, SequenceError>>,
    /// The tree size after the batch.
    size: TreeSize,
    /// How many entries the batch added.
    added: u64,
    /// Answers once the batch, and every batch before it, is durable.
    durable: Durable,
}

/// Integrates a batch, answering each entry's index. Entries already in the
/// log, or repeated within the batch, get the index they already have.
/// Each new entry's signer is checked again against the registry at the
/// exact size the batch is built on, and the store commits only on that
/// size: no entry signed by a key revoked before it is ever integrated.
fn sequence(
    store: &dyn LogStore,
    key: &KeyRing,
    admission: &dyn Admission,
    origin: &str,
    entries: Vec<NewEntry>,
    lease: Lease,
) -> Result<Sequenced, SequenceError> {
    let fail = |e: String| SequenceError::Integration(e);
    let storage = storage_error;
    // Every leaf of the batch leaves the queue with it (new ones, those
    // found already in the log and those refused alike).
    let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf_hash).collect();
    // Another writer (an offline `daylight log` command) may append between
    // our read of the size and our commit; the store then refuses the
    // batch and we build it again on the new size.
    for _attempt in 0..3 {
        enum Slot {
            Existing(LeafIndex),
            New(usize),
            Refused(crate::error::ApiError),
        }
        let mut slots = Vec::with_capacity(entries.len());
        let mut fresh: Vec<NewEntry> = Vec::new();
        let mut in_batch: HashMap<Hash, usize> = HashMap::new();
        let known = store.find_leaves(&leaves).map_err(storage)?;
        // Kept with the batch, for a frontend that queued one of them.
        let mut refused = Vec::new();
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
        let built_on = store.size().map_err(storage)?;
        if !fresh.is_empty() {
            let verdicts = match admission.recheck(store, built_on, &fresh) {
                Ok(v) => v,
                Err(e) if e.code == "log_moved" => continue,
                Err(e) => return Err(fail(e.detail)),
            };
            if verdicts.iter().any(Option::is_some) {
                // Renumber the survivors; the refused get their error.
                let mut kept = Vec::with_capacity(fresh.len());
                let mut new_pos = Vec::with_capacity(fresh.len());
                for (e, verdict) in fresh.into_iter().zip(verdicts) {
                    match verdict {
                        None => {
                            new_pos.push(Ok(kept.len()));
                            kept.push(e);
                        }
                        Some(err) => {
                            // What the submitter must change (its key's
                            // registration): kept for a frontend that queued
                            // it. A fault of ours is not; that frontend's
                            // submitter is told to retry after the wait.
                            if err.status.is_client_error() {
                                refused.push((e.leaf_hash, err.to_refusal()));
                            }
                            new_pos.push(Err(err));
                        }
                    }
                }
                for slot in &mut slots {
                    if let Slot::New(pos) = *slot {
                        *slot = match &new_pos[pos] {
                            Ok(p) => Slot::New(*p),
                            Err(err) => Slot::Refused(err.clone()),
                        };
                    }
                }
                fresh = kept;
            }
        }
        // The log's current key must sign: after a rotation while serving,
        // the new key is loaded or nothing is signed.
        let keys = match admission.log_key() {
            Some(current) => key.for_log_key(&current),
            None => key.current(),
        }
        .map_err(|why| {
            SequenceError::Refused(crate::error::ApiError::unavailable(
                "log_key_unavailable",
                why,
                5,
            ))
        })?;
        let added = fresh.len() as u64;
        let settled = Settled {
            leaves: leaves.clone(),
            refused,
        };
        // Nothing new: every entry is already in the log (or refused); drop
        // the queued copies and keep the refusals (those under the lease and
        // only if the log is still the one they were made against).
        let (first, size, durable) = if fresh.is_empty() {
            match store.settle(&settled, Some(lease), built_on) {
                Ok(()) => {}
                Err(StoreError::SizeChanged { .. }) => continue,
                Err(StoreError::LeaseLost(_)) => return Err(SequenceError::LeaseLost),
                Err(e) => return Err(storage(e)),
            }
            // The entries found may be an earlier batch's, still syncing,
            // or another process's.
            (LeafIndex(0), built_on, store.durable_barrier())
        } else {
            match integrate_committed(
                store,
                keys.as_ref(),
                origin,
                fresh,
                Some(lease),
                settled,
                Some(built_on),
            ) {
                Ok(c) => (c.integrated.first, c.integrated.size, c.durable),
                Err(IntegrateError::Store(StoreError::SizeChanged { .. })) => continue,
                Err(IntegrateError::Store(StoreError::LeaseLost(_))) => {
                    return Err(SequenceError::LeaseLost)
                }
                Err(IntegrateError::Store(e)) => return Err(storage(e)),
                Err(e) => return Err(fail(e.to_string())),
            }
        };
        let indexes = slots
            .into_iter()
            .map(|s| match s {
                Slot::Existing(i) => Ok(i),
                Slot::New(pos) => Ok(LeafIndex(first.get() + pos as u64)),
                Slot::Refused(e) => Err(SequenceError::Refused(e)),
            })
            .collect();
        return Ok(Sequenced {
            indexes,
            size,
            added,
            durable,
        });
    }
    Err(fail("the log kept growing under the sequencer".into()))
}
