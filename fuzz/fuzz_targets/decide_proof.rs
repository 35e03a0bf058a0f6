//! libFuzzer target: the `decide_proof` parser (`Parser::DecideProof`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::DecideProof, data));
