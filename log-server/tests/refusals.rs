//! A provider's answers to requests (release receipts and refusals) must
//! name a request or emergency addressed to the provider that signs them:
//! the log refuses one for an entry it does not hold (past its end:
//! `reference_not_backwards`; another leaf hash: `reference_hash_mismatch`), for an
//! entry that authorises nothing (`reference_not_authorising`) and one
//! signed by another provider (`wrong_provider`), and admits the right one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Utc;
use common::*;
use daylight_core::{Hash, KeyType, LeafIndex, SignerKey};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::store::LogStore;
use daylight_schemas::{
    Body, Draft, EntryRef, Kind, Record, RefusalBody, RefusalReason, ReleaseBody, Role,
    SignedRecord, Timestamp, WithdrawalBody, WithdrawalReason,
};

/// A release receipt or a refusal by `provider` for `entry`.
fn answer(kind: Kind, provider: &SignerKey, entry: EntryRef) -> SignedRecord {
    let now = Utc::now();
    let at = Timestamp::new(now).unwrap();
    let body = match kind {
        Kind::Release => Body::Release(ReleaseBody {
            entry,
            targets_released: 1,
            released_at: at,
            share: None,
        }),
        Kind::Refusal => Body::Refusal(RefusalBody {
            entry,
            reason: RefusalReason::JurisdictionDenied,
            refused_at: at,
        }),
        other => panic!("{other} is not a provider's answer"),
    };
    Record::new(now, body)
        .unwrap()
        .sign(provider, ORIGIN)
        .unwrap()
}

/// Posts `r`; returns the status and the error code (or the index as text).
async fn submit(c: &reqwest::Client, url: &str, r: &SignedRecord) -> (u16, String) {
    let (status, v) = post(c, url, r.to_bytes()).await;
    let what = match v["error"].as_str() {
        Some(code) => code.to_owned(),
        None => v["index"].to_string(),
    };
    (status, what)
}

/// Posts `r`, which must be admitted; its reference.
async fn logged(c: &reqwest::Client, url: &str, r: &SignedRecord) -> EntryRef {
    let (status, v) = post(c, url, r.to_bytes()).await;
    assert_eq!(status, 200, "{v}");
    EntryRef::to(r, LeafIndex(v["index"].as_u64().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_answers_must_name_an_authorisation_addressed_to_the_signer() {
    let f = Fixture::new(0);
    // The example request is addressed to messenger.example.
    let provider = key("messenger.example", KeyType::Ed25519, 7);
    let other = key("other-provider.example", KeyType::Ed25519, 8);
    f.register(Role::Provider, &provider.verifier().clone());
    f.register(Role::Provider, &other.verifier().clone());
    let registry_entry = registry_entry(&f);
    let log = f.start(BatchConfig::default()).await;
    let (c, url) = (client(), log.url());

    let request = logged(&c, &url, &request(&f.agency)).await;
    let now = Utc::now();
    let emergency = Draft::example(Kind::Emergency, now, None, "messenger.example")
        .unwrap()
        .seal(&f.agency, ORIGIN, now, &mut test_random)
        .unwrap()
        .0;
    let emergency = logged(&c, &url, &emergency).await;
    let withdrawn = logged(&c, &url, &request_of(&f)).await;
    let withdrawal = withdrawal(&f.agency, withdrawn, WithdrawalReason::IssuedInError);
    let withdrawal = logged(&c, &url, &withdrawal).await;
    let unknown = EntryRef {
        index: LeafIndex(10_000),
        leaf_hash: Hash([7; 32]),
    };
    let wrong_hash = EntryRef {
        leaf_hash: Hash([7; 32]),
        ..request
    };

    for kind in [Kind::Refusal, Kind::Release] {
        let size = f.store.size().unwrap();
        for (entry, signer, status, code) in [
            (unknown, &provider, 422, "reference_not_backwards"),
            (wrong_hash, &provider, 422, "reference_hash_mismatch"),
            (registry_entry, &provider, 422, "reference_not_authorising"),
            (withdrawal, &provider, 422, "reference_not_authorising"),
            (request, &other, 403, "wrong_provider"),
            (emergency, &other, 403, "wrong_provider"),
        ] {
            let got = submit(&c, &url, &answer(kind, signer, entry)).await;
            assert_eq!(
                got,
                (status, code.to_owned()),
                "{kind} for entry {} by {}",
                entry.index,
                signer.name()
            );
        }
        assert_eq!(f.store.size().unwrap(), size, "nothing refused was stored");
        // The addressed provider's answers to a request and an emergency.
        for entry in [request, emergency] {
            let r = answer(kind, &provider, entry);
            let (status, v) = post(&c, &url, r.to_bytes()).await;
            assert_eq!(status, 200, "{kind} for entry {}: {v}", entry.index);
        }
    }
    log.stop().await.unwrap();
}

/// The fixture's first entry (its agency's registry entry).
fn registry_entry(f: &Fixture) -> EntryRef {
    let e = f.store.entry(LeafIndex(0)).unwrap().unwrap();
    EntryRef {
        index: e.index,
        leaf_hash: e.leaf_hash,
    }
}

/// `agency`'s withdrawal of `entry`, signed for this log.
fn withdrawal(agency: &SignerKey, entry: EntryRef, reason: WithdrawalReason) -> SignedRecord {
    Record::new(
        Utc::now(),
        Body::Withdrawal(WithdrawalBody { entry, reason }),
    )
    .unwrap()
    .sign(agency, ORIGIN)
    .unwrap()
}

/// Another fresh request by the fixture's agency.
fn request_of(f: &Fixture) -> SignedRecord {
    request(&f.agency)
}

/// A withdrawal takes back a request or emergency of the agency that made
/// it: another agency's withdrawal (which would make every gate with a
/// mirror refuse the request) and a withdrawal of a registry entry are
/// refused, each with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_names_a_request_of_the_same_agency() {
    let f = Fixture::new(0);
    let rival = key("rival-agency.example", KeyType::Ed25519, 9);
    f.register(Role::Agency, &rival.verifier().clone());
    let registry_entry = registry_entry(&f);
    let log = f.start(BatchConfig::default()).await;
    let (c, url) = (client(), log.url());
    let request = logged(&c, &url, &request(&f.agency)).await;
    let withdraw = |agency: &SignerKey, entry: EntryRef| {
        withdrawal(agency, entry, WithdrawalReason::NoLongerNeeded)
    };
    let size = f.store.size().unwrap();
    assert_eq!(
        submit(&c, &url, &withdraw(&rival, request)).await,
        (403, "wrong_agency".to_owned())
    );
    assert_eq!(
        submit(&c, &url, &withdraw(&f.agency, registry_entry)).await,
        (422, "reference_not_authorising".to_owned())
    );
    assert_eq!(f.store.size().unwrap(), size, "nothing refused was stored");
    let (status, v) = post(&c, &url, withdraw(&f.agency, request).to_bytes()).await;
    assert_eq!(status, 200, "{v}");
    log.stop().await.unwrap();
}
