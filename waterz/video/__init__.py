"""Video I/O: probe, stream-decode, encode H.264 and mux the original audio back.

Decoding and encoding use PyAV (its wheels bundle ffmpeg with libx264); the final remux uses the
ffmpeg binary shipped by `imageio-ffmpeg`. Never a system ffmpeg.
"""

from waterz.video.probe import VideoInfo, frame_timestamps, probe
from waterz.video.reader import iter_frames
from waterz.video.writer import VideoWriter, frame_format, mux_audio

__all__ = ["VideoInfo", "frame_timestamps", "probe", "iter_frames", "VideoWriter", "frame_format", "mux_audio"]
