"""The vocoder comparison on stand-in vocoders: a perfect copy, a dulled one and a clicking one."""

from types import SimpleNamespace

import numpy as np
import pytest

from evaluators.loop_speech import real_recordings
from evaluators.loop_vocoder import (
    click_ratio,
    evaluate_vocoders,
    harmonic_contrast,
    log_mel_distance,
    log_spectrum_distance,
    pesq_wideband,
)


def _dull(wav, sr):
    """A one-pole low-pass: the top of the spectrum lost, as a poor vocoder loses it."""
    from scipy.signal import lfilter

    return lfilter([0.3], [1, -0.7], wav).astype(np.float32)


def _copy(wav, sr, vocoder):
    out = np.asarray(wav, np.float32).copy()
    if vocoder == "dull":
        out = _dull(out, sr)
    if vocoder == "clicks":
        out[:: sr // 4] += 0.9  # four clicks a second
    return out, sr


def _convert(wav, sr, emotion, vocoder, generator=None):
    return SimpleNamespace(audio=_copy(wav, sr, vocoder)[0], sample_rate=sr)


def test_the_distance_and_the_clicks_see_what_they_should():
    rec = real_recordings(1)[0][0]
    from conditioning.audio import load_audio

    a = load_audio(rec)
    assert log_mel_distance(a.wav, a.sample_rate, a.wav, a.sample_rate) == pytest.approx(0.0, abs=1e-6)
    assert log_mel_distance(_dull(a.wav, a.sample_rate), a.sample_rate, a.wav, a.sample_rate) > 0.3
    clicked = _copy(a.wav, a.sample_rate, "clicks")[0]
    assert click_ratio(clicked) > 2 * click_ratio(a.wav)
    # PESQ (the quality extra, installed by the set-up): the recording against itself near the
    # scale's top (4.64); with noise 15 dB down, graded far below; a gentle low-pass hardly moves
    # it (PESQ compensates linear filtering by design), which the log-mel distance does see
    x = a.wav.astype(np.float32)
    noisy = x + np.random.default_rng(0).normal(0, 1, len(x)).astype(np.float32) * x.std() * 10 ** (-15 / 20)
    same = pesq_wideband(x, a.sample_rate, x, a.sample_rate)
    assert same > 4.4 and pesq_wideband(noisy, a.sample_rate, x, a.sample_rate) < same - 2.0
    assert pesq_wideband(_dull(x, a.sample_rate), a.sample_rate, x, a.sample_rate) > same - 0.5


def test_the_log_spectrum_distance_sees_the_harmonics_that_the_mel_bands_average():
    """A voiced sound whose every STFT bin is replaced by the mean of its mel band (the band
    levels kept, the harmonics flattened into noise-like bands) is near in log-mel and far in the
    log spectrum, farther than a plain level error of the same log-mel distance: the second measure sees what matching the 80 mel bands does not guarantee."""
    import torch

    from generators.audio_features import MelSpectrogram

    sr = 22050
    t = np.arange(2 * sr) / sr
    x = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 40)).astype(np.float32) * 0.05
    assert log_spectrum_distance(x, sr, x, sr) == pytest.approx(0.0, abs=1e-6)
    fb = MelSpectrogram().fb  # (80, 513)
    spread = (fb / fb.sum(0, keepdim=True).clamp_min(1e-12)).T  # (513, 80): each bin's share of its bands
    win = torch.hann_window(1024)
    spec = torch.stft(torch.from_numpy(x), 1024, 256, window=win, return_complex=True)
    flat = spread @ ((fb @ spec.abs()) / fb.sum(1, keepdim=True))  # each bin: its bands' weighted mean
    y = torch.istft(torch.polar(flat, spec.angle()), 1024, 256, window=win, length=len(x)).numpy()
    mel = log_mel_distance(y, sr, x, sr)
    louder = x * np.float32(np.exp(mel))  # a plain level error of the same log-mel distance
    assert log_mel_distance(louder, sr, x, sr) == pytest.approx(mel, abs=0.05)
    assert log_spectrum_distance(y, sr, x, sr) > 1.5 * log_spectrum_distance(louder, sr, x, sr)
    # the harmonic contrast: the flattened copy's harmonics are gone, the louder copy's kept
    assert harmonic_contrast(louder, sr) == pytest.approx(harmonic_contrast(x, sr), rel=0.01)
    assert harmonic_contrast(y, sr) < 0.75 * harmonic_contrast(x, sr)


def test_the_comparison_ranks_the_vocoders_and_writes_a_page(tmp_path):
    report = evaluate_vocoders(_convert, _copy, tmp_path, real_recordings(2), ["angry"],
                               ["hifigan", "dull", "clicks"], keep_audio=False)
    v = report["vocoders"]
    assert v["hifigan"]["log_mel_distance_copy"] < 1e-6 < v["dull"]["log_mel_distance_copy"]
    assert v["hifigan"]["log_spectrum_distance_copy"] < 1e-6 < v["dull"]["log_spectrum_distance_copy"]
    assert v["clicks"]["pesq_wb_copy"] < v["hifigan"]["pesq_wb_copy"] - 2.0  # four clicks a second
    assert v["hifigan"]["harmonic_contrast_copy"] == pytest.approx(report["harmonic_contrast_source"])
    assert v["clicks"]["max_click_ratio"] > 2 * v["hifigan"]["max_click_ratio"]
    assert report["against_hifigan"]["dull"]["log_mel_distance_ratio"] > 1e3  # against a perfect copy
    assert v["hifigan"]["speaker_cosine_min"] > 0.99  # the stand-in keeps the voice exactly
    page = (tmp_path / "report.html").read_text()
    assert "<figcaption>" in page and "data:image/png;base64," in page
    assert "/usr/share" not in page  # file names, not paths
