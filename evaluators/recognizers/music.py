"""Symbolic music emotion recognizer: valence, arousal and a category read from any MIDI file.

It measures a handful of score features (mode, tempo, note density, register, pitch range,
loudness, articulation, dissonance) and maps them to valence and arousal with a transparent
linear model. There are no learned weights: each feature is standardised against a fixed
reference (mean, scale) and weighted with the sign and rough relative size that the
music-psychology literature reports for that cue:

- Gabrielsson & Lindström (2010), "The role of structure in the musical expression of emotions",
  in Juslin & Sloboda (eds.), Handbook of Music and Emotion, OUP, pp. 367-400.
- Juslin & Laukka (2004), "Expression, perception, and induction of musical emotions: a review
  and a questionnaire study of everyday listening", Journal of New Music Research 33(3):217-238.
- Eerola, Friberg & Bresin (2013), "Emotional expression in music: contribution, linearity, and
  additivity of primary musical cues", Frontiers in Psychology 4:487.

The weights are this module's choices, informed by the order of importance those works report;
they are not coefficients copied from any of them. The reading is meant as a cheap, explainable
check that a piece moves the right way (major/fast/loud vs minor/slow/soft), not as a calibrated
listener model. It never imports a generator, so it reads MIDI from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from conditioning.spec import EmotionSpec
from evaluators.recognizers.base import va_probabilities

if TYPE_CHECKING:  # pragma: no cover
    import pretty_midi

# Krumhansl & Kessler (1982) key profiles, index 0 = tonic.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_MAJOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["c", "c#", "d", "eb", "e", "f", "f#", "g", "g#", "a", "bb", "b"]
_DISSONANT_CLASSES = (1, 6)  # interval classes: minor 2nd / major 7th, tritone
_MAX_IOI_S = 2.0  # a longer gap to the next onset is a rest between phrases, not articulation
_MAX_GRID_SAMPLES = 20_000

# feature -> (reference mean, scale): z = clip((x - mean) / scale, -3, 3). The references are
# rough centres of common-practice and popular MIDI; mode maps minor -> -1, major -> +1.
REFERENCE: dict[str, tuple[float, float]] = {
    "mode_major": (0.5, 0.5),
    "tempo_bpm": (100.0, 30.0),
    "note_density": (4.0, 3.0),  # onsets per second
    "mean_pitch": (64.0, 8.0),  # MIDI pitch (E4)
    "pitch_range": (24.0, 12.0),  # semitones
    "mean_velocity": (75.0, 20.0),
    "articulation": (0.8, 0.2),  # 1 legato
    "dissonance": (0.05, 0.1),  # share of pitch-class pairs
}
VALENCE_WEIGHTS: dict[str, float] = {
    "mode_major": 0.60,  # major +: the strongest valence cue (G&L 2010; Eerola et al. 2013)
    "mean_pitch": 0.25,  # high register +, low register - (G&L 2010; Eerola et al. 2013)
    "dissonance": -0.25,  # consonant harmony +, dissonant - (G&L 2010; J&L 2004)
    "tempo_bpm": 0.15,  # fast slightly + (happiness), slow - (sadness) (J&L 2004; Eerola 2013)
}
AROUSAL_WEIGHTS: dict[str, float] = {
    "tempo_bpm": 0.45,  # the strongest activity cue (Eerola et al. 2013; J&L 2004)
    "note_density": 0.30,  # many events per second: high activity (G&L 2010)
    "mean_velocity": 0.30,  # loud +, soft - (J&L 2004; Eerola et al. 2013)
    "articulation": -0.20,  # staccato (detached) +, legato - (J&L 2004; G&L 2010)
    "pitch_range": 0.10,  # wide range slightly + (G&L 2010)
}
#: Softmax temperature over squared distances in the scaled valence-arousal plane: a distance
#: of sqrt(0.2) ~ 0.45 (about half the gap between neighbouring anchors) costs a factor e.
TEMPERATURE = 0.2


@dataclass
class MusicFeatures:
    """What was measured in a MIDI file (pitched, non-drum instruments only)."""

    mode_major: float  # 1.0 major, 0.0 minor: best Krumhansl-Kessler key on durations per class
    key_name: str  # "C major", "a minor" (minor keys in lower case)
    key_clarity: float  # Pearson correlation of the best key profile, -1..1 (0: no key, C major)
    tempo_bpm: float  # the file's first tempo event; pretty_midi's estimate if it has none
    note_density: float  # note onsets per second over duration_s
    mean_pitch: float  # duration-weighted mean MIDI pitch (60 = C4)
    pitch_range: float  # 95th minus 5th percentile of note pitches, semitones
    mean_velocity: float  # mean note velocity, 1..127
    articulation: float  # mean duration / time to next onset (same instrument), 0..1: 1 legato
    dissonance: float  # share of sounding pitch-class pairs that are m2/M7/tritone, 16th grid
    duration_s: float  # first note onset to last note end, seconds


@dataclass
class MusicReading:
    """A recognizer's reading: valence and arousal in [-1, 1], category probabilities, features."""

    valence: float
    arousal: float
    probabilities: dict[str, float]  # over all nine categories, in vocabulary order, sum 1
    category: str  # the most probable category
    features: MusicFeatures

    def as_spec(self) -> EmotionSpec:
        """The reading as an ``EmotionSpec``, made from the probabilities (not ``from_vad``).

        Each category's probability is its contribution ``c_k = w_k * intensity``
        (``EmotionSpec.from_contributions``): the mixture is the non-neutral probabilities
        renormalised, the intensity is ``1 - p(neutral)`` and the spec's VAD is the
        probability-weighted mean anchor. Probabilities below 0.01 are dropped as dust.
        ``from_vad`` was not used: strong readings lie beyond the anchors, where its least-squares
        mixture picks unrelated categories (a sad reading came out as sad + surprised + calm).
        """
        contributions = {k: p for k, p in self.probabilities.items() if p >= 0.01}
        note = "read from MIDI features by music-features-v1"
        return EmotionSpec.from_contributions(contributions, notes=(note,))


class MusicEmotionRecognizer:
    """Reads valence, arousal and a category from a MIDI file with a literature-based linear model.

    Example:
        >>> import pretty_midi
        >>> pm = pretty_midi.PrettyMIDI(initial_tempo=150)
        >>> piano = pretty_midi.Instrument(program=0)
        >>> for i, p in enumerate([60, 64, 67, 72, 76, 72, 67, 64]):
        ...     piano.notes.append(pretty_midi.Note(100, p, i * 0.2, i * 0.2 + 0.1))
        >>> pm.instruments.append(piano)
        >>> reading = MusicEmotionRecognizer()(pm)
        >>> reading.features.key_name, reading.category, reading.valence > 0
        ('C major', 'happy', True)
    """

    name = "music-features-v1"
    medium = "music"
    source = "this project (evaluators/recognizers/music.py): symbolic features, literature-signed weights"
    licence = "Apache-2.0 (this project); no learned weights"

    def features(self, midi: str | Path | pretty_midi.PrettyMIDI) -> MusicFeatures:
        """Measure a MIDI file (a path or a loaded ``pretty_midi.PrettyMIDI``); see MusicFeatures.

        For a file the tempo is its earliest ``set_tempo`` event; a loaded ``PrettyMIDI`` no longer
        tells whether its file had one, so its first tempo change is used (120 if it had none).
        """
        pm, tempo = _load(midi)
        notes = [
            (n.start, n.end, n.pitch, n.velocity, i)
            for i, inst in enumerate(pm.instruments)
            if not inst.is_drum
            for n in inst.notes
        ]
        if not notes:
            raise ValueError(
                f"{_describe(midi)} has no notes (drum tracks aside); "
                "give a standard MIDI file with notes"
            )
        arr = np.array(notes, dtype=np.float64)  # (N, 5)
        start, end, pitch, vel, inst = arr.T
        dur = np.maximum(end - start, 0.0)
        t0, duration_s = start.min(), float(end.max() - start.min())
        if tempo is None:
            try:
                tempo = float(pm.estimate_tempo())
            except ValueError:  # fewer than two notes: MIDI's default tempo
                tempo = 120.0
        sixteenth = 60.0 / tempo / 4.0
        weights = dur if dur.sum() > 0 else np.ones_like(dur)  # all zero-length: count notes

        # Key: Krumhansl-Schmuckler, correlating the pitch-class histogram with 24 rotated profiles.
        hist = np.bincount(pitch.astype(int) % 12, weights=weights, minlength=12)
        profiles = np.stack(
            [np.roll(p, k) for p in (_MAJOR_PROFILE, _MINOR_PROFILE) for k in range(12)]
        )
        corr = np.zeros(24)
        if hist.std() > 0:  # a flat histogram (all 12 classes equal) has no key
            zp = (profiles - profiles.mean(1, keepdims=True)) / profiles.std(1, keepdims=True)
            corr = zp @ ((hist - hist.mean()) / hist.std()) / 12.0  # (24,)
        best = int(np.argmax(corr))
        key_name = (
            f"{_MAJOR_NAMES[best]} major" if best < 12 else f"{_MINOR_NAMES[best - 12]} minor"
        )

        # Articulation: duration over the gap to the next later onset in the same instrument.
        ratios = []
        for i in np.unique(inst):
            s, d = start[inst == i], dur[inst == i]
            onsets = np.unique(s)
            nxt = np.searchsorted(onsets, s, side="right")
            has = nxt < len(onsets)
            ioi = onsets[nxt[has]] - s[has]
            keep = ioi <= _MAX_IOI_S
            ratios.append(np.clip(d[has][keep] / ioi[keep], 0.0, 1.0))
        ratios = np.concatenate(ratios)
        # No note with a following onset: no evidence, so the reference value (contributes 0).
        articulation = float(ratios.mean()) if ratios.size else REFERENCE["articulation"][0]

        # Dissonance: sounding pitch classes at the middle of each 16th note.
        step = max(sixteenth, duration_s / _MAX_GRID_SAMPLES)
        n_steps = max(int(np.ceil(duration_s / step)), 1)
        active = np.zeros((n_steps, 12))  # (T, 12)
        for s, e, p in zip(start, end, pitch):
            k0, k1 = (int(np.ceil((x - t0) / step - 0.5 - 1e-6)) for x in (s, e))
            active[max(k0, 0) : k1, int(p) % 12] = 1.0
        ic = np.abs(np.subtract.outer(np.arange(12), np.arange(12)))
        dissonant = np.isin(np.minimum(ic, 12 - ic), _DISSONANT_CLASSES).astype(float)  # (12, 12)
        n_sounding = active.sum(axis=1)
        pairs = float((n_sounding * (n_sounding - 1) / 2).sum())
        bad = float(((active @ dissonant) * active).sum() / 2)

        return MusicFeatures(
            mode_major=1.0 if best < 12 else 0.0,
            key_name=key_name,
            key_clarity=float(corr[best]),
            tempo_bpm=float(tempo),
            note_density=len(notes) / max(duration_s, sixteenth),
            mean_pitch=float(np.average(pitch, weights=weights)),
            pitch_range=float(np.percentile(pitch, 95) - np.percentile(pitch, 5)),
            mean_velocity=float(vel.mean()),
            articulation=articulation,
            dissonance=bad / pairs if pairs > 0 else 0.0,
            duration_s=duration_s,
        )

    def __call__(self, midi: str | Path | pretty_midi.PrettyMIDI) -> MusicReading:
        """Read the emotion of a MIDI file.

        Args:
            midi: a path to a standard MIDI file, or a loaded ``pretty_midi.PrettyMIDI``.

        Returns:
            A ``MusicReading``: ``valence = tanh(sum_f VALENCE_WEIGHTS[f] * z_f)`` and likewise
            arousal, with ``z_f`` the feature standardised by ``REFERENCE`` and clipped to +-3;
            probabilities are a softmax of ``-d_k^2 / TEMPERATURE``, ``d_k`` the distance to
            category k's anchor in the plane of ``base.va_plane``.

        Raises:
            ValueError: the path does not exist, is not a MIDI file, or the MIDI has no notes.
        """
        feats = self.features(midi)

        def score(weights: dict[str, float]) -> float:
            z = {f: np.clip((getattr(feats, f) - m) / s, -3, 3) for f, (m, s) in REFERENCE.items()}
            return float(np.tanh(sum(w * z[f] for f, w in weights.items())))

        valence, arousal = score(VALENCE_WEIGHTS), score(AROUSAL_WEIGHTS)
        probabilities = va_probabilities(valence, arousal, TEMPERATURE)
        return MusicReading(valence, arousal, probabilities, max(probabilities, key=probabilities.get), feats)


def _describe(midi) -> str:
    return "the given MIDI" if not isinstance(midi, (str, Path)) else f"MIDI file {str(midi)!r}"


def _load(midi) -> tuple[pretty_midi.PrettyMIDI, float | None]:
    """The loaded MIDI and its first tempo in BPM (None when the file has no tempo event)."""
    import mido
    import pretty_midi

    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi, float(midi.get_tempo_changes()[1][0])
    if not isinstance(midi, (str, Path)):
        raise ValueError(
            "expected a path to a standard MIDI file or a pretty_midi.PrettyMIDI, "
            f"got {type(midi).__name__}"
        )
    path = Path(midi)
    if not path.is_file():
        raise ValueError(
            f"MIDI file {str(path)!r} does not exist or is not a file; "
            "give a standard MIDI file with notes"
        )
    try:
        mf = mido.MidiFile(filename=str(path))
        tempos = []  # (absolute tick, BPM), read before pretty_midi makes ticks absolute in place
        for track in mf.tracks:
            tick = 0
            for msg in track:
                tick += msg.time
                if msg.type == "set_tempo":
                    tempos.append((tick, mido.tempo2bpm(msg.tempo)))
        pm = pretty_midi.PrettyMIDI(mido_object=mf)
    except Exception as exc:  # mido raises OSError, EOFError, KeyError, ValueError... on bad bytes
        raise ValueError(
            f"MIDI file {str(path)!r} is not a readable standard MIDI file ({type(exc).__name__}); "
            "give a standard MIDI file with notes"
        ) from None
    return pm, (min(tempos)[1] if tempos else None)
