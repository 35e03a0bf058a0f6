//! libFuzzer target: the `entry_bundle` parser (`Parser::EntryBundle`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::EntryBundle, data));
