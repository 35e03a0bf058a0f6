//! A custodian releases its share only after its gate allowed the request
//! and its own receipt is proven in the log; it releases nothing and logs
//! nothing for a request its gate denies (every tampered bundle is denied
//! with the gate's own reason) or whose target it holds no share of; and it
//! fails closed when the log refuses, cannot be reached, or never proves
//! the receipt. Asked again, it answers with the same receipt and share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use daylight_core::{leaf_hash, LeafIndex};
use daylight_custodian::testing::Faults;
use daylight_custody::{open, Context, Sealed};
use daylight_gate::testkit::{World, OTHER_TARGET, TARGET};
use daylight_gate::{decide, parse_opening, Decision};
use daylight_schemas::{Body, SignedRecord};

const WAIT: Duration = Duration::from_secs(10);

/// The share in a 200 answer, opened with the world's agency key for the
/// request at `index` with leaf hash `leaf`.
fn opened(
    h: &Harness,
    body: &serde_json::Value,
    index: LeafIndex,
    leaf: &str,
) -> daylight_custody::Share {
    let sealed: Sealed = serde_json::from_value(body["sealed"].clone()).unwrap();
    let agency = h.log.world().agency.clone();
    open(
        &sealed,
        &agency,
        &Context::Release {
            origin: daylight_gate::testkit::ORIGIN.into(),
            index: index.0,
            leaf_hash: leaf.into(),
            custodian: h.custodian.label().into(),
            slot: daylight_custody::Slot::of(
                daylight_gate::testkit::PROVIDER,
                daylight_gate::testkit::TARGET,
            )
            .to_hex(),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_release_is_logged_and_proven_first_and_repeats_the_same_receipt() {
    let h = harness(WAIT).await;
    let (_, shares) = h.deposit_share(0).await;
    let b = h.bundle();
    let leaf = leaf_hash(&b.entry).to_hex();

    let (status, first) = h.release_bundle(&b).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["custodian"], h.custodian.label());
    assert_eq!(opened(&h, &first, b.index, &leaf), shares[0]);
    // The answer and the receipt name the key by its tag for this request,
    // never by its check value (which would link requests about one target).
    let named = shares[0].reference.for_receipt(&leaf_hash(&b.entry));
    assert_eq!(
        serde_json::from_value::<daylight_schemas::ShareRef>(first["share"].clone()).unwrap(),
        named
    );
    assert_ne!(named.key.0, shares[0].reference.key.0);
    assert!(!first
        .to_string()
        .contains(&shares[0].reference.key.to_hex()));
    // Never the share in clear.
    assert!(!first.to_string().contains(&hex::encode(shares[0].value)));

    // The receipt: a share release by the custodian naming the request and
    // the share, at the index answered.
    let submitted = h.log.submitted();
    assert_eq!(submitted.len(), 1);
    let receipt = SignedRecord::parse(&submitted[0]).unwrap();
    assert!(receipt.signer().is(h.key.verifier()));
    let Body::Release(r) = receipt.body() else {
        panic!("not a release: {receipt:?}")
    };
    assert_eq!(
        (r.entry.index, r.entry.leaf_hash),
        (b.index, leaf_hash(&b.entry))
    );
    assert_eq!(r.share, Some(named));
    let index = first["receipt"]["index"].as_u64().unwrap();
    assert_eq!(h.log.world().entry(index), submitted[0]);
    assert_eq!(
        first["receipt"]["leaf_hash"],
        leaf_hash(&submitted[0]).to_hex()
    );

    // Asked again (twice at once): the same receipt, the same share, no
    // second receipt.
    let (a, b2) = tokio::join!(h.release_bundle(&b), h.release_bundle(&b));
    for (status, again) in [a, b2] {
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["receipt"], first["receipt"]);
        assert_eq!(opened(&h, &again, b.index, &leaf), shares[0]);
    }
    assert_eq!(h.log.submitted().len(), 1);
}

#[tokio::test]
async fn receipts_for_two_requests_about_one_target_cannot_be_linked() {
    // The same target's key, asked for by two requests: the agency gets the
    // same share (same key check inside), but the public receipts name the
    // key by different tags, and neither shows the check value.
    let h = harness(WAIT).await;
    let (_, shares) = h.deposit_share(0).await;
    let mut tags = Vec::new();
    for _ in 0..2 {
        let b = h.bundle();
        let leaf = leaf_hash(&b.entry).to_hex();
        let (status, body) = h.release_bundle(&b).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(opened(&h, &body, b.index, &leaf), shares[0]);
        let named: daylight_schemas::ShareRef =
            serde_json::from_value(body["share"].clone()).unwrap();
        assert_ne!(named.key.0, shares[0].reference.key.0);
        tags.push(named.key);
    }
    assert_ne!(tags[0], tags[1], "two requests' receipts share a tag");
    for receipt in h.log.submitted() {
        let text = String::from_utf8_lossy(&receipt).into_owned();
        assert!(!text.contains(&shares[0].reference.key.to_hex()), "{text}");
    }
}

#[tokio::test]
async fn no_share_for_the_target_is_404_and_logs_nothing() {
    let h = harness(WAIT).await;
    let b = h.bundle();
    let (status, body) = h.release_bundle(&b).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no_share")),
        "{body}"
    );
    // A share for TARGET does not answer for OTHER_TARGET.
    h.deposit_share(0).await;
    let (status, body) = h
        .release(&b.entry, &b.proof, opening_json(&b), OTHER_TARGET)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no_share")),
        "{body}"
    );
    assert!(h.log.submitted().is_empty());
}

/// Asks for a release of a tampered bundle: it must be a 403 `denied` with
/// the reason the gate gives the same inputs under the same policy, and no
/// share in the answer. A change the gate itself allows (a flipped bit in
/// the name of a cosignature line: a key the policy does not know, whose
/// line is ignored) is not asked about: false.
async fn denied_like_the_gate(
    h: &Harness,
    entry: &[u8],
    proof: &[u8],
    opening: serde_json::Value,
    target: &str,
    what: &str,
) -> bool {
    let policy = h.log.world().policy();
    let expected = match parse_opening(&serde_json::to_vec(&opening).unwrap()) {
        Err(d) => d.reason,
        Ok(o) => match decide(&policy, entry, proof, Some((&o, target)), Utc::now()) {
            Decision::Deny { reason, .. } => reason,
            Decision::Allow(_) => return false,
        },
    };
    let (status, body) = h.release(entry, proof, opening, target).await;
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(body["error"], "denied", "{what}: {body}");
    assert_eq!(body["reason"], expected.as_str(), "{what}: {body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(body.get("sealed").is_none(), "{what}: {body}");
    true
}

/// [`denied_like_the_gate`] of a change the gate must deny.
async fn assert_denied_like_the_gate(
    h: &Harness,
    entry: &[u8],
    proof: &[u8],
    opening: serde_json::Value,
    target: &str,
    what: &str,
) {
    assert!(
        denied_like_the_gate(h, entry, proof, opening, target, what).await,
        "{what}: the gate allows it"
    );
}

#[tokio::test]
async fn every_tampered_bundle_is_denied_with_the_gates_reason_and_nothing_is_logged() {
    let h = harness(WAIT).await;
    h.deposit_share(0).await;
    let b = h.bundle();
    let opening = opening_json(&b);

    // A flipped bit in the entry and in the proof, at every 7th byte; in
    // the opening, wherever the result is still JSON. Every one the gate
    // denies, the custodian denies with the same reason.
    let (mut asked, mut allowed) = (0, 0);
    for i in (0..b.entry.len()).step_by(7) {
        let mut e = b.entry.clone();
        e[i] ^= 0x01;
        let what = format!("entry byte {i}");
        assert_denied_like_the_gate(&h, &e, &b.proof, opening.clone(), TARGET, &what).await;
        asked += 1;
    }
    for i in (0..b.proof.len()).step_by(7) {
        let mut p = b.proof.clone();
        p[i] ^= 0x01;
        let what = format!("proof byte {i}");
        if denied_like_the_gate(&h, &b.entry, &p, opening.clone(), TARGET, &what).await {
            asked += 1;
        } else {
            allowed += 1;
        }
    }
    let text = b.opening.to_json().into_bytes();
    for i in 0..text.len() {
        let mut t = text.clone();
        t[i] ^= 0x01;
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&t) else {
            continue;
        };
        let what = format!("opening byte {i}");
        if v != opening && denied_like_the_gate(&h, &b.entry, &b.proof, v, TARGET, &what).await {
            asked += 1;
        }
    }
    assert!(
        asked > 300 && allowed < 10,
        "{asked} denied, {allowed} allowed by the gate"
    );
    // Not a target of the request.
    assert_denied_like_the_gate(
        &h,
        &b.entry,
        &b.proof,
        opening.clone(),
        "acct:0000",
        "wrong target",
    )
    .await;
    // An old checkpoint, and too few cosignatures.
    let now = Utc::now().timestamp() as u64;
    let (old, one) = {
        let w = h.log.world();
        (
            w.proof(
                b.index,
                &[(0, now - 7200), (1, now - 7200), (2, now - 7200)],
            ),
            w.proof(b.index, &[(0, now)]),
        )
    };
    assert_denied_like_the_gate(
        &h,
        &b.entry,
        &old,
        opening.clone(),
        TARGET,
        "old checkpoint",
    )
    .await;
    assert_denied_like_the_gate(
        &h,
        &b.entry,
        &one,
        opening.clone(),
        TARGET,
        "one cosignature",
    )
    .await;
    // A request addressed to another provider.
    let created = Utc::now() - chrono::Duration::hours(1);
    let other = h
        .log
        .world()
        .bundle(
            &World::request_draft("other-provider.example", created),
            created,
            now - 60,
        )
        .unwrap();
    assert_denied_like_the_gate(
        &h,
        &other.entry,
        &other.proof,
        opening_json(&other),
        TARGET,
        "other provider",
    )
    .await;

    assert!(h.log.submitted().is_empty(), "a denied request was logged");
    // The untampered bundle is released (the denials were the tampering's).
    let (status, body) = h.release_bundle(&b).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_log_that_refuses_or_cannot_be_reached_gets_no_share_released() {
    let h = harness(WAIT).await;
    h.deposit_share(0).await;
    let b = h.bundle();
    for faults in [
        Faults {
            refuse: true,
            ..Faults::default()
        },
        Faults {
            unreachable: true,
            ..Faults::default()
        },
    ] {
        h.log.set_faults(faults);
        let (status, body) = h.release_bundle(&b).await;
        assert_eq!(status, 502, "{faults:?}: {body}");
        assert_eq!(body["error"], "receipt_not_logged", "{body}");
        assert!(body.get("sealed").is_none(), "{body}");
    }
    assert!(h.log.submitted().is_empty());
}

#[tokio::test]
async fn a_receipt_never_proven_releases_nothing_until_it_is() {
    let h = harness(Duration::from_millis(1500)).await;
    let (_, shares) = h.deposit_share(0).await;
    let b = h.bundle();
    for faults in [
        // Never in a published checkpoint.
        Faults {
            never_include: true,
            ..Faults::default()
        },
        // In one, but cosigned below the custodian's quorum.
        Faults {
            one_cosigner: true,
            ..Faults::default()
        },
    ] {
        h.log.set_faults(faults);
        let (status, body) = h.release_bundle(&b).await;
        assert_eq!(status, 504, "{faults:?}: {body}");
        assert_eq!(body["error"], "receipt_not_included", "{body}");
        assert!(body.get("sealed").is_none(), "{body}");
    }
    // The receipt was logged once; once the log proves it, the same
    // receipt releases the share.
    assert_eq!(h.log.submitted().len(), 1);
    h.log.set_faults(Faults::default());
    let (status, body) = h.release_bundle(&b).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.log.submitted().len(), 1);
    assert_eq!(
        h.log
            .world()
            .entry(body["receipt"]["index"].as_u64().unwrap()),
        h.log.submitted()[0]
    );
    let leaf = leaf_hash(&b.entry).to_hex();
    assert_eq!(opened(&h, &body, b.index, &leaf), shares[0]);
}

#[tokio::test]
async fn malformed_bodies_are_refused_as_json() {
    let h = harness(WAIT).await;
    for (path, body) in [
        ("/api/v1/release", b"not json".to_vec()),
        (
            "/api/v1/release",
            br#"{"entry": "***", "proof": "", "opening": {}, "target": "t"}"#.to_vec(),
        ),
        (
            "/api/v1/release",
            br#"{"entry": "", "proof": "", "opening": {}, "target": "t", "more": 1}"#.to_vec(),
        ),
        ("/api/v1/shares", b"{}".to_vec()),
    ] {
        let (status, v) = h.post(path, body).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"], "malformed", "{v}");
    }
    let (status, v) = h
        .post(
            "/api/v1/release",
            vec![b' '; daylight_custodian::http::MAX_BODY + 1],
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (413, Some("too_large")),
        "{v}"
    );
    let (status, v) = h.post("/api/v1/nothing", b"{}".to_vec()).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    assert!(h.log.submitted().is_empty());
}
