//! The ledger through its public API, with real signed records of every
//! kind: order and transactions, reopening, valid and invalid references,
//! stories, statuses as time passes (forwards and backwards), outcome
//! reports, refusals, the kept records and the queries, findings and
//! metadata; then a generated log of a few hundred entries checked
//! against a plain model of the same rules, at many ticks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use daylight_core::{Hash, KeyName, KeyType, SignerKey};
use daylight_ledger::custody;
use daylight_ledger::status::flags;
use daylight_ledger::store::{day_span, status_code, DaySpan};
use daylight_ledger::summary::{epoch_day, month_key};
use daylight_ledger::{
    Added, Facts, Ledger, LedgerError, OutcomeFacts, OutcomeNumbers, Status, StatusSet, Summary,
};
use daylight_schemas::{
    Decision, Draft, EntryRef, KeyTag, Kind, Record, RefusalReason, Role, ShareRef, SignedRecord,
};
use rusqlite::types::Value as Sql;
use serde_json::{json, Value};

const ORIGIN: &str = "log.test/ledger";
const PROVIDER: &str = "messenger.example";
const AGENCY: &str = "agency.example";
const POLICE: &str = "police.example";

fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
}

fn agency() -> SignerKey {
    key(AGENCY, 20)
}

fn police() -> SignerKey {
    key(POLICE, 23)
}

fn court() -> SignerKey {
    key("court.example", 21)
}

fn provider() -> SignerKey {
    key(PROVIDER, 22)
}

fn log_key() -> SignerKey {
    key(ORIGIN, 1)
}

/// Distinct salts for every seal in the process.
fn random(buf: &mut [u8]) {
    static C: AtomicU64 = AtomicU64::new(1);
    for chunk in buf.chunks_mut(32) {
        let h = daylight_core::leaf_hash(&C.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        chunk.copy_from_slice(&h.0[..chunk.len()]);
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// The draft `v`, sealed by `key` for [`ORIGIN`] at `created`.
fn seal(key: &SignerKey, v: Value, created: DateTime<Utc>) -> SignedRecord {
    Draft::from_json(&v.to_string())
        .unwrap_or_else(|e| panic!("{e}: {v}"))
        .seal(key, ORIGIN, created, &mut random)
        .unwrap_or_else(|e| panic!("{e}: {v}"))
        .0
}

/// A reference to entry `index` naming `leaf`.
fn eref(index: u64, leaf: Hash) -> Value {
    json!({ "index": index, "leaf_hash": leaf.to_hex() })
}

const DOC: &str = "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae";

/// A request valid from the day before `created` to the day after, sealed
/// until `sealed_until` (at least a day after `created`).
fn request(
    signer: &SignerKey,
    created: DateTime<Utc>,
    sealed_until: DateTime<Utc>,
    jurisdiction: &str,
    case: &str,
) -> SignedRecord {
    seal(
        signer,
        json!({
            "kind": "request",
            "jurisdiction": jurisdiction,
            "legal_basis": "18 U.S.C. 2518",
            "issuing_authority": {"name": "Example District Court", "type": "court"},
            "provider": PROVIDER,
            "data_categories": ["traffic", "content"],
            "offence": "narcotics",
            "target_type": "account",
            "targets": ["acct:100", "acct:200"],
            "valid_from": fmt(created - days(1)),
            "valid_until": fmt(created + days(1)),
            "sealed_until": fmt(sealed_until),
            "case_reference": case,
            "order_document_sha256": DOC,
        }),
        created,
    )
}

/// An emergency valid for a day from `created`, to be ratified by
/// `ratify_by` (within 48 hours), sealed until `sealed_until`.
fn emergency(
    signer: &SignerKey,
    created: DateTime<Utc>,
    ratify_by: DateTime<Utc>,
    sealed_until: DateTime<Utc>,
    jurisdiction: &str,
    case: &str,
) -> SignedRecord {
    seal(
        signer,
        json!({
            "kind": "emergency",
            "jurisdiction": jurisdiction,
            "legal_basis": "Regulation (EU) 2023/1543 Art. 4(5)",
            "issuing_authority": {"name": "Example Prosecutor", "type": "prosecutor"},
            "provider": PROVIDER,
            "data_categories": ["subscriber", "location"],
            "offence": "kidnapping",
            "target_type": "account",
            "targets": ["acct:300"],
            "valid_from": fmt(created),
            "valid_until": fmt(created + days(1)),
            "sealed_until": fmt(sealed_until),
            "case_reference": case,
            "ground": "life_or_safety",
            "ratify_by": fmt(ratify_by),
        }),
        created,
    )
}

fn ratification(created: DateTime<Utc>, entry: Value, decision: &str) -> SignedRecord {
    seal(
        &court(),
        json!({
            "kind": "ratification",
            "emergency": entry,
            "decision": decision,
            "case_reference": "Court 351 Gs 88/26",
            "order_document_sha256": DOC,
        }),
        created,
    )
}

fn extension(created: DateTime<Utc>, entry: Value, until: DateTime<Utc>) -> SignedRecord {
    seal(
        &court(),
        json!({
            "kind": "extension",
            "entry": entry,
            "sealed_until": fmt(until),
            "reason": "investigation_ongoing",
        }),
        created,
    )
}

fn disclosure(created: DateTime<Utc>, entry: Value) -> SignedRecord {
    seal(
        &agency(),
        json!({
            "kind": "disclosure",
            "entry": entry,
            "targets_opened": [],
            "targets_withheld": [{"position": 0, "reason": "third_party_privacy"}],
            "order_document_withheld": "investigation_ongoing",
        }),
        created,
    )
}

fn release(created: DateTime<Utc>, entry: Value) -> SignedRecord {
    seal(
        &provider(),
        json!({
            "kind": "release",
            "entry": entry,
            "targets_released": 2,
            "released_at": fmt(created - secs(60)),
        }),
        created,
    )
}

/// Three custodians of the escrowed keys (threshold custody).
fn custodians() -> [SignerKey; 3] {
    [
        key("custodian-a.example", 31),
        key("custodian-b.example", 32),
        key("custodian-c.example", 33),
    ]
}

/// `custodian`'s receipt for releasing `share` for `entry`.
fn share_release(
    custodian: &SignerKey,
    created: DateTime<Utc>,
    entry: Value,
    share: ShareRef,
) -> SignedRecord {
    let entry: EntryRef = serde_json::from_value(entry).unwrap();
    Record::share_release(entry, share, created - secs(60), created)
        .unwrap()
        .sign(custodian, ORIGIN)
        .unwrap()
}

/// Share `index` of a 2-of-3 split of the key with check value `[key; 32]`.
fn share(key: u8, index: u8) -> ShareRef {
    ShareRef {
        key: KeyTag([key; 32]),
        index,
        threshold: 2,
        shares: 3,
    }
}

fn withdrawal(signer: &SignerKey, created: DateTime<Utc>, entry: Value) -> SignedRecord {
    seal(
        signer,
        json!({"kind": "withdrawal", "entry": entry, "reason": "no_longer_needed"}),
        created,
    )
}

fn refusal(created: DateTime<Utc>, entry: Value, reason: &str) -> SignedRecord {
    seal(
        &provider(),
        json!({
            "kind": "refusal",
            "entry": entry,
            "reason": reason,
            "refused_at": fmt(created - secs(30)),
        }),
        created,
    )
}

fn policy(created: DateTime<Utc>, lines: &[&str]) -> SignedRecord {
    seal(
        &provider(),
        json!({"kind": "policy", "lines": lines}),
        created,
    )
}

fn numbers(n: u32) -> OutcomeNumbers {
    OutcomeNumbers {
        communications_intercepted: 100 + n,
        incriminating_communications: 10 + n,
        persons_intercepted: 3 + n,
        arrests: 2 + n,
        convictions: n,
    }
}

fn outcome(
    created: DateTime<Utc>,
    entry: Value,
    amends: Option<Value>,
    facts: (bool, bool, bool),
    n: OutcomeNumbers,
) -> SignedRecord {
    let mut v = json!({
        "kind": "outcome",
        "entry": entry,
        "data_obtained": facts.0,
        "encryption_encountered": facts.1,
        "encryption_prevented_access": facts.2,
        "communications_intercepted": n.communications_intercepted,
        "incriminating_communications": n.incriminating_communications,
        "persons_intercepted": n.persons_intercepted,
        "arrests": n.arrests,
        "convictions": n.convictions,
    });
    if let Some(a) = amends {
        v["amends"] = a;
    }
    seal(&agency(), v, created)
}

/// A registry entry adding `who` for `role`, signed by the log's key.
fn registry(role: Role, who: &SignerKey, created: DateTime<Utc>) -> SignedRecord {
    Record::registry_add(role, who.verifier(), created)
        .unwrap()
        .sign(&log_key(), ORIGIN)
        .unwrap()
}

/// A ledger in a temporary folder and the leaf hashes of what it holds.
struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
    ledger: Ledger,
    leaves: Vec<Hash>,
}

impl Log {
    fn new() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::open(&path, ORIGIN).unwrap();
        Log {
            _dir: dir,
            path,
            ledger,
            leaves: Vec::new(),
        }
    }

    /// A valid reference to entry `i`.
    fn at(&self, i: u64) -> Value {
        eref(i, self.leaves[usize::try_from(i).unwrap()])
    }

    /// Adds `r` as the next entry, in a batch of its own.
    fn add(&mut self, r: &SignedRecord) -> (u64, Added) {
        let i = self.leaves.len() as u64;
        let mut b = self.ledger.batch().unwrap();
        assert_eq!(b.size(), i);
        let added = b.add(i, r.as_bytes(), Some(r)).unwrap();
        assert_eq!(b.size(), i + 1);
        b.commit().unwrap();
        self.leaves.push(r.leaf_hash());
        (i, added)
    }

    /// Adds `r` and checks all its references were valid.
    fn push(&mut self, r: &SignedRecord) -> u64 {
        let (i, added) = self.add(r);
        assert_eq!(added, Added::default(), "entry {i}");
        i
    }

    /// Adds `r` and returns the references found bad.
    fn bad(&mut self, r: &SignedRecord) -> (u64, Vec<EntryRef>) {
        let (i, added) = self.add(r);
        (i, added.bad_references)
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        self.ledger.tick(now).unwrap();
        assert_eq!(self.ledger.ticked_at().unwrap(), now);
        check_statuses(&self.ledger);
    }

    fn get(&self, i: u64) -> Summary {
        self.ledger.get(i).unwrap().unwrap()
    }

    /// The statuses stored for entry `i`.
    fn stored(&self, i: u64) -> Vec<Status> {
        stored_set(&self.ledger, i).to_vec()
    }
}

fn stored_set(ledger: &Ledger, i: u64) -> StatusSet {
    let bits: i64 = ledger
        .conn()
        .query_row(
            "SELECT statuses FROM entries WHERE idx = ?1",
            [i64::try_from(i).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    let bits = u16::try_from(bits).unwrap();
    assert_eq!(StatusSet::from_bits(bits).bits(), bits, "stray bits");
    StatusSet::from_bits(bits)
}

/// Every entry's stored statuses are those its stored facts give at the
/// ledger's tick; `status_members` holds exactly them, and
/// `monthly_status` counts them by the month each entry was made.
fn check_statuses(ledger: &Ledger) {
    let now = ledger.ticked_at().unwrap();
    let size = ledger.size().unwrap();
    let all = ledger.range(0, size).unwrap();
    assert_eq!(all.len() as u64, size);
    let mut members = BTreeSet::new();
    let mut per_month: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for s in &all {
        let want = s.status_set(now);
        assert_eq!(
            stored_set(ledger, s.index),
            want,
            "entry {} ({}) at {now}",
            s.index,
            s.kind_name()
        );
        assert_eq!(s.statuses(now), want.to_vec());
        for st in want.to_vec() {
            members.insert((status_code(st), i64::try_from(s.index).unwrap()));
            *per_month
                .entry((month_key(s.created.unwrap()), status_code(st)))
                .or_default() += 1;
        }
    }
    let conn = ledger.conn();
    let stored: BTreeSet<(i64, i64)> = conn
        .prepare("SELECT status, entry FROM status_members")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, members, "status_members at {now}");
    let counted: BTreeMap<(i64, i64), i64> = conn
        .prepare("SELECT month, status, n FROM monthly_status")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .into_iter()
        .inspect(|(k, n): &((i64, i64), i64)| assert!(*n >= 0, "{k:?}: {n}"))
        .filter(|(_, n)| *n != 0)
        .collect();
    assert_eq!(counted, per_month, "monthly_status at {now}");
    // Per status, whatever the month.
    for st in Status::ALL {
        let n: i64 = conn
            .query_row(
                "SELECT coalesce(sum(n), 0) FROM monthly_status WHERE status = ?1",
                [status_code(st)],
                |r| r.get(0),
            )
            .unwrap();
        let m: i64 = conn
            .query_row(
                "SELECT count(*) FROM status_members WHERE status = ?1",
                [status_code(st)],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, m, "{st:?}");
    }
}

/// The country an entry is counted under.
fn country(ledger: &Ledger, i: u64) -> Option<String> {
    ledger
        .conn()
        .query_row(
            "SELECT country FROM entries WHERE idx = ?1",
            [i64::try_from(i).unwrap()],
            |r| r.get(0),
        )
        .unwrap()
}

fn indexes(v: &[Summary]) -> Vec<u64> {
    v.iter().map(|s| s.index).collect()
}

fn count(ledger: &Ledger, sql: &str) -> i64 {
    ledger.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

const T0: &str = "2026-03-01T00:00:00Z";

// ---------------------------------------------------------------------------
// Order, transactions, files

#[test]
fn entries_are_added_in_order_and_a_dropped_batch_changes_nothing() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = request(&agency(), t0, t0 + days(60), "US-NY", "CASE-1");
    let e = emergency(&police(), t0, t0 + days(1), t0 + days(90), "DE", "CASE-2");
    {
        let mut b = log.ledger.batch().unwrap();
        let err = b.add(1, q.as_bytes(), Some(&q)).unwrap_err();
        assert!(
            matches!(err, LedgerError::OutOfOrder { got: 1, size: 0 }),
            "{err}"
        );
        b.add(0, q.as_bytes(), Some(&q)).unwrap();
        assert_eq!(b.size(), 1);
        assert_eq!(b.leaf_hash(0).unwrap(), Some(q.leaf_hash()));
        assert_eq!(b.leaf_hash(1).unwrap(), None);
        let err = b.add(0, e.as_bytes(), Some(&e)).unwrap_err();
        assert!(
            matches!(err, LedgerError::OutOfOrder { got: 0, size: 1 }),
            "{err}"
        );
        let err = b.add(2, e.as_bytes(), Some(&e)).unwrap_err();
        assert!(
            matches!(err, LedgerError::OutOfOrder { got: 2, size: 1 }),
            "{err}"
        );
        b.add(1, e.as_bytes(), Some(&e)).unwrap();
        b.set_meta("progress", "2").unwrap();
        b.set_findings("rule/x", &[("a".into(), "finding".into())])
            .unwrap();
        assert_eq!(b.size(), 2);
        // Dropped.
    }
    assert_eq!(log.ledger.size().unwrap(), 0);
    assert_eq!(log.ledger.get(0).unwrap(), None);
    assert_eq!(log.ledger.meta("progress").unwrap(), None);
    assert_eq!(
        log.ledger
            .for_each_finding(|_, _, _| Ok::<(), LedgerError>(()))
            .unwrap(),
        0
    );
    for table in [
        "entries",
        "status_members",
        "monthly_status",
        "refs",
        "records",
        "names",
        "monthly",
        "per_agency",
        "findings",
    ] {
        assert_eq!(
            count(&log.ledger, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    // The same entries again, committed.
    assert_eq!(log.push(&q), 0);
    assert_eq!(log.push(&e), 1);
    assert_eq!(log.ledger.size().unwrap(), 2);
    let mut b = log.ledger.batch().unwrap();
    let err = b.add(0, q.as_bytes(), Some(&q)).unwrap_err();
    assert!(
        matches!(err, LedgerError::OutOfOrder { got: 0, size: 2 }),
        "{err}"
    );
    drop(b);
    assert_eq!(log.stored(0), vec![Status::Sealed]);
    assert_eq!(
        log.stored(1),
        vec![Status::Sealed, Status::AwaitingRatification]
    );
    check_statuses(&log.ledger);
}

#[test]
fn a_commit_persists_and_another_origin_or_version_empties_the_ledger() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = request(&agency(), t0, t0 + days(60), "US-NY", "CASE-1");
    let reg = registry(Role::Agency, &agency(), t0);
    let q0 = log.push(&q);
    let w = log.push(&withdrawal(&agency(), t0 + secs(5), log.at(q0)));
    log.push(&reg);
    let b = log.ledger.findings_batch().unwrap();
    b.set_meta("rules", "3").unwrap();
    b.set_findings("rule/a", &[("1".into(), "body".into())])
        .unwrap();
    b.commit().unwrap();
    let before: Vec<Summary> = log.ledger.range(0, 3).unwrap();
    assert_eq!(before.len(), 3);
    let path = log.path.clone();
    let Log { _dir, ledger, .. } = log;
    drop(ledger);

    let ledger = Ledger::open(&path, ORIGIN).unwrap();
    assert_eq!(ledger.path(), path.as_path());
    assert_eq!(ledger.size().unwrap(), 3);
    assert_eq!(ledger.range(0, 3).unwrap(), before);
    assert_eq!(ledger.ticked_at().unwrap(), t0);
    assert_eq!(ledger.referrers(q0).unwrap(), vec![w]);
    assert_eq!(
        stored_set(&ledger, q0).to_vec(),
        vec![Status::Sealed, Status::Withdrawn]
    );
    assert_eq!(ledger.meta("rules").unwrap().as_deref(), Some("3"));
    assert_eq!(ledger.meta("origin").unwrap().as_deref(), Some(ORIGIN));
    assert_eq!(
        ledger.meta("version").unwrap(),
        Some(daylight_ledger::store::SCHEMA_VERSION.to_string())
    );
    assert_eq!(
        ledger.records(Kind::Registry).unwrap(),
        vec![(2, reg.to_bytes())]
    );
    check_statuses(&ledger);

    // A reader beside the writer sees the same, and refuses another log.
    let reader = Ledger::read_only(&path, ORIGIN).unwrap();
    assert_eq!(reader.size().unwrap(), 3);
    assert_eq!(reader.range(0, 3).unwrap(), before);
    let err = Ledger::read_only(&path, "another.log/x").err().unwrap();
    assert!(matches!(err, LedgerError::Unusable(_)), "{err}");
    let err = Ledger::read_only(&path.with_extension("nothing"), ORIGIN)
        .err()
        .unwrap();
    assert!(matches!(err, LedgerError::Unusable(_)), "{err}");
    drop(reader);

    // Another schema version: the reader refuses it, the writer empties it.
    ledger
        .conn()
        .execute("UPDATE meta SET value = 1 WHERE key = 'version'", [])
        .unwrap();
    drop(ledger);
    let err = Ledger::read_only(&path, ORIGIN).err().unwrap();
    assert!(matches!(err, LedgerError::Unusable(_)), "{err}");
    let ledger = Ledger::open(&path, ORIGIN).unwrap();
    assert_eq!(ledger.size().unwrap(), 0);
    assert_eq!(ledger.meta("rules").unwrap(), None);
    drop(ledger);

    // Refill, then open as another log's.
    let mut ledger = Ledger::open(&path, ORIGIN).unwrap();
    let mut b = ledger.batch().unwrap();
    b.add(0, q.as_bytes(), Some(&q)).unwrap();
    b.add(1, reg.as_bytes(), Some(&reg)).unwrap();
    b.set_meta("rules", "1").unwrap();
    b.set_findings("rule/a", &[("1".into(), "body".into())])
        .unwrap();
    b.commit().unwrap();
    drop(ledger);
    let ledger = Ledger::open(&path, "another.log/x").unwrap();
    assert_eq!(ledger.size().unwrap(), 0);
    assert_eq!(ledger.get(0).unwrap(), None);
    assert!(ledger.records(Kind::Registry).unwrap().is_empty());
    assert_eq!(ledger.meta("rules").unwrap(), None);
    assert_eq!(
        ledger.meta("origin").unwrap().as_deref(),
        Some("another.log/x")
    );
    assert_eq!(
        ledger
            .for_each_finding(|_, _, _| Ok::<(), LedgerError>(()))
            .unwrap(),
        0
    );
    for table in ["status_members", "monthly", "per_agency", "names", "refs"] {
        assert_eq!(
            count(&ledger, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    drop(ledger);
    // And back: the original log's ledger is empty too now.
    let ledger = Ledger::open(&path, ORIGIN).unwrap();
    assert_eq!(ledger.size().unwrap(), 0);
}

#[test]
fn a_garbage_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = t(T0);
    let q = request(&agency(), t0, t0 + days(60), "US-NY", "CASE-1");
    let garbage: [Vec<u8>; 3] = [
        b"this is not a database\n".repeat(500),
        b"short".to_vec(),
        {
            // A SQLite header followed by nonsense.
            let mut v = b"SQLite format 3\0".to_vec();
            v.extend(std::iter::repeat_n(0xa5u8, 8192));
            v
        },
    ];
    for (n, bytes) in garbage.iter().enumerate() {
        let path = dir.path().join(format!("ledger-{n}.db"));
        std::fs::write(&path, bytes).unwrap();
        let mut ledger = Ledger::open(&path, ORIGIN).unwrap_or_else(|e| panic!("garbage {n}: {e}"));
        assert_eq!(ledger.size().unwrap(), 0, "garbage {n}");
        assert_eq!(ledger.meta("origin").unwrap().as_deref(), Some(ORIGIN));
        let mut b = ledger.batch().unwrap();
        b.add(0, q.as_bytes(), Some(&q)).unwrap();
        b.commit().unwrap();
        drop(ledger);
        let ledger = Ledger::open(&path, ORIGIN).unwrap();
        assert_eq!(ledger.size().unwrap(), 1, "garbage {n}");
        assert_eq!(
            ledger.get(0).unwrap().unwrap().leaf_hash,
            q.leaf_hash(),
            "garbage {n}"
        );
    }
}

fn page_size(ledger: &Ledger) -> i64 {
    ledger
        .conn()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_new_ledger_has_large_pages_and_an_old_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = t(T0);
    let q = request(&agency(), t0, t0 + days(60), "US-NY", "CASE-1");

    let new = dir.path().join("new.db");
    let ledger = Ledger::open(&new, ORIGIN).unwrap();
    assert_eq!(page_size(&ledger), daylight_ledger::store::PAGE_SIZE);
    assert_ne!(daylight_ledger::store::PAGE_SIZE, 4096);

    // A file made with SQLite's default page size (as every ledger was
    // before) is read and written as it is, not emptied or rebuilt.
    let old = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&old).unwrap();
        conn.execute_batch("PRAGMA page_size=4096; CREATE TABLE probe(x)")
            .unwrap();
    }
    let mut ledger = Ledger::open(&old, ORIGIN).unwrap();
    let mut b = ledger.batch().unwrap();
    b.add(0, q.as_bytes(), Some(&q)).unwrap();
    b.commit().unwrap();
    drop(ledger);
    let ledger = Ledger::open(&old, ORIGIN).unwrap();
    assert_eq!(page_size(&ledger), 4096);
    assert_eq!(ledger.size().unwrap(), 1);
    assert_eq!(ledger.get(0).unwrap().unwrap().leaf_hash, q.leaf_hash());
}

#[test]
fn clear_empties_entries_and_findings_but_keeps_the_log_and_tick() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "C"));
    log.push(&release(t0 + secs(9), log.at(q)));
    log.push(&policy(t0, &["daylight-max-targets 5"]));
    let b = log.ledger.findings_batch().unwrap();
    b.set_meta("mine", "x").unwrap();
    b.set_findings("s", &[("k".into(), "v".into())]).unwrap();
    b.commit().unwrap();
    log.ledger.clear().unwrap();
    assert_eq!(log.ledger.size().unwrap(), 0);
    assert_eq!(log.ledger.meta("mine").unwrap(), None);
    assert_eq!(log.ledger.meta("origin").unwrap().as_deref(), Some(ORIGIN));
    assert_eq!(log.ledger.ticked_at().unwrap(), t0);
    assert!(log.ledger.records(Kind::Policy).unwrap().is_empty());
    assert_eq!(
        log.ledger
            .for_each_finding(|_, _, _| Ok::<(), LedgerError>(()))
            .unwrap(),
        0
    );
    assert_eq!(count(&log.ledger, "SELECT count(*) FROM status_members"), 0);
    assert_eq!(count(&log.ledger, "SELECT count(*) FROM monthly_status"), 0);
    // It takes entries from 0 again.
    log.leaves.clear();
    assert_eq!(
        log.push(&request(&agency(), t0, t0 + days(9), "DE", "D")),
        0
    );
    check_statuses(&log.ledger);
}

// ---------------------------------------------------------------------------
// References and stories

#[test]
fn a_valid_reference_links_the_entries() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "C-1"));
    let w = log.push(&withdrawal(&agency(), t0 + secs(1), log.at(q)));
    let s = log.get(w);
    assert_eq!(s.kind, Some(Kind::Withdrawal));
    assert_eq!(s.references, vec![q]);
    assert_eq!(s.about, Some(q));
    assert_eq!(s.root, Some(q));
    assert_eq!(s.amends, None);
    assert_eq!(log.ledger.referrers(q).unwrap(), vec![w]);
    assert_eq!(log.ledger.referrers(w).unwrap(), Vec::<u64>::new());
    let target = log.get(q);
    assert_eq!(target.flags, flags::WITHDRAWAL);
    assert_eq!(target.root, Some(q));
    assert_eq!(target.about, None);
    assert_eq!(log.stored(q), vec![Status::Sealed, Status::Withdrawn]);
    // Two more: the referrers in order, the flags summed.
    let r = log.push(&release(t0 + secs(2), log.at(q)));
    let d = log.push(&disclosure(t0 + secs(3), log.at(q)));
    assert_eq!(log.ledger.referrers(q).unwrap(), vec![w, r, d]);
    assert_eq!(
        log.get(q).flags,
        flags::WITHDRAWAL | flags::RELEASE | flags::DISCLOSURE
    );
    assert_eq!(
        log.stored(q),
        vec![Status::Disclosed, Status::Released, Status::Withdrawn]
    );
    // Within one batch, a reference to an entry added earlier in it.
    let q2 = request(&agency(), t0, t0 + days(60), "US-NY", "C-2");
    let mut b = log.ledger.batch().unwrap();
    let i = b.size();
    assert_eq!(
        b.add(i, q2.as_bytes(), Some(&q2)).unwrap(),
        Added::default()
    );
    let wd = withdrawal(&agency(), t0 + secs(4), eref(i, q2.leaf_hash()));
    assert_eq!(b.add_bytes(i + 1, wd.as_bytes()).unwrap(), Added::default());
    b.commit().unwrap();
    log.leaves.extend([q2.leaf_hash(), wd.leaf_hash()]);
    assert_eq!(log.get(i + 1).about, Some(i));
    assert_eq!(log.ledger.referrers(i).unwrap(), vec![i + 1]);
    assert_eq!(log.stored(i), vec![Status::Sealed, Status::Withdrawn]);
    check_statuses(&log.ledger);
}

#[test]
fn an_invalid_reference_is_reported_and_changes_nothing() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "C-1"));
    let e = log.push(&emergency(
        &police(),
        t0,
        t0 + days(1),
        t0 + days(90),
        "DE",
        "C-2",
    ));
    let o = log.push(&outcome(
        t0 + secs(1),
        log.at(q),
        None,
        (true, false, false),
        numbers(1),
    ));
    let snapshot = |log: &Log| -> Vec<(Summary, Vec<Status>, Vec<u64>)> {
        (0..log.ledger.size().unwrap())
            .map(|i| (log.get(i), log.stored(i), log.ledger.referrers(i).unwrap()))
            .collect()
    };
    let before = snapshot(&log);
    let wrong = eref(q, log.leaves[usize::try_from(e).unwrap()]);
    let wrong_e = eref(e, Hash([0xab; 32]));

    // A wrong leaf hash, for every kind that refers.
    let records = vec![
        withdrawal(&agency(), t0 + secs(2), wrong.clone()),
        release(t0 + secs(2), wrong.clone()),
        disclosure(t0 + secs(2), wrong.clone()),
        refusal(t0 + secs(2), wrong.clone(), "offence_not_allowed"),
        extension(t0 + secs(2), wrong.clone(), t0 + days(400)),
        ratification(t0 + secs(2), wrong_e.clone(), "granted"),
        ratification(t0 + secs(2), wrong_e.clone(), "denied"),
        outcome(
            t0 + secs(2),
            wrong.clone(),
            None,
            (false, false, false),
            numbers(2),
        ),
    ];
    for r in &records {
        let (i, bad) = log.bad(r);
        assert_eq!(bad, r.references(), "{}", r.kind());
        assert_eq!(bad.len(), 1);
        let s = log.get(i);
        assert_eq!(
            (s.about, s.root, s.amends),
            (None, None, None),
            "{}",
            r.kind()
        );
        assert_eq!(s.references, vec![bad[0].index.get()]);
        assert_eq!(s.jurisdiction, None, "{}", r.kind());
        assert_eq!(s.request_agency, None, "{}", r.kind());
        assert_eq!(s.flags, 0);
    }
    // The refused and reported-on entries are as they were, the earlier
    // outcome report still the latest.
    let after = snapshot(&log);
    assert_eq!(after[..before.len()], before[..]);
    assert!(log.get(o).outcome.unwrap().latest);
    assert_eq!(log.get(q).sealed_in_force, Some(t0 + days(60)));

    // A reference to a later index, with the leaf hash the entry there
    // will have: not valid either.
    let next = log.ledger.size().unwrap();
    let later = request(&agency(), t0, t0 + days(60), "US-NY", "C-3");
    let w = withdrawal(&agency(), t0 + secs(3), eref(next + 1, later.leaf_hash()));
    let (wi, bad) = log.bad(&w);
    assert_eq!(wi, next);
    assert_eq!(bad, w.references());
    let li = log.push(&later);
    assert_eq!(li, next + 1);
    assert_eq!(log.ledger.referrers(li).unwrap(), Vec::<u64>::new());
    assert_eq!(log.get(li).flags, 0);
    assert_eq!(log.stored(li), vec![Status::Sealed]);
    assert_eq!(log.get(wi).about, None);

    // A reference to itself (its own index) and to entries that do not
    // exist.
    let own = log.ledger.size().unwrap();
    for (idx, leaf) in [
        (own, log.leaves[0]),
        (own + 1000, log.leaves[0]),
        (9_007_199_254_740_991, Hash([1; 32])),
    ] {
        let r = release(t0 + secs(4), eref(idx, leaf));
        let (i, bad) = log.bad(&r);
        assert_eq!(bad, r.references());
        assert_eq!(log.get(i).about, None);
        assert_eq!(log.get(i).references, vec![idx]);
    }
    let after = snapshot(&log);
    assert_eq!(after[..before.len()], before[..]);
    // Nothing but the first outcome report refers to anything.
    assert_eq!(count(&log.ledger, "SELECT count(*) FROM refs"), 1);

    // Two references, one bad: only it is reported; the valid one counts.
    let o2 = outcome(
        t0 + secs(5),
        log.at(q),
        Some(eref(o, Hash([7; 32]))),
        (true, true, true),
        numbers(3),
    );
    let (i2, bad) = log.bad(&o2);
    assert_eq!(bad, vec![o2.references()[1]]);
    let s = log.get(i2);
    assert_eq!((s.about, s.amends, s.root), (Some(q), None, Some(q)));
    assert_eq!(s.references, vec![q, o]);
    assert!(!log.get(o).outcome.unwrap().latest);
    // First bad, second good: not about anything, but it amends.
    let o3 = outcome(
        t0 + secs(6),
        eref(q, Hash([7; 32])),
        Some(log.at(i2)),
        (true, false, false),
        numbers(4),
    );
    let (i3, bad) = log.bad(&o3);
    assert_eq!(bad, vec![o3.references()[0]]);
    let s = log.get(i3);
    assert_eq!((s.about, s.amends, s.root), (None, Some(i2), None));
    assert_eq!(s.jurisdiction, None);
    assert!(log.get(i2).outcome.unwrap().latest);
    assert_eq!(log.ledger.referrers(i2).unwrap(), vec![i3]);
    check_statuses(&log.ledger);
}

#[test]
fn stories_gather_around_their_authorisation() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let e = log.push(&emergency(
        &police(),
        t0,
        t0 + days(1),
        t0 + days(90),
        "DE",
        "E-1",
    ));
    let rat = log.push(&ratification(t0 + secs(1), log.at(e), "granted"));
    let rat_disclosed = log.push(&disclosure(t0 + secs(2), log.at(rat)));
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q-1"));
    let about_q = vec![
        log.push(&release(t0 + secs(3), log.at(q))),
        log.push(&withdrawal(&agency(), t0 + secs(4), log.at(q))),
        log.push(&refusal(t0 + secs(5), log.at(q), "too_many_targets")),
        log.push(&extension(t0 + secs(6), log.at(q), t0 + days(200))),
        log.push(&disclosure(t0 + secs(7), log.at(q))),
        log.push(&outcome(
            t0 + secs(8),
            log.at(q),
            None,
            (true, false, false),
            numbers(0),
        )),
    ];
    let pol = log.push(&policy(t0, &["daylight-max-targets 5"]));
    let reg = log.push(&registry(Role::Court, &court(), t0));
    let q2 = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q-2"));
    // An entry about an entry about the request (a release's refusal makes
    // no sense, but its story is still the request's).
    let deep = log.push(&withdrawal(&agency(), t0 + secs(9), log.at(about_q[0])));
    // A late entry about the emergency.
    let late = log.push(&withdrawal(&police(), t0 + secs(10), log.at(e)));

    assert_eq!(log.get(e).root, Some(e));
    assert_eq!(log.get(q).root, Some(q));
    assert_eq!(log.get(rat).root, Some(e));
    assert_eq!(log.get(rat).about, Some(e));
    assert_eq!(log.get(rat_disclosed).about, Some(rat));
    assert_eq!(log.get(rat_disclosed).root, Some(e));
    for &i in &about_q {
        assert_eq!(log.get(i).about, Some(q), "{i}");
        assert_eq!(log.get(i).root, Some(q), "{i}");
    }
    assert_eq!(log.get(deep).about, Some(about_q[0]));
    assert_eq!(log.get(deep).root, Some(q));
    assert_eq!(log.get(pol).root, None);
    assert_eq!(log.get(reg).root, None);
    assert_eq!(log.get(q2).root, Some(q2));
    assert_eq!(log.get(late).root, Some(e));
    // The disclosure of the ratification opens the ratification, not the
    // emergency.
    assert_eq!(log.get(rat).flags, flags::DISCLOSURE);
    assert_eq!(log.get(e).flags, flags::GRANTED | flags::WITHDRAWAL);
    assert_eq!(
        log.stored(e),
        vec![Status::Sealed, Status::Ratified, Status::Withdrawn]
    );

    let story_e = vec![e, rat, rat_disclosed, late];
    let mut story_q = vec![q];
    story_q.extend(&about_q);
    story_q.push(deep);
    let stories = |lo, hi| indexes(&log.ledger.stories(lo, hi).unwrap());
    assert_eq!(stories(e, e), story_e);
    assert_eq!(stories(q, q), story_q);
    assert_eq!(stories(e, q), [story_e.clone(), story_q.clone()].concat());
    assert_eq!(
        stories(0, 1000),
        [story_e.clone(), story_q.clone(), vec![q2]].concat()
    );
    assert_eq!(stories(q + 1, q2 - 1), Vec::<u64>::new());
    assert_eq!(stories(q2, q2), vec![q2]);
    assert_eq!(stories(e + 1, q - 1), Vec::<u64>::new());
    // Each story's entries have that root, in index order.
    for s in log.ledger.stories(0, 1000).unwrap() {
        assert!(s.root.is_some());
    }
}

// ---------------------------------------------------------------------------
// Statuses

#[test]
fn a_request_goes_from_sealed_to_overdue_and_back_with_extensions() {
    let mut log = Log::new();
    let t0 = t(T0);
    let seal_at = t0 + days(60);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, seal_at, "US-NY", "Q"));
    assert_eq!(log.get(q).sealed_until, Some(seal_at));
    assert_eq!(log.get(q).sealed_in_force, Some(seal_at));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(seal_at - secs(1));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    // Sealed-until passes at its second.
    log.tick(seal_at);
    assert_eq!(log.stored(q), vec![Status::Overdue]);
    log.tick(seal_at - secs(1));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(t0 - days(30));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(seal_at + days(10));
    assert_eq!(log.stored(q), vec![Status::Overdue]);
    // Far back, in one step.
    log.tick(t0 - days(3000));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(seal_at + days(10));
    assert_eq!(log.stored(q), vec![Status::Overdue]);

    // An extension while overdue: sealed again, until the new date.
    let until = seal_at + days(100);
    let x = log.push(&extension(seal_at + days(10), log.at(q), until));
    let s = log.get(q);
    assert_eq!(s.sealed_until, Some(seal_at));
    assert_eq!(s.sealed_in_force, Some(until));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    let xs = log.get(x);
    assert_eq!(xs.sealed_until, Some(until));
    assert_eq!(xs.sealed_in_force, None);
    assert_eq!(log.stored(x), Vec::<Status>::new());
    check_statuses(&log.ledger);
    // The deadline moved.
    assert_eq!(
        log.ledger
            .deadlines_between(seal_at.timestamp(), seal_at.timestamp())
            .unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(
        log.ledger
            .deadlines_between(until.timestamp(), until.timestamp())
            .unwrap(),
        vec![q]
    );
    // An extension to an earlier date than the one in force changes nothing.
    log.push(&extension(
        seal_at + days(11),
        log.at(q),
        seal_at + days(50),
    ));
    assert_eq!(log.get(q).sealed_in_force, Some(until));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(seal_at + days(50));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(until - secs(1));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(until);
    assert_eq!(log.stored(q), vec![Status::Overdue]);
    log.tick(until - secs(1));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    log.tick(until + days(1));
    assert_eq!(log.stored(q), vec![Status::Overdue]);
    // A later extension of the same entry moves it once more.
    let until2 = until + days(30);
    log.push(&extension(until + days(1), log.at(q), until2));
    assert_eq!(log.get(q).sealed_in_force, Some(until2));
    assert_eq!(log.stored(q), vec![Status::Sealed]);

    // A disclosure ends sealed and overdue for good.
    log.push(&disclosure(until + days(2), log.at(q)));
    assert_eq!(log.stored(q), vec![Status::Disclosed]);
    for now in [until2 + days(1), t0 - days(1), until2, until2 - secs(1)] {
        log.tick(now);
        assert_eq!(log.stored(q), vec![Status::Disclosed], "{now}");
    }
}

#[test]
fn withdrawals_releases_and_refusals_add_their_statuses() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q"));
    log.push(&withdrawal(&agency(), t0 + secs(1), log.at(q)));
    assert_eq!(log.stored(q), vec![Status::Sealed, Status::Withdrawn]);
    log.push(&release(t0 + secs(2), log.at(q)));
    assert_eq!(
        log.stored(q),
        vec![Status::Sealed, Status::Released, Status::Withdrawn]
    );
    log.push(&refusal(t0 + secs(3), log.at(q), "category_denied"));
    assert_eq!(
        log.stored(q),
        vec![
            Status::Sealed,
            Status::Released,
            Status::Withdrawn,
            Status::Refused
        ]
    );
    assert_eq!(
        log.get(q).flags,
        flags::WITHDRAWAL | flags::RELEASE | flags::REFUSAL
    );
    // Twice the same: no change.
    log.push(&refusal(t0 + secs(4), log.at(q), "category_denied"));
    assert_eq!(
        log.get(q).flags,
        flags::WITHDRAWAL | flags::RELEASE | flags::REFUSAL
    );
    log.tick(t0 + days(61));
    assert_eq!(
        log.stored(q),
        vec![
            Status::Overdue,
            Status::Released,
            Status::Withdrawn,
            Status::Refused
        ]
    );
    // An emergency refused: refused and awaiting ratification.
    let e = log.push(&emergency(
        &police(),
        t0 + days(61),
        t0 + days(62),
        t0 + days(90),
        "DE",
        "E",
    ));
    log.push(&refusal(t0 + days(61), log.at(e), "jurisdiction_denied"));
    assert_eq!(
        log.stored(e),
        vec![
            Status::Sealed,
            Status::AwaitingRatification,
            Status::Refused
        ]
    );
    // Entries about a non-authorisation give it no status.
    let r = log.push(&release(t0 + days(61), log.at(e)));
    log.push(&withdrawal(&agency(), t0 + days(61), log.at(r)));
    assert_eq!(log.get(r).flags, flags::WITHDRAWAL);
    assert_eq!(log.stored(r), Vec::<Status>::new());
    check_statuses(&log.ledger);
}

#[test]
fn custodians_shares_release_a_request_only_once_they_put_a_key_together() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let [a, b, c] = custodians();
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q"));
    let other = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "O"));
    let sealed = vec![Status::Sealed];
    let released = vec![Status::Sealed, Status::Released];
    // One share, the same share again, another custodian naming the same
    // index, a share of another key, a share of another split of the key,
    // and the second share of the key released for another request: none
    // puts the key together for q.
    let s1 = log.push(&share_release(&a, t0 + secs(1), log.at(q), share(1, 1)));
    assert_eq!(log.stored(q), sealed);
    assert_eq!(log.get(q).flags, 0, "one share is no release");
    log.push(&share_release(&a, t0 + secs(2), log.at(q), share(1, 1)));
    log.push(&share_release(&b, t0 + secs(3), log.at(q), share(1, 1)));
    log.push(&share_release(&b, t0 + secs(4), log.at(q), share(2, 2)));
    let other_split = ShareRef {
        shares: 4,
        ..share(1, 3)
    };
    log.push(&share_release(&c, t0 + secs(5), log.at(q), other_split));
    log.push(&share_release(&c, t0 + secs(6), log.at(other), share(1, 3)));
    assert_eq!(log.stored(q), sealed);
    assert_eq!(log.stored(other), sealed);
    assert_eq!(log.get(q).flags, 0);
    // The second share of the key, from another custodian: released.
    let s2 = log.push(&share_release(&c, t0 + secs(7), log.at(q), share(1, 3)));
    assert_eq!(log.stored(q), released);
    assert_eq!(log.get(q).flags, flags::SHARES);
    check_statuses(&log.ledger);
    // A share release reads back with its share, and sets no bit of its own.
    let got = log.get(s1);
    assert_eq!(got.share, Some(share(1, 1)));
    assert!(got.is_share_release() && got.flag_bit() == 0);
    assert_eq!(got.root, Some(q));
    assert!(!log.get(q).is_share_release());
    // The queries by key.
    let of_key = log.ledger.shares_of_key(&KeyTag([1; 32])).unwrap();
    assert_eq!(of_key.first().map(|s| s.index), Some(s1));
    assert_eq!(of_key.last().map(|s| s.index), Some(s2));
    assert_eq!(of_key.len(), 6);
    assert_eq!(
        log.ledger.share_keys().unwrap(),
        vec![KeyTag([1; 32]), KeyTag([2; 32])]
    );
    // Shares naming an entry that is not an authorisation give it nothing.
    let [x, y, _] = custodians();
    log.push(&share_release(&x, t0 + secs(8), log.at(s1), share(3, 1)));
    log.push(&share_release(&y, t0 + secs(9), log.at(s1), share(3, 2)));
    assert_eq!(log.get(s1).flags, 0);
    assert_eq!(log.stored(s1), Vec::<Status>::new());
    // What was written stays after reopening; a provider's release of
    // `other` sets its own bit as before.
    log.push(&release(t0 + secs(10), log.at(other)));
    assert_eq!(log.get(other).flags, flags::RELEASE);
    let reopened = Ledger::open(&log.path, ORIGIN).unwrap();
    assert_eq!(reopened.get(q).unwrap().unwrap().flags, flags::SHARES);
    assert_eq!(reopened.get(s2).unwrap().unwrap().share, Some(share(1, 3)));
    check_statuses(&log.ledger);
}

#[test]
fn emergencies_are_awaiting_ratified_denied_or_unratified() {
    let mut log = Log::new();
    let t0 = t(T0);
    let by = t0 + Duration::hours(24);
    let sealed = t0 + days(90);
    log.tick(t0);
    let em =
        |log: &mut Log, case: &str| log.push(&emergency(&police(), t0, by, sealed, "DE", case));
    let waiting = em(&mut log, "E-0");
    let granted = em(&mut log, "E-1");
    let denied = em(&mut log, "E-2");
    let denied_then_granted = em(&mut log, "E-3");
    let late = em(&mut log, "E-4");
    for i in [waiting, granted, denied, denied_then_granted, late] {
        assert_eq!(
            log.stored(i),
            vec![Status::Sealed, Status::AwaitingRatification]
        );
        assert_eq!(log.get(i).ratify_by, Some(by));
    }
    log.push(&ratification(t0 + secs(1), log.at(granted), "granted"));
    log.push(&ratification(t0 + secs(1), log.at(denied), "denied"));
    log.push(&ratification(
        t0 + secs(1),
        log.at(denied_then_granted),
        "denied",
    ));
    assert_eq!(log.stored(granted), vec![Status::Sealed, Status::Ratified]);
    assert_eq!(log.get(granted).flags, flags::GRANTED);
    assert_eq!(log.stored(denied), vec![Status::Sealed, Status::Denied]);
    assert_eq!(log.get(denied).flags, flags::DENIED);
    log.push(&ratification(
        t0 + secs(2),
        log.at(denied_then_granted),
        "granted",
    ));
    assert_eq!(
        log.stored(denied_then_granted),
        vec![Status::Sealed, Status::Ratified]
    );
    // The deadline passes only after its second.
    log.tick(by);
    assert_eq!(
        log.stored(waiting),
        vec![Status::Sealed, Status::AwaitingRatification]
    );
    log.tick(by + secs(1));
    assert_eq!(
        log.stored(waiting),
        vec![Status::Sealed, Status::Unratified]
    );
    assert_eq!(log.stored(late), vec![Status::Sealed, Status::Unratified]);
    assert_eq!(log.stored(granted), vec![Status::Sealed, Status::Ratified]);
    assert_eq!(log.stored(denied), vec![Status::Sealed, Status::Denied]);
    // Back in time: awaiting again.
    log.tick(t0 + Duration::hours(1));
    assert_eq!(
        log.stored(waiting),
        vec![Status::Sealed, Status::AwaitingRatification]
    );
    log.tick(sealed + days(1));
    assert_eq!(
        log.stored(waiting),
        vec![Status::Overdue, Status::Unratified]
    );
    // A ratification after the deadline still ratifies.
    log.push(&ratification(by + days(1), log.at(late), "granted"));
    assert_eq!(log.stored(late), vec![Status::Overdue, Status::Ratified]);
    // A ratification of a request sets its bit, but requests have no
    // ratification status.
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q"));
    log.push(&ratification(sealed + days(1), log.at(q), "granted"));
    assert_eq!(log.get(q).flags, flags::GRANTED);
    assert_eq!(log.stored(q), vec![Status::Overdue]);
    log.tick(t0);
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    assert_eq!(log.stored(late), vec![Status::Sealed, Status::Ratified]);
    assert_eq!(
        log.stored(waiting),
        vec![Status::Sealed, Status::AwaitingRatification]
    );
}

#[test]
fn a_new_authorisation_takes_its_statuses_at_the_last_tick() {
    let mut log = Log::new();
    let t0 = t(T0);
    // Ticked long after it was made: overdue and unratified from the start.
    log.tick(t0 + days(365));
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q"));
    let e = log.push(&emergency(
        &police(),
        t0,
        t0 + days(1),
        t0 + days(90),
        "DE",
        "E",
    ));
    assert_eq!(log.stored(q), vec![Status::Overdue]);
    assert_eq!(log.stored(e), vec![Status::Overdue, Status::Unratified]);
    check_statuses(&log.ledger);
    // Ticked before it was made: sealed and awaiting.
    log.tick(t0 - days(10));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
    assert_eq!(
        log.stored(e),
        vec![Status::Sealed, Status::AwaitingRatification]
    );
    // The same tick again changes nothing.
    log.tick(t0 - days(10));
    assert_eq!(log.stored(q), vec![Status::Sealed]);
}

// ---------------------------------------------------------------------------
// Outcome reports and refusals

#[test]
fn a_later_outcome_report_replaces_the_earlier_one() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q"));
    let e = log.push(&emergency(
        &police(),
        t0,
        t0 + days(1),
        t0 + days(90),
        "DE",
        "E",
    ));
    let first = log.push(&outcome(
        t0 + days(2),
        log.at(q),
        None,
        (true, true, false),
        numbers(1),
    ));
    let s = log.get(first);
    assert_eq!(
        s.outcome,
        Some(OutcomeFacts {
            data_obtained: true,
            encryption_encountered: true,
            encryption_prevented_access: false,
            latest: true
        })
    );
    assert_eq!(s.outcome_numbers, Some(numbers(1)));
    assert_eq!(s.jurisdiction.as_deref(), Some("US-NY"));
    assert_eq!(s.about, Some(q));
    assert_eq!(s.root, Some(q));
    assert_eq!(s.request_agency, None);
    let on_e = log.push(&outcome(
        t0 + days(2),
        log.at(e),
        None,
        (false, false, false),
        numbers(7),
    ));
    assert_eq!(log.get(on_e).jurisdiction.as_deref(), Some("DE"));
    assert!(log.get(on_e).outcome.unwrap().latest);
    assert!(log.get(first).outcome.unwrap().latest);
    // The second report on the request amends the first.
    let second = log.push(&outcome(
        t0 + days(3),
        log.at(q),
        Some(log.at(first)),
        (true, true, true),
        numbers(2),
    ));
    let s = log.get(second);
    assert_eq!(s.amends, Some(first));
    assert_eq!(s.references, vec![q, first]);
    assert_eq!(
        s.outcome,
        Some(OutcomeFacts {
            data_obtained: true,
            encryption_encountered: true,
            encryption_prevented_access: true,
            latest: true
        })
    );
    assert_eq!(s.outcome_numbers, Some(numbers(2)));
    let f = log.get(first);
    assert_eq!(
        f.outcome,
        Some(OutcomeFacts {
            data_obtained: true,
            encryption_encountered: true,
            encryption_prevented_access: false,
            latest: false
        })
    );
    assert_eq!(f.outcome_numbers, Some(numbers(1)));
    assert!(log.get(on_e).outcome.unwrap().latest);
    assert_eq!(log.ledger.referrers(first).unwrap(), vec![second]);
    // A third, amending nothing, replaces the second.
    let third = log.push(&outcome(
        t0 + days(4),
        log.at(q),
        None,
        (false, false, false),
        OutcomeNumbers::default(),
    ));
    assert!(!log.get(first).outcome.unwrap().latest);
    assert!(!log.get(second).outcome.unwrap().latest);
    assert!(log.get(third).outcome.unwrap().latest);
    assert_eq!(
        log.get(third).outcome_numbers,
        Some(OutcomeNumbers::default())
    );
    assert!(log.get(on_e).outcome.unwrap().latest);
    // Large numbers survive.
    let big = OutcomeNumbers {
        communications_intercepted: u32::MAX,
        incriminating_communications: u32::MAX - 1,
        persons_intercepted: 4_000_000_000,
        arrests: 65_536,
        convictions: 1,
    };
    let fourth = log.push(&outcome(
        t0 + days(5),
        log.at(e),
        None,
        (true, false, false),
        big,
    ));
    assert_eq!(log.get(fourth).outcome_numbers, Some(big));
    assert!(!log.get(on_e).outcome.unwrap().latest);
    assert!(log.get(third).outcome.unwrap().latest);
    // A report about something that is no authorisation has no
    // jurisdiction and replaces nothing.
    let r = log.push(&release(t0 + days(5), log.at(q)));
    let odd = log.push(&outcome(
        t0 + days(6),
        log.at(r),
        None,
        (true, false, false),
        numbers(3),
    ));
    assert_eq!(log.get(odd).jurisdiction, None);
    assert_eq!(log.get(odd).root, Some(q));
    assert!(log.get(odd).outcome.unwrap().latest);
    assert!(log.get(third).outcome.unwrap().latest);
    // Outcome reports give their authorisation no status.
    assert_eq!(log.get(q).flags, flags::RELEASE);
    // Whatever reads them back: the stored bits.
    let bits: i64 = log
        .ledger
        .conn()
        .query_row(
            "SELECT outcome FROM entries WHERE idx = ?1",
            [i64::try_from(first).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        OutcomeFacts::from_bits(bits),
        log.get(first).outcome.unwrap()
    );
}

#[test]
fn an_outcome_report_replaces_only_reports_about_the_same_authorisation() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let a = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "A"));
    let b = log.push(&request(&agency(), t0, t0 + days(60), "US-CA", "B"));
    // A report on B that names A as what it amends (nothing in the log
    // stops an agency naming an authorisation there).
    let on_b = log.push(&outcome(
        t0 + days(1),
        log.at(b),
        Some(log.at(a)),
        (true, false, false),
        numbers(1),
    ));
    assert_eq!(log.get(on_b).about, Some(b));
    assert_eq!(log.get(on_b).amends, Some(a));
    assert_eq!(log.get(on_b).jurisdiction.as_deref(), Some("US-CA"));
    // A report on A: B's report is still the latest on B.
    let on_a = log.push(&outcome(
        t0 + days(2),
        log.at(a),
        None,
        (true, false, false),
        numbers(2),
    ));
    assert!(log.get(on_a).outcome.unwrap().latest);
    assert!(
        log.get(on_b).outcome.unwrap().latest,
        "a report on A replaced the report on B"
    );
    // A second report on B replaces it.
    log.push(&outcome(
        t0 + days(3),
        log.at(b),
        None,
        (true, false, false),
        numbers(3),
    ));
    assert!(!log.get(on_b).outcome.unwrap().latest);
    assert!(log.get(on_a).outcome.unwrap().latest);
}

#[test]
fn refusals_and_outcomes_take_the_jurisdiction_of_their_authorisation() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = log.push(&request(&agency(), t0, t0 + days(60), "US-NY", "Q"));
    let e = log.push(&emergency(
        &police(),
        t0,
        t0 + days(1),
        t0 + days(90),
        "DE-BE",
        "E",
    ));
    let rq = log.push(&refusal(t0 + secs(1), log.at(q), "offence_not_allowed"));
    let re = log.push(&refusal(t0 + secs(2), log.at(e), "validity_too_long"));
    let s = log.get(rq);
    assert_eq!(s.jurisdiction.as_deref(), Some("US-NY"));
    assert_eq!(s.request_agency.as_deref(), Some(AGENCY));
    assert_eq!(s.provider.as_deref(), Some(PROVIDER));
    assert_eq!(s.signer, PROVIDER);
    assert_eq!(s.reason, Some(RefusalReason::OffenceNotAllowed));
    assert_eq!(s.about, Some(q));
    let s = log.get(re);
    assert_eq!(s.jurisdiction.as_deref(), Some("DE-BE"));
    assert_eq!(s.request_agency.as_deref(), Some(POLICE));
    assert_eq!(s.reason, Some(RefusalReason::ValidityTooLong));
    assert_eq!(country(&log.ledger, rq).as_deref(), Some("US"));
    assert_eq!(country(&log.ledger, re).as_deref(), Some("DE"));
    // An outcome report: the jurisdiction, never a request agency.
    let o = log.push(&outcome(
        t0 + secs(3),
        log.at(e),
        None,
        (true, false, false),
        numbers(0),
    ));
    assert_eq!(log.get(o).jurisdiction.as_deref(), Some("DE-BE"));
    assert_eq!(log.get(o).request_agency, None);
    assert_eq!(country(&log.ledger, o).as_deref(), Some("DE"));
    // About no authorisation (a release), or a bad reference: none.
    let r = log.push(&release(t0 + secs(4), log.at(q)));
    let odd = log.push(&refusal(t0 + secs(5), log.at(r), "too_many_targets"));
    assert_eq!(log.get(odd).jurisdiction, None);
    assert_eq!(log.get(odd).request_agency, None);
    assert_eq!(country(&log.ledger, odd), None);
    let (bad, _) = log.bad(&refusal(
        t0 + secs(6),
        eref(q, Hash([3; 32])),
        "too_many_targets",
    ));
    assert_eq!(log.get(bad).jurisdiction, None);
    assert_eq!(log.get(bad).request_agency, None);
    // The names lists know the jurisdictions and countries.
    let names: BTreeSet<(String, String)> = log
        .ledger
        .conn()
        .prepare("SELECT field, value FROM names")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want: BTreeSet<(String, String)> = [
        ("agency", AGENCY),
        ("agency", POLICE),
        ("jurisdiction", "US-NY"),
        ("jurisdiction", "US"),
        ("jurisdiction", "DE-BE"),
        ("jurisdiction", "DE"),
        ("provider", PROVIDER),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(names, want);
}

// ---------------------------------------------------------------------------
// Kept records and queries

#[test]
fn kept_records_and_queries() {
    let mut log = Log::new();
    let t0 = t(T0);
    let day = epoch_day(t0.date_naive());
    log.tick(t0);
    let reg_agency = registry(Role::Agency, &agency(), t0);
    let reg_court = registry(Role::Court, &court(), t0 + secs(1));
    let lines = [
        "daylight-issuers allow court",
        "daylight-max-targets 5",
        "daylight-jurisdictions allow US DE",
    ];
    let pol = policy(t0 + secs(2), &lines);
    let pol2 = policy(t0 + days(2), &lines[..1]);
    let r0 = log.push(&reg_agency);
    let r1 = log.push(&reg_court);
    let p2 = log.push(&pol);
    // Entries on day `day` and the next.
    let q_a1 = log.push(&request(
        &agency(),
        t0 + secs(10),
        t0 + days(30),
        "US-NY",
        "CASE-1",
    ));
    let e_a1 = log.push(&emergency(
        &agency(),
        t0 + Duration::hours(23),
        t0 + Duration::hours(40),
        t0 + days(20),
        "US",
        "CASE-1",
    ));
    let q_a1_next = log.push(&request(
        &agency(),
        t0 + days(1),
        t0 + days(40),
        "US-NY",
        "CASE-1",
    ));
    let q_p1 = log.push(&request(
        &police(),
        t0 + secs(20),
        t0 + days(50),
        "DE",
        "CASE-1",
    ));
    let q_a2 = log.push(&request(
        &agency(),
        t0 + secs(30),
        t0 + days(30),
        "US-NY",
        "CASE-2",
    ));
    let e_p = log.push(&emergency(
        &police(),
        t0 + secs(40),
        t0 + Duration::hours(24),
        t0 + days(10),
        "DE",
        "CASE-9",
    ));
    let garbage = b"{\"kind\": \"request\", but not a record".to_vec();
    let mut b = log.ledger.batch().unwrap();
    let g = b.size();
    assert_eq!(b.add_bytes(g, &garbage).unwrap(), Added::default());
    b.commit().unwrap();
    log.leaves.push(daylight_core::leaf_hash(&garbage));
    let p_late = log.push(&pol2);
    let e_a2 = log.push(&emergency(
        &agency(),
        t0 + days(2),
        t0 + days(3),
        t0 + days(30),
        "US",
        "CASE-3",
    ));
    // An extension moves q_a2's deadline.
    log.push(&extension(t0 + days(3), log.at(q_a2), t0 + days(45)));

    // The kept records: exactly the bytes logged.
    assert_eq!(
        log.ledger.records(Kind::Registry).unwrap(),
        vec![(r0, reg_agency.to_bytes()), (r1, reg_court.to_bytes())]
    );
    assert_eq!(
        log.ledger.records(Kind::Policy).unwrap(),
        vec![(p2, pol.to_bytes()), (p_late, pol2.to_bytes())]
    );
    for (_, bytes) in log.ledger.records(Kind::Registry).unwrap() {
        let r = SignedRecord::parse(&bytes).unwrap();
        assert_eq!(r.kind(), Kind::Registry);
        assert!(r.verify_signature(log_key().verifier()).is_ok());
    }
    assert!(log.ledger.records(Kind::Request).unwrap().is_empty());
    assert!(log.ledger.records(Kind::Outcome).unwrap().is_empty());
    let ps = log.get(p2);
    assert_eq!(ps.policy, lines.map(str::to_owned).to_vec());
    assert_eq!(ps.provider.as_deref(), Some(PROVIDER));
    assert_eq!(ps.root, None);
    assert!(log.get(r0).policy.is_empty());
    // The unreadable entry.
    let gs = log.get(g);
    assert_eq!(
        gs,
        Summary::unreadable(g, daylight_core::leaf_hash(&garbage))
    );
    assert_eq!(gs.kind_name(), "unreadable");
    assert_eq!(log.stored(g), Vec::<Status>::new());

    // Emergencies by agency.
    assert!(log.ledger.emergency_times(PROVIDER).unwrap().is_empty());
    let mut times = log.ledger.emergency_times(AGENCY).unwrap();
    times.sort();
    assert_eq!(
        times,
        vec![(t0 + Duration::hours(23), e_a1), (t0 + days(2), e_a2)]
    );
    assert_eq!(
        log.ledger.emergency_times(POLICE).unwrap(),
        vec![(t0 + secs(40), e_p)]
    );
    assert!(log
        .ledger
        .emergency_times("nobody.example")
        .unwrap()
        .is_empty());
    assert_eq!(
        log.ledger.emergency_agencies().unwrap(),
        vec![AGENCY, POLICE]
    );

    // Crowded cases: (agency, case reference, day) with more than `max`
    // authorisations.
    let crowded = |max: usize| {
        let mut v = log.ledger.crowded_cases(max).unwrap();
        v.sort();
        v
    };
    let group = |a: &str, c: &str, d: i64| (a.to_owned(), c.to_owned(), d);
    assert_eq!(crowded(1), vec![group(AGENCY, "CASE-1", day)]);
    assert!(crowded(2).is_empty());
    assert_eq!(
        crowded(0),
        vec![
            group(AGENCY, "CASE-1", day),
            group(AGENCY, "CASE-1", day + 1),
            group(AGENCY, "CASE-2", day),
            group(AGENCY, "CASE-3", day + 2),
            group(POLICE, "CASE-1", day),
            group(POLICE, "CASE-9", day),
        ]
    );

    // Cases by agency, reference and day.
    assert_eq!(
        indexes(&log.ledger.case_on_day(AGENCY, "CASE-1", day).unwrap()),
        vec![q_a1, e_a1]
    );
    assert_eq!(
        indexes(&log.ledger.case_on_day(AGENCY, "CASE-1", day + 1).unwrap()),
        vec![q_a1_next]
    );
    assert_eq!(
        indexes(&log.ledger.case_on_day(POLICE, "CASE-1", day).unwrap()),
        vec![q_p1]
    );
    assert_eq!(
        indexes(&log.ledger.case_on_day(AGENCY, "CASE-2", day).unwrap()),
        vec![q_a2]
    );
    assert!(log
        .ledger
        .case_on_day(AGENCY, "CASE-2", day - 1)
        .unwrap()
        .is_empty());
    assert!(log
        .ledger
        .case_on_day(AGENCY, "CASE-9", day)
        .unwrap()
        .is_empty());
    assert!(log
        .ledger
        .case_on_day(AGENCY, "case-1", day)
        .unwrap()
        .is_empty());

    // Deadlines: sealed-until in force and ratification deadlines, bounds
    // included.
    let dl = |lo: DateTime<Utc>, hi: DateTime<Utc>| {
        log.ledger
            .deadlines_between(lo.timestamp(), hi.timestamp())
            .unwrap()
    };
    assert_eq!(
        dl(t0 + Duration::hours(40), t0 + Duration::hours(40)),
        vec![e_a1]
    );
    assert_eq!(
        dl(t0 + Duration::hours(24), t0 + Duration::hours(24)),
        vec![e_p]
    );
    assert_eq!(
        dl(t0 + Duration::hours(24), t0 + Duration::hours(40)),
        vec![e_a1, e_p]
    );
    assert_eq!(dl(t0 + days(30), t0 + days(30)), vec![q_a1, e_a2]);
    assert_eq!(dl(t0 + days(10), t0 + days(20)), vec![e_a1, e_p]);
    assert_eq!(dl(t0 + days(45), t0 + days(50)), vec![q_p1, q_a2]);
    assert_eq!(dl(t0 + days(40), t0 + days(40)), vec![q_a1_next]);
    assert!(dl(t0 + days(51), t0 + days(999)).is_empty());
    assert!(dl(t0 + days(30) + secs(1), t0 + days(40) - secs(1)).is_empty());
    assert_eq!(
        dl(t0 - days(999), t0 + days(999)),
        vec![q_a1, e_a1, q_a1_next, q_p1, q_a2, e_p, e_a2]
    );

    // By kind and by range.
    assert_eq!(
        indexes(&log.ledger.of_kind(Kind::Request).unwrap()),
        vec![q_a1, q_a1_next, q_p1, q_a2]
    );
    assert_eq!(
        indexes(&log.ledger.of_kind(Kind::Emergency).unwrap()),
        vec![e_a1, e_p, e_a2]
    );
    assert_eq!(
        indexes(&log.ledger.of_kind(Kind::Registry).unwrap()),
        vec![r0, r1]
    );
    assert!(log.ledger.of_kind(Kind::Withdrawal).unwrap().is_empty());
    let size = log.ledger.size().unwrap();
    assert_eq!(size, 13);
    assert_eq!(indexes(&log.ledger.range(2, 5).unwrap()), vec![2, 3, 4]);
    assert!(log.ledger.range(5, 5).unwrap().is_empty());
    assert!(log.ledger.range(6, 2).unwrap().is_empty());
    assert_eq!(
        indexes(&log.ledger.range(0, 1000).unwrap()),
        (0..size).collect::<Vec<_>>()
    );
    assert_eq!(
        indexes(&log.ledger.range(size - 1, u64::MAX).unwrap()),
        vec![size - 1]
    );
    assert_eq!(log.ledger.get(size).unwrap(), None);
    assert_eq!(log.ledger.get(u64::MAX).unwrap(), None);
    assert!(log.ledger.referrers(u64::MAX).unwrap().is_empty());

    // The counters: per kind and month, per agency.
    let monthly: BTreeMap<(String, i64), i64> = log
        .ledger
        .conn()
        .prepare("SELECT kind, month, n FROM monthly")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let m = month_key(t0);
    let want: BTreeMap<(String, i64), i64> = [
        ("registry", 2),
        ("policy", 2),
        ("request", 4),
        ("emergency", 3),
        ("extension", 1),
    ]
    .into_iter()
    .map(|(k, n)| ((k.to_owned(), m), n))
    .collect();
    assert_eq!(monthly, want);
    let per_agency: BTreeMap<String, i64> = log
        .ledger
        .conn()
        .prepare("SELECT signer, n FROM per_agency")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        per_agency,
        [(AGENCY.to_owned(), 5), (POLICE.to_owned(), 2)].into()
    );
    check_statuses(&log.ledger);
}

#[test]
fn an_entry_reads_back_as_its_summary() {
    let mut log = Log::new();
    let t0 = t(T0);
    log.tick(t0);
    let q = request(&agency(), t0, t0 + days(60), "US-NY", "Q");
    let e = emergency(&police(), t0, t0 + days(1), t0 + days(90), "DE", "E");
    let qi = log.push(&q);
    let ei = log.push(&e);
    let others = [
        ratification(t0 + secs(1), log.at(ei), "denied"),
        extension(t0 + secs(1), log.at(qi), t0 + days(99)),
        disclosure(t0 + secs(1), log.at(qi)),
        release(t0 + secs(1), log.at(qi)),
        withdrawal(&agency(), t0 + secs(1), log.at(qi)),
        refusal(t0 + secs(1), log.at(ei), "issuer_not_allowed"),
        policy(t0, &["daylight-max-targets 5"]),
        outcome(
            t0 + secs(1),
            log.at(qi),
            None,
            (true, true, true),
            numbers(9),
        ),
        registry(Role::Provider, &provider(), t0),
        // A record of the first format version.
        Record::registry_add(Role::Court, court().verifier(), t0)
            .unwrap()
            .sign_version_1(&log_key())
            .unwrap(),
    ];
    let mut all = vec![(qi, q), (ei, e)];
    for r in others {
        all.push((log.push(&r), r));
    }
    for (i, r) in &all {
        let mut want = Summary::of(*i, r.as_bytes());
        assert_eq!(want, Summary::of_record(*i, r));
        let got = log.get(*i);
        // What the ledger adds.
        want.about = got.about;
        want.root = got.root;
        want.flags = got.flags;
        want.sealed_in_force = got.sealed_in_force;
        if matches!(r.kind(), Kind::Refusal | Kind::Outcome) {
            want.jurisdiction.clone_from(&got.jurisdiction);
            want.request_agency.clone_from(&got.request_agency);
        }
        assert_eq!(got, want, "{}", r.kind());
        assert_eq!(got.kind, Some(r.kind()));
        assert_eq!(got.leaf_hash, r.leaf_hash());
        assert_eq!(got.created, Some(r.created()));
    }
    let qs = log.get(qi);
    assert_eq!(qs.categories, vec!["content", "traffic"]);
    assert_eq!(qs.offence, Some("narcotics"));
    assert_eq!(qs.issuer, Some("court"));
    assert_eq!(qs.target_count, Some(2));
    assert_eq!(qs.case_reference.as_deref(), Some("Q"));
    assert_eq!(qs.legal_basis.as_deref(), Some("18 U.S.C. 2518"));
    assert_eq!(qs.provider.as_deref(), Some(PROVIDER));
    assert_eq!(qs.valid_from, Some(t0 - days(1)));
    assert_eq!(qs.valid_until, Some(t0 + days(1)));
    assert_eq!(qs.sealed_in_force, Some(t0 + days(99)));
    assert!(qs.content().is_some());
    let es = log.get(ei);
    assert_eq!(es.issuer, Some("prosecutor"));
    assert_eq!(es.offence, Some("kidnapping"));
    assert_eq!(es.ratify_by, Some(t0 + days(1)));
    assert_eq!(es.flags, flags::DENIED | flags::REFUSAL);
    assert_eq!(log.get(2).decision, Some(Decision::Denied));
    let rel = log.get(5);
    assert_eq!(rel.targets_released, Some(2));
    assert_eq!(rel.released_at, Some(t0 + secs(1) - secs(60)));
    assert_eq!(log.get(8).policy, vec!["daylight-max-targets 5"]);
    assert_eq!(log.get(10).version, 2);
    assert_eq!(log.get(11).version, 1);
    assert_eq!(log.get(11).kind, Some(Kind::Registry));
    assert_eq!(
        log.ledger.records(Kind::Registry).unwrap(),
        vec![(10, all[10].1.to_bytes()), (11, all[11].1.to_bytes())]
    );
    check_statuses(&log.ledger);
}

// ---------------------------------------------------------------------------
// Findings and metadata

fn findings(ledger: &Ledger) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let n = ledger
        .for_each_finding(|s, _, b| {
            out.push((s.to_owned(), b.to_owned()));
            Ok::<(), LedgerError>(())
        })
        .unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn findings_are_replaced_by_subject_and_cleared_by_prefix() {
    let mut log = Log::new();
    let b = log.ledger.findings_batch().unwrap();
    b.set_findings("rule:a/1", &pairs(&[("2", "a1-second"), ("1", "a1-first")]))
        .unwrap();
    b.set_findings("rule:b/1", &pairs(&[("1", "b1"), ("3", "b1-third")]))
        .unwrap();
    b.set_findings("rule:ab/1", &pairs(&[("0", "ab1")]))
        .unwrap();
    b.set_findings("x_y", &pairs(&[("9", "x_y")])).unwrap();
    b.set_findings("xay", &pairs(&[("9", "xay")])).unwrap();
    b.set_meta("progress", "10").unwrap();
    b.set_meta("other", "").unwrap();
    b.commit().unwrap();
    // In sort order, then subject, then the order given.
    assert_eq!(
        findings(&log.ledger),
        pairs(&[
            ("rule:ab/1", "ab1"),
            ("rule:a/1", "a1-first"),
            ("rule:b/1", "b1"),
            ("rule:a/1", "a1-second"),
            ("rule:b/1", "b1-third"),
            ("x_y", "x_y"),
            ("xay", "xay"),
        ])
    );
    assert_eq!(log.ledger.meta("progress").unwrap().as_deref(), Some("10"));
    assert_eq!(log.ledger.meta("other").unwrap().as_deref(), Some(""));
    assert_eq!(log.ledger.meta("absent").unwrap(), None);

    // Equal sort keys keep the order they were given in.
    let b = log.ledger.findings_batch().unwrap();
    b.set_findings("rule:a/1", &pairs(&[("5", "z"), ("5", "y"), ("5", "x")]))
        .unwrap();
    b.set_meta("progress", "11").unwrap();
    b.commit().unwrap();
    assert_eq!(
        findings(&log.ledger),
        pairs(&[
            ("rule:ab/1", "ab1"),
            ("rule:b/1", "b1"),
            ("rule:b/1", "b1-third"),
            ("rule:a/1", "z"),
            ("rule:a/1", "y"),
            ("rule:a/1", "x"),
            ("x_y", "x_y"),
            ("xay", "xay"),
        ])
    );
    assert_eq!(log.ledger.meta("progress").unwrap().as_deref(), Some("11"));

    // Replacing with nothing removes the subject's findings.
    let b = log.ledger.findings_batch().unwrap();
    b.set_findings("rule:b/1", &[]).unwrap();
    b.commit().unwrap();
    assert_eq!(
        findings(&log.ledger),
        pairs(&[
            ("rule:ab/1", "ab1"),
            ("rule:a/1", "z"),
            ("rule:a/1", "y"),
            ("rule:a/1", "x"),
            ("x_y", "x_y"),
            ("xay", "xay"),
        ])
    );

    // A dropped batch changes nothing.
    {
        let b = log.ledger.findings_batch().unwrap();
        b.clear_findings("").unwrap();
        b.set_meta("progress", "99").unwrap();
    }
    assert_eq!(findings(&log.ledger).len(), 6);
    assert_eq!(log.ledger.meta("progress").unwrap().as_deref(), Some("11"));

    // By prefix: literally, not as a pattern.
    let b = log.ledger.findings_batch().unwrap();
    b.clear_findings("rule:a/").unwrap();
    b.clear_findings("x_").unwrap();
    b.clear_findings("%").unwrap();
    b.clear_findings("nothing").unwrap();
    b.commit().unwrap();
    assert_eq!(
        findings(&log.ledger),
        pairs(&[("rule:ab/1", "ab1"), ("xay", "xay")])
    );
    let b = log.ledger.findings_batch().unwrap();
    b.clear_findings("rule:").unwrap();
    b.commit().unwrap();
    assert_eq!(findings(&log.ledger), pairs(&[("xay", "xay")]));

    // Added findings go after the subject's own, whatever their sort key.
    let b = log.ledger.findings_batch().unwrap();
    b.add_findings("xay", &pairs(&[("9", "xay-2"), ("0", "xay-0")]))
        .unwrap();
    b.add_findings("new", &pairs(&[("9", "new-1")])).unwrap();
    b.commit().unwrap();
    let b = log.ledger.findings_batch().unwrap();
    b.add_findings("new", &pairs(&[("9", "new-2")])).unwrap();
    b.add_findings("xay", &[]).unwrap();
    b.commit().unwrap();
    assert_eq!(
        findings(&log.ledger),
        pairs(&[
            ("xay", "xay-0"),
            ("new", "new-1"),
            ("new", "new-2"),
            ("xay", "xay"),
            ("xay", "xay-2"),
        ])
    );
    let seqs: Vec<(String, i64)> = log
        .ledger
        .conn()
        .prepare("SELECT subject, seq FROM findings ORDER BY subject, seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        seqs,
        [("new", 0), ("new", 1), ("xay", 0), ("xay", 1), ("xay", 2)]
            .map(|(s, n)| (s.to_owned(), n))
            .to_vec()
    );
    let b = log.ledger.findings_batch().unwrap();
    b.clear_findings("").unwrap();
    b.commit().unwrap();
    assert!(findings(&log.ledger).is_empty());

    // The callback's error stops the walk and is returned.
    let b = log.ledger.findings_batch().unwrap();
    b.set_findings("s", &pairs(&[("1", "one"), ("2", "two"), ("3", "three")]))
        .unwrap();
    b.commit().unwrap();
    let mut seen = Vec::new();
    let err = log
        .ledger
        .for_each_finding(|_, _, body| {
            seen.push(body.to_owned());
            if body == "two" {
                return Err(LedgerError::Unusable("stop".into()));
            }
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::Unusable(ref m) if m == "stop"),
        "{err}"
    );
    assert_eq!(seen, vec!["one", "two"]);

    // Findings and metadata persist.
    let path = log.path.clone();
    let Log { _dir, ledger, .. } = log;
    drop(ledger);
    let ledger = Ledger::open(&path, ORIGIN).unwrap();
    assert_eq!(
        findings(&ledger),
        pairs(&[("s", "one"), ("s", "two"), ("s", "three")])
    );
    assert_eq!(ledger.meta("progress").unwrap().as_deref(), Some("11"));
}

// ---------------------------------------------------------------------------
// A generated log against a model

/// splitmix64: the same log on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[usize::try_from(self.below(v.len() as u64)).unwrap()]
    }
}

/// The model: what the ledger should hold, from the rules as documented.
#[derive(Default)]
struct Model {
    bytes: Vec<Vec<u8>>,
    records: Vec<Option<SignedRecord>>,
    summaries: Vec<Summary>,
    referrers: BTreeMap<u64, BTreeSet<u64>>,
}

impl Model {
    fn leaf(&self, i: u64) -> Hash {
        self.summaries[usize::try_from(i).unwrap()].leaf_hash
    }

    fn s(&self, i: u64) -> &Summary {
        &self.summaries[usize::try_from(i).unwrap()]
    }

    fn auths(&self) -> Vec<u64> {
        self.summaries
            .iter()
            .filter(|s| s.is_authorisation())
            .map(|s| s.index)
            .collect()
    }

    /// Adds an entry and applies what it says to the earlier ones.
    fn add(&mut self, bytes: Vec<u8>) {
        let i = self.summaries.len() as u64;
        let record = SignedRecord::parse(&bytes).ok();
        let mut s = Summary::of(i, &bytes);
        let refs = record
            .as_ref()
            .map(SignedRecord::references)
            .unwrap_or_default();
        let valid: Vec<bool> = refs
            .iter()
            .map(|r| r.index.get() < i && self.leaf(r.index.get()) == r.leaf_hash)
            .collect();
        s.about = refs.first().filter(|_| valid[0]).map(|r| r.index.get());
        s.amends = refs
            .get(1)
            .filter(|_| valid[1] && s.kind == Some(Kind::Outcome))
            .map(|r| r.index.get());
        let target = s.about.map(|a| self.s(a).clone());
        s.root = if s.is_authorisation() {
            Some(i)
        } else {
            target.as_ref().and_then(|t| t.root)
        };
        let about_auth = target.as_ref().filter(|t| t.is_authorisation());
        if matches!(s.kind, Some(Kind::Outcome | Kind::Refusal)) {
            s.jurisdiction = about_auth.and_then(|t| t.jurisdiction.clone());
            s.request_agency = about_auth
                .filter(|_| s.kind == Some(Kind::Refusal))
                .map(|t| t.signer.clone());
        }
        if let (Some(Kind::Outcome), Some(a)) = (s.kind, about_auth) {
            for o in &mut self.summaries {
                if o.kind == Some(Kind::Outcome) && o.about == Some(a.index) {
                    o.outcome.as_mut().unwrap().latest = false;
                }
            }
        }
        let bit = s.flag_bit();
        for (r, ok) in refs.iter().zip(&valid) {
            if !ok {
                continue;
            }
            let t = r.index.get();
            self.referrers.entry(t).or_default().insert(i);
            let ts = &mut self.summaries[usize::try_from(t).unwrap()];
            ts.flags |= bit;
            if s.kind == Some(Kind::Extension) {
                if let Some(old) = ts.sealed_in_force {
                    ts.sealed_in_force = Some(old.max(s.sealed_until.unwrap()));
                }
            }
        }
        // The model's custody: over every receipt for this authorisation
        // and key, whole (the ledger decides it receipt by receipt).
        let custody = s
            .share
            .filter(|_| s.is_share_release())
            .zip(about_auth.map(|a| a.index));
        self.bytes.push(bytes);
        self.records.push(record);
        self.summaries.push(s);
        if let Some((share, a)) = custody {
            let receipts: Vec<Summary> = self
                .summaries
                .iter()
                .filter(|x| x.about == Some(a) && x.share.is_some_and(|y| y.key == share.key))
                .cloned()
                .collect();
            if custody::assembled(&custody::receipts(&receipts)).contains(&share.key) {
                self.summaries[usize::try_from(a).unwrap()].flags |= flags::SHARES;
            }
        }
    }
}

/// A reference to an earlier entry: valid mostly, sometimes with a wrong
/// leaf hash, to a later index or to no entry at all.
fn reference(rng: &mut Rng, m: &Model, target: u64) -> Value {
    let i = m.summaries.len() as u64;
    match rng.below(100) {
        0..=79 => eref(target, m.leaf(target)),
        80..=87 => {
            let h = m.leaf(rng.below(i));
            eref(
                target,
                if h == m.leaf(target) {
                    Hash([0xee; 32])
                } else {
                    h
                },
            )
        }
        88..=93 => eref(i + rng.below(3), m.leaf(target)),
        _ => eref(1 << 40, Hash([0x11; 32])),
    }
}

/// The next entry of a generated log, created at `now`.
fn generate(rng: &mut Rng, m: &Model, now: DateTime<Utc>) -> Vec<u8> {
    let i = m.summaries.len() as u64;
    let auths = m.auths();
    let target = |rng: &mut Rng, want: Option<Kind>| -> u64 {
        let of_kind: Vec<u64> = auths
            .iter()
            .copied()
            .filter(|&a| want.is_none_or(|k| m.s(a).kind == Some(k)))
            .collect();
        if !of_kind.is_empty() && rng.chance(85) {
            rng.pick(&of_kind)
        } else {
            rng.below(i)
        }
    };
    let signer = |rng: &mut Rng| if rng.chance(60) { agency() } else { police() };
    let jurisdiction = |rng: &mut Rng| rng.pick(&["US", "US-NY", "DE", "DE-BE", "FR"]);
    let case = |rng: &mut Rng| format!("CASE-{}", rng.below(20));
    let roll = if i < 3 { rng.below(20) } else { rng.below(100) };
    let r = match roll {
        0..=11 => request(
            &signer(rng),
            now,
            now + days(1 + i64::try_from(rng.below(120)).unwrap()),
            jurisdiction(rng),
            &case(rng),
        ),
        12..=19 => {
            let ratify = now + Duration::hours(1 + i64::try_from(rng.below(48)).unwrap());
            emergency(
                &signer(rng),
                now,
                ratify,
                now + days(1 + i64::try_from(rng.below(90)).unwrap()),
                jurisdiction(rng),
                &case(rng),
            )
        }
        20..=31 => {
            let t = target(rng, Some(Kind::Emergency));
            let decision = if rng.chance(60) { "granted" } else { "denied" };
            ratification(now, reference(rng, m, t), decision)
        }
        32..=41 => {
            let t = target(rng, None);
            let until = now + days(1 + i64::try_from(rng.below(200)).unwrap());
            extension(now, reference(rng, m, t), until)
        }
        42..=50 => {
            // Disclosures of authorisations and of ratifications.
            let rats: Vec<u64> = m
                .summaries
                .iter()
                .filter(|s| s.kind == Some(Kind::Ratification))
                .map(|s| s.index)
                .collect();
            let t = if !rats.is_empty() && rng.chance(25) {
                rng.pick(&rats)
            } else {
                target(rng, None)
            };
            disclosure(now, reference(rng, m, t))
        }
        51..=59 => {
            let t = target(rng, None);
            if rng.chance(50) {
                // Mostly for the first few authorisations, so that shares
                // of one key meet in one story.
                let t = match auths.get(..auths.len().min(3)) {
                    Some(few) if !few.is_empty() && rng.chance(70) => rng.pick(few),
                    _ => t,
                };
                // A custodian's share: three custodians, two keys, two
                // splits, any index, so that some keys come together.
                let split = if rng.chance(80) { (2, 3) } else { (2, 4) };
                let share = ShareRef {
                    key: KeyTag([1 + u8::try_from(rng.below(2)).unwrap(); 32]),
                    index: 1 + u8::try_from(rng.below(3)).unwrap(),
                    threshold: split.0,
                    shares: split.1,
                };
                let c = custodians()[usize::try_from(rng.below(3)).unwrap()].clone();
                share_release(&c, now, reference(rng, m, t), share)
            } else {
                release(now, reference(rng, m, t))
            }
        }
        60..=67 => {
            let t = target(rng, None);
            withdrawal(&signer(rng), now, reference(rng, m, t))
        }
        68..=75 => {
            let t = target(rng, None);
            let reason = rng.pick(&["too_many_targets", "jurisdiction_denied", "category_denied"]);
            refusal(now, reference(rng, m, t), reason)
        }
        76..=87 => {
            let t = target(rng, None);
            let entry = reference(rng, m, t);
            let earlier: Vec<u64> = m
                .summaries
                .iter()
                .filter(|s| s.kind == Some(Kind::Outcome) && s.about == Some(t))
                .map(|s| s.index)
                .collect();
            let amends = match rng.below(4) {
                0 => None,
                1 if !earlier.is_empty() => {
                    let o = rng.pick(&earlier);
                    Some(eref(o, m.leaf(o)))
                }
                // Anything, an authorisation included.
                _ => {
                    let o = rng.below(i);
                    Some(reference(rng, m, o))
                }
            };
            let encountered = rng.chance(50);
            let prevented = encountered && rng.chance(50);
            let n = u32::try_from(rng.below(50)).unwrap();
            outcome(
                now,
                entry,
                amends,
                (rng.chance(70), encountered, prevented),
                numbers(n),
            )
        }
        88..=91 => policy(
            now,
            &[rng.pick(&["daylight-max-targets 5", "daylight-issuers allow court"])],
        ),
        92..=95 => registry(
            rng.pick(&[Role::Agency, Role::Court, Role::Provider]),
            &signer(rng),
            now,
        ),
        _ => return format!("not a record {i}").into_bytes(),
    };
    r.to_bytes()
}

/// A time to tick to: anywhere in the log's span, or exactly at (or a
/// second off) one of its deadlines.
fn tick_time(rng: &mut Rng, m: &Model, t0: DateTime<Utc>) -> DateTime<Utc> {
    let deadlines: Vec<DateTime<Utc>> = m
        .summaries
        .iter()
        .flat_map(|s| [s.sealed_in_force, s.ratify_by])
        .flatten()
        .collect();
    if !deadlines.is_empty() && rng.chance(50) {
        rng.pick(&deadlines) + secs(i64::try_from(rng.below(3)).unwrap() - 1)
    } else {
        t0 - days(5) + secs(i64::try_from(rng.below(300 * 86_400)).unwrap())
    }
}

/// Each day's span of indexes, and the span of a few ranges of days, are
/// those of the model's entries made on those days.
fn check_days(ledger: &Ledger, m: &Model, rng: &mut Rng) {
    // The model's own reading: the span widened by each entry in turn.
    let widen = |d: Option<DaySpan>, i: u64| match d {
        None => DaySpan {
            lo: i,
            hi: i,
            entries: 1,
        },
        Some(d) => DaySpan {
            lo: d.lo.min(i),
            hi: d.hi.max(i),
            entries: d.entries + 1,
        },
    };
    let made: Vec<(i64, u64)> = m
        .summaries
        .iter()
        .filter_map(|s| s.created.map(|c| (epoch_day(c.date_naive()), s.index)))
        .collect();
    let mut want: BTreeMap<i64, DaySpan> = BTreeMap::new();
    for &(day, i) in &made {
        let d = widen(want.remove(&day), i);
        want.insert(day, d);
    }
    let got: BTreeMap<i64, DaySpan> = ledger
        .conn()
        .prepare("SELECT day, lo, hi, n FROM days")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                DaySpan {
                    lo: r.get(1)?,
                    hi: r.get(2)?,
                    entries: r.get(3)?,
                },
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, want);
    let (Some(&first), Some(&last)) = (want.keys().next(), want.keys().next_back()) else {
        assert_eq!(day_span(ledger.conn(), None, None).unwrap(), None);
        return;
    };
    let mut ranges = vec![
        (None, None),
        (Some(last + 1), None),
        (None, Some(first - 1)),
    ];
    let width = u64::try_from(last - first + 3).unwrap();
    for _ in 0..5 {
        let a = first - 1 + i64::try_from(rng.below(width)).unwrap();
        let b = first - 1 + i64::try_from(rng.below(width)).unwrap();
        ranges.push((Some(a.min(b)), Some(a.max(b))));
        ranges.push((Some(a), None));
        ranges.push((None, Some(b)));
    }
    for (from, to) in ranges {
        let expected = made
            .iter()
            .filter(|&&(d, _)| from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t))
            .fold(None, |acc, &(_, i)| Some(widen(acc, i)));
        assert_eq!(
            day_span(ledger.conn(), from, to).unwrap(),
            expected,
            "days {from:?} to {to:?}"
        );
    }
}

/// Everything the ledger stores (but the tick and the findings), as rows.
fn dump(ledger: &Ledger) -> BTreeMap<&'static str, Vec<Vec<Sql>>> {
    let tables = [
        ("entries", "SELECT * FROM entries ORDER BY idx"),
        (
            "status_members",
            "SELECT * FROM status_members ORDER BY 1, 2",
        ),
        (
            "monthly_status",
            "SELECT * FROM monthly_status WHERE n != 0 ORDER BY 1, 2",
        ),
        ("refs", "SELECT * FROM refs ORDER BY 1, 2"),
        ("records", "SELECT * FROM records ORDER BY 1"),
        ("names", "SELECT * FROM names ORDER BY 1, 2"),
        ("monthly", "SELECT * FROM monthly ORDER BY 1, 2"),
        ("per_agency", "SELECT * FROM per_agency ORDER BY 1"),
        ("days", "SELECT * FROM days ORDER BY 1"),
    ];
    tables
        .into_iter()
        .map(|(name, sql)| {
            let mut st = ledger.conn().prepare(sql).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| (0..n).map(|c| r.get::<_, Sql>(c)).collect())
                .unwrap()
                .collect::<Result<Vec<Vec<Sql>>, _>>()
                .unwrap();
            (name, rows)
        })
        .collect()
}

/// The ledger holds what the model says, and statuses at its tick.
fn check_model(ledger: &Ledger, m: &Model, rng: &mut Rng) {
    let size = ledger.size().unwrap();
    assert_eq!(size, m.summaries.len() as u64);
    let now = ledger.ticked_at().unwrap();
    let got = ledger.range(0, size).unwrap();
    for (g, want) in got.iter().zip(&m.summaries) {
        assert_eq!(g, want, "entry {} ({})", want.index, want.kind_name());
        let facts = Facts::at(
            want.kind,
            want.flags,
            want.sealed_in_force,
            want.ratify_by,
            now,
        );
        assert_eq!(
            stored_set(ledger, g.index),
            facts.statuses(),
            "entry {}",
            g.index
        );
        let referrers: Vec<u64> = m
            .referrers
            .get(&g.index)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        assert_eq!(
            ledger.referrers(g.index).unwrap(),
            referrers,
            "entry {}",
            g.index
        );
    }
    check_statuses(ledger);
    check_days(ledger, m, rng);
    // Stories, deadlines and kinds over a few ranges.
    for _ in 0..5 {
        let (a, b) = (rng.below(size + 2), rng.below(size + 2));
        let (lo, hi) = (a.min(b), a.max(b));
        let mut story: Vec<&Summary> = m
            .summaries
            .iter()
            .filter(|s| s.root.is_some_and(|r| (lo..=hi).contains(&r)))
            .collect();
        story.sort_by_key(|s| (s.root, s.index));
        assert_eq!(
            indexes(&ledger.stories(lo, hi).unwrap()),
            story.iter().map(|s| s.index).collect::<Vec<_>>(),
            "stories({lo}, {hi})"
        );
        assert_eq!(
            indexes(&ledger.range(lo, hi).unwrap()),
            (lo..hi.min(size)).collect::<Vec<_>>()
        );
        let (x, y) = (
            now.timestamp() - i64::try_from(rng.below(100 * 86_400)).unwrap(),
            now.timestamp() + i64::try_from(rng.below(100 * 86_400)).unwrap(),
        );
        let in_range =
            |t: Option<DateTime<Utc>>| t.is_some_and(|t| (x..=y).contains(&t.timestamp()));
        let deadlines: Vec<u64> = m
            .summaries
            .iter()
            .filter(|s| in_range(s.sealed_in_force) || in_range(s.ratify_by))
            .map(|s| s.index)
            .collect();
        assert_eq!(ledger.deadlines_between(x, y).unwrap(), deadlines);
    }
    for kind in Kind::ALL {
        let want: Vec<u64> = m
            .summaries
            .iter()
            .filter(|s| s.kind == Some(kind))
            .map(|s| s.index)
            .collect();
        assert_eq!(indexes(&ledger.of_kind(kind).unwrap()), want, "{kind}");
        if matches!(kind, Kind::Registry | Kind::Policy) {
            let kept: Vec<(u64, Vec<u8>)> = want
                .iter()
                .map(|&i| (i, m.bytes[usize::try_from(i).unwrap()].clone()))
                .collect();
            assert_eq!(ledger.records(kind).unwrap(), kept, "{kind}");
        }
    }
    for agency in [AGENCY, POLICE] {
        let want: Vec<u64> = m
            .summaries
            .iter()
            .filter(|s| s.kind == Some(Kind::Emergency) && s.signer == agency)
            .map(|s| s.index)
            .collect();
        let mut got: Vec<u64> = ledger
            .emergency_times(agency)
            .unwrap()
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        got.sort_unstable();
        assert_eq!(got, want);
    }
}

fn add_batch(ledger: &mut Ledger, from: u64, entries: &[Vec<u8>], m: &Model) {
    let mut b = ledger.batch().unwrap();
    for (n, bytes) in entries.iter().enumerate() {
        let i = from + n as u64;
        let record = m.records[usize::try_from(i).unwrap()].as_ref();
        // The ledger parses, or is handed the parsed record.
        let added = if i % 2 == 0 {
            b.add_bytes(i, bytes).unwrap()
        } else {
            b.add(i, bytes, record).unwrap()
        };
        let want: Vec<EntryRef> = record
            .map(SignedRecord::references)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !(r.index.get() < i && m.leaf(r.index.get()) == r.leaf_hash))
            .collect();
        assert_eq!(added.bad_references, want, "entry {i}");
    }
    b.commit().unwrap();
}

#[test]
fn a_generated_log_matches_the_model_at_every_tick() {
    let mut rng = Rng(0x5eed_2026);
    let t0 = t(T0);
    let mut log = Log::new();
    let mut m = Model::default();
    log.tick(t0);
    let (mut ticks, mut dropped) = (0, 0);
    let mut now = t0;
    while m.summaries.len() < 400 {
        let from = m.summaries.len() as u64;
        let n = 1 + rng.below(25);
        let mut entries = Vec::new();
        for _ in 0..n {
            now += secs(i64::try_from(rng.below(12 * 3600)).unwrap());
            let bytes = generate(&mut rng, &m, now);
            m.add(bytes.clone());
            entries.push(bytes);
        }
        if rng.chance(10) {
            // Added, then dropped: nothing changes.
            let before = dump(&log.ledger);
            let mut b = log.ledger.batch().unwrap();
            for (k, bytes) in entries.iter().enumerate() {
                b.add_bytes(from + k as u64, bytes).unwrap();
            }
            drop(b);
            assert_eq!(dump(&log.ledger), before);
            dropped += 1;
        }
        add_batch(&mut log.ledger, from, &entries, &m);
        if rng.chance(40) {
            let at = tick_time(&mut rng, &m, t0);
            log.ledger.tick(at).unwrap();
            ticks += 1;
        }
        check_model(&log.ledger, &m, &mut rng);
    }
    // Many more ticks over the whole log, forwards and backwards.
    for _ in 0..60 {
        let at = tick_time(&mut rng, &m, t0);
        log.ledger.tick(at).unwrap();
        ticks += 1;
        check_model(&log.ledger, &m, &mut rng);
    }
    assert!(ticks >= 60);
    // The log exercised what it should.
    let kinds: BTreeSet<&str> = m.summaries.iter().map(Summary::kind_name).collect();
    assert_eq!(kinds.len(), Kind::ALL.len() + 1, "{kinds:?}");
    assert!(dropped > 0);
    let refs: Vec<(u64, EntryRef)> = m
        .records
        .iter()
        .zip(0u64..)
        .flat_map(|(r, i)| {
            r.iter()
                .flat_map(SignedRecord::references)
                .map(move |x| (i, x))
        })
        .collect();
    let forward = refs.iter().filter(|(i, x)| x.index.get() >= *i).count();
    assert!(forward > 10, "{forward} forward references");
    let wrong_hash = refs
        .iter()
        .filter(|(i, x)| x.index.get() < *i && m.leaf(x.index.get()) != x.leaf_hash)
        .count();
    assert!(
        wrong_hash > 10,
        "{wrong_hash} references with a wrong leaf hash"
    );
    let amends_auth = m
        .summaries
        .iter()
        .filter(|s| s.amends.is_some_and(|a| m.s(a).is_authorisation()))
        .count();
    assert!(amends_auth > 0, "no outcome report amends an authorisation");
    let not_latest = m
        .summaries
        .iter()
        .filter(|s| s.outcome.is_some_and(|o| !o.latest))
        .count();
    assert!(not_latest > 3, "{not_latest} replaced outcome reports");

    // The same log added in one batch and ticked once holds the same.
    let last = log.ledger.ticked_at().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut other = Ledger::open(&dir.path().join("other.db"), ORIGIN).unwrap();
    other.tick(t0 - days(100)).unwrap();
    add_batch(&mut other, 0, &m.bytes, &m);
    other.tick(last).unwrap();
    assert_eq!(dump(&other), dump(&log.ledger));
    // And ticked first, then added.
    let mut third = Ledger::open(&dir.path().join("third.db"), ORIGIN).unwrap();
    third.tick(last).unwrap();
    add_batch(&mut third, 0, &m.bytes, &m);
    assert_eq!(dump(&third), dump(&log.ledger));
}

#[test]
fn every_status_is_reached_in_a_generated_log() {
    let mut rng = Rng(8);
    let t0 = t(T0);
    let mut log = Log::new();
    let mut m = Model::default();
    log.tick(t0);
    let mut now = t0;
    let mut entries = Vec::new();
    for _ in 0..250 {
        now += secs(i64::try_from(rng.below(6 * 3600)).unwrap());
        let bytes = generate(&mut rng, &m, now);
        m.add(bytes.clone());
        entries.push(bytes);
    }
    add_batch(&mut log.ledger, 0, &entries, &m);
    let mut reached = BTreeSet::new();
    for k in 0..40 {
        let at = t0 + days(k * 5);
        log.ledger.tick(at).unwrap();
        check_model(&log.ledger, &m, &mut rng);
        for i in 0..250 {
            reached.extend(stored_set(&log.ledger, i).to_vec());
        }
    }
    assert_eq!(reached, Status::ALL.into_iter().collect::<BTreeSet<_>>());
    // Custodians' shares alone released some authorisation, and some
    // shares were logged for authorisations they did not release.
    let flags_of = |s: &Summary| s.flags & (flags::SHARES | flags::RELEASE);
    assert!(m.summaries.iter().any(|s| flags_of(s) == flags::SHARES));
    assert!(m.summaries.iter().any(|s| {
        s.is_authorisation()
            && s.flags & flags::SHARES == 0
            && m.summaries
                .iter()
                .any(|r| r.is_share_release() && r.about == Some(s.index))
    }));
}

/// The tables and indexes of the ledger, with their SQL.
fn schema(ledger: &Ledger) -> Vec<(String, String, Option<String>)> {
    ledger
        .conn()
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_bulk_load_holds_what_adding_in_small_batches_holds() {
    let mut rng = Rng(0xb01c_2026);
    let t0 = t(T0);
    let mut m = Model::default();
    let mut now = t0;
    while m.summaries.len() < 700 {
        now += secs(i64::try_from(rng.below(12 * 3600)).unwrap());
        let bytes = generate(&mut rng, &m, now);
        m.add(bytes);
    }
    let n = m.bytes.len();
    let at = t0 + days(40);
    let dir = tempfile::tempdir().unwrap();

    // Entry by entry in small batches, every index kept up to date.
    let mut small = Ledger::open(&dir.path().join("small.db"), ORIGIN).unwrap();
    small.tick(at).unwrap();
    let mut from = 0;
    while from < n {
        let k = (1 + usize::try_from(rng.below(12)).unwrap()).min(n - from);
        add_batch(&mut small, from as u64, &m.bytes[from..from + k], &m);
        from += k;
    }
    // A bulk load: the list indexes left out, two large batches, the
    // indexes made at the end.
    let mut bulk = Ledger::open(&dir.path().join("bulk.db"), ORIGIN).unwrap();
    bulk.tick(at).unwrap();
    bulk.defer_indexes().unwrap();
    assert!(bulk.indexes_deferred().unwrap());
    add_batch(&mut bulk, 0, &m.bytes[..n / 3], &m);
    add_batch(&mut bulk, (n / 3) as u64, &m.bytes[n / 3..], &m);
    bulk.make_indexes().unwrap();
    assert!(!bulk.indexes_deferred().unwrap());

    assert_eq!(schema(&bulk), schema(&small));
    let (a, b) = (dump(&small), dump(&bulk));
    for (table, rows) in &a {
        assert_eq!(rows.len(), b[table].len(), "{table}");
        for (x, y) in rows.iter().zip(&b[table]) {
            assert_eq!(x, y, "{table}");
        }
    }
    assert_eq!(a, b);
    // Both are what the model says.
    check_model(&small, &m, &mut rng);
    check_model(&bulk, &m, &mut rng);
}
