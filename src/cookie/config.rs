//! The session cookie's configuration, its value encoding, and the `Set-Cookie` header.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use super::express;
use super::parse::{cookie_values, is_token};
use super::sign;
use crate::error::{Error, Result};
use crate::session::{MAX_ID_LEN, SessionId};

/// Shortest signing key [`CookieConfig::validate`] accepts, in bytes.
pub const MIN_SIGNING_KEY_LEN: usize = 16;

/// Longest signing key [`CookieConfig::validate`] accepts, in bytes.
pub const MAX_SIGNING_KEY_LEN: usize = 1024;

/// Longest `max_age` [`CookieConfig::validate`] accepts: 400 days, the cap RFC 6265bis sets
/// and browsers apply to `Max-Age` and `Expires`.
pub const MAX_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The `Expires` date of a removal cookie: the Unix epoch, as an IMF-fixdate.
const EPOCH_HTTP_DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// The last second an IMF-fixdate can express (9999-12-31 23:59:59 UTC); the `httpdate`
/// crate refuses later times, so `Expires` is clamped to it.
const LAST_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// The `SameSite` attribute of the cookie: when a browser sends it on cross-site requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Only on same-site requests.
    Strict,
    /// On same-site requests and on top-level cross-site navigations (links); the usual
    /// choice for a session cookie, and the browsers' default.
    Lax,
    /// On every request, cross-site ones included. Browsers accept it only together with
    /// `Secure`, which [`CookieConfig::validate`] enforces.
    None,
}

impl SameSite {
    /// The attribute value as written in `Set-Cookie`: `"Strict"`, `"Lax"` or `"None"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the cookie value carries the session id.
///
/// The format only changes the value; the name and the attributes come from the other
/// fields of [`CookieConfig`] in both formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CookieFormat {
    /// sessync's own: the bare id, or `<id>.<sig>` with signing keys (`sig` the unpadded
    /// base64url HMAC-SHA256 of the id). The default.
    #[default]
    Sessync,
    /// express-session's: `s:<id>.<sig>`, `sig` the standard base64 HMAC-SHA256 of the id
    /// with the trailing `=` removed (the `cookie-signature` package), the whole value
    /// URL-encoded as the `cookie` package writes it (`s%3A…`, `%2B`, `%2F`). Always
    /// signed: the keys are express-session's `secret` list (the first signs, every one
    /// verifies), and [`CookieConfig::validate`] requires at least one.
    Express,
}

impl CookieFormat {
    /// The format's name as [`FromStr`](std::str::FromStr) reads it: `"sessync"` or
    /// `"express"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CookieFormat::Sessync => "sessync",
            CookieFormat::Express => "express",
        }
    }
}

impl fmt::Display for CookieFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CookieFormat {
    type Err = Error;

    /// `"sessync"` or `"express"` (ASCII case ignored); anything else is
    /// [`Error::InvalidArgument`].
    fn from_str(s: &str) -> Result<CookieFormat> {
        if s.eq_ignore_ascii_case("sessync") {
            Ok(CookieFormat::Sessync)
        } else if s.eq_ignore_ascii_case("express") {
            Ok(CookieFormat::Express)
        } else {
            Err(Error::invalid(format!(
                "cookie format {s:?}: expected sessync or express"
            )))
        }
    }
}

/// How the session id travels in a cookie: its name, its attributes, its signing keys.
///
/// Build one with struct update syntax and check it once, at startup, with
/// [`validate`](CookieConfig::validate); the other methods do not validate again and simply
/// render what they are given.
///
/// ```
/// use std::time::Duration;
/// use sessync::cookie::{CookieConfig, SameSite};
///
/// let config = CookieConfig {
///     secure: true,
///     same_site: Some(SameSite::Strict),
///     max_age: Some(Duration::from_secs(3600)),
///     keys: vec![b"a secret of at least 16 bytes".to_vec()],
///     ..Default::default()
/// };
/// config.validate()?;
/// # Ok::<(), sessync::Error>(())
/// ```
///
/// With signing keys, the cookie value is `<id>.<sig>`, where `sig` is the unpadded
/// base64url HMAC-SHA256 of the id under the first key. Any of the keys verifies, so a key
/// is rotated by putting the new one first and keeping the old one after it until the
/// cookies it signed have expired.
///
/// With [`CookieFormat::Express`] the value is the one express-session writes, so a Node
/// app and a sessync server can read each other's cookies; [`CookieConfig::express`] gives
/// express-session's defaults.
///
/// The `Debug` output shows how many keys there are, never the keys themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The cookie name, an RFC 7230 token. Default `"sync_sess"`.
    pub name: String,
    /// The `Path` attribute. Default `Some("/")`: the cookie is sent to the whole site.
    pub path: Option<String>,
    /// The `Domain` attribute. Default `None`: the cookie goes back only to the host that set
    /// it, not to its subdomains.
    pub domain: Option<String>,
    /// How long the cookie lives, rendered as `Max-Age` and `Expires`, in whole seconds.
    /// Default `None`: a browser-session cookie, dropped when the browser closes.
    pub max_age: Option<Duration>,
    /// The `Secure` attribute: send the cookie over HTTPS only. Default `false`.
    pub secure: bool,
    /// The `HttpOnly` attribute: hide the cookie from scripts. Default `true`.
    pub http_only: bool,
    /// The `SameSite` attribute. Default `Some(SameSite::Lax)`; `None` omits it.
    pub same_site: Option<SameSite>,
    /// Signing keys. Empty (the default) means unsigned values; otherwise the first key
    /// signs and every key verifies. With [`CookieFormat::Express`], express-session's
    /// secrets (as UTF-8 bytes), at least one.
    pub keys: Vec<Vec<u8>>,
    /// How the value carries the id. Default [`CookieFormat::Sessync`].
    pub format: CookieFormat,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "sync_sess".to_string(),
            path: Some("/".to_string()),
            domain: None,
            max_age: None,
            secure: false,
            http_only: true,
            same_site: Some(SameSite::Lax),
            keys: Vec::new(),
            format: CookieFormat::Sessync,
        }
    }
}

impl fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieConfig")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("max_age", &self.max_age)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("format", &self.format)
            .finish()
    }
}

impl CookieConfig {
    /// The cookie of an express-session app: [`CookieFormat::Express`], named
    /// `connect.sid` (express-session's default name), signed with `secrets` (the first
    /// signs, every one verifies, as with express-session's `secret` array), `Path=/` and
    /// `HttpOnly` as express-session sets them by default.
    ///
    /// The other fields keep their defaults: no `Max-Age` (set `max_age` to the app's
    /// `cookie.maxAge`), not `Secure`, and `SameSite=Lax`, which express-session does not
    /// write but browsers apply anyway when it is missing. Change any of them with struct
    /// update syntax, and call [`validate`](CookieConfig::validate): each secret must be at
    /// least [`MIN_SIGNING_KEY_LEN`] bytes, which express-session does not require.
    ///
    /// ```
    /// use sessync::cookie::{CookieConfig, CookieFormat};
    ///
    /// let config = CookieConfig::express(vec![b"the app's secret, 16+ bytes".to_vec()]);
    /// assert_eq!((config.name.as_str(), config.format), ("connect.sid", CookieFormat::Express));
    /// config.validate()?;
    /// # Ok::<(), sessync::Error>(())
    /// ```
    pub fn express(secrets: Vec<Vec<u8>>) -> CookieConfig {
        CookieConfig {
            name: "connect.sid".to_string(),
            keys: secrets,
            format: CookieFormat::Express,
            ..CookieConfig::default()
        }
    }

    /// Checks that the configuration yields a cookie browsers accept and a sound signature.
    ///
    /// * `name`: a non-empty RFC 7230 token. A name starting with `__Secure-` needs
    ///   `secure`; one starting with `__Host-` needs `secure`, `path` `/` and no `domain`
    ///   (browsers drop such cookies otherwise; the prefixes are matched ignoring case).
    /// * `path`, `domain`: not empty, printable US-ASCII only (no control characters), no
    ///   `;`. A `path` must start with `/` (browsers ignore any other).
    /// * `max_age`: at least one second (a `Max-Age` of 0 deletes the cookie) and at most
    ///   [`MAX_COOKIE_AGE`] (400 days).
    /// * `same_site`: `SameSite::None` needs `secure`.
    /// * `keys`: each from [`MIN_SIGNING_KEY_LEN`] to [`MAX_SIGNING_KEY_LEN`] bytes; at
    ///   least one with [`CookieFormat::Express`] (express-session always signs).
    ///
    /// Returns [`Error::InvalidArgument`] naming the first field at fault.
    pub fn validate(&self) -> Result<()> {
        if !is_token(&self.name) {
            return Err(Error::invalid(
                "cookie name must be a non-empty token (letters, digits and !#$%&'*+-.^_`|~)",
            ));
        }
        let lower_name = self.name.to_ascii_lowercase();
        if let Some(path) = &self.path {
            check_attribute("path", path)?;
            if !path.starts_with('/') {
                return Err(Error::invalid("cookie path must start with '/'"));
            }
        }
        if let Some(domain) = &self.domain {
            check_attribute("domain", domain)?;
        }
        if let Some(max_age) = self.max_age {
            if max_age < Duration::from_secs(1) {
                return Err(Error::invalid(
                    "cookie max_age must be at least 1 second (Max-Age=0 deletes the cookie)",
                ));
            }
            if max_age > MAX_COOKIE_AGE {
                return Err(Error::invalid("cookie max_age must be at most 400 days"));
            }
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(Error::invalid(
                "cookie same_site None requires secure (browsers reject it otherwise)",
            ));
        }
        if lower_name.starts_with("__secure-") && !self.secure {
            return Err(Error::invalid(
                "cookie name with the __Secure- prefix requires secure",
            ));
        }
        if lower_name.starts_with("__host-")
            && (!self.secure || self.path.as_deref() != Some("/") || self.domain.is_some())
        {
            return Err(Error::invalid(
                "cookie name with the __Host- prefix requires secure, path \"/\" and no domain",
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            if key.len() < MIN_SIGNING_KEY_LEN || key.len() > MAX_SIGNING_KEY_LEN {
                return Err(Error::invalid(format!(
                    "cookie keys[{i}] must be {MIN_SIGNING_KEY_LEN} to {MAX_SIGNING_KEY_LEN} \
                     bytes, got {}",
                    key.len()
                )));
            }
        }
        if self.format == CookieFormat::Express && self.keys.is_empty() {
            return Err(Error::invalid(
                "cookie format express requires at least one signing key (express-session's \
                 secret)",
            ));
        }
        Ok(())
    }

    /// The cookie value carrying `id`: the id itself, or `<id>.<sig>` when keys are set;
    /// with [`CookieFormat::Express`], `s%3A<id>.<sig>` as express-session writes it.
    ///
    /// The value only uses `A–Z a–z 0–9 - _ .` (and `%` in the express format), so it
    /// never needs quoting.
    pub fn encode_value(&self, id: &SessionId) -> String {
        let Some(key) = self.keys.first() else {
            // Without a key the express format has no value to offer (`validate` refuses
            // the configuration); a bare id is refused by `decode_value`, failing closed.
            return id.as_str().to_string();
        };
        if self.format == CookieFormat::Express {
            // `None` is unreachable with the `hmac` crate; fail closed as below.
            return express::encode(key, id).unwrap_or_else(|| id.as_str().to_string());
        }
        match sign::signature(key, id) {
            Some(sig) => format!("{}{}{sig}", id.as_str(), sign::SEPARATOR),
            // Unreachable with the `hmac` crate (any key length works). An unsigned value
            // is refused by `decode_value` while keys are set, so this fails closed.
            None => id.as_str().to_string(),
        }
    }

    /// The session id a cookie value carries, or `None` if the value is not one this
    /// configuration would have produced.
    ///
    /// With keys, the value must be `<id>.<sig>` with a signature that verifies under one of
    /// the keys (compared in constant time); an unsigned value is refused. Without keys, the
    /// value must be a bare id; a value with a `.` is refused. In both cases the id must pass
    /// [`SessionId::parse`].
    ///
    /// With [`CookieFormat::Express`], the value is percent-decoded (strictly: a bad
    /// escape refuses it), must start with `s:`, is split at its last `.`, and the
    /// signature (standard base64, unpadded) must verify under one of the keys, compared in
    /// constant time; an unsigned value, or any value without keys, is refused.
    pub fn decode_value(&self, value: &str) -> Option<SessionId> {
        if self.format == CookieFormat::Express {
            return express::decode(&self.keys, value);
        }
        // Longer than any value `encode_value` makes: refuse before doing any work.
        if value.len() > MAX_ID_LEN + 1 + sign::SIG_CHARS {
            return None;
        }
        if self.keys.is_empty() {
            if value.contains(sign::SEPARATOR) {
                return None;
            }
            return SessionId::parse(value).ok();
        }
        let (id, sig) = value.split_once(sign::SEPARATOR)?;
        let id = SessionId::parse(id).ok()?;
        sign::verify(&self.keys, &id, sig).then_some(id)
    }

    /// Every session id carried by cookies named [`name`](CookieConfig::name) in a `Cookie`
    /// request header, in header order, with the cookies that do not decode left out.
    ///
    /// A browser can send several cookies of the same name (set for different paths or
    /// domains); the first is the one with the most specific path.
    pub fn session_ids(&self, header: &str) -> Vec<SessionId> {
        cookie_values(header, &self.name)
            .filter_map(|value| self.decode_value(value))
            .collect()
    }

    /// The `Set-Cookie` header value that stores `id` in the browser.
    ///
    /// `now_unix_ms` is the current time in milliseconds since the Unix epoch; it only
    /// matters with a `max_age`, for the `Expires` date (`now + max_age`, clamped to the
    /// year 9999). Attributes come in this order: `Path`, `Domain`, `Max-Age`, `Expires`,
    /// `HttpOnly`, `Secure`, `SameSite`.
    ///
    /// ```
    /// use sessync::{SessionId, cookie::CookieConfig};
    ///
    /// let id = SessionId::parse("abcdefghijklmnop")?;
    /// assert_eq!(
    ///     CookieConfig::default().set_cookie(&id, 0),
    ///     "sync_sess=abcdefghijklmnop; Path=/; HttpOnly; SameSite=Lax"
    /// );
    /// # Ok::<(), sessync::Error>(())
    /// ```
    pub fn set_cookie(&self, id: &SessionId, now_unix_ms: u64) -> String {
        let lifetime = self.max_age.map(|age| {
            let secs = age.as_secs();
            (secs, expires_date(now_unix_ms, secs))
        });
        self.render(&self.encode_value(id), lifetime)
    }

    /// The `Set-Cookie` header value that deletes the cookie: an empty value, `Max-Age=0`
    /// and an `Expires` date at the Unix epoch, with the same `Path` and `Domain` as
    /// [`set_cookie`](CookieConfig::set_cookie) (browsers only replace a cookie whose name,
    /// path and domain all match) and the same attribute order.
    pub fn removal_cookie(&self) -> String {
        self.render("", Some((0, Some(EPOCH_HTTP_DATE.to_string()))))
    }

    /// Writes `name=value` and the attributes. `lifetime` is the `Max-Age` in seconds and
    /// the `Expires` date, if any.
    fn render(&self, value: &str, lifetime: Option<(u64, Option<String>)>) -> String {
        let mut out = String::with_capacity(128);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        if let Some(path) = &self.path {
            out.push_str("; Path=");
            out.push_str(path);
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if let Some((max_age, expires)) = lifetime {
            out.push_str("; Max-Age=");
            out.push_str(&max_age.to_string());
            if let Some(expires) = expires {
                out.push_str("; Expires=");
                out.push_str(&expires);
            }
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            out.push_str("; SameSite=");
            out.push_str(same_site.as_str());
        }
        out
    }
}

/// Checks a `Path` or `Domain` value: not empty, printable US-ASCII, no `;`.
fn check_attribute(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("cookie {field} must not be empty")));
    }
    if let Some(bad) = value
        .bytes()
        .position(|b| !(0x20..=0x7e).contains(&b) || b == b';')
    {
        return Err(Error::invalid(format!(
            "cookie {field} must be printable ASCII without ';' (bad byte at {bad})"
        )));
    }
    Ok(())
}

/// The IMF-fixdate `max_age_secs` seconds after `now_unix_ms`, clamped to the last date
/// the format can express; `None` if the platform's clock type cannot hold the date.
fn expires_date(now_unix_ms: u64, max_age_secs: u64) -> Option<String> {
    let secs = (now_unix_ms / 1000)
        .saturating_add(max_age_secs)
        .min(LAST_HTTP_DATE_SECS);
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .map(httpdate::fmt_http_date)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &[u8] = b"first key, 32 bytes long........";
    const KEY_B: &[u8] = b"second key, also long enough....";

    fn id() -> SessionId {
        SessionId::parse("Zm9vYmFyYmF6cXV4LW5vLXNlY3JldHM").unwrap()
    }

    fn signed(keys: &[&[u8]]) -> CookieConfig {
        CookieConfig {
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            ..Default::default()
        }
    }

    fn invalid_message(config: &CookieConfig) -> String {
        match config.validate() {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = CookieConfig::default();
        assert_eq!(c.name, "sync_sess");
        assert_eq!(c.path.as_deref(), Some("/"));
        assert_eq!(c.domain, None);
        assert_eq!(c.max_age, None);
        assert!(!c.secure);
        assert!(c.http_only);
        assert_eq!(c.same_site, Some(SameSite::Lax));
        assert!(c.keys.is_empty());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn default_set_cookie_is_exact() {
        let c = CookieConfig::default();
        assert_eq!(
            c.set_cookie(&id(), 1_700_000_000_000),
            format!("sync_sess={}; Path=/; HttpOnly; SameSite=Lax", id())
        );
    }

    #[test]
    fn set_cookie_with_every_attribute_in_order() {
        let c = CookieConfig {
            name: "sid".into(),
            domain: Some("example.com".into()),
            max_age: Some(Duration::from_secs(3600)),
            secure: true,
            same_site: Some(SameSite::Strict),
            ..Default::default()
        };
        assert_eq!(
            c.set_cookie(&id(), 0),
            format!(
                "sid={}; Path=/; Domain=example.com; Max-Age=3600; \
                 Expires=Thu, 01 Jan 1970 01:00:00 GMT; HttpOnly; Secure; SameSite=Strict",
                id()
            )
        );
    }

    #[test]
    fn set_cookie_without_optional_attributes() {
        let c = CookieConfig {
            path: None,
            http_only: false,
            same_site: None,
            ..Default::default()
        };
        assert_eq!(c.set_cookie(&id(), 0), format!("sync_sess={}", id()));
        assert_eq!(
            c.removal_cookie(),
            "sync_sess=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn same_site_values() {
        for (same_site, text) in [
            (SameSite::Strict, "Strict"),
            (SameSite::Lax, "Lax"),
            (SameSite::None, "None"),
        ] {
            assert_eq!(same_site.to_string(), text);
            let c = CookieConfig {
                same_site: Some(same_site),
                secure: true,
                ..Default::default()
            };
            assert!(
                c.set_cookie(&id(), 0)
                    .ends_with(&format!("; Secure; SameSite={text}"))
            );
        }
    }

    #[test]
    fn max_age_renders_max_age_and_expires() {
        let c = CookieConfig {
            max_age: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        assert_eq!(
            c.set_cookie(&id(), 0),
            format!(
                "sync_sess={}; Path=/; Max-Age=3600; Expires=Thu, 01 Jan 1970 01:00:00 GMT; \
                 HttpOnly; SameSite=Lax",
                id()
            )
        );
        // 2023-11-14 22:13:20.999 UTC plus one day; the milliseconds are dropped.
        let c = CookieConfig {
            max_age: Some(Duration::from_secs(86_400)),
            ..Default::default()
        };
        assert!(
            c.set_cookie(&id(), 1_700_000_000_999)
                .contains("; Max-Age=86400; Expires=Wed, 15 Nov 2023 22:13:20 GMT;")
        );
        // Sub-second parts of max_age are dropped too, in both attributes.
        let c = CookieConfig {
            max_age: Some(Duration::from_millis(1_500)),
            ..Default::default()
        };
        assert!(
            c.set_cookie(&id(), 0)
                .contains("; Max-Age=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT;")
        );
    }

    #[test]
    fn expires_is_clamped_instead_of_panicking() {
        let c = CookieConfig {
            max_age: Some(Duration::from_secs(u64::MAX)),
            ..Default::default()
        };
        let header = c.set_cookie(&id(), u64::MAX);
        assert!(
            header.contains(&format!(
                "; Max-Age={}; Expires=Fri, 31 Dec 9999 23:59:59 GMT;",
                u64::MAX
            )),
            "{header}"
        );
    }

    #[test]
    fn removal_cookie_default() {
        assert_eq!(
            CookieConfig::default().removal_cookie(),
            "sync_sess=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; \
             SameSite=Lax"
        );
    }

    #[test]
    fn removal_cookie_matches_set_cookie_attributes() {
        let c = CookieConfig {
            path: Some("/app".into()),
            domain: Some("example.com".into()),
            max_age: Some(Duration::from_secs(60)),
            secure: true,
            ..Default::default()
        };
        assert_eq!(
            c.removal_cookie(),
            "sync_sess=; Path=/app; Domain=example.com; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn unsigned_round_trip() {
        let c = CookieConfig::default();
        let value = c.encode_value(&id());
        assert_eq!(value, id().as_str());
        assert_eq!(c.decode_value(&value), Some(id()));
    }

    #[test]
    fn signed_round_trip() {
        let c = signed(&[KEY_A]);
        let value = c.encode_value(&id());
        let (head, sig) = value.split_once('.').unwrap();
        assert_eq!(head, id().as_str());
        assert_eq!(sig.len(), 43);
        assert_eq!(c.decode_value(&value), Some(id()));
        // Deterministic: the same id and key give the same value.
        assert_eq!(c.encode_value(&id()), value);
        // The value is a valid cookie value and survives the header parser.
        let header = c.set_cookie(&id(), 0);
        let (pair, _) = header.split_once(';').unwrap();
        assert_eq!(c.session_ids(pair), [id()]);
    }

    #[test]
    fn value_signed_with_an_older_key_verifies() {
        let old = signed(&[KEY_B]);
        let rotated = signed(&[KEY_A, KEY_B]);
        let value = old.encode_value(&id());
        assert_eq!(rotated.decode_value(&value), Some(id()));
    }

    #[test]
    fn key_rotation() {
        let before = signed(&[KEY_A]);
        let during = signed(&[KEY_B, KEY_A]);
        let after = signed(&[KEY_B]);
        let old_value = before.encode_value(&id());
        let new_value = during.encode_value(&id());
        assert_ne!(old_value, new_value);
        // During the rotation both verify, and new cookies are signed with the new key.
        assert_eq!(during.decode_value(&old_value), Some(id()));
        assert_eq!(during.decode_value(&new_value), Some(id()));
        assert_eq!(after.encode_value(&id()), new_value);
        // Once the old key is dropped, its cookies no longer verify.
        assert_eq!(after.decode_value(&old_value), None);
        assert_eq!(after.decode_value(&new_value), Some(id()));
        // Servers not yet rotated refuse cookies signed with the new key.
        assert_eq!(before.decode_value(&new_value), None);
    }

    #[test]
    fn tampered_signature_is_refused() {
        let c = signed(&[KEY_A]);
        let value = c.encode_value(&id());
        let mut bytes = value.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'Q' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_ne!(tampered, value);
        assert_eq!(c.decode_value(&tampered), None);
        // Another id with the original signature.
        let other = SessionId::parse("Zm9vYmFyYmF6cXV4LW5vLXNlY3JldHN").unwrap();
        let (_, sig) = value.split_once('.').unwrap();
        assert_eq!(c.decode_value(&format!("{other}.{sig}")), None);
    }

    #[test]
    fn truncated_or_extended_signature_is_refused() {
        let c = signed(&[KEY_A]);
        let value = c.encode_value(&id());
        for cut in 1..=43 {
            assert_eq!(
                c.decode_value(&value[..value.len() - cut]),
                None,
                "cut {cut}"
            );
        }
        assert_eq!(c.decode_value(&format!("{value}A")), None);
        assert_eq!(c.decode_value(&format!("{value}=")), None);
        assert_eq!(c.decode_value(&format!("{value}.")), None);
    }

    #[test]
    fn unsigned_value_is_refused_when_signing_is_on() {
        let c = signed(&[KEY_A]);
        assert_eq!(c.decode_value(id().as_str()), None);
        assert_eq!(c.decode_value(&format!("{id}.", id = id())), None);
        assert_eq!(c.session_ids(&format!("sync_sess={}", id())), []);
    }

    #[test]
    fn signed_value_is_refused_when_signing_is_off() {
        let value = signed(&[KEY_A]).encode_value(&id());
        let c = CookieConfig::default();
        assert_eq!(c.decode_value(&value), None);
        assert_eq!(c.decode_value(&format!("{}.", id())), None);
    }

    #[test]
    fn malformed_values_are_refused() {
        for c in [CookieConfig::default(), signed(&[KEY_A])] {
            for value in ["", ".", "short", "short.sig", "é", &"a".repeat(200)] {
                assert_eq!(c.decode_value(value), None, "{value:?}");
            }
        }
    }

    #[test]
    fn session_ids_picks_the_configured_name_in_order() {
        let c = signed(&[KEY_A]);
        let first = SessionId::parse("aaaaaaaaaaaaaaaaaaaa").unwrap();
        let second = SessionId::parse("bbbbbbbbbbbbbbbbbbbb").unwrap();
        let header = format!(
            "other={}; sync_sess={}; sync_sess=forged.sig; SYNC_SESS={}; sync_sess=\"{}\"",
            c.encode_value(&id()),
            c.encode_value(&first),
            c.encode_value(&id()),
            c.encode_value(&second),
        );
        assert_eq!(c.session_ids(&header), [first, second]);
        assert_eq!(c.session_ids(""), []);
    }

    #[test]
    fn validation_accepts_a_full_configuration() {
        let c = CookieConfig {
            name: "__Host-sid".into(),
            max_age: Some(MAX_COOKIE_AGE),
            secure: true,
            same_site: Some(SameSite::None),
            keys: vec![vec![7; MIN_SIGNING_KEY_LEN], vec![9; MAX_SIGNING_KEY_LEN]],
            ..Default::default()
        };
        assert_eq!(c.validate(), Ok(()));
        let c = CookieConfig {
            name: "__Secure-sid".into(),
            path: Some("/app".into()),
            domain: Some(".example.com".into()),
            max_age: Some(Duration::from_secs(1)),
            secure: true,
            ..Default::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validation_errors_name_the_field() {
        let base = CookieConfig::default;
        let cases: Vec<(CookieConfig, &str)> = vec![
            (
                CookieConfig {
                    name: String::new(),
                    ..base()
                },
                "name",
            ),
            (
                CookieConfig {
                    name: "a b".into(),
                    ..base()
                },
                "name",
            ),
            (
                CookieConfig {
                    name: "a=b".into(),
                    ..base()
                },
                "name",
            ),
            (
                CookieConfig {
                    name: "sé".into(),
                    ..base()
                },
                "name",
            ),
            (
                CookieConfig {
                    path: Some(String::new()),
                    ..base()
                },
                "path",
            ),
            (
                CookieConfig {
                    path: Some("/a;b".into()),
                    ..base()
                },
                "path",
            ),
            (
                CookieConfig {
                    path: Some("/a\nb".into()),
                    ..base()
                },
                "path",
            ),
            (
                CookieConfig {
                    path: Some("/a\u{7f}".into()),
                    ..base()
                },
                "path",
            ),
            (
                CookieConfig {
                    path: Some("/é".into()),
                    ..base()
                },
                "path",
            ),
            (
                CookieConfig {
                    path: Some("app".into()),
                    ..base()
                },
                "path",
            ),
            (
                CookieConfig {
                    domain: Some(String::new()),
                    ..base()
                },
                "domain",
            ),
            (
                CookieConfig {
                    domain: Some("a.com; x".into()),
                    ..base()
                },
                "domain",
            ),
            (
                CookieConfig {
                    domain: Some("a.com\r".into()),
                    ..base()
                },
                "domain",
            ),
            (
                CookieConfig {
                    max_age: Some(Duration::ZERO),
                    ..base()
                },
                "max_age",
            ),
            (
                CookieConfig {
                    max_age: Some(Duration::from_millis(999)),
                    ..base()
                },
                "max_age",
            ),
            (
                CookieConfig {
                    max_age: Some(MAX_COOKIE_AGE + Duration::from_secs(1)),
                    ..base()
                },
                "max_age",
            ),
            (
                CookieConfig {
                    same_site: Some(SameSite::None),
                    ..base()
                },
                "same_site",
            ),
            (
                CookieConfig {
                    name: "__Secure-s".into(),
                    ..base()
                },
                "__Secure-",
            ),
            (
                CookieConfig {
                    name: "__host-s".into(),
                    ..base()
                },
                "__Host-",
            ),
            (
                CookieConfig {
                    name: "__Host-s".into(),
                    secure: true,
                    path: Some("/app".into()),
                    ..base()
                },
                "__Host-",
            ),
            (
                CookieConfig {
                    name: "__Host-s".into(),
                    secure: true,
                    domain: Some("example.com".into()),
                    ..base()
                },
                "__Host-",
            ),
            (
                CookieConfig {
                    keys: vec![vec![1; 15]],
                    ..base()
                },
                "keys[0]",
            ),
            (
                CookieConfig {
                    keys: vec![vec![1; 16], vec![]],
                    ..base()
                },
                "keys[1]",
            ),
            (
                CookieConfig {
                    keys: vec![vec![1; 1025]],
                    ..base()
                },
                "keys[0]",
            ),
        ];
        for (config, field) in cases {
            let message = invalid_message(&config);
            assert!(message.contains(field), "{message:?} should name {field}");
        }
    }

    fn express(keys: &[&[u8]]) -> CookieConfig {
        CookieConfig::express(keys.iter().map(|k| k.to_vec()).collect())
    }

    #[test]
    fn express_defaults_and_set_cookie() {
        let c = express(&[KEY_A]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.name, "connect.sid");
        assert_eq!(c.format, CookieFormat::Express);
        let value = c.encode_value(&id());
        assert!(value.starts_with(&format!("s%3A{}.", id())), "{value}");
        assert_eq!(
            c.set_cookie(&id(), 0),
            format!("connect.sid={value}; Path=/; HttpOnly; SameSite=Lax")
        );
        // The other knobs work as in the sessync format.
        let c = CookieConfig {
            max_age: Some(Duration::from_secs(60)),
            secure: true,
            same_site: None,
            domain: Some("example.com".into()),
            ..express(&[KEY_A])
        };
        assert_eq!(
            c.set_cookie(&id(), 0),
            format!(
                "connect.sid={value}; Path=/; Domain=example.com; Max-Age=60; \
                 Expires=Thu, 01 Jan 1970 00:01:00 GMT; HttpOnly; Secure"
            )
        );
        assert_eq!(
            c.removal_cookie(),
            "connect.sid=; Path=/; Domain=example.com; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure"
        );
    }

    #[test]
    fn express_round_trip_rotation_and_refusals() {
        let before = express(&[KEY_A]);
        let during = express(&[KEY_B, KEY_A]);
        let old = before.encode_value(&id());
        let new = during.encode_value(&id());
        assert_ne!(old, new);
        assert_eq!(before.decode_value(&old), Some(id()));
        assert_eq!(during.decode_value(&old), Some(id()));
        assert_eq!(during.decode_value(&new), Some(id()));
        assert_eq!(before.decode_value(&new), None);
        // Through a header, as the flow reads it.
        let header = format!("a=1; connect.sid={new}; connect.sid=s%3Aforged.sig");
        assert_eq!(during.session_ids(&header), [id()]);
        // Each format refuses the other's values, signed with the same keys.
        let sessync = signed(&[KEY_A]);
        assert_eq!(sessync.decode_value(&old), None);
        assert_eq!(before.decode_value(&sessync.encode_value(&id())), None);
        // A bare id is never adopted in the express format.
        assert_eq!(before.decode_value(id().as_str()), None);
    }

    #[test]
    fn express_format_requires_a_key() {
        let c = CookieConfig {
            format: CookieFormat::Express,
            ..Default::default()
        };
        let message = invalid_message(&c);
        assert!(
            message.contains("express") && message.contains("key"),
            "{message}"
        );
        // Short secrets are refused as in the sessync format.
        assert!(invalid_message(&express(&[b"keyboard cat"])).contains("keys[0]"));
        // Without keys, nothing decodes (fail closed even without `validate`).
        assert_eq!(c.decode_value(&express(&[KEY_A]).encode_value(&id())), None);
        assert_eq!(c.decode_value(&c.encode_value(&id())), None);
    }

    #[test]
    fn cookie_format_names() {
        for format in [CookieFormat::Sessync, CookieFormat::Express] {
            assert_eq!(format.to_string().parse::<CookieFormat>(), Ok(format));
        }
        assert_eq!("Express".parse::<CookieFormat>(), Ok(CookieFormat::Express));
        assert_eq!(CookieFormat::default(), CookieFormat::Sessync);
        match "connect".parse::<CookieFormat>() {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("sessync or express"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_does_not_show_keys() {
        let c = signed(&[b"super secret key material"]);
        let text = format!("{c:?}");
        assert!(!text.contains("super secret"), "{text}");
        assert!(!text.contains("115, 117, 112"), "{text}");
        assert!(text.contains("[1 redacted]"), "{text}");
    }
}
