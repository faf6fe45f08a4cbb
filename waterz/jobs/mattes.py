"""The job's matte ledger in Redis: the mattes its segments kept and those that found none to use,
for segments that run side by side on any worker (see `waterz.core.matte.MatteLedger`)."""

from __future__ import annotations

from waterz.core.matte import Learned, Matte, MatteLedger
from waterz.jobs.store import JobStore


class RedisLedger(MatteLedger):
    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id

    def kept(self, but: int | None = None) -> dict[int, Matte]:
        return {i: Matte.from_text(text) for i, text in self.store.kept_mattes(self.job_id, but=but).items()}

    def unmatched(self) -> dict[int, tuple[int, list[int]]]:
        return {i: (int(r["seen"]), r["had"]) for i, r in self.store.unmatched(self.job_id).items()}

    def _record(self, index: int, learned: Learned, had: list[int]) -> None:
        if learned.kept is not None:
            self.store.keep_matte(self.job_id, index, learned.kept.to_text())
        self.store.note_unmatched(self.job_id, index, learned.unmatched, had)
