//! Running a log: the sequencer, the witness collection and the HTTP
//! routes, started together and stopped gracefully together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use daylight_core::SignerKey;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admission::Admission;
use crate::api::{router, AppState};
use crate::leader::{self, LeaseConfig};
use crate::metrics::Metrics;
use crate::sequencer::{self, BatchConfig};
use crate::store::{Lease, LogStore};
use crate::witnessing;

/// Connections the kernel completes and holds for a listener until the
/// server accepts them (capped by Linux's `net.core.somaxconn`, 4096 by
/// default). The standard library's and tokio's `bind` ask for 128: when
/// `daylight bench submit`'s 256 clients connected at once while the
/// server was busy, the queue overflowed, the kernel dropped the extra
/// handshakes, and those clients connected only on their retry a second
/// later (42 such in one run; the submissions' p99 to a cosigned
/// checkpoint 941.7 ms instead of about 60 in one suite run).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A TCP listener on `addr` that holds up to [`LISTEN_BACKLOG`] connections
/// waiting to be accepted; otherwise as `tokio::net::TcpListener::bind`
/// (the address reusable at once on Unix). Within a tokio runtime.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As tokio's own bind: a restarted server need not wait out TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The number of waiting connections the kernel holds for a listener,
/// where it is under [`LISTEN_BACKLOG`] (Linux's `net.core.somaxconn`
/// caps what `listen` asks for, silently): for a warning at start.
/// `None` where the cap is not lower, or cannot be read.
pub fn backlog_cap() -> Option<u32> {
    let somaxconn = std::fs::read_to_string(SOMAXCONN).ok()?;
    cap_below(&somaxconn, LISTEN_BACKLOG)
}

/// Where Linux keeps its cap on listen backlogs.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// The cap in `somaxconn` (the file's text), if it is below `wanted`.
fn cap_below(somaxconn: &str, wanted: u32) -> Option<u32> {
    somaxconn
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&cap| cap < wanted)
}

/// Why the log could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The key does not belong to this log.
    #[error("the key is named {key:?} but the log's origin is {origin:?}")]
    WrongKey {
        /// The key's name.
        key: String,
        /// The log's origin.
        origin: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    /// The publication target cannot be used.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

/// A log server's parts.
pub struct LogServer {
    /// The state.
    pub store: Arc<dyn LogStore>,
    /// The log's signing key; its name must be the origin.
    pub key: SignerKey,
    /// Log keys rotated out whose transition has not ended, each with its
    /// end: checkpoints carry their signatures beside `key`'s until then.
    pub retiring: Vec<(SignerKey, chrono::DateTime<chrono::Utc>)>,
    /// Where to find the keys again when the log's registry names a new
    /// log key while serving (`None`: refuse to sign until restarted).
    pub reload_keys: Option<crate::integrate::KeySource>,
    /// The submission rules.
    pub admission: Arc<dyn Admission>,
    /// Batching.
    pub batch: BatchConfig,
    /// Extra routes (the web view), merged under the API.
    pub extra: Option<Router>,
    /// Where tiles, bundles and checkpoints are also written, if anywhere.
    pub publish: Option<crate::publish::Target>,
    /// This frontend's name and lease timing (default: the host name and
    /// [`LeaseConfig::named`]'s timing).
    pub lease: Option<LeaseConfig>,
}

impl LogServer {
    /// Serves on `listener` until `shutdown` completes, then stops taking
    /// requests, finishes the open batch, and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let store = self.store.clone();
        // Every store call runs on a blocking thread: a networked backend's
        // synchronous client must not block (or nest) the async runtime.
        let (meta, size, initial) = {
            let (s, admission) = (store.clone(), self.admission.clone());
            tokio::task::spawn_blocking(move || -> Result<_, ServeError> {
                let meta = s.meta()?;
                let size = s.size()?;
                admission.refresh(s.as_ref());
                let initial = crate::store::load_published(s.as_ref())?.map(Arc::new);
                Ok((meta, size, initial))
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
        };
        {
            // Proofs read the upper stored hashes from memory from the start
            // instead of after some hundred thousand proofs have.
            let s = store.clone();
            tokio::task::spawn_blocking(move || {
                let t = std::time::Instant::now();
                match crate::store::warm_hash_cache(s.as_ref(), size) {
                    Ok(n) => tracing::info!("{n} upper stored hashes read in {:?}", t.elapsed()),
                    Err(e) => tracing::warn!("reading the upper stored hashes: {e}"),
                }
            });
        }
        if self.key.name().as_str() != meta.origin {
            return Err(ServeError::WrongKey {
                key: self.key.name().to_string(),
                origin: meta.origin,
            });
        }
        let metrics = Arc::new(Metrics::default());
        metrics
            .tree_size
            .store(size.get(), std::sync::atomic::Ordering::Relaxed);
        let (latest_tx, latest_rx) = watch::channel(size);
        let (published_tx, published_rx) = watch::channel(initial);
        let (stop_tx, stop_rx) = watch::channel(false);

        let (term_tx, term_rx) = watch::channel(None);
        let keys = Arc::new(crate::integrate::KeyRing::new(
            crate::integrate::LogKeys::new(self.key.clone(), self.retiring.clone()),
            self.reload_keys.clone(),
        ));
        let (sequencer, sequencer_task) = sequencer::start(
            sequencer::Shared {
                store: store.clone(),
                key: keys,
                admission: self.admission.clone(),
                origin: meta.origin.clone(),
                metrics: metrics.clone(),
                latest: latest_tx,
            },
            self.batch,
            term_rx,
        )?;
        let target = match self.publish {
            Some(target) => {
                let identity = crate::publish::LogIdentity {
                    origin: meta.origin.clone(),
                    key: self.key.verifier().clone(),
                    quorum: meta.quorum,
                    rules: Some(self.admission.clone()),
                };
                // A missing bucket, a refused write or a foreign log's
                // checkpoint: refuse to start, rather than serve a log
                // nobody can read from there.
                crate::publish::prepare(&store, &target, &identity).await?;
                Some((target, identity))
            }
            None => None,
        };
        let lease = self
            .lease
            .unwrap_or_else(|| LeaseConfig::named(&LeaseConfig::host_name()));
        metrics.set_frontend(&lease.holder);
        // What the sequencing frontend runs besides the sequencer: witness
        // collection and publication, for as long as its term lasts.
        let start_term: leader::TermTasks = {
            let (store, metrics) = (store.clone(), metrics.clone());
            let source: crate::witnessing::WitnessSource = {
                let (store, rules, init_quorum) =
                    (store.clone(), self.admission.clone(), meta.quorum);
                Arc::new(move || {
                    rules.refresh(store.as_ref());
                    let registry = rules.registry();
                    if registry.is_none() && rules.keeps_registry() {
                        // Never fall back to the witnesses and quorum the
                        // log started with: the registry may have removed
                        // some and raised the quorum.
                        return Err("the log's registry could not be read".to_string());
                    }
                    crate::witnessing::effective_witnesses(
                        store.as_ref(),
                        registry.as_ref(),
                        init_quorum,
                    )
                    .map_err(|e| e.to_string())
                })
            };
            let (published_tx, published_rx) = (published_tx.clone(), published_rx.clone());
            let holder = lease.holder.clone();
            Box::new(move |term: Lease, stop: watch::Receiver<bool>| {
                let mut tasks = vec![tokio::spawn({
                    let witnessing = witnessing::run(
                        store.clone(),
                        source.clone(),
                        metrics.clone(),
                        latest_rx.clone(),
                        published_tx.clone(),
                        stop.clone(),
                    );
                    async move {
                        if let Err(e) = witnessing.await {
                            tracing::error!("witnessing: {e}");
                        }
                    }
                })];
                if let Some((target, identity)) = &target {
                    tasks.push(tokio::spawn(crate::publish::run(
                        store.clone(),
                        target.clone(),
                        identity.clone(),
                        Some(crate::publish::Term {
                            holder: holder.clone(),
                            lease: term,
                        }),
                        published_rx.clone(),
                        metrics.clone(),
                        stop,
                    )));
                }
                tasks
            })
        };
        let leader_task = tokio::spawn(leader::run(
            store.clone(),
            lease,
            term_tx,
            start_term,
            metrics.clone(),
            stop_rx.clone(),
        ));
        let follow_task = tokio::spawn(leader::follow_published(
            store.clone(),
            published_tx,
            stop_rx,
        ));

        // Submissions are admitted in batches and handed to the sequencer
        // from there; it holds a sequencer handle as long as the routes do.
        let admission_queue = {
            let (rules, store) = (self.admission.clone(), store.clone());
            let (sequencer, metrics) = (sequencer.clone(), metrics.clone());
            Arc::new(crate::api::AdmissionQueue::new(
                Arc::new(move |records| {
                    let mut answers = rules.admit_batch(records, store.as_ref());
                    // Compressed here, on the admission's threads, rather
                    // than in the sequencer's serial step. A follower
                    // queues its entries raw for the leader, which
                    // compresses them itself: it packs nothing.
                    if metrics.leader.load(std::sync::atomic::Ordering::Relaxed) == 1 {
                        for entry in answers.iter_mut().flatten() {
                            store.pack(entry);
                        }
                    }
                    answers
                }),
                Arc::new(move |entry, reply| sequencer.enqueue(entry, reply)),
            ))
        };
        let state = AppState {
            store: store.clone(),
            sequencer,
            admission: self.admission.clone(),
            metrics,
            log_key: self.key.verifier().clone(),
            quorum: meta.quorum,
            published: published_rx,
            proofs: Default::default(),
            admission_queue,
        };
        let mut app = router(state);
        if let Some(extra) = self.extra {
            app = app.merge(extra);
        }
        tracing::info!(origin = %meta.origin, addr = ?listener.local_addr().ok(), "log serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        // The router (and with it every sequencer handle) is gone: the
        // sequencer writes what it holds and stops.
        if let Err(e) = sequencer_task.await {
            tracing::error!("sequencer: {e}");
        }
        let _ = stop_tx.send(true);
        // The lease goes last: released once the term's tasks have stopped.
        for (name, task) in [("leadership", leader_task), ("following", follow_task)] {
            if let Err(e) = task.await {
                tracing::error!("{name}: {e}");
            }
        }
        Ok(())
    }

    /// Binds `addr` and serves in the background; for tests and the demo.
    pub async fn spawn(self, addr: SocketAddr) -> Result<RunningLog, ServeError> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, async move {
            let _ = rx.await;
        }));
        Ok(RunningLog {
            addr,
            stop: Some(tx),
            task,
        })
    }
}

/// A log serving in the background.
pub struct RunningLog {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl RunningLog {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::Duration;

    /// Many clients connecting at once to a server that has not accepted
    /// them yet all get through the handshake: none waits for the kernel's
    /// one-second retry of a dropped one (what a 128-connection backlog
    /// gave 256 clients).
    // Linux: elsewhere the system's cap (macOS: 128) and file limits differ.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_burst_of_clients_connects_before_any_is_accepted() {
        // Linux caps the backlog at `somaxconn`; the test needs room for 300.
        let somaxconn = std::fs::read_to_string(SOMAXCONN).unwrap_or_default();
        if let Some(cap) = cap_below(&somaxconn, 300) {
            eprintln!("skipped: net.core.somaxconn is {cap}, under the 300 connections tried");
            return;
        }
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let tries = (0..300).map(|_| {
            tokio::spawn(tokio::time::timeout(
                // Well under the kernel's first retry of a dropped handshake.
                Duration::from_millis(700),
                tokio::net::TcpStream::connect(addr),
            ))
        });
        let mut connected = Vec::new();
        let mut late = 0;
        for t in tries.collect::<Vec<_>>() {
            match t.await.unwrap() {
                Ok(stream) => connected.push(stream.unwrap()),
                Err(_) => late += 1,
            }
        }
        assert_eq!(late, 0, "{late} of 300 connections waited for a retry");
        drop(listener);
    }

    /// A cap under the backlog asked for is reported; one at or above it,
    /// or text that is no number, is not.
    #[test]
    fn a_lower_somaxconn_is_reported() {
        assert_eq!(cap_below("128\n", LISTEN_BACKLOG), Some(128));
        assert_eq!(cap_below("4095", LISTEN_BACKLOG), Some(4095));
        assert_eq!(cap_below("4096\n", LISTEN_BACKLOG), None);
        assert_eq!(cap_below("65535\n", LISTEN_BACKLOG), None);
        assert_eq!(cap_below("", LISTEN_BACKLOG), None);
        assert_eq!(cap_below("lots", LISTEN_BACKLOG), None);
    }
}
