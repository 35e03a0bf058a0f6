//! The SQLite query index against a plain model of the same log: a few
//! hundred generated records (authorisations, and disclosures,
//! withdrawals, releases, extensions and ratifications referring to them),
//! then every filter, alone and combined, page by page, must list exactly
//! the entries the model says, newest first. Also: the index persists
//! across reopening and rebuilds itself for another log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use common::{entry_ref, example, fmt, key, seal, Rng, ORIGIN};
use daylight_core::SignerKey;
use daylight_log_server::integrate::{append_record, integrate};
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::{LogStore, NewEntry};
use daylight_schemas::{DataCategory, Decision, Kind, SignedRecord};
use daylight_web::filter::Filter;
use daylight_web::index::{Index, LegalWalk, StatusWalk, Summary, Total};
use daylight_web::status::{flags, Facts, Status};

/// What the model knows of one entry.
#[derive(Clone, Debug)]
struct Expect {
    kind: Option<Kind>,
    created: Option<DateTime<Utc>>,
    signer: String,
    jurisdiction: Option<String>,
    legal: Option<String>,
    provider: Option<String>,
    categories: Vec<&'static str>,
    sealed_in_force: Option<DateTime<Utc>>,
    ratify_by: Option<DateTime<Utc>>,
    flags: u8,
}

impl Expect {
    /// An entry that is no authorisation: no fields the filters read but
    /// its kind, time and signer.
    fn other(kind: Option<Kind>, created: Option<DateTime<Utc>>, signer: &str) -> Expect {
        Expect {
            kind,
            created,
            signer: signer.to_owned(),
            jurisdiction: None,
            legal: None,
            provider: None,
            categories: Vec::new(),
            sealed_in_force: None,
            ratify_by: None,
            flags: 0,
        }
    }

    fn facts(&self, now: DateTime<Utc>) -> Facts {
        Facts {
            kind: self.kind,
            flags: self.flags,
            seal_passed: self.sealed_in_force.map(|t| now >= t),
            ratify_passed: self.ratify_by.map(|t| now > t),
        }
    }

    /// The model's answer to a filter: a plain reading of each field.
    fn passes(&self, f: &Filter, now: DateTime<Utc>) -> bool {
        let auth = matches!(self.kind, Some(Kind::Request | Kind::Emergency));
        let day = self.created.map(|c| c.date_naive());
        (f.kinds.is_empty() || self.kind.is_some_and(|k| f.kinds.contains(&k)))
            && f.agency.as_ref().is_none_or(|a| &self.signer == a)
            && f.jurisdiction.as_ref().is_none_or(|j| {
                self.jurisdiction
                    .as_ref()
                    .is_some_and(|x| x == j || x.split('-').next() == Some(j.as_str()))
            })
            && f.legal_basis.as_ref().is_none_or(|l| {
                self.legal
                    .as_ref()
                    .is_some_and(|x| x.to_lowercase().contains(&l.to_lowercase()))
            })
            && f.provider
                .as_ref()
                .is_none_or(|p| self.provider.as_ref() == Some(p))
            && (f.categories.is_empty()
                || self
                    .categories
                    .iter()
                    .any(|c| f.categories.iter().any(|x| x == c)))
            && f.from.is_none_or(|d| day.is_some_and(|x| x >= d))
            && f.to.is_none_or(|d| day.is_some_and(|x| x <= d))
            && f.emergency
                .is_none_or(|e| auth && (self.kind == Some(Kind::Emergency)) == e)
            && f.status
                .is_none_or(|s| self.facts(now).statuses().contains(s))
    }
}

const JURISDICTIONS: [&str; 5] = ["US-NY", "US-CA", "DE", "FR", "GB"];
const PROVIDERS: [&str; 2] = ["messenger.example", "cloud.example"];
const LEGAL: [&str; 4] = [
    "18 U.S.C. 2518",
    "StPO 100a",
    "Code de procédure pénale 706-95",
    "RIPA s.8",
];
const CATEGORIES: [&str; 5] = [
    "content",
    "traffic",
    "subscriber",
    "location",
    "stored_keys",
];

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    log_key: SignerKey,
    model: Vec<Expect>,
    records: HashMap<u64, SignedRecord>,
    index_path: std::path::PathBuf,
}

impl World {
    fn new(origin: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let log_key = key(origin, 1);
        let store = SqliteStore::create(&dir.path().join("log.db"), origin, 0).unwrap();
        integrate(&store, &log_key, origin, vec![]).unwrap();
        let index_path = dir.path().join("web-index.db");
        World {
            _dir: dir,
            store,
            log_key,
            model: Vec::new(),
            records: HashMap::new(),
            index_path,
        }
    }

    fn add(&mut self, signer: &SignerKey, r: SignedRecord, e: Expect) -> u64 {
        let i = append_record(&self.store, &self.log_key, &r, signer.verifier())
            .unwrap()
            .get();
        assert_eq!(i, self.model.len() as u64);
        self.model.push(e);
        self.records.insert(i, r);
        i
    }

    fn index(&self) -> Index {
        Index::open(&self.index_path, &self.store.meta().unwrap().origin).unwrap()
    }
}

fn categories_in_order(v: &[&'static str]) -> Vec<&'static str> {
    DataCategory::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| v.contains(c))
        .collect()
}

/// When generated records were made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Times {
    /// Anywhere from 2023 to now, a fifth of them in the last three days:
    /// records logged long after they were made, date ranges spread thin
    /// over the log.
    Random,
    /// Authorisations made in log order (a day or two apart, as records
    /// are logged when they are made), their follow-ups up to 200 days
    /// later.
    Rising,
}

/// A log of `n` generated entries after two registry entries.
fn generate(w: &mut World, n: usize, now: DateTime<Utc>, seed: u64) {
    generate_at(w, n, now, seed, Times::Random);
}

/// [`generate`], the records made at `times`.
fn generate_at(w: &mut World, n: usize, now: DateTime<Utc>, seed: u64, times: Times) {
    let mut rng = Rng(seed);
    let agencies = [key("agency-a.test", 2), key("agency-b.test", 3)];
    let court = key("court.test", 4);
    let provider = key("provider.test", 5);
    let registry = |signer: &str| Expect::other(Some(Kind::Registry), Some(now), signer);
    let registered = if w.model.is_empty() {
        vec![&agencies[0], &court]
    } else {
        Vec::new()
    };
    for k in registered {
        let r = daylight_schemas::Record::registry_add(
            daylight_schemas::Role::Agency,
            k.verifier(),
            now,
        )
        .unwrap()
        .sign(&w.log_key, ORIGIN)
        .unwrap();
        let lk = w.log_key.clone();
        w.add(&lk, r, registry(&lk.name().to_string()));
    }
    let start = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
    let span = (now - start).num_seconds().max(1) as u64;
    let mut auths: Vec<u64> = (0..w.model.len() as u64)
        .filter(|&i| {
            matches!(
                w.model[i as usize].kind,
                Some(Kind::Request | Kind::Emergency)
            )
        })
        .collect();
    for k in 0..n {
        // Some entries from the last three days: emergencies still within
        // their ratification deadline, which time then passes.
        let created = if times == Times::Rising {
            let at = span * k as u64 / n.max(1) as u64 + rng.below(86_400);
            start + Days::seconds(at as i64)
        } else if rng.below(5) == 0 {
            now - Days::seconds(rng.below(3 * 86_400) as i64)
        } else {
            start + Days::seconds(rng.below(span) as i64)
        };
        let roll = rng.below(100);
        if roll < 3 {
            // Bytes that are no record at all.
            let data = format!("not a record {}", rng.next()).into_bytes();
            let leaf_hash = daylight_core::leaf_hash(&data);
            integrate(
                &w.store,
                &w.log_key,
                origin_of(w),
                vec![NewEntry {
                    data,
                    leaf_hash,
                    kind: "unknown".into(),
                    signer: "nobody".into(),
                    packed: None,
                }],
            )
            .unwrap();
            w.model.push(Expect::other(None, None, ""));
            continue;
        }
        if roll < 55 || auths.is_empty() {
            let emergency = rng.below(5) == 0;
            let agency = rng.pick(&agencies).clone();
            let mut v = example(if emergency { "emergency" } else { "request" });
            let j = *rng.pick(&JURISDICTIONS);
            let p = *rng.pick(&PROVIDERS);
            let l = *rng.pick(&LEGAL);
            let mut cats: Vec<&'static str> = CATEGORIES
                .iter()
                .copied()
                .filter(|_| rng.below(3) == 0)
                .collect();
            if cats.is_empty() {
                cats.push(*rng.pick(&CATEGORIES));
            }
            let sealed = created + Days::days(20 + rng.below(900) as i64);
            v["jurisdiction"] = j.into();
            v["provider"] = p.into();
            v["legal_basis"] = l.into();
            v["data_categories"] = serde_json::json!(cats);
            v["sealed_until"] = fmt(sealed).into();
            let mut ratify_by = None;
            if emergency {
                v["valid_from"] = fmt(created - Days::hours(1)).into();
                v["valid_until"] = fmt(created + Days::hours(40)).into();
                let rb = created + Days::hours(40);
                v["ratify_by"] = fmt(rb).into();
                ratify_by = Some(rb);
            } else {
                v["valid_from"] = fmt(created - Days::days(1)).into();
                v["valid_until"] = fmt(created + Days::days(10)).into();
            }
            let r = seal(&agency, v, created);
            let i = w.add(
                &agency,
                r,
                Expect {
                    kind: Some(if emergency {
                        Kind::Emergency
                    } else {
                        Kind::Request
                    }),
                    created: Some(created),
                    signer: agency.name().to_string(),
                    jurisdiction: Some(j.to_owned()),
                    legal: Some(l.to_owned()),
                    provider: Some(p.to_owned()),
                    categories: categories_in_order(&cats),
                    sealed_in_force: Some(sealed),
                    ratify_by,
                    flags: 0,
                },
            );
            auths.push(i);
            continue;
        }
        // A follow-up about an earlier authorisation.
        let target = *rng.pick(&auths);
        let t = w.model[target as usize].clone();
        let tref = entry_ref(&w.records[&target], target);
        let created = t.created.unwrap() + Days::hours(1 + rng.below(24 * 200) as i64);
        let follow = *rng.pick(&[
            "disclosure",
            "withdrawal",
            "release",
            "extension",
            "ratification",
        ]);
        let (kind, mut v, signer, decision) = match follow {
            "ratification" if t.kind == Some(Kind::Emergency) => {
                let d = if rng.below(3) == 0 {
                    "denied"
                } else {
                    "granted"
                };
                let mut v = example("ratification");
                v["emergency"] = tref;
                v["decision"] = d.into();
                (
                    Kind::Ratification,
                    v,
                    court.clone(),
                    Some(d.parse::<Decision>().unwrap()),
                )
            }
            "release" => {
                let mut v = example("release");
                v["entry"] = tref;
                v["released_at"] = fmt(created - Days::minutes(1)).into();
                (Kind::Release, v, provider.clone(), None)
            }
            "extension" => {
                let mut v = example("extension");
                v["entry"] = tref;
                (Kind::Extension, v, agencies[0].clone(), None)
            }
            "withdrawal" => {
                let mut v = example("withdrawal");
                v["entry"] = tref;
                (Kind::Withdrawal, v, agencies[1].clone(), None)
            }
            _ => {
                let mut v = example("disclosure");
                v["entry"] = tref;
                (Kind::Disclosure, v, agencies[0].clone(), None)
            }
        };
        let mut sealed_until = None;
        if kind == Kind::Extension {
            let until = (t.sealed_in_force.unwrap() + Days::days(rng.below(400) as i64 - 100))
                .max(created + Days::days(1));
            v["sealed_until"] = fmt(until).into();
            sealed_until = Some(until);
        }
        let r = seal(&signer, v, created);
        w.add(
            &signer,
            r,
            Expect::other(Some(kind), Some(created), signer.name().as_str()),
        );
        let m = &mut w.model[target as usize];
        m.flags |= flags::of(Some(kind), decision);
        if let (Some(until), Some(own)) = (sealed_until, m.sealed_in_force) {
            m.sealed_in_force = Some(own.max(until));
        }
    }
}

fn origin_of(w: &World) -> &str {
    w.log_key.name().as_str()
}

/// The time now, in whole seconds as records carry it.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

fn filter(pairs: &[(&str, &str)]) -> Filter {
    let (f, problems) = Filter::parse_strs(pairs);
    assert!(problems.is_empty(), "{problems:?}");
    f
}

/// Every page of `f` (7 per page) against the model; lists count up to
/// `limit` matches.
fn check_counted(
    idx: &Index,
    model: &[Expect],
    f: &Filter,
    now: DateTime<Utc>,
    limit: u64,
) -> usize {
    let want: Vec<u64> = (0..model.len() as u64)
        .rev()
        .filter(|&i| model[i as usize].passes(f, now))
        .collect();
    // Lists read statuses as of the last tick.
    idx.tick(now).unwrap();
    let mut f = f.clone();
    f.per_page = 7;
    let mut got = Vec::new();
    for page in 1..=want.len().div_ceil(7) + 1 {
        f.page = page;
        let (total, shown) = idx.page(&f).unwrap();
        let n = want.len() as u64;
        // Unfiltered, the count is the log's size: always exact.
        let expected = if f.is_empty() {
            Total { n, at_least: false }
        } else {
            Total {
                n: n.min(limit),
                at_least: n >= limit,
            }
        };
        assert_eq!(total, expected, "count of {}", f.query(None));
        got.extend(shown.iter().map(|s| s.index));
    }
    assert_eq!(got, want, "entries of {}", f.query(None));
    want.len()
}

fn check(idx: &Index, model: &[Expect], f: &Filter, now: DateTime<Utc>) -> usize {
    check_counted(idx, model, f, now, daylight_web::index::LIST_COUNT_LIMIT)
}

#[test]
fn every_filter_lists_what_the_model_says() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 400, now, 7);
    let idx = w.index();
    let c = idx.catch_up(&w.store, Duration::from_secs(120)).unwrap();
    assert!(c.complete(), "{c:?}");
    assert_eq!(c.indexed, w.model.len() as u64);

    let mut filters: Vec<Filter> = Vec::new();
    for k in Kind::ALL {
        filters.push(filter(&[("kind", k.as_str())]));
    }
    for a in [
        "agency-a.test",
        "agency-b.test",
        "court.test",
        "provider.test",
        ORIGIN,
        "nobody.test",
    ] {
        filters.push(filter(&[("agency", a)]));
    }
    for j in ["US", "US-NY", "us-ca", "DE", "XX"] {
        filters.push(filter(&[("jurisdiction", j)]));
    }
    for l in ["stpo", "PÉNAL", "2518", "S.8", "nothing"] {
        filters.push(filter(&[("legal_basis", l)]));
    }
    for p in PROVIDERS {
        filters.push(filter(&[("provider", p)]));
    }
    for c in CATEGORIES.iter().chain(&["device_unlock"]) {
        filters.push(filter(&[("category", c)]));
    }
    filters.push(filter(&[("from", "2024-06-01")]));
    filters.push(filter(&[("to", "2024-06-01")]));
    filters.push(filter(&[("from", "2024-01-01"), ("to", "2024-12-31")]));
    filters.push(filter(&[("emergency", "yes")]));
    filters.push(filter(&[("emergency", "no")]));
    for s in Status::ALL {
        filters.push(filter(&[("status", s.as_str())]));
    }
    filters.push(filter(&[("kind", "request"), ("status", "overdue")]));
    filters.push(filter(&[
        ("jurisdiction", "US"),
        ("emergency", "no"),
        ("category", "content"),
    ]));
    filters.push(filter(&[
        ("agency", "agency-a.test"),
        ("from", "2025-01-01"),
    ]));
    filters.push(filter(&[
        ("status", "sealed"),
        ("provider", "cloud.example"),
    ]));
    filters.push(filter(&[
        ("kind", "request"),
        ("kind", "emergency"),
        ("category", "location"),
        ("category", "traffic"),
        ("to", "2025-06-30"),
    ]));
    filters.push(filter(&[("status", "unratified"), ("legal_basis", "stpo")]));
    filters.push(Filter::parse(&[]).0);

    let mut nonempty = 0;
    for f in &filters {
        if check(&idx, &w.model, f, now) > 0 {
            nonempty += 1;
        }
    }
    // The same with lists counted up to 5 matches: long lists (a date range
    // read in log order, pages past the count).
    let short = w.index().with_list_limit(5);
    for f in &filters {
        check_counted(&short, &w.model, f, now, 5);
    }
    // The generated log exercises the filters: most select something.
    assert!(
        nonempty >= filters.len() - 8,
        "{nonempty} of {}",
        filters.len()
    );
    // Statuses need time: a year on, more is overdue and the lists follow.
    let later = now + Days::days(365);
    for s in ["overdue", "sealed", "unratified"] {
        check(&idx, &w.model, &filter(&[("status", s)]), later);
    }
    // The overview's counters agree with the model, at either time.
    for at in [later, now] {
        idx.tick(at).unwrap();
        let stats = idx.stats().unwrap();
        let count = |st: Status| {
            w.model
                .iter()
                .filter(|m| m.facts(at).statuses().contains(st))
                .count() as u64
        };
        assert_eq!(stats.overdue, count(Status::Overdue), "{at}");
        assert_eq!(stats.unratified, count(Status::Unratified), "{at}");
        assert_eq!(stats.released, count(Status::Released), "{at}");
        let auths = w
            .model
            .iter()
            .filter(|m| matches!(m.kind, Some(Kind::Request | Kind::Emergency)))
            .count() as u64;
        assert_eq!(stats.authorisations, auths);
        // Per month (the charts' last 36): disclosed + overdue + sealed is
        // every authorisation of the month.
        for (c, month) in stats.months.iter().enumerate() {
            let of_month = w
                .model
                .iter()
                .filter(|m| matches!(m.kind, Some(Kind::Request | Kind::Emergency)))
                .filter(|m| m.created.unwrap().format("%Y-%m").to_string() == *month)
                .collect::<Vec<_>>();
            let with = |st: Status| {
                of_month
                    .iter()
                    .filter(|m| m.facts(at).statuses().contains(st))
                    .count() as u64
            };
            assert_eq!(stats.disclosure[0][c], with(Status::Disclosed), "{month}");
            assert_eq!(stats.disclosure[1][c], with(Status::Overdue), "{month}");
            assert_eq!(
                stats.disclosure.iter().map(|d| d[c]).sum::<u64>(),
                of_month.len() as u64,
                "{month}"
            );
            assert_eq!(stats.with_release[0][c], with(Status::Released), "{month}");
        }
    }

    // Each entry's summary carries what later entries said of it.
    for (i, m) in w.model.iter().enumerate() {
        let s: Summary = idx.get(i as u64).unwrap().unwrap();
        assert_eq!(s.kind, m.kind, "{i}");
        assert_eq!(s.categories, m.categories, "{i}");
        assert_eq!(s.sealed_in_force, m.sealed_in_force, "{i}");
        assert_eq!(s.flags, m.flags, "{i}");
        assert_eq!(s.status_set(now), m.facts(now).statuses(), "{i}");
    }
    assert!(idx.get(w.model.len() as u64).unwrap().is_none());
}

/// Date ranges over a log whose records were logged as they were made:
/// read as a span of indexes (in log order, no sort), they list what the
/// model says, alone and with other filters, page by page, counted in
/// full and up to a short limit.
#[test]
fn date_ranges_over_a_log_in_time_order_list_what_the_model_says() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate_at(&mut w, 900, now, 17, Times::Rising);
    let idx = w.index();
    let c = idx.catch_up(&w.store, Duration::from_secs(120)).unwrap();
    assert!(c.complete(), "{c:?}");
    let this_year = now.format("%Y").to_string();
    let mut ranges: Vec<Vec<(&str, String)>> = vec![
        vec![("from", "2024-06-01".into())],
        vec![("to", "2024-06-01".into())],
        vec![("from", "2024-01-01".into()), ("to", "2024-12-31".into())],
        vec![("from", "2025-01-01".into()), ("to", "2025-06-30".into())],
        vec![("from", "2023-03-10".into()), ("to", "2023-03-10".into())],
        vec![("from", format!("{this_year}-01-01"))],
        vec![("from", "2030-01-01".into())],
        vec![("to", "2022-12-31".into())],
        vec![("from", "2025-02-01".into()), ("to", "2025-01-01".into())],
    ];
    for r in ranges.clone() {
        for extra in [
            ("category", "content"),
            ("kind", "request"),
            ("agency", "agency-b.test"),
            ("status", "sealed"),
            ("jurisdiction", "US"),
        ] {
            let mut r = r.clone();
            r.push((extra.0, extra.1.into()));
            ranges.push(r);
        }
    }
    let short = w.index().with_list_limit(5);
    let mut nonempty = 0;
    for r in &ranges {
        let pairs: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let f = filter(&pairs);
        if check(&idx, &w.model, &f, now) > 0 {
            nonempty += 1;
        }
        check_counted(&short, &w.model, &f, now, 5);
    }
    assert!(
        nonempty >= ranges.len() / 2,
        "{nonempty} of {}",
        ranges.len()
    );
}

/// A status list with a provider, an agency or a jurisdiction can be read
/// from the status's members or from that column's index; both, and the
/// race between them (with budgets small enough that plans are stopped
/// and run again), list what the model says, page by page, counted in full
/// and up to a short limit, now and a year on.
#[test]
fn status_lists_with_another_term_list_what_the_model_says_read_either_way() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 500, now, 23);
    let ways = [
        (StatusWalk::Race, 20_000),
        (StatusWalk::Race, 1),
        (StatusWalk::Race, 300),
        (StatusWalk::Members, 1),
        (StatusWalk::Bits, 1),
    ];
    let mut filters = Vec::new();
    for s in Status::ALL {
        for other in [
            ("provider", "cloud.example"),
            ("provider", "messenger.example"),
            ("agency", "agency-a.test"),
            ("jurisdiction", "US"),
            ("jurisdiction", "US-NY"),
        ] {
            filters.push(filter(&[("status", s.as_str()), other]));
        }
    }
    filters.push(filter(&[
        ("status", "sealed"),
        ("provider", "cloud.example"),
        ("kind", "request"),
        ("from", "2024-01-01"),
    ]));
    let mut nonempty = 0;
    for (walk, budget) in ways {
        let idx = w.index().with_status_walk(walk, budget);
        let c = idx.catch_up(&w.store, Duration::from_secs(120)).unwrap();
        assert!(c.complete(), "{c:?}");
        let short = w.index().with_status_walk(walk, budget).with_list_limit(5);
        for f in &filters {
            if check(&idx, &w.model, f, now) > 0 {
                nonempty += 1;
            }
            check_counted(&short, &w.model, f, now, 5);
        }
        let later = now + Days::days(365);
        for s in ["overdue", "sealed"] {
            check(
                &idx,
                &w.model,
                &filter(&[("status", s), ("provider", "cloud.example")]),
                later,
            );
        }
        idx.tick(now).unwrap();
    }
    // The generated log exercises the pairs: a good share select something.
    assert!(nonempty >= filters.len() * ways.len() / 3, "{nonempty}");
}

#[test]
fn legal_basis_lists_list_what_the_model_says_read_either_way() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 400, now, 29);
    let mut filters = Vec::new();
    // One legal basis, several (".", "a"), none, and words in another case.
    for l in ["stpo", "PÉNAL", "2518", "S.8", ".", "a", "nothing", "'"] {
        filters.push(filter(&[("legal_basis", l)]));
    }
    filters.push(filter(&[("legal_basis", "stpo"), ("status", "unratified")]));
    filters.push(filter(&[
        ("legal_basis", "a"),
        ("provider", "cloud.example"),
        ("status", "sealed"),
    ]));
    filters.push(filter(&[("legal_basis", "s"), ("kind", "emergency")]));
    let ways = [
        (LegalWalk::Race, 20_000),
        (LegalWalk::Race, 1),
        (LegalWalk::Race, 300),
        (LegalWalk::Scan, 1),
        (LegalWalk::Values, 1),
    ];
    let mut nonempty = 0;
    for (walk, budget) in ways {
        let idx = w
            .index()
            .with_status_walk(StatusWalk::Race, budget)
            .with_legal_walk(walk);
        let c = idx.catch_up(&w.store, Duration::from_secs(120)).unwrap();
        assert!(c.complete(), "{c:?}");
        let short = w
            .index()
            .with_status_walk(StatusWalk::Race, budget)
            .with_legal_walk(walk)
            .with_list_limit(5);
        for f in &filters {
            if check(&idx, &w.model, f, now) > 0 {
                nonempty += 1;
            }
            check_counted(&short, &w.model, f, now, 5);
        }
    }
    // All but "nothing" and "'" select something in a log of 400.
    assert!(nonempty >= (filters.len() - 2) * ways.len(), "{nonempty}");
}

#[test]
fn counts_follow_growth_and_statuses() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 60, now, 11);
    let idx = w.index();
    idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    let requests = filter(&[("kind", "request")]);
    let released = filter(&[("status", "released")]);
    let n0 = check(&idx, &w.model, &requests, now);
    let r0 = check(&idx, &w.model, &released, now);
    // More entries: the cached counts (kept per filter) must move with them.
    generate(&mut w, 80, now, 12);
    idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    let n1 = check(&idx, &w.model, &requests, now);
    let r1 = check(&idx, &w.model, &released, now);
    assert!(n1 > n0, "{n0} -> {n1}");
    assert!(r1 > r0, "{r0} -> {r1}");
    // Counting up to a limit: exact below it, "at least" at it, and a
    // cached count below the limit grows into it.
    let exact = |n: usize| Total {
        n: n as u64,
        at_least: false,
    };
    let at_least = |n: u64| Total { n, at_least: true };
    assert_eq!(idx.count(&requests, None).unwrap(), exact(n1));
    let limit = n1 as u64 + 2;
    assert_eq!(idx.count(&requests, Some(limit)).unwrap(), exact(n1));
    assert_eq!(idx.count(&requests, Some(3)).unwrap(), at_least(3));
    assert_eq!(idx.count(&released, Some(1)).unwrap(), at_least(1));
    generate(&mut w, 80, now, 13);
    idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    let n2 = check(&idx, &w.model, &requests, now);
    assert!(n2 as u64 >= limit);
    assert_eq!(idx.count(&requests, Some(limit)).unwrap(), at_least(limit));
    assert_eq!(idx.count(&requests, None).unwrap(), exact(n2));
}

/// `to`'s log read through a copy of `from`'s index file: it must list
/// `to`'s entries, not `from`'s.
fn reuse_index(from: &World, to: &World, now: DateTime<Utc>) {
    std::fs::copy(&from.index_path, &to.index_path).unwrap();
    let idx = to.index();
    let c = idx.catch_up(&to.store, Duration::from_secs(60)).unwrap();
    assert_eq!(c.indexed, to.model.len() as u64);
    for f in [
        Filter::parse(&[]).0,
        filter(&[("kind", "request")]),
        filter(&[("status", "disclosed")]),
    ] {
        check(&idx, &to.model, &f, now);
    }
}

#[test]
fn reopening_reads_only_new_entries_and_another_log_is_rebuilt() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 50, now, 21);
    {
        let idx = w.index();
        idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    }
    // Reopened: everything is still there before reading anything.
    let n = w.model.len() as u64;
    let idx = w.index();
    assert_eq!(idx.coverage(&w.store).unwrap().indexed, n);
    generate(&mut w, 10, now, 22);
    assert_eq!(idx.coverage(&w.store).unwrap().indexed, n);
    let c = idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    assert_eq!(c.indexed, w.model.len() as u64);
    check(&idx, &w.model, &filter(&[("kind", "request")]), now);
    drop(idx);

    // The same index file for another log with the same origin but other
    // entries: the last leaf hash differs, so it is rebuilt.
    let mut other = World::new(ORIGIN);
    generate(&mut other, 70, now, 99);
    reuse_index(&w, &other, now);
    // An index longer than the log (the log was replaced by a shorter one).
    let mut short = World::new(ORIGIN);
    generate(&mut short, 5, now, 5);
    reuse_index(&other, &short, now);

    // A damaged file: made again.
    std::fs::write(
        &short.index_path,
        b"this is not a SQLite database, not at all",
    )
    .unwrap();
    let idx = short.index();
    let c = idx.catch_up(&short.store, Duration::from_secs(60)).unwrap();
    assert_eq!(c.indexed, short.model.len() as u64);
    check(&idx, &short.model, &filter(&[("kind", "request")]), now);
    drop(idx);

    // Another origin: emptied at open.
    let foreign = Index::open(&short.index_path, "another.test/log").unwrap();
    assert_eq!(foreign.coverage(&short.store).unwrap().indexed, 0);
}

#[test]
fn a_partial_catch_up_says_how_far_it_got() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 30, now, 31);
    let idx = w.index();
    // No time at all: one chunk at most is read per call, never more than the log.
    let c = idx.catch_up(&w.store, Duration::ZERO).unwrap();
    assert_eq!(c.size, w.model.len() as u64);
    assert!(c.indexed <= c.size);
    let c = idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    assert!(c.complete());
}

#[test]
fn caught_up_within_says_when_a_catch_up_last_reached_the_log() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 30, now, 32);
    let idx = w.index();
    let hour = Duration::from_secs(3600);
    assert!(!idx.caught_up_within(hour), "never caught up");
    // A round out of time reads nothing: it did not reach the log.
    let c = idx.catch_up(&w.store, Duration::ZERO).unwrap();
    assert!(!c.complete());
    assert!(!idx.caught_up_within(hour), "a partial round counted");
    idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    assert!(idx.caught_up_within(hour));
    assert!(!idx.caught_up_within(Duration::ZERO));
    // The log grows: the index lacks the new entries, and held the whole
    // log as it was when it read it; that moment ages.
    generate(&mut w, 5, now, 33);
    let c = idx.coverage(&w.store).unwrap();
    assert_eq!(c.size - c.indexed, 5);
    assert!(idx.caught_up_within(hour));
    let age = Duration::from_millis(200);
    std::thread::sleep(age + Duration::from_millis(50));
    assert!(!idx.caught_up_within(age));
    // Reaching the grown log counts from the new round.
    idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    assert!(idx.caught_up_within(age));
}

#[test]
fn an_index_of_the_former_schema_is_rebuilt() {
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 20, now, 41);
    // The web view's own index file from before the ledger (version 7):
    // its `entries` table lacks columns the ledger's indexes name.
    {
        let c = rusqlite::Connection::open(&w.index_path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL);
             CREATE TABLE entries(idx INTEGER PRIMARY KEY, kind TEXT, created INTEGER,
                 signer TEXT NOT NULL, leaf_hash TEXT NOT NULL);
             CREATE INDEX entries_kind ON entries(kind);
             INSERT INTO entries VALUES (0, 'request', 0, 'agency-a.test', 'ab');",
        )
        .unwrap();
        c.execute(
            "INSERT INTO meta(key, value) VALUES ('version', 7), ('origin', ?1), ('tick', 0)",
            [ORIGIN],
        )
        .unwrap();
    }
    let idx = w.index();
    assert_eq!(idx.coverage(&w.store).unwrap().indexed, 0);
    let c = idx.catch_up(&w.store, Duration::from_secs(60)).unwrap();
    assert_eq!(c.indexed, w.model.len() as u64);
    check(&idx, &w.model, &filter(&[("kind", "request")]), now);
}

/// Every row of every table of the index file at `path`, table by table
/// (tables and indexes named in `sqlite_master`, with their SQL), in key
/// order.
fn contents(path: &std::path::Path) -> Vec<(String, Vec<Vec<rusqlite::types::Value>>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    let schema: Vec<Vec<rusqlite::types::Value>> = c
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap()
        .query_map([], |r| (0..4).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tables: Vec<String> = schema
        .iter()
        .filter(|row| row[0] == rusqlite::types::Value::Text("table".into()))
        .map(|row| match &row[1] {
            rusqlite::types::Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    out.push(("sqlite_master".to_owned(), schema));
    for t in tables {
        let st = c.prepare(&format!("SELECT * FROM {t}")).unwrap();
        let n = st.column_count();
        let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let mut st = c
            .prepare(&format!("SELECT * FROM {t} ORDER BY {}", order.join(", ")))
            .unwrap();
        let rows = st
            .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.push((t, rows));
    }
    out
}

#[test]
fn a_bulk_load_holds_what_adding_entry_by_entry_holds() {
    let now = now();
    let mut w = World::new(ORIGIN);
    // More than one chunk (2,048 entries), so that a bulk load's
    // transactions take several.
    generate(&mut w, 4_500, now, 77);
    let n = w.model.len() as u64;
    let origin = w.store.meta().unwrap().origin;
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, bulk_min: u64| {
        let path = dir.path().join(name);
        let idx = Index::open(&path, &origin).unwrap().with_bulk_min(bulk_min);
        // The same tick for both (a new index takes the current time).
        idx.tick(now).unwrap();
        let c = idx.catch_up(&w.store, Duration::from_secs(300)).unwrap();
        assert_eq!(c.indexed, n);
        drop(idx);
        path
    };
    // Every index kept up to date chunk by chunk, then in bulk.
    let one = build("incremental.db", u64::MAX);
    let bulk = build("bulk.db", 1);
    let a = contents(&one);
    let b = contents(&bulk);
    assert_eq!(a.len(), b.len());
    for ((ta, ra), (tb, rb)) in a.iter().zip(&b) {
        assert_eq!(ta, tb);
        assert_eq!(ra.len(), rb.len(), "{ta}: rows");
        for (x, y) in ra.iter().zip(rb) {
            assert_eq!(x, y, "{ta}");
        }
    }
    let rows = |t: &str| a.iter().find(|(x, _)| x == t).map_or(0, |(_, r)| r.len());
    assert_eq!(rows("entries") as u64, n);
    assert!(rows("refs") > 1_000, "{} references", rows("refs"));
    assert!(rows("status_members") > 1_000);
}

/// An index that takes the records the log server's admission parsed
/// (`Index::with_admitted`) holds exactly what one that parses every entry
/// holds; a record kept under another entry's leaf hash is never taken for
/// it.
#[test]
fn an_index_fed_admitted_records_holds_what_parsing_holds() {
    use daylight_log_server::admitted::Admitted;
    use std::sync::Arc;
    let now = now();
    let mut w = World::new(ORIGIN);
    generate(&mut w, 3_000, now, 91);
    let n = w.model.len() as u64;
    let origin = w.store.meta().unwrap().origin;
    let stored = w.store.entries(daylight_core::LeafIndex(0), n).unwrap();
    let admitted = Arc::new(Admitted::new(stored.len() + 1, Admitted::MAX_BYTES));
    let records: Vec<_> = stored
        .iter()
        .filter_map(|e| Some((e.leaf_hash, SignedRecord::parse(&e.data).ok()?)))
        .collect();
    assert!(records.len() > 2_000, "{} records", records.len());
    // The first record's hash holds the second record: a wrong one.
    for (i, (leaf, r)) in records.iter().enumerate() {
        let r = if i == 0 { &records[1].1 } else { r };
        admitted.keep(*leaf, r.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, admitted: Option<Arc<Admitted>>| {
        let path = dir.path().join(name);
        let mut idx = Index::open(&path, &origin).unwrap();
        if let Some(a) = admitted {
            idx = idx.with_admitted(a);
        }
        idx.tick(now).unwrap();
        let c = idx.catch_up(&w.store, Duration::from_secs(300)).unwrap();
        assert_eq!(c.indexed, n);
        drop(idx);
        contents(&path)
    };
    let parsed = build("parsed.db", None);
    let fed = build("fed.db", Some(admitted.clone()));
    assert_eq!(
        admitted.reused(),
        records.len() as u64 - 1,
        "every record taken but the wrong one"
    );
    assert_eq!(admitted.len(), 0);
    assert_eq!(parsed, fed);
}
