#!/usr/bin/env bash
# Create .venv if missing, install waterz, start the whole service (private Redis unless
# REDIS_URL is set, the API on PORT, WORKERS Celery workers). Ctrl+C stops every process.
# WATERZ_ML=1 also installs the ML extras (torch, ultralytics, pytorchcv).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
EXTRAS=""
if [ "${WATERZ_ML:-0}" = "1" ]; then EXTRAS="[ml]"; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${EXTRAS}"
exec .venv/bin/waterz up "$@"
