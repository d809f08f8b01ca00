"""EmotionSpec validation and derived quantities."""

import numpy as np
import pytest

from conditioning import ANCHORS, CATEGORIES, INTENSITY_MAX, EmotionSpec


def test_vad_is_neutral_plus_contributions_times_anchor_offsets():
    spec = EmotionSpec({"happy": 0.5, "sad": 0.5}, 0.8)
    h, s = np.array(ANCHORS["happy"].vad), np.array(ANCHORS["sad"].vad)
    expected = 0.8 * (0.5 * h + 0.5 * s)  # neutral anchor is the origin
    assert np.allclose(spec.vad, expected)


def test_anchor_scaling_from_published_ratings():
    # happy is rated 8.47 valence on the 1..9 scale -> (8.47 - 5) / 4
    assert ANCHORS["happy"].valence == pytest.approx((8.47 - 5) / 4)
    assert ANCHORS["calm"].arousal < ANCHORS["angry"].arousal
    assert ANCHORS["sad"].valence < 0 < ANCHORS["happy"].valence


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"weights": {}}, "non-empty"),
        ({"weights": {"joy": 1.0}}, "unknown emotion category"),
        ({"weights": {"happy": 0.5}}, "sum to 1"),
        ({"weights": {"happy": -1.0, "sad": 2.0}}, ">= 0"),
        ({"weights": {"happy": 1.0}, "intensity": INTENSITY_MAX + 0.01}, "intensity must be in"),
        ({"weights": {"happy": 1.0}, "intensity": float("nan")}, "intensity"),
        ({"weights": {"happy": 1.0}, "intensity": "1"}, "intensity"),
        ({"weights": {"happy": 1.0}, "vad_point": (2.0, 0, 0)}, "VAD point"),
    ],
)
def test_validation_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EmotionSpec(**kwargs)


def test_contributions_round_trip():
    spec = EmotionSpec({"angry": 0.25, "disgusted": 0.75}, 1.2)
    back = EmotionSpec.from_contributions(spec.contributions())
    assert back.isclose(spec)
    assert EmotionSpec.from_contributions(np.zeros(len(CATEGORIES))).is_neutral


def test_with_intensity_keeps_the_mixture():
    spec = EmotionSpec({"angry": 0.25, "disgusted": 0.75}, 1.0).with_intensity(0.3)
    assert spec.intensity == pytest.approx(0.3)
    assert spec.weights == pytest.approx({"angry": 0.25, "disgusted": 0.75})
