'use strict';

// While a request waits for its session's lock, the event loop keeps serving: the wait
// parks no thread on mem:// and uses the library's own pool with sessyncd, never the
// libuv pool (which fs calls below still get) nor the JS thread (a timer's lag).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const express = require('express');
const sessync = require('..');
const { request, listen, startSessyncd, until } = require('./helpers');

for (const backend of ['mem', 'sessyncd']) {
  test(`event loop keeps serving while requests wait on a session lock (${backend})`, { timeout: 60_000 }, async (t) => {
    const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
    let openGate;
    let gate = new Promise((r) => { openGate = r; });
    let holding = false;
    let waitingServed = 0;
    const app = express();
    app.use(sessync.expressSession({ url, lockWait: 60_000 }));
    app.get('/hold', async (req, res) => {
      req.session.held = (req.session.held || 0) + 1;
      holding = true;
      await gate;
      res.json({ ok: true });
    });
    app.get('/wait', (req, res) => {
      waitingServed++;
      res.json({ held: req.session.held });
    });
    app.get('/ping', (req, res) => res.json({ pong: true }));
    app.get('/init', (req, res) => { req.session.init = true; res.json({}); });
    const port = await listen(t, app);

    // A session, then one request that holds its lock …
    const cookie = (await request(port, 'GET', '/init')).cookie;
    assert.ok(cookie);
    const holder = request(port, 'GET', '/hold', { cookie });
    await until('the holder to hold the lock', () => holding);
    // … and 8 more of the same visitor that must wait for it (more than libuv's 4 threads).
    const waiters = Array.from({ length: 8 }, () => request(port, 'GET', '/wait', { cookie }));

    // Meanwhile: a timer's lag stays small, other visitors are served, and the libuv pool
    // is free (fs calls complete): none of these would finish if the waits blocked them.
    let maxLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 5);
      last = now;
    }, 5);
    for (let round = 0; round < 10; round++) {
      const pings = await Promise.all(Array.from({ length: 10 }, () => request(port, 'GET', '/ping')));
      for (const p of pings) assert.equal(p.status, 200);
      await Promise.all(Array.from({ length: 8 }, () => fs.promises.readFile(__filename)));
    }
    clearInterval(timer);
    assert.equal(waitingServed, 0, 'the waiters are still waiting for the lock');
    assert.ok(maxLag < 200, `the event loop lagged ${maxLag.toFixed(1)} ms`);

    openGate();
    const h = await holder;
    assert.equal(h.status, 200);
    const done = await Promise.all(waiters);
    for (const w of done) assert.deepEqual(w.json, { held: 1 }, 'each waiter saw the holder\'s write');
    assert.equal(waitingServed, 8);
    gate = null;
    t.diagnostic(`max timer lag while 8 requests waited on the lock: ${maxLag.toFixed(1)} ms`);
  });
}

