//! The gate's decision on bundles built with the core and the schemas crate
//! (no server): Allow for a valid bundle, and every reason code, each from
//! the tampering or mistake it exists for.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use daylight_core::{KeyName, KeyType, LeafIndex, SignerKey, TlogProof};
use daylight_gate::testkit::{Bundle, World, AGENCY, OTHER_TARGET, PROVIDER, TARGET};
use daylight_gate::{
    decide, parse_opening, release_receipt, Decision, Policy, ReasonCode, ReleaseError,
};
use daylight_schemas::{EntryRef, Kind, Record, SignedRecord};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap()
}

fn secs(t: DateTime<Utc>) -> u64 {
    t.timestamp() as u64
}

/// A request created an hour ago, cosigned by all three a minute ago.
fn request(world: &mut World) -> Bundle {
    let created = now() - Duration::hours(1);
    let draft = World::request_draft(PROVIDER, created);
    world
        .bundle(&draft, created, secs(now()) - 60)
        .expect("bundle")
}

fn check(policy: &Policy, b: &Bundle, target: Option<&str>) -> Decision {
    decide(
        policy,
        &b.entry,
        &b.proof,
        target.map(|t| (&b.opening, t)),
        now(),
    )
}

#[track_caller]
fn denied(d: Decision, reason: ReasonCode) {
    daylight_gate::testkit::assert_denied(&d, reason);
}

#[test]
fn a_valid_bundle_is_allowed() {
    let mut w = World::new();
    let b = request(&mut w);
    let policy = w.policy();
    let Decision::Allow(a) = check(&policy, &b, Some(TARGET)) else {
        panic!("{}", check(&policy, &b, Some(TARGET)));
    };
    assert_eq!(a.index, b.index);
    assert_eq!(a.kind, Kind::Request);
    assert_eq!(a.provider, PROVIDER);
    assert!(a.agency.starts_with(&format!("{AGENCY}+")));
    assert_eq!(a.target_position, Some(0));
    assert_eq!(a.target_count, 2);
    assert_eq!(a.cosignatures, 3);
    assert_eq!(a.newest_cosignature, now() - Duration::seconds(60));
    let line = Decision::Allow(a.clone()).to_string();
    assert!(line.starts_with("ALLOW request 3 target #0 of 2 for messenger.example"));
    assert!(!line.contains('\n') && !line.contains(TARGET), "{line}");

    // The second target, and no target at all.
    let Decision::Allow(a2) = check(&policy, &b, Some(OTHER_TARGET)) else {
        panic!()
    };
    assert_eq!(a2.target_position, Some(1));
    let Decision::Allow(a3) = check(&policy, &b, None) else {
        panic!()
    };
    assert_eq!(a3.target_position, None);

    // Right at the edges: the oldest allowed checkpoint, a small clock skew.
    for cosigned in [secs(now()) - 3600, secs(now()) + 300] {
        let proof = w.proof(b.index, &[(0, cosigned), (2, cosigned - 5)]);
        let b2 = Bundle { proof, ..b.clone() };
        assert!(check(&policy, &b2, Some(TARGET)).is_allow());
    }

    // A policy in text, read back, decides the same.
    let again = Policy::parse(&policy.to_text()).unwrap();
    assert!(check(&again, &b, Some(TARGET)).is_allow());
}

#[test]
fn a_valid_emergency_is_allowed_when_the_policy_allows_emergencies() {
    let mut w = World::new();
    let created = now() - Duration::hours(2);
    let draft = World::emergency_draft(PROVIDER, created);
    let b = w.bundle(&draft, created, secs(now()) - 10).unwrap();
    let Decision::Allow(a) = check(&w.policy(), &b, Some(TARGET)) else {
        panic!("{}", check(&w.policy(), &b, Some(TARGET)));
    };
    assert_eq!(a.kind, Kind::Emergency);
    assert_eq!(a.ratify_by, Some(created + Duration::hours(24)));
    assert!(Decision::Allow(a).to_string().contains("ratify by"));

    // emergency_not_allowed
    let strict = Policy::parse(&w.policy_text(2, false)).unwrap();
    denied(
        check(&strict, &b, Some(TARGET)),
        ReasonCode::EmergencyNotAllowed,
    );
}

#[test]
fn an_emergency_past_its_deadline_is_denied() {
    let mut w = World::new();
    // Ratify-by is 24 hours after creation: six hours ago; still inside its
    // validity window (three days).
    let created = now() - Duration::hours(30);
    let draft = World::emergency_draft(PROVIDER, created);
    let b = w.bundle(&draft, created, secs(now()) - 10).unwrap();
    denied(
        check(&w.policy(), &b, Some(TARGET)),
        ReasonCode::EmergencyDeadlinePassed,
    );
    // One second before the deadline it is still allowed; at the deadline not.
    let deadline = created + Duration::hours(24);
    let proof_time = |t: DateTime<Utc>| w.proof(b.index, &[(0, secs(t)), (1, secs(t))]);
    let at = |t| {
        let proof = proof_time(t);
        decide(&w.policy(), &b.entry, &proof, Some((&b.opening, TARGET)), t)
    };
    let before = deadline - Duration::seconds(1);
    let b_before = Bundle {
        proof: proof_time(before),
        ..b.clone()
    };
    assert!(decide(
        &w.policy(),
        &b_before.entry,
        &b_before.proof,
        Some((&b_before.opening, TARGET)),
        before
    )
    .is_allow());
    denied(at(deadline), ReasonCode::EmergencyDeadlinePassed);
}

#[test]
fn bundle_malformed() {
    let mut w = World::new();
    let b = request(&mut w);
    let policy = w.policy();
    let text = String::from_utf8(b.proof.clone()).unwrap();
    for bad in [
        b"not a proof".to_vec(),
        Vec::new(),
        vec![0xff; 40],
        text.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v9")
            .into_bytes(),
        text.replacen("index ", "index x", 1).into_bytes(),
        // The checkpoint without its signature block.
        text.as_bytes()[..text.rfind("\n\n").unwrap() + 1].to_vec(),
        // A checkpoint body that is not a checkpoint.
        text.replacen(&format!("\n{}\n", w.tree.size()), "\nten\n", 1)
            .into_bytes(),
    ] {
        let b2 = Bundle {
            proof: bad,
            ..b.clone()
        };
        denied(check(&policy, &b2, None), ReasonCode::BundleMalformed);
    }
}

#[test]
fn unknown_log_and_log_signature_invalid() {
    let mut w = World::new();
    let b = request(&mut w);
    let log_line = format!("log {}\n", w.log.verifier());
    let text = w.policy_text(2, true);
    // A policy that trusts another log: the checkpoint's origin is unknown.
    let other = SignerKey::from_seed(
        KeyName::new("other-log.example").unwrap(),
        KeyType::Ed25519,
        [77; 32],
    );
    let policy =
        Policy::parse(&text.replace(&log_line, &format!("log {}\n", other.verifier()))).unwrap();
    denied(check(&policy, &b, None), ReasonCode::UnknownLog);

    // A policy with another key under the same origin: the log signature is not by it.
    let impostor = SignerKey::from_seed(
        KeyName::new(daylight_gate::testkit::ORIGIN).unwrap(),
        KeyType::Ed25519,
        [78; 32],
    );
    let policy =
        Policy::parse(&text.replace(&log_line, &format!("log {}\n", impostor.verifier()))).unwrap();
    denied(check(&policy, &b, None), ReasonCode::LogSignatureInvalid);

    // The log's signature line dropped (cosignatures alone are not enough).
    let proof = String::from_utf8(b.proof.clone()).unwrap();
    let without: String = proof
        .split_inclusive('\n')
        .filter(|l| !l.starts_with(&format!("\u{2014} {} ", daylight_gate::testkit::ORIGIN)))
        .collect();
    let b2 = Bundle {
        proof: without.into_bytes(),
        ..b.clone()
    };
    denied(
        check(&w.policy(), &b2, None),
        ReasonCode::LogSignatureInvalid,
    );

    // The checkpoint signed by the impostor key.
    let tp = TlogProof::parse(&b.proof).unwrap();
    let note = daylight_core::Note::parse(&tp.checkpoint).unwrap();
    let cp = daylight_core::Checkpoint::parse_text(note.text()).unwrap();
    let forged = TlogProof {
        checkpoint: cp.sign(&impostor).unwrap().to_bytes(),
        ..tp
    };
    let b3 = Bundle {
        proof: forged.to_bytes(),
        ..b
    };
    denied(
        check(&w.policy(), &b3, None),
        ReasonCode::LogSignatureInvalid,
    );
}

#[test]
fn cosignature_invalid() {
    let mut w = World::new();
    let b = request(&mut w);
    let text = String::from_utf8(b.proof.clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("\u{2014} witness1.example "))
        .unwrap();
    // Change one base64 character of the signature (past the key ID and timestamp).
    let mut sig = line.as_bytes().to_vec();
    let at = sig.len() - 12;
    sig[at] = if sig[at] == b'A' { b'B' } else { b'A' };
    let altered = text.replace(line, std::str::from_utf8(&sig).unwrap());
    let b2 = Bundle {
        proof: altered.into_bytes(),
        ..b
    };
    denied(
        check(&w.policy(), &b2, None),
        ReasonCode::CosignatureInvalid,
    );
}

#[test]
fn quorum_not_met_when_a_cosignature_is_dropped() {
    let mut w = World::new();
    let b = request(&mut w);
    let t = secs(now()) - 60;
    // Exactly the quorum (2): allowed.
    let two = w.proof(b.index, &[(0, t), (2, t)]);
    let b2 = Bundle {
        proof: two.clone(),
        ..b.clone()
    };
    assert!(check(&w.policy(), &b2, None).is_allow());
    // One of the two lines dropped: below quorum.
    let text = String::from_utf8(two).unwrap();
    let dropped: String = text
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("\u{2014} witness2.example "))
        .collect();
    assert_ne!(dropped, text);
    let b3 = Bundle {
        proof: dropped.into_bytes(),
        ..b.clone()
    };
    denied(check(&w.policy(), &b3, None), ReasonCode::QuorumNotMet);
    // A policy asking all three, with two.
    let all = Policy::parse(&w.policy_text(3, true)).unwrap();
    denied(check(&all, &b2, None), ReasonCode::QuorumNotMet);
    // No cosignature at all.
    let b4 = Bundle {
        proof: w.proof(b.index, &[]),
        ..b
    };
    denied(check(&w.policy(), &b4, None), ReasonCode::QuorumNotMet);
}

#[test]
fn cosignatures_by_keys_not_in_the_policy_do_not_count() {
    let mut w = World::new();
    let b = request(&mut w);
    let t = secs(now()) - 60;
    // Strangers, including keys that reuse the policy witnesses' names.
    let strangers: Vec<SignerKey> = (0..3u8)
        .map(|i| {
            SignerKey::from_seed(
                KeyName::new(&format!("witness{i}.example")).unwrap(),
                KeyType::CosignatureV1,
                [90 + i; 32],
            )
        })
        .chain((0..3u8).map(|i| {
            SignerKey::from_seed(
                KeyName::new(&format!("stranger{i}.example")).unwrap(),
                KeyType::CosignatureV1,
                [95 + i; 32],
            )
        }))
        .collect();
    let with: Vec<(&SignerKey, u64)> = strangers.iter().map(|k| (k, t)).collect();
    let proof = w.proof_with(b.index, &[(1, t)], &with);
    let b2 = Bundle { proof, ..b.clone() };
    denied(check(&w.policy(), &b2, None), ReasonCode::QuorumNotMet);
    // A policy witness's key used as a plain Ed25519 note signature does not count either.
    let as_note = w.witnesses[0].with_key_type(KeyType::Ed25519);
    let proof = w.proof_with(b.index, &[(1, t)], &[(&as_note, t)]);
    let b3 = Bundle { proof, ..b };
    denied(check(&w.policy(), &b3, None), ReasonCode::QuorumNotMet);
}

#[test]
fn an_old_checkpoint_past_the_maximum_age_is_denied() {
    let mut w = World::new();
    let b = request(&mut w);
    // Max age is one hour: cosigned an hour and a second ago.
    let old = secs(now()) - 3601;
    let proof = w.proof(b.index, &[(0, old), (1, old), (2, old - 100)]);
    let b2 = Bundle {
        proof: proof.clone(),
        ..b.clone()
    };
    denied(check(&w.policy(), &b2, None), ReasonCode::CheckpointTooOld);
    // One fresh cosignature among old ones makes it fresh (the newest counts).
    let proof = w.proof(b.index, &[(0, old), (1, secs(now()) - 5)]);
    let b3 = Bundle { proof, ..b };
    assert!(check(&w.policy(), &b3, None).is_allow());
}

#[test]
fn a_checkpoint_from_the_future_is_denied() {
    let mut w = World::new();
    let b = request(&mut w);
    let later = secs(now()) + 301;
    let proof = w.proof(b.index, &[(0, later), (1, secs(now()) - 5)]);
    let b2 = Bundle { proof, ..b };
    denied(
        check(&w.policy(), &b2, None),
        ReasonCode::CheckpointInFuture,
    );
}

#[test]
fn a_proof_for_index_n_is_not_a_proof_for_n_plus_1() {
    let mut w = World::new();
    let b = request(&mut w);
    let n = b.index.get();
    // The proof's index line changed to N+1.
    let text = String::from_utf8(b.proof.clone()).unwrap();
    let moved = text.replacen(&format!("index {n}\n"), &format!("index {}\n", n + 1), 1);
    let b2 = Bundle {
        proof: moved.into_bytes(),
        ..b.clone()
    };
    denied(check(&w.policy(), &b2, None), ReasonCode::NotIncluded);

    // The entry at N+1 presented with the proof for N.
    let created = now() - Duration::hours(1);
    let (other, _) = w
        .seal(
            &World::request_draft(PROVIDER, created),
            &w.agency.clone(),
            created,
        )
        .unwrap();
    let mut w2 = World::new();
    w2.append_filler(3);
    let i = w2.append(&b.entry);
    let j = w2.append(other.as_bytes());
    assert_eq!(j.get(), i.get() + 1);
    let t = secs(now()) - 60;
    let proof_n = w2.proof(i, &[(0, t), (1, t)]);
    let b3 = Bundle {
        entry: other.to_bytes(),
        proof: proof_n,
        ..b.clone()
    };
    denied(check(&w2.policy(), &b3, None), ReasonCode::NotIncluded);
    // A proof against a checkpoint that does not contain the index yet.
    let mut w3 = World::new();
    let k = w3.append(&b.entry);
    let small = w3.proof(LeafIndex(k.get() + 5), &[(0, t), (1, t)]);
    let b4 = Bundle { proof: small, ..b };
    denied(check(&w3.policy(), &b4, None), ReasonCode::NotIncluded);
}

/// Appends `entry` to a fresh world's log and proves it, cosigned a minute ago.
fn logged(w: &mut World, entry: &[u8], opening: daylight_schemas::Opening) -> Bundle {
    w.append_filler(1);
    let index = w.append(entry);
    let t = secs(now()) - 60;
    Bundle {
        entry: entry.to_vec(),
        proof: w.proof(index, &[(0, t), (1, t)]),
        opening,
        index,
    }
}

#[test]
fn record_malformed_kind_signer_and_signature() {
    let mut w = World::new();
    let policy = w.policy();
    let good = request(&mut w);

    // Not a record at all, yet included in the log.
    let b = logged(&mut w, b"{\"hello\": 1}", good.opening.clone());
    denied(check(&policy, &b, None), ReasonCode::RecordMalformed);
    // A record in a non-canonical form (a space added).
    let spaced = String::from_utf8(good.entry.clone())
        .unwrap()
        .replacen(',', ", ", 1);
    let b = logged(&mut w, spaced.as_bytes(), good.opening.clone());
    denied(check(&policy, &b, None), ReasonCode::RecordMalformed);

    // A release receipt is in the log but authorises nothing.
    let release = Record::release(
        EntryRef::new(good.index, daylight_core::leaf_hash(&good.entry)),
        1,
        now() - Duration::minutes(5),
        now() - Duration::minutes(5),
    )
    .unwrap()
    .sign(&w.provider, daylight_gate::testkit::ORIGIN)
    .unwrap();
    let b = logged(&mut w, release.as_bytes(), good.opening.clone());
    denied(check(&policy, &b, None), ReasonCode::KindNotAuthorising);

    // A request signed by an agency the policy does not list.
    let rogue = SignerKey::from_seed(KeyName::new(AGENCY).unwrap(), KeyType::Ed25519, [66; 32]);
    let created = now() - Duration::hours(1);
    let (r, o) = w
        .seal(&World::request_draft(PROVIDER, created), &rogue, created)
        .unwrap();
    let b = logged(&mut w, r.as_bytes(), o);
    denied(check(&policy, &b, None), ReasonCode::UntrustedSigner);
    // ... or signed by the policy's court key.
    let court = w.court.clone();
    let (r, o) = w
        .seal(&World::request_draft(PROVIDER, created), &court, created)
        .unwrap();
    let b = logged(&mut w, r.as_bytes(), o);
    let d = check(&policy, &b, None);
    assert!(d.to_string().contains("court key"), "{d}");
    denied(d, ReasonCode::UntrustedSigner);

    // The trusted agency's record with its signature altered (still canonical hex).
    let text = String::from_utf8(good.entry.clone()).unwrap();
    let at = text.find("\"signature\":\"").unwrap() + 13 + 10;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    SignedRecord::parse(&bytes).expect("still a well-formed record");
    let b = logged(&mut w, &bytes, good.opening.clone());
    denied(check(&policy, &b, None), ReasonCode::RecordSignatureInvalid);
}

#[test]
fn a_record_for_another_provider_is_denied() {
    let mut w = World::new();
    let created = now() - Duration::hours(1);
    let draft = World::request_draft("other-provider.example", created);
    let b = w.bundle(&draft, created, secs(now()) - 60).unwrap();
    let d = check(&w.policy(), &b, Some(TARGET));
    assert!(d.to_string().contains("other-provider.example"), "{d}");
    denied(d, ReasonCode::WrongProvider);

    // A policy that names no provider refuses everything.
    let text = w
        .policy_text(2, true)
        .replace(&format!("daylight-provider {PROVIDER}\n"), "");
    let mut policy = Policy::parse(&text).unwrap();
    let good = request(&mut w);
    denied(
        check(&policy, &good, None),
        ReasonCode::ProviderNotConfigured,
    );
    policy.set_provider(PROVIDER).unwrap();
    assert!(check(&policy, &good, None).is_allow());
}

#[test]
fn outside_the_validity_window_is_denied() {
    let mut w = World::new();
    // Valid for thirty days from forty days ago: expired ten days ago.
    let created = now() - Duration::days(40);
    let b = w
        .bundle(
            &World::request_draft(PROVIDER, created),
            created,
            secs(now()) - 60,
        )
        .unwrap();
    denied(check(&w.policy(), &b, Some(TARGET)), ReasonCode::Expired);
    // Valid from tomorrow.
    let created = now() + Duration::days(1);
    let b = w
        .bundle(
            &World::request_draft(PROVIDER, created),
            created,
            secs(now()) - 60,
        )
        .unwrap();
    denied(
        check(&w.policy(), &b, Some(TARGET)),
        ReasonCode::NotYetValid,
    );
    // The window's edges: from inclusive, until exclusive.
    let created = now() - Duration::hours(1);
    let b = w
        .bundle(
            &World::request_draft(PROVIDER, created),
            created,
            secs(now()) - 60,
        )
        .unwrap();
    let at = |t: DateTime<Utc>| {
        let proof = w.proof(b.index, &[(0, secs(t)), (1, secs(t))]);
        decide(&w.policy(), &b.entry, &proof, None, t)
    };
    assert!(at(created).is_allow());
    denied(at(created - Duration::seconds(1)), ReasonCode::NotYetValid);
    assert!(at(created + Duration::days(30) - Duration::seconds(1)).is_allow());
    denied(at(created + Duration::days(30)), ReasonCode::Expired);
}

#[test]
fn a_wrong_target_or_salt_is_denied() {
    let mut w = World::new();
    let b = request(&mut w);
    let policy = w.policy();
    denied(
        check(&policy, &b, Some("acct:someone-else")),
        ReasonCode::TargetNotInOpening,
    );
    // The right target with a wrong salt.
    let mut wrong_salt = b.clone();
    wrong_salt.opening.targets[0].salt.0[7] ^= 1;
    denied(
        check(&policy, &wrong_salt, Some(TARGET)),
        ReasonCode::OpeningMismatch,
    );
    // Targets swapped between positions (each salt with the other's target).
    let mut swapped = b.clone();
    let (t0, t1) = (
        swapped.opening.targets[0].target.clone(),
        swapped.opening.targets[1].target.clone(),
    );
    swapped.opening.targets[0].target = t1;
    swapped.opening.targets[1].target = t0;
    denied(
        check(&policy, &swapped, Some(TARGET)),
        ReasonCode::OpeningMismatch,
    );
    // The opening of another entry.
    let other = request(&mut w);
    let mixed = Bundle {
        opening: other.opening,
        ..b.clone()
    };
    denied(
        check(&policy, &mixed, Some(TARGET)),
        ReasonCode::OpeningMismatch,
    );
    // An opening file that does not parse.
    for bad in [&b"{}"[..], b"not json", &[0xff, 0xfe]] {
        let e = parse_opening(bad).unwrap_err();
        assert_eq!(e.reason, ReasonCode::OpeningMalformed, "{e}");
    }
    let ok = parse_opening(b.opening.to_json().as_bytes()).unwrap();
    assert_eq!(ok, b.opening);
}

#[test]
fn every_reason_code_is_distinct_and_documented() {
    let codes: BTreeSet<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes.len(), ReasonCode::ALL.len());
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for c in codes {
        assert!(
            c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{c}"
        );
        assert!(readme.contains(&format!("`{c}`")), "README lacks {c}");
    }
}

#[test]
fn release_receipts_are_signed_by_the_provider_for_the_entry() {
    let mut w = World::new();
    let b = request(&mut w);
    let Decision::Allow(a) = check(&w.policy(), &b, Some(TARGET)) else {
        panic!()
    };
    let r = release_receipt(&a, &w.provider, now()).unwrap();
    assert_eq!(r.kind(), Kind::Release);
    r.verify_signature(w.provider.verifier()).unwrap();
    let again = SignedRecord::parse(r.as_bytes()).unwrap();
    let refs = again.references();
    assert_eq!(refs, [EntryRef::new(b.index, a.leaf_hash)]);
    assert_eq!(a.leaf_hash, daylight_core::leaf_hash(&b.entry));
    let json = again.to_json_value();
    assert_eq!(json["body"]["targets_released"], 1);
    // Without a target: all of the record's targets.
    let Decision::Allow(all) = check(&w.policy(), &b, None) else {
        panic!()
    };
    let r = release_receipt(&all, &w.provider, now()).unwrap();
    assert_eq!(r.to_json_value()["body"]["targets_released"], 2);
    // Another key (the agency's) cannot sign the provider's receipt.
    assert!(matches!(
        release_receipt(&a, &w.agency, now()),
        Err(ReleaseError::WrongKey { .. })
    ));
    let cosig_key = w.provider.with_key_type(KeyType::CosignatureV1);
    assert!(release_receipt(&a, &cosig_key, now()).is_err());
}

mod flips {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Every single byte of the entry and of the proof, changed: always
        /// Deny, never a panic. The bundle carries exactly the quorum of
        /// cosignatures, so no byte of it is redundant.
        #[test]
        fn flipping_any_byte_is_denied(mask in 1u8..=255) {
            let mut w = World::new();
            let b = request(&mut w);
            let t = secs(now()) - 60;
            let proof = w.proof(b.index, &[(0, t), (2, t)]);
            let policy = w.policy();
            let b = Bundle { proof, ..b };
            prop_assert!(check(&policy, &b, Some(TARGET)).is_allow());
            for i in 0..b.entry.len() {
                let mut entry = b.entry.clone();
                entry[i] ^= mask;
                let d = decide(&policy, &entry, &b.proof, Some((&b.opening, TARGET)), now());
                prop_assert!(!d.is_allow(), "entry byte {} ^ {:#x}: {}", i, mask, d);
            }
            for i in 0..b.proof.len() {
                let mut proof = b.proof.clone();
                proof[i] ^= mask;
                let d = decide(&policy, &b.entry, &proof, Some((&b.opening, TARGET)), now());
                prop_assert!(!d.is_allow(), "proof byte {} ^ {:#x}: {}", i, mask, d);
            }
        }

        /// Random junk and truncations never panic and never allow.
        #[test]
        fn junk_is_denied(junk in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..2000) {
            let mut w = World::new();
            let b = request(&mut w);
            let policy = w.policy();
            prop_assert!(!decide(&policy, &junk, &b.proof, None, now()).is_allow());
            prop_assert!(!decide(&policy, &b.entry, &junk, None, now()).is_allow());
            let cut_proof = &b.proof[..cut.min(b.proof.len().saturating_sub(1))];
            prop_assert!(!decide(&policy, &b.entry, cut_proof, None, now()).is_allow());
            let cut_entry = &b.entry[..cut.min(b.entry.len().saturating_sub(1))];
            prop_assert!(!decide(&policy, cut_entry, &b.proof, None, now()).is_allow());
        }
    }
}
