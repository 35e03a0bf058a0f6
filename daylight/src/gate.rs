//! `daylight gate`: the provider's offline release decision (`verify`), a
//! starting policy from a live log (`policy`), release and refusal
//! receipts, and the provider's published standards (`publish-policy`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{ArgGroup, Args, Subcommand};
use daylight_auditor::mirror::LocalTiles;
use daylight_auditor::AuditDir;
use daylight_core::tile::{parse_entry_bundle, BundleCoord, TileHashReader, TILE_WIDTH};
use daylight_core::tree::{stored_hash_index, HashReader as _, TreeError};
use daylight_core::{Hash, LeafIndex, TlogProof, TreeSize};
use daylight_gate::{
    decide_later, parse_opening, policy_record, refusal_receipt, release_receipt, Decision, Later,
    MirrorInput, MirrorView, Policy,
};
use daylight_ledger::Ledger;
use daylight_schemas::Kind;

use crate::key::read_signer;

/// Gate commands.
#[derive(Subcommand)]
pub enum GateCommand {
    /// Print a starting policy for a log (its key, witnesses, quorum, agencies
    /// and courts, its tlog-mirrors commented out, and a conservative,
    /// commented set of content lines), for review before use.
    Policy {
        /// The log's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        log: String,
        /// This provider's name (its registered key's name), if known.
        #[arg(long)]
        provider: Option<String>,
        /// How old, in seconds, the newest witness cosignature may be.
        #[arg(long, default_value_t = 86_400)]
        max_age: u64,
    },
    /// Publish the policy's content lines (what a request may ask; only
    /// those) as a `policy` record signed by the provider's key, appended to
    /// the log; prints the entry's index.
    PublishPolicy {
        /// The gate policy file whose content lines to publish.
        #[arg(long)]
        policy: PathBuf,
        /// The provider's key file (its registered key).
        #[arg(long)]
        key: PathBuf,
        /// The log's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        log: String,
    },
    /// Decide offline whether a bundle allows release: exit 0 and one `ALLOW ...`
    /// line, exit 1 and one `DENY <reason-code>: ...` line, exit 2 for usage
    /// errors and unreadable files.
    Verify(VerifyArgs),
    /// Demo key vault: create a vault whose per-target escrowed keys only
    /// `gate release` hands out.
    VaultInit {
        /// The vault's directory (created; must not hold a vault yet).
        #[arg(long)]
        vault: PathBuf,
    },
    /// Demo key vault: decide as `verify` does and, on ALLOW, print the
    /// target's escrowed key on a second line. Needs --opening and --target.
    Release {
        /// The vault's directory (from `gate vault-init`).
        #[arg(long)]
        vault: PathBuf,
        /// As for `verify`.
        #[command(flatten)]
        verify: VerifyArgs,
    },
}

/// The demo vault's secret, in the vault directory.
const VAULT_SECRET: &str = "vault.secret";
/// Domain separation for the demo vault's per-target keys.
const VAULT_DOMAIN: &[u8] = b"daylight/demo-vault/v1\n";

/// Arguments of `daylight gate verify`.
#[derive(Args)]
#[command(group(ArgGroup::new("receipt").args(["release_key", "refusal_key"]).multiple(true)))]
pub struct VerifyArgs {
    /// The gate policy file (see gate/README.md).
    #[arg(long)]
    policy: PathBuf,
    /// The entry: the exact signed record bytes.
    #[arg(long)]
    entry: PathBuf,
    /// The C2SP tlog-proof of the entry.
    #[arg(long)]
    proof: PathBuf,
    /// The agency's opening (opening.json); needs --target.
    #[arg(long, requires = "target")]
    opening: Option<PathBuf>,
    /// The target identifier asked about; needs --opening.
    #[arg(long, requires = "opening")]
    target: Option<String>,
    /// This provider's name; overrides the policy's daylight-provider line.
    #[arg(long)]
    provider: Option<String>,
    /// On ALLOW, sign a `release` receipt with this provider key file.
    #[arg(long, requires = "release_out")]
    release_key: Option<PathBuf>,
    /// Where to write the release receipt (never over an existing file).
    #[arg(long, requires = "release_key")]
    release_out: Option<PathBuf>,
    /// On a DENY for the request's content (a policy content line), sign a
    /// `refusal` record naming the entry and the reason with this provider
    /// key file. Other refusals are never logged.
    #[arg(long, requires = "refusal_out")]
    refusal_key: Option<PathBuf>,
    /// Where to write the refusal record (never over an existing file).
    #[arg(long, requires = "refusal_key")]
    refusal_out: Option<PathBuf>,
    /// Also append the receipt (release or refusal) to the log at this URL.
    /// A release receipt the log does not accept makes the answer `DENY
    /// release_not_logged` and is removed; a refusal the log does not accept
    /// is kept, and the DENY line says so.
    #[arg(long, requires = "receipt")]
    submit: Option<String>,
    /// An emergency past its ratify-by deadline: the court's ratification
    /// entry (exact record bytes), verified like the main bundle.
    #[arg(long, requires = "ratification_proof")]
    ratification_entry: Option<PathBuf>,
    /// The C2SP tlog-proof of the ratification entry.
    #[arg(long, requires = "ratification_entry")]
    ratification_proof: Option<PathBuf>,
    /// The provider's verified mirror of the log (`daylight audit --follow
    /// --dir DIR`, read through its ledger `DIR/ledger.db`): refuse entries
    /// withdrawn, denied by a court, or signed by a key the log's registry
    /// revoked. A mirror that cannot be read is a refusal.
    #[arg(long)]
    mirror: Option<PathBuf>,
}

/// Runs a gate command. `verify` ends the process with its own exit code.
pub fn run(cmd: GateCommand) -> Result<()> {
    match cmd {
        GateCommand::Policy {
            log,
            provider,
            max_age,
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let text = runtime.block_on(starting_policy(&log, provider.as_deref(), max_age))?;
            print!("{text}");
            if let Err(e) = Policy::parse(&text) {
                eprintln!("daylight: warning: edit this policy before use: {e}");
            }
            Ok(())
        }
        GateCommand::PublishPolicy { policy, key, log } => {
            let index = publish_policy(&policy, &key, &log)?;
            println!("{index}");
            Ok(())
        }
        GateCommand::VaultInit { vault } => {
            vault_init(&vault)?;
            println!("demo vault created in {}", vault.display());
            Ok(())
        }
        GateCommand::Release { vault, verify } => {
            let code = release(&vault, &verify);
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            std::process::exit(i32::from(code));
        }
        GateCommand::Verify(args) => {
            let code = verify(&args, None);
            // Flush before leaving: the one line must not be lost.
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            std::process::exit(i32::from(code));
        }
    }
}

/// What `verify` found out, as an exit code.
#[derive(Clone, Copy)]
enum Outcome {
    Allow = 0,
    Deny = 1,
    Usage = 2,
}

impl From<Outcome> for i32 {
    fn from(o: Outcome) -> i32 {
        o as i32
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!(
            "{} does not exist: check the path (a policy comes from `daylight gate policy`, \
             a bundle's entry, proof and opening.json from `daylight agency submit`)",
            path.display()
        ),
        _ => anyhow!("reading {}: {e}", path.display()),
    })
}

/// Decides; on ALLOW prints the line and, with a vault secret, the target's
/// escrowed key on a second line.
fn verify(args: &VerifyArgs, vault: Option<&[u8; 32]>) -> Outcome {
    let inputs = match Inputs::load(args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("daylight: {e:#}");
            return Outcome::Usage;
        }
    };
    // A malformed opening is outside data, like the entry: a refusal.
    let opening = match &inputs.opening {
        None => None,
        Some(bytes) => match parse_opening(bytes) {
            Ok(o) => Some(o),
            Err(denied) => {
                println!("DENY {denied}");
                return Outcome::Deny;
            }
        },
    };
    // The mirror is outside data too: one that cannot be read is a refusal
    // (mirror_missing), never a usage error that a caller might retry without it.
    let mirror: Option<Result<MirrorView, MirrorFault>> = args.mirror.as_deref().map(|dir| {
        // The leaves the gate must compare: the bundle's index and the
        // ratification's. A proof that does not parse is refused by the
        // decision itself.
        let asked: Vec<LeafIndex> = std::iter::once(inputs.proof.as_slice())
            .chain(inputs.ratification.as_ref().map(|(_, p)| p.as_slice()))
            .filter_map(|p| TlogProof::parse(p).ok().map(|p| p.index))
            .collect();
        read_mirror(dir, &asked)
    });
    let later = Later {
        ratification: inputs
            .ratification
            .as_ref()
            .map(|(e, p)| (e.as_slice(), p.as_slice())),
        mirror: match &mirror {
            None => MirrorInput::None,
            Some(Ok(view)) => MirrorInput::View(view),
            Some(Err(MirrorFault::Missing(why))) => MirrorInput::Unavailable(why),
            Some(Err(MirrorFault::Invalid(why))) => MirrorInput::Invalid(why),
        },
    };
    let now = chrono::Utc::now();
    let decision = decide_later(
        &inputs.policy,
        &inputs.entry,
        &inputs.proof,
        opening.as_ref().zip(args.target.as_deref()),
        &later,
        now,
    );
    let Decision::Allow(allowed) = &decision else {
        let mut line = decision.to_string();
        if let (Some(refused), Some(key), Some(out)) =
            (decision.refused(), &inputs.refusal_key, &args.refusal_out)
        {
            match log_refusal(refused, key, out, args.submit.as_deref(), now) {
                Ok(said) => line.push_str(&said),
                Err(e) => {
                    eprintln!("daylight: {e:#}");
                    return Outcome::Usage;
                }
            }
        }
        println!("{line}");
        return Outcome::Deny;
    };
    let mut line = decision.to_string();
    if let (Some(key), Some(out)) = (&inputs.release_key, &args.release_out) {
        let receipt = match release_receipt(allowed, key, now) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("daylight: {e}");
                return Outcome::Usage;
            }
        };
        if let Err(e) = write_new(out, receipt.as_bytes()) {
            eprintln!("daylight: {e:#}");
            return Outcome::Usage;
        }
        line.push_str(&format!("; release receipt {}", out.display()));
        if let Some(log) = &args.submit {
            match submit(log, receipt.as_bytes(), "the release receipt") {
                Ok(index) => line.push_str(&format!(" logged at index {index}")),
                Err(e) => {
                    // No release without its public receipt: take it back.
                    let _ = std::fs::remove_file(out);
                    let detail = format!("{e:#}").replace(['\n', '\r'], " ");
                    println!("DENY release_not_logged: {detail}");
                    return Outcome::Deny;
                }
            }
        }
    }
    println!("{line}");
    if let (Some(secret), Some(target)) = (vault, &args.target) {
        println!("{}", escrowed_key(secret, target));
    }
    Outcome::Allow
}

/// Signs the refusal, writes it to `out` and, with `log`, submits it: the
/// words the DENY line ends with. A refusal the log does not take is kept
/// (the DENY stands either way; the file can be submitted again).
fn log_refusal(
    refused: &daylight_gate::Refused,
    key: &daylight_core::SignerKey,
    out: &Path,
    log: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String> {
    let record = refusal_receipt(refused, key, now)?;
    write_new(out, record.as_bytes())?;
    let mut said = format!("; refusal receipt {}", out.display());
    if let Some(log) = log {
        match submit(log, record.as_bytes(), "the refusal") {
            Ok(index) => said.push_str(&format!(" logged at index {index}")),
            Err(e) => {
                let detail = format!("{e:#}").replace(['\n', '\r'], " ");
                said.push_str(&format!(" not logged: {detail}"));
            }
        }
    }
    Ok(said)
}

/// `gate publish-policy`: the policy's content lines as a `policy` record
/// signed by `key`, bound to and appended to the log at `log`; its index.
fn publish_policy(policy: &Path, key: &Path, log: &str) -> Result<u64> {
    let text = String::from_utf8(read(policy)?)
        .with_context(|| format!("policy {}: not UTF-8", policy.display()))?;
    let policy = Policy::parse(&text).with_context(|| format!("policy {}", policy.display()))?;
    let key = read_signer(key)?;
    let log = log.trim_end_matches('/');
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let origin = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let info = crate::agency::get_json(&client, log, "/api/v1/log").await?;
        info["origin"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{log}/api/v1/log names no origin"))
    })?;
    let record = policy_record(&policy, &key, &origin, chrono::Utc::now())?;
    submit(log, record.as_bytes(), "the policy")
}

fn vault_init(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).context("reading the system random source")?;
    let path = dir.join(VAULT_SECRET);
    crate::key::write_secret_text(&path, &daylight_core::Hash(secret).to_hex())
}

fn read_vault(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join(VAULT_SECRET);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{}: not a vault secret (64 hex digits)", path.display());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .with_context(|| format!("{}: not hex", path.display()))?;
    }
    Ok(out)
}

/// The demo vault's escrowed key for `target`: SHA-256 over a domain
/// string, the vault secret and the target (RFC 6962 leaf hashing, whose
/// 0x00 prefix is one more fixed byte).
fn escrowed_key(secret: &[u8; 32], target: &str) -> String {
    let mut m = Vec::with_capacity(VAULT_DOMAIN.len() + 32 + target.len());
    m.extend_from_slice(VAULT_DOMAIN);
    m.extend_from_slice(secret);
    m.extend_from_slice(target.as_bytes());
    daylight_core::leaf_hash(&m).to_hex()
}

fn release(vault: &Path, args: &VerifyArgs) -> Outcome {
    if args.opening.is_none() || args.target.is_none() {
        eprintln!("daylight: gate release needs --opening and --target: the vault hands out one target's key");
        return Outcome::Usage;
    }
    match read_vault(vault) {
        Ok(secret) => verify(args, Some(&secret)),
        Err(e) => {
            eprintln!("daylight: {e:#}");
            Outcome::Usage
        }
    }
}

struct Inputs {
    policy: Policy,
    entry: Vec<u8>,
    proof: Vec<u8>,
    opening: Option<Vec<u8>>,
    /// The ratification bundle: entry bytes, proof.
    ratification: Option<(Vec<u8>, Vec<u8>)>,
    release_key: Option<daylight_core::SignerKey>,
    refusal_key: Option<daylight_core::SignerKey>,
}

impl Inputs {
    fn load(args: &VerifyArgs) -> Result<Inputs> {
        let text = String::from_utf8(read(&args.policy)?)
            .with_context(|| format!("policy {}: not UTF-8", args.policy.display()))?;
        let mut policy =
            Policy::parse(&text).with_context(|| format!("policy {}", args.policy.display()))?;
        if let Some(p) = &args.provider {
            policy.set_provider(p).context("--provider")?;
        }
        if policy.provider().is_none() {
            bail!(
                "policy {} names no provider: add a daylight-provider line or pass --provider",
                args.policy.display()
            );
        }
        for out in [&args.release_out, &args.refusal_out].into_iter().flatten() {
            if out.exists() {
                bail!("{} exists; a receipt is never overwritten", out.display());
            }
        }
        Ok(Inputs {
            policy,
            entry: read(&args.entry)?,
            proof: read(&args.proof)?,
            opening: args.opening.as_deref().map(read).transpose()?,
            ratification: match (&args.ratification_entry, &args.ratification_proof) {
                (Some(e), Some(p)) => Some((read(e)?, read(p)?)),
                _ => None,
            },
            release_key: args.release_key.as_deref().map(read_signer).transpose()?,
            refusal_key: args.refusal_key.as_deref().map(read_signer).transpose()?,
        })
    }
}

/// Why a mirror directory gave no [`MirrorView`].
#[derive(Debug)]
enum MirrorFault {
    /// It cannot be read (nothing verified yet, no ledger, a file missing
    /// or damaged): `mirror_missing`.
    Missing(String),
    /// It was read and does not hold together (its tiles do not give the
    /// root it verified): `mirror_invalid`.
    Invalid(String),
}

impl From<anyhow::Error> for MirrorFault {
    fn from(e: anyhow::Error) -> MirrorFault {
        MirrorFault::Missing(format!("{e:#}"))
    }
}

/// Reads what the gate needs from the verified mirror `daylight audit
/// --follow` keeps in `dir`, without reading the whole log: O(log n + k)
/// for k registry records and entries about the ones asked.
///
/// - `state.json`: the size and root the auditor last verified, and the
///   checkpoint kept for exactly that size (so a sync running meanwhile
///   cannot pair one size with another's checkpoint);
/// - `ledger.db`, the auditor's ledger (committed before `state.json`, so
///   it may hold more; only entries below the size are used): the
///   registry's records (kept whole) and the withdrawals and ratifications
///   that refer to an index asked, whose bytes come from the entry
///   bundles;
/// - the leaf hashes at the indices asked and at each of those entries,
///   from the mirror's tiles, authenticated against that root.
///
/// The gate checks the checkpoint under the policy, the size and root
/// against it, and each entry's bytes against its authenticated leaf.
fn read_mirror(dir: &Path, asked: &[LeafIndex]) -> Result<MirrorView, MirrorFault> {
    let rerun = |why: String| {
        MirrorFault::Missing(format!(
            "{why}: run `daylight audit --follow --dir {}`",
            dir.display()
        ))
    };
    let unverified = || rerun(format!("no verified mirror in {}", dir.display()));
    let file = |path: &Path| -> Result<Vec<u8>, MirrorFault> {
        match std::fs::read(path) {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(rerun(format!("{} is missing", path.display())))
            }
            Err(e) => Err(rerun(format!("reading {}: {e}", path.display()))),
        }
    };
    let state_path = dir.join("state.json");
    if !state_path.exists() {
        return Err(unverified());
    }
    let state: daylight_auditor::MirrorState = serde_json::from_slice(&file(&state_path)?)
        .with_context(|| format!("{}: damaged", state_path.display()))?;
    if state.size == 0 {
        return Err(unverified());
    }
    let size = state.size;
    let root = Hash::from_base64(&state.root)
        .ok_or_else(|| anyhow!("{}: damaged (its root)", state_path.display()))?;
    // The kept checkpoint for that state; `DIR/checkpoint` is the same bytes
    // but is rewritten before state.json, so it may be one sync ahead.
    let kept = if state.checkpoint.is_empty() || state.checkpoint.contains("..") {
        "checkpoint".to_owned()
    } else {
        state.checkpoint.clone()
    };
    let checkpoint = file(&dir.join(&kept))?;
    let audit = AuditDir::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let Some(pinned) = audit
        .pinned()
        .with_context(|| format!("reading {}", dir.join("log.json").display()))?
    else {
        return Err(unverified());
    };

    // Which entries to read, from the ledger, as of one commit (a read
    // transaction: the auditor may write, or rebuild it, meanwhile).
    let ledger = Ledger::read_only(&dir.join(daylight_auditor::LEDGER_FILE), &pinned.origin)
        .map_err(|e| rerun(format!("no usable ledger in {} ({e})", dir.display())))?;
    let snapshot = ledger
        .conn()
        .unchecked_transaction()
        .context("reading the mirror's ledger")?;
    let held = ledger.size().context("reading the mirror's ledger")?;
    if held < size {
        return Err(rerun(format!(
            "the ledger in {} holds {held} entries, the mirror verified {size}",
            dir.display()
        )));
    }
    let asked: BTreeSet<u64> = asked.iter().map(|i| i.0).filter(|&i| i < size).collect();
    let mut entries: BTreeMap<u64, Vec<u8>> = ledger
        .records(Kind::Registry)
        .context("reading the mirror's ledger")?
        .into_iter()
        .filter(|(i, _)| *i < size)
        .collect();
    // The ledger's leaf at each index asked and at its last verified entry:
    // checked below against the authenticated tiles, so a ledger of another
    // history (or damaged) is refused rather than trusted.
    let mut ledger_leaves = BTreeMap::new();
    for i in asked.iter().copied().chain(size.checked_sub(1)) {
        let s = ledger.get(i).context("reading the mirror's ledger")?;
        ledger_leaves.insert(i, s.map(|s| s.leaf_hash));
    }
    let mut in_bundles = BTreeSet::new();
    for &i in &asked {
        for j in ledger.referrers(i).context("reading the mirror's ledger")? {
            if j >= size || entries.contains_key(&j) {
                continue;
            }
            // An entry the ledger lists without its row is read too: the
            // gate parses it (the safe side).
            let about = ledger.get(j).context("reading the mirror's ledger")?;
            if about.is_none_or(|s| matches!(s.kind, Some(Kind::Withdrawal | Kind::Ratification))) {
                in_bundles.insert(j);
            }
        }
    }
    drop(snapshot);

    // Their bytes, from the entry bundles (each read once).
    let mut bundle: Option<(BundleCoord, Vec<u8>)> = None;
    for i in in_bundles {
        let coord = BundleCoord {
            index: i / TILE_WIDTH,
            // At most TILE_WIDTH (256).
            width: u16::try_from((size - i / TILE_WIDTH * TILE_WIDTH).min(TILE_WIDTH))
                .unwrap_or(u16::MAX),
        };
        let path = dir.join(coord.path());
        let data = match bundle.take() {
            Some((c, data)) if c == coord => data,
            _ => file(&path)?,
        };
        let list = parse_entry_bundle(&data, coord.width)
            .with_context(|| format!("{}: not an entry bundle", path.display()))?;
        // Within the bundle: i % TILE_WIDTH < width.
        let at = usize::try_from(i % TILE_WIDTH).unwrap_or(usize::MAX);
        let entry = list
            .get(at)
            .ok_or_else(|| anyhow!("{}: no entry {i}", path.display()))?;
        entries.insert(i, entry.to_vec());
        bundle = Some((coord, data));
    }

    // The leaves, from the tiles, authenticated against the verified root.
    let wanted: Vec<u64> = asked
        .iter()
        .chain(entries.keys())
        .chain(ledger_leaves.keys())
        .copied()
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    let tiles = LocalTiles::new(&audit);
    let reader = TileHashReader::new(TreeSize(size), root, &tiles);
    let stored: Vec<u64> = wanted.iter().map(|&i| stored_hash_index(0, i)).collect();
    let hashes = reader.read_hashes(&stored).map_err(|e| match e {
        TreeError::Storage(_) => rerun(format!("the tiles in {}: {e}", dir.display())),
        _ => MirrorFault::Invalid(format!(
            "the tiles in {} are not those of the tree it verified (size {size}): {e}",
            dir.display()
        )),
    })?;
    let leaves: BTreeMap<u64, Hash> = wanted.into_iter().zip(hashes).collect();
    for (i, held) in &ledger_leaves {
        if held.as_ref() != leaves.get(i) {
            return Err(MirrorFault::Invalid(format!(
                "the ledger in {} does not hold the verified tree's entry {i}",
                dir.display()
            )));
        }
    }
    Ok(MirrorView {
        checkpoint,
        size,
        root,
        leaves: leaves.into_iter().collect(),
        entries: entries
            .into_iter()
            .map(|(i, bytes)| (LeafIndex(i), bytes))
            .collect(),
    })
}

fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// Appends a record (`what`, for messages) to the log; returns its index.
fn submit(log: &str, record: &[u8], what: &str) -> Result<u64> {
    let log = log.trim_end_matches('/');
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        crate::agency::post_record(&client, log, record)
            .await
            .with_context(|| format!("submitting {what}"))
    })
}

/// The conservative starting set of content lines `gate policy` writes:
/// what a request may ask, each line with what it does. Refusals by these
/// lines can be logged (`gate verify --refusal-key`) and the lines
/// published (`gate publish-policy`).
pub(crate) const STARTING_CONTENT: &str = "\
# What a request may ask (content lines, gate/README.md). A request one of them
# refuses is DENY <reason>; `gate verify --refusal-key` logs that refusal, and
# `gate publish-policy` publishes these lines. Add `for AGENCY` (an agency key's
# name) to a line to apply it to that agency only.
# Only orders issued by a court (emergencies are often issued by a prosecutor or
# the police: add those types if you allow emergencies).
daylight-issuers allow court
# Never unlock devices.
daylight-categories deny device_unlock
# At most 5 targets per request.
daylight-max-targets 5
# A request may authorise access for at most 90 days.
daylight-max-validity-days 90
# Only requests from these jurisdictions (a country covers its subdivisions):
# daylight-jurisdictions allow US GB DE
# Never requests from these jurisdictions:
# daylight-jurisdictions deny <CODE>...
# Only for these offences (e.g. those of EU 2023/1543 Art. 5(4)):
# daylight-offences allow terrorism homicide kidnapping child_sexual_abuse
";

/// A policy for the log at `log`, from its published identity and registry.
pub(crate) async fn starting_policy(
    log: &str,
    provider: Option<&str>,
    max_age: u64,
) -> Result<String> {
    let log = log.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut witnesses = crate::agency::log_policy(&client, log).await?;
    for l in &mut witnesses.logs {
        l.url = Some(log.to_owned());
    }
    for g in &mut witnesses.groups {
        if g.name == "quorum" {
            g.name = "witnesses".into();
        }
    }
    let registry = crate::agency::get_json(&client, log, "/api/v1/agencies").await?;
    let keys = registry["keys"]
        .as_array()
        .ok_or_else(|| anyhow!("/api/v1/agencies has no keys list"))?;

    let origin = witnesses
        .logs
        .first()
        .map(|l| l.key.name().to_string())
        .unwrap_or_default();
    let mut out = format!(
        "# Daylight gate policy for the log {origin}, fetched from {log} at {}.\n\
         # Review every line: the gate trusts exactly the keys named here. Check the\n\
         # log and witness keys out of band; remove agencies you do not honour.\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    out.push_str(&witnesses.to_text());
    let info = crate::agency::get_json(&client, log, "/api/v1/log").await?;
    out.push_str(&older_log_keys(&info, log)?);
    let mut providers = Vec::new();
    for k in keys {
        if !k["revoked_at"].is_null() {
            continue;
        }
        let (Some(vkey), Some(role)) = (k["vkey"].as_str(), k["role"].as_str()) else {
            continue;
        };
        // Only keys that parse make it into the policy.
        let Ok(parsed) = daylight_core::VerifierKey::parse(vkey) else {
            continue;
        };
        let added = k["added_at"]
            .as_u64()
            .map(|i| format!(", registered at entry {i}"))
            .unwrap_or_default();
        match role {
            "agency" | "court" => {
                out.push_str(&format!(
                    "# {role} {}{added}\ndaylight-{role} {parsed}\n",
                    parsed.name()
                ));
            }
            "provider" => providers.push(parsed.name().to_string()),
            _ => {}
        }
    }
    match provider {
        Some(p) => out.push_str(&format!("daylight-provider {p}\n")),
        None => {
            out.push_str(
                "# This provider's name (its registered key's name), or pass --provider.\n",
            );
            if providers.is_empty() {
                out.push_str("# daylight-provider <name>\n");
            }
            for p in providers {
                out.push_str(&format!("# daylight-provider {p}\n"));
            }
        }
    }
    out.push_str(&format!(
        "# The newest witness cosignature may be at most this many seconds old.\n\
         daylight-max-age {max_age}\n\
         # Emergency entries (before their ratify-by deadline): allow or deny.\n\
         daylight-emergencies deny\n\
         # To refuse without a fresh verified mirror (daylight audit --follow), at most\n\
         # this many seconds old, and pass --mirror DIR to gate verify:\n\
         # daylight-mirror required 3600\n"
    ));
    out.push_str(&tlog_mirror_lines(&info));
    out.push_str(STARTING_CONTENT);
    Ok(out)
}

/// The C2SP tlog-mirrors the log lists in `GET /api/v1/log`'s `mirrors`
/// (`vkey`, `url`; absent from logs without mirrors), as commented-out
/// `daylight-tlog-mirror` lines: requiring a mirror is the provider's
/// decision, made after checking out of band that the mirror is run by
/// someone other than the log operator (the list is the log's word) and
/// accepting that the gate refuses while no listed mirror has cosigned.
/// Only what parses is written: a cosignature/v1 key (in its canonical
/// form) and an http(s) URL, so a log cannot smuggle in a policy line.
fn tlog_mirror_lines(info: &serde_json::Value) -> String {
    let listed = info
        .get("mirrors")
        .and_then(|m| m.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut lines = String::new();
    let mut listed_keys = 0u64;
    for m in listed {
        let text = m["vkey"].as_str().unwrap_or_default();
        let key = match daylight_core::VerifierKey::parse(text) {
            Ok(k) if k.key_type() == daylight_core::KeyType::CosignatureV1 => k,
            _ => {
                lines.push_str(&format!(
                    "# (the log lists a mirror key {text:?}: not a cosignature/v1 key, left out)\n"
                ));
                continue;
            }
        };
        let url = m["url"]
            .as_str()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        lines.push_str(&format!("# daylight-tlog-mirror {key}{url}\n"));
        listed_keys += 1;
    }
    if listed_keys == 0 {
        lines.push_str(
            "# To refuse entries that no C2SP tlog-mirror (one the log operator does not\n\
             # control) has cosigned, list each mirror's cosignature key:\n\
             # daylight-tlog-mirror <vkey> [<url>]\n",
        );
        return lines;
    }
    // The log's own requirement, if it has one within what it lists: the
    // number of mirror cosignatures every checkpoint it publishes carries.
    let quorum = info["mirror_quorum"]
        .as_u64()
        .filter(|k| (1..=listed_keys).contains(k));
    let best_effort = match quorum {
        Some(_) => "",
        None => {
            "# The log publishes checkpoints without waiting for its mirrors: a bundle cut\n\
             # before a mirror cosigned is refused; fetch a newer proof then.\n"
        }
    };
    format!(
        "# The C2SP tlog-mirrors the log pushes to (GET /api/v1/log). To refuse entries\n\
         # that no mirror has cosigned, check out of band that a mirror is not run by the\n\
         # log operator, then uncomment its line (the gate refuses, tlog_mirror_not_cosigned,\n\
         # while too few listed mirrors have cosigned the proof's checkpoint):\n\
         {lines}{best_effort}\
         # How many of the listed mirrors must have cosigned (default 1):\n\
         # daylight-tlog-mirror-quorum {}\n",
        quorum.unwrap_or(1)
    )
}

/// The log's rotated-out keys from `GET /api/v1/log`'s `vkeys` (oldest
/// first; absent from logs that never rotated), given that document (`info`)
/// and the log's URL: a `log` line each, and a `daylight-log-key-until` line
/// with its transition end. The current key (`vkey`) is already in the C2SP
/// part.
fn older_log_keys(info: &serde_json::Value, log: &str) -> Result<String> {
    let current = info["vkey"].as_str().unwrap_or_default();
    let Some(keys) = info.get("vkeys").and_then(|v| v.as_array()) else {
        return Ok(String::new());
    };
    let mut out = String::new();
    for k in keys {
        let Some(text) = k["vkey"].as_str() else {
            continue;
        };
        if text == current {
            continue;
        }
        let key = daylight_core::VerifierKey::parse(text)
            .with_context(|| format!("/api/v1/log vkeys: {text:?}"))?;
        let at = k["replaced_at"]
            .as_u64()
            .map(|i| format!(" at entry {i}"))
            .unwrap_or_default();
        // A rotated-out key is believed only up to its end; without one the
        // gate could not bound it, so it is left out (checkpoints it alone
        // signed are refused).
        let Some(until) = k["until"].as_str() else {
            out.push_str(&format!(
                "# log key {key} was rotated out{at} with no transition end; not trusted
"
            ));
            continue;
        };
        let until = chrono::DateTime::parse_from_rfc3339(until)
            .with_context(|| format!("/api/v1/log vkeys: until {until:?}"))?
            .with_timezone(&chrono::Utc);
        out.push_str(&format!(
            "# an earlier log key, rotated out{at}: believed for checkpoints witnessed before its end\n\
             log {key} {log}\n\
             daylight-log-key-until {key} {}\n",
            until.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    Ok(out)
}
