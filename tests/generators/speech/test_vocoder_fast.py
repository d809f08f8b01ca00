"""The CPU-fast vocoder: its inverse STFT frames as the mel front end does, it saves and loads,
it joins blocks without a seam, the converter runs with it, and its trainer resumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from generators.speech.modeling_vocoder import FastVocoder


def _tiny(**kw) -> FastVocoder:
    torch.manual_seed(0)
    return FastVocoder(dim=16, num_layers=2, mult=2, **kw).eval()


def test_shapes_and_compute():
    voc = _tiny()
    y = voc(torch.randn(2, 80, 37))
    assert y.shape == (2, 37 * 256)
    assert torch.isfinite(y).all()
    big = FastVocoder()
    # the shipped size: a hundredth of HiFi-GAN V1's 51 GFLOP per second of audio or less
    assert 0.1 < big.gflop_per_second() < 0.6


def test_inverse_stft_reconstructs_frames_of_the_mel_front_end():
    """A spectrum taken with the mel front end's framing (reflect padding of (n_fft - hop) / 2,
    frames every hop) comes back as the same samples: frame t belongs where the mel's frame t is."""
    voc = _tiny()
    n_fft, hop = 1024, 256
    t = np.arange(40 * hop) / 22050
    x = torch.from_numpy((0.3 * np.sin(2 * math.pi * 220 * t) + 0.1 * np.sin(2 * math.pi * 1375 * t))
                         .astype(np.float32))[None]
    pad = (n_fft - hop) // 2
    xp = torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(xp, n_fft, hop, window=torch.hann_window(n_fft), center=False, return_complex=True)
    assert spec.shape[-1] == 40  # one frame per hop, as the mel has
    y = voc.istft(spec)
    assert y.shape == x.shape
    inner = slice(n_fft, -n_fft)  # the ends lack overlapping frames
    assert torch.allclose(y[:, inner], x[:, inner], atol=1e-4)
    # one frame late would be 256 samples off: the error is then of the signal's own size
    late = voc.istft(torch.roll(spec, 1, dims=-1))
    assert (late[:, inner] - x[:, inner]).abs().max() > 0.1


def test_save_load_round_trip(tmp_path):
    voc = _tiny()
    voc.save_pretrained(tmp_path / "v")
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    assert cfg["dim"] == 16 and cfg["num_layers"] == 2
    back = FastVocoder.from_pretrained(str(tmp_path / "v")).eval()
    mel = torch.randn(1, 80, 20)
    with torch.inference_mode():
        assert torch.equal(voc(mel), back(mel))


@pytest.mark.parametrize("paths", [{}, {"level_path": True}, {"level_path": True, "mel_refine": 2}])
def test_blocks_join_without_a_seam(paths):
    """The converter vocodes in blocks with context on each side; the network's reach (7-frame
    kernels, the level's steps, the inverse STFT's overlap) is shorter than the context, so the
    blocks equal one pass over the whole mel."""
    from generators.speech.pipeline_speech import VOCODER_BLOCK, vocode

    torch.manual_seed(0)
    voc = FastVocoder(dim=32, num_layers=6, mult=2, **paths).eval()  # the shipped depth
    from generators.audio_features import MelSpectrogram

    mel_fn = MelSpectrogram()
    wav = np.random.default_rng(0).normal(0, 0.02, VOCODER_BLOCK * 256 * 3).astype(np.float32)
    blocks = vocode(voc, mel_fn, wav)
    with torch.inference_mode():
        whole = voc(mel_fn(torch.from_numpy(wav))[None])[0].numpy()
    assert blocks.shape == wav.shape
    assert np.abs(blocks - whole[: len(wav)]).max() < 1e-4 * np.abs(whole).max()


def test_mel_refine_pulls_the_output_mel_to_the_input_whatever_the_trunk():
    """The updates are fixed arithmetic: even an untrained trunk's output, whose mel is far from its
    input, comes out with the input's mel after a few of them; without them (``refine=False`` or
    ``mel_refine`` 0) the output is the trunk's own."""
    from generators.audio_features import MelSpectrogram

    mel_fn = MelSpectrogram()
    sr = 22050
    t = np.arange(sr) / sr
    x = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 30)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    mel = mel_fn(torch.from_numpy((0.05 * x).astype(np.float32)))[None]
    distances = []
    for steps in (0, 1, 3):
        voc = _tiny(mel_refine=steps)
        with torch.inference_mode():
            y = voc(mel)
            if steps:
                assert torch.equal(voc(mel, refine=False), _tiny()(mel))  # the trunk alone
        distances.append(float((mel_fn(y) - mel).abs().mean()))
    assert distances[0] > 1.0  # an untrained trunk: nothing like its input
    assert distances[1] < 0.5 * distances[0] and distances[2] < distances[1] < 0.25 * distances[0], distances


def test_the_level_path_makes_a_louder_input_a_louder_output():
    """With ``level_path`` the network is equivariant to the input's level by construction: the
    mel shifted by log g gives every output magnitude times g, whatever the weights; without it,
    the level must be inferred by the trunk (here, untrained, it is not followed)."""
    torch.manual_seed(0)
    mel = torch.randn(2, 80, 30) * 1.5 - 5.0
    for level_path in (True, False):
        voc = FastVocoder(dim=32, num_layers=2, mult=2, level_path=level_path).eval()
        with torch.inference_mode():
            a, b = voc.spectrum(mel).abs(), voc.spectrum(mel + math.log(4.0)).abs()
        ratio = torch.log(b / a)
        if level_path:
            assert float((ratio - math.log(4.0)).abs().max()) < 1e-4
        else:
            assert float((ratio - math.log(4.0)).abs().mean()) > 0.1


def test_a_stage_with_the_level_path_starts_from_one_without():
    from generators.speech.training_vocoder import widened_state

    old, new = _tiny(), FastVocoder(dim=16, num_layers=2, mult=2, level_path=True)
    new.load_state_dict(widened_state(old.state_dict(), new.state_dict()))
    w = new.embed.weight
    assert w.shape[1] == 82 and torch.equal(w[:, :80], old.embed.weight) and not w[:, 80:].any()
    assert torch.equal(new.head.weight, old.head.weight)
    with pytest.raises(ValueError, match="embed.weight"):
        widened_state(new.state_dict(), old.state_dict())  # channels are not dropped


def test_converter_runs_with_the_fast_vocoder(tiny_speech_pipeline, tmp_path, monkeypatch):
    import generators.speech.pipeline_speech as ps

    _tiny().save_pretrained(tmp_path / "fast")
    monkeypatch.setattr(ps, "FAST_VOCODER_DIR", tmp_path / "fast")
    tiny_speech_pipeline._fast_vocoder = None
    sr = 22050
    t = np.arange(int(1.2 * sr)) / sr
    wav = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    out = tiny_speech_pipeline(wav, sr, emotion="happy@0.8", num_inference_steps=2, vocoder="fast",
                               generator=torch.Generator().manual_seed(0))
    assert 0.7 < len(out.audio) / len(wav) < 1.4 and np.isfinite(out.audio).all()  # rate moves with emotion
    with pytest.raises(ValueError, match="vocoder must be one of hifigan, fast, world"):
        tiny_speech_pipeline(wav, sr, vocoder="griffin")
    tiny_speech_pipeline._fast_vocoder = None


def test_a_missing_fast_vocoder_says_how_to_make_one(tmp_path):
    from generators.speech.pipeline_speech import load_fast_vocoder

    with pytest.raises(FileNotFoundError, match="affect train vocoder"):
        load_fast_vocoder(tmp_path)


def test_distillation_losses_are_zero_on_the_target_and_see_phase():
    from generators.audio_features import MelSpectrogram
    from generators.speech.training_vocoder import vocoder_losses

    mel_fn = MelSpectrogram()
    t = np.arange(16 * 256) / 22050
    x = torch.from_numpy(np.sin(2 * np.pi * 300 * t).astype(np.float32))[None] * 0.3
    same = vocoder_losses(x, x, mel_fn)
    assert all(float(v) < 1e-4 for v in same.values())
    # the polarity flipped: the same magnitudes, every phase turned by half a turn; only the
    # phase-aware term sees it
    flipped = vocoder_losses(-x, x, mel_fn)
    assert float(flipped["stft"]) < 1e-4 and float(flipped["mel"]) < 1e-4
    assert float(flipped["phase"]) > 0.05


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="needs Debian's espeak-ng")
def test_training_runs_and_resumes(tmp_path):
    from configs import load_layered
    from generators.speech.training_vocoder import train_vocoder

    cfg = load_layered("configs/train/vocoder_tiny.yaml")
    cfg["data"]["cache"] = str(tmp_path / "cache")
    final = train_vocoder(cfg, max_steps=2, output_dir=str(tmp_path / "run"))
    assert (final / "config.json").is_file()
    assert json.loads((final / "training.json").read_text())["steps"] == 2
    final = train_vocoder(cfg, max_steps=4, output_dir=str(tmp_path / "run"))
    meta = json.loads((final / "training.json").read_text())
    assert meta["steps"] == 4 and meta["resumed_from_step"] == 2
    assert meta["data"]["kinds"].get("conversion", 0) > 0  # the converter's own mels are in the data
    FastVocoder.from_pretrained(str(final))


def test_a_recording_channel_changes_the_signal_within_range():
    from generators.speech.training_vocoder import channel

    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ys = [channel(x, np.random.default_rng(k)) for k in range(12)]
    assert all(y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all() for y in ys)
    assert all(np.abs(y).max() <= 1.0 for y in ys)
    levels = [20 * np.log10(np.std(y) / np.std(x)) for y in ys]
    assert -14 < min(levels) and max(levels) < 8 and np.ptp(levels) > 3  # a level change of -12..+6 dB
    # band limit, room and noise each come with probability 1/2: most draws change the spectrum
    # beyond the level (all three missing: 1 in 8)
    shape = np.abs(np.fft.rfft(x)) / np.std(x)
    changed = [np.abs(np.abs(np.fft.rfft(y)) / np.std(y) - shape).mean() > 1e-3 for y in ys]
    assert 7 <= sum(changed) <= 12


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="needs Debian's espeak-ng")
def test_channel_copies_join_the_data_and_a_second_stage_starts_from_the_first(tmp_path):
    from configs import load_layered
    from generators.speech.training_vocoder import train_vocoder

    cfg = load_layered("configs/train/vocoder_tiny.yaml")
    cfg["data"]["cache"] = str(tmp_path / "cache")
    first = train_vocoder(cfg, max_steps=2, output_dir=str(tmp_path / "first"))
    cfg["data"]["augment_copies"] = 1
    cfg["training"]["init_from"] = str(first)
    cfg["training"]["learning_rate"] = 0.0  # no update: the second stage's weights are the first's
    cfg["training"]["warmup_steps"] = 0
    second = train_vocoder(cfg, max_steps=1, output_dir=str(tmp_path / "second"))
    meta = json.loads((second / "training.json").read_text())
    kinds = meta["data"]["kinds"]
    assert kinds.get("channel-tts", 0) > 0 and kinds.get("copy-tts", 0) > 0
    assert len(list((tmp_path / "cache").glob("vocoder-data-*.pt"))) == 1  # the first stage's data reused
    a, b = (FastVocoder.from_pretrained(str(d)).state_dict() for d in (first, second))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_level_shift_is_the_mel_of_the_scaled_waveform():
    """The gain augmentation shifts the mel exactly as the front end sees the louder or quieter
    signal, floor included, and scales the targets by the same gain."""
    from generators.audio_features import MelSpectrogram
    from generators.speech.training_vocoder import level_shift

    rng = np.random.default_rng(0)
    t = np.arange(8192) / 22050
    x = 0.2 * np.sin(2 * np.pi * 180 * t) * (t < 0.2) + 0.01 * rng.standard_normal(len(t))  # speech, then near-silence
    wav = torch.from_numpy(np.stack([x, x, x])).float()
    mel_fn = MelSpectrogram()
    gains = np.array([-20.0, 0.0, 10.0])
    mel, w, r = level_shift(mel_fn(wav), wav, wav.clone(), gains)
    g = torch.tensor(10 ** (gains / 20), dtype=torch.float32)[:, None]
    assert torch.allclose(w, wav * g) and torch.allclose(r, wav * g)
    assert float((mel - mel_fn(wav * g)).abs().max()) < 1e-4
    assert float(mel.min()) >= math.log(1e-5) - 1e-6  # the floor holds


def test_gain_augmented_crops_vary_in_level_only(tmp_path):
    from generators.speech.training_vocoder import _Crops

    rng = np.random.default_rng(1)
    blob = {"mels": [rng.normal(-4, 1, (80, 40)).astype(np.float32)],
            "wavs": [rng.normal(0, 0.05, 40 * 256).astype(np.float32)], "reals": [None], "kinds": ["copy-tts"]}
    plain = _Crops(blob, 40, seed=0).draw(8)
    shifted = _Crops(blob, 40, seed=0, gain_db=(-20.0, 10.0)).draw(8)
    ratio = shifted[1].std(dim=1) / plain[1].std(dim=1)  # the one block, at 8 levels
    db = 20 * torch.log10(ratio)
    assert float(db.min()) >= -20.01 and float(db.max()) <= 10.01 and float(db.max() - db.min()) > 5
    assert torch.allclose(shifted[0] - plain[0], torch.log(ratio)[:, None, None], atol=1e-4)


def test_the_shipped_fast_vocoder_loads_small_and_fast():
    """The packaged weights: a few MB, the recipe's size, the same interface as HiFi-GAN."""
    from generators.speech.pipeline_speech import FAST_VOCODER_DIR, load_fast_vocoder

    weights = FAST_VOCODER_DIR / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 8e6
    voc = load_fast_vocoder()
    meta = json.loads((FAST_VOCODER_DIR / "training.json").read_text())
    assert meta["steps"] == meta["recipe"]["training"]["max_steps"]  # a whole recipe, not a partial run
    assert voc.hop == 256 and voc.config.dim == meta["recipe"]["model"]["dim"]
    with torch.inference_mode():
        y = voc(torch.full((1, 80, 40), -11.0))  # silence in, (near) silence out
    assert y.shape == (1, 40 * 256) and float(y.abs().max()) < 0.05
