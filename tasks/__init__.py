"""The three Celery tasks of a job, and `watermark.notify` for its webhook. Each is a few lines: take
ids, call `waterz.jobs.steps` (or `waterz.jobs.webhooks`), record state."""

from tasks.watermark import finalize_video, notify, prepare_video, process_segment

__all__ = ["prepare_video", "process_segment", "finalize_video", "notify"]
