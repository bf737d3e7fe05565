//! Session ids: random, URL-safe, validated, stored inline.

use std::{
    fmt,
    hash::{self, BuildHasher, RandomState},
    str,
};

use base64::Engine as _;
use once_cell::sync::Lazy;

use crate::error::{Error, Result};

/// Longest id the store accepts, in bytes.
pub const MAX_ID_LEN: usize = 48;
/// Shortest id the store accepts, in bytes (16 base64url characters carry 96 bits; ids this
/// crate generates are longer, see [`SessionId::generate`]).
pub const MIN_ID_LEN: usize = 16;
/// Random bytes in a generated id: 192 bits, 32 base64url characters.
pub const GENERATED_ID_BYTES: usize = 24;

/// The process-wide key of the ids' hash: random per process, so nobody outside can
/// choose ids that collide.
static ID_HASHER: Lazy<RandomState> = Lazy::new(RandomState::new);

/// A session id: 16 to 48 characters of the URL-safe alphabet `A–Z a–z 0–9 - _`.
///
/// Ids are `Copy` and live inline in 64 bytes (no allocation). Each carries its keyed hash,
/// computed once when the id is made, so the store picks a shard and looks the id up
/// without hashing it again. [`SessionId::generate`] draws a fresh one from the operating
/// system's CSPRNG; [`SessionId::parse`] validates one that came from outside.
#[derive(Clone, Copy)]
pub struct SessionId {
    hash: u64,
    len: u8,
    /// The id's bytes, then zeros: `buf[len]` is always 0, so the id is also a C string.
    buf: [u8; MAX_ID_LEN + 1],
}

impl SessionId {
    /// A fresh id of 192 random bits from the OS CSPRNG, base64url without padding.
    ///
    /// Panics only if the operating system cannot provide randomness at all, which leaves
    /// no safe way to make session ids.
    pub fn generate() -> SessionId {
        let mut raw = [0u8; GENERATED_ID_BYTES];
        // An OS without a working CSPRNG cannot issue unguessable ids: refuse loudly.
        #[allow(
            clippy::expect_used,
            reason = "no safe fallback exists without randomness"
        )]
        getrandom::fill(&mut raw).expect("the OS random number generator failed");
        let mut buf = [0u8; MAX_ID_LEN + 1];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(raw, &mut buf)
            .unwrap_or(0);
        SessionId::from_parts(n, buf)
    }

    fn from_parts(len: usize, buf: [u8; MAX_ID_LEN + 1]) -> SessionId {
        SessionId {
            hash: ID_HASHER.hash_one(&buf[..len]),
            len: len as u8,
            buf,
        }
    }

    /// The id's keyed hash (stable within this process only).
    pub fn hash64(&self) -> u64 {
        self.hash
    }

    /// Validates `s` as an id: length 16..=64, characters `A–Z a–z 0–9 - _` only.
    pub fn parse(s: &str) -> Result<SessionId> {
        let b = s.as_bytes();
        if b.len() < MIN_ID_LEN || b.len() > MAX_ID_LEN {
            return Err(Error::invalid(format!(
                "session id must be {MIN_ID_LEN} to {MAX_ID_LEN} characters, got {}",
                b.len()
            )));
        }
        if let Some(bad) = b
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
        {
            return Err(Error::invalid(format!(
                "session id has a character outside A-Z a-z 0-9 - _ at byte {bad}"
            )));
        }
        let mut buf = [0u8; MAX_ID_LEN + 1];
        buf[..b.len()].copy_from_slice(b);
        Ok(SessionId::from_parts(b.len(), buf))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked by `parse`, produced by base64url).
        str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The id as a NUL-terminated C string, valid as long as this `SessionId`.
    pub fn as_c_ptr(&self) -> *const std::ffi::c_char {
        self.buf.as_ptr().cast()
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.as_bytes() == other.as_bytes()
    }
}
impl Eq for SessionId {}

impl PartialOrd for SessionId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SessionId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl hash::Hash for SessionId {
    fn hash<H: hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash)
    }
}

/// A hasher for maps keyed by [`SessionId`]: passes the id's cached keyed hash through.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `SessionId`; anything else still hashes sensibly.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// `BuildHasher` of [`IdHasher`].
pub type IdHash = hash::BuildHasherDefault<IdHasher>;

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.as_str())
    }
}

impl str::FromStr for SessionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<SessionId> {
        SessionId::parse(s)
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_long_unique_and_parse_back() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn parse_rejects_bad_ids() {
        assert!(SessionId::parse("short").is_err());
        assert!(SessionId::parse(&"a".repeat(49)).is_err());
        assert!(SessionId::parse(&"a".repeat(48)).is_ok());
        assert_eq!(std::mem::size_of::<SessionId>(), 64);
        let long = SessionId::parse(&"b".repeat(48)).unwrap();
        // SAFETY: as_c_ptr points at 49 bytes, the last of them 0.
        let c = unsafe { std::ffi::CStr::from_ptr(long.as_c_ptr()) };
        assert_eq!(c.to_str().unwrap(), long.as_str());
        assert!(SessionId::parse("abcdefghijklmnop;").is_err());
        assert!(SessionId::parse("abcdefghijklmnop=").is_err());
        assert!(SessionId::parse("abcdefghijklmnopé").is_err());
        assert!(SessionId::parse("abcdefghijklmnop").is_ok());
    }
}
