//! One connection to a server (sessyncd, or Redis) as two halves, a reader and a writer, over a Unix
//! socket, TCP, or TLS over TCP; and RESP on top of them.
//!
//! The halves are separate so that a shared connection can be written by one caller
//! while another reads replies. Over TLS both halves use one `rustls::ClientConnection`
//! behind a mutex that is never held across a socket read or write: the writer encrypts
//! into a buffer under the lock and sends it after; the reader receives ciphertext
//! without the lock and decrypts under it. Builds without the `tls` feature have no TLS
//! state: its type then has no values, and every connection is plain.

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixStream,
    },
    time::Duration,
};

#[cfg(feature = "tls")]
use parking_lot::Mutex;
#[cfg(feature = "tls")]
use rustls::ClientConnection;

/// Without the `tls` feature no connection has TLS: the state has no values.
#[cfg(not(feature = "tls"))]
pub(crate) type ClientConnection = std::convert::Infallible;

/// A connected socket. Clones share the socket.
pub(crate) enum Raw {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Raw {
    pub(crate) fn try_clone(&self) -> io::Result<Raw> {
        Ok(match self {
            Raw::Unix(s) => Raw::Unix(s.try_clone()?),
            Raw::Tcp(s) => Raw::Tcp(s.try_clone()?),
        })
    }

    /// Sets the read and the write timeout (of the socket, so of every clone).
    pub(crate) fn set_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Raw::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            Raw::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }

    /// Ends the connection both ways; a read blocked on it (in any clone) returns.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Raw::Unix(s) => s.shutdown(Shutdown::Both),
            Raw::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn fd(&self) -> RawFd {
        match self {
            Raw::Unix(s) => s.as_raw_fd(),
            Raw::Tcp(s) => s.as_raw_fd(),
        }
    }

    /// Whether the server has closed its side or the socket failed, without reading (a
    /// `poll` with no wait). Bytes waiting to be read do not count: over TLS they may be
    /// session tickets.
    pub(crate) fn peer_gone(&self) -> bool {
        #[cfg(target_os = "linux")]
        let events = libc::POLLIN | libc::POLLRDHUP;
        #[cfg(not(target_os = "linux"))]
        let events = libc::POLLIN;
        let mut p = libc::pollfd {
            fd: self.fd(),
            events,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd for the duration of the call, and the count is 1.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        #[cfg(target_os = "linux")]
        let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        #[cfg(not(target_os = "linux"))]
        let gone = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        n > 0 && p.revents & gone != 0
    }

    /// Writes it all. A Unix socket is written with `MSG_NOSIGNAL`, so a server that went
    /// away is an `EPIPE` error rather than a `SIGPIPE` that kills a C host process which
    /// did not ignore it (std already does this for TCP).
    fn write_all(&mut self, mut b: &[u8]) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.write_all(b),
            Raw::Unix(s) => {
                while !b.is_empty() {
                    // SAFETY: the pointer and length describe the live slice `b`, and the
                    // descriptor belongs to `s`, which outlives the call.
                    let n = unsafe {
                        libc::send(
                            s.as_raw_fd(),
                            b.as_ptr().cast(),
                            b.len(),
                            libc::MSG_NOSIGNAL,
                        )
                    };
                    if n < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        return Err(e);
                    }
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    b = &b[n as usize..];
                }
                Ok(())
            }
        }
    }
}

impl Read for Raw {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::Unix(s) => s.read(b),
            Raw::Tcp(s) => s.read(b),
        }
    }
}

/// The TLS state both halves of a TLS connection use.
#[cfg(feature = "tls")]
pub(crate) type Tls = Arc<Mutex<ClientConnection>>;
/// The TLS state both halves of a TLS connection use: none without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type Tls = std::convert::Infallible;

/// The read half.
pub(crate) struct ReadHalf {
    raw: Raw,
    tls: Option<Tls>,
    /// Ciphertext received and not yet given to rustls (TLS only).
    #[cfg(feature = "tls")]
    cipher: Vec<u8>,
}

impl Read for ReadHalf {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match &self.tls {
            None => self.raw.read(b),
            #[cfg(feature = "tls")]
            Some(tls) => read_tls(&mut self.raw, &mut self.cipher, tls, b),
            #[cfg(not(feature = "tls"))]
            Some(never) => match *never {},
        }
    }
}

/// Plaintext from the TLS connection, receiving ciphertext (into `cipher`) as needed.
#[cfg(feature = "tls")]
fn read_tls(raw: &mut Raw, cipher: &mut Vec<u8>, tls: &Tls, b: &mut [u8]) -> io::Result<usize> {
    loop {
        {
            let mut c = tls.lock();
            match c.reader().read(b) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        cipher.resize(16 * 1024, 0);
        let n = raw.read(cipher)?;
        if n == 0 {
            return Ok(0);
        }
        let mut rest = &cipher[..n];
        let mut c = tls.lock();
        while !rest.is_empty() {
            c.read_tls(&mut rest)?;
            c.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

/// The write half.
pub(crate) struct WriteHalf {
    raw: Raw,
    tls: Option<Tls>,
    /// Ciphertext to send (TLS only), kept to reuse its allocation.
    #[cfg(feature = "tls")]
    cipher: Vec<u8>,
}

impl WriteHalf {
    /// Sends `b` whole.
    pub(crate) fn send(&mut self, b: &[u8]) -> io::Result<()> {
        match &self.tls {
            None => self.raw.write_all(b),
            #[cfg(feature = "tls")]
            Some(tls) => send_tls(&mut self.raw, &mut self.cipher, tls, b),
            #[cfg(not(feature = "tls"))]
            Some(never) => match *never {},
        }
    }
}

/// Encrypts `b` (into `cipher`) and sends the records.
#[cfg(feature = "tls")]
fn send_tls(raw: &mut Raw, cipher: &mut Vec<u8>, tls: &Tls, b: &[u8]) -> io::Result<()> {
    cipher.clear();
    {
        let mut c = tls.lock();
        c.writer().write_all(b)?;
        while c.wants_write() {
            c.write_tls(cipher)?;
        }
    }
    raw.write_all(cipher)
}

/// Splits a connected socket (after its TLS handshake, if any) into its two halves.
pub(crate) fn split(raw: Raw, tls: Option<ClientConnection>) -> io::Result<(ReadHalf, WriteHalf)> {
    #[cfg(feature = "tls")]
    let tls = tls.map(|mut c| {
        // The writer drains every record it makes at once; no need for a limit.
        c.set_buffer_limit(None);
        Arc::new(Mutex::new(c))
    });
    let w = WriteHalf {
        raw: raw.try_clone()?,
        tls: tls.clone(),
        #[cfg(feature = "tls")]
        cipher: Vec::new(),
    };
    let r = ReadHalf {
        raw,
        tls,
        #[cfg(feature = "tls")]
        cipher: Vec::new(),
    };
    Ok((r, w))
}

/// One reply from the server.
#[derive(Debug)]
pub(crate) enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Resp>),
}

/// Largest reply accepted from the server, per bulk string.
const MAX_REPLY_BULK: usize = 64 * 1024 * 1024;

/// A request in RESP: an array of bulk strings.
pub(crate) fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    b.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        b.extend_from_slice(a);
        b.extend_from_slice(b"\r\n");
    }
    b
}

/// Reads one reply.
pub(crate) fn read_resp(r: &mut BufReader<ReadHalf>, depth: usize) -> io::Result<Resp> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    let body = line.strip_suffix(b"\r\n").unwrap_or(&line);
    // The type byte, then the rest as text (split on bytes: the reply may not be UTF-8).
    let (kind, rest) = body.split_at(1.min(body.len()));
    let rest = String::from_utf8_lossy(rest).into_owned();
    let n = || rest.parse::<i64>().map_err(|_| bad("bad length in reply"));
    Ok(match kind {
        b"+" => Resp::Simple(rest),
        b"-" => Resp::Error(rest),
        b":" => Resp::Int(n()?),
        b"_" => Resp::Null,
        b"$" => {
            let len = n()?;
            if len < 0 {
                return Ok(Resp::Null);
            }
            let len = len as usize;
            if len > MAX_REPLY_BULK {
                return Err(bad("reply too large"));
            }
            let mut b = vec![0; len + 2];
            r.read_exact(&mut b)?;
            b.truncate(len);
            Resp::Bulk(b)
        }
        b"*" | b"%" => {
            let len = n()?;
            if len < 0 {
                return Ok(Resp::Null);
            }
            if depth > 4 || len > 1_000_000 {
                return Err(bad("reply nested or long beyond reason"));
            }
            let count = if kind == b"%" { 2 * len } else { len } as usize;
            let mut v = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                v.push(read_resp(r, depth + 1)?);
            }
            Resp::Array(v)
        }
        _ => return Err(bad("unknown reply type")),
    })
}

/// Whether `b` starts with one whole reply, so that `read_resp` would not need the socket.
/// Anything unusual answers `false` (the caller then reads as usual).
pub(crate) fn complete(b: &[u8]) -> bool {
    fn skip(b: &[u8], depth: usize) -> Option<usize> {
        let nl = b.iter().position(|&c| c == b'\n')?;
        let n = || -> Option<i64> {
            std::str::from_utf8(b.get(1..nl)?)
                .ok()?
                .trim_end_matches('\r')
                .parse()
                .ok()
        };
        match b.first()? {
            b'+' | b'-' | b':' | b'_' => Some(nl + 1),
            b'$' => match n()? {
                len if len < 0 => Some(nl + 1),
                len => {
                    let end = (nl + 1)
                        .checked_add(usize::try_from(len).ok()?)?
                        .checked_add(2)?;
                    (b.len() >= end).then_some(end)
                }
            },
            kind @ (b'*' | b'%') if depth < 5 => {
                let len = n()?;
                if len < 0 {
                    return Some(nl + 1);
                }
                let count = if *kind == b'%' {
                    len.checked_mul(2)?
                } else {
                    len
                };
                let mut off = nl + 1;
                for _ in 0..count {
                    off += skip(&b[off..], depth + 1)?;
                }
                Some(off)
            }
            _ => None,
        }
    }
    skip(b, 0).is_some()
}

/// A whole connection used by one caller at a time: a dedicated connection, and the
/// first steps (`AUTH`) of every connection.
pub(crate) struct Conn {
    pub(crate) r: BufReader<ReadHalf>,
    pub(crate) w: WriteHalf,
    /// The socket, for timeouts, liveness and shutdown.
    pub(crate) raw: Raw,
}

impl Conn {
    pub(crate) fn new(raw: Raw, tls: Option<ClientConnection>) -> io::Result<Conn> {
        let keep = raw.try_clone()?;
        let (r, w) = split(raw, tls)?;
        Ok(Conn {
            r: BufReader::with_capacity(16 * 1024, r),
            w,
            raw: keep,
        })
    }

    /// One request, one reply.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> io::Result<Resp> {
        self.w.send(&encode(args))?;
        read_resp(&mut self.r, 0)
    }
}

/// For tests: the reply that `bytes` from a server read as.
#[cfg(test)]
pub(crate) fn reply_of(bytes: &[u8]) -> io::Result<Resp> {
    use std::{io::Write, os::unix::net::UnixStream};
    let (a, mut b) = UnixStream::pair()?;
    b.write_all(bytes)?;
    drop(b);
    let (r, _w) = split(Raw::Unix(a), None)?;
    read_resp(&mut BufReader::new(r), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_from_the_daemon_is_an_error_not_a_panic() {
        for junk in [
            &b"\xc3\xa9x\r\n"[..],
            b"\xff\r\n",
            b"$abc\r\n",
            b"$99999999999\r\n",
            b"*99999999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"$5\r\nab",
            b"?\r\n",
            b"\r\n",
            b"",
        ] {
            assert!(reply_of(junk).is_err(), "{junk:?}");
        }
        assert!(matches!(
            reply_of(b"*2\r\n:7\r\n$2\r\nhi\r\n").unwrap(),
            Resp::Array(v) if matches!(&v[..], [Resp::Int(7), Resp::Bulk(b)] if b == b"hi")
        ));
        assert!(matches!(reply_of(b"-ERR x\r\n").unwrap(), Resp::Error(e) if e == "ERR x"));
    }

    #[test]
    fn complete_tells_a_whole_reply_from_a_part() {
        for whole in [
            &b"+OK\r\n"[..],
            b":12\r\n",
            b"$-1\r\n",
            b"$2\r\nhi\r\n+next",
            b"*2\r\n:1\r\n*1\r\n$0\r\n\r\n",
            b"%1\r\n+a\r\n+b\r\n",
        ] {
            assert!(complete(whole), "{whole:?}");
        }
        for part in [
            &b""[..],
            b"+OK",
            b"$2\r\nhi",
            b"$2\r\nhi\r",
            b"*2\r\n:1\r\n",
            b"%1\r\n+a\r\n",
            b"$99999999999999999999\r\n",
            b"?\r\n",
        ] {
            assert!(!complete(part), "{part:?}");
        }
    }
}
