#!/usr/bin/env bash
# Worker 1 on GPU 0 (CUDA_VISIBLE_DEVICES=0); see scripts/start_worker.sh.
exec "$(dirname "$0")/scripts/start_worker.sh" 1
