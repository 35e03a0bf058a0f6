//! The log's OpenAPI document, served: OpenAPI 3.1, every route the router
//! serves and no other, each documented path answering from a real handler
//! with a documented status and content type, and its `$ref`s to record
//! schemas resolving to the served copies of the schemas crate's files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{client, Fixture};
use daylight_log_server::sequencer::BatchConfig;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The routes `api::router` registers, read from its source: `(method,
/// OpenAPI path template)`. A route added there without a document entry
/// fails the comparison below.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/api.rs");
    let start = src.find("pub fn router(").expect("api::router");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("end of router")];
    let mut routes = BTreeSet::new();
    for call in body.split(".route(").skip(1) {
        let (path, rest) = call.split_once(',').expect("route path");
        let path = path.trim();
        let path = if path == "crate::openapi::OPENAPI_PATH" {
            daylight_log_server::openapi::OPENAPI_PATH.to_string()
        } else {
            path.trim_matches('"').to_string()
        };
        let method = rest
            .trim_start()
            .split('(')
            .next()
            .expect("method")
            .to_string();
        assert!(METHODS.contains(&method.as_str()), "route {path}: {method}");
        // The two routes whose axum pattern is not an OpenAPI template.
        let templates: Vec<String> = match path.as_str() {
            "/tile/{*path}" => vec![
                "/tile/{L}/{N}".into(),
                "/tile/{L}/{N}.p/{W}".into(),
                "/tile/entries/{N}".into(),
                "/tile/entries/{N}.p/{W}".into(),
            ],
            "/api/v1/schemas/{file}" => vec!["/api/v1/schemas/{kind}.json".into()],
            p => {
                assert!(!p.contains('*'), "an undocumented wildcard route {p}");
                vec![p.to_string()]
            }
        };
        for t in templates {
            routes.insert((method.clone(), t));
        }
    }
    assert!(routes.len() >= 12, "router parse found only {routes:?}");
    routes
}

fn sample(param: &str) -> &'static str {
    match param {
        "L" => "0",
        "N" => "000",
        "W" => "1",
        "index" => "0",
        "kind" => "request",
        other => panic!("no sample for path parameter {other}"),
    }
}

fn fill(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(sample(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Every `$ref` in a JSON document.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().expect("$ref is a string").to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_matches_the_router_and_its_refs_resolve() {
    // Quorum 0: the registry entry is published, so entry 0 and its proof
    // answer 200.
    let f = Fixture::new(0);
    let log = f.start(BatchConfig::default()).await;
    let url = log.url();
    let c = client();
    common::published(&c, &url, 1).await;

    let r = c
        .get(format!("{url}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    assert_eq!(
        doc,
        serde_json::to_value(daylight_log_server::openapi::document()).unwrap()
    );

    // Documented operations and routed ones are the same set.
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                documented.insert((method.to_string(), path.clone()));
            }
        }
    }
    let routed = router_routes();
    assert_eq!(
        documented, routed,
        "documented (left) and routed (right) differ"
    );

    // Each documented operation answers from its handler, with a status
    // and content type the document lists for it.
    for (method, template) in &documented {
        let op = &paths[template][method];
        let target = format!("{url}{}", fill(template));
        let resp = match method.as_str() {
            "get" => c.get(&target).send().await.unwrap(),
            "post" => c
                .post(&target)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap(),
            m => panic!("no sample request for {m}"),
        };
        let status = resp.status().as_u16().to_string();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.bytes().await.unwrap();
        let answer = format!("{method} {template} ({target}): {status} {ct}");
        assert!(
            !body.starts_with(br#"{"detail":"no such route""#),
            "{answer}: the router's fallback answered"
        );
        let response = op["responses"]
            .get(&status)
            .unwrap_or_else(|| panic!("{answer}: status not documented"));
        let content = response["content"].as_object().unwrap();
        assert!(
            content.contains_key(&ct),
            "{answer}: content type not documented"
        );
        if ct == "application/json" && content[&ct]["schema"].get("$ref").is_some() {
            // At least valid JSON of the documented top-level shape.
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v.is_object(), "{answer}: not an object");
        }
    }
    // The samples reach the handlers' success paths where the log has data.
    for path in [
        "/api/v1/entries/0",
        "/api/v1/entries/0/proof",
        "/checkpoint",
    ] {
        let r = c.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    // Record schemas: referenced, not copied; each reference is served,
    // and is the schemas crate's generated file, byte for byte (as in
    // schemas/json/).
    let mut all = Vec::new();
    refs(&doc, &mut all);
    let external: BTreeSet<&String> = all.iter().filter(|r| !r.starts_with('#')).collect();
    let generated = daylight_schemas::json_schema::generate();
    for kind in daylight_schemas::Kind::ALL {
        let want = format!("/api/v1/schemas/{}.json", kind.as_str());
        assert!(external.contains(&want), "{want} not referenced");
    }
    for r in &external {
        assert!(r.starts_with("/api/v1/schemas/"), "unexpected $ref {r}");
        let resp = c.get(format!("{url}{r}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{r}");
        assert_eq!(resp.headers()["content-type"], "application/schema+json");
        let served = resp.text().await.unwrap();
        let file = r.rsplit('/').next().unwrap();
        let (_, text) = generated.iter().find(|(n, _)| n == file).unwrap();
        assert_eq!(&served, text, "{r}");
        let on_disk = std::fs::read_to_string(format!(
            "{}/../schemas/json/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(served, on_disk, "{r} differs from schemas/json/{file}");
    }
    // Internal references point at something.
    for r in all.iter().filter(|r| r.starts_with("#/")) {
        assert!(doc.pointer(&r[1..]).is_some(), "dangling {r}");
    }
    // No record schema copied in: nothing of the record vocabulary inline.
    let text = doc.to_string();
    for copied in ["daylight.invalid/schemas", "\"$defs\"", "legal_basis"] {
        assert!(
            !text.contains(copied),
            "{copied} is copied into the document"
        );
    }
    // An unknown schema is a JSON 404.
    let r = c
        .get(format!("{url}/api/v1/schemas/nothing.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "not_found");

    // Found by schemathesis: an index beyond the stores' integer range
    // (2^63 and up) answered 500; it is an entry that does not exist.
    for (index, status) in [
        ("9223372036854775807", 404),
        ("9223372036854775808", 404),
        ("18446744073709551615", 404),
        ("18446744073709551616", 400),
    ] {
        for suffix in ["", "/proof"] {
            let r = c
                .get(format!("{url}/api/v1/entries/{index}{suffix}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "entry {index}{suffix}");
            let e: Value = r.json().await.unwrap();
            assert!(e["error"].is_string() && e["detail"].is_string(), "{e}");
        }
    }

    log.stop().await.unwrap();
}

#[test]
fn the_router_parse_sees_every_route() {
    // A control for the source parse above: it must find the routes the
    // DESIGN lists.
    let routes = router_routes();
    for (m, p) in [
        ("get", "/checkpoint"),
        ("get", "/tile/entries/{N}"),
        ("post", "/api/v1/entries"),
        ("get", "/api/v1/entries/{index}/proof"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
    ] {
        assert!(routes.contains(&(m.to_string(), p.to_string())), "{m} {p}");
    }
}
