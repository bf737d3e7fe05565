<?php

declare(strict_types=1);

namespace Sessync;

use FFI\CData;

/**
 * A sessync store: `mem://` (in this PHP process only), `unix:///run/sessync.sock` or
 * `tcp://…` (sessyncd), `redis://…`. Wraps `sessync_store_*` calls; every failure throws
 * the exception of its status with the engine's message (see Sessync\Exception).
 *
 * Session data given as arrays is stored as a JSON object; PHP's session handler stores
 * its serialized string under one key ("php") with Session::setBytes().
 */
final class Store
{
    private ?CData $handle;
    private \FFI $ffi;
    private CData $err;

    /** @var array<string, Store> */
    private static array $shared = [];

    /**
     * Opens a store. $options are `sessync_options_set` keys: `ttl` ("30m"),
     * `lock_lease` ("30s"), `lock_wait` ("10s"), `absolute_ttl`, `rotate_grace`,
     * `max_session_bytes`… (strings, ints or bools). With $processWide, the engine's store
     * is shared by every handle opened with the same URL and options in this process
     * (see `shared()`).
     *
     * @param array<string, string|int|bool> $options
     */
    public function __construct(public readonly string $url = 'mem://', array $options = [], bool $processWide = false)
    {
        $this->ffi = Ffi::get();
        $this->err = $this->ffi->new('sessync_error');
        $opts = null;
        if ($options !== []) {
            $opts = $this->ffi->new('sessync_options*');
            $this->check($this->ffi->sessync_options_new(\FFI::addr($opts), \FFI::addr($this->err)));
            try {
                foreach ($options as $key => $value) {
                    if (\is_bool($value)) {
                        $value = $value ? 'true' : 'false';
                    } elseif (!\is_string($value) && !\is_int($value)) {
                        throw new \TypeError("Sessync\\Store option \"$key\" must be a string, an int or a bool, " . get_debug_type($value) . ' given');
                    }
                    $this->check($this->ffi->sessync_options_set(
                        $opts,
                        self::cstr((string) $key, 'option name'),
                        self::cstr((string) $value, "option \"$key\""),
                        \FFI::addr($this->err)
                    ));
                }
            } catch (\Throwable $e) {
                $this->ffi->sessync_options_free($opts);
                throw $e;
            }
        }
        $out = $this->ffi->new('sessync_store*');
        $open = $processWide ? 'sessync_store_open_shared' : 'sessync_store_open';
        $rc = $this->ffi->$open(self::cstr($url, 'store URL'), $opts, \FFI::addr($out), \FFI::addr($this->err));
        if ($opts !== null) {
            $this->ffi->sessync_options_free($opts);
        }
        $this->check($rc);
        $this->handle = $out;
    }

    /**
     * One store per URL and options: the session handler uses it. PHP frees every object
     * at the end of a request, so the handle is per request, but the engine's store
     * behind it is one per worker process (`sessync_store_open_shared`): a php-fpm worker
     * keeps its connections to sessyncd from request to request, and `mem://` keeps its
     * sessions for the worker's life.
     *
     * @param array<string, string|int|bool> $options
     */
    public static function shared(string $url, array $options = []): self
    {
        $key = $url . "\0" . serialize($options);
        $s = self::$shared[$key] ?? null;
        if ($s === null || $s->handle === null) {
            $s = self::$shared[$key] = new self($url, $options, true);
        }
        return $s;
    }

    /** Releases the handle; sessions still open keep the engine's store alive. Idempotent. */
    public function close(): void
    {
        if ($this->handle !== null) {
            $this->ffi->sessync_store_free($this->handle);
            $this->handle = null;
        }
    }

    public function isClosed(): bool
    {
        return $this->handle === null;
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * Begins a request on the session named $id (`sessync_session_begin_id`). With $lock,
     * takes the session's lock until commit or abort, waiting up to $waitMs (-1: the
     * store's `lock_wait`, default 10 s) then throwing LockTimeoutException. An id naming
     * no live session begins a new session under that id (check ids first: exists()).
     */
    public function begin(string $id, bool $lock = true, int $waitMs = -1): Session
    {
        $out = $this->ffi->new('sessync_session*');
        $this->check($this->ffi->sessync_session_begin_id(
            $this->handle(),
            self::cstr($id, 'session id'),
            $lock ? 1 : 0,
            $waitMs,
            \FFI::addr($out),
            \FFI::addr($this->err)
        ));
        return new Session($this->ffi, $out);
    }

    /**
     * The session's data as an array, or null when there is no such live session.
     *
     * @return array<string, mixed>|null
     */
    public function fetch(string $id): ?array
    {
        $buf = $this->ffi->new('sessync_buf');
        $rc = $this->ffi->sessync_store_fetch($this->handle(), self::cstr($id, 'session id'), \FFI::addr($buf), null, \FFI::addr($this->err));
        if ($rc === 1) {
            return null;
        }
        $this->check($rc);
        return json_decode(self::take($this->ffi, $buf), true, 512, JSON_THROW_ON_ERROR);
    }

    /** Whether $id names a live session (a rotated-away id does not). */
    public function exists(string $id): bool
    {
        $rec = $this->ffi->new('sessync_record*');
        $rc = $this->ffi->sessync_store_get($this->handle(), self::cstr($id, 'session id'), \FFI::addr($rec), \FFI::addr($this->err));
        if ($rc === 1) {
            return false;
        }
        $this->check($rc);
        $this->ffi->sessync_record_free($rec);
        return true;
    }

    /**
     * Replaces the session's data (creating it); returns the new version.
     *
     * @param array<string, mixed> $data
     */
    public function write(string $id, array $data): int
    {
        $json = self::json($data);
        $version = $this->ffi->new('uint64_t');
        $this->check($this->ffi->sessync_store_write(
            $this->handle(), self::cstr($id, 'session id'), self::bytes($this->ffi, $json), \strlen($json),
            null, 0, 0, \FFI::addr($version), \FFI::addr($this->err)
        ));
        return (int) $version->cdata;
    }

    /**
     * Applies a JSON Merge Patch (null deletes a key) atomically; returns the new version.
     *
     * @param array<string, mixed> $patch
     */
    public function patch(string $id, array $patch, bool $create = false): int
    {
        $json = self::json($patch);
        $version = $this->ffi->new('uint64_t');
        $this->check($this->ffi->sessync_store_patch(
            $this->handle(), self::cstr($id, 'session id'), self::bytes($this->ffi, $json), \strlen($json),
            0, $create ? 1 : 0, \FFI::addr($version), \FFI::addr($this->err)
        ));
        return (int) $version->cdata;
    }

    /** Adds $by to the integer at $key atomically (absent counts as 0); returns the sum. */
    public function incr(string $id, string $key, int $by = 1, bool $create = true): int
    {
        $value = $this->ffi->new('int64_t');
        $this->check($this->ffi->sessync_store_incr(
            $this->handle(), self::cstr($id, 'session id'), self::cstr($key, 'key'), $by,
            0, $create ? 1 : 0, \FFI::addr($value), \FFI::addr($this->err)
        ));
        return (int) $value->cdata;
    }

    /**
     * Records an access (rolling expiry); with $ttlMs, also gives the session that idle TTL
     * (`sessync_store_touch_ttl`). Returns whether it wrote.
     */
    public function touch(string $id, ?int $ttlMs = null): bool
    {
        $written = $this->ffi->new('bool');
        if ($ttlMs === null) {
            $rc = $this->ffi->sessync_store_touch($this->handle(), self::cstr($id, 'session id'), \FFI::addr($written), \FFI::addr($this->err));
        } else {
            self::nonNegative($ttlMs, 'TTL');
            $rc = $this->ffi->sessync_store_touch_ttl($this->handle(), self::cstr($id, 'session id'), $ttlMs, \FFI::addr($written), \FFI::addr($this->err));
        }
        $this->check($rc);
        return (bool) $written->cdata;
    }

    /** Destroys the session (tombstoned: writes in flight are refused); whether it existed. */
    public function destroy(string $id): bool
    {
        $existed = $this->ffi->new('bool');
        $this->check($this->ffi->sessync_store_destroy($this->handle(), self::cstr($id, 'session id'), \FFI::addr($existed), \FFI::addr($this->err)));
        return (bool) $existed->cdata;
    }

    /** Moves the session to a fresh id with its data; returns the new id. */
    public function rotate(string $id): string
    {
        $out = $this->ffi->new('char[49]');
        $len = $this->ffi->new('size_t');
        $this->check($this->ffi->sessync_store_rotate(
            $this->handle(), self::cstr($id, 'session id'), 0, $out, 49, \FFI::addr($len), \FFI::addr($this->err)
        ));
        return \FFI::string($out, (int) $len->cdata);
    }

    /** A fresh session id: 32 characters of `A-Z a-z 0-9 - _`, 192 random bits. */
    public static function generateId(): string
    {
        $ffi = Ffi::get();
        $err = $ffi->new('sessync_error');
        $out = $ffi->new('char[49]');
        $len = $ffi->new('size_t');
        if ($ffi->sessync_id_generate($out, 49, \FFI::addr($len), \FFI::addr($err)) !== 0) {
            throw Ffi::error($err);
        }
        return \FFI::string($out, (int) $len->cdata);
    }

    /** Throws InvalidArgumentException (the engine's reason) unless $id is a well-formed id. */
    public static function checkId(string $id): void
    {
        $ffi = Ffi::get();
        $err = $ffi->new('sessync_error');
        if ($ffi->sessync_id_check(self::cstr($id, 'session id'), \FFI::addr($err)) !== 0) {
            throw Ffi::error($err);
        }
    }

    /** Whether $id is a well-formed session id (16 to 48 of `A-Z a-z 0-9 - _`). */
    public static function isValidId(string $id): bool
    {
        if (str_contains($id, "\0")) {
            return false;
        }
        $ffi = Ffi::get();
        return $ffi->sessync_id_check($id, null) === 0;
    }

    /** @internal */
    public function handle(): CData
    {
        if ($this->handle === null) {
            throw new ClosedException('the store is closed');
        }
        return $this->handle;
    }

    private function check(int $rc): void
    {
        if ($rc !== 0) {
            throw Ffi::error($this->err);
        }
    }

    /** @internal A string for a `const char *` argument: no NUL inside. */
    public static function cstr(string $s, string $what): string
    {
        if (str_contains($s, "\0")) {
            throw new InvalidArgumentException("$what contains a NUL byte", 11);
        }
        return $s;
    }

    /** @internal A copy of $s for a `const uint8_t *` argument (null when empty). */
    public static function bytes(\FFI $ffi, string $s): ?CData
    {
        $n = \strlen($s);
        if ($n === 0) {
            return null;
        }
        $b = $ffi->new("uint8_t[$n]");
        \FFI::memcpy($b, $s, $n);
        return $b;
    }

    /** @internal The bytes of a sessync_buf the library filled, which it then frees. */
    public static function take(\FFI $ffi, CData $buf): string
    {
        $s = (int) $buf->len === 0 ? '' : \FFI::string($buf->data, (int) $buf->len);
        $ffi->sessync_buf_free(\FFI::addr($buf));
        return $s;
    }

    /** @internal JSON text of a value; an empty array is the empty object. */
    public static function json(mixed $value): string
    {
        if ($value === []) {
            return '{}';
        }
        return json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
    }

    /** @internal */
    public static function nonNegative(int $n, string $what): void
    {
        if ($n < 0) {
            throw new \ValueError("$what must not be negative, $n given");
        }
    }
}
