//! A full disk under a running log: the log's directory on a small tmpfs.
//! Submissions that cannot be written get a clear JSON error, nothing
//! acknowledged is lost, reads keep working, and once the filesystem grows
//! the log accepts submissions again. Needs root to mount tmpfs; skipped
//! (with a message) where mounting is not permitted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{daylight, free_port, new_log_with_agency, ok, wait_ready};

/// A tmpfs mount, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_clearly_loses_nothing_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("mnt"), "3m") else {
        eprintln!("skipping: cannot mount tmpfs here (needs root)");
        return;
    };
    let dir = fs.0.join("log");
    let d = dir.to_str().unwrap();
    let agency_key = tmp.path().join("agency.key");
    new_log_with_agency(d, "full.test/log", "0", agency_key.to_str().unwrap());
    let addr = format!("127.0.0.1:{}", free_port());
    let _log = common::spawn(&[
        "log",
        "serve",
        "--dir",
        d,
        "--listen",
        &addr,
        "--key-rate",
        "0",
    ]);
    wait_ready(&addr);
    let url = format!("http://{addr}");

    // Records signed in memory, outside the small filesystem.
    let mut records = common::Records::new(&agency_key, "full.test/log", tmp.path());
    let mut record = || records.next();

    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for _ in 0..10_000 {
        let rec = record();
        let (status, body) = common::post_record(&url, rec.clone());
        if status == 200 {
            acknowledged.push((body["index"].as_u64().unwrap(), rec));
        } else {
            refusal = Some((status, body));
            break;
        }
    }
    let (status, body) = refusal.expect("the 3 MB filesystem never filled");
    eprintln!(
        "disk full after {} acknowledged records: {status} {body}",
        acknowledged.len()
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "storage_unavailable", "{body}");
    assert!(
        acknowledged.len() > 10,
        "the log took {} records before filling",
        acknowledged.len()
    );

    // Reads still work, and every acknowledged entry is there, byte for byte.
    for (index, rec) in &acknowledged {
        let (s, body) = common::http_get(&format!("{url}/api/v1/entries/{index}"));
        assert_eq!(s, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let stored = serde_json::to_vec(&v["record"]).unwrap();
        let original: serde_json::Value = serde_json::from_slice(rec).unwrap();
        assert_eq!(
            v["record"],
            original,
            "entry {index} changed ({} bytes)",
            stored.len()
        );
    }

    // The disk grows: submissions are accepted again, after the last acknowledged one.
    fs.resize("64m");
    let (s, body) = common::post_record(&url, record());
    assert_eq!(s, 200, "{body}");
    assert!(body["index"].as_u64().unwrap() > acknowledged.last().unwrap().0);
}

/// Linux will not remount a filesystem read-only while the log holds its
/// database open for writing, so this tests the other case: the log's
/// directory is read-only when the server starts.
#[test]
fn a_read_only_filesystem_is_refused_at_start_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("mnt"), "64m") else {
        eprintln!("skipping: cannot mount tmpfs here (needs root)");
        return;
    };
    let dir = fs.0.join("log");
    let d = dir.to_str().unwrap();
    ok(&daylight(&[
        "log",
        "init",
        "--dir",
        d,
        "--origin",
        "ro.test/log",
        "--quorum",
        "0",
    ]));
    let remount = |mode: &str| {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&fs.0)
            .status()
            .unwrap();
        assert!(status.success());
    };
    remount("ro");
    let addr = format!("127.0.0.1:{}", free_port());
    let o = Command::new(env!("CARGO_BIN_EXE_daylight"))
        .args(["log", "serve", "--dir", d, "--listen", &addr])
        .output()
        .unwrap();
    assert!(!o.status.success(), "served from a read-only filesystem");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let last = err.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("daylight: ") && last.contains("log"),
        "{err}"
    );
    remount("rw");
    let _log = common::spawn(&["log", "serve", "--dir", d, "--listen", &addr]);
    wait_ready(&addr);
    let (s, _) = common::http_get(&format!("http://{addr}/api/v1/log"));
    assert_eq!(s, 200);
}
