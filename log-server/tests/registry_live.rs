//! The registry while the log serves: records bound to this log, no entry
//! by a revoked key after its revocation (raced thousands of times), key
//! rotations, witness-set and quorum changes without a restart, and
//! checkpoints signed by both log keys during a rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{client, get_json, key, post, published, request, Fixture, Mode, TestWitness, ORIGIN};
use daylight_core::{KeyType, LeafIndex, SignedCheckpoint, SignerKey, TreeSize};
use daylight_log_server::integrate::{append_record, CheckpointSigner, LogKeys};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::store::LogStore;
use daylight_schemas::{Record, Role, SignedRecord};

#[tokio::test]
async fn records_for_another_log_and_version_1_records_are_refused() {
    let f = Fixture::new(0);
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    let good = request(&f.agency);
    // The same content signed for another log: refused with its code.
    let other = good.record().sign(&f.agency, "other.example/log").unwrap();
    let (s, b) = post(&c, &log.url(), other.to_bytes()).await;
    assert_eq!((s, b["error"].as_str()), (422, Some("wrong_log")), "{b}");
    // A version-1 record names no log: no log takes a new one.
    let v1 = good.record().sign_version_1(&f.agency).unwrap();
    let (s, b) = post(&c, &log.url(), v1.to_bytes()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("unbound_record")),
        "{b}"
    );
    // The record for this log goes in.
    let (s, b) = post(&c, &log.url(), good.to_bytes()).await;
    assert_eq!(s, 200, "{b}");
    // The fixture's registry entry, then this record.
    assert_eq!(f.store.size().unwrap(), TreeSize(2));
    log.stop().await.unwrap();
}

/// Registers a fresh agency key, then submits records signed by it from
/// several tasks while the operator revokes it, many times over; after
/// each round no entry signed by that key may sit after its revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_entry_by_a_revoked_key_is_integrated_after_its_revocation() {
    const ROUNDS: usize = 2000;
    const PER_ROUND: usize = 4;
    let f = Arc::new(Fixture::new(0));
    let log = f
        .start(BatchConfig {
            max_entries: 64,
            max_wait: Duration::from_millis(1),
            queue: 1024,
        })
        .await;
    let c = client();
    let url = log.url();
    let deadline = Instant::now() + Duration::from_secs(240);
    let (mut accepted, mut refused, mut rounds) = (0usize, 0usize, 0usize);
    for round in 0..ROUNDS {
        if Instant::now() > deadline {
            break;
        }
        rounds += 1;
        let agency = daylight_core::SignerKey::from_seed(
            daylight_core::KeyName::new(&format!("race{round}.test")).unwrap(),
            KeyType::Ed25519,
            {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&(round as u64).to_be_bytes());
                seed
            },
        );
        f.register(Role::Agency, agency.verifier());
        let records: Vec<SignedRecord> = (0..PER_ROUND).map(|_| request(&agency)).collect();
        let submits: Vec<_> = records
            .into_iter()
            .map(|r| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move { post(&c, &url, r.to_bytes()).await })
            })
            .collect();
        // The operator's revocation, written as `daylight log revoke` does:
        // straight into the store, racing the sequencer.
        let (f2, vkey) = (f.clone(), agency.verifier().clone());
        // A varying head start for the submissions, so the race goes both ways.
        let head_start = Duration::from_micros((round as u64 * 7919) % 6000);
        let revoked_at = tokio::task::spawn_blocking(move || {
            std::thread::sleep(head_start);
            // Retried: the sequencer may move the log under us.
            loop {
                let rec = Record::registry_revoke(Role::Agency, &vkey, chrono::Utc::now())
                    .unwrap()
                    .sign(&f2.log_key, ORIGIN)
                    .unwrap();
                match append_record(f2.store.as_ref(), &f2.log_key, &rec, f2.log_key.verifier()) {
                    Ok(i) => return i,
                    Err(e) if e.to_string().contains("size changed") => continue,
                    Err(e) => panic!("revoking: {e}"),
                }
            }
        })
        .await
        .unwrap();
        for s in submits {
            let (status, body) = s.await.unwrap();
            match status {
                200 => {
                    accepted += 1;
                    let index = body["index"].as_u64().unwrap();
                    assert!(
                        LeafIndex(index) < revoked_at,
                        "round {round}: entry {index} by a key revoked at {revoked_at}"
                    );
                }
                403 => {
                    refused += 1;
                    assert_eq!(body["error"], "revoked_signer", "{body}");
                }
                other => panic!("round {round}: unexpected {other}: {body}"),
            }
        }
    }
    // Every entry in the log, checked again from the store: none by a key
    // after that key's revocation.
    let size = f.store.size().unwrap().get();
    let entries = f.store.entries(LeafIndex(0), size).unwrap();
    let mut revoked: std::collections::HashMap<String, u64> = Default::default();
    for e in &entries {
        let r = SignedRecord::parse(&e.data).unwrap();
        if let daylight_schemas::Body::Registry(b) = r.body() {
            if b.action == daylight_schemas::RegistryAction::Revoke {
                let k = b.key.as_ref().unwrap().key();
                revoked.insert(format!("{}+{}", k.name(), k.id()), e.index.get());
            }
            continue;
        }
        if let Some(at) = revoked.get(&r.signer().to_string()) {
            assert!(
                e.index.get() < *at,
                "entry {} after its signer's revocation at {at}",
                e.index
            );
        }
    }
    assert!(rounds >= 100, "only {rounds} rounds ran in time");
    assert!(
        accepted > 0 && refused > 0,
        "the race never went both ways: {accepted} accepted, {refused} refused"
    );
    eprintln!(
        "{rounds} rounds: {accepted} accepted before the revocation, {refused} refused after"
    );
    log.stop().await.unwrap();
}

#[tokio::test]
async fn witness_set_and_quorum_change_while_serving() {
    let f = Fixture::new(1);
    let w1 = TestWitness::start("w1.test", 11, f.log_key.verifier(), Mode::Honest).await;
    let w2 = TestWitness::start("w2.test", 12, f.log_key.verifier(), Mode::Honest).await;
    let broken = TestWitness::start("w3.test", 13, f.log_key.verifier(), Mode::Broken).await;
    let append = |r: Record| {
        let signed = r.sign(&f.log_key, ORIGIN).unwrap();
        append_record(f.store.as_ref(), &f.log_key, &signed, f.log_key.verifier())
            .unwrap()
            .get()
    };
    // Only a broken witness at first: nothing can be published.
    append(
        Record::registry_witness(
            broken.key.verifier(),
            &broken.url(),
            None,
            chrono::Utc::now(),
        )
        .unwrap(),
    );
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    let (s, _) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = c
        .get(format!("{}/checkpoint", log.url()))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200, "published without a working witness");
    // Replace the broken witness by w1, without a restart.
    append(
        Record::registry_witness(
            w1.key.verifier(),
            &w1.url(),
            Some(broken.key.verifier()),
            chrono::Utc::now(),
        )
        .unwrap(),
    );
    let (s, _) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200);
    let size = f.store.size().unwrap().get();
    let cp = published(&c, &log.url(), size).await;
    assert!(String::from_utf8_lossy(&cp).contains("w1.test"));
    // Add w2 and raise the quorum to 2: the next checkpoint carries both.
    append(
        Record::registry_witness(w2.key.verifier(), &w2.url(), None, chrono::Utc::now()).unwrap(),
    );
    append(Record::registry_quorum(2, chrono::Utc::now()).unwrap());
    let (s, _) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200);
    let size = f.store.size().unwrap().get();
    let cp = String::from_utf8(published(&c, &log.url(), size).await).unwrap();
    assert!(cp.contains("w1.test") && cp.contains("w2.test"), "{cp}");
    let info = get_json(&c, &format!("{}/api/v1/log", log.url())).await;
    assert_eq!(info["quorum"], 2, "{info}");
    let vkeys: Vec<&str> = info["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["vkey"].as_str().unwrap())
        .collect();
    assert_eq!(vkeys.len(), 2, "{info}");
    assert!(!vkeys.contains(&broken.key.verifier().to_string().as_str()));
    assert!(broken.requests() > 0, "the broken witness was never asked");
    log.stop().await.unwrap();
}

/// Appends the registry entry (signed by the old key) that rotates the
/// fixture's log key to `new_key`, the old key signing beside it until
/// `until`: the keys the log signs with from then on.
fn rotate_log_key(f: &Fixture, new_key: &SignerKey, until: DateTime<Utc>) -> LogKeys {
    let rotation = Record::registry_rotate(
        Role::Log,
        f.log_key.verifier(),
        new_key.verifier(),
        Some(until),
        chrono::Utc::now(),
    )
    .unwrap()
    .sign(&f.log_key, ORIGIN)
    .unwrap();
    let both = LogKeys::new(new_key.clone(), vec![(f.log_key.clone(), until)]);
    append_record(f.store.as_ref(), &both, &rotation, f.log_key.verifier()).unwrap();
    both
}

#[tokio::test]
async fn after_a_log_key_rotation_checkpoints_carry_both_keys_until_the_transition_ends() {
    let f = Fixture::new(0);
    let new_key = key(ORIGIN, KeyType::Ed25519, 77);
    let until = chrono::Utc::now() + chrono::Duration::days(7);
    let both = rotate_log_key(&f, &new_key, until);
    // A registry entry after the rotation must be signed by the new key:
    // the old key's is not the log's any more.
    let stale = Record::registry_add(
        Role::Court,
        key("court.test", KeyType::Ed25519, 5).verifier(),
        chrono::Utc::now(),
    )
    .unwrap()
    .sign(&f.log_key, ORIGIN)
    .unwrap();
    append_record(f.store.as_ref(), &both, &stale, f.log_key.verifier()).unwrap();
    let mut server = f.server(BatchConfig::default());
    server.key = new_key.clone();
    server.retiring = vec![(f.log_key.clone(), until)];
    let log = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = client();
    let (s, b) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200, "{b}");
    let size = f.store.size().unwrap().get();
    let cp = published(&c, &log.url(), size).await;
    // Either key opens it: verifiers that know only one keep working.
    SignedCheckpoint::open(&cp, f.log_key.verifier()).unwrap();
    SignedCheckpoint::open(&cp, new_key.verifier()).unwrap();
    let agencies = get_json(&c, &format!("{}/api/v1/agencies", log.url())).await;
    // The court entry signed by the retired key did not register it.
    assert!(!agencies.to_string().contains("court.test"), "{agencies}");
    let info = get_json(&c, &format!("{}/api/v1/log", log.url())).await;
    assert_eq!(info["vkey"], new_key.verifier().to_string(), "{info}");
    let vkeys = info["vkeys"].as_array().unwrap();
    assert_eq!(vkeys.len(), 2, "{info}");
    assert_eq!(vkeys[0]["vkey"], f.log_key.verifier().to_string());
    // The fixture registered its agency at 0; the rotation is entry 1.
    assert_eq!(vkeys[0]["replaced_at"], 1);
    assert!(vkeys[0]["until"].is_string());
    assert_eq!(vkeys[1]["from"], 1);
    log.stop().await.unwrap();

    // After the transition, the new key alone signs.
    let after = LogKeys::new(
        new_key.clone(),
        vec![(
            f.log_key.clone(),
            chrono::Utc::now() - chrono::Duration::seconds(1),
        )],
    );
    let cp = daylight_core::Checkpoint::new(ORIGIN, TreeSize(9), daylight_core::Hash::empty_tree());
    let note = after.sign_checkpoint(&cp).unwrap().to_bytes();
    assert!(SignedCheckpoint::open(&note, f.log_key.verifier()).is_err());
    SignedCheckpoint::open(&note, new_key.verifier()).unwrap();
}

#[tokio::test]
async fn a_rotated_agency_key_is_refused_and_its_successor_accepted() {
    let f = Fixture::new(0);
    let new_agency = key("agency.test", KeyType::Ed25519, 42);
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    let (s, _) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(s, 200);
    let rot = Record::registry_rotate(
        Role::Agency,
        f.agency.verifier(),
        new_agency.verifier(),
        None,
        chrono::Utc::now(),
    )
    .unwrap()
    .sign(&f.log_key, ORIGIN)
    .unwrap();
    let at = append_record(f.store.as_ref(), &f.log_key, &rot, f.log_key.verifier()).unwrap();
    let (s, b) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (403, Some("revoked_signer")),
        "{b}"
    );
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("replaced by agency.test+"),
        "{b}"
    );
    let (s, b) = post(&c, &log.url(), request(&new_agency).to_bytes()).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["index"].as_u64().unwrap() > at.get());
    let agencies = get_json(&c, &format!("{}/api/v1/agencies", log.url())).await;
    let keys = agencies["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{agencies}");
    assert_eq!(keys[0]["replaced_by"], new_agency.verifier().to_string());
    assert_eq!(keys[1]["replaces"], f.agency.verifier().to_string());
    log.stop().await.unwrap();
}

/// `log rotate-key` while the log serves: the sequencer sees the registry
/// name a new log key and reloads its keys (or, with nowhere to reload
/// from, refuses to sign rather than sign without the log's current key).
#[tokio::test]
async fn a_serving_log_takes_its_new_key_or_refuses_to_sign() {
    for reloadable in [true, false] {
        let f = Fixture::new(0);
        let new_key = key(ORIGIN, KeyType::Ed25519, 78);
        let until = chrono::Utc::now() + chrono::Duration::days(7);
        let mut server = f.server(BatchConfig::default());
        if reloadable {
            let (old, new) = (f.log_key.clone(), new_key.clone());
            server.reload_keys = Some(Arc::new(move || {
                Ok(LogKeys::new(new.clone(), vec![(old.clone(), until)]))
            }));
        }
        let log = server.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let c = client();
        let (s, _) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
        assert_eq!(s, 200);
        // The operator rotates the log's key behind the server's back.
        rotate_log_key(&f, &new_key, until);
        let (s, b) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
        if reloadable {
            assert_eq!(s, 200, "{b}");
            let size = f.store.size().unwrap().get();
            let cp = published(&c, &log.url(), size).await;
            SignedCheckpoint::open(&cp, new_key.verifier()).unwrap();
            SignedCheckpoint::open(&cp, f.log_key.verifier()).unwrap();
        } else {
            assert_eq!(
                (s, b["error"].as_str()),
                (503, Some("log_key_unavailable")),
                "{b}"
            );
            assert!(b["detail"].as_str().unwrap().contains("restart"), "{b}");
        }
        // Either way /api/v1/log names the registry's current key.
        let info = get_json(&c, &format!("{}/api/v1/log", log.url())).await;
        assert_eq!(info["vkey"], new_key.verifier().to_string(), "{info}");
        log.stop().await.unwrap();
    }
}
