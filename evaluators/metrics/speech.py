"""Speech: content kept (offline ASR), speaker kept (GE2E cosine), prosody statistics
(F0, loudness, tempo), mel-cepstral distortion against a reference, and signal guards.

- ``transcribe``: pocketsphinx 5 (CMU Sphinx, en-us acoustic and language model inside the PyPI
  wheel; BSD), offline; feed ``WordErrorRate`` with its transcripts.
- ``SpeakerSimilarity``: cosine of GE2E embeddings (``conditioning.speaker``).
- ``prosody_statistics``: F0 median (Hz and semitones re 55 Hz, WORLD DIO/StoneMask), active-speech
  level (RMS in dBFS over 25 ms frames within 40 dB of the loudest), active-speech duration (first to
  last active frame), peak level, and the medians of the first three **formants** over voiced
  frames (``lpc_formants``; a smile raises them: Tartter 1980).
- ``mel_cepstral_distortion``: MCD in dB (Kubichek 1993) over DTW-aligned frames, c1..c24.
- ``SignalGuards``: NaN/inf, clipping (samples at full scale), peak dBFS.
"""

from __future__ import annotations

import functools

import numpy as np

from conditioning.audio import resample

SR = 16000


@functools.lru_cache(maxsize=1)
def _decoder():
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:  # pragma: no cover - installed by .ci/setup
        raise FileNotFoundError(
            "the offline speech recognizer is the PyPI package pocketsphinx; install it with "
            "pip install --no-deps pocketsphinx==5.1.1"
        ) from exc
    return Decoder(loglevel="FATAL")


def transcribe(wav: np.ndarray, sample_rate: int) -> str:
    """Words pocketsphinx hears in a clip (lower case, no fillers)."""
    x = resample(np.asarray(wav, dtype=np.float32), sample_rate, SR)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
    dec = _decoder()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    hyp = dec.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


class SpeakerSimilarity:
    """Mean cosine of GE2E speaker embeddings between pairs (source, converted)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def update(self, a: np.ndarray, sr_a: int, b: np.ndarray, sr_b: int) -> float:
        from conditioning.speaker import speaker_similarity

        v = speaker_similarity(a, sr_a, b, sr_b)
        self.values.append(v)
        return v

    def compute(self) -> dict:
        v = np.array(self.values)
        return {"mean": float(v.mean()) if v.size else float("nan"),
                "min": float(v.min()) if v.size else float("nan"), "n": int(v.size)}


def prosody_statistics(wav: np.ndarray, sample_rate: int) -> dict[str, float]:
    """F0 median, level, duration and peak of a clip (see the module text)."""
    import pyworld as pw

    x = resample(np.asarray(wav, dtype=np.float32), sample_rate, SR).astype(np.float64)
    f0, t = pw.dio(x, SR, f0_floor=60, f0_ceil=700, frame_period=10.0)
    f0 = pw.stonemask(x, f0, t, SR)
    n = 400
    k = 1 + max(0, (len(x) - n) // 160)
    frames = x[np.arange(n)[None] + 160 * np.arange(k)[:, None]] if len(x) >= n else x[None]
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = np.flatnonzero(db > db.max() - 40)
    voiced = f0[f0 > 0]
    med = float(np.median(voiced)) if voiced.size else float("nan")
    rms = np.sqrt(np.mean(frames[active] ** 2)) if active.size else 1e-6
    formants = lpc_formants(x, SR, f0, 160)
    return {**{f"f{k + 1}_median_hz": float(np.median(formants[:, k])) if len(formants) else float("nan")
               for k in range(3)}, **{
        "f0_median_hz": med,
        "f0_median_st": float(12 * np.log2(med / 55.0)) if voiced.size else float("nan"),
        "f0_spread_st": float(np.std(12 * np.log2(voiced / 55.0))) if voiced.size else float("nan"),
        "level_db": float(20 * np.log10(rms + 1e-12)),
        "active_seconds": float((active[-1] - active[0] + 1) * 0.01) if active.size else 0.0,
        "peak_db": float(20 * np.log10(np.abs(x).max() + 1e-12)),
    }}


def lpc_formants(x: np.ndarray, sr: int, f0: np.ndarray, hop: int) -> np.ndarray:
    """(n, 3) F1-F3 in Hz of the voiced frames (``f0`` > 0, one value per ``hop`` samples) with
    three formants found: linear prediction (autocorrelation method, order 2 + kHz, 25 ms Hamming
    windows after pre-emphasis), the angles of the predictor's roots with bandwidths under 500 Hz,
    lowest three above 200 Hz (the usual recipe of formant trackers; eGeMAPS reports F1-F3 too)."""
    order = 2 + sr // 1000
    n = int(0.025 * sr)
    x = np.append(x[:1], x[1:] - 0.63 * x[:-1])
    starts = np.maximum(0, np.flatnonzero(f0 > 0) * hop - n // 2)
    starts = starts[starts + n <= len(x)]
    if not starts.size:
        return np.zeros((0, 3))
    frames = x[starts[:, None] + np.arange(n)[None]] * np.hamming(n)[None]
    spec = np.fft.rfft(frames, 2 * n, axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : order + 1]
    r = r[r[:, 0] > 1e-12]
    if not len(r):
        return np.zeros((0, 3))
    # the normal equations of each frame (Toeplitz in its autocorrelation), solved together
    idx = np.abs(np.arange(order)[:, None] - np.arange(order)[None])
    R = r[:, idx] + 1e-9 * r[:, :1, None] * np.eye(order)[None]
    a = np.linalg.solve(R, r[:, 1:, None])[..., 0]
    # roots of 1 - sum a_k z^-k: the eigenvalues of the companion matrices
    comp = np.zeros((len(a), order, order))
    comp[:, 0] = a
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    f = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.abs(roots) + 1e-12) * sr / np.pi
    ok = (np.imag(roots) > 0) & (f > 200) & (f < sr / 2 - 200) & (bw < 500)
    f = np.sort(np.where(ok, f, np.inf), axis=1)[:, :3]
    return f[np.isfinite(f).all(1)]


def _mcep(x: np.ndarray, order: int = 24) -> np.ndarray:
    import pyworld as pw

    f0, t = pw.dio(x, SR, frame_period=5.0)
    sp = pw.cheaptrick(x, f0, t, SR)
    return pw.code_spectral_envelope(sp, SR, order + 1)[:, 1:]


def mel_cepstral_distortion(ref: np.ndarray, sr_ref: int, hyp: np.ndarray, sr_hyp: int) -> float:
    """MCD (dB) between two clips of the same words, DTW-aligned, c1..c24, speech frames only."""
    a = _mcep(resample(ref, sr_ref, SR).astype(np.float64))
    b = _mcep(resample(hyp, sr_hyp, SR).astype(np.float64))
    a, b = a[::2], b[::2]  # 10 ms steps keep the DTW small
    cost = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0
    steps = np.zeros_like(acc)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            prev = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
            m = int(np.argmin(prev))
            acc[i, j] = cost[i - 1, j - 1] + prev[m]
            steps[i, j] = (steps[i - 1, j - 1], steps[i - 1, j], steps[i, j - 1])[m] + 1
    mean_dist = acc[-1, -1] / steps[-1, -1]
    return float(10 / np.log(10) * np.sqrt(2) * mean_dist)


class SignalGuards:
    """Counts clips with NaN/inf, clipping, or a peak above ``ceiling_db``."""

    def __init__(self, ceiling_db: float = -1.0) -> None:
        self.ceiling_db = ceiling_db
        self.n = self.nan = self.clipped = self.over = 0
        self.max_peak_db = -np.inf

    def update(self, wav: np.ndarray) -> None:
        self.n += 1
        w = np.asarray(wav, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            self.nan += 1
            return
        peak = 20 * np.log10(np.abs(w).max() + 1e-12)
        self.max_peak_db = max(self.max_peak_db, peak)
        self.clipped += int(np.sum(np.abs(w) >= 0.9999) > 0)
        self.over += int(peak > self.ceiling_db + 1e-3)

    def compute(self) -> dict:
        return {"n": self.n, "nan": self.nan, "clipped": self.clipped,
                "over_ceiling": self.over, "max_peak_db": float(self.max_peak_db)}
