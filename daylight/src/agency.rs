//! `daylight agency draft`: a current example draft of any kind;
//! `daylight agency submit`: draft -> signed record -> log -> cosigned proof.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::policy::WitnessPolicy;
use daylight_core::{Hash, LeafIndex, TlogProof, VerifierKey};
use daylight_custodian::{HttpLog, LogClient as _, LogError, WaitError};
use daylight_schemas::{Draft, EntryRef, Kind, Opening, SignedRecord};

use crate::key::read_signer;

/// Agency commands.
#[derive(Subcommand)]
pub enum AgencyCommand {
    /// Write a current, valid example draft of KIND (request, emergency,
    /// ratification, extension, disclosure, release, withdrawal, outcome),
    /// dated around now, with clearly fake targets, to edit and submit.
    ///
    /// Kinds that refer to an earlier entry take it from --entry with
    /// --leaf-hash, --log or --opening; without them the reference is a
    /// placeholder to replace (`agency submit` refuses it).
    Draft(DraftArgs),
    /// Sign a draft, submit it, wait for a cosigned checkpoint, write the bundle.
    Submit {
        /// The log's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        log: String,
        /// The agency's (or court's) signer key file.
        #[arg(long)]
        key: PathBuf,
        /// The draft (write one with `daylight agency draft request`).
        #[arg(long)]
        draft: PathBuf,
        /// Where to write `entry`, `proof` and `opening.json`.
        #[arg(long)]
        out: PathBuf,
        /// How long to wait for a cosigned checkpoint, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

/// Runs an agency command.
pub fn run(cmd: AgencyCommand) -> Result<()> {
    match cmd {
        AgencyCommand::Draft(args) => draft(args),
        AgencyCommand::Submit {
            log,
            key,
            draft,
            out,
            timeout,
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let index = runtime.block_on(submit(
                &log,
                &key,
                &draft,
                &out,
                Duration::from_secs(timeout),
            ))?;
            println!("{index}");
            Ok(())
        }
    }
}

/// `GET {log}{path}` as JSON (`path` from the root, e.g. `/api/v1/log`).
/// Errors say whether nothing answered at `log` or what it answered.
pub async fn get_json(
    client: &reqwest::Client,
    log: &str,
    path: &str,
) -> Result<serde_json::Value> {
    let resp = client
        .get(format!("{log}{path}"))
        .send()
        .await
        .map_err(|e| unreachable_log(log, &e))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let said = match (body["error"].as_str(), body["detail"].as_str()) {
            (Some(code), Some(detail)) => format!(": {code} {detail}"),
            _ if status == reqwest::StatusCode::NOT_FOUND && path == "/api/v1/log" => {
                format!("; is {log} a Daylight log? check the URL")
            }
            _ => String::new(),
        };
        bail!("{log}{path} answered {status}{said}");
    }
    resp.json()
        .await
        .with_context(|| format!("{log}{path} did not answer JSON; is {log} a Daylight log?"))
}

/// The error for a log that could not be asked anything.
fn unreachable_log(log: &str, err: &reqwest::Error) -> anyhow::Error {
    if err.is_builder() {
        return anyhow!("--log {log:?} is not a URL: write it as http://HOST:PORT");
    }
    let why = if err.is_connect() {
        "nothing answers there"
    } else if err.is_timeout() {
        "it did not answer in time"
    } else {
        "the request failed"
    };
    anyhow!("cannot reach the log at {log}: {why}; is `daylight log serve` running at that address? check --log")
}

/// [`log_policy`], waiting up to `wait` for a log that does not accept
/// connections yet (one just started in the background).
async fn log_policy_waiting(
    client: &reqwest::Client,
    log: &str,
    wait: Duration,
) -> Result<WitnessPolicy> {
    let deadline = Instant::now() + wait;
    loop {
        match client.get(format!("{log}/api/v1/log")).send().await {
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return log_policy(client, log).await,
        }
    }
}

/// The origin of the log `policy` trusts (its log key's name): what
/// records for that log are bound to.
pub fn policy_origin(policy: &WitnessPolicy) -> Result<String> {
    policy
        .logs
        .first()
        .map(|l| l.key.name().to_string())
        .ok_or_else(|| anyhow!("/api/v1/log names no log key"))
}

/// The log's published identity, from `GET /api/v1/log`.
pub async fn log_policy(client: &reqwest::Client, log: &str) -> Result<WitnessPolicy> {
    let info = get_json(client, log, "/api/v1/log").await?;
    let field = |name: &str| {
        info.get(name)
            .ok_or_else(|| anyhow!("/api/v1/log has no {name}"))
    };
    let vkey =
        VerifierKey::parse(field("vkey")?.as_str().unwrap_or_default()).context("log vkey")?;
    let quorum = field("quorum")?
        .as_u64()
        .ok_or_else(|| anyhow!("bad quorum"))? as usize;
    let witnesses = field("witnesses")?
        .as_array()
        .ok_or_else(|| anyhow!("bad witnesses"))?
        .iter()
        .map(|w| VerifierKey::parse(w["vkey"].as_str().unwrap_or_default()).context("witness vkey"))
        .collect::<Result<Vec<_>>>()?;
    Ok(WitnessPolicy::k_of_n(vkey, witnesses, quorum))
}

/// `agency submit`: signs the draft, submits it, waits for a cosigned
/// checkpoint and writes the bundle (`entry`, `proof`, `opening.json`) to
/// `out`; the entry's index.
pub(crate) async fn submit(
    log: &str,
    key: &Path,
    draft: &Path,
    out: &Path,
    timeout: Duration,
) -> Result<u64> {
    let log = log.trim_end_matches('/');
    let signer = read_signer(key)?;
    let draft_path = draft;
    let text = std::fs::read_to_string(draft_path).map_err(|e| {
        anyhow!(
            "reading the draft {}: {e}; write one with `daylight agency draft request --out {}`",
            draft_path.display(),
            draft_path.display()
        )
    })?;
    let draft = Draft::from_json(&text).map_err(|e| {
        anyhow!(
            "the draft {} is not a valid draft: {e}; compare it with `daylight agency draft KIND`",
            draft_path.display()
        )
    })?;
    if let Some(r) = draft.placeholder_references().first() {
        bail!(
            "the draft {} still refers to the placeholder entry (index {}, leaf hash 000...0): \
             put in the index and leaf hash of the entry it is about, or write it again with \
             `daylight agency draft {} --log {log} --entry INDEX`",
            draft_path.display(),
            r.index,
            draft.kind().as_str()
        );
    }
    let now = chrono::Utc::now();
    if let Some(why) = stale(&draft, now) {
        bail!(
            "the draft {} {why}: edit it, or write a fresh draft with `daylight agency draft {}`",
            draft_path.display(),
            draft.kind().as_str()
        );
    }
    let mut rng = |buf: &mut [u8]| {
        // The OS random source does not fail on supported systems; a zeroed
        // salt would be caught by the schemas crate's check.
        let _ = getrandom::getrandom(buf);
    };
    let client = http_client()?;
    let policy = log_policy_waiting(&client, log, Duration::from_secs(5)).await?;
    // The record is bound to this log: no other log will take it.
    let origin = policy_origin(&policy)?;
    let (record, opening) = draft
        .seal(&signer, &origin, now, &mut rng)
        .with_context(|| format!("the draft {} cannot be signed", draft_path.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // The opening first: it is the only copy of the salts.
    write(out, "opening.json", opening.to_json().as_bytes())?;
    write(out, "entry", record.as_bytes())?;

    let index = post_record(&client, log, record.as_bytes()).await?;
    let proof = wait_for_proof(&client, log, index, timeout).await?;
    verify(&record, &proof, &policy, index)?;
    write(out, "proof", &proof)?;
    Ok(index)
}

/// What in the draft's dates has gone stale by `now`, in words, if
/// anything: the checks of the schemas' rules that a calendar breaks.
fn stale(draft: &Draft, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let past = |field: &str, t: &dyn std::fmt::Display| {
        Some(format!("has {field} {t}, which is in the past"))
    };
    match draft {
        Draft::Request(d) if d.valid_until.get() <= now => past("valid_until", &d.valid_until),
        Draft::Emergency(d) if d.valid_until.get() <= now => past("valid_until", &d.valid_until),
        Draft::Emergency(d) if d.ratify_by.get() <= now => past("ratify_by", &d.ratify_by),
        Draft::Emergency(d)
            if d.ratify_by.get() - now
                > chrono::Duration::hours(daylight_schemas::MAX_RATIFY_HOURS) =>
        {
            Some(format!(
                "has ratify_by {}, more than {} hours from now",
                d.ratify_by,
                daylight_schemas::MAX_RATIFY_HOURS
            ))
        }
        Draft::Extension(b) if b.sealed_until.get() <= now => past("sealed_until", &b.sealed_until),
        Draft::Release(b) if b.released_at.get() > now => Some(format!(
            "has released_at {}, which is in the future",
            b.released_at
        )),
        _ => None,
    }
}

/// Submits signed record bytes to the log at `log`; returns the index it
/// answers, or the log's refusal as an error naming its code and what to do.
pub(crate) async fn post_record(client: &reqwest::Client, log: &str, record: &[u8]) -> Result<u64> {
    HttpLog::new(client.clone(), log)
        .submit(record)
        .await
        .map_err(|e| match &e {
            LogError::Refused { code, .. } => {
                let hint = refusal_hint(code);
                anyhow!("{e}{}{hint}", if hint.is_empty() { "" } else { "; " })
            }
            _ => anyhow!("submitting to {log}: {e}"),
        })
}

/// What to do about a refusal, by the log's error code ("" if the detail
/// says it all).
fn refusal_hint(code: &str) -> &'static str {
    match code {
        "unknown_signer" => {
            "the log operator must register this key first: `daylight log add-agency --dir DIR \
             --vkey \"$(daylight key public --key FILE)\"` (add-court for courts, add-provider for providers)"
        }
        "revoked_signer" => {
            "this key was revoked or replaced: sign with the current key (the log's keys are at /api/v1/agencies)"
        }
        "wrong_role" => {
            "this key's role may not sign this kind: agencies sign requests, emergencies, withdrawals \
             and outcomes; courts ratifications and extensions; providers releases"
        }
        "reference_unknown" | "reference_not_backwards" | "reference_hash_mismatch" => {
            "the draft's entry reference must name an entry already in this log, with its leaf hash: \
             write the draft again with `daylight agency draft KIND --log URL --entry INDEX`"
        }
        "dates_out_of_order" | "sealed_before_valid_until" | "emergency_deadline_too_long" => {
            "fix the dates in the draft, or write a fresh one with `daylight agency draft KIND`"
        }
        "reference_not_authorising" => {
            "a release or refusal answers a request or emergency: point the draft's `entry` at one \
             (`daylight agency draft KIND --log URL --entry INDEX`)"
        }
        "wrong_provider" => {
            "only the provider the request is addressed to may answer it: sign with that provider's key"
        }
        "wrong_agency" => "only the agency that made a request may withdraw it: sign with its key",
        "wrong_log" | "unbound_record" => {
            "records are bound to one log: seal the draft again for this log (`daylight agency submit` \
             does that from the draft itself)"
        }
        "rate_limited" | "queue_full" | "storage_unavailable" | "log_key_unavailable" => {
            "wait a moment and submit again"
        }
        _ => "",
    }
}

async fn wait_for_proof(
    client: &reqwest::Client,
    log: &str,
    index: u64,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let log = HttpLog::new(client.clone(), log);
    // Any proof will do here: `verify` checks it against the log's
    // published witnesses afterwards.
    daylight_custodian::wait_for_proof(&log, index, timeout, |p| Ok(p.to_vec()))
        .await
        .map_err(|e| match e {
            WaitError::Timeout { .. } => anyhow!(
                "entry {index} is in the log but no cosigned checkpoint covers it after \
                 {timeout:?}; retry with a longer --timeout"
            ),
            WaitError::Log(e) => anyhow!("fetching the proof of entry {index}: {e}"),
        })
}

fn verify(record: &SignedRecord, proof: &[u8], policy: &WitnessPolicy, index: u64) -> Result<()> {
    let parsed = TlogProof::parse(proof).context("the log's proof")?;
    if parsed.index != LeafIndex(index) {
        bail!("the log's proof is for entry {}, not {index}", parsed.index);
    }
    parsed
        .verify(record.as_bytes(), policy)
        .context("the log's proof does not verify")?;
    Ok(())
}

fn write(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))
}

/// What `agency draft` was asked for.
/// The arguments of `agency draft`.
#[derive(clap::Args)]
pub struct DraftArgs {
    /// The kind of record: request, emergency, ratification, extension,
    /// disclosure, release, withdrawal or outcome.
    kind: String,
    /// Write the draft here (never over an existing file) instead of to
    /// standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The index of the earlier entry the draft refers to (the number
    /// `agency submit` printed).
    #[arg(long)]
    entry: Option<u64>,
    /// That entry's leaf hash (64 hex digits); or give --log or --opening.
    #[arg(long, value_name = "HEX")]
    leaf_hash: Option<String>,
    /// Ask this log for the leaf hash of --entry.
    #[arg(long, value_name = "URL")]
    log: Option<String>,
    /// The earlier entry's opening file (`bundle/opening.json`): gives
    /// its leaf hash, and a disclosure opens every commitment in it.
    #[arg(long, value_name = "FILE")]
    opening: Option<PathBuf>,
    /// The provider a request or emergency is addressed to (its
    /// registered key's name).
    #[arg(long, default_value = daylight_schemas::draft::EXAMPLE_PROVIDER)]
    provider: String,
}

/// The kinds `agency draft` writes, as the user types them.
const DRAFT_KINDS: &str =
    "request, emergency, ratification, extension, disclosure, release, withdrawal, outcome";

fn draft(args: DraftArgs) -> Result<()> {
    let kind: Kind = args.kind.parse().map_err(|_| {
        anyhow!(
            "no kind of record is called {:?}: use one of {DRAFT_KINDS}",
            args.kind
        )
    })?;
    if kind == Kind::Registry {
        bail!(
            "registry entries are the log operator's, not drafts: use `daylight log add-agency`, \
             `add-court`, `add-provider`, `revoke` or `rotate` on the log's directory"
        );
    }
    let refers = !matches!(kind, Kind::Request | Kind::Emergency);
    let opening = match &args.opening {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the opening {}", path.display()))?;
            Some(Opening::from_json(&text).with_context(|| {
                format!(
                    "{} is not an opening file (the opening.json `agency submit` writes)",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let asked = args.entry.is_some()
        || args.leaf_hash.is_some()
        || args.log.is_some()
        || args.opening.is_some();
    if !refers && asked {
        bail!(
            "a {} refers to no earlier entry: drop --entry, --leaf-hash, --log and --opening",
            kind.as_str()
        );
    }
    let entry = match args.entry {
        None if asked => bail!(
            "--leaf-hash, --log and --opening need --entry INDEX: the index of the entry this {} is about",
            kind.as_str()
        ),
        None => None,
        Some(index) => Some(EntryRef::new(
            LeafIndex(index),
            entry_leaf_hash(index, &args, opening.as_ref())?,
        )),
    };
    let now = chrono::Utc::now();
    let draft = match (kind, entry, &opening) {
        (Kind::Disclosure, Some(entry), Some(opening)) => {
            Draft::disclosure_from_opening(entry, opening).context("the disclosure")?
        }
        _ => Draft::example(kind, now, entry, &args.provider)
            .with_context(|| format!("writing a {} draft", kind.as_str()))?,
    };
    let mut text = serde_json::to_string_pretty(&draft).context("encoding the draft")?;
    text.push('\n');
    match &args.out {
        Some(path) => write_new(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    // Said on stderr so that standard output stays the draft alone.
    if entry.is_none() && refers {
        eprintln!(
            "daylight: note: the draft's entry reference is a placeholder (index 0, leaf hash 000...0); \
             put in the entry's index and leaf hash, or run again with --entry INDEX --log URL"
        );
    }
    Ok(())
}

/// The leaf hash of entry `index`, from --leaf-hash, the opening, or the log.
fn entry_leaf_hash(index: u64, args: &DraftArgs, opening: Option<&Opening>) -> Result<Hash> {
    if let Some(hex_hash) = &args.leaf_hash {
        let hash = parse_hash(hex_hash).with_context(|| {
            format!("--leaf-hash {hex_hash:?} is not 64 hex digits (the entry's leaf hash)")
        })?;
        if let Some(o) = opening {
            if o.entry_leaf_hash != hash {
                bail!("--leaf-hash and --opening name different entries; give one of them");
            }
        }
        return Ok(hash);
    }
    if let Some(o) = opening {
        return Ok(o.entry_leaf_hash);
    }
    let Some(log) = &args.log else {
        bail!("--entry {index} needs its leaf hash: add --log URL (asked of the log), --leaf-hash HEX or --opening FILE");
    };
    let log = log.trim_end_matches('/');
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let info = runtime.block_on(async {
        let client = http_client()?;
        get_json(&client, log, &format!("/api/v1/entries/{index}")).await
    })?;
    info["leaf_hash"]
        .as_str()
        .and_then(|h| parse_hash(h).ok())
        .ok_or_else(|| anyhow!("{log}/api/v1/entries/{index} gave no leaf hash"))
}

fn parse_hash(text: &str) -> Result<Hash> {
    let text = text.trim();
    if text.len() != 64 {
        bail!("{} characters, not 64", text.len());
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).unwrap_or("");
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| anyhow!("not hex"))?;
    }
    Ok(Hash(out))
}

/// Writes `data` to a new file at `path`, refusing to replace one (it may
/// be a draft someone edited).
fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow!(
                "{} already exists: choose another --out, or delete it first",
                path.display()
            ),
            _ => anyhow!("writing {}: {e}", path.display()),
        })?;
    file.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("setting up the HTTP client")
}

#[cfg(test)]
mod tests {
    use super::refusal_hint;

    #[test]
    fn refusals_a_person_can_act_on_have_a_hint() {
        for code in [
            "unknown_signer",
            "revoked_signer",
            "wrong_role",
            "reference_unknown",
            "reference_not_authorising",
            "wrong_provider",
            "wrong_agency",
            "wrong_log",
            "unbound_record",
            "dates_out_of_order",
            "rate_limited",
            "log_key_unavailable",
        ] {
            assert!(!refusal_hint(code).is_empty(), "{code}");
        }
        // A code whose detail says it all gets none.
        assert!(refusal_hint("bad_signature").is_empty());
    }
}
