// SessyncStore: a store for express-session (the `session.Store` API), for apps that keep
// express-session and change one line:
//
//   app.use(session({ secret, store: new SessyncStore({ url: 'unix:///run/sessync.sock' }) }))
//
// express-session hands whole sessions to `set`, so this path is last-write-wins, as with
// connect-redis: two concurrent requests of one visitor may lose each other's writes.
// sessync.expressSession() is the lossless one.
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

function unsupported(what) {
  const e = new Error(`SessyncStore.${what}() is not supported until sessync_store_list/clear land in the C ABI`);
  e.code = 'SESSYNC_UNSUPPORTED';
  return e;
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

    // The whole session, as express-session's Store API has it: last write wins.
    // TODO(sessync_session_set_ttl): a per-session TTL from sess.cookie.maxAge; until the
    // C ABI has it, sessions live for the store's `ttl` (storeOptions.ttl or the URL's).
    set(sid, sess, cb) {
      done(cb, call(() => this.store.write(sid, sess)).then(() => undefined));
    }

    destroy(sid, cb) {
      done(cb, call(() => this.store.destroy(sid)).then(() => undefined));
    }

    touch(sid, sess, cb) {
      done(cb, call(() => this.store.touch(sid)).then(() => undefined));
    }

    all(cb) { done(cb, Promise.reject(unsupported('all'))); }
    length(cb) { done(cb, Promise.reject(unsupported('length'))); }
    clear(cb) { done(cb, Promise.reject(unsupported('clear'))); }

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

module.exports = { sessyncStore, findExpressSession };
