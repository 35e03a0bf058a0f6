//! The auditor on its ledger: a log audited as it grows, run after run with
//! the clock moving (forwards and back), finds exactly what one audit of the
//! whole log from an empty directory finds; a run reads only new entries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use common::*;
use common::{found_text as found, run_audit as run, serve_log as serve};
use daylight_auditor::{FindingsReport, Rules, Status};
use daylight_schemas::RefusalReason;

/// A log that breaks most rules, some only once later entries or the clock
/// have spoken.
fn busy_log() -> Entries {
    let mut e = Entries::new();
    // Emergencies: one ratified in time, one late, one denied then
    // released, several never ratified (a spike within a week).
    let em = e.emergency(t0());
    e.ratification(em, t0() + Duration::hours(10), true);
    let late = e.emergency(t0() + Duration::hours(1));
    let denied = e.emergency(t0() + Duration::hours(2));
    e.ratification(denied, t0() + Duration::hours(3), false);
    e.release(denied, 1, t0() + Duration::hours(4));
    for i in 0..12 {
        e.emergency(t0() + Duration::hours(5 + i));
    }
    // Requests: released outside the window, for too many targets, after a
    // withdrawal; extended again and again; disclosed; split orders.
    let r = e.request(t0(), "case window");
    e.release(r, 2, t0() + Duration::days(60));
    let r2 = e.request(t0(), "case targets");
    e.release(r2, 99, t0() + Duration::days(1));
    let r3 = e.request(t0(), "case withdrawn");
    e.withdrawal(r3, t0() + Duration::hours(1));
    e.release(r3, 1, t0() + Duration::hours(2));
    let r4 = e.request(t0(), "case sealed");
    for k in 1..=4 {
        e.extension(
            r4,
            t0() + Duration::days(k),
            t0() + Duration::days(100 + k * 30),
        );
    }
    let r5 = e.request(t0(), "case open");
    e.disclosure(r5, t0() + Duration::days(2));
    for _ in 0..7 {
        e.request(t0() + Duration::hours(3), "case split");
    }
    // The provider's standards, a refusal it does not support, and an
    // answer both ways.
    e.policy(&["daylight-max-targets 1"], t0() + Duration::hours(1));
    let r6 = e.request(t0() + Duration::hours(2), "case both");
    e.release(r6, 1, t0() + Duration::hours(3));
    e.refusal(
        r6,
        RefusalReason::JurisdictionDenied,
        t0() + Duration::hours(4),
    );
    // A late ratification of `late`, after its deadline.
    e.ratification(late, t0() + Duration::days(3), true);
    // Plenty of ordinary requests, so the log spans several bundles.
    for i in 0..400 {
        e.request(t0() + Duration::minutes(i * 7), &format!("case {i}"));
    }
    e
}

/// `busy_log()`'s first `size` entries served, and audited once at `now`
/// with the default rules into a new directory.
struct Audited {
    e: Entries,
    server: StaticServer,
    dir: tempfile::TempDir,
    rules: Rules,
    first: FindingsReport,
}

async fn audited(size: Option<u64>, now: DateTime<Utc>) -> Audited {
    let e = busy_log();
    let server = StaticServer::start(Default::default()).await;
    let rules = Rules::default();
    let dir = tempfile::tempdir().unwrap();
    serve(&server, &e, size.unwrap_or_else(|| e.len()));
    let first = run(&server, dir.path(), now, &rules).await;
    Audited {
        e,
        server,
        dir,
        rules,
        first,
    }
}

/// Deletes the audit directory's ledger (its file and SQLite's beside it).
fn remove_ledger(dir: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("ledger.db{suffix}")));
    }
}

#[tokio::test]
async fn growing_log_and_moving_clock_find_what_one_audit_finds() {
    let e = busy_log();
    let n = e.len();
    let server = StaticServer::start(Default::default()).await;
    let rules = Rules::default();
    // Sizes cut stories in the middle (a release before its withdrawal's
    // run, an extension chain across runs); times go forwards and back.
    let steps: Vec<(u64, DateTime<Utc>)> = vec![
        (6, t0()),
        (7, t0() + Duration::hours(12)),
        (20, t0() + Duration::days(1)),
        (33, t0() + Duration::hours(6)),
        (40, t0() + Duration::days(5)),
        (41, t0() + Duration::days(400)),
        (300, t0() + Duration::days(2)),
        (n, t0() + Duration::days(200)),
    ];
    let inc = tempfile::tempdir().unwrap();
    for (size, now) in &steps {
        serve(&server, &e, *size);
        run(&server, inc.path(), *now, &rules).await;
        // At every step, the same as a fresh audit of that much at that time.
        let fresh = tempfile::tempdir().unwrap();
        let a = run(&server, inc.path(), *now, &rules).await;
        let b = run(&server, fresh.path(), *now, &rules).await;
        assert_eq!(found(&a), found(&b), "at size {size}, {now}");
        assert_eq!(a.status, b.status);
        assert_eq!(a.counts, b.counts);
    }
    // The final report has the findings the log was built to show.
    let last = run(&server, inc.path(), steps[steps.len() - 1].1, &rules).await;
    let ids: BTreeSet<&str> = last.findings.iter().map(|f| f.id.as_str()).collect();
    for id in [
        "emergency_unratified",
        "emergency_spike",
        "release_without_authorisation",
        "release_outside_window",
        "release_excess_targets",
        "release_after_withdrawal",
        "repeated_seal_extensions",
        "disclosure_overdue",
        "order_splitting",
        "released_and_refused",
        "refusal_unsupported_by_policy",
    ] {
        assert!(ids.contains(id), "{id} missing: {}", last.summary());
    }

    // Other thresholds: everything is evaluated again, as a fresh audit does.
    let strict = Rules {
        max_seal_extensions: 10,
        emergency_spike_max: 3,
        disabled: vec!["order_splitting".into()],
        ..Rules::default()
    };
    let now = steps[steps.len() - 1].1;
    let a = run(&server, inc.path(), now, &strict).await;
    let fresh = tempfile::tempdir().unwrap();
    let b = run(&server, fresh.path(), now, &strict).await;
    assert_eq!(found(&a), found(&b));
    assert!(!a.findings.iter().any(|f| f.id == "order_splitting"));
    assert!(!a
        .findings
        .iter()
        .any(|f| f.id == "repeated_seal_extensions"));
}

#[tokio::test]
async fn a_run_reads_only_the_bundles_of_new_entries() {
    let now = t0() + Duration::days(2);
    let Audited {
        e,
        server,
        dir,
        rules,
        first,
    } = audited(Some(256), now).await;
    assert_eq!(first.entries_audited, 256);
    // The first bundle leaves the mirror: a run that needed it would fail.
    let full = dir.path().join("tile/entries/000");
    assert!(full.is_file());
    std::fs::remove_file(&full).unwrap();
    let again = run(&server, dir.path(), now, &rules).await;
    assert_eq!(found(&again), found(&first));
    serve(&server, &e, 300);
    let grown = run(&server, dir.path(), now, &rules).await;
    assert_eq!(grown.entries_audited, 300);
    assert_eq!(grown.entries_new, 44);
    assert!(!full.exists(), "bundle 000 was fetched again");
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(
        found(&grown),
        found(&run(&server, fresh.path(), now, &rules).await)
    );
}

#[tokio::test]
async fn a_lost_ledger_is_made_again_from_the_mirror() {
    let now = t0() + Duration::days(200);
    let Audited {
        server,
        dir,
        rules,
        first,
        ..
    } = audited(None, now).await;
    assert_eq!(first.status, Status::Findings);
    remove_ledger(dir.path());
    std::fs::write(dir.path().join("ledger.db"), b"not a database").unwrap();
    let again = run(&server, dir.path(), now, &rules).await;
    assert_eq!(found(&again), found(&first));
    // findings.json holds the same findings as the report.
    let written: FindingsReport =
        serde_json::from_slice(&std::fs::read(dir.path().join("findings.json")).unwrap()).unwrap();
    assert_eq!(found(&written), found(&again));
    assert_eq!(written.findings.len(), again.findings.len());
}

#[tokio::test]
async fn a_ledger_made_again_from_tampered_files_is_refused() {
    let now = t0() + Duration::days(2);
    let Audited {
        server,
        dir,
        rules,
        first,
        ..
    } = audited(Some(256), now).await;
    assert_ne!(first.status, Status::IntegrityFailure);
    // The ledger goes, and a byte of the mirror's first bundle changes (in
    // a record's text, so it still parses as a bundle): the files below
    // the kept size are read again, and must still hash to the signed tree.
    remove_ledger(dir.path());
    let bundle = dir.path().join("tile/entries/000");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(7).position(|w| w == b"request").unwrap();
    bytes[at] = b'R';
    std::fs::write(&bundle, &bytes).unwrap();
    let again = run(&server, dir.path(), now, &rules).await;
    assert_eq!(
        again.status,
        Status::IntegrityFailure,
        "{}",
        again.summary()
    );
    assert!(
        again.findings.iter().any(|f| f.id == "bundle_mismatch"),
        "{}",
        again.summary()
    );
    // Nothing was committed from those files.
    let ledger =
        daylight_ledger::Ledger::read_only(&dir.path().join("ledger.db"), common::ORIGIN).unwrap();
    assert_eq!(ledger.size().unwrap(), 0);
}
