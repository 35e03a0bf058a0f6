//! libFuzzer target: the `draft` parser (`Parser::Draft`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::Draft, data));
