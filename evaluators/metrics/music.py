"""Symbolic music quality, on any MIDI file (definitions as in MusPy's metrics, Dong et al. 2020):
pitch-class entropy, scale consistency, groove consistency, empty bars, polyphony.

Notes are read in beats (``tick / ticks_per_beat``) so that tempo changes do not matter; bars
are four beats (the generators write 4/4) unless ``beats_per_bar`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)


def midi_notes(midi) -> np.ndarray:
    """(N, 3) array of start beat, end beat, pitch for every non-drum note."""
    import pretty_midi

    if isinstance(midi, (str, Path)):
        try:
            midi = pretty_midi.PrettyMIDI(str(midi))
        except Exception as exc:
            raise ValueError(
                f"{str(midi)!r} is not a readable standard MIDI file ({type(exc).__name__})"
            ) from None
    rows = [
        (
            midi.time_to_tick(n.start) / midi.resolution,
            midi.time_to_tick(n.end) / midi.resolution,
            n.pitch,
        )
        for inst in midi.instruments
        if not inst.is_drum
        for n in inst.notes
    ]
    return np.array(rows, dtype=float).reshape(-1, 3)


def pitch_class_entropy(notes: np.ndarray) -> float:
    h = np.bincount(notes[:, 2].astype(int) % 12, minlength=12).astype(float)
    if h.sum() == 0:
        return float("nan")
    p = h[h > 0] / h.sum()
    return float(-(p * np.log2(p)).sum())


def scale_consistency(notes: np.ndarray) -> float:
    pcs = notes[:, 2].astype(int) % 12
    if len(pcs) == 0:
        return float("nan")
    return float(
        max(
            np.isin(pcs, [(t + x) % 12 for x in scale]).mean()
            for t in range(12)
            for scale in (MAJOR, MINOR)
        )
    )


def _num_bars(notes: np.ndarray, beats_per_bar: int) -> int:
    return max(1, int(np.ceil(notes[:, 1].max() / beats_per_bar - 1e-9))) if len(notes) else 0


def empty_bar_rate(notes: np.ndarray, beats_per_bar: int = 4) -> float:
    """Share of bars in which no note sounds."""
    bars = _num_bars(notes, beats_per_bar)
    if bars == 0:
        return float("nan")
    empty = sum(
        1
        for b in range(bars)
        if not np.any((notes[:, 0] < (b + 1) * beats_per_bar) & (notes[:, 1] > b * beats_per_bar))
    )
    return empty / bars


def groove_consistency(notes: np.ndarray, beats_per_bar: int = 4, steps_per_beat: int = 4) -> float:
    """1 - mean Hamming distance between the onset patterns of neighbouring bars / bar length."""
    bars = _num_bars(notes, beats_per_bar)
    if bars < 2:
        return float("nan")
    size = beats_per_bar * steps_per_beat
    grid = np.zeros((bars, size), dtype=bool)
    steps = np.round(notes[:, 0] * steps_per_beat).astype(int)
    for s in steps:
        if s // size < bars:
            grid[s // size, s % size] = True
    return float(1 - np.mean([np.sum(grid[i] != grid[i + 1]) / size for i in range(bars - 1)]))


def polyphony(notes: np.ndarray, steps_per_beat: int = 4) -> float:
    """Mean number of distinct pitches sounding, over grid steps where any note sounds."""
    if len(notes) == 0:
        return float("nan")
    n_steps = int(np.ceil(notes[:, 1].max() * steps_per_beat))
    counts = np.zeros(n_steps)
    for start, end, _ in np.unique(notes, axis=0):
        a, b = (
            int(round(start * steps_per_beat)),
            max(int(round(end * steps_per_beat)), int(round(start * steps_per_beat)) + 1),
        )
        counts[a:b] += 1
    sounding = counts[counts > 0]
    return float(sounding.mean()) if len(sounding) else float("nan")


class _PieceMetric:
    """Accumulates one value per piece; ``compute`` gives the mean and the values."""

    fn = staticmethod(lambda notes: float("nan"))

    def __init__(self) -> None:
        self.values: list[float] = []

    def update(self, midi) -> None:
        notes = midi if isinstance(midi, np.ndarray) else midi_notes(midi)
        self.values.append(self.fn(notes))

    def compute(self) -> dict:
        v = np.array(self.values, dtype=float)
        return {
            "mean": float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan"),
            "values": v.tolist(),
        }


class PitchClassEntropy(_PieceMetric):
    fn = staticmethod(pitch_class_entropy)


class ScaleConsistency(_PieceMetric):
    fn = staticmethod(scale_consistency)


class GrooveConsistency(_PieceMetric):
    fn = staticmethod(groove_consistency)


class EmptyBars(_PieceMetric):
    fn = staticmethod(empty_bar_rate)


class Polyphony(_PieceMetric):
    fn = staticmethod(polyphony)
