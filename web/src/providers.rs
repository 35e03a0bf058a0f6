//! One provider's page, `/providers/{name}`: the standards it publishes
//! (its newest `policy` entry, each line in words), every policy it
//! published (newest first, with what changed), and its refusals and
//! releases, each a count of the entry list it links to.

use daylight_schemas::RefusalReason;
use maud::{html, Markup};

use crate::filter::{encode_query, Filter};
use crate::index::{Coverage, Group, Index, IndexError, Summary};
use crate::labels;
use crate::pages::{
    coverage_note, entry_link, identity_href, layout, path_segment, policy_line, when,
};

/// The most policy entries the page reads (newest first).
pub const HISTORY_LIMIT: usize = 500;

/// The page of `name`, where links to a provider go.
pub fn href(name: &str) -> String {
    format!("/providers/{}", path_segment(name))
}

/// One published policy.
pub struct Published {
    /// Its entry.
    pub entry: Summary,
    /// Lines in it that the one before it did not have.
    pub added: Vec<String>,
    /// Lines of the one before it that it no longer has.
    pub removed: Vec<String>,
}

/// Everything the page shows.
pub struct ProviderView {
    /// The provider's key name.
    pub name: String,
    /// Its public name from the registry, if any.
    pub display_name: Option<String>,
    /// Whether the registry has keys under this name.
    pub registered: bool,
    /// Its policies, newest first (the first is in force).
    pub policies: Vec<Published>,
    /// Its refusals in all, and their list.
    pub refusals: (u64, String),
    /// Its refusals per reason, most first, each with its list.
    pub by_reason: Vec<(RefusalReason, u64, String)>,
    /// Its releases of access, and their list (not custodians' key shares,
    /// even one the provider holds under its own name).
    pub releases: (u64, String),
    /// Entries it signed, and their list.
    pub signed: (u64, String),
}

fn counted(index: &Index, pairs: &[(&str, String)]) -> Result<(u64, String), IndexError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let f = Filter::parse(&pairs).0;
    Ok((
        index.count(&f, None)?.n,
        format!("/entries{}", f.query(None)),
    ))
}

impl ProviderView {
    /// Reads the page's figures for `name` from the index.
    pub fn read(
        index: &Index,
        name: &str,
        display_name: Option<String>,
        registered: bool,
    ) -> Result<ProviderView, IndexError> {
        let n = || name.to_owned();
        let mine = crate::refusals::filter(&[("provider", n())]);
        let mut by_reason: Vec<(RefusalReason, u64, String)> = index
            .grouped(&mine, &[Group::Reason])?
            .into_iter()
            .filter_map(|(k, count)| {
                let r: RefusalReason = k.into_iter().next().flatten()?.parse().ok()?;
                let href =
                    crate::refusals::href(&[("provider", n()), ("reason", r.as_str().to_owned())]);
                Some((r, count, href))
            })
            .collect();
        by_reason.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let (history, _) = Filter::parse(&[
            ("kind".to_owned(), "policy".to_owned()),
            ("agency".to_owned(), n()),
        ]);
        let entries = index.matches(&history, 0, HISTORY_LIMIT)?;
        let mut policies: Vec<Published> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let before: &[String] = entries.get(i + 1).map_or(&[], |b| &b.policy);
            policies.push(Published {
                added: e
                    .policy
                    .iter()
                    .filter(|l| !before.contains(l))
                    .cloned()
                    .collect(),
                removed: before
                    .iter()
                    .filter(|l| !e.policy.contains(l))
                    .cloned()
                    .collect(),
                entry: e.clone(),
            });
        }
        Ok(ProviderView {
            refusals: counted(index, &[("kind", "refusal".into()), ("provider", n())])?,
            // A custodian's share under the provider's name is not a
            // release of access by the provider.
            releases: counted(
                index,
                &[
                    ("kind", "release".into()),
                    ("release", "provider".into()),
                    ("agency", n()),
                ],
            )?,
            signed: counted(index, &[("agency", n())])?,
            by_reason,
            policies,
            display_name,
            registered,
            name: n(),
        })
    }
}

/// The page.
pub fn page(v: &ProviderView, coverage: Coverage) -> Markup {
    let title = format!("Provider {}", v.name);
    let entries = format!("/entries{}", encode_query(&[("agency", v.name.clone())]));
    let body = html! {
        h1 { (title) }
        @if let Some(d) = &v.display_name { p.lede { (d) } }
        (coverage_note(coverage))
        p {
            a href=(entries) { (v.signed.0) " entries signed by " (v.name) }
            @if v.registered { " · " a href=(identity_href(&v.name)) { "its keys" } }
        }
        section aria-labelledby="policy-h" {
            h2 id="policy-h" { "Its standards now" }
            @match v.policies.first() {
                None => p id="current-policy" { "This provider has not published its standards in the log." },
                Some(p) => {
                    div id="current-policy" data-entry=(p.entry.index) {
                        p {
                            "Published in entry " (entry_link(p.entry.index))
                            @if let Some(c) = p.entry.created { " on " (when(c)) }
                            ". Its escrow gate refuses any request that breaks one of these lines, and logs a refusal."
                        }
                        ol.policy-lines {
                            @for l in &p.entry.policy { li { (policy_line(l)) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="history-h" {
            h2 id="history-h" { "Every standard it published" }
            @if v.policies.is_empty() {
                p { "None." }
            } @else {
                p { "Newest first; the first is in force." }
                ol.policy-history id="policy-history" reversed {
                    @for (i, p) in v.policies.iter().enumerate() {
                        li data-entry=(p.entry.index) {
                            (entry_link(p.entry.index))
                            @if let Some(c) = p.entry.created { ", " (when(c)) }
                            @if i == 0 { " " span.badge.k-current { "in force" } }
                            ": " (p.entry.policy.len()) @if p.entry.policy.len() == 1 { " line" } @else { " lines" }
                            @if i + 1 < v.policies.len() {
                                @if p.added.is_empty() && p.removed.is_empty() {
                                    " (unchanged)"
                                } @else {
                                    ul.changes {
                                        @for l in &p.added { li { "added " code { (l) } } }
                                        @for l in &p.removed { li { "removed " code { (l) } } }
                                    }
                                }
                            } @else {
                                " (its first)"
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="provider-refusals-h" {
            h2 id="provider-refusals-h" { "Its refusals and releases" }
            p { "Each number is the count of an entry list; follow it to see the entries." }
            table.totals id="provider-figures" {
                tbody {
                    tr data-figure="refusals" {
                        th scope="row" { "Requests refused" }
                        td.num { a href=(v.refusals.1) data-count="refusals" { (v.refusals.0) } }
                    }
                    @for (r, n, h) in &v.by_reason {
                        tr data-figure=(format!("reason-{}", r.as_str())) {
                            th scope="row" { "Refused: " (labels::refusal_reason(*r)) }
                            td.num { a href=(h) data-count=(r.as_str()) { (n) } }
                        }
                    }
                    tr data-figure="releases" {
                        th scope="row" { "Releases of access" }
                        td.num { a href=(v.releases.1) data-count="releases" { (v.releases.0) } }
                    }
                }
            }
        }
    };
    layout(&title, "/refusals", body)
}
