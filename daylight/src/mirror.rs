//! `daylight mirror`: create a C2SP tlog-mirror, tell it which logs to
//! accept (and which to follow by itself, pull mode), serve it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::witness_protocol::origin_hash;
use daylight_core::{KeyType, VerifierKey};
use daylight_mirror::{store, unix_now, AddLog, Mirror, DB_FILE, KEY_FILE};

use crate::key::{generate, read_signer, write_secret};
use crate::witness::{add_listed_logs, existing_db, shutdown_signal};

/// Mirror commands.
#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Create a mirror in DIR (database and a fresh cosignature key of its
    /// own, never a witness's); print its verifier key.
    Init {
        /// The mirror's directory (created if missing; must not hold a mirror yet).
        #[arg(long)]
        dir: PathBuf,
        /// The mirror's name, e.g. `mirror.example.org/m1`; also its key's
        /// name. Must differ from any witness's name.
        #[arg(long)]
        name: String,
    },
    /// Let the mirror accept a log's uploads (a running `serve` picks it up):
    /// one log by `--origin` and `--vkey`, or every log of a `--log-list`
    /// (the witness network's `logs/v0` format).
    AddLog {
        /// The mirror's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The log's checkpoint origin.
        #[arg(long, required_unless_present = "log_list", requires = "vkey")]
        origin: Option<String>,
        /// The log's Ed25519 verifier key, `name+keyid+base64`.
        #[arg(long, required_unless_present = "log_list", requires = "origin")]
        vkey: Option<String>,
        /// Add every log of this `logs/v0` file instead.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["origin", "vkey"])]
        log_list: Option<PathBuf>,
    },
    /// Pull mode: make `serve` follow a mirrored log's tlog-tiles by itself
    /// (for a log that does not push): poll URL/checkpoint, verify it and its
    /// tiles, store the new entries and cosign as a push would. A running
    /// `serve` picks it up when restarted.
    Follow {
        /// The mirror's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The log's origin (added with `add-log` first).
        #[arg(long)]
        origin: String,
        /// The log's tlog-tiles prefix (URL/checkpoint, URL/tile/...).
        #[arg(long, required_unless_present = "stop")]
        url: Option<String>,
        /// Stop following the log instead.
        #[arg(long, conflicts_with = "url")]
        stop: bool,
    },
    /// Serve C2SP tlog-mirror (POST /add-checkpoint, POST /add-entries) and
    /// the mirrored logs as tlog-tiles under /<sha256(origin)>/ until Ctrl-C;
    /// poll the logs set with `follow`.
    Serve {
        /// The mirror's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7390")]
        listen: SocketAddr,
        /// Seconds between polls of a followed log (doubled after each
        /// failed poll, up to 600).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        poll_interval: u64,
    },
}

/// Runs a mirror command.
pub fn run(cmd: MirrorCommand) -> Result<()> {
    match cmd {
        MirrorCommand::Init { dir, name } => {
            println!("{}", init(&dir, &name)?);
            Ok(())
        }
        MirrorCommand::AddLog {
            dir,
            log_list: Some(file),
            ..
        } => add_log_list(&dir, &file),
        MirrorCommand::AddLog {
            dir,
            origin: Some(origin),
            vkey: Some(vkey),
            ..
        } => {
            let key = VerifierKey::parse(&vkey).map_err(|e| {
                anyhow::anyhow!(
                    "--vkey {vkey:?} is not a verifier key ({e}); {}",
                    crate::key::VKEY_FORM
                )
            })?;
            let mut conn = store::open(&mirror_db(&dir)?)?;
            let outcome = store::add_log(&mut conn, &origin, &key, unix_now())?;
            println!("{}", added(&origin, &key, outcome));
            Ok(())
        }
        MirrorCommand::AddLog { .. } => {
            bail!("give --log-list FILE, or --origin ORIGIN and --vkey VKEY")
        }
        MirrorCommand::Follow {
            dir,
            origin,
            url,
            stop,
        } => {
            let url = if stop { None } else { url };
            if let Some(url) = &url {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| anyhow::anyhow!("--url {url:?} is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    bail!("--url {url:?} must be an http or https URL");
                }
            }
            let conn = store::open(&mirror_db(&dir)?)?;
            store::set_follow(&conn, &origin, url.as_deref())?;
            match url {
                Some(url) => println!("following log {origin} at {url}"),
                None => println!("no longer following log {origin}"),
            }
            Ok(())
        }
        MirrorCommand::Serve {
            dir,
            listen,
            poll_interval,
        } => serve(&dir, listen, Duration::from_secs(poll_interval)),
    }
}

/// Creates a mirror in `dir`; returns its cosignature verifier key.
pub fn init(dir: &Path, name: &str) -> Result<VerifierKey> {
    let db = dir.join(DB_FILE);
    let key_file = dir.join(KEY_FILE);
    for existing in [&db, &key_file] {
        if existing.exists() {
            bail!(
                "{} already exists: {} holds a mirror",
                existing.display(),
                dir.display()
            );
        }
    }
    // A fresh random key: cosignature/v1 does not bind the cosigner's name,
    // so a mirror must never share a witness's key (tlog-cosignature).
    let signer = generate(name, KeyType::CosignatureV1)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_secret(&key_file, &signer)?;
    store::create(&db)?;
    Ok(signer.verifier().clone())
}

fn added(origin: &str, vkey: &VerifierKey, outcome: AddLog) -> String {
    match outcome {
        AddLog::Added => format!("added log {origin} with key {vkey}"),
        AddLog::AlreadyKnown => format!("log {origin} was already known with key {vkey}"),
    }
}

/// `add-log --log-list FILE`: checks the whole list, then adds each log.
fn add_log_list(dir: &Path, file: &Path) -> Result<()> {
    add_listed_logs(
        file,
        "logs/v0",
        || Ok(store::open(&mirror_db(dir)?)?),
        |conn, log| match store::add_log(conn, &log.origin, &log.vkey, unix_now()) {
            Ok(outcome) => {
                println!("{}", added(&log.origin, &log.vkey, outcome));
                Ok(true)
            }
            Err(e @ store::StoreError::OriginTaken { .. }) => {
                println!("refused log {}: {e}", log.origin);
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| format!("adding log {}", log.origin)),
        },
    )
}

/// The mirror database in `dir`, or the error that says how to create one.
fn mirror_db(dir: &Path) -> Result<PathBuf> {
    existing_db(dir, DB_FILE, "mirror")
}

fn serve(dir: &Path, listen: SocketAddr, poll_interval: Duration) -> Result<()> {
    let db = mirror_db(dir)?;
    let signer = read_signer(&dir.join(KEY_FILE))?;
    let mirror = Arc::new(Mirror::open(&db, signer)?);
    let logs = mirror.logs()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = daylight_log_server::server::listen(listen)
            .map_err(|e| crate::key::listen_error(listen, e))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "daylight mirror: {} serving C2SP tlog-mirror on http://{addr}/add-checkpoint and /add-entries",
            mirror.verifier()
        );
        for log in &logs {
            eprintln!(
                "daylight mirror: log {} at size {} (next entry {}), tiles at http://{addr}/{}/",
                log.origin,
                log.mirror_size,
                log.next_entry,
                origin_hash(&log.origin)
            );
        }
        for follow in mirror.follows()? {
            eprintln!(
                "daylight mirror: following log {} at {} every {}s",
                follow.origin,
                follow.url,
                poll_interval.as_secs()
            );
        }
        let following = mirror.clone();
        let followers = tokio::spawn(async move {
            if let Err(e) = daylight_mirror::follow::follow_all(following, poll_interval).await {
                eprintln!("daylight mirror: not following any log: {e}");
            }
        });
        daylight_mirror::serve(listener, mirror, async {
            shutdown_signal().await;
            eprintln!("daylight mirror: shutting down");
        })
        .await
        .context("serving")?;
        followers.abort();
        Ok(())
    })
}
