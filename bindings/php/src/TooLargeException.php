<?php

declare(strict_types=1);

namespace Sessync;

/** An input or a session exceeds a limit (TOO_LARGE). */
class TooLargeException extends Exception
{
}
