//! `daylight log`: create, configure and serve a log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use daylight_core::log_list::{ListedLog, LogList, Problem};
use daylight_core::{KeyType, VerifierKey};
use daylight_log_server::admission::{Admission as _, RateLimit, RecordAdmission};
use daylight_log_server::admitted::Admitted;
use daylight_log_server::integrate::{append_registry_entry, integrate, IntegrateError, LogKeys};
use daylight_log_server::postgres::PostgresStore;
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::server::LogServer;
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::LogStore;
use daylight_schemas::{Record, Registry, Role};

use crate::key::{read_signer, write_secret, write_secret_text};
use crate::serve_config::{LogFormat, Publication, ServeArgs, ServeSettings};
use daylight_log_server::leader::LeaseConfig;

/// Log commands.
#[derive(Subcommand)]
pub enum LogCommand {
    /// Create a log's database and signing key in DIR; print the log's verifier key.
    Init {
        /// The log's directory (created if missing; must not hold a log yet).
        #[arg(long)]
        dir: PathBuf,
        /// The checkpoint origin, e.g. `log.example.org/daylight`; also the key's name.
        #[arg(long)]
        origin: String,
        /// Witness cosignatures needed before a checkpoint is published.
        #[arg(long, default_value_t = 1)]
        quorum: usize,
        /// Keep the log's state in PostgreSQL instead of DIR/log.db: a
        /// `postgres://USER@HOST:PORT/DB` URL (add
        /// `?options=-c%20search_path%3DSCHEMA` for a schema of its own).
        /// DIR keeps the signing key and the URL (DIR/database.url), so every
        /// other `daylight log` command finds the database through DIR.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Register an agency key (appends a registry entry signed by the log).
    AddAgency(RegisterArgs),
    /// Register a provider key (it signs release receipts).
    AddProvider(RegisterArgs),
    /// Register a court key (it signs ratifications and extensions).
    AddCourt(RegisterArgs),
    /// Register a custodian key (threshold custody: it holds shares of
    /// escrowed keys and signs receipts for the shares it releases).
    AddCustodian(RegisterArgs),
    /// Revoke a registered key, in every role it has.
    Revoke(RegisterArgs),
    /// Replace an agency's, court's or provider's key by a new one with the
    /// same name (a registry entry): records the old key signed before stay
    /// valid, later ones are refused.
    Rotate {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The registered key to retire, `name+keyid+base64`.
        #[arg(long)]
        old: String,
        /// Its successor (same name), `name+keyid+base64`.
        #[arg(long)]
        new: String,
    },
    /// Rotate the log's own key: a new key in DIR/log.key, a registry entry
    /// signed by the old key naming the new one, and checkpoints signed by
    /// both until the transition ends, then by the new key alone.
    RotateKey {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Days during which checkpoints carry the old key's signature too,
        /// so witnesses and gates that know only the old key keep working
        /// while their operators add the new one.
        #[arg(long, default_value_t = 7)]
        transition_days: u32,
    },
    /// Add a witness the log asks to cosign its checkpoints (a registry
    /// entry; a running `serve` uses it from its next checkpoint).
    AddWitness {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The witness's cosignature verifier key.
        #[arg(long)]
        vkey: String,
        /// The witness's tlog-witness URL prefix (it serves `URL/add-checkpoint`).
        #[arg(long)]
        url: String,
        /// Put it in the place of this witness (`name+keyid+base64`)
        /// instead of adding it beside the others.
        #[arg(long, value_name = "VKEY")]
        replaces: Option<String>,
    },
    /// Stop asking a witness to cosign (a registry entry; applies while serving).
    RemoveWitness {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The witness's cosignature verifier key.
        #[arg(long)]
        vkey: String,
    },
    /// Set how many witnesses must cosign a checkpoint before it is
    /// published (a registry entry; applies while serving).
    SetQuorum {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Witness cosignatures needed, at least 1 and at most the number of witnesses.
        quorum: u32,
    },
    /// Add a C2SP tlog-mirror the log pushes its checkpoints and entries to
    /// (kept in the log's database, not a registry entry: a running `serve`
    /// pushes to it from its next checkpoint). Adding one again changes its URL.
    AddMirror {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The mirror's cosignature/v1 verifier key, as `daylight mirror init` prints.
        #[arg(long)]
        vkey: String,
        /// The mirror's submission prefix (it serves `URL/add-checkpoint` and `URL/add-entries`).
        #[arg(long)]
        url: String,
    },
    /// Set how many mirrors must cosign a checkpoint, besides the witness
    /// quorum, before it is published (0, the default: mirrors are best
    /// effort; applies from the next checkpoint while serving).
    SetMirrorQuorum {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Mirror cosignatures needed, at most the number of mirrors.
        quorum: u32,
    },
    /// Move a log kept in DIR/log.db into PostgreSQL (same origin, key and
    /// history): every entry is copied and integrated anew, and the copy
    /// must reach the root the log signed before DIR switches to it.
    Migrate {
        /// The log's directory (stop `daylight log serve` first).
        #[arg(long)]
        dir: PathBuf,
        /// The empty database to move it to: a `postgres://` URL.
        #[arg(long, value_name = "URL")]
        database: String,
        /// Also publish its tiles (as `log serve` does).
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Serve the log, its API and the web view.
    Serve(ServeArgs),
    /// Print the log as a witness-network `logs/v0` log list (the header and
    /// this log's entry), for other operators' witnesses: they add it with
    /// `daylight witness add-log --log-list FILE`, or put the entry in their
    /// own list.
    #[command(
        after_help = "The entry is the log's current key (after `log rotate-key`, the \
        new one), an `origin` line only if the origin is not the key's name (never, for a log \
        made by `daylight log init`), `qpd` and `contact`. Format: \
        https://witness-network.org/log-list-format/"
    )]
    Describe {
        /// The log's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The add-checkpoint requests a day the log may send each witness,
        /// in [1, 2^31). The default, 86400, is one a second: the log asks
        /// each witness once per new checkpoint (and every 10 minutes when
        /// idle), so a log that checkpoints less often can declare less.
        #[arg(long, default_value_t = DEFAULT_QPD)]
        qpd: u32,
        /// How witness operators reach the log's operator (an email address,
        /// a URL). Without it the entry says `contact unset` and a reminder
        /// goes to stderr: the witness network wants a real one.
        #[arg(long)]
        contact: Option<String>,
    },
}

/// `log describe`'s default `qpd`: one add-checkpoint request a second.
pub const DEFAULT_QPD: u32 = 86_400;

/// `log describe`'s `contact` when none is given.
pub const UNSET_CONTACT: &str = "unset";

/// Where `log migrate` publishes the moved log's tiles.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PublishArgs {
    /// Publish the log as static C2SP tlog-tiles files in this directory
    /// (created if missing), for any web server or CDN to serve.
    #[arg(long, value_name = "DIR", conflicts_with = "publish")]
    pub publish_dir: Option<PathBuf>,
    /// Publish to an S3-compatible bucket, `s3://BUCKET[/PREFIX]`;
    /// credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "S3_URL")]
    pub publish: Option<String>,
    /// The bucket's endpoint, for anything but AWS (R2, MinIO, Ceph, ...).
    #[arg(long, value_name = "URL", requires = "publish")]
    pub s3_endpoint: Option<String>,
    /// The bucket's region (default: AWS_REGION, else us-east-1).
    #[arg(long, requires = "publish")]
    pub s3_region: Option<String>,
    /// Address the bucket as BUCKET.HOST (virtual-hosted style) instead of
    /// HOST/BUCKET (path style, the default).
    #[arg(long, requires = "publish")]
    pub s3_virtual_hosted: bool,
}

impl From<&PublishArgs> for Publication {
    fn from(a: &PublishArgs) -> Publication {
        Publication {
            dir: a.publish_dir.clone(),
            s3: a.publish.clone(),
            endpoint: a.s3_endpoint.clone(),
            region: a.s3_region.clone(),
            virtual_hosted: a.s3_virtual_hosted,
        }
    }
}

/// A directory and a key to register or revoke.
#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The log's directory.
    #[arg(long)]
    dir: PathBuf,
    /// The key, in verifier-key form `name+keyid+base64`.
    #[arg(long)]
    vkey: String,
}

fn db(dir: &Path) -> PathBuf {
    dir.join("log.db")
}

fn key_file(dir: &Path) -> PathBuf {
    dir.join("log.key")
}

/// Where a log kept in PostgreSQL records its database URL.
fn database_file(dir: &Path) -> PathBuf {
    dir.join("database.url")
}

/// The database URL recorded in `dir`, if the log lives in PostgreSQL.
fn database_url(dir: &Path) -> Result<Option<String>> {
    let file = database_file(dir);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let url = text.trim();
            if url.is_empty() {
                bail!(
                    "{} is empty; it should hold the log's database URL",
                    file.display()
                );
            }
            Ok(Some(url.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Opens the log in `dir`: its PostgreSQL database if `dir` names one, else
/// `dir/log.db`.
pub fn open(dir: &Path) -> Result<Arc<dyn LogStore>> {
    let url = database_url(dir)?;
    if url.is_none() && !db(dir).exists() {
        bail!(
            "no log database in {} ({}): create the log with `daylight log init --dir {} \
             --origin ORIGIN`, or check --dir",
            dir.display(),
            db(dir).display(),
            dir.display()
        );
    }
    let opened: Result<Arc<dyn LogStore>, _> = match url {
        Some(url) => PostgresStore::open(&url).map(|s| Arc::new(s) as Arc<dyn LogStore>),
        None => SqliteStore::open(&db(dir)).map(|s| Arc::new(s) as Arc<dyn LogStore>),
    };
    opened.with_context(|| format!("opening the log in {}", dir.display()))
}

impl LogCommand {
    /// The log directory of a command that writes registry entries or key
    /// files (it runs under the directory's lock).
    fn writes_registry(&self) -> Option<&Path> {
        match self {
            LogCommand::AddAgency(a)
            | LogCommand::AddProvider(a)
            | LogCommand::AddCourt(a)
            | LogCommand::AddCustodian(a)
            | LogCommand::Revoke(a) => Some(&a.dir),
            LogCommand::Rotate { dir, .. }
            | LogCommand::RotateKey { dir, .. }
            | LogCommand::AddWitness { dir, .. }
            | LogCommand::RemoveWitness { dir, .. }
            | LogCommand::SetQuorum { dir, .. } => Some(dir),
            LogCommand::Init { .. }
            | LogCommand::AddMirror { .. }
            | LogCommand::SetMirrorQuorum { .. }
            | LogCommand::Migrate { .. }
            | LogCommand::Serve(_)
            | LogCommand::Describe { .. } => None,
        }
    }
}

/// Runs a log command.
pub fn run(cmd: LogCommand) -> Result<()> {
    let _lock = match cmd.writes_registry() {
        Some(dir) => lock(dir)?,
        None => None,
    };
    match cmd {
        LogCommand::Init {
            dir,
            origin,
            quorum,
            database,
        } => {
            let vkey = init(&dir, &origin, quorum, database.as_deref())?;
            println!("{vkey}");
            Ok(())
        }
        LogCommand::AddAgency(a) => register(&a, Role::Agency),
        LogCommand::AddProvider(a) => register(&a, Role::Provider),
        LogCommand::AddCourt(a) => register(&a, Role::Court),
        LogCommand::AddCustodian(a) => register(&a, Role::Custodian),
        LogCommand::Revoke(a) => revoke(&a),
        LogCommand::Rotate { dir, old, new } => rotate(&dir, &old, &new),
        LogCommand::RotateKey {
            dir,
            transition_days,
        } => {
            let (old, new, index, until) = rotate_log_key(&dir, transition_days)?;
            println!("{new}");
            eprintln!(
                "rotated the log key at entry {index}: {old} is replaced by the key above; \
                 checkpoints carry both signatures until {until}. A running `daylight log serve` \
                 loads the new key itself (copy log.key and the old key file to other frontends); \
                 have witnesses (`daylight witness add-log --rotate`) and providers \
                 (`daylight gate policy`) take the new key before then."
            );
            Ok(())
        }
        LogCommand::AddWitness {
            dir,
            vkey,
            url,
            replaces,
        } => {
            let index = add_witness(&dir, &vkey, &url, replaces.as_deref())?;
            println!(
                "witness {} {} at entry {index}; a running `daylight log serve` asks it from its next checkpoint",
                vkey.split('+').next().unwrap_or_default(),
                if replaces.is_some() { "put in place" } else { "added" },
            );
            Ok(())
        }
        LogCommand::RemoveWitness { dir, vkey } => {
            let index = remove_witness(&dir, &vkey)?;
            println!(
                "witness {} removed at entry {index}",
                vkey.split('+').next().unwrap_or_default()
            );
            Ok(())
        }
        LogCommand::SetQuorum { dir, quorum } => {
            let index = set_quorum(&dir, quorum)?;
            println!("quorum set to {quorum} at entry {index}");
            Ok(())
        }
        LogCommand::AddMirror { dir, vkey, url } => {
            add_mirror(&dir, &vkey, &url)?;
            println!(
                "mirror {} added; a running `daylight log serve` pushes to it from its next checkpoint",
                vkey.split('+').next().unwrap_or_default(),
            );
            Ok(())
        }
        LogCommand::SetMirrorQuorum { dir, quorum } => {
            let store = open(&dir)?;
            let mirrors = store.mirrors()?.mirrors.len();
            if quorum as usize > mirrors {
                bail!("a mirror quorum of {quorum} needs at least {quorum} mirrors; the log has {mirrors} (add mirrors first: daylight log add-mirror)");
            }
            store.set_mirror_quorum(quorum as usize)?;
            println!("mirror quorum set to {quorum}");
            Ok(())
        }
        LogCommand::Serve(args) => serve(&args.resolve()?),
        LogCommand::Describe { dir, qpd, contact } => {
            let list = describe(&dir, qpd, contact.as_deref().unwrap_or(UNSET_CONTACT))?;
            if contact.is_none() {
                eprintln!(
                    "note: no --contact: the entry says `contact {UNSET_CONTACT}`; give witness \
                     operators a way to reach you (an email address, a URL)"
                );
            }
            print!("{list}");
            Ok(())
        }
        LogCommand::Migrate {
            dir,
            database,
            publish,
        } => {
            let done = crate::migrate::migrate(&dir, &database, &database_file(&dir))?;
            println!(
                "migrated {} entries to the database; root {} re-derived and matches the signed checkpoint",
                done.entries, done.root
            );
            if let Some(target) = Publication::from(&publish).target()? {
                let key = read_signer(&key_file(&dir))?;
                let objects = crate::migrate::publish(open(&dir)?, target, key.verifier())?;
                println!("published {objects} tiles and bundles, then the checkpoint");
            }
            println!(
                "{} now names the database (published checkpoint: {}); {} is no longer used (keep it until you are satisfied)",
                database_file(&dir).display(),
                done.published
                    .map_or("none yet".to_string(), |s| format!("size {s}")),
                db(&dir).display()
            );
            Ok(())
        }
    }
}

/// Creates a log, in `database` (a PostgreSQL URL) or else in `dir/log.db`;
/// returns its verifier key.
pub fn init(
    dir: &Path,
    origin: &str,
    quorum: usize,
    database: Option<&str>,
) -> Result<VerifierKey> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if db(dir).exists() || key_file(dir).exists() || database_file(dir).exists() {
        bail!(
            "{} already holds a log: choose another --dir, or use that log \
             (`daylight log serve --dir {}`)",
            dir.display(),
            dir.display()
        );
    }
    let key = crate::key::generate(origin, KeyType::Ed25519).context("--origin")?;
    let store: Arc<dyn LogStore> = match database {
        Some(url) => {
            let store = PostgresStore::create(url, origin, quorum).context("--database")?;
            // The URL may carry a password: the same care as the key.
            write_secret_text(&database_file(dir), url)?;
            Arc::new(store)
        }
        None => Arc::new(SqliteStore::create(&db(dir), origin, quorum)?),
    };
    write_secret(&key_file(dir), &key)?;
    // The empty tree's checkpoint, so witnesses and clients have a start.
    integrate(store.as_ref(), &key, origin, Vec::new())?;
    Ok(key.verifier().clone())
}

/// The log in `dir` as a `logs/v0` list: its current key, its origin, `qpd`
/// and `contact`.
pub fn describe(dir: &Path, qpd: u32, contact: &str) -> Result<String> {
    let origin = open(dir)?.meta()?.origin;
    let vkey = registry(dir)?.log_key().clone();
    let log = ListedLog {
        vkey,
        origin,
        qpd,
        contact: contact.to_owned(),
    };
    log.check().map_err(|problem| match problem {
        Problem::BadQpd { .. } => anyhow::anyhow!("--qpd: {problem}"),
        Problem::BadContact(_) => anyhow::anyhow!("--contact: {problem}"),
        other => anyhow::anyhow!("the log in {} cannot be listed: {other}", dir.display()),
    })?;
    Ok(LogList { logs: vec![log] }.to_text()?)
}

fn parse_note_key(vkey: &str) -> Result<VerifierKey> {
    let key = VerifierKey::parse(vkey).map_err(|e| {
        anyhow::anyhow!(
            "{vkey:?} is not a verifier key ({e}); {}",
            crate::key::VKEY_FORM
        )
    })?;
    if key.key_type() != KeyType::Ed25519 {
        bail!("agencies, providers, courts and custodians sign with Ed25519 note keys (type 0x01), as `daylight key generate` makes; a witness's key goes to `log add-witness`");
    }
    Ok(key)
}

/// Takes the log directory's lock (`DIR/log.lock`) for a command that
/// writes registry entries or key files: two operators (or two runs of
/// `rotate-key`) never interleave. Held until the returned file is dropped.
fn lock(dir: &Path) -> Result<Option<std::fs::File>> {
    if !key_file(dir).exists() {
        // No log here: the command itself says so, in its own words.
        return Ok(None);
    }
    let path = dir.join("log.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    #[cfg(unix)]
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(Some(file))
}

fn append_registry(dir: &Path, record: Record) -> Result<u64> {
    let store = open(dir)?;
    let keys = log_keys(dir, store.as_ref())?;
    let signed = record.sign(keys.current(), keys.current().name().as_str())?;
    let signer = keys.current().verifier().clone();
    append_checked(store.as_ref(), &keys, &signed, &signer)
}

/// Appends a registry entry only where the log's registry accepts it (a
/// rotation to a key already registered, a change racing another
/// operator's: refused here, never written for readers to trip over).
fn append_checked(
    store: &dyn LogStore,
    keys: &LogKeys,
    signed: &daylight_schemas::SignedRecord,
    signer: &VerifierKey,
) -> Result<u64> {
    // The registry's chain starts from the log key before this entry: the
    // signer (a rotation is signed by the key it replaces).
    let rules = RecordAdmission::new(signer.clone());
    let index = append_registry_entry(store, keys, signed, signer, || {
        rules.refresh(store);
        rules.with_registry(Registry::clone).ok_or_else(|| {
            IntegrateError::Store(daylight_log_server::store::StoreError::Backend(
                "the log's registry entries could not be read".into(),
            ))
        })
    })?;
    Ok(index.get())
}

/// The log's registry, read from its own registry entries.
fn registrations(dir: &Path) -> Result<RecordAdmission> {
    let store = open(dir)?;
    let key = read_signer(&key_file(dir))?;
    let admission = RecordAdmission::new(key.verifier().clone());
    admission.refresh(store.as_ref());
    Ok(admission)
}

/// The registry replayed from the log in `dir`.
fn registry(dir: &Path) -> Result<Registry> {
    registrations(dir)?
        .with_registry(Registry::clone)
        .context("reading the log's registry entries")
}

/// Where a rotated-out log key is kept (its transition still needs it).
fn retired_key_file(dir: &Path, key: &VerifierKey) -> PathBuf {
    dir.join(format!("log-{}.key", key.id()))
}

/// Where a new log key waits while its rotation entry is appended.
fn next_key_file(dir: &Path) -> PathBuf {
    dir.join("log.key.next")
}

/// The log's checkpoint keys: DIR/log.key, which must be the current key
/// of the log's registry, and each rotated-out key still in its transition.
/// Finishes a rotation interrupted after its entry was appended.
pub fn log_keys(dir: &Path, store: &dyn LogStore) -> Result<LogKeys> {
    let mut current = read_signer(&key_file(dir))?;
    let admission = RecordAdmission::new(current.verifier().clone());
    admission.refresh(store);
    let reg = admission
        .with_registry(Registry::clone)
        .context("reading the log's registry entries")?;
    if reg.log_key() != current.verifier() {
        let next = next_key_file(dir);
        match read_signer(&next) {
            Ok(k) if k.verifier() == reg.log_key() => {
                // The rotation entry was appended but the files were not
                // switched: finish it.
                std::fs::rename(&next, key_file(dir))
                    .with_context(|| format!("finishing the rotation: {}", next.display()))?;
                current = k;
            }
            _ => bail!(
                "{} holds {}, but the log's registry says its key is {}: restore the right key file",
                key_file(dir).display(),
                current.verifier(),
                reg.log_key()
            ),
        }
    }
    let now = chrono::Utc::now();
    let mut retiring = Vec::new();
    for period in reg.log_keys().iter().filter(|p| p.replaced_at.is_some()) {
        let file = retired_key_file(dir, &period.key);
        let Some(until) = period.until.filter(|u| now < *u) else {
            // Its transition is over: the key signs nothing any more, and a
            // key rotated out because it leaked should not stay on disk.
            if file.exists() {
                std::fs::remove_file(&file)
                    .with_context(|| format!("removing the retired key {}", file.display()))?;
                eprintln!(
                    "removed {}: the old log key's transition ended",
                    file.display()
                );
            }
            continue;
        };
        match read_signer(&file) {
            Ok(k) if k.verifier() == &period.key => retiring.push((k, until)),
            _ => eprintln!(
                "warning: {} is missing; checkpoints will not carry the old key {} until {until} as promised",
                file.display(),
                period.key
            ),
        }
    }
    Ok(LogKeys::new(current, retiring))
}

/// Rotates the log's key; returns the old and new keys, the rotation
/// entry's index and the end of the transition.
pub fn rotate_log_key(
    dir: &Path,
    transition_days: u32,
) -> Result<(VerifierKey, VerifierKey, u64, chrono::DateTime<chrono::Utc>)> {
    let store = open(dir)?;
    let keys = log_keys(dir, store.as_ref())?;
    let old = keys.current().clone();
    let next = next_key_file(dir);
    if next.exists() {
        // Left by a rotation whose entry never made it into the log (a
        // finished one was completed by log_keys above): never used.
        std::fs::remove_file(&next).with_context(|| format!("removing {}", next.display()))?;
    }
    let new = crate::key::generate(old.name().as_str(), KeyType::Ed25519)?;
    // Durable before the log names it: a log must never point to a key it lost.
    write_secret(&next, &new)?;
    let retired = retired_key_file(dir, old.verifier());
    if !retired.exists() {
        write_secret(&retired, &old)?;
    }
    let now = chrono::Utc::now();
    let until = now + chrono::Duration::days(i64::from(transition_days));
    let record =
        Record::registry_rotate(Role::Log, old.verifier(), new.verifier(), Some(until), now)?;
    let signed = record.sign(&old, old.name().as_str())?;
    let both = LogKeys::new(new.clone(), vec![(old.clone(), until)]);
    let index = append_checked(store.as_ref(), &both, &signed, old.verifier())?;
    match std::fs::rename(&next, key_file(dir)) {
        Ok(()) => {}
        // A server reloading its keys meanwhile finished the switch itself.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && read_signer(&key_file(dir))?.verifier() == new.verifier() => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!("moving {} to {}", next.display(), key_file(dir).display())
            })
        }
    }
    Ok((old.verifier().clone(), new.verifier().clone(), index, until))
}

fn rotate(dir: &Path, old: &str, new: &str) -> Result<()> {
    let old = parse_note_key(old).context("--old")?;
    let new = parse_note_key(new).context("--new")?;
    let reg = registry(dir)?;
    let roles: Vec<Role> = reg
        .registrations()
        .iter()
        .filter(|r| r.key == old && r.revoked_at.is_none())
        .map(|r| r.role)
        .collect();
    if roles.is_empty() {
        bail!("--old: {} is not a registered, unrevoked key", old.name());
    }
    for role in roles {
        let record = Record::registry_rotate(role, &old, &new, None, chrono::Utc::now())?;
        let index = append_registry(dir, record)?;
        println!(
            "{} rotated as {role} at entry {index}: {}+{} replaces {}+{}",
            old.name(),
            new.name(),
            new.id(),
            old.name(),
            old.id()
        );
    }
    Ok(())
}

fn parse_witness_key(vkey: &str) -> Result<VerifierKey> {
    parse_cosigner_key(vkey, "witness", "daylight witness init")
}

/// A `--vkey` that must be a cosignature/v1 key: a `role`'s, as `init`
/// prints.
fn parse_cosigner_key(vkey: &str, role: &str, init: &str) -> Result<VerifierKey> {
    let key = VerifierKey::parse(vkey).map_err(|e| {
        anyhow::anyhow!(
            "--vkey {vkey:?} is not a verifier key ({e}); {}",
            crate::key::VKEY_FORM
        )
    })?;
    if key.key_type() != KeyType::CosignatureV1 {
        bail!("--vkey: a {role} key must be a cosignature/v1 key (type 0x04), as `{init}` prints");
    }
    Ok(key)
}

/// Adds a mirror: a cosignature/v1 key that is no witness's (the
/// cosignature/v1 message does not name the cosigner, so a key used by both
/// would make a witness's cosignature a mirror's claim) and an http(s) URL.
fn add_mirror(dir: &Path, vkey: &str, url: &str) -> Result<()> {
    let key = parse_cosigner_key(vkey, "mirror", "daylight mirror init")?;
    let url = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--url: a mirror is reached over http or https");
    }
    let store = open(dir)?;
    let registered = registry(dir)?
        .registrations()
        .iter()
        .filter(|r| r.role == Role::Witness)
        .map(|r| r.key.public_key().to_bytes())
        .collect::<Vec<_>>();
    let stored = store.witnesses()?;
    let public = key.public_key().to_bytes();
    if registered.contains(&public)
        || stored
            .iter()
            .any(|w| w.key.public_key().to_bytes() == public)
    {
        bail!("--vkey: this key is a witness's; a mirror needs its own key");
    }
    store.add_mirror(&key, url.as_str().trim_end_matches('/'))?;
    Ok(())
}

/// The witnesses and quorum in force for the log in `dir`, with its
/// registry; witnesses the log knew before they were registry entries are
/// first written into the registry, so every later change is one.
fn witness_state(dir: &Path) -> Result<(Vec<VerifierKey>, usize, Registry)> {
    let store = open(dir)?;
    let mut reg = registry(dir)?;
    let registered: Vec<VerifierKey> = reg
        .registrations()
        .iter()
        .filter(|r| r.role == Role::Witness)
        .map(|r| r.key.clone())
        .collect();
    let mut legacy = false;
    for w in store.witnesses()? {
        if !registered.contains(&w.key) {
            append_registry(
                dir,
                Record::registry_witness(&w.key, &w.url, None, chrono::Utc::now())?,
            )?;
            legacy = true;
        }
    }
    if legacy {
        reg = registry(dir)?;
    }
    let (set, quorum) = daylight_log_server::witnessing::effective_witnesses(
        store.as_ref(),
        Some(&reg),
        store.meta()?.quorum,
    )?;
    Ok((set.into_iter().map(|w| w.key).collect(), quorum, reg))
}

fn add_witness(dir: &Path, vkey: &str, url: &str, replaces: Option<&str>) -> Result<u64> {
    let key = parse_witness_key(vkey)?;
    let url = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
    let replaces = replaces
        .map(|r| parse_witness_key(r).context("--replaces"))
        .transpose()?;
    let (set, _, _) = witness_state(dir)?;
    if set.contains(&key) {
        bail!("--vkey: {} is already a witness of this log", key.name());
    }
    let public = key.public_key().to_bytes();
    if open(dir)?
        .mirrors()?
        .mirrors
        .iter()
        .any(|m| m.key.public_key().to_bytes() == public)
    {
        bail!("--vkey: this key is a mirror's; a witness needs its own key");
    }
    if let Some(old) = &replaces {
        if !set.contains(old) {
            bail!("--replaces: {} is not a witness of this log", old.name());
        }
    }
    let index = append_registry(
        dir,
        Record::registry_witness(&key, url.as_str(), replaces.as_ref(), chrono::Utc::now())?,
    )?;
    // The table keeps the size each witness last cosigned.
    open(dir)?.add_witness(&key, url.as_str())?;
    Ok(index)
}

fn remove_witness(dir: &Path, vkey: &str) -> Result<u64> {
    let key = parse_witness_key(vkey)?;
    let (set, quorum, _) = witness_state(dir)?;
    if !set.contains(&key) {
        bail!("--vkey: {} is not a witness of this log", key.name());
    }
    if set.len() - 1 < quorum {
        bail!(
            "removing {} would leave {} witnesses for a quorum of {quorum}: lower the quorum first (daylight log set-quorum)",
            key.name(),
            set.len() - 1
        );
    }
    append_registry(
        dir,
        Record::registry_revoke(Role::Witness, &key, chrono::Utc::now())?,
    )
}

fn set_quorum(dir: &Path, quorum: u32) -> Result<u64> {
    if quorum == 0 {
        bail!("a quorum of 0 would publish checkpoints no witness has cosigned");
    }
    let (set, now, _) = witness_state(dir)?;
    if quorum as usize > set.len() {
        bail!(
            "a quorum of {quorum} needs at least {quorum} witnesses; the log has {} (add witnesses first)",
            set.len()
        );
    }
    if quorum as usize == now {
        bail!("the quorum is already {quorum}");
    }
    append_registry(dir, Record::registry_quorum(quorum, chrono::Utc::now())?)
}

fn register(args: &RegisterArgs, role: Role) -> Result<()> {
    let index = register_key(&args.dir, &args.vkey, role)?;
    let name = args.vkey.split('+').next().unwrap_or_default();
    println!("registered {name} as {role} at entry {index}");
    Ok(())
}

/// Registers `vkey` for `role` in the log in `dir`; returns the entry's index.
pub fn register_key(dir: &Path, vkey: &str, role: Role) -> Result<u64> {
    let key = parse_note_key(vkey).context("--vkey")?;
    let admission = registrations(dir)?;
    if admission
        .registrations()
        .iter()
        .any(|r| r.key == key && r.role == role && r.revoked_at.is_none())
    {
        bail!("{} is already registered as {role}", key.name());
    }
    append_registry(dir, Record::registry_add(role, &key, chrono::Utc::now())?)
}

fn revoke(args: &RegisterArgs) -> Result<()> {
    let key = parse_note_key(&args.vkey).context("--vkey")?;
    let admission = registrations(&args.dir)?;
    let roles: Vec<Role> = admission
        .registrations()
        .into_iter()
        .filter(|r| r.key == key && r.revoked_at.is_none())
        .map(|r| r.role)
        .collect();
    if roles.is_empty() {
        bail!("{} is not a registered, unrevoked key", key.name());
    }
    for role in roles {
        let index = append_registry(
            &args.dir,
            Record::registry_revoke(role, &key, chrono::Utc::now())?,
        )?;
        println!("revoked {} as {role} at entry {index}", key.name());
    }
    Ok(())
}

/// The log in `dir` ready to serve, with its web view; `key_rate` > 0
/// limits each registered key to that many submissions per second; `name`
/// is the frontend's name in the sequencer lease.
pub fn log_server(
    dir: &Path,
    key_rate: f64,
    publish: &Publication,
    name: Option<&str>,
) -> Result<LogServer> {
    let store = open(dir)?;
    let keys = log_keys(dir, store.as_ref())?;
    let key = keys.current().clone();
    let retiring = keys.retiring().to_vec();
    let reload_keys: daylight_log_server::integrate::KeySource = {
        let (dir, store) = (dir.to_path_buf(), store.clone());
        Arc::new(move || log_keys(&dir, store.as_ref()).map_err(|e| format!("{e:#}")))
    };
    // The records the admission parses, kept a while for the web index.
    let admitted = Arc::new(Admitted::new(Admitted::CAPACITY, Admitted::MAX_BYTES));
    let mut admission =
        RecordAdmission::new(key.verifier().clone()).with_admitted(admitted.clone());
    if key_rate > 0.0 {
        admission = admission.with_rate_limit(RateLimit {
            per_second: key_rate,
            burst: key_rate * 10.0,
        });
    }
    Ok(LogServer {
        extra: Some(
            daylight_web::router(
                daylight_web::WebState::for_log_dir(store.clone(), key.verifier().clone(), dir)
                    .with_admitted(admitted),
            )
            .context("opening the web view's query index")?,
        ),
        store,
        key,
        retiring,
        reload_keys: Some(reload_keys),
        admission: Arc::new(admission),
        batch: BatchConfig::default(),
        publish: publish.target()?,
        lease: name.map(LeaseConfig::named),
    })
}

fn serve(settings: &ServeSettings) -> Result<()> {
    let server = log_server(
        &settings.dir,
        settings.key_rate,
        &settings.publication,
        settings.name.as_deref(),
    )?;
    let listen = settings.listen;
    // The runtime's threads (connections, admission; the sequencer's own
    // threads start from them) above the readers' work, where the process
    // may raise them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(daylight_log_server::priority::raise_runtime_thread)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = daylight_log_server::server::listen(listen)
            .map_err(|e| crate::key::listen_error(listen, e))?;
        // On a runtime thread, which has tried its raise before it runs this.
        let _ = tokio::task::spawn_blocking(daylight_log_server::priority::report_runtime_priority)
            .await;
        // In JSON mode stderr is for the aggregator: only structured lines.
        let text = settings.log_format == LogFormat::Text;
        if text {
            eprintln!(
                "daylight log: serving {} on http://{}",
                server.key.name(),
                listener.local_addr()?
            );
        }
        if let Some(cap) = daylight_log_server::server::backlog_cap() {
            tracing::warn!(
                "net.core.somaxconn is {cap}: the kernel holds at most {cap} connections \
                 waiting to be accepted, not {}; clients connecting in a burst beyond it \
                 retry a second later (raise it with sysctl)",
                daylight_log_server::server::LISTEN_BACKLOG
            );
        }
        server
            .serve(listener, async move {
                let _ = tokio::signal::ctrl_c().await;
                if text {
                    eprintln!("daylight log: shutting down after the open batch");
                }
                tracing::info!("shutting down after the open batch");
            })
            .await?;
        Ok(())
    })
}
