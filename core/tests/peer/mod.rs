//! rs_merkle configured as an RFC 6962 tree: the independent peer of the
//! differential test and the append benchmark.

use daylight_core::{leaf_hash, node_hash, Hash};

/// rs_merkle with RFC 6962 leaf and interior hashing. rs_merkle promotes an
/// unpaired node to the next level, which gives the same tree shape as RFC
/// 6962's split at the largest power of two.
#[derive(Clone)]
pub struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        leaf_hash(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(r) => node_hash(&Hash(*left), &Hash(*r)).0,
            None => *left,
        }
    }
}
