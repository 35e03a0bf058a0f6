//! What the cross-process tests share: running the real binary, free ports,
//! child processes that are killed when dropped, and drafts dated around now.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Runs `daylight` with `args` to completion.
pub fn daylight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daylight"))
        .args(args)
        .output()
        .expect("run daylight")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts success; the trimmed standard output.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}; stderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(o).trim().to_owned()
}

/// Asserts failure with exactly one line on standard error; that line.
pub fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "unexpected success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    err
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first of `n` consecutive ports that are all free right now on
/// 127.0.0.1 (the demo binds its listen port and the next three).
pub fn free_port_run(n: u16) -> u16 {
    for _ in 0..200 {
        let first = free_port();
        let held: Vec<_> = (0..n)
            .map_while(|i| first.checked_add(i))
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return first;
        }
    }
    panic!("no run of {n} free ports found");
}

/// Waits (at most 20 s) until something accepts connections at `addr`
/// (`host:port`, with or without `http://`).
pub fn wait_ready(addr: &str) {
    let addr = addr.trim_start_matches("http://");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens at {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process, killed and reaped when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `daylight log serve --dir DIR` on a free port, once it listens; its URL.
pub fn serve_log(dir: &str) -> (Server, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = Server(
        std::process::Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args([
                "log",
                "serve",
                "--dir",
                dir,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&url);
    (server, url)
}

/// The example request draft with its window moved around now, written to
/// `dir/name`; its path.
pub fn request_draft(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/examples/request.json"
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    v["valid_from"] = fmt(now - chrono::Duration::days(1)).into();
    v["valid_until"] = fmt(now + chrono::Duration::days(30)).into();
    v["sealed_until"] = fmt(now + chrono::Duration::days(365)).into();
    edit(&mut v);
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Writes a signer key file as `daylight key generate` does: owner-only.
pub fn write_key(path: &Path, secret: &str) {
    std::fs::write(path, secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Starts `daylight` with `args` in the background, output discarded.
pub fn spawn(args: &[&str]) -> Server {
    start(args, std::process::Stdio::null())
}

/// Starts `daylight` with `args` in the background, its standard error
/// appended to the file `log` (for a test to show when it fails).
pub fn spawn_logged(args: &[&str], log: &Path) -> Server {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    start(args, err.into())
}

fn start(args: &[&str], stderr: std::process::Stdio) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

/// One HTTP/1.1 GET of `url` (`http://host:port/path`) over a fresh
/// connection, without a client library; status and body.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let rest = url.trim_start_matches("http://");
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

/// A witness in `dir` named `name`, told to cosign the log (`origin`,
/// `log_vkey`) in `log_dir`, serving on a free port, and added to that log's
/// witnesses. The server, the witness's verifier key and its address.
pub fn serve_witness_for(
    dir: &str,
    name: &str,
    log_dir: &str,
    origin: &str,
    log_vkey: &str,
) -> (Server, String, String) {
    let vkey = ok(&daylight(&[
        "witness", "init", "--dir", dir, "--name", name,
    ]));
    ok(&daylight(&[
        "witness", "add-log", "--dir", dir, "--origin", origin, "--vkey", log_vkey,
    ]));
    let addr = format!("127.0.0.1:{}", free_port());
    let server = spawn(&["witness", "serve", "--dir", dir, "--listen", &addr]);
    wait_ready(&addr);
    ok(&daylight(&[
        "log",
        "add-witness",
        "--dir",
        log_dir,
        "--vkey",
        &vkey,
        "--url",
        &format!("http://{addr}"),
    ]));
    (server, vkey, addr)
}

/// `daylight log init` of a log in `log_dir` with an agency key written to
/// `agency_key` and registered: the log's verifier key.
pub fn new_log_with_agency(log_dir: &str, origin: &str, quorum: &str, agency_key: &str) -> String {
    new_log_and_agency(log_dir, origin, quorum, agency_key).0
}

/// POSTs `body` to `{url}/api/v1/entries` as `application/json` (20 s
/// timeout); the status and the JSON body (`null` if the body is not JSON).
pub fn post_record(url: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
            .post(format!("{url}/api/v1/entries"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or_default())
    })
}

/// Fresh signed request records, sealed from the example draft with the
/// agency key in `agency_key` and a deterministic opening; made in memory,
/// so nothing is written to the filesystem under test.
pub struct Records {
    signer: daylight_core::SignerKey,
    draft: daylight_schemas::Draft,
    seed: u64,
    origin: String,
}

impl Records {
    /// Records signed by the key in `agency_key` for the log `origin`; the
    /// draft is written to `scratch`.
    pub fn new(agency_key: &Path, origin: &str, scratch: &Path) -> Records {
        let signer =
            daylight_core::SignerKey::parse(std::fs::read_to_string(agency_key).unwrap().trim())
                .unwrap();
        let draft = daylight_schemas::Draft::from_json(
            &std::fs::read_to_string(request_draft(scratch, "records.json", |_| {})).unwrap(),
        )
        .unwrap();
        Records {
            signer,
            origin: origin.to_string(),
            draft,
            seed: 0,
        }
    }

    /// The next record's exact bytes; every one differs from the others.
    pub fn next(&mut self) -> Vec<u8> {
        let seed = &mut self.seed;
        let mut rng = |b: &mut [u8]| {
            for chunk in b.chunks_mut(32) {
                *seed += 1;
                let h = daylight_core::leaf_hash(&seed.to_be_bytes());
                chunk.copy_from_slice(&h.0[..chunk.len()]);
            }
        };
        self.draft
            .seal(&self.signer, &self.origin, chrono::Utc::now(), &mut rng)
            .unwrap()
            .0
            .to_bytes()
    }
}

/// `daylight key generate --name NAME --out OUT`: the new verifier key.
pub fn generate_key(name: &str, out: &str) -> String {
    ok(&daylight(&[
        "key", "generate", "--name", name, "--out", out,
    ]))
}

/// `daylight log init` of a log in `log_dir` with an agency key (named
/// `agency.test`) written to `agency_key` and registered: the log's and the
/// agency's verifier keys.
pub fn new_log_and_agency(
    log_dir: &str,
    origin: &str,
    quorum: &str,
    agency_key: &str,
) -> (String, String) {
    let agency = generate_key("agency.test", agency_key);
    let log_vkey = ok(&daylight(&[
        "log", "init", "--dir", log_dir, "--origin", origin, "--quorum", quorum,
    ]));
    ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        log_dir,
        "--vkey",
        &agency,
    ]));
    (log_vkey, agency)
}

/// `daylight agency submit` of the draft file `draft` to the log at `url`,
/// signed with the key file `key`, the bundle written to the directory
/// `out` (the command's default 60 s wait for a cosigned checkpoint):
/// the entry's index as printed.
pub fn agency_submit(url: &str, key: &str, draft: &str, out: &str) -> String {
    ok(&submit_output(url, key, draft, out))
}

/// The run of [`agency_submit`], for a test that expects it to fail.
pub fn submit_output(url: &str, key: &str, draft: &str, out: &str) -> Output {
    daylight(&[
        "agency", "submit", "--log", url, "--key", key, "--draft", draft, "--out", out,
    ])
}

/// The example request draft (see [`request_draft`], changed by `edit`)
/// written to `dir/NAME.json` and submitted with [`agency_submit`]; the
/// bundle's directory, `dir/NAME`.
pub fn submit_request(
    url: &str,
    key: &str,
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> std::path::PathBuf {
    let draft = request_draft(dir, &format!("{name}.json"), edit);
    let out = dir.join(name);
    agency_submit(url, key, &draft, out.to_str().unwrap());
    out
}

/// `daylight gate policy --log URL --provider PROVIDER` with `extra`
/// arguments: the policy text.
pub fn gate_policy(url: &str, provider: &str, extra: &[&str]) -> String {
    let mut args = vec!["gate", "policy", "--log", url, "--provider", provider];
    args.extend_from_slice(extra);
    ok(&daylight(&args))
}

/// A log serving on a free port, with two witnesses serving too (quorum 2).
/// Dropping it stops them all.
pub struct WitnessedLog {
    /// The witnesses' and the log's processes.
    pub servers: Vec<Server>,
    /// The log's URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The log's verifier key.
    pub vkey: String,
    /// Each witness's verifier key and address (`127.0.0.1:PORT`).
    pub witnesses: Vec<(String, String)>,
}

/// Under `dir`: a log in `log` for `origin` with quorum 2, the agency
/// `agency.test` (key file `agency.key`) registered, then the provider
/// `messenger.example` (key file `provider.key`) if `provider`, then the
/// witnesses `witness.test/w1` and `witness.test/w2` (directories `w1`,
/// `w2`); all serving.
pub fn witnessed_log(dir: &Path, origin: &str, provider: bool) -> WitnessedLog {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (vkey, _) = new_log_and_agency(&p("log"), origin, "2", &p("agency.key"));
    if provider {
        let provider = generate_key("messenger.example", &p("provider.key"));
        ok(&daylight(&[
            "log",
            "add-provider",
            "--dir",
            &p("log"),
            "--vkey",
            &provider,
        ]));
    }
    let mut servers = Vec::new();
    let mut witnesses = Vec::new();
    for name in ["w1", "w2"] {
        let (server, wvkey, addr) = serve_witness_for(
            &p(name),
            &format!("witness.test/{name}"),
            &p("log"),
            origin,
            &vkey,
        );
        servers.push(server);
        witnesses.push((wvkey, addr));
    }
    let (server, url) = serve_log(&p("log"));
    servers.push(server);
    WitnessedLog {
        servers,
        url,
        vkey,
        witnesses,
    }
}

/// [`submit_request`] of the example request with `case` as its case
/// reference, under the name `case`; the bundle's directory.
pub fn submit_case(url: &str, key: &str, dir: &Path, case: &str) -> std::path::PathBuf {
    submit_request(url, key, dir, case, |v| v["case_reference"] = case.into())
}

/// `daylight gate verify` of a bundle (entry, proof, opening files) by the
/// policy file, for `target`, with `extra` arguments.
pub fn gate_verify(
    policy: &str,
    entry: &str,
    proof: &str,
    opening: &str,
    target: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "gate",
        "verify",
        "--policy",
        policy,
        "--entry",
        entry,
        "--proof",
        proof,
        "--opening",
        opening,
        "--target",
        target,
    ];
    args.extend_from_slice(extra);
    daylight(&args)
}
