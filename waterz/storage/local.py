"""`file://` storage: a directory on this host or on a shared filesystem."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from waterz.storage.base import CHUNK, missing


class FileStorage:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key {key!r} leaves the storage root")
        return path

    def put_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the destination and rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise missing(key)
        return path

    def get_file(self, key: str, path: Path) -> None:
        shutil.copyfile(self._existing(key), path)

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        with open(self._existing(key), "rb") as f:
            while block := f.read(chunk):
                yield block

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def local_path(self, key: str) -> Path:
        """The file itself, for backends that have one (lets the API send it directly)."""
        return self._path(key)

    def delete_prefix(self, prefix: str) -> int:
        path = self._path(prefix.rstrip("/"))
        if path.is_file():
            path.unlink()
            return 1
        if not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path, ignore_errors=True)
        return count

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        top = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not top.is_dir():
            return
        for path in top.rglob("*"):
            if path.is_file() and not path.name.startswith(".part-"):
                yield path.relative_to(self.root).as_posix(), path.stat().st_mtime
