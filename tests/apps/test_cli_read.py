"""`affect read`: any recording, MIDI file, photo or video -> the emotion read back, and the error
policy; `affect speech --check`: the conversion read back against its source."""

import json
import re
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from PIL import Image

from apps.cli import main
from conditioning.vocabulary import CATEGORIES

CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")


def affect(capsys, *argv) -> tuple[int, str, str]:
    """The command line in this process: (exit status, stdout, stderr)."""
    return (main(list(map(str, argv))), *capsys.readouterr())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real photographed portrait (scikit-image's astronaut, smiling), a short mp4 of it, and a
    slow, quiet, low minor-mode MIDI piece."""
    import imageio_ffmpeg
    from skimage import data

    folder = tmp_path_factory.mktemp("read")
    photo = folder / "portrait.png"
    Image.fromarray(data.astronaut()).save(photo)
    video = folder / "portrait.mp4"
    frame = np.ascontiguousarray(data.astronaut()[:, :, :3])
    writer = imageio_ffmpeg.write_frames(str(video), (frame.shape[1], frame.shape[0]), fps=25,
                                         macro_block_size=16)
    writer.send(None)
    for _ in range(10):
        writer.send(frame)
    writer.close()
    pm = pretty_midi.PrettyMIDI(initial_tempo=56)
    piano = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([57, 60, 64, 62, 60, 59, 57, 52] * 2):  # A minor, low, legato
        piano.notes.append(pretty_midi.Note(velocity=38, pitch=pitch, start=i * 1.0, end=i * 1.0 + 0.95))
        piano.notes.append(pretty_midi.Note(velocity=32, pitch=45, start=i * 1.0, end=i * 1.0 + 0.95))
    pm.instruments.append(piano)
    midi = folder / "slow_minor.mid"
    pm.write(str(midi))
    return {"photo": photo, "video": video, "midi": midi}


def _probabilities_ok(d: dict) -> None:
    assert set(d["probabilities"]) == set(CATEGORIES)
    assert sum(d["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert d["category"] == max(d["probabilities"], key=d["probabilities"].get)


def test_a_recording_is_read_alone_and_against_the_speakers_neutral_speech(capsys):
    code, out, err = affect(capsys, "read", CLIP, "--json")
    assert code == 0, err
    alone = json.loads(out)
    assert alone["recognizer"] == "speech-prosody-v1" and "reference" not in alone
    _probabilities_ok(alone)
    assert all(-1 <= alone[a] <= 1 for a in ("valence", "arousal", "dominance"))
    # against itself the speaker-normalised reading sees no change from the speaker's own voice
    code, out, err = affect(capsys, "read", CLIP, "--reference", CLIP, "--json")
    assert code == 0, err
    against = json.loads(out)
    assert against["reference"] == [str(CLIP)] and against["category"] == "neutral"
    code, out, _ = affect(capsys, "read", CLIP, "--reference", CLIP)
    assert out.count("\n") == 1 and "against 1 neutral clip of the speaker) reads neutral" in out


def test_the_second_speech_judge_reads_the_same_file(capsys):
    code, out, err = affect(capsys, "read", CLIP, "--recognizer", "speech-cues-v1", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["recognizer"] == "speech-cues-v1"
    _probabilities_ok(d)


def test_midi_photo_and_video_go_to_their_media_recognizers(capsys, files):
    code, out, err = affect(capsys, "read", files["midi"], files["photo"], files["video"], "--json")
    assert code == 0, err
    midi, photo, video = json.loads(out)
    assert [midi["recognizer"], photo["recognizer"], video["recognizer"]] == [
        "music-features-v1", "face-fer-v1", "face-fer-v1"]
    for d in (midi, photo, video):
        _probabilities_ok(d)
    assert midi["valence"] < 0 and midi["arousal"] < 0  # slow, quiet, low, minor
    assert photo["category"] == "happy"  # she smiles
    assert video["frames"] == 2 and video["category"] == "happy"  # every 5th of 10 frames
    code, out, _ = affect(capsys, "read", files["photo"])
    assert re.fullmatch(r".*portrait\.png: face-fer-v1 reads happy \(\d\.\d\d; then .*\n", out)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["notes.txt"], "cannot read 'notes.txt': give a recording"),
        (["missing.wav"], "no such file: 'missing.wav'"),
        (["junk.wav"], "cannot read 'junk.wav' as audio"),
        (["junk.mp4"], "cannot decode the video 'junk.mp4'"),
        (["grey.png"], "no face found in 'grey.png'"),
        ([str(CLIP), "--recognizer", "music-features-v1"], "music-features-v1 cannot read a recording"),
        ([str(CLIP), "--recognizer", "nope"], "unknown recognizer 'nope'"),
        ([str(CLIP), "--recognizer", "speech-cues-v1", "--reference", str(CLIP)], "--reference"),
        (["song.mid", "--reference", str(CLIP)], "--reference"),
        (["song.mid", "--recognizer", "hub:some/model"], "not MIDI"),
        ([str(CLIP), "--recognizer", "hub:no-such-org/no-such-model"], "cannot load 'hub:no-such-org"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("not a recording\n")
    Path("junk.wav").write_bytes(bytes(range(256)) * 12)
    Path("junk.mp4").write_bytes(bytes(range(256)) * 12)
    Path("song.mid").write_bytes(b"MThd")
    Image.new("RGB", (200, 200), (128, 128, 128)).save("grey.png")
    code, out, err = affect(capsys, "read", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("affect: error:") and match in err


def test_speech_check_reads_the_conversion_back(capsys, tmp_path):
    out = tmp_path / "angry.wav"
    code, stdout, err = affect(capsys, "speech", CLIP, "--emotion", "angry@1", "-o", out, "--check")
    assert code == 0, err
    line = stdout.splitlines()[-1]
    m = re.fullmatch(r"read back by speech-prosody-v1: against the source (\w+) (\d\.\d\d)(?:, angry "
                     r"(\d\.\d\d))?; the clip alone (\w+) (\d\.\d\d)(?:, angry (\d\.\d\d))?; speaker "
                     r"cosine to the source (-?\d\.\d\d)", line)
    assert m, line
    assert m.group(1) in CATEGORIES and m.group(4) in CATEGORIES
    assert float(m.group(7)) > 0.7  # the same speaker
