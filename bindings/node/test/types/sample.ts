// Compiled (not run) by core.test.js with tsc: the declarations must describe this use.
import * as sessync from '../..';

async function main(): Promise<void> {
  const store = new sessync.Store('mem://?ttl=30m', { cookieName: 'sid', secrets: ['a secret of 16+ bytes'] });
  const s: sessync.Session = await store.begin('sid=abc', { waitMs: 100 });
  s.set('cart', [1, 2]);
  const n: number = s.incr('visits');
  const { setCookie } = await s.commit();
  const data = await store.fetch('x'.repeat(32));
  const s2 = store.beginSync(null);
  s2.setTtl(60_000);
  const rotated: string = await s2.rotateAsync();
  await s2.abortAsync();
  s2.abort();
  void rotated;
  const rec: sessync.SessionRecord | null = await store.record('x'.repeat(32));
  const ttl: number | null = rec ? rec.ttl : null;
  const page: sessync.ListPage = await store.list(0n, 100);
  const next: bigint = page.cursor;
  const all: string[] = await store.listAll();
  const cleared: number = store.clearSync();
  const touched: boolean = await store.touch('x'.repeat(32), 30_000);
  console.log(ttl, next, all, cleared, touched);
  const rs = {} as sessync.RequestSession;
  const newId: string = await rs.rotate();
  void newId;
  const mw: sessync.Middleware = sessync.expressSession({ url: 'unix:///run/sessync.sock', secret: 'x' });
  const st = new sessync.SessyncStore({ url: 'mem://' });
  st.get('id', (err, sess) => { void err; void sess; });
  st.length((err, n2) => { void err; void n2; });
  st.all((err, list) => { void err; void list; });
  try {
    store.fetchSync('bad');
  } catch (e) {
    if (e instanceof sessync.SessyncError) console.log(e.code, e.status, e.message);
  }
  console.log(n, setCookie, data, mw, sessync.version);
}
void main;
