"""The studio's parts that need no server: what the emotion control's values mean, a reading
turned into an emotion (cross-modal transfer), the scene's bars and mix. No gradio needed."""

from __future__ import annotations

import numpy as np
import pytest

from apps.common import JobError
from apps.studio.emotion import Control, control_text, reading_text
from apps.studio.scene import bars_to_cover, mix_under, rms
from conditioning import parse_emotion


@pytest.mark.parametrize("control, text", [
    (Control("category", "angry", "sad", 0.7, 0.8), "angry@0.8"),
    (Control("category", "neutral", "sad", 0.7, 0.8), "neutral"),
    (Control("mixture", "happy", "surprised", 0.6, 1.0), "(0.6*happy+0.4*surprised)@1"),
    (Control("mixture", "happy", "happy", 0.6, 0.5), "happy@0.5"),
    (Control("mixture", "happy", "sad", 0.0, 0.5), "sad@0.5"),
    (Control("curve", curve=" sad@0.8 -> angry@0.8 over 3 s "), "sad@0.8 -> angry@0.8 over 3 s"),
    (Control("words", words="wistful", intensity=1.2), "wistful@1.2"),
    (Control("words", words="furious@0.5", intensity=1.2), "furious@0.5"),
])
def test_the_control_means_one_emotion_text_the_parser_reads(control, text):
    assert control_text(control) == text
    parse_emotion(text)


@pytest.mark.parametrize("control, message", [
    (Control("sideways"), "emotion mode must be one of"),
    (Control("category", intensity=2.0), r"intensity must be a number in \[0, 1.5\]"),
    (Control("category", category="grumpy"), "category must be one of"),
    (Control("mixture", category_b=None), "category_b must be one of"),
    (Control("curve", curve="  "), "write a curve"),
    (Control("words", words=""), "write a word"),
    (Control("reference"), "taken from a reference"),
])
def test_a_bad_control_is_one_line(control, message):
    with pytest.raises(JobError, match=message):
        control_text(control)


def test_a_reading_becomes_the_mixture_of_its_two_strongest_categories():
    probs = {"neutral": 0.2, "angry": 0.6, "sad": 0.15, "happy": 0.05}
    text = reading_text(probs)
    assert text == "(0.8*angry+0.2*sad)@0.75"
    spec = parse_emotion(text)
    assert spec.dominant == "angry" and abs(spec.intensity - 0.75) < 1e-9
    assert reading_text(probs, scale=2.0).endswith("@1.5")  # the cap
    assert reading_text({"neutral": 0.97, "sad": 0.02, "angry": 0.01}) == "neutral"
    assert reading_text({"neutral": 0.1, "calm": 0.85, "sad": 0.05}) == "calm@0.85"  # a tiny second is left out


def test_the_cue_covers_the_speech_from_its_tempo_plan():
    assert bars_to_cover([120.0] * 64, 4.0, 64) == 3  # 2 s a bar: 2 bars and a spare
    assert bars_to_cover([60.0] * 64, 4.1, 64) == 3  # 4 s a bar: 2 bars and a spare
    assert bars_to_cover([240.0, 60.0] + [60.0] * 62, 4.5, 64) == 3  # 1 s + 4 s
    assert bars_to_cover([200.0] * 64, 600.0, 64) == 64


def test_the_mix_sets_the_cue_under_the_voice_and_keeps_the_peaks():
    sr = 22050
    t = np.arange(3 * sr) / sr
    voice = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    music = np.stack([np.sin(2 * np.pi * 440 * np.arange(8 * 44100) / 44100)] * 2, axis=1).astype(np.float32)
    mix, how = mix_under(voice, sr, music, 44100, -12.0)
    assert len(mix) == len(voice) and mix.dtype == np.float32
    cue = mix - voice
    middle = slice(sr, 2 * sr)  # away from the fades
    assert abs(20 * np.log10(rms(cue[middle]) / rms(voice[middle])) + 12.0) < 0.5
    assert abs(cue[-1]) < 1e-3 and abs(cue[0]) < 1e-3  # faded in and out
    loud, how = mix_under(voice * 3, sr, music, 44100, 6.0)
    assert np.abs(loud).max() <= 0.98 + 1e-6 and how["mix_scaled_db"] < 0
