// sessync for Node: the engine's store and request flow over its C ABI (koffi), an
// express-session-compatible middleware that loses no concurrent write, and a Store for
// apps that keep express-session. See README.md.
'use strict';

const { native, LoadError } = require('./lib/native');
const { Store, Session, cancelTicket } = require('./lib/core');
const { SessyncError } = require('./lib/errors');
const { expressSession } = require('./lib/middleware');
const { sessyncStore, findExpressSession } = require('./lib/express-store');

// Load now: a missing library or a version mismatch fails at require time.
const loaded = native();

module.exports = {
  Store,
  Session,
  SessyncError,
  LoadError,
  expressSession,
  sessyncStore,
  cancelTicket,
  version: loaded.version,
  versionNumber: loaded.versionNumber,
  libraryPath: loaded.libraryPath,
  headerPath: loaded.headerPath,
  // Generates a fresh session id (192 random bits, 32 base64url characters).
  generateId() {
    const { fn } = native();
    const buf = Buffer.alloc(64);
    const err = Buffer.alloc(512);
    const len = new BigUint64Array(1);
    if (fn.sessync_id_generate(buf, buf.length, len, err) !== 0) throw require('./lib/errors').errorFromBuffer(err);
    return buf.toString('latin1', 0, Number(len[0]));
  },
  // Throws a SessyncError unless `id` is a well-formed session id.
  checkId(id) {
    const { fn } = native();
    const err = Buffer.alloc(512);
    if (typeof id !== 'string' && id !== null && id !== undefined) {
      throw new SessyncError(loaded.status.SESSYNC_STATUS_INVALID_ARGUMENT, 'a session id must be a string');
    }
    if (fn.sessync_id_check(id ?? null, err) !== 0) throw require('./lib/errors').errorFromBuffer(err);
  },
};

let SessyncStoreClass = null;
Object.defineProperty(module.exports, 'SessyncStore', {
  enumerable: true,
  get() {
    if (SessyncStoreClass === null) SessyncStoreClass = sessyncStore(findExpressSession());
    return SessyncStoreClass;
  },
});
