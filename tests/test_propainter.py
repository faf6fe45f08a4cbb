"""The `propainter` engine on the CPU with weights made here (freshly initialised modules saved with
`state_dict()`, checksums recorded) and loaded through the real path; weights management; `auto`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the ml extra (torch, pytorchcv) is not installed")

from propainter import create_inpainter  # noqa: E402
from propainter.weights import PROPAINTER_MODELS, WeightStore, fresh_weights, published  # noqa: E402
from waterz.core.errors import WeightsMissing  # noqa: E402

WATERZ = str(Path(sys.executable).with_name("waterz"))
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_weights(tmp_path_factory) -> WeightStore:
    return fresh_weights(tmp_path_factory.mktemp("weights"))


@pytest.mark.slow
def test_a_segment_through_the_engine(local_weights, clips):
    from waterz.video import iter_frames

    clip = clips("pan_jump")
    # an odd crop smaller than 128 px a side: the engine pads it (deform_conv2d crashes below that)
    y, x, h, w = 8, 10, 100, 120
    frames = np.stack([f[y : y + h, x : x + w] for f, _ in zip(iter_frames(clip.path), range(12))])
    masks = clip.alpha[:12, y : y + h, x : x + w] > 0.05
    engine = create_inpainter("propainter", device="cpu", weights=local_weights)
    out = engine.inpaint(frames, masks, 2, 9)
    assert out.shape == (8, h, w, 3) and out.dtype == np.uint8
    outside = ~masks[2:10]
    assert np.array_equal(out[outside], frames[2:10][outside])  # untouched, bit for bit
    assert not np.array_equal(out[~outside], frames[2:10][~outside])  # the mask was filled
    assert np.array_equal(engine.inpaint(frames, masks, 2, 9), out)  # deterministic


def test_damaged_or_missing_weights_are_named_with_the_fix(local_weights, tmp_path):
    wrong = published(PROPAINTER_MODELS)
    store = WeightStore(tmp_path, wrong)
    (tmp_path / wrong[0].filename).write_bytes((local_weights.directory / local_weights.files[0].filename).read_bytes())
    states = dict((wf.model, state) for wf, state in store.status())
    assert states == {"raft_things": "checksum mismatch", "propainter_rfc": "missing", "propainter": "missing"}
    with pytest.raises(WeightsMissing) as err:
        store.require()
    message = str(err.value)
    for wf in wrong:
        assert wf.filename in message
    assert str(tmp_path) in message and "waterz weights download" in message
    assert set(local_weights.require()) == set(PROPAINTER_MODELS)


def test_cli_with_an_empty_weights_dir(tmp_path, clips):
    env = {"WEIGHTS_DIR": str(tmp_path), "PATH": ""}
    check = subprocess.run([WATERZ, "weights", "check"], env=env, capture_output=True, text=True)
    assert check.returncode != 0
    assert check.stdout.count("missing") == 3
    remove = subprocess.run([WATERZ, "remove", str(clips("pan_jump").path), "-o", str(tmp_path / "o.mp4"),
                             "--inpainter", "propainter"], env=env, capture_output=True, text=True)  # fmt: skip
    assert remove.returncode == 2
    assert len(remove.stderr.strip().splitlines()) == 1
    assert "propainter-0000-5f3cc1e7.pth" in remove.stderr and "waterz weights download" in remove.stderr


def test_auto_unblends_every_segment_without_cuda(clips):
    from propainter.auto import propainter_ready

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; auto's choice depends on the weights here")
    assert propainter_ready() == (False, "no CUDA device")
    auto = create_inpainter("auto")
    assert auto.propainter is None
    frames, masks = _crop_problem(clips("shake_opaque"), 8)
    auto.inpaint(frames, masks, 0, len(frames) - 1)
    assert auto.last_choice == "unblend"


def test_auto_does_not_import_torch_where_no_nvidia_driver_is(tmp_path):
    """Importing torch costs about 470 MB of memory; on a machine without an NVIDIA driver the
    `auto` inpainter knows without it that ProPainter cannot run."""
    from propainter.auto import nvidia_driver

    if nvidia_driver():
        pytest.skip("this machine has an NVIDIA driver: auto asks torch")
    code = ("import sys; from propainter import create_inpainter; e = create_inpainter('auto'); "
            "print(e.propainter is None, 'torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["True", "False"], out


def test_auto_sends_opaque_marks_to_propainter_and_the_rest_to_unblend(local_weights, clips):
    """With ProPainter ready (here: on the CPU, with locally made weights), the choice per segment."""
    from propainter.propainter_cv import ProPainterInpainter

    auto = create_inpainter("auto")
    auto.propainter = ProPainterInpainter(device="cpu", weights=local_weights)
    for clip, engine in (("shake_opaque", "propainter"), ("pan_jump", "unblend")):
        frames, masks = _crop_problem(clips(clip), 10)
        out = auto.inpaint(frames, masks, 0, len(frames) - 1)
        assert auto.last_choice == engine, clip
        assert np.array_equal(out[~masks], frames[~masks])


def _crop_problem(clip, n: int):
    """The first n frames, cropped to 128 px around the mark's first position."""
    from waterz.video import iter_frames

    ys, xs = np.nonzero(clip.alpha[0] > 0.05)
    y0 = int(np.clip(ys.min() - 40, 0, clip.spec.height - 128))
    x0 = int(np.clip(xs.min() - 40, 0, clip.spec.width - 128))
    frames = np.stack([f[y0 : y0 + 128, x0 : x0 + 128] for f, _ in zip(iter_frames(clip.path), range(n))])
    masks = clip.alpha[:n, y0 : y0 + 128, x0 : x0 + 128] > 0.02
    return frames, masks


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_engine_on_cuda_matches_the_cpu_outside_the_mask(local_weights, clips):
    from waterz.video import iter_frames

    clip = clips("pan_jump")
    frames = np.stack([f[:128, :128] for f, _ in zip(iter_frames(clip.path), range(12))])
    masks = clip.alpha[:12, :128, :128] > 0.05
    out = create_inpainter("propainter", device="cuda", weights=local_weights).inpaint(frames, masks, 0, 11)
    assert np.array_equal(out[~masks], frames[~masks])
