'use strict';

const { native } = require('./native');

// An engine error: `status` is the sessync_status number, `code` 'SESSYNC_' + its name
// ('SESSYNC_NOT_FOUND', 'SESSYNC_LOCK_TIMEOUT', …), `message` the engine's message.
class SessyncError extends Error {
  constructor(status, message, options) {
    super(message, options);
    this.name = 'SessyncError';
    this.status = status;
    this.code = `SESSYNC_${native().statusNames[status] || 'UNKNOWN'}`;
  }
}

const ERROR_SIZE = 512; // sizeof(sessync_error): status, len, message[504]

// Reads a sessync_error written into a Buffer by the library.
function errorFromBuffer(buf) {
  const status = buf.readUInt32LE(0);
  const len = Math.min(buf.readUInt32LE(4), ERROR_SIZE - 8);
  return new SessyncError(status, buf.toString('utf8', 8, 8 + len));
}

// Reads a sessync_error the library passed to a callback (a BigInt pointer).
function errorFromPointer(ptr, status) {
  const { koffi } = native();
  if (ptr === null || ptr === undefined || ptr === 0n) {
    return new SessyncError(status, native().fn.sessync_status_str(status));
  }
  const e = koffi.decode(ptr, 'sessync_error');
  // koffi decodes char[504] up to its NUL, which ends the message.
  const msg = typeof e.message === 'string' ? e.message : Buffer.from(e.message).toString('utf8', 0, e.len);
  return new SessyncError(e.status, msg);
}

// An error the binding raises itself before any call (a value C cannot carry, a closed
// handle): the status is the engine's for the same kind of misuse.
function bindingError(statusName, message, options) {
  return new SessyncError(native().status[`SESSYNC_STATUS_${statusName}`], message, options);
}

module.exports = { SessyncError, errorFromBuffer, errorFromPointer, bindingError, ERROR_SIZE };
