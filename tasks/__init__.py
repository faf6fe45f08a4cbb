"""The three Celery tasks. Each is a few lines: take ids, call `jobs.steps`, record state."""

from tasks.watermark import finalize_video, prepare_video, process_segment

__all__ = ["prepare_video", "process_segment", "finalize_video"]
