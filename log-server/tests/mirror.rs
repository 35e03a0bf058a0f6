//! The log pushes to C2SP tlog-mirrors as it does to witnesses: a real
//! `daylight-mirror` server runs in process on a free 127.0.0.1 port, the
//! log sends it add-checkpoint and add-entries, and the mirror's
//! cosignature, verified, ends up on the published checkpoint. With a
//! mirror quorum, nothing is published while the mirror is down, and a
//! mirror whose cosignature does not verify never counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::routing;
use axum::Router;
use common::{client, free_port, post, published, request, Fixture, Mode, TestWitness};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::witness_protocol::origin_hash;
use daylight_core::{Checkpoint, KeyName, KeyType, Note, SignerKey};
use daylight_log_server::integrate::integrate;
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::store::{LogStore, NewEntry};
use serde_json::Value;

fn mirror_key(seed: u8) -> SignerKey {
    SignerKey::from_seed(
        KeyName::new("mirror.test/m1").unwrap(),
        KeyType::CosignatureV1,
        [seed; 32],
    )
}

/// A real mirror of the fixture's log, listening on `listener`; its dir.
fn start_mirror(f: &Fixture, listener: tokio::net::TcpListener) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(daylight_mirror::DB_FILE);
    daylight_mirror::store::create(&db).unwrap();
    let mut conn = daylight_mirror::store::open(&db).unwrap();
    daylight_mirror::store::add_log(&mut conn, common::ORIGIN, f.log_key.verifier(), 1).unwrap();
    let mirror = Arc::new(daylight_mirror::Mirror::open(&db, mirror_key(9)).unwrap());
    tokio::spawn(daylight_mirror::serve(
        listener,
        mirror,
        std::future::pending(),
    ));
    dir
}

/// One honest test witness, added to the log.
async fn honest_witness(f: &Fixture) -> TestWitness {
    let w = TestWitness::start("w0.test", 50, f.log_key.verifier(), Mode::Honest).await;
    f.add_witness(&w);
    w
}

/// Appends `n` plain entries straight into the store (not records: the
/// mirror stores any bytes), so uploads span several packages.
fn grow(f: &Fixture, n: usize) {
    let entries = (0..n)
        .map(|i| {
            let data = format!("mirrored entry {i}").into_bytes();
            NewEntry {
                leaf_hash: daylight_core::leaf_hash(&data),
                data,
                kind: "test".into(),
                signer: "test".into(),
                packed: None,
            }
        })
        .collect();
    integrate(f.store.as_ref(), &f.log_key, common::ORIGIN, entries).unwrap();
}

fn size_of(note: &[u8]) -> u64 {
    let note = Note::parse(note).unwrap();
    Checkpoint::parse_text(note.text()).unwrap().size.get()
}

/// Waits (bounded) until the published checkpoint covers `size` and carries
/// a valid cosignature by `key`; the note.
async fn published_with(c: &reqwest::Client, url: &str, size: u64, key: &SignerKey) -> Note {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let bytes = published(c, url, size).await;
        let note = Note::parse(&bytes).unwrap();
        if !verify_cosignatures(&note, &[key.verifier()])
            .unwrap()
            .is_empty()
        {
            return note;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of size {size} cosigned by the mirror in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pushes_to_its_mirror_and_publishes_its_cosignature() {
    let f = Fixture::new(1);
    let w = honest_witness(&f).await;
    grow(&f, 600);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mirror_url = format!("http://{}", listener.local_addr().unwrap());
    let _mirror_dir = start_mirror(&f, listener);
    f.store
        .add_mirror(mirror_key(9).verifier(), &mirror_url)
        .unwrap();
    f.store.set_mirror_quorum(1).unwrap();
    let size = f.store.size().unwrap().get();
    let log = f.start(BatchConfig::default()).await;
    let c = client();

    // Every published checkpoint carries both the witness's and the
    // mirror's cosignature (the mirror quorum holds publication back).
    let note = published_with(&c, &log.url(), size, &mirror_key(9)).await;
    assert!(!verify_cosignatures(&note, &[w.key.verifier()])
        .unwrap()
        .is_empty());
    // The mirror serves that checkpoint, with its cosignature.
    let hash = origin_hash(common::ORIGIN);
    let r = c
        .get(format!("{mirror_url}/{hash}/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served = r.bytes().await.unwrap();
    assert!(size_of(&served) >= size);

    // A new entry goes up from the mirror's next entry.
    let (status, body) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(status, 200);
    let idx = body["index"].as_u64().unwrap();
    let note = published_with(&c, &log.url(), idx + 1, &mirror_key(9)).await;
    assert!(Checkpoint::parse_text(note.text()).unwrap().size.get() > idx);
    let r = c
        .get(format!("{}/api/v1/entries/{idx}/proof", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let info: Value = common::get_json(&c, &format!("{}/api/v1/log", log.url())).await;
    assert_eq!(info["mirror_quorum"], 1);
    assert_eq!(info["mirrors"][0]["url"], mirror_url.as_str());
    assert_eq!(
        info["mirrors"][0]["vkey"],
        mirror_key(9).verifier().to_string()
    );
    let metrics = common::metrics(&c, &log.url()).await;
    assert!(
        metrics.contains("daylight_mirror_seconds_count"),
        "{metrics}"
    );
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_best_effort_mirror_cosignature_is_added_as_it_comes() {
    // No witness quorum and no mirror quorum: published at once, then again
    // with the mirror's cosignature.
    let f = Fixture::new(0);
    grow(&f, 300);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mirror_url = format!("http://{}", listener.local_addr().unwrap());
    let _mirror_dir = start_mirror(&f, listener);
    f.store
        .add_mirror(mirror_key(9).verifier(), &mirror_url)
        .unwrap();
    let size = f.store.size().unwrap().get();
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    published_with(&c, &log.url(), size, &mirror_key(9)).await;
    let info: Value = common::get_json(&c, &format!("{}/api/v1/log", log.url())).await;
    assert_eq!(info["mirror_quorum"], 0);
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_mirror_quorum_nothing_is_published_while_the_mirror_is_down() {
    let f = Fixture::new(1);
    let _w = honest_witness(&f).await;
    let port = free_port();
    let mirror_url = format!("http://127.0.0.1:{port}");
    f.store
        .add_mirror(mirror_key(9).verifier(), &mirror_url)
        .unwrap();
    f.store.set_mirror_quorum(1).unwrap();
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    let (status, body) = post(&c, &log.url(), request(&f.agency).to_bytes()).await;
    assert_eq!(status, 200);
    let idx = body["index"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = c
        .get(format!("{}/api/v1/entries/{idx}/proof", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_yet_published");
    let r = c
        .get(format!("{}/checkpoint", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    // The mirror comes up: the entry is published, mirror-cosigned.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let _mirror_dir = start_mirror(&f, listener);
    published_with(&c, &log.url(), idx + 1, &mirror_key(9)).await;
    let r = c
        .get(format!("{}/api/v1/entries/{idx}/proof", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_cosignature_that_does_not_verify_is_never_kept() {
    let f = Fixture::new(0);
    // A "mirror" that takes everything and answers add-entries with a line
    // in the mirror key's name and ID over another checkpoint.
    let key = mirror_key(9);
    let app = Router::new()
        .route("/add-checkpoint", routing::post(|| async { "" }))
        .route(
            "/add-entries",
            routing::post(move || {
                let key = key.clone();
                async move {
                    let text = Checkpoint::new(
                        common::ORIGIN,
                        daylight_core::TreeSize(12345),
                        daylight_core::Hash::empty_tree(),
                    )
                    .to_text();
                    format!("{}\n", key.sign_note_text(&text, 1_700_000_000).to_line())
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mirror_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    f.store
        .add_mirror(mirror_key(9).verifier(), &mirror_url)
        .unwrap();
    f.store.set_mirror_quorum(1).unwrap();
    let log = f.start(BatchConfig::default()).await;
    let c = client();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = c
        .get(format!("{}/checkpoint", log.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let metrics = common::metrics(&c, &log.url()).await;
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("daylight_mirror_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 2, "{metrics}");
    log.stop().await.unwrap();

    // Best effort (mirror quorum 0): published, but never with its line.
    f.store.set_mirror_quorum(0).unwrap();
    let log = f.start(BatchConfig::default()).await;
    let bytes = published(&c, &log.url(), 0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let bytes = {
        let again = published(&c, &log.url(), 0).await;
        if again.len() > bytes.len() {
            again
        } else {
            bytes
        }
    };
    let note = Note::parse(&bytes).unwrap();
    assert!(note
        .signatures()
        .iter()
        .all(|s| s.name != *mirror_key(9).verifier().name()));
    log.stop().await.unwrap();
}
