#!/usr/bin/env bash
# Create .venv if missing, install exactly what requirements.lock pins (waterz with its test and ml
# extras), run ruff and the whole suite. Exit status is the suite's. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/venv.sh
install_locked ./test.sh requirements.lock
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest -q "$@"
