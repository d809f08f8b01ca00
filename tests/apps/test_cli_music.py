"""`affect music` and `affect train` through the command line: outputs and the error policy."""

import pytest

from apps.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_music_writes_midi_and_wav(capsys, tmp_path):
    mid, wav = tmp_path / "a.mid", tmp_path / "a.wav"
    code, out, _ = run(
        capsys,
        "music",
        "--emotion",
        "sad@0.8",
        "--bars",
        "2",
        "--seed",
        "3",
        "--steps",
        "3",
        "-o",
        str(mid),
        "--wav",
        str(wav),
    )
    assert code == 0, out
    assert mid.read_bytes().startswith(b"MThd") and wav.read_bytes().startswith(b"RIFF")
    assert "minor" in out and str(wav) in out


@pytest.mark.parametrize(
    "args,match",
    [
        (["--emotion", "nonsense@7"], "unknown emotion"),
        (["--emotion", "sad", "--bars", "0"], "--bars must be in"),
        (["--emotion", "sad", "--bars", "65"], "--bars must be in"),
        (["--emotion", "sad", "--fix", "tempo=fast"], "needs a number"),
        (["--emotion", "sad", "--fix", "loudness=3"], "--fix takes NAME=VALUE"),
    ],
)
def test_music_bad_input_one_line_exit_2_no_file(capsys, tmp_path, args, match):
    target = tmp_path / "out.mid"
    code, _, err = run(capsys, "music", *args, "-o", str(target))
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_music_unwritable_output_and_bad_seed(capsys, tmp_path):
    code, _, err = run(capsys, "music", "--emotion", "sad", "-o", str(tmp_path / "no" / "x.mid"))
    assert code == 2 and "does not exist" in err
    seed = tmp_path / "seed.mid"
    seed.write_bytes(b"garbage")
    code, _, err = run(
        capsys, "music", "--emotion", "sad", "--seed-midi", str(seed), "-o", str(tmp_path / "x.mid")
    )
    assert code == 2 and "not a readable standard MIDI" in err
    assert not (tmp_path / "x.mid").exists()


def test_train_bad_config(capsys, tmp_path):
    code, _, err = run(capsys, "train", "music", "--config", str(tmp_path / "none.yaml"))
    assert code == 2 and "no config file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [1, 2\n")
    code, _, err = run(capsys, "train", "music", "--config", str(bad))
    assert code == 2 and "not valid YAML" in err


def test_music_on_a_device_that_is_not_here(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():  # the check below is about machines without a GPU
        bad = "cuda:99"
    else:
        bad = "cuda"
    code, _, err = run(
        capsys, "music", "--emotion", "sad", "--device", bad, "-o", str(tmp_path / "x.mid")
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "device" in err
    code, _, err = run(
        capsys, "music", "--emotion", "sad", "--device", "banana", "-o", str(tmp_path / "x.mid")
    )
    assert code == 2 and "unknown device 'banana'" in err
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_is_neither_a_checkpoint_nor_a_hub_model_is_one_line(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "music", "--emotion", "sad", "--bars", "2", "--model", str(empty),
                       "-o", str(tmp_path / "x.mid"))
    assert code == 2 and "is not a music checkpoint" in err and len(err.strip().splitlines()) == 1
    # a hub id with the hub offline (the default): the last line says what is accepted
    code, _, err = run(capsys, "music", "--emotion", "sad", "--bars", "2", "--model", "someone/nothing-here",
                       "-o", str(tmp_path / "x.mid"))
    assert code == 2 and "no hub model of that name could be loaded" in err.strip().splitlines()[-1]
    assert "Traceback" not in err and not (tmp_path / "x.mid").exists()
