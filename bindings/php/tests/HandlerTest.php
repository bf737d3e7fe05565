<?php

declare(strict_types=1);

namespace Sessync\Tests;

use PHPUnit\Framework\TestCase;
use Sessync\Store;
use Sessync\Tests\Support\Stack;

/**
 * Sessync\Handler under PHP's own session module: every "request" is a separate php-cli
 * process (tests/fixtures/cli.php) that calls session_start(), changes $_SESSION and
 * ends, on one sessyncd that this test starts.
 */
final class HandlerTest extends TestCase
{
    private static ?Stack $stack = null;
    private static string $url;

    public static function setUpBeforeClass(): void
    {
        self::$stack = new Stack();
        self::$url = self::$stack->startSessyncd();
    }

    public static function tearDownAfterClass(): void
    {
        self::$stack?->stop();
        self::$stack = null;
    }

    /** @param array<string, mixed> $options */
    private static function command(string $action, string $id = '', array $options = [], ?string $url = null): array
    {
        return [PHP_BINARY, '-d', 'ffi.enable=true', __DIR__ . '/fixtures/cli.php', $url ?? self::$url, $action, $id, json_encode($options, JSON_FORCE_OBJECT)];
    }

    /** @param array<string, mixed> $options */
    private function run1(string $action, string $id = '', array $options = [], ?string $url = null): array
    {
        $cmd = self::command($action, $id, $options, $url);
        $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $rc = proc_close($p);
        $this->assertSame(0, $rc, "php exited with $rc: $out $err");
        $this->assertSame('', $err, 'stderr');
        $r = json_decode($out, true);
        $this->assertIsArray($r, "output: $out");
        return $r;
    }

    /**
     * Runs $n processes that all wait for one start line, then run $action.
     *
     * @param array<string, mixed> $options
     * @return list<array>
     */
    /** @param ?callable $meanwhile runs once every process has been started */
    private function runMany(int $n, string $action, string $id, array $options, ?callable $meanwhile = null): array
    {
        $go = self::$stack->dir . '/go-' . bin2hex(random_bytes(4));
        $options['wait_for'] = $go;
        $procs = [];
        for ($i = 0; $i < $n; $i++) {
            $proc = proc_open(self::command($action, $id, $options), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
            $procs[] = ['proc' => $proc, 'pipes' => $pipes];
        }
        touch($go);
        if ($meanwhile !== null) {
            $meanwhile();
        }
        $results = [];
        foreach ($procs as $p) {
            $out = stream_get_contents($p['pipes'][1]);
            $err = stream_get_contents($p['pipes'][2]);
            $this->assertSame('', $err, 'stderr');
            proc_close($p['proc']);
            $r = json_decode($out, true);
            $this->assertIsArray($r, "output: $out");
            $results[] = $r;
        }
        return $results;
    }

    private static function store(): Store
    {
        return Store::shared(self::$url);
    }

    public function testNewSessionThenTheSameSessionInTheNextProcess(): void
    {
        $a = $this->run1('incr');
        $this->assertArrayNotHasKey('error', $a);
        $this->assertMatchesRegularExpression('/^[A-Za-z0-9_-]{32}$/', $a['id']);
        $this->assertSame(['n' => 1], $a['after']);
        $b = $this->run1('incr', $a['id']);
        $this->assertSame($a['id'], $b['id']);
        $this->assertSame(['n' => 2], $b['after']);
        $this->assertSame(['php' => 'n|i:2;'], self::store()->fetch($a['id']));
    }

    public function testStrictModeNeverAdoptsAnIdTheClientInvents(): void
    {
        foreach (['invented-but-well-formed-0123', 'bad id!', 'x'] as $invented) {
            $r = $this->run1('incr', $invented);
            $this->assertArrayNotHasKey('error', $r);
            $this->assertNotSame($invented, $r['id']);
            $this->assertSame(['n' => 1], $r['after']);
            $this->assertTrue(self::store()->exists($r['id']));
        }
        $this->assertFalse(self::store()->exists('invented-but-well-formed-0123'));
    }

    public function testConcurrentProcessesOfOneVisitorLoseNothing(): void
    {
        $id = $this->run1('incr')['id'];
        $results = $this->runMany(16, 'incr', $id, ['think_us' => 20000]);
        foreach ($results as $r) {
            $this->assertArrayNotHasKey('error', $r);
            $this->assertSame($id, $r['id']);
        }
        $seen = array_map(fn ($r) => $r['after']['n'], $results);
        sort($seen);
        $this->assertSame(range(2, 17), $seen, 'each process saw the one before it');
        $this->assertSame('n|i:17;', self::store()->fetch($id)['php']);
    }

    public function testWithoutTheLockTheSameRaceLosesCounts(): void
    {
        // The control for the test above: the lock is what makes it pass. Every process
        // reads n before any of them writes (each says so with a marker file and waits for
        // the go), so without the lock all 16 write the same n + 1.
        $id = $this->run1('incr')['id'];
        $tag = self::$stack->dir . '/' . bin2hex(random_bytes(4));
        $go = "$tag-write";
        $this->runMany(16, 'incr', $id, [
            'handler' => ['lock' => false],
            'read_marker' => "$tag-read",
            'then_wait_for' => $go,
        ], function () use ($tag, $go) {
            while (count(glob("$tag-read-*")) < 16) {
                usleep(1000);
            }
            touch($go);
        });
        $this->assertSame('n|i:2;', self::store()->fetch($id)['php']);
    }

    public function testTheLockIsHeldFromSessionStartToWriteClose(): void
    {
        $id = $this->run1('incr')['id'];
        $locked = self::$stack->dir . '/locked-' . bin2hex(random_bytes(4));
        $release = self::$stack->dir . '/release-' . bin2hex(random_bytes(4));
        $holder = proc_open(self::command('hold', $id, ['locked' => $locked, 'release' => $release]), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $hp);
        $deadline = microtime(true) + 30;
        while (!file_exists($locked) && microtime(true) < $deadline) {
            usleep(5000);
        }
        $this->assertFileExists($locked);
        $r = $this->run1('incr', $id, ['handler' => ['lock_wait_ms' => 100]]);
        $this->assertSame(['Sessync\\LockTimeoutException', 'timed out waiting for the session lock'], $r['error']);
        touch($release);
        $h = json_decode(stream_get_contents($hp[1]), true);
        proc_close($holder);
        $this->assertSame($id, $h['id']);
        $this->assertSame(['n' => 2], $this->run1('incr', $id)['after']);
    }

    public function testLazyWriteTouchesUnchangedDataAndWritesChangedData(): void
    {
        $id = $this->run1('incr')['id'];
        $version = fn () => (function () use ($id) {
            $s = self::store()->begin($id, false);
            $v = $s->version();
            $s->abort();
            return $v;
        })();
        $v1 = $version();
        $this->run1('read', $id, ['ini' => ['session.lazy_write' => 1]]);
        $this->assertSame($v1, $version(), 'unchanged data is not written');
        $this->run1('read', $id, ['ini' => ['session.lazy_write' => 0]]);
        $this->assertSame($v1 + 1, $version(), 'lazy_write=0 writes every time');
        // the lock was released by updateTimestamp: a short wait succeeds
        $this->assertSame(['n' => 2], $this->run1('incr', $id, ['handler' => ['lock_wait_ms' => 200]])['after']);
    }

    public function testRegenerateIdTrueRotatesTheSession(): void
    {
        $old = $this->run1('set', '', ['set' => ['user' => 'ada', 'n' => 5]])['id'];
        $r = $this->run1('regen', $old);
        $this->assertArrayNotHasKey('error', $r);
        $new = $r['id'];
        $this->assertNotSame($old, $new);
        $this->assertMatchesRegularExpression('/^[A-Za-z0-9_-]{32}$/', $new);
        $this->assertSame(['user' => 'ada', 'n' => 5], $r['after']);
        $this->assertSame('user|s:3:"ada";n|i:5;', self::store()->fetch($new)['php']);
        // The old id was rotated away: requests in flight on it follow the session, but it
        // is never answered with the new one (session fixation), and a request that comes
        // with it is given a fresh id by strict mode.
        $this->assertNull(self::store()->fetch($old));
        $this->assertFalse(self::store()->exists($old));
        $late = $this->run1('incr', $old);
        $this->assertNotSame($old, $late['id']);
        $this->assertNotSame($new, $late['id']);
        $this->assertSame(['n' => 1], $late['after']);
        $next = $this->run1('incr', $new);
        $this->assertSame($new, $next['id']);
        $this->assertSame(['user' => 'ada', 'n' => 6], $next['after']);
    }

    public function testRegenerateIdFalseKeepsTheOldSessionAndCopiesIt(): void
    {
        $old = $this->run1('set', '', ['set' => ['n' => 7]])['id'];
        $r = $this->run1('regen-keep', $old);
        $new = $r['id'];
        $this->assertNotSame($old, $new);
        $this->assertSame('n|i:7;', self::store()->fetch($new)['php']);
        $this->assertSame('n|i:7;', self::store()->fetch($old)['php']);
        $this->assertSame(['n' => 8], $this->run1('incr', $old)['after']);
        $this->assertSame(['n' => 8], $this->run1('incr', $new)['after']);
    }

    public function testSessionDestroyEndsTheSession(): void
    {
        $id = $this->run1('incr')['id'];
        $r = $this->run1('destroy', $id);
        $this->assertArrayNotHasKey('error', $r);
        $this->assertFalse(self::store()->exists($id));
        $next = $this->run1('incr', $id);
        $this->assertNotSame($id, $next['id'], 'a destroyed id is not adopted again');
        $this->assertSame(['n' => 1], $next['after']);
    }

    public function testAbortAndResetWriteNothingAndReleaseTheLock(): void
    {
        $id = $this->run1('incr')['id'];
        $r = $this->run1('abort', $id);
        $this->assertArrayNotHasKey('error', $r);
        $r = $this->run1('reset', $id, ['handler' => ['lock_wait_ms' => 200]]);
        $this->assertArrayNotHasKey('error', $r);
        $this->assertSame(['n' => 1], $r['after'], 'session_reset() read the stored data again');
        $this->assertSame(['n' => 2], $this->run1('incr', $id, ['handler' => ['lock_wait_ms' => 200]])['after']);
    }

    public function testEngineErrorsReachTheScriptAsExceptions(): void
    {
        $r = $this->run1('incr', '', [], 'bogus://nowhere');
        $this->assertSame('Sessync\\InvalidArgumentException', $r['error'][0]);
        $this->assertStringContainsString('store URL scheme "bogus" is not supported', $r['error'][1]);

        $r = $this->run1('incr', '', [], 'unix://' . self::$stack->dir . '/no-daemon.sock?timeout=1s');
        $this->assertSame('Sessync\\BackendException', $r['error'][0]);
        $this->assertStringContainsString('no-daemon.sock', $r['error'][1]);
    }

    public function testSessionResetOfANewSessionKeepsItsId(): void
    {
        $r = $this->run1('reset');
        $this->assertArrayNotHasKey('error', $r);
        $this->assertSame($r['started_id'], $r['id'], 'session_reset() kept the new session\'s id');
        $this->assertSame([], $r['after']);
    }

    public function testStrictOptionRefusesStrictModeTurnedOff(): void
    {
        $r = $this->run1('incr', '', ['ini' => ['session.use_strict_mode' => 0]]);
        $this->assertSame('Sessync\\InvalidArgumentException', $r['error'][0] ?? null, json_encode($r));
        $this->assertStringContainsString('session.use_strict_mode is off', $r['error'][1]);
        $r = $this->run1('incr', '', ['ini' => ['session.use_strict_mode' => 0], 'handler' => ['strict' => false]]);
        $this->assertArrayNotHasKey('error', $r);
        $this->assertSame(['n' => 1], $r['after']);
    }

    /** @return list<array{string, array}> */
    public static function vanishing(): array
    {
        return [['regen'], ['destroy']];
    }

    /**
     * A session that validateId() saw live but that is rotated away or destroyed while
     * the request waits for its lock: the request starts empty and its write is refused
     * quietly (false, PHP warns), nothing is stored under the old id.
     *
     * @dataProvider vanishing
     */
    public function testASessionThatVanishesWhileWaitingForTheLockIsNotRevived(string $then): void
    {
        $id = $this->run1('set', '', ['set' => ['n' => 5]])['id'];
        $tag = bin2hex(random_bytes(4));
        $locked = self::$stack->dir . "/locked-$tag";
        $release = self::$stack->dir . "/release-$tag";
        $validated = self::$stack->dir . "/validated-$tag";
        $holder = proc_open(self::command('hold', $id, ['locked' => $locked, 'release' => $release, 'then' => $then]), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $hp);
        $deadline = microtime(true) + 30;
        while (!file_exists($locked) && microtime(true) < $deadline) {
            usleep(5000);
        }
        $this->assertFileExists($locked);
        $waiter = proc_open(self::command('incr', $id, ['validated' => $validated]), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $wp);
        while (!file_exists($validated) && microtime(true) < $deadline) {
            usleep(5000);
        }
        $this->assertFileExists($validated);
        touch($release);
        $h = json_decode(stream_get_contents($hp[1]), true);
        proc_close($holder);
        $this->assertArrayNotHasKey('error', $h, json_encode($h));
        $out = stream_get_contents($wp[1]);
        $this->assertSame('', stream_get_contents($wp[2]));
        proc_close($waiter);
        $w = json_decode($out, true);
        $this->assertIsArray($w, $out);
        $this->assertArrayNotHasKey('error', $w, $out);
        $this->assertSame($id, $w['id']);
        $this->assertSame([], $w['before'], 'started empty');
        $this->assertStringContainsString('Failed to write session data', implode("\n", $w['warnings'] ?? []));
        $this->assertFalse(self::store()->exists($id), 'nothing stored under the vanished id');
        $next = $this->run1('incr', $id);
        $this->assertNotSame($id, $next['id']);
        $this->assertSame(['n' => 1], $next['after']);
    }
}
