//! The rules under threshold custody: custodians' share receipts for the
//! release rules, custody_below_threshold, custody_share_conflict and
//! custody_released_refused, each on its case and never on an honest 2-of-3
//! release; the report's counts; and logs with custody audited as they
//! grow, run after run, finding what one fresh audit finds. Logs are real signed records, verified as a full
//! audit verifies them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use common::*;
use daylight_auditor::report::TransparencyReport;
use daylight_auditor::rules::{self, Rules};
use daylight_auditor::verify::Fact;
use daylight_auditor::{Finding, Severity, Status};
use daylight_core::KeyType;
use daylight_schemas::{EntryRef, KeyTag, RefusalReason, Role, ShareRef};

/// Every rule over releases and custody.
const RELEASE_RULES: &[&str] = &[
    "release_without_authorisation",
    "release_outside_window",
    "release_excess_targets",
    "release_after_withdrawal",
    "released_and_refused",
    "release_against_published_policy",
    "custody_below_threshold",
    "custody_share_conflict",
    "custody_released_refused",
];

/// Share `index` of key `key` (its check value `[key; 32]`), split 2 of 3.
fn share(key: u8, index: u8) -> ShareRef {
    ShareRef {
        key: KeyTag([key; 32]),
        index,
        threshold: 2,
        shares: 3,
    }
}

/// The facts of `e`'s entries, as a full audit reads them (every entry
/// verified: signers registered for their role).
fn facts(e: &Entries) -> Vec<Fact> {
    let bytes = e.bytes();
    let entries: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let (facts, findings) =
        daylight_auditor::verify::facts_of(e.actors.log.verifier().clone(), &entries).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    facts
}

/// Every rule's findings over `e` (at a time nothing else is due).
fn all_found(e: &Entries) -> Vec<Finding> {
    rules::apply(&Rules::default(), &facts(e), t0() + Duration::days(1))
}

/// The findings of rule `id` over `e`.
fn found(e: &Entries, id: &str) -> Vec<Finding> {
    all_found(e).into_iter().filter(|f| f.id == id).collect()
}

/// The leaf indexes of `refs`, as a finding lists them (ascending).
fn idx(refs: &[EntryRef]) -> Vec<u64> {
    let mut v: Vec<u64> = refs.iter().map(|r| r.index.0).collect();
    v.sort_unstable();
    v
}

/// The honest case: a request for two targets; custodians a and b release
/// their shares of the first target's key, a and c of the second's; then
/// the provider releases access for both. Returns the request.
fn honest(e: &mut Entries) -> EntryRef {
    let r = e.request(t0(), "case honest");
    let at = |m: i64| t0() + Duration::minutes(m);
    e.share_release(0, r, share(1, 1), at(1));
    e.share_release(1, r, share(1, 2), at(2));
    e.share_release(0, r, share(2, 1), at(3));
    e.share_release(2, r, share(2, 3), at(4));
    e.release(r, 2, at(5));
    r
}

#[test]
fn an_honest_two_of_three_release_finds_nothing() {
    let mut e = Entries::with_custodians();
    honest(&mut e);
    // A custodian answering again with the same share is no conflict.
    let again = e.request(t0(), "case again");
    e.share_release(0, again, share(3, 1), t0() + Duration::minutes(1));
    e.share_release(0, again, share(3, 1), t0() + Duration::minutes(2));
    e.share_release(1, again, share(3, 2), t0() + Duration::minutes(3));
    e.release(again, 1, t0() + Duration::minutes(4));
    // A provider's release with no custody in use is judged as before.
    let plain = e.request(t0(), "case plain");
    e.release(plain, 2, t0() + Duration::minutes(5));
    assert_eq!(all_found(&e), Vec::<Finding>::new());
}

#[tokio::test]
async fn an_honest_two_of_three_release_audits_clean() {
    let mut e = Entries::with_custodians();
    honest(&mut e);
    let (report, _server, _dir) = audit_entries(&e, t0() + Duration::days(1)).await;
    assert_eq!(ids(&report), set(&[]), "{}", report.summary());
    assert_eq!(report.status, Status::Clean);
}

#[test]
fn a_share_for_an_entry_that_did_not_authorise_it() {
    let mut e = Entries::with_custodians();
    let r = e.request(t0(), "case");
    let rel = e.release(r, 1, t0() + Duration::hours(1));
    // A share released for the provider's release entry: not a request.
    let bad = e.share_release(0, rel, share(1, 1), t0() + Duration::hours(2));
    // A share released for an emergency after a court denied it.
    let em = e.emergency(t0());
    let denied = e.ratification(em, t0() + Duration::hours(1), false);
    let late = e.share_release(1, em, share(2, 2), t0() + Duration::hours(2));
    // A share released before the denial is not flagged by this rule.
    let em2 = e.emergency(t0());
    e.share_release(1, em2, share(3, 2), t0() + Duration::minutes(30));
    e.ratification(em2, t0() + Duration::hours(1), false);

    let f = found(&e, "release_without_authorisation");
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].entries, idx(&[rel, bad]));
    assert_eq!(f[0].severity, Severity::Critical);
    assert!(
        f[0].title.contains("by custodian custodian-a.test")
            && f[0].title.contains("not a request or emergency"),
        "{}",
        f[0].title
    );
    assert_eq!(f[0].details["custodian"], "custodian-a.test");
    assert_eq!(f[1].entries, idx(&[em, denied, late]));
    assert!(f[1].title.contains("denied by the court"), "{}", f[1].title);
}

#[test]
fn a_custodian_releasing_outside_the_window_or_after_a_withdrawal() {
    let mut e = Entries::with_custodians();
    // The fixtures' requests are valid for 30 days from creation.
    let r = e.request(t0(), "case window");
    e.share_release(0, r, share(1, 1), t0() + Duration::days(1));
    let outside = e.share_release(2, r, share(1, 3), t0() + Duration::days(31));
    let w = e.request(t0(), "case withdrawn");
    let withdrawal = e.withdrawal(w, t0() + Duration::hours(1));
    let after = e.share_release(1, w, share(2, 2), t0() + Duration::hours(2));

    let f = found(&e, "release_outside_window");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[r, outside]));
    assert!(
        f[0].title.contains("share release") && f[0].title.contains("custodian-c.test"),
        "{}",
        f[0].title
    );
    assert_eq!(f[0].details["custodian"], "custodian-c.test");

    let f = found(&e, "release_after_withdrawal");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[w, withdrawal, after]));
    assert!(f[0].title.contains("custodian"), "{}", f[0].title);
}

#[test]
fn shares_of_more_keys_than_targets() {
    let mut e = Entries::with_custodians();
    // An emergency for one target: shares of two keys is one key too many.
    let em = e.emergency(t0());
    e.ratification(em, t0() + Duration::hours(1), true);
    let a = e.share_release(0, em, share(1, 1), t0() + Duration::hours(2));
    let b = e.share_release(1, em, share(1, 2), t0() + Duration::hours(2));
    let c = e.share_release(2, em, share(2, 3), t0() + Duration::hours(2));
    let f = found(&e, "release_excess_targets");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[em, a, b, c]));
    assert_eq!(f[0].details["target_count"], 1);
    assert_eq!(f[0].details["keys"].as_array().unwrap().len(), 2);
    // A share counts one target, not `targets_released` per receipt: two
    // custodians' shares of one key for a one-target emergency are fine.
    let mut ok = Entries::with_custodians();
    let em = ok.emergency(t0());
    ok.share_release(0, em, share(1, 1), t0() + Duration::hours(2));
    ok.share_release(1, em, share(1, 2), t0() + Duration::hours(2));
    assert!(found(&ok, "release_excess_targets").is_empty());
}

#[test]
fn a_key_used_with_fewer_than_k_receipts() {
    let at = |m: i64| t0() + Duration::minutes(m);
    // Each case: the shares logged, then the provider's release for
    // `targets`; whether custody_below_threshold flags it.
    type Case = (&'static str, Vec<(usize, ShareRef)>, u32, bool);
    let cases: Vec<Case> = vec![
        ("one share", vec![(0, share(1, 1))], 1, true),
        (
            "one key for two targets",
            vec![(0, share(1, 1)), (1, share(1, 2))],
            2,
            true,
        ),
        (
            "two custodians, one index",
            vec![(0, share(1, 1)), (1, share(1, 1))],
            1,
            true,
        ),
        (
            "one custodian, two indices",
            vec![(0, share(1, 1)), (0, share(1, 2))],
            1,
            true,
        ),
        (
            "two splits",
            vec![
                (0, share(1, 1)),
                (
                    1,
                    ShareRef {
                        threshold: 3,
                        shares: 5,
                        ..share(1, 2)
                    },
                ),
            ],
            1,
            true,
        ),
        (
            "k shares",
            vec![(0, share(1, 1)), (1, share(1, 2))],
            1,
            false,
        ),
        (
            "k shares of each key",
            vec![
                (0, share(1, 1)),
                (2, share(1, 3)),
                (1, share(2, 2)),
                (2, share(2, 3)),
            ],
            2,
            false,
        ),
    ];
    for (name, shares, targets, flagged) in cases {
        let mut e = Entries::with_custodians();
        let r = e.request(t0(), "case");
        let mut receipts = vec![r];
        for (i, (c, s)) in shares.into_iter().enumerate() {
            receipts.push(e.share_release(c, r, s, at(i as i64)));
        }
        let rel = e.release(r, targets, at(10));
        let f = found(&e, "custody_below_threshold");
        assert_eq!(f.len(), usize::from(flagged), "{name}: {f:?}");
        if flagged {
            receipts.push(rel);
            assert_eq!(f[0].entries, idx(&receipts), "{name}");
            assert_eq!(f[0].severity, Severity::Critical);
            assert_eq!(f[0].details["targets_released"], targets, "{name}");
        }
    }

    // Shares logged only after the provider's release did not give it the
    // key: flagged, with those receipts named as after.
    let mut e = Entries::with_custodians();
    let r = e.request(t0(), "case after");
    let rel = e.release(r, 1, at(1));
    let a = e.share_release(0, r, share(1, 1), at(2));
    let b = e.share_release(1, r, share(1, 2), at(3));
    let f = found(&e, "custody_below_threshold");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[r, rel, a, b]));
    assert_eq!(
        f[0].details["receipts_after"],
        serde_json::json!([a.index.0, b.index.0])
    );
    assert!(
        f[0].title.contains("put together 0 key(s)"),
        "{}",
        f[0].title
    );
}

#[test]
fn receipts_that_disagree_on_the_split_or_the_holder_of_a_share() {
    let mut e = Entries::with_custodians();
    let r = e.request(t0(), "case split");
    let a = e.share_release(0, r, share(1, 1), t0());
    let other = ShareRef {
        threshold: 3,
        shares: 5,
        ..share(1, 2)
    };
    let b = e.share_release(1, r, other, t0());
    // Across requests: b names share 3 of key 2 for one request, c the
    // same share for another (the custodian's share index is the key's).
    let r2 = e.request(t0(), "case holder");
    let c = e.share_release(1, r, share(2, 3), t0());
    let d = e.share_release(2, r2, share(2, 3), t0());
    let f = found(&e, "custody_share_conflict");
    assert_eq!(f.len(), 2, "{f:?}");
    let split = f.iter().find(|f| f.title.contains("splits")).unwrap();
    assert_eq!(split.entries, idx(&[a, b]));
    assert_eq!(split.details["key"], KeyTag([1; 32]).to_hex());
    let holder = f.iter().find(|f| f.title.contains("share 3")).unwrap();
    assert_eq!(holder.entries, idx(&[c, d]));
    assert!(
        holder.title.contains("custodian-b.test, custodian-c.test"),
        "{}",
        holder.title
    );
}

#[test]
fn a_custodian_under_the_providers_name_is_not_the_provider() {
    // The provider holds a share itself, under its own name (another key):
    // its share is not a release of access by the provider.
    let mut e = Entries::with_custodians();
    let own = key("messenger.example", KeyType::Ed25519, 10);
    e.register(Role::Custodian, &own);
    e.policy(&["daylight-jurisdictions deny US"], t0());
    let r = e.request(t0(), "case");
    e.refusal(
        r,
        RefusalReason::JurisdictionDenied,
        t0() + Duration::hours(1),
    );
    e.share_release_by(&own, r, share(1, 1), t0() + Duration::hours(2));
    // Nor is its one share, below the threshold, a key put together.
    for id in [
        "released_and_refused",
        "release_against_published_policy",
        "custody_released_refused",
    ] {
        assert!(found(&e, id).is_empty(), "{id}");
    }
    // The same as a provider's release is both.
    e.release(r, 1, t0() + Duration::hours(3));
    for id in ["released_and_refused", "release_against_published_policy"] {
        assert_eq!(found(&e, id).len(), 1, "{id}");
    }
    assert!(found(&e, "custody_released_refused").is_empty());
}

#[test]
fn a_key_put_together_for_a_refused_request() {
    let at = |m: i64| t0() + Duration::minutes(m);
    let mut e = Entries::with_custodians();
    // Refused, then k shares of its key.
    let first = e.request(t0(), "case refused first");
    let refusal = e.refusal(first, RefusalReason::JurisdictionDenied, at(1));
    let a = e.share_release(0, first, share(1, 1), at(2));
    let b = e.share_release(1, first, share(1, 2), at(3));
    // k shares, then the refusal: both stand in the log all the same.
    let last = e.request(t0(), "case refused last");
    let c = e.share_release(1, last, share(2, 2), at(1));
    let d = e.share_release(2, last, share(2, 3), at(2));
    let late = e.refusal(last, RefusalReason::TooManyTargets, at(3));
    // Refused, and k-1 shares: no key went out.
    let one = e.request(t0(), "case one share");
    e.refusal(one, RefusalReason::JurisdictionDenied, at(1));
    e.share_release(0, one, share(3, 1), at(2));
    // k shares and no refusal: released as custody intends.
    let kept = e.request(t0(), "case not refused");
    e.share_release(0, kept, share(4, 1), at(1));
    e.share_release(2, kept, share(4, 3), at(2));
    honest(&mut e);

    let f = found(&e, "custody_released_refused");
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].entries, idx(&[first, refusal, a, b]));
    assert_eq!(f[0].severity, Severity::High);
    assert!(
        f[0].title.contains("refused by messenger.example")
            && f[0]
                .title
                .contains("custodians custodian-a.test, custodian-b.test"),
        "{}",
        f[0].title
    );
    assert_eq!(f[0].details["provider"], "messenger.example");
    assert_eq!(
        f[0].details["custodians"],
        serde_json::json!(["custodian-a.test", "custodian-b.test"])
    );
    assert_eq!(
        f[0].details["receipts"],
        serde_json::json!([a.index.0, b.index.0])
    );
    assert_eq!(
        f[0].details["refusals"],
        serde_json::json!([refusal.index.0])
    );
    assert_eq!(
        f[0].details["keys_put_together"],
        serde_json::json!([KeyTag([1; 32]).to_hex()])
    );
    assert_eq!(f[1].entries, idx(&[last, c, d, late]));
    assert!(
        f[1].title
            .contains("custodians custodian-b.test, custodian-c.test"),
        "{}",
        f[1].title
    );
    // No provider answered both ways: its own rule stays quiet.
    assert!(found(&e, "released_and_refused").is_empty());
    // Off when disabled.
    let off = Rules {
        disabled: vec!["custody_released_refused".into()],
        ..Rules::default()
    };
    let quiet = rules::apply(&off, &facts(&e), t0() + Duration::days(1));
    assert!(quiet.iter().all(|f| f.id != "custody_released_refused"));
}

#[tokio::test]
async fn a_refused_request_whose_key_is_put_together_is_found_run_after_run() {
    let at = |m: i64| t0() + Duration::minutes(m);
    let mut e = Entries::with_custodians();
    let refused = e.request(t0(), "case refused first");
    e.refusal(refused, RefusalReason::JurisdictionDenied, at(1));
    let start = e.len();
    e.share_release(0, refused, share(1, 1), at(2));
    e.share_release(1, refused, share(1, 2), at(3));
    let shared = e.request(t0(), "case refused last");
    e.share_release(1, shared, share(2, 2), at(4));
    e.share_release(2, shared, share(2, 3), at(5));
    e.refusal(shared, RefusalReason::TooManyTargets, at(6));
    // Per size: how many requests are refused with a key put together
    // (a receipt joins the first story at each of its steps, the refusal
    // the second story at its last).
    let steps = [
        (start, 0),
        (start + 1, 0),
        (start + 2, 1),
        (start + 5, 1),
        (start + 6, 2),
    ];
    assert_eq!(e.len(), start + 6);
    let server = StaticServer::start(Default::default()).await;
    let rules = Rules::default();
    let now = t0() + Duration::days(1);
    let inc = tempfile::tempdir().unwrap();
    for (size, expected) in steps {
        serve_log(&server, &e, size);
        let a = run_audit(&server, inc.path(), now, &rules).await;
        let fresh = tempfile::tempdir().unwrap();
        let b = run_audit(&server, fresh.path(), now, &rules).await;
        assert_eq!(found_text(&a), found_text(&b), "at size {size}");
        assert_eq!(a.counts, b.counts);
        let f = with_id(&a, "custody_released_refused");
        assert_eq!(f.len(), expected, "at size {size}: {}", a.summary());
    }
}

#[test]
fn the_report_counts_shares_apart_from_releases() {
    let mut e = Entries::with_custodians();
    honest(&mut e);
    // Released by custodians' shares alone (no provider receipt yet).
    let by_shares = e.request(t0(), "case shares");
    e.share_release(0, by_shares, share(3, 1), t0());
    e.share_release(1, by_shares, share(3, 2), t0());
    // One share only: not released.
    let one = e.request(t0(), "case one");
    e.share_release(0, one, share(4, 1), t0());
    let report = TransparencyReport::from_facts(ORIGIN, e.len(), &facts(&e));
    assert_eq!(report.share_releases.count, 7);
    // Only the provider's receipt counts targets released.
    assert_eq!(report.targets_released.count, 2);
    assert_eq!(report.authorisations_released.count, 2);
    let expected: Vec<u64> = {
        let mut v: Vec<u64> = facts(&e)
            .iter()
            .filter(|f| f.kind == daylight_schemas::Kind::Request)
            .map(|f| f.index)
            .take(2)
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(report.authorisations_released.entries, expected);
}

/// A log whose custody findings appear only as later entries arrive: a
/// second key's share (too many keys), a provider's release short of keys,
/// a second custodian claiming a share in another story, a share out of
/// its window, a refusal of a request whose key custodians put together.
fn custody_log() -> Entries {
    let mut e = Entries::with_custodians();
    let at = |h: i64| t0() + Duration::hours(h);
    honest(&mut e);
    let em = e.emergency(t0());
    e.ratification(em, at(1), true);
    e.share_release(0, em, share(5, 1), at(2));
    e.share_release(1, em, share(5, 2), at(2));
    let short = e.request(t0(), "case short");
    e.share_release(0, short, share(6, 1), at(3));
    e.release(short, 2, at(4));
    e.share_release(2, em, share(7, 3), at(5));
    let other = e.request(t0(), "case other");
    e.share_release(2, other, share(6, 1), at(6));
    e.share_release(1, other, share(8, 2), t0() + Duration::days(40));
    let refused = e.request(t0(), "case refused");
    e.share_release(0, refused, share(9, 1), at(7));
    e.share_release(2, refused, share(9, 3), at(7));
    for i in 0..40 {
        e.request(t0() + Duration::minutes(i), &format!("case {i}"));
    }
    e.refusal(refused, RefusalReason::JurisdictionDenied, at(8));
    e
}

#[tokio::test]
async fn a_growing_log_with_custody_finds_what_one_audit_finds() {
    let e = custody_log();
    let n = e.len();
    let server = StaticServer::start(Default::default()).await;
    let rules = Rules::default();
    let inc = tempfile::tempdir().unwrap();
    let steps: Vec<(u64, DateTime<Utc>)> = (e.len() - 48..=n)
        .step_by(3)
        .chain([n])
        .map(|s| (s, t0() + Duration::days(41)))
        .collect();
    let mut seen = BTreeSet::new();
    for (size, now) in &steps {
        serve_log(&server, &e, *size);
        let a = run_audit(&server, inc.path(), *now, &rules).await;
        let fresh = tempfile::tempdir().unwrap();
        let b = run_audit(&server, fresh.path(), *now, &rules).await;
        assert_eq!(found_text(&a), found_text(&b), "at size {size}");
        assert_eq!(a.counts, b.counts);
        seen.extend(a.findings.iter().map(|f| f.id.clone()));
    }
    for id in [
        "release_excess_targets",
        "custody_below_threshold",
        "custody_share_conflict",
        "release_outside_window",
        "custody_released_refused",
    ] {
        assert!(seen.contains(id), "{id} never found: {seen:?}");
    }
    // Only the custody log's own findings: the honest part stays clean.
    let last = run_audit(&server, inc.path(), t0() + Duration::days(41), &rules).await;
    let ids: BTreeSet<&str> = last.findings.iter().map(|f| f.id.as_str()).collect();
    assert!(
        ids.iter()
            .all(|id| RELEASE_RULES.contains(id) || *id == "witness_unreachable"),
        "{ids:?}"
    );
}
