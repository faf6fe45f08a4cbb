#!/usr/bin/env bash
# Worker 2 on GPU 1 (CUDA_VISIBLE_DEVICES=1); see scripts/start_worker.sh.
exec "$(dirname "$0")/scripts/start_worker.sh" 2
