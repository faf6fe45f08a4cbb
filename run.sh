#!/usr/bin/env bash
# Create .venv if missing, install exactly what locks/run.lock pins (locks/run-ml.lock with
# WATERZ_ML=1: torch, ultralytics, pytorchcv too), start the whole service (private Redis unless
# REDIS_URL is set, the API on PORT, WORKERS Celery workers). Ctrl+C stops every process.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/venv.sh
LOCK=locks/run.lock
if [ "${WATERZ_ML:-0}" = "1" ]; then LOCK=locks/run-ml.lock; fi
install_locked ./run.sh "$LOCK"
exec .venv/bin/waterz up "$@"
