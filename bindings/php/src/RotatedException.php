<?php

declare(strict_types=1);

namespace Sessync;

/** The id was rotated away; it takes no more writes (ROTATED). */
class RotatedException extends Exception
{
}
