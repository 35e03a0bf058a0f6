//! `daylight gate verify` weighing what came after the entry, through the
//! real binary: a court's ratification presented as a second bundle
//! (`--ratification-entry`, `--ratification-proof`), the provider's mirror
//! (`--mirror DIR`, laid out as `daylight audit` keeps it) and the
//! `daylight-mirror required` policy line; and `gate policy` listing a
//! rotated log's earlier keys from `GET /api/v1/log`'s `vkeys`.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{Duration, Utc};
use daylight_core::tile::{
    encode_entry_bundle, new_tiles, read_tile_data, BundleCoord, Tile, TILE_WIDTH,
};
use daylight_core::{leaf_hash, LeafIndex, TreeSize};
use daylight_gate::testkit::{Bundle, World, ORIGIN, PROVIDER, TARGET};
use daylight_gate::Policy;
use daylight_ledger::Ledger;
use daylight_schemas::{Record, Role};

use common::{daylight, gate_verify};

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// One line on stdout, the exit code, nothing on stderr.
#[track_caller]
fn answer(o: &Output, code: i32, prefix: &str) -> String {
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(code), "stdout {out} stderr {err}");
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(out.starts_with(prefix), "{out}");
    assert!(err.is_empty(), "{err}");
    out
}

fn fresh() -> u64 {
    Utc::now().timestamp() as u64 - 30
}

fn all3(t: u64) -> [(usize, u64); 3] {
    [(0, t), (1, t), (2, t)]
}

/// Writes `bundle` (and the policy) under `dir` with `name` as prefix.
fn write_bundle(dir: &Path, name: &str, b: &Bundle) {
    std::fs::write(dir.join(format!("{name}.entry")), &b.entry).unwrap();
    std::fs::write(dir.join(format!("{name}.proof")), &b.proof).unwrap();
    std::fs::write(dir.join(format!("{name}.opening")), b.opening.to_json()).unwrap();
}

/// Lays the world's log out as `daylight audit` keeps its mirror: the
/// entry bundles, the hash tiles, the kept checkpoint, `state.json` naming
/// it, the pinned log and the ledger of every entry.
fn write_mirror(w: &World, dir: &Path, cosigned: u64) {
    write_files(w, dir, cosigned);
    write_ledger(w, dir, ORIGIN, w.tree.size().get());
}

/// [`write_mirror`] without the ledger.
fn write_files(w: &World, dir: &Path, cosigned: u64) {
    let size = w.tree.size().get();
    for b in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - b * TILE_WIDTH).min(TILE_WIDTH);
        let coord = BundleCoord {
            index: b,
            width: width as u16,
        };
        let entries: Vec<Vec<u8>> = (b * TILE_WIDTH..b * TILE_WIDTH + width)
            .map(|i| w.entry(i))
            .collect();
        let data = encode_entry_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        let path = dir.join(coord.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    for t in new_tiles(TreeSize(0), w.tree.size()) {
        let path = dir.join(t.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, read_tile_data(t, &w.tree).unwrap()).unwrap();
    }
    let checkpoint = w.checkpoint(&all3(cosigned));
    let kept = format!("checkpoints/{size}-0011223344556677.checkpoint");
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    std::fs::write(dir.join(&kept), &checkpoint).unwrap();
    std::fs::write(dir.join("checkpoint"), &checkpoint).unwrap();
    let pinned = daylight_auditor::mirror::PinnedLog {
        url: "http://127.0.0.1:9".into(),
        origin: ORIGIN.into(),
        vkey: w.log.verifier().to_string(),
    };
    std::fs::write(
        dir.join("log.json"),
        serde_json::to_vec_pretty(&pinned).unwrap(),
    )
    .unwrap();
    let state = daylight_auditor::MirrorState {
        size,
        root: daylight_core::tree::tree_hash(w.tree.size(), &w.tree)
            .unwrap()
            .to_base64(),
        frontier: Vec::new(),
        checkpoint: kept,
    };
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec_pretty(&state).unwrap(),
    )
    .unwrap();
}

/// The auditor's ledger of the world's first `size` entries, for the log
/// `origin`, at `DIR/ledger.db`.
fn write_ledger(w: &World, dir: &Path, origin: &str, size: u64) {
    let mut ledger = Ledger::open(&dir.join("ledger.db"), origin).unwrap();
    let mut batch = ledger.batch().unwrap();
    for i in 0..size {
        batch.add_bytes(i, &w.entry(i)).unwrap();
    }
    batch.commit().unwrap();
}

/// The level-0 tile of a world's first 256 entries, in the mirror `dir`.
fn first_tile(w: &World, dir: &Path) -> PathBuf {
    let width = w.tree.size().get().min(TILE_WIDTH) as u16;
    dir.join(
        Tile {
            level: 0,
            index: 0,
            width,
        }
        .path(),
    )
}

/// The entry bundle of a world's first 256 entries, in the mirror `dir`.
fn first_bundle(w: &World, dir: &Path) -> PathBuf {
    let width = w.tree.size().get().min(TILE_WIDTH) as u16;
    dir.join(BundleCoord { index: 0, width }.path())
}

fn verify(dir: &Path, policy: &str, name: &str, extra: &[&str]) -> Output {
    let p = |f: String| dir.join(f).to_str().unwrap().to_owned();
    let (policy, entry, proof, opening) = (
        p(policy.to_owned()),
        p(format!("{name}.entry")),
        p(format!("{name}.proof")),
        p(format!("{name}.opening")),
    );
    gate_verify(&policy, &entry, &proof, &opening, TARGET, extra)
}

#[test]
fn an_emergency_past_its_deadline_with_the_courts_ratification() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = World::new();
    std::fs::write(dir.join("policy"), w.policy_text(2, true)).unwrap();
    let created = Utc::now() - Duration::hours(30);
    let e = w
        .bundle(&World::emergency_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "emergency", &e);
    let leaf = leaf_hash(&e.entry);
    let court = w.court.clone();
    let agency = w.agency.clone();
    let made = Utc::now() - Duration::hours(2);
    let granted = w
        .bundle_by(
            &World::ratification_draft(e.index, leaf, "granted"),
            &court,
            made,
            fresh(),
        )
        .unwrap();
    write_bundle(dir, "granted", &granted);
    let by_agency = w
        .bundle_by(
            &World::ratification_draft(e.index, leaf, "granted"),
            &agency,
            made,
            fresh(),
        )
        .unwrap();
    write_bundle(dir, "by-agency", &by_agency);
    let denied = w
        .bundle_by(
            &World::ratification_draft(e.index, leaf, "denied"),
            &court,
            made,
            fresh(),
        )
        .unwrap();
    write_bundle(dir, "denied", &denied);
    let other = w
        .bundle_by(
            &World::ratification_draft(LeafIndex(e.index.0 + 1), leaf, "granted"),
            &court,
            made,
            fresh(),
        )
        .unwrap();
    write_bundle(dir, "other", &other);
    let mut broken = granted.proof.clone();
    let last = broken.len() - 10;
    broken[last] = if broken[last] == b'A' { b'B' } else { b'A' };
    std::fs::write(dir.join("broken.proof"), broken).unwrap();

    let ratified = |name: &str, proof: &str| {
        let (e, p) = (
            dir.join(format!("{name}.entry")),
            dir.join(format!("{proof}.proof")),
        );
        verify(
            dir,
            "policy",
            "emergency",
            &[
                "--ratification-entry",
                e.to_str().unwrap(),
                "--ratification-proof",
                p.to_str().unwrap(),
            ],
        )
    };
    answer(
        &verify(dir, "policy", "emergency", &[]),
        1,
        "DENY emergency_deadline_passed: ",
    );
    let line = answer(&ratified("granted", "granted"), 0, "ALLOW emergency ");
    assert!(
        line.contains(&format!("ratified by entry {}", granted.index)),
        "{line}"
    );
    answer(
        &ratified("by-agency", "by-agency"),
        1,
        "DENY ratification_not_by_court: ",
    );
    answer(
        &ratified("denied", "denied"),
        1,
        "DENY ratification_denied: ",
    );
    answer(
        &ratified("other", "other"),
        1,
        "DENY ratification_wrong_emergency: ",
    );
    answer(
        &ratified("granted", "broken"),
        1,
        "DENY ratification_unproven: ",
    );
    // The entry of one bundle with the proof of another.
    answer(
        &ratified("denied", "granted"),
        1,
        "DENY ratification_unproven: ",
    );
    // One half of the second bundle is a usage error.
    let e = dir.join("granted.entry");
    let o = verify(
        dir,
        "policy",
        "emergency",
        &["--ratification-entry", e.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn the_mirror_refuses_what_came_later_and_must_be_there_and_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = World::new();
    let t0 = Utc::now() - Duration::days(10);
    w.register_parties(t0).unwrap();
    let policy = w.policy_text(2, false);
    std::fs::write(dir.join("policy"), &policy).unwrap();
    std::fs::write(
        dir.join("policy.required"),
        format!("{policy}daylight-mirror required 600\n"),
    )
    .unwrap();
    let created = Utc::now() - Duration::hours(1);
    let b = w
        .bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "request", &b);
    let mirror = |name: &str| dir.join(name).to_str().unwrap().to_owned();

    // A fresh mirror that holds the entry: allowed, and it says so.
    write_mirror(&w, &dir.join("fresh"), fresh());
    let line = answer(
        &verify(dir, "policy", "request", &["--mirror", &mirror("fresh")]),
        0,
        "ALLOW request ",
    );
    assert!(line.contains("mirror size"), "{line}");
    answer(
        &verify(
            dir,
            "policy.required",
            "request",
            &["--mirror", &mirror("fresh")],
        ),
        0,
        "ALLOW request ",
    );
    // Without the line and without --mirror: as before.
    answer(&verify(dir, "policy", "request", &[]), 0, "ALLOW request ");

    // Required and missing: no --mirror, an empty directory, a directory
    // the follower never finished (a tile gone).
    answer(
        &verify(dir, "policy.required", "request", &[]),
        1,
        "DENY mirror_missing: ",
    );
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let line = answer(
        &verify(dir, "policy", "request", &["--mirror", &mirror("empty")]),
        1,
        "DENY mirror_missing: ",
    );
    assert!(line.contains("daylight audit --follow"), "{line}");
    write_mirror(&w, &dir.join("holed"), fresh());
    std::fs::remove_file(first_tile(&w, &dir.join("holed"))).unwrap();
    answer(
        &verify(dir, "policy", "request", &["--mirror", &mirror("holed")]),
        1,
        "DENY mirror_missing: ",
    );

    // Stale: last verified 20 minutes ago, the policy allows 10.
    write_mirror(&w, &dir.join("stale"), fresh() - 1200);
    answer(
        &verify(
            dir,
            "policy.required",
            "request",
            &["--mirror", &mirror("stale")],
        ),
        1,
        "DENY mirror_stale: ",
    );

    // Tampered: one byte of a leaf hash in the mirror's tiles changed.
    write_mirror(&w, &dir.join("tampered"), fresh());
    let path = first_tile(&w, &dir.join("tampered"));
    let mut data = std::fs::read(&path).unwrap();
    let at = data.len() / 2;
    data[at] ^= 1;
    std::fs::write(&path, data).unwrap();
    answer(
        &verify(dir, "policy", "request", &["--mirror", &mirror("tampered")]),
        1,
        "DENY mirror_invalid: ",
    );

    // A mirror that disagrees: the log showed it another entry at that index.
    let mut split = World::new();
    split.register_parties(t0).unwrap();
    let other = Utc::now() - Duration::hours(3);
    split
        .bundle(&World::request_draft(PROVIDER, other), other, fresh())
        .unwrap();
    write_mirror(&split, &dir.join("split"), fresh());
    answer(
        &verify(dir, "policy", "request", &["--mirror", &mirror("split")]),
        1,
        "DENY mirror_mismatch: ",
    );

    // Later entries: a withdrawal of this request, then (in another copy) a
    // revocation of the agency's key, then a rotation of it.
    let mut withdrawn = World::new();
    withdrawn.register_parties(t0).unwrap();
    let wb = withdrawn
        .bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "withdrawn", &wb);
    let agency = withdrawn.agency.clone();
    let (r, _) = withdrawn
        .seal(
            &World::withdrawal_draft(wb.index, leaf_hash(&wb.entry)),
            &agency,
            Utc::now() - Duration::minutes(5),
        )
        .unwrap();
    withdrawn.append(r.as_bytes());
    write_mirror(&withdrawn, &dir.join("withdrawn"), fresh());
    answer(
        &verify(
            dir,
            "policy",
            "withdrawn",
            &["--mirror", &mirror("withdrawn")],
        ),
        1,
        "DENY withdrawn: ",
    );

    let log = w.log.clone();
    let mut revoked = World::new();
    revoked.register_parties(t0).unwrap();
    let rb = revoked
        .bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "revoked", &rb);
    let mut rotated = World::new();
    rotated.register_parties(t0).unwrap();
    let ob = rotated
        .bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "rotated", &ob);
    let revoke = Record::registry_revoke(
        Role::Agency,
        agency.verifier(),
        Utc::now() - Duration::minutes(5),
    )
    .unwrap();
    revoked.log_record(&revoke, &log).unwrap();
    write_mirror(&revoked, &dir.join("revoked"), fresh());
    answer(
        &verify(dir, "policy", "revoked", &["--mirror", &mirror("revoked")]),
        1,
        "DENY agency_revoked: ",
    );
    let next = daylight_core::SignerKey::from_seed(
        agency.name().clone(),
        daylight_core::KeyType::Ed25519,
        [99; 32],
    );
    let rotate = Record::registry_rotate(
        Role::Agency,
        agency.verifier(),
        next.verifier(),
        None,
        Utc::now() - Duration::minutes(5),
    )
    .unwrap();
    rotated.log_record(&rotate, &log).unwrap();
    write_mirror(&rotated, &dir.join("rotated"), fresh());
    // Logged before the rotation: still valid.
    answer(
        &verify(dir, "policy", "rotated", &["--mirror", &mirror("rotated")]),
        0,
        "ALLOW request ",
    );
    // Signed with the old key after it: refused.
    let late = rotated
        .bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "late", &late);
    write_mirror(&rotated, &dir.join("rotated-late"), fresh());
    answer(
        &verify(
            dir,
            "policy",
            "late",
            &["--mirror", &mirror("rotated-late")],
        ),
        1,
        "DENY agency_key_replaced: ",
    );
}

/// `gate verify --mirror` reads the mirror through the auditor's ledger
/// (`DIR/ledger.db`): the withdrawal it points to, checked against the
/// leaf the tiles authenticate; nothing the ledger holds beyond the
/// verified size; and a ledger missing, of another log or behind the
/// verified size is refused.
#[test]
fn the_mirror_is_read_through_its_ledger_and_checked_against_its_tiles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = World::new();
    w.register_parties(Utc::now() - Duration::days(10)).unwrap();
    std::fs::write(dir.join("policy"), w.policy_text(2, false)).unwrap();
    let created = Utc::now() - Duration::hours(1);
    let b = w
        .bundle(&World::request_draft(PROVIDER, created), created, fresh())
        .unwrap();
    write_bundle(dir, "request", &b);
    // Verified before the agency withdrew the request.
    write_files(&w, &dir.join("ahead"), fresh());
    let agency = w.agency.clone();
    let (withdrawal, _) = w
        .seal(
            &World::withdrawal_draft(b.index, leaf_hash(&b.entry)),
            &agency,
            Utc::now() - Duration::minutes(5),
        )
        .unwrap();
    let at = w.append(withdrawal.as_bytes());
    let run = |m: &str| {
        let m = dir.join(m);
        verify(dir, "policy", "request", &["--mirror", m.to_str().unwrap()])
    };

    // The withdrawal, found through the ledger.
    write_mirror(&w, &dir.join("withdrawn"), fresh());
    let line = answer(&run("withdrawn"), 1, "DENY withdrawn: ");
    assert!(line.contains(&format!("withdrawn by entry {at}")), "{line}");

    // The ledger already holds the withdrawal, the verified state not yet
    // (the auditor commits its ledger first): beyond the size, not read.
    write_ledger(&w, &dir.join("ahead"), ORIGIN, w.tree.size().get());
    answer(&run("ahead"), 0, "ALLOW request ");

    // No ledger: refused, saying how to make one.
    write_files(&w, &dir.join("no-ledger"), fresh());
    let line = answer(&run("no-ledger"), 1, "DENY mirror_missing: ");
    assert!(line.contains("ledger.db"), "{line}");
    assert!(line.contains("daylight audit --follow --dir"), "{line}");
    // Another log's ledger.
    write_files(&w, &dir.join("other-log"), fresh());
    write_ledger(&w, &dir.join("other-log"), "other.example/log", at.0 + 1);
    let line = answer(&run("other-log"), 1, "DENY mirror_missing: ");
    assert!(line.contains("other.example/log"), "{line}");
    // A ledger behind the verified size (the auditor rebuilding it).
    write_files(&w, &dir.join("behind"), fresh());
    write_ledger(&w, &dir.join("behind"), ORIGIN, at.0);
    let line = answer(&run("behind"), 1, "DENY mirror_missing: ");
    assert!(line.contains(&format!("holds {} entries", at.0)), "{line}");

    // One byte of the withdrawal the ledger points to changed in its
    // bundle: not the leaf the tiles authenticate at its index.
    write_mirror(&w, &dir.join("flipped"), fresh());
    let path = first_bundle(&w, &dir.join("flipped"));
    let mut data = std::fs::read(&path).unwrap();
    let len = withdrawal.as_bytes().len();
    let pos = data
        .windows(len)
        .position(|x| x == withdrawal.as_bytes())
        .unwrap();
    data[pos + len / 2] ^= 1;
    std::fs::write(&path, data).unwrap();
    let line = answer(&run("flipped"), 1, "DENY mirror_invalid: ");
    assert!(line.contains(&format!("mirror entry {at} ")), "{line}");
    // Its bundle gone: the mirror cannot be read.
    write_mirror(&w, &dir.join("no-bundle"), fresh());
    std::fs::remove_file(first_bundle(&w, &dir.join("no-bundle"))).unwrap();
    answer(&run("no-bundle"), 1, "DENY mirror_missing: ");

    // A ledger of another history: at the entry asked for it holds other
    // bytes than the tree the tiles authenticate (so it could not be
    // trusted to say that nothing withdrew it).
    write_files(&w, &dir.join("other-history"), fresh());
    let mut ledger = Ledger::open(&dir.join("other-history/ledger.db"), ORIGIN).unwrap();
    let mut batch = ledger.batch().unwrap();
    for i in 0..=at.0 {
        let bytes = if i == b.index.0 {
            b"not the request".to_vec()
        } else {
            w.entry(i)
        };
        batch.add_bytes(i, &bytes).unwrap();
    }
    batch.commit().unwrap();
    let line = answer(&run("other-history"), 1, "DENY mirror_invalid: ");
    assert!(
        line.contains(&format!(
            "does not hold the verified tree's entry {}",
            b.index.0
        )),
        "{line}"
    );
}

/// With `--mirror`, a presented ratification must be in the mirror too
/// (the CLI asks the mirror for its leaf), and the log's registry must
/// stand behind its court: registered, not rotated out before it, never
/// revoked.
#[test]
fn a_ratification_with_a_mirror_needs_its_court_in_good_standing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t0 = Utc::now() - Duration::days(10);
    let created = Utc::now() - Duration::hours(30);
    let made = Utc::now() - Duration::hours(2);
    let recent = Utc::now() - Duration::minutes(5);
    let mirror = |name: &str| dir.join(name).to_str().unwrap().to_owned();

    // A registered world, an emergency past its deadline, the court's
    // ratification (logged after the deadline: it still counts).
    let world = || {
        let mut w = World::new();
        w.register_parties(t0).unwrap();
        let e = w
            .bundle(&World::emergency_draft(PROVIDER, created), created, fresh())
            .unwrap();
        (w, e)
    };
    let ratify = |w: &mut World, e: &Bundle| {
        let court = w.court.clone();
        w.bundle_by(
            &World::ratification_draft(e.index, leaf_hash(&e.entry), "granted"),
            &court,
            made,
            fresh(),
        )
        .unwrap()
    };
    let (mut w, e) = world();
    std::fs::write(dir.join("policy"), w.policy_text(2, true)).unwrap();
    write_bundle(dir, "emergency", &e);
    write_mirror(&w, &dir.join("before"), fresh());
    let r = ratify(&mut w, &e);
    write_bundle(dir, "ratification", &r);
    write_mirror(&w, &dir.join("held"), fresh());
    let (log, court) = (w.log.clone(), w.court.clone());

    let run = |ratification: &str, m: &str| {
        let (re, rp) = (
            dir.join(format!("{ratification}.entry")),
            dir.join(format!("{ratification}.proof")),
        );
        verify(
            dir,
            "policy",
            "emergency",
            &[
                "--ratification-entry",
                re.to_str().unwrap(),
                "--ratification-proof",
                rp.to_str().unwrap(),
                "--mirror",
                &mirror(m),
            ],
        )
    };
    let line = answer(&run("ratification", "held"), 0, "ALLOW emergency ");
    assert!(
        line.contains(&format!("ratified by entry {}", r.index)),
        "{line}"
    );
    assert!(line.contains("court in good standing"), "{line}");
    // The mirror does not reach the ratification yet.
    let line = answer(&run("ratification", "before"), 1, "DENY mirror_behind: ");
    assert!(line.contains("ratification"), "{line}");

    // The court's key revoked after the ratification.
    let revoke = Record::registry_revoke(Role::Court, court.verifier(), recent).unwrap();
    let mut revoked = w;
    revoked.log_record(&revoke, &log).unwrap();
    write_mirror(&revoked, &dir.join("court-revoked"), fresh());
    answer(
        &run("ratification", "court-revoked"),
        1,
        "DENY court_revoked: ",
    );

    // The court's key rotated out before the ratification, which the old
    // key signed anyway.
    let (mut rotated, e2) = world();
    assert_eq!(e2.entry, e.entry);
    let next = daylight_core::SignerKey::from_seed(
        court.name().clone(),
        daylight_core::KeyType::Ed25519,
        [98; 32],
    );
    let rotate =
        Record::registry_rotate(Role::Court, court.verifier(), next.verifier(), None, recent)
            .unwrap();
    rotated.log_record(&rotate, &log).unwrap();
    let r2 = ratify(&mut rotated, &e2);
    write_bundle(dir, "after-rotation", &r2);
    write_mirror(&rotated, &dir.join("court-rotated"), fresh());
    answer(
        &run("after-rotation", "court-rotated"),
        1,
        "DENY court_key_replaced: ",
    );
    // ... and a split view: the provider's mirror holds another entry at the
    // ratification's index.
    let (mut split, _) = world();
    let court2 = split.court.clone();
    split
        .bundle_by(
            &World::ratification_draft(e.index, leaf_hash(&e.entry), "granted"),
            &court2,
            made - Duration::minutes(1),
            fresh(),
        )
        .unwrap();
    write_mirror(&split, &dir.join("split"), fresh());
    answer(&run("ratification", "split"), 1, "DENY mirror_mismatch: ");
}

/// Serves canned JSON for `/api/v1/log` and `/api/v1/agencies`, one
/// connection at a time, until the test ends.
fn fake_log(log_json: String, agencies_json: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let body = if first.contains("/api/v1/agencies") {
                &agencies_json
            } else {
                &log_json
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn gate_policy_lists_every_log_key_with_its_end() {
    let w = World::new();
    let until = "2026-09-01T00:00:00Z";
    let witnesses: Vec<serde_json::Value> = w
        .witnesses
        .iter()
        .map(|k| serde_json::json!({"vkey": k.verifier().to_string(), "url": "http://w"}))
        .collect();
    let agencies = serde_json::json!({"keys": [
        {"vkey": w.agency.verifier().to_string(), "name": "agency.example", "role": "agency", "added_at": 0, "revoked_at": null},
    ]})
    .to_string();
    let base = serde_json::json!({
        "origin": daylight_gate::testkit::ORIGIN,
        "vkey": w.log2.verifier().to_string(),
        "size": 10, "quorum": 2, "witnesses": witnesses,
    });
    let mut rotated = base.clone();
    rotated["vkeys"] = serde_json::json!([
        {"vkey": w.log.verifier().to_string(), "from": null, "replaced_at": 4, "until": until},
        {"vkey": w.log2.verifier().to_string(), "from": 4, "replaced_at": null, "until": null},
    ]);
    let url = fake_log(rotated.to_string(), agencies.clone());
    let o = daylight(&["gate", "policy", "--log", &url, "--provider", PROVIDER]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = text(&o.stdout);
    let p = Policy::parse(&printed).unwrap();
    let keys = p.log_keys(daylight_gate::testkit::ORIGIN);
    assert_eq!(keys.len(), 2, "{printed}");
    let old = keys.iter().find(|k| k.key == w.log.verifier()).unwrap();
    assert_eq!(old.until.unwrap().to_rfc3339(), "2026-09-01T00:00:00+00:00");
    let new = keys.iter().find(|k| k.key == w.log2.verifier()).unwrap();
    assert_eq!(new.until, None);
    assert!(printed.contains("# daylight-mirror required"), "{printed}");
    // Every line starts at its keyword (a reviewer reads this file).
    assert!(
        printed.lines().all(|l| !l.starts_with([' ', '\t'])),
        "{printed}"
    );

    // A log that never rotated (no vkeys): its one key, as before.
    let url = fake_log(base.to_string(), agencies);
    let o = daylight(&["gate", "policy", "--log", &url, "--provider", PROVIDER]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let p = Policy::parse(&text(&o.stdout)).unwrap();
    let keys = p.log_keys(daylight_gate::testkit::ORIGIN);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key, w.log2.verifier());
}

#[test]
fn gate_policy_lists_the_logs_tlog_mirrors_commented_out() {
    let w = World::new();
    let witnesses: Vec<serde_json::Value> = w
        .witnesses
        .iter()
        .map(|k| serde_json::json!({"vkey": k.verifier().to_string(), "url": "http://w"}))
        .collect();
    let agencies = serde_json::json!({"keys": [
        {"vkey": w.agency.verifier().to_string(), "name": "agency.example", "role": "agency", "added_at": 0, "revoked_at": null},
    ]})
    .to_string();
    let mut info = serde_json::json!({
        "origin": daylight_gate::testkit::ORIGIN,
        "vkey": w.log.verifier().to_string(),
        "size": 10, "quorum": 2, "witnesses": witnesses,
    });
    let m0 = w.mirrors[0].verifier().to_string();
    info["mirrors"] = serde_json::json!([
        {"vkey": m0, "url": "https://mirror0.example/"},
        // A log's field is outside data: nothing in it becomes a policy line.
        {"vkey": format!("{m0}\ndaylight-agency {}", w.court.verifier()), "url": "https://x/"},
        {"vkey": w.agency.verifier().to_string(), "url": "https://agency.example/"},
        {"vkey": w.mirrors[1].verifier().to_string(), "url": "https://m\ndaylight-max-age 1"},
    ]);
    let url = fake_log(info.to_string(), agencies.clone());
    let o = daylight(&["gate", "policy", "--log", &url, "--provider", PROVIDER]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = text(&o.stdout);
    assert!(
        printed.contains(&format!(
            "\n# daylight-tlog-mirror {m0} https://mirror0.example/\n"
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "\n# daylight-tlog-mirror {}\n",
            w.mirrors[1].verifier()
        )),
        "{printed}"
    );
    assert!(
        printed.contains("\n# daylight-tlog-mirror-quorum 1\n"),
        "{printed}"
    );
    assert!(
        printed.lines().all(|l| !l.starts_with([' ', '\t'])),
        "{printed}"
    );
    // Commented out: the starting policy requires no mirror, and parses.
    let p = Policy::parse(&printed).unwrap();
    assert_eq!(p.tlog_mirror_quorum(), 0);
    assert_eq!(p.courts().len(), 0, "{printed}");
    assert_eq!(p.max_age(), 86_400);
    // Uncommented, the mirror is required.
    let active = printed.replace(
        &format!("# daylight-tlog-mirror {m0}"),
        &format!("daylight-tlog-mirror {m0}"),
    );
    let p = Policy::parse(&active).unwrap();
    assert_eq!(p.tlog_mirror_quorum(), 1);
    assert_eq!(p.tlog_mirrors()[0].key, *w.mirrors[0].verifier());

    // A log without the field: a hint, and no failure.
    info.as_object_mut().unwrap().remove("mirrors");
    let url = fake_log(info.to_string(), agencies);
    let o = daylight(&["gate", "policy", "--log", &url, "--provider", PROVIDER]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = text(&o.stdout);
    assert!(
        printed.contains("# daylight-tlog-mirror <vkey> [<url>]\n"),
        "{printed}"
    );
    assert_eq!(Policy::parse(&printed).unwrap().tlog_mirror_quorum(), 0);
}
