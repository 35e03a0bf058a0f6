//! The rules over a provider's answers (releases and refusals) and its
//! published policy, and the report's refusal counts. Logs are built in
//! memory; each rule is checked on its facts, and once through a whole audit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use chrono::Duration;
use common::*;
use daylight_auditor::report::TransparencyReport;
use daylight_auditor::rules::{self, Rules};
use daylight_auditor::verify::Fact;
use daylight_auditor::{Finding, Severity, Status};
use daylight_core::{KeyType, LeafIndex};
use daylight_schemas::{EntryRef, Record, RefusalReason, Role};

/// The facts of `e`'s entries, as a full audit reads them.
fn facts(e: &Entries) -> Vec<Fact> {
    let bytes = e.bytes();
    let entries: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let (facts, findings) =
        daylight_auditor::verify::facts_of(e.actors.log.verifier().clone(), &entries).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    facts
}

/// The findings of rule `id` over `e`'s entries (at a time nothing else is due).
fn found(e: &Entries, id: &str) -> Vec<Finding> {
    rules::apply(&Rules::default(), &facts(e), t0() + Duration::days(1))
        .into_iter()
        .filter(|f| f.id == id)
        .collect()
}

/// The leaf indexes of `refs`, as a finding lists them (ascending).
fn idx(refs: &[EntryRef]) -> Vec<u64> {
    let mut v: Vec<u64> = refs.iter().map(|r| r.index.0).collect();
    v.sort_unstable();
    v
}

#[test]
fn released_and_refused() {
    let mut e = Entries::new();
    let both = e.request(t0(), "case both");
    let rel = e.release(both, 2, t0() + Duration::hours(1));
    let refusal = e.refusal(
        both,
        RefusalReason::TooManyTargets,
        t0() + Duration::hours(2),
    );
    // Released only, refused only: nothing to reconcile.
    let released = e.request(t0(), "case released");
    e.release(released, 2, t0() + Duration::hours(1));
    let refused = e.request(t0(), "case refused");
    e.refusal(refused, RefusalReason::JurisdictionDenied, t0());

    let f = found(&e, "released_and_refused");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[both, rel, refusal]));
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(
        f[0].details["refusals"],
        serde_json::json!([refusal.index.0])
    );
    assert_eq!(f[0].details["provider"], "messenger.example");
}

#[test]
fn release_against_published_policy() {
    let mut e = Entries::new();
    // Released before any policy: nothing to compare with.
    let early = e.request(t0(), "case early");
    e.release(early, 2, t0());
    let policy = e.policy(
        &[
            "daylight-jurisdictions deny US",
            "daylight-max-targets 1 for agency2.test",
        ],
        t0() + Duration::hours(1),
    );
    // A US request (the fixtures' requests are US-NY) released after it.
    let against = e.request(t0(), "case against");
    let rel = e.release(against, 2, t0() + Duration::hours(2));
    // agency2's emergency (DE, one target): its line allows it.
    let a2 = e.actors.agency2.clone();
    let em = e.emergency_by(&a2, t0());
    e.release(em, 1, t0() + Duration::hours(2));

    let f = found(&e, "release_against_published_policy");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[policy, against, rel]));
    assert_eq!(f[0].details["reason"], "jurisdiction_denied");
    assert_eq!(f[0].details["policy"], policy.index.0);
    assert_eq!(f[0].details["agency"], "agency.test");

    // A newer policy that no longer denies the US: later releases are judged by it.
    let mut e2 = Entries::new();
    e2.policy(&["daylight-jurisdictions deny US"], t0());
    e2.policy(&["daylight-jurisdictions deny RU"], t0());
    let r = e2.request(t0(), "case");
    e2.release(r, 2, t0() + Duration::hours(1));
    assert!(found(&e2, "release_against_published_policy").is_empty());

    // A line for one agency judges that agency's requests only.
    let mut e3 = Entries::new();
    let p = e3.policy(&["daylight-max-validity-days 7 for agency2.test"], t0());
    let a2 = e3.actors.agency2.clone();
    let by_a2 = e3.request_by(&a2, t0(), "case a2");
    let rel_a2 = e3.release(by_a2, 2, t0() + Duration::hours(1));
    let by_a1 = e3.request(t0(), "case a1");
    e3.release(by_a1, 2, t0() + Duration::hours(1));
    let f = found(&e3, "release_against_published_policy");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[p, by_a2, rel_a2]));
    assert_eq!(f[0].details["reason"], "validity_too_long");
}

#[test]
fn refusal_unsupported_by_policy() {
    let mut e = Entries::new();
    // No policy published yet: any reason stands.
    let before = e.request(t0(), "case before");
    e.refusal(before, RefusalReason::OffenceNotAllowed, t0());
    let policy = e.policy(
        &[
            "daylight-jurisdictions allow US",
            "daylight-max-targets 1",
            "daylight-categories deny content",
        ],
        t0() + Duration::hours(1),
    );
    // Two targets and content: both reasons are the policy's, though
    // max-targets comes first.
    let r1 = e.request(t0(), "case one");
    e.refusal(r1, RefusalReason::TooManyTargets, t0() + Duration::hours(2));
    let r2 = e.request(t0(), "case two");
    e.refusal(r2, RefusalReason::CategoryDenied, t0() + Duration::hours(2));
    // The policy serves the US: a jurisdiction reason is not its own.
    let r3 = e.request(t0(), "case three");
    let unsupported = e.refusal(
        r3,
        RefusalReason::JurisdictionNotAllowed,
        t0() + Duration::hours(2),
    );

    let f = found(&e, "refusal_unsupported_by_policy");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entries, idx(&[policy, r3, unsupported]));
    assert_eq!(f[0].severity, Severity::Low);
    assert_eq!(f[0].details["reason"], "jurisdiction_not_allowed");
}

#[test]
fn refusal_without_authorisation() {
    let mut e = Entries::new();
    let other = key("other-provider.example", KeyType::Ed25519, 9);
    e.registry(
        Record::registry_add(Role::Provider, other.verifier(), t0() - Duration::days(1)).unwrap(),
    );
    let r = e.request(t0(), "case");
    // By the provider the request is addressed to: fine.
    e.refusal(r, RefusalReason::TooManyTargets, t0());
    // By another provider, and of a registry entry.
    let wrong = e.refusal_by(&other, r, RefusalReason::CategoryDenied, t0());
    let registry = EntryRef::to(&e.records[0], LeafIndex(0));
    let not_request = e.refusal(registry, RefusalReason::CategoryDenied, t0());

    let f = found(&e, "refusal_without_authorisation");
    let got: Vec<Vec<u64>> = f.iter().map(|f| f.entries.clone()).collect();
    assert_eq!(
        got,
        vec![idx(&[r, wrong]), idx(&[registry, not_request])],
        "{f:?}"
    );
    assert_eq!(f[0].details["addressed_to"], "messenger.example");
    // The other provider's refusal is not the addressed provider's answer.
    assert!(found(&e, "released_and_refused").is_empty());
}

#[test]
fn rules_can_be_disabled() {
    let mut e = Entries::new();
    e.policy(&["daylight-jurisdictions deny US"], t0());
    let r = e.request(t0(), "case");
    e.release(r, 2, t0());
    e.refusal(r, RefusalReason::JurisdictionNotAllowed, t0());
    let ids = [
        "released_and_refused",
        "release_against_published_policy",
        "refusal_unsupported_by_policy",
    ];
    let all = rules::apply(&Rules::default(), &facts(&e), t0());
    for id in ids {
        assert!(all.iter().any(|f| f.id == id), "{id}: {all:?}");
    }
    let rules = Rules::from_json(&serde_json::json!({ "disabled": ids }).to_string()).unwrap();
    let none = rules::apply(&rules, &facts(&e), t0());
    assert!(
        none.iter().all(|f| !ids.contains(&f.id.as_str())),
        "{none:?}"
    );
}

/// A log with refusals by jurisdiction, agency, reason and provider.
fn refusals_log() -> (Entries, Vec<EntryRef>) {
    let mut e = Entries::new();
    let other = key("other-provider.example", KeyType::Ed25519, 9);
    e.registry(
        Record::registry_add(Role::Provider, other.verifier(), t0() - Duration::days(1)).unwrap(),
    );
    let a2 = e.actors.agency2.clone();
    let r1 = e.request(t0(), "case 1");
    let r2 = e.request(t0(), "case 2");
    let em = e.emergency_by(&a2, t0());
    let released = e.request(t0(), "case 3");
    e.release(released, 2, t0());
    let f1 = e.refusal(r1, RefusalReason::JurisdictionDenied, t0());
    let f2 = e.refusal(r2, RefusalReason::TooManyTargets, t0());
    let f3 = e.refusal(em, RefusalReason::JurisdictionDenied, t0());
    // Not counted: another provider's refusal of the request, and a
    // refusal of a registry entry.
    e.refusal_by(&other, released, RefusalReason::CategoryDenied, t0());
    let registry = EntryRef::to(&e.records[0], LeafIndex(0));
    e.refusal(registry, RefusalReason::CategoryDenied, t0());
    (e, vec![f1, f2, f3])
}

fn counts(
    m: &BTreeMap<String, daylight_auditor::report::Count>,
) -> BTreeMap<&str, (u64, Vec<u64>)> {
    m.iter()
        .map(|(k, c)| (k.as_str(), (c.count, c.entries.clone())))
        .collect()
}

#[test]
fn the_report_counts_refusals_per_jurisdiction_agency_reason_and_provider() {
    let (e, f) = refusals_log();
    let (f1, f2, f3) = (f[0].index.0, f[1].index.0, f[2].index.0);
    let r = TransparencyReport::from_facts(ORIGIN, e.len(), &facts(&e));
    assert_eq!(r.refusals.count, 3);
    assert_eq!(r.refusals.entries, vec![f1, f2, f3]);
    assert_eq!(
        counts(&r.refusals_by_jurisdiction),
        BTreeMap::from([("DE", (1, vec![f3])), ("US-NY", (2, vec![f1, f2]))])
    );
    assert_eq!(
        counts(&r.refusals_by_agency),
        BTreeMap::from([
            ("agency.test", (2, vec![f1, f2])),
            ("agency2.test", (1, vec![f3]))
        ])
    );
    assert_eq!(
        counts(&r.refusals_by_reason),
        BTreeMap::from([
            ("jurisdiction_denied", (2, vec![f1, f3])),
            ("too_many_targets", (1, vec![f2]))
        ])
    );
    assert_eq!(
        counts(&r.refusals_by_provider),
        BTreeMap::from([("messenger.example", (3, vec![f1, f2, f3]))])
    );
    // The kinds table still counts every refusal entry.
    assert_eq!(r.kinds["refusal"].count, 5);

    let csv = r.to_csv();
    assert!(
        csv.contains(&format!("refusal_jurisdiction,\"US-NY\",2,{f1} {f2}\n")),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "refusal_reason,\"jurisdiction_denied\",2,{f1} {f3}\n"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("refusal_agency,\"agency2.test\",1,{f3}\n")),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "refusal_provider,\"messenger.example\",3,{f1} {f2} {f3}\n"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("total,refusals,3,{f1} {f2} {f3}\n")),
        "{csv}"
    );
    let md = r.to_markdown();
    assert!(
        md.contains("- Refusals by the addressed provider: 3\n"),
        "{md}"
    );
    assert!(md.contains("## By refusal reason\n"), "{md}");
    assert!(md.contains("| too_many_targets | 1 |\n"), "{md}");
    assert!(md.contains("## By refusal jurisdiction\n"), "{md}");
    assert!(md.contains("| US-NY | 2 |\n"), "{md}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["refusals_by_agency"]["agency.test"]["count"], 2);
    assert_eq!(json["refusals"]["count"], 3);
}

/// Through a whole audit: the log with a release its policy forbids is
/// found, with its exit code; the same log without that release is clean.
#[tokio::test]
async fn an_audit_finds_a_release_against_the_published_policy() {
    let mut e = Entries::new();
    e.policy(&["daylight-issuers allow prosecutor"], t0());
    let em = e.emergency(t0());
    e.ratification(em, t0() + Duration::hours(1), true);
    e.release(em, 1, t0() + Duration::hours(1));
    let r = e.request(t0(), "case by a court");
    e.refusal(
        r,
        RefusalReason::IssuerNotAllowed,
        t0() + Duration::hours(1),
    );
    let (report, _s, _d) = audit_entries(&e, t0() + Duration::days(1)).await;
    assert_eq!(report.status, Status::Clean, "{}", report.summary());

    let rel = e.release(r, 2, t0() + Duration::hours(2));
    let (report, _s, _d) = audit_entries(&e, t0() + Duration::days(1)).await;
    assert_eq!(
        ids(&report),
        set(&["release_against_published_policy", "released_and_refused"]),
        "{}",
        report.summary()
    );
    assert_eq!(report.exit_code, 1);
    let f = with_id(&report, "release_against_published_policy");
    assert_eq!(f[0].details["reason"], "issuer_not_allowed");
    assert!(f[0].entries.contains(&rel.index.0));
}
