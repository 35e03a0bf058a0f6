//! A policy that requires C2SP tlog-mirror cosignatures
//! (`daylight-tlog-mirror`, `daylight-tlog-mirror-quorum`): the proof's
//! checkpoint must carry valid cosignatures by enough of the listed mirrors,
//! so the entry is readable somewhere the log operator does not control.
//! The honest case is allowed; each tampering or shortfall is refused with
//! `tlog_mirror_not_cosigned`.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use daylight_core::SignerKey;
use daylight_gate::testkit::{assert_denied, Bundle, World, PROVIDER, TARGET};
use daylight_gate::{decide, decide_later, verify_entry, Decision, Later, Policy, ReasonCode};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap()
}

/// A minute before [`now`], in Unix seconds: a fresh cosignature.
fn fresh() -> u64 {
    now().timestamp() as u64 - 60
}

/// A logged request and its entry's bundle (cosigned by all three
/// witnesses, no mirror).
fn request(w: &mut World) -> Bundle {
    let created = now() - Duration::hours(1);
    w.bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap()
}

/// The world's policy (witness quorum 2) requiring its first `n` mirrors,
/// with an explicit mirror quorum if given.
fn policy(w: &World, n: usize, quorum: Option<usize>) -> Policy {
    let text = format!(
        "{}{}",
        w.policy_text(2, true),
        w.tlog_mirror_lines(n, quorum)
    );
    let p = Policy::parse(&text).unwrap();
    assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
    p
}

/// The bundle's proof again, cosigned by `witnesses` (positions) at
/// [`fresh`] and by the given mirror keys.
fn cosigned(w: &World, b: &Bundle, witnesses: &[usize], mirrors: &[(&SignerKey, u64)]) -> Bundle {
    let cosigners: Vec<(usize, u64)> = witnesses.iter().map(|&i| (i, fresh())).collect();
    Bundle {
        proof: w.proof_with(b.index, &cosigners, mirrors),
        ..b.clone()
    }
}

fn check(p: &Policy, b: &Bundle) -> Decision {
    decide(p, &b.entry, &b.proof, Some((&b.opening, TARGET)), now())
}

#[track_caller]
fn refused(p: &Policy, b: &Bundle) -> String {
    let d = check(p, b);
    assert_denied(&d, ReasonCode::TlogMirrorNotCosigned);
    d.to_string()
}

/// The proof's signature line by `name`.
fn line_by<'a>(proof: &'a str, name: &str) -> &'a str {
    let prefix = format!("\u{2014} {name} ");
    proof
        .lines()
        .find(|l| l.starts_with(&prefix))
        .expect("a line by that key")
}

#[test]
fn a_checkpoint_cosigned_by_the_listed_mirror_is_allowed() {
    let mut w = World::new();
    let b = request(&mut w);
    let m0 = w.mirrors[0].clone();
    let p = policy(&w, 1, None);
    assert_eq!(p.tlog_mirror_quorum(), 1);
    let honest = cosigned(&w, &b, &[0, 1, 2], &[(&m0, fresh())]);
    let Decision::Allow(a) = check(&p, &honest) else {
        panic!("{}", check(&p, &honest));
    };
    assert_eq!(a.tlog_mirror_cosignatures, 1);
    assert_eq!(a.cosignatures, 3, "the mirror is not counted as a witness");
    let line = Decision::Allow(a).to_string();
    assert!(line.contains(", 1 tlog-mirror cosignatures"), "{line}");
    // verify_entry holds any entry to the same requirement.
    let included = verify_entry(&p, &honest.entry, &honest.proof, now()).unwrap();
    assert_eq!(included.tlog_mirror_cosignatures, 1);
    let e = verify_entry(&p, &b.entry, &b.proof, now()).unwrap_err();
    assert_eq!(e.reason, ReasonCode::TlogMirrorNotCosigned, "{e}");

    // The mirror's timestamp is not weighed: what it vouches for (it holds
    // every entry up to the checkpoint) does not go stale; the witnesses
    // date the checkpoint.
    let old = now().timestamp() as u64 - 30 * 86_400;
    assert!(check(&p, &cosigned(&w, &b, &[0, 1], &[(&m0, old)])).is_allow());

    // Without mirror lines, a mirror's cosignature is ignored, as before.
    let plain = w.policy();
    assert_eq!(plain.tlog_mirror_quorum(), 0);
    let Decision::Allow(a) = check(&plain, &honest) else {
        panic!()
    };
    assert_eq!(a.tlog_mirror_cosignatures, 0);
    assert!(!Decision::Allow(a).to_string().contains("tlog-mirror"));
    assert!(check(&plain, &b).is_allow());
}

#[test]
fn a_checkpoint_without_the_mirrors_line_is_refused() {
    let mut w = World::new();
    let b = request(&mut w);
    let p = policy(&w, 1, None);
    // The witness quorum is met (all three), the mirror's is not.
    let d = refused(&p, &b);
    assert!(d.contains("mirror0.example"), "{d}");
    assert!(d.contains("0 of the policy's 1"), "{d}");
}

#[test]
fn a_flipped_bit_in_the_mirrors_signature_is_refused() {
    let mut w = World::new();
    let b = request(&mut w);
    let (m0, m1) = (w.mirrors[0].clone(), w.mirrors[1].clone());
    let good = cosigned(&w, &b, &[0, 1, 2], &[(&m0, fresh()), (&m1, fresh())]);
    let text = String::from_utf8(good.proof.clone()).unwrap();
    let line = line_by(&text, "mirror0.example");
    let mut broken: Vec<char> = line.chars().collect();
    let at = broken.len() - 5;
    broken[at] = if broken[at] == 'A' { 'B' } else { 'A' };
    let broken: String = broken.into_iter().collect();
    let tampered = Bundle {
        proof: text.replace(line, &broken).into_bytes(),
        ..good.clone()
    };
    // Refused even though the other mirror's valid line would meet a
    // quorum of 1: no honest mirror writes a bad line (as for witnesses).
    for p in [policy(&w, 1, None), policy(&w, 2, Some(1))] {
        assert!(check(&p, &good).is_allow());
        let d = refused(&p, &tampered);
        assert!(d.contains("mirror0.example"), "{d}");
    }
}

#[test]
fn a_mirror_line_by_an_unlisted_key_does_not_count() {
    let mut w = World::new();
    let b = request(&mut w);
    let m1 = w.mirrors[1].clone();
    let stranger = SignerKey::from_seed(
        daylight_core::KeyName::new("mirror0.example").unwrap(),
        daylight_core::KeyType::CosignatureV1,
        [99; 32],
    );
    let p = policy(&w, 1, None);
    // Another mirror than the one listed, and a key named like the listed
    // one (another key ID): ignored, as any unknown line.
    refused(&p, &cosigned(&w, &b, &[0, 1, 2], &[(&m1, fresh())]));
    refused(&p, &cosigned(&w, &b, &[0, 1, 2], &[(&stranger, fresh())]));
    // A witness's cosignature never counts as a mirror's.
    let d = refused(&p, &cosigned(&w, &b, &[0, 1, 2], &[]));
    assert!(d.contains("0 of the policy's 1"), "{d}");
}

#[test]
fn mirrors_below_their_quorum_are_refused() {
    let mut w = World::new();
    let b = request(&mut w);
    let (m0, m1) = (w.mirrors[0].clone(), w.mirrors[1].clone());
    let p = policy(&w, 2, Some(2));
    assert_eq!(p.tlog_mirror_quorum(), 2);
    let one = cosigned(&w, &b, &[0, 1, 2], &[(&m0, fresh())]);
    let d = refused(&p, &one);
    assert!(
        d.contains("1 of the policy's 2") && d.contains("2 required"),
        "{d}"
    );
    assert!(d.contains("not by mirror1.example"), "{d}");
    // One mirror cosigning twice is one mirror.
    refused(
        &p,
        &cosigned(&w, &b, &[0, 1, 2], &[(&m0, fresh()), (&m0, fresh() + 1)]),
    );
    let both = cosigned(&w, &b, &[0, 1, 2], &[(&m0, fresh()), (&m1, fresh())]);
    let Decision::Allow(a) = check(&p, &both) else {
        panic!("{}", check(&p, &both))
    };
    assert_eq!(a.tlog_mirror_cosignatures, 2);
    // Two listed, the default quorum of 1: either will do.
    let p1 = policy(&w, 2, None);
    assert_eq!(p1.tlog_mirror_quorum(), 1);
    assert!(check(&p1, &one).is_allow());
    assert!(check(&p1, &cosigned(&w, &b, &[0, 1], &[(&m1, fresh())])).is_allow());
}

#[test]
fn each_quorum_is_its_own() {
    let mut w = World::new();
    let b = request(&mut w);
    let (m0, m1) = (w.mirrors[0].clone(), w.mirrors[1].clone());
    let p = policy(&w, 2, Some(1));
    // The witness quorum (2) met, the mirrors' not.
    refused(&p, &cosigned(&w, &b, &[0, 1], &[]));
    // The mirrors' met, the witnesses' not: mirrors never make up for
    // witnesses (the witness checks run first).
    let d = check(
        &p,
        &cosigned(&w, &b, &[0], &[(&m0, fresh()), (&m1, fresh())]),
    );
    assert_denied(&d, ReasonCode::QuorumNotMet);
    // Both met.
    assert!(check(&p, &cosigned(&w, &b, &[0, 1], &[(&m0, fresh())])).is_allow());
}

#[test]
fn a_mirror_cosignature_on_another_checkpoint_is_refused() {
    let mut w = World::new();
    let b = request(&mut w);
    let m0 = w.mirrors[0].clone();
    let p = policy(&w, 1, None);
    // The mirror cosigned the checkpoint at this size...
    let earlier = cosigned(&w, &b, &[0, 1, 2], &[(&m0, fresh())]);
    assert!(check(&p, &earlier).is_allow());
    let earlier = String::from_utf8(earlier.proof).unwrap();
    let line = line_by(&earlier, "mirror0.example");
    // ... and its line is pasted onto a later checkpoint it never saw.
    w.append_filler(5);
    let later = cosigned(&w, &b, &[0, 1, 2], &[]);
    let mut proof = later.proof.clone();
    proof.extend_from_slice(format!("{line}\n").as_bytes());
    let pasted = Bundle { proof, ..later };
    let d = refused(&p, &pasted);
    assert!(d.contains("mirror0.example"), "{d}");
}

#[test]
fn a_presented_ratification_needs_the_mirrors_too() {
    let mut w = World::new();
    let created = now() - Duration::hours(30);
    let e = w
        .bundle(&World::emergency_draft(PROVIDER, created), created, fresh())
        .unwrap();
    let draft = World::ratification_draft(e.index, daylight_core::leaf_hash(&e.entry), "granted");
    let court = w.court.clone();
    let r = w
        .bundle_by(&draft, &court, now() - Duration::hours(2), fresh())
        .unwrap();
    let m0 = w.mirrors[0].clone();
    let p = policy(&w, 1, None);
    let e = cosigned(&w, &e, &[0, 1, 2], &[(&m0, fresh())]);
    let with = |r: &Bundle| {
        let later = Later {
            ratification: Some((&r.entry, &r.proof)),
            ..Later::default()
        };
        decide_later(
            &p,
            &e.entry,
            &e.proof,
            Some((&e.opening, TARGET)),
            &later,
            now(),
        )
    };
    // The emergency is past its deadline: it stands on the ratification,
    // whose checkpoint no mirror cosigned.
    let d = with(&r);
    assert_denied(&d, ReasonCode::RatificationUnproven);
    assert!(d.to_string().contains("tlog_mirror_not_cosigned"), "{d}");
    let r = cosigned(&w, &r, &[0, 1, 2], &[(&m0, fresh())]);
    let d = with(&r);
    assert!(d.is_allow(), "{d}");
}
