"""The music representation: a two-track piano-roll on a sixteenth-note grid, and the musical
attributes computed from it.

Grid: 4 steps a beat, 4 beats a bar (16 steps), pitches MIDI 36..99 (64 rows). Four channels:

======  ==========================================================
0       melody onsets (1 where a melody note starts)
1       melody frames (1 while a melody note sounds, onsets included)
2       accompaniment onsets
3       accompaniment frames
======  ==========================================================

Pieces are stored with their tonic moved to C (the generator transposes back to any key), so the
roll's pitch classes are scale degrees.

Attributes (after EmoGen's attribute set; computed per segment from the roll):

=================  ================================================================================
major              1 when the duration-weighted pitch-class profile correlates better with the C
                   major than the C minor Krumhansl-Kessler profile (tonic is C), else 0
key_clarity        the best correlation over all 24 keys (Krumhansl-Schmuckler)
density            melody onsets per bar
acc_density        accompaniment onsets per bar
register           duration-weighted mean MIDI pitch of the melody
pitch_range        highest minus lowest melody pitch (semitones)
interval           mean absolute melodic interval (semitones)
note_value         mean melody inter-onset interval (beats): the rhythmic value
syncopation        share of melody onsets that fall off the beat
articulation       mean melody note length / inter-onset interval (1 legato, lower detached)
=================  ================================================================================

Rendering-side attributes the corpus lacks (``tempo`` in BPM, ``velocity`` 1..127) complete the
vector the emotion mapping steers (``mapping.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
STEPS_PER_BAR = STEPS_PER_BEAT * BEATS_PER_BAR
SEGMENT_BARS = 4
SEGMENT_STEPS = SEGMENT_BARS * STEPS_PER_BAR
PITCH_LOW = 36
NUM_PITCHES = 64
NUM_CHANNELS = 4
MEL_ON, MEL_FRAME, ACC_ON, ACC_FRAME = 0, 1, 2, 3

ROLL_ATTRIBUTES = (
    "major",
    "key_clarity",
    "density",
    "acc_density",
    "register",
    "pitch_range",
    "interval",
    "note_value",
    "syncopation",
    "articulation",
)
RENDER_ATTRIBUTES = ("tempo", "velocity")
ATTRIBUTES = ROLL_ATTRIBUTES + RENDER_ATTRIBUTES

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True, order=True)
class Note:
    """One note on the grid: start and length in steps, MIDI pitch, track (0 melody, 1 acc)."""

    start: int
    length: int
    pitch: int
    track: int
    velocity: int = 80


def notes_to_roll(notes: list[Note], num_steps: int) -> np.ndarray:
    """Notes -> roll of shape (4, NUM_PITCHES, num_steps), float32 in {0, 1}."""
    roll = np.zeros((NUM_CHANNELS, NUM_PITCHES, num_steps), dtype=np.float32)
    for n in notes:
        p = n.pitch - PITCH_LOW
        if not 0 <= p < NUM_PITCHES or n.start >= num_steps or n.length <= 0:
            continue
        end = min(num_steps, n.start + n.length)
        on, frame = (MEL_ON, MEL_FRAME) if n.track == 0 else (ACC_ON, ACC_FRAME)
        roll[on, p, n.start] = 1.0
        roll[frame, p, n.start : end] = 1.0
    return roll


def roll_to_notes(roll: np.ndarray, threshold: float = 0.5) -> list[Note]:
    """Roll (4, P, T) -> notes. A note starts at an onset (or where a frame run begins without
    one) and lasts while its frame stays on; a new onset inside a run splits it."""
    notes: list[Note] = []
    for track, (on_ch, fr_ch) in enumerate(((MEL_ON, MEL_FRAME), (ACC_ON, ACC_FRAME))):
        on = roll[on_ch] > threshold
        fr = (roll[fr_ch] > threshold) | on
        for p in range(roll.shape[1]):
            t, steps = 0, roll.shape[2]
            while t < steps:
                if not fr[p, t]:
                    t += 1
                    continue
                start = t
                t += 1
                while t < steps and fr[p, t] and not on[p, t]:
                    t += 1
                notes.append(Note(start, t - start, p + PITCH_LOW, track))
    notes.sort(key=lambda n: (n.start, n.track, -n.pitch))
    return notes


def melody_line(notes: list[Note]) -> list[Note]:
    """The melody track as a line: at each onset keep the highest note."""
    by_start: dict[int, Note] = {}
    for n in notes:
        if n.track == 0 and (n.start not in by_start or n.pitch > by_start[n.start].pitch):
            by_start[n.start] = n
    return [by_start[s] for s in sorted(by_start)]


def pitch_class_profile(notes: list[Note]) -> np.ndarray:
    """Duration-weighted pitch-class histogram, shape (12,)."""
    h = np.zeros(12)
    for n in notes:
        h[n.pitch % 12] += n.length
    return h


def key_correlations(profile: np.ndarray) -> np.ndarray:
    """Pearson correlation of a profile with the 24 KK key profiles: (2, 12), [major, minor] x tonic."""
    out = np.zeros((2, 12))
    if profile.sum() <= 0 or np.allclose(profile, profile[0]):
        return out
    for m, base in enumerate((KK_MAJOR, KK_MINOR)):
        for tonic in range(12):
            out[m, tonic] = np.corrcoef(profile, np.roll(base, tonic))[0, 1]
    return out


def compute_attributes(notes: list[Note], num_bars: float) -> dict[str, float]:
    """The roll attributes of a stretch of music (tonic assumed at C)."""
    mel = melody_line(notes)
    acc = [n for n in notes if n.track == 1]
    corr = key_correlations(pitch_class_profile(notes))
    out = {
        "major": float(corr[0, 0] >= corr[1, 0]),
        "key_clarity": float(corr.max()),
        "density": len(mel) / num_bars,
        "acc_density": len({(n.start, n.pitch) for n in acc}) / num_bars,
    }
    if mel:
        pitches = np.array([n.pitch for n in mel], dtype=float)
        lengths = np.array([n.length for n in mel], dtype=float)
        starts = np.array([n.start for n in mel])
        out["register"] = float((pitches * lengths).sum() / lengths.sum())
        out["pitch_range"] = float(pitches.max() - pitches.min())
        out["interval"] = float(np.abs(np.diff(pitches)).mean()) if len(mel) > 1 else 0.0
        ioi = np.diff(starts).astype(float)
        out["note_value"] = (
            float(ioi.mean() / STEPS_PER_BEAT) if len(ioi) else float(lengths[0] / STEPS_PER_BEAT)
        )
        out["syncopation"] = float(np.mean(starts % STEPS_PER_BEAT != 0))
        if len(ioi):
            out["articulation"] = float(np.clip(lengths[:-1] / ioi, 0, 1).mean())
        else:
            out["articulation"] = 1.0
    else:
        out.update(
            register=0.0,
            pitch_range=0.0,
            interval=0.0,
            note_value=0.0,
            syncopation=0.0,
            articulation=0.0,
        )
    return out
