// An Express app in Node's cluster mode: N worker processes share one port and, through
// sessyncd, one session per visitor. Every request of a visitor takes the session's lock,
// so a burst of concurrent requests served by different workers loses nothing.
//
//   target/release/sessyncd --unix /tmp/sessync.sock &
//   node bindings/node/examples/cluster.js --store unix:///tmp/sessync.sock --port 8080
//   curl -c jar -b jar http://127.0.0.1:8080/
//
// Flags: --port (0 picks a free one), --workers (4), --store (a sessync store URL; each
// worker opens its own handle on it), --secret (express-session's secret; the cookie is
// then express-session's `connect.sid` format). Prints `listening on PORT` when every
// worker listens. Routes (JSON):
//   GET  /                     counts visits: {worker, visits}
//   POST /change?i=N&delay=MS  appends N to `list`, sets `seen[N]` in place, increments
//                              `count`, waiting MS between reading and writing
//   GET  /show                 the session
'use strict';

const cluster = require('node:cluster');
const { setTimeout: sleep } = require('node:timers/promises');

function args() {
  const o = { port: 8080, workers: 4, store: null, secret: 'a secret of sixteen bytes or more' };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const v = a[i + 1];
    if (v === undefined) throw new Error(`${a[i]} needs a value`);
    if (a[i] === '--port') o.port = Number(v);
    else if (a[i] === '--workers') o.workers = Number(v);
    else if (a[i] === '--store') o.store = v;
    else if (a[i] === '--secret') o.secret = v;
    else throw new Error(`unknown flag ${a[i]}`);
  }
  if (!o.store) throw new Error('--store URL is required (e.g. unix:///tmp/sessync.sock)');
  return o;
}

const opts = args();

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < opts.workers; i++) {
    const w = cluster.fork({ WORKER_NUMBER: String(i + 1) });
    w.on('message', (m) => {
      if (m && m.listening !== undefined && ++listening === opts.workers) {
        process.stdout.write(`listening on ${m.listening}\n`);
      }
    });
  }
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) {
      process.stderr.write(`worker ${w.process.pid} exited (${signal || code})\n`);
      process.exit(1);
    }
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const express = require('express');
  const sessync = require('..'); // in an app: require('sessync')

  const app = express();
  app.use(sessync.expressSession({ url: opts.store, secret: opts.secret, cookie: { maxAge: 3600_000 } }));

  app.get('/', (req, res) => {
    res.json({ worker: Number(process.env.WORKER_NUMBER), visits: req.session.incr('visits') });
  });

  app.post('/change', async (req, res, next) => {
    try {
      const i = Number(req.query.i);
      const list = req.session.list || [];      // read …
      if (!req.session.seen) req.session.seen = {};
      const seen = req.session.seen;
      await sleep(Number(req.query.delay || 0)); // … other requests of this visitor wait …
      req.session.list = [...list, i];          // … write: a new value
      seen[i] = Number(process.env.WORKER_NUMBER); // … a change in place, kept too
      const count = req.session.incr('count');  // an atomic increment
      res.json({ worker: Number(process.env.WORKER_NUMBER), count });
    } catch (e) {
      next(e);
    }
  });

  app.get('/show', (req, res) => res.json(req.session));

  const server = app.listen(opts.port, '127.0.0.1', () => {
    process.send({ listening: server.address().port });
  });
}
