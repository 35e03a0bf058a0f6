//! libFuzzer target: the `policy` parser (`Parser::Policy`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::Policy, data));
