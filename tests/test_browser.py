"""The web page in a real headless Chromium (Debian's, driven by Playwright): a person's flow from
upload to download, progress and the time left moving during a long segment, and no sideways
scrolling at 375 px."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import SLOW_PAN_BOX, longest_still
from tests.service import Service
from waterz.video import probe

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason="no Chromium at /usr/bin/chromium (apt-get install -y chromium; .ci/run does)"),
]  # fmt: skip
playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("web"), workers=2, env={"MIN_SEGMENTS": "2", "MIN_CHUNK_FRAMES": "12"})
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_upload_start_progress_and_download(service, browser, clips, tmp_path):
    clip = clips("pan_jump")
    page = browser.new_page(accept_downloads=True)
    base = f"http://127.0.0.1:{service.port}"
    page.goto(base + "/")
    assert page.get_by_role("button", name="Remove watermark").is_hidden()  # nothing to start yet
    page.get_by_label("Choose a video").set_input_files(str(clip.path))
    page.wait_for_selector("#video-info:not([hidden])")
    assert page.text_content("#info-frames") == str(clip.spec.frames)
    assert page.text_content("#info-fps") == "25 fps"
    assert page.text_content("#info-dims") == f"{clip.spec.width} × {clip.spec.height}"
    assert "task=" in page.url  # a reload resumes this job
    assert page.get_by_label("Find the watermark with").input_value() == "auto"
    assert page.get_by_label("Fill it in with").input_value() == "auto"
    page.select_option("#inpainter", "propainter")  # each engine's note: what it needs, its licences
    page.wait_for_function("document.getElementById('inpainter-about').textContent.includes('non-commercial')")
    assert "Not available here" in page.text_content("#inpainter-about")  # no CUDA device in this test
    page.select_option("#inpainter", "auto")
    page.get_by_role("button", name="Remove watermark").click()
    page.wait_for_selector("#progress-step:not([hidden])")
    link = page.get_by_role("link", name="Download the clean video")
    link.wait_for(state="visible", timeout=180_000)
    lanes = page.locator(".lane")
    assert lanes.count() >= 2  # one per segment, each with its worker
    assert set(page.locator(".lane-bar").all_text_contents()) <= {"worker1", "worker2"}
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "clean.mp4"
    download.value.save_as(saved)
    info = probe(saved)
    assert (info.frames, info.fps, info.has_audio) == (clip.spec.frames, clip.spec.fps, True)
    # the job survives a reload: the same page comes back done
    page.reload()
    page.get_by_role("link", name="Download the clean video").wait_for(state="visible", timeout=30_000)
    page.close()


def test_errors_show_the_api_sentence(service, browser, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{service.port}/")
    page.get_by_label("Choose a video").set_input_files(str(text))
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "'notes.mp4' is not a video file that can be decoded" in alert.text_content()
    page.goto(f"http://127.0.0.1:{service.port}/?task=0123abcd")
    alert.wait_for(state="visible")
    assert alert.text_content() == "No job has the id '0123abcd': job ids are 32 hexadecimal digits."
    page.close()


def test_no_sideways_scrolling_at_375_px(service, browser, clips):
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(f"http://127.0.0.1:{service.port}/")
    page.get_by_label("Choose a video").set_input_files(str(clips("pan_jump").path))
    page.wait_for_selector("#options-step:not([hidden])")
    page.click("#box-details summary")
    page.wait_for_function("document.getElementById('preview').complete")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    page.close()


def test_progress_and_the_time_left_move_during_a_long_segment(one_segment_service, browser, clips):
    """While one segment of 160 frames runs, the page's progress and its estimate of the time
    left change at least every 5 s, and the segment's lane fills."""
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{one_segment_service.port}/")
    page.get_by_label("Choose a video").set_input_files(str(clips("slow_pan").path))
    page.wait_for_selector("#options-step:not([hidden])")
    page.select_option("#inpainter", "temporal")
    page.click("#box-details summary")
    for field, value in zip(("x", "y", "w", "h"), SLOW_PAN_BOX.values()):
        page.fill(f"#box-{field}", str(value))
    page.get_by_role("button", name="Remove watermark").click()
    seen = []  # (time, progress text, time-left text, lane fill) while the segment runs
    link = page.get_by_role("link", name="Download the clean video")
    while not link.is_visible():
        if page.locator(".lane-bar.running").count():
            fill = page.eval_on_selector(".lane-fill", "e => parseFloat(e.style.width)")
            seen.append((time.monotonic(), page.text_content("#job-stage"), page.text_content("#job-eta"), fill))
        assert time.monotonic() - (seen[0][0] if seen else time.monotonic()) < 300
        page.wait_for_timeout(500)
    assert seen[-1][0] - seen[0][0] > 10, "the segment was too short to tell"
    still = [round(longest_still(seen, column), 1) for column in (1, 2, 3)]
    print(f"segment seen for {seen[-1][0] - seen[0][0]:.1f} s in {len(seen)} readings; longest unchanged "
          f"(progress shown, time left shown, lane fill): {still} s")  # fmt: skip
    assert max(still) <= 5.0, still
    assert all(text.startswith("Removing the watermark") for _, text, _, _ in seen[len(seen) // 4 :])
    assert any(left.startswith("About ") and left.endswith(" left") for _, _, left, _ in seen)
    fills = [fill for *_, fill in seen]
    assert fills == sorted(fills) and fills[-1] > 50
    assert page.text_content("#job-eta") == ""  # done: no time left to show
    page.close()
