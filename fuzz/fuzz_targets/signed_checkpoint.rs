//! libFuzzer target: the `signed_checkpoint` parser (`Parser::SignedCheckpoint`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::SignedCheckpoint, data));
