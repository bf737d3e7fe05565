'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const sessync = require('..');
const { request, listen, startSessyncd, until } = require('./helpers');

const SECRET = 'a secret of sixteen bytes or more';

function app(opts, routes) {
  const a = express();
  a.use(sessync.expressSession(opts));
  routes(a);
  a.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
    res.status(500).json({ name: err.name, code: err.code, status: err.status, message: err.message,
      isError: err instanceof Error });
  });
  return a;
}

test('req.session behaves as express-session\'s: set, read, delete, nested changes, id, cookie', async (t) => {
  const port = await listen(t, app({ secret: SECRET, cookie: { maxAge: 60_000 } }, (a) => {
    a.get('/set', (req, res) => {
      req.session.user = { name: 'ada', roles: ['admin'] };
      req.session.theme = 'dark';
      res.json({ id: req.session.id, sid: req.sessionID, cookie: req.session.cookie });
    });
    a.get('/mutate', (req, res) => {
      req.session.user.roles.push('ops'); // in place: detected at commit
      delete req.session.theme;
      res.json({ has: 'theme' in req.session, keys: Object.keys(req.session) });
    });
    a.get('/show', (req, res) => res.json(req.session));
  }));
  const r1 = await request(port, 'GET', '/set');
  assert.equal(r1.status, 200);
  assert.match(r1.cookie, /^connect\.sid=s%3A[A-Za-z0-9_-]{32}\./, 'express-session\'s cookie format');
  assert.equal(r1.json.id, r1.json.sid);
  assert.equal(r1.json.cookie.path, '/');
  assert.equal(r1.json.cookie.httpOnly, true);
  const r2 = await request(port, 'GET', '/mutate', { cookie: r1.cookie });
  assert.deepEqual(r2.json, { has: false, keys: ['cookie', 'user'] });
  const r3 = await request(port, 'GET', '/show', { cookie: r1.cookie });
  assert.deepEqual(r3.json.user, { name: 'ada', roles: ['admin', 'ops'] });
  assert.equal(r3.json.theme, undefined);
  // With a maxAge the cookie is sent again to extend it; it names the same session.
  for (const c of r3.setCookie) assert.equal(c.split(';')[0], r1.cookie);
});

test('regenerate, save, reload and destroy', async (t) => {
  const port = await listen(t, app({ secret: SECRET }, (a) => {
    a.get('/login', (req, res, next) => {
      req.session.cart = 3;
      const before = req.sessionID;
      req.session.regenerate((err) => {
        if (err) return next(err);
        req.session.user = 'ada';
        res.json({ before, after: req.sessionID, cart: req.session.cart ?? null });
      });
    });
    a.get('/save', (req, res, next) => {
      req.session.saved = 1;
      req.session.save((err) => {
        if (err) return next(err);
        req.session.after = 2;
        res.json({ id: req.sessionID });
      });
    });
    a.get('/reload', (req, res, next) => {
      req.session.unsaved = true;
      req.session.reload((err) => {
        if (err) return next(err);
        res.json({ unsaved: req.session.unsaved ?? null, user: req.session.user });
      });
    });
    a.get('/logout', (req, res, next) => {
      req.session.destroy((err) => {
        if (err) return next(err);
        res.json({ session: req.session === undefined });
      });
    });
    a.get('/show', (req, res) => res.json(req.session));
  }));
  const first = await request(port, 'GET', '/save');
  assert.equal(first.status, 200, first.body);
  const cookie = first.cookie;
  assert.ok(cookie, 'a new session saved early still gets its cookie');
  let r = await request(port, 'GET', '/show', { cookie });
  assert.equal(r.json.saved, 1);
  assert.equal(r.json.after, 2, 'changes after save() are committed too');
  r = await request(port, 'GET', '/login', { cookie });
  assert.notEqual(r.json.after, r.json.before);
  assert.equal(r.json.cart, null, 'regenerate starts an empty session, as express-session does');
  const cookie2 = r.cookie;
  assert.ok(cookie2 && cookie2 !== cookie);
  r = await request(port, 'GET', '/reload', { cookie: cookie2 });
  assert.deepEqual(r.json, { unsaved: null, user: 'ada' });
  r = await request(port, 'GET', '/logout', { cookie: cookie2 });
  assert.equal(r.json.session, true);
  assert.ok(r.setCookie.some((c) => /Expires=Thu, 01 Jan 1970|Max-Age=0/.test(c)), `a removal cookie: ${r.setCookie}`);
  r = await request(port, 'GET', '/show', { cookie: cookie2 });
  assert.equal(r.json.user, undefined, 'destroyed');
});

test('32 concurrent requests of one visitor lose nothing (one process, mem://)', async (t) => {
  const { setTimeout: sleep } = require('node:timers/promises');
  const port = await listen(t, app({ secret: SECRET }, (a) => {
    a.post('/change', async (req, res) => {
      const i = Number(req.query.i);
      const list = req.session.list || [];
      if (!req.session.seen) req.session.seen = {};
      const seen = req.session.seen;
      await sleep(2);
      req.session.list = [...list, i];
      seen[i] = true;
      res.json({ count: req.session.incr('count') });
    });
    a.get('/show', (req, res) => res.json(req.session));
  }));
  const { cookie } = await request(port, 'POST', '/change?i=-1');
  await Promise.all(Array.from({ length: 32 }, (_, i) => request(port, 'POST', `/change?i=${i}`, { cookie })));
  const s = (await request(port, 'GET', '/show', { cookie })).json;
  assert.equal(s.count, 33);
  assert.equal(s.list.length, 33);
  assert.equal(Object.keys(s.seen).length, 33);
});

test('bad input in a handler is an ordinary Error with the engine\'s message; the process lives on', async (t) => {
  let after = null;
  const port = await listen(t, app({}, (a) => {
    a.get('/bigint', (req) => { req.session.x = 10n; });
    a.get('/cycle', (req) => { const c = {}; c.self = c; req.session.x = c; });
    a.get('/explicit-undefined', (req) => { req.session.sessync.set('x', undefined); });
    a.get('/reserved', (req) => { req.session.cookie = {}; });
    a.get('/late', (req, res) => {
      res.on('finish', () => {
        try { req.session.x = 1; } catch (e) { after = { code: e.code, message: e.message, isError: e instanceof Error }; }
      });
      res.json({ ok: true });
    });
    a.get('/undefined-deletes', (req, res) => { req.session.a = 1; req.session.a = undefined; res.json({ a: 'a' in req.session }); });
  }));
  let r = await request(port, 'GET', '/bigint');
  assert.equal(r.status, 500);
  assert.equal(r.json.code, 'SESSYNC_INVALID_JSON');
  assert.equal(r.json.isError, true);
  r = await request(port, 'GET', '/cycle');
  assert.equal(r.json.code, 'SESSYNC_INVALID_JSON');
  assert.match(r.json.message, /circular/);
  r = await request(port, 'GET', '/explicit-undefined');
  assert.equal(r.json.code, 'SESSYNC_INVALID_JSON');
  assert.equal(r.json.status, 13);
  assert.match(r.json.message, /^invalid JSON/, 'the engine\'s message');
  r = await request(port, 'GET', '/reserved');
  assert.equal(r.json.code, 'SESSYNC_INVALID_ARGUMENT');
  r = await request(port, 'GET', '/late');
  assert.equal(r.status, 200);
  assert.deepEqual(after && after.code, 'SESSYNC_INVALID_ARGUMENT');
  assert.equal(after.isError, true);
  assert.match(after.message, /after its commit/);
  r = await request(port, 'GET', '/undefined-deletes');
  assert.deepEqual(r.json, { a: false });
});

test('over sessyncd: a session shared by two apps on one daemon', async (t) => {
  const d = await startSessyncd(t);
  const mk = () => app({ url: d.url, secret: SECRET }, (a) => {
    a.get('/', (req, res) => res.json({ visits: req.session.incr('visits') }));
  });
  const p1 = await listen(t, mk());
  const p2 = await listen(t, mk());
  const r1 = await request(p1, 'GET', '/');
  const r2 = await request(p2, 'GET', '/', { cookie: r1.cookie });
  const r3 = await request(p1, 'GET', '/', { cookie: r1.cookie });
  assert.deepEqual([r1.json.visits, r2.json.visits, r3.json.visits], [1, 2, 3]);
});

test('cookie.maxAge is the TTL of the sessions a request changes, and of every one with rolling', async (t) => {
  const d = await startSessyncd(t);
  const reader = new sessync.Store(d.url);
  t.after(() => reader.close());
  const ttlOf = (id) => reader.recordSync(id).ttl;
  // Three apps on one daemon, one visitor (the same cookie name and secret).
  const mk = (opts) => app({ url: d.url, secret: SECRET, ...opts }, (a) => {
    a.get('/', (req, res) => res.json({ id: req.sessionID, n: req.session.n ?? null }));
    a.get('/change', (req, res) => res.json({ id: req.sessionID, n: req.session.incr('n') }));
  });
  const short = await listen(t, mk({ cookie: { maxAge: 60_000 } }));
  const long = await listen(t, mk({ cookie: { maxAge: 120_000 } }));
  const rolling = await listen(t, mk({ cookie: { maxAge: 180_000 }, rolling: true }));
  const browser = await listen(t, mk({}));

  const r1 = await request(short, 'GET', '/change');
  const id = r1.json.id;
  assert.equal(ttlOf(id), 60_000, 'a changed session gets maxAge');
  const rec = reader.recordSync(id);
  assert.ok(rec.expires_at - rec.last_access <= 60_000, 'and expires by it');
  await request(long, 'GET', '/', { cookie: r1.cookie });
  assert.equal(ttlOf(id), 60_000, 'a request that changes nothing leaves it (without rolling)');
  await request(long, 'GET', '/change', { cookie: r1.cookie });
  assert.equal(ttlOf(id), 120_000);
  const r4 = await request(rolling, 'GET', '/', { cookie: r1.cookie });
  assert.equal(r4.json.n, 2);
  assert.equal(ttlOf(id), 180_000, 'rolling: every request gives it maxAge');
  await request(browser, 'GET', '/change', { cookie: r1.cookie });
  assert.equal(ttlOf(id), 180_000, 'no maxAge: the TTL is left as it is');

  // A new session with nothing set is still not stored, rolling or not.
  const r5 = await request(rolling, 'GET', '/');
  assert.equal(reader.recordSync(r5.json.id), null);
  // A browser-session cookie app's sessions follow the store's ttl.
  const r6 = await request(browser, 'GET', '/change');
  assert.equal(ttlOf(r6.json.id), null);
  // Logging out with a maxAge destroys the session as before.
  const out = await listen(t, app({ url: d.url, secret: SECRET, cookie: { maxAge: 60_000 } }, (a) => {
    a.get('/logout', (req, res, next) => req.session.destroy((e) => (e ? next(e) : res.json({ ok: true }))));
  }));
  assert.equal((await request(out, 'GET', '/logout', { cookie: r1.cookie })).json.ok, true);
  assert.equal(reader.recordSync(id), null);
});

test('a cookie.maxAge outside a session TTL\'s range is refused at setup', () => {
  for (const maxAge of [0, -1, 400 * 24 * 3600 * 1000, 'soon', NaN]) {
    assert.throws(() => sessync.expressSession({ secret: SECRET, cookie: { maxAge } }),
      (e) => e instanceof Error && e.code === 'SESSYNC_INVALID_ARGUMENT' && /maxAge/.test(e.message));
  }
  sessync.expressSession({ cookie: { maxAge: null } });
});

test('save() not awaited, then a redirect: a 302 with the cookie, the changes saved, the lock released', async (t) => {
  for (const backend of ['mem', 'sessyncd']) {
    const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
    const port = await listen(t, app({ url, secret: SECRET, lockWait: 3000 }, (a) => {
      a.get('/login', (req, res) => {
        req.session.user = 'ada';
        req.session.save(); // not awaited (a common express-session idiom before a redirect)
        res.redirect('/home');
      });
      a.get('/again', (req, res) => {
        req.session.visits = (req.session.visits || 0) + 1;
        req.session.save();
        req.session.reload(() => {}); // while the save runs: refused through its callback
        res.redirect('/home');
      });
      a.get('/show', (req, res) => res.json(req.session));
    }));
    const r1 = await request(port, 'GET', '/login');
    assert.equal(r1.status, 302, `${backend}: ${r1.body}`);
    assert.equal(r1.headers.location, '/home');
    assert.ok(r1.cookie, `${backend}: the new session's cookie is sent`);
    const started = Date.now();
    const r2 = await request(port, 'GET', '/show', { cookie: r1.cookie });
    assert.equal(r2.status, 200, r2.body);
    assert.equal(r2.json.user, 'ada');
    assert.ok(Date.now() - started < 2000, `${backend}: the next request waited ${Date.now() - started} ms for the lock`);
    const r3 = await request(port, 'GET', '/again', { cookie: r1.cookie });
    assert.equal(r3.status, 302, r3.body);
    const r4 = await request(port, 'GET', '/show', { cookie: r1.cookie });
    assert.equal(r4.status, 200, r4.body);
    assert.equal(r4.json.visits, 1);
  }
});

test('a client that goes away mid-request: the session is aborted, later writes are ignored, nothing crashes', async (t) => {
  for (const backend of ['mem', 'sessyncd']) {
    const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
    const rejections = [];
    const onRejection = (e) => rejections.push(e);
    process.on('unhandledRejection', onRejection);
    t.after(() => process.off('unhandledRejection', onRejection));
    let handlerStarted = false;
    let closed = false;
    let openGate;
    const gate = new Promise((r) => { openGate = r; });
    let wrote = null;
    const port = await listen(t, app({ url, secret: SECRET, lockWait: 3000 }, (a) => {
      a.get('/init', (req, res) => { req.session.kept = 1; res.json({}); });
      a.get('/slow', async (req, res) => {
        req.session.before = 1; // a half-finished handler's change: not committed
        handlerStarted = true;
        res.on('close', () => { closed = true; });
        await gate;
        req.session.after = 2; // after the client went away: ignored, not thrown
        delete req.session.kept;
        wrote = { incr: req.session.incr('n'), after: req.session.after };
        res.json({ ok: true });
      });
      a.get('/show', (req, res) => res.json(req.session));
    }));
    const { cookie } = await request(port, 'GET', '/init');
    const aborted = new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow', headers: { cookie }, agent: false });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      until('the handler to start', () => handlerStarted).then(() => setTimeout(() => req.destroy(), 50));
    });
    await aborted;
    await until('the server to see the client go', () => closed);
    openGate();
    await until('the handler to finish', () => wrote !== null);
    assert.equal(wrote.incr, 1);
    const started = Date.now();
    const r = await request(port, 'GET', '/show', { cookie });
    assert.equal(r.status, 200, r.body);
    assert.ok(Date.now() - started < 2000, `${backend}: the lock was held ${Date.now() - started} ms`);
    assert.equal(r.json.kept, 1, `${backend}: nothing of the aborted request was written`);
    assert.equal(r.json.before, undefined);
    assert.equal(r.json.after, undefined);
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(rejections, [], `${backend}: no unhandled rejection`);
  }
});

test('the middleware never blocks the event loop on abort or rotate (their async variants only)', async (t) => {
  const d = await startSessyncd(t);
  const calls = [];
  const proto = sessync.Session.prototype;
  const saved = { abort: proto.abort, rotate: proto.rotate, commitSync: proto.commitSync };
  for (const m of Object.keys(saved)) {
    proto[m] = function blocked(...args) { calls.push(m); return saved[m].apply(this, args); };
  }
  t.after(() => Object.assign(proto, saved));
  const port = await listen(t, app({ url: d.url, secret: SECRET }, (a) => {
    a.get('/init', (req, res) => { req.session.a = 1; res.json({}); });
    a.get('/rotate', async (req, res) => {
      const before = req.sessionID;
      const id = await req.session.rotate();
      res.json({ before, id, sid: req.sessionID, a: req.session.a });
    });
    a.get('/regenerate', (req, res, next) => req.session.regenerate((e) => (e ? next(e) : res.json({ a: req.session.a ?? null }))));
    a.get('/reload', (req, res, next) => req.session.reload((e) => (e ? next(e) : res.json({ a: req.session.a }))));
    a.get('/bad', (req) => { req.session.x = 10n; });
  }));
  const { cookie } = await request(port, 'GET', '/init');
  const r1 = await request(port, 'GET', '/rotate', { cookie });
  assert.equal(r1.status, 200, r1.body);
  assert.notEqual(r1.json.id, r1.json.before);
  assert.equal(r1.json.sid, r1.json.id);
  assert.equal(r1.json.a, 1);
  assert.ok(r1.cookie && r1.cookie !== cookie);
  assert.equal((await request(port, 'GET', '/reload', { cookie: r1.cookie })).json.a, 1);
  assert.deepEqual((await request(port, 'GET', '/regenerate', { cookie: r1.cookie })).json, { a: null });
  assert.equal((await request(port, 'GET', '/bad')).status, 500);
  assert.deepEqual(calls, [], 'no synchronous abort, rotate or commit');
});
