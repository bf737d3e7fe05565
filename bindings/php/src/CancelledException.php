<?php

declare(strict_types=1);

namespace Sessync;

/** The call was cancelled (CANCELLED). */
class CancelledException extends Exception
{
}
