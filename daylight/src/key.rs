//! `daylight key`: signer keys in the signed-note text formats.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Subcommand, ValueEnum};
use daylight_core::{KeyName, KeyType, SignerKey, VerifierKey};

/// Key commands.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Write a new signer key to FILE (mode 0600) and print its verifier key.
    Generate {
        /// The key name (for a log: its origin).
        #[arg(long)]
        name: String,
        /// Where to write the signer key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// What the key will sign: notes (logs, agencies, courts, providers) or
        /// witness cosignatures.
        #[arg(long, value_enum, default_value_t = KeyUse::Note)]
        r#use: KeyUse,
    },
    /// Print the verifier key of a signer key file.
    Public {
        /// The signer key file.
        #[arg(long)]
        key: PathBuf,
    },
}

/// What a key signs.
#[derive(Clone, Copy, ValueEnum)]
pub enum KeyUse {
    /// Ed25519 note signatures (type 0x01).
    Note,
    /// C2SP cosignature/v1 witness cosignatures (type 0x04).
    Cosignature,
}

/// Runs a key command.
pub fn run(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Generate { name, out, r#use } => {
            let key_type = match r#use {
                KeyUse::Note => KeyType::Ed25519,
                KeyUse::Cosignature => KeyType::CosignatureV1,
            };
            let signer = generate(&name, key_type)?;
            write_secret(&out, &signer)?;
            println!("{}", signer.verifier());
            Ok(())
        }
        KeyCommand::Public { key } => {
            println!("{}", read_signer(&key)?.verifier());
            Ok(())
        }
    }
}

/// A new signer key from the operating system's random source.
pub fn generate(name: &str, key_type: KeyType) -> Result<SignerKey> {
    let name = KeyName::new(name)?;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).context("reading the system random source")?;
    Ok(SignerKey::from_seed(name, key_type, seed))
}

/// Writes a signer key to a new file readable only by its owner.
pub fn write_secret(path: &Path, signer: &SignerKey) -> Result<()> {
    write_secret_text(path, &signer.to_secret_text())
}

/// Writes `text` and a newline to a new file readable only by its owner,
/// durably: the file and its directory entry are synced before this
/// returns. Without the sync, ext4's delayed allocation can leave an empty
/// key file after a crash or a filesystem abort even though the database
/// beside it (which syncs) survived: a log with entries and no key.
pub fn write_secret_text(path: &Path, text: &str) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists: a key file is never overwritten; choose another --out \
             (delete the old file only if nothing uses its key)",
            path.display()
        ),
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "creating secret file {}: its directory does not exist; create it first",
            path.display()
        ),
        _ => anyhow::anyhow!("creating secret file {}: {e}", path.display()),
    })?;
    writeln!(file, "{text}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing secret file {}", path.display()))?;
    sync_dir(path)
}

/// Syncs the directory holding `path`, so a new file's name is durable.
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

/// Reads a signer key file.
pub fn read_signer(path: &Path) -> Result<SignerKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|e| missing_key(path, &e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "key file {} is readable by others (mode {mode:o}); run chmod 600 on it",
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| missing_key(path, &e))?;
    SignerKey::parse(text.trim()).map_err(|e| {
        if VerifierKey::parse(text.trim()).is_ok() {
            anyhow::anyhow!(
                "{} holds a verifier (public) key, which cannot sign: pass the signer key file \
                 that `daylight key generate --out` wrote",
                path.display()
            )
        } else {
            anyhow::anyhow!(
                "{} is not a signer key file ({e}): signer keys start with PRIVATE+KEY+ and come \
                 from `daylight key generate`",
                path.display()
            )
        }
    })
}

/// The error for a key file that cannot be read, saying how to make one.
fn missing_key(path: &Path, err: &std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "no key file at {}: create one with `daylight key generate --name NAME --out {}`, \
             or check the path",
            path.display(),
            path.display()
        )
    } else {
        anyhow::anyhow!("reading key file {}: {err}", path.display())
    }
}

/// What a verifier key looks like, for errors about one.
pub const VKEY_FORM: &str = "a verifier key is NAME+KEYID+BASE64 on one line, as \
     `daylight key generate` or `daylight key public --key FILE` prints";

/// The error for a server that cannot listen on `addr`.
pub fn listen_error(addr: std::net::SocketAddr, err: std::io::Error) -> anyhow::Error {
    match err.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {addr}: something else is already listening there (an earlier \
             `daylight log serve`, `witness serve` or `demo`?); stop it or choose another --listen"
        ),
        std::io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
            "cannot listen on {addr}: this machine has no such address; use 127.0.0.1 or one of its own"
        ),
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "cannot listen on {addr}: ports below 1024 need privileges; choose a port above 1024"
        ),
        _ => anyhow::anyhow!("cannot listen on {addr}: {err}"),
    }
}
