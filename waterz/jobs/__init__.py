"""Job state in Redis: one record per job, one per segment, the set of finished segments."""

from waterz.jobs.store import TERMINAL, JobStore

__all__ = ["JobStore", "TERMINAL"]
