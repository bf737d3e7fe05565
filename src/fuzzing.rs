//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), with their invariants.
//!
//! Each `pub fn <target>(data: &[u8])` takes any bytes and panics only when an invariant
//! breaks. The fuzz targets are one-line calls into this module (libFuzzer aborts on the
//! panic and saves the input), and `tests/fuzz_replay.rs` runs every file of
//! `fuzz/corpus/<target>/` through the same function on stable Rust, so that a corpus
//! entry, once found, is checked by every `cargo test`. See `docs/security.md`.
//!
//! Not a stable API: hidden from the docs, for the fuzz crate and the replay test only.

use std::ffi::{CString, c_char};

use serde_json::Value;

use crate::{
    WriteOpts,
    cookie::{CookieConfig, CookieFormat, MIN_SIGNING_KEY_LEN, cookie_values, parse_cookie_header},
    error::Error,
    ffi::{self, sessync_buf, sessync_error, sessync_session, sessync_status, sessync_store},
    server::resp::{Limits, ParseError, parse_request},
    session::{MAX_ID_LEN, MIN_ID_LEN, SessionData, SessionId, merge_patch as reference_merge},
    store::Store,
};

/// Reads an input as a little program: bytes, numbers, short strings, in order. Past
/// the end, every read gives zeros (an empty string), so a script always ends.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        i64::from_le_bytes(b)
    }

    /// Up to `max` bytes, the count given by the next byte.
    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.byte() as usize % (max + 1)).min(self.data.len());
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        b
    }

    /// The rest of the input.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// The bytes up to the first NUL, as a C string (C callers cannot pass the rest).
fn c_string(b: &[u8]) -> CString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// resp

/// Small limits, so that short inputs reach every limit check.
const SMALL_LIMITS: Limits = Limits {
    max_bulk: 64,
    max_args: 8,
    max_line: 32,
};

/// A request as a RESP array of bulk strings, as clients send it.
pub fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The daemon's request parser ([`parse_request`]) on a buffer of pipelined requests,
/// parsed as the connection loop does. The first byte picks the limits (the defaults, or
/// small ones). Invariants: no panic; each request consumes at least one byte and no more
/// than the buffer holds; every proper prefix of a request is incomplete (never an error,
/// never another request); a request re-encoded as a RESP array parses back to the same
/// arguments, consuming exactly the encoding.
pub fn resp(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = if input.byte() & 1 == 0 {
        Limits::default()
    } else {
        SMALL_LIMITS
    };
    let mut buf = input.rest();
    // At most as many requests as bytes: each consumes at least one.
    for _ in 0..=buf.len() {
        match parse_request(buf, &limits) {
            Ok((args, used)) => {
                assert!(
                    used > 0,
                    "a request consumed no bytes: the server would spin"
                );
                assert!(used <= buf.len(), "consumed {used} of {} bytes", buf.len());
                assert!(args.len() <= limits.max_args);
                for cut in [used - 1, used / 2] {
                    assert_eq!(
                        parse_request(&buf[..cut], &limits),
                        Err(ParseError::Incomplete),
                        "a prefix of {cut} of the {used} bytes of a request"
                    );
                }
                let encoded = encode_request(&args);
                assert_eq!(
                    parse_request(&encoded, &limits),
                    Ok((args, encoded.len())),
                    "re-encoded request"
                );
                buf = &buf[used..];
            }
            Err(ParseError::Incomplete) => return,
            Err(ParseError::Protocol(m)) => {
                assert!(
                    !m.contains(['\r', '\n']),
                    "error message breaks a line: {m:?}"
                );
                return;
            }
        }
    }
    panic!("more requests than bytes");
}

// ---------------------------------------------------------------------------------------
// cookie

/// A session id made of input bytes mapped onto the id alphabet.
fn id_from(input: &mut Input<'_>) -> SessionId {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let len = MIN_ID_LEN + input.byte() as usize % (MAX_ID_LEN - MIN_ID_LEN + 1);
    let s: String = (0..len)
        .map(|_| ALPHABET[input.byte() as usize % 64] as char)
        .collect();
    SessionId::parse(&s).expect("ids of the id alphabet and length are valid")
}

/// The `Cookie` header parser and the signature check. The input is: a format byte, a
/// signing key, a session id, a byte to change and its new value, then a `Cookie` header.
///
/// Invariants: no panic; [`parse_cookie_header`] keeps only token names and cookie-octet
/// values and agrees with [`cookie_values`]; a value signed with the key verifies (alone
/// and among other cookies of the header), and the value with any one byte changed does
/// not (in the express format, percent-escapes are case-insensitive: changing the case of
/// a hex digit is no change); the header's session ids, signed or not, all decode.
pub fn cookie(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut key = input.bytes(80).to_vec();
    key.resize(key.len().max(MIN_SIGNING_KEY_LEN), b'k');
    let id = id_from(&mut input);
    let at = input.byte() as usize;
    let to = input.byte();
    let header = String::from_utf8_lossy(input.rest());

    let pairs = parse_cookie_header(&header);
    for (name, value) in &pairs {
        assert!(!name.is_empty() && name.bytes().all(crate::cookie::is_tchar));
        assert!(value.bytes().all(crate::cookie::is_cookie_octet));
    }
    let names: std::collections::BTreeSet<&str> = pairs.iter().map(|(n, _)| *n).collect();
    for name in names {
        let want: Vec<&str> = pairs
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(cookie_values(&header, name).collect::<Vec<_>>(), want);
    }

    let format = if flags & 1 == 0 {
        CookieFormat::Sessync
    } else {
        CookieFormat::Express
    };
    let config = CookieConfig {
        keys: vec![key],
        format,
        ..Default::default()
    };
    config.validate().expect("a valid signing configuration");
    let value = config.encode_value(&id);
    assert_eq!(config.decode_value(&value), Some(id), "{value}");
    let with_others = format!("{header}; {}={value}", config.name);
    assert_eq!(config.session_ids(&with_others).last(), Some(&id));

    // One byte changed, to another ASCII byte (a value is ASCII text).
    let mut bent = value.clone().into_bytes();
    let i = at % bent.len();
    let new = if to & 0x7f == bent[i] { to ^ 1 } else { to } & 0x7f;
    let old = std::mem::replace(&mut bent[i], new);
    let bent = String::from_utf8(bent).expect("ASCII");
    if let Some(got) = config.decode_value(&bent) {
        assert!(
            format == CookieFormat::Express && old.eq_ignore_ascii_case(&new) && got == id,
            "{bent:?} (byte {i} of {value:?} changed) verifies as {got}"
        );
    }

    // Ids found in an arbitrary header decode again, alone.
    for config in [CookieConfig::default(), config] {
        for got in config.session_ids(&header) {
            let alone = format!("{}={}", config.name, config.encode_value(&got));
            assert_eq!(config.session_ids(&alone), [got]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// merge_patch

thread_local! {
    /// The in-process store the merge patches go through, one per thread (opening one per
    /// input would start and stop its expiry thread each time).
    static PATCH_STORE: Store = Store::open("mem://").expect("mem:// opens");
}

/// RFC 7396 merge patches applied to session data through the store (`Store::patch`, the
/// path of `SESS.PATCH`, `sessync_store_patch` and commits). The input is the session's
/// JSON, a NUL byte, then the patch (without a NUL: the patch on `{}`).
///
/// Invariants: no panic; a patch the store refuses (invalid JSON, not an object, a key
/// or a session over a limit) is an error that leaves the session as it was, version
/// included; an accepted one gives a valid JSON object, equal to the reference merge of
/// `serde_json` values, and applying it again changes nothing but the version.
pub fn merge_patch(data: &[u8]) {
    let (session, patch) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"{}"[..], data),
    };
    let session = String::from_utf8_lossy(session);
    let patch = String::from_utf8_lossy(patch);
    let Ok(base) = SessionData::from_json(&session) else {
        return;
    };
    for (k, v) in base.iter() {
        let decoded = serde_json::from_str::<Value>(v.as_str());
        assert!(
            decoded.is_ok(),
            "stored value of {k:?} does not decode: {decoded:?}"
        );
    }
    let id = SessionId::parse("fuzz-merge-patch-session").expect("a valid id");
    PATCH_STORE.with(|store| {
        let v0 = store
            .write(&id, base.clone(), WriteOpts::default())
            .expect("a session of valid JSON is stored");
        let fetch = || {
            let r = store
                .fetch(&id)
                .expect("the store answers")
                .expect("the session exists");
            (r.data, r.version)
        };
        let first = store.patch(&id, &patch, WriteOpts::default());
        let parsed = serde_json::from_str::<Value>(&patch);
        let v1 = match (first, parsed) {
            (Ok(v1), Ok(Value::Object(_))) => v1,
            (Ok(_), p) => panic!("the store accepted a patch that is not an object: {p:?}"),
            (Err(e), p) => {
                match &p {
                    Err(_)
                    | Ok(Value::Array(_) | Value::Null | Value::Bool(_))
                    | Ok(Value::Number(_) | Value::String(_)) => {
                        assert!(matches!(e, Error::InvalidJson(_)), "{e:?} for {p:?}")
                    }
                    Ok(Value::Object(_)) => {
                        assert!(matches!(e, Error::TooLarge(_)), "{e:?} for {p:?}")
                    }
                }
                let (d, v) = fetch();
                assert_eq!((&*d, v), (&base, v0), "a refused patch changed the session");
                return;
            }
        };
        let (d1, version) = fetch();
        assert_eq!(version, v1);
        let text: Value = serde_json::from_str(d1.to_json()).expect("the result is JSON");
        assert!(text.is_object());
        let mut want = base.to_value();
        let patch_value: Value = serde_json::from_str(&patch).expect("parsed above");
        reference_merge(&mut want, &patch_value);
        assert_eq!(
            d1.to_value(),
            want,
            "the store's merge and the reference differ"
        );

        let second = store.patch(&id, &patch, WriteOpts::default());
        let v2 = second.expect("a patch accepted once is accepted twice");
        let (d2, version) = fetch();
        assert_eq!(version, v2);
        assert_eq!(
            d2.to_json(),
            d1.to_json(),
            "a merge patch applied twice differs"
        );
    });
}

// ---------------------------------------------------------------------------------------
// c_abi

/// The statuses a call may return, `PANIC` excepted.
fn check(status: sessync_status, call: &str) {
    assert!(
        (status as u32) <= sessync_status::Cancelled as u32,
        "{call}: {status:?}"
    );
    assert_ne!(status, sessync_status::Panic, "{call} panicked");
}

/// A NUL-terminated key of input bytes.
fn key_of(input: &mut Input<'_>) -> CString {
    c_string(input.bytes(12))
}

/// Frees a buffer the library filled (a no-op on an empty one).
fn free_buf(mut b: sessync_buf) {
    if !b.data.is_null() {
        // SAFETY: the library allocated `len + 1` bytes at `data`.
        assert_eq!(unsafe { *b.data.add(b.len) }, 0, "buffers end with a NUL");
    }
    ffi::buf::sessync_buf_free(&mut b);
}

/// `sessync_session_set` and `sessync_session_set_bytes`.
type Setter = extern "C" fn(
    *mut sessync_session,
    *const c_char,
    *const u8,
    usize,
    *mut sessync_error,
) -> sessync_status;

/// `sessync_session_get` and `sessync_session_get_bytes`.
type Getter = extern "C" fn(
    *mut sessync_session,
    *const c_char,
    *mut sessync_buf,
    *mut sessync_error,
) -> sessync_status;

/// Up to this many sessions are open at once in a script.
const MAX_OPEN_SESSIONS: usize = 4;

/// The C ABI driven by a script of calls on an in-process store. Each step reads an
/// opcode byte, then its arguments from the input: session ids (checked, generated, or
/// raw bytes), a store URL `mem://<bytes>` (store options of the input), `Cookie` headers,
/// keys, JSON and byte values, flags, increments. Calls on a missing store or session pass
/// NULL. Every status is checked; everything is freed at the end.
///
/// Invariants: no panic, no crash (under a sanitizer, no memory error), and every call
/// returns a known status other than `PANIC`; buffers end with a NUL.
pub fn c_abi(data: &[u8]) {
    use ffi::{id, record, session as s, store as st};
    use std::ptr::null_mut as null;
    let mut input = Input::new(data);
    let mut store: *mut sessync_store = std::ptr::null_mut();
    let mut sessions: Vec<*mut sessync_session> = Vec::new();
    let mut ids: Vec<CString> = vec![c_string(b"fuzzfuzzfuzzfuzz")];
    let end_sessions = |sessions: &mut Vec<*mut sessync_session>| {
        for h in sessions.drain(..) {
            s::sessync_session_free(h);
        }
    };

    let mut steps = 0;
    while !input.is_empty() && steps < 64 {
        steps += 1;
        let op = input.byte();
        let pick = input.byte() as usize;
        let session = if sessions.is_empty() {
            null()
        } else {
            sessions[pick % sessions.len()]
        };
        let some_id = ids[pick % ids.len()].clone();
        match op % 20 {
            0 => {
                let raw = c_string(input.bytes(60));
                let st = id::sessync_id_check(raw.as_ptr(), null());
                check(st, "id_check");
                let parsed = raw.to_str().ok().map(SessionId::parse);
                assert_eq!(
                    st == sessync_status::Ok,
                    matches!(parsed, Some(Ok(_))),
                    "id_check({raw:?})"
                );
                if st == sessync_status::Ok {
                    ids.push(raw);
                }
            }
            1 => {
                let room = input.byte() as usize % 64;
                let mut out = vec![0 as c_char; room];
                let mut len = 0usize;
                let ptr = if room == 0 { null() } else { out.as_mut_ptr() };
                let st = id::sessync_id_generate(ptr, room, &mut len, null());
                check(st, "id_generate");
                if st == sessync_status::Ok {
                    assert_eq!(out[len], 0);
                    let bytes: Vec<u8> = out[..len].iter().map(|&c| c as u8).collect();
                    ids.push(CString::new(bytes).expect("no NUL in an id"));
                } else {
                    assert_eq!(st, sessync_status::InsufficientSize);
                    assert!(len >= room, "needs {len}, had {room}");
                }
            }
            2 => {
                let mut url = b"mem://".to_vec();
                url.extend_from_slice(input.bytes(48));
                let url = c_string(&url);
                end_sessions(&mut sessions);
                st::sessync_store_free(store);
                let mut out = null();
                check(
                    st::sessync_store_open(url.as_ptr(), std::ptr::null(), &mut out, null()),
                    "store_open",
                );
                store = out;
            }
            3 | 4 => {
                if sessions.len() >= MAX_OPEN_SESSIONS {
                    continue;
                }
                let flags = u32::from(input.byte() % 3);
                let mut out = null();
                let st = if op % 20 == 3 {
                    let cookie = input.bytes(120);
                    s::sessync_session_begin(
                        store,
                        cookie.as_ptr(),
                        cookie.len(),
                        flags,
                        0,
                        &mut out,
                        null(),
                    )
                } else {
                    s::sessync_session_begin_id(store, some_id.as_ptr(), flags, 0, &mut out, null())
                };
                check(st, "session_begin");
                if st == sessync_status::Ok {
                    assert!(!out.is_null());
                    sessions.push(out);
                }
            }
            5 | 7 => {
                let key = key_of(&mut input);
                let value = input.bytes(40);
                let set: Setter = if op % 20 == 5 {
                    s::sessync_session_set
                } else {
                    s::sessync_session_set_bytes
                };
                let st = set(session, key.as_ptr(), value.as_ptr(), value.len(), null());
                check(st, "session_set/set_bytes");
            }
            6 | 8 => {
                let key = key_of(&mut input);
                let get: Getter = if op % 20 == 6 {
                    s::sessync_session_get
                } else {
                    s::sessync_session_get_bytes
                };
                let mut out = sessync_buf::empty();
                check(
                    get(session, key.as_ptr(), &mut out, null()),
                    "session_get/get_bytes",
                );
                free_buf(out);
            }
            9 => {
                let json = input.bytes(60);
                let flags = u32::from(input.byte() % 5);
                let mut v = 0u64;
                check(
                    st::sessync_store_patch(
                        store,
                        some_id.as_ptr(),
                        json.as_ptr(),
                        json.len(),
                        0,
                        flags,
                        &mut v,
                        null(),
                    ),
                    "store_patch",
                );
            }
            10 => {
                let key = key_of(&mut input);
                let by = input.i64();
                let mut v = 0i64;
                check(
                    s::sessync_session_incr(session, key.as_ptr(), by, &mut v, null()),
                    "session_incr",
                );
            }
            11 => {
                let key = key_of(&mut input);
                let by = input.i64();
                let flags = u32::from(input.byte() % 5);
                check(
                    st::sessync_store_incr(
                        store,
                        some_id.as_ptr(),
                        key.as_ptr(),
                        by,
                        0,
                        flags,
                        null(),
                        null(),
                    ),
                    "store_incr",
                );
            }
            12 | 13 => {
                if session.is_null() {
                    continue;
                }
                sessions.retain(|&h| h != session);
                let st = if op % 20 == 12 {
                    let mut cookie = sessync_buf::empty();
                    let st = s::sessync_session_commit(session, &mut cookie, null());
                    free_buf(cookie);
                    st
                } else {
                    s::sessync_session_abort(session, null())
                };
                check(st, "session_commit/abort");
            }
            14 => check(
                s::sessync_session_destroy(session, null()),
                "session_destroy",
            ),
            15 => {
                let mut destroyed = false;
                check(
                    st::sessync_store_destroy(store, some_id.as_ptr(), &mut destroyed, null()),
                    "store_destroy",
                );
            }
            16 => {
                let mut out = sessync_buf::empty();
                let mut v = 0u64;
                check(
                    st::sessync_store_fetch(store, some_id.as_ptr(), &mut out, &mut v, null()),
                    "store_fetch",
                );
                free_buf(out);
                let mut rec = null();
                let st = record::sessync_store_get(store, some_id.as_ptr(), &mut rec, null());
                check(st, "store_get");
                if st == sessync_status::Ok {
                    let mut len = 0usize;
                    let json = record::sessync_record_json(rec, &mut len);
                    assert!(!json.is_null());
                    record::sessync_record_free(rec);
                }
            }
            17 => {
                let mut out = sessync_buf::empty();
                check(
                    s::sessync_session_data(session, &mut out, null()),
                    "session_data",
                );
                free_buf(out);
            }
            18 => {
                let json = input.bytes(60);
                check(
                    st::sessync_store_write(
                        store,
                        some_id.as_ptr(),
                        json.as_ptr(),
                        json.len(),
                        std::ptr::null(),
                        0,
                        0,
                        null(),
                        null(),
                    ),
                    "store_write",
                );
            }
            _ => {
                check(s::sessync_session_rotate(session, null()), "session_rotate");
                // NULL where a pointer is required.
                check(
                    s::sessync_session_set(session, std::ptr::null(), std::ptr::null(), 1, null()),
                    "set NULL",
                );
            }
        }
    }
    end_sessions(&mut sessions);
    st::sessync_store_free(store);
}

/// The persistence log's reader (`backend::memory::persist`), fed any bytes after a
/// segment header: it never panics; a record it reads, written again, reads back the
/// same; and where it stops (a torn or damaged record) is a record boundary, so
/// truncating there leaves a log that reads cleanly, as the restore does.
pub fn log(data: &[u8]) {
    use crate::backend::memory::persist::{Tail, encode, read_records, segment_header};
    let mut bytes = segment_header(1);
    let start = bytes.len();
    bytes.extend_from_slice(data);
    let mut records = Vec::new();
    let tail = read_records(&bytes, |r| records.push(r));
    for (id, state) in records.into_iter().flatten() {
        let mut again = segment_header(1);
        encode(&id, &state, &mut again);
        let mut read = Vec::new();
        assert_eq!(read_records(&again, |r| read.push(r)), Tail::Clean);
        assert_eq!(
            read,
            vec![Some((id, state))],
            "a record reads back as written"
        );
    }
    if let Tail::Bad { at, .. } | Tail::Invalid { at, .. } = tail {
        assert!(at >= start && at <= bytes.len(), "stopped inside the input");
        assert_eq!(
            read_records(&bytes[..at], |_| {}),
            Tail::Clean,
            "the log cut where the reader stopped reads cleanly"
        );
    }
}
