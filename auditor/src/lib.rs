//! Mirrors a Daylight log through its tiles, verifies it, applies the accountability rules and reports.
//!
//! Not built yet: this crate only reserves its place in the workspace (see the
//! README's folder map and the open issue for this part). It exports nothing.
