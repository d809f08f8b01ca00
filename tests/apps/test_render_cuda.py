"""`affect render` on CUDA (runs where a GPU is present; the CPU suite covers the same code paths
in float32 and, slowly, float16): float16 denoisers by default, jobs batched through them, one
worker per GPU when there are several."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from apps.render import render

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CARD = Path("/usr/share/pocketsphinx/test/data/cards/001.wav")
PORTRAIT = Path(__file__).resolve().parents[2] / "configs" / "render" / "portrait.jpg"


def _jobs(tmp_path: Path) -> Path:
    lines = []
    for i, e in enumerate(["angry@0.9", "sad@0.9", "happy@0.9", "calm@0.9"]):
        lines.append(f"  - {{id: s{i}, medium: speech, input: {CARD}, emotion: {e}, seed: {i}, output: s/{i}.wav}}")
        lines.append(f"  - {{id: f{i}, medium: face, portrait: {PORTRAIT}, audio: {CARD}, emotion: {e}, seed: {i}, "
                     f"output: f/{i}.mp4, options: {{face_resolution: 128}}}}")
        lines.append(f"  - {{id: m{i}, medium: music, emotion: {e}, seed: {i}, output: m/{i}.mid, options: {{bars: 4}}}}")
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n" + "\n".join(lines) + "\n")
    return path


def _models(out: Path) -> dict:
    db = sqlite3.connect(str(out / "manifest.sqlite"))
    rows = {r[0]: (json.loads(r[1]), json.loads(r[2])) for r in db.execute("SELECT id, models, timings FROM jobs")}
    db.close()
    return rows


def test_float16_batches_on_cuda_render_what_float32_on_the_cpu_does(tmp_path):
    path = _jobs(tmp_path)
    cpu = render(path, tmp_path / "cpu", quiet=True, echo=lambda *_: None)
    gpu = render(path, tmp_path / "gpu", device="cuda", batch_size=4, quiet=True, echo=lambda *_: None)
    assert cpu.done == gpu.done == 12 and gpu.failed == 0
    rows = _models(tmp_path / "gpu")
    for job in ("s0", "f0", "m0"):
        model, timings = rows[job][0][0], rows[job][1]
        assert model["precision"] == "float16" and str(model["device"]).startswith("cuda")
        assert timings["batch_size"] == 4
    assert rows["m0"][0][0]["attention"] in ("xformers", "sdpa")
    for i in range(4):
        x, _ = sf.read(tmp_path / "cpu" / "s" / f"{i}.wav")
        y, _ = sf.read(tmp_path / "gpu" / "s" / f"{i}.wav")
        assert x.shape == y.shape and np.isfinite(y).all()
        assert (tmp_path / "gpu" / "m" / f"{i}.mid").read_bytes().startswith(b"MThd")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_several_gpus_get_one_worker_each(tmp_path):
    summary = render(_jobs(tmp_path), tmp_path / "out", device="cuda", quiet=True, echo=lambda *_: None)
    assert summary.done == 12
    devices = {m[0][0]["device"] for m in _models(tmp_path / "out").values()}
    assert devices == {f"cuda:{i}" for i in range(torch.cuda.device_count())}  # every GPU had a worker
