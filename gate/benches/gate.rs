//! Gate benchmark: one full release decision (log signature, three
//! cosignatures, agency signature, inclusion at 10M entries, record parse,
//! commitment check) against the five raw Ed25519 verifications it needs,
//! measured in the same run.
//!
//! `cargo bench -p daylight-gate --bench gate` prints criterion's figures,
//! then one line with both times and their ratio (goal: at most 1.25x).

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput};
use daylight_core::cosignature::cosigned_message;
use daylight_core::tree::MemoryTree;
use daylight_core::TlogProof;
use daylight_gate::testkit::{World, PROVIDER, TARGET};
use daylight_gate::{decide, Decision, Policy};
use daylight_schemas::{Opening, SignedRecord};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

const GROUP: &str = "gate";
const TREE: u64 = 10_000_000;

struct Setup {
    policy: Policy,
    entry: Vec<u8>,
    proof: Vec<u8>,
    opening: Opening,
    now: chrono::DateTime<Utc>,
    /// Five (key, message, signature) of the same lengths as the decision's:
    /// the checkpoint, three cosigned checkpoints, the record.
    raw: Vec<(VerifyingKey, Vec<u8>, Signature)>,
}

fn setup() -> Setup {
    let now = Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap();
    let created = now - chrono::Duration::hours(1);
    let mut w = World::new();
    w.tree = MemoryTree::with_capacity(TREE);
    let t = Instant::now();
    w.append_filler(TREE / 2);
    let agency = w.agency.clone();
    let (record, opening) = w
        .seal(&World::request_draft(PROVIDER, created), &agency, created)
        .unwrap();
    let index = w.append(record.as_bytes());
    w.append_filler(TREE - w.tree.size().get());
    let ts = now.timestamp() as u64 - 60;
    let proof = w.proof(index, &[(0, ts), (1, ts), (2, ts)]);
    eprintln!(
        "tree of {} leaves built in {:.1?}; entry {} bytes at index {index}, proof {} bytes",
        w.tree.size(),
        t.elapsed(),
        record.as_bytes().len(),
        proof.len()
    );
    let policy = Policy::parse(&w.policy_text(3, false)).unwrap();
    match decide(
        &policy,
        record.as_bytes(),
        &proof,
        Some((&opening, TARGET)),
        now,
    ) {
        Decision::Allow(a) => assert_eq!(a.cosignatures, 3),
        d => panic!("{d}"),
    }

    let tp = TlogProof::parse(&proof).unwrap();
    let note = daylight_core::Note::parse(&tp.checkpoint).unwrap();
    let checkpoint_text = note.text().as_bytes().to_vec();
    let cosigned = cosigned_message(ts, note.text()).into_bytes();
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let signed = |m: Vec<u8>| {
        let s = key.sign(&m);
        (key.verifying_key(), m, s)
    };
    let raw = vec![
        signed(checkpoint_text),
        signed(cosigned.clone()),
        signed(cosigned.clone()),
        signed(cosigned),
        signed(record.signed_message()),
    ];
    Setup {
        policy,
        entry: record.to_bytes(),
        proof,
        opening,
        now,
        raw,
    }
}

fn raw5(s: &Setup) {
    for (k, m, sig) in &s.raw {
        k.verify_strict(black_box(m), black_box(sig)).unwrap();
    }
}

fn full(s: &Setup) -> Decision {
    decide(
        &s.policy,
        black_box(&s.entry),
        black_box(&s.proof),
        Some((&s.opening, TARGET)),
        s.now,
    )
}

fn bench(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("ed25519_verify_raw_x5", |b| b.iter(|| raw5(s)));
    g.bench_function("decide_10m", |b| b.iter(|| full(s)));
    // The parts, to see where the time beyond the signatures goes.
    g.bench_function("record_parse", |b| {
        b.iter(|| SignedRecord::parse(black_box(&s.entry)).unwrap())
    });
    g.bench_function("tlog_proof_verify", |b| {
        b.iter(|| {
            TlogProof::parse(black_box(&s.proof))
                .unwrap()
                .verify(&s.entry, s.policy.witness_policy())
                .unwrap()
        })
    });
    g.finish();
}

/// criterion's mean estimate (ns per iteration) of one benchmark of this group.
fn mean_ns(bench: &str) -> Option<f64> {
    let dir = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"));
    let path = dir.join(GROUP).join(bench).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.find("\"mean\"")?;
    let rest = &text[at..];
    let p = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let end = rest[p..].find([',', '}'])?;
    rest[p..p + end].trim().parse().ok()
}

/// The ratio with both loops interleaved in short rounds, so load from
/// other processes falls on both alike: the median over rounds of
/// (decision time / five raw verifications time).
fn interleaved(s: &Setup) -> (f64, f64, f64) {
    const ROUNDS: usize = 61;
    const PER_ROUND: u32 = 100;
    let mut ratios = Vec::new();
    let (mut raw_total, mut ours_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            raw5(s);
        }
        let raw = t.elapsed();
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(full(s));
        }
        let ours = t.elapsed();
        ratios.push(ours.as_secs_f64() / raw.as_secs_f64());
        raw_total += raw;
        ours_total += ours;
    }
    ratios.sort_by(f64::total_cmp);
    let n = (ROUNDS as f64) * f64::from(PER_ROUND);
    (
        ours_total.as_secs_f64() * 1e6 / n,
        raw_total.as_secs_f64() * 1e6 / n,
        ratios[ROUNDS / 2],
    )
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &s);
    c.final_summary();
    if let (Some(raw), Some(ours), Some(parse), Some(tlog)) = (
        mean_ns("ed25519_verify_raw_x5"),
        mean_ns("decide_10m"),
        mean_ns("record_parse"),
        mean_ns("tlog_proof_verify"),
    ) {
        println!(
            "criterion means: full decision {:.1} us, five raw Ed25519 verifications {:.1} us: {:.3}x (goal <= 1.25x); parts: tlog-proof verify (4 signatures + inclusion) {:.1} us, record parse {:.1} us",
            ours / 1000.0,
            raw / 1000.0,
            ours / raw,
            tlog / 1000.0,
            parse / 1000.0
        );
    }
    let (ours, raw, ratio) = interleaved(&s);
    println!(
        "interleaved: full decision {ours:.1} us, five raw Ed25519 verifications {raw:.1} us: median ratio {ratio:.3}x (goal <= 1.25x)"
    );
}
