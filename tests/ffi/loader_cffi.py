"""Python cffi reads the flat header (tests/ffi_header.rs runs this).

    python3 loader_cffi.py HEADER [LIBRARY]

Parses HEADER with cffi's cdef; with LIBRARY, dlopens it and calls it. Prints key=value
lines that the Rust test compares with the header and the crate.
"""
import re
import sys

import cffi

header, lib_path = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
text = open(header).read()
ffi = cffi.FFI()
ffi.cdef(text)
for name in re.findall(r"^typedef struct (\w+) \{$", text, re.M):
    print(f"sizeof_{name}={ffi.sizeof(name)}")
for name in re.findall(r"^typedef \w+ \(\*(\w+)\)\(", text, re.M):
    print(f"callback_{name}={ffi.typeof(name).kind}")
if lib_path:
    lib = ffi.dlopen(lib_path)
    print(f"header_version={lib.SESSYNC_VERSION_NUMBER}")
    print(f"version={lib.sessync_version_number()}")
    print(f"not_found={lib.SESSYNC_STATUS_NOT_FOUND}")
    print(f"status_str={ffi.string(lib.sessync_status_str(lib.SESSYNC_STATUS_NOT_FOUND)).decode()}")
    print(f"status_str_1={ffi.string(lib.sessync_status_str(1)).decode()}")
print("ok")
