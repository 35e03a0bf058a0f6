//! The witness's checks, without HTTP: every outcome of C2SP tlog-witness
//! add-checkpoint with real checkpoints and proofs, forks and rollbacks that
//! leave the state unchanged, races, restarts, and the cosignature's bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::{TestLog, TestWitness, NOW};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::witness_protocol::{
    checkpoint_path, origin_hash, parse_cosignatures, AddCheckpoint,
};
use daylight_core::{
    Checkpoint, Hash, KeyName, KeyType, Note, NoteError, SignerKey, TreeSize, VerifierKey,
};
use daylight_witness::{store, LogRecord, StoreError, Witness, WitnessError};

const ORIGIN: &str = "log.test/daylight";

/// The body of a 200 answer, checked: one cosignature line by the witness
/// that verifies over `checkpoint` at `timestamp`.
fn assert_cosigns(witness: &Witness, answer: &[u8], checkpoint: &[u8], timestamp: u64) {
    let lines = parse_cosignatures(answer).unwrap();
    assert_eq!(lines.len(), 1);
    let mut note = Note::parse(checkpoint).unwrap();
    note.add_signature(lines[0].clone()).unwrap();
    let got = verify_cosignatures(&note, &[witness.verifier()]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp, timestamp);
}

fn record(witness: &Witness, origin: &str) -> LogRecord {
    witness
        .logs()
        .unwrap()
        .into_iter()
        .find(|r| r.origin == origin)
        .unwrap()
}

/// The state and the monitoring copy, to compare before and after a refusal.
fn snapshot(witness: &Witness, origin: &str) -> (LogRecord, Option<Vec<u8>>) {
    (
        record(witness, origin),
        witness.checkpoint(&origin_hash(origin)).unwrap(),
    )
}

fn status(result: Result<Vec<u8>, WitnessError>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(e) => e.status(),
    }
}

#[test]
fn first_checkpoint_is_cosigned_stored_and_verifies() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    assert_eq!(record(&w, ORIGIN).size, TreeSize(0));
    assert_eq!(record(&w, ORIGIN).root, Hash::empty_tree());
    assert_eq!(w.checkpoint(&origin_hash(ORIGIN)).unwrap(), None);

    let answer = w.add_checkpoint(&log.request(0, 10), NOW).unwrap();
    assert_cosigns(&w, &answer, &log.checkpoint_at(10), NOW);
    assert!(answer.starts_with("— witness.test/w1 ".as_bytes()));

    let r = record(&w, ORIGIN);
    assert_eq!(
        (r.size, r.root, r.cosigned_at),
        (TreeSize(10), log.root_at(10), Some(NOW))
    );
    // The monitoring copy: the log's signature and ours, both verify.
    let stored = w.checkpoint(&origin_hash(ORIGIN)).unwrap().unwrap();
    let note = Note::parse(&stored).unwrap();
    assert_eq!(note.signatures().len(), 2);
    note.verify(&[log.vkey()]).unwrap();
    assert_eq!(
        verify_cosignatures(&note, &[w.verifier()]).unwrap().len(),
        1
    );
    assert_eq!(
        Checkpoint::parse_text(note.text()).unwrap().size,
        TreeSize(10)
    );
    assert_eq!(
        checkpoint_path(ORIGIN),
        format!("/{}/checkpoint", origin_hash(ORIGIN))
    );
}

#[test]
fn grows_along_consistency_proofs_and_recosigns_the_same_checkpoint() {
    let mut log = TestLog::new(ORIGIN, 1, 0);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    // The empty tree itself may be cosigned.
    w.add_checkpoint(&log.request(0, 0), NOW).unwrap();
    let mut old = 0;
    for (i, new) in [
        1u64, 2, 3, 4, 7, 8, 9, 16, 17, 100, 255, 256, 257, 1000, 1024, 4097,
    ]
    .into_iter()
    .enumerate()
    {
        log.grow(new - log.size());
        let t = NOW + i as u64;
        let answer = w.add_checkpoint(&log.request(old, new), t).unwrap();
        assert_cosigns(&w, &answer, &log.checkpoint_at(new), t);
        assert_eq!(record(&w, ORIGIN).size, TreeSize(new));
        old = new;
    }
    // Same checkpoint again (old = size, same root, no proof): cosigned again.
    let answer = w.add_checkpoint(&log.request(old, old), NOW + 100).unwrap();
    assert_cosigns(&w, &answer, &log.checkpoint_at(old), NOW + 100);
    assert_eq!(record(&w, ORIGIN).size, TreeSize(old));
}

#[test]
fn status_400_for_malformed_requests_and_old_after_size() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    let cp = log.checkpoint_at(10);
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"old 0\n".to_vec(),
        b"old x\n\n".to_vec(),
        [b"old 00\n\n".as_slice(), &cp].concat(),
        [b"old 0\nnot-base64\n\n".as_slice(), &cp].concat(),
        // The checkpoint part is not a signed note / not a checkpoint.
        b"old 0\n\nlog.test/daylight\n10\n".to_vec(),
        b"old 0\n\nlog.test/daylight\nten\nAAAA\n\n\xe2\x80\x94 log.test/daylight AAAAAAAA\n"
            .to_vec(),
    ];
    // 64 proof lines.
    let many = AddCheckpoint {
        old: TreeSize(5),
        proof: vec![log.root_at(1); 64],
        checkpoint: cp.clone(),
    };
    bodies.push(many.to_bytes());
    for body in &bodies {
        let err = w.add_checkpoint(body, NOW).unwrap_err();
        assert_eq!(
            err.status(),
            400,
            "{err} for {:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Old size beyond the checkpoint's size.
    let body = AddCheckpoint {
        old: TreeSize(11),
        proof: vec![],
        checkpoint: cp,
    }
    .to_bytes();
    let err = w.add_checkpoint(&body, NOW).unwrap_err();
    assert!(matches!(err, WitnessError::OldAfterSize { .. }), "{err}");
    assert_eq!(err.status(), 400);
    assert_eq!(record(&w, ORIGIN).size, TreeSize(0));
}

#[test]
fn status_403_without_a_valid_signature_by_the_log_key() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();

    // Signed by another key with the log's name: ignored, so no known signature.
    let impostor = TestLog::new(ORIGIN, 2, 10);
    let err = w.add_checkpoint(&impostor.request(0, 10), NOW).unwrap_err();
    assert_eq!(err.status(), 403, "{err}");
    assert!(matches!(
        err,
        WitnessError::Signature(NoteError::NoKnownSignature)
    ));

    // The log's key, but the signature does not verify: also refused.
    let mut note = Note::parse(&log.checkpoint_at(10)).unwrap();
    let mut sig = note.signatures()[0].clone();
    sig.signature[10] ^= 1;
    note.add_signature(sig).unwrap();
    let body = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: note.to_bytes(),
    }
    .to_bytes();
    let err = w.add_checkpoint(&body, NOW).unwrap_err();
    assert_eq!(err.status(), 403, "{err}");
    assert!(matches!(
        err,
        WitnessError::Signature(NoteError::InvalidSignature { .. })
    ));
    assert_eq!(record(&w, ORIGIN).size, TreeSize(0));
}

#[test]
fn status_404_for_an_unknown_origin() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let stranger = TestLog::new("stranger.test/log", 3, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    let err = w.add_checkpoint(&stranger.request(0, 10), NOW).unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    assert!(matches!(err, WitnessError::UnknownOrigin(ref o) if o == "stranger.test/log"));
}

#[test]
fn status_409_when_old_is_not_the_latest_cosigned_size() {
    let log = TestLog::new(ORIGIN, 1, 30);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    // Never cosigned: the latest size is 0.
    let err = w.add_checkpoint(&log.request(5, 10), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WitnessError::Conflict {
                latest: TreeSize(0),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.status(), 409);

    w.add_checkpoint(&log.request(0, 10), NOW).unwrap();
    // Clients discover the size with old 0.
    let err = w.add_checkpoint(&log.request(0, 20), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WitnessError::Conflict {
                latest: TreeSize(10),
                ..
            }
        ),
        "{err}"
    );
    // A stale old size with a correct proof from it.
    let err = w.add_checkpoint(&log.request(5, 20), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WitnessError::Conflict {
                latest: TreeSize(10),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.status(), 409);
    w.add_checkpoint(&log.request(10, 20), NOW).unwrap();
}

#[test]
fn status_422_for_proofs_that_do_not_verify_and_empty_tree_rules() {
    let log = TestLog::new(ORIGIN, 1, 30);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();

    // Size 0 with a root that is not the empty tree's.
    let bad_empty = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: Checkpoint::new(ORIGIN, TreeSize(0), log.root_at(1))
            .sign(&log.key)
            .unwrap()
            .to_bytes(),
    };
    let err = w.add_checkpoint(&bad_empty.to_bytes(), NOW).unwrap_err();
    assert!(matches!(err, WitnessError::EmptyTreeRoot), "{err}");
    assert_eq!(err.status(), 422);

    // Old 0 with proof lines.
    let with_proof = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![log.root_at(3)],
        checkpoint: log.checkpoint_at(10),
    };
    let err = w.add_checkpoint(&with_proof.to_bytes(), NOW).unwrap_err();
    assert!(matches!(err, WitnessError::ProofFromEmpty(1)), "{err}");
    assert_eq!(err.status(), 422);

    w.add_checkpoint(&log.request(0, 10), NOW).unwrap();
    let before = snapshot(&w, ORIGIN);

    // A proof with a flipped bit, one hash too few, one too many, for other sizes.
    let good = log.proof(10, 20);
    let mut flipped = good.clone();
    flipped[0].0[0] ^= 1;
    let mut short = good.clone();
    short.pop();
    let mut long = good.clone();
    long.push(log.root_at(2));
    for proof in [flipped, short, long, log.proof(9, 20), log.proof(10, 21)] {
        let body = AddCheckpoint {
            old: TreeSize(10),
            proof,
            checkpoint: log.checkpoint_at(20),
        };
        let err = w.add_checkpoint(&body.to_bytes(), NOW).unwrap_err();
        assert!(matches!(err, WitnessError::Inconsistent { .. }), "{err}");
        assert_eq!(err.status(), 422);
    }
    // Old equal to the size with a (needless) proof line.
    let body = AddCheckpoint {
        old: TreeSize(10),
        proof: vec![log.root_at(10)],
        checkpoint: log.checkpoint_at(10),
    };
    assert_eq!(status(w.add_checkpoint(&body.to_bytes(), NOW)), 422);
    assert_eq!(snapshot(&w, ORIGIN), before);
}

#[test]
fn forks_are_refused_and_leave_the_state_unchanged() {
    let log = TestLog::new(ORIGIN, 1, 50);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    w.add_checkpoint(&log.request(0, 20), NOW).unwrap();
    let before = snapshot(&w, ORIGIN);

    // The same key signs another history: different entries from index 15.
    let mut fork = TestLog::new(ORIGIN, 1, 0);
    for i in 0..50u64 {
        let entry = if i < 15 {
            format!("{} entry {i} {}", ORIGIN, log.vkey())
        } else {
            format!("forked entry {i}")
        };
        fork.tree.append(entry.as_bytes());
    }
    assert_eq!(fork.root_at(15), log.root_at(15));
    assert_ne!(fork.root_at(20), log.root_at(20));

    // Same size, different root: 422 under the current spec (v1.0.0 said 409).
    let err = w.add_checkpoint(&fork.request(20, 20), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WitnessError::SameSizeDifferentRoot { size: TreeSize(20) }
        ),
        "{err}"
    );
    assert_eq!(err.status(), 422);

    // Larger size with a proof from the forked tree (valid for the fork, not
    // for what was cosigned).
    let err = w.add_checkpoint(&fork.request(20, 40), NOW).unwrap_err();
    assert!(matches!(err, WitnessError::Inconsistent { .. }), "{err}");
    assert_eq!(err.status(), 422);

    // Larger forked size with the honest log's proof.
    let body = AddCheckpoint {
        old: TreeSize(20),
        proof: log.proof(20, 40),
        checkpoint: fork.checkpoint_at(40),
    };
    assert_eq!(status(w.add_checkpoint(&body.to_bytes(), NOW)), 422);

    // And through the discovery path: old 0 is 409, never a cosignature.
    assert_eq!(status(w.add_checkpoint(&fork.request(0, 40), NOW)), 409);
    assert_eq!(snapshot(&w, ORIGIN), before);

    // The honest log still advances.
    w.add_checkpoint(&log.request(20, 40), NOW).unwrap();
}

#[test]
fn rollbacks_are_refused_and_leave_the_state_unchanged() {
    let log = TestLog::new(ORIGIN, 1, 50);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    w.add_checkpoint(&log.request(0, 40), NOW).unwrap();
    let before = snapshot(&w, ORIGIN);
    // A smaller checkpoint, with every old size a client could send.
    let older = log.checkpoint_at(30);
    for (old, want) in [(40u64, 400u16), (30, 409), (20, 409), (0, 409)] {
        let proof = if old == 0 || old >= 30 {
            vec![]
        } else {
            log.proof(old, 30)
        };
        let body = AddCheckpoint {
            old: TreeSize(old),
            proof,
            checkpoint: older.clone(),
        };
        assert_eq!(
            status(w.add_checkpoint(&body.to_bytes(), NOW)),
            want,
            "old {old}"
        );
    }
    assert_eq!(snapshot(&w, ORIGIN), before);
}

#[test]
fn thirty_two_racing_requests_from_one_old_size_exactly_one_wins() {
    let log = TestLog::new(ORIGIN, 1, 100);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    w.add_checkpoint(&log.request(0, 10), NOW).unwrap();
    for round in 0..5u64 {
        let old = record(&w, ORIGIN).size.get();
        // Every thread advances from the same old size, to different sizes.
        let bodies: Vec<Vec<u8>> = (0..32).map(|i| log.request(old, old + 1 + i % 8)).collect();
        let barrier = Arc::new(Barrier::new(bodies.len()));
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let w = w.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    w.add_checkpoint(&body, NOW + round)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}");
        let now = record(&w, ORIGIN).size;
        assert!(now.get() > old);
        for r in results {
            match r {
                Ok(_) => {}
                Err(WitnessError::Conflict { old: o, latest }) => {
                    assert_eq!(o, TreeSize(old));
                    // Refused before or at the commit: either way the
                    // answer is the winner's size.
                    assert_eq!(latest, now);
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}

#[test]
fn a_restart_keeps_the_state() {
    let log = TestLog::new(ORIGIN, 1, 60);
    let tw = TestWitness::new(&[&log]);
    {
        let w = tw.open();
        w.add_checkpoint(&log.request(0, 20), NOW).unwrap();
        w.add_checkpoint(&log.request(20, 33), NOW + 5).unwrap();
    }
    let w = tw.open();
    let r = record(&w, ORIGIN);
    assert_eq!(
        (r.size, r.root, r.cosigned_at),
        (TreeSize(33), log.root_at(33), Some(NOW + 5))
    );
    let err = w.add_checkpoint(&log.request(0, 60), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WitnessError::Conflict {
                latest: TreeSize(33),
                ..
            }
        ),
        "{err}"
    );
    // A fork of the stored state is still recognised after the restart.
    let mut fork = TestLog::new(ORIGIN, 1, 0);
    for i in 0..33u64 {
        fork.tree.append(format!("other {i}").as_bytes());
    }
    assert_eq!(status(w.add_checkpoint(&fork.request(33, 33), NOW)), 422);
    // And the cosignature time never goes back, even across a restart.
    let answer = w.add_checkpoint(&log.request(33, 60), NOW).unwrap();
    assert_cosigns(&w, &answer, &log.checkpoint_at(60), NOW + 5);
}

#[test]
fn cosignature_matches_the_public_cosignature_v1_vector() {
    // core/testdata/cosignature/derived_cosignature_v1.json: the witness key
    // Wit1 from transparency-dev/formats cosigning the C2SP example checkpoint
    // at the spec's example time.
    let vectors: serde_json::Value = serde_json::from_str(include_str!(
        "../../core/testdata/cosignature/derived_cosignature_v1.json"
    ))
    .unwrap();
    let v = &vectors["vectors"][0];
    assert_eq!(v["cosigner"], "Wit1");
    let formats: serde_json::Value = serde_json::from_str(include_str!(
        "../../core/testdata/cosignature/formats_test_vectors.json"
    ))
    .unwrap();
    let wit1 = SignerKey::parse(formats["ed25519_keys"]["Wit1"]["skey"].as_str().unwrap())
        .unwrap()
        .with_key_type(KeyType::CosignatureV1);
    assert_eq!(
        wit1.verifier().to_string(),
        v["cosig_vkey"].as_str().unwrap()
    );

    // The example's log key is not public: sign the same body with ours.
    let body = v["checkpoint_body"].as_str().unwrap();
    let origin = body.lines().next().unwrap();
    let log_key = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [9; 32]);
    let mut note = Note::new(body).unwrap();
    note.sign(&log_key, 0).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("witness.db");
    store::create(&db).unwrap();
    common::add_log(&db, origin, log_key.verifier());
    let w = Witness::open(&db, wit1).unwrap();
    let request = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: note.to_bytes(),
    };
    let timestamp = v["timestamp"].as_u64().unwrap();
    let answer = w.add_checkpoint(&request.to_bytes(), timestamp).unwrap();
    assert_eq!(
        String::from_utf8(answer).unwrap(),
        v["signature_line"].as_str().unwrap()
    );
}

#[test]
fn foreign_logs_can_be_witnessed() {
    // A Sigsum-style origin, its key named after the origin.
    let sigsum_origin =
        "sigsum.org/v1/tree/4e89cc51651f0d95f3c6127c15e1a42e3ddf7046c5b17b752689c402e773bb4d";
    let sigsum = TestLog::new(sigsum_origin, 5, 300);
    // A log whose key name is not its origin (allowed: the spec says SHOULD).
    let other_key = SignerKey::from_seed(
        KeyName::new("transparency.example-key").unwrap(),
        KeyType::Ed25519,
        [6; 32],
    );
    let mut other = TestLog::new("transparency.example/log/2025h2", 6, 77);
    other.key = other_key;
    let tw = TestWitness::new(&[&sigsum]);
    tw.add_log(&other.origin, other.vkey());
    let w = tw.open();
    for log in [&sigsum, &other] {
        let answer = w.add_checkpoint(&log.request(0, 50), NOW).unwrap();
        assert_cosigns(&w, &answer, &log.checkpoint_at(50), NOW);
        let answer = w.add_checkpoint(&log.request(50, log.size()), NOW).unwrap();
        assert_cosigns(&w, &answer, &log.checkpoint_at(log.size()), NOW);
    }
    assert_eq!(w.logs().unwrap().len(), 2);
}

#[test]
fn a_log_added_while_serving_is_found() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let late = TestLog::new("late.test/log", 7, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    assert_eq!(status(w.add_checkpoint(&late.request(0, 10), NOW)), 404);
    tw.add_log(&late.origin, late.vkey());
    w.add_checkpoint(&late.request(0, 10), NOW).unwrap();
}

#[test]
fn other_signatures_in_the_request_are_ignored_and_not_stored() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    let mut note = Note::parse(&log.checkpoint_at(10)).unwrap();
    let other = common::witness_key("other.witness/w9");
    note.sign(&other, 123).unwrap();
    let stranger = SignerKey::from_seed(KeyName::new("x").unwrap(), KeyType::Ed25519, [8; 32]);
    note.sign(&stranger, 0).unwrap();
    let body = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: note.to_bytes(),
    };
    w.add_checkpoint(&body.to_bytes(), NOW).unwrap();
    let stored = Note::parse(&w.checkpoint(&origin_hash(ORIGIN)).unwrap().unwrap()).unwrap();
    let names: Vec<&str> = stored
        .signatures()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, [ORIGIN, "witness.test/w1"]);
}

#[test]
fn add_log_and_open_refuse_what_cannot_work() {
    let log = TestLog::new(ORIGIN, 1, 1);
    let tw = TestWitness::new(&[&log]);
    let mut conn = store::open(&tw.db()).unwrap();
    // Same origin and key again: nothing to do.
    assert_eq!(
        store::add_log(&mut conn, ORIGIN, log.vkey(), NOW).unwrap(),
        daylight_witness::AddLog::AlreadyKnown
    );
    // Same origin, another key.
    let other = TestLog::new(ORIGIN, 2, 1);
    assert!(matches!(
        store::add_log(&mut conn, ORIGIN, other.vkey(), NOW),
        Err(StoreError::OriginTaken { .. })
    ));
    // A cosignature key cannot sign checkpoints.
    let cosig: VerifierKey = common::witness_key("w").verifier().clone();
    assert!(matches!(
        store::add_log(&mut conn, "x.test", &cosig, NOW),
        Err(StoreError::WrongKeyType(KeyType::CosignatureV1))
    ));
    for bad in ["", "a\nb", "tab\there"] {
        assert!(matches!(
            store::add_log(&mut conn, bad, log.vkey(), NOW),
            Err(StoreError::BadOrigin(_))
        ));
    }
    // The witness's own key must be a cosignature key.
    assert!(matches!(
        Witness::open(&tw.db(), log.key.clone()),
        Err(WitnessError::NotACosignatureKey)
    ));
    // Creating over an existing database, or opening a missing one, fails.
    assert!(matches!(
        store::create(&tw.db()),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store::open(&tw.dir.path().join("nope.db")),
        Err(StoreError::Missing(_))
    ));
}

#[test]
fn a_zero_clock_is_refused() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let w = tw.open();
    let err = w.add_checkpoint(&log.request(0, 10), 0).unwrap_err();
    assert!(matches!(err, WitnessError::Clock));
    assert_eq!(record(&w, ORIGIN).size, TreeSize(0));
}

#[test]
fn a_rotated_log_key_replaces_the_old_one_and_the_state_still_binds() {
    let log = TestLog::new(ORIGIN, 1, 60);
    // The same log (same entries) after its key rotated.
    let mut rotated = TestLog::new(ORIGIN, 1, 60);
    rotated.key = TestLog::new(ORIGIN, 2, 0).key;
    assert_ne!(rotated.vkey(), log.vkey());
    let tw = TestWitness::new(&[&log]);
    tw.open().add_checkpoint(&log.request(0, 20), NOW).unwrap();
    let mut conn = store::open(&tw.db()).unwrap();
    store::rotate_log_key(&mut conn, ORIGIN, rotated.vkey()).unwrap();
    assert!(matches!(
        store::rotate_log_key(&mut conn, "unknown.test", rotated.vkey()),
        Err(StoreError::UnknownOrigin(_))
    ));
    // Another log's key is not this log's successor.
    let stranger = TestLog::new("other.test/log", 3, 0);
    assert!(matches!(
        store::rotate_log_key(&mut conn, ORIGIN, stranger.vkey()),
        Err(StoreError::KeyNameChanged { .. })
    ));
    let w = tw.open();
    // Signed by the old key alone: no longer the log's.
    assert_eq!(status(w.add_checkpoint(&log.request(20, 40), NOW + 1)), 403);
    let answer = w.add_checkpoint(&rotated.request(20, 40), NOW + 2).unwrap();
    assert_cosigns(&w, &answer, &rotated.checkpoint_at(40), NOW + 2);
    // What was cosigned under the old key still binds: a fork is refused.
    let mut fork = TestLog::new(ORIGIN, 2, 0);
    for i in 0..40u64 {
        fork.tree.append(format!("other {i}").as_bytes());
    }
    assert_eq!(
        status(w.add_checkpoint(&fork.request(40, 40), NOW + 3)),
        422
    );
}
