//! libFuzzer target: the `checkpoint` parser (`Parser::Checkpoint`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::Checkpoint, data));
