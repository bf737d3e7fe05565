//! Parsing of the `Cookie` request header (RFC 6265, sections 4.2.1 and 5.4).
//!
//! Browsers send `name=value` pairs separated by `"; "`. Real traffic is messier: extra
//! spaces or tabs, a missing space after the `;`, quoted values, pairs without `=`, the same
//! name twice (one cookie per matching path or domain), and junk written by other software
//! on the same site. The parser here is lenient about the layout and strict about the
//! content: it keeps every well-formed pair, in order, and silently drops the rest, so one
//! bad cookie of another application never hides the session cookie.

/// Whether `b` is an RFC 7230 `tchar`, the characters allowed in a cookie name.
///
/// `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" /
/// "|" / "~" / DIGIT / ALPHA`
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Whether `s` is a non-empty RFC 7230 `token` (one or more [`is_tchar`] characters).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `b` is an RFC 6265 `cookie-octet`: printable US-ASCII except space, `"`, `,`,
/// `;` and `\`.
///
/// `cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`
pub(crate) fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// Removes the optional whitespace (spaces and horizontal tabs) around a name or a value.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Parses a `Cookie` request header into its `(name, value)` pairs, in header order.
///
/// The header is split on `;`; each piece is split on its first `=`, and spaces and tabs
/// around the name and the value are removed. One pair of double quotes around a value is
/// removed too (`"abc"` gives `abc`). Repeated names are all kept, in order: a browser sends
/// the cookie with the most specific path first, and the caller decides which to use.
///
/// Pieces that are not well-formed cookies are skipped rather than reported:
///
/// * a piece without `=`, or with an empty name;
/// * a name with a character that is not an RFC 7230 token character;
/// * a value (after unquoting) with a character that is not an RFC 6265 `cookie-octet`
///   (space, `"`, `,`, `\`, a control character or any non-ASCII character).
///
/// Values may be empty. The returned slices borrow from `header`. The function accepts any
/// string and never panics.
///
/// ```
/// use sessync::cookie::parse_cookie_header;
///
/// let pairs = parse_cookie_header(r#"a=1; b="two";junk; a=3"#);
/// assert_eq!(pairs, [("a", "1"), ("b", "two"), ("a", "3")]);
/// ```
pub fn parse_cookie_header(header: &str) -> Vec<(&str, &str)> {
    header
        .split(';')
        .filter_map(|p| parse_pair(p, None))
        .collect()
}

/// The values of the cookies named `name` in a `Cookie` header, lazily, in header order,
/// with the same rules as [`parse_cookie_header`]. Only those cookies' values are checked.
pub fn cookie_values<'h>(header: &'h str, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    header
        .split(';')
        .filter_map(move |p| parse_pair(p, Some(name)).map(|(_, v)| v))
}

/// Parses one `name=value` piece of a `Cookie` header, or returns `None` to skip it (or,
/// with `only`, when the name is another).
fn parse_pair<'h>(piece: &'h str, only: Option<&str>) -> Option<(&'h str, &'h str)> {
    let (name, value) = piece.split_once('=')?;
    let name = trim_ows(name);
    if only.is_some_and(|n| n != name) || !is_token(name) {
        return None;
    }
    let value = unquote(trim_ows(value));
    if !value.bytes().all(is_cookie_octet) {
        return None;
    }
    Some((name, value))
}

/// Removes one pair of surrounding double quotes, if there is one.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_cookies() {
        assert_eq!(
            parse_cookie_header("a=1; b=2; sync_sess=abc"),
            [("a", "1"), ("b", "2"), ("sync_sess", "abc")]
        );
    }

    #[test]
    fn single_cookie_and_empty_value() {
        assert_eq!(parse_cookie_header("a=1"), [("a", "1")]);
        assert_eq!(parse_cookie_header("a="), [("a", "")]);
        assert_eq!(parse_cookie_header("a=; b=2"), [("a", ""), ("b", "2")]);
    }

    #[test]
    fn spaces_and_tabs_are_trimmed() {
        assert_eq!(
            parse_cookie_header(" a = 1 ;\tb\t=\t2\t;c=3;;  ; d=4  "),
            [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]
        );
    }

    #[test]
    fn no_space_after_separator() {
        assert_eq!(parse_cookie_header("a=1;b=2"), [("a", "1"), ("b", "2")]);
    }

    #[test]
    fn value_is_split_on_the_first_equals_sign() {
        assert_eq!(
            parse_cookie_header("a=b=c; d==; e=x="),
            [("a", "b=c"), ("d", "="), ("e", "x=")]
        );
    }

    #[test]
    fn quoted_values_lose_one_pair_of_quotes() {
        assert_eq!(
            parse_cookie_header(r#"a="abc"; b=""; c = "x" "#),
            [("a", "abc"), ("b", ""), ("c", "x")]
        );
        // Two pairs of quotes: the inner ones are not cookie-octets, so the pair is junk.
        assert_eq!(parse_cookie_header(r#"a=""abc""; b=1"#), [("b", "1")]);
        // Unbalanced quotes are not stripped, and a `"` is not a cookie-octet.
        assert_eq!(
            parse_cookie_header(r#"a="abc; b=abc"; c="; d=1"#),
            [("d", "1")]
        );
        // A space inside the quotes is still not a cookie-octet.
        assert_eq!(parse_cookie_header(r#"a="a b"; b=1"#), [("b", "1")]);
    }

    #[test]
    fn repeated_names_are_kept_in_order() {
        assert_eq!(
            parse_cookie_header("s=first; x=1; s=second; s=third"),
            [("s", "first"), ("x", "1"), ("s", "second"), ("s", "third")]
        );
    }

    #[test]
    fn junk_pairs_are_skipped() {
        let header = "noequals; =novalue; a b=1; a,b=2; ok=1; (x)=3; v=a b; w=a,b; \
                      x=a\\b; y=a\u{7f}; z=a\u{1}b; good=2; e@=1; {}=2";
        assert_eq!(parse_cookie_header(header), [("ok", "1"), ("good", "2")]);
    }

    #[test]
    fn token_punctuation_is_allowed_in_names() {
        assert_eq!(
            parse_cookie_header("!#$%&'*+-.^_`|~Az09=v"),
            [("!#$%&'*+-.^_`|~Az09", "v")]
        );
    }

    #[test]
    fn cookie_octet_punctuation_is_allowed_in_values() {
        let value = "!#$%&'()*+-./:<=>?@[]^_`{|}~";
        let header = format!("a={value}");
        assert_eq!(parse_cookie_header(&header), [("a", value)]);
    }

    #[test]
    fn empty_and_blank_headers() {
        assert!(parse_cookie_header("").is_empty());
        assert!(parse_cookie_header("   ").is_empty());
        assert!(parse_cookie_header(";;;").is_empty());
        assert!(parse_cookie_header(" ; \t; ").is_empty());
        assert!(parse_cookie_header("=").is_empty());
    }

    #[test]
    fn non_ascii_is_skipped_without_panicking() {
        assert_eq!(
            parse_cookie_header("é=1; a=é; b=2; ключ=значение; c=\u{1F36A}; 🍪=x; d=3"),
            [("b", "2"), ("d", "3")]
        );
        // Multi-byte characters right next to the separators.
        assert_eq!(parse_cookie_header("é;é=é;=é"), []);
        assert_eq!(parse_cookie_header("a=\"é\""), []);
        // Unicode whitespace is not optional whitespace: the pair is junk.
        assert_eq!(parse_cookie_header("\u{a0}a=1"), []);
    }

    #[test]
    fn character_classes() {
        assert!(is_token("sync_sess"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a=b"));
        for b in 0u8..=0x20 {
            assert!(!is_tchar(b) && !is_cookie_octet(b), "byte {b:#x}");
        }
        for b in [b'"', b',', b';', b'\\', 0x7f, 0x80, 0xff] {
            assert!(!is_cookie_octet(b), "byte {b:#x}");
        }
        for b in [
            b'(', b')', b'/', b':', b'<', b'=', b'>', b'?', b'@', b'[', b']', b'{', b'}',
        ] {
            assert!(!is_tchar(b), "byte {b:#x}");
            assert!(is_cookie_octet(b), "byte {b:#x}");
        }
    }
}
