<?php

declare(strict_types=1);

namespace Sessync;

/** A compare-and-swap saw another version than the expected one (CONFLICT). */
class ConflictException extends Exception
{
}
