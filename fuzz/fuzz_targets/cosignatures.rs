//! libFuzzer target: the `cosignatures` parser (`Parser::Cosignatures`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::Cosignatures, data));
