<?php

declare(strict_types=1);

namespace Sessync\Tests;

use PHPUnit\Framework\TestCase;
use Sessync\Tests\Support\Http;
use Sessync\Tests\Support\Stack;

/**
 * php-fpm with ffi.enable=preload (FFI::cdef refused in requests) and the header that
 * bindings/php/ffi-preload.php writes as ffi.preload: the handler uses the preloaded
 * scope "sessync".
 */
final class FpmPreloadTest extends TestCase
{
    public function testThePreloadedScopeServesSessions(): void
    {
        $stack = new Stack();
        try {
            $url = $stack->startSessyncd();
            $header = $stack->dir . '/sessync-preload.h';
            exec(escapeshellarg(PHP_BINARY) . ' -d ffi.enable=true ' . escapeshellarg(Stack::phpDir() . '/ffi-preload.php') . ' ' . escapeshellarg($header) . ' 2>&1', $out, $rc);
            $this->assertSame(0, $rc, implode("\n", $out));
            $port = $stack->startWeb(__DIR__ . '/fixtures/app.php', 2, ['SESSYNC_URL' => $url], ['ffi.enable' => 'preload'], [
                'ffi.preload' => $header,
                'opcache.enable' => '1',
                'opcache.preload' => Stack::phpDir() . '/preload.php',
                'opcache.preload_user' => posix_getpwuid(posix_geteuid())['name'],
            ]);

            $r = Http::get($port, '/?do=ffi');
            $this->assertSame(200, $r['status'], $r['body'] . $stack->logs());
            $this->assertSame(['ffi.enable' => 'preload', 'cdef' => 'refused', 'loaded' => 'scope'], json_decode($r['body'], true));

            $first = Http::get($port, '/?do=incr');
            $this->assertSame(200, $first['status'], $first['body'] . $stack->logs());
            $cookie = Http::cookie($first);
            $answers = Http::many($port, array_fill(0, 8, ['/?do=incr', $cookie]));
            $seen = array_map(fn ($r) => json_decode($r['body'], true)['n'], $answers);
            sort($seen);
            $this->assertSame(range(2, 9), $seen);
        } finally {
            $stack->stop();
        }
    }
}
