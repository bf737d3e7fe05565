//! `sessync_options`: settings for `sessync_store_open` beyond the URL.

use std::{ffi::c_char, time::Duration};

use super::error::sessync_error;
use super::guard::{Fail, fail, status, try_bytes, try_mut, try_str};
use super::status::sessync_status;
use crate::{
    config::duration,
    cookie::{CookieConfig, CookieFormat, SameSite},
    flow::FlowOptions,
};

/// Settings for `sessync_store_open`: the session cookie, signing keys, the request
/// flow's lock lease and wait, and store options (TTLs, limits) added to the URL's.
///
/// Life cycle: `sessync_options_new` → `sessync_options_set` /
/// `sessync_options_add_signing_key` / `sessync_options_set_cookie_format` … →
/// `sessync_store_open` (which copies them) → `sessync_options_free`. Not thread-safe:
/// use one from one thread at a time.
#[derive(Debug, Default)]
pub struct sessync_options {
    pub(crate) flow: FlowOptions,
    /// Store options, appended to the URL's query.
    pub(crate) store_params: Vec<(String, String)>,
}

/// The format of the session cookie's value, for `sessync_options_set_cookie_format`
/// (which takes it as a `uint32_t`). Numbers are never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessync_cookie_format {
    /// sessync's own value: the session id, or `<id>.<sig>` with signing keys (base64url
    /// HMAC-SHA256). The default.
    Sessync = 0,
    /// express-session's value, so that an Express app (express-session, e.g. with
    /// connect-redis) and this server read each other's cookies: `s%3A<id>.<sig>`, the
    /// signature in standard base64 without `=`, URL-encoded. It is always signed: the
    /// signing keys are the Express app's secrets (the first signs, every one verifies),
    /// and `sessync_store_open` fails without one. Set `cookie_name` to the app's cookie
    /// name too (express-session's default is `connect.sid`).
    Express = 1,
}

impl sessync_cookie_format {
    /// The format a number from C names, or `None` for an unknown number.
    fn from_u32(n: u32) -> Option<CookieFormat> {
        match n {
            0 => Some(CookieFormat::Sessync),
            1 => Some(CookieFormat::Express),
            _ => None,
        }
    }
}

/// Store option names accepted by `sessync_options_set` (the URL's query options).
const STORE_KEYS: &[&str] = &[
    "ttl",
    "absolute_ttl",
    "touch_fraction",
    "tombstone_ttl",
    "rotate_grace",
    "max_sessions",
    "max_session_bytes",
    "evict",
    "shards",
];

/// Makes an options object with every setting at its default.
///
/// On `SESSYNC_STATUS_OK`, writes `*options_out`, which the caller frees with
/// `sessync_options_free`; otherwise leaves it unchanged.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_options_new(
    options_out: *mut *mut sessync_options,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let out = try_mut(options_out, "options_out")?;
            *out = Box::into_raw(Box::default());
            Ok(())
        })())
    })
}

fn parse_bool(key: &str, v: &str) -> Result<bool, Fail> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(fail(
            sessync_status::InvalidArgument,
            &format!("option {key}={v:?}: expected true or false"),
        )),
    }
}

fn parse_duration(key: &str, v: &str) -> Result<Duration, Fail> {
    Ok(duration(key, v)?)
}

/// Sets one option from text. Keys:
///
/// - cookie: `cookie_name` (default `sync_sess`), `cookie_path` (`/`; `""` for none),
///   `cookie_domain` (none), `cookie_max_age` (a duration such as `30m`; `""` or `0` for a
///   browser-session cookie), `cookie_secure` (`false`), `cookie_http_only` (`true`),
///   `cookie_same_site` (`Lax`, `Strict`, `None`, or `""` to omit), `cookie_format`
///   (`sessync`, the default, or `express`: see `sessync_cookie_format`);
/// - request flow: `lock_lease` (default `30s`), `lock_wait` (`10s`);
/// - store (added to the URL's query, see the README): `ttl`, `absolute_ttl`,
///   `touch_fraction`, `tombstone_ttl`, `rotate_grace`, `max_sessions`,
///   `max_session_bytes`, `evict`, `shards`.
///
/// Durations are `90`, `90s`, `1500ms`, `30m`, `2h` or `1d`. An unknown key, or a
/// malformed value of a cookie or request-flow setting, is
/// `SESSYNC_STATUS_INVALID_ARGUMENT` and changes nothing. The values of store options, and
/// the cookie settings as a whole, are checked by `sessync_store_open`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_options_set(
    options: *mut sessync_options,
    key: *const c_char,
    value: *const c_char,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let o = try_mut(options, "options")?;
            let key = try_str(key, "key")?;
            let v = try_str(value, "value")?;
            let c = &mut o.flow.cookie;
            match key {
                "cookie_name" => c.name = v.to_string(),
                "cookie_path" => c.path = (!v.is_empty()).then(|| v.to_string()),
                "cookie_domain" => c.domain = (!v.is_empty()).then(|| v.to_string()),
                "cookie_max_age" => {
                    c.max_age = match v {
                        "" | "0" => None,
                        _ => Some(parse_duration(key, v)?),
                    }
                }
                "cookie_secure" => c.secure = parse_bool(key, v)?,
                "cookie_http_only" => c.http_only = parse_bool(key, v)?,
                "cookie_same_site" => {
                    c.same_site = match v {
                        "Lax" | "lax" => Some(SameSite::Lax),
                        "Strict" | "strict" => Some(SameSite::Strict),
                        "None" | "none" => Some(SameSite::None),
                        "" => None,
                        _ => {
                            return Err(fail(
                                sessync_status::InvalidArgument,
                                &format!(
                                    "option cookie_same_site={v:?}: expected Lax, Strict, None or \"\""
                                ),
                            ));
                        }
                    }
                }
                "cookie_format" => {
                    c.format = v.parse().map_err(|_| {
                        fail(
                            sessync_status::InvalidArgument,
                            &format!("option cookie_format={v:?}: expected sessync or express"),
                        )
                    })?
                }
                "lock_lease" => o.flow.lock_lease = parse_duration(key, v)?,
                "lock_wait" => o.flow.lock_wait = parse_duration(key, v)?,
                k if STORE_KEYS.contains(&k) => {
                    o.store_params.retain(|(x, _)| x != k);
                    o.store_params.push((k.to_string(), v.to_string()));
                }
                _ => {
                    return Err(fail(
                        sessync_status::InvalidArgument,
                        &format!("unknown option {key:?}"),
                    ));
                }
            }
            Ok(())
        })())
    })
}

/// Adds an HMAC-SHA256 cookie signing key (16 to 1024 bytes). The first key added signs;
/// every key verifies, so add the new key first and keep the old ones while cookies
/// signed with them may still come back. The bytes are copied.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_options_add_signing_key(
    options: *mut sessync_options,
    key: *const u8,
    key_len: usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let o = try_mut(options, "options")?;
            let k = try_bytes(key, key_len, "key")?;
            let probe = CookieConfig {
                keys: vec![k.to_vec()],
                ..CookieConfig::default()
            };
            probe.validate()?;
            o.flow.cookie.keys.push(k.to_vec());
            Ok(())
        })())
    })
}

/// Sets the format of the session cookie's value: a `sessync_cookie_format` value,
/// `SESSYNC_COOKIE_FORMAT_SESSYNC` (the default) or `SESSYNC_COOKIE_FORMAT_EXPRESS`. The
/// same as `sessync_options_set(options, "cookie_format", "sessync" or "express")`.
///
/// The express format needs at least one signing key (`sessync_options_add_signing_key`,
/// with the Express app's secret), which `sessync_store_open` checks. An unknown number is
/// `SESSYNC_STATUS_INVALID_ARGUMENT` and changes nothing; a NULL `options` is
/// `SESSYNC_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_options_set_cookie_format(
    options: *mut sessync_options,
    format: u32,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let o = try_mut(options, "options")?;
            let Some(f) = sessync_cookie_format::from_u32(format) else {
                return Err(fail(
                    sessync_status::InvalidArgument,
                    &format!(
                        "cookie format {format}: expected SESSYNC_COOKIE_FORMAT_SESSYNC (0) or \
                         SESSYNC_COOKIE_FORMAT_EXPRESS (1)"
                    ),
                ));
            };
            o.flow.cookie.format = f;
            Ok(())
        })())
    })
}

/// Frees an options object. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_options_free(options: *mut sessync_options) {
    ffi_guard!({
        if !options.is_null() {
            // SAFETY: not NULL; it came from `sessync_options_new` (Box::into_raw) and the
            // contract forbids freeing it twice.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_format_numbers_match_the_enum() {
        for (c, rust) in [
            (sessync_cookie_format::Sessync, CookieFormat::Sessync),
            (sessync_cookie_format::Express, CookieFormat::Express),
        ] {
            assert_eq!(sessync_cookie_format::from_u32(c as u32), Some(rust));
        }
        assert_eq!(sessync_cookie_format::from_u32(2), None);
        assert_eq!(sessync_cookie_format::from_u32(u32::MAX), None);
    }
}
