"""Metrics as small ``update()`` / ``compute()`` classes, grouped by what they measure, with a
name -> class registry for the command line and the closed loop."""

from evaluators.metrics.emotion import (
    CCC,
    EmotionAccuracy,
    IntensityMonotonicity,
    concordance_correlation,
    spearman,
)
from evaluators.metrics.music import (
    EmptyBars,
    GrooveConsistency,
    PitchClassEntropy,
    Polyphony,
    ScaleConsistency,
)
from evaluators.metrics.text import WordErrorRate, word_error_rate

METRICS = {
    "emotion_accuracy": EmotionAccuracy,
    "intensity_monotonicity": IntensityMonotonicity,
    "ccc": CCC,
    "wer": WordErrorRate,
    "pitch_class_entropy": PitchClassEntropy,
    "scale_consistency": ScaleConsistency,
    "groove_consistency": GrooveConsistency,
    "empty_bars": EmptyBars,
    "polyphony": Polyphony,
}

__all__ = [
    "CCC",
    "METRICS",
    "EmotionAccuracy",
    "EmptyBars",
    "GrooveConsistency",
    "IntensityMonotonicity",
    "PitchClassEntropy",
    "Polyphony",
    "ScaleConsistency",
    "WordErrorRate",
    "concordance_correlation",
    "spearman",
    "word_error_rate",
]
