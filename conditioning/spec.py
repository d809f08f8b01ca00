"""EmotionSpec: what a user asks for, in one typed object shared by every medium.

A spec is a mixture of categories (weights that sum to 1), an intensity (0 = neutral, 1 = the
category at full strength, up to ``INTENSITY_MAX`` for exaggeration) and, optionally, a curve that
makes the emotion change over time. The VAD point a spec implies is derived from the category
anchors in ``conditioning.vocabulary``; a spec made from an explicit ``vad(v,a,d)`` keeps that point.

The quantity that steers a generator is the *contribution* vector ``c_k = w_k * intensity``: the
neutral embedding moves by ``sum_k c_k * length_k * direction_k`` (see ``directions.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from conditioning.vocabulary import CATEGORIES, EMOTIONS, NEUTRAL, VAD_RANGE

if TYPE_CHECKING:  # pragma: no cover
    from conditioning.curves import EmotionCurve

#: Intensities above 1 exaggerate the emotion; beyond this cap the steered embeddings leave the
#: region any training data covered, so it is refused rather than extrapolated without limit.
INTENSITY_MAX = 1.5

_WEIGHT_TOL = 1e-6


def _fmt(x: float) -> str:
    """A number for the string form: 6 significant digits (round trips within 1e-6)."""
    text = format(float(x), ".6g")
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class EmotionSpec:
    """A requested emotion.

    Args:
        weights: category -> weight, non-negative, summing to 1 (a mixture is a compound emotion).
            Categories must be in the vocabulary. ``{"neutral": 1.0}`` is the neutral spec.
        intensity: 0 (neutral) .. 1 (full) .. ``INTENSITY_MAX`` (exaggerated).
        vad_point: an explicit valence-arousal-dominance point in [-1, 1]^3 (set by ``vad(...)``);
            when None the point is derived from the category anchors.
        curve: optional keyframes over time; when set, this spec is the curve's first keyframe.
        source: the text this spec was parsed from, if any.
        notes: how the text was interpreted (aliases, free words and their mapping); not compared.

    Example:
        >>> spec = EmotionSpec.from_category("angry", 0.7)
        >>> spec.to_string()
        'angry@0.7'
        >>> [round(float(x), 2) for x in spec.contributions()[:4]]
        [0.0, 0.0, 0.0, 0.7]
    """

    weights: dict[str, float]
    intensity: float = 1.0
    vad_point: tuple[float, float, float] | None = None
    curve: EmotionCurve | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, dict) or not self.weights:
            raise ValueError("emotion weights must be a non-empty mapping of category -> weight")
        clean: dict[str, float] = {}
        for name, w in self.weights.items():
            if name not in EMOTIONS:
                raise ValueError(
                    f"unknown emotion category {name!r}; accepted: {', '.join(CATEGORIES)}"
                )
            w = float(w)
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {w}")
            if w > 0:
                clean[name] = clean.get(name, 0.0) + w
        total = sum(clean.values())
        if total <= 0:
            raise ValueError("emotion weights must not all be zero")
        if abs(total - 1.0) > _WEIGHT_TOL:
            raise ValueError(f"emotion weights must sum to 1, got {total:.6g}")
        # Canonical order: vocabulary order, so equal specs compare equal.
        object.__setattr__(self, "weights", {k: clean[k] for k in CATEGORIES if k in clean})
        i = self.intensity
        if isinstance(i, bool) or not isinstance(i, (int, float, np.floating, np.integer)):
            raise ValueError(f"intensity must be a number in [0, {INTENSITY_MAX}], got {i!r}")
        i = float(i)
        if INTENSITY_MAX < i <= INTENSITY_MAX * (1 + 1e-9):  # floating-point rounding of sums
            i = INTENSITY_MAX
        if 0 < i < 1e-12:  # below any meaningful resolution; avoids subnormal products
            i = 0.0
        if not math.isfinite(i) or i < 0 or i > INTENSITY_MAX:
            raise ValueError(
                f"intensity must be in [0, {INTENSITY_MAX}] (0 neutral, 1 full, above 1 "
                f"exaggerated), got {i:g}"
            )
        object.__setattr__(self, "intensity", i)
        if self.vad_point is not None:
            p = tuple(float(x) for x in self.vad_point)
            lo, hi = VAD_RANGE
            if len(p) != 3 or not all(math.isfinite(x) and lo <= x <= hi for x in p):
                raise ValueError(
                    f"a VAD point has three numbers, each in [{lo:g}, {hi:g}], got {self.vad_point!r}"
                )
            object.__setattr__(self, "vad_point", p)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_category(cls, name: str, intensity: float = 1.0) -> EmotionSpec:
        """One category at an intensity; ``neutral`` gives intensity 0."""
        if name == NEUTRAL:
            intensity = 0.0
        return cls({name: 1.0}, intensity)

    @classmethod
    def neutral(cls) -> EmotionSpec:
        return cls({NEUTRAL: 1.0}, 0.0)

    @classmethod
    def from_contributions(
        cls, contributions: dict[str, float] | np.ndarray, **kwargs
    ) -> EmotionSpec:
        """Inverse of :meth:`contributions`: ``c_k = w_k * intensity``.

        ``contributions`` is a mapping or an array in vocabulary order. Neutral's entry (it has no
        direction) is ignored. All-zero contributions give the neutral spec.
        """
        if isinstance(contributions, dict):
            items = {k: float(v) for k, v in contributions.items()}
        else:
            arr = np.asarray(contributions, dtype=np.float64).reshape(-1)
            if arr.shape[0] != len(CATEGORIES):
                raise ValueError(f"expected {len(CATEGORIES)} contributions, got {arr.shape[0]}")
            items = dict(zip(CATEGORIES, arr.tolist()))
        for k, v in items.items():
            if k not in EMOTIONS:
                raise ValueError(
                    f"unknown emotion category {k!r}; accepted: {', '.join(CATEGORIES)}"
                )
            if not math.isfinite(v) or v < -1e-9:
                raise ValueError(f"contribution of {k!r} must be >= 0, got {v}")
        items = {k: max(v, 0.0) for k, v in items.items() if k != NEUTRAL}
        total = sum(items.values())
        if total <= 1e-12:
            return cls({NEUTRAL: 1.0}, 0.0, **kwargs)
        # Drop numerical dust (solvers leave 1e-17 entries).
        items = {k: v for k, v in items.items() if v > 1e-9 * total}
        total = sum(items.values())
        return cls({k: v / total for k, v in items.items()}, total, **kwargs)

    @classmethod
    def from_vad(cls, point: tuple[float, float, float], **kwargs) -> EmotionSpec:
        """A spec at an explicit VAD point.

        The point's offset from neutral is written as the non-negative combination of category
        offsets (anchor - neutral) that fits it best (non-negative least squares, which picks at
        most three categories); its sum is the intensity, capped at ``INTENSITY_MAX`` for points
        beyond the anchors. The explicit point is kept as ``vad``.
        """
        from scipy.optimize import nnls

        from conditioning.vocabulary import anchor_matrix

        p = np.asarray(point, dtype=np.float64).reshape(-1)
        if p.shape[0] != 3 or not np.all(np.isfinite(p)):
            raise ValueError(f"a VAD point has three finite numbers, got {point!r}")
        anchors = anchor_matrix()
        n_idx = CATEGORIES.index(NEUTRAL)
        offsets = anchors - anchors[n_idx]  # (K, 3)
        cols = [k for k in range(len(CATEGORIES)) if k != n_idx]
        coef, _ = nnls(offsets[cols].T, p - anchors[n_idx])
        contrib = np.zeros(len(CATEGORIES))
        contrib[cols] = coef
        total = float(contrib.sum())
        if total > INTENSITY_MAX:
            # The category anchors are word ratings and span less than the cube (the strongest
            # arousal among them is 0.3); a point beyond them keeps its exact VAD coordinates
            # (which steer along the VAD axes), and its category reading is capped.
            contrib *= INTENSITY_MAX / total
        base = cls.from_contributions(contrib)
        return cls(base.weights, base.intensity, tuple(p.tolist()), **kwargs)

    # -- derived quantities -------------------------------------------------------------------
    @property
    def is_neutral(self) -> bool:
        return self.intensity == 0.0 or set(self.weights) == {NEUTRAL}

    @property
    def dominant(self) -> str:
        """The category with the largest weight (neutral when the intensity is 0)."""
        if self.is_neutral:
            return NEUTRAL
        return max(self.weights.items(), key=lambda kv: kv[1])[0]

    def contributions(self) -> np.ndarray:
        """``c_k = w_k * intensity`` in vocabulary order, shape (K,); neutral's entry is 0."""
        c = np.zeros(len(CATEGORIES), dtype=np.float64)
        for k, w in self.weights.items():
            if k != NEUTRAL:
                c[CATEGORIES.index(k)] = w * self.intensity
        return c

    @property
    def vad(self) -> tuple[float, float, float]:
        """The valence-arousal-dominance point: the explicit one, or neutral + sum_k c_k (a_k - n)."""
        if self.vad_point is not None:
            return self.vad_point
        from conditioning.vocabulary import anchor_matrix

        anchors = anchor_matrix()  # (K, 3)
        n = anchors[CATEGORIES.index(NEUTRAL)]
        p = n + self.contributions() @ (anchors - n)
        lo, hi = VAD_RANGE
        return tuple(float(np.clip(x, lo, hi)) for x in p)

    def with_intensity(self, intensity: float) -> EmotionSpec:
        """The same mixture at another intensity (an explicit VAD point is rescaled from neutral)."""
        if self.curve is not None:
            raise ValueError(
                "an intensity cannot be applied to a curve as a whole; write one per keyframe "
                "(sad@0.8 -> happy@0.5 over 8 s)"
            )
        if set(self.weights) == {NEUTRAL}:
            return self
        vad_point = None
        if self.vad_point is not None and self.intensity > 0:
            from conditioning.vocabulary import anchor_matrix

            n = anchor_matrix()[CATEGORIES.index(NEUTRAL)]
            scale = float(intensity) / self.intensity
            lo, hi = VAD_RANGE
            vad_point = tuple(
                float(np.clip(n[j] + scale * (self.vad_point[j] - n[j]), lo, hi)) for j in range(3)
            )
        return EmotionSpec(
            dict(self.weights), intensity, vad_point, self.curve, self.source, self.notes
        )

    # -- string form --------------------------------------------------------------------------
    def to_string(self) -> str:
        """Canonical text that ``parse_emotion`` reads back to an equal spec (or curve)."""
        if self.curve is not None:
            return self.curve.to_string()
        return self._spec_string()

    def mixture_string(self) -> str:
        """The category mixture and intensity, even for a spec made from a VAD point."""
        return dataclasses.replace(self, vad_point=None, curve=None)._spec_string()

    def _spec_string(self) -> str:
        if self.vad_point is not None:
            return "vad(" + ",".join(_fmt(x) for x in self.vad_point) + ")"
        if set(self.weights) == {NEUTRAL}:
            return NEUTRAL
        if len(self.weights) == 1:
            (name,) = self.weights
            return f"{name}@{_fmt(self.intensity)}"
        terms = "+".join(f"{_fmt(w)}*{k}" for k, w in self.weights.items())
        return f"({terms})@{_fmt(self.intensity)}"

    def __str__(self) -> str:
        return self.to_string()

    def isclose(self, other: EmotionSpec, tol: float = 1e-5) -> bool:
        """Equal up to a tolerance: weights over the vocabulary, intensity, VAD point and curve."""

        def weight_vector(spec: EmotionSpec) -> np.ndarray:
            return np.array([spec.weights.get(k, 0.0) for k in CATEGORIES])

        if np.abs(weight_vector(self) - weight_vector(other)).max() > tol:
            return False
        if abs(self.intensity - other.intensity) > tol:
            return False
        if (self.vad_point is None) != (other.vad_point is None):
            return False
        if self.vad_point is not None and not all(
            abs(a - b) <= tol for a, b in zip(self.vad_point, other.vad_point)
        ):
            return False
        if (self.curve is None) != (other.curve is None):
            return False
        return self.curve is None or self.curve == other.curve

    def describe(self) -> dict:
        """A JSON-ready summary (used by the CLI and reports)."""
        v, a, d = self.vad
        return {
            "spec": self.to_string(),
            "weights": {k: round(w, 6) for k, w in self.weights.items()},
            "intensity": self.intensity,
            "dominant": self.dominant,
            "vad": {"valence": round(v, 4), "arousal": round(a, 4), "dominance": round(d, 4)},
            "notes": list(self.notes),
            "curve": self.curve.to_string() if self.curve is not None else None,
        }
