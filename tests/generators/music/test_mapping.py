"""Emotion -> attributes: the literature profiles as direction vectors."""

import numpy as np
import pytest

from conditioning import EmotionSpec
from generators.music.mapping import (
    AttributeSpace,
    default_direction_model,
    fit_direction_model,
    steer_attributes,
)
from generators.music.representation import ATTRIBUTES

HIGH_AROUSAL = ["angry", "happy", "fearful", "surprised"]
LOW_AROUSAL = ["sad", "calm"]


def attrs(space, text, fixed=None):
    from conditioning import parse_emotion

    model = default_direction_model(space)
    return dict(zip(ATTRIBUTES, steer_attributes(model, space, parse_emotion(text), fixed)))


def test_neutral_has_an_accompaniment(space):
    assert space.neutral["acc_density"] > 0 == space.centre["acc_density"]
    assert attrs(space, "neutral")["acc_density"] == pytest.approx(space.neutral["acc_density"])


def test_mode_follows_valence(space):
    for emo in ("happy", "calm", "surprised"):
        assert attrs(space, emo)["major"] == pytest.approx(1.0)
    for emo in ("sad", "fearful", "angry"):
        assert attrs(space, emo)["major"] == pytest.approx(0.0)


def test_tempo_density_and_loudness_follow_arousal(space):
    for hi in HIGH_AROUSAL:
        for lo in LOW_AROUSAL:
            a, b = attrs(space, hi), attrs(space, lo)
            assert a["tempo"] > b["tempo"] and a["density"] > b["density"], (hi, lo)
    assert attrs(space, "angry")["velocity"] > attrs(space, "sad")["velocity"]


def test_distance_from_neutral_rises_with_intensity(space):
    model = default_direction_model(space)
    neutral = space.to_z(steer_attributes(model, space, EmotionSpec.neutral()))
    for emo in ("happy", "sad", "angry", "calm", "disgusted", "contempt"):
        d = [
            np.linalg.norm(
                space.to_z(steer_attributes(model, space, EmotionSpec({emo: 1.0}, i))) - neutral
            )
            for i in (0, 0.25, 0.5, 0.75, 1.0)
        ]
        assert np.all(np.diff(d) > 0), emo


def test_fixed_attributes_pin_values(space):
    a = attrs(space, "sad@0.9", fixed={"tempo": 150, "major": 1})
    assert a["tempo"] == 150 and a["major"] == 1
    assert a["density"] < space.neutral["density"]  # the rest still follows sadness
    with pytest.raises(ValueError, match="unknown attribute"):
        attrs(space, "sad", fixed={"loudness": 1})
    with pytest.raises(ValueError, match="tempo must be in"):
        attrs(space, "sad", fixed={"tempo": 1000})


def test_fit_from_labelled_attributes(space):
    rng = np.random.default_rng(0)
    base = space.neutral_vector()
    fast = base.copy()
    fast[ATTRIBUTES.index("tempo")] = 160
    x = np.concatenate(
        [base + rng.normal(0, 0.01, (10, len(base))), fast + rng.normal(0, 0.01, (10, len(base)))]
    )
    model = fit_direction_model(x, ["neutral"] * 10 + ["angry"] * 10, space)
    d = model.directions["angry"]
    assert np.argmax(np.abs(d)) == ATTRIBUTES.index("tempo") and d.max() > 0.99


def test_space_round_trips_through_json(space):
    again = AttributeSpace.from_dict(space.to_dict())
    v = space.neutral_vector()
    assert np.allclose(again.to_z(v), space.to_z(v)) and again.neutral == space.neutral
