"""Training a YOLO detector for one logo, from the logo image alone.

`synthesise()` composites the logo onto background frames (sampled from the given videos, or
procedural when none are given) with random scale, position, opacity (0.3-1), colour jitter and
blur, then passes every image through a real H.264 encode and decode so the detector learns the
artefacts it will see. `train()` trains YOLO11n from `yolo11n.yaml` (or fine-tunes given weights)
offline and reports precision, recall and mean IoU on a held-back synthetic split.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from waterz.core.errors import InvalidRequest, InvalidVideo
from waterz.core.geometry import Box
from waterz.video import iter_frames, probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    # The defaults took 11.7 minutes on 2 CPU cores (bench/train_detector.py --footage, 2026-11-29).
    images: int = 400  # synthetic images, of which `val_share` are held back
    val_share: float = 0.15
    negatives: float = 0.1  # share of images without the logo
    procedural: float = 0.25  # share of procedural backgrounds when videos are given
    logos: int = 3  # at most this many logos in one image
    width: int = 640
    height: int = 360
    epochs: int = 24
    imgsz: int = 256
    batch: int = 16
    seed: int = 0


def load_logo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The logo as `(h, w, 3) uint8 BGR` and its alpha `(h, w) float32` in [0, 1]: from the PNG's
    alpha channel, or, without one, from how far each pixel is from the border colour (a logo on
    a plain background)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InvalidRequest(f"'{path}' is not an image that can be read (PNG or JPEG expected).")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
    if image.shape[2] == 4 and image[..., 3].min() < 250:
        alpha = image[..., 3].astype(np.float32) / 255.0
    else:
        bgr = image[..., :3].astype(np.float32)
        border = np.concatenate([bgr[0], bgr[-1], bgr[:, 0], bgr[:, -1]])
        distance = np.linalg.norm(bgr - np.median(border, axis=0), axis=-1)
        alpha = np.clip((distance - 12.0) / 40.0, 0.0, 1.0)
    ys, xs = np.nonzero(alpha > 0.05)
    if len(ys) < 16:
        raise InvalidRequest(f"'{path}' shows no logo: it is empty or the same colour as its background.")
    crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return np.ascontiguousarray(image[crop][..., :3]), np.ascontiguousarray(alpha[crop])


def background_source(videos: list[Path], cfg: TrainConfig, rng: np.random.Generator,
                      per_video: int = 100, zoom: float = 1.5) -> Callable[[], np.ndarray]:  # fmt: skip
    """A function returning one `(height, width, 3)` background per call: a random crop (zoomed
    in up to `zoom` times) of one of `per_video` frames sampled from each video, flipped, its hue
    turned and its brightness changed at random; a share `cfg.procedural` of them procedural. With
    no videos, all procedural. Two videos are few backgrounds: the detector must not learn that
    only their colours and textures surround the logo."""
    frames: list[np.ndarray] = []
    for path in videos:
        info = probe(path)
        pick = set(np.linspace(0, info.frames - 1, min(per_video, info.frames)).astype(int).tolist())
        for i, frame in enumerate(iter_frames(path)):
            if i in pick:
                h, w = frame.shape[:2]
                scale = zoom * max(cfg.width / w, cfg.height / h)  # covers the target `zoom` times over
                frames.append(cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA))
    if videos and not frames:
        raise InvalidVideo("The background videos gave no frames.")

    def one() -> np.ndarray:
        if not frames or rng.random() < cfg.procedural:
            return procedural_background(cfg.width, cfg.height, rng)
        return _jitter_background(frames[rng.integers(len(frames))], cfg.width, cfg.height, rng)

    return one


def _jitter_background(frame: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    h, w = frame.shape[:2]
    u = rng.uniform(1.0, min(w / width, h / height))
    cw, ch = min(w, round(width * u)), min(h, round(height * u))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = cv2.resize(frame[y : y + ch, x : x + cw], (width, height), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.5:  # another hue, so that the logo is not learned as "the colour those videos lack"
        hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(0, 180))) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def procedural_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Gradients, shapes, texture and noise: varied enough that the logo is the only constant."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (np.cos(rng.uniform(0, np.pi)) * xx / width + np.sin(rng.uniform(0, np.pi)) * yy / height) / 1.5
    image = (a + (b - a) * np.clip(t, 0, 1)[..., None]).astype(np.float32)
    for _ in range(rng.integers(3, 12)):
        colour = rng.uniform(0, 255, 3).tolist()
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(image, centre, int(rng.integers(10, height // 2)), colour, -1)
        else:
            size = (int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2)))
            cv2.rectangle(image, centre, (centre[0] + size[0], centre[1] + size[1]), colour, -1)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), rng.uniform(1, 6))
    image += (noise / (noise.std() + 1e-6) * rng.uniform(5, 30))[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def composite(background: np.ndarray, logo: np.ndarray, alpha: np.ndarray, rng: np.random.Generator,
              count: int = 1) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:  # fmt: skip
    """`count` copies of the logo blended onto `background`, each at its own random scale, place,
    colour and opacity, none overlapping another; returns the image and the logos' boxes
    `(x, y, w, h)` in pixels (fewer than `count` where no free place was found)."""
    H, W = background.shape[:2]
    out = background.astype(np.float32)
    boxes: list[Box] = []
    for _ in range(count):
        width = int(W * rng.uniform(0.08, 0.3))
        height = max(4, int(round(width * logo.shape[0] / logo.shape[1])))
        if height > H // 2:
            height = H // 2
            width = max(4, int(round(height * logo.shape[1] / logo.shape[0])))
        for _ in range(20):
            box = Box(int(rng.integers(0, W - width + 1)), int(rng.integers(0, H - height + 1)), width, height)
            if all(box.intersection(other) is None for other in boxes):
                break
        else:
            continue
        mark = cv2.resize(logo, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
        matte = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.3:  # colour jitter: some marks white, the rest tinted
            mark = np.full_like(mark, rng.uniform(200, 255))
        else:
            mark = mark * rng.uniform(0.7, 1.3, 3) + rng.uniform(-30, 30)
        matte = matte * rng.uniform(0.3, 1.0)
        region = out[box.y : box.y1, box.x : box.x1]
        region[:] = matte[..., None] * np.clip(mark, 0, 255) + (1 - matte[..., None]) * region
        boxes.append(box)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2))
    return np.clip(out, 0, 255).astype(np.uint8), [(b.x, b.y, b.w, b.h) for b in boxes]


def h264_roundtrip(images: list[np.ndarray], crf: int, workdir: Path) -> list[np.ndarray]:
    """Every image through one real H.264 encode (at `crf`) and decode."""
    path = workdir / f"roundtrip-{crf}.mp4"
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    decoded = list(iter_frames(path))
    path.unlink()
    return decoded


def synthesise(logo_path: Path, videos: list[Path], out: Path, cfg: TrainConfig,
               progress: Callable[[int, int], None] = lambda done, total: None) -> Path:  # fmt: skip
    """Write a YOLO dataset (images/, labels/, data.yaml) under `out`; returns data.yaml."""
    rng = np.random.default_rng(cfg.seed)
    logo, alpha = load_logo(logo_path)
    backgrounds = background_source(videos, cfg, rng)
    n_val = max(2, int(round(cfg.images * cfg.val_share)))
    splits = {"val": n_val, "train": cfg.images - n_val}
    done = 0
    for split, count in splits.items():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for start in range(0, count, 50):  # one H.264 round trip per 50 images, each at its own CRF
            images, boxes = [], []
            for _ in range(min(50, count - start)):
                background = backgrounds()
                if rng.random() < cfg.negatives:
                    images.append(background)
                    boxes.append([])
                else:
                    # several logos in one image: more examples for the same training time
                    image, found = composite(background, logo, alpha, rng, int(rng.integers(1, cfg.logos + 1)))
                    images.append(image)
                    boxes.append(found)
            for k, (image, found) in enumerate(zip(h264_roundtrip(images, int(rng.integers(20, 34)), out), boxes)):
                name = f"{split}_{start + k:05d}"
                cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                label = "".join(_yolo_label(box, cfg.width, cfg.height) for box in found)
                (out / "labels" / split / f"{name}.txt").write_text(label)
                done += 1
                progress(done, cfg.images)
    data = out / "data.yaml"
    data.write_text(f"path: {out}\ntrain: images/train\nval: images/val\nnames:\n  0: logo\n")
    return data


def _yolo_label(box: tuple[int, int, int, int], width: int, height: int) -> str:
    x, y, w, h = box
    return f"0 {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}\n"


def train(data: Path, output: Path, cfg: TrainConfig, weights: Path | None = None,
          progress: Callable[[int, int], None] = lambda done, total: None) -> Path:  # fmt: skip
    """Train (or fine-tune `weights`) on `data`, fully offline; the best weights are copied to `output`."""
    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics import YOLO

    model = YOLO(str(weights) if weights else "yolo11n.yaml")
    model.add_callback("on_train_epoch_end", lambda trainer: progress(trainer.epoch + 1, cfg.epochs))
    with tempfile.TemporaryDirectory(prefix="waterz-train-") as runs:
        # seeded, deterministic kernels and no loader processes: the same data give the same weights on one machine
        model.train(data=str(data), epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch, device="cpu", workers=0,
                    project=runs, name="run", exist_ok=True, plots=False, amp=False, seed=cfg.seed,
                    deterministic=True, verbose=False, pretrained=bool(weights), val=True, cache=False,
                    # spelled out, not "auto": Ultralytics' automatic choice changes between releases
                    # (Ultralytics 8.4.190's starts the bias warm-up at zero; the tiny test run then found nothing)
                    optimizer="AdamW", lr0=0.002, momentum=0.9, warmup_bias_lr=0.1)  # fmt: skip
        best = Path(runs) / "run" / "weights" / "best.pt"
        if not best.exists():
            best = Path(runs) / "run" / "weights" / "last.pt"
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best, output)
    return output


def remember_logo(weights: Path, alpha: np.ndarray) -> None:
    """Keep the logo's matte in the weights file (key `waterz_logo`): the `yolo` detector matches
    it around each box it finds, which puts a loose or partial box on the mark."""
    import torch

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    checkpoint["waterz_logo"] = torch.from_numpy(np.round(alpha * 255).astype(np.uint8))
    torch.save(checkpoint, weights)


def evaluate(weights: Path, data_dir: Path, cfg: TrainConfig, conf: float = 0.25) -> dict:
    """Precision, recall and mean IoU of matched boxes on the held-back split."""
    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics import YOLO

    model = YOLO(str(weights))
    tp = fp = fn = 0
    ious = []
    images = sorted((data_dir / "images" / "val").glob("*.jpg"))
    for image_path in images:
        truth = _read_label(data_dir / "labels" / "val" / f"{image_path.stem}.txt", cfg.width, cfg.height)
        result = model.predict(str(image_path), imgsz=cfg.imgsz, conf=conf, device="cpu", verbose=False)[0]
        found = [tuple(b) for b in result.boxes.xyxy.cpu().numpy().tolist()]
        matched = set()
        for t in truth:
            best = max(((box_iou(t, f), k) for k, f in enumerate(found) if k not in matched), default=(0.0, -1))
            if best[0] >= 0.5:
                tp += 1
                matched.add(best[1])
                ious.append(best[0])
            else:
                fn += 1
        fp += len(found) - len(matched)
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "mean_iou": float(np.mean(ious)) if ious else 0.0, "images": len(images)}  # fmt: skip


def _read_label(path: Path, width: int, height: int) -> list[tuple[float, float, float, float]]:
    boxes = []
    for line in path.read_text().splitlines():
        _, cx, cy, w, h = map(float, line.split())
        boxes.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
    return boxes


def box_iou(a, b) -> float:
    """IoU of two `(x0, y0, x1, y1)` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
