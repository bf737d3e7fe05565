<?php

declare(strict_types=1);

namespace Sessync;

/** The lock's lease ran out and another request took it: nothing was written (STALE_TOKEN). */
class StaleTokenException extends Exception
{
}
