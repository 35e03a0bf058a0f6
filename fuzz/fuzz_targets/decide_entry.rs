//! libFuzzer target: the `decide_entry` parser (`Parser::DecideEntry`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::DecideEntry, data));
