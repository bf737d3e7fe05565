<?php
// Writes the header for PHP's `ffi.preload`, for php-fpm with ffi.enable=preload (where
// FFI::cdef is refused in requests):
//
//     php bindings/php/ffi-preload.php /etc/php/8.2/sessync-preload.h
//
// then in php.ini or the pool (php_admin_value[...]):
//
//     ffi.enable = preload
//     ffi.preload = /etc/php/8.2/sessync-preload.h
//
// The file is sessync_ffi.h with the two lines FFI::load reads first: the scope's name
// (`#define FFI_SCOPE "sessync"`) and the library's path (`#define FFI_LIB "…"`, the one
// Sessync\Ffi finds now: SESSYNC_LIB, libsessync.so.0, or this repository's build).
// php-fpm loads it once at startup; requests get it with FFI::scope('sessync') instead
// of parsing the header. Only declarations and the library are shared: each worker still
// opens its own store (never across fork()). Write it again after upgrading the library.
declare(strict_types=1);

require __DIR__ . '/autoload.php';

$out = $argv[1] ?? null;
if ($out === null) {
    fwrite(STDERR, "usage: php ffi-preload.php OUTPUT.h\n");
    exit(2);
}
$header = Sessync\Ffi::headerPath();
$text = Sessync\Ffi::headerText($header);
$tried = [];
foreach (Sessync\Ffi::libraryCandidates() as [$where, $lib]) {
    try {
        FFI::cdef($text, $lib);  // is it there, and does it load?
    } catch (FFI\Exception $e) {
        $tried[] = "$where ($lib): " . $e->getMessage();
        continue;
    }
    if ($lib === Sessync\Ffi::SONAME) {
        $lib = Sessync\Ffi::SONAME;  // found by the dynamic loader: keep its name
    } else {
        $lib = realpath($lib) ?: $lib;
    }
    $preamble = '#define FFI_SCOPE "' . Sessync\Ffi::SCOPE . "\"\n#define FFI_LIB \"$lib\"\n";
    if (file_put_contents($out, $preamble . $text) === false) {
        fwrite(STDERR, "cannot write $out\n");
        exit(1);
    }
    echo "wrote $out (library $lib, header $header)\n";
    exit(0);
}
fwrite(STDERR, "libsessync not found; tried:\n  " . implode("\n  ", $tried) . "\n");
exit(1);
