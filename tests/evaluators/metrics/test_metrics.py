"""Metric classes against hand-computed values."""

import math

import numpy as np
import pretty_midi
import pytest

from evaluators.metrics import (
    CCC,
    METRICS,
    EmotionAccuracy,
    EmptyBars,
    GrooveConsistency,
    IntensityMonotonicity,
    PitchClassEntropy,
    Polyphony,
    ScaleConsistency,
    WordErrorRate,
    concordance_correlation,
    spearman,
    word_error_rate,
)


def test_spearman_hand_values():
    assert spearman([0, 0.25, 0.5, 0.75, 1], [1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ranks x: 1 2 3 4, y: 1 3 2 4 -> 1 - 6 * (0 + 1 + 1 + 0) / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    # one swap in five levels: 1 - 6 * 2 / (5 * 24) = 0.9 exactly, so a line of >= 0.9 holds
    assert spearman([0, 0.25, 0.5, 0.75, 1], [0, 2, 1, 3, 4]) >= 0.9


def test_ccc_hand_values():
    assert concordance_correlation([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # x = 1 2 3 (var 2/3), y = 2 3 4 (var 2/3), cov 2/3, mean gap 1: 2(2/3) / (4/3 + 1) = 4/7
    assert concordance_correlation([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    m = CCC()
    for t, p in [(0.1, 0.1), (0.5, 0.5), (-0.2, -0.2)]:
        m.update("valence", t, p)
    assert m.compute()["valence"] == pytest.approx(1.0)


def test_wer_on_known_strings():
    assert word_error_rate("the cat sat on the mat", "the cat sat on the mat") == (0, 6)
    assert word_error_rate("the cat sat on the mat", "The cat sat on a mat.") == (1, 6)
    assert word_error_rate("the cat sat", "cat sat down") == (2, 3)  # one deletion, one insertion
    m = WordErrorRate()
    m.update("a b c d", "a x c d")
    m.update("e f", "")
    assert m.compute() == pytest.approx(3 / 6)


def test_accuracy_confusion_and_monotonicity():
    acc = EmotionAccuracy()
    for asked, read in [("happy", "happy"), ("sad", "sad"), ("sad", "calm"), ("angry", "angry")]:
        acc.update(asked, read)
    out = acc.compute()
    assert out["accuracy"] == pytest.approx(0.75) and out["n"] == 4
    assert out["standard_error"] == pytest.approx((0.75 * 0.25 / 4) ** 0.5)  # binomial
    assert np.array(out["confusion"]).sum() == 4
    with pytest.raises(ValueError, match="unknown category"):
        acc.update("joy", "happy")
    mono = IntensityMonotonicity()
    for i, r in [(0, 0.1), (0.5, 0.3), (1.0, 0.2)]:
        mono.update("sad", i, r)
    assert mono.compute()["sad"] == pytest.approx(0.5)


def midi_with(notes, tempo=120.0):
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(0)
    spb = 60.0 / tempo
    for start_beat, beats, pitch in notes:
        inst.notes.append(pretty_midi.Note(80, pitch, start_beat * spb, (start_beat + beats) * spb))
    pm.instruments.append(inst)
    return pm


def test_music_metrics_hand_values():
    # Two 4/4 bars of quarter notes: C D E F | G A B C, then an empty bar, then one whole note.
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    pm = midi_with([(i, 1, p) for i, p in enumerate(scale)] + [(12, 4, 60)])
    for cls, expected in [
        # 9 notes: C three times (60, 72, 60), six other pitch classes once each.
        (PitchClassEntropy, -(3 / 9 * np.log2(3 / 9) + 6 * (1 / 9) * np.log2(1 / 9))),
        (ScaleConsistency, 1.0),
        (EmptyBars, 1 / 4),
        (Polyphony, 1.0),
        # Onset patterns: bars 1, 2 = beats 1-4, bar 3 empty, bar 4 beat 1:
        # distances 0, 4, 1 out of 16 -> 1 - 5 / 48
        (GrooveConsistency, 1 - (0 + 4 / 16 + 1 / 16) / 3),
    ]:
        m = cls()
        m.update(pm)
        assert m.compute()["mean"] == pytest.approx(expected), cls.__name__


def test_polyphony_of_a_chord_and_errors(tmp_path):
    m = Polyphony()
    m.update(midi_with([(0, 4, 60), (0, 4, 64), (0, 4, 67), (4, 4, 60)]))
    assert m.compute()["mean"] == pytest.approx((3 * 16 + 16) / 32)
    bad = tmp_path / "x.mid"
    bad.write_text("nope")
    with pytest.raises(ValueError, match="not a readable standard MIDI"):
        PitchClassEntropy().update(bad)
    assert set(METRICS) >= {"ccc", "wer", "pitch_class_entropy", "empty_bars"}
