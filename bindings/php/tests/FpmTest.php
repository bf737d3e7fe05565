<?php

declare(strict_types=1);

namespace Sessync\Tests;

use PHPUnit\Framework\TestCase;
use Sessync\Store;
use Sessync\Tests\Support\Http;
use Sessync\Tests\Support\Stack;

/**
 * The handler under php-fpm (Debian's php8.2-fpm, a static pool of 4 workers,
 * ffi.enable=true in the pool) behind nginx, sharing sessions through one sessyncd.
 * The app is tests/fixtures/app.php.
 */
final class FpmTest extends TestCase
{
    private static ?Stack $stack = null;
    private static int $port;
    private static string $url;

    public static function setUpBeforeClass(): void
    {
        self::$stack = new Stack();
        try {
            self::$url = self::$stack->startSessyncd();
            mkdir(self::$stack->dir . '/files', 0700);
            self::$port = self::$stack->startWeb(__DIR__ . '/fixtures/app.php', 4, [
                'SESSYNC_URL' => self::$url,
                'SESSYNC_FILES_PATH' => self::$stack->dir . '/files',
            ]);
        } catch (\Throwable $e) {
            self::$stack->stop();
            throw $e;
        }
    }

    public static function tearDownAfterClass(): void
    {
        self::$stack?->stop();
        self::$stack = null;
    }

    private function ok(?array $r): array
    {
        $this->assertNotNull($r, 'no answer: ' . self::$stack->logs());
        $this->assertSame(200, $r['status'], $r['body'] . self::$stack->logs());
        $j = json_decode($r['body'], true);
        $this->assertIsArray($j, $r['body']);
        return $j;
    }

    public function testSixteenConcurrentRequestsOfOneVisitorOnFourWorkersLoseNothing(): void
    {
        $first = Http::get(self::$port, '/?do=incr');
        $this->assertSame(1, $this->ok($first)['n']);
        $cookie = Http::cookie($first);
        $this->assertNotNull($cookie, 'PHP sent the session cookie');
        $this->assertMatchesRegularExpression('/^PHPSESSID=[A-Za-z0-9_-]{32}$/', $cookie);

        $answers = Http::many(self::$port, array_fill(0, 16, ['/?do=incr&think_us=20000', $cookie]));
        $pids = [];
        $seen = [];
        foreach ($answers as $r) {
            $j = $this->ok($r);
            $pids[$j['pid']] = true;
            $seen[] = $j['n'];
            $this->assertNull(Http::cookie($r), 'no new cookie for a known session');
        }
        sort($seen);
        $this->assertSame(range(2, 17), $seen);
        $this->assertGreaterThanOrEqual(2, \count($pids), 'served by several FPM workers');
        $this->assertSame(18, $this->ok(Http::get(self::$port, '/?do=incr', $cookie))['n']);
        $id = substr($cookie, \strlen('PHPSESSID='));
        $this->assertSame('n|i:18;', Store::shared(self::$url)->fetch($id)['php']);
    }

    public function testAnInventedCookieIsNotAdopted(): void
    {
        $r = Http::get(self::$port, '/?do=incr', 'PHPSESSID=attacker-chosen-id-1234567890');
        $j = $this->ok($r);
        $this->assertSame(1, $j['n']);
        $this->assertNotSame('attacker-chosen-id-1234567890', $j['id']);
        $this->assertSame('PHPSESSID=' . $j['id'], Http::cookie($r));
        $this->assertFalse(Store::shared(self::$url)->exists('attacker-chosen-id-1234567890'));
    }

    public function testRegenerateSendsTheNewIdWithTheDataAndLogoutDestroys(): void
    {
        $first = Http::get(self::$port, '/?do=incr');
        $cookie = Http::cookie($first);
        $r = Http::get(self::$port, '/?do=regen', $cookie);
        $j = $this->ok($r);
        $newCookie = Http::cookie($r);
        $this->assertNotNull($newCookie);
        $this->assertNotSame($cookie, $newCookie);
        $this->assertSame('PHPSESSID=' . $j['id'], $newCookie);
        $this->assertSame(1, $j['n']);
        $this->assertSame(2, $this->ok(Http::get(self::$port, '/?do=incr', $newCookie))['n']);

        $this->ok(Http::get(self::$port, '/?do=logout', $newCookie));
        $after = $this->ok(Http::get(self::$port, '/?do=incr', $newCookie));
        $this->assertSame(1, $after['n'], 'a new session after logout');
        $this->assertNotSame('PHPSESSID=' . $after['id'], $newCookie);
    }

    public function testPhpFilesHandlerSideBySideAlsoSerializes(): void
    {
        $first = Http::get(self::$port, '/?do=incr&handler=files');
        $cookie = Http::cookie($first);
        $answers = Http::many(self::$port, array_fill(0, 8, ['/?do=incr&handler=files&think_us=5000', $cookie]));
        $seen = array_map(fn ($r) => $this->ok($r)['n'], $answers);
        sort($seen);
        $this->assertSame(range(2, 9), $seen);
    }
}
