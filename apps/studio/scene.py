"""A scene's sound: a music cue long enough for the speech, mixed under the voice.

``bars_to_cover`` picks the number of bars from the cue's own tempo plan (a curve may change the
tempo bar by bar); ``mix_under`` trims the cue to the voice's length, fades it in and out and sets
its level relative to the voice, holding the peaks under full scale.
"""

from __future__ import annotations

import math

import numpy as np

#: the cue fades in over this long and out over up to FADE_OUT_S (a quarter of a short scene at most)
FADE_IN_S = 0.05
FADE_OUT_S = 1.0
PEAK = 0.98


def bars_to_cover(tempo_per_bar: list[float] | np.ndarray, seconds: float, max_bars: int,
                  beats_per_bar: int = 4, spare_bars: int = 1) -> int:
    """The fewest bars whose durations at ``tempo_per_bar`` (BPM, one per bar) add up to at least
    ``seconds``, plus ``spare_bars`` (the cadence then falls after the speech, which the trim cuts),
    at most ``max_bars``.

    >>> bars_to_cover([120.0] * 64, 4.0, 64)  # 2 s a bar: 2 bars, and one spare
    3
    """
    durations = beats_per_bar * 60.0 / np.asarray(tempo_per_bar, dtype=np.float64)
    ends = np.cumsum(durations)
    covered = int(np.searchsorted(ends, seconds - 1e-9)) + 1
    return int(min(max_bars, covered + spare_bars))


def to_mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    return a.mean(axis=1) if a.ndim == 2 else a


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return np.asarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(audio, target_sr // g, orig_sr // g).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def mix_under(voice: np.ndarray, sample_rate: int, music: np.ndarray, music_sr: int,
              level_db: float) -> tuple[np.ndarray, dict]:
    """``voice`` (mono) with ``music`` (mono or stereo, any rate) under it at ``level_db`` (the
    cue's RMS relative to the voice's), trimmed to the voice's length and faded; the mix is scaled
    down if its peak would pass -0.2 dBFS. Returns the mix (float32, at ``sample_rate``) and what
    was done."""
    voice = np.asarray(voice, dtype=np.float32)
    n = len(voice)
    cue = resample(to_mono(music), music_sr, sample_rate)[:n]
    if len(cue) < n:
        cue = np.pad(cue, (0, n - len(cue)))
    fade_in = min(n, int(FADE_IN_S * sample_rate))
    fade_out = min(n, int(min(FADE_OUT_S, n / sample_rate / 4) * sample_rate))
    envelope = np.ones(n, dtype=np.float32)
    if fade_in:
        envelope[:fade_in] = np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    if fade_out:
        envelope[n - fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    cue_rms, voice_rms = rms(cue), rms(voice)
    gain = (voice_rms / cue_rms) * 10 ** (level_db / 20) if cue_rms > 0 and voice_rms > 0 else 0.0
    mix = voice + gain * cue * envelope
    peak = float(np.abs(mix).max()) if n else 0.0
    scaled = PEAK / peak if peak > PEAK else 1.0
    mix = (mix * scaled).astype(np.float32)
    return mix, {"music_level_db": float(level_db),
                 "music_gain_db": round(20 * math.log10(gain), 2) if gain > 0 else None,
                 "mix_scaled_db": round(20 * math.log10(scaled), 2), "seconds": round(n / sample_rate, 3),
                 "fade_out_s": round(fade_out / sample_rate, 3)}
