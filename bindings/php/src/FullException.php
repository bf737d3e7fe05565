<?php

declare(strict_types=1);

namespace Sessync;

/** The store holds its maximum number of sessions (FULL). */
class FullException extends Exception
{
}
