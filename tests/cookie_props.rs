//! Property tests of the cookie module: header parsing and the session cookie value.

use proptest::prelude::*;
use sessync::SessionId;
use sessync::cookie::{CookieConfig, CookieFormat, parse_cookie_header};

/// An RFC 7230 token: a cookie name.
fn token() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}"
}

/// A cookie value: zero or more RFC 6265 cookie-octets (printable ASCII except space, `"`,
/// `,`, `;` and `\`).
fn cookie_value() -> impl Strategy<Value = String> {
    "[!#-+\\--:<-\\[\\]-~]{0,16}"
}

/// Optional whitespace around a name or a value.
fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

/// One `name=value` piece with random whitespace around its parts, and the pair it holds.
fn piece() -> impl Strategy<Value = (String, (String, String))> {
    (ows(), token(), ows(), ows(), cookie_value(), ows()).prop_map(|(a, name, b, c, value, d)| {
        (format!("{a}{name}{b}={c}{value}{d}"), (name, value))
    })
}

/// A session id, 16 to 48 characters of the id alphabet.
fn session_id() -> impl Strategy<Value = SessionId> {
    "[A-Za-z0-9_-]{16,48}".prop_map(|s| SessionId::parse(&s).expect("the regex makes valid ids"))
}

/// One to three signing keys of 16 to 64 bytes.
fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 16..=64), 1..=3)
}

proptest! {
    /// Well-formed pairs, joined with `"; "` or `";"` and padded with whitespace, come back
    /// exactly, in order, repeated names included.
    #[test]
    fn parses_generated_headers_exactly(
        pieces in prop::collection::vec((piece(), prop::bool::ANY), 0..8),
    ) {
        let mut header = String::new();
        let mut expected = Vec::new();
        for (i, ((text, pair), spaced)) in pieces.iter().enumerate() {
            if i > 0 {
                header.push_str(if *spaced { "; " } else { ";" });
            }
            header.push_str(text);
            expected.push((pair.0.as_str(), pair.1.as_str()));
        }
        prop_assert_eq!(parse_cookie_header(&header), expected);
    }

    /// Arbitrary text, non-ASCII included, never makes the parser panic, and whatever it
    /// returns is made of well-formed names and values.
    #[test]
    fn parser_never_panics(header in any::<String>()) {
        for (name, value) in parse_cookie_header(&header) {
            prop_assert!(!name.is_empty());
            prop_assert!(name.is_ascii() && value.is_ascii());
            prop_assert!(!name.contains([' ', '\t', ';', '=']));
            prop_assert!(!value.contains([' ', '\t', ';', '"', ',', '\\']));
        }
    }

    /// Text built from the characters that matter to the parser exercises its edge cases
    /// far more often than uniformly random text.
    #[test]
    fn parser_never_panics_on_cookie_like_text(header in "[a-c=; \t\"é,\\\\]{0,40}") {
        let _ = parse_cookie_header(&header);
    }

    /// `session_ids` never panics, signed or not, and only returns ids it could encode.
    #[test]
    fn session_ids_never_panics(header in any::<String>(), keys in keys(), sign in any::<bool>()) {
        let config = CookieConfig { keys: if sign { keys } else { Vec::new() }, ..Default::default() };
        for id in config.session_ids(&header) {
            prop_assert_eq!(config.decode_value(&config.encode_value(&id)), Some(id));
        }
        let with_name = format!("sync_sess={header}");
        let _ = config.session_ids(&with_name);
    }

    /// Encoding then decoding gives the id back, with or without signing keys.
    #[test]
    fn value_round_trips(id in session_id(), keys in keys()) {
        let unsigned = CookieConfig::default();
        prop_assert_eq!(unsigned.decode_value(&unsigned.encode_value(&id)), Some(id));

        let signed = CookieConfig { keys, ..Default::default() };
        let value = signed.encode_value(&id);
        prop_assert_eq!(signed.decode_value(&value), Some(id));

        // And through a whole header, among other cookies.
        let header = format!("a=1; sync_sess={value}; b=2");
        prop_assert_eq!(signed.session_ids(&header), vec![id]);
    }

    /// Changing any one character of a signed value makes it decode to nothing.
    ///
    /// This is what is guaranteed, and why:
    /// * a changed character in the id part changes the message, and forging HMAC-SHA256
    ///   for it without the key is infeasible (chance 2^-256 per key), so it cannot verify;
    /// * a changed `.` leaves no separator (or moves it), and an unsigned or misshapen
    ///   value is refused while signing is on;
    /// * a changed character in the signature either is not base64url, or decodes to
    ///   another tag: the decoding is strict (no padding, zero trailing bits), so every tag
    ///   has a single spelling and the 4 spellings a lenient decoder would accept for the
    ///   last character are refused.
    ///
    /// So the result is `None`, not merely "not this id". (The guarantee is cryptographic,
    /// not absolute: a random change verifies with probability about 2^-256.)
    #[test]
    fn changing_one_character_of_a_signed_value_breaks_it(
        id in session_id(),
        keys in keys(),
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é"
                .chars()
                .collect::<Vec<_>>(),
        ),
    ) {
        let config = CookieConfig { keys, ..Default::default() };
        let value = config.encode_value(&id);
        let mut chars: Vec<char> = value.chars().collect();
        let at = position.index(chars.len());
        prop_assume!(chars[at] != replacement);
        chars[at] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert_eq!(config.decode_value(&changed), None, "{} -> {}", value, changed);
    }

    /// Dropping a suffix of a signed value, or dropping the separator, also breaks it.
    #[test]
    fn truncating_a_signed_value_breaks_it(
        id in session_id(),
        keys in keys(),
        cut in any::<prop::sample::Index>(),
    ) {
        let config = CookieConfig { keys, ..Default::default() };
        let value = config.encode_value(&id);
        let keep = cut.index(value.len());
        prop_assert_eq!(config.decode_value(&value[..keep]), None);
        prop_assert_eq!(config.decode_value(&value.replacen('.', "", 1)), None);
    }

    /// The express-session format round-trips, alone and through a header, and its value
    /// is a cookie value that needs no quoting.
    #[test]
    fn express_value_round_trips(id in session_id(), keys in keys()) {
        let config = CookieConfig::express(keys);
        let value = config.encode_value(&id);
        prop_assert!(value.starts_with("s%3A"), "{}", value);
        prop_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.%".contains(&b)));
        prop_assert_eq!(config.decode_value(&value), Some(id));
        let header = format!("a=1; connect.sid={value}; b=2");
        prop_assert_eq!(config.session_ids(&header), vec![id]);
    }

    /// In the express format, changing one character of the decoded value `s:<id>.<sig>`
    /// (then encoding it again, as a client could) breaks it, for the reasons given for
    /// the sessync format above; so does changing one character of the encoded value,
    /// except for the case of a hex digit in an escape (`%2b` is `%2B`), which spells the
    /// same value and decodes to the same id.
    #[test]
    fn changing_one_character_of_an_express_value_breaks_it(
        id in session_id(),
        keys in keys(),
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/:% é"
                .chars()
                .collect::<Vec<_>>(),
        ),
    ) {
        let config = CookieConfig::express(keys);
        let value = config.encode_value(&id);
        let plain = value.replace("%3A", ":").replace("%2B", "+").replace("%2F", "/");
        let mut chars: Vec<char> = plain.chars().collect();
        let at = position.index(chars.len());
        if chars[at] != replacement {
            chars[at] = replacement;
            let changed: String = chars.into_iter().collect();
            let encoded = changed.replace('%', "%25").replace(':', "%3A").replace('+', "%2B")
                .replace('/', "%2F");
            prop_assert_eq!(config.decode_value(&changed), None, "{}", changed);
            prop_assert_eq!(config.decode_value(&encoded), None, "{}", encoded);
        }
        let mut raw: Vec<char> = value.chars().collect();
        let at = position.index(raw.len());
        if raw[at] != replacement {
            let same_spelling = raw[at].eq_ignore_ascii_case(&replacement)
                && raw[..at].iter().rev().take(2).any(|&c| c == '%');
            raw[at] = replacement;
            let changed: String = raw.into_iter().collect();
            let expected = if same_spelling { Some(id) } else { None };
            prop_assert_eq!(config.decode_value(&changed), expected, "{}", changed);
        }
    }

    /// Arbitrary values never make the express decoder panic, and whatever it accepts
    /// encodes back to a value naming the same id.
    #[test]
    fn express_decoding_never_panics(value in "[s%3A2BFf:.a-zA-Z0-9_+/=-]{0,120}", keys in keys()) {
        let config = CookieConfig { keys, format: CookieFormat::Express, ..Default::default() };
        if let Some(id) = config.decode_value(&value) {
            prop_assert_eq!(config.decode_value(&config.encode_value(&id)), Some(id));
        }
    }
}
