//! Daylight's records: request, emergency, ratification, extension, disclosure, release, withdrawal, outcome and registry entries; canonical encoding and validation.
//!
//! Not built yet: this crate only reserves its place in the workspace (see the
//! README's folder map and the open issue for this part). It exports nothing.
