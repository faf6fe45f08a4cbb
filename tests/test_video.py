"""Video I/O: exact frame count and rate, audio, odd sizes, rotation, and refusing bad input."""

import subprocess
from fractions import Fraction

import av
import imageio_ffmpeg
import numpy as np
import pytest

from waterz.core.errors import InvalidVideo
from waterz.synth.clips import write_video
from waterz.video import VideoWriter, iter_frames, mux_audio, probe


def test_probe_keeps_ntsc_rate_exactly(clips):
    info = probe(clips("zoom_faint").path)
    assert info.fps == Fraction(30000, 1001)
    assert info.frames == 72 == sum(1 for _ in iter_frames(info.path))
    assert info.has_audio


@pytest.mark.parametrize("size", [(96, 64), (97, 63)])
def test_encode_roundtrip_keeps_size_count_rate_rotation_and_audio(tmp_path, size):
    w, h = size
    src = tmp_path / "src.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (30, h, w, 3), np.uint8)
    write_video(src, frames, Fraction(30000, 1001), audio=True)
    info = probe(src)
    out_video, out = tmp_path / "v.mp4", tmp_path / "out.mp4"
    with VideoWriter(out_video, info) as writer:
        for image, pts in iter_frames(src, with_pts=True):
            writer.write(image, pts)
    mux_audio(out_video, info, out)
    got = probe(out)
    assert (got.width, got.height, got.frames, got.fps) == (w, h, 30, Fraction(30000, 1001))
    assert got.audio_codecs == ("aac",)


def test_rotation_metadata_is_kept(tmp_path):
    src, rotated = tmp_path / "src.mp4", tmp_path / "rot.mp4"
    write_video(src, np.zeros((10, 64, 96, 3), np.uint8), Fraction(25), audio=False)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-y", "-v", "error", "-display_rotation", "90", "-i", str(src), "-c", "copy", str(rotated)], check=True
    )
    info = probe(rotated)
    assert info.rotation == 90
    out_video, out = tmp_path / "v.mp4", tmp_path / "out.mp4"
    with VideoWriter(out_video, info) as writer:
        for image, pts in iter_frames(rotated, with_pts=True):
            writer.write(image, pts)
    mux_audio(out_video, info, out)
    assert probe(out).rotation == 90


def test_bad_inputs_are_refused_with_a_sentence(tmp_path, clips):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 100)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clips("pan_jump").path.read_bytes()[:3000])
    png = tmp_path / "still.png"
    import cv2

    cv2.imwrite(str(png), np.zeros((32, 32, 3), np.uint8))
    audio_only = tmp_path / "tone.m4a"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-y", "-v", "error", "-i", str(clips("pan_jump").path), "-vn", "-c:a", "copy", str(audio_only)],
        check=True,
    )
    cases = {
        tmp_path / "missing.mp4": "does not exist",
        empty: "empty",
        text: "not a video",
        truncated: "damaged|truncated|not a video|cannot be decoded|no video|no decodable",
        png: "still image",
        audio_only: "no video stream",
    }
    for path, words in cases.items():
        with pytest.raises(InvalidVideo, match=words):
            probe(path)


SUBTITLES = "1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,000\nworld\n"
CHAPTERS = (";FFMETADATA1\ntitle=My clip\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n"
            "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=Two\n")  # fmt: skip


@pytest.mark.parametrize("tags", [("bt709", "bt709", "bt709"), ("bt2020", "smpte2084", "bt2020nc")])
def test_colour_tags_subtitles_metadata_and_chapters_are_kept(tmp_path, tags):
    """An input with a colour description (HD, or HDR10's bt2020/PQ), a text subtitle track, a
    title and two chapters: the cleaned output carries all of them."""
    from waterz.pipeline.run import remove_watermark

    (tmp_path / "s.srt").write_text(SUBTITLES)
    (tmp_path / "meta.txt").write_text(CHAPTERS)
    primaries, trc, matrix = tags
    source = tmp_path / "in.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=25:duration=2",
                    "-i", tmp_path / "s.srt", "-i", tmp_path / "meta.txt",
                    "-map", "0:v", "-map", "1:s", "-map_metadata", "2", "-map_chapters", "2",
                    "-vf", f"setparams=color_primaries={primaries}:color_trc={trc}:colorspace={matrix}:range=tv",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s", "mov_text", source], check=True)  # fmt: skip
    out = tmp_path / "out.mp4"
    remove_watermark(source, out, boxes=["10,10,60,40"], inpainter="telea")

    def described(path):
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            return (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range,
                    c.metadata.get("title"), [ch["metadata"].get("title") for ch in c.chapters()],
                    [s.codec_context.name for s in c.streams.subtitles])  # fmt: skip

    before, after = described(source), described(out)
    assert before[:4] != (2, 2, 2, 0)  # the input is tagged (2: unspecified)
    assert after == before
    assert after[4:] == ("My clip", ["One", "Two"], ["mov_text"])
    assert probe(out).frames == 50



def _deep_clip(path, width: int, height: int, bits: int, frames: int = 40) -> None:
    """A clip at `bits` per sample (8 or 10) whose picture uses every level of it: a luma ramp
    moving sideways with fine noise, and a white box at 60 % over it (the mark, at 24,20,72x40).
    4:2:0, or 4:4:4 at an odd size."""
    rng = np.random.default_rng(3)
    peak = (1 << bits) - 1
    ramp = np.linspace(0.15, 0.85, width)[None, :] * np.ones((height, 1))
    with av.open(str(path), "w") as c:
        stream = c.add_stream("libx264", rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = ("yuv444p" if width % 2 else "yuv420p") + ("10le" if bits > 8 else "")
        stream.options = {"crf": "4"}
        for f in range(frames):
            y = np.roll(ramp, 3 * f, axis=1) * peak + rng.normal(0, peak / 400, (height, width))
            y[20:60, 24:96] = 0.4 * y[20:60, 24:96] + 0.6 * peak * 0.9
            y = np.clip(np.round(y), 0, peak).astype(np.uint16 if bits > 8 else np.uint8)
            frame = av.VideoFrame.from_ndarray(y, format="gray10le" if bits > 8 else "gray")
            frame.pts = f
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)


def _luma(path, bits: int) -> np.ndarray:
    """Every frame's luma as coded, `(N, H, W)`."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="gray10le" if bits > 8 else "gray") for f in c.decode(video=0)])


@pytest.mark.parametrize("bits, size", [(10, (320, 240)), (10, (321, 241)), (8, (320, 240))])
def test_bit_depth_is_kept(tmp_path, bits, size):
    """A 10-bit input comes back 10-bit (H.264 High 10), also at an odd size; an 8-bit one 8-bit.
    Outside the mark the picture keeps its own levels: they match the input's closely, and at 10
    bits most are not on the 8-bit grid (multiples of 4), as in the input."""
    from waterz.pipeline.run import remove_watermark

    source, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    width, height = size
    _deep_clip(source, width, height, bits)
    truth = _luma(source, bits)
    summary = remove_watermark(source, out, boxes=["24,20,72,40"], inpainter="telea")
    assert summary["bit_depth"] == bits and summary["frames_written"] == len(truth) == 40
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert max(comp.bits for comp in av.VideoFormat(cc.pix_fmt).components) == bits, cc.pix_fmt
        assert cc.profile.startswith("High 10" if bits > 8 and width % 2 == 0 else "High"), cc.profile
    after = _luma(out, bits)
    assert len(after) == probe(out).frames == len(truth)
    outside = np.ones((height, width), bool)
    outside[0:88, 0:120] = False  # the box's crop, with its padding
    peak = (1 << bits) - 1
    mse = np.mean((after[:, outside].astype(np.float64) - truth[:, outside]) ** 2)
    assert 10 * np.log10(peak**2 / mse) >= 45
    if bits > 8:
        assert np.mean(truth[:, outside] % 4 != 0) > 0.5
        assert np.mean(after[:, outside] % 4 != 0) > 0.5  # not 8-bit levels widened


def test_the_same_frames_encode_to_the_same_bytes_whatever_the_process_freed_before(tmp_path, clips):
    # x264's macroblock tree reads some of its buffers before writing them: without the heap's
    # blocks filled (`waterz.core.heap.filled`), what the process freed before showed in the output
    source = clips("pan_jump").path
    info = probe(source)
    frames = list(iter_frames(source, with_pts=True, fmt="yuv420p"))
    rng = np.random.default_rng(1)
    made = set()
    for k in range(3):
        # leave freed blocks of other bytes behind each time
        junk = [bytearray(rng.integers(1, 255, size, np.uint8).tobytes()) for size in rng.integers(1_000, 200_000, 300)]
        del junk
        out = tmp_path / f"out{k}.mp4"
        with VideoWriter(out, info) as writer:
            for image, pts in frames:
                writer.write(image, pts, fmt="yuv420p")
        made.add(out.read_bytes())
    assert len(made) == 1
