"""The `waterz` command line: `remove`, `detect`, `engines`, `up`, and the tools around them."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from waterz.core.errors import WaterzError, WeightsMissing
from waterz.core.logs import install_secret_masking, mask_secrets


def _progress_bar():
    """A tqdm bar per stage on a terminal; nothing when stderr is not one."""
    if not sys.stderr.isatty():
        return lambda stage, done, total: None
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="frame", leave=False)
        bar.update(done - bar.n)

    return update


def cmd_remove(args: argparse.Namespace) -> int:
    from pathlib import Path

    from waterz.batch import batch_outputs, is_batch, single_output
    from waterz.pipeline.run import remove_watermark

    inputs, output = [Path(p) for p in args.input], Path(args.output)
    options = {"detector": args.detector, "boxes": args.box or None, "weights": args.weights}
    if not is_batch(inputs):
        summary = remove_watermark(inputs[0], single_output(inputs[0], output), inpainter=args.inpainter,
                                   progress=_progress_bar(), **options)  # fmt: skip
        print(json.dumps(summary))
        return 0
    return _remove_batch(batch_outputs(inputs, output, args.recursive), args.inpainter, options)


def _remove_batch(pairs, inpainter: str | None, options: dict) -> int:
    """Each file in turn, one engine for all; a file that fails is reported and the others run.
    A JSON line per file (its summary, or `input` and `error`); 1 when any failed."""
    from waterz.core.settings import get_settings
    from waterz.pipeline.options import check_options, chosen_engines
    from waterz.pipeline.run import remove_watermark, shared_inpainter

    settings = get_settings()
    _, name = chosen_engines(settings, inpainter=inpainter)
    engine = shared_inpainter(name, settings)  # an unknown name or missing weights: bad usage, before any file
    check_options(options["detector"] or settings.detector, boxes=options["boxes"])  # a malformed box as well
    bar = _batch_bar(len(pairs))
    failed = 0
    for source, target in pairs:
        try:
            summary = remove_watermark(source, target, inpainter=name, engine=engine, progress=bar(source.name),
                                       **options)  # fmt: skip
        except (WaterzError, OSError) as exc:
            failed += 1
            summary = {"input": str(source), "error": mask_secrets(str(exc))}
            print(f"waterz: {source}: {summary['error']}", file=sys.stderr)
        bar(None)
        print(json.dumps(summary), flush=True)
    return 1 if failed else 0


def _batch_bar(total: int):
    """On a terminal, one bar over the batch's files, its current file and stage beside it;
    `bar(name)` gives the progress callback for a file, `bar(None)` counts one done."""
    if not sys.stderr.isatty():
        return lambda name: (lambda stage, done, count: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc="videos", unit="video")

    def for_file(name: str | None):
        if name is None:
            bar.update(1)
            return None
        return lambda stage, done, count: bar.set_postfix_str(f"{name}: {stage} {done}/{count}", refresh=False)

    return for_file


def cmd_submit(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from waterz.core.errors import InvalidRequest
    from waterz.submit import submit

    server = args.server or os.environ.get("WATERZ_SERVER")
    if not server:
        raise InvalidRequest("Name the service: --server URL (or set WATERZ_SERVER).")
    return submit([Path(p) for p in args.input], Path(args.output), server, args.api_key or os.environ.get("API_KEY"),
                  detector=args.detector, inpainter=args.inpainter, recursive=args.recursive)  # fmt: skip


def cmd_detect(args: argparse.Namespace) -> int:
    from waterz.pipeline.run import detect, plan
    from waterz.video import probe

    info = probe(args.input)
    found: dict = {}
    marks = detect(info, args.detector, args.box or None, _progress_bar(), weights=args.weights, report=found)
    segments = plan(marks, info)
    rows = [{"start_frame": s.start_frame, "end_frame": s.end_frame, "crop": s.crop.as_dict()} for s in segments]
    boxes = [[m.box.as_list() for m in frame] for frame in marks]
    print(json.dumps({"total_frames": info.frames, "preset": found["preset"], "boxes": boxes, "segments": rows}))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from waterz.core.settings import get_settings
    from waterz.service import up

    settings = get_settings()
    return up(args.port or settings.port, args.workers or settings.workers, settings.redis_url, args.host,
              settings.storage_url)  # fmt: skip


def cmd_train_detector(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from detector.training import TrainConfig, evaluate, load_logo, remember_logo, synthesise, train

    cfg = TrainConfig(epochs=args.epochs, imgsz=args.imgsz, images=args.images, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="waterz-dataset-") as tmp:
        bar = _progress_bar()
        data = synthesise(Path(args.logo), [Path(v) for v in args.backgrounds], Path(tmp), cfg,
                          progress=lambda done, total: bar("synthesise", done, total))  # fmt: skip
        output = train(data, Path(args.output), cfg, Path(args.weights) if args.weights else None,
                       progress=lambda done, total: bar("train", done, total))  # fmt: skip
        remember_logo(output, load_logo(Path(args.logo))[1])
        scores = evaluate(output, Path(tmp), cfg)
    print(f"precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  mean IoU {scores['mean_iou']:.3f}"
          f"  on {scores['images']} held-back synthetic images")  # fmt: skip
    print(json.dumps({"weights": str(output), **scores}))
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from propainter.weights import PROPAINTER_MODELS, WeightStore, published
    from waterz.core.settings import get_settings

    store = WeightStore(get_settings().weights_dir, published(PROPAINTER_MODELS))
    if args.action == "download":
        try:
            fetched = store.download()
        except (OSError, ValueError) as exc:
            raise WeightsMissing(f"Could not download the weights into {store.directory}: {exc}") from exc
        print(f"{len(fetched)} file(s) downloaded to {store.directory}")
    bad = 0
    for wf, state in store.status():
        print(f"{state:18} {store.directory / wf.filename}")
        bad += state != "ok"
    return 1 if bad else 0


def cmd_engines(args: argparse.Namespace) -> int:
    from waterz.core.settings import get_settings
    from waterz.pipeline.engines import as_text, engines

    listing = engines(get_settings())
    print(json.dumps(listing) if args.json else as_text(listing))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from detector.training import TrainConfig as TRAIN_DEFAULTS  # noqa: N814 - the defaults, shown in --help

    parser = argparse.ArgumentParser(prog="waterz", description="Find and remove watermarks from videos.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage with its timing")
    sub = parser.add_subparsers(dest="command", required=True)

    remove = sub.add_parser("remove", help="remove the watermark from videos, in this process")
    remove.add_argument("input", nargs="+", help="a video, several, or folders of them")
    remove.add_argument("-o", "--output", required=True,
                        help="the clean video; for several inputs or a folder, the folder for <name>.clean.mp4")
    remove.add_argument("--recursive", action="store_true", help="take the videos in subfolders too")
    remove.add_argument("--detector", help="detector name (default: DETECTOR, auto)")
    remove.add_argument("--inpainter", help="inpainter name (default: INPAINTER, else auto)")
    remove.add_argument("--weights", help="weights file for detectors that need one (yolo)")
    remove.add_argument("--box", action="append", metavar="x,y,w,h[@start-end]", help="skip detection: clean this box")
    remove.set_defaults(func=cmd_remove)

    client = sub.add_parser("submit", help="send videos to a waterz service, follow them, fetch the results")
    client.add_argument("input", nargs="+", help="a video, several, or folders of them")
    client.add_argument("--server", help="the service's URL (default: WATERZ_SERVER)")
    client.add_argument("--api-key", help="the service's API key (default: API_KEY)")
    client.add_argument("-o", "--output", required=True, help="the folder for the results, <name>.clean.mp4")
    client.add_argument("--recursive", action="store_true", help="take the videos in subfolders too")
    client.add_argument("--detector", help="detector name (default: the service's)")
    client.add_argument("--inpainter", help="inpainter name (default: the service's)")
    client.set_defaults(func=cmd_submit)

    detect = sub.add_parser("detect", help="print the marks found in every frame, as JSON")
    detect.add_argument("input")
    detect.add_argument("--detector", help="detector name (default: DETECTOR, auto)")
    detect.add_argument("--weights", help="weights file for detectors that need one")
    detect.add_argument("--box", action="append", metavar="x,y,w,h[@start-end]", help=argparse.SUPPRESS)
    detect.set_defaults(func=cmd_detect)

    trainer = sub.add_parser("train-detector", help="train a yolo detector for a logo, offline")
    trainer.add_argument("--logo", required=True, help="the logo: a PNG with alpha, or on a plain background")
    trainer.add_argument("--backgrounds", nargs="*", default=[], metavar="VIDEO",
                         help="videos to sample backgrounds from (default: procedural backgrounds)")  # fmt: skip
    trainer.add_argument("-o", "--output", required=True, help="where to write the weights (.pt)")
    trainer.add_argument("--epochs", type=int, default=TRAIN_DEFAULTS.epochs)
    trainer.add_argument("--imgsz", type=int, default=TRAIN_DEFAULTS.imgsz)
    trainer.add_argument("--images", type=int, default=TRAIN_DEFAULTS.images, help="synthetic images to make")
    trainer.add_argument("--seed", type=int, default=TRAIN_DEFAULTS.seed,
                         help="seed of the synthetic images and of training")  # fmt: skip
    trainer.add_argument("--weights", help="fine-tune these YOLO weights instead of training from yolo11n.yaml")
    trainer.set_defaults(func=cmd_train_detector)

    weights = sub.add_parser("weights", help="check or download the model weights in WEIGHTS_DIR")
    weights.add_argument("action", choices=["check", "download"])
    weights.set_defaults(func=cmd_weights)

    listing = sub.add_parser("engines", help="list every detector and inpainter: needs, availability, licences")
    listing.add_argument("--json", action="store_true", help="print it as JSON (what GET /api/engines answers)")
    listing.set_defaults(func=cmd_engines)

    up = sub.add_parser("up", help="start the service: a private Redis (unless REDIS_URL), the API, WORKERS workers")
    up.add_argument("--port", type=int, help="API port (default: PORT or 8000)")
    up.add_argument("--workers", type=int, help="Celery workers (default: WORKERS or 2)")
    up.add_argument("--host", default="127.0.0.1", help="API bind address (default 127.0.0.1)")
    up.set_defaults(func=cmd_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_secret_masking()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except WaterzError as exc:
        print(f"waterz: {mask_secrets(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("waterz: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
