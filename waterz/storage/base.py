"""The storage protocol and the URL -> backend factory."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from waterz.core.errors import ConfigError

CHUNK = 1 << 20


class Storage(Protocol):
    """Keys are `/`-separated relative paths such as `jobs/<id>/segment_0_input.npz`."""

    def put_file(self, key: str, path: Path) -> None:
        """Upload the local file `path` as `key` (replacing it)."""

    def get_file(self, key: str, path: Path) -> None:
        """Download `key` to the local file `path`; `FileNotFoundError` when absent."""

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """Stream `key` in chunks; `FileNotFoundError` when absent."""

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when `key` does not exist."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`; returns how many."""

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Every key under `prefix` with its last modification (unix seconds)."""


def missing(key: str) -> FileNotFoundError:
    """The error every backend raises for an absent key; `.filename` is the key, never a host path."""
    return FileNotFoundError(errno.ENOENT, "not in storage", key)


def copy_stream(src: BinaryIO, dst: BinaryIO, limit: int | None = None) -> int:
    """Copy in chunks; stops and returns limit + 1 as soon as more than `limit` bytes were seen."""
    total = 0
    while block := src.read(CHUNK):
        total += len(block)
        if limit is not None and total > limit:
            return total
        dst.write(block)
    return total


def open_storage(url: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from waterz.storage.local import FileStorage

        return FileStorage(Path(parsed.path))
    if parsed.scheme == "s3":
        from waterz.storage.s3 import S3Storage

        if not parsed.netloc:
            raise ConfigError(f"STORAGE_URL {url!r} names no bucket; use s3://bucket/prefix.")
        return S3Storage(parsed.netloc, parsed.path.strip("/"))
    raise ConfigError(f"STORAGE_URL {url!r} is not supported; use file:///abs/dir or s3://bucket/prefix.")
