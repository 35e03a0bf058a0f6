//! The auditor against static tlog-tiles logs: clean, each rule, tampering,
//! forks and split views, resumption.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use chrono::Duration;
use common::*;
use daylight_auditor::{audit, AuditError, FindingsReport, Rules, Status};
use daylight_core::tree::MemoryTree;
use daylight_schemas::Role;

/// A log with every kind of entry, all within the rules.
fn clean_entries() -> Entries {
    let mut e = Entries::new();
    let r = e.request(t0(), "SDNY 26-MJ-0412");
    e.release(r, 2, t0() + Duration::days(1));
    let em = e.emergency(t0() + Duration::days(2));
    e.ratification(em, t0() + Duration::days(3), true);
    e.release(em, 1, t0() + Duration::days(2) + Duration::hours(1));
    let r2 = e.request(t0() + Duration::days(3), "SDNY 26-MJ-0413");
    e.extension(r2, t0() + Duration::days(4), t0() + Duration::days(200));
    e.disclosure(r, t0() + Duration::days(5));
    for i in 0..300 {
        e.request(t0() + Duration::minutes(i * 30), &format!("case {i}"));
    }
    e
}

#[tokio::test]
async fn clean_log_passes_and_a_second_run_fetches_nothing() {
    let e = clean_entries();
    let (report, server, dir) = audit_entries(&e, t0() + Duration::days(10)).await;
    assert_eq!(report.status, Status::Clean, "{}", report.summary());
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.entries_audited, e.len());
    assert_eq!(report.witnesses.len(), 1);
    assert_eq!(report.witnesses[0].status, "consistent");
    let written: FindingsReport =
        serde_json::from_slice(&std::fs::read(dir.path().join("findings.json")).unwrap()).unwrap();
    assert_eq!(written.status, Status::Clean);
    assert!(dir.path().join("checkpoint").is_file());

    let before = server.hits();
    let mut opts = options(&server.url(), dir.path(), t0() + Duration::days(10));
    opts.witnesses = vec![server.url()];
    let (again, stats) = audit(&opts).await.unwrap();
    assert_eq!(again.status, Status::Clean);
    assert_eq!(stats.fetched, 0);
    let after = server.hits();
    for (path, n) in &after {
        if path.starts_with("/tile/") {
            assert_eq!(before.get(path), Some(n), "{path} fetched again");
        }
    }
}

#[tokio::test]
async fn emergency_unratified() {
    let mut e = Entries::new();
    let missing = e.emergency(t0());
    let late = e.emergency(t0());
    let in_time = e.emergency(t0());
    let denied = e.emergency(t0());
    e.ratification(in_time, t0() + Duration::hours(47), true);
    e.ratification(denied, t0() + Duration::hours(10), false);
    let late_r = e.ratification(late, t0() + Duration::hours(49), true);
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(3)).await;
    assert_eq!(ids(&r), set(&["emergency_unratified"]), "{}", r.summary());
    let f = with_id(&r, "emergency_unratified");
    assert_eq!(f.len(), 2);
    let got: BTreeSet<Vec<u64>> = f.iter().map(|f| f.entries.clone()).collect();
    assert!(got.contains(&vec![missing.index.0]));
    assert!(got.contains(&vec![late.index.0, late_r.index.0]));
    assert_eq!(r.exit_code, 1);

    // Before the deadline, nothing is due.
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::hours(47)).await;
    assert_eq!(r.status, Status::Clean, "{}", r.summary());
}

#[tokio::test]
async fn emergency_spike() {
    let mut e = Entries::new();
    let a2 = e.actors.agency2.clone();
    let mut burst = Vec::new();
    for i in 0..11 {
        let em = e.emergency_by(&a2, t0() + Duration::hours(i * 6));
        e.ratification(em, t0() + Duration::hours(i * 6 + 1), true);
        burst.push(em.index.0);
    }
    // The other agency: 10 in a week (at the threshold) and more spread out.
    for i in 0..10 {
        let em = e.emergency(t0() + Duration::hours(i * 12));
        e.ratification(em, t0() + Duration::hours(i * 12 + 1), true);
    }
    for i in 0..5 {
        let em = e.emergency(t0() + Duration::days(10 + i * 3));
        e.ratification(
            em,
            t0() + Duration::days(10 + i * 3) + Duration::hours(1),
            true,
        );
    }
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(30)).await;
    assert_eq!(ids(&r), set(&["emergency_spike"]), "{}", r.summary());
    let f = with_id(&r, "emergency_spike");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].entries, burst);
    assert_eq!(f[0].details["agency"], "agency2.test");
}

#[tokio::test]
async fn release_rules() {
    let mut e = Entries::new();
    let req = e.request(t0(), "case A");
    let ok = e.release(req, 2, t0() + Duration::days(1));
    let excess = e.release(req, 3, t0() + Duration::days(2));
    let outside = e.release(req, 1, t0() + Duration::days(31));
    let em = e.emergency(t0());
    let rat = e.ratification(em, t0() + Duration::hours(5), false);
    let after_denial = e.release(em, 1, t0() + Duration::hours(6));
    let of_ratification = e.release(rat, 1, t0() + Duration::hours(7));
    let req2 = e.request(t0(), "case B");
    let w = e.withdrawal(req2, t0() + Duration::days(1));
    let after_withdrawal = e.release(req2, 1, t0() + Duration::days(2));
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(40)).await;
    assert_eq!(
        ids(&r),
        set(&[
            "release_excess_targets",
            "release_outside_window",
            "release_without_authorisation",
            "release_after_withdrawal"
        ]),
        "{}",
        r.summary()
    );
    let entries = |id: &str| -> BTreeSet<Vec<u64>> {
        with_id(&r, id).iter().map(|f| f.entries.clone()).collect()
    };
    assert_eq!(
        entries("release_excess_targets"),
        BTreeSet::from([vec![req.index.0, excess.index.0]])
    );
    assert_eq!(
        entries("release_outside_window"),
        BTreeSet::from([vec![req.index.0, outside.index.0]])
    );
    assert_eq!(
        entries("release_without_authorisation"),
        BTreeSet::from([
            vec![em.index.0, rat.index.0, after_denial.index.0],
            vec![rat.index.0, of_ratification.index.0],
        ])
    );
    assert_eq!(
        entries("release_after_withdrawal"),
        BTreeSet::from([vec![req2.index.0, w.index.0, after_withdrawal.index.0]])
    );
    assert!(r.findings.iter().all(|f| !f.entries.contains(&ok.index.0)));
}

#[tokio::test]
async fn disclosure_overdue_and_seal_extensions() {
    let mut e = Entries::new();
    let overdue = e.request(t0(), "case 1");
    let disclosed = e.request(t0(), "case 2");
    e.disclosure(disclosed, t0() + Duration::days(91));
    let extended = e.request(t0(), "case 3");
    e.extension(
        extended,
        t0() + Duration::days(80),
        t0() + Duration::days(200),
    );
    let many = e.request(t0(), "case 4");
    let mut exts = vec![many.index.0];
    for i in 1..=3 {
        exts.push(
            e.extension(
                many,
                t0() + Duration::days(i),
                t0() + Duration::days(300 + i),
            )
            .index
            .0,
        );
    }
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(150)).await;
    assert_eq!(
        ids(&r),
        set(&["disclosure_overdue", "repeated_seal_extensions"]),
        "{}",
        r.summary()
    );
    let f = with_id(&r, "disclosure_overdue");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].entries, vec![overdue.index.0]);
    let f = with_id(&r, "repeated_seal_extensions");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].entries, exts);

    // A rules file can raise the threshold and disable a rule.
    let rules =
        Rules::from_json(r#"{"max_seal_extensions": 3, "disabled": ["disclosure_overdue"]}"#)
            .unwrap();
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), t0() + Duration::days(150));
    opts.rules = rules;
    let (r, _) = audit(&opts).await.unwrap();
    assert_eq!(r.status, Status::Clean, "{}", r.summary());
    assert!(Rules::from_json(r#"{"max_seal_extension": 3}"#).is_err());
    assert!(Rules::from_json(r#"{"disabled": ["no_such_rule"]}"#).is_err());
}

#[tokio::test]
async fn order_splitting() {
    let mut e = Entries::new();
    let mut split = Vec::new();
    for i in 0..6 {
        split.push(e.request(t0() + Duration::hours(i), "case S").index.0);
    }
    for i in 0..5 {
        e.request(t0() + Duration::days(1) + Duration::hours(i), "case S");
    }
    let a2 = e.actors.agency2.clone();
    for i in 0..3 {
        e.request_by(&a2, t0() + Duration::hours(i), "case S");
    }
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(2)).await;
    assert_eq!(ids(&r), set(&["order_splitting"]), "{}", r.summary());
    let f = with_id(&r, "order_splitting");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].entries, split);
}

#[tokio::test]
async fn entries_after_revocation() {
    let mut e = Entries::new();
    let a2 = e.actors.agency2.clone();
    e.request_by(&a2, t0(), "before");
    let revoke = e.revoke(Role::Agency, &a2, t0() + Duration::days(1));
    let after = e.request_by(&a2, t0() + Duration::days(2), "after");
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(3)).await;
    assert_eq!(ids(&r), set(&["signer_revoked"]), "{}", r.summary());
    let f = with_id(&r, "signer_revoked");
    assert_eq!(f[0].entries, vec![revoke.index.0, after.index.0]);
    assert_eq!(r.exit_code, 1);
}

#[tokio::test]
async fn unregistered_signer_and_forged_signature() {
    let mut e = Entries::new();
    let stranger = key("stranger.test", daylight_core::KeyType::Ed25519, 9);
    let unknown = e.request_by(&stranger, t0(), "x");
    let (r, _s, _d) = audit_entries(&e, t0() + Duration::days(1)).await;
    assert_eq!(ids(&r), set(&["entry_unknown_signer"]), "{}", r.summary());
    assert_eq!(
        with_id(&r, "entry_unknown_signer")[0].entries,
        vec![unknown.index.0]
    );

    // A record whose signature was altered (still canonical): exit 2.
    let mut e = Entries::new();
    e.request(t0(), "y");
    let mut bytes = e.bytes();
    let last = bytes.last_mut().unwrap();
    let text = String::from_utf8(last.clone()).unwrap();
    let at = text.find("\"signature\":\"").unwrap() + 13;
    let c = last[at];
    last[at] = if c == b'a' { b'b' } else { b'a' };
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = audit(&options(&server.url(), dir.path(), t0()))
        .await
        .unwrap();
    assert_eq!(ids(&r), set(&["entry_bad_signature"]), "{}", r.summary());
    assert_eq!(r.exit_code, 2);
}

/// An honest log of `n` requests.
fn requests(n: i64) -> Entries {
    let mut e = Entries::new();
    for i in 0..n {
        e.request(t0() + Duration::minutes(i), &format!("case {i}"));
    }
    e
}

#[tokio::test]
async fn tampered_tile_is_caught_with_evidence() {
    let e = requests(600);
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    let mut tile = server.get("/tile/0/001");
    tile[100] ^= 1;
    server.set("/tile/0/001", tile);
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = audit(&options(&server.url(), dir.path(), t0()))
        .await
        .unwrap();
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    let f = with_id(&r, "tile_mismatch");
    assert_eq!(f.len(), 1, "{}", r.summary());
    assert!(!f[0].evidence.is_empty());
    for ev in &f[0].evidence {
        assert!(dir.path().join(ev).is_file(), "{ev}");
    }
    // Nothing advanced.
    assert!(!dir.path().join("checkpoint").exists());
}

#[tokio::test]
async fn changed_bundle_entry_is_caught() {
    let e = requests(300);
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    let path = "/tile/entries/000";
    let mut bundle = server.get(path);
    // Change one character inside the case reference of entry 10 (same length).
    let text = String::from_utf8_lossy(&bundle).to_string();
    let at = text.find("case 10\"").unwrap() + 5;
    bundle[at] = b'9';
    server.set(path, bundle);
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = audit(&options(&server.url(), dir.path(), t0()))
        .await
        .unwrap();
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    let f = with_id(&r, "bundle_mismatch");
    assert_eq!(f.len(), 1, "{}", r.summary());
    assert_eq!(f[0].entries, vec![14]);
}

#[tokio::test]
async fn bad_checkpoint_signature_is_caught() {
    let e = requests(10);
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    let cp = String::from_utf8(server.get("/checkpoint")).unwrap();
    server.set(
        "/checkpoint",
        cp.replacen("\n14\n", "\n13\n", 1).into_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = audit(&options(&server.url(), dir.path(), t0()))
        .await
        .unwrap();
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    let f = with_id(&r, "checkpoint_bad_signature");
    assert_eq!(f.len(), 1);
    assert!(dir.path().join(&f[0].evidence[0]).is_file());
}

#[tokio::test]
async fn rewritten_or_dropped_old_entry_is_caught() {
    for mode in ["rewrite", "drop"] {
        let e = requests(300);
        let bytes = e.bytes();
        let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
        let server = StaticServer::start(files).await;
        let dir = tempfile::tempdir().unwrap();
        let (r, _) = audit(&options(&server.url(), dir.path(), t0()))
            .await
            .unwrap();
        assert_eq!(r.status, Status::Clean, "{}", r.summary());

        // The log grows, but its history changed: a validly signed tree.
        let mut e2 = requests(300);
        if mode == "rewrite" {
            e2.records.remove(20);
            let extra = requests(1).records.pop().unwrap();
            e2.records.insert(20, extra);
        } else {
            e2.records.remove(20);
        }
        for i in 0..50 {
            e2.request(t0() + Duration::days(1) + Duration::minutes(i), "later");
        }
        let bytes2 = e2.bytes();
        server.replace_all(log_files(&bytes2, bytes2.len() as u64, &e.actors.log, None));
        let (r, _) = audit(&options(&server.url(), dir.path(), t0()))
            .await
            .unwrap();
        assert_eq!(r.exit_code, 2, "{mode}: {}", r.summary());
        assert!(
            !with_id(&r, "checkpoint_inconsistent").is_empty()
                || !with_id(&r, "tile_mismatch").is_empty(),
            "{mode}: {}",
            r.summary()
        );
    }
}

#[tokio::test]
async fn same_size_fork_seen_by_a_witness_is_a_split_view() {
    let e = requests(40);
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    // A second instance of the log, same key, other entries, same size,
    // shown to a witness.
    let mut other = requests(40);
    other.records.pop();
    other.request(t0() + Duration::days(9), "hidden");
    let mut tree = MemoryTree::new();
    for b in other.bytes() {
        tree.append(&b);
    }
    let fork = checkpoint(&tree, &e.actors.log, Some(&e.actors.witness));
    let witness = StaticServer::start([(witness_path(), fork)].into()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), t0());
    opts.witnesses = vec![witness.url()];
    let (r, _) = audit(&opts).await.unwrap();
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    let f = with_id(&r, "split_view");
    assert_eq!(f.len(), 1, "{}", r.summary());
    assert!(f[0].evidence.len() >= 3);
    for ev in &f[0].evidence {
        assert!(dir.path().join(ev).is_file(), "{ev}");
    }
    let log_cp = std::fs::read(
        dir.path().join(
            f[0].evidence
                .iter()
                .find(|p| p.ends_with("log.checkpoint"))
                .unwrap(),
        ),
    )
    .unwrap();
    let wit_cp = std::fs::read(
        dir.path().join(
            f[0].evidence
                .iter()
                .find(|p| p.ends_with("witness.checkpoint"))
                .unwrap(),
        ),
    )
    .unwrap();
    assert_ne!(log_cp, wit_cp);
    assert_eq!(r.witnesses[0].status, "split_view");
}

#[tokio::test]
async fn witness_ahead_is_checked_through_the_logs_tiles() {
    // The log serves checkpoint 300 but its tiles already cover 700 (as a
    // real log does while waiting for cosignatures); the witness saw 700.
    let e = requests(700);
    let bytes = e.bytes();
    let mut files = log_files(&bytes, 700, &e.actors.log, None);
    let small = log_files(&bytes, 300, &e.actors.log, None);
    let big_cp = files["/checkpoint"].clone();
    files.insert("/checkpoint".into(), small["/checkpoint"].clone());
    for (k, v) in small {
        files.entry(k).or_insert(v);
    }
    let server = StaticServer::start(files).await;
    let witness = StaticServer::start([(witness_path(), big_cp)].into()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), t0());
    opts.witnesses = vec![witness.url()];
    let (r, _) = audit(&opts).await.unwrap();
    assert_eq!(r.status, Status::Clean, "{}", r.summary());
    assert_eq!(r.witnesses[0].status, "consistent");
    assert_eq!(r.entries_audited, 300);

    // A witness ahead with a checkpoint the log's tiles cannot prove: split view.
    let mut other = requests(700);
    other.records.truncate(650);
    for i in 0..50 {
        other.request(t0() + Duration::days(3) + Duration::minutes(i), "fork");
    }
    let mut tree = MemoryTree::new();
    for b in other.bytes() {
        tree.append(&b);
    }
    witness.set(&witness_path(), checkpoint(&tree, &e.actors.log, None));
    let (r, _) = audit(&opts).await.unwrap();
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    assert_eq!(with_id(&r, "split_view").len(), 1);
}

#[tokio::test]
async fn interrupted_mirror_resumes_without_fetching_anything_twice() {
    let e = requests(1300);
    let bytes = e.bytes();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let server = StaticServer::start(files).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), t0());
    opts.concurrency = 2;
    opts.max_fetches = Some(4);
    match audit(&opts).await {
        Err(AuditError::Interrupted(n)) => assert_eq!(n, 4),
        other => panic!("expected an interruption, got {other:?}"),
    }
    opts.max_fetches = Some(3);
    assert!(matches!(
        audit(&opts).await,
        Err(AuditError::Interrupted(3))
    ));
    opts.max_fetches = None;
    let (r, stats) = audit(&opts).await.unwrap();
    assert_eq!(r.status, Status::Clean, "{}", r.summary());
    assert!(stats.fetched > 0);
    let hits = server.hits();
    let tiles: Vec<_> = hits
        .iter()
        .filter(|(p, _)| p.starts_with("/tile/"))
        .collect();
    assert!(tiles.len() >= 10, "{tiles:?}");
    for (path, n) in tiles {
        assert_eq!(*n, 1, "{path} fetched {n} times");
    }
}
