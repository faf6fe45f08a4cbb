"""The static detector's stages one by one (`detector/static/`): how frames are grouped into
windows, how a jump over a still shot is told from a title coming up, how tracks merge and how a
track's frames are cleaned up. The whole detector is tested on clips in test_detector.py."""

from __future__ import annotations

import cv2
import numpy as np

from detector.static.config import StaticConfig
from detector.static.features import QUARTER, Features, Holding, features
from detector.static.pops import pops
from detector.static.shapes import parts_together
from detector.static.tracks import Track, Tracks, clean_presence
from detector.static.windows import Windows
from waterz.core.geometry import Box


def _blank(h: int = 8, w: int = 8) -> Features:
    return Features(np.zeros((h, w), np.uint8), np.zeros((h, w), np.int16), np.zeros((h, w), np.int16))


def test_windows_come_consecutive_and_slow_and_the_tail_is_covered():
    cfg = StaticConfig(window=4, stride=2, slow_step=2)
    windows, spans = Windows(cfg), []
    for i in range(13):
        spans += [(w.span, w.consecutive) for w in windows.push(i, _blank())]
    fast = [s for s, consecutive in spans if consecutive]
    slow = [s for s, consecutive in spans if not consecutive]
    assert fast == [(0, 4), (2, 6), (4, 8), (6, 10), (8, 12)]
    assert slow == [(0, 8), (4, 12)]  # every 2nd frame, 4 of them
    tail = [(w.span, w.consecutive, len(w.feats)) for w in windows.finish()]
    assert tail == [((9, 13), True, 4), ((6, 13), False, 4)]  # frame 12 is in no window otherwise


def test_a_frame_is_handed_out_once_when_no_window_still_to_come_can_hold_it():
    cfg = StaticConfig(window=4, stride=2, slow_step=1)
    windows, handed = Windows(cfg), []
    for i in range(10):
        list(windows.push(i, _blank()))
        handed += [index for index, _ in windows.scored(windows.ready())]
        assert all(index < windows.next_window for index in handed)
    handed += [index for index, _ in windows.scored(10)]
    assert handed == list(range(10))


def _still_shot_with(places: list[tuple[int, int] | None], size=(160, 120)) -> list[Features]:
    """A still textured picture; in each frame a mark (a light square with a dark cross) at
    `places[k]`, or none."""
    rng = np.random.default_rng(3)
    picture = cv2.GaussianBlur(rng.integers(60, 140, (size[1], size[0], 3)).astype(np.uint8), (0, 0), 2)
    holding, out = Holding(StaticConfig().min_strength), []
    for k, place in enumerate(places):
        frame = picture.copy()
        if place is not None:
            x, y = place
            cv2.rectangle(frame, (x, y), (x + 23, y + 15), (235, 235, 235), -1)
            cv2.line(frame, (x + 4, y + 8), (x + 19, y + 8), (20, 20, 20), 2)
            cv2.line(frame, (x + 12, y + 3), (x + 12, y + 12), (20, 20, 20), 2)
        feats = features(frame, 1.0)
        holding.note(k, feats, out[-1] if out else None)
        out.append(feats)
    return out


def test_a_mark_that_jumps_over_a_still_shot_pops_at_both_places():
    feats = _still_shot_with([(30, 30)] * 6 + [(100, 80)] * 6)
    found = list(pops(feats, StaticConfig()))
    assert {t for t, _ in found} == {6}
    assert sorted((p.appears, p.box.x // 10, p.box.y // 10) for _, p in found) == [(False, 2, 2), (True, 9, 7)]


def test_a_title_that_only_comes_up_is_not_a_jump():
    feats = _still_shot_with([None] * 6 + [(100, 80)] * 6)
    assert list(pops(feats, StaticConfig())) == []


def _field(box: Box, shape=(60, 80)) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    out[box.y : box.y1, box.x : box.x1] = 1.0
    return out


def test_parts_of_one_mark_seen_apart_become_one_track_once_they_overlap():
    tracks = Tracks()
    gray = np.zeros((4, 60, 80), np.float32)
    icon, word, elsewhere = Box(10, 10, 12, 10), Box(30, 10, 20, 10), Box(10, 40, 12, 10)
    for box, span in ((icon, (0, 4)), (word, (0, 4)), (elsewhere, (0, 4))):
        tracks.add(box, span, _field(box), _field(box), _field(box) > 0, gray)
    assert len(tracks.all) == 3
    tracks.add(Box(10, 10, 40, 10), (4, 8), _field(icon), _field(icon), _field(icon) > 0, gray)  # the whole logo
    assert sorted((t.box.x, t.box.w) for t in tracks.all) == [(10, 12), (10, 40)]
    assert tracks.knows(word) and not tracks.knows(Box(60, 45, 10, 10))


def test_a_part_of_a_mark_stays_on_the_frames_where_its_neighbour_part_holds():
    def on(*spans: tuple[int, int]) -> np.ndarray:
        present = np.zeros(80, bool)
        for a, b in spans:
            present[a:b] = True
        return present

    # the ring logo lost over a white rim (frames 55-72), the word beside it held there
    ring, word = Box(158, 147, 58, 47), Box(215, 167, 75, 27)
    far = Box(20, 20, 60, 27)  # a mark elsewhere on the same frames
    late = Box(158, 200, 58, 20)  # right under the ring and the word, on later frames
    got = parts_together([ring, word, far, late], [on((36, 55)), on((36, 44), (50, 72)), on((36, 72)), on((74, 80))])
    assert np.array_equal(got[0], on((36, 72))) and np.array_equal(got[1], on((36, 72)))
    assert np.array_equal(got[2], on((36, 72))) and np.array_equal(got[3], on((74, 80)))


def test_a_track_s_frames_lead_in_bridge_short_gaps_and_drop_flickers():
    tracks = Tracks()
    track = tracks.add(Box(10, 10, 12, 10), (20, 24), *(_field(Box(10, 10, 12, 10)) for _ in range(2)),
                       _field(Box(10, 10, 12, 10)) > 0, np.zeros((4, 60, 80), np.float32))  # fmt: skip
    track.present = {20, 21, 22, 25, 26, 40}
    track.matches = {16, 17, 18, 19, 30}  # frames whose gradient held the mark before a window saw it
    present = np.flatnonzero(track.presence(50))
    assert present.tolist() == list(range(16, 27))  # led in from 16, the gap 23-24 bridged, 40 alone dropped
    # two frames missing are bridged, three are not; a run under three frames is a flicker
    assert np.flatnonzero(clean_presence({1, 2, 3, 5, 6, 10, 20}, 30)).tolist() == [1, 2, 3, 4, 5, 6]


def test_compact_features_read_as_the_float_gradient_exactly():
    """Features keep grey levels as uint8 and Sobel's sums as int16; read back they are the float32
    grey levels and Sobel / 4 of them, the same values bit for bit."""
    frame = np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    feats = features(frame, 1.0)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert feats.gx4.dtype == np.int16 and feats.gray8.dtype == np.uint8
    assert np.array_equal(feats.gray, gray)
    assert np.array_equal(feats.gx, cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) * 0.25)
    assert np.array_equal(feats.gy, cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) * 0.25)
    region = (slice(10, 40), slice(5, 70))
    assert np.array_equal(feats.at(region).gx, feats.gx[region])


def test_a_mark_whose_edges_change_sign_between_shots_keeps_its_template():
    """A mid-grey mark is lighter than a dark shot and darker than a bright one: its gradient
    flips, part by part. The track's template must not cancel, and a frame of either shot must
    hold it."""
    tracks = Tracks()
    gray = np.zeros((4, 60, 80), np.float32)
    box = Box(10, 10, 40, 12)
    letters = np.zeros((60, 80), np.float32)
    letters[12:20, 12:22] = 1.0
    letters[12:20, 30:45] = 1.0

    def frame(sign) -> Features:
        return features(np.dstack([np.clip(100 + sign * 50 * letters, 0, 255).astype(np.uint8)] * 3), 1.0)

    shot = frame(1.0)
    gx, gy = shot.gx4 * QUARTER, shot.gy4 * QUARTER  # a window's median gradient over the first shot
    pixels = np.hypot(gx, gy) > 1
    second = np.where(np.arange(80) < 26, -1.0, 1.0)[None, :]  # the first letter stays, the second flips
    track = tracks.add(box, (0, 16), gx, gy, pixels, gray)
    tracks.add(box, (16, 32), gx * -second, gy * -second, pixels, gray)
    tx, ty, support = track.template()
    assert np.hypot(tx, ty)[support].mean() > 0.9 * np.hypot(gx, gy)[box.y : box.y1, box.x : box.x1][support].mean()
    for sign in (1.0, -1.0, second):
        feats = frame(sign)
        assert track.score(feats) > 0.9


def _blob_at(picture: np.ndarray, x: float, y: float) -> np.ndarray:
    """`picture` with a soft-edged light object (an ellipse with a dark bar) whose corner is at
    (x, y), sub-pixel."""
    obj = np.zeros((40, 48, 3), np.uint8)
    cv2.ellipse(obj, (24, 20), (18, 12), 20, 0, 360, (230, 230, 230), -1)
    cv2.line(obj, (14, 24), (34, 14), (30, 30, 30), 3)
    obj = cv2.GaussianBlur(obj, (0, 0), 2.5)
    shape = cv2.GaussianBlur(cv2.ellipse(np.zeros((40, 48), np.float32), (24, 20), (18, 12), 20, 0, 360, 1.0, -1),
                             (0, 0), 2.5)  # fmt: skip
    h, w = picture.shape[:2]
    move = np.float32([[1, 0, x], [0, 1, y]])
    placed = cv2.warpAffine(obj, move, (w, h)).astype(np.float32)
    cover = cv2.warpAffine(shape, move, (w, h))[..., None]
    return (picture * (1 - cover) + placed * cover).astype(np.uint8)


def _scored(offsets: list[float | None]) -> np.ndarray:
    """The frames a track made where a soft object sat at (40, 30) in the first 8 frames is found
    on, frame k showing it `offsets[k]` px right of that place (None: not at all)."""
    rng = np.random.default_rng(5)
    picture = cv2.GaussianBlur(rng.integers(60, 140, (100, 140, 3)).astype(np.uint8), (0, 0), 2).astype(np.float32)
    frames = [features(picture.astype(np.uint8) if dx is None else _blob_at(picture, 40 + dx, 30), 1.0)
              for dx in offsets]  # fmt: skip
    window, bare = frames[:8], features(picture.astype(np.uint8), 1.0)
    med_x = np.median([f.gx for f in window], axis=0) - bare.gx  # the object's own edges
    med_y = np.median([f.gy for f in window], axis=0) - bare.gy
    pixels = np.hypot(med_x, med_y) > 10
    ys, xs = np.nonzero(pixels)
    box = Box(int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
    tracks = Tracks()
    track = tracks.add(box, (0, 8), med_x, med_y, pixels, np.stack([f.gray for f in window]))
    for index, feats in enumerate(frames):
        tracks.score(index, feats, reach=16, presence=StaticConfig().presence)
    return track.presence(len(frames))


def test_something_that_moves_off_its_place_slowly_was_no_mark_there():
    # a character's head held still on screen for a while, then leaving with the camera: it stays
    # found for some frames while it moves, and over those it is found better off its place
    present = _scored([0.0] * 12 + [0.5 * k for k in range(1, 20)])
    assert not present.any(), np.flatnonzero(present).tolist()
    # a mark that stays until it jumps away (or fades, or a cut) keeps its frames
    present = _scored([0.0] * 12 + [None] * 19)
    assert np.flatnonzero(present).tolist() == list(range(12))


def _voted(votes: np.ndarray, windows: int) -> Track:
    """A track whose `windows` windows voted `votes` for its pixels."""
    zero = np.zeros(votes.shape, np.float32)
    return Track(Box(0, 0, votes.shape[1], votes.shape[0]), zero, zero, votes.astype(np.float32), zero, zero,
                 windows=[(8 * k, 8 * k + 16) for k in range(windows)])  # fmt: skip


def test_letters_a_mark_showed_less_often_are_in_its_mask_edges_seen_once_are_not():
    """A mid-grey wordmark over a pan: its best-seen letters in 8 of 16 windows, the others in 3,
    a picture edge in 1. Its mask takes every letter; the edge seen once stays out."""
    votes = np.zeros((10, 30))
    votes[2:8, 2:8], votes[2:8, 12:18], votes[2:8, 24:26] = 8, 3, 1
    support = _voted(votes, 16).shape_support(StaticConfig().mask_share)
    assert support[2:8, 2:8].all() and support[2:8, 12:18].all() and not support[:, 20:].any()


def test_where_the_mark_showed_in_every_window_picture_edges_seen_in_some_stay_out():
    """Over a near-still picture, edges beside the mark persist in a quarter of the windows; the
    mark itself shows in all of them. The mask is the mark's alone."""
    votes = np.zeros((10, 30))
    votes[2:8, 2:8], votes[2:8, 12:18] = 16, 4
    support = _voted(votes, 16).shape_support(StaticConfig().mask_share)
    assert support[2:8, 2:8].all() and not support[:, 10:].any()
    few = np.zeros((10, 30))
    few[2:8, 2:8], few[2:8, 12:18] = 2, 1  # three windows: the best pixels seen twice, an edge once
    support = _voted(few, 3).shape_support(StaticConfig().mask_share)
    assert support[2:8, 2:8].all() and not support[:, 10:].any()


def test_a_frame_that_shows_only_the_letters_seen_less_often_holds_the_mark():
    """A mid-grey wordmark over a pan: its first letter showed in 8 of 16 windows, the other two in
    4 (the picture under them was as grey as the mark the rest of the time). A frame where the first
    letter is over its own grey and the other two show holds the mark, as does one the other way."""
    letters = [np.zeros((30, 80), np.float32) for _ in range(3)]
    for letter, x in zip(letters, (5, 30, 55)):
        letter[8:22, x : x + 16] = 1.0

    def frame(*showing: int) -> Features:
        picture = 100 + 50 * sum((letters[k] for k in showing), np.zeros((30, 80), np.float32))
        return features(np.dstack([picture.astype(np.uint8)] * 3), 1.0)

    one = [frame(k) for k in range(3)]
    edges = [np.hypot(f.gx, f.gy) > 0 for f in one]
    track = _voted(8 * edges[0] + 4 * edges[1] + 4 * edges[2], 16)
    track.sum_x = sum(seen * f.gx for seen, f in zip((8, 4, 4), one))
    track.sum_y = sum(seen * f.gy for seen, f in zip((8, 4, 4), one))
    presence = StaticConfig().presence
    assert track.score(frame(1, 2)) > presence and track.score(frame(0)) > presence
