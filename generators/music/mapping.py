"""Emotion -> musical attributes: the music medium's direction vectors.

The music medium's emotion embedding is its attribute vector (after EmoGen, which bridges
emotion and music through attributes learned without emotion labels), standardised per attribute:
``z = (a - centre) / scale`` with the corpus median and spread for the roll attributes and fixed
values for tempo and velocity. A ``DirectionVectorModel`` in that z-space steers it: neutral is the
corpus's typical segment, each category's direction is the attribute profile below, and intensity
moves along it (0 neutral, 1 the profile, up to 1.5 exaggerated).

The default profiles follow the music-psychology literature on which structural cues express
which emotion:

- mode: major for happiness and tenderness/calm, minor for sadness, anger and fear (Hevner 1935;
  Gabrielsson & Lindstrom 2010, "The role of structure in the musical expression of emotions",
  Handbook of Music and Emotion; Eerola, Friberg & Bresin 2013, Frontiers in Psychology 4:487,
  where mode was the strongest valence cue);
- tempo and note density: fast for happiness, anger, fear and surprise, slow for sadness and
  calm (Gabrielsson & Lindstrom 2010; Juslin & Laukka 2004, J. New Music Research 33(3));
- sound level (velocity): loud for anger and happiness, soft for sadness, tenderness and fear
  (Juslin 2001; Gabrielsson & Lindstrom 2010);
- register and pitch range: high for happiness and surprise, low for sadness; wide range and large
  intervals for anger, fear and surprise, narrow for sadness and calm (Gabrielsson & Lindstrom
  2010; Eerola et al. 2013 found register a secondary cue);
- articulation: staccato for happiness, anger and fear, legato for sadness and tenderness
  (Juslin 2001); dissonance / weak tonality for anger and fear (Gabrielsson & Lindstrom 2010);
- syncopation and rhythmic activity: higher for happiness and surprise (Gabrielsson & Lindstrom
  2010 list "rhythmic activity" among happiness cues).

Disgust and contempt have no established musical-cue profile; they are steered through the VAD
axes that the profiles above imply (least squares from the categories' VAD anchors), a choice that
is stated, not a finding. ``fit_direction_model`` refits everything from labelled MIDI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conditioning import DirectionVectorModel, EmotionSpec
from conditioning.io import atomic_write
from generators.music.representation import ATTRIBUTES, ROLL_ATTRIBUTES

#: Fixed centres and scales of the rendering-side attributes (the corpus has no performance data).
RENDER_CENTRE = {"tempo": 100.0, "velocity": 72.0}
RENDER_SCALE = {"tempo": 30.0, "velocity": 20.0}
#: Rough attribute bounds, used to keep a steered (or user-fixed) vector musical.
BOUNDS = {
    "major": (0.0, 1.0),
    "key_clarity": (0.3, 1.0),
    "density": (0.5, 16.0),
    "acc_density": (0.0, 32.0),
    "register": (52.0, 88.0),
    "pitch_range": (2.0, 30.0),
    "interval": (0.5, 9.0),
    "note_value": (0.25, 4.0),
    "syncopation": (0.0, 0.8),
    "articulation": (0.3, 1.0),
    "tempo": (40.0, 200.0),
    "velocity": (25.0, 120.0),
}

#: Attribute profiles at intensity 1, as changes from neutral. Keys: an attribute with
#: ("set", v) = move to v; ("mul", f) = multiply neutral by f; ("add", d) = add d (raw units).
PROFILES: dict[str, dict[str, tuple[str, float]]] = {
    "happy": {
        "major": ("set", 1.0),
        "key_clarity": ("add", 0.04),
        "tempo": ("set", 136.0),
        "density": ("mul", 1.6),
        "acc_density": ("mul", 1.4),
        "register": ("add", 5.0),
        "pitch_range": ("mul", 1.2),
        "interval": ("mul", 1.15),
        "note_value": ("mul", 0.65),
        "syncopation": ("add", 0.12),
        "articulation": ("set", 0.72),
        "velocity": ("set", 90.0),
    },
    "sad": {
        "major": ("set", 0.0),
        "tempo": ("set", 62.0),
        "density": ("mul", 0.6),
        "acc_density": ("mul", 0.7),
        "register": ("add", -6.0),
        "pitch_range": ("mul", 0.75),
        "interval": ("mul", 0.8),
        "note_value": ("mul", 1.6),
        "syncopation": ("add", -0.05),
        "articulation": ("set", 1.0),
        "velocity": ("set", 50.0),
    },
    "angry": {
        "major": ("set", 0.0),
        "key_clarity": ("add", -0.08),
        "tempo": ("set", 152.0),
        "density": ("mul", 1.9),
        "acc_density": ("mul", 1.8),
        "register": ("add", -3.0),
        "pitch_range": ("mul", 1.3),
        "interval": ("mul", 1.4),
        "note_value": ("mul", 0.55),
        "syncopation": ("add", 0.08),
        "articulation": ("set", 0.62),
        "velocity": ("set", 110.0),
    },
    "fearful": {
        "major": ("set", 0.0),
        "key_clarity": ("add", -0.08),
        "tempo": ("set", 140.0),
        "density": ("mul", 1.6),
        "acc_density": ("mul", 1.2),
        "register": ("add", 2.0),
        "pitch_range": ("mul", 1.35),
        "interval": ("mul", 1.35),
        "note_value": ("mul", 0.65),
        "syncopation": ("add", 0.1),
        "articulation": ("set", 0.68),
        "velocity": ("set", 58.0),
    },
    "surprised": {
        "major": ("set", 1.0),
        "tempo": ("set", 132.0),
        "density": ("mul", 1.5),
        "acc_density": ("mul", 1.3),
        "register": ("add", 4.0),
        "pitch_range": ("mul", 1.45),
        "interval": ("mul", 1.5),
        "note_value": ("mul", 0.7),
        "syncopation": ("add", 0.15),
        "articulation": ("set", 0.7),
        "velocity": ("set", 94.0),
    },
    "calm": {
        "major": ("set", 1.0),
        "key_clarity": ("add", 0.04),
        "tempo": ("set", 68.0),
        "density": ("mul", 0.6),
        "acc_density": ("mul", 0.7),
        "register": ("add", -1.0),
        "pitch_range": ("mul", 0.8),
        "interval": ("mul", 0.8),
        "note_value": ("mul", 1.6),
        "syncopation": ("add", -0.05),
        "articulation": ("set", 1.0),
        "velocity": ("set", 50.0),
    },
}


@dataclass
class AttributeSpace:
    """Centres and scales that standardise attributes, and the neutral piece's attributes.

    Args:
        centre: attribute -> the corpus's typical raw value (standardisation centre).
        scale: attribute -> spread used to standardise.
        neutral: attribute -> raw value of the neutral piece. It equals ``centre`` except for the
            accompaniment density: most corpus segments are unaccompanied folk tunes (median 0),
            and every piece this system writes has an accompaniment, so neutral takes the median
            of the accompanied segments.
    """

    centre: dict[str, float]
    scale: dict[str, float]
    names: tuple[str, ...] = field(default=ATTRIBUTES)
    neutral: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.neutral is None:
            self.neutral = dict(self.centre)

    def neutral_vector(self) -> np.ndarray:
        return np.array([self.neutral[n] for n in self.names], dtype=np.float64)

    @classmethod
    def from_corpus(cls, attributes: np.ndarray) -> AttributeSpace:
        """Robust centre (median) and spread (interquartile range / 1.349) of corpus attributes."""
        a = np.asarray(attributes, dtype=np.float64)
        centre, scale = {}, {}
        for j, name in enumerate(ROLL_ATTRIBUTES):
            q25, q50, q75 = np.percentile(a[:, j], [25, 50, 75])
            spread = (q75 - q25) / 1.349
            if name == "major":  # a share, not a measurement: centre on the corpus mean
                q50, spread = float(a[:, j].mean()), 0.5
            centre[name], scale[name] = float(q50), float(max(spread, 1e-3, 0.05 * abs(q50)))
        centre.update(RENDER_CENTRE)
        scale.update(RENDER_SCALE)
        neutral = dict(centre)
        acc = a[:, ROLL_ATTRIBUTES.index("acc_density")]
        if np.any(acc > 0):
            neutral["acc_density"] = float(np.median(acc[acc > 0]))
        return cls(centre, scale, neutral=neutral)

    def to_z(self, raw: dict[str, float] | np.ndarray) -> np.ndarray:
        if isinstance(raw, dict):
            raw = np.array([raw[n] for n in self.names], dtype=np.float64)
        c = np.array([self.centre[n] for n in self.names])
        s = np.array([self.scale[n] for n in self.names])
        return (np.asarray(raw, dtype=np.float64) - c) / s

    def from_z(self, z: np.ndarray) -> np.ndarray:
        c = np.array([self.centre[n] for n in self.names])
        s = np.array([self.scale[n] for n in self.names])
        return np.asarray(z, dtype=np.float64) * s + c

    def clip(self, raw: np.ndarray) -> np.ndarray:
        lo = np.array([BOUNDS[n][0] for n in self.names])
        hi = np.array([BOUNDS[n][1] for n in self.names])
        return np.clip(raw, lo, hi)

    def to_dict(self) -> dict:
        return {
            "names": list(self.names),
            "centre": self.centre,
            "scale": self.scale,
            "neutral": self.neutral,
        }

    @classmethod
    def from_dict(cls, d: dict) -> AttributeSpace:
        return cls(d["centre"], d["scale"], tuple(d["names"]), d.get("neutral"))


def profile_target(space: AttributeSpace, category: str) -> np.ndarray:
    """Raw attribute vector of a category's profile at intensity 1."""
    target = space.neutral_vector()
    for name, (op, value) in PROFILES[category].items():
        j = space.names.index(name)
        if op == "set":
            target[j] = value
        elif op == "mul":
            target[j] *= value
        else:
            target[j] += value
    return target


def default_direction_model(space: AttributeSpace) -> DirectionVectorModel:
    """The literature-based direction model in the standardised attribute space."""
    neutral = space.to_z(space.neutral_vector())
    directions, lengths, centres = {}, {}, {"neutral": neutral}
    for cat in PROFILES:
        target = space.to_z(profile_target(space, cat))
        offset = target - neutral
        norm = float(np.linalg.norm(offset))
        directions[cat], lengths[cat], centres[cat] = offset / norm, norm, target
    model = DirectionVectorModel(
        neutral,
        directions,
        lengths,
        centres,
        meta={
            "medium": "music",
            "space": "standardised attributes",
            "attributes": list(space.names),
            "fit": "literature profiles",
        },
    )
    model.axes = model._fit_axes()
    return model


def fit_direction_model(
    attributes: np.ndarray, labels: list[str], space: AttributeSpace
) -> DirectionVectorModel:
    """Supervised fit from labelled pieces: attributes (N, len(ATTRIBUTES)) raw, labels N names.

    Category centres of the standardised attributes (supervised clustering), directions from
    the neutral centre (or the mean of all pieces when none is neutral), as in EmoReg.
    """
    z = np.stack([space.to_z(a) for a in np.asarray(attributes, dtype=np.float64)])
    return DirectionVectorModel.fit(
        z, labels, meta={"medium": "music", "fit": "labelled MIDI", "attributes": list(space.names)}
    )


def steer_attributes(
    model: DirectionVectorModel,
    space: AttributeSpace,
    spec: EmotionSpec,
    fixed: dict[str, float] | None = None,
) -> np.ndarray:
    """Raw attribute vector for a spec; ``fixed`` pins attributes (MusER-style element control)."""
    raw = space.clip(space.from_z(model.steer(model.neutral, spec)))
    for name, value in (fixed or {}).items():
        if name not in space.names:
            raise ValueError(f"unknown attribute {name!r}; accepted: {', '.join(space.names)}")
        lo, hi = BOUNDS[name]
        if not lo <= float(value) <= hi:
            raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {value}")
        raw[space.names.index(name)] = float(value)
    return raw


def save_mapping(directory: str | Path, space: AttributeSpace, model: DirectionVectorModel) -> None:
    directory = Path(directory)
    model.save(directory, prefix="emotion_")
    with atomic_write(directory / "attributes.json", "w") as tmp:
        Path(tmp).write_text(json.dumps(space.to_dict(), indent=2), "utf-8")


def load_mapping(directory: str | Path) -> tuple[AttributeSpace, DirectionVectorModel]:
    directory = Path(directory)
    space = AttributeSpace.from_dict(json.loads((directory / "attributes.json").read_text("utf-8")))
    return space, DirectionVectorModel.load(directory, prefix="emotion_")
