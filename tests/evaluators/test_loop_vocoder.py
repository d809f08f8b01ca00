"""The vocoder comparison on stand-in vocoders: a perfect copy, a dulled one and a clicking one."""

from types import SimpleNamespace

import numpy as np
import pytest

from evaluators.loop_speech import real_recordings
from evaluators.loop_vocoder import click_ratio, evaluate_vocoders, log_mel_distance


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


def test_the_comparison_ranks_the_vocoders_and_writes_a_page(tmp_path):
    report = evaluate_vocoders(_convert, _copy, tmp_path, real_recordings(2), ["angry"],
                               ["hifigan", "dull", "clicks"], keep_audio=False)
    v = report["vocoders"]
    assert v["hifigan"]["log_mel_distance_copy"] < 1e-6 < v["dull"]["log_mel_distance_copy"]
    assert v["clicks"]["max_click_ratio"] > 2 * v["hifigan"]["max_click_ratio"]
    assert report["against_hifigan"]["dull"]["log_mel_distance_ratio"] > 1e3  # against a perfect copy
    assert v["hifigan"]["speaker_cosine_min"] > 0.99  # the stand-in keeps the voice exactly
    page = (tmp_path / "report.html").read_text()
    assert "<figcaption>" in page and "data:image/png;base64," in page
    assert "/usr/share" not in page  # file names, not paths
