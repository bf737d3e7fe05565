<?php

declare(strict_types=1);

namespace Sessync;

/**
 * An argument is malformed or missing: an id, a URL, an option (INVALID_ARGUMENT), a NULL
 * (NULL_ARGUMENT), a string that is not UTF-8 (INVALID_UTF8); InvalidJsonException for
 * JSON. A \InvalidArgumentException, so code that catches those catches it too.
 */
class InvalidArgumentException extends \InvalidArgumentException implements SessyncException
{
    use StatusTrait;
}
