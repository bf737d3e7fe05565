#!/usr/bin/env bash
# The Python binding's tests: builds the library and sessyncd (cargo, no-op when up to
# date), makes a virtual environment under target/ (pip refuses system installs on
# Debian), pip-installs the package from this checkout (its build step bundles
# libsessync.so) and the pinned test dependencies from PyPI, and runs pytest.
# Fails, never skips, when something is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
command -v python3 >/dev/null 2>&1 || { echo "missing: python3 (apt-get install python3 python3-venv)" >&2; exit 1; }
python3 -c 'import ensurepip, venv' 2>/dev/null || { echo "missing: python3's venv (apt-get install python3-venv)" >&2; exit 1; }

cargo build --release --locked --lib --bin sessyncd

venv="${SESSYNC_PY_VENV:-$root/target/py-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check \
  "cffi==2.1.1" "pytest==9.2.0" "flask==3.1.3" "django==5.2.19" "gunicorn==27.0.1" \
  "uvicorn==0.55.0" "starlette==1.10.0" "fastapi==0.165.0" "httpx==0.29.0"
# The package itself, as a user installs it (reinstalled every run: the tests use it).
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$here"

cd "$here"
exec "$py" -m pytest -q -p no:cacheprovider "$@" tests
