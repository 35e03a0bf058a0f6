//! Compressing entries' record bytes with a zstd dictionary trained on the
//! log's own first entries.
//!
//! A record is about 900 bytes of signed canonical JSON, and records look
//! alike: the same keys, statutes, courts, providers and timestamps, around
//! a few hex hashes and a signature that do not compress at all. Compressed
//! one by one without a dictionary they keep 65% of their size (zstd level 1;
//! zlib level 1, 63%); with a dictionary trained on such records, 27% (zstd
//! level 1; 44% at level -1, the level the store writes, [`LEVEL`]).
//!
//! The store keeps entries raw until the log holds [`TRAIN_AT`] of them,
//! then [`train`]s a dictionary once on those entries, stores it (id 1, 2, …
//! should it ever train again) and compresses every later entry with a
//! [`Codec`] built on it, keeping the dictionary id beside each row (none:
//! raw). [`Codec::compress`] answers `None` when compression would not make
//! an entry smaller, and the entry is then stored raw.
//!
//! Every frame records its content size, its dictionary's zstd id and a
//! checksum of its content, and [`Codec::decompress`] refuses any stored bytes
//! that are not exactly one such frame of this codec's dictionary, or that
//! would exceed the caller's bound: a corrupted row is an error that names
//! what failed, never a panic nor other bytes. (Rarely, a flipped bit inside
//! a frame turns a match into another over the same bytes: the content, and
//! so its checksum, is then unchanged, and the row reads as what it held.)
//!
//! Measured on 20,000 records of a 100,000-record `bench fill --records` log
//! (mostly requests, ~946 bytes), a dictionary trained on its first 4,096
//! (2 shared cores), all at zstd level 1: level 1 with a 16 KB dictionary
//! keeps 27.4% of the bytes (30.3% of all 95,908 later entries, whose
//! disclosures and withdrawals, kinds absent from the first 4,096 and mostly
//! hex hashes, keep 53-54%) and takes 5-6 µs per record to compress and
//! about 2 µs to decompress (SHA-256 of the same record: 0.8-1.4 µs).
//! Dictionaries of 8, 32 and 64 KB and levels 2 and 3 keep the same within
//! 0.5 points; level 3 compresses a third slower. The store writes at level
//! -1 ([`LEVEL`]): its literals are stored without Huffman coding, so
//! records keep about 44% but decompress in about 27% fewer instructions,
//! and records are read far more often than written.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DDict};

/// Entries the log holds before the store trains its dictionary on them.
///
/// 4,096 records of about 0.9 KB are 3.7 MB of samples, over 200 times
/// [`DICT_BYTES`] (zstd advises about 100 times), and train in about 0.6 s,
/// once. Trained on the first 50 to 16,384 records of the measured log,
/// dictionaries kept the requests (at zstd level 1) within a point of each
/// other (27.6% at 50, 27.3% at 4,096, 26.8% at 16,384), so a real log,
/// whose records vary more, has room here; the entries before it stay raw,
/// about 3.7 MB in all.
pub const TRAIN_AT: u64 = 4096;

/// The largest dictionary [`train`] makes, in bytes.
///
/// 8, 16, 32 and 64 KB kept 27.7%, 27.4%, 27.7% and 27.7% of the measured
/// records at zstd level 1 (and 53-54% of the kinds absent from the
/// training entries, which are mostly hex hashes), so the smallest that is
/// as good as any.
pub const DICT_BYTES: usize = 16 * 1024;

/// The zstd level entries are compressed at.
///
/// Level -1, the first level whose literals are stored as they are (no
/// Huffman coding), because records are read far more often than written:
/// every entry bundle an auditor or mirror fetches decompresses 256 of
/// them. Callgrind on the log server serving 200 bundles of a 1M-entry
/// `bench fill --records` log: at level 1, 3.04M instructions a bundle, of
/// which zstd 1.87M (Huffman-coded literals alone 0.56M); at level -1,
/// 2.52M, of which zstd 1.36M. On 2,560 records of a 100,000-record log
/// with its trained dictionary (`zstd -b`, alternating): level 1 keeps
/// 27.4% and compresses at 149-190 MB/s, level -1 keeps 43.8% at 179-222
/// MB/s. Levels 2 and 3 kept 27.8% and 27.4%, level 3 in about a third
/// more time than level 1. The disk this costs is in BENCHMARKS.md.
pub const LEVEL: i32 = -1;

/// The fewest samples [`train`] accepts (zstd itself refuses fewer than
/// about 8).
pub const MIN_SAMPLES: usize = 64;

/// Every this-many-th sample is held out of training, to check that the
/// dictionary compresses records it has not seen.
const HOLD_OUT_EVERY: usize = 16;

/// A dictionary is refused unless the held-out samples compress with it to
/// at most this many per thousand of their size.
const MAX_TRAINED_PER_MILLE: usize = 900;

/// Idle zstd contexts kept per codec for each direction: enough for the
/// usual concurrency; more concurrent calls create (and then drop) their own.
const POOL_MAX: usize = 8;

/// The first four bytes of every zstd frame (RFC 8878, 3.1.1).
const FRAME_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The Content_Checksum_flag of a frame header descriptor (RFC 8878,
/// 3.1.1.1.1), the byte after the magic.
const CHECKSUM_FLAG: u8 = 0x04;

/// Why a dictionary could not be trained or used, or stored bytes could not
/// be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Too few samples to train on: stay raw.
    #[error("{got} samples are too few to train a dictionary on (at least {need})")]
    TooFewSamples {
        /// The samples given.
        got: usize,
        /// The fewest accepted.
        need: usize,
    },
    /// zstd could not train a dictionary on the samples: stay raw.
    #[error("zstd dictionary training on {samples} samples failed: {source}")]
    Train {
        /// The samples trained on.
        samples: usize,
        /// zstd's answer.
        #[source]
        source: std::io::Error,
    },
    /// The trained dictionary does not compress the samples held out of
    /// training well enough to be worth its cost: stay raw.
    #[error(
        "the trained dictionary compresses {held_out} held-out samples to \
         {per_mille} per mille of their size (at most {MAX_TRAINED_PER_MILLE} needed)"
    )]
    Useless {
        /// The samples held out of training.
        held_out: usize,
        /// Their compressed size, per thousand of their raw size.
        per_mille: usize,
    },
    /// A dictionary is not one zstd can use.
    #[error("dictionary {id} is not a usable zstd dictionary: {reason}")]
    Dictionary {
        /// The dictionary's id in the store.
        id: u32,
        /// What failed.
        reason: &'static str,
    },
    /// zstd could not allocate a context.
    #[error("zstd could not allocate a {0} context")]
    Context(&'static str),
    /// The stored bytes are not one whole, intact frame.
    #[error("entry compressed with dictionary {id} is corrupt: {reason}")]
    Corrupt {
        /// The dictionary's id in the store.
        id: u32,
        /// What failed.
        reason: &'static str,
    },
    /// The stored bytes are a frame of another dictionary.
    #[error(
        "entry stored as compressed with dictionary {id} (zstd id {expected}) \
         is a frame of zstd dictionary {found:?}"
    )]
    WrongDictionary {
        /// The dictionary's id in the store.
        id: u32,
        /// Its zstd id.
        expected: u32,
        /// The frame's zstd dictionary id (`None`: it names none).
        found: Option<u32>,
    },
    /// The stored bytes would decompress to more than the caller allows.
    #[error(
        "entry compressed with dictionary {id} holds {size} bytes, over the \
         limit of {max}"
    )]
    TooLarge {
        /// The dictionary's id in the store.
        id: u32,
        /// The size its frame records.
        size: u64,
        /// The caller's bound.
        max: usize,
    },
}

/// Trains a dictionary of at most [`DICT_BYTES`] on `samples` (the log's
/// first [`TRAIN_AT`] entries' record bytes).
///
/// One sample in 16 is held out of training, and the dictionary is refused
/// unless it compresses those to at most 90% of their size. Any error means
/// "no dictionary": keep storing entries raw.
pub fn train(samples: &[&[u8]]) -> Result<Vec<u8>, CodecError> {
    if samples.len() < MIN_SAMPLES {
        return Err(CodecError::TooFewSamples {
            got: samples.len(),
            need: MIN_SAMPLES,
        });
    }
    let held_out = |i: usize| i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1;
    let training: Vec<&[u8]> = samples
        .iter()
        .enumerate()
        .filter(|&(i, _)| !held_out(i))
        .map(|(_, s)| *s)
        .collect();
    let dict =
        zstd::dict::from_samples(&training, DICT_BYTES).map_err(|source| CodecError::Train {
            samples: training.len(),
            source,
        })?;
    let codec = Codec::new(0, &dict)?;
    let (mut raw, mut stored, mut n) = (0usize, 0usize, 0usize);
    for sample in samples
        .iter()
        .enumerate()
        .filter(|&(i, _)| held_out(i))
        .map(|(_, s)| *s)
    {
        n += 1;
        raw += sample.len();
        stored += codec.compress(sample).map_or(sample.len(), |c| c.len());
    }
    let per_mille = stored.saturating_mul(1000).checked_div(raw).unwrap_or(1000);
    if per_mille > MAX_TRAINED_PER_MILLE {
        return Err(CodecError::Useless {
            held_out: n,
            per_mille,
        });
    }
    Ok(dict)
}

/// A dictionary prepared for compressing and decompressing entries.
///
/// `Send + Sync`, and both directions take `&self`, so one codec can be
/// shared by the write path and any number of readers without a lock
/// around it. zstd contexts are not shareable, though (each call needs one
/// to itself, and creating one costs more than compressing a record), so
/// each call takes an idle context from a small pool of this codec's, or
/// creates one, and puts it back after: the pool's mutex is held only to
/// pop or push, never while compressing. A compression context holds its
/// own copy of the dictionary; decompression contexts share one prepared
/// dictionary.
pub struct Codec {
    /// The dictionary's id in the store.
    id: u32,
    /// The id zstd wrote into the dictionary, which every frame names.
    zstd_id: u32,
    /// The dictionary itself, for new compression contexts.
    dict: Box<[u8]>,
    /// The dictionary prepared for decompression.
    ddict: DDict<'static>,
    /// Idle compression contexts with the dictionary loaded.
    compressors: Mutex<Vec<CCtx<'static>>>,
    /// Idle decompression contexts (the dictionary is given per call).
    decompressors: Mutex<Vec<DCtx<'static>>>,
}

/// What [`Codec::pack`] made of an entry's record bytes: their zstd frame,
/// or `None` when this dictionary leaves them raw (they did not shrink, or
/// are larger than reads accept), and the dictionary's id. Only a codec
/// makes one; [`Codec::frame_of`] checks one against the entry it travels
/// with before the store writes it.
#[derive(Clone, PartialEq, Eq)]
pub struct Packed {
    dict: u32,
    frame: Option<Vec<u8>>,
}

impl Packed {
    /// The id of the dictionary that packed it.
    pub fn dict(&self) -> u32 {
        self.dict
    }

    /// The frame, taken; `None`: the entry stays raw.
    pub fn into_frame(self) -> Option<Vec<u8>> {
        self.frame
    }
}

impl fmt::Debug for Packed {
    // The frame's length, not its bytes: a packed entry is in every
    // `NewEntry`'s debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("dict", &self.dict)
            .field("frame_bytes", &self.frame.as_ref().map(Vec::len))
            .finish()
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("id", &self.id)
            .field("zstd_id", &self.zstd_id)
            .field("dict_bytes", &self.dict.len())
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// Prepares dictionary `dict`, stored under `id`, and checks it: it must
    /// be a zstd dictionary (as [`train`] makes) that compresses and
    /// decompresses a sample.
    pub fn new(id: u32, dict: &[u8]) -> Result<Codec, CodecError> {
        let bad = |reason| CodecError::Dictionary { id, reason };
        let zstd_id = zstd_safe::get_dict_id_from_dict(dict)
            .ok_or_else(|| bad("no zstd dictionary header"))?
            .get();
        let ddict = DDict::try_create(dict).ok_or_else(|| bad("zstd could not load it"))?;
        let codec = Codec {
            id,
            zstd_id,
            dict: dict.into(),
            ddict,
            compressors: Mutex::new(Vec::new()),
            decompressors: Mutex::new(Vec::new()),
        };
        // zstd reads the dictionary's tables for compression at the first
        // frame: try one, which also leaves a context in the pool.
        let probe = br#"{"body":{"probe":"probe probe probe probe"},"kind":"probe"}"#;
        let mut cctx = codec.compressor()?;
        let mut frame = Vec::with_capacity(zstd_safe::compress_bound(probe.len()));
        cctx.compress2(&mut frame, probe)
            .map_err(|code| bad(zstd_safe::get_error_name(code)))?;
        put_back(&codec.compressors, cctx);
        match codec.decompress(&frame, probe.len()) {
            Ok(back) if back == probe => Ok(codec),
            Ok(_) => Err(bad("a probe did not decompress to itself")),
            Err(_) => Err(bad("a probe did not decompress")),
        }
    }

    /// The dictionary's id in the store.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Compresses one entry's record bytes: `Some` only when the frame is
    /// smaller than `data`; `None` means "store it raw" (it did not shrink,
    /// or zstd could not run, which only a failed allocation makes it do).
    pub fn compress(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut cctx = self.compressor().ok()?;
        // Room for one byte less than the entry: a frame that does not fit
        // would not be smaller, and zstd stops with an error.
        let mut frame = Vec::with_capacity(data.len().checked_sub(1)?);
        let done = cctx.compress2(&mut frame, data);
        // zstd_safe ends every one-shot call, failed or not, by resetting
        // the context's session (its parameters and dictionary stay).
        put_back(&self.compressors, cctx);
        done.ok().map(|_| frame)
    }

    /// An entry's record bytes compressed ahead of its write, with this
    /// codec's dictionary: the frame, or none when the entry stays raw
    /// (larger than reads accept,
    /// [`MAX_ENTRY_SIZE`](daylight_core::tile::MAX_ENTRY_SIZE), or not made
    /// smaller, as [`compress`](Codec::compress) answers).
    pub fn pack(&self, data: &[u8]) -> Packed {
        let frame = (data.len() <= daylight_core::tile::MAX_ENTRY_SIZE)
            .then(|| self.compress(data))
            .flatten();
        Packed {
            dict: self.id,
            frame,
        }
    }

    /// What `packed` says `data` is stored as with this codec: `Some(None)`
    /// raw, `Some(Some(frame))` that frame; `None` when `packed` is not
    /// this codec's for `data` (another dictionary id, or a frame whose
    /// header names another zstd dictionary or another content size: ids
    /// are per log, so another log's packing is refused here), and the
    /// entry must be packed again.
    pub fn frame_of<'a>(&self, data: &[u8], packed: &'a Packed) -> Option<Option<&'a [u8]>> {
        if packed.dict != self.id {
            return None;
        }
        let Some(frame) = &packed.frame else {
            return Some(None);
        };
        let dict = zstd_safe::get_dict_id_from_frame(frame).map(|d| d.get());
        let size = zstd_safe::get_frame_content_size(frame).ok().flatten();
        (dict == Some(self.zstd_id) && size == u64::try_from(data.len()).ok())
            .then_some(Some(frame.as_slice()))
    }

    /// Decompresses what [`compress`](Codec::compress) made, refusing
    /// anything that is not exactly one intact frame of this dictionary of at
    /// most `max_len` bytes (the record size cap,
    /// `daylight_core::tile::MAX_ENTRY_SIZE`).
    pub fn decompress(&self, stored: &[u8], max_len: usize) -> Result<Vec<u8>, CodecError> {
        let id = self.id;
        let corrupt = |reason| CodecError::Corrupt { id, reason };
        if !stored.starts_with(&FRAME_MAGIC) {
            return Err(corrupt("not a zstd frame"));
        }
        let size = match zstd_safe::get_frame_content_size(stored) {
            Ok(Some(size)) => size,
            Ok(None) => return Err(corrupt("the frame does not record its content size")),
            Err(_) => return Err(corrupt("unreadable frame header")),
        };
        let len = match usize::try_from(size) {
            Ok(len) if len <= max_len => len,
            _ => {
                return Err(CodecError::TooLarge {
                    id,
                    size,
                    max: max_len,
                })
            }
        };
        match zstd_safe::find_frame_compressed_size(stored) {
            Ok(n) if n == stored.len() => {}
            Ok(_) => return Err(corrupt("bytes after the frame")),
            Err(code) => return Err(corrupt(zstd_safe::get_error_name(code))),
        }
        // Without its checksum flag a frame would escape the content check
        // (and its last four bytes would be left over, but say it plainly).
        if stored.get(4).is_none_or(|d| d & CHECKSUM_FLAG == 0) {
            return Err(corrupt("the frame carries no content checksum"));
        }
        let found = zstd_safe::get_dict_id_from_frame(stored).map(|d| d.get());
        if found != Some(self.zstd_id) {
            return Err(CodecError::WrongDictionary {
                id,
                expected: self.zstd_id,
                found,
            });
        }
        let mut dctx = self.decompressor()?;
        let mut data = Vec::with_capacity(len);
        let done = dctx.decompress_using_ddict(&mut data, stored, &self.ddict);
        // Each one-shot call starts the context afresh from the dictionary.
        put_back(&self.decompressors, dctx);
        match done {
            Ok(n) if n == len && data.len() == len => Ok(data),
            Ok(_) => Err(corrupt("the content is not the size its frame records")),
            Err(code) => Err(corrupt(zstd_safe::get_error_name(code))),
        }
    }

    /// An idle compression context, or a new one with the dictionary loaded.
    fn compressor(&self) -> Result<CCtx<'static>, CodecError> {
        if let Some(cctx) = take(&self.compressors) {
            return Ok(cctx);
        }
        let mut cctx = CCtx::try_create().ok_or(CodecError::Context("compression"))?;
        let bad = |code| CodecError::Dictionary {
            id: self.id,
            reason: zstd_safe::get_error_name(code),
        };
        for parameter in [
            CParameter::CompressionLevel(LEVEL),
            CParameter::ContentSizeFlag(true),
            CParameter::ChecksumFlag(true),
            CParameter::DictIdFlag(true),
        ] {
            cctx.set_parameter(parameter).map_err(bad)?;
        }
        cctx.load_dictionary(&self.dict).map_err(bad)?;
        Ok(cctx)
    }

    /// An idle decompression context, or a new one.
    fn decompressor(&self) -> Result<DCtx<'static>, CodecError> {
        match take(&self.decompressors) {
            Some(dctx) => Ok(dctx),
            None => DCtx::try_create().ok_or(CodecError::Context("decompression")),
        }
    }
}

/// An idle context from `pool`, if any.
fn take<T>(pool: &Mutex<Vec<T>>) -> Option<T> {
    // Nothing can panic while the lock is held: a poisoned pool is as good.
    pool.lock().unwrap_or_else(PoisonError::into_inner).pop()
}

/// Returns a context to `pool`, or drops it when the pool is full.
fn put_back<T>(pool: &Mutex<Vec<T>>, context: T) {
    let mut idle = pool.lock().unwrap_or_else(PoisonError::into_inner);
    if idle.len() < POOL_MAX {
        idle.push(context);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use daylight_core::tile::MAX_ENTRY_SIZE;

    /// A small deterministic generator (xorshift64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn hex(&mut self, n: usize) -> String {
            self.bytes(n).iter().map(|b| format!("{b:02x}")).collect()
        }
    }

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// A record like the log's: canonical JSON around random hashes and a
    /// signature.
    fn record(rng: &mut Rng, n: usize) -> Vec<u8> {
        let (jurisdiction, legal_basis, court) = [
            (
                "US",
                "18 U.S.C. 2518",
                "U.S. District Court for the District of Columbia",
            ),
            (
                "US-CA",
                "Cal. Penal Code 629.50",
                "Superior Court of California",
            ),
            (
                "GB",
                "Investigatory Powers Act 2016 s.19",
                "Judicial Commissioner",
            ),
            ("DE", "StPO 100a", "Amtsgericht Tiergarten"),
            (
                "FR",
                "Code de procedure penale art. 100",
                "Juge d'instruction",
            ),
        ][rng.below(5)];
        let provider = rng.pick(&["cloud.example", "messenger.example", "device.example"]);
        let offence = rng.pick(&["homicide", "terrorism", "drug_trafficking", "fraud"]);
        let kind = rng.pick(&["request", "request", "request", "emergency"]);
        let targets: Vec<String> = (0..1 + rng.below(3))
            .map(|_| format!("\"{}\"", rng.hex(32)))
            .collect();
        let day = 1 + rng.below(28);
        format!(
            concat!(
                r#"{{"body":{{"case_reference":"CASE-{n:07}","data_categories":["content","stored_keys"],"#,
                r#""issuing_authority":{{"name":"{court}","type":"court"}},"jurisdiction":"{j}","#,
                r#""legal_basis":"{lb}","offence":"{off}","order_document":"{doc}","provider":"{p}","#,
                r#""sealed_until":"2027-04-{d:02}T13:58:03Z","target_count":{tc},"target_type":"account","#,
                r#""targets":[{t}],"valid_from":"2026-12-{d:02}T13:58:03Z","valid_until":"2027-01-{d:02}T13:58:03Z"}},"#,
                r#""created":"2026-12-{d:02}T13:58:03Z","kind":"{k}","log":"daylight.example/records","#,
                r#""signature":"{sig}","signer":{{"key_id":"{kid}","name":"agency-{a}.example"}},"version":2}}"#
            ),
            n = n,
            court = court,
            j = jurisdiction,
            lb = legal_basis,
            off = offence,
            doc = rng.hex(32),
            p = provider,
            d = day,
            tc = targets.len(),
            t = targets.join(","),
            k = kind,
            sig = base64(&rng.bytes(64)),
            kid = rng.hex(4),
            a = rng.below(6),
        )
        .into_bytes()
    }

    fn records(seed: u64, from: usize, count: usize) -> Vec<Vec<u8>> {
        let mut rng = Rng(seed);
        (from..from + count).map(|n| record(&mut rng, n)).collect()
    }

    fn codec(id: u32, seed: u64) -> Codec {
        let samples = records(seed, 0, 1024);
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        Codec::new(id, &train(&refs).unwrap()).unwrap()
    }

    #[test]
    fn codec_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Codec>();
    }

    #[test]
    fn round_trip_of_many_records_is_smaller() {
        let codec = codec(1, 7);
        let (mut raw, mut stored) = (0, 0);
        for data in records(8, 1024, 3000) {
            let frame = codec.compress(&data).unwrap();
            assert!(frame.len() < data.len());
            assert_eq!(codec.decompress(&frame, MAX_ENTRY_SIZE).unwrap(), data);
            raw += data.len();
            stored += frame.len();
        }
        // These records keep about 39% at level -1 (28% at level 1; a third
        // of their bytes are random), and about 43% of what zstd makes of
        // them without a dictionary.
        assert!(stored * 100 < raw * 45, "{stored} of {raw} bytes");
        let mut plain = 0;
        for data in records(8, 1024, 300) {
            plain += zstd::bulk::compress(&data, LEVEL).unwrap().len();
        }
        let dictionary: usize = records(8, 1024, 300)
            .iter()
            .map(|d| codec.compress(d).unwrap().len())
            .sum();
        assert!(
            dictionary * 10 < plain * 6,
            "{dictionary} vs {plain} without"
        );
    }

    #[test]
    fn round_trip_from_threads() {
        let codec = codec(1, 7);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let codec = &codec;
                scope.spawn(move || {
                    for data in records(100 + t, 0, 300) {
                        let frame = codec.compress(&data).unwrap();
                        assert_eq!(codec.decompress(&frame, MAX_ENTRY_SIZE).unwrap(), data);
                    }
                });
            }
        });
    }

    /// A packing is the codec's frame of the entry, or "raw" for what
    /// does not shrink and for what reads would not accept; `frame_of`
    /// gives it back only for its own entry and dictionary.
    #[test]
    fn a_packing_is_checked_against_its_entry_and_dictionary() {
        let (codec, other, renumbered) = (codec(1, 7), codec(1, 8), codec(2, 7));
        let data = records(8, 1024, 2);
        let packed = codec.pack(&data[0]);
        let frame = codec.frame_of(&data[0], &packed).unwrap().unwrap();
        assert_eq!(codec.decompress(frame, MAX_ENTRY_SIZE).unwrap(), data[0]);
        // Another entry of another length, another log's dictionary under
        // the same id, another id.
        assert_ne!(data[0].len(), data[1].len());
        assert_eq!(codec.frame_of(&data[1], &packed), None);
        assert_eq!(other.frame_of(&data[0], &packed), None);
        assert_eq!(renumbered.frame_of(&data[0], &packed), None);
        // Raw packings: random bytes, and a record past what reads accept.
        let random = Rng(5).bytes(900);
        assert_eq!(codec.frame_of(&random, &codec.pack(&random)), Some(None));
        let mut huge = data[0].clone();
        huge.resize(MAX_ENTRY_SIZE + 1, b' ');
        assert!(codec.compress(&huge).is_some(), "it would shrink");
        assert_eq!(codec.pack(&huge).into_frame(), None);
    }

    #[test]
    fn random_and_tiny_entries_stay_raw() {
        let codec = codec(1, 7);
        let mut rng = Rng(99);
        for len in [0, 1, 16, 900, 4000] {
            assert_eq!(codec.compress(&rng.bytes(len)), None, "{len} random bytes");
        }
    }

    #[test]
    fn every_flipped_bit_and_truncation_is_refused() {
        let codec = codec(1, 7);
        for data in records(9, 5000, 3) {
            let frame = codec.compress(&data).unwrap();
            // Bit 4 of the frame header descriptor is unused: zstd ignores
            // it (RFC 8878, 3.1.1.1.1), and the content is unchanged.
            const UNUSED_BIT: usize = 4 * 8 + 4;
            // Inside the block's content, a flip may turn a match's offset
            // into another that points at the same bytes: the content is
            // then the same, and its checksum rightly passes. Other bytes
            // must never come back, such flips must be rare, and a flip in
            // the headers (frame: RFC 8878, 3.1.1.1; the one block's) or in
            // the checksum is always refused.
            let fhd = frame[4];
            let window = usize::from(fhd & 0x20 == 0);
            let dict_id = [0, 1, 2, 4][usize::from(fhd & 3)];
            let size = [usize::from(fhd & 0x20 != 0), 2, 4, 8][usize::from(fhd >> 6)];
            let content = (4 + 1 + window + dict_id + size + 3) * 8..(frame.len() - 4) * 8;
            let (mut same, bits) = (0, frame.len() * 8);
            for bit in 0..bits {
                let mut bad = frame.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                match codec.decompress(&bad, MAX_ENTRY_SIZE) {
                    Err(_) => {}
                    Ok(back) if bit == UNUSED_BIT && back == data => {}
                    Ok(back) if content.contains(&bit) && back == data => same += 1,
                    Ok(back) => panic!(
                        "bit {bit} of {} flipped: {} bytes back, {}",
                        frame.len(),
                        back.len(),
                        if back == data {
                            "the same"
                        } else {
                            "different"
                        }
                    ),
                }
            }
            assert!(
                same * 100 < bits,
                "{same} of {bits} flipped bits gave the same content"
            );
            for len in 0..frame.len() {
                assert!(codec.decompress(&frame[..len], MAX_ENTRY_SIZE).is_err());
            }
            let mut longer = frame.clone();
            longer.push(0);
            assert!(matches!(
                codec.decompress(&longer, MAX_ENTRY_SIZE),
                Err(CodecError::Corrupt { id: 1, .. })
            ));
            // A flip in the checksum is named as corruption.
            let mut flipped = frame.clone();
            flipped[frame.len() - 1] ^= 0x10;
            let err = codec.decompress(&flipped, MAX_ENTRY_SIZE).unwrap_err();
            assert!(matches!(err, CodecError::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn another_dictionary_is_refused() {
        let ours = codec(1, 7);
        let theirs = codec(2, 1234);
        let data = &records(10, 0, 1)[0];
        let frame = theirs.compress(data).unwrap();
        let err = ours.decompress(&frame, MAX_ENTRY_SIZE).unwrap_err();
        assert!(
            matches!(err, CodecError::WrongDictionary { id: 1, .. }),
            "{err}"
        );
        // And a frame made without a dictionary names none.
        let plain = zstd::bulk::compress(data, LEVEL).unwrap();
        assert!(ours.decompress(&plain, MAX_ENTRY_SIZE).is_err());
    }

    #[test]
    fn output_over_the_bound_is_refused() {
        let codec = codec(1, 7);
        let data = &records(11, 0, 1)[0];
        let frame = codec.compress(data).unwrap();
        let err = codec.decompress(&frame, data.len() - 1).unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { size, max, .. } if size == data.len() as u64 && max == data.len() - 1),
            "{err}"
        );
        assert_eq!(codec.decompress(&frame, data.len()).unwrap(), *data);
    }

    #[test]
    fn training_refuses_too_few_or_random_samples() {
        let few = records(12, 0, MIN_SAMPLES - 1);
        let refs: Vec<&[u8]> = few.iter().map(Vec::as_slice).collect();
        assert!(matches!(
            train(&refs),
            Err(CodecError::TooFewSamples { got, .. }) if got == MIN_SAMPLES - 1
        ));
        assert!(matches!(train(&[]), Err(CodecError::TooFewSamples { .. })));
        let mut rng = Rng(13);
        let random: Vec<Vec<u8>> = (0..512).map(|_| rng.bytes(900)).collect();
        let refs: Vec<&[u8]> = random.iter().map(Vec::as_slice).collect();
        let err = train(&refs).unwrap_err();
        assert!(
            matches!(err, CodecError::Useless { .. } | CodecError::Train { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_dictionary_must_be_a_zstd_dictionary() {
        let not = br#"{"body":{"case_reference":"CASE-0000001"}}"#;
        assert!(matches!(
            Codec::new(3, not),
            Err(CodecError::Dictionary { id: 3, .. })
        ));
        let samples = records(7, 0, 1024);
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        let mut dict = train(&refs).unwrap();
        // Damage its entropy tables, after the 8-byte header.
        for byte in &mut dict[8..40] {
            *byte = 0xFF;
        }
        assert!(matches!(
            Codec::new(4, &dict),
            Err(CodecError::Dictionary { id: 4, .. })
        ));
    }
}
