<?php

declare(strict_types=1);

namespace Sessync;

/** The store could not be reached or failed: IO, BACKEND, AUTH, PROTOCOL. */
class BackendException extends Exception
{
}
