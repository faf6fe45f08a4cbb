"""waterz: video watermark removal, one process or distributed over Celery workers."""

__version__ = "0.1.0"
