//! sessync: one session store shared by every worker of a web application.
#![warn(missing_docs)]

pub mod cookie;
pub mod error;
pub mod session;

pub use error::{Error, Result};
pub use session::{RawJson, Record, SessionData, SessionId};
