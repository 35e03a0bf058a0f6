//! The pages, as maud templates.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use daylight_core::VerifierKey;
use daylight_ledger::custody;
use daylight_schemas::{
    Body, Commitment, EntryRef, KeyTag, Kind, LogKeyPeriod, Period, Registration, RegistryAction,
    RegistryBody, Role, SignedRecord, Timestamp,
};
use maud::{html, Markup, DOCTYPE};

use crate::filter::Filter;
use crate::history::{Identity, WitnessChange, WitnessSet};
use crate::index::{Coverage, Summary, Total};
use crate::labels;
use crate::status::Status;

/// What every page shows about the log.
pub struct LogView {
    /// Checkpoint origin.
    pub origin: String,
    /// The log's verifier key.
    pub log_key: String,
    /// Cosignatures needed to publish.
    pub quorum: usize,
    /// Entries stored (sequenced).
    pub size: u64,
    /// The newest published checkpoint.
    pub published: Option<PublishedView>,
    /// The witnesses the log asks now.
    pub witnesses: Vec<WitnessView>,
    /// The log's keys over time, oldest first (from its registry).
    pub log_keys: Vec<LogKeyPeriod>,
    /// The witness sets and quorums over time, oldest first.
    pub witness_sets: Vec<WitnessSet>,
    /// Registry entries the registry refused, with why.
    pub problems: Vec<(u64, String)>,
}

/// The newest published checkpoint.
pub struct PublishedView {
    /// Its size.
    pub size: u64,
    /// Root hash, base64 as in the checkpoint.
    pub root: String,
    /// The whole signed note.
    pub note: String,
    /// The newest witness timestamp on it.
    pub cosigned_at: Option<DateTime<Utc>>,
    /// When this server first saw it.
    pub first_seen: DateTime<Utc>,
}

/// One witness.
pub struct WitnessView {
    /// Its key name.
    pub name: String,
    /// Its verifier key.
    pub key: String,
    /// Where the log asks it.
    pub url: String,
    /// The size it last cosigned, as the log knows.
    pub known_size: u64,
    /// Its timestamp on the published checkpoint, if it cosigned that one.
    pub cosigned_at: Option<DateTime<Utc>>,
}

fn css_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The page frame.
pub fn layout(title: &str, current: &str, body: Markup) -> Markup {
    layout_with_feed(title, current, None, body)
}

/// The page frame, announcing the Atom feed at `feed` (if any) to
/// browsers and feed readers.
pub fn layout_with_feed(title: &str, current: &str, feed: Option<&str>, body: Markup) -> Markup {
    let nav = [
        ("/", "Overview"),
        ("/entries", "Entries"),
        ("/going-dark", "Going dark"),
        ("/refusals", "Refusals"),
        ("/keys", "Keys"),
        ("/witnesses", "Witnesses"),
        ("/findings", "Findings"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Daylight" }
                link rel="stylesheet" href=(format!("/static/style.css?v={}", css_version()));
                @if let Some(f) = feed {
                    link rel="alternate" type="application/atom+xml" title=(format!("{title} (Atom feed)")) href=(f);
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    a.brand href="/" { "Daylight" }
                    span.tagline { "public log of lawful-access requests" }
                    nav aria-label="Main" {
                        ul {
                            @for (href, label) in nav {
                                li {
                                    @if href == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" { (body) }
                footer.site {
                    p {
                        "Everything here is read from a signed, append-only log that independent witnesses cosign. "
                        "Raw data: " a href="/checkpoint" { "checkpoint" } ", " a href="/api/v1/log" { "log info" }
                        ", tiles under " code { "/tile/" } " (C2SP tlog-tiles)."
                    }
                }
            }
        }
    }
}

/// A time as a reader sees it.
pub fn when(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()) { (t.format("%Y-%m-%d %H:%M UTC").to_string()) } }
}

fn ts(t: &Timestamp) -> Markup {
    when(t.get())
}

/// "3 minutes ago" for a duration in seconds.
pub fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds();
    if s < 0 {
        return "in the future (check clocks)".into();
    }
    let (n, unit) = match s {
        0..=119 => (s, "second"),
        120..=7199 => (s / 60, "minute"),
        7200..=172_799 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

pub(crate) fn status_badges(statuses: &[Status]) -> Markup {
    html! {
        @for s in statuses {
            span class=(format!("badge st-{}", s.as_str())) { (s.label()) }
            " "
        }
    }
}

pub(crate) fn entry_link(i: u64) -> Markup {
    html! { a href=(format!("/entries/{i}")) { "#" (i) } }
}

/// The overview page's numbers.
pub struct HomeStats {
    /// (kind, count) for every kind.
    pub totals: Vec<(Kind, u64)>,
    /// Months shown, `YYYY-MM`.
    pub months: Vec<String>,
    /// Per kind, per month.
    pub per_month: Vec<(Kind, Vec<u64>)>,
    /// Per month: (emergencies, requests + emergencies).
    pub emergency_share: Vec<Option<(u64, u64)>>,
    /// Authorisations per signer, most first.
    pub per_agency: Vec<(String, u64)>,
    /// Authorisations per month of creation, by disclosure state:
    /// disclosed, disclosure overdue, still sealed.
    pub disclosure: [Vec<u64>; 3],
    /// Authorisations per month of creation: with a logged release, without.
    pub with_release: [Vec<u64>; 2],
    /// Authorisations whose disclosure is overdue.
    pub overdue: u64,
    /// Emergencies not ratified in time.
    pub unratified: u64,
    /// Authorisations, and those with a logged release.
    pub authorisations: u64,
    /// Authorisations released: by a provider's release, or by
    /// custodians' shares that put one of its keys together.
    pub released: u64,
    /// Providers' release entries (releases of access).
    pub releases: u64,
    /// Custodians' share release entries (threshold custody), counted
    /// apart: one share is no release of access.
    pub share_releases: u64,
    /// Outcome reports (the latest per authorisation).
    pub outcomes_reported: u64,
    /// Of those, the ones saying encryption prevented access.
    pub outcomes_prevented: u64,
}

fn checkpoint_block(log: &LogView, now: DateTime<Utc>) -> Markup {
    html! {
        @match &log.published {
            Some(p) => {
                p {
                    "Newest checkpoint: " strong { (p.size) } " entries. "
                    @if let Some(t) = p.cosigned_at {
                        "Cosigned " (ago(now, t)) " (" (when(t)) ")."
                    } @else {
                        "Carries no witness timestamp; this server first saw it " (ago(now, p.first_seen)) "."
                    }
                }
                @if log.size > p.size {
                    p { (log.size - p.size) " newer entries are sequenced and wait for witness cosignatures." }
                }
            }
            None => p { "No checkpoint has been published yet (the witnesses have not cosigned one)." }
        }
    }
}

/// The disclosure chart's series, from [`HomeStats::disclosure`].
fn disclosure_series(stats: &HomeStats) -> Vec<crate::charts::Series> {
    let [disclosed, overdue, sealed] = &stats.disclosure;
    let p = crate::charts::PALETTE;
    vec![
        series("Disclosed", p[2], disclosed),
        series("Disclosure overdue", p[1], overdue),
        series("Still sealed", p[8], sealed),
    ]
}

/// The release chart's series, from [`HomeStats::with_release`].
fn release_series(stats: &HomeStats) -> Vec<crate::charts::Series> {
    let [released, not] = &stats.with_release;
    let p = crate::charts::PALETTE;
    vec![
        series("With a release", p[0], released),
        series("No release logged", p[8], not),
    ]
}

fn series(label: &str, colour: &'static str, values: &[u64]) -> crate::charts::Series {
    crate::charts::Series {
        label: label.to_owned(),
        colour,
        values: values.to_vec(),
    }
}

/// The overview.
pub fn home(
    log: &LogView,
    stats: &HomeStats,
    refusals: &crate::refusals::Overview,
    coverage: Coverage,
    now: DateTime<Utc>,
) -> Markup {
    let series: Vec<crate::charts::Series> = stats
        .per_month
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.iter().any(|&x| x > 0))
        .map(|(i, (k, v))| crate::charts::Series {
            label: labels::kind(*k).to_owned(),
            colour: crate::charts::PALETTE[i % crate::charts::PALETTE.len()],
            values: v.clone(),
        })
        .collect();
    let agencies: Vec<(String, u64, String)> = stats
        .per_agency
        .iter()
        .take(12)
        .map(|(a, n)| {
            (
                a.clone(),
                *n,
                format!(
                    "/entries{}",
                    crate::filter::encode_query(&[
                        ("kind", "request".into()),
                        ("kind", "emergency".into()),
                        ("agency", a.clone())
                    ])
                ),
            )
        })
        .collect();
    let body = html! {
        h1 { "Lawful-access requests, in the open" }
        p.lede {
            "Every request by an authority to decrypt someone's data, or to obtain their escrowed keys, "
            "is written to this public log before any key is released. Browse the requests, filter them, "
            "and check for yourself that what you see is in the log."
        }
        (coverage_note(coverage))
        @let (reported, prevented) = crate::going_dark::headline_metrics();
        p.headline id="going-dark-headline" {
            "Going dark? Of "
            a href=(reported.href(None, None)) { strong { (stats.outcomes_reported) } }
            " outcomes reported in this log, "
            a href=(prevented.href(None, None)) { strong { (stats.outcomes_prevented) } }
            " say encryption prevented access. "
            a href="/going-dark" { "Per year and jurisdiction, beside the official figures" }
        }
        section aria-labelledby="state-h" {
            h2 id="state-h" { "The log now" }
            dl.facts {
                div { dt { "Entries" } dd { (log.size) } }
                div { dt { "Witnesses" } dd { (log.witnesses.len()) " (" (log.quorum) " must cosign)" } }
                div { dt { "Disclosures overdue" } dd { a href="/entries?status=overdue" { (stats.overdue) } } }
                div { dt { "Emergencies not ratified in time" } dd { a href="/entries?status=unratified" { (stats.unratified) } } }
                div { dt { "Authorisations with a release" } dd {
                    (stats.released) " of " (stats.authorisations) " ("
                    a href="/entries?kind=release&release=provider" { (stats.releases) " releases by providers" }
                    @if stats.share_releases > 0 {
                        ", " a href="/entries?kind=release&release=custodian" { (stats.share_releases) " key shares released by custodians" }
                    }
                    ")"
                } }
            }
            (checkpoint_block(log, now))
            @if !log.witnesses.is_empty() {
                ul.witness-list {
                    @for w in &log.witnesses {
                        li {
                            strong { (w.name) } ": "
                            @match w.cosigned_at {
                                Some(t) => { "cosigned the newest checkpoint " (ago(now, t)) }
                                None => { "has not cosigned the newest checkpoint (last known size " (w.known_size) ")" }
                            }
                        }
                    }
                }
                p { a href="/witnesses" { "Witness keys and details" } }
            }
        }
        (crate::refusals::home_section(refusals))
        section aria-labelledby="totals-h" {
            h2 id="totals-h" { "Entries by kind" }
            table.totals {
                thead { tr { th scope="col" { "Kind" } th scope="col" class="num" { "Entries" } } }
                tbody {
                    @for (k, n) in &stats.totals {
                        tr {
                            th scope="row" { a href=(format!("/entries?kind={}", k.as_str())) { (labels::kind(*k)) } }
                            td.num { (n) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="charts-h" {
            h2 id="charts-h" { "Over time" }
            @if stats.months.is_empty() {
                p { "No entries yet." }
            } @else {
                (crate::charts::stacked_bars("per-month", "Entries per month, by kind", &stats.months, &series))
                (crate::charts::percent_bars("emergency-share", "Share of requests made as emergencies (no court order first), per month", &stats.months, &stats.emergency_share))
                (crate::charts::stacked_bars("disclosures", "Disclosure of requests and emergencies, by month made", &stats.months, &disclosure_series(stats)))
                (crate::charts::stacked_bars("releases", "Releases of access against requests and emergencies, by month made", &stats.months, &release_series(stats)))
                @if !agencies.is_empty() {
                    (crate::charts::horizontal_bars("per-agency", "Requests and emergencies, by signing agency", &agencies))
                }
            }
        }
    };
    layout("Overview", "/", body)
}

fn select_kind(f: &Filter) -> Markup {
    html! {
        fieldset.kinds {
            legend { "Kind" }
            @for k in Kind::ALL {
                label.check {
                    input type="checkbox" name="kind" value=(k.as_str()) checked[f.kinds.contains(&k)];
                    (labels::kind(k))
                }
            }
        }
    }
}

/// Options for the filter form's drop-downs.
pub struct Choices {
    /// Signer names of authorisations.
    pub agencies: Vec<String>,
    /// Jurisdictions seen.
    pub jurisdictions: Vec<String>,
    /// Providers seen.
    pub providers: Vec<String>,
}

fn select(
    id: &str,
    name: &str,
    label: &str,
    options: &[String],
    current: &Option<String>,
) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" { "any" }
                @for o in options {
                    option value=(o) selected[current.as_deref() == Some(o.as_str())] { (o) }
                }
            }
        }
    }
}

/// The entries list: `total` matches, `shown` the filter's page of them.
pub fn entries(
    coverage: Coverage,
    filter: &Filter,
    problems: &[String],
    total: Total,
    shown: &[Summary],
    choices: &Choices,
    now: DateTime<Utc>,
) -> Markup {
    let pages = usize::try_from(total.n)
        .unwrap_or(usize::MAX)
        .div_ceil(filter.per_page)
        .max(1);
    // A list counted only up to its limit goes on while pages are full.
    let older = filter.page < pages || (total.at_least && shown.len() == filter.per_page);
    let q = filter.query(None);
    let body = html! {
        h1 { "Entries" }
        (coverage_note(coverage))
        @if !problems.is_empty() {
            div.problems role="alert" {
                p { "Some filters were not understood and are ignored:" }
                ul { @for p in problems { li { (p) } } }
            }
        }
        details.filters open[!filter.is_empty()] {
            summary { "Filter" }
            form method="get" action="/entries" {
                (select_kind(filter))
                div.grid {
                    (select("f-agency", "agency", "Agency (signer)", &choices.agencies, &filter.agency))
                    (select("f-jurisdiction", "jurisdiction", "Jurisdiction", &choices.jurisdictions, &filter.jurisdiction))
                    (select("f-provider", "provider", "Provider", &choices.providers, &filter.provider))
                    (select("f-request-agency", "request_agency", "Agency refused (refusals)", &choices.agencies, &filter.request_agency))
                    div.field {
                        label for="f-reason" { "Refusal reason" }
                        select id="f-reason" name="reason" {
                            option value="" { "any" }
                            @for r in daylight_schemas::RefusalReason::ALL {
                                option value=(r.as_str()) selected[filter.reason == Some(*r)] { (labels::refusal_reason(*r)) }
                            }
                        }
                    }
                    div.field {
                        label for="f-legal" { "Legal basis contains" }
                        input id="f-legal" type="text" name="legal_basis" value=(filter.legal_basis.clone().unwrap_or_default());
                    }
                    div.field {
                        label for="f-category" { "Data category" }
                        select id="f-category" name="category" {
                            option value="" { "any" }
                            @for c in daylight_schemas::DataCategory::ALL {
                                option value=(c.as_str()) selected[filter.categories.iter().any(|x| x == c.as_str())] { (labels::category(c.as_str())) }
                            }
                        }
                    }
                    div.field {
                        label for="f-from" { "Created from" }
                        input id="f-from" type="date" name="from" value=(filter.from.map(|d| d.to_string()).unwrap_or_default());
                    }
                    div.field {
                        label for="f-to" { "Created until" }
                        input id="f-to" type="date" name="to" value=(filter.to.map(|d| d.to_string()).unwrap_or_default());
                    }
                    div.field {
                        label for="f-emergency" { "Emergency" }
                        select id="f-emergency" name="emergency" {
                            option value="" { "any" }
                            option value="yes" selected[filter.emergency == Some(true)] { "emergencies only" }
                            option value="no" selected[filter.emergency == Some(false)] { "court orders only" }
                        }
                    }
                    div.field {
                        label for="f-outcome" { "Outcome reports" }
                        select id="f-outcome" name="outcome" {
                            option value="" { "any" }
                            option value="latest" selected[filter.latest == Some(true)] { "latest report per request" }
                            option value="replaced" selected[filter.latest == Some(false)] { "replaced by a later report" }
                        }
                    }
                    div.field {
                        label for="f-encryption" { "Encryption (outcome reports)" }
                        select id="f-encryption" name="encryption" {
                            option value="" { "any" }
                            @for e in crate::filter::Encryption::ALL {
                                option value=(e.as_str()) selected[filter.encryption == Some(e)] { (e.label()) }
                            }
                        }
                    }
                    div.field {
                        label for="f-data" { "Data obtained (outcome reports)" }
                        select id="f-data" name="data_obtained" {
                            option value="" { "any" }
                            option value="yes" selected[filter.data_obtained == Some(true)] { "yes" }
                            option value="no" selected[filter.data_obtained == Some(false)] { "no" }
                        }
                    }
                    div.field {
                        label for="f-release" { "Releases by" }
                        select id="f-release" name="release" {
                            option value="" { "any" }
                            option value="provider" selected[filter.release == Some(crate::filter::Releaser::Provider)] { "providers (access)" }
                            option value="custodian" selected[filter.release == Some(crate::filter::Releaser::Custodian)] { "custodians (one key share each)" }
                        }
                    }
                    div.field {
                        label for="f-status" { "Status" }
                        select id="f-status" name="status" {
                            option value="" { "any" }
                            @for s in Status::ALL {
                                option value=(s.as_str()) selected[filter.status == Some(s)] { (s.label()) }
                            }
                        }
                    }
                }
                button type="submit" { "Apply filters" }
                " "
                a href="/entries" { "Clear" }
            }
        }
        p.summary {
            @if total.at_least {
                strong id="match-count" { (total.n) " or more" } " matching entries"
            } @else {
                strong id="match-count" { (total.n) } " matching entries"
            }
            @if !filter.is_empty() { " (filtered)" }
            ". Download: "
            a href=(format!("/entries.csv{q}")) { "CSV" } ", "
            a href=(format!("/entries.json{q}")) { "JSON" } ". "
            a.feed id="feed-link" href=(format!("/entries.atom{q}")) type="application/atom+xml" { "Subscribe (Atom feed)" }
            " to this list."
        }
        @if shown.is_empty() {
            p { "No entries on this page." }
        } @else {
            div.table-wrap {
                table.entries {
                    caption.visually-hidden { "Entries, newest first" }
                    thead {
                        tr {
                            th scope="col" { "#" }
                            th scope="col" { "Kind" }
                            th scope="col" { "Created" }
                            th scope="col" { "Signed by" }
                            th scope="col" { "Where" }
                            th scope="col" { "Provider" }
                            th scope="col" { "Status" }
                        }
                    }
                    tbody {
                        @for s in shown {
                            tr {
                                td { (entry_link(s.index)) }
                                td { (labels::entry_kind(s).unwrap_or("unreadable"))
                                     @if !s.references.is_empty() { br; small { "about " @for (i, r) in s.references.iter().enumerate() { @if i > 0 { ", " } (entry_link(*r)) } } } }
                                td { @if let Some(c) = s.created { (when(c)) } }
                                td { (signer_link(s)) }
                                td { (s.jurisdiction.clone().unwrap_or_default()) }
                                td { (s.provider.clone().unwrap_or_default()) }
                                td { (status_badges(&s.statuses(now))) (reason_badge(s)) }
                            }
                        }
                    }
                }
            }
        }
        @if pages > 1 || older {
            nav.pagination aria-label="Pages" {
                @if filter.page > 1 {
                    a rel="prev" href=(format!("/entries{}", filter.query(Some(filter.page - 1)))) { "← Newer" }
                }
                @if total.at_least {
                    span { "Page " (filter.page) }
                } @else {
                    span { "Page " (filter.page) " of " (pages) }
                }
                @if older {
                    a rel="next" href=(format!("/entries{}", filter.query(Some(filter.page + 1)))) { "Older →" }
                }
            }
        }
    };
    layout_with_feed(
        "Entries",
        "/entries",
        Some(&format!("/entries.atom{q}")),
        body,
    )
}

/// The signer of `s`, linked to its agency page (entries agencies sign)
/// or its keys (entries courts, providers and the log sign).
fn signer_link(s: &Summary) -> Markup {
    if s.signer.is_empty() {
        return html! {};
    }
    let href = if crate::feed::signed_by_agency(s.kind) {
        crate::agency::href(&s.signer)
    } else if signed_by_provider(s.kind) && !s.is_share_release() {
        crate::providers::href(&s.signer)
    } else {
        identity_href(&s.signer)
    };
    html! { a href=(href) { (s.signer) } }
}

/// The kinds whose signer is a provider, whose page is `/providers/NAME`
/// (but for a release naming a share, which a custodian signs).
pub fn signed_by_provider(kind: Option<Kind>) -> bool {
    matches!(kind, Some(Kind::Release | Kind::Refusal | Kind::Policy))
}

/// A published policy line with what it means.
pub(crate) fn policy_line(text: &str) -> Markup {
    let meaning = match daylight_schemas::content_policy::ContentLine::parse(text) {
        Ok(l) => labels::content_line(&l),
        Err(e) => format!("This view cannot read the line: {e}."),
    };
    html! { code { (text) } br; span.meaning { (meaning) } }
}

/// A refusal's reason, as a badge.
fn reason_badge(s: &Summary) -> Markup {
    html! {
        @if let Some(r) = s.reason {
            span.badge.st-refused title=(labels::refusal_reason_explained(r)) { "refused: " (labels::refusal_reason(r)) }
        }
    }
}

fn commitment(c: &Commitment) -> Markup {
    html! { code.hash { (c.to_hex()) } }
}

fn eref(r: &EntryRef) -> Markup {
    html! { (entry_link(r.index.get())) " " small { "(leaf hash " code.hash { (r.leaf_hash.to_hex()) } ")" } }
}

fn period(p: &Option<Period>) -> Option<Markup> {
    p.map(|p| html! { (ts(&p.from)) " to " (ts(&p.until)) })
}

type Row = (&'static str, Markup);

/// The fields requests and emergencies share, as the entry page shows them.
struct Authorisation<'a> {
    jurisdiction: &'a str,
    legal_basis: &'a str,
    authority: &'a daylight_schemas::Authority,
    provider: &'a str,
    offence: &'a str,
    target_type: &'a str,
    target_count: u32,
    valid_from: &'a Timestamp,
    valid_until: &'a Timestamp,
    data_period: &'a Option<Period>,
    sealed_until: &'a Timestamp,
    case_reference: &'a str,
    targets: &'a [Commitment],
}

/// Who asked whom for what.
fn access_rows(rows: &mut Vec<Row>, a: &Authorisation<'_>, categories: &[&'static str]) {
    rows.push(("Jurisdiction", html! { (a.jurisdiction) }));
    rows.push(("Legal basis", html! { (a.legal_basis) }));
    rows.push((
        "Issued by",
        html! { (a.authority.name) " (" (labels::issuer(a.authority.issuer_type.as_str())) ")" },
    ));
    rows.push(("Provider asked", html! { (a.provider) }));
    rows.push((
        "Data asked for",
        html! { ul.inline { @for c in categories { li { (labels::category(c)) } } } },
    ));
}

/// The case: offence, targets, validity, sealing.
fn case_rows(rows: &mut Vec<Row>, a: &Authorisation<'_>, s: &Summary) {
    rows.push(("Most serious offence", html! { (labels::words(a.offence)) }));
    rows.push((
        "What the targets are",
        html! { (labels::words(a.target_type)) },
    ));
    rows.push(("Number of targets", html! { (a.target_count) }));
    rows.push((
        "Access authorised",
        html! { (ts(a.valid_from)) " to " (ts(a.valid_until)) },
    ));
    if let Some(p) = period(a.data_period) {
        rows.push(("Data covers the period", p));
    }
    rows.push(("Details sealed until", sealed(s, a.sealed_until)));
    rows.push(("Case reference", html! { (a.case_reference) }));
    rows.push(("Target commitments", targets(a.targets)));
}

fn body_rows(body: &Body, s: &Summary) -> Vec<Row> {
    // Requests and emergencies are different types with these fields in
    // common: one literal reads them from either.
    macro_rules! authorisation {
        ($b:expr) => {
            Authorisation {
                jurisdiction: $b.jurisdiction.as_str(),
                legal_basis: $b.legal_basis.as_str(),
                authority: &$b.issuing_authority,
                provider: $b.provider.as_str(),
                offence: $b.offence.as_str(),
                target_type: $b.target_type.as_str(),
                target_count: $b.target_count,
                valid_from: &$b.valid_from,
                valid_until: &$b.valid_until,
                data_period: &$b.data_period,
                sealed_until: &$b.sealed_until,
                case_reference: $b.case_reference.as_str(),
                targets: &$b.targets,
            }
        };
    }
    let mut rows: Vec<Row> = Vec::new();
    match body {
        Body::Request(b) => {
            let a = authorisation!(b);
            access_rows(&mut rows, &a, &s.categories);
            case_rows(&mut rows, &a, s);
            rows.push(("Order document commitment", commitment(&b.order_document)));
        }
        Body::Emergency(b) => {
            let a = authorisation!(b);
            access_rows(&mut rows, &a, &s.categories);
            rows.push((
                "Emergency ground",
                html! { (labels::words(b.ground.as_str())) },
            ));
            rows.push(("Court must ratify by", ts(&b.ratify_by)));
            case_rows(&mut rows, &a, s);
            if let Some(d) = &b.order_document {
                rows.push(("Authorisation document commitment", commitment(d)));
            }
        }
        Body::Ratification(b) => {
            rows.push(("Emergency decided on", eref(&b.emergency)));
            rows.push(("Decision", html! { (b.decision.as_str()) }));
            rows.push(("Case reference", html! { (b.case_reference) }));
            rows.push(("Court order commitment", commitment(&b.order_document)));
        }
        Body::Extension(b) => {
            rows.push(("Entry kept sealed", eref(&b.entry)));
            rows.push(("Now sealed until", ts(&b.sealed_until)));
            rows.push(("Reason", html! { (labels::words(b.reason.as_str())) }));
        }
        Body::Disclosure(b) => {
            rows.push(("Entry disclosed", eref(&b.entry)));
            rows.push((
                "Targets revealed",
                html! {
                    @if b.targets_opened.is_empty() { "none" }
                    ul { @for t in &b.targets_opened { li { "target " (t.position + 1) ": " code { (t.target.as_str()) } br; small { "salt " code.hash { (t.salt.to_hex()) } } } } }
                },
            ));
            rows.push((
                "Targets kept sealed",
                html! {
                    @if b.targets_withheld.is_empty() { "none" }
                    ul { @for t in &b.targets_withheld { li { "target " (t.position + 1) ": " (labels::words(t.reason.as_str())) } } }
                },
            ));
            if let Some(d) = &b.order_document_opened {
                rows.push((
                    "Order document revealed",
                    html! { "SHA-256 " code.hash { (d.sha256.to_hex()) } br; small { "salt " code.hash { (d.salt.to_hex()) } } },
                ));
            }
            if let Some(r) = &b.order_document_withheld {
                rows.push((
                    "Order document kept sealed",
                    html! { (labels::words(r.as_str())) },
                ));
            }
        }
        Body::Release(b) => match &b.share {
            Some(share) => {
                rows.push(("Share released for", eref(&b.entry)));
                rows.push(("Share", html! { (labels::share(share)) }));
                rows.push((
                    "Escrowed key (its tag for this request)",
                    html! { code.hash { (share.key.to_hex()) } },
                ));
                rows.push(("Released at", ts(&b.released_at)));
            }
            None => {
                rows.push(("Access released for", eref(&b.entry)));
                rows.push(("Targets released", html! { (b.targets_released) }));
                rows.push(("Released at", ts(&b.released_at)));
            }
        },
        Body::Refusal(b) => {
            rows.push(("Access refused for", eref(&b.entry)));
            if let Some(j) = &s.jurisdiction {
                rows.push(("Jurisdiction of the request", html! { (j) }));
            }
            if let Some(a) = &s.request_agency {
                rows.push((
                    "Agency that asked",
                    html! { a href=(crate::agency::href(a)) { (a) } },
                ));
            }
            rows.push((
                "Reason",
                html! {
                    (labels::refusal_reason(b.reason)) " " small { "(" code { (b.reason.as_str()) } ")" }
                    br; (labels::refusal_reason_explained(b.reason))
                },
            ));
            rows.push(("Refused at", ts(&b.refused_at)));
        }
        Body::Policy(b) => {
            rows.push((
                "Standards",
                html! { ol.policy-lines { @for l in &b.lines { li { (policy_line(l.as_str())) } } } },
            ));
            rows.push((
                "All its standards",
                html! { a href=(crate::providers::href(&s.signer)) { "The provider's page: its standards now and over time" } },
            ));
        }
        Body::Withdrawal(b) => {
            rows.push(("Entry withdrawn", eref(&b.entry)));
            rows.push(("Reason", html! { (labels::words(b.reason.as_str())) }));
        }
        Body::Outcome(b) => {
            rows.push(("Reports on", eref(&b.entry)));
            if let Some(a) = &b.amends {
                rows.push(("Replaces the earlier report", eref(a)));
            }
            let yn = |x: bool| if x { "yes" } else { "no" };
            rows.push(("Data obtained", html! { (yn(b.data_obtained)) }));
            rows.push((
                "Encryption encountered",
                html! { (yn(b.encryption_encountered)) },
            ));
            rows.push((
                "Encryption prevented access",
                html! { (yn(b.encryption_prevented_access)) },
            ));
            rows.push((
                "Communications intercepted",
                html! { (b.communications_intercepted) },
            ));
            rows.push((
                "Of those, incriminating",
                html! { (b.incriminating_communications) },
            ));
            rows.push(("Persons intercepted", html! { (b.persons_intercepted) }));
            rows.push(("Arrests", html! { (b.arrests) }));
            rows.push(("Convictions", html! { (b.convictions) }));
        }
        Body::Registry(b) => registry_rows(&mut rows, b),
    }
    rows
}

/// A key's short form: its name and key ID.
fn key_short(k: &VerifierKey) -> String {
    format!("{}+{}", k.name(), k.id())
}

/// `name` as one URL path segment.
pub(crate) fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page of the identity whose keys carry `name`.
pub(crate) fn identity_href(name: &str) -> String {
    format!("/keys/{}", path_segment(name))
}

/// A key as a link to its identity's page, with its full text to copy.
fn key_link(k: &VerifierKey) -> Markup {
    html! {
        a href=(identity_href(k.name().as_str())) { (key_short(k)) }
        br; code.key { (k.to_string()) }
    }
}

/// One sentence saying what a registry entry did, and what it means for
/// the entries around it.
fn registry_sentence(b: &RegistryBody) -> Markup {
    let key = b.key.as_ref().map(|k| k.key());
    let old = b.replaces.as_ref().map(|k| k.key());
    let name = |k: Option<&VerifierKey>| k.map(|k| k.name().to_string()).unwrap_or_default();
    let role = labels::role(b.role);
    match (b.action, b.role) {
        (RegistryAction::Quorum, _) => html! {
            "From this entry on, a checkpoint is published only once "
            strong { (b.quorum.unwrap_or_default()) } " witnesses have cosigned it."
        },
        (RegistryAction::Add, Role::Witness) => html! {
            "The log added the witness " strong { (name(key)) } ": from this entry on it is asked to cosign checkpoints, and its cosignatures count towards the quorum."
        },
        (RegistryAction::Revoke, Role::Witness) => html! {
            "The log removed the witness " strong { (name(key)) } ": from this entry on its cosignatures no longer count."
        },
        (RegistryAction::Rotate, Role::Witness) => html! {
            "The witness " strong { (name(key)) } " took the place of " strong { (name(old)) } " from this entry on."
        },
        (RegistryAction::Rotate, Role::Log) => html! {
            "The log changed its own key. The old key signed this entry, vouching for the new one; "
            @match &b.until {
                Some(u) => { "checkpoints carry both keys' signatures until " (ts(u)) ", then only the new key's." }
                None => { "from this entry on, checkpoints carry the new key's signature." }
            }
        },
        (RegistryAction::Add, _) => html! {
            "The log registered a key for the " (role) " " strong { (name(key)) } ": records it signs after this entry are accepted."
        },
        (RegistryAction::Revoke, _) => html! {
            "The log revoked a key of the " (role) " " strong { (name(key)) } ": records it signs after this entry are refused; those logged before stay valid."
        },
        (RegistryAction::Rotate, _) => html! {
            "The log replaced a key of the " (role) " " strong { (name(key)) } " by a new one: records signed by the old key before this entry stay valid; after it, only the new key is accepted."
        },
    }
}

/// A registry entry's fields, each in words.
fn registry_rows(rows: &mut Vec<Row>, b: &RegistryBody) {
    rows.push(("What it did", registry_sentence(b)));
    rows.push((
        "Action",
        html! { (labels::action(b.action)) " " small { "(" code { (b.action.as_str()) } ")" } },
    ));
    if b.action != RegistryAction::Quorum {
        rows.push(("Role", html! { (labels::role(b.role)) }));
    }
    let new_label = if b.action == RegistryAction::Rotate {
        "New key"
    } else {
        "Key"
    };
    if let Some(k) = &b.key {
        rows.push((new_label, key_link(k.key())));
    }
    if let Some(k) = &b.replaces {
        rows.push(("Replaced key", key_link(k.key())));
    }
    if let Some(u) = &b.until {
        rows.push(("Old key signs checkpoints until", ts(u)));
    }
    if let Some(u) = &b.url {
        rows.push(("Witness URL", html! { code { (u) } }));
    }
    if let Some(q) = b.quorum {
        rows.push(("Witnesses that must cosign", html! { (q) }));
    }
    if let Some(n) = &b.display_name {
        rows.push(("Public name", html! { (n) }));
    }
}

fn targets(list: &[Commitment]) -> Markup {
    html! {
        ol.commitments { @for c in list { li { (commitment(c)) } } }
        p.note { "Each target (an account, phone number, device) is written here only as a commitment: a hash with a secret salt. A later disclosure can reveal the target and the salt, and anyone can then check they match." }
    }
}

fn sealed(s: &Summary, own: &Timestamp) -> Markup {
    let eff = s.sealed_in_force;
    html! {
        (ts(own))
        @if let Some(e) = eff { @if e > own.get() { br; "extended to " (when(e)) } }
    }
}

/// The steps of entry `s`'s timeline, in log order: the earlier entries it
/// refers to, itself, and the later entries that refer to it.
pub fn timeline(s: &Summary, referrers: &[u64]) -> Vec<(u64, &'static str)> {
    let mut steps: Vec<(u64, &'static str)> = s
        .references
        .iter()
        .map(|&r| (r, "earlier entry this one refers to"))
        .collect();
    steps.push((s.index, "this entry"));
    for &r in referrers {
        steps.push((r, "later entry referring to this one"));
    }
    steps.sort_unstable();
    steps.dedup_by_key(|t| t.0);
    steps
}

/// The keys each step of a timeline puts together under threshold
/// custody, by step: at the custodian's share release that completes a
/// key's threshold for the request it names (decided by the ledger's one
/// function, [`custody::assembled`]), that key.
fn keys_put_together(
    timeline: &[(u64, &'static str, Option<Summary>)],
) -> HashMap<u64, Vec<KeyTag>> {
    let mut receipts: Vec<Summary> = Vec::new();
    let mut done: BTreeSet<(Option<u64>, KeyTag)> = BTreeSet::new();
    let mut out: HashMap<u64, Vec<KeyTag>> = HashMap::new();
    // The timeline is in log order: each key is put together at one step.
    for (t, _, e) in timeline {
        let Some(e) = e.as_ref().filter(|e| e.is_share_release()) else {
            continue;
        };
        receipts.push(e.clone());
        let same: Vec<Summary> = receipts
            .iter()
            .filter(|r| r.about == e.about)
            .cloned()
            .collect();
        for key in custody::assembled(&custody::receipts(&same)) {
            if done.insert((e.about, key)) {
                out.entry(*t).or_default().push(key);
            }
        }
    }
    out
}

/// The first 16 hex digits of a key's tag: enough to tell keys
/// apart on a page (the entry's own page has all 64).
fn short_key(k: &KeyTag) -> String {
    let mut hex = k.to_hex();
    hex.truncate(16);
    hex.push('…');
    hex
}

/// A note while the web index has not read the whole log yet (after a
/// first start on a long log).
pub(crate) fn coverage_note(c: Coverage) -> Markup {
    html! {
        @if !c.complete() {
            p.note role="status" {
                "This page is still reading the log: lists, counts and charts cover the first "
                (c.indexed) " of " (c.size) " entries for now."
            }
        }
    }
}

/// One entry; `timeline` from [`timeline`], with the summaries of its steps.
pub fn entry(
    log: &LogView,
    s: &Summary,
    record: Option<&SignedRecord>,
    timeline: &[(u64, &'static str, Option<Summary>)],
    now: DateTime<Utc>,
) -> Markup {
    let i = s.index;
    let statuses = s.statuses(now);
    let witness_keys: Vec<&str> = log.witnesses.iter().map(|w| w.key.as_str()).collect();
    let title = format!(
        "Entry {i}: {}",
        labels::entry_kind(s).unwrap_or("unreadable")
    );
    let together = keys_put_together(timeline);
    let body = html! {
        h1 { (title) }
        @if let Some(k) = labels::entry_explained(s) { p.lede { (k) } }
        @if !statuses.is_empty() { p { "Status: " (status_badges(&statuses)) } }
        section aria-labelledby="fields-h" {
            h2 id="fields-h" { "What the entry says" }
            dl.fields {
                div { dt { "Position in the log" } dd { (i) } }
                @if let Some(r) = record {
                    div { dt { "Created" } dd { (when(r.created())) } }
                    div { dt { "Signed by" } dd { (signer_link(s)) " " small { "(key ID " (r.signer().key_id) ")" } } }
                    @for (label, value) in body_rows(r.body(), s) {
                        div { dt { (label) } dd { (value) } }
                    }
                } @else {
                    div { dt { "Content" } dd { "This entry's bytes are not a readable record." } }
                }
                div { dt { "Leaf hash" } dd { code.hash id="leaf-hash" { (s.leaf_hash_hex()) } } }
            }
            p {
                "Raw: " a href=(format!("/api/v1/entries/{i}")) { "record as JSON" }
                " · " a href=(format!("/api/v1/entries/{i}/proof")) { "inclusion proof (C2SP tlog-proof)" }
            }
        }
        section aria-labelledby="timeline-h" {
            h2 id="timeline-h" { "Timeline" }
            ol.timeline {
                @for (t, why, e) in timeline {
                    li class=(if *t == i { "current" } else { "" }) {
                        @if *t == i { strong { "#" (t) } } @else { (entry_link(*t)) }
                        " "
                        @if let (Some(e), Some(share)) = (e, e.as_ref().and_then(|e| e.share)) {
                            (labels::SHARE_RELEASE) ": custodian " (signer_link(e)) " released "
                            (labels::share(&share)) " (key " code.hash { (short_key(&share.key)) } ")"
                            @if let Some(r) = e.released_at { ", at " (when(r)) }
                            @for key in together.get(t).into_iter().flatten() {
                                br;
                                strong.key-together {
                                    "With this share, " (share.threshold) " custodians have released shares of key "
                                    code.hash { (short_key(key)) } " for this request: the key could be put together."
                                }
                            }
                        } @else if let Some(e) = e {
                            (e.kind.map(labels::kind).unwrap_or("unreadable"))
                            @if let Some(c) = e.created { ", " (when(c)) }
                            @if let Some(d) = e.decision { " (" (d.as_str()) ")" }
                            @if *t != i && !e.signer.is_empty() { ", by " (signer_link(e)) }
                            @if let Some(r) = e.reason {
                                ": " strong.refusal-reason { (labels::refusal_reason(r)) } " (" (labels::refusal_reason_explained(r)) ")"
                            }
                        }
                        " " small { "(" (why) ")" }
                    }
                }
            }
        }
        section id="verify" aria-labelledby="verify-h"
            data-index=(i) data-leaf-hash=(s.leaf_hash_hex()) data-quorum=(log.quorum) {
            h2 id="verify-h" { "Verify in your browser" }
            p {
                "Your browser can check this entry itself, without trusting this server: it downloads the log's newest "
                "checkpoint, checks the log's signature and the witnesses' cosignatures on it with the keys below, "
                "downloads the tiles of the Merkle tree, and recomputes the tree's root from this entry's bytes."
            }
            noscript { p.note { "This check needs JavaScript. Without it, download the " a href=(format!("/api/v1/entries/{i}/proof")) { "proof" } " and check it with any RFC 6962 verifier, or with " code { "daylight gate verify" } "." } }
            div.field {
                label for="log-key" { "Log key" }
                input id="log-key" type="text" spellcheck="false" autocomplete="off" value=(log.log_key);
            }
            div.field {
                label for="witness-keys" { "Witness keys, one per line" }
                textarea id="witness-keys" rows=(witness_keys.len().max(1)) spellcheck="false" { (witness_keys.join("\n")) }
            }
            div.field {
                label for="quorum" { "Cosignatures required" }
                input id="quorum" type="number" min="0" value=(log.quorum);
            }
            div.field {
                label for="read-from" { "Read the log from" }
                input id="read-from" type="url" spellcheck="false" autocomplete="off"
                    placeholder="this server";
            }
            p.note {
                "Leave it empty to read from this server, or give the address of a copy published elsewhere "
                "(the log's bucket or static site): the check then needs nothing from this server at all."
            }
            fieldset.mirror {
                legend { "Read entries and tiles from a mirror" }
                div.field {
                    label for="mirror-prefix" { "Mirror prefix" }
                    input id="mirror-prefix" type="url" spellcheck="false" autocomplete="off"
                        placeholder="https://mirror.example/<sha256 of the log's origin, hex>";
                }
                div.field {
                    label for="mirror-key" { "Mirror key (cosignature/v1)" }
                    input id="mirror-key" type="text" spellcheck="false" autocomplete="off";
                }
                p.note {
                    "Optional. With a mirror's prefix (a C2SP tlog-mirror, which serves this log under the hex SHA-256 of "
                    "its origin), the checkpoint is still read and checked as above, but this entry and the tree's tiles "
                    "are read from the mirror: the check then shows the entry is readable where the log operator is not in "
                    "control. With the mirror's key, the checkpoint must also carry the mirror's cosignature, its promise "
                    "that it holds these entries."
                }
            }
            p.note {
                "These keys are filled in by this server. A dishonest server could give you its own keys, so compare them "
                "with keys you got elsewhere: the log operator's and the witnesses' own websites, a newspaper, a colleague's copy "
                "of this page, or a provider's policy file (" code { "daylight gate policy" } "). Paste those keys here and check again: "
                "the result then rests on them, not on this server."
            }
            button id="verify-button" type="button" hidden { "Verify entry " (i) }
            div id="verify-result" role="status" aria-live="polite" {}
        }
        script type="module" src=(format!("/static/verify.js?v={}", css_version())) {}
    };
    layout(&title, "/entries", body)
}

/// The witnesses page.
pub fn witnesses(log: &LogView, now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Witnesses" }
        p.lede {
            "Witnesses are independent organisations that keep the log honest: each checks that every new checkpoint "
            "extends the one before it, and only then cosigns it. A checkpoint is published only after "
            strong { (log.quorum) } " of them have cosigned it, so the log cannot show different histories to different readers."
        }
        (checkpoint_block(log, now))
        h2 { "The log's own key" }
        p { code.key { (log.log_key) } }
        @if log.log_keys.len() > 1 {
            p { "The log has changed its key; its keys over time are listed on the " a href="/keys#log-keys" { "keys page" } "." }
        }
        h2 { "The witnesses now" }
        @if log.witnesses.is_empty() {
            p { "This log has no witnesses configured: its checkpoints are signed by the log alone." }
        } @else {
            div.table-wrap {
                table.witnesses {
                    thead { tr { th scope="col" { "Witness" } th scope="col" { "Key" } th scope="col" class="num" { "Newest size cosigned" } th scope="col" { "On the newest checkpoint" } } }
                    tbody {
                        @for w in &log.witnesses {
                            tr {
                                th scope="row" { (w.name) br; small { (w.url) } }
                                td { code.key { (w.key) } }
                                td.num { (w.known_size) }
                                td { @match w.cosigned_at { Some(t) => { "yes, " (when(t)) }, None => "no" } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="witness-sets-h" {
            h2 id="witness-sets-h" { "Witness sets over time" }
            p {
                "Every change to the witnesses or to how many must cosign is itself an entry in the log, "
                "so anyone can tell which witnesses a checkpoint needed. Each row is the set in force from that entry on."
            }
            (problems_note(&log.problems))
            (witness_sets_table(&log.witness_sets))
        }
        @if let Some(p) = &log.published {
            h2 { "The newest checkpoint, as served" }
            pre.note-text { (p.note) }
        }
    };
    layout("Witnesses", "/witnesses", body)
}

/// A note listing registry entries the log's registry refused: the log
/// writes only entries it signed, so each one is an integrity problem.
fn problems_note(problems: &[(u64, String)]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.problems role="alert" {
                p { "Some of the log's registry entries break its own rules and are left out of the history below (an auditor reports these as integrity failures):" }
                ul { @for (i, why) in problems { li { (entry_link(*i)) ": " (why) } } }
            }
        }
    }
}

/// An entry link, or `empty` when there is no entry.
fn maybe_entry(i: Option<u64>, empty: &str) -> Markup {
    match i {
        Some(i) => entry_link(i),
        None => html! { (empty) },
    }
}

/// What became of a registered key: in use, revoked, or replaced.
fn key_fate(r: &Registration) -> Markup {
    match (&r.revoked_at, &r.replaced_by) {
        (None, _) => html! { span.badge.k-current { "in use" } },
        (Some(_), Some(new)) => html! {
            span.badge.k-ended { "replaced" } " by "
            a href=(identity_href(new.name().as_str())) { (key_short(new)) }
        },
        (Some(_), None) => html! { span.badge.k-revoked { "revoked" } },
    }
}

/// One identity's keys over time, oldest first.
pub fn key_history_table(who: &Identity) -> Markup {
    html! {
        div.table-wrap {
            table.history.key-history data-identity=(who.name) {
                caption.visually-hidden { "Keys of " (who.name) ", oldest first" }
                thead {
                    tr {
                        th scope="col" { "Key" }
                        th scope="col" { "Role" }
                        th scope="col" { "Added by entry" }
                        th scope="col" { "Ended by entry" }
                        th scope="col" { "Now" }
                    }
                }
                tbody {
                    @for r in &who.keys {
                        tr data-key=(r.key.to_string()) {
                            td data-label="Key" {
                                strong { "key ID " (r.key.id()) }
                                br; code.key { (r.key.to_string()) }
                            }
                            td data-label="Role" { (labels::role(r.role)) }
                            td data-label="Added by entry" {
                                (entry_link(r.added_at.get()))
                                @if let Some(old) = &r.replaces { br; small { "replacing key ID " (old.id()) } }
                            }
                            td data-label="Ended by entry" { (maybe_entry(r.revoked_at.map(|i| i.get()), "none")) }
                            td data-label="Now" { (key_fate(r)) }
                        }
                    }
                }
            }
        }
    }
}

/// The log's keys over time, oldest first.
pub fn log_keys_table(keys: &[LogKeyPeriod], now: DateTime<Utc>) -> Markup {
    html! {
        div.table-wrap {
            table.history.log-keys {
                caption.visually-hidden { "The log's keys, oldest first" }
                thead {
                    tr {
                        th scope="col" { "Key" }
                        th scope="col" { "In use from" }
                        th scope="col" { "Replaced by entry" }
                        th scope="col" { "Still signs checkpoints until" }
                        th scope="col" { "Now" }
                    }
                }
                tbody {
                    @for k in keys {
                        tr data-key=(k.key.to_string()) {
                            td data-label="Key" { strong { "key ID " (k.key.id()) } br; code.key { (k.key.to_string()) } }
                            td data-label="In use from" { (maybe_entry(k.from.map(|i| i.get()), "the start")) }
                            td data-label="Replaced by entry" { (maybe_entry(k.replaced_at.map(|i| i.get()), "not replaced")) }
                            td data-label="Still signs checkpoints until" {
                                @match k.until { Some(u) => (when(u)), None => "" }
                            }
                            td data-label="Now" {
                                @if k.replaced_at.is_none() {
                                    span.badge.k-current { "current" }
                                } @else if k.signs_at(now) {
                                    span.badge.k-ended { "in transition" }
                                } @else {
                                    span.badge.k-ended { "retired" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn witness_change(c: &WitnessChange) -> Markup {
    match c {
        WitnessChange::Added(k) => html! { "added " strong { (key_short(k)) } },
        WitnessChange::Replaced { new, old } => {
            html! { strong { (key_short(new)) } " replaced " (key_short(old)) }
        }
        WitnessChange::Removed(k) => html! { "removed " strong { (key_short(k)) } },
        WitnessChange::Quorum(q) => html! { "quorum set to " strong { (q) } },
    }
}

/// The witness sets over time, oldest first.
pub fn witness_sets_table(sets: &[WitnessSet]) -> Markup {
    html! {
        div.table-wrap {
            table.history.witness-sets {
                caption.visually-hidden { "Witness sets, oldest first" }
                thead {
                    tr {
                        th scope="col" { "From entry" }
                        th scope="col" { "Change" }
                        th scope="col" { "Witnesses" }
                        th scope="col" { "Must cosign" }
                    }
                }
                tbody {
                    @for w in sets {
                        tr data-from=(w.from.map_or("start".to_owned(), |i| i.to_string())) {
                            td data-label="From entry" { (maybe_entry(w.from, "the start")) }
                            td data-label="Change" {
                                @match &w.change {
                                    Some(c) => (witness_change(c)),
                                    None => "as the log was set up",
                                }
                            }
                            td data-label="Witnesses" {
                                @if w.witnesses.is_empty() {
                                    "none"
                                } @else {
                                    ul.inline {
                                        @for m in &w.witnesses {
                                            li { (key_short(&m.key)) " " small { (m.url) } }
                                        }
                                    }
                                }
                            }
                            td data-label="Must cosign" {
                                (w.quorum) " of " (w.witnesses.len())
                                // No checkpoint can be published while this holds.
                                @if w.quorum > w.witnesses.len() { br; small { "(cannot be met)" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The keys page: every agency, court and provider with its keys over
/// time, and the log's own keys.
pub fn keys(log: &LogView, identities: &[Identity], now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Keys" }
        p.lede {
            "Only registered keys may sign entries. Every change of key (a new agency, court or provider, a revoked key, "
            "a key replaced by a new one, a change of the log's own key) is itself an entry in the log, signed by the log. "
            "Entries signed by a key before it was revoked or replaced stay valid; the log refuses any signed by it afterwards."
        }
        (problems_note(&log.problems))
        section aria-labelledby="identities-h" {
            h2 id="identities-h" { "Agencies, courts, providers and custodians" }
            @if identities.is_empty() {
                p { "No agency, court, provider or custodian is registered yet." }
            }
            @for who in identities {
                section.identity id=(format!("id-{}", path_segment(&who.name))) {
                    h3 {
                        a href=(identity_href(&who.name)) { (who.name) }
                        @if let Some(d) = &who.display_name { " " small { "(" (d) ")" } }
                    }
                    @if who.roles.contains(&Role::Agency) {
                        p { a.agency-page href=(crate::agency::href(&who.name)) { "Agency page: its requests, ratifications, disclosures and outcomes" } }
                    }
                    @if who.roles.contains(&Role::Provider) {
                        p { a.provider-page href=(crate::providers::href(&who.name)) { "Provider page: its published standards, refusals and releases" } }
                    }
                    p {
                        "Registered as "
                        @for (i, r) in who.roles.iter().enumerate() { @if i > 0 { ", " } (labels::role(*r)) }
                        "; " (who.keys.len()) @if who.keys.len() == 1 { " key" } @else { " keys" } " so far"
                        @if !who.active() { ", none in use now" }
                        "."
                    }
                    (key_history_table(who))
                }
            }
        }
        section id="log-keys" aria-labelledby="log-keys-h" {
            h2 id="log-keys-h" { "The log's own keys" }
            p {
                "The log signs its checkpoints and registry entries with its own key. When it changes key, the old key signs the "
                "entry naming the new one, so a reader who trusts the first key can follow the chain. During a transition, "
                "checkpoints carry both keys' signatures."
            }
            (log_keys_table(&log.log_keys, now))
        }
        p { "The witnesses and how many must cosign, over time, are on the " a href="/witnesses#witness-sets-h" { "witnesses page" } "." }
    };
    layout("Keys", "/keys", body)
}

/// One identity's page: its keys over time and a link to what it signed.
pub fn identity(who: &Identity) -> Markup {
    let title = format!("Keys of {}", who.name);
    let signs = who.roles.iter().any(|r| crate::history::signs_records(*r));
    let body = html! {
        h1 { (title) }
        p.lede {
            @if let Some(d) = &who.display_name { (d) ". " }
            "Registered as "
            @for (i, r) in who.roles.iter().enumerate() { @if i > 0 { ", " } (labels::role(*r)) }
            ". Each key below was added, and perhaps revoked or replaced, by an entry in the log."
        }
        @if signs {
            p { a href=(format!("/entries{}", crate::filter::encode_query(&[("agency", who.name.clone())]))) { "Entries signed by " (who.name) } }
        }
        @if who.roles.contains(&Role::Agency) {
            p { a.agency-page href=(crate::agency::href(&who.name)) { "Agency page: its requests, ratifications, disclosures and outcomes" } }
        }
        @if who.roles.contains(&Role::Provider) {
            p { a.provider-page href=(crate::providers::href(&who.name)) { "Provider page: its published standards, refusals and releases" } }
        }
        @if who.roles.contains(&Role::Custodian) {
            p.custodian {
                "As a custodian it holds one share of each escrowed key it was given: a key exists again only once enough "
                "custodians (the key's threshold) have each checked a request and logged the release of their share. "
                a href=(format!("/entries{}", crate::filter::encode_query(&[("kind", "release".to_owned()), ("release", "custodian".to_owned()), ("agency", who.name.clone())]))) {
                    "The shares it released"
                }
            }
        }
        (key_history_table(who))
        p { a href="/keys" { "Every registered key" } }
    };
    layout(&title, "/keys", body)
}

/// The findings page.
pub fn findings(source: Option<&str>, findings: Result<Vec<serde_json::Value>, String>) -> Markup {
    let body = html! {
        h1 { "Auditor findings" }
        p.lede { "Public auditors mirror the whole log, re-check every entry against the rules, and publish what they find: overdue disclosures, emergencies never ratified, bad references, and any sign the log itself misbehaved." }
        @match (source, findings) {
            (None, _) => p { "This server is not configured with a findings file." },
            (Some(src), Err(e)) => p { "No findings available from " code { (src) } ": " (e) },
            (Some(src), Ok(list)) => {
                p { (list.len()) " findings, read from " code { (src) } "." }
                @if !list.is_empty() {
                    ol.findings { @for f in &list { li { (finding(f)) } } }
                }
            }
        }
    };
    layout("Findings", "/findings", body)
}

fn finding(v: &serde_json::Value) -> Markup {
    let Some(obj) = v.as_object() else {
        return html! { code { (v.to_string()) } };
    };
    html! {
        dl.fields {
            @for (k, val) in obj {
                div {
                    dt { (labels::words(k)) }
                    dd { (value(k, val)) }
                }
            }
        }
    }
}

fn value(key: &str, v: &serde_json::Value) -> Markup {
    let entryish = key.contains("entr") || key.contains("index") || key == "refs";
    match v {
        serde_json::Value::Number(n) if entryish => match n.as_u64() {
            Some(i) => entry_link(i),
            None => html! { (n.to_string()) },
        },
        serde_json::Value::Array(a) if a.is_empty() => html! { "none" },
        serde_json::Value::Array(a) => {
            html! { @for (i, x) in a.iter().enumerate() { @if i > 0 { ", " } (value(key, x)) } }
        }
        serde_json::Value::String(s) => html! { (s) },
        serde_json::Value::Object(_) => html! { code { (v.to_string()) } },
        other => html! { (other.to_string()) },
    }
}

/// A page for errors.
pub fn error(status: u16, message: &str) -> Markup {
    layout(
        "Error",
        "",
        html! {
            h1 { "Error " (status) }
            p { (message) }
            p { a href="/entries" { "Back to the entries" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(total: Total, shown: usize, page: usize) -> String {
        let (mut filter, _) = Filter::parse(&[("kind".into(), "request".into())]);
        filter.per_page = 2;
        filter.page = page;
        let s = crate::index::Summary::of(7, b"not a record");
        let shown = vec![s; shown];
        let choices = Choices {
            agencies: vec![],
            jurisdictions: vec![],
            providers: vec![],
        };
        let coverage = Coverage {
            indexed: 10,
            size: 10,
        };
        entries(coverage, &filter, &[], total, &shown, &choices, Utc::now()).into_string()
    }

    #[test]
    fn a_list_counted_up_to_its_limit_says_so_and_goes_on() {
        let capped = list(
            Total {
                n: 4,
                at_least: true,
            },
            2,
            2,
        );
        assert!(
            capped.contains("<strong id=\"match-count\">4 or more</strong>"),
            "{capped}"
        );
        assert!(capped.contains("<span>Page 2</span>"), "{capped}");
        assert!(
            capped
                .contains("rel=\"next\" href=\"/entries?kind=request&amp;per_page=2&amp;page=3\""),
            "{capped}"
        );
        // An exact count: "of N", and no page after the last.
        let exact = list(
            Total {
                n: 4,
                at_least: false,
            },
            2,
            2,
        );
        assert!(
            exact.contains("<strong id=\"match-count\">4</strong>"),
            "{exact}"
        );
        assert!(exact.contains("Page 2 of 2"), "{exact}");
        assert!(!exact.contains("rel=\"next\""), "{exact}");
        // A capped list whose page is not full has ended.
        let ended = list(
            Total {
                n: 4,
                at_least: true,
            },
            1,
            3,
        );
        assert!(!ended.contains("rel=\"next\""), "{ended}");
    }

    #[test]
    fn identity_links_keep_names_in_one_path_segment() {
        assert_eq!(identity_href("agency.example"), "/keys/agency.example");
        // A log's origin has a slash; other bytes a key name may hold too.
        assert_eq!(identity_href("log.example/e2e"), "/keys/log.example%2Fe2e");
        assert_eq!(identity_href("a?b#c%d"), "/keys/a%3Fb%23c%25d");
    }

    #[test]
    fn a_partial_index_is_announced() {
        let page = entries(
            Coverage {
                indexed: 5,
                size: 9,
            },
            &Filter::parse(&[]).0,
            &[],
            Total {
                n: 5,
                at_least: false,
            },
            &[],
            &Choices {
                agencies: vec![],
                jurisdictions: vec![],
                providers: vec![],
            },
            Utc::now(),
        )
        .into_string();
        assert!(page.contains("cover the first 5 of 9 entries"), "{page}");
    }
}
