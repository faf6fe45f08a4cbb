"""One Settings object, read from the environment. Defaults live here and nowhere else."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


DEFAULT_WEIGHTS_DIR = Path("~/.cache/waterz")
"""Where model weights are looked for when `WEIGHTS_DIR` is not set."""


class Settings(BaseSettings):
    """Every knob of waterz. Environment variable names are the field names in upper case."""

    model_config = SettingsConfigDict(env_file=None, case_sensitive=False, extra="ignore")

    # Service wiring (used by the distributed service).
    redis_url: str | None = None
    storage_url: str = Field(default_factory=lambda: f"file://{REPO_ROOT / 'data'}")
    broker_url: str | None = None  # default: REDIS_URL; amqp://... for RabbitMQ (state stays in Redis)
    task_queue: str = "celery"  # the queue the API sends to and the workers consume
    port: int = 8000
    workers: int = 2
    cpu_threads: int | None = Field(default=None, ge=1)  # OpenCV threads per process; default: all cores

    # Service limits and timing.
    max_upload_mb: int = Field(default=500, ge=1)  # counted as the upload streams in, Content-Length or not
    body_idle_s: float = Field(default=30.0, gt=0)  # a request body that stops arriving this long gets 408
    max_boxes: int = Field(default=1000, ge=1)  # boxes one /api/process may give
    max_duration_s: float = Field(default=3600.0, gt=0)
    max_width: int = Field(default=4096, ge=16)
    max_height: int = Field(default=4096, ge=16)
    max_pixels: int = Field(default=4096 * 2160, ge=256)  # per frame: DCI 4K
    max_pixel_rate: float = Field(default=4096 * 2160 * 60.0, gt=0)  # pixels per second of video: 4K at 60 fps
    max_frames: int = Field(default=216_000, ge=1)  # an hour at 60 fps
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser ("*": any)
    allowed_hosts: str = ""  # comma-separated names the Host header may give; default: the bound address's
    api_key: str | None = None  # when set, every /api route needs `Authorization: Bearer <key>`
    job_deadline_s: int = Field(default=4 * 3600, ge=60)
    task_time_limit_s: int = Field(default=3600, ge=60)
    visibility_timeout_s: int = Field(default=3 * 3600, ge=120)
    result_expires_s: int = Field(default=24 * 3600, ge=60)
    retention_s: int = Field(default=7 * 24 * 3600, ge=60)
    redis_ride_out_s: float = Field(default=30.0, ge=0)  # workers retry Redis calls this long
    lease_s: float = Field(default=15.0, ge=3)  # a running step's lease, renewed every third of it
    max_attempts: int = Field(default=3, ge=1)  # runs of one step before its job fails
    reaper_interval_s: float = Field(default=5.0, gt=0)  # how often each worker looks for lost steps
    result_ttl_hours: float = Field(default=24.0, gt=0)  # uploads, intermediates and results deleted after
    cleanup_interval_s: float = Field(default=300.0, gt=0)  # how often each worker looks for them

    # Webhooks (a job's callback_url).
    webhook_secret: str | None = None  # the HMAC key of X-Waterz-Signature; no callback_url is taken without it
    webhook_attempts: int = Field(default=5, ge=1)  # tries per job before the webhook is given up
    webhook_backoff_s: float = Field(default=2.0, ge=0)  # the wait after the first failed try, doubling
    webhook_timeout_s: float = Field(default=10.0, gt=0)  # the longest one try waits for the receiver
    webhook_allow_private: bool = False  # also call loopback, private and link-local addresses

    # Engines.
    detector: str = "auto"
    inpainter: str = "auto"
    weights_dir: Path = DEFAULT_WEIGHTS_DIR
    yolo_weights: Path | None = None  # the yolo detector's model; `auto` picks yolo when set
    yolo_conf: float = Field(default=0.15, gt=0, lt=1)  # low: a missed mark shows, an extra box costs little
    yolo_stride: int = Field(default=2, ge=1)  # predict every n-th frame, re-check around changes
    propainter_fp16: bool = False  # fp16 autocast for ProPainter on CUDA

    # Segment planning.
    min_segments: int | str = 2
    min_chunk_frames: int = Field(default=20, ge=1)
    max_chunk_frames: int = Field(default=300, ge=2)
    overlap_frames: int = Field(default=4, ge=0)
    context_frames: int = Field(default=12, ge=0)
    crop_padding: int = Field(default=24, ge=0)
    min_crop: int = Field(default=128, ge=8)

    # The service's fan-out: detection and encoding in chunks of frames, one task each.
    detect_chunk_frames: int = Field(default=48, ge=1)  # the shortest detection chunk (the static detector's windows)
    detect_overlap_frames: int = Field(default=32, ge=0)  # frames a detection chunk also sees on each side
    encode_lookahead_frames: int = Field(default=12, ge=0)  # frames an encode chunk reads past its end (no seam)

    # Masks and compositing.
    mask_dilation: int = Field(default=2, ge=0)
    feather: int = Field(default=3, ge=0)

    # Encoding.
    crf: int = Field(default=18, ge=0, le=51)
    preset: str = "medium"

    @field_validator("min_segments")
    @classmethod
    def _min_segments(cls, value: int | str) -> int | str:
        if isinstance(value, str):
            if value.strip().lower() == "auto":
                return "auto"
            value = int(value)
        if value < 1:
            raise ValueError("MIN_SEGMENTS must be a positive integer or 'auto'")
        return value

    @model_validator(mode="after")
    def _timeouts(self) -> Settings:
        # The broker redelivers an unacknowledged task after the visibility timeout; a task allowed
        # to run longer than that would run twice at once.
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError("VISIBILITY_TIMEOUT_S must be longer than TASK_TIME_LIMIT_S")
        return self

    def min_segments_for(self, online_workers: int = 1) -> int:
        """MIN_SEGMENTS as a number; 'auto' means one per online worker."""
        if self.min_segments == "auto":
            return max(1, online_workers)
        return int(self.min_segments)


@lru_cache
def get_settings() -> Settings:
    return Settings()
