"""The emotion vocabulary: categories, aliases and a valence-arousal-dominance anchor for each.

The nine categories cover the label sets of the common corpora of the three media (ESD, RAVDESS,
CREMA-D, MEAD, FER2013, EMOPIA quadrants). Every medium indexes its direction vectors by these
names, which is what makes one spec steer all three.

VAD anchors come from published human norms for the category words: Warriner, Kuperman &
Brysbaert (2013), "Norms of valence, arousal, and dominance for 13,915 English lemmas", Behavior
Research Methods 45(4):1191-1207. Their mean ratings ("Sum" columns, 1..9 scale) are mapped to
[-1, 1] by (x - 5) / 4, so 0 is the scale's midpoint. Each anchor is the rating of the category's
own word. For neutral the scale's midpoint is used, not the rating of the word "neutral"
(5.50, 3.45, 5.81): that rating describes the word, and the anchor must stand for no affect.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NEUTRAL = "neutral"

#: Vocabulary order is fixed: arrays over categories (contributions, centres, prototypes) use it.
CATEGORIES: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
    "calm",
    "contempt",
)
EMOTIONS = frozenset(CATEGORIES)

#: Range of each VAD coordinate.
VAD_RANGE = (-1.0, 1.0)


def _scale(x: float) -> float:
    """Warriner et al.'s 1..9 rating -> [-1, 1]."""
    return (x - 5.0) / 4.0


@dataclass(frozen=True)
class Anchor:
    """A category's VAD anchor and where it comes from."""

    valence: float
    arousal: float
    dominance: float
    rated_word: str
    raw: tuple[float, float, float] | None  # the 1..9 means as published, None for the midpoint

    @property
    def vad(self) -> tuple[float, float, float]:
        return (self.valence, self.arousal, self.dominance)


def _anchor(word: str, v: float, a: float, d: float) -> Anchor:
    return Anchor(_scale(v), _scale(a), _scale(d), word, (v, a, d))


# Mean valence, arousal, dominance (1..9) of the rated word in Warriner et al. (2013).
ANCHORS: dict[str, Anchor] = {
    "neutral": Anchor(0.0, 0.0, 0.0, "(scale midpoint)", None),
    "happy": _anchor("happy", 8.47, 6.05, 7.21),
    "sad": _anchor("sad", 2.10, 3.49, 3.84),
    "angry": _anchor("angry", 2.53, 6.20, 4.11),
    "fearful": _anchor("fearful", 2.66, 5.45, 3.12),
    "disgusted": _anchor("disgusted", 2.68, 4.89, 4.24),
    "surprised": _anchor("surprised", 6.57, 5.95, 4.72),
    "calm": _anchor("calm", 6.89, 1.67, 7.44),
    "contempt": _anchor("contempt", 3.22, 4.61, 4.45),
}

#: Exact synonyms and inflections; each maps to one category at weight 1.
ALIASES: dict[str, str] = {
    # neutral
    "none": "neutral",
    "neutrality": "neutral",
    "flat": "neutral",
    "plain": "neutral",
    # happy
    "happiness": "happy",
    "joy": "happy",
    "joyful": "happy",
    "glad": "happy",
    "cheerful": "happy",
    "happily": "happy",
    "elated": "happy",
    "pleased": "happy",
    "delighted": "happy",
    # sad
    "sadness": "sad",
    "unhappy": "sad",
    "sorrow": "sad",
    "sorrowful": "sad",
    "sadly": "sad",
    "down": "sad",
    # angry
    "anger": "angry",
    "mad": "angry",
    "angrily": "angry",
    "irate": "angry",
    "enraged": "angry",
    # fearful
    "fear": "fearful",
    "afraid": "fearful",
    "scared": "fearful",
    "frightened": "fearful",
    "fearfully": "fearful",
    "fearsome": "fearful",
    # disgusted
    "disgust": "disgusted",
    "disgusting": "disgusted",
    "revulsion": "disgusted",
    "repulsed": "disgusted",
    # surprised
    "surprise": "surprised",
    "surprising": "surprised",
    "astonished": "surprised",
    "amazed": "surprised",
    # calm
    "calmness": "calm",
    "relaxed": "calm",
    "serene": "calm",
    "tranquil": "calm",
    "peaceful": "calm",
    # contempt
    "contemptuous": "contempt",
    "scorn": "contempt",
    "scornful": "contempt",
    "disdain": "contempt",
    "disdainful": "contempt",
}

#: Short descriptions, used to map free words by text embedding and shown by `affect emotions`.
DESCRIPTIONS: dict[str, str] = {
    "neutral": "neutral, no particular emotion, matter-of-fact",
    "happy": "happy, joyful, cheerful, delighted",
    "sad": "sad, sorrowful, unhappy, grieving",
    "angry": "angry, furious, irritated, hostile",
    "fearful": "afraid, frightened, anxious, terrified",
    "disgusted": "disgusted, repulsed, revolted, sickened",
    "surprised": "surprised, astonished, amazed, startled",
    "calm": "calm, relaxed, peaceful, serene",
    "contempt": "contemptuous, scornful, disdainful, sneering",
}


def canonical(name: str) -> str | None:
    """The category a name or alias denotes, or None."""
    key = name.strip().lower()
    if key in EMOTIONS:
        return key
    return ALIASES.get(key)


@lru_cache(maxsize=1)
def anchor_matrix() -> np.ndarray:
    """VAD anchors in vocabulary order, shape (K, 3), read-only."""
    m = np.array([ANCHORS[k].vad for k in CATEGORIES], dtype=np.float64)
    m.setflags(write=False)
    return m
