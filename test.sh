#!/usr/bin/env bash
# Create .venv if missing, install exactly what requirements.lock pins (waterz with its test and ml
# extras), run ruff, the import contracts and the whole suite. Exit status is the suite's.
# Extra arguments go to pytest (`-n 0` runs the suite in one process).
# Two processes, each taking whole files (a file's module fixtures, such as a service with its
# workers, start once): the suite keeps one core busy on average (much of it waits on workers,
# Redis and ffmpeg), and a file's tests run in their order.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/venv.sh
install_locked ./test.sh requirements.lock
.venv/bin/python -m ruff check .
.venv/bin/lint-imports --no-cache  # the layer contracts in pyproject.toml
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
