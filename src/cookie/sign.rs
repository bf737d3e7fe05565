//! Signed cookie values: `<id>.<sig>`, where `sig` is the unpadded base64 encoding of
//! HMAC-SHA256 over the id's bytes: base64url for sessync's own format, standard base64
//! (`+` and `/`) for express-session's (the `cookie-signature` package's `sign`).
//!
//! Session ids are already unguessable, so the signature does not make them secret; it lets
//! the server reject forged or corrupted cookies before touching the store, and lets keys be
//! rotated: the first key signs, every configured key verifies.
//!
//! All the cryptography comes from the `hmac` and `sha2` crates; the comparison of a
//! presented signature with the expected one is the constant-time
//! [`Mac::verify_slice`].

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::session::SessionId;

/// HMAC with SHA-256.
type HmacSha256 = Hmac<Sha256>;

/// Bytes in an HMAC-SHA256 tag.
pub(crate) const SIG_BYTES: usize = 32;

/// Characters in a tag encoded as unpadded base64 (either alphabet): `ceil(32 * 8 / 6)`.
pub(crate) const SIG_CHARS: usize = 43;

/// Separates the id from its signature. Not in the id alphabet nor in either base64's.
pub(crate) const SEPARATOR: char = '.';

/// The alphabet a signature is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// base64url (`-` and `_`), sessync's own cookies.
    UrlSafe,
    /// Standard base64 (`+` and `/`), express-session's cookies.
    Standard,
}

impl Alphabet {
    /// The strict unpadded engine of this alphabet: it writes no `=` and, decoding, refuses
    /// padding and non-zero trailing bits.
    fn engine(self) -> &'static GeneralPurpose {
        match self {
            Alphabet::UrlSafe => &URL_SAFE_NO_PAD,
            Alphabet::Standard => &STANDARD_NO_PAD,
        }
    }
}

/// A MAC keyed with `key`, fed with the bytes of `id`.
///
/// HMAC accepts keys of any length (longer ones are hashed first), so this only returns
/// `None` if the `hmac` crate ever changed that; callers then fail closed.
fn mac_of(key: &[u8], id: &SessionId) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(id.as_bytes());
    Some(mac)
}

/// The signature of `id` under `key`, as unpadded base64url (43 characters).
///
/// Returns `None` only if the MAC cannot be keyed (see [`mac_of`]).
pub(crate) fn signature(key: &[u8], id: &SessionId) -> Option<String> {
    signature_in(Alphabet::UrlSafe, key, id)
}

/// The signature of `id` under `key`, as unpadded base64 in `alphabet` (43 characters).
///
/// Returns `None` only if the MAC cannot be keyed (see [`mac_of`]).
pub(crate) fn signature_in(alphabet: Alphabet, key: &[u8], id: &SessionId) -> Option<String> {
    let tag = mac_of(key, id)?.finalize().into_bytes();
    Some(alphabet.engine().encode(tag))
}

/// Whether `sig` (unpadded base64url) is the signature of `id` under one of `keys`.
///
/// The base64 decoding is strict: padding and non-zero trailing bits are refused, so each
/// tag has exactly one accepted spelling and no altered character of a valid signature can
/// still verify. The tag itself is compared in constant time.
pub(crate) fn verify(keys: &[Vec<u8>], id: &SessionId, sig: &str) -> bool {
    verify_in(Alphabet::UrlSafe, keys, id, sig)
}

/// Whether `sig` (unpadded base64 in `alphabet`) is the signature of `id` under one of
/// `keys`, with the same strict decoding and constant-time comparison as [`verify`].
pub(crate) fn verify_in(alphabet: Alphabet, keys: &[Vec<u8>], id: &SessionId, sig: &str) -> bool {
    if sig.len() != SIG_CHARS {
        return false;
    }
    let mut tag = [0u8; SIG_BYTES];
    match alphabet.engine().decode_slice(sig, &mut tag) {
        Ok(SIG_BYTES) => {}
        _ => return false,
    }
    keys.iter().any(|key| {
        mac_of(key, id)
            .map(|mac| mac.verify_slice(&tag).is_ok())
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::parse("abcdefghijklmnop-_0123456789ABCD").unwrap()
    }

    #[test]
    fn signature_is_43_base64url_characters() {
        let sig = signature(b"0123456789abcdef", &id()).unwrap();
        assert_eq!(sig.len(), SIG_CHARS);
        assert!(
            sig.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        // The data is not a valid id, so check the MAC itself on the same primitive.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_format_is_stable() {
        // Computed independently (Python's hmac, hashlib and base64 modules). A change here
        // would invalidate every signed cookie in the wild.
        assert_eq!(
            signature(b"0123456789abcdef", &id()).unwrap(),
            "7npFBWbWTn2jG8UPmY-dpStsHhPqg-wb004lwxMThl0"
        );
    }

    #[test]
    fn standard_alphabet_signature_format_is_stable() {
        // The same tag as above in standard base64: what Node's
        // `crypto.createHmac('sha256', key).update(id).digest('base64')` gives, `=` removed
        // (computed independently with Python's hmac, hashlib and base64 modules).
        let sig = signature_in(Alphabet::Standard, b"0123456789abcdef", &id()).unwrap();
        assert_eq!(sig, "7npFBWbWTn2jG8UPmY+dpStsHhPqg+wb004lwxMThl0");
        let keys = [b"0123456789abcdef".to_vec()];
        assert!(verify_in(Alphabet::Standard, &keys, &id(), &sig));
        // Each alphabet refuses the other's spelling of a tag that uses `+`/`-` or `/`/`_`.
        assert!(!verify_in(Alphabet::UrlSafe, &keys, &id(), &sig));
        let url = signature(&keys[0], &id()).unwrap();
        assert!(!verify_in(Alphabet::Standard, &keys, &id(), &url));
        // Padding is refused: cookie-signature strips it, so a padded tag is not its output.
        assert!(!verify_in(
            Alphabet::Standard,
            &keys,
            &id(),
            &format!("{sig}=")
        ));
    }

    #[test]
    fn verifies_under_any_key() {
        let old = b"old-key-0123456789".to_vec();
        let new = b"new-key-0123456789".to_vec();
        let sig = signature(&old, &id()).unwrap();
        assert!(verify(std::slice::from_ref(&old), &id(), &sig));
        assert!(verify(&[new.clone(), old], &id(), &sig));
        assert!(!verify(&[new], &id(), &sig));
        assert!(!verify(&[], &id(), &sig));
    }

    #[test]
    fn rejects_other_ids_and_mangled_signatures() {
        let key = b"0123456789abcdef".to_vec();
        let keys = [key.clone()];
        let sig = signature(&key, &id()).unwrap();
        let other = SessionId::parse("abcdefghijklmnop-_0123456789ABCE").unwrap();
        assert!(!verify(&keys, &other, &sig));
        assert!(!verify(&keys, &id(), &sig[..SIG_CHARS - 1]));
        assert!(!verify(&keys, &id(), &format!("{sig}A")));
        assert!(!verify(&keys, &id(), &format!("{sig}=")));
        assert!(!verify(&keys, &id(), ""));
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // 43 characters carry 258 bits for a 256-bit tag: the last character's low two
        // bits must be zero. Setting them gives a string that a lenient decoder would map
        // to the same tag; the strict decoder refuses it.
        let keys = [b"0123456789abcdef".to_vec()];
        let sig = signature(&keys[0], &id()).unwrap();
        assert!(verify(&keys, &id(), &sig));
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = sig.as_bytes()[SIG_CHARS - 1];
        let pos = alphabet.iter().position(|&c| c == last).unwrap();
        assert_eq!(pos & 0b11, 0);
        for low in 1..4 {
            let mut bent = sig.clone().into_bytes();
            bent[SIG_CHARS - 1] = alphabet[pos | low];
            let bent = String::from_utf8(bent).unwrap();
            assert!(!verify(&keys, &id(), &bent), "{bent}");
        }
    }
}
