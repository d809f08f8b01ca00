"""The embedded default checkpoint ships with the package and loads offline."""

import io
import json
from pathlib import Path

import torch

from generators.music import MusicPipeline
from generators.music.pipeline_music import DEFAULT_DIR


def test_default_is_small_and_complete():
    files = {
        p.relative_to(DEFAULT_DIR).as_posix(): p.stat().st_size
        for p in DEFAULT_DIR.rglob("*")
        if p.is_file()
    }
    assert "unet/diffusion_pytorch_model.safetensors" in files
    assert "emotion/attributes.json" in files and "training.json" in files
    assert sum(files.values()) < 8 * 2**20
    meta = json.loads((DEFAULT_DIR / "training.json").read_text())
    assert meta["corpus_segments"] > 10000 and meta["steps"] > 1000


def test_default_generates_a_piece():
    import pretty_midi

    pipe = MusicPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.dtype == torch.float32
    out = pipe(
        emotion="happy@0.8",
        num_bars=2,
        num_inference_steps=4,
        output_type="midi",
        generator=torch.Generator().manual_seed(0),
    )
    pm = pretty_midi.PrettyMIDI(io.BytesIO(out.midi))
    melody = [n for n in out.notes if n.track == 0]
    assert len(melody) >= 2 and len(pm.instruments) == 2
    assert Path(DEFAULT_DIR).is_dir()
