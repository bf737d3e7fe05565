// Test helpers: a sessyncd of our own on a socket in a temporary directory, child
// processes killed even when a test fails, and a small HTTP client. Nothing here skips:
// a missing tool is a failure.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { REPO_ROOT } = require('../lib/native');

const DEADLINE_MS = 20_000;
const children = new Set();

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
}
process.on('exit', killAll);

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function sessyncdPath() {
  const p = process.env.SESSYNCD || path.join(REPO_ROOT, 'target', 'release', 'sessyncd');
  if (!fs.existsSync(p)) {
    throw new Error(`sessyncd not found at ${p}: build it with \`cargo build --release --bin sessyncd\``);
  }
  return p;
}

// Polls `probe` until it resolves true, or fails at the deadline.
async function until(what, probe, deadline = DEADLINE_MS) {
  const end = Date.now() + deadline;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pingUnix(sock) {
  return new Promise((resolve) => {
    const c = net.createConnection(sock);
    let out = '';
    c.on('connect', () => c.write('*1\r\n$4\r\nPING\r\n'));
    c.on('data', (d) => { out += d; if (out.includes('\r\n')) { c.destroy(); resolve(out.startsWith('+PONG')); } });
    c.on('error', () => resolve(false));
  });
}

// Starts sessyncd on a fresh socket; returns { url, sock, stop() }.
async function startSessyncd(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessync-node-'));
  const sock = path.join(dir, 'sessyncd.sock');
  const child = track(spawn(sessyncdPath(), ['--unix', sock], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  if (t) t.after(stop);
  await until('sessyncd to answer PING', async () => {
    if (child.exitCode !== null) throw new Error(`sessyncd exited: ${stderr}`);
    return fs.existsSync(sock) && pingUnix(sock);
  });
  return { url: `unix://${sock}`, sock, stop };
}

// Runs a node script; resolves when it prints `listening on PORT`.
async function startNode(t, script, args, env = {}) {
  const child = track(spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  }));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  if (t) t.after(stop);
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${stderr}`)), DEADLINE_MS);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited (${code}): ${stderr}`)); });
  });
  return { port, child, stop, stderr: () => stderr };
}

// One HTTP request; resolves with { status, headers, body, json, cookie }.
function request(port, method, pathname, { cookie, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, agent: false,
      headers: cookie ? { cookie } : {} }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(data); } catch { json = undefined; }
        const sc = res.headers['set-cookie'];
        resolve({ status: res.statusCode, headers: res.headers, body: data, json,
          cookie: sc ? sc[0].split(';')[0] : null, setCookie: sc || [] });
      });
    });
    req.setTimeout(DEADLINE_MS, () => req.destroy(new Error(`${method} ${pathname} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

// Listens an http server on a free loopback port.
function listen(t, app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      t.after(() => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }));
      resolve(server.address().port);
    });
  });
}

module.exports = { startSessyncd, startNode, request, listen, until, REPO_ROOT };
