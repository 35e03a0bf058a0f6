//! "Going dark", from the log itself: how often the outcome reports in
//! the log say encryption kept investigators out, per year and
//! jurisdiction, beside the figures officials and providers have
//! published (which this log cannot check).
//!
//! Every count is the total of an entry list: each metric is a list
//! filter ([`Metric::filter`]), counted by the index's own condition per
//! year and country ([`Index::per_year_and_country`]), and each cell links
//! to that list with the year and jurisdiction added. There is no second
//! way of deriving these numbers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use crate::filter::Filter;
use crate::index::{Index, IndexError};
use crate::pages::layout;

/// One column of the table: a list filter, counted.
pub struct Metric {
    /// Its key in the CSV and JSON.
    pub key: &'static str,
    /// Column heading.
    pub label: &'static str,
    /// What it counts, in a sentence.
    pub explain: &'static str,
    /// The list's filter, as query parameters.
    pub pairs: &'static [(&'static str, &'static str)],
}

impl Metric {
    /// The list filter this metric counts, for `year` and `jurisdiction`
    /// if given.
    pub fn filter(&self, year: Option<i32>, jurisdiction: Option<&str>) -> Filter {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(j) = jurisdiction {
            pairs.push(("jurisdiction".into(), j.to_owned()));
        }
        if let Some(y) = year {
            pairs.push(("from".into(), format!("{y:04}-01-01")));
            pairs.push(("to".into(), format!("{y:04}-12-31")));
        }
        Filter::parse(&pairs).0
    }

    /// The entry list this metric counts, for `year` and `jurisdiction`.
    pub fn href(&self, year: Option<i32>, jurisdiction: Option<&str>) -> String {
        format!("/entries{}", self.filter(year, jurisdiction).query(None))
    }
}

const AUTH: (&str, &str) = ("kind", "request");
const EMERG: (&str, &str) = ("kind", "emergency");
const OUTCOME: (&str, &str) = ("kind", "outcome");
const LATEST: (&str, &str) = ("outcome", "latest");

/// The table's columns.
pub const METRICS: [Metric; 6] = [
    Metric {
        key: "requests",
        label: "Requests",
        explain: "Requests and emergency requests for access made in the year.",
        pairs: &[AUTH, EMERG],
    },
    Metric {
        key: "access_released",
        label: "Access released",
        explain: "Of those requests, the ones for which the provider logged a release of access, or for which enough custodians logged the release of their shares of a key to put it together (threshold custody).",
        pairs: &[AUTH, EMERG, ("status", "released")],
    },
    Metric {
        key: "outcomes_reported",
        label: "Outcomes reported",
        explain: "Outcome reports made in the year, counted in the jurisdiction of the request they report on; where an agency reported twice on one request, only its latest report counts.",
        pairs: &[OUTCOME, LATEST],
    },
    Metric {
        key: "data_obtained",
        label: "Data obtained",
        explain: "Outcome reports saying data was obtained.",
        pairs: &[OUTCOME, LATEST, ("data_obtained", "yes")],
    },
    Metric {
        key: "encryption_encountered",
        label: "Encryption encountered",
        explain: "Outcome reports saying encryption was encountered.",
        pairs: &[OUTCOME, LATEST, ("encryption", "encountered")],
    },
    Metric {
        key: "encryption_prevented_access",
        label: "Encryption prevented access",
        explain: "Outcome reports saying encryption kept the plain text out of reach (could not be decrypted).",
        pairs: &[OUTCOME, LATEST, ("encryption", "prevented")],
    },
];

/// The metric of outcome reports, and of those saying encryption
/// prevented access: the overview's headline.
pub fn headline_metrics() -> (&'static Metric, &'static Metric) {
    (&METRICS[2], &METRICS[5])
}

/// One row: a year and jurisdiction (`None`: all), and a count per metric
/// in [`METRICS`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The year the entries were made (`None`: every year).
    pub year: Option<i32>,
    /// The country (`None`: every jurisdiction).
    pub jurisdiction: Option<String>,
    /// Counts, in [`METRICS`] order.
    pub counts: Vec<u64>,
}

impl Row {
    /// The entry list cell `m` counts.
    pub fn href(&self, m: usize) -> String {
        METRICS[m].href(self.year, self.jurisdiction.as_deref())
    }
}

/// The table: per year, newest first, a row per country and then the
/// year's total; last, the total over every year.
pub struct GoingDark {
    /// The rows.
    pub rows: Vec<Row>,
    /// When it was counted (the index's last tick then).
    pub as_of: DateTime<Utc>,
}

type Key = (Option<i32>, Option<String>);

/// Counts every metric per year and country from the index.
pub fn compute(index: &Index) -> Result<GoingDark, IndexError> {
    let mut counts: Vec<BTreeMap<Key, u64>> = Vec::new();
    let mut years: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    for m in &METRICS {
        let mut per = BTreeMap::new();
        for (y, c, n) in index.per_year_and_country(&m.filter(None, None))? {
            if let (Some(y), Some(c)) = (y, &c) {
                years.entry(y).or_default().insert(c.clone());
            }
            if let Some(y) = y {
                years.entry(y).or_default();
            }
            *per.entry((y, c)).or_insert(0) += n;
        }
        counts.push(per);
    }
    let sum = |m: usize, keep: &dyn Fn(&Key) -> bool| -> u64 {
        counts[m]
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(_, n)| n)
            .sum()
    };
    let mut rows = Vec::new();
    for (&y, countries) in years.iter().rev() {
        for c in countries {
            rows.push(Row {
                year: Some(y),
                jurisdiction: Some(c.clone()),
                counts: (0..METRICS.len())
                    .map(|m| sum(m, &|k| k.0 == Some(y) && k.1.as_deref() == Some(c)))
                    .collect(),
            });
        }
        rows.push(Row {
            year: Some(y),
            jurisdiction: None,
            counts: (0..METRICS.len())
                .map(|m| sum(m, &|k| k.0 == Some(y)))
                .collect(),
        });
    }
    rows.push(Row {
        year: None,
        jurisdiction: None,
        counts: (0..METRICS.len()).map(|m| sum(m, &|_| true)).collect(),
    });
    Ok(GoingDark {
        rows,
        as_of: index.ticked_at()?,
    })
}

/// A figure someone else published: a claim this log cannot check.
pub struct Claim {
    /// Who published it.
    pub publisher: &'static str,
    /// The period it covers.
    pub period: &'static str,
    /// What it says.
    pub figure: &'static str,
    /// Where it was published.
    pub source: &'static str,
}

/// Published figures on encryption and lawful access, from the project's
/// figures file (shared/data/lawful-access-figures.md).
pub const CLAIMS: &[Claim] = &[
    Claim {
        publisher: "Administrative Office of the US Courts, Wiretap Report",
        period: "2023",
        figure: "2,101 wiretaps authorised. State: encryption encountered in 238, could not be decrypted in 218. Federal: encountered in 234, could not be decrypted in 207.",
        source: "uscourts.gov Wiretap Report; news release of June 2024",
    },
    Claim {
        publisher: "Administrative Office of the US Courts, Wiretap Report",
        period: "2022",
        figure: "2,406 wiretaps authorised. State: encryption encountered in 192, could not be decrypted in 179. Federal: encountered in 286, could not be decrypted in 262.",
        source: "uscourts.gov Wiretap Report 2022; news release of June 2023",
    },
    Claim {
        publisher: "Administrative Office of the US Courts, Wiretap Report",
        period: "2021",
        figure: "2,245 wiretaps authorised. State: encryption encountered in 176 (could not decrypt: not found).",
        source: "uscourts.gov Wiretap Report 2021",
    },
    Claim {
        publisher: "Administrative Office of the US Courts, Wiretap Report",
        period: "2024",
        figure: "2,297 wiretaps authorised (encryption figures not found).",
        source: "uscourts.gov Wiretap Report 2024",
    },
    Claim {
        publisher: "Administrative Office of the US Courts, Wiretap Report",
        period: "2018 and 2015",
        figure: "2018: 2,937 wiretaps, 146 met encryption, 58 could not be decrypted. 2015: 13 met encryption, 11 could not be decrypted.",
        source: "uscourts.gov Wiretap Reports; Ars Technica (2019)",
    },
    Claim {
        publisher: "FBI",
        period: "FY2017",
        figure: "7,775 devices it could not unlock, claimed in January 2018; corrected in May 2018 to likely 1,000 to 2,000 (one internal estimate 1,200), blamed on programming errors. No final audited figure was published.",
        source: "Washington Post, 22 May 2018",
    },
    Claim {
        publisher: "FBI",
        period: "FY2016",
        figure: "880 devices it could not unlock.",
        source: "Washington Post, 22 May 2018",
    },
    Claim {
        publisher: "US carriers (via Stanford CIS)",
        period: "2014",
        figure: "Carriers reported 10,712 wiretaps against the official 3,554: self-reported totals and official counts can disagree threefold.",
        source: "Stanford Center for Internet and Society (2017)",
    },
    Claim {
        publisher: "Meta transparency report",
        period: "2021 to 2022",
        figure: "Government requests worldwide (US): H1 2021 211,055 (63,657); H2 2021 214,777 (59,996); H1 2022 237,414 (69,363, of which 3,943 emergency); H2 2022 239,388 (64,148). About 70% of US requests came with a non-disclosure order.",
        source: "Meta transparency report",
    },
    Claim {
        publisher: "Google transparency report",
        period: "H2 2013",
        figure: "US requests by legal process: subpoena 7,044; search warrant 2,537; emergency 153; other court order 689; pen register 140; wiretap 11.",
        source: "Google transparency report",
    },
    Claim {
        publisher: "Apple transparency report",
        period: "H2 2017",
        figure: "US device requests 4,450 covering 15,168 devices, data provided for 80%; national security orders 16,000 to 16,249 (published as a band).",
        source: "Apple transparency report",
    },
    Claim {
        publisher: "Commonwealth Ombudsman (Australia), Assistance and Access Act",
        period: "2018-19 to 2023-24",
        figure: "Technical assistance requests / notices / capability notices: 2018-19 7 / 0 / 0; 2019-20 11 / 0 / 0; 2020-21 25 / 1 / 0; 2023-24 60 / 0 / 0.",
        source: "Ombudsman reports, via iTnews",
    },
    Claim {
        publisher: "IOCCO, then IPCO (UK)",
        period: "2015 to 2023",
        figure: "Interception warrants: 3,059 (2015); 3,535 (2017). Communications data requests approved: 200,665 (2019). All authorisations across powers: just under 360,000 (2023).",
        source: "IOCCO and IPCO annual reports",
    },
];

fn year_text(y: Option<i32>) -> String {
    y.map_or_else(|| "all".to_owned(), |y| y.to_string())
}

fn jurisdiction_text(j: Option<&str>) -> &str {
    j.unwrap_or("all")
}

/// The table as CSV: a row per year and country, per year (`all`
/// jurisdictions), and the total (`all`, `all`).
pub fn csv(g: &GoingDark) -> String {
    let mut out = String::from("year,jurisdiction");
    for m in &METRICS {
        out.push(',');
        out.push_str(m.key);
    }
    out.push_str("\r\n");
    for r in &g.rows {
        // Years and ISO country codes need no quoting.
        out.push_str(&year_text(r.year));
        out.push(',');
        out.push_str(jurisdiction_text(r.jurisdiction.as_deref()));
        for n in &r.counts {
            out.push_str(&format!(",{n}"));
        }
        out.push_str("\r\n");
    }
    out
}

/// The table as JSON, each count with the entry list it counts, and the
/// published figures marked as unchecked.
pub fn json(g: &GoingDark, origin: &str) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = g
        .rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("year".into(), r.year.into());
            o.insert("jurisdiction".into(), r.jurisdiction.clone().into());
            for (i, m) in METRICS.iter().enumerate() {
                o.insert(
                    m.key.into(),
                    serde_json::json!({ "count": r.counts[i], "entries": r.href(i) }),
                );
            }
            serde_json::Value::Object(o)
        })
        .collect();
    let definitions: serde_json::Map<String, serde_json::Value> = METRICS
        .iter()
        .map(|m| (m.key.to_owned(), m.explain.into()))
        .collect();
    let claims: Vec<serde_json::Value> = CLAIMS
        .iter()
        .map(|c| {
            serde_json::json!({
                "publisher": c.publisher,
                "period": c.period,
                "figure": c.figure,
                "source": c.source,
                "checked_by_this_log": false,
            })
        })
        .collect();
    serde_json::json!({
        "log": origin,
        "as_of": g.as_of.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "note": "Counts are entries of this log; each names the entry list it counts (year: the year the entries were made, UTC; null means every year or every jurisdiction). Published figures are claims by others that this log cannot check.",
        "definitions": definitions,
        "rows": rows,
        "published_figures": claims,
    })
}

/// The page.
pub fn page(g: &GoingDark) -> Markup {
    let total = g.rows.last();
    let (reported, prevented) = total.map_or((0, 0), |t| (t.counts[2], t.counts[5]));
    let body = html! {
        h1 { "Going dark: what the log's outcome reports say" }
        p.lede {
            "How often does encryption actually stop an investigation? After an authorisation ends, the agency "
            "logs an outcome report, in the terms of the US Wiretap Report: whether data was obtained, whether "
            "encryption was encountered, and whether it kept the plain text out of reach. The numbers below are "
            "counted from those signed entries; each one links to the entries it counts."
        }
        p.headline id="going-dark-headline" {
            "Of " a href=(METRICS[2].href(None, None)) { strong { (reported) } } " outcomes reported, "
            a href=(METRICS[5].href(None, None)) { strong { (prevented) } } " say encryption prevented access."
        }
        section aria-labelledby="log-figures-h" {
            h2 id="log-figures-h" { "From this log" }
            p {
                "Year: the year the entries were made (UTC). An outcome report counts in the jurisdiction of the request it reports on; "
                "where an agency reported on one request more than once, only its latest report counts. Counted "
                (crate::pages::when(g.as_of)) ". Download: "
                a href="/going-dark.csv" { "CSV" } ", " a href="/going-dark.json" { "JSON" } "."
            }
            div.table-wrap {
                table.going-dark id="going-dark-table" {
                    caption.visually-hidden { "Outcome figures per year and jurisdiction, newest year first" }
                    thead {
                        tr {
                            th scope="col" { "Year" }
                            th scope="col" { "Jurisdiction" }
                            @for m in &METRICS { th scope="col" class="num" title=(m.explain) { (m.label) } }
                        }
                    }
                    tbody {
                        @for r in &g.rows {
                            tr class=(if r.jurisdiction.is_none() { "total" } else { "" })
                               data-year=(year_text(r.year)) data-jurisdiction=(jurisdiction_text(r.jurisdiction.as_deref())) {
                                th scope="row" { (r.year.map_or_else(|| "All years".to_owned(), |y| y.to_string())) }
                                td { (r.jurisdiction.as_deref().unwrap_or("all jurisdictions")) }
                                @for (i, m) in METRICS.iter().enumerate() {
                                    td.num {
                                        a href=(r.href(i)) data-metric=(m.key) { (r.counts[i]) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            dl.definitions {
                @for m in &METRICS { div { dt { (m.label) } dd { (m.explain) } } }
            }
        }
        section.claims aria-labelledby="claims-h" {
            h2 id="claims-h" { "Published elsewhere: claims this log cannot check" }
            p.note role="note" {
                strong { "Not verified by this log. " }
                "These figures come from courts' statistics, a police agency and providers' transparency reports. "
                "No signed entry stands behind them: they are shown so that the log's own counts can be set beside them, "
                "and they have been wrong before (the FBI's 2017 count of locked devices was overstated several times over)."
            }
            div.table-wrap {
                table.claims id="claims-table" {
                    thead {
                        tr {
                            th scope="col" { "Who says" }
                            th scope="col" { "Period" }
                            th scope="col" { "What they say" }
                            th scope="col" { "Source" }
                        }
                    }
                    tbody {
                        @for c in CLAIMS {
                            tr {
                                th scope="row" { (c.publisher) br; span.badge.unchecked { "claim, not checked" } }
                                td { (c.period) }
                                td { (c.figure) }
                                td { (c.source) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Going dark", "/going-dark", body)
}
