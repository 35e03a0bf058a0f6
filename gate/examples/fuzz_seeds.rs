//! Writes every fuzzed parser's seeds to `<DIR>/<parser>/seed-<n>`: the
//! starting corpus of the libFuzzer targets (`scripts/fuzz-coverage` runs
//! it), from the same fixture the mutation harness uses.
//!
//! Usage: `cargo run -p daylight-gate --example fuzz_seeds -- DIR`

use std::path::PathBuf;

use daylight_gate::testkit::fuzz::{Fixture, Parser};

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds DIR");
        std::process::exit(2);
    };
    let fixture = Fixture::new();
    for p in Parser::ALL {
        let out = dir.join(p.name());
        std::fs::create_dir_all(&out)?;
        for (n, seed) in fixture.seeds(p).iter().enumerate() {
            std::fs::write(out.join(format!("seed-{n}")), seed)?;
        }
    }
    Ok(())
}
