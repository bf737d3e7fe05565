// Types of the sessync Node binding.

/// <reference types="node" />

/** An engine error: `status` is the sessync_status number, `code` `'SESSYNC_' + its name`. */
export class SessyncError extends Error {
  readonly name: 'SessyncError';
  readonly status: number;
  readonly code:
    | 'SESSYNC_NOT_FOUND' | 'SESSYNC_CONFLICT' | 'SESSYNC_LOCK_TIMEOUT' | 'SESSYNC_STALE_TOKEN'
    | 'SESSYNC_INSUFFICIENT_SIZE' | 'SESSYNC_LOCKED' | 'SESSYNC_DESTROYED' | 'SESSYNC_ROTATED'
    | 'SESSYNC_FULL' | 'SESSYNC_NULL_ARGUMENT' | 'SESSYNC_INVALID_ARGUMENT' | 'SESSYNC_INVALID_UTF8'
    | 'SESSYNC_INVALID_JSON' | 'SESSYNC_TOO_LARGE' | 'SESSYNC_NOT_A_NUMBER' | 'SESSYNC_IO'
    | 'SESSYNC_BACKEND' | 'SESSYNC_AUTH' | 'SESSYNC_PROTOCOL' | 'SESSYNC_PANIC' | 'SESSYNC_CANCELLED'
    | string;
}

/** The library or its header could not be loaded, or their versions differ. */
export class LoadError extends Error {
  readonly code: 'SESSYNC_LOAD';
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A duration: milliseconds as a number, or text such as `'30m'`, `'1500ms'`, `'1d'`. */
export type Duration = number | string;

export interface StoreOptions {
  cookieName?: string;
  cookiePath?: string;
  cookieDomain?: string;
  cookieMaxAge?: Duration;
  cookieSecure?: boolean;
  cookieHttpOnly?: boolean;
  cookieSameSite?: 'Lax' | 'Strict' | 'None' | '';
  cookieFormat?: 'sessync' | 'express';
  /** Cookie signing keys (16 to 1024 bytes each): the first signs, all verify. */
  secrets?: string | Buffer | Array<string | Buffer>;
  lockLease?: Duration;
  lockWait?: Duration;
  /** Store options added to the URL's: ttl, absolute_ttl, max_sessions, … */
  storeOptions?: Record<string, string | number | boolean>;
}

export interface WriteOptions {
  expectedVersion?: number;
  token?: bigint | number;
  release?: boolean;
}

export interface PatchOptions {
  token?: bigint | number;
  create?: boolean;
  release?: boolean;
}

export interface BeginOptions {
  /** Take the session's lock (default true). */
  lock?: boolean;
  /** How long to wait for the lock; default: the store's lock_wait. */
  waitMs?: number;
  /** Cancels a pending lock wait (sessync_ticket_cancel). */
  signal?: AbortSignal;
}

/** A session's whole record (`record`, `recordSync`): times in ms since the Unix epoch. */
export interface SessionRecord {
  id: string;
  data: Record<string, Json>;
  version: number;
  created: number;
  last_access: number;
  expires_at: number;
  owner: string | null;
  /** The session's own idle TTL in ms, or null when it follows the store's `ttl`. */
  ttl: number | null;
}

/** One page of `list`: the ids, and the cursor of the next page (0n: the scan is done). */
export interface ListPage {
  ids: string[];
  cursor: bigint;
}

export interface Stats {
  sessions: number; tombstones: number; aliases: number; operations: number;
  lockWaits: number; lockTimeouts: number; expirations: number; evictions: number;
}

/** The Promise methods run on libuv's pool (koffi's `.async()`), at most 32 at once for the
 * whole process (the rest wait their turn): a closed store or a bad argument rejects, never
 * throws. */
export class Store {
  /** Opens a store: `mem://`, `unix:///run/sessync.sock`, `tcp://…`, `redis://…`. */
  constructor(url?: string, options?: StoreOptions);
  readonly url: string;
  readonly closed: boolean;
  /** No call starts afterwards; calls running finish (the handle is freed after the last
   * one), calls still queued reject ("the store was closed before this call ran"). */
  close(): void;

  fetch(id: string): Promise<Record<string, Json> | null>;
  fetchSync(id: string): Record<string, Json> | null;
  write(id: string, data: object, options?: WriteOptions): Promise<number>;
  writeSync(id: string, data: object, options?: WriteOptions): number;
  patch(id: string, patch: object, options?: PatchOptions): Promise<number>;
  patchSync(id: string, patch: object, options?: PatchOptions): number;
  incr(id: string, key: string, by?: number | bigint, options?: PatchOptions): Promise<number>;
  incrSync(id: string, key: string, by?: number | bigint, options?: PatchOptions): number;
  destroy(id: string): Promise<boolean>;
  destroySync(id: string): boolean;
  /** Records an access; with `ttlMs` (1 ms to one year), also gives the session its own idle TTL. */
  touch(id: string, ttlMs?: number): Promise<boolean>;
  touchSync(id: string, ttlMs?: number): boolean;
  /** The whole record, or null when the session is absent or expired. */
  record(id: string): Promise<SessionRecord | null>;
  recordSync(id: string): SessionRecord | null;
  /** One page of the live sessions' ids, like Redis's SCAN: start with 0n, stop at 0n. */
  list(cursor?: bigint, count?: number): Promise<ListPage>;
  listSync(cursor?: bigint, count?: number): ListPage;
  /** Every live session's id, each once. */
  listAll(count?: number): Promise<string[]>;
  listAllSync(count?: number): string[];
  /** Destroys every session (tombstoned); resolves with how many were live. */
  clear(): Promise<number>;
  clearSync(): number;
  rotateSync(id: string, options?: { token?: bigint | number }): string;
  setOwnerSync(id: string, owner: string | null, options?: { token?: bigint | number }): number;
  sessionsOfSync(owner: string): string[];
  destroyAllSync(owner: string): number;
  statsSync(): Stats;

  /** Starts a request from the raw Cookie header without blocking the event loop. */
  begin(cookieHeader: string | Buffer | null | undefined, options?: BeginOptions): Promise<Session>;
  beginSync(cookieHeader: string | Buffer | null | undefined, options?: Omit<BeginOptions, 'signal'>): Session;
  beginId(id: string, options?: BeginOptions): Promise<Session>;
  beginIdSync(id: string, options?: Omit<BeginOptions, 'signal'>): Session;
}

export class Session {
  readonly id: string;
  readonly isNew: boolean;
  readonly changed: boolean;
  readonly version: number;
  readonly token: number | bigint;
  readonly expiresAt: number;
  readonly ended: boolean;
  get(key: string): Json | undefined;
  getJSON(key: string): string | undefined;
  set(key: string, value: unknown): void;
  setJSON(key: string, json: string | Buffer): void;
  remove(key: string): void;
  incr(key: string, by?: number | bigint): number;
  data(): Record<string, Json>;
  setOwner(owner: string | null): void;
  /** A fresh id now, data kept, on the calling thread (a round trip with sessyncd or Redis). */
  rotate(): string;
  /** rotate() on libuv's pool; the session cannot be used until it settles. */
  rotateAsync(): Promise<string>;
  destroy(): void;
  /** The session's own idle TTL in ms (1 ms to one year), applied at commit. */
  setTtl(ttlMs: number): void;
  commit(): Promise<{ setCookie: string | null }>;
  commitSync(): { setCookie: string | null };
  /** Ends without writing, on the calling thread (a round trip with sessyncd or Redis). */
  abort(): void;
  /** Ends without writing through sessync_session_abort_async: the event loop does not wait. */
  abortAsync(): Promise<void>;
}

export interface CookieOptions {
  path?: string;
  domain?: string;
  maxAge?: number | null;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: boolean | 'lax' | 'strict' | 'none';
}

export interface ExpressSessionOptions {
  /** A store URL (default `mem://`), or `store`: an open sessync.Store. */
  url?: string;
  store?: Store;
  /** The cookie's name (default `connect.sid`). */
  name?: string;
  /** express-session's secret(s): the cookie is then express-session's signed format. */
  secret?: string | string[];
  cookie?: CookieOptions;
  /** Take the session's lock for each request (default true). */
  lock?: boolean;
  lockWait?: Duration;
  lockLease?: Duration;
  storeOptions?: Record<string, string | number | boolean>;
  /** With cookie.maxAge: give every request's session the TTL maxAge, changed or not
   * (without it, only the sessions a request changes get it). */
  rolling?: boolean;
  /** Accepted for compatibility and ignored: sessync writes only what changed. */
  resave?: boolean;
  saveUninitialized?: boolean;
  proxy?: boolean;
  unset?: 'destroy' | 'keep';
}

/** `req.session`: data keys as properties, and express-session's members. */
export interface SessyncSessionData {
  [key: string]: any;
}
export interface RequestSession extends SessyncSessionData {
  readonly id: string;
  readonly cookie: CookieOptions & { originalMaxAge: number | null; expires: Date | null };
  regenerate(callback: (err?: Error | null) => void): void;
  destroy(callback?: (err?: Error | null) => void): void;
  save(callback?: (err?: Error | null) => void): this;
  reload(callback: (err?: Error | null) => void): this;
  touch(): this;
  resetMaxAge(): this;
  toJSON(): Record<string, Json>;
  /** Atomic increment, applied at commit as an increment: concurrent requests all count. */
  incr(key: string, by?: number): number;
  /** A fresh id now, data kept (regenerate() empties the session, as express-session's
   * does); runs on libuv's pool and resolves with the id. */
  rotate(): Promise<string>;
  /** The engine's Session of this request. */
  readonly sessync: Session;
}

export type Middleware = (req: any, res: any, next: (err?: unknown) => void) => void;
export function expressSession(options?: ExpressSessionOptions): Middleware;

export interface SessyncStoreOptions {
  url?: string;
  store?: Store;
  storeOptions?: Record<string, string | number | boolean>;
}

/** A store for express-session (session.Store): last write wins, as with connect-redis;
 * `set` writes the session and its cookie's TTL in one atomic step. A cookie's TTL over one
 * year (the engine's longest) is cut to one year. */
export interface SessyncStoreInstance {
  readonly store: Store;
  get(sid: string, callback: (err: any, session?: any) => void): void;
  set(sid: string, session: any, callback?: (err?: any) => void): void;
  destroy(sid: string, callback?: (err?: any) => void): void;
  /** Gives the session its cookie's TTL (sessync_store_touch_ttl). */
  touch(sid: string, session: any, callback?: (err?: any) => void): void;
  /** Every live session, as an array, each with its `id`. */
  all(callback: (err: any, sessions?: any[]) => void): void;
  /** How many live sessions there are. */
  length(callback: (err: any, length?: number) => void): void;
  /** Destroys every session. */
  clear(callback?: (err?: any) => void): void;
  close(): void;
}
export const SessyncStore: new (options?: SessyncStoreOptions) => SessyncStoreInstance;
export function sessyncStore(session: { Store: new (...args: any[]) => any }): new (options?: SessyncStoreOptions) => SessyncStoreInstance;

export function cancelTicket(ticket: bigint): boolean;
export function generateId(): string;
export function checkId(id: string): void;
export const version: string;
export const versionNumber: number;
export const libraryPath: string;
export const headerPath: string;
