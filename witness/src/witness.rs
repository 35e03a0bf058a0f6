//! The witness itself: checks an add-checkpoint request against the state it
//! keeps for the log, cosigns, and stores the new state before answering.
//!
//! Safety does not rest on the in-memory view: every state change is a
//! conditional `UPDATE ... WHERE size = old AND root = old_root` in a
//! `BEGIN IMMEDIATE` transaction, so two requests from the same old size can
//! never both succeed, even from two processes. One writer thread commits the
//! changes of all requests waiting at that moment in one transaction (group
//! commit): every answer still waits for its own change to be on disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use daylight_core::note::NoteSignature;
use daylight_core::proof::{verify_consistency, ProofError};
use daylight_core::witness_protocol::{format_cosignatures, AddCheckpoint, WitnessProtocolError};
use daylight_core::{Checkpoint, Hash, KeyType, Note, NoteError, SignerKey, TreeSize, VerifierKey};
use rusqlite::Connection;

use crate::store::{self, Advance, LogRecord, StoreError};

/// The most state changes committed in one transaction.
const MAX_BATCH: usize = 512;

/// Why a request was not cosigned. [`WitnessError::status`] maps each to the
/// HTTP status C2SP tlog-witness prescribes.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The body is not `old`, proof lines, empty line, checkpoint.
    #[error("malformed request: {0}")]
    Malformed(#[from] WitnessProtocolError),
    /// The checkpoint part is not a signed checkpoint note.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(String),
    /// The origin is not one this witness was told to witness.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No valid signature by the log's key, or an invalid one by it.
    #[error("checkpoint signature: {0}")]
    Signature(NoteError),
    /// The old size is after the checkpoint.
    #[error("old size {old} is larger than the checkpoint size {size}")]
    OldAfterSize {
        /// The old size sent.
        old: TreeSize,
        /// The checkpoint's size.
        size: TreeSize,
    },
    /// A size SQLite cannot store (over 2^63 - 1 leaves).
    #[error("tree size {0} is too large")]
    SizeTooLarge(TreeSize),
    /// The old size is not the size this witness last cosigned.
    #[error("old size {old} is not the latest cosigned size {latest}")]
    Conflict {
        /// The old size sent.
        old: TreeSize,
        /// The size of the latest checkpoint cosigned for this log (0 if none).
        latest: TreeSize,
    },
    /// A checkpoint of size 0 whose root is not the empty tree's.
    #[error("a checkpoint of size 0 must have the empty tree's root")]
    EmptyTreeRoot,
    /// Old size 0 with proof lines.
    #[error("old size 0 takes an empty consistency proof, got {0} lines")]
    ProofFromEmpty(usize),
    /// Same size as the cosigned checkpoint, different root: a fork.
    #[error("checkpoint has the cosigned size {size} but another root hash")]
    SameSizeDifferentRoot {
        /// The size of both.
        size: TreeSize,
    },
    /// The consistency proof does not lead from the cosigned tree to this one.
    #[error("consistency proof from size {old} to {size} does not verify: {reason}")]
    Inconsistent {
        /// The cosigned size.
        old: TreeSize,
        /// The checkpoint's size.
        size: TreeSize,
        /// What failed.
        reason: ProofError,
    },
    /// The clock says 1970: a cosignature timestamp must not be zero.
    #[error("the system clock is not set")]
    Clock,
    /// The key given to [`Witness::open`] is not a cosignature key.
    #[error("the witness key must be a cosignature/v1 key (type 0x04)")]
    NotACosignatureKey,
    /// The database failed or the writer is gone.
    #[error("storage: {0}")]
    Storage(String),
}

impl WitnessError {
    /// The HTTP status for this refusal (C2SP tlog-witness, current text).
    pub fn status(&self) -> u16 {
        match self {
            WitnessError::Malformed(_)
            | WitnessError::BadCheckpoint(_)
            | WitnessError::OldAfterSize { .. }
            | WitnessError::SizeTooLarge(_) => 400,
            WitnessError::Signature(_) => 403,
            WitnessError::UnknownOrigin(_) => 404,
            WitnessError::Conflict { .. } => 409,
            WitnessError::EmptyTreeRoot
            | WitnessError::ProofFromEmpty(_)
            | WitnessError::SameSizeDifferentRoot { .. }
            | WitnessError::Inconsistent { .. } => 422,
            WitnessError::Clock | WitnessError::NotACosignatureKey | WitnessError::Storage(_) => {
                500
            }
        }
    }
}

impl From<StoreError> for WitnessError {
    fn from(e: StoreError) -> Self {
        WitnessError::Storage(e.to_string())
    }
}

/// What the request path needs to know about a log: the committed state.
#[derive(Debug)]
struct LogState {
    vkey: VerifierKey,
    size: TreeSize,
    root: Hash,
    /// Timestamp of the latest cosignature (0 if none): ours never go back.
    cosigned_at: u64,
}

impl From<LogRecord> for LogState {
    fn from(r: LogRecord) -> Self {
        LogState {
            vkey: r.vkey,
            size: r.size,
            root: r.root,
            cosigned_at: r.cosigned_at.unwrap_or(0),
        }
    }
}

/// Committed state per origin. Only the writer thread changes an entry, and
/// only after the commit; entries for logs added while serving are loaded on
/// first use.
type Cache = RwLock<HashMap<String, Arc<LogState>>>;

struct Job {
    advance: Advance,
    state: Arc<LogState>,
    reply: mpsc::SyncSender<Result<(), WitnessError>>,
}

/// A witness: its cosignature key and its database. Cheap to clone.
#[derive(Clone)]
pub struct Witness {
    inner: Arc<Inner>,
}

struct Inner {
    signer: SignerKey,
    cache: Arc<Cache>,
    reader: Mutex<Connection>,
    writer: Option<mpsc::Sender<Job>>,
    writer_thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has answered every job.
        self.writer.take();
        if let Some(thread) = self.writer_thread.take() {
            if thread.join().is_err() {
                tracing::error!("witness writer thread panicked");
            }
        }
    }
}

impl Witness {
    /// Opens the witness database at `db` with the cosignature key `signer`.
    pub fn open(db: &Path, signer: SignerKey) -> Result<Witness, WitnessError> {
        if signer.verifier().key_type() != KeyType::CosignatureV1 {
            return Err(WitnessError::NotACosignatureKey);
        }
        let reader = store::open(db)?;
        let writer_conn = store::open(db)?;
        let cache: HashMap<String, Arc<LogState>> = store::logs(&reader)?
            .into_iter()
            .map(|r| (r.origin.clone(), Arc::new(LogState::from(r))))
            .collect();
        let cache = Arc::new(RwLock::new(cache));
        let (tx, rx) = mpsc::channel();
        let writer_cache = Arc::clone(&cache);
        let thread = std::thread::Builder::new()
            .name("witness-writer".to_owned())
            .spawn(move || writer_loop(writer_conn, rx, &writer_cache))
            .map_err(|e| WitnessError::Storage(format!("starting the writer thread: {e}")))?;
        Ok(Witness {
            inner: Arc::new(Inner {
                signer,
                cache,
                reader: Mutex::new(reader),
                writer: Some(tx),
                writer_thread: Some(thread),
            }),
        })
    }

    /// The witness's verifier key (cosignature/v1).
    pub fn verifier(&self) -> &VerifierKey {
        self.inner.signer.verifier()
    }

    /// Handles the body of `POST /add-checkpoint` at time `now` (Unix
    /// seconds). On success the new state is on disk and the answer is the
    /// `200` body: this witness's cosignature line.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Vec<u8>, WitnessError> {
        let result = self.check_and_cosign(body, now);
        match &result {
            Ok(_) => {}
            Err(e) if e.status() == 422 => {
                // Validly signed by the log and not consistent with what we
                // cosigned: possible evidence of a fork, so keep the request.
                tracing::warn!(
                    reason = %e,
                    request = %String::from_utf8_lossy(body),
                    "refused a signed checkpoint: possible log misbehaviour"
                );
            }
            Err(e) if e.status() >= 500 => tracing::error!(reason = %e, "add-checkpoint failed"),
            Err(e) => tracing::debug!(reason = %e, "add-checkpoint refused"),
        }
        result
    }

    fn check_and_cosign(&self, body: &[u8], now: u64) -> Result<Vec<u8>, WitnessError> {
        let mut known = None;
        let checked = check_add_checkpoint(body, |origin| {
            let state = self.log_state(origin)?;
            known = state.clone();
            Ok(state.map(|s| LogView {
                vkey: s.vkey.clone(),
                size: s.size,
                root: s.root,
            }))
        })?;
        let CheckedCheckpoint {
            note,
            checkpoint: cp,
            old,
            log_signatures,
        } = checked;
        let state = known.ok_or_else(|| WitnessError::UnknownOrigin(cp.origin.clone()))?;
        let req_old = old;
        if now == 0 {
            return Err(WitnessError::Clock);
        }
        // A later cosignature never carries an earlier time, even if the
        // clock steps back.
        let timestamp = now.max(state.cosigned_at);
        let cosignature = self.inner.signer.sign_note_text(note.text(), timestamp);
        let stored = signed_note(
            note.text(),
            log_signatures
                .into_iter()
                .chain(std::iter::once(cosignature.clone())),
        )?;
        let new_state = Arc::new(LogState {
            vkey: state.vkey.clone(),
            size: cp.size,
            root: cp.root,
            cosigned_at: timestamp,
        });
        self.commit(
            Advance {
                origin: cp.origin.clone(),
                old: req_old,
                old_root: state.root,
                size: cp.size,
                root: cp.root,
                checkpoint: stored,
                cosigned_at: timestamp,
            },
            new_state,
        )?;
        tracing::info!(origin = %cp.origin, old = %req_old, size = %cp.size, "cosigned");
        Ok(format_cosignatures(&[cosignature]))
    }

    /// Sends the change to the writer and waits until it is committed.
    fn commit(&self, advance: Advance, state: Arc<LogState>) -> Result<(), WitnessError> {
        let gone = || WitnessError::Storage("the writer thread has stopped".to_owned());
        let writer = self.inner.writer.as_ref().ok_or_else(gone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        writer
            .send(Job {
                advance,
                state,
                reply,
            })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    fn log_state(&self, origin: &str) -> Result<Option<Arc<LogState>>, WitnessError> {
        let cache = &self.inner.cache;
        if let Some(s) = cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
        {
            return Ok(Some(Arc::clone(s)));
        }
        // Not seen yet: perhaps added with `add-log` while we were serving.
        let record = {
            let reader = self
                .inner
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            store::log(&reader, origin)?
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
        // If the writer got there first its entry is newer than our read.
        let entry = cache
            .entry(origin.to_owned())
            .or_insert_with(|| Arc::new(LogState::from(record)));
        Ok(Some(Arc::clone(entry)))
    }

    /// Every log this witness knows, with its latest cosigned state.
    pub fn logs(&self) -> Result<Vec<LogRecord>, WitnessError> {
        let reader = self
            .inner
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(store::logs(&reader)?)
    }

    /// The latest cosigned checkpoint (log signature and our cosignature) of
    /// the log whose origin hashes to `origin_hash`, if any.
    pub fn checkpoint(&self, origin_hash: &str) -> Result<Option<Vec<u8>>, WitnessError> {
        let reader = self
            .inner
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(store::checkpoint_by_hash(&reader, origin_hash)?)
    }
}

/// What a log's entry in a witness (or a mirror's pending state) holds,
/// as [`check_add_checkpoint`] needs it.
#[derive(Clone, Debug)]
pub struct LogView {
    /// The key the log signs with.
    pub vkey: VerifierKey,
    /// The size of the latest accepted checkpoint (0 if none).
    pub size: TreeSize,
    /// Its root (the empty tree's if none).
    pub root: Hash,
}

/// An add-checkpoint request that passed every check of C2SP tlog-witness.
#[derive(Clone, Debug)]
pub struct CheckedCheckpoint {
    /// The checkpoint note as sent.
    pub note: Note,
    /// Its parsed text.
    pub checkpoint: Checkpoint,
    /// The request's old size (equal to the known size).
    pub old: TreeSize,
    /// The log's signatures that verified (others, such as witnesses'
    /// cosignatures, are dropped).
    pub log_signatures: Vec<NoteSignature>,
}

/// The checks of C2SP tlog-witness `add-checkpoint`, shared by the witness
/// and the mirror (whose pending checkpoint plays the cosigned one's part):
/// parse, find the log (`lookup` by origin, `None` if unknown: 404), verify
/// the log's signature (403), old size not after the size (400), old size
/// equal to the known size (409), empty-tree root, proof from 0, same size
/// with another root and the consistency proof (422). Changes nothing.
pub fn check_add_checkpoint(
    body: &[u8],
    lookup: impl FnOnce(&str) -> Result<Option<LogView>, WitnessError>,
) -> Result<CheckedCheckpoint, WitnessError> {
    let req = AddCheckpoint::parse(body)?;
    let note =
        Note::parse(&req.checkpoint).map_err(|e| WitnessError::BadCheckpoint(e.to_string()))?;
    let cp = Checkpoint::parse_text(note.text())
        .map_err(|e| WitnessError::BadCheckpoint(e.to_string()))?;
    let state =
        lookup(&cp.origin)?.ok_or_else(|| WitnessError::UnknownOrigin(cp.origin.clone()))?;
    let verified = note
        .verify(&[&state.vkey])
        .map_err(WitnessError::Signature)?;
    if req.old > cp.size {
        return Err(WitnessError::OldAfterSize {
            old: req.old,
            size: cp.size,
        });
    }
    if cp.size.get() > i64::MAX as u64 {
        return Err(WitnessError::SizeTooLarge(cp.size));
    }
    if req.old != state.size {
        return Err(WitnessError::Conflict {
            old: req.old,
            latest: state.size,
        });
    }
    if cp.size.get() == 0 && cp.root != Hash::empty_tree() {
        return Err(WitnessError::EmptyTreeRoot);
    }
    if req.old.get() == 0 {
        if !req.proof.is_empty() {
            return Err(WitnessError::ProofFromEmpty(req.proof.len()));
        }
    } else if req.old == cp.size && cp.root != state.root {
        return Err(WitnessError::SameSizeDifferentRoot { size: cp.size });
    } else {
        verify_consistency(req.old, cp.size, state.root, cp.root, &req.proof).map_err(
            |reason| WitnessError::Inconsistent {
                old: req.old,
                size: cp.size,
                reason,
            },
        )?;
    }
    Ok(CheckedCheckpoint {
        log_signatures: verified.into_iter().map(|v| v.signature).collect(),
        note,
        checkpoint: cp,
        old: req.old,
    })
}

/// The note `text` with exactly `signatures`: the checkpoint as a monitor
/// should see it (the log's verified signatures and a cosigner's).
pub fn signed_note(
    text: &str,
    signatures: impl IntoIterator<Item = NoteSignature>,
) -> Result<Vec<u8>, WitnessError> {
    let bad = |e: NoteError| WitnessError::BadCheckpoint(e.to_string());
    let mut out = Note::new(text).map_err(bad)?;
    for sig in signatures {
        out.add_signature(sig).map_err(bad)?;
    }
    Ok(out.to_bytes())
}

fn writer_loop(mut conn: Connection, jobs: mpsc::Receiver<Job>, cache: &Cache) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&mut conn, &batch) {
            Ok(outcomes) => {
                {
                    let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
                    for (job, outcome) in batch.iter().zip(&outcomes) {
                        if outcome.is_ok() {
                            cache.insert(job.advance.origin.clone(), Arc::clone(&job.state));
                        }
                    }
                }
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let answer = outcome.map_err(|latest| WitnessError::Conflict {
                        old: job.advance.old,
                        latest,
                    });
                    // The requester may have gone away; nothing to do then.
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "witness commit failed");
                for job in batch {
                    let _ = job.reply.send(Err(WitnessError::Storage(e.to_string())));
                }
            }
        }
    }
}

fn commit_batch(
    conn: &mut Connection,
    batch: &[Job],
) -> Result<Vec<Result<(), TreeSize>>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcomes = batch
        .iter()
        .map(|job| store::advance(&tx, &job.advance))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(outcomes)
}
