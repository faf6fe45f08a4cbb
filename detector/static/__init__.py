"""The `static` detector: weights-free detection of overlays that stay put while the picture under
them changes, or that jump while the picture holds still. Its stages, each a module:

    features -> windows -> candidates | pops | fixed -> tracks -> shapes

`features`: each frame's gradient at the analysis scale; `windows`: frames grouped as they
stream by; `candidates`: what stays fixed within a window while the picture around it changes;
`pops`: a mark jumping over a locked-off shot; `fixed`: a mark that never moved
(`detector.steady`); `tracks`: one per mark position, scored on every frame; `shapes`: the
full-resolution masks. Parameters: `StaticConfig`.

Known limits: a semi-transparent mark that never moves over a picture that does not change (a
locked-off shot) is not found, and a long picture edge sliding along itself right beside the mark
can join it.
"""

from detector.static.config import StaticConfig
from detector.static.detector import StaticDetector, StaticPart
from detector.static.tracks import clean_presence

__all__ = ["StaticConfig", "StaticDetector", "StaticPart", "clean_presence"]
