//! Support shared by the web view's tests: keys, sample records made from
//! the schema examples, and references between them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use daylight_core::{KeyName, KeyType, SignerKey};
use daylight_schemas::{Draft, SignedRecord};

/// The test logs' origin.
pub const ORIGIN: &str = "log.test/web";

/// A test key with a fixed seed.
pub fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
}

/// Deterministic "randomness" for salts.
pub fn random(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static C: AtomicU64 = AtomicU64::new(1);
    for chunk in buf.chunks_mut(32) {
        let h = daylight_core::leaf_hash(&C.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        chunk.copy_from_slice(&h.0[..chunk.len()]);
    }
}

/// A schema example record as JSON.
pub fn example(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../schemas/examples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A time as records write it.
pub fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `v` signed by `key`, made at `created`.
pub fn seal(key: &SignerKey, v: serde_json::Value, created: DateTime<Utc>) -> SignedRecord {
    Draft::from_json(&v.to_string())
        .unwrap()
        .seal(key, ORIGIN, created, &mut random)
        .unwrap()
        .0
}

/// A reference to entry `index` holding `r`.
pub fn entry_ref(r: &SignedRecord, index: u64) -> serde_json::Value {
    serde_json::json!({ "index": index, "leaf_hash": r.leaf_hash().to_hex() })
}
