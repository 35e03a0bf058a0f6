//! Records admitted together (`Admission::admit_batch`, as the HTTP API
//! admits them) get, each, the answer it gets alone (`Admission::admit`),
//! whatever stands beside it in the batch: a forged signature among honest
//! ones is refused and costs them nothing, and no record takes another's
//! verdict.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use daylight_core::KeyType;
use daylight_log_server::admission::{Admission, RateLimit, RecordAdmission};
use daylight_log_server::admitted::Admitted;
use daylight_log_server::error::ApiError;
use daylight_log_server::store::NewEntry;
use daylight_schemas::Role;
use serde_json::Value;

/// `good` with the signature of `other` (another record by the same key).
fn forged(good: &[u8], other: &[u8]) -> Vec<u8> {
    let sig = |t: &[u8]| {
        let v: Value = serde_json::from_slice(t).unwrap();
        serde_json::to_string(&v["signature"]).unwrap()
    };
    String::from_utf8(good.to_vec())
        .unwrap()
        .replace(&sig(good), &sig(other))
        .into_bytes()
}

/// An answer as comparable values: the entry's leaf hash, or the error's
/// status, code and detail.
fn outcome(a: &Result<NewEntry, ApiError>) -> Result<[u8; 32], (u16, &'static str, String)> {
    match a {
        Ok(e) => Ok(e.leaf_hash.0),
        Err(e) => Err((e.status.as_u16(), e.code, e.detail.clone())),
    }
}

#[test]
fn a_batch_answers_each_record_as_it_is_answered_alone() {
    let f = Fixture::new(0);
    let revoked = key("revoked.test", KeyType::Ed25519, 5);
    f.register(Role::Agency, &revoked.verifier().clone());
    f.revoke(Role::Agency, &revoked.verifier().clone());
    let stranger = key("stranger.test", KeyType::Ed25519, 6);
    let honest: Vec<Vec<u8>> = (0..4).map(|_| request(&f.agency).to_bytes()).collect();
    let records: Vec<Vec<u8>> = vec![
        honest[0].clone(),
        forged(&honest[1], &honest[2]),
        b"{not a record".to_vec(),
        request(&stranger).to_bytes(),
        request(&revoked).to_bytes(),
        forged(&honest[2], &honest[0]),
        honest[1].clone(),
        honest[2].clone(),
        // The key's fourth good record: past its burst of three.
        honest[3].clone(),
    ];
    let want: [Result<(), (u16, &str)>; 9] = [
        Ok(()),
        Err((403, "bad_signature")),
        Err((400, "malformed")),
        Err((401, "unknown_signer")),
        Err((403, "revoked_signer")),
        Err((403, "bad_signature")),
        Ok(()),
        Ok(()),
        Err((429, "rate_limited")),
    ];
    // A slow refill: the burst is all a key has during the test.
    let rules = || {
        RecordAdmission::new(f.log_key.verifier().clone()).with_rate_limit(RateLimit {
            per_second: 0.001,
            burst: 3.0,
        })
    };
    let store = f.store.as_ref();
    let alone = rules();
    alone.refresh(store);
    let one_by_one: Vec<_> = records.iter().map(|r| alone.admit(r, store)).collect();
    // Kept for the web index: the admitted records, and only those.
    let kept = std::sync::Arc::new(Admitted::new(Admitted::CAPACITY, Admitted::MAX_BYTES));
    let together = rules().with_admitted(kept.clone());
    together.refresh(store);
    let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let batched = together.admit_batch(&slices, store);
    assert_eq!(batched.len(), records.len());
    for (i, ((a, b), w)) in one_by_one.iter().zip(&batched).zip(&want).enumerate() {
        assert_eq!(outcome(a), outcome(b), "record {i}: alone against batched");
        match (b, w) {
            (Ok(e), Ok(())) => assert_eq!(e.data, records[i], "record {i}"),
            (Err(e), Err((status, code))) => {
                assert_eq!((e.status.as_u16(), e.code), (*status, *code), "record {i}")
            }
            (got, want) => panic!("record {i}: {:?}, want {want:?}", outcome(got)),
        }
    }
    assert_eq!(kept.len(), 3);
    for e in batched.iter().flatten() {
        let record = kept.record_of(&e.data, &e.leaf_hash).unwrap();
        assert_eq!(record.as_bytes(), e.data);
    }
    assert_eq!((kept.reused(), kept.len()), (3, 0));
}
