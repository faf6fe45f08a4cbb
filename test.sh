#!/usr/bin/env bash
# Create .venv if missing, install waterz with its test extras, run the whole suite.
# Exit status is the suite's. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,ml]'
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest -q "$@"
