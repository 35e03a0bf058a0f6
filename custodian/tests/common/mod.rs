//! A custodian served on a free port over a [`TestLog`], with the gate's
//! test world's keys and policy, and helpers to deposit and ask.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::Utc;
use daylight_core::{KeyName, KeyType, SignerKey};
use daylight_custodian::testing::TestLog;
use daylight_custodian::{Custodian, Settings, Store};
use daylight_custody::{deposit, split, EscrowKey, Share, Slot};
use daylight_gate::testkit::{Bundle, World, PROVIDER, TARGET};

/// A running custodian and its test log.
pub struct Harness {
    pub log: Arc<TestLog>,
    pub custodian: Arc<Custodian>,
    pub key: SignerKey,
    pub url: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The custodian's key (a fixed seed: tests only).
pub fn custodian_key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
}

/// A custodian with the world's policy (quorum 2 of 3, provider
/// [`PROVIDER`]), the world's provider as its only depositor, receipts
/// waited for at most `timeout`, served on 127.0.0.1.
pub async fn harness(timeout: Duration) -> Harness {
    let world = World::new();
    let policy = world.policy();
    let depositors = vec![world.provider.verifier().clone()];
    let log = Arc::new(TestLog::new(world));
    let dir = tempfile::tempdir().unwrap();
    let key = custodian_key("custodian-a.example", 40);
    let store = Store::open(&dir.path().join("custodian.db")).unwrap();
    let custodian = Arc::new(
        Custodian::new(
            Settings {
                signer: key.clone(),
                policy,
                depositors,
                log_url: "test-log".into(),
                log: log.clone(),
                receipt_timeout: timeout,
            },
            store,
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(daylight_custodian::http::serve(
        listener,
        custodian.clone(),
        async {
            let _ = rx.await;
        },
    ));
    Harness {
        log,
        custodian,
        key,
        url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        stop: Some(stop),
        _dir: dir,
    }
}

impl Harness {
    /// A fresh request bundle for [`PROVIDER`], created an hour ago,
    /// cosigned by all three witnesses a minute ago.
    pub fn bundle(&self) -> Bundle {
        let now = Utc::now();
        let created = now - chrono::Duration::hours(1);
        self.log
            .world()
            .bundle(
                &World::request_draft(PROVIDER, created),
                created,
                now.timestamp() as u64 - 60,
            )
            .unwrap()
    }

    /// Splits a fresh key 2 of 3 for [`TARGET`] and deposits share `i`
    /// (0-based) with this custodian; the key and all three shares.
    pub async fn deposit_share(&self, i: usize) -> (EscrowKey, Vec<Share>) {
        let key = EscrowKey::generate().unwrap();
        let shares = split(&key, Slot::of(PROVIDER, TARGET), 2, 3).unwrap();
        let provider = self.log.world().provider.clone();
        let d = deposit::make(&shares[i], self.key.verifier(), &provider).unwrap();
        let (status, body) = self
            .post("/api/v1/shares", serde_json::to_vec(&d).unwrap())
            .await;
        assert_eq!(status, 201, "{body}");
        (key, shares)
    }

    /// POSTs `body` to `path`; the status and JSON body.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// Asks for a release of `target`'s share for (entry, proof, opening).
    pub async fn release(
        &self,
        entry: &[u8],
        proof: &[u8],
        opening: serde_json::Value,
        target: &str,
    ) -> (u16, serde_json::Value) {
        let body = serde_json::json!({
            "entry": BASE64.encode(entry),
            "proof": String::from_utf8_lossy(proof),
            "opening": opening,
            "target": target,
        });
        self.post("/api/v1/release", serde_json::to_vec(&body).unwrap())
            .await
    }

    /// [`Harness::release`] of a whole bundle for [`TARGET`].
    pub async fn release_bundle(&self, b: &Bundle) -> (u16, serde_json::Value) {
        self.release(&b.entry, &b.proof, opening_json(b), TARGET)
            .await
    }
}

/// A bundle's opening as JSON.
pub fn opening_json(b: &Bundle) -> serde_json::Value {
    serde_json::from_str(&b.opening.to_json()).unwrap()
}
