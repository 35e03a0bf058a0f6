//! The Daylight auditor: mirrors a log through its C2SP tlog-tiles, verifies
//! it, applies the accountability rules and reports.
//!
//! [`audit`] runs once: it fetches the log's checkpoint, checks the log's
//! signature and the witnesses' cosignatures, proves it consistent with the
//! last checkpoint kept in the audit directory, fetches only the new tiles
//! and entry bundles, authenticates every tile against the checkpoint,
//! checks every entry against the level-0 tile hashes, re-derives the root
//! from the entries, verifies every entry (canonical parse, validation,
//! signature by a key the log's own registry lists at that point, for a
//! role allowed to sign that kind), compares the witnesses' checkpoints
//! for a split view, compares the log's C2SP tlog-mirrors ([`mirrors`]),
//! applies the [`rules`], and writes `findings.json`. The log's base URL may
//! itself be a mirror's monitoring prefix for it: only `checkpoint` and the
//! tiles are needed.
//!
//! Layout of the audit directory, the findings schema and every rule are
//! documented in `auditor/README.md`.

pub mod findings;
pub mod history;
pub mod incremental;
pub mod mirror;
pub mod mirrors;
pub mod progress;
pub mod report;
pub mod rules;
pub mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::proof::verify_consistency;
use daylight_core::tile::{new_tiles, parse_entry_bundle, BundleCoord, Tile, TileHashReader};
use daylight_core::tree::{consistency_proof, stored_hash_index, tree_hash, HashReader};
use daylight_core::witness_protocol::checkpoint_path;
use daylight_core::{leaf_hash, Hash, KeyType, SignedCheckpoint, TreeSize, VerifierKey};
use daylight_ledger::{Ledger, LedgerError};
use serde::Deserialize;
use serde_json::json;

pub use findings::{Category, Finding, FindingsReport, Severity, Status};
pub use mirror::{AuditDir, Frontier, MirrorState};
pub use progress::ProgressMode;
pub use rules::Rules;

/// Why an audit could not run (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log or a file could not be read over HTTP.
    #[error("fetching {url}: {why}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The log's metadata is unusable.
    #[error("log metadata: {0}")]
    Metadata(String),
    /// Local I/O.
    #[error("audit directory: {0}")]
    Io(String),
    /// The audit directory's state is damaged.
    #[error("audit directory state is damaged: {0}")]
    Corrupt(String),
    /// The ledger (`DIR/ledger.db`) failed.
    #[error("audit directory ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// Stopped on purpose (the fetch limit was reached); the next run resumes.
    #[error("interrupted after {0} downloads; run again to resume")]
    Interrupted(usize),
}

/// Options for one audit run.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The log's base URL.
    pub log_url: String,
    /// The audit directory.
    pub dir: PathBuf,
    /// More witnesses' monitoring URL prefixes (besides those the log lists).
    pub witnesses: Vec<String>,
    /// Rule thresholds.
    pub rules: Rules,
    /// The time the rules are evaluated at.
    pub now: DateTime<Utc>,
    /// Threads for parsing and signature checks.
    pub threads: usize,
    /// Concurrent downloads.
    pub concurrency: usize,
    /// Progress display.
    pub progress: ProgressMode,
    /// Stop (as an interruption would) after this many downloads of tiles
    /// and bundles; for tests of resumption.
    pub max_fetches: Option<usize>,
    /// The log's first key (verifier-key text), obtained out of band: the
    /// chain of log keys starts there instead of at the oldest key the log
    /// itself presents on the first run. A directory pinned to another key
    /// refuses to run.
    pub trusted_key: Option<String>,
    /// C2SP tlog-mirrors of the log to compare with it (monitoring prefix
    /// URLs, `MIRROR/<hex sha256(origin)>`; a mirror's base URL gets the
    /// prefix appended): see [`mirrors`].
    pub mirrors: Vec<String>,
    /// At most this many tiles and entry bundles fetched from each mirror
    /// per run to compare with the verified tree (besides its checkpoint).
    pub mirror_sample: usize,
}

impl AuditOptions {
    /// Defaults for `log_url` and `dir`: no extra witnesses, no mirrors,
    /// default rules, now, every core, 16 downloads at a time, automatic
    /// progress.
    pub fn new(log_url: &str, dir: impl Into<PathBuf>) -> AuditOptions {
        AuditOptions {
            log_url: log_url.trim_end_matches('/').to_owned(),
            dir: dir.into(),
            witnesses: Vec::new(),
            rules: Rules::default(),
            now: Utc::now(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            concurrency: 16,
            progress: ProgressMode::Auto,
            max_fetches: None,
            trusted_key: None,
            mirrors: Vec::new(),
            mirror_sample: mirrors::DEFAULT_SAMPLE,
        }
    }
}

/// `GET /api/v1/log`.
#[derive(Clone, Debug, Deserialize)]
struct LogMeta {
    origin: String,
    /// The current key.
    vkey: String,
    /// Every key of the log, oldest first (a log that never rotated, or an
    /// older server, may leave it out). Claims only: the auditor confirms
    /// each from the log's own rotation entries.
    #[serde(default)]
    vkeys: Vec<LogKeyMeta>,
    #[serde(default)]
    quorum: usize,
    #[serde(default)]
    witnesses: Vec<WitnessMeta>,
}

#[derive(Clone, Debug, Deserialize)]
struct LogKeyMeta {
    vkey: String,
}

#[derive(Clone, Debug, Deserialize)]
struct WitnessMeta {
    vkey: String,
    #[serde(default)]
    url: Option<String>,
}

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    async fn get(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        get(&self.client, &format!("{}{path}", self.base)).await
    }
}

#[derive(Debug)]
enum FetchError {
    Status(String, u16),
    Other(String, String),
}

impl From<FetchError> for AuditError {
    fn from(e: FetchError) -> AuditError {
        match e {
            FetchError::Status(url, s) => AuditError::Fetch {
                url,
                why: format!("HTTP status {s}"),
            },
            FetchError::Other(url, why) => AuditError::Fetch { url, why },
        }
    }
}

/// What reading a witness's or a mirror's checkpoint came to.
enum Served {
    /// Fetched, kept as `file` in the audit directory, opened by a log key.
    Opened {
        bytes: Vec<u8>,
        file: String,
        signed: SignedCheckpoint,
    },
    /// Not fetched: the status to record (`no_checkpoint` on a 404,
    /// `unreachable` otherwise) and why.
    Unreachable { status: &'static str, why: String },
    /// Fetched and kept as `file`, but no key of the log opens it.
    Invalid {
        file: String,
        error: daylight_core::CheckpointError,
    },
}

/// Fetches the checkpoint a witness or a mirror serves at `url`, keeps it in
/// `dir` and opens it with any of `log_keys` (a witness or mirror may hold
/// an older checkpoint, signed by a key since rotated out).
async fn fetch_served_checkpoint(
    dir: &AuditDir,
    client: &reqwest::Client,
    url: &str,
    log_keys: &[&VerifierKey],
) -> Result<Served, AuditError> {
    let bytes = match get(client, url).await {
        Ok(b) => b,
        Err(e) => {
            let (status, why) = match &e {
                FetchError::Status(_, 404) => ("no_checkpoint", "HTTP 404".to_owned()),
                FetchError::Status(_, s) => ("unreachable", format!("HTTP {s}")),
                FetchError::Other(_, w) => ("unreachable", w.clone()),
            };
            return Ok(Served::Unreachable { status, why });
        }
    };
    let file = dir.keep_checkpoint(&bytes, url)?;
    Ok(match SignedCheckpoint::open_any(&bytes, log_keys) {
        Ok((signed, _)) => Served::Opened {
            bytes,
            file,
            signed,
        },
        Err(error) => Served::Invalid { file, error },
    })
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, FetchError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| FetchError::Other(url.to_owned(), e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FetchError::Status(url.to_owned(), status.as_u16()));
    }
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| FetchError::Other(url.to_owned(), e.to_string()))
}

/// What one run did besides its findings.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// Tiles and bundles downloaded.
    pub fetched: usize,
    /// Entries processed (parsed, checked, given to the rules).
    pub entries: u64,
    /// Signatures verified.
    pub signatures: u64,
    /// Time spent writing `findings.json` (it grows with the findings, not
    /// with what is new).
    pub findings_write: Duration,
}

const BAD_CHECKPOINT: &str = "The checkpoint the log serves is not validly signed by the log's key. Either the log's key changed or someone tampered with the checkpoint.";
const BAD_COSIGNATURE: &str = "A cosignature line attributed to one of the log's witnesses does not verify: someone attached a forged cosignature to the checkpoint.";
const BELOW_QUORUM: &str = "The log published a checkpoint with fewer valid witness cosignatures than its own quorum requires.";
const INCONSISTENT: &str = "Two checkpoints signed by the log cannot both be true: the newer one does not extend the tree of the older one (a rewritten or dropped entry, a rollback, or a fork). Both signed checkpoints are kept as evidence.";
const SPLIT_VIEW: &str = "A witness holds a checkpoint signed by the log that cannot be reconciled with the tree the log serves the auditor: the log showed different histories to different parties. Both signed checkpoints are kept as evidence.";
const TILE_MISMATCH: &str = "A tile or entry bundle the log served does not match its signed checkpoint: the hashes do not lead to the signed root, or an entry does not hash to its leaf. The files are kept as evidence.";
const KEY_CHANGED: &str = "The log now presents a different verifier key than the one pinned in this audit directory on its first run.";
const WITNESS_UNREACHABLE: &str = "The auditor could not read this witness's latest checkpoint for the log, so it could not compare views.";
const WITNESS_INVALID: &str = "A witness served a checkpoint for this log that is not validly signed by the log, or carries a cosignature that does not verify.";

/// Runs one audit. Integrity failures and rule violations are findings in
/// the report, not errors; errors are failures to run at all.
pub async fn audit(opts: &AuditOptions) -> Result<(FindingsReport, RunStats), AuditError> {
    let dir = AuditDir::open(&opts.dir)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AuditError::Metadata(e.to_string()))?;
    let http = Http {
        client: client.clone(),
        base: opts.log_url.trim_end_matches('/').to_owned(),
    };
    let mut stats = RunStats::default();
    let mut findings: Vec<Finding> = Vec::new();

    // The log's identity, pinned on first use: its origin and its oldest
    // key, where the chain of keys starts.
    // A plain tlog-tiles prefix (a mirror's) serves no `/api/v1/log`: the
    // identity then comes from the checkpoint and a key known otherwise.
    let (meta, via_api) = match http.get("/api/v1/log").await {
        Ok(bytes) => (
            serde_json::from_slice::<LogMeta>(&bytes)
                .map_err(|e| AuditError::Metadata(format!("/api/v1/log: {e}")))?,
            true,
        ),
        Err(FetchError::Status(_, 404)) => (
            meta_from_tiles(&http, &dir, opts.trusted_key.as_deref()).await?,
            false,
        ),
        Err(e) => return Err(e.into()),
    };
    let served_key = VerifierKey::parse(&meta.vkey)
        .map_err(|e| AuditError::Metadata(format!("log key {:?}: {e}", meta.vkey)))?;
    let served_first = meta
        .vkeys
        .first()
        .map_or(meta.vkey.as_str(), |k| k.vkey.as_str())
        .to_owned();
    let trusted = match &opts.trusted_key {
        Some(t) => Some(
            VerifierKey::parse(t)
                .map_err(|e| AuditError::Metadata(format!("trusted log key {t:?}: {e}")))?,
        ),
        None => None,
    };
    let pinned = match dir.pinned()? {
        Some(p) => {
            if let Some(t) = &trusted {
                if VerifierKey::parse(&p.vkey).ok().as_ref() != Some(t) {
                    return Err(AuditError::Metadata(format!(
                        "the audit directory is pinned to log key {}, not {t}",
                        p.vkey
                    )));
                }
            }
            p
        }
        None => {
            let p = mirror::PinnedLog {
                url: http.base.clone(),
                // A key obtained out of band names its log: its origin is
                // the key's name, whatever the log says.
                origin: trusted
                    .as_ref()
                    .map_or_else(|| meta.origin.clone(), |t| t.name().to_string()),
                vkey: trusted
                    .as_ref()
                    .map_or_else(|| served_first.clone(), VerifierKey::to_string),
            };
            dir.pin(&p)?;
            p
        }
    };
    let pinned_key = VerifierKey::parse(&pinned.vkey)
        .map_err(|e| AuditError::Corrupt(format!("log.json key: {e}")))?;
    // The chain of log keys confirmed by the entries verified so far.
    let kept_history = dir.history()?;
    let kept_chain: Vec<(VerifierKey, Option<u64>)> = match &kept_history {
        None => vec![(pinned_key.clone(), None)],
        Some(h) => match h.log_key_chain() {
            Some(c) if c.first().map(|(k, _)| k) == Some(&pinned_key) => c,
            _ => {
                return Err(AuditError::Corrupt(
                    "history.json: the log keys do not start at the pinned key".into(),
                ))
            }
        },
    };
    // The derived state of the verified entries, kept between runs.
    let ledger = Ledger::open_for(
        &dir.join(LEDGER_FILE),
        &pinned.origin,
        daylight_ledger::Use::Rules,
    )?;
    let mut ctx = Ctx {
        opts,
        ledger: Some(ledger),
        with_kept: false,
        dir: &dir,
        log: findings::LogInfo {
            url: http.base.clone(),
            origin: pinned.origin.clone(),
            vkey: pinned.vkey.clone(),
        },
        verified: None,
        served: None,
        witnesses: Vec::new(),
        mirrors: Vec::new(),
        history: kept_history.clone(),
    };
    // Another origin, or a first key other than the pinned one while the
    // key the log presents is none the entries led to: not a rotation the
    // log recorded, but another log (or a lost key replaced in place).
    let known = kept_chain.iter().any(|(k, _)| *k == served_key);
    if pinned.origin != meta.origin || (served_first != pinned.vkey && !known) {
        findings.push(
            Finding::new(
                "log_key_changed",
                Category::Integrity,
                Severity::Critical,
                format!(
                    "the log now presents key {} (first key {}, origin {}); pinned: {} (origin {})",
                    meta.vkey, served_first, meta.origin, pinned.vkey, pinned.origin
                ),
                KEY_CHANGED,
                vec![],
            )
            .with_details(
                json!({ "pinned": pinned.vkey, "served": meta.vkey, "served_first": served_first }),
            ),
        );
        return finish(&mut ctx, findings, &stats, 0);
    }
    let origin = meta.origin.clone();
    let meta_witnesses: Vec<VerifierKey> = meta
        .witnesses
        .iter()
        .filter_map(|w| VerifierKey::parse(&w.vkey).ok())
        .filter(|k| k.key_type() == KeyType::CosignatureV1)
        .collect();
    // Keys the checkpoint may be opened with for now: the confirmed chain
    // and the keys the log claims. A claimed key counts only once the
    // entries confirm it (checked after the replay, below).
    let mut candidates: Vec<VerifierKey> = kept_chain.iter().map(|(k, _)| k.clone()).collect();
    for text in meta.vkeys.iter().map(|k| &k.vkey).chain([&meta.vkey]) {
        if let Ok(k) = VerifierKey::parse(text) {
            if k.name().as_str() == origin && !candidates.contains(&k) {
                candidates.push(k);
            }
        }
    }

    // What was verified before.
    let state = dir.state()?;
    let old_size = state.size;
    let old_root = if old_size == 0 {
        Hash::empty_tree()
    } else {
        Hash::from_base64(&state.root)
            .ok_or_else(|| AuditError::Corrupt("state.json root".into()))?
    };
    let frontier = Frontier::from_state(state.size, &state.frontier)
        .filter(|f| f.root() == old_root)
        .ok_or_else(|| {
            AuditError::Corrupt("state.json frontier does not give the kept root".into())
        })?;
    if old_size > 0 {
        ctx.verified = Some(findings::CheckpointInfo {
            size: old_size,
            root: old_root.to_base64(),
            file: state.checkpoint.clone(),
            cosignatures: 0,
        });
    }

    // The log's checkpoint.
    let cp_bytes = http.get("/checkpoint").await?;
    let cp_file = dir.keep_checkpoint(&cp_bytes, &format!("{}/checkpoint", http.base))?;
    let candidate_refs: Vec<&VerifierKey> = candidates.iter().collect();
    let (signed, signers) = match SignedCheckpoint::open_any(&cp_bytes, &candidate_refs) {
        Ok((s, by)) => {
            let signers: Vec<VerifierKey> = by.iter().map(|&i| candidates[i].clone()).collect();
            (s, signers)
        }
        Err(e) => {
            findings.push(
                Finding::new(
                    "checkpoint_bad_signature",
                    Category::Integrity,
                    Severity::Critical,
                    format!("the log's checkpoint does not open with any of its keys: {e}"),
                    BAD_CHECKPOINT,
                    vec![],
                )
                .with_evidence(vec![cp_file])
                .with_details(json!({
                    "keys": candidates.iter().map(VerifierKey::to_string).collect::<Vec<_>>(),
                })),
            );
            return finish(&mut ctx, findings, &stats, 0);
        }
    };
    let (new_size, new_root) = (signed.checkpoint.size.get(), signed.checkpoint.root);
    let meta_keys = Keys {
        log: kept_chain.iter().map(|(k, _)| k.clone()).collect(),
        witnesses: meta_witnesses.clone(),
        witness_urls: Vec::new(),
    };

    // Consistency with what was kept, before fetching anything.
    if new_size < old_size || (new_size == old_size && new_root != old_root) {
        // The kept chain covers this size: the checkpoint must carry the
        // key it names, or it is not the log's statement at all.
        if let Some(f) = check_checkpoint_key(new_size, &signers, &kept_chain, &cp_file) {
            findings.push(f);
            return finish(&mut ctx, findings, &stats, 0);
        }
        ctx.served = Some(served_checkpoint(
            &signed,
            &meta_witnesses,
            meta.quorum,
            &cp_file,
            &mut findings,
        ));
        findings.push(
            Finding::new(
                "checkpoint_inconsistent",
                Category::Integrity,
                Severity::Critical,
                if new_size < old_size {
                    format!("the log rolled back from size {old_size} to {new_size}")
                } else {
                    format!("two checkpoints of size {new_size} with different roots")
                },
                INCONSISTENT,
                vec![],
            )
            .with_evidence(vec![state.checkpoint.clone(), cp_file.clone()])
            .with_details(json!({
                "kept": { "size": old_size, "root": old_root.to_base64() },
                "served": { "size": new_size, "root": new_root.to_base64() },
            })),
        );
        let trusted = (old_size > 0).then_some((old_size, old_root));
        compare_witnesses(&mut ctx, &http, &origin, &meta_keys, trusted, &mut findings).await?;
        mirrors::compare_mirrors(&mut ctx, &http, &origin, &meta_keys, trusted, &mut findings)
            .await?;
        return finish(&mut ctx, findings, &stats, 0);
    }

    // Fetch what is new.
    let tiles: Vec<Tile> = new_tiles(TreeSize(old_size), TreeSize(new_size));
    let bundles = bundles_between(old_size, new_size);
    let mut wanted: Vec<String> = tiles.iter().map(Tile::path).collect();
    wanted.extend(bundles.iter().map(BundleCoord::path));
    let missing: Vec<String> = wanted.iter().filter(|p| !dir.exists(p)).cloned().collect();
    stats.fetched = fetch_all(&http, &dir, &missing, opts).await?;

    // Verify the tree and every entry (CPU-bound, off the async threads).
    let verified = {
        let dir = dir.clone();
        let log_key = pinned_key.clone();
        let opts = opts.clone();
        let tiles = tiles.clone();
        let mut ledger = ctx
            .ledger
            .take()
            .ok_or_else(|| AuditError::Io("ledger in use".into()))?;
        let signers = signers.clone();
        let cp_file = cp_file.clone();
        let (ledger, verified) = tokio::task::spawn_blocking(move || {
            let v = verify_tree(
                &dir,
                &opts,
                &mut ledger,
                &log_key,
                (old_size, old_root),
                (new_size, new_root),
                frontier,
                &tiles,
                (&signers, &cp_file),
            );
            (ledger, v)
        })
        .await
        .map_err(|e| AuditError::Io(format!("verification task: {e}")))?;
        ctx.ledger = Some(ledger);
        verified?
    };
    stats.entries = verified.entries;
    stats.signatures = verified.signatures;
    let tree_ok = verified.committed;
    findings.extend(verified.findings);

    // The registry replayed from the entries below the new size says which
    // log key signs this checkpoint, which witnesses cosign it and how many
    // must.
    let (keys, quorum) = match &verified.registry {
        Some(reg) => {
            let chain = history::chain_of(reg.log_keys());
            let at = daylight_core::LeafIndex(new_size);
            let mut witnesses = meta_witnesses.clone();
            let mut witness_urls = Vec::new();
            for r in reg.registrations() {
                if r.role == daylight_schemas::Role::Witness && r.active_at(at) {
                    if r.key.key_type() == KeyType::CosignatureV1 && !witnesses.contains(&r.key) {
                        witnesses.push(r.key.clone());
                    }
                    witness_urls.extend(r.url.clone());
                }
            }
            // Through a mirror, the witnesses' cosignatures are gone (a
            // tlog-mirror serves the log's signature and its own), so the
            // quorum is not counted there.
            let quorum = reg
                .quorum_changes()
                .iter()
                .rev()
                .find(|q| q.at.0 < new_size)
                .map_or(meta.quorum, |q| q.quorum as usize);
            let quorum = if via_api { quorum } else { 0 };
            let keys = Keys {
                log: chain.into_iter().map(|(k, _)| k).collect(),
                witnesses,
                witness_urls,
            };
            (keys, quorum)
        }
        None => (meta_keys, meta.quorum),
    };
    let served = served_checkpoint(&signed, &keys.witnesses, quorum, &cp_file, &mut findings);
    ctx.served = Some(served.clone());

    if tree_ok {
        // The new checkpoint is proven: it becomes the kept state, the
        // history first so that a kept history always covers the kept size.
        if let Some(reg) = &verified.registry {
            let h = history::History::of(reg, new_size);
            dir.save_history(&h)?;
            ctx.history = Some(h);
        }
        dir.write("checkpoint", &cp_bytes)?;
        dir.save_state(&MirrorState {
            size: new_size,
            root: new_root.to_base64(),
            frontier: verified.frontier.to_state(),
            checkpoint: cp_file.clone(),
        })?;
        // The served checkpoint, now proven.
        ctx.verified = Some(served);
    }
    let trusted = if tree_ok {
        Some((new_size, new_root))
    } else {
        (old_size > 0).then_some((old_size, old_root))
    };
    compare_witnesses(&mut ctx, &http, &origin, &keys, trusted, &mut findings).await?;
    mirrors::compare_mirrors(&mut ctx, &http, &origin, &keys, trusted, &mut findings).await?;

    // Rules, over what changed since the last run; their findings are kept
    // in the ledger with the verification's.
    if let Some(mut ledger) = ctx.ledger.take() {
        let (rules, now) = (opts.rules.clone(), opts.now);
        let (ledger, updated) = tokio::task::spawn_blocking(move || {
            let u = incremental::update(&mut ledger, &rules, now);
            (ledger, u)
        })
        .await
        .map_err(|e| AuditError::Io(format!("rules task: {e}")))?;
        ctx.ledger = Some(ledger);
        updated?;
        ctx.with_kept = true;
    }
    let new_entries = if tree_ok { new_size - old_size } else { 0 };
    finish(&mut ctx, findings, &stats, new_entries)
}

/// The ledger in the audit directory: the verified entries' derived state
/// and the findings kept between runs (see `daylight_ledger`).
pub const LEDGER_FILE: &str = "ledger.db";

struct Ctx<'a> {
    opts: &'a AuditOptions,
    /// Taken while a blocking task works on it.
    ledger: Option<Ledger>,
    /// Whether the run got to the rules, so the ledger's kept findings
    /// (entries' and rules') belong in its report.
    with_kept: bool,
    dir: &'a AuditDir,
    log: findings::LogInfo,
    verified: Option<findings::CheckpointInfo>,
    served: Option<findings::CheckpointInfo>,
    witnesses: Vec<findings::WitnessInfo>,
    mirrors: Vec<findings::MirrorInfo>,
    history: Option<history::History>,
}

/// The keys a checkpoint is checked with: the log's chain (confirmed by its
/// entries), the witnesses (the log's list and the registry's set for the
/// checkpoint) and the registry's witness URLs.
struct Keys {
    log: Vec<VerifierKey>,
    witnesses: Vec<VerifierKey>,
    witness_urls: Vec<String>,
}

const KEY_NOT_CURRENT: &str = "The checkpoint is not signed by the log key that its own entries make current at its size: a checkpoint of size N must carry the signature of the key current after the registry entries below N (a rotated-out key may sign beside it during its transition, never alone past its rotation, and a new key not before the rotation entry is in the tree).";

/// Checks that a checkpoint of `size`, whose log signatures by `signers`
/// verified, carries the signature of the key `chain` makes current at that
/// size; a finding if not (`checkpoint_bad_signature` when no signer is in
/// the chain at all, `checkpoint_log_key_not_current` otherwise).
fn check_checkpoint_key(
    size: u64,
    signers: &[VerifierKey],
    chain: &[(VerifierKey, Option<u64>)],
    file: &str,
) -> Option<Finding> {
    let required = history::key_for_size(chain, size)?;
    if signers.contains(required) {
        return None;
    }
    let in_chain: Vec<String> = signers
        .iter()
        .filter(|s| chain.iter().any(|(k, _)| k == *s))
        .map(VerifierKey::to_string)
        .collect();
    let signed_by: Vec<String> = signers.iter().map(VerifierKey::to_string).collect();
    let details = json!({
        "size": size,
        "signed_by": signed_by,
        "required": required.to_string(),
        "chain": chain.iter().map(|(k, from)| json!({ "vkey": k.to_string(), "from": from })).collect::<Vec<_>>(),
    });
    let finding = if in_chain.is_empty() {
        Finding::new(
            "checkpoint_bad_signature",
            Category::Integrity,
            Severity::Critical,
            format!(
                "the checkpoint of size {size} is signed only by {}, which is not in the log's chain of keys",
                signed_by.join(", ")
            ),
            BAD_CHECKPOINT,
            vec![],
        )
    } else {
        Finding::new(
            "checkpoint_log_key_not_current",
            Category::Integrity,
            Severity::Critical,
            format!(
                "the checkpoint of size {size} is signed by {}, not by {required}, the log key its entries make current at that size",
                in_chain.join(", ")
            ),
            KEY_NOT_CURRENT,
            vec![],
        )
    };
    Some(
        finding
            .with_evidence(vec![file.to_owned()])
            .with_details(details),
    )
}

/// The served checkpoint `signed` (kept in `file`) as the report shows it,
/// with its valid cosignatures by `witnesses` counted against `quorum`
/// (findings for invalid ones or too few).
fn served_checkpoint(
    signed: &SignedCheckpoint,
    witnesses: &[VerifierKey],
    quorum: usize,
    file: &str,
    findings: &mut Vec<Finding>,
) -> findings::CheckpointInfo {
    let size = signed.checkpoint.size.get();
    findings::CheckpointInfo {
        size,
        root: signed.checkpoint.root.to_base64(),
        file: file.to_owned(),
        cosignatures: count_cosignatures(&signed.note, witnesses, quorum, size, file, findings),
    }
}

/// Counts the valid cosignatures of `note` by `witnesses`; a finding if a
/// line by one of them does not verify, or if they are fewer than `quorum`.
fn count_cosignatures(
    note: &daylight_core::Note,
    witnesses: &[VerifierKey],
    quorum: usize,
    size: u64,
    file: &str,
    findings: &mut Vec<Finding>,
) -> usize {
    let refs: Vec<&VerifierKey> = witnesses.iter().collect();
    let cosigned = match verify_cosignatures(note, &refs) {
        Ok(c) => c.len(),
        Err(e) => {
            findings.push(
                Finding::new(
                    "cosignature_invalid",
                    Category::Integrity,
                    Severity::Critical,
                    format!("checkpoint of size {size}: {e}"),
                    BAD_COSIGNATURE,
                    vec![],
                )
                .with_evidence(vec![file.to_owned()]),
            );
            0
        }
    };
    if cosigned < quorum {
        findings.push(Finding::new(
            "checkpoint_below_quorum",
            Category::Rule,
            Severity::High,
            format!(
                "checkpoint of size {size} has {cosigned} valid cosignatures; the log's quorum is {quorum}"
            ),
            BELOW_QUORUM,
            vec![],
        ));
    }
    cosigned
}

/// Writes `findings.json`: this run's findings merged, in order, with those
/// the ledger keeps (the entries' and the rules', once the run got that
/// far), streamed in one pass so memory does not grow with their number:
/// the `findings` member comes first and the members that count them
/// after it (JSON members have no order). The report returned holds the
/// first [`findings::Tally::KEPT`] of them.
fn finish(
    ctx: &mut Ctx<'_>,
    mut findings: Vec<Finding>,
    stats: &RunStats,
    entries_new: u64,
) -> Result<(FindingsReport, RunStats), AuditError> {
    use std::io::Write as _;
    let started = std::time::Instant::now();
    let disabled = &ctx.opts.rules.disabled;
    findings.retain(|f| !disabled.contains(&f.id));
    findings::sort_findings(&mut findings);
    let io = |e: std::io::Error| AuditError::Io(format!("findings.json: {e}"));
    let tmp_path = ctx.dir.join("findings.json.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp_path).map_err(io)?);
    out.write_all(b"{\n  \"findings\": [").map_err(io)?;
    let mut tally = findings::Tally::new(out);
    let mut run = findings.into_iter().peekable();
    if let (Some(ledger), true) = (&ctx.ledger, ctx.with_kept) {
        ledger.for_each_finding(|_, key, body| -> Result<(), AuditError> {
            let id = findings::SortKey::parse(key).map(|(_, _, id)| id);
            if id.is_some_and(|id| disabled.iter().any(|d| d == id)) {
                return Ok(());
            }
            while let Some(r) = run.next_if(|r| r.sort_key().as_str() <= key) {
                tally.add(r).map_err(io)?;
            }
            tally.add_rendered(key, body).map_err(io)
        })?;
    }
    for r in run {
        tally.add(r).map_err(io)?;
    }
    let status = tally.status();
    let mut report = FindingsReport {
        schema: findings::FINDINGS_SCHEMA.to_owned(),
        generated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        now: ctx.opts.now.to_rfc3339_opts(SecondsFormat::Secs, true),
        status,
        exit_code: status.exit_code(),
        log: ctx.log.clone(),
        verified_checkpoint: ctx.verified.clone(),
        served_checkpoint: ctx.served.clone(),
        entries_audited: ctx.verified.as_ref().map(|c| c.size).unwrap_or(0),
        entries_new,
        counts: tally.counts.clone(),
        findings: Vec::new(),
        witnesses: std::mem::take(&mut ctx.witnesses),
        mirrors: std::mem::take(&mut ctx.mirrors),
        rules: serde_json::to_value(&ctx.opts.rules).unwrap_or_default(),
        history: ctx.history.clone(),
        findings_total: tally.total,
    };
    // The other members, as an object without its opening brace.
    let mut rest =
        serde_json::to_value(&report).map_err(|e| AuditError::Io(format!("findings.json: {e}")))?;
    if let Some(map) = rest.as_object_mut() {
        map.remove("findings");
    }
    let rest = serde_json::to_string_pretty(&rest)
        .map_err(|e| AuditError::Io(format!("findings.json: {e}")))?;
    let total = tally.total;
    report.findings = std::mem::take(&mut tally.kept);
    let mut out = tally.into_inner().map_err(io)?;
    out.write_all(if total == 0 { b"],\n" } else { b"\n  ],\n" })
        .map_err(io)?;
    out.write_all(rest.strip_prefix("{\n").unwrap_or(&rest).as_bytes())
        .map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp_path, ctx.dir.join("findings.json")).map_err(io)?;
    let mut stats = stats.clone();
    stats.findings_write = started.elapsed();
    Ok((report, stats))
}

/// The entry bundles holding entries `old..new` (whole bundles).
fn bundles_between(old: u64, new: u64) -> Vec<BundleCoord> {
    let w = daylight_core::tile::TILE_WIDTH;
    if new <= old {
        return Vec::new();
    }
    (old / w..new.div_ceil(w))
        .map(|index| BundleCoord {
            index,
            width: (new - index * w).min(w) as u16,
        })
        .collect()
}

/// Downloads `paths` into the mirror, `opts.concurrency` at a time, each
/// written atomically as it arrives (so an interrupted run keeps them).
async fn fetch_all(
    http: &Http,
    dir: &AuditDir,
    paths: &[String],
    opts: &AuditOptions,
) -> Result<usize, AuditError> {
    let mut progress =
        progress::Progress::start(opts.progress, "fetching tiles", paths.len() as u64);
    let limit = opts.max_fetches.unwrap_or(usize::MAX);
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0usize;
    let mut done = 0usize;
    let mut first_error: Option<AuditError> = None;
    let mut queue = paths.iter();
    loop {
        while set.len() < opts.concurrency.max(1) && started < limit && first_error.is_none() {
            let Some(path) = queue.next() else { break };
            started += 1;
            let client = http.client.clone();
            let url = format!("{}/{path}", http.base);
            let path = path.clone();
            let dir = dir.clone();
            set.spawn(async move {
                let data = get(&client, &url).await.map_err(AuditError::from)?;
                dir.write(&path, &data)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok(())) => {
                done += 1;
                progress.inc(1);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(AuditError::Io(format!("download task: {e}")));
            }
        }
    }
    progress.finish();
    if let Some(e) = first_error {
        return Err(e);
    }
    if done < paths.len() {
        return Err(AuditError::Interrupted(done));
    }
    Ok(done)
}

struct Verified {
    /// This run's findings that the ledger does not keep: the tree's, and
    /// the entries' when they were not committed.
    findings: Vec<Finding>,
    /// The registry replayed from every entry (`None`: the tree was refused).
    registry: Option<daylight_schemas::Registry>,
    /// Whether the new entries were committed to the ledger: the tree, the
    /// checkpoint's key and every entry's signature verified.
    committed: bool,
    frontier: Frontier,
    entries: u64,
    signatures: u64,
}

impl Verified {
    /// The tree did not verify: the findings say why, and no entry counts
    /// as verified.
    fn refused(findings: Vec<Finding>, frontier: Frontier) -> Verified {
        Verified {
            findings,
            registry: None,
            committed: false,
            frontier,
            entries: 0,
            signatures: 0,
        }
    }
}

/// Bundles per verification step.
const STEP_BUNDLES: u64 = 16;

/// Authenticates the new tiles and bundles against the new checkpoint,
/// proves it extends the old one, re-derives the root from the entries,
/// verifies every new entry and adds it to the ledger, and checks that the
/// checkpoint (opened by `signers`, kept in `cp_file`) carries the key its
/// entries make current. The ledger's additions are committed only if all
/// of it holds, so the ledger always holds exactly the kept state's entries.
#[allow(clippy::too_many_arguments)]
fn verify_tree(
    dir: &AuditDir,
    opts: &AuditOptions,
    ledger: &mut Ledger,
    log_key: &VerifierKey,
    old: (u64, Hash),
    new: (u64, Hash),
    mut frontier: Frontier,
    tiles: &[Tile],
    checkpoint: (&[VerifierKey], &str),
) -> Result<Verified, AuditError> {
    let (old_size, old_root) = old;
    let (new_size, new_root) = new;
    let mut findings = Vec::new();
    let local = mirror::LocalTiles::new(dir);
    let reader = TileHashReader::new(TreeSize(new_size), new_root, &local);
    // The ledger holds the kept state's entries; one that holds more (its
    // state file was not written) or that is new (a directory from before
    // it, or deleted) is made again from the mirror's entries, which are
    // on disk: only entries from the kept size on have their signatures
    // checked again, as before.
    if ledger.size()? > old_size {
        ledger.clear()?;
    }
    let start = ledger.size()?;
    let mut ev = verify::EntryVerifier::resume(log_key.clone(), ledger, old_size, opts.threads)?;
    // One thread writes the ledger while this one reads and verifies.
    std::thread::scope(|scope| {
        let (to_writer, from_reader) = std::sync::mpsc::sync_channel(2);
        let writer = scope.spawn(move || write_ledger(ledger, from_reader));
        let mut batch = WriterSink { to: to_writer };
        let new_paths = || -> Vec<String> {
            let mut p: Vec<String> = tiles.iter().map(Tile::path).collect();
            p.extend(
                bundles_between(old_size, new_size)
                    .iter()
                    .map(BundleCoord::path),
            );
            p
        };
        let mut fail = |dir: &AuditDir, id: &str, title: String, entries: Vec<u64>| {
            let evidence = dir
                .quarantine(&format!("{id}-{new_size}"), &new_paths())
                .unwrap_or_default();
            findings.push(
                Finding::new(
                    id,
                    Category::Integrity,
                    Severity::Critical,
                    title,
                    TILE_MISMATCH,
                    entries,
                )
                .with_evidence(evidence)
                .with_details(json!({ "size": new_size, "root": new_root.to_base64() })),
            );
        };

        // The old tree is a prefix of the new one.
        if old_size > 0 && old_size < new_size {
            let proof = consistency_proof(TreeSize(old_size), TreeSize(new_size), &reader);
            match proof {
                Err(e) => {
                    fail(
                        dir,
                        "tile_mismatch",
                        format!("tiles for size {new_size}: {e}"),
                        vec![],
                    );
                    return Ok(Verified::refused(findings, frontier));
                }
                Ok(proof) => {
                    if let Err(e) = verify_consistency(
                        TreeSize(old_size),
                        TreeSize(new_size),
                        old_root,
                        new_root,
                        &proof,
                    ) {
                        findings.push(
                            Finding::new(
                                "checkpoint_inconsistent",
                                Category::Integrity,
                                Severity::Critical,
                                format!(
                                    "size {new_size} does not extend the kept size {old_size}: {e}"
                                ),
                                INCONSISTENT,
                                vec![],
                            )
                            .with_details(json!({
                                "kept": { "size": old_size, "root": old_root.to_base64() },
                                "served": { "size": new_size, "root": new_root.to_base64() },
                            })),
                        );
                        return Ok(Verified::refused(findings, frontier));
                    }
                }
            }
        }

        let w = daylight_core::tile::TILE_WIDTH;
        let total_bundles = new_size.div_ceil(w);
        let mut progress =
            progress::Progress::start(opts.progress, "verifying entries", new_size - start);
        let mut b = start / w;
        while b < total_bundles {
            let end = (b + STEP_BUNDLES).min(total_bundles);
            let mut datas = Vec::new();
            for i in b..end {
                let coord = BundleCoord {
                    index: i,
                    width: (new_size - i * w).min(w) as u16,
                };
                match dir.read(&coord.path())? {
                    Some(d) => datas.push((coord, d)),
                    None => {
                        return Err(AuditError::Corrupt(format!(
                            "{} is missing from the mirror",
                            coord.path()
                        )))
                    }
                }
            }
            let mut entries: Vec<&[u8]> = Vec::new();
            for (coord, data) in &datas {
                match parse_entry_bundle(data, coord.width) {
                    Ok(e) => entries.extend(e),
                    Err(e) => {
                        let first = coord.index * w;
                        fail(
                            dir,
                            "bundle_mismatch",
                            format!("entry bundle {}: {e}", coord.path()),
                            vec![first],
                        );
                        return Ok(Verified::refused(findings, frontier));
                    }
                }
            }
            let first = b * w;
            let hashes: Vec<Hash> = verify::par_map(&entries, opts.threads, |e| leaf_hash(e));
            // Every entry read (the new ones, and those below the kept size
            // when the ledger is made again from the mirror's files): its
            // leaf hash must be the authenticated level-0 hash, so nothing
            // enters the ledger that the signed tree does not hold.
            let new_from = start.max(first);
            let last = first + entries.len() as u64;
            if new_from < last {
                let indexes: Vec<u64> = (new_from..last).map(|i| stored_hash_index(0, i)).collect();
                match reader.read_hashes(&indexes) {
                    Err(e) => {
                        fail(
                            dir,
                            "tile_mismatch",
                            format!("tiles for size {new_size}: {e}"),
                            vec![],
                        );
                        return Ok(Verified::refused(findings, frontier));
                    }
                    Ok(auth) => {
                        let skip = (new_from - first) as usize;
                        if let Some(pos) =
                            auth.iter().zip(&hashes[skip..]).position(|(a, h)| a != h)
                        {
                            let index = new_from + pos as u64;
                            fail(
                                dir,
                                "bundle_mismatch",
                                format!(
                                    "entry {index} does not hash to its leaf in the signed tree"
                                ),
                                vec![index],
                            );
                            return Ok(Verified::refused(findings, frontier));
                        }
                        for (i, h) in (first..).zip(&hashes).skip(skip) {
                            if i >= old_size {
                                frontier.push(*h);
                            }
                        }
                    }
                }
            }
            // Entries the ledger already holds (the start of the first bundle).
            let skip = usize::try_from(start.saturating_sub(first)).unwrap_or(usize::MAX);
            let fresh = entries.get(skip..).unwrap_or(&[]);
            ev.push_batch(&mut batch, fresh, hashes.get(skip..).unwrap_or(&[]))?;
            progress.inc(fresh.len() as u64);
            b = end;
        }
        progress.finish();
        if frontier.size() != new_size || frontier.root() != new_root {
            fail(
                dir,
                "root_mismatch",
                format!(
                    "the entries give root {} for size {}, the checkpoint says {}",
                    frontier.root().to_base64(),
                    frontier.size(),
                    new_root.to_base64()
                ),
                vec![],
            );
        }
        // The checkpoint must carry the key its own entries make current.
        let (signers, cp_file) = checkpoint;
        let chain = history::chain_of(ev.registry().log_keys());
        findings.extend(check_checkpoint_key(new_size, signers, &chain, cp_file));
        let committed = findings
            .iter()
            .chain(&ev.findings)
            .all(|f| !f.is_integrity());
        // The references the writer found bad, now that it has every entry.
        let (reply, answers) = std::sync::mpsc::channel();
        let answered = batch.to.send(ToWriter::Answers(reply)).is_ok();
        match answers.recv() {
            Ok(list) if answered => {
                for (index, added) in list {
                    ev.bad_references(index, &added.bad_references);
                }
            }
            _ => return Err(writer_failed(writer)),
        }
        if committed {
            // The entries' findings are kept with them, under their first entry.
            let mut by_entry: std::collections::BTreeMap<u64, Vec<(String, String)>> =
                Default::default();
            for f in ev.findings.drain(..) {
                let at = f.entries.first().copied().unwrap_or(0);
                let body = serde_json::to_string(&f)
                    .map_err(|e| AuditError::Io(format!("finding: {e}")))?;
                by_entry.entry(at).or_default().push((f.sort_key(), body));
            }
            if batch.to.send(ToWriter::Commit(by_entry)).is_err() {
                return Err(writer_failed(writer));
            }
            drop(batch);
            match writer.join() {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Err(AuditError::Io("the ledger was not committed".into())),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(AuditError::Io("the ledger writer panicked".into())),
            }
        } else {
            findings.append(&mut ev.findings);
        }
        Ok(Verified {
            findings,
            registry: Some(ev.registry().clone()),
            committed,
            entries: ev.len().saturating_sub(start),
            signatures: ev.signatures_checked,
            frontier,
        })
    })
}

/// What the verifying thread sends the ledger's writer.
enum ToWriter {
    /// Entries to add, in order.
    Entries(Vec<daylight_ledger::Prepared>),
    /// A value to keep.
    Meta(String, String),
    /// Send back the additions whose references were bad.
    Answers(std::sync::mpsc::Sender<Vec<(u64, daylight_ledger::Added)>>),
    /// Keep these findings (per first entry) and commit.
    Commit(std::collections::BTreeMap<u64, Vec<(String, String)>>),
}

/// The verifying thread's side of the writer.
struct WriterSink {
    to: std::sync::mpsc::SyncSender<ToWriter>,
}

impl verify::EntrySink for WriterSink {
    fn add(
        &mut self,
        entries: Vec<daylight_ledger::Prepared>,
    ) -> Result<Vec<(u64, daylight_ledger::Added)>, LedgerError> {
        self.to
            .send(ToWriter::Entries(entries))
            .map_err(|_| LedgerError::Unusable("the ledger writer stopped".into()))?;
        Ok(Vec::new())
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.to
            .send(ToWriter::Meta(key.to_owned(), value.to_owned()))
            .map_err(|_| LedgerError::Unusable("the ledger writer stopped".into()))
    }
}

/// The ledger's writer: adds what it is sent in one transaction, committed
/// only when told to (if the sender goes first, nothing is written).
/// Returns whether it committed.
fn write_ledger(
    ledger: &mut Ledger,
    from: std::sync::mpsc::Receiver<ToWriter>,
) -> Result<bool, LedgerError> {
    let mut batch = ledger.batch()?;
    let mut answers = Vec::new();
    for msg in from {
        match msg {
            ToWriter::Entries(v) => answers.extend(verify::EntrySink::add(&mut batch, v)?),
            ToWriter::Meta(k, v) => batch.set_meta(&k, &v)?,
            ToWriter::Answers(reply) => {
                let _ = reply.send(std::mem::take(&mut answers));
            }
            ToWriter::Commit(findings) => {
                for (at, rows) in findings {
                    // Appended: an entry's subject may already hold findings
                    // of an earlier run about a later entry naming it.
                    batch.add_findings(&format!("entry:{at:012}"), &rows)?;
                }
                batch.commit()?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Why the writer stopped, once the verifying side could not reach it.
fn writer_failed(
    writer: std::thread::ScopedJoinHandle<'_, Result<bool, LedgerError>>,
) -> AuditError {
    match writer.join() {
        Ok(Err(e)) => e.into(),
        _ => AuditError::Io("the ledger writer stopped".into()),
    }
}

/// Fetches every witness's latest checkpoint for the log and checks it
/// against the trusted tree (`size`, `root`), verified in the mirror.
async fn compare_witnesses(
    ctx: &mut Ctx<'_>,
    http: &Http,
    origin: &str,
    keys: &Keys,
    trusted: Option<(u64, Hash)>,
    findings: &mut Vec<Finding>,
) -> Result<(), AuditError> {
    let log_keys: Vec<&VerifierKey> = keys.log.iter().collect();
    let witness_keys: Vec<&VerifierKey> = keys.witnesses.iter().collect();
    let mut urls: Vec<String> = Vec::new();
    let meta_urls = ctx.opts.witnesses.clone();
    // Witnesses the log lists come first (from /api/v1/log, fetched again
    // here to keep the signature of this function small).
    if let Ok(bytes) = http.get("/api/v1/log").await {
        if let Ok(meta) = serde_json::from_slice::<LogMeta>(&bytes) {
            urls.extend(meta.witnesses.into_iter().filter_map(|w| w.url));
        }
    }
    urls.extend(keys.witness_urls.iter().cloned());
    urls.extend(meta_urls);
    let mut seen = std::collections::BTreeSet::new();
    urls.retain(|u| seen.insert(u.trim_end_matches('/').to_owned()));
    for url in urls {
        let base = url.trim_end_matches('/').to_owned();
        let monitor = format!("{base}{}", checkpoint_path(origin));
        let mut info = findings::WitnessInfo {
            url: base.clone(),
            status: String::new(),
            size: None,
            root: None,
            file: None,
        };
        // Any key of the log's confirmed chain: a witness may hold an older
        // checkpoint, signed by a key since rotated out.
        let (bytes, file, signed) =
            match fetch_served_checkpoint(ctx.dir, &http.client, &monitor, &log_keys).await? {
                Served::Opened {
                    bytes,
                    file,
                    signed,
                } => {
                    info.file = Some(file.clone());
                    (bytes, file, signed)
                }
                Served::Unreachable { status, why } => {
                    info.status = status.into();
                    findings.push(
                        Finding::new(
                            "witness_unreachable",
                            Category::Notice,
                            Severity::Info,
                            format!("witness {base}: {why}"),
                            WITNESS_UNREACHABLE,
                            vec![],
                        )
                        .with_details(json!({ "url": monitor })),
                    );
                    ctx.witnesses.push(info);
                    continue;
                }
                Served::Invalid { file, error: e } => {
                    info.file = Some(file.clone());
                    info.status = "invalid".into();
                    findings.push(
                        Finding::new(
                            "witness_checkpoint_invalid",
                            Category::Notice,
                            Severity::Info,
                            format!(
                            "witness {base} serves a checkpoint the log's key does not open: {e}"
                        ),
                            WITNESS_INVALID,
                            vec![],
                        )
                        .with_evidence(vec![file]),
                    );
                    ctx.witnesses.push(info);
                    continue;
                }
            };
        if let Err(e) = verify_cosignatures(&signed.note, &witness_keys) {
            findings.push(
                Finding::new(
                    "witness_checkpoint_invalid",
                    Category::Notice,
                    Severity::Info,
                    format!("witness {base}: {e}"),
                    WITNESS_INVALID,
                    vec![],
                )
                .with_evidence(vec![file.clone()]),
            );
        }
        let (w_size, w_root) = (signed.checkpoint.size.get(), signed.checkpoint.root);
        info.size = Some(w_size);
        info.root = Some(w_root.to_base64());
        let Some((t_size, t_root)) = trusted else {
            info.status = "unverified".into();
            ctx.witnesses.push(info);
            continue;
        };
        let verdict = check_against(ctx.dir, http, (t_size, t_root), (w_size, w_root)).await;
        match verdict {
            Verdict::Consistent => info.status = "consistent".into(),
            Verdict::Unknown(why) => {
                info.status = "ahead_unverified".into();
                findings.push(Finding::new(
                    "witness_unreachable",
                    Category::Notice,
                    Severity::Info,
                    format!("witness {base} is at size {w_size}; could not check it: {why}"),
                    WITNESS_UNREACHABLE,
                    vec![],
                ));
            }
            Verdict::Split(why) => {
                info.status = "split_view".into();
                let evidence = keep_split_evidence(
                    ctx,
                    &format!("evidence/split-view-{t_size}-{w_size}"),
                    "witness",
                    (&file, &bytes),
                    &monitor,
                )?;
                findings.push(
                    Finding::new(
                        "split_view",
                        Category::Integrity,
                        Severity::Critical,
                        format!(
                            "witness {base} holds a log-signed checkpoint of size {w_size} that cannot be reconciled with the verified tree of size {t_size}: {why}"
                        ),
                        SPLIT_VIEW,
                        vec![],
                    )
                    .with_evidence(evidence)
                    .with_details(json!({
                        "verified": { "size": t_size, "root": t_root.to_base64() },
                        "witness": { "url": base, "size": w_size, "root": w_root.to_base64() },
                    })),
                );
            }
        }
        ctx.witnesses.push(info);
    }
    Ok(())
}

/// Keeps the evidence of a split view in `case` (a directory under
/// `evidence/`): the verified checkpoint as `log.checkpoint`, the other
/// party's checkpoint (`other`: kept file and bytes) as `<party>.checkpoint`
/// and where it came from as `<party>-url.txt`. Returns the evidence paths:
/// both kept checkpoint files and the copies.
fn keep_split_evidence(
    ctx: &Ctx<'_>,
    case: &str,
    party: &str,
    other: (&str, &[u8]),
    url: &str,
) -> Result<Vec<String>, AuditError> {
    let (file, bytes) = other;
    let mut evidence = vec![file.to_owned()];
    if let Some(v) = &ctx.verified {
        if let Some(d) = ctx.dir.read(&v.file)? {
            ctx.dir.write(&format!("{case}/log.checkpoint"), &d)?;
            evidence.push(v.file.clone());
        }
    }
    ctx.dir
        .write(&format!("{case}/{party}.checkpoint"), bytes)?;
    ctx.dir
        .write(&format!("{case}/{party}-url.txt"), url.as_bytes())?;
    evidence.push(format!("{case}/log.checkpoint"));
    evidence.push(format!("{case}/{party}.checkpoint"));
    Ok(evidence)
}

/// The log's identity for a base URL that serves no `/api/v1/log`: a plain
/// tlog-tiles prefix, such as a C2SP tlog-mirror's monitoring prefix
/// `MIRROR/<hex sha256(origin)>`. The origin is the served checkpoint's
/// first line; the key is, in this order, `trusted` (`--log-key`), the key
/// pinned in the audit directory, or the key the mirror lists for that
/// origin in its `GET MIRROR/logs` (trust on first use of the mirror's
/// word, as of the log's otherwise). No witnesses, no quorum: both come
/// from the log's registry entries.
async fn meta_from_tiles(
    http: &Http,
    dir: &AuditDir,
    trusted: Option<&str>,
) -> Result<LogMeta, AuditError> {
    let url = format!("{}/checkpoint", http.base);
    let cp = http.get("/checkpoint").await?;
    let origin = daylight_core::Note::parse(&cp)
        .ok()
        .and_then(|n| daylight_core::Checkpoint::parse_text(n.text()).ok())
        .map(|c| c.origin)
        .ok_or_else(|| AuditError::Metadata(format!("{url} is not a signed checkpoint")))?;
    // Only a URL that is a mirror's monitoring prefix for this origin is
    // read as one: otherwise a log could answer 404 to /api/v1/log and so
    // switch off the witness-quorum check it is audited against.
    let prefix = daylight_core::witness_protocol::origin_hash(&origin);
    if http.base.rsplit('/').next() != Some(prefix.as_str()) {
        return Err(AuditError::Metadata(format!(
            "{} serves no /api/v1/log: a Daylight log serves it; a C2SP tlog-mirror's copy of {origin} is read under its prefix .../{prefix}",
            http.base
        )));
    }
    let vkey = match (trusted, dir.pinned()?) {
        (Some(t), _) => t.to_owned(),
        (None, Some(p)) => p.vkey,
        (None, None) => mirrors::listed_key(http, &origin).await.ok_or_else(|| {
            AuditError::Metadata(format!(
                "{} serves no /api/v1/log and lists no key for {origin}: give the log's key with --log-key",
                http.base
            ))
        })?,
    };
    Ok(LogMeta {
        origin,
        vkey,
        vkeys: Vec::new(),
        quorum: 0,
        witnesses: Vec::new(),
    })
}

enum Verdict {
    Consistent,
    Split(String),
    Unknown(String),
}

async fn check_against(dir: &AuditDir, http: &Http, t: (u64, Hash), w: (u64, Hash)) -> Verdict {
    let (t_size, t_root) = t;
    let (w_size, w_root) = w;
    if w_size == 0 {
        return if w_root == Hash::empty_tree() {
            Verdict::Consistent
        } else {
            Verdict::Split("a size-0 checkpoint with a non-empty root".into())
        };
    }
    if t_size == 0 {
        // Any tree extends the empty one.
        return Verdict::Consistent;
    }
    if w_size <= t_size {
        // The witness's tree must be a prefix of the verified one.
        let local = mirror::LocalTiles::new(dir);
        let reader = TileHashReader::new(TreeSize(t_size), t_root, &local);
        return match tree_hash(TreeSize(w_size), &reader) {
            Ok(h) if h == w_root => Verdict::Consistent,
            Ok(h) => Verdict::Split(format!(
                "the verified tree has root {} at size {w_size}, the witness's checkpoint {}",
                h.to_base64(),
                w_root.to_base64()
            )),
            Err(e) => Verdict::Unknown(format!("reading the mirror: {e}")),
        };
    }
    // The witness is ahead: the log must prove the larger tree extends ours.
    let mut local = mirror::LocalTiles::new(dir);
    let mut overlay = HashMap::new();
    for tile in new_tiles(TreeSize(t_size), TreeSize(w_size)) {
        match http.get(&format!("/{}", tile.path())).await {
            Ok(d) => {
                overlay.insert(tile, d);
            }
            Err(FetchError::Status(_, 404)) => {
                return Verdict::Split(format!(
                    "the log does not serve tile {} of the witness's tree",
                    tile.path()
                ))
            }
            Err(FetchError::Status(u, s)) => return Verdict::Unknown(format!("{u}: HTTP {s}")),
            Err(FetchError::Other(u, e)) => return Verdict::Unknown(format!("{u}: {e}")),
        }
    }
    local.overlay = overlay;
    let reader = TileHashReader::new(TreeSize(w_size), w_root, &local);
    match consistency_proof(TreeSize(t_size), TreeSize(w_size), &reader) {
        Err(e) => Verdict::Split(format!(
            "the log's tiles do not prove the witness's checkpoint: {e}"
        )),
        Ok(proof) => {
            match verify_consistency(TreeSize(t_size), TreeSize(w_size), t_root, w_root, &proof) {
                Ok(()) => Verdict::Consistent,
                Err(e) => Verdict::Split(format!("no valid consistency proof: {e}")),
            }
        }
    }
}
