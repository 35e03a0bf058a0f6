//! libFuzzer target: the `note` parser (`Parser::Note`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::Note, data));
