//! Secrets: no plaintext target, nor the order document's hash, from any
//! submitted draft ever appears in the log's files (database, WAL), its
//! tiles, entry bundles or any API or web response; signer key files are
//! written 0600 and refused when others can read them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use daylight_core::tile::{new_tiles, BundleCoord, TILE_WIDTH};
use daylight_core::TreeSize;
use reliability::{daylight, ok, LogDir, Rng};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_secret_reaches_the_log() {
    let log = LogDir::new("log.test/secrets", 0);
    let mut rng = Rng::from_env("secrets");
    let mut server = log.serve();
    let url = server.url();
    let http = reqwest::Client::new();

    // Secrets: each record's targets, and its order document hash.
    let mut secrets: Vec<String> = Vec::new();
    // Two through the real client (`daylight agency submit`).
    for n in 0..2 {
        let targets = vec![
            format!("acct:cli-secret-{n}-{}", rng.next()),
            format!("+4420{}", rng.below(1_000_000_000)),
        ];
        let mut v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../schemas/examples/request.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let now = chrono::Utc::now();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        v["valid_from"] = fmt(now - chrono::Duration::days(1)).into();
        v["valid_until"] = fmt(now + chrono::Duration::days(30)).into();
        v["sealed_until"] = fmt(now + chrono::Duration::days(365)).into();
        v["targets"] = serde_json::json!(targets);
        let mut doc = [0u8; 32];
        rng.fill(&mut doc);
        let doc: String = doc.iter().map(|b| format!("{b:02x}")).collect();
        v["order_document_sha256"] = doc.clone().into();
        let draft = log.path(&format!("draft{n}.json"));
        std::fs::write(&draft, v.to_string()).unwrap();
        let out = log.path(&format!("out{n}"));
        ok(&[
            "agency",
            "submit",
            "--log",
            &url,
            "--key",
            log.agency_file.to_str().unwrap(),
            "--draft",
            draft.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        // The opening (the provider's copy) does hold them: the probe works.
        let opening = std::fs::read(out.join("opening.json")).unwrap();
        assert!(contains(&opening, targets[0].as_bytes()));
        secrets.extend(targets);
        secrets.push(doc);
    }
    // Twenty more over HTTP, several targets each.
    for _ in 0..20 {
        let targets: Vec<String> = (0..3)
            .map(|_| format!("user-secret-{}@mail.example", rng.next()))
            .collect();
        let (rec, _) = reliability::request_draft(&targets)
            .seal(&log.agency, &log.origin, chrono::Utc::now(), &mut |b| {
                rng.fill(b)
            })
            .unwrap();
        let r = http
            .post(format!("{url}/api/v1/entries"))
            .header("content-type", "application/json")
            .body(rec.to_bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        secrets.extend(targets);
    }
    // The example's own order document hash went into all twenty.
    secrets.push("e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae".into());

    // Wait for the checkpoint to cover everything.
    let deadline = Instant::now() + Duration::from_secs(20);
    let size = loop {
        let cp = http
            .get(format!("{url}/checkpoint"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let n: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
        if n >= 23 {
            break n;
        }
        assert!(Instant::now() < deadline, "size stuck at {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Every response a reader can get.
    let mut paths: Vec<String> = [
        "/checkpoint",
        "/api/v1/log",
        "/api/v1/agencies",
        "/metrics",
        "/",
        "/entries",
        "/entries?per_page=500",
        "/entries.json",
        "/entries.csv",
        "/witnesses",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..size {
        paths.push(format!("/api/v1/entries/{i}"));
        paths.push(format!("/api/v1/entries/{i}/proof"));
        paths.push(format!("/entries/{i}"));
    }
    for t in new_tiles(TreeSize(0), TreeSize(size)) {
        paths.push(format!("/{}", t.path()));
    }
    for n in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH) as u16;
        paths.push(format!("/{}", BundleCoord { index: n, width }.path()));
    }
    let mut bytes_checked = 0usize;
    for p in &paths {
        let r = http.get(format!("{url}{p}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
        let body = r.bytes().await.unwrap();
        bytes_checked += body.len();
        for s in &secrets {
            assert!(
                !contains(&body, s.as_bytes()),
                "secret {s:?} appears in GET {p}"
            );
        }
    }

    // Every file the log keeps (database, WAL, shared memory), after a kill
    // so nothing is hidden in a clean shutdown's checkpointing.
    server.kill();
    let mut files = 0;
    for f in std::fs::read_dir(&log.dir).unwrap() {
        let f = f.unwrap().path();
        let data = std::fs::read(&f).unwrap();
        bytes_checked += data.len();
        files += 1;
        for s in &secrets {
            assert!(
                !contains(&data, s.as_bytes()),
                "secret {s:?} appears in {}",
                f.display()
            );
        }
    }
    eprintln!(
        "secrets: {} secrets from 22 records absent from {} responses and {files} files \
         ({bytes_checked} bytes)",
        secrets.len(),
        paths.len()
    );
}

#[test]
fn signer_key_files_are_0600_and_refused_when_shared() {
    let log = LogDir::new("log.test/keys", 0);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&log.agency_file), 0o600, "key generate");
    let log_key = log.dir.join("log.key");
    assert_eq!(mode(&log_key), 0o600, "log init");
    let wdir = log.path("w");
    ok(&[
        "witness",
        "init",
        "--dir",
        wdir.to_str().unwrap(),
        "--name",
        "w.test",
    ]);
    let wkeys: Vec<_> = std::fs::read_dir(&wdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            std::fs::read_to_string(p)
                .map(|t| t.starts_with("PRIVATE+KEY+"))
                .unwrap_or(false)
        })
        .collect();
    assert!(!wkeys.is_empty(), "no witness key file found");
    for k in &wkeys {
        assert_eq!(mode(k), 0o600, "witness init: {}", k.display());
    }

    // Readable by group or others: every command that reads it refuses.
    for bits in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&log.agency_file, std::fs::Permissions::from_mode(bits)).unwrap();
        let o = daylight(&["key", "public", "--key", log.agency_file.to_str().unwrap()]);
        assert!(!o.status.success(), "mode {bits:o} accepted");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("readable by others"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    std::fs::set_permissions(&log_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = daylight(&[
        "log",
        "add-agency",
        "--dir",
        log.dir.to_str().unwrap(),
        "--vkey",
        &log.agency.verifier().to_string(),
    ]);
    assert!(!o.status.success(), "a shared log key was used");
    let o = daylight(&[
        "log",
        "serve",
        "--dir",
        log.dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success(), "log serve used a shared key");
    assert!(String::from_utf8_lossy(&o.stderr).contains("readable by others"));
    std::fs::set_permissions(&wkeys[0], std::fs::Permissions::from_mode(0o604)).unwrap();
    let o = daylight(&[
        "witness",
        "serve",
        "--dir",
        wdir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success(), "witness serve used a shared key");
    assert!(String::from_utf8_lossy(&o.stderr).contains("readable by others"));
}
