//! Building and running the Go interoperability oracle (`interop.go` beside
//! this file), shared by `core/tests/go_interop.rs` and the tests of other
//! workspace members that ask Go about what they produce (included with
//! `#[path]`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const DEFAULT_GOPATH: &str = "/usr/share/gocode";

// ---------------------------------------------------------------------------
// Running Go
// ---------------------------------------------------------------------------

pub fn go_required() -> bool {
    std::env::var("DAYLIGHT_REQUIRE_GO").is_ok_and(|v| v == "1")
}

pub fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop")
}

fn gopath() -> PathBuf {
    std::env::var_os("DAYLIGHT_GOPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_GOPATH))
}

/// `go` with a hermetic environment: GOPATH mode against Debian's sources,
/// our own build cache, no network, no cgo.
fn go_command() -> Command {
    let mut cmd = Command::new("go");
    cmd.env("GO111MODULE", "off")
        .env("GOPATH", gopath())
        .env("GOCACHE", work_dir().join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("CGO_ENABLED", "0");
    cmd
}

enum GoSetup {
    Ready(PathBuf),
    Missing(String),
}

fn build_interop() -> Result<GoSetup, String> {
    let version = match go_command().arg("version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => {
            return Ok(GoSetup::Missing(format!(
                "`go version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
        Err(e) => return Ok(GoSetup::Missing(format!("cannot run `go`: {e}"))),
    };
    let note_src = gopath().join("src/golang.org/x/mod/sumdb/note/note.go");
    let tlog_src = gopath().join("src/golang.org/x/mod/sumdb/tlog/tlog.go");
    for src in [&note_src, &tlog_src] {
        if !src.is_file() {
            return Ok(GoSetup::Missing(format!(
                "{version} found, but not {} (install golang-golang-x-mod-dev or set DAYLIGHT_GOPATH)",
                src.display()
            )));
        }
    }
    let dir = work_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Build under a private name, then rename: concurrent test processes
    // never run a half-written binary.
    let tmp = dir.join(format!("interop.{}.tmp", std::process::id()));
    let bin = dir.join("interop");
    // From the core crate or another workspace member alike.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/go/interop.go");
    let out = go_command()
        .arg("build")
        .arg("-o")
        .arg(&tmp)
        .arg(&source)
        .output()
        .map_err(|e| format!("running go build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "go build {} failed ({version}):\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &bin).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
    eprintln!("go interop: built {} with {version}", bin.display());
    Ok(GoSetup::Ready(bin))
}

/// The interop binary, or None (after saying so) when Go is not installed
/// and not required.
pub fn interop() -> Option<PathBuf> {
    static SETUP: OnceLock<Result<GoSetup, String>> = OnceLock::new();
    match SETUP.get_or_init(build_interop) {
        Ok(GoSetup::Ready(bin)) => Some(bin.clone()),
        Ok(GoSetup::Missing(why)) => {
            if go_required() {
                panic!("DAYLIGHT_REQUIRE_GO=1 but Go is not usable: {why}");
            }
            // Once, as one write straight to stderr, past the test harness's
            // output capture, so the skip shows in an ordinary `cargo test`.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let line = format!(
                    "\nskipping: go not installed (needs Debian golang-go and golang-golang-x-mod-dev): {why}\n"
                );
                let _ = std::io::stderr().write_all(line.as_bytes());
            });
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Runs one job through Go and returns its JSON results. Any failure Go
/// itself detected (an expectation not met) fails the test here.
pub fn run_go(bin: &Path, name: &str, job: &Value) -> Value {
    let result = run_go_raw(bin, name, job);
    let failures = result["failures"]
        .as_array()
        .expect("Go reports its failures");
    assert!(
        failures.is_empty(),
        "Go disagreed on job {name}: {failures:?}"
    );
    result
}

/// Runs one job through Go and returns its JSON results, failures included
/// (for tests that expect Go to refuse something).
pub fn run_go_raw(bin: &Path, name: &str, job: &Value) -> Value {
    let path = work_dir().join(format!("{name}.{}.job.json", std::process::id()));
    let bytes = serde_json::to_vec_pretty(job).expect("a JSON value serializes");
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let out = Command::new(bin)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "go interop ({name}, job {}) exited {} without JSON ({e}):\n{stderr}",
            path.display(),
            out.status
        )
    });
    let failed = result["failures"].as_array().is_some_and(|f| !f.is_empty());
    // Exit 1 goes with failures listed; anything else is the oracle broken.
    assert!(
        out.status.success() != failed,
        "go interop ({name}) exited {} with failures {failed}:\n{stderr}",
        out.status
    );
    let _ = std::fs::remove_file(&path);
    result
}
