"""Writes the presets of `detector/presets/`: each mark's alpha matte (`<name>.png`, 8-bit) and what
is known of it (`<name>.json`), from real footage.

**sora**, from the real crops in `../shared/footage/sora_templates/`.

The crops whose picture around the mark is near black (templates 0 and 150: background median
under 25 grey levels) show the mark almost alone: over a background of grey level b, a white
mark of opacity a gives a*255 + (1-a)*b, so a = (v - b) / (255 - b). The two are aligned on the
word (the icon animates: eyes open in one, closed in the other) and averaged, so the matte is
the icon's mean look; the text is the same in both.

**tiktok**, from the labelled real frames of `../shared/footage/tiktok_frames` of the videos kept
for building (`waterz.synth.tiktok_frames.half(..., 0)`; the other half measures the preset). The fixed
part of the mark is the note icon over the word "TikTok"; the `@username` line under it differs
per video and is found in each video by the detector (`detector.preset`). In each portrait video
the frame whose mark box is darkest is taken; the word is found in each by normalised correlation
with the darkest one's word (at scales 0.8-1.25), the frames are aligned on it and the 30th
percentile of their grey levels is taken per pixel: the mark (opaque white, its fringes lighter
or darker grey) is where it is in every frame, the picture behind differs. The mark's look over
black is its matte (colour 255): where it is opaque, that is its grey level over 255.

    python scripts/make_presets.py [--footage ../shared/footage] [--only sora|tiktok]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "detector" / "presets"
DARK = ("template_0.png", "template_150.png")


def alpha_of(crop: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    background = float(np.median(grey))
    if background > 25:
        raise SystemExit(f"the crop's background is grey {background:.0f}, not near black")
    return np.clip((grey - background) / (255 - background), 0, 1)


def sora(footage: Path) -> None:
    mattes = [alpha_of(cv2.imread(str(footage / "sora_templates" / name))) for name in DARK]
    h = min(m.shape[0] for m in mattes)
    w = min(m.shape[1] for m in mattes)
    base = mattes[0][:h, :w]
    aligned = [base]
    for m in mattes[1:]:
        # the word "Sora" (right part) is what does not animate: align on it
        word = base[:, w // 2 :]
        score = cv2.matchTemplate(m, word[4:-4, 4:-4], cv2.TM_CCORR_NORMED)
        _, _, _, (dx, dy) = cv2.minMaxLoc(score)
        shift = np.float32([[1, 0, w // 2 + 4 - dx], [0, 1, 4 - dy]])
        aligned.append(cv2.warpAffine(m, shift, (w, h))[:h, :w])
    matte = np.mean(aligned, axis=0)
    ys, xs = np.nonzero(matte > 0.1)
    pad = 2
    matte = matte[max(0, ys.min() - pad) : ys.max() + pad + 1, max(0, xs.min() - pad) : xs.max() + pad + 1]
    cv2.imwrite(str(OUT / "sora.png"), np.round(matte * 255).astype(np.uint8))
    # the crops come from 704-px-wide portrait video: the mark's width over the picture's short side
    meta = {"name": "sora", "colour": 255, "short_side": 704, "source": list(DARK),
            "peak_alpha": round(float(matte.max()), 3), "size": list(matte.shape[::-1]),
            # the icon wiggles and changes shape frame to frame, the word fades around each jump:
            # one matte fitted over a segment leaves 31-92 % of it (bench/real.py --remove)
            "animated": True}  # fmt: skip
    (OUT / "sora.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"sora: matte {matte.shape[1]}x{matte.shape[0]}, peak alpha {matte.max():.2f}")


def _ncc(region: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised correlation, with windows of nearly flat picture (whose score is noise) at -1."""
    score = cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED)
    th, tw = template.shape
    mean = cv2.boxFilter(region, -1, (tw, th), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    square = cv2.boxFilter(region * region, -1, (tw, th), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    std = np.sqrt(np.maximum(square - mean * mean, 0))[: score.shape[0], : score.shape[1]]
    score[std < 0.5 * template.std()] = -1
    return score


def tiktok(footage: Path) -> None:
    from detector.preset import runs
    from waterz.synth.tiktok_frames import half, tiktok_videos

    pad, bright, frames = 16, 110, 10
    picks = []  # (darkness, grey frame, box) of each portrait video's darkest mark
    for video in half(tiktok_videos(footage / "tiktok_frames"), 0):
        if not video.portrait:
            continue
        options = []
        for k, box in enumerate(video.boxes):
            if box is not None:
                grey = cv2.cvtColor(video.image(k), cv2.COLOR_BGR2GRAY).astype(np.float32)
                around = grey[max(0, box.y - 8) : box.y + box.h + 8, max(0, box.x - 8) : box.x + box.w + 8]
                options.append((float(np.median(around)), grey, box))
        if options:
            picks.append(min(options, key=lambda o: o[0]))
    picks.sort(key=lambda o: o[0])
    _, grey, box = picks[0]
    ref = grey[box.y - pad : box.y + box.h + pad, box.x - pad : box.x + box.w + pad]
    rows = runs((ref > bright).sum(axis=1) > 0)
    (wy0, wy1), (ly0, ly1) = rows[-2], rows[-1]  # the word, the username line
    cols = runs((ref[wy0:wy1] > bright).sum(axis=0) > 0)
    wx0, wx1 = cols[0][0], cols[-1][1]
    word = ref[wy0 - 3 : wy1 + 3, wx0 - 3 : wx1 + 3]
    stack = []
    for _, grey, box in picks[:frames]:
        best = None
        for s in np.arange(0.8, 1.25, 0.025):  # s: this video's mark over the reference's
            scaled = cv2.resize(grey, None, fx=1 / s, fy=1 / s, interpolation=cv2.INTER_AREA)
            x0, y0 = max(0, int(box.x / s) - pad), max(0, int(box.y / s) - pad)
            region = scaled[y0 : int((box.y + box.h) / s) + pad, x0 : int((box.x + box.w) / s) + pad]
            if region.shape[0] < word.shape[0] or region.shape[1] < word.shape[1]:
                continue
            _, score, _, (x, y) = cv2.minMaxLoc(_ncc(region, word))
            if best is None or score > best[0]:
                best = (score, x0 + x - (wx0 - 3), y0 + y - (wy0 - 3), scaled)
        _, dx, dy, scaled = best
        shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
        stack.append(cv2.warpAffine(scaled, shift, ref.shape[::-1], borderValue=0))
    look = np.percentile(np.array(stack), 30, axis=0)
    (iy0, _), = runs((look[:wy0, wx0:wx1] > bright).sum(axis=1) > 0)[-1:]  # the icon, over the word
    edge = 3
    block = look[iy0 - edge : wy1 + edge, wx0 - edge : wx1 + edge]
    # what of the picture is left in the percentile around the mark: its border's 90th percentile
    floor = float(np.percentile(np.r_[block[0], block[-1], block[:, 0], block[:, -1]], 90))
    matte = np.clip((block - floor) / (255 - floor), 0, 1)
    cv2.imwrite(str(OUT / "tiktok.png"), np.round(matte * 255).astype(np.uint8))
    height = block.shape[0]
    meta = {"name": "tiktok", "colour": 255, "short_side": 576, "source": "tiktok_frames, half 0",
            "frames": len(stack), "peak_alpha": round(float(matte.max()), 3), "size": list(matte.shape[::-1]),
            # measured on the reference: from the matte's bottom, as a share of the matte's height
            "line": {"gap": round((ly0 - (wy1 + edge)) / height, 3), "height": round((ly1 - ly0) / height, 3)},
            "animated": False}  # fmt: skip
    (OUT / "tiktok.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"tiktok: matte {matte.shape[1]}x{matte.shape[0]} from {len(stack)} videos, peak alpha {matte.max():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=ROOT.parent / "shared" / "footage")
    parser.add_argument("--only", choices=("sora", "tiktok"))
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    for name, build in (("sora", sora), ("tiktok", tiktok)):
        if args.only in (None, name):
            build(args.footage)


if __name__ == "__main__":
    main()
