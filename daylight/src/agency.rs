//! `daylight agency submit`: draft -> signed record -> log -> cosigned proof.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::policy::WitnessPolicy;
use daylight_core::{LeafIndex, TlogProof, VerifierKey};
use daylight_schemas::{Draft, SignedRecord};

use crate::key::read_signer;

/// Agency commands.
#[derive(Subcommand)]
pub enum AgencyCommand {
    /// Sign a draft, submit it, wait for a cosigned checkpoint, write the bundle.
    Submit {
        /// The log's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        log: String,
        /// The agency's (or court's) signer key file.
        #[arg(long)]
        key: PathBuf,
        /// The draft (see schemas/examples/).
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
pub async fn get_json(
    client: &reqwest::Client,
    log: &str,
    path: &str,
) -> Result<serde_json::Value> {
    client
        .get(format!("{log}{path}"))
        .send()
        .await
        .with_context(|| format!("reaching {log}"))?
        .error_for_status()?
        .json()
        .await
        .with_context(|| format!("reading {path}"))
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

async fn submit(log: &str, key: &Path, draft: &Path, out: &Path, timeout: Duration) -> Result<u64> {
    let log = log.trim_end_matches('/');
    let signer = read_signer(key)?;
    let text =
        std::fs::read_to_string(draft).with_context(|| format!("reading {}", draft.display()))?;
    let draft = Draft::from_json(&text).with_context(|| format!("draft {}", draft.display()))?;
    let mut rng = |buf: &mut [u8]| {
        // The OS random source does not fail on supported systems; a zeroed
        // salt would be caught by the schemas crate's check.
        let _ = getrandom::getrandom(buf);
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let policy = log_policy(&client, log).await?;
    // The record is bound to this log: no other log will take it.
    let origin = policy_origin(&policy)?;
    let (record, opening) = draft.seal(&signer, &origin, chrono::Utc::now(), &mut rng)?;
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

/// Submits signed record bytes to the log at `log`; returns the index it
/// answers, or the log's refusal as an error naming its code.
pub(crate) async fn post_record(client: &reqwest::Client, log: &str, record: &[u8]) -> Result<u64> {
    let resp = client
        .post(format!("{log}/api/v1/entries"))
        .header("content-type", "application/json")
        .body(record.to_vec())
        .send()
        .await
        .with_context(|| format!("submitting to {log}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the log refused the record ({status}): {} {}",
            body["error"].as_str().unwrap_or("?"),
            body["detail"].as_str().unwrap_or("")
        );
    }
    body["index"]
        .as_u64()
        .ok_or_else(|| anyhow!("the log answered without an index"))
}

async fn wait_for_proof(
    client: &reqwest::Client,
    log: &str,
    index: u64,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    loop {
        let resp = client
            .get(format!("{log}/api/v1/entries/{index}/proof"))
            .send()
            .await?;
        match resp.status().as_u16() {
            200 => return Ok(resp.bytes().await?.to_vec()),
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            503 => bail!("entry {index} is in the log but no cosigned checkpoint covers it after {timeout:?}; retry with a longer --timeout"),
            code => bail!("fetching the proof of entry {index}: HTTP {code}"),
        }
    }
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
