//! Layer one of the C ABI tests: the extern functions called from Rust, for what C tests
//! cannot do safely (an injected panic) and for quick checks of every guard.

use std::{
    ffi::{CStr, CString, c_char},
    ptr,
};

use super::{
    buf::{sessync_buf, sessync_buf_free},
    last_error::sessync_last_error_message,
    options::*,
    session::*,
    status::sessync_status,
    store::*,
};

fn last_error() -> String {
    // SAFETY: the function never returns NULL and the string is NUL-terminated.
    unsafe { CStr::from_ptr(sessync_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn open(url: &str) -> *mut sessync_store {
    let url = CString::new(url).unwrap();
    let mut s = ptr::null_mut();
    assert_eq!(
        sessync_store_open(url.as_ptr(), ptr::null(), &mut s, ptr::null_mut()),
        sessync_status::Ok
    );
    s
}

fn text(b: &sessync_buf) -> String {
    // SAFETY: the library filled `len` bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(b.data, b.len) };
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn nulls_are_refused_and_outputs_untouched() {
    let st = open("mem://");
    let id = CString::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    let mut v = 77u64;
    let rc = sessync_store_write(
        ptr::null(),
        id.as_ptr(),
        b"{}".as_ptr(),
        2,
        ptr::null(),
        0,
        0,
        &mut v,
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::NullArgument);
    assert!(last_error().contains("store"));
    let rc = sessync_store_write(
        st,
        ptr::null(),
        b"{}".as_ptr(),
        2,
        ptr::null(),
        0,
        0,
        &mut v,
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::NullArgument);
    let rc = sessync_store_write(
        st,
        id.as_ptr(),
        ptr::null(),
        2,
        ptr::null(),
        0,
        0,
        &mut v,
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::NullArgument);
    assert_eq!(v, 77);
    let mut out = sessync_buf {
        data: ptr::null_mut(),
        len: 5,
    };
    assert_eq!(
        sessync_store_fetch(st, id.as_ptr(), &mut out, ptr::null_mut(), ptr::null_mut()),
        sessync_status::NotFound
    );
    assert_eq!(out.len, 5, "untouched on failure");
    sessync_store_free(st);
    sessync_store_free(ptr::null_mut());
}

#[test]
fn bad_utf8_bad_json_and_bad_ids_each_have_their_status() {
    let st = open("mem://?max_session_bytes=64");
    let id = CString::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    let bad_utf8 = [0x66u8, 0x6f, 0xff, 0];
    let w = |json: &[u8]| {
        sessync_store_write(
            st,
            id.as_ptr(),
            json.as_ptr(),
            json.len(),
            ptr::null(),
            0,
            0,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    assert_eq!(w(b"{\"a\":1}"), sessync_status::Ok);
    assert_eq!(w(&[b'{', 0xff, b'}']), sessync_status::InvalidUtf8);
    assert_eq!(w(b"{\"a\":"), sessync_status::InvalidJson);
    assert_eq!(w(b"[1]"), sessync_status::InvalidJson);
    assert_eq!(w(&[b'x'; 100]), sessync_status::InvalidJson);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
    assert_eq!(w(big.as_bytes()), sessync_status::TooLarge);
    let rc = sessync_store_fetch(
        st,
        bad_utf8.as_ptr().cast::<c_char>(),
        &mut sessync_buf::empty(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::InvalidUtf8);
    let short = CString::new("short").unwrap();
    let rc = sessync_store_fetch(
        st,
        short.as_ptr(),
        &mut sessync_buf::empty(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::InvalidArgument);
    let mut out = sessync_buf::empty();
    let mut ver = 0;
    assert_eq!(
        sessync_store_fetch(st, id.as_ptr(), &mut out, &mut ver, ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(text(&out), "{\"a\":1}");
    assert_eq!(ver, 1, "nothing after the first write changed the session");
    sessync_buf_free(&mut out);
    sessync_store_free(st);
}

#[test]
fn rotate_with_a_short_buffer_says_how_much_and_does_not_rotate() {
    let st = open("mem://");
    let id = CString::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    assert_eq!(
        sessync_store_write(
            st,
            id.as_ptr(),
            b"{}".as_ptr(),
            2,
            ptr::null(),
            0,
            0,
            ptr::null_mut(),
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    // A write creates by itself; the create flag is accepted and changes nothing.
    assert_eq!(
        sessync_store_write(
            st,
            id.as_ptr(),
            b"{}".as_ptr(),
            2,
            ptr::null(),
            0,
            SESSYNC_WRITE_CREATE,
            ptr::null_mut(),
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    let mut small = [0 as c_char; 8];
    let mut n = 0usize;
    let rc = sessync_store_rotate(
        st,
        id.as_ptr(),
        0,
        small.as_mut_ptr(),
        small.len(),
        &mut n,
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::InsufficientSize);
    assert_eq!(n, 32);
    let mut out = sessync_buf::empty();
    assert_eq!(
        sessync_store_fetch(st, id.as_ptr(), &mut out, ptr::null_mut(), ptr::null_mut()),
        sessync_status::Ok
    );
    sessync_buf_free(&mut out);
    let mut big = [0 as c_char; SESSYNC_ID_MAX_LEN + 1];
    assert_eq!(
        sessync_store_rotate(
            st,
            id.as_ptr(),
            0,
            big.as_mut_ptr(),
            big.len(),
            &mut n,
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    // SAFETY: the library wrote a NUL-terminated id into `big`.
    let new = unsafe { CStr::from_ptr(big.as_ptr()) }.to_str().unwrap();
    assert_eq!(new.len(), n);
    assert_ne!(new, id.to_str().unwrap());
    sessync_store_free(st);
}

#[test]
fn an_injected_panic_comes_back_as_panic_and_poisons_the_store() {
    let st = open("mem://");
    let id = CString::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    INJECT_PANIC.with(|p| p.set(true));
    let rc = sessync_store_touch(st, id.as_ptr(), ptr::null_mut(), ptr::null_mut());
    assert_eq!(rc, sessync_status::Panic);
    assert!(last_error().contains("injected panic"), "{}", last_error());
    let rc = sessync_store_touch(st, id.as_ptr(), ptr::null_mut(), ptr::null_mut());
    assert_eq!(rc, sessync_status::Panic, "poisoned: fails closed");
    assert!(last_error().contains("poisoned"));
    sessync_store_free(st);
}

#[test]
fn a_session_round_trip_through_the_extern_functions() {
    let st = open("mem://");
    let mut s = ptr::null_mut();
    assert_eq!(
        sessync_session_begin(
            st,
            ptr::null(),
            0,
            SESSYNC_BEGIN_LOCK,
            -1,
            &mut s,
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    assert!(sessync_session_is_new(s));
    let key = CString::new("n").unwrap();
    let mut v = 0i64;
    assert_eq!(
        sessync_session_incr(s, key.as_ptr(), 5, &mut v, ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(v, 5);
    assert_eq!(
        sessync_session_begin(
            st,
            ptr::null(),
            0,
            8,
            -1,
            &mut ptr::null_mut(),
            ptr::null_mut()
        ),
        sessync_status::InvalidArgument
    );
    let mut cookie = sessync_buf::empty();
    assert_eq!(
        sessync_session_commit(s, &mut cookie, ptr::null_mut()),
        sessync_status::Ok
    );
    let header = text(&cookie);
    assert!(header.starts_with("sync_sess="), "{header}");
    let pair = header.split(';').next().unwrap().to_string();
    sessync_buf_free(&mut cookie);

    let mut s = ptr::null_mut();
    assert_eq!(
        sessync_session_begin(
            st,
            pair.as_ptr(),
            pair.len(),
            SESSYNC_BEGIN_LOCK,
            -1,
            &mut s,
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    assert!(!sessync_session_is_new(s));
    let mut got = sessync_buf::empty();
    assert_eq!(
        sessync_session_get(s, key.as_ptr(), &mut got, ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(text(&got), "5");
    sessync_buf_free(&mut got);
    let missing = CString::new("missing").unwrap();
    assert_eq!(
        sessync_session_get(s, missing.as_ptr(), &mut got, ptr::null_mut()),
        sessync_status::NotFound
    );
    assert!(got.data.is_null());
    assert_eq!(
        sessync_session_abort(s, ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(
        sessync_session_abort(ptr::null_mut(), ptr::null_mut()),
        sessync_status::NullArgument
    );
    sessync_session_free(ptr::null_mut());
    sessync_store_free(st);
}

fn set(o: *mut sessync_options, key: &str, value: &str) -> sessync_status {
    let (k, v) = (CString::new(key).unwrap(), CString::new(value).unwrap());
    sessync_options_set(o, k.as_ptr(), v.as_ptr(), ptr::null_mut())
}

#[test]
fn the_cookie_format_option() {
    let mut o = ptr::null_mut();
    assert_eq!(
        sessync_options_new(&mut o, ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(
        sessync_options_set_cookie_format(ptr::null_mut(), 1, ptr::null_mut()),
        sessync_status::NullArgument
    );
    assert!(last_error().contains("options"));
    assert_eq!(
        sessync_options_set_cookie_format(o, 2, ptr::null_mut()),
        sessync_status::InvalidArgument
    );
    assert!(last_error().contains("cookie format 2"), "{}", last_error());
    assert_eq!(
        set(o, "cookie_format", "connect"),
        sessync_status::InvalidArgument
    );
    assert!(last_error().contains("cookie_format"), "{}", last_error());
    // SAFETY: `o` is a live options object made above.
    let format = |o: *mut sessync_options| unsafe { (*o).flow.cookie.format };
    assert_eq!(format(o), crate::cookie::CookieFormat::Sessync, "unchanged");

    // The express format without a key: refused when the store opens.
    assert_eq!(
        sessync_options_set_cookie_format(
            o,
            sessync_cookie_format::Express as u32,
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    let url = CString::new("mem://").unwrap();
    let mut st = ptr::null_mut();
    assert_eq!(
        sessync_store_open(url.as_ptr(), o, &mut st, ptr::null_mut()),
        sessync_status::InvalidArgument
    );
    assert!(st.is_null());
    assert!(last_error().contains("express"), "{}", last_error());

    // The string form sets the same thing; with a key and the name, the flow writes
    // express-session's cookie and reads it back.
    assert_eq!(set(o, "cookie_format", "sessync"), sessync_status::Ok);
    assert_eq!(format(o), crate::cookie::CookieFormat::Sessync);
    assert_eq!(set(o, "cookie_format", "express"), sessync_status::Ok);
    assert_eq!(set(o, "cookie_name", "connect.sid"), sessync_status::Ok);
    let key = b"the express app's secret";
    assert_eq!(
        sessync_options_add_signing_key(o, key.as_ptr(), key.len(), ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(
        sessync_store_open(url.as_ptr(), o, &mut st, ptr::null_mut()),
        sessync_status::Ok
    );
    sessync_options_free(o);
    let mut s = ptr::null_mut();
    assert_eq!(
        sessync_session_begin(st, ptr::null(), 0, 0, -1, &mut s, ptr::null_mut()),
        sessync_status::Ok
    );
    let n = CString::new("n").unwrap();
    let mut v = 0i64;
    assert_eq!(
        sessync_session_incr(s, n.as_ptr(), 1, &mut v, ptr::null_mut()),
        sessync_status::Ok
    );
    let mut cookie = sessync_buf::empty();
    assert_eq!(
        sessync_session_commit(s, &mut cookie, ptr::null_mut()),
        sessync_status::Ok
    );
    let header = text(&cookie);
    sessync_buf_free(&mut cookie);
    assert!(header.starts_with("connect.sid=s%3A"), "{header}");
    let pair = header.split(';').next().unwrap().to_string();
    let mut s = ptr::null_mut();
    assert_eq!(
        sessync_session_begin(
            st,
            pair.as_ptr(),
            pair.len(),
            0,
            -1,
            &mut s,
            ptr::null_mut()
        ),
        sessync_status::Ok
    );
    assert!(!sessync_session_is_new(s));
    assert_eq!(
        sessync_session_abort(s, ptr::null_mut()),
        sessync_status::Ok
    );
    sessync_store_free(st);
}

/// Without the `rt` feature the calls that complete through a callback fail at once,
/// naming the feature, and never call back; cancel and drain find nothing pending.
#[cfg(not(feature = "rt"))]
#[test]
fn async_calls_name_the_missing_rt_feature() {
    use std::ffi::c_void;

    use super::{error::sessync_error, ticket::*};

    extern "C" fn never(_: *mut c_void, _: sessync_status, _: u64, _: *const sessync_error) {
        panic!("no callback without a runtime");
    }
    let st = open("mem://");
    let id = CString::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    let mut ticket = 0u64;
    let rc = sessync_store_lock_async(
        st,
        id.as_ptr(),
        1000,
        0,
        Some(never),
        ptr::null_mut(),
        &mut ticket,
        ptr::null_mut(),
    );
    assert_eq!(rc, sessync_status::InvalidArgument);
    assert!(last_error().contains("`rt` feature"), "{}", last_error());
    assert_eq!(ticket, 0, "no ticket is written");
    let mut cancelled = true;
    assert_eq!(
        sessync_ticket_cancel(1, &mut cancelled, ptr::null_mut()),
        sessync_status::Ok
    );
    assert!(!cancelled);
    let mut pending = 9usize;
    assert_eq!(
        sessync_async_drain(true, 0, &mut pending, ptr::null_mut()),
        sessync_status::Ok
    );
    assert_eq!(pending, 0);
    sessync_store_free(st);
}
