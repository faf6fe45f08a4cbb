"""Model weights in `WEIGHTS_DIR`: what each engine needs, checksums, download on request only.

Engines load weights from `WEIGHTS_DIR` and nowhere else; nothing is fetched implicitly. Missing or
damaged files raise `WeightsMissing` with a sentence that names them, the directory and the
command that fetches them (`waterz weights download`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from waterz.core.errors import WeightsMissing

log = logging.getLogger(__name__)

PROPAINTER_MODELS = ("raft_things", "propainter_rfc", "propainter")
_verified: dict[tuple[str, int, float], str] = {}


@dataclass(frozen=True)
class WeightFile:
    """One weights file: the pytorchcv model it is for and the SHA-1 of its contents (or the
    first digits of it, as a file's name carries them)."""

    model: str
    sha1: str

    @property
    def filename(self) -> str:
        # pytorchcv's own naming, so `get_model_file` finds and verifies what it downloaded.
        return f"{self.model}-0000-{self.sha1[:8]}.pth"


def published(models: tuple[str, ...] = PROPAINTER_MODELS) -> list[WeightFile]:
    """The files pytorchcv publishes for `models`, with their checksums (needs the `ml` extra)."""
    try:
        from pytorchcv.models.common.model_store import get_model_metainfo
    except ImportError as exc:
        raise WeightsMissing("The ML extras are not installed: pip install -e '.[ml]' (torch, pytorchcv).") from exc
    return [WeightFile(m, get_model_metainfo(m)[2]) for m in models]


def named_weights(directory: Path | str, models: tuple[str, ...]) -> dict[str, str]:
    """`"ok" | "missing" | "checksum mismatch"` per model, by the files in `directory` alone: a
    published file's name carries the first 8 hex digits of its SHA-1 (see `WeightFile`), which
    `WeightStore.status` checks as it checks a whole one, without pytorchcv (which imports torch)
    to say what the whole checksum is."""
    folder = Path(directory).expanduser()
    states = {}
    for model in models:
        found = sorted(folder.glob(f"{model}-0000-*.pth")) if folder.is_dir() else []
        prefixes = [f.stem.rsplit("-", 1)[-1] for f in found]
        named = WeightStore(folder, [WeightFile(model, h) for h in prefixes if len(h) == 8])
        seen = {state for _, state in named.status()}
        states[model] = "missing" if not seen else "ok" if "ok" in seen else "checksum mismatch"
    return states


def missing_weights(directory: Path | str, what: list[str]) -> str:
    """The sentence for weights that are not usable in `directory`: which, and the command that fetches them."""
    return (f"Model weights missing in {directory}: {', '.join(what)}. "
            f"Fetch them with: WEIGHTS_DIR={directory} waterz weights download")  # fmt: skip


def sha1_of(path: Path) -> str:
    """SHA-1 of a file, remembered per (path, size, mtime) so a process hashes each file once."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    if key not in _verified:
        digest = hashlib.sha1()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


class WeightStore:
    """The weights of one engine in one directory."""

    def __init__(self, directory: Path | str, files: list[WeightFile]):
        self.directory = Path(directory).expanduser()
        self.files = files

    def status(self) -> list[tuple[WeightFile, str]]:
        """`(file, "ok" | "missing" | "checksum mismatch")` for every file."""
        out = []
        for wf in self.files:
            path = self.directory / wf.filename
            if not path.is_file():
                out.append((wf, "missing"))
            elif not sha1_of(path).startswith(wf.sha1):
                out.append((wf, "checksum mismatch"))
            else:
                out.append((wf, "ok"))
        return out

    def require(self) -> dict[str, Path]:
        """Paths by model name, every file verified; `WeightsMissing` naming what is not there."""
        bad = [(wf, state) for wf, state in self.status() if state != "ok"]
        if bad:
            raise WeightsMissing(missing_weights(self.directory, [f"{wf.filename} ({state})" for wf, state in bad]))
        return {wf.model: self.directory / wf.filename for wf in self.files}

    def download(self) -> list[Path]:
        """Fetch and verify what is missing, with pytorchcv's own downloader (checksums checked)."""
        from pytorchcv.models.common.model_store import get_model_file

        self.directory.mkdir(parents=True, exist_ok=True)
        fetched = []
        for wf, state in self.status():
            if state != "ok":
                log.info("downloading %s to %s", wf.filename, self.directory)
                fetched.append(Path(get_model_file(wf.model, str(self.directory))))
        return fetched


def fresh_weights(directory: Path, seed: int = 0) -> WeightStore:
    """Freshly initialised ProPainter models saved into `directory` with their checksums recorded:
    the real loading path, without the published files (for tests, and for benchmarks where they
    cannot be downloaded: same arithmetic, not the same pictures)."""
    import torch
    from pytorchcv.models.propainter import propainter
    from pytorchcv.models.propainter_rfc import propainter_rfc
    from pytorchcv.models.raft import raft_things

    torch.manual_seed(seed)
    files = []
    for name, net in (("raft_things", raft_things(in_normalize=False, iters=20)), ("propainter_rfc", propainter_rfc()),
                      ("propainter", propainter())):  # fmt: skip
        saved = directory / f"{name}.saving"
        torch.save(net.state_dict(), saved)
        wf = WeightFile(name, sha1_of(saved))
        saved.rename(directory / wf.filename)
        files.append(wf)
    return WeightStore(directory, files)
