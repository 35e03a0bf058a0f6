//! `daylight log` and `daylight agency submit` as separate processes: init,
//! register, serve, submit, revoke, shut down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    agency_submit, daylight, fails, free_port, generate_key, ok, request_draft, submit_output,
    wait_ready, Server,
};

#[test]
fn init_register_serve_submit_revoke() {
    init_register_serve_submit_revoke_on(None);
}

/// The same commands against a log kept in PostgreSQL.
#[test]
fn init_register_serve_submit_revoke_on_postgres() {
    let Some(schema) = daylight_log_server::postgres::ScratchSchema::for_tests() else {
        return;
    };
    init_register_serve_submit_revoke_on(Some(schema.url()));
}

/// With `database`, `log init` puts the log's state there; every other
/// command finds it through the log's directory.
fn init_register_serve_submit_revoke_on(database: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let agency_vkey = generate_key("agency.test", &p("agency.key"));

    let log_dir = p("log");
    let mut init = vec![
        "log",
        "init",
        "--dir",
        &log_dir,
        "--origin",
        "log.test/cli",
        "--quorum",
        "0",
    ];
    if let Some(url) = database {
        init.extend(["--database", url]);
        assert!(
            !tmp.path().join("log/log.db").exists(),
            "no SQLite file for a PostgreSQL log"
        );
    }
    let log_vkey = ok(&daylight(&init));
    if let Some(url) = database {
        assert!(!tmp.path().join("log/log.db").exists());
        let recorded = std::fs::read_to_string(tmp.path().join("log/database.url")).unwrap();
        assert_eq!(recorded.trim(), url);
        // A second log in the same database is refused.
        let again = fails(&daylight(&[
            "log",
            "init",
            "--dir",
            &p("log-again"),
            "--origin",
            "log.test/other",
            "--database",
            url,
        ]));
        assert!(again.contains("already holds the log"), "{again}");
    }
    assert!(log_vkey.starts_with("log.test/cli+"));
    assert!(fails(&daylight(&[
        "log",
        "init",
        "--dir",
        &p("log"),
        "--origin",
        "log.test/cli"
    ]))
    .contains("already holds a log"));
    assert!(ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey
    ]))
    .contains("at entry 0"));
    assert!(fails(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey
    ]))
    .contains("already registered"));
    assert!(fails(&daylight(&[
        "log",
        "add-witness",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey,
        "--url",
        "http://127.0.0.1:1"
    ]))
    .contains("cosignature"));
    assert!(fails(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        "garbage"
    ]))
    .contains("--vkey"));
    assert!(fails(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("nolog"),
        "--vkey",
        &agency_vkey
    ]))
    .contains("no log database"));

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args([
                "log",
                "serve",
                "--dir",
                &p("log"),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&url);

    let draft = request_draft(tmp.path(), "draft.json", |_| {});
    let index = agency_submit(&url, &p("agency.key"), &draft, &p("out"));
    assert_eq!(index, "1", "entry 0 is the registry entry");
    let entry = std::fs::read(p("out/entry")).unwrap();
    let record = daylight_schemas::SignedRecord::parse(&entry).unwrap();
    assert_eq!(record.kind(), daylight_schemas::Kind::Request);
    let proof = daylight_core::TlogProof::parse(&std::fs::read(p("out/proof")).unwrap()).unwrap();
    assert_eq!(proof.index, daylight_core::LeafIndex(1));
    let log_key = daylight_core::VerifierKey::parse(&log_vkey).unwrap();
    proof
        .verify(
            &entry,
            &daylight_core::WitnessPolicy::k_of_n(log_key, vec![], 0),
        )
        .unwrap();
    let opening = std::fs::read_to_string(p("out/opening.json")).unwrap();
    assert!(opening.contains("acct:4815162342"));
    assert!(
        !String::from_utf8_lossy(&entry).contains("acct:4815162342"),
        "no plaintext target in the log entry"
    );

    // The web index takes the record as the admission parsed it, without
    // a parse of its own, and `/metrics` counts it (entry 0, written
    // offline, is parsed).
    let want = "daylight_admitted_records_reused_total 1\n";
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, metrics) = common::http_get(&format!("{url}/metrics"));
        let metrics = String::from_utf8(metrics).unwrap();
        if metrics.contains(want) {
            assert!(
                metrics.contains("daylight_admitted_records_kept 0\n"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no {want:?} in {metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Revoked while the server runs: the next submission is refused.
    ok(&daylight(&[
        "log",
        "revoke",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey,
    ]));
    let err = fails(&submit_output(&url, &p("agency.key"), &draft, &p("out2")));
    assert!(err.contains("revoked_signer"), "{err}");

    // Ctrl-C: a graceful stop.
    let mut server = server;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }

    if database.is_some() {
        // The database out of reach: one clear line, for every command.
        std::fs::write(
            tmp.path().join("log/database.url"),
            "postgres://postgres@127.0.0.1:1/test\n",
        )
        .unwrap();
        let err = fails(&daylight(&[
            "log",
            "add-agency",
            "--dir",
            &p("log"),
            "--vkey",
            &agency_vkey,
        ]));
        assert!(err.contains("storage unreachable"), "{err}");
        let err = fails(&daylight(&["log", "serve", "--dir", &p("log")]));
        assert!(err.contains("storage unreachable"), "{err}");
    }
}

/// The name and nice value of each of `pid`'s threads, from procfs.
#[cfg(target_os = "linux")]
fn thread_nice_values(pid: u32) -> Vec<(String, i32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .map(|stat| daylight_log_server::priority::name_and_nice_in_stat(&stat).unwrap())
        .collect()
}

/// `log serve` raises its runtime's threads above the process's priority
/// where the process may (CAP_SYS_NICE or RLIMIT_NICE), and runs its
/// readers' threads at fixed offsets from the process's priority whatever
/// thread started them: the API's reads at it, tiles and the web index
/// below it. `/metrics` says whether it raised.
#[test]
#[cfg(target_os = "linux")]
fn serve_runs_its_runtime_above_its_readers() {
    let base = own_process_nice();
    let may = daylight_log_server::priority::may_raise_to(
        base - daylight_log_server::priority::RUNTIME_RAISE,
    );
    // The child has this process's capabilities and limits.
    serve_and_check_priorities(&[], may);
}

/// Without the capability (dropped with `setpriv` when this runs as root)
/// nor a limit that allows it, `log serve` keeps every thread at the
/// process's priority, its tile reads still below it, says so once, and
/// serves.
#[test]
#[cfg(target_os = "linux")]
fn serve_without_the_capability_keeps_the_process_priority() {
    use daylight_log_server::priority::{may_raise_to, rlimit_allows, RUNTIME_RAISE};
    let target = own_process_nice() - RUNTIME_RAISE;
    if rlimit_allows(target) {
        eprintln!("skipped: RLIMIT_NICE allows raising here, so no refusal can be shown");
        return;
    }
    let drop_cap = [
        "setpriv",
        "--inh-caps=-sys_nice",
        "--bounding-set=-sys_nice",
        "--",
    ];
    let wrapper: &[&str] = if !may_raise_to(target) {
        &[]
    } else {
        // The capability is dropped for the server, if setpriv can here.
        let probe = Command::new(drop_cap[0])
            .args(&drop_cap[1..])
            .arg("true")
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            eprintln!("skipped: setpriv cannot drop CAP_SYS_NICE here");
            return;
        }
        &drop_cap
    };
    let stderr = serve_and_check_priorities(wrapper, false);
    assert!(
        stderr.contains("the server's runtime threads run at the process's priority"),
        "no warning: {stderr}"
    );
}

/// This process's nice value, as its children start with.
#[cfg(target_os = "linux")]
fn own_process_nice() -> i32 {
    daylight_log_server::priority::process_nice().unwrap()
}

/// Serves a one-entry log with `daylight log serve` (behind `wrapper`, a
/// command and its arguments, if any), reads a tile, an entry and a page so
/// that every pool starts, and checks each thread's nice value against the
/// process's: the runtime's raised by `RUNTIME_RAISE` and the sequencer's by
/// `WRITE_RAISE` if `raised`, the API's reads at it, tiles and the web index
/// `READ_NICE` below it; and `/metrics`. The server's stderr.
#[cfg(target_os = "linux")]
fn serve_and_check_priorities(wrapper: &[&str], raised: bool) -> String {
    use daylight_log_server::priority::{self, RUNTIME_RAISE, WRITE_RAISE};
    use daylight_log_server::read_pool::READ_NICE;
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let dir = p("log");
    common::new_log_with_agency(&dir, "log.test/nice", "0", &p("agency.key"));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_daylight");
    let serve = ["log", "serve", "--dir", &dir, "--listen", &listen];
    let mut argv: Vec<&str> = wrapper.to_vec();
    argv.push(bin);
    argv.extend(serve);
    let log = std::fs::File::create(tmp.path().join("serve.log")).unwrap();
    let server = Server(
        Command::new(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_ready(&url);
    // Each pool starts on first use: a tile, an entry, a page.
    for path in ["/tile/0/000.p/1", "/api/v1/entries/0", "/entries"] {
        let (status, body) = common::http_get(&format!("{url}{path}"));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (_, metrics) = common::http_get(&format!("{url}/metrics"));
    let metrics = String::from_utf8(metrics).unwrap();
    let line = format!("daylight_runtime_priority_raised {}\n", u8::from(raised));
    assert!(metrics.contains(&line), "no {line:?} in the metrics");
    // The process's priority is its main thread's, named after the binary.
    let pid = server.0.id();
    let base = thread_nice_values(pid)
        .into_iter()
        .find(|(n, _)| n == "daylight")
        .unwrap()
        .1;
    let runtime = if raised { base - RUNTIME_RAISE } else { base };
    // The sequencer's threads: the write path's value where the limit
    // allows it, else the runtime's.
    let write_path = match (raised, priority::may_raise_to(base - WRITE_RAISE)) {
        (true, true) => base - WRITE_RAISE,
        (true, false) => runtime,
        (false, _) => base,
    };
    // Tokio names its worker and blocking threads alike; the sequencer's
    // two threads are `sequencer` and `sequencer-sync`.
    let expected = [
        ("tokio-rt", runtime),
        ("sequencer", write_path),
        ("read-api-", base),
        ("read-tiles-", base + READ_NICE),
        ("web-index", base + READ_NICE),
    ];
    let wrong = |threads: &[(String, i32)]| -> Vec<String> {
        let mut wrong = Vec::new();
        for (prefix, nice) in expected {
            let found: Vec<_> = threads
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .collect();
            if found.is_empty() {
                wrong.push(format!("no {prefix} thread"));
            }
            for (name, n) in found {
                if *n != nice.clamp(-20, 19) {
                    wrong.push(format!("{name} at {n}, not {nice}"));
                }
            }
        }
        wrong
    };
    // A pool's threads set their own value as they start, just after the
    // pool's first job may have run: read again for up to 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut threads = thread_nice_values(pid);
    while !wrong(&threads).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        threads = thread_nice_values(pid);
    }
    assert_eq!(
        wrong(&threads),
        Vec::<String>::new(),
        "process at {base}: {threads:?}"
    );
    drop(server);
    std::fs::read_to_string(tmp.path().join("serve.log")).unwrap()
}
