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
  const header = fs.readFileSync(sessync.headerPath, 'utf8');
  assert.equal(sessync.versionNumber, Number(/SESSYNC_VERSION_NUMBER = (\d+)/.exec(header)[1]));
  assert.equal(sessync.versionNumber, 2000, 'version 0.2.0');
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

test('per-session TTLs: session.setTtl, touch with a TTL, record().ttl', async () => {
  const store = new sessync.Store('mem://?ttl=30m');
  const s = await store.begin(null);
  s.set('x', 1);
  s.setTtl(90_000);
  const id = s.id;
  await s.commit();
  const rec = await store.record(id);
  assert.equal(rec.ttl, 90_000);
  assert.ok(rec.expires_at - rec.last_access <= 90_000, 'it expires by its own TTL, not the store\'s 30 min');
  // With nothing else changed the commit is a touch with the new TTL.
  const s2 = store.beginIdSync(id);
  s2.setTtl(7_200_000);
  await s2.commit();
  assert.equal(store.recordSync(id).ttl, 7_200_000);
  store.patchSync(id, { y: 2 });
  assert.equal(store.recordSync(id).ttl, 7_200_000, 'later writes keep it');
  assert.equal(await store.touch(id, 30_000), true);
  assert.equal(store.recordSync(id).ttl, 30_000);
  assert.equal(store.touchSync(id, 45_000), true);
  assert.equal(store.recordSync(id).ttl, 45_000);
  const other = sessync.generateId();
  store.writeSync(other, {});
  assert.equal(store.recordSync(other).ttl, null, 'follows the store\'s ttl');
  assert.equal(store.recordSync(sessync.generateId()), null);
  assert.equal(await store.record(sessync.generateId()), null);

  // A session with a short TTL of its own expires by it.
  const s3 = store.beginSync(null);
  s3.set('x', 1);
  s3.setTtl(200);
  const shortId = s3.id;
  s3.commitSync();
  assert.notEqual(store.fetchSync(shortId), null);
  const deadline = Date.now() + 10_000;
  while (store.fetchSync(shortId) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  assert.equal(store.fetchSync(shortId), null);

  // Out of range: the engine's INVALID_ARGUMENT, and nothing changes.
  const s4 = store.beginIdSync(id);
  for (const bad of [0, -5, 400 * 24 * 3600 * 1000, Infinity]) {
    engineError(() => s4.setTtl(bad), 'SESSYNC_INVALID_ARGUMENT', /ttl/i);
  }
  engineError(() => s4.setTtl('1h'), 'SESSYNC_INVALID_ARGUMENT', /milliseconds/);
  s4.abort();
  engineError(() => store.touchSync(id, 0), 'SESSYNC_INVALID_ARGUMENT', /ttl/i);
  await assert.rejects(store.touch(sessync.generateId(), 1000), (e) => e.code === 'SESSYNC_NOT_FOUND');
  assert.equal(store.recordSync(id).ttl, 45_000);
  store.close();
});

test('list (pages with a BigInt cursor), listAll and clear', async () => {
  const store = new sessync.Store('mem://?shards=8');
  assert.deepEqual(store.listSync(), { ids: [], cursor: 0n });
  assert.deepEqual(await store.listAll(), []);
  const ids = new Set();
  for (let i = 0; i < 200; i++) {
    const id = sessync.generateId();
    store.patchSync(id, { i }, { create: true });
    ids.add(id);
  }
  const seen = new Set();
  let cursor = 0n;
  let pages = 0;
  do {
    const page = pages % 2 ? store.listSync(cursor, 16) : await store.list(cursor, 16);
    assert.equal(typeof page.cursor, 'bigint');
    for (const id of page.ids) seen.add(id);
    cursor = page.cursor;
    pages++;
  } while (cursor !== 0n);
  assert.ok(pages > 1);
  assert.deepEqual([...seen].sort(), [...ids].sort());
  assert.equal((await store.listAll(7)).length, 200);
  assert.equal(store.listAllSync().length, 200);
  engineError(() => store.listSync(0n, 0), 'SESSYNC_INVALID_ARGUMENT');
  engineError(() => store.listSync(12345), 'SESSYNC_INVALID_ARGUMENT', /BigInt/);
  store.destroySync([...ids][0]);
  assert.equal(await store.clear(), 199);
  assert.equal(store.clearSync(), 0);
  assert.deepEqual(await store.listAll(), []);
  engineError(() => store.patchSync([...ids][1], { x: 1 }), 'SESSYNC_DESTROYED');
  store.close();
});

test('the process exits cleanly, and at once, with library callbacks in flight', () => {
  // Library threads complete async calls through koffi, which runs each callback on the
  // main thread and holds the library thread until it has run. process.exit() with lock
  // waits pending and commits running must neither crash nor hang (30 runs each, at
  // several moments). sessync_async_drain is not used: from the main thread it would
  // wait for callbacks that can only run on the main thread.
  const script = `
    const s = require(${JSON.stringify(path.join(__dirname, '..'))});
    const st = new s.Store('mem://');
    const ids = [];
    for (let i = 0; i < 20; i++) { const id = s.generateId(); st.writeSync(id, { n: 0 }); ids.push(id); }
    const held = ids.map((id) => st.beginIdSync(id));
    for (const id of ids) for (let k = 0; k < 4; k++) st.beginId(id, { waitMs: 60000 }).then((x) => x.commit()).catch(() => {});
    for (let i = 0; i < 100; i++) { const x = st.beginSync(null); x.set('y', i); x.commit().catch(() => {}); }
    let j = 0;
    setInterval(() => { if (j < held.length) held[j++].abort(); }, 0);
    const delay = Number(process.argv[1]);
    if (delay < 0) process.exit(0); else setTimeout(() => process.exit(0), delay);
  `;
  for (let run = 0; run < 30; run++) {
    const delay = [-1, 0, 1, 3, 8][run % 5];
    const started = Date.now();
    const r = spawnSync(process.execPath, ['-e', script, '--', String(delay)], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, `run ${run} (exit after ${delay} ms) ended by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, `run ${run}: ${r.stderr}`);
    assert.ok(Date.now() - started < 20_000, `run ${run} took ${Date.now() - started} ms`);
  }
});

test('a script exits by itself once its pending calls are done', () => {
  // A pending lock wait keeps the event loop alive (as a timer would) until its callback;
  // then nothing holds the process.
  const script = `
    const s = require(${JSON.stringify(path.join(__dirname, '..'))});
    const st = new s.Store('mem://');
    const id = s.generateId(); st.writeSync(id, { n: 0 });
    const held = st.beginIdSync(id);
    st.beginId(id, { waitMs: 60000 }).then((x) => { x.incr('n'); return x.commit(); }).then(() => console.log('done'));
    setTimeout(() => held.abort(), 50);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
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
