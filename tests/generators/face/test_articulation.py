"""Speech -> mouth: alignment of real speech, coarticulated mouth shapes, features per video frame."""

import numpy as np
import pytest

from conditioning.audio import load_audio
from generators.face.articulation import (
    FPS,
    MOTION,
    SHAPE_AUS,
    align_phones,
    audio_features,
    combine,
    frames_for,
    mouth_targets,
)


def test_frames_for():
    assert frames_for(2.99) == 75 and frames_for(0.01) == 1 and frames_for(10.0) == 250


def test_real_speech_aligns_to_its_words(real_clip):
    wav = load_audio(real_clip, target_sr=16000).wav
    phones = align_phones(wav, "he was not an ill disposed young man")
    names = [p[0] for p in phones if p[0] != "SIL"]
    # CMU dictionary phones of the sentence, in order
    assert names[:2] == ["HH", "IY"] and "M" in names[-3:]
    starts = [p[1] for p in phones]
    assert starts == sorted(starts) and phones[-1][2] <= len(wav) / 16000 + 0.05


def test_unalignable_text_gives_nothing(real_clip):
    wav = load_audio(real_clip, target_sr=16000).wav
    assert align_phones(wav, "zzxq qqzx") == []


def test_bilabials_close_and_open_vowels_open():
    phones = [("SIL", 0.0, 0.2), ("M", 0.2, 0.3), ("AA", 0.3, 0.6), ("SIL", 0.6, 1.0)]
    m = mouth_targets(phones, 25)
    jaw, press = SHAPE_AUS.index("AU26"), SHAPE_AUS.index("AU24")
    t_m, t_aa = int(0.25 * FPS), int(0.45 * FPS)
    assert m[t_m, press] > 0.5 and m[t_aa, press] < 0.2
    assert m[t_aa, jaw] > 0.6 and m[t_m, jaw] < 0.3 and m[-1, jaw] < 0.05


def test_closures_override_the_expression():
    emo = np.zeros((3, 16))
    emo[:, -1] = 0.6  # AU26 from a surprised face
    mouth = np.array([[0, 0, 0, 0, 1.0], [0.5, 0.5, 0, 0, 0], [0, 0, 0, 0, 0]])
    out = combine(emo, mouth)
    jaw = MOTION.index("AU26")
    assert out.shape == (3, len(MOTION))
    assert out[0, jaw] < 0.2 < 0.6 <= out[2, jaw] < out[1, jaw]


def test_audio_features_follow_loudness():
    sr = 22050
    t = np.arange(2 * sr) / sr
    wav = (0.5 * np.sin(2 * np.pi * 200 * t) * (t > 1.0)).astype(np.float32)
    f = audio_features(wav)
    assert f.shape == (50, 80)
    energy = np.log(np.exp(f).mean(1))  # per frame, natural log
    assert energy.max() == pytest.approx(0.0, abs=1e-4)  # the loudest frame sits at 0
    assert energy[-5:].mean() > energy[:20].mean() + 5  # loud second half, silent first
