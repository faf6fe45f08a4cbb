"""Peak memory of `waterz remove` on a generated 1080p clip (default 60 s at 30 fps).

The clip is generated frame by frame (never held in memory): a camera sweeping over a natural image with a
semi-transparent mark that jumps once. `waterz remove` runs in a child process; its peak resident
set size is read from the kernel (its own ru_maxrss, printed by a small wrapper as it exits).

    python bench/memory.py [--seconds 60] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from waterz.synth.clips import MarkSpec, load_source, render_mark_matte  # noqa: E402

W, H, FPS = 1920, 1080, 30
# Runs the CLI in-process, then prints that process's own peak RSS (KiB) on stderr.
_WRAPPER = (
    "import resource, sys; from waterz.cli import main; rc = main(sys.argv[1:]); "
    "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
)


def run_remove(clip: Path, out: Path) -> tuple[float, float, dict]:
    """`waterz remove clip -o out` in a child process: its wall seconds, its own peak RSS in MB and
    its JSON summary."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _WRAPPER, "remove", str(clip), "-o", str(out)],
                            capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"waterz remove failed: {result.stderr[-2000:]}")
    peak_mb = int(result.stderr.strip().splitlines()[-1].split()[-1]) / 1024
    return wall, peak_mb, json.loads(result.stdout.strip().splitlines()[-1])


def generate(path: Path, seconds: float) -> int:
    n = int(seconds * FPS)
    source = load_source("astronaut")
    big = cv2.resize(source, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    matte = render_mark_matte(MarkSpec(scale=2.2)) * 0.6
    mh, mw = matte.shape
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}", "-framerate", str(FPS), "-i", "-",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", str(path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(n):
        # a camera sweeping back and forth (~9 px per frame), so the mark is found and cleaned
        phase = abs((i / 100) % 2 - 1)
        x, y = int(100 + 900 * phase), int(200 + 600 * i / n)
        frame = big[y : y + H, x : x + W].astype(np.float32)
        px, py = (60, 60) if i < n // 2 else (W - mw - 80, H - mh - 80)
        region = frame[py : py + mh, px : px + mw]
        region[:] = region * (1 - matte[..., None]) + 255 * matte[..., None]
        proc.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("ffmpeg failed to write the clip")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--keep", type=Path, help="keep the clip and result in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clip, out = work / "clip_1080p.mp4", work / "clean_1080p.mp4"
        t0 = time.perf_counter()
        frames = generate(clip, args.seconds)
        gen_s = time.perf_counter() - t0
        wall, peak_mb, summary = run_remove(clip, out)
        print(f"clip: {W}x{H}, {frames} frames, {args.seconds:.0f} s (generated in {gen_s:.0f} s)")
        print(f"waterz remove: {wall:.1f} s wall, stages {summary['seconds']}")
        print(f"segments: {len(summary['segments'])}, frames written: {summary['frames_written']}")
        print(f"peak RSS of the waterz process: {peak_mb:.0f} MB (limit 1536 MB)")


if __name__ == "__main__":
    main()
