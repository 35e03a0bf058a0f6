//! One agency's page, `/agencies/{name}`: its requests and emergencies,
//! how many a court ratified, its overdue disclosures and its outcome
//! reports, each a count of an entry list (the list filter with
//! `agency=NAME`) that links to that list, and its own feed.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use crate::filter::{encode_query, Filter};
use crate::index::{Coverage, Index, IndexError, Summary};
use crate::labels;
use crate::pages::{
    coverage_note, entry_link, identity_href, layout_with_feed, status_badges, when,
};

/// One figure of the page: the list it counts.
pub struct Figure {
    /// Its key (`data-figure` on the page).
    pub key: &'static str,
    /// What it counts, in words.
    pub label: &'static str,
    /// The list's filter, as query parameters, without the agency.
    pub pairs: &'static [(&'static str, &'static str)],
}

const AUTHS: [(&str, &str); 2] = [("kind", "request"), ("kind", "emergency")];

/// The page's figures.
pub const FIGURES: [Figure; 14] = [
    Figure {
        key: "requests",
        label: "Requests (court orders)",
        pairs: &[("kind", "request")],
    },
    Figure {
        key: "emergencies",
        label: "Emergency requests",
        pairs: &[("kind", "emergency")],
    },
    Figure {
        key: "ratified",
        label: "Emergencies a court ratified",
        pairs: &[("kind", "emergency"), ("status", "ratified")],
    },
    Figure {
        key: "denied",
        label: "Emergencies a court refused to ratify",
        pairs: &[("kind", "emergency"), ("status", "denied")],
    },
    Figure {
        key: "unratified",
        label: "Emergencies not ratified in time (overdue)",
        pairs: &[("kind", "emergency"), ("status", "unratified")],
    },
    Figure {
        key: "awaiting_ratification",
        label: "Emergencies still awaiting ratification",
        pairs: &[("kind", "emergency"), ("status", "awaiting_ratification")],
    },
    Figure {
        key: "overdue",
        label: "Disclosures overdue",
        pairs: &[AUTHS[0], AUTHS[1], ("status", "overdue")],
    },
    Figure {
        key: "disclosed",
        label: "Requests disclosed",
        pairs: &[AUTHS[0], AUTHS[1], ("status", "disclosed")],
    },
    Figure {
        key: "released",
        label:
            "Requests with access released (by the provider, or by enough custodians' key shares)",
        pairs: &[AUTHS[0], AUTHS[1], ("status", "released")],
    },
    Figure {
        key: "withdrawn",
        label: "Requests withdrawn",
        pairs: &[AUTHS[0], AUTHS[1], ("status", "withdrawn")],
    },
    Figure {
        key: "outcomes",
        label: "Outcomes reported (latest report per request)",
        pairs: &[("kind", "outcome"), ("outcome", "latest")],
    },
    Figure {
        key: "data_obtained",
        label: "Outcomes: data obtained",
        pairs: &[
            ("kind", "outcome"),
            ("outcome", "latest"),
            ("data_obtained", "yes"),
        ],
    },
    Figure {
        key: "encryption_encountered",
        label: "Outcomes: encryption encountered",
        pairs: &[
            ("kind", "outcome"),
            ("outcome", "latest"),
            ("encryption", "encountered"),
        ],
    },
    Figure {
        key: "encryption_prevented_access",
        label: "Outcomes: encryption prevented access",
        pairs: &[
            ("kind", "outcome"),
            ("outcome", "latest"),
            ("encryption", "prevented"),
        ],
    },
];

impl Figure {
    /// The list this figure counts for `agency`.
    pub fn filter(&self, agency: &str) -> Filter {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        pairs.push(("agency".into(), agency.to_owned()));
        Filter::parse(&pairs).0
    }
}

/// Everything the page shows.
pub struct AgencyView {
    /// The signer's key name.
    pub name: String,
    /// Its public name from the registry, if any.
    pub display_name: Option<String>,
    /// Whether the registry has keys under this name (then `/keys/NAME` exists).
    pub registered: bool,
    /// Per [`FIGURES`]: the count and the list's URL.
    pub figures: Vec<(u64, String)>,
    /// Entries it signed, newest first (a few).
    pub recent: Vec<Summary>,
    /// Entries it signed, in all.
    pub signed: u64,
}

/// How many entries the page lists.
pub const RECENT: usize = 20;

/// Counts the figures for `name` with the index (statuses as of its
/// last tick, like the lists they link to).
pub fn figures(index: &Index, name: &str) -> Result<Vec<(u64, String)>, IndexError> {
    FIGURES
        .iter()
        .map(|f| {
            let filter = f.filter(name);
            let n = index.count(&filter, None)?.n;
            Ok((n, format!("/entries{}", filter.query(None))))
        })
        .collect()
}

fn figure(v: &AgencyView, key: &str) -> u64 {
    FIGURES
        .iter()
        .position(|f| f.key == key)
        .and_then(|i| v.figures.get(i))
        .map_or(0, |f| f.0)
}

/// The feed of every entry `name` signed.
pub fn feed_href(name: &str) -> String {
    format!(
        "/entries.atom{}",
        encode_query(&[("agency", name.to_owned())])
    )
}

/// The page.
pub fn page(v: &AgencyView, coverage: Coverage, now: DateTime<Utc>) -> Markup {
    let title = format!("Agency {}", v.name);
    let emergencies = figure(v, "emergencies");
    let ratified = figure(v, "ratified");
    let rate = (emergencies > 0).then(|| ratified as f64 * 100.0 / emergencies as f64);
    let list = format!("/entries{}", encode_query(&[("agency", v.name.clone())]));
    let feed = feed_href(&v.name);
    let body = html! {
        h1 { (title) }
        @if let Some(d) = &v.display_name { p.lede { (d) } }
        (coverage_note(coverage))
        p {
            a href=(list) { (v.signed) " entries signed by " (v.name) }
            " · " a.feed href=(feed) type="application/atom+xml" { "Atom feed of its entries" }
            @if v.registered { " · " a href=(identity_href(&v.name)) { "its keys" } }
        }
        section aria-labelledby="ratification-h" {
            h2 id="ratification-h" { "Emergencies and ratification" }
            p id="ratification-rate" {
                @match rate {
                    Some(r) => {
                        "A court ratified " strong { (ratified) } " of its " strong { (emergencies) } " emergency requests ("
                        (format!("{r:.0}%")) "); "
                        strong { (figure(v, "unratified")) } " were not ratified in time, "
                        (figure(v, "denied")) " were refused and "
                        (figure(v, "awaiting_ratification")) " are still within their deadline."
                    }
                    None => { "It has made no emergency requests." }
                }
            }
        }
        section aria-labelledby="figures-h" {
            h2 id="figures-h" { "In figures" }
            p { "Each number is the count of an entry list; follow it to see the entries." }
            table.totals id="agency-figures" {
                tbody {
                    @for (f, (n, href)) in FIGURES.iter().zip(&v.figures) {
                        tr data-figure=(f.key) {
                            th scope="row" { (f.label) }
                            td.num { a href=(href) { (n) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="recent-h" {
            h2 id="recent-h" { "Its newest entries" }
            @if v.recent.is_empty() {
                p { "None yet." }
            } @else {
                ol.recent {
                    @for s in &v.recent {
                        li {
                            (entry_link(s.index)) " "
                            (labels::entry_kind(s).unwrap_or("unreadable"))
                            @if let Some(c) = s.created { ", " (when(c)) }
                            @if let Some(j) = &s.jurisdiction { ", " (j) }
                            " " (status_badges(&s.statuses(now)))
                        }
                    }
                }
                @if v.signed > v.recent.len() as u64 { p { a href=(list) { "All its entries" } } }
            }
        }
    };
    layout_with_feed(&title, "/entries", Some(&feed), body)
}

/// The page of `name`, where links to an agency go.
pub fn href(name: &str) -> String {
    format!("/agencies/{}", crate::pages::path_segment(name))
}
