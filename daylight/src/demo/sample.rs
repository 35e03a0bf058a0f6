//! The demo's sample records: a year of requests and what follows them,
//! mixed after the published figures in shared/data/lawful-access-figures.md
//! (US Wiretap Report offence mix and encryption outcomes, the share of
//! emergency requests in provider reports, the EU e-Evidence 48-hour
//! validation rule), with a few records that break the rules on purpose so
//! the auditor and the web view have something to show.
//!
//! Every record is drawn from one table, [`PROFILES`]: per jurisdiction, the
//! statutes, the courts that issue or approve orders under them, the agencies
//! that apply and the offences they investigate. A record takes its legal
//! basis, issuing authority, agency, offence and data categories from one
//! profile, so a `GB` request under the Investigatory Powers Act cannot be
//! "issued by" a U.S. District Court. Statutes and courts are real public
//! law and institutions; agencies, keys and providers are samples, named
//! under the reserved `.example` domain and marked "sample".

use chrono::{DateTime, Duration, Utc};
use daylight_schemas::content_policy::{ContentPolicy, ContentRefusal};
use daylight_schemas::{RefusalReason, SignedRecord};
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

// ---------------------------------------------------------------------------
// The table

/// One jurisdiction: everything a record made there may name.
pub struct Profile {
    /// ISO 3166 code, as records write it.
    pub jurisdiction: &'static str,
    /// Share of the demo's requests.
    pub weight: u64,
    /// The agencies that apply for orders here.
    pub agencies: &'static [Agency],
    /// The courts that issue, approve, ratify or extend orders here.
    pub courts: &'static [Court],
    /// The statutes ordinary requests rest on.
    pub bases: &'static [Basis],
    /// The statute and authority for access before an order.
    pub emergency: Emergency,
}

/// A sample agency: a registered agency key.
pub struct Agency {
    /// Its key name (the records' signer).
    pub key: &'static str,
    /// What it is called, as an emergency authorisation names it.
    pub name: &'static str,
    /// Weight within its jurisdiction.
    pub weight: u64,
    /// Prefix of its case references.
    pub case_prefix: &'static str,
    /// The offences it investigates, by weight (its remit).
    pub offences: &'static [(&'static str, u64)],
}

/// A court with a registered court key.
pub struct Court {
    /// Its key name (signs ratifications and extensions).
    pub key: &'static str,
    /// Its name as orders write it.
    pub name: &'static str,
}

/// Who issues an order, and which court answers for it afterwards.
pub enum Issuer {
    /// The court (an index into the profile's courts) issues it.
    Court(usize),
    /// Another body issues it; the court (index) approves, ratifies or extends it.
    Other {
        /// Name as the order writes it.
        name: &'static str,
        /// The schema's issuer type: `executive` or `prosecutor`.
        issuer_type: &'static str,
        /// The court that answers for it.
        court: usize,
    },
    /// The requesting agency itself, under the court (index) that must ratify.
    Agency(usize),
}

impl Issuer {
    /// The court that approves, ratifies or extends what this issuer ordered.
    pub fn court(&self) -> usize {
        match self {
            Issuer::Court(c) | Issuer::Other { court: c, .. } | Issuer::Agency(c) => *c,
        }
    }
}

/// What a request asks for.
pub struct Ask {
    /// Data categories (schema codes).
    pub categories: &'static [&'static str],
    /// Target type (schema code).
    pub target_type: &'static str,
}

/// A statute for ordinary requests.
pub struct Basis {
    /// As records cite it.
    pub citation: &'static str,
    /// Who issues orders under it.
    pub issuer: Issuer,
    /// What orders under it ask for, by weight.
    pub asks: &'static [(Ask, u64)],
    /// The offences it may be used for; empty: any the agencies investigate.
    pub offences: &'static [&'static str],
    /// How long an order under it runs.
    pub valid_days: i64,
    /// Weight among the statutes that fit an offence.
    pub weight: u64,
}

/// A statute for emergency access.
pub struct Emergency {
    /// As records cite it.
    pub citation: &'static str,
    /// Who authorises the access; its court ratifies.
    pub issuer: Issuer,
    /// What emergencies ask for, by weight.
    pub asks: &'static [(Ask, u64)],
    /// The offences it may be used for; empty: any of [`EMERGENCY_OFFENCES`].
    pub offences: &'static [&'static str],
    /// A court must ratify within this many hours (the schema allows 48 at most).
    pub ratify_hours: i64,
}

/// The provider the demo's gate speaks for (a messenger).
pub const PROVIDER: &str = "messenger.example";
/// A cloud provider that also receives requests.
pub const OTHER_PROVIDER: &str = "cloud.example";
/// A device maker: the one asked to unlock devices.
pub const DEVICE_PROVIDER: &str = "devices.example";

/// Every provider: each has a registered key, publishes its standards and
/// answers the requests addressed to it.
pub const PROVIDERS: &[&str] = &[PROVIDER, OTHER_PROVIDER, DEVICE_PROVIDER];

/// The providers an ask can be addressed to: a messenger or a cloud holds
/// accounts; only a device maker can unlock a device.
pub fn providers_for(categories: &[&str]) -> &'static [&'static str] {
    if categories.contains(&"device_unlock") {
        &[DEVICE_PROVIDER]
    } else {
        &[PROVIDER, OTHER_PROVIDER]
    }
}

/// Offences for which access cannot wait for a court: a threat to life or safety.
pub const EMERGENCY_OFFENCES: &[&str] = &[
    "kidnapping",
    "homicide",
    "terrorism",
    "child_sexual_abuse",
    "extortion",
    "human_trafficking",
    "weapons",
];

/// US Wiretap Report 2023: narcotics about half, conspiracy about a tenth.
const WIRETAP_MIX: &[(&str, u64)] = &[
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

const INTERCEPT: Ask = Ask {
    categories: &["content", "traffic"],
    target_type: "account",
};
const RECORDS: Ask = Ask {
    categories: &["subscriber", "traffic"],
    target_type: "account",
};
const WHO_WHERE: Ask = Ask {
    categories: &["identification", "location", "subscriber"],
    target_type: "account",
};
const WHO: Ask = Ask {
    categories: &["identification", "subscriber"],
    target_type: "account",
};
const CONNECTIONS: Ask = Ask {
    categories: &["location", "traffic"],
    target_type: "account",
};
const KEYS: Ask = Ask {
    categories: &["content", "stored_keys"],
    target_type: "account",
};
const UNLOCK: Ask = Ask {
    categories: &["device_unlock"],
    target_type: "device",
};

/// France, CPP art. 706-73: the organised-crime offences for which
/// art. 706-95 interception and art. 706-102-1 data capture are open.
const FR_ORGANISED: &[&str] = &[
    "narcotics",
    "kidnapping",
    "human_trafficking",
    "extortion",
    "terrorism",
    "money_laundering",
    "weapons",
    "racketeering",
    "homicide",
    "conspiracy",
];

/// Germany, StPO § 100b Abs. 2: the especially serious offences an online
/// search may be ordered for.
const DE_ESPECIALLY_SERIOUS: &[&str] = &[
    "terrorism",
    "homicide",
    "narcotics",
    "child_sexual_abuse",
    "weapons",
    "human_trafficking",
    "kidnapping",
    "racketeering",
    "money_laundering",
];

/// The demo's jurisdictions. Shares as before: US 70% (federal 45, state 25,
/// about the Wiretap Report's federal/state split), Europe 30%.
pub const PROFILES: &[Profile] = &[
    Profile {
        jurisdiction: "US",
        weight: 45,
        agencies: &[
            // Together these keep the Wiretap Report's mix: 0.6 * 27 + 0.4 * 85
            // = 50% narcotics, 0.6 * 12 + 0.4 * 10 = 11% conspiracy.
            Agency {
                key: "us-federal-bureau.sample.example",
                name: "Federal Bureau (sample agency)",
                weight: 60,
                case_prefix: "FB-SAMPLE",
                offences: &[
                    ("narcotics", 27),
                    ("conspiracy", 12),
                    ("homicide", 13),
                    ("racketeering", 10),
                    ("fraud", 8),
                    ("money_laundering", 3),
                    ("weapons", 7),
                    ("kidnapping", 5),
                    ("child_sexual_abuse", 5),
                    ("terrorism", 3),
                    ("cybercrime", 3),
                    ("extortion", 4),
                ],
            },
            Agency {
                key: "us-drug-enforcement.sample.example",
                name: "Drug Enforcement (sample agency)",
                weight: 40,
                case_prefix: "DE-SAMPLE",
                offences: &[
                    ("narcotics", 85),
                    ("conspiracy", 10),
                    ("money_laundering", 5),
                ],
            },
        ],
        courts: &[Court {
            key: "us-sdny.courts.sample.example",
            name: "U.S. District Court for the Southern District of New York",
        }],
        bases: &[
            Basis {
                citation: "18 U.S.C. § 2518",
                issuer: Issuer::Court(0),
                asks: &[(INTERCEPT, 1)],
                offences: &[],
                valid_days: 30,
                weight: 40,
            },
            Basis {
                citation: "18 U.S.C. § 2703(d)",
                issuer: Issuer::Court(0),
                asks: &[(RECORDS, 25), (WHO_WHERE, 10)],
                offences: &[],
                valid_days: 30,
                weight: 35,
            },
            Basis {
                citation: "28 U.S.C. § 1651 (All Writs Act)",
                issuer: Issuer::Court(0),
                asks: &[(KEYS, 15), (UNLOCK, 10)],
                offences: &[],
                valid_days: 30,
                weight: 25,
            },
        ],
        emergency: Emergency {
            citation: "18 U.S.C. § 2518(7)",
            issuer: Issuer::Agency(0),
            asks: &[(INTERCEPT, 1)],
            offences: &[],
            ratify_hours: 48,
        },
    },
    Profile {
        jurisdiction: "US-CA",
        weight: 25,
        agencies: &[Agency {
            key: "us-ca-state-investigations.sample.example",
            name: "California State Investigations (sample agency)",
            weight: 1,
            case_prefix: "CSI-SAMPLE",
            offences: WIRETAP_MIX,
        }],
        courts: &[Court {
            key: "us-ca-lasc.courts.sample.example",
            name: "Superior Court of California, County of Los Angeles",
        }],
        bases: &[
            Basis {
                citation: "Cal. Penal Code § 629.50",
                issuer: Issuer::Court(0),
                asks: &[(INTERCEPT, 1)],
                offences: &[],
                valid_days: 30,
                weight: 40,
            },
            Basis {
                citation: "Cal. Penal Code § 1546.1",
                issuer: Issuer::Court(0),
                asks: &[(RECORDS, 25), (WHO_WHERE, 10), (KEYS, 15), (UNLOCK, 10)],
                offences: &[],
                valid_days: 30,
                weight: 60,
            },
        ],
        emergency: Emergency {
            citation: "Cal. Penal Code § 1546.1(h)",
            issuer: Issuer::Agency(0),
            asks: &[(WHO_WHERE, 1), (INTERCEPT, 1)],
            offences: &[],
            ratify_hours: 48,
        },
    },
    Profile {
        jurisdiction: "GB",
        weight: 15,
        agencies: &[
            Agency {
                key: "gb-crime-agency.sample.example",
                name: "Crime Agency (sample agency)",
                weight: 60,
                case_prefix: "CA-SAMPLE",
                offences: &[
                    ("narcotics", 45),
                    ("money_laundering", 10),
                    ("human_trafficking", 8),
                    ("weapons", 8),
                    ("child_sexual_abuse", 10),
                    ("kidnapping", 4),
                    ("fraud", 8),
                    ("cybercrime", 7),
                ],
            },
            Agency {
                key: "gb-metropolitan-police.sample.example",
                name: "Metropolitan Police (sample agency)",
                weight: 40,
                case_prefix: "MP-SAMPLE",
                offences: &[
                    ("narcotics", 40),
                    ("homicide", 15),
                    ("weapons", 12),
                    ("robbery", 10),
                    ("kidnapping", 5),
                    ("terrorism", 8),
                    ("extortion", 5),
                    ("child_sexual_abuse", 5),
                ],
            },
        ],
        courts: &[
            Court {
                key: "gb-ipco.courts.sample.example",
                name: "Investigatory Powers Commissioner's Office",
            },
            Court {
                key: "gb-southwark.courts.sample.example",
                name: "Crown Court at Southwark",
            },
        ],
        bases: &[
            Basis {
                citation: "Investigatory Powers Act 2016 s.19",
                // The "double lock": the Secretary of State issues, a Judicial
                // Commissioner approves (s.23).
                issuer: Issuer::Other {
                    name: "Secretary of State for the Home Department, approved by a Judicial Commissioner (IPA 2016 s.23)",
                    issuer_type: "executive",
                    court: 0,
                },
                asks: &[(INTERCEPT, 1)],
                offences: &[],
                valid_days: 180,
                weight: 40,
            },
            Basis {
                citation: "Investigatory Powers Act 2016 s.60A",
                issuer: Issuer::Court(0),
                asks: &[(RECORDS, 25), (WHO_WHERE, 10)],
                offences: &[],
                valid_days: 30,
                weight: 35,
            },
            Basis {
                // A notice requiring a key or plain text, with a Circuit judge's permission.
                citation: "Regulation of Investigatory Powers Act 2000 s.49",
                issuer: Issuer::Court(1),
                asks: &[(KEYS, 15), (UNLOCK, 10)],
                offences: &[],
                valid_days: 30,
                weight: 25,
            },
        ],
        emergency: Emergency {
            citation: "Investigatory Powers Act 2016 s.19, urgent case (s.24)",
            issuer: Issuer::Other {
                name: "Secretary of State for the Home Department (urgent warrant)",
                issuer_type: "executive",
                court: 0,
            },
            asks: &[(INTERCEPT, 1)],
            offences: &[],
            ratify_hours: 48,
        },
    },
    Profile {
        jurisdiction: "DE",
        weight: 8,
        agencies: &[Agency {
            key: "de-lka-berlin.sample.example",
            name: "Landeskriminalamt Berlin (sample agency)",
            weight: 1,
            case_prefix: "LKA-SAMPLE",
            offences: &[
                ("narcotics", 45),
                ("fraud", 12),
                ("racketeering", 8),
                ("money_laundering", 8),
                ("homicide", 8),
                ("child_sexual_abuse", 6),
                ("weapons", 5),
                ("terrorism", 4),
                ("kidnapping", 2),
                ("extortion", 2),
            ],
        }],
        courts: &[
            Court {
                key: "de-ag-tiergarten.courts.sample.example",
                name: "Amtsgericht Tiergarten (Ermittlungsrichter)",
            },
            Court {
                key: "de-lg-berlin.courts.sample.example",
                name: "Landgericht Berlin (Staatsschutzkammer)",
            },
        ],
        bases: &[
            Basis {
                citation: "StPO § 100a",
                issuer: Issuer::Court(0),
                asks: &[(INTERCEPT, 1)],
                offences: &[],
                valid_days: 90,
                weight: 40,
            },
            Basis {
                citation: "StPO § 100g",
                issuer: Issuer::Court(0),
                asks: &[(CONNECTIONS, 1)],
                offences: &[],
                valid_days: 30,
                weight: 25,
            },
            Basis {
                citation: "StPO § 100j",
                issuer: Issuer::Other {
                    name: "Staatsanwaltschaft Berlin",
                    issuer_type: "prosecutor",
                    court: 0,
                },
                asks: &[(WHO, 1)],
                offences: &[],
                valid_days: 30,
                weight: 15,
            },
            Basis {
                // Online search: ordered by the Landgericht's chamber (§ 100e Abs. 2).
                citation: "StPO § 100b",
                issuer: Issuer::Court(1),
                asks: &[(KEYS, 15), (UNLOCK, 10)],
                offences: DE_ESPECIALLY_SERIOUS,
                valid_days: 30,
                weight: 20,
            },
        ],
        emergency: Emergency {
            // Gefahr im Verzug: the prosecutor orders, the court confirms.
            citation: "StPO § 100a, § 100e Abs. 1 Satz 2",
            issuer: Issuer::Other {
                name: "Staatsanwaltschaft Berlin (Gefahr im Verzug)",
                issuer_type: "prosecutor",
                court: 0,
            },
            asks: &[(INTERCEPT, 1)],
            offences: &[],
            ratify_hours: 48,
        },
    },
    Profile {
        jurisdiction: "FR",
        weight: 7,
        agencies: &[Agency {
            key: "fr-police-judiciaire.sample.example",
            name: "Police judiciaire (sample agency)",
            weight: 1,
            case_prefix: "PJ-SAMPLE",
            offences: &[
                ("narcotics", 50),
                ("conspiracy", 10),
                ("money_laundering", 8),
                ("homicide", 8),
                ("kidnapping", 5),
                ("terrorism", 7),
                ("weapons", 6),
                ("extortion", 6),
            ],
        }],
        courts: &[
            Court {
                key: "fr-tj-paris-jld.courts.sample.example",
                name: "Tribunal judiciaire de Paris (juge des libertés et de la détention)",
            },
            Court {
                key: "fr-tj-paris-instruction.courts.sample.example",
                name: "Tribunal judiciaire de Paris (juge d'instruction)",
            },
        ],
        bases: &[
            Basis {
                citation: "Code de procédure pénale art. 100",
                issuer: Issuer::Court(1),
                asks: &[(INTERCEPT, 1)],
                offences: &[],
                valid_days: 120,
                weight: 30,
            },
            Basis {
                citation: "Code de procédure pénale art. 706-95",
                issuer: Issuer::Court(0),
                asks: &[(INTERCEPT, 1)],
                offences: FR_ORGANISED,
                valid_days: 30,
                weight: 25,
            },
            Basis {
                // Subscriber and identification data only: a prosecutor may
                // order those (as under EU 2023/1543), not traffic or content.
                citation: "Code de procédure pénale art. 77-1-1",
                issuer: Issuer::Other {
                    name: "Procureur de la République près le tribunal judiciaire de Paris",
                    issuer_type: "prosecutor",
                    court: 0,
                },
                asks: &[(WHO, 1)],
                offences: &[],
                valid_days: 30,
                weight: 30,
            },
            Basis {
                citation: "Code de procédure pénale art. 706-102-1",
                issuer: Issuer::Court(0),
                asks: &[(KEYS, 15), (UNLOCK, 10)],
                offences: FR_ORGANISED,
                valid_days: 30,
                weight: 15,
            },
        ],
        emergency: Emergency {
            // Urgency: the prosecutor authorises, the JLD confirms within 24 hours.
            citation: "Code de procédure pénale art. 706-95 (urgence)",
            issuer: Issuer::Other {
                name: "Procureur de la République près le tribunal judiciaire de Paris (urgence)",
                issuer_type: "prosecutor",
                court: 0,
            },
            asks: &[(INTERCEPT, 1)],
            offences: FR_ORGANISED,
            ratify_hours: 24,
        },
    },
];

/// Every agency of every profile.
pub fn agencies() -> impl Iterator<Item = &'static Agency> {
    PROFILES.iter().flat_map(|p| p.agencies.iter())
}

/// Every court of every profile.
pub fn courts() -> impl Iterator<Item = &'static Court> {
    PROFILES.iter().flat_map(|p| p.courts.iter())
}

/// Whether `offence` is open under a statute limited to `allowed` (empty: any).
fn admits(allowed: &[&str], offence: &str) -> bool {
    allowed.is_empty() || allowed.contains(&offence)
}

impl Emergency {
    /// Whether emergency access may be used for `offence` here.
    pub fn admits(&self, offence: &str) -> bool {
        EMERGENCY_OFFENCES.contains(&offence) && admits(self.offences, offence)
    }
}

impl Agency {
    /// The offences of its remit an emergency in `profile` may be for, by weight.
    fn emergency_offences(&self, profile: &Profile) -> Vec<(&'static str, u64)> {
        self.offences
            .iter()
            .filter(|(o, _)| profile.emergency.admits(o))
            .copied()
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The providers' standards

/// A version of a provider's standards: the content lines its gate enforces
/// (`daylight_schemas::content_policy`) and publishes as a `policy` entry.
/// Each is in force from its publication until the provider's next one.
pub struct Standards {
    /// The provider (its registered key's name) that publishes and enforces them.
    pub provider: &'static str,
    /// Published this many days before the end of the history.
    pub days_before_now: i64,
    /// The content lines, in the gate's policy syntax.
    pub lines: &'static [&'static str],
}

/// The providers' standards. They differ, so that the log's refusals say
/// something about the providers as well as about the requests. These are
/// sample stances for sample providers, not any real company's policy.
pub const STANDARDS: &[Standards] = &[
    // The messenger answers no order from GB: the stance of the messengers
    // that said in 2023 they would rather leave the UK than weaken end-to-end
    // encryption for the Online Safety Bill or a technical capability notice
    // under the Investigatory Powers Act 2016 (s.253). GB is the demo's
    // largest jurisdiction after the US (15% of requests), so these refusals
    // show on the overview and in the per-jurisdiction counts.
    Standards {
        provider: PROVIDER,
        days_before_now: 366,
        lines: &["daylight-jurisdictions deny GB"],
    },
    // The cloud takes only orders a court issued: no executive warrant (GB,
    // IPA s.19), no prosecutor's order (DE StPO § 100j, FR CPP art. 77-1-1),
    // and no emergency access an agency, minister or prosecutor authorised
    // before a court ratified it.
    Standards {
        provider: OTHER_PROVIDER,
        days_before_now: 366,
        lines: &["daylight-issuers allow court"],
    },
    // The device maker unlocks at most two devices per order: an order for
    // more is sent back to be split, so a court names each device.
    Standards {
        provider: DEVICE_PROVIDER,
        days_before_now: 366,
        lines: &["daylight-max-targets 2"],
    },
    // Five months before the end the messenger tightens its standards: an
    // order runs at most 60 days (a US Title III order of 30 days, renewed
    // once), so a German § 100a order (90 days) or a French art. 100 order
    // (four months) must come back for renewal. The web view shows both
    // versions; refusals for validity_too_long start here.
    Standards {
        provider: PROVIDER,
        days_before_now: 150,
        lines: &[
            "daylight-jurisdictions deny GB",
            "daylight-max-validity-days 60",
        ],
    },
];

/// One version of a provider's standards, dated and parsed.
pub struct Published {
    /// The provider.
    pub provider: &'static str,
    /// When it is published (the `policy` entry's creation).
    pub at: DateTime<Utc>,
    /// The lines as the `policy` entry carries them.
    pub lines: &'static [&'static str],
    /// The lines as the gate reads them.
    pub policy: ContentPolicy,
}

/// The providers' standards over the year before `now`, oldest first.
pub fn published(now: DateTime<Utc>) -> anyhow::Result<Vec<Published>> {
    let mut out = STANDARDS
        .iter()
        .map(|s| {
            let policy = ContentPolicy::parse(&s.lines.join("\n"))
                .map_err(|e| anyhow::anyhow!("{}'s sample standards: {e}", s.provider))?;
            Ok(Published {
                provider: s.provider,
                at: now - Duration::days(s.days_before_now),
                lines: s.lines,
                policy,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    out.sort_by_key(|p| p.at);
    Ok(out)
}

/// The standards `provider` holds at `at`: its newest published by then.
pub fn in_force<'a>(
    published: &'a [Published],
    provider: &str,
    at: DateTime<Utc>,
) -> Option<&'a Published> {
    published
        .iter()
        .filter(|p| p.provider == provider && p.at <= at)
        .max_by_key(|p| p.at)
}

/// What `provider`'s gate answers at `at` to a request signed by `agency`:
/// the check of the standards then in force (none published: no content
/// rule refuses).
pub fn gate_check(
    published: &[Published],
    provider: &str,
    at: DateTime<Utc>,
    request: &SignedRecord,
    agency: &str,
) -> Result<(), ContentRefusal> {
    in_force(published, provider, at).map_or(Ok(()), |p| p.policy.check(request, agency))
}

/// A primary draft sealed as `agency` would seal it, for the gate check
/// before it is logged: a key made up under the agency's name (the content
/// rules read the body, not the signature or the commitments) and salts
/// from a fixed stream (the schema refuses repeated ones).
pub(crate) fn sealed(
    draft: &Value,
    agency: &str,
    created: DateTime<Utc>,
) -> anyhow::Result<SignedRecord> {
    let key = daylight_core::SignerKey::from_seed(
        daylight_core::KeyName::new(agency)?,
        daylight_core::KeyType::Ed25519,
        [0x5a; 32],
    );
    let draft = daylight_schemas::Draft::from_json(&draft.to_string())?;
    let mut salts = Rng::new(0x5a17);
    let (record, _) = draft.seal(&key, crate::demo::ORIGIN, created, &mut |b: &mut [u8]| {
        b.iter_mut().for_each(|x| *x = salts.next() as u8)
    })?;
    Ok(record)
}

// ---------------------------------------------------------------------------
// Records

/// A time as records write it: RFC 3339, whole seconds, `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn hex32(rng: &mut Rng) -> String {
    (0..4).map(|_| format!("{:016x}", rng.next())).collect()
}

/// A request or emergency draft, who answers for it, and what follows it.
pub struct Primary {
    /// The draft JSON.
    pub draft: Value,
    /// The agency that signs it (and its outcome, withdrawal, disclosure).
    pub agency: &'static Agency,
    /// The court that approves, ratifies or extends it.
    pub court: &'static Court,
    /// When it is created.
    pub created: DateTime<Utc>,
    /// Targets named.
    pub targets: Vec<String>,
    /// The provider it is addressed to.
    pub provider: &'static str,
    /// Why the provider refuses it, as its gate decides when it answers
    /// ([`ANSWER_AFTER_HOURS`] after the request); `None`: its standards allow
    /// it. Decided in [`history`], whether or not the answer is due by `now`.
    pub refused: Option<RefusalReason>,
    /// An emergency request.
    pub emergency: bool,
    /// The records that follow it, in no particular order.
    pub follows: Vec<Follow>,
}

/// A record that refers to a primary entry, planned before the entry exists.
pub struct Follow {
    /// When it is created.
    pub at: DateTime<Utc>,
    /// The key name that signs it.
    pub signer: &'static str,
    /// What it is.
    pub what: FollowKind,
}

/// The follow-up records. All but a disclosure are complete drafts but for
/// the reference to their entry, which only exists once it is logged.
pub enum FollowKind {
    /// A draft whose reference field (`entry`, or `emergency` for a
    /// ratification) [`Follow::draft`] fills in.
    Draft(Value),
    /// A disclosure, made from the entry's opening.
    Disclosure,
}

impl Follow {
    /// The draft, referring to `entry`; `opening` is the entry's own.
    pub fn draft(
        &self,
        entry: Value,
        opening: &daylight_schemas::Opening,
    ) -> anyhow::Result<Value> {
        match &self.what {
            FollowKind::Disclosure => disclosure(entry, opening),
            FollowKind::Draft(d) => {
                let mut d = d.clone();
                let field = if d["kind"] == "ratification" {
                    "emergency"
                } else {
                    "entry"
                };
                d[field] = entry;
                Ok(d)
            }
        }
    }
}

/// The share of emergency requests: Meta, H1 2022, 3,943 of 69,363 US requests.
pub const EMERGENCY_SHARE: f64 = 3943.0 / 69363.0;
/// The share of requests to the demo's provider, among those it could answer
/// (a messenger cannot unlock a device).
const DEMO_PROVIDER_SHARE: f64 = 0.78;

/// What a record is drawn from: one profile, one of its agencies.
fn draw_agency(rng: &mut Rng, emergency: bool) -> (&'static Profile, &'static Agency) {
    let profiles: Vec<(&Profile, u64)> = PROFILES.iter().map(|p| (p, p.weight)).collect();
    let p = *rng.pick(&profiles);
    // An emergency comes from an agency whose remit has offences that cannot
    // wait (a drug agency does not invoke a threat to life).
    let agencies: Vec<(&Agency, u64)> = p
        .agencies
        .iter()
        .filter(|a| !emergency || !a.emergency_offences(p).is_empty())
        .map(|a| (a, a.weight))
        .collect();
    (p, *rng.pick(&agencies))
}

/// Makes the `i`th primary record of `n`, spread over the year before `now`,
/// without follow-ups.
pub fn primary(rng: &mut Rng, i: usize, n: usize, now: DateTime<Utc>) -> Primary {
    let span = Duration::days(365);
    let created = now - span
        + span * (i as i32) / (n.max(1) as i32)
        + Duration::minutes(rng.below(600) as i64);
    let emergency = rng.chance(EMERGENCY_SHARE);
    let (profile, agency) = draw_agency(rng, emergency);
    compose(rng, profile, agency, emergency, created, 1000 + i, None)
}

/// Draws the rest of a record from its profile and agency: offence, statute,
/// issuer, ask, provider, targets, dates. `provider` forces one (it must fit).
fn compose(
    rng: &mut Rng,
    profile: &'static Profile,
    agency: &'static Agency,
    emergency: bool,
    created: DateTime<Utc>,
    number: usize,
    provider: Option<&'static str>,
) -> Primary {
    let (offence, citation, issuer, asks, valid) = if emergency {
        let offences = agency.emergency_offences(profile);
        let e = &profile.emergency;
        let offence = *rng.pick(&offences);
        (offence, e.citation, &e.issuer, e.asks, Duration::hours(48))
    } else {
        let offence = *rng.pick(agency.offences);
        let bases: Vec<(&Basis, u64)> = profile
            .bases
            .iter()
            .filter(|b| admits(b.offences, offence))
            .map(|b| (b, b.weight))
            .collect();
        let b = *rng.pick(&bases);
        (
            offence,
            b.citation,
            &b.issuer,
            b.asks,
            Duration::days(b.valid_days),
        )
    };
    let asks: Vec<(&Ask, u64)> = asks
        .iter()
        .filter(|(a, _)| provider.is_none_or(|p| providers_for(a.categories).contains(&p)))
        .map(|(a, w)| (a, *w))
        .collect();
    let ask = *rng.pick(&asks);
    let provider = provider.unwrap_or_else(|| {
        let ps = providers_for(ask.categories);
        if ps.contains(&PROVIDER) && rng.chance(DEMO_PROVIDER_SHARE) {
            PROVIDER
        } else {
            ps.iter()
                .copied()
                .find(|&p| p != PROVIDER)
                .unwrap_or(PROVIDER)
        }
    });
    let ntargets = 1 + rng.below(3) as usize;
    let targets: Vec<String> = (0..ntargets)
        .map(|_| match ask.target_type {
            "device" => format!("device:SAMPLE{:010}", rng.below(10_000_000_000)),
            _ => format!("acct:{:010}", rng.below(10_000_000_000)),
        })
        .collect();
    let court = &profile.courts[issuer.court()];
    let (issuer_name, issuer_type) = match issuer {
        Issuer::Court(_) => (court.name.to_owned(), "court"),
        Issuer::Other {
            name, issuer_type, ..
        } => ((*name).to_owned(), *issuer_type),
        Issuer::Agency(_) => (format!("{}, designated officer", agency.name), "agency"),
    };
    let valid_from = created;
    let valid_until = valid_from + valid;
    let mut draft = json!({
        "kind": if emergency { "emergency" } else { "request" },
        "jurisdiction": profile.jurisdiction,
        "legal_basis": citation,
        "issuing_authority": { "name": issuer_name, "type": issuer_type },
        "provider": provider,
        "data_categories": ask.categories,
        "offence": offence,
        "target_type": ask.target_type,
        "targets": targets,
        "valid_from": ts(valid_from),
        "valid_until": ts(valid_until),
        "case_reference": format!("{}-{:05}", agency.case_prefix, number),
    });
    if emergency {
        draft["sealed_until"] = json!(ts(valid_until + Duration::days(90)));
        // Terrorism threatens infrastructure as often as people, here.
        draft["ground"] = json!(if offence == "terrorism" && rng.chance(0.5) {
            "critical_infrastructure"
        } else {
            "life_or_safety"
        });
        draft["ratify_by"] = json!(ts(
            valid_from + Duration::hours(profile.emergency.ratify_hours)
        ));
    } else {
        // Sealing mostly a year past the end.
        let sealed_months = [3i64, 6, 12, 12, 24][rng.below(5) as usize];
        draft["sealed_until"] = json!(ts(valid_until + Duration::days(30 * sealed_months)));
        draft["order_document_sha256"] = json!(hex32(rng));
    }
    Primary {
        draft,
        agency,
        court,
        created,
        targets,
        provider,
        refused: None,
        emergency,
        follows: Vec::new(),
    }
}

/// A valid request to the demo provider from the first profile's first
/// agency whose window is open at `now`.
pub fn current_request(seed: u64, now: DateTime<Utc>) -> Primary {
    current(&PROFILES[0], seed, now)
}

/// A request to the demo provider from `profile`'s first agency, valid from
/// an hour before `now` for 30 days.
fn current(profile: &'static Profile, seed: u64, now: DateTime<Utc>) -> Primary {
    let mut p = compose(
        &mut Rng::new(seed),
        profile,
        &profile.agencies[0],
        false,
        now,
        seed as usize % 100_000,
        Some(PROVIDER),
    );
    p.draft["valid_from"] = ts(now - Duration::hours(1)).into();
    p.draft["valid_until"] = ts(now + Duration::days(30)).into();
    p.draft["sealed_until"] = ts(now + Duration::days(365)).into();
    p
}

/// How long after a request its provider answers it (a release or a refusal).
pub const ANSWER_AFTER_HOURS: i64 = 6;

/// The share of requests a provider's standards allow that it releases
/// (the rest are neither released nor refused in the log: still being
/// handled, or answered outside it).
pub const RELEASE_SHARE: f64 = 0.9;

/// A valid request to the demo provider whose window is open at `now`, from
/// the GB profile's first agency: the provider's standards refuse it
/// (`jurisdiction_denied`), so its gate answers DENY.
pub fn current_refused_request(seed: u64, now: DateTime<Utc>) -> Primary {
    let profile = PROFILES
        .iter()
        .find(|p| p.jurisdiction == "GB")
        .unwrap_or(&PROFILES[0]);
    current(profile, seed, now)
}

/// The demo's history: `n` requests and emergencies over the year before
/// `now`, each with the records that follow it (only those due by `now`).
///
/// Each provider answers a request as its gate would, by the standards in
/// force when it answers ([`published`]): a request they refuse gets a
/// `refusal` by the provider and never a release; one they allow is released
/// with [`RELEASE_SHARE`], as only the messenger's were before the providers
/// had standards. So releases are now 90% of the allowed requests to any
/// provider rather than 90% of the messenger's (63% of all requests): about
/// 19% of all requests are refused (11% the messenger's GB refusals, 2% its
/// later validity cap, 3% the cloud's issuer rule, 3% the device maker's
/// target cap) and about 73% released (Apple, H2 2017: data provided for 80%
/// of US device requests). Withdrawals (5%) are drawn among the requests not
/// released, refused ones included (about 1% of all; 2% before, when only
/// the messenger released), and a refused request has no outcome report
/// (nothing came through).
pub fn history(rng: &mut Rng, n: usize, now: DateTime<Utc>) -> anyhow::Result<Vec<Primary>> {
    let published = published(now)?;
    let mut broke_release = false;
    let mut broke_emergency = false;
    let mut broke_disclosure = false;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut p = primary(rng, i, n, now);
        let mut follows = Vec::new();
        let draft = |v: Value| FollowKind::Draft(v);
        let valid_until = parse_ts(&p.draft["valid_until"]).unwrap_or(p.created);
        let sealed_until = parse_ts(&p.draft["sealed_until"]).unwrap_or(valid_until);
        if p.emergency {
            // One emergency is never ratified, on purpose.
            if !broke_emergency && i > n / 2 {
                broke_emergency = true;
            } else {
                follows.push(Follow {
                    at: p.created + Duration::hours(20),
                    signer: p.court.key,
                    what: draft(ratification(
                        Value::Null,
                        &format!("{}-R", p.draft["case_reference"].as_str().unwrap_or("X")),
                        rng,
                    )),
                });
            }
        }
        let mut withdrawn = false;
        let answer_at = p.created + Duration::hours(ANSWER_AFTER_HOURS);
        let request = sealed(&p.draft, p.agency.key, p.created)?;
        p.refused = gate_check(&published, p.provider, answer_at, &request, p.agency.key)
            .err()
            .map(|r| r.reason);
        if let Some(reason) = p.refused {
            follows.push(Follow {
                at: answer_at,
                signer: p.provider,
                what: draft(refusal(Value::Null, reason, answer_at - Duration::hours(1))),
            });
        }
        if p.refused.is_none() && rng.chance(RELEASE_SHARE) {
            // One release names more targets than were authorised, on purpose:
            // by the messenger, whose standards cap no targets, so that the
            // break is only that one (not also a release against its policy).
            let mut k = p.targets.len();
            if !broke_release && i > n / 3 && p.provider == PROVIDER {
                broke_release = true;
                k += 2;
            }
            follows.push(Follow {
                at: answer_at,
                signer: p.provider,
                what: draft(release(Value::Null, k, answer_at - Duration::hours(1))),
            });
        } else if rng.chance(0.05) {
            follows.push(Follow {
                at: p.created + Duration::days(2),
                signer: p.agency.key,
                what: draft(withdrawal(Value::Null)),
            });
            withdrawn = true;
        }
        // A withdrawn or refused request produced nothing to report.
        if !withdrawn && p.refused.is_none() && valid_until < now && rng.chance(0.6) {
            let readable = reads_communications(&p.draft);
            follows.push(Follow {
                at: valid_until + Duration::days(20),
                signer: p.agency.key,
                what: draft(outcome(Value::Null, readable, rng)),
            });
        }
        // Every request is disclosed when its seal ends, withdrawn or
        // refused ones too: what was asked stays public (the auditor reports
        // any sealed entry left undisclosed, withdrawn or not).
        if sealed_until < now {
            if !withdrawn && rng.chance(0.15) && sealed_until - Duration::days(7) > p.created {
                follows.push(Follow {
                    at: sealed_until - Duration::days(7),
                    signer: p.court.key,
                    what: draft(extension(Value::Null, sealed_until + Duration::days(365))),
                });
            } else if !broke_disclosure && !p.emergency {
                // One overdue disclosure is left undone, on purpose.
                broke_disclosure = true;
            } else {
                follows.push(Follow {
                    at: sealed_until + Duration::days(3),
                    signer: p.agency.key,
                    what: FollowKind::Disclosure,
                });
            }
        }
        follows.retain(|f| f.at <= now);
        p.follows = follows;
        out.push(p);
    }
    Ok(out)
}

fn parse_ts(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether an order reaches what encryption protects (content, keys, a
/// device), so that its outcome can report meeting encryption at all.
pub fn reads_communications(draft: &Value) -> bool {
    draft["data_categories"].as_array().is_some_and(|c| {
        c.iter().any(|c| {
            ["content", "stored_keys", "device_unlock"].contains(&c.as_str().unwrap_or(""))
        })
    })
}

/// A reference to an earlier entry, as drafts write it.
pub fn entry_ref(index: u64, leaf_hash_hex: &str) -> Value {
    json!({ "index": index, "leaf_hash": leaf_hash_hex })
}

/// The court's ratification of an emergency (denials are rare: the Wiretap
/// Report counts about one denied application a year).
pub fn ratification(emergency: Value, case: &str, rng: &mut Rng) -> Value {
    json!({
        "kind": "ratification",
        "emergency": emergency,
        "decision": if rng.chance(0.95) { "granted" } else { "denied" },
        "case_reference": case,
        "order_document_sha256": hex32(rng),
    })
}

/// The provider's release receipt.
pub fn release(entry: Value, targets: usize, at: DateTime<Utc>) -> Value {
    json!({ "kind": "release", "entry": entry, "targets_released": targets, "released_at": ts(at) })
}

/// The provider's refusal, on its standards.
pub fn refusal(entry: Value, reason: RefusalReason, at: DateTime<Utc>) -> Value {
    json!({ "kind": "refusal", "entry": entry, "reason": reason.as_str(), "refused_at": ts(at) })
}

/// Wiretap Report 2023 (federal and state): encryption met in 472 of 2,101
/// orders.
pub const ENCRYPTION_ENCOUNTERED: f64 = 472.0 / 2101.0;
/// Wiretap Report 2023: of the 472, 425 could not be decrypted.
pub const ENCRYPTION_PREVENTED: f64 = 425.0 / 472.0;

/// The agency's outcome report, after the Wiretap Report's prosecutor
/// report. Only an order that reads communications (`readable`) can meet
/// encryption; subscriber or traffic records are not end-to-end encrypted.
pub fn outcome(entry: Value, readable: bool, rng: &mut Rng) -> Value {
    let encrypted = readable && rng.chance(ENCRYPTION_ENCOUNTERED);
    let prevented = encrypted && rng.chance(ENCRYPTION_PREVENTED);
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

#[cfg(test)]
#[path = "sample_tests.rs"]
mod tests;
