//! libFuzzer target: the `signer_key` parser (`Parser::SignerKey`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::SignerKey, data));
