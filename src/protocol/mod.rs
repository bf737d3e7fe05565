//! What sessyncd and its client say to each other beyond RESP itself, in one place with
//! both halves side by side: a record ([`record`]), a patch's op list ([`ops`]) and the
//! error codes ([`error`], which the Redis backend reads too, since `store.lua` raises
//! the same ones). Each file writes on one side and reads on the other, and its tests
//! check that what one half writes the other reads back as it was. The commands' syntax
//! is in `docs/protocol.md`.
//!
//! Crate-internal: the halves work on the daemon's reply writer and on the client's
//! reply type, which is not public; nothing outside the crate needs them (other clients
//! speak the protocol from its documentation).

//!
//! Built with the `client` feature (which `daemon` implies) or `redis` (which reads the
//! error codes only); a build with one half and not the other leaves that half unused.
#![cfg_attr(not(all(feature = "client", feature = "daemon")), allow(dead_code))]

pub(crate) mod error;
#[cfg(feature = "client")]
pub(crate) mod ops;
#[cfg(feature = "client")]
pub(crate) mod record;
