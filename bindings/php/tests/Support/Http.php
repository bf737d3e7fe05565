<?php

declare(strict_types=1);

namespace Sessync\Tests\Support;

/** A small HTTP/1.0 client that sends many requests at once (non-blocking sockets). */
final class Http
{
    /** @return array{status: int, headers: array<string, list<string>>, body: string}|null */
    public static function get(int $port, string $path, ?string $cookie = null, float $timeout = 30.0): ?array
    {
        return self::many($port, [[$path, $cookie]], $timeout)[0];
    }

    /**
     * Sends every request at once and waits for all the answers.
     *
     * @param list<array{string, ?string}> $requests (path, Cookie header value or null)
     * @return list<array{status: int, headers: array<string, list<string>>, body: string}|null>
     *     null for a request that could not connect or got no full answer in time
     */
    public static function many(int $port, array $requests, float $timeout = 30.0): array
    {
        $socks = [];
        $out = array_fill(0, \count($requests), null);
        $bufs = [];
        foreach ($requests as $i => [$path, $cookie]) {
            $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, $timeout);
            if ($s === false) {
                continue;
            }
            $req = "GET $path HTTP/1.0\r\nHost: 127.0.0.1\r\n" . ($cookie !== null ? "Cookie: $cookie\r\n" : '') . "\r\n";
            fwrite($s, $req);
            stream_set_blocking($s, false);
            $socks[$i] = $s;
            $bufs[$i] = '';
        }
        $deadline = microtime(true) + $timeout;
        while ($socks !== [] && microtime(true) < $deadline) {
            $read = array_values($socks);
            $w = $e = null;
            if (@stream_select($read, $w, $e, 0, 200000) === false) {
                break;
            }
            foreach ($read as $s) {
                $i = array_search($s, $socks, true);
                $chunk = fread($s, 65536);
                if ($chunk !== false && $chunk !== '') {
                    $bufs[$i] .= $chunk;
                }
                if (feof($s)) {
                    fclose($s);
                    unset($socks[$i]);
                    $out[$i] = self::parse($bufs[$i]);
                }
            }
        }
        foreach ($socks as $s) {
            fclose($s);
        }
        return $out;
    }

    /** @return array{status: int, headers: array<string, list<string>>, body: string}|null */
    private static function parse(string $raw): ?array
    {
        $p = strpos($raw, "\r\n\r\n");
        if ($p === false) {
            return null;
        }
        $lines = explode("\r\n", substr($raw, 0, $p));
        if (!preg_match('#^HTTP/\S+ (\d{3})#', array_shift($lines), $m)) {
            return null;
        }
        $headers = [];
        foreach ($lines as $l) {
            [$k, $v] = array_map('trim', explode(':', $l, 2)) + [1 => ''];
            $headers[strtolower($k)][] = $v;
        }
        return ['status' => (int) $m[1], 'headers' => $headers, 'body' => substr($raw, $p + 4)];
    }

    /** The "name=value" of the Set-Cookie for $name in a response, or null. */
    public static function cookie(array $response, string $name = 'PHPSESSID'): ?string
    {
        foreach ($response['headers']['set-cookie'] ?? [] as $c) {
            if (str_starts_with($c, "$name=")) {
                return explode(';', $c, 2)[0];
            }
        }
        return null;
    }
}
