"""The `propainter` engine: pytorchcv's streaming ProPainter (RAFT flow, recurrent flow completion,
dual-domain propagation, sparse transformer) on a segment's crop.

Models are built once per process from the files in `WEIGHTS_DIR` (verified against their
checksums). Frames stay on the host; only the window the streaming iterator works on is moved to
the device, so device memory does not grow with the segment's length.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from propainter.base import Cleaned, Inpainter
from propainter.weights import PROPAINTER_MODELS, WeightStore, published
from waterz.core.settings import DEFAULT_WEIGHTS_DIR
from waterz.core.stop import checkpoint

log = logging.getLogger(__name__)

MIN_SIDE = 128  # torchvision's deform_conv2d crashes on the CPU below about this size
ALIGN = 8
RAFT_ITERS = 20


def padded_size(h: int, w: int) -> tuple[int, int]:
    """At least MIN_SIDE a side and a multiple of ALIGN."""
    up = lambda n: -(-max(n, MIN_SIDE) // ALIGN) * ALIGN  # noqa: E731
    return up(h), up(w)


class ProPainterInpainter(Inpainter):
    """See the module docstring. `device`: "cuda" or "cpu" (default: CUDA when available);
    `fp16`: autocast on CUDA; `weights`: where the models come from (default: the published
    files in `weights_dir`)."""

    def __init__(self, device: str | None = None, fp16: bool = False, weights: WeightStore | None = None,
                 weights_dir: Path | None = None, window: int = 80, step: int = 10) -> None:  # fmt: skip
        import torch

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.fp16 = fp16 and self.device == "cuda"
        self.window, self.step = window, step
        store = weights or WeightStore(weights_dir or DEFAULT_WEIGHTS_DIR, published(PROPAINTER_MODELS))
        paths = store.require()  # missing weights fail here, before anything else is said or loaded
        if self.device == "cpu":
            log.warning("ProPainter on the CPU is slow (about 2 s per frame on a 208x176 crop); "
                        "the temporal engine is the CPU default.")  # fmt: skip
        self.models = _load_models(paths, self.device)
        log.info("propainter: models loaded on %s (CUDA_VISIBLE_DEVICES=%s, fp16=%s)",
                 self.device, os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), self.fp16)  # fmt: skip

    def fill(self, frames: np.ndarray, masks: np.ndarray, first: int, last: int, mattes=None, sources=None) -> Cleaned:
        torch = self.torch
        from pytorchcv.models.propainter_stream import ProPainterIterator

        n, h, w = masks.shape
        ph, pw = padded_size(h, w)
        pad = ((0, 0), (0, ph - h), (0, pw - w))
        # BGR uint8 -> RGB float in [-1, 1], (N, 3, H, W); reflected padding keeps the picture plausible.
        rgb = np.pad(frames[..., ::-1], (*pad, (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        video = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).float().div_(127.5).sub_(1.0)
        hole = torch.from_numpy(np.pad(masks, pad).astype(np.float32)[:, None])
        raft, rfc, model = self.models
        sequencer = _device_sequencer()
        iterator = ProPainterIterator(
            frames=sequencer(video, self.device),
            masks=sequencer(hole, self.device),
            raft_model=raft, pprfc_model=rfc, pp_model=model,
            use_cuda=self.device == "cuda", pp_window_size=self.window, step=self.step,
        )  # fmt: skip
        chunks = []
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.fp16):
            for chunk in iterator:
                checkpoint(len(chunks), n)
                chunks.append(chunk.float().clamp_(-1, 1).add_(1).mul_(127.5).round_().byte().cpu())
        # Only masked pixels come from the model: the base puts the input everywhere else.
        return Cleaned(torch.cat(chunks).numpy().transpose(0, 2, 3, 1)[first : last + 1, :h, :w, ::-1])


def _load_models(paths: dict, device: str):
    """RAFT, the flow completion network and ProPainter, weights from `paths`, eval mode, on `device`."""
    import torch
    from pytorchcv.models.propainter import propainter
    from pytorchcv.models.propainter_rfc import propainter_rfc
    from pytorchcv.models.raft import raft_things

    nets = []
    for name, net in (("raft_things", raft_things(in_normalize=False, iters=RAFT_ITERS)),
                      ("propainter_rfc", propainter_rfc()), ("propainter", propainter())):  # fmt: skip
        net.load_state_dict(torch.load(paths[name], map_location="cpu", weights_only=True))
        net.eval().requires_grad_(False)
        nets.append(net.to(device))
    return tuple(nets)


@functools.cache
def _device_sequencer():
    """A tensor sequencer that keeps its data on the host and moves each requested slice to the
    device (built on first use: pytorchcv is imported only by this engine)."""
    from pytorchcv.models.propainter_stream import TensorSequencer

    class DeviceSequencer(TensorSequencer):
        def __init__(self, data, device: str):
            super().__init__(data=data)
            self.device = device

        def _calc_data_items(self, raw_data_chunk_list):
            return raw_data_chunk_list[0].to(self.device, non_blocking=True)

    return DeviceSequencer
