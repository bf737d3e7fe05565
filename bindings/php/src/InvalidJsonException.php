<?php

declare(strict_types=1);

namespace Sessync;

/** A JSON argument is not valid JSON, or not of the required shape (INVALID_JSON). */
class InvalidJsonException extends InvalidArgumentException
{
}
