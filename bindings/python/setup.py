"""The build step: builds libsessync with cargo and bundles it with its flat header.

`pip install ./bindings/python` runs this in the checkout. It runs
`cargo build --release --lib` in the repository root (two levels up) and copies
`libsessync.so` and `include/sessync_ffi.h` into the package. Without cargo (or outside a
checkout) it bundles nothing and says so: the package then finds the library at run time
in the documented order (SESSYNC_LIB, libsessync.so.0 through the dynamic loader, the
build tree). SESSYNC_NO_BUILD=1 skips the build step on purpose.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def repo_root():
    for parent in HERE.parents:
        cargo = parent / "Cargo.toml"
        if cargo.is_file() and (parent / "include" / "sessync_ffi.h").is_file():
            if 'name = "sessync"' in cargo.read_text():
                return parent
    return None


def note(msg):
    print(f"sessync build: {msg}", file=sys.stderr)


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        pkg = Path(self.build_lib) / "sessync"
        root = repo_root()
        if os.environ.get("SESSYNC_NO_BUILD"):
            note("SESSYNC_NO_BUILD is set: bundling no library")
            return
        if root is None:
            note("not inside a sessync checkout: bundling no library")
            return
        cargo = shutil.which("cargo")
        if cargo is None:
            note("cargo not found: bundling no library; at run time the package looks for "
                 "SESSYNC_LIB, libsessync.so.0, then the build tree")
        else:
            note(f"cargo build --release --lib in {root}")
            subprocess.run([cargo, "build", "--release", "--lib"], cwd=root, check=True)
            target = os.environ.get("CARGO_TARGET_DIR")
            target = (Path(target) if os.path.isabs(target) else root / target) if target else root / "target"
            shutil.copy2(target / "release" / "libsessync.so", pkg / "libsessync.so")
            shutil.copy2(root / "include" / "sessync_ffi.h", pkg / "sessync_ffi.h")
        # Where the checkout was, for the last step of the run-time search (the build tree).
        (pkg / "_build_info.py").write_text(f"REPO_ROOT = {str(root)!r}\n")


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
