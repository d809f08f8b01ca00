"""One interface for every recognizer; at least two independent ones per landed medium."""

import numpy as np
import pytest

from evaluators.recognizers import RECOGNIZERS, load_recognizer, recognizers_for
from evaluators.recognizers.base import Recognizer, va_probabilities
from evaluators.recognizers.music_audio import MusicAudioRecognizer
from evaluators.recognizers.speech import SpeechCueRecognizer

SR = 22050


def test_every_registered_recognizer_loads_and_has_the_interface():
    for name, info in RECOGNIZERS.items():
        rec = load_recognizer(name)
        assert isinstance(rec, Recognizer), name
        assert rec.name == name and rec.medium == info.medium and rec.licence
    assert len(recognizers_for("music")) >= 2 and len(recognizers_for("speech")) >= 2
    with pytest.raises(ValueError, match="unknown recognizer"):
        load_recognizer("nope")


def test_va_probabilities_peak_at_the_nearest_anchor():
    p = va_probabilities(1.0, 0.5)
    assert abs(sum(p.values()) - 1) < 1e-9 and max(p, key=p.get) == "happy"
    assert max(va_probabilities(-0.6, -0.6), key=lambda k: va_probabilities(-0.6, -0.6)[k]) == "sad"


def _music(bpm, major, amp, seconds=6.0):
    """Piano-like plucks on a chord arpeggio at ``bpm`` (eighth notes)."""
    t = np.arange(int(seconds * SR)) / SR
    third = 4 if major else 3
    notes = [60, 60 + third, 67, 72]
    step = 30.0 / bpm
    x = np.zeros_like(t)
    for k in range(int(seconds / step)):
        f = 440 * 2 ** ((notes[k % 4] - 69) / 12)
        s = int(k * step * SR)
        seg = t[: len(t) - s]
        x[s:] += np.exp(-seg * 6) * sum(np.sin(2 * np.pi * f * h * seg) / h for h in (1, 2, 3))
    return (amp * x / np.abs(x).max()).astype(np.float32)


def test_music_audio_recognizer_reads_mode_and_pace():
    rec = MusicAudioRecognizer()
    bright = rec(_music(150, True, 0.7), SR)
    dark = rec(_music(66, False, 0.15), SR)
    assert bright.features["mode_major"] == 1.0 and dark.features["mode_major"] == 0.0
    assert bright.features["onset_rate"] == pytest.approx(5.0, abs=0.6)  # eighths at 150 BPM
    assert dark.features["onset_rate"] == pytest.approx(2.2, abs=0.4)
    assert bright.valence > dark.valence and bright.arousal > dark.arousal
    assert bright.category in {"happy", "surprised"} and dark.category in {"sad", "calm"}


def test_speech_cue_recognizer_hears_effort():
    from evaluators.recognizers.speech import FEATURES

    rec = SpeechCueRecognizer()
    calm = np.zeros(len(FEATURES))
    f = dict(zip(FEATURES, range(len(FEATURES))))
    calm[f["loud_mean_db"]], calm[f["alpha_ratio"]], calm[f["hammarberg"]] = -32, -20, 26
    tense = calm.copy()
    tense[f["loud_mean_db"]], tense[f["alpha_ratio"]], tense[f["hammarberg"]] = -16, -8, 10
    assert rec.read_features(tense).arousal > rec.read_features(calm).arousal
    assert rec.read_features(tense).recognizer == "speech-cues-v1"
