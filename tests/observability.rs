//! What sessyncd tells about itself: `INFO`'s sections, the Prometheus endpoint
//! (`--metrics`), and the same counters through `SESS.STATS` to a client's `stats()`;
//! with `--dir`, the persistence section moves as changes are logged and compacted.

#![cfg(feature = "daemon")]

mod daemon;

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use sessync::{SessionData, SessionId, Store, WriteOpts};

/// The body of `GET path` on the metrics port, with the status line.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The metrics port sessyncd printed (`metrics on http://127.0.0.1:PORT/metrics`).
fn metrics_port(lines: &[String]) -> u16 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("metrics on http://127.0.0.1:"))
        .and_then(|l| l.strip_suffix("/metrics"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no metrics line in {lines:?}"))
}

/// The value of `name` in Prometheus text.
fn metric(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("sessyncd_{name} ")))
        .unwrap_or_else(|| panic!("no sessyncd_{name} in\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn info_sections_prometheus_and_stats_agree() {
    let data = daemon::TempDir::new("metrics-data");
    let dir = data.0.join("store").display().to_string();
    let sock = data.0.join("s.sock").display().to_string();
    let (mut child, lines) = daemon::spawn(
        &[
            "--unix",
            &sock,
            "--dir",
            &dir,
            "--appendfsync",
            "always",
            "--metrics",
            "127.0.0.1:0",
            "--log",
            "warn",
        ],
        2,
    );
    let port = metrics_port(&lines);

    let store = Store::open(&format!("unix://{sock}")).unwrap();
    let ids: Vec<SessionId> = (0..5).map(|_| SessionId::generate()).collect();
    for id in &ids {
        store
            .write(id, SessionData::new(), WriteOpts::create())
            .unwrap();
        store.incr(id, "n", 2, WriteOpts::default()).unwrap();
    }
    let (t, _) = store
        .lock(
            &ids[0],
            std::time::Duration::from_secs(5),
            std::time::Duration::ZERO,
        )
        .unwrap();
    store.unlock(&ids[0], t).unwrap();
    store.destroy(&ids[4]).unwrap();

    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("# TYPE sessyncd_cmd_write_total counter"));
    assert_eq!(metric(&body, "cmd_write_total"), 5);
    assert_eq!(metric(&body, "cmd_patch_total"), 5);
    assert_eq!(metric(&body, "cmd_lock_total"), 1);
    assert_eq!(metric(&body, "cmd_destroy_total"), 1);
    assert_eq!(metric(&body, "sessions"), 4);
    assert_eq!(metric(&body, "persistence_enabled"), 1);
    assert_eq!(metric(&body, "log_pending_records"), 0);
    // Every change left a record: 5 writes, 5 increments, a lock, an unlock, a destroy.
    assert_eq!(metric(&body, "log_records_total"), 13);
    assert!(metric(&body, "log_fsyncs_total") >= 1);
    assert!(metric(&body, "sessions_memory") > 4 * 256);
    assert!(metric(&body, "used_memory_rss") > 1 << 20);

    // The client's stats() carries the same counters.
    let st = store.stats();
    assert_eq!(st.commands.write, 5);
    assert_eq!(st.persistence.records, 13);
    assert!(st.persistence.enabled);

    // INFO: every section, or the ones asked for.
    let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let info = |c: &mut std::os::unix::net::UnixStream, args: &str| -> String {
        let parts: Vec<&str> = args.split_whitespace().collect();
        let mut req = format!("*{}\r\n", parts.len());
        for p in &parts {
            req.push_str(&format!("${}\r\n{p}\r\n", p.len()));
        }
        c.write_all(req.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n") {
            c.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let n: usize = std::str::from_utf8(&head[1..head.len() - 2])
            .unwrap()
            .parse()
            .unwrap();
        let mut body = vec![0; n + 2];
        c.read_exact(&mut body).unwrap();
        String::from_utf8(body[..n].to_vec()).unwrap()
    };
    let all = info(&mut c, "INFO");
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Commandstats",
        "# Sessions",
        "# Keyspace",
    ] {
        assert!(all.contains(section), "{section} missing from\n{all}");
    }
    assert!(all.contains("aof_enabled:1\r\n"));
    assert!(all.contains("cmd_write_total:5\r\n"));
    let only = info(&mut c, "INFO persistence");
    assert!(only.starts_with("# Persistence\r\n") && !only.contains("# Server"));
    assert!(only.contains("log_records_total:13\r\n"));
    assert_eq!(info(&mut c, "INFO nosuchsection"), "");

    // Anything but GET /metrics is a 404; a head past 8 KiB a 400.
    assert_eq!(http_get(port, "/").0, "HTTP/1.1 404 Not Found");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&vec![b'a'; 9000]).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");

    // A stop and a start on the same directory: the sessions are back, and say so.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, lines) = daemon::spawn(
        &[
            "--unix",
            &sock,
            "--dir",
            &dir,
            "--metrics",
            "127.0.0.1:0",
            "--log",
            "warn",
        ],
        2,
    );
    let port = metrics_port(&lines);
    let (_, body) = http_get(port, "/metrics");
    assert_eq!(metric(&body, "restored_sessions"), 4);
    assert_eq!(metric(&body, "compactions_total"), 1);
    let store = Store::open(&format!("unix://{sock}")).unwrap();
    for id in &ids[..4] {
        let r = store.fetch(id).unwrap().expect("restored");
        assert_eq!(r.data.get("n").and_then(|j| j.as_i64()), Some(2));
    }
    assert_eq!(store.fetch(&ids[4]).unwrap(), None);
    child.kill().unwrap();
    child.wait().unwrap();
}
