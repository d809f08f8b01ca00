"""HiFi-GAN: our generator class reads the packaged weights and re-synthesises real speech."""

import numpy as np
import pytest
import torch
from torch import nn

from conditioning.audio import load_audio
from generators.speech.vocoder import (
    HiFiGANGenerator,
    MelSpectrogram,
    fold_weight_norm,
    load_hifigan,
)


def test_folding_weight_norm_matches_the_normed_convolution():
    conv = nn.utils.weight_norm(nn.Conv1d(3, 4, 5))  # the old API: the format of the checkpoints
    state = {"c." + k: v.detach() for k, v in conv.state_dict().items()}
    folded = fold_weight_norm(state)
    assert set(folded) == {"c.weight", "c.bias"}
    plain = nn.Conv1d(3, 4, 5)
    plain.load_state_dict({k[2:]: v for k, v in folded.items()})
    x = torch.randn(2, 3, 20)
    assert torch.allclose(plain(x), conv(x), atol=1e-6)


def test_output_length_is_frames_times_hop():
    g = HiFiGANGenerator(initial_channels=16).eval()
    with torch.inference_mode():
        y = g(torch.randn(1, 80, 7))
    assert y.shape == (1, 7 * 256) and y.abs().max() <= 1


def test_planar_layout_computes_the_same_waveform():
    """The channels-last 2-D layout (the CPU float32 default) and the plain 1-D convolutions
    give the same waveform, batch and all."""
    torch.manual_seed(0)
    g = HiFiGANGenerator(initial_channels=32).eval()
    mel = torch.randn(2, 80, 9) - 4
    with torch.inference_mode():
        flat, planar, auto = g(mel, planar=False), g(mel, planar=True), g(mel)
    assert planar.shape == flat.shape == (2, 9 * 256)
    assert flat.abs().max() > 1e-3  # a waveform, not silence
    assert torch.allclose(planar, flat, atol=1e-5)
    assert torch.equal(auto, planar)


def test_packaged_universal_weights_resynthesise_real_speech(real_clip):
    audio = load_audio(real_clip, target_sr=22050)
    mel = MelSpectrogram()
    m = mel(torch.from_numpy(audio.wav))
    with torch.inference_mode():
        y = load_hifigan("universal")(m[None])[0]
    m2 = mel(y)
    n = min(m.shape[1], m2.shape[1])
    err = (m[:, :n] - m2[:, :n]).abs().mean().item()
    # copy-synthesis keeps the log-mel within ~0.3 nats on average; an unloaded or wrongly
    # folded generator gives > 2
    assert err < 0.45, err
    assert np.isfinite(y.numpy()).all()


def test_a_loud_signal_is_vocoded_at_the_working_level_and_scaled_back(real_clip):
    """HiFi-GAN ends in a tanh: driven at -8 dBFS RMS it pressed 0.35 % of a real recording's
    samples against full scale and lost 2.5 dB. ``vocode`` runs it at VOCODER_LEVEL_DBFS at most and
    scales the result back, so a loud copy is the working-level copy times its gain, and it may
    exceed full scale (the pipeline's limiter, not the vocoder, then holds the peaks)."""
    from generators.speech.pipeline_speech import VOCODER_LEVEL_DBFS, vocode, vocoder_scale

    voc, mel = load_hifigan("universal"), MelSpectrogram()
    x = load_audio(real_clip, target_sr=22050).wav[: 22050 * 2]
    x = x / np.sqrt(np.mean(x.astype(np.float64) ** 2))  # RMS 1
    at_level = x * 10 ** (VOCODER_LEVEL_DBFS / 20)
    assert vocoder_scale(at_level) == 1.0 and vocoder_scale(at_level * 0.1) == 1.0
    gain = 10 ** (16 / 20)  # -8 dBFS RMS
    assert vocoder_scale(at_level * gain) == pytest.approx(gain, rel=1e-6)
    quiet = vocode(voc, mel, at_level.astype(np.float32))
    loud = vocode(voc, mel, (at_level * gain).astype(np.float32))
    assert np.abs(loud).max() > 1.0  # not squashed by the tanh
    np.testing.assert_allclose(loud / gain, quiet, atol=2e-3)  # float32 rounding of the scaling
