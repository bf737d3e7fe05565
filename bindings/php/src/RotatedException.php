<?php

declare(strict_types=1);

namespace Sessync;

/** The id was rotated away; it answers reads only (ROTATED). */
class RotatedException extends Exception
{
}
