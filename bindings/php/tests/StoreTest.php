<?php

declare(strict_types=1);

namespace Sessync\Tests;

use PHPUnit\Framework\TestCase;
use Sessync\ClosedException;
use Sessync\Ffi;
use Sessync\Handler;
use Sessync\InvalidArgumentException;
use Sessync\InvalidJsonException;
use Sessync\LockTimeoutException;
use Sessync\NotANumberException;
use Sessync\SessyncException;
use Sessync\Store;

/** Sessync\Store and Sessync\Session in this process (mem://), and bad input. */
final class StoreTest extends TestCase
{
    public function testLoadsTheLibraryAndChecksTheVersion(): void
    {
        $ffi = Ffi::get();
        $this->assertSame($ffi->SESSYNC_VERSION_NUMBER, $ffi->sessync_version_number());
        $this->assertStringEndsWith('/include/sessync_ffi.h', Ffi::headerPath());
    }

    public function testALibraryLoadedByCdefIsPinnedForTheProcess(): void
    {
        Ffi::get();
        if (Ffi::source() === 'cdef') {
            // freeing the \FFI (at the end of a php-fpm request) must not unload the
            // library under the worker's shared store
            $this->assertTrue(Ffi::pinned(), 'RTLD_NODELETE');
        } else {
            $this->assertSame('scope', Ffi::source());
        }
    }

    public function testSessionRoundTripWithLockAndBytes(): void
    {
        $store = new Store('mem://?ttl=30m');
        $id = Store::generateId();
        $this->assertMatchesRegularExpression('/^[A-Za-z0-9_-]{32}$/', $id);
        $this->assertNull($store->fetch($id));
        $this->assertFalse($store->exists($id));

        $s = $store->begin($id);
        $this->assertTrue($s->isNew());
        $this->assertSame($id, $s->id());
        $this->assertNull($s->getBytes('php'));
        $binary = "a|s:3:\"\0x\xff\";";   // a NUL and a byte that is not UTF-8
        $s->setBytes('php', $binary);
        $s->set('user', ['name' => 'ada', 'tags' => [1, 2]]);
        $this->assertSame(3, $s->incr('n', 3));
        $s->commit();

        $this->assertTrue($store->exists($id));
        $s = $store->begin($id);
        $this->assertFalse($s->isNew());
        $this->assertGreaterThan(0, $s->token());
        $this->assertSame($binary, $s->getBytes('php'));
        $this->assertSame(['name' => 'ada', 'tags' => [1, 2]], $s->get('user'));
        // The lock is held: another begin waits, then times out with the engine's message.
        try {
            $store->begin($id, true, 30);
            $this->fail('no lock timeout');
        } catch (LockTimeoutException $e) {
            $this->assertSame('timed out waiting for the session lock', $e->getMessage());
            $this->assertSame('LOCK_TIMEOUT', $e->getStatusName());
            $this->assertSame(3, $e->getStatus());
        }
        $s->abort();
        $store->begin($id, true, 30)->abort();

        $this->assertSame(4, $store->incr($id, 'n'));
        $new = $store->rotate($id);
        $this->assertNotSame($id, $new);
        $this->assertSame(4, $store->fetch($new)['n']);
        $this->assertTrue($store->destroy($new));
        $this->assertNull($store->fetch($new));
        $this->assertFalse($store->destroy(Store::generateId()));
    }

    public function testStoreWritePatchTouch(): void
    {
        $store = new Store('mem://', ['ttl' => '10m', 'lock_wait' => '2s']);
        $id = Store::generateId();
        $this->assertSame(1, $store->write($id, ['a' => 1, 'b' => 'x']));
        $store->patch($id, ['a' => null, 'c' => [true]]);
        $this->assertSame(['b' => 'x', 'c' => [true]], $store->fetch($id));
        $this->assertTrue($store->touch($id, 60000));
        $store->write($id, []);
        $this->assertSame([], $store->fetch($id));
    }

    public function testBadInputGivesOrdinaryErrorsWithTheEnginesMessage(): void
    {
        $store = new Store('mem://');
        $cases = [
            'short id' => [fn () => $store->begin('short'), InvalidArgumentException::class, 'invalid argument: session id must be 16 to 48 characters, got 5'],
            'id with a NUL' => [fn () => $store->fetch(str_repeat('a', 20) . "\0b"), InvalidArgumentException::class, 'session id contains a NUL byte'],
            'bad URL' => [fn () => new Store('bogus://x'), InvalidArgumentException::class, 'store URL scheme "bogus" is not supported'],
            'bad option' => [fn () => new Store('mem://', ['no_such' => '1']), InvalidArgumentException::class, 'no_such'],
            'list as data' => [fn () => $store->write(Store::generateId(), [1, 2]), InvalidJsonException::class, 'invalid JSON: session data must be a JSON object'],
            'bad handler option' => [fn () => new Handler('mem://', ['nope' => 1]), InvalidArgumentException::class, 'unknown Sessync\\Handler option "nope"'],
        ];
        foreach ($cases as $name => [$call, $class, $message]) {
            try {
                $call();
                $this->fail("$name: no exception");
            } catch (SessyncException $e) {
                $this->assertInstanceOf($class, $e, $name);
                $this->assertInstanceOf(\InvalidArgumentException::class, $e, $name);
                $this->assertStringContainsString($message, $e->getMessage(), $name);
            }
        }

        $id = Store::generateId();
        $store->write($id, ['name' => 'ada']);
        try {
            $store->incr($id, 'name');
            $this->fail('no exception');
        } catch (NotANumberException $e) {
            $this->assertInstanceOf(\RuntimeException::class, $e);
            $this->assertSame('not a number: key "name" holds "ada", not an integer', $e->getMessage());
        }
        $s = $store->begin($id);
        try {
            $s->set('x', NAN);
            $this->fail('no exception');
        } catch (\JsonException $e) {
            $this->assertStringContainsString('Inf and NaN cannot be JSON encoded', $e->getMessage());
        }
        try {
            $s->getBytes('name');  // fine: a string
            $s->set('obj', ['k' => 1]);
            $s->getBytes('obj');
            $this->fail('no exception');
        } catch (InvalidJsonException $e) {
            $this->assertNotSame('', $e->getMessage());
        }
        try {
            $s->setTtl(-1);
            $this->fail('no exception');
        } catch (\ValueError $e) {
            $this->assertSame('TTL must not be negative, -1 given', $e->getMessage());
        }
        try {
            $s->setTtl(0);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertStringStartsWith('invalid argument', $e->getMessage());
        }
        $s->commit();
    }

    public function testUseAfterCommitAndClosedStore(): void
    {
        $store = new Store('mem://');
        $s = $store->begin(Store::generateId());
        $s->commit();
        foreach ([fn () => $s->id(), fn () => $s->setBytes('php', 'x'), fn () => $s->commit(), fn () => $s->abort()] as $call) {
            try {
                $call();
                $this->fail('no exception');
            } catch (ClosedException $e) {
                $this->assertInstanceOf(\LogicException::class, $e);
                $this->assertSame('the session was already committed', $e->getMessage());
            }
        }
        $a = $store->begin(Store::generateId());
        $a->abort();
        try {
            $a->getBytes('php');
            $this->fail('no exception');
        } catch (ClosedException $e) {
            $this->assertSame('the session was already aborted', $e->getMessage());
        }

        $open = $store->begin(Store::generateId());
        $store->close();
        $store->close();
        try {
            $store->fetch(Store::generateId());
            $this->fail('no exception');
        } catch (ClosedException $e) {
            $this->assertSame('the store is closed', $e->getMessage());
        }
        // A session begun before close keeps the engine's store alive.
        $open->setBytes('php', 'still works');
        $open->commit();
    }

    public function testWrongTypesAreTypeErrors(): void
    {
        $store = new Store('mem://');
        $calls = [
            fn () => $store->fetch(null),
            fn () => $store->begin([]),
            fn () => $store->incr(Store::generateId(), 'n', 'many'),
            fn () => $store->write(Store::generateId(), 'text'),
            fn () => new Store(null),
            fn () => new Handler(42.5),
            fn () => new Handler('mem://', ['ttl' => 'long']),
            fn () => new Store('mem://', ['ttl' => [1]]),
            fn () => (new Handler('mem://'))->write(null, ''),
        ];
        foreach ($calls as $i => $call) {
            try {
                $call();
                $this->fail("call $i: no TypeError");
            } catch (\TypeError $e) {
                $this->assertNotSame('', $e->getMessage());
            }
        }
    }

    public function testProcessWideStoresOutliveTheirHandles(): void
    {
        // As php-fpm does between two requests of one worker: the first handle is freed,
        // the next one, opened the same way, finds what the first stored.
        $id = Store::generateId();
        $first = new Store('mem://?ttl=5m', [], true);
        $first->write($id, ['n' => 1]);
        $first->close();
        $second = new Store('mem://?ttl=5m', [], true);
        $this->assertSame(['n' => 1], $second->fetch($id));
        // A store opened the ordinary way, or with other options, is another one.
        $this->assertNull((new Store('mem://?ttl=5m'))->fetch($id));
        $this->assertNull((new Store('mem://?ttl=5m', ['lock_wait' => '1s'], true))->fetch($id));
        $second->close();
    }

    public function testIdsAndValidation(): void
    {
        $this->assertTrue(Store::isValidId(Store::generateId()));
        $this->assertFalse(Store::isValidId('short'));
        $this->assertFalse(Store::isValidId(str_repeat('a', 20) . '!'));
        $this->assertFalse(Store::isValidId(str_repeat('a', 20) . "\0"));
        $this->expectException(InvalidArgumentException::class);
        $this->expectExceptionMessage('invalid argument:');
        Store::checkId('has spaces in it, 1234567');
    }
}
