"""Regenerate the README's screenshots of the web page: empty, two workers processing, done.

Starts the real service (private Redis, API, two workers) and drives Debian's headless Chromium:

    python docs/make_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.service import Service  # noqa: E402
from waterz.synth import ClipSpec, MarkSpec, make_clip  # noqa: E402

SPEC = ClipSpec(width=480, height=272, frames=150, motion="pan", source="chelsea",
                mark=MarkSpec(text="Sora", scale=1.0, opacity=0.6,
                              positions=((0, 30, 30), (50, 300, 60), (100, 120, 180))))  # fmt: skip


def main() -> None:
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = make_clip(work / "sora-like.mp4", SPEC)
        service = Service(work / "svc", workers=2, env={"MIN_SEGMENTS": "4", "MIN_CHUNK_FRAMES": "12"})
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1000, "height": 900})
                page.goto(f"http://127.0.0.1:{service.port}/")
                page.screenshot(path=out / "page-empty.png", full_page=True)
                page.get_by_label("Choose a video").set_input_files(str(clip.path))
                page.wait_for_selector("#options-step:not([hidden])")
                page.get_by_role("button", name="Remove watermark").click()
                # wait until both workers run a segment at the same moment
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    if page.locator(".lane-bar.running").count() >= 2:
                        break
                    time.sleep(0.2)
                time.sleep(1.0)
                page.screenshot(path=out / "page-working.png", full_page=True)
                page.get_by_role("link", name="Download the clean video").wait_for(state="visible", timeout=300_000)
                # frame 60: the mark sits at the right; put the divider through it
                page.locator("#split").fill("72")
                page.evaluate("""() => new Promise((done) => {
                    const vids = [document.getElementById('before'), document.getElementById('after')];
                    let ready = 0;
                    for (const v of vids) { v.addEventListener('seeked', () => { if (++ready === 2) done(); });
                                            v.currentTime = 2.4; }
                })""")
                page.screenshot(path=out / "page-done.png", full_page=True)
                browser.close()
        finally:
            service.close()
    print("wrote docs/page-empty.png, docs/page-working.png, docs/page-done.png")


if __name__ == "__main__":
    main()
