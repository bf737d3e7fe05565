//! Store URLs and the options they carry.
//!
//! `mem://?ttl=30m&absolute_ttl=24h&max_sessions=100000` opens the in-process store.
//! Durations take a unit suffix (`ms`, `s`, `m`, `h`, `d`) or are seconds when bare.
//! Unknown, repeated or malformed options are errors that name the option.

use std::time::Duration;

use crate::error::{Error, Result};

/// What to do when `max_sessions` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Eviction {
    /// Refuse the new session with `Error::Full`.
    #[default]
    None,
    /// Evict the least recently used session (by last recorded access).
    Lru,
}

/// Options of a store, common to every backend. Built from the URL's query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Idle time to live: a session not accessed for this long expires (`ttl`, default 30m).
    pub ttl: Duration,
    /// Absolute cap on a session's life from its creation (`absolute_ttl`, default 24h).
    pub absolute_ttl: Duration,
    /// A touch writes only when at least this fraction of `ttl` has passed since the last
    /// recorded access (`touch_fraction`, 0..=1, default 0.1).
    pub touch_fraction: f64,
    /// How long a destroyed session's tombstone refuses writes (`tombstone_ttl`, default 5m).
    pub tombstone_ttl: Duration,
    /// How long a rotated-away id keeps answering reads (`rotate_grace`, default 10s).
    pub rotate_grace: Duration,
    /// Most live sessions (`max_sessions`, default 1,000,000; 0 = no limit).
    pub max_sessions: usize,
    /// Largest session data as JSON text, in bytes (`max_session_bytes`, default 64 KiB).
    pub max_session_bytes: usize,
    /// What to do at `max_sessions` (`evict=none|lru`, default none).
    pub eviction: Eviction,
    /// Number of shards of the in-process store (`shards`, a power of two, default 64).
    pub shards: usize,
    /// Most memory the in-process store's sessions may take, in bytes (`max_memory`,
    /// e.g. `512mb` or `2gb`; default 0 = no limit): each session counts as its JSON
    /// text plus a fixed overhead (`SESSION_OVERHEAD`). At the cap a new or growing
    /// session evicts (`evict=lru`) or is refused with `Error::Full`.
    pub max_memory: u64,
}

/// What one session counts for `max_memory` beyond its JSON text: its entry, its place
/// in the maps and the index of its keys (measured in docs/benchmarks.md, "Memory").
pub const SESSION_OVERHEAD: u64 = 256;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            ttl: Duration::from_secs(30 * 60),
            absolute_ttl: Duration::from_secs(24 * 3600),
            touch_fraction: 0.1,
            tombstone_ttl: Duration::from_secs(5 * 60),
            rotate_grace: Duration::from_secs(10),
            max_sessions: 1_000_000,
            max_session_bytes: 64 * 1024,
            eviction: Eviction::None,
            shards: 64,
            max_memory: 0,
        }
    }
}

/// Longest duration an option accepts: ten years.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Largest `max_session_bytes`: 16 MiB.
pub const MAX_SESSION_BYTES_LIMIT: usize = 16 * 1024 * 1024;

impl StoreOptions {
    /// Checks that the options make sense together.
    pub fn validate(&self) -> Result<()> {
        if self.ttl.is_zero() {
            return Err(Error::invalid("option ttl must be greater than 0"));
        }
        if self.absolute_ttl < self.ttl {
            return Err(Error::invalid("option absolute_ttl must be at least ttl"));
        }
        if !(0.0..=1.0).contains(&self.touch_fraction) {
            return Err(Error::invalid(
                "option touch_fraction must be between 0 and 1",
            ));
        }
        if self.max_session_bytes < 2 || self.max_session_bytes > MAX_SESSION_BYTES_LIMIT {
            return Err(Error::invalid(format!(
                "option max_session_bytes must be between 2 and {MAX_SESSION_BYTES_LIMIT}"
            )));
        }
        if self.shards == 0 || !self.shards.is_power_of_two() || self.shards > 4096 {
            return Err(Error::invalid(
                "option shards must be a power of two from 1 to 4096",
            ));
        }
        if self.eviction == Eviction::Lru && self.max_sessions == 0 && self.max_memory == 0 {
            return Err(Error::invalid(
                "option evict=lru needs a max_sessions or max_memory limit",
            ));
        }
        Ok(())
    }

    /// The idle time after which a touch writes again, in ms.
    pub fn touch_interval_ms(&self) -> u64 {
        (self.ttl.as_millis() as f64 * self.touch_fraction) as u64
    }

    /// The touch interval of a session whose own idle TTL is `ttl_ms`:
    /// `touch_fraction × ttl_ms`.
    pub fn touch_interval_for(&self, ttl_ms: u64) -> u64 {
        (ttl_ms as f64 * self.touch_fraction) as u64
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// `mem://`: the store inside this process.
    Memory,
    /// `unix:///path/to.sock`, `tcp://:token@host:port` or `tls://:token@host:port`: a
    /// sessyncd (the `client` feature; `tls://` also needs `tls`).
    #[cfg(feature = "client")]
    Remote(RemoteOptions),
    /// `redis://…` or `redis+cluster://…`: Redis or Valkey, standalone or Cluster (the
    /// `redis` feature; `rediss://` also needs `tls`).
    #[cfg(feature = "redis")]
    Redis(RedisOptions),
}

/// How sessions are laid out in Redis.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisLayout {
    /// sessync's own: one hash per session under `<prefix>{<id>}` (`layout=sessync`).
    Native,
    /// connect-redis's: the session JSON, with express-session's `cookie` object, under
    /// `<prefix><id>` (`layout=connect-redis`, prefix `sess:` by default), so an Express
    /// app shares the sessions.
    ConnectRedis,
}

/// How the store's Lua code runs on Redis.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptMode {
    /// A function library (`FCALL`) where the server has functions, else a script
    /// (`script=auto`, the default).
    Auto,
    /// Always a function library: an error on a server without functions
    /// (`script=function`).
    Function,
    /// Always a script, run by `EVALSHA` (`script=eval`).
    Eval,
}

/// Where and how to reach Redis.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Connection URLs of the server, or of the Cluster's seed nodes
    /// (`redis://[user:password@]host:port[/db]`).
    pub nodes: Vec<String>,
    /// A Redis Cluster (`redis+cluster://`).
    pub cluster: bool,
    /// Prefix of every key (`prefix`, default `sessync:`; `sess:` in connect-redis layout).
    pub prefix: String,
    /// The key layout (`layout`, default `sessync`).
    pub layout: RedisLayout,
    /// How long one request may take before it fails (`timeout`, default 10s; a lock's
    /// own wait is added to it).
    pub timeout: Duration,
    /// Most idle connections kept (`pool`, default 16).
    pub pool: usize,
    /// How many connections carry the store's calls that cannot block, pipelined: many
    /// threads' calls share each one, so Redis reads and answers several per system call
    /// (`shared`, default 1; `0`: none, every call takes a connection of `pool`). For a
    /// standalone server over `redis://` only: a Cluster and `rediss://` use `pool`.
    pub shared: usize,
    /// TLS (`rediss://`): the CA certificates (PEM) to trust instead of the system's
    /// (`ca=/path/ca.pem`).
    pub ca: Option<std::path::PathBuf>,
    /// How the Lua code runs (`script`, default `auto`).
    pub script: ScriptMode,
}

/// Where and how to reach a sessyncd.
#[cfg(feature = "client")]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// The daemon's address.
    pub addr: RemoteAddr,
    /// The token for `AUTH`, from the URL's password.
    pub token: Option<String>,
    /// How long one request may take before it fails (`timeout`, default 10s; a lock's
    /// own wait is added to it). Also the limit on connecting and on a TLS handshake.
    pub timeout: Duration,
    /// Most dedicated connections open at once (`pool`, default 16): one per lock request
    /// that may wait (`SESS.LOCK` with a wait), and one per request of any kind when
    /// `shared=0`. Idle ones are kept for reuse.
    pub pool: usize,
    /// How many connections the other requests share, pipelined (`shared`, default 1;
    /// `0`: none, every request takes a dedicated connection of `pool`).
    pub shared: usize,
    /// TLS (`tls://` URLs), with its `ca` and `servername` options.
    pub tls: Option<TlsOptions>,
}

/// How a `tls://` client checks the daemon's certificate.
#[cfg(feature = "client")]
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// A PEM file of the CA certificates to trust (`ca=/path/to/ca.pem`); without it, the
    /// system's trusted roots.
    pub ca: Option<std::path::PathBuf>,
    /// The name the certificate must carry (`servername=`); without it, the URL's host.
    pub server_name: Option<String>,
}

/// A daemon's address.
#[cfg(feature = "client")]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RemoteAddr {
    /// A Unix socket path.
    Unix(std::path::PathBuf),
    /// A host and port.
    Tcp(String, u16),
}

/// Parses a store URL into its target and options.
///
/// A scheme whose backend this build lacks (see the crate's Cargo features) is an
/// `InvalidArgument` naming the feature to enable.
pub fn parse_url(url: &str) -> Result<(Target, StoreOptions)> {
    let url = url.trim();
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| s.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter(|s| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
        .ok_or_else(|| {
            Error::invalid(format!(
                "store URL {url:?}: expected scheme://…, such as mem://?ttl=30m"
            ))
        })?;
    let lower = scheme.to_ascii_lowercase();
    // Before any URL parser: a Cluster's host list is no URL authority.
    if matches!(
        scheme,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster"
    ) && url[scheme.len()..].starts_with("://")
    {
        needs(url, scheme, "redis", cfg!(feature = "redis"))?;
        if scheme.starts_with("rediss") {
            needs(url, scheme, "tls", cfg!(feature = "tls"))?;
        }
        #[cfg(feature = "redis")]
        return parse_redis(url, scheme);
    }
    if matches!(lower.as_str(), "unix" | "tcp" | "tls") {
        if lower == "tls" {
            needs(url, &lower, "tls", cfg!(feature = "tls"))?;
        } else {
            needs(url, &lower, "client", cfg!(feature = "client"))?;
        }
        #[cfg(feature = "client")]
        return parse_remote(url).map(|r| (Target::Remote(r), StoreOptions::default()));
    }
    match lower.as_str() {
        "mem" => parse_mem(url, &url[scheme.len() + 1..]),
        other => Err(Error::invalid(format!(
            "store URL scheme {other:?} is not supported (supported: mem, unix, tcp, tls, \
             redis, rediss, redis+cluster)"
        ))),
    }
}

/// Nothing when this build has (`has`) the Cargo feature a scheme needs; else the
/// error that names it.
fn needs(url: &str, scheme: &str, feature: &str, has: bool) -> Result<()> {
    if has {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "store URL {url:?}: {scheme}:// needs sessync's `{feature}` feature, and this build \
         was compiled without it (enable it in Cargo.toml: features = [\"{feature}\"])"
    )))
}

/// `mem://[/][?options]`: read by hand, so that a build with only `mem://` needs no URL
/// library (as the URL standard reads it: `mem:`, `mem:/` and `mem:///` too). `rest` is
/// what follows `mem:`.
fn parse_mem(url: &str, rest: &str) -> Result<(Target, StoreOptions)> {
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !(place.is_empty() || place == "/") {
        return Err(Error::invalid(format!(
            "store URL {url:?}: mem:// takes no host or path, only options (mem://?ttl=30m)"
        )));
    }
    let mut opts = StoreOptions::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        once(&mut seen, &k)?;
        if !store_option(&mut opts, &k, &v)? {
            return Err(Error::invalid(format!(
                "store URL option {k:?} is unknown (known: ttl, absolute_ttl, touch_fraction, \
                 tombstone_ttl, rotate_grace, max_sessions, max_session_bytes, evict, shards, \
                 max_memory)"
            )));
        }
    }
    opts.validate()?;
    Ok((Target::Memory, opts))
}

fn once(seen: &mut Vec<String>, k: &str) -> Result<()> {
    if seen.iter().any(|s| s == k) {
        return Err(Error::invalid(format!(
            "store URL option {k} is given twice"
        )));
    }
    seen.push(k.to_string());
    Ok(())
}

/// Applies one of the store's own options; false when `k` is not one.
fn store_option(opts: &mut StoreOptions, k: &str, v: &str) -> Result<bool> {
    match k {
        "ttl" => opts.ttl = duration(k, v)?,
        "absolute_ttl" => opts.absolute_ttl = duration(k, v)?,
        "tombstone_ttl" => opts.tombstone_ttl = duration(k, v)?,
        "rotate_grace" => opts.rotate_grace = duration(k, v)?,
        "touch_fraction" => {
            opts.touch_fraction = v
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad(k, v, "a number between 0 and 1"))?
        }
        "max_sessions" => opts.max_sessions = number(k, v)?,
        "max_session_bytes" => opts.max_session_bytes = number(k, v)?,
        "shards" => opts.shards = number(k, v)?,
        "max_memory" => opts.max_memory = byte_size(k, v)?,
        "evict" => {
            opts.eviction = match v {
                "none" => Eviction::None,
                "lru" => Eviction::Lru,
                _ => return Err(bad(k, v, "none or lru")),
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `redis://[user:password@]host[:port][/db]?…`, `redis+cluster://[user:password@]h1:p1,h2:p2?…`.
/// The query holds the connection's options and the store's own (ttl, …), which this
/// process applies: every script call carries them.
#[cfg(feature = "redis")]
fn parse_redis(url: &str, scheme: &str) -> Result<(Target, StoreOptions)> {
    let rest = &url[scheme.len() + 3..];
    let cluster = scheme.ends_with("+cluster");
    let tls = scheme.starts_with("rediss");
    let (hosts_part, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (auth, hosts_part) = match hosts_part.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, hosts_part),
    };
    let (hosts, db) = match hosts_part.split_once('/') {
        Some((h, d)) => (h, d),
        None => (hosts_part, ""),
    };
    if !db.is_empty() && (cluster || db.parse::<u32>().is_err()) {
        return Err(Error::invalid(format!(
            "store URL {url:?}: the path must be a database number (and none on a Cluster)"
        )));
    }
    let mut nodes = Vec::new();
    for h in hosts.split(',') {
        if h.is_empty() {
            return Err(Error::invalid(format!("store URL {url:?}: no host")));
        }
        let hp = if h.starts_with('[') || h.rsplit_once(':').is_none_or(|(_, p)| p.contains(']')) {
            if h.ends_with(']') || !h.contains(':') {
                format!("{h}:6379")
            } else {
                h.to_string()
            }
        } else {
            h.to_string()
        };
        let port_ok = hp
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(Error::invalid(format!(
                "store URL {url:?}: bad host:port {h:?}"
            )));
        }
        let auth = auth.map(|a| format!("{a}@")).unwrap_or_default();
        let db = if db.is_empty() {
            String::new()
        } else {
            format!("/{db}")
        };
        let s = if tls { "rediss" } else { "redis" };
        nodes.push(format!("{s}://{auth}{hp}{db}"));
    }
    if nodes.len() > 1 && !cluster {
        return Err(Error::invalid(format!(
            "store URL {url:?}: several hosts need redis+cluster://"
        )));
    }
    let mut r = RedisOptions {
        nodes,
        cluster,
        prefix: String::new(),
        layout: RedisLayout::Native,
        timeout: Duration::from_secs(10),
        pool: 16,
        shared: if cluster || tls { 0 } else { 1 },
        ca: None,
        script: ScriptMode::Auto,
    };
    let mut prefix = None;
    let mut opts = StoreOptions {
        // Redis bounds its memory itself (maxmemory); a count is opt-in.
        max_sessions: 0,
        ..StoreOptions::default()
    };
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        once(&mut seen, &k)?;
        match &*k {
            "timeout" => r.timeout = duration(&k, &v)?,
            "pool" => {
                r.pool = number(&k, &v)?;
                if r.pool == 0 || r.pool > 4096 {
                    return Err(bad(&k, &v, "a number of connections from 1 to 4096"));
                }
            }
            "shared" => {
                if cluster || tls {
                    return Err(bad(
                        &k,
                        &v,
                        "a standalone redis:// URL (not Cluster, not TLS)",
                    ));
                }
                r.shared = number(&k, &v)?;
                if r.shared > 64 {
                    return Err(bad(&k, &v, "a number of shared connections from 0 to 64"));
                }
            }
            "prefix" => {
                if v.len() > 256 || v.contains(['{', '}']) {
                    return Err(bad(&k, &v, "at most 256 bytes, without { or }"));
                }
                prefix = Some(v.to_string());
            }
            "layout" => {
                r.layout = match &*v {
                    "sessync" => RedisLayout::Native,
                    "connect-redis" => RedisLayout::ConnectRedis,
                    _ => return Err(bad(&k, &v, "sessync or connect-redis")),
                }
            }
            "shards" => return Err(bad(&k, &v, "no shards: Redis has its own")),
            "ca" if tls => {
                if v.is_empty() {
                    return Err(bad(&k, &v, "the path of a PEM file"));
                }
                r.ca = Some(std::path::PathBuf::from(&*v));
            }
            "ca" => return Err(bad(&k, &v, "a rediss:// URL (ca is for TLS)")),
            "script" => {
                r.script = match &*v {
                    "auto" => ScriptMode::Auto,
                    "function" => ScriptMode::Function,
                    "eval" => ScriptMode::Eval,
                    _ => return Err(bad(&k, &v, "auto, function or eval")),
                }
            }
            _ => {
                if !store_option(&mut opts, &k, &v)? {
                    return Err(Error::invalid(format!(
                        "store URL option {k:?} is unknown for Redis (known: prefix, layout, \
                         timeout, pool, shared, ca, script, ttl, absolute_ttl, touch_fraction, tombstone_ttl, \
                         rotate_grace, max_sessions, max_session_bytes, evict)"
                    )));
                }
            }
        }
    }
    r.prefix = prefix.unwrap_or_else(|| match r.layout {
        RedisLayout::Native => "sessync:".into(),
        RedisLayout::ConnectRedis => "sess:".into(),
    });
    opts.validate()?;
    Ok((Target::Redis(r), opts))
}

#[cfg(feature = "client")]
fn parse_remote(url: &str) -> Result<RemoteOptions> {
    let parsed =
        url::Url::parse(url).map_err(|e| Error::invalid(format!("store URL {url:?}: {e}")))?;
    let addr = if parsed.scheme() == "unix" {
        if parsed.host_str().is_some_and(|h| !h.is_empty()) || parsed.path().is_empty() {
            return Err(Error::invalid(format!(
                "store URL {url:?}: a unix URL is unix:///path/to/socket"
            )));
        }
        RemoteAddr::Unix(std::path::PathBuf::from(parsed.path()))
    } else {
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid(format!("store URL {url:?}: no host")))?;
        let port = parsed
            .port()
            .ok_or_else(|| Error::invalid(format!("store URL {url:?}: no port")))?;
        RemoteAddr::Tcp(host.trim_matches(['[', ']']).to_string(), port)
    };
    let token = parsed.password().map(|p| {
        form_urlencoded::parse(format!("t={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    });
    let tls = parsed.scheme() == "tls";
    let mut r = RemoteOptions {
        addr,
        token,
        timeout: Duration::from_secs(10),
        pool: 16,
        shared: 1,
        tls: tls.then(TlsOptions::default),
    };
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        if seen.iter().any(|s| *s == k) {
            return Err(Error::invalid(format!(
                "store URL option {k} is given twice"
            )));
        }
        seen.push(k.to_string());
        match (&*k, r.tls.as_mut()) {
            ("timeout", _) => {
                r.timeout = duration(&k, &v)?;
                if r.timeout.is_zero() {
                    return Err(bad(&k, &v, "a duration greater than 0"));
                }
            }
            ("pool", _) => {
                r.pool = number(&k, &v)?;
                if r.pool == 0 || r.pool > 4096 {
                    return Err(bad(&k, &v, "a number of connections from 1 to 4096"));
                }
            }
            ("shared", _) => {
                r.shared = number(&k, &v)?;
                if r.shared > 64 {
                    return Err(bad(&k, &v, "a number of shared connections from 0 to 64"));
                }
            }
            ("ca", Some(t)) if !v.is_empty() => t.ca = Some(std::path::PathBuf::from(&*v)),
            ("servername", Some(t)) if !v.is_empty() => t.server_name = Some(v.to_string()),
            ("ca" | "servername", None) => {
                return Err(Error::invalid(format!(
                    "store URL option {k} is only for tls:// URLs"
                )));
            }
            ("ca" | "servername", Some(_)) => return Err(bad(&k, &v, "a non-empty value")),
            _ => {
                return Err(Error::invalid(format!(
                    "store URL option {k:?} is unknown for a sessyncd URL (known: timeout, pool, \
                     shared, and for tls:// ca and servername; the store's own options are the \
                     daemon's, set with its --store)"
                )));
            }
        }
    }
    Ok(r)
}

fn bad(key: &str, value: &str, want: &str) -> Error {
    Error::invalid(format!("store URL option {key}={value:?}: expected {want}"))
}

/// A size in bytes: a number with an optional unit `b`, `kb`, `mb`, `gb` (powers of
/// 1024; `k`, `m`, `g`, `kib`, `mib`, `gib` too, in any case).
pub(crate) fn byte_size(key: &str, value: &str) -> Result<u64> {
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad(key, value, "a size such as 512mb or 2gb")),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| bad(key, value, "a size such as 512mb or 2gb"))
}

fn number(key: &str, value: &str) -> Result<usize> {
    value
        .parse::<usize>()
        .map_err(|_| bad(key, value, "a non-negative integer"))
}

/// Parses `90`, `90s`, `1500ms`, `30m`, `2h`, `1d`.
pub fn duration(key: &str, value: &str) -> Result<Duration> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        bad(
            key,
            value,
            "a duration such as 90, 90s, 1500ms, 30m, 2h or 1d",
        )
    })?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(|| {
        bad(
            key,
            value,
            "a duration such as 90, 90s, 1500ms, 30m, 2h or 1d",
        )
    })?;
    let d = Duration::from_millis(ms);
    if d > MAX_DURATION {
        return Err(bad(key, value, "a duration of at most ten years"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let (t, o) =
            parse_url("mem://?ttl=90&absolute_ttl=2h&max_sessions=5&evict=lru&rotate_grace=1500ms")
                .unwrap();
        assert_eq!(t, Target::Memory);
        assert_eq!(o.ttl, Duration::from_secs(90));
        assert_eq!(o.absolute_ttl, Duration::from_secs(7200));
        assert_eq!(o.max_sessions, 5);
        assert_eq!(o.eviction, Eviction::Lru);
        assert_eq!(o.rotate_grace, Duration::from_millis(1500));
        assert_eq!(parse_url("mem://").unwrap().1, StoreOptions::default());
    }

    #[test]
    fn errors_name_the_wrong_part() {
        let err = |u: &str| parse_url(u).unwrap_err().to_string();
        assert!(err("nonsense").contains("store URL"));
        assert!(err("ftp://x").contains("\"ftp\""));
        assert!(err("mem://host").contains("no host"));
        assert!(err("mem://?ttl=abc").contains("ttl"));
        assert!(err("mem://?ttl=5x").contains("ttl"));
        assert!(err("mem://?colour=red").contains("colour"));
        assert!(err("mem://?ttl=1&ttl=2").contains("twice"));
        assert!(err("mem://?ttl=0").contains("ttl"));
        assert!(err("mem://?ttl=2h&absolute_ttl=1h").contains("absolute_ttl"));
        assert!(err("mem://?max_sessions=-1").contains("max_sessions"));
        assert!(err("mem://?evict=fifo").contains("evict"));
        assert!(err("mem://?shards=3").contains("shards"));
        assert!(err("mem://?touch_fraction=2").contains("touch_fraction"));
        assert!(err("mem://?touch_fraction=NaN").contains("touch_fraction"));
        assert!(err("mem://?ttl=99999999999999999999").contains("ttl"));
    }

    #[cfg(all(feature = "client", feature = "tls"))]
    fn remote(url: &str) -> RemoteOptions {
        match parse_url(url).unwrap().0 {
            Target::Remote(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    #[cfg(feature = "redis")]
    fn parses_redis_urls() {
        let redis = |u: &str| match parse_url(u) {
            Ok((Target::Redis(r), o)) => (r, o),
            other => panic!("{u}: {other:?}"),
        };
        let (r, o) = redis("redis://127.0.0.1:6379/2?ttl=10m&prefix=app:&pool=4");
        assert_eq!(r.nodes, vec!["redis://127.0.0.1:6379/2".to_string()]);
        assert!(!r.cluster);
        assert_eq!((r.prefix.as_str(), r.pool, r.shared), ("app:", 4, 1));
        assert_eq!(r.layout, RedisLayout::Native);
        let (r, _) = redis("redis://h:1/?shared=0");
        assert_eq!(r.shared, 0);
        let (r, _) = redis("redis://h:1/?shared=3");
        assert_eq!(r.shared, 3);
        assert_eq!(o.ttl, Duration::from_secs(600));
        assert_eq!(o.max_sessions, 0, "Redis bounds memory itself unless told");

        let (r, _) = redis("redis://:p%40ss@h:7000");
        assert_eq!(r.nodes, vec!["redis://:p%40ss@h:7000".to_string()]);
        let (r, _) = redis("redis://localhost");
        assert_eq!(r.nodes, vec!["redis://localhost:6379".to_string()]);

        let (r, o) = redis("redis+cluster://a:7000,b:7001,[::1]:7002/?max_sessions=9&evict=lru");
        assert!(r.cluster);
        assert_eq!(r.shared, 0, "a Cluster's calls go through its own client");
        assert_eq!(r.nodes.len(), 3);
        assert_eq!(r.nodes[2], "redis://[::1]:7002");
        assert_eq!(o.max_sessions, 9);

        let (r, _) = redis("redis://h:1/?layout=connect-redis");
        assert_eq!(
            (r.layout, r.prefix.as_str()),
            (RedisLayout::ConnectRedis, "sess:")
        );
        let (r, _) = redis("rediss://h:6380/?ca=/etc/ca.pem&script=eval");
        assert_eq!(r.nodes, vec!["rediss://h:6380".to_string()]);
        assert_eq!(r.ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(r.script, ScriptMode::Eval);
        assert_eq!(r.shared, 0, "rediss:// calls go through the pool");
    }

    #[test]
    #[cfg(feature = "redis")]
    fn redis_url_errors_name_the_wrong_part() {
        let err = |u: &str| match parse_url(u) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{u}: expected an error, got {other:?}"),
        };
        assert!(err("redis://h:1,h:2").contains("redis+cluster"));
        assert!(err("redis://h:0").contains("bad host:port"));
        assert!(err("redis://h:99999").contains("bad host:port"));
        assert!(err("redis://h:1/x").contains("database number"));
        assert!(err("redis+cluster://h:1/3").contains("database number"));
        assert!(err("redis://h:1/?prefix=a{b}").contains("prefix"));
        assert!(err("redis://h:1/?layout=php").contains("layout"));
        assert!(err("redis://h:1/?ca=/x").contains("rediss://"));
        assert!(err("redis://h:1/?shards=4").contains("shards"));
        assert!(err("redis://h:1/?ttl=1&ttl=2").contains("twice"));
        assert!(err("redis://h:1/?nope=1").contains("unknown for Redis"));
        assert!(err("redis://h:1/?script=lua").contains("script"));
        assert!(err("redis://h:1/?shared=65").contains("0 to 64"));
        assert!(err("redis://h:1/?shared=x").contains("shared"));
        assert!(err("rediss://h:1/?shared=1").contains("standalone redis://"));
        assert!(err("redis+cluster://h:1/?shared=1").contains("standalone redis://"));
        assert!(err("redis://,/").contains("no host"));
    }

    #[test]
    #[cfg(all(feature = "client", feature = "tls"))]
    fn parses_sessyncd_urls() {
        let r = remote("unix:///run/s.sock");
        assert_eq!(r.addr, RemoteAddr::Unix("/run/s.sock".into()));
        assert_eq!((r.pool, r.shared, r.tls), (16, 1, None));
        let r = remote("tcp://:se%2Fcret@db.example:7700?pool=4&shared=0&timeout=1500ms");
        assert_eq!(r.addr, RemoteAddr::Tcp("db.example".into(), 7700));
        assert_eq!(r.token.as_deref(), Some("se/cret"));
        assert_eq!((r.pool, r.shared), (4, 0));
        assert_eq!(r.timeout, Duration::from_millis(1500));
        let r =
            remote("tls://:t@127.0.0.1:7700?ca=/etc/sessync/ca.pem&servername=sessync.internal");
        assert_eq!(r.addr, RemoteAddr::Tcp("127.0.0.1".into(), 7700));
        let t = r.tls.unwrap();
        assert_eq!(
            t.ca.as_deref(),
            Some(std::path::Path::new("/etc/sessync/ca.pem"))
        );
        assert_eq!(t.server_name.as_deref(), Some("sessync.internal"));
        assert_eq!(remote("tls://h:1").tls, Some(TlsOptions::default()));

        let err = |u: &str| parse_url(u).unwrap_err().to_string();
        assert!(err("tcp://h:1?ca=/x.pem").contains("only for tls://"));
        assert!(err("tls://h:1?ca=").contains("ca"));
        assert!(err("tls://h:1?pool=1&pool=2").contains("twice"));
        assert!(err("tls://h:1?shared=65").contains("shared"));
        assert!(err("tls://h:1?timeout=0").contains("timeout"));
        assert!(err("tls://h?x=1").contains("no port"));
        assert!(err("tls://h:1?colour=red").contains("colour"));
    }

    #[test]
    fn schemes_of_a_missing_feature_name_it() {
        let err = |u: &str| match parse_url(u) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{u}: expected InvalidArgument, got {other:?}"),
        };
        let cases = [
            ("redis://h:1", "redis", cfg!(feature = "redis")),
            ("redis+cluster://a:1,b:2", "redis", cfg!(feature = "redis")),
            ("unix:///run/s.sock", "client", cfg!(feature = "client")),
            ("tcp://h:1", "client", cfg!(feature = "client")),
            ("tls://h:1", "tls", cfg!(feature = "tls")),
            (
                "rediss://h:1",
                if cfg!(feature = "redis") {
                    "tls"
                } else {
                    "redis"
                },
                cfg!(all(feature = "redis", feature = "tls")),
            ),
        ];
        for (url, feature, built) in cases {
            if !built {
                let m = err(url);
                assert!(m.contains(&format!("`{feature}` feature")), "{url}: {m}");
            }
        }
        // mem:// needs no feature, with or without a slash, options or a fragment.
        assert_eq!(
            parse_url("mem:///?ttl=1m#x").unwrap().1.ttl,
            Duration::from_secs(60)
        );
        assert_eq!(parse_url("mem:").unwrap().0, Target::Memory);
        assert!(err("mem://x/").contains("no host"));
        assert!(err("://x").contains("scheme://"));
    }
}
