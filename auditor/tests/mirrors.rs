//! Readers use mirrors (issue 17): the auditor audits a C2SP tlog-mirror's
//! monitoring prefix as it audits a log (the same verified tree, with the
//! log stopped too), and compares a log with its mirrors (`--mirror`): an
//! honest mirror, one behind, one serving another entry byte, one holding a
//! forked log-signed checkpoint, one that cannot be reached. Mirrors are a
//! real `daylight-mirror` on a free 127.0.0.1 port, pushed to as a log
//! pushes (add-checkpoint, add-entries), or static tlog-tiles servers that
//! misbehave on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use common::*;
use daylight_auditor::{FindingsReport, Rules};
use daylight_core::mirror_protocol::{package_proof, AddEntriesEncoder, AddEntriesHeader};
use daylight_core::tree::{consistency_proof, MemoryTree};
use daylight_core::witness_protocol::{origin_hash, AddCheckpoint};
use daylight_core::{KeyName, KeyType, LeafIndex, SignerKey, TreeSize, VerifierKey};
use daylight_mirror::{store, Mirror};

/// A log of `n` entries or more: the registry, then requests.
pub fn entries(n: u64) -> Entries {
    let mut e = Entries::new();
    let mut i = 0;
    while e.len() < n {
        e.request(t0() + Duration::hours(i), &format!("case-{i}"));
        i += 1;
    }
    e
}

/// A real mirror of the test log on a free port: its base URL.
pub async fn start_mirror(log: &VerifierKey) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(store::DB_FILE);
    store::create(&db).unwrap();
    let mut conn = store::open(&db).unwrap();
    store::add_log(&mut conn, ORIGIN, log, 1).unwrap();
    let key = SignerKey::from_seed(
        KeyName::new("mirror.test/m1").unwrap(),
        KeyType::CosignatureV1,
        [42; 32],
    );
    let mirror = Arc::new(Mirror::open(&db, key).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(daylight_mirror::serve(
        listener,
        mirror,
        std::future::pending(),
    ));
    (format!("http://{addr}"), dir)
}

/// Pushes the first `size` entries of `e` to the mirror at `url`, as the
/// log does: its checkpoint of that size (from `old`, the mirror's
/// pending size), then the entries from `old`.
pub async fn push(url: &str, e: &Entries, old: u64, size: u64) {
    let bytes = e.bytes();
    let tree = tree_of(&bytes, size);
    let client = reqwest::Client::new();
    let proof = if old == 0 {
        Vec::new()
    } else {
        consistency_proof(TreeSize(old), TreeSize(size), &tree).unwrap()
    };
    let body = AddCheckpoint {
        old: TreeSize(old),
        proof,
        checkpoint: checkpoint(&tree, &e.actors.log, None),
    }
    .to_bytes();
    let r = client
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .timeout(StdDuration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let header = AddEntriesHeader {
        origin: ORIGIN.to_owned(),
        upload_start: LeafIndex(old),
        upload_end: TreeSize(size),
        ticket: Vec::new(),
    };
    let mut out = Vec::new();
    let mut enc = AddEntriesEncoder::new(&header, &mut out).unwrap();
    while let Some(range) = enc.next_package() {
        let list = &bytes[range.start.get() as usize..range.end.get() as usize];
        let proof = package_proof(range, TreeSize(size), &tree).unwrap();
        enc.push_package(list, &proof, &mut out).unwrap();
    }
    let r = client
        .post(format!("{url}/add-entries"))
        .header("content-type", "application/octet-stream")
        .body(out)
        .timeout(StdDuration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

/// A static server serving `files` (tlog-tiles paths from the root, as
/// [`log_files`] gives them) under the test log's mirror prefix; its
/// base URL.
pub async fn static_mirror(files: HashMap<String, Vec<u8>>) -> (StaticServer, String) {
    let hash = origin_hash(ORIGIN);
    let prefixed = files
        .into_iter()
        .filter(|(p, _)| p.starts_with("/checkpoint") || p.starts_with("/tile/"))
        .map(|(p, d)| (format!("/{hash}{p}"), d))
        .collect();
    let server = StaticServer::start(prefixed).await;
    let url = server.url();
    (server, url)
}

/// Audits the log at `log` with the mirrors `mirrors` under `rules`.
pub async fn audit_with(
    log: &str,
    dir: &std::path::Path,
    mirrors: &[String],
    rules: Rules,
) -> FindingsReport {
    let mut opts = options(log, dir, t0() + Duration::days(1));
    opts.mirrors = mirrors.to_vec();
    opts.rules = rules;
    daylight_auditor::audit(&opts).await.unwrap().0
}

/// A free port nobody listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The test log's monitoring prefix on the mirror at `base`.
fn prefix(base: &str) -> String {
    format!("{base}/{}", origin_hash(ORIGIN))
}

#[tokio::test]
async fn a_mirror_prefix_is_audited_like_the_log_even_with_the_log_stopped() {
    let e = entries(40);
    let n = e.len();
    let bytes = e.bytes();
    let log = StaticServer::start(log_files(&bytes, n, &e.actors.log, None)).await;
    let (mirror, _m) = start_mirror(e.actors.log.verifier()).await;
    push(&mirror, &e, 0, n).await;

    let via_log = tempfile::tempdir().unwrap();
    let a = audit_with(&log.url(), via_log.path(), &[], Rules::default()).await;
    // No --log-key: the key is the one the mirror lists for the origin.
    let via_mirror = tempfile::tempdir().unwrap();
    let b = audit_with(&prefix(&mirror), via_mirror.path(), &[], Rules::default()).await;
    assert_eq!(a.exit_code, 0, "{}", a.summary());
    assert_eq!(b.exit_code, 0, "{}", b.summary());
    let (va, vb) = (
        a.verified_checkpoint.clone().unwrap(),
        b.verified_checkpoint.clone().unwrap(),
    );
    assert_eq!((va.size, &va.root), (vb.size, &vb.root));
    assert_eq!(vb.size, n);
    assert_eq!(found_text(&a), found_text(&b));
    assert_eq!(b.log.vkey, e.actors.log.verifier().to_string());

    // The log stops; the mirror alone still answers audits: a fresh
    // directory with the key given out of band, and the pinned one.
    log.stop();
    let fresh = tempfile::tempdir().unwrap();
    let mut opts = options(&prefix(&mirror), fresh.path(), t0() + Duration::days(1));
    opts.trusted_key = Some(e.actors.log.verifier().to_string());
    let c = daylight_auditor::audit(&opts).await.unwrap().0;
    assert_eq!(c.exit_code, 0, "{}", c.summary());
    assert_eq!(c.verified_checkpoint.unwrap().root, va.root);
    let again = audit_with(&prefix(&mirror), via_mirror.path(), &[], Rules::default()).await;
    assert_eq!(again.exit_code, 0, "{}", again.summary());
    assert_eq!(again.entries_new, 0);
    // And the log itself is gone.
    let gone = tempfile::tempdir().unwrap();
    let opts = options(&log.url(), gone.path(), t0());
    assert!(daylight_auditor::audit(&opts).await.is_err());
}

#[tokio::test]
async fn a_mirror_prefix_without_a_known_key_is_refused() {
    let e = entries(10);
    let (server, base) = static_mirror(log_files(&e.bytes(), e.len(), &e.actors.log, None)).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = options(&prefix(&base), dir.path(), t0());
    let err = daylight_auditor::audit(&opts).await.unwrap_err();
    assert!(err.to_string().contains("--log-key"), "{err}");
    drop(server);
}

#[tokio::test]
async fn a_log_that_hides_its_api_is_not_read_as_a_mirror() {
    // A log at its own URL that answers 404 to /api/v1/log must not switch
    // the audit to a mirror's reading (which does not count the witness
    // quorum): only a URL ending in the origin's hash is a mirror's prefix.
    let e = entries(10);
    let mut files = log_files(&e.bytes(), e.len(), &e.actors.log, None);
    assert!(
        files.remove("/api/v1/log").is_some(),
        "the log serves its API"
    );
    let log = StaticServer::start(files).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&log.url(), dir.path(), t0());
    opts.trusted_key = Some(e.actors.log.verifier().to_string());
    let err = daylight_auditor::audit(&opts).await.unwrap_err();
    assert!(err.to_string().contains("prefix"), "{err}");
}

#[tokio::test]
async fn an_honest_mirror_is_clean() {
    let e = entries(300);
    let n = e.len();
    let log = StaticServer::start(log_files(&e.bytes(), n, &e.actors.log, None)).await;
    let (mirror, _m) = start_mirror(e.actors.log.verifier()).await;
    push(&mirror, &e, 0, n).await;
    let dir = tempfile::tempdir().unwrap();
    // The base URL: the prefix is appended.
    let r = audit_with(
        &log.url(),
        dir.path(),
        std::slice::from_ref(&mirror),
        Rules::default(),
    )
    .await;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    assert_eq!(r.mirrors.len(), 1);
    let m = &r.mirrors[0];
    assert_eq!(m.url, prefix(&mirror));
    assert_eq!((m.status.as_str(), m.size), ("consistent", Some(n)));
    // Two level-0 tiles, one level-1 tile, two bundles.
    assert_eq!(m.compared, 5);
    assert!(r.summary().contains("mirror "), "{}", r.summary());
    // Bounded: one file per run.
    let mut opts = options(&log.url(), dir.path(), t0() + Duration::days(1));
    opts.mirrors = vec![prefix(&mirror)];
    opts.mirror_sample = 1;
    let r = daylight_auditor::audit(&opts).await.unwrap().0;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    assert_eq!(r.mirrors[0].compared, 1);
}

#[tokio::test]
async fn a_mirror_behind_is_flagged_past_the_thresholds() {
    let e = entries(40);
    let n = e.len();
    let log = StaticServer::start(log_files(&e.bytes(), n, &e.actors.log, None)).await;
    let (mirror, _m) = start_mirror(e.actors.log.verifier()).await;
    push(&mirror, &e, 0, 10).await;

    // Within the default thresholds (1000 entries, 24 hours): clean.
    let dir = tempfile::tempdir().unwrap();
    let r = audit_with(
        &log.url(),
        dir.path(),
        std::slice::from_ref(&mirror),
        Rules::default(),
    )
    .await;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    assert_eq!(r.mirrors[0].status, "consistent");
    assert_eq!(r.mirrors[0].size, Some(10));

    // More entries behind than allowed.
    let rules = Rules {
        mirror_max_lag_entries: 5,
        ..Rules::default()
    };
    let r = audit_with(&log.url(), dir.path(), std::slice::from_ref(&mirror), rules).await;
    assert_eq!(r.exit_code, 1, "{}", r.summary());
    assert_eq!(r.mirrors[0].status, "behind");
    let f = with_id(&r, "mirror_behind");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].details["lag_entries"], n - 10);
    // Evidence: the mirror's checkpoint and the log's.
    assert_eq!(f[0].evidence.len(), 2);
    for p in &f[0].evidence {
        assert!(dir.path().join(p).is_file(), "{p}");
    }

    // Behind for longer than allowed (the log served a larger checkpoint
    // than the mirror's before this run).
    let rules = Rules::from_json(r#"{"mirror_max_lag_hours": 0}"#).unwrap();
    let r = audit_with(&log.url(), dir.path(), std::slice::from_ref(&mirror), rules).await;
    assert_eq!(ids(&r), set(&["mirror_behind"]), "{}", r.summary());
    assert!(with_id(&r, "mirror_behind")[0].details["behind_since"].is_string());

    // Disabled: quiet; caught up: quiet.
    let rules =
        Rules::from_json(r#"{"mirror_max_lag_hours": 0, "disabled": ["mirror_behind"]}"#).unwrap();
    let r = audit_with(&log.url(), dir.path(), std::slice::from_ref(&mirror), rules).await;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    push(&mirror, &e, 10, n).await;
    let rules =
        Rules::from_json(r#"{"mirror_max_lag_hours": 0, "mirror_max_lag_entries": 0}"#).unwrap();
    let r = audit_with(&log.url(), dir.path(), &[mirror], rules).await;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    assert_eq!(r.mirrors[0].status, "consistent");
}

#[tokio::test]
async fn a_mirror_serving_another_entry_byte_is_flagged() {
    let e = entries(40);
    let n = e.len();
    let files = log_files(&e.bytes(), n, &e.actors.log, None);
    let log = StaticServer::start(files.clone()).await;
    let (server, base) = static_mirror(files).await;
    let bundle = format!(
        "/{}/{}",
        origin_hash(ORIGIN),
        daylight_core::tile::BundleCoord {
            index: 0,
            width: n as u16
        }
        .path()
    );
    let mut data = server.get(&bundle);
    let last = data.len() - 1;
    data[last] ^= 1;
    server.set(&bundle, data);

    let dir = tempfile::tempdir().unwrap();
    let r = audit_with(&log.url(), dir.path(), &[prefix(&base)], Rules::default()).await;
    assert_eq!(r.exit_code, 1, "{}", r.summary());
    assert_eq!(ids(&r), set(&["mirror_content_mismatch"]));
    assert_eq!(r.mirrors[0].status, "content_mismatch");
    let f = &with_id(&r, "mirror_content_mismatch")[0];
    assert!(f.title.contains(&format!("entry {}", n - 1)), "{}", f.title);
    let kept = dir.path().join(&f.evidence[1]);
    assert_eq!(std::fs::read(kept).unwrap(), server.get(&bundle));
    // The log's own verified tree is untouched.
    assert_eq!(r.verified_checkpoint.unwrap().size, n);
}

#[tokio::test]
async fn a_mirror_refusing_what_it_cosigned_is_flagged_and_a_busy_one_is_a_notice() {
    let e = entries(40);
    let n = e.len();
    let files = log_files(&e.bytes(), n, &e.actors.log, None);
    let log = StaticServer::start(files.clone()).await;
    let (server, base) = static_mirror(files).await;
    let bundle = format!(
        "/{}/{}",
        origin_hash(ORIGIN),
        daylight_core::tile::BundleCoord {
            index: 0,
            width: n as u16
        }
        .path()
    );
    // 403 for a bundle below its cosigned size: withholding.
    server.refuse(&bundle, 403);
    let dir = tempfile::tempdir().unwrap();
    let r = audit_with(&log.url(), dir.path(), &[prefix(&base)], Rules::default()).await;
    assert_eq!(r.exit_code, 1, "{}", r.summary());
    assert_eq!(ids(&r), set(&["mirror_content_mismatch"]));
    assert!(
        with_id(&r, "mirror_content_mismatch")[0]
            .title
            .contains("403"),
        "{}",
        r.summary()
    );
    // 503: a mirror in trouble, a notice only.
    server.refuse(&bundle, 503);
    let dir = tempfile::tempdir().unwrap();
    let r = audit_with(&log.url(), dir.path(), &[prefix(&base)], Rules::default()).await;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    assert!(with_id(&r, "mirror_content_mismatch").is_empty());
    let notices = with_id(&r, "mirror_unreachable");
    assert_eq!(notices.len(), 1, "{}", r.summary());
    assert!(notices[0].title.contains("503"), "{}", notices[0].title);
}

#[tokio::test]
async fn a_mirror_with_a_forked_checkpoint_is_an_integrity_failure() {
    let e = entries(40);
    let n = e.len();
    let bytes = e.bytes();
    let log = StaticServer::start(log_files(&bytes, n, &e.actors.log, None)).await;
    // The same size, signed by the log's key, over other entries.
    let mut other = bytes.clone();
    other[n as usize - 1].push(b' ');
    let (_server, base) = static_mirror(log_files(&other, n, &e.actors.log, None)).await;

    let dir = tempfile::tempdir().unwrap();
    let r = audit_with(&log.url(), dir.path(), &[base], Rules::default()).await;
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    assert_eq!(ids(&r), set(&["mirror_split_view"]));
    assert_eq!(r.mirrors[0].status, "split_view");
    let f = &with_id(&r, "mirror_split_view")[0];
    let case = format!("evidence/mirror-split-view-{n}-{n}");
    assert!(f.evidence.contains(&format!("{case}/log.checkpoint")));
    assert!(f.evidence.contains(&format!("{case}/mirror.checkpoint")));
    let mirror_cp = std::fs::read(dir.path().join(format!("{case}/mirror.checkpoint"))).unwrap();
    let tree: MemoryTree = tree_of(&other, n);
    assert_eq!(mirror_cp, checkpoint(&tree, &e.actors.log, None));
    // A fork below the verified size too.
    let (_s2, base2) = static_mirror(log_files(&other, n - 1, &e.actors.log, None)).await;
    let mut other2 = other.clone();
    other2[3].push(b' ');
    let (_s3, base3) = static_mirror(log_files(&other2, 10, &e.actors.log, None)).await;
    let r = audit_with(&log.url(), dir.path(), &[base2, base3], Rules::default()).await;
    assert_eq!(r.exit_code, 2, "{}", r.summary());
    assert_eq!(r.mirrors[0].status, "consistent", "{:?}", r.mirrors);
    assert_eq!(r.mirrors[1].status, "split_view", "{:?}", r.mirrors);
}

#[tokio::test]
async fn an_unreachable_mirror_is_reported_not_fatal() {
    let e = entries(20);
    let n = e.len();
    let log = StaticServer::start(log_files(&e.bytes(), n, &e.actors.log, None)).await;
    let (empty, empty_url) = static_mirror(HashMap::new()).await;
    let down = format!("http://127.0.0.1:{}", closed_port());
    let dir = tempfile::tempdir().unwrap();
    let r = audit_with(
        &log.url(),
        dir.path(),
        &[down.clone(), empty_url],
        Rules::default(),
    )
    .await;
    assert_eq!(r.exit_code, 0, "{}", r.summary());
    assert_eq!(r.verified_checkpoint.as_ref().unwrap().size, n);
    let statuses: Vec<&str> = r.mirrors.iter().map(|m| m.status.as_str()).collect();
    assert_eq!(statuses, ["unreachable", "no_checkpoint"]);
    let notices = with_id(&r, "mirror_unreachable");
    assert_eq!(notices.len(), 2);
    assert!(notices
        .iter()
        .any(|f| f.title.contains(&prefix(&down)) && !f.title.contains("404")));
    drop(empty);
}

#[test]
fn the_sample_is_bounded_and_keeps_the_edge() {
    use daylight_auditor::mirrors::{sample, TreeFile};
    let size = 3906 * 256 + 17;
    let a = sample(size, 64, 1);
    let b = sample(size, 64, 2);
    assert_eq!(a.len(), 64);
    assert_ne!(a, b);
    let last_bundle = daylight_core::tile::BundleCoord {
        index: size / 256,
        width: 17,
    };
    assert!(a.contains(&TreeFile::Bundle(last_bundle)));
    assert!(a
        .iter()
        .any(|f| matches!(f, TreeFile::Tile(t) if t.level == 0 && t.width == 17)));
    let mut paths: Vec<String> = a.iter().map(TreeFile::path).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 64);
    // A small tree: everything.
    assert_eq!(sample(300, 64, 0).len(), 5);
}

#[test]
fn a_mirror_is_named_by_its_prefix_or_its_base_url() {
    use daylight_auditor::mirrors::mirror_prefix;
    let hash = origin_hash(ORIGIN);
    let want = format!("http://m.test:7390/{hash}");
    for url in [
        "http://m.test:7390".to_owned(),
        "http://m.test:7390/".to_owned(),
        want.clone(),
        format!("{want}/"),
        format!("http://m.test:7390/{}", hash.to_uppercase()),
    ] {
        assert_eq!(mirror_prefix(&url, ORIGIN).to_lowercase(), want, "{url}");
    }
    // A mirror under a path keeps it.
    assert_eq!(
        mirror_prefix("https://m.test/mirror", ORIGIN),
        format!("https://m.test/mirror/{hash}")
    );
}

#[test]
fn mirror_settings_are_not_entry_rules() {
    let rules = Rules::from_json(
        r#"{"mirror_max_lag_entries": 5, "mirror_max_lag_hours": 1, "disabled": ["mirror_behind", "order_splitting"]}"#,
    )
    .unwrap();
    let entries = rules.for_entries();
    assert_eq!(entries.disabled, ["order_splitting"]);
    assert_eq!(
        entries,
        Rules::from_json(r#"{"disabled": ["order_splitting"]}"#).unwrap()
    );
    assert!(Rules::from_json(r#"{"mirror_max_lag_hours": -1}"#).is_err());
    assert!(Rules::from_json(r#"{"disabled": ["mirror_split_view"]}"#).is_err());
}
