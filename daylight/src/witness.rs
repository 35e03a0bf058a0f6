//! `daylight witness`: create a C2SP tlog-witness, tell it which logs to
//! cosign, serve it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::log_list::{ListedLog, LogList};
use daylight_core::witness_protocol::checkpoint_path;
use daylight_core::{KeyType, VerifierKey};
use daylight_witness::{store, AddLog, StoreError, Witness, DB_FILE, KEY_FILE};

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
    /// Let the witness cosign a log's checkpoints (a running `serve` picks it up):
    /// one log by `--origin` and `--vkey`, or every log of a `--log-list`.
    #[command(after_help = "A log list is the witness network's `logs/v0` format \
        (https://witness-network.org/log-list-format/), as `daylight log describe` prints it:\n\n\
        \x20 logs/v0\n\
        \x20 vkey log.example.org/daylight+8a5c27f3+AQ...\n\
        \x20 qpd 86400\n\
        \x20 contact ops@log.example.org\n\n\
        The whole list is checked first (an error names its line); then each log is added \
        and reported on its own line. A log already known with the same key is left as it \
        is; one whose origin is known with another key is refused (take a rotated key with \
        `--origin ORIGIN --vkey NEW --rotate`), the others are still added, and the command \
        fails at the end.")]
    AddLog {
        /// The witness's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The log's checkpoint origin (first line of its checkpoints).
        #[arg(long, required_unless_present = "log_list", requires = "vkey")]
        origin: Option<String>,
        /// The log's Ed25519 verifier key, `name+keyid+base64`.
        #[arg(long, required_unless_present = "log_list", requires = "origin")]
        vkey: Option<String>,
        /// The log is known already and rotated its key: take `--vkey` in
        /// place of the old one (restart `witness serve` to use it).
        #[arg(long, requires = "origin")]
        rotate: bool,
        /// Add every log of this file, a witness-network `logs/v0` log list
        /// (instead of `--origin` and `--vkey`).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["origin", "vkey", "rotate"])]
        log_list: Option<PathBuf>,
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
            log_list: Some(file),
            ..
        } => add_log_list(&dir, &file),
        WitnessCommand::AddLog {
            dir,
            origin: Some(origin),
            vkey: Some(vkey),
            rotate: true,
            ..
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
            dir,
            origin: Some(origin),
            vkey: Some(vkey),
            ..
        } => {
            println!("{}", added(&origin, &vkey, add_log(&dir, &origin, &vkey)?));
            Ok(())
        }
        // Unreachable: clap requires --log-list or both --origin and --vkey.
        WitnessCommand::AddLog { .. } => {
            bail!("give --log-list FILE, or --origin ORIGIN and --vkey VKEY")
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
    let mut conn = store::open(&witness_db(dir)?)?;
    Ok(store::add_log(&mut conn, origin, &key, unix_now())?)
}

/// What `add-log` reports for one log.
fn added(origin: &str, vkey: &impl std::fmt::Display, outcome: AddLog) -> String {
    match outcome {
        AddLog::Added => format!("added log {origin} with key {vkey}"),
        AddLog::AlreadyKnown => format!("log {origin} was already known with key {vkey}"),
    }
}

/// `add-log --log-list FILE`: reads and checks the whole `logs/v0` list,
/// then adds each log as [`add_log`] does, one line each. A log whose
/// origin is known with another key is reported and skipped; the others are
/// still added, and the command fails at the end.
fn add_log_list(dir: &Path, file: &Path) -> Result<()> {
    add_listed_logs(
        file,
        "witness-network logs/v0",
        || Ok(store::open(&witness_db(dir)?)?),
        |conn, log| match store::add_log(conn, &log.origin, &log.vkey, unix_now()) {
            Ok(outcome) => {
                println!("{}", added(&log.origin, &log.vkey, outcome));
                Ok(true)
            }
            Err(e @ StoreError::OriginTaken { .. }) => {
                println!(
                    "refused log {}: {e}; to take the list's key {} run `daylight witness add-log \
                     --dir {} --origin {} --vkey {} --rotate`",
                    log.origin,
                    log.vkey,
                    dir.display(),
                    log.origin,
                    log.vkey
                );
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| format!("adding log {}", log.origin)),
        },
    )
}

/// `add-log --log-list FILE` for a witness or a mirror: reads and checks
/// the whole list (`kind` names it in the error), opens the database with
/// `open`, then `add`s each log; `add` answers whether the log was taken
/// (`false`: refused, already reported). The refused are counted and the
/// command fails at the end if any was.
pub(crate) fn add_listed_logs<C>(
    file: &Path,
    kind: &str,
    open: impl FnOnce() -> Result<C>,
    mut add: impl FnMut(&mut C, &ListedLog) -> Result<bool>,
) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--log-list: reading {}", file.display()))?;
    let list = LogList::parse(&text)
        .with_context(|| format!("--log-list {}: not a {kind} list", file.display()))?;
    let mut conn = open()?;
    let mut refused = 0;
    for log in &list.logs {
        if !add(&mut conn, log)? {
            refused += 1;
        }
    }
    if refused > 0 {
        bail!(
            "{refused} of the {} logs in {} refused: known here with another key (see above)",
            list.logs.len(),
            file.display()
        );
    }
    Ok(())
}

/// The witness database in `dir`, or the error that says how to create one.
fn witness_db(dir: &Path) -> Result<PathBuf> {
    existing_db(dir, DB_FILE, "witness")
}

/// The database `file` in `dir` of a `daylight {role}`, or the error that
/// says how to create one.
pub(crate) fn existing_db(dir: &Path, file: &str, role: &str) -> Result<PathBuf> {
    let db = dir.join(file);
    if !db.exists() {
        bail!(
            "no {role} in {} (no {}): create one with `daylight {role} init --dir {} --name NAME`",
            dir.display(),
            db.display(),
            dir.display()
        );
    }
    Ok(db)
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
    let listener = daylight_log_server::server::listen(addr)
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
        let listener = daylight_log_server::server::listen(listen)
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
