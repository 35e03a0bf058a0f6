//! Which frontend sequences. Several `log serve` processes may share one
//! store; each admits submissions, but only the holder of the store's
//! sequencer lease integrates batches, collects cosignatures and publishes
//! tiles. The lease has a fencing token checked in every batch's
//! transaction, so a frontend that lost it (paused, partitioned, slow to
//! notice) cannot commit; the tree size compare-and-swap in the same
//! transaction means two batches can never both extend one size.
//!
//! A term starts when this frontend takes the lease and ends when it is
//! lost, cannot be renewed in time, or the server stops (then the lease is
//! released, so another frontend takes over at once instead of after expiry).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{load_published, Lease, LogStore, Published};

/// Lease timing and this frontend's name.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// This frontend's identity in the lease (unique per process).
    pub holder: String,
    /// How long a lease lasts without renewal: a dead leader is replaced
    /// within this plus [`LeaseConfig::poll`].
    pub ttl: Duration,
    /// How often the holder renews it.
    pub renew: Duration,
    /// How often a frontend without it tries to take it.
    pub poll: Duration,
}

impl LeaseConfig {
    /// Defaults for a frontend named `name` (a random suffix keeps two
    /// processes given the same name apart): a 6 s lease renewed every
    /// 1.5 s, tried for every second, so a takeover takes at most 7 s.
    pub fn named(name: &str) -> LeaseConfig {
        let mut nonce = [0u8; 4];
        // Without randomness the pid alone still separates processes.
        let _ = getrandom::getrandom(&mut nonce);
        LeaseConfig {
            holder: format!(
                "{name}/{}/{}-{}",
                machine_id(),
                std::process::id(),
                hex::encode(nonce)
            ),
            ttl: Duration::from_secs(6),
            renew: Duration::from_millis(1500),
            poll: Duration::from_secs(1),
        }
    }

    /// This machine's host name, for a default frontend name.
    pub fn host_name() -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "frontend".to_string())
    }
}

/// This boot of this machine and this process's PID namespace, as the
/// kernel names them: holders with the same id ran since the machine last
/// started and number their processes as we do. Containers on one host share
/// the boot id but not the PID namespace, so a PID missing from our `/proc`
/// says nothing about a process in another container.
fn machine_id() -> String {
    let boot: String = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    let pid_ns: String = std::fs::read_link("/proc/self/ns/pid")
        .map(|l| {
            l.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .unwrap_or_default();
    if boot.is_empty() || pid_ns.is_empty() {
        return String::new();
    }
    format!("{boot}.{pid_ns}")
}

/// Whether `holder` names a process of this machine's current boot and PID
/// namespace that no longer runs (a frontend killed and restarted here): its
/// lease need not be waited out. Anything else (another machine or
/// container, a live process, a name not in our format) is not known dead.
pub fn known_dead(holder: &str) -> bool {
    let ours = machine_id();
    let mut parts = holder.rsplitn(3, '/');
    let (Some(pid_nonce), Some(machine)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(pid) = pid_nonce
        .split_once('-')
        .and_then(|(p, _)| p.parse::<u32>().ok())
    else {
        return false;
    };
    !ours.is_empty()
        && machine == ours
        && pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The lease's holder, if it is known dead (see [`known_dead`]): a previous
/// process of this machine that died holding the lease (killed and
/// restarted) need not be waited out.
pub fn dead_holder(store: &dyn LogStore) -> Result<Option<String>, crate::store::StoreError> {
    Ok(store
        .lease_state()?
        .map(|state| state.holder)
        .filter(|h| known_dead(h)))
}

/// Starts the tasks of one term (witnessing, publication) under its lease;
/// they stop when the receiver turns true.
pub type TermTasks = Box<dyn Fn(Lease, watch::Receiver<bool>) -> Vec<JoinHandle<()>> + Send + Sync>;

struct Term {
    lease: Lease,
    renewed: Instant,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn end_term(term: Term, sequencing: &watch::Sender<Option<Lease>>, metrics: &Metrics) {
    // The sequencer stops first: its batches would be refused anyway.
    sequencing.send_replace(None);
    metrics.leader.store(0, Ordering::Relaxed);
    let _ = term.stop.send(true);
    for t in term.tasks {
        if let Err(e) = t.await {
            tracing::error!("a task of the sequencer's term failed: {e}");
        }
    }
}

/// Keeps trying to hold the lease until `shutdown` turns true; `sequencing`
/// tells the sequencer whether (and under which lease) to sequence.
pub async fn run(
    store: Arc<dyn LogStore>,
    config: LeaseConfig,
    sequencing: watch::Sender<Option<Lease>>,
    start_term: TermTasks,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut term: Option<Term> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let (s, holder, ttl) = (store.clone(), config.holder.clone(), config.ttl);
        let asked = Instant::now();
        let holding = term.is_some();
        let acquired = tokio::task::spawn_blocking(move || {
            // Renewing needs no look at the holder; taking over does.
            let dead = if holding {
                None
            } else {
                dead_holder(s.as_ref())?
            };
            s.acquire_lease(&holder, ttl, dead.as_deref())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        match acquired {
            Ok(Some(lease)) => {
                if term.as_ref().is_some_and(|t| t.lease != lease) {
                    // Expired and taken again: a new term, not the old one.
                    if let Some(old) = term.take() {
                        end_term(old, &sequencing, &metrics).await;
                    }
                }
                match term.as_mut() {
                    Some(t) => t.renewed = asked,
                    None => {
                        tracing::info!(
                            holder = %config.holder,
                            token = lease.token,
                            "this frontend now sequences the log"
                        );
                        metrics.terms.fetch_add(1, Ordering::Relaxed);
                        metrics.leader.store(1, Ordering::Relaxed);
                        metrics.lease_token.store(lease.token, Ordering::Relaxed);
                        let (stop, stop_rx) = watch::channel(false);
                        let tasks = start_term(lease, stop_rx);
                        sequencing.send_replace(Some(lease));
                        term = Some(Term {
                            lease,
                            renewed: asked,
                            stop,
                            tasks,
                        });
                    }
                }
            }
            Ok(None) => {
                if let Some(old) = term.take() {
                    tracing::warn!("another frontend holds the sequencer lease now");
                    end_term(old, &sequencing, &metrics).await;
                }
            }
            Err(e) => {
                tracing::error!("renewing the sequencer lease: {e}");
                // Unrenewed past its end, the lease may be another's: stop
                // before that (the fencing token refuses our batches anyway).
                if term
                    .as_ref()
                    .is_some_and(|t| t.renewed.elapsed() + config.renew >= config.ttl)
                {
                    if let Some(old) = term.take() {
                        end_term(old, &sequencing, &metrics).await;
                    }
                }
            }
        }
        let s = store.clone();
        if let Ok(Ok(Some(state))) = tokio::task::spawn_blocking(move || s.lease_state()).await {
            if let Ok(mut h) = metrics.leader_name.lock() {
                *h = state.holder;
            }
            metrics
                .lease_expires_ms
                .store(state.expires_in_ms, Ordering::Relaxed);
        }
        let wait = if term.is_some() {
            config.renew
        } else {
            config.poll
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            r = shutdown.changed() => if r.is_err() { break },
        }
    }
    if let Some(old) = term.take() {
        let lease = old.lease;
        end_term(old, &sequencing, &metrics).await;
        let (s, holder) = (store.clone(), config.holder.clone());
        match tokio::task::spawn_blocking(move || s.release_lease(&holder, lease)).await {
            Ok(Ok(())) => tracing::info!("released the sequencer lease"),
            Ok(Err(e)) => tracing::error!("releasing the sequencer lease: {e}"),
            Err(e) => tracing::error!("releasing the sequencer lease: {e}"),
        }
    }
}

/// How often every frontend reads the newest published checkpoint from the
/// store (the sequencing one also learns it directly from its witnessing).
pub const FOLLOW_PUBLISHED: Duration = Duration::from_millis(250);

/// Keeps `published` current with the store's newest published checkpoint,
/// so a frontend that does not sequence serves `/checkpoint` and proofs as
/// fresh as the one that does. Never goes back to a smaller size.
pub async fn follow_published(
    store: Arc<dyn LogStore>,
    published: watch::Sender<Option<Arc<Published>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let s = store.clone();
        if let Ok(Ok(Some(p))) =
            tokio::task::spawn_blocking(move || load_published(s.as_ref())).await
        {
            published.send_if_modified(|current| {
                let newer = current.as_ref().is_none_or(|c| {
                    p.checkpoint.size > c.checkpoint.size
                        || (p.checkpoint.size == c.checkpoint.size && p.bytes != c.bytes)
                });
                if newer {
                    *current = Some(Arc::new(p));
                }
                newer
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_PUBLISHED) => {}
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gone_process_of_this_boot_is_known_dead() {
        let boot = machine_id();
        assert!(
            boot.len() > 9,
            "Linux names its boot and PID namespace: {boot}"
        );
        // Beyond any pid_max: no such process.
        assert!(known_dead(&format!("web-1/{boot}/4000000000-abcd")));
        assert!(known_dead(&format!("a/b/c/{boot}/4000000000-abcd")));
        let me = std::process::id();
        assert!(!known_dead(&format!("web-1/{boot}/{me}-abcd")), "alive");
        assert!(
            !known_dead("web-1/00000000/4000000000-abcd"),
            "another boot"
        );
        assert!(!known_dead(&format!("web-1/{boot}/notapid-abcd")));
        assert!(!known_dead("garbage"));
        assert!(!known_dead(""));
        let named = LeaseConfig::named("web-1");
        assert!(named.holder.starts_with(&format!("web-1/{boot}/{me}-")));
        assert!(!known_dead(&named.holder));
    }
}
