//! The witness's OpenAPI document, served at `GET /openapi.json`: OpenAPI
//! 3.1, the router's routes and no others, and the answers of a real server
//! (success and refusals) with statuses and content types it documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{TestLog, TestWitness};
use daylight_core::witness_protocol::checkpoint_path;
use serde_json::Value;

const ORIGIN: &str = "log.test/daylight";

/// `(method, OpenAPI template)` for each `.route(...)` in `server::router`,
/// read from its source.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/server.rs");
    let start = src.find("pub fn router(").expect("router");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("end of router")];
    let mut out = BTreeSet::new();
    for call in body.split(".route(").skip(1) {
        let (path, rest) = call.split_once(',').unwrap();
        let path = match path.trim() {
            "OPENAPI_PATH" => daylight_witness::server::OPENAPI_PATH.to_string(),
            p => p.trim_matches('"').to_string(),
        };
        let method = rest.trim_start().split('(').next().unwrap().to_string();
        out.insert((method, path));
    }
    assert!(out.len() >= 4, "{out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_matches_the_router_and_the_answers() {
    let log = TestLog::new(ORIGIN, 1, 10);
    let tw = TestWitness::new(&[&log]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daylight_witness::serve(listener, tw.open(), async {
        let _ = stopped.await;
    }));
    let c = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();

    let r = c.get(format!("{url}/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (p, item) in paths {
        for m in ["get", "post", "put", "delete", "patch"] {
            if item.get(m).is_some() {
                documented.insert((m.to_string(), p.clone()));
            }
        }
    }
    assert_eq!(documented, router_routes());

    // Real answers, each with a documented status and content type.
    let hash_path = checkpoint_path(ORIGIN);
    // (method, template, path, body, expected status)
    type Case = (&'static str, &'static str, String, Option<Vec<u8>>, u16);
    let add = "/add-checkpoint";
    let cases: Vec<Case> = vec![
        ("post", add, add.into(), Some(log.request(0, 10)), 200),
        // The same old size again: the witness is at 10 now.
        ("post", add, add.into(), Some(log.request(0, 10)), 409),
        ("post", add, add.into(), Some(b"nonsense".to_vec()), 400),
        ("get", "/{origin_hash}/checkpoint", hash_path, None, 200),
        (
            "get",
            "/{origin_hash}/checkpoint",
            format!("/{}/checkpoint", "0".repeat(64)),
            None,
            404,
        ),
        ("get", "/logs", "/logs".into(), None, 200),
        ("get", "/openapi.json", "/openapi.json".into(), None, 200),
    ];
    let mut exercised = BTreeSet::new();
    for (method, template, path, body, want) in cases {
        let resp = match body {
            Some(b) => c.post(format!("{url}{path}")).body(b).send().await.unwrap(),
            None => c.get(format!("{url}{path}")).send().await.unwrap(),
        };
        let status = resp.status().as_u16();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        let text = resp.text().await.unwrap();
        assert_eq!(status, want, "{method} {path}: {text}");
        let documented = &paths[template][method]["responses"][status.to_string()];
        assert!(
            documented["content"].get(&ct).is_some(),
            "{method} {path}: {status} {ct} not documented"
        );
        if template == "/logs" {
            let logs: Value = serde_json::from_str(&text).unwrap();
            let view = &logs[0];
            for field in ["origin", "vkey", "size", "root", "cosigned_at"] {
                assert!(view.get(field).is_some(), "{field} missing from {view}");
            }
            let schema = &doc["components"]["schemas"]["LogView"]["properties"];
            assert_eq!(
                schema.as_object().unwrap().len(),
                view.as_object().unwrap().len()
            );
        }
        exercised.insert((method.to_string(), template.to_string()));
    }
    assert_eq!(exercised, documented, "every documented route answered");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
