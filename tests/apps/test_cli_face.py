"""`affect face` through the command line: a real talking head, and the error policy."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from apps.cli import main

CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def portrait_png(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("face") / "portrait.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def test_face_writes_a_playable_mp4(capsys, tmp_path, portrait_png):
    from generators.face.video import plays, probe_video

    out = tmp_path / "happy.mp4"
    code, stdout, err = run(capsys, "face", portrait_png, "--audio", CLIP, "--emotion", "happy@0.8",
                            "--face-resolution", "128", "-o", out)
    assert code == 0, err
    info = probe_video(out)
    seconds = sf.info(CLIP).duration
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.fps) == (256, 256, 25)
    assert abs(info.duration_video - seconds) <= 1 / 25 and abs(info.duration_audio - seconds) < 0.03
    assert plays(out) and "happy@0.8" in stdout
    assert not list(tmp_path.glob(".*part*"))


def _bad(tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300, 3), 120, np.uint8)).save(blank)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((30, 30, 3), 120, np.uint8)).save(tiny)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    long = tmp_path / "long.wav"
    sf.write(long, np.full(8000 * 65, 0.1, np.float32), 8000)
    return {"blank": blank, "tiny": tiny, "text": text, "empty": empty, "long": long}


@pytest.mark.parametrize("image,audio,extra,match", [
    ("blank", None, [], "no face"),
    ("tiny", None, [], "too small"),
    ("text", None, [], "could not read"),
    (None, "empty", [], "empty"),
    (None, "long", [], "maximum"),
    (None, None, ["--emotion", "blorp"], "unknown emotion"),
    (None, None, ["--face-resolution", "20"], "face-resolution"),
])
def test_bad_input_one_line_exit_2_no_output(capsys, tmp_path, portrait_png, image, audio, extra, match):
    bad = _bad(tmp_path)
    out = tmp_path / "out.mp4"
    argv = ["face", bad[image] if image else portrait_png, "--audio", bad[audio] if audio else CLIP,
            "--emotion", "happy", "-o", out, *extra]
    code, stdout, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and match in err, err
    assert "Traceback" not in err and not out.exists()


def test_no_face_is_one_line_in_a_fresh_process(tmp_path):
    """In a new process the face mesh's runtime starts up and logs to file descriptor 2 (which
    capsys does not see); the refusal is still the only line the user gets."""
    import subprocess
    import sys

    blank = _bad(tmp_path)["blank"]
    out = tmp_path / "still.png"
    proc = subprocess.run([sys.executable, "-m", "apps.cli", "face", str(blank), "--emotion", "sad",
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("affect: error: no face found")


def test_output_must_be_mp4(capsys, tmp_path, portrait_png):
    code, _, err = run(capsys, "face", portrait_png, "--audio", CLIP, "--emotion", "happy", "-o",
                       tmp_path / "x.avi")
    assert code == 2 and ".mp4" in err


@pytest.mark.parametrize("medium", ["face", "speech"])
def test_eval_sweeps_take_category_names_only(capsys, tmp_path, medium):
    """A free word parses as a spec, but a sweep scores P(category): it is refused up front, with
    one line, before any model is loaded or any folder made."""
    out = tmp_path / "report"
    code, _, err = run(capsys, "eval", medium, "--emotions", "grumpy", "-o", out)
    assert code == 2 and "accepted: neutral, happy" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_eval_face_panel_size_is_checked_first(capsys, tmp_path):
    out = tmp_path / "report"
    code, _, err = run(capsys, "eval", "face", "--panel", "101", "-o", out)
    assert code == 2 and "--panel must be in [0, 100]" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_eval_face_refuses_a_portrait_without_a_face_before_any_work(capsys, tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(blank)
    out = tmp_path / "report"
    code, _, err = run(capsys, "eval", "face", "--portrait", blank, "-o", out)
    assert code == 2 and "no face found" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_face_png_writes_a_still_of_the_expression(capsys, tmp_path, portrait_png):
    """No audio, -o a .png: the portrait holding the expression; neutral is the relaxed face and
    sad moves the mouth away from it."""
    paths = {}
    for emotion in ("neutral", "sad@1.0"):
        paths[emotion] = tmp_path / f"{emotion.split('@')[0]}.png"
        code, stdout, err = run(capsys, "face", portrait_png, "--emotion", emotion, "--face-resolution", "128",
                                "-o", paths[emotion])
        assert code == 0, err
        assert "a still of" in stdout
    a, b = (np.asarray(Image.open(paths[e]), dtype=float) for e in ("neutral", "sad@1.0"))
    assert a.shape == b.shape == (256, 256, 3)
    assert np.abs(a - b).mean() > 0.5
    assert not list(tmp_path.glob(".*part*"))


def test_face_still_and_video_refusals(capsys, tmp_path, portrait_png):
    code, _, err = run(capsys, "face", portrait_png, "--emotion", "sad -> happy over 2 s", "-o", tmp_path / "x.png")
    assert code == 2 and "not a curve" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "face", portrait_png, "--emotion", "happy", "-o", tmp_path / "x.mp4")
    assert code == 2 and "--audio is required" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
