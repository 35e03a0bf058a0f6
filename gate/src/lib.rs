//! The provider's escrow gate: offline verification of a proof bundle under a policy.
//!
//! Not built yet: this crate only reserves its place in the workspace (see the
//! README's folder map and the open issue for this part). It exports nothing.
