//! What a Cluster needs composed by the client, because it spans slots: the owner
//! index kept a superset (an id added before the session names the owner, each entry
//! checked in its own slot when read), the live set of `max_sessions` (counted in before
//! a session is created, moved up on access), a rotation in three checked steps, and a
//! list that scans one primary at a time (the cursor carries which).

use ::redis::Value;

use super::{
    Redis, backend,
    codec::{int, items, ms, opt_num, text},
    pool::{Conn, Failed},
    schema::{ACCESSED, CREATED, FENCE, LIVE, LOCK_TOKEN, ROTATION_STATE, VERSION, rotation_index},
};
use crate::{
    command::Reply,
    config::Eviction,
    error::{Error, Result},
    session::SessionId,
};

/// Bits of a Cluster list cursor that hold the node's own `SCAN` cursor; the bits above
/// hold a slot of the node (its lowest), so a cursor names the node and the place in it.
const NODE_CURSOR_BITS: u32 = 48;

/// A Cluster list cursor taken apart: the node's own `SCAN` cursor and the slot that
/// names the node.
pub(super) fn split_cursor(cursor: u64) -> Result<(u64, u16)> {
    let slot = cursor >> NODE_CURSOR_BITS;
    if slot >= 16384 {
        return Err(Error::invalid(format!(
            "list cursor {cursor} is not one this store gave"
        )));
    }
    Ok((cursor & ((1 << NODE_CURSOR_BITS) - 1), slot as u16))
}

impl Redis {
    /// Cluster only: adds `id` to the owner's index before the session names the owner,
    /// so the index always holds every live session of the owner (and maybe more).
    pub(super) fn index_add(&self, owner: &str, id: &SessionId, max_life_end: u64) -> Result<()> {
        self.invoke(
            "index",
            &[self.owner_key(owner)],
            ("", ""),
            &[
                owner.to_string(),
                id.as_str().to_string(),
                max_life_end.to_string(),
            ],
        )?;
        Ok(())
    }

    /// A Cluster with `max_sessions`: the client keeps the live set (see the script).
    pub(super) fn counted(&self) -> bool {
        self.opts.cluster && self.store.max_sessions > 0
    }

    pub(super) fn live_key(&self) -> String {
        format!("{}{{{LIVE}}}", self.opts.prefix)
    }

    pub(super) fn live(&self, cmd: &str, args: &[String]) -> Result<Value> {
        self.invoke(cmd, &[self.live_key()], ("", ""), args)
    }

    /// Cluster: an access moves the session up the LRU order.
    pub(super) fn accessed(&self, id: &SessionId) -> Result<()> {
        if self.counted() && self.store.eviction == Eviction::Lru {
            self.live(
                "live_add",
                &[id.as_str().to_string(), self.clock.now_ms().to_string()],
            )?;
        }
        Ok(())
    }

    /// Cluster: counts `id` in before it may be created; `Full`, or evicts.
    pub(super) fn reserve(&self, id: &SessionId) -> Result<()> {
        if !self.counted() {
            return Ok(());
        }
        let args = [id.as_str().to_string(), self.store.max_sessions.to_string()];
        for _ in 0..64 {
            let v = self.live("live_reserve", &args)?;
            let Value::Array(a) = v else {
                return Ok(());
            };
            // An existing session is never refused: it was counted, or now is.
            if int(&self.on("alive", id, &[])?)? == 1 {
                self.live(
                    "live_add",
                    &[args[0].clone(), self.clock.now_ms().to_string()],
                )?;
                return Ok(());
            }
            let lru = items(a.into_iter().nth(1).unwrap_or_default())?;
            let mut dead = Vec::new();
            let mut first_live = None;
            for x in &lru {
                let c = SessionId::parse(&text(x)?)?;
                if int(&self.on("alive", &c, &[])?)? == 0 {
                    dead.push(c.as_str().to_string());
                } else if first_live.is_none() {
                    first_live = Some(c);
                }
            }
            if dead.is_empty() {
                match first_live {
                    Some(victim) if self.store.eviction == Eviction::Lru => {
                        self.on("evict", &victim, &[])?;
                        dead.push(victim.as_str().to_string());
                    }
                    _ => return Err(Error::Full),
                }
            }
            self.live("live_rem", &dead)?;
        }
        Err(Error::Backend("redis: could not make room".into()))
    }

    pub(super) fn uncount(&self, id: &SessionId) {
        if self.counted() {
            let _ = self.live("live_rem", &[id.as_str().to_string()]);
        }
    }

    /// The Cluster's rotation: read, copy, retire-if-unchanged; again from the start if
    /// it changed.
    pub(super) fn rotate_cluster(&self, id: SessionId, token: Option<u64>) -> Result<Reply> {
        // rot_read's reply: the state, the owner, and in connect-redis layout the cookie.
        let n = ROTATION_STATE.len();
        let at = |field| rotation_index(field);
        for _ in 0..16 {
            let state = items(self.on("rot_read", &id, &[opt_num(token)])?)?;
            if state.len() <= n {
                return Err(Error::Backend(format!(
                    "redis: a rotation state has {} items",
                    n + 1
                )));
            }
            let to = SessionId::generate();
            let created = int(&state[at(CREATED)])? as u64;
            let owner = match &state[n] {
                Value::Nil => None,
                o => Some(text(o)?),
            };
            if let Some(o) = &owner {
                self.index_add(o, &to, created + ms(self.store.absolute_ttl))?;
            }
            let mut args = Vec::with_capacity(n + 2);
            for v in &state[..n] {
                args.push(match v {
                    Value::Int(n) => n.to_string(),
                    other => text(other)?,
                });
            }
            args.push(owner.unwrap_or_default());
            args.push(match state.get(n + 1) {
                Some(Value::Nil) | None => String::new(),
                Some(c) => text(c)?,
            });
            if self.counted() {
                self.live(
                    "live_add",
                    &[to.as_str().to_string(), args[at(ACCESSED)].clone()],
                )?;
            }
            self.on("rot_in", &to, &args)?;
            let out = self.on(
                "rot_out",
                &id,
                &[
                    to.as_str().to_string(),
                    args[at(VERSION)].clone(),
                    args[at(FENCE)].clone(),
                    args[at(LOCK_TOKEN)].clone(),
                ],
            )?;
            if int(&out)? == 1 {
                self.uncount(&id);
                return Ok(Reply::Rotated(to));
            }
            self.on("drop", &to, &[])?;
            self.uncount(&to);
        }
        Err(Error::Backend(
            "redis: the session kept changing during its rotation".into(),
        ))
    }

    /// The Cluster's `sessions_of` (`kill`: `destroy_all`): the index is a superset; each
    /// entry is checked in its own slot.
    pub(super) fn owned_cluster(&self, owner: &str, okey: String, kill: bool) -> Result<Reply> {
        let listed =
            items(self.invoke("index_list", std::slice::from_ref(&okey), ("", ""), &[])?)?;
        let mut ids = Vec::new();
        let mut stale = Vec::new();
        for x in &listed {
            let Ok(id) = text(x).and_then(|t| SessionId::parse(&t)) else {
                continue;
            };
            let keep = if kill {
                int(&self.on("destroy_if", &id, &[owner.to_string()])?)? == 1
            } else {
                text(&self.on("owner_of", &id, &[])?).is_ok_and(|o| o == owner)
            };
            if keep {
                ids.push(id);
            }
            if kill || !keep {
                stale.push(id);
            }
        }
        if !stale.is_empty() {
            let mut c = ::redis::cmd("ZREM");
            c.arg(&okey);
            for id in &stale {
                c.arg(id.as_str());
            }
            self.query(&c)?;
        }
        if kill {
            return Ok(Reply::Count(ids.len()));
        }
        ids.sort();
        Ok(Reply::Sessions(ids))
    }

    /// `scan` on the primary serving `slot`.
    pub(super) fn scan_on(&self, slot: u16, scan: &::redis::Cmd) -> Result<Value> {
        use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        self.ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            slot,
            SlotAddr::Master,
        )));
        self.pooled(|conn| match conn {
            Conn::Cluster(c) => c.route_command(scan, route).map_err(|e| self.failed(e)),
            Conn::One(_) => Err(Failed {
                err: backend("redis: a Cluster list on a single connection"),
                broken: false,
            }),
        })
    }

    /// The list cursor after a node's `SCAN` of `slot`'s primary answered `node_next`:
    /// the same node further on, or the next primary, or 0 after the last.
    pub(super) fn next_cursor(&self, slot: u16, node_next: u64) -> Result<u64> {
        if node_next >> NODE_CURSOR_BITS != 0 {
            return Err(Error::Backend(format!(
                "redis: a node's SCAN cursor {node_next} is too large to carry"
            )));
        }
        if node_next != 0 {
            Ok((u64::from(slot) << NODE_CURSOR_BITS) | node_next)
        } else {
            // This primary is done: on to the one whose lowest slot comes next.
            Ok(match self.next_primary(slot)? {
                Some(s) => u64::from(s) << NODE_CURSOR_BITS,
                None => 0,
            })
        }
    }

    /// The lowest slot of the primary after the one serving `slot`, in the order of their
    /// lowest slots (from `CLUSTER SLOTS`); `None` after the last.
    pub(super) fn next_primary(&self, slot: u16) -> Result<Option<u16>> {
        let v = self.query(::redis::cmd("CLUSTER").arg("SLOTS"))?;
        let mut lowest: std::collections::HashMap<(String, i64), i64> =
            std::collections::HashMap::new();
        for range in items(v)? {
            let r = items(range)?;
            let (Some(start), Some(Value::Array(node))) = (r.first(), r.get(2)) else {
                continue;
            };
            let (Some(host), Some(port)) = (node.first(), node.get(1)) else {
                continue;
            };
            let start = int(start)?;
            let e = lowest.entry((text(host)?, int(port)?)).or_insert(start);
            *e = (*e).min(start);
        }
        let mut starts: Vec<i64> = lowest.into_values().collect();
        starts.sort_unstable();
        Ok(starts
            .into_iter()
            .find(|&s| s > i64::from(slot))
            .and_then(|s| u16::try_from(s).ok()))
    }
}
