//! The provider's escrow gate: the offline release decision.
//!
//! Given a [`Policy`], the entry bytes, the C2SP tlog-proof, optionally the
//! agency's opening and the target asked about, and the current time,
//! [`decide`] answers [`Decision::Allow`] (with what was allowed) or
//! [`Decision::Deny`] with a stable [`ReasonCode`]. Every check fails closed.
//! [`decide_later`] also weighs what the log holds after the entry: a
//! court's ratification (a second bundle) and the provider's verified
//! mirror ([`MirrorView`]: withdrawals, the registry, courts' denials).
//!
//! The crate does no I/O, reads no clock, draws no randomness and keeps no
//! state: it can run inside a provider's HSM wrapper. `gate/README.md` has a
//! provider's quick start and documents every reason code.
//!
//! ```
//! use daylight_gate::{decide, testkit::World, Decision};
//! # use chrono::{Duration, Utc};
//! let now = Utc::now();
//! let mut world = World::new();
//! let draft = World::request_draft(daylight_gate::testkit::PROVIDER, now - Duration::hours(1));
//! let bundle = world.bundle(&draft, now - Duration::hours(1), now.timestamp() as u64 - 60).unwrap();
//! let policy = world.policy();
//! let decision = decide(
//!     &policy,
//!     &bundle.entry,
//!     &bundle.proof,
//!     Some((&bundle.opening, daylight_gate::testkit::TARGET)),
//!     now,
//! );
//! assert!(matches!(decision, Decision::Allow(_)), "{decision}");
//! ```

pub mod decision;
pub mod later;
pub mod policy;
pub mod release;
pub mod testkit;

pub use decision::{
    decide, decide_later, parse_opening, verify_entry, Allowed, Decision, Denied, Included,
    ReasonCode, Refused, MAX_CLOCK_SKEW,
};
pub use later::{Later, MirrorInput, MirrorView};
pub use policy::{LogKey, Policy, PolicyError, RetiredLogKey, TlogMirror};
pub use release::{policy_record, refusal_receipt, release_receipt, ReleaseError};
