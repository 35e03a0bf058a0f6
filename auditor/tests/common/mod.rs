//! Test fixtures: records built with the schemas crate, and a static
//! tlog-tiles server that serves any files we like (an honest log, a log
//! that tampers, a witness's monitoring endpoint), counting every request.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Duration, TimeZone, Utc};
use daylight_auditor::{AuditOptions, FindingsReport, ProgressMode};
use daylight_core::tile::{encode_entry_bundle, new_tiles, read_tile_data, TILE_WIDTH};
use daylight_core::tree::MemoryTree;
use daylight_core::witness_protocol::checkpoint_path;
use daylight_core::{Checkpoint, KeyName, KeyType, LeafIndex, SignerKey, TreeSize};
use daylight_schemas::{
    Authority, Body, Commitment, DataCategory, Decision, DisclosureBody, EmergencyBody,
    EmergencyGround, EntryRef, ExtensionBody, IssuerType, Jurisdiction, Name, Offence, PolicyBody,
    RatificationBody, Record, RefusalBody, RefusalReason, ReleaseBody, RequestBody, Role,
    SealReason, ShareRef, SignedRecord, TargetType, Text, Timestamp, WithdrawalBody,
    WithdrawalReason,
};

pub const ORIGIN: &str = "log.test/daylight";

pub fn key(name: &str, t: KeyType, seed: u8) -> SignerKey {
    SignerKey::from_seed(KeyName::new(name).unwrap(), t, [seed; 32])
}

/// A fixed origin of time for records: 2026-06-01.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

pub fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp::new(t).unwrap()
}

/// The actors of a test log.
pub struct Actors {
    pub log: SignerKey,
    pub agency: SignerKey,
    pub agency2: SignerKey,
    pub court: SignerKey,
    pub provider: SignerKey,
    pub witness: SignerKey,
    /// Three custodians of escrowed keys (threshold custody), registered
    /// by [`Entries::with_custodians`] only.
    pub custodians: [SignerKey; 3],
}

impl Actors {
    pub fn new() -> Actors {
        Actors {
            log: key(ORIGIN, KeyType::Ed25519, 1),
            agency: key("agency.test", KeyType::Ed25519, 2),
            agency2: key("agency2.test", KeyType::Ed25519, 3),
            court: key("court.test", KeyType::Ed25519, 4),
            provider: key("messenger.example", KeyType::Ed25519, 5),
            witness: key("witness.test", KeyType::CosignatureV1, 6),
            custodians: [
                key("custodian-a.test", KeyType::Ed25519, 7),
                key("custodian-b.test", KeyType::Ed25519, 8),
                key("custodian-c.test", KeyType::Ed25519, 9),
            ],
        }
    }
}

/// Builds a log's entries in order, tracking indexes.
pub struct Entries {
    pub records: Vec<SignedRecord>,
    pub actors: Actors,
    /// The log key that signs registry entries now (the first key until a
    /// rotation).
    pub log_key: SignerKey,
    counter: u8,
}

impl Entries {
    /// A log whose registry lists the agencies, the court and the provider.
    pub fn new() -> Entries {
        let actors = Actors::new();
        let log_key = actors.log.clone();
        let mut e = Entries {
            records: Vec::new(),
            actors,
            log_key,
            counter: 0,
        };
        let reg = [
            (Role::Agency, e.actors.agency.verifier().clone()),
            (Role::Agency, e.actors.agency2.verifier().clone()),
            (Role::Court, e.actors.court.verifier().clone()),
            (Role::Provider, e.actors.provider.verifier().clone()),
        ];
        for (role, k) in reg {
            let r = Record::registry_add(role, &k, t0() - Duration::days(30))
                .unwrap()
                .sign(&e.actors.log, ORIGIN)
                .unwrap();
            e.records.push(r);
        }
        e
    }

    /// [`Entries::new`] with the three custodians registered too.
    pub fn with_custodians() -> Entries {
        let mut e = Entries::new();
        for c in e.actors.custodians.clone() {
            e.register(Role::Custodian, &c);
        }
        e
    }

    /// Registers `k` for `role` (signed by the log's current key).
    pub fn register(&mut self, role: Role, k: &SignerKey) -> EntryRef {
        let r = Record::registry_add(role, k.verifier(), t0() - Duration::days(30)).unwrap();
        self.registry(r)
    }

    /// `custodian`'s receipt for releasing `share` for `e` at `at`.
    pub fn share_release_by(
        &mut self,
        custodian: &SignerKey,
        e: EntryRef,
        share: ShareRef,
        at: DateTime<Utc>,
    ) -> EntryRef {
        let r = Record::share_release(e, share, at, at)
            .unwrap()
            .sign(custodian, ORIGIN)
            .unwrap();
        self.push(r)
    }

    /// Custodian `c`'s (0, 1 or 2) receipt for releasing `share` for `e`.
    pub fn share_release(
        &mut self,
        c: usize,
        e: EntryRef,
        share: ShareRef,
        at: DateTime<Utc>,
    ) -> EntryRef {
        let k = self.actors.custodians[c].clone();
        self.share_release_by(&k, e, share, at)
    }

    pub fn push(&mut self, r: SignedRecord) -> EntryRef {
        let index = self.records.len() as u64;
        let er = EntryRef::to(&r, LeafIndex(index));
        self.records.push(r);
        er
    }

    pub fn len(&self) -> u64 {
        self.records.len() as u64
    }

    fn commitment(&mut self) -> Commitment {
        self.counter = self.counter.wrapping_add(1);
        let mut c = [self.counter; 32];
        c[0] = self.records.len() as u8;
        Commitment(c)
    }

    /// A request by `agency` created at `created`, valid for 30 days, sealed 90 days.
    pub fn request_by(
        &mut self,
        agency: &SignerKey,
        created: DateTime<Utc>,
        case: &str,
    ) -> EntryRef {
        let r = self.request_record(created, case);
        self.push(r.sign(agency, ORIGIN).unwrap())
    }

    /// The unsigned record [`Entries::request_by`] signs.
    pub fn request_record(&mut self, created: DateTime<Utc>, case: &str) -> Record {
        let targets = vec![self.commitment(), self.commitment()];
        let body = RequestBody {
            jurisdiction: Jurisdiction::new("US-NY").unwrap(),
            legal_basis: Text::new("18 U.S.C. 2518").unwrap(),
            issuing_authority: Authority {
                name: Text::new("SDNY").unwrap(),
                issuer_type: IssuerType::Court,
            },
            provider: Name::new("messenger.example").unwrap(),
            data_categories: BTreeSet::from([DataCategory::Content, DataCategory::Traffic]),
            offence: Offence::Narcotics,
            target_type: TargetType::Account,
            target_count: 2,
            targets,
            valid_from: ts(created),
            valid_until: ts(created + Duration::days(30)),
            sealed_until: ts(created + Duration::days(90)),
            case_reference: Text::new(case).unwrap(),
            order_document: self.commitment(),
            data_period: None,
        };
        Record::new(created, Body::Request(body)).unwrap()
    }

    pub fn request(&mut self, created: DateTime<Utc>, case: &str) -> EntryRef {
        let a = self.actors.agency.clone();
        self.request_by(&a, created, case)
    }

    /// An emergency by `agency`, ratify by 48 hours after creation.
    pub fn emergency_by(&mut self, agency: &SignerKey, created: DateTime<Utc>) -> EntryRef {
        let body = EmergencyBody {
            jurisdiction: Jurisdiction::new("DE").unwrap(),
            legal_basis: Text::new("EU 2023/1543 Art. 4(5)").unwrap(),
            issuing_authority: Authority {
                name: Text::new("Staatsanwaltschaft").unwrap(),
                issuer_type: IssuerType::Prosecutor,
            },
            provider: Name::new("messenger.example").unwrap(),
            data_categories: BTreeSet::from([DataCategory::Location]),
            offence: Offence::Kidnapping,
            target_type: TargetType::PhoneNumber,
            target_count: 1,
            targets: vec![self.commitment()],
            valid_from: ts(created),
            valid_until: ts(created + Duration::days(2)),
            sealed_until: ts(created + Duration::days(60)),
            case_reference: Text::new("276 Js 1234/26").unwrap(),
            ground: EmergencyGround::LifeOrSafety,
            ratify_by: ts(created + Duration::hours(48)),
            order_document: None,
            data_period: None,
        };
        let r = Record::new(created, Body::Emergency(body))
            .unwrap()
            .sign(agency, ORIGIN)
            .unwrap();
        self.push(r)
    }

    pub fn emergency(&mut self, created: DateTime<Utc>) -> EntryRef {
        let a = self.actors.agency.clone();
        self.emergency_by(&a, created)
    }

    pub fn ratification(&mut self, e: EntryRef, created: DateTime<Utc>, granted: bool) -> EntryRef {
        let body = RatificationBody {
            emergency: e,
            decision: if granted {
                Decision::Granted
            } else {
                Decision::Denied
            },
            case_reference: Text::new("AG Berlin 1 Gs 1/26").unwrap(),
            order_document: self.commitment(),
        };
        let r = Record::new(created, Body::Ratification(body))
            .unwrap()
            .sign(&self.actors.court, ORIGIN)
            .unwrap();
        self.push(r)
    }

    pub fn extension(
        &mut self,
        e: EntryRef,
        created: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> EntryRef {
        let body = ExtensionBody {
            entry: e,
            sealed_until: ts(until),
            reason: SealReason::InvestigationOngoing,
        };
        let r = Record::new(created, Body::Extension(body))
            .unwrap()
            .sign(&self.actors.court, ORIGIN)
            .unwrap();
        self.push(r)
    }

    pub fn disclosure(&mut self, e: EntryRef, created: DateTime<Utc>) -> EntryRef {
        let body = DisclosureBody {
            entry: e,
            targets_opened: vec![],
            targets_withheld: vec![],
            order_document_opened: None,
            order_document_withheld: Some(SealReason::ThirdPartyPrivacy),
        };
        let r = Record::new(created, Body::Disclosure(body))
            .unwrap()
            .sign(&self.actors.agency, ORIGIN)
            .unwrap();
        self.push(r)
    }

    pub fn release(&mut self, e: EntryRef, targets: u32, at: DateTime<Utc>) -> EntryRef {
        let body = ReleaseBody {
            entry: e,
            targets_released: targets,
            released_at: ts(at),
            share: None,
        };
        let r = Record::new(at, Body::Release(body))
            .unwrap()
            .sign(&self.actors.provider, ORIGIN)
            .unwrap();
        self.push(r)
    }

    /// A refusal of `e` for `reason`, signed by `provider`.
    pub fn refusal_by(
        &mut self,
        provider: &SignerKey,
        e: EntryRef,
        reason: RefusalReason,
        at: DateTime<Utc>,
    ) -> EntryRef {
        let body = RefusalBody {
            entry: e,
            reason,
            refused_at: ts(at),
        };
        let r = Record::new(at, Body::Refusal(body))
            .unwrap()
            .sign(provider, ORIGIN)
            .unwrap();
        self.push(r)
    }

    /// A refusal of `e` by the provider it is addressed to.
    pub fn refusal(&mut self, e: EntryRef, reason: RefusalReason, at: DateTime<Utc>) -> EntryRef {
        let p = self.actors.provider.clone();
        self.refusal_by(&p, e, reason, at)
    }

    /// The provider publishes `lines` as its policy.
    pub fn policy(&mut self, lines: &[&str], at: DateTime<Utc>) -> EntryRef {
        let body = PolicyBody {
            lines: lines.iter().map(|l| Text::new(l).unwrap()).collect(),
        };
        let r = Record::new(at, Body::Policy(body))
            .unwrap()
            .sign(&self.actors.provider, ORIGIN)
            .unwrap();
        self.push(r)
    }

    pub fn withdrawal(&mut self, e: EntryRef, created: DateTime<Utc>) -> EntryRef {
        let body = WithdrawalBody {
            entry: e,
            reason: WithdrawalReason::IssuedInError,
        };
        let r = Record::new(created, Body::Withdrawal(body))
            .unwrap()
            .sign(&self.actors.agency, ORIGIN)
            .unwrap();
        self.push(r)
    }

    pub fn revoke(&mut self, role: Role, k: &SignerKey, created: DateTime<Utc>) -> EntryRef {
        let r = Record::registry_revoke(role, k.verifier(), created)
            .unwrap()
            .sign(&self.log_key, ORIGIN)
            .unwrap();
        self.push(r)
    }

    /// A registry entry signed by the current log key.
    pub fn registry(&mut self, r: Record) -> EntryRef {
        let signed = r.sign(&self.log_key, ORIGIN).unwrap();
        self.push(signed)
    }

    /// Rotates the log's key to `new`, signed by `signer` (the current key
    /// for an honest log), with the transition ending at `until`.
    pub fn rotate_log_key_signed_by(
        &mut self,
        new: &SignerKey,
        signer: &SignerKey,
        until: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> EntryRef {
        let r = Record::registry_rotate(
            Role::Log,
            self.log_key.verifier(),
            new.verifier(),
            Some(until),
            created,
        )
        .unwrap()
        .sign(signer, ORIGIN)
        .unwrap();
        self.log_key = new.clone();
        self.push(r)
    }

    /// An honest log-key rotation: signed by the current key.
    pub fn rotate_log_key(
        &mut self,
        new: &SignerKey,
        until: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> EntryRef {
        let old = self.log_key.clone();
        self.rotate_log_key_signed_by(new, &old, until, created)
    }

    /// Rotates an agency, court or provider key (signed by the log).
    pub fn rotate(
        &mut self,
        role: Role,
        old: &SignerKey,
        new: &SignerKey,
        created: DateTime<Utc>,
    ) -> EntryRef {
        let r =
            Record::registry_rotate(role, old.verifier(), new.verifier(), None, created).unwrap();
        self.registry(r)
    }

    pub fn bytes(&self) -> Vec<Vec<u8>> {
        self.records.iter().map(|r| r.to_bytes()).collect()
    }
}

/// Every file of a tlog-tiles log of these entries at `size`: tiles, bundles,
/// the checkpoint (signed by `log`, cosigned by `witness`), and /api/v1/log.
pub fn log_files(
    entries: &[Vec<u8>],
    size: u64,
    log: &SignerKey,
    witness: Option<&SignerKey>,
) -> HashMap<String, Vec<u8>> {
    log_files_keys(entries, size, &[log], witness, &[log])
}

/// As [`log_files`], with the checkpoint signed by every key of `signers`
/// and /api/v1/log listing `vkeys` (oldest first; the last is `vkey`).
pub fn log_files_keys(
    entries: &[Vec<u8>],
    size: u64,
    signers: &[&SignerKey],
    witness: Option<&SignerKey>,
    vkeys: &[&SignerKey],
) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    let mut tree = MemoryTree::new();
    for e in &entries[..size as usize] {
        tree.append(e);
    }
    for t in new_tiles(TreeSize(0), TreeSize(size)) {
        files.insert(format!("/{}", t.path()), read_tile_data(t, &tree).unwrap());
    }
    let mut start = 0u64;
    while start < size {
        let end = (start + TILE_WIDTH).min(size);
        let coord = daylight_core::tile::BundleCoord {
            index: start / TILE_WIDTH,
            width: (end - start) as u16,
        };
        let bundle = encode_entry_bundle(
            entries[start as usize..end as usize]
                .iter()
                .map(Vec::as_slice),
        )
        .unwrap();
        files.insert(format!("/{}", coord.path()), bundle);
        start = end;
    }
    files.insert("/checkpoint".into(), checkpoint_by(&tree, signers, witness));
    let witnesses: Vec<serde_json::Value> = witness
        .iter()
        .map(|w| serde_json::json!({ "vkey": w.verifier().to_string(), "url": null }))
        .collect();
    files.insert(
        "/api/v1/log".into(),
        serde_json::to_vec(&serde_json::json!({
            "origin": ORIGIN,
            "vkey": vkeys.last().unwrap().verifier().to_string(),
            "vkeys": vkeys
                .iter()
                .map(|k| serde_json::json!({
                    "vkey": k.verifier().to_string(),
                    "from": null,
                    "replaced_at": null,
                    "until": null,
                }))
                .collect::<Vec<_>>(),
            "size": size,
            "quorum": witnesses.len(),
            "witnesses": witnesses,
        }))
        .unwrap(),
    );
    files
}

/// A checkpoint of `tree`, signed by `log`, cosigned by `witness`.
pub fn checkpoint(tree: &MemoryTree, log: &SignerKey, witness: Option<&SignerKey>) -> Vec<u8> {
    checkpoint_by(tree, &[log], witness)
}

/// A checkpoint of `tree`, signed by each of `logs`, cosigned by `witness`.
pub fn checkpoint_by(
    tree: &MemoryTree,
    logs: &[&SignerKey],
    witness: Option<&SignerKey>,
) -> Vec<u8> {
    let cp = Checkpoint::new(ORIGIN, tree.size(), tree.root());
    let mut note = daylight_core::Note::new(&cp.to_text()).unwrap();
    for log in logs {
        note.sign(log, 0).unwrap();
    }
    if let Some(w) = witness {
        note.sign(w, 1_780_000_000).unwrap();
    }
    note.to_bytes()
}

/// The tree of the first `size` entries.
pub fn tree_of(entries: &[Vec<u8>], size: u64) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for e in &entries[..size as usize] {
        tree.append(e);
    }
    tree
}

/// Audit options for tests: no progress, two threads, rules at `now`.
pub fn options(url: &str, dir: &std::path::Path, now: DateTime<Utc>) -> AuditOptions {
    let mut o = AuditOptions::new(url, dir);
    o.now = now;
    o.progress = ProgressMode::Off;
    o.threads = 2;
    o
}

/// Serves `e` as an honest log cosigned by its witness, which also serves
/// its monitoring endpoint on the same server; audits once at `now`.
pub async fn audit_entries(
    e: &Entries,
    now: DateTime<Utc>,
) -> (FindingsReport, StaticServer, tempfile::TempDir) {
    let bytes = e.bytes();
    let mut files = log_files(
        &bytes,
        bytes.len() as u64,
        &e.actors.log,
        Some(&e.actors.witness),
    );
    let cp = files["/checkpoint"].clone();
    files.insert(witness_path(), cp);
    let server = StaticServer::start(files).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server.url(), dir.path(), now);
    opts.witnesses = vec![server.url()];
    let (report, _) = daylight_auditor::audit(&opts).await.unwrap();
    (report, server, dir)
}

/// Serves the first `size` entries of `e` on `server`, cosigned, with the
/// witness's copy.
pub fn serve_log(server: &StaticServer, e: &Entries, size: u64) {
    let bytes = e.bytes();
    let mut files = log_files(&bytes, size, &e.actors.log, Some(&e.actors.witness));
    let cp = files["/checkpoint"].clone();
    files.insert(witness_path(), cp);
    server.replace_all(files);
}

/// Audits what `server` serves into `dir` at `now` under `rules`.
pub async fn run_audit(
    server: &StaticServer,
    dir: &std::path::Path,
    now: DateTime<Utc>,
    rules: &daylight_auditor::Rules,
) -> FindingsReport {
    let mut opts = options(&server.url(), dir, now);
    opts.witnesses = vec![server.url()];
    opts.rules = rules.clone();
    daylight_auditor::audit(&opts).await.unwrap().0
}

/// What a report says, comparable across runs: every finding's id,
/// entries, title and details (the witness's reachability aside).
pub fn found_text(r: &FindingsReport) -> BTreeSet<String> {
    r.findings
        .iter()
        .filter(|f| f.id != "witness_unreachable")
        .map(|f| format!("{} {:?} {} {}", f.id, f.entries, f.title, f.details))
        .collect()
}

/// The ids of the findings that count (or are integrity failures).
pub fn ids(r: &FindingsReport) -> BTreeSet<String> {
    r.findings
        .iter()
        .filter(|f| f.counts() || f.is_integrity())
        .map(|f| f.id.clone())
        .collect()
}

pub fn with_id<'a>(r: &'a FindingsReport, id: &str) -> Vec<&'a daylight_auditor::Finding> {
    r.findings.iter().filter(|f| f.id == id).collect()
}

pub fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The monitoring path of a witness for the test log.
pub fn witness_path() -> String {
    checkpoint_path(ORIGIN)
}

#[derive(Default)]
pub struct Served {
    pub files: Mutex<HashMap<String, Vec<u8>>>,
    pub hits: Mutex<HashMap<String, usize>>,
    /// Paths answered with this status instead of their bytes.
    pub refused: Mutex<HashMap<String, u16>>,
}

/// A static HTTP server over a map of paths to bytes.
pub struct StaticServer {
    pub addr: std::net::SocketAddr,
    pub served: Arc<Served>,
    task: tokio::task::AbortHandle,
}

impl StaticServer {
    pub async fn start(files: HashMap<String, Vec<u8>>) -> StaticServer {
        let served = Arc::new(Served {
            files: Mutex::new(files),
            hits: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        });
        let app = Router::new().fallback(serve).with_state(served.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await }).abort_handle();
        StaticServer { addr, served, task }
    }

    /// Stops serving: new connections are refused.
    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, path: &str, data: Vec<u8>) {
        self.served.files.lock().unwrap().insert(path.into(), data);
    }

    /// Answers `path` with `status` (and no bytes) from now on.
    pub fn refuse(&self, path: &str, status: u16) {
        self.served
            .refused
            .lock()
            .unwrap()
            .insert(path.into(), status);
    }

    pub fn replace_all(&self, files: HashMap<String, Vec<u8>>) {
        *self.served.files.lock().unwrap() = files;
    }

    pub fn get(&self, path: &str) -> Vec<u8> {
        self.served.files.lock().unwrap()[path].clone()
    }

    /// Requests per path so far.
    pub fn hits(&self) -> HashMap<String, usize> {
        self.served.hits.lock().unwrap().clone()
    }
}

async fn serve(State(s): State<Arc<Served>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    if let Some(&status) = s.refused.lock().unwrap().get(&path) {
        return (StatusCode::from_u16(status).unwrap(), "refused\n").into_response();
    }
    match s.files.lock().unwrap().get(&path) {
        Some(d) => (StatusCode::OK, d.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
