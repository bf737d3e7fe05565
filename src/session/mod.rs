//! The session itself: its id, its data, its record.

mod data;
mod id;
mod numbers;
mod record;

pub(crate) use data::check_key;
pub use data::{Json, MAX_KEY_LEN, RawJson, SessionData, merge_patch};
pub use id::{GENERATED_ID_BYTES, IdHash, IdHasher, MAX_ID_LEN, MIN_ID_LEN, SessionId};
pub(crate) use numbers::check_numbers;
pub(crate) use record::check_owner;
pub use record::{MAX_OWNER_LEN, Record};
