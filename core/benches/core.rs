//! Core benchmarks. Each figure is paired with its limit measured in the same
//! run: appends against raw SHA-256 node hashing (and against the first touch
//! of the memory they fill), checkpoint verification against raw Ed25519
//! verification, and rs_merkle on the same leaves.
//! `scripts/bench-report` turns criterion's estimates into BENCHMARKS.md rows.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::tree::{inclusion_proof, stored_hash_count, MemoryTree};
use daylight_core::{
    leaf_hash, node_hash, Checkpoint, Hash, KeyName, KeyType, LeafIndex, SignedCheckpoint,
    SignerKey, TreeSize,
};
use ed25519_dalek::{Signer as _, SigningKey};
use std::hint::black_box;

#[path = "../tests/peer/mod.rs"]
mod peer;
use peer::Rfc6962;
use std::time::Duration;

const APPEND_LEAVES: u64 = 1_000_000;
const PROOF_TREE: u64 = 10_000_000;

fn entries(n: u64) -> Vec<[u8; 64]> {
    (0..n)
        .map(|i| {
            let mut e = [0u8; 64];
            e[..8].copy_from_slice(&i.to_be_bytes());
            e
        })
        .collect()
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Elements(1));
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    g.bench_function("sha256_node", |bench| {
        bench.iter(|| node_hash(black_box(&a), black_box(&b)))
    });
    let entry = [7u8; 64];
    let mut prev = a;
    g.bench_function("leaf_then_node_chain", |bench| {
        bench.iter(|| {
            let l = leaf_hash(black_box(&entry));
            prev = node_hash(&prev, &l);
            prev
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let leaves = entries(APPEND_LEAVES);
    let mut g = c.benchmark_group("append_1m");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(APPEND_LEAVES));
    g.bench_function("daylight", |bench| {
        bench.iter(|| {
            // Pre-sized, as a verifier rebuilding up to a checkpoint's size would.
            let mut t = MemoryTree::with_capacity(APPEND_LEAVES);
            for e in &leaves {
                t.append(e);
            }
            black_box(t.root())
        })
    });
    // The part of the row above that is the kernel's: mapping and first
    // writing a fresh array the size of that tree's stored hashes (64 MB),
    // with no hashing. A tree pays it once, one page fault per 4 KiB page,
    // and the tree code cannot avoid it (huge pages need `madvise` here,
    // which is unsafe code); glibc does it for malloc's large blocks when
    // run with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, as `scripts/bench`
    // also measures the append. The difference between the two rows is the
    // hashing and the tree's bookkeeping.
    let stored = usize::try_from(stored_hash_count(TreeSize(APPEND_LEAVES))).unwrap();
    g.bench_function("first_touch", |bench| {
        bench.iter(|| {
            // Not zeros: allocating and zero-filling becomes `calloc`, which
            // leaves the pages unmapped until they are written.
            let hashes = vec![Hash([0xa5; 32]); stored];
            black_box(&hashes);
        })
    });
    g.bench_function("rs_merkle", |bench| {
        bench.iter(|| {
            let hashes: Vec<[u8; 32]> = leaves.iter().map(|e| leaf_hash(e).0).collect();
            let t = rs_merkle::MerkleTree::<Rfc6962>::from_leaves(&hashes);
            black_box(t.root())
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let mut tree = MemoryTree::new();
    for i in 0..PROOF_TREE {
        tree.append_leaf_hash(Hash({
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_be_bytes());
            h
        }));
    }
    let mut g = c.benchmark_group("inclusion_proof_10m");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("generate", |bench| {
        bench.iter(|| {
            i = (i + 7_919_993) % PROOF_TREE;
            black_box(inclusion_proof(LeafIndex(i), TreeSize(PROOF_TREE), &tree).unwrap())
        })
    });
    g.finish();
}

fn checkpoints(c: &mut Criterion) {
    let origin = "daylight.example/log";
    let log = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [1; 32]);
    let witnesses: Vec<SignerKey> = (0..3u8)
        .map(|i| {
            SignerKey::from_seed(
                KeyName::new(&format!("w{i}.example")).unwrap(),
                KeyType::CosignatureV1,
                [10 + i; 32],
            )
        })
        .collect();
    let wkeys: Vec<_> = witnesses.iter().map(|w| w.verifier()).collect();
    let cp = Checkpoint::new(origin, TreeSize(123_456), leaf_hash(b"root"));
    let mut note = cp.sign(&log).unwrap();
    for w in &witnesses {
        note.sign(w, 1_800_000_000).unwrap();
    }
    let bytes = note.to_bytes();

    let raw = SigningKey::from_bytes(&[3; 32]);
    let msg = cp.to_text();
    let sig = raw.sign(msg.as_bytes());
    let vk = raw.verifying_key();

    let mut g = c.benchmark_group("checkpoint");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ed25519_verify_raw", |bench| {
        bench.iter(|| {
            vk.verify_strict(black_box(msg.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    g.bench_function("open_with_3_cosignatures", |bench| {
        bench.iter_batched(
            || bytes.clone(),
            |b| {
                let signed = SignedCheckpoint::open(&b, log.verifier()).unwrap();
                let cosigs = verify_cosignatures(&signed.note, &wkeys).unwrap();
                assert_eq!(cosigs.len(), 3);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, hashing, append, proofs, checkpoints);
criterion_main!(benches);
