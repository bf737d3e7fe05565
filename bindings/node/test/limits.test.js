'use strict';

// The binding's limits and lifetimes: how many koffi `.async()` calls it runs at once, a
// store closed (or collected) with calls in flight, async methods that reject rather
// than throw, and the non-blocking abort and rotate of a session.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const sessync = require('..');
const { poolStats } = require('../lib/core');
const { startSessyncd } = require('./helpers');

const PKG = JSON.stringify(path.join(__dirname, '..'));

// Runs a script in a child process (a crash must fail the test, not end the runner);
// resolves with { code, signal, stdout, stderr }.
function runScript(script, args = [], env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', script, '--', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function assertClean(r, what) {
  assert.equal(r.signal, null, `${what}: ended by ${r.signal}\n${r.stderr}`);
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
}

for (const backend of ['mem', 'sessyncd']) {
  test(`1000 concurrent fetches with begins and commits in flight: no crash, all complete (${backend})`,
    { timeout: 120_000 }, async (t) => {
      const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
      // koffi relays library callbacks in the budget of its `.async()` calls; with 256 of
      // those in flight a callback (a begin's end) crashed the process with SIGSEGV.
      const script = `
        const s = require(${PKG});
        const core = require(${PKG} + '/lib/core');
        const poolStats = core.poolStats || (() => ({ active: 0, limit: Infinity }));
        const st = new s.Store(process.argv[1]);
        const ids = [];
        for (let i = 0; i < 20; i++) { const id = s.generateId(); st.writeSync(id, { i }); ids.push(id); }
        (async () => {
          const fetches = Array.from({ length: 1000 }, (_, i) => st.fetch(ids[i % 20]));
          let maxActive = 0;
          const probe = setInterval(() => { maxActive = Math.max(maxActive, poolStats().active); }, 0);
          const begins = Array.from({ length: 200 }, (_, i) =>
            st.beginId(ids[i % 20], { waitMs: 60000 }).then((x) => { x.incr('n'); return x.commit(); }));
          const got = await Promise.all(fetches);
          await Promise.all(begins);
          clearInterval(probe);
          got.forEach((d, i) => { if (d.i !== i % 20) throw new Error('fetch ' + i + ' got ' + JSON.stringify(d)); });
          let n = 0;
          for (const id of ids) n += st.fetchSync(id).n;
          console.log(JSON.stringify({ fetched: got.length, n, maxActive, limit: poolStats().limit }));
        })().catch((e) => { console.error(e); process.exit(1); });
      `;
      for (let run = 0; run < 3; run++) {
        const r = await runScript(script, [url]);
        assertClean(r, `run ${run}`);
        const out = JSON.parse(r.stdout);
        assert.equal(out.fetched, 1000);
        assert.equal(out.n, 200, 'every begin committed');
        assert.ok(out.maxActive <= out.limit, `at most ${out.limit} .async calls at once, saw ${out.maxActive}`);
      }
    });
}

test('the pool limit: at most poolLimit .async calls at once, the rest queued', async () => {
  const store = new sessync.Store('mem://');
  const id = sessync.generateId();
  store.writeSync(id, { a: 1 });
  const limit = poolStats().limit;
  assert.ok(limit >= 1 && limit <= 64, `limit ${limit}`);
  const calls = Array.from({ length: limit * 4 }, () => store.fetch(id));
  assert.equal(poolStats().active, limit);
  assert.equal(poolStats().queued, limit * 3);
  let maxActive = 0;
  const probe = setInterval(() => { maxActive = Math.max(maxActive, poolStats().active); }, 0);
  for (const d of await Promise.all(calls)) assert.deepEqual(d, { a: 1 });
  clearInterval(probe);
  assert.ok(maxActive <= limit);
  assert.equal(poolStats().active, 0);
  assert.equal(poolStats().queued, 0);
  store.close();
});

for (const backend of ['mem', 'sessyncd']) {
  test(`close() with 64 fetches in flight or queued: each settles, none reads freed memory (${backend})`,
    { timeout: 120_000 }, async (t) => {
      const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
      // MALLOC_PERTURB_ fills freed memory with a pattern: a fetch on a freed store reads
      // it (a crash, an error, or wrong data) instead of the store.
      const script = `
        const s = require(${PKG});
        const id = s.generateId();
        const payload = { text: 'x'.repeat(2000) };
        (async () => {
          const out = { resolved: 0, closed: 0 };
          for (let round = 0; round < 20; round++) {
            const st = new s.Store(process.argv[1]);
            st.writeSync(id, payload);
            const calls = Array.from({ length: 64 }, () => st.fetch(id));
            st.close();
            if (!st.closed) throw new Error('close() did not close');
            await st.fetch(id).then(() => { throw new Error('a fetch after close() resolved'); }, (e) => {
              if (!/closed/.test(e.message)) throw e;
            });
            const results = await Promise.allSettled(calls);
            for (const r of results) {
              if (r.status === 'fulfilled') {
                if (JSON.stringify(r.value) !== JSON.stringify(payload)) throw new Error('wrong data: ' + JSON.stringify(r.value).slice(0, 80));
                out.resolved++;
              } else if (r.reason.code === 'SESSYNC_INVALID_ARGUMENT' && /closed/.test(r.reason.message)) {
                out.closed++;
              } else {
                throw r.reason;
              }
            }
            // Dropped without close(): the FinalizationRegistry must not free the handle
            // while its calls run.
            const calls2 = (() => {
              const st2 = new s.Store(process.argv[1]);
              st2.writeSync(id, payload);
              return Array.from({ length: 64 }, () => st2.fetch(id));
            })();
            for (let g = 0; g < 3; g++) { global.gc(); await new Promise((r) => setImmediate(r)); }
            for (const v of await Promise.all(calls2)) {
              if (JSON.stringify(v) !== JSON.stringify(payload)) throw new Error('wrong data after gc');
            }
            out.resolved += calls2.length;
          }
          console.log(JSON.stringify(out));
        })().catch((e) => { console.error(e); process.exit(1); });
      `;
      const r = await runScript(script, [url], { MALLOC_PERTURB_: '165' });
      assertClean(r, 'close with calls in flight');
      const out = JSON.parse(r.stdout);
      assert.equal(out.resolved + out.closed, 20 * 128);
      t.diagnostic(`resolved ${out.resolved}, rejected as closed ${out.closed}`);
    });
}

test('async store methods reject, never throw, on a closed store or a bad argument', async () => {
  const store = new sessync.Store('mem://');
  const id = sessync.generateId();
  // Each must return a Promise that rejects with an ordinary SessyncError.
  const rejects = async (what, call, pattern) => {
    let p;
    assert.doesNotThrow(() => { p = call(); }, `${what} threw synchronously`);
    assert.ok(p instanceof Promise, `${what} returned a Promise`);
    await assert.rejects(p, (e) => e instanceof sessync.SessyncError && (!pattern || pattern.test(e.message)), what);
  };
  await rejects('write of a BigInt', () => store.write(id, { n: 1n }), /BigInt/);
  await rejects('patch of a cycle', () => { const c = {}; c.c = c; return store.patch(id, c); });
  await rejects('fetch of an object id', () => store.fetch({}), /must be a string/);
  await rejects('incr by 1.5', () => store.incr(id, 'n', 1.5));
  await rejects('touch with a bad TTL', () => store.touch(id, 'soon'));
  await rejects('list with a bad cursor', () => store.list(12345), /BigInt/);
  await rejects('begin with a number', () => store.begin(42), /Cookie header/);
  await rejects('begin with null options', () => store.begin(null, null), /options/);
  await rejects('beginId with an object', () => store.beginId({}), /must be a string/);
  await rejects('beginId with a bad waitMs', () => store.beginId(id, { waitMs: 1.5 }));
  const s = await store.begin(null);
  await s.commit();
  await rejects('rotateAsync of an ended session', () => s.rotateAsync(), /ended/);
  store.close();
  for (const [name, call] of [
    ['fetch', () => store.fetch(id)], ['record', () => store.record(id)], ['write', () => store.write(id, {})],
    ['patch', () => store.patch(id, {})], ['incr', () => store.incr(id, 'n')], ['destroy', () => store.destroy(id)],
    ['touch', () => store.touch(id)], ['touch with a TTL', () => store.touch(id, 1000)], ['list', () => store.list()],
    ['listAll', () => store.listAll()], ['clear', () => store.clear()], ['begin', () => store.begin(null)],
    ['beginId', () => store.beginId(id)],
  ]) {
    await rejects(`${name} on a closed store`, call, /closed/);
  }
});

for (const backend of ['mem', 'sessyncd']) {
  test(`session.abortAsync and rotateAsync: the lock released, the id changed, without blocking (${backend})`,
    async (t) => {
      const url = backend === 'mem' ? 'mem://' : (await startSessyncd(t)).url;
      const store = new sessync.Store(url);
      t.after(() => store.close());
      const id = sessync.generateId();
      store.writeSync(id, { a: 1 });
      const s = await store.beginId(id);
      s.set('b', 2);
      await s.abortAsync();
      assert.equal(s.ended, true);
      await s.abortAsync(); // a no-op once ended, as abort() is
      // The lock is free at once, and nothing was written.
      const s2 = await store.beginId(id, { waitMs: 0 });
      assert.deepEqual(s2.data(), { a: 1 });
      const rotated = s2.rotateAsync();
      assert.throws(() => s2.set('c', 3), /being rotated/, 'the session is not used while it rotates on the pool');
      const newId = await rotated;
      assert.notEqual(newId, id);
      assert.equal(s2.id, newId);
      s2.set('c', 3);
      await s2.commit();
      assert.deepEqual(store.fetchSync(newId), { a: 1, c: 3 });
      // The sync variants stay.
      const s3 = store.beginIdSync(newId);
      assert.notEqual(s3.rotate(), newId);
      s3.abort();
    });
}
