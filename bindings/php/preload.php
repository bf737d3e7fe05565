<?php
// opcache.preload script for php-fpm with ffi.enable=preload, where PHP allows FFI only
// in preloaded code: it compiles the Sessync classes at startup so that their FFI calls
// are allowed in requests. Together with the scope that ffi-preload.php's header declares:
//
//     ffi.enable = preload
//     ffi.preload = /etc/php/8.2/sessync-preload.h      ; php bindings/php/ffi-preload.php writes it
//     opcache.enable = 1
//     opcache.preload = /path/to/bindings/php/preload.php
//     opcache.preload_user = www-data                    ; when php-fpm starts as root
//
// (all in php.ini or as php-fpm -d options: they are read when php-fpm starts, not per pool).
foreach (glob(__DIR__ . '/src/*.php') as $file) {
    opcache_compile_file($file);
}
