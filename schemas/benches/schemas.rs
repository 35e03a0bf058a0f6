//! Schemas benchmark: records parsed and verified per second, against raw
//! Ed25519 verification of a message of the same length in the same run.
//!
//! `cargo bench -p daylight-schemas --bench schemas` prints criterion's
//! figures and then one line with the rate of each and their ratio.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput};
use daylight_core::{KeyName, KeyType, SignerKey};
use daylight_schemas::{Draft, SignedRecord};
use ed25519_dalek::{Signature, SigningKey};

const GROUP: &str = "schemas";

fn sample() -> (SignerKey, SignedRecord) {
    let key = SignerKey::from_seed(
        KeyName::new("agency.example").unwrap(),
        KeyType::Ed25519,
        [7u8; 32],
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let draft =
        Draft::from_json(&std::fs::read_to_string(dir.join("request.json")).unwrap()).unwrap();
    let mut n = 0u8;
    let mut rng = |b: &mut [u8]| {
        n += 1;
        b.fill(n);
    };
    let created = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
    let (record, _) = draft
        .seal(&key, "log.example/daylight", created, &mut rng)
        .unwrap();
    (key, record)
}

fn bench(c: &mut Criterion) {
    let (key, record) = sample();
    let bytes = record.to_bytes();
    let vkey = key.verifier().clone();
    // The limit: one raw Ed25519 strict verification of a message as long
    // as this record's signed message.
    let message = record.signed_message();
    let raw_key = SigningKey::from_bytes(&[9u8; 32]);
    let raw_sig: Signature = ed25519_dalek::Signer::sign(&raw_key, &message);
    let raw_pub = raw_key.verifying_key();

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("ed25519_verify_raw", |b| {
        b.iter(|| {
            raw_pub
                .verify_strict(black_box(&message), black_box(&raw_sig))
                .unwrap()
        })
    });
    g.bench_function("parse_and_verify_request", |b| {
        b.iter(|| {
            let r = SignedRecord::parse(black_box(&bytes)).unwrap();
            r.verify_signature(&vkey).unwrap();
            r
        })
    });
    g.bench_function("parse_request", |b| {
        b.iter(|| SignedRecord::parse(black_box(&bytes)).unwrap())
    });
    g.finish();
    println!("request record: {} bytes", bytes.len());
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
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// The ratio measured with the two loops interleaved in short rounds, so
/// that load from other processes falls on both alike: the median over
/// rounds of (raw verify time / parse+verify time).
fn interleaved_ratio() -> (f64, f64, f64) {
    let (key, record) = sample();
    let bytes = record.to_bytes();
    let vkey = key.verifier().clone();
    let message = record.signed_message();
    let raw_key = SigningKey::from_bytes(&[9u8; 32]);
    let raw_sig: Signature = ed25519_dalek::Signer::sign(&raw_key, &message);
    let raw_pub = raw_key.verifying_key();
    const PER_ROUND: u32 = 200;
    let mut ratios = Vec::new();
    let (mut raw_total, mut ours_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..61 {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            raw_pub
                .verify_strict(black_box(&message), black_box(&raw_sig))
                .unwrap();
        }
        let raw = t.elapsed();
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            let r = SignedRecord::parse(black_box(&bytes)).unwrap();
            r.verify_signature(&vkey).unwrap();
            black_box(r);
        }
        let ours = t.elapsed();
        ratios.push(raw.as_secs_f64() / ours.as_secs_f64());
        raw_total += raw;
        ours_total += ours;
    }
    ratios.sort_by(f64::total_cmp);
    let n = f64::from(61 * PER_ROUND);
    (
        n / ours_total.as_secs_f64(),
        n / raw_total.as_secs_f64(),
        ratios[ratios.len() / 2],
    )
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    if let (Some(raw), Some(ours)) = (
        mean_ns("ed25519_verify_raw"),
        mean_ns("parse_and_verify_request"),
    ) {
        let (raw, ours) = (1e9 / raw, 1e9 / ours);
        println!(
            "schemas (criterion means): parse+verify {ours:.0} records/s; raw Ed25519 verify {raw:.0}/s; ratio {:.1}%",
            100.0 * ours / raw
        );
    }
    // Only when measuring (`cargo bench`), not under `cargo test --benches`.
    if std::env::args().any(|a| a == "--bench") {
        let (ours, raw, ratio) = interleaved_ratio();
        println!(
            "schemas (interleaved, median of 61 rounds): parse+verify {ours:.0} records/s; raw Ed25519 verify {raw:.0}/s; ratio {:.1}%",
            100.0 * ratio
        );
    }
}
