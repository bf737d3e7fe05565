<?php

declare(strict_types=1);

namespace Sessync;

use FFI\CData;

/**
 * One request's view of a session (`sessync_session`), from Store::begin() to commit() or
 * abort(). Changes are kept until commit(), which writes them as one atomic patch and
 * releases the lock. Using it after commit() or abort() throws ClosedException; a
 * session dropped without either is aborted (the lock is released, nothing written).
 */
final class Session
{
    private ?CData $handle;
    private CData $err;
    private string $ended = '';

    /** @internal Made by Store::begin(). */
    public function __construct(private \FFI $ffi, CData $handle)
    {
        $this->handle = $handle;
        $this->err = $ffi->new('sessync_error');
    }

    public function __destruct()
    {
        if ($this->handle !== null) {
            $this->ffi->sessync_session_free($this->handle);
            $this->handle = null;
        }
    }

    /** The session's id (after rotate(), the new one). */
    public function id(): string
    {
        return (string) $this->ffi->sessync_session_id($this->handle());
    }

    /** True when no live session had this id at begin: commit stores it if anything was set. */
    public function isNew(): bool
    {
        return (bool) $this->ffi->sessync_session_is_new($this->handle());
    }

    /** The fencing token of the lock held (0 without one). */
    public function token(): int
    {
        return (int) $this->ffi->sessync_session_token($this->handle());
    }

    /** The version read at begin (0 for a new session). */
    public function version(): int
    {
        return (int) $this->ffi->sessync_session_version($this->handle());
    }

    /** Whether commit would write something (a key, the owner) or destroy. */
    public function isChanged(): bool
    {
        return (bool) $this->ffi->sessync_session_changed($this->handle());
    }

    public function isOpen(): bool
    {
        return $this->handle !== null;
    }

    /** The bytes stored at $key by setBytes(), or null when the key is absent. */
    public function getBytes(string $key): ?string
    {
        $buf = $this->ffi->new('sessync_buf');
        $rc = $this->ffi->sessync_session_get_bytes($this->handle(), Store::cstr($key, 'key'), \FFI::addr($buf), \FFI::addr($this->err));
        if ($rc === 1) {
            return null;
        }
        $this->check($rc);
        return Store::take($this->ffi, $buf);
    }

    /** Sets $key to opaque bytes (a PHP session's serialized string), kept until commit. */
    public function setBytes(string $key, string $bytes): void
    {
        $this->check($this->ffi->sessync_session_set_bytes(
            $this->handle(), Store::cstr($key, 'key'), Store::bytes($this->ffi, $bytes), \strlen($bytes), \FFI::addr($this->err)
        ));
    }

    /** The JSON value at $key, decoded (objects as arrays), or null when absent. */
    public function get(string $key): mixed
    {
        $buf = $this->ffi->new('sessync_buf');
        $rc = $this->ffi->sessync_session_get($this->handle(), Store::cstr($key, 'key'), \FFI::addr($buf), \FFI::addr($this->err));
        if ($rc === 1) {
            return null;
        }
        $this->check($rc);
        return json_decode(Store::take($this->ffi, $buf), true, 512, JSON_THROW_ON_ERROR);
    }

    /** Sets $key to a JSON-encodable value (\JsonException otherwise), kept until commit. */
    public function set(string $key, mixed $value): void
    {
        $json = json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
        $this->check($this->ffi->sessync_session_set(
            $this->handle(), Store::cstr($key, 'key'), Store::bytes($this->ffi, $json), \strlen($json), \FFI::addr($this->err)
        ));
    }

    public function remove(string $key): void
    {
        $this->check($this->ffi->sessync_session_remove($this->handle(), Store::cstr($key, 'key'), \FFI::addr($this->err)));
    }

    /** Adds $by to the integer at $key (an increment at commit: no lost counts); the value as this request sees it. */
    public function incr(string $key, int $by = 1): int
    {
        $value = $this->ffi->new('int64_t');
        $this->check($this->ffi->sessync_session_incr($this->handle(), Store::cstr($key, 'key'), $by, \FFI::addr($value), \FFI::addr($this->err)));
        return (int) $value->cdata;
    }

    /**
     * The whole data as this request sees it.
     *
     * @return array<string, mixed>
     */
    public function data(): array
    {
        $buf = $this->ffi->new('sessync_buf');
        $this->check($this->ffi->sessync_session_data($this->handle(), \FFI::addr($buf), \FFI::addr($this->err)));
        return json_decode(Store::take($this->ffi, $buf), true, 512, JSON_THROW_ON_ERROR);
    }

    /** Gives the session its own idle TTL (ms), from commit on. */
    public function setTtl(int $ms): void
    {
        Store::nonNegative($ms, 'TTL');
        $this->check($this->ffi->sessync_session_set_ttl($this->handle(), $ms, \FFI::addr($this->err)));
    }

    /** Gives the session a fresh id now, data and lock kept; returns the new id. */
    public function rotate(): string
    {
        $this->check($this->ffi->sessync_session_rotate($this->handle(), \FFI::addr($this->err)));
        return $this->id();
    }

    /** Marks the session for destruction at commit. */
    public function destroy(): void
    {
        $this->check($this->ffi->sessync_session_destroy($this->handle(), \FFI::addr($this->err)));
    }

    /** Writes the changes as one atomic patch (or destroys) and releases the lock. */
    public function commit(): void
    {
        $h = $this->handle();
        $this->handle = null;
        $this->ended = 'committed';
        // Consumes the session even when it fails; a begin_id session never has a cookie.
        if ($this->ffi->sessync_session_commit($h, null, \FFI::addr($this->err)) !== 0) {
            throw Ffi::error($this->err);
        }
    }

    /** Ends the request without writing and releases the lock. */
    public function abort(): void
    {
        $h = $this->handle();
        $this->handle = null;
        $this->ended = 'aborted';
        if ($this->ffi->sessync_session_abort($h, \FFI::addr($this->err)) !== 0) {
            throw Ffi::error($this->err);
        }
    }

    private function handle(): CData
    {
        if ($this->handle === null) {
            throw new ClosedException("the session was already {$this->ended}");
        }
        return $this->handle;
    }

    private function check(int $rc): void
    {
        if ($rc !== 0) {
            throw Ffi::error($this->err);
        }
    }
}
