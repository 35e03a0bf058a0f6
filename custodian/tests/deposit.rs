//! A custodian takes a share only from its depositors, signed, sealed to
//! it; the same share again is 200, another share for the same slot 409.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::*;
use daylight_custody::deposit::{self, message};
use daylight_custody::{split, EscrowKey, Slot};
use daylight_gate::testkit::{PROVIDER, TARGET};

#[tokio::test]
async fn deposits_are_checked_and_a_slot_holds_one_share() {
    let h = harness(Duration::from_secs(5)).await;
    let provider = h.log.world().provider.clone();
    let shares = split(
        &EscrowKey::generate().unwrap(),
        Slot::of(PROVIDER, TARGET),
        2,
        3,
    )
    .unwrap();
    let post = |d: &daylight_custody::Deposit| {
        let body = serde_json::to_vec(d).unwrap();
        let h = &h;
        async move { h.post("/api/v1/shares", body).await }
    };
    let code = |(s, v): (u16, serde_json::Value)| (s, v["error"].as_str().unwrap_or("").to_owned());

    // Not a depositor of this custodian (an agency's key, say).
    let stranger = h.log.world().agency.clone();
    let d = deposit::make(&shares[0], h.key.verifier(), &stranger).unwrap();
    assert_eq!(code(post(&d).await), (403, "unknown_depositor".into()));

    // A signature that does not verify.
    let good = deposit::make(&shares[0], h.key.verifier(), &provider).unwrap();
    let mut bad = good.clone();
    bad.signature = BASE64.encode([0u8; 64]);
    assert_eq!(code(post(&bad).await), (403, "bad_signature".into()));

    // A box sealed to another custodian, signed for this one.
    let other = custodian_key("custodian-b.example", 41);
    let elsewhere = deposit::make(&shares[0], other.verifier(), &provider).unwrap();
    let signature = provider
        .sign_raw(message(h.key.verifier(), provider.verifier(), &elsewhere.sealed).as_bytes());
    let misdirected = daylight_custody::Deposit {
        signature: BASE64.encode(signature),
        ..elsewhere
    };
    assert_eq!(
        code(post(&misdirected).await),
        (422, "does_not_open".into())
    );
    assert_eq!(h.custodian.info().unwrap().shares, 0);

    // Stored; the same again; another share for the slot is a conflict.
    let (status, v) = post(&good).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = post(&deposit::make(&shares[0], h.key.verifier(), &provider).unwrap()).await;
    assert_eq!(status, 200, "{v}");
    let another = deposit::make(&shares[1], h.key.verifier(), &provider).unwrap();
    assert_eq!(code(post(&another).await), (409, "slot_taken".into()));

    // GET /api/v1/custodian.
    let info: serde_json::Value = h
        .client
        .get(format!("{}/api/v1/custodian", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "custodian-a.example");
    assert_eq!(info["vkey"], h.key.verifier().to_string());
    assert_eq!(info["provider"], PROVIDER);
    assert_eq!(info["shares"], 1);
    assert!(h.log.submitted().is_empty());
}
