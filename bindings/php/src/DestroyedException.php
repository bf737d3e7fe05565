<?php

declare(strict_types=1);

namespace Sessync;

/** The session was destroyed; writes for it are refused (DESTROYED). */
class DestroyedException extends Exception
{
}
