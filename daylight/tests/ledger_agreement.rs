//! The page and the auditor can never disagree about an entry (issue 21):
//! the web view's query index (`DIR/web-index.db`, written by `daylight log
//! serve`) and the auditor's ledger (`A/ledger.db`, written by `daylight
//! audit`) are both `daylight-ledger` files, and this test holds them to
//! the same meaning for every entry of a generated log, across processes.
//!
//! The log: `daylight demo`'s year of sample records (requests and
//! emergencies, granted ratifications, extensions, disclosures, releases,
//! withdrawals, refusals, outcome reports, providers' policies, the
//! registry; one emergency left unratified and one disclosure left overdue
//! on purpose), then, with the demo's witnesses serving again, what the
//! demo lacks: an emergency awaiting ratification, one denied, one
//! ratified whose ratification is disclosed, one unratified and overdue,
//! and a request released, extended and reported on twice (the second
//! report amending the first). A withdrawal naming a wrong leaf hash is
//! submitted too: the log refuses it (`reference_hash_mismatch`), so a bad
//! reference cannot reach either ledger through a log server; were it ever
//! admitted, it would be compared like every other entry.
//!
//! The web view's index is made in two runs, as in use: the demo's own log
//! server indexes the demo's records, `daylight log serve` then the added
//! ones (and ticks it to its time); the auditor's ledger is made by one
//! fresh `daylight audit`.
//!
//! Compared, entry by entry: both hold it; kind, flags, sealed-until in
//! force, ratification deadline, about, root, references, leaf hash,
//! outcome (with `latest`), refusal reason, requesting agency,
//! jurisdiction, the whole summary, and the statuses at instants before,
//! between, at and after the deadlines. Table by table: the entries' rows
//! (but their statuses), valid references, kept records, names, counts per
//! kind and month and per agency; the status memberships and their monthly
//! counts as each file holds them (when no deadline lies between the two
//! files' ticks), each file's memberships against its own summaries, and
//! copies of both ticked together to several instants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use daylight_core::SignerKey;
use daylight_ledger::store::status_code;
use daylight_ledger::{Ledger, Status, Summary};
use daylight_schemas::{Draft, Kind, SignedRecord};
use rusqlite::Connection;
use serde_json::{json, Value};

use common::{
    daylight, free_port_run, http_get, post_record, serve_log, spawn, wait_ready, Server,
};

/// The demo's agency, court and provider used for the added records (all
/// registered by the demo).
const POLICE: &str = "gb-metropolitan-police.sample.example";
const COURT: &str = "gb-ipco.courts.sample.example";
const PROVIDER: &str = "messenger.example";

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn hours(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// Signs drafts with the demo's keys and submits them to the log.
struct Submitter<'a> {
    url: &'a str,
    origin: &'a str,
    keys: &'a Path,
    seed: u64,
    /// The index of the last record admitted.
    last: u64,
}

impl Submitter<'_> {
    /// The draft `v` sealed by the demo key `signer` at `created`.
    fn seal(&mut self, signer: &str, v: Value, created: DateTime<Utc>) -> SignedRecord {
        let key = SignerKey::parse(
            std::fs::read_to_string(self.keys.join(format!("{signer}.key")))
                .unwrap()
                .trim(),
        )
        .unwrap();
        let seed = &mut self.seed;
        let mut rng = |b: &mut [u8]| {
            for chunk in b.chunks_mut(32) {
                *seed += 1;
                let h = daylight_core::leaf_hash(&seed.to_be_bytes());
                chunk.copy_from_slice(&h.0[..chunk.len()]);
            }
        };
        Draft::from_json(&v.to_string())
            .unwrap_or_else(|e| panic!("{e}: {v}"))
            .seal(&key, self.origin, created, &mut rng)
            .unwrap_or_else(|e| panic!("{e}: {v}"))
            .0
    }

    /// Submits a sealed record; its index and a reference to it.
    fn post(&mut self, signer: &str, v: Value, created: DateTime<Utc>) -> (u64, Value) {
        let record = self.seal(signer, v, created);
        let (status, body) = post_record(self.url, record.to_bytes());
        assert!(
            (200..300).contains(&status),
            "{status} {body} for {}",
            String::from_utf8_lossy(record.as_bytes())
        );
        let index = body["index"].as_u64().unwrap();
        self.last = self.last.max(index);
        let r = json!({ "index": index, "leaf_hash": record.leaf_hash().to_hex() });
        (index, r)
    }
}

fn emergency(
    case: &str,
    created: DateTime<Utc>,
    ratify_by: DateTime<Utc>,
    sealed: DateTime<Utc>,
) -> Value {
    json!({
        "kind": "emergency",
        "jurisdiction": "GB",
        "legal_basis": "Investigatory Powers Act 2016 s.19, urgent case (s.24)",
        "issuing_authority": {"name": "Secretary of State (urgent warrant)", "type": "executive"},
        "provider": PROVIDER,
        "data_categories": ["subscriber", "location"],
        "offence": "kidnapping",
        "target_type": "account",
        "targets": ["acct:300"],
        "valid_from": fmt(created),
        "valid_until": fmt(created + days(1)),
        "sealed_until": fmt(sealed),
        "case_reference": case,
        "ground": "life_or_safety",
        "ratify_by": fmt(ratify_by),
    })
}

fn ratification(e: &Value, decision: &str) -> Value {
    json!({
        "kind": "ratification",
        "emergency": e,
        "decision": decision,
        "case_reference": "IPCO 2026/17",
        "order_document_sha256": "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae",
    })
}

fn outcome(entry: &Value, amends: Option<&Value>, arrests: u32) -> Value {
    let mut v = json!({
        "kind": "outcome",
        "entry": entry,
        "data_obtained": true,
        "encryption_encountered": true,
        "encryption_prevented_access": false,
        "communications_intercepted": 120,
        "incriminating_communications": 12,
        "persons_intercepted": 4,
        "arrests": arrests,
        "convictions": 0,
    });
    if let Some(a) = amends {
        v["amends"] = a.clone();
    }
    v
}

/// What the demo lacks, added to the log at `url`; the indexes of the
/// authorisations and reports whose statuses the test checks.
struct Added {
    awaiting: u64,
    denied: u64,
    ratified: u64,
    ratification: u64,
    ratification_disclosure: u64,
    unratified: u64,
    request: u64,
    first_report: u64,
    second_report: u64,
    /// A withdrawal naming a wrong leaf hash, if the log admitted it.
    bad_reference: Option<u64>,
}

fn add_what_the_demo_lacks(s: &mut Submitter<'_>, now: DateTime<Utc>) -> Added {
    // An emergency still within its ratification deadline at `now`.
    let (awaiting, awaiting_ref) = s.post(
        POLICE,
        emergency(
            "MP-AGREE-1",
            now - hours(2),
            now + hours(30),
            now + days(90),
        ),
        now - hours(2),
    );
    // One a court refused to ratify.
    let (denied, denied_ref) = s.post(
        POLICE,
        emergency(
            "MP-AGREE-2",
            now - days(3),
            now - days(3) + hours(40),
            now + days(90),
        ),
        now - days(3),
    );
    s.post(COURT, ratification(&denied_ref, "denied"), now - days(2));
    // One ratified, its ratification then disclosed (the disclosure
    // belongs to the emergency's story but opens the ratification).
    let (ratified, ratified_ref) = s.post(
        POLICE,
        emergency(
            "MP-AGREE-3",
            now - days(4),
            now - days(4) + hours(40),
            now + days(60),
        ),
        now - days(4),
    );
    let (ratification, ratification_ref) =
        s.post(COURT, ratification(&ratified_ref, "granted"), now - days(3));
    let (ratification_disclosure, _) = s.post(
        POLICE,
        json!({
            "kind": "disclosure",
            "entry": ratification_ref,
            "targets_opened": [],
            "targets_withheld": [{"position": 0, "reason": "third_party_privacy"}],
            "order_document_withheld": "investigation_ongoing",
        }),
        now - days(1),
    );
    // One never ratified, whose seal has passed too.
    let (unratified, _) = s.post(
        POLICE,
        emergency(
            "MP-AGREE-4",
            now - days(6),
            now - days(6) + hours(40),
            now - days(1),
        ),
        now - days(6),
    );
    // A request released, extended, and reported on twice.
    let (request, request_ref) = s.post(
        POLICE,
        json!({
            "kind": "request",
            "jurisdiction": "GB",
            "legal_basis": "Investigatory Powers Act 2016 s.15",
            "issuing_authority": {"name": "Investigatory Powers Commissioner's Office", "type": "court"},
            "provider": PROVIDER,
            "data_categories": ["traffic", "content"],
            "offence": "narcotics",
            "target_type": "account",
            "targets": ["acct:100", "acct:200"],
            "valid_from": fmt(now - days(21)),
            "valid_until": fmt(now - days(19)),
            "sealed_until": fmt(now + days(10)),
            "case_reference": "MP-AGREE-5",
            "order_document_sha256": "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae",
        }),
        now - days(20),
    );
    s.post(
        PROVIDER,
        json!({
            "kind": "release",
            "entry": request_ref,
            "targets_released": 2,
            "released_at": fmt(now - days(19) - hours(1)),
        }),
        now - days(19),
    );
    let (first_report, first_ref) = s.post(POLICE, outcome(&request_ref, None, 1), now - days(10));
    let (second_report, _) = s.post(
        POLICE,
        outcome(&request_ref, Some(&first_ref), 2),
        now - days(5),
    );
    s.post(
        COURT,
        json!({
            "kind": "extension",
            "entry": request_ref,
            "sealed_until": fmt(now + days(100)),
            "reason": "investigation_ongoing",
        }),
        now - days(2),
    );

    // A withdrawal of the awaiting emergency naming another entry's leaf
    // hash: the log checks references and refuses it.
    let wrong = json!({ "index": awaiting_ref["index"], "leaf_hash": denied_ref["leaf_hash"] });
    let record = s.seal(
        POLICE,
        json!({"kind": "withdrawal", "entry": wrong, "reason": "no_longer_needed"}),
        now - hours(1),
    );
    let (status, body) = post_record(s.url, record.to_bytes());
    let bad_reference = if (200..300).contains(&status) {
        let index = body["index"].as_u64().unwrap();
        s.last = s.last.max(index);
        Some(index)
    } else {
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("reference_hash_mismatch")),
            "{body}"
        );
        eprintln!(
            "the log refuses a reference with a wrong leaf hash: that case is not in the log"
        );
        None
    };
    Added {
        awaiting,
        denied,
        ratified,
        ratification,
        ratification_disclosure,
        unratified,
        request,
        first_report,
        second_report,
        bad_reference,
    }
}

/// GETs `url` until `done` holds for the status and body (at most 150
/// tries and 30 s).
fn poll(url: &str, what: &str, done: impl Fn(u16, &str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..150 {
        let (status, body) = http_get(url);
        if done(status, &String::from_utf8_lossy(&body)) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not after 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not after 150 tries");
}

/// Stops a server as Ctrl-C does, and waits (at most 10 s) for it to exit.
fn stop(server: &mut Server) {
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rows `sql` returns, each as text (its columns' values, `skip`
/// columns left out).
fn rows(conn: &Connection, sql: &str, skip: &[&str]) -> BTreeSet<String> {
    let mut st = conn.prepare(sql).unwrap();
    let names: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
    let keep: Vec<usize> = (0..names.len())
        .filter(|&i| !skip.contains(&names[i].as_str()))
        .collect();
    st.query_map([], |r| {
        let mut cols = Vec::new();
        for &i in &keep {
            let v: rusqlite::types::Value = r.get(i)?;
            cols.push(format!("{}={v:?}", names[i]));
        }
        Ok(cols.join(" "))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Adds to `diffs` the rows of `sql` only one of the two files holds.
fn same_rows(
    what: &str,
    web: &Connection,
    aud: &Connection,
    sql: &str,
    skip: &[&str],
    diffs: &mut Vec<String>,
) {
    let (w, a) = (rows(web, sql, skip), rows(aud, sql, skip));
    assert!(!w.is_empty() || !a.is_empty(), "{what}: empty in both");
    for r in w.difference(&a).take(10) {
        diffs.push(format!("{what}: only in the web view's index: {r}"));
    }
    for r in a.difference(&w).take(10) {
        diffs.push(format!("{what}: only in the auditor's ledger: {r}"));
    }
}

/// Adds to `diffs` every entry whose stored statuses (`status_members`)
/// are not those its summary gives at the file's tick.
fn members_follow_summaries(who: &str, ledger: &Ledger, size: u64, diffs: &mut Vec<String>) {
    let at = ledger.ticked_at().unwrap();
    let stored = rows(
        ledger.conn(),
        "SELECT status, entry FROM status_members",
        &[],
    );
    let mut derived = BTreeSet::new();
    for s in ledger.range(0, size).unwrap() {
        for st in s.statuses(at) {
            derived.insert(format!(
                "status=Integer({}) entry=Integer({})",
                status_code(st),
                s.index
            ));
        }
    }
    for r in stored.symmetric_difference(&derived).take(10) {
        diffs.push(format!(
            "{who} at its tick {at}: status_members and the summaries differ at {r} (stored: {})",
            stored.contains(r)
        ));
    }
}

/// Adds to `diffs` every field in which the two summaries of one entry differ.
fn same_entry(w: &Summary, a: &Summary, instants: &[DateTime<Utc>], diffs: &mut Vec<String>) {
    let i = w.index;
    let mut field = |name: &str, web: String, aud: String| {
        if web != aud {
            diffs.push(format!(
                "entry {i} ({}): {name}: web view {web}, auditor {aud}",
                w.kind_name()
            ));
        }
    };
    macro_rules! fields {
        ($($f:ident),*) => { $( field(stringify!($f), format!("{:?}", w.$f), format!("{:?}", a.$f)); )* };
    }
    fields!(
        kind,
        flags,
        sealed_in_force,
        ratify_by,
        about,
        root,
        references,
        leaf_hash,
        outcome,
        reason,
        request_agency,
        jurisdiction
    );
    for &t in instants {
        field(
            &format!("statuses at {t}"),
            format!("{:?}", w.statuses(t)),
            format!("{:?}", a.statuses(t)),
        );
    }
    field("summary", format!("{w:?}"), format!("{a:?}"));
}

fn check(diffs: &[String]) {
    assert!(
        diffs.is_empty(),
        "the web view and the auditor disagree ({} differences):\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_web_view_and_the_auditor_agree_on_every_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("demo");
    let audit_dir = tmp.path().join("audit");
    let p = |x: &Path| x.to_str().unwrap().to_owned();

    // The demo's log, witnesses and keys: it listens on `port` and runs its
    // witnesses on the next three, as its log remembers them, and its
    // custodians on the three after them, its mirror after those.
    let port = free_port_run(8);
    let o = daylight(&[
        "demo",
        "--dir",
        &p(&d),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--requests",
        "300",
        "--no-serve",
    ]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let witnesses: Vec<Server> = (1..=3u16)
        .map(|i| {
            let addr = format!("127.0.0.1:{}", port + i);
            let w = spawn(&[
                "witness",
                "serve",
                "--dir",
                &p(&d.join(format!("witness-{i}"))),
                "--listen",
                &addr,
            ]);
            wait_ready(&addr);
            w
        })
        .collect();
    // The demo's mirror: the log publishes only checkpoints it cosigned.
    let mirror_addr = format!("127.0.0.1:{}", port + 7);
    let _mirror = spawn(&[
        "mirror",
        "serve",
        "--dir",
        &p(&d.join("mirror")),
        "--listen",
        &mirror_addr,
    ]);
    wait_ready(&mirror_addr);
    let (mut server, url) = serve_log(&p(&d.join("log")));
    let (_, info) = http_get(&format!("{url}/api/v1/log"));
    let info: Value = serde_json::from_slice(&info).unwrap();
    let origin = info["origin"].as_str().unwrap().to_owned();

    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let mut submitter = Submitter {
        url: &url,
        origin: &origin,
        keys: &d.join("keys"),
        seed: 0,
        last: 0,
    };
    let added = add_what_the_demo_lacks(&mut submitter, now);
    // Nothing else writes to the log: the last record added ends it.
    let size = submitter.last + 1;

    // The witnesses cosign the log as it is now (the auditor verifies up
    // to the published checkpoint), and the web view has read it all.
    poll(
        &format!("{url}/checkpoint"),
        "a cosigned checkpoint of the whole log",
        |s, b| s == 200 && b.lines().nth(1) == Some(size.to_string().as_str()),
    );
    poll(
        &format!("{url}/entries"),
        "the web view's index covering the log",
        |s, b| s == 200 && !b.contains("still reading the log"),
    );

    let o = daylight(&["audit", "--log", &url, "--dir", &p(&audit_dir)]);
    // 1: the demo's deliberate rule breaks (and those added here).
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "daylight audit: exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    stop(&mut server);
    drop(witnesses);

    let web = Ledger::read_only(&d.join("log").join("web-index.db"), &origin).unwrap();
    let aud = Ledger::read_only(&audit_dir.join(daylight_auditor::LEDGER_FILE), &origin).unwrap();
    assert_eq!(web.size().unwrap(), size, "the web view's index");
    assert_eq!(aud.size().unwrap(), size, "the auditor's ledger");

    // The instants statuses are compared at: before the demo's year, within
    // it, around each added deadline, now, and long after every deadline.
    let mut instants = vec![
        now - days(400),
        now - days(180),
        now - days(30),
        now,
        now + hours(31),
        now + days(365 * 5),
    ];
    for i in [
        added.awaiting,
        added.denied,
        added.ratified,
        added.unratified,
        added.request,
    ] {
        let s = web.get(i).unwrap().unwrap();
        for t in [s.sealed_in_force, s.ratify_by].into_iter().flatten() {
            instants.extend([
                t - chrono::Duration::seconds(1),
                t,
                t + chrono::Duration::seconds(1),
            ]);
        }
    }

    let mut diffs = Vec::new();
    let mut kinds = BTreeSet::new();
    let mut at_now = BTreeSet::new();
    let mut ever = BTreeSet::new();
    for i in 0..size {
        let (Some(w), Some(a)) = (web.get(i).unwrap(), aud.get(i).unwrap()) else {
            diffs.push(format!(
                "entry {i}: held by the web view's index: {}, by the auditor's ledger: {}",
                web.get(i).unwrap().is_some(),
                aud.get(i).unwrap().is_some()
            ));
            continue;
        };
        same_entry(&w, &a, &instants, &mut diffs);
        kinds.insert(w.kind_name());
        at_now.extend(w.statuses(now));
        for &t in &instants {
            ever.extend(w.statuses(t));
        }
    }
    check(&diffs);

    // The log is no trivial one: every kind that changes a status, and
    // every status at `now`.
    for k in [
        Kind::Request,
        Kind::Emergency,
        Kind::Ratification,
        Kind::Extension,
        Kind::Disclosure,
        Kind::Release,
        Kind::Withdrawal,
        Kind::Refusal,
        Kind::Outcome,
    ] {
        assert!(kinds.contains(k.as_str()), "no {k} in the log: {kinds:?}");
    }
    assert!(ever.len() >= 6, "{ever:?}");
    assert_eq!(at_now.into_iter().collect::<Vec<_>>(), Status::ALL.to_vec());
    // The added records mean what they were made to mean.
    let get = |i: u64| web.get(i).unwrap().unwrap();
    use Status::*;
    assert_eq!(
        get(added.awaiting).statuses(now),
        [Sealed, AwaitingRatification]
    );
    assert_eq!(
        get(added.awaiting).statuses(now + hours(31)),
        [Sealed, Unratified]
    );
    assert_eq!(get(added.denied).statuses(now), [Sealed, Denied]);
    assert_eq!(get(added.ratified).statuses(now), [Sealed, Ratified]);
    assert_eq!(
        get(added.ratification_disclosure).about,
        Some(added.ratification)
    );
    assert_eq!(
        get(added.ratification_disclosure).root,
        Some(added.ratified)
    );
    assert_eq!(
        get(added.ratification).flags,
        daylight_ledger::status::flags::DISCLOSURE
    );
    assert_eq!(get(added.unratified).statuses(now), [Overdue, Unratified]);
    assert_eq!(get(added.request).statuses(now), [Sealed, Released]);
    assert_eq!(get(added.request).sealed_in_force, Some(now + days(100)));
    assert!(!get(added.first_report).outcome.unwrap().latest);
    assert!(get(added.second_report).outcome.unwrap().latest);
    assert_eq!(get(added.second_report).amends, Some(added.first_report));
    if let Some(b) = added.bad_reference {
        assert_eq!(get(b).about, None);
        assert!(!get(added.awaiting).statuses(now).contains(&Withdrawn));
    }

    // The tables, but what depends on the tick.
    let (wc, ac) = (web.conn(), aud.conn());
    for (what, sql, skip) in [
        ("entries", "SELECT * FROM entries", &["statuses"][..]),
        ("refs", "SELECT * FROM refs", &[]),
        ("records", "SELECT * FROM records", &[]),
        ("names", "SELECT * FROM names", &[]),
        ("monthly", "SELECT * FROM monthly", &[]),
        ("per_agency", "SELECT * FROM per_agency", &[]),
    ] {
        same_rows(what, wc, ac, sql, skip, &mut diffs);
    }
    // The statuses as each file holds them: each at its own tick, and the
    // same in both but for entries with a deadline between the two ticks.
    members_follow_summaries("the web view's index", &web, size, &mut diffs);
    members_follow_summaries("the auditor's ledger", &aud, size, &mut diffs);
    let ticks = [
        web.ticked_at().unwrap().timestamp(),
        aud.ticked_at().unwrap().timestamp(),
    ];
    let moved = web
        .deadlines_between(ticks[0].min(ticks[1]), ticks[0].max(ticks[1]))
        .unwrap();
    let moved_list = moved
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    same_rows(
        "status_members",
        wc,
        ac,
        &format!("SELECT * FROM status_members WHERE entry NOT IN ({moved_list})"),
        &[],
        &mut diffs,
    );
    if !moved.is_empty() {
        eprintln!("entries with a deadline between the two files' ticks, left to the copies: {moved_list}");
    }
    if moved.is_empty() {
        same_rows(
            "monthly_status",
            wc,
            ac,
            "SELECT * FROM monthly_status WHERE n != 0",
            &[],
            &mut diffs,
        );
    }
    check(&diffs);

    // Copies of both, ticked together: the same memberships, counts and
    // stored statuses at every instant, time going forwards and back.
    let copy = |l: &Ledger, name: &str| {
        let path = tmp.path().join(name);
        l.conn()
            .execute("VACUUM INTO ?1", [path.to_str().unwrap()])
            .unwrap();
        Ledger::open(&path, &origin).unwrap()
    };
    let (mut web2, mut aud2) = (copy(&web, "web-copy.db"), copy(&aud, "audit-copy.db"));
    for t in [
        now,
        now - days(400),
        now + hours(31),
        now + days(365 * 5),
        now - days(2),
        now,
    ] {
        web2.tick(t).unwrap();
        aud2.tick(t).unwrap();
        let before = diffs.len();
        for (what, sql) in [
            ("status_members", "SELECT * FROM status_members"),
            (
                "monthly_status",
                "SELECT * FROM monthly_status WHERE n != 0",
            ),
            ("entries' statuses", "SELECT idx, statuses FROM entries"),
        ] {
            same_rows(what, web2.conn(), aud2.conn(), sql, &[], &mut diffs);
        }
        members_follow_summaries("the web view's index (copy)", &web2, size, &mut diffs);
        members_follow_summaries("the auditor's ledger (copy)", &aud2, size, &mut diffs);
        if diffs.len() > before {
            diffs.insert(before, format!("ticked to {t}:"));
        }
    }
    check(&diffs);
}
