#!/usr/bin/env bash
# Worker 1 on GPU 0: the contract's worker command. Needs REDIS_URL (and STORAGE_URL unless
# this host shares ./data with the API); nothing secret lives here.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${REDIS_URL:-}" ]; then
  echo "start_worker1.sh: REDIS_URL is not set; export REDIS_URL=redis://HOST:PORT/0 (the API's Redis) and retry." >&2
  exit 2
fi
export CUDA_VISIBLE_DEVICES=0
CELERY=celery
if [ -x .venv/bin/celery ]; then CELERY=.venv/bin/celery; fi
exec "$CELERY" -A server_production.celery worker --loglevel=info --pool=threads --concurrency=1 -n worker1@%h
