//! A connection that many callers share, their requests pipelined.
//!
//! A caller appends its request to the connection's output and joins the FIFO of
//! requests in flight, in one step under the state lock, so the FIFO is the order on the
//! wire. If nobody is writing, it becomes the writer: it sends the output, and again
//! whatever other callers appended meanwhile, until the output is empty — so callers
//! that arrive while a write is under way never wait for the socket, and their requests
//! leave in one `write`. Then each waits for its reply. There is no reader thread: the first waiter that finds nobody reading becomes
//! the reader; it reads replies in order and hands each to the owner at the head of the
//! FIFO until its own comes; then it passes the reading on to the next waiter still
//! there. A lone caller therefore reads its own reply, with no thread hop.
//!
//! A read or write error, or a reply with nobody waiting for it, fails every request in
//! flight with the same error and marks the connection dead; the backend replaces it on
//! the next call. A caller whose `timeout` runs out stops waiting (its reply, if it comes,
//! is read and dropped); a reader that hears nothing for `timeout` ends the connection.

use std::{
    collections::VecDeque,
    io::BufReader,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};

use super::link::{Conn, Raw, ReadHalf, Resp, WriteHalf, complete, read_resp};
use crate::error::{Error, Result};

/// One request's place in the FIFO.
struct Slot {
    /// Signalled when the reply (or an error) is in, or when the reading is passed on.
    cv: Condvar,
    /// The reply, once read. Locked inside `State`'s lock only.
    reply: Mutex<Option<Result<Resp, String>>>,
    /// Set when the caller stopped waiting; the reading is not passed to it.
    gone: Mutex<bool>,
}

struct State {
    /// Requests written and not yet answered, in wire order.
    pending: VecDeque<Arc<Slot>>,
    /// Whether a caller is reading replies now.
    reading: bool,
    /// Why the connection is dead, once it is.
    dead: Option<String>,
    /// Requests appended and not yet handed to the writer.
    out: Vec<u8>,
    /// Whether a caller is writing `out` now.
    writing: bool,
}

/// A connection shared by many callers.
pub(crate) struct Shared {
    /// Used by the caller that is writing (`State::writing`) only.
    write: Mutex<(WriteHalf, Vec<u8>)>,
    state: Mutex<State>,
    read: Mutex<BufReader<ReadHalf>>,
    raw: Raw,
    /// The server, as error messages name it (`sessyncd at unix:/run/s.sock`).
    at: String,
}

/// Why a request could not be sent: nothing was written, so another connection may be
/// tried.
pub(crate) struct NotSent(pub(crate) String);

impl Shared {
    /// Shares a connection that is set up (connected, authenticated); `at` names the
    /// server in error messages.
    pub(crate) fn new(c: Conn, at: String) -> Shared {
        Shared {
            write: Mutex::new((c.w, Vec::new())),
            state: Mutex::new(State {
                pending: VecDeque::new(),
                reading: false,
                dead: None,
                out: Vec::new(),
                writing: false,
            }),
            read: Mutex::new(c.r),
            raw: c.raw,
            at,
        }
    }

    /// Whether the connection was found dead.
    pub(crate) fn is_dead(&self) -> bool {
        self.state.lock().dead.is_some()
    }

    /// Ends the connection: every request in flight fails with `why`.
    pub(crate) fn kill(&self, why: &str) {
        let mut st = self.state.lock();
        self.kill_locked(&mut st, why.to_string());
    }

    fn kill_locked(&self, st: &mut State, why: String) {
        if st.dead.is_none() {
            st.dead = Some(why.clone());
            self.raw.shutdown();
        }
        st.out.clear();
        for s in st.pending.drain(..) {
            *s.reply.lock() = Some(Err(why.clone()));
            s.cv.notify_one();
        }
    }

    /// Sends one request and waits for its reply, for at most `timeout`.
    ///
    /// `Err(Ok(NotSent))`: nothing was sent (the connection is dead); `Err(Err(msg))`: the
    /// request was sent, or may have been, and failed.
    pub(crate) fn call(
        &self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Resp, Result<NotSent, String>> {
        let deadline = Instant::now() + timeout;
        let slot = Arc::new(Slot {
            cv: Condvar::new(),
            reply: Mutex::new(None),
            gone: Mutex::new(false),
        });
        let mut st = self.state.lock();
        if let Some(why) = &st.dead {
            return Err(Ok(NotSent(why.clone())));
        }
        // An idle connection the daemon closed (its idle timeout, a restart) is seen here,
        // before anything is sent on it.
        if st.pending.is_empty() && self.raw.peer_gone() {
            let why = format!("{} closed the connection", self.at);
            self.kill_locked(&mut st, why.clone());
            return Err(Ok(NotSent(why)));
        }
        st.pending.push_back(slot.clone());
        st.out.extend_from_slice(request);
        if !st.writing {
            st.writing = true;
            let mut w = self.write.lock();
            let (half, buf) = &mut *w;
            loop {
                std::mem::swap(buf, &mut st.out);
                drop(st);
                let sent = half.send(buf);
                buf.clear();
                st = self.state.lock();
                if let Err(e) = sent {
                    st.writing = false;
                    let why = format!("{}: {e}", self.at);
                    self.kill_locked(&mut st, why.clone());
                    return Err(Err(why));
                }
                if st.out.is_empty() || st.dead.is_some() {
                    st.writing = false;
                    break;
                }
            }
        }
        drop(st);
        self.wait(&slot, deadline, timeout).map_err(Err)
    }

    fn wait(&self, me: &Arc<Slot>, deadline: Instant, timeout: Duration) -> Result<Resp, String> {
        let mut st = self.state.lock();
        loop {
            if let Some(r) = me.reply.lock().take() {
                return r;
            }
            if !st.reading {
                st.reading = true;
                drop(st);
                return self.read_replies(me, deadline, timeout);
            }
            if me.cv.wait_until(&mut st, deadline).timed_out() {
                if let Some(r) = me.reply.lock().take() {
                    return r;
                }
                *me.gone.lock() = true;
                if !st.reading {
                    // The reading may have been passed to us just now: pass it on.
                    self.pass_reading(&mut st);
                }
                return Err(self.timed_out(timeout));
            }
        }
    }

    fn timed_out(&self, timeout: Duration) -> String {
        format!(
            "{}: no reply within {} ms (the request may still be applied)",
            self.at,
            timeout.as_millis()
        )
    }

    /// The reader's part: reads replies and hands them out until `me`'s comes.
    fn read_replies(
        &self,
        me: &Arc<Slot>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Resp, String> {
        let mut r = self.read.lock();
        loop {
            let got = read_resp(&mut r, 0);
            let mut st = self.state.lock();
            match got {
                Err(e) => {
                    let why = match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                            format!("{}: no reply within {} ms", self.at, timeout.as_millis())
                        }
                        _ => format!("{}: {e}", self.at),
                    };
                    self.kill_locked(&mut st, why);
                    st.reading = false;
                    return me
                        .reply
                        .lock()
                        .take()
                        .unwrap_or_else(|| Err(format!("{}: connection lost", self.at)));
                }
                Ok(resp) => {
                    let Some(head) = st.pending.pop_front() else {
                        let why = format!("{}: a reply nobody asked for", self.at);
                        self.kill_locked(&mut st, why.clone());
                        st.reading = false;
                        return Err(why);
                    };
                    if Arc::ptr_eq(&head, me) {
                        drop(st);
                        self.hand_out_buffered(&mut r);
                        self.pass_reading(&mut self.state.lock());
                        return Ok(resp);
                    }
                    *head.reply.lock() = Some(Ok(resp));
                    head.cv.notify_one();
                    if Instant::now() >= deadline {
                        *me.gone.lock() = true;
                        self.pass_reading(&mut st);
                        return Err(self.timed_out(timeout));
                    }
                }
            }
        }
    }

    /// Hands out the replies that are already read into the buffer, whole, before the
    /// reading is passed on: the next reader may be a while getting a CPU, and these
    /// need no socket call.
    fn hand_out_buffered(&self, r: &mut BufReader<ReadHalf>) {
        while complete(r.buffer()) {
            let got = read_resp(r, 0);
            let mut st = self.state.lock();
            match (got, st.pending.pop_front()) {
                (Ok(resp), Some(head)) => {
                    *head.reply.lock() = Some(Ok(resp));
                    head.cv.notify_one();
                }
                (Ok(_), None) => {
                    let why = format!("{}: a reply nobody asked for", self.at);
                    self.kill_locked(&mut st, why);
                    return;
                }
                (Err(e), head) => {
                    if let Some(h) = head {
                        st.pending.push_front(h);
                    }
                    self.kill_locked(&mut st, format!("{}: {e}", self.at));
                    return;
                }
            }
        }
    }

    /// Stops reading, and wakes the first waiter still there to take over.
    fn pass_reading(&self, st: &mut State) {
        st.reading = false;
        if let Some(next) = st.pending.iter().find(|s| !*s.gone.lock()) {
            next.cv.notify_one();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.raw.shutdown();
    }
}

/// A fixed number of places for shared connections, each connected on first use and
/// again after its connection died; callers are spread over them in turn.
pub(crate) struct Places {
    places: Vec<Mutex<Option<Arc<Shared>>>>,
    turn: AtomicUsize,
}

impl Places {
    /// `n` places, none connected yet.
    pub(crate) fn new(n: usize) -> Places {
        Places {
            places: (0..n).map(|_| Mutex::new(None)).collect(),
            turn: AtomicUsize::new(0),
        }
    }

    /// Whether there are no places (every call goes elsewhere).
    pub(crate) fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Puts a connection that is set up in the first place (a store's first connection,
    /// made when it opens).
    #[cfg(feature = "client")]
    pub(crate) fn seed(&self, c: Shared) {
        if let Some(p) = self.places.first() {
            *p.lock() = Some(Arc::new(c));
        }
    }

    /// The connection of place `i`, made by `connect` if it has none or it died.
    fn at(&self, i: usize, connect: &dyn Fn() -> Result<Shared>) -> Result<Arc<Shared>> {
        let mut place = self.places[i].lock();
        if let Some(c) = place.as_ref().filter(|c| !c.is_dead()) {
            return Ok(c.clone());
        }
        *place = None;
        let c = Arc::new(connect()?);
        *place = Some(c.clone());
        Ok(c)
    }

    /// One request on the next place, with its reply (an error reply included). A request
    /// that was not sent, because its connection was found dead, is tried once more on a
    /// new connection; nothing sent is ever sent twice.
    pub(crate) fn call(
        &self,
        request: &[u8],
        timeout: Duration,
        connect: &dyn Fn() -> Result<Shared>,
    ) -> Result<Resp> {
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % self.places.len();
        let mut tries = 0;
        loop {
            let c = self.at(i, connect)?;
            match c.call(request, timeout) {
                Ok(r) => return Ok(r),
                Err(Ok(NotSent(why))) if tries == 0 => {
                    tracing::debug!("{why}; reconnecting");
                    tries += 1;
                }
                Err(Ok(NotSent(why))) | Err(Err(why)) => return Err(Error::Backend(why)),
            }
        }
    }
}

impl Drop for Places {
    fn drop(&mut self) {
        for place in &self.places {
            if let Some(c) = place.lock().take() {
                c.kill("the store was closed");
            }
        }
    }
}
