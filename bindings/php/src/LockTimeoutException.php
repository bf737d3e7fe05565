<?php

declare(strict_types=1);

namespace Sessync;

/** The session's lock could not be taken within the wait (LOCK_TIMEOUT). */
class LockTimeoutException extends Exception
{
}
