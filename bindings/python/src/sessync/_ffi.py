"""Finds and loads libsessync with cffi's ABI mode (no compiler needed at run time).

The declarations come from the flat header ``sessync_ffi.h``, which cffi's ``cdef``
parses as is. The library and the header are found in the order the top-level README
gives ("Loading the library at run time (bindings)"), with the copies bundled in this
package (put there by its build step) right after the environment variables:

library: ``SESSYNC_LIB`` → the bundled ``libsessync.so`` → ``libsessync.so.0`` through
the dynamic loader → ``target/release/libsessync.so`` of the repository.

header: ``SESSYNC_INCLUDE/sessync_ffi.h`` → the bundled one → the installed one
(``pkg-config --variable=includedir sessync``, ``/usr/local/include``,
``/usr/include``) → the repository's ``include/``.

After loading, ``sessync_version_number()`` must equal the header's
``SESSYNC_VERSION_NUMBER``, else loading fails: before 1.0 the SONAME does not change
with the ABI.

cffi releases the GIL for the length of every call into the library, so a call that
waits for a session's lock never holds up other Python threads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

import cffi

__all__ = ["ffi", "lib", "load", "LibraryNotFound", "library_path", "header_path"]

_HERE = Path(__file__).resolve().parent
HEADER_NAME = "sessync_ffi.h"
LIB_NAME = "libsessync.so"
SONAME = "libsessync.so.0"


class LibraryNotFound(ImportError):
    """libsessync or its flat header could not be found or does not match."""


def _repo_roots() -> List[Path]:
    """Repository roots this package may sit in: the one recorded at build time (when
    the package was built from a checkout), then any parent of this file that is one."""
    roots: List[Path] = []
    try:
        from . import _build_info  # written by the build step; absent in a checkout

        roots.append(Path(_build_info.REPO_ROOT))
    except ImportError:
        pass
    for parent in _HERE.parents:
        if (parent / "Cargo.toml").is_file() and (parent / "include" / HEADER_NAME).is_file():
            roots.append(parent)
            break
    return roots


def _target_dirs(root: Path) -> List[Path]:
    dirs = []
    env = os.environ.get("CARGO_TARGET_DIR")
    if env:
        dirs.append(Path(env) if os.path.isabs(env) else root / env)
    dirs.append(root / "target")
    return dirs


def _library_candidates() -> List[Tuple[str, str]]:
    """(where, what to dlopen) in search order."""
    env = os.environ.get("SESSYNC_LIB")
    if env:
        # An explicit choice is the only one: a wrong path must not silently load another.
        return [("SESSYNC_LIB", env)]
    out = [("bundled", str(_HERE / LIB_NAME))]
    out.append(("dynamic loader", SONAME))
    for root in _repo_roots():
        for t in _target_dirs(root):
            out.append(("build tree", str(t / "release" / LIB_NAME)))
    return out


def _header_candidates() -> List[Tuple[str, Path]]:
    env = os.environ.get("SESSYNC_INCLUDE")
    if env:
        return [("SESSYNC_INCLUDE", Path(env) / HEADER_NAME)]
    out = [("bundled", _HERE / HEADER_NAME)]
    if shutil.which("pkg-config"):
        try:
            inc = subprocess.run(
                ["pkg-config", "--variable=includedir", "sessync"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            inc = ""
        if inc:
            out.append(("pkg-config", Path(inc) / HEADER_NAME))
    out.append(("installed", Path("/usr/local/include") / HEADER_NAME))
    out.append(("installed", Path("/usr/include") / HEADER_NAME))
    for root in _repo_roots():
        out.append(("repository", root / "include" / HEADER_NAME))
    return out


ffi = cffi.FFI()
lib: Any = None
library_path: Optional[str] = None
header_path: Optional[str] = None
_lock = threading.Lock()
_cdef_header: Optional[Path] = None


def load() -> Any:
    """Loads the library once (thread-safe) and returns it; raises LibraryNotFound."""
    global lib, library_path, header_path
    if lib is not None:
        return lib
    with _lock:
        if lib is not None:
            return lib
        tried = []
        header = None
        for where, path in _header_candidates():
            if path.is_file():
                header = path
                break
            tried.append(f"{where}: {path}")
        if header is None:
            raise LibraryNotFound(
                "sessync: cannot find the header sessync_ffi.h; looked in " + "; ".join(tried)
                + " (set SESSYNC_INCLUDE to the directory that holds it)"
            )
        global _cdef_header
        if _cdef_header is None:
            ffi.cdef(header.read_text())
            _cdef_header = header
        loaded = None
        tried = []
        for where, path in _library_candidates():
            if where in ("bundled", "build tree") and not os.path.isfile(path):
                tried.append(f"{where}: {path} (absent)")
                continue
            try:
                loaded = ffi.dlopen(path)
            except OSError as e:
                tried.append(f"{where}: {path} ({e})")
                continue
            library_path = path
            break
        if loaded is None:
            raise LibraryNotFound(
                "sessync: cannot load libsessync; tried " + "; ".join(tried)
                + " (set SESSYNC_LIB to the library's path, or build it with"
                " `cargo build --release --lib`)"
            )
        have = loaded.sessync_version_number()
        want = loaded.SESSYNC_VERSION_NUMBER
        if have != want:
            raise LibraryNotFound(
                f"sessync: the library {library_path} is version {have} but the header "
                f"{header} is version {want}; refusing a mismatch"
            )
        header_path = str(header)
        lib = loaded
        return lib
