//! Comparing the log with its [C2SP tlog-mirrors](https://c2sp.org/tlog-mirror)
//! (`--mirror`), after the log itself is verified.
//!
//! (Not to be confused with [`crate::mirror`], the auditor's own copy of
//! the log in the audit directory.)
//!
//! For each mirror's monitoring prefix (`MIRROR/<hex sha256(origin)>`):
//!
//! 1. `GET <prefix>/checkpoint` must be signed by a key of the log's
//!    confirmed chain (`mirror_checkpoint_invalid` otherwise); a mirror that
//!    does not answer is `mirror_unreachable`, a notice: the audit goes on.
//! 2. It must be consistent with the verified tree, checked as a witness's
//!    checkpoint is: at or below the verified size, the verified tree's hash
//!    at its size must be its root; above, the log's tiles must prove it.
//!    Otherwise `mirror_split_view` (integrity, exit 2), with both
//!    log-signed checkpoints in `evidence/mirror-split-view-<size>-<size>/`.
//! 3. A sample of the tiles and entry bundles of the mirror's tree (at most
//!    [`AuditOptions::mirror_sample`](crate::AuditOptions::mirror_sample) per
//!    run, chosen by [`sample`]) is fetched from the mirror and compared with
//!    the verified tree: each tile must be the verified tree's tile data,
//!    each bundle's entries must hash to the verified leaves. A difference,
//!    or a file the mirror does not serve below its own checkpoint, is
//!    `mirror_content_mismatch`, with the mirror's file kept in
//!    `evidence/mirror-content-<size>-<sha256(prefix)[..8] hex>/`. A
//!    mirror ahead of the verified tree is only checked for consistency
//!    (its files are compared once the log's verified tree has caught up).
//! 4. A mirror behind the verified tree by more than the rules'
//!    `mirror_max_lag_entries`, or for longer than `mirror_max_lag_hours`
//!    (since this audit directory first saw the log serve a checkpoint
//!    larger than the mirror's, `checkpoints/seen.jsonl`), is
//!    `mirror_behind`, with both checkpoints as evidence.

use chrono::{DateTime, Utc};
use daylight_core::tile::{
    new_tiles, parse_entry_bundle, read_tile_data, BundleCoord, Tile, TileHashReader,
};
use daylight_core::tree::{stored_hash_index, HashReader};
use daylight_core::witness_protocol::origin_hash;
use daylight_core::{leaf_hash, Hash, TreeSize};
use serde::Deserialize;
use serde_json::json;

use crate::findings::{Category, Finding, MirrorInfo, Severity};
use crate::{
    bundles_between, check_against, fetch_served_checkpoint, get, keep_split_evidence, AuditError,
    Ctx, FetchError, Http, Keys, Served, Verdict,
};

/// Tiles and bundles fetched from each mirror per run by default.
pub const DEFAULT_SAMPLE: usize = 64;

const MIRROR_UNREACHABLE: &str = "The auditor could not read this mirror's checkpoint or files for the log, so it could not compare the mirror with the log.";
const MIRROR_INVALID: &str = "A mirror serves a checkpoint for this log that is not validly signed by the log: readers who rely on the mirror cannot verify what it serves.";
const MIRROR_SPLIT_VIEW: &str = "A mirror holds a checkpoint signed by the log that cannot be reconciled with the tree the log serves the auditor: the log showed different histories to its mirror and to the auditor. Both signed checkpoints are kept as evidence.";
const MIRROR_CONTENT: &str = "A mirror serves tiles or entries, below the checkpoint it cosigned, that are not those of the log's verified tree (or does not serve them): readers of the mirror get other bytes than the log's. The mirror's file is kept as evidence.";
const MIRROR_BEHIND: &str = "A mirror's checkpoint is far behind the log's verified tree: the newer entries are readable only from the log, so the log's operator alone could still make them disappear.";

/// The monitoring prefix for `origin` of a mirror given by `url`: `url`
/// itself if its last path segment is the origin's hash, else `url` with
/// `/<hex sha256(origin)>` appended (a mirror's base URL).
pub fn mirror_prefix(url: &str, origin: &str) -> String {
    let base = url.trim_end_matches('/');
    let hash = origin_hash(origin);
    match base.rsplit_once('/') {
        Some((_, last)) if last.eq_ignore_ascii_case(&hash) => base.to_owned(),
        _ => format!("{base}/{hash}"),
    }
}

/// `GET MIRROR/logs` (a Daylight mirror's listing; not in the spec).
#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    logs: Vec<ListedLog>,
}

#[derive(Deserialize)]
struct ListedLog {
    origin: String,
    vkey: String,
}

/// The log key a mirror lists for `origin` when `http`'s base URL is its
/// monitoring prefix for it (`MIRROR/<hex sha256(origin)>`): from the
/// mirror's `GET MIRROR/logs`. `None` if the URL is not such a prefix or
/// the mirror lists none.
pub(crate) async fn listed_key(http: &Http, origin: &str) -> Option<String> {
    let (parent, last) = http.base.rsplit_once('/')?;
    if !last.eq_ignore_ascii_case(&origin_hash(origin)) {
        return None;
    }
    let bytes = get(&http.client, &format!("{parent}/logs")).await.ok()?;
    let listing: Listing = serde_json::from_slice(&bytes).ok()?;
    listing
        .logs
        .into_iter()
        .find(|l| l.origin == origin)
        .map(|l| l.vkey)
}

/// One file of a tlog-tiles tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeFile {
    /// A hash tile.
    Tile(Tile),
    /// An entry bundle.
    Bundle(BundleCoord),
}

impl TreeFile {
    /// Its path below the prefix.
    pub fn path(&self) -> String {
        match self {
            TreeFile::Tile(t) => t.path(),
            TreeFile::Bundle(b) => b.path(),
        }
    }
}

/// The files compared with a mirror whose tree has `size` entries: every
/// one if there are at most `max`; else first the right edge (the last
/// level-0 tile and the last bundle, which change with the size) and the
/// tiles above level 0 (few, and each covers many entries), then level-0
/// tiles and bundles evenly spaced, starting at an offset given by `seed`
/// (the run's time), so that successive runs compare other files.
pub fn sample(size: u64, max: usize, seed: u64) -> Vec<TreeFile> {
    let mut all: Vec<TreeFile> = new_tiles(TreeSize(0), TreeSize(size))
        .into_iter()
        .map(TreeFile::Tile)
        .collect();
    all.extend(bundles_between(0, size).into_iter().map(TreeFile::Bundle));
    if all.len() <= max {
        return all;
    }
    // Bundles come last, so the last file is the last bundle.
    let last_tile = all
        .iter()
        .rposition(|f| matches!(f, TreeFile::Tile(t) if t.level == 0));
    let last_bundle = all.len() - 1;
    let (mut first, mut upper, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for (i, f) in all.into_iter().enumerate() {
        if Some(i) == last_tile || i == last_bundle {
            first.push(f);
        } else if matches!(f, TreeFile::Tile(t) if t.level > 0) {
            upper.push(f);
        } else {
            rest.push(f);
        }
    }
    first.append(&mut upper);
    first.truncate(max);
    let left = max - first.len();
    if left > 0 && !rest.is_empty() {
        let stride = (rest.len() / left).max(1);
        let offset = usize::try_from(seed % stride as u64).unwrap_or(0);
        first.extend(rest.into_iter().skip(offset).step_by(stride).take(left));
    }
    first
}

/// Why a file fetched from a mirror does not match the verified tree.
enum Compared {
    /// It matches.
    Same,
    /// It does not (why, and the mirror's bytes if it served any).
    Differs(String, Option<Vec<u8>>),
    /// The mirror could not be read.
    Unreachable(String),
}

/// Compares the mirror's `file` at `prefix` with the verified tree read
/// through `reader`.
async fn compare_file(
    http: &Http,
    prefix: &str,
    file: TreeFile,
    reader: &impl HashReader,
) -> Result<Compared, AuditError> {
    let url = format!("{prefix}/{}", file.path());
    let data = match get(&http.client, &url).await {
        Ok(d) => d,
        Err(FetchError::Status(_, 404)) => {
            return Ok(Compared::Differs(
                format!("it does not serve {}", file.path()),
                None,
            ))
        }
        // A refusal (403, 410, ...) of a file below the size it cosigned is
        // withholding what it vouched for, not a network fault; only a
        // timeout or rate limit (408, 429) and 5xx are.
        Err(FetchError::Status(_, s)) if (400..500).contains(&s) && s != 408 && s != 429 => {
            return Ok(Compared::Differs(
                format!("it refuses {} (HTTP {s})", file.path()),
                None,
            ))
        }
        Err(FetchError::Status(u, s)) => {
            return Ok(Compared::Unreachable(format!("{u}: HTTP {s}")))
        }
        Err(FetchError::Other(u, e)) => return Ok(Compared::Unreachable(format!("{u}: {e}"))),
    };
    let local = |e: daylight_core::tree::TreeError| {
        AuditError::Corrupt(format!(
            "reading the verified tree for {}: {e}",
            file.path()
        ))
    };
    match file {
        TreeFile::Tile(t) => {
            let expected = read_tile_data(t, reader).map_err(local)?;
            if expected == data {
                return Ok(Compared::Same);
            }
            Ok(Compared::Differs(
                format!("tile {} is not the verified tree's", t.path()),
                Some(data),
            ))
        }
        TreeFile::Bundle(b) => {
            let first = b.index * daylight_core::tile::TILE_WIDTH;
            let entries = match parse_entry_bundle(&data, b.width) {
                Ok(e) => e,
                Err(e) => {
                    return Ok(Compared::Differs(
                        format!("entry bundle {} does not parse: {e}", b.path()),
                        Some(data),
                    ))
                }
            };
            let indexes: Vec<u64> = (first..first + u64::from(b.width))
                .map(|i| stored_hash_index(0, i))
                .collect();
            let leaves: Vec<Hash> = reader.read_hashes(&indexes).map_err(local)?;
            match entries
                .iter()
                .zip(&leaves)
                .position(|(e, h)| leaf_hash(e) != *h)
            {
                None => Ok(Compared::Same),
                Some(pos) => Ok(Compared::Differs(
                    format!(
                        "entry {} in bundle {} is not the verified tree's",
                        first + pos as u64,
                        b.path()
                    ),
                    Some(data),
                )),
            }
        }
    }
}

/// Where the files a mirror at `prefix` serves that differ from the
/// verified tree of its `size` are kept: `evidence/mirror-content-<size>-<the
/// first 8 bytes of sha256(prefix), hex>/`, so that two mirrors do not share it.
fn content_case(prefix: &str, size: u64) -> String {
    use sha2::{Digest as _, Sha256};
    let tag = hex::encode(&Sha256::digest(prefix.as_bytes())[..8]);
    format!("evidence/mirror-content-{size}-{tag}")
}

/// The earliest time this audit directory saw the log (at `log_url`) serve
/// a checkpoint larger than `size` and not larger than `verified` (from
/// `checkpoints/seen.jsonl`).
fn behind_since(
    ctx: &Ctx<'_>,
    log_url: &str,
    size: u64,
    verified: u64,
) -> Result<Option<DateTime<Utc>>, AuditError> {
    #[derive(Deserialize)]
    struct Seen {
        file: String,
        source: String,
        seen_at: String,
    }
    let Some(data) = ctx.dir.read("checkpoints/seen.jsonl")? else {
        return Ok(None);
    };
    let source = format!("{log_url}/checkpoint");
    let earliest = String::from_utf8_lossy(&data)
        .lines()
        .filter_map(|l| serde_json::from_str::<Seen>(l).ok())
        .filter(|s| s.source == source)
        .filter(|s| {
            s.file
                .strip_prefix("checkpoints/")
                .and_then(|f| f.split_once('-'))
                .and_then(|(n, _)| n.parse::<u64>().ok())
                .is_some_and(|n| n > size && n <= verified)
        })
        .filter_map(|s| DateTime::parse_from_rfc3339(&s.seen_at).ok())
        .map(|t| t.with_timezone(&Utc))
        .min();
    Ok(earliest)
}

/// Fetches every mirror's checkpoint for the log and compares it, and a
/// sample of its files, with the trusted tree (`size`, `root`) verified in
/// the audit directory; what each held goes to `ctx.mirrors`, what is
/// wrong to `findings`. A mirror that cannot be read is a notice.
pub(crate) async fn compare_mirrors(
    ctx: &mut Ctx<'_>,
    http: &Http,
    origin: &str,
    keys: &Keys,
    trusted: Option<(u64, Hash)>,
    findings: &mut Vec<Finding>,
) -> Result<(), AuditError> {
    let log_keys: Vec<&daylight_core::VerifierKey> = keys.log.iter().collect();
    let mut seen = std::collections::BTreeSet::new();
    let prefixes: Vec<String> = ctx
        .opts
        .mirrors
        .iter()
        .map(|u| mirror_prefix(u, origin))
        .filter(|p| seen.insert(p.clone()))
        .collect();
    for prefix in prefixes {
        let cp_url = format!("{prefix}/checkpoint");
        let mut info = MirrorInfo {
            url: prefix.clone(),
            status: String::new(),
            size: None,
            root: None,
            file: None,
            compared: 0,
        };
        let unreachable = |why: String| {
            Finding::new(
                "mirror_unreachable",
                Category::Notice,
                Severity::Info,
                format!("mirror {prefix}: {why}"),
                MIRROR_UNREACHABLE,
                vec![],
            )
            .with_details(json!({ "url": prefix }))
        };
        let (bytes, file, signed) =
            match fetch_served_checkpoint(ctx.dir, &http.client, &cp_url, &log_keys).await? {
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
                    findings.push(unreachable(format!("{cp_url}: {why}")));
                    ctx.mirrors.push(info);
                    continue;
                }
                Served::Invalid { file, error: e } => {
                    info.file = Some(file.clone());
                    info.status = "invalid".into();
                    findings.push(
                        Finding::new(
                            "mirror_checkpoint_invalid",
                            Category::Rule,
                            Severity::High,
                            format!(
                            "mirror {prefix} serves a checkpoint the log's key does not open: {e}"
                        ),
                            MIRROR_INVALID,
                            vec![],
                        )
                        .with_evidence(vec![file]),
                    );
                    ctx.mirrors.push(info);
                    continue;
                }
            };
        let (m_size, m_root) = (signed.checkpoint.size.get(), signed.checkpoint.root);
        info.size = Some(m_size);
        info.root = Some(m_root.to_base64());
        let Some((t_size, t_root)) = trusted else {
            info.status = "unverified".into();
            ctx.mirrors.push(info);
            continue;
        };
        let mirror_json = json!({ "url": prefix, "size": m_size, "root": m_root.to_base64() });
        let verified_json = json!({ "size": t_size, "root": t_root.to_base64() });
        match check_against(ctx.dir, http, (t_size, t_root), (m_size, m_root)).await {
            Verdict::Consistent => {}
            Verdict::Unknown(why) => {
                info.status = "ahead_unverified".into();
                findings.push(unreachable(format!(
                    "at size {m_size}, ahead of the verified tree; could not check it: {why}"
                )));
                ctx.mirrors.push(info);
                continue;
            }
            Verdict::Split(why) => {
                info.status = "split_view".into();
                let evidence = keep_split_evidence(
                    ctx,
                    &format!("evidence/mirror-split-view-{t_size}-{m_size}"),
                    "mirror",
                    (&file, &bytes),
                    &cp_url,
                )?;
                findings.push(
                    Finding::new(
                        "mirror_split_view",
                        Category::Integrity,
                        Severity::Critical,
                        format!(
                            "mirror {prefix} holds a log-signed checkpoint of size {m_size} that cannot be reconciled with the verified tree of size {t_size}: {why}"
                        ),
                        MIRROR_SPLIT_VIEW,
                        vec![],
                    )
                    .with_evidence(evidence)
                    .with_details(json!({ "verified": verified_json, "mirror": mirror_json })),
                );
                ctx.mirrors.push(info);
                continue;
            }
        }
        if m_size > t_size {
            info.status = "ahead".into();
            ctx.mirrors.push(info);
            continue;
        }
        info.status = "consistent".into();

        // The mirror's files, sampled, against the verified tree.
        let local = crate::mirror::LocalTiles::new(ctx.dir);
        let reader = TileHashReader::new(TreeSize(t_size), t_root, &local);
        let seed = u64::try_from(ctx.opts.now.timestamp()).unwrap_or(0);
        for f in sample(m_size, ctx.opts.mirror_sample, seed) {
            match compare_file(http, &prefix, f, &reader).await? {
                Compared::Same => info.compared += 1,
                Compared::Unreachable(why) => {
                    findings.push(unreachable(why));
                    break;
                }
                Compared::Differs(why, data) => {
                    info.compared += 1;
                    info.status = "content_mismatch".into();
                    let mut evidence = vec![file.clone()];
                    if let Some(d) = data {
                        let rel = format!("{}/{}", content_case(&prefix, m_size), f.path());
                        ctx.dir.write(&rel, &d)?;
                        evidence.push(rel);
                    }
                    findings.push(
                        Finding::new(
                            "mirror_content_mismatch",
                            Category::Rule,
                            Severity::High,
                            format!("mirror {prefix} at size {m_size}: {why}"),
                            MIRROR_CONTENT,
                            vec![],
                        )
                        .with_evidence(evidence)
                        .with_details(json!({
                            "verified": verified_json,
                            "mirror": mirror_json,
                            "path": f.path(),
                        })),
                    );
                    break;
                }
            }
        }

        // How far behind.
        let lag = t_size - m_size;
        if lag > 0 {
            let rules = &ctx.opts.rules;
            let since = behind_since(ctx, &http.base, m_size, t_size)?;
            let hours = since.map(|s| (Utc::now() - s).num_seconds() as f64 / 3600.0);
            let too_old = since.is_some_and(|s| {
                Utc::now() - s > chrono::Duration::hours(rules.mirror_max_lag_hours)
            });
            if lag > rules.mirror_max_lag_entries || too_old {
                if info.status == "consistent" {
                    info.status = "behind".into();
                }
                let mut evidence = vec![file.clone()];
                evidence.extend(ctx.verified.as_ref().map(|v| v.file.clone()));
                findings.push(
                    Finding::new(
                        "mirror_behind",
                        Category::Rule,
                        Severity::Medium,
                        format!(
                            "mirror {prefix} is at size {m_size}, {lag} entries behind the verified tree of size {t_size}{}",
                            since.map(|s| format!(", since at least {}", s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))).unwrap_or_default()
                        ),
                        MIRROR_BEHIND,
                        vec![],
                    )
                    .with_evidence(evidence)
                    .with_details(json!({
                        "verified": verified_json,
                        "mirror": mirror_json,
                        "lag_entries": lag,
                        "behind_since": since.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        "lag_hours": hours,
                        "max_lag_entries": rules.mirror_max_lag_entries,
                        "max_lag_hours": rules.mirror_max_lag_hours,
                    })),
                );
            }
        }
        ctx.mirrors.push(info);
    }
    Ok(())
}
