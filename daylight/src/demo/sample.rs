//! The demo's sample records: a year of requests and what follows them,
//! mixed after the published figures in shared/data/lawful-access-figures.md
//! (US Wiretap Report offence mix and encryption outcomes, the share of
//! emergency requests in provider reports, the EU e-Evidence 48-hour
//! validation rule), with a few records that break the rules on purpose so
//! the auditor and the web view have something to show.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// A small deterministic generator, so every demo shows the same history.
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Next 64 random bits (xorshift64*).
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One of `items`, by weight.
    pub fn pick<'a, T>(&mut self, items: &'a [(T, u64)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

/// An agency of the demo, with where it works.
pub struct Agency {
    /// Key name.
    pub name: &'static str,
    /// ISO 3166 code.
    pub jurisdiction: &'static str,
    /// Statute cited.
    pub legal_basis: &'static str,
    /// The court that issues its orders.
    pub court: &'static str,
    /// Weight in the mix.
    pub weight: u64,
}

/// The demo's agencies (names are fictional; jurisdictions and statutes real).
pub const AGENCIES: &[Agency] = &[
    Agency {
        name: "federal-bureau.example",
        jurisdiction: "US",
        legal_basis: "18 U.S.C. 2518",
        court: "U.S. District Court for the Southern District of New York",
        weight: 45,
    },
    Agency {
        name: "state-police.example",
        jurisdiction: "US-CA",
        legal_basis: "Cal. Penal Code 629.50",
        court: "Superior Court of California, County of Los Angeles",
        weight: 25,
    },
    Agency {
        name: "metropolitan.example",
        jurisdiction: "GB",
        legal_basis: "Investigatory Powers Act 2016 s.19",
        court: "Investigatory Powers Commissioner's Office",
        weight: 20,
    },
    Agency {
        name: "landeskriminalamt.example",
        jurisdiction: "DE",
        legal_basis: "StPO 100a",
        court: "Amtsgericht Tiergarten",
        weight: 10,
    },
];

/// The provider the demo's gate speaks for.
pub const PROVIDER: &str = "messenger.example";
/// Another provider that also receives requests.
pub const OTHER_PROVIDER: &str = "cloud.example";

/// US Wiretap Report 2023: narcotics about half, conspiracy about a tenth.
const OFFENCES: &[(&str, u64)] = &[
    ("narcotics", 50),
    ("conspiracy", 11),
    ("homicide", 8),
    ("racketeering", 6),
    ("fraud", 5),
    ("money_laundering", 4),
    ("weapons", 4),
    ("kidnapping", 3),
    ("child_sexual_abuse", 3),
    ("terrorism", 2),
    ("cybercrime", 2),
    ("extortion", 2),
];

const CATEGORIES: &[(&[&str], u64)] = &[
    (&["content", "traffic"], 40),
    (&["subscriber", "traffic"], 25),
    (&["content", "stored_keys"], 15),
    (&["device_unlock"], 10),
    (&["subscriber", "identification", "location"], 10),
];

/// A time as records write it: RFC 3339, whole seconds, `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn hex32(rng: &mut Rng) -> String {
    (0..4).map(|_| format!("{:016x}", rng.next())).collect()
}

/// A request or emergency draft and its schedule.
pub struct Primary {
    /// The draft JSON.
    pub draft: Value,
    /// Which agency signs it.
    pub agency: usize,
    /// When it is created.
    pub created: DateTime<Utc>,
    /// Targets named.
    pub targets: Vec<String>,
    /// Addressed to the demo provider.
    pub to_demo_provider: bool,
    /// An emergency request.
    pub emergency: bool,
}

/// Makes the `i`th primary record of `n`, spread over the year before `now`.
pub fn primary(rng: &mut Rng, i: usize, n: usize, now: DateTime<Utc>) -> Primary {
    let span = Duration::days(365);
    let created = now - span
        + span * (i as i32) / (n.max(1) as i32)
        + Duration::minutes(rng.below(600) as i64);
    let weights: Vec<(usize, u64)> = AGENCIES
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.weight))
        .collect();
    let agency = *rng.pick(&weights);
    let a = &AGENCIES[agency];
    // About 5% emergencies (Meta H1 2022: 3,943 of 69,363 US requests).
    let emergency = rng.chance(0.06);
    let to_demo_provider = rng.chance(0.7);
    let ntargets = 1 + rng.below(3) as usize;
    let targets: Vec<String> = (0..ntargets)
        .map(|_| format!("acct:{:010}", rng.below(10_000_000_000)))
        .collect();
    let valid_from = created;
    let mut draft = json!({
        "kind": if emergency { "emergency" } else { "request" },
        "jurisdiction": a.jurisdiction,
        "legal_basis": a.legal_basis,
        "provider": if to_demo_provider { PROVIDER } else { OTHER_PROVIDER },
        "data_categories": *rng.pick(CATEGORIES),
        "offence": *rng.pick(OFFENCES),
        "target_type": "account",
        "targets": targets,
        "valid_from": ts(valid_from),
        "case_reference": format!("{}-{:05}", &a.name[..3].to_uppercase(), 1000 + i),
    });
    if emergency {
        let valid_until = valid_from + Duration::hours(48);
        draft["issuing_authority"] =
            json!({ "name": format!("{} duty officer", a.name), "type": "agency" });
        draft["valid_until"] = json!(ts(valid_until));
        draft["sealed_until"] = json!(ts(valid_until + Duration::days(90)));
        draft["ground"] = json!(if rng.chance(0.9) {
            "life_or_safety"
        } else {
            "critical_infrastructure"
        });
        draft["ratify_by"] = json!(ts(valid_from + Duration::hours(48)));
    } else {
        // Wiretap orders run 30 days; sealing mostly a year past the end.
        let valid_until = valid_from + Duration::days(30);
        let sealed_months = [3i64, 6, 12, 12, 24][rng.below(5) as usize];
        draft["issuing_authority"] = json!({ "name": a.court, "type": "court" });
        draft["valid_until"] = json!(ts(valid_until));
        draft["sealed_until"] = json!(ts(valid_until + Duration::days(30 * sealed_months)));
        draft["order_document_sha256"] = json!(hex32(rng));
    }
    Primary {
        draft,
        agency,
        created,
        targets,
        to_demo_provider,
        emergency,
    }
}

/// A reference to an earlier entry, as drafts write it.
pub fn entry_ref(index: u64, leaf_hash_hex: &str) -> Value {
    json!({ "index": index, "leaf_hash": leaf_hash_hex })
}

/// The court's ratification of an emergency.
pub fn ratification(emergency: Value, case: &str, rng: &mut Rng) -> Value {
    json!({
        "kind": "ratification",
        "emergency": emergency,
        "decision": if rng.chance(0.95) { "granted" } else { "denied" },
        "case_reference": format!("{case}-R"),
        "order_document_sha256": hex32(rng),
    })
}

/// The provider's release receipt.
pub fn release(entry: Value, targets: usize, at: DateTime<Utc>) -> Value {
    json!({ "kind": "release", "entry": entry, "targets_released": targets, "released_at": ts(at) })
}

/// The agency's outcome report, after the Wiretap Report's prosecutor report
/// (2023: about one order in ten met encryption; most of those could not be read).
pub fn outcome(entry: Value, rng: &mut Rng) -> Value {
    let encrypted = rng.chance(0.11);
    let prevented = encrypted && rng.chance(0.88);
    let comms = 200 + rng.below(3000);
    let obtained = !prevented || rng.chance(0.3);
    json!({
        "kind": "outcome",
        "entry": entry,
        "data_obtained": obtained,
        "encryption_encountered": encrypted,
        "encryption_prevented_access": prevented,
        "communications_intercepted": if obtained { comms } else { 0 },
        "incriminating_communications": if obtained { comms / 8 } else { 0 },
        "persons_intercepted": if obtained { 5 + rng.below(60) } else { 0 },
        "arrests": rng.below(6),
        "convictions": rng.below(3),
    })
}

/// A court's extension of the seal.
pub fn extension(entry: Value, sealed_until: DateTime<Utc>) -> Value {
    json!({ "kind": "extension", "entry": entry, "sealed_until": ts(sealed_until), "reason": "investigation_ongoing" })
}

/// The agency withdraws a request.
pub fn withdrawal(entry: Value) -> Value {
    json!({ "kind": "withdrawal", "entry": entry, "reason": "no_longer_needed" })
}

/// A disclosure draft that opens every commitment of an entry.
pub fn disclosure(entry: Value, opening: &daylight_schemas::Opening) -> anyhow::Result<Value> {
    let o = serde_json::to_value(opening)?;
    let targets: Vec<Value> = o["targets"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("opening without targets"))?
        .iter()
        .enumerate()
        .map(|(i, t)| json!({ "position": i, "target": t["target"], "salt": t["salt"] }))
        .collect();
    let mut d = json!({
        "kind": "disclosure",
        "entry": entry,
        "targets_opened": targets,
        "targets_withheld": [],
    });
    if !o["order_document"].is_null() {
        d["order_document_opened"] = o["order_document"].clone();
    }
    Ok(d)
}
