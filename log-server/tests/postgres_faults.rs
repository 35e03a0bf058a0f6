//! The log on PostgreSQL when the database misbehaves: connections cut by
//! the server mid-run, and a server that refuses connections. Submissions
//! get 503 `storage_unavailable` (never a 500, never a lost acknowledged
//! entry) and the log reconnects by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{key, request, ORIGIN};
use daylight_core::KeyType;
use daylight_log_server::integrate::{append_record, integrate};
use daylight_log_server::postgres::{PostgresStore, ScratchSchema};
use daylight_log_server::sequencer::BatchConfig;
use daylight_log_server::store::LogStore;
use daylight_schemas::{Record, Role};

/// Cuts every connection the log holds (they carry the schema's name as
/// their application name), as a database restart or failover would.
fn cut_connections(schema: &ScratchSchema) -> u64 {
    let (base, name) = (
        std::env::var("DAYLIGHT_TEST_POSTGRES")
            .unwrap_or_else(|_| ScratchSchema::DEFAULT_URL.to_string()),
        schema.name().to_string(),
    );
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        let rows = c
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .unwrap();
        rows.len() as u64
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_answer_503_and_the_log_reconnects() {
    let Some(schema) = ScratchSchema::for_tests() else {
        return;
    };
    let log_key = key(ORIGIN, KeyType::Ed25519, 1);
    let agency = key("agency.test", KeyType::Ed25519, 2);
    let store: Arc<dyn LogStore> = {
        let (url, log_key, agency) = (schema.url().to_string(), log_key.clone(), agency.clone());
        tokio::task::spawn_blocking(move || {
            let store = PostgresStore::create(&url, ORIGIN, 0).unwrap();
            integrate(&store, &log_key, ORIGIN, vec![]).unwrap();
            let reg = Record::registry_add(Role::Agency, agency.verifier(), chrono::Utc::now())
                .unwrap()
                .sign(&log_key, ORIGIN)
                .unwrap();
            append_record(&store, &log_key, &reg, log_key.verifier()).unwrap();
            Arc::new(store) as Arc<dyn LogStore>
        })
        .await
        .unwrap()
    };
    let log = common::log_server(store.clone(), &log_key, BatchConfig::default())
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let submit = |body: Vec<u8>| {
        let (http, url) = (http.clone(), log.url());
        async move { common::post_retry(&http, &url, body).await }
    };
    let mut acked = Vec::new();
    for _ in 0..5 {
        let rec = request(&agency).to_bytes();
        let (s, _, v) = submit(rec.clone()).await;
        assert_eq!(s, 200, "{v}");
        acked.push((v["index"].as_u64().unwrap(), rec));
    }

    // Cut: the next submission finds its connection gone.
    assert!(cut_connections(&schema) > 0, "the log holds connections");
    let mut saw_503 = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = 0;
    while after < 5 {
        assert!(Instant::now() < deadline, "the log did not reconnect");
        let rec = request(&agency).to_bytes();
        let (s, retry, v) = submit(rec.clone()).await;
        match s {
            200 => {
                acked.push((v["index"].as_u64().unwrap(), rec));
                after += 1;
            }
            503 => {
                assert_eq!(v["error"], "storage_unavailable", "{v}");
                assert!(retry, "503 without Retry-After");
                saw_503 = true;
            }
            other => panic!("a cut connection answered {other}: {v}"),
        }
    }
    assert!(saw_503, "the cut was never noticed (the test cut nothing)");
    let metrics = common::metrics(&http, &log.url()).await;
    assert!(
        metrics.contains("daylight_sequencer_leader 1"),
        "the one frontend sequences: {metrics}"
    );

    // Reads too: a proof or tile read through a cut connection answers 503,
    // never 500, and the next ones succeed.
    let (last, _) = acked.last().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http
            .get(format!("{}/api/v1/entries/{last}/proof", log.url()))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(
            r.status(),
            503,
            "before the cut is felt: {}",
            r.text().await.unwrap()
        );
        assert!(Instant::now() < deadline, "no proof for {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cut_connections(&schema) > 0);
    let mut statuses = Vec::new();
    for path in [
        "/api/v1/entries/1/proof",
        "/tile/0/000.p/2",
        "/tile/0/000.p/3",
        "/api/v1/entries/2/proof",
    ]
    .iter()
    .cycle()
    .take(12)
    {
        let r = http
            .get(format!("{}{path}", log.url()))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "reads after a cut: {statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the cut was not felt by reads: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&200), "reads recover: {statuses:?}");

    // Every acknowledged entry is in the log with its bytes.
    let s = store.clone();
    let entries = tokio::task::spawn_blocking(move || s.entries(daylight_core::LeafIndex(0), 100))
        .await
        .unwrap()
        .unwrap();
    for (i, bytes) in &acked {
        assert_eq!(&entries[*i as usize].data, bytes, "entry {i}");
    }
    log.stop().await.unwrap();
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_connections_is_a_clear_error() {
    let err = tokio::task::spawn_blocking(|| {
        PostgresStore::open("postgres://postgres@127.0.0.1:1/test").err()
    })
    .await
    .unwrap()
    .expect("refused");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
}
