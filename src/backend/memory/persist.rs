//! Persistence of a `mem://` store (what sessyncd uses to survive a restart): an
//! append-only log of the state each change left behind, compacted into a snapshot.
//!
//! The log does not record commands but their effect: after a command changes a session,
//! the session's whole new state (or its death: tombstone, rotation alias, or nothing)
//! is appended, under the shard's lock, so the records of one id are in the log in the
//! order the changes happened. Replaying is therefore "last record of an id wins": it
//! needs no clock, no random ids and no lock queue, and replaying a record twice does no
//! harm, which is what lets compaction run while the store serves (see `compact`).
//!
//! A directory holds:
//! - `snapshot`: every id's state at one moment, and the number of the first log
//!   segment to replay on top of it;
//! - `log.NNNNNNNNNNNNNNNNNNNN`: segments of the log, replayed in order;
//! - `LOCK`: held (`flock`) by the process using the directory.
//!
//! Each file starts with a header (magic, format version, a number); each record is
//! `[u32 length][u32 CRC-32 of the payload][payload]`, little-endian. A record cut short
//! or failing its checksum at the end of the last segment is a torn write: the segment
//! is truncated to the last whole record and the loss is logged. Damage anywhere else
//! refuses to start, rather than load a store that silently lacks sessions.

use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};

use crate::{
    error::{Error, Result},
    session::{SessionData, SessionId},
};

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// A change is acknowledged only after its record was written and `fdatasync`ed
    /// (records of concurrent callers share one sync).
    Always,
    /// Records are written by a background thread as they come and synced once a
    /// second: a killed process loses what was not yet written (microseconds), a lost
    /// machine up to about a second.
    EverySec,
    /// Records are written as they come; the operating system decides when they reach
    /// the disk.
    No,
}

impl std::str::FromStr for Fsync {
    type Err = Error;
    fn from_str(s: &str) -> Result<Fsync> {
        match s {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::EverySec),
            "no" => Ok(Fsync::No),
            _ => Err(Error::invalid(format!(
                "fsync policy must be always, everysec or no, got {s:?}"
            ))),
        }
    }
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        })
    }
}

/// Where and how a `mem://` store keeps its sessions across restarts.
#[derive(Debug, Clone)]
pub struct Persistence {
    /// The directory of the snapshot and the log (created if missing).
    pub dir: PathBuf,
    /// When records reach the disk.
    pub fsync: Fsync,
    /// The log is compacted into a new snapshot once it has grown by this many bytes
    /// and by more than the last snapshot's size.
    pub compact_min_bytes: u64,
}

impl Persistence {
    /// Persistence in `dir` with the defaults: `everysec`, compaction from 64 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> Persistence {
        Persistence {
            dir: dir.into(),
            fsync: Fsync::EverySec,
            compact_min_bytes: 64 << 20,
        }
    }
}

/// The state of persistence, for `INFO` and the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PersistStats {
    /// Whether the store persists at all.
    pub enabled: bool,
    /// Records appended since the start.
    pub records: u64,
    /// Bytes of log written since the last snapshot.
    pub log_bytes: u64,
    /// Size of the last snapshot.
    pub snapshot_bytes: u64,
    /// Compactions finished since the start.
    pub compactions: u64,
    /// Whether a compaction is running.
    pub compacting: bool,
    /// `fdatasync` calls since the start.
    pub fsyncs: u64,
    /// Records appended but not yet known durable under the policy.
    pub pending: u64,
    /// Whether writing failed (the store then refuses changes).
    pub failed: bool,
    /// Sessions restored at the start.
    pub restored: u64,
    /// Bytes cut from a torn log tail at the start.
    pub truncated_bytes: u64,
}

const LOG_MAGIC: &[u8; 8] = b"SESSYNCL";
const SNAP_MAGIC: &[u8; 8] = b"SESSYNCS";
/// The format version of both files; a reader refuses any other.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8;
/// How long after a failed compaction the next is tried.
const COMPACTION_RETRY: Duration = Duration::from_secs(5);
/// Largest record accepted when reading (a session is at most 16 MiB of JSON).
const MAX_RECORD: u32 = 64 << 20;

const TAG_LIVE: u8 = 1;
const TAG_DEAD: u8 = 2;
const TAG_END: u8 = 0xFF;

/// A live session as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Saved {
    pub data: Arc<SessionData>,
    pub version: u64,
    pub created: u64,
    pub last_access: u64,
    pub expires_at: u64,
    pub owner: Option<Arc<str>>,
    pub ttl: Option<u64>,
    pub fence: u64,
    /// The lock: (token, lease end).
    pub lock: Option<(u64, u64)>,
}

/// What an id is, as one record says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State {
    Live(Saved),
    /// No session: maybe a tombstone (until), maybe a rotation alias (successor, until).
    Dead {
        tomb: Option<u64>,
        alias: Option<(SessionId, u64)>,
    },
}

impl State {
    /// Whether the state still matters at `now` (a reader drops the rest).
    pub fn alive_at(&self, now: u64) -> bool {
        match self {
            State::Live(s) => s.expires_at > now,
            State::Dead { tomb, alias } => {
                tomb.is_some_and(|t| t > now) || alias.is_some_and(|(_, t)| t > now)
            }
        }
    }
}

// ----- encoding -----

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_u64(out, v);
        }
        None => out.push(0),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: &SessionId) {
    out.push(id.as_bytes().len() as u8);
    out.extend_from_slice(id.as_bytes());
}

/// Appends one framed record to `out`.
pub(crate) fn encode(id: &SessionId, st: &State, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    match st {
        State::Live(s) => {
            out.push(TAG_LIVE);
            put_id(out, id);
            for v in [s.version, s.created, s.last_access, s.expires_at, s.fence] {
                put_u64(out, v);
            }
            put_opt(out, s.ttl);
            match s.lock {
                Some((token, until)) => {
                    out.push(1);
                    put_u64(out, token);
                    put_u64(out, until);
                }
                None => out.push(0),
            }
            match &s.owner {
                Some(o) => {
                    out.push(1);
                    put_bytes(out, o.as_bytes());
                }
                None => out.push(0),
            }
            put_bytes(out, s.data.to_json().as_bytes());
        }
        State::Dead { tomb, alias } => {
            out.push(TAG_DEAD);
            put_id(out, id);
            put_opt(out, *tomb);
            match alias {
                Some((to, until)) => {
                    out.push(1);
                    put_id(out, to);
                    put_u64(out, *until);
                }
                None => out.push(0),
            }
        }
    }
    frame(out, start);
}

/// Fills in the length and checksum of the record that starts at `start`.
fn frame(out: &mut [u8], start: usize) {
    let payload = &out[start + 8..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A cursor over a record's payload; every read checks the bounds.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("record shorter than its fields"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn flag(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad("bad flag byte")),
        }
    }
    fn opt(&mut self) -> Result<Option<u64>> {
        Ok(if self.flag()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().unwrap_or([0; 4]));
        self.take(n as usize)
    }
    fn str(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| bad("text is not UTF-8"))
    }
    fn id(&mut self) -> Result<SessionId> {
        let n = self.u8()? as usize;
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| bad("id is not UTF-8"))?;
        SessionId::parse(s).map_err(|_| bad("bad session id"))
    }
}

fn bad(what: &str) -> Error {
    Error::Backend(format!("persistence: {what}"))
}

/// Decodes one record's payload.
pub(crate) fn decode(payload: &[u8]) -> Result<Option<(SessionId, State)>> {
    let mut c = Cur(payload);
    let rec = match c.u8()? {
        TAG_LIVE => {
            let id = c.id()?;
            let [version, created, last_access, expires_at, fence] =
                [c.u64()?, c.u64()?, c.u64()?, c.u64()?, c.u64()?];
            let ttl = c.opt()?;
            let lock = if c.flag()? {
                Some((c.u64()?, c.u64()?))
            } else {
                None
            };
            let owner = if c.flag()? {
                Some(Arc::from(c.str()?))
            } else {
                None
            };
            let data = SessionData::from_json(c.str()?)?;
            let s = Saved {
                data: Arc::new(data),
                version,
                created,
                last_access,
                expires_at,
                owner,
                ttl,
                fence,
                lock,
            };
            Some((id, State::Live(s)))
        }
        TAG_DEAD => {
            let id = c.id()?;
            let tomb = c.opt()?;
            let alias = if c.flag()? {
                Some((c.id()?, c.u64()?))
            } else {
                None
            };
            Some((id, State::Dead { tomb, alias }))
        }
        TAG_END => None,
        t => return Err(bad(&format!("unknown record tag {t}"))),
    };
    if !c.0.is_empty() {
        return Err(bad("record longer than its fields"));
    }
    Ok(rec)
}

fn header(magic: &[u8; 8], n: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(magic);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    put_u64(&mut h, n);
    h
}

/// The header of log segment `n` (for the fuzz target of the reader).
#[cfg(any(test, feature = "daemon"))]
pub(crate) fn segment_header(n: u64) -> Vec<u8> {
    header(LOG_MAGIC, n)
}

/// Reads a file's header: its number. Refuses another magic or format version.
fn read_header(bytes: &[u8], magic: &[u8; 8], what: &str) -> Result<u64> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != magic {
        return Err(bad(&format!("{what} has no valid header")));
    }
    let v = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4]));
    if v != FORMAT_VERSION {
        return Err(bad(&format!(
            "{what} has format version {v}; this build reads {FORMAT_VERSION}"
        )));
    }
    Ok(u64::from_le_bytes(
        bytes[12..20].try_into().unwrap_or([0; 8]),
    ))
}

/// How a run of records ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Every byte was a whole, valid record.
    Clean,
    /// The records stop being valid at this offset (a torn write, or damage).
    Bad { at: usize, why: String },
    /// A whole record, its checksum right, that this build cannot read: not a torn
    /// write (a newer writer, or a bug), so never cut away.
    Invalid { at: usize, why: String },
}

/// Reads the framed records in `bytes` (after a header), calling `f` on each.
pub(crate) fn read_records(bytes: &[u8], mut f: impl FnMut(Option<(SessionId, State)>)) -> Tail {
    let mut at = HEADER_LEN.min(bytes.len());
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 8 {
            return Tail::Bad {
                at,
                why: "record header cut short".into(),
            };
        }
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap_or([0; 4]));
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or([0; 4]));
        if len > MAX_RECORD {
            return Tail::Bad {
                at,
                why: format!("record length {len} is past the limit"),
            };
        }
        let Some(payload) = rest.get(8..8 + len as usize) else {
            return Tail::Bad {
                at,
                why: "record cut short".into(),
            };
        };
        if crc32fast::hash(payload) != crc {
            return Tail::Bad {
                at,
                why: "checksum mismatch".into(),
            };
        }
        match decode(payload) {
            Ok(r) => f(r),
            Err(e) => {
                return Tail::Invalid {
                    at,
                    why: e.to_string(),
                };
            }
        }
        at += 8 + len as usize;
    }
    Tail::Clean
}

// ----- the directory -----

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("log.{n:020}"))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Backend(format!("persistence: {what} {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("cannot sync directory", dir, e))
}

/// The log segments in `dir`, in order.
fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| io_err("cannot read", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| io_err("cannot read", dir, e))?;
        let name = ent.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("log."))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// What a directory held at the start.
pub(crate) struct Restored {
    /// Every id's last state, in no order.
    pub states: std::collections::HashMap<SessionId, State, crate::session::IdHash>,
    /// The segment to write next.
    pub next_segment: u64,
    pub snapshot_bytes: u64,
    pub log_bytes: u64,
    pub truncated_bytes: u64,
}

/// Reads the snapshot and the log of `dir` into the last state of every id, truncating
/// a torn tail of the last segment.
pub(crate) fn restore(dir: &Path) -> Result<Restored> {
    let mut states = std::collections::HashMap::default();
    let mut r = Restored {
        states: std::collections::HashMap::default(),
        next_segment: 1,
        snapshot_bytes: 0,
        log_bytes: 0,
        truncated_bytes: 0,
    };
    let snap = dir.join("snapshot");
    let mut first = 1;
    match std::fs::read(&snap) {
        Ok(bytes) => {
            first = read_header(&bytes, SNAP_MAGIC, "the snapshot")?;
            let mut ended = false;
            let tail = read_records(&bytes, |rec| match rec {
                Some((id, st)) => {
                    states.insert(id, st);
                }
                None => ended = true,
            });
            if tail != Tail::Clean || !ended {
                // A snapshot is renamed into place only once whole: damage is not a torn
                // write, and loading part of it would lose sessions without a word.
                return Err(bad(&format!(
                    "the snapshot {} is damaged ({tail:?}, end record: {ended})",
                    snap.display()
                )));
            }
            r.snapshot_bytes = bytes.len() as u64;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot read", &snap, e)),
    }
    let segs: Vec<u64> = segments(dir)?.into_iter().filter(|&n| n >= first).collect();
    r.next_segment = segs.last().map_or(first, |n| n + 1);
    for (i, &n) in segs.iter().enumerate() {
        let path = segment_path(dir, n);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io_err("cannot read", &path, e))?;
        let last = i + 1 == segs.len();
        if bytes.len() < HEADER_LEN && last {
            // Created but its header never written whole: nothing in it.
            r.truncated_bytes += bytes.len() as u64;
            std::fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
            tracing::warn!(
                "persistence: removed the empty log segment {}",
                path.display()
            );
            continue;
        }
        let num = read_header(&bytes, LOG_MAGIC, &format!("log {}", path.display()))?;
        if num != n {
            return Err(bad(&format!(
                "log {} says it is segment {num}",
                path.display()
            )));
        }
        let tail = read_records(&bytes, |rec| {
            if let Some((id, st)) = rec {
                states.insert(id, st);
            }
        });
        match tail {
            Tail::Clean => r.log_bytes += bytes.len() as u64,
            Tail::Bad { at, why } if last => {
                let cut = bytes.len() - at;
                tracing::warn!(
                    "persistence: the log {} ends in a torn record at byte {at} ({why}); \
                     truncated {cut} bytes to the last whole record",
                    path.display()
                );
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| {
                        f.set_len(at as u64)?;
                        f.sync_all()
                    })
                    .map_err(|e| io_err("cannot truncate", &path, e))?;
                r.truncated_bytes += cut as u64;
                r.log_bytes += at as u64;
            }
            Tail::Bad { at, why } => {
                return Err(bad(&format!(
                    "the log {} is damaged at byte {at} ({why}) and is not the last \
                     segment; refusing to start without the sessions after it",
                    path.display()
                )));
            }
            Tail::Invalid { at, why } => {
                return Err(bad(&format!(
                    "the log {} holds a record this build cannot read at byte {at} \
                     ({why}); refusing to start rather than cut it away",
                    path.display()
                )));
            }
        }
    }
    r.states = states;
    Ok(r)
}

/// Takes the directory's lock, so two processes never write one log.
pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("cannot open", &path, e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(Error::Backend(format!(
            "persistence: {} is in use by another process",
            dir.display()
        )));
    }
    Ok(f)
}

/// A snapshot being written: to a temporary file, renamed into place once whole and
/// synced, so a reader finds the old snapshot or the new one, never part of one.
pub(crate) struct SnapshotWriter {
    tmp: PathBuf,
    w: BufWriter<File>,
    buf: Vec<u8>,
    size: u64,
}

impl SnapshotWriter {
    /// Starts a snapshot whose replay continues with segment `first`.
    pub fn create(dir: &Path, first: u64) -> Result<SnapshotWriter> {
        let tmp = dir.join("snapshot.tmp");
        let file = File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        Ok(SnapshotWriter {
            tmp,
            w: BufWriter::with_capacity(1 << 20, file),
            buf: header(SNAP_MAGIC, first),
            size: 0,
        })
    }

    /// Adds one id's state.
    pub fn add(&mut self, id: &SessionId, st: &State) -> Result<()> {
        encode(id, st, &mut self.buf);
        if self.buf.len() >= 1 << 16 {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.size += self.buf.len() as u64;
        let r = self.w.write_all(&self.buf);
        self.buf.clear();
        r.map_err(|e| io_err("cannot write", &self.tmp, e))
    }

    /// Ends the snapshot, syncs it and renames it into place; returns its size.
    pub fn finish(mut self, dir: &Path) -> Result<u64> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 8]);
        self.buf.push(TAG_END);
        frame(&mut self.buf, start);
        self.spill()?;
        let tmp = self.tmp.clone();
        self.w
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        let snap = dir.join("snapshot");
        std::fs::rename(&tmp, &snap).map_err(|e| io_err("cannot rename", &tmp, e))?;
        sync_dir(dir)?;
        Ok(self.size)
    }
}

/// Removes the segments before `first` (a snapshot now covers them).
pub(crate) fn remove_segments_before(dir: &Path, first: u64) -> Result<()> {
    for n in segments(dir)? {
        if n < first {
            let p = segment_path(dir, n);
            std::fs::remove_file(&p).map_err(|e| io_err("cannot remove", &p, e))?;
        }
    }
    sync_dir(dir)
}

// ----- the writer -----

struct JState {
    /// Records appended and not yet handed to a writer.
    buf: Vec<u8>,
    /// Records appended so far (their sequence numbers are 1..=appended).
    appended: u64,
    /// Records whose bytes are in the buffer taken by the writer in flight, or written.
    taken: u64,
    /// Records known durable under the policy.
    durable: u64,
    /// A writer is writing (outside the mutex).
    writing: bool,
    file: Arc<File>,
    segment: u64,
    /// Bytes written to segments since the last snapshot.
    log_bytes: u64,
    snapshot_bytes: u64,
    last_sync: Instant,
    /// Written but not yet synced (`everysec`).
    unsynced: bool,
    failed: Option<String>,
    stop: bool,
    compacting: bool,
    compact_wanted: bool,
    /// After a failed compaction: not before then.
    retry_at: Option<Instant>,
    compactions: u64,
    fsyncs: u64,
    restored: u64,
    truncated_bytes: u64,
}

/// The log writer of one store.
pub(crate) struct Journal {
    st: Mutex<JState>,
    /// Woken when a write finished, a record arrived for the writer thread, or a
    /// compaction is wanted.
    cv: Condvar,
    pub dir: PathBuf,
    pub fsync: Fsync,
    compact_min: u64,
    _lock: File,
}

impl Journal {
    /// Opens segment `segment` for writing in a directory already restored.
    pub fn open(p: &Persistence, lock: File, r: &Restored) -> Result<Journal> {
        let file = Self::new_segment(&p.dir, r.next_segment)?;
        Ok(Journal {
            st: Mutex::new(JState {
                buf: Vec::new(),
                appended: 0,
                taken: 0,
                durable: 0,
                writing: false,
                file: Arc::new(file),
                segment: r.next_segment,
                log_bytes: r.log_bytes + HEADER_LEN as u64,
                snapshot_bytes: r.snapshot_bytes,
                last_sync: Instant::now(),
                unsynced: false,
                failed: None,
                stop: false,
                compacting: false,
                compact_wanted: false,
                retry_at: None,
                compactions: 0,
                fsyncs: 0,
                restored: 0,
                truncated_bytes: r.truncated_bytes,
            }),
            cv: Condvar::new(),
            dir: p.dir.clone(),
            fsync: p.fsync,
            compact_min: p.compact_min_bytes,
            _lock: lock,
        })
    }

    fn new_segment(dir: &Path, n: u64) -> Result<File> {
        let path = segment_path(dir, n);
        let open = || OpenOptions::new().create_new(true).append(true).open(&path);
        let mut f = match open() {
            // Left by an earlier attempt that failed before the switch: nothing was ever
            // appended to it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&path).and_then(|_| open())
            }
            r => r,
        }
        .map_err(|e| io_err("cannot create", &path, e))?;
        f.write_all(&header(LOG_MAGIC, n))
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err("cannot write", &path, e))?;
        sync_dir(dir)?;
        Ok(f)
    }

    /// Notes how many sessions were restored, for the stats.
    pub fn set_restored(&self, n: u64) {
        self.st.lock().restored = n;
    }

    /// Refuses changes once writing failed: the store would acknowledge what it cannot
    /// keep.
    pub fn check(&self) -> Result<()> {
        match &self.st.lock().failed {
            Some(m) => Err(Error::Backend(format!(
                "persistence failed, changes are refused until a restart: {m}"
            ))),
            None => Ok(()),
        }
    }

    /// Appends one record (called under the shard's lock, so per id the log's order is
    /// the order of the changes).
    pub fn append(&self, id: &SessionId, st: &State) {
        let mut s = self.st.lock();
        if s.failed.is_some() {
            // Nothing will write it: keeping it would only grow the buffer.
            return;
        }
        let was_empty = s.buf.is_empty();
        encode(id, st, &mut s.buf);
        s.appended += 1;
        if was_empty && self.fsync != Fsync::Always {
            self.cv.notify_all();
        }
    }

    /// Returns once every record appended so far is durable under the policy (at once
    /// for `everysec` and `no`), or the error that stopped it.
    pub fn commit(&self) -> Result<()> {
        let mut s = self.st.lock();
        if self.fsync != Fsync::Always {
            return match &s.failed {
                Some(m) => Err(Error::Backend(format!("persistence failed: {m}"))),
                None => Ok(()),
            };
        }
        let want = s.appended;
        loop {
            if let Some(m) = &s.failed {
                return Err(Error::Backend(format!("persistence failed: {m}")));
            }
            if s.durable >= want {
                return Ok(());
            }
            if s.writing {
                self.cv.wait(&mut s);
            } else {
                self.write_out(&mut s, true);
            }
        }
    }

    /// Writes the buffer to the current segment (outside the mutex, which `s` holds on
    /// entry and exit), syncing if `sync`.
    fn write_out(&self, s: &mut parking_lot::MutexGuard<'_, JState>, sync: bool) {
        let buf = std::mem::take(&mut s.buf);
        let upto = s.appended;
        s.taken = upto;
        s.writing = true;
        let file = s.file.clone();
        let res = parking_lot::MutexGuard::unlocked(s, || {
            let mut f: &File = &file;
            f.write_all(&buf)?;
            if sync {
                file.sync_data()?;
            }
            Ok::<_, std::io::Error>(())
        });
        s.writing = false;
        match res {
            Ok(()) => {
                s.log_bytes += buf.len() as u64;
                if sync {
                    s.fsyncs += 1;
                    s.last_sync = Instant::now();
                    s.unsynced = false;
                    s.durable = upto;
                } else {
                    s.unsynced |= !buf.is_empty();
                    if self.fsync == Fsync::No {
                        s.durable = upto;
                    }
                }
                if !s.compacting && s.log_bytes > self.compact_min && s.log_bytes > s.snapshot_bytes
                {
                    s.compact_wanted = true;
                }
            }
            Err(e) => {
                tracing::error!("persistence: writing the log failed: {e}");
                s.failed = Some(e.to_string());
                s.buf = Vec::new();
            }
        }
        // Reuse the allocation when nothing arrived meanwhile.
        if s.buf.is_empty() {
            let mut buf = buf;
            buf.clear();
            if buf.capacity() <= 1 << 20 {
                s.buf = buf;
            }
        }
        self.cv.notify_all();
    }

    /// The background writer of `everysec` and `no`: writes records as they come, syncs
    /// once a second (`everysec`). Returns when the journal stops.
    pub fn run_writer(&self) {
        let mut s = self.st.lock();
        loop {
            if s.failed.is_some() {
                return;
            }
            // `always` syncs what its callers wait for; the thread writes the rest (an
            // expiry, a touch on a read) and syncs it within a second, as `everysec`.
            let periodic = self.fsync != Fsync::No;
            let due = periodic && s.unsynced && s.last_sync.elapsed() >= Duration::from_secs(1);
            if s.writing {
                self.cv.wait_for(&mut s, Duration::from_millis(250));
                continue;
            }
            if !s.buf.is_empty() || due {
                let sync = periodic && s.last_sync.elapsed() >= Duration::from_secs(1);
                self.write_out(&mut s, sync);
                continue;
            }
            if s.stop {
                return;
            }
            self.cv.wait_for(&mut s, Duration::from_millis(250));
        }
    }

    /// Writes and syncs what is pending (at shutdown, and before a segment switch).
    pub fn flush(&self) -> Result<()> {
        let mut s = self.st.lock();
        let want = s.appended;
        self.flush_locked(&mut s, want);
        match &s.failed {
            Some(m) => Err(Error::Backend(format!("persistence failed: {m}"))),
            None => Ok(()),
        }
    }

    /// Writes and syncs until every record up to `want` is on disk. Bounded: each write
    /// takes the whole buffer, so at most two are needed however fast records arrive.
    fn flush_locked(&self, s: &mut parking_lot::MutexGuard<'_, JState>, want: u64) {
        loop {
            if s.failed.is_some() {
                return;
            }
            if s.writing {
                self.cv.wait(s);
                continue;
            }
            if s.durable >= want && !s.unsynced {
                return;
            }
            self.write_out(s, true);
        }
    }

    /// Stops the writer thread after a last flush.
    pub fn stop(&self) {
        let _ = self.flush();
        self.st.lock().stop = true;
        self.cv.notify_all();
    }

    /// Waits until a compaction is wanted (or the journal stops: false).
    pub fn wait_compaction(&self) -> bool {
        let mut s = self.st.lock();
        loop {
            if s.stop {
                return false;
            }
            let ready = s.retry_at.is_none_or(|t| Instant::now() >= t);
            if s.compact_wanted && !s.compacting && s.failed.is_none() && ready {
                return true;
            }
            self.cv.wait_for(&mut s, Duration::from_secs(1));
        }
    }

    /// First step of a compaction: flushes the current segment and switches to a new
    /// one; returns the new segment's number (the snapshot's replay start). Every record
    /// appended from now on goes to the new segment.
    pub fn begin_compaction(&self) -> Result<u64> {
        // Claimed before anything else, so that a second caller is refused at once.
        let n = {
            let mut s = self.st.lock();
            if s.compacting {
                return Err(Error::Backend(
                    "persistence: a compaction is running".into(),
                ));
            }
            if let Some(m) = &s.failed {
                return Err(Error::Backend(format!("persistence failed: {m}")));
            }
            s.compacting = true;
            s.compact_wanted = false;
            s.segment + 1
        };
        // Made without the journal's lock: appends (under shard locks) go on meanwhile.
        let file = match Self::new_segment(&self.dir, n) {
            Ok(f) => f,
            Err(e) => return Err(self.compaction_failed(e)),
        };
        let mut s = self.st.lock();
        // Up to what is appended now; what comes during that write goes to the new
        // segment, which the snapshot taken after the switch also covers.
        let want = s.appended;
        self.flush_locked(&mut s, want);
        if let Some(m) = s.failed.clone() {
            drop(s);
            return Err(self.compaction_failed(Error::Backend(format!("persistence failed: {m}"))));
        }
        s.file = Arc::new(file);
        s.segment = n;
        s.log_bytes = HEADER_LEN as u64;
        Ok(n)
    }

    /// Ends a compaction that failed: another is tried after a pause, not at once (a
    /// full disk would otherwise keep the compactor spinning).
    fn compaction_failed(&self, e: Error) -> Error {
        let mut s = self.st.lock();
        s.compacting = false;
        s.compact_wanted = true;
        s.retry_at = Some(Instant::now() + COMPACTION_RETRY);
        tracing::error!("persistence: compaction failed: {e}");
        e
    }

    /// Last step of a compaction (`size`: the new snapshot's, or the error).
    pub fn end_compaction(&self, first: u64, size: Result<u64>) -> Result<()> {
        let res = size.and_then(|size| {
            remove_segments_before(&self.dir, first)?;
            Ok(size)
        });
        match res {
            Ok(size) => {
                let mut s = self.st.lock();
                s.compacting = false;
                s.retry_at = None;
                s.snapshot_bytes = size;
                s.compactions += 1;
                Ok(())
            }
            Err(e) => Err(self.compaction_failed(e)),
        }
    }

    /// The journal's counters.
    pub fn stats(&self) -> PersistStats {
        let s = self.st.lock();
        PersistStats {
            enabled: true,
            records: s.appended,
            log_bytes: s.log_bytes,
            snapshot_bytes: s.snapshot_bytes,
            compactions: s.compactions,
            compacting: s.compacting,
            fsyncs: s.fsyncs,
            pending: s.appended - s.durable,
            failed: s.failed.is_some(),
            restored: s.restored,
            truncated_bytes: s.truncated_bytes,
        }
    }
}
