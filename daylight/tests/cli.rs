//! The `daylight` binary as a user runs it: separate processes, real files.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
mod common;

use common::{daylight, stderr, stdout};

#[test]
fn help_lists_the_commands() {
    let o = daylight(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("key"));
    let o = daylight(&["key", "generate", "--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--name"));
}

#[test]
fn key_generate_writes_a_private_key_file_and_prints_its_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agency.key");
    let f = file.to_str().unwrap();
    let o = daylight(&["key", "generate", "--name", "agency.example", "--out", f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let vkey = stdout(&o).trim().to_owned();
    let parsed = daylight_core::VerifierKey::parse(&vkey).unwrap();
    assert_eq!(parsed.name().as_str(), "agency.example");
    assert_eq!(parsed.key_type(), daylight_core::KeyType::Ed25519);

    let secret = std::fs::read_to_string(&file).unwrap();
    let signer = daylight_core::SignerKey::parse(secret.trim()).unwrap();
    assert_eq!(signer.verifier(), &parsed);
    assert_mode_0600(&file);

    // `key public` prints the same verifier key.
    let o = daylight(&["key", "public", "--key", f]);
    assert_eq!(stdout(&o).trim(), vkey);

    // Never overwrites: the second run fails with one line and leaves the key.
    let o = daylight(&["key", "generate", "--name", "other", "--out", f]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("agency.key"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
}

#[test]
fn witness_keys_are_cosignature_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.key");
    let o = daylight(&[
        "key",
        "generate",
        "--name",
        "witness.example",
        "--use",
        "cosignature",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let parsed = daylight_core::VerifierKey::parse(stdout(&o).trim()).unwrap();
    assert_eq!(parsed.key_type(), daylight_core::KeyType::CosignatureV1);
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k");
    let o = daylight(&[
        "key",
        "generate",
        "--name",
        "has space",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid key name"));
    assert!(!file.exists(), "nothing written on error");

    std::fs::write(&file, "not a key\n").unwrap();
    let o = daylight(&["key", "public", "--key", file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    // A key file others can read is refused, not used.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let shared = dir.path().join("shared.key");
        let o = daylight(&[
            "key",
            "generate",
            "--name",
            "x",
            "--out",
            shared.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = daylight(&["key", "public", "--key", shared.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("readable by others"), "{}", stderr(&o));
    }

    let o = daylight(&["key", "public", "--key", "/nonexistent/key"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/key"));
}

#[cfg(unix)]
fn assert_mode_0600(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
}

#[cfg(not(unix))]
fn assert_mode_0600(_: &Path) {}
