"""Did the emotion and intensity asked for arrive? Accuracy and confusion, intensity
monotonicity (Spearman between intensity asked and the reading), and concordance correlation
(Lin 1989) for continuous valence / arousal / dominance."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from conditioning.vocabulary import CATEGORIES


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); nan when either side is constant.
    Rounded to 12 decimals: ranks give exact fractions (one swap in five levels is 0.9), which
    the floating-point correlation misses by 1e-16, and a threshold of 0.9 must not fail it."""
    rx, ry = rankdata(np.asarray(x, float)), rankdata(np.asarray(y, float))
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return round(float(np.corrcoef(rx, ry)[0, 1]), 12)


def concordance_correlation(x, y) -> float:
    """Lin's concordance correlation: 2 cov / (var_x + var_y + (mean_x - mean_y)^2), population
    moments."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    vx, vy = x.var(), y.var()
    denom = vx + vy + (x.mean() - y.mean()) ** 2
    if denom == 0:
        return float("nan")
    return float(2 * ((x - x.mean()) * (y - y.mean())).mean() / denom)


class EmotionAccuracy:
    """Top-1 accuracy and the confusion matrix over the vocabulary (rows asked, columns read)."""

    def __init__(self, categories: tuple[str, ...] = CATEGORIES) -> None:
        self.categories = tuple(categories)
        self.confusion = np.zeros((len(categories), len(categories)), dtype=int)

    def update(self, asked: str, read: str) -> None:
        for name in (asked, read):
            if name not in self.categories:
                raise ValueError(
                    f"unknown category {name!r}; accepted: {', '.join(self.categories)}"
                )
        self.confusion[self.categories.index(asked), self.categories.index(read)] += 1

    def compute(self) -> dict:
        total = int(self.confusion.sum())
        acc = float(np.trace(self.confusion) / total) if total else float("nan")
        return {
            "accuracy": acc,
            "n": total,
            # binomial standard error of the accuracy: sqrt(p (1 - p) / n)
            "standard_error": float(np.sqrt(acc * (1 - acc) / total)) if total else float("nan"),
            "confusion": self.confusion.tolist(),
            "categories": list(self.categories),
        }


class IntensityMonotonicity:
    """Spearman between intensity asked and a reading, per emotion."""

    def __init__(self) -> None:
        self.pairs: dict[str, list[tuple[float, float]]] = {}

    def update(self, emotion: str, intensity: float, reading: float) -> None:
        self.pairs.setdefault(emotion, []).append((float(intensity), float(reading)))

    def compute(self) -> dict[str, float]:
        return {e: spearman(*zip(*p)) for e, p in self.pairs.items()}


class CCC:
    """Concordance correlation per dimension (e.g. valence, arousal, dominance)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[list[float], list[float]]] = {}

    def update(self, dimension: str, target: float, predicted: float) -> None:
        t, p = self.values.setdefault(dimension, ([], []))
        t.append(float(target))
        p.append(float(predicted))

    def compute(self) -> dict[str, float]:
        return {d: concordance_correlation(t, p) for d, (t, p) in self.values.items()}
