//! The demo's sample records agree with themselves and keep their
//! calibration. The checks look records up in [`PROFILES`] by what the
//! records say (jurisdiction, citation, names), not by how they were drawn.

use super::*;
use chrono::TimeZone as _;
use std::str::FromStr as _;

/// The profile for a jurisdiction code.
fn profile(jurisdiction: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.jurisdiction == jurisdiction)
}

impl Follow {
    /// The record's kind.
    fn kind(&self) -> &str {
        match &self.what {
            FollowKind::Disclosure => "disclosure",
            FollowKind::Draft(d) => d["kind"].as_str().unwrap_or(""),
        }
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

/// Why a primary draft signed by `signer` is not coherent, if it is not.
fn incoherence(draft: &Value, signer: &str) -> Option<String> {
    let j = draft["jurisdiction"].as_str().unwrap_or("");
    let Some(p) = profile(j) else {
        return Some(format!("no profile for jurisdiction {j:?}"));
    };
    let Some(agency) = p.agencies.iter().find(|a| a.key == signer) else {
        return Some(format!("{signer} is not an agency of {j}"));
    };
    let citation = draft["legal_basis"].as_str().unwrap_or("");
    let offence = draft["offence"].as_str().unwrap_or("");
    let categories: Vec<&str> = draft["data_categories"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let emergency = draft["kind"] == "emergency";
    let (issuer, asks, admitted) = if emergency {
        let e = &p.emergency;
        if e.citation != citation {
            return Some(format!("{citation:?} is not {j}'s emergency statute"));
        }
        (&e.issuer, e.asks, e.admits(offence))
    } else {
        let Some(b) = p.bases.iter().find(|b| b.citation == citation) else {
            return Some(format!("{citation:?} is not a statute of {j}"));
        };
        (&b.issuer, b.asks, admits(b.offences, offence))
    };
    if !agency.offences.iter().any(|(o, _)| *o == offence) {
        return Some(format!("{offence} is outside {signer}'s remit"));
    }
    if !admitted {
        return Some(format!("{citation} is not open for {offence}"));
    }
    let name = draft["issuing_authority"]["name"].as_str().unwrap_or("");
    let kind = draft["issuing_authority"]["type"].as_str().unwrap_or("");
    let expected = match issuer {
        Issuer::Court(c) => (p.courts[*c].name.to_owned(), "court"),
        Issuer::Other {
            name, issuer_type, ..
        } => ((*name).to_owned(), *issuer_type),
        Issuer::Agency(_) => (format!("{}, designated officer", agency.name), "agency"),
    };
    if (name, kind) != (expected.0.as_str(), expected.1) {
        return Some(format!(
            "issued by {name:?} ({kind}), not by {j}'s authority under {citation}"
        ));
    }
    if kind == "court" && !p.courts.iter().any(|c| c.name == name) {
        return Some(format!("{name:?} is not a court of {j}"));
    }
    let Some(ask) = asks.iter().map(|(a, _)| a).find(|a| {
        let mut want: Vec<&str> = a.categories.to_vec();
        let mut got = categories.clone();
        want.sort_unstable();
        got.sort_unstable();
        want == got
    }) else {
        return Some(format!(
            "{categories:?} cannot be asked for under {citation}"
        ));
    };
    if draft["target_type"] != ask.target_type {
        return Some(format!(
            "{categories:?} asks for {} targets",
            ask.target_type
        ));
    }
    let provider = draft["provider"].as_str().unwrap_or("");
    if !providers_for(&categories).contains(&provider) {
        return Some(format!("{provider} cannot answer {categories:?}"));
    }
    if !draft["case_reference"]
        .as_str()
        .unwrap_or("")
        .starts_with(agency.case_prefix)
    {
        return Some(format!("case reference not {signer}'s"));
    }
    None
}

/// Why a follow-up of `p` is not coherent, if it is not.
fn follow_incoherence(p: &Primary, f: &Follow) -> Option<String> {
    let j = p.draft["jurisdiction"].as_str().unwrap_or("");
    let profile = profile(j)?;
    let court_keys: Vec<&str> = profile.courts.iter().map(|c| c.key).collect();
    let issuer_court = if p.emergency {
        &profile.courts[profile.emergency.issuer.court()]
    } else {
        let b = profile
            .bases
            .iter()
            .find(|b| p.draft["legal_basis"] == b.citation)?;
        &profile.courts[b.issuer.court()]
    };
    let ok = match f.kind() {
        "ratification" => p.emergency && f.signer == issuer_court.key,
        "extension" => court_keys.contains(&f.signer) && f.signer == issuer_court.key,
        "outcome" | "withdrawal" | "disclosure" => f.signer == p.agency.key,
        "release" | "refusal" => p.draft["provider"] == f.signer,
        other => return Some(format!("unexpected follow-up {other}")),
    };
    (!ok).then(|| {
        format!(
            "{} signed by {} for a {j} entry of {}",
            f.kind(),
            f.signer,
            p.agency.key
        )
    })
}

#[test]
fn every_sample_record_agrees_with_its_jurisdiction() {
    let mut kinds = std::collections::BTreeMap::new();
    for seed in [0xda11_9117, 1, 2, 3] {
        let history = history(&mut Rng::new(seed), 2000, now()).unwrap();
        for p in &history {
            if let Some(why) = incoherence(&p.draft, p.agency.key) {
                panic!("{why}: {}", p.draft);
            }
            daylight_schemas::Draft::from_json(&p.draft.to_string())
                .unwrap_or_else(|e| panic!("{e}: {}", p.draft));
            for f in &p.follows {
                if let Some(why) = follow_incoherence(p, f) {
                    panic!("{why}");
                }
                *kinds.entry(f.kind().to_owned()).or_insert(0) += 1;
            }
        }
    }
    // Every kind of follow-up was checked.
    for k in [
        "ratification",
        "extension",
        "outcome",
        "withdrawal",
        "disclosure",
        "release",
        "refusal",
    ] {
        assert!(
            kinds.get(k).is_some_and(|&c| c > 0),
            "no {k} drawn: {kinds:?}"
        );
    }
}

#[test]
fn every_seal_that_ended_is_disclosed_but_one() {
    for seed in [0xda11_9117, 1, 2, 3] {
        let history = history(&mut Rng::new(seed), 2000, now()).unwrap();
        let undisclosed: Vec<&Primary> = history
            .iter()
            .filter(|p| {
                let sealed = parse_ts(&p.draft["sealed_until"]).unwrap();
                let extended = p.follows.iter().any(|f| f.kind() == "extension");
                // The auditor allows 30 days' grace.
                sealed + Duration::days(30) < now()
                    && !extended
                    && !p.follows.iter().any(|f| f.kind() == "disclosure")
            })
            .collect();
        // Only the deliberate one, withdrawn and refused requests included.
        assert_eq!(undisclosed.len(), 1, "seed {seed}");
        assert!(!undisclosed[0].emergency);
    }
}

#[test]
fn the_checker_refuses_the_mix_the_issue_reported() {
    // A GB request under the Investigatory Powers Act issued by a U.S. court.
    let mut p = primary(&mut Rng::new(5), 0, 1, now());
    while p.draft["jurisdiction"] != "GB" || p.emergency {
        p = primary(&mut Rng::new(p.created.timestamp() as u64), 0, 1, now());
    }
    assert_eq!(incoherence(&p.draft, p.agency.key), None);
    let mut bad = p.draft.clone();
    bad["legal_basis"] = "Investigatory Powers Act 2016 s.19".into();
    bad["issuing_authority"] = json!({
        "name": "U.S. District Court for the Southern District of New York",
        "type": "court",
    });
    assert!(incoherence(&bad, p.agency.key).is_some());
    // Another jurisdiction's agency, statute or provider is refused too.
    assert!(incoherence(&p.draft, "us-federal-bureau.sample.example").is_some());
    let mut bad = p.draft.clone();
    bad["legal_basis"] = "StPO § 100a".into();
    assert!(incoherence(&bad, p.agency.key).is_some());
    let mut bad = p.draft.clone();
    bad["data_categories"] = json!(["device_unlock"]);
    bad["provider"] = PROVIDER.into();
    assert!(incoherence(&bad, p.agency.key).is_some());
}

#[test]
fn the_table_is_complete_and_its_keys_are_valid_names() {
    let mut keys = std::collections::HashSet::new();
    for k in agencies()
        .map(|a| a.key)
        .chain(courts().map(|c| c.key))
        .chain([PROVIDER, OTHER_PROVIDER, DEVICE_PROVIDER])
    {
        daylight_schemas::Name::new(k).unwrap_or_else(|e| panic!("{k}: {e}"));
        assert!(k.ends_with(".example"), "{k} is not a documentation name");
        assert!(keys.insert(k), "{k} twice");
    }
    for p in PROFILES {
        for a in p.agencies {
            assert!(a.key.contains("sample") && a.name.contains("sample"));
            // Every offence in an agency's remit has a statute.
            for (o, _) in a.offences {
                assert!(
                    p.bases.iter().any(|b| admits(b.offences, o)),
                    "{}: no statute for {o}",
                    p.jurisdiction
                );
                daylight_schemas::Offence::from_str(o).unwrap();
            }
        }
        // Someone can invoke the emergency statute.
        assert!(p
            .agencies
            .iter()
            .any(|a| !a.emergency_offences(p).is_empty()));
        assert!((1..=48).contains(&p.emergency.ratify_hours));
        for i in p
            .bases
            .iter()
            .map(|b| &b.issuer)
            .chain([&p.emergency.issuer])
        {
            assert!(i.court() < p.courts.len());
        }
    }
}

#[test]
fn the_ready_request_is_coherent_and_current() {
    let p = current_request(7, now());
    assert_eq!(incoherence(&p.draft, p.agency.key), None, "{}", p.draft);
    assert_eq!(p.draft["provider"], PROVIDER);
    assert_eq!(p.draft["kind"], "request");
    assert!(parse_ts(&p.draft["valid_until"]).unwrap() > now());
    // The demo provider's gate, with its current standards, takes it.
    let published = published(now()).unwrap();
    let record = sealed(&p.draft, p.agency.key, now()).unwrap();
    assert_eq!(
        gate_check(&published, PROVIDER, now(), &record, p.agency.key),
        Ok(())
    );
}

#[test]
fn the_ready_refused_request_is_coherent_and_refused_by_the_provider() {
    let p = current_refused_request(7, now());
    assert_eq!(incoherence(&p.draft, p.agency.key), None, "{}", p.draft);
    assert_eq!(
        (p.draft["provider"].as_str(), p.draft["kind"].as_str()),
        (Some(PROVIDER), Some("request"))
    );
    assert!(parse_ts(&p.draft["valid_until"]).unwrap() > now());
    let published = published(now()).unwrap();
    let record = sealed(&p.draft, p.agency.key, now()).unwrap();
    let refusal = gate_check(&published, PROVIDER, now(), &record, p.agency.key).unwrap_err();
    assert_eq!(refusal.reason, RefusalReason::JurisdictionDenied);
}

#[test]
fn sealed_sample_records_pass_the_schema_rules() {
    let key = daylight_core::SignerKey::from_seed(
        daylight_core::KeyName::new("us-federal-bureau.sample.example").unwrap(),
        daylight_core::KeyType::Ed25519,
        [7; 32],
    );
    let mut salts = Rng::new(1);
    let mut rand = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = salts.next() as u8);
    for p in history(&mut Rng::new(11), 300, now()).unwrap() {
        let d = daylight_schemas::Draft::from_json(&p.draft.to_string()).unwrap();
        d.seal(&key, crate::demo::ORIGIN, p.created, &mut rand)
            .unwrap_or_else(|e| panic!("{e}: {}", p.draft));
    }
}

/// Within `tol` of `want`.
fn near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got:.3}, want {want:.3} ± {tol}"
    );
}

#[test]
fn the_calibration_to_the_published_figures_holds() {
    let n = 20_000;
    let history = history(&mut Rng::new(0xda11_9117), n, now()).unwrap();
    let share = |f: &dyn Fn(&Primary) -> bool, among: &dyn Fn(&Primary) -> bool| {
        let base: Vec<&Primary> = history.iter().filter(|p| among(p)).collect();
        base.iter().filter(|p| f(p)).count() as f64 / base.len() as f64
    };
    let all = |_: &Primary| true;
    // Meta H1 2022: 3,943 of 69,363 US requests were emergencies.
    near(
        "emergency share",
        share(&|p| p.emergency, &all),
        0.057,
        0.01,
    );
    // Jurisdictions as before: 70% US (45 federal, 25 state).
    let us = |p: &Primary| p.draft["jurisdiction"].as_str().unwrap().starts_with("US");
    near("US share", share(&us, &all), 0.70, 0.02);
    near(
        "US federal share",
        share(&|p| p.draft["jurisdiction"] == "US", &all),
        0.45,
        0.02,
    );
    // US Wiretap Report 2023: narcotics 50%, conspiracy 11% of US orders.
    let us_orders = |p: &Primary| us(p) && !p.emergency;
    near(
        "US narcotics",
        share(&|p| p.draft["offence"] == "narcotics", &us_orders),
        0.50,
        0.02,
    );
    near(
        "US conspiracy",
        share(&|p| p.draft["offence"] == "conspiracy", &us_orders),
        0.11,
        0.015,
    );
    // The demo provider gets about 70% of requests.
    near(
        "demo provider",
        share(&|p| p.provider == PROVIDER, &all),
        0.70,
        0.03,
    );
    // Releases: 90% of the requests a provider's standards allow; about a
    // fifth are refused, so about 73% of all requests are released (Apple,
    // H2 2017: data provided for 80% of US device requests).
    let released = |p: &Primary| p.follows.iter().any(|f| f.kind() == "release");
    near(
        "released among allowed",
        share(&released, &|p| p.refused.is_none()),
        RELEASE_SHARE,
        0.02,
    );
    near("refused", share(&|p| p.refused.is_some(), &all), 0.19, 0.03);
    near("released", share(&released, &all), 0.73, 0.03);
    // Ratifications are nearly always granted.
    let ratifications: Vec<&Value> = history
        .iter()
        .flat_map(|p| &p.follows)
        .filter_map(|f| match &f.what {
            FollowKind::Draft(d) if d["kind"] == "ratification" => Some(d),
            _ => None,
        })
        .collect();
    let granted = ratifications
        .iter()
        .filter(|d| d["decision"] == "granted")
        .count() as f64
        / ratifications.len() as f64;
    near("ratifications granted", granted, 0.95, 0.03);
    // Wiretap Report 2023: encryption met in 472 of 2,101 orders, 425 of
    // them unreadable; only orders that read communications can meet it.
    let mut rng = Rng::new(3);
    let outcomes: Vec<Value> = (0..n)
        .map(|_| outcome(Value::Null, true, &mut rng))
        .collect();
    let met: Vec<&Value> = outcomes
        .iter()
        .filter(|o| o["encryption_encountered"] == true)
        .collect();
    near(
        "encryption encountered",
        met.len() as f64 / n as f64,
        472.0 / 2101.0,
        0.015,
    );
    near(
        "could not decrypt",
        met.iter()
            .filter(|o| o["encryption_prevented_access"] == true)
            .count() as f64
            / met.len() as f64,
        425.0 / 472.0,
        0.03,
    );
    assert!(
        (0..1000).all(|_| outcome(Value::Null, false, &mut rng)["encryption_encountered"] == false)
    );
}

/// Why each provider refuses a request answered at `at`, written out here
/// from the stances [`STANDARDS`] describes, independently of the content
/// rules' code: the messenger refuses GB, and from five months before the
/// end orders over 60 days; the cloud takes only court orders; the device
/// maker at most two devices.
fn expected_refusal(p: &Primary, at: DateTime<Utc>) -> Option<&'static str> {
    let d = &p.draft;
    let days = (parse_ts(&d["valid_until"]).unwrap() - parse_ts(&d["valid_from"]).unwrap())
        .num_seconds() as f64
        / 86_400.0;
    match p.provider {
        PROVIDER if d["jurisdiction"] == "GB" => Some("jurisdiction_denied"),
        PROVIDER if at >= now() - Duration::days(150) && days > 60.0 => Some("validity_too_long"),
        OTHER_PROVIDER if d["issuing_authority"]["type"] != "court" => Some("issuer_not_allowed"),
        DEVICE_PROVIDER if d["targets"].as_array().unwrap().len() > 2 => Some("too_many_targets"),
        _ => None,
    }
}

#[test]
fn providers_refuse_only_what_their_standards_refuse() {
    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    let mut allowed_to = std::collections::BTreeMap::<&str, usize>::new();
    for seed in [0xda11_9117, 1, 2, 3] {
        for p in history(&mut Rng::new(seed), 2000, now()).unwrap() {
            let answer_at = p.created + Duration::hours(ANSWER_AFTER_HOURS);
            let want = expected_refusal(&p, answer_at);
            assert_eq!(p.refused.map(|r| r.as_str()), want, "{}", p.draft);
            let answers: Vec<&Value> = p
                .follows
                .iter()
                .filter_map(|f| match &f.what {
                    FollowKind::Draft(d) if ["release", "refusal"].contains(&f.kind()) => {
                        assert_eq!(f.signer, p.provider);
                        Some(d)
                    }
                    _ => None,
                })
                .collect();
            // At most one answer: never both a release and a refusal.
            assert!(answers.len() <= 1, "{answers:?}");
            match want {
                Some(reason) => {
                    *reasons.entry(reason).or_default() += 1;
                    // Refused: a refusal with the reason once it is due, no release.
                    if answer_at <= now() {
                        assert_eq!(answers.len(), 1, "{}", p.draft);
                        assert_eq!(answers[0]["kind"], "refusal");
                        assert_eq!(answers[0]["reason"], reason);
                        assert!(parse_ts(&answers[0]["refused_at"]).unwrap() <= answer_at);
                    }
                    // Nothing came through, so nothing to report.
                    assert!(p.follows.iter().all(|f| f.kind() != "outcome"));
                }
                None => {
                    assert!(answers.iter().all(|a| a["kind"] == "release"));
                    *allowed_to.entry(p.provider).or_default() += 1;
                }
            }
        }
    }
    // Every stance shows in the data, and every provider also releases.
    for r in [
        "jurisdiction_denied",
        "validity_too_long",
        "issuer_not_allowed",
        "too_many_targets",
    ] {
        assert!(
            reasons.get(r).is_some_and(|&c| c > 0),
            "no {r}: {reasons:?}"
        );
    }
    for p in PROVIDERS {
        assert!(
            allowed_to.get(p).is_some_and(|&c| c > 0),
            "{p}: {allowed_to:?}"
        );
    }
}

#[test]
fn every_provider_publishes_its_standards_before_the_first_request() {
    let published = published(now()).unwrap();
    let first = history(&mut Rng::new(1), 300, now()).unwrap()[0].created;
    for p in PROVIDERS {
        let first_version = published.iter().find(|s| s.provider == *p);
        assert!(
            first_version.is_some_and(|s| s.at < first),
            "{p} has no standards in force at the first request"
        );
    }
    // Each is a valid policy record, its lines as the gate reads them.
    let key = daylight_core::SignerKey::from_seed(
        daylight_core::KeyName::new(PROVIDER).unwrap(),
        daylight_core::KeyType::Ed25519,
        [3; 32],
    );
    for s in &published {
        assert!(PROVIDERS.contains(&s.provider));
        let lines = s
            .lines
            .iter()
            .map(|l| daylight_schemas::Text::new(l).unwrap())
            .collect();
        daylight_schemas::Record::new(
            s.at,
            daylight_schemas::Body::Policy(daylight_schemas::PolicyBody { lines }),
        )
        .unwrap()
        .sign(&key, crate::demo::ORIGIN)
        .unwrap();
        assert_eq!(s.policy.lines.len(), s.lines.len());
        for (parsed, text) in s.policy.lines.iter().zip(s.lines) {
            assert_eq!(&parsed.to_string(), text);
        }
    }
}

#[test]
fn the_second_version_is_later_and_stricter() {
    let published = published(now()).unwrap();
    let mut revised = 0;
    for p in PROVIDERS {
        let versions: Vec<&Published> = published.iter().filter(|s| s.provider == *p).collect();
        for pair in versions.windows(2) {
            let (old, new) = (pair[0], pair[1]);
            revised += 1;
            assert!(new.at > old.at, "{p}: versions out of order");
            // Every old line stays: what the old version refused, the new refuses.
            for line in old.lines {
                assert!(new.lines.contains(line), "{p} dropped {line:?}");
            }
            // And some requests the old version allowed, the new one refuses.
            let history = history(&mut Rng::new(2), 2000, now()).unwrap();
            let mut newly_refused = 0;
            for h in history.iter().filter(|h| h.provider == *p) {
                let r = sealed(&h.draft, h.agency.key, h.created).unwrap();
                let (before, after) = (
                    old.policy.check(&r, h.agency.key),
                    new.policy.check(&r, h.agency.key),
                );
                assert!(before.is_ok() || after.is_err());
                if before.is_ok() && after.is_err() {
                    newly_refused += 1;
                }
            }
            assert!(newly_refused > 0, "{p}'s new version refuses nothing more");
        }
    }
    assert_eq!(revised, 1, "one provider publishes a second version");
}
