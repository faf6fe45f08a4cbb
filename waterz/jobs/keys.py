"""The names of a job's files in storage, in one place.

  uploads/<id>/source<.ext>             the original video (written by the API)
  uploads/<id>/preview.jpg              its first frame as decoded, for drawing boxes on
  jobs/<id>/video.json                  what probing it found, and every frame's timestamp
  jobs/<id>/detect_<k>_a<n>.npz         the marks detection chunk k found, from attempt n
  jobs/<id>/marks.npz                   the whole video's marks, merged (`waterz.pipeline.fanout`)
  jobs/<id>/segment_<i>_a<n>.npy        segment i's cleaned pixels from attempt n, and
  jobs/<id>/segment_<i>_a<n>_mask.npy   its masks (one name per attempt: a late one overwrites nothing)
  jobs/<id>/segment_<i>_again<n>.npy    the same from a second look at it (and `..._mask.npy`)
  jobs/<id>/sources_<i>_a<n>.npz        what attempt n found in other frames, for a second look
  jobs/<id>/chunk_<k>_a<n>.mp4          encode chunk k, from attempt n
  results/<id>.mp4                      the cleaned video

Everything under `jobs/<id>/` is deleted when the job ends.
"""

from __future__ import annotations

import re

TOPS = ("uploads/", "jobs/", "results/")
"""The folders every job's files lie under."""

OWNER = re.compile(r"^(?:uploads|jobs)/([0-9a-f]{32})/|^results/([0-9a-f]{32})\.mp4$")
"""A stored file's name: its job's id in group 1 or 2."""


def upload_key(job_id: str, suffix: str) -> str:
    return f"uploads/{job_id}/source{suffix}"


def preview_key(job_id: str) -> str:
    """The first frame as decoded (the frame boxes are drawn on), JPEG."""
    return f"uploads/{job_id}/preview.jpg"


def job_files(job_id: str) -> tuple[str, ...]:
    """The prefixes of everything stored for a job: its upload, its intermediates, its result."""
    return f"uploads/{job_id}/", intermediates(job_id), result_key(job_id)


def video_key(job_id: str) -> str:
    return f"jobs/{job_id}/video.json"


def detect_key(job_id: str, index: int, attempt: int) -> str:
    return f"jobs/{job_id}/detect_{index}_a{attempt}.npz"


def marks_key(job_id: str) -> str:
    return f"jobs/{job_id}/marks.npz"


def output_keys(job_id: str, index: int, attempt: int, again: bool = False) -> tuple[str, str]:
    """Storage keys of a segment's cleaned pixels and masks from one attempt (of its second
    look, with `again`)."""
    stem = f"jobs/{job_id}/segment_{index}_{'again' if again else 'a'}{attempt}"
    return f"{stem}.npy", f"{stem}_mask.npy"


def sources_key(job_id: str, index: int, attempt: int) -> str:
    """Segment `index`'s sources (`waterz.pipeline.run.keep_sources`) from one attempt."""
    return f"jobs/{job_id}/sources_{index}_a{attempt}.npz"


def chunk_key(job_id: str, index: int, attempt: int) -> str:
    return f"jobs/{job_id}/chunk_{index}_a{attempt}.mp4"


def result_key(job_id: str) -> str:
    return f"results/{job_id}.mp4"


def intermediates(job_id: str) -> str:
    """The prefix of every file the job's steps write for each other."""
    return f"jobs/{job_id}/"
