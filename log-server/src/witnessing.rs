//! Witness collection: after each new checkpoint, ask every configured
//! witness to cosign it (C2SP tlog-witness), verify each cosignature before
//! keeping it, and publish the checkpoint once the quorum has cosigned.
//!
//! One coordinator picks the *target* checkpoint and keeps it until the
//! quorum has cosigned it, so all witnesses work on the same checkpoint and a
//! busy log cannot starve the quorum. One task per witness sends the target
//! with a consistency proof from the size that witness last cosigned. A
//! witness that is down only slows its own task.
//!
//! The witness set and quorum are read again before each new target
//! ([`WitnessSource`]): the log's registry entries change them while it
//! serves, and each checkpoint is cosigned under the set that applied when
//! it was signed.
//!
//! Mirrors (C2SP tlog-mirror, [`crate::store::MirrorSet`], kept by
//! `daylight log add-mirror`) are cosigners of the same target with their
//! own task each: the task sends the target with `add-checkpoint`, then the
//! entries the mirror lacks with `add-entries` (packages of at most 256
//! entries with their subtree consistency proofs, at most 32 packages a
//! request, resuming from the next entry a `202` or `409` answer gives), and
//! keeps the `200`'s cosignature only if it verifies with the mirror's key.
//! A checkpoint is published once the witness quorum *and* the mirror quorum
//! have cosigned it; with a mirror quorum of 0, mirror cosignatures are
//! added to the published checkpoint as they come.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daylight_core::cosignature::verify_cosignatures;
use daylight_core::mirror_protocol::{
    package_proof, AddEntriesEncoder, AddEntriesHeader, MirrorInfo, ADD_ENTRIES_CONTENT_TYPE,
    ADD_ENTRIES_PATH, MAX_PACKAGES_PER_REQUEST,
};
use daylight_core::note::NoteSignature;
use daylight_core::tree::consistency_proof;
use daylight_core::witness_protocol::{
    parse_cosignatures, parse_size_body, AddCheckpoint, ADD_CHECKPOINT_PATH,
};
use daylight_core::{Checkpoint, LeafIndex, Note, TreeSize};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::store::{LogStore, Published, StoreError, StoreHashes, WitnessConfig};
use daylight_schemas::registry::Registry;
use daylight_schemas::Role;

/// Where witness collection learns the witness set and the quorum, asked
/// again before each new checkpoint (called on a blocking thread).
pub type WitnessSource = Arc<dyn Fn() -> Result<(Vec<WitnessConfig>, usize), String> + Send + Sync>;

/// The witnesses and quorum in force: those `daylight log add-witness`
/// stored before witnesses became registry entries, then every witness
/// registry entry in order (an entry for a key overrides its stored row; a
/// removed witness is dropped), and the registry's last quorum if it set
/// one, else `init_quorum` (the one the log was created with).
pub fn effective_witnesses(
    store: &dyn LogStore,
    registry: Option<&Registry>,
    init_quorum: usize,
) -> Result<(Vec<WitnessConfig>, usize), StoreError> {
    let stored = store.witnesses()?;
    let Some(reg) = registry else {
        return Ok((stored, init_quorum));
    };
    let mut set = stored.clone();
    for r in reg
        .registrations()
        .iter()
        .filter(|r| r.role == Role::Witness)
    {
        set.retain(|w| w.key != r.key);
        if r.revoked_at.is_none() {
            set.push(WitnessConfig {
                key: r.key.clone(),
                url: r.url.clone().unwrap_or_default(),
                known_size: stored
                    .iter()
                    .find(|w| w.key == r.key)
                    .map_or(TreeSize(0), |w| w.known_size),
            });
        }
    }
    let quorum = reg.quorum().map_or(init_quorum, |q| q as usize);
    Ok((set, quorum))
}

/// How often the newest checkpoint is cosigned again when the log is idle, so
/// that cosignature timestamps (which gates check for freshness) stay recent.
pub const REFRESH_COSIGNATURES: Duration = Duration::from_secs(600);

/// How long one add-checkpoint request may take.
pub const WITNESS_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one add-entries request to a mirror may take (32 packages of up
/// to 256 entries each).
pub const MIRROR_TIMEOUT: Duration = Duration::from_secs(60);

/// A checkpoint the witnesses are asked to cosign.
#[derive(Debug)]
pub struct Target {
    size: TreeSize,
    note: Note,
    /// Each time the witnesses are asked anew, even for the same checkpoint.
    round: u64,
}

#[derive(Debug)]
enum Report {
    Cosigned {
        round: u64,
        signature: NoteSignature,
        /// From a mirror (counted towards the mirror quorum).
        mirror: bool,
    },
}

/// Why one request to a witness did not produce a cosignature.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("witness has size {0}")]
    Conflict(TreeSize),
    #[error("{0}")]
    Other(String),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

fn load_target(store: &Arc<dyn LogStore>) -> Result<Option<Arc<Target>>, String> {
    let Some(bytes) = store.latest_checkpoint().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // Given to witnesses only once a sync begun after it was read has
    // succeeded: it may be another process's commit (a frontend that lost
    // the lease, a server that crashed, an offline command) not yet synced,
    // which this process's ceiling on `latest_checkpoint` cannot know of.
    store
        .durable_barrier()
        .wait()
        .map_err(|e| format!("the checkpoint is not known durable: {e}"))?;
    let note = Note::parse(&bytes).map_err(|e| format!("stored checkpoint: {e}"))?;
    let cp = Checkpoint::parse_text(note.text()).map_err(|e| format!("stored checkpoint: {e}"))?;
    Ok(Some(Arc::new(Target {
        size: cp.size,
        note,
        round: 0,
    })))
}

/// Runs witness collection until `shutdown` fires. `latest` is bumped by the
/// sequencer after each integrated batch; `published` is told each newly
/// published checkpoint.
pub async fn run(
    store: Arc<dyn LogStore>,
    source: WitnessSource,
    metrics: Arc<Metrics>,
    mut latest: watch::Receiver<TreeSize>,
    published: watch::Sender<Option<Arc<Published>>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(WITNESS_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let (report_tx, mut reports) = mpsc::channel::<(usize, Report)>(64);
    let mut crew = Crew {
        source,
        store: store.clone(),
        client,
        reports: report_tx,
        metrics: metrics.clone(),
        witnesses: Vec::new(),
        quorum: 0,
        mirrors: crate::store::MirrorSet::default(),
        tasks: Vec::new(),
        target_tx: watch::channel(None).0,
    };
    // Whether to look for a new witness set while a target waits: after
    // each integration (the registry may have changed), and at the start.
    let mut check_set = true;
    let mut loaded = false;

    let mut done = published.borrow().as_ref().map(|p| p.checkpoint.size);
    // (task index, cosignature, from a mirror)
    let mut collected: Vec<(usize, NoteSignature, bool)> = Vec::new();
    let mut round = 0u64;
    let mut refresh_at = tokio::time::Instant::now() + REFRESH_COSIGNATURES;
    let mut refresh = false;
    loop {
        // A new target only once the current one is published (or there is
        // none), or when the witness set changed under a waiting target
        // (its witnesses may never answer: a replaced or broken set).
        let current = crew.target_tx.borrow().clone();
        let mut settled = match (&current, done) {
            (None, _) => true,
            (Some(t), Some(d)) => d >= t.size,
            (Some(_), None) => false,
        };
        let mut set_changed = false;
        if !settled && std::mem::take(&mut check_set) {
            match crew.reload().await {
                Ok(changed) => {
                    set_changed = changed;
                    settled = changed;
                }
                Err(e) => {
                    if store_failed(&e, &mut shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        if settled {
            let s = store.clone();
            let next = match blocking(move || load_target(&s)).await {
                Ok(next) => next,
                Err(e) => {
                    if store_failed(&e, &mut shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            if let Some(t) = next {
                if done.is_none_or(|d| t.size > d)
                    || std::mem::take(&mut refresh)
                    || set_changed
                    || !loaded
                {
                    // The set in force for this checkpoint. Retried: a term
                    // that starts while the database blinks must still
                    // collect cosignatures once it answers.
                    if !set_changed {
                        if let Err(e) = crew.reload().await {
                            if store_failed(&e, &mut shutdown).await {
                                return Ok(());
                            }
                            continue;
                        }
                    }
                    loaded = true;
                    let (witnesses, quorum) = (&crew.witnesses, crew.quorum);
                    round += 1;
                    let t = Arc::new(Target {
                        size: t.size,
                        note: t.note.clone(),
                        round,
                    });
                    if witnesses.len() < quorum {
                        tracing::error!(
                            quorum,
                            witnesses = witnesses.len(),
                            "fewer witnesses than the quorum: nothing can be published"
                        );
                    }
                    if crew.mirrors.mirrors.len() < crew.mirrors.quorum {
                        tracing::error!(
                            mirror_quorum = crew.mirrors.quorum,
                            mirrors = crew.mirrors.mirrors.len(),
                            "fewer mirrors than the mirror quorum: nothing can be published"
                        );
                    }
                    // Nothing to wait for: published at once (but a
                    // checkpoint already published keeps its best-effort
                    // mirror cosignatures while they are asked again).
                    let fresh = crew.mirrors.mirrors.is_empty() || done.is_none_or(|d| t.size > d);
                    if quorum == 0 && crew.mirrors.quorum == 0 && fresh {
                        if let Err(e) = publish(&store, &t, &[], &metrics, &published).await {
                            if store_failed(&e, &mut shutdown).await {
                                return Ok(());
                            }
                            continue;
                        }
                        done = Some(t.size);
                        if crew.mirrors.mirrors.is_empty() {
                            continue;
                        }
                        // Best-effort mirrors still get it; their
                        // cosignatures are added as they come.
                    }
                    collected.clear();
                    crew.target_tx.send_replace(Some(t));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep_until(refresh_at), if settled && (crew.quorum > 0 || !crew.mirrors.mirrors.is_empty()) => {
                refresh = true;
                refresh_at = tokio::time::Instant::now() + REFRESH_COSIGNATURES;
            }
            changed = latest.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                check_set = true;
            }
            Some((i, report)) = reports.recv() => {
                let Report::Cosigned { round, signature, mirror } = report;
                let Some(t) = crew.target_tx.borrow().clone() else { continue };
                if round != t.round || collected.iter().any(|(j, _, _)| *j == i) {
                    continue;
                }
                collected.push((i, signature, mirror));
                // Publish at both quorums, and again as late cosignatures arrive.
                let mirrored = collected.iter().filter(|(_, _, m)| *m).count();
                if collected.len() - mirrored >= crew.quorum && mirrored >= crew.mirrors.quorum {
                    let sigs: Vec<NoteSignature> = collected.iter().map(|(_, s, _)| s.clone()).collect();
                    if let Err(e) = publish(&store, &t, &sigs, &metrics, &published).await {
                        // Ask the witnesses anew once the store works again.
                        collected.clear();
                        crew.target_tx.send_replace(None);
                        if store_failed(&e, &mut shutdown).await {
                            return Ok(());
                        }
                        continue;
                    }
                    done = Some(t.size);
                    refresh_at = tokio::time::Instant::now() + REFRESH_COSIGNATURES;
                }
            }
        }
    }
}

/// The witness tasks of the set in force, replaced when the set changes.
struct Crew {
    source: WitnessSource,
    store: Arc<dyn LogStore>,
    client: reqwest::Client,
    reports: mpsc::Sender<(usize, Report)>,
    metrics: Arc<Metrics>,
    witnesses: Vec<WitnessConfig>,
    quorum: usize,
    /// The mirrors in force, read from the store with the witness set.
    mirrors: crate::store::MirrorSet,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The target the current tasks work on; a new set gets a new channel.
    target_tx: watch::Sender<Option<Arc<Target>>>,
}

impl Crew {
    /// How many cosigners (witnesses and mirrors) the tasks ask.
    fn cosigners(&self) -> usize {
        self.witnesses.len() + self.mirrors.mirrors.len()
    }

    /// Reads the sets and quorums in force; restarts the tasks if a set
    /// changed. Returns whether it did.
    async fn reload(&mut self) -> Result<bool, String> {
        let (source, store) = (self.source.clone(), self.store.clone());
        let ((set, quorum), mirrors) = blocking(move || {
            let witnesses = source()?;
            let mirrors = store.mirrors().map_err(|e| e.to_string())?;
            Ok((witnesses, mirrors))
        })
        .await?;
        self.quorum = quorum;
        let same_list = |a: &[WitnessConfig], b: &[WitnessConfig]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(a, b)| a.key == b.key && a.url == b.url)
        };
        let same =
            same_list(&set, &self.witnesses) && same_list(&mirrors.mirrors, &self.mirrors.mirrors);
        if same && !self.tasks.is_empty() {
            self.mirrors.quorum = mirrors.quorum;
            return Ok(false);
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let (tx, rx) = watch::channel::<Option<Arc<Target>>>(None);
        self.target_tx = tx;
        for (i, w) in set.iter().enumerate() {
            self.tasks.push(tokio::spawn(witness_task(
                i,
                w.clone(),
                self.store.clone(),
                self.client.clone(),
                rx.clone(),
                self.reports.clone(),
                self.metrics.clone(),
            )));
        }
        for (j, m) in mirrors.mirrors.iter().enumerate() {
            self.tasks.push(tokio::spawn(mirror_task(
                set.len() + j,
                m.clone(),
                self.store.clone(),
                self.client.clone(),
                rx.clone(),
                self.reports.clone(),
                self.metrics.clone(),
            )));
        }
        tracing::info!(
            witnesses = set.len(),
            quorum,
            mirrors = mirrors.mirrors.len(),
            mirror_quorum = mirrors.quorum,
            "witness and mirror sets in force"
        );
        let changed = self.cosigners() > 0 || !set.is_empty() || !mirrors.mirrors.is_empty();
        self.witnesses = set;
        self.mirrors = mirrors;
        Ok(changed)
    }
}

/// How long witness collection waits after the store failed (a full or
/// read-only disk) before it tries again.
pub const STORE_RETRY: Duration = Duration::from_secs(1);

/// Logs a store failure and waits [`STORE_RETRY`]; whether shutdown came
/// meanwhile. Collection keeps going, so checkpoints are published again once
/// the disk is fixed: without a restart after a refused write (a full disk),
/// after one if a filesystem sync failed (`durability`).
async fn store_failed(e: &str, shutdown: &mut watch::Receiver<bool>) -> bool {
    tracing::error!("witnessing: {e}; retrying in {STORE_RETRY:?}");
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(STORE_RETRY) => false,
    }
}

async fn publish(
    store: &Arc<dyn LogStore>,
    target: &Target,
    cosignatures: &[NoteSignature],
    metrics: &Metrics,
    published: &watch::Sender<Option<Arc<Published>>>,
) -> Result<(), String> {
    let mut note = target.note.clone();
    for s in cosignatures {
        note.add_signature(s.clone()).map_err(|e| e.to_string())?;
    }
    let (s, size, bytes) = (store.clone(), target.size, note.to_bytes());
    let stored = bytes.clone();
    blocking(move || s.publish(size, &stored).map_err(|e| e.to_string())).await?;
    let checkpoint = Checkpoint::parse_text(note.text()).map_err(|e| e.to_string())?;
    metrics.published.fetch_add(1, Ordering::Relaxed);
    metrics.published_size.store(size.get(), Ordering::Relaxed);
    published.send_replace(Some(Arc::new(Published { bytes, checkpoint })));
    tracing::info!(
        size = size.get(),
        cosignatures = cosignatures.len(),
        "published checkpoint"
    );
    Ok(())
}

/// The latest target not cosigned yet (`cosigned`: the round last
/// cosigned), waiting for one; `None` once the targets end. The witness and
/// mirror tasks' loop head.
async fn next_target(
    target: &mut watch::Receiver<Option<Arc<Target>>>,
    cosigned: Option<u64>,
) -> Option<Arc<Target>> {
    loop {
        let current = target.borrow_and_update().clone();
        if let Some(t) = current.filter(|t| cosigned != Some(t.round)) {
            return Some(t);
        }
        if target.changed().await.is_err() {
            return None;
        }
    }
}

/// The pause after `failures` failures in a row: 200 ms doubling, at most
/// 12.8 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64 << failures.min(7))
}

/// Sleeps `pause` or until the target changes; `false` once the targets end.
async fn sleep_or_new_target(
    pause: Duration,
    target: &mut watch::Receiver<Option<Arc<Target>>>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        changed = target.changed() => changed.is_ok(),
    }
}

async fn witness_task(
    i: usize,
    witness: WitnessConfig,
    store: Arc<dyn LogStore>,
    client: reqwest::Client,
    mut target: watch::Receiver<Option<Arc<Target>>>,
    reports: mpsc::Sender<(usize, Report)>,
    metrics: Arc<Metrics>,
) {
    let name = witness.key.name().to_string();
    let mut known = witness.known_size;
    let mut cosigned: Option<u64> = None;
    let mut failures = 0u32;
    loop {
        let Some(t) = next_target(&mut target, cosigned).await else {
            return;
        };
        // Believed ahead of the target (a stale record): ask with old 0,
        // which a witness answers with its real size.
        let old = if known > t.size { TreeSize(0) } else { known };
        let started = Instant::now();
        match ask(&witness, &store, &client, old, &t).await {
            Ok(signature) => {
                metrics.witness_latency.observe(started.elapsed());
                failures = 0;
                known = t.size;
                cosigned = Some(t.round);
                let (s, key, size) = (store.clone(), witness.key.clone(), t.size);
                if let Err(e) =
                    blocking(move || s.set_witness_size(&key, size).map_err(|e| e.to_string()))
                        .await
                {
                    tracing::warn!(witness = %name, "remembering witness size: {e}");
                }
                if reports
                    .send((
                        i,
                        Report::Cosigned {
                            round: t.round,
                            signature,
                            mirror: false,
                        },
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(Failure::Conflict(size)) if size <= t.size && failures < 3 => {
                // The witness told us where it is: retry from there at once.
                tracing::info!(witness = %name, size = size.get(), "witness is at another size; retrying from it");
                known = size;
                failures += 1;
            }
            Err(e) => {
                metrics.witness_failures.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                let pause = backoff(failures);
                tracing::warn!(witness = %name, size = t.size.get(), "witness did not cosign: {e}; retrying in {pause:?}");
                if !sleep_or_new_target(pause, &mut target).await {
                    return;
                }
            }
        }
    }
}

/// One add-checkpoint round trip, with the answer verified.
async fn ask(
    witness: &WitnessConfig,
    store: &Arc<dyn LogStore>,
    client: &reqwest::Client,
    old: TreeSize,
    target: &Target,
) -> Result<NoteSignature, Failure> {
    let (url, bytes) = add_checkpoint(&witness.url, store, client, old, target).await?;
    verified_cosignature(&witness.key, target, &bytes, &url)
}

/// POSTs `target` to `{prefix}/add-checkpoint` with a consistency proof from
/// `old`; the URL and the body of a `200` answer (a 409 is
/// [`Failure::Conflict`]).
async fn add_checkpoint(
    prefix: &str,
    store: &Arc<dyn LogStore>,
    client: &reqwest::Client,
    old: TreeSize,
    target: &Target,
) -> Result<(String, Vec<u8>), Failure> {
    let (s, new) = (store.clone(), target.size);
    let proof = blocking(move || {
        consistency_proof(old, new, &StoreHashes::new(s.as_ref())).map_err(|e| e.to_string())
    })
    .await
    .map_err(Failure::Other)?;
    let body = AddCheckpoint {
        old,
        proof,
        checkpoint: target.note.to_bytes(),
    }
    .to_bytes();
    let url = format!("{}{}", prefix.trim_end_matches('/'), ADD_CHECKPOINT_PATH);
    let (status, bytes) = post(client, &url, body, None, WITNESS_TIMEOUT).await?;
    match status {
        200 => Ok((url, bytes)),
        409 => {
            let size = parse_size_body(&bytes)
                .map_err(|e| Failure::Other(format!("409 from {url}: {e}")))?;
            Err(Failure::Conflict(size))
        }
        code => Err(refused(&url, code, &bytes)),
    }
}

/// One POST, with `headers`, that must be answered within `timeout`: the
/// status and the body of the answer.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: Option<reqwest::header::HeaderMap>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), Failure> {
    let mut request = client.post(url).body(body).timeout(timeout);
    if let Some(headers) = headers {
        request = request.headers(headers);
    }
    let resp = request
        .send()
        .await
        .map_err(|e| Failure::Other(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Failure::Other(format!("reading answer from {url}: {e}")))?;
    Ok((status, bytes.to_vec()))
}

/// An answer that is neither success nor a conflict, as a failure.
fn refused(url: &str, code: u16, body: &[u8]) -> Failure {
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    Failure::Other(format!("{url} answered {code}: {}", text.trim()))
}

/// The cosignature by `key` on `target` among the signature lines of a
/// `200` answer, kept only if it verifies (lines by other keys are ignored).
fn verified_cosignature(
    key: &daylight_core::VerifierKey,
    target: &Target,
    body: &[u8],
    url: &str,
) -> Result<NoteSignature, Failure> {
    let lines = parse_cosignatures(body).map_err(|e| Failure::Other(format!("{url}: {e}")))?;
    let mut note = Note::new(target.note.text()).map_err(|e| Failure::Other(e.to_string()))?;
    for line in lines
        .iter()
        .filter(|l| l.name == *key.name() && l.id == key.id())
    {
        note.add_signature(line.clone())
            .map_err(|e| Failure::Other(e.to_string()))?;
    }
    let valid = verify_cosignatures(&note, &[key])
        .map_err(|e| Failure::Other(format!("bad cosignature from {url}: {e}")))?;
    if valid.is_empty() {
        return Err(Failure::Other(format!(
            "{url} returned no cosignature by {key}"
        )));
    }
    note.signatures()
        .first()
        .cloned()
        .ok_or_else(|| Failure::Other("no cosignature".into()))
}

/// What a mirror task knows of its mirror, learnt from its answers.
#[derive(Debug, Default)]
struct MirrorState {
    /// The size of the mirror's pending checkpoint (the `old` to send).
    pending: TreeSize,
    /// The mirror's next entry, once it told.
    next: Option<LeafIndex>,
}

/// Pushes each target to one mirror until it cosigns, with the witness
/// tasks' backoff; see the module documentation.
async fn mirror_task(
    i: usize,
    mirror: WitnessConfig,
    store: Arc<dyn LogStore>,
    client: reqwest::Client,
    mut target: watch::Receiver<Option<Arc<Target>>>,
    reports: mpsc::Sender<(usize, Report)>,
    metrics: Arc<Metrics>,
) {
    let name = mirror.key.name().to_string();
    let mut state = MirrorState::default();
    let mut cosigned: Option<u64> = None;
    let mut failures = 0u32;
    loop {
        let Some(t) = next_target(&mut target, cosigned).await else {
            return;
        };
        let started = Instant::now();
        match push(&mirror, &store, &client, &mut state, &t).await {
            Ok(signature) => {
                metrics.mirror_latency.observe(started.elapsed());
                failures = 0;
                cosigned = Some(t.round);
                let report = Report::Cosigned {
                    round: t.round,
                    signature,
                    mirror: true,
                };
                if reports.send((i, report)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                metrics.mirror_failures.fetch_add(1, Ordering::Relaxed);
                // Ask afresh: a mirror that failed may have lost or moved on.
                state = MirrorState::default();
                failures += 1;
                let pause = backoff(failures);
                tracing::warn!(mirror = %name, size = t.size.get(), "mirror did not cosign: {e}; retrying in {pause:?}");
                if !sleep_or_new_target(pause, &mut target).await {
                    return;
                }
            }
        }
    }
}

/// How many answers in a row may leave a mirror's next entry where it was
/// before a push gives up (and its task backs off).
const MIRROR_STALLS: u32 = 3;

/// One push of `target` to a mirror: add-checkpoint (retried once from the
/// size a 409 gives), then add-entries requests until the mirror answers
/// `200` with its cosignature, which is verified.
async fn push(
    mirror: &WitnessConfig,
    store: &Arc<dyn LogStore>,
    client: &reqwest::Client,
    state: &mut MirrorState,
    target: &Target,
) -> Result<NoteSignature, Failure> {
    let old = if state.pending > target.size {
        TreeSize(0)
    } else {
        state.pending
    };
    match add_checkpoint(&mirror.url, store, client, old, target).await {
        Ok(_) => {}
        Err(Failure::Conflict(size)) if size <= target.size => {
            add_checkpoint(&mirror.url, store, client, size, target).await?;
        }
        Err(e) => return Err(e),
    }
    state.pending = target.size;
    let url = format!("{}{}", mirror.url.trim_end_matches('/'), ADD_ENTRIES_PATH);
    let origin = Checkpoint::parse_text(target.note.text())
        .map_err(|e| Failure::Other(e.to_string()))?
        .origin;
    // Unknown next entry: an empty upload at the end, which the mirror
    // answers with its next entry (409) or, if it holds everything, 200.
    let mut start = state
        .next
        .filter(|n| n.get() <= target.size.get())
        .unwrap_or(LeafIndex(target.size.get()));
    let mut ticket = Vec::new();
    let mut stalls = 0u32;
    loop {
        let header = AddEntriesHeader {
            origin: origin.clone(),
            upload_start: start,
            upload_end: target.size,
            ticket: std::mem::take(&mut ticket),
        };
        let s = store.clone();
        let body = blocking(move || entries_body(s.as_ref(), &header))
            .await
            .map_err(Failure::Other)?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static(ADD_ENTRIES_CONTENT_TYPE),
        );
        headers.insert(
            reqwest::header::CONTENT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        );
        let (status, bytes) = post(client, &url, body, Some(headers), MIRROR_TIMEOUT).await?;
        match status {
            200 => {
                let signature = verified_cosignature(&mirror.key, target, &bytes, &url)?;
                state.next = Some(LeafIndex(target.size.get()));
                return Ok(signature);
            }
            202 | 409 => {
                let info = MirrorInfo::parse(&bytes)
                    .map_err(|e| Failure::Other(format!("{status} from {url}: {e}")))?;
                if info.pending_size != target.size {
                    return Err(Failure::Other(format!(
                        "{url} answered {status}: its pending checkpoint has size {}, not {}",
                        info.pending_size, target.size
                    )));
                }
                if info.next_entry.get() > target.size.get() {
                    return Err(Failure::Other(format!(
                        "{url} claims next entry {} past size {}",
                        info.next_entry, target.size
                    )));
                }
                // A 409 may move back (the first, probing, request starts
                // at the end); a 202 must move forward.
                let stalled = info.next_entry == start
                    || (status == 202 && info.next_entry.get() < start.get());
                stalls = if stalled { stalls + 1 } else { 0 };
                if stalls >= MIRROR_STALLS {
                    return Err(Failure::Other(format!(
                        "{url} does not advance past entry {}",
                        info.next_entry
                    )));
                }
                start = info.next_entry;
                state.next = Some(start);
                ticket = info.ticket;
            }
            code => return Err(refused(&url, code, &bytes)),
        }
    }
}

/// An add-entries body, gzip-compressed (every mirror MUST take gzip):
/// `header`, then up to [`MAX_PACKAGES_PER_REQUEST`] packages of its
/// canonical sequence, each with the log's entries and its subtree
/// consistency proof from the stored hashes.
fn entries_body(store: &dyn LogStore, header: &AddEntriesHeader) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = AddEntriesEncoder::new(header, &mut out).map_err(|e| e.to_string())?;
    let hashes = StoreHashes::new(store);
    for _ in 0..MAX_PACKAGES_PER_REQUEST {
        let Some(range) = encoder.next_package() else {
            break;
        };
        let entries = store
            .entries(range.start, range.entry_count() as u64)
            .map_err(|e| e.to_string())?;
        if entries.len() != range.entry_count() {
            return Err(format!(
                "the store holds {} of entries [{}, {})",
                entries.len(),
                range.start,
                range.end
            ));
        }
        let data: Vec<&[u8]> = entries.iter().map(|e| e.data.as_slice()).collect();
        let proof = package_proof(range, header.upload_end, &hashes).map_err(|e| e.to_string())?;
        encoder
            .push_package(&data, &proof, &mut out)
            .map_err(|e| e.to_string())?;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&out)
        .and_then(|()| gz.finish())
        .map_err(|e| format!("compressing add-entries: {e}"))
}
