//! sessync: one session store shared by every worker of a web application.
//!
//! ```text
//! src/
//!   lib.rs           this map
//!   error.rs         Error: the outcomes callers plan for, misuse, environment
//!   config.rs        store URLs (mem://?ttl=…) and StoreOptions
//!   clock.rs         Clock (injected time), SystemClock, ManualClock, Parker
//!   command.rs       Command / Reply: the store actor's messages, transport-free
//!   store.rs         Store: the contract, over any backend
//!   flow.rs          Sessions / Session: the request flow, begin → get/set … → commit
//!   session/         SessionId, SessionData (indexed JSON text), Record, merge patch
//!   cookie/          Cookie header parsing, Set-Cookie, HMAC signing
//!   backend/memory/  mem://: sharded state machine + expiry actor thread
//!   backend/remote/  unix://, tcp://, tls://: the pipelined client of sessyncd
//!   backend/wire/    RESP connections (one, or shared and pipelined) of remote/, redis/
//!   backend/redis/   redis://, redis+cluster://: pool, script, codec, locks, Cluster
//!   protocol/        what sessyncd and its client share: records, op lists, error codes
//!   server/          sessyncd: listener, connection, cmd/ (one file per command group)
//!   ffi/             the C ABI (include/sessync.h is generated from it)
//!   fuzzing.rs       the fuzz targets' bodies and invariants (fuzz/, tests/fuzz_replay.rs)
//! ```
//!
//! Cargo features (all on by default): `redis` (`backend/redis/`), `client` (`unix://`,
//! `tcp://`: `backend/remote/`), `daemon` (`server/` and the `sessyncd` binary, with
//! `client` and `rt`), `tls` (`tls://`, `rediss://`, sessyncd's `--tls-cert`), `rt` (the
//! tokio runtime of the C ABI's `*_async` calls). Without any of them the crate is
//! `mem://`, the request flow, cookies and the C ABI, with no tokio, rustls or Redis
//! client; a URL whose scheme needs a missing feature is an `InvalidArgument` naming it.
//!
//! The contract: a session is a JSON object with a version; writes can be compare-and-swap,
//! merge patches or atomic increments; a per-session lock hands out fencing tokens that
//! refuse stale writers; destroyed sessions leave tombstones so logout cannot be undone;
//! rotated ids keep answering reads for a grace period. See `docs/architecture.md`.

pub mod backend;
pub mod clock;
pub mod command;
pub mod config;
pub mod cookie;
pub mod error;
pub mod ffi;
pub mod flow;
#[cfg(feature = "daemon")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(feature = "client", feature = "redis"))]
mod protocol;
#[cfg(feature = "daemon")]
pub mod server;
pub mod session;
pub mod store;

pub use backend::{CommandCounts, Stats};
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{Command, PatchOp, Patched, Reply, Touched, WriteOpts};
pub use config::{Eviction, StoreOptions};
pub use error::{Error, Result};
pub use flow::{Committed, FlowOptions, Session, Sessions};
pub use session::{Json, RawJson, Record, SessionData, SessionId};
pub use store::Store;

mod version {
    include!(concat!(env!("OUT_DIR"), "/version.rs"));
}
pub use version::{VERSION_MAJOR, VERSION_MINOR, VERSION_NUMBER, VERSION_PATCH};

/// The README's Rust example, compiled and run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
