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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daylight_core::cosignature::verify_cosignatures;
use daylight_core::note::NoteSignature;
use daylight_core::tree::consistency_proof;
use daylight_core::witness_protocol::{
    parse_cosignatures, parse_size_body, AddCheckpoint, ADD_CHECKPOINT_PATH,
};
use daylight_core::{Checkpoint, Note, TreeSize};
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
        tasks: Vec::new(),
        target_tx: watch::channel(None).0,
    };
    // Whether to look for a new witness set while a target waits: after
    // each integration (the registry may have changed), and at the start.
    let mut check_set = true;
    let mut loaded = false;

    let mut done = published.borrow().as_ref().map(|p| p.checkpoint.size);
    let mut collected: Vec<(usize, NoteSignature)> = Vec::new();
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
                    if quorum == 0 {
                        if let Err(e) = publish(&store, &t, &[], &metrics, &published).await {
                            if store_failed(&e, &mut shutdown).await {
                                return Ok(());
                            }
                            continue;
                        }
                        done = Some(t.size);
                        continue;
                    }
                    collected.clear();
                    crew.target_tx.send_replace(Some(t));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep_until(refresh_at), if settled && crew.quorum > 0 => {
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
                let Report::Cosigned { round, signature } = report;
                let Some(t) = crew.target_tx.borrow().clone() else { continue };
                if round != t.round || collected.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                collected.push((i, signature));
                // Publish at quorum, and again as late cosignatures arrive.
                if collected.len() >= crew.quorum {
                    let sigs: Vec<NoteSignature> = collected.iter().map(|(_, s)| s.clone()).collect();
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
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The target the current tasks work on; a new set gets a new channel.
    target_tx: watch::Sender<Option<Arc<Target>>>,
}

impl Crew {
    /// Reads the set and quorum in force; restarts the tasks if the set
    /// changed. Returns whether it did.
    async fn reload(&mut self) -> Result<bool, String> {
        let source = self.source.clone();
        let (set, quorum) = blocking(move || source()).await?;
        self.quorum = quorum;
        let same = set.len() == self.witnesses.len()
            && set
                .iter()
                .zip(&self.witnesses)
                .all(|(a, b)| a.key == b.key && a.url == b.url);
        if same && !self.tasks.is_empty() {
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
        tracing::info!(witnesses = set.len(), quorum, "witness set in force");
        let changed = !self.witnesses.is_empty() || !set.is_empty();
        self.witnesses = set;
        Ok(changed)
    }
}

/// How long witness collection waits after the store failed (a full or
/// read-only disk) before it tries again.
pub const STORE_RETRY: Duration = Duration::from_secs(1);

/// Logs a store failure and waits [`STORE_RETRY`]; whether shutdown came
/// meanwhile. Collection keeps going, so checkpoints are published again once
/// the disk is fixed, without a restart.
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
        let current = target.borrow_and_update().clone();
        let Some(t) = current.filter(|t| cosigned != Some(t.round)) else {
            if target.changed().await.is_err() {
                return;
            }
            continue;
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
                let pause = Duration::from_millis(100u64 << failures.min(7));
                tracing::warn!(witness = %name, size = t.size.get(), "witness did not cosign: {e}; retrying in {pause:?}");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    changed = target.changed() => if changed.is_err() { return },
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
    let url = format!(
        "{}{}",
        witness.url.trim_end_matches('/'),
        ADD_CHECKPOINT_PATH
    );
    let resp = client
        .post(&url)
        .body(body)
        .send()
        .await
        .map_err(|e| Failure::Other(format!("POST {url}: {e}")))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Failure::Other(format!("reading answer from {url}: {e}")))?;
    match status.as_u16() {
        200 => {}
        409 => {
            let size = parse_size_body(&bytes)
                .map_err(|e| Failure::Other(format!("409 from {url}: {e}")))?;
            return Err(Failure::Conflict(size));
        }
        code => {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            return Err(Failure::Other(format!(
                "{url} answered {code}: {}",
                text.trim()
            )));
        }
    }
    let lines = parse_cosignatures(&bytes).map_err(|e| Failure::Other(format!("{url}: {e}")))?;
    // Keep only a cosignature that verifies with this witness's key.
    let mut note = Note::new(target.note.text()).map_err(|e| Failure::Other(e.to_string()))?;
    for line in lines
        .iter()
        .filter(|l| l.name == *witness.key.name() && l.id == witness.key.id())
    {
        note.add_signature(line.clone())
            .map_err(|e| Failure::Other(e.to_string()))?;
    }
    let valid = verify_cosignatures(&note, &[&witness.key])
        .map_err(|e| Failure::Other(format!("bad cosignature from {url}: {e}")))?;
    if valid.is_empty() {
        return Err(Failure::Other(format!(
            "{url} returned no cosignature by {}",
            witness.key
        )));
    }
    note.signatures()
        .first()
        .cloned()
        .ok_or_else(|| Failure::Other("no cosignature".into()))
}
