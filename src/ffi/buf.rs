//! `sessync_buf`: variable-size output owned by the caller, freed by the library.

/// A byte buffer the library allocated for the caller: session JSON, a `Set-Cookie` value.
///
/// `data[len]` is always a NUL byte (not counted in `len`), so text can be used as a C
/// string. An empty buffer has `data == NULL` and `len == 0`. Free it once with
/// `sessync_buf_free`, never with `free()`.
#[repr(C)]
#[derive(Debug)]
pub struct sessync_buf {
    /// The bytes, or NULL when empty.
    pub data: *mut u8,
    /// How many bytes, not counting the trailing NUL.
    pub len: usize,
}

impl sessync_buf {
    /// An empty buffer.
    pub(crate) fn empty() -> sessync_buf {
        sessync_buf {
            data: std::ptr::null_mut(),
            len: 0,
        }
    }

    /// A buffer holding `bytes` and a trailing NUL.
    pub(crate) fn from_bytes(bytes: &[u8]) -> sessync_buf {
        if bytes.is_empty() {
            return sessync_buf::empty();
        }
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.extend_from_slice(bytes);
        v.push(0);
        let len = bytes.len();
        let data = Box::into_raw(v.into_boxed_slice()).cast::<u8>();
        sessync_buf { data, len }
    }
}

/// Frees the bytes of a buffer the library filled, and sets it to empty.
///
/// `buf == NULL` and an empty buffer are no-ops. Freeing the same bytes twice, or a buffer
/// the library did not fill, is undefined behaviour.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_buf_free(buf: *mut sessync_buf) {
    ffi_guard!({
        // SAFETY: the header requires `buf` to be NULL or a valid, writable sessync_buf.
        let Some(b) = (unsafe { buf.as_mut() }) else {
            return;
        };
        if !b.data.is_null() {
            let whole = std::ptr::slice_from_raw_parts_mut(b.data, b.len + 1);
            // SAFETY: `data` came from `Box<[u8]>::into_raw` of `len + 1` bytes in
            // `from_bytes`, and the contract forbids freeing it twice.
            drop(unsafe { Box::from_raw(whole) });
        }
        *b = sessync_buf::empty();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_nul_terminated_and_freed() {
        let mut b = sessync_buf::from_bytes(b"abc");
        assert_eq!(b.len, 3);
        // SAFETY: from_bytes allocated len + 1 bytes.
        assert_eq!(unsafe { *b.data.add(3) }, 0);
        sessync_buf_free(&mut b);
        assert!(b.data.is_null());
        sessync_buf_free(&mut b);
        sessync_buf_free(std::ptr::null_mut());
        let mut e = sessync_buf::from_bytes(b"");
        assert!(e.data.is_null());
        sessync_buf_free(&mut e);
    }
}
