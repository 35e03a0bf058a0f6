//! Refusals and published provider policies over HTTP, on a generated
//! log: requests from five jurisdictions by two agencies over three years
//! (the last one this year), refused by two providers for several
//! reasons (some by both), some released; one provider publishes its
//! standards twice, the other once.
//!
//! - Every refusal count on the overview and on `/refusals` is the total
//!   of the list it links to, and the model's count; the CSV, JSON and
//!   Atom of a count's list say the same.
//! - A refused request's page shows the refusal (who, when, why) and the
//!   status; `status=refused` lists exactly the refused requests.
//! - `/providers/{name}` shows the newest policy in words and every
//!   policy newest first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike as _, Duration, TimeZone, Utc};
use common::{append, attr, example, fmt, key, new_log, register, seal, serve, Rng, ORIGIN};
use daylight_core::{LeafIndex, SignerKey};
use daylight_log_server::server::RunningLog;
use daylight_schemas::{
    Body, EntryRef, PolicyBody, Record, RefusalBody, RefusalReason, Role, SignedRecord, Text,
    Timestamp,
};

const JURISDICTIONS: [(&str, &str); 5] = [
    ("US-NY", "US"),
    ("US-CA", "US"),
    ("DE", "DE"),
    ("GB", "GB"),
    ("FR", "FR"),
];

const REASONS: [RefusalReason; 4] = [
    RefusalReason::JurisdictionDenied,
    RefusalReason::IssuerNotAllowed,
    RefusalReason::TooManyTargets,
    RefusalReason::CategoryDenied,
];

const POLICY_OLD: [&str; 2] = ["daylight-issuers allow court", "daylight-max-targets 5"];
const POLICY_NEW: [&str; 3] = [
    "daylight-issuers allow court",
    "daylight-jurisdictions deny GB",
    "daylight-max-targets 3 for agency-b.test",
];

/// What the test knows of a refusal.
#[derive(Clone, Debug)]
struct Refusal {
    index: u64,
    /// The refused request's entry.
    request: u64,
    year: i32,
    country: &'static str,
    agency: String,
    provider: String,
    reason: RefusalReason,
}

struct Log {
    _dir: tempfile::TempDir,
    running: RunningLog,
    http: reqwest::Client,
    refusals: Vec<Refusal>,
    /// provider-a's policy entries, oldest first.
    policies: Vec<u64>,
}

fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0).unwrap()
}

impl Log {
    async fn start() -> Log {
        let (dir, log_key, store) = new_log();
        let agencies = [key("agency-a.test", 2), key("agency-b.test", 3)];
        let providers = [key("provider-a.test", 4), key("provider-b.test", 5)];
        let add = |r: &SignedRecord, signer: &SignerKey| append(&store, &log_key, r, signer);
        register(
            &store,
            &log_key,
            &[
                (Role::Agency, &agencies[0]),
                (Role::Agency, &agencies[1]),
                (Role::Provider, &providers[0]),
                (Role::Provider, &providers[1]),
            ],
        );
        let provider_record = |p: &SignerKey, created: DateTime<Utc>, body: Body| {
            Record::new(secs(created), body)
                .unwrap()
                .sign(p, ORIGIN)
                .unwrap()
        };
        let policy = |p: &SignerKey, lines: &[&str], created: DateTime<Utc>| {
            let lines = lines.iter().map(|l| Text::new(l).unwrap()).collect();
            provider_record(p, created, Body::Policy(PolicyBody { lines }))
        };
        let now = secs(Utc::now());
        let mut policies = vec![add(
            &policy(&providers[0], &POLICY_OLD, now - Duration::days(800)),
            &providers[0],
        )];
        add(
            &policy(
                &providers[1],
                &["daylight-jurisdictions allow US DE"],
                now - Duration::days(700),
            ),
            &providers[1],
        );
        let mut rng = Rng(22);
        let start = Utc.with_ymd_and_hms(now.year() - 2, 1, 1, 0, 0, 0).unwrap();
        let span = (now - Duration::days(3) - start).num_seconds() as u64;
        let mut refusals = Vec::new();
        for n in 0..60 {
            let created = start + Duration::seconds(rng.below(span) as i64);
            if n == 30 {
                // The newer policy, half way through.
                policies.push(add(
                    &policy(&providers[0], &POLICY_NEW, now - Duration::days(400)),
                    &providers[0],
                ));
            }
            let agency = &agencies[usize::from(rng.below(3) == 0)];
            let (j, country) = JURISDICTIONS[rng.below(5) as usize];
            let mut v = example("request");
            v["jurisdiction"] = j.into();
            v["provider"] = "provider-a.test".into();
            v["valid_from"] = fmt(created - Duration::days(1)).into();
            v["valid_until"] = fmt(created + Duration::days(10)).into();
            v["sealed_until"] = fmt(created + Duration::days(400)).into();
            let r = common::seal(agency, v, created);
            let request = add(&r, agency);
            let eref = EntryRef::new(LeafIndex(request), r.leaf_hash());
            // Refused by none, one or both providers.
            for p in &providers {
                if rng.below(5) >= 2 {
                    continue;
                }
                // Refused a day later, or released instead.
                let when = created + Duration::days(1);
                if rng.below(6) == 0 {
                    let mut v = example("release");
                    v["entry"] = common::entry_ref(&r, request);
                    v["released_at"] = fmt(when - Duration::minutes(1)).into();
                    add(&seal(p, v, when), p);
                    continue;
                }
                let reason = REASONS[rng.below(REASONS.len() as u64) as usize];
                let body = Body::Refusal(RefusalBody {
                    entry: eref,
                    reason,
                    refused_at: Timestamp::new(secs(when - Duration::minutes(5))).unwrap(),
                });
                let index = add(&provider_record(p, when, body), p);
                refusals.push(Refusal {
                    index,
                    request,
                    year: when.year(),
                    country,
                    agency: agency.name().to_string(),
                    provider: p.name().to_string(),
                    reason,
                });
            }
        }
        let running = serve(&store, &log_key, dir.path(), None).await;
        Log {
            _dir: dir,
            running,
            http: reqwest::Client::new(),
            refusals,
            policies,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn ok(&self, path: &str) -> String {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.text().await.unwrap()
    }

    /// The total of the entry list at `href` (`/entries?...`), checked
    /// against its JSON, CSV and Atom exports, and the indexes listed.
    async fn list(&self, href: &str) -> (u64, Vec<u64>) {
        let q = href.strip_prefix("/entries").expect(href);
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&format!("/entries.json{q}")).await).unwrap();
        assert_eq!(v["ignored"], serde_json::json!([]), "{href}");
        let ids: Vec<u64> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        let total = v["total"].as_u64().unwrap();
        assert_eq!(ids.len() as u64, total, "{href}");
        let csv = self.ok(&format!("/entries.csv{q}")).await;
        assert_eq!(csv.lines().count() as u64 - 1, total, "{href} as CSV");
        let atom = self.ok(&format!("/entries.atom{q}")).await;
        let feed = feed_rs::parser::parse(atom.as_bytes()).unwrap();
        assert_eq!(feed.entries.len() as u64, total.min(100), "{href} as Atom");
        (total, ids)
    }

    fn count(&self, keep: impl Fn(&Refusal) -> bool) -> u64 {
        self.refusals.iter().filter(|r| keep(r)).count() as u64
    }
}

/// The part of `page` from the element with this id to the end of its table.
fn table<'a>(page: &'a str, id: &str) -> &'a str {
    page.split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no #{id} in {page}"))
        .split("</table>")
        .next()
        .unwrap()
}

/// Every linked count in `html`: (row's `data-*` attributes, the link's
/// `data-count`, href, number).
fn counts(html: &str, row_attrs: &[&str]) -> Vec<(Vec<String>, String, String, u64)> {
    let mut out = Vec::new();
    for row in html.split("<tr ").skip(1) {
        let tag = &row[..row.find('>').unwrap()];
        let keys: Vec<String> = row_attrs
            .iter()
            .map(|a| attr(&format!(" {tag}"), a).unwrap_or_default())
            .collect();
        for a in row.split("<a ").skip(1) {
            let a = format!(" {a}");
            let Some(which) = attr(&a, "data-count") else {
                continue;
            };
            let href = attr(&a, "href").unwrap();
            let n: u64 = a[a.find('>').unwrap() + 1..a.find("</a>").unwrap()]
                .parse()
                .unwrap();
            out.push((keys.clone(), which, href, n));
        }
    }
    out
}

#[tokio::test]
async fn refusal_counts_are_the_totals_of_their_lists() {
    let log = Log::start().await;
    let this_year = Utc::now().year();
    assert!(log.refusals.len() > 20, "{}", log.refusals.len());
    let reasons: BTreeSet<RefusalReason> = log.refusals.iter().map(|r| r.reason).collect();
    assert!(reasons.len() >= 3, "{reasons:?}");
    assert!(log.count(|r| r.year == this_year) > 0);

    // The overview: the headline and the four breakdowns.
    let home = log.ok("/").await;
    let headline = home
        .split("id=\"refusals-headline\"")
        .nth(1)
        .unwrap()
        .split("</p>")
        .next()
        .unwrap();
    let all = log.count(|_| true);
    let year = log.count(|r| r.year == this_year);
    assert!(
        headline.contains(&format!(
            "Providers logged <a href=\"/entries?kind=refusal\"><strong>{all}</strong></a> refusals of requests, \
             <a href=\"/entries?kind=refusal&amp;from={this_year}-01-01&amp;to={this_year}-12-31\"><strong>{year}</strong></a> of them in {this_year}."
        )),
        "{headline}"
    );
    assert_eq!(log.list("/entries?kind=refusal").await.0, all);
    assert!(headline.contains("href=\"/refusals\""), "{headline}");
    for (key, model) in [
        (
            "jurisdiction",
            &(|r: &Refusal| r.country.to_owned()) as &dyn Fn(&Refusal) -> String,
        ),
        ("agency", &|r: &Refusal| r.agency.clone()),
        ("reason", &|r: &Refusal| r.reason.as_str().to_owned()),
        ("provider", &|r: &Refusal| r.provider.clone()),
    ] {
        let cells = counts(table(&home, &format!("refusals-by-{key}")), &["data-value"]);
        let want: BTreeMap<String, u64> = log.refusals.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(model(r)).or_insert(0) += 1;
            m
        });
        let mut got = BTreeMap::new();
        for (k, which, href, n) in cells {
            assert_eq!(which, key);
            let (total, ids) = log.list(&href).await;
            assert_eq!(total, n, "{key} {k:?}: {href}");
            // The list holds exactly the model's refusals of that value.
            let listed: BTreeSet<u64> = ids.into_iter().collect();
            let model_ids: BTreeSet<u64> = log
                .refusals
                .iter()
                .filter(|r| model(r) == k[0])
                .map(|r| r.index)
                .collect();
            assert_eq!(listed, model_ids, "{key} {}", k[0]);
            got.insert(k[0].clone(), n);
        }
        assert_eq!(got, want, "{key}");
    }

    // /refusals: per year and country, a column per reason.
    let page = log.ok("/refusals").await;
    let cells = counts(
        table(&page, "refusals-table"),
        &["data-year", "data-jurisdiction"],
    );
    let mut seen = 0;
    for (k, which, href, n) in &cells {
        let (total, _) = log.list(href).await;
        assert_eq!(total, *n, "{k:?} {which}: {href}");
        let want = log.count(|r| {
            (k[0] == "all" || r.year.to_string() == k[0])
                && (k[1] == "all" || r.country == k[1])
                && (which == "all" || r.reason.as_str() == which)
        });
        assert_eq!(*n, want, "{k:?} {which}");
        seen += 1;
    }
    // Every year and country with refusals has its row, each with every reason.
    let rows: BTreeSet<(i32, &str)> = log.refusals.iter().map(|r| (r.year, r.country)).collect();
    let years: BTreeSet<i32> = log.refusals.iter().map(|r| r.year).collect();
    assert_eq!(
        seen,
        (rows.len() + years.len() + 1) * (1 + reasons.len()),
        "{cells:?}"
    );
    // The question, answered: this year's refusals of one country's
    // requests, and why (the country with most of them).
    let country = ["US", "DE", "GB", "FR"]
        .into_iter()
        .max_by_key(|c| log.count(|r| r.year == this_year && r.country == *c))
        .unwrap();
    let row: Vec<_> = cells
        .iter()
        .filter(|(k, w, _, _)| k[0] == this_year.to_string() && k[1] == country && w != "all")
        .collect();
    assert_eq!(row.len(), reasons.len(), "{cells:?}");
    assert_eq!(
        row[0].2,
        format!(
            "/entries?kind=refusal&jurisdiction={country}&reason={}&from={this_year}-01-01&to={this_year}-12-31",
            row[0].1
        )
    );
    // Per provider, with its reasons.
    for (k, which, href, n) in counts(table(&page, "refusals-providers"), &["data-provider"]) {
        assert_eq!(log.list(&href).await.0, n, "{k:?} {which}");
        let want =
            log.count(|r| r.provider == k[0] && (which == "all" || r.reason.as_str() == which));
        assert_eq!(n, want, "{k:?} {which}");
    }

    // Filters that do not parse are reported, not silently dropped.
    let v: serde_json::Value =
        serde_json::from_str(&log.ok("/entries.json?kind=refusal&reason=because").await).unwrap();
    assert_eq!(v["ignored"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn a_refused_request_shows_its_refusals() {
    let log = Log::start().await;
    // A request refused by both providers, if any; else by one.
    let refused: BTreeMap<u64, Vec<&Refusal>> =
        log.refusals.iter().fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.request).or_insert_with(Vec::new).push(r);
            m
        });
    let (request, by) = refused
        .iter()
        .max_by_key(|(_, v)| v.len())
        .map(|(k, v)| (*k, v.clone()))
        .unwrap();
    let page = log.ok(&format!("/entries/{request}")).await;
    assert!(page.contains("refused by the provider"), "{page}");
    let timeline = page
        .split("id=\"timeline-h\"")
        .nth(1)
        .unwrap()
        .split("</ol>")
        .next()
        .unwrap();
    for r in &by {
        let item = timeline
            .split("<li")
            .find(|li| li.contains(&format!("href=\"/entries/{}\"", r.index)))
            .unwrap_or_else(|| panic!("refusal {} not in {timeline}", r.index));
        assert!(item.contains("Refusal by provider"), "{item}");
        assert!(
            item.contains(&format!(
                "by <a href=\"/providers/{0}\">{0}</a>",
                r.provider
            )),
            "{item}"
        );
        assert!(
            item.contains(&format!(
                "<strong class=\"refusal-reason\">{}</strong>",
                daylight_web::labels::refusal_reason(r.reason)
            )),
            "{item}"
        );
        assert!(item.contains("<time "), "{item}");
        // The refusal's own page names the request's jurisdiction, agency and reason.
        let own = log.ok(&format!("/entries/{}", r.index)).await;
        assert!(own.contains(r.reason.as_str()), "{own}");
        assert!(
            own.contains(&format!("href=\"/agencies/{0}\">{0}</a>", r.agency)),
            "{own}"
        );
    }
    // status=refused lists exactly the refused requests.
    let (total, ids) = log.list("/entries?status=refused").await;
    assert_eq!(total, refused.len() as u64);
    assert_eq!(
        ids.into_iter().collect::<BTreeSet<u64>>(),
        refused.keys().copied().collect()
    );
}

#[tokio::test]
async fn a_provider_page_shows_its_policy_now_and_over_time() {
    let log = Log::start().await;
    let page = log.ok("/providers/provider-a.test").await;
    let current = page
        .split("id=\"current-policy\"")
        .nth(1)
        .unwrap()
        .split("</ol>")
        .next()
        .unwrap();
    assert!(
        current.starts_with(&format!(" data-entry=\"{}\"", log.policies[1])),
        "{current}"
    );
    for l in POLICY_NEW {
        assert!(
            current.contains(&format!("<code>{l}</code>")),
            "{l}: {current}"
        );
    }
    assert!(!current.contains("daylight-max-targets 5"), "{current}");
    // In words.
    assert!(
        current.contains("Never requests from these jurisdictions: GB"),
        "{current}"
    );
    assert!(
        current.contains("For requests signed by agency-b.test: At most 3 targets per request."),
        "{current}"
    );
    assert!(
        current.contains("Only orders issued by a judge or court."),
        "{current}"
    );
    // The history, newest first, each linking to its entry, with what changed.
    let history = page
        .split("id=\"policy-history\"")
        .nth(1)
        .unwrap()
        .split("</ol>\n")
        .next()
        .unwrap();
    let order: Vec<u64> = history
        .split("<li data-entry=\"")
        .skip(1)
        .map(|x| x[..x.find('"').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(order, vec![log.policies[1], log.policies[0]], "{history}");
    for i in &log.policies {
        assert!(history.contains(&format!("href=\"/entries/{i}\"")));
    }
    assert!(
        history.contains("added <code>daylight-jurisdictions deny GB</code>"),
        "{history}"
    );
    assert!(
        history.contains("removed <code>daylight-max-targets 5</code>"),
        "{history}"
    );
    // Its figures are the totals of their lists, and the model's.
    let figures = counts(table(&page, "provider-figures"), &["data-figure"]);
    assert_eq!(
        figures.len(),
        2 + log
            .refusals
            .iter()
            .filter(|r| r.provider == "provider-a.test")
            .map(|r| r.reason)
            .collect::<BTreeSet<_>>()
            .len()
    );
    for (_, which, href, n) in figures {
        assert_eq!(log.list(&href).await.0, n, "{href}");
        let mine = |r: &Refusal| r.provider == "provider-a.test";
        match which.as_str() {
            "refusals" => assert_eq!(n, log.count(mine)),
            "releases" => assert!(
                href.contains("kind=release&agency=provider-a.test"),
                "{href}"
            ),
            code => assert_eq!(
                n,
                log.count(|r| mine(r) && r.reason.as_str() == code),
                "{code}"
            ),
        }
    }

    // Linked from the keys page and from what it signed; an unknown name is not found.
    let keys = log.ok("/keys").await;
    assert!(keys.contains("href=\"/providers/provider-a.test\""));
    let policy = log.ok(&format!("/entries/{}", log.policies[0])).await;
    assert!(policy.contains("href=\"/providers/provider-a.test\""));
    assert!(
        policy.contains("At most 5 targets per request."),
        "{policy}"
    );
    let other = log.ok("/providers/provider-b.test").await;
    assert!(other.contains("Only requests from these jurisdictions: US, DE"));
    let r = log
        .http
        .get(log.url("/providers/agency-a.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = log
        .http
        .get(log.url("/providers/nobody.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
