<?php

declare(strict_types=1);

namespace Sessync;

/** @internal The status of a SessyncException. */
trait StatusTrait
{
    private int $status = 0;

    public function __construct(string $message = '', int $status = 0, ?\Throwable $previous = null)
    {
        parent::__construct($message, $status, $previous);
        $this->status = $status;
    }

    public function getStatus(): int
    {
        return $this->status;
    }

    public function getStatusName(): string
    {
        return Exception::STATUS_NAMES[$this->status] ?? 'ERROR';
    }
}
