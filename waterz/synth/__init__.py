"""Synthetic clips with known ground truth (clean frames and the mark's alpha matte) for tests and benchmarks."""

from waterz.synth.clips import ClipSpec, MarkSpec, SyntheticClip, make_clip

__all__ = ["ClipSpec", "MarkSpec", "SyntheticClip", "make_clip"]
