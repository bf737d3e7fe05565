// SessyncStore: a store for express-session (the `session.Store` API), for apps that keep
// express-session and change one line:
//
//   app.use(session({ secret, store: new SessyncStore({ url: 'unix:///run/sessync.sock' }) }))
//
// express-session hands whole sessions to `set`, so this path is last-write-wins, as with
// connect-redis: two concurrent requests of one visitor may lose each other's writes.
// sessync.expressSession() is the lossless one.
//
// Each session lives as long as its cookie: `set` and `touch` give it its own idle TTL
// from sess.cookie (the time left until `cookie.expires`, else `cookie.maxAge`, in ms;
// connect-redis's rule). `set` writes the data and the TTL in one atomic step, as one
// request of the engine (sessync_session_begin_id, then a set or remove of each key that
// differs from the stored session, sessync_session_set_ttl, and the commit's single
// patch), so no reader ever sees the new data with the old TTL; `touch` is one
// sessync_store_touch_ttl. A cookie without an expiry (a browser-session cookie) leaves
// the store's `ttl` (or a TTL the session already had: the C ABI cannot take one back).
// A cookie that has already expired destroys the session, as connect-redis does. A TTL
// over the engine's maximum, one year (MAX_TTL_MS), is cut to one year: connect-redis
// takes a cookie of two years, and express-session apps that set one must keep working
// (such a session is kept for a year of inactivity, then expires before its cookie).
'use strict';

const path = require('node:path');
const { Store } = require('./core');
const { bindingError } = require('./errors');

// express-session's Store: the app's copy first (the main module's resolution, then the
// working directory's), so that `store instanceof session.Store` holds in the app; this
// package's own last (a package installed by `npm install <folder>` is a link and
// resolves from its real path, which may hold another copy).
function findExpressSession() {
  const tries = [require.main ? require.main.paths : null, [process.cwd(), path.join(process.cwd(), 'node_modules')], undefined];
  for (const paths of tries) {
    if (paths === null) continue;
    try {
      const where = paths === undefined ? require.resolve('express-session') : require.resolve('express-session', { paths });
      return require(where);
    } catch {
      // next
    }
  }
  throw new Error('SessyncStore needs express-session (npm install express-session), or use ' +
    'sessync.sessyncStore(require("express-session"))');
}

// The engine's longest TTL of a session: one year, in ms.
const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

// How many sessions all() fetches at once.
const FETCH_BATCH = 16;

// The idle TTL a session's cookie asks for, in ms: the time left until cookie.expires,
// else cookie.maxAge, at most MAX_TTL_MS; null when the cookie has neither (a
// browser-session cookie).
function cookieTtl(sess) {
  const c = sess && sess.cookie;
  if (!c || typeof c !== 'object') return null;
  if (c.expires !== undefined && c.expires !== null) {
    const at = new Date(c.expires).getTime();
    if (!Number.isNaN(at)) return Math.min(at - Date.now(), MAX_TTL_MS);
  }
  if (typeof c.maxAge === 'number' && !Number.isNaN(c.maxAge)) return Math.min(c.maxAge, MAX_TTL_MS);
  return null;
}

function done(cb, promise) {
  const call = typeof cb === 'function' ? cb : () => {};
  promise.then((v) => call(null, v), (e) => call(e));
}

const classes = new WeakMap();

// The SessyncStore class over a given express-session module.
function sessyncStore(session) {
  const Base = session && session.Store;
  if (typeof Base !== 'function') throw new TypeError('sessyncStore(session): pass the express-session module');
  if (classes.has(Base)) return classes.get(Base);
  class SessyncStore extends Base {
    // options: { url = 'mem://', store (a sessync.Store to share), storeOptions: { ttl, … } }
    constructor(options = {}) {
      super();
      if (options === null || typeof options !== 'object') {
        throw bindingError('INVALID_ARGUMENT', 'SessyncStore(options): options must be an object');
      }
      if (options.store !== undefined) {
        if (!(options.store instanceof Store)) throw bindingError('INVALID_ARGUMENT', 'SessyncStore: `store` must be a sessync.Store');
        this.store = options.store;
      } else {
        this.store = new Store(options.url || 'mem://', options.storeOptions ? { storeOptions: options.storeOptions } : {});
      }
    }

    get(sid, cb) {
      done(cb, call(() => this.store.fetch(sid)));
    }

    // The whole session, as express-session's Store API has it (last write wins), with
    // the cookie's TTL, in one atomic step (see the top of this file).
    set(sid, sess, cb) {
      done(cb, call(() => this._set(sid, sess)));
    }

    async _set(sid, sess) {
      const ttl = cookieTtl(sess);
      if (ttl !== null && ttl <= 0) {
        await this.store.destroy(sid);
        return undefined;
      }
      // Serialize first: a session JSON cannot represent fails before anything is begun.
      const data = JSON.parse(JSON.stringify(sess === undefined ? null : sess));
      if (data === null || typeof data !== 'object' || Array.isArray(data)) {
        // The engine's own refusal of a non-object session.
        await this.store.write(sid, sess);
        return undefined;
      }
      const s = await this.store.beginId(sid, { lock: false });
      try {
        const stored = s.data();
        for (const key of Object.keys(stored)) {
          if (!Object.prototype.hasOwnProperty.call(data, key)) s.remove(key);
        }
        for (const [key, value] of Object.entries(data)) {
          const json = JSON.stringify(value);
          if (!Object.prototype.hasOwnProperty.call(stored, key) || JSON.stringify(stored[key]) !== json) {
            s.setJSON(key, json);
          }
        }
        if (ttl !== null) s.setTtl(ttl);
      } catch (e) {
        await s.abortAsync().catch(() => {});
        throw e;
      }
      await s.commit();
      return undefined;
    }

    destroy(sid, cb) {
      done(cb, call(() => this.store.destroy(sid)).then(() => undefined));
    }

    // Refreshes the session's expiry with its cookie's TTL (sessync_store_touch_ttl; a
    // plain touch for a browser-session cookie). A session that has gone meanwhile is
    // not an error, as with connect-redis.
    touch(sid, sess, cb) {
      done(cb, call(async () => {
        const ttl = cookieTtl(sess);
        if (ttl !== null && ttl <= 0) {
          await this.store.destroy(sid);
          return undefined;
        }
        try {
          await this.store.touch(sid, ttl === null ? undefined : ttl);
        } catch (e) {
          if (e.code !== 'SESSYNC_NOT_FOUND') throw e;
        }
        return undefined;
      }));
    }

    // Every live session, as an array (express-session's Store API), each with its `id`
    // (as connect-redis gives them): the ids from sessync_store_list, then each session
    // fetched, FETCH_BATCH at a time. A session that goes between the two is left out.
    all(cb) {
      done(cb, call(async () => {
        const ids = await this.store.listAll();
        const out = [];
        for (let i = 0; i < ids.length; i += FETCH_BATCH) {
          const batch = ids.slice(i, i + FETCH_BATCH);
          const sessions = await Promise.all(batch.map((id) => this.store.fetch(id)));
          sessions.forEach((sess, j) => {
            if (sess !== null) out.push({ ...sess, id: batch[j] });
          });
        }
        return out;
      }));
    }

    // How many live sessions there are (expired ones are not counted).
    length(cb) {
      done(cb, call(async () => (await this.store.listAll()).length));
    }

    // Destroys every session (tombstoned: requests in flight cannot bring one back).
    clear(cb) {
      done(cb, call(() => this.store.clear()).then(() => undefined));
    }

    close() { this.store.close(); }
  }
  classes.set(Base, SessyncStore);
  return SessyncStore;
}

function call(f) {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

module.exports = { sessyncStore, findExpressSession, MAX_TTL_MS };
