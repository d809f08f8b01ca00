"""Emotion -> prosody: the speech medium's emotion embedding and its direction vectors.

The speech medium's emotion embedding is an utterance-level *prosody change* vector, the same
quantities the diffusion model realises frame by frame:

==============  =====================================================================  ======
name            meaning                                                                 scale
==============  =====================================================================  ======
f0_shift        change of the median F0, semitones                                      3 st
f0_range        log of the factor on F0 excursions around the median                    0.3
loudness        level change, dB                                                        4 dB
rate            log of the speaking-rate factor (> 0 faster)                            0.1
tilt            spectral tilt change above 500 Hz, dB per octave (> 0 brighter)         2 dB
breath          aperiodicity added in voiced frames (0..1, breathy/lax voice)           0.15
final           rise (> 0) or fall of F0 over the last 0.35 s of voicing, semitones     2 st
dynamics        factor on the loudness contour's excursions (> 0 more contrast)         0.2
formant         log of the factor on formant frequencies (> 0 higher: a shorter tract)  0.03
==============  =====================================================================  ======

The embedding is standardised by the scales above. ``default_direction_model`` gives each
category a direction from the literature on vocal expression; the *directions* follow the review
of 104 studies by Juslin & Laukka (2003, Psychological Bulletin 129(5), Table 7) and Banse &
Scherer (1996, JPSP 70(3)), Scherer (2003, Speech Communication 40):

- anger (hot): high F0 level, wide F0 variability, high intensity, fast rate, much high-frequency
  energy (a flatter spectrum), more loudness contrast, falling finals;
- happiness: high F0 level, high F0 variability, raised intensity, fast rate, moderately more
  high-frequency energy, rising contours;
- fear: high F0 level, low F0 variability, fast rate, irregular/breathy voicing, intensity not
  raised;
- sadness: low F0 level, low F0 variability, low intensity, slow rate, little high-frequency
  energy (steep tilt), breathy/lax voice, falling contours;
- smiling while speaking (happiness) shortens the vocal tract and spreads the lips, which raises
  the formant frequencies as well as F0; listeners hear it from the audio alone (Tartter 1980,
  Perception & Psychophysics 27(1); Drahota, Costall & Reddy 2008, Speech Communication 50(4)).
  Happiness gets it here; the other categories leave the formants where they are;
- surprise: a large F0 rise and wide range, rising final contour (Scherer 2003);
- tenderness/calm: low F0, low variability, low intensity, slow rate, soft (steep) spectrum;
- disgust and contempt: low F0, slow rate (Banse & Scherer 1996); weaker evidence.

The *magnitudes* at intensity 1 are this project's choice, sized like the differences reported
between acted emotional and neutral speech (a few semitones, a few dB, 10-20 % rate); they are
stated here, not measured. Training on parallel emotional data (ESD, RAVDESS, CREMA-D) replaces
them with fitted directions: see ``generators.speech.training``.
"""

from __future__ import annotations

import numpy as np

from conditioning import DirectionVectorModel

PROSODY = ("f0_shift", "f0_range", "loudness", "rate", "tilt", "breath", "final", "dynamics", "formant")
SCALES = np.array([3.0, 0.3, 4.0, 0.1, 2.0, 0.15, 2.0, 0.2, 0.03])
#: Hard limits on the raw values, whatever the spec (keeps exaggerated specs speech-like).
LIMITS = np.array(
    [[-7.0, 9.0], [-1.2, 1.0], [-12.0, 10.0], [-0.45, 0.35], [-6.0, 6.0], [0.0, 0.6],
     [-6.0, 8.0], [-0.6, 0.6], [-0.1, 0.1]]
)

#: Raw prosody change at intensity 1 (f0_shift st, f0_range log, loudness dB, rate log, tilt dB/oct,
#: breath, final st, dynamics, formant log factor).
PROFILES: dict[str, tuple[float, ...]] = {
    "angry": (3.0, np.log(1.35), 7.0, np.log(1.12), 3.0, 0.0, -1.5, 0.3, 0.0),
    "happy": (3.5, np.log(1.55), 4.0, np.log(1.08), 1.0, 0.0, 1.5, 0.15, np.log(1.05)),
    "fearful": (4.5, np.log(0.7), -1.0, np.log(1.18), 0.5, 0.25, 1.0, -0.1, 0.0),
    "sad": (-2.5, np.log(0.6), -6.0, np.log(0.8), -3.0, 0.2, -2.0, -0.25, 0.0),
    "surprised": (5.0, np.log(1.8), 3.0, np.log(0.95), 1.0, 0.0, 5.0, 0.1, 0.0),
    "calm": (-1.5, np.log(0.8), -4.0, np.log(0.88), -2.0, 0.1, -1.0, -0.15, 0.0),
    "disgusted": (-2.0, np.log(1.1), 0.0, np.log(0.85), 0.5, 0.05, -2.0, 0.05, 0.0),
    "contempt": (-1.5, np.log(1.15), -1.0, np.log(0.9), 0.0, 0.0, -1.5, 0.0, 0.0),
}


def to_z(raw: np.ndarray) -> np.ndarray:
    return np.asarray(raw, dtype=np.float64) / SCALES


def from_z(z: np.ndarray) -> np.ndarray:
    return np.asarray(z, dtype=np.float64) * SCALES


def clip_raw(raw: np.ndarray) -> np.ndarray:
    return np.clip(raw, LIMITS[:, 0], LIMITS[:, 1])


def default_direction_model() -> DirectionVectorModel:
    """Literature directions in the standardised prosody-change space; neutral = no change."""
    neutral = np.zeros(len(PROSODY))
    directions, lengths, centres = {}, {}, {"neutral": neutral}
    for cat, raw in PROFILES.items():
        z = to_z(np.array(raw))
        norm = float(np.linalg.norm(z))
        directions[cat], lengths[cat], centres[cat] = z / norm, norm, z
    model = DirectionVectorModel(
        neutral, directions, lengths, centres,
        meta={"medium": "speech", "space": "standardised prosody change", "names": list(PROSODY),
              "scales": SCALES.tolist(), "fit": "literature profiles"},
    )
    model.axes = model._fit_axes()
    return model
