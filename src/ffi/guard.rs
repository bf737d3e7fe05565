//! The panic guard, NULL checks and input conversions shared by every exported function.

use std::{
    ffi::{CStr, c_char},
    panic::{AssertUnwindSafe, catch_unwind},
};

use super::{last_error, status::sessync_status};
use crate::{error::Error, session::SessionId};

/// What an exported function returns when its body panicked.
pub(crate) trait PanicOrDefault {
    fn panic_value() -> Self;
}

impl PanicOrDefault for sessync_status {
    fn panic_value() -> Self {
        sessync_status::Panic
    }
}

impl<T> PanicOrDefault for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl PanicOrDefault for () {
    fn panic_value() -> Self {}
}

impl PanicOrDefault for bool {
    fn panic_value() -> Self {
        false
    }
}

impl PanicOrDefault for u32 {
    fn panic_value() -> Self {
        0
    }
}

impl PanicOrDefault for u64 {
    fn panic_value() -> Self {
        0
    }
}

/// Runs `f`, turning a panic into the type's panic value and the thread's last error.
pub(crate) fn guard<T: PanicOrDefault>(f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            last_error::set(&format!("internal error (panic): {msg}"));
            T::panic_value()
        }
    }
}

/// The body of every exported function: `ffi_guard!({ ... })`.
/// `ffi_guard!(error, { ... })` also reports a failure into the caller's `sessync_error`.
macro_rules! ffi_guard {
    ($body:block) => {
        $crate::ffi::guard::guard(|| $body)
    };
    ($error:expr, $body:block) => {
        $crate::ffi::error::report($error, $crate::ffi::guard::guard(|| $body))
    };
}

/// A failed call: its status, with the thread's last error already set.
pub(crate) struct Fail(pub sessync_status);

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        match &e {
            // Never the successor's id: whoever writes to an old id must not learn it.
            Error::Rotated { .. } => {
                last_error::set("the session id was rotated away; it takes no more writes")
            }
            _ => last_error::set(&e.to_string()),
        }
        Fail(sessync_status::from(&e))
    }
}

/// Fails with `status` and `msg` as the last error.
pub(crate) fn fail(status: sessync_status, msg: &str) -> Fail {
    last_error::set(msg);
    Fail(status)
}

/// The status of a body that returns `Result<(), Fail>`.
pub(crate) fn status(r: Result<(), Fail>) -> sessync_status {
    match r {
        Ok(()) => sessync_status::Ok,
        Err(Fail(s)) => s,
    }
}

/// A shared reference from a pointer, or `NULL_ARGUMENT` naming the argument.
pub(crate) fn try_ref<'a, T>(p: *const T, name: &str) -> Result<&'a T, Fail> {
    // SAFETY: the caller passes either NULL or a pointer to a live value of type T, as the
    // header's contract for this argument says; NULL is checked by `as_ref`.
    unsafe { p.as_ref() }.ok_or_else(|| null(name))
}

/// A mutable reference from a pointer, or `NULL_ARGUMENT` naming the argument.
pub(crate) fn try_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, Fail> {
    // SAFETY: as for `try_ref`, and the header forbids using one handle from two threads
    // at once, so this is the only reference for the call's duration.
    unsafe { p.as_mut() }.ok_or_else(|| null(name))
}

fn null(name: &str) -> Fail {
    fail(
        sessync_status::NullArgument,
        &format!("argument `{name}` is NULL"),
    )
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn try_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(null(name));
    }
    // SAFETY: not NULL (checked above); the header requires a NUL-terminated string that
    // stays valid for the call.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        fail(
            sessync_status::InvalidUtf8,
            &format!("argument `{name}` is not UTF-8: {e}"),
        )
    })
}

/// An optional NUL-terminated UTF-8 string argument (NULL is `None`).
pub(crate) fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        Ok(None)
    } else {
        try_str(p, name).map(Some)
    }
}

/// Largest byte input accepted (JSON, headers): 16 MiB.
pub(crate) const MAX_INPUT: usize = 16 * 1024 * 1024;

/// A `(pointer, length)` byte argument. NULL is accepted only with length 0.
pub(crate) fn try_bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8], Fail> {
    if len > MAX_INPUT {
        return Err(fail(
            sessync_status::TooLarge,
            &format!("argument `{name}` is {len} bytes, over the limit of {MAX_INPUT}"),
        ));
    }
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(name));
    }
    // SAFETY: not NULL (checked), and the header requires `len` readable bytes at `p`
    // for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A byte argument that must be UTF-8.
pub(crate) fn try_utf8<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a str, Fail> {
    let b = try_bytes(p, len, name)?;
    std::str::from_utf8(b).map_err(|e| {
        fail(
            sessync_status::InvalidUtf8,
            &format!("argument `{name}` is not UTF-8: {e}"),
        )
    })
}

/// A session id argument.
pub(crate) fn try_id(p: *const c_char, name: &str) -> Result<SessionId, Fail> {
    Ok(SessionId::parse(try_str(p, name)?)?)
}

/// Writes `v` to an output pointer that may be NULL (then nothing is written).
pub(crate) fn put<T>(out: *mut T, v: T) {
    if let Some(o) = unsafe_out(out) {
        *o = v;
    }
}

fn unsafe_out<'a, T>(out: *mut T) -> Option<&'a mut T> {
    // SAFETY: the header requires output pointers to be NULL or valid for writes.
    unsafe { out.as_mut() }
}
