//! `daylight demo`: the whole system on one machine, over real HTTP: a log
//! with its web view, three witnesses (quorum 2), agencies, courts and a
//! provider with keys, a year of sample records, a provider policy and a
//! ready bundle, and the auditor's findings.

pub(crate) mod sample;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::{DateTime, Utc};
use daylight_core::{KeyType, SignerKey};
use daylight_log_server::server::RunningLog;
use daylight_schemas::{Draft, Opening, SignedRecord};
use serde_json::Value;

use crate::key::{generate, read_signer, write_secret};
use sample::{Rng, AGENCIES, PROVIDER};

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

/// Demo options.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the demo keeps its state; a second run on the same DIR resumes.
    #[arg(long, default_value = "daylight-demo")]
    dir: PathBuf,
    /// The log and web view; the witnesses take the next three ports.
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
    fn provider(&self) -> PathBuf {
        self.root.join("provider")
    }
    fn drafts(&self) -> PathBuf {
        self.root.join("drafts")
    }
}

const COURTS: &[&str] = &["courts-us.example", "courts-eu.example"];

fn witness_addr(listen: SocketAddr, i: usize) -> SocketAddr {
    SocketAddr::new(listen.ip(), listen.port() + 1 + i as u16)
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
    let log = spawn_log(&l, args.listen).await?;
    let url = log.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    if fresh {
        seed(&l, &client, &url, args.requests).await?;
    }
    let bundle_index = bundle(&l, &client, &url).await?;
    let policy = crate::gate::starting_policy(&url, Some(PROVIDER), POLICY_MAX_AGE).await?;
    std::fs::create_dir_all(l.provider())?;
    std::fs::write(l.provider().join("policy"), policy)?;
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
        bundle_index,
        &audit,
    );
    if !args.no_serve {
        eprintln!("demo: serving until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("demo: stopping");
    }
    log.stop().await?;
    for w in witnesses {
        w.stop().await?;
    }
    Ok(())
}

fn create(l: &Layout, listen: SocketAddr) -> Result<()> {
    std::fs::create_dir_all(l.keys())
        .with_context(|| format!("creating {}", l.keys().display()))?;
    let mut names: Vec<&str> = AGENCIES.iter().map(|a| a.name).collect();
    names.extend(COURTS);
    names.push(PROVIDER);
    for name in &names {
        write_secret(&l.key(name), &generate(name, KeyType::Ed25519)?)?;
    }
    let log_vkey = crate::log::init(&l.log(), ORIGIN, 2, None)?;
    let store = crate::log::open(&l.log())?;
    for i in 0..3 {
        let vkey = crate::witness::init(&l.witness(i), &format!("witness-{}.demo.example", i + 1))?;
        crate::witness::add_log(&l.witness(i), ORIGIN, &log_vkey.to_string())?;
        store.add_witness(&vkey, &format!("http://{}", witness_addr(listen, i)))?;
    }
    for a in AGENCIES {
        crate::log::register_key(
            &l.log(),
            &read_signer(&l.key(a.name))?.verifier().to_string(),
            daylight_schemas::Role::Agency,
        )?;
    }
    for c in COURTS {
        crate::log::register_key(
            &l.log(),
            &read_signer(&l.key(c))?.verifier().to_string(),
            daylight_schemas::Role::Court,
        )?;
    }
    crate::log::register_key(
        &l.log(),
        &read_signer(&l.key(PROVIDER))?.verifier().to_string(),
        daylight_schemas::Role::Provider,
    )?;
    Ok(())
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

struct Follow {
    at: DateTime<Utc>,
    signer: String,
    draft: Value,
}

async fn seed(l: &Layout, client: &reqwest::Client, url: &str, n: usize) -> Result<()> {
    let now = Utc::now();
    let mut rng = Rng::new(0xda11_9117);
    let mut keys: HashMap<String, SignerKey> = HashMap::new();
    for name in AGENCIES
        .iter()
        .map(|a| a.name)
        .chain(COURTS.iter().copied())
        .chain([PROVIDER])
    {
        keys.insert(name.to_owned(), read_signer(&l.key(name))?);
    }
    let key = |name: &str| keys.get(name).ok_or_else(|| anyhow!("no demo key {name}"));
    let mut pending: Vec<Follow> = Vec::new();
    let mut broke_release = false;
    let mut broke_emergency = false;
    let mut broke_disclosure = false;
    let mut submitted = 0usize;
    for i in 0..n {
        let p = sample::primary(&mut rng, i, n, now);
        // Follow-ups due before this record go first, in time order.
        pending.sort_by_key(|f| f.at);
        while pending.first().is_some_and(|f| f.at <= p.created) {
            let f = pending.remove(0);
            submit(l, client, url, key(&f.signer)?, &f.draft, f.at).await?;
            submitted += 1;
        }
        let agency = AGENCIES[p.agency].name;
        let court = if AGENCIES[p.agency].jurisdiction.starts_with("US") {
            COURTS[0]
        } else {
            COURTS[1]
        };
        let (index, record, opening) =
            submit(l, client, url, key(agency)?, &p.draft, p.created).await?;
        submitted += 1;
        if submitted % 50 == 0 {
            eprintln!("demo: {submitted} records");
        }
        let r = sample::entry_ref(index, &record.leaf_hash().to_hex());
        let valid_until = record.valid_until().unwrap_or(p.created);
        let sealed_until = record.sealed_until().unwrap_or(valid_until);
        if p.emergency {
            // One emergency is never ratified, on purpose.
            if !broke_emergency && i > n / 2 {
                broke_emergency = true;
            } else {
                pending.push(Follow {
                    at: p.created + chrono::Duration::hours(20),
                    signer: court.into(),
                    draft: sample::ratification(
                        r.clone(),
                        p.draft["case_reference"].as_str().unwrap_or("X"),
                        &mut rng,
                    ),
                });
            }
        }
        if p.to_demo_provider && !rng.chance(0.1) {
            // One release names more targets than were authorised, on purpose.
            let mut k = p.targets.len();
            if !broke_release && i > n / 3 {
                broke_release = true;
                k += 2;
            }
            pending.push(Follow {
                at: p.created + chrono::Duration::hours(6),
                signer: PROVIDER.into(),
                draft: sample::release(r.clone(), k, p.created + chrono::Duration::hours(5)),
            });
        } else if rng.chance(0.05) {
            pending.push(Follow {
                at: p.created + chrono::Duration::days(2),
                signer: agency.into(),
                draft: sample::withdrawal(r.clone()),
            });
            continue;
        }
        if valid_until < now && rng.chance(0.6) {
            pending.push(Follow {
                at: valid_until + chrono::Duration::days(20),
                signer: agency.into(),
                draft: sample::outcome(r.clone(), &mut rng),
            });
        }
        if sealed_until < now {
            if rng.chance(0.15) && sealed_until - chrono::Duration::days(7) > p.created {
                pending.push(Follow {
                    at: sealed_until - chrono::Duration::days(7),
                    signer: court.into(),
                    draft: sample::extension(r.clone(), sealed_until + chrono::Duration::days(365)),
                });
            } else if !broke_disclosure && !p.emergency {
                // One overdue disclosure is left undone, on purpose.
                broke_disclosure = true;
            } else {
                pending.push(Follow {
                    at: sealed_until + chrono::Duration::days(3),
                    signer: agency.into(),
                    draft: sample::disclosure(r.clone(), &opening)?,
                });
            }
        }
    }
    pending.sort_by_key(|f| f.at);
    for f in pending.into_iter().filter(|f| f.at <= now) {
        submit(l, client, url, key(&f.signer)?, &f.draft, f.at).await?;
        submitted += 1;
    }
    eprintln!("demo: {submitted} sample records in the log");
    Ok(())
}

/// A valid, current request to the demo provider, submitted now, with its
/// bundle in DIR/bundle; on a resumed run, only the proof is refreshed.
async fn bundle(l: &Layout, client: &reqwest::Client, url: &str) -> Result<u64> {
    let dir = l.bundle();
    let index_file = dir.join("index");
    let index = if let Ok(text) = std::fs::read_to_string(&index_file) {
        text.trim().parse().context("bundle/index")?
    } else {
        std::fs::create_dir_all(&dir)?;
        let now = Utc::now();
        let (draft, targets) = current_request(now.timestamp() as u64, now);
        let key = read_signer(&l.key(AGENCIES[0].name))?;
        let (index, record, opening) = submit(l, client, url, &key, &draft, now).await?;
        std::fs::write(dir.join("entry"), record.as_bytes())?;
        std::fs::write(dir.join("opening.json"), opening.to_json())?;
        std::fs::write(dir.join("target"), format!("{}\n", targets[0]))?;
        std::fs::write(&index_file, format!("{index}\n"))?;
        index
    };
    // A draft to try `agency submit` with, dated around today.
    std::fs::create_dir_all(l.drafts())?;
    let (draft, _) = current_request(7, Utc::now());
    std::fs::write(
        l.drafts().join("request.json"),
        serde_json::to_string_pretty(&draft)?,
    )?;
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

/// A valid request to the demo provider whose window is open now; its targets.
fn current_request(seed: u64, now: DateTime<Utc>) -> (Value, Vec<String>) {
    let mut p = sample::primary(&mut Rng::new(seed), 0, 1, now);
    let fmt = sample::ts;
    p.draft["kind"] = "request".into();
    p.draft["provider"] = PROVIDER.into();
    p.draft["valid_from"] = fmt(now - chrono::Duration::hours(1)).into();
    p.draft["valid_until"] = fmt(now + chrono::Duration::days(30)).into();
    p.draft["sealed_until"] = fmt(now + chrono::Duration::days(365)).into();
    if let Some(o) = p.draft.as_object_mut() {
        o.remove("ground");
        o.remove("ratify_by");
    }
    p.draft["issuing_authority"] =
        serde_json::json!({ "name": AGENCIES[0].court, "type": "court" });
    p.draft["order_document_sha256"] =
        "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae".into();
    (p.draft, p.targets)
}

fn print_guide(
    l: &Layout,
    url: &str,
    witnesses: &[String],
    bundle_index: u64,
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
    println!("\nKeys:");
    println!("  log             {}", vkey(&l.log().join("log.key")));
    println!("  provider        {}", vkey(&l.key(PROVIDER)));
    for a in AGENCIES {
        println!("  agency          {}", vkey(&l.key(a.name)));
    }
    println!("\nTry:");
    println!("  # the provider's gate on the ready bundle (entry {bundle_index}): ALLOW");
    println!("  {exe} gate verify --policy {d}/provider/policy --entry {d}/bundle/entry --proof {d}/bundle/proof --opening {d}/bundle/opening.json --target \"$(cat {d}/bundle/target)\"");
    println!("  # the same with another target: DENY");
    println!("  {exe} gate verify --policy {d}/provider/policy --entry {d}/bundle/entry --proof {d}/bundle/proof --opening {d}/bundle/opening.json --target acct:0000000000");
    println!("  # audit the whole log");
    println!("  {exe} audit --log {url} --dir {d}/my-audit");
    println!("  # submit your own request as an agency");
    println!("  {exe} agency submit --log {url} --key {d}/keys/{}.key --draft {d}/drafts/request.json --out {d}/my-bundle", AGENCIES[0].name);
    match audit {
        Ok(summary) => println!("\nAuditor:\n{summary}"),
        Err(e) => println!("\nAuditor: could not run: {e:#}"),
    }
}
