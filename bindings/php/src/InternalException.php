<?php

declare(strict_types=1);

namespace Sessync;

/** An internal error of the engine (PANIC): the handle involved refuses further calls. */
class InternalException extends Exception
{
}
