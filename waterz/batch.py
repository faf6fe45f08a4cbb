"""Several videos in one `waterz remove`: which files, and where each result goes.

A directory stands for the files in it (not those in its subfolders unless `recursive`, and not
hidden ones): whether each is a video is for the job to find out, so a stray file is reported
by name with the sentence any job would give, and the others still run.
"""

from __future__ import annotations

from pathlib import Path

from waterz.core.errors import InvalidRequest

SUFFIX = ".clean.mp4"


def is_batch(inputs: list[Path]) -> bool:
    """A batch: several inputs, or a directory."""
    return len(inputs) > 1 or inputs[0].is_dir()


def single_output(source: Path, output: Path) -> Path:
    """Where one video's result goes: `output`, or `output/<name>.clean.mp4` for a folder."""
    return output / f"{source.stem}{SUFFIX}" if output.is_dir() else output


def batch_outputs(inputs: list[Path], outdir: Path, recursive: bool = False) -> list[tuple[Path, Path]]:
    """`(input, output)` for every file of the batch, in order: `outdir/<name>.clean.mp4` (a
    directory's files under their path relative to it). `InvalidRequest` where `outdir` is a
    file or the inputs hold no file at all."""
    if outdir.exists() and not outdir.is_dir():
        raise InvalidRequest(f"'{outdir}' is a file; for several videos -o names a folder for the results.")
    pairs: list[tuple[Path, Path]] = []
    taken: set[Path] = set()
    for given in inputs:
        if given.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in given.glob(pattern) if p.is_file() and not _hidden(p.relative_to(given)))
            files = [p for p in files if outdir.resolve() not in p.resolve().parents]  # not our own results
            pairs += [(p, _name(outdir / p.relative_to(given).parent, p, taken)) for p in files]
        else:
            pairs.append((given, _name(outdir, given, taken)))  # a missing one is reported as it runs
    if not pairs:
        raise InvalidRequest(f"There is no file to clean in {', '.join(map(str, inputs))}.")
    return pairs


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _name(folder: Path, source: Path, taken: set[Path]) -> Path:
    """`<stem>.clean.mp4` in `folder`, or `<name>.clean.mp4` where another input took that."""
    out = folder / f"{source.stem}{SUFFIX}"
    if out in taken:
        out = folder / f"{source.name}{SUFFIX}"
    taken.add(out)
    return out
