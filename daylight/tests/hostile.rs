//! Hostile HTTP input against the real `daylight log serve`: oversize and
//! slow bodies, malformed and deeply nested JSON, huge numbers, wrong content
//! types, replayed records, records by revoked or unknown keys, path tricks
//! on the tile routes. Each gets a 4xx answer with a JSON
//! `{"error", "detail"}` body, and the log does not grow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::time::{Duration, Instant};

use reliability::{ok, LogDir, Rng};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The log's size, from the metrics (`daylight_tree_size`) or the checkpoint.
async fn size(http: &reqwest::Client, url: &str) -> u64 {
    let resp = http.get(format!("{url}/checkpoint")).send().await.unwrap();
    // A log that has not yet published its first checkpoint answers 503
    // (fresh-clone CI once asked that early): no entry is in a checkpoint.
    if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        return 0;
    }
    let body = resp.text().await.unwrap();
    body.lines().nth(1).unwrap().parse().unwrap()
}

/// Asserts a 4xx status and a JSON error body; returns the error code.
async fn refused(resp: reqwest::Response, what: &str) -> String {
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.text().await.unwrap();
    assert!(
        status.is_client_error(),
        "{what}: status {status}, body {body}"
    );
    assert!(
        ct.starts_with("application/json"),
        "{what}: {status} with content type {ct:?}: {body}"
    );
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {body}"));
    let code = v["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        !code.is_empty() && v["detail"].is_string(),
        "{what}: {body}"
    );
    eprintln!("hostile: {what}: {status} {code}");
    code
}

/// GET `path` exactly as written; (status, head, body).
async fn raw_get(port: u16, path: &str) -> (u16, String, String) {
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf))
        .await
        .expect("answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

async fn post(http: &reqwest::Client, url: &str, ct: &str, body: Vec<u8>) -> reqwest::Response {
    http.post(format!("{url}/api/v1/entries"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_nothing_is_stored() {
    let log = LogDir::new("log.test/hostile", 0);
    let mut rng = Rng::from_env("hostile");
    // A second agency, registered then revoked.
    let revoked_file = log.path("revoked.key");
    let revoked_vkey = ok(&[
        "key",
        "generate",
        "--name",
        "revoked.test",
        "--out",
        revoked_file.to_str().unwrap(),
    ]);
    let dir = log.dir.to_str().unwrap();
    ok(&["log", "add-agency", "--dir", dir, "--vkey", &revoked_vkey]);
    ok(&["log", "revoke", "--dir", dir, "--vkey", &revoked_vkey]);
    let revoked =
        daylight_core::SignerKey::parse(std::fs::read_to_string(&revoked_file).unwrap().trim())
            .unwrap();
    let unknown = daylight_core::SignerKey::from_seed(
        daylight_core::KeyName::new("unknown.test").unwrap(),
        daylight_core::KeyType::Ed25519,
        [9; 32],
    );

    let server = log.serve();
    let url = server.url();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // One good record, then its replay: same index, no growth.
    let (good, _) = reliability::request(&log.agency, &log.origin, &mut rng);
    let r = post(&http, &url, "application/json", good.to_bytes()).await;
    assert_eq!(r.status(), 200);
    let index = r.json::<serde_json::Value>().await.unwrap()["index"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while size(&http, &url).await <= index {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = size(&http, &url).await;
    for _ in 0..3 {
        let r = post(&http, &url, "application/json", good.to_bytes()).await;
        assert_eq!(r.status(), 200);
        let again = r.json::<serde_json::Value>().await.unwrap()["index"]
            .as_u64()
            .unwrap();
        assert_eq!(again, index, "a replayed record got a new index");
    }

    let mut refusals = 0u32;
    let good_text = String::from_utf8(good.to_bytes()).unwrap();

    // Bodies.
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("empty body", "application/json", vec![]),
        ("not JSON", "application/json", b"hello".to_vec()),
        (
            "truncated JSON",
            "application/json",
            good.to_bytes()[..100].to_vec(),
        ),
        (
            "invalid UTF-8",
            "application/json",
            vec![0xff, 0xfe, b'{', 0x80],
        ),
        ("JSON null", "application/json", b"null".to_vec()),
        ("JSON array", "application/json", b"[1,2,3]".to_vec()),
        ("deep arrays", "application/json", {
            let mut v = vec![b'['; 30_000];
            v.extend(vec![b']'; 30_000]);
            v
        }),
        ("deep objects", "application/json", {
            let mut s = String::new();
            for _ in 0..6000 {
                s.push_str("{\"a\":");
            }
            s.push('1');
            s.push_str(&"}".repeat(6000));
            s.into_bytes()
        }),
        (
            "huge number",
            "application/json",
            good_text
                .replacen("\"v\":1", &format!("\"v\":1{}", "0".repeat(5000)), 1)
                .replacen(
                    "\"kind\"",
                    &format!("\"n\":1e{},\"kind\"", "9".repeat(400)),
                    1,
                )
                .into_bytes(),
        ),
        (
            "unknown member",
            "application/json",
            good_text.replacen('{', "{\"zz\":1,", 1).into_bytes(),
        ),
        (
            "duplicate member",
            "application/json",
            good_text
                .replacen("\"kind\"", "\"kind\":\"request\",\"kind\"", 1)
                .into_bytes(),
        ),
        ("non-canonical (white space)", "application/json", {
            let mut v = b" ".to_vec();
            v.extend(good.to_bytes());
            v
        }),
        ("wrong content type", "text/plain", good.to_bytes()),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            good.to_bytes(),
        ),
        ("signed by a revoked key", "application/json", {
            reliability::request(&revoked, &log.origin, &mut rng)
                .0
                .to_bytes()
        }),
        ("signed by an unknown key", "application/json", {
            reliability::request(&unknown, &log.origin, &mut rng)
                .0
                .to_bytes()
        }),
        ("tampered signature", "application/json", {
            let fresh = reliability::request(&log.agency, &log.origin, &mut rng)
                .0
                .to_bytes();
            let text = String::from_utf8(fresh).unwrap();
            // Change one character of a public field the signature covers.
            text.replacen("26-MJ-0412", "26-MJ-0413", 1).into_bytes()
        }),
        (
            "oversize body (1 MiB)",
            "application/json",
            vec![b' '; 1 << 20],
        ),
        (
            "oversize body (65536 bytes)",
            "application/json",
            vec![b'{'; 65_536],
        ),
    ];
    for (what, ct, body) in cases {
        refused(post(&http, &url, ct, body).await, what).await;
        refusals += 1;
    }

    // Paths on the tile and entry routes.
    for path in [
        "/tile/../api/v1/log",
        "/tile/0/..%2F..%2Fetc%2Fpasswd",
        "/tile/0/%2e%2e/000",
        "/tile/entries/x001/../000",
        "/tile/0/999999999999999999999999",
        "/tile/0/x999/x999/x999/x999/x999/x999/x999/999",
        "/tile/64/000",
        "/tile/-1/000",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/0/000.p/300",
        "/tile/entries/000.p/0",
        "/tile/entries/001",
        "/tile/0/001",
        "/tile/0/0000",
        "/tile/0/000%00",
        "/tile/entries/x000/000",
        "/tile/",
        "/tile/0/",
        "/api/v1/entries/-1",
        "/api/v1/entries/18446744073709551616",
        "/api/v1/entries/1e3",
        "/api/v1/entries/999999",
        "/api/v1/entries/999999/proof",
        "/api/v1/nothing",
    ] {
        // Raw HTTP: a client library would normalise `..` away.
        let (status, head, body) = raw_get(server.port, path).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{path}: {head}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].is_string() && v["detail"].is_string(),
            "{path}: {body}"
        );
        eprintln!("hostile: GET {path}: {status} {}", v["error"]);
        refusals += 1;
    }

    // A slow body: headers announce 4000 bytes, a few arrive, then the
    // client stalls. The server must still answer others, and nothing of it
    // may be stored once the client gives up.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    slow.write_all(
        b"POST /api/v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"v\":",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let r = http.get(format!("{url}/api/v1/log")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a slow client blocked others"
    );
    // The server gives up on it after its body timeout (10 s) with a JSON 408.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf))
        .await
        .expect("no answer to a stalled body within 20 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"body_timeout\""), "{answer}");
    eprintln!("hostile: stalled body: 408 body_timeout");
    drop(slow);
    refusals += 1;

    // Nothing was stored: the size is unchanged, and the same after a pause
    // (anything in flight would have been integrated by then).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        size(&http, &url).await,
        before,
        "a hostile input was stored"
    );
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    eprintln!(
        "hostile: {refusals} hostile inputs refused with 4xx JSON, log size unchanged at {before}"
    );
    assert!(metrics.contains("daylight"), "{metrics}");
}
