//! The web view's routes over HTTP, on an in-process log at 127.0.0.1:0
//! with sample records: status, content type, content, filters, exports,
//! pagination, 404s, and that the API is not shadowed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use daylight_core::SignerKey;
use daylight_log_server::integrate::append_record;
use daylight_log_server::server::RunningLog;
use daylight_log_server::sqlite::SqliteStore;
use daylight_schemas::{Role, SignedRecord};

mod common;

use common::{append, entry_ref, example, fmt, get, key, new_log, register, seal, serve, ORIGIN};

struct Log {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
    running: RunningLog,
    http: reqwest::Client,
}

impl Log {
    /// 0, 1: registry (agency, court); 2: request US-NY to messenger.example
    /// (withdrawn by 6); 3: request DE to cloud.example created in 2024,
    /// sealed until 2024-06 (overdue); 4: emergency DE; 5: ratification of 4
    /// (granted); 6: withdrawal of 2.
    async fn start() -> Log {
        let (dir, log_key, store) = new_log();
        let agency = key("agency.test", 2);
        let court = key("court.test", 3);
        let add = |r: &SignedRecord, signer: &SignerKey| append(&store, &log_key, r, signer);
        register(
            &store,
            &log_key,
            &[(Role::Agency, &agency), (Role::Court, &court)],
        );
        let now = Utc::now();
        let mut req = example("request");
        req["valid_from"] = fmt(now - Duration::days(1)).into();
        req["valid_until"] = fmt(now + Duration::days(30)).into();
        req["sealed_until"] = fmt(now + Duration::days(365)).into();
        let r2 = seal(&agency, req.clone(), now);
        assert_eq!(add(&r2, &agency), 2);

        let old = Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap();
        req["jurisdiction"] = "DE".into();
        req["provider"] = "cloud.example".into();
        req["data_categories"] = serde_json::json!(["subscriber"]);
        req["legal_basis"] = "StPO 100a".into();
        req["valid_from"] = fmt(old).into();
        req["valid_until"] = fmt(old + Duration::days(20)).into();
        req["sealed_until"] = fmt(old + Duration::days(140)).into();
        let r3 = seal(&agency, req, old);
        assert_eq!(add(&r3, &agency), 3);

        let mut em = example("emergency");
        em["valid_from"] = fmt(now - Duration::hours(1)).into();
        em["valid_until"] = fmt(now + Duration::hours(40)).into();
        em["sealed_until"] = fmt(now + Duration::days(90)).into();
        em["ratify_by"] = fmt(now + Duration::hours(40)).into();
        let r4 = seal(&agency, em, now);
        assert_eq!(add(&r4, &agency), 4);

        let mut rat = example("ratification");
        rat["emergency"] = entry_ref(&r4, 4);
        let r5 = seal(&court, rat, now);
        assert_eq!(add(&r5, &court), 5);

        let mut wd = example("withdrawal");
        wd["entry"] = entry_ref(&r2, 2);
        let r6 = seal(&agency, wd, now);
        assert_eq!(add(&r6, &agency), 6);

        let findings = dir.path().join("findings.json");
        std::fs::write(
            &findings,
            r#"{"findings":[{"rule":"disclosure_overdue","entries":[3],"detail":"sealed-until passed without a disclosure"}]}"#,
        )
        .unwrap();
        let running = serve(&store, &log_key, dir.path(), Some(findings)).await;
        Log {
            store,
            _dir: dir,
            running,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        get(&self.http, &format!("{}{path}", self.running.url())).await
    }

    async fn page(&self, path: &str) -> String {
        let (status, ct, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(body.starts_with("<!DOCTYPE html>"), "{path}");
        body
    }

    /// The entry indexes listed in an entries page's table, in order.
    async fn listed(&self, query: &str) -> Vec<u64> {
        let body = self.page(&format!("/entries{query}")).await;
        rows(&body)
    }
}

fn rows(body: &str) -> Vec<u64> {
    let Some(tbody) = body.split("<tbody>").nth(1) else {
        return Vec::new();
    };
    let tbody = tbody.split("</tbody>").next().unwrap();
    tbody
        .split("<tr><td><a href=\"/entries/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The `<figure>` of the chart with this id.
fn chart<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("aria-labelledby=\"{id}-t\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let start = page[..at].rfind("<figure").unwrap();
    let end = at + page[at..].find("</figure>").unwrap();
    &page[start..end]
}

/// The numbers in a chart's data table row for `month`.
fn table_row(chart: &str, month: &str) -> Vec<u64> {
    let row = chart
        .split(&format!("<tr><th scope=\"row\">{month}</th>"))
        .nth(1)
        .unwrap_or_else(|| panic!("no row {month}"));
    let row = row.split("</tr>").next().unwrap();
    row.split("<td>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn pages_filters_exports_and_errors() {
    let log = Log::start().await;

    // Overview: numbers, witnesses, charts.
    let home = log.page("/").await;
    assert!(home.contains("<dt>Entries</dt><dd>7</dd>"), "{home}");
    assert!(home.matches("<svg").count() >= 3, "three charts");
    assert!(home.contains("Entries per month, by kind"));
    assert!(home.contains("Share of requests made as emergencies"));
    assert!(
        home.contains("href=\"/entries?status=overdue\">1<"),
        "one overdue"
    );
    assert!(home.contains("2024-01"), "months start at the first entry");
    // Disclosure chart: 3 (2024-01) overdue; 2 and 4 (this month) sealed.
    let this_month = Utc::now().format("%Y-%m").to_string();
    let disclosures = chart(&home, "disclosures");
    assert!(disclosures.contains("<title>2024-01: Disclosure overdue 1</title>"));
    assert_eq!(table_row(disclosures, "2024-01"), vec![0, 1, 0]);
    assert_eq!(table_row(disclosures, &this_month), vec![0, 0, 2]);
    // Releases against authorisations: none released yet.
    let releases = chart(&home, "releases");
    assert_eq!(table_row(releases, "2024-01"), vec![0, 1]);
    assert_eq!(table_row(releases, &this_month), vec![0, 2]);

    // The list: newest first, every entry.
    assert_eq!(log.listed("").await, vec![6, 5, 4, 3, 2, 1, 0]);
    // Filters, alone and together.
    assert_eq!(log.listed("?kind=request").await, vec![3, 2]);
    assert_eq!(
        log.listed("?kind=request&kind=emergency").await,
        vec![4, 3, 2]
    );
    assert_eq!(log.listed("?jurisdiction=DE").await, vec![4, 3]);
    assert_eq!(log.listed("?jurisdiction=US").await, vec![2]);
    assert_eq!(log.listed("?jurisdiction=US-NY").await, vec![2]);
    assert_eq!(log.listed("?provider=cloud.example").await, vec![3]);
    assert_eq!(log.listed("?category=subscriber").await, vec![4, 3]);
    assert_eq!(log.listed("?legal_basis=stpo").await, vec![3]);
    assert_eq!(log.listed("?emergency=yes").await, vec![4]);
    assert_eq!(log.listed("?emergency=no").await, vec![3, 2]);
    assert_eq!(log.listed("?status=overdue").await, vec![3]);
    assert_eq!(log.listed("?status=ratified").await, vec![4]);
    assert_eq!(log.listed("?status=withdrawn").await, vec![2]);
    assert_eq!(log.listed("?status=sealed").await, vec![4, 2]);
    assert_eq!(log.listed("?agency=court.test").await, vec![5]);
    assert_eq!(log.listed("?kind=request&from=2025-01-01").await, vec![2]);
    assert_eq!(log.listed("?kind=request&to=2024-12-31").await, vec![3]);
    assert_eq!(log.listed("?from=2024-01-10&to=2024-01-10").await, vec![3]);
    // A bad filter is reported, not fatal.
    let bad = log.page("/entries?kind=nonsense&status=x").await;
    assert!(bad.contains("unknown kind"), "{bad}");
    assert_eq!(rows(&bad).len(), 7);
    // The form keeps the filter (stable URLs round-trip).
    let page = log.page("/entries?kind=request&jurisdiction=DE").await;
    assert!(page.contains("value=\"request\" checked"));
    assert!(page.contains("href=\"/entries.csv?kind=request&amp;jurisdiction=DE\""));

    // Pagination.
    assert_eq!(log.listed("?per_page=3").await, vec![6, 5, 4]);
    assert_eq!(log.listed("?per_page=3&page=2").await, vec![3, 2, 1]);
    assert_eq!(log.listed("?per_page=3&page=3").await, vec![0]);
    let p2 = log.page("/entries?per_page=3&page=2").await;
    assert!(p2.contains("Page 2 of 3"));
    assert!(
        p2.contains("href=\"/entries?per_page=3&amp;page=3\""),
        "{p2}"
    );
    assert!(p2.contains("href=\"/entries?per_page=3\""), "page 1 link");

    // CSV export of the filtered list (all pages).
    let (status, ct, csv) = log.get("/entries.csv?kind=request&per_page=1").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("index,kind,created,signer,jurisdiction"));
    assert!(lines[1].starts_with("3,request,2024-01-10T12:00:00Z,agency.test,DE,StPO 100a,cloud.example,subscriber,false,overdue,"));
    assert!(lines[2].starts_with("2,request,"));
    assert!(
        lines[2].contains(",\"content;stored_keys;traffic\"")
            || lines[2].contains(",content;stored_keys;traffic,")
    );
    assert!(lines[2].contains("sealed;withdrawn"), "{}", lines[2]);

    // JSON export.
    let (status, ct, json) = log.get("/entries.json?status=ratified").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["entries"][0]["index"], 4);
    assert_eq!(v["entries"][0]["kind"], "emergency");
    assert_eq!(v["entries"][0]["emergency"], true);
    assert_eq!(v["filters"]["status"][0], "ratified");
    let (_, _, all) = log.get("/entries.json").await;
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["total"], 7);
    assert_eq!(all["entries"][0]["references"], serde_json::json!([2]));

    // An entry: fields, status, timeline both ways, raw links, verifier.
    let e4 = log.page("/entries/4").await;
    assert!(e4.contains("Entry 4: Emergency request"));
    assert!(e4.contains("Staatsanwaltschaft Berlin"));
    assert!(e4.contains("life or safety"));
    assert!(e4.contains("ratified by a court"));
    assert!(
        e4.contains("href=\"/entries/5\""),
        "timeline to the ratification"
    );
    assert!(e4.contains("href=\"/api/v1/entries/4\""));
    assert!(e4.contains("href=\"/api/v1/entries/4/proof\""));
    assert!(e4.contains("data-leaf-hash=\""));
    assert!(e4.contains(&format!("value=\"{}", key(ORIGIN, 1).verifier())));
    assert!(e4.contains("/static/verify.js"));
    let e5 = log.page("/entries/5").await;
    assert!(e5.contains("Emergency decided on"));
    assert!(
        e5.contains("href=\"/entries/4\""),
        "timeline back to the emergency"
    );
    assert!(e5.contains("granted"));
    let e3 = log.page("/entries/3").await;
    assert!(e3.contains("disclosure overdue"));
    assert!(e3.contains("subscriber data"));
    let e0 = log.page("/entries/0").await;
    assert!(e0.contains("Key registry change"));
    assert!(e0.contains("agency.test+"));

    // 404s are pages, not API errors.
    for path in [
        "/entries/7",
        "/entries/99999",
        "/entries/abc",
        "/entries/-1",
    ] {
        let (status, ct, body) = log.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(ct.starts_with("text/html"), "{path}");
        assert!(body.contains("Error 404"), "{path}");
    }

    // Witnesses and findings.
    let w = log.page("/witnesses").await;
    assert!(w.contains("no witnesses configured"));
    assert!(w.contains(&key(ORIGIN, 1).verifier().to_string()));
    let f = log.page("/findings").await;
    assert!(f.contains("disclosure_overdue"));
    assert!(f.contains("href=\"/entries/3\""));

    // Assets.
    let (status, ct, css) = log.get("/static/style.css").await;
    assert_eq!((status, ct.as_str()), (200, "text/css; charset=utf-8"));
    assert!(css.contains("--fg"));
    let (status, ct, js) = log.get("/static/verify.js").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/javascript"));
    assert!(js.contains("crypto.subtle"));

    // The API and the tiles are still the log server's.
    let (status, ct, api) = log.get("/api/v1/entries/2").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"));
    assert!(api.contains("\"index\":2"));
    let (status, _, _) = log.get("/api/v1/log").await;
    assert_eq!(status, 200);
    let (status, ct, _) = log.get("/api/v1/nope").await;
    assert_eq!(status, 404);
    assert!(ct.starts_with("application/json"));

    log.running.stop().await.unwrap();
}

#[tokio::test]
async fn list_follows_a_growing_log() {
    let log = Log::start().await;
    assert_eq!(log.listed("?kind=registry").await, vec![1, 0]);
    // A submission through the API shows up on a page loaded once the page
    // lag has passed.
    let agency = key("agency.test", 2);
    let now = Utc::now();
    let mut req = example("request");
    req["valid_from"] = fmt(now - Duration::days(1)).into();
    req["valid_until"] = fmt(now + Duration::days(30)).into();
    req["sealed_until"] = fmt(now + Duration::days(365)).into();
    req["jurisdiction"] = "FR".into();
    let r = seal(&agency, req, now);
    let resp = log
        .http
        .post(format!("{}/api/v1/entries", log.running.url()))
        .header("content-type", "application/json")
        .body(r.to_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    // Lists may be behind the log by the page lag, no more.
    common::past_the_page_lag().await;
    assert_eq!(log.listed("?jurisdiction=FR").await, vec![7]);
    // A provider's release of 7 counts in the releases chart and the overview.
    let provider = key("provider.test", 4);
    let mut rel = example("release");
    rel["entry"] = entry_ref(&r, 7);
    let r8 = seal(&provider, rel, now);
    append_record(
        log.store.as_ref(),
        &key(ORIGIN, 1),
        &r8,
        provider.verifier(),
    )
    .unwrap();
    common::past_the_page_lag().await;
    let home = log.page("/").await;
    let this_month = now.format("%Y-%m").to_string();
    assert_eq!(table_row(chart(&home, "releases"), &this_month), vec![1, 2]);
    assert!(
        home.contains("1 of 4 (<a href=\"/entries?kind=release&amp;release=provider\">1 releases by providers</a>)</dd>"),
        "{home}"
    );
    assert_eq!(log.listed("?status=released").await, vec![7]);
    log.running.stop().await.unwrap();
}
