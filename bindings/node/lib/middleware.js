// sessync.expressSession(options): a middleware that gives handlers `req.session` the way
// express-session does, on sessync's request flow: the session is begun with its lock
// (asynchronously: no thread waits on the lock), `req.session` records what the handler
// sets, deletes and increments, and changes in place to values it read, and the commit
// writes only those keys, as one atomic patch (increments as increments), before the
// response's headers go out — so concurrent requests of one visitor lose nothing.
//
// With cookie.maxAge, each session lives as long as its cookie: the commit of a request
// that changed the session (or of every request, with `rolling`) gives it the idle TTL
// maxAge (sessync_session_set_ttl), in the same atomic step as its changes. So a daemon
// or Redis shared with other apps keeps each app's sessions for its own cookie's life,
// whatever the store's `ttl`.
'use strict';

const util = require('node:util');
const { Store } = require('./core');
const { bindingError } = require('./errors');

// express-session's own members of req.session: not data keys.
const RESERVED = new Set(['id', 'cookie', 'req', 'regenerate', 'destroy', 'reload', 'save', 'touch',
  'resetMaxAge', 'toJSON', 'incr', 'rotate', 'sessync']);

const IGNORED = new Set(['resave', 'saveUninitialized', 'proxy', 'unset']);

// The engine's range of a session's own TTL: 1 ms to one year.
const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

function sameSiteText(v) {
  if (v === undefined) return undefined;
  if (v === true) return 'Strict';
  if (v === false) return '';
  if (typeof v === 'string' && /^(lax|strict|none)$/i.test(v)) return v[0].toUpperCase() + v.slice(1).toLowerCase();
  throw bindingError('INVALID_ARGUMENT', `cookie.sameSite must be true, false, 'lax', 'strict' or 'none', not ${JSON.stringify(v)}`);
}

function resolveConfig(options) {
  if (options === null || typeof options !== 'object') {
    throw bindingError('INVALID_ARGUMENT', 'expressSession(options): options must be an object');
  }
  const known = new Set(['store', 'url', 'name', 'secret', 'cookie', 'lock', 'lockWait', 'lockLease',
    'storeOptions', 'genid', 'rolling', ...IGNORED]);
  for (const k of Object.keys(options)) {
    if (!known.has(k)) throw bindingError('INVALID_ARGUMENT', `expressSession: unknown option \`${k}\``);
  }
  if (options.genid !== undefined) {
    throw bindingError('INVALID_ARGUMENT', 'expressSession: `genid` is not supported: sessync issues the ids (192 random bits)');
  }
  const cookie = options.cookie || {};
  if (cookie.secure === 'auto') {
    throw bindingError('INVALID_ARGUMENT', "expressSession: cookie.secure 'auto' is not supported; give true or false");
  }
  const maxAge = cookie.maxAge;
  if (maxAge !== undefined && maxAge !== null &&
      (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge < 1 || maxAge > MAX_TTL_MS)) {
    throw bindingError('INVALID_ARGUMENT', `expressSession: cookie.maxAge must be a number of milliseconds from 1 ` +
      `to one year (${MAX_TTL_MS}), the range of a session's TTL, or null; got ${JSON.stringify(maxAge)}`);
  }
  const name = options.name || 'connect.sid';
  const secrets = options.secret === undefined ? [] : Array.isArray(options.secret) ? options.secret : [options.secret];
  const storeOpts = {
    cookieName: name,
    cookiePath: cookie.path,
    cookieDomain: cookie.domain,
    cookieMaxAge: cookie.maxAge === null ? '' : cookie.maxAge,
    cookieSecure: cookie.secure,
    cookieHttpOnly: cookie.httpOnly,
    cookieSameSite: sameSiteText(cookie.sameSite),
    // With secrets, express-session's own cookie format: visitors keep their cookies.
    cookieFormat: secrets.length > 0 ? 'express' : undefined,
    secrets: secrets.length > 0 ? secrets : undefined,
    lockLease: options.lockLease,
    lockWait: options.lockWait,
  };
  const storeOptions = { ...(options.storeOptions || {}) };
  // express-session's sessions live as long as the cookie (connect-redis's TTL too). A
  // sessyncd's store options are the daemon's own (its --store), not the client URL's.
  const daemon = /^(unix|tcp|tls):\/\//.test(options.url || '');
  if (!daemon && options.store === undefined && storeOptions.ttl === undefined && typeof cookie.maxAge === 'number') {
    storeOptions.ttl = cookie.maxAge;
  }
  if (Object.keys(storeOptions).length > 0) storeOpts.storeOptions = storeOptions;

  let store = options.store;
  if (store !== undefined && !(store instanceof Store)) {
    throw bindingError('INVALID_ARGUMENT', 'expressSession: `store` must be a sessync.Store (give `url` to open one); ' +
      'to keep express-session with its Store API, use new SessyncStore() instead');
  }
  if (store === undefined) store = new Store(options.url || 'mem://', storeOpts);
  const cookieView = {
    path: cookie.path === undefined ? '/' : cookie.path,
    domain: cookie.domain,
    httpOnly: cookie.httpOnly === undefined ? true : cookie.httpOnly,
    secure: cookie.secure === undefined ? false : cookie.secure,
    sameSite: cookie.sameSite,
    maxAge: cookie.maxAge === undefined ? null : cookie.maxAge,
    originalMaxAge: cookie.maxAge === undefined ? null : cookie.maxAge,
  };
  return {
    store,
    lock: options.lock === undefined ? true : Boolean(options.lock),
    rolling: Boolean(options.rolling),
    ttlMs: typeof maxAge === 'number' ? Math.ceil(maxAge) : null,
    cookieView,
  };
}

function cookieObject(view) {
  const c = { ...view };
  c.expires = typeof view.maxAge === 'number' ? new Date(Date.now() + view.maxAge) : null;
  return c;
}

function ended() {
  return bindingError('INVALID_ARGUMENT', 'req.session was used after its commit (the response was sent): ' +
    'read and change the session before ending the response');
}

const debug = util.debuglog('sessync');
const noop = () => {};

// One request's session: the engine's Session, a cache of the values read or set, and
// the commit.
//
// save(), reload(), regenerate() and rotate() end or change the engine's Session on the
// pool or the library's threads: meanwhile `session` is null and `busy` is the promise of
// that work, which the commit (and the end after a disconnect) waits for before it ends
// the session the work began again. No path leaves a begun session un-ended.
class RequestSession {
  constructor(cfg, req, res, next, session) {
    this.cfg = cfg;
    this.req = req;
    this.res = res;
    this.next = next;
    this.session = session;
    this.cache = new Map(); // key -> { present, value, json }
    this.allLoaded = false;
    this.committing = null; // the commit's (or the abandon's) promise, once started
    this.setCookie = null;
    this.ended = false;
    this.destroyed = false;
    this.busy = null; // a save, reload, regenerate or rotate in progress
    this.failure = null; // { error, reported }: a save or reload that left no session
    this.gone = false; // the client went away before the response: aborted, writes ignored
    this.ac = new AbortController(); // cancels a save's or reload's lock wait on `gone`
    this.cookie = cookieObject(cfg.cookieView);
    this.proxy = this.makeProxy();
  }

  live() {
    if (this.ended) throw ended();
    if (this.session === null) {
      if (this.failure) {
        throw bindingError('INVALID_ARGUMENT', `req.session cannot be used: its save or reload failed (${this.failure.error.message})`,
          { cause: this.failure.error });
      }
      throw bindingError('INVALID_ARGUMENT', 'req.session is being saved, reloaded or regenerated: use it in the callback');
    }
    return this.session;
  }

  // A change after the client went away: the session was aborted; ignored (NODE_DEBUG=sessync says so, once).
  ignored(what) {
    if (!this.reportedIgnored) {
      this.reportedIgnored = true;
      debug('%s %s: the client went away before the response; req.session was aborted, and %s after it is ignored',
        this.req.method, this.req.originalUrl || this.req.url, what);
    }
    return true;
  }

  load(key) {
    let e = this.cache.get(key);
    if (e === undefined) {
      if (this.allLoaded || this.gone) return { present: false };
      const json = this.live().getJSON(key);
      if (json === undefined) {
        e = { present: false };
      } else {
        const value = JSON.parse(json);
        e = { present: true, value, json: JSON.stringify(value) };
      }
      this.cache.set(key, e);
    }
    return e;
  }

  loadAll(s) {
    if (this.allLoaded || this.gone) return;
    const data = (s || this.live()).data();
    for (const [k, v] of Object.entries(data)) {
      if (!this.cache.has(k)) this.cache.set(k, { present: true, value: v, json: JSON.stringify(v) });
    }
    this.allLoaded = true;
  }

  set(key, value) {
    if (this.gone) return this.ignored(`setting req.session.${key}`);
    const s = this.live();
    if (value === undefined) return this.remove(key); // express-session: an undefined value is not saved
    s.set(key, value);
    this.cache.set(key, { present: true, value, json: JSON.stringify(value) });
    return true;
  }

  remove(key) {
    if (this.gone) return this.ignored(`deleting req.session.${key}`);
    this.live().remove(key);
    this.cache.set(key, { present: false });
    return true;
  }

  incr(key, by = 1) {
    if (this.gone) {
      this.ignored(`req.session.incr('${key}')`);
      const e = this.cache.get(key);
      return (e && e.present && typeof e.value === 'number' ? e.value : 0) + Number(by);
    }
    const v = this.live().incr(key, by);
    this.cache.set(key, { present: true, value: v, json: JSON.stringify(v) });
    return v;
  }

  // Sends values changed in place since they were read (or set) as sets.
  flush(s) {
    for (const [key, e] of this.cache) {
      if (!e.present) continue;
      let now;
      try {
        now = JSON.stringify(e.value);
      } catch (err) {
        throw bindingError('INVALID_JSON', `req.session.${key} cannot be serialized as JSON: ${err.message}`, { cause: err });
      }
      if (now === undefined) {
        s.remove(key);
      } else if (now !== e.json) {
        s.setJSON(key, now);
        e.json = now;
      }
    }
  }

  // The session's own TTL from cookie.maxAge, for a session this request changed (every
  // session with `rolling`); applied by the commit in the same atomic step.
  applyTtl(s) {
    const { ttlMs, rolling } = this.cfg;
    if (ttlMs !== null && !this.destroyed && (rolling || s.changed)) s.setTtl(ttlMs);
  }

  // Waits until no save, reload, regenerate or rotate is in progress.
  async settled() {
    while (this.busy !== null) await this.busy;
  }

  // Commits once; later calls get the same promise. Resolves with the Set-Cookie value.
  // A save() or reload() still in progress (not awaited by the handler) is waited for, and
  // the session it began again is committed.
  commit() {
    if (this.committing === null) {
      this.committing = (async () => {
        await this.settled();
        const s = this.session;
        this.session = null;
        this.ended = true;
        if (s === null) {
          // A save or reload failed and left no session: its error goes to Express's error
          // handlers, unless its callback had it.
          if (this.failure && !this.failure.reported) throw this.failure.error;
          return this.setCookie;
        }
        try {
          this.flush(s);
          this.applyTtl(s);
        } catch (e) {
          s.abortAsync().catch((x) => debug('abort after a failed commit: %s', x.message));
          throw e;
        }
        const { setCookie } = await s.commit();
        if (setCookie) this.setCookie = setCookie;
        return this.setCookie;
      })();
    }
    return this.committing;
  }

  // The client went away before the response: nothing of a half-finished handler is
  // committed. The session is aborted (sessync_session_abort_async, once a save or reload
  // in progress has settled; its lock wait is cancelled), and later changes are ignored.
  abandon() {
    if (this.committing !== null) return this.committing;
    this.gone = true;
    this.ac.abort();
    this.committing = (async () => {
      await this.settled();
      const s = this.session;
      this.session = null;
      this.ended = true;
      if (s !== null) await s.abortAsync();
      return null;
    })();
    this.committing.catch((e) => debug('aborting the session of a request whose client went away: %s', e.message));
    return this.committing;
  }

  // Runs `work(s)` with the session taken out of `this.session` (handlers wait for the
  // callback); `work` puts a session back, or leaves none when it ended the session and
  // could not begin it again (`failure`). Resolves with work's value.
  exclusive(work) {
    if (this.gone) return Promise.resolve(undefined);
    if (this.committing) return Promise.reject(ended());
    let s;
    try {
      s = this.live();
    } catch (e) {
      return Promise.reject(e);
    }
    this.session = null;
    const p = (async () => {
      try {
        return await work(s);
      } catch (e) {
        if (this.session === null) {
          if (!s.ended) this.session = s; // it failed before ending the session: keep it
          else this.failure = { error: e, reported: false };
        }
        throw e;
      }
    })();
    const busy = p.then(noop, noop).then(() => {
      if (this.busy === busy) this.busy = null;
    });
    this.busy = busy;
    return p;
  }

  // Commits now and begins again on the same id (express-session's save()).
  saveNow() {
    return this.exclusive(async (s) => {
      this.flush(s);
      this.applyTtl(s);
      const wasNew = s.isNew;
      const id = s.id;
      const { setCookie } = await s.commit();
      if (setCookie) this.setCookie = setCookie;
      await this.rebegin(wasNew && !this.setCookie, id);
    });
  }

  reloadNow() {
    return this.exclusive(async (s) => {
      const wasNew = s.isNew && !this.setCookie;
      const id = s.id;
      await s.abortAsync();
      await this.rebegin(wasNew, id);
    });
  }

  async rebegin(fresh, id) {
    this.cache.clear();
    this.allLoaded = false;
    const opts = { lock: this.cfg.lock, signal: this.ac.signal };
    // A session that was never stored has no cookie yet: begin afresh from the request's
    // cookie (a new id) so that the commit sends one.
    this.session = fresh
      ? await this.cfg.store.begin(this.req.headers.cookie, opts)
      : await this.cfg.store.beginId(id, opts);
    this.req.sessionID = this.session.id;
  }

  // express-session's regenerate(): a fresh id (on the pool: sessync_session_rotate) and
  // an empty session.
  regenerateNow() {
    return this.exclusive(async (s) => {
      this.loadAll(s);
      const id = await s.rotateAsync();
      this.session = s;
      for (const [key, e] of this.cache) if (e.present) s.remove(key);
      this.cache.clear();
      this.allLoaded = true; // nothing is left
      this.req.sessionID = id;
    });
  }

  // A fresh id, data kept (on the pool); resolves with it.
  rotateNow() {
    return this.exclusive(async (s) => {
      const id = await s.rotateAsync();
      this.session = s;
      this.req.sessionID = id;
      return id;
    });
  }

  toJSON() {
    this.loadAll();
    const out = { cookie: this.cookie };
    for (const [k, e] of this.cache) if (e.present) out[k] = e.value;
    return out;
  }

  makeProxy() {
    const self = this;
    // An error reaches the callback; without one it reaches Express's error handlers
    // through the commit (express-session ignores it), never an uncaught exception.
    const report = (p, cb, value) => {
      p.then((v) => callLater(cb, null, value === undefined ? v : value), (e) => {
        if (typeof cb === 'function' && self.failure && self.failure.error === e) self.failure.reported = true;
        callLater(cb, e);
      });
    };
    const methods = {
      regenerate(cb) {
        report(self.regenerateNow(), cb);
      },
      destroy(cb) {
        if (self.gone) {
          // The session was aborted; destroying it is still asked for (a logout).
          self.ignored('req.session.destroy()');
          delete self.req.session;
          report(self.cfg.store.destroy(self.req.sessionID), cb, null);
          return undefined;
        }
        let p;
        try {
          self.live().destroy();
          self.destroyed = true;
          p = self.commit();
        } catch (e) {
          return callLater(cb, e);
        }
        delete self.req.session;
        p.then(() => callLater(cb, null), (e) => callLater(cb, e));
        return undefined;
      },
      save(cb) {
        report(self.saveNow(), cb, null);
        return proxy;
      },
      reload(cb) {
        report(self.reloadNow(), cb, null);
        return proxy;
      },
      touch() { return proxy; },
      resetMaxAge() { return proxy; },
      toJSON() { return self.toJSON(); },
      incr(key, by = 1) { return self.incr(key, by); },
      // A fresh id, data kept; resolves with it (sessync_session_rotate on the pool).
      rotate() { return self.rotateNow(); },
    };
    const proxy = new Proxy({}, {
      get(target, prop) {
        if (typeof prop === 'symbol') return target[prop];
        if (Object.prototype.hasOwnProperty.call(methods, prop)) return methods[prop];
        if (prop === 'id') return self.req.sessionID;
        if (prop === 'cookie') return self.cookie;
        if (prop === 'req') return self.req;
        if (prop === 'sessync') return self.session;
        const e = self.load(prop);
        return e.present ? e.value : undefined;
      },
      set(target, prop, value) {
        if (typeof prop === 'symbol') { target[prop] = value; return true; }
        if (RESERVED.has(prop)) {
          throw bindingError('INVALID_ARGUMENT', `req.session.${prop} is the session's own member and cannot be set`);
        }
        return self.set(prop, value);
      },
      deleteProperty(target, prop) {
        if (typeof prop === 'symbol') return delete target[prop];
        if (RESERVED.has(prop)) {
          throw bindingError('INVALID_ARGUMENT', `req.session.${prop} is the session's own member and cannot be deleted`);
        }
        return self.remove(prop);
      },
      has(target, prop) {
        if (typeof prop === 'symbol') return prop in target;
        if (RESERVED.has(prop)) return true;
        return self.load(prop).present;
      },
      ownKeys() {
        self.loadAll();
        const keys = ['cookie'];
        for (const [k, e] of self.cache) if (e.present) keys.push(k);
        return keys;
      },
      getOwnPropertyDescriptor(target, prop) {
        if (typeof prop === 'symbol') return Reflect.getOwnPropertyDescriptor(target, prop);
        if (prop === 'cookie') return { value: self.cookie, writable: true, enumerable: true, configurable: true };
        if (RESERVED.has(prop)) return undefined;
        const e = self.load(prop);
        return e.present ? { value: e.value, writable: true, enumerable: true, configurable: true } : undefined;
      },
      defineProperty(target, prop, desc) {
        if (typeof prop === 'symbol') return Reflect.defineProperty(target, prop, desc);
        if (!('value' in desc)) {
          throw bindingError('INVALID_ARGUMENT', `req.session.${String(prop)}: accessors cannot be stored`);
        }
        return this.set(target, prop, desc.value);
      },
    });
    return proxy;
  }
}

function callLater(cb, err, value) {
  if (typeof cb === 'function') {
    if (err) process.nextTick(cb, err);
    else process.nextTick(cb, null, ...(value === null || value === undefined ? [] : [value]));
  } else if (err) {
    debug('%s (no callback to report it to)', err.message);
  }
}

// Holds the response until the commit is done: the first writeHead, write, flushHeaders
// or end starts the commit and is queued with what follows; when it is done, the
// Set-Cookie header is added and the queue replayed in order.
function hold(res, rs) {
  const original = {
    writeHead: res.writeHead,
    write: res.write,
    end: res.end,
    flushHeaders: res.flushHeaders,
  };
  const queue = [];
  let state = 'open'; // 'open' → 'committing' → 'done'
  let heldWrite = false;

  function replay() {
    state = 'done';
    let ok = true;
    for (const [m, args] of queue) {
      const r = original[m].apply(res, args);
      if (m === 'write' && r === false) ok = false;
    }
    queue.length = 0;
    if (heldWrite && ok && !res.writableEnded) res.emit('drain');
  }

  function start() {
    if (state !== 'open') return;
    state = 'committing';
    rs.commit().then((setCookie) => {
      if (setCookie && !res.headersSent) appendHeader(res, 'Set-Cookie', setCookie);
      replay();
    }, (err) => {
      // The handler's writes were not saved: its response is not sent; the error goes to
      // Express's error handlers, as express-session's save errors do.
      state = 'done';
      queue.length = 0;
      process.nextTick(rs.next, err);
    });
  }

  function wrap(m, ret) {
    res[m] = function held(...args) {
      if (state === 'done') return original[m].apply(this, args);
      queue.push([m, args]);
      if (m === 'write') heldWrite = true;
      start();
      return ret === 'this' ? this : false;
    };
  }
  wrap('writeHead', 'this');
  wrap('write', 'false');
  wrap('end', 'this');
  wrap('flushHeaders', 'this');

  // A client that goes away before the response: its handler may be half-way through, so
  // the session is aborted (nothing written; the lock released now, not at the end of its
  // lease), and changes the handler makes afterwards are ignored.
  res.once('close', () => {
    if (state === 'open') {
      state = 'done';
      rs.abandon();
    }
  });
}

function appendHeader(res, name, value) {
  const prev = res.getHeader(name);
  if (prev === undefined) res.setHeader(name, value);
  else res.setHeader(name, [].concat(prev, value));
}

function expressSession(options = {}) {
  const cfg = resolveConfig(options);
  const { store } = cfg;
  return function sessyncSession(req, res, next) {
    if (req.session) return next();
    const ac = new AbortController();
    let gone = false;
    const onClose = () => { gone = true; ac.abort(); };
    res.once('close', onClose);
    store.begin(req.headers.cookie, { lock: cfg.lock, signal: ac.signal }).then((session) => {
      res.off('close', onClose);
      if (gone) {
        session.abortAsync().catch((e) => debug('aborting the session of a request whose client went away: %s', e.message));
        return;
      }
      const rs = new RequestSession(cfg, req, res, next, session);
      req.sessionStore = store;
      req.sessionID = session.id;
      req.session = rs.proxy;
      hold(res, rs);
      next();
    }, (err) => {
      res.off('close', onClose);
      if (gone) return;
      next(err);
    });
  };
}

module.exports = { expressSession, RESERVED };
