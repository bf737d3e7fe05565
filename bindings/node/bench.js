// The Node binding's cost over the C ABI: the same C functions called through the
// binding and through raw koffi calls (declared the same way), in one run, on mem://.
//
//   node bindings/node/bench.js [seconds per figure, default 2]
//
// fetch:                 sessync_store_fetch of a ~1 KiB session, the JSON read out and freed
//                        (the binding also JSON.parses it: that is what fetch returns; a
//                        second raw figure parses too)
// begin/set/commit:      sessync_session_begin (lock) from a Cookie header, one
//                        sessync_session_set, sessync_session_commit
// Prints a Markdown table: operations per second and binding / raw.
'use strict';

const sessync = require('.');
const { native } = require('./lib/native');

const SECONDS = Number(process.argv[2] || 2);
const { fn, koffi } = native();

function bench(name, body) {
  for (let i = 0; i < 2000; i++) body(); // warm up
  let n = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9));
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 100; i++) body();
    n += 100;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return n / secs;
}

async function benchAsync(body) {
  for (let i = 0; i < 500; i++) await body();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(SECONDS * 1e9));
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 50; i++) await body();
    n += 50;
  }
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

const SESSION = {
  user: { id: 42, name: 'Ada Lovelace', email: 'ada@example.com', roles: ['admin', 'ops'] },
  cart: Array.from({ length: 8 }, (_, i) => ({ sku: `SKU-${1000 + i}`, qty: i + 1, price: 9.99 + i })),
  prefs: { theme: 'dark', lang: 'en', tz: 'Europe/London' },
  csrf: 'x'.repeat(43),
  views: 0,
  flash: 'y'.repeat(300),
};

async function main() {
  const store = new sessync.Store('mem://', { cookieName: 'sid' });
  const s0 = store.beginSync(null);
  for (const [k, v] of Object.entries(SESSION)) s0.set(k, v);
  const id = s0.id;
  const { setCookie } = s0.commitSync();
  const cookie = setCookie.split(';')[0];
  const cookieBuf = Buffer.from(cookie, 'latin1');
  const handle = store.handle;
  const err = Buffer.alloc(512);
  const buf = Buffer.alloc(16);
  const ver = new BigUint64Array(1);
  const out = new BigUint64Array(1);
  const value = Buffer.from('7');
  const lock = native().consts.SESSYNC_BEGIN_LOCK;

  function takeRaw() {
    const data = buf.readBigUInt64LE(0);
    const len = Number(buf.readBigUInt64LE(8));
    const text = data === 0n ? '' : koffi.decode(data, 'char', len);
    fn.sessync_buf_free(buf);
    return text;
  }

  const rows = [];
  const rawFetch = bench('raw fetch', () => {
    if (fn.sessync_store_fetch(handle, id, buf, ver, err) !== 0) throw new Error('fetch');
    takeRaw();
  });
  const rawFetchParse = bench('raw fetch + parse', () => {
    if (fn.sessync_store_fetch(handle, id, buf, ver, err) !== 0) throw new Error('fetch');
    JSON.parse(takeRaw());
  });
  const fetchSync = bench('fetchSync', () => store.fetchSync(id));
  rows.push(['fetch (sync)', rawFetch, fetchSync]);
  rows.push(['fetch (sync), raw with JSON.parse too', rawFetchParse, fetchSync]);
  const fetchAsync = await benchAsync(() => store.fetch(id));
  rows.push(['fetch (`await store.fetch`, libuv pool)', rawFetch, fetchAsync]);

  const rawFlow = bench('raw flow', () => {
    if (fn.sessync_session_begin(handle, cookieBuf, cookieBuf.length, lock, -1n, out, err) !== 0) throw new Error('begin');
    const s = out[0];
    if (fn.sessync_session_set(s, 'views', value, value.length, err) !== 0) throw new Error('set');
    if (fn.sessync_session_commit(s, buf, err) !== 0) throw new Error('commit');
    takeRaw();
  });
  const flowSync = bench('flow sync', () => {
    const s = store.beginSync(cookie);
    s.set('views', 7);
    s.commitSync();
  });
  rows.push(['begin/set/commit (sync)', rawFlow, flowSync]);
  const flowAsync = await benchAsync(async () => {
    const s = await store.begin(cookie);
    s.set('views', 7);
    await s.commit();
  });
  rows.push(['begin/set/commit (`await begin`, `await commit`: library threads)', rawFlow, flowAsync]);

  const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : `${(x / 1e3).toFixed(1)} k/s`);
  console.log(`sessync ${sessync.version}, node ${process.version}, koffi ${koffi.version}, ${SECONDS} s per figure\n`);
  console.log('| operation | raw koffi calls | binding | binding / raw |');
  console.log('|---|---|---|---|');
  for (const [name, raw, b] of rows) console.log(`| ${name} | ${fmt(raw)} | ${fmt(b)} | ${(b / raw).toFixed(2)} |`);
  store.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
