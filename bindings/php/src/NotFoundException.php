<?php

declare(strict_types=1);

namespace Sessync;

/** The session does not exist or has expired (SESSYNC_STATUS_NOT_FOUND). */
class NotFoundException extends Exception
{
}
