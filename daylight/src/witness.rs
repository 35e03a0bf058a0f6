//! `daylight witness`: create a C2SP tlog-witness, tell it which logs to
//! cosign, serve it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::witness_protocol::checkpoint_path;
use daylight_core::{KeyType, VerifierKey};
use daylight_witness::{store, AddLog, Witness, DB_FILE, KEY_FILE};

use crate::key::{generate, read_signer, write_secret};

/// Witness commands.
#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Create a witness in DIR (database and cosignature key); print its verifier key.
    Init {
        /// The witness's directory (created if missing; must not hold a witness yet).
        #[arg(long)]
        dir: PathBuf,
        /// The witness's name, e.g. `witness.example.org/w1`; also its key's name.
        #[arg(long)]
        name: String,
    },
    /// Let the witness cosign a log's checkpoints (a running `serve` picks it up).
    AddLog {
        /// The witness's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The log's checkpoint origin (first line of its checkpoints).
        #[arg(long)]
        origin: String,
        /// The log's Ed25519 verifier key, `name+keyid+base64`.
        #[arg(long)]
        vkey: String,
        /// The log is known already and rotated its key: take `--vkey` in
        /// place of the old one (restart `witness serve` to use it).
        #[arg(long)]
        rotate: bool,
    },
    /// Serve the C2SP tlog-witness protocol (POST /add-checkpoint) until Ctrl-C.
    Serve {
        /// The witness's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: SocketAddr,
    },
}

/// Runs a witness command.
pub fn run(cmd: WitnessCommand) -> Result<()> {
    match cmd {
        WitnessCommand::Init { dir, name } => {
            println!("{}", init(&dir, &name)?);
            Ok(())
        }
        WitnessCommand::AddLog {
            dir,
            origin,
            vkey,
            rotate: true,
        } => {
            let key = VerifierKey::parse(&vkey).map_err(|e| {
                anyhow::anyhow!(
                    "--vkey {vkey:?} is not a verifier key ({e}); {}",
                    crate::key::VKEY_FORM
                )
            })?;
            let mut conn = store::open(&dir.join(DB_FILE))?;
            store::rotate_log_key(&mut conn, &origin, &key)?;
            println!(
                "log {origin} now signs with {vkey}; restart `daylight witness serve` to use it"
            );
            Ok(())
        }
        WitnessCommand::AddLog {
            dir, origin, vkey, ..
        } => {
            match add_log(&dir, &origin, &vkey)? {
                AddLog::Added => println!("added log {origin} with key {vkey}"),
                AddLog::AlreadyKnown => println!("log {origin} was already known with key {vkey}"),
            }
            Ok(())
        }
        WitnessCommand::Serve { dir, listen } => serve(&dir, listen),
    }
}

/// Creates a witness in `dir`; returns its cosignature verifier key.
pub fn init(dir: &Path, name: &str) -> Result<VerifierKey> {
    let db = dir.join(DB_FILE);
    let key_file = dir.join(KEY_FILE);
    for existing in [&db, &key_file] {
        if existing.exists() {
            bail!(
                "{} already exists: {} holds a witness",
                existing.display(),
                dir.display()
            );
        }
    }
    let signer = generate(name, KeyType::CosignatureV1)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_secret(&key_file, &signer)?;
    store::create(&db)?;
    Ok(signer.verifier().clone())
}

/// Lets the witness in `dir` cosign the log `origin` with key `vkey`.
pub fn add_log(dir: &Path, origin: &str, vkey: &str) -> Result<AddLog> {
    let key = VerifierKey::parse(vkey).map_err(|e| {
        anyhow::anyhow!(
            "--vkey {vkey:?} is not a verifier key ({e}); the log's key is what `daylight log init` printed"
        )
    })?;
    if !dir.join(DB_FILE).exists() {
        bail!(
            "no witness in {} (no {}): create one with `daylight witness init --dir {} --name NAME`",
            dir.display(),
            dir.join(DB_FILE).display(),
            dir.display()
        );
    }
    let mut conn = store::open(&dir.join(DB_FILE))?;
    Ok(store::add_log(&mut conn, origin, &key, unix_now())?)
}

/// A witness serving in the background (the demo runs three).
pub struct RunningWitness {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningWitness {
    /// Its base URL (the tlog-witness submission and monitoring prefix).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("witness task")??;
        Ok(())
    }
}

/// Serves the witness in `dir` on `addr` in the background.
pub async fn spawn(dir: &Path, addr: SocketAddr) -> Result<RunningWitness> {
    let signer = read_signer(&dir.join(KEY_FILE))?;
    let witness = Witness::open(&dir.join(DB_FILE), signer)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("witness listening on {addr}"))?;
    let addr = listener.local_addr()?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daylight_witness::serve(listener, witness, async {
        let _ = rx.await;
    }));
    Ok(RunningWitness { addr, stop, task })
}

fn serve(dir: &Path, listen: SocketAddr) -> Result<()> {
    if !dir.join(DB_FILE).exists() {
        bail!(
            "no witness in {} (no {}): create one with `daylight witness init --dir {} --name NAME`, \
             or check --dir",
            dir.display(),
            dir.join(DB_FILE).display(),
            dir.display()
        );
    }
    let signer = read_signer(&dir.join(KEY_FILE))?;
    let witness = Witness::open(&dir.join(DB_FILE), signer)?;
    let logs = witness.logs()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| crate::key::listen_error(listen, e))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "daylight witness: {} serving C2SP tlog-witness on http://{addr}/add-checkpoint",
            witness.verifier()
        );
        for log in &logs {
            eprintln!(
                "daylight witness: log {} at size {}, monitor http://{addr}{}",
                log.origin,
                log.size,
                checkpoint_path(&log.origin)
            );
        }
        daylight_witness::serve(listener, witness, async {
            shutdown_signal().await;
            eprintln!("daylight witness: shutting down");
        })
        .await
        .context("serving")?;
        Ok(())
    })
}

/// Ctrl-C, or SIGTERM on Unix (what service managers send).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler: never shut down on this branch.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
