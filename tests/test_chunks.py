"""Parts of a video handled on their own: frames decoded from the middle (`iter_frames` with
`start`), encoded as chunks and joined by stream copy (`waterz.video.writer.join_chunks`)."""

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from waterz.synth import ClipSpec, make_clip
from waterz.video import frame_timestamps, iter_frames


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same short clip as H.264 in mp4, in mov, with a variable frame rate, and as a raw
    H.264 stream (no container, no timestamps to seek by)."""
    folder = tmp_path_factory.mktemp("sources")
    clip = make_clip(folder / "clip.mp4", ClipSpec(frames=60, motion="pan", mark=None, audio=False))
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()

    def made(name: str, *args: str):
        out = folder / name
        subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(clip.path), *args, str(out)], check=True)
        return out

    return {
        "mp4": clip.path,
        "mov": made("clip.mov", "-c:v", "libx264", "-g", "12"),
        "vfr": made("vfr.mp4", "-vf", "select='not(eq(mod(n\\,4)\\,1))'", "-fps_mode", "vfr", "-c:v", "libx264"),
        "h264": made("clip.h264", "-c:v", "libx264", "-g", "12"),
    }


@pytest.mark.parametrize("kind", ["mp4", "mov", "vfr", "h264"])
def test_frames_from_the_middle_are_the_frames_a_whole_decode_gives(sources, kind):
    path = sources[kind]
    whole = list(iter_frames(path, with_pts=True))
    stamps = frame_timestamps(path)
    assert [pts for _, pts in whole] == stamps or kind == "h264"  # a raw stream has no timestamps of its own
    for start, stop in ((0, 7), (13, 29), (len(whole) - 5, len(whole)), (len(whole) - 1, None)):
        part = list(iter_frames(path, with_pts=True, start=start, stop=stop, timestamps=stamps))
        expected = whole[start:stop]
        assert [pts for _, pts in part] == [pts for _, pts in expected]
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(part, expected, strict=True))


def encode_in_chunks(path, folder, bounds, tail=12):
    """`path` encoded as chunks `bounds[k] <= f < bounds[k + 1]`, each reading `tail` frames
    ahead, and joined."""
    from waterz.video import VideoWriter, probe
    from waterz.video.writer import join_chunks

    info = probe(path)
    stamps = frame_timestamps(path)
    parts = []
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        part = folder / f"part{k}.mp4"
        until = stamps[b] if b < len(stamps) else None
        with VideoWriter(part, info, origin=stamps[0], until=until) as writer:
            for image, pts in iter_frames(path, True, "yuv420p", a, min(len(stamps), b + tail), stamps):
                writer.write(image, pts, fmt="yuv420p")
        assert writer.frames_written == b - a
        parts.append(part)
    joined = folder / "joined.mp4"
    assert join_chunks(parts, joined) == len(stamps)
    return joined


def times(path):
    from waterz.video import probe

    base = probe(path).time_base
    stamps = frame_timestamps(path)
    return [float((s - stamps[0]) * base) for s in stamps]


@pytest.mark.parametrize("kind", ["mp4", "vfr"])
def test_chunks_joined_by_stream_copy_keep_every_frame_and_its_time(sources, kind, tmp_path):
    path = sources[kind]
    n = len(frame_timestamps(path))
    joined = encode_in_chunks(path, tmp_path, [0, n // 3, 2 * n // 3, n])
    assert times(joined) == pytest.approx(times(path), abs=1e-6)
    assert len(list(iter_frames(joined))) == n


def test_real_footage_encoded_in_chunks_is_as_good_as_encoded_whole(tmp_path):
    """Each chunk closes its group of pictures where the next begins, as a keyframe does inside
    one encode; on a real Sora download (300 frames, 3 chunks) the frames at the joins are no
    worse than the whole encode's worst. (On a 45-frame synthetic pan in chunks of 15, whose
    source is itself a low-quality encode, chunks after the first lost 3 dB: an IDR where the
    source had none reproduces its artefacts less well.)"""
    from tests.conftest import psnr

    path = Path(__file__).resolve().parents[2] / "shared" / "footage" / "sora_kitchen_480x874.mov"
    if not path.is_file():
        pytest.skip(f"no real footage at {path.parent}")
    n = len(frame_timestamps(path))
    (tmp_path / "whole").mkdir()
    whole = encode_in_chunks(path, tmp_path / "whole", [0, n])
    joined = encode_in_chunks(path, tmp_path, [0, n // 3, 2 * n // 3, n])
    source = list(iter_frames(path))
    per_frame = [psnr(a, b) for a, b in zip(iter_frames(joined), source, strict=True)]
    single = [psnr(a, b) for a, b in zip(iter_frames(whole), source, strict=True)]
    for b in (n // 3, 2 * n // 3):
        assert min(per_frame[b - 2 : b + 2]) >= min(single) - 0.5, (per_frame[b - 2 : b + 2], min(single))
    assert np.mean(per_frame) >= np.mean(single) - 0.2
