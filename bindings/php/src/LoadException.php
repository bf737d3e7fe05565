<?php

declare(strict_types=1);

namespace Sessync;

/** libsessync or sessync_ffi.h could not be found, loaded, or does not match (status 0). */
class LoadException extends \RuntimeException implements SessyncException
{
    use StatusTrait;
}
