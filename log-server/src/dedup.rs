//! Finding an entry of the SQLite log by its leaf hash, without a B-tree
//! index on random keys.
//!
//! A `UNIQUE` index on the leaf hash puts every new entry on a random page
//! of the index, so a batch of 1,024 entries dirtied about as many index
//! pages (4 MB written to the WAL, and again at the checkpoint) as it wrote
//! of the entries themselves four times over: at 1M entries the write path
//! ran at a fifth of its rate without that index (BENCHMARKS.md, issue 18).
//!
//! Here the newest entries (at most [`RUN`] plus one batch) are found in an
//! exact map in memory, read back from the `entries` table at open. Once
//! [`RUN`] of them have gathered they are written out, in the append's own
//! transaction, as a *run*: their 8-byte hash prefixes sorted (written in
//! order, so a few hundred pages for the whole run), with a Bloom filter of
//! 16 bits per entry (10 in older logs) kept on disk and in memory. A new
//! log writes a run's sorted prefixes in blocks of [`BLOCK_PAIRS`], one row
//! each ([`RunLayout::Blocks`]); older logs write one row per entry
//! ([`RunLayout::Rows`]), which cost about a third of the write path's SQL
//! when a run was written. Each run is read from the table that holds it,
//! whichever binary wrote it. Every [`GENERATION`] runs also share a
//! filter over their prefixes, made in memory at open and as runs are
//! written. A lookup that misses the map asks each generation's filter,
//! then the filters of the runs of a generation that may hold the hash
//! (laid out so that they are one contiguous stretch of memory), and reads
//! only the runs whose own filter may hold it too: a block per generation
//! and rarely more, rather than one per run. Every candidate is confirmed
//! against the full leaf hash in `entries`. A Bloom filter has no false
//! negatives, so a stored entry is always found. The generations' filters
//! cost 4 MB of memory per 16 runs (2 bytes per entry once full, 20 MB at
//! 10M entries) and, at open, a read of every run's prefixes (about
//! 0.5-0.9 s at 10M): a run whose prefixes are damaged or missing keeps the
//! log from opening, rather than from finding its entries.
//!
//! Another process (an offline `daylight log` command) may append to the
//! same file: before answering, the map reads whatever entries and runs
//! appeared since it last looked.

use std::collections::HashMap;

use daylight_core::Hash;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::sqlite::{hash_of, i64_of, u64_of};
use crate::store::StoreError;

/// What a negative index read from the runs is called in the error.
const RUN_INDEX: &str = "index in the leaf runs";

/// Entries per run: the in-memory map holds at most this many plus one
/// batch (about 8 MB), and a 10M-entry log has 76 runs.
pub const RUN: u64 = 1 << 17;

/// The tables of the runs: `leaf_runs` for [`RunLayout::Rows`],
/// `leaf_blocks` for [`RunLayout::Blocks`] (each run is in one of them).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leaf_runs (
    run INTEGER NOT NULL,
    key INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (run, key, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leaf_blocks (
    run INTEGER NOT NULL,
    first_key INTEGER NOT NULL,
    first_idx INTEGER NOT NULL,
    pairs BLOB NOT NULL,
    PRIMARY KEY (run, first_key, first_idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    first INTEGER PRIMARY KEY,
    end INTEGER NOT NULL,
    bloom BLOB NOT NULL
);
";

/// 64-bit words per filter block: one block is one 512-bit cache line.
const WORDS: usize = 8;
/// The most probes a shape may take: 14 of 9 bits from bytes 16..32.
const MAX_PROBES: usize = 14;

/// How a log's run filters are made: bits per entry, and bits set per
/// entry inside its block. Each false positive costs a read of that run's
/// rows, so the rate that matters is the rate per run times the runs
/// asked (76 at 10M entries without the generations' filters; the runs of
/// a generation whose filter passes the leaf, a fraction of a percent of
/// lookups, with them). The reads per lookup below are without them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterShape {
    bits_per_entry: u64,
    probes: usize,
}

impl FilterShape {
    /// Logs created before: 10 bits and 7 probes, about 1% false
    /// positives per run (0.8 reads of run rows per lookup at 10M).
    pub const TEN_BITS: FilterShape = FilterShape {
        bits_per_entry: 10,
        probes: 7,
    };
    /// Logs created now: 16 bits and 11 probes, about 0.1% per run (0.08
    /// reads per lookup at 10M), for 7.5 MB more memory per 10M entries.
    pub const SIXTEEN_BITS: FilterShape = FilterShape {
        bits_per_entry: 16,
        probes: 11,
    };

    /// The filter blocks of a run of `entries`.
    fn blocks_for(self, entries: u64) -> usize {
        usize::try_from((entries * self.bits_per_entry).div_ceil(512).max(1)).unwrap_or(usize::MAX)
    }
}

/// How a run's sorted prefixes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunLayout {
    /// One `leaf_runs` row per entry: the runs of logs created before the
    /// blocks, and those a binary from before them writes into a new log.
    Rows,
    /// [`BLOCK_PAIRS`] entries to a `leaf_blocks` row: a run is written as
    /// 512 rows instead of 131,072.
    Blocks,
}

/// How a log keeps its runs: the filters' shape and the runs' layout, as
/// its [`FILTER_SHAPE_KEY`] value names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunFormat {
    /// The Bloom filters' shape.
    pub shape: FilterShape,
    /// Where the sorted prefixes are.
    pub layout: RunLayout,
}

impl RunFormat {
    /// The format a log's `meta` value names: absent in logs from before
    /// the choice (10-bit filters, rows), `16` (rows), `16-blocks`. A
    /// binary that knows only `16` refuses `16-blocks` at open, rather than
    /// look for runs in a table it does not know and miss a repeated entry.
    /// Binaries from before the 16-bit filters do not read the key: they
    /// refuse a log holding a 16-bit run (its filter's length), and a run
    /// one of them writes into a younger log is a 10-bit run of rows, read
    /// from `leaf_runs` as every run is read from the table holding it.
    pub fn from_meta(value: Option<&str>) -> Result<RunFormat, StoreError> {
        let (shape, layout) = match value {
            None => (FilterShape::TEN_BITS, RunLayout::Rows),
            Some("16") => (FilterShape::SIXTEEN_BITS, RunLayout::Rows),
            Some(BLOCKS_VALUE) => (FilterShape::SIXTEEN_BITS, RunLayout::Blocks),
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "meta {FILTER_SHAPE_KEY} is {other:?}, not \"16\" or \"{BLOCKS_VALUE}\""
                )))
            }
        };
        Ok(RunFormat { shape, layout })
    }
}

/// The [`FILTER_SHAPE_KEY`] value of a log created now: 16-bit filters,
/// [`RunLayout::Blocks`].
pub const BLOCKS_VALUE: &str = "16-blocks";

/// The `meta` key naming a log's [`RunFormat`]: [`BLOCKS_VALUE`] in logs
/// created by this version, `16` or absent before.
pub const FILTER_SHAPE_KEY: &str = "leaf_filter_bits";

/// Entries per `leaf_blocks` row: 3 KB of pairs, five to a 16 KB page (and
/// inside SQLite's limit for a row kept in its page, about 4 KB at that page
/// size: only logs made with 16 KB pages write blocks).
pub const BLOCK_PAIRS: usize = 256;

/// Bytes of one pair in a block: the run key (8 bytes, big-endian), then
/// the entry's offset in its run (4 bytes, big-endian).
const PAIR: usize = 12;

/// The offsets in its run of every pair of `pairs` (a block of a run of
/// `run` entries, starting with the pair (`first_key`, `first_offset`))
/// whose key is `key`. The block is checked whole first: [`BLOCK_PAIRS`]
/// pairs (or what a run's last block holds past its full ones), sorted by
/// key then offset, every offset inside the run, its first pair the one its
/// row names; anything else is corrupt, never "not found". (A block row
/// deleted outright is not noticed here, as a deleted `leaf_runs` row was
/// not: that would take reading the whole run.)
fn offsets_in_block(
    pairs: &[u8],
    first_key: i64,
    first_offset: u64,
    key: i64,
    run: u64,
) -> Result<Vec<u64>, StoreError> {
    let corrupt = |what: String| Err(StoreError::Corrupt(format!("a leaf block {what}")));
    // `write_run` cuts a run into full blocks and one holding the rest.
    let rest = (run % BLOCK_PAIRS as u64) as usize;
    let n = pairs.len() / PAIR;
    if pairs.len() % PAIR != 0 || !(n == BLOCK_PAIRS || (n == rest && rest > 0)) {
        return corrupt(format!(
            "has {} bytes, not {BLOCK_PAIRS} pairs of {PAIR}{}",
            pairs.len(),
            if rest > 0 {
                format!(" or the {rest} of a run's last block")
            } else {
                String::new()
            }
        ));
    }
    let decoded: Vec<(i64, u64)> = pairs.chunks_exact(PAIR).map(decode_pair).collect();
    if decoded[0] != (first_key, first_offset) {
        return corrupt(format!(
            "starts with ({}, {}), not the ({first_key}, {first_offset}) its row names",
            decoded[0].0, decoded[0].1
        ));
    }
    if let Some(w) = decoded.windows(2).find(|w| w[0] >= w[1]) {
        return corrupt(format!("is out of order at ({}, {})", w[1].0, w[1].1));
    }
    if let Some(&(_, offset)) = decoded.iter().find(|(_, o)| *o >= run) {
        return corrupt(format!("names offset {offset} in a run of {run}"));
    }
    let from = decoded.partition_point(|(k, _)| *k < key);
    Ok(decoded[from..]
        .iter()
        .take_while(|(k, _)| *k == key)
        .map(|&(_, o)| o)
        .collect())
}

/// One [`PAIR`] of a block: its run key and its offset in the run.
fn decode_pair(p: &[u8]) -> (i64, u64) {
    let mut k = [0u8; 8];
    k.copy_from_slice(&p[..8]);
    let mut o = [0u8; 4];
    o.copy_from_slice(&p[8..PAIR]);
    (i64::from_be_bytes(k), u64::from(u32::from_be_bytes(o)))
}

/// The `pairs` column of a `leaf_blocks` row of the run starting at
/// `first`, at `column`.
fn block_pairs<'r>(
    row: &'r rusqlite::Row<'_>,
    column: usize,
    first: u64,
) -> Result<&'r [u8], StoreError> {
    row.get_ref(column)?
        .as_blob()
        .map_err(|_| StoreError::Corrupt(format!("a leaf block of run {first} is not a blob")))
}

/// The run's sort key of a leaf: its first 8 bytes (uniform: a SHA-256
/// output), as SQLite's signed integer.
fn key_of(leaf: &Hash) -> i64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&leaf.as_bytes()[..8]);
    i64::from_be_bytes(k)
}

/// Where a leaf's bits are: its block, and `probes` bits inside it (the
/// rest of the array unused). Bytes 8..16 of the hash choose the block and
/// 16..32 the bits, 9 at a time from the lowest, so they are independent
/// of the run key (and a 7-probe filter's bits are those logs written
/// before the shapes had).
fn bloom_position(leaf: &Hash, blocks: usize, probes: usize) -> (usize, [u16; MAX_PROBES]) {
    let b = leaf.as_bytes();
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[8..16]);
    let block = (u64::from_le_bytes(w) % blocks as u64) as usize;
    let mut wide = [0u8; 16];
    wide.copy_from_slice(&b[16..32]);
    let mut bits = u128::from_le_bytes(wide);
    let mut out = [0u16; MAX_PROBES];
    for o in out.iter_mut().take(probes.min(MAX_PROBES)) {
        *o = (bits & 511) as u16;
        bits >>= 9;
    }
    (block, out)
}

/// Runs per generation: one filter over the prefixes of this many runs
/// is asked before their own filters.
const GENERATION: usize = 16;

/// The shape of a generation's filter, over the runs' 8-byte prefixes: it
/// is made in memory (at open from the prefixes on disk, then as runs are
/// written), so it is not part of the log's format.
const GENERATION_SHAPE: FilterShape = FilterShape {
    bits_per_entry: 16,
    probes: 7,
};

/// Where a run key's bits are in a generation's filter: its block from the
/// key, its bits from the key mixed (SplitMix64's finalizer), 9 at a time.
/// The key is uniform (a SHA-256 prefix), so both are.
fn generation_position(key: i64, blocks: usize) -> (usize, [u16; MAX_PROBES]) {
    let x = u64::from_ne_bytes(key.to_ne_bytes());
    let block = (x % blocks as u64) as usize;
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let mut out = [0u16; MAX_PROBES];
    for o in out.iter_mut().take(GENERATION_SHAPE.probes) {
        *o = (z & 511) as u16;
        z >>= 9;
    }
    (block, out)
}

/// Sets `bits` in `block` (one filter block of [`WORDS`] words).
fn set_bits(block: &mut [u64], bits: &[u16]) {
    for b in bits {
        block[usize::from(*b) / 64] |= 1 << (b % 64);
    }
}

/// The bits of `bits` as a block's mask.
fn mask_of(bits: &[u16]) -> [u64; WORDS] {
    let mut mask = [0u64; WORDS];
    set_bits(&mut mask, bits);
    mask
}

/// Whether a block holds every bit of `mask`.
fn holds(block: &[u64], mask: &[u64; WORDS]) -> bool {
    block.iter().zip(mask).all(|(w, m)| w & m == *m)
}

/// Every run's Bloom filter, block-major: block `h` of every run sits
/// together, so one lookup reads one stretch of `runs * 64` bytes. All runs
/// hold [`RUN`] entries, so they have the same number of blocks.
///
/// Above them, one filter per [`GENERATION`] runs over their prefixes: a
/// lookup asks those (one block each) and reads the runs' own blocks only
/// in a generation that may hold the leaf. Without them, every lookup read
/// a block of every run, 76 at 10M entries: 4.9 KB from memory the write
/// path's SQLite work keeps out of the CPU's caches, a fifth of the
/// integration's time there (BENCHMARKS.md, issue 18).
#[derive(Default)]
struct Filters {
    blocks: usize,
    probes: usize,
    /// Each run's first index, oldest first (its `run` column); one per
    /// filter held.
    firsts: Vec<u64>,
    /// Where each run's prefixes are, in the order of `firsts`.
    layouts: Vec<RunLayout>,
    words: Vec<u64>,
    /// Blocks of a generation's filter.
    generation_blocks: usize,
    /// The filter of runs `g * GENERATION ..` (the last one filling), in
    /// [`GENERATION_SHAPE`], over the runs' prefixes.
    generations: Vec<Vec<u64>>,
}

impl Filters {
    fn new(run: u64, shape: FilterShape) -> Filters {
        Filters {
            blocks: shape.blocks_for(run),
            probes: shape.probes,
            firsts: Vec::new(),
            layouts: Vec::new(),
            words: Vec::new(),
            generation_blocks: GENERATION_SHAPE.blocks_for(run * GENERATION as u64),
            generations: Vec::new(),
        }
    }

    /// Adds the filter of the run starting at `first` (its `blocks *
    /// WORDS` words, block by block), whose prefixes are in `layout`, and
    /// its prefixes `keys` to its generation's filter.
    fn push(&mut self, first: u64, filter: &[u64], layout: RunLayout, keys: &[i64]) {
        let runs = self.firsts.len();
        if runs % GENERATION == 0 {
            self.generations
                .push(vec![0u64; self.generation_blocks * WORDS]);
        }
        if let Some(generation) = self.generations.last_mut() {
            for &key in keys {
                let (block, bits) = generation_position(key, self.generation_blocks);
                set_bits(
                    &mut generation[block * WORDS..(block + 1) * WORDS],
                    &bits[..GENERATION_SHAPE.probes],
                );
            }
        }
        let mut words = Vec::with_capacity(self.blocks * (runs + 1) * WORDS);
        for h in 0..self.blocks {
            let at = h * runs * WORDS;
            words.extend_from_slice(&self.words[at..at + runs * WORDS]);
            words.extend_from_slice(&filter[h * WORDS..(h + 1) * WORDS]);
        }
        self.words = words;
        self.firsts.push(first);
        self.layouts.push(layout);
    }

    /// The runs whose filter may hold `leaf`: their first indexes and
    /// layouts.
    fn maybe(&self, leaf: &Hash) -> Vec<(u64, RunLayout)> {
        let runs = self.firsts.len();
        if runs == 0 {
            return Vec::new();
        }
        let (g_block, g_bits) = generation_position(key_of(leaf), self.generation_blocks);
        let g_mask = mask_of(&g_bits[..GENERATION_SHAPE.probes]);
        let (block, bits) = bloom_position(leaf, self.blocks, self.probes);
        let mask = mask_of(&bits[..self.probes]);
        let at = block * runs * WORDS;
        let mut found = Vec::new();
        for (g, generation) in self.generations.iter().enumerate() {
            let from = g_block * WORDS;
            if !holds(&generation[from..from + WORDS], &g_mask) {
                continue;
            }
            let lo = g * GENERATION;
            let hi = (lo + GENERATION).min(runs);
            found.extend(
                self.words[at + lo * WORDS..at + hi * WORDS]
                    .chunks_exact(WORDS)
                    .zip(self.firsts[lo..hi].iter().zip(&self.layouts[lo..hi]))
                    .filter(|(w, _)| holds(w, &mask))
                    .map(|(_, (&first, &layout))| (first, layout)),
            );
        }
        found
    }

    /// One run's filter over `leaves`, in this set's shape.
    fn filter_of<'a>(&self, leaves: impl Iterator<Item = &'a Hash>) -> Vec<u64> {
        let mut words = vec![0u64; self.blocks * WORDS];
        for leaf in leaves {
            let (block, bits) = bloom_position(leaf, self.blocks, self.probes);
            set_bits(
                &mut words[block * WORDS..(block + 1) * WORDS],
                &bits[..self.probes],
            );
        }
        words
    }
}

/// Where the run starting at `first` keeps its prefixes: the table that
/// holds them, whichever binary wrote it (an older one writes rows into a
/// log whose own runs are blocks). A run in neither is corrupt.
fn layout_of(conn: &Connection, first: u64) -> Result<RunLayout, StoreError> {
    let run = i64_of(first)?;
    let held = |sql: &str| -> Result<bool, StoreError> {
        Ok(conn.prepare_cached(sql)?.query_row([run], |r| r.get(0))?)
    };
    if held("SELECT EXISTS (SELECT 1 FROM leaf_blocks WHERE run = ?1)")? {
        Ok(RunLayout::Blocks)
    } else if held("SELECT EXISTS (SELECT 1 FROM leaf_runs WHERE run = ?1)")? {
        Ok(RunLayout::Rows)
    } else {
        Err(StoreError::Corrupt(format!(
            "leaf run {first} has no prefixes in leaf_blocks or leaf_runs"
        )))
    }
}

/// The prefixes of the run starting at `first`, kept in `layout` (for its
/// generation's filter), in their stored order.
/// A run whose rows do not hold `entries` prefixes is corrupt: a prefix
/// missing from its generation's filter would be a stored leaf not found.
fn run_keys(
    conn: &Connection,
    first: u64,
    layout: RunLayout,
    entries: u64,
) -> Result<Vec<i64>, StoreError> {
    let keys = read_run_keys(conn, first, layout)?;
    if keys.len() as u64 != entries {
        return Err(StoreError::Corrupt(format!(
            "leaf run {first} holds {} prefixes, not {entries}",
            keys.len()
        )));
    }
    Ok(keys)
}

fn read_run_keys(conn: &Connection, first: u64, layout: RunLayout) -> Result<Vec<i64>, StoreError> {
    let run = i64_of(first)?;
    match layout {
        RunLayout::Rows => {
            let mut stmt = conn.prepare_cached("SELECT key FROM leaf_runs WHERE run = ?1")?;
            let keys = stmt
                .query_map([run], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(keys)
        }
        RunLayout::Blocks => {
            let mut stmt = conn.prepare_cached("SELECT pairs FROM leaf_blocks WHERE run = ?1")?;
            let mut rows = stmt.query([run])?;
            let mut keys = Vec::new();
            while let Some(row) = rows.next()? {
                let pairs = block_pairs(row, 0, first)?;
                if pairs.len() % PAIR != 0 {
                    return Err(StoreError::Corrupt(format!(
                        "a leaf block of run {first} has {} bytes, not whole pairs of {PAIR}",
                        pairs.len()
                    )));
                }
                keys.extend(pairs.chunks_exact(PAIR).map(|p| decode_pair(p).0));
            }
            Ok(keys)
        }
    }
}

/// The leaf-hash lookup of one open SQLite log.
pub struct Dedup {
    run: u64,
    /// The layout this process writes new runs in (the log's format);
    /// each run already written is read in its own ([`layout_of`]).
    layout: RunLayout,
    /// Entries `[flushed, seen)` by leaf hash.
    recent: HashMap<Hash, u64>,
    /// Where the runs end and the map begins.
    flushed: u64,
    /// How much of the log the runs and the map cover.
    seen: u64,
    /// The runs of the log's [`FilterShape`].
    filters: Filters,
    /// Runs whose filters have the other [`FilterShape`] (written by a
    /// binary of the other shape, before an upgrade or after a rollback):
    /// read, never written.
    other: Filters,
}

/// What an append adds, applied to the map once its transaction commits.
pub struct Pending {
    leaves: Vec<Hash>,
    first: u64,
    /// The runs written in the transaction: (first index, filter words,
    /// prefixes).
    runs: Vec<(u64, Vec<u64>, Vec<i64>)>,
}

impl Dedup {
    /// The lookup of the log in `conn`, read from its runs and its newest
    /// entries.
    pub fn load(conn: &Connection, format: RunFormat) -> Result<Dedup, StoreError> {
        Self::load_with_run(conn, RUN, format)
    }

    /// [`Dedup::load`] with runs of `run` entries (tests use small ones).
    pub fn load_with_run(
        conn: &Connection,
        run: u64,
        format: RunFormat,
    ) -> Result<Dedup, StoreError> {
        let shape = format.shape;
        let mut d = Dedup {
            run,
            layout: format.layout,
            recent: HashMap::new(),
            flushed: 0,
            seen: 0,
            filters: Filters::new(run, shape),
            other: Filters::new(
                run,
                if shape == FilterShape::TEN_BITS {
                    FilterShape::SIXTEEN_BITS
                } else {
                    FilterShape::TEN_BITS
                },
            ),
        };
        d.catch_up(conn)?;
        Ok(d)
    }

    /// Reads the runs and entries another writer added since this map last
    /// looked. Call inside the writer's transaction before an append, and
    /// before answering a lookup.
    pub fn catch_up(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let size = crate::sqlite::size_of(conn)?;
        // A reader's snapshot may be older than what this map holds.
        if size <= self.seen {
            return Ok(());
        }
        let mut stmt = conn.prepare_cached(
            "SELECT first, end, bloom FROM runs WHERE first >= ?1 ORDER BY first",
        )?;
        let mut rows = stmt.query([i64_of(self.flushed)?])?;
        while let Some(r) = rows.next()? {
            let (first, end): (i64, i64) = (r.get(0)?, r.get(1)?);
            let (first, end) = (u64_of(first, RUN_INDEX)?, u64_of(end, RUN_INDEX)?);
            let bloom: Vec<u8> = r.get(2)?;
            if first != self.flushed || end != first + self.run {
                return Err(StoreError::Corrupt(format!(
                    "leaf run [{first}, {end}) does not follow the runs ending at {} with {} entries",
                    self.flushed, self.run
                )));
            }
            // Which shape a run has is told by its filter's length (the
            // two shapes' differ for runs of RUN entries).
            let filters = if bloom.len() == self.filters.blocks * WORDS * 8 {
                &mut self.filters
            } else if bloom.len() == self.other.blocks * WORDS * 8 {
                &mut self.other
            } else {
                return Err(StoreError::Corrupt(format!(
                    "leaf run {first}'s filter has {} bytes",
                    bloom.len()
                )));
            };
            let words: Vec<u64> = bloom
                .chunks_exact(8)
                .map(|c| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(c);
                    u64::from_le_bytes(w)
                })
                .collect();
            let layout = layout_of(conn, first)?;
            let keys = run_keys(conn, first, layout, self.run)?;
            filters.push(first, &words, layout, &keys);
            self.flushed = end;
        }
        drop(rows);
        self.recent.retain(|_, i| *i >= self.flushed);
        let from = self.seen.max(self.flushed);
        let mut stmt =
            conn.prepare_cached("SELECT idx, leaf_hash FROM entries WHERE idx >= ?1 ORDER BY idx")?;
        let mut rows = stmt.query([i64_of(from)?])?;
        while let Some(r) = rows.next()? {
            let idx = u64_of(r.get(0)?, "entry index")?;
            let leaf: Vec<u8> = r.get(1)?;
            self.recent.insert(hash_of(leaf)?, idx);
        }
        self.seen = size;
        Ok(())
    }

    /// The index of the entry whose leaf hash is `leaf`, reading candidate
    /// runs through `conn`.
    pub fn find(&self, conn: &Connection, leaf: &Hash) -> Result<Option<u64>, StoreError> {
        if let Some(&i) = self.recent.get(leaf) {
            return Ok(Some(i));
        }
        let mut runs = self.filters.maybe(leaf);
        runs.extend(self.other.maybe(leaf));
        if runs.is_empty() {
            return Ok(None);
        }
        let mut confirm = conn.prepare_cached("SELECT leaf_hash FROM entries WHERE idx = ?1")?;
        for (first, layout) in runs {
            for idx in self.candidates(conn, first, layout, key_of(leaf))? {
                let stored: Option<Vec<u8>> =
                    confirm.query_row([idx], |row| row.get(0)).optional()?;
                if stored.as_deref() == Some(leaf.as_bytes().as_slice()) {
                    return Ok(Some(u64_of(idx, RUN_INDEX)?));
                }
            }
        }
        Ok(None)
    }

    /// The indexes of the run starting at `first`, kept in `layout`, whose
    /// leaf has `key`.
    fn candidates(
        &self,
        conn: &Connection,
        first: u64,
        layout: RunLayout,
        key: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let run = i64_of(first)?;
        match layout {
            RunLayout::Rows => {
                let mut probe =
                    conn.prepare_cached("SELECT idx FROM leaf_runs WHERE run = ?1 AND key = ?2")?;
                let found = probe
                    .query_map(params![run, key], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(found)
            }
            RunLayout::Blocks => {
                // The pairs with this key are in the blocks that start with
                // it, and may begin in the last block that starts below it:
                // read from the newest such block down to that one.
                let mut blocks = conn.prepare_cached(
                    "SELECT first_key, first_idx, pairs FROM leaf_blocks
                     WHERE run = ?1 AND first_key <= ?2
                     ORDER BY first_key DESC, first_idx DESC",
                )?;
                let mut rows = blocks.query(params![run, key])?;
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    let first_key: i64 = row.get(0)?;
                    let first_offset = u64_of(row.get(1)?, RUN_INDEX)?
                        .checked_sub(first)
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "a leaf block of run {first} starts before it"
                            ))
                        })?;
                    let pairs = block_pairs(row, 2, first)?;
                    for offset in offsets_in_block(pairs, first_key, first_offset, key, self.run)? {
                        found.push(i64_of(first + offset)?);
                    }
                    if first_key < key {
                        break;
                    }
                }
                Ok(found)
            }
        }
    }

    /// Inside the writer's transaction, after [`Dedup::catch_up`]: refuses a
    /// batch holding a leaf already in the log or twice in itself, and
    /// writes the runs the batch completes. `first` is the batch's first
    /// index. Apply the result with [`Dedup::commit`] once the transaction
    /// has committed.
    pub fn prepare(
        &self,
        conn: &Connection,
        first: u64,
        leaves: Vec<Hash>,
    ) -> Result<Pending, StoreError> {
        if first != self.seen {
            return Err(StoreError::Backend(format!(
                "the leaf lookup covers {} entries, not the {first} the batch follows",
                self.seen
            )));
        }
        let mut in_batch = HashMap::with_capacity(leaves.len());
        for (i, leaf) in leaves.iter().enumerate() {
            let index = first + i as u64;
            if let Some(at) = self.find(conn, leaf)?.or(in_batch.insert(*leaf, index)) {
                return Err(StoreError::Backend(format!(
                    "entry {index} repeats entry {at} (leaf hash {leaf})"
                )));
            }
        }
        let end = first + leaves.len() as u64;
        let mut runs = Vec::new();
        let mut start = self.flushed;
        while end - start >= self.run {
            let members: Vec<(Hash, u64)> = self
                .recent
                .iter()
                .map(|(h, &i)| (*h, i))
                .chain(
                    leaves
                        .iter()
                        .enumerate()
                        .map(|(i, h)| (*h, first + i as u64)),
                )
                .filter(|(_, i)| (start..start + self.run).contains(i))
                .collect();
            let keys: Vec<i64> = members.iter().map(|(h, _)| key_of(h)).collect();
            runs.push((start, self.write_run(conn, start, members)?, keys));
            start += self.run;
        }
        Ok(Pending {
            leaves,
            first,
            runs,
        })
    }

    /// Writes the run of `members` starting at `first`; returns its filter.
    fn write_run(
        &self,
        conn: &Connection,
        first: u64,
        mut members: Vec<(Hash, u64)>,
    ) -> Result<Vec<u64>, StoreError> {
        if members.len() as u64 != self.run {
            return Err(StoreError::Corrupt(format!(
                "leaf run at {first} has {} of its {} entries",
                members.len(),
                self.run
            )));
        }
        members.sort_unstable_by_key(|(h, i)| (key_of(h), *i));
        let run = i64_of(first)?;
        match self.layout {
            RunLayout::Rows => {
                let mut put = conn
                    .prepare_cached("INSERT INTO leaf_runs (run, key, idx) VALUES (?1, ?2, ?3)")?;
                for (h, i) in &members {
                    put.execute(params![run, key_of(h), i64_of(*i)?])?;
                }
            }
            RunLayout::Blocks => {
                let mut put = conn.prepare_cached(
                    "INSERT INTO leaf_blocks (run, first_key, first_idx, pairs) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut pairs = Vec::with_capacity(BLOCK_PAIRS * PAIR);
                for block in members.chunks(BLOCK_PAIRS) {
                    pairs.clear();
                    for (h, i) in block {
                        let offset = u32::try_from(i - first).map_err(|_| {
                            StoreError::Backend(format!("a run of {} entries", self.run))
                        })?;
                        pairs.extend_from_slice(&key_of(h).to_be_bytes());
                        pairs.extend_from_slice(&offset.to_be_bytes());
                    }
                    let (h, i) = &block[0];
                    put.execute(params![run, key_of(h), i64_of(*i)?, pairs])?;
                }
            }
        }
        let filter = self.filters.filter_of(members.iter().map(|(h, _)| h));
        let bytes: Vec<u8> = filter.iter().flat_map(|w| w.to_le_bytes()).collect();
        conn.execute(
            "INSERT INTO runs (first, end, bloom) VALUES (?1, ?2, ?3)",
            params![run, i64_of(first + self.run)?, bytes],
        )?;
        Ok(filter)
    }

    /// Applies a committed append. A reader may already have read it (a
    /// lookup that saw the commit first catches up), so what is already
    /// here is skipped.
    pub fn commit(&mut self, pending: Pending) {
        let end = pending.first + pending.leaves.len() as u64;
        let before = self.flushed;
        for (first, filter, keys) in pending.runs {
            if first == self.flushed {
                self.filters.push(first, &filter, self.layout, &keys);
                self.flushed = first + self.run;
            }
        }
        let flushed = self.flushed;
        for (i, leaf) in pending.leaves.into_iter().enumerate() {
            let index = pending.first + i as u64;
            if index >= flushed {
                self.recent.insert(leaf, index);
            }
        }
        // Only a new run moves entries out of the map (a pass over all of it).
        if flushed != before {
            self.recent.retain(|_, i| *i >= flushed);
        }
        self.seen = self.seen.max(end);
    }

    /// The layout this process writes new runs in.
    #[cfg(test)]
    pub(crate) fn layout(&self) -> RunLayout {
        self.layout
    }

    /// How many entries the lookup covers.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use daylight_core::leaf_hash;

    const SMALL: u64 = 8;

    /// Both layouts of a log's runs, at today's filter shape.
    const FORMATS: [RunFormat; 2] = [
        RunFormat {
            shape: FilterShape::SIXTEEN_BITS,
            layout: RunLayout::Rows,
        },
        RunFormat {
            shape: FilterShape::SIXTEEN_BITS,
            layout: RunLayout::Blocks,
        },
    ];

    fn open(path: &std::path::Path) -> Connection {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL);",
        )
        .unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c
    }

    fn leaf(i: u64) -> Hash {
        leaf_hash(format!("entry {i}").as_bytes())
    }

    /// What the store's append does: catch up, check, insert, commit, apply.
    fn append(d: &mut Dedup, c: &mut Connection, leaves: &[Hash]) -> Result<u64, StoreError> {
        let tx = c.transaction().unwrap();
        d.catch_up(&tx)?;
        let first = d.seen();
        let pending = d.prepare(&tx, first, leaves.to_vec())?;
        for (i, l) in leaves.iter().enumerate() {
            tx.execute(
                "INSERT INTO entries (idx, leaf_hash) VALUES (?1, ?2)",
                params![(first + i as u64) as i64, l.as_bytes().as_slice()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        d.commit(pending);
        Ok(first)
    }

    fn runs(c: &Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn every_entry_is_found_across_runs_and_after_a_reopen() {
        for format in FORMATS {
            every_entry_is_found_across_runs_and_after_a_reopen_in(format);
        }
    }

    fn every_entry_is_found_across_runs_and_after_a_reopen_in(format: RunFormat) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let mut c = open(&path);
        let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
        let mut n = 0u64;
        for size in [1u64, 7, 3, 16, 9, 1, 30, 2] {
            let leaves: Vec<Hash> = (n..n + size).map(leaf).collect();
            assert_eq!(append(&mut d, &mut c, &leaves).unwrap(), n);
            n += size;
            for i in 0..n {
                assert_eq!(d.find(&c, &leaf(i)).unwrap(), Some(i), "entry {i} of {n}");
            }
            assert_eq!(d.find(&c, &leaf(n + 1000)).unwrap(), None);
        }
        assert_eq!(runs(&c), (n / SMALL) as i64, "one run per {SMALL} entries");
        assert!(
            d.recent.len() < SMALL as usize,
            "the map keeps only the unflushed"
        );
        let again = Dedup::load_with_run(&c, SMALL, format).unwrap();
        for i in 0..n {
            assert_eq!(again.find(&c, &leaf(i)).unwrap(), Some(i));
        }
        assert_eq!(again.find(&c, &leaf(n)).unwrap(), None);
    }

    #[test]
    fn a_repeated_leaf_is_refused_wherever_the_first_one_is() {
        for format in FORMATS {
            a_repeated_leaf_is_refused_wherever_the_first_one_is_in(format);
        }
    }

    fn a_repeated_leaf_is_refused_wherever_the_first_one_is_in(format: RunFormat) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
        let leaves: Vec<Hash> = (0..20).map(leaf).collect();
        append(&mut d, &mut c, &leaves).unwrap();
        // 3 is in a run, 19 in the map, 25 twice in the batch itself.
        for (batch, first) in [
            (vec![leaf(100), leaf(3)], 3),
            (vec![leaf(19)], 19),
            (vec![leaf(25), leaf(26), leaf(25)], 20),
        ] {
            let tx = c.transaction().unwrap();
            let err = d.prepare(&tx, 20, batch).err().unwrap();
            assert!(
                err.to_string().contains(&format!("repeats entry {first}")),
                "{err}"
            );
        }
        assert_eq!(d.seen(), 20, "a refused batch changes nothing");
        assert_eq!(d.find(&c, &leaf(100)).unwrap(), None);
    }

    #[test]
    fn a_rolled_back_batch_is_not_found() {
        for format in FORMATS {
            a_rolled_back_batch_is_not_found_in(format);
        }
    }

    fn a_rolled_back_batch_is_not_found_in(format: RunFormat) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
        append(&mut d, &mut c, &(0..6).map(leaf).collect::<Vec<_>>()).unwrap();
        {
            // Completes a run inside the transaction, which then rolls back.
            let tx = c.transaction().unwrap();
            d.catch_up(&tx).unwrap();
            let _pending = d.prepare(&tx, 6, (6..12).map(leaf).collect()).unwrap();
            assert_eq!(
                tx.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get::<_, i64>(0))
                    .unwrap(),
                1
            );
        }
        assert_eq!(runs(&c), 0);
        assert_eq!(d.find(&c, &leaf(7)).unwrap(), None);
        // The same entries can then be appended for real.
        assert_eq!(
            append(&mut d, &mut c, &(6..12).map(leaf).collect::<Vec<_>>()).unwrap(),
            6
        );
        assert_eq!(d.find(&c, &leaf(7)).unwrap(), Some(7));
    }

    #[test]
    fn another_writer_s_entries_and_runs_are_read_before_answering() {
        for format in FORMATS {
            another_writer_s_entries_and_runs_are_read_before_answering_in(format);
        }
    }

    fn another_writer_s_entries_and_runs_are_read_before_answering_in(format: RunFormat) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let mut ours = open(&path);
        let mut d = Dedup::load_with_run(&ours, SMALL, format).unwrap();
        append(&mut d, &mut ours, &(0..5).map(leaf).collect::<Vec<_>>()).unwrap();
        // Another process appends 20 more (two runs) to the same file.
        let mut theirs = open(&path);
        let mut other = Dedup::load_with_run(&theirs, SMALL, format).unwrap();
        append(
            &mut other,
            &mut theirs,
            &(5..25).map(leaf).collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(d.find(&ours, &leaf(12)).unwrap(), None, "not read yet");
        d.catch_up(&ours).unwrap();
        for i in 0..25 {
            assert_eq!(d.find(&ours, &leaf(i)).unwrap(), Some(i));
        }
        // And a repeat of their entry is refused here.
        let tx = ours.transaction().unwrap();
        d.catch_up(&tx).unwrap();
        assert!(d.prepare(&tx, 25, vec![leaf(20)]).is_err());
    }

    #[test]
    fn a_hash_sharing_the_key_and_filter_bits_is_confirmed_in_full() {
        for format in FORMATS {
            a_hash_sharing_the_key_and_filter_bits_is_confirmed_in_full_in(format);
        }
    }

    fn a_hash_sharing_the_key_and_filter_bits_is_confirmed_in_full_in(format: RunFormat) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
        let leaves: Vec<Hash> = (0..SMALL).map(leaf).collect();
        append(&mut d, &mut c, &leaves).unwrap();
        assert_eq!(d.recent.len(), 0, "all in the run");
        // Same first 24 bytes (key, block, bits) as entry 3, another hash.
        let mut twin = leaves[3];
        twin.0[31] ^= 1;
        assert_eq!(
            d.filters.maybe(&twin),
            vec![(0, format.layout)],
            "the filter cannot tell"
        );
        assert_eq!(d.find(&c, &twin).unwrap(), None);
        assert_eq!(d.find(&c, &leaves[3]).unwrap(), Some(3));
    }

    #[test]
    fn a_damaged_run_list_is_corrupt() {
        for format in FORMATS {
            a_damaged_run_list_is_corrupt_in(format);
        }
    }

    fn a_damaged_run_list_is_corrupt_in(format: RunFormat) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
        append(&mut d, &mut c, &(0..30).map(leaf).collect::<Vec<_>>()).unwrap();
        c.execute("DELETE FROM runs WHERE first = 8", []).unwrap();
        let err = Dedup::load_with_run(&c, SMALL, format).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("[16, 24)"), "{err}");
        c.execute("UPDATE runs SET bloom = x'00' WHERE first = 0", [])
            .unwrap();
        let err = Dedup::load_with_run(&c, SMALL, format).err().unwrap();
        assert!(err.to_string().contains("filter has 1 bytes"), "{err}");
    }

    /// Leaves sharing a run key (an adversary can grind 8-byte
    /// collisions) are found wherever they fall: groups of one key across
    /// two blocks and more, groups of neighbouring keys, the keys at either
    /// end of the signed range and either side of zero; and one run is
    /// written as its blocks, not as rows.
    #[test]
    fn leaves_sharing_a_key_are_found_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let run = 2048;
        let mut d = Dedup::load_with_run(&c, run, FORMATS[1]).unwrap();
        let shared = |key: i64, i: u64| {
            let mut h = leaf(i);
            h.0[..8].copy_from_slice(&key.to_be_bytes());
            h
        };
        // Of every 16: 3 at the lowest key (384 of the run's 2,048), 2 at
        // -1, 1 at 0, 3 at 1, 1 at the highest, 6 spread.
        let key_for = |i: u64| match i % 16 {
            0..=2 => Some(i64::MIN),
            3 | 4 => Some(-1),
            5 => Some(0),
            6..=8 => Some(1),
            9 => Some(i64::MAX),
            _ => None,
        };
        let leaves: Vec<Hash> = (0..2500)
            .map(|i| key_for(i).map_or_else(|| leaf(i), |k| shared(k, i)))
            .collect();
        append(&mut d, &mut c, &leaves[..1000]).unwrap();
        append(&mut d, &mut c, &leaves[1000..]).unwrap();
        let count = |table: &str| -> i64 {
            c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(
            count("leaf_blocks"),
            (run as usize).div_ceil(BLOCK_PAIRS) as i64
        );
        assert_eq!(count("leaf_runs"), 0);
        let reopened = Dedup::load_with_run(&c, run, FORMATS[1]).unwrap();
        for d in [&d, &reopened] {
            for (i, l) in leaves.iter().enumerate() {
                assert_eq!(d.find(&c, l).unwrap(), Some(i as u64), "entry {i}");
            }
            for key in [i64::MIN, -1, 0, 1, i64::MAX] {
                assert_eq!(d.find(&c, &shared(key, 9999)).unwrap(), None, "{key}");
            }
        }
        let tx = c.transaction().unwrap();
        d.catch_up(&tx).unwrap();
        // Entry 2000 shares the lowest key with 383 others in the run.
        let err = d.prepare(&tx, 2500, vec![leaves[2000]]).err().unwrap();
        assert!(err.to_string().contains("repeats entry 2000"), "{err}");
    }

    /// A run whose rows hold fewer prefixes than its entries (a block cut
    /// short by whole pairs, in either layout a row deleted) keeps the log
    /// from opening: its generation's filter would miss the lost ones.
    #[test]
    fn a_run_missing_prefixes_is_corrupt_at_open() {
        for format in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let mut c = open(&dir.path().join("log.db"));
            let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
            let leaves: Vec<Hash> = (0..2 * SMALL).map(leaf).collect();
            append(&mut d, &mut c, &leaves).unwrap();
            assert!(Dedup::load_with_run(&c, SMALL, format).is_ok());
            match format.layout {
                RunLayout::Blocks => {
                    let pairs: Vec<u8> = c
                        .query_row("SELECT pairs FROM leaf_blocks WHERE run = 0", [], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    c.execute(
                        "UPDATE leaf_blocks SET pairs = ?1 WHERE run = 0",
                        [&pairs[..pairs.len() - PAIR]],
                    )
                    .unwrap();
                }
                RunLayout::Rows => {
                    c.execute(
                        "DELETE FROM leaf_runs WHERE run = 0 AND key = ?1",
                        [key_of(&leaves[3])],
                    )
                    .unwrap();
                }
            }
            let err = Dedup::load_with_run(&c, SMALL, format).err().unwrap();
            assert!(matches!(err, StoreError::Corrupt(_)), "{format:?}: {err}");
            assert!(
                err.to_string()
                    .contains(&format!("holds {} prefixes, not {SMALL}", SMALL - 1)),
                "{format:?}: {err}"
            );
        }
    }

    /// A block that is empty, cut short or too long, does not start with
    /// the pair its row names, is out of order, names an entry past its run,
    /// or starts before its run is corrupt: the lookup says so rather than
    /// answer "not in the log".
    #[test]
    fn a_damaged_block_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let mut d = Dedup::load_with_run(&c, SMALL, FORMATS[1]).unwrap();
        append(
            &mut d,
            &mut c,
            &(0..2 * SMALL).map(leaf).collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(d.find(&c, &leaf(5)).unwrap(), Some(5));
        let stored: Vec<u8> = c
            .query_row("SELECT pairs FROM leaf_blocks WHERE run = 0", [], |r| {
                r.get(0)
            })
            .unwrap();
        let good: Vec<(i64, u32)> = stored
            .chunks_exact(PAIR)
            .map(|p| {
                (
                    i64::from_be_bytes(p[..8].try_into().unwrap()),
                    u32::from_be_bytes(p[8..].try_into().unwrap()),
                )
            })
            .collect();
        assert_eq!(good.len(), SMALL as usize);
        let bytes = |pairs: &[(i64, u32)]| -> Vec<u8> {
            pairs
                .iter()
                .flat_map(|(k, o)| k.to_be_bytes().into_iter().chain(o.to_be_bytes()))
                .collect()
        };
        type Pairs = Vec<(i64, u32)>;
        let with = |f: &dyn Fn(&mut Pairs)| {
            let mut p = good.clone();
            f(&mut p);
            bytes(&p)
        };
        for (pairs, says) in [
            (Vec::new(), "has 0 bytes"),
            (vec![0], "has 1 bytes"),
            (with(&|p| p.truncate(5)), "has 60 bytes"),
            (
                with(&|p| p.extend((0..250).map(|i| (i64::MAX, 100 + i)))),
                "has 3096 bytes",
            ),
            (
                with(&|p| {
                    let (_, o) = p.remove(0);
                    p.push((i64::MAX, o));
                }),
                "starts with",
            ),
            (with(&|p| p.swap(1, 2)), "out of order"),
            (
                with(&|p| {
                    let last = p.len() - 1;
                    p[last].1 = SMALL as u32;
                }),
                "offset 8 in a run of 8",
            ),
        ] {
            c.execute("UPDATE leaf_blocks SET pairs = ?1 WHERE run = 0", [pairs])
                .unwrap();
            let err = d.find(&c, &leaf(5)).err().unwrap();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            assert!(err.to_string().contains(says), "{says}: {err}");
        }
        c.execute("UPDATE leaf_blocks SET pairs = ?1 WHERE run = 0", [stored])
            .unwrap();
        assert_eq!(d.find(&c, &leaf(5)).unwrap(), Some(5));
        // The second run's block, said to start at entry 7, in the first.
        assert_eq!(d.find(&c, &leaf(13)).unwrap(), Some(13));
        c.execute("UPDATE leaf_blocks SET first_idx = 7 WHERE run = 8", [])
            .unwrap();
        let err = d.find(&c, &leaf(13)).err().unwrap();
        assert!(err.to_string().contains("run 8 starts before it"), "{err}");
    }

    /// A binary from before the 16-bit filters, which does not read the
    /// format's key, may write a young log's first run as 10-bit rows; this
    /// version, writing blocks to the same log, reads that run from its
    /// rows. A run whose prefixes are in neither table is corrupt.
    #[test]
    fn a_run_of_rows_in_a_log_of_blocks_is_read_from_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("log.db"));
        let old = RunFormat {
            shape: FilterShape::TEN_BITS,
            layout: RunLayout::Rows,
        };
        let run = 2048;
        let leaves: Vec<Hash> = (0..5000).map(leaf).collect();
        let mut o = Dedup::load_with_run(&c, run, old).unwrap();
        append(&mut o, &mut c, &leaves[..2100]).unwrap();
        let mut d = Dedup::load_with_run(&c, run, FORMATS[1]).unwrap();
        append(&mut d, &mut c, &leaves[2100..]).unwrap();
        for again in [
            Dedup::load_with_run(&c, run, FORMATS[1]).unwrap(),
            Dedup::load_with_run(&c, run, old).unwrap(),
        ] {
            // The 16-bit run is blocks, the 10-bit one rows, whichever
            // shape the reader's own filters have.
            let (sixteen, ten) = if again.filters.probes == FilterShape::SIXTEEN_BITS.probes {
                (&again.filters, &again.other)
            } else {
                (&again.other, &again.filters)
            };
            assert_eq!(sixteen.layouts, vec![RunLayout::Blocks]);
            assert_eq!(ten.layouts, vec![RunLayout::Rows]);
            for (i, l) in leaves.iter().enumerate().step_by(7) {
                assert_eq!(again.find(&c, l).unwrap(), Some(i as u64), "entry {i}");
            }
        }
        c.execute("DELETE FROM leaf_runs", []).unwrap();
        let err = Dedup::load_with_run(&c, run, FORMATS[1]).err().unwrap();
        assert!(err.to_string().contains("run 0 has no prefixes"), "{err}");
    }

    #[test]
    fn the_meta_value_names_the_format() {
        for (value, shape, layout) in [
            (None, FilterShape::TEN_BITS, RunLayout::Rows),
            (Some("16"), FilterShape::SIXTEEN_BITS, RunLayout::Rows),
            (
                Some(BLOCKS_VALUE),
                FilterShape::SIXTEEN_BITS,
                RunLayout::Blocks,
            ),
        ] {
            assert_eq!(
                RunFormat::from_meta(value).unwrap(),
                RunFormat { shape, layout }
            );
        }
        for bad in ["10", "16-rows", "blocks", ""] {
            let err = RunFormat::from_meta(Some(bad)).err().unwrap();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// False positives of one run's filter over `RUN` entries, asked
    /// about `RUN` others; no false negatives.
    fn false_positives(shape: FilterShape) -> f64 {
        let leaves: Vec<Hash> = (0..RUN).map(leaf).collect();
        let mut f = Filters::new(RUN, shape);
        // The generation's filter holds the probes too, so that the run
        // filters alone decide.
        let keys: Vec<i64> = (0..2 * RUN).map(|i| key_of(&leaf(i))).collect();
        f.push(0, &f.filter_of(leaves.iter()), RunLayout::Blocks, &keys);
        f.push(
            RUN,
            &f.filter_of(std::iter::empty()),
            RunLayout::Blocks,
            &[],
        );
        assert!(leaves
            .iter()
            .all(|l| f.maybe(l) == vec![(0, RunLayout::Blocks)]));
        let n = (RUN..2 * RUN)
            .filter(|&i| !f.maybe(&leaf(i)).is_empty())
            .count();
        n as f64 / RUN as f64
    }

    #[test]
    fn the_filter_has_no_false_negatives_and_few_false_positives() {
        // 10 bits per entry, 7 bits in one 512-bit block: about 1%.
        let ten = false_positives(FilterShape::TEN_BITS);
        assert!((0.003..0.02).contains(&ten), "10 bits: {ten}");
        // 16 bits, 11 probes: a tenth of that or less.
        let sixteen = false_positives(FilterShape::SIXTEEN_BITS);
        assert!(sixteen < ten / 8.0, "16 bits: {sixteen} against {ten}");
    }

    #[test]
    fn a_generation_filter_rules_out_its_runs_and_never_a_member() {
        // Three generations of runs of 1,024 entries; each run's filter
        // alone would pass every leaf (all bits set), so what rules runs
        // out here is the generation's filter.
        let run = 1024u64;
        let runs = 2 * GENERATION as u64 + 3;
        let mut f = Filters::new(run, FilterShape::SIXTEEN_BITS);
        let full = vec![u64::MAX; f.blocks * WORDS];
        for r in 0..runs {
            let keys: Vec<i64> = (r * run..(r + 1) * run).map(|i| key_of(&leaf(i))).collect();
            f.push(r * run, &full, RunLayout::Blocks, &keys);
        }
        assert_eq!(f.generations.len(), 3);
        // A member: its own generation's runs, and no false negative.
        for i in (0..runs * run).step_by(7) {
            let found = f.maybe(&leaf(i));
            let own = i / run;
            assert!(
                found.contains(&(own * run, RunLayout::Blocks)),
                "entry {i} not in run {own}'s generation: {found:?}"
            );
            let g = own as usize / GENERATION;
            let own_generation = (g * GENERATION) as u64..((g + 1) * GENERATION) as u64;
            let others = found
                .iter()
                .filter(|(first, _)| !own_generation.contains(&(first / run)))
                .count();
            // Another generation's runs only on its filter's false positive.
            assert!(others <= GENERATION, "entry {i}: {found:?}");
        }
        // Not a member: nothing, but for the generations' false positives
        // (16 bits and 7 probes per prefix: well under 1%).
        let probes = 20_000u64;
        let passed: usize = (0..probes)
            .map(|i| f.maybe(&leaf(runs * run + i)).len())
            .sum();
        let rate = passed as f64 / (probes as f64 * runs as f64);
        assert!(rate < 0.01, "{passed} runs passed for {probes} leaves");
    }

    #[test]
    fn entries_are_found_across_generations_and_after_a_reopen() {
        for format in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let mut c = open(&dir.path().join("log.db"));
            let mut d = Dedup::load_with_run(&c, SMALL, format).unwrap();
            // Past two generations of runs, in batches that end runs
            // anywhere.
            let n = SMALL * (2 * GENERATION as u64 + 5) + 3;
            let mut at = 0;
            while at < n {
                let size = (at % 13 + 1).min(n - at);
                let leaves: Vec<Hash> = (at..at + size).map(leaf).collect();
                assert_eq!(append(&mut d, &mut c, &leaves).unwrap(), at);
                at += size;
            }
            assert_eq!(d.filters.generations.len(), 3, "{format:?}");
            let again = Dedup::load_with_run(&c, SMALL, format).unwrap();
            assert_eq!(again.filters.generations.len(), 3, "{format:?}");
            for lookup in [&d, &again] {
                for i in 0..n {
                    assert_eq!(lookup.find(&c, &leaf(i)).unwrap(), Some(i), "entry {i}");
                }
                assert_eq!(lookup.find(&c, &leaf(n)).unwrap(), None);
            }
            // A repeat of the first generation's first entry and of the
            // last one's is refused.
            for i in [0, SMALL * 2 * GENERATION as u64 + 1] {
                let err = append(&mut d, &mut c, &[leaf(n + 1), leaf(i)]).unwrap_err();
                assert!(
                    err.to_string().contains(&format!("repeats entry {i} ")),
                    "{err}"
                );
            }
        }
    }

    /// The first seven probes of a wider shape are the old shape's, so the
    /// bits of logs written before are read where they were written.
    #[test]
    fn seven_probes_read_the_bits_logs_wrote_before() {
        for i in 0..1000 {
            let l = leaf(i);
            let (block, bits) = bloom_position(&l, 2560, 7);
            let mut w = [0u8; 8];
            w.copy_from_slice(&l.as_bytes()[16..24]);
            let mut old = u64::from_le_bytes(w);
            for b in &bits[..7] {
                assert_eq!(u64::from(*b), old & 511);
                old >>= 9;
            }
            assert_eq!(bits[7..], [0; MAX_PROBES - 7]);
            assert_eq!(bloom_position(&l, 2560, 11).0, block);
        }
    }

    /// A log of either shape finds what it holds across runs and a reopen;
    /// runs of the other shape (an older or newer binary appended them) are
    /// read too, so a log whose shape changed finds every entry; a filter of
    /// neither length is refused.
    #[test]
    fn both_shapes_and_a_mix_find_their_entries() {
        for (shape, other) in [
            (FilterShape::TEN_BITS, FilterShape::SIXTEEN_BITS),
            (FilterShape::SIXTEEN_BITS, FilterShape::TEN_BITS),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut c = open(&dir.path().join("d.db"));
            let run = 2048;
            let rows = |shape| RunFormat {
                shape,
                layout: RunLayout::Rows,
            };
            let mut d = Dedup::load_with_run(&c, run, rows(shape)).unwrap();
            let leaves: Vec<Hash> = (0..5000).map(leaf).collect();
            append(&mut d, &mut c, &leaves).unwrap();
            // Another binary, of the other shape, appends two more runs.
            let mut o = Dedup::load_with_run(&c, run, rows(other)).unwrap();
            let more: Vec<Hash> = (5000..9000).map(leaf).collect();
            append(&mut o, &mut c, &more).unwrap();
            for s in [shape, other] {
                let again = Dedup::load_with_run(&c, run, rows(s)).unwrap();
                assert_eq!(
                    (again.filters.firsts.len(), again.other.firsts.len()),
                    (2, 2)
                );
                for (i, l) in leaves.iter().chain(&more).enumerate().step_by(97) {
                    assert_eq!(again.find(&c, l).unwrap(), Some(i as u64));
                }
                assert_eq!(again.find(&c, &leaf(99_999)).unwrap(), None);
            }
            c.execute("UPDATE runs SET bloom = x'0000' WHERE first = 2048", [])
                .unwrap();
            let err = Dedup::load_with_run(&c, run, rows(shape)).err().unwrap();
            assert!(err.to_string().contains("filter has 2 bytes"), "{err}");
        }
    }
}
