//! `daylight custodian`: create a threshold-custody custodian, serve it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::{KeyType, SignerKey, VerifierKey};
use daylight_custodian::config::{depositor_key, CONFIG_FILE, DB_FILE, KEY_FILE, POLICY_FILE};
use daylight_custodian::{Config, Custodian, HttpLog, Settings, Store};
use daylight_gate::Policy;

use crate::key::{generate, read_signer, write_secret};

/// Custodian commands.
#[derive(Subcommand)]
pub enum CustodianCommand {
    /// Create a custodian in DIR (key, policy, settings, database); print
    /// its verifier key, to register with `daylight log add-custodian`.
    Init {
        /// The custodian's directory (created if missing; must not hold a
        /// custodian yet).
        #[arg(long)]
        dir: PathBuf,
        /// The custodian's name, e.g. `custodian.court.example`; also its
        /// key's name.
        #[arg(long)]
        name: String,
        /// The custodian's own gate policy (from `daylight gate policy --log
        /// URL --provider NAME`, reviewed); its `daylight-provider` line names
        /// the provider whose keys it holds shares of. Copied into DIR.
        #[arg(long)]
        policy: PathBuf,
        /// The log's base URL, where its release receipts go.
        #[arg(long)]
        log: String,
        /// A key whose deposits it takes (the provider's verifier key,
        /// `name+keyid+base64`); repeat for several.
        #[arg(long = "depositor", value_name = "VKEY", required = true)]
        depositors: Vec<String>,
    },
    /// Serve the custodian (GET /api/v1/custodian, POST /api/v1/shares,
    /// POST /api/v1/release) until Ctrl-C or SIGTERM.
    Serve {
        /// The custodian's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7480")]
        listen: SocketAddr,
        /// How long a release waits for the log to prove its receipt, in
        /// seconds (then 504, and nothing is released).
        #[arg(long, default_value_t = daylight_custodian::DEFAULT_RECEIPT_TIMEOUT.as_secs())]
        receipt_timeout: u64,
    },
}

/// Runs a custodian command.
pub fn run(cmd: CustodianCommand) -> Result<()> {
    match cmd {
        CustodianCommand::Init {
            dir,
            name,
            policy,
            log,
            depositors,
        } => {
            let vkey = init(&dir, &name, &policy, &log, &depositors)?;
            println!("{vkey}");
            Ok(())
        }
        CustodianCommand::Serve {
            dir,
            listen,
            receipt_timeout,
        } => serve(&dir, listen, Duration::from_secs(receipt_timeout)),
    }
}

/// Reads and checks a custodian's policy: it parses and names a provider.
fn read_policy(path: &Path) -> Result<(String, Policy)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "reading the policy {}: {e}; write one with `daylight gate policy --log URL --provider NAME`",
            path.display()
        )
    })?;
    let policy = Policy::parse(&text).with_context(|| format!("the policy {}", path.display()))?;
    if policy.provider().is_none() {
        bail!(
            "the policy {} names no provider: add a `daylight-provider NAME` line naming the \
             provider whose keys this custodian holds",
            path.display()
        );
    }
    Ok((text, policy))
}

/// Creates a custodian in `dir` with a new key named `name`; returns its
/// verifier key.
pub fn init(
    dir: &Path,
    name: &str,
    policy: &Path,
    log: &str,
    depositors: &[String],
) -> Result<VerifierKey> {
    init_with_key(
        dir,
        generate(name, KeyType::Ed25519)?,
        policy,
        log,
        depositors,
    )
}

/// Creates a custodian in `dir` that signs with `signer` (the demo
/// registers its custodians' keys before the log serves); returns its
/// verifier key.
pub fn init_with_key(
    dir: &Path,
    signer: SignerKey,
    policy: &Path,
    log: &str,
    depositors: &[String],
) -> Result<VerifierKey> {
    for file in [KEY_FILE, DB_FILE, CONFIG_FILE, POLICY_FILE] {
        let existing = dir.join(file);
        if existing.exists() {
            bail!(
                "{} already exists: {} holds a custodian",
                existing.display(),
                dir.display()
            );
        }
    }
    let (text, _) = read_policy(policy)?;
    if !(log.starts_with("http://") || log.starts_with("https://")) {
        bail!("--log {log:?} is not a URL: write it as http://HOST:PORT");
    }
    let depositors = depositors
        .iter()
        .map(|d| {
            depositor_key(d).map_err(|e| anyhow!("--depositor: {e}; {}", crate::key::VKEY_FORM))
        })
        .collect::<Result<Vec<_>>>()?;
    let config = Config {
        log: log.trim_end_matches('/').to_owned(),
        depositors,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The database holds the shares: owner only, the directory too (SQLite
    // gives its -wal and -shm files the database's mode).
    owner_only(dir, 0o700)?;
    write_secret(&dir.join(KEY_FILE), &signer)?;
    let write = |file: &str, data: &str| {
        let path = dir.join(file);
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))
    };
    write(POLICY_FILE, &text)?;
    write(CONFIG_FILE, &config.to_toml())?;
    Store::open(&dir.join(DB_FILE))?;
    owner_only(&dir.join(DB_FILE), 0o600)?;
    Ok(signer.verifier().clone())
}

/// Sets `path`'s mode to `mode` (owner-only).
fn owner_only(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("making {} owner-only", path.display()))
}

/// The custodian in `dir`, its log over HTTP.
fn open(dir: &Path, receipt_timeout: Duration) -> Result<Custodian> {
    let config_path = dir.join(CONFIG_FILE);
    let config = std::fs::read_to_string(&config_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "no custodian in {} (no {}): create one with `daylight custodian init --dir {} ...`, \
                 or check --dir",
                dir.display(),
                config_path.display(),
                dir.display()
            )
        } else {
            anyhow!("reading {}: {e}", config_path.display())
        }
    })?;
    let config = Config::parse(&config)?;
    let signer = read_signer(&dir.join(KEY_FILE))?;
    let (_, policy) = read_policy(&dir.join(POLICY_FILE))?;
    let store = Store::open(&dir.join(DB_FILE))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("setting up the HTTP client")?;
    let log = Arc::new(HttpLog::new(client, &config.log));
    Ok(Custodian::new(
        Settings {
            signer,
            policy,
            depositors: config.depositors,
            log_url: config.log,
            log,
            receipt_timeout,
        },
        store,
    )?)
}

/// A custodian serving in the background (the demo runs three).
pub struct RunningCustodian {
    addr: SocketAddr,
    info: daylight_custodian::Info,
    label: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningCustodian {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully (requests under way finish) and waits.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("custodian task")??;
        Ok(())
    }
}

/// Serves the custodian in `dir` on `addr` in the background.
pub async fn spawn(
    dir: &Path,
    addr: SocketAddr,
    receipt_timeout: Duration,
) -> Result<RunningCustodian> {
    let custodian = Arc::new(open(dir, receipt_timeout)?);
    let info = custodian.info()?;
    let label = custodian.label().to_owned();
    let listener =
        daylight_log_server::server::listen(addr).map_err(|e| crate::key::listen_error(addr, e))?;
    let addr = listener.local_addr()?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daylight_custodian::http::serve(
        listener,
        custodian,
        async {
            let _ = rx.await;
        },
    ));
    Ok(RunningCustodian {
        addr,
        info,
        label,
        stop,
        task,
    })
}

fn serve(dir: &Path, listen: SocketAddr, receipt_timeout: Duration) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let running = spawn(dir, listen, receipt_timeout).await?;
        eprintln!(
            "daylight custodian: {} serving on {} (shares of {}'s keys: {}; receipts to {})",
            running.label,
            running.url(),
            running.info.provider,
            running.info.shares,
            running.info.log
        );
        let mut running = running;
        let signalled = tokio::select! {
            () = crate::witness::shutdown_signal() => true,
            // The server ended by itself: an error to report.
            ended = &mut running.task => {
                ended.context("custodian task")?.context("serving")?;
                false
            }
        };
        if signalled {
            eprintln!("daylight custodian: shutting down");
            running.stop().await?;
        }
        Ok(())
    })
}
