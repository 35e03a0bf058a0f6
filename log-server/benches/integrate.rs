//! In-process integration: batches of 1,024 entries written to a fresh
//! SQLite log (entries, stored hashes, signed checkpoint, one transaction
//! each, synchronous=FULL), next to raw Ed25519 verification in the same run
//! (the cost every submission also pays at admission).

// criterion's macros generate undocumented functions; a panic is a failed bench.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use daylight_core::{leaf_hash, KeyName, KeyType, SignerKey};
use daylight_log_server::integrate::integrate;
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::NewEntry;
use ed25519_dalek::Signer as _;

const BATCH: u64 = 1024;

fn batch(start: u64) -> Vec<NewEntry> {
    (start..start + BATCH)
        .map(|i| {
            // About the size of a real request record.
            let mut data = format!("{{\"entry\":{i}}}").into_bytes();
            data.resize(900, b' ');
            NewEntry {
                leaf_hash: leaf_hash(&data),
                data,
                kind: "request".into(),
                signer: "bench".into(),
            }
        })
        .collect()
}

fn integration(c: &mut Criterion) {
    let origin = "bench.test/log";
    let key = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [1; 32]);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(&dir.path().join("log.db"), origin, 0).unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("log");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(BATCH));
    g.bench_function("integrate_batch_1024", |b| {
        b.iter_batched(
            || {
                let e = batch(next);
                next += BATCH;
                e
            },
            |entries| integrate(&store, &key, origin, entries).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let raw = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let msg = [0u8; 900];
    let sig = raw.sign(&msg);
    let vk = raw.verifying_key();
    g.throughput(Throughput::Elements(1));
    g.bench_function("ed25519_verify_raw", |b| {
        b.iter(|| vk.verify_strict(std::hint::black_box(&msg), &sig).unwrap())
    });
    g.finish();
}

criterion_group!(benches, integration);
criterion_main!(benches);
