<?php

declare(strict_types=1);

namespace Sessync;

/**
 * A handle used after its end: a store after close(), a session after commit() or
 * abort(). A \LogicException (a bug in the caller), status 0.
 */
class ClosedException extends \LogicException implements SessyncException
{
    use StatusTrait;
}
