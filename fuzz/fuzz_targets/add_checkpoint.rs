//! libFuzzer target: the `add_checkpoint` parser (`Parser::AddCheckpoint`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::AddCheckpoint, data));
