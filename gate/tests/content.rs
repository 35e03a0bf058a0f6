//! The content lines of a gate policy (what a request may ask): each rule
//! allows and refuses at its edges, with its own reason code; `for AGENCY`
//! applies to that agency only; content is checked last, so only an
//! otherwise valid request is refused on it; and the provider's `refusal`
//! and `policy` records the gate library builds.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use daylight_core::{KeyName, KeyType, SignerKey};
use daylight_gate::testkit::{Bundle, World, AGENCY, ORIGIN, PROVIDER, TARGET};
use daylight_gate::{
    decide, policy_record, refusal_receipt, Decision, Policy, ReasonCode, ReleaseError,
};
use daylight_schemas::content_policy::ContentLine;
use daylight_schemas::{Body, Draft, EntryRef, Kind, RefusalReason, SignedRecord};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap()
}

fn created() -> DateTime<Utc> {
    now() - Duration::hours(1)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The world's request (US-NY, a court, content and stored_keys,
/// narcotics, 2 targets, valid 30 days), its JSON text edited by
/// replacing each `(from, to)`.
fn request_json(edits: &[(&str, &str)]) -> String {
    let mut json = World::request_draft_json(PROVIDER, created());
    for (from, to) in edits {
        assert!(json.contains(from), "{from} not in {json}");
        json = json.replace(from, to);
    }
    json
}

fn bundle_of(w: &mut World, json: &str, signer: &SignerKey) -> Bundle {
    let draft = Draft::from_json(json).unwrap();
    w.bundle_by(&draft, signer, created(), now().timestamp() as u64 - 60)
        .unwrap()
}

/// The world's policy with `lines` appended.
fn policy(w: &World, lines: &str) -> Policy {
    let p = Policy::parse(&format!("{}{lines}", w.policy_text(2, true))).unwrap();
    // Content lines survive the policy's text form, in order.
    assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
    p
}

fn decide_on(p: &Policy, b: &Bundle) -> Decision {
    decide(p, &b.entry, &b.proof, Some((&b.opening, TARGET)), now())
}

/// `lines` allow the request whose JSON is edited by `edits`.
#[track_caller]
fn allows(lines: &str, edits: &[(&str, &str)]) {
    let mut w = World::new();
    let agency = w.agency.clone();
    let b = bundle_of(&mut w, &request_json(edits), &agency);
    let d = decide_on(&policy(&w, lines), &b);
    assert!(d.is_allow(), "{lines} {edits:?}: {d}");
    assert!(d.refused().is_none());
}

/// `lines` refuse the request whose JSON is edited by `edits` with `code`,
/// and the refusal names the entry and the same reason.
#[track_caller]
fn refuses(lines: &str, edits: &[(&str, &str)], code: ReasonCode) {
    let mut w = World::new();
    let agency = w.agency.clone();
    let b = bundle_of(&mut w, &request_json(edits), &agency);
    let d = decide_on(&policy(&w, lines), &b);
    assert_eq!(d.reason(), Some(code), "{lines} {edits:?}: {d}");
    // The DENY line names the code.
    assert!(
        d.to_string()
            .starts_with(&format!("DENY {}: ", code.as_str())),
        "{d}"
    );
    let r = d.refused().expect("a content refusal names the entry");
    assert_eq!(r.index, b.index);
    assert_eq!(r.leaf_hash, daylight_core::leaf_hash(&b.entry));
    assert_eq!(ReasonCode::from_refusal(r.reason), code);
    assert_eq!(r.provider, PROVIDER);
    assert_eq!(r.origin, ORIGIN);
    assert!(r.agency.starts_with(&format!("{AGENCY}+")));
}

#[test]
fn max_targets_allows_exactly_the_maximum() {
    // The request has two targets.
    allows("daylight-max-targets 2\n", &[]);
    allows("daylight-max-targets 10000\n", &[]);
    refuses("daylight-max-targets 1\n", &[], ReasonCode::TooManyTargets);
}

#[test]
fn max_validity_allows_exactly_the_maximum() {
    let thirty = stamp(created() + Duration::days(30));
    let one_more = stamp(created() + Duration::days(30) + Duration::seconds(1));
    let until = |s: &str| format!(r#""valid_until": "{s}""#);
    let (a, b) = (until(&thirty), until(&one_more));
    allows("daylight-max-validity-days 30\n", &[]);
    refuses(
        "daylight-max-validity-days 30\n",
        &[(&a, &b)],
        ReasonCode::ValidityTooLong,
    );
    allows("daylight-max-validity-days 31\n", &[(&a, &b)]);
    refuses(
        "daylight-max-validity-days 29\n",
        &[],
        ReasonCode::ValidityTooLong,
    );
}

#[test]
fn jurisdictions_allow_and_deny_with_countries_covering_their_subdivisions() {
    let us = [(r#""jurisdiction": "US-NY""#, r#""jurisdiction": "US""#)];
    // The request is from US-NY: its country covers it.
    allows("daylight-jurisdictions allow US\n", &[]);
    allows("daylight-jurisdictions allow DE US-NY\n", &[]);
    refuses(
        "daylight-jurisdictions allow US-CA DE\n",
        &[],
        ReasonCode::JurisdictionNotAllowed,
    );
    refuses(
        "daylight-jurisdictions deny US\n",
        &[],
        ReasonCode::JurisdictionDenied,
    );
    refuses(
        "daylight-jurisdictions deny GB US-NY\n",
        &[],
        ReasonCode::JurisdictionDenied,
    );
    allows("daylight-jurisdictions deny US-CA GB\n", &[]);
    // A subdivision does not cover its country: a federal (US) request is
    // not among "US-NY only", nor refused by "not US-NY".
    refuses(
        "daylight-jurisdictions allow US-NY\n",
        &us,
        ReasonCode::JurisdictionNotAllowed,
    );
    allows("daylight-jurisdictions deny US-NY\n", &us);
    allows("daylight-jurisdictions allow US\n", &us);
}

#[test]
fn issuer_types_are_allowed_by_name() {
    allows("daylight-issuers allow court\n", &[]);
    allows("daylight-issuers allow prosecutor court\n", &[]);
    refuses(
        "daylight-issuers allow prosecutor agency\n",
        &[],
        ReasonCode::IssuerNotAllowed,
    );
    let prosecutor = [(r#""type": "court""#, r#""type": "prosecutor""#)];
    refuses(
        "daylight-issuers allow court\n",
        &prosecutor,
        ReasonCode::IssuerNotAllowed,
    );
    allows("daylight-issuers allow prosecutor\n", &prosecutor);
}

#[test]
fn categories_allow_every_one_asked_and_deny_any() {
    // The request asks for content and stored_keys.
    allows(
        "daylight-categories allow content stored_keys traffic\n",
        &[],
    );
    refuses(
        "daylight-categories allow content traffic\n",
        &[],
        ReasonCode::CategoryNotAllowed,
    );
    refuses(
        "daylight-categories deny stored_keys\n",
        &[],
        ReasonCode::CategoryDenied,
    );
    allows("daylight-categories deny device_unlock location\n", &[]);
    let unlock = [(
        r#""data_categories": ["content", "stored_keys"]"#,
        r#""data_categories": ["device_unlock"]"#,
    )];
    refuses(
        "daylight-categories deny device_unlock\n",
        &unlock,
        ReasonCode::CategoryDenied,
    );
}

#[test]
fn offences_are_allowed_by_name() {
    allows("daylight-offences allow terrorism narcotics\n", &[]);
    refuses(
        "daylight-offences allow terrorism homicide\n",
        &[],
        ReasonCode::OffenceNotAllowed,
    );
}

#[test]
fn the_first_refusing_line_answers_and_every_line_must_pass() {
    let lines =
        "daylight-issuers allow court\ndaylight-max-targets 1\ndaylight-jurisdictions deny US\n";
    refuses(lines, &[], ReasonCode::TooManyTargets);
    let lines = "daylight-jurisdictions deny US\ndaylight-max-targets 1\n";
    refuses(lines, &[], ReasonCode::JurisdictionDenied);
    // Two allow lines: the request must pass both (the most restrictive wins).
    refuses(
        "daylight-max-targets 5\ndaylight-max-targets 1\n",
        &[],
        ReasonCode::TooManyTargets,
    );
}

#[test]
fn for_agency_applies_to_that_agency_only() {
    let mut w = World::new();
    let other = SignerKey::from_seed(
        KeyName::new("other-agency.example").unwrap(),
        KeyType::Ed25519,
        [77; 32],
    );
    let text = format!(
        "{}daylight-agency {}\ndaylight-max-targets 1 for other-agency.example\n\
         daylight-jurisdictions deny DE for {AGENCY}\n",
        w.policy_text(2, true),
        other.verifier()
    );
    let p = Policy::parse(&text).unwrap();
    assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
    let agency = w.agency.clone();
    let json = request_json(&[]);
    // Two targets: too many for the other agency, fine for this one.
    let mine = bundle_of(&mut w, &json, &agency);
    let theirs = bundle_of(&mut w, &json, &other);
    let d = decide_on(&p, &mine);
    assert!(d.is_allow(), "{d}");
    let d = decide_on(&p, &theirs);
    assert_eq!(d.reason(), Some(ReasonCode::TooManyTargets), "{d}");
    assert!(d
        .refused()
        .unwrap()
        .agency
        .starts_with("other-agency.example+"));
    // DE is refused for this agency only.
    let de = request_json(&[(r#""jurisdiction": "US-NY""#, r#""jurisdiction": "DE""#)]);
    let mine = bundle_of(&mut w, &de, &agency);
    let theirs = bundle_of(&mut w, &de, &other);
    assert_eq!(
        decide_on(&p, &mine).reason(),
        Some(ReasonCode::JurisdictionDenied)
    );
    assert_eq!(
        decide_on(&p, &theirs).reason(),
        Some(ReasonCode::TooManyTargets)
    );
    // A `for` naming no agency of the policy is refused at load time: it
    // would restrict nobody.
    let typo = format!(
        "{}daylight-max-targets 1 for agenyc.example\n",
        w.policy_text(2, true)
    );
    let e = Policy::parse(&typo).unwrap_err().to_string();
    assert!(e.contains("agenyc.example"), "{e}");
}

#[test]
fn emergencies_are_held_to_the_same_lines() {
    let mut w = World::new();
    // The emergency is from DE, issued by a prosecutor, one target, 3 days.
    let b = w
        .bundle(
            &World::emergency_draft(PROVIDER, created()),
            created(),
            now().timestamp() as u64 - 60,
        )
        .unwrap();
    let d = decide_on(&policy(&w, "daylight-max-targets 1\n"), &b);
    assert!(d.is_allow(), "{d}");
    let d = decide_on(&policy(&w, "daylight-issuers allow court\n"), &b);
    assert_eq!(d.reason(), Some(ReasonCode::IssuerNotAllowed), "{d}");
    assert_eq!(d.refused().unwrap().index, b.index);
}

#[test]
fn content_is_checked_after_every_other_check() {
    let mut w = World::new();
    let agency = w.agency.clone();
    let b = bundle_of(&mut w, &request_json(&[]), &agency);
    let p = policy(&w, "daylight-max-targets 1\n");
    // Expired: that is the answer, and nothing is named for a refusal record.
    let later = now() + Duration::days(40);
    let d = decide(&p, &b.entry, &b.proof, None, later);
    assert_ne!(d.reason(), Some(ReasonCode::TooManyTargets), "{d}");
    assert!(d.refused().is_none());
    // Another provider's request: wrong_provider, no refusal.
    let json = World::request_draft_json("other.example", created());
    let other = bundle_of(&mut w, &json, &agency);
    let d = decide_on(&p, &other);
    assert_eq!(d.reason(), Some(ReasonCode::WrongProvider), "{d}");
    assert!(d.refused().is_none());
    // A broken proof: not a refusal of the request.
    let mut proof = b.proof.clone();
    proof[0] ^= 1;
    let d = decide(&p, &b.entry, &proof, None, now());
    assert!(d.refused().is_none(), "{d}");
    // A target not in the opening is answered before the content.
    let d = decide(&p, &b.entry, &b.proof, Some((&b.opening, "acct:0")), now());
    assert_eq!(d.reason(), Some(ReasonCode::TargetNotInOpening), "{d}");
    // Without an opening, the request as a whole is refused on its content.
    let d = decide(&p, &b.entry, &b.proof, None, now());
    assert_eq!(d.reason(), Some(ReasonCode::TooManyTargets), "{d}");
}

#[test]
fn content_codes_are_the_refusal_reasons() {
    for r in RefusalReason::ALL {
        let code = ReasonCode::from_refusal(*r);
        assert_eq!(code.as_str(), r.as_str());
        assert_eq!(code.refusal_reason(), Some(*r));
        assert!(ReasonCode::ALL.contains(&code));
    }
    let content = ReasonCode::ALL
        .iter()
        .filter(|c| c.refusal_reason().is_some())
        .count();
    assert_eq!(content, RefusalReason::ALL.len());
    assert_eq!(ReasonCode::Expired.refusal_reason(), None);
}

#[test]
fn bad_content_lines_are_refused_at_load_time() {
    let w = World::new();
    for bad in [
        "daylight-max-targets 0",
        "daylight-max-targets",
        "daylight-jurisdictions allow XX",
        "daylight-jurisdictions maybe US",
        "daylight-issuers deny court",
        "daylight-categories allow thoughts",
        "daylight-offences allow jaywalking",
        "daylight-max-validity-days 99999",
        "daylight-max-targets 5 for",
        "daylight-max-targets 5 for two words",
        "daylight-max-targets 5 for Not/A/Key+Name",
    ] {
        let text = format!("{}{bad}\n", w.policy_text(2, true));
        assert!(Policy::parse(&text).is_err(), "accepted: {bad}");
    }
}

#[test]
fn a_refusal_record_names_the_entry_and_reason_only() {
    let mut w = World::new();
    let agency = w.agency.clone();
    let b = bundle_of(&mut w, &request_json(&[]), &agency);
    let d = decide_on(&policy(&w, "daylight-categories deny stored_keys\n"), &b);
    let refused = d.refused().unwrap();
    let at = now() + Duration::seconds(5);
    let r = refusal_receipt(refused, &w.provider, at).unwrap();
    assert_eq!(r.kind(), Kind::Refusal);
    r.verify_signature(w.provider.verifier()).unwrap();
    let again = SignedRecord::parse(r.as_bytes()).unwrap();
    assert_eq!(again.log(), Some(ORIGIN));
    assert_eq!(
        again.references(),
        [EntryRef::new(b.index, daylight_core::leaf_hash(&b.entry))]
    );
    let Body::Refusal(body) = again.body() else {
        panic!("{}", again.kind())
    };
    assert_eq!(body.reason, RefusalReason::CategoryDenied);
    assert_eq!(body.refused_at.get(), at);
    // Nothing secret: no target identifier, no salt.
    let text = String::from_utf8(r.to_bytes()).unwrap();
    assert!(!text.contains(TARGET), "{text}");
    // Only the provider's key signs it.
    let e = refusal_receipt(refused, &w.agency, at).unwrap_err();
    assert!(
        matches!(
            e,
            ReleaseError::WrongKey {
                record: "refusal",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_policy_record_holds_the_content_lines_only() {
    let w = World::new();
    let lines = "daylight-issuers allow court\ndaylight-categories deny device_unlock\n\
                 daylight-max-targets 5 for agency.example\n";
    let p = policy(&w, lines);
    let r = policy_record(&p, &w.provider, ORIGIN, now()).unwrap();
    assert_eq!(r.kind(), Kind::Policy);
    r.verify_signature(w.provider.verifier()).unwrap();
    let again = SignedRecord::parse(r.as_bytes()).unwrap();
    let Body::Policy(body) = again.body() else {
        panic!("{}", again.kind())
    };
    let got: Vec<&str> = body.lines.iter().map(|l| l.as_str()).collect();
    assert_eq!(got, lines.lines().collect::<Vec<_>>());
    for l in &got {
        ContentLine::parse(l).unwrap();
    }
    // Nothing but the content lines: no keys, no witnesses.
    let text = String::from_utf8(r.to_bytes()).unwrap();
    assert!(!text.contains("daylight-agency") && !text.contains("witness"));
    // No content lines: nothing to publish. Another provider's key: refused.
    assert_eq!(
        policy_record(&w.policy(), &w.provider, ORIGIN, now()).unwrap_err(),
        ReleaseError::NoContentLines
    );
    assert!(matches!(
        policy_record(&p, &w.agency, ORIGIN, now()).unwrap_err(),
        ReleaseError::WrongKey {
            record: "policy",
            ..
        }
    ));
}
