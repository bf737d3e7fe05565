<?php

declare(strict_types=1);

namespace Sessync;

/**
 * A sessync call failed: the base class of the runtime failures (not found, lock timeout,
 * stale token, destroyed, backend…). Misuse (bad ids, URLs, options, invalid JSON) is
 * Sessync\InvalidArgumentException, a \InvalidArgumentException; a closed store or a
 * session used after its commit is Sessync\ClosedException, a \LogicException. All
 * implement Sessync\SessyncException. The exception's code is the status number.
 */
class Exception extends \RuntimeException implements SessyncException
{
    use StatusTrait;

    /** SESSYNC_STATUS_* numbers to names. */
    public const STATUS_NAMES = [
        0 => 'OK', 1 => 'NOT_FOUND', 2 => 'CONFLICT', 3 => 'LOCK_TIMEOUT', 4 => 'STALE_TOKEN',
        5 => 'INSUFFICIENT_SIZE', 6 => 'LOCKED', 7 => 'DESTROYED', 8 => 'ROTATED', 9 => 'FULL',
        10 => 'NULL_ARGUMENT', 11 => 'INVALID_ARGUMENT', 12 => 'INVALID_UTF8', 13 => 'INVALID_JSON',
        14 => 'TOO_LARGE', 15 => 'NOT_A_NUMBER', 16 => 'IO', 17 => 'BACKEND', 18 => 'AUTH',
        19 => 'PROTOCOL', 20 => 'PANIC', 21 => 'CANCELLED',
    ];

    private const CLASSES = [
        1 => NotFoundException::class,
        2 => ConflictException::class,
        3 => LockTimeoutException::class,
        4 => StaleTokenException::class,
        6 => LockedException::class,
        7 => DestroyedException::class,
        8 => RotatedException::class,
        9 => FullException::class,
        10 => InvalidArgumentException::class,
        11 => InvalidArgumentException::class,
        12 => InvalidArgumentException::class,
        13 => InvalidJsonException::class,
        14 => TooLargeException::class,
        15 => NotANumberException::class,
        16 => BackendException::class,
        17 => BackendException::class,
        18 => BackendException::class,
        19 => BackendException::class,
        20 => InternalException::class,
        21 => CancelledException::class,
    ];

    /** The exception for a status and the engine's message. */
    public static function fromStatus(int $status, string $message): SessyncException
    {
        $class = self::CLASSES[$status] ?? self::class;
        return new $class($message, $status);
    }
}
