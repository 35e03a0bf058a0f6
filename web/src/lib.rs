//! The journalists' web view, served by the log server under `/`.
//!
//! Server-rendered HTML (maud templates), plain CSS, SVG charts drawn on the
//! server, and one small JavaScript module for checking an entry's
//! inclusion in the browser. Every page works without JavaScript.
//!
//! - [`router`]: the routes, to merge into the log server's app
//!   (`LogServer::extra`). None of them shadows the API (`/api/v1/...`),
//!   `/checkpoint` or `/tile/...`.
//! - [`index`]: a SQLite query index beside the log (`web-index.db`), one
//!   row of facts per entry, caught up as the log grows; lists, filters,
//!   counts and charts are SQL over it.
//! - [`filter`]: the list's filters as GET parameters; [`status`]: the one
//!   place that decides an authorisation's statuses.
//!
//! Routes: `/` (overview and charts), `/entries` (filtered, paginated list,
//! filters as GET parameters), `/entries.csv` and `/entries.json` (the whole
//! filtered list), `/entries/{index}` (one entry, its timeline and the
//! in-browser check), `/keys` (every agency's, court's and provider's keys
//! over time, and the log's), `/keys/{name}` (one identity's keys),
//! `/witnesses` (the witnesses now and the witness sets over time),
//! `/findings`, `/static/...`; `/entries.atom` (any list as an Atom feed,
//! see [`feed`]), `/agencies/{name}` (one agency's figures, see
//! [`agency`]), `/going-dark` with `.csv` and `.json` (the outcome
//! reports' encryption figures per year and jurisdiction, see
//! [`going_dark`]); `/refusals` (providers' refusals per year and
//! jurisdiction and per provider, each with its reasons, see
//! [`refusals`]), `/providers/{name}` (a provider's published standards
//! now and over time, its refusals and releases, see [`providers`]).
//!
//! - [`history`]: key and witness-set history, from the log's registry
//!   entries replayed with the schemas crate's `Registry`.

pub mod agency;
pub mod charts;
pub mod feed;
pub mod filter;
pub mod going_dark;
pub mod history;
pub mod index;
pub mod labels;
pub mod pages;
pub mod providers;
pub mod refusals;
pub use daylight_ledger::status;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use daylight_core::{Checkpoint, LeafIndex, Note, VerifierKey};
use daylight_log_server::admitted::Admitted;
use daylight_log_server::store::LogStore;
use daylight_log_server::witnessing::effective_witnesses;
use daylight_schemas::{Kind, SignedRecord};

use crate::filter::Filter;
use crate::history::{RegistryCache, Replayed};
use crate::index::{Coverage, Index, IndexError, Summary, EXPORT_LIMIT};
use crate::pages::{LogView, PublishedView, WitnessView};

/// The stylesheet.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The in-browser verifier.
pub const VERIFY_JS: &str = include_str!("../assets/verify.js");

/// What the web view needs.
#[derive(Clone)]
pub struct WebState {
    /// The log's state.
    pub store: Arc<dyn LogStore>,
    /// The log's verifier key (shown to readers and used by the in-browser check).
    pub log_key: VerifierKey,
    /// An auditor's `findings.json` to show on `/findings`, if any.
    pub findings: Option<PathBuf>,
    /// Where the query index lives (created if missing; derived data).
    pub index: PathBuf,
    /// The records the log server's admission parsed, which the index takes
    /// instead of parsing those entries again (`None`: it parses them all).
    pub admitted: Option<Arc<Admitted>>,
    /// How far behind the log a page may show lists and counts
    /// ([`PAGE_LAG`] by default; zero: every page reads the newest
    /// entries into the index first).
    pub page_lag: Duration,
}

impl WebState {
    /// The web view of the log in `dir`: findings are read from
    /// `DIR/findings.json` when an auditor writes them there, and the query
    /// index is `DIR/web-index.db`.
    pub fn for_log_dir(store: Arc<dyn LogStore>, log_key: VerifierKey, dir: &Path) -> WebState {
        WebState {
            store,
            log_key,
            findings: Some(dir.join("findings.json")),
            index: dir.join("web-index.db"),
            admitted: None,
            page_lag: PAGE_LAG,
        }
    }

    /// The index takes the records `admitted` holds instead of parsing
    /// those entries again.
    pub fn with_admitted(mut self, admitted: Arc<Admitted>) -> WebState {
        self.admitted = Some(admitted);
        self
    }
}

struct Inner {
    cfg: WebState,
    index: Index,
    first_seen: Mutex<Option<(u64, DateTime<Utc>)>>,
    registry: Mutex<RegistryCache>,
    /// The going-dark table and the entries indexed when it was counted:
    /// its counts change only with new entries (the one status it counts,
    /// released, does not depend on the time).
    going_dark: Mutex<Option<(u64, Arc<going_dark::GoingDark>)>>,
}

/// A page request reads missing entries into the index itself when at
/// most this many are missing; further behind (a first start on a long
/// log), the background reader catches up and pages say how far it is.
const INLINE_CATCH_UP: u64 = 10_000;

/// How long one round of catching up may hold the index's writer.
const CATCH_UP_ROUND: Duration = Duration::from_millis(250);

/// How far behind the log pages may be: a page reads the newest entries
/// into the index itself only if the index has not held the whole log
/// within this time. Under a steady stream of submissions the index lacks
/// a few entries at almost every page; reading them at every page took a
/// commit of a few rows per page and made pages queue for the index's
/// writer (under `scripts/load-mixed` on a 1-2M log, pages per second went
/// from about 620 to 1,100 with this lag, a sixth more at 10M;
/// BENCHMARKS.md, issue 18). An entry's own page shows a newer entry from
/// the log all the same.
pub const PAGE_LAG: Duration = Duration::from_millis(100);

/// The longest the background reader waits between rounds once caught up.
const IDLE_POLL: Duration = Duration::from_millis(500);

type Shared = Arc<Inner>;

/// The web view's routes, to merge into the log server's router. A
/// background thread reads the log into the query index and keeps it up
/// to date while the routes exist.
pub fn router(state: WebState) -> Result<Router, IndexError> {
    let meta = state.store.meta()?;
    let mut index = Index::open(&state.index, &meta.origin)?;
    if let Some(admitted) = &state.admitted {
        index = index.with_admitted(admitted.clone());
    }
    let inner = Arc::new(Inner {
        cfg: state,
        index,
        first_seen: Mutex::new(None),
        registry: Mutex::new(RegistryCache::default()),
        going_dark: Mutex::new(None),
    });
    let weak = Arc::downgrade(&inner);
    let _ = std::thread::Builder::new()
        .name("web-index".into())
        .spawn(move || {
            // Reading the log into the index is a reader's work too.
            daylight_log_server::read_pool::lower_priority(
                daylight_log_server::read_pool::READ_NICE,
                false,
            );
            keep_up(weak)
        });
    Ok(Router::new()
        .route("/", get(home))
        .route("/entries", get(entries))
        .route("/entries.csv", get(entries_csv))
        .route("/entries.json", get(entries_json))
        .route("/entries.atom", get(entries_atom))
        .route("/agencies/{name}", get(agency_page))
        .route("/going-dark", get(going_dark_page))
        .route("/going-dark.csv", get(going_dark_csv))
        .route("/going-dark.json", get(going_dark_json))
        .route("/refusals", get(refusals_page))
        .route("/providers/{name}", get(provider_page))
        .route("/entries/{index}", get(entry))
        .route("/keys", get(keys))
        .route("/keys/{name}", get(identity))
        .route("/witnesses", get(witnesses))
        .route("/findings", get(findings))
        .route("/static/style.css", get(style))
        .route("/static/verify.js", get(script))
        .with_state(inner))
}

/// Catches the index up with the log in rounds until the web view is gone.
fn keep_up(web: Weak<Inner>) {
    let mut reported = Instant::now();
    loop {
        let Some(inner) = web.upgrade() else { return };
        let caught = inner
            .index
            .catch_up(inner.cfg.store.as_ref(), CATCH_UP_ROUND)
            .and_then(|c| inner.index.tick(Utc::now()).map(|()| c));
        // Behind: yield the writer briefly to page requests; caught up:
        // poll ([`idle_poll`]); failed: try again at the slowest poll, not
        // logging the failure 20 times a second.
        let pause = match caught {
            Ok(c) if c.complete() => idle_poll(inner.cfg.page_lag),
            Ok(c) => {
                if reported.elapsed() > Duration::from_secs(10) {
                    tracing::info!("web index: {} of {} entries read", c.indexed, c.size);
                    reported = Instant::now();
                }
                Duration::from_millis(5)
            }
            Err(e) => {
                tracing::error!("web index: {e}");
                IDLE_POLL
            }
        };
        drop(inner);
        std::thread::sleep(pause);
    }
}

/// How long the background reader waits once caught up: half the page
/// lag, so that pages rarely catch up themselves; with no lag, pages always
/// do, and it waits [`IDLE_POLL`].
fn idle_poll(lag: Duration) -> Duration {
    if lag.is_zero() {
        IDLE_POLL
    } else {
        (lag / 2).clamp(Duration::from_millis(5), IDLE_POLL)
    }
}

/// A failure shown as an HTML page.
struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = pages::error(self.0.as_u16(), &self.1);
        (self.0, Html(page.into_string())).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> PageError {
    tracing::error!("web: {e}");
    PageError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not read the log. Try again in a moment.".into(),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    // At the priority of the server's runtime (`daylight_log_server::
    // priority`): pages answer people, with a latency goal; machine readers
    // run at or below the process's priority (`read_pool`).
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

impl Inner {
    /// How far the index has read the log, after reading what is missing
    /// if that is little and older than [`WebState::page_lag`]. Within the
    /// lag the index is shown as the whole log, as of when it last was.
    fn fresh(&self) -> Result<Coverage, PageError> {
        let store = self.cfg.store.as_ref();
        let mut c = self.index.coverage(store).map_err(internal)?;
        if c.size.saturating_sub(c.indexed) > INLINE_CATCH_UP {
            return Ok(c);
        }
        if !c.complete() && self.index.caught_up_within(self.cfg.page_lag) {
            c.size = c.indexed;
        }
        if !c.complete() {
            c = self
                .index
                .catch_up(store, CATCH_UP_ROUND)
                .map_err(internal)?;
        }
        // Statuses in lists follow the time (a sealed date passing).
        let now = Utc::now();
        if now - self.index.ticked_at().map_err(internal)? >= chrono::Duration::seconds(1) {
            self.index.tick(now).map_err(internal)?;
        }
        Ok(c)
    }

    /// The log's registry, replayed up to the log's size.
    fn registry(&self) -> Result<Replayed, PageError> {
        let mut cache = lock(&self.registry);
        let replayed = cache
            .catch_up(self.cfg.store.as_ref(), &self.cfg.log_key)
            .map_err(internal)?;
        Ok(replayed.clone())
    }

    fn log_view(&self) -> Result<LogView, PageError> {
        let store = &self.cfg.store;
        let meta = store.meta().map_err(internal)?;
        let size = store.size().map_err(internal)?.get();
        let replayed = self.registry()?;
        // The set the log asks now: stored witnesses, then the registry's changes.
        let (configured, quorum) =
            effective_witnesses(store.as_ref(), Some(&replayed.registry), meta.quorum)
                .map_err(internal)?;
        let stored = store.witnesses().map_err(internal)?;
        let mut published = None;
        let mut stamps: Vec<Option<DateTime<Utc>>> = vec![None; configured.len()];
        if let Some(bytes) = store.published_checkpoint().map_err(internal)? {
            let note = Note::parse(&bytes).map_err(internal)?;
            let cp = Checkpoint::parse_text(note.text()).map_err(internal)?;
            for (i, w) in configured.iter().enumerate() {
                stamps[i] = note
                    .signatures()
                    .iter()
                    .find(|s| &s.name == w.key.name() && s.id == w.key.id())
                    .and_then(|s| s.signature.get(..8))
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .and_then(|b| i64::try_from(u64::from_be_bytes(b)).ok())
                    .and_then(|t| Utc.timestamp_opt(t, 0).single());
            }
            let first_seen = {
                let mut seen = lock(&self.first_seen);
                match *seen {
                    Some((s, t)) if s == cp.size.get() => t,
                    _ => {
                        let now = Utc::now();
                        *seen = Some((cp.size.get(), now));
                        now
                    }
                }
            };
            published = Some(PublishedView {
                size: cp.size.get(),
                root: base64_std(&cp.root.0),
                note: String::from_utf8_lossy(&bytes).into_owned(),
                cosigned_at: stamps.iter().flatten().max().copied(),
                first_seen,
            });
        }
        let witnesses = configured
            .into_iter()
            .zip(stamps)
            .map(|(w, t)| WitnessView {
                name: w.key.name().to_string(),
                key: w.key.to_string(),
                url: w.url,
                known_size: w.known_size.get(),
                cosigned_at: t,
            })
            .collect();
        Ok(LogView {
            origin: meta.origin,
            log_key: self.cfg.log_key.to_string(),
            quorum,
            size,
            published,
            witnesses,
            log_keys: replayed.registry.log_keys().to_vec(),
            witness_sets: history::witness_sets(&replayed.registry, &stored, meta.quorum),
            problems: replayed.problems,
        })
    }
}

impl Inner {
    /// The total number of matches and the newest [`EXPORT_LIMIT`] of them.
    fn export(&self, filter: &Filter) -> Result<(u64, Vec<Summary>), PageError> {
        self.fresh()?;
        let total = self.index.count(filter, None).map_err(internal)?.n;
        let rows = self
            .index
            .matches(filter, 0, EXPORT_LIMIT)
            .map_err(internal)?;
        Ok((total, rows))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn html(m: maud::Markup) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Html(m.into_string()),
    )
        .into_response()
}

async fn home(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let log = s.log_view()?;
        let c = s.fresh()?;
        let now = Utc::now();
        // Counters kept as entries are indexed: cheap to read every time.
        let stats = s.index.stats().map_err(internal)?;
        let refusals = refusals::overview(&s.index, now).map_err(internal)?;
        Ok(html(pages::home(&log, &stats, &refusals, c, now)))
    })
    .await
}

async fn entries(
    State(s): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    blocking(move || {
        let (mut filter, problems) = Filter::parse(&q);
        let c = s.fresh()?;
        // Statuses shown as of the time the list's status filter is for.
        let now = s.index.ticked_at().map_err(internal)?;
        let (total, mut shown) = s.index.page(&filter).map_err(internal)?;
        let pages = usize::try_from(total.n)
            .unwrap_or(usize::MAX)
            .div_ceil(filter.per_page)
            .max(1);
        // Past the last page (of those counted: a list counted only up to
        // its limit goes on while pages are full).
        if filter.page > pages && (!total.at_least || shown.is_empty()) {
            filter.page = pages;
            (_, shown) = s.index.page(&filter).map_err(internal)?;
        }
        let choices = s.index.choices().map_err(internal)?;
        let page = pages::entries(c, &filter, &problems, total, &shown, &choices, now);
        Ok(html(page))
    })
    .await
}

/// One exported row.
#[derive(serde::Serialize)]
struct ExportRow<'a> {
    index: u64,
    kind: &'static str,
    created: Option<String>,
    signer: &'a str,
    jurisdiction: Option<&'a str>,
    legal_basis: Option<&'a str>,
    provider: Option<&'a str>,
    data_categories: &'a [&'static str],
    emergency: bool,
    status: Vec<&'static str>,
    sealed_until: Option<String>,
    references: &'a [u64],
    leaf_hash: String,
    refusal_reason: Option<&'static str>,
    request_agency: Option<&'a str>,
}

fn export_rows(matches: &[Summary], now: DateTime<Utc>) -> Vec<ExportRow<'_>> {
    let t = |d: DateTime<Utc>| d.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    matches
        .iter()
        .map(|s| ExportRow {
            index: s.index,
            kind: s.kind_name(),
            created: s.created.map(t),
            signer: &s.signer,
            jurisdiction: s.jurisdiction.as_deref(),
            legal_basis: s.legal_basis.as_deref(),
            provider: s.provider.as_deref(),
            data_categories: &s.categories,
            emergency: s.kind == Some(Kind::Emergency),
            status: s.statuses(now).iter().map(|x| x.as_str()).collect(),
            sealed_until: s.sealed_in_force.or(s.sealed_until).map(t),
            references: &s.references,
            leaf_hash: s.leaf_hash_hex(),
            refusal_reason: s.reason.map(daylight_schemas::RefusalReason::as_str),
            request_agency: s.request_agency.as_deref(),
        })
        .collect()
}

/// One CSV cell: quoted when needed; a leading `=`, `+`, `-` or `@` gets a
/// `'` so spreadsheets do not run it as a formula.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

async fn entries_csv(
    State(s): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    blocking(move || {
        let (filter, _) = Filter::parse(&q);
        let (total, matches) = s.export(&filter)?;
        let now = s.index.ticked_at().map_err(internal)?;
        let mut out = String::from("index,kind,created,signer,jurisdiction,legal_basis,provider,data_categories,emergency,status,sealed_until,references,leaf_hash,refusal_reason,request_agency\r\n");
        for r in export_rows(&matches, now) {
            let refs: Vec<String> = r.references.iter().map(u64::to_string).collect();
            let cells = [
                r.index.to_string(),
                r.kind.to_owned(),
                r.created.unwrap_or_default(),
                r.signer.to_owned(),
                r.jurisdiction.unwrap_or_default().to_owned(),
                r.legal_basis.unwrap_or_default().to_owned(),
                r.provider.unwrap_or_default().to_owned(),
                r.data_categories.join(";"),
                r.emergency.to_string(),
                r.status.join(";"),
                r.sealed_until.unwrap_or_default(),
                refs.join(";"),
                r.leaf_hash,
                r.refusal_reason.unwrap_or_default().to_owned(),
                r.request_agency.unwrap_or_default().to_owned(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        Ok((
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"daylight-entries.csv\""),
                ),
                (
                    header::HeaderName::from_static("x-daylight-total"),
                    HeaderValue::from(total),
                ),
            ],
            out,
        )
            .into_response())
    })
    .await
}

async fn entries_json(
    State(s): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    blocking(move || {
        let (filter, problems) = Filter::parse(&q);
        let (total, matches) = s.export(&filter)?;
        let now = s.index.ticked_at().map_err(internal)?;
        let query: serde_json::Map<String, serde_json::Value> =
            filter
                .pairs()
                .into_iter()
                .fold(serde_json::Map::new(), |mut m, (k, v)| {
                    match m.get_mut(k) {
                        Some(serde_json::Value::Array(a)) => a.push(v.into()),
                        _ => {
                            m.insert(k.to_owned(), serde_json::Value::Array(vec![v.into()]));
                        }
                    }
                    m
                });
        let body = serde_json::json!({
            "filters": query,
            "ignored": problems,
            "total": total,
            "truncated": total > matches.len() as u64,
            "entries": export_rows(&matches, now),
        });
        Ok(axum::Json(body).into_response())
    })
    .await
}

/// `scheme://host` of a request, for the absolute links feeds need: the
/// Host header if it is a plain host name (and port), and https only when
/// a proxy in front says so.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

async fn entries_atom(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    blocking(move || {
        let (mut filter, _) = Filter::parse(&q);
        // A feed is always the newest matches: pages do not apply.
        filter.page = 1;
        filter.per_page = filter::DEFAULT_PER_PAGE;
        s.fresh()?;
        let now = s.index.ticked_at().map_err(internal)?;
        let rows = s
            .index
            .matches(&filter, 0, feed::FEED_LIMIT)
            .map_err(internal)?;
        let origin = s.cfg.store.meta().map_err(internal)?.origin;
        let base = base_url(&headers);
        let body = feed::atom(
            &feed::FeedMeta {
                origin: &origin,
                filter: &filter,
                base: &base,
                now,
            },
            &rows,
        );
        Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(feed::CONTENT_TYPE),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response())
    })
    .await
}

async fn agency_page(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, PageError> {
    blocking(move || {
        let c = s.fresh()?;
        let now = s.index.ticked_at().map_err(internal)?;
        let replayed = s.registry()?;
        let who = history::identity(&replayed.registry, &name);
        let (all, _) = Filter::parse(&[("agency".to_owned(), name.clone())]);
        let signed = s.index.count(&all, None).map_err(internal)?.n;
        if who.is_none() && signed == 0 {
            return Err(PageError(
                StatusCode::NOT_FOUND,
                format!("No entry in the log is signed by {name:?}, and its registry names no such key."),
            ));
        }
        let view = agency::AgencyView {
            figures: agency::figures(&s.index, &name).map_err(internal)?,
            recent: s
                .index
                .matches(&all, 0, agency::RECENT)
                .map_err(internal)?,
            signed,
            registered: who.is_some(),
            display_name: who.and_then(|w| w.display_name),
            name,
        };
        Ok(html(agency::page(&view, c, now)))
    })
    .await
}

impl Inner {
    fn going_dark(&self) -> Result<Arc<going_dark::GoingDark>, PageError> {
        let indexed = self.fresh()?.indexed;
        if let Some((n, g)) = lock(&self.going_dark).as_ref() {
            if *n == indexed {
                return Ok(g.clone());
            }
        }
        let g = Arc::new(going_dark::compute(&self.index).map_err(internal)?);
        *lock(&self.going_dark) = Some((indexed, g.clone()));
        Ok(g)
    }
}

async fn going_dark_page(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || Ok(html(going_dark::page(&*s.going_dark()?)))).await
}

async fn going_dark_csv(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let g = s.going_dark()?;
        Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"daylight-going-dark.csv\""),
                ),
            ],
            going_dark::csv(&g),
        )
            .into_response())
    })
    .await
}

async fn going_dark_json(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let g = s.going_dark()?;
        let origin = s.cfg.store.meta().map_err(internal)?.origin;
        Ok(axum::Json(going_dark::json(&g, &origin)).into_response())
    })
    .await
}

async fn refusals_page(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let c = s.fresh()?;
        let t = refusals::table(&s.index).map_err(internal)?;
        Ok(html(refusals::page(&t, c)))
    })
    .await
}

async fn provider_page(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, PageError> {
    blocking(move || {
        let c = s.fresh()?;
        let replayed = s.registry()?;
        let who = history::identity(&replayed.registry, &name);
        let view = providers::ProviderView::read(
            &s.index,
            &name,
            who.as_ref().and_then(|w| w.display_name.clone()),
            who.is_some(),
        )
        .map_err(internal)?;
        let provider = who
            .as_ref()
            .is_some_and(|w| w.roles.contains(&daylight_schemas::Role::Provider));
        // Refusals, releases and policies are signed by providers only.
        let acted = view.refusals.0 + view.releases.0 > 0 || !view.policies.is_empty();
        if !provider && !acted {
            return Err(PageError(
                StatusCode::NOT_FOUND,
                format!("The log's registry names no provider {name:?}, and no refusal, release or policy is signed by it."),
            ));
        }
        Ok(html(providers::page(&view, c)))
    })
    .await
}

async fn entry(
    State(s): State<Shared>,
    UrlPath(index): UrlPath<String>,
) -> Result<Response, PageError> {
    let Some(i) = daylight_core::types::parse_decimal(&index) else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("{index:?} is not an entry number."),
        ));
    };
    blocking(move || {
        let log = s.log_view()?;
        s.fresh()?;
        let stored = s.cfg.store.entry(LeafIndex(i)).map_err(internal)?;
        let Some(stored) = stored else {
            return Err(PageError(
                StatusCode::NOT_FOUND,
                format!("The log has no entry {i} (it has {} entries).", log.size),
            ));
        };
        // Not indexed yet (the index is still reading a long log): the
        // entry's own facts, without what later entries say of it.
        let summary = match s.index.get(i).map_err(internal)? {
            Some(x) => x,
            None => Summary::of(i, &stored.data),
        };
        let record = SignedRecord::parse(&stored.data).ok();
        let referrers = s.index.referrers(i).map_err(internal)?;
        let mut steps = Vec::new();
        for (t, why) in pages::timeline(&summary, &referrers) {
            let e = if t == i {
                Some(summary.clone())
            } else {
                s.index.get(t).map_err(internal)?
            };
            steps.push((t, why, e));
        }
        Ok(html(pages::entry(
            &log,
            &summary,
            record.as_ref(),
            &steps,
            Utc::now(),
        )))
    })
    .await
}

async fn witnesses(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || Ok(html(pages::witnesses(&s.log_view()?, Utc::now())))).await
}

async fn keys(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let log = s.log_view()?;
        let replayed = s.registry()?;
        let list = history::identities(&replayed.registry);
        Ok(html(pages::keys(&log, &list, Utc::now())))
    })
    .await
}

async fn identity(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, PageError> {
    blocking(move || {
        let origin = s.cfg.store.meta().map_err(internal)?.origin == name;
        let replayed = s.registry()?;
        match history::identity(&replayed.registry, &name) {
            Some(who) => Ok(html(pages::identity(&who))),
            // The log's own keys are not registrations: they have their
            // own table on the keys page.
            None if origin => Ok(axum::response::Redirect::to("/keys#log-keys").into_response()),
            None => Err(PageError(
                StatusCode::NOT_FOUND,
                format!("The log's registry names no key {name:?}."),
            )),
        }
    })
    .await
}

async fn findings(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let path = s.cfg.findings.clone();
        let list = match &path {
            None => Err(String::new()),
            Some(p) => read_findings(p),
        };
        let src = path.as_ref().map(|p| p.display().to_string());
        Ok(html(pages::findings(src.as_deref(), list)))
    })
    .await
}

/// Reads an auditor's findings file: a JSON array, or an object with a
/// `findings` array.
fn read_findings(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no findings file yet (has an auditor run?)".to_owned(),
        _ => e.to_string(),
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    match v {
        serde_json::Value::Array(a) => Ok(a),
        serde_json::Value::Object(mut o) => match o.remove("findings") {
            Some(serde_json::Value::Array(a)) => Ok(a),
            _ => Err("the file has no findings list".into()),
        },
        _ => Err("the file is not a findings list".into()),
    }
}

fn asset(body: &'static str, ct: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ct)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn style() -> Response {
    asset(STYLE_CSS, "text/css; charset=utf-8")
}

async fn script() -> Response {
    asset(VERIFY_JS, "text/javascript; charset=utf-8")
}
