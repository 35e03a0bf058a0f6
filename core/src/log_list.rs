//! The witness network's log-list format, `logs/v0`: which logs a witness
//! cosigns, with each log's key, origin, request budget and contact.
//!
//! The format is a community document, not a C2SP spec:
//! transparency-dev/witness-network `log-list-format.md` (published at
//! <https://witness-network.org/log-list-format/>), checked by that
//! repository's `cmd/validate`. A list looks like this:
//!
//! ```text
//! # comments and blank lines are ignored
//! logs/v0
//! vkey sigsum.org/v1/tree/4e89…bb4d+778629b1+AUZEryq9QPSJWgA7yjUPnVkSqzAaScd/E+W22QXCCl/m
//! qpd 8640
//! contact sigsum-logs (at) glasklarteknik.se
//!
//! vkey bar.org/tlog+…
//! origin something-not-equal-to-vkey-keyname
//! qpd 24
//! contact sysadmin (at) bar.org
//! ```
//!
//! # Policy
//!
//! Parsers in the wild differ (the validator, transparency-dev/witness and
//! Sunlight accept different things). [`LogList::parse`] follows the spec
//! and its validator strictly, so a list we accept is accepted everywhere:
//!
//! - Every line has its leading and trailing whitespace trimmed (a final
//!   `\r` included); then blank lines and lines starting with `#` are
//!   ignored. A `#` elsewhere is text (a contact may hold a URL fragment).
//! - The first remaining line must be exactly `logs/v0`. An input with no
//!   such line (an empty file included) is refused, although the validator
//!   accepts an empty file: a list given to a witness that names nothing is
//!   a mistake. A second `logs/v0` line is an error.
//! - Each log is, in this strict order: `vkey VKEY`, optionally
//!   `origin ORIGIN`, `qpd QPD`, `contact CONTACT`. `qpd` and `contact` are
//!   required. Keywords are lower case; a keyword and its value are
//!   separated by one space. `VKEY` and `QPD` are single words; `ORIGIN` and
//!   `CONTACT` are the rest of the line.
//! - An unknown keyword is an error (the validator ignores it only by
//!   accident of its state machine; transparency-dev/witness refuses it).
//! - `VKEY` is a signed-note verifier key whose key ID must match; only
//!   Ed25519 note keys (type 0x01) are accepted, as the spec says. A
//!   cosignature key (type 0x04) is refused: it cannot sign checkpoints.
//! - `ORIGIN` defaults to the vkey's key name. It may contain spaces, but no
//!   control characters (it is a checkpoint's first line).
//! - `QPD` (add-checkpoint requests a day) is ASCII decimal digits, no
//!   leading zero, in `[1, 2^31)`.
//! - `CONTACT` is free text for humans: non-empty, no control characters
//!   other than tab.
//! - Two logs with the same origin (given or defaulted) are an error: a
//!   witness keeps one key per origin.
//!
//! Every error names the line (1-based, counting every physical line) and
//! what is wrong. [`LogList::to_text`] writes a list [`LogList::parse`]
//! reads back to the same value, omitting `origin` where it equals the key
//! name.
//!
//! No I/O: callers read and write the files.

use std::collections::HashMap;

use crate::note::{KeyType, NoteError, VerifierKey};

/// The header line of the format.
pub const HEADER: &str = "logs/v0";

/// The largest allowed `qpd` (the spec's range is `[1, 2^31)`).
pub const MAX_QPD: u32 = (1 << 31) - 1;

/// A parsed `logs/v0` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogList {
    /// The logs, in the list's order.
    pub logs: Vec<ListedLog>,
}

/// One log of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedLog {
    /// The key the log signs checkpoints with (Ed25519 note key).
    pub vkey: VerifierKey,
    /// The log's checkpoint origin; the vkey's name unless the list says otherwise.
    pub origin: String,
    /// How many add-checkpoint requests a day the log may send, in `[1, 2^31)`.
    pub qpd: u32,
    /// How humans reach the log's operator.
    pub contact: String,
}

/// Why a list was refused: the line and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LogListError {
    /// 1-based line number: of the input for [`LogList::parse`]; of the
    /// entry's first line in the text it would write for [`LogList::to_text`].
    pub line: usize,
    /// What is wrong there.
    pub problem: Problem,
}

/// What is wrong with a list line or a log's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// No significant line at all.
    #[error("the list is empty: it must start with a `logs/v0` line")]
    Empty,
    /// The first significant line is not the header.
    #[error("expected the `logs/v0` header first, found {0:?}")]
    MissingHeader(String),
    /// The header appears again.
    #[error("a second `logs/v0` header")]
    SecondHeader,
    /// A keyword the format does not have.
    #[error(
        "unknown keyword {0:?} (a log is `vkey`, [`origin`], `qpd`, `contact`, in that order)"
    )]
    UnknownKeyword(String),
    /// A known keyword in the wrong place.
    #[error("expected {expected}, found `{found}` (a log is `vkey`, [`origin`], `qpd`, `contact`, in that order)")]
    OutOfOrder {
        /// The keyword found.
        found: &'static str,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A keyword without a value.
    #[error("`{0}` needs a value")]
    MissingValue(&'static str),
    /// A single-word value with more words after it.
    #[error("`{0}` takes one value, without spaces")]
    ExtraValue(&'static str),
    /// Not exactly one space between keyword and value.
    #[error("`{0}` and its value must be separated by exactly one space")]
    Separator(&'static str),
    /// The vkey does not parse.
    #[error("invalid vkey: {0}")]
    BadVkey(NoteError),
    /// The vkey is not an Ed25519 note key.
    #[error(
        "the vkey has key type 0x{:02x}, not an Ed25519 note key (type 0x01): a log signs \
         checkpoints with a note key, a witness's cosignature key cannot",
        .0.byte()
    )]
    NotALogKey(KeyType),
    /// The qpd is not a number in range.
    #[error("invalid qpd {value:?}: {why}")]
    BadQpd {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The origin cannot be a checkpoint's origin line.
    #[error("invalid origin {value:?}: {why}")]
    BadOrigin {
        /// The origin (its first 100 characters).
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The contact cannot be written on one line.
    #[error("invalid contact: {0}")]
    BadContact(&'static str),
    /// The list ends in the middle of a log.
    #[error("the log starting here has no `{0}` line before the end of the list")]
    Incomplete(&'static str),
    /// Two logs with one origin.
    #[error("origin {origin:?} is listed twice (first by the log at line {first})")]
    DuplicateOrigin {
        /// The origin.
        origin: String,
        /// Where the first log with it starts.
        first: usize,
    },
}

/// The keywords of a log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    Vkey,
    Origin,
    Qpd,
    Contact,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        match word {
            "vkey" => Some(Keyword::Vkey),
            "origin" => Some(Keyword::Origin),
            "qpd" => Some(Keyword::Qpd),
            "contact" => Some(Keyword::Contact),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Keyword::Vkey => "vkey",
            Keyword::Origin => "origin",
            Keyword::Qpd => "qpd",
            Keyword::Contact => "contact",
        }
    }

    /// Whether the value is one word (else the rest of the line).
    fn single_word(self) -> bool {
        matches!(self, Keyword::Vkey | Keyword::Qpd)
    }
}

/// A log whose `vkey` line has been read.
struct Partial {
    /// Where it starts (its vkey line).
    line: usize,
    vkey: VerifierKey,
    origin: Option<String>,
}

/// Where the parser is inside the list.
enum State {
    /// Between logs: a `vkey` line comes next.
    Between,
    /// After `vkey`: `origin` or `qpd` next.
    AfterVkey(Partial),
    /// After `origin`: `qpd` next.
    AfterOrigin(Partial),
    /// After `qpd`: `contact` next.
    AfterQpd(Partial, u32),
}

impl State {
    /// The keywords that may come next, in words, for errors.
    fn expected(&self) -> &'static str {
        match self {
            State::Between => "`vkey`",
            State::AfterVkey(_) => "`origin` or `qpd`",
            State::AfterOrigin(_) => "`qpd`",
            State::AfterQpd(..) => "`contact`",
        }
    }
}

impl LogList {
    /// Parses a `logs/v0` list under the policy in the module documentation.
    pub fn parse(text: &str) -> Result<LogList, LogListError> {
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            None => {
                return Err(LogListError {
                    line: 1,
                    problem: Problem::Empty,
                })
            }
            Some((_, HEADER)) => {}
            Some((line, other)) => {
                return Err(LogListError {
                    line,
                    problem: Problem::MissingHeader(truncate(other)),
                })
            }
        }
        let mut logs = Vec::new();
        let mut starts: HashMap<String, usize> = HashMap::new();
        let mut state = State::Between;
        for (line, text) in lines {
            let at = |problem| LogListError { line, problem };
            let (word, rest) = match text.find(char::is_whitespace) {
                Some(i) => (&text[..i], Some(&text[i..])),
                None => (text, None),
            };
            if word == HEADER {
                return Err(at(Problem::SecondHeader));
            }
            let keyword = Keyword::from_word(word)
                .ok_or_else(|| at(Problem::UnknownKeyword(truncate(word))))?;
            let read_value = || value(keyword, rest).map_err(at);
            state = match (state, keyword) {
                (State::Between, Keyword::Vkey) => State::AfterVkey(Partial {
                    line,
                    vkey: parse_vkey(read_value()?).map_err(at)?,
                    origin: None,
                }),
                (State::AfterVkey(mut p), Keyword::Origin) => {
                    let origin = read_value()?;
                    check_origin(origin).map_err(at)?;
                    p.origin = Some(origin.to_owned());
                    State::AfterOrigin(p)
                }
                (State::AfterVkey(p) | State::AfterOrigin(p), Keyword::Qpd) => {
                    State::AfterQpd(p, parse_qpd(read_value()?).map_err(at)?)
                }
                (State::AfterQpd(p, qpd), Keyword::Contact) => {
                    let contact = read_value()?;
                    check_contact(contact).map_err(at)?;
                    let origin = p.origin.unwrap_or_else(|| p.vkey.name().to_string());
                    if let Some(&first) = starts.get(&origin) {
                        return Err(LogListError {
                            line: p.line,
                            problem: Problem::DuplicateOrigin { origin, first },
                        });
                    }
                    starts.insert(origin.clone(), p.line);
                    logs.push(ListedLog {
                        vkey: p.vkey,
                        origin,
                        qpd,
                        contact: contact.to_owned(),
                    });
                    State::Between
                }
                (state, keyword) => {
                    return Err(at(Problem::OutOfOrder {
                        found: keyword.as_str(),
                        expected: state.expected(),
                    }))
                }
            };
        }
        let (start, missing) = match state {
            State::Between => return Ok(LogList { logs }),
            State::AfterVkey(p) | State::AfterOrigin(p) => (p.line, "qpd"),
            State::AfterQpd(p, _) => (p.line, "contact"),
        };
        Err(LogListError {
            line: start,
            problem: Problem::Incomplete(missing),
        })
    }

    /// The list as `logs/v0` text, one blank line between logs, which
    /// [`LogList::parse`] reads back to the same list. Refuses a list that
    /// would not read back (a field [`ListedLog::check`] refuses, two logs
    /// with one origin); the error's line is where that log would start.
    pub fn to_text(&self) -> Result<String, LogListError> {
        let mut out = format!("{HEADER}\n");
        let mut line = 1;
        let mut starts: HashMap<&str, usize> = HashMap::new();
        for log in &self.logs {
            line += 2; // The blank line, then the vkey line.
            let start = line;
            log.check().map_err(|problem| LogListError {
                line: start,
                problem,
            })?;
            if let Some(&first) = starts.get(log.origin.as_str()) {
                return Err(LogListError {
                    line: start,
                    problem: Problem::DuplicateOrigin {
                        origin: log.origin.clone(),
                        first,
                    },
                });
            }
            starts.insert(&log.origin, start);
            out.push_str(&format!("\nvkey {}\n", log.vkey));
            if log.origin != log.vkey.name().as_str() {
                out.push_str(&format!("origin {}\n", log.origin));
                line += 1;
            }
            out.push_str(&format!("qpd {}\ncontact {}\n", log.qpd, log.contact));
            line += 2;
        }
        Ok(out)
    }
}

impl ListedLog {
    /// Checks the fields as the parser would: an Ed25519 note key, an
    /// origin and a contact that fit on their line, `qpd` in `[1, 2^31)`.
    pub fn check(&self) -> Result<(), Problem> {
        check_key_type(&self.vkey)?;
        check_origin(&self.origin)?;
        check_qpd(self.qpd).map_err(|why| Problem::BadQpd {
            value: self.qpd.to_string(),
            why,
        })?;
        check_contact(&self.contact)
    }
}

/// A keyword's value from the rest of its line (`None`: the keyword alone).
fn value(keyword: Keyword, rest: Option<&str>) -> Result<&str, Problem> {
    let name = keyword.as_str();
    let rest = rest.ok_or(Problem::MissingValue(name))?;
    // The line is trimmed, so something follows the whitespace.
    let value = rest.strip_prefix(' ').ok_or(Problem::Separator(name))?;
    if value.starts_with(char::is_whitespace) {
        return Err(Problem::Separator(name));
    }
    if keyword.single_word() && value.contains(char::is_whitespace) {
        return Err(Problem::ExtraValue(name));
    }
    Ok(value)
}

fn parse_vkey(text: &str) -> Result<VerifierKey, Problem> {
    let key = VerifierKey::parse(text).map_err(Problem::BadVkey)?;
    check_key_type(&key)?;
    Ok(key)
}

fn check_key_type(key: &VerifierKey) -> Result<(), Problem> {
    match key.key_type() {
        KeyType::Ed25519 => Ok(()),
        other => Err(Problem::NotALogKey(other)),
    }
}

fn parse_qpd(text: &str) -> Result<u32, Problem> {
    let bad = |why| Problem::BadQpd {
        value: truncate(text),
        why,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("must be decimal digits 0-9 only"));
    }
    if text == "0" {
        return Err(bad("must be at least 1"));
    }
    if text.starts_with('0') {
        return Err(bad("must not have a leading zero"));
    }
    // Ten digits or fewer fit a u64; more are out of range anyway.
    let n: u64 = if text.len() > 10 {
        u64::MAX
    } else {
        text.parse()
            .map_err(|_| bad("must be decimal digits 0-9 only"))?
    };
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    check_qpd(n).map_err(bad)?;
    Ok(n)
}

fn check_qpd(qpd: u32) -> Result<(), &'static str> {
    match qpd {
        0 => Err("must be at least 1"),
        n if n > MAX_QPD => Err("must be below 2^31 (2147483648)"),
        _ => Ok(()),
    }
}

fn check_origin(origin: &str) -> Result<(), Problem> {
    let bad = |why| Problem::BadOrigin {
        value: truncate(origin),
        why,
    };
    if origin.is_empty() {
        return Err(bad("must not be empty"));
    }
    if origin.starts_with(char::is_whitespace) || origin.ends_with(char::is_whitespace) {
        return Err(bad("must not begin or end with whitespace"));
    }
    if origin.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    Ok(())
}

fn check_contact(contact: &str) -> Result<(), Problem> {
    if contact.is_empty() {
        return Err(Problem::BadContact("must not be empty"));
    }
    if contact.starts_with(char::is_whitespace) || contact.ends_with(char::is_whitespace) {
        return Err(Problem::BadContact("must not begin or end with whitespace"));
    }
    if contact.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Problem::BadContact(
            "must not contain control characters other than tab",
        ));
    }
    Ok(())
}

/// The first 100 characters, for error messages.
fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyName, SignerKey};

    fn key(name: &str, seed: u8) -> VerifierKey {
        SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
            .verifier()
            .clone()
    }

    fn error(text: &str) -> LogListError {
        LogList::parse(text).unwrap_err()
    }

    /// The real sigsum entry of transparency-dev/witness-network
    /// `lists/testing/log-list.1` (commit 995d5ce).
    const SIGSUM: &str = "vkey sigsum.org/v1/tree/4e89cc51651f0d95f3c6127c15e1a42e3ddf7046c5b17b752689c402e773bb4d+778629b1+AUZEryq9QPSJWgA7yjUPnVkSqzAaScd/E+W22QXCCl/m
qpd 8640
contact sigsum-logs (at) glasklarteknik.se | https://git.glasklar.is/glasklar/services/sigsum-logs/-/blob/main/instances/barreleye.md
";

    /// `lines` after the header.
    fn one(lines: &str) -> String {
        format!("logs/v0\n{lines}")
    }

    #[test]
    fn the_specs_example_with_valid_keys() {
        // log-list-format.md's example, verbatim except its placeholder
        // vkeys (`tlog.foo.org+aaaaaa+AAAA…`, not valid keys: six hex digits,
        // a zero key) are replaced by real keys under the same names.
        let foo = key("tlog.foo.org", 1);
        let bar = key("bar.org/tlog", 2);
        let text = format!(
            "#
# List:      10qps-100klogs
# Revision:  123
# Generated: YYYY-MM-DD HH:MM:SS UTC
# Other undefined debug information.
#
logs/v0

# 1st list item -- foo's log
vkey {foo}
qpd 86400
contact https://tlog.foo.org/contact

# 2nd list item -- bar's log
vkey {bar}
origin something-not-equal-to-vkey-keyname
qpd 24
contact sysadmin (at) bar.org
"
        );
        let list = LogList::parse(&text).unwrap();
        assert_eq!(
            list.logs,
            vec![
                ListedLog {
                    vkey: foo,
                    origin: "tlog.foo.org".into(),
                    qpd: 86400,
                    contact: "https://tlog.foo.org/contact".into(),
                },
                ListedLog {
                    vkey: bar,
                    origin: "something-not-equal-to-vkey-keyname".into(),
                    qpd: 24,
                    contact: "sysadmin (at) bar.org".into(),
                },
            ]
        );
        assert_eq!(LogList::parse(&list.to_text().unwrap()).unwrap(), list);
    }

    #[test]
    fn the_real_sigsum_entry() {
        let list = LogList::parse(&one(SIGSUM)).unwrap();
        let log = &list.logs[0];
        assert_eq!(
            log.origin,
            "sigsum.org/v1/tree/4e89cc51651f0d95f3c6127c15e1a42e3ddf7046c5b17b752689c402e773bb4d"
        );
        assert_eq!(log.vkey.name().as_str(), log.origin);
        assert_eq!(log.vkey.id().to_string(), "778629b1");
        assert_eq!(log.qpd, 8640);
        assert!(log
            .contact
            .starts_with("sigsum-logs (at) glasklarteknik.se | https://"));
        // Written back byte for byte (no origin line: it is the key name).
        assert_eq!(list.to_text().unwrap(), format!("logs/v0\n\n{SIGSUM}"));
    }

    #[test]
    fn whitespace_comments_crlf_and_empty_lists() {
        let text = format!(
            "  # leading comment\r\n\r\n\t logs/v0 \r\n{}",
            SIGSUM.replace('\n', "  \r\n").replace("qpd", "   qpd")
        );
        assert_eq!(
            LogList::parse(&text).unwrap(),
            LogList::parse(&one(SIGSUM)).unwrap()
        );
        // A `#` inside a line is text.
        let list = LogList::parse(&one(&SIGSUM.replace(".md", ".md#fragment"))).unwrap();
        assert!(list.logs[0].contact.ends_with(".md#fragment"));
        // A header and no logs: an empty list.
        assert_eq!(LogList::parse("logs/v0\n").unwrap(), LogList::default());
        assert_eq!(LogList::default().to_text().unwrap(), "logs/v0\n");
        // Origins and contacts may contain spaces.
        let k = key("log.example/a", 3);
        let list = LogList::parse(&one(&format!(
            "vkey {k}\norigin some legacy origin\nqpd 1\ncontact a  b\n"
        )))
        .unwrap();
        assert_eq!(list.logs[0].origin, "some legacy origin");
        assert_eq!(list.logs[0].contact, "a  b");
    }

    #[test]
    fn round_trip() {
        let list = LogList {
            logs: vec![
                ListedLog {
                    vkey: key("log.example/a", 1),
                    origin: "log.example/a".into(),
                    qpd: 1,
                    contact: "ops@a.example".into(),
                },
                ListedLog {
                    vkey: key("log.example/b", 2),
                    origin: "legacy origin b".into(),
                    qpd: MAX_QPD,
                    contact: "https://b.example/#contact\tdesk".into(),
                },
                ListedLog {
                    vkey: key("log.example/c", 3),
                    origin: "log.example/c".into(),
                    qpd: 86400,
                    contact: "c".into(),
                },
            ],
        };
        let text = list.to_text().unwrap();
        assert_eq!(LogList::parse(&text).unwrap(), list);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("origin ")).count(),
            1,
            "{text}"
        );
        // What the writer refuses, it refuses with the entry's line.
        let mut bad = list.clone();
        bad.logs[1].qpd = 0;
        assert_eq!(
            bad.to_text().unwrap_err(),
            LogListError {
                line: 7,
                problem: Problem::BadQpd {
                    value: "0".into(),
                    why: "must be at least 1"
                }
            }
        );
        let mut bad = list.clone();
        bad.logs[2].contact = "two\nlines".into();
        assert_eq!(bad.to_text().unwrap_err().line, 12);
        let mut bad = list.clone();
        bad.logs[2].origin = "log.example/a".into();
        assert_eq!(
            bad.to_text().unwrap_err(),
            LogListError {
                line: 12,
                problem: Problem::DuplicateOrigin {
                    origin: "log.example/a".into(),
                    first: 3
                }
            }
        );
    }

    #[test]
    fn missing_or_repeated_header() {
        assert_eq!(
            error(""),
            LogListError {
                line: 1,
                problem: Problem::Empty
            }
        );
        assert_eq!(error("# only a comment\n\n").problem, Problem::Empty);
        assert_eq!(
            error(&format!("# c\n{SIGSUM}")),
            LogListError {
                line: 2,
                problem: Problem::MissingHeader(SIGSUM.lines().next().unwrap()[..100].into())
            }
        );
        assert_eq!(
            error("logs/v1\n").problem,
            Problem::MissingHeader("logs/v1".into())
        );
        assert_eq!(
            error("LOGS/V0\n").problem,
            Problem::MissingHeader("LOGS/V0".into())
        );
        assert_eq!(
            error(&format!("logs/v0\n{SIGSUM}logs/v0\n")),
            LogListError {
                line: 5,
                problem: Problem::SecondHeader
            }
        );
    }

    #[test]
    fn lines_out_of_order() {
        let k = key("log.example/a", 1);
        let cases: [(String, usize, &str, &str); 6] = [
            (format!("qpd 1\nvkey {k}\n"), 2, "qpd", "`vkey`"),
            (
                format!("vkey {k}\ncontact c\nqpd 1\n"),
                3,
                "contact",
                "`origin` or `qpd`",
            ),
            (
                format!("vkey {k}\nqpd 1\norigin o\ncontact c\n"),
                4,
                "origin",
                "`contact`",
            ),
            (
                format!("vkey {k}\norigin o\norigin p\n"),
                4,
                "origin",
                "`qpd`",
            ),
            (
                format!("vkey {k}\nvkey {k}\n"),
                3,
                "vkey",
                "`origin` or `qpd`",
            ),
            // A missing contact shows when the next log starts.
            (
                format!("vkey {k}\nqpd 1\nvkey {k}\n"),
                4,
                "vkey",
                "`contact`",
            ),
        ];
        for (lines, line, found, expected) in cases {
            assert_eq!(
                error(&one(&lines)),
                LogListError {
                    line,
                    problem: Problem::OutOfOrder { found, expected }
                },
                "{lines}"
            );
        }
    }

    #[test]
    fn missing_qpd_or_contact_at_the_end() {
        let k = key("log.example/a", 1);
        assert_eq!(
            error(&one(&format!("vkey {k}\nqpd 1\n"))),
            LogListError {
                line: 2,
                problem: Problem::Incomplete("contact")
            }
        );
        assert_eq!(
            error(&one(&format!("{SIGSUM}\n\nvkey {k}\norigin o\n"))),
            LogListError {
                line: 7,
                problem: Problem::Incomplete("qpd")
            }
        );
        let msg = error(&one(&format!("vkey {k}\nqpd 1\n"))).to_string();
        assert_eq!(
            msg,
            "line 2: the log starting here has no `contact` line before the end of the list"
        );
    }

    #[test]
    fn bad_qpd_values() {
        let k = key("log.example/a", 1);
        let cases = [
            ("0", "must be at least 1"),
            ("00", "must not have a leading zero"),
            ("0100", "must not have a leading zero"),
            ("2147483648", "must be below 2^31 (2147483648)"),
            ("4294967296", "must be below 2^31 (2147483648)"),
            ("99999999999999999999999", "must be below 2^31 (2147483648)"),
            ("-1", "must be decimal digits 0-9 only"),
            ("+1", "must be decimal digits 0-9 only"),
            ("1.5", "must be decimal digits 0-9 only"),
            ("1e3", "must be decimal digits 0-9 only"),
            ("ten", "must be decimal digits 0-9 only"),
            ("١٢", "must be decimal digits 0-9 only"),
        ];
        for (qpd, why) in cases {
            assert_eq!(
                error(&one(&format!("vkey {k}\nqpd {qpd}\ncontact c\n"))),
                LogListError {
                    line: 3,
                    problem: Problem::BadQpd {
                        value: qpd.into(),
                        why
                    }
                },
                "{qpd}"
            );
        }
        let ok = |qpd: &str| LogList::parse(&one(&format!("vkey {k}\nqpd {qpd}\ncontact c\n")));
        assert_eq!(ok("2147483647").unwrap().logs[0].qpd, MAX_QPD);
        assert_eq!(ok("1").unwrap().logs[0].qpd, 1);
        assert_eq!(ok("1 2").unwrap_err().problem, Problem::ExtraValue("qpd"));
    }

    #[test]
    fn missing_values_and_separators() {
        let k = key("log.example/a", 1);
        let cases: [(String, usize, Problem); 6] = [
            ("vkey\n".into(), 2, Problem::MissingValue("vkey")),
            (
                format!("vkey {k}\norigin\n"),
                3,
                Problem::MissingValue("origin"),
            ),
            (format!("vkey {k}\nqpd\n"), 3, Problem::MissingValue("qpd")),
            (
                format!("vkey {k}\nqpd 1\ncontact   \n"),
                4,
                Problem::MissingValue("contact"),
            ),
            (format!("vkey  {k}\n"), 2, Problem::Separator("vkey")),
            (format!("vkey {k}\nqpd\t1\n"), 3, Problem::Separator("qpd")),
        ];
        for (lines, line, problem) in cases {
            assert_eq!(
                error(&one(&lines)),
                LogListError { line, problem },
                "{lines}"
            );
        }
        assert_eq!(
            error(&one(&format!("vkey {k} extra\n"))).problem,
            Problem::ExtraValue("vkey")
        );
    }

    #[test]
    fn bad_vkeys() {
        let k = key("log.example/a", 1).to_string();
        let id = key("log.example/a", 1).id().to_string();
        let other_id = if id == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        let wrong_id = k.replacen(&id, other_id, 1);
        let placeholder = "tlog.foo.org+aaaaaa+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for (vkey, note_error) in [
            ("not-a-key", NoteError::BadKey("missing key ID")),
            (
                placeholder,
                NoteError::BadKey("key ID must be 8 lower-case hex digits"),
            ),
            (
                wrong_id.as_str(),
                NoteError::BadKey("key ID does not match name and key"),
            ),
        ] {
            assert_eq!(
                error(&one(&format!("vkey {vkey}\nqpd 1\ncontact c\n"))),
                LogListError {
                    line: 2,
                    problem: Problem::BadVkey(note_error)
                },
                "{vkey}"
            );
        }
        // A witness's cosignature key (type 0x04) is a valid key, not a log's.
        let witness = SignerKey::from_seed(
            KeyName::new("witness.example/w1").unwrap(),
            KeyType::CosignatureV1,
            [5; 32],
        );
        let err = error(&one(&format!(
            "vkey {}\nqpd 1\ncontact c\n",
            witness.verifier()
        )));
        assert_eq!(
            err,
            LogListError {
                line: 2,
                problem: Problem::NotALogKey(KeyType::CosignatureV1)
            }
        );
        assert!(err.to_string().contains("type 0x04"), "{err}");
        // The signed-note spec's example key parses.
        let spec_key = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let list = LogList::parse(&one(&format!("vkey {spec_key}\nqpd 1\ncontact c\n"))).unwrap();
        assert_eq!(list.logs[0].origin, "example.com/foo");
    }

    #[test]
    fn duplicate_origins() {
        let a = key("log.example/a", 1);
        let b = key("log.example/b", 2);
        // b claims a's origin explicitly.
        let text = one(&format!(
            "vkey {a}\nqpd 1\ncontact c\n\nvkey {b}\norigin log.example/a\nqpd 1\ncontact c\n"
        ));
        assert_eq!(
            error(&text),
            LogListError {
                line: 6,
                problem: Problem::DuplicateOrigin {
                    origin: "log.example/a".into(),
                    first: 2
                }
            }
        );
        // The same log twice is refused too.
        let twice = one(&format!(
            "vkey {a}\nqpd 1\ncontact c\nvkey {a}\nqpd 2\ncontact d\n"
        ));
        assert_eq!(error(&twice).line, 5);
    }

    #[test]
    fn unknown_keywords_and_bad_fields() {
        let k = key("log.example/a", 1);
        let err = error(&one(&format!(
            "vkey {k}\nqpd 1\nurl https://x\ncontact c\n"
        )));
        assert_eq!(
            err,
            LogListError {
                line: 4,
                problem: Problem::UnknownKeyword("url".into())
            }
        );
        assert!(
            err.to_string()
                .starts_with("line 4: unknown keyword \"url\""),
            "{err}"
        );
        // Keywords are lower case.
        assert_eq!(
            error(&one(&format!("VKEY {k}\n"))).problem,
            Problem::UnknownKeyword("VKEY".into())
        );
        // An origin or contact with a control character cannot be a checkpoint
        // line or reach a human intact.
        assert_eq!(
            error(&one(&format!(
                "vkey {k}\norigin a\u{7}b\nqpd 1\ncontact c\n"
            )))
            .problem,
            Problem::BadOrigin {
                value: "a\u{7}b".into(),
                why: "must not contain control characters"
            }
        );
        assert_eq!(
            error(&one(&format!("vkey {k}\nqpd 1\ncontact a\u{1b}b\n"))).problem,
            Problem::BadContact("must not contain control characters other than tab")
        );
    }
}
