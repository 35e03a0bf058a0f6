//! Fixtures shared by the schema tests: keys for each role, a fixed
//! creation time, a deterministic salt source and the example drafts.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use daylight_core::{KeyName, KeyType, SignerKey};
use daylight_schemas::{canonical, Draft, Kind, Opening, SignedRecord, SIGNATURE_DOMAIN};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
}

pub fn agency() -> SignerKey {
    key("agency.example", 1)
}
pub fn court() -> SignerKey {
    key("court.example", 2)
}
pub fn provider() -> SignerKey {
    key("messenger.example", 3)
}
pub fn log_key() -> SignerKey {
    key("log.example", 4)
}

/// The key that signs each kind in the tests.
pub fn signer_for(kind: Kind) -> SignerKey {
    match kind {
        Kind::Request | Kind::Emergency | Kind::Withdrawal | Kind::Outcome | Kind::Disclosure => {
            agency()
        }
        Kind::Ratification | Kind::Extension => court(),
        Kind::Release | Kind::Refusal | Kind::Policy => provider(),
        Kind::Registry => log_key(),
    }
}

/// When the example records are created: fits every example's dates.
/// The origin every test record is bound to.
pub const LOG: &str = "log.example.org/daylight";

pub fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 2, 9, 5, 0).unwrap()
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A deterministic salt source: SHA-256 of a label and a counter.
pub fn rng(label: &str) -> impl FnMut(&mut [u8]) {
    let label = label.to_owned();
    let mut n = 0u64;
    move |buf: &mut [u8]| {
        for chunk in buf.chunks_mut(32) {
            n += 1;
            let d = Sha256::new()
                .chain_update(label.as_bytes())
                .chain_update(n.to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&d[..chunk.len()]);
        }
    }
}

pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every example draft, by kind, in `Kind::ALL` order.
pub fn examples() -> Vec<(Kind, Draft)> {
    Kind::ALL
        .iter()
        .map(|k| {
            let path = examples_dir().join(format!("{}.json", k.as_str()));
            let text = std::fs::read_to_string(&path).unwrap();
            (*k, Draft::from_json(&text).unwrap())
        })
        .collect()
}

/// Each example sealed by its kind's signer at `created()`.
pub fn sealed_examples() -> Vec<(Kind, SignedRecord, Opening)> {
    examples()
        .into_iter()
        .map(|(k, d)| {
            let mut r = rng(k.as_str());
            let (rec, op) = d.seal(&signer_for(k), LOG, created(), &mut r).unwrap();
            (k, rec, op)
        })
        .collect()
}

pub fn sealed(kind: Kind) -> (SignedRecord, Opening) {
    let (_, r, o) = sealed_examples()
        .into_iter()
        .find(|(k, _, _)| *k == kind)
        .unwrap();
    (r, o)
}

/// The record as a JSON value.
pub fn value_of(record: &SignedRecord) -> Value {
    serde_json::from_slice(record.as_bytes()).unwrap()
}

/// Canonically encodes `v` (a record as JSON, any signature dropped) and
/// signs it with `key`, bypassing every rule: for records that must be
/// refused for what they say, not for a bad signature.
pub fn sign_value(mut v: Value, key: &SignerKey) -> Vec<u8> {
    let obj = v.as_object_mut().unwrap();
    obj.remove("signature");
    obj.insert(
        "signer".into(),
        serde_json::json!({
            "name": key.verifier().name().as_str(),
            "key_id": key.verifier().id().to_string(),
        }),
    );
    let unsigned = canonical::to_vec(&v).unwrap();
    let mut msg = SIGNATURE_DOMAIN.to_vec();
    msg.extend_from_slice(&unsigned);
    let sig = key.sign_raw(&msg);
    v.as_object_mut()
        .unwrap()
        .insert("signature".into(), Value::String(hex::encode(sig)));
    canonical::to_vec(&v).unwrap()
}
