//! The README's "Run a log" walkthrough, run as written: the shell block is
//! read from README.md at test time and run by bash in an empty directory,
//! so the first thing a user tries cannot break silently.
//!
//! Two things differ from a user's run, both outside the block's text:
//! `cargo build --release` (its first line) is checked and skipped, with
//! `target/release/daylight` in the directory a link to the binary under
//! test; and the two listen addresses (127.0.0.1:8080 and :7380) are
//! replaced by free ports, so that the test never meets another server.
//! Any command that fails fails the test (`bash -e -o pipefail`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;

/// The first ```sh block of the README section headed `heading`.
fn shell_block(readme: &str, heading: &str) -> String {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with(heading) && s[heading.len()..].starts_with('\n'))
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let start = section
        .find("```sh\n")
        .unwrap_or_else(|| panic!("section {heading:?} has no ```sh block"))
        + "```sh\n".len();
    let len = section[start..].find("```").expect("the block ends");
    section[start..start + len].to_owned()
}

const LOG_ADDR: &str = "127.0.0.1:8080";
const WITNESS_ADDR: &str = "127.0.0.1:7380";

#[test]
fn run_a_log_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let block = shell_block(&readme, "Run a log");

    // The build line is the block's first command: checked, then skipped
    // (the test already has the binary).
    let mut lines = block.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.trim_start().starts_with("cargo build --release"),
        "the walkthrough no longer starts with `cargo build --release`: {first:?}"
    );
    let rest: Vec<&str> = lines.collect();
    let mut script = rest.join("\n");
    assert!(
        script.contains("D=target/release/daylight"),
        "the walkthrough no longer runs target/release/daylight"
    );
    for addr in [LOG_ADDR, WITNESS_ADDR] {
        assert!(
            script.contains(addr),
            "the walkthrough no longer uses {addr}"
        );
    }
    let log_port = free_port();
    let witness_port = free_port();
    script = script
        .replace(LOG_ADDR, &format!("127.0.0.1:{log_port}"))
        .replace(WITNESS_ADDR, &format!("127.0.0.1:{witness_port}"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_daylight"),
        dir.path().join("target/release/daylight"),
    )
    .unwrap();

    // Whatever happens, the servers the block started in the background
    // stop with it. `|| true`: after the block's own `kill`, a job may be
    // gone by the time the trap runs, and under `-e` a failing `kill` in
    // the trap would make the whole walkthrough fail (seen in CI).
    let wrapped = format!("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n");
    let mut child = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &wrapped])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run bash");
    let pgid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            let _ = child.wait();
            panic!("the walkthrough did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "the walkthrough failed ({status}).\nstdout:\n{out}\nstderr:\n{err}"
    );

    // `agency submit` printed the index and wrote the bundle.
    let index = out.lines().last().unwrap_or_default().trim();
    assert!(
        index.parse::<u64>().is_ok(),
        "the last line printed is not the submitted entry's index: {out}"
    );
    for file in ["entry", "proof", "opening.json"] {
        let path = dir.path().join("bundle").join(file);
        assert!(
            std::fs::metadata(&path)
                .map(|m| m.len() > 0)
                .unwrap_or(false),
            "{} missing or empty",
            path.display()
        );
    }
    let opening = std::fs::read_to_string(dir.path().join("bundle/opening.json")).unwrap();
    assert!(opening.contains("acct:example-target-1"), "{opening}");

    // The block's last line stopped both servers.
    let free_again = Instant::now() + Duration::from_secs(10);
    for port in [log_port, witness_port] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                Instant::now() < free_again,
                "something still listens on {port} after the walkthrough"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_block_is_found_and_a_failing_command_fails_it() {
    // The extraction finds the block of the named section only.
    let readme = "# X\n\n## Run a log\n\n```sh\ncargo build --release\nfalse\n```\n\n## Run a log again\n\n```sh\ntrue\n```\n";
    assert_eq!(
        shell_block(readme, "Run a log"),
        "cargo build --release\nfalse\n"
    );
    // And bash -e stops at a failing command, as the walkthrough test relies on.
    let status = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", "false\necho reached"])
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(status.stdout.is_empty());
}
