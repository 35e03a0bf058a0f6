//! libFuzzer target: the `signed_record` parser (`Parser::SignedRecord`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::SignedRecord, data));
