//! `daylight gate`: the provider's offline release decision (`verify`), a
//! starting policy from a live log (`policy`), and release receipts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use daylight_gate::{decide, parse_opening, release_receipt, Decision, Policy};

use crate::key::read_signer;

/// Gate commands.
#[derive(Subcommand)]
pub enum GateCommand {
    /// Print a starting policy for a log (its key, witnesses, quorum, agencies
    /// and courts), for review before use.
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
    /// Also append the receipt to the log at this URL; if that fails the
    /// answer is `DENY release_not_logged` and no receipt is kept.
    #[arg(long, requires = "release_key")]
    submit: Option<String>,
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
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
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
    let now = chrono::Utc::now();
    let decision = decide(
        &inputs.policy,
        &inputs.entry,
        &inputs.proof,
        opening.as_ref().zip(args.target.as_deref()),
        now,
    );
    let Decision::Allow(allowed) = &decision else {
        println!("{decision}");
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
            match submit(log, receipt.as_bytes()) {
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
    release_key: Option<daylight_core::SignerKey>,
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
        if let Some(out) = &args.release_out {
            if out.exists() {
                bail!("{} exists; a receipt is never overwritten", out.display());
            }
        }
        Ok(Inputs {
            policy,
            entry: read(&args.entry)?,
            proof: read(&args.proof)?,
            opening: args.opening.as_deref().map(read).transpose()?,
            release_key: args.release_key.as_deref().map(read_signer).transpose()?,
        })
    }
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

/// Appends a record to the log; returns its index.
fn submit(log: &str, record: &[u8]) -> Result<u64> {
    let log = log.trim_end_matches('/');
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        crate::agency::post_record(&client, log, record)
            .await
            .context("submitting the release receipt")
    })
}

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
    let registry: serde_json::Value = client
        .get(format!("{log}/api/v1/agencies"))
        .send()
        .await
        .with_context(|| format!("reaching {log}"))?
        .error_for_status()?
        .json()
        .await
        .context("reading /api/v1/agencies")?;
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
         daylight-emergencies deny\n"
    ));
    Ok(out)
}
