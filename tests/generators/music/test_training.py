"""`affect train music` on a tiny recipe: corpus cache, training, checkpoints, resume, export."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from configs import config_path, load_layered
from generators.music.corpus import Corpus, build_corpus
from generators.music.mapping import AttributeSpace
from generators.music.pipeline_music import MusicPipeline
from generators.music.training import fit_mapping_from_folder, read_labels, train_music


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    cfg = load_layered(config_path("train/music_tiny.yaml"))
    cfg["data"]["cache"] = str(tmp_path_factory.mktemp("cache") / "corpus.npz")
    return cfg


def test_corpus_is_read_from_music21_and_cached(tiny_cfg):
    d = tiny_cfg["data"]
    corpus = build_corpus(
        d["cache"],
        d["collections"],
        d["max_segments_per_work"],
        d["max_files"],
        workers=1,
        progress=False,
    )
    assert len(corpus) > 5 and corpus.rolls.shape[1:] == (4, 64, 64)
    assert set(np.unique(corpus.sources)) <= {"bach", "ryansMammoth"}
    assert corpus.rolls[:, 1].any(axis=(1, 2)).all()  # every segment has melody frames
    again = Corpus.load(d["cache"])
    assert np.array_equal(again.rolls, corpus.rolls) and np.allclose(
        again.attributes, corpus.attributes
    )


def test_train_checkpoint_resume_and_export(tiny_cfg, tmp_path):
    cfg = dict(tiny_cfg)
    cfg["export"] = {"dir": str(tmp_path / "exported"), "fp16": True}
    # A run shorter than the recipe's max_steps is kept in its folder and not exported.
    train_music(cfg, output_dir=str(tmp_path / "run"), max_steps=2)
    assert (tmp_path / "run" / "final").is_dir() and not (tmp_path / "exported").exists()
    final = train_music(cfg, output_dir=str(tmp_path / "run"))  # resumes at step 2 to the recipe's 4
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step-0000002", "step-0000004"]
    # Resume: two more steps continue from step 4.
    train_music(cfg, output_dir=str(tmp_path / "run"), max_steps=6)
    assert (tmp_path / "run" / "checkpoints" / "step-0000006").is_dir()
    pipe = MusicPipeline.from_pretrained(tmp_path / "exported")
    assert pipe.unet.dtype == torch.float32  # stored in float16, loaded as float32
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        emotion="calm",
        num_bars=1,
        num_inference_steps=2,
        output_type="midi",
        generator=torch.Generator().manual_seed(0),
    )
    assert out.midi.startswith(b"MThd")
    assert final.is_dir()


def _write_labelled(folder: Path, pipe_like_space: AttributeSpace):
    from generators.music.render import INSTRUMENTATION, write_midi
    from generators.music.representation import Note

    folder.mkdir()
    rows = []
    for i, (label, tempo, pitches) in enumerate(
        [
            ("happy", 150, [60, 64, 67, 72]),
            ("happy", 145, [62, 66, 69, 74]),
            ("sad", 60, [57, 60, 64, 57]),
            ("sad", 62, [55, 58, 62, 55]),
        ]
    ):
        notes = [Note(2 * k, 2, p, 0) for k, p in enumerate(pitches * 4)]
        write_midi(
            folder / f"{i}.mid",
            notes,
            tempo_per_bar=[tempo] * 2,
            velocity_per_bar=[80] * 2,
            articulation_per_bar=[1.0] * 2,
            instrumentation=INSTRUMENTATION["neutral"],
        )
        rows.append({"file": f"{i}.mid", "emotion": label})
    with (folder / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "emotion"])
        w.writeheader()
        w.writerows(rows)


def test_fit_mapping_from_labelled_midi(tmp_path, space):
    _write_labelled(tmp_path / "labelled", space)
    assert [lab for _, lab in read_labels(tmp_path / "labelled")] == [
        "happy",
        "happy",
        "sad",
        "sad",
    ]
    model = fit_mapping_from_folder(tmp_path / "labelled", space)
    assert model.categories == ["happy", "sad"]
    from generators.music.representation import ATTRIBUTES

    tempo = ATTRIBUTES.index("tempo")
    # No neutral pieces: directions run from the mean; happy is the fast side.
    assert model.directions["happy"][tempo] > 0 > model.directions["sad"][tempo]


def test_emopia_file_names_and_label_errors(tmp_path, space):
    _write_labelled(tmp_path / "x", space)
    emopia = tmp_path / "emopia"
    emopia.mkdir()
    shutil.copy(tmp_path / "x" / "0.mid", emopia / "Q1_abc_0.mid")
    shutil.copy(tmp_path / "x" / "2.mid", emopia / "Q3_def_1.mid")
    assert [lab for _, lab in read_labels(emopia)] == ["happy", "sad"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no labelled MIDI"):
        read_labels(empty)
