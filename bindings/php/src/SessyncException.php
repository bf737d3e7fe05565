<?php

declare(strict_types=1);

namespace Sessync;

/**
 * Every exception this package throws implements it: catch (Sessync\SessyncException $e)
 * catches them all. getStatus() is the C ABI's status number (SESSYNC_STATUS_*; 0 for
 * errors the binding raises itself, such as a closed handle), getStatusName() its name,
 * getMessage() the engine's message.
 */
interface SessyncException extends \Throwable
{
    public function getStatus(): int;

    public function getStatusName(): string;
}
