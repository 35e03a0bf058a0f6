//! Clock skew between a log's witnesses and the provider: a witness whose
//! clock runs ahead or behind (run under libfaketime) still cosigns, and the
//! gate judges the cosignature's timestamp against its own clock: a few
//! minutes ahead is tolerated, ten minutes ahead is refused as from the
//! future, and a clock far behind makes the checkpoint too old for a strict
//! policy. Separate processes, as deployed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{
    agency_submit, daylight, free_port, gate_policy, new_log_with_agency, ok, request_draft,
    serve_log, wait_ready, Server,
};

/// libfaketime's preload library, or None (and the test is skipped unless it
/// is required). The library is preloaded into the witness directly rather
/// than through the `faketime` wrapper, which would leave the witness running
/// as an orphan when the wrapper is killed.
fn faketime() -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", "ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n 1"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| !p.is_empty());
    if found.is_none() {
        assert!(
            std::env::var("DAYLIGHT_REQUIRE_FAKETIME").as_deref() != Ok("1"),
            "libfaketime is required (DAYLIGHT_REQUIRE_FAKETIME=1) but not installed"
        );
        eprintln!("skipping: libfaketime not installed");
    }
    found
}

/// The gate's one-line answer for a bundle made with a witness whose clock is
/// off by `skew` (a faketime offset such as "+600s"), under `max_age`.
fn gate_answer(faketime: &str, skew: &str, max_age: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_owned();
    let origin = "skew.test/log";
    let log_vkey = new_log_with_agency(&p("log"), origin, "1", &p("agency.key"));
    let wvkey = ok(&daylight(&[
        "witness",
        "init",
        "--dir",
        &p("w"),
        "--name",
        "w.test",
    ]));
    ok(&daylight(&[
        "witness",
        "add-log",
        "--dir",
        &p("w"),
        "--origin",
        origin,
        "--vkey",
        &log_vkey,
    ]));
    let waddr = format!("127.0.0.1:{}", free_port());
    let _witness = Server(
        Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args(["witness", "serve", "--dir", &p("w"), "--listen", &waddr])
            .env("LD_PRELOAD", faketime)
            .env("FAKETIME", skew)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&waddr);
    ok(&daylight(&[
        "log",
        "add-witness",
        "--dir",
        &p("log"),
        "--vkey",
        &wvkey,
        "--url",
        &format!("http://{waddr}"),
    ]));
    let (_log, url) = serve_log(&p("log"));
    let draft = request_draft(tmp.path(), "draft.json", |v| {
        v["provider"] = "messenger.example".into()
    });
    agency_submit(&url, &p("agency.key"), &draft, &p("b"));
    let policy = gate_policy(&url, "messenger.example", &["--max-age", max_age]);
    std::fs::write(p("policy"), format!("{policy}\n")).unwrap();
    let o = daylight(&[
        "gate",
        "verify",
        "--policy",
        &p("policy"),
        "--entry",
        &p("b/entry"),
        "--proof",
        &p("b/proof"),
    ]);
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

#[test]
fn witness_clock_skew_is_judged_by_the_gate() {
    let Some(lib) = faketime() else { return };
    let ft = lib.as_str();
    // Two minutes ahead: within the gate's tolerance.
    let a = gate_answer(ft, "+120s", "86400");
    assert!(a.starts_with("ALLOW"), "{a}");
    // Ten minutes ahead: a cosignature from the future is refused.
    let a = gate_answer(ft, "+600s", "86400");
    assert!(a.starts_with("DENY checkpoint_in_future"), "{a}");
    // Two hours behind: too old for a one-hour policy, fine for a day.
    let a = gate_answer(ft, "-7200s", "3600");
    assert!(a.starts_with("DENY checkpoint_too_old"), "{a}");
    let a = gate_answer(ft, "-7200s", "86400");
    assert!(a.starts_with("ALLOW"), "{a}");
}
