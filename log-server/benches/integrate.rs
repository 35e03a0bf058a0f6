//! In-process integration: batches of 1,024 entries written to a fresh
//! SQLite log (entries, stored hashes, signed checkpoint, one transaction
//! each, made durable by the filesystem sync after it), next to raw Ed25519
//! verification in the same run
//! (the cost every submission also pays at admission).
//!
//! And the sequencer's commit of a batch (`integrate_committed`: rows,
//! stored hashes, signed checkpoint, commit) on records a trained
//! dictionary compresses, in batches of 64 (about what the served log's
//! sequencer takes at 256 clients): as they come, and packed ahead
//! (`LogStore::pack`, which the server does on the admission's threads;
//! here in criterion's untimed setup), each on a log of its own. The
//! previous batch's sync is waited for untimed, so the timed commit never
//! runs beside a sync as the served log's does; nor are the rest of the
//! sequencer's serial step (leaf lookups, the registry's recheck) timed.

// criterion's macros generate undocumented functions; a panic is a failed bench.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use daylight_core::{leaf_hash, KeyName, KeyType, SignerKey};
use daylight_log_server::integrate::{integrate, integrate_committed};
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::{Durable, LogStore as _, NewEntry, Settled};
use ed25519_dalek::Signer as _;

const BATCH: u64 = 1024;

fn batch(start: u64) -> Vec<NewEntry> {
    (start..start + BATCH)
        .map(|i| {
            // About the size of a real request record.
            let mut data = format!("{{\"entry\":{i}}}").into_bytes();
            data.resize(900, b' ');
            entry(data)
        })
        .collect()
}

/// A request entry of `data`, as the bench's signer.
fn entry(data: Vec<u8>) -> NewEntry {
    NewEntry {
        leaf_hash: leaf_hash(&data),
        data,
        kind: "request".into(),
        signer: "bench".into(),
        packed: None,
    }
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

/// A record-like entry: the same keys and words as its neighbours around
/// a hex hash and a signature, about 590 bytes. (Like the SQLite store's
/// test records, which a bench cannot reach.)
fn record(i: u64) -> NewEntry {
    let hash = leaf_hash(&i.to_be_bytes());
    let sig = [1u64, 2].map(|j| leaf_hash(&((i << 2) | j).to_be_bytes()).to_hex());
    let data = format!(
        r#"{{"body":{{"case_reference":"CASE-{i:07}","data_categories":["identification","location"],"issuing_authority":{{"name":"Amtsgericht Tiergarten","type":"court"}},"jurisdiction":"DE","legal_basis":"StPO 100a","offence":"narcotics","provider":"cloud.example","targets":["{}"]}},"created":"2026-12-05T10:{:02}:00Z","kind":"request","signature":"{}{}"}}"#,
        hash.to_hex(),
        i % 60,
        sig[0],
        sig[1]
    )
    .into_bytes();
    entry(data)
}

/// A new log past its dictionary's training, so that later records are
/// compressed (checked: a record packs to a frame).
fn trained_log(dir: &std::path::Path, key: &SignerKey, origin: &str) -> SqliteStore {
    let store = SqliteStore::create(&dir.join("log.db"), origin, 0).unwrap();
    let trained = daylight_log_server::codec::TRAIN_AT;
    for lo in (0..trained).step_by(1024) {
        let batch = (lo..(lo + 1024).min(trained)).map(record).collect();
        integrate(&store, key, origin, batch).unwrap();
    }
    store.finish_training();
    let mut probe = record(0);
    store.pack(&mut probe);
    assert!(
        probe.packed.and_then(|p| p.into_frame()).is_some(),
        "the log compresses records"
    );
    store
}

fn serial_step(c: &mut Criterion) {
    const RECORDS: u64 = 64;
    let origin = "bench.test/records";
    let key = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [1; 32]);
    let mut g = c.benchmark_group("serial_step");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(RECORDS));
    for packed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = trained_log(dir.path(), &key, origin);
        let next = std::cell::Cell::new(store.size().unwrap().get());
        let syncing: std::cell::RefCell<Option<Durable>> = Default::default();
        let name = if packed {
            "records_64_packed_ahead"
        } else {
            "records_64"
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    // The previous batch's sync, waited for untimed.
                    if let Some(d) = syncing.borrow_mut().take() {
                        d.wait().unwrap();
                    }
                    let lo = next.replace(next.get() + RECORDS);
                    let mut batch: Vec<NewEntry> = (lo..lo + RECORDS).map(record).collect();
                    if packed {
                        batch.iter_mut().for_each(|e| store.pack(e));
                    }
                    batch
                },
                |entries| {
                    let done = integrate_committed(
                        &store,
                        &key,
                        origin,
                        entries,
                        None,
                        Settled::default(),
                        None,
                    )
                    .unwrap();
                    *syncing.borrow_mut() = Some(done.durable);
                },
                BatchSize::PerIteration,
            )
        });
        if let Some(d) = syncing.take() {
            d.wait().unwrap();
        }
    }
    g.finish();
}

criterion_group!(benches, integration, serial_step);
criterion_main!(benches);
