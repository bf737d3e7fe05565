//! `sessync_status`: the result of every fallible function.

use std::ffi::c_char;

use crate::error::Error;

/// The result of a call. `SESSYNC_STATUS_OK` (0) is success; every other value names a
/// failure, and `sessync_last_error_message()` then says more. Numbers are never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessync_status {
    /// Success.
    Ok = 0,
    /// The session does not exist or has expired.
    NotFound = 1,
    /// A compare-and-swap saw another version than the expected one.
    Conflict = 2,
    /// The lock could not be taken within the wait.
    LockTimeout = 3,
    /// The fencing token is not the current holder's (released, lease ended, never issued).
    StaleToken = 4,
    /// An output buffer is too small; the required size was written.
    InsufficientSize = 5,
    /// The session is locked by another holder and no token was given.
    Locked = 6,
    /// The session was destroyed; writes for it are refused.
    Destroyed = 7,
    /// The id was rotated away; it takes no more writes.
    Rotated = 8,
    /// The store holds its maximum number of sessions.
    Full = 9,
    /// A required pointer argument is NULL.
    NullArgument = 10,
    /// An argument is malformed (an id, a URL, an option, a flag).
    InvalidArgument = 11,
    /// A string argument is not UTF-8.
    InvalidUtf8 = 12,
    /// A JSON argument is not valid JSON, or not of the required shape.
    InvalidJson = 13,
    /// An input or a session exceeds a limit.
    TooLarge = 14,
    /// An increment met a value that is not an integer, or overflowed.
    NotANumber = 15,
    /// An I/O error.
    Io = 16,
    /// The backend failed.
    Backend = 17,
    /// Authentication failed.
    Auth = 18,
    /// A protocol error with a remote store.
    Protocol = 19,
    /// An internal error (a bug): the call was stopped and changed nothing it could undo.
    Panic = 20,
    /// The call was cancelled (`sessync_ticket_cancel`) before it completed.
    Cancelled = 21,
}

impl From<u32> for sessync_status {
    /// Converts a number from C; unknown numbers become `INVALID_ARGUMENT`.
    fn from(n: u32) -> sessync_status {
        use sessync_status::*;
        match n {
            0 => Ok,
            1 => NotFound,
            2 => Conflict,
            3 => LockTimeout,
            4 => StaleToken,
            5 => InsufficientSize,
            6 => Locked,
            7 => Destroyed,
            8 => Rotated,
            9 => Full,
            10 => NullArgument,
            11 => InvalidArgument,
            12 => InvalidUtf8,
            13 => InvalidJson,
            14 => TooLarge,
            15 => NotANumber,
            16 => Io,
            17 => Backend,
            18 => Auth,
            19 => Protocol,
            20 => Panic,
            21 => Cancelled,
            _ => InvalidArgument,
        }
    }
}

impl From<&Error> for sessync_status {
    fn from(e: &Error) -> sessync_status {
        use sessync_status::*;
        match e {
            Error::NotFound => NotFound,
            Error::Conflict { .. } => Conflict,
            Error::LockTimeout => LockTimeout,
            Error::StaleToken => StaleToken,
            Error::Locked => Locked,
            Error::Destroyed => Destroyed,
            Error::Rotated { .. } => Rotated,
            Error::Full => Full,
            Error::TooLarge(_) => TooLarge,
            Error::InvalidJson(_) => InvalidJson,
            Error::NotANumber(_) => NotANumber,
            Error::InvalidArgument(_) => InvalidArgument,
            _ => Backend,
        }
    }
}

impl sessync_status {
    fn text(self) -> &'static str {
        use sessync_status::*;
        match self {
            Ok => "ok\0",
            NotFound => "not found\0",
            Conflict => "version conflict\0",
            LockTimeout => "lock timeout\0",
            StaleToken => "stale fencing token\0",
            InsufficientSize => "insufficient buffer size\0",
            Locked => "locked by another holder\0",
            Destroyed => "session destroyed\0",
            Rotated => "session id rotated\0",
            Full => "store full\0",
            NullArgument => "NULL argument\0",
            InvalidArgument => "invalid argument\0",
            InvalidUtf8 => "invalid UTF-8\0",
            InvalidJson => "invalid JSON\0",
            TooLarge => "too large\0",
            NotANumber => "not a number\0",
            Io => "I/O error\0",
            Backend => "backend error\0",
            Auth => "authentication failed\0",
            Protocol => "protocol error\0",
            Panic => "internal error (panic)\0",
            Cancelled => "cancelled\0",
        }
    }
}

/// A short, static, English description of a status (`sqlite3_errstr`).
///
/// Never NULL. Unknown numbers get the text of `SESSYNC_STATUS_INVALID_ARGUMENT`. The
/// string is static: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_status_str(status: u32) -> *const c_char {
    ffi_guard!({ sessync_status::from(status).text().as_ptr().cast() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips_and_has_text() {
        for n in 0..=21u32 {
            let s = sessync_status::from(n);
            assert_eq!(s as u32, n);
            assert!(s.text().ends_with('\0'));
        }
        assert_eq!(sessync_status::from(999), sessync_status::InvalidArgument);
    }
}
