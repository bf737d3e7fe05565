//! What the C ABI adds over the Rust API, in one run, on the same store and data as
//! `benches/store.rs` (100,000 sessions of about 1 KiB, random order):
//!
//! * `fetch_1k`: `Store::fetch` against `sessync_store_get` (a zero-copy record handle,
//!   whose JSON the caller borrows with `sessync_record_json`, then `sessync_record_free`)
//!   and against `sessync_store_fetch` (which copies the JSON into a `sessync_buf` that
//!   the caller frees with `sessync_buf_free`);
//! * `locked_update`: the request flow — begin with the lock from a raw `Cookie` header,
//!   read a key, set it, commit — through `Sessions`/`Session` against
//!   `sessync_session_begin` / `_get` / `_set` / `_commit`.
//!
//! The extern functions are called from Rust: the same machine code a C caller runs.
//! `scripts/bench.sh` prints the ratios.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented fn")]

mod common;

use std::{ffi::CString, hint::black_box, ptr, time::Duration};

use common::{SESSIONS, order, run_threads, session_json};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sessync::{
    FlowOptions, SessionData, SessionId, Sessions, Store, WriteOpts,
    ffi::{
        buf::sessync_buf_free,
        record::{sessync_record_free, sessync_record_json, sessync_store_get},
        session::{
            SESSYNC_BEGIN_LOCK, sessync_session_begin, sessync_session_commit, sessync_session_get,
            sessync_session_set,
        },
        sessync_buf, sessync_status, sessync_store,
        store::{sessync_store_fetch, sessync_store_free, sessync_store_open},
    },
};

/// The C handle, shareable between the bench threads (it is thread-safe by contract).
struct Handle(*mut sessync_store);
// SAFETY: `sessync_store` is documented thread-safe; the pointer is only freed at the end.
unsafe impl Sync for Handle {}
// SAFETY: as above.
unsafe impl Send for Handle {}

impl Handle {
    /// The pointer (a method, so that closures capture the whole `Handle`).
    fn get(&self) -> *mut sessync_store {
        self.0
    }
}

fn benches(c: &mut Criterion) {
    let mut h = ptr::null_mut();
    let url = CString::new("mem://").unwrap();
    assert_eq!(
        sessync_store_open(url.as_ptr(), ptr::null(), &mut h, ptr::null_mut()),
        sessync_status::Ok
    );
    let handle = Handle(h);
    let store = Store::open("mem://").unwrap();
    let flow = Sessions::new(store.clone(), FlowOptions::default()).unwrap();

    let ids: Vec<SessionId> = (0..SESSIONS).map(|_| SessionId::generate()).collect();
    // The C ids side by side in one buffer, NUL-terminated, like the Rust ids in their
    // array: one cache line per id for both, whatever the order.
    let stride = 33;
    let mut c_id_bytes = vec![0u8; SESSIONS * stride];
    for (i, id) in ids.iter().enumerate() {
        c_id_bytes[i * stride..i * stride + 32].copy_from_slice(id.as_bytes());
    }
    let c_id = |k: usize| c_id_bytes[k * stride..].as_ptr().cast::<std::ffi::c_char>();
    let headers: Vec<String> = ids
        .iter()
        .map(|i| format!("theme=dark; sync_sess={i}"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let json = session_json(i);
        store
            .write(
                id,
                SessionData::from_json(&json).unwrap(),
                WriteOpts::default(),
            )
            .unwrap();
        let rc = sessync::ffi::store::sessync_store_write(
            handle.0,
            c_id(i),
            json.as_ptr(),
            json.len(),
            ptr::null(),
            0,
            0,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(rc, sessync_status::Ok);
    }
    let orders = [order(1 << 20, 0x9E37_79B9), order(1 << 20, 0x7F4A_7C15)];
    let pick = |t: usize, i: u64| orders[t % 2][(i as usize) & ((1 << 20) - 1)];
    let views = CString::new("views").unwrap();

    let mut g = c.benchmark_group("c_abi_fetch_1k");
    g.throughput(Throughput::Elements(1));
    for n in [1usize, 2] {
        g.bench_function(BenchmarkId::new("rust", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    black_box(store.fetch(&ids[pick(t, i)]).unwrap());
                })
            })
        });
        g.bench_function(BenchmarkId::new("c_abi_get", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let mut rec = ptr::null_mut();
                    let rc = sessync_store_get(
                        handle.get(),
                        c_id(pick(t, i)),
                        &mut rec,
                        ptr::null_mut(),
                    );
                    assert_eq!(rc, sessync_status::Ok);
                    black_box(sessync_record_json(rec, ptr::null_mut()));
                    sessync_record_free(rec);
                })
            })
        });
        g.bench_function(BenchmarkId::new("c_abi", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let mut out = sessync_buf {
                        data: ptr::null_mut(),
                        len: 0,
                    };
                    let mut v = 0u64;
                    let rc = sessync_store_fetch(
                        handle.get(),
                        c_id(pick(t, i)),
                        &mut out,
                        &mut v,
                        ptr::null_mut(),
                    );
                    assert_eq!(rc, sessync_status::Ok);
                    black_box(&out);
                    sessync_buf_free(&mut out);
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("c_abi_locked_update");
    g.throughput(Throughput::Elements(1));
    for n in [1usize, 2] {
        g.bench_function(BenchmarkId::new("rust", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let mut s = flow.begin(Some(&headers[pick(t, i)]), true).unwrap();
                    let v: i64 = s.get_as("views").unwrap().unwrap_or(0);
                    s.set("views", &(v + 1)).unwrap();
                    black_box(s.commit().unwrap());
                })
            })
        });
        g.bench_function(BenchmarkId::new("c_abi", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let hdr = headers[pick(t, i)].as_bytes();
                    let mut s = ptr::null_mut();
                    let rc = sessync_session_begin(
                        handle.get(),
                        hdr.as_ptr(),
                        hdr.len(),
                        SESSYNC_BEGIN_LOCK,
                        -1,
                        &mut s,
                        ptr::null_mut(),
                    );
                    assert_eq!(rc, sessync_status::Ok);
                    let mut got = sessync_buf {
                        data: ptr::null_mut(),
                        len: 0,
                    };
                    let rc = sessync_session_get(s, views.as_ptr(), &mut got, ptr::null_mut());
                    assert_eq!(rc, sessync_status::Ok);
                    // SAFETY: the library filled `len` bytes at `data`.
                    let text = unsafe { std::slice::from_raw_parts(got.data, got.len) };
                    let v: i64 = std::str::from_utf8(text).unwrap().parse().unwrap();
                    sessync_buf_free(&mut got);
                    let next = (v + 1).to_string();
                    let rc = sessync_session_set(
                        s,
                        views.as_ptr(),
                        next.as_ptr(),
                        next.len(),
                        ptr::null_mut(),
                    );
                    assert_eq!(rc, sessync_status::Ok);
                    let mut cookie = sessync_buf {
                        data: ptr::null_mut(),
                        len: 0,
                    };
                    assert_eq!(
                        sessync_session_commit(s, &mut cookie, ptr::null_mut()),
                        sessync_status::Ok
                    );
                    sessync_buf_free(&mut cookie);
                })
            })
        });
    }
    g.finish();
    sessync_store_free(handle.0);
}

criterion_group! {
    name = c_abi;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(c_abi);
