// Compiled (not run) by core.test.js with tsc: the declarations must describe this use.
import * as sessync from '../..';

async function main(): Promise<void> {
  const store = new sessync.Store('mem://?ttl=30m', { cookieName: 'sid', secrets: ['a secret of 16+ bytes'] });
  const s: sessync.Session = await store.begin('sid=abc', { waitMs: 100 });
  s.set('cart', [1, 2]);
  const n: number = s.incr('visits');
  const { setCookie } = await s.commit();
  const data = await store.fetch('x'.repeat(32));
  const mw: sessync.Middleware = sessync.expressSession({ url: 'unix:///run/sessync.sock', secret: 'x' });
  const st = new sessync.SessyncStore({ url: 'mem://' });
  st.get('id', (err, sess) => { void err; void sess; });
  try {
    store.fetchSync('bad');
  } catch (e) {
    if (e instanceof sessync.SessyncError) console.log(e.code, e.status, e.message);
  }
  console.log(n, setCookie, data, mw, sessync.version);
}
void main;
