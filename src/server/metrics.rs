//! The daemon's counters, gathered once and shown two ways: `INFO`'s sections (as Redis
//! has them, so monitoring that reads Redis's INFO reads ours) and the Prometheus text
//! format on the optional `--metrics` port (`GET /metrics`).

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::watch,
};

use super::Shared;

/// Whether a metric only rises (a counter) or goes up and down (a gauge).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One number, with where `INFO` shows it and what Prometheus says of it.
struct Metric {
    section: &'static str,
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: u64,
}

/// The resident memory of this process, in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Every metric, read now.
fn collect(shared: &Shared) -> Vec<Metric> {
    use Kind::{Counter, Gauge};
    let st = shared.store.stats();
    let p = st.persistence;
    let c = st.commands;
    let m = |section, name, help, kind, value| Metric {
        section,
        name,
        help,
        kind,
        value,
    };
    vec![
        m(
            "server",
            "uptime_in_seconds",
            "Seconds since the daemon started.",
            Gauge,
            shared.started.elapsed().as_secs(),
        ),
        m(
            "clients",
            "connected_clients",
            "Connections being served.",
            Gauge,
            shared.clients.load(Ordering::Relaxed) as u64,
        ),
        m(
            "clients",
            "max_clients",
            "Most connections served at once (--max-connections).",
            Gauge,
            shared.config.max_connections as u64,
        ),
        m(
            "clients",
            "total_connections_received",
            "Connections accepted since the start.",
            Counter,
            shared.next_client.load(Ordering::Relaxed).saturating_sub(1),
        ),
        m(
            "memory",
            "used_memory_rss",
            "Resident memory of the daemon, in bytes.",
            Gauge,
            rss_bytes(),
        ),
        m(
            "memory",
            "sessions_memory",
            "What the sessions count against max_memory (JSON text plus a fixed overhead each).",
            Gauge,
            st.memory,
        ),
        m(
            "memory",
            "max_memory",
            "The store's max_memory (0: no limit).",
            Gauge,
            shared.store.options().max_memory,
        ),
        m(
            "persistence",
            "persistence_enabled",
            "1 when the daemon keeps a log (--dir).",
            Gauge,
            u64::from(p.enabled),
        ),
        m(
            "persistence",
            "persistence_failed",
            "1 when writing the log failed (changes are refused).",
            Gauge,
            u64::from(p.failed),
        ),
        m(
            "persistence",
            "log_records_total",
            "Records appended to the log since the start.",
            Counter,
            p.records,
        ),
        m(
            "persistence",
            "log_bytes",
            "Bytes of log since the last snapshot.",
            Gauge,
            p.log_bytes,
        ),
        m(
            "persistence",
            "log_pending_records",
            "Records appended but not yet durable under the fsync policy.",
            Gauge,
            p.pending,
        ),
        m(
            "persistence",
            "log_fsyncs_total",
            "fdatasync calls on the log.",
            Counter,
            p.fsyncs,
        ),
        m(
            "persistence",
            "snapshot_bytes",
            "Size of the last snapshot.",
            Gauge,
            p.snapshot_bytes,
        ),
        m(
            "persistence",
            "compactions_total",
            "Compactions finished since the start.",
            Counter,
            p.compactions,
        ),
        m(
            "persistence",
            "compaction_in_progress",
            "1 while a compaction runs.",
            Gauge,
            u64::from(p.compacting),
        ),
        m(
            "persistence",
            "restored_sessions",
            "Sessions restored at the start.",
            Gauge,
            p.restored,
        ),
        m(
            "persistence",
            "restore_truncated_bytes",
            "Bytes cut from a torn log tail at the start.",
            Gauge,
            p.truncated_bytes,
        ),
        m(
            "commandstats",
            "cmd_fetch_total",
            "Fetches applied.",
            Counter,
            c.fetch,
        ),
        m(
            "commandstats",
            "cmd_write_total",
            "Whole writes applied.",
            Counter,
            c.write,
        ),
        m(
            "commandstats",
            "cmd_patch_total",
            "Patches applied.",
            Counter,
            c.patch,
        ),
        m(
            "commandstats",
            "cmd_lock_total",
            "Lock requests.",
            Counter,
            c.lock,
        ),
        m(
            "commandstats",
            "cmd_unlock_total",
            "Unlocks.",
            Counter,
            c.unlock,
        ),
        m(
            "commandstats",
            "cmd_touch_total",
            "Touches.",
            Counter,
            c.touch,
        ),
        m(
            "commandstats",
            "cmd_destroy_total",
            "Destroys.",
            Counter,
            c.destroy,
        ),
        m(
            "commandstats",
            "cmd_rotate_total",
            "Rotations.",
            Counter,
            c.rotate,
        ),
        m(
            "commandstats",
            "cmd_other_total",
            "Owner queries, list pages and clears.",
            Counter,
            c.other,
        ),
        m(
            "sessions",
            "sessions",
            "Sessions held (expired ones not yet swept included).",
            Gauge,
            st.sessions,
        ),
        m(
            "sessions",
            "tombstones",
            "Destroyed or rotated ids still refusing writes.",
            Gauge,
            st.tombstones,
        ),
        m(
            "sessions",
            "aliases",
            "Rotated ids still answering reads.",
            Gauge,
            st.aliases,
        ),
        m(
            "sessions",
            "operations_total",
            "Commands applied to the store.",
            Counter,
            st.operations,
        ),
        m(
            "sessions",
            "lock_waits_total",
            "Lock requests that found the lock taken.",
            Counter,
            st.lock_waits,
        ),
        m(
            "sessions",
            "lock_timeouts_total",
            "Lock requests that gave up.",
            Counter,
            st.lock_timeouts,
        ),
        m(
            "sessions",
            "expirations_total",
            "Sessions removed because they expired.",
            Counter,
            st.expirations,
        ),
        m(
            "sessions",
            "evictions_total",
            "Sessions evicted to make room.",
            Counter,
            st.evictions,
        ),
        m(
            "keyspace",
            "keys",
            "Keys of the plain key space (GET/SET).",
            Gauge,
            shared.kv.len() as u64,
        ),
    ]
}

/// The sections `INFO` knows, in the order it shows them.
const SECTIONS: [&str; 8] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "commandstats",
    "sessions",
    "keyspace",
];

fn title(section: &str) -> String {
    let mut t = section.to_string();
    if let Some(f) = t.get_mut(..1) {
        f.make_ascii_uppercase();
    }
    t
}

/// The text of `INFO [section …]`: every section, or those named (`all`/`everything`
/// and `default` name all). An unknown section gives an empty text, as in Redis.
pub(super) fn info(shared: &Shared, wanted: &[String]) -> String {
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let metrics = collect(shared);
    let st = shared.store.stats();
    let mut out = String::new();
    for section in SECTIONS {
        if !all && !wanted.iter().any(|w| w == section) {
            continue;
        }
        out.push_str(&format!("# {}\r\n", title(section)));
        match section {
            "server" => out.push_str(&format!(
                "redis_version:7.2.0\r\nsessyncd_version:{}\r\nredis_mode:standalone\r\n",
                env!("CARGO_PKG_VERSION")
            )),
            "persistence" => out.push_str(&format!(
                "loading:0\r\naof_enabled:{}\r\n",
                u64::from(st.persistence.enabled)
            )),
            "stats" => out.push_str(&format!(
                "total_commands_processed:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\n",
                st.operations, st.expirations, st.evictions
            )),
            _ => {}
        }
        for m in metrics.iter().filter(|m| m.section == section) {
            out.push_str(&format!("{}:{}\r\n", m.name, m.value));
        }
        out.push_str("\r\n");
    }
    out
}

/// The Prometheus text exposition of every metric, each named `sessyncd_<name>`.
pub(super) fn prometheus(shared: &Shared) -> String {
    let mut out = String::new();
    for m in collect(shared) {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        out.push_str(&format!(
            "# HELP sessyncd_{0} {1}\n# TYPE sessyncd_{0} {2}\nsessyncd_{0} {3}\n",
            m.name, m.help, kind, m.value
        ));
    }
    out
}

/// Most metrics connections served at once.
const MAX_SCRAPERS: usize = 16;

/// Most bytes of an HTTP request head read from a metrics client.
const MAX_HEAD: usize = 8192;

/// Serves `GET /metrics` on `l` until `stop`: one request per connection, a head of at
/// most 8 KiB read within 5 s; anything else is a 404 (or a 400 for a head too large).
pub(super) async fn serve_http(
    l: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    // A few scrapers at a time: a flood of connections waits in the listen queue rather
    // than taking the descriptors the sessions' listeners need.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = l.accept() => a,
        };
        let Ok((mut s, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut head = Vec::with_capacity(512);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                    let n = s.read(&mut b).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&b[..n]);
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let (status, body) = if head.len() >= MAX_HEAD {
                ("400 Bad Request", "request head too large\n".to_string())
            } else if head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?") {
                ("200 OK", prometheus(&shared))
            } else {
                (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_string(),
                )
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            })
            .await;
        });
    }
}
