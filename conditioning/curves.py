"""EmotionCurve: an emotion that changes over time, as keyframes interpolated per frame.

Time is in one unit for the whole curve: seconds (speech, faces) or bars / beats (music). What is
interpolated is the contribution vector ``c_k = w_k * intensity`` (see ``spec.py``), so that
``sad@0.8 -> happy@1`` passes through a mixture of the two with the sad part fading out, and a
generator that steers by contributions moves smoothly. Before the first and after the last keyframe
the curve holds its end values.

Example:
    >>> from conditioning import parse_emotion
    >>> curve = parse_emotion("sad@0.8 -> happy@1 over 16 bars").curve
    >>> curve.at(8.0).to_string()
    '(0.555556*happy+0.444444*sad)@0.9'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conditioning.spec import EmotionSpec, _fmt

UNITS = ("s", "bars", "beats")
UNIT_ALIASES = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "bar": "bars",
    "bars": "bars",
    "measure": "bars",
    "measures": "bars",
    "beat": "beats",
    "beats": "beats",
}
INTERPOLATIONS = ("linear", "smooth", "step")


@dataclass(frozen=True)
class Keyframe:
    time: float
    spec: EmotionSpec


class EmotionCurve:
    """Keyframes over time.

    Args:
        keyframes: ``(time, EmotionSpec)`` pairs; times strictly increasing, the first >= 0.
        unit: ``"s"``, ``"bars"`` or ``"beats"``.
        interpolation: ``"linear"``, ``"smooth"`` (cosine ease in and out between keyframes, no
            kink at the keyframes' ends of each segment) or ``"step"`` (hold each keyframe).
        evenly_spaced: set by the parser for the ``over N unit`` form, to print it back that way.
    """

    def __init__(
        self,
        keyframes: list[tuple[float, EmotionSpec]],
        unit: str = "s",
        interpolation: str = "linear",
        evenly_spaced: bool = False,
    ) -> None:
        if unit not in UNITS:
            raise ValueError(f"curve unit must be one of {', '.join(UNITS)}, got {unit!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}"
            )
        if len(keyframes) < 2:
            raise ValueError("a curve needs at least two keyframes, e.g. 'sad -> happy over 8 s'")
        frames = []
        for t, spec in keyframes:
            t = float(t)
            if not math.isfinite(t) or t < 0:
                raise ValueError(f"keyframe times must be finite and >= 0, got {t}")
            if not isinstance(spec, EmotionSpec):
                raise ValueError("keyframes must hold EmotionSpec objects")
            frames.append(Keyframe(t, spec))
        for a, b in zip(frames, frames[1:]):
            if b.time <= a.time:
                raise ValueError(
                    f"keyframe times must increase strictly, got {a.time:g} then {b.time:g}"
                )
        self.keyframes = tuple(frames)
        self.unit = unit
        self.interpolation = interpolation
        self.evenly_spaced = evenly_spaced
        self._times = np.array([k.time for k in frames])
        self._contrib = np.stack([k.spec.contributions() for k in frames])  # (F, K)

    @property
    def start(self) -> float:
        return self.keyframes[0].time

    @property
    def end(self) -> float:
        return self.keyframes[-1].time

    @property
    def duration(self) -> float:
        return self.end

    def contributions(self, times: np.ndarray | list[float] | float) -> np.ndarray:
        """Interpolated contributions, shape (T, K) (or (K,) for a scalar time)."""
        scalar = np.ndim(times) == 0
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        t_clamped = np.clip(t, self._times[0], self._times[-1])
        idx = np.searchsorted(self._times, t_clamped, side="right") - 1
        idx = np.clip(idx, 0, len(self._times) - 2)
        t0, t1 = self._times[idx], self._times[idx + 1]
        u = (t_clamped - t0) / (t1 - t0)  # (T,) in [0, 1]
        if self.interpolation == "smooth":
            u = 0.5 - 0.5 * np.cos(np.pi * u)
        elif self.interpolation == "step":
            u = (u >= 1.0).astype(np.float64)
        c = (1 - u)[:, None] * self._contrib[idx] + u[:, None] * self._contrib[idx + 1]
        return c[0] if scalar else c

    def at(self, time: float) -> EmotionSpec:
        """The spec at one time."""
        return EmotionSpec.from_contributions(self.contributions(float(time)))

    def sample(self, times: np.ndarray | list[float]) -> list[EmotionSpec]:
        """The spec at each time."""
        return [EmotionSpec.from_contributions(c) for c in self.contributions(times)]

    def frame_times(self, frames_per_unit: float, duration: float | None = None) -> np.ndarray:
        """Times of frames at a rate (e.g. fps for seconds, 1 for one value per bar)."""
        if frames_per_unit <= 0:
            raise ValueError("frames_per_unit must be > 0")
        duration = self.end if duration is None else float(duration)
        n = max(1, int(math.ceil(duration * frames_per_unit - 1e-9)))
        return np.arange(n) / float(frames_per_unit)

    def vad(self, times: np.ndarray | list[float]) -> np.ndarray:
        """VAD points over time, shape (T, 3)."""
        return np.array([s.vad for s in self.sample(times)])

    def to_string(self) -> str:
        unit = self.unit
        if self.evenly_spaced and self.start == 0:
            body = " -> ".join(k.spec.to_string() for k in self.keyframes)
            return f"{body} over {_fmt(self.end)} {unit}"
        return " -> ".join(f"{k.spec.to_string()} at {_fmt(k.time)}" for k in self.keyframes) + (
            f" {unit}"
        )

    def __repr__(self) -> str:
        return f"EmotionCurve({self.to_string()!r}, interpolation={self.interpolation!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmotionCurve):
            return NotImplemented
        return (
            self.unit == other.unit
            and self.interpolation == other.interpolation
            and len(self.keyframes) == len(other.keyframes)
            and all(
                abs(a.time - b.time) < 1e-9 and a.spec.isclose(b.spec)
                for a, b in zip(self.keyframes, other.keyframes)
            )
        )

    __hash__ = None  # mutable-looking container; compare by value only
