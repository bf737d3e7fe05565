//! One connection: its stream, its state ([`Conn`]), its read buffer ([`Inbox`]) and the
//! [`serve`] loop that reads requests, answers every complete one (pipelining) and
//! writes the replies in one go. The commands themselves are in `cmd/`.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::watch,
};

use super::{
    Shared,
    resp::{Out, ParseError, parse_request},
};

/// One connection's stream, TCP or Unix.
pub(super) type Io = Box<dyn AsyncIoStream>;
pub(super) trait AsyncIoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncIoStream for T {}

/// What a request asks of the connection after its reply.
pub(super) enum Next {
    /// Read the next request.
    Continue,
    /// Write what is pending, then close.
    Close,
}

/// A connection's state, which the commands read and change.
pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    /// Whether the client may send commands other than `AUTH`, `HELLO`, `PING`, `QUIT`.
    pub(super) authed: bool,
    /// The client's name (`CLIENT SETNAME`, `HELLO … SETNAME`).
    pub(super) name: Option<String>,
    /// Replies not yet written.
    pub(super) out: Out,
}

/// The first read size of a connection, and the most it grows to.
const READ_MIN: usize = 4096;
const READ_MAX: usize = 64 * 1024;

/// A connection's read buffer, and how much one read may take. The read size doubles
/// while reads fill it (a pipelined client, or large values), so that a burst is read,
/// answered and written in one go rather than 4 KiB at a time with a partial reply after
/// each piece; it halves while reads take less than a quarter of it. Once everything
/// read is answered, the buffer gives back what a burst or a large value took, so that
/// 10,000 idle connections do not each keep the largest request they ever sent.
struct Inbox {
    buf: Vec<u8>,
    read_size: usize,
}

impl Inbox {
    fn new() -> Inbox {
        Inbox {
            buf: Vec::with_capacity(READ_MIN),
            read_size: READ_MIN,
        }
    }

    /// Makes room for one read; returns the room.
    fn ready(&mut self) -> usize {
        if self.buf.capacity() - self.buf.len() < self.read_size {
            self.buf.reserve(self.read_size);
        }
        self.buf.capacity() - self.buf.len()
    }

    /// A read took `n` bytes of the `room` that `ready` made.
    fn filled(&mut self, n: usize, room: usize) {
        if n == room && self.read_size < READ_MAX {
            self.read_size *= 2;
        } else if n < self.read_size / 4 && self.read_size > READ_MIN {
            self.read_size /= 2;
        }
    }

    /// After the answers: an empty buffer keeps about one read's room.
    fn settle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 2 * self.read_size {
            self.buf.shrink_to(self.read_size);
        }
    }
}

/// Replies held for one connection before they are written out mid-batch: a client that
/// pipelines many requests for large sessions makes the daemon hold at most this much
/// (plus one reply) at a time, not every reply of its batch.
pub(super) const OUT_HIGH: usize = 256 * 1024;

/// Writes the replies held, giving the client `limit` to take them: one that does not
/// read its replies cannot keep the connection, and what it holds, forever.
async fn send(
    io: &mut Io,
    out: &mut Vec<u8>,
    limit: Duration,
    stop: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    let done = {
        let write = tokio::time::timeout(limit, io.write_all(out));
        tokio::pin!(write);
        tokio::select! {
            r = &mut write => r.ok(),
            // At a shutdown the reply in hand still goes out, but a client that does not
            // read gets a second, not the idle timeout, before the daemon stops.
            _ = stop.changed() => tokio::time::timeout(SHUTDOWN_WRITE, &mut write)
                .await
                .ok()
                .and_then(Result::ok),
        }
    };
    match done {
        Some(r) => {
            out.clear();
            r
        }
        None => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not read its replies",
        )),
    }
}

/// How long a shutdown waits for a client to take the reply in hand.
const SHUTDOWN_WRITE: Duration = Duration::from_secs(1);

/// Serves one connection until it closes, goes idle, breaks the protocol or `stop`.
pub(super) async fn serve(
    mut io: Io,
    shared: Arc<Shared>,
    needs_auth: bool,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = shared.config.limits;
    let idle = shared.config.idle_timeout;
    let mut c = Conn {
        shared,
        authed: !needs_auth,
        name: None,
        out: Out::default(),
    };
    let mut inbox = Inbox::new();
    // One timer per connection, not one per read: a read or an answer only notes the
    // time, and the timer, when it fires, either closes an idle connection or moves to the
    // new deadline. (An answer counts: a lock may wait longer than the idle timeout.)
    let mut last_active = tokio::time::Instant::now();
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    loop {
        // Answer every complete request in the buffer (pipelining), then write once, and
        // drop the bytes used in one move (not one per request).
        let mut off = 0;
        loop {
            match parse_request(&inbox.buf[off..], &limits) {
                Ok((args, used)) => {
                    off += used;
                    let next = c.request(args, &mut io, &mut inbox.buf).await;
                    if matches!(next, Next::Close) {
                        send(&mut io, &mut c.out.buf, idle, &mut stop).await?;
                        return io.shutdown().await;
                    }
                    if c.out.buf.len() >= OUT_HIGH {
                        send(&mut io, &mut c.out.buf, idle, &mut stop).await?;
                        last_active = tokio::time::Instant::now();
                    }
                }
                Err(ParseError::Incomplete) => break,
                Err(e @ ParseError::Protocol(_)) => {
                    c.out.error(&format!("ERR {e}"));
                    send(&mut io, &mut c.out.buf, idle, &mut stop).await?;
                    return io.shutdown().await;
                }
            }
        }
        inbox.buf.drain(..off);
        if !c.out.buf.is_empty() {
            send(&mut io, &mut c.out.buf, idle, &mut stop).await?;
            last_active = tokio::time::Instant::now();
        }
        inbox.settle();
        if c.out.buf.capacity() > READ_MAX {
            c.out.buf.shrink_to(READ_MIN);
        }
        if *stop.borrow() {
            return Ok(());
        }
        let spare = inbox.ready();
        let read = tokio::select! {
            biased;
            r = io.read_buf(&mut inbox.buf) => r,
            _ = stop.changed() => return Ok(()),
            _ = &mut idle_timer => {
                let due = last_active + idle;
                if tokio::time::Instant::now() >= due {
                    return Ok(()); // idle timeout
                }
                idle_timer.as_mut().reset(due);
                continue;
            }
        };
        match read {
            Ok(0) => return Ok(()),
            Ok(n) => {
                last_active = tokio::time::Instant::now();
                inbox.filled(n, spare);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Inbox, READ_MAX, READ_MIN};

    /// Reads `n` bytes (as a socket would) into the room `ready` made.
    fn read(inbox: &mut Inbox, n: usize) {
        let room = inbox.ready();
        let n = n.min(room);
        inbox.buf.extend(std::iter::repeat_n(b'x', n));
        inbox.filled(n, room);
    }

    #[test]
    fn reads_grow_while_they_fill_and_the_buffer_shrinks_once_answered() {
        let mut inbox = Inbox::new();
        // A burst of 1 MiB: the read size doubles up to its cap, never beyond.
        while inbox.buf.len() < 1 << 20 {
            read(&mut inbox, usize::MAX);
        }
        assert_eq!(inbox.read_size, READ_MAX);
        // Answered: the buffer gives back the burst.
        inbox.buf.clear();
        inbox.settle();
        assert!(
            inbox.buf.capacity() <= 2 * READ_MAX,
            "{}",
            inbox.buf.capacity()
        );
        // Small requests from then on: the read size falls back to its start, and so does
        // what the empty buffer keeps.
        for _ in 0..8 {
            read(&mut inbox, 100);
            inbox.buf.clear();
            inbox.settle();
        }
        assert_eq!(inbox.read_size, READ_MIN);
        assert!(
            inbox.buf.capacity() <= 2 * READ_MIN,
            "{}",
            inbox.buf.capacity()
        );
        // A request that is still incomplete keeps its bytes.
        read(&mut inbox, 10);
        inbox.settle();
        assert_eq!(inbox.buf.len(), 10);
    }
}
