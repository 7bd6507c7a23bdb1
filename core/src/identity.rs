//! Who a peer or a server is: a long-term X25519 key pair, and the short
//! strings people compare to check a key (fingerprints, safety numbers).
//!
//! The key pair is the Noise static key of every link the owner makes
//! ([`crate::secure`]): proving a name on a link means completing a Noise
//! handshake with the key bound to that name. Nothing here touches a disk or
//! an entropy source: a key comes from 32 bytes the caller has (a key file,
//! the OS, or a simulation's seed through [`Identity::from_seed`]).

use blake2::digest::Digest;
use blake2::{Blake2b512, Blake2s256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use std::fmt;
use std::str::FromStr;

/// Bytes of an X25519 secret or public key.
pub const KEY_LEN: usize = 32;

/// A long-term static key pair.
///
/// `Debug` shows the public key's fingerprint only: the secret must never
/// reach a log, a panic message or a snapshot.
#[derive(Clone)]
pub struct Identity {
    secret: [u8; KEY_LEN],
    public: PublicKey,
}

impl Identity {
    /// The key pair of this X25519 secret. Every 32-byte string is a valid
    /// secret (X25519 clamps it), so this cannot fail.
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Self {
        // snow's own X25519 (curve25519-dalek) derives the public key, so
        // the key announced here is exactly the one the handshake proves.
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow is built with the curve25519 feature");
        dh.set(&secret);
        let mut public = [0; KEY_LEN];
        public.copy_from_slice(dh.pubkey());
        Identity {
            secret,
            public: PublicKey(public),
        }
    }

    /// A key pair generated from a seed, for simulated users: the same seed
    /// always gives the same identity. The secret is derived from the seed
    /// (not the seed itself), so a seed also used for something else never
    /// doubles as a key.
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Self {
        Identity::from_secret(derive_seed(seed, b"identity", 0))
    }

    /// The public half, which others pin and the directory lists.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret, for writing a key file and for the Noise handshake only.
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.public.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Derives an independent 32-byte seed from `master` for one `purpose` and
/// `index`: BLAKE2s-256 of a domain prefix, the master seed, the purpose
/// and the index. Different (purpose, index) pairs give unrelated seeds, so
/// one seed per process (or per simulated host) feeds every key it needs.
pub fn derive_seed(master: &[u8; KEY_LEN], purpose: &[u8], index: u64) -> [u8; KEY_LEN] {
    let mut hash = Blake2s256::new();
    hash.update(b"natter/2 seed\n");
    hash.update(master);
    // The purpose's length first, so (purpose, index) is read back unambiguously.
    hash.update((purpose.len() as u64).to_be_bytes());
    hash.update(purpose);
    hash.update(index.to_be_bytes());
    hash.finalize().into()
}

/// An X25519 public key. It is what a name is bound to and what is pinned;
/// compare keys, never fingerprints, when deciding whom to trust.
///
/// In JSON (and in `Display`/`FromStr`) it is 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The short string a person reads aloud or compares at a glance:
    /// the first 10 bytes of BLAKE2s-256(`"natter/2 fingerprint\n"` ‖ key),
    /// in lowercase RFC 4648 base32, in four groups of four
    /// (`abcd-efgh-ijkl-mnop`).
    ///
    /// Why this shape: 80 bits make finding another key with a given
    /// fingerprint (a second preimage) cost about 2^80 hashes and key
    /// generations, out of reach, while 16 characters still fit in a list
    /// line. Base32 has no look-alike characters to mix up (no 0/O, 1/l)
    /// and 10 bytes are exactly 16 of its characters, so no padding; the
    /// groups of four are read and compared like a phone number. The domain
    /// prefix keeps it unrelated to any other hash of the key. It is only for
    /// people: the code compares whole keys.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hash = Blake2s256::new();
        hash.update(b"natter/2 fingerprint\n");
        hash.update(self.0);
        let digest = hash.finalize();
        let text = data_encoding::BASE32_NOPAD
            .encode(&digest[..10])
            .to_ascii_lowercase();
        let groups: Vec<&str> = (0..4).map(|i| &text[i * 4..i * 4 + 4]).collect();
        Fingerprint(groups.join("-"))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A public key that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a public key is 64 hex digits")]
pub struct ParseKeyError;

impl FromStr for PublicKey {
    type Err = ParseKeyError;

    /// Accepts upper or lower case, as people paste keys.
    fn from_str(text: &str) -> Result<Self, ParseKeyError> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .map_err(|_| ParseKeyError)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| ParseKeyError)?;
        Ok(PublicKey(bytes))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A key's fingerprint (see [`PublicKey::fingerprint`]); a JSON string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number two people read to each other to check, out of band, that
/// each holds the other's real key: the same string on both sides whatever
/// the argument order, and different for any other pair of keys.
///
/// 12 groups of 5 digits, as in Signal: BLAKE2b-512 of
/// `"natter/2 safety number\n"` ‖ smaller key ‖ larger key; each group is a
/// 5-byte big-endian slice of the digest modulo 100000. Why so long: a
/// man in the middle picks both keys it shows (one to each side) and needs
/// the two numbers to match, a birthday search; 60 digits (about 199 bits)
/// put that at about 2^99 work, where a 30-digit number would be 2^50.
pub fn safety_number(a: &PublicKey, b: &PublicKey) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut hash = Blake2b512::new();
    hash.update(b"natter/2 safety number\n");
    hash.update(low.0);
    hash.update(high.0);
    let digest = hash.finalize();
    let groups: Vec<String> = digest[..60]
        .chunks_exact(5)
        .map(|chunk| {
            let value = chunk
                .iter()
                .fold(0u64, |acc, &byte| acc << 8 | u64::from(byte));
            format!("{:05}", value % 100_000)
        })
        .collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        Identity::from_seed(&[byte; KEY_LEN]).public()
    }

    #[test]
    fn public_key_matches_rfc7748_test_vector() {
        // RFC 7748, section 6.1: Alice's private and public keys.
        let secret: [u8; 32] = data_encoding::HEXLOWER
            .decode(b"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .unwrap()
            .try_into()
            .unwrap();
        let public = Identity::from_secret(secret).public();
        assert_eq!(
            public.to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn same_seed_gives_same_identity_and_other_seed_another() {
        assert_eq!(key(1), key(1));
        assert_ne!(key(1), key(2));
        // The seed is not used as the secret itself.
        assert_ne!(Identity::from_seed(&[1; 32]).secret(), &[1; 32]);
    }

    #[test]
    fn derived_seeds_differ_by_purpose_and_index() {
        let master = [7; 32];
        let seeds = [
            derive_seed(&master, b"link", 0),
            derive_seed(&master, b"link", 1),
            derive_seed(&master, b"identity", 0),
            derive_seed(&[8; 32], b"link", 0),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(derive_seed(&master, b"link", 1), seeds[1]);
    }

    #[test]
    fn fingerprint_is_four_groups_of_four_base32_characters() {
        let fingerprint = key(1).fingerprint();
        let text = fingerprint.as_str();
        assert_eq!(text.len(), 19, "{text}");
        for (i, group) in text.split('-').enumerate() {
            assert!(i < 4, "{text}");
            assert_eq!(group.len(), 4, "{text}");
            assert!(
                group
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)),
                "{text}"
            );
        }
        assert_eq!(fingerprint, key(1).fingerprint(), "stable");
        assert_ne!(fingerprint, key(2).fingerprint());
    }

    #[test]
    fn fingerprint_and_safety_number_of_known_keys_never_change() {
        // Both are shown to users and written down by them: a change of the
        // recipe would make every contact look changed. The expected values
        // were computed independently (Python's hashlib) from the recipes in
        // the doc comments.
        let zero = PublicKey::from_bytes([0; 32]);
        let mut one = [0; 32];
        one[0] = 1;
        let one = PublicKey::from_bytes(one);
        assert_eq!(zero.fingerprint().as_str(), "zjoc-wn2t-7md2-o2h6");
        assert_eq!(
            safety_number(&one, &zero),
            "43551 37199 42197 78995 16338 24276 25137 72994 72009 51572 04361 79950"
        );
    }

    #[test]
    fn safety_number_is_the_same_on_both_sides_and_differs_per_pair() {
        let (alice, bob, mallory) = (key(1), key(2), key(3));
        let number = safety_number(&alice, &bob);
        assert_eq!(number, safety_number(&bob, &alice));
        assert_ne!(number, safety_number(&alice, &mallory));
        assert_ne!(number, safety_number(&mallory, &bob));
        let groups: Vec<&str> = number.split(' ').collect();
        assert_eq!(groups.len(), 12, "{number}");
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())),
            "{number}"
        );
    }

    #[test]
    fn public_key_is_lowercase_hex_in_json_and_round_trips() {
        let public = key(1);
        let json = serde_json::to_string(&public).unwrap();
        assert_eq!(json, format!("\"{public}\""));
        assert_eq!(json.len(), 66);
        assert!(json[1..65]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), public);
        assert_eq!(
            public.to_string().to_uppercase().parse::<PublicKey>(),
            Ok(public)
        );
        assert!(serde_json::from_str::<PublicKey>("\"abcd\"").is_err());
        assert_eq!("zz".repeat(32).parse::<PublicKey>(), Err(ParseKeyError));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let identity = Identity::from_secret([0xab; 32]);
        let debug = format!("{identity:?} {:#?}", identity);
        assert!(!debug.to_lowercase().contains("abab"), "{debug}");
        assert!(!debug.contains("171"), "{debug}"); // 0xab in decimal
        assert!(
            debug.contains(identity.public().fingerprint().as_str()),
            "{debug}"
        );
    }
}
