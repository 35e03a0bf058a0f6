//! End-to-end auditor throughput against a static log over loopback HTTP
//! (fetch, tile authentication, bundle checks, root re-derivation, parsing,
//! registry lookups, signature checks, rules), beside raw Ed25519 strict
//! verification and Ed25519 batch verification of the same records, measured
//! in the same run with the same thread count.
//!
//! `cargo bench -p daylight-auditor --bench auditor` (entries: `AUDIT_BENCH_N`,
//! default 100000; threads: `AUDIT_BENCH_THREADS`, default 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use chrono::Duration;
use common::*;
use daylight_auditor::{audit, AuditOptions, ProgressMode, Status};
use daylight_schemas::SignedRecord;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("AUDIT_BENCH_N", 100_000);
    let threads = env("AUDIT_BENCH_THREADS", 2);
    eprintln!("building a log of {n} requests...");
    let mut e = Entries::new();
    for i in 0..n as i64 {
        e.request(t0() + Duration::seconds(i), &format!("case {i}"));
    }
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let agency = e.actors.agency.verifier().clone();
    let records: Vec<SignedRecord> = e.records[4..].to_vec();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(StaticServer::start(files));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AuditOptions::new(&server.url(), dir.path());
    opts.now = t0() + Duration::days(1);
    opts.threads = threads;
    opts.progress = ProgressMode::Off;

    let start = Instant::now();
    let (report, stats) = rt.block_on(audit(&opts)).unwrap();
    let audit_secs = start.elapsed().as_secs_f64();
    assert_eq!(report.status, Status::Clean, "{}", report.summary());
    assert_eq!(stats.signatures, bytes.len() as u64);
    let audit_rate = bytes.len() as f64 / audit_secs;

    // Offline re-verification of the mirror: a second run with a fresh state
    // but the tiles already local (no HTTP for tiles).
    std::fs::remove_file(dir.path().join("state.json")).unwrap();
    let start = Instant::now();
    let (report, stats) = rt.block_on(audit(&opts)).unwrap();
    let local_secs = start.elapsed().as_secs_f64();
    assert_eq!(report.status, Status::Clean);
    assert_eq!(stats.fetched, 0);
    let local_rate = bytes.len() as f64 / local_secs;

    // Limits, same messages, same threads.
    let messages: Vec<Vec<u8>> = records.iter().map(|r| r.signed_message()).collect();
    let sigs: Vec<ed25519_dalek::Signature> = records
        .iter()
        .map(|r| ed25519_dalek::Signature::from_bytes(r.signature()))
        .collect();
    let key = *agency.public_key();
    let per = messages.len().div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for (m, sg) in messages.chunks(per).zip(sigs.chunks(per)) {
            s.spawn(move || {
                for (m, sg) in m.iter().zip(sg) {
                    key.verify_strict(m, sg).unwrap();
                }
            });
        }
    });
    let raw_rate = messages.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    std::thread::scope(|s| {
        for (m, sg) in messages.chunks(per).zip(sigs.chunks(per)) {
            s.spawn(move || {
                for (m, sg) in m.chunks(64).zip(sg.chunks(64)) {
                    let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
                    let keys = vec![key; refs.len()];
                    ed25519_dalek::verify_batch(&refs, sg, &keys).unwrap();
                }
            });
        }
    });
    let batch_rate = messages.len() as f64 / start.elapsed().as_secs_f64();

    println!("entries: {}, threads: {threads}", bytes.len());
    println!(
        "| audit end to end over loopback HTTP | {audit_rate:.0} entries/s | {:.2} of batch Ed25519, {:.2} of strict Ed25519 |",
        audit_rate / batch_rate,
        audit_rate / raw_rate
    );
    println!(
        "| audit from the local mirror | {local_rate:.0} entries/s | {:.2} of batch Ed25519, {:.2} of strict Ed25519 |",
        local_rate / batch_rate,
        local_rate / raw_rate
    );
    println!("| Ed25519 strict verification (limit) | {raw_rate:.0} signatures/s | 1.00 |");
    println!("| Ed25519 batch verification, 64 per batch (limit) | {batch_rate:.0} signatures/s | 1.00 |");
}
