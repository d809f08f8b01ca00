"""Speech metrics against values computed by hand."""

import numpy as np
import pytest

from evaluators.metrics.speech import (
    SignalGuards,
    mel_cepstral_distortion,
    prosody_statistics,
    transcribe,
)
from evaluators.metrics.text import WordErrorRate

SR = 16000


def tone(f0=220.0, amp=0.5, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    # a harmonic-rich tone so the pitch tracker sees a voice-like source
    return (amp * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) / 1.5).astype(np.float32)


def test_prosody_statistics_of_a_known_tone():
    x = tone(220.0, amp=0.5)
    s = prosody_statistics(x, SR)
    assert abs(s["f0_median_hz"] - 220.0) < 3.0
    assert abs(s["f0_median_st"] - 24.0) < 0.25  # 220 Hz is two octaves above 55 Hz
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    assert abs(s["level_db"] - 20 * np.log10(rms)) < 0.2
    assert abs(s["active_seconds"] - 1.0) < 0.05
    quieter = prosody_statistics(x * 0.5, SR)
    assert abs((s["level_db"] - quieter["level_db"]) - 6.02) < 0.05


def test_signal_guards_count_by_hand():
    g = SignalGuards(ceiling_db=-1.0)
    g.update(np.array([0.5, -0.5]))  # -6.02 dB: fine
    g.update(np.array([1.0, 0.0]))  # clipped and over
    g.update(np.array([0.95, 0.0]))  # over -1 dBFS (0.891), not clipped
    g.update(np.array([np.nan, 0.0]))
    r = g.compute()
    assert (r["n"], r["nan"], r["clipped"], r["over_ceiling"]) == (4, 1, 1, 2)
    assert r["max_peak_db"] == pytest.approx(0.0, abs=1e-6)


def test_mcd_is_zero_for_identical_and_grows_with_change():
    x = tone(200.0, seconds=0.6) + 0.01 * np.random.default_rng(0).normal(size=int(0.6 * SR)).astype(np.float32)
    assert mel_cepstral_distortion(x, SR, x, SR) == pytest.approx(0.0, abs=1e-9)
    y = tone(200.0, seconds=0.6) * 0 + tone(500.0, seconds=0.6)
    assert mel_cepstral_distortion(x, SR, y, SR) > 1.0


def test_wer_on_known_strings():
    m = WordErrorRate()
    m.update("he was not an ill disposed young man", "he was not until disposed young man")
    # substitutions an->until, ill deleted: 2 edits over 8 words
    assert m.compute() == pytest.approx(2 / 8)


def test_transcribe_hears_real_speech():
    from pathlib import Path

    from conditioning.audio import load_audio

    clip = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav")
    a = load_audio(clip)
    m = WordErrorRate()
    m.update("he might even have been made amiable himself", transcribe(a.wav, a.sample_rate))
    assert m.compute() < 0.5
