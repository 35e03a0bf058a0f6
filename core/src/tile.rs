//! C2SP tlog-tiles: tile coordinates and paths, hash tiles of width 256,
//! entry bundles, and reading stored hashes through tiles that are
//! authenticated against a trusted tree head (after Go's `TileHashReader`).

use std::collections::HashMap;
use std::fmt;

use crate::hash::{node_hash, Hash, HASH_SIZE};
use crate::tree::{
    split_stored_hash_index, stored_hash_index, tree_hash_indexes, HashReader, TreeError,
};
use crate::types::{parse_decimal, TreeSize};

/// Tree levels per tile level: a hash tile holds 2^8 = 256 hashes.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// The largest entry an entry bundle can carry (uint16 length prefix).
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;
/// The highest tile level the spec allows in a path.
pub const MAX_TILE_LEVEL: u8 = 63;

/// Why a tile, path or bundle was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TileError {
    /// A path that is not a canonical tlog-tiles path.
    #[error("malformed tile path {path:?}: {why}")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Tile data of the wrong length for the tile's width.
    #[error("tile {tile} has {got} bytes, expected {expected}")]
    WrongDataLength {
        /// The tile.
        tile: Tile,
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// A stored hash that does not live in the given tile.
    #[error("stored hash {index} is not in tile {tile}")]
    IndexNotInTile {
        /// The stored-hash index.
        index: u64,
        /// The tile.
        tile: Tile,
    },
    /// An entry too large for a bundle.
    #[error("entry of {0} bytes exceeds the 65535-byte limit of entry bundles")]
    EntryTooLarge(usize),
    /// An entry bundle that does not parse.
    #[error("malformed entry bundle: {0}")]
    BadBundle(&'static str),
    /// The tile source failed.
    #[error("reading tiles: {0}")]
    Read(String),
}

/// A hash tile: the hashes at tree level `8 * level`, starting at
/// `index * 256`; `width` of them (256 for a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// The tile level (0 holds leaf hashes).
    pub level: u8,
    /// The tile's index within its level.
    pub index: u64,
    /// How many hashes it holds, 1..=256.
    pub width: u16,
}

impl Tile {
    /// Whether the tile holds all 256 hashes (and so never changes).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The tile's path relative to the log prefix, e.g. `tile/1/x001/234.p/7`.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, index_path(self.index, self.width))
    }

    /// Bytes of data this tile holds.
    pub fn data_len(&self) -> usize {
        usize::from(self.width) * HASH_SIZE
    }

    /// Which tile holds the stored hash `index`, with the least width that
    /// contains it, and the byte range within the tile data of the hashes at
    /// the tile's bottom level that make that hash.
    fn for_stored_index(index: u64) -> (Tile, std::ops::Range<usize>) {
        let (level, n) = split_stored_hash_index(index);
        let tile_level = level / TILE_HEIGHT;
        let within = level - tile_level * TILE_HEIGHT;
        let tile_index = (n << within) >> TILE_HEIGHT;
        let n_in_tile = n - ((tile_index << TILE_HEIGHT) >> within);
        let start = (n_in_tile << within) as usize;
        let end = ((n_in_tile + 1) << within) as usize;
        let tile = Tile {
            level: tile_level as u8,
            index: tile_index,
            width: end as u16,
        };
        (tile, start * HASH_SIZE..end * HASH_SIZE)
    }

    /// The ancestor `k` tile levels up, with the width it has in a tree of
    /// `size` leaves, or None if the tree has no hashes there.
    fn ancestor(&self, k: u8, size: TreeSize) -> Option<Tile> {
        let level = self.level.checked_add(k).filter(|&l| l <= MAX_TILE_LEVEL)?;
        let index = self
            .index
            .checked_shr(u32::from(k) * TILE_HEIGHT)
            .unwrap_or(0);
        let available = size
            .get()
            .checked_shr(u32::from(level) * TILE_HEIGHT)
            .unwrap_or(0);
        let start = index << TILE_HEIGHT;
        if start >= available {
            return None;
        }
        let width = (available - start).min(TILE_WIDTH) as u16;
        Some(Tile {
            level,
            index,
            width,
        })
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// An entry bundle's coordinates: entries `index * 256 ..`, `width` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleCoord {
    /// The bundle's index.
    pub index: u64,
    /// How many entries it holds, 1..=256.
    pub width: u16,
}

impl BundleCoord {
    /// The bundle's path relative to the log prefix, e.g. `tile/entries/x001/234`.
    pub fn path(&self) -> String {
        format!("tile/entries/{}", index_path(self.index, self.width))
    }

    /// Whether the bundle holds all 256 entries.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }
}

/// A parsed tlog-tiles resource path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`
    Hashes(Tile),
    /// `tile/entries/<N>[.p/<W>]`
    Entries(BundleCoord),
}

impl TilePath {
    /// Parses a path such as `tile/0/x001/234.p/7` or `tile/entries/005`.
    /// Only the canonical form is accepted, so one resource has one path.
    pub fn parse(path: &str) -> Result<TilePath, TileError> {
        let bad = |why| TileError::BadPath {
            path: path.chars().take(200).collect(),
            why,
        };
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("must start with tile/"))?;
        let (first, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing tile index"))?;
        let (index, width) = parse_index_path(rest).map_err(bad)?;
        if first == "entries" {
            return Ok(TilePath::Entries(BundleCoord { index, width }));
        }
        let level = parse_decimal(first)
            .filter(|&l| l <= u64::from(MAX_TILE_LEVEL))
            .ok_or_else(|| bad("level must be a decimal 0..=63"))? as u8;
        Ok(TilePath::Hashes(Tile {
            level,
            index,
            width,
        }))
    }
}

/// `N` as x-prefixed 3-digit groups, plus `.p/W` for a partial width.
fn index_path(index: u64, width: u16) -> String {
    let digits = index.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{}", "0".repeat(pad), digits);
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            out.push('x');
            out.push_str(g);
            out.push('/');
        } else {
            out.push_str(g);
        }
    }
    if u64::from(width) != TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
    out
}

fn parse_index_path(text: &str) -> Result<(u64, u16), &'static str> {
    let (groups, width) = match text.split_once(".p/") {
        Some((g, w)) => {
            let w = parse_decimal(w)
                .filter(|w| (1..TILE_WIDTH).contains(w))
                .ok_or("partial width must be a decimal 1..=255")?;
            (g, w as u16)
        }
        None => (text, TILE_WIDTH as u16),
    };
    let parts: Vec<&str> = groups.split('/').collect();
    // u64::MAX has 20 digits: seven groups.
    if parts.len() > 7 {
        return Err("index too large");
    }
    let mut index: u64 = 0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let digits = if last {
            *part
        } else {
            part.strip_prefix('x')
                .ok_or("all but the last index element need an x prefix")?
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("index elements are three decimal digits");
        }
        if i == 0 && !last && digits == "000" {
            return Err("index has a leading zero element");
        }
        let value: u64 = digits
            .parse()
            .map_err(|_| "index element is not a number")?;
        index = index
            .checked_mul(1000)
            .and_then(|x| x.checked_add(value))
            .ok_or("index too large")?;
    }
    Ok((index, width))
}

/// The tiles of a tree of `size` leaves that differ from those of a tree of
/// `old` leaves: every tile a log must write when it grows from `old` to `size`.
pub fn new_tiles(old: TreeSize, size: TreeSize) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let shift = u32::from(level) * TILE_HEIGHT;
        let Some(count) = size.get().checked_shr(shift).filter(|&c| c > 0) else {
            break;
        };
        let old_count = old.get().checked_shr(shift).unwrap_or(0);
        // Tiles from the one the old tree ended in, to the last.
        let first = old_count >> TILE_HEIGHT;
        let last = (count - 1) >> TILE_HEIGHT;
        for index in first..=last {
            let width = (count - (index << TILE_HEIGHT)).min(TILE_WIDTH);
            let old_width = old_count
                .saturating_sub(index << TILE_HEIGHT)
                .min(TILE_WIDTH);
            if width != old_width {
                out.push(Tile {
                    level,
                    index,
                    width: width as u16,
                });
            }
        }
    }
    out
}

/// The tile data for `tile`: its hashes read from storage, concatenated.
pub fn read_tile_data(tile: Tile, reader: &impl HashReader) -> Result<Vec<u8>, TreeError> {
    let level = u32::from(tile.level) * TILE_HEIGHT;
    let start = tile.index << TILE_HEIGHT;
    let indexes: Vec<u64> = (start..start + u64::from(tile.width))
        .map(|n| stored_hash_index(level, n))
        .collect();
    let hashes = reader.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::ShortRead {
            asked: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

/// The Merkle hash of the (power-of-two many) hashes in `data`.
fn subtree_hash(data: &[u8]) -> Hash {
    let n = data.len() / HASH_SIZE;
    if n <= 1 {
        return Hash::from_slice(data).unwrap_or_default();
    }
    let half = n / 2 * HASH_SIZE;
    node_hash(&subtree_hash(&data[..half]), &subtree_hash(&data[half..]))
}

/// Reads the stored hash `index` out of the data of `tile`.
pub fn hash_from_tile(tile: Tile, data: &[u8], index: u64) -> Result<Hash, TileError> {
    if data.len() != tile.data_len() {
        return Err(TileError::WrongDataLength {
            tile,
            expected: tile.data_len(),
            got: data.len(),
        });
    }
    let (needed, range) = Tile::for_stored_index(index);
    if needed.level != tile.level || needed.index != tile.index || needed.width > tile.width {
        return Err(TileError::IndexNotInTile { index, tile });
    }
    Ok(subtree_hash(&data[range]))
}

/// A source of tile data, such as a log's HTTP endpoint or a local mirror.
pub trait TileReader {
    /// The data of each tile, in order. Each must be exactly `width * 32` bytes.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError>;

    /// Called with tiles once they have been authenticated, for caching.
    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// A [`HashReader`] over untrusted tiles: every tile it uses is checked
/// against the trusted tree head (`size`, `root`) before any hash is returned.
pub struct TileHashReader<'a, R: TileReader> {
    size: TreeSize,
    root: Hash,
    tiles: &'a R,
}

impl<'a, R: TileReader> TileHashReader<'a, R> {
    /// Reads hashes of the tree (`size`, `root`) through `tiles`.
    pub fn new(size: TreeSize, root: Hash, tiles: &'a R) -> Self {
        TileHashReader { size, root, tiles }
    }
}

impl<R: TileReader> HashReader for TileHashReader<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        let size = self.size;
        let mut order: HashMap<Tile, usize> = HashMap::new();
        let mut tiles: Vec<Tile> = Vec::new();
        fn add(order: &mut HashMap<Tile, usize>, tiles: &mut Vec<Tile>, tile: Tile) -> usize {
            *order.entry(tile).or_insert_with(|| {
                tiles.push(tile);
                tiles.len() - 1
            })
        }

        // First the tiles that hold the subtrees making up the root: if they
        // hash to the trusted root, they are authentic.
        let roots = tree_hash_indexes(size);
        let mut root_tiles = Vec::with_capacity(roots.len());
        for &x in &roots {
            let tile = Tile::for_stored_index(x)
                .0
                .ancestor(0, size)
                .ok_or_else(|| {
                    TreeError::Inconsistent(format!("stored hash {x} is outside tree {size}"))
                })?;
            root_tiles.push(add(&mut order, &mut tiles, tile));
        }

        // Then the tiles holding the hashes asked for, each with the chain of
        // full ancestor tiles that links it to an authenticated tile.
        let limit = stored_hash_index(0, size.get());
        let mut wanted = Vec::with_capacity(indexes.len());
        let mut parents: Vec<(usize, usize)> = Vec::new(); // (child, parent) positions
        for &x in indexes {
            if x >= limit {
                return Err(TreeError::Storage(format!(
                    "stored hash {x} is not in a tree of size {size}"
                )));
            }
            let base = Tile::for_stored_index(x).0;
            let mut chain = Vec::new();
            let mut k = 0u8;
            let known = loop {
                let tile = base.ancestor(k, size).ok_or_else(|| {
                    TreeError::Inconsistent(format!("no tile links stored hash {x} to the root"))
                })?;
                if let Some(&pos) = order.get(&tile) {
                    break pos;
                }
                chain.push(tile);
                k += 1;
            };
            let mut parent = known;
            let mut pos = known;
            for tile in chain.into_iter().rev() {
                if !tile.is_full() {
                    return Err(TreeError::Inconsistent(format!(
                        "partial tile {tile} would need a parent"
                    )));
                }
                pos = add(&mut order, &mut tiles, tile);
                parents.push((pos, parent));
                parent = pos;
            }
            wanted.push(pos);
        }

        let data = self
            .tiles
            .read_tiles(&tiles)
            .map_err(|e| TreeError::Storage(e.to_string()))?;
        if data.len() != tiles.len() {
            return Err(TreeError::ShortRead {
                asked: tiles.len(),
                got: data.len(),
            });
        }
        let from_tile = |pos: usize, x: u64| {
            hash_from_tile(tiles[pos], &data[pos], x)
                .map_err(|e| TreeError::Inconsistent(e.to_string()))
        };

        let mut parts = Vec::with_capacity(roots.len());
        for (&x, &pos) in roots.iter().zip(&root_tiles) {
            parts.push(from_tile(pos, x)?);
        }
        let computed = if parts.is_empty() {
            Hash::empty_tree()
        } else {
            crate::tree::fold_right(&parts)
        };
        if computed != self.root {
            return Err(TreeError::Inconsistent(format!(
                "tiles give root {computed} for tree size {size}, checkpoint says {}",
                self.root
            )));
        }
        for &(child, parent) in &parents {
            let tile = tiles[child];
            let p = tiles[parent];
            let expected = from_tile(
                parent,
                stored_hash_index(u32::from(p.level) * TILE_HEIGHT, tile.index),
            )?;
            if subtree_hash(&data[child]) != expected {
                return Err(TreeError::Inconsistent(format!(
                    "tile {tile} does not match its parent tile {p}"
                )));
            }
        }
        self.tiles.save_tiles(&tiles, &data);

        indexes
            .iter()
            .zip(&wanted)
            .map(|(&x, &pos)| from_tile(pos, x))
            .collect()
    }
}

/// Encodes entries as an entry bundle: each a big-endian uint16 length, then the bytes.
pub fn encode_entry_bundle<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for entry in entries {
        let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge(entry.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Splits an entry bundle into its entries; there must be exactly `width`.
pub fn parse_entry_bundle(data: &[u8], width: u16) -> Result<Vec<&[u8]>, TileError> {
    let mut entries = Vec::with_capacity(usize::from(width));
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(TileError::BadBundle("truncated length prefix"));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = rest.get(2..2 + len).ok_or(TileError::BadBundle(
            "entry runs past the end of the bundle",
        ))?;
        if entries.len() == usize::from(width) {
            return Err(TileError::BadBundle("more entries than the bundle's width"));
        }
        entries.push(body);
        rest = &rest[2 + len..];
    }
    if entries.len() != usize::from(width) {
        return Err(TileError::BadBundle(
            "fewer entries than the bundle's width",
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{inclusion_proof, tree_hash, MemoryTree};
    use crate::types::LeafIndex;
    use std::cell::Cell;

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.append(&i.to_le_bytes());
        }
        t
    }

    /// Serves tiles from a tree, optionally corrupting one byte of one tile.
    struct Served<'a> {
        tree: &'a MemoryTree,
        corrupt: Option<(Tile, usize)>,
        reads: Cell<usize>,
    }

    impl TileReader for Served<'_> {
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
            self.reads.set(self.reads.get() + tiles.len());
            tiles
                .iter()
                .map(|&t| {
                    let mut data =
                        read_tile_data(t, self.tree).map_err(|e| TileError::Read(e.to_string()))?;
                    if let Some((bad, byte)) = self.corrupt {
                        if bad == t {
                            let at = byte % data.len();
                            data[at] ^= 1;
                        }
                    }
                    Ok(data)
                })
                .collect()
        }
    }

    #[test]
    fn paths_round_trip() {
        for (level, index, width) in [
            (0u8, 0u64, 256u16),
            (1, 1234067, 7),
            (63, u64::MAX, 255),
            (2, 1000, 1),
        ] {
            let t = Tile {
                level,
                index,
                width,
            };
            assert_eq!(TilePath::parse(&t.path()), Ok(TilePath::Hashes(t)));
            let b = BundleCoord { index, width };
            assert_eq!(TilePath::parse(&b.path()), Ok(TilePath::Entries(b)));
        }
        assert_eq!(
            Tile {
                level: 1,
                index: 1234067,
                width: 7
            }
            .path(),
            "tile/1/x001/x234/067.p/7"
        );
        for bad in [
            "tile/0/x001",
            "tile/0/001/",
            "tile/0/0001",
            "tile/0/x1/000",
            "tile/0/001.p/",
            "tile/0/../001",
            "tile//001",
            "tiles/0/001",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
            "tile/entries/001.p/256",
            "tile/0/00a",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_tiles_cover_growth() {
        // Every tile of the final tree, at its final width, appears in the
        // last batch that changed it.
        let mut latest: HashMap<(u8, u64), u16> = HashMap::new();
        let sizes = [0u64, 1, 255, 256, 257, 1000, 65535, 65536, 65537, 70000];
        for w in sizes.windows(2) {
            for t in new_tiles(TreeSize(w[0]), TreeSize(w[1])) {
                latest.insert((t.level, t.index), t.width);
            }
        }
        let all: HashMap<(u8, u64), u16> = new_tiles(TreeSize(0), TreeSize(70000))
            .into_iter()
            .map(|t| ((t.level, t.index), t.width))
            .collect();
        assert_eq!(latest, all);
        assert!(new_tiles(TreeSize(5), TreeSize(5)).is_empty());
    }

    #[test]
    fn authenticated_reads_match_storage() {
        for n in [1u64, 2, 255, 256, 257, 511, 512, 1000, 65536 + 300] {
            let t = tree(n);
            let root = t.root();
            let served = Served {
                tree: &t,
                corrupt: None,
                reads: Cell::new(0),
            };
            let reader = TileHashReader::new(TreeSize(n), root, &served);
            assert_eq!(tree_hash(TreeSize(n), &reader).unwrap(), root, "size {n}");
            for i in [0, n / 3, n / 2, n - 1] {
                assert_eq!(
                    inclusion_proof(LeafIndex(i), TreeSize(n), &reader).unwrap(),
                    inclusion_proof(LeafIndex(i), TreeSize(n), &t).unwrap(),
                    "size {n} index {i}"
                );
            }
        }
    }

    #[test]
    fn any_corrupted_tile_is_detected() {
        let n = 65536 + 700;
        let t = tree(n);
        let root = t.root();
        let index = LeafIndex(40_000);
        let honest = Served {
            tree: &t,
            corrupt: None,
            reads: Cell::new(0),
        };
        let mut used = Vec::new();
        {
            struct Recording<'a>(&'a Served<'a>, std::cell::RefCell<Vec<Tile>>);
            impl TileReader for Recording<'_> {
                fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
                    self.1.borrow_mut().extend_from_slice(tiles);
                    self.0.read_tiles(tiles)
                }
            }
            let rec = Recording(&honest, Default::default());
            let reader = TileHashReader::new(TreeSize(n), root, &rec);
            inclusion_proof(index, TreeSize(n), &reader).unwrap();
            used.extend(rec.1.into_inner());
        }
        assert!(used.len() >= 3, "{used:?}");
        for tile in used {
            for byte in [0, 31, 4000, 8191] {
                let bad = Served {
                    tree: &t,
                    corrupt: Some((tile, byte)),
                    reads: Cell::new(0),
                };
                let reader = TileHashReader::new(TreeSize(n), root, &bad);
                let got = inclusion_proof(index, TreeSize(n), &reader);
                assert!(
                    matches!(got, Err(TreeError::Inconsistent(_))),
                    "{tile} byte {byte}: {got:?}"
                );
            }
        }
        // Honest tiles against the wrong root, or a root for another size.
        let reader = TileHashReader::new(TreeSize(n), crate::hash::leaf_hash(b"x"), &honest);
        assert!(matches!(
            tree_hash(TreeSize(n), &reader),
            Err(TreeError::Inconsistent(_))
        ));
        let older = tree_hash(TreeSize(n - 1), &t).unwrap();
        let reader = TileHashReader::new(TreeSize(n), older, &honest);
        assert!(matches!(
            inclusion_proof(index, TreeSize(n), &reader),
            Err(TreeError::Inconsistent(_))
        ));
        // Asking past the tree is an error, not a panic.
        let reader = TileHashReader::new(TreeSize(n), root, &honest);
        assert!(reader.read_hashes(&[stored_hash_index(0, n)]).is_err());
    }

    #[test]
    fn short_tile_data_is_refused() {
        let t = tree(300);
        struct Short<'a>(&'a MemoryTree);
        impl TileReader for Short<'_> {
            fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
                Ok(tiles
                    .iter()
                    .map(|&t| {
                        let mut d = read_tile_data(t, self.0).unwrap();
                        d.pop();
                        d
                    })
                    .collect())
            }
        }
        let short = Short(&t);
        let reader = TileHashReader::new(TreeSize(300), t.root(), &short);
        assert!(matches!(
            tree_hash(TreeSize(300), &reader),
            Err(TreeError::Inconsistent(_))
        ));
    }

    #[test]
    fn entry_bundles() {
        let entries: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], vec![7; 65535]];
        let bundle = encode_entry_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        let parsed = parse_entry_bundle(&bundle, 3).unwrap();
        assert_eq!(
            parsed,
            entries.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert_eq!(
            encode_entry_bundle([vec![0u8; 65536].as_slice()]),
            Err(TileError::EntryTooLarge(65536))
        );
        assert!(parse_entry_bundle(&bundle, 2).is_err());
        assert!(parse_entry_bundle(&bundle, 4).is_err());
        assert!(parse_entry_bundle(&bundle[..bundle.len() - 1], 3).is_err());
        assert!(parse_entry_bundle(&[0], 1).is_err());
    }
}
