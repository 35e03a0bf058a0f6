//! `daylight gate` as a provider runs it: the real binary, real files, exit
//! codes 0 (ALLOW), 1 (DENY) and 2 (usage, unreadable files), one line out.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    daylight, free_port, gate_policy, gate_verify, request_draft, witnessed_log, write_key, Server,
};

use chrono::Utc;
use daylight_gate::testkit::{World, OTHER_TARGET, PROVIDER, TARGET};
use daylight_gate::Policy;
use daylight_schemas::{Kind, SignedRecord};

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// A bundle on disk: policy, entry, proof, opening, provider key.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let mut w = World::new();
        let now = Utc::now();
        let created = now - chrono::Duration::hours(1);
        let b = w
            .bundle(
                &World::request_draft(PROVIDER, created),
                created,
                now.timestamp() as u64 - 30,
            )
            .unwrap();
        let p = dir.path();
        std::fs::write(p.join("policy"), w.policy_text(2, false)).unwrap();
        std::fs::write(p.join("entry"), &b.entry).unwrap();
        std::fs::write(p.join("proof"), &b.proof).unwrap();
        std::fs::write(p.join("opening.json"), b.opening.to_json()).unwrap();
        write_key(&p.join("provider.key"), &w.provider.to_secret_text());
        let mut tampered = b.proof.clone();
        let at = tampered.iter().position(|&c| c == b'\n').unwrap() + 7;
        tampered[at] = if tampered[at] == b'1' { b'2' } else { b'1' };
        std::fs::write(p.join("proof.bad"), tampered).unwrap();
        Files { dir }
    }

    fn verify(&self, extra: &[&str]) -> Output {
        let (policy, entry, proof) = (self.path("policy"), self.path("entry"), self.path("proof"));
        let mut args = vec![
            "gate", "verify", "--policy", &policy, "--entry", &entry, "--proof", &proof,
        ];
        args.extend_from_slice(extra);
        daylight(&args)
    }
}

#[track_caller]
fn one_line(o: &Output, code: i32, prefix: &str) -> String {
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(code), "stdout {out} stderr {err}");
    let stream = if code == 2 { &err } else { &out };
    assert_eq!(stream.lines().count(), 1, "{stream:?}");
    assert!(stream.starts_with(prefix), "{stream}");
    if code != 2 {
        assert!(err.is_empty(), "{err}");
    } else {
        assert!(out.is_empty(), "{out}");
    }
    stream.trim_end().to_owned()
}

#[test]
fn allow_deny_and_usage_exit_codes() {
    let f = Files::new();
    let opening = f.path("opening.json");

    // ALLOW, with and without a target.
    let line = one_line(
        &f.verify(&["--opening", &opening, "--target", TARGET]),
        0,
        "ALLOW request ",
    );
    assert!(line.contains("target #0 of 2"), "{line}");
    assert!(!line.contains(TARGET), "the target stays out of the output");
    let line = one_line(&f.verify(&[]), 0, "ALLOW request ");
    assert!(line.contains("none checked"), "{line}");
    one_line(
        &f.verify(&["--opening", &opening, "--target", OTHER_TARGET]),
        0,
        "ALLOW ",
    );

    // DENY, one line each, with the reason code.
    one_line(
        &f.verify(&["--opening", &opening, "--target", "acct:someone-else"]),
        1,
        "DENY target_not_in_opening: ",
    );
    let (policy, entry, bad) = (f.path("policy"), f.path("entry"), f.path("proof.bad"));
    one_line(
        &daylight(&[
            "gate", "verify", "--policy", &policy, "--entry", &entry, "--proof", &bad,
        ]),
        1,
        "DENY not_included: ",
    );
    one_line(
        &f.verify(&["--provider", "other.example"]),
        1,
        "DENY wrong_provider: ",
    );
    std::fs::write(f.path("opening.bad"), "{\"version\": 1}").unwrap();
    one_line(
        &f.verify(&["--opening", &f.path("opening.bad"), "--target", TARGET]),
        1,
        "DENY opening_malformed: ",
    );
    // The entry given as the proof and the proof as the entry.
    let proof = f.path("proof");
    one_line(
        &daylight(&[
            "gate", "verify", "--policy", &policy, "--entry", &proof, "--proof", &entry,
        ]),
        1,
        "DENY bundle_malformed: ",
    );

    // Usage errors and unreadable files: exit 2, one line on stderr.
    // (clap's own usage message, several lines, exit 2)
    let o = f.verify(&["--opening", &opening]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).starts_with("error: the following required arguments"));
    assert!(o.stdout.is_empty());
    let missing = f.path("nope");
    one_line(
        &daylight(&[
            "gate", "verify", "--policy", &policy, "--entry", &missing, "--proof", &proof,
        ]),
        2,
        &format!("daylight: {missing} does not exist: "),
    );
    one_line(
        &daylight(&[
            "gate", "verify", "--policy", &missing, "--entry", &entry, "--proof", &proof,
        ]),
        2,
        &format!("daylight: {missing} does not exist: "),
    );
    std::fs::write(f.path("policy.bad"), "log nonsense\nquorum none\n").unwrap();
    one_line(
        &daylight(&[
            "gate",
            "verify",
            "--policy",
            &f.path("policy.bad"),
            "--entry",
            &entry,
            "--proof",
            &proof,
        ]),
        2,
        "daylight: policy ",
    );
    one_line(
        &f.verify(&["--opening", &missing, "--target", TARGET]),
        2,
        &format!("daylight: {missing} does not exist: "),
    );
    // A policy without a provider needs --provider.
    let policy_text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        f.path("policy.noprovider"),
        policy_text.replace(&format!("daylight-provider {PROVIDER}\n"), ""),
    )
    .unwrap();
    let np = f.path("policy.noprovider");
    one_line(
        &daylight(&[
            "gate", "verify", "--policy", &np, "--entry", &entry, "--proof", &proof,
        ]),
        2,
        "daylight: policy ",
    );
    one_line(
        &daylight(&[
            "gate",
            "verify",
            "--policy",
            &np,
            "--entry",
            &entry,
            "--proof",
            &proof,
            "--provider",
            PROVIDER,
        ]),
        0,
        "ALLOW ",
    );
    // --help works.
    let o = daylight(&["gate", "verify", "--help"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("--opening"));
}

#[test]
fn allow_writes_a_release_receipt_signed_by_the_provider() {
    let f = Files::new();
    let (opening, key, out) = (
        f.path("opening.json"),
        f.path("provider.key"),
        f.path("release.json"),
    );
    let line = one_line(
        &f.verify(&[
            "--opening",
            &opening,
            "--target",
            TARGET,
            "--release-key",
            &key,
            "--release-out",
            &out,
        ]),
        0,
        "ALLOW ",
    );
    assert!(line.contains("release receipt"), "{line}");
    let receipt = SignedRecord::parse(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(receipt.kind(), Kind::Release);
    let w = World::new();
    receipt.verify_signature(w.provider.verifier()).unwrap();
    let entry = std::fs::read(f.path("entry")).unwrap();
    assert_eq!(
        receipt.references()[0].leaf_hash,
        daylight_core::leaf_hash(&entry)
    );

    // Never over an existing receipt.
    one_line(
        &f.verify(&["--release-key", &key, "--release-out", &out]),
        2,
        "daylight: ",
    );
    // No receipt on DENY.
    let out2 = f.path("release2.json");
    one_line(
        &f.verify(&[
            "--opening",
            &opening,
            "--target",
            "acct:nobody",
            "--release-key",
            &key,
            "--release-out",
            &out2,
        ]),
        1,
        "DENY ",
    );
    assert!(!Path::new(&out2).exists());
    // A receipt that cannot be logged is taken back: DENY release_not_logged.
    let dead = format!("http://127.0.0.1:{}", free_port());
    one_line(
        &f.verify(&[
            "--release-key",
            &key,
            "--release-out",
            &out2,
            "--submit",
            &dead,
        ]),
        1,
        "DENY release_not_logged: ",
    );
    assert!(!Path::new(&out2).exists());
    // The agency's key is not the provider's.
    write_key(Path::new(&f.path("agency.key")), &w.agency.to_secret_text());
    one_line(
        &f.verify(&[
            "--release-key",
            &f.path("agency.key"),
            "--release-out",
            &out2,
        ]),
        2,
        "daylight: release key ",
    );
}

fn key(dir: &Path, name: &str, r#use: &str) -> String {
    let file: PathBuf = dir.join(format!("{name}.key"));
    let o = daylight(&[
        "key",
        "generate",
        "--name",
        name,
        "--out",
        file.to_str().unwrap(),
        "--use",
        r#use,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout).trim().to_owned()
}

#[test]
fn policy_from_a_live_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    let o = daylight(&[
        "log", "init", "--dir", d, "--origin", "log.test", "--quorum", "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let log_vkey = text(&o.stdout).trim().to_owned();
    let mut witnesses = Vec::new();
    for i in 0..3 {
        let w = key(tmp.path(), &format!("w{i}.test"), "cosignature");
        let url = format!("http://127.0.0.1:{}/", free_port());
        let o = daylight(&[
            "log",
            "add-witness",
            "--dir",
            d,
            "--vkey",
            &w,
            "--url",
            &url,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        witnesses.push(w);
    }
    let agency = key(tmp.path(), "agency.test", "note");
    let revoked = key(tmp.path(), "old-agency.test", "note");
    let court = key(tmp.path(), "court.test", "note");
    let provider = key(tmp.path(), "provider.test", "note");
    for (cmd, k) in [
        ("add-agency", &agency),
        ("add-agency", &revoked),
        ("add-court", &court),
        ("add-provider", &provider),
        ("revoke", &revoked),
    ] {
        let o = daylight(&["log", cmd, "--dir", d, "--vkey", k]);
        assert!(o.status.success(), "{cmd}: {}", text(&o.stderr));
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args(["log", "serve", "--dir", d, "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let o = daylight(&["gate", "policy", "--log", &url]);
        if o.status.success() {
            break o;
        }
        assert!(Instant::now() < deadline, "{}", text(&o.stderr));
        std::thread::sleep(Duration::from_millis(200));
    };
    let policy_text = text(&printed.stdout);
    assert!(
        policy_text.contains(&format!("log {log_vkey} {url}\n")),
        "{policy_text}"
    );
    for w in &witnesses {
        assert!(policy_text.contains(w.as_str()), "{policy_text}");
    }
    assert!(policy_text.contains(&format!("daylight-agency {agency}\n")));
    assert!(policy_text.contains(&format!("daylight-court {court}\n")));
    assert!(!policy_text.contains(&revoked), "revoked keys stay out");
    assert!(policy_text.contains("# daylight-provider provider.test\n"));
    let mut policy = Policy::parse(&policy_text).unwrap();
    assert_eq!(policy.provider(), None);
    assert_eq!(policy.max_age(), 86_400);
    assert!(!policy.emergencies_allowed());
    assert_eq!(policy.agencies().len(), 1);
    assert_eq!(policy.witness_policy().witnesses.len(), 3);
    assert_eq!(policy.witness_policy().groups[0].threshold, 2);
    policy.set_provider("provider.test").unwrap();

    // With --provider the policy is complete as printed.
    let o = daylight(&[
        "gate",
        "policy",
        "--log",
        &url,
        "--provider",
        "provider.test",
        "--max-age",
        "600",
    ]);
    assert!(o.status.success());
    let p = Policy::parse(&text(&o.stdout)).unwrap();
    assert_eq!(p.provider(), Some("provider.test"));
    assert_eq!(p.max_age(), 600);

    // An unreachable log: one line on stderr, non-zero.
    let o = daylight(&[
        "gate",
        "policy",
        "--log",
        &format!("http://127.0.0.1:{}", free_port()),
    ]);
    assert!(!o.status.success());
    assert_eq!(text(&o.stderr).lines().count(), 1, "{}", text(&o.stderr));
}

#[test]
fn demo_vault_hands_out_a_targets_key_only_on_allow() {
    let f = Files::new();
    let vault = f.path("vault");
    let o = daylight(&["gate", "vault-init", "--vault", &vault]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(Path::new(&vault).join("vault.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never over an existing vault.
    assert!(!daylight(&["gate", "vault-init", "--vault", &vault])
        .status
        .success());

    let (policy, entry, proof, opening) = (
        f.path("policy"),
        f.path("entry"),
        f.path("proof"),
        f.path("opening.json"),
    );
    let release = |target: &str| {
        daylight(&[
            "gate",
            "release",
            "--vault",
            &vault,
            "--policy",
            &policy,
            "--entry",
            &entry,
            "--proof",
            &proof,
            "--opening",
            &opening,
            "--target",
            target,
        ])
    };
    let o = release(TARGET);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("ALLOW request "));
    let key = lines[1];
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    // The same key again for the same target; another for the other target.
    assert_eq!(text(&release(TARGET).stdout).lines().nth(1), Some(key));
    let other = text(&release(OTHER_TARGET).stdout);
    assert_ne!(other.lines().nth(1), Some(key));
    // DENY: one line, no key.
    let o = release("acct:someone-else");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout).lines().count(), 1);
    assert!(text(&o.stdout).starts_with("DENY target_not_in_opening: "));
    // Without a target there is nothing to hand out: usage error.
    let o = daylight(&[
        "gate", "release", "--vault", &vault, "--policy", &policy, "--entry", &entry, "--proof",
        &proof,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    // No vault: exit 2.
    let o = daylight(&[
        "gate",
        "release",
        "--vault",
        &f.path("novault"),
        "--policy",
        &policy,
        "--entry",
        &entry,
        "--proof",
        &proof,
        "--opening",
        &opening,
        "--target",
        TARGET,
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// The whole flow with real processes: a log with two witnesses (quorum 2),
/// an agency submits a request, the provider prints a policy from the log,
/// verifies the bundle offline, and logs its release receipt.
#[test]
fn end_to_end_through_a_witnessed_log() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let log = witnessed_log(tmp.path(), "log.test/gate", true);
    let url = log.url.clone();

    // The agency: a request to messenger.example, valid now.
    let mut target = String::new();
    let draft = request_draft(tmp.path(), "draft.json", |v| {
        target = v["targets"][0].as_str().unwrap().to_owned();
    });
    let index = common::agency_submit(&url, &p("agency.key"), &draft, &p("bundle"));

    // The provider: a policy from the log, then the offline decision.
    let policy = gate_policy(&url, "messenger.example", &[]);
    std::fs::write(p("policy"), format!("{policy}\n")).unwrap();
    let verify = |target: &str, extra: &[&str]| {
        let (policy, entry, proof, opening) = (
            p("policy"),
            p("bundle/entry"),
            p("bundle/proof"),
            p("bundle/opening.json"),
        );
        gate_verify(&policy, &entry, &proof, &opening, target, extra)
    };
    let line = one_line(&verify(&target, &[]), 0, "ALLOW request ");
    assert!(
        line.contains(&format!("request {index} target #0")),
        "{line}"
    );
    assert!(line.contains("2 cosignatures"), "{line}");
    one_line(
        &verify("acct:someone-else", &[]),
        1,
        "DENY target_not_in_opening: ",
    );

    // Release, with the receipt appended to the log.
    let line = one_line(
        &verify(
            &target,
            &[
                "--release-key",
                &p("provider.key"),
                "--release-out",
                &p("release.json"),
                "--submit",
                &url,
            ],
        ),
        0,
        "ALLOW ",
    );
    let logged: u64 = line
        .rsplit("logged at index ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(logged > index.parse::<u64>().unwrap(), "{line}");
    drop(log);
}
