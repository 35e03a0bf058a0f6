//! The journalists' web view, served by the log server under `/`.
//!
//! Server-rendered HTML (maud templates), plain CSS, SVG charts drawn on the
//! server, and one small JavaScript module for checking an entry's
//! inclusion in the browser. Every page works without JavaScript.
//!
//! - [`router`]: the routes, to merge into the log server's app
//!   (`LogServer::extra`). None of them shadows the API (`/api/v1/...`),
//!   `/checkpoint` or `/tile/...`.
//! - [`index`]: parsed summaries of every entry, kept in memory and read
//!   again when the log grows; the list's filters scan them.
//!
//! Routes: `/` (overview and charts), `/entries` (filtered, paginated list,
//! filters as GET parameters), `/entries.csv` and `/entries.json` (the whole
//! filtered list), `/entries/{index}` (one entry, its timeline and the
//! in-browser check), `/witnesses`, `/findings`, `/static/...`.

pub mod charts;
pub mod index;
pub mod labels;
pub mod pages;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use daylight_core::{Checkpoint, LeafIndex, Note, VerifierKey};
use daylight_log_server::store::LogStore;
use daylight_schemas::{Kind, SignedRecord};

use crate::index::{Filter, Index, Status, Summary};
use crate::pages::{Choices, HomeStats, LogView, PublishedView, WitnessView};

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
}

impl WebState {
    /// The web view of the log in `dir`: findings are read from
    /// `DIR/findings.json` when an auditor writes them there.
    pub fn for_log_dir(store: Arc<dyn LogStore>, log_key: VerifierKey, dir: &Path) -> WebState {
        WebState {
            store,
            log_key,
            findings: Some(dir.join("findings.json")),
        }
    }
}

struct Inner {
    cfg: WebState,
    index: RwLock<Index>,
    first_seen: Mutex<Option<(u64, DateTime<Utc>)>>,
    /// The overview's statistics: for how many entries, computed when.
    home_cache: Mutex<Option<(usize, std::time::Instant, Arc<HomeStats>)>>,
}

/// How long the overview's statistics are reused while the log does not
/// grow (statuses such as "overdue" change with time alone).
const HOME_STATS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type Shared = Arc<Inner>;

/// The web view's routes, to merge into the log server's router. A
/// background thread reads the log into the web index at once, so the
/// first visitor does not wait for it.
pub fn router(state: WebState) -> Router {
    let inner = Arc::new(Inner {
        cfg: state,
        index: RwLock::new(Index::default()),
        first_seen: Mutex::new(None),
        home_cache: Mutex::new(None),
    });
    let warm = inner.clone();
    let _ = std::thread::Builder::new()
        .name("web-index".into())
        .spawn(move || {
            if let Err(e) = warm.index() {
                tracing::error!("web: reading the log into the index: {}", e.1);
            }
        });
    Router::new()
        .route("/", get(home))
        .route("/entries", get(entries))
        .route("/entries.csv", get(entries_csv))
        .route("/entries.json", get(entries_json))
        .route("/entries/{index}", get(entry))
        .route("/witnesses", get(witnesses))
        .route("/findings", get(findings))
        .route("/static/style.css", get(style))
        .route("/static/verify.js", get(script))
        .with_state(inner)
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
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

impl Inner {
    /// The index, caught up with the store.
    fn index(&self) -> Result<RwLockReadGuard<'_, Index>, PageError> {
        let size = self.cfg.store.size().map_err(internal)?.get();
        {
            let r = self.index.read().unwrap_or_else(|e| e.into_inner());
            if r.entries.len() as u64 >= size {
                return Ok(r);
            }
        }
        {
            let mut w = self.index.write().unwrap_or_else(|e| e.into_inner());
            if (w.entries.len() as u64) < size {
                w.refresh(self.cfg.store.as_ref()).map_err(internal)?;
            }
        }
        Ok(self.index.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The overview's statistics, reused while the log has not grown and
    /// they are younger than [`HOME_STATS_TTL`].
    fn home_stats(&self, idx: &Index, now: DateTime<Utc>) -> Arc<HomeStats> {
        let mut cache = self.home_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, at, stats)) = cache.as_ref() {
            if *n == idx.entries.len() && at.elapsed() < HOME_STATS_TTL {
                return stats.clone();
            }
        }
        let stats = Arc::new(home_stats(idx, now));
        *cache = Some((idx.entries.len(), std::time::Instant::now(), stats.clone()));
        stats
    }

    fn log_view(&self) -> Result<LogView, PageError> {
        let store = &self.cfg.store;
        let meta = store.meta().map_err(internal)?;
        let size = store.size().map_err(internal)?.get();
        let configured = store.witnesses().map_err(internal)?;
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
                let mut seen = self.first_seen.lock().unwrap_or_else(|e| e.into_inner());
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
            quorum: meta.quorum,
            size,
            published,
            witnesses,
        })
    }
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

/// A month as a number: year * 12 + month (0 to 11).
fn month_key(t: DateTime<Utc>) -> i64 {
    use chrono::Datelike as _;
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

fn home_stats(idx: &Index, now: DateTime<Utc>) -> HomeStats {
    let mut totals: Vec<(Kind, u64)> = Kind::ALL.iter().map(|&k| (k, 0)).collect();
    // Months from the first to the last entry, at most the last 36.
    let keys = idx.entries.iter().filter_map(|s| s.created.map(month_key));
    let (first, last) = keys.fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)));
    let first = first.max(last.saturating_sub(35));
    let months: Vec<String> = (first..=last)
        .map(|k| format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1))
        .collect();
    let col = |s: &Summary| -> Option<usize> {
        let k = month_key(s.created?);
        (first..=last)
            .contains(&k)
            .then(|| usize::try_from(k - first).ok())
            .flatten()
    };
    let mut per_month: Vec<(Kind, Vec<u64>)> = Kind::ALL
        .iter()
        .map(|&k| (k, vec![0; months.len()]))
        .collect();
    let mut share: Vec<(u64, u64)> = vec![(0, 0); months.len()];
    let mut disclosure: [Vec<u64>; 3] = std::array::from_fn(|_| vec![0; months.len()]);
    let mut with_release: [Vec<u64>; 2] = std::array::from_fn(|_| vec![0; months.len()]);
    let mut per_agency: std::collections::BTreeMap<String, u64> = Default::default();
    let (mut overdue, mut unratified, mut auths, mut released, mut releases) = (0, 0, 0, 0, 0);
    for s in &idx.entries {
        let Some(kind) = s.kind else { continue };
        let ki = Kind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
        totals[ki].1 += 1;
        if kind == Kind::Release {
            releases += 1;
        }
        if let Some(c) = col(s) {
            per_month[ki].1[c] += 1;
            if s.is_authorisation() {
                share[c].1 += 1;
                if kind == Kind::Emergency {
                    share[c].0 += 1;
                }
            }
        }
        if s.is_authorisation() {
            auths += 1;
            *per_agency.entry(s.signer.clone()).or_default() += 1;
            let st = idx.status_set(s, now);
            let is_overdue = st.contains(Status::Overdue);
            let is_released = st.contains(Status::Released);
            overdue += u64::from(is_overdue);
            unratified += u64::from(st.contains(Status::Unratified));
            released += u64::from(is_released);
            if let Some(c) = col(s) {
                let d = if st.contains(Status::Disclosed) {
                    0
                } else if is_overdue {
                    1
                } else {
                    2
                };
                disclosure[d][c] += 1;
                with_release[usize::from(!is_released)][c] += 1;
            }
        }
    }
    let mut per_agency: Vec<(String, u64)> = per_agency.into_iter().collect();
    per_agency.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    HomeStats {
        totals,
        months,
        per_month,
        emergency_share: share
            .into_iter()
            .map(|(e, a)| (a > 0).then_some((e, a)))
            .collect(),
        per_agency,
        disclosure,
        with_release,
        overdue,
        unratified,
        authorisations: auths,
        released,
        releases,
    }
}

async fn home(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || {
        let log = s.log_view()?;
        let idx = s.index()?;
        let now = Utc::now();
        let stats = s.home_stats(&idx, now);
        Ok(html(pages::home(&log, &stats, now)))
    })
    .await
}

fn choices(idx: &Index) -> Choices {
    Choices {
        agencies: idx.agencies.iter().cloned().collect(),
        jurisdictions: idx.jurisdictions.iter().cloned().collect(),
        providers: idx.providers.iter().cloned().collect(),
    }
}

async fn entries(
    State(s): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    blocking(move || {
        let (mut filter, problems) = Filter::parse(&q);
        let idx = s.index()?;
        let now = Utc::now();
        let (mut total, mut shown) = filter.page_of(&idx, now);
        let pages = total.div_ceil(filter.per_page).max(1);
        if filter.page > pages {
            filter.page = pages;
            (total, shown) = filter.page_of(&idx, now);
        }
        let page = pages::entries(&idx, &filter, &problems, total, &shown, &choices(&idx), now);
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
    leaf_hash: &'a str,
}

fn export_rows<'a>(
    idx: &'a Index,
    matches: &[&'a Summary],
    now: DateTime<Utc>,
) -> Vec<ExportRow<'a>> {
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
            status: idx.statuses(s, now).iter().map(|x| x.as_str()).collect(),
            sealed_until: idx.effective_sealed_until(s).map(t),
            references: &s.references,
            leaf_hash: &s.leaf_hash,
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
        let idx = s.index()?;
        let now = Utc::now();
        let matches = filter.apply(&idx, now);
        let mut out = String::from("index,kind,created,signer,jurisdiction,legal_basis,provider,data_categories,emergency,status,sealed_until,references,leaf_hash\r\n");
        for r in export_rows(&idx, &matches, now) {
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
                r.leaf_hash.to_owned(),
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
        let idx = s.index()?;
        let now = Utc::now();
        let matches = filter.apply(&idx, now);
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
            "total": matches.len(),
            "entries": export_rows(&idx, &matches, now),
        });
        Ok(axum::Json(body).into_response())
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
        let idx = s.index()?;
        let Some(summary) = idx.get(i) else {
            return Err(PageError(
                StatusCode::NOT_FOUND,
                format!(
                    "The log has no entry {i} (it has {} entries).",
                    idx.entries.len()
                ),
            ));
        };
        let stored = s.cfg.store.entry(LeafIndex(i)).map_err(internal)?;
        let record = stored.and_then(|e| SignedRecord::parse(&e.data).ok());
        Ok(html(pages::entry(
            &log,
            &idx,
            summary,
            record.as_ref(),
            Utc::now(),
        )))
    })
    .await
}

async fn witnesses(State(s): State<Shared>) -> Result<Response, PageError> {
    blocking(move || Ok(html(pages::witnesses(&s.log_view()?, Utc::now())))).await
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
