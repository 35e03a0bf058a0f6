//! A database made read-only under a running log: the log's directory on a
//! small ext4 filesystem (an image file on a loop device, mounted
//! `errors=remount-ro`), and ext4's own fault injection
//! (`/sys/fs/ext4/<dev>/trigger_fs_error`) makes the kernel abort the journal
//! and turn the filesystem read-only while `daylight log serve` holds the
//! database open and submissions are in flight. Then: every submission gets
//! a clear JSON error, the server stays up and keeps serving reads, and
//! nothing is acknowledged. The repair is the real one: stop, unmount,
//! `e2fsck -fy`, mount, serve again (where the kernel allows
//! `mount -o remount,rw` first, a server whose sync failed must still
//! refuse: it cannot know what reached the disk). Then every
//! acknowledged entry is there with the same bytes, every checkpoint served
//! before is a prefix of the repaired tree, and new submissions are
//! accepted.
//!
//! Needs root, a free loop device, `mkfs.ext4`, `e2fsck` and the ext4 sysfs
//! knob; skipped (with a message) where any is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, http_get, new_log_with_agency, post_record, wait_ready, Records, Server};
use daylight_core::tile::{new_tiles, parse_entry_bundle, read_tile_data, BundleCoord, TILE_WIDTH};
use daylight_core::tree::{tree_hash, MemoryTree};
use daylight_core::{SignedCheckpoint, TlogProof, TreeSize, VerifierKey, WitnessPolicy};

/// Runs a command; whether it succeeded (false if it could not start).
fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A loop device attached to an image file, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(image: &Path) -> Option<Loop> {
        let o = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(image)
            .output()
            .ok()?;
        let dev = String::from_utf8(o.stdout).ok()?.trim().to_owned();
        (o.status.success() && !dev.is_empty()).then_some(Loop(dev))
    }

    /// `loop0` for `/dev/loop0`: its name under /sys/fs/ext4.
    fn name(&self) -> &str {
        self.0.trim_start_matches("/dev/")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// The ext4 filesystem on a loop device, mounted at a directory while
/// `mounted`; unmounted when dropped.
struct Ext4 {
    dev: String,
    at: PathBuf,
    mounted: bool,
}

impl Ext4 {
    fn mount(&mut self) -> bool {
        self.mounted = run(
            "mount",
            &[
                "-t",
                "ext4",
                "-o",
                "errors=remount-ro",
                &self.dev,
                self.at.to_str().unwrap(),
            ],
        );
        self.mounted
    }

    fn umount(&mut self) {
        assert!(run("umount", &[self.at.to_str().unwrap()]), "umount");
        self.mounted = false;
    }

    /// The mount options /proc/mounts shows for it.
    fn options(&self) -> String {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        mounts
            .lines()
            .rev()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && Path::new(f[1]) == self.at)
            .map(|f| f[3].to_owned())
            .unwrap_or_default()
    }

    /// Read-only as the kernel reports it: `ro`, or (Linux 6.15 and later,
    /// after an ext4 error) `emergency_ro` beside `rw`.
    fn read_only(&self) -> bool {
        self.options()
            .split(',')
            .any(|o| o == "ro" || o == "emergency_ro")
    }

    /// Whether a new file can be written and synced in its root.
    fn writable(&self) -> bool {
        let probe = self.at.join("probe");
        let ok = std::fs::File::create(&probe).and_then(|f| f.sync_all());
        let _ = std::fs::remove_file(&probe);
        ok.is_ok()
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        if self.mounted && !run("umount", &[self.at.to_str().unwrap()]) {
            let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        }
    }
}

/// Waits (at most 20 s) until the log's published checkpoint covers index
/// `last`; its bytes.
fn checkpoint_covering(url: &str, vkey: &VerifierKey, last: u64) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = http_get(&format!("{url}/checkpoint"));
        if s == 200
            && SignedCheckpoint::open(&body, vkey)
                .unwrap()
                .checkpoint
                .size
                .get()
                > last
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no published checkpoint covers entry {last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the log serves, checked: its published checkpoint opens with the
/// log key, the entry bundles derive its root, the hash tiles are the ones
/// the entries derive, every acknowledged entry it covers has its
/// acknowledged bytes and a verifying tlog-proof, and every checkpoint in
/// `earlier` is a prefix of it. The published size and the entries.
fn check_log(
    url: &str,
    vkey: &VerifierKey,
    acked: &HashMap<u64, Vec<u8>>,
    earlier: &[Vec<u8>],
) -> (u64, Vec<Vec<u8>>) {
    let (s, cp_bytes) = http_get(&format!("{url}/checkpoint"));
    assert_eq!(s, 200, "GET /checkpoint");
    let cp = SignedCheckpoint::open(&cp_bytes, vkey).unwrap().checkpoint;
    let size = cp.size.get();
    let mut entries = Vec::with_capacity(size as usize);
    for n in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH) as u16;
        let coord = BundleCoord { index: n, width };
        let (s, data) = http_get(&format!("{url}/{}", coord.path()));
        assert_eq!(s, 200, "{}", coord.path());
        entries.extend(
            parse_entry_bundle(&data, width)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec),
        );
    }
    let mut tree = MemoryTree::with_capacity(size);
    for e in &entries {
        tree.append(e);
    }
    assert_eq!(tree.root(), cp.root, "the entries do not derive the root");
    for t in new_tiles(TreeSize(0), TreeSize(size)) {
        let (s, data) = http_get(&format!("{url}/{}", t.path()));
        assert_eq!(s, 200, "{}", t.path());
        assert_eq!(data, read_tile_data(t, &tree).unwrap(), "{}", t.path());
    }
    let policy = WitnessPolicy::k_of_n(vkey.clone(), vec![], 0);
    for (&i, bytes) in acked.iter().filter(|(&i, _)| i < size) {
        assert_eq!(
            &entries[i as usize], bytes,
            "acknowledged entry {i} changed"
        );
        let (s, proof) = http_get(&format!("{url}/api/v1/entries/{i}/proof"));
        assert_eq!(s, 200, "proof of {i}");
        let proof = TlogProof::parse(&proof).unwrap();
        assert_eq!(proof.index.get(), i);
        proof.verify(bytes, &policy).unwrap();
    }
    for old in earlier {
        let old = SignedCheckpoint::open(old, vkey).unwrap().checkpoint;
        assert!(old.size.get() <= size, "size {} went back", old.size);
        assert_eq!(
            tree_hash(old.size, &tree).unwrap(),
            old.root,
            "the checkpoint of size {} is not a prefix (a fork)",
            old.size
        );
    }
    (size, entries)
}

/// `daylight log serve` of the log in `d` at `addr`, its standard error
/// appended to `log`; waits until it listens.
fn serve(d: &str, addr: &str, log: &Path) -> Server {
    let server = common::spawn_logged(
        &[
            "log",
            "serve",
            "--dir",
            d,
            "--listen",
            addr,
            "--key-rate",
            "0",
        ],
        log,
    );
    wait_ready(addr);
    server
}

/// Prints the server's log if the test fails.
struct ShowOnPanic(PathBuf);

impl Drop for ShowOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- daylight log serve ---\n{log}");
        }
    }
}

#[test]
fn a_filesystem_turned_read_only_under_the_server_refuses_clearly_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("ext4.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    if !run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]) {
        eprintln!("skipping: mkfs.ext4 is not available");
        return;
    }
    let Some(dev) = Loop::attach(&image) else {
        eprintln!("skipping: cannot attach a loop device here (needs root and /dev/loop*)");
        return;
    };
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut fs = Ext4 {
        dev: dev.0.clone(),
        at: mnt.clone(),
        mounted: false,
    };
    if !fs.mount() {
        eprintln!("skipping: cannot mount ext4 on {} here", dev.0);
        return;
    }
    let knob = PathBuf::from(format!("/sys/fs/ext4/{}/trigger_fs_error", dev.name()));
    if !knob.exists() {
        eprintln!("skipping: this kernel has no {}", knob.display());
        return;
    }

    let dir = mnt.join("log");
    let d = dir.to_str().unwrap();
    let agency_key = tmp.path().join("agency.key");
    let vkey = new_log_with_agency(d, "ro.test/log", "0", agency_key.to_str().unwrap());
    let vkey = VerifierKey::parse(&vkey).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let server_log = tmp.path().join("serve.log");
    let _show = ShowOnPanic(server_log.clone());
    let mut server = Some(serve(d, &addr, &server_log));
    let mut records = Records::new(&agency_key, "ro.test/log", tmp.path());

    // Healthy: 20 records, each acknowledged.
    let mut acked: HashMap<u64, Vec<u8>> = HashMap::new();
    for _ in 0..20 {
        let rec = records.next();
        let (s, body) = post_record(&url, rec.clone());
        assert_eq!(s, 200, "{body}");
        assert!(acked.insert(body["index"].as_u64().unwrap(), rec).is_none());
    }
    let before = checkpoint_covering(&url, &vkey, *acked.keys().max().unwrap());
    let mut served = vec![before];

    // The fault, while a submitter keeps sending records.
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (url, stop) = (url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let rec = records.next();
                let (s, body) = post_record(&url, rec.clone());
                answers.push((s, body, rec));
            }
            (answers, records)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&knob, "1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs.read_only() {
        assert!(Instant::now() < deadline, "still {}", fs.options());
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("after trigger_fs_error: {}", fs.options());
    assert!(!fs.writable(), "the filesystem still takes writes");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (answers, mut records) = submitter.join().unwrap();
    let mut in_flight_refused = Vec::new();
    let mut in_flight_acked = 0;
    for (s, body, rec) in answers {
        if s == 200 {
            in_flight_acked += 1;
            assert!(acked.insert(body["index"].as_u64().unwrap(), rec).is_none());
        } else {
            assert_eq!(s, 503, "{body}");
            assert_eq!(body["error"], "storage_unavailable", "{body}");
            in_flight_refused.push(rec);
        }
    }
    eprintln!(
        "around the fault: {in_flight_acked} acknowledged, {} refused",
        in_flight_refused.len()
    );
    assert!(!in_flight_refused.is_empty(), "no submission met the fault");

    // Read-only: every submission refused with a JSON error, quickly.
    let mut refused = Vec::new();
    for _ in 0..5 {
        let rec = records.next();
        let t = Instant::now();
        let (s, body) = post_record(&url, rec.clone());
        eprintln!("read-only: {s} {body} in {:?}", t.elapsed());
        assert_eq!(s, 503, "{body}");
        assert_eq!(body["error"], "storage_unavailable", "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("cannot write to its storage") && detail.contains("again"),
            "{body}"
        );
        assert!(t.elapsed() < Duration::from_secs(5), "slow refusal");
        refused.push(rec);
    }
    assert!(
        server.as_mut().unwrap().0.try_wait().unwrap().is_none(),
        "the server died"
    );

    // Reads keep working.
    let (s, _) = http_get(&format!("{url}/api/v1/log"));
    assert_eq!(s, 200, "GET /api/v1/log");
    let (s, cp) = http_get(&format!("{url}/checkpoint"));
    assert_eq!(s, 200);
    served.push(cp);
    let (size_ro, _) = check_log(&url, &vkey, &acked, &served);
    for (&i, bytes) in &acked {
        let (s, body) = http_get(&format!("{url}/api/v1/entries/{i}"));
        assert_eq!(s, 200, "entry {i}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let original: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(v["record"], original, "entry {i}");
    }
    eprintln!(
        "read-only: {} acknowledged entries read back, published size {size_ro}",
        acked.len()
    );

    // The repair. First what an operator tries: remount read-write (Linux
    // 6.18 refuses it for an aborted journal).
    let remounted = run("mount", &["-o", "remount,rw", mnt.to_str().unwrap()]);
    eprintln!(
        "mount -o remount,rw: {}; now {}",
        if remounted { "succeeded" } else { "refused" },
        fs.options()
    );
    if remounted && !fs.read_only() && fs.writable() {
        // Refused if a sync of the server's failed (then only a restart
        // helps); accepted only if none did, and then it must survive the
        // repair below like every other acknowledged entry.
        let rec = records.next();
        let (s, body) = post_record(&url, rec.clone());
        if s == 200 {
            assert!(acked.insert(body["index"].as_u64().unwrap(), rec).is_none());
        } else {
            assert_eq!(s, 503, "{body}");
            assert_eq!(body["error"], "storage_unavailable", "{body}");
            refused.push(rec);
        }
    }
    // Stop, unmount, check, mount, serve again.
    drop(server.take());
    fs.umount();
    let fsck = Command::new("e2fsck")
        .args(["-fy", &dev.0])
        .output()
        .unwrap();
    let code = fsck.status.code();
    eprintln!(
        "e2fsck -fy: exit {code:?}\n{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    assert!(
        matches!(code, Some(0 | 1)),
        "e2fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    assert!(fs.mount(), "mount after e2fsck");
    assert!(!fs.read_only(), "{}", fs.options());
    server = Some(serve(d, &addr, &server_log));

    // Everything acknowledged is there, nothing refused after the fault is.
    let last = *acked.keys().max().unwrap();
    served.push(checkpoint_covering(&url, &vkey, last));
    let (size, entries) = check_log(&url, &vkey, &acked, &served);
    let present: HashSet<&Vec<u8>> = entries.iter().collect();
    for rec in &refused {
        assert!(!present.contains(rec), "a refused record is in the log");
    }
    let in_flight_kept = in_flight_refused
        .iter()
        .filter(|r| present.contains(r))
        .count();
    eprintln!(
        "repaired: size {size}, {} acknowledged entries intact, 0 lost; \
         {in_flight_kept} of {} refused in flight were kept",
        acked.len(),
        in_flight_refused.len()
    );

    // And it takes submissions again, after the entries it has.
    let mut fresh = Vec::new();
    for _ in 0..5 {
        let rec = records.next();
        let (s, body) = post_record(&url, rec.clone());
        assert_eq!(s, 200, "{body}");
        let i = body["index"].as_u64().unwrap();
        assert!(i >= size, "index {i} reused (size {size})");
        fresh.push(i);
        acked.insert(i, rec);
    }
    served.push(checkpoint_covering(
        &url,
        &vkey,
        *fresh.iter().max().unwrap(),
    ));
    check_log(&url, &vkey, &acked, &served);
    drop(server);
}
