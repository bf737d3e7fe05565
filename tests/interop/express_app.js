// The Express app of the interop tests: express-session with connect-redis on a real
// Redis, the way a Node application would share its sessions with a sessync server.
//
//   node express_app.js --port 0 --redis-port 6379 --secret S1 [--secret S2 ...]
//                       [--max-age MS] [--redis-host 127.0.0.1]
//
// --port 0 picks a free port. The secrets are express-session's list: the first signs,
// every one verifies. Without --secret they come from INTEROP_SECRETS, one per line.
// --max-age is the cookie's maxAge in milliseconds (none: a browser-session cookie).
// Prints `listening on PORT` once Redis is connected and the server is listening, and
// exits with status 0 on SIGTERM or SIGINT.
//
// Routes (all answer JSON):
//   GET  /visits              increments req.session.visits (from 1):
//                             {"visits":n,"session":<the session>}
//   GET  /show                the session, unchanged
//   POST /set?key=k&value=v   sets the string k to v, answers the session
//
// The packages come from tests/interop/package.json; tests/interop/mod.rs installs them
// into target/interop-node and runs this file with NODE_PATH pointing there.
'use strict';

const express = require('express');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');

function parseArgs(argv) {
  const opts = { port: null, redisPort: null, redisHost: '127.0.0.1', secrets: [], maxAge: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    i++;
    switch (flag) {
      case '--port': opts.port = port(flag, value, true); break;
      case '--redis-port': opts.redisPort = port(flag, value, false); break;
      case '--redis-host': opts.redisHost = value; break;
      case '--secret': opts.secrets.push(value); break;
      case '--max-age': opts.maxAge = integer(flag, value, 1); break;
      default: usage(`unknown flag ${flag}`);
    }
  }
  if (opts.secrets.length === 0 && process.env.INTEROP_SECRETS) {
    opts.secrets = process.env.INTEROP_SECRETS.split('\n').filter((s) => s.length > 0);
  }
  if (opts.port === null) usage('--port is required');
  if (opts.redisPort === null) usage('--redis-port is required');
  if (opts.secrets.length === 0) usage('at least one --secret (or INTEROP_SECRETS) is required');
  return opts;
}

function integer(flag, value, min) {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    usage(`${flag} ${JSON.stringify(value)}: expected an integer >= ${min}`);
  }
  return Number(value);
}

function port(flag, value, zeroAllowed) {
  const n = integer(flag, value, zeroAllowed ? 0 : 1);
  if (n > 65535) usage(`${flag} ${value}: expected a port number`);
  return n;
}

function usage(message) {
  process.stderr.write(`express_app: ${message}\n`);
  process.exit(2);
}

// Keys that would shadow express-session's own members of req.session.
const RESERVED = new Set([
  'cookie', 'id', 'req', 'regenerate', 'destroy', 'reload', 'save', 'touch', 'resetMaxAge',
  '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'toJSON',
]);

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  const client = createClient({ socket: { host: opts.redisHost, port: opts.redisPort } });
  client.on('error', (err) => process.stderr.write(`express_app: redis: ${err.message}\n`));
  await client.connect();

  const app = express();
  app.use(session({
    name: 'connect.sid',
    secret: opts.secrets,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: opts.maxAge === null ? undefined : opts.maxAge },
    store: new RedisStore({ client, prefix: 'sess:' }),
  }));

  app.get('/visits', (req, res) => {
    req.session.visits = (typeof req.session.visits === 'number' ? req.session.visits : 0) + 1;
    res.json({ visits: req.session.visits, session: req.session });
  });

  app.get('/show', (req, res) => {
    res.json(req.session);
  });

  app.post('/set', (req, res) => {
    const { key, value } = req.query;
    if (typeof key !== 'string' || key === '' || typeof value !== 'string') {
      res.status(400).json({ error: 'expected ?key=k&value=v, each once' });
      return;
    }
    if (RESERVED.has(key)) {
      res.status(400).json({ error: `key ${JSON.stringify(key)} is express-session's own` });
      return;
    }
    req.session[key] = value;
    res.json(req.session);
  });

  app.use((err, req, res, next) => {
    process.stderr.write(`express_app: ${req.method} ${req.url}: ${err.stack || err}\n`);
    if (res.headersSent) return next(err);
    res.status(500).json({ error: String(err.message || err) });
  });

  const server = app.listen(opts.port, '127.0.0.1', () => {
    process.stdout.write(`listening on ${server.address().port}\n`);
  });
  server.on('error', (err) => {
    process.stderr.write(`express_app: listen: ${err.message}\n`);
    process.exit(1);
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Should closing hang, leave anyway, but say so with the status.
    setTimeout(() => process.exit(1), 5000).unref();
    server.close(() => {
      client.quit().then(() => process.exit(0), () => process.exit(0));
    });
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`express_app: ${err.stack || err}\n`);
  process.exit(1);
});
