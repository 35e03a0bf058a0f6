//! C2SP tlog-mirror wire formats, both sides: the `add-entries` request body
//! (header, then entry packages aligned to 256 entries, each with the
//! subtree consistency proof of its package subtree) and the
//! `text/x.tlog.mirror-info` body of `409` and `202` answers. Pure byte
//! handling: no I/O, no state; the mirror decides what the header's values
//! mean for its log (404, 409, 422) with its own state.
//!
//! Request body, as the spec lists it (all integers big-endian):
//!
//! ```text
//! u16 origin length, origin
//! u64 upload_start
//! u64 upload_end
//! u16 ticket length, ticket
//! packages, for each [start, end) of the canonical sequence:
//!     for each entry in [start, end): u16 length, entry
//!     u8 num_hashes (<= 63)
//!     num_hashes * 32 bytes: SUBTREE_PROOF([rounded_start + 256 i, end), upload_end)
//! ```
//!
//! # Decoding: a push parser, and a reader over it
//!
//! The body is unbounded ("the client and mirror SHOULD stream it"), a
//! package can reach 16 MiB, and a mirror must answer header errors before
//! the body is in. So the decoder is [`AddEntriesParser`], a push parser:
//! the server feeds it the bytes as they arrive ([`AddEntriesParser::push`])
//! and takes out the header, then one [`EntryPackage`] at a time
//! ([`AddEntriesParser::next_event`]). It holds at most the package being
//! received plus what was pushed beyond it, works the same under an async
//! body stream (where a blocking `Read` would need a thread per upload) and
//! a blocking one, and keeps core free of I/O. At the end of the body,
//! [`AddEntriesParser::finish`] says whether the canonical sequence was
//! complete or where it stopped, which is what decides between 200, 202 and
//! 400. [`PackageReader`] wraps it for callers that have an
//! [`std::io::Read`] (tests, blocking servers, files).
//!
//! Checks the parser makes as soon as the bytes are there: a non-empty UTF-8
//! origin, `upload_start <= upload_end`, every entry length within the
//! configured maximum, and at most 63 hashes. It does not verify proofs:
//! [`EntryPackage::verify`] does, given the entries the mirror already holds
//! before an unaligned start and the root of the checkpoint at `upload_end`.

use std::io::Read;
use std::ops::Range;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::hash::{leaf_hash, Hash, HASH_SIZE};
use crate::subtree::{
    hash_of_leaves, subtree_consistency_proof, verify_subtree_consistency, Subtree, SubtreeError,
    SubtreeProofError,
};
use crate::tree::HashReader;
use crate::types::{LeafIndex, TreeSize};

/// The path a mirror serves add-entries on, below its submission prefix.
pub const ADD_ENTRIES_PATH: &str = "/add-entries";

/// The Content-Type of an add-entries request body.
pub const ADD_ENTRIES_CONTENT_TYPE: &str = "application/octet-stream";

/// The Content-Type of a `409 Conflict` or `202 Accepted` add-entries answer.
pub const MIRROR_INFO_CONTENT_TYPE: &str = "text/x.tlog.mirror-info";

/// Packages are aligned to multiples of this many entries (one entry bundle).
pub const PACKAGE_ENTRIES: u64 = 256;

/// The most proof hashes a package may carry (the spec's limit).
pub const MAX_PACKAGE_HASHES: usize = 63;

/// The longest entry the u16 length prefix can frame.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// The most bytes one package can take on the wire: 256 entries of the
/// longest length, the count byte and 63 hashes. A parser never buffers
/// more than this plus what it was pushed beyond the package.
pub const MAX_PACKAGE_BYTES: usize =
    PACKAGE_ENTRIES as usize * (2 + MAX_ENTRY_LEN) + 1 + MAX_PACKAGE_HASHES * HASH_SIZE;

/// How many packages a client should send per request (spec, Implementation
/// Considerations): more are sent as further requests after a `202`.
pub const MAX_PACKAGES_PER_REQUEST: u64 = 32;

/// How many already-stored entries a mirror accepts again at the start of
/// an upload (`min(upload_end, next_entry) - upload_start`) before it
/// answers `409`. The spec leaves the number open; Sunlight and Tessera
/// both use 2048 (eight packages).
pub const MAX_EXCESS_ENTRIES: u64 = 2048;

/// Why an add-entries body could not be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum MirrorProtocolError {
    /// The body ended inside the header.
    #[error("the body ended inside the header after {received} bytes")]
    TruncatedHeader {
        /// Bytes of header received.
        received: usize,
    },
    /// The origin is empty.
    #[error("the log origin is empty")]
    EmptyOrigin,
    /// The origin is not UTF-8 (no checkpoint origin line can match it).
    #[error("the log origin is not UTF-8")]
    OriginNotUtf8,
    /// The origin does not fit its u16 length prefix.
    #[error("the log origin is {len} bytes, more than {MAX_ENTRY_LEN}")]
    OriginTooLong {
        /// Its length.
        len: usize,
    },
    /// The ticket does not fit its u16 length prefix.
    #[error("the ticket is {len} bytes, more than {MAX_ENTRY_LEN}")]
    TicketTooLong {
        /// Its length.
        len: usize,
    },
    /// `upload_start` is after `upload_end`.
    #[error("upload_start {start} is after upload_end {end}")]
    StartAfterEnd {
        /// upload_start.
        start: u64,
        /// upload_end.
        end: u64,
    },
    /// An entry is longer than the wire allows, or than this mirror accepts.
    #[error("entry {index} is {len} bytes, more than the {max} allowed")]
    EntryTooLong {
        /// The entry's index in the log.
        index: u64,
        /// Its length.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A package carries more proof hashes than the spec allows.
    #[error(
        "package [{subtree_start}, {end}) has {count} proof hashes, more than {MAX_PACKAGE_HASHES}"
    )]
    TooManyHashes {
        /// The first entry of the package's subtree.
        subtree_start: u64,
        /// One past its last entry.
        end: u64,
        /// The count given.
        count: usize,
    },
    /// The encoder was given a different number of entries than the
    /// package's range holds (packages are aligned to 256, not to the
    /// client's batches).
    #[error("package [{start}, {end}) holds {expected} entries, {got} given")]
    WrongEntryCount {
        /// The package's first entry.
        start: u64,
        /// One past its last entry.
        end: u64,
        /// Entries in the range.
        expected: usize,
        /// Entries given.
        got: usize,
    },
    /// The encoder was given a package after the canonical sequence ended.
    #[error("the canonical sequence up to {end} is complete")]
    NoMorePackages {
        /// upload_end.
        end: u64,
    },
}

/// Why a package's entries are not the log's: its proof was refused
/// (answer `422`), or the mirror gave the wrong entries before its start.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PackageVerifyError {
    /// The leaf hashes given for `[subtree_start, start)` are not that many.
    #[error(
        "package subtree starts {expected} entries before the upload, {got} leaf hashes given"
    )]
    WrongPrefix {
        /// `start - subtree_start`.
        expected: usize,
        /// Leaf hashes given.
        got: usize,
    },
    /// The subtree consistency proof does not verify.
    #[error("package [{start}, {end}): {source}")]
    Proof {
        /// The package's first entry.
        start: u64,
        /// One past its last entry.
        end: u64,
        /// Which check refused.
        source: SubtreeProofError,
    },
}

/// Why a [`PackageReader`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum PackageReadError {
    /// Reading the body failed.
    #[error("reading the add-entries body: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not an add-entries body.
    #[error(transparent)]
    Protocol(#[from] MirrorProtocolError),
}

/// Why a mirror-info body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum MirrorInfoError {
    /// Not exactly three lines, each ending in a newline.
    #[error("a mirror-info body is three lines, each ending in a newline")]
    NotThreeLines,
    /// The first line is not a decimal number.
    #[error("pending size {0:?} is not a decimal number")]
    BadPendingSize(String),
    /// The second line is not a decimal number.
    #[error("next entry {0:?} is not a decimal number")]
    BadNextEntry(String),
    /// The third line is not standard base64.
    #[error("the ticket is not standard base64")]
    BadTicket,
    /// The ticket cannot be sent back: it does not fit add-entries' u16.
    #[error("the ticket is {len} bytes, more than an add-entries request can carry")]
    TicketTooLong {
        /// Its decoded length.
        len: usize,
    },
}

/// The add-entries header: which log, which entries, against which size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddEntriesHeader {
    /// The log's origin line.
    pub origin: String,
    /// The first entry uploaded.
    pub upload_start: LeafIndex,
    /// The size of the pending checkpoint every proof is against; entries
    /// are uploaded up to it.
    pub upload_end: TreeSize,
    /// The opaque value the mirror gave in its last mirror-info, or empty.
    pub ticket: Vec<u8>,
}

impl AddEntriesHeader {
    /// The packages of the canonical sequence for this upload.
    pub fn packages(&self) -> PackageRanges {
        package_ranges(self.upload_start, self.upload_end)
    }

    /// Appends the header's bytes to `out`; nothing is written on error.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), MirrorProtocolError> {
        if self.origin.is_empty() {
            return Err(MirrorProtocolError::EmptyOrigin);
        }
        let origin_len =
            u16::try_from(self.origin.len()).map_err(|_| MirrorProtocolError::OriginTooLong {
                len: self.origin.len(),
            })?;
        let ticket_len =
            u16::try_from(self.ticket.len()).map_err(|_| MirrorProtocolError::TicketTooLong {
                len: self.ticket.len(),
            })?;
        if self.upload_start.get() > self.upload_end.get() {
            return Err(MirrorProtocolError::StartAfterEnd {
                start: self.upload_start.get(),
                end: self.upload_end.get(),
            });
        }
        out.reserve(20 + self.origin.len() + self.ticket.len());
        out.extend_from_slice(&origin_len.to_be_bytes());
        out.extend_from_slice(self.origin.as_bytes());
        out.extend_from_slice(&self.upload_start.get().to_be_bytes());
        out.extend_from_slice(&self.upload_end.get().to_be_bytes());
        out.extend_from_slice(&ticket_len.to_be_bytes());
        out.extend_from_slice(&self.ticket);
        Ok(())
    }
}

/// One package of the canonical sequence: entries `[start, end)` are on the
/// wire, and its proof is for the subtree `[subtree_start, end)`, which
/// starts at the 256-aligned boundary (before `start` for an unaligned
/// first package; the mirror supplies those entries from its own storage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackageRange {
    /// The 256-aligned first entry of the package's subtree.
    pub subtree_start: LeafIndex,
    /// The first entry on the wire.
    pub start: LeafIndex,
    /// One past the last entry.
    pub end: TreeSize,
}

impl PackageRange {
    /// How many entries are on the wire (at most 256).
    pub fn entry_count(&self) -> usize {
        // end - start <= 256 by construction.
        (self.end.get() - self.start.get()) as usize
    }

    /// How many entries of the subtree come before the upload: the ones
    /// the mirror must already hold.
    pub fn prefix_len(&self) -> usize {
        (self.start.get() - self.subtree_start.get()) as usize
    }

    /// The subtree the package's proof is for.
    pub fn subtree(&self) -> Subtree {
        // [256 k, end) with end - 256 k <= 256 is always a valid subtree.
        Subtree::from_valid(self.subtree_start.get(), self.end.get())
    }
}

/// The canonical package sequence of an upload, in order.
#[derive(Clone, Debug)]
pub struct PackageRanges {
    next: u64,
    upload_start: u64,
    upload_end: u64,
}

impl Iterator for PackageRanges {
    type Item = PackageRange;

    fn next(&mut self) -> Option<PackageRange> {
        if self.next >= self.upload_end {
            return None;
        }
        let subtree_start = self.next;
        // Saturating: a boundary past u64::MAX only happens for the last
        // package of a tree that large, which then ends at upload_end.
        let boundary = subtree_start.saturating_add(PACKAGE_ENTRIES);
        self.next = boundary;
        Some(PackageRange {
            subtree_start: LeafIndex(subtree_start),
            start: LeafIndex(self.upload_start.max(subtree_start)),
            end: TreeSize(self.upload_end.min(boundary)),
        })
    }
}

/// The canonical sequence for `[upload_start, upload_end)`: empty when
/// `upload_start >= upload_end`.
pub fn package_ranges(upload_start: LeafIndex, upload_end: TreeSize) -> PackageRanges {
    let (start, end) = (upload_start.get(), upload_end.get());
    PackageRanges {
        next: if start < end {
            start - start % PACKAGE_ENTRIES
        } else {
            end
        },
        upload_start: start,
        upload_end: end,
    }
}

/// The proof a package carries: its subtree's consistency proof against the
/// tree of `upload_end` leaves, from the log's stored hashes.
pub fn package_proof(
    range: PackageRange,
    upload_end: TreeSize,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, SubtreeError> {
    subtree_consistency_proof(range.subtree(), upload_end, reader)
}

/// Appends one package (entries, hash count, hashes) to `out`, checking
/// that it fits `range`; nothing is written on error.
pub fn encode_package<E: AsRef<[u8]>>(
    range: PackageRange,
    entries: &[E],
    proof: &[Hash],
    out: &mut Vec<u8>,
) -> Result<(), MirrorProtocolError> {
    if entries.len() != range.entry_count() {
        return Err(MirrorProtocolError::WrongEntryCount {
            start: range.start.get(),
            end: range.end.get(),
            expected: range.entry_count(),
            got: entries.len(),
        });
    }
    if proof.len() > MAX_PACKAGE_HASHES {
        return Err(MirrorProtocolError::TooManyHashes {
            subtree_start: range.subtree_start.get(),
            end: range.end.get(),
            count: proof.len(),
        });
    }
    let mut bytes = 1 + proof.len() * HASH_SIZE;
    for (i, entry) in entries.iter().enumerate() {
        let len = entry.as_ref().len();
        if len > MAX_ENTRY_LEN {
            return Err(MirrorProtocolError::EntryTooLong {
                index: range.start.get() + i as u64,
                len,
                max: MAX_ENTRY_LEN,
            });
        }
        bytes += 2 + len;
    }
    out.reserve(bytes);
    for entry in entries {
        let entry = entry.as_ref();
        // Checked above: every length fits a u16.
        out.extend_from_slice(&(entry.len() as u16).to_be_bytes());
        out.extend_from_slice(entry);
    }
    // Checked above: at most 63.
    out.push(proof.len() as u8);
    for hash in proof {
        out.extend_from_slice(hash.as_bytes());
    }
    Ok(())
}

/// Writes an add-entries body package by package, so the pushing log can
/// send each one as soon as it is built, and refuses anything that is not
/// the next package of the canonical sequence.
#[derive(Clone, Debug)]
pub struct AddEntriesEncoder {
    ranges: PackageRanges,
    next: Option<PackageRange>,
    upload_end: TreeSize,
}

impl AddEntriesEncoder {
    /// Appends `header` to `out` and starts its canonical sequence.
    pub fn new(
        header: &AddEntriesHeader,
        out: &mut Vec<u8>,
    ) -> Result<AddEntriesEncoder, MirrorProtocolError> {
        header.encode(out)?;
        let mut ranges = header.packages();
        let next = ranges.next();
        Ok(AddEntriesEncoder {
            ranges,
            next,
            upload_end: header.upload_end,
        })
    }

    /// The package to push next, or `None` once the sequence is complete.
    pub fn next_package(&self) -> Option<PackageRange> {
        self.next
    }

    /// Appends the next package to `out` and returns its range.
    pub fn push_package<E: AsRef<[u8]>>(
        &mut self,
        entries: &[E],
        proof: &[Hash],
        out: &mut Vec<u8>,
    ) -> Result<PackageRange, MirrorProtocolError> {
        let range = self.next.ok_or(MirrorProtocolError::NoMorePackages {
            end: self.upload_end.get(),
        })?;
        encode_package(range, entries, proof, out)?;
        self.next = self.ranges.next();
        Ok(range)
    }

    /// Whether every package of the canonical sequence was pushed.
    pub fn is_complete(&self) -> bool {
        self.next.is_none()
    }
}

/// One decoded package: its range, its entries and its proof hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPackage {
    range: PackageRange,
    /// The entries as on the wire (u16-prefixed): tlog-tiles' entry-bundle
    /// encoding, kept whole so an aligned package can be stored as is.
    data: Vec<u8>,
    spans: Vec<Range<usize>>,
    proof: Vec<Hash>,
}

impl EntryPackage {
    /// Which entries, and which subtree the proof is for.
    pub fn range(&self) -> PackageRange {
        self.range
    }

    /// The entries `[start, end)`, in order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|s| &self.data[s.clone()])
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether it holds no entries (never, for a package of the sequence).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The entries in tlog-tiles entry-bundle encoding (each u16-prefixed),
    /// exactly as received: for a full aligned package, the entry bundle.
    pub fn entry_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The subtree consistency proof hashes, as received.
    pub fn proof(&self) -> &[Hash] {
        &self.proof
    }

    /// The leaf hashes of the entries.
    pub fn leaf_hashes(&self) -> Vec<Hash> {
        self.entries().map(leaf_hash).collect()
    }

    /// Verifies the package against the checkpoint of `upload_end` leaves
    /// whose root is `root`. `prefix` is the leaf hashes of the entries
    /// `[subtree_start, start)` the mirror already stores (empty for an
    /// aligned package); with them and the received entries the mirror
    /// rebuilds the subtree hash, as the spec says.
    pub fn verify(
        &self,
        prefix: &[Hash],
        upload_end: TreeSize,
        root: Hash,
    ) -> Result<(), PackageVerifyError> {
        if prefix.len() != self.range.prefix_len() {
            return Err(PackageVerifyError::WrongPrefix {
                expected: self.range.prefix_len(),
                got: prefix.len(),
            });
        }
        let mut leaves = Vec::with_capacity(prefix.len() + self.len());
        leaves.extend_from_slice(prefix);
        leaves.extend(self.entries().map(leaf_hash));
        let subtree_hash = hash_of_leaves(&leaves);
        verify_subtree_consistency(
            self.range.subtree(),
            upload_end,
            subtree_hash,
            root,
            &self.proof,
        )
        .map_err(|source| PackageVerifyError::Proof {
            start: self.range.start.get(),
            end: self.range.end.get(),
            source,
        })
    }
}

/// What [`AddEntriesParser::next_event`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseEvent {
    /// The header, always first: check it (origin, sizes, ticket) before
    /// reading on.
    Header(AddEntriesHeader),
    /// The next package of the canonical sequence, not yet verified.
    Package(EntryPackage),
}

/// How the body ended, from [`AddEntriesParser::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// Every package of the canonical sequence arrived.
    Complete {
        /// Packages received.
        packages: u64,
        /// Bytes after the last package (the spec is silent; Sunlight and
        /// Tessera ignore them, so they are counted, not refused).
        trailing_bytes: u64,
    },
    /// The body stopped before the sequence ended: a deliberate prefix
    /// (`partial_bytes` 0) or a cut inside a package. The mirror answers
    /// `202` if it saved a package, `400` if not.
    Incomplete {
        /// Packages received.
        packages: u64,
        /// The first entry of the first package not received.
        next_entry: LeafIndex,
        /// Bytes of that package that did arrive, discarded.
        partial_bytes: usize,
    },
}

#[derive(Clone, Debug)]
enum Stage {
    Header,
    Packages,
    Done,
    Failed(MirrorProtocolError),
}

/// The package being received: how far its entries have been scanned, so
/// bytes arriving a few at a time are not scanned again.
#[derive(Clone, Debug)]
struct Scan {
    range: PackageRange,
    spans: Vec<Range<usize>>,
    cursor: usize,
}

/// A push parser for add-entries bodies (see the module documentation for
/// why push): [`push`](Self::push) bytes as they arrive, call
/// [`next_event`](Self::next_event) until it returns `Ok(None)` (more bytes
/// needed, or the sequence is complete), and at the end of the body call
/// [`finish`](Self::finish). After an error it returns that error forever.
#[derive(Clone, Debug)]
pub struct AddEntriesParser {
    buf: Vec<u8>,
    stage: Stage,
    scan: Option<Scan>,
    ranges: Option<PackageRanges>,
    header: Option<AddEntriesHeader>,
    max_entry_len: usize,
    packages: u64,
    trailing: u64,
}

impl Default for AddEntriesParser {
    fn default() -> Self {
        AddEntriesParser::new()
    }
}

impl AddEntriesParser {
    /// A parser that accepts entries up to the wire's limit (65535 bytes).
    pub fn new() -> AddEntriesParser {
        AddEntriesParser {
            buf: Vec::new(),
            stage: Stage::Header,
            scan: None,
            ranges: None,
            header: None,
            max_entry_len: MAX_ENTRY_LEN,
            packages: 0,
            trailing: 0,
        }
    }

    /// A parser that refuses entries longer than `max` bytes as soon as
    /// their length prefix arrives: a mirror of a log with smaller entries
    /// need not buffer 16 MiB packages.
    pub fn with_max_entry_len(max: u16) -> AddEntriesParser {
        AddEntriesParser {
            max_entry_len: usize::from(max),
            ..AddEntriesParser::new()
        }
    }

    /// Adds bytes of the body. Bytes after the last package are counted,
    /// not kept.
    pub fn push(&mut self, bytes: &[u8]) {
        match self.stage {
            Stage::Done => self.trailing += bytes.len() as u64,
            Stage::Failed(_) => {}
            Stage::Header | Stage::Packages => self.buf.extend_from_slice(bytes),
        }
    }

    /// The header, once parsed.
    pub fn header(&self) -> Option<&AddEntriesHeader> {
        self.header.as_ref()
    }

    /// Bytes received and not yet returned in an event.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next header or package, `Ok(None)` if more bytes are needed or
    /// the sequence is complete.
    pub fn next_event(&mut self) -> Result<Option<ParseEvent>, MirrorProtocolError> {
        let result = match &self.stage {
            Stage::Failed(e) => return Err(e.clone()),
            Stage::Done => return Ok(None),
            Stage::Header => self.parse_header(),
            Stage::Packages => self.parse_package(),
        };
        if let Err(e) = &result {
            self.stage = Stage::Failed(e.clone());
            self.buf = Vec::new();
        }
        result
    }

    /// How the body ended; call once the body is over and `next_event` has
    /// returned `Ok(None)`.
    pub fn finish(&self) -> Result<BodyEnd, MirrorProtocolError> {
        match &self.stage {
            Stage::Failed(e) => Err(e.clone()),
            Stage::Header => Err(MirrorProtocolError::TruncatedHeader {
                received: self.buf.len(),
            }),
            Stage::Done => Ok(BodyEnd::Complete {
                packages: self.packages,
                trailing_bytes: self.trailing,
            }),
            Stage::Packages => Ok(BodyEnd::Incomplete {
                packages: self.packages,
                next_entry: self
                    .scan
                    .as_ref()
                    .map_or(LeafIndex(0), |scan| scan.range.start),
                partial_bytes: self.buf.len(),
            }),
        }
    }

    fn parse_header(&mut self) -> Result<Option<ParseEvent>, MirrorProtocolError> {
        let mut r = Bytes::new(&self.buf);
        // Each field is checked as soon as it is in, so a server can refuse
        // a bad header before the rest of the body arrives.
        let Some(origin_len) = r.u16() else {
            return Ok(None);
        };
        if origin_len == 0 {
            return Err(MirrorProtocolError::EmptyOrigin);
        }
        let Some(origin) = r.take(usize::from(origin_len)) else {
            return Ok(None);
        };
        let origin = std::str::from_utf8(origin)
            .map_err(|_| MirrorProtocolError::OriginNotUtf8)?
            .to_owned();
        let (Some(start), Some(end)) = (r.u64(), r.u64()) else {
            return Ok(None);
        };
        if start > end {
            return Err(MirrorProtocolError::StartAfterEnd { start, end });
        }
        let Some(ticket_len) = r.u16() else {
            return Ok(None);
        };
        let Some(ticket) = r.take(usize::from(ticket_len)) else {
            return Ok(None);
        };
        let header = AddEntriesHeader {
            origin,
            upload_start: LeafIndex(start),
            upload_end: TreeSize(end),
            ticket: ticket.to_vec(),
        };
        let used = r.at;
        self.buf.drain(..used);
        let mut ranges = header.packages();
        match ranges.next() {
            Some(range) => {
                self.scan = Some(Scan::new(range));
                self.stage = Stage::Packages;
            }
            None => self.finish_sequence(),
        }
        self.ranges = Some(ranges);
        self.header = Some(header.clone());
        Ok(Some(ParseEvent::Header(header)))
    }

    fn parse_package(&mut self) -> Result<Option<ParseEvent>, MirrorProtocolError> {
        let Some(scan) = self.scan.as_mut() else {
            // Stage::Packages always has a scan; nothing to do otherwise.
            return Ok(None);
        };
        let avail = self.buf.as_slice();
        let range = scan.range;
        while scan.spans.len() < range.entry_count() {
            let at = scan.cursor;
            let Some(prefix) = avail.get(at..at + 2) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
            if len > self.max_entry_len {
                return Err(MirrorProtocolError::EntryTooLong {
                    index: range.start.get() + scan.spans.len() as u64,
                    len,
                    max: self.max_entry_len,
                });
            }
            if avail.len() < at + 2 + len {
                return Ok(None);
            }
            scan.spans.push(at + 2..at + 2 + len);
            scan.cursor = at + 2 + len;
        }
        let at = scan.cursor;
        let Some(&count) = avail.get(at) else {
            return Ok(None);
        };
        let count = usize::from(count);
        if count > MAX_PACKAGE_HASHES {
            return Err(MirrorProtocolError::TooManyHashes {
                subtree_start: range.subtree_start.get(),
                end: range.end.get(),
                count,
            });
        }
        let end = at + 1 + count * HASH_SIZE;
        let Some(hashes) = avail.get(at + 1..end) else {
            return Ok(None);
        };
        let proof = hashes
            .chunks_exact(HASH_SIZE)
            .map(|c| {
                let mut h = [0u8; HASH_SIZE];
                h.copy_from_slice(c);
                Hash(h)
            })
            .collect();
        let package = EntryPackage {
            range,
            data: avail[..at].to_vec(),
            spans: std::mem::take(&mut scan.spans),
            proof,
        };
        self.buf.drain(..end);
        self.packages += 1;
        match self.ranges.as_mut().and_then(Iterator::next) {
            Some(next) => self.scan = Some(Scan::new(next)),
            None => self.finish_sequence(),
        }
        Ok(Some(ParseEvent::Package(package)))
    }

    /// The canonical sequence is complete: what is left is trailing bytes.
    fn finish_sequence(&mut self) {
        self.trailing += self.buf.len() as u64;
        self.buf = Vec::new();
        self.scan = None;
        self.stage = Stage::Done;
    }
}

impl Scan {
    fn new(range: PackageRange) -> Scan {
        Scan {
            range,
            spans: Vec::with_capacity(range.entry_count()),
            cursor: 0,
        }
    }
}

/// A cursor over bytes that says `None` when they run out (more needed).
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, at: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_be_bytes(a))
    }
}

/// Reads an add-entries body from an [`std::io::Read`], one package at a
/// time, over [`AddEntriesParser`]: it reads 64 KiB at a time, so it holds
/// at most one package and 64 KiB.
pub struct PackageReader<R: Read> {
    reader: R,
    parser: AddEntriesParser,
    header: AddEntriesHeader,
    chunk: Vec<u8>,
    eof: bool,
}

impl<R: Read> std::fmt::Debug for PackageReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageReader")
            .field("header", &self.header)
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<R: Read> PackageReader<R> {
    /// Reads the header.
    pub fn new(reader: R) -> Result<PackageReader<R>, PackageReadError> {
        PackageReader::with_parser(reader, AddEntriesParser::new())
    }

    /// Reads the header with a configured parser (see
    /// [`AddEntriesParser::with_max_entry_len`]).
    pub fn with_parser(
        reader: R,
        parser: AddEntriesParser,
    ) -> Result<PackageReader<R>, PackageReadError> {
        let mut this = PackageReader {
            reader,
            parser,
            header: AddEntriesHeader {
                origin: String::new(),
                upload_start: LeafIndex(0),
                upload_end: TreeSize(0),
                ticket: Vec::new(),
            },
            chunk: vec![0; 64 * 1024],
            eof: false,
        };
        match this.next_event()? {
            Some(ParseEvent::Header(header)) => {
                this.header = header;
                Ok(this)
            }
            // The parser gives the header first; anything else means the
            // body ended before it.
            _ => Err(PackageReadError::Protocol(
                this.parser
                    .finish()
                    .err()
                    .unwrap_or(MirrorProtocolError::TruncatedHeader { received: 0 }),
            )),
        }
    }

    /// The request header.
    pub fn header(&self) -> &AddEntriesHeader {
        &self.header
    }

    /// The next package, or `None` when the sequence is complete or the
    /// body ended; then [`finish`](Self::finish) says which.
    pub fn next_package(&mut self) -> Result<Option<EntryPackage>, PackageReadError> {
        match self.next_event()? {
            Some(ParseEvent::Package(package)) => Ok(Some(package)),
            _ => Ok(None),
        }
    }

    /// How the body ended (see [`BodyEnd`]).
    pub fn finish(&self) -> Result<BodyEnd, MirrorProtocolError> {
        self.parser.finish()
    }

    fn next_event(&mut self) -> Result<Option<ParseEvent>, PackageReadError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(Some(event));
            }
            if self.eof || matches!(self.parser.stage, Stage::Done) {
                return Ok(None);
            }
            match self.reader.read(&mut self.chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.parser.push(&self.chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The body of a `409 Conflict` or `202 Accepted` add-entries answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorInfo {
    /// The size of a valid pending checkpoint (the client's `upload_end`
    /// if that was valid): the `upload_end` to retry with.
    pub pending_size: TreeSize,
    /// The mirror's next entry: the `upload_start` to retry with.
    pub next_entry: LeafIndex,
    /// The opaque ticket to send back (possibly empty).
    pub ticket: Vec<u8>,
}

impl MirrorInfo {
    /// Parses a mirror-info body (client side). Decimal numbers with
    /// leading zeros are accepted, as Azul and Boulder do, because the spec
    /// only says "in decimal"; signs and spaces are not.
    pub fn parse(body: &[u8]) -> Result<MirrorInfo, MirrorInfoError> {
        let text = std::str::from_utf8(body).map_err(|_| MirrorInfoError::NotThreeLines)?;
        let lines = text
            .strip_suffix('\n')
            .ok_or(MirrorInfoError::NotThreeLines)?;
        let mut parts = lines.split('\n');
        let (Some(size), Some(next), Some(ticket), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MirrorInfoError::NotThreeLines);
        };
        let pending_size =
            lenient_decimal(size).ok_or_else(|| MirrorInfoError::BadPendingSize(size.into()))?;
        let next_entry =
            lenient_decimal(next).ok_or_else(|| MirrorInfoError::BadNextEntry(next.into()))?;
        let ticket = BASE64
            .decode(ticket)
            .map_err(|_| MirrorInfoError::BadTicket)?;
        if ticket.len() > MAX_ENTRY_LEN {
            return Err(MirrorInfoError::TicketTooLong { len: ticket.len() });
        }
        Ok(MirrorInfo {
            pending_size: TreeSize(pending_size),
            next_entry: LeafIndex(next_entry),
            ticket,
        })
    }

    /// The body: pending size, next entry and base64 ticket, one per line.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n",
            self.pending_size,
            self.next_entry,
            BASE64.encode(&self.ticket)
        )
        .into_bytes()
    }
}

/// ASCII digits only (no sign, no space), leading zeros allowed, fits a u64.
fn lenient_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    // Test code: a panic is how a failed expectation is reported.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::tree::MemoryTree;

    fn ranges(start: u64, end: u64) -> Vec<(u64, u64, u64)> {
        package_ranges(LeafIndex(start), TreeSize(end))
            .map(|r| (r.subtree_start.get(), r.start.get(), r.end.get()))
            .collect()
    }

    /// Boulder's TestPackages and Azul's package_ranges cases (notes 1.4.1).
    #[test]
    fn canonical_sequences() {
        assert_eq!(ranges(5, 5), vec![]);
        assert_eq!(ranges(0, 0), vec![]);
        assert_eq!(ranges(7, 3), vec![]);
        assert_eq!(ranges(0, 256), vec![(0, 0, 256)]);
        assert_eq!(ranges(0, 5), vec![(0, 0, 5)]);
        assert_eq!(ranges(300, 700), vec![(256, 300, 512), (512, 512, 700)]);
        assert_eq!(ranges(256, 768), vec![(256, 256, 512), (512, 512, 768)]);
        assert_eq!(ranges(300, 400), vec![(256, 300, 400)]);
        assert_eq!(
            ranges(100, 600),
            vec![(0, 100, 256), (256, 256, 512), (512, 512, 600)]
        );
        assert_eq!(ranges(0, 1000).len(), 4);
        // No overflow at the top of the range (Azul's regression case).
        assert_eq!(
            ranges(u64::MAX - 1, u64::MAX),
            vec![(u64::MAX - 255, u64::MAX - 1, u64::MAX)]
        );
        let edge = u64::MAX - u64::MAX % 256;
        assert_eq!(ranges(edge, u64::MAX), vec![(edge, edge, u64::MAX)]);
        for r in package_ranges(LeafIndex(300), TreeSize(700)) {
            assert!(r.entry_count() <= 256);
            assert_eq!(r.subtree().start(), r.subtree_start);
            assert_eq!(r.subtree().end(), r.end);
        }
    }

    fn header(start: u64, end: u64) -> AddEntriesHeader {
        AddEntriesHeader {
            origin: "example.com/log".into(),
            upload_start: LeafIndex(start),
            upload_end: TreeSize(end),
            ticket: b"ticket".to_vec(),
        }
    }

    #[test]
    fn header_bytes() {
        let mut out = Vec::new();
        header(300, 700).encode(&mut out).unwrap();
        let mut want = vec![0, 15];
        want.extend_from_slice(b"example.com/log");
        want.extend_from_slice(&300u64.to_be_bytes());
        want.extend_from_slice(&700u64.to_be_bytes());
        want.extend_from_slice(&[0, 6]);
        want.extend_from_slice(b"ticket");
        assert_eq!(out, want);

        // The smallest header: one-byte origin, zeros, no ticket.
        let mut out = Vec::new();
        AddEntriesHeader {
            origin: "o".into(),
            upload_start: LeafIndex(0),
            upload_end: TreeSize(0),
            ticket: vec![],
        }
        .encode(&mut out)
        .unwrap();
        assert_eq!(out.len(), 21);
        let mut p = AddEntriesParser::new();
        p.push(&out);
        assert!(matches!(p.next_event(), Ok(Some(ParseEvent::Header(_)))));
        assert_eq!(
            p.finish(),
            Ok(BodyEnd::Complete {
                packages: 0,
                trailing_bytes: 0
            })
        );
    }

    #[test]
    fn header_encoder_refuses() {
        let mut out = Vec::new();
        let mut h = header(0, 1);
        h.origin.clear();
        assert_eq!(h.encode(&mut out), Err(MirrorProtocolError::EmptyOrigin));
        h.origin = "x".repeat(65536);
        assert_eq!(
            h.encode(&mut out),
            Err(MirrorProtocolError::OriginTooLong { len: 65536 })
        );
        let mut h = header(0, 1);
        h.ticket = vec![0; 65536];
        assert_eq!(
            h.encode(&mut out),
            Err(MirrorProtocolError::TicketTooLong { len: 65536 })
        );
        assert_eq!(
            header(2, 1).encode(&mut out),
            Err(MirrorProtocolError::StartAfterEnd { start: 2, end: 1 })
        );
        assert!(out.is_empty(), "nothing written on error");
    }

    fn parse_all(
        body: &[u8],
    ) -> Result<(AddEntriesHeader, Vec<EntryPackage>, BodyEnd), MirrorProtocolError> {
        let mut p = AddEntriesParser::new();
        p.push(body);
        let mut header = None;
        let mut packages = Vec::new();
        while let Some(event) = p.next_event()? {
            match event {
                ParseEvent::Header(h) => header = Some(h),
                ParseEvent::Package(pkg) => packages.push(pkg),
            }
        }
        let end = p.finish()?;
        Ok((header.expect("a header before the end"), packages, end))
    }

    /// A small log and a body for [start, end) with correct proofs.
    fn body(tree: &MemoryTree, entries: &[Vec<u8>], start: u64, end: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&header(start, end), &mut out).unwrap();
        while let Some(r) = enc.next_package() {
            let proof = package_proof(r, TreeSize(end), tree).unwrap();
            let es = &entries[r.start.get() as usize..r.end.get() as usize];
            enc.push_package(es, &proof, &mut out).unwrap();
        }
        assert!(enc.is_complete());
        out
    }

    fn small_log(n: u64) -> (MemoryTree, Vec<Vec<u8>>) {
        let mut tree = MemoryTree::new();
        let mut entries = Vec::new();
        for i in 0..n {
            // Lengths 0..6 so some entries are empty.
            let e = vec![i as u8; (i % 7) as usize];
            tree.append(&e);
            entries.push(e);
        }
        (tree, entries)
    }

    #[test]
    fn round_trip_and_verify() {
        let (tree, entries) = small_log(1100);
        for (start, end) in [
            (0, 1100),
            (250, 520),
            (300, 301),
            (256, 512),
            (1099, 1100),
            (600, 600),
        ] {
            let root = crate::tree::tree_hash(TreeSize(end), &tree).unwrap();
            let bytes = body(&tree, &entries, start, end);
            let (h, packages, done) = parse_all(&bytes).unwrap();
            assert_eq!(h, header(start, end));
            assert_eq!(
                done,
                BodyEnd::Complete {
                    packages: packages.len() as u64,
                    trailing_bytes: 0
                }
            );
            let want: Vec<PackageRange> = h.packages().collect();
            assert_eq!(packages.iter().map(|p| p.range()).collect::<Vec<_>>(), want);
            let mut got_entries = Vec::new();
            for p in &packages {
                let r = p.range();
                let prefix: Vec<Hash> = entries
                    [r.subtree_start.get() as usize..r.start.get() as usize]
                    .iter()
                    .map(|e| leaf_hash(e))
                    .collect();
                assert_eq!(p.verify(&prefix, TreeSize(end), root), Ok(()), "{r:?}");
                // Without the mirror's own entries before an unaligned start
                // the package cannot be checked.
                if !prefix.is_empty() {
                    assert!(matches!(
                        p.verify(&[], TreeSize(end), root),
                        Err(PackageVerifyError::WrongPrefix { .. })
                    ));
                }
                got_entries.extend(p.entries().map(<[u8]>::to_vec));
            }
            assert_eq!(got_entries, entries[start as usize..end as usize]);
        }
    }

    /// Feeding the body in any chunking gives the same packages; a cut at
    /// every byte ends as the spec's cases say.
    #[test]
    fn truncation_at_every_byte() {
        let (tree, entries) = small_log(600);
        let bytes = body(&tree, &entries, 250, 520);
        let (_, full, _) = parse_all(&bytes).unwrap();
        assert_eq!(full.len(), 3);
        let header_len = 2 + 15 + 8 + 8 + 2 + 6;
        // Where each package ends in the body.
        let mut ends = Vec::new();
        let mut at = header_len;
        for p in &full {
            at += p.entry_bytes().len() + 1 + 32 * p.proof().len();
            ends.push(at);
        }
        assert_eq!(at, bytes.len());
        for cut in 0..=bytes.len() {
            let mut p = AddEntriesParser::new();
            p.push(&bytes[..cut]);
            let mut got = Vec::new();
            while let Some(ev) = p.next_event().unwrap() {
                if let ParseEvent::Package(pkg) = ev {
                    got.push(pkg);
                }
            }
            let done = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(got, full[..done], "cut at {cut}");
            let end = p.finish();
            if cut < header_len {
                assert_eq!(
                    end,
                    Err(MirrorProtocolError::TruncatedHeader { received: cut })
                );
            } else if done == full.len() {
                assert_eq!(
                    end,
                    Ok(BodyEnd::Complete {
                        packages: 3,
                        trailing_bytes: 0
                    })
                );
            } else {
                let package_start = if done == 0 {
                    header_len
                } else {
                    ends[done - 1]
                };
                assert_eq!(
                    end,
                    Ok(BodyEnd::Incomplete {
                        packages: done as u64,
                        next_entry: full[done].range().start,
                        partial_bytes: cut - package_start,
                    }),
                    "cut at {cut}"
                );
            }
        }
        // One byte at a time.
        let mut p = AddEntriesParser::new();
        let mut got = Vec::new();
        for b in &bytes {
            p.push(std::slice::from_ref(b));
            while let Some(ev) = p.next_event().unwrap() {
                if let ParseEvent::Package(pkg) = ev {
                    got.push(pkg);
                }
            }
        }
        assert_eq!(got, full);
        // Trailing bytes are counted, not kept.
        p.push(b"extra");
        assert_eq!(p.next_event(), Ok(None));
        assert_eq!(p.buffered(), 0);
        assert_eq!(
            p.finish(),
            Ok(BodyEnd::Complete {
                packages: 3,
                trailing_bytes: 5
            })
        );
    }

    #[test]
    fn package_reader_over_read() {
        let (tree, entries) = small_log(600);
        let bytes = body(&tree, &entries, 250, 520);
        let (_, full, _) = parse_all(&bytes).unwrap();
        // A reader that returns a few bytes at a time, as a socket would.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(13);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut reader = PackageReader::new(Dribble(&bytes)).unwrap();
        assert_eq!(reader.header(), &header(250, 520));
        let mut got = Vec::new();
        while let Some(p) = reader.next_package().unwrap() {
            got.push(p);
        }
        assert_eq!(got, full);
        assert_eq!(
            reader.finish(),
            Ok(BodyEnd::Complete {
                packages: 3,
                trailing_bytes: 0
            })
        );

        // Cut inside the second package: one package, then the end.
        let cut = &bytes[..bytes.len() - 40];
        let mut reader = PackageReader::new(cut).unwrap();
        assert!(reader.next_package().unwrap().is_some());
        assert!(reader.next_package().unwrap().is_some());
        assert!(reader.next_package().unwrap().is_none());
        assert!(matches!(
            reader.finish(),
            Ok(BodyEnd::Incomplete {
                packages: 2,
                next_entry: LeafIndex(512),
                ..
            })
        ));
        // Cut inside the header.
        assert!(matches!(
            PackageReader::new(&bytes[..10]),
            Err(PackageReadError::Protocol(
                MirrorProtocolError::TruncatedHeader { received: 10 }
            ))
        ));
        // A failing reader is an I/O error.
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("reset"))
            }
        }
        assert!(matches!(
            PackageReader::new(Broken),
            Err(PackageReadError::Io(_))
        ));
    }

    #[test]
    fn malformed_headers() {
        let mut ok = Vec::new();
        header(1, 5).encode(&mut ok).unwrap();
        // Empty origin: refused after two bytes.
        let mut p = AddEntriesParser::new();
        p.push(&[0, 0]);
        assert_eq!(p.next_event(), Err(MirrorProtocolError::EmptyOrigin));
        assert_eq!(
            p.next_event(),
            Err(MirrorProtocolError::EmptyOrigin),
            "sticky"
        );
        assert_eq!(p.finish(), Err(MirrorProtocolError::EmptyOrigin));
        // Origin not UTF-8.
        let mut p = AddEntriesParser::new();
        p.push(&[0, 2, 0xff, 0xfe]);
        assert_eq!(p.next_event(), Err(MirrorProtocolError::OriginNotUtf8));
        // Start after end: refused before the ticket arrives.
        let mut bad = ok[..17].to_vec();
        bad.extend_from_slice(&9u64.to_be_bytes());
        bad.extend_from_slice(&5u64.to_be_bytes());
        let mut p = AddEntriesParser::new();
        p.push(&bad);
        assert_eq!(
            p.next_event(),
            Err(MirrorProtocolError::StartAfterEnd { start: 9, end: 5 })
        );
        // A ticket longer than the body.
        let mut p = AddEntriesParser::new();
        p.push(&ok[..ok.len() - 1]);
        assert_eq!(p.next_event(), Ok(None));
        assert_eq!(
            p.finish(),
            Err(MirrorProtocolError::TruncatedHeader {
                received: ok.len() - 1
            })
        );
    }

    #[test]
    fn malformed_packages() {
        let (tree, entries) = small_log(300);
        let bytes = body(&tree, &entries, 0, 3);
        // Entries 0..3 have lengths 0, 1, 2: header, then 00 00, 00 01 01,
        // 00 02 02 02, then the count byte.
        let header_len = 2 + 15 + 8 + 8 + 2 + 6;
        let count_at = header_len + 2 + 3 + 4;
        assert_eq!(
            usize::from(bytes[count_at]),
            0,
            "[0, 3) is the whole tree of 3: no proof"
        );

        // Too many hashes: refused on the count byte, before the hashes.
        let mut bad = bytes[..=count_at].to_vec();
        bad[count_at] = 64;
        let mut p = AddEntriesParser::new();
        p.push(&bad);
        assert!(matches!(p.next_event(), Ok(Some(ParseEvent::Header(_)))));
        assert_eq!(
            p.next_event(),
            Err(MirrorProtocolError::TooManyHashes {
                subtree_start: 0,
                end: 3,
                count: 64
            })
        );
        // 63 is allowed by the wire (the proof is then refused as too long).
        let mut at_limit = bytes[..count_at].to_vec();
        at_limit.push(63);
        at_limit.extend_from_slice(&[7; 63 * 32]);
        let (_, packages, _) = parse_all(&at_limit).unwrap();
        assert_eq!(packages[0].proof().len(), 63);
        let root = crate::tree::tree_hash(TreeSize(3), &tree).unwrap();
        assert!(matches!(
            packages[0].verify(&[], TreeSize(3), root),
            Err(PackageVerifyError::Proof {
                source: SubtreeProofError::WrongLength {
                    expected: 0,
                    got: 63,
                    ..
                },
                ..
            })
        ));

        // An entry longer than this mirror accepts, refused on its prefix.
        let mut p = AddEntriesParser::with_max_entry_len(1);
        p.push(&bytes[..header_len + 2 + 3 + 2]);
        assert!(matches!(p.next_event(), Ok(Some(ParseEvent::Header(_)))));
        assert_eq!(
            p.next_event(),
            Err(MirrorProtocolError::EntryTooLong {
                index: 2,
                len: 2,
                max: 1
            })
        );
    }

    /// A client that aligns packages to its own start instead of to 256:
    /// the encoder refuses; bytes built by hand parse as other packages and
    /// fail verification.
    #[test]
    fn wrong_alignment() {
        let (tree, entries) = small_log(600);
        let h = header(300, 600);
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&h, &mut out).unwrap();
        // 256 entries from 300: the first package holds 212 (300..512).
        assert_eq!(
            enc.push_package(&entries[300..556], &[], &mut out),
            Err(MirrorProtocolError::WrongEntryCount {
                start: 300,
                end: 512,
                expected: 212,
                got: 256
            })
        );
        // The refused package did not advance the encoder.
        assert_eq!(enc.next_package().map(|r| r.start), Some(LeafIndex(300)));

        // The same mistake made by hand: entries 300..556, then the proof of
        // the first package's subtree [256, 512).
        let first = h.packages().next().unwrap();
        let proof = package_proof(first, TreeSize(600), &tree).unwrap();
        assert!(!proof.is_empty());
        let mut bytes = Vec::new();
        h.encode(&mut bytes).unwrap();
        for e in &entries[300..556] {
            bytes.extend_from_slice(&(e.len() as u16).to_be_bytes());
            bytes.extend_from_slice(e);
        }
        bytes.push(proof.len() as u8);
        for p in &proof {
            bytes.extend_from_slice(p.as_bytes());
        }
        let root = crate::tree::tree_hash(TreeSize(600), &tree).unwrap();
        let prefix: Vec<Hash> = entries[256..300].iter().map(|e| leaf_hash(e)).collect();
        let mut p = AddEntriesParser::new();
        p.push(&bytes);
        assert!(matches!(p.next_event(), Ok(Some(ParseEvent::Header(_)))));
        // The parser reads the 212 entries of [300, 512), then takes the
        // first byte of entry 512's length prefix (00 01) for the hash
        // count: a package without its proof, which the mirror refuses.
        let Ok(Some(ParseEvent::Package(pkg))) = p.next_event() else {
            panic!("a package");
        };
        assert_eq!(pkg.range(), first);
        assert!(pkg.proof().is_empty());
        assert_eq!(
            pkg.verify(&prefix, TreeSize(600), root),
            Err(PackageVerifyError::Proof {
                start: 300,
                end: 512,
                source: SubtreeProofError::WrongLength {
                    start: 256,
                    end: 512,
                    size: 600,
                    expected: proof.len(),
                    got: 0
                }
            })
        );
    }

    #[test]
    fn encoder_refuses() {
        let (tree, entries) = small_log(10);
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&header(0, 10), &mut out).unwrap();
        let proof = package_proof(enc.next_package().unwrap(), TreeSize(10), &tree).unwrap();
        assert!(proof.is_empty(), "the whole tree needs no proof");
        assert_eq!(
            enc.push_package(&entries, &[Hash::default(); 64], &mut out),
            Err(MirrorProtocolError::TooManyHashes {
                subtree_start: 0,
                end: 10,
                count: 64
            })
        );
        let mut long = entries.clone();
        long[4] = vec![0; 65536];
        assert_eq!(
            enc.push_package(&long, &proof, &mut out),
            Err(MirrorProtocolError::EntryTooLong {
                index: 4,
                len: 65536,
                max: 65535
            })
        );
        let before = out.len();
        enc.push_package(&entries, &proof, &mut out).unwrap();
        assert!(out.len() > before);
        assert_eq!(
            enc.push_package(&entries, &proof, &mut out),
            Err(MirrorProtocolError::NoMorePackages { end: 10 })
        );
        // The longest entry the wire frames goes through.
        let mut out = Vec::new();
        let mut enc = AddEntriesEncoder::new(&header(0, 1), &mut out).unwrap();
        let big = vec![vec![9u8; 65535]];
        enc.push_package(&big, &[], &mut out).unwrap();
        let (_, packages, _) = parse_all(&out).unwrap();
        assert_eq!(packages[0].entries().next().map(<[u8]>::len), Some(65535));
    }

    /// Azul wire.rs `mirror_info_pin_exact_body` and Boulder
    /// `TestParseMirrorInfo` (notes 1.4.3).
    #[test]
    fn mirror_info_pins() {
        let info = MirrorInfo {
            pending_size: TreeSize(12400),
            next_entry: LeafIndex(12345),
            ticket: vec![1, 2, 3, 4, 5],
        };
        assert_eq!(info.to_bytes(), b"12400\n12345\nAQIDBAU=\n");
        assert_eq!(MirrorInfo::parse(b"12400\n12345\nAQIDBAU=\n"), Ok(info));
        let empty = MirrorInfo {
            pending_size: TreeSize(0),
            next_entry: LeafIndex(0),
            ticket: vec![],
        };
        assert_eq!(empty.to_bytes(), b"0\n0\n\n");
        assert_eq!(MirrorInfo::parse(b"0\n0\n\n"), Ok(empty));
        assert_eq!(
            MirrorInfo::parse(b"512\n300\ndGlja2V0\n"),
            Ok(MirrorInfo {
                pending_size: TreeSize(512),
                next_entry: LeafIndex(300),
                ticket: b"ticket".to_vec()
            })
        );
        // Leading zeros are read (never written).
        assert_eq!(
            MirrorInfo::parse(b"0512\n00300\n\n").map(|i| (i.pending_size, i.next_entry)),
            Ok((TreeSize(512), LeafIndex(300)))
        );
    }

    #[test]
    fn mirror_info_malformed() {
        use MirrorInfoError::*;
        for (body, want) in [
            (&b""[..], NotThreeLines),
            (b"512\n300\n", NotThreeLines),
            (b"512\n300\ndGlja2V0", NotThreeLines),
            (b"512\n300\n\n\n", NotThreeLines),
            (b"512\n300\n!!!\n", BadTicket),
            (b"512\n300\ndGlja2V0==\n", BadTicket),
            (b"512\n-1\n\n", BadNextEntry("-1".into())),
            (b"+512\n300\n\n", BadPendingSize("+512".into())),
            (b" 512\n300\n\n", BadPendingSize(" 512".into())),
            (b"\n300\n\n", BadPendingSize(String::new())),
            (
                b"18446744073709551616\n0\n\n",
                BadPendingSize("18446744073709551616".into()),
            ),
            (b"512\r\n300\n\n", BadPendingSize("512\r".into())),
            (b"\xff\n0\n\n", NotThreeLines),
        ] {
            assert_eq!(
                MirrorInfo::parse(body),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let long = format!("1\n1\n{}\n", BASE64.encode(vec![0u8; 65536]));
        assert_eq!(
            MirrorInfo::parse(long.as_bytes()),
            Err(TicketTooLong { len: 65536 })
        );
    }
}
