"""The embedded default checkpoint ships with the package and loads offline."""

import io
import json

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


def test_default_loads_the_shipped_weights(tmp_path):
    """What ``from_pretrained()`` holds is what the embedded folder stores: every UNet tensor
    (stored in float16, loaded as float32) and the emotion mapping (written back out, the same
    tensors and the same attribute statistics)."""
    from safetensors.torch import load_file

    pipe = MusicPipeline.from_pretrained()
    stored = load_file(DEFAULT_DIR / "unet" / "diffusion_pytorch_model.safetensors")
    loaded = pipe.unet.state_dict()
    assert sorted(loaded) == sorted(stored)
    for name, weight in stored.items():
        assert torch.equal(loaded[name], weight.float()), name
    pipe.save_pretrained(tmp_path)
    shipped = load_file(DEFAULT_DIR / "emotion" / "emotion_directions.safetensors")
    written = load_file(tmp_path / "emotion" / "emotion_directions.safetensors")
    assert sorted(written) == sorted(shipped)
    for name, tensor in shipped.items():
        assert torch.equal(written[name], tensor), name
    attrs = "emotion/attributes.json"
    assert json.loads((tmp_path / attrs).read_text()) == json.loads((DEFAULT_DIR / attrs).read_text())
