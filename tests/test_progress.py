"""Progress that moves: an engine reports how far a segment has come while it runs, the job's
progress is the share of its frames cleaned, and `eta_s` comes from the rates measured so far;
against the real service, a long segment moves the status at least every few seconds."""

from __future__ import annotations

import time

import pytest

from propainter import create_inpainter
from tests.conftest import SLOW_PAN_BOX, longest_still
from waterz.core.stop import Stopped, checkpoint, phase, report_to, stop_when
from waterz.jobs.progress import SEGMENTS, PhaseWork, eta_s, in_band, measured_rates, segments_share


def _seg(index: int, start: int, end: int, done: int, started_at: float | None = None) -> dict:
    return {"index": index, "start_frame": start, "end_frame": end, "frames_done": done, "started_at": started_at}


def test_the_job_s_share_is_of_frames_not_of_segments():
    segments = [_seg(0, 0, 9, 10), _seg(1, 10, 99, 0)]  # the short one done, the long one not begun
    assert segments_share(segments) == pytest.approx(0.1)
    assert in_band(SEGMENTS, 0.1) == pytest.approx(22.0)
    assert segments_share([]) == 0.0


def test_eta_from_the_rates_measured_so_far():
    now, pixels = 1000.0, 100 * 50
    detect, seg, enc = PhaseWork("detect", 200, 200, now - 30), PhaseWork("segments", 160, 0, None), PhaseWork(
        "encode", 200, 0, None)  # fmt: skip
    # segments not begun and nothing measured before on this service: unknown
    assert eta_s("PROGRESS", [detect, seg, enc], pixels, now, {}) is None
    # 60 of 160 frames in 10 s since the first segment started (the job's workers together): 100
    # left at 6 a second; the encode chunks at the service's measured rate (200 frames at 4 a
    # second); joining them at its measured rate (1 s)
    seg = PhaseWork("segments", 160, 60, now - 10)
    rates = {"encode_pps": 4 * pixels, "finalize_pps": 200 * pixels}
    assert eta_s("PROGRESS", [detect, seg, enc], pixels, now, rates) == pytest.approx(100 / 6 + 50 + 1, abs=0.1)
    # once encoding, its own rate: 150 frames left at 10 a second
    done = PhaseWork("segments", 160, 160, now - 30)
    encoding = PhaseWork("encode", 200, 50, now - 5)
    assert eta_s("PROGRESS", [detect, done, encoding], pixels, now, rates) == pytest.approx(15 + 1, abs=0.1)
    # a rate from its first 0.2 s is noise: the measured one stands in
    settling = PhaseWork("encode", 200, 2, now - 0.2)
    assert eta_s("PROGRESS", [detect, done, settling], pixels, now, rates) == pytest.approx(198 / 4 + 1, abs=0.1)
    assert eta_s("PROGRESS", [detect, done, settling], pixels, now, {}) is None
    # a later phase no job has measured yet is left out: the segments' 100 frames alone
    assert eta_s("PROGRESS", [detect, seg, enc], pixels, now, {}) == pytest.approx(100 / 6, abs=0.1)
    assert eta_s("SUCCESS", [detect, seg, enc], pixels, now, {}) == 0.0
    assert eta_s("FAILURE", [detect, seg, enc], pixels, now, rates) is None
    assert eta_s("PENDING", [detect, seg, enc], pixels, now, rates) is None


def test_a_job_s_measured_rates_are_of_its_phases_from_first_start_to_last_end():
    tasks = [{"step": "detect:0", "started_at": 0.0, "finished_at": 4.0},
             {"step": "detect:1", "started_at": 1.0, "finished_at": 5.0},
             {"step": "seg:0", "started_at": 5.0, "finished_at": 15.0},
             {"step": "encode:0", "started_at": 15.0, "finished_at": 17.0}]  # fmt: skip
    rates = measured_rates(tasks, {"detect": 100, "segments": 50, "encode": 100}, pixels=10)
    assert rates == {"detect_pps": 200.0, "segments_pps": 50.0, "encode_pps": 500.0}


def test_phases_map_checkpoints_onto_one_rising_fraction():
    heard: list[float] = []
    with report_to(heard.append):
        with phase(0.0, 0.5):
            for k in range(5):
                checkpoint(k, 5)
        with phase(0.5, 1.0):
            checkpoint(1, 2)
    assert heard == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75])
    checkpoint(1, 2)  # outside report_to: nothing to tell, nothing raised
    with stop_when(lambda: True), pytest.raises(Stopped, match="stopped after 3 of 7"):
        checkpoint(3, 7)


@pytest.mark.parametrize("name", ["temporal", "unblend", "telea"])
def test_an_engine_reports_its_segment_rising_to_the_end(name, clips):
    from waterz.pipeline.run import detect, plan, segment_inputs
    from waterz.video import probe

    info = probe(clips("pan_jump").path)
    marks = detect(info, "box", ["14,14,116,44@0-23"])
    seg, crops, masks = next(segment_inputs(info, marks, plan(marks, info)))
    heard: list[float] = []
    with report_to(heard.append):
        create_inpainter(name).inpaint(crops, masks, seg.start_frame - seg.context_start,
                                       seg.end_frame - seg.context_start)  # fmt: skip
    assert len(heard) >= seg.length // 2
    assert heard == sorted(heard) and heard[0] < 0.1 and heard[-1] > 0.85


@pytest.mark.slow
def test_a_long_segment_moves_the_status_every_few_seconds(one_segment_service, clips):
    """One segment of 160 frames on one worker: while it runs, its `frames_done`, the job's
    progress and `eta_s` change at least every 5 s, and the estimate is of the right size."""
    service, clip = one_segment_service, clips("slow_pan")
    task_id = service.upload(clip.path).json()["task_id"]
    service.http.post("/api/process", json={"task_id": task_id, "inpainter": "temporal",
                                            "boxes": [SLOW_PAN_BOX]}).raise_for_status()  # fmt: skip
    seen = []  # (time, progress, eta_s, frames_done) while the segment runs
    while True:
        status = service.http.get(f"/api/status/{task_id}").json()
        if status["state"] in ("SUCCESS", "FAILURE"):
            break
        segs = status["metadata"]["segments"]
        if segs and segs[0]["started_at"] and not segs[0]["finished_at"]:
            seen.append((time.monotonic(), status["progress"], status["eta_s"], segs[0]["frames_done"]))
        time.sleep(0.25)
    ended = time.monotonic()
    assert status["state"] == "SUCCESS", status.get("error")
    still = [round(longest_still(seen, column), 1) for column in (1, 2, 3)]
    print(f"segment seen for {seen[-1][0] - seen[0][0]:.1f} s in {len(seen)} readings; progress {seen[0][1]} -> "
          f"{seen[-1][1]}; longest unchanged (progress, eta_s, frames_done): {still} s")  # fmt: skip
    assert seen[-1][0] - seen[0][0] > 10, "the segment was too short to tell"
    assert max(still) <= 5.0, still
    assert [s[3] for s in seen] == sorted(s[3] for s in seen) and seen[-1][3] > 0.6 * clip.spec.frames
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)
    middle = seen[len(seen) // 2]
    actual = ended - middle[0]
    # The estimate takes the rate so far to hold; the temporal engine's frames get cheaper through
    # a segment (its later frames reuse the motion its earlier ones tracked), so at the middle it
    # is high: 26.2 s against 10.5 left, on this machine alone (docs/benchmarks.md, Scaling).
    assert middle[2] is not None and 0.4 * actual <= middle[2] <= 3 * actual, (middle[2], actual)
    assert status["eta_s"] == 0.0 and status["metadata"]["segments"][0]["frames_done"] == clip.spec.frames
