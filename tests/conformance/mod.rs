//! The contract every backend honours, as operation sequences with expected results.
//!
//! Written once against the `Store` API. A backend's test file implements [`Backend`]
//! (open a fresh store from an option string, move its time forward) and calls
//! [`run_all`]. Session ids in the cases are names ("a", "b"); the runner maps each name
//! to a fresh id, or to the id a rotation returned. Lock tokens are named the same way.

#![allow(dead_code, reason = "each test binary uses a subset")]

use std::{collections::HashMap, time::Duration};

use sessync::{Error, PatchOp, SessionData, SessionId, Store, WriteOpts};

/// Options every case starts from (a case may add its own): a 60 s idle TTL, a 1 h
/// absolute TTL, touches written after half the TTL, 120 s tombstones, a 5 s rotation
/// grace, 4 KiB sessions.
pub const BASE_OPTIONS: &str = "ttl=60s&absolute_ttl=1h&touch_fraction=0.5&tombstone_ttl=120s&rotate_grace=5s&max_session_bytes=4096";

/// A backend under test.
pub trait Backend {
    /// A fresh, empty store opened with these URL query options (`ttl=60s&…`).
    fn open(&self, options: &str) -> Box<dyn Harness>;
}

/// One open store and control of its time.
pub trait Harness {
    /// The store.
    fn store(&self) -> &Store;
    /// Moves the store's time forward.
    fn advance(&self, by: Duration);
}

/// Write conditions, with the token named.
#[derive(Clone, Copy, Default)]
pub struct W {
    pub expected: Option<u64>,
    pub token: Option<&'static str>,
    pub create: bool,
}
pub const PLAIN: W = W {
    expected: None,
    token: None,
    create: false,
};
pub const CREATE: W = W {
    expected: None,
    token: None,
    create: true,
};
pub const fn expect(v: u64) -> W {
    W {
        expected: Some(v),
        token: None,
        create: false,
    }
}
pub const fn tok(t: &'static str) -> W {
    W {
        expected: None,
        token: Some(t),
        create: false,
    }
}

/// An operation on named sessions.
#[derive(Clone)]
pub enum Op {
    Fetch(&'static str),
    Write(&'static str, &'static str, W),
    Patch(&'static str, &'static str, W),
    Incr(&'static str, &'static str, i64, W),
    /// Lock with lease and wait in ms; the token is bound to the last name.
    Lock(&'static str, u64, u64, &'static str),
    Unlock(&'static str, &'static str),
    Touch(&'static str),
    Destroy(&'static str),
    /// Rotate, with an optional token; the new id is bound to the second name.
    Rotate(&'static str, Option<&'static str>, &'static str),
    SetOwner(&'static str, Option<&'static str>),
    Owned(&'static str),
    DestroyAll(&'static str),
    Advance(u64),
    /// Write with the session's own idle TTL (ms; 0 and huge ones are bad input).
    WriteTtl(&'static str, &'static str, u64),
    /// Merge patch with the session's own idle TTL, creating the session if absent.
    PatchTtl(&'static str, &'static str, u64),
    /// Increment with the session's own idle TTL, creating the session if absent.
    IncrTtl(&'static str, &'static str, i64, u64),
    /// Touch that sets the session's own idle TTL.
    TouchTtl(&'static str, u64),
    /// Fetch: the session's own TTL as its record says.
    OwnTtl(&'static str),
    /// Every page of the live sessions, with this count per page.
    List(usize),
    /// Destroy every session.
    Clear,
}

/// The expected outcome of a step.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Success, whatever the value.
    Ok,
    /// A write's new version.
    Version(u64),
    /// An increment's result.
    Int(i64),
    /// Fetch: the session has this data (compared as JSON) and this version.
    Data(&'static str, u64),
    /// Fetch: the session answers under another name's id, with this data.
    Moved(&'static str, &'static str),
    /// Fetch: no session.
    Absent,
    /// Lock: a token greater than every token seen before in the case.
    Token,
    /// Touch: whether it wrote.
    Written(bool),
    /// Destroy: whether a live session was there.
    Existed(bool),
    /// DestroyAll: how many.
    Count(usize),
    /// Owned: these names, in any order.
    Ids(&'static [&'static str]),
    /// This error kind (`Error::kind`).
    Err(&'static str),
    /// OwnTtl: the record's `ttl_ms`.
    Ttl(Option<u64>),
}

/// One case: a name, extra options, and its steps.
pub struct Case {
    pub name: &'static str,
    pub options: &'static str,
    pub steps: Vec<(Op, Expect)>,
}

fn case(name: &'static str, steps: Vec<(Op, Expect)>) -> Case {
    Case {
        name,
        options: "",
        steps,
    }
}

fn case_with(name: &'static str, options: &'static str, steps: Vec<(Op, Expect)>) -> Case {
    Case {
        name,
        options,
        steps,
    }
}

use Expect as E;
use Op::*;

/// The contract.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "fetch of an unknown id finds nothing",
            vec![(Fetch("a"), E::Absent)],
        ),
        case(
            "write creates at version 1 and every write adds one",
            vec![
                (Write("a", r#"{"n":1}"#, PLAIN), E::Version(1)),
                (Fetch("a"), E::Data(r#"{"n":1}"#, 1)),
                (Write("a", r#"{"n":2,"s":"x"}"#, PLAIN), E::Version(2)),
                (Fetch("a"), E::Data(r#"{"n":2,"s":"x"}"#, 2)),
            ],
        ),
        case(
            "write with an expected version is a compare-and-swap",
            vec![
                (Write("a", r#"{"v":1}"#, expect(0)), E::Version(1)),
                (Write("a", r#"{"v":2}"#, expect(0)), E::Err("conflict")),
                (Write("a", r#"{"v":2}"#, expect(1)), E::Version(2)),
                (Write("a", r#"{"v":3}"#, expect(1)), E::Err("conflict")),
                (Fetch("a"), E::Data(r#"{"v":2}"#, 2)),
                (Write("b", r#"{}"#, expect(4)), E::Err("conflict")),
                (Fetch("b"), E::Absent),
            ],
        ),
        case(
            "patch is an RFC 7396 merge patch: null deletes, objects merge",
            vec![
                (
                    Write("a", r#"{"a":1,"b":{"c":1},"keep":true}"#, PLAIN),
                    E::Version(1),
                ),
                (
                    Patch("a", r#"{"a":null,"b":{"d":2},"n":[1]}"#, PLAIN),
                    E::Version(2),
                ),
                (
                    Fetch("a"),
                    E::Data(r#"{"b":{"c":1,"d":2},"keep":true,"n":[1]}"#, 2),
                ),
                (Patch("a", r#"{"b":{"c":null}}"#, expect(2)), E::Version(3)),
                (Patch("a", r#"{"b":1}"#, expect(2)), E::Err("conflict")),
                (
                    Fetch("a"),
                    E::Data(r#"{"b":{"d":2},"keep":true,"n":[1]}"#, 3),
                ),
            ],
        ),
        case(
            "patch needs an existing session unless told to create",
            vec![
                (Patch("a", r#"{"x":1}"#, PLAIN), E::Err("not_found")),
                (Fetch("a"), E::Absent),
                (Patch("a", r#"{"x":1}"#, CREATE), E::Version(1)),
                (Fetch("a"), E::Data(r#"{"x":1}"#, 1)),
            ],
        ),
        case(
            "increments are atomic integer additions",
            vec![
                (Write("a", r#"{"s":"text","f":1.5}"#, PLAIN), E::Version(1)),
                (Incr("a", "n", 1, PLAIN), E::Int(1)),
                (Incr("a", "n", 41, PLAIN), E::Int(42)),
                (Incr("a", "n", -50, PLAIN), E::Int(-8)),
                (Incr("a", "s", 1, PLAIN), E::Err("not_a_number")),
                (Incr("a", "f", 1, PLAIN), E::Err("not_a_number")),
                (Fetch("a"), E::Data(r#"{"s":"text","f":1.5,"n":-8}"#, 4)),
                (Incr("b", "n", 1, PLAIN), E::Err("not_found")),
                (Incr("b", "n", 5, CREATE), E::Int(5)),
            ],
        ),
        case(
            "bad input is refused and changes nothing",
            vec![
                (Write("a", r#"{"ok":1}"#, PLAIN), E::Version(1)),
                (Write("a", r#"{"ok":"#, PLAIN), E::Err("invalid_json")),
                (Write("a", r#"[1,2]"#, PLAIN), E::Err("invalid_json")),
                (Write("a", r#""str""#, PLAIN), E::Err("invalid_json")),
                (Patch("a", r#"[1]"#, PLAIN), E::Err("invalid_json")),
                (Patch("a", r#"null"#, PLAIN), E::Err("invalid_json")),
                (Patch("a", r#"{"x":"#, PLAIN), E::Err("invalid_json")),
                (Write("a", BIG_SESSION, PLAIN), E::Err("too_large")),
                (Patch("a", BIG_SESSION, PLAIN), E::Err("too_large")),
                (Fetch("a"), E::Data(r#"{"ok":1}"#, 1)),
                (Write("b", BIG_SESSION, PLAIN), E::Err("too_large")),
                (Fetch("b"), E::Absent),
            ],
        ),
        case(
            "the lock excludes other holders and tokenless writers",
            vec![
                (Write("a", r#"{"n":0}"#, PLAIN), E::Version(1)),
                (Lock("a", 10_000, 0, "t1"), E::Token),
                (Lock("a", 10_000, 0, "t2"), E::Err("lock_timeout")),
                (Write("a", r#"{"n":9}"#, PLAIN), E::Err("locked")),
                (Patch("a", r#"{"n":9}"#, PLAIN), E::Err("locked")),
                (Incr("a", "n", 1, tok("t1")), E::Int(1)),
                (Unlock("a", "t1"), E::Ok),
                (Unlock("a", "t1"), E::Err("stale_token")),
                (Incr("a", "n", 1, tok("t1")), E::Err("stale_token")),
                (Lock("a", 10_000, 0, "t3"), E::Token),
                (Write("a", r#"{"n":5}"#, tok("t1")), E::Err("stale_token")),
                (Write("a", r#"{"n":5}"#, tok("t3")), E::Version(3)),
                (Unlock("a", "t3"), E::Ok),
                (Fetch("a"), E::Data(r#"{"n":5}"#, 3)),
            ],
        ),
        case(
            "a lease ends by itself; the late holder's writes are refused",
            vec![
                (Write("a", r#"{"n":0}"#, PLAIN), E::Version(1)),
                (Lock("a", 1_000, 0, "t1"), E::Token),
                (Advance(1_500), E::Ok),
                (Lock("a", 10_000, 0, "t2"), E::Token),
                (Incr("a", "n", 1, tok("t1")), E::Err("stale_token")),
                (Unlock("a", "t1"), E::Err("stale_token")),
                (Incr("a", "n", 1, tok("t2")), E::Int(1)),
                (Fetch("a"), E::Data(r#"{"n":1}"#, 2)),
            ],
        ),
        case(
            "an expired lease frees tokenless writes too",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Lock("a", 1_000, 0, "t1"), E::Token),
                (Advance(1_001), E::Ok),
                (Incr("a", "n", 1, PLAIN), E::Int(1)),
            ],
        ),
        case(
            "tokens never issued are stale; locking the unknown is not found",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (
                    Write("a", r#"{"x":1}"#, tok("never")),
                    E::Err("stale_token"),
                ),
                (Unlock("a", "never"), E::Err("stale_token")),
                (Lock("nobody", 1_000, 0, "t"), E::Err("not_found")),
                (Fetch("a"), E::Data("{}", 1)),
            ],
        ),
        case(
            "touch writes only after the touch interval and does not change the version",
            vec![
                (Write("a", r#"{"x":1}"#, PLAIN), E::Version(1)),
                (Advance(10_000), E::Ok),
                (Touch("a"), E::Written(false)),
                (Advance(25_000), E::Ok),
                (Touch("a"), E::Written(true)),
                (Touch("a"), E::Written(false)),
                (Fetch("a"), E::Data(r#"{"x":1}"#, 1)),
                (Touch("nobody"), E::Err("not_found")),
            ],
        ),
        case(
            "sessions expire after the idle TTL unless touched",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Write("b", r#"{}"#, PLAIN), E::Version(1)),
                (Advance(40_000), E::Ok),
                (Touch("a"), E::Written(true)),
                (Advance(40_000), E::Ok),
                (Fetch("a"), E::Data("{}", 1)),
                (Fetch("b"), E::Absent),
                (Write("b", r#"{"new":1}"#, expect(0)), E::Version(1)),
                (Advance(61_000), E::Ok),
                (Fetch("a"), E::Absent),
                (Touch("a"), E::Err("not_found")),
                (Incr("a", "n", 1, PLAIN), E::Err("not_found")),
            ],
        ),
        case("the absolute TTL caps a session however busy", {
            let mut steps = vec![(Write("a", r#"{}"#, PLAIN), E::Version(1))];
            // Touch every 40 s up to 3560 s after creation.
            for _ in 0..89 {
                steps.push((Advance(40_000), E::Ok));
                steps.push((Touch("a"), E::Written(true)));
            }
            steps.push((Advance(39_000), E::Ok));
            steps.push((Fetch("a"), E::Data("{}", 1)));
            steps.push((Advance(1_000), E::Ok));
            steps.push((Fetch("a"), E::Absent));
            steps
        }),
        case(
            "destroy leaves a tombstone that refuses late writes, then lets go",
            vec![
                (Write("a", r#"{"user":1}"#, PLAIN), E::Version(1)),
                (Destroy("a"), E::Existed(true)),
                (Fetch("a"), E::Absent),
                (Write("a", r#"{"user":1}"#, PLAIN), E::Err("destroyed")),
                (Patch("a", r#"{"user":1}"#, CREATE), E::Err("destroyed")),
                (Incr("a", "n", 1, CREATE), E::Err("destroyed")),
                (Lock("a", 1_000, 0, "t"), E::Err("destroyed")),
                (Touch("a"), E::Err("destroyed")),
                (Fetch("a"), E::Absent),
                (Destroy("a"), E::Existed(false)),
                (Advance(121_000), E::Ok),
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
            ],
        ),
        case(
            "destroying a locked session ends the lock and refuses the holder",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Lock("a", 10_000, 0, "t1"), E::Token),
                (Destroy("a"), E::Existed(true)),
                (Write("a", r#"{"x":1}"#, tok("t1")), E::Err("destroyed")),
                (Unlock("a", "t1"), E::Err("destroyed")),
                (Fetch("a"), E::Absent),
            ],
        ),
        case(
            "rotate moves the data; the old id answers reads for the grace period only",
            vec![
                (Write("a", r#"{"cart":[1]}"#, PLAIN), E::Version(1)),
                (Rotate("a", None, "b"), E::Ok),
                (Fetch("b"), E::Data(r#"{"cart":[1]}"#, 1)),
                (Fetch("a"), E::Moved("b", r#"{"cart":[1]}"#)),
                (Write("a", r#"{}"#, PLAIN), E::Err("rotated")),
                (Incr("a", "n", 1, PLAIN), E::Err("rotated")),
                (Incr("b", "n", 1, PLAIN), E::Int(1)),
                (Fetch("a"), E::Moved("b", r#"{"cart":[1],"n":1}"#)),
                (Advance(5_001), E::Ok),
                (Fetch("a"), E::Absent),
                (Write("a", r#"{}"#, PLAIN), E::Err("destroyed")),
                (Fetch("b"), E::Data(r#"{"cart":[1],"n":1}"#, 2)),
                (Rotate("nobody", None, "c"), E::Err("not_found")),
            ],
        ),
        case(
            "rotation carries the lock and keeps the creation time",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Lock("a", 10_000, 0, "t1"), E::Token),
                (Rotate("a", Some("t1"), "b"), E::Ok),
                (Incr("b", "n", 1, PLAIN), E::Err("locked")),
                (Incr("b", "n", 1, tok("t1")), E::Int(1)),
                (Unlock("b", "t1"), E::Ok),
                (Lock("b", 10_000, 0, "t2"), E::Token),
                (Rotate("b", Some("t1"), "c"), E::Err("stale_token")),
                (Unlock("b", "t2"), E::Ok),
                (Advance(3_599_000), E::Ok),
                (Fetch("b"), E::Absent),
            ],
        ),
        case(
            "destroying a rotated-away id destroys its successor",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Rotate("a", None, "b"), E::Ok),
                (Destroy("a"), E::Existed(true)),
                (Fetch("b"), E::Absent),
                (Write("b", r#"{}"#, PLAIN), E::Err("destroyed")),
            ],
        ),
        case(
            "a chain of rotations within the grace period is followed to its end, by reads and destroys alike",
            vec![
                (Write("a", r#"{"k":1}"#, PLAIN), E::Version(1)),
                (Rotate("a", None, "b"), E::Ok),
                (Rotate("b", None, "c"), E::Ok),
                (Rotate("c", None, "d"), E::Ok),
                (Fetch("a"), E::Moved("d", r#"{"k":1}"#)),
                (Fetch("b"), E::Moved("d", r#"{"k":1}"#)),
                (Destroy("a"), E::Existed(true)),
                (Fetch("d"), E::Absent),
                (Fetch("b"), E::Absent),
                (Write("d", r#"{}"#, PLAIN), E::Err("destroyed")),
            ],
        ),
        case(
            "owners: sessions_of and destroy_all follow rotation and expiry",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Write("b", r#"{}"#, PLAIN), E::Version(1)),
                (Write("c", r#"{}"#, PLAIN), E::Version(1)),
                (Write("d", r#"{}"#, PLAIN), E::Version(1)),
                (SetOwner("a", Some("u1")), E::Version(2)),
                (SetOwner("b", Some("u1")), E::Version(2)),
                (SetOwner("c", Some("u2")), E::Version(2)),
                (SetOwner("d", Some("u1")), E::Version(2)),
                (SetOwner("d", None), E::Version(3)),
                (Owned("u1"), E::Ids(&["a", "b"])),
                (Rotate("a", None, "a2"), E::Ok),
                (Owned("u1"), E::Ids(&["a2", "b"])),
                (DestroyAll("u1"), E::Count(2)),
                (Owned("u1"), E::Ids(&[])),
                (Fetch("a2"), E::Absent),
                (Fetch("b"), E::Absent),
                (Fetch("c"), E::Data("{}", 2)),
                (Advance(61_000), E::Ok),
                (Owned("u2"), E::Ids(&[])),
                (DestroyAll("u2"), E::Count(0)),
            ],
        ),
        case_with(
            "max_sessions refuses new sessions and keeps the old",
            "max_sessions=2",
            vec![
                (Write("a", r#"{"k":"a"}"#, PLAIN), E::Version(1)),
                (Write("b", r#"{"k":"b"}"#, PLAIN), E::Version(1)),
                (Write("c", r#"{"k":"c"}"#, PLAIN), E::Err("full")),
                (Patch("c", r#"{"k":"c"}"#, CREATE), E::Err("full")),
                (Write("a", r#"{"k":"a2"}"#, PLAIN), E::Version(2)),
                (Fetch("a"), E::Data(r#"{"k":"a2"}"#, 2)),
                (Fetch("b"), E::Data(r#"{"k":"b"}"#, 1)),
                (Destroy("b"), E::Existed(true)),
                (Write("c", r#"{"k":"c"}"#, PLAIN), E::Version(1)),
            ],
        ),
        case_with(
            "evict=lru makes room by evicting the least recently used",
            "max_sessions=2&evict=lru&touch_fraction=0",
            vec![
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Advance(1_000), E::Ok),
                (Write("b", r#"{}"#, PLAIN), E::Version(1)),
                (Advance(1_000), E::Ok),
                (Touch("a"), E::Written(true)),
                (Advance(1_000), E::Ok),
                (Write("c", r#"{}"#, PLAIN), E::Version(1)),
                (Fetch("b"), E::Absent),
                (Fetch("a"), E::Data("{}", 1)),
                (Fetch("c"), E::Data("{}", 1)),
            ],
        ),
        case(
            "a session's own TTL makes it expire earlier or later than the store's",
            vec![
                (WriteTtl("short", r#"{"s":1}"#, 10_000), E::Version(1)),
                (WriteTtl("long", r#"{"l":1}"#, 120_000), E::Version(1)),
                (Write("plain", r#"{}"#, PLAIN), E::Version(1)),
                (OwnTtl("short"), E::Ttl(Some(10_000))),
                (OwnTtl("plain"), E::Ttl(None)),
                (Advance(9_999), E::Ok),
                (Fetch("short"), E::Data(r#"{"s":1}"#, 1)),
                (Advance(2), E::Ok),
                (Fetch("short"), E::Absent),
                (Incr("short", "n", 1, PLAIN), E::Err("not_found")),
                (Advance(60_000), E::Ok),
                (Fetch("plain"), E::Absent),
                (Fetch("long"), E::Data(r#"{"l":1}"#, 1)),
                (Advance(49_998), E::Ok),
                (Fetch("long"), E::Data(r#"{"l":1}"#, 1)),
                (Advance(2), E::Ok),
                (Fetch("long"), E::Absent),
            ],
        ),
        case(
            "writes, patches and increments keep the session's own TTL and may change it",
            vec![
                (WriteTtl("a", r#"{}"#, 10_000), E::Version(1)),
                (Advance(5_000), E::Ok),
                (Write("a", r#"{"x":1}"#, PLAIN), E::Version(2)),
                (Incr("a", "n", 1, PLAIN), E::Int(1)),
                (Patch("a", r#"{"y":2}"#, PLAIN), E::Version(4)),
                (OwnTtl("a"), E::Ttl(Some(10_000))),
                (Advance(9_999), E::Ok),
                (Fetch("a"), E::Data(r#"{"x":1,"n":1,"y":2}"#, 4)),
                (Advance(2), E::Ok),
                (Fetch("a"), E::Absent),
                (IncrTtl("b", "n", 5, 2_000), E::Int(5)),
                (Incr("b", "n", 1, PLAIN), E::Int(6)),
                (PatchTtl("b", r#"{"z":1}"#, 90_000), E::Version(3)),
                (OwnTtl("b"), E::Ttl(Some(90_000))),
                (Advance(89_999), E::Ok),
                (Incr("b", "n", 1, PLAIN), E::Int(7)),
                (Advance(89_999), E::Ok),
                (Fetch("b"), E::Data(r#"{"n":7,"z":1}"#, 4)),
                (Advance(2), E::Ok),
                (Fetch("b"), E::Absent),
                (PatchTtl("c", r#"{"c":1}"#, 1_000), E::Version(1)),
                (Advance(1_001), E::Ok),
                (Fetch("c"), E::Absent),
            ],
        ),
        case(
            "touch with a TTL sets it and always writes; touches follow the session's TTL",
            vec![
                (Write("a", r#"{"x":1}"#, PLAIN), E::Version(1)),
                (TouchTtl("a", 100_000), E::Written(true)),
                (OwnTtl("a"), E::Ttl(Some(100_000))),
                (Advance(49_000), E::Ok),
                (Touch("a"), E::Written(false)),
                (Advance(41_000), E::Ok),
                (Fetch("a"), E::Data(r#"{"x":1}"#, 1)),
                (Touch("a"), E::Written(true)),
                (Advance(99_999), E::Ok),
                (Fetch("a"), E::Data(r#"{"x":1}"#, 1)),
                (Advance(2), E::Ok),
                (Fetch("a"), E::Absent),
                (Write("b", r#"{}"#, PLAIN), E::Version(1)),
                (TouchTtl("b", 1_000), E::Written(true)),
                (TouchTtl("b", 1_000), E::Written(true)),
                (Advance(1_001), E::Ok),
                (Fetch("b"), E::Absent),
                (TouchTtl("b", 1_000), E::Err("not_found")),
                (Write("c", r#"{}"#, PLAIN), E::Version(1)),
                (Lock("c", 10_000, 0, "t"), E::Token),
                (Rotate("c", Some("t"), "c2"), E::Ok),
                (TouchTtl("c", 5_000), E::Err("rotated")),
                (TouchTtl("c2", 5_000), E::Written(true)),
                (Destroy("c2"), E::Existed(true)),
                (TouchTtl("c2", 5_000), E::Err("destroyed")),
            ],
        ),
        case(
            "a session's own TTL is capped by the absolute TTL and carried by rotation",
            vec![
                (WriteTtl("a", r#"{}"#, 7_200_000), E::Version(1)),
                (WriteTtl("b", r#"{"b":1}"#, 10_000), E::Version(1)),
                (Rotate("b", None, "b2"), E::Ok),
                (OwnTtl("b2"), E::Ttl(Some(10_000))),
                (Advance(9_999), E::Ok),
                (Fetch("b2"), E::Data(r#"{"b":1}"#, 1)),
                (Advance(2), E::Ok),
                (Fetch("b2"), E::Absent),
                (Advance(3_589_998), E::Ok),
                (Fetch("a"), E::Data("{}", 1)),
                (Advance(1), E::Ok),
                (Fetch("a"), E::Absent),
            ],
        ),
        case(
            "a bad TTL is refused and changes nothing",
            vec![
                (Write("a", r#"{"x":1}"#, PLAIN), E::Version(1)),
                (WriteTtl("a", r#"{"x":2}"#, 0), E::Err("invalid_argument")),
                (
                    WriteTtl("a", r#"{"x":2}"#, 365 * 86_400_000 + 1),
                    E::Err("invalid_argument"),
                ),
                (IncrTtl("a", "n", 1, 0), E::Err("invalid_argument")),
                (PatchTtl("a", r#"{"x":3}"#, 0), E::Err("invalid_argument")),
                (TouchTtl("a", 0), E::Err("invalid_argument")),
                (TouchTtl("a", u64::MAX), E::Err("invalid_argument")),
                (Fetch("a"), E::Data(r#"{"x":1}"#, 1)),
                (OwnTtl("a"), E::Ttl(None)),
                (WriteTtl("b", r#"{}"#, 0), E::Err("invalid_argument")),
                (IncrTtl("b", "n", 1, 0), E::Err("invalid_argument")),
                (Fetch("b"), E::Absent),
                (WriteTtl("c", r#"{}"#, 365 * 86_400_000), E::Version(1)),
                (Advance(59_999), E::Ok),
                (Fetch("a"), E::Data(r#"{"x":1}"#, 1)),
                (Advance(2), E::Ok),
                (Fetch("a"), E::Absent),
            ],
        ),
        case(
            "list pages through exactly the live sessions",
            vec![
                (List(2), E::Ids(&[])),
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Write("b", r#"{}"#, PLAIN), E::Version(1)),
                (Write("c", r#"{}"#, PLAIN), E::Version(1)),
                (Write("d", r#"{}"#, PLAIN), E::Version(1)),
                (Write("e", r#"{}"#, PLAIN), E::Version(1)),
                (Write("f", r#"{}"#, PLAIN), E::Version(1)),
                (WriteTtl("g", r#"{}"#, 1_000), E::Version(1)),
                (List(2), E::Ids(&["a", "b", "c", "d", "e", "f", "g"])),
                (Destroy("b"), E::Existed(true)),
                (Rotate("c", None, "c2"), E::Ok),
                (Advance(1_001), E::Ok),
                (List(2), E::Ids(&["a", "c2", "d", "e", "f"])),
                (List(1), E::Ids(&["a", "c2", "d", "e", "f"])),
                (List(1000), E::Ids(&["a", "c2", "d", "e", "f"])),
                (Advance(59_000), E::Ok),
                (List(3), E::Ids(&[])),
            ],
        ),
        case(
            "clear destroys every session; later writes to them are refused",
            vec![
                (Clear, E::Count(0)),
                (Write("a", r#"{}"#, PLAIN), E::Version(1)),
                (Write("b", r#"{"b":1}"#, PLAIN), E::Version(1)),
                (WriteTtl("c", r#"{}"#, 1_000), E::Version(1)),
                (SetOwner("b", Some("u1")), E::Version(2)),
                (Lock("b", 10_000, 0, "t"), E::Token),
                (Advance(1_001), E::Ok),
                (Rotate("a", None, "a2"), E::Ok),
                (Clear, E::Count(2)),
                (Fetch("a2"), E::Absent),
                (Fetch("a"), E::Absent),
                (Fetch("b"), E::Absent),
                (Write("b", r#"{}"#, PLAIN), E::Err("destroyed")),
                (Write("b", r#"{}"#, tok("t")), E::Err("destroyed")),
                (Incr("a2", "n", 1, CREATE), E::Err("destroyed")),
                (Patch("a2", r#"{"x":1}"#, CREATE), E::Err("destroyed")),
                (Owned("u1"), E::Ids(&[])),
                (List(10), E::Ids(&[])),
                (Clear, E::Count(0)),
                (Write("new", r#"{}"#, PLAIN), E::Version(1)),
                (List(10), E::Ids(&["new"])),
            ],
        ),
    ]
}

/// A session of 5000 bytes, over the 4096-byte limit of [`BASE_OPTIONS`].
const BIG_SESSION: &str = concat!(r#"{"big":""#, include_str!("big_value.txt"), r#""}"#);

struct Names {
    ids: HashMap<&'static str, SessionId>,
    tokens: HashMap<&'static str, u64>,
    max_token: u64,
}

impl Names {
    fn id(&mut self, n: &'static str) -> SessionId {
        *self.ids.entry(n).or_insert_with(SessionId::generate)
    }
    fn token(&self, n: &'static str) -> u64 {
        // A token never issued: far above anything a case reaches.
        self.tokens.get(n).copied().unwrap_or(1 << 40)
    }
    fn opts(&self, w: W) -> WriteOpts {
        WriteOpts {
            expected_version: w.expected,
            token: w.token.map(|t| self.token(t)),
            create: w.create,
            release: false,
        }
    }
}

fn same_json(a: &str, b: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(a).ok()
        == serde_json::from_str::<serde_json::Value>(b).ok()
}

/// Runs one step; Err describes the mismatch.
fn step(h: &dyn Harness, n: &mut Names, op: &Op, want: &Expect) -> Result<(), String> {
    let s = h.store();
    let got: Result<Expect, Error> = (|| {
        Ok(match op {
            Fetch(a) => {
                let id = n.id(a);
                match s.fetch(&id)? {
                    None => E::Absent,
                    Some(r) => {
                        if let E::Moved(b, _) = want {
                            if r.id == n.id(b) {
                                return Ok(E::Moved(b, leak(r.data.to_json().to_string())));
                            }
                        }
                        if r.id != id {
                            return Ok(E::Err(leak(format!("answered as {}", r.id))));
                        }
                        E::Data(leak(r.data.to_json().to_string()), r.version)
                    }
                }
            }
            Write(a, json, w) => {
                let data = SessionData::from_json(json)?;
                E::Version(s.write(&n.id(a), data, n.opts(*w))?)
            }
            Patch(a, json, w) => E::Version(s.patch(&n.id(a), json, n.opts(*w))?),
            Incr(a, k, by, w) => E::Int(s.incr(&n.id(a), k, *by, n.opts(*w))?),
            Lock(a, lease, wait, t) => {
                let (token, rec) = s.lock(
                    &n.id(a),
                    Duration::from_millis(*lease),
                    Duration::from_millis(*wait),
                )?;
                if rec.id != n.id(a) {
                    return Ok(E::Err("lock answered with another id"));
                }
                if token <= n.max_token {
                    return Ok(E::Err(leak(format!(
                        "token {token} not above {}",
                        n.max_token
                    ))));
                }
                n.max_token = token;
                n.tokens.insert(t, token);
                E::Token
            }
            Unlock(a, t) => {
                s.unlock(&n.id(a), n.token(t))?;
                E::Ok
            }
            Touch(a) => E::Written(s.touch(&n.id(a))?.written),
            Destroy(a) => E::Existed(s.destroy(&n.id(a))?),
            Rotate(a, t, b) => {
                let to = s.rotate(&n.id(a), t.map(|t| n.token(t)))?;
                n.ids.insert(b, to);
                E::Ok
            }
            SetOwner(a, o) => E::Version(s.set_owner(&n.id(a), *o, WriteOpts::default())?),
            Owned(o) => {
                let got = s.sessions_of(o)?;
                let mut names: Vec<&'static str> = n
                    .ids
                    .iter()
                    .filter(|(_, id)| got.contains(id))
                    .map(|(k, _)| *k)
                    .collect();
                names.sort();
                if names.len() != got.len() {
                    return Ok(E::Err("owned returned ids the case never made"));
                }
                E::Ids(leak_slice(names))
            }
            DestroyAll(o) => E::Count(s.destroy_all(o)?),
            WriteTtl(a, json, ttl) => {
                let data = SessionData::from_json(json)?;
                E::Version(s.write_with_ttl(
                    &n.id(a),
                    data,
                    WriteOpts::default(),
                    Duration::from_millis(*ttl),
                )?)
            }
            PatchTtl(a, json, ttl) => {
                let serde_json::Value::Object(m) = serde_json::from_str(json).unwrap_or_default()
                else {
                    return Ok(E::Err("a PatchTtl case needs an object"));
                };
                E::Version(
                    s.apply_with_ttl(
                        &n.id(a),
                        vec![PatchOp::Merge(m)],
                        WriteOpts::create(),
                        Duration::from_millis(*ttl),
                    )?
                    .version,
                )
            }
            IncrTtl(a, k, by, ttl) => {
                let p = s.apply_with_ttl(
                    &n.id(a),
                    vec![PatchOp::Incr(k.to_string(), *by)],
                    WriteOpts::create(),
                    Duration::from_millis(*ttl),
                )?;
                E::Int(p.values.first().copied().unwrap_or(i64::MIN))
            }
            TouchTtl(a, ttl) => {
                // u64::MAX ms stands for a TTL too long to count in ms.
                let d = if *ttl == u64::MAX {
                    Duration::MAX
                } else {
                    Duration::from_millis(*ttl)
                };
                E::Written(s.touch_with_ttl(&n.id(a), d)?.written)
            }
            OwnTtl(a) => match s.fetch(&n.id(a))? {
                Some(r) => E::Ttl(r.ttl_ms),
                None => E::Absent,
            },
            List(count) => {
                let mut got: Vec<SessionId> = Vec::new();
                let mut cursor = 0;
                for _ in 0..100_000 {
                    let (ids, next) = s.list(cursor, *count)?;
                    got.extend(ids);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                got.sort();
                got.dedup();
                let mut names: Vec<&'static str> = n
                    .ids
                    .iter()
                    .filter(|(_, id)| got.contains(id))
                    .map(|(k, _)| *k)
                    .collect();
                names.sort();
                if names.len() != got.len() {
                    return Ok(E::Err("list returned ids the case never made"));
                }
                E::Ids(leak_slice(names))
            }
            Clear => E::Count(s.clear()?),
            Advance(ms) => {
                h.advance(Duration::from_millis(*ms));
                E::Ok
            }
        })
    })();
    let ok = match (&got, want) {
        (Err(e), E::Err(k)) => e.kind() == *k,
        (Ok(E::Data(g, gv)), E::Data(w, wv)) => same_json(g, w) && gv == wv,
        (Ok(E::Moved(gb, g)), E::Moved(wb, w)) => gb == wb && same_json(g, w),
        (Ok(E::Ids(g)), E::Ids(w)) => {
            let mut w: Vec<&str> = w.to_vec();
            w.sort();
            g.to_vec() == w
        }
        (Ok(_), E::Ok) => true,
        (Ok(g), w) => format!("{g:?}") == format!("{w:?}"),
        (Err(_), _) => false,
    };
    if ok {
        Ok(())
    } else {
        let got = match got {
            Ok(g) => format!("{g:?}"),
            Err(e) => format!("error {} ({e})", e.kind()),
        };
        Err(format!("expected {want:?}, got {got}"))
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_slice(v: Vec<&'static str>) -> &'static [&'static str] {
    Box::leak(v.into_boxed_slice())
}

fn describe(op: &Op) -> String {
    match op {
        Fetch(a) => format!("fetch {a}"),
        Write(a, j, _) => format!("write {a} {}", short(j)),
        Patch(a, j, _) => format!("patch {a} {}", short(j)),
        Incr(a, k, by, _) => format!("incr {a}.{k} by {by}"),
        Lock(a, l, w, t) => format!("lock {a} lease {l} wait {w} as {t}"),
        Unlock(a, t) => format!("unlock {a} {t}"),
        Touch(a) => format!("touch {a}"),
        Destroy(a) => format!("destroy {a}"),
        Rotate(a, _, b) => format!("rotate {a} to {b}"),
        SetOwner(a, o) => format!("set owner of {a} to {o:?}"),
        Owned(o) => format!("sessions of {o}"),
        DestroyAll(o) => format!("destroy all of {o}"),
        Advance(ms) => format!("advance {ms} ms"),
        WriteTtl(a, j, t) => format!("write {a} {} with ttl {t}", short(j)),
        PatchTtl(a, j, t) => format!("patch {a} {} with ttl {t}", short(j)),
        IncrTtl(a, k, by, t) => format!("incr {a}.{k} by {by} with ttl {t}"),
        TouchTtl(a, t) => format!("touch {a} with ttl {t}"),
        OwnTtl(a) => format!("own ttl of {a}"),
        List(c) => format!("list with count {c}"),
        Clear => "clear".to_string(),
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(40)]
}

/// Runs one case on a fresh store.
pub fn run_case(backend: &dyn Backend, c: &Case) -> Result<(), String> {
    // The case's own options override the base ones of the same name.
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for kv in BASE_OPTIONS
        .split('&')
        .chain(c.options.split('&'))
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        pairs.retain(|(x, _)| *x != k);
        pairs.push((k, v));
    }
    let options = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let h = backend.open(&options);
    let mut names = Names {
        ids: HashMap::new(),
        tokens: HashMap::new(),
        max_token: 0,
    };
    for (i, (op, want)) in c.steps.iter().enumerate() {
        step(&*h, &mut names, op, want)
            .map_err(|e| format!("case {:?}, step {} ({}): {e}", c.name, i + 1, describe(op)))?;
    }
    Ok(())
}

/// Runs every case; panics listing every failure.
pub fn run_all(backend: &dyn Backend) {
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|c| run_case(backend, c).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
