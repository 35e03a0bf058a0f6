//! The Daylight log server: submission, sequencing, tiles, checkpoints,
//! witness collection and proofs, over one storage trait with SQLite as the
//! embedded default and PostgreSQL beside it.
//!
//! - [`store`]: the storage trait; [`sqlite`]: its SQLite backend (the
//!   embedded default); [`postgres`]: its PostgreSQL backend (past one machine);
//!   [`codec`]: entries' record bytes compressed with a zstd dictionary
//!   trained on the log's own first entries.
//! - [`integrate`]: growing the tree by a batch, in one transaction;
//!   [`durability`]: the filesystem syncs that make committed batches durable.
//! - [`sequencer`]: batching submissions and answering their indexes.
//! - [`leader`]: which of several frontends sequences (a lease with fencing).
//! - [`witnessing`]: collecting witness cosignatures, publishing checkpoints.
//! - [`publish`]: writing tiles, bundles and checkpoints to a bucket or directory.
//! - [`admission`]: which records may enter the log (registry, signatures, rules);
//!   [`admitted`]: the records it parsed, kept a while for the web index;
//!   [`signatures`]: the signatures of concurrent submissions checked in batches.
//! - [`api`]: the HTTP routes; [`openapi`]: their OpenAPI 3.1 document;
//!   [`server`]: running it all; [`priority`]: its runtime's threads above
//!   the readers' work; [`read_pool`]: the readers' threads.

pub mod admission;
pub mod admitted;
pub mod api;
pub mod codec;
mod dedup;
pub mod durability;
pub mod error;
pub mod integrate;
pub mod leader;
pub mod metrics;
pub mod openapi;
mod pool;
pub mod postgres;
pub mod priority;
pub mod publish;
pub mod read_pool;
pub mod sequencer;
pub mod server;
pub mod signatures;
pub mod sqlite;
pub mod store;
pub mod witnessing;
