"""`affect speech` through the command line: a real conversion, and the error policy."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apps.cli import main

CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_speech_converts_a_real_recording(capsys, tmp_path):
    out = tmp_path / "angry.wav"
    code, stdout, err = run(capsys, "speech", CLIP, "--emotion", "angry@0.7", "-o", out)
    assert code == 0, err
    data, sr = sf.read(out)
    assert sr == 22050 and len(data) > sr and np.abs(data).max() <= 0.892
    assert "angry@0.7" in stdout and "F0" in stdout


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 50)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    long = tmp_path / "long.wav"
    sf.write(long, np.full(8000 * 130, 0.1, np.float32), 8000)
    return {"empty": empty, "text": text, "silent": silent, "long": long}


@pytest.mark.parametrize(
    "which,extra,match",
    [
        ("empty", [], "empty"),
        ("text", [], "cannot read"),
        ("silent", [], "silent"),
        ("long", [], "maximum"),
        (None, ["--emotion", "blorp"], "unknown emotion"),
        (None, ["--emotion", "angry@3"], "intensity"),
        (None, ["--intensity", "-1"], "intensity"),
        (None, ["--vocoder-precision", "float16"], "--vocoder-precision: invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(capsys, tmp_path, which, extra, match):
    src = _bad_files(tmp_path)[which] if which else CLIP
    out = tmp_path / "out.wav"
    args = ["speech", src, "-o", out] + (extra if "--emotion" in extra else ["--emotion", "sad"] + extra)
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("affect: error:") and match in err
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_output_type_is_checked(capsys, tmp_path):
    code, _, err = run(capsys, "speech", CLIP, "--emotion", "sad", "-o", tmp_path / "x.mp4")
    assert code == 2 and ".wav" in err


def test_a_non_mp3_named_mp3_gets_one_line_at_the_process_level(capfd, tmp_path):
    """libsndfile's mp3 decoder writes notes straight to the process's stderr (file descriptor 2);
    the refusal is still one line there, and says what was wrong."""
    bad = tmp_path / "song.mp3"
    bad.write_text("hello\n")
    out = tmp_path / "out.wav"
    code = main(["speech", str(bad), "--emotion", "sad", "-o", str(out)])
    _, err = capfd.readouterr()
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and err.startswith("affect: error: cannot read")
    assert "no audio stream" in err
