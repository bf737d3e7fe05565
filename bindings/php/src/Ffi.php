<?php

declare(strict_types=1);

namespace Sessync;

/**
 * Finds and loads libsessync with PHP's FFI extension.
 *
 * The declarations come from the flat header `sessync_ffi.h`, which `FFI::cdef` parses as
 * is. Both are found in the order the top-level README gives ("Loading the library at run
 * time (bindings)"):
 *
 * - library: `SESSYNC_LIB` → `libsessync.so.0` through the dynamic loader →
 *   `target/release/libsessync.so` of the repository this file sits in;
 * - header: `SESSYNC_INCLUDE/sessync_ffi.h` → the installed one (`pkg-config
 *   --variable=includedir sessync`, `/usr/local/include`, `/usr/include`) → the
 *   repository's `include/`.
 *
 * After loading, `sessync_version_number()` must equal the header's
 * `SESSYNC_VERSION_NUMBER`, else loading fails (before 1.0 the SONAME does not change with
 * the ABI).
 *
 * `ffi.enable`: with `ffi.enable=true` (the CLI's default is `preload`, which also allows
 * FFI in the CLI) every request parses the header once. With `ffi.enable=preload` (php-fpm's
 * safe setting), `bindings/php/preload.php` run as `opcache.preload` declares the scope
 * `sessync` once per server, and requests use `FFI::scope('sessync')`.
 *
 * Lifetime: PHP resets static properties at the end of every request, so the \FFI kept
 * in `self::$ffi` is one per request, not per process (no userland value outlives a
 * php-fpm request). An \FFI made by `FFI::cdef` dlclose()s its library when it is freed,
 * while the store that `sessync_store_open_shared` keeps for the worker's life (with its
 * threads) lives on in that library. So after `FFI::cdef` the library is pinned for the
 * process's life with `dlopen(lib, RTLD_NOLOAD | RTLD_NODELETE)` (glibc, musl): later
 * dlclose()s never unload it. (Before, it stayed only because glibc does not unload a
 * library with pending thread-local destructors.) A preloaded scope is never unloaded.
 */
final class Ffi
{
    public const SCOPE = 'sessync';
    public const HEADER_NAME = 'sessync_ffi.h';
    public const LIB_NAME = 'libsessync.so';
    public const SONAME = 'libsessync.so.0';

    private static ?\FFI $ffi = null;
    private static string $source = '';
    private static bool $pinned = false;

    /** The loaded library (loaded on first use, once per request; see the class doc). */
    public static function get(): \FFI
    {
        return self::$ffi ??= self::load();
    }

    /**
     * How the library was loaded in this request: "scope" (ffi.preload), "cdef" (the
     * header parsed now), or "" before the first use.
     */
    public static function source(): string
    {
        return self::$source;
    }

    private static function load(): \FFI
    {
        if (!extension_loaded('ffi')) {
            throw new LoadException("PHP's FFI extension is not loaded (Debian: php8.2-common ships it; extension=ffi)");
        }
        // Declared by preload.php under opcache.preload (ffi.enable=preload).
        try {
            $ffi = @\FFI::scope(self::SCOPE);
            self::checkVersion($ffi, 'the preloaded scope "sessync"');
            self::$source = 'scope';
            return $ffi;
        } catch (\FFI\Exception) {
            // no preloaded scope: load it now
        }
        $header = self::headerPath();
        $errors = [];
        foreach (self::libraryCandidates() as [$where, $lib]) {
            try {
                $ffi = \FFI::cdef(self::headerText($header), $lib);
            } catch (\FFI\Exception $e) {
                if (str_contains($e->getMessage(), 'restricted by "ffi.enable"')) {
                    throw new LoadException(
                        'FFI::cdef is disabled by ffi.enable=' . ini_get('ffi.enable')
                        . ': set ffi.enable=true, or preload bindings/php/preload.php (opcache.preload) with ffi.enable=preload'
                    );
                }
                $errors[] = "$where ($lib): " . $e->getMessage();
                continue;
            }
            self::checkVersion($ffi, $lib);
            self::$pinned = self::pin($lib);
            self::$source = 'cdef';
            return $ffi;
        }
        throw new LoadException(
            'libsessync not found: set SESSYNC_LIB to its path, install it (scripts/install.sh, then ldconfig), '
            . 'or build it in the repository (cargo build --release --lib). Tried: ' . implode('; ', $errors)
        );
    }

    /**
     * Whether the library loaded by FFI::cdef in this request was pinned (RTLD_NODELETE:
     * never unloaded when the \FFI is freed); false for a preloaded scope, which needs none.
     */
    public static function pinned(): bool
    {
        return self::$pinned;
    }

    /** Marks the loaded $lib RTLD_NODELETE; whether that worked. */
    private static function pin(string $lib): bool
    {
        if (PHP_OS_FAMILY !== 'Linux') {
            return false;
        }
        try {
            $libc = \FFI::cdef('void *dlopen(const char *filename, int flags);');
            // RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE (the same on glibc and musl): finds the
            // already loaded library and only adds NODELETE; the extra reference is never
            // dropped, which is the point.
            return $libc->dlopen($lib, 0x1 | 0x4 | 0x1000) !== null;
        } catch (\FFI\Exception) {
            return false;
        }
    }

    private static function checkVersion(\FFI $ffi, string $what): void
    {
        $lib = $ffi->sessync_version_number();
        $header = $ffi->SESSYNC_VERSION_NUMBER;
        if ($lib !== $header) {
            throw new LoadException(
                "libsessync version mismatch: $what is version $lib, the header sessync_ffi.h is $header"
            );
        }
    }

    /** The header's text, for FFI::cdef (it parses the flat header as is). */
    public static function headerText(?string $path = null): string
    {
        $path ??= self::headerPath();
        $text = @file_get_contents($path);
        if ($text === false) {
            throw new LoadException("cannot read $path");
        }
        return $text;
    }

    /** The repository root this file sits in, or null when installed elsewhere. */
    public static function repositoryRoot(): ?string
    {
        $dir = __DIR__;
        for ($i = 0; $i < 6; $i++) {
            $dir = \dirname($dir);
            if (is_file("$dir/Cargo.toml") && is_file("$dir/include/" . self::HEADER_NAME)) {
                return $dir;
            }
        }
        return null;
    }

    /** @return list<array{string, string}> (where, what to dlopen), in search order */
    public static function libraryCandidates(): array
    {
        $env = getenv('SESSYNC_LIB');
        if ($env !== false && $env !== '') {
            // An explicit choice is the only one: a wrong path must not load another.
            return [['SESSYNC_LIB', $env]];
        }
        $out = [['dynamic loader', self::SONAME]];
        $root = self::repositoryRoot();
        if ($root !== null) {
            $target = getenv('CARGO_TARGET_DIR');
            if ($target !== false && $target !== '') {
                $out[] = ['build tree', ($target[0] === '/' ? $target : "$root/$target") . '/release/' . self::LIB_NAME];
            }
            $out[] = ['build tree', "$root/target/release/" . self::LIB_NAME];
        }
        return $out;
    }

    /** The first flat header found, in the documented order. */
    public static function headerPath(): string
    {
        $env = getenv('SESSYNC_INCLUDE');
        if ($env !== false && $env !== '') {
            $p = rtrim($env, '/') . '/' . self::HEADER_NAME;
            if (!is_file($p)) {
                throw new LoadException("SESSYNC_INCLUDE=$env holds no " . self::HEADER_NAME);
            }
            return $p;
        }
        $dirs = [];
        $inc = self::pkgConfigIncludeDir();
        if ($inc !== null) {
            $dirs[] = $inc;
        }
        $dirs[] = '/usr/local/include';
        $dirs[] = '/usr/include';
        $root = self::repositoryRoot();
        if ($root !== null) {
            $dirs[] = "$root/include";
        }
        foreach ($dirs as $d) {
            if (is_file("$d/" . self::HEADER_NAME)) {
                return "$d/" . self::HEADER_NAME;
            }
        }
        throw new LoadException(
            self::HEADER_NAME . ' not found: set SESSYNC_INCLUDE to the directory that holds it. Looked in: ' . implode(', ', $dirs)
        );
    }

    /**
     * `pkg-config --variable=includedir sessync`, read from `sessync.pc` in pkg-config's
     * search path (PKG_CONFIG_PATH, then its default directories) without running a
     * process on every request.
     */
    private static function pkgConfigIncludeDir(): ?string
    {
        $dirs = [];
        $env = getenv('PKG_CONFIG_PATH');
        if ($env !== false && $env !== '') {
            $dirs = explode(':', $env);
        }
        $arch = php_uname('m') . '-linux-gnu';
        foreach (['/usr/local/lib/' . $arch, '/usr/local/lib', '/usr/local/share', '/usr/lib/' . $arch, '/usr/lib', '/usr/share'] as $d) {
            $dirs[] = "$d/pkgconfig";
        }
        foreach ($dirs as $d) {
            $pc = @file_get_contents("$d/sessync.pc");
            if ($pc === false) {
                continue;
            }
            $vars = [];
            foreach (preg_split('/\R/', $pc) as $line) {
                if (preg_match('/^([A-Za-z0-9_.]+)=(.*)$/', $line, $m)) {
                    $vars[$m[1]] = preg_replace_callback(
                        '/\$\{([A-Za-z0-9_.]+)\}/',
                        fn ($v) => $vars[$v[1]] ?? '',
                        trim($m[2])
                    );
                }
            }
            return isset($vars['includedir']) && $vars['includedir'] !== '' ? $vars['includedir'] : null;
        }
        return null;
    }

    /**
     * Turns a failed call's `sessync_error` into the exception for its status, with the
     * engine's message.
     */
    public static function error(\FFI\CData $err): SessyncException
    {
        $status = (int) $err->status;
        $message = \FFI::string($err->message, (int) $err->len);
        return Exception::fromStatus($status, $message);
    }
}
