//! Differential test against rs_merkle, an independent Merkle tree crate:
//! configured with RFC 6962 node hashing, its roots and inclusion proofs
//! must agree with ours for every tree size 1..=2000.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use daylight_core::proof::verify_inclusion;
use daylight_core::tree::{inclusion_proof, tree_hash, MemoryTree};
use daylight_core::{leaf_hash, Hash, LeafIndex, TreeSize};
use rs_merkle::MerkleTree;

mod peer;

use peer::Rfc6962;

#[test]
fn roots_and_inclusion_proofs_agree_with_rs_merkle() {
    const MAX: u64 = 2000;
    let mut ours = MemoryTree::new();
    let mut leaves = Vec::new();
    let mut proofs_compared = 0u64;
    for size in 1..=MAX {
        let entry = format!("request {size}");
        ours.append(entry.as_bytes());
        leaves.push(leaf_hash(entry.as_bytes()).0);
        let peer = MerkleTree::<Rfc6962>::from_leaves(&leaves);
        let root = tree_hash(TreeSize(size), &ours).unwrap();
        assert_eq!(peer.root(), Some(root.0), "root at size {size}");
        // Every index at small sizes; beyond, a spread that always includes
        // both edges and the split points.
        let indexes: Vec<u64> = if size <= 300 {
            (0..size).collect()
        } else {
            let mut v: Vec<u64> = (0..size).step_by(37).collect();
            v.extend([size - 1, size / 2, (size - 1).next_power_of_two() / 2]);
            v
        };
        for i in indexes {
            let ours_proof = inclusion_proof(LeafIndex(i), TreeSize(size), &ours).unwrap();
            let peer_proof = peer.proof(&[i as usize]);
            let peer_hashes: Vec<Hash> =
                peer_proof.proof_hashes().iter().map(|h| Hash(*h)).collect();
            assert_eq!(ours_proof, peer_hashes, "proof of {i} at size {size}");
            // Each side's proof verifies under the other's root.
            assert!(peer_proof.verify(root.0, &[i as usize], &[leaves[i as usize]], size as usize));
            verify_inclusion(
                Hash(leaves[i as usize]),
                LeafIndex(i),
                TreeSize(size),
                &peer_hashes,
                root,
            )
            .unwrap();
            proofs_compared += 1;
        }
    }
    assert!(proofs_compared > 100_000);
}
