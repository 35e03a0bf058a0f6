//! Go's reference `note` and `tlog` packages read a log published as static
//! files by `daylight log serve --publish-dir`, with nothing but the log's
//! verifier key: the checkpoint opens, the tiles authenticate against it,
//! and entries taken from the bundles prove into it. A tampered tile is
//! refused. (Skipped without Go unless `DAYLIGHT_REQUIRE_GO=1`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../core/tests/go/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{daylight, free_port, http_get, ok, wait_ready, Server};
use serde_json::json;

const ENTRIES: u64 = 70_000;

/// Waits until `dir/checkpoint` is for `size` entries.
fn wait_published(dir: &Path, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("checkpoint")) {
            if text.lines().nth(1) == Some(&size.to_string()) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the directory never reached size {size}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn go_reads_a_published_directory_with_only_the_log_key() {
    let Some(bin) = harness::interop() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let public = tmp.path().join("public");
    let vkey = ok(&daylight(&[
        "log",
        "init",
        "--dir",
        log.to_str().unwrap(),
        "--origin",
        "log.test/go",
        "--quorum",
        "0",
    ]));
    ok(&daylight(&[
        "bench",
        "fill",
        "--dir",
        log.to_str().unwrap(),
        "--entries",
        &ENTRIES.to_string(),
    ]));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args(["log", "serve", "--dir", log.to_str().unwrap(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--publish-dir")
            .arg(&public)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&url);
    let (_, cp) = http_get(&format!("{url}/checkpoint"));
    let served_size: u64 = String::from_utf8_lossy(&cp)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    wait_published(&public, served_size);

    let indexes = [0, 1, 255, 256, 65_535, 65_536, served_size - 1];
    let job = |dir: &Path| json!({ "published": { "dir": dir, "vkey": vkey, "indexes": indexes } });
    let go = harness::run_go(&bin, "published", &job(&public));
    let p = &go["published"];
    assert_eq!(p["origin"], "log.test/go");
    assert_eq!(p["size"], served_size);
    assert_eq!(p["proved"], indexes.len());
    // The entries Go took from the directory's bundles are the log's own.
    for (k, &i) in indexes.iter().enumerate() {
        let bundle = daylight_core::tile::BundleCoord {
            index: i / 256,
            width: (served_size - i / 256 * 256).min(256) as u16,
        };
        let (status, data) = http_get(&format!("{url}/{}", bundle.path()));
        assert_eq!(status, 200);
        let entries = daylight_core::tile::parse_entry_bundle(&data, bundle.width).unwrap();
        use base64::Engine as _;
        let go_entry = base64::engine::general_purpose::STANDARD
            .decode(p["entries"][k].as_str().unwrap())
            .unwrap();
        assert_eq!(go_entry, entries[(i % 256) as usize], "entry {i}");
    }

    // A copy with one flipped bit in a level-1 tile: Go refuses it.
    let tampered = tmp.path().join("tampered");
    copy_dir(&public, &tampered);
    let tile = tampered.join("tile/1/000");
    let mut data = std::fs::read(&tile).unwrap();
    data[100] ^= 1;
    std::fs::write(&tile, data).unwrap();
    let refused = harness::run_go_raw(&bin, "published-tampered", &job(&tampered));
    let failures = refused["failures"].as_array().unwrap();
    assert!(!failures.is_empty(), "Go accepted a tampered tile");
    // Another key: the checkpoint does not open.
    let other = ok(&daylight(&[
        "key",
        "generate",
        "--name",
        "log.test/go",
        "--out",
        tmp.path().join("other.key").to_str().unwrap(),
    ]));
    let wrong = harness::run_go_raw(
        &bin,
        "published-wrong-key",
        &json!({ "published": { "dir": public, "vkey": other, "indexes": [0] } }),
    );
    assert!(
        wrong["failures"][0]
            .as_str()
            .unwrap()
            .contains("does not open"),
        "{wrong}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
