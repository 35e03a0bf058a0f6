//! The witness over HTTP, as a log server or monitor sees it: a real server
//! on 127.0.0.1 (a free port), one test per status code, the monitoring
//! routes, parallel requests, and a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestLog, TestWitness};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::witness_protocol::{
    checkpoint_path, parse_cosignatures, parse_size_body, AddCheckpoint, TLOG_SIZE_CONTENT_TYPE,
};
use daylight_core::{Note, TreeSize, VerifierKey};
use daylight_witness::{serve, Witness};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ORIGIN: &str = "log.test/daylight";

/// A witness server running on a free loopback port until `stop`.
struct Server {
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start(witness: Witness) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, witness, async {
            let _ = rx.await;
        }));
        Server {
            url,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Graceful shutdown, bounded in time.
    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Answer {
    let r = client
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    answer(r).await
}

async fn get(client: &reqwest::Client, url: &str) -> Answer {
    answer(client.get(url).send().await.unwrap()).await
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.bytes().await.unwrap().to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// A refusal: the expected status and a one-line reason.
fn assert_refusal(a: &Answer, status: u16) {
    let text = String::from_utf8(a.body.clone()).unwrap();
    assert_eq!(a.status, status, "body: {text}");
    assert!(
        text.ends_with('\n') && text.lines().count() == 1 && text.len() > 2,
        "{text:?}"
    );
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn verifies(cosignatures: &[u8], checkpoint: &[u8], witness: &VerifierKey) -> u64 {
    let mut note = Note::parse(checkpoint).unwrap();
    for sig in parse_cosignatures(cosignatures).unwrap() {
        note.add_signature(sig).unwrap();
    }
    let got = verify_cosignatures(&note, &[witness]).unwrap();
    assert_eq!(got.len(), 1);
    got[0].timestamp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_200_returns_a_cosignature_that_verifies_with_the_current_time() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let a = post(&c, &server.url, log.request(0, 10)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.body.starts_with("— witness.test/w1 ".as_bytes()) && a.body.ends_with(b"\n"));
    let t = verifies(&a.body, &log.checkpoint_at(10), tw.key.verifier());
    assert!(t >= before && t <= before + 60, "timestamp {t}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_400_for_a_malformed_body_or_old_after_size() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    assert_refusal(&post(&c, &server.url, b"hello\n".to_vec()).await, 400);
    assert_refusal(
        &post(&c, &server.url, b"old 0\n\nnot a note\n".to_vec()).await,
        400,
    );
    let body = AddCheckpoint {
        old: TreeSize(11),
        proof: vec![],
        checkpoint: log.checkpoint_at(10),
    };
    assert_refusal(&post(&c, &server.url, body.to_bytes()).await, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_403_for_a_checkpoint_not_signed_by_the_log_key() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let impostor = TestLog::new(ORIGIN, 2, 10);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    assert_refusal(&post(&c, &server.url, impostor.request(0, 10)).await, 403);
    // The log's own key, with a signature that does not verify.
    let text = String::from_utf8(log.checkpoint_at(10)).unwrap();
    let tampered = text.replacen("\n10\n", "\n11\n", 1);
    let body = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: tampered.into_bytes(),
    };
    assert_refusal(&post(&c, &server.url, body.to_bytes()).await, 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_404_for_an_unknown_origin() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let stranger = TestLog::new("stranger.test", 3, 10);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let a = post(&client(), &server.url, stranger.request(0, 10)).await;
    assert_refusal(&a, 404);
    assert!(String::from_utf8(a.body).unwrap().contains("stranger.test"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_409_carries_the_latest_size_as_text_x_tlog_size() {
    let log = TestLog::new(ORIGIN, 1, 30);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    assert_eq!(post(&c, &server.url, log.request(0, 17)).await.status, 200);
    let a = post(&c, &server.url, log.request(0, 30)).await;
    assert_eq!(a.status, 409);
    assert_eq!(a.content_type, TLOG_SIZE_CONTENT_TYPE);
    assert_eq!(a.body, b"17\n");
    assert_eq!(parse_size_body(&a.body).unwrap(), TreeSize(17));
    assert_eq!(post(&c, &server.url, log.request(17, 30)).await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_413_for_a_body_over_64_kib() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let mut body = log.request(0, 10);
    body.resize(65 * 1024, b'\n');
    let a = post(&client(), &server.url, body).await;
    assert_eq!(a.status, 413);
    assert!(!a.body.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_422_for_a_fork_or_a_bad_proof_and_the_state_is_unchanged() {
    let log = TestLog::new(ORIGIN, 1, 40);
    let mut fork = TestLog::new(ORIGIN, 1, 0);
    for i in 0..40u64 {
        fork.tree.append(format!("fork {i}").as_bytes());
    }
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    assert_eq!(post(&c, &server.url, log.request(0, 20)).await.status, 200);
    let monitor = format!("{}{}", server.url, checkpoint_path(ORIGIN));
    let before = get(&c, &monitor).await.body;

    // Same size, different root (C2SP tlog-witness after v1.0.0: 422).
    assert_refusal(&post(&c, &server.url, fork.request(20, 20)).await, 422);
    // Larger size with the fork's proof.
    assert_refusal(&post(&c, &server.url, fork.request(20, 40)).await, 422);
    // A truncated proof for the honest log.
    let mut proof = log.proof(20, 40);
    proof.pop();
    let body = AddCheckpoint {
        old: TreeSize(20),
        proof,
        checkpoint: log.checkpoint_at(40),
    };
    assert_refusal(&post(&c, &server.url, body.to_bytes()).await, 422);
    // Size 0 with a root that is not the empty tree's; old 0 with a proof.
    let tw2 = TestWitness::new(&[&log]);
    let server2 = Server::start(tw2.open()).await;
    let empty_bad = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![],
        checkpoint: daylight_core::Checkpoint::new(ORIGIN, TreeSize(0), log.root_at(1))
            .sign(&log.key)
            .unwrap()
            .to_bytes(),
    };
    assert_refusal(&post(&c, &server2.url, empty_bad.to_bytes()).await, 422);
    let with_proof = AddCheckpoint {
        old: TreeSize(0),
        proof: vec![log.root_at(1)],
        checkpoint: log.checkpoint_at(10),
    };
    assert_refusal(&post(&c, &server2.url, with_proof.to_bytes()).await, 422);
    server2.stop().await;

    assert_eq!(get(&c, &monitor).await.body, before);
    let a = post(&c, &server.url, log.request(0, 40)).await;
    assert_eq!((a.status, a.body), (409, b"20\n".to_vec()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_routes_serve_the_latest_cosigned_checkpoint() {
    let log = TestLog::new(ORIGIN, 1, 25);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    let monitor = format!("{}{}", server.url, checkpoint_path(ORIGIN));
    assert_refusal(&get(&c, &monitor).await, 404);
    assert_refusal(
        &get(&c, &format!("{}/ABC/checkpoint", server.url)).await,
        404,
    );
    assert_refusal(&get(&c, &format!("{}/nowhere", server.url)).await, 404);
    assert_refusal(
        &get(&c, &format!("{}/add-checkpoint", server.url)).await,
        405,
    );
    let unknown = format!("{}{}", server.url, checkpoint_path("nobody.test"));
    assert_refusal(&get(&c, &unknown).await, 404);

    assert_eq!(post(&c, &server.url, log.request(0, 25)).await.status, 200);
    let a = get(&c, &monitor).await;
    assert_eq!(a.status, 200);
    let note = Note::parse(&a.body).unwrap();
    note.verify(&[log.vkey()]).unwrap();
    assert_eq!(
        verify_cosignatures(&note, &[tw.key.verifier()])
            .unwrap()
            .len(),
        1
    );

    let a = get(&c, &format!("{}/logs", server.url)).await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("application/json"));
    let logs: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(logs[0]["origin"], ORIGIN);
    assert_eq!(logs[0]["vkey"], log.vkey().to_string());
    assert_eq!(logs[0]["size"], 25);
    assert_eq!(logs[0]["root"], log.root_at(25).to_base64());
    assert!(logs[0]["cosigned_at"].as_u64().unwrap() > 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_parallel_requests_from_one_old_size_give_one_200_and_31_409() {
    let log = TestLog::new(ORIGIN, 1, 200);
    let tw = TestWitness::new(&[&log]);
    let server = Server::start(tw.open()).await;
    let c = client();
    assert_eq!(post(&c, &server.url, log.request(0, 100)).await.status, 200);
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let c = c.clone();
            let url = server.url.clone();
            let body = log.request(100, 101 + i);
            tokio::spawn(async move { post(&c, &url, body).await })
        })
        .collect();
    let mut ok = 0;
    let mut conflicts = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            200 => ok += 1,
            409 => conflicts.push(parse_size_body(&a.body).unwrap()),
            s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&a.body)),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(conflicts.len(), 31);
    let logs: serde_json::Value =
        serde_json::from_slice(&get(&c, &format!("{}/logs", server.url)).await.body).unwrap();
    let size = logs[0]["size"].as_u64().unwrap();
    assert!(size > 100);
    assert!(conflicts.iter().all(|&s| s == TreeSize(size)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_keeps_the_state() {
    let log = TestLog::new(ORIGIN, 1, 90);
    let tw = TestWitness::new(&[&log]);
    let c = client();
    let server = Server::start(tw.open()).await;
    assert_eq!(post(&c, &server.url, log.request(0, 64)).await.status, 200);
    server.stop().await;

    let server = Server::start(tw.open()).await;
    let a = post(&c, &server.url, log.request(0, 90)).await;
    assert_eq!((a.status, a.body), (409, b"64\n".to_vec()));
    let a = post(&c, &server.url, log.request(64, 90)).await;
    assert_eq!(a.status, 200);
    server.stop().await;
}
