"""Pure planning and image logic (no Celery, no FastAPI), and the single-process pipeline."""
