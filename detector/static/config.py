"""The `static` detector's parameters, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.steady import SteadyConfig


@dataclass(frozen=True)
class StaticConfig:
    """Each field with the reason for its value."""

    window: int = 16  # frames per window: enough for a moving picture's gradient to average out
    stride: int = 8  # frames between windows' starts: every frame is seen by two windows
    slow_step: int = 4  # slow windows take every 4th frame: a camera moving under a pixel a frame
    analysis_size: int = 640  # the longer side frames are analysed at: a mark is tens of pixels there
    min_strength: float = 10.0  # grey levels of median gradient for a candidate edge (a mark's outline)
    min_coherence: float = 0.55  # median over mean gradient: an edge that points one way in most frames
    strict_coherence: float = 0.7  # the same, for the pixels that seed a component
    min_steady: float = 0.75  # share of frames that keep half the median gradient, or the template
    min_still: float = 0.6  # share of frames whose template matches best without a shift
    max_swing: float = 0.35  # how far a frame's share of the template may stray from 1
    max_spread: float = 0.15  # median deviation of that share within a shot (it follows the picture)
    min_change: float = 3.0  # grey levels the picture around a mark must change by, over time
    presence: float = 0.4  # share of the template a frame must hold for the mark to be on it
    mask_dilation: int = 2  # pixels the full-resolution mask grows by: the codec's ringing around it
    max_area_fraction: float = 0.25  # the largest share of the frame a mark may cover
    max_stillness: float = 0.45  # change relative to the surroundings under which a pixel is a solid part
    mask_share: float = 0.35  # share of windows a pixel must be seen in to be in the mask (see Track)
    min_spread_of_directions: float = 0.1  # eigenvalue ratio under which edges all run one way
    steady: SteadyConfig = field(default_factory=SteadyConfig)  # a mark that never moves
