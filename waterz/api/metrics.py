"""`/metrics` in the Prometheus text format: jobs by state, segment seconds, queue length, workers."""

from __future__ import annotations

from waterz.jobs.store import BUCKETS, JobStore


def render(store: JobStore, queue_length: int | None, workers: int) -> str:
    lines = ["# HELP waterz_jobs Jobs by state (those still within the retention window).",
             "# TYPE waterz_jobs gauge"]  # fmt: skip
    for state, count in store.count_by_state().items():
        lines.append(f'waterz_jobs{{state="{state}"}} {count}')
    hist = store.segment_histogram()
    lines += ["# HELP waterz_segment_seconds Seconds a worker spent cleaning one segment.",
              "# TYPE waterz_segment_seconds histogram"]  # fmt: skip
    for le in (*map(str, BUCKETS), "+Inf"):
        lines.append(f'waterz_segment_seconds_bucket{{le="{le}"}} {int(hist.get(le, 0))}')
    lines.append(f"waterz_segment_seconds_sum {hist.get('sum', 0.0):.3f}")
    lines.append(f"waterz_segment_seconds_count {int(hist.get('count', 0))}")
    if queue_length is not None:
        lines += ["# HELP waterz_queue_length Tasks waiting in the broker's queue.",
                  "# TYPE waterz_queue_length gauge",
                  f'waterz_queue_length{{queue="celery"}} {queue_length}']  # fmt: skip
    lines += ["# HELP waterz_workers_online Workers answering a ping.", "# TYPE waterz_workers_online gauge",
              f"waterz_workers_online {workers}"]  # fmt: skip
    return "\n".join(lines) + "\n"
