// Loads libsessync and declares its functions from the flat header sessync_ffi.h, both
// found in the order the repository's README gives ("Loading the library at run time"):
//
//   library: SESSYNC_LIB, then libsessync.so.0 through the dynamic loader, then the
//            repository's target/release/libsessync.so (this package sits in bindings/node)
//   header:  SESSYNC_INCLUDE, then the installed include directory (pkg-config's
//            includedir, /usr/local/include, /usr/include), then the repository's include/
//
// then checks sessync_version_number() against the header's SESSYNC_VERSION_NUMBER.
//
// How the header's declarations become koffi declarations: every prototype line is given
// to koffi as it stands, except that pointer parameters other than `const char *` inputs
// and callbacks are declared `void *` (the binding passes Buffers and typed arrays for
// outputs such as `sessync_error *` and `sessync_buf *`, and handles as koffi's BigInt
// pointers) and the `struct` keyword is dropped (koffi 2 and 3 abort the process, rather
// than throw, on `struct T` inside a prototype string).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const koffi = require('koffi');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

class LoadError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SessyncLoadError';
    this.code = 'SESSYNC_LOAD';
  }
}

function findLibrary() {
  const tried = [];
  if (process.env.SESSYNC_LIB) {
    const p = process.env.SESSYNC_LIB;
    try {
      return { lib: koffi.load(p), path: p };
    } catch (e) {
      throw new LoadError(`SESSYNC_LIB=${p} cannot be loaded: ${e.message}`);
    }
  }
  try {
    return { lib: koffi.load('libsessync.so.0'), path: 'libsessync.so.0' };
  } catch (e) {
    tried.push(`libsessync.so.0 through the dynamic loader (${e.message})`);
  }
  const built = path.join(REPO_ROOT, 'target', 'release', 'libsessync.so');
  if (fs.existsSync(built)) {
    try {
      return { lib: koffi.load(built), path: built };
    } catch (e) {
      tried.push(`${built} (${e.message})`);
    }
  } else {
    tried.push(`${built} (absent)`);
  }
  throw new LoadError(
    `libsessync not found; tried ${tried.join('; ')}. Set SESSYNC_LIB to the library's path, ` +
    'install it (scripts/install.sh PREFIX, then ldconfig or LD_LIBRARY_PATH=PREFIX/lib), or ' +
    'build it in the repository with `cargo build --release --lib`.');
}

function pkgConfigIncludeDir() {
  try {
    const out = execFileSync('pkg-config', ['--variable=includedir', 'sessync'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      encoding: 'utf8',
    }).trim();
    return out || null;
  } catch {
    return null;
  }
}

function findHeader() {
  const candidates = [];
  if (process.env.SESSYNC_INCLUDE) {
    const p = path.join(process.env.SESSYNC_INCLUDE, 'sessync_ffi.h');
    if (!fs.existsSync(p)) throw new LoadError(`SESSYNC_INCLUDE: ${p} does not exist`);
    return p;
  }
  const pc = pkgConfigIncludeDir();
  if (pc) candidates.push(path.join(pc, 'sessync_ffi.h'));
  candidates.push('/usr/local/include/sessync_ffi.h', '/usr/include/sessync_ffi.h');
  candidates.push(path.join(REPO_ROOT, 'include', 'sessync_ffi.h'));
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new LoadError(`sessync_ffi.h not found; tried ${candidates.join(', ')}. Set SESSYNC_INCLUDE ` +
    'to the directory that holds it.');
}

// Parses the flat header: constants, status names, structs, opaque types, callback types
// and prototypes (one per line, as scripts/gen-header.sh writes them).
function parseHeader(text) {
  const consts = {};
  const enums = {};
  const structs = [];
  const opaques = [];
  const aliases = [];
  const callbacks = [];
  const protos = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    let m;
    if ((m = /^enum \{ (\w+) = (-?\d+) \};$/.exec(line))) {
      consts[m[1]] = Number(m[2]);
    } else if ((m = /^enum (\w+) \{$/.exec(line))) {
      const values = {};
      for (i++; lines[i].trim() !== '};'; i++) {
        const v = /^(\w+) = (-?\d+),?$/.exec(lines[i].trim());
        if (!v) throw new LoadError(`sessync_ffi.h: cannot read enum line ${JSON.stringify(lines[i])}`);
        values[v[1]] = Number(v[2]);
      }
      enums[m[1]] = values;
    } else if ((m = /^typedef (\w+) (\w+);$/.exec(line))) {
      aliases.push([m[2], m[1]]);
    } else if ((m = /^typedef struct (\w+) (\w+);$/.exec(line))) {
      opaques.push(m[2]);
    } else if ((m = /^typedef struct (\w+) \{$/.exec(line))) {
      const members = [];
      for (i++; !/^\}/.test(lines[i].trim()); i++) {
        const v = /^([\w\s*]+?)\s*\b(\w+)\s*(?:\[(\d+)\])?\s*;$/.exec(lines[i].trim());
        if (!v) throw new LoadError(`sessync_ffi.h: cannot read struct line ${JSON.stringify(lines[i])}`);
        members.push({ type: v[1].trim(), name: v[2], count: v[3] ? Number(v[3]) : null });
      }
      structs.push({ name: m[1], members });
    } else if ((m = /^typedef (\w[\w\s*]*?)\s*\(\*(\w+)\)\((.*)\);$/.exec(line))) {
      callbacks.push({ ret: m[1], name: m[2], args: m[3] });
    } else if ((m = /^(\w[\w\s*]*?)\s*\b(sessync_\w+)\((.*)\);$/.exec(line))) {
      protos.push({ ret: m[1].trim(), name: m[2], args: m[3], line });
    }
  }
  return { consts, enums, structs, opaques, aliases, callbacks, protos };
}

function stripStruct(s) {
  return s.replace(/\bstruct\s+/g, '');
}

// `const char *x` stays a string input; callback typedefs stay; other pointers: void *.
function koffiParams(args, callbackNames) {
  if (args.trim() === 'void' || args.trim() === '') return 'void';
  return args.split(',').map((a) => {
    const p = stripStruct(a.trim());
    const m = /^(.*?)(\w+)$/.exec(p);
    const type = m[1].trim();
    const name = m[2];
    if (callbackNames.has(type)) return `${type} ${name}`;
    if (/\*/.test(type)) {
      if (/^const char \*$/.test(type)) return `const char *${name}`;
      return `void *${name}`;
    }
    return `${type} ${name}`;
  }).join(', ');
}

// koffi runs every `.async()` call, and relays every callback that a library thread makes
// (the ends of begin, commit and abort), in one budget of "async calls": max_async_calls.
// A callback relayed when that budget is spent has nowhere to go, and koffi 3.3.4 then
// crashes the process (SIGSEGV) instead of failing the call. So the binding raises the
// budget while it can (koffi.config refuses once any library is loaded, ours or another
// module's), and never has more than POOL_LIMIT of its own `.async()` calls running or
// queued in koffi (core.js queues the rest itself): the rest of the budget stays free for
// the callbacks.
const MAX_ASYNC_CALLS = 1024;
const POOL_LIMIT = 32;

function configureKoffi() {
  try {
    if (koffi.config().max_async_calls < MAX_ASYNC_CALLS) koffi.config({ max_async_calls: MAX_ASYNC_CALLS });
  } catch {
    // A library was loaded through koffi before ours: its setting stays; the limit follows it.
  }
  const max = koffi.config().max_async_calls;
  return { maxAsyncCalls: max, poolLimit: Math.max(1, Math.min(POOL_LIMIT, Math.floor(max / 4))) };
}

function load() {
  if (koffi.sizeof('void *') !== 8 || os.endianness() !== 'LE') {
    throw new LoadError('the sessync Node binding supports 64-bit little-endian platforms only');
  }
  const headerPath = findHeader();
  const header = parseHeader(fs.readFileSync(headerPath, 'utf8'));
  const async = configureKoffi();
  const { lib, path: libPath } = findLibrary();

  for (const [name, target] of header.aliases) koffi.alias(name, target);
  for (const name of header.opaques) koffi.opaque(name);
  for (const s of header.structs) {
    const members = {};
    for (const mem of s.members) {
      const t = stripStruct(mem.type);
      const base = /\*/.test(t) ? 'void *' : t;
      members[mem.name] = mem.count ? koffi.array(base, mem.count) : base;
    }
    koffi.struct(s.name, members);
  }
  const callbackNames = new Set(header.callbacks.map((c) => c.name));
  const callbackTypes = {};
  for (const c of header.callbacks) {
    const proto = koffi.proto(`${c.ret} ${c.name}_fn(${koffiParams(c.args, new Set())})`);
    callbackTypes[c.name] = koffi.pointer(c.name, proto);
  }

  const fn = {};
  for (const p of header.protos) {
    const ret = stripStruct(p.ret);
    const params = koffiParams(p.args, callbackNames);
    fn[p.name] = lib.func(`${ret} ${p.name}(${params})`);
  }

  const headerVersion = header.consts.SESSYNC_VERSION_NUMBER;
  const libVersion = fn.sessync_version_number();
  if (headerVersion !== libVersion) {
    throw new LoadError(`version mismatch: ${libPath} is ${fn.sessync_version()} (${libVersion}) but ` +
      `${headerPath} declares ${headerVersion}; install the header that came with the library`);
  }

  const statusNames = {};
  for (const [name, value] of Object.entries(header.enums.sessync_status || {})) {
    statusNames[value] = name.replace(/^SESSYNC_STATUS_/, '');
  }
  return {
    koffi,
    lib,
    fn,
    consts: header.consts,
    status: header.enums.sessync_status,
    statusNames,
    callbackTypes,
    libraryPath: libPath,
    headerPath,
    version: fn.sessync_version(),
    versionNumber: libVersion,
    maxAsyncCalls: async.maxAsyncCalls,
    poolLimit: async.poolLimit,
  };
}

let loaded = null;
// Loads on first use, so that `require('sessync')` itself never fails.
function native() {
  if (loaded === null) loaded = load();
  return loaded;
}

module.exports = { native, parseHeader, LoadError, REPO_ROOT };
