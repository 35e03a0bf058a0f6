//! Shared fixtures for the reliability tests (`crash.rs`, `hostile.rs`,
//! `secrets.rs`): the real `daylight` binary as child processes killed on
//! drop, free loopback ports, a small seeded PRNG, and signed records.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use daylight_core::SignerKey;
use daylight_schemas::{Draft, Opening, SignedRecord};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_daylight")
}

/// Runs `daylight ARGS` and returns its output.
pub fn daylight(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run daylight")
}

/// Runs `daylight ARGS`, asserts success, returns trimmed stdout.
pub fn ok(args: &[&str]) -> String {
    let o = daylight(args);
    assert!(
        o.status.success(),
        "daylight {args:?}: exit {:?}; stderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed (SIGKILL) when dropped.
pub struct Proc {
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
    /// The port it listens on.
    pub port: u16,
}

impl Proc {
    /// Starts `daylight ARGS` (stderr appended to `log`) and waits until
    /// `port` accepts connections.
    pub fn start(args: &[&str], port: u16, log: &Path) -> Proc {
        let mut p = Proc {
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            log: log.to_owned(),
            port,
        };
        p.restart();
        p
    }

    /// Starts the process again (after a kill) and waits for its port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.child = Some(
            Command::new(bin())
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "daylight {:?} exited with {status}: {}",
                    self.args,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    /// Sends `signal` (a name such as STOP or CONT) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Whether it runs (not killed).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// splitmix64: a small seeded PRNG, so a failing run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    /// A generator seeded from `DAYLIGHT_SEED` or the clock (printed).
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("DAYLIGHT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: DAYLIGHT_SEED={seed}");
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The example request draft with its window around now, and these targets.
pub fn request_draft(targets: &[String]) -> Draft {
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
    v["targets"] = serde_json::json!(targets);
    Draft::from_json(&v.to_string()).unwrap()
}

/// A fresh signed request for the log `origin` (random salts and target:
/// unique bytes).
pub fn request(agency: &SignerKey, origin: &str, rng: &mut Rng) -> (SignedRecord, Opening) {
    let target = format!("acct:{}", rng.next());
    request_draft(&[target])
        .seal(agency, origin, chrono::Utc::now(), &mut |b| rng.fill(b))
        .unwrap()
}

/// A log directory with a registered agency, made with the real CLI.
pub struct LogDir {
    /// Holds everything.
    pub tmp: tempfile::TempDir,
    /// The log's directory.
    pub dir: PathBuf,
    /// The log's verifier key.
    pub log_vkey: daylight_core::VerifierKey,
    /// The registered agency's key.
    pub agency: SignerKey,
    /// The agency's key file.
    pub agency_file: PathBuf,
    /// The checkpoint origin.
    pub origin: String,
}

impl LogDir {
    /// `daylight key generate`, `log init --quorum Q`, `log add-agency`.
    pub fn new(origin: &str, quorum: usize) -> LogDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let agency_file = tmp.path().join("agency.key");
        let agency_vkey = ok(&[
            "key",
            "generate",
            "--name",
            "agency.test",
            "--out",
            agency_file.to_str().unwrap(),
        ]);
        let log_vkey = ok(&[
            "log",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--origin",
            origin,
            "--quorum",
            &quorum.to_string(),
        ]);
        ok(&[
            "log",
            "add-agency",
            "--dir",
            dir.to_str().unwrap(),
            "--vkey",
            &agency_vkey,
        ]);
        let agency =
            SignerKey::parse(std::fs::read_to_string(&agency_file).unwrap().trim()).unwrap();
        LogDir {
            dir,
            log_vkey: daylight_core::VerifierKey::parse(&log_vkey).unwrap(),
            agency,
            agency_file,
            tmp,
            origin: origin.to_owned(),
        }
    }

    /// `daylight log serve` on a free port.
    pub fn serve(&self) -> Proc {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        Proc::start(
            &[
                "log",
                "serve",
                "--dir",
                self.dir.to_str().unwrap(),
                "--listen",
                &listen,
                // These tests flood on purpose; the per-key limit has its own test.
                "--key-rate",
                "0",
            ],
            port,
            &self.tmp.path().join("log.stderr"),
        )
    }

    /// A path under the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Checks a log's final tree of `size` entries and `root`, reading each
/// object (entry bundles, then hash tiles, by C2SP path) through `read`:
/// the entries derive the root, no record is in it twice, every
/// acknowledged index holds the acknowledged bytes, and every hash tile is
/// the one the entries derive. Returns the tree and the number of tiles.
pub async fn check_final_tree<F, Fut>(
    size: u64,
    root: daylight_core::Hash,
    acked: &std::collections::HashMap<u64, Vec<u8>>,
    read: F,
) -> (daylight_core::tree::MemoryTree, usize)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Vec<u8>>,
{
    use daylight_core::tile::{
        new_tiles, parse_entry_bundle, read_tile_data, BundleCoord, TILE_WIDTH,
    };
    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(size as usize);
    for n in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH) as u16;
        let coord = BundleCoord { index: n, width };
        let data = read(coord.path()).await;
        for e in parse_entry_bundle(&data, width).unwrap() {
            entries.push(e.to_vec());
        }
    }
    let mut tree = daylight_core::tree::MemoryTree::with_capacity(size);
    let mut distinct: std::collections::HashMap<&[u8], u64> = std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        tree.append(e);
        if let Some(j) = distinct.insert(e, i as u64) {
            panic!("the same record is in the log twice, at {j} and {i}");
        }
    }
    assert_eq!(tree.root(), root, "entries do not derive the final root");
    for (&i, bytes) in acked {
        assert!(
            i < size,
            "acknowledged index {i} is beyond the final size {size}"
        );
        assert_eq!(
            &entries[i as usize], bytes,
            "acknowledged entry {i} changed or was lost"
        );
    }
    let tiles = new_tiles(daylight_core::TreeSize(0), daylight_core::TreeSize(size));
    for t in &tiles {
        let data = read(t.path()).await;
        assert_eq!(
            data,
            read_tile_data(*t, &tree).unwrap(),
            "tile {} differs from the entries",
            t.path()
        );
    }
    (tree, tiles.len())
}

/// Waits (at most 60 s) until the checkpoint `read` gives (None while there
/// is none) covers entry `index`; that checkpoint, opened with `key`.
pub async fn wait_covering<F, Fut>(
    key: &daylight_core::VerifierKey,
    index: u64,
    read: F,
) -> daylight_core::SignedCheckpoint
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<Vec<u8>>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(b) = read().await {
            let cp = daylight_core::SignedCheckpoint::open(&b, key).unwrap();
            if cp.checkpoint.size.get() > index {
                return cp;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no published checkpoint covers entry {index}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits `bytes` until a log acknowledges it or `deadline` passes,
/// retrying after connection errors, timeouts and 5xx (and 408 too when
/// `retry_408`: a frontend paused mid-request) against the URL `pick` gives
/// each attempt. A valid record refused with any other 4xx fails the test.
/// The acknowledged index and the attempts it took, or None at the deadline.
pub async fn submit_until_acked(
    http: &reqwest::Client,
    bytes: &[u8],
    deadline: Instant,
    retry_408: bool,
    mut pick: impl FnMut() -> String,
) -> Option<(u64, u32)> {
    let mut attempts = 0u32;
    while Instant::now() < deadline {
        let url = pick();
        attempts += 1;
        let r = http
            .post(format!("{url}/api/v1/entries"))
            .header("content-type", "application/json")
            .body(bytes.to_vec())
            .send()
            .await;
        match r {
            Ok(resp) if resp.status() == 200 => {
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                if let Some(i) = v["index"].as_u64() {
                    return Some((i, attempts));
                }
            }
            Ok(resp) if resp.status().is_client_error() && !(retry_408 && resp.status() == 408) => {
                panic!(
                    "a valid record was refused: {} {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    None
}
