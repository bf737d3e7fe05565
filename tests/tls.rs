//! sessyncd's TLS listener and the `tls://` client: a wrong CA or name is a clear error,
//! plain text or silence on the TLS port costs the daemon nothing, redis-cli --tls works.

#![cfg(all(feature = "daemon", feature = "tls"))]

mod daemon;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
    time::Duration,
};

use daemon::{TOKEN, TempDir, start, start_tls, write_certs};
use sessync::{SessionData, SessionId, Store, WriteOpts};

fn open_err(url: &str) -> String {
    match Store::open(url) {
        Ok(_) => panic!("{url} opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_wrong_ca_or_name_fails_the_handshake_with_a_clear_error() {
    let d = start_tls(&[]);
    let other = TempDir::new("other-ca");
    let (wrong_ca, _, _) = write_certs(&other.0);
    let e = open_err(&format!(
        "tls://:{TOKEN}@127.0.0.1:{}?ca={}",
        d.port,
        wrong_ca.display()
    ));
    assert!(
        e.contains("TLS handshake with sessyncd at tls:127.0.0.1:"),
        "{e}"
    );
    assert!(e.contains("UnknownIssuer"), "{e}");
    assert!(e.contains("`ca` option"), "{e}");

    let e = open_err(&format!("{}&servername=elsewhere.example", d.url_tcp()));
    assert!(
        e.contains("not valid for name \"elsewhere.example\""),
        "{e}"
    );

    let e = open_err(&format!(
        "tls://:{TOKEN}@127.0.0.1:{}?ca={}",
        d.port,
        other.0.join("missing.pem").display()
    ));
    assert!(e.contains("ca=") && e.contains("missing.pem"), "{e}");

    // The right CA, and the name by its host name instead of the address.
    let store = Store::open(&format!("{}&servername=localhost", d.url_tcp())).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();

    // A tls:// client of a plain TCP port, and a plain client of the TLS port.
    let plain = start(&[]);
    let e = open_err(&format!(
        "tls://:{TOKEN}@127.0.0.1:{}?ca={}",
        plain.port,
        d.ca().display()
    ));
    assert!(e.contains("TLS handshake"), "{e}");
    let e = open_err(&format!("tcp://:{TOKEN}@127.0.0.1:{}?timeout=5s", d.port));
    assert!(
        e.contains(&format!("sessyncd at tcp:127.0.0.1:{}", d.port)),
        "{e}"
    );
    assert!(
        store.fetch(&id).unwrap().is_some(),
        "the daemon still serves"
    );
}

#[test]
fn plain_text_and_silence_on_the_tls_port_are_dropped_and_the_daemon_keeps_serving() {
    let d = start_tls(&["--tls-handshake-timeout", "1"]);
    let store = Store::open(&d.url_tcp()).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();

    for bytes in [
        &b"*1\r\n$4\r\nPING\r\n"[..],
        b"PING\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        // The daemon closes the connection (perhaps after a TLS alert; a reset is fine).
        match s.read_to_end(&mut out) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        assert!(!out.windows(4).any(|w| w == b"PONG"), "{out:?}");
    }

    // A client that says nothing is dropped once the handshake timeout has passed.
    let mut silent = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = Vec::new();
    let r = silent.read_to_end(&mut out);
    assert!(
        r.is_ok(),
        "closed by the daemon, not by our read timeout: {r:?}"
    );
    assert!(out.is_empty());

    let n = store.incr(&id, "n", 1, WriteOpts::default()).unwrap();
    assert_eq!(n, 1, "the daemon still serves TLS clients");
}

#[test]
fn redis_cli_talks_tls_to_it() {
    let help = Command::new("redis-cli").arg("--help").output();
    let has_tls = help.is_ok_and(|h| String::from_utf8_lossy(&h.stdout).contains("--tls"));
    if !has_tls {
        eprintln!("skipped: this redis-cli was built without TLS");
        return;
    }
    let d = start_tls(&[]);
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", d.ca().to_str().unwrap()])
            .args(["-h", "127.0.0.1", "-p", &d.port.to_string()])
            .args(["-a", TOKEN, "--no-auth-warning"])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["PING"]), "PONG");
    let id = "abcdefghijklmnopqrstuvwxyz012345";
    assert_eq!(cli(&["SESS.WRITE", id, r#"{"a":1}"#]), "1");
    assert!(cli(&["SESS.FETCH", id]).starts_with(&format!("{id}\n{{\"a\":1}}")));
}
