"""The job's split into chunks that run side by side (`waterz.pipeline.fanout`)."""

import numpy as np

from waterz.core.geometry import Box, Mark
from waterz.pipeline.fanout import Chunk, chunk_count, load_marks, merge_marks, save_marks, split, waits_for
from waterz.pipeline.plan import Segment


def test_chunks_cover_every_frame_once_in_near_equal_parts():
    for total, count in ((132, 2), (289, 3), (10, 4), (1, 2), (1800, 7)):
        chunks = split(total, count, min_frames=1)
        assert [c.start for c in chunks[1:]] == [c.stop for c in chunks[:-1]]
        assert chunks[0].start == 0 and chunks[-1].stop == total
        assert max(c.length for c in chunks) - min(c.length for c in chunks) <= 1
    assert len(split(100, 8, min_frames=40)) == 2  # no chunk under min_frames
    assert chunk_count(1800, 2, 300) == 6 and chunk_count(132, 2, 300) == 2 and chunk_count(50, 0, 300) == 1


def test_each_frame_takes_its_marks_from_the_chunk_that_owns_it():
    a, b = Mark.rectangle(Box(1, 2, 3, 4)), Mark.rectangle(Box(5, 6, 7, 8))
    first, second = Chunk(0, 0, 5), Chunk(1, 5, 10)
    lo0, hi0 = first.seen(10, 2)
    lo1, hi1 = second.seen(10, 2)
    assert (lo0, hi0, lo1, hi1) == (0, 7, 3, 10)
    marks = merge_marks([(first, lo0, [[a]] * (hi0 - lo0)), (second, lo1, [[b]] * (hi1 - lo1))], 10)
    assert [m[0] is a for m in marks] == [True] * 5 + [False] * 5


def test_an_encode_chunk_waits_for_the_segments_that_clean_its_frames():
    seg = [Segment(0, 10, 49, Box(0, 0, 8, 8), 0, 60), Segment(1, 46, 79, Box(0, 0, 8, 8), 34, 91)]
    chunks = split(120, 3)
    assert [waits_for(c, seg) for c in chunks] == [[0], [0, 1], []]


def test_marks_written_and_read_back_keep_frames_shapes_and_sharing(tmp_path):
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    a, b = Mark(Box(10, 20, 6, 4), mask), Mark.rectangle(Box(0, 0, 2, 2))
    save_marks(tmp_path / "m.npz", [[a], [], [a, b], [a]], first=7)
    first, marks = load_marks(tmp_path / "m.npz")
    assert first == 7 and [len(m) for m in marks] == [1, 0, 2, 1]
    assert marks[0][0] is marks[3][0] and marks[0][0].box == a.box and np.array_equal(marks[0][0].mask, mask)
    assert marks[2][1].box == b.box and marks[2][1].mask.all()
