//! libFuzzer target: the `tile_path` parser (`Parser::TilePath`).
#![no_main]

use daylight_fuzz::{run, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Parser::TilePath, data));
