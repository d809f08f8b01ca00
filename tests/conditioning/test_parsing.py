"""parse_emotion: every documented form, round trips, and errors."""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conditioning import CATEGORIES, INTENSITY_MAX, EmotionSpec, parse_emotion

NON_NEUTRAL = [c for c in CATEGORIES if c != "neutral"]


def test_category_defaults_to_full_intensity():
    spec = parse_emotion("angry")
    assert spec.weights == {"angry": 1.0}
    assert spec.intensity == 1.0
    assert spec.dominant == "angry"


def test_category_with_intensity():
    spec = parse_emotion("angry@0.7")
    assert spec.weights == {"angry": 1.0}
    assert spec.intensity == pytest.approx(0.7)
    assert spec.contributions()[CATEGORIES.index("angry")] == pytest.approx(0.7)


def test_mixture_weights_are_proportions():
    spec = parse_emotion("0.6*happy+0.4*surprised")
    assert spec.weights == pytest.approx({"happy": 0.6, "surprised": 0.4})
    assert spec.intensity == pytest.approx(1.0)
    # Proportions: 3:2 is the same mixture.
    assert parse_emotion("3*happy + 2*surprised").isclose(spec)


def test_grouped_mixture_with_intensity():
    spec = parse_emotion("(0.6*happy+0.4*surprised)@0.8")
    assert spec.intensity == pytest.approx(0.8)
    c = spec.contributions()
    assert c[CATEGORIES.index("happy")] == pytest.approx(0.48)
    assert c[CATEGORIES.index("surprised")] == pytest.approx(0.32)


def test_per_term_intensities_add_as_contributions():
    spec = parse_emotion("happy@0.8+surprised@0.4")
    c = spec.contributions()
    # Equal proportions (0.5 each) times each term's intensity.
    assert c[CATEGORIES.index("happy")] == pytest.approx(0.4)
    assert c[CATEGORIES.index("surprised")] == pytest.approx(0.2)
    assert spec.intensity == pytest.approx(0.6)


def test_neutral_in_a_mixture_dilutes():
    assert parse_emotion("0.5*happy+0.5*neutral").isclose(EmotionSpec({"happy": 1.0}, 0.5))
    neutral = parse_emotion("neutral")
    assert neutral.is_neutral and neutral.intensity == 0.0


def test_vad_point_is_kept_and_read_as_a_mixture():
    spec = parse_emotion("vad(0.8,0.7,0.4)")
    assert spec.vad == (0.8, 0.7, 0.4)
    assert spec.dominant == "happy"  # high valence, high arousal
    assert 0 < spec.intensity <= INTENSITY_MAX
    assert any("vad(0.8,0.7,0.4)" in n for n in spec.notes)
    assert parse_emotion("vad(-0.5, 0.2, -0.4)").vad == (-0.5, 0.2, -0.4)


def test_vad_of_an_anchor_reads_back_its_category():
    from conditioning import ANCHORS

    a = ANCHORS["sad"]
    spec = parse_emotion(f"vad({a.valence},{a.arousal},{a.dominance})")
    assert spec.dominant == "sad"
    assert spec.weights["sad"] > 0.99
    assert spec.intensity == pytest.approx(1.0, abs=1e-6)


def test_aliases_are_reported():
    spec = parse_emotion("joy@0.5")
    assert spec.isclose(EmotionSpec({"happy": 1.0}, 0.5))
    assert spec.notes == ("'joy' is an alias of happy",)


@pytest.mark.parametrize(
    "word,dominant",
    [
        ("wistful", "sad"),
        ("furious", "angry"),
        ("serenity", "calm"),
        ("terrified", "fearful"),
        ("smug", "contempt"),
        ("ecstatic", "happy"),
    ],
)
def test_free_words_through_the_lexicon(word, dominant):
    spec = parse_emotion(word, use_embedding=False)
    assert spec.dominant == dominant
    assert len(spec.notes) == 1 and "packaged lexicon" in spec.notes[0]


def test_lexicon_strength_and_user_override():
    assert parse_emotion("furious").intensity > 1.0  # stronger than plain angry
    assert parse_emotion("annoyed").intensity < 0.5
    assert parse_emotion("furious@0.5").intensity == pytest.approx(0.5)


def test_intensity_argument_replaces_the_spec_intensity():
    spec = parse_emotion("0.6*happy+0.4*surprised", intensity=0.25)
    assert spec.intensity == pytest.approx(0.25)
    assert spec.weights == pytest.approx({"happy": 0.6, "surprised": 0.4})
    with pytest.raises(ValueError, match="intensity"):
        parse_emotion("happy", intensity=3)


def test_curve_forms():
    spec = parse_emotion("sad@0.8 -> happy@1.0 over 16 bars")
    assert spec.curve is not None and spec.curve.unit == "bars"
    assert [k.time for k in spec.curve.keyframes] == [0.0, 16.0]
    first = spec.curve.keyframes[0].spec
    assert first.isclose(EmotionSpec({"sad": 1.0}, 0.8))
    assert dataclasses.replace(spec, curve=None).isclose(first)  # the spec is the first keyframe
    explicit = parse_emotion("sad at 0 -> calm at 4 -> happy at 16 bars")
    assert [k.time for k in explicit.curve.keyframes] == [0.0, 4.0, 16.0]
    secs = parse_emotion("neutral -> angry@0.9 over 2.5 seconds")
    assert secs.curve.unit == "s" and secs.curve.end == 2.5


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "nonsense@7",
        "happy@",
        "happy@2",
        "happy@-1",
        "happy+",
        "((",
        "happy)",
        "vad(2,0,0)",
        "vad(0.1,0.2)",
        "vad(0.1,0.2,0.3)@0.5",
        "sad -> happy",
        "happy over 3 s",
        "sad at 0 -> happy at 4 s -> calm at 8 bars",
        "sad at 4 -> happy at 2",
        "0*happy",
        "happy@nan",
        "happy@inf",
        "xyzzy",
        "happy;",
        "sad -> happy over 0 bars",
        "0.5*",
        "@0.5",
    ],
)
def test_bad_input_raises_value_error_with_a_message(text):
    with pytest.raises(ValueError) as info:
        parse_emotion(text, use_embedding=False)
    message = str(info.value)
    assert message and "\n" not in message


def test_non_string_input():
    with pytest.raises(ValueError, match="text"):
        parse_emotion(0.5)


# -- properties -----------------------------------------------------------------------------------
weights_st = st.dictionaries(
    st.sampled_from(NON_NEUTRAL), st.floats(0.01, 10.0, allow_nan=False), min_size=1, max_size=4
)
intensity_st = st.floats(0.0, INTENSITY_MAX, allow_nan=False)


@st.composite
def specs(draw):
    kind = draw(st.sampled_from(["mixture", "vad", "neutral"]))
    if kind == "neutral":
        return EmotionSpec.neutral()
    if kind == "vad":
        point = tuple(draw(st.integers(-1000, 1000)) / 1000 for _ in range(3))
        return EmotionSpec.from_vad(point)
    w = draw(weights_st)
    total = sum(w.values())
    return EmotionSpec({k: v / total for k, v in w.items()}, draw(intensity_st))


@settings(max_examples=300, deadline=None)
@given(specs())
def test_valid_specs_round_trip_through_their_string(spec):
    text = spec.to_string()
    back = parse_emotion(text, use_embedding=False)
    assert back.isclose(spec), (text, back)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(specs(), min_size=2, max_size=4),
    st.sampled_from(["s", "bars", "beats"]),
    st.integers(1, 64),
)
def test_curves_round_trip(keyframes, unit, length):
    keyframes = [k for k in keyframes]
    text = " -> ".join(k.to_string() for k in keyframes) + f" over {length} {unit}"
    spec = parse_emotion(text, use_embedding=False)
    again = parse_emotion(spec.to_string(), use_embedding=False)
    assert again.curve == spec.curve


garbage = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="()*+@,.-0123456789eE ->vadhpysgr", max_size=30),
    st.lists(
        st.sampled_from(
            [
                "happy",
                "sad",
                "@",
                "*",
                "+",
                "(",
                ")",
                "0.5",
                "2",
                "-",
                "->",
                "over",
                "at",
                "vad",
                ",",
                "bars",
                "nan",
                "1e400",
                "xx",
            ]
        ),
        max_size=10,
    ).map(" ".join),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage)
def test_garbage_gives_a_spec_or_a_value_error(text):
    try:
        spec = parse_emotion(text, use_embedding=False)
    except ValueError as exc:
        assert str(exc).strip()
        return
    assert isinstance(spec, EmotionSpec)
    assert 0.0 <= spec.intensity <= INTENSITY_MAX
    assert math.isclose(sum(spec.weights.values()), 1.0, rel_tol=1e-9)
