"""Speech -> what the face does while speaking: audio features for the motion model, and the motion
targets it learns from (phonetic alignment -> mouth shapes, pitch accents -> brow movement).

Audio features. The 80-band log-mel spectrogram of the speech medium (22,050 Hz, hop 256, the
HiFi-GAN front end) averaged into 25 fps video frames, with the clip's loudest frame at 0 dB so
that features do not depend on the recording level.

Targets (training only). pocketsphinx aligns the known words of an utterance to its audio
(words, then phones, at 10 ms). Each phone has a mouth shape in the rig's units (``PHONE_SHAPES``:
jaw drop AU26, lips part AU25, rounding AU18, spreading AU20, lip press AU24). The values follow
the usual viseme classes of English (bilabials closed; labiodentals lower lip to the teeth;
rounded vowels and /w/ rounded; open vowels with the widest jaw; cf. the MPEG-4 viseme set and
Jesse & Massaro 2010); their sizes are this project's choice. Coarticulation: the phone sequence
is smoothed by a Gaussian of 30 ms, with lip closures kept (a maximum filter on the press channel
before smoothing), as the dominance model of Cohen & Massaro (1993) does in spirit. Jaw and lip
opening grow with the level of the speech (louder speech is articulated with larger jaw
movements: Schulman 1989). Brows rise a little on pitch accents (eyebrow raises co-occur with F0
rises: Cave et al. 1996).
"""

from __future__ import annotations

import numpy as np

from generators.face.rig import MOTION

FPS = 25
SR = 22050
MEL_HOP = 256

#: (AU26 jaw, AU25 lips part, AU18 round, AU20 spread, AU24 press) per ARPAbet phone.
PHONE_SHAPES: dict[str, tuple[float, float, float, float, float]] = {
    "AA": (0.80, 0.60, 0.0, 0.0, 0.0), "AE": (0.70, 0.60, 0.0, 0.30, 0.0),
    "AH": (0.55, 0.50, 0.0, 0.0, 0.0), "AO": (0.70, 0.50, 0.40, 0.0, 0.0),
    "AW": (0.65, 0.50, 0.30, 0.0, 0.0), "AY": (0.65, 0.50, 0.0, 0.20, 0.0),
    "EH": (0.50, 0.50, 0.0, 0.30, 0.0), "ER": (0.30, 0.35, 0.30, 0.0, 0.0),
    "EY": (0.45, 0.45, 0.0, 0.40, 0.0), "IH": (0.30, 0.40, 0.0, 0.45, 0.0),
    "IY": (0.20, 0.35, 0.0, 0.60, 0.0), "OW": (0.45, 0.40, 0.70, 0.0, 0.0),
    "OY": (0.50, 0.45, 0.50, 0.0, 0.0), "UH": (0.25, 0.30, 0.60, 0.0, 0.0),
    "UW": (0.20, 0.25, 0.90, 0.0, 0.0),
    "B": (0.08, 0.0, 0.0, 0.0, 1.0), "P": (0.08, 0.0, 0.0, 0.0, 1.0), "M": (0.08, 0.0, 0.0, 0.0, 1.0),
    "F": (0.12, 0.15, 0.0, 0.0, 0.45), "V": (0.12, 0.15, 0.0, 0.0, 0.45),
    "W": (0.15, 0.15, 0.90, 0.0, 0.0), "R": (0.20, 0.25, 0.40, 0.0, 0.0),
    "TH": (0.20, 0.35, 0.0, 0.0, 0.0), "DH": (0.20, 0.35, 0.0, 0.0, 0.0),
    "S": (0.10, 0.30, 0.0, 0.35, 0.0), "Z": (0.10, 0.30, 0.0, 0.35, 0.0),
    "SH": (0.15, 0.30, 0.50, 0.0, 0.0), "ZH": (0.15, 0.30, 0.50, 0.0, 0.0),
    "CH": (0.15, 0.30, 0.50, 0.0, 0.0), "JH": (0.15, 0.30, 0.50, 0.0, 0.0),
    "T": (0.20, 0.30, 0.0, 0.0, 0.0), "D": (0.20, 0.30, 0.0, 0.0, 0.0),
    "N": (0.20, 0.30, 0.0, 0.0, 0.0), "L": (0.25, 0.35, 0.0, 0.0, 0.0),
    "K": (0.25, 0.30, 0.0, 0.0, 0.0), "G": (0.25, 0.30, 0.0, 0.0, 0.0),
    "NG": (0.25, 0.30, 0.0, 0.0, 0.0), "HH": (0.30, 0.35, 0.0, 0.0, 0.0),
    "Y": (0.15, 0.30, 0.0, 0.40, 0.0),
}
SHAPE_AUS = ("AU26", "AU25", "AU18", "AU20", "AU24")


def frames_for(seconds: float) -> int:
    """Video frames for a clip: the nearest whole number at 25 fps (at least 1)."""
    return max(1, int(round(seconds * FPS)))


def audio_features(wav: np.ndarray, n_frames: int | None = None, mel_fn=None) -> np.ndarray:
    """(n_frames, 80) log-mel (natural log, loudest frame at 0) per 25 fps frame of 22,050 Hz audio."""
    import torch

    if mel_fn is None:
        from generators.audio_features import MelSpectrogram

        mel_fn = MelSpectrogram()
    n_frames = n_frames or frames_for(len(wav) / SR)
    with torch.inference_mode():
        mel = mel_fn(torch.from_numpy(np.asarray(wav, dtype=np.float32))).numpy().T  # (M, 80) log
    t_mel = (np.arange(len(mel)) * MEL_HOP + MEL_HOP / 2) / SR
    idx = np.clip(np.floor(t_mel * FPS).astype(int), 0, n_frames - 1)
    out = np.zeros((n_frames, mel.shape[1]))
    count = np.zeros(n_frames)
    np.add.at(out, idx, mel)
    np.add.at(count, idx, 1)
    empty = count == 0
    out[~empty] /= count[~empty, None]
    if empty.any():  # frames with no mel frame (only at the very end): repeat the last one
        filled = np.nonzero(~empty)[0]
        out[empty] = out[filled[np.searchsorted(filled, np.nonzero(empty)[0]).clip(0, len(filled) - 1)]]
    energy = np.log(np.exp(out).mean(1))
    out -= energy.max()
    return np.maximum(out, np.log(1e-5) - 1.0).astype(np.float32)


def align_phones(wav16: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """(phone, start s, end s) of ``text`` in 16 kHz speech, by pocketsphinx forced alignment;
    empty when the words cannot be aligned."""
    from pocketsphinx import Decoder

    words = " ".join(w for w in "".join(ch if ch.isalpha() or ch in " '" else " " for ch in text.lower()).split())
    pcm = (np.clip(wav16, -1, 1) * 32767).astype(np.int16).tobytes()
    n_words = len(words.split())
    # the default beams first; wider ones when they lose the path (some synthetic voices)
    for beams in ({}, {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}):
        phones = _align(Decoder(samprate=16000, loglevel="FATAL", **beams), pcm, words)
        if sum(p[0] in PHONE_SHAPES for p in phones) >= 2 * n_words:
            return phones
    return []  # unaligned, or fewer phones than two per word: the alignment collapsed


def _align(dec, pcm: bytes, words: str) -> list[tuple[str, float, float]]:
    try:  # words first, then phones within them
        dec.set_align_text(words)
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        dec.set_alignment()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
    except (RuntimeError, ValueError, KeyError):  # a word missing from the dictionary, no path
        return []
    al = dec.get_alignment()
    if al is None:
        return []
    return [(p.name, p.start / 100.0, (p.start + p.duration) / 100.0) for p in al.phones()]


def vocal_effort(feats: np.ndarray, range_db: float = 40.0) -> np.ndarray:
    """(T,) 0..1 per frame: the frame's level within ``range_db`` below the clip's loudest."""
    energy_db = 10 * np.log10(np.exp(feats).mean(1) + 1e-12)
    return np.clip(1 + (energy_db - energy_db.max()) / range_db, 0, 1)


def mouth_targets(phones: list[tuple[str, float, float]], n_frames: int,
                  effort: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, 5) mouth shapes (``SHAPE_AUS``) from an alignment, coarticulated. With
    ``effort`` (``vocal_effort``), jaw and lip opening grow with the speech's level: louder
    syllables are articulated with a wider jaw (Schulman 1989, JASA 85(1))."""
    from scipy.ndimage import gaussian_filter1d, maximum_filter1d

    fine = np.zeros((n_frames * 4, len(SHAPE_AUS)))  # 10 ms grid
    for name, s, e in phones:
        shape = PHONE_SHAPES.get(name.rstrip("012"))
        if shape is None:
            continue
        a, b = int(round(s * 100)), max(int(round(e * 100)), int(round(s * 100)) + 1)
        fine[a:b] = shape
    fine[:, 4] = maximum_filter1d(fine[:, 4], size=5)  # closures held about 50 ms
    fine = gaussian_filter1d(fine, sigma=3.0, axis=0, mode="nearest")  # 30 ms
    out = fine.reshape(n_frames, 4, -1).mean(1)
    if effort is not None:
        gain = 0.25 + 0.75 * gaussian_filter1d(np.asarray(effort, dtype=np.float64), 1.0)
        out[:, :2] *= gain[:, None]
    return out


def brow_accents(wav: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames,) 0..1: brief brow raises at the larger F0 rises of the clip."""
    import pyworld as pw
    from scipy.ndimage import gaussian_filter1d

    x = np.asarray(wav, dtype=np.float64)
    f0, t = pw.dio(x, SR, f0_floor=60, f0_ceil=700, frame_period=1000.0 / FPS)
    f0 = pw.stonemask(x, f0, t, SR)
    f0 = np.resize(f0, n_frames) if len(f0) != n_frames else f0
    voiced = f0 > 0
    if voiced.sum() < 5:
        return np.zeros(n_frames)
    st = np.where(voiced, 12 * np.log2(np.maximum(f0, 1) / np.median(f0[voiced])), 0.0)
    rise = np.maximum(st - 2.0, 0.0) * voiced  # more than 2 semitones above the speaker's median
    return np.clip(gaussian_filter1d(rise, 2.0) / 3.0, 0, 1)


def combine(emotion_aus: np.ndarray, mouth: np.ndarray, brows: np.ndarray | None = None,
            articulation_gain: float = 1.0) -> np.ndarray:
    """Per-frame rig parameters (T, len(MOTION)) from the emotion AUs (T, 16), mouth shapes (T, 5)
    and brow accents (T,): speech adds to the expression; closures (AU24) close the mouth
    whatever the expression asks."""
    T = len(mouth)
    out = np.zeros((T, len(MOTION)))
    out[:, : emotion_aus.shape[1]] = emotion_aus
    col = {au: MOTION.index(au) for au in MOTION}
    m = mouth * articulation_gain
    press = np.clip(mouth[:, 4], 0, 1)
    jaw_e, part_e = out[:, col["AU26"]].copy(), out[:, col["AU25"]].copy()
    out[:, col["AU26"]] = (jaw_e + (1 - 0.5 * jaw_e) * m[:, 0]) * (1 - 0.8 * press)
    out[:, col["AU25"]] = (part_e + (1 - 0.5 * part_e) * m[:, 1]) * (1 - press)
    out[:, col["AU18"]] = m[:, 2]
    out[:, col["AU20"]] = out[:, col["AU20"]] + m[:, 3] * 0.6
    out[:, col["AU24"]] = press
    if brows is not None:
        out[:, col["AU1"]] += 0.25 * brows
        out[:, col["AU2"]] += 0.25 * brows
    return np.clip(out, 0.0, 1.2)
