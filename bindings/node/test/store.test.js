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
  for (const m of ['all', 'length', 'clear']) {
    await assert.rejects(promisify(store[m].bind(store))(), (e) => e instanceof Error &&
      e.code === 'SESSYNC_UNSUPPORTED' && /not supported until sessync_store_list\/clear land/.test(e.message));
  }
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
