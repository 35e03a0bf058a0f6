//! libFuzzer target: the `verifier_key` parser (`Parser::VerifierKey`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::VerifierKey, data));
