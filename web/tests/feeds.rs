//! Feeds, agency pages and the going-dark figures over HTTP, on a
//! generated log: authorisations over three years and four jurisdictions,
//! ratifications, releases, outcome reports (some replaced by a later
//! report on the same request) and a request whose legal basis is hostile
//! markup.
//!
//! - `/entries.atom` is parsed with a real feed parser (feed-rs): ids,
//!   links, order, filters, and that hostile text stays text.
//! - `/agencies/{name}`: each figure is the total of the list it links to,
//!   and the model's count.
//! - `/going-dark`: each number is the total of the list it links to, the
//!   CSV and JSON say the same as the page, and the totals are the model's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike as _, Duration, TimeZone, Utc};
use common::{
    append, attr, entry_ref, example, fmt, get, key, new_log, register, seal, serve, Rng, ORIGIN,
};
use daylight_core::SignerKey;
use daylight_log_server::integrate::append_record;
use daylight_log_server::server::RunningLog;
use daylight_log_server::sqlite::SqliteStore;
use daylight_schemas::{Role, SignedRecord};

const HOSTILE: &str = "<script>alert(\"x\")</script> & ]]> 'q' \u{FFFD}";

/// What the test knows of an authorisation.
#[derive(Clone)]
struct Auth {
    index: u64,
    record: SignedRecord,
    created: DateTime<Utc>,
    country: &'static str,
    agency: String,
    emergency: bool,
}

/// An outcome report: when, on which authorisation (its place in
/// `auths`), and what it says.
#[derive(Clone, Copy)]
struct Outcome {
    created: DateTime<Utc>,
    on: usize,
    data: bool,
    encountered: bool,
    prevented: bool,
}

struct Log {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    log_key: SignerKey,
    agencies: [SignerKey; 2],
    running: RunningLog,
    http: reqwest::Client,
    auths: Vec<Auth>,
    outcomes: Vec<Outcome>,
    /// Emergencies ratified (granted), per agency.
    ratified: HashMap<String, u64>,
    hostile: u64,
}

const JURISDICTIONS: [(&str, &str); 4] =
    [("US-NY", "US"), ("US-CA", "US"), ("DE", "DE"), ("GB", "GB")];

impl Log {
    async fn start() -> Log {
        let (dir, log_key, store) = new_log();
        let agencies = [key("agency-a.test", 2), key("agency-b.test", 3)];
        let court = key("court.test", 4);
        let provider = key("provider.test", 5);
        let add = |r: &SignedRecord, signer: &SignerKey| append(&store, &log_key, r, signer);
        register(
            &store,
            &log_key,
            &[
                (Role::Agency, &agencies[0]),
                (Role::Agency, &agencies[1]),
                (Role::Court, &court),
                (Role::Provider, &provider),
            ],
        );
        let mut rng = Rng(19);
        let start = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
        let span = (Utc.with_ymd_and_hms(2025, 6, 30, 0, 0, 0).unwrap() - start).num_seconds();
        let mut auths = Vec::new();
        let mut hostile = 0;
        for n in 0..70 {
            let created = start + Duration::seconds(rng.below(span as u64) as i64);
            let emergency = rng.below(4) == 0;
            let agency = &agencies[usize::from(rng.below(3) == 0)];
            let (j, country) = JURISDICTIONS[rng.below(4) as usize];
            let mut v = example(if emergency { "emergency" } else { "request" });
            v["jurisdiction"] = j.into();
            v["provider"] = "provider.test".into();
            v["sealed_until"] = fmt(created + Duration::days(30 + rng.below(900) as i64)).into();
            if n == 7 {
                v["legal_basis"] = HOSTILE.into();
            }
            if emergency {
                v["valid_from"] = fmt(created - Duration::hours(1)).into();
                v["valid_until"] = fmt(created + Duration::hours(40)).into();
                v["ratify_by"] = fmt(created + Duration::hours(40)).into();
            } else {
                v["valid_from"] = fmt(created - Duration::days(1)).into();
                v["valid_until"] = fmt(created + Duration::days(10)).into();
            }
            let r = seal(agency, v, created);
            let index = add(&r, agency);
            if n == 7 {
                hostile = index;
            }
            auths.push(Auth {
                index,
                record: r,
                created,
                country,
                agency: agency.name().to_string(),
                emergency,
            });
        }
        let mut ratified: HashMap<String, u64> = HashMap::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let by_name: HashMap<String, &SignerKey> =
            agencies.iter().map(|k| (k.name().to_string(), k)).collect();
        for (i, a) in auths.iter().enumerate() {
            let tref = entry_ref(&a.record, a.index);
            if a.emergency && rng.below(3) != 0 {
                let granted = rng.below(4) != 0;
                let mut v = example("ratification");
                v["emergency"] = tref.clone();
                v["decision"] = if granted { "granted" } else { "denied" }.into();
                add(&seal(&court, v, a.created + Duration::hours(20)), &court);
                if granted {
                    *ratified.entry(a.agency.clone()).or_default() += 1;
                }
            }
            if rng.below(3) == 0 {
                let t = a.created + Duration::days(2);
                let mut v = example("release");
                v["entry"] = tref.clone();
                v["released_at"] = fmt(t - Duration::minutes(1)).into();
                add(&seal(&provider, v, t), &provider);
            }
            if rng.below(3) != 0 {
                // One report, sometimes replaced by a second one later
                // (which may fall in the next year).
                let reports = 1 + usize::from(rng.below(4) == 0);
                let mut earlier: Option<(u64, SignedRecord)> = None;
                for k in 0..reports {
                    let created = a.created + Duration::days(30 + 200 * k as i64);
                    let encountered = rng.below(2) == 0;
                    let prevented = encountered && rng.below(2) == 0;
                    let data = rng.below(3) != 0;
                    let mut v = example("outcome");
                    v["entry"] = tref.clone();
                    v["data_obtained"] = data.into();
                    v["encryption_encountered"] = encountered.into();
                    v["encryption_prevented_access"] = prevented.into();
                    if let Some((ei, er)) = &earlier {
                        v["amends"] = entry_ref(er, *ei);
                    }
                    let signer = by_name[&a.agency];
                    let r = seal(signer, v, created);
                    let index = add(&r, signer);
                    outcomes.push(Outcome {
                        created,
                        on: i,
                        data,
                        encountered,
                        prevented,
                    });
                    earlier = Some((index, r));
                }
            }
        }
        let running = serve(&store, &log_key, dir.path(), None).await;
        Log {
            _dir: dir,
            store,
            log_key,
            agencies,
            running,
            http: reqwest::Client::new(),
            auths,
            outcomes,
            ratified,
            hostile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        get(&self.http, &self.url(path)).await
    }

    async fn ok(&self, path: &str, content_type: &str) -> String {
        let (status, ct, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(ct.starts_with(content_type), "{path}: {ct}");
        body
    }

    /// The total and indexes of the entry list at `href` (`/entries?...`),
    /// from its JSON export.
    async fn list(&self, href: &str) -> (u64, Vec<u64>) {
        let q = href.strip_prefix("/entries").expect(href);
        let v: serde_json::Value = serde_json::from_str(
            &self
                .ok(&format!("/entries.json{q}"), "application/json")
                .await,
        )
        .unwrap();
        assert_eq!(v["ignored"], serde_json::json!([]), "{href}");
        let ids = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        (v["total"].as_u64().unwrap(), ids)
    }

    async fn feed(&self, path: &str) -> (String, feed_rs::model::Feed) {
        let body = self.ok(path, "application/atom+xml; charset=utf-8").await;
        let feed = feed_rs::parser::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("{path} does not parse: {e}\n{body}"));
        assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
        (body, feed)
    }

    /// The latest outcome report per authorisation.
    fn latest(&self) -> Vec<Outcome> {
        let mut last: BTreeMap<usize, Outcome> = BTreeMap::new();
        for o in &self.outcomes {
            last.insert(o.on, *o);
        }
        last.into_values().collect()
    }
}

#[tokio::test]
async fn feeds_are_atom_with_the_lists_entries() {
    let log = Log::start().await;

    // The whole list: newest first, bounded, each entry linked to its page.
    let (body, feed) = log.feed("/entries.atom").await;
    let (total, newest) = log.list("/entries").await;
    assert!(total > 100, "the generated log has {total} entries");
    assert_eq!(feed.entries.len(), 100);
    let links: Vec<String> = feed
        .entries
        .iter()
        .map(|e| e.links[0].href.clone())
        .collect();
    let expected: Vec<String> = newest
        .iter()
        .take(100)
        .map(|i| log.url(&format!("/entries/{i}")))
        .collect();
    assert_eq!(links, expected);
    // Feed metadata: id, title, updated, self and alternate links.
    assert!(feed.id.starts_with("urn:uuid:"), "{}", feed.id);
    assert!(feed.title.unwrap().content.contains(ORIGIN));
    assert!(feed.updated.is_some());
    let rel = |rel: &str| {
        feed.links
            .iter()
            .find(|l| l.rel.as_deref() == Some(rel))
            .map(|l| l.href.clone())
    };
    assert_eq!(rel("self"), Some(log.url("/entries.atom")));
    assert_eq!(rel("alternate"), Some(log.url("/entries")));
    // Entry ids: tags under the log's origin naming index and leaf hash,
    // the same on every fetch; updated is when the entry was made.
    let first = &feed.entries[0];
    assert!(
        first.id.starts_with("tag:log.test,")
            && first.id.contains(&format!(":web/entry/{}/", newest[0])),
        "{}",
        first.id
    );
    assert!(first.updated.is_some() && first.summary.is_some());
    let (_, again) = log.feed("/entries.atom").await;
    assert_eq!(
        again.entries.iter().map(|e| &e.id).collect::<Vec<_>>(),
        feed.entries.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
    assert!(!body.contains("<script>"));

    // A filtered feed lists what the filtered list lists.
    for q in [
        "?kind=request&jurisdiction=DE",
        "?agency=agency-b.test",
        "?kind=outcome&outcome=latest&encryption=prevented",
        "?status=unratified",
    ] {
        let (_, f) = log.feed(&format!("/entries.atom{q}")).await;
        let (total, ids) = log.list(&format!("/entries{q}")).await;
        assert!(total > 0, "{q} lists nothing");
        let got: Vec<String> = f.entries.iter().map(|e| e.links[0].href.clone()).collect();
        let want: Vec<String> = ids
            .iter()
            .take(100)
            .map(|i| log.url(&format!("/entries/{i}")))
            .collect();
        assert_eq!(got, want, "{q}");
        let self_link = f
            .links
            .iter()
            .find(|l| l.rel.as_deref() == Some("self"))
            .unwrap();
        assert!(
            self_link.href.ends_with(&format!("/entries.atom{q}")),
            "{}",
            self_link.href
        );
    }
    // Another filter is another feed.
    let (_, de) = log.feed("/entries.atom?jurisdiction=DE").await;
    assert_ne!(de.id, feed.id);

    // Hostile record text stays text: escaped in the XML, whole once parsed.
    let (raw, f) = log.feed("/entries.atom?legal_basis=alert").await;
    assert_eq!(f.entries.len(), 1, "{raw}");
    assert!(f.entries[0].links[0]
        .href
        .ends_with(&format!("/entries/{}", log.hostile)));
    let summary = &f.entries[0].summary.as_ref().unwrap().content;
    assert!(summary.contains(HOSTILE), "{summary}");
    assert!(
        !raw.contains("<script>") && raw.contains("&lt;script&gt;"),
        "{raw}"
    );

    // The list page announces its feed, with its filters.
    let page = log
        .ok("/entries?jurisdiction=DE&kind=request", "text/html")
        .await;
    let want = "/entries.atom?kind=request&amp;jurisdiction=DE";
    assert!(
        page.contains(&format!("<link rel=\"alternate\" type=\"application/atom+xml\" title=\"Entries (Atom feed)\" href=\"{want}\">")),
        "{page}"
    );
    assert!(
        page.contains(&format!("id=\"feed-link\" href=\"{want}\"")),
        "{page}"
    );
    // A proxy's https is kept in the feed's links.
    let r = log
        .http
        .get(log.url("/entries.atom?kind=outcome"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let f = feed_rs::parser::parse(r.as_bytes()).unwrap();
    assert!(f.entries[0].links[0].href.starts_with("https://"));
}

#[tokio::test]
async fn agency_pages_count_what_their_lists_hold() {
    let log = Log::start().await;
    for name in ["agency-a.test", "agency-b.test"] {
        let page = log.ok(&format!("/agencies/{name}"), "text/html").await;
        let mine: Vec<&Auth> = log.auths.iter().filter(|a| a.agency == name).collect();
        let mut figures: HashMap<String, u64> = HashMap::new();
        for row in page.split("<tr data-figure=\"").skip(1) {
            let key = row.split('"').next().unwrap().to_owned();
            let a = &row[row.find("<a ").unwrap()..];
            let href = attr(a, "href").unwrap();
            let n: u64 = a[a.find('>').unwrap() + 1..a.find("</a>").unwrap()]
                .parse()
                .unwrap();
            // Each figure is the total of the list it links to.
            assert_eq!(log.list(&href).await.0, n, "{name} {key} {href}");
            assert!(href.contains(&format!("agency={name}")), "{href}");
            figures.insert(key, n);
        }
        assert_eq!(figures.len(), daylight_web::agency::FIGURES.len());
        // And what the test made.
        let emergencies = mine.iter().filter(|a| a.emergency).count() as u64;
        assert_eq!(figures["requests"], mine.len() as u64 - emergencies);
        assert_eq!(figures["emergencies"], emergencies);
        assert!(emergencies > 0);
        let ratified = log.ratified.get(name).copied().unwrap_or(0);
        assert_eq!(figures["ratified"], ratified);
        let latest: Vec<Outcome> = log
            .latest()
            .into_iter()
            .filter(|o| log.auths[o.on].agency == name)
            .collect();
        assert_eq!(figures["outcomes"], latest.len() as u64);
        assert_eq!(
            figures["encryption_prevented_access"],
            latest.iter().filter(|o| o.prevented).count() as u64
        );
        assert!(
            page.contains(&format!(
                "A court ratified <strong>{ratified}</strong> of its <strong>{emergencies}</strong> emergency requests"
            )),
            "{page}"
        );
        // Its feed, in the head and on the page.
        let feed = format!("/entries.atom?agency={name}");
        assert!(
            page.contains(&format!(
                "type=\"application/atom+xml\" title=\"Agency {name} (Atom feed)\" href=\"{feed}\""
            )),
            "{page}"
        );
        let (_, f) = log.feed(&feed).await;
        assert!(!f.entries.is_empty());
    }
    // Linked from the entries list and the keys page.
    let list = log.ok("/entries?kind=request", "text/html").await;
    assert!(list.contains("<a href=\"/agencies/agency-a.test\">agency-a.test</a>"));
    let keys = log.ok("/keys", "text/html").await;
    assert!(keys.contains("href=\"/agencies/agency-b.test\""));
    // Names no entry and no key carry are not found.
    let (status, _, _) = log.get("/agencies/nobody.test").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn going_dark_numbers_are_the_totals_of_their_lists() {
    let log = Log::start().await;
    let page = log.ok("/going-dark", "text/html").await;
    let table = page
        .split("id=\"going-dark-table\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    // (year, jurisdiction, metric) -> count, from the page.
    let mut cells: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for row in table.split("<tr ").skip(1) {
        let tag = &row[..row.find('>').unwrap()];
        let (Some(year), Some(j)) = (attr(tag, "data-year"), attr(tag, "data-jurisdiction")) else {
            continue;
        };
        for a in row.split("<a ").skip(1) {
            let href = attr(&format!(" {a}"), "href").unwrap();
            let metric = attr(&format!(" {a}"), "data-metric").unwrap();
            let n: u64 = a[a.find('>').unwrap() + 1..a.find("</a>").unwrap()]
                .parse()
                .unwrap();
            assert_eq!(log.list(&href).await.0, n, "{year} {j} {metric}: {href}");
            cells.insert((year.clone(), j.clone(), metric), n);
        }
    }
    let cell = |y: &str, j: &str, m: &str| {
        cells
            .get(&(y.to_owned(), j.to_owned(), m.to_owned()))
            .copied()
            .unwrap_or_else(|| panic!("no cell {y} {j} {m}"))
    };
    // The model's figures, per year of the report and country of the request.
    let latest = log.latest();
    assert!(latest.len() > 20 && latest.iter().any(|o| o.prevented));
    assert!(
        log.outcomes.len() > latest.len(),
        "some reports are replaced"
    );
    let count = |f: &dyn Fn(&Outcome) -> bool| latest.iter().filter(|o| f(o)).count() as u64;
    assert_eq!(cell("all", "all", "outcomes_reported"), latest.len() as u64);
    assert_eq!(
        cell("all", "all", "encryption_prevented_access"),
        count(&|o| o.prevented)
    );
    assert_eq!(
        cell("all", "all", "encryption_encountered"),
        count(&|o| o.encountered)
    );
    assert_eq!(cell("all", "all", "data_obtained"), count(&|o| o.data));
    assert_eq!(cell("all", "all", "requests"), log.auths.len() as u64);
    for year in 2023..=2025 {
        for country in ["US", "DE", "GB"] {
            let here = |o: &Outcome| o.created.year() == year && log.auths[o.on].country == country;
            let want = count(&|o| here(o) && o.prevented);
            let got = cells
                .get(&(
                    year.to_string(),
                    country.to_owned(),
                    "encryption_prevented_access".to_owned(),
                ))
                .copied()
                .unwrap_or(0);
            assert_eq!(got, want, "{year} {country}");
            let requests = log
                .auths
                .iter()
                .filter(|a| a.created.year() == year && a.country == country)
                .count() as u64;
            let got = cells
                .get(&(year.to_string(), country.to_owned(), "requests".to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(got, requests, "{year} {country}");
        }
    }

    // The CSV and the JSON say what the page says.
    let csv = log.ok("/going-dark.csv", "text/csv").await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut from_csv = BTreeMap::new();
    for line in lines {
        let v: Vec<&str> = line.split(',').collect();
        for (i, m) in header.iter().enumerate().skip(2) {
            from_csv.insert(
                (v[0].to_owned(), v[1].to_owned(), (*m).to_owned()),
                v[i].parse::<u64>().unwrap(),
            );
        }
    }
    assert_eq!(from_csv, cells);
    let json: serde_json::Value =
        serde_json::from_str(&log.ok("/going-dark.json", "application/json").await).unwrap();
    let mut from_json = BTreeMap::new();
    for r in json["rows"].as_array().unwrap() {
        let y = r["year"]
            .as_i64()
            .map_or("all".to_owned(), |y| y.to_string());
        let j = r["jurisdiction"].as_str().unwrap_or("all").to_owned();
        for m in daylight_web::going_dark::METRICS.iter() {
            from_json.insert(
                (y.clone(), j.clone(), m.key.to_owned()),
                r[m.key]["count"].as_u64().unwrap(),
            );
            assert!(r[m.key]["entries"]
                .as_str()
                .unwrap()
                .starts_with("/entries?"));
        }
    }
    assert_eq!(from_json, cells);
    let claims = json["published_figures"].as_array().unwrap();
    assert!(claims.iter().all(|c| c["checked_by_this_log"] == false));
    assert!(claims
        .iter()
        .any(|c| c["figure"].as_str().unwrap().contains("7,775")));
    // The published figures stand beside, marked as unchecked claims.
    assert!(page.contains("claims this log cannot check"));
    assert!(page.contains("Wiretap Report") && page.contains("7,775"));

    // The overview's headline: the same two numbers, linked.
    let home = log.ok("/", "text/html").await;
    let headline = home
        .split("id=\"going-dark-headline\"")
        .nth(1)
        .unwrap()
        .split("</p>")
        .next()
        .unwrap();
    assert!(
        headline.contains(&format!(
            "<strong>{}</strong></a> outcomes reported in this log, <a href=\"/entries?kind=outcome&amp;outcome=latest&amp;encryption=prevented\"><strong>{}</strong>",
            latest.len(),
            count(&|o| o.prevented)
        )),
        "{headline}"
    );
    assert!(headline.contains("href=\"/going-dark\""), "{headline}");

    // A new report counts once the page lag has passed (the table is
    // counted again for new entries).
    let fresh = log
        .auths
        .iter()
        .enumerate()
        .find(|(i, _)| !log.outcomes.iter().any(|o| o.on == *i))
        .map(|(_, a)| a.clone())
        .unwrap();
    let signer = log
        .agencies
        .iter()
        .find(|k| k.name().as_str() == fresh.agency)
        .unwrap();
    let mut v = example("outcome");
    v["entry"] = entry_ref(&fresh.record, fresh.index);
    v["encryption_encountered"] = true.into();
    v["encryption_prevented_access"] = true.into();
    let r = seal(signer, v, Utc::now());
    append_record(log.store.as_ref(), &log.log_key, &r, signer.verifier()).unwrap();
    common::past_the_page_lag().await;
    let json: serde_json::Value =
        serde_json::from_str(&log.ok("/going-dark.json", "application/json").await).unwrap();
    let total = json["rows"].as_array().unwrap().last().unwrap();
    assert_eq!(
        total["encryption_prevented_access"]["count"]
            .as_u64()
            .unwrap(),
        count(&|o| o.prevented) + 1
    );
    assert_eq!(
        total["outcomes_reported"]["count"].as_u64().unwrap(),
        latest.len() as u64 + 1
    );
}
