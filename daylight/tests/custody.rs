//! Threshold custody across processes: a real log with two witnesses,
//! custodians run by `daylight custodian serve`, a key split by `daylight
//! escrow split` and recovered by `daylight escrow recover`.
//!
//! - 2 of 3: recovered with one custodian stopped; not with only one
//!   answering; each answer's receipt is a share release in the log.
//! - A custodian killed (SIGKILL) while its receipt waits for a cosigned
//!   checkpoint (the witnesses are stopped) released nothing; restarted, it
//!   answers with the same receipt, logged once.
//! - Every custodian denies every tampered bundle (a changed digit in the
//!   entry, another index, the cosignatures dropped, a changed salt,
//!   another target) with the gate's 403, and nothing reaches the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const ORIGIN: &str = "log.custody.test";
const PROVIDER: &str = "messenger.example";

/// A custodian: its directory, address and process (if running).
struct Custodian {
    dir: String,
    addr: String,
    vkey: String,
    server: Option<Server>,
}

impl Custodian {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts (or restarts) `custodian serve` on its address.
    fn start(&mut self, log: &Path) {
        self.server = Some(spawn_logged(
            &[
                "custodian",
                "serve",
                "--dir",
                &self.dir,
                "--listen",
                &self.addr,
                "--receipt-timeout",
                "60",
            ],
            log,
        ));
        wait_ready(&self.addr);
    }
}

/// Under `dir`: a witnessed log with the agency and the provider, `n`
/// custodians (`custodian-{a,b,c}.test`) made with the provider's policy
/// from the log, registered, and serving; a request submitted (its bundle
/// in `dir/case-1` with a `target` file). The log, the custodians and the
/// bundle.
fn world(dir: &Path, n: usize) -> (WitnessedLog, Vec<Custodian>, std::path::PathBuf) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let log = witnessed_log(dir, ORIGIN, true);
    std::fs::write(p("policy"), gate_policy(&log.url, PROVIDER, &[])).unwrap();
    let provider_vkey = ok(&daylight(&["key", "public", "--key", &p("provider.key")]));
    let mut custodians = Vec::new();
    for name in ["a", "b", "c"].into_iter().take(n) {
        let cdir = p(&format!("custodian-{name}"));
        let vkey = ok(&daylight(&[
            "custodian",
            "init",
            "--dir",
            &cdir,
            "--name",
            &format!("custodian-{name}.test"),
            "--policy",
            &p("policy"),
            "--log",
            &log.url,
            "--depositor",
            &provider_vkey,
        ]));
        // The shares are readable by the custodian's owner only.
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |f: &str| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&cdir), 0o700, "{cdir}");
            assert_eq!(mode(&format!("{cdir}/custodian.db")), 0o600);
            assert_eq!(mode(&format!("{cdir}/custodian.key")), 0o600);
        }
        ok(&daylight(&[
            "log",
            "add-custodian",
            "--dir",
            &p("log"),
            "--vkey",
            &vkey,
        ]));
        let mut c = Custodian {
            dir: cdir,
            addr: format!("127.0.0.1:{}", free_port()),
            vkey,
            server: None,
        };
        c.start(&dir.join("custodians.log"));
        custodians.push(c);
    }
    let bundle = submit_case(&log.url, &p("agency.key"), dir, "case-1");
    let opening: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("opening.json")).unwrap()).unwrap();
    let target = opening["targets"][0]["target"].as_str().unwrap().to_owned();
    std::fs::write(bundle.join("target"), format!("{target}\n")).unwrap();
    (log, custodians, bundle)
}

/// `escrow split` of a fresh key (written to `dir/escrow.key`) among
/// `custodians`, threshold `k`, each pinned to its key; the output.
fn split(dir: &Path, custodians: &[Custodian], k: &str, key_args: &[&str]) -> std::process::Output {
    let target = std::fs::read_to_string(dir.join("case-1/target")).unwrap();
    let provider_key = dir.join("provider.key");
    let mut args = vec![
        "escrow".to_owned(),
        "split".into(),
        "--provider-key".into(),
        provider_key.to_str().unwrap().into(),
        "--target".into(),
        target.trim().into(),
        "--threshold".into(),
        k.into(),
    ];
    for c in custodians {
        args.extend([
            "--custodian".into(),
            c.url(),
            "--custodian-vkey".into(),
            c.vkey.clone(),
        ]);
    }
    args.extend(key_args.iter().map(|a| a.to_string()));
    daylight(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `escrow recover` of the bundle from the custodians at `urls`.
fn recover(dir: &Path, log: &str, urls: &[String], out: &str) -> std::process::Output {
    let bundle = dir.join("case-1");
    let agency = dir.join("agency.key");
    let mut args = vec![
        "escrow",
        "recover",
        "--bundle",
        bundle.to_str().unwrap(),
        "--key",
        agency.to_str().unwrap(),
        "--log",
        log,
        "--out",
        out,
    ];
    for u in urls {
        args.extend(["--custodian", u.as_str()]);
    }
    daylight(&args)
}

/// The receipt indices in `escrow recover`'s output, by custodian name.
fn receipts(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter(|l| l.starts_with("share "))
        .map(|l| {
            let name = l.split(" from ").nth(1).unwrap().split('+').next().unwrap();
            let index = l.rsplit(' ').next().unwrap().parse().unwrap();
            (name.to_owned(), index)
        })
        .collect()
}

/// The record at `index` in the log at `url`, as JSON.
fn record(url: &str, index: u64) -> serde_json::Value {
    let (status, body) = http_get(&format!("{url}/api/v1/entries/{index}"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["record"].clone()
}

/// Asserts the record is a share release by `custodian` for the request
/// at `request`.
fn assert_share_release(r: &serde_json::Value, custodian: &str, request: u64) {
    assert_eq!(r["kind"], "release", "{r}");
    assert_eq!(r["signer"]["name"], custodian, "{r}");
    assert_eq!(r["body"]["entry"]["index"], request, "{r}");
    assert!(r["body"]["share"]["key"].is_string(), "{r}");
}

fn request_index(bundle: &Path) -> u64 {
    let proof = std::fs::read_to_string(bundle.join("proof")).unwrap();
    proof
        .lines()
        .find_map(|l| l.strip_prefix("index "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn two_of_three_custodians_recover_the_key_and_one_alone_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (log, mut custodians, bundle) = world(dir, 3);
    let key_out = dir.join("escrow.key");

    // k < 2 and k > n are refused before anything is deposited.
    for k in ["1", "4"] {
        let err = fails(&split(
            dir,
            &custodians,
            k,
            &["--generate", "--key-out", "/nonexistent/x"],
        ));
        assert!(err.contains("--threshold"), "{err}");
    }
    let out = ok(&split(
        dir,
        &custodians,
        "2",
        &["--generate", "--key-out", key_out.to_str().unwrap()],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("key check "), "{out}");
    assert!(
        lines[1..].iter().all(|l| l.ends_with(": deposited")),
        "{out}"
    );
    let key = std::fs::read_to_string(&key_out).unwrap();
    assert!(!out.contains(key.trim()), "the key was printed");
    // The same key split again is another set of shares: refused (409).
    let err = fails(&split(
        dir,
        &custodians,
        "2",
        &["--key", key_out.to_str().unwrap()],
    ));
    assert!(err.contains("already holds a different share"), "{err}");

    // One custodian stopped: the other two suffice.
    custodians[2].server = None;
    let urls: Vec<String> = custodians.iter().map(Custodian::url).collect();
    let recovered = dir.join("recovered.key");
    let out = ok(&recover(
        dir,
        &log.url,
        &[urls[2].clone(), urls[0].clone(), urls[1].clone()],
        recovered.to_str().unwrap(),
    ));
    assert_eq!(
        std::fs::read_to_string(&recovered).unwrap().trim(),
        key.trim()
    );
    let got = receipts(&out);
    assert_eq!(
        got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["custodian-a.test", "custodian-b.test"],
        "{out}"
    );
    let request = request_index(&bundle);
    for (name, index) in &got {
        assert_share_release(&record(&log.url, *index), name, request);
    }

    // Only one custodian answers: no key, one line saying who refused.
    let alone = dir.join("alone.key");
    let err = fails(&recover(
        dir,
        &log.url,
        &[urls[2].clone(), urls[0].clone()],
        alone.to_str().unwrap(),
    ));
    assert!(err.contains("1 of the 2 shares"), "{err}");
    assert!(
        err.contains(&urls[2]) && err.contains("cannot reach"),
        "{err}"
    );
    assert!(!alone.exists());

    // SIGTERM (what service managers send) stops a custodian cleanly.
    let mut server = custodians[0].server.take().unwrap();
    let pid = server.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the custodian did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_custodian_killed_mid_release_answers_again_with_the_same_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, mut custodians, bundle) = world(dir, 2);
    let key_out = dir.join("escrow.key");
    ok(&split(
        dir,
        &custodians,
        "2",
        &["--generate", "--key-out", key_out.to_str().unwrap()],
    ));
    let request = request_index(&bundle);
    // Nothing else is logged after the request: the next entry is the receipt.
    let next = request + 1;

    // The witnesses stop: the log takes the receipt but publishes no
    // checkpoint covering it, so the custodian waits for its proof.
    let log_server = log.servers.pop().unwrap();
    log.servers.clear();
    let urls: Vec<String> = custodians.iter().map(Custodian::url).collect();
    let asking = std::process::Command::new(env!("CARGO_BIN_EXE_daylight"))
        .args([
            "escrow",
            "recover",
            "--bundle",
            bundle.to_str().unwrap(),
            "--key",
            dir.join("agency.key").to_str().unwrap(),
            "--log",
            &log.url,
            "--custodian",
            &urls[0],
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&format!("{}/api/v1/entries/{next}", log.url)).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the receipt never reached the log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed mid-release (SIGKILL): its receipt is logged, not proven.
    let mut killed = custodians[0].server.take().unwrap();
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let answer = asking.wait_with_output().unwrap();
    assert!(!answer.status.success(), "a share was released");
    let said = String::from_utf8_lossy(&answer.stderr);
    assert!(said.contains("cannot reach the custodian"), "{said}");
    // A receipt made again now would carry another time (whole seconds):
    // the same receipt below is the one kept before it was submitted.
    std::thread::sleep(Duration::from_millis(1100));
    assert_share_release(&record(&log.url, next), "custodian-a.test", request);

    // The witnesses and the custodian come back.
    for (i, (_, addr)) in log.witnesses.iter().enumerate() {
        let wdir = dir.join(format!("w{}", i + 1));
        log.servers.push(spawn(&[
            "witness",
            "serve",
            "--dir",
            wdir.to_str().unwrap(),
            "--listen",
            addr,
        ]));
        wait_ready(addr);
    }
    log.servers.push(log_server);
    custodians[0].start(&dir.join("custodians.log"));

    let recovered = dir.join("recovered.key");
    let out = ok(&recover(dir, &log.url, &urls, recovered.to_str().unwrap()));
    assert_eq!(
        std::fs::read_to_string(&recovered).unwrap(),
        std::fs::read_to_string(&key_out).unwrap()
    );
    let got = receipts(&out);
    assert_eq!(got[0], ("custodian-a.test".to_owned(), next), "{out}");
    // Its receipt is in the log once.
    let size = got.iter().map(|(_, i)| *i).max().unwrap();
    let by_a = (next..=size)
        .filter(|&i| record(&log.url, i)["signer"]["name"] == "custodian-a.test")
        .count();
    assert_eq!(by_a, 1, "{out}");
}

/// A copy of the bundle in `dir/name` with `edit` applied to it.
fn tampered(dir: &Path, name: &str, edit: impl FnOnce(&Path)) -> std::path::PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["entry", "proof", "opening.json", "target"] {
        std::fs::copy(dir.join("case-1").join(f), to.join(f)).unwrap();
    }
    edit(&to);
    to
}

/// `text` with each line replaced by what `f` makes of it (`None` drops
/// it), newline-terminated.
fn each_line(text: &str, f: impl Fn(&str) -> Option<String>) -> String {
    text.lines().filter_map(f).map(|l| l + "\n").collect()
}

/// The log's size, from its API.
fn log_size(url: &str) -> u64 {
    let (_, body) = http_get(&format!("{url}/api/v1/log"));
    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["size"]
        .as_u64()
        .unwrap()
}

#[test]
fn every_custodian_denies_every_tampered_bundle_and_logs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (log, custodians, _bundle) = world(dir, 3);
    let key_out = dir.join("escrow.key");
    ok(&split(
        dir,
        &custodians,
        "2",
        &["--generate", "--key-out", key_out.to_str().unwrap()],
    ));
    let urls: Vec<String> = custodians.iter().map(Custodian::url).collect();
    let rewrite = |file: &Path, f: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(file).unwrap();
        let changed = f(text.clone());
        assert_ne!(
            changed,
            text,
            "the tamper changed nothing in {}",
            file.display()
        );
        std::fs::write(file, changed).unwrap();
    };
    let cases: Vec<(&str, std::path::PathBuf)> = vec![
        (
            "a changed digit in the entry",
            tampered(dir, "flipped-entry", |b| {
                // One hex digit of the first 64-digit value (a commitment)
                // changed to another hex digit: the record still parses, so
                // it reaches the custodians, but it is no longer the signed,
                // logged entry. (A bit flipped anywhere could make it
                // unparsable, and `escrow recover` refuses that itself.)
                let mut e = std::fs::read(b.join("entry")).unwrap();
                let hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
                let at = (0..e.len().saturating_sub(65))
                    .find(|&i| {
                        e[i] == b'"' && e[i + 1..i + 65].iter().all(hex) && e[i + 65] == b'"'
                    })
                    .expect("the entry holds a 64-digit hex value")
                    + 1;
                e[at] = if e[at] == b'0' { b'1' } else { b'0' };
                std::fs::write(b.join("entry"), e).unwrap();
            }),
        ),
        (
            "another index in the proof",
            tampered(dir, "wrong-index", |b| {
                rewrite(&b.join("proof"), &|t| {
                    each_line(&t, |l| match l.strip_prefix("index ") {
                        Some(i) => Some(format!("index {}", i.parse::<u64>().unwrap() + 1)),
                        None => Some(l.to_owned()),
                    })
                })
            }),
        ),
        (
            "the witnesses' cosignatures dropped",
            tampered(dir, "no-cosignatures", |b| {
                rewrite(&b.join("proof"), &|t| {
                    each_line(&t, |l| {
                        let witness =
                            l.starts_with("— ") && !l.starts_with(&format!("— {ORIGIN} "));
                        (!witness).then(|| l.to_owned())
                    })
                })
            }),
        ),
        (
            "a changed salt in the opening",
            tampered(dir, "wrong-salt", |b| {
                rewrite(&b.join("opening.json"), &|t| {
                    let mut v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    let salt = v["targets"][0]["salt"].as_str().unwrap().to_owned();
                    let flipped = if salt.starts_with('0') { "1" } else { "0" };
                    v["targets"][0]["salt"] = format!("{flipped}{}", &salt[1..]).into();
                    v.to_string()
                })
            }),
        ),
        (
            "another target",
            tampered(dir, "other-target", |b| {
                rewrite(&b.join("target"), &|t| format!("{}-other\n", t.trim()))
            }),
        ),
    ];
    let before = log_size(&log.url);
    let agency = dir.join("agency.key");
    for (what, bundle) in &cases {
        let mut args = vec![
            "escrow",
            "recover",
            "--bundle",
            bundle.to_str().unwrap(),
            "--key",
            agency.to_str().unwrap(),
            "--log",
            &log.url,
        ];
        for u in &urls {
            args.extend(["--custodian", u.as_str()]);
        }
        let err = fails(&daylight(&args));
        for u in &urls {
            assert!(
                err.contains(&format!("{u}: refused (403 denied ")),
                "{what}: custodian {u} did not deny it: {err}"
            );
        }
    }
    assert_eq!(
        log_size(&log.url),
        before,
        "a denied release logged something"
    );
}
