//! Providers' refusals, counted: on the overview (per jurisdiction of the
//! refused request, per agency that asked, per reason, per provider) and
//! on `/refusals` (per year and jurisdiction, each with its reasons; per
//! provider with its reasons).
//!
//! As on the going-dark page, every number is the total of an entry list:
//! a group of [`Index::grouped`] over the filter `kind=refusal`, and the
//! link is that filter with the group's values added (see
//! [`crate::index::Group`]). A group without a value (a refusal whose
//! entry the index does not know as a request) is shown without a link,
//! since no list filter selects "no jurisdiction".

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike as _, Utc};
use daylight_schemas::RefusalReason;
use maud::{html, Markup};

use crate::filter::Filter;
use crate::index::{Group, Index, IndexError};
use crate::labels;
use crate::pages::{coverage_note, layout};

/// The list of refusals with these filters added.
pub fn filter(extra: &[(&str, String)]) -> Filter {
    let mut pairs = vec![("kind".to_owned(), "refusal".to_owned())];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Filter::parse(&pairs).0
}

/// The URL of [`filter`]'s list.
pub fn href(extra: &[(&str, String)]) -> String {
    format!("/entries{}", filter(extra).query(None))
}

/// The filters selecting `year` (UTC), as the lists write them.
pub fn year_pairs(year: i32) -> [(&'static str, String); 2] {
    [
        ("from", format!("{year:04}-01-01")),
        ("to", format!("{year:04}-12-31")),
    ]
}

/// One count: what it is of, the number, and its list (`None`: no list
/// selects it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The group's value (`None`: none).
    pub value: Option<String>,
    /// How it reads.
    pub label: String,
    /// The count.
    pub n: u64,
    /// The list it counts.
    pub href: Option<String>,
}

/// Refusals counted by one value.
pub struct Breakdown {
    /// Its id on the page (`refusals-by-KEY`).
    pub key: &'static str,
    /// Its heading.
    pub label: &'static str,
    /// One cell per value, most refusals first.
    pub cells: Vec<Cell>,
}

/// The overview's refusal figures.
pub struct Overview {
    /// Refusals in the log, and their list.
    pub total: Cell,
    /// Refusals logged this year (UTC), and their list.
    pub this_year: Cell,
    /// Per jurisdiction, agency, reason and provider.
    pub breakdowns: Vec<Breakdown>,
}

fn reason_label(code: &str) -> String {
    code.parse::<RefusalReason>()
        .map(|r| labels::refusal_reason(r).to_owned())
        .unwrap_or_else(|_| labels::words(code))
}

/// Counts the overview's figures.
pub fn overview(index: &Index, now: DateTime<Utc>) -> Result<Overview, IndexError> {
    let all = filter(&[]);
    let total = index.count(&all, None)?.n;
    let year = now.year();
    let this = filter(&year_pairs(year));
    let this_year = index.count(&this, None)?.n;
    let by = |group: Group,
              param: &'static str,
              key: &'static str,
              label: &'static str,
              word: &dyn Fn(&str) -> String|
     -> Result<Breakdown, IndexError> {
        let mut cells: Vec<Cell> = index
            .grouped(&all, &[group])?
            .into_iter()
            .map(|(k, n)| {
                let value = k.into_iter().next().flatten();
                Cell {
                    label: value.as_deref().map_or_else(|| "unknown".to_owned(), word),
                    href: value.as_ref().map(|v| href(&[(param, v.clone())])),
                    value,
                    n,
                }
            })
            .collect();
        cells.sort_by(|a, b| b.n.cmp(&a.n).then(a.value.cmp(&b.value)));
        Ok(Breakdown { key, label, cells })
    };
    let same = |v: &str| v.to_owned();
    Ok(Overview {
        total: Cell {
            value: None,
            label: "all".into(),
            n: total,
            href: Some(href(&[])),
        },
        this_year: Cell {
            value: Some(year.to_string()),
            label: year.to_string(),
            n: this_year,
            href: Some(href(&year_pairs(year))),
        },
        breakdowns: vec![
            by(
                Group::Country,
                "jurisdiction",
                "jurisdiction",
                "Jurisdiction of the request",
                &same,
            )?,
            by(
                Group::RequestAgency,
                "request_agency",
                "agency",
                "Agency that asked",
                &same,
            )?,
            by(Group::Reason, "reason", "reason", "Why", &reason_label)?,
            by(
                Group::Provider,
                "provider",
                "provider",
                "Provider that refused",
                &same,
            )?,
        ],
    })
}

fn count(c: &Cell, attrs: &str) -> Markup {
    html! {
        @match &c.href {
            Some(h) => a href=(h) data-count=(attrs) { (c.n) },
            None => span data-count=(attrs) { (c.n) },
        }
    }
}

/// The overview's section.
pub fn home_section(o: &Overview) -> Markup {
    html! {
        section aria-labelledby="refusals-h" {
            h2 id="refusals-h" { "Refusals by providers" }
            p.headline id="refusals-headline" {
                "Providers logged " a href=[o.total.href.as_ref()] { strong { (o.total.n) } } " refusals of requests, "
                a href=[o.this_year.href.as_ref()] { strong { (o.this_year.n) } } " of them in " (o.this_year.label) ". "
                a href="/refusals" { "Refusals per year and jurisdiction, and why" }
            }
            @if o.total.n > 0 {
                div.breakdowns {
                    @for b in &o.breakdowns {
                        table.totals.refusals id=(format!("refusals-by-{}", b.key)) {
                            caption { (b.label) }
                            tbody {
                                @for c in &b.cells {
                                    tr data-value=(c.value.clone().unwrap_or_default()) {
                                        th scope="row" { (c.label) }
                                        td.num { (count(c, b.key)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One row of the year and jurisdiction table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The year (`None`: every year).
    pub year: Option<i32>,
    /// The country (year rows; `None` with `total`: every jurisdiction,
    /// `None` without: refusals of no known jurisdiction), or the provider
    /// (provider rows).
    pub name: Option<String>,
    /// Whether this row adds up the rows before it.
    pub total: bool,
    /// All refusals of the row.
    pub all: Cell,
    /// Per reason, in [`Table::reasons`] order.
    pub reasons: Vec<Cell>,
}

/// `/refusals`: the year and jurisdiction table, and the providers'.
pub struct Table {
    /// The reasons that occur, in [`RefusalReason::ALL`] order.
    pub reasons: Vec<RefusalReason>,
    /// Per year, newest first, a row per country and the year's total;
    /// last, the total over every year.
    pub rows: Vec<Row>,
    /// Per provider, with its reasons.
    pub providers: Vec<Row>,
}

/// A row's cells for refusals passing `extra` (`None`: no list selects them).
fn row_cells(
    counts: &BTreeMap<Option<RefusalReason>, u64>,
    reasons: &[RefusalReason],
    extra: Option<Vec<(&'static str, String)>>,
) -> (Cell, Vec<Cell>) {
    let cell = |n: u64, more: Option<(&'static str, String)>| {
        let href = extra.as_ref().map(|e| {
            let mut e = e.clone();
            e.extend(more.clone());
            href(&e)
        });
        Cell {
            value: more.map(|m| m.1),
            label: String::new(),
            n,
            href,
        }
    };
    let all = cell(counts.values().sum(), None);
    let per = reasons
        .iter()
        .map(|r| {
            cell(
                counts.get(&Some(*r)).copied().unwrap_or(0),
                Some(("reason", r.as_str().to_owned())),
            )
        })
        .collect();
    (all, per)
}

/// Counts the table.
pub fn table(index: &Index) -> Result<Table, IndexError> {
    type Key = (Option<i32>, Option<String>);
    let mut counts: BTreeMap<Key, BTreeMap<Option<RefusalReason>, u64>> = BTreeMap::new();
    let mut seen: BTreeSet<RefusalReason> = BTreeSet::new();
    let refusals = filter(&[]);
    for (k, n) in index.grouped(&refusals, &[Group::Year, Group::Country, Group::Reason])? {
        let year = k.first().cloned().flatten().and_then(|y| y.parse().ok());
        let country = k.get(1).cloned().flatten();
        let reason = k
            .get(2)
            .cloned()
            .flatten()
            .and_then(|r| r.parse::<RefusalReason>().ok());
        seen.extend(reason);
        *counts
            .entry((year, country))
            .or_default()
            .entry(reason)
            .or_insert(0) += n;
    }
    let reasons: Vec<RefusalReason> = seen.into_iter().collect();
    let years: BTreeSet<Option<i32>> = counts.keys().map(|k| k.0).collect();
    let sum = |keep: &dyn Fn(&Key) -> bool| {
        let mut out: BTreeMap<Option<RefusalReason>, u64> = BTreeMap::new();
        for (k, per) in &counts {
            if keep(k) {
                for (r, n) in per {
                    *out.entry(*r).or_insert(0) += n;
                }
            }
        }
        out
    };
    let mut rows = Vec::new();
    for &y in years.iter().rev() {
        let year_pairs = |y: Option<i32>| y.map(|y| year_pairs(y).to_vec());
        for ((_, c), per) in counts.range((y, None)..).take_while(|(k, _)| k.0 == y) {
            // A country's list: the year's filters and the country; a
            // refusal without a year or country has no list.
            let extra = year_pairs(y).zip(c.clone()).map(|(mut e, c)| {
                e.push(("jurisdiction", c));
                e
            });
            let (all, reasons_cells) = row_cells(per, &reasons, extra);
            rows.push(Row {
                year: y,
                name: c.clone(),
                total: false,
                all,
                reasons: reasons_cells,
            });
        }
        let (all, reasons_cells) = row_cells(&sum(&|k| k.0 == y), &reasons, year_pairs(y));
        rows.push(Row {
            year: y,
            name: None,
            total: true,
            all,
            reasons: reasons_cells,
        });
    }
    let (all, reasons_cells) = row_cells(&sum(&|_| true), &reasons, Some(Vec::new()));
    rows.push(Row {
        year: None,
        name: None,
        total: true,
        all,
        reasons: reasons_cells,
    });
    // Per provider, with its reasons.
    let mut per_provider: BTreeMap<String, BTreeMap<Option<RefusalReason>, u64>> = BTreeMap::new();
    for (k, n) in index.grouped(&refusals, &[Group::Provider, Group::Reason])? {
        let p = k.first().cloned().flatten().unwrap_or_default();
        let r = k.get(1).cloned().flatten().and_then(|r| r.parse().ok());
        *per_provider.entry(p).or_default().entry(r).or_insert(0) += n;
    }
    let providers = per_provider
        .into_iter()
        .map(|(p, per)| {
            let (all, reasons_cells) =
                row_cells(&per, &reasons, Some(vec![("provider", p.clone())]));
            Row {
                year: None,
                name: Some(p),
                total: false,
                all,
                reasons: reasons_cells,
            }
        })
        .collect();
    Ok(Table {
        reasons,
        rows,
        providers,
    })
}

fn year_text(y: Option<i32>) -> String {
    y.map_or_else(|| "all".to_owned(), |y| y.to_string())
}

/// The `/refusals` page.
pub fn page(t: &Table, coverage: crate::index::Coverage) -> Markup {
    let head = |first: &str, second: Option<&str>| {
        html! {
            thead {
                tr {
                    th scope="col" { (first) }
                    @if let Some(s) = second { th scope="col" { (s) } }
                    th scope="col" class="num" { "Refusals" }
                    @for r in &t.reasons {
                        th scope="col" class="num" title=(labels::refusal_reason_explained(*r)) { (labels::refusal_reason(*r)) }
                    }
                }
            }
        }
    };
    let cells = |r: &Row| {
        html! {
            td.num { (count(&r.all, "all")) }
            @for (c, reason) in r.reasons.iter().zip(&t.reasons) {
                td.num { (count(c, reason.as_str())) }
            }
        }
    };
    let body = html! {
        h1 { "Refusals by providers" }
        p.lede {
            "A provider whose published standards rule a request out (its jurisdiction, who issued it, the data, "
            "the offence, the number of targets or how long access lasts) logs a refusal, signed with its key, naming "
            "the request and a reason. The numbers below are counted from those entries; each links to the refusals it counts."
        }
        (coverage_note(coverage))
        section aria-labelledby="by-year-h" {
            h2 id="by-year-h" { "Per year and jurisdiction, and why" }
            p {
                "Year: the year the refusal was logged (UTC). Jurisdiction: that of the refused request (a country with its regions). "
                "Read a row across to see why that jurisdiction's requests were refused."
            }
            @if t.reasons.is_empty() {
                p { "No provider has logged a refusal yet." }
            } @else {
                div.table-wrap {
                    table.going-dark id="refusals-table" {
                        caption.visually-hidden { "Refusals per year and jurisdiction, by reason, newest year first" }
                        (head("Year", Some("Jurisdiction")))
                        tbody {
                            @for r in &t.rows {
                                tr class=(if r.total { "total" } else { "" })
                                   data-year=(year_text(r.year))
                                   data-jurisdiction=(if r.total { "all" } else { r.name.as_deref().unwrap_or("unknown") }) {
                                    th scope="row" { (r.year.map_or_else(|| "All years".to_owned(), |y| y.to_string())) }
                                    td { @if r.total { "all jurisdictions" } @else { (r.name.as_deref().unwrap_or("unknown")) } }
                                    (cells(r))
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !t.providers.is_empty() {
            section aria-labelledby="by-provider-h" {
                h2 id="by-provider-h" { "Per provider, and why" }
                div.table-wrap {
                    table.going-dark id="refusals-providers" {
                        caption.visually-hidden { "Refusals per provider, by reason" }
                        (head("Provider", None))
                        tbody {
                            @for r in &t.providers {
                                @let name = r.name.clone().unwrap_or_default();
                                tr data-provider=(name) {
                                    th scope="row" { a href=(crate::providers::href(&name)) { (name) } }
                                    (cells(r))
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="reasons-h" {
            h2 id="reasons-h" { "The reasons" }
            dl.definitions {
                @for r in RefusalReason::ALL {
                    div { dt { (labels::refusal_reason(*r)) " " small { code { (r.as_str()) } } } dd { (labels::refusal_reason_explained(*r)) } }
                }
            }
        }
    };
    layout("Refusals", "/refusals", body)
}
