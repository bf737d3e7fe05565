//! The session cookie: reading the `Cookie` request header, writing `Set-Cookie`, and
//! optionally signing the session id it carries.
//!
//! * [`parse_cookie_header`] turns a `Cookie` header into its `(name, value)` pairs
//!   (RFC 6265), leniently about layout and strictly about content.
//! * [`CookieConfig`] describes the session cookie (name, `Path`, `Domain`, lifetime,
//!   `Secure`, `HttpOnly`, [`SameSite`], signing keys). It finds the session ids in a
//!   request ([`CookieConfig::session_ids`]), and renders the header that sets the cookie
//!   ([`CookieConfig::set_cookie`]) or deletes it ([`CookieConfig::removal_cookie`]).
//!
//! With signing keys, the cookie value is `<id>.<sig>`, `sig` being the unpadded base64url
//! HMAC-SHA256 of the id under the first key; every key verifies, which allows rotation.
//! [`CookieFormat::Express`] reads and writes express-session's value instead
//! (`s%3A<id>.<sig>`, standard base64), so a sessync server and an Express app can share
//! a visitor's cookie.
//!
//! ```
//! use sessync::{SessionId, cookie::CookieConfig};
//!
//! let config = CookieConfig {
//!     keys: vec![b"change me: at least 16 bytes".to_vec()],
//!     ..Default::default()
//! };
//! config.validate()?;
//!
//! let id = SessionId::generate();
//! let header = config.set_cookie(&id, 0);
//! assert!(header.starts_with("sync_sess="));
//!
//! // The browser sends back the `name=value` part.
//! let cookie = format!("theme=dark; {}", header.split(';').next().unwrap_or(""));
//! assert_eq!(config.session_ids(&cookie), [id]);
//! # Ok::<(), sessync::Error>(())
//! ```

mod config;
mod express;
mod parse;
mod sign;

pub use config::{
    CookieConfig, CookieFormat, MAX_COOKIE_AGE, MAX_SIGNING_KEY_LEN, MIN_SIGNING_KEY_LEN, SameSite,
};
pub use parse::{cookie_values, parse_cookie_header};
#[cfg(feature = "daemon")]
pub(crate) use parse::{is_cookie_octet, is_tchar};
