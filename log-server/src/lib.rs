//! The Daylight log server: submission, sequencing, tiles, checkpoints, witness collection and proofs over SQLite.
//!
//! Not built yet: this crate only reserves its place in the workspace (see the
//! README's folder map and the open issue for this part). It exports nothing.
