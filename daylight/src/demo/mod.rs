//! `daylight demo`: the whole system on one machine, over real HTTP: a log
//! with its web view, three witnesses (quorum 2), agencies, courts and a
//! provider with keys, a year of sample records, a provider policy and a
//! ready bundle, three custodians holding the bundle's target key 2 of 3,
//! a C2SP tlog-mirror every published checkpoint waits for, and the
//! auditor's findings.

pub(crate) mod sample;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::{DateTime, Utc};
use daylight_core::{KeyType, SignerKey};
use daylight_log_server::server::RunningLog;
use daylight_schemas::{Body, Draft, Opening, PolicyBody, Record, SignedRecord, Text};
use serde_json::Value;

use crate::key::{generate, read_signer, write_secret};
use sample::{Rng, PROFILES, PROVIDER, PROVIDERS};

/// How old (seconds) the newest cosignature on a bundle may be in the demo policy.
const POLICY_MAX_AGE: u64 = 24 * 3600;

/// Runs `daylight audit` as its own process, as a user would; its summary.
async fn run_auditor(url: &str, dir: &Path) -> Result<String> {
    let exe = std::env::current_exe().context("finding the daylight binary")?;
    let out = tokio::process::Command::new(exe)
        .args(["audit", "--log", url, "--dir"])
        .arg(dir)
        .output()
        .await
        .context("running daylight audit")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) | Some(1) => Ok(text),
        _ => Err(anyhow!(
            "daylight audit failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The demo's log origin.
pub const ORIGIN: &str = "demo.daylight.example/log";

/// The demo's custodians: the provider's own, an oversight body's and a
/// court registry's; any two of them release a key.
pub const CUSTODIANS: [&str; 3] = [
    "custody.messenger.example",
    "custody.oversight.example",
    "custody.court-registry.example",
];
/// How many custodians' shares put a key together.
const CUSTODY_THRESHOLD: u8 = 2;

/// Demo options.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the demo keeps its state; a second run on the same DIR resumes.
    #[arg(long, default_value = "daylight-demo")]
    dir: PathBuf,
    /// The log and web view; the witnesses take the next three ports, the
    /// custodians the three after them, the mirror the one after those.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Sample requests to create on the first run (follow-up records come on top).
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Seed the data, print what to try, and exit instead of serving.
    #[arg(long)]
    no_serve: bool,
}

struct Layout {
    root: PathBuf,
}

impl Layout {
    fn log(&self) -> PathBuf {
        self.root.join("log")
    }
    fn witness(&self, i: usize) -> PathBuf {
        self.root.join(format!("witness-{}", i + 1))
    }
    fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    fn key(&self, name: &str) -> PathBuf {
        self.keys().join(format!("{name}.key"))
    }
    fn openings(&self) -> PathBuf {
        self.root.join("openings")
    }
    fn bundle(&self) -> PathBuf {
        self.root.join("bundle")
    }
    /// A current request the demo provider's standards refuse.
    fn refused_bundle(&self) -> PathBuf {
        self.root.join("bundle-refused")
    }
    fn provider(&self) -> PathBuf {
        self.root.join("provider")
    }
    fn drafts(&self) -> PathBuf {
        self.root.join("drafts")
    }
    fn mirror(&self) -> PathBuf {
        self.root.join("mirror")
    }
    fn custodian(&self, i: usize) -> PathBuf {
        self.root.join(format!("custodian-{}", i + 1))
    }
    /// The bundle target's key as the provider's key system holds it
    /// (standing in for the device's or account's own key): the split's
    /// input, and what a recovery must give back.
    fn escrowed_key(&self) -> PathBuf {
        self.provider().join("escrowed.key")
    }
}

fn witness_addr(listen: SocketAddr, i: usize) -> SocketAddr {
    SocketAddr::new(listen.ip(), listen.port() + 1 + i as u16)
}

fn custodian_addr(listen: SocketAddr, i: usize) -> SocketAddr {
    SocketAddr::new(listen.ip(), listen.port() + 4 + i as u16)
}

fn mirror_addr(listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(listen.ip(), listen.port() + 7)
}

/// The demo's mirror, serving in the background.
struct RunningMirror {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningMirror {
    /// Serves the mirror in `dir` on `addr`.
    async fn spawn(dir: &Path, addr: SocketAddr) -> Result<RunningMirror> {
        let signer = read_signer(&dir.join(daylight_mirror::KEY_FILE))?;
        let mirror = daylight_mirror::Mirror::open(&dir.join(daylight_mirror::DB_FILE), signer)?;
        let listener = daylight_log_server::server::listen(addr)
            .map_err(|e| crate::key::listen_error(addr, e))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(daylight_mirror::serve(
            listener,
            std::sync::Arc::new(mirror),
            async {
                let _ = rx.await;
            },
        ));
        Ok(RunningMirror { url, stop, task })
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("mirror task")??;
        Ok(())
    }
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<()> {
    let l = Layout {
        root: args.dir.clone(),
    };
    let fresh = !l.log().join("log.db").exists();
    if fresh {
        eprintln!(
            "demo: creating keys, three witnesses and a log in {}",
            l.root.display()
        );
        create(&l, args.listen)?;
    } else {
        eprintln!("demo: resuming from {}", l.root.display());
    }

    let mut witnesses = Vec::new();
    for i in 0..3 {
        witnesses.push(crate::witness::spawn(&l.witness(i), witness_addr(args.listen, i)).await?);
    }
    // A demo made before it had a mirror resumes without one.
    let mirror = if l.mirror().join(daylight_mirror::DB_FILE).exists() {
        Some(RunningMirror::spawn(&l.mirror(), mirror_addr(args.listen)).await?)
    } else {
        None
    };
    let log = spawn_log(&l, args.listen).await?;
    let url = log.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    if fresh {
        seed(&l, &client, &url, args.requests).await?;
    }
    let bundle_index = bundle(&l, &client, &url, &l.bundle(), |seed, now| {
        sample::current_request(seed, now)
    })
    .await?;
    // A draft to try `agency submit` with, dated around today.
    std::fs::create_dir_all(l.drafts())?;
    let draft = sample::current_request(7, Utc::now()).draft;
    std::fs::write(
        l.drafts().join("request.json"),
        serde_json::to_string_pretty(&draft)?,
    )?;
    let refused_index = bundle(&l, &client, &url, &l.refused_bundle(), |seed, now| {
        sample::current_refused_request(seed, now)
    })
    .await?;
    let policy = gate_policy(&url).await?;
    std::fs::create_dir_all(l.provider())?;
    std::fs::write(l.provider().join("policy"), policy)?;
    let custodians = custody(&l, &url, args.listen).await?;
    let audit = run_auditor(&url, &l.root.join("audit")).await;
    // The web view shows the findings file it finds in the log's directory.
    let findings = l.root.join("audit").join("findings.json");
    if findings.exists() {
        std::fs::copy(&findings, l.log().join("findings.json"))
            .context("publishing the findings to the web view")?;
    }

    print_guide(
        &l,
        &url,
        &witnesses.iter().map(|w| w.url()).collect::<Vec<_>>(),
        mirror.as_ref().map(|m| m.url.as_str()),
        &custodians.iter().map(|c| c.url()).collect::<Vec<_>>(),
        (bundle_index, refused_index),
        &audit,
    );
    if !args.no_serve {
        eprintln!("demo: serving until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("demo: stopping");
    }
    for c in custodians {
        c.stop().await?;
    }
    log.stop().await?;
    if let Some(m) = mirror {
        m.stop().await?;
    }
    for w in witnesses {
        w.stop().await?;
    }
    Ok(())
}

/// The demo provider's gate policy: the starting policy for the log, with
/// the provider's own standards, as it published them, in place of the
/// generic starting set of content lines; so its gate refuses what its
/// published standards refuse, and nothing else.
async fn gate_policy(url: &str) -> Result<String> {
    let policy = crate::gate::starting_policy(url, Some(PROVIDER), POLICY_MAX_AGE).await?;
    if !policy.contains(crate::gate::STARTING_CONTENT) {
        bail!("the starting policy no longer ends with the starting content lines");
    }
    let published = sample::published(Utc::now())?;
    let standards = sample::in_force(&published, PROVIDER, Utc::now())
        .ok_or_else(|| anyhow!("{PROVIDER} publishes no standards"))?;
    let mut own = format!(
        "# What a request may ask: {PROVIDER}'s standards, as published in the log\n\
         # (its newest policy entry). A request they refuse is DENY <reason>.\n"
    );
    for line in standards.lines {
        own.push_str(line);
        own.push('\n');
    }
    // The demo's mirror is run by "someone else": the provider requires
    // its cosignature, so a bundle proves the entry is readable there too.
    let policy = policy.replace(
        "\n# daylight-tlog-mirror mirror.demo.example+",
        "\ndaylight-tlog-mirror mirror.demo.example+",
    );
    Ok(policy.replace(crate::gate::STARTING_CONTENT, &own))
}

fn create(l: &Layout, listen: SocketAddr) -> Result<()> {
    std::fs::create_dir_all(l.keys())
        .with_context(|| format!("creating {}", l.keys().display()))?;
    let names: Vec<&str> = sample::agencies()
        .map(|a| a.key)
        .chain(sample::courts().map(|c| c.key))
        .chain(PROVIDERS.iter().copied())
        .collect();
    for name in &names {
        write_secret(&l.key(name), &generate(name, KeyType::Ed25519)?)?;
    }
    let log_vkey = crate::log::init(&l.log(), ORIGIN, 2, None)?;
    let store = crate::log::open(&l.log())?;
    // A C2SP tlog-mirror the log pushes to; every published checkpoint
    // waits for its cosignature (mirror quorum 1), so every proof bundle
    // shows the entries are readable where the log operator is not.
    let mirror_vkey = crate::mirror::init(&l.mirror(), "mirror.demo.example")?;
    {
        let mut conn = daylight_mirror::store::open(&l.mirror().join(daylight_mirror::DB_FILE))?;
        let now = Utc::now().timestamp().max(0) as u64;
        daylight_mirror::store::add_log(&mut conn, ORIGIN, &log_vkey, now)?;
    }
    store.add_mirror(&mirror_vkey, &format!("http://{}", mirror_addr(listen)))?;
    store.set_mirror_quorum(1)?;
    for i in 0..3 {
        let vkey = crate::witness::init(&l.witness(i), &format!("witness-{}.demo.example", i + 1))?;
        crate::witness::add_log(&l.witness(i), ORIGIN, &log_vkey.to_string())?;
        store.add_witness(&vkey, &format!("http://{}", witness_addr(listen, i)))?;
    }
    for a in sample::agencies() {
        crate::log::register_key(
            &l.log(),
            &read_signer(&l.key(a.key))?.verifier().to_string(),
            daylight_schemas::Role::Agency,
        )?;
    }
    for c in sample::courts() {
        crate::log::register_key(
            &l.log(),
            &read_signer(&l.key(c.key))?.verifier().to_string(),
            daylight_schemas::Role::Court,
        )?;
    }
    for p in PROVIDERS {
        crate::log::register_key(
            &l.log(),
            &read_signer(&l.key(p))?.verifier().to_string(),
            daylight_schemas::Role::Provider,
        )?;
    }
    // The custodians' keys are registered now, while nothing else writes to
    // the log; their directories follow once the provider's policy exists.
    for name in CUSTODIANS {
        let key = generate(name, KeyType::Ed25519)?;
        write_secret(&l.key(name), &key)?;
        crate::log::register_key(
            &l.log(),
            &key.verifier().to_string(),
            daylight_schemas::Role::Custodian,
        )?;
    }
    Ok(())
}

/// Threshold custody of the ready bundle's target key: the three
/// custodians (created on the first run, each with the provider's policy
/// and the provider as its one depositor) serve on the ports after the
/// witnesses, and on the first run the provider splits the key 2 of 3
/// among them with `daylight escrow split`, as its own process.
async fn custody(
    l: &Layout,
    url: &str,
    listen: SocketAddr,
) -> Result<Vec<crate::custodian::RunningCustodian>> {
    if !l.key(CUSTODIANS[0]).exists() {
        bail!(
            "{} was made before the demo had custodians (no {}): start a fresh demo with another --dir",
            l.root.display(),
            l.key(CUSTODIANS[0]).display()
        );
    }
    let provider = read_signer(&l.key(PROVIDER))?.verifier().to_string();
    let mut running = Vec::new();
    for (i, name) in CUSTODIANS.iter().enumerate() {
        let dir = l.custodian(i);
        if !dir.join(daylight_custodian::config::CONFIG_FILE).exists() {
            crate::custodian::init_with_key(
                &dir,
                read_signer(&l.key(name))?,
                &l.provider().join("policy"),
                url,
                std::slice::from_ref(&provider),
            )?;
        }
        let timeout = daylight_custodian::DEFAULT_RECEIPT_TIMEOUT;
        running.push(crate::custodian::spawn(&dir, custodian_addr(listen, i), timeout).await?);
    }
    if !l.escrowed_key().exists() {
        eprintln!("demo: splitting the bundle's target key 2 of 3 among the custodians");
        let target = std::fs::read_to_string(l.bundle().join("target"))
            .context("reading the bundle's target")?;
        let exe = std::env::current_exe().context("finding the daylight binary")?;
        let mut split = tokio::process::Command::new(exe);
        split
            .args(["escrow", "split", "--provider-key"])
            .arg(l.key(PROVIDER))
            .args(["--target", target.trim(), "--threshold"])
            .arg(CUSTODY_THRESHOLD.to_string())
            .args(["--generate", "--key-out"])
            .arg(l.escrowed_key());
        for c in &running {
            split.args(["--custodian", &c.url()]);
        }
        let out = split
            .output()
            .await
            .context("running daylight escrow split")?;
        if !out.status.success() {
            bail!(
                "daylight escrow split failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(running)
}

async fn spawn_log(l: &Layout, listen: SocketAddr) -> Result<RunningLog> {
    // No per-key limit: the demo's agencies submit a year of records at once.
    crate::log::log_server(&l.log(), 0.0, &Default::default(), None)?
        .spawn(listen)
        .await
        .with_context(|| format!("starting the log on {listen}"))
}

/// Seals and submits one draft; keeps its opening; returns (index, record).
async fn submit(
    l: &Layout,
    client: &reqwest::Client,
    url: &str,
    key: &SignerKey,
    draft: &Value,
    created: DateTime<Utc>,
) -> Result<(u64, SignedRecord, Opening)> {
    let draft =
        Draft::from_json(&draft.to_string()).with_context(|| format!("sample draft {draft}"))?;
    let mut rng = |buf: &mut [u8]| {
        let _ = getrandom::getrandom(buf);
    };
    let (record, opening) = draft.seal(key, ORIGIN, created, &mut rng)?;
    let index = crate::agency::post_record(client, url, record.as_bytes())
        .await
        .context("a sample record")?;
    std::fs::create_dir_all(l.openings())?;
    std::fs::write(
        l.openings().join(format!("{index}.json")),
        opening.to_json(),
    )?;
    Ok((index, record, opening))
}

/// A follow-up record waiting for its time: its plan and the entry it refers to.
struct Pending<'a> {
    follow: &'a sample::Follow,
    entry: Value,
    opening: std::rc::Rc<Opening>,
}

/// Submits the planned history in time order: the providers' published
/// standards, the primary records and their follow-ups.
struct Seeder<'a> {
    l: &'a Layout,
    client: &'a reqwest::Client,
    url: &'a str,
    keys: HashMap<&'static str, SignerKey>,
    /// The providers' standards, oldest first, and how many are logged.
    published: &'a [sample::Published],
    next_policy: usize,
    /// Follow-ups wait here until their entry is logged and their time has come.
    pending: Vec<Pending<'a>>,
    submitted: usize,
}

impl<'a> Seeder<'a> {
    fn key(&self, name: &str) -> Result<&SignerKey> {
        self.keys
            .get(name)
            .ok_or_else(|| anyhow!("no demo key {name}"))
    }

    fn count(&mut self) {
        self.submitted += 1;
        if self.submitted % 50 == 0 {
            eprintln!("demo: {} records", self.submitted);
        }
    }

    /// Submits the standards and follow-ups due by `until` (all: `None`),
    /// in time order; a policy goes before a follow-up of the same second,
    /// which was decided under it.
    async fn catch_up(&mut self, until: Option<DateTime<Utc>>) -> Result<()> {
        loop {
            let due = |t: DateTime<Utc>| until.is_none_or(|u| t <= u);
            let policy = self.published.get(self.next_policy).filter(|p| due(p.at));
            let follow = self.pending.first().filter(|f| due(f.follow.at));
            match (policy, follow) {
                (Some(p), f) if f.is_none_or(|f| p.at <= f.follow.at) => {
                    self.publish(p).await?;
                    self.next_policy += 1;
                }
                (_, Some(_)) => {
                    let f = self.pending.remove(0);
                    let draft = f.follow.draft(f.entry, &f.opening)?;
                    let key = self.key(f.follow.signer)?;
                    submit(self.l, self.client, self.url, key, &draft, f.follow.at).await?;
                }
                _ => return Ok(()),
            }
            self.count();
        }
    }

    /// A provider publishes its standards: a `policy` entry signed by its
    /// registered key.
    async fn publish(&self, p: &sample::Published) -> Result<u64> {
        let lines = p
            .lines
            .iter()
            .map(|line| Text::new(line))
            .collect::<Result<Vec<_>, _>>()?;
        let record = Record::new(p.at, Body::Policy(PolicyBody { lines }))?
            .sign(self.key(p.provider)?, ORIGIN)?;
        crate::agency::post_record(self.client, self.url, record.as_bytes())
            .await
            .with_context(|| format!("{}'s standards", p.provider))
    }

    /// Submits a primary record and plans its follow-ups; checks that its
    /// provider's gate, given the record as logged, decides as planned.
    async fn primary(&mut self, p: &'a sample::Primary) -> Result<()> {
        let (index, record, opening) = submit(
            self.l,
            self.client,
            self.url,
            self.key(p.agency.key)?,
            &p.draft,
            p.created,
        )
        .await?;
        self.count();
        let answer_at = p.created + chrono::Duration::hours(sample::ANSWER_AFTER_HOURS);
        let decided =
            sample::gate_check(self.published, p.provider, answer_at, &record, p.agency.key)
                .err()
                .map(|r| r.reason);
        if decided != p.refused {
            bail!(
                "entry {index}: {}'s gate decides {decided:?}, the plan said {:?}",
                p.provider,
                p.refused
            );
        }
        let entry = sample::entry_ref(index, &record.leaf_hash().to_hex());
        let opening = std::rc::Rc::new(opening);
        self.pending.extend(p.follows.iter().map(|follow| Pending {
            follow,
            entry: entry.clone(),
            opening: opening.clone(),
        }));
        self.pending.sort_by_key(|f| f.follow.at);
        Ok(())
    }
}

async fn seed(l: &Layout, client: &reqwest::Client, url: &str, n: usize) -> Result<()> {
    let now = Utc::now();
    let history = sample::history(&mut Rng::new(0xda11_9117), n, now)?;
    let published = sample::published(now)?;
    let mut keys = HashMap::new();
    for name in sample::agencies()
        .map(|a| a.key)
        .chain(sample::courts().map(|c| c.key))
        .chain(PROVIDERS.iter().copied())
    {
        keys.insert(name, read_signer(&l.key(name))?);
    }
    let mut s = Seeder {
        l,
        client,
        url,
        keys,
        published: &published,
        next_policy: 0,
        pending: Vec::new(),
        submitted: 0,
    };
    for p in &history {
        s.catch_up(Some(p.created)).await?;
        s.primary(p).await?;
    }
    s.catch_up(None).await?;
    eprintln!("demo: {} sample records in the log", s.submitted);
    Ok(())
}

/// A valid, current request to the demo provider (`make(seed, now)`),
/// submitted now, with its bundle in `dir`; on a resumed run, only the proof
/// is refreshed.
async fn bundle(
    l: &Layout,
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
    make: impl FnOnce(u64, DateTime<Utc>) -> sample::Primary,
) -> Result<u64> {
    let index_file = dir.join("index");
    let index = if let Ok(text) = std::fs::read_to_string(&index_file) {
        text.trim().parse().context("bundle/index")?
    } else {
        std::fs::create_dir_all(dir)?;
        let now = Utc::now();
        let p = make(now.timestamp() as u64, now);
        let key = read_signer(&l.key(p.agency.key))?;
        let (index, record, opening) = submit(l, client, url, &key, &p.draft, now).await?;
        std::fs::write(dir.join("entry"), record.as_bytes())?;
        std::fs::write(dir.join("opening.json"), opening.to_json())?;
        std::fs::write(dir.join("target"), format!("{}\n", p.targets[0]))?;
        std::fs::write(&index_file, format!("{index}\n"))?;
        index
    };
    // A fresh proof against the newest cosigned checkpoint.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = client
            .get(format!("{url}/api/v1/entries/{index}/proof"))
            .send()
            .await?;
        if r.status().is_success() {
            std::fs::write(dir.join("proof"), r.bytes().await?)?;
            return Ok(index);
        }
        if std::time::Instant::now() > deadline {
            bail!("no cosigned checkpoint covers the demo bundle's entry {index} after a minute");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_guide(
    l: &Layout,
    url: &str,
    witnesses: &[String],
    mirror: Option<&str>,
    custodians: &[String],
    (bundle_index, refused_index): (u64, u64),
    audit: &Result<String>,
) {
    let d = l.root.display();
    let exe = std::env::args().next().unwrap_or_else(|| "daylight".into());
    let vkey = |p: &Path| {
        read_signer(p)
            .map(|k| k.verifier().to_string())
            .unwrap_or_default()
    };
    println!("Daylight demo is up.\n");
    println!("  web view        {url}/");
    println!("  log API         {url}/api/v1/log");
    println!("  checkpoint      {url}/checkpoint");
    for (i, w) in witnesses.iter().enumerate() {
        println!("  witness {}       {w}/logs", i + 1);
    }
    let mirrored = mirror.map(|m| {
        format!(
            "{m}/{}",
            daylight_core::witness_protocol::origin_hash(ORIGIN)
        )
    });
    if let Some(m) = &mirrored {
        println!("  mirror          {m}/checkpoint  (C2SP tlog-mirror of the log)");
    }
    for (c, name) in custodians.iter().zip(CUSTODIANS) {
        println!("  custodian       {c}/api/v1/custodian  ({name})");
    }
    println!("\nKeys:");
    println!("  log             {}", vkey(&l.log().join("log.key")));
    for p in PROVIDERS {
        println!("  provider        {}", vkey(&l.key(p)));
    }
    for c in CUSTODIANS {
        println!("  custodian       {}", vkey(&l.key(c)));
    }
    for p in PROFILES {
        for a in p.agencies {
            println!("  agency {:<8} {}", p.jurisdiction, vkey(&l.key(a.key)));
        }
    }
    println!("\nProviders' standards (published in the log; refusals follow them):");
    if let Ok(published) = sample::published(Utc::now()) {
        for p in PROVIDERS {
            if let Some(s) = sample::in_force(&published, p, Utc::now()) {
                println!("  {p:<18} {}", s.lines.join("; "));
            }
        }
    }
    println!("\nTry:");
    println!("  # the provider's gate on the ready bundle (entry {bundle_index}): ALLOW");
    println!("  {exe} gate verify --policy {d}/provider/policy --entry {d}/bundle/entry --proof {d}/bundle/proof --opening {d}/bundle/opening.json --target \"$(cat {d}/bundle/target)\"");
    println!("  # the same with another target: DENY");
    println!("  {exe} gate verify --policy {d}/provider/policy --entry {d}/bundle/entry --proof {d}/bundle/proof --opening {d}/bundle/opening.json --target acct:0000000000");
    println!("  # a GB request to the provider (entry {refused_index}): DENY jurisdiction_denied, by its published standards; add --refusal-key {d}/keys/{PROVIDER}.key --refusal-out {d}/refusal.json --submit {url} to log the refusal");
    println!("  {exe} gate verify --policy {d}/provider/policy --entry {d}/bundle-refused/entry --proof {d}/bundle-refused/proof --opening {d}/bundle-refused/opening.json --target \"$(cat {d}/bundle-refused/target)\"");
    let agency = std::fs::read(l.bundle().join("entry"))
        .ok()
        .and_then(|e| SignedRecord::parse(&e).ok())
        .map(|r| r.signer().name.to_string())
        .unwrap_or_default();
    let asked = custodians
        .iter()
        .map(|c| format!(" --custodian {c}"))
        .collect::<String>();
    println!("  # threshold custody: the bundle's target key exists only as shares with three custodians; any {CUSTODY_THRESHOLD} put it together, each after its own gate allowed the request and its own receipt is in the log (stop one custodian and it still works; with one left it fails)");
    println!(
        "  {exe} escrow recover --bundle {d}/bundle --key {d}/keys/{agency}.key --log {url}{asked}"
    );
    println!("  # audit the whole log");
    println!("  {exe} audit --log {url} --dir {d}/my-audit");
    if let Some(m) = &mirrored {
        println!("  # the same from the mirror alone (stop the log first: the mirror still answers), or compare the log with it");
        println!("  {exe} audit --log {m} --dir {d}/mirror-audit");
        println!("  {exe} audit --log {url} --mirror {m} --dir {d}/my-audit");
    }
    println!("  # submit your own request as an agency");
    println!("  {exe} agency submit --log {url} --key {d}/keys/{}.key --draft {d}/drafts/request.json --out {d}/my-bundle", PROFILES[0].agencies[0].key);
    match audit {
        Ok(summary) => println!("\nAuditor:\n{summary}"),
        Err(e) => println!("\nAuditor: could not run: {e:#}"),
    }
}
