//! Limits on input that had no test of their own (see `docs/security.md`): oversize keys
//! and owners, and C ABI byte arguments over the input limit. Each is refused with its
//! error and changes nothing.

use sessync::{
    Error, PatchOp, SessionData, SessionId, Store, WriteOpts,
    backend::memory::MAX_OWNER_LEN,
    ffi::{
        session::{sessync_session_begin, sessync_session_set},
        sessync_status,
        store::{sessync_store_free, sessync_store_open},
    },
    session::MAX_KEY_LEN,
};

fn session(store: &Store) -> SessionId {
    let id = SessionId::generate();
    let data = SessionData::from_json(r#"{"a":1}"#).unwrap();
    store.write(&id, data, WriteOpts::default()).unwrap();
    id
}

#[test]
fn keys_over_the_limit_are_too_large_and_change_nothing() {
    let store = Store::open("mem://").unwrap();
    let id = session(&store);
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let ok = "k".repeat(MAX_KEY_LEN);
    let refused = [
        store.incr(&id, &long, 1, WriteOpts::default()),
        store
            .patch(&id, &format!(r#"{{"{long}":1}}"#), WriteOpts::default())
            .map(|v| v as i64),
        store
            .apply(
                &id,
                vec![PatchOp::Remove(long.clone())],
                WriteOpts::default(),
            )
            .map(|p| p.version as i64),
    ];
    for r in refused {
        assert!(matches!(r, Err(Error::TooLarge(_))), "{r:?}");
    }
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!((rec.data.to_json(), rec.version), (r#"{"a":1}"#, 1));
    assert_eq!(store.incr(&id, &ok, 1, WriteOpts::default()).unwrap(), 1);
}

#[test]
fn owners_outside_the_limits_are_invalid_and_change_nothing() {
    let store = Store::open("mem://").unwrap();
    let id = session(&store);
    for owner in [String::new(), "o".repeat(MAX_OWNER_LEN + 1)] {
        let r = store.set_owner(&id, Some(&owner), WriteOpts::default());
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    }
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!((rec.owner, rec.version), (None, 1));
    let owner = "o".repeat(MAX_OWNER_LEN);
    assert_eq!(
        store
            .set_owner(&id, Some(&owner), WriteOpts::default())
            .unwrap(),
        2
    );
}

#[test]
fn c_byte_arguments_over_16_mib_are_too_large_before_they_are_read() {
    let over = 16 * 1024 * 1024 + 1;
    let one = [b'1'];
    let mut store = std::ptr::null_mut();
    let url = c"mem://";
    let st = sessync_store_open(
        url.as_ptr(),
        std::ptr::null(),
        &mut store,
        std::ptr::null_mut(),
    );
    assert_eq!(st, sessync_status::Ok);
    // The lengths are checked first: the one readable byte is never read past.
    let mut s = std::ptr::null_mut();
    let st = sessync_session_begin(
        store,
        one.as_ptr(),
        over,
        0,
        0,
        &mut s,
        std::ptr::null_mut(),
    );
    assert_eq!(st, sessync_status::TooLarge);
    assert!(s.is_null());
    let st = sessync_session_begin(store, one.as_ptr(), 1, 0, 0, &mut s, std::ptr::null_mut());
    assert_eq!(st, sessync_status::Ok);
    let key = c"k";
    let st = sessync_session_set(s, key.as_ptr(), one.as_ptr(), over, std::ptr::null_mut());
    assert_eq!(st, sessync_status::TooLarge);
    sessync::ffi::session::sessync_session_free(s);
    sessync_store_free(store);
}
