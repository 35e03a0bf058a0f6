//! The rule for a record's Ed25519 signature: one rule whether a record is
//! checked alone ([`SignatureCheck::verify`]) or with others at once
//! ([`verify_batch`]).
//!
//! # The rule
//!
//! A signature `(R, s)` by key `A` over message `M` is valid when
//! - `A` and `R` are canonical encodings (y below p, no "x = -0") of points
//!   that are not of small order (the eight points of order 1, 2, 4, 8);
//! - `s` is below the group order ℓ;
//! - `[8][s]B = [8]R + [8][k]A`, with `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
//!
//! That is ZIP-215's cofactored equation with encoding checks as strict as
//! ed25519-dalek's `verify_strict` (which checks R's encoding and the
//! small orders) and a canonical key besides (RFC 8032 allows either
//! equation).
//!
//! # Why cofactored
//!
//! Checking many signatures at once (one multi-scalar multiplication with
//! random coefficients; 2.5-3 times the single rate) agrees with checking
//! each alone only under the cofactored equation. Under the cofactorless
//! one (`[s]B = R + [k]A`, what `verify_strict` checks), a key holder can
//! craft a signature whose R carries a small torsion component: single
//! verification refuses it, while a batch accepts it whenever the random
//! coefficient happens to cancel that component (one time in eight, and
//! every time with ed25519-dalek's `verify_batch`, whose coefficients the
//! inputs determine). The log, the gate and the auditor must never
//! disagree on a record, so all three use this module.
//!
//! Every signature `verify_strict` accepts under a canonically encoded key
//! is accepted here (the cofactorless equation implies the cofactored one;
//! `verify_strict` does not ask for a canonical key, this rule does, and
//! `VerifierKey::parse` still takes such keys: nobody holds the secret of
//! one, so none can sign). The signatures
//! accepted here and refused by `verify_strict` are those whose R or A has
//! a torsion component that does not cancel (the C2SP CCTV vectors flagged
//! `low_order_residue` without a low-order or non-canonical point); only
//! the key's holder can make one, and it proves as much as any other of
//! its signatures.

use daylight_core::note::VerifierKey;
use ed25519_dalek::VerifyingKey;
use rand_core_06::{CryptoRng, RngCore};

use crate::SchemaError;

/// One signature to check: the key, the signed message and the signature.
/// Owns its message, so that checks made on several threads can be
/// gathered into one batch.
#[derive(Clone)]
pub struct SignatureCheck {
    key: VerifyingKey,
    message: Vec<u8>,
    signature: [u8; 64],
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck")
            .field("key", &hex::encode(self.key.as_bytes()))
            .field("message_len", &self.message.len())
            .finish_non_exhaustive()
    }
}

/// Most signatures in one multi-scalar multiplication: larger batches gain
/// little (about 5% from 64 to 256) and hold their callers longer.
pub const MAX_BATCH: usize = 256;

impl SignatureCheck {
    /// A check of `signature` over `message` under `key` (the message as
    /// signed: for a record, [`crate::SignedRecord::signed_message`]).
    pub fn new(key: &VerifierKey, message: Vec<u8>, signature: [u8; 64]) -> SignatureCheck {
        SignatureCheck {
            key: *key.public_key(),
            message,
            signature,
        }
    }

    /// Checks this signature alone under the rule (module docs).
    pub fn verify(&self) -> Result<(), SchemaError> {
        self.verify_encodings()?;
        let key = ed25519_zebra::VerificationKey::try_from(*self.key.as_bytes())
            .map_err(|_| SchemaError::BadSignature)?;
        key.verify(
            &ed25519_zebra::Signature::from_bytes(&self.signature),
            &self.message,
        )
        .map_err(|_| SchemaError::BadSignature)
    }

    /// The encoding checks of the rule, which the equation does not make:
    /// canonical, not-small-order `A` and `R` (`s` below ℓ is checked with
    /// the equation).
    fn verify_encodings(&self) -> Result<(), SchemaError> {
        let r: &[u8; 32] = self.signature[..32]
            .try_into()
            .map_err(|_| SchemaError::BadSignature)?;
        if acceptable_point(self.key.as_bytes()) && acceptable_point(r) {
            Ok(())
        } else {
            Err(SchemaError::BadSignature)
        }
    }
}

/// Checks `checks` under the rule, many at once: one verdict per check, in
/// order, each the verdict [`SignatureCheck::verify`] gives (except with
/// probability 2^-128 over `rng`). A batch that fails is split in halves,
/// each checked as a batch again, down to [`SINGLES_BELOW`] checked one by
/// one: a forgery among 256 costs about 16 batch checks of shrinking size
/// (about twice the batch alone) instead of 256 single ones, and never an
/// honest record its place.
pub fn verify_batch<R: RngCore + CryptoRng>(
    checks: &[SignatureCheck],
    rng: R,
) -> Vec<Result<(), SchemaError>> {
    if checks.len() <= 1 {
        return checks.iter().map(SignatureCheck::verify).collect();
    }
    let mut rng = Buffered::new(rng);
    let mut verdicts: Vec<Result<(), SchemaError>> = checks
        .iter()
        .map(SignatureCheck::verify_encodings)
        .collect();
    let passed: Vec<usize> = (0..checks.len()).filter(|&i| verdicts[i].is_ok()).collect();
    for chunk in passed.chunks(MAX_BATCH) {
        bisect(checks, chunk, &mut verdicts, &mut rng);
    }
    verdicts
}

/// Randomness from `inner`, asked for in blocks of [`RNG_BLOCK`] bytes: a
/// batch draws a 16-byte coefficient per signature, and the OS's generator
/// (`OsRng`) makes a system call for each draw (about one per submission in
/// a served log, strace under `bench submit`). The bytes are `inner`'s own,
/// in order, each used once.
struct Buffered<R> {
    inner: R,
    block: [u8; RNG_BLOCK],
    /// Bytes of `block` already handed out (all of them at first).
    used: usize,
}

/// Bytes [`Buffered`] asks its source for at once: coefficients for 32
/// signatures.
const RNG_BLOCK: usize = 512;

impl<R> Buffered<R> {
    fn new(inner: R) -> Buffered<R> {
        Buffered {
            inner,
            block: [0; RNG_BLOCK],
            used: RNG_BLOCK,
        }
    }
}

impl<R: RngCore> RngCore for Buffered<R> {
    fn next_u32(&mut self) -> u32 {
        rand_core_06::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core_06::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(e) = self.try_fill_bytes(dest) {
            // As `OsRng::fill_bytes` does: no randomness, no verdict.
            panic!("no randomness for a batch verification: {e}");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        let mut at = 0;
        while at < dest.len() {
            if self.used == RNG_BLOCK {
                self.inner.try_fill_bytes(&mut self.block)?;
                self.used = 0;
            }
            let n = (dest.len() - at).min(RNG_BLOCK - self.used);
            dest[at..at + n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            at += n;
        }
        Ok(())
    }
}

impl<R: CryptoRng> CryptoRng for Buffered<R> {}

/// Below this many, a failed batch's members are checked one by one.
pub const SINGLES_BELOW: usize = 4;

/// Checks the members `at` of `checks` (whose encodings passed) as one
/// batch; if that fails, each half the same way, and small ones singly.
fn bisect<R: RngCore + CryptoRng>(
    checks: &[SignatureCheck],
    at: &[usize],
    verdicts: &mut [Result<(), SchemaError>],
    rng: &mut R,
) {
    if at.len() < SINGLES_BELOW {
        for &i in at {
            verdicts[i] = checks[i].verify();
        }
        return;
    }
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for &i in at {
        let c = &checks[i];
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(*c.key.as_bytes()),
            ed25519_zebra::Signature::from_bytes(&c.signature),
            &c.message[..],
        ));
    }
    if batch.verify(&mut *rng).is_err() {
        let (left, right) = at.split_at(at.len() / 2);
        bisect(checks, left, verdicts, rng);
        bisect(checks, right, verdicts, rng);
    }
}

/// Whether `bytes` is a canonical encoding (y below p = 2^255 - 19, and not
/// "x = -0") of a point not of small order. Whether it is a point at all
/// is left to the equation, which refuses what does not decode.
fn acceptable_point(bytes: &[u8; 32]) -> bool {
    !y_at_least_p(bytes) && !SMALL_ORDER.contains(bytes)
}

/// Whether the encoded y (the low 255 bits, little-endian) is p or more:
/// p = 2^255 - 19 is `ed ff .. ff 7f`, so y >= p exactly when the top byte
/// (sign bit aside) is 0x7f, the 30 bytes below it 0xff, and the lowest at
/// least 0xed.
fn y_at_least_p(bytes: &[u8; 32]) -> bool {
    bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed
}

/// The encodings with y below p of the eight small-order points, and the
/// two "x = -0" encodings of the points whose x is 0 (order 1 and 2). The
/// encodings with y of p or more are refused by [`y_at_least_p`]. The list
/// is C2SP CCTV's (ed25519/README.md); the tests check it against
/// curve25519-dalek's `EIGHT_TORSION`.
const SMALL_ORDER: [[u8; 32]; 10] = [
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("0100000000000000000000000000000000000000000000000000000000000080"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
];

/// 64 hex digits as 32 bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 64, "not 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(s[2 * i]) << 4 | digit(s[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use daylight_core::note::SignerKey;
    use ed25519_dalek::Signer as _;

    /// A deterministic RNG for tests that need one (the batch's soundness
    /// does not rest on it here: the tests compare verdicts).
    struct TestRng(u64);
    impl RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                let v = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for TestRng {}

    /// The buffer hands out its source's bytes in order, each once,
    /// across refills and whatever the draws' sizes; and it fails when its
    /// source does.
    #[test]
    fn buffered_randomness_is_the_source_s_own_stream() {
        let mut direct = vec![0u8; 3 * RNG_BLOCK + 100];
        TestRng(9).fill_bytes(&mut direct);
        let mut buffered = Buffered::new(TestRng(9));
        let mut got = Vec::new();
        for size in [16, 1, 7, 500, 16, 1024, 3, 16].iter().cycle() {
            if got.len() >= direct.len() {
                break;
            }
            let mut draw = vec![0u8; (*size).min(direct.len() - got.len())];
            buffered.fill_bytes(&mut draw);
            got.extend(draw);
        }
        assert_eq!(got, direct);

        struct Broken;
        impl RngCore for Broken {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, _: &mut [u8]) {}
            fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core_06::Error> {
                Err(rand_core_06::Error::from(
                    std::num::NonZeroU32::new(rand_core_06::Error::CUSTOM_START)
                        .unwrap_or(std::num::NonZeroU32::MIN),
                ))
            }
        }
        let mut buffered = Buffered::new(Broken);
        assert!(buffered.try_fill_bytes(&mut [0u8; 16]).is_err());
        let panicked = std::panic::catch_unwind(move || buffered.fill_bytes(&mut [0u8; 16]));
        assert!(panicked.is_err(), "no randomness, no coefficients");
    }

    fn raw_check(key: [u8; 32], message: &[u8], signature: [u8; 64]) -> Option<SignatureCheck> {
        Some(SignatureCheck {
            key: VerifyingKey::from_bytes(&key).ok()?,
            message: message.to_vec(),
            signature,
        })
    }

    fn signer(n: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[n; 32])
    }

    fn honest(n: u8, message: &[u8]) -> SignatureCheck {
        let k = signer(n);
        SignatureCheck {
            key: k.verifying_key(),
            message: message.to_vec(),
            signature: k.sign(message).to_bytes(),
        }
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        number: u32,
        key: String,
        sig: String,
        msg: String,
        flags: Option<Vec<String>>,
    }

    /// C2SP CCTV's Ed25519 edge-case vectors (github.com/C2SP/CCTV,
    /// ed25519/ed25519vectors.json at commit 0fb2c3b5dc50437ce3272abcbec7567dde497047):
    /// 914 signatures, every one valid under ZIP-215, each flagged with the
    /// edge cases it exercises. Under this module's rule exactly those
    /// without a low-order or non-canonical point verify; ed25519-dalek's
    /// `verify_strict` accepts those less the ones flagged
    /// `low_order_residue`; and a batch of all of them gives the same
    /// verdicts as one by one.
    #[test]
    fn cctv_vectors_follow_the_rule_alone_and_in_a_batch() {
        let vectors: Vec<Vector> =
            serde_json::from_str(include_str!("../testdata/cctv-ed25519/ed25519vectors.json"))
                .expect("the vectors file parses");
        assert_eq!(vectors.len(), 914);
        let refused_flags = [
            "low_order_A",
            "low_order_R",
            "non_canonical_A",
            "non_canonical_R",
        ];
        let mut checks = Vec::new();
        let mut expected = Vec::new();
        let (mut accepted, mut residue_accepted) = (0, 0);
        for v in &vectors {
            let flags = v.flags.clone().unwrap_or_default();
            let key: [u8; 32] = hex::decode(&v.key).unwrap().try_into().unwrap();
            let sig: [u8; 64] = hex::decode(&v.sig).unwrap().try_into().unwrap();
            let want = !flags.iter().any(|f| refused_flags.contains(&f.as_str()));
            let Some(check) = raw_check(key, v.msg.as_bytes(), sig) else {
                // ed25519-dalek could not decode the key: only refused keys.
                assert!(!want, "vector {}: key does not decode", v.number);
                continue;
            };
            let strict = check.key.verify_strict(
                v.msg.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&sig),
            );
            // verify_strict (cofactorless) accepts the same less those
            // whose torsion components do not cancel.
            let residue = flags.iter().any(|f| f == "low_order_residue");
            assert_eq!(
                strict.is_ok(),
                want && !residue,
                "vector {}: verify_strict",
                v.number
            );
            assert_eq!(
                check.verify().is_ok(),
                want,
                "vector {} flags {flags:?}",
                v.number
            );
            if want {
                accepted += 1;
                residue_accepted += usize::from(residue);
            }
            checks.push(check);
            expected.push(want);
        }
        // Counted from the file: 106 vectors have no refused flag; some of
        // them carry a residue that only the cofactored equation accepts.
        assert_eq!(accepted, 106);
        assert!(residue_accepted > 0 && residue_accepted < accepted);
        let batch: Vec<bool> = verify_batch(&checks, TestRng(1))
            .iter()
            .map(Result::is_ok)
            .collect();
        assert_eq!(batch, expected);
        // And the accepted ones alone, all in one batch that passes whole.
        let good: Vec<SignatureCheck> = checks
            .iter()
            .zip(&expected)
            .filter(|(_, w)| **w)
            .map(|(c, _)| c.clone())
            .collect();
        assert!(verify_batch(&good, TestRng(2)).iter().all(Result::is_ok));
    }

    #[test]
    fn small_order_list_is_the_eight_torsion_points() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        for p in EIGHT_TORSION {
            let enc = p.compress().to_bytes();
            assert!(SMALL_ORDER.contains(&enc), "{} missing", hex::encode(enc));
        }
        for enc in SMALL_ORDER {
            let p = curve25519_dalek::edwards::CompressedEdwardsY(enc)
                .decompress()
                .expect("a point");
            assert!(
                p.is_small_order(),
                "{} is not small order",
                hex::encode(enc)
            );
            assert!(!y_at_least_p(&enc));
        }
        // p itself, p + 1 and 2^255 - 1 (sign bit aside) are y >= p; p - 1 is not.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(y_at_least_p(&p));
        p[0] = 0xee;
        assert!(y_at_least_p(&p));
        p[0] = 0xff;
        p[31] = 0xff;
        assert!(y_at_least_p(&p));
        p[0] = 0xec;
        p[31] = 0x7f;
        assert!(!y_at_least_p(&p));
    }

    /// One way of spoiling a check.
    type Tamper = Box<dyn Fn(&mut SignatureCheck)>;

    /// Honest signatures verify alone and in batches, and every way of
    /// spoiling one (a flipped bit in R, in s, in the message, in the key;
    /// s + ℓ; another key) is refused alone and in a batch, where only the
    /// spoiled one is refused.
    #[test]
    fn tampering_is_refused_alone_and_in_a_batch() {
        let base: Vec<SignatureCheck> = (0..40u8)
            .map(|i| honest(i % 3, format!("record {i}").as_bytes()))
            .collect();
        assert!(base.iter().all(|c| c.verify().is_ok()));
        assert!(verify_batch(&base, TestRng(3)).iter().all(Result::is_ok));
        let ell: [u8; 32] =
            hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let tampers: Vec<(&str, Tamper)> = vec![
            ("bit in R", Box::new(|c| c.signature[3] ^= 0x10)),
            ("bit in s", Box::new(|c| c.signature[40] ^= 0x01)),
            ("bit in message", Box::new(|c| c.message[0] ^= 0x80)),
            (
                "another key",
                Box::new(|c| c.key = signer(9).verifying_key()),
            ),
            (
                "s + l",
                Box::new(move |c| {
                    // s + ℓ: the same residue, a non-canonical scalar.
                    let mut carry = 0u16;
                    for (i, l) in ell.iter().enumerate() {
                        let v = u16::from(c.signature[32 + i]) + u16::from(*l) + carry;
                        c.signature[32 + i] = v as u8;
                        carry = v >> 8;
                    }
                }),
            ),
            (
                "small-order R",
                Box::new(|c| c.signature[..32].copy_from_slice(&SMALL_ORDER[4])),
            ),
            ("zeroed signature", Box::new(|c| c.signature = [0; 64])),
            (
                // y = p + 3: a non-canonical encoding, refused before the
                // equation.
                "R with y >= p",
                Box::new(|c| {
                    c.signature[..32].copy_from_slice(&hex32(
                        "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                    ))
                }),
            ),
        ];
        for (what, tamper) in &tampers {
            for at in [0usize, 17, 39] {
                let mut checks = base.clone();
                tamper(&mut checks[at]);
                assert!(checks[at].verify().is_err(), "{what}: accepted alone");
                let verdicts = verify_batch(&checks, TestRng(at as u64));
                for (i, v) in verdicts.iter().enumerate() {
                    assert_eq!(v.is_err(), i == at, "{what} at {at}: verdict {i} is {v:?}");
                }
            }
        }
    }

    /// Two forgeries in different halves of a batch, and one in a batch of
    /// MAX_BATCH + 1 (two chunks): each refused alone, the rest accepted.
    #[test]
    fn forgeries_anywhere_are_found_by_halving() {
        let mut checks: Vec<SignatureCheck> = (0..64u32)
            .map(|i| honest(1, format!("record {i}").as_bytes()))
            .collect();
        checks[5].signature[40] ^= 4;
        checks[50].message.push(b'!');
        let bad: Vec<usize> = verify_batch(&checks, TestRng(6))
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(bad, vec![5, 50]);
        let mut many: Vec<SignatureCheck> = (0..MAX_BATCH as u32 + 1)
            .map(|i| honest(2, format!("r{i}").as_bytes()))
            .collect();
        many[MAX_BATCH].signature[0] ^= 1;
        let verdicts = verify_batch(&many, TestRng(7));
        assert!(verdicts[..MAX_BATCH].iter().all(Result::is_ok));
        assert!(verdicts[MAX_BATCH].is_err());
    }

    #[test]
    fn a_small_order_key_is_refused() {
        let c = raw_check(SMALL_ORDER[2], b"m", [0; 64]).expect("the identity decodes");
        assert_eq!(c.verify(), Err(SchemaError::BadSignature));
        assert_eq!(
            verify_batch(&[c.clone(), c], TestRng(4)),
            vec![
                Err(SchemaError::BadSignature),
                Err(SchemaError::BadSignature)
            ]
        );
    }

    /// What `verify_strict` accepts, the rule accepts (here on signatures
    /// made by the note signer the rest of the system uses).
    #[test]
    fn strict_signatures_verify() {
        let key = SignerKey::from_seed(
            daylight_core::note::KeyName::new("agency.example").unwrap(),
            daylight_core::note::KeyType::Ed25519,
            [5; 32],
        );
        let msg = b"a message".to_vec();
        let sig = key.sign_raw(&msg);
        let check = SignatureCheck::new(key.verifier(), msg.clone(), sig);
        assert!(key
            .verifier()
            .public_key()
            .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok());
        assert!(check.verify().is_ok());
        assert_eq!(verify_batch(&[], TestRng(5)), vec![]);
    }
}
