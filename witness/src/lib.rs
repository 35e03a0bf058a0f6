//! A C2SP tlog-witness server that never cosigns a fork or a rollback.
//!
//! - [`store`]: the state per log in SQLite (WAL, synchronous commits).
//! - [`witness`]: [`Witness::add_checkpoint`], the protocol's checks and the
//!   atomic state change, independent of HTTP.
//! - [`server`]: the axum routes over a [`Witness`].
//!
//! The wire formats are in [`daylight_core::witness_protocol`], shared with the
//! log server, which is this protocol's client.

pub mod server;
pub mod store;
pub mod witness;

pub use server::{router, serve};
pub use store::{AddLog, LogRecord, StoreError, DB_FILE, KEY_FILE};
pub use witness::{
    check_add_checkpoint, signed_note, CheckedCheckpoint, LogView, Witness, WitnessError,
};
