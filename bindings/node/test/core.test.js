'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const sessync = require('..');
const { REPO_ROOT } = require('./helpers');

function engineError(fn, code, message) {
  let caught = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, 'threw');
  assert.ok(caught instanceof Error, 'an ordinary Error');
  assert.equal(caught.code, code, caught.message);
  assert.equal(typeof caught.status, 'number');
  if (message) assert.match(caught.message, message);
  return caught;
}

test('the library matches the header, found in the documented order', () => {
  assert.equal(sessync.versionNumber, 1000);
  assert.match(sessync.version, /^\d+\.\d+\.\d+$/);
  assert.ok(fs.existsSync(sessync.headerPath));
});

test('a header of another version is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessync-hdr-'));
  try {
    const h = fs.readFileSync(path.join(REPO_ROOT, 'include', 'sessync_ffi.h'), 'utf8')
      .replace(/SESSYNC_VERSION_NUMBER = \d+/, 'SESSYNC_VERSION_NUMBER = 999999');
    fs.writeFileSync(path.join(dir, 'sessync_ffi.h'), h);
    const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', path.join(__dirname, '..')],
      { env: { ...process.env, SESSYNC_INCLUDE: dir }, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /version mismatch/);
    const r2 = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', path.join(__dirname, '..')],
      { env: { ...process.env, SESSYNC_LIB: path.join(dir, 'nope.so') }, encoding: 'utf8' });
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /SESSYNC_LIB=.*cannot be loaded/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('store calls, synchronous and on the pool', async () => {
  const store = new sessync.Store('mem://?ttl=1h');
  const id = sessync.generateId();
  sessync.checkId(id);
  assert.equal(store.fetchSync(id), null);
  assert.equal(await store.fetch(id), null);
  assert.equal(store.writeSync(id, { a: 'é ✓ 😀' }), 1);
  assert.deepEqual(await store.fetch(id), { a: 'é ✓ 😀' });
  assert.equal(await store.write(id, { a: 1 }, { expectedVersion: 1 }), 2);
  await assert.rejects(store.write(id, { a: 1 }, { expectedVersion: 1 }), (e) => e.code === 'SESSYNC_CONFLICT');
  assert.equal(await store.patch(id, { b: 2, a: null }), 3);
  assert.equal(await store.incr(id, 'n', 5), 5);
  assert.equal(store.incrSync(id, 'n', -2), 3);
  assert.deepEqual(store.fetchSync(id), { b: 2, n: 3 });
  assert.equal(typeof (await store.touch(id)), 'boolean');
  const id2 = store.rotateSync(id);
  assert.notEqual(id2, id);
  assert.deepEqual(store.fetchSync(id2), { b: 2, n: 3 });
  assert.equal(await store.destroy(id2), true);
  await assert.rejects(store.write(id2, {}), (e) => e.code === 'SESSYNC_DESTROYED' && e instanceof Error);
  assert.equal(store.statsSync().sessions >= 0, true);
  store.close();
});

test('the request flow: begin, get/set/remove/incr, commit, and a cookie back', async () => {
  const store = new sessync.Store('mem://', { cookieName: 'sid' });
  const s = await store.begin(undefined);
  assert.equal(s.isNew, true);
  s.set('user', { name: 'ada' });
  assert.equal(s.incr('visits'), 1);
  assert.equal(s.changed, true);
  const { setCookie } = await s.commit();
  assert.match(setCookie, /^sid=[A-Za-z0-9_-]{32}; /);
  const s2 = store.beginSync(setCookie.split(';')[0]);
  assert.equal(s2.isNew, false);
  assert.deepEqual(s2.data(), { user: { name: 'ada' }, visits: 1 });
  assert.notEqual(s2.token, 0);
  await assert.rejects(store.begin(setCookie.split(';')[0], { waitMs: 0 }), (e) => e.code === 'SESSYNC_LOCK_TIMEOUT');
  const ac = new AbortController();
  const waiting = store.begin(setCookie.split(';')[0], { signal: ac.signal });
  ac.abort();
  await assert.rejects(waiting, (e) => e.code === 'SESSYNC_CANCELLED');
  s2.remove('user');
  assert.equal(s2.get('user'), undefined);
  const id = s2.id;
  s2.commitSync();
  assert.deepEqual(store.fetchSync(id), { visits: 1 });
});

test('bad input throws an ordinary Error with the engine\'s message and never crashes', async () => {
  engineError(() => new sessync.Store(null), 'SESSYNC_NULL_ARGUMENT', /url/);
  engineError(() => new sessync.Store(42), 'SESSYNC_INVALID_ARGUMENT');
  engineError(() => new sessync.Store('bogus://x'), 'SESSYNC_INVALID_ARGUMENT', /scheme/);
  engineError(() => new sessync.Store('mem://', { cookieFormat: 'express' }), 'SESSYNC_INVALID_ARGUMENT');
  engineError(() => new sessync.Store('mem://', { nope: 1 }), 'SESSYNC_INVALID_ARGUMENT', /unknown option/);
  const store = new sessync.Store();
  const id = sessync.generateId();
  engineError(() => store.fetchSync(undefined), 'SESSYNC_NULL_ARGUMENT', /`id` is NULL/);
  engineError(() => store.fetchSync('short'), 'SESSYNC_INVALID_ARGUMENT');
  engineError(() => store.fetchSync({}), 'SESSYNC_INVALID_ARGUMENT', /must be a string/);
  engineError(() => store.fetchSync('a\0b'), 'SESSYNC_INVALID_ARGUMENT', /NUL/);
  engineError(() => store.writeSync(id, undefined), 'SESSYNC_INVALID_JSON');
  engineError(() => store.writeSync(id, [1, 2]), 'SESSYNC_INVALID_JSON');
  engineError(() => store.writeSync(id, { big: 1n }), 'SESSYNC_INVALID_JSON', /BigInt/);
  engineError(() => store.incrSync(id, 'n', 1.5), 'SESSYNC_INVALID_ARGUMENT');
  await assert.rejects(store.fetch(undefined), (e) => e instanceof Error && e.code === 'SESSYNC_NULL_ARGUMENT');
  store.writeSync(id, { s: 'text' });
  engineError(() => store.incrSync(id, 's', 1), 'SESSYNC_NOT_A_NUMBER');
  engineError(() => sessync.checkId('x'), 'SESSYNC_INVALID_ARGUMENT');

  const s = await store.begin(null);
  engineError(() => s.set('k', undefined), 'SESSYNC_INVALID_JSON', /^invalid JSON/);
  engineError(() => s.set('k', () => 1), 'SESSYNC_INVALID_JSON');
  const cyc = {};
  cyc.self = cyc;
  engineError(() => s.set('k', cyc), 'SESSYNC_INVALID_JSON', /circular/);
  engineError(() => s.set(undefined, 1), 'SESSYNC_NULL_ARGUMENT');
  engineError(() => s.setJSON('k', '{not json'), 'SESSYNC_INVALID_JSON');
  s.set('k', 1);
  await s.commit();
  engineError(() => s.get('k'), 'SESSYNC_INVALID_ARGUMENT', /ended/);
  await assert.rejects(s.commit(), (e) => e instanceof Error && /ended/.test(e.message));
  const s2 = store.beginSync(null);
  s2.abort();
  engineError(() => s2.set('k', 1), 'SESSYNC_INVALID_ARGUMENT', /ended/);

  store.close();
  engineError(() => store.fetchSync(id), 'SESSYNC_INVALID_ARGUMENT', /closed/);
  await assert.rejects(async () => store.begin(null), (e) => e instanceof Error && /closed/.test(e.message));
  store.close(); // twice is fine
});

test('a store over sessyncd that is not there fails with the engine\'s Backend error', () => {
  const sock = path.join(os.tmpdir(), `sessync-none-${process.pid}.sock`);
  engineError(() => new sessync.Store(`unix://${sock}?timeout=500ms`), 'SESSYNC_BACKEND', /cannot reach sessyncd/);
});

test('index.d.ts type-checks a sample with tsc', () => {
  // The declaration file must at least parse as TypeScript's declaration syntax: checked
  // with the TypeScript compiler pinned in devDependencies.
  const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  assert.ok(fs.existsSync(tsc), 'typescript is installed (npm install in bindings/node)');
  execFileSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { stdio: 'pipe' });
});
