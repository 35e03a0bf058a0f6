//! Go's reference `note` package (golang.org/x/mod/sumdb/note) opens the
//! checkpoints the log signs during a key rotation, with the old key, the
//! new key, or both, and refuses one whose rotated-out signature is broken.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/tests/go/harness.rs"]
mod harness;

use daylight_core::{Checkpoint, KeyName, KeyType, SignerKey, TreeSize};
use daylight_log_server::integrate::{CheckpointSigner, LogKeys};
use serde_json::json;

const ORIGIN: &str = "rotation.daylight.example/log";

fn key(seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [seed; 32])
}

#[test]
fn go_opens_a_checkpoint_signed_by_the_old_and_the_new_log_key() {
    let Some(bin) = harness::interop() else {
        return;
    };
    let (old, new) = (key(1), key(2));
    let until = chrono::Utc::now() + chrono::Duration::days(7);
    let keys = LogKeys::new(new.clone(), vec![(old.clone(), until)]);
    let checkpoint = Checkpoint::new(ORIGIN, TreeSize(5), daylight_core::leaf_hash(b"root"));
    let note = keys.sign_checkpoint(&checkpoint).unwrap();
    assert_eq!(
        note.signatures().len(),
        2,
        "both keys sign during the transition"
    );
    let msg = String::from_utf8(note.to_bytes()).unwrap();
    // Break the old key's signature (the second line): a known key's bad
    // signature must refuse the whole note, in Go as in ours.
    let lines: Vec<&str> = msg.lines().collect();
    let last = lines[lines.len() - 1];
    let mut bad: Vec<char> = last.chars().collect();
    let at = bad.len() - 10;
    bad[at] = if bad[at] == 'A' { 'B' } else { 'A' };
    let broken = msg.replace(last, &bad.into_iter().collect::<String>());
    // After the transition the new key alone signs.
    let after = LogKeys::new(new.clone(), vec![(old.clone(), chrono::Utc::now())]);
    let later = String::from_utf8(after.sign_checkpoint(&checkpoint).unwrap().to_bytes()).unwrap();
    let (old_vkey, new_vkey) = (old.verifier().to_string(), new.verifier().to_string());
    let text = checkpoint.to_text();
    let opens = [
        ("old key only", &msg, vec![old_vkey.clone()], true),
        ("new key only", &msg, vec![new_vkey.clone()], true),
        (
            "both keys",
            &msg,
            vec![old_vkey.clone(), new_vkey.clone()],
            true,
        ),
        (
            "old signature broken",
            &broken,
            vec![old_vkey.clone()],
            false,
        ),
        (
            "after the transition, old key",
            &later,
            vec![old_vkey.clone()],
            false,
        ),
        (
            "after the transition, new key",
            &later,
            vec![new_vkey.clone()],
            true,
        ),
    ];
    let job = json!({
        "open": opens.iter().map(|(label, msg, vkeys, ok)| json!({
            "label": label, "msg": msg, "vkeys": vkeys, "expect_ok": ok, "want_text": text,
        })).collect::<Vec<_>>(),
    });
    let go = harness::run_go(&bin, "rotation", &job);
    let results = go["open"].as_array().unwrap();
    assert_eq!(results.len(), opens.len());
    for ((label, _, _, ok), r) in opens.iter().zip(results) {
        assert_eq!(r["ok"].as_bool(), Some(*ok), "Go on {label}: {r}");
    }
    // Both keys open: Go reports both signatures verified.
    assert_eq!(
        results[2]["sigs"].as_array().unwrap().len(),
        2,
        "{}",
        results[2]
    );
    // And ours agrees on every case.
    for (label, msg, vkeys, ok) in &opens {
        let keys: Vec<daylight_core::VerifierKey> = vkeys
            .iter()
            .map(|k| daylight_core::VerifierKey::parse(k).unwrap())
            .collect();
        let refs: Vec<&daylight_core::VerifierKey> = keys.iter().collect();
        let ours = daylight_core::SignedCheckpoint::open_any(msg.as_bytes(), &refs);
        assert_eq!(ours.is_ok(), *ok, "Daylight on {label}: {ours:?}");
    }
}
