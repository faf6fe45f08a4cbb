"""Writes `detector/presets/sora.png` (the Sora mark's alpha matte, 8-bit) and `sora.json` from the
real crops in `../shared/footage/sora_templates/`.

The crops whose picture around the mark is near black (templates 0 and 150: background median
under 25 grey levels) show the mark almost alone: over a background of grey level b, a white
mark of opacity a gives a*255 + (1-a)*b, so a = (v - b) / (255 - b). The two are aligned on the
word (the icon animates: eyes open in one, closed in the other) and averaged, so the matte is
the icon's mean look; the text is the same in both.

    python scripts/make_presets.py [--footage ../shared/footage]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "detector" / "presets"
DARK = ("template_0.png", "template_150.png")


def alpha_of(crop: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    background = float(np.median(grey))
    if background > 25:
        raise SystemExit(f"the crop's background is grey {background:.0f}, not near black")
    return np.clip((grey - background) / (255 - background), 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=ROOT.parent / "shared" / "footage")
    args = parser.parse_args()
    mattes = [alpha_of(cv2.imread(str(args.footage / "sora_templates" / name))) for name in DARK]
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
    OUT.mkdir(exist_ok=True)
    cv2.imwrite(str(OUT / "sora.png"), np.round(matte * 255).astype(np.uint8))
    # the crops come from 704-px-wide portrait video: the mark's width over the picture's short side
    meta = {"name": "sora", "colour": 255, "short_side": 704, "source": list(DARK),
            "peak_alpha": round(float(matte.max()), 3), "size": list(matte.shape[::-1]),
            # the icon wiggles and changes shape frame to frame, the word fades around each jump:
            # one matte fitted over a segment leaves 31-92 % of it (bench/real.py --remove)
            "animated": True}  # fmt: skip
    (OUT / "sora.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"sora: matte {matte.shape[1]}x{matte.shape[0]}, peak alpha {matte.max():.2f}")


if __name__ == "__main__":
    main()
