"""music-audio-v1: a second, independent music recognizer that listens to rendered audio.

Where music-features-v1 reads the score (MIDI), this one reads the waveform, so it judges what a
listener gets after instruments and the synthesizer: mode from a chromagram (Krumhansl-Kessler
key profiles), the rate of note onsets (peaks of a spectral-flux envelope: the audible pace;
a beat-level tempo estimate was tried and dropped, its octave errors were too frequent),
loudness and brightness (spectral centroid). Valence and arousal are transparent weighted sums
with the signs the music-psychology literature reports (mode for valence; pace of events and
loudness for arousal: Gabrielsson & Lindstrom 2010; Eerola, Friberg & Bresin 2013; brightness as a
secondary cue to both: Juslin & Laukka 2004); categories by distance in the valence-arousal plane.
No learned weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conditioning.audio import load_audio
from conditioning.spec import EmotionSpec
from evaluators.recognizers.base import va_probabilities

SR = 22050
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
REFERENCE = {"mode_major": (0.5, 0.5), "onset_rate": (3.5, 2.0),
             "loudness_db": (-20.0, 6.0), "centroid_log": (np.log(1500.0), 0.5)}
VALENCE = {"mode_major": 0.6, "onset_rate": 0.15, "centroid_log": 0.15}
AROUSAL = {"onset_rate": 0.5, "loudness_db": 0.35, "centroid_log": 0.15}


@dataclass
class MusicAudioReading:
    valence: float
    arousal: float
    probabilities: dict[str, float]
    category: str
    features: dict[str, float]
    dominance: float | None = None
    recognizer: str = "music-audio-v1"

    def as_spec(self) -> EmotionSpec:
        return EmotionSpec.from_contributions({k: p for k, p in self.probabilities.items() if p >= 0.01},
                                              notes=(f"read by {self.recognizer}",))


def audio_features(wav: np.ndarray, sample_rate: int) -> dict[str, float]:
    from conditioning.audio import resample

    x = resample(np.asarray(wav, dtype=np.float32), sample_rate, SR).astype(np.float64)
    n_fft, hop = 4096, 512
    if len(x) < n_fft * 2:
        raise ValueError("audio too short to read music from (at least 0.4 s)")
    idx = np.arange(n_fft)[None] + hop * np.arange(1 + (len(x) - n_fft) // hop)[:, None]
    frames = x[idx] * np.hanning(n_fft)
    spec = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    sel = (freqs >= 55) & (freqs <= 2000)
    pc = np.round(12 * np.log2(freqs[sel] / 440.0)).astype(int) % 12
    chroma = np.zeros(12)
    np.add.at(chroma, (pc + 9) % 12, (spec[:, sel] ** 2).sum(0))  # index 0 = C
    profiles = np.stack([np.roll(p, k) for p in (_MAJOR, _MINOR) for k in range(12)])
    zp = (profiles - profiles.mean(1, keepdims=True)) / profiles.std(1, keepdims=True)
    corr = zp @ ((chroma - chroma.mean()) / (chroma.std() + 1e-12)) / 12
    mode_major = 1.0 if int(np.argmax(corr)) < 12 else 0.0
    # onsets from a finer STFT (46 ms windows, 11.6 ms hop): spectral flux of the log spectrum
    n2, h2 = 1024, 256
    idx2 = np.arange(n2)[None] + h2 * np.arange(1 + (len(x) - n2) // h2)[:, None]
    logspec = np.log(np.abs(np.fft.rfft(x[idx2] * np.hanning(n2), axis=1)) + 1e-6)
    flux = np.maximum(np.diff(logspec, axis=0), 0).mean(1)
    flux = flux - np.convolve(flux, np.ones(32) / 32, mode="same")
    env = np.convolve(np.maximum(flux, 0), np.hanning(7) / np.hanning(7).sum(), mode="same")
    thr = env.mean() + env.std()
    peaks = np.flatnonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > thr))
    loud = np.sqrt(np.mean(x**2))
    centroid = float((spec * freqs).sum() / (spec.sum() + 1e-12))
    return {"mode_major": mode_major, "onset_rate": len(peaks) / (len(x) / SR),
            "loudness_db": float(20 * np.log10(loud + 1e-12)), "centroid_log": float(np.log(centroid + 1e-6))}


class MusicAudioRecognizer:
    name = "music-audio-v1"
    medium = "music"
    source = "this project (evaluators/recognizers/music_audio.py): audio features, literature-signed weights"
    licence = "Apache-2.0 (this project); no learned weights"

    def __call__(self, audio, sample_rate: int | None = None) -> MusicAudioReading:
        a = load_audio(audio, sample_rate, min_seconds=0.4)
        f = audio_features(a.wav, a.sample_rate)

        def score(weights):
            return float(np.tanh(sum(w * np.clip((f[k] - REFERENCE[k][0]) / REFERENCE[k][1], -3, 3)
                                     for k, w in weights.items())))

        v, ar = score(VALENCE), score(AROUSAL)
        p = va_probabilities(v, ar)
        return MusicAudioReading(v, ar, p, max(p, key=p.get), f)
