//! The derived state of a Daylight log, persisted: one model of what the
//! log says, shared by the auditor, the web view and the gate.
//!
//! An entry's meaning is not in its bytes alone. Once later entries and
//! time have spoken, a request is sealed or overdue, an emergency ratified,
//! denied or unratified, an authorisation withdrawn, released or refused.
//! The [`Ledger`] takes entries in log order (the web view from its own
//! log, the auditor from its verified mirror) and keeps, incrementally:
//!
//! - each entry's facts ([`Summary`]: kind, signer, dates, the fields lists
//!   filter on and rules read), one row each;
//! - the links between entries, both ways: the valid references (an earlier
//!   entry with the leaf hash named) and each entry's story ([`Summary::root`],
//!   the authorisation it is about);
//! - the registry and policy records, kept whole, so a reader replays the
//!   registry at any point without reading the log;
//! - the statuses ([`Status`]), decided by one function
//!   ([`status::Facts::statuses`]) when an entry is added, when a later
//!   entry speaks of it, and when [`Ledger::tick`] passes its dates (under
//!   threshold custody, whether custodians' share releases put a key
//!   together is decided by [`custody::assembled`], also one function);
//! - the counters an overview or a report reads (per kind and month, per
//!   agency, statuses per month), and per day the span of indexes its
//!   entries take, which bounds a date range's list;
//! - what readers concluded (the auditor's findings), with the entries,
//!   so that a reader resumes where it stopped.
//!
//! It does no I/O beyond its SQLite file: no HTTP, no log access. Memory
//! stays flat however long the log: everything is in the file.
//!
//! Who uses it: `daylight-web` (lists, filters, counts and the status of
//! each entry), `daylight-auditor` (rules over what changed, findings kept
//! between runs, the transparency report) and `daylight gate verify
//! --mirror` (the entries that speak of the one a release is asked for).

pub mod custody;
pub mod status;
pub mod store;
pub mod summary;

pub use status::{Facts, Status, StatusSet};
pub use store::{Added, Batch, Ledger, LedgerError, Prepared, Use};
pub use summary::{OutcomeFacts, OutcomeNumbers, Summary};
