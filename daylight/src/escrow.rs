//! `daylight escrow`: threshold custody from the outside. `split` deposits
//! a target's escrowed key with n custodians, k of n (the provider's side);
//! `recover` collects k shares for a request bundle and puts the key
//! together (the agency's side), checking that each custodian's release
//! receipt is in the log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::{Args, Subcommand};
use daylight_core::{leaf_hash, Checkpoint, Note, SignerKey, TlogProof, VerifierKey};
use daylight_custodian::{Info, Released};
use daylight_custody::{deposit, open, recover, split, Context, EscrowKey, Share, Slot};
use daylight_schemas::{Body, SignedRecord, Signer};

use crate::key::{read_signer, write_secret_text};

/// Escrow commands.
#[derive(Subcommand)]
pub enum EscrowCommand {
    /// Split a target's escrowed key k of n among n custodians (one share
    /// each, sealed to its key, signed by the provider) and deposit the
    /// shares; print the key's check value and where each share went.
    Split(SplitArgs),
    /// Ask custodians for their shares of a target's key for a request
    /// bundle until k answered, check each one's receipt in the log, put
    /// the key together; print it (or write --out).
    Recover(RecoverArgs),
}

/// Arguments of `escrow split`.
#[derive(Args)]
pub struct SplitArgs {
    /// The provider's signer key file (its registered key): it signs the
    /// deposits, and its name is the provider the custodians hold shares for.
    #[arg(long, value_name = "FILE")]
    provider_key: PathBuf,
    /// The target whose key this is (as requests name it, e.g. `acct:...`).
    #[arg(long)]
    target: String,
    /// How many shares put the key together again (k; at least 2, at most
    /// the number of custodians).
    #[arg(long)]
    threshold: u8,
    /// A custodian's base URL; repeat for each (n = how many are given).
    /// Share i goes to the i-th.
    #[arg(long = "custodian", value_name = "URL", required = true)]
    custodians: Vec<String>,
    /// The custodians' verifier keys, in the order of --custodian: each
    /// custodian must answer with this key (otherwise the key it answers is
    /// used as it is).
    #[arg(long = "custodian-vkey", value_name = "VKEY")]
    custodian_vkeys: Vec<String>,
    /// The key to split: 64 hex digits in FILE (kept by the provider's own
    /// escrow system).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "generate",
        conflicts_with = "generate"
    )]
    key: Option<PathBuf>,
    /// Split a fresh key, written to --key-out first (never printed).
    #[arg(long, requires = "key_out")]
    generate: bool,
    /// Where --generate writes the fresh key (a new file, mode 0600).
    #[arg(long, value_name = "FILE", requires = "generate")]
    key_out: Option<PathBuf>,
}

/// Arguments of `escrow recover`.
#[derive(Args)]
pub struct RecoverArgs {
    /// The request bundle: `entry`, `proof`, `opening.json` (as `agency
    /// submit` writes them) and `target` (or give --target).
    #[arg(long, value_name = "DIR")]
    bundle: PathBuf,
    /// The target whose key to recover (default: the bundle's `target` file).
    #[arg(long)]
    target: Option<String>,
    /// The agency's signer key file (the registered key that signed the
    /// request): shares are sealed to it.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A custodian's base URL; repeat for each. Asked in order, in waves
    /// of as many as shares are missing, each wave at once, until enough
    /// shares are held.
    #[arg(long = "custodian", value_name = "URL", required = true)]
    custodians: Vec<String>,
    /// The log's base URL, where each custodian's receipt is checked.
    #[arg(long)]
    log: String,
    /// Write the key (hex) to this new file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs an escrow command.
pub fn run(cmd: EscrowCommand) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cmd {
        EscrowCommand::Split(args) => runtime.block_on(split_command(&args)),
        EscrowCommand::Recover(args) => runtime.block_on(recover_command(&args)),
    }
}

/// An HTTP client whose timeout covers a custodian's wait for its receipt.
pub(crate) fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .context("setting up the HTTP client")
}

/// Asks a custodian: `GET` (no body) or `POST` (JSON body) `{url}{path}`.
/// The status and JSON body; an error only if it could not be asked.
async fn ask(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, serde_json::Value)> {
    let url = url.trim_end_matches('/');
    let req = match body {
        None => client.get(format!("{url}{path}")),
        Some(b) => client
            .post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(b),
    };
    let resp = req.send().await.map_err(|e| {
        let why = if e.is_builder() {
            "not a URL: write it as http://HOST:PORT"
        } else if e.is_connect() {
            "nothing answers there"
        } else if e.is_timeout() {
            "it did not answer in time"
        } else {
            "the request failed"
        };
        anyhow!("cannot reach the custodian at {url}: {why}")
    })?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or_default()))
}

/// A custodian's refusal in words: its code, the gate's reason if any, and
/// its detail.
fn refusal(status: u16, body: &serde_json::Value) -> String {
    let code = body["error"].as_str().unwrap_or("?");
    let reason = body["reason"]
        .as_str()
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let detail = body["detail"].as_str().unwrap_or_default();
    format!("{status} {code}{reason}: {detail}")
}

/// A custodian's identity, from `GET /api/v1/custodian`.
async fn custodian_info(client: &reqwest::Client, url: &str) -> Result<(Info, VerifierKey)> {
    let (status, body) = ask(client, url, "/api/v1/custodian", None).await?;
    if status != 200 {
        bail!("the custodian at {url} answered {}", refusal(status, &body));
    }
    let info: Info = serde_json::from_value(body)
        .map_err(|e| anyhow!("{url} does not answer as a Daylight custodian: {e}"))?;
    let vkey = VerifierKey::parse(&info.vkey)
        .map_err(|e| anyhow!("the custodian at {url} answered a bad key: {e}"))?;
    Ok((info, vkey))
}

async fn split_command(args: &SplitArgs) -> Result<()> {
    let provider = read_signer(&args.provider_key)?;
    let provider_name = provider.name().to_string();
    let n = args.custodians.len();
    let shares =
        u8::try_from(n).map_err(|_| anyhow!("{n} custodians: at most 255 shares per key"))?;
    if args.threshold < 2 || args.threshold > shares {
        bail!(
            "--threshold {} with {n} custodians: need 2 <= threshold <= the number of custodians \
             (one custodian alone must never release a key)",
            args.threshold
        );
    }
    if !args.custodian_vkeys.is_empty() && args.custodian_vkeys.len() != n {
        bail!(
            "{} --custodian-vkey for {n} --custodian: give one for each custodian, in the same order, or none",
            args.custodian_vkeys.len()
        );
    }

    let client = client()?;
    let keys = check_custodians(
        &client,
        &args.custodians,
        &provider_name,
        &args.custodian_vkeys,
    )
    .await?;

    let key = match (&args.key, &args.key_out) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the key {}", file.display()))?;
            EscrowKey::from_hex(&text)
                .map_err(|e| anyhow!("{}: {e}; it must hold 64 hex digits", file.display()))?
        }
        (None, Some(out)) => {
            let key = EscrowKey::generate()?;
            // Written before any share leaves: a key whose shares are out
            // must never exist nowhere else.
            write_secret_text(out, &key.to_hex())?;
            key
        }
        (None, None) => bail!("give --key FILE, or --generate --key-out FILE"),
    };
    deposit_shares(
        &client,
        &key,
        &provider,
        &args.target,
        args.threshold,
        (&args.custodians, &keys),
        |line| println!("{line}"),
    )
    .await
}

/// Asks every custodian at `urls` who it is before anything is deposited:
/// that it holds shares for `provider`, answers with its pinned key (`pins`,
/// in the same order, if any) and is not given twice. Their keys, in order.
pub(crate) async fn check_custodians(
    client: &reqwest::Client,
    urls: &[String],
    provider: &str,
    pins: &[String],
) -> Result<Vec<VerifierKey>> {
    let mut keys = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let (info, vkey) = custodian_info(client, url).await?;
        if info.provider != provider {
            bail!(
                "the custodian at {url} holds shares for {:?}, not for {provider:?} (the \
                 --provider-key's name): it would never find this share",
                info.provider
            );
        }
        if let Some(pin) = pins.get(i) {
            let pin = VerifierKey::parse(pin.trim())
                .map_err(|e| anyhow!("--custodian-vkey {pin:?}: {e}; {}", crate::key::VKEY_FORM))?;
            if pin != vkey {
                bail!(
                    "the custodian at {url} answers with the key {vkey}, not the pinned {pin}: \
                     nothing was deposited"
                );
            }
        }
        if keys.contains(&vkey) {
            bail!(
                "the custodian at {url} ({}) is given twice: k shares must come from k different \
                 custodians",
                Signer::of(&vkey)
            );
        }
        keys.push(vkey);
    }
    Ok(keys)
}

/// Splits `key` for `target` `threshold` of n among the custodians (their
/// URLs and their keys from [`check_custodians`]) and deposits share i with
/// the i-th, signed by `provider`; `say` gets the key's check value, then a
/// line for each share deposited. Stops at the first refusal, saying what
/// was deposited before.
pub(crate) async fn deposit_shares(
    client: &reqwest::Client,
    key: &EscrowKey,
    provider: &SignerKey,
    target: &str,
    threshold: u8,
    (urls, keys): (&[String], &[VerifierKey]),
    mut say: impl FnMut(String),
) -> Result<()> {
    let n = keys.len();
    let shares =
        u8::try_from(n).map_err(|_| anyhow!("{n} custodians: at most 255 shares per key"))?;
    let parts = split(
        key,
        Slot::of(provider.name().as_str(), target),
        threshold,
        shares,
    )?;
    say(format!("key check {}", key.check()));
    let mut done: Vec<String> = Vec::new();
    for ((share, vkey), url) in parts.iter().zip(keys).zip(urls) {
        let said = deposit_one(client, url, share, vkey, provider)
            .await
            .map_err(|e| {
                let before = if done.is_empty() {
                    "no share was deposited before".to_owned()
                } else {
                    format!("deposited before: {}", done.join(", "))
                };
                anyhow!("{e}; {before}")
            })?;
        say(format!(
            "share {} of {shares} (threshold {threshold}) -> {} at {url}: {said}",
            share.reference.index,
            Signer::of(vkey)
        ));
        done.push(format!("share {} at {url}", share.reference.index));
    }
    Ok(())
}

/// Deposits `share` with the custodian at `url` (key `to`): `deposited`
/// or `already held`.
async fn deposit_one(
    client: &reqwest::Client,
    url: &str,
    share: &Share,
    to: &VerifierKey,
    provider: &SignerKey,
) -> Result<&'static str> {
    let d = deposit::make(share, to, provider)?;
    let body = serde_json::to_vec(&d).context("encoding the deposit")?;
    let (status, answer) = ask(client, url, "/api/v1/shares", Some(body)).await?;
    match status {
        201 => Ok("deposited"),
        200 => Ok("already held"),
        409 => bail!(
            "the custodian at {url} already holds a different share of another key for this \
             target ({}): a key is split once; recover it instead",
            refusal(status, &answer)
        ),
        _ => bail!(
            "the custodian at {url} refused share {}: {}",
            share.reference.index,
            refusal(status, &answer)
        ),
    }
}

/// The request a bundle holds, as the custodians' sealed boxes name it.
pub(crate) struct Request {
    /// The entry's exact bytes.
    pub(crate) entry: Vec<u8>,
    /// Its C2SP tlog-proof.
    pub(crate) proof: String,
    /// The agency's opening, as JSON.
    pub(crate) opening: serde_json::Value,
    /// The target whose key is asked for.
    pub(crate) target: String,
    /// The log's origin (from the proof's checkpoint).
    pub(crate) origin: String,
    /// The entry's index.
    pub(crate) index: u64,
    /// The entry's leaf hash.
    pub(crate) leaf_hash: daylight_core::Hash,
    /// The key's slot with its custodians: the provider the request is
    /// addressed to, and the target.
    pub(crate) slot: Slot,
}

/// Reads the bundle in `dir` (`entry`, `proof`, `opening.json`, and
/// `target` unless `target` is given).
pub(crate) fn read_bundle(dir: &Path, target: Option<&str>) -> Result<Request> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| {
            anyhow!(
                "reading {}: {e}; a bundle holds entry, proof and opening.json from `daylight \
                 agency submit --out DIR`",
                path.display()
            )
        })
    };
    let entry = read("entry")?;
    let proof = String::from_utf8(read("proof")?).context("the bundle's proof is not text")?;
    let opening: serde_json::Value =
        serde_json::from_slice(&read("opening.json")?).context("the bundle's opening.json")?;
    let target = match target {
        Some(t) => t.to_owned(),
        None => String::from_utf8(read("target").map_err(|e| anyhow!("{e}, or give --target"))?)
            .context("the bundle's target file")?
            .trim()
            .to_owned(),
    };
    let record = SignedRecord::parse(&entry).context("the bundle's entry")?;
    let provider = record.provider().ok_or_else(|| {
        anyhow!(
            "the bundle's entry is a {}, not a request or emergency to a provider",
            record.kind()
        )
    })?;
    let slot = Slot::of(provider, &target);
    let parsed = TlogProof::parse(proof.as_bytes()).context("the bundle's proof")?;
    let note = Note::parse(&parsed.checkpoint).context("the bundle's checkpoint")?;
    let origin = Checkpoint::parse_text(note.text())
        .context("the bundle's checkpoint")?
        .origin;
    Ok(Request {
        leaf_hash: leaf_hash(&entry),
        index: parsed.index.0,
        entry,
        proof,
        opening,
        target,
        origin,
        slot,
    })
}

/// One custodian's share, checked.
pub(crate) struct Answer {
    /// The custodian, `name+keyid`.
    pub(crate) custodian: String,
    /// Its share, opened.
    pub(crate) share: Share,
    /// Its receipt's index in the log.
    pub(crate) receipt: u64,
}

/// Asks the custodian at `url` for its share, opens it with the agency's
/// key, and checks its receipt in the log.
async fn release_from(
    client: &reqwest::Client,
    url: &str,
    log: &str,
    req: &Request,
    agency: &SignerKey,
) -> Result<Answer> {
    let released = ask_release(client, url, req).await?;
    let share = open_share(&released, req, agency)?;
    check_receipt(client, log, &released, req).await?;
    Ok(Answer {
        custodian: released.custodian,
        share,
        receipt: released.receipt.index,
    })
}

/// `POST /api/v1/release` of the request to the custodian at `url`: its
/// answer, or its refusal as an error.
pub(crate) async fn ask_release(
    client: &reqwest::Client,
    url: &str,
    req: &Request,
) -> Result<Released> {
    let body = serde_json::json!({
        "entry": BASE64.encode(&req.entry),
        "proof": req.proof,
        "opening": req.opening,
        "target": req.target,
    });
    let body = serde_json::to_vec(&body).context("encoding the release request")?;
    let (status, answer) = ask(client, url, "/api/v1/release", Some(body)).await?;
    if status != 200 {
        bail!("refused ({})", refusal(status, &answer));
    }
    serde_json::from_value(answer)
        .map_err(|e| anyhow!("answered something that is not a release: {e}"))
}

/// What a custodian's sealed share for `req` is bound to: the request and
/// the custodian (`name+keyid`).
pub(crate) fn release_context(req: &Request, custodian: &str) -> Context {
    Context::Release {
        origin: req.origin.clone(),
        index: req.index,
        leaf_hash: req.leaf_hash.to_hex(),
        custodian: custodian.to_owned(),
        slot: req.slot.to_hex(),
    }
}

/// Opens a released share with the agency's key, for this request and
/// custodian; it must be the share the custodian says it released.
pub(crate) fn open_share(released: &Released, req: &Request, agency: &SignerKey) -> Result<Share> {
    let share = open(
        &released.sealed,
        agency,
        &release_context(req, &released.custodian),
    )
    .map_err(|e| anyhow!("its share does not open with the agency's key: {e}"))?;
    if share.reference.for_receipt(&req.leaf_hash) != released.share {
        bail!("the share it sealed is not the share it says it released");
    }
    // The context binds the slot already; a share that names another
    // target's slot inside is refused all the same.
    if share.slot != req.slot {
        bail!("the share it sealed is for another target's key");
    }
    Ok(share)
}

/// The receipt a custodian names must be in the log: a share release
/// signed by that custodian, for this request, naming the same share.
pub(crate) async fn check_receipt(
    client: &reqwest::Client,
    log: &str,
    released: &Released,
    req: &Request,
) -> Result<()> {
    let index = released.receipt.index;
    let record = fetch_receipt(client, log, released).await?;
    if record.signer().to_string() != released.custodian {
        bail!(
            "entry {index} is signed by {}, not by the custodian {}",
            record.signer(),
            released.custodian
        );
    }
    match record.body() {
        Body::Release(r)
            if r.entry.index.0 == req.index
                && r.entry.leaf_hash == req.leaf_hash
                && r.share == Some(released.share) =>
        {
            Ok(())
        }
        _ => bail!(
            "entry {index} is not a release of share {} for request {}",
            released.share.index,
            req.index
        ),
    }
}

/// The receipt a custodian names, from the log: the log's entry at its
/// index, whose canonical bytes must hash to the leaf hash the log and the
/// custodian give.
pub(crate) async fn fetch_receipt(
    client: &reqwest::Client,
    log: &str,
    released: &Released,
) -> Result<SignedRecord> {
    let index = released.receipt.index;
    let view = crate::agency::get_json(client, log, &format!("/api/v1/entries/{index}"))
        .await
        .with_context(|| format!("its receipt (entry {index}) is not in the log"))?;
    let mut bytes = Vec::new();
    daylight_schemas::canonical::write(&view["record"], &mut bytes)
        .map_err(|e| anyhow!("the log's entry {index} is not a record: {e}"))?;
    let leaf = leaf_hash(&bytes).to_hex();
    if view["leaf_hash"].as_str() != Some(leaf.as_str()) || leaf != released.receipt.leaf_hash {
        bail!("the log's entry {index} is not the receipt it names (leaf hash differs)");
    }
    SignedRecord::parse(&bytes)
        .map_err(|e| anyhow!("the log's entry {index} is not a valid record: {e}"))
}

async fn recover_command(args: &RecoverArgs) -> Result<()> {
    let req = read_bundle(&args.bundle, args.target.as_deref())?;
    let agency = read_signer(&args.key)?;
    let client = client()?;
    let (key, answers) = recover_key(&client, &args.custodians, &args.log, &req, &agency).await?;
    for (a, url) in &answers {
        let r = &a.share.reference;
        println!(
            "share {} of {} (threshold {}) from {} at {url}: receipt at index {}",
            r.index, r.shares, r.threshold, a.custodian, a.receipt
        );
    }
    match &args.out {
        Some(out) => {
            write_secret_text(out, &key.to_hex())?;
            println!("key {} written to {}", key.check(), out.display());
        }
        None => println!("{}", key.to_hex()),
    }
    Ok(())
}

/// Asks the custodians at `urls`, in order, for their shares of the
/// request's target key until k (the first share's threshold) answered,
/// each from a different custodian with a different share, opened and its
/// receipt checked in the log at `log`; puts the key together. The key and
/// who answered; fewer than k is an error saying who refused and why.
///
/// Custodians are asked in waves, each wave at once: as many as shares are
/// still missing (two at first: no split has a threshold below 2). A
/// release waits for the log to prove the custodian's receipt, so asking
/// one after another would add those waits up; asking more than are
/// missing would release, and log, shares nobody needs.
pub(crate) async fn recover_key<'a>(
    client: &reqwest::Client,
    urls: &'a [String],
    log: &str,
    req: &Request,
    agency: &SignerKey,
) -> Result<(EscrowKey, Vec<(Answer, &'a str)>)> {
    let log = log.trim_end_matches('/');
    let mut answers: Vec<(Answer, &str)> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut asked = 0;
    loop {
        let need = answers
            .first()
            .map_or(2, |(a, _)| usize::from(a.share.reference.threshold));
        if answers.len() >= need || asked == urls.len() {
            break;
        }
        let wave = &urls[asked..urls.len().min(asked + need - answers.len())];
        asked += wave.len();
        let results = futures::future::join_all(
            wave.iter()
                .map(|url| release_from(client, url, log, req, agency)),
        )
        .await;
        for (url, result) in wave.iter().zip(results) {
            match result {
                Ok(a) => {
                    let same = answers.iter().any(|(b, _)| {
                        b.custodian == a.custodian
                            || b.share.reference.index == a.share.reference.index
                    });
                    if same {
                        refused.push(format!(
                            "{url}: {} answered already (or its share {} did)",
                            a.custodian, a.share.reference.index
                        ));
                    } else {
                        answers.push((a, url));
                    }
                }
                Err(e) => refused.push(format!("{url}: {e:#}")),
            }
        }
    }
    let shares: Vec<Share> = answers.iter().map(|(a, _)| a.share.clone()).collect();
    let key = recover(&shares).map_err(|e| {
        let answered: BTreeSet<&str> = answers.iter().map(|(_, u)| *u).collect();
        let answered = if answered.is_empty() {
            "no custodian released a share".to_owned()
        } else {
            format!(
                "released by {}",
                answered.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        let refused = if refused.is_empty() {
            String::new()
        } else {
            format!("; refused: {}", refused.join("; "))
        };
        anyhow!("cannot recover the key: {e} ({answered}{refused})")
    })?;
    Ok((key, answers))
}
