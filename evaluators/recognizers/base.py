"""What every recognizer has in common, and the valence-arousal -> category step the transparent
ones share.

A recognizer is a callable ``recognizer(x) -> reading`` with attributes ``name``, ``medium``,
``source`` and ``licence``; a reading has ``probabilities`` (the nine categories, sum 1),
``category`` (the most probable), ``valence``/``arousal``/``dominance`` (None where the recognizer
gives none) and ``as_spec()`` (the reading as an ``EmotionSpec`` in the shared space).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from conditioning.spec import EmotionSpec
from conditioning.vocabulary import ANCHORS, CATEGORIES

#: Softmax temperature over squared distances in the scaled valence-arousal plane.
TEMPERATURE = 0.2


@runtime_checkable
class Reading(Protocol):
    probabilities: dict[str, float]
    category: str
    valence: float | None
    arousal: float | None

    def as_spec(self) -> EmotionSpec: ...


@runtime_checkable
class Recognizer(Protocol):
    name: str
    medium: str
    source: str
    licence: str

    def __call__(self, x, *args, **kwargs) -> Reading: ...


def va_plane() -> np.ndarray:
    """Category anchors (valence, arousal) in the plane readings live in, shape (K, 2).

    The anchors' arousal is lopsided (calm -0.83, but the most aroused word, angry, only +0.30),
    so each half-axis is scaled separately: the most extreme anchor on each side lands on +-1.
    """
    va = np.array([[ANCHORS[k].valence, ANCHORS[k].arousal] for k in CATEGORIES])  # (K, 2)
    pos, neg = va.max(axis=0), -va.min(axis=0)  # (2,) each
    return np.where(va >= 0, va / pos, va / neg)


def va_probabilities(valence: float, arousal: float, temperature: float = TEMPERATURE) -> dict[str, float]:
    """Softmax of ``-d_k^2 / temperature``, ``d_k`` the distance to category k in ``va_plane``."""
    d2 = ((va_plane() - np.array([valence, arousal])) ** 2).sum(axis=1)
    logits = -d2 / temperature
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return {k: float(x) for k, x in zip(CATEGORIES, p)}
