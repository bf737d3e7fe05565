//! A session's layout in Redis, named in one place: the record hash's meta fields, the
//! suffixes of the keys that share its hash tag, and the state a Cluster rotation carries
//! from one slot to the other.
//!
//! The Rust side reads and builds these through the constants below. `store.lua` writes
//! the same names as literals (a table lookup per field would cost the code time on
//! every call); the tests at the end hold it to this module: every short literal the code
//! uses as a field is one named here and every name here is used there, every key suffix
//! likewise, and its rotation state (`STATE`) is [`ROTATION_STATE`] in the same order. A
//! field renamed or added on one side only fails them.

// Some names are store.lua's alone (the lock queue, `sz`, `px`, …): the tests use them.
#![cfg_attr(not(test), allow(dead_code))]

/// The session's version.
pub(super) const VERSION: &str = "v";
/// When it was created (ms).
pub(super) const CREATED: &str = "c";
/// Its last recorded access (ms).
pub(super) const ACCESSED: &str = "a";
/// When it expires (ms): the logical end every command checks.
pub(super) const EXPIRES: &str = "e";
/// Its owner, when it has one.
pub(super) const OWNER: &str = "o";
/// The fencing counter: the last lock token issued.
pub(super) const FENCE: &str = "f";
/// The token of the lock held (0: none).
pub(super) const LOCK_TOKEN: &str = "lt";
/// When that lock's lease ends (ms).
pub(super) const LEASE_END: &str = "lu";
/// The size of the data as one JSON text, less one (see `size_of` in the code).
pub(super) const SIZE: &str = "sz";
/// Where Redis's own expiry of the hash is (ms): moved only when `e` passes it.
pub(super) const REDIS_EXPIRY: &str = "px";
/// The session's own idle TTL (ms); absent or 0 for the store's.
pub(super) const OWN_TTL: &str = "tt";
/// connect-redis layout: the data key's JSON as sessync last wrote it (a different one
/// there means express-session wrote since).
pub(super) const WRITTEN_JSON: &str = "k";

/// Every meta field of the record hash. A data member is a field too, named by its key
/// as a JSON string: it starts with [`MEMBER_MARK`], which no meta field does.
pub(super) const FIELDS: &[&str] = &[
    VERSION,
    CREATED,
    ACCESSED,
    EXPIRES,
    OWNER,
    FENCE,
    LOCK_TOKEN,
    LEASE_END,
    SIZE,
    REDIS_EXPIRY,
    OWN_TTL,
    WRITTEN_JSON,
];

/// The first byte of a data member's field name (`"`).
pub(super) const MEMBER_MARK: u8 = b'"';

/// The tombstone: `<record key>:t` holds the time writes are refused until.
pub(super) const TOMBSTONE: &str = ":t";
/// The rotation alias: `<record key>:a` holds `<new id>|<end of grace>`.
pub(super) const ALIAS: &str = ":a";
/// connect-redis layout: the hash of meta fields is `{<prefix><id>}:m` (the data key is
/// `<prefix><id>`, in the same slot); the tombstone and alias hang off `{<prefix><id>}`.
pub(super) const META_HASH: &str = ":m";
/// The lock queue (`<record key>:q`, tickets in arrival order).
pub(super) const QUEUE: &str = ":q";
/// The queue's waiters' deadlines (`<record key>:qd`).
pub(super) const QUEUE_DEADLINES: &str = ":qd";
/// A waiter's wake-up list: `<record key>:w:<ticket>`.
pub(super) const WAKE: &str = ":w:";

/// The hash tag of an owner's index: `<prefix>{o:<owner>}`.
pub(super) const OWNER_TAG: &str = "o:";
/// The set of live sessions (`max_sessions`): `<prefix>live` on one server (kept by the
/// code), `<prefix>{live}` on a Cluster (kept by the client, in a slot of its own).
pub(super) const LIVE: &str = "live";

/// A Cluster rotation's state, in the order `rot_read` answers it and `rot_in` takes it
/// (then the owner, and in connect-redis layout the cookie): `d` is the data as one JSON
/// text, the rest are the meta fields of those names.
pub(super) const ROTATION_STATE: &[&str] = &[
    "d", VERSION, CREATED, ACCESSED, EXPIRES, FENCE, LOCK_TOKEN, LEASE_END, OWN_TTL,
];

/// The position of `field` in [`ROTATION_STATE`] (a compile-time error if absent).
pub(super) const fn rotation_index(field: &str) -> usize {
    let mut i = 0;
    while i < ROTATION_STATE.len() {
        if const_eq(ROTATION_STATE[i], field) {
            return i;
        }
        i += 1;
    }
    panic!("not a field of the rotation state")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The code without its comments (none of its strings holds `--`).
    fn code() -> String {
        super::super::script::SOURCE
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every single-quoted literal of the code whose text `keep` accepts.
    fn literals(keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
        code()
            .split('\'')
            .skip(1)
            .step_by(2)
            .filter(|s| keep(s))
            .map(str::to_string)
            .collect()
    }

    /// The code's other words: the states `find` tells apart ('live' also names the live
    /// set), what `load` is asked for, and the types `type()` answers.
    const OTHER_WORDS: &[&str] = &["absent", "alias", "tomb", "live", "all", "string", "table"];

    #[test]
    fn the_code_uses_the_fields_named_here_and_no_others() {
        let code = code();
        // Its commands, which the client names: `if cmd == 'fetch' then …`.
        let commands: BTreeSet<String> = code
            .split("cmd == '")
            .skip(1)
            .filter_map(|rest| rest.split('\'').next())
            .map(str::to_string)
            .collect();
        assert!(commands.contains("patch") && commands.contains("rot_read"));
        // Every other word in quotes is a field, but for the rotation state's data (`d`)
        // and the few words of OTHER_WORDS: a word new to the code must be one or the
        // other, so a field added or renamed on one side only fails here.
        let used = literals(|s| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !commands.contains(s)
                && !OTHER_WORDS.contains(&s)
        });
        let mut named: BTreeSet<String> = FIELDS.iter().map(|s| s.to_string()).collect();
        named.insert(ROTATION_STATE[0].to_string());
        assert_eq!(
            used, named,
            "store.lua's field names (left) and schema.rs's (right) differ"
        );
        assert!(FIELDS.iter().all(|f| f.as_bytes()[0] != MEMBER_MARK));
    }

    #[test]
    fn the_code_uses_the_key_suffixes_named_here_and_no_others() {
        let used = literals(|s| s.len() > 1 && s.starts_with(':'));
        let named: BTreeSet<String> = [TOMBSTONE, ALIAS, META_HASH, QUEUE, QUEUE_DEADLINES, WAKE]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            used, named,
            "store.lua's key suffixes (left) and schema.rs's (right) differ"
        );
        let code = code();
        assert!(code.contains(&format!("'{{{OWNER_TAG}'")), "the owner tag");
        assert!(code.contains(&format!("'{LIVE}'")), "the live set");
    }

    #[test]
    fn the_rotation_state_is_the_same_on_both_sides() {
        let code = code();
        let table = code
            .split("local STATE = {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .expect("store.lua defines STATE");
        let lua: Vec<&str> = table
            .split(',')
            .map(|f| f.trim().trim_matches('\''))
            .collect();
        assert_eq!(lua, ROTATION_STATE);
        assert_eq!(rotation_index(VERSION), 1);
    }
}
