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

// One request's session: the engine's Session, a cache of the values read or set, and
// the commit.
class RequestSession {
  constructor(cfg, req, res, next, session) {
    this.cfg = cfg;
    this.req = req;
    this.res = res;
    this.next = next;
    this.session = session;
    this.cache = new Map(); // key -> { present, value, json }
    this.allLoaded = false;
    this.committing = null; // the commit's promise, once started
    this.setCookie = null;
    this.ended = false;
    this.destroyed = false;
    this.cookie = cookieObject(cfg.cookieView);
    this.proxy = this.makeProxy();
  }

  live() {
    if (this.ended) throw ended();
    if (this.session === null) {
      throw bindingError('INVALID_ARGUMENT', 'req.session is being saved or reloaded: use it in the callback');
    }
    return this.session;
  }

  load(key) {
    let e = this.cache.get(key);
    if (e === undefined) {
      if (this.allLoaded) return { present: false };
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

  loadAll() {
    if (this.allLoaded) return;
    const data = this.live().data();
    for (const [k, v] of Object.entries(data)) {
      if (!this.cache.has(k)) this.cache.set(k, { present: true, value: v, json: JSON.stringify(v) });
    }
    this.allLoaded = true;
  }

  set(key, value) {
    const s = this.live();
    if (value === undefined) return this.remove(key); // express-session: an undefined value is not saved
    s.set(key, value);
    this.cache.set(key, { present: true, value, json: JSON.stringify(value) });
    return true;
  }

  remove(key) {
    this.live().remove(key);
    this.cache.set(key, { present: false });
    return true;
  }

  incr(key, by = 1) {
    const v = this.live().incr(key, by);
    this.cache.set(key, { present: true, value: v, json: JSON.stringify(v) });
    return v;
  }

  // Sends values changed in place since they were read (or set) as sets.
  flush() {
    const s = this.live();
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

  // Commits once; later calls get the same promise. Resolves with the Set-Cookie value.
  commit() {
    if (this.committing === null) {
      this.committing = (async () => {
        const s = this.live();
        try {
          this.flush();
          this.applyTtl(s);
        } catch (e) {
          s.abort();
          this.session = null;
          this.ended = true;
          throw e;
        }
        this.session = null;
        this.ended = true;
        const { setCookie } = await s.commit();
        if (setCookie) this.setCookie = setCookie;
        return this.setCookie;
      })();
    }
    return this.committing;
  }

  // Commits now and begins again on the same id (express-session's save()).
  async saveNow() {
    if (this.committing) throw ended();
    const s = this.live();
    this.flush();
    this.applyTtl(s);
    const wasNew = s.isNew;
    const id = s.id;
    this.session = null;
    const { setCookie } = await s.commit();
    if (setCookie) this.setCookie = setCookie;
    await this.rebegin(wasNew && !this.setCookie, id);
  }

  async reloadNow() {
    if (this.committing) throw ended();
    const s = this.live();
    const wasNew = s.isNew && !this.setCookie;
    const id = s.id;
    this.session = null;
    s.abort();
    await this.rebegin(wasNew, id);
  }

  async rebegin(fresh, id) {
    this.cache.clear();
    this.allLoaded = false;
    const opts = { lock: this.cfg.lock };
    // A session that was never stored has no cookie yet: begin afresh from the request's
    // cookie (a new id) so that the commit sends one.
    this.session = fresh
      ? await this.cfg.store.begin(this.req.headers.cookie, opts)
      : await this.cfg.store.beginId(id, opts);
    this.req.sessionID = this.session.id;
  }

  regenerateNow() {
    const s = this.live();
    this.loadAll();
    s.rotate();
    for (const [key, e] of this.cache) if (e.present) s.remove(key);
    this.cache.clear();
    this.allLoaded = true; // nothing is left
    this.req.sessionID = s.id;
  }

  toJSON() {
    this.loadAll();
    const out = { cookie: this.cookie };
    for (const [k, e] of this.cache) if (e.present) out[k] = e.value;
    return out;
  }

  makeProxy() {
    const self = this;
    const methods = {
      regenerate(cb) {
        try {
          self.regenerateNow();
        } catch (e) {
          return callLater(cb, e);
        }
        return callLater(cb, null);
      },
      destroy(cb) {
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
        self.saveNow().then(() => callLater(cb, null), (e) => callLater(cb, e));
        return proxy;
      },
      reload(cb) {
        self.reloadNow().then(() => callLater(cb, null), (e) => callLater(cb, e));
        return proxy;
      },
      touch() { return proxy; },
      resetMaxAge() { return proxy; },
      toJSON() { return self.toJSON(); },
      incr(key, by = 1) { return self.incr(key, by); },
      rotate() { const s = self.live(); const id = s.rotate(); self.req.sessionID = id; return id; },
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

function callLater(cb, err) {
  if (typeof cb === 'function') process.nextTick(cb, err);
  else if (err) process.nextTick(() => { throw err; });
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

  // A client that goes away before the response ends: commit what was done, so that the
  // lock is released now rather than at the end of its lease.
  res.once('close', () => {
    if (state === 'open') {
      state = 'done';
      rs.commit().catch(() => {});
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
        session.abort();
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
