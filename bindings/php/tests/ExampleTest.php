<?php

declare(strict_types=1);

namespace Sessync\Tests;

use PHPUnit\Framework\TestCase;
use Sessync\Tests\Support\Http;
use Sessync\Tests\Support\Stack;

/** examples/index.php under php-fpm (4 workers) and nginx, on a sessyncd. */
final class ExampleTest extends TestCase
{
    public function testTheCounterExample(): void
    {
        $stack = new Stack();
        try {
            $url = $stack->startSessyncd();
            $port = $stack->startWeb(Stack::phpDir() . '/examples/index.php', 4, ['SESSYNC_URL' => $url]);
            $first = Http::get($port, '/');
            $this->assertMatchesRegularExpression('/^worker \d+: visits 1\n$/', $first['body'], $stack->logs());
            $cookie = Http::cookie($first);
            $answers = Http::many($port, array_fill(0, 8, ['/', $cookie]));
            $visits = array_map(fn ($r) => (int) preg_replace('/.*visits (\d+).*/s', '$1', $r['body']), $answers);
            sort($visits);
            $this->assertSame(range(2, 9), $visits);
            $login = Http::get($port, '/?login=ada', $cookie);
            $this->assertMatchesRegularExpression('/visits 10, user ada\n$/', $login['body']);
            $rotated = Http::cookie($login);
            $this->assertNotNull($rotated);
            $this->assertNotSame($cookie, $rotated);
            $this->assertMatchesRegularExpression('/visits 11, user ada\n$/', Http::get($port, '/', $rotated)['body']);
        } finally {
            $stack->stop();
        }
    }
}
