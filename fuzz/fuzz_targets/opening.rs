//! libFuzzer target: the `opening` parser (`Parser::Opening`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::Opening, data));
