"""Work limits judged from what the stream holds, not from what its header claims."""

from __future__ import annotations

from dataclasses import replace

import av
import pytest

from waterz.api.uploads import check_limits
from waterz.core.errors import InvalidVideo, UploadTooLarge
from waterz.core.settings import Settings
from waterz.synth.hostile import flat_video, long_mkv_claiming, size_switching_stream
from waterz.video import iter_frames, probe


def test_the_duration_is_what_the_timestamps_span_not_what_the_header_says(tmp_path):
    # four frames, the last 5781 s after the first: a long stream of almost nothing
    mkv = long_mkv_claiming(tmp_path / "long.mkv", span_s=5781, claimed_s=3.0)
    with av.open(str(mkv)) as container:
        assert abs(container.duration / 1e6 - 3.0) < 0.1  # what a reader of the header is told
    info = probe(mkv)
    assert abs(info.duration - 5781.04) < 0.1
    with pytest.raises(UploadTooLarge, match=r"lasts 5781 s; this service takes videos up to 3600 s"):
        check_limits(info, Settings(), "long.mkv")


def test_the_defaults_admit_4k_at_60_fps_and_refuse_more(tmp_path):
    clip = probe(flat_video(tmp_path / "c.mp4", [((64, 48), pts) for pts in range(3)], rate=60))
    minute = replace(clip, frames=3600, duration=60.0)
    check_limits(replace(minute, width=3840, height=2160), Settings(), "uhd.mp4")
    check_limits(replace(minute, width=4096, height=2160), Settings(), "dci.mp4")
    with pytest.raises(UploadTooLarge, match=r"4096x4096 \(16.8 MP\); this service takes at most 8.8 MP a frame"):
        check_limits(replace(minute, width=4096, height=4096), Settings(), "square.mp4")
    fast = replace(minute, width=3840, height=2160, frames=7200)  # 120 fps
    with pytest.raises(UploadTooLarge, match=r"carries 995 million pixels per second of video; .* at most 531 million"):
        check_limits(fast, Settings(), "fast.mp4")
    with pytest.raises(UploadTooLarge, match=r"has 3600 frames; this service takes at most 1000 \(MAX_FRAMES\)"):
        check_limits(minute, Settings(max_frames=1000), "many.mp4")


def test_a_stream_that_changes_its_frame_size_is_refused_with_a_sentence(tmp_path):
    both = size_switching_stream(tmp_path / "switch.h264", (320, 240), (640, 480))
    info = probe(both)
    assert (info.width, info.height, info.frames) == (320, 240, 10)
    with pytest.raises(InvalidVideo, match=r"'switch.h264' changes its frame size from 320x240 to 640x480 at frame 5"):
        list(iter_frames(both))
