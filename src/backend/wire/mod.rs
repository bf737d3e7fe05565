//! RESP connections of the network backends: one connection as a reader and a writer
//! half, over a Unix socket, TCP or TLS (`link`), and one connection shared by many
//! callers, their requests pipelined (`shared`). The remote backend talks to sessyncd
//! with them; the Redis backend sends its non-blocking calls to a standalone server on
//! shared ones.

pub(crate) mod link;
pub(crate) mod shared;
