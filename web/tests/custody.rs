//! Threshold custody in the web view, over HTTP: a request whose key
//! custodians released 2 of 3 shares of (and of another key only one), a
//! request with one share released by a custodian under the provider's
//! own name, and a request the provider released itself.
//!
//! - The request's timeline shows each custodian's release (who, which
//!   share of which k-of-n key, when) and, at the share that completes the
//!   threshold, that the key could be put together; only for that key.
//! - A share release reads as "Share released by custodian", with its
//!   share and key, signed by a custodian (linked to its keys, not to a
//!   provider page).
//! - Statuses: released by the shares of one key, not by one share.
//! - Nothing counts a custodian's share as the provider's release: the
//!   provider's page, the overview, `release=provider|custodian` lists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{append, example, fmt, key, new_log, register, seal, serve, ORIGIN};
use daylight_core::{LeafIndex, SignerKey};
use daylight_log_server::server::RunningLog;
use daylight_schemas::{EntryRef, KeyTag, Record, Role, ShareRef, SignedRecord};

/// The log and what the test knows of it.
struct Site {
    _dir: tempfile::TempDir,
    running: RunningLog,
    http: reqwest::Client,
    /// The request with a key put together (two shares of key 1, one of key 2).
    together: u64,
    /// Its share releases: custodian a's and b's of key 1, a's of key 2.
    shares: [u64; 3],
    /// The request with one share, by the custodian under the provider's name.
    one_share: u64,
    /// That share's entry.
    providers_share: u64,
    /// The request the provider released itself, and its release.
    plain: (u64, u64),
}

fn share(key: u8, index: u8) -> ShareRef {
    ShareRef {
        key: KeyTag([key; 32]),
        index,
        threshold: 2,
        shares: 3,
    }
}

/// `t` in whole seconds, as records carry it.
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0).unwrap()
}

impl Site {
    async fn start() -> Site {
        let (dir, log_key, store) = new_log();
        let agency = key("agency.test", 2);
        let provider = key("messenger.example", 3);
        let custodians = [
            key("custodian-a.test", 4),
            key("custodian-b.test", 5),
            key("custodian-c.test", 6),
        ];
        // The provider holds a share itself, under its own name, with
        // another key registered as a custodian's.
        let own = key("messenger.example", 7);
        register(
            &store,
            &log_key,
            &[
                (Role::Agency, &agency),
                (Role::Provider, &provider),
                (Role::Custodian, &custodians[0]),
                (Role::Custodian, &custodians[1]),
                (Role::Custodian, &custodians[2]),
                (Role::Custodian, &own),
            ],
        );
        let add = |r: &SignedRecord, signer: &SignerKey| append(&store, &log_key, r, signer);
        let now = secs(Utc::now());
        let request = |case: &str| -> (u64, EntryRef) {
            let mut v = example("request");
            v["case_reference"] = case.into();
            v["valid_from"] = fmt(now - Duration::days(1)).into();
            v["valid_until"] = fmt(now + Duration::days(10)).into();
            v["sealed_until"] = fmt(now + Duration::days(400)).into();
            let r = seal(&agency, v, now - Duration::hours(2));
            let i = add(&r, &agency);
            (i, EntryRef::new(LeafIndex(i), r.leaf_hash()))
        };
        let share_release = |c: &SignerKey, e: EntryRef, s: ShareRef, m: i64| {
            let at = now - Duration::hours(1) + Duration::minutes(m);
            let r = Record::share_release(e, s, at, at)
                .unwrap()
                .sign(c, ORIGIN)
                .unwrap();
            add(&r, c)
        };
        let (together, t) = request("case together");
        let shares = [
            share_release(&custodians[0], t, share(1, 1), 1),
            share_release(&custodians[1], t, share(1, 2), 2),
            share_release(&custodians[0], t, share(2, 1), 3),
        ];
        let (one_share, o) = request("case one share");
        let providers_share = share_release(&own, o, share(3, 3), 4);
        let (plain, p) = request("case plain");
        let mut v = example("release");
        v["entry"] = serde_json::to_value(p).unwrap();
        v["released_at"] = fmt(now - Duration::minutes(10)).into();
        let release = add(&seal(&provider, v, now - Duration::minutes(5)), &provider);
        let running = serve(&store, &log_key, dir.path(), None).await;
        Site {
            _dir: dir,
            running,
            http: reqwest::Client::new(),
            together,
            shares,
            one_share,
            providers_share,
            plain: (plain, release),
        }
    }

    async fn page(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.running.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.text().await.unwrap()
    }

    /// The indexes the JSON export of `/entries?{query}` lists.
    async fn listed(&self, query: &str) -> Vec<u64> {
        let v: serde_json::Value =
            serde_json::from_str(&self.page(&format!("/entries.json?{query}")).await).unwrap();
        assert_eq!(v["ignored"], serde_json::json!([]), "{query}");
        let mut ids: Vec<u64> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// The first 16 hex digits of key `[k; 32]`, as pages shorten it.
fn short(k: u8) -> String {
    format!("{}…", &KeyTag([k; 32]).to_hex()[..16])
}

/// The timeline section of an entry page.
fn timeline(page: &str) -> &str {
    page.split("id=\"timeline-h\"")
        .nth(1)
        .unwrap()
        .split("</ol>")
        .next()
        .unwrap()
}

#[tokio::test]
async fn the_timeline_shows_each_custodians_release_and_when_a_key_could_be_put_together() {
    let site = Site::start().await;
    let page = site.page(&format!("/entries/{}", site.together)).await;
    let steps = timeline(&page);
    // Each custodian's release: who (linked to its keys), which share of
    // which k-of-n key, when.
    for (i, (who, what, key)) in [
        ("custodian-a.test", "share 1 of a 2-of-3 key", 1),
        ("custodian-b.test", "share 2 of a 2-of-3 key", 1),
        ("custodian-a.test", "share 1 of a 2-of-3 key", 2),
    ]
    .into_iter()
    .enumerate()
    {
        let step = steps
            .split(&format!("href=\"/entries/{}\"", site.shares[i]))
            .nth(1)
            .unwrap_or_else(|| panic!("no step {i}: {steps}"))
            .split("</li>")
            .next()
            .unwrap();
        assert!(
            step.contains(&format!(
                "Share released by custodian: custodian <a href=\"/keys/{who}\">{who}</a> released {what} (key <code class=\"hash\">{}</code>), at <time",
                short(key)
            )),
            "{step}"
        );
        // The second share of key 1 completes it; nothing else does.
        assert_eq!(
            step.contains("could be put together"),
            i == 1,
            "step {i}: {step}"
        );
    }
    assert!(steps.contains(&format!(
        "With this share, 2 custodians have released shares of key <code class=\"hash\">{}</code> for this request: the key could be put together.",
        short(1)
    )));
    assert_eq!(steps.matches("could be put together").count(), 1);
    // Released: by the shares of key 1.
    assert!(page.contains("st-released"), "{page}");
    // One share released nothing.
    let page = site.page(&format!("/entries/{}", site.one_share)).await;
    assert!(!page.contains("st-released"));
    assert!(!timeline(&page).contains("could be put together"));
    assert_eq!(
        site.listed("status=released").await,
        vec![site.together, site.plain.0]
    );
}

#[tokio::test]
async fn a_share_release_reads_as_a_custodians() {
    let site = Site::start().await;
    let page = site.page(&format!("/entries/{}", site.shares[1])).await;
    assert!(
        page.contains("<h1>Entry ") && page.contains(": Share released by custodian</h1>"),
        "{page}"
    );
    assert!(page.contains("One share reveals nothing"), "{page}");
    assert!(page.contains("<dt>Share</dt><dd>share 2 of a 2-of-3 key</dd>"));
    assert!(page.contains(&KeyTag([1; 32]).to_hex()));
    assert!(page.contains("<a href=\"/keys/custodian-b.test\">custodian-b.test</a>"));
    assert!(!page.contains("Targets released"));
    // Signed by the provider's name as a custodian: still its keys page.
    let page = site
        .page(&format!("/entries/{}", site.providers_share))
        .await;
    assert!(page.contains("<a href=\"/keys/messenger.example\">messenger.example</a>"));
    assert!(!page.contains("href=\"/providers/messenger.example\">messenger.example</a>"));
    // A provider's release still reads as one.
    let page = site.page(&format!("/entries/{}", site.plain.1)).await;
    assert!(page.contains(": Release by provider</h1>"));
    assert!(page.contains("<dt>Targets released</dt>"));
    // The list labels each.
    let page = site.page("/entries?kind=release").await;
    let list = page.split("<tbody>").nth(1).unwrap();
    assert_eq!(list.matches("Share released by custodian").count(), 4);
    assert_eq!(list.matches("Release by provider").count(), 1);
    // The custodian's keys page says what a custodian is.
    let keys = site.page("/keys/custodian-a.test").await;
    assert!(keys.contains("custodian"), "{keys}");
    assert!(
        keys.contains("/entries?kind=release&amp;release=custodian&amp;agency=custodian-a.test")
    );
    let all = site.page("/keys").await;
    assert!(all.contains("href=\"/keys/custodian-c.test\""), "{all}");
}

#[tokio::test]
async fn a_custodians_share_is_never_counted_as_the_providers_release() {
    let site = Site::start().await;
    let mut shares = site.shares.to_vec();
    shares.push(site.providers_share);
    shares.sort_unstable();
    assert_eq!(site.listed("kind=release&release=custodian").await, shares);
    assert_eq!(
        site.listed("kind=release&release=provider").await,
        vec![site.plain.1]
    );
    assert_eq!(
        site.listed("release=provider&agency=messenger.example")
            .await,
        vec![site.plain.1]
    );
    // The provider's page: one release of access, though a custodian under
    // its name released a share.
    let page = site.page("/providers/messenger.example").await;
    let cell = page
        .split("data-count=\"releases\">")
        .nth(1)
        .unwrap()
        .split("</a>")
        .next()
        .unwrap();
    assert_eq!(cell, "1", "{page}");
    assert!(page.contains("release=provider"));
    // The overview: providers' releases and custodians' shares apart.
    let home = site.page("/").await;
    assert!(
        home.contains(">1 releases by providers</a>")
            && home.contains(">4 key shares released by custodians</a>"),
        "{home}"
    );
    // A bad value is reported, not silently read as "any".
    let v: serde_json::Value =
        serde_json::from_str(&site.page("/entries.json?release=nobody").await).unwrap();
    assert_eq!(v["ignored"].as_array().unwrap().len(), 1, "{v}");
}
