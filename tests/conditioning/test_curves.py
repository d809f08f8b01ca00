"""EmotionCurve: interpolation at and between keyframes."""

import numpy as np
import pytest

from conditioning import CATEGORIES, EmotionCurve, EmotionSpec, parse_emotion

SAD, HAPPY = CATEGORIES.index("sad"), CATEGORIES.index("happy")


def test_values_at_keyframes_equal_the_keyframes():
    curve = parse_emotion("sad@0.8 -> calm@0.5 -> happy@1.0 over 16 bars").curve
    for key in curve.keyframes:
        assert curve.at(key.time).isclose(key.spec)


def test_linear_interpolation_between_keyframes():
    curve = parse_emotion("sad@0.8 -> happy@1.0 over 16 bars").curve
    c = curve.contributions([4.0, 8.0])
    assert c[0, SAD] == pytest.approx(0.6) and c[0, HAPPY] == pytest.approx(0.25)
    assert c[1, SAD] == pytest.approx(0.4) and c[1, HAPPY] == pytest.approx(0.5)
    # Hand-computed: midpoint intensity 0.9, happy share 0.5 / 0.9.
    mid = curve.at(8.0)
    assert mid.intensity == pytest.approx(0.9)
    assert mid.weights["happy"] == pytest.approx(0.5 / 0.9)


def test_ends_are_held():
    curve = parse_emotion("sad at 2 -> happy at 6 s").curve
    assert curve.at(0.0).isclose(EmotionSpec({"sad": 1.0}, 1.0))
    assert curve.at(100.0).isclose(EmotionSpec({"happy": 1.0}, 1.0))


def test_smooth_interpolation_eases_and_is_monotone():
    keys = [(0.0, EmotionSpec({"sad": 1.0}, 1.0)), (10.0, EmotionSpec({"happy": 1.0}, 1.0))]
    curve = EmotionCurve(keys, unit="s", interpolation="smooth")
    t = np.linspace(0, 10, 101)
    happy = curve.contributions(t)[:, HAPPY]
    assert np.all(np.diff(happy) >= -1e-12)
    assert happy[50] == pytest.approx(0.5)
    assert happy[5] < 0.05  # slow start: linear would be 0.05
    step = EmotionCurve(keys, unit="s", interpolation="step")
    assert step.contributions(9.99)[HAPPY] == 0.0 and step.contributions(10.0)[HAPPY] == 1.0


def test_per_frame_sampling():
    curve = parse_emotion("neutral -> angry@1 over 2 s").curve
    times = curve.frame_times(25)
    assert len(times) == 50 and times[1] == pytest.approx(0.04)
    specs = curve.sample(times)
    intensities = [s.intensity for s in specs]
    assert intensities[0] == 0.0 and all(np.diff(intensities) > 0)
    assert curve.vad(times).shape == (50, 3)


def test_bad_curves():
    with pytest.raises(ValueError, match="two keyframes"):
        EmotionCurve([(0.0, EmotionSpec.neutral())])
    with pytest.raises(ValueError, match="increase"):
        EmotionCurve([(1.0, EmotionSpec.neutral()), (1.0, EmotionSpec.neutral())])
    with pytest.raises(ValueError, match="unit"):
        EmotionCurve([(0.0, EmotionSpec.neutral()), (1.0, EmotionSpec.neutral())], unit="hours")
