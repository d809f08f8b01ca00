"""`affect studio` in a browser: Debian's headless chromium driven by Playwright's Python package
(pointed at /usr/bin/chromium; Playwright's own browser download is never used). A real recording
is uploaded and converted to angry@0.8, music generated, a face animated, a scene made, a file
read, a ladder run, an error shown; each click-to-result time is measured and printed (pytest -s),
and a screenshot of each tab is saved (the test's folder, copied to /tmp/studio_shots).

Skipped only when chromium or playwright is missing (`.ci/setup --test` installs both)."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import pytest


def _missing() -> str | None:
    if not Path("/usr/bin/chromium").is_file():
        return "no /usr/bin/chromium (Debian's chromium: `.ci/setup --test` installs it)"
    for module, what in (("playwright", "Playwright's Python package (the [studio-test] extra)"),
                         ("gradio", "gradio (the [studio] extra)")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (`.ci/setup --test` installs it)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")  # 3.0 s
LONGER = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav")
SHOTS = Path("/tmp/studio_shots")
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio_shots")
    yield folder
    SHOTS.mkdir(parents=True, exist_ok=True)
    for png in folder.glob("*.png"):
        shutil.copyfile(png, SHOTS / png.name)
    if TIMES:
        print("\nstudio click-to-result times (s, in the browser, models already loaded):")
        for name, seconds in TIMES.items():
            print(f"  {name:<28} {seconds:6.2f}")


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    import soundfile as sf

    wav, sr = sf.read(LONGER, dtype="float32")
    path = tmp_path_factory.mktemp("studio_line") / "line_4s.wav"
    sf.write(path, wav[: 4 * sr], sr)
    return path


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    import apps.studio  # noqa: F401  (the offline environment before gradio loads)
    from apps.jobs import Models
    from apps.studio.app import launch
    from apps.studio.handlers import Studio
    from apps.studio.job import free_port

    models = Models()
    t = time.perf_counter()
    for key in (("speech",), ("music",), ("face",), ("recognizer:speech-prosody-v1", "speech"),
                ("recognizer:music-features-v1", "music"), ("recognizer:music-audio-v1", "music"),
                ("recognizer:face-fer-v1", "face")):
        with models.use(*key):
            pass
    print(f"\nmodels loaded in {time.perf_counter() - t:.1f} s (once, shared by every request)")
    demo, url = launch(Studio(tmp_path_factory.mktemp("studio_root"), models), "127.0.0.1", free_port(),
                       quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(url)
        page.wait_for_selector("#voice-run")
        yield page
        browser.close()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _upload(page, component: str, path: Path) -> None:
    page.locator(f"#{component} input[type=file]").first.set_input_files(str(path))


def _run(page, name: str, button: str, done: str, timeout_s: float = 180) -> float:
    """Click ``button`` and wait until ``done`` (a JS expression) holds; the time between."""
    t = time.perf_counter()
    page.click(f"#{button}")
    page.wait_for_function(done, timeout=timeout_s * 1000, polling=100)
    TIMES[name] = time.perf_counter() - t
    print(f"\n{name}: {TIMES[name]:.2f} s from click to result")
    return TIMES[name]


def _text_has(selector: str, text: str) -> str:
    return f"(document.querySelector({selector!r}) || {{innerText: ''}}).innerText.includes({text!r})"


def _files(page, component: str) -> str:
    """The names in a file list (shown as stem and suffix on two lines)."""
    return page.inner_text(f"#{component}").replace("\n.", ".")


def _download(page, component: str) -> str:
    return page.locator(f"#{component} a[data-testid=download-link]").first.get_attribute("href") or ""


def test_voice_converts_an_uploaded_recording_to_angry(page, shots):
    _upload(page, "voice-recording", CLIP)
    page.wait_for_selector("#voice-recording audio", state="attached")
    for name in ("sad", "angry"):  # choose through the dropdown, as a person does
        page.locator("#voice-category input").click()
        page.locator(f"#voice-category li[role=option][aria-label={name}]").click()
        page.wait_for_function(_text_has("#voice-emotion-line", f"-> {name}@0.8"))
    intensity = page.locator("#voice-intensity input[type=number]")
    intensity.fill("0.8")
    intensity.press("Enter")
    page.wait_for_function(_text_has("#voice-emotion-line", "-> angry@0.8"))
    _run(page, "Voice (3 s recording)", "voice-run", _text_has("#voice-summary", "against the source"))
    assert _download(page, "voice-out").endswith("voice.wav")
    summary = page.inner_text("#voice-summary")
    assert "angry@0.8" in summary and "seed 0" in summary and "plain reading" in summary
    assert page.locator("#voice-spectrograms img").count() == 1
    assert "voice.provenance.json" in _files(page, "voice-files")
    page.screenshot(path=str(shots / "1_voice.png"), full_page=True)


def test_music_generates_16_bars_with_audio(page, shots):
    _tab(page, "Music")
    _run(page, "Music (16 bars + audio)", "music-run", _text_has("#music-summary", "the MIDI"))
    assert _download(page, "music-out").endswith("music.wav")
    assert "music.mid" in _files(page, "music-files")
    assert page.locator("#music-roll img").count() == 1
    page.screenshot(path=str(shots / "2_music.png"), full_page=True)


def test_face_animates_the_portrait_speaking_a_4_s_clip(page, shots, line):
    _tab(page, "Face")
    _upload(page, "face-speech", line)
    page.wait_for_selector("#face-speech audio", state="attached")
    _run(page, "Face (4 s clip)", "face-run", _text_has("#face-summary", "frames"))
    src = page.locator("#face-out video").first.get_attribute("src") or ""
    assert src.endswith("face.mp4"), src
    page.screenshot(path=str(shots / "3_face.png"), full_page=True)


def test_scene_makes_voice_face_and_music_in_one_mp4(page, shots, line):
    _tab(page, "Scene")
    _upload(page, "scene-recording", line)
    page.wait_for_selector("#scene-recording audio", state="attached")
    _run(page, "Scene (4 s line)", "scene-run", _text_has("#scene-summary", "scene.mp4"), timeout_s=300)
    src = page.locator("#scene-out video").first.get_attribute("src") or ""
    assert src.endswith("scene.mp4"), src
    assert "cue.mid" in _files(page, "scene-files")
    page.screenshot(path=str(shots / "4_scene.png"), full_page=True)


def test_read_reads_a_recording(page, shots):
    _tab(page, "Read")
    _upload(page, "read-file", CLIP)
    page.wait_for_function(_text_has("#read-file", CLIP.name))
    _run(page, "Read (3 s recording)", "read-run", _text_has("#read-summary", "speech-prosody-v1"))
    assert page.locator("#read-plot img").count() == 1
    page.screenshot(path=str(shots / "5_read.png"), full_page=True)


def test_the_ladder_runs_five_intensities(page, shots):
    _tab(page, "Intensity ladder")
    _upload(page, "ladder-recording", CLIP)
    page.wait_for_selector("#ladder-recording audio", state="attached")
    _run(page, "Ladder (voice, 5 x 3 s)", "ladder-run", _text_has("#ladder-summary", "ladder of"), timeout_s=300)
    for k in range(5):
        assert _download(page, f"ladder-out-{k}").endswith(".wav")
    assert page.locator("#ladder-plot img").count() == 1
    page.screenshot(path=str(shots / "6_ladder.png"), full_page=True)


def test_an_error_shows_the_job_layers_line(page, shots):
    from apps.jobs import JobError, SpeechJob

    with pytest.raises(JobError) as info:
        SpeechJob(CLIP, "sad -> happy over 3 lightyears").validate()
    _tab(page, "Voice")
    page.locator("#voice-emotion-mode label", has_text="Curve").click()
    page.locator("#voice-curve textarea").first.fill("sad -> happy over 3 lightyears")
    page.click("#voice-run")
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    text = toast.inner_text()
    assert str(info.value) in " ".join(text.split()), text
    assert "Traceback" not in text
    # the previous request's result (the angry conversion above) is cleared, not left beside the error
    page.wait_for_function("!document.querySelector('#voice-summary').innerText.includes('against the source')")
    assert page.locator("#voice-out a[data-testid=download-link]").count() == 0
    assert page.locator("#voice-spectrograms img").count() == 0
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(800)  # the toast slides in
    page.screenshot(path=str(shots / "7_error.png"))
