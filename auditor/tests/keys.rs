//! The auditor and key changes: the chain of log keys followed from the
//! log's own rotation entries, checkpoints checked against the key current
//! at their size, agency key rotation, records bound to their log, and the
//! key and witness-set history in findings.json and the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use daylight_auditor::{audit, AuditDir, FindingsReport, Status};
use daylight_core::{KeyType, SignerKey};
use daylight_schemas::{Record, Role};

fn log2() -> SignerKey {
    key(ORIGIN, KeyType::Ed25519, 21)
}

/// A log whose key rotates at entry 6 (transition until day 7): two
/// requests, the rotation, a court added by the new key, two requests.
fn rotated() -> (Entries, u64) {
    let mut e = Entries::new();
    e.request(t0(), "before 1");
    e.request(t0() + Duration::hours(1), "before 2");
    let r = e.rotate_log_key(&log2(), t0() + Duration::days(7), t0() + Duration::days(1));
    let court2 = key("court2.test", KeyType::Ed25519, 22);
    e.registry(
        Record::registry_add(Role::Court, court2.verifier(), t0() + Duration::days(1)).unwrap(),
    );
    e.request(t0() + Duration::days(2), "after 1");
    e.request(t0() + Duration::days(2), "after 2");
    (e, r.index.0)
}

/// Audits `files` served at a fresh server into `dir` at `now`.
async fn audit_files(
    files: std::collections::HashMap<String, Vec<u8>>,
    dir: &std::path::Path,
    now: DateTime<Utc>,
) -> (FindingsReport, StaticServer) {
    let server = StaticServer::start(files).await;
    let (r, _) = audit(&options(&server.url(), dir, now)).await.unwrap();
    (r, server)
}

#[tokio::test]
async fn the_chain_of_log_keys_is_followed_from_rotation_entries() {
    let (e, r) = rotated();
    let bytes = e.bytes();
    let n = bytes.len() as u64;
    let (old, new) = (e.actors.log.clone(), log2());
    let now = t0() + Duration::days(3);

    // During the transition: both signatures. After it: the new one only.
    for signers in [vec![&old, &new], vec![&new]] {
        let dir = tempfile::tempdir().unwrap();
        let files = log_files_keys(&bytes, n, &signers, None, &[&old, &new]);
        let (rep, _s) = audit_files(files, dir.path(), now).await;
        assert_eq!(rep.status, Status::Clean, "{}", rep.summary());
        assert!(
            rep.summary().contains(&format!(
                "log keys: 2 over time; current {} since entry {r}",
                new.verifier()
            )),
            "{}",
            rep.summary()
        );
        // The chain starts at the oldest key, pinned on first use.
        let pinned: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("log.json")).unwrap()).unwrap();
        assert_eq!(pinned["vkey"], old.verifier().to_string());
        let h = rep.history.as_ref().expect("history");
        assert_eq!(h.size, n);
        assert_eq!(h.log_keys.len(), 2);
        assert_eq!(h.log_keys[0].vkey, old.verifier().to_string());
        assert_eq!(h.log_keys[0].from, None);
        assert_eq!(h.log_keys[0].replaced_at, Some(r));
        assert_eq!(h.log_keys[0].until.as_deref(), Some("2026-06-08T00:00:00Z"));
        assert_eq!(h.log_keys[1].vkey, new.verifier().to_string());
        assert_eq!(h.log_keys[1].from, Some(r));
        assert_eq!(h.log_keys[1].replaced_at, None);
        // Kept beside the state for the next run.
        let kept: daylight_auditor::history::History =
            serde_json::from_slice(&std::fs::read(dir.path().join("history.json")).unwrap())
                .unwrap();
        assert_eq!(&kept, h);
    }

    // Past its rotation, the old key alone does not sign for the log.
    let dir = tempfile::tempdir().unwrap();
    let files = log_files_keys(&bytes, n, &[&old], None, &[&old, &new]);
    let (rep, _s) = audit_files(files, dir.path(), now).await;
    assert_eq!(
        ids(&rep),
        set(&["checkpoint_log_key_not_current"]),
        "{}",
        rep.summary()
    );
    assert_eq!(rep.exit_code, 2);
    let f = &with_id(&rep, "checkpoint_log_key_not_current")[0];
    assert_eq!(f.details["required"], new.verifier().to_string());
    assert!(dir.path().join(&f.evidence[0]).is_file());
    // Nothing advanced.
    assert!(!dir.path().join("state.json").exists());
    assert!(!dir.path().join("history.json").exists());

    // Before the rotation entry is in the tree, the new key alone is not
    // the log's key yet (here not even known: the entries below that size
    // do not name it; a later run that knows it says not_current, below).
    let dir = tempfile::tempdir().unwrap();
    let files = log_files_keys(&bytes, r, &[&new], None, &[&old, &new]);
    let (rep, _s) = audit_files(files, dir.path(), now).await;
    assert_eq!(
        ids(&rep),
        set(&["checkpoint_bad_signature"]),
        "{}",
        rep.summary()
    );
    assert_eq!(
        with_id(&rep, "checkpoint_bad_signature")[0].details["required"],
        old.verifier().to_string()
    );

    // A key the log's entries never named (same origin): not the log's.
    let stranger = key(ORIGIN, KeyType::Ed25519, 99);
    for listed in [vec![&old, &new], vec![&old, &new, &stranger]] {
        let dir = tempfile::tempdir().unwrap();
        let files = log_files_keys(&bytes, n, &[&stranger], None, &listed);
        let (rep, _s) = audit_files(files, dir.path(), now).await;
        assert_eq!(
            ids(&rep),
            set(&["checkpoint_bad_signature"]),
            "listed {}: {}",
            listed.len(),
            rep.summary()
        );
        assert_eq!(rep.exit_code, 2);
    }
}

#[tokio::test]
async fn a_later_run_follows_a_rotation_and_checks_old_sizes_with_the_kept_chain() {
    let (e, r) = rotated();
    let bytes = e.bytes();
    let n = bytes.len() as u64;
    let (old, new) = (e.actors.log.clone(), log2());
    let now = t0() + Duration::days(3);
    let dir = tempfile::tempdir().unwrap();

    // First run before the rotation: a log of one key.
    let files = log_files_keys(&bytes, r, &[&old], None, &[&old]);
    let (rep, server) = audit_files(files, dir.path(), now).await;
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());
    assert_eq!(rep.history.as_ref().unwrap().log_keys.len(), 1);

    // The log rotated and its transition ended: the new key alone.
    server.replace_all(log_files_keys(&bytes, n, &[&new], None, &[&old, &new]));
    let opts = options(&server.url(), dir.path(), now);
    let (rep, _) = audit(&opts).await.unwrap();
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());
    assert_eq!(rep.entries_new, n - r);
    assert_eq!(rep.history.as_ref().unwrap().log_keys.len(), 2);

    // A rollback signed by the key of its size is the log's own statement:
    // an inconsistency. The same rollback signed by the new key, which was
    // not yet the log's key at that size, is not the log's statement.
    for (signer, id) in [
        (&old, "checkpoint_inconsistent"),
        (&new, "checkpoint_log_key_not_current"),
    ] {
        server.replace_all(log_files_keys(
            &bytes,
            r - 1,
            &[signer],
            None,
            &[&old, &new],
        ));
        let (rep, _) = audit(&opts).await.unwrap();
        assert_eq!(ids(&rep), set(&[id]), "{}", rep.summary());
        assert_eq!(rep.exit_code, 2);
        // The history of the verified tree is still reported.
        assert_eq!(rep.history.as_ref().unwrap().size, n);
    }
}

#[tokio::test]
async fn a_log_key_change_not_signed_by_the_old_key_is_an_integrity_failure() {
    let mut e = Entries::new();
    e.request(t0(), "before");
    let new = log2();
    // Signed by the new key, not by the key it replaces.
    let forged = e.rotate_log_key_signed_by(
        &new,
        &new.clone(),
        t0() + Duration::days(7),
        t0() + Duration::days(1),
    );
    e.request(t0() + Duration::days(2), "after");
    let bytes = e.bytes();
    let n = bytes.len() as u64;
    let old = e.actors.log.clone();
    let dir = tempfile::tempdir().unwrap();
    // Signed by both keys, so that only the rotation entry is wrong.
    let files = log_files_keys(&bytes, n, &[&old, &new], None, &[&old, &new]);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(3)).await;
    assert_eq!(
        ids(&rep),
        set(&["log_key_change_not_by_old_key"]),
        "{}",
        rep.summary()
    );
    assert_eq!(rep.exit_code, 2);
    let f = &with_id(&rep, "log_key_change_not_by_old_key")[0];
    assert_eq!(f.entries, vec![forged.index.0]);
    assert_eq!(f.details["error_code"], "registry_not_signed_by_log");
    assert!(!dir.path().join("state.json").exists());

    // The new key alone then signs nothing the chain knows.
    let dir = tempfile::tempdir().unwrap();
    let files = log_files_keys(&bytes, n, &[&new], None, &[&old, &new]);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(3)).await;
    assert_eq!(
        ids(&rep),
        set(&["log_key_change_not_by_old_key", "checkpoint_bad_signature"]),
        "{}",
        rep.summary()
    );
}

#[tokio::test]
async fn a_registry_entry_by_a_rotated_out_log_key_is_an_integrity_failure() {
    let (mut e, _) = rotated();
    let old = e.actors.log.clone();
    let court3 = key("court3.test", KeyType::Ed25519, 23);
    let late = Record::registry_add(Role::Court, court3.verifier(), t0() + Duration::days(2))
        .unwrap()
        .sign(&old, ORIGIN)
        .unwrap();
    let late = e.push(late);
    let bytes = e.bytes();
    let n = bytes.len() as u64;
    let new = log2();
    let dir = tempfile::tempdir().unwrap();
    let files = log_files_keys(&bytes, n, &[&new], None, &[&old, &new]);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(3)).await;
    assert_eq!(
        ids(&rep),
        set(&["registry_not_signed_by_log"]),
        "{}",
        rep.summary()
    );
    assert_eq!(rep.exit_code, 2);
    let f = &with_id(&rep, "registry_not_signed_by_log")[0];
    assert_eq!(f.entries, vec![late.index.0]);
    assert_eq!(f.details["log_key"], new.verifier().to_string());
    // The court it tried to add is not in the history.
    let h = rep.history;
    assert!(h.is_none(), "nothing verified, nothing kept: {h:?}");
}

/// A log from before records were bound: its registry entries are
/// version 1, signed by the log's key.
fn unbound_log() -> Entries {
    let mut e = Entries::new();
    let log = e.actors.log.clone();
    for r in &mut e.records {
        *r = r.record().sign_version_1(&log).unwrap();
        assert_eq!(r.version(), 1);
    }
    e
}

#[tokio::test]
async fn records_for_another_log_are_findings_version_1_records_are_not() {
    // Version-1 records before the log's first version-2 one.
    let mut e = unbound_log();
    let agency = e.actors.agency.clone();
    let v1 = e.request_record(t0(), "v1");
    let v1 = e.push(v1.sign_version_1(&agency).unwrap());
    let other = e.request_record(t0(), "other");
    let other = e.push(other.sign(&agency, "other.test/daylight").unwrap());
    e.request(t0(), "v2 here");
    let bytes = e.bytes();
    let dir = tempfile::tempdir().unwrap();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(1)).await;
    assert_eq!(ids(&rep), set(&["entry_wrong_log"]), "{}", rep.summary());
    assert_eq!(rep.exit_code, 1);
    let f = &with_id(&rep, "entry_wrong_log")[0];
    assert_eq!(f.entries, vec![other.index.0]);
    assert_eq!(f.details["record_log"], "other.test/daylight");
    assert!(!f.entries.contains(&v1.index.0));
}

#[tokio::test]
async fn a_version_1_record_after_the_first_version_2_one_is_a_finding() {
    // Before binding: version-1 registry entries and a version-1 request,
    // then the log binds (its first version-2 entry), then clean v2 entries.
    let mut e = unbound_log();
    let (agency, log) = (e.actors.agency.clone(), e.actors.log.clone());
    let v1 = e.request_record(t0(), "v1 before");
    let before = e.push(v1.sign_version_1(&agency).unwrap());
    let first = e.request(t0() + Duration::hours(1), "first bound");
    e.request(t0() + Duration::hours(2), "bound");
    let bytes = e.bytes();
    let dir = tempfile::tempdir().unwrap();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(1)).await;
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());

    // After it: a version-1 request (replayed from elsewhere, or let in by
    // a log that broke its rule) and a version-1 registry entry.
    let v1 = e.request_record(t0() + Duration::hours(3), "v1 after");
    let after = e.push(v1.sign_version_1(&agency).unwrap());
    let court2 = key("court2.test", KeyType::Ed25519, 23);
    let reg = Record::registry_add(Role::Court, court2.verifier(), t0() + Duration::hours(4))
        .unwrap()
        .sign_version_1(&log)
        .unwrap();
    let reg = e.push(reg);
    e.request(t0() + Duration::hours(5), "bound again");
    let bytes = e.bytes();
    let dir = tempfile::tempdir().unwrap();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(1)).await;
    assert_eq!(
        ids(&rep),
        set(&["entry_unbound_after_binding"]),
        "{}",
        rep.summary()
    );
    assert_eq!(rep.exit_code, 1);
    let found = with_id(&rep, "entry_unbound_after_binding");
    assert_eq!(found.len(), 2, "{}", rep.summary());
    for (f, at) in found.iter().zip([after.index.0, reg.index.0]) {
        assert_eq!(f.entries, vec![first.index.0, at]);
        assert_eq!(f.category, daylight_auditor::Category::Rule);
        assert_eq!(f.severity, daylight_auditor::Severity::High);
        assert_eq!(f.details["first_bound_entry"], first.index.0);
        assert!(f.title.contains(&format!("entry {at} ")), "{}", f.title);
    }
    let signer = e.records[after.index.0 as usize].signer().to_string();
    assert_eq!(found[0].details["signer"], signer);
    assert!(!found.iter().any(|f| f.entries.contains(&before.index.0)));

    // A rule like the others: a rules file may disable it.
    let dir = tempfile::tempdir().unwrap();
    let server =
        StaticServer::start(log_files(&bytes, bytes.len() as u64, &e.actors.log, None)).await;
    let mut o = options(&server.url(), dir.path(), t0() + Duration::days(1));
    o.rules =
        daylight_auditor::Rules::from_json(r#"{"disabled": ["entry_unbound_after_binding"]}"#)
            .unwrap();
    let (rep, _) = audit(&o).await.unwrap();
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());
}

#[tokio::test]
async fn an_agency_key_is_valid_before_its_rotation_and_a_finding_after() {
    let mut e = Entries::new();
    let old = e.actors.agency.clone();
    let new = key("agency.test", KeyType::Ed25519, 31);
    e.request_by(&old, t0(), "before");
    let rot = e.rotate(Role::Agency, &old, &new, t0() + Duration::days(1));
    e.request_by(&new, t0() + Duration::days(2), "new key");
    let bytes = e.bytes();
    let dir = tempfile::tempdir().unwrap();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(3)).await;
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());

    // The old key after its rotation.
    let late = e.request_by(&old, t0() + Duration::days(2), "old key");
    let bytes = e.bytes();
    let dir = tempfile::tempdir().unwrap();
    let files = log_files(&bytes, bytes.len() as u64, &e.actors.log, None);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(3)).await;
    assert_eq!(ids(&rep), set(&["signer_revoked"]), "{}", rep.summary());
    let f = &with_id(&rep, "signer_revoked")[0];
    assert_eq!(f.entries, vec![rot.index.0, late.index.0]);
    assert_eq!(f.details["replaced_by"], new.verifier().to_string());
    assert!(f.title.contains("replaced by"), "{}", f.title);

    // The identity's keys over time.
    let h = rep.history.unwrap();
    let agency: Vec<_> = h
        .identities
        .iter()
        .filter(|i| i.name == "agency.test")
        .collect();
    assert_eq!(agency.len(), 1);
    assert_eq!(agency[0].role, "agency");
    let keys = &agency[0].keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].vkey, old.verifier().to_string());
    assert_eq!(keys[0].added_at, 0);
    assert_eq!(keys[0].revoked_at, Some(rot.index.0));
    assert_eq!(keys[0].replaced_by, Some(new.verifier().to_string()));
    assert_eq!(keys[1].added_at, rot.index.0);
    assert_eq!(keys[1].replaces, Some(old.verifier().to_string()));
    assert_eq!(keys[1].revoked_at, None);
    // Identities come in name order, whatever the registration order.
    let names: Vec<_> = h.identities.iter().map(|i| i.name.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[tokio::test]
async fn the_witness_set_and_quorum_come_from_the_registry() {
    let mut e = Entries::new();
    let w1 = e.actors.witness.clone();
    let w2 = key("witness2.test", KeyType::CosignatureV1, 41);
    let server = StaticServer::start(Default::default()).await;
    let a = e
        .registry(Record::registry_witness(w1.verifier(), "https://w1.test/", None, t0()).unwrap());
    let q = e.registry(Record::registry_quorum(1, t0()).unwrap());
    e.request(t0(), "one");
    let b = e.registry(
        Record::registry_witness(w2.verifier(), &server.url(), Some(w1.verifier()), t0()).unwrap(),
    );
    e.request(t0(), "two");
    let bytes = e.bytes();
    let n = bytes.len() as u64;

    // Cosigned by w1 only, but the registry replaced it by w2 before this
    // checkpoint: below the registry's quorum (the log's metadata lists no
    // witnesses and a quorum of 0).
    let mut files = log_files_keys(&bytes, n, &[&e.actors.log], Some(&w1), &[&e.actors.log]);
    let mut meta: serde_json::Value = serde_json::from_slice(&files["/api/v1/log"]).unwrap();
    meta["witnesses"] = serde_json::json!([]);
    meta["quorum"] = serde_json::json!(0);
    files.insert("/api/v1/log".into(), serde_json::to_vec(&meta).unwrap());
    let cp = files["/checkpoint"].clone();
    files.insert(witness_path(), cp);
    server.replace_all(files);
    let dir = tempfile::tempdir().unwrap();
    let (rep, _) = audit(&options(
        &server.url(),
        dir.path(),
        t0() + Duration::days(1),
    ))
    .await
    .unwrap();
    assert_eq!(
        ids(&rep),
        set(&["checkpoint_below_quorum"]),
        "{}",
        rep.summary()
    );
    // The registry's witness URL was compared with, though the log lists none.
    assert_eq!(rep.witnesses.len(), 1, "{}", rep.summary());
    assert_eq!(rep.witnesses[0].status, "consistent");

    let h = rep.history.unwrap();
    let (k1, k2) = (w1.verifier().to_string(), w2.verifier().to_string());
    let sets: Vec<_> = h
        .witness_sets
        .iter()
        .map(|s| (s.from, s.witnesses.clone(), s.quorum))
        .collect();
    assert_eq!(
        sets,
        vec![
            (a.index.0, vec![k1.clone()], None),
            (q.index.0, vec![k1.clone()], Some(1)),
            (b.index.0, vec![k2.clone()], Some(1)),
        ]
    );
    assert_eq!(h.witnesses.len(), 2);
    assert_eq!(h.witnesses[0].removed_at, Some(b.index.0));
    assert_eq!(h.witnesses[0].replaced_by, Some(k2.clone()));
    assert_eq!(h.witnesses[0].url.as_deref(), Some("https://w1.test/"));
    assert_eq!(h.witnesses[1].url, Some(server.url()));
    assert_eq!(h.witness_set_for(b.index.0).unwrap().witnesses, vec![k1]);
    assert_eq!(h.witness_set_for(n).unwrap().witnesses, vec![k2]);

    // Cosigned by w2, the registry's witness at this size: clean.
    let mut files = log_files_keys(&bytes, n, &[&e.actors.log], Some(&w2), &[&e.actors.log]);
    files.insert("/api/v1/log".into(), serde_json::to_vec(&meta).unwrap());
    server.replace_all(files);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), t0() + Duration::days(1));
    opts.witnesses = vec![];
    let (rep, _) = audit(&opts).await.unwrap();
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());
    assert_eq!(rep.served_checkpoint.unwrap().cosignatures, 1);
}

#[tokio::test]
async fn the_report_lists_key_and_witness_set_history() {
    let (mut e, r) = rotated();
    let w = e.actors.witness.clone();
    e.registry(Record::registry_witness(w.verifier(), "https://w.test/", None, t0()).unwrap());
    e.registry(Record::registry_quorum(1, t0()).unwrap());
    let old_agency = e.actors.agency.clone();
    let new_agency = key("agency.test", KeyType::Ed25519, 32);
    e.rotate(
        Role::Agency,
        &old_agency,
        &new_agency,
        t0() + Duration::days(2),
    );
    let bytes = e.bytes();
    let n = bytes.len() as u64;
    let (old, new) = (e.actors.log.clone(), log2());
    let dir = tempfile::tempdir().unwrap();
    let files = log_files_keys(&bytes, n, &[&new], Some(&w), &[&old, &new]);
    let (rep, _s) = audit_files(files, dir.path(), t0() + Duration::days(3)).await;
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());

    let adir = AuditDir::open(dir.path()).unwrap();
    let report = daylight_auditor::report::write_report(&adir).unwrap();
    assert_eq!(Some(&report.history), rep.history.as_ref());
    let md = report.to_markdown();
    for needle in [
        "## Log keys",
        &format!(
            "| {} | first | {r} | 2026-06-08T00:00:00Z |",
            old.verifier()
        ),
        &format!("| {} | {r} | - | - |", new.verifier()),
        "## Keys of each identity",
        &format!("| agency.test | agency | {} |", old_agency.verifier()),
        "## Witness sets",
        &format!("| 1 | {} |", w.verifier()),
    ] {
        assert!(md.contains(needle), "{needle:?} not in:\n{md}");
    }
    // Deterministic: the same mirror gives the same report, byte for byte.
    let again = daylight_auditor::report::write_report(&adir).unwrap();
    assert_eq!(again.to_markdown(), md);
    let json = std::fs::read(dir.path().join("report/report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["history"]["log_keys"][1]["from"], r);
}

#[tokio::test]
async fn a_first_key_obtained_out_of_band_is_where_the_chain_starts() {
    let (e, _r) = rotated();
    let bytes = e.bytes();
    let n = bytes.len() as u64;
    let (old, new) = (e.actors.log.clone(), log2());
    let now = t0() + Duration::days(3);
    let files = log_files_keys(&bytes, n, &[&new], None, &[&old, &new]);
    let server = StaticServer::start(files).await;

    // The right first key: followed to the current one.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), now);
    opts.trusted_key = Some(old.verifier().to_string());
    let (rep, _) = audit(&opts).await.unwrap();
    assert_eq!(rep.status, Status::Clean, "{}", rep.summary());

    // A directory pinned to one key refuses another.
    opts.trusted_key = Some(new.verifier().to_string());
    let err = audit(&opts).await.unwrap_err();
    assert!(err.to_string().contains("pinned to log key"), "{err}");

    // Trusting a key the log's entries never lead from: the log's own
    // first key is not it, on the very first run.
    let stranger = key(ORIGIN, KeyType::Ed25519, 77);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), now);
    opts.trusted_key = Some(stranger.verifier().to_string());
    let (rep, _) = audit(&opts).await.unwrap();
    assert_eq!(ids(&rep), set(&["log_key_changed"]), "{}", rep.summary());
    assert_eq!(rep.exit_code, 2);

    // The new key as the first: the log presents another first key, and
    // the new key is reached from no rotation the auditor has replayed.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), now);
    opts.trusted_key = Some(new.verifier().to_string());
    let (rep, _) = audit(&opts).await.unwrap();
    assert_eq!(rep.exit_code, 2, "{}", rep.summary());
    assert!(
        ids(&rep).contains("registry_not_signed_by_log"),
        "{}",
        rep.summary()
    );
}
