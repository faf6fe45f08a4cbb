"""Receiving an upload: stream it to a temp file under the size cap, check it is a video, store it."""

from __future__ import annotations

import re
import tempfile
import unicodedata
import uuid
from pathlib import Path
from typing import BinaryIO

import cv2

from waterz.core.errors import UploadTooLarge
from waterz.jobs import keys
from waterz.jobs.housekeeping import delete_job_files
from waterz.jobs.runtime import Runtime
from waterz.storage.base import copy_stream
from waterz.video import iter_frames, probe

_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")


def safe_filename(name: str | None) -> str:
    """The user's file name for display only: no directories, no control characters, at most 200 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 8 else base[:200]
    return base or "video.mp4"


def storage_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ".bin"


def check_limits(info, settings, filename: str) -> None:
    """Refuse (413, nothing stored) what exceeds MAX_DURATION_S, MAX_WIDTH, MAX_HEIGHT, MAX_PIXELS,
    MAX_FRAMES or MAX_PIXEL_RATE, judged from what the stream holds (packets counted, their
    timestamps' span, the first frame decoded), not from its header."""
    pixels = info.width * info.height
    if pixels > settings.max_pixels:
        raise UploadTooLarge(f"'{filename}' has frames of {info.width}x{info.height} ({pixels / 1e6:.1f} MP); "
                             f"this service takes at most {settings.max_pixels / 1e6:.1f} MP a frame (MAX_PIXELS).")
    if info.frames > settings.max_frames:
        raise UploadTooLarge(f"'{filename}' has {info.frames} frames; this service takes at most "
                             f"{settings.max_frames} (MAX_FRAMES).")  # fmt: skip
    rate = pixels * info.frames / info.duration
    if rate > settings.max_pixel_rate:
        raise UploadTooLarge(f"'{filename}' carries {rate / 1e6:.0f} million pixels per second of video; this "
                             f"service takes at most {settings.max_pixel_rate / 1e6:.0f} million (MAX_PIXEL_RATE, "
                             "4K at 60 fps by default).")  # fmt: skip
    if info.duration > settings.max_duration_s:
        raise UploadTooLarge(f"'{filename}' lasts {info.duration:.0f} s; this service takes videos up to "
                             f"{settings.max_duration_s:.0f} s (MAX_DURATION_S).")  # fmt: skip
    if info.width > settings.max_width or info.height > settings.max_height:
        raise UploadTooLarge(f"'{filename}' is {info.width}x{info.height}; this service takes videos up to "
                             f"{settings.max_width}x{settings.max_height} (MAX_WIDTH, MAX_HEIGHT).")  # fmt: skip


def too_large(limit_mb: int) -> UploadTooLarge:
    return UploadTooLarge(f"The file is larger than the {limit_mb} MB upload limit (MAX_UPLOAD_MB).")


def store_upload(rt: Runtime, source: BinaryIO, filename: str) -> dict:
    """Copy `source` to storage as a new job and return the upload's JSON answer.
    Raises `UploadTooLarge` or `InvalidVideo` (with the reason) before anything is stored."""
    limit_mb = rt.settings.max_upload_mb
    job_id = uuid.uuid4().hex
    suffix = storage_suffix(filename)
    with tempfile.TemporaryDirectory(prefix="waterz-upload-") as tmp:
        local = Path(tmp) / f"source{suffix}"
        with open(local, "wb") as out:
            if copy_stream(source, out, limit=limit_mb << 20) > limit_mb << 20:
                raise too_large(limit_mb)
        info = probe(local, name=filename)
        check_limits(info, rt.settings, filename)
        key = keys.upload_key(job_id, suffix)
        rt.storage.put_file(key, local)
        preview = Path(tmp) / "preview.jpg"
        cv2.imwrite(str(preview), next(iter_frames(local)), [cv2.IMWRITE_JPEG_QUALITY, 88])
        rt.storage.put_file(keys.preview_key(job_id), preview)
    summary = info.summary()
    try:
        rt.store.create(job_id, filename=filename, input_key=key, info=summary, deadline_s=rt.settings.job_deadline_s,
                        probed=info.to_dict())  # fmt: skip
    except Exception:  # Redis away: the files would belong to no job
        delete_job_files(rt.storage, job_id)
        raise
    return {"task_id": job_id, "filename": filename, "frames": info.frames, "fps": summary["fps"],
            "width": info.width, "height": info.height, "duration": summary["duration"]}  # fmt: skip
