//! `daylight bench custody`: recovering keys from 2 of 3 custodians over
//! HTTP, end to end, against the gate decisions those two custodians make,
//! measured in the same run and process.
//!
//! Everything runs in this process on 127.0.0.1 ports the system picks: a
//! log with its web view, three witnesses (quorum 2, as the demo), three
//! custodians (threshold 2) taking the provider's deposits, and one agency
//! whose N requests each name their own target, whose key is split 2 of 3.
//! The setup goes through the same functions as the commands (`log init`,
//! `witness init`, `custodian init`, `agency submit`, `escrow split`); the
//! timed recoveries are `escrow recover`'s own function.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::Utc;
use daylight_core::{KeyType, SignerKey};
use daylight_custodian::config::POLICY_FILE;
use daylight_custodian::{HttpLog, LogClient as _, DEFAULT_RECEIPT_TIMEOUT};
use daylight_custody::{recover, seal, EscrowKey};
use daylight_gate::{decide, parse_opening, verify_entry, Policy};
use daylight_schemas::{Draft, Role};

use super::{percentile, request_json, BENCH_PROVIDER};
use crate::escrow::{self, Request};
use crate::key::{generate, write_secret};

/// The bench log's origin.
const ORIGIN: &str = "bench.daylight.example/custody";
/// Witnesses and the quorum that must cosign a checkpoint: the demo's.
const WITNESSES: usize = 3;
const QUORUM: usize = 2;
/// Custodians (one share each) and how many shares put a key together.
const CUSTODIANS: [&str; 3] = ["a", "b", "c"];
const THRESHOLD: u8 = 2;
/// How old the newest cosignature may be in the custodians' policy.
const POLICY_MAX_AGE: u64 = 3600;
/// The agency's key name.
const AGENCY: &str = "agency.bench.example";
/// Bundles made at once (each `agency submit` waits for its proof).
const SUBMIT_AT_ONCE: usize = 16;
/// The gate-alone phase runs whole passes over the bundles until at least
/// this long has passed (at most [`GATE_PASSES`]): enough samples for a p99
/// even with few bundles.
const GATE_MIN_TIME: Duration = Duration::from_secs(2);
const GATE_PASSES: usize = 50;
/// Fresh submissions timed to a cosigned checkpoint, polled this often.
const LOG_SAMPLES: usize = 20;
const LOG_POLL: Duration = Duration::from_millis(2);
/// How long one submission may take to be cosigned before the bench gives up.
const LOG_WAIT: Duration = Duration::from_secs(30);
/// Requests whose repeat recovery is taken apart (the rest add nothing).
const BREAKDOWN_MAX: usize = 100;
/// Progress goes to stderr every this many recoveries.
const PROGRESS_EVERY: usize = 25;

/// One request: its bundle, as `escrow recover` reads it, and the key split
/// for its target (to check each recovery against).
struct Case {
    req: Request,
    key: EscrowKey,
}

/// What the bench set up and runs against.
struct World {
    log: daylight_log_server::server::RunningLog,
    witnesses: Vec<crate::witness::RunningWitness>,
    custodians: Vec<crate::custodian::RunningCustodian>,
    /// The custodians' URLs, in order (a recovery asks them in waves).
    urls: Vec<String>,
    /// The gate policies of the two custodians that answer first.
    policies: Vec<Policy>,
    agency: SignerKey,
    cases: Vec<Case>,
}

/// Per-recovery times of one phase, and how long the phase took.
struct Phase {
    times: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn median(&self) -> Duration {
        sorted_percentile(&self.times, 0.5)
    }

    fn rate(&self) -> f64 {
        self.times.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

fn sorted_percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, p)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the bench in `dir` (or a temporary directory), each timed phase
/// bounded by `limit`.
pub(super) fn run(n: usize, dir: Option<PathBuf>, limit: Duration) -> Result<()> {
    let tmp;
    let root = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let world = setup(&root, n).await?;
        let measured = measure(&world, limit).await;
        // Stopped whatever the outcome, so the temporary directory goes too.
        for c in world.custodians {
            c.stop().await?;
        }
        world.log.stop().await?;
        for w in world.witnesses {
            w.stop().await?;
        }
        measured
    })
}

/// The log, witnesses, custodians, the agency's bundles and the split keys.
async fn setup(root: &Path, n: usize) -> Result<World> {
    eprintln!(
        "custody: a log, {WITNESSES} witnesses (quorum {QUORUM}) and {} custodians \
         (threshold {THRESHOLD}) in {}",
        CUSTODIANS.len(),
        root.display()
    );
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let log_dir = root.join("log");
    let log_vkey = crate::log::init(&log_dir, ORIGIN, QUORUM, None)?;
    let mut witnesses = Vec::new();
    {
        // Witnesses first, on ports the system picks: the log is told
        // their URLs before it starts asking them to cosign.
        let store = crate::log::open(&log_dir)?;
        for i in 1..=WITNESSES {
            let dir = root.join(format!("witness-{i}"));
            let vkey = crate::witness::init(&dir, &format!("witness-{i}.bench.example"))?;
            crate::witness::add_log(&dir, ORIGIN, &log_vkey.to_string())?;
            let running = crate::witness::spawn(&dir, any_port).await?;
            store.add_witness(&vkey, &running.url())?;
            witnesses.push(running);
        }
    }
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
    let agency = generate(AGENCY, KeyType::Ed25519)?;
    let agency_key = keys.join("agency.key");
    write_secret(&agency_key, &agency)?;
    let provider = generate(BENCH_PROVIDER, KeyType::Ed25519)?;
    crate::log::register_key(&log_dir, &agency.verifier().to_string(), Role::Agency)?;
    crate::log::register_key(&log_dir, &provider.verifier().to_string(), Role::Provider)?;
    // No per-key limit: the agency submits all its requests at once.
    let log = crate::log::log_server(&log_dir, 0.0, &Default::default(), None)?
        .spawn(any_port)
        .await
        .context("starting the log")?;
    let log_url = log.url();

    // Each custodian runs the provider's starting policy for this log.
    let policy_text =
        crate::gate::starting_policy(&log_url, Some(BENCH_PROVIDER), POLICY_MAX_AGE).await?;
    let policy_file = root.join("policy");
    std::fs::write(&policy_file, &policy_text)
        .with_context(|| format!("writing {}", policy_file.display()))?;
    let mut custodians = Vec::new();
    let mut pins = Vec::new();
    let mut policies = Vec::new();
    for name in CUSTODIANS {
        let dir = root.join(format!("custodian-{name}"));
        let vkey = crate::custodian::init(
            &dir,
            &format!("custodian-{name}.bench.example"),
            &policy_file,
            &log_url,
            &[provider.verifier().to_string()],
        )?;
        crate::log::register_key(&log_dir, &vkey.to_string(), Role::Custodian)?;
        custodians.push(crate::custodian::spawn(&dir, any_port, DEFAULT_RECEIPT_TIMEOUT).await?);
        pins.push(vkey.to_string());
        if policies.len() < usize::from(THRESHOLD) {
            // As that custodian reads it (its own copy).
            let text = std::fs::read_to_string(dir.join(POLICY_FILE))
                .context("reading a custodian's policy")?;
            policies.push(Policy::parse(&text).context("a custodian's policy")?);
        }
    }
    let urls: Vec<String> = custodians.iter().map(|c| c.url()).collect();

    let reqs = bundles(root, &log_url, &agency_key, n).await?;
    eprintln!("custody: splitting {n} keys {THRESHOLD} of {}", urls.len());
    let client = escrow::client()?;
    let vkeys = escrow::check_custodians(&client, &urls, BENCH_PROVIDER, &pins).await?;
    let mut cases = Vec::with_capacity(n);
    for req in reqs {
        let key = EscrowKey::generate()?;
        escrow::deposit_shares(
            &client,
            &key,
            &provider,
            &req.target,
            THRESHOLD,
            (&urls, &vkeys),
            |_| {},
        )
        .await?;
        cases.push(Case { req, key });
    }
    Ok(World {
        log,
        witnesses,
        custodians,
        urls,
        policies,
        agency,
        cases,
    })
}

/// `n` requests by the agency, each naming its own target, made by `agency
/// submit` (some at once) into `root/bundles/I` with a `target` file; the
/// bundles as `escrow recover` reads them.
async fn bundles(root: &Path, log_url: &str, agency_key: &Path, n: usize) -> Result<Vec<Request>> {
    eprintln!("custody: {n} requests, each submitted and proven (agency submit)");
    let drafts = root.join("drafts");
    std::fs::create_dir_all(&drafts).with_context(|| format!("creating {}", drafts.display()))?;
    let dirs: Vec<PathBuf> = (0..n)
        .map(|i| root.join("bundles").join(i.to_string()))
        .collect();
    let mut pending = tokio::task::JoinSet::new();
    for (i, dir) in dirs.iter().enumerate() {
        let target = format!("acct:bench-{i:06}");
        let draft = drafts.join(format!("{i}.json"));
        std::fs::write(&draft, request_json(&target).to_string())
            .with_context(|| format!("writing {}", draft.display()))?;
        if pending.len() >= SUBMIT_AT_ONCE {
            pending.join_next().await.context("no submission")???;
        }
        let (log_url, agency_key, dir) = (log_url.to_owned(), agency_key.to_owned(), dir.clone());
        pending.spawn(async move {
            crate::agency::submit(&log_url, &agency_key, &draft, &dir, LOG_WAIT).await?;
            std::fs::write(dir.join("target"), format!("{target}\n"))
                .context("writing a bundle's target")
        });
    }
    while let Some(done) = pending.join_next().await {
        done??;
    }
    dirs.iter()
        .map(|dir| escrow::read_bundle(dir, None))
        .collect()
}

/// The timed phases, then the table.
async fn measure(world: &World, limit: Duration) -> Result<()> {
    let n = world.cases.len();
    eprintln!("custody: gate decisions alone ({n} bundles x {THRESHOLD} custodians' policies)");
    let (gate, decisions_per_s) = gate_alone(world, limit)?;
    let client = escrow::client()?;
    let log_url = world.log.url();
    eprintln!(
        "custody: recovering {n} keys, first time (each custodian's receipt logged, cosigned)"
    );
    let first = recoveries(world, &client, &log_url, n, limit).await?;
    let done = first.times.len();
    eprintln!("custody: recovering the same {done} keys again (receipts already logged)");
    let again = recoveries(world, &client, &log_url, done, limit).await?;
    eprintln!("custody: where a repeat recovery's time goes");
    let parts = breakdown(world, &client, &log_url, done.min(BREAKDOWN_MAX), limit).await?;
    eprintln!("custody: the log, submission to a cosigned checkpoint ({LOG_SAMPLES} samples)");
    let log_latency = log_latency(world, &client, &log_url).await?;

    let base = gate.median();
    println!(
        "threshold custody: {done} of {n} requests, keys split {THRESHOLD} of {}; log with \
         {WITNESSES} witnesses, quorum {QUORUM}; all in one process on this machine",
        world.urls.len()
    );
    println!(
        "{:<62} {:>9} {:>9} {:>13} {:>8}",
        "figure (one recovery = 2 custodians' shares)", "p50 ms", "p99 ms", "recoveries/s", "ratio"
    );
    let row = |label: &str, p: &Phase| {
        println!(
            "{label:<62} {:>9.2} {:>9.2} {:>13.1} {:>8.1}",
            ms(p.median()),
            ms(sorted_percentile(&p.times, 0.99)),
            p.rate(),
            p.median().as_secs_f64() / base.as_secs_f64().max(f64::EPSILON)
        );
    };
    row("gate decisions alone, in process (2 decide calls)", &gate);
    row(
        "recover over HTTP, first time (receipts logged, cosigned)",
        &first,
    );
    row("recover over HTTP, again (receipts already logged)", &again);
    println!(
        "gate alone: {decisions_per_s:.0} decisions/s on one thread ({} decisions)",
        gate.times.len() * world.policies.len()
    );
    println!(
        "log: group commit (no fixed checkpoint interval), witnesses asked at once; a fresh \
         submission to a cosigned checkpoint: p50 {:.1} ms, p99 {:.1} ms ({LOG_SAMPLES} samples)",
        ms(sorted_percentile(&log_latency, 0.5)),
        ms(sorted_percentile(&log_latency, 0.99)),
    );
    parts.print();
    Ok(())
}

/// The gate decision the custodians make, under `policy`, for `req`: the
/// opening parsed from its JSON and the decision, as a custodian does.
fn decide_once(policy: &Policy, req: &Request) -> Result<()> {
    let opening = serde_json::to_vec(&req.opening).context("encoding an opening")?;
    let opening = parse_opening(&opening).map_err(|d| anyhow!("request {}: {d}", req.index))?;
    decide(
        policy,
        &req.entry,
        req.proof.as_bytes(),
        Some((&opening, &req.target)),
        Utc::now(),
    )
    .into_result()
    .map_err(|d| anyhow!("the gate denies request {}: {d}", req.index))?;
    Ok(())
}

/// Phase 1: for each bundle, the decisions of the custodians that answer
/// (one under each policy), timed together, in passes over all bundles;
/// the per-recovery times and decisions per second.
fn gate_alone(world: &World, limit: Duration) -> Result<(Phase, f64)> {
    let start = Instant::now();
    let mut times = Vec::new();
    let mut decisions = 0u64;
    'passes: for _ in 0..GATE_PASSES {
        for case in &world.cases {
            let t = Instant::now();
            for policy in &world.policies {
                decide_once(policy, &case.req)?;
                decisions += 1;
            }
            times.push(t.elapsed());
            if start.elapsed() > limit {
                break 'passes;
            }
        }
        if start.elapsed() >= GATE_MIN_TIME {
            break;
        }
    }
    let elapsed = start.elapsed();
    let rate = decisions as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    Ok((Phase { times, elapsed }, rate))
}

/// Phases 2 and 3: `escrow recover`'s function for the first `count`
/// requests, one after another; each key must be the one split.
async fn recoveries(
    world: &World,
    client: &reqwest::Client,
    log_url: &str,
    count: usize,
    limit: Duration,
) -> Result<Phase> {
    let start = Instant::now();
    let mut times = Vec::with_capacity(count);
    for (i, case) in world.cases.iter().take(count).enumerate() {
        if start.elapsed() > limit {
            eprintln!("custody: stopping after {i} recoveries ({limit:?} limit)");
            break;
        }
        let t = Instant::now();
        let (key, _) =
            escrow::recover_key(client, &world.urls, log_url, &case.req, &world.agency).await?;
        times.push(t.elapsed());
        if key.to_hex() != case.key.to_hex() {
            bail!(
                "request {}: recovered a key other than the one split",
                case.req.index
            );
        }
        if (i + 1) % PROGRESS_EVERY == 0 {
            eprintln!("custody: {} / {count}", i + 1);
        }
    }
    Ok(Phase {
        times,
        elapsed: start.elapsed(),
    })
}

/// A repeat recovery's parts, each timed alone.
#[derive(Default)]
struct Parts {
    count: usize,
    /// Client side, per custodian asked.
    release_round_trip: Vec<Duration>,
    open: Vec<Duration>,
    check_receipt: Vec<Duration>,
    /// Putting the key together from the shares, per recovery.
    combine: Vec<Duration>,
    /// The custodian's side, replayed here with the same inputs.
    resubmit: Vec<Duration>,
    proof_fetch: Vec<Duration>,
    verify_receipt: Vec<Duration>,
    seal: Vec<Duration>,
    /// A gate decision (from these releases' requests).
    gate: Vec<Duration>,
}

impl Parts {
    fn print(&self) {
        let med = |v: &[Duration]| ms(sorted_percentile(v, 0.5));
        let custodian_side = med(&self.gate)
            + med(&self.resubmit)
            + med(&self.proof_fetch)
            + med(&self.verify_receipt)
            + med(&self.seal);
        println!(
            "a repeat recovery taken apart ({} requests, {} custodian releases; medians, ms per release unless said):",
            self.count,
            self.release_round_trip.len()
        );
        println!(
            "  POST /api/v1/release round trip          {:>8.3}",
            med(&self.release_round_trip)
        );
        println!(
            "    of which, replayed in process: gate decision {:.3}, receipt resubmitted to the log {:.3}, \
             its proof fetched {:.3}, proof verified {:.3}, HPKE seal {:.3}",
            med(&self.gate),
            med(&self.resubmit),
            med(&self.proof_fetch),
            med(&self.verify_receipt),
            med(&self.seal)
        );
        println!(
            "    the rest (HTTP, JSON, the custodian's SQLite reads) {:.3}",
            med(&self.release_round_trip) - custodian_side
        );
        println!(
            "  HPKE open                                {:>8.3}",
            med(&self.open)
        );
        println!(
            "  receipt fetched from the log and checked {:>8.3}",
            med(&self.check_receipt)
        );
        println!(
            "  Shamir combine of 2 shares (per recovery) {:>7.3}",
            med(&self.combine)
        );
    }
}

/// Takes a repeat recovery apart for the first `count` requests: each of
/// the answering custodians' releases timed piece by piece (client side),
/// and the custodian's own steps replayed here with the same inputs.
async fn breakdown(
    world: &World,
    client: &reqwest::Client,
    log_url: &str,
    count: usize,
    limit: Duration,
) -> Result<Parts> {
    let log = HttpLog::new(client.clone(), log_url);
    let mut p = Parts::default();
    let start = Instant::now();
    for case in world.cases.iter().take(count) {
        if start.elapsed() > limit {
            break;
        }
        let req = &case.req;
        let mut shares = Vec::new();
        for (url, policy) in world.urls.iter().zip(&world.policies) {
            let t = Instant::now();
            let released = escrow::ask_release(client, url, req).await?;
            p.release_round_trip.push(t.elapsed());
            let t = Instant::now();
            let share = escrow::open_share(&released, req, &world.agency)?;
            p.open.push(t.elapsed());
            let t = Instant::now();
            escrow::check_receipt(client, log_url, &released, req).await?;
            p.check_receipt.push(t.elapsed());

            let t = Instant::now();
            decide_once(policy, req)?;
            p.gate.push(t.elapsed());
            let receipt = escrow::fetch_receipt(client, log_url, &released).await?;
            let t = Instant::now();
            let index = log
                .submit(receipt.as_bytes())
                .await
                .map_err(|e| anyhow!("resubmitting a receipt: {e}"))?;
            p.resubmit.push(t.elapsed());
            if index != released.receipt.index {
                bail!(
                    "the log answered index {index} for receipt {}",
                    released.receipt.index
                );
            }
            let t = Instant::now();
            let proof = log
                .proof(index)
                .await
                .map_err(|e| anyhow!("fetching a receipt's proof: {e}"))?
                .with_context(|| format!("no proof of receipt {index}"))?;
            p.proof_fetch.push(t.elapsed());
            let t = Instant::now();
            verify_entry(policy, receipt.as_bytes(), &proof, Utc::now())
                .map_err(|d| anyhow!("receipt {index}: {d}"))?;
            p.verify_receipt.push(t.elapsed());
            let t = Instant::now();
            seal(
                &share,
                world.agency.verifier(),
                &escrow::release_context(req, &released.custodian),
            )?;
            p.seal.push(t.elapsed());
            shares.push(share);
        }
        let t = Instant::now();
        let key = recover(&shares)?;
        p.combine.push(t.elapsed());
        if key.to_hex() != case.key.to_hex() {
            bail!("request {}: the shares put another key together", req.index);
        }
        p.count += 1;
    }
    Ok(p)
}

/// Fresh requests submitted one at a time, each timed until the log serves
/// a proof (a checkpoint cosigned by the quorum covers it), polled every
/// [`LOG_POLL`]: the log's own latency, which a first release waits for.
async fn log_latency(
    world: &World,
    client: &reqwest::Client,
    log_url: &str,
) -> Result<Vec<Duration>> {
    let log = HttpLog::new(client.clone(), log_url);
    let mut rng = |buf: &mut [u8]| {
        let _ = getrandom::getrandom(buf);
    };
    let mut times = Vec::with_capacity(LOG_SAMPLES);
    for i in 0..LOG_SAMPLES {
        let draft = Draft::from_json(&request_json(&format!("acct:latency-{i}")).to_string())?;
        let (record, _) = draft.seal(&world.agency, ORIGIN, Utc::now(), &mut rng)?;
        let t = Instant::now();
        let index = crate::agency::post_record(client, log_url, record.as_bytes()).await?;
        loop {
            if log
                .proof(index)
                .await
                .map_err(|e| anyhow!("fetching a proof: {e}"))?
                .is_some()
            {
                break;
            }
            if t.elapsed() > LOG_WAIT {
                bail!("entry {index}: no cosigned checkpoint after {LOG_WAIT:?}");
            }
            tokio::time::sleep(LOG_POLL).await;
        }
        times.push(t.elapsed());
    }
    Ok(times)
}
