"""`affect eval all`'s page in a real browser: Debian's headless chromium driven by Playwright's
Python package (the studio's tooling). The page of a tiny two-medium sweep is opened from disk;
the test checks what a reader sees first, that every plot decodes and has a caption, that every
table's rows are as wide as its header, that no raw JSON or absolute path is in the text, and
saves a full-page screenshot (the test's folder, copied to ``AFFECT_SCREENSHOTS`` when set).

Skipped only when chromium or playwright is missing (`.ci/setup --test` installs both)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from evaluators.loop_all import evaluate_all

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file():
        return "no /usr/bin/chromium (Debian's chromium: `.ci/setup --test` installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright's Python package is not installed (`.ci/setup --test` installs it)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def test_the_page_reads_well_in_a_browser(tiny_music, tiny_speech_pipeline, tmp_path):
    from playwright.sync_api import sync_playwright

    def speech(wav, sr, **kw):
        return tiny_speech_pipeline(wav, sr, num_inference_steps=1, vocoder="world", **kw)

    sweep = {"music": {"emotions": ["happy", "sad"], "intensities": [0.0, 1.0], "seeds": [0], "top_seeds": [0, 1],
                       "num_bars": 2},
             "speech": {"emotions": ["angry", "sad"], "intensities": [0.0, 1.0], "recordings": 1,
                        "top_recordings": 2},
             "cross": {"specs": ["happy@1", "sad@1"]}}
    evaluate_all(tmp_path, {"music": tiny_music, "speech": speech}, sweep)
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((tmp_path / "report.html").as_uri())
        # what a reader sees first: the title, then one verdict per medium, above the fold
        assert page.locator("h1").inner_text().startswith("AffectStudio: closed-loop report")
        verdicts = page.locator("ul.verdicts li")
        assert verdicts.count() == 2
        for i, medium in enumerate(("Music", "Speech")):
            item = verdicts.nth(i)
            assert item.inner_text().startswith(f"{medium}: ") and "\u00b1" in item.inner_text()
            assert item.bounding_box()["y"] < 900
        # every plot decodes and carries a caption
        figures = page.locator("figure")
        assert figures.count() == page.locator("img").count() == 8
        for i in range(figures.count()):
            fig = figures.nth(i)
            assert fig.locator("img").evaluate("img => img.complete && img.naturalWidth > 100")
            assert len(fig.locator("figcaption").inner_text()) > 30
        # every table row is as wide as its header (colspans counted)
        widths = page.evaluate("""() => [...document.querySelectorAll('table')].map(t =>
            [...t.rows].map(r => [...r.cells].reduce((n, c) => n + c.colSpan, 0)))""")
        for rows in widths:
            assert len(set(rows)) == 1, rows
        text = page.locator("body").inner_text()
        assert '{"' not in text and "':" not in text  # no raw JSON or Python dicts
        for root in ("/tmp/", "/usr/", "/root/", "/home/", str(tmp_path)):
            assert root not in text, root
        assert "n = 4" in text  # the sample size beside the accuracy (music: 2 emotions x 2 seeds)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("AFFECT_SCREENSHOTS"):
        out = Path(os.environ["AFFECT_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / "eval_all_page.png")
