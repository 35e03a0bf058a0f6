//! `daylight key`: signer keys in the signed-note text formats.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Subcommand, ValueEnum};
use daylight_core::{KeyName, KeyType, SignerKey};

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
    let mut file = options
        .open(path)
        .with_context(|| format!("creating secret file {}", path.display()))?;
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
        let meta = std::fs::metadata(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "key file {} is readable by others (mode {mode:o}); run chmod 600 on it",
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    SignerKey::parse(text.trim()).with_context(|| format!("key file {}", path.display()))
}
