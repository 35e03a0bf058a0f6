//! libFuzzer target: the `tlog_proof` parser (`Parser::TlogProof`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::TlogProof, data));
