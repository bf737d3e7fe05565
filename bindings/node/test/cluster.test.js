'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { startSessyncd, startNode, request } = require('./helpers');

const EXAMPLE = path.join(__dirname, '..', 'examples', 'cluster.js');

test('cluster example: 4 workers, one visitor, 32 concurrent requests changing two keys and a counter: nothing lost', { timeout: 60_000 }, async (t) => {
  const d = await startSessyncd(t);
  const app = await startNode(t, EXAMPLE, ['--port', '0', '--workers', '4', '--store', d.url]);
  const first = await request(app.port, 'GET', '/');
  assert.equal(first.status, 200, first.body);
  const cookie = first.cookie;
  assert.ok(cookie);

  const answers = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    request(app.port, 'POST', `/change?i=${i}&delay=3`, { cookie })));
  for (const a of answers) assert.equal(a.status, 200, a.body);
  const workers = new Set(answers.map((a) => a.json.worker));
  assert.ok(workers.size >= 2, `served by several workers (${[...workers]})`);
  assert.deepEqual(answers.map((a) => a.json.count).sort((x, y) => x - y), Array.from({ length: 32 }, (_, i) => i + 1),
    'under the lock each request saw the counts before it');

  const s = (await request(app.port, 'GET', '/show', { cookie })).json;
  assert.equal(s.count, 32);
  assert.deepEqual([...s.list].sort((x, y) => x - y), Array.from({ length: 32 }, (_, i) => i));
  assert.equal(Object.keys(s.seen).length, 32);
  assert.equal(s.visits, 1);
});
