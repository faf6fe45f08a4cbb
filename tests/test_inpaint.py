"""Inpainting engines on generated crops with ground truth."""

import cv2
import numpy as np
import pytest

from propainter import create_inpainter
from propainter.motion import Motion
from propainter.temporal import _seen_share, unblend_inpainter
from tests.conftest import psnr
from waterz.video import iter_frames, probe


def crop_slices(clip):
    masks = np.stack([cv2.dilate((a > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for a in clip.alpha])
    ys, xs = np.nonzero(masks.any(axis=0))
    sl = (slice(None), slice(max(0, ys.min() - 24), ys.max() + 24), slice(max(0, xs.min() - 24), xs.max() + 24))
    return sl, masks[sl]


def crop_problem(clip):
    sl, masks = crop_slices(clip)
    return np.stack(list(iter_frames(clip.path)))[sl], masks, clip.clean[sl]


def crop_alpha(clip):
    return clip.alpha[crop_slices(clip)[0]]


@pytest.mark.parametrize("name", ["telea", "temporal", "unblend", "auto"])
def test_pixels_outside_the_mask_are_untouched(clips, name):
    frames, masks, _ = crop_problem(clips("shake_opaque"))
    out = create_inpainter(name).inpaint(frames, masks, 5, 20)
    assert out.shape == frames[5:21].shape and out.dtype == np.uint8
    assert np.array_equal(out[~masks[5:21]], frames[5:21][~masks[5:21]])
    assert not np.array_equal(out[masks[5:21]], frames[5:21][masks[5:21]])


def test_temporal_beats_telea_inside_the_mask_under_camera_motion(clips):
    clip = clips("shake_opaque")
    frames, masks, clean = crop_problem(clip)
    n = len(frames)
    scores = {
        name: psnr(create_inpainter(name).inpaint(frames, masks, 0, n - 1), clean, masks)
        for name in ("telea", "temporal")
    }
    assert scores["temporal"] > scores["telea"] + 1.0, scores


def test_unblending_recovers_what_passed_under_a_semi_transparent_mark(clips):
    clip = clips("pan_jump")
    frames, masks, clean = crop_problem(clip)
    first = slice(0, 24)  # the mark's first position; an object passes under it
    frames, masks, clean = frames[first], masks[first], clean[first]
    n = len(frames)
    plain = create_inpainter("temporal").inpaint(frames, masks, 0, n - 1)
    unblended = create_inpainter("unblend").inpaint(frames, masks, 0, n - 1)
    assert psnr(unblended, clean, masks) > psnr(plain, clean, masks) + 1.0


def test_an_opaque_mark_is_not_unblended(clips):
    """Nothing lies under an opaque mark: the blend model may only keep the mask's untouched pixels."""
    clip = clips("shake_opaque")
    frames, masks, clean = crop_problem(clip)
    n = len(frames)
    plain = create_inpainter("temporal").inpaint(frames, masks, 0, n - 1)
    unblended = create_inpainter("unblend").inpaint(frames, masks, 0, n - 1)
    mark = masks & (crop_alpha(clip) > 0.5)
    assert psnr(unblended, clean, mark) >= psnr(plain, clean, mark) - 0.1


@pytest.mark.parametrize(("colour", "expected"), [((255, 255, 255), 255.0), ((0, 0, 0), 0.0), ((40, 60, 220), None)])
def test_a_still_picture_tells_a_white_or_black_mark_but_not_a_coloured_one(colour, expected):
    """Under a locked-off shot the picture does not vary, so the mark's colour cannot be fitted;
    white or black is told by which explains the change in all three channels, also where an
    object in one frame made its source wrong; a coloured mark is explained by neither."""
    import skimage.data

    from propainter.blend_fit import Pairs, achromatic_colour
    from waterz.synth import MarkSpec
    from waterz.synth.clips import render_mark_matte

    rng = np.random.default_rng(1)
    alpha = render_mark_matte(MarkSpec(text="Sora", scale=0.8)) * 0.55
    h, w = alpha.shape
    picture = skimage.data.astronaut()[300 : 300 + h, 200 : 200 + w, ::-1].astype(np.float32)
    marked = alpha[..., None] * np.array(colour, np.float32) + (1 - alpha[..., None]) * picture
    frames = np.stack([np.clip(marked + rng.normal(0, 1.5, marked.shape), 0, 255) for _ in range(12)])
    fills = {t: np.where((alpha > 0.02)[..., None], picture, np.nan).astype(np.float32) for t in range(12)}
    fills[3][:, : w // 3] = (200, 40, 40)  # a wrong source: an object stood there in it
    found = achromatic_colour(Pairs(frames.astype(np.uint8), fills))
    if expected is None:
        assert found is None
    else:
        assert found is not None and np.all(found == expected)


def test_a_matte_travels_as_text_and_is_found_where_the_mark_sits():
    from waterz.core.matte import Matte, MatteBook, persistent_edges
    from waterz.synth import MarkSpec
    from waterz.synth.clips import render_mark_matte

    alpha = render_mark_matte(MarkSpec(text="Sora", scale=0.8)) * 0.55
    matte = Matte.from_text(Matte(alpha, np.full(alpha.shape, 0.02, np.float32), np.full(3, 255.0)).to_text())
    assert np.abs(matte.alpha - alpha).max() < 1e-3 and np.all(matte.colour == 255.0)
    # a crop of moving picture with the same mark at (37, 21): its edges are what stays put
    rng = np.random.default_rng(0)
    h, w = alpha.shape
    frames = []
    for _ in range(10):
        picture = cv2.GaussianBlur(rng.uniform(0, 255, (120, 200, 3)).astype(np.float32), (0, 0), 3)
        a = np.zeros((120, 200, 1), np.float32)
        a[21 : 21 + h, 37 : 37 + w, 0] = alpha
        frames.append(np.clip(a * 255 + (1 - a) * picture, 0, 255).astype(np.uint8))
    frames = np.stack(frames)
    edges = persistent_edges(frames, list(range(10)))
    mask = np.zeros((120, 200), bool)
    mask[15 : 27 + h, 30 : 45 + w] = True
    placed = MatteBook([matte]).place(edges, mask)
    assert placed is not None and placed[1:] == (37, 21)
    assert MatteBook([matte]).place(edges, mask, colour=np.zeros(3)) is None  # a black mark is another mark
    assert MatteBook([matte]).place(edges, np.zeros_like(mask)) is None  # not where this segment's mark can be


def test_a_segment_reuses_the_matte_another_position_estimated(clips):
    """A faint mark (35 %) over a zoom, boxed loosely by the user (8 px around it): where it
    jumps to, its own fit over the wide box is poorer than the one the first position gave, and
    the first position's matte makes up for it."""
    from waterz.core.matte import MatteBook
    from waterz.pipeline.run import detect, plan, segment_inputs

    clip = clips("zoom_faint")
    info = probe(clip.path)
    boxes = clip.mark_boxes()
    grow = 8
    loose = [f"{x - grow},{y - grow},{w + 2 * grow},{h + 2 * grow}@{s}-{e}"
             for (x, y, w, h), s, e in ((boxes[0][0], 0, 35), (boxes[-1][0], 36, info.frames - 1))]  # fmt: skip
    assert boxes[35] == boxes[0] and boxes[36] == boxes[-1] != boxes[0]
    marks = detect(info, boxes=loose)
    segments = plan(marks, info)
    engine = create_inpainter("unblend")
    book = MatteBook()
    scores = {"alone": [], "with the book": []}
    for seg, crops, masks in segment_inputs(info, marks, segments):
        first, last = seg.start_frame - seg.context_start, seg.end_frame - seg.context_start
        if seg.start_frame < 36:  # the first position: its matte goes into the book
            learned = engine.analyse(crops, masks, first, last, book).learned
            book.mattes += [learned.kept] if learned.kept is not None else []
            continue
        c = seg.crop
        clean = clip.clean[seg.start_frame : seg.end_frame + 1, c.y : c.y1, c.x : c.x1]
        mark = clip.alpha[seg.start_frame : seg.end_frame + 1, c.y : c.y1, c.x : c.x1] > 0.05
        for label, mattes in (("alone", None), ("with the book", MatteBook(book.mattes))):
            scores[label].append(psnr(engine.inpaint(crops, masks, first, last, mattes), clean, mark))
    assert book.mattes, "the first position's blend was fitted"
    gains = np.array(scores["with the book"]) - np.array(scores["alone"])
    assert gains.min() > 1.0, scores


def test_the_fitted_matte_follows_the_marks_shape_not_the_errors_of_its_sources():
    """A per-pixel fit of alpha over a near-still picture inherits the errors of its few sources
    (here: noise, and one pixel in eight fitted on a wrong source). Smoothed along the mark's
    own shape, which the frames' temporal median shows, it is much closer to the true matte, and
    the mark's edges stay where they are."""
    from propainter.blend_fit import smooth_alpha
    from waterz.synth import MarkSpec
    from waterz.synth.clips import render_mark_matte

    rng = np.random.default_rng(1)
    alpha = np.pad(render_mark_matte(MarkSpec(scale=0.6)) * 0.5, 8)
    picture = cv2.GaussianBlur(rng.uniform(0, 255, alpha.shape).astype(np.float32), (0, 0), 4)
    guide = ((alpha * 255 + (1 - alpha) * picture) / 255).astype(np.float32)
    fitted = alpha + rng.normal(0, 0.05, alpha.shape)
    wrong = rng.random(alpha.shape) < 0.125
    fitted[wrong] = rng.uniform(-0.2, 0.9, wrong.sum())
    error = np.where(wrong, 0.2, 0.05)
    smoothed = smooth_alpha(fitted.astype(np.float32), 1.0 / error**2, guide)
    mark = alpha > 0.05
    before, after = np.abs(fitted - alpha)[mark].mean(), np.abs(smoothed - alpha)[mark].mean()
    assert after < 0.6 * before, (before, after)
    edges = cv2.morphologyEx(mark.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    assert np.abs(smoothed - alpha)[edges].mean() < np.abs(fitted - alpha)[edges].mean()


def test_a_matte_whose_edges_match_outweighs_an_own_fit_that_saw_little_of_the_mark():
    """Over a still picture a segment's own fit sees little of the mark and may even get its
    colour wrong (black here, for a white mark). A matte another segment fitted, found at the
    mark by its edges, is used instead: the picture under the mark comes back."""
    from propainter.blend import BlendModel, with_book
    from waterz.core.matte import Matte, MatteBook
    from waterz.synth import MarkSpec
    from waterz.synth.clips import render_mark_matte

    rng = np.random.default_rng(2)
    alpha = render_mark_matte(MarkSpec(scale=0.8)) * 0.5
    h, w = alpha.shape
    picture = cv2.GaussianBlur(rng.uniform(0, 255, (h + 40, w + 40, 3)).astype(np.float32), (0, 0), 3)
    a = np.zeros((h + 40, w + 40, 1), np.float32)
    a[20 : 20 + h, 20 : 20 + w, 0] = alpha
    frame = np.clip(a * 255 + (1 - a) * picture + 0.5, 0, 255).astype(np.uint8)
    frames = np.stack([frame] * 6)  # a locked-off shot
    masks = np.stack([cv2.dilate((a[..., 0] > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] * 6)
    ys, xs = np.nonzero(a[..., 0] > 0.4)
    own_alpha = np.zeros(a.shape[:2], np.float32)
    own_alpha[ys[:10], xs[:10]] = 0.2  # ten pixels of the mark, and the wrong colour
    own = BlendModel(own_alpha, np.zeros(3, np.float32), masks[0].copy(), 0.85)

    def white_matte() -> Matte:
        return Matte(alpha, np.full(alpha.shape, 0.02, np.float32), np.full(3, 255.0, np.float32))

    blend, _ = with_book(own, frames, masks, list(range(6)), MatteBook([white_matte()]))
    assert blend is not own and np.all(blend.colour == 255.0)
    recovered, _ = blend.recover(frame)
    mark = a[..., 0] > 0.05
    assert psnr(recovered[None], picture[None], mark[None]) > psnr(frame[None], picture[None], mark[None]) + 10
    # An own fit that saw the whole mark keeps its colour: a white matte is another mark then.
    strong = BlendModel(a[..., 0].copy(), np.zeros(3, np.float32), masks[0].copy(), 0.85)
    assert with_book(strong, frames, masks, list(range(6)), MatteBook([white_matte()]))[0] is strong


def test_a_later_matte_of_another_colour_that_saw_more_of_the_mark_earns_a_second_look():
    """A mark has one colour. A segment that fitted much of it in a wrong colour (grey from scarce
    sources, for a white mark) is cleaned again once a later segment fitted more of it in
    another colour, and then that matte outweighs the own colour; a later matte of the same
    colour that saw about as much does not call for it."""
    from waterz.core.matte import Matte, MatteBook, marked_pixels, persistent_edges, second_look
    from waterz.synth import MarkSpec
    from waterz.synth.clips import render_mark_matte

    alpha = render_mark_matte(MarkSpec(scale=0.8)) * 0.5
    error = np.full(alpha.shape, 0.02, np.float32)
    white = Matte(alpha, error, np.full(3, 255.0, np.float32))
    grey = Matte(alpha * 0.9, error, np.array([184.0, 172.0, 158.0], np.float32))
    seen = int(0.7 * marked_pixels(white.alpha))
    book = second_look(seen, [white], [white], own=grey)
    assert book is not None and book.mattes == [white]
    assert second_look(seen, [white], [white], own=Matte(alpha, error, np.full(3, 250.0, np.float32))) is None
    assert second_look(marked_pixels(white.alpha) + 1, [white], [white], own=grey) is None  # it saw more
    # Where the mark sits, the book of the second look places the other colour over the own one.
    rng = np.random.default_rng(3)
    h, w = alpha.shape
    frames = []
    for _ in range(8):
        picture = cv2.GaussianBlur(rng.uniform(0, 255, (h + 30, w + 30, 3)).astype(np.float32), (0, 0), 3)
        a = np.zeros((h + 30, w + 30, 1), np.float32)
        a[12 : 12 + h, 9 : 9 + w, 0] = alpha
        frames.append(np.clip(a * 255 + (1 - a) * picture, 0, 255).astype(np.uint8))
    edges = persistent_edges(np.stack(frames), list(range(8)))
    mask = np.ones(edges.shape, bool)
    assert book.place(edges, mask, colour=grey.colour, seen=seen)[1:] == (9, 12)
    assert MatteBook([white]).place(edges, mask, colour=grey.colour, seen=seen) is None  # the first look's book


def test_frames_worked_on_at_once_give_the_same_pixels_as_one_at_a_time(clips):
    """`temporal` and `unblend` work on as many frames at once as OpenCV may use cores; each frame's
    sources and composition are its own, so the result is the same bit for bit."""
    frames, masks, _ = crop_problem(clips("pan_jump"))
    threads = cv2.getNumThreads()
    try:
        results = {}
        for n in (1, 3):
            cv2.setNumThreads(n)
            results[n] = create_inpainter("unblend").inpaint(frames, masks, 0, len(frames) - 1)
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(results[1], results[3])


def test_alpha_from_the_sums_is_the_per_frame_least_squares():
    """`Moments.alpha` (one pass over the frames for every candidate colour) gives the alpha
    `fit_alpha` gets from a pass of its own per colour."""
    from propainter.blend_fit import Moments, Pairs, fit_alpha

    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (12, 20, 30, 3), dtype=np.uint8)
    fills = {t: rng.uniform(0, 255, (20, 30, 3)).astype(np.float16) for t in range(12)}
    fills[3][:5] = np.nan  # pixels a frame found no source for
    pairs = Pairs(frames, fills)
    moments = Moments(pairs)
    for colour in (np.full(3, 255.0, np.float32), np.array([30.0, 140.0, 220.0], np.float32)):
        direct, _, _ = fit_alpha(pairs, colour, None)
        assert np.allclose(moments.alpha(colour), direct, rtol=1e-4, atol=1e-5)


def test_the_median_of_sources_is_numpys_nanmedian():
    from propainter.temporal import _median_of_sources

    rng = np.random.default_rng(7)
    samples = rng.uniform(0, 255, (5000, 6, 3)).astype(np.float32)
    gone = rng.random((5000, 6)) < 0.5
    gone[:, 0] = False  # every pixel has a source
    samples[gone] = np.nan
    assert np.array_equal(_median_of_sources(samples), np.nanmedian(samples, axis=1))
    spreads = np.abs(samples - 100).mean(axis=-1)
    assert np.array_equal(_median_of_sources(spreads), np.nanmedian(spreads, axis=1))


def test_sources_kept_on_disk_come_back_for_the_same_frames_and_masks_only(tmp_path):
    from propainter.base import Sources

    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (6, 20, 30, 3), dtype=np.uint8)
    masks = rng.random((6, 20, 30)) < 0.3
    masks[0] = False  # a context frame without the mark
    fills, spreads = {}, {}
    for t in range(1, 5):
        fill = np.full((20, 30, 3), np.nan, np.float16)
        fill[masks[t]] = rng.uniform(0, 255, (int(masks[t].sum()), 3))
        fill[masks[t] & (rng.random((20, 30)) < 0.2)] = np.nan  # masked pixels no frame showed
        spread = np.full((20, 30), np.nan, np.float16)
        spread[masks[t]] = rng.uniform(0, 9, int(masks[t].sum()))
        fills[t], spreads[t] = fill, spread
    Sources(fills, spreads, "temporal x").save(tmp_path / "s.npz", frames, masks)
    back = Sources.load(tmp_path / "s.npz", frames, masks)
    assert sorted(back.fills) == [1, 2, 3, 4] and back.made_by == "temporal x" and not back.reused
    assert back.fit is None  # no fit kept: the engine fits again
    fit = {"alpha": rng.random((20, 30)).astype(np.float32), "opaque": np.bool_(False)}
    for kept in (fit, {}):  # a fit, and a fit that found no blend
        Sources(fills, spreads, "temporal x", fit=kept).save(tmp_path / "f.npz", frames, masks)
        again = Sources.load(tmp_path / "f.npz", frames, masks).fit
        assert sorted(again) == sorted(kept) and all(np.array_equal(again[k], v) for k, v in kept.items())
    for t in fills:
        assert np.array_equal(back.fills[t], fills[t], equal_nan=True)
        assert np.array_equal(back.spreads[t], spreads[t], equal_nan=True)
    moved = masks.copy()  # as many masked pixels, one of them in another frame
    y, x = np.argwhere(masks[1] & ~masks[2])[0]
    moved[1, y, x], moved[2, y, x] = False, True
    shifted = np.roll(masks, 3, axis=2)
    other_frames = frames.copy()
    other_frames[3, 0, 0, 0] ^= 1
    for f, m in ((frames, moved), (frames, shifted), (other_frames, masks)):
        assert Sources.load(tmp_path / "s.npz", f, m) is None  # made for others: looked for again


def test_a_second_look_that_reuses_the_first_ones_sources_gives_the_same_pixels(clips, monkeypatch, tmp_path):
    """What `unblend` finds in other frames, and the blend it fits on that alone, depend on the
    frames and masks alone: cleaning again with other mattes from the first cleaning's sources
    (kept on disk) gives what looking for them and fitting again gives, without fitting again."""
    from propainter.base import Sources
    from propainter.blend import BlendModel
    from waterz.core.matte import MatteBook

    frames, masks, _ = crop_problem(clips("pan_jump"))
    engine = create_inpainter("auto")
    n = len(frames)
    first = engine.clean(frames, masks, 0, n - 1, mattes=MatteBook())
    assert first.sources is not None and len(first.sources.fills) == int(masks.any(axis=(1, 2)).sum())
    assert first.sources.fit  # the fit the pan allows is kept with them
    book = MatteBook([first.learned.kept]) if first.learned.kept is not None else MatteBook()
    fresh = engine.clean(frames, masks, 0, n - 1, mattes=book)
    first.sources.save(tmp_path / "s.npz", frames, masks)
    kept = Sources.load(tmp_path / "s.npz", frames, masks)
    with monkeypatch.context() as m:
        m.setattr(BlendModel, "fit", lambda *a, **k: pytest.fail("fitted again on the same sources"))
        reused = engine.clean(frames, masks, 0, n - 1, mattes=book, sources=kept)
    assert reused.sources.reused and reused.sources.fills is kept.fills  # not looked for again
    assert not fresh.sources.reused
    assert np.array_equal(reused.frames, fresh.frames)
    kept.fit = {"alpha": kept.fit["alpha"]}  # a fit kept by other code: fitted again, not failed on
    assert np.array_equal(engine.clean(frames, masks, 0, n - 1, mattes=book, sources=kept).frames, fresh.frames)
    other = create_inpainter("unblend", candidates=2).clean(frames, masks, 0, n - 1, sources=first.sources)
    assert not other.sources.reused  # sources another setting of the engine made are not taken


def test_kept_sources_that_cannot_be_read_are_looked_for_again(tmp_path, caplog):
    from waterz.pipeline.run import reused_sources

    frames = np.zeros((3, 8, 8, 3), np.uint8)
    masks = np.ones((3, 8, 8), bool)
    assert reused_sources(tmp_path / "none.npz", frames, masks) is None  # never kept
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 cut short")
    assert reused_sources(tmp_path / "cut.npz", frames, masks) is None
    assert "cannot be read" in caplog.text and "looking for them again" in caplog.text


def _letters(levels: tuple[float, ...], h: int = 96, w: int = 160) -> np.ndarray:
    """Three thick antialiased letters, each at the next of `levels` (alpha)."""
    alpha = np.zeros((h, w), np.float32)
    for x0, level in zip((30, 70, 110), levels * 3, strict=False):
        alpha[30:66, x0 : x0 + 10] = level
        alpha[30:40, x0 : x0 + 24] = level
    return cv2.GaussianBlur(alpha, (3, 3), 0)


def _grey_mark_over(pictures: np.ndarray, grey: float = 120, opacity: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """A `grey` mark of three thick letters at `opacity` over `pictures`: the frames and the masks."""
    n, h, w = pictures.shape[:3]
    alpha = _letters((opacity,), h, w)
    frames = np.clip(alpha[..., None] * grey + (1 - alpha[..., None]) * pictures + 0.5, 0, 255).astype(np.uint8)
    masks = np.repeat(cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))[None] > 0, n, axis=0)
    return frames, masks


def _textures(n: int, rng, h: int = 96, w: int = 160) -> np.ndarray:
    pictures = np.stack([cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 5)
                         for _ in range(n)])  # fmt: skip
    return np.clip((pictures - pictures.mean()) * 4 + 128, 0, 255)


def test_a_semi_transparent_mark_no_frame_uncovers_is_unblended_from_the_picture_around_it():
    """A clip that cuts on every frame: no other frame shows the picture under the mark, so the
    blend is fitted on each frame's picture filled in from around the mark."""
    clean = _textures(40, np.random.default_rng(7))
    frames, masks = _grey_mark_over(clean)
    n = len(frames)
    scores = {name: psnr(create_inpainter(name).inpaint(frames, masks, 0, n - 1), clean.astype(np.uint8), masks)
              for name in ("telea", "unblend")}  # fmt: skip
    assert scores["unblend"] > scores["telea"] + 6.0, scores


def test_an_opaque_mark_no_frame_uncovers_gets_no_blend_from_guesses():
    """Nothing lies under an opaque mark, and guesses from around it cannot tell its soft fringe
    finely enough to keep the mask's other pixels as they are: the mask is filled as a whole."""
    frames, masks = _grey_mark_over(_textures(40, np.random.default_rng(9)), grey=255, opacity=1.0)
    assert unblend_inpainter().analyse(frames, masks, 0, len(frames) - 1).blend is None


def test_over_a_still_picture_no_blend_is_fitted_on_guesses_from_around_the_mark():
    """Guesses from around the mark err the same way in every frame of a still shot, however its
    light changes: no fit averages that out, and none is made."""
    rng = np.random.default_rng(8)
    picture = 128 + (_textures(1, rng) - 128) * 3  # its detail spreads grey levels by about 55
    light = rng.uniform(-20, 20, (40, 1, 1, 1))
    still = np.repeat(picture, 40, axis=0) + light + rng.normal(0, 2, (40, 96, 160, 3))
    frames, masks = _grey_mark_over(np.clip(still, 0, 255))
    analysis = unblend_inpainter().analyse(frames, masks, 0, len(frames) - 1)
    assert analysis.blend is None


def test_a_blend_is_not_stretched_from_the_few_pixels_other_frames_showed():
    """A short pan, then a cut on every frame: other frames show the picture under a sliver of the
    mark (about 9 % of it). The blend is fitted there and on guesses from around the mark for the
    rest, not stretched from the sliver alone over the whole mark."""
    rng = np.random.default_rng(7)
    clean = _textures(40, rng)
    panned = _textures(1, rng, h=160)[0]
    for t in range(8):
        clean[t] = panned[2 * t : 2 * t + 96]
    frames, masks = _grey_mark_over(clean)
    engine = unblend_inpainter()
    analysis = engine.analyse(frames, masks, 0, len(frames) - 1)
    assert 0.02 < _seen_share(analysis.fills, masks) < 0.2
    out = engine.render(frames, masks, 0, len(frames) - 1, analysis)
    assert psnr(out, np.round(clean).astype(np.uint8), masks) > 38.0  # 31.2 dB fitted on the sliver alone


@pytest.mark.parametrize(("levels", "flattened"), [((0.4,), True), ((0.4, 0.55), False)])
def test_a_fit_is_taken_as_one_opacity_where_the_recovered_pictures_say_so(levels, flattened):
    """A fit on guessed pictures errs in patches (here: blobs of up to 0.1 of alpha). Taken as a
    mark of one opacity, a one-opacity mark comes back nearly exact; a mark of two near opacities
    keeps its fit, since flattening it leaves a letter's edges in every recovered picture."""
    from propainter.blend import _flattest

    rng = np.random.default_rng(3)
    alpha = _letters(levels)
    pictures = _textures(16, rng)
    frames = np.clip(alpha[..., None] * 120 + (1 - alpha[..., None]) * pictures + 0.5, 0, 255).astype(np.uint8)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, alpha.shape).astype(np.float32), (0, 0), 6)
    fitted = np.where(alpha > 0.02, alpha + 0.1 * blobs / np.abs(blobs).max(), 0.0).astype(np.float32)
    confident = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    chosen = _flattest(fitted, np.full(3, 120, np.float32), confident, list(frames))
    assert (not np.array_equal(chosen, fitted)) == flattened
    error = np.abs(chosen - alpha)[alpha > 0.02].mean()
    assert error < (0.01 if flattened else 0.05), error


def test_a_pair_of_frames_is_tracked_once_and_the_same_whichever_looks_first():
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (200, 320, 3), np.uint8), (5, 5), 0)
    frames = np.stack([texture[20:140, 10 + 3 * k : 170 + 3 * k] for k in range(12)])  # a pan, 3 px a frame
    masks = np.zeros(frames.shape[:3], bool)
    masks[:, 50:70, 60:100] = True

    def warp(a: np.ndarray) -> np.ndarray:
        return np.vstack([a, [0, 0, 1]])

    # refine_above < 0: every pair further apart than neighbours is tracked directly
    earlier_first, later_first = (Motion(frames, masks, 3, refine_above=-1.0) for _ in range(2))
    forward = earlier_first.between(2, 9)
    backward = earlier_first.between(9, 2)
    assert later_first.between(9, 2) is not None
    assert np.array_equal(later_first.between(9, 2), backward) and np.array_equal(later_first.between(2, 9), forward)
    assert len(earlier_first.direct) == 1  # the pair, tracked once for both targets
    assert np.allclose(warp(forward) @ warp(backward), np.eye(3), atol=1e-6)
    assert abs(forward[0, 2] + 21) < 0.5 and abs(forward[1, 2]) < 0.5  # 7 frames of 3 px to the left
