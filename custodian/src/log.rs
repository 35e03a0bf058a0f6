//! The log, as a custodian (or any client that submits records) uses it:
//! submit a signed record, fetch an entry's tlog-proof. One trait
//! ([`LogClient`]) so the custodian can be tested against a log that fails
//! on purpose ([`crate::testing::TestLog`]); [`HttpLog`] speaks the log
//! server's API; [`wait_for_proof`] is the one bounded wait for a proof
//! that a checkpoint the caller believes covers an entry.

use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Why the log did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Nothing answered, or the exchange failed (refused connection,
    /// timeout, a broken response).
    #[error("cannot reach the log at {url}: {why}")]
    Unreachable {
        /// The log's URL.
        url: String,
        /// What failed.
        why: String,
    },
    /// The log answered with a refusal (its `{"error", "detail"}` body).
    #[error("the log refused the record ({}): {code} {detail}", status_text(*status))]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The log's error code (`?` if it sent none).
        code: String,
        /// The log's detail.
        detail: String,
    },
    /// The log answered something its API does not say.
    #[error("the log's answer makes no sense: {0}")]
    Protocol(String),
}

impl LogError {
    /// Whether asking again later may help (the log was unreachable, or
    /// answered a 5xx or 429).
    pub fn is_transient(&self) -> bool {
        match self {
            LogError::Unreachable { .. } => true,
            LogError::Refused { status, .. } => *status >= 500 || *status == 429,
            LogError::Protocol(_) => false,
        }
    }
}

/// `403 Forbidden` and the like.
fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}

/// A Daylight log, as far as submitting records and fetching proofs go.
#[async_trait]
pub trait LogClient: Send + Sync {
    /// Submits signed record bytes; the index the log answers (the same
    /// bytes again answer the same index).
    async fn submit(&self, record: &[u8]) -> Result<u64, LogError>;

    /// The C2SP tlog-proof of entry `index` against the log's newest
    /// published (cosigned) checkpoint; `None` while none covers it yet.
    async fn proof(&self, index: u64) -> Result<Option<Vec<u8>>, LogError>;
}

/// The log server's HTTP API (`POST /api/v1/entries`,
/// `GET /api/v1/entries/{index}/proof`).
#[derive(Clone, Debug)]
pub struct HttpLog {
    client: reqwest::Client,
    url: String,
}

impl HttpLog {
    /// The log at `url` (`http://HOST:PORT`), through `client`.
    pub fn new(client: reqwest::Client, url: &str) -> HttpLog {
        HttpLog {
            client,
            url: url.trim_end_matches('/').to_owned(),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, e: &reqwest::Error) -> LogError {
        let why = if e.is_builder() {
            "not a URL: write it as http://HOST:PORT".to_owned()
        } else if e.is_connect() {
            "nothing answers there".to_owned()
        } else if e.is_timeout() {
            "it did not answer in time".to_owned()
        } else {
            format!("the request failed ({e})")
        };
        LogError::Unreachable {
            url: self.url.clone(),
            why,
        }
    }

    /// A refusal from a non-success response.
    async fn refusal(resp: reqwest::Response) -> LogError {
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        LogError::Refused {
            status,
            code: body["error"].as_str().unwrap_or("?").to_owned(),
            detail: body["detail"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

#[async_trait]
impl LogClient for HttpLog {
    async fn submit(&self, record: &[u8]) -> Result<u64, LogError> {
        let resp = self
            .client
            .post(format!("{}/api/v1/entries", self.url))
            .header("content-type", "application/json")
            .body(record.to_vec())
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            return Err(Self::refusal(resp).await);
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| LogError::Protocol(format!("the answer to a submission: {e}")))?;
        body["index"].as_u64().ok_or_else(|| {
            LogError::Protocol("the log answered a submission without an index".into())
        })
    }

    async fn proof(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let resp = self
            .client
            .get(format!("{}/api/v1/entries/{index}/proof", self.url))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match resp.status().as_u16() {
            200 => resp
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| self.unreachable(&e)),
            // Not yet in a published checkpoint (the log says Retry-After).
            503 => Ok(None),
            _ => Err(Self::refusal(resp).await),
        }
    }
}

/// Why [`wait_for_proof`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The time ran out: no proof yet, or none the caller accepted.
    #[error("no acceptable proof of entry {index} after {waited:?}{}", last.as_ref().map(|w| format!(" (last: {w})")).unwrap_or_default())]
    Timeout {
        /// The entry.
        index: u64,
        /// How long it waited.
        waited: Duration,
        /// Why the last proof served was not accepted, or the last
        /// transient error.
        last: Option<String>,
    },
    /// The log refused to serve a proof (unknown index, ...).
    #[error("{0}")]
    Log(LogError),
}

/// How soon [`wait_for_proof`] asks again at first: a log with witnesses
/// close by cosigns a new entry within milliseconds (5 ms median measured
/// by `daylight bench custody`), and a fixed 200 ms poll was most of a
/// release's time.
const FIRST_POLL: Duration = Duration::from_millis(5);
/// How often it asks at most, once the log is slower than that.
const POLL: Duration = Duration::from_millis(200);

/// Asks `log` for the proof of entry `index` until `accept` takes one (its
/// value is returned) or `timeout` has passed. A proof `accept` refuses
/// (say, a checkpoint with too few cosignatures for the caller's policy)
/// and a log that cannot be reached are asked again: a later checkpoint may
/// do. A refusal by the log ends the wait.
pub async fn wait_for_proof<T>(
    log: &dyn LogClient,
    index: u64,
    timeout: Duration,
    mut accept: impl FnMut(&[u8]) -> Result<T, String>,
) -> Result<T, WaitError> {
    let start = Instant::now();
    let mut last = None;
    let mut pause = FIRST_POLL;
    loop {
        match log.proof(index).await {
            Ok(Some(proof)) => match accept(&proof) {
                Ok(v) => return Ok(v),
                Err(why) => last = Some(why),
            },
            Ok(None) => {}
            Err(e) if e.is_transient() => last = Some(e.to_string()),
            Err(e) => return Err(WaitError::Log(e)),
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(WaitError::Timeout {
                index,
                waited,
                last,
            });
        }
        tokio::time::sleep(pause.min(timeout - waited)).await;
        pause = (pause * 2).min(POLL);
    }
}
