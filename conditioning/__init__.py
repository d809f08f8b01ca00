"""The shared emotion space: vocabulary, specs, parsing, curves, direction vectors.

One spec (``parse_emotion("angry@0.7")``) conditions every medium: each medium steers its own
embedding along direction vectors indexed by the same categories (``DirectionVectorModel``), and
``EmotionSpace`` carries readings from one medium to another.
"""

from conditioning.curves import EmotionCurve, Keyframe
from conditioning.directions import DirectionVectorModel
from conditioning.lexicon import WordMapping, resolve_word
from conditioning.parsing import parse_emotion
from conditioning.space import EmotionSpace
from conditioning.spec import INTENSITY_MAX, EmotionSpec
from conditioning.vocabulary import ALIASES, ANCHORS, CATEGORIES, NEUTRAL

__all__ = [
    "ALIASES",
    "ANCHORS",
    "CATEGORIES",
    "INTENSITY_MAX",
    "NEUTRAL",
    "DirectionVectorModel",
    "EmotionCurve",
    "EmotionSpace",
    "EmotionSpec",
    "Keyframe",
    "WordMapping",
    "parse_emotion",
    "resolve_word",
]
