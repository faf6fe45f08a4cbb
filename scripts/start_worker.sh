#!/usr/bin/env bash
# The contract's worker command for worker N on GPU N-1: start_worker1.sh and start_worker2.sh
# call this. Needs REDIS_URL (and STORAGE_URL unless this host shares ./data with the API);
# nothing secret lives here.
set -euo pipefail
n=$1
cd "$(dirname "$0")/.."
if [ -z "${REDIS_URL:-}" ]; then
  echo "start_worker$n.sh: REDIS_URL is not set; export REDIS_URL=redis://HOST:PORT/0 (the API's Redis) and retry." >&2
  exit 2
fi
export CUDA_VISIBLE_DEVICES=$((n - 1))
CELERY=celery
if [ -x .venv/bin/celery ]; then CELERY=.venv/bin/celery; fi
exec "$CELERY" -A server_production.celery worker --loglevel=info --pool=threads --concurrency=1 -n "worker$n@%h"
