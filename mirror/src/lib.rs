//! A C2SP tlog-mirror: logs push their checkpoints (`add-checkpoint`) and
//! entries (`add-entries`) to it; it verifies every package's subtree
//! consistency proof against the log-signed pending checkpoint, stores the
//! entries durably, and only then cosigns the checkpoint (Ed25519
//! cosignature/v1). It serves each mirrored log read-only as C2SP
//! tlog-tiles under `/<hex sha256(origin)>/`.
//!
//! - [`store`]: the state in SQLite (WAL, `synchronous=FULL`).
//! - [`mirror`]: [`Mirror`], the protocol's checks and state changes,
//!   independent of HTTP.
//! - [`server`]: the axum routes over a [`Mirror`].
//! - [`follow`]: pull mode, the mirror following a log's tiles by itself
//!   through the same checks and durable path as a push.
//!
//! The add-checkpoint checks are the witness's own
//! ([`daylight_witness::check_add_checkpoint`]); the wire formats are in
//! [`daylight_core::mirror_protocol`].

pub mod follow;
pub mod mirror;
pub mod server;
pub mod store;

pub use follow::{FollowError, Polled};
pub use mirror::{Mirror, MirrorError, Upload};
pub use server::{router, serve};
pub use store::{AddLog, Follow, LogRecord, StoreError, DB_FILE, KEY_FILE};

/// Seconds since the Unix epoch, 0 if the clock is before it.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
