//! Key history and witness-set history on the pages, over HTTP: a log with
//! an agency key rotation and a revocation, a version-1 registry entry and
//! release, witnesses added, replaced and removed, quorum changes, a
//! log-key rotation (the rotation signed by the old key, checkpoints by
//! both), and a registry entry signed by the rotated-out log key (refused
//! by the registry and reported). The web view is given the log's CURRENT
//! key, as `log serve` gives it after a rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use daylight_core::{KeyName, KeyType, LeafIndex, SignerKey};
use daylight_log_server::integrate::{append_record, integrate, CheckpointSigner, LogKeys};
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::LogStore;
use daylight_schemas::{EntryRef, Record, Role, SignedRecord};
use daylight_web::{router, WebState};

mod common;

use common::{example, fmt, key, seal, ORIGIN};

fn witness_key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(
        KeyName::new(name).unwrap(),
        KeyType::CosignatureV1,
        [seed; 32],
    )
}

/// The keys the test log uses.
struct Keys {
    log1: SignerKey,
    log2: SignerKey,
    agency1: SignerKey,
    agency2: SignerKey,
    provider: SignerKey,
    court: SignerKey,
    w0: SignerKey,
    w1: SignerKey,
    w2: SignerKey,
    w3: SignerKey,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            log1: key(ORIGIN, 1),
            log2: key(ORIGIN, 21),
            agency1: key("agency.test", 2),
            agency2: key("agency.test", 22),
            provider: key("provider.test", 4),
            court: key("court.test", 3),
            w0: witness_key("w0.test", 30),
            w1: witness_key("w1.test", 31),
            w2: witness_key("w2.test", 32),
            w3: witness_key("w3.test", 33),
        }
    }
}

struct Site {
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

/// 0 add agency.test (key 1); 1 add provider.test (a version-1 record);
/// 2 request by agency key 1; 3 release of 2 (version 1); 4 agency key 1
/// replaced by key 2; 5 request by agency key 2; 6 add witness w1; 7 add
/// w2; 8 quorum 2; 9 w3 replaces w1; 10 remove w2; 11 quorum 1; 12 the
/// log's key 1 replaced by key 2 (signed by key 1); 13 add court.test
/// (signed by log key 2); 14 revoke agency key 2; 15 add court.test again,
/// signed by the retired log key 1 (refused by the registry). Witness w0
/// was configured before witnesses were registry entries; the log was
/// created with quorum 1.
async fn start(k: &Keys) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::create(&dir.path().join("log.db"), ORIGIN, 1).unwrap());
    store
        .add_witness(k.w0.verifier(), "http://w0.test")
        .unwrap();
    integrate(store.as_ref(), &k.log1, ORIGIN, vec![]).unwrap();
    let until = Utc::now() + Duration::days(7);
    let both = LogKeys::new(k.log2.clone(), vec![(k.log1.clone(), until)]);
    let now = Utc::now();
    let add = |r: &SignedRecord, cp: &dyn CheckpointSigner, signer: &SignerKey| {
        append_record(store.as_ref(), cp, r, signer.verifier())
            .unwrap()
            .get()
    };
    let by_log1 = |r: Record| r.sign(&k.log1, ORIGIN).unwrap();
    let by_log2 = |r: Record| r.sign(&k.log2, ORIGIN).unwrap();

    let r = by_log1(Record::registry_add(Role::Agency, k.agency1.verifier(), now).unwrap());
    assert_eq!(add(&r, &k.log1, &k.log1), 0);
    let r = Record::registry_add(Role::Provider, k.provider.verifier(), now)
        .unwrap()
        .sign_version_1(&k.log1)
        .unwrap();
    assert_eq!(r.version(), 1);
    assert_eq!(add(&r, &k.log1, &k.log1), 1);
    let mut req = example("request");
    req["valid_from"] = fmt(now - Duration::days(1)).into();
    req["valid_until"] = fmt(now + Duration::days(30)).into();
    req["sealed_until"] = fmt(now + Duration::days(365)).into();
    let r2 = seal(&k.agency1, req.clone(), now);
    assert_eq!(add(&r2, &k.log1, &k.agency1), 2);
    let rel = Record::release(
        EntryRef {
            index: LeafIndex(2),
            leaf_hash: r2.leaf_hash(),
        },
        1,
        now,
        now,
    )
    .unwrap()
    .sign_version_1(&k.provider)
    .unwrap();
    assert_eq!(add(&rel, &k.log1, &k.provider), 3);
    let r = by_log1(
        Record::registry_rotate(
            Role::Agency,
            k.agency1.verifier(),
            k.agency2.verifier(),
            None,
            now,
        )
        .unwrap(),
    );
    assert_eq!(add(&r, &k.log1, &k.log1), 4);
    let r5 = seal(&k.agency2, req, now);
    assert_eq!(add(&r5, &k.log1, &k.agency2), 5);
    let w = |key: &SignerKey, url: &str, replaces: Option<&SignerKey>| {
        by_log1(
            Record::registry_witness(key.verifier(), url, replaces.map(|r| r.verifier()), now)
                .unwrap(),
        )
    };
    // As `daylight log add-witness` does, the store also gets a row for
    // each (it keeps the size each witness last cosigned).
    for (wk, url) in [
        (&k.w1, "http://w1.test"),
        (&k.w2, "http://w2.test"),
        (&k.w3, "http://w3.test"),
    ] {
        store.add_witness(wk.verifier(), url).unwrap();
    }
    assert_eq!(add(&w(&k.w1, "http://w1.test", None), &k.log1, &k.log1), 6);
    assert_eq!(add(&w(&k.w2, "http://w2.test", None), &k.log1, &k.log1), 7);
    let q2 = by_log1(Record::registry_quorum(2, now).unwrap());
    assert_eq!(add(&q2, &k.log1, &k.log1), 8);
    let w3 = w(&k.w3, "http://w3.test", Some(&k.w1));
    assert_eq!(add(&w3, &k.log1, &k.log1), 9);
    let rm = by_log1(Record::registry_revoke(Role::Witness, k.w2.verifier(), now).unwrap());
    assert_eq!(add(&rm, &k.log1, &k.log1), 10);
    let q1 = by_log1(Record::registry_quorum(1, now).unwrap());
    assert_eq!(add(&q1, &k.log1, &k.log1), 11);
    // The log's key changes: the old key signs the entry naming the new
    // one; checkpoints from here carry both signatures.
    let rot = by_log1(
        Record::registry_rotate(
            Role::Log,
            k.log1.verifier(),
            k.log2.verifier(),
            Some(until),
            now,
        )
        .unwrap(),
    );
    assert_eq!(add(&rot, &both, &k.log1), 12);
    let c = by_log2(Record::registry_add(Role::Court, k.court.verifier(), now).unwrap());
    assert_eq!(add(&c, &both, &k.log2), 13);
    let rv = by_log2(Record::registry_revoke(Role::Agency, k.agency2.verifier(), now).unwrap());
    assert_eq!(add(&rv, &both, &k.log2), 14);
    // Signed by the retired key: the registry refuses it.
    let stale = by_log1(
        Record::registry_add(Role::Court, key("stale-court.test", 9).verifier(), now).unwrap(),
    );
    assert_eq!(add(&stale, &both, &k.log1), 15);

    let web = router(WebState {
        store: store.clone(),
        // The current key, as `log serve` passes it after a rotation.
        log_key: k.log2.verifier().clone(),
        findings: None,
        index: dir.path().join("web-index.db"),
        admitted: None,
        page_lag: daylight_web::PAGE_LAG,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, web).await.unwrap();
    });
    Site {
        base,
        http: reqwest::Client::new(),
        _dir: dir,
        _server: server,
    }
}

impl Site {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

/// The `<table>` whose opening tag contains `marker`.
fn table<'a>(page: &'a str, marker: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no table {marker}: {page}"));
    let start = page[..at].rfind("<table").unwrap();
    let end = at + page[at..].find("</table>").unwrap();
    &page[start..end]
}

/// The rows of a table: (the row's `attr` value, the row's HTML).
fn rows<'a>(table: &'a str, attr: &str) -> Vec<(&'a str, &'a str)> {
    let open = format!("<tr {attr}=\"");
    table
        .split(open.as_str())
        .skip(1)
        .map(|r| {
            let (value, rest) = r.split_once('"').unwrap();
            (value, rest.split("</tr>").next().unwrap())
        })
        .collect()
}

fn short(k: &SignerKey) -> String {
    format!("{}+{}", k.verifier().name(), k.verifier().id())
}

#[tokio::test]
async fn keys_page_shows_each_identitys_keys_and_the_log_keys_over_time() {
    let k = Keys::new();
    let site = start(&k).await;
    let page = site.page("/keys").await;
    assert!(page.contains("aria-current=\"page\">Keys<"), "nav");

    // Identities in the order first registered; the refused entry added none.
    let order: Vec<usize> = ["agency.test", "provider.test", "court.test"]
        .iter()
        .map(|n| page.find(&format!("data-identity=\"{n}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(!page.contains("data-identity=\"stale-court.test\""));

    // agency.test: key 1 added at 0, replaced at 4 by key 2; key 2 added
    // at 4 (replacing key 1), revoked at 14.
    let agency = rows(table(&page, "data-identity=\"agency.test\""), "data-key");
    let keys: Vec<&str> = agency.iter().map(|r| r.0).collect();
    let (a1, a2) = (
        k.agency1.verifier().to_string(),
        k.agency2.verifier().to_string(),
    );
    assert_eq!(keys, vec![a1.as_str(), a2.as_str()]);
    let cells = |row: &str| -> Vec<String> {
        row.split("<td data-label=\"")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap().to_owned())
            .collect()
    };
    let first = cells(agency[0].1);
    assert!(first[2].contains("href=\"/entries/0\""), "{first:?}");
    assert!(first[3].contains("href=\"/entries/4\""), "{first:?}");
    assert!(first[4].contains("replaced"), "{first:?}");
    assert!(first[4].contains(&short(&k.agency2)), "{first:?}");
    let second = cells(agency[1].1);
    assert!(second[2].contains("href=\"/entries/4\""), "{second:?}");
    assert!(
        second[2].contains(&format!("replacing key ID {}", k.agency1.verifier().id())),
        "{second:?}"
    );
    assert!(second[3].contains("href=\"/entries/14\""), "{second:?}");
    assert!(second[4].contains("revoked"), "{second:?}");
    assert!(
        page.contains("none in use now"),
        "agency.test has no key left"
    );

    // provider.test came from a version-1 entry; court.test from an entry
    // signed by the log's new key.
    let provider = rows(table(&page, "data-identity=\"provider.test\""), "data-key");
    assert_eq!(provider.len(), 1);
    assert!(provider[0].1.contains("href=\"/entries/1\""));
    assert!(provider[0].1.contains("in use"));
    let court = rows(table(&page, "data-identity=\"court.test\""), "data-key");
    assert_eq!(court.len(), 1);
    assert!(court[0].1.contains("href=\"/entries/13\""));

    // The log's keys: the chain starts from the key the rotation replaced,
    // though the web view was given the new one.
    let log_keys = rows(table(&page, "class=\"history log-keys\""), "data-key");
    let (l1, l2) = (k.log1.verifier().to_string(), k.log2.verifier().to_string());
    assert_eq!(
        log_keys.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![l1.as_str(), l2.as_str()]
    );
    let old = cells(log_keys[0].1);
    assert!(old[1].contains("the start"), "{old:?}");
    assert!(old[2].contains("href=\"/entries/12\""), "{old:?}");
    assert!(old[3].contains("<time"), "transition end: {old:?}");
    assert!(old[4].contains("in transition"), "{old:?}");
    let new = cells(log_keys[1].1);
    assert!(new[1].contains("href=\"/entries/12\""), "{new:?}");
    assert!(new[4].contains("current"), "{new:?}");

    // The entry signed by the retired log key is reported, not applied.
    let problems = page
        .split("role=\"alert\"")
        .nth(1)
        .expect("a problems note");
    assert!(problems.contains("href=\"/entries/15\""), "{problems}");
    assert!(
        problems.contains("registry_not_signed_by_log"),
        "{problems}"
    );
}

#[tokio::test]
async fn an_identitys_own_page_and_unknown_names() {
    let k = Keys::new();
    let site = start(&k).await;
    let page = site.page("/keys/agency.test").await;
    assert!(page.contains("<h1>Keys of agency.test</h1>"), "{page}");
    assert!(page.contains("href=\"/entries?agency=agency.test\""));
    let agency = rows(table(&page, "data-identity=\"agency.test\""), "data-key");
    assert_eq!(agency.len(), 2);
    // Links from tables reach it.
    let keys = site.page("/keys").await;
    assert!(keys.contains("href=\"/keys/agency.test\""));
    // A witness is an identity too.
    let w = site.page("/keys/w3.test").await;
    assert!(w.contains("witness"), "{w}");
    // Nobody: 404 page. The log's own name: its keys' table.
    let (status, body) = site.get("/keys/nobody.test").await;
    assert_eq!(status, 404);
    assert!(body.contains("Error 404"));
    let (status, body) = site.get("/keys/log.test%2Fweb").await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"log-keys\""));
}

#[tokio::test]
async fn witness_sets_and_quorum_over_time() {
    let k = Keys::new();
    let site = start(&k).await;
    let page = site.page("/witnesses").await;
    let sets = rows(table(&page, "class=\"history witness-sets\""), "data-from");
    let from: Vec<&str> = sets.iter().map(|r| r.0).collect();
    assert_eq!(from, vec!["start", "6", "7", "8", "9", "10", "11"]);
    let names = |row: &str| -> Vec<String> {
        let cell = row.split("data-label=\"Witnesses\"").nth(1).unwrap();
        let cell = cell.split("</td>").next().unwrap();
        ["w0.test", "w1.test", "w2.test", "w3.test"]
            .iter()
            .filter(|n| cell.contains(&format!("{n}+")))
            .map(|n| n.to_string())
            .collect()
    };
    let quorum = |row: &str| -> String {
        let cell = row.split("data-label=\"Must cosign\">").nth(1).unwrap();
        cell.split("</td>").next().unwrap().to_owned()
    };
    let expect: [(&[&str], &str, &str); 7] = [
        (&["w0.test"], "1 of 1", "as the log was set up"),
        (&["w0.test", "w1.test"], "1 of 2", "added"),
        (&["w0.test", "w1.test", "w2.test"], "1 of 3", "added"),
        (
            &["w0.test", "w1.test", "w2.test"],
            "2 of 3",
            "quorum set to",
        ),
        (&["w0.test", "w2.test", "w3.test"], "2 of 3", "replaced"),
        (&["w0.test", "w3.test"], "2 of 2", "removed"),
        (&["w0.test", "w3.test"], "1 of 2", "quorum set to"),
    ];
    for ((_, row), (ws, q, change)) in sets.iter().zip(expect) {
        assert_eq!(names(row), ws, "{row}");
        assert_eq!(quorum(row), q, "{row}");
        assert!(row.contains(change), "{change}: {row}");
    }
    assert!(sets[4].1.contains(&format!(
        "<strong>{}</strong> replaced {}",
        short(&k.w3),
        short(&k.w1)
    )));
    // The witnesses asked now: the registry's set, not only the stored one.
    let current = table(&page, "class=\"witnesses\"");
    assert!(current.contains("w3.test"), "{current}");
    assert!(current.contains("w0.test"), "{current}");
    assert!(!current.contains("w1.test") && !current.contains("w2.test"));
    let home = site.page("/").await;
    assert!(
        home.contains("<dt>Witnesses</dt><dd>2 (1 must cosign)</dd>"),
        "{home}"
    );
    assert!(page.contains("The log has changed its key"));
}

#[tokio::test]
async fn registry_entries_read_well_and_versions_1_and_2_are_indexed() {
    let k = Keys::new();
    let site = start(&k).await;
    let field = |page: &str, label: &str| -> String {
        let dd = page
            .split(&format!("<dt>{label}</dt><dd>"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {label}: {page}"));
        dd.split("</dd>").next().unwrap().to_owned()
    };
    // An agency key rotation.
    let e4 = site.page("/entries/4").await;
    assert!(field(&e4, "What it did").contains("replaced a key of the agency"));
    assert!(field(&e4, "Action").contains("key replaced"));
    assert_eq!(field(&e4, "Role"), "agency");
    assert!(field(&e4, "New key").contains(&k.agency2.verifier().to_string()));
    assert!(field(&e4, "Replaced key").contains(&k.agency1.verifier().to_string()));
    assert!(field(&e4, "New key").contains("href=\"/keys/agency.test\""));
    // The log's key rotation, with its transition end.
    let e12 = site.page("/entries/12").await;
    assert!(field(&e12, "What it did").contains("The log changed its own key"));
    assert!(field(&e12, "Role").contains("the log itself"));
    assert!(field(&e12, "Old key signs checkpoints until").contains("<time"));
    assert!(field(&e12, "New key").contains(&k.log2.verifier().to_string()));
    // Witnesses and quorum.
    let e9 = site.page("/entries/9").await;
    assert!(field(&e9, "What it did").contains("took the place of"));
    assert!(field(&e9, "Witness URL").contains("http://w3.test"));
    let e10 = site.page("/entries/10").await;
    assert!(field(&e10, "What it did").contains("removed the witness"));
    let e11 = site.page("/entries/11").await;
    assert!(field(&e11, "What it did").contains("only once <strong>1</strong> witnesses"));
    assert_eq!(field(&e11, "Witnesses that must cosign"), "1");
    let e14 = site.page("/entries/14").await;
    assert!(field(&e14, "What it did").contains("revoked a key of the agency"));
    // Version 1 entries: a registry entry and a release, read and indexed.
    let e1 = site.page("/entries/1").await;
    assert!(field(&e1, "What it did").contains("registered a key for the provider"));
    let e3 = site.page("/entries/3").await;
    assert!(e3.contains("Release by provider"));
    let e2 = site.page("/entries/2").await;
    assert!(e2.contains("access released"), "the v1 release counts");
    let (_, json) = site.get("/entries.json").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total"], 16);
    let (_, json) = site.get("/entries.json?kind=registry").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total"], 13);
    let (_, json) = site.get("/entries.json?agency=agency.test").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total"], 2, "both agency keys' entries under one name");
}
