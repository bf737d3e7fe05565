//! The per-thread message of the last failed call.

use std::{
    cell::RefCell,
    ffi::{CString, c_char},
};

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `msg` as this thread's last error (interior NULs become spaces).
pub(crate) fn set(msg: &str) {
    let clean = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            *l = clean;
        }
    });
}

/// Runs `f` with this thread's last message.
pub(crate) fn with(f: impl FnOnce(&str)) {
    LAST.with(|l| match l.try_borrow() {
        Ok(m) => f(m.to_str().unwrap_or("")),
        Err(_) => f(""),
    })
}

/// The message of the last failed call on this thread.
///
/// Never NULL: `""` when no call has failed on this thread. UTF-8, NUL-terminated, owned
/// by the library and valid until the next `sessync_*` call on this thread. Meaningful
/// only right after a call returned a status other than `SESSYNC_STATUS_OK` (or a getter
/// returned NULL). Calls that succeed, and every `_free` function, leave the message as
/// it was, so it can be read after cleaning up. Read it on the thread where the call
/// failed.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_last_error_message() -> *const c_char {
    ffi_guard!({ LAST.with(|l| l.try_borrow().map(|s| s.as_ptr()).unwrap_or(c"".as_ptr())) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn messages_are_per_thread() {
        set("here");
        std::thread::spawn(|| {
            // SAFETY: the function returns a valid NUL-terminated string.
            let s = unsafe { CStr::from_ptr(sessync_last_error_message()) };
            assert_eq!(s.to_str().unwrap(), "");
        })
        .join()
        .unwrap();
        // SAFETY: as above.
        let s = unsafe { CStr::from_ptr(sessync_last_error_message()) };
        assert_eq!(s.to_str().unwrap(), "here");
        set("a\0b");
        // SAFETY: as above.
        let s = unsafe { CStr::from_ptr(sessync_last_error_message()) };
        assert_eq!(s.to_str().unwrap(), "a b");
    }
}
