'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { promisify } = require('node:util');
const express = require('express');
const session = require('express-session');
const sessync = require('..');
const { request, listen, startSessyncd } = require('./helpers');

test('SessyncStore extends session.Store; get/set/destroy/touch over sessyncd', async (t) => {
  const d = await startSessyncd(t);
  const store = new sessync.SessyncStore({ url: d.url });
  t.after(() => store.close());
  assert.ok(store instanceof session.Store);
  const get = promisify(store.get.bind(store));
  const set = promisify(store.set.bind(store));
  const destroy = promisify(store.destroy.bind(store));
  const touch = promisify(store.touch.bind(store));
  const sid = sessync.generateId();
  assert.equal(await get(sid), null);
  const sess = { cookie: { originalMaxAge: 60000, expires: new Date(Date.now() + 60000).toISOString(), httpOnly: true, path: '/' }, n: 1 };
  await set(sid, sess);
  assert.deepEqual(await get(sid), sess);
  await touch(sid, sess);
  await destroy(sid);
  assert.equal(await get(sid), null);
  await assert.rejects(set(sid, sess), (e) => e instanceof Error && e.code === 'SESSYNC_DESTROYED');
  await assert.rejects(get(undefined), (e) => e instanceof Error && e.code === 'SESSYNC_NULL_ARGUMENT');
});

// The session's own TTL in ms as the store has it (null: the store's ttl).
function ttlOf(store, sid) {
  const rec = store.store.recordSync(sid);
  return rec === null ? undefined : rec.ttl;
}

test('SessyncStore: set and touch give each session its cookie\'s TTL', async (t) => {
  const d = await startSessyncd(t);
  const store = new sessync.SessyncStore({ url: d.url });
  t.after(() => store.close());
  const set = promisify(store.set.bind(store));
  const get = promisify(store.get.bind(store));
  const touch = promisify(store.touch.bind(store));
  const sid = sessync.generateId();
  const cookie = (ms) => ({ originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), httpOnly: true, path: '/' });

  // A cookie with an expiry (express-session's serialized cookie): the time left.
  await set(sid, { cookie: cookie(60_000), a: 1, b: { c: [1, 2] } });
  let ttl = ttlOf(store, sid);
  assert.ok(ttl > 55_000 && ttl <= 60_000, `ttl ${ttl}`);
  // set replaces the whole session: keys it no longer has are gone, in the same step.
  await set(sid, { cookie: cookie(120_000), b: { c: [3] }, d: 'x' });
  assert.deepEqual(Object.keys(await get(sid)).sort(), ['b', 'cookie', 'd']);
  assert.deepEqual((await get(sid)).b, { c: [3] });
  ttl = ttlOf(store, sid);
  assert.ok(ttl > 115_000 && ttl <= 120_000, `ttl ${ttl}`);
  const rec = store.store.recordSync(sid);
  assert.ok(rec.expires_at - rec.last_access <= 120_000);

  // touch: cookie.maxAge when there is no expires (an express-session Cookie has both).
  await touch(sid, { cookie: { maxAge: 300_000 } });
  assert.equal(ttlOf(store, sid), 300_000);
  // A browser-session cookie leaves the TTL as it is; so does touching a gone session.
  await touch(sid, { cookie: { originalMaxAge: null, expires: null } });
  assert.equal(ttlOf(store, sid), 300_000);
  await touch(sessync.generateId(), { cookie: cookie(1000) });

  // A new session with a browser-session cookie follows the store's ttl.
  const sid2 = sessync.generateId();
  await set(sid2, { cookie: { originalMaxAge: null, expires: null }, n: 1 });
  assert.equal(ttlOf(store, sid2), null);

  // A cookie that has already expired destroys the session (connect-redis does too).
  await set(sid2, { cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 1000).toISOString() }, n: 2 });
  assert.equal(await get(sid2), null);
  await touch(sid, { cookie: { maxAge: -1 } });
  assert.equal(await get(sid), null);

  // A cookie longer than the engine's longest TTL (one year), as connect-redis takes: the
  // session is saved with a TTL of one year, and touched with it.
  const YEAR = 365 * 24 * 3600 * 1000;
  const sid3 = sessync.generateId();
  await set(sid3, { cookie: cookie(2 * YEAR), n: 1 });
  assert.equal((await get(sid3)).n, 1);
  assert.equal(ttlOf(store, sid3), YEAR);
  store.store.touchSync(sid3, 1000);
  await touch(sid3, { cookie: { maxAge: 2 * YEAR } });
  assert.equal(ttlOf(store, sid3), YEAR);
  await touch(sid3, { cookie: cookie(3 * YEAR) });
  assert.equal(ttlOf(store, sid3), YEAR);
});

test('an express-session app with a two-year cookie.maxAge on SessyncStore saves its sessions', async (t) => {
  const store = new sessync.SessyncStore({ url: 'mem://' });
  t.after(() => store.close());
  const app = express();
  app.use(session({ secret: 'a secret', resave: false, saveUninitialized: false, store,
    cookie: { maxAge: 2 * 365 * 24 * 3600 * 1000 } }));
  app.get('/', (req, res) => {
    req.session.n = (req.session.n || 0) + 1;
    res.json({ n: req.session.n });
  });
  const port = await listen(t, app);
  const r1 = await request(port, 'GET', '/');
  assert.equal(r1.status, 200, r1.body);
  const r2 = await request(port, 'GET', '/', { cookie: r1.cookie });
  assert.equal(r2.json.n, 2);
});

test('SessyncStore: all and length with 1200 sessions (more than koffi\'s async calls at once)', async (t) => {
  for (const backend of ['mem', 'sessyncd']) {
    const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
    const store = new sessync.SessyncStore({ url });
    t.after(() => store.close());
    const ids = new Set();
    for (let i = 0; i < 1200; i++) {
      const sid = sessync.generateId();
      store.store.writeSync(sid, { i });
      ids.add(sid);
    }
    const length = promisify(store.length.bind(store));
    const all = promisify(store.all.bind(store));
    assert.equal(await length(), 1200, backend);
    const [sessions, n] = await Promise.all([all(), length()]);
    assert.equal(n, 1200);
    assert.equal(sessions.length, 1200, backend);
    assert.deepEqual(new Set(sessions.map((s) => s.id)), ids);
    for (const s of sessions) assert.equal(typeof s.i, 'number');
  }
});

test('SessyncStore: all, length and clear as express-session expects them', async (t) => {
  const d = await startSessyncd(t);
  const store = new sessync.SessyncStore({ url: d.url });
  t.after(() => store.close());
  const set = promisify(store.set.bind(store));
  const all = promisify(store.all.bind(store));
  const length = promisify(store.length.bind(store));
  const clear = promisify(store.clear.bind(store));
  assert.equal(await length(), 0);
  assert.deepEqual(await all(), []);
  const sids = [];
  for (let i = 0; i < 30; i++) {
    const sid = sessync.generateId();
    sids.push(sid);
    await set(sid, { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000).toISOString() }, i });
  }
  // One with a short life: `length` counts live sessions only.
  const short = sessync.generateId();
  await set(short, { cookie: { maxAge: 150 }, i: -1 });
  assert.equal(await length(), 31);
  const deadline = Date.now() + 10_000;
  while ((await length()) !== 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  assert.equal(await length(), 30);
  const sessions = await all();
  assert.ok(Array.isArray(sessions));
  assert.equal(sessions.length, 30);
  assert.deepEqual(sessions.map((s) => s.id).sort(), [...sids].sort());
  for (const s of sessions) assert.equal(s.i, sids.indexOf(s.id));
  assert.equal(await clear(), undefined);
  assert.equal(await length(), 0);
  assert.deepEqual(await all(), []);
  // Cleared sessions are tombstoned: a request in flight cannot bring one back.
  await assert.rejects(set(sids[0], { cookie: {}, i: 0 }), (e) => e.code === 'SESSYNC_DESTROYED');
});

test('an express-session app on SessyncStore: the cookie\'s maxAge is each session\'s TTL', async (t) => {
  const d = await startSessyncd(t);
  const store = new sessync.SessyncStore({ url: d.url });
  t.after(() => store.close());
  const app = express();
  app.use(session({ secret: 'a secret', resave: false, saveUninitialized: false, rolling: true, store,
    cookie: { maxAge: 90_000 } }));
  app.get('/', (req, res) => {
    if (req.query.set) req.session.n = (req.session.n || 0) + 1;
    res.json({ id: req.sessionID, n: req.session.n ?? null });
  });
  const port = await listen(t, app);
  const r1 = await request(port, 'GET', '/?set=1');
  const sid = r1.json.id;
  let ttl = ttlOf(store, sid);
  assert.ok(ttl > 85_000 && ttl <= 90_000, `after set: ${ttl}`);
  // An unchanged session is touched (express-session calls store.touch): the TTL is
  // given again.
  store.store.touchSync(sid, 1000);
  assert.equal(ttlOf(store, sid), 1000);
  const r2 = await request(port, 'GET', '/', { cookie: r1.cookie });
  assert.equal(r2.json.n, 1);
  ttl = ttlOf(store, sid);
  assert.ok(ttl > 85_000 && ttl <= 90_000, `after touch: ${ttl}`);
  assert.equal(await promisify(store.length.bind(store))(), 1);
});

test('an express-session app with store: new SessyncStore(): two apps share visitors through sessyncd', async (t) => {
  const d = await startSessyncd(t);
  const mk = () => {
    const app = express();
    const store = new sessync.SessyncStore({ url: d.url });
    t.after(() => store.close());
    app.use(session({ secret: 'a secret', resave: false, saveUninitialized: false, store }));
    app.get('/', (req, res) => {
      req.session.visits = (req.session.visits || 0) + 1;
      res.json({ visits: req.session.visits });
    });
    app.get('/logout', (req, res, next) => req.session.destroy((e) => (e ? next(e) : res.json({ ok: true }))));
    return app;
  };
  const p1 = await listen(t, mk());
  const p2 = await listen(t, mk());
  const r1 = await request(p1, 'GET', '/');
  assert.match(r1.cookie, /^connect\.sid=s%3A/);
  const r2 = await request(p2, 'GET', '/', { cookie: r1.cookie });
  const r3 = await request(p1, 'GET', '/', { cookie: r1.cookie });
  assert.deepEqual([r1.json.visits, r2.json.visits, r3.json.visits], [1, 2, 3]);
  await request(p2, 'GET', '/logout', { cookie: r1.cookie });
  const r4 = await request(p1, 'GET', '/', { cookie: r1.cookie });
  assert.equal(r4.json.visits, 1, 'destroyed: a new session');
});
