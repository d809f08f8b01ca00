"""The `affect` command: subcommands and the one error policy."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apps.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_emotions_lists_the_vocabulary(capsys):
    code, out, _ = run(capsys, "emotions")
    assert code == 0
    for name in (
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgusted",
        "surprised",
        "calm",
        "contempt",
    ):
        assert name in out
    assert "Accepted forms" in out


def test_emotions_parses_and_reports_the_mapping(capsys):
    code, out, _ = run(capsys, "emotions", "--json", "wistful")
    assert code == 0
    info = json.loads(out)
    assert info["dominant"] == "sad"
    assert any("packaged lexicon" in n for n in info["notes"])


def test_emotions_samples_a_curve(capsys):
    code, out, _ = run(capsys, "emotions", "sad@0.8 -> happy@1.0 over 16 bars")
    assert code == 0
    assert "at 8 bars:" in out and "at 16 bars: happy@1" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["emotions", "nonsense@7"],
        ["emotions", "happy@2"],
        ["emotions", "vad(2,0,0)"],
        ["emotions", ""],
        ["nosuchcommand"],
        ["emotions", "--nosuchflag"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("affect: error: ")
    assert "Traceback" not in err


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError):
        main(["--debug", "emotions", "nonsense@7"])


def test_models_lists_source_licence_and_presence(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {"all-MiniLM-L6-v2", "emotion-lexicon", "vad-anchors"} <= {r["name"] for r in rows}
    for r in rows:
        assert r["source"] and r["licence"] and r["role"]
        assert r["present"], r["name"]


def test_demo_writes_and_reports_files(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "-o", str(tmp_path / "demo"))
    assert code == 0
    data = json.loads((tmp_path / "demo" / "emotion_space.json").read_text())
    assert len(data["curve"]["per_bar"]) == 17
    assert str(tmp_path / "demo" / "emotion_space.json") in out


def test_demo_into_a_file_path_is_bad_input(capsys, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    code, _, err = run(capsys, "demo", "-o", str(target))
    assert code == 2 and "not a folder" in err


def test_installed_console_script():
    script = shutil.which("affect", path=str(Path(sys.executable).parent))
    assert script, "the `affect` console script is installed with the package"
    proc = subprocess.run(
        [script, "emotions", "nonsense@7"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown emotion 'nonsense'" in proc.stderr
