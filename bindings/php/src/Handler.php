<?php

declare(strict_types=1);

namespace Sessync;

/**
 * PHP's session save handler over sessync:
 *
 *     session_set_save_handler(new Sessync\Handler('unix:///run/sessync.sock'));
 *     session_start();                 // takes the session's lock
 *     $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
 *     // the lock is released by session_write_close(), or at the end of the request
 *
 * - read() begins the session by id with its lock (`sessync_session_begin_id` with
 *   SESSYNC_BEGIN_LOCK), so concurrent requests of one visitor run one after the other
 *   from session_start() to session_write_close(): nothing is lost. The lock's wait is
 *   the `lock_wait_ms` option (-1: the store's `lock_wait`, 10 s by default); past it,
 *   session_start() throws LockTimeoutException.
 * - write() stores PHP's serialized data under the key "php" and commits (one atomic
 *   write, the lock released); with `session.lazy_write` (PHP's default), unchanged data
 *   goes to updateTimestamp() instead, which only touches the session and releases the
 *   lock. close() without a write (session_abort(), a read-only request) releases it.
 * - Strict mode: validateId() is true only for a well-formed id that names a live
 *   session (or the session this handler has open, for session_reset()), so with
 *   `session.use_strict_mode=1` an id a client invents is never adopted (PHP then asks
 *   create_sid() for a fresh one). The constructor turns strict mode on (the `strict`
 *   option; session ini settings can only change before session_start()), and open()
 *   throws InvalidArgumentException when `strict` is on but strict mode is off (e.g.
 *   `php_admin_value[session.use_strict_mode]=0`, under which ini_set() fails silently):
 *   the handler never runs without the fixation protection it was asked for.
 * - A session that vanishes while the request waits for its lock (validateId() saw it
 *   live, then it expired, was destroyed or was rotated away before read() got the lock)
 *   is not brought back under the client's id: read() returns '' (an empty $_SESSION),
 *   and write() for it stores nothing and returns false, so PHP warns "Failed to write
 *   session data" instead of throwing; the visitor's next request names no live session
 *   and strict mode gives it a fresh id. (A save handler cannot change the id from
 *   read().)
 * - create_sid() is `sessync_id_generate`: 32 characters of `A-Z a-z 0-9 - _`.
 * - session_regenerate_id(true) is a rotation: the open session moves to a fresh id with
 *   its data and lock (`sessync_session_rotate`); requests in flight on the old id follow
 *   the session for the store's `rotate_grace`, and no new request is ever given it for
 *   the old id (strict mode gives it a fresh one).
 *   session_regenerate_id(false) keeps PHP's meaning: the old session is saved as it is
 *   and stays, and the new id gets a copy.
 * - session_destroy() destroys the session (tombstoned: requests in flight cannot bring
 *   it back). gc() does nothing: the store expires sessions itself.
 * - TTL: each session gets `session.gc_maxlifetime` as its own idle TTL (the `ttl`
 *   option: false to keep the store's `ttl`, or a number of seconds).
 *
 * Errors of the engine are thrown (from session_start(), session_write_close()…) as the
 * Sessync exception of their status, with the engine's message.
 */
class Handler implements \SessionHandlerInterface, \SessionUpdateTimestampHandlerInterface, \SessionIdInterface
{
    /** The key under which PHP's serialized session string is kept. */
    public const KEY = 'php';

    private ?Store $store;
    private string $url;
    /** @var array<string, string|int|bool> */
    private array $storeOptions;
    private bool $lock;
    private int $lockWaitMs;
    private int|bool $ttl;
    /** The session read() began, until write/updateTimestamp/close/destroy ends it. */
    private ?Session $session = null;
    /** The id the open session had when read (rotate() changes the session's). */
    private ?string $sessionId = null;
    /** The new id of a rotation by session_regenerate_id(true), for create_sid(). */
    private ?string $rotatedTo = null;
    /** Whether open() insists on session.use_strict_mode (the `strict` option). */
    private bool $strict;
    /** @var array<string, true> Ids validateId() found live, until read() begins them. */
    private array $approved = [];
    /** The id whose session vanished between validateId() and read(): nothing is kept. */
    private ?string $lostId = null;

    /**
     * @param string|Store $store a store URL (opened once per request by open(), shared
     *     with other handlers of the same URL and options) or an open Store
     * @param array{lock?: bool, lock_wait_ms?: int, ttl?: int|bool, strict?: bool,
     *     store_options?: array<string, string|int|bool>} $options
     */
    public function __construct(string|Store $store = 'mem://', array $options = [])
    {
        $known = ['lock', 'lock_wait_ms', 'ttl', 'strict', 'store_options'];
        foreach (array_keys($options) as $k) {
            if (!\in_array($k, $known, true)) {
                throw new InvalidArgumentException("unknown Sessync\\Handler option \"$k\" (known: " . implode(', ', $known) . ')', 11);
            }
        }
        if ($store instanceof Store) {
            $this->store = $store;
            $this->url = $store->url;
        } else {
            $this->store = null;
            $this->url = $store;
        }
        $this->storeOptions = $options['store_options'] ?? [];
        $this->lock = (bool) ($options['lock'] ?? true);
        $this->lockWaitMs = (int) ($options['lock_wait_ms'] ?? -1);
        $ttl = $options['ttl'] ?? true;
        if (!\is_bool($ttl) && !\is_int($ttl)) {
            throw new \TypeError('Sessync\\Handler option "ttl" must be a bool or an int (seconds), ' . get_debug_type($ttl) . ' given');
        }
        $this->ttl = $ttl;
        $this->strict = (bool) ($options['strict'] ?? true);
        if ($this->strict && !self::strictMode()
            && session_status() !== PHP_SESSION_ACTIVE && !headers_sent()) {
            ini_set('session.use_strict_mode', '1');
        }
    }

    /** The store, opened on first use. */
    public function store(): Store
    {
        if ($this->store === null || $this->store->isClosed()) {
            $this->store = Store::shared($this->url, $this->storeOptions);
        }
        return $this->store;
    }

    public function open(string $path, string $name): bool
    {
        if ($this->strict && !self::strictMode()) {
            throw new InvalidArgumentException(
                'session.use_strict_mode is off (a php_admin_value, or an ini_set after the handler was made), '
                . 'but Sessync\\Handler\'s "strict" option is on: without it an id a client invents would be '
                . 'adopted (session fixation). Turn session.use_strict_mode on, or pass "strict" => false',
                11
            );
        }
        $this->store();
        return true;
    }

    public function close(): bool
    {
        $this->end();
        $this->lostId = null;
        $this->approved = [];
        return true;
    }

    public function read(string $id): string|false
    {
        if ($this->session !== null && $this->session->isOpen() && $this->sessionId === $id) {
            // session_reset() reads again: the session (and its lock) is ours already.
            return $this->session->getBytes(self::KEY) ?? '';
        }
        $this->end();
        $this->lostId = null;
        if ($this->rotatedTo === $id) {
            $this->rotatedTo = null;
        }
        $approved = isset($this->approved[$id]);
        $this->approved = [];
        $s = $this->store()->begin($id, $this->lock, $this->lockWaitMs);
        if ($approved && $s->isNew()) {
            // validateId() saw it live; it expired, was destroyed or rotated away while
            // this request waited for the lock: do not start a session under that id.
            $s->abort();
            $this->lostId = $id;
            return '';
        }
        $this->session = $s;
        $this->sessionId = $id;
        return $this->session->getBytes(self::KEY) ?? '';
    }

    public function write(string $id, string $data): bool
    {
        if ($this->lostId === $id) {
            $this->lostId = null;
            return false;  // the session vanished before read(): PHP warns, nothing is kept
        }
        $s = $this->take($id);
        $s->setBytes(self::KEY, $data);
        $ttl = $this->ttlMs();
        if ($ttl !== null) {
            $s->setTtl($ttl);
        }
        $s->commit();
        return true;
    }

    public function updateTimestamp(string $id, string $data): bool
    {
        // session.lazy_write and unchanged data: touch and release the lock, write nothing.
        if ($this->lostId === $id) {
            $this->lostId = null;
            return true;  // the session vanished before read(), and nothing changed
        }
        $ttl = $this->ttlMs();
        $s = $this->take($id);
        if ($ttl !== null) {
            $s->setTtl($ttl);  // commit touches the session with it, and unlocks
            $s->commit();
        } else {
            $s->commit();      // unlocks
            $this->store()->touch($id);
        }
        return true;
    }

    public function destroy(string $id): bool
    {
        $open = $this->session !== null && $this->session->isOpen() && $this->sessionId === $id;
        if ($open && self::calledBy('session_regenerate_id')) {
            // session_regenerate_id(true): rotate. PHP then calls close(), open(),
            // create_sid() (which returns the new id), validateId() (false for it, so PHP
            // keeps it), read() and, at the end, write() with $_SESSION.
            $s = $this->session;
            $this->session = null;
            $this->sessionId = null;
            $new = $s->rotate();
            $s->commit();
            $this->rotatedTo = $new;
            return true;
        }
        if ($open) {
            $s = $this->session;
            $this->session = null;
            $this->sessionId = null;
            $s->destroy();
            $s->commit();
        } else {
            $this->store()->destroy($id);
        }
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0;  // the store expires sessions itself
    }

    public function create_sid(): string
    {
        if ($this->rotatedTo !== null) {
            return $this->rotatedTo;
        }
        return Store::generateId();
    }

    public function validateId(string $id): bool
    {
        if ($this->rotatedTo !== null && $id === $this->rotatedTo) {
            return false;  // "no such session yet": PHP keeps the id rotate() gave
        }
        if ($this->session !== null && $this->session->isOpen() && $this->sessionId === $id) {
            // The session this handler has open (session_reset(), even of a new session
            // not stored yet): keep its id.
            return true;
        }
        if (!Store::isValidId($id)) {
            return false;
        }
        if (!$this->store()->exists($id)) {
            return false;
        }
        $this->approved[$id] = true;
        return true;
    }

    /** Whether session.use_strict_mode is on ("1", "On", "true"…). */
    private static function strictMode(): bool
    {
        return filter_var(ini_get('session.use_strict_mode'), FILTER_VALIDATE_BOOLEAN);
    }

    /** The open session for $id (or a new begin, e.g. after session_regenerate_id). */
    private function take(string $id): Session
    {
        if ($this->session !== null && $this->session->isOpen() && $this->sessionId === $id) {
            $s = $this->session;
        } else {
            $this->end();
            $s = $this->store()->begin($id, $this->lock, $this->lockWaitMs);
        }
        $this->session = null;
        $this->sessionId = null;
        return $s;
    }

    /** Aborts the open session, if any: releases its lock. */
    private function end(): void
    {
        $s = $this->session;
        $this->session = null;
        $this->sessionId = null;
        if ($s !== null && $s->isOpen()) {
            $s->abort();
        }
    }

    private function ttlMs(): ?int
    {
        if ($this->ttl === false) {
            return null;
        }
        $seconds = $this->ttl === true ? (int) ini_get('session.gc_maxlifetime') : $this->ttl;
        return $seconds > 0 ? $seconds * 1000 : null;
    }

    private static function calledBy(string $function): bool
    {
        foreach (debug_backtrace(DEBUG_BACKTRACE_IGNORE_ARGS, 4) as $frame) {
            if (!isset($frame['class']) && ($frame['function'] ?? '') === $function) {
                return true;
            }
        }
        return false;
    }

    public function __destruct()
    {
        try {
            $this->end();
        } catch (\Throwable) {
            // the session handle is freed either way
        }
    }
}
