//! What an authorisation's status is: the one place that decides it, from
//! the facts later entries established and from the time.

use daylight_schemas::Kind;

/// A status an authorisation can have (several at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Still sealed, and the sealed-until date has not passed.
    Sealed,
    /// A disclosure entry opened it.
    Disclosed,
    /// Sealed-until (after any extension) has passed and no disclosure exists.
    Overdue,
    /// An emergency a court ratified.
    Ratified,
    /// An emergency a court refused to ratify.
    Denied,
    /// An emergency whose ratification deadline passed without a ratification.
    Unratified,
    /// An emergency still within its ratification deadline.
    AwaitingRatification,
    /// The provider logged a release for it, or (threshold custody)
    /// custodians logged the release of enough shares of one of its keys
    /// to put that key together.
    Released,
    /// The agency withdrew it.
    Withdrawn,
    /// The provider logged a refusal of it (on its content: jurisdiction,
    /// issuer, data, offence, targets or duration).
    Refused,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 10] = [
        Status::Sealed,
        Status::Disclosed,
        Status::Overdue,
        Status::Ratified,
        Status::Denied,
        Status::Unratified,
        Status::AwaitingRatification,
        Status::Released,
        Status::Withdrawn,
        Status::Refused,
    ];

    /// The code used in URLs and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sealed => "sealed",
            Status::Disclosed => "disclosed",
            Status::Overdue => "overdue",
            Status::Ratified => "ratified",
            Status::Denied => "denied",
            Status::Unratified => "unratified",
            Status::AwaitingRatification => "awaiting_ratification",
            Status::Released => "released",
            Status::Withdrawn => "withdrawn",
            Status::Refused => "refused",
        }
    }

    /// Plain-language label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Sealed => "sealed",
            Status::Disclosed => "disclosed",
            Status::Overdue => "disclosure overdue",
            Status::Ratified => "ratified by a court",
            Status::Denied => "ratification denied",
            Status::Unratified => "not ratified in time",
            Status::AwaitingRatification => "awaiting ratification",
            Status::Released => "access released",
            Status::Withdrawn => "withdrawn",
            Status::Refused => "refused by the provider",
        }
    }

    /// Its place in [`Status::ALL`] (the declaration order): its bit in a
    /// [`StatusSet`] and its number in the web index.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A set of [`Status`]es, one bit each (in [`Status::ALL`] order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusSet(u16);

impl StatusSet {
    /// `s`'s bit in a set's [`StatusSet::bits`].
    pub fn bit(s: Status) -> u16 {
        1 << s.number()
    }

    fn insert(&mut self, s: Status) {
        self.0 |= Self::bit(s);
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `s` is in the set.
    pub fn contains(self, s: Status) -> bool {
        self.0 & Self::bit(s) != 0
    }

    /// The set as bits (bit `i`: `Status::ALL[i]`), as the index stores it.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// A set from [`StatusSet::bits`]; unknown bits are dropped.
    pub fn from_bits(bits: u16) -> StatusSet {
        StatusSet(bits & ((1 << Status::ALL.len()) - 1))
    }

    /// The statuses, in [`Status::ALL`] order.
    pub fn to_vec(self) -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|&s| self.contains(s))
            .collect()
    }
}

/// What later entries said about an entry, as bits (the index stores them).
pub mod flags {
    /// A disclosure refers to it.
    pub const DISCLOSURE: u8 = 1;
    /// A withdrawal refers to it.
    pub const WITHDRAWAL: u8 = 2;
    /// A release refers to it.
    pub const RELEASE: u8 = 4;
    /// A ratification granted it.
    pub const GRANTED: u8 = 8;
    /// A ratification denied it.
    pub const DENIED: u8 = 16;
    /// A provider's refusal refers to it.
    pub const REFUSAL: u8 = 32;
    /// Custodians' share releases for it put one of its keys together: at
    /// least k shares of one key and split, with distinct indices, from
    /// distinct custodians ([`crate::custody::assembled`]).
    pub const SHARES: u8 = 64;
    /// One past the largest combination.
    pub const END: u8 = 128;

    /// The bit a referring entry of this kind (and decision) sets. A
    /// custodian's share release sets none ([`crate::Summary::flag_bit`]).
    pub fn of(
        kind: Option<daylight_schemas::Kind>,
        decision: Option<daylight_schemas::Decision>,
    ) -> u8 {
        use daylight_schemas::{Decision, Kind};
        match (kind, decision) {
            (Some(Kind::Disclosure), _) => DISCLOSURE,
            (Some(Kind::Withdrawal), _) => WITHDRAWAL,
            (Some(Kind::Release), _) => RELEASE,
            (Some(Kind::Refusal), _) => REFUSAL,
            (_, Some(Decision::Granted)) => GRANTED,
            (_, Some(Decision::Denied)) => DENIED,
            _ => 0,
        }
    }
}

/// Everything an entry's statuses depend on at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Facts {
    /// The entry's kind (`None`: unreadable).
    pub kind: Option<Kind>,
    /// [`flags`] bits.
    pub flags: u8,
    /// Whether the sealed-until date in force has passed (`None`: no date).
    pub seal_passed: Option<bool>,
    /// Whether the ratification deadline has passed (`None`: no deadline).
    pub ratify_passed: Option<bool>,
}

impl Facts {
    /// The facts of an entry at `now`: a sealed-until date has passed from
    /// that moment on, a ratification deadline only after it.
    pub fn at(
        kind: Option<Kind>,
        flags: u8,
        sealed_in_force: Option<chrono::DateTime<chrono::Utc>>,
        ratify_by: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Facts {
        Facts {
            kind,
            flags,
            seal_passed: sealed_in_force.map(|t| now >= t),
            ratify_passed: ratify_by.map(|t| now > t),
        }
    }

    /// The statuses these facts give; empty for kinds other than requests
    /// and emergencies.
    pub fn statuses(self) -> StatusSet {
        let mut out = StatusSet::default();
        let emergency = match self.kind {
            Some(Kind::Request) => false,
            Some(Kind::Emergency) => true,
            _ => return out,
        };
        let has = |bit: u8| self.flags & bit != 0;
        if has(flags::DISCLOSURE) {
            out.insert(Status::Disclosed);
        } else if let Some(passed) = self.seal_passed {
            out.insert(if passed {
                Status::Overdue
            } else {
                Status::Sealed
            });
        }
        if has(flags::WITHDRAWAL) {
            out.insert(Status::Withdrawn);
        }
        // Access exists once the provider released it, or once enough
        // custodians released shares of one key for whoever holds them.
        if has(flags::RELEASE) || has(flags::SHARES) {
            out.insert(Status::Released);
        }
        if has(flags::REFUSAL) {
            out.insert(Status::Refused);
        }
        if emergency {
            if has(flags::GRANTED) {
                out.insert(Status::Ratified);
            } else if has(flags::DENIED) {
                out.insert(Status::Denied);
            } else if self.ratify_passed == Some(true) {
                out.insert(Status::Unratified);
            } else {
                out.insert(Status::AwaitingRatification);
            }
        }
        out
    }

    /// Every combination of facts an authorisation can have, for turning a
    /// status into the list of fact combinations that give it.
    pub fn all_authorisations() -> impl Iterator<Item = Facts> {
        let opts = [None, Some(false), Some(true)];
        [Kind::Request, Kind::Emergency]
            .into_iter()
            .flat_map(move |kind| {
                (0..flags::END).flat_map(move |flags| {
                    opts.into_iter().flat_map(move |seal_passed| {
                        opts.into_iter().map(move |ratify_passed| Facts {
                            kind: Some(kind),
                            flags,
                            seal_passed,
                            ratify_passed,
                        })
                    })
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: Kind, flags: u8, seal: Option<bool>, ratify: Option<bool>) -> Vec<Status> {
        Facts {
            kind: Some(kind),
            flags,
            seal_passed: seal,
            ratify_passed: ratify,
        }
        .statuses()
        .to_vec()
    }

    #[test]
    fn statuses_follow_the_facts() {
        use Status::*;
        assert_eq!(facts(Kind::Request, 0, Some(false), None), vec![Sealed]);
        assert_eq!(facts(Kind::Request, 0, Some(true), None), vec![Overdue]);
        assert_eq!(
            facts(Kind::Request, flags::DISCLOSURE, Some(true), None),
            vec![Disclosed]
        );
        assert_eq!(
            facts(
                Kind::Request,
                flags::WITHDRAWAL | flags::RELEASE,
                Some(false),
                None
            ),
            vec![Sealed, Released, Withdrawn]
        );
        assert_eq!(
            facts(Kind::Request, flags::REFUSAL, Some(false), None),
            vec![Sealed, Refused]
        );
        // Custodians' shares of one key released it as the provider would.
        assert_eq!(
            facts(Kind::Request, flags::SHARES, Some(false), None),
            vec![Sealed, Released]
        );
        assert_eq!(
            facts(Kind::Emergency, 0, Some(false), Some(false)),
            vec![Sealed, AwaitingRatification]
        );
        assert_eq!(
            facts(Kind::Emergency, 0, Some(false), Some(true)),
            vec![Sealed, Unratified]
        );
        assert_eq!(
            facts(Kind::Emergency, flags::GRANTED, None, Some(true)),
            vec![Ratified]
        );
        assert_eq!(
            facts(Kind::Emergency, flags::DENIED, None, None),
            vec![Denied]
        );
        // A grant wins over a later denial's bit.
        assert_eq!(
            facts(Kind::Emergency, flags::GRANTED | flags::DENIED, None, None),
            vec![Ratified]
        );
        for k in [Kind::Registry, Kind::Release, Kind::Disclosure] {
            assert!(facts(k, flags::END - 1, Some(true), Some(true)).is_empty());
        }
        assert!(Facts {
            kind: None,
            flags: 0,
            seal_passed: Some(true),
            ratify_passed: None
        }
        .statuses()
        .to_vec()
        .is_empty());
    }

    #[test]
    fn every_authorisation_combination_is_listed_once() {
        let all: Vec<Facts> = Facts::all_authorisations().collect();
        assert_eq!(all.len(), 2 * 128 * 3 * 3);
        let unique: std::collections::HashSet<Facts> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn bits_round_trip() {
        for f in Facts::all_authorisations() {
            let s = f.statuses();
            assert_eq!(StatusSet::from_bits(s.bits()), s);
        }
        assert_eq!(
            StatusSet::from_bits(u16::MAX).to_vec(),
            Status::ALL.to_vec()
        );
    }

    #[test]
    fn numbers_are_places_in_all() {
        for (i, s) in Status::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(s.number()), i);
        }
    }

    #[test]
    fn deadlines_at_their_second() {
        let t = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
        let f = |now: i64| {
            Facts::at(
                Some(Kind::Emergency),
                0,
                Some(t),
                Some(t),
                chrono::DateTime::from_timestamp(now, 0).unwrap(),
            )
        };
        assert_eq!(
            (f(999).seal_passed, f(999).ratify_passed),
            (Some(false), Some(false))
        );
        assert_eq!(
            (f(1_000).seal_passed, f(1_000).ratify_passed),
            (Some(true), Some(false))
        );
        assert_eq!(
            (f(1_001).seal_passed, f(1_001).ratify_passed),
            (Some(true), Some(true))
        );
    }

    #[test]
    fn codes_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("nonsense"), None);
    }
}
