<?php
// PHP's FFI reads the flat header (tests/ffi_header.rs runs this).
//
//     php loader_php.php HEADER [LIBRARY]
//
// FFI::cdef parses HEADER and binds its functions in LIBRARY. Without LIBRARY, only the
// header's types and constants (FFI::cdef binds every prototype it reads, so they are
// left out). Prints key=value lines that the Rust test compares with the header and the
// crate.
$header = $argv[1];
$lib = $argv[2] ?? null;
$text = file_get_contents($header);
if ($lib === null) {
    $types = preg_replace('/^(?!typedef ).*\);$/m', '', $text);
    $ffi = FFI::cdef($types);
} else {
    $ffi = FFI::cdef($text, $lib);
}
preg_match_all('/^typedef struct (\w+) \{$/m', $text, $m);
foreach ($m[1] as $name) {
    echo "sizeof_$name=", FFI::sizeof($ffi->type($name)), "\n";
}
if ($lib === null) {
    echo "ok\n";
    exit(0);
}
echo "header_version=", $ffi->SESSYNC_VERSION_NUMBER, "\n";
echo "version=", $ffi->sessync_version_number(), "\n";
echo "not_found=", $ffi->SESSYNC_STATUS_NOT_FOUND, "\n";
echo "status_str=", $ffi->sessync_status_str($ffi->SESSYNC_STATUS_NOT_FOUND), "\n";
echo "status_str_1=", $ffi->sessync_status_str(1), "\n";
echo "ok\n";
