//! Atom feeds (RFC 4287) of the entry lists: `/entries.atom` takes the
//! list's filters and gives its newest [`FEED_LIMIT`] entries, so a reader
//! can subscribe to any list (one agency, one jurisdiction, overdue
//! disclosures...).
//!
//! Written by hand rather than with an XML library: the document is small
//! and fixed, and every piece of record text goes through [`xml_text`],
//! which escapes markup and drops what XML 1.0 cannot carry at all.

use chrono::{DateTime, Utc};
use daylight_schemas::Kind;

use crate::filter::Filter;
use crate::index::Summary;
use crate::labels;

/// The most entries a feed holds (the newest matches).
pub const FEED_LIMIT: usize = 100;

/// The media type feeds are served as.
pub const CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";

/// `s` as XML character data or an attribute value: `&`, `<`, `>`, `"`
/// and `'` escaped, and characters XML 1.0 forbids (controls other than
/// tab and line breaks, U+FFFE, U+FFFF) replaced by U+FFFD, so hostile
/// record text can neither add markup nor make the document unreadable.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether `host` is a DNS name a tag URI may use as its authority.
fn dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Percent-encodes what a tag URI's specific part may not hold.
fn tag_specific(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b':'
            | b'@'
            | b'!'
            | b'$'
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'=' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A name-based `urn:uuid:` (RFC 9562 version 8, from SHA-256) for `parts`:
/// the same parts give the same URN on every server and every run.
fn uuid_urn(parts: &[&str]) -> String {
    let joined = parts.join("\n");
    let h = daylight_core::leaf_hash(joined.as_bytes()).0;
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The permanent Atom id of entry `s` of the log `origin`: a tag URI
/// (RFC 4151) under the origin's host, dated the day the entry was made,
/// naming its index and leaf hash, such as
/// `tag:log.example,2026-12-04:e2e/entry/12/3f...`; for an origin whose
/// host is no DNS name, or an unreadable entry, a name-based `urn:uuid:`
/// of the same facts. Another server of the same log gives the same id.
pub fn entry_id(origin: &str, s: &Summary) -> String {
    let (host, path) = origin.split_once('/').unwrap_or((origin, ""));
    match s.created {
        Some(c) if dns_name(host) => {
            let path = if path.is_empty() {
                String::new()
            } else {
                format!("{}/", tag_specific(path))
            };
            format!(
                "tag:{},{}:{path}entry/{}/{}",
                host.to_ascii_lowercase(),
                c.format("%Y-%m-%d"),
                s.index,
                s.leaf_hash_hex()
            )
        }
        _ => uuid_urn(&[
            "daylight entry",
            origin,
            &s.index.to_string(),
            &s.leaf_hash_hex(),
        ]),
    }
}

/// The permanent Atom id of the feed of `filter` on the log `origin`.
pub fn feed_id(origin: &str, filter: &Filter) -> String {
    uuid_urn(&["daylight feed", origin, &filter.query(None)])
}

/// One line naming what the entry is.
fn entry_title(s: &Summary) -> String {
    let kind = labels::entry_kind(s).unwrap_or("Unreadable entry");
    let mut t = format!("#{} {kind}", s.index);
    if !s.signer.is_empty() {
        t.push_str(&format!(" by {}", s.signer));
    }
    if s.is_authorisation() {
        if let Some(j) = &s.jurisdiction {
            t.push_str(&format!(" ({j})"));
        }
    }
    if !s.references.is_empty() {
        let refs: Vec<String> = s.references.iter().map(|r| format!("#{r}")).collect();
        t.push_str(&format!(", about {}", refs.join(", ")));
    }
    t
}

/// The entry's public fields, as plain text.
fn entry_summary(s: &Summary, now: DateTime<Utc>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(k) = labels::entry_explained(s) {
        parts.push(k.to_owned());
    } else {
        parts.push("This entry's bytes are not a readable record.".to_owned());
    }
    if let Some(j) = &s.jurisdiction {
        parts.push(format!("Jurisdiction: {j}."));
    }
    if let Some(l) = &s.legal_basis {
        parts.push(format!("Legal basis: {l}."));
    }
    if let Some(p) = &s.provider {
        parts.push(format!("Provider: {p}."));
    }
    if !s.categories.is_empty() {
        let c: Vec<&str> = s.categories.iter().map(|c| labels::category(c)).collect();
        parts.push(format!("Data asked for: {}.", c.join("; ")));
    }
    if let Some(t) = s.sealed_in_force.or(s.sealed_until) {
        parts.push(format!("Sealed until {}.", t.format("%Y-%m-%d")));
    }
    if let Some(t) = s.ratify_by {
        parts.push(format!("A court must ratify it by {}.", rfc3339(t)));
    }
    if let Some(d) = s.decision {
        parts.push(format!("Decision: {}.", d.as_str()));
    }
    if let Some(o) = s.outcome {
        let yn = |x: bool| if x { "yes" } else { "no" };
        parts.push(format!(
            "Data obtained: {}. Encryption encountered: {}. Encryption prevented access: {}.",
            yn(o.data_obtained),
            yn(o.encryption_encountered),
            yn(o.encryption_prevented_access)
        ));
        if !o.latest {
            parts.push("A later outcome report on the same authorisation replaces it.".into());
        }
    }
    if let Some(r) = s.reason {
        parts.push(format!(
            "Refused: {} ({}).",
            labels::refusal_reason(r),
            r.as_str()
        ));
    }
    if let Some(a) = &s.request_agency {
        parts.push(format!("Agency that asked: {a}."));
    }
    if !s.policy.is_empty() {
        parts.push(format!("Standards: {}.", s.policy.join("; ")));
    }
    let statuses: Vec<&str> = s.statuses(now).iter().map(|x| x.label()).collect();
    if !statuses.is_empty() {
        parts.push(format!("Status: {}.", statuses.join(", ")));
    }
    parts.push(format!("Leaf hash {}.", s.leaf_hash_hex()));
    parts.join(" ")
}

/// What a feed is of, besides its entries.
pub struct FeedMeta<'a> {
    /// The log's origin.
    pub origin: &'a str,
    /// The list's filters.
    pub filter: &'a Filter,
    /// `scheme://host` the feed was asked for at, for absolute links.
    pub base: &'a str,
    /// When statuses are shown for, and the feed's time when it is empty.
    pub now: DateTime<Utc>,
}

/// The feed's title: the log and the list's filters in words.
fn feed_title(meta: &FeedMeta<'_>) -> String {
    let pairs = meta.filter.pairs();
    if pairs.is_empty() {
        return format!("Daylight {}: all entries", meta.origin);
    }
    let words: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| *k != "per_page")
        .map(|(k, v)| format!("{} {v}", labels::words(k)))
        .collect();
    format!("Daylight {}: entries, {}", meta.origin, words.join(", "))
}

/// The Atom document for `entries` (newest first, at most [`FEED_LIMIT`]).
pub fn atom(meta: &FeedMeta<'_>, entries: &[Summary]) -> String {
    let q = meta.filter.query(None);
    let base = meta.base.trim_end_matches('/');
    // The feed changed when its newest entry was made.
    let updated = entries
        .iter()
        .filter_map(|s| s.created)
        .max()
        .unwrap_or(meta.now);
    let mut out = String::with_capacity(1024 + entries.len() * 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    let el = |out: &mut String, name: &str, text: &str| {
        out.push_str(&format!("  <{name}>{}</{name}>\n", xml_text(text)));
    };
    el(&mut out, "id", &feed_id(meta.origin, meta.filter));
    el(&mut out, "title", &feed_title(meta));
    el(
        &mut out,
        "subtitle",
        &format!(
            "The newest {FEED_LIMIT} matching entries of the transparency log {}, newest first.",
            meta.origin
        ),
    );
    el(&mut out, "updated", &rfc3339(updated));
    out.push_str(&format!(
        "  <author><name>{}</name></author>\n",
        xml_text(meta.origin)
    ));
    out.push_str(&format!(
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
        xml_text(&format!("{base}/entries.atom{q}"))
    ));
    out.push_str(&format!(
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        xml_text(&format!("{base}/entries{q}"))
    ));
    out.push_str("  <generator>Daylight</generator>\n");
    for s in entries.iter().take(FEED_LIMIT) {
        out.push_str("  <entry>\n");
        out.push_str(&format!(
            "    <id>{}</id>\n",
            xml_text(&entry_id(meta.origin, s))
        ));
        out.push_str(&format!(
            "    <title>{}</title>\n",
            xml_text(&entry_title(s))
        ));
        let t = rfc3339(s.created.unwrap_or(updated));
        out.push_str(&format!("    <updated>{t}</updated>\n"));
        out.push_str(&format!("    <published>{t}</published>\n"));
        let author = if s.signer.is_empty() {
            meta.origin
        } else {
            &s.signer
        };
        out.push_str(&format!(
            "    <author><name>{}</name></author>\n",
            xml_text(author)
        ));
        out.push_str(&format!(
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            xml_text(&format!("{base}/entries/{}", s.index))
        ));
        if let Some(k) = s.kind {
            out.push_str(&format!(
                "    <category term=\"{}\" label=\"{}\"/>\n",
                k.as_str(),
                xml_text(labels::kind(k))
            ));
        }
        out.push_str(&format!(
            "    <summary type=\"text\">{}</summary>\n",
            xml_text(&entry_summary(s, meta.now))
        ));
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

/// The kinds whose signer is an agency, whose page is `/agencies/NAME`.
pub fn signed_by_agency(kind: Option<Kind>) -> bool {
    matches!(
        kind,
        Some(Kind::Request | Kind::Emergency | Kind::Withdrawal | Kind::Outcome)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_add_markup_or_break_the_document() {
        assert_eq!(
            xml_text("<a href='x'>\"&\"</a>]]>"),
            "&lt;a href=&apos;x&apos;&gt;&quot;&amp;&quot;&lt;/a&gt;]]&gt;"
        );
        assert_eq!(
            xml_text("a\u{0}b\u{1b}c\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(xml_text("tab\tnew\nline"), "tab\tnew\nline");
    }

    #[test]
    fn ids_are_tags_under_the_origin_or_stable_urns() {
        let mut s = Summary::of(12, b"x");
        s.leaf_hash = daylight_core::Hash([0xab; 32]);
        s.created = DateTime::from_timestamp(1_700_000_000, 0);
        assert_eq!(
            entry_id("log.example/e2e", &s),
            format!(
                "tag:log.example,2023-11-14:e2e/entry/12/{}",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            entry_id("log.example", &s),
            format!("tag:log.example,2023-11-14:entry/12/{}", "ab".repeat(32))
        );
        let odd = entry_id("not a host/x", &s);
        assert!(odd.starts_with("urn:uuid:"), "{odd}");
        assert_eq!(odd, entry_id("not a host/x", &s));
        assert_ne!(odd, entry_id("not a host/y", &s));
        assert_eq!(odd.len(), "urn:uuid:".len() + 36);
    }
}
