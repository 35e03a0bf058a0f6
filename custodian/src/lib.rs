//! A threshold-custody custodian (`daylight custodian serve`).
//!
//! A custodian holds one share of each escrowed key a provider split among
//! its custodians (`daylight escrow split`). It hands its share out only to
//! a request its own gate allows under its own policy, and only once its
//! own `release` receipt, naming the share, is proven in the log under that
//! policy (log key, witness quorum): so a key exists again only when `k`
//! custodians each logged a public, witnessed receipt. The share leaves
//! sealed (HPKE) to the requesting agency's registered key, bound to the
//! request and the custodian, never in clear.
//!
//! - [`service`]: what it does, as plain functions ([`Custodian`]).
//! - [`http`]: the axum routes over it.
//! - [`store`]: its SQLite database (shares; receipts kept before they are
//!   sent, so an interrupted release repeats the same receipt).
//! - [`log`]: the log as a [`LogClient`] (submit a record, fetch a proof),
//!   over HTTP ([`HttpLog`]), and the bounded [`wait_for_proof`].
//! - [`config`]: its directory and settings file.
//! - [`testing`]: a log for tests that fails on purpose.

pub mod config;
pub mod error;
pub mod http;
pub mod log;
pub mod service;
pub mod store;
pub mod testing;

pub use config::Config;
pub use error::CustodianError;
pub use log::{wait_for_proof, HttpLog, LogClient, LogError, WaitError};
pub use service::{
    Custodian, Info, ReceiptRef, ReleaseRequest, Released, Settings, DEFAULT_RECEIPT_TIMEOUT,
};
pub use store::{Store, Stored};
