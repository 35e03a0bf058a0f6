//! libFuzzer target: the `witness_responses` parser (`Parser::WitnessResponses`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::WitnessResponses, data));
