// Store and Session: thin classes over the C ABI. Every fallible call passes a
// sessync_error (a 512-byte Buffer) and throws a SessyncError built from its status and
// message. Synchronous methods (`…Sync`) run on the calling thread; the others return
// Promises: the request flow (`begin`, `commit`) through the C ABI's async calls, whose
// callbacks come from a library thread and are queued to the event loop by koffi; the
// store calls through koffi's `.async()` on the libuv pool (they never wait on a lock).
'use strict';

const { native } = require('./native');
const { SessyncError, errorFromBuffer, errorFromPointer, bindingError, ERROR_SIZE } = require('./errors');

const BUF_SIZE = 16; // sizeof(sessync_buf): data, len
const STATS_FIELDS = ['sessions', 'tombstones', 'aliases', 'operations', 'lockWaits', 'lockTimeouts',
  'expirations', 'evictions'];

// Scratch space for synchronous calls (one JS thread; no call re-enters another).
const scratch = {
  err: Buffer.alloc(ERROR_SIZE),
  buf: Buffer.alloc(BUF_SIZE),
  u64: new BigUint64Array(1),
  i64: new BigInt64Array(1),
  bool: new Uint8Array(1),
  size: new BigUint64Array(1),
  id: Buffer.alloc(64),
};

function n() {
  return native();
}

function check(rc, err) {
  if (rc !== 0) throw errorFromBuffer(err);
}

// Takes the bytes out of a filled sessync_buf (a Buffer of 16 bytes) and frees them.
function takeBuf(buf) {
  const { fn, koffi } = n();
  const data = buf.readBigUInt64LE(0);
  const len = Number(buf.readBigUInt64LE(8));
  if (data === 0n) return '';
  const text = koffi.decode(data, 'char', len);
  fn.sessync_buf_free(buf);
  return text;
}

function toNumber(big) {
  const v = Number(big);
  return v;
}

function requireString(name, value, { nullable = false } = {}) {
  if (value === null || value === undefined) {
    if (nullable) return null;
    // NULL reaches the engine, which names the argument.
    return null;
  }
  if (typeof value !== 'string') {
    throw bindingError('INVALID_ARGUMENT', `argument \`${name}\` must be a string, not ${describe(value)}`);
  }
  if (value.includes('\0')) {
    throw bindingError('INVALID_ARGUMENT', `argument \`${name}\` contains a NUL character`);
  }
  return value;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

// JSON bytes of a value. A value that JSON cannot represent (undefined, a function, a
// symbol) goes to the engine as empty bytes, so the engine's INVALID_JSON error is what
// the caller sees; one that JSON.stringify refuses (a BigInt, a cycle) is INVALID_JSON too.
function jsonBytes(what, value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw bindingError('INVALID_JSON', `${what} cannot be serialized as JSON: ${e.message}`, { cause: e });
  }
  return text === undefined ? Buffer.alloc(0) : Buffer.from(text, 'utf8');
}

function parseJson(text) {
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------------------
// Library callbacks: one registered function per callback type, userdata an integer key.

let nextKey = 1;
const pending = new Map();
let keepAlive = null;
let callbacks = null;

function addPending(handler) {
  if (keepAlive === null) {
    // A pending library callback holds no libuv handle: keep the loop alive meanwhile.
    keepAlive = setInterval(() => {}, 1 << 30);
    keepAlive.unref();
  }
  const key = nextKey++;
  if (nextKey > Number.MAX_SAFE_INTEGER) nextKey = 1;
  pending.set(key, handler);
  if (pending.size === 1) keepAlive.ref();
  return key;
}

function takePending(key) {
  const handler = pending.get(key);
  pending.delete(key);
  if (pending.size === 0 && keepAlive) keepAlive.unref();
  return handler;
}

function dispatch(userdata, run) {
  const handler = takePending(Number(userdata));
  if (!handler) return;
  try {
    run(handler);
  } catch (e) {
    // Never let an exception unwind into the library; surface it as JS would.
    process.nextTick(() => { throw e; });
  }
}

function registered() {
  if (callbacks === null) {
    const { koffi, callbackTypes } = n();
    callbacks = {
      session: koffi.register((userdata, status, session, error) => {
        dispatch(userdata, (h) => h(status, session, status === 0 ? null : errorFromPointer(error, status)));
      }, callbackTypes.sessync_session_callback),
      commit: koffi.register((userdata, status, setCookie, error) => {
        dispatch(userdata, (h) => {
          if (status !== 0) return h(status, null, errorFromPointer(error, status));
          let cookie = null;
          if (setCookie !== null && setCookie !== 0n) {
            const b = koffi.decode(setCookie, 'sessync_buf');
            if (b.data !== null && b.data !== 0n && Number(b.len) > 0) cookie = koffi.decode(b.data, 'char', Number(b.len));
          }
          return h(status, cookie, null);
        });
      }, callbackTypes.sessync_commit_callback),
    };
  }
  return callbacks;
}

// The binding's own `.async()` calls (koffi's, on the libuv pool): at most
// native().poolLimit run at once; the others wait here, first come first served. koffi
// relays library callbacks in the same budget as `.async()` calls and crashes the process
// when a callback finds it spent (native.js), so nothing here fans out without this limit.
let poolActive = 0;
const poolQueue = [];

// `start` begins a call and returns true when it holds the slot (its completion calls
// poolRelease), false when it ended at once.
function poolAcquire(start) {
  if (poolActive < n().poolLimit) {
    poolActive++;
    if (!start()) poolRelease();
  } else {
    poolQueue.push(start);
  }
}

function poolRelease() {
  while (poolQueue.length > 0) {
    if (poolQueue.shift()()) return; // the slot passes to it
  }
  poolActive--;
}

function closedError(what) {
  return bindingError('INVALID_ARGUMENT', what);
}

// Runs a store function on the libuv pool: `fn(handle, ...args, error)` through koffi's
// `.async`, in a slot of the pool's limit; resolves with `done(rc, err)`. The call counts
// as in flight on `store` from now until it settles, and its closures keep `store`
// reachable (so the FinalizationRegistry cannot free the handle under it); close() frees
// the handle only when no call is in flight. A call still queued when the store is closed
// rejects ("the store was closed before this call ran") without reaching the library.
function poolCall(store, fnName, args, done) {
  store._calls++;
  return new Promise((resolve, reject) => {
    const settle = () => {
      store._calls--;
      if (store._calls === 0 && store._closing) store._free();
    };
    poolAcquire(() => {
      if (store._closing) {
        settle();
        reject(closedError('the store was closed before this call ran'));
        return false;
      }
      const err = Buffer.alloc(ERROR_SIZE);
      try {
        n().fn[fnName].async(store._ptr, ...args, err, (e, rc) => {
          poolRelease();
          try {
            if (e) reject(e);
            else resolve(done(rc, err));
          } catch (x) {
            reject(x);
          } finally {
            settle();
          }
        });
      } catch (e) {
        settle();
        reject(e);
        return false;
      }
      return true;
    });
  });
}

// Ends a session through sessync_session_commit_async or sessync_session_abort_async (the
// same callback); resolves with { setCookie }.
function endAsync(fnName, ptr) {
  return new Promise((resolve, reject) => {
    const key = addPending((status, setCookie, error) => {
      if (status === 0) resolve({ setCookie });
      else reject(error);
    });
    const err = Buffer.alloc(ERROR_SIZE);
    let rc;
    try {
      rc = n().fn[fnName](ptr, registered().commit, key, err);
    } catch (e) {
      takePending(key);
      reject(e);
      return;
    }
    if (rc !== 0) {
      takePending(key);
      reject(errorFromBuffer(err));
    }
  });
}

// ---------------------------------------------------------------------------------------

const storeRegistry = new FinalizationRegistry((ptr) => n().fn.sessync_store_free(ptr));
const sessionRegistry = new FinalizationRegistry((ptr) => n().fn.sessync_session_free(ptr));

const OPTION_KEYS = {
  cookieName: 'cookie_name',
  cookiePath: 'cookie_path',
  cookieDomain: 'cookie_domain',
  cookieMaxAge: 'cookie_max_age',
  cookieSecure: 'cookie_secure',
  cookieHttpOnly: 'cookie_http_only',
  cookieSameSite: 'cookie_same_site',
  cookieFormat: 'cookie_format',
  lockLease: 'lock_lease',
  lockWait: 'lock_wait',
};

function optionText(key, value) {
  if (typeof value === 'number') {
    // Durations given as numbers are milliseconds.
    if (['cookie_max_age', 'lock_lease', 'lock_wait', 'ttl', 'absolute_ttl', 'tombstone_ttl', 'rotate_grace']
      .includes(key)) return `${value}ms`;
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return value;
  throw bindingError('INVALID_ARGUMENT', `option \`${key}\` must be a string, a number or a boolean, not ${describe(value)}`);
}

function buildOptions(options) {
  const { fn } = n();
  const err = Buffer.alloc(ERROR_SIZE);
  const out = new BigUint64Array(1);
  check(fn.sessync_options_new(out, err), err);
  const opts = out[0];
  try {
    for (const [name, value] of Object.entries(options)) {
      if (value === undefined) continue;
      if (name === 'secrets' || name === 'secret') {
        const list = Array.isArray(value) ? value : [value];
        for (const s of list) {
          const bytes = Buffer.isBuffer(s) ? s : typeof s === 'string' ? Buffer.from(s, 'utf8') : null;
          if (bytes === null) throw bindingError('INVALID_ARGUMENT', `a secret must be a string or a Buffer, not ${describe(s)}`);
          check(fn.sessync_options_add_signing_key(opts, bytes, bytes.length, err), err);
        }
      } else if (name === 'storeOptions') {
        for (const [k, v] of Object.entries(value || {})) {
          check(fn.sessync_options_set(opts, requireString('key', k), optionText(k, v), err), err);
        }
      } else if (OPTION_KEYS[name]) {
        check(fn.sessync_options_set(opts, OPTION_KEYS[name], optionText(OPTION_KEYS[name], value), err), err);
      } else {
        throw bindingError('INVALID_ARGUMENT', `unknown option \`${name}\``);
      }
    }
  } catch (e) {
    fn.sessync_options_free(opts);
    throw e;
  }
  return opts;
}

class Store {
  // new Store('mem://?ttl=30m', { cookieName, secrets, cookieFormat, lockWait, storeOptions: { ttl: '1h' }, … })
  constructor(url = 'mem://', options = {}) {
    const { fn } = n();
    if (options === null || typeof options !== 'object') {
      throw bindingError('INVALID_ARGUMENT', `options must be an object, not ${describe(options)}`);
    }
    const u = requireString('url', url);
    const opts = buildOptions(options);
    const err = Buffer.alloc(ERROR_SIZE);
    const out = new BigUint64Array(1);
    try {
      check(fn.sessync_store_open(u, opts, out, err), err);
    } finally {
      fn.sessync_options_free(opts);
    }
    this._ptr = out[0];
    this._calls = 0; // pool calls in flight or queued (poolCall)
    this._closing = false;
    this.url = u;
    storeRegistry.register(this, this._ptr, this);
  }

  get closed() {
    return this._closing;
  }

  get handle() {
    if (this._closing) throw closedError('the store is closed');
    return this._ptr;
  }

  // Releases the handle: no call can start on it afterwards. Calls on the pool that are
  // running finish first (the handle is freed when the last one settles); calls still
  // queued reject. Sessions still open keep the engine's store alive until they end.
  close() {
    if (this._closing) return;
    this._closing = true;
    storeRegistry.unregister(this);
    if (this._calls === 0) this._free();
  }

  _free() {
    const ptr = this._ptr;
    if (ptr === null) return;
    this._ptr = null;
    n().fn.sessync_store_free(ptr);
  }

  // An async call on the pool: a closed store or a bad argument rejects, never throws.
  _pool(fnName, build, done) {
    let args;
    try {
      this.handle; // eslint-disable-line no-unused-expressions
      args = build();
    } catch (e) {
      return Promise.reject(e);
    }
    return poolCall(this, fnName, args, (rc, err) => done(rc, err, args));
  }

  fetchSync(id) {
    const { fn } = n();
    const { err, buf, u64 } = scratch;
    const rc = fn.sessync_store_fetch(this.handle, requireString('id', id), buf, u64, err);
    if (rc === n().status.SESSYNC_STATUS_NOT_FOUND) return null;
    check(rc, err);
    return parseJson(takeBuf(buf));
  }

  fetch(id) {
    return this._pool('sessync_store_fetch', () => [requireString('id', id), Buffer.alloc(BUF_SIZE), new BigUint64Array(1)],
      (rc, err, args) => {
        if (rc === n().status.SESSYNC_STATUS_NOT_FOUND) return null;
        check(rc, err);
        return parseJson(takeBuf(args[1]));
      });
  }

  _writeArgs(id, data, opts = {}) {
    const bytes = jsonBytes('the session data', data);
    let expected = null;
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== null) {
      expected = new BigUint64Array([BigInt(opts.expectedVersion)]);
    }
    const flags = opts.release ? n().consts.SESSYNC_WRITE_RELEASE : 0;
    return [requireString('id', id), bytes, bytes.length, expected, BigInt(opts.token || 0), flags,
      new BigUint64Array(1)];
  }

  // Replaces the whole session (creating it); returns the new version.
  writeSync(id, data, opts) {
    const args = this._writeArgs(id, data, opts);
    check(n().fn.sessync_store_write(this.handle, ...args, scratch.err), scratch.err);
    return toNumber(args[6][0]);
  }

  write(id, data, opts) {
    return this._pool('sessync_store_write', () => this._writeArgs(id, data, opts), (rc, err, args) => {
      check(rc, err);
      return toNumber(args[6][0]);
    });
  }

  _patchArgs(id, patch, opts = {}) {
    const bytes = jsonBytes('the patch', patch);
    const c = n().consts;
    const flags = (opts.create ? c.SESSYNC_WRITE_CREATE : 0) | (opts.release ? c.SESSYNC_WRITE_RELEASE : 0);
    return [requireString('id', id), bytes, bytes.length, BigInt(opts.token || 0), flags,
      new BigUint64Array(1)];
  }

  // Applies a JSON Merge Patch atomically; returns the new version.
  patchSync(id, patch, opts) {
    const args = this._patchArgs(id, patch, opts);
    check(n().fn.sessync_store_patch(this.handle, ...args, scratch.err), scratch.err);
    return toNumber(args[5][0]);
  }

  patch(id, patch, opts) {
    return this._pool('sessync_store_patch', () => this._patchArgs(id, patch, opts), (rc, err, args) => {
      check(rc, err);
      return toNumber(args[5][0]);
    });
  }

  _incrArgs(id, key, by, opts = {}) {
    const c = n().consts;
    const flags = (opts.create ? c.SESSYNC_WRITE_CREATE : 0) | (opts.release ? c.SESSYNC_WRITE_RELEASE : 0);
    return [requireString('id', id), requireString('key', key), toI64('by', by),
      BigInt(opts.token || 0), flags, new BigInt64Array(1)];
  }

  // Adds `by` to the integer at `key` atomically; returns the sum.
  incrSync(id, key, by = 1, opts) {
    const args = this._incrArgs(id, key, by, opts);
    check(n().fn.sessync_store_incr(this.handle, ...args, scratch.err), scratch.err);
    return toNumber(args[5][0]);
  }

  incr(id, key, by = 1, opts) {
    return this._pool('sessync_store_incr', () => this._incrArgs(id, key, by, opts), (rc, err, args) => {
      check(rc, err);
      return toNumber(args[5][0]);
    });
  }

  // Destroys a session (tombstoned); true when a live session was there.
  destroySync(id) {
    const { err, bool } = scratch;
    check(n().fn.sessync_store_destroy(this.handle, requireString('id', id), bool, err), err);
    return bool[0] !== 0;
  }

  destroy(id) {
    return this._pool('sessync_store_destroy', () => [requireString('id', id), new Uint8Array(1)], (rc, err, args) => {
      check(rc, err);
      return args[1][0] !== 0;
    });
  }

  // Records an access; true when it wrote. With `ttlMs` (1 ms to one year), also gives
  // the session its own idle TTL in the same step (sessync_store_touch_ttl; always
  // writes), kept by later writes and touches.
  touchSync(id, ttlMs) {
    const { err, bool } = scratch;
    const { fn } = n();
    const rc = ttlMs === undefined || ttlMs === null
      ? fn.sessync_store_touch(this.handle, requireString('id', id), bool, err)
      : fn.sessync_store_touch_ttl(this.handle, requireString('id', id), toTtl(ttlMs), bool, err);
    check(rc, err);
    return bool[0] !== 0;
  }

  touch(id, ttlMs) {
    const out = new Uint8Array(1);
    const withTtl = ttlMs !== undefined && ttlMs !== null;
    return this._pool(withTtl ? 'sessync_store_touch_ttl' : 'sessync_store_touch',
      () => (withTtl ? [requireString('id', id), toTtl(ttlMs), out] : [requireString('id', id), out]), (rc, err) => {
        check(rc, err);
        return out[0] !== 0;
      });
  }

  // The whole record: { id, data, version, created, last_access, expires_at, owner, ttl }
  // (ttl: the session's own idle TTL in ms, null when it follows the store's), or null.
  recordSync(id) {
    const { err, buf } = scratch;
    const rc = n().fn.sessync_store_fetch_record(this.handle, requireString('id', id), buf, err);
    if (rc === n().status.SESSYNC_STATUS_NOT_FOUND) return null;
    check(rc, err);
    return parseJson(takeBuf(buf));
  }

  record(id) {
    const buf = Buffer.alloc(BUF_SIZE);
    return this._pool('sessync_store_fetch_record', () => [requireString('id', id), buf], (rc, err) => {
      if (rc === n().status.SESSYNC_STATUS_NOT_FOUND) return null;
      check(rc, err);
      return parseJson(takeBuf(buf));
    });
  }

  // One page of the live sessions' ids, like Redis's SCAN (sessync_store_list): start
  // with cursor 0n and pass back each `cursor` until it is 0n. A cursor is a 64-bit
  // BigInt (it uses every bit: a Number would lose it). `count` (at least 1) is a hint
  // of the page size. Every session alive for the whole scan is listed at least once
  // (Redis may list one twice). Returns { ids, cursor }.
  listSync(cursor = 0n, count = 100) {
    const { err, buf, u64 } = scratch;
    check(n().fn.sessync_store_list(this.handle, toCursor(cursor), toCount(count), buf, u64, err), err);
    const next = u64[0];
    return { ids: parseJson(takeBuf(buf)), cursor: next };
  }

  list(cursor = 0n, count = 100) {
    const buf = Buffer.alloc(BUF_SIZE);
    const next = new BigUint64Array(1);
    return this._pool('sessync_store_list', () => [toCursor(cursor), toCount(count), buf, next], (rc, err) => {
      check(rc, err);
      return { ids: parseJson(takeBuf(buf)), cursor: next[0] };
    });
  }

  // Every live session's id, each once: list() page after page.
  async listAll(count = 1000) {
    const seen = new Set();
    let cursor = 0n;
    do {
      const page = await this.list(cursor, count);
      for (const id of page.ids) seen.add(id);
      cursor = page.cursor;
    } while (cursor !== 0n);
    return [...seen];
  }

  listAllSync(count = 1000) {
    const seen = new Set();
    let cursor = 0n;
    do {
      const page = this.listSync(cursor, count);
      for (const id of page.ids) seen.add(id);
      cursor = page.cursor;
    } while (cursor !== 0n);
    return [...seen];
  }

  // Destroys every session (tombstoned as destroy() does, so requests in flight cannot
  // bring one back); returns how many live sessions there were. On Redis, atomic per
  // session, not across them.
  clearSync() {
    const { err, size } = scratch;
    check(n().fn.sessync_store_clear(this.handle, size, err), err);
    return toNumber(size[0]);
  }

  clear() {
    const out = new BigUint64Array(1);
    return this._pool('sessync_store_clear', () => [out], (rc, err) => {
      check(rc, err);
      return toNumber(out[0]);
    });
  }

  // Moves a session to a fresh id; returns it.
  rotateSync(id, opts = {}) {
    const { err, id: idBuf, size } = scratch;
    check(n().fn.sessync_store_rotate(this.handle, requireString('id', id), BigInt(opts.token || 0), idBuf,
      idBuf.length, size, err), err);
    return idBuf.toString('latin1', 0, Number(size[0]));
  }

  setOwnerSync(id, owner, opts = {}) {
    const { err, u64 } = scratch;
    check(n().fn.sessync_store_set_owner(this.handle, requireString('id', id), requireString('owner', owner, { nullable: true }),
      BigInt(opts.token || 0), u64, err), err);
    return toNumber(u64[0]);
  }

  sessionsOfSync(owner) {
    const { err, buf } = scratch;
    check(n().fn.sessync_store_sessions_of(this.handle, requireString('owner', owner), buf, err), err);
    return parseJson(takeBuf(buf));
  }

  destroyAllSync(owner) {
    const { err, size } = scratch;
    check(n().fn.sessync_store_destroy_all(this.handle, requireString('owner', owner), size, err), err);
    return toNumber(size[0]);
  }

  statsSync() {
    const out = new BigUint64Array(STATS_FIELDS.length);
    check(n().fn.sessync_store_stats(this.handle, out, out.byteLength, scratch.err), scratch.err);
    const stats = {};
    STATS_FIELDS.forEach((f, i) => { stats[f] = toNumber(out[i]); });
    return stats;
  }

  // Starts a request from the raw Cookie header (a string, a Buffer, or null/undefined
  // for none), on the calling thread: blocks it for a lock wait. For mem:// and scripts;
  // servers use begin().
  beginSync(cookieHeader, opts = {}) {
    const { flags, wait } = beginFlags(opts);
    const cookie = cookieBytes(cookieHeader);
    const out = scratch.u64;
    check(n().fn.sessync_session_begin(this.handle, cookie, cookie.length, flags, wait, out, scratch.err), scratch.err);
    return new Session(out[0], this);
  }

  beginIdSync(id, opts = {}) {
    const { flags, wait } = beginFlags(opts);
    const out = new BigUint64Array(1);
    check(n().fn.sessync_session_begin_id(this.handle, requireString('id', id), flags, wait, out, scratch.err),
      scratch.err);
    return new Session(out[0], this);
  }

  // Starts a request without blocking: the lock wait parks no thread on mem:// and runs
  // on the library's own pool otherwise. `opts.signal` (an AbortSignal) cancels the wait.
  // A closed store or a bad argument rejects, never throws.
  begin(cookieHeader, opts = {}) {
    let cookie;
    try {
      cookie = cookieBytes(cookieHeader);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._beginAsync('sessync_session_begin_async', () => [cookie, cookie.length], opts);
  }

  beginId(id, opts = {}) {
    return this._beginAsync('sessync_session_begin_id_async', () => [requireString('id', id)], opts);
  }

  _beginAsync(fnName, headOf, opts) {
    const { fn } = n();
    let flags, wait, handle, head, cb;
    try {
      ({ flags, wait } = beginFlags(opts));
      handle = this.handle;
      head = headOf();
      cb = registered().session;
    } catch (e) {
      return Promise.reject(e);
    }
    const signal = opts.signal;
    if (signal && signal.aborted) {
      return Promise.reject(bindingError('CANCELLED', 'the request was aborted before its session began'));
    }
    return new Promise((resolve, reject) => {
      let onAbort = null;
      const key = addPending((status, session, error) => {
        if (onAbort) signal.removeEventListener('abort', onAbort);
        if (status === 0) resolve(new Session(session, this));
        else reject(error);
      });
      const err = Buffer.alloc(ERROR_SIZE);
      const ticket = new BigUint64Array(1);
      let rc;
      try {
        rc = fn[fnName](handle, ...head, flags, wait, cb, key, ticket, err);
      } catch (e) {
        takePending(key);
        reject(e);
        return;
      }
      if (rc !== 0) {
        takePending(key);
        reject(errorFromBuffer(err));
        return;
      }
      if (signal) {
        onAbort = () => cancelTicket(ticket[0]);
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }
}

function cancelTicket(ticket) {
  const err = Buffer.alloc(ERROR_SIZE);
  const out = new Uint8Array(1);
  check(n().fn.sessync_ticket_cancel(ticket, out, err), err);
  return out[0] !== 0;
}

// A TTL in ms for the C ABI's uint64_t. Zero and negative values go to the engine as 0,
// which it refuses with its own message (1 ms to one year); so do values past 2^53.
function toTtl(value) {
  if (typeof value === 'bigint') return value < 0n ? 0n : value;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw bindingError('INVALID_ARGUMENT', `a TTL must be a number of milliseconds, not ${describe(value)}`);
  }
  if (value <= 0) return 0n;
  if (!Number.isFinite(value) || value > Number.MAX_SAFE_INTEGER) return BigInt(Number.MAX_SAFE_INTEGER);
  return BigInt(Math.ceil(value));
}

function toCursor(value) {
  if (typeof value === 'bigint' && value >= 0n && value < (1n << 64n)) return value;
  if (typeof value === 'number' && value === 0) return 0n;
  throw bindingError('INVALID_ARGUMENT', `a list cursor must be 0n or a cursor (a BigInt) that list() returned, not ${describe(value)}`);
}

function toCount(value) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw bindingError('INVALID_ARGUMENT', `a list count must be a positive integer, not ${describe(value)}${typeof value === 'number' ? ` ${value}` : ''}`);
  }
  return BigInt(value);
}

function toI64(name, value) {
  if (typeof value === 'bigint') return value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw bindingError('INVALID_ARGUMENT', `argument \`${name}\` must be a safe integer, not ${describe(value)}${typeof value === 'number' ? ` ${value}` : ''}`);
  }
  return BigInt(value);
}

function beginFlags(opts) {
  if (opts === null || typeof opts !== 'object') {
    throw bindingError('INVALID_ARGUMENT', `begin options must be an object, not ${describe(opts)}`);
  }
  const lock = opts.lock === undefined ? true : Boolean(opts.lock);
  const wait = opts.waitMs === undefined || opts.waitMs === null ? -1n : toI64('waitMs', opts.waitMs);
  return { flags: lock ? n().consts.SESSYNC_BEGIN_LOCK : 0, wait };
}

function cookieBytes(header) {
  if (header === null || header === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(header)) return header;
  if (Array.isArray(header)) return Buffer.from(header.join('; '), 'latin1');
  if (typeof header !== 'string') {
    throw bindingError('INVALID_ARGUMENT', `the Cookie header must be a string or a Buffer, not ${describe(header)}`);
  }
  return Buffer.from(header, 'latin1');
}

class Session {
  constructor(ptr, store) {
    this._ptr = ptr;
    this._store = store;
    this._id = null;
    this._busy = false; // rotateAsync() is running on the pool
    sessionRegistry.register(this, ptr, this);
  }

  get handle() {
    if (this._ptr === null) {
      throw bindingError('INVALID_ARGUMENT', 'the session has ended (committed or aborted): begin a new one');
    }
    if (this._busy) {
      throw bindingError('INVALID_ARGUMENT', 'the session is being rotated (rotateAsync): use it once that settles');
    }
    return this._ptr;
  }

  get ended() {
    return this._ptr === null;
  }

  get id() {
    if (this._id === null) this._id = n().fn.sessync_session_id(this.handle);
    return this._id;
  }

  get isNew() { return n().fn.sessync_session_is_new(this.handle); }
  get changed() { return n().fn.sessync_session_changed(this.handle); }
  get version() { return toNumber(n().fn.sessync_session_version(this.handle)); }
  get token() { return n().fn.sessync_session_token(this.handle); }
  get expiresAt() { return toNumber(n().fn.sessync_session_expires_at(this.handle)); }

  // The value at `key` (parsed JSON), or undefined when absent.
  get(key) {
    const text = this.getJSON(key);
    return text === undefined ? undefined : parseJson(text);
  }

  // The value at `key` as JSON text, or undefined when absent.
  getJSON(key) {
    const { err, buf } = scratch;
    const rc = n().fn.sessync_session_get(this.handle, requireString('key', key), buf, err);
    if (rc === n().status.SESSYNC_STATUS_NOT_FOUND) return undefined;
    check(rc, err);
    return takeBuf(buf);
  }

  set(key, value) {
    const bytes = jsonBytes(`the value of \`${key}\``, value);
    this.setJSON(key, bytes);
  }

  // Sets `key` to JSON text (a string or a Buffer) as it is.
  setJSON(key, json) {
    const bytes = Buffer.isBuffer(json) ? json : Buffer.from(requireString('json', json) ?? '', 'utf8');
    check(n().fn.sessync_session_set(this.handle, requireString('key', key), bytes, bytes.length, scratch.err),
      scratch.err);
  }

  remove(key) {
    check(n().fn.sessync_session_remove(this.handle, requireString('key', key), scratch.err), scratch.err);
  }

  // Adds `by` to the integer at `key` (absent: 0), applied at commit as an atomic
  // increment; returns the value as this request sees it.
  incr(key, by = 1) {
    const out = scratch.i64;
    check(n().fn.sessync_session_incr(this.handle, requireString('key', key), toI64('by', by), out, scratch.err),
      scratch.err);
    return toNumber(out[0]);
  }

  data() {
    const { err, buf } = scratch;
    check(n().fn.sessync_session_data(this.handle, buf, err), err);
    return parseJson(takeBuf(buf));
  }

  setOwner(owner) {
    check(n().fn.sessync_session_set_owner(this.handle, requireString('owner', owner, { nullable: true }), scratch.err),
      scratch.err);
  }

  // A fresh id now, data kept; returns it. On the calling thread: with sessyncd or Redis,
  // a round trip (rotateAsync runs it on the pool).
  rotate() {
    check(n().fn.sessync_session_rotate(this.handle, scratch.err), scratch.err);
    this._id = null;
    return this.id;
  }

  // rotate() on the libuv pool (koffi's `.async`; it waits on no lock); resolves with the
  // new id. Until it settles the session cannot be used (its calls throw).
  rotateAsync() {
    let ptr;
    try {
      ptr = this.handle;
    } catch (e) {
      return Promise.reject(e);
    }
    this._busy = true;
    const err = Buffer.alloc(ERROR_SIZE);
    return new Promise((resolve, reject) => {
      poolAcquire(() => {
        try {
          n().fn.sessync_session_rotate.async(ptr, err, (e, rc) => {
            poolRelease();
            this._busy = false;
            this._id = null;
            if (e) reject(e);
            else if (rc !== 0) reject(errorFromBuffer(err));
            else {
              try {
                resolve(this.id);
              } catch (x) {
                reject(x);
              }
            }
          });
        } catch (e) {
          this._busy = false;
          reject(e);
          return false;
        }
        return true;
      });
    });
  }

  // Marks the session for destruction at commit.
  destroy() {
    check(n().fn.sessync_session_destroy(this.handle, scratch.err), scratch.err);
  }

  // Gives the session its own idle TTL of `ttlMs` (1 ms to one year) from commit on, in
  // the commit's atomic step (or as a touch when nothing else changed): express-session's
  // cookie.maxAge. Later writes and touches keep it until another TTL is set.
  setTtl(ttlMs) {
    check(n().fn.sessync_session_set_ttl(this.handle, toTtl(ttlMs), scratch.err), scratch.err);
  }

  _take() {
    const ptr = this.handle;
    this._ptr = null;
    sessionRegistry.unregister(this);
    return ptr;
  }

  // Writes the changes as one atomic patch and releases the lock, on the calling thread.
  // Returns { setCookie } (null when no cookie needs sending).
  commitSync() {
    const ptr = this._take();
    const buf = scratch.buf;
    check(n().fn.sessync_session_commit(ptr, buf, scratch.err), scratch.err);
    const cookie = takeBuf(buf);
    return { setCookie: cookie === '' ? null : cookie };
  }

  // The same on the library's pool; resolves with { setCookie }.
  commit() {
    let ptr;
    try {
      ptr = this._take();
    } catch (e) {
      return Promise.reject(e);
    }
    return endAsync('sessync_session_commit_async', ptr);
  }

  // Ends the request without writing; releases the lock. On the calling thread: with
  // sessyncd or Redis, a round trip (abortAsync does not block). A no-op once ended.
  abort() {
    if (this._ptr === null) return;
    const ptr = this._take();
    check(n().fn.sessync_session_abort(ptr, scratch.err), scratch.err);
  }

  // abort() without blocking (sessync_session_abort_async): the lock is released on the
  // library's pool. Resolves when it is; a no-op once ended.
  abortAsync() {
    if (this._ptr === null) return Promise.resolve();
    let ptr;
    try {
      ptr = this._take();
    } catch (e) {
      return Promise.reject(e);
    }
    return endAsync('sessync_session_abort_async', ptr).then(() => undefined);
  }
}

module.exports = {
  Store, Session, SessyncError, cancelTicket, pendingCount: () => pending.size,
  poolStats: () => ({ active: poolActive, queued: poolQueue.length, limit: n().poolLimit }),
};
