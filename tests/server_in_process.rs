//! sessyncd served from the test's own runtime, on tokio's paused clock: the idle
//! timeout (a connection that goes quiet is closed once the timeout has passed since its
//! last request; one that keeps talking is not, however long it lives) and bursts of
//! pipelined requests larger than any one read.

#![cfg(feature = "daemon")]

use std::{sync::Arc, time::Duration};

use sessync::{
    Store,
    clock::SystemClock,
    server::{self, Config, Listener},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::{Instant, sleep},
};

const IDLE: Duration = Duration::from_secs(10);

/// Reads to the end of the stream, which must come within three timeouts.
async fn closed(s: &mut TcpStream) {
    let mut rest = Vec::new();
    let n = tokio::time::timeout(IDLE * 3, s.read_to_end(&mut rest))
        .await
        .expect("the daemon kept an idle connection open")
        .unwrap();
    assert_eq!(n, 0);
}

async fn ping(s: &mut TcpStream) -> Vec<u8> {
    s.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    let mut b = [0u8; 7];
    s.read_exact(&mut b).await.unwrap();
    b.to_vec()
}

/// Starts a daemon on a free loopback port; send on the channel to stop it.
fn start(
    config: Config,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let l = TcpListener::from_std(l).unwrap();
    let store = Store::open_with_clock("mem://", Arc::new(SystemClock)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(store, config, vec![Listener::Tcp(l)], async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test(start_paused = true)]
async fn a_quiet_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let (addr, stop, server) = start(Config {
        idle_timeout: IDLE,
        ..Config::default()
    });

    let mut quiet = TcpStream::connect(addr).await.unwrap();
    let mut busy = TcpStream::connect(addr).await.unwrap();
    assert_eq!(ping(&mut quiet).await, b"+PONG\r\n");
    let quiet_since = Instant::now();

    // The busy one talks every 0.6 × the timeout, for 3 timeouts: never idle that long.
    for _ in 0..5 {
        sleep(IDLE * 6 / 10).await;
        assert_eq!(ping(&mut busy).await, b"+PONG\r\n");
    }

    // The quiet one was closed: end of stream, once the timeout had passed.
    closed(&mut quiet).await;
    assert!(quiet_since.elapsed() >= IDLE);

    // The busy one is closed the same way once it goes quiet, and not before.
    let busy_since = Instant::now();
    closed(&mut busy).await;
    let waited = busy_since.elapsed();
    assert!(waited >= IDLE && waited < IDLE * 2, "{waited:?}");

    let _ = stop.send(());
    server.await.unwrap();
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut b = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        b.extend_from_slice(a);
        b.extend_from_slice(b"\r\n");
    }
    b
}

#[tokio::test(start_paused = true)]
async fn a_pipelined_burst_larger_than_any_read_is_answered_in_order() {
    let (addr, stop, server) = start(Config::default());
    let mut c = TcpStream::connect(addr).await.unwrap();
    // 64 SETs of 1 to 64 KiB (about 2 MiB in one write), then 64 GETs and a PING.
    let value = |i: usize| vec![b'a' + (i % 26) as u8; 1024 * (i + 1) - i];
    let mut burst = Vec::new();
    for i in 0..64 {
        burst.extend(command(&[b"SET", format!("k{i}").as_bytes(), &value(i)]));
    }
    for i in 0..64 {
        burst.extend(command(&[b"GET", format!("k{i}").as_bytes()]));
    }
    burst.extend(command(&[b"PING"]));
    let (mut r, mut w) = c.split();
    let (_, replies) = tokio::join!(async { w.write_all(&burst).await.unwrap() }, async {
        let mut expected = b"+OK\r\n".repeat(64);
        for i in 0..64 {
            let v = value(i);
            expected.extend(format!("${}\r\n", v.len()).as_bytes());
            expected.extend(v);
            expected.extend(b"\r\n");
        }
        expected.extend(b"+PONG\r\n");
        let mut got = vec![0; expected.len()];
        r.read_exact(&mut got).await.unwrap();
        got == expected
    });
    assert!(
        replies,
        "the replies differ from the requests' answers in order"
    );
    let _ = stop.send(());
    server.await.unwrap();
}

/// Reads one line, without its CRLF ("<closed>" at the end of the stream).
async fn line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        if s.read(&mut b).await.unwrap() == 0 {
            return "<closed>".into();
        }
        out.push(b[0]);
    }
    out.truncate(out.len() - 2);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one whole reply: its first line, and the items of an array or the bytes of a
/// bulk string, rendered as `[a, b]` and `"text"`.
async fn reply(s: &mut TcpStream) -> String {
    let first = line(s).await;
    let (kind, rest) = first.split_at(1.min(first.len()));
    match kind {
        "*" => {
            let mut items = Vec::new();
            for _ in 0..rest.parse::<i64>().unwrap().max(0) {
                items.push(Box::pin(reply(s)).await);
            }
            format!("[{}]", items.join(", "))
        }
        "$" if rest != "-1" => {
            let mut b = vec![0; rest.parse::<usize>().unwrap() + 2];
            s.read_exact(&mut b).await.unwrap();
            format!("{:?}", String::from_utf8_lossy(&b[..b.len() - 2]))
        }
        _ => first,
    }
}

/// `SESS.LOCK id` with a long lease and wait, sent; the reply is for the caller to read.
async fn send_lock(s: &mut TcpStream, id: &str) {
    let req = command(&[b"SESS.LOCK", id.as_bytes(), b"600000", b"600000"]);
    s.write_all(&req).await.unwrap();
}

/// The fencing token of a `SESS.LOCK` reply (`[:token, record]`).
fn token_of(reply: &str) -> String {
    let t = reply.strip_prefix("[:").and_then(|r| r.split(',').next());
    t.unwrap_or_else(|| panic!("not a lock reply: {reply}"))
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn a_lock_that_waited_longer_than_the_idle_timeout_keeps_its_connection() {
    let (addr, stop, server) = start(Config {
        idle_timeout: IDLE,
        ..Config::default()
    });
    let id = "abcdefghijklmnopqrstuvwxyz012345";
    let mut holder = TcpStream::connect(addr).await.unwrap();
    let mut waiter = TcpStream::connect(addr).await.unwrap();
    holder
        .write_all(&command(&[b"SESS.WRITE", id.as_bytes(), b"{}"]))
        .await
        .unwrap();
    assert_eq!(reply(&mut holder).await, ":1");
    send_lock(&mut holder, id).await;
    let token = token_of(&reply(&mut holder).await);

    // The waiter queues for three idle timeouts; the holder keeps talking meanwhile.
    send_lock(&mut waiter, id).await;
    for _ in 0..6 {
        sleep(IDLE / 2).await;
        assert_eq!(ping(&mut holder).await, b"+PONG\r\n");
    }
    holder
        .write_all(&command(&[b"SESS.UNLOCK", id.as_bytes(), token.as_bytes()]))
        .await
        .unwrap();
    assert_eq!(reply(&mut holder).await, "+OK");
    let granted = token_of(&reply(&mut waiter).await);
    assert_eq!(
        granted.parse::<u64>().unwrap(),
        token.parse::<u64>().unwrap() + 1
    );
    // Its lock answered, the waiter's connection is still open: the wait was activity.
    assert_eq!(ping(&mut waiter).await, b"+PONG\r\n");
    let _ = stop.send(());
    server.await.unwrap();
}
