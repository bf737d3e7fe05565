<?php
// One visitor's concurrent requests per second through nginx + php-fpm, with sessync's
// handler (on a sessyncd) beside PHP's own `files` handler, in the same run: both
// serialize one visitor's requests (sessync's lock, files' flock), so this measures what
// each request costs in the handler and its lock hand-over.
//
//     php bindings/php/bench.php [--workers 4] [--concurrency 16] [--rounds 40] [--think-us 0] [--preload]
//
// --preload: php-fpm with ffi.enable=preload, ffi.preload and opcache.preload (README,
// "Using it from PHP"), so requests do not parse sessync_ffi.h; else ffi.enable=true.
//
// Starts its own sessyncd, php-fpm (a static pool) and nginx in a temporary directory
// (tests/Support/Stack.php), warms both up, then runs the rounds interleaved (sessync,
// files, sessync, …): each round sends --concurrency requests at once with one cookie,
// each incrementing $_SESSION['n'], and waits for all. Checks that no count was lost.
declare(strict_types=1);

require __DIR__ . '/tests/bootstrap.php';

use Sessync\Tests\Support\Http;
use Sessync\Tests\Support\Stack;

$opt = getopt('', ['workers:', 'concurrency:', 'rounds:', 'think-us:', 'preload']);
$preload = isset($opt['preload']);
$workers = (int) ($opt['workers'] ?? 4);
$conc = (int) ($opt['concurrency'] ?? 16);
$rounds = (int) ($opt['rounds'] ?? 40);
$think = (int) ($opt['think-us'] ?? 0);

$stack = new Stack();
try {
    $url = $stack->startSessyncd();
    mkdir("{$stack->dir}/files", 0700);
    $admin = $master = [];
    if ($preload) {
        $header = "{$stack->dir}/sessync-preload.h";
        exec(escapeshellarg(PHP_BINARY) . ' -d ffi.enable=true ' . escapeshellarg(__DIR__ . '/ffi-preload.php') . ' ' . escapeshellarg($header), $out, $rc);
        if ($rc !== 0) {
            throw new RuntimeException('ffi-preload.php failed: ' . implode("\n", $out));
        }
        $admin = ['ffi.enable' => 'preload'];
        $master = ['ffi.preload' => $header, 'opcache.enable' => '1', 'opcache.preload' => __DIR__ . '/preload.php',
            'opcache.preload_user' => posix_getpwuid(posix_geteuid())['name']];
    }
    $port = $stack->startWeb(__DIR__ . '/tests/fixtures/app.php', $workers, [
        'SESSYNC_URL' => $url,
        'SESSYNC_FILES_PATH' => "{$stack->dir}/files",
    ], $admin, $master);
    $handlers = ['sessync', 'files'];
    $cookies = [];
    $count = [];
    foreach ($handlers as $h) {
        $r = Http::get($port, "/?do=incr&handler=$h");
        $cookies[$h] = Http::cookie($r) ?? throw new RuntimeException("$h: no cookie: " . ($r['body'] ?? '') . $stack->logs());
        $count[$h] = 1;
        for ($i = 0; $i < 3; $i++) {  // warm-up: every worker has loaded the code
            Http::many($port, array_fill(0, $conc, ["/?do=incr&handler=$h&think_us=$think", $cookies[$h]]));
            $count[$h] += $conc;
        }
    }
    $time = array_fill_keys($handlers, 0.0);
    for ($round = 0; $round < $rounds; $round++) {
        foreach ($round % 2 ? array_reverse($handlers) : $handlers as $h) {
            $t = hrtime(true);
            $answers = Http::many($port, array_fill(0, $conc, ["/?do=incr&handler=$h&think_us=$think", $cookies[$h]]));
            $time[$h] += (hrtime(true) - $t) / 1e9;
            foreach ($answers as $a) {
                if ($a === null || $a['status'] !== 200) {
                    throw new RuntimeException("$h: a request failed: " . json_encode($a) . $stack->logs());
                }
            }
            $count[$h] += $conc;
        }
    }
    printf("one visitor, %d concurrent requests x %d rounds, %d php-fpm workers, think %d us, %s, %s\n",
        $conc, $rounds, $workers, $think, $preload ? 'ffi.preload' : 'ffi.enable=true', trim((string) shell_exec('nginx -v 2>&1')));
    $rate = [];
    foreach ($handlers as $h) {
        $final = json_decode(Http::get($port, "/?do=incr&handler=$h", $cookies[$h])['body'], true)['n'];
        $count[$h]++;
        $lost = $count[$h] - $final;
        $rate[$h] = $conc * $rounds / $time[$h];
        printf("%-8s %8.0f requests/s  %6.2f ms per request  lost: %d\n", $h, $rate[$h], 1000 / $rate[$h], $lost);
        if ($lost !== 0) {
            throw new RuntimeException("$h lost $lost counts");
        }
    }
    printf("sessync / files: %.2fx\n", $rate['sessync'] / $rate['files']);
} finally {
    $stack->stop();
}
