<?php

declare(strict_types=1);

namespace Sessync;

/** The session is locked by another holder (LOCKED). */
class LockedException extends Exception
{
}
