//! The parsers of outside bytes that Daylight fuzzes, each with valid seeds
//! drawn from a [`World`] and the code that feeds it one input.
//!
//! One table for both fuzzers: the structure-aware mutation harness
//! (`daylight/tests/fuzz.rs`, run by `cargo test`) and the coverage-guided
//! libFuzzer targets (`fuzz/`, run by `scripts/fuzz-coverage`), so the two
//! always exercise the same library calls with the same keys and policy.
//! Everything is built from fixed seeds at a fixed time ([`NOW`]), so an
//! input that crashes once crashes again on every replay.

use chrono::{DateTime, Duration, Utc};
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::proof::verify_consistency;
use daylight_core::tile::{encode_entry_bundle, parse_entry_bundle, TilePath};
use daylight_core::tree::{consistency_proof, tree_hash};
use daylight_core::witness_protocol::{
    format_cosignatures, parse_cosignatures, parse_size_body, AddCheckpoint,
};
use daylight_core::{
    Checkpoint, Hash, Note, SignedCheckpoint, SignerKey, TlogProof, TreeSize, VerifierKey,
};
use daylight_schemas::{Opening, SignedRecord};

use super::{World, PROVIDER, TARGET};
use crate::{decide, parse_opening, Policy};

/// The fixed "current time" of every gate decision the fuzzers make
/// (2026-06-01T12:00:00Z): a fixed clock keeps replays deterministic.
pub const NOW: i64 = 1_780_315_200;

/// A parser under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parser {
    /// `Note::parse`, then verification by the log key and re-serialising.
    Note,
    /// `Checkpoint::parse_text` (UTF-8 input only) and re-serialising.
    Checkpoint,
    /// `SignedCheckpoint::open` under the log key.
    SignedCheckpoint,
    /// `Note::parse`, then `verify_cosignatures` under the witness keys.
    Cosignatures,
    /// `TlogProof::parse`, verification against the entry under the
    /// policy's witness policy, and re-serialising.
    TlogProof,
    /// `TilePath::parse` of a tile or entry-bundle path, and re-rendering.
    TilePath,
    /// `parse_entry_bundle`, at a width taken from the first byte and at 3.
    EntryBundle,
    /// `SignedRecord::parse`, its signature under the agency key, its leaf hash.
    SignedRecord,
    /// The gate's `Policy::parse`, and a re-parse of its own text.
    Policy,
    /// The gate's `decide` on a valid entry and opening with this input as the proof.
    DecideProof,
    /// The gate's `decide` on a valid proof and opening with this input as the entry.
    DecideEntry,
    /// The gate's `parse_opening`, then `decide` with the opening.
    Opening,
    /// The witness request body: `AddCheckpoint::parse`, the checkpoint
    /// under the log key, and the consistency proof.
    AddCheckpoint,
    /// The witness responses: `parse_size_body` and `parse_cosignatures`.
    WitnessResponses,
    /// `VerifierKey::parse`, then a signature check with the key.
    VerifierKey,
    /// `SignerKey::parse`.
    SignerKey,
    /// `Draft::from_json`, the API's request JSON.
    Draft,
}

impl Parser {
    /// Every parser, in the order the harnesses run them.
    pub const ALL: [Parser; 17] = [
        Parser::Note,
        Parser::Checkpoint,
        Parser::SignedCheckpoint,
        Parser::Cosignatures,
        Parser::TlogProof,
        Parser::TilePath,
        Parser::EntryBundle,
        Parser::SignedRecord,
        Parser::Policy,
        Parser::DecideProof,
        Parser::DecideEntry,
        Parser::Opening,
        Parser::AddCheckpoint,
        Parser::WitnessResponses,
        Parser::VerifierKey,
        Parser::SignerKey,
        Parser::Draft,
    ];

    /// The parser's short name: the libFuzzer target, its corpus folder
    /// (`fuzz/corpus/<name>`) and its regression folder
    /// (`daylight/tests/fuzz_regressions/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Parser::Note => "note",
            Parser::Checkpoint => "checkpoint",
            Parser::SignedCheckpoint => "signed_checkpoint",
            Parser::Cosignatures => "cosignatures",
            Parser::TlogProof => "tlog_proof",
            Parser::TilePath => "tile_path",
            Parser::EntryBundle => "entry_bundle",
            Parser::SignedRecord => "signed_record",
            Parser::Policy => "policy",
            Parser::DecideProof => "decide_proof",
            Parser::DecideEntry => "decide_entry",
            Parser::Opening => "opening",
            Parser::AddCheckpoint => "add_checkpoint",
            Parser::WitnessResponses => "witness_responses",
            Parser::VerifierKey => "verifier_key",
            Parser::SignerKey => "signer_key",
            Parser::Draft => "draft",
        }
    }

    /// The parser with this [`Parser::name`].
    pub fn from_name(name: &str) -> Option<Parser> {
        Parser::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The valid data every parser's run is checked against: a world's keys and
/// policy, one sealed entry with its proof and opening, and a witness
/// request body; plus each parser's seeds.
pub struct Fixture {
    now: DateTime<Utc>,
    agency: VerifierKey,
    log: VerifierKey,
    witnesses: Vec<VerifierKey>,
    policy: Policy,
    policy_text: String,
    entry: Vec<u8>,
    proof: Vec<u8>,
    opening: Opening,
    opening_json: Vec<u8>,
    cosigned: Vec<u8>,
    checkpoint_text: String,
    add_checkpoint: Vec<u8>,
    old_root: Hash,
    signer_text: String,
    entry_bundle: Vec<u8>,
    cosignature_lines: Vec<u8>,
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new()
    }
}

impl Fixture {
    /// Builds the world: a request sealed an hour before [`NOW`], logged
    /// and cosigned by all three witnesses, which the gate allows.
    pub fn new() -> Fixture {
        // Everything below is generated from fixed seeds and known valid:
        // a failure is a bug in the testkit, not an input to handle.
        #![allow(clippy::expect_used)]
        let now = DateTime::from_timestamp(NOW, 0).expect("a valid timestamp");
        let mut w = World::new();
        let policy_text = w.policy_text(2, true);
        let policy = w.policy();
        let sealed = now - Duration::hours(1);
        let draft = World::request_draft(PROVIDER, sealed);
        let b = w
            .bundle(&draft, sealed, now.timestamp() as u64 - 10)
            .expect("the test bundle seals");
        assert!(
            decide(&policy, &b.entry, &b.proof, Some((&b.opening, TARGET)), now).is_allow(),
            "the fixture's bundle is allowed"
        );
        let cosigned = TlogProof::parse(&b.proof)
            .expect("the test proof parses")
            .checkpoint;
        let size = w.tree.size();
        let root = tree_hash(size, &w.tree).expect("in-memory tree");
        let old = TreeSize(size.get() / 2 + 1);
        let add_checkpoint = AddCheckpoint {
            old,
            proof: consistency_proof(old, size, &w.tree).expect("in-memory tree"),
            checkpoint: cosigned.clone(),
        }
        .to_bytes();
        // The witnesses' 200 answer, from the real encoder.
        let cosignature_lines = format_cosignatures(
            Note::parse(&cosigned)
                .expect("the test checkpoint parses")
                .signatures(),
        );
        Fixture {
            now,
            agency: w.agency.verifier().clone(),
            log: w.log.verifier().clone(),
            witnesses: w.witnesses.iter().map(|k| k.verifier().clone()).collect(),
            policy,
            policy_text,
            opening_json: b.opening.to_json().into_bytes(),
            checkpoint_text: Checkpoint::new(super::ORIGIN, size, root).to_text(),
            add_checkpoint,
            old_root: tree_hash(old, &w.tree).expect("in-memory tree"),
            signer_text: w.agency.to_secret_text(),
            entry_bundle: encode_entry_bundle([b.entry.as_slice(), b"x", &[0u8; 300]])
                .expect("a small bundle"),
            cosignature_lines,
            cosigned,
            entry: b.entry,
            proof: b.proof,
            opening: b.opening,
        }
    }

    /// Valid inputs for `parser`: the seeds mutation starts from.
    pub fn seeds(&self, parser: Parser) -> Vec<Vec<u8>> {
        match parser {
            Parser::Note | Parser::SignedCheckpoint | Parser::Cosignatures => {
                vec![self.cosigned.clone()]
            }
            Parser::Checkpoint => vec![self.checkpoint_text.clone().into_bytes()],
            Parser::TlogProof | Parser::DecideProof => vec![self.proof.clone()],
            Parser::TilePath => [
                "tile/1/x001/x234/067.p/7",
                "tile/entries/x001/234",
                "tile/0/000",
                "tile/entries/123.p/45",
            ]
            .map(|p| p.as_bytes().to_vec())
            .to_vec(),
            Parser::EntryBundle => vec![self.entry_bundle.clone()],
            Parser::SignedRecord | Parser::DecideEntry => vec![self.entry.clone()],
            Parser::Policy => vec![self.policy_text.clone().into_bytes()],
            Parser::Opening => vec![self.opening_json.clone()],
            Parser::AddCheckpoint => vec![self.add_checkpoint.clone()],
            Parser::WitnessResponses => vec![b"12345\n".to_vec(), self.cosignature_lines.clone()],
            Parser::VerifierKey => self
                .witnesses
                .iter()
                .chain([&self.log])
                .map(|k| k.to_string().into_bytes())
                .collect(),
            Parser::SignerKey => vec![self.signer_text.clone().into_bytes()],
            Parser::Draft => {
                let created = self.now - Duration::hours(1);
                vec![
                    World::request_draft_json(PROVIDER, created).into_bytes(),
                    World::emergency_draft_json(PROVIDER, created).into_bytes(),
                ]
            }
        }
    }

    /// Feeds `data` to `parser`, and whatever it accepts on to the checks
    /// that follow in real use. Errors are the expected outcome; a panic,
    /// a hang or a runaway allocation is the bug the fuzzers look for.
    pub fn run(&self, parser: Parser, data: &[u8]) {
        let text = || String::from_utf8_lossy(data);
        match parser {
            Parser::Note => {
                if let Ok(n) = Note::parse(data) {
                    let _ = n.verify(&[&self.log]);
                    let _ = n.to_bytes();
                }
            }
            Parser::Checkpoint => {
                if let Ok(s) = std::str::from_utf8(data) {
                    if let Ok(c) = Checkpoint::parse_text(s) {
                        let _ = c.to_text();
                    }
                }
            }
            Parser::SignedCheckpoint => {
                let _ = SignedCheckpoint::open(data, &self.log);
            }
            Parser::Cosignatures => {
                if let Ok(n) = Note::parse(data) {
                    let keys: Vec<&VerifierKey> = self.witnesses.iter().collect();
                    let _ = verify_cosignatures(&n, &keys);
                }
            }
            Parser::TlogProof => {
                if let Ok(p) = TlogProof::parse(data) {
                    let _ = p.verify(&self.entry, self.policy.witness_policy());
                    let _ = p.to_bytes();
                }
            }
            Parser::TilePath => match TilePath::parse(&text()) {
                Ok(TilePath::Hashes(t)) => {
                    let _ = t.path();
                }
                Ok(TilePath::Entries(e)) => {
                    let _ = e.path();
                }
                Err(_) => {}
            },
            Parser::EntryBundle => {
                let width = data.first().map(|&x| u16::from(x) + 1).unwrap_or(1);
                let _ = parse_entry_bundle(data.get(1..).unwrap_or_default(), width);
                let _ = parse_entry_bundle(data, 3);
            }
            Parser::SignedRecord => {
                if let Ok(r) = SignedRecord::parse(data) {
                    let _ = r.verify_signature(&self.agency);
                    let _ = r.leaf_hash();
                }
            }
            Parser::Policy => {
                if let Ok(p) = Policy::parse(&text()) {
                    let _ = Policy::parse(&p.to_text());
                }
            }
            Parser::DecideProof => {
                let opening = Some((&self.opening, TARGET));
                let _ = decide(&self.policy, &self.entry, data, opening, self.now);
            }
            Parser::DecideEntry => {
                let opening = Some((&self.opening, TARGET));
                let _ = decide(&self.policy, data, &self.proof, opening, self.now);
            }
            Parser::Opening => {
                if let Ok(o) = parse_opening(data) {
                    let opening = Some((&o, TARGET));
                    let _ = decide(&self.policy, &self.entry, &self.proof, opening, self.now);
                }
            }
            Parser::AddCheckpoint => {
                if let Ok(a) = AddCheckpoint::parse(data) {
                    if let Ok(c) = SignedCheckpoint::open(&a.checkpoint, &self.log) {
                        let _ = verify_consistency(
                            a.old,
                            c.checkpoint.size,
                            self.old_root,
                            c.checkpoint.root,
                            &a.proof,
                        );
                    }
                }
            }
            Parser::WitnessResponses => {
                let _ = parse_size_body(data);
                let _ = parse_cosignatures(data);
            }
            Parser::VerifierKey => {
                if let Ok(k) = VerifierKey::parse(&text()) {
                    let _ = k.verify("text\n", &[0u8; 64]);
                }
            }
            Parser::SignerKey => {
                let _ = SignerKey::parse(&text());
            }
            Parser::Draft => {
                let _ = daylight_schemas::Draft::from_json(&text());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_is_accepted_by_its_parser() {
        // The seeds must reach past each parser's first error, or the
        // fuzzers would only ever explore the error paths.
        let f = Fixture::new();
        for p in Parser::ALL {
            assert_eq!(Parser::from_name(p.name()), Some(p));
            for seed in f.seeds(p) {
                let text = String::from_utf8(seed.clone()).unwrap_or_default();
                let ok = match p {
                    Parser::Note | Parser::Cosignatures => Note::parse(&seed).is_ok(),
                    Parser::Checkpoint => Checkpoint::parse_text(&text).is_ok(),
                    Parser::SignedCheckpoint => SignedCheckpoint::open(&seed, &f.log).is_ok(),
                    Parser::TlogProof | Parser::DecideProof => TlogProof::parse(&seed)
                        .is_ok_and(|t| t.verify(&f.entry, f.policy.witness_policy()).is_ok()),
                    Parser::TilePath => TilePath::parse(&text).is_ok(),
                    Parser::EntryBundle => parse_entry_bundle(&seed, 3).is_ok(),
                    Parser::SignedRecord | Parser::DecideEntry => SignedRecord::parse(&seed)
                        .is_ok_and(|r| r.verify_signature(&f.agency).is_ok()),
                    Parser::Policy => Policy::parse(&text).is_ok(),
                    Parser::Opening => parse_opening(&seed).is_ok(),
                    Parser::AddCheckpoint => AddCheckpoint::parse(&seed).is_ok(),
                    Parser::WitnessResponses => {
                        parse_size_body(&seed).is_ok()
                            || parse_cosignatures(&seed).is_ok_and(|s| s.len() == 4)
                    }
                    Parser::VerifierKey => VerifierKey::parse(&text).is_ok(),
                    Parser::SignerKey => SignerKey::parse(&text).is_ok(),
                    Parser::Draft => daylight_schemas::Draft::from_json(&text).is_ok(),
                };
                assert!(ok, "a seed of {} is rejected", p.name());
            }
        }
    }
}
