//! A C2SP tlog-witness server that never cosigns a fork or a rollback.
//!
//! Not built yet: this crate only reserves its place in the workspace (see the
//! README's folder map and the open issue for this part). It exports nothing.
