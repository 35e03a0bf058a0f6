//! Go's reference `note` and `tlog` packages read a C2SP tlog-mirror of a
//! Daylight log over HTTP (issue 17): `daylight log serve` pushes to
//! `daylight mirror serve`, both separate processes; Go opens the mirror's
//! checkpoint with the log's key (and, with a cosignature/v1 verifier
//! written beside it, x/mod having none, the mirror's cosignature with the
//! mirror's key), authenticates the mirror's tiles with
//! `tlog.TileHashReader`, and proves entries from its bundles. A tile with
//! one flipped bit, served by a proxy in front of the mirror, is refused;
//! so is another mirror key. (Skipped without Go unless
//! `DAYLIGHT_REQUIRE_GO=1`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../core/tests/go/harness.rs"]
mod harness;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{daylight, free_port, http_get, ok, spawn, wait_ready};
use daylight_core::witness_protocol::origin_hash;
use serde_json::json;

const ORIGIN: &str = "log.test/go-mirror";
/// Past 65536: the mirror serves a level-2 tile too.
const ENTRIES: u64 = 65_600;

/// Waits until the mirror's checkpoint at `prefix` is for `size` entries.
fn wait_mirrored(prefix: &str, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http_get(&format!("{prefix}/checkpoint"));
        if status == 200 && String::from_utf8_lossy(&body).lines().nth(1) == Some(&size.to_string())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the mirror never reached size {size} (last: {status})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A proxy in front of `upstream` (`http://host:port`) that serves every
/// GET as the upstream does, except one flipped bit in each body whose path
/// ends with `tampered`; its URL.
fn tampering_proxy(upstream: String, tampered: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let upstream = upstream.clone();
            std::thread::spawn(move || proxy_one(&mut conn, &upstream, tampered));
        }
    });
    url
}

fn proxy_one(conn: &mut TcpStream, upstream: &str, tampered: &str) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let (status, mut body) = http_get(&format!("{upstream}{path}"));
    if path.ends_with(tampered) && body.len() > 100 {
        body[100] ^= 1;
    }
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
}

#[test]
fn go_reads_a_mirror_of_the_log_with_the_log_and_mirror_keys() {
    let Some(bin) = harness::interop() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let log = log.to_str().unwrap();
    let mirror = tmp.path().join("mirror");
    let mirror = mirror.to_str().unwrap();
    let vkey = ok(&daylight(&[
        "log", "init", "--dir", log, "--origin", ORIGIN, "--quorum", "0",
    ]));
    ok(&daylight(&[
        "bench",
        "fill",
        "--dir",
        log,
        "--entries",
        &ENTRIES.to_string(),
    ]));
    let mirror_vkey = ok(&daylight(&[
        "mirror",
        "init",
        "--dir",
        mirror,
        "--name",
        "mirror.test/go",
    ]));
    ok(&daylight(&[
        "mirror", "add-log", "--dir", mirror, "--origin", ORIGIN, "--vkey", &vkey,
    ]));
    let mirror_url = format!("http://127.0.0.1:{}", free_port());
    ok(&daylight(&[
        "log",
        "add-mirror",
        "--dir",
        log,
        "--vkey",
        &mirror_vkey,
        "--url",
        &mirror_url,
    ]));
    ok(&daylight(&["log", "set-mirror-quorum", "--dir", log, "1"]));
    let listen = mirror_url.trim_start_matches("http://");
    let _mirror = spawn(&["mirror", "serve", "--dir", mirror, "--listen", listen]);
    wait_ready(&mirror_url);
    let log_url = format!("http://127.0.0.1:{}", free_port());
    let _log = spawn(&[
        "log",
        "serve",
        "--dir",
        log,
        "--listen",
        log_url.trim_start_matches("http://"),
    ]);
    wait_ready(&log_url);
    let prefix = format!("{mirror_url}/{}", origin_hash(ORIGIN));
    wait_mirrored(&prefix, ENTRIES);

    let indexes = [0, 1, 255, 256, 65_535, 65_536, ENTRIES - 1];
    let job = |url: &str, mirror_vkey: &str| {
        json!({ "published": {
            "url": url, "vkey": vkey, "mirror_vkey": mirror_vkey, "indexes": indexes
        } })
    };
    let go = harness::run_go(&bin, "mirror", &job(&prefix, &mirror_vkey));
    let p = &go["published"];
    assert_eq!(p["origin"], ORIGIN);
    assert_eq!(p["size"], ENTRIES);
    assert_eq!(p["proved"], indexes.len());
    assert!(p["mirror_timestamp"].as_u64().unwrap() > 0, "{p}");
    // The entries Go took from the mirror's bundles are the log's own
    // (`bench fill` writes "synthetic entry I").
    use base64::Engine as _;
    for (k, &i) in indexes.iter().enumerate() {
        let entry = base64::engine::general_purpose::STANDARD
            .decode(p["entries"][k].as_str().unwrap())
            .unwrap();
        assert_eq!(
            entry,
            format!("synthetic entry {i}").into_bytes(),
            "entry {i}"
        );
    }

    // One flipped bit in the mirror's level-1 tile: Go refuses it.
    let proxy = tampering_proxy(mirror_url.clone(), "/tile/1/000");
    let proxied = format!("{proxy}/{}", origin_hash(ORIGIN));
    let refused = harness::run_go_raw(&bin, "mirror-tampered", &job(&proxied, &mirror_vkey));
    let failures = refused["failures"].as_array().unwrap();
    assert!(!failures.is_empty(), "Go accepted a tampered tile");
    assert!(
        failures
            .iter()
            .all(|f| f.as_str().unwrap().contains("inconsistent tile")),
        "{refused}"
    );
    // Another mirror's key: no cosignature by it.
    let other = ok(&daylight(&[
        "mirror",
        "init",
        "--dir",
        tmp.path().join("other").to_str().unwrap(),
        "--name",
        "mirror.test/go",
    ]));
    let wrong = harness::run_go_raw(&bin, "mirror-wrong-key", &job(&prefix, &other));
    assert!(
        wrong["failures"][0]
            .as_str()
            .unwrap()
            .contains("no cosignature by the mirror's key"),
        "{wrong}"
    );
}
