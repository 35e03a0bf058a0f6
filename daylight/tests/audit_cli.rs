//! `daylight audit` against a real `daylight log serve`, all separate
//! processes: clean (exit 0), a rule finding (exit 1), the transparency
//! report, and a fork of the log with its own key (exit 2 with evidence).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{daylight, new_log_with_agency, ok, serve_log as serve, submit_case};

fn findings(dir: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(Path::new(dir).join("findings.json")).unwrap()).unwrap()
}

#[test]
fn audit_a_real_log_then_catch_a_fork() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    new_log_with_agency(&p("log"), "log.test/audit", "0", &p("agency.key"));
    {
        let (_server, url) = serve(&p("log"));
        for case in ["A-1", "A-2", "A-3"] {
            submit_case(&url, &p("agency.key"), tmp.path(), case);
        }

        // Clean: exit 0, findings.json, a summary on stdout.
        let out = daylight(&["audit", "--log", &url, "--dir", &p("audit")]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("CLEAN"), "{stdout}");
        let f = findings(&p("audit"));
        assert_eq!(f["status"], "clean");
        assert_eq!(f["entries_audited"], 4);

        // The same log a year and more later: the disclosures are overdue.
        let out = daylight(&[
            "audit",
            "--log",
            &url,
            "--dir",
            &p("audit"),
            "--now",
            "2100-01-01T00:00:00Z",
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let f = findings(&p("audit"));
        assert_eq!(f["status"], "findings");
        let list = f["findings"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.iter().all(|x| x["id"] == "disclosure_overdue"));
        assert_eq!(list[0]["entries"], serde_json::json!([1]));

        // The transparency report.
        let md = ok(&daylight(&["audit", "report", "--dir", &p("audit")]));
        assert!(
            md.contains("Authorisations (requests and emergencies): 3"),
            "{md}"
        );
        let csv = std::fs::read_to_string(p("audit/report/report.csv")).unwrap();
        assert!(csv.contains("kind,\"request\",3,1 2 3"), "{csv}");
        assert!(Path::new(&p("audit/report/report.json")).is_file());

        // A follow run with a bound stops by itself.
        let out = daylight(&[
            "audit",
            "--log",
            &url,
            "--dir",
            &p("audit"),
            "--follow",
            "--interval",
            "1",
            "--max-rounds",
            "2",
        ]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .matches("CLEAN")
                .count(),
            2
        );
    }

    // Fork: a copy of the log (same key), each copy then signs a different
    // entry at the same size. The auditor saw one; the other is exit 2.
    copy_dir(&p("log"), &p("fork"));
    let (server, url) = serve(&p("log"));
    submit_case(&url, &p("agency.key"), tmp.path(), "B-1");
    let out = daylight(&["audit", "--log", &url, "--dir", &p("audit")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(server);
    let (_fork, fork_url) = serve(&p("fork"));
    submit_case(&fork_url, &p("agency.key"), tmp.path(), "B-2");
    let out = daylight(&["audit", "--log", &fork_url, "--dir", &p("audit")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("INTEGRITY FAILURE"), "{stdout}");
    let f = findings(&p("audit"));
    let list = f["findings"].as_array().unwrap();
    let fork = list
        .iter()
        .find(|x| x["id"] == "checkpoint_inconsistent")
        .unwrap();
    let evidence = fork["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 2);
    let a = std::fs::read(Path::new(&p("audit")).join(evidence[0].as_str().unwrap())).unwrap();
    let b = std::fs::read(Path::new(&p("audit")).join(evidence[1].as_str().unwrap())).unwrap();
    assert_ne!(a, b);

    // Could not run at all: exit 3, one line on stderr.
    let out = daylight(&["audit", "--log", "http://127.0.0.1:1", "--dir", &p("other")]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}

fn copy_dir(from: &str, to: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = Path::new(to).join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(e.path().to_str().unwrap(), dest.to_str().unwrap());
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
