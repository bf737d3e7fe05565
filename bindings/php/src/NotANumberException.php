<?php

declare(strict_types=1);

namespace Sessync;

/** An increment met a value that is not an integer, or overflowed (NOT_A_NUMBER). */
class NotANumberException extends Exception
{
}
