//! `sessync_error`: a failed call's status and message, written where the caller asked.

use std::ffi::c_char;

use super::{last_error, status::sessync_status};

/// Room for a message in a `sessync_error`, NUL included.
const MESSAGE_CAP: usize = 504;

/// A failed call's status and message, for callers that cannot read the per-thread
/// message on the thread where the call failed: an async runtime that moves calls between
/// threads (Node's workers, Go's goroutines, asyncio's executors), or a callback.
///
/// Every fallible function takes a `sessync_error *error` as its last argument. NULL is
/// allowed (the per-thread message is set either way). On failure the library fills it;
/// on success it leaves it untouched, so a caller can reuse one without clearing it. The
/// caller owns it, typically on the stack; nothing in it needs freeing.
/// Thread note: plain data, used by whoever holds it.
/// Life cycle: declare (`sessync_error err;`) → pass `&err` to calls → read it after a
/// failed call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sessync_error {
    /// The status the call returned.
    pub status: sessync_status,
    /// The message's length in bytes, without the NUL.
    pub len: u32,
    /// The message: UTF-8, NUL-terminated, at most 503 bytes (a longer one is cut at a
    /// character boundary and ends with `...`).
    pub message: [c_char; 504],
}

impl sessync_error {
    /// Fills the error with `status` and `msg`.
    pub(crate) fn fill(&mut self, status: sessync_status, msg: &str) {
        let bytes = msg.as_bytes();
        let (cut, tail): (usize, &[u8]) = if bytes.len() < MESSAGE_CAP {
            (bytes.len(), b"")
        } else {
            let mut n = MESSAGE_CAP - 1 - 3;
            while n > 0 && !msg.is_char_boundary(n) {
                n -= 1;
            }
            (n, b"...")
        };
        let mut at = 0;
        for &b in bytes[..cut].iter().chain(tail) {
            self.message[at] = b as c_char;
            at += 1;
        }
        self.message[at] = 0;
        self.len = at as u32;
        self.status = status;
    }
}

/// Copies a failed call's status and the thread's last message into `error`, if not NULL.
pub(crate) fn report(error: *mut sessync_error, status: sessync_status) -> sessync_status {
    if status != sessync_status::Ok {
        // SAFETY: the header requires `error` to be NULL or valid for writes.
        if let Some(e) = unsafe { error.as_mut() } {
            last_error::with(|msg| e.fill(status, msg));
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn blank() -> sessync_error {
        sessync_error {
            status: sessync_status::Ok,
            len: 0,
            message: [0; MESSAGE_CAP],
        }
    }

    fn text(e: &sessync_error) -> String {
        // SAFETY: `fill` always writes a NUL within the array.
        unsafe { CStr::from_ptr(e.message.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn short_messages_are_copied_whole() {
        let mut e = blank();
        e.fill(sessync_status::NotFound, "no such session");
        assert_eq!(e.status, sessync_status::NotFound);
        assert_eq!(text(&e), "no such session");
        assert_eq!(e.len, 15);
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let mut e = blank();
        let long = "é".repeat(400);
        e.fill(sessync_status::InvalidArgument, &long);
        let t = text(&e);
        assert!(t.ends_with("..."));
        assert!(t.len() < MESSAGE_CAP);
        assert_eq!(t.len(), e.len as usize);
        assert!(t.trim_end_matches("...").chars().all(|c| c == 'é'));
    }

    #[test]
    fn success_leaves_it_untouched() {
        let mut e = blank();
        e.fill(sessync_status::Conflict, "old");
        assert_eq!(report(&mut e, sessync_status::Ok), sessync_status::Ok);
        assert_eq!(text(&e), "old");
        last_error::set("fresh");
        assert_eq!(
            report(&mut e, sessync_status::Locked),
            sessync_status::Locked
        );
        assert_eq!(text(&e), "fresh");
        assert_eq!(e.status, sessync_status::Locked);
        assert_eq!(
            report(std::ptr::null_mut(), sessync_status::Locked),
            sessync_status::Locked
        );
    }
}
